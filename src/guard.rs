//! The Guard: one entry point that links, scores, applies policy and limits.
//!
//! **First increment of issue 4**: a working pipeline over the linking and
//! scoring prototypes, used to measure the model on the simulator. Not yet:
//! token quotas, fingerprint quotas, explain, snapshots, TOML loading, the
//! performance targets.
//!
//! For each request: the account is linked ([`crate::link`]), its cluster
//! scored ([`crate::score`]), and the limits applied together through the
//! limiter's all-or-nothing `check_all`:
//! - always the account's quota (`account_limit`);
//! - when the cluster has at least `min_cluster_size` accounts and scores at
//!   least `share_at`, the whole cluster also shares one budget
//!   (`cluster_limit`, with `suspected_distillation`);
//! - at `deny_at` (default 0.6) and above, the request is denied
//!   (`suspected_distillation`).
//!
//! Allow-listed accounts never get cluster penalties.

use crate::limit::{Clock, ManualClock, Outcome, Quota, RateLimiter};
use crate::link::{ClusterView, LinkConfig, Linker, Observation};
use crate::score::{Activity, ScoreConfig, Scorer, Signals};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Policy and model configuration. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Requests per minute per account (default 20, burst 20).
    pub account_requests_per_minute: u64,
    /// Requests per minute a suspicious cluster shares (default 20: one account's worth).
    pub cluster_requests_per_minute: u64,
    /// Score at which a cluster shares one budget (default 0.5).
    pub share_at: f64,
    /// Score at which a cluster's requests are denied (default 0.6).
    pub deny_at: f64,
    /// Smallest cluster that cluster policy applies to (default 3).
    pub min_cluster_size: u32,
    /// Accounts never given cluster penalties (verified organisations).
    pub allow_list: BTreeSet<String>,
    /// Report refusals without enforcing them.
    pub shadow: bool,
    /// Keys the limiter holds (default 1,000,000).
    pub limiter_capacity: usize,
    /// Linking.
    pub link: LinkConfig,
    /// Scoring.
    pub score: ScoreConfig,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            account_requests_per_minute: 20,
            cluster_requests_per_minute: 20,
            share_at: 0.5,
            deny_at: 0.6,
            min_cluster_size: 3,
            allow_list: BTreeSet::new(),
            shadow: false,
            limiter_capacity: 1_000_000,
            link: LinkConfig::default(),
            score: ScoreConfig::default(),
        }
    }
}

/// One request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The account.
    pub account: &'a str,
    /// (kind, value) fingerprints.
    pub fingerprints: &'a [(&'a str, &'a str)],
    /// The prompt.
    pub prompt: Option<&'a str>,
    /// The system prompt.
    pub system: Option<&'a str>,
    /// Estimated input tokens.
    pub input_tokens: u32,
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// Refuse it for now; it would fit after `retry_after`.
    Throttle {
        /// Time until it would fit.
        retry_after: Duration,
    },
    /// Refuse it.
    Deny,
}

/// Why a request was refused or limited (a fixed vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The account's own quota.
    AccountLimit,
    /// The cluster's shared budget.
    ClusterLimit,
    /// A fingerprint value's quota.
    FingerprintLimit,
    /// The cluster scores as a distillation campaign.
    SuspectedDistillation,
}

/// The Guard's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why (empty when allowed without any cluster policy).
    pub reasons: Vec<Reason>,
    /// The account's cluster.
    pub cluster: ClusterView,
    /// The cluster's distillation score in [0, 1].
    pub score: f64,
    /// The signals behind the score.
    pub signals: Signals,
    /// Requests left in the binding quota.
    pub remaining: u64,
}

impl Verdict {
    /// Whether to serve the request.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}

/// The guard (see the module docs).
pub struct Guard {
    config: GuardConfig,
    linker: Linker,
    scorer: Scorer,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
}

impl Guard {
    /// A guard on the system clock.
    pub fn new(config: GuardConfig) -> Guard {
        Self::with_clock(config, Arc::new(crate::limit::SystemClock::new()))
    }

