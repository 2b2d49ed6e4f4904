//! The Guard: one entry point that links, scores, applies policy and limits.
//!
//! For each request, [`Guard::check`]:
//! 1. links the account ([`crate::link`]): its fingerprints, system prompt
//!    and prompt template join it to the accounts it shares rare values with;
//! 2. scores its cluster ([`crate::score`]) when it has two accounts or more;
//! 3. applies the policy, all limits at once through the limiter's
//!    all-or-nothing `check_all` (a refused request consumes nothing):
//!    - always the account's request quota (`account_limit`) and, reserved
//!      from input tokens plus `max_tokens` and settled later with the real
//!      output, its token quota;
//!    - the configured per-fingerprint quotas (`fingerprint_limit`);
//!    - when the cluster has at least `min_cluster_size` accounts and scores
//!      at least `share_at`, one budget the whole cluster shares
//!      (`cluster_limit`, with `suspected_distillation`);
//!    - at `deny_at` and above, the request is denied outright
//!      (`suspected_distillation`).
//!
//! Allow-listed accounts (verified organisations) never get cluster
//! penalties; shadow mode reports every refusal but enforces none.
//!
//! `check` is safe to call from many threads at once: linking and limiting
//! are lock-free on the hot path (a per-thread read stripe guards the
//! occasional rebuild), scoring locks only the request's own cluster.

use crate::limit::{Clock, ManualClock, Outcome, Quota, RateLimiter};
use crate::link::{ClusterView, LinkConfig, Linker, Observation};
use crate::score::{Activity, ScoreConfig, Scorer, Signals};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Policy and model configuration. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Requests per minute per account (default 20, burst 20).
    pub account_requests_per_minute: u64,
    /// Tokens (input + estimated output) per minute per account, reserved
    /// before the request and settled with the actual output (default
    /// 200,000; 0 turns token limits off).
    pub account_tokens_per_minute: u64,
    /// Requests per minute a suspicious cluster shares (default 20: one account's worth).
    pub cluster_requests_per_minute: u64,
    /// Score at which a cluster shares one budget (default 0.4).
    pub share_at: f64,
    /// Score at which a cluster's requests are denied (default 0.5).
    pub deny_at: f64,
    /// Smallest cluster that cluster policy applies to (default 3).
    pub min_cluster_size: u32,
    /// Accounts never given cluster penalties (verified organisations).
    pub allow_list: BTreeSet<String>,
    /// Report refusals without enforcing them.
    pub shadow: bool,
    /// Keys the limiter holds (default 500,000: an account's request and
    /// token quotas are two keys, for `link.max_accounts` = 250,000; see
    /// [`GuardConfig::for_accounts`]).
    pub limiter_capacity: usize,
    /// Requests per minute per fingerprint value, by kind (default none;
    /// e.g. `ip = 600` limits every address to 600 requests a minute).
    pub fingerprint_requests_per_minute: BTreeMap<String, u64>,
    /// Linking.
    pub link: LinkConfig,
    /// Scoring.
    pub score: ScoreConfig,
}

impl Default for GuardConfig {
    /// The defaults, sized for 250,000 tracked accounts
    /// ([`GuardConfig::for_accounts`]): about 60 MB, allocated up front.
    fn default() -> Self {
        GuardConfig::for_accounts(250_000)
    }
}

impl GuardConfig {
    /// The default configuration with every table sized for `accounts`
    /// tracked accounts: `link.max_accounts` = n, `link.max_values` = 2.5n,
    /// `link.max_templates` = n/2, `link.max_pairs` = n, `limiter_capacity` =
    /// 2n (an account's request and token quotas), `score.max_clusters` =
    /// n/32 (at least 64). Memory is fixed at construction, about 250
    /// bytes per account (measured by `tests/guard_memory.rs`).
    ///
    /// ```
    /// use ringfence::guard::GuardConfig;
    /// let c = GuardConfig::for_accounts(1_000_000);
    /// assert_eq!(c.link.max_values, 2_500_000);
    /// assert_eq!(c.limiter_capacity, 2_000_000);
    /// ```
    pub fn for_accounts(accounts: usize) -> GuardConfig {
        let n = accounts.clamp(1, 1 << 26);
        GuardConfig {
            limiter_capacity: 2 * n,
            link: LinkConfig {
                max_accounts: n,
                max_values: 2 * n + n / 2,
                max_templates: n / 2,
                max_pairs: n,
                ..LinkConfig::default()
            },
            score: ScoreConfig {
                max_clusters: (n / 32).max(64),
                ..ScoreConfig::default()
            },
            ..GuardConfig::base()
        }
    }