    /// A guard on a given clock (a [`ManualClock`] to replay a trace).
    pub fn with_clock(config: GuardConfig, clock: Arc<dyn Clock>) -> Guard {
        let limiter = RateLimiter::builder(Quota::per_minute(config.account_requests_per_minute))
            .capacity(config.limiter_capacity)
            .clock(clock.clone())
            .shadow(config.shadow)
            .build();
        Guard {
            linker: Linker::new(config.link.clone()),
            scorer: Scorer::new(config.score.clone()),
            limiter,
            clock,
            config,
        }
    }

    /// A guard for replaying a trace: returns the clock to set before each request.
    pub fn for_replay(config: GuardConfig) -> (Guard, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (Self::with_clock(config, clock.clone()), clock)
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Decides one request.
    pub fn check(&self, req: &Request<'_>) -> Verdict {
        let now = self.clock.now() as f64 / 1e9;
        let (cluster, bands) = self.linker.observe_with_templates(&Observation {
            account: req.account,
            fingerprints: req.fingerprints,
            prompt: req.prompt,
            system: req.system,
            now,
        });
        let account_key = self.limiter.key(req.account);
        let signals = self.scorer.record(&Activity {
            cluster: cluster.id,
            account: u64::from_le_bytes(account_key_bytes(account_key)),
            prompt: req.prompt,
            template_bands: &bands,
            input_tokens: req.input_tokens,
            now,
        });
        let c = &self.config;
        let policy = cluster.size >= c.min_cluster_size && !c.allow_list.contains(req.account);
        let mut reasons = Vec::new();
        if policy && signals.score >= c.deny_at {
            reasons.push(Reason::SuspectedDistillation);
            let decision = if c.shadow {
                Decision::Allow
            } else {
                Decision::Deny
            };
            return Verdict {
                decision,
                reasons,
                cluster,
                score: signals.score,
                signals,
                remaining: 0,
            };
        }
        let account_quota = Quota::per_minute(c.account_requests_per_minute);
        let cluster_key = self.limiter.key(&cluster.id);
        let shared = policy && signals.score >= c.share_at;
        let d = if shared {
            reasons.push(Reason::SuspectedDistillation);
            self.limiter.check_all(&[
                (account_key, account_quota, 1),
                (
                    cluster_key,
                    Quota::per_minute(c.cluster_requests_per_minute),
                    1,
                ),
            ])
        } else {
            self.limiter.check_all(&[(account_key, account_quota, 1)])
        };
        if d.limited_by() & 1 != 0 {
            reasons.push(Reason::AccountLimit);
        }
        if d.limited_by() & 2 != 0 {
            reasons.push(Reason::ClusterLimit);
        }
        let decision = if d.is_allowed() {
            Decision::Allow
        } else if d.outcome() == Outcome::NeverFits {
            Decision::Deny
        } else {
            Decision::Throttle {
                retry_after: d.retry_after(),
            }
        };
        Verdict {
            decision,
            reasons,
            cluster,
            score: signals.score,
            signals,
            remaining: d.remaining(),
        }
    }

    /// Records a served request's actual output tokens.
    pub fn settle(&self, verdict: &Verdict, output_tokens: u32) {
        let now = self.clock.now() as f64 / 1e9;
        self.scorer
            .record_output(verdict.cluster.id, output_tokens, now);
    }

    /// The current score of `account`'s cluster (0 if unknown).
    pub fn score_of(&self, account: &str) -> (ClusterView, f64) {
        let now = self.clock.now() as f64 / 1e9;
        match self.linker.cluster_of(account) {
            Some(c) => (
                c,
                self.scorer.signals_of(c.id, now).map_or(0.0, |s| s.score),
            ),
            None => (ClusterView { id: 0, size: 0 }, 0.0),
        }
    }
}

fn account_key_bytes(k: crate::limit::KeyId) -> [u8; 8] {
    // The key id is opaque; its Debug-independent hash is enough to tell
    // accounts apart inside one cluster's statistics.
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    k.hash(&mut h);
    h.finish().to_le_bytes()
}