    fn base() -> Self {
        GuardConfig {
            account_requests_per_minute: 20,
            account_tokens_per_minute: 200_000,
            cluster_requests_per_minute: 20,
            share_at: 0.4,
            deny_at: 0.5,
            min_cluster_size: 3,
            allow_list: BTreeSet::new(),
            shadow: false,
            limiter_capacity: 500_000,
            fingerprint_requests_per_minute: BTreeMap::new(),
            link: LinkConfig::default(),
            score: ScoreConfig::default(),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What was wrong, naming the key (and line, for TOML).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ringfence configuration: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl GuardConfig {
    /// Parses a TOML configuration; missing keys take their defaults,
    /// unknown or mistyped keys are an error naming the key and line.
    ///
    /// ```
    /// use ringfence::guard::GuardConfig;
    ///
    /// let c = GuardConfig::from_toml("deny_at = 0.9\n[link]\nhorizon_secs = 3600.0\n").unwrap();
    /// assert_eq!(c.deny_at, 0.9);
    /// assert_eq!(c.link.horizon_secs, 3600.0);
    /// assert_eq!(c.share_at, 0.4); // a default
    /// let err = GuardConfig::from_toml("deny_att = 0.9").unwrap_err();
    /// assert!(err.to_string().contains("deny_att"), "{err}");
    /// ```
    pub fn from_toml(text: &str) -> Result<GuardConfig, ConfigError> {
        let config: GuardConfig = toml::from_str(text).map_err(|e| ConfigError {
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| {
            Err(ConfigError {
                message: format!("`{key}` {why}"),
            })
        };
        for (key, v) in [("share_at", self.share_at), ("deny_at", self.deny_at)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, "must be between 0 and 1");
            }
        }
        if self.deny_at < self.share_at {
            return bad("deny_at", "must not be below `share_at`");
        }
        if self.account_requests_per_minute == 0 {
            return bad("account_requests_per_minute", "must be at least 1");
        }
        if self.cluster_requests_per_minute == 0 {
            return bad("cluster_requests_per_minute", "must be at least 1");
        }
        if self.limiter_capacity == 0 || self.limiter_capacity > 1 << 30 {
            return bad("limiter_capacity", "must be between 1 and 2^30");
        }
        for (kind, &n) in &self.fingerprint_requests_per_minute {
            if n == 0 {
                return bad(
                    &format!("fingerprint_requests_per_minute.{kind}"),
                    "must be at least 1",
                );
            }
        }
        self.link
            .validate()
            .and_then(|()| self.score.validate())
            .map_err(|message| ConfigError { message })
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
    /// The model asked for (feeds the model-pivot signal).
    pub model: Option<&'a str>,
    /// Input tokens.
    pub input_tokens: u32,
    /// The most output tokens the request may produce (`max_tokens`); with
    /// the input, the estimate reserved against the token quota.
    pub max_tokens: u32,
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

impl Reason {
    /// The reason's name in the documented vocabulary (`account_limit`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AccountLimit => "account_limit",
            Reason::ClusterLimit => "cluster_limit",
            Reason::FingerprintLimit => "fingerprint_limit",
            Reason::SuspectedDistillation => "suspected_distillation",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reasons of a verdict: a small set, in a fixed order, that derefs to
/// a slice (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reasons {
    items: [Reason; 4],
    len: u8,
}

impl Reasons {
    const fn new() -> Reasons {
        Reasons {
            items: [Reason::AccountLimit; 4],
            len: 0,
        }
    }

    fn push(&mut self, r: Reason) {
        if !self.contains(&r) && usize::from(self.len) < self.items.len() {
            self.items[usize::from(self.len)] = r;
            self.len += 1;
        }
    }
}

impl Default for Reasons {
    fn default() -> Self {
        Reasons::new()
    }
}

impl std::ops::Deref for Reasons {
    type Target = [Reason];
    fn deref(&self) -> &[Reason] {
        &self.items[..usize::from(self.len)]
    }
}

impl<'a> IntoIterator for &'a Reasons {
    type Item = &'a Reason;
    type IntoIter = std::slice::Iter<'a, Reason>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq<Vec<Reason>> for Reasons {
    fn eq(&self, other: &Vec<Reason>) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<[Reason; N]> for Reasons {
    fn eq(&self, other: &[Reason; N]) -> bool {
        **self == other[..]
    }
}

impl Serialize for Reasons {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl fmt::Debug for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The Guard's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why (empty when allowed without any cluster policy).
    pub reasons: Reasons,
    /// The account's cluster.
    pub cluster: ClusterView,
    /// The cluster's distillation score in [0, 1].
    pub score: f64,
    /// The signals behind the score.
    pub signals: Signals,
    /// Requests left in the binding quota.
    pub remaining: u64,
    /// The signals that contribute most to the score, strongest first.
    pub contributors: crate::score::Contributors,
    /// The limiter's decision behind the verdict (`None` when the request
    /// was denied before the limits: `suspected_distillation` at `deny_at`).
    pub limit: Option<crate::limit::Decision>,
    /// How long a denied cluster should wait before trying again (the
    /// score's half-life: by then its score has halved).
    pub deny_retry: Duration,
    /// The tokens reserved for this request, settled by [`Guard::settle`].
    pub reservation: Option<crate::limit::Reservation>,
    /// The request's input tokens (for settling).
    pub input_tokens: u32,
}

impl Verdict {
    /// Whether to serve the request.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// The HTTP headers to answer with: the IETF `RateLimit-Policy` and
    /// `RateLimit` fields of the binding limit (named `account`, `cluster`
    /// or `fingerprint`), and `Retry-After` (whole seconds, at least 1) when
    /// the request is refused. A denied cluster's policy is
    /// `suspected_distillation`, with no capacity left until `deny_retry`.
    ///
    /// ```
    /// use ringfence::guard::{Guard, GuardConfig, Request};
    /// let guard = Guard::new(GuardConfig::for_accounts(100));
    /// let req = Request { account: "a", fingerprints: &[], prompt: None, system: None,
    ///                     model: None, input_tokens: 10, max_tokens: 10 };
    /// let h = guard.check(&req).headers();
    /// assert_eq!(h[0], ("RateLimit-Policy", "\"account\";q=20;w=60".to_string()));
    /// assert_eq!(h[1], ("RateLimit", "\"account\";r=19;t=3".to_string()));
    /// ```
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let policy = if self.reasons.contains(&Reason::ClusterLimit) {
            "cluster"
        } else if self.reasons.contains(&Reason::FingerprintLimit) {
            "fingerprint"
        } else {
            "account"
        };
        match &self.limit {
            Some(d) => d.headers(policy),
            None => {
                let secs = self.deny_retry.as_secs().max(1);
                let mut h = vec![
                    (
                        "RateLimit-Policy",
                        format!("\"suspected_distillation\";q=0;w={secs}"),
                    ),
                    (
                        "RateLimit",
                        format!("\"suspected_distillation\";r=0;t={secs}"),
                    ),
                ];
                if self.decision != Decision::Allow {
                    h.push(("Retry-After", secs.to_string()));
                }
                h
            }
        }
    }
}

/// Why an account's requests are treated as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The account.
    pub account: String,
    /// Its cluster.
    pub cluster: ClusterView,
    /// Up to 20 other members of the cluster.
    pub members: Vec<String>,
    /// The fingerprint values that link it, with how many accounts share
    /// each and the weight that gives them, strongest first.
    pub shared: Vec<crate::link::SharedValue>,
    /// The cluster's signals and score.
    pub signals: Signals,
    /// The signals that contribute most to the score.
    pub contributors: Vec<(&'static str, f64)>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "account {} is in cluster {:016x} of {} accounts",
            self.account, self.cluster.id, self.cluster.size
        )?;
        if !self.members.is_empty() {
            writeln!(f, "  with: {}", self.members.join(", "))?;
        }
        for v in self.shared.iter().take(10) {
            writeln!(
                f,
                "  shares {} {:?} with ~{:.0} accounts (weight {:.2})",
                v.kind, v.value, v.accounts, v.weight
            )?;
        }
        write!(f, "  score {:.2}", self.signals.score)?;
        for (name, c) in &self.contributors {
            write!(f, "; {name} {c:.2}")?;
        }
        Ok(())
    }
}

/// A snapshot that could not be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    /// What was wrong, and where.
    pub message: String,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot restore the guard snapshot: {}", self.message)
    }
}

impl std::error::Error for SnapshotError {}

const SNAPSHOT_VERSION: u8 = 2;

fn snapshot_error(e: impl fmt::Display) -> SnapshotError {
    SnapshotError {
        message: e.to_string(),
    }
}

/// The guard (see the module docs).
pub struct Guard {
    config: GuardConfig,
    linker: Linker,
    scorer: Scorer,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
    account_quota: Quota,
    token_quota: Quota,
    cluster_quota: Quota,
    /// Fingerprint kinds with a quota: (kind, its hash, quota).
    fingerprint_quotas: Vec<(String, u64, Quota)>,
    /// Allow-listed accounts, by hash.
    allowed: ahash::AHashSet<u64>,
    deny_retry: Duration,
}

/// Salts that keep the limiter's derived keys apart.
const TOKENS: u64 = 0x746f_6b65_6e73_0001;
const CLUSTER: u64 = 0x636c_7573_7465_7202;
const FINGERPRINT: u64 = 0x6670_7269_6e74_0003;
/// The most limits one request is checked against.
const MAX_CHECKS: usize = 20;

impl Guard {
    /// A guard on the system clock.
    ///
    /// # Panics
    /// If the configuration is invalid ([`GuardConfig::validate`]);
    /// [`Guard::try_new`] returns the error instead.
    pub fn new(config: GuardConfig) -> Guard {
        Self::with_clock(config, Arc::new(crate::limit::SystemClock::new()))
    }

    /// A guard on the system clock, or what is wrong with the configuration.
    pub fn try_new(config: GuardConfig) -> Result<Guard, ConfigError> {
        Self::try_with_clock(config, Arc::new(crate::limit::SystemClock::new()))
    }

    /// A guard on a given clock (a [`ManualClock`] to replay a trace).
    ///
    /// # Panics
    /// If the configuration is invalid.
    pub fn with_clock(config: GuardConfig, clock: Arc<dyn Clock>) -> Guard {
        match Self::try_with_clock(config, clock) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    }

    /// A guard on a given clock, or what is wrong with the configuration.
    pub fn try_with_clock(
        config: GuardConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Guard, ConfigError> {
        config.validate()?;
        let err = |message| ConfigError { message };
        let limiter = RateLimiter::builder(Quota::per_minute(config.account_requests_per_minute))
            .capacity(config.limiter_capacity)
            .clock(clock.clone())
            .shadow(config.shadow)
            .build();
        let linker = Linker::try_new(config.link.clone()).map_err(err)?;
        // The linker counts from the guard clock's origin (snapshots carry
        // times on that clock).
        linker.set_epoch(0.0);
        let seed = config.link.seed;
        Ok(Guard {
            scorer: Scorer::try_new(config.score.clone()).map_err(err)?,
            account_quota: Quota::per_minute(config.account_requests_per_minute),
            token_quota: Quota::per_minute(config.account_tokens_per_minute.max(1)),
            cluster_quota: Quota::per_minute(config.cluster_requests_per_minute),
            fingerprint_quotas: config
                .fingerprint_requests_per_minute
                .iter()
                .map(|(k, &n)| {
                    (
                        k.clone(),
                        xxh3_64_with_seed(k.as_bytes(), seed),
                        Quota::per_minute(n),
                    )
                })
                .collect(),
            allowed: config
                .allow_list
                .iter()
                .map(|a| linker.account_hash(a))
                .collect(),
            deny_retry: Duration::from_secs_f64(config.score.half_life_secs.min(86_400.0)),
            linker,
            limiter,
            clock,
            config,
        })
    }

    /// A guard for replaying a trace: returns the clock to set before each request.
    pub fn for_replay(config: GuardConfig) -> (Guard, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (Self::with_clock(config, clock.clone()), clock)
    }

    /// [`Guard::for_replay`], or what is wrong with the configuration.
    pub fn try_for_replay(config: GuardConfig) -> Result<(Guard, Arc<ManualClock>), ConfigError> {
        let clock = Arc::new(ManualClock::new());
        Ok((Self::try_with_clock(config, clock.clone())?, clock))
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn now(&self) -> f64 {
        self.clock.now() as f64 / 1e9
    }

    /// Decides one request.
    pub fn check(&self, req: &Request<'_>) -> Verdict {
        let now = self.now();
        // The account's limiter cells are read first so that their cache
        // misses overlap those of linking (which touches its own cells the
        // same way) instead of following them.
        let account_hash = self.linker.account_hash(req.account);
        let account_key = self.limiter.key(req.account);
        let token_key = self.limiter.key(&(account_hash ^ TOKENS));
        std::hint::black_box(
            self.limiter
                .touch(account_key)
                .wrapping_add(self.limiter.touch(token_key))
                .wrapping_add(self.linker.touch_account(account_hash)),
        );
        let seen = self.linker.observe_hashed(
            &Observation {
                account: req.account,
                fingerprints: req.fingerprints,
                prompt: req.prompt,
                system: req.system,
                now,
            },
            account_hash,
        );
        let cluster = seen.cluster;
        let signals = self.scorer.record(&Activity {
            cluster: cluster.id,
            cluster_size: cluster.size,
            account: seen.account,
            prompt: req.prompt,
            template_shared: seen.template_shared,
            prompt_key: seen.prompt_key,
            model: req.model,
            input_tokens: req.input_tokens,
            now,
        });
        let c = &self.config;
        let policy = cluster.size >= c.min_cluster_size
            && (self.allowed.is_empty() || !self.allowed.contains(&seen.account));
        let mut reasons = Reasons::new();
        let deny = policy && signals.score >= c.deny_at;
        if deny {
            reasons.push(Reason::SuspectedDistillation);
        }
        // (In shadow mode a denial is reported and the limits are still
        // evaluated, so that their refusals are reported too.)
        if deny && !c.shadow {
            return Verdict {
                decision: Decision::Deny,
                reasons,
                cluster,
                score: signals.score,
                contributors: signals.strongest(self.scorer.config()),
                signals,
                remaining: 0,
                limit: None,
                deny_retry: self.deny_retry,
                reservation: None,
                input_tokens: req.input_tokens,
            };
        }
        let shared = policy && signals.score >= c.share_at;
        // The account first, its tokens, the cluster's shared budget (if it
        // applies), then one key per limited fingerprint value.
        let mut checks = [(account_key, self.account_quota, 1u64); MAX_CHECKS];
        let mut n = 1;
        let tokens = c.account_tokens_per_minute > 0;
        if tokens {
            let estimate = u64::from(req.input_tokens) + u64::from(req.max_tokens);
            checks[n] = (token_key, self.token_quota, estimate);
            n += 1;
        }
        let cluster_index = n;
        if shared {
            reasons.push(Reason::SuspectedDistillation);
            checks[n] = (
                self.limiter.key(&(cluster.id ^ CLUSTER)),
                self.cluster_quota,
                1,
            );
            n += 1;
        }
        let first_fingerprint = n;
        if !self.fingerprint_quotas.is_empty() {
            for (kind, value) in req.fingerprints {
                if n == MAX_CHECKS {
                    break;
                }
                if let Some((_, h, q)) = self.fingerprint_quotas.iter().find(|f| f.0 == *kind) {
                    let key = xxh3_64_with_seed(value.as_bytes(), *h) ^ FINGERPRINT;
                    checks[n] = (self.limiter.key(&key), *q, 1);
                    n += 1;
                }
            }
        }
        let (d, reservation) = self
            .limiter
            .check_all_reserving(&checks[..n], tokens.then_some(1));
        let limited = d.limited_by();
        if limited & if tokens { 0b11 } else { 0b1 } != 0 {
            reasons.push(Reason::AccountLimit);
        }
        if shared && limited & (1 << cluster_index) != 0 {
            reasons.push(Reason::ClusterLimit);
        }
        if limited >> first_fingerprint.min(63) != 0 {
            reasons.push(Reason::FingerprintLimit);
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
            contributors: signals.strongest(self.scorer.config()),
            signals,
            remaining: d.remaining(),
            limit: Some(d),
            deny_retry: self.deny_retry,
            reservation,
            input_tokens: req.input_tokens,
        }
    }

    /// Records a served request's actual output tokens: settles its token
    /// reservation (refunding what `max_tokens` over-estimated) and feeds
    /// the output/input signal.
    pub fn settle(&self, verdict: &Verdict, output_tokens: u32) {
        let now = self.now();
        if let Some(r) = verdict.reservation {
            let actual = u64::from(verdict.input_tokens) + u64::from(output_tokens);
            // Made by this guard's own limiter, so it cannot be foreign.
            let _ = self.limiter.settle(r, actual);
        }
        self.scorer
            .record_output(verdict.cluster.id, verdict.input_tokens, output_tokens, now);
    }

    /// Why `account` is treated as it is: its cluster, what links it, and
    /// the signals behind its cluster's score. `None` for an unknown account.
    pub fn explain(&self, account: &str) -> Option<Explanation> {
        let now = self.now();
        let cluster = self.linker.cluster_of(account)?;
        let members = self.linker.members_of(account, 20);
        let signals = self.scorer.signals_of(cluster.id, now).unwrap_or_default();
        Some(Explanation {
            account: account.to_string(),
            cluster,
            members,
            shared: self.linker.evidence(account),
            contributors: signals.contributors(self.scorer.config()),
            signals,
        })
    }

    /// Everything the guard remembers, as bytes: linked accounts, fingerprint
    /// values and evidence, cluster statistics and the limiter's debts.
    /// Versioned and checksummed (kind 7 of the sketches' frame); deterministic,
    /// so restoring and snapshotting again gives the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        use crate::sketch::codec::{Kind, Writer};
        let now = self.now();
        let mut w = Writer::new(Kind::Guard, SNAPSHOT_VERSION, 1 << 16);
        w.f64(now);
        self.linker.encode(&mut w);
        self.scorer.encode(&mut w);
        w.blob(&self.limiter.snapshot());
        w.finish()
    }

    /// Restores a [`Guard::snapshot`] into this guard, which must be fresh
    /// (no request checked yet) and built with the same seeds and limiter
    /// capacity. The whole snapshot is decoded and checked first: a
    /// truncated, corrupt or mismatched snapshot is an error that leaves the
    /// guard untouched. Times move with the clock: a snapshot taken at `t`
    /// and restored at `t + d` has every time shifted by `d`.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (link, score, limits) = self.decode_snapshot(bytes)?;
        self.linker
            .check_installable(&link)
            .map_err(snapshot_error)?;
        self.scorer
            .check_installable(&score)
            .map_err(snapshot_error)?;
        self.limiter.restore(limits).map_err(snapshot_error)?;
        self.linker.install(link);
        self.scorer.install(score);
        Ok(())
    }

    /// Folds another node's [`Guard::snapshot`] into this guard, for
    /// gateways that run several nodes: accounts and fingerprint values
    /// merge (their sketches too), evidence and links union, cluster
    /// statistics add up, and every key owes the sum of its debts. The whole
    /// snapshot is checked first; a bad one changes nothing.
    pub fn merge(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (link, score, limits) = self.decode_snapshot(bytes)?;
        self.limiter.merge(limits).map_err(snapshot_error)?;
        self.linker.merge(link);
        self.scorer.merge(score);
        Ok(())
    }

    /// Decodes and checks a whole snapshot, times shifted to this guard's
    /// clock; the limiter's part is returned as bytes for it to check.
    fn decode_snapshot<'a>(
        &self,
        bytes: &'a [u8],
    ) -> Result<
        (
            crate::link::LinkSnapshot,
            crate::score::ScoreSnapshot,
            &'a [u8],
        ),
        SnapshotError,
    > {
        use crate::sketch::codec::{Kind, Reader};
        let mut r = Reader::open(bytes, Kind::Guard, SNAPSHOT_VERSION).map_err(snapshot_error)?;
        let taken = r.f64("snapshot time").map_err(snapshot_error)?;
        let shift = self.clock.now() as f64 / 1e9 - taken;
        let link = self.linker.decode(&mut r, shift).map_err(snapshot_error)?;
        let score = self.scorer.decode(&mut r, shift).map_err(snapshot_error)?;
        let limits = r.blob("limiter").map_err(snapshot_error)?;
        r.finish().map_err(snapshot_error)?;
        Ok((link, score, limits))
    }

    /// Bytes the guard holds: its tables (allocated at construction, sized
    /// by the configuration) plus the names and texts kept for explanations.
    pub fn memory_bytes(&self) -> usize {
        self.linker.stats().bytes + self.scorer.bytes() + self.limiter.memory_bytes()
    }

    /// How full the linker's tables are.
    pub fn link_stats(&self) -> crate::link::LinkStats {
        self.linker.stats()
    }

    /// Forgets expired evidence and rebuilds the clusters now. The guard does
    /// this by itself every `link.rebuild_every_secs` (the request that finds
    /// it due pays for it, tens of milliseconds per million accounts); a
    /// gateway that wants no request to pay can call this from a background
    /// thread a little more often.
    pub fn maintain(&self) {
        self.linker.rebuild_now(self.now());
    }

    /// The current score of `account`'s cluster (0 if unknown).
    pub fn score_of(&self, account: &str) -> (ClusterView, f64) {
        let now = self.now();
        match self.linker.cluster_of(account) {
            Some(c) => (
                c,
                self.scorer.signals_of(c.id, now).map_or(0.0, |s| s.score),
            ),
            None => (ClusterView { id: 0, size: 0 }, 0.0),
        }
    }
}
