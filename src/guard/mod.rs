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

mod config;
mod evidence;
mod explain;
mod intel;
#[cfg(test)]
mod keyed_tests;
mod metrics;
mod observer;
mod policy;
mod snapshot;
mod verdict;

pub use crate::request::{
    estimate_tokens, text_head, Request, RequestError, TextDigest, DIGEST_BANDS, MAX_ACCOUNT_BYTES,
    MAX_FINGERPRINTS, MAX_FINGERPRINT_BYTES, MAX_MODEL_BYTES, TEXT_HEAD_CHARS,
};
pub use config::{ConfigError, GuardConfig, ObserveConfig, ObserveMode, MAX_ACCOUNTS};
pub use explain::{CrowdExplanation, Explanation};
pub use policy::{cluster_action, ClusterAction};
pub use snapshot::{RestoreFileError, SnapshotError};
pub use verdict::{
    Decision, Policy, Reason, Reasons, SettleError, Settlement, Verdict, SETTLEMENT_WORDS,
};

use crate::crowd::Crowds;
use crate::limit::{Clock, KeyId, ManualClock, Outcome, Quota, RateLimiter};
use crate::link::{ClusterView, Linker};
use crate::score::Scorer;
use evidence::{Evidence, Finding};
use observer::Observer;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The guard (see the module docs).
pub struct Guard {
    config: GuardConfig,
    /// Linking, scoring and crowds (shared with the observer threads).
    ev: Arc<Evidence>,
    /// The observer threads, in `background` mode.
    observer: Option<Observer>,
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
    id: u64,
    counters: metrics::Counters,
    /// Shared intelligence, with a consortium key (also the linker's).
    intel: Option<Arc<crate::intel::Intel>>,
    /// The budget of an imported campaign, by its indicator's weight in tenths.
    intel_quotas: [Quota; 11],
    intel_account_quota: Quota,
    /// The unix time at which the guard's clock read 0 (f64 bits; NaN: unknown).
    unix_origin: AtomicU64,
}

/// An account's hash and its two limiter keys.
struct AccountKeys {
    account_hash: u64,
    requests: KeyId,
    tokens: KeyId,
}

/// Distinguishes guards, so that a verdict is settled only by its own.
static NEXT_GUARD_ID: AtomicU64 = AtomicU64::new(1);

/// Salts that keep the limiter's derived keys apart.
const TOKENS: u64 = 0x746f_6b65_6e73_0001;
const CLUSTER: u64 = 0x636c_7573_7465_7202;
const FINGERPRINT: u64 = 0x6670_7269_6e74_0003;
const INDICATOR: u64 = 0x696e_7465_6c00_0004;
const MARKED: u64 = 0x6d61_726b_6564_0005;
/// Limits checked without allocating: the account's two, the cluster's and
/// up to 17 fingerprint quotas. A request with more limited fingerprints
/// (up to [`MAX_FINGERPRINTS`]) spills to the heap rather than skip any.
const INLINE_CHECKS: usize = 20;

/// The limits one request is checked against, on the stack while they fit.
struct Checks {
    inline: [(KeyId, Quota, u64); INLINE_CHECKS],
    len: usize,
    spill: Vec<(KeyId, Quota, u64)>,
}

impl Checks {
    fn new(first: (KeyId, Quota, u64)) -> Checks {
        Checks {
            inline: [first; INLINE_CHECKS],
            len: 1,
            spill: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, check: (KeyId, Quota, u64)) {
        if self.len < INLINE_CHECKS {
            self.inline[self.len] = check;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(check);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[(KeyId, Quota, u64)] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

impl Guard {
    /// A guard on the system clock.
    ///
    /// # Panics
    /// If the configuration is invalid ([`GuardConfig::validate`]);
    /// [`Guard::try_new`] returns the error instead.
    pub fn new(config: GuardConfig) -> Guard {
        match Self::try_new(config) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    }

    /// A guard on the system clock, or what is wrong with the configuration.
    pub fn try_new(config: GuardConfig) -> Result<Guard, ConfigError> {
        let g = Self::try_with_clock(config, Arc::new(crate::limit::SystemClock::new()))?;
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            g.set_unix_origin(d.as_secs_f64() - g.now());
        }
        Ok(g)
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
        // The limiter's keys follow the guard's seed too (unchanged for the
        // default seed).
        let limit_seed =
            crate::limit::DEFAULT_LIMIT_SEED ^ config.link.seed ^ crate::link::DEFAULT_LINK_SEED;
        let limiter = RateLimiter::builder(Quota::per_minute(config.account_requests_per_minute))
            .seed(limit_seed)
            .capacity(config.limiter_capacity)
            .clock(clock.clone())
            .shadow(config.shadow)
            .build();
        let mut linker = Linker::try_new(config.link.clone()).map_err(err)?;
        let intel = config
            .intel
            .load_key()
            .map_err(|e| err(e.message))?
            .map(|key| {
                Arc::new(crate::intel::Intel::new(
                    key,
                    config.intel.clone(),
                    config.link.max_values,
                    config.link.horizon_secs,
                ))
            });
        if let Some(i) = &intel {
            linker.set_intel(i.clone());
        }
        // The linker counts from the guard clock's origin (snapshots carry
        // times on that clock).
        linker.set_epoch(0.0);
        let seed = config.link.seed;
        let excluded: Vec<u8> = config
            .crowd
            .excluded_kinds
            .iter()
            .filter_map(|k| linker.kind_index(k))
            .collect();
        let crowds = Crowds::try_new(
            config.crowd.clone(),
            linker.account_cells(),
            &excluded,
            seed,
        )
        .map_err(err)?;
        let ev = Arc::new(Evidence {
            crowds,
            scorer: Scorer::try_new(config.score.clone()).map_err(err)?,
            linker,
            suspicious_at: config.crowd.suspicious_at,
        });
        let observer = match config.observe.mode {
            ObserveMode::Background => Some(
                Observer::start(ev.clone(), config.observe.threads, config.observe.queue)
                    .map_err(err)?,
            ),
            _ => None,
        };
        Ok(Guard {
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
                .map(|a| ev.linker.account_hash(a))
                .collect(),
            deny_retry: Duration::from_secs_f64(config.score.half_life_secs.min(86_400.0)),
            id: NEXT_GUARD_ID.fetch_add(1, Relaxed),
            counters: metrics::Counters::new(),
            intel_quotas: crate::intel::campaign_quotas(
                &config.intel,
                config.cluster_requests_per_minute,
            ),
            intel_account_quota: Quota::per_minute(config.intel.account_requests_per_minute),
            unix_origin: AtomicU64::new(f64::NAN.to_bits()),
            intel,
            ev,
            observer,
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

    /// The unix time (seconds) at which the guard's clock read 0, if known:
    /// set for a guard on the system clock, and by whoever sets a manual
    /// clock (a replay: its first request's time). Snapshots carry it, so
    /// that times from them can be placed (shared intelligence needs dates).
    pub fn unix_origin(&self) -> Option<f64> {
        let t = f64::from_bits(self.unix_origin.load(Relaxed));
        t.is_finite().then_some(t)
    }

    /// Sets [`Guard::unix_origin`] (a finite time; others are ignored).
    pub fn set_unix_origin(&self, unix_secs: f64) {
        if unix_secs.is_finite() {
            self.unix_origin.store(unix_secs.to_bits(), Relaxed);
        }
    }

    /// Seconds on the guard's clock (from its creation, or the replay's
    /// start): the clock every time the guard reports is on. Subtract it
    /// from the wall-clock time to place those times.
    pub fn clock_secs(&self) -> f64 {
        self.now()
    }

    /// Decides one request, after checking it against the request
    /// contract ([`Request::validate`]): what every binding calls.
    pub fn try_check(&self, req: &Request<'_>) -> Result<Verdict, RequestError> {
        req.validate()?;
        Ok(self.check(req))
    }

    /// Decides one request: link → score → policy → limit → verdict.
    ///
    /// The request is taken as given: use [`Guard::try_check`] where it
    /// comes from outside the process. (A request that breaks the contract
    /// is still decided: an empty account is one account like any other,
    /// and fingerprints past [`MAX_FINGERPRINTS`] are linked but not
    /// limited.)
    pub fn check(&self, req: &Request<'_>) -> Verdict {
        let verdict = self.check_uncounted(req);
        self.counters.verdict(&verdict);
        verdict
    }

    fn check_uncounted(&self, req: &Request<'_>) -> Verdict {
        let now = self.now();
        let keys = self.account_keys(req.account);
        let hash = keys.account_hash;
        let mode = self.config.observe.mode;
        if mode == ObserveMode::Inline {
            let found = self.ev.record(req, hash, now, None);
            return self.decide(req, &keys, found, now);
        }
        let found = self.ev.standing(hash, now);
        let mut verdict = self.decide(req, &keys, found, now);
        let queued = self
            .observer
            .as_ref()
            .is_some_and(|o| o.push(req, hash, now));
        if !queued {
            let recorded = self.ev.record(req, hash, now, None);
            // A new account's cell, so that settling counts its output.
            if verdict.account_cell == 0 {
                verdict.account_cell = recorded.cell.map_or(0, |c| c + 1);
            }
        }
        verdict
    }

    /// The verdict on what is known of the request's account: policy, then
    /// the limits.
    fn decide(&self, req: &Request<'_>, keys: &AccountKeys, found: Finding, now: f64) -> Verdict {
        let judged = found.judged();
        let Finding {
            cluster,
            cell,
            signals,
            crowd,
        } = found;
        let mut verdict = Verdict {
            decision: Decision::Allow,
            reasons: Reasons::new(),
            cluster,
            score: signals.score,
            contributors: signals.strongest(self.ev.scorer.config()),
            signals,
            remaining: 0,
            limit: None,
            deny_retry: self.deny_retry,
            reservation: None,
            input_tokens: req.input_tokens,
            guard_id: self.id,
            scored_cluster: cluster.id,
            account_cell: cell.map_or(0, |c| c + 1),
            account: keys.account_hash,
        };
        // A suspicious account's strongest crowd stands in for its cluster
        // when it scores higher: its members share the crowd's budget.
        if crowd.score > verdict.score {
            (verdict.cluster, verdict.score) = judged;
            verdict.contributors = crate::score::Contributors::crowd(crowd.score);
        }
        let exempt = !self.allowed.is_empty() && self.allowed.contains(&keys.account_hash);
        let mut action = cluster_action(&self.config, verdict.cluster.size, exempt, verdict.score);
        if action != ClusterAction::None {
            verdict.reasons.push(Reason::SuspectedDistillation);
        }
        // An imported indicator: its campaign's budgets. It never denies
        // by itself (unless `deny_alone_at` says so): a deny needs the
        // score of what is seen here, the account's linked cluster or its
        // campaign's accounts scored together on their behaviour here.
        let indicator = match &self.intel {
            Some(i) if !exempt => i.match_of(keys.account_hash, now),
            _ => None,
        };
        if let Some(m) = indicator {
            verdict.reasons.push(Reason::SharedIndicator);
            if self
                .config
                .intel
                .deny_alone_at
                .is_some_and(|d| m.weight >= d)
            {
                action = ClusterAction::Deny;
            }
        }
        // In shadow mode a denial is reported and the limits are still
        // evaluated, so that their refusals are reported too.
        if action == ClusterAction::Deny && !self.config.shadow {
            verdict.decision = Decision::Deny;
            return verdict;
        }
        let budget = indicator.map(|m| (m.budget, m.weight));
        self.apply_limits(
            req,
            keys,
            action != ClusterAction::None,
            budget,
            &mut verdict,
        );
        verdict
    }

    /// Records every request still waiting for the observer threads
    /// (`background` mode; nothing to do otherwise): afterwards, what the
    /// guard reports (`explain`, `score_of`, a snapshot) counts every
    /// request checked before the call. Snapshots, restores, merges,
    /// `maintain` and `explain` call it themselves.
    pub fn flush(&self) {
        if let Some(o) = &self.observer {
            o.flush();
        }
    }

    /// Requests waiting for the observer threads (0 unless `background`).
    pub fn backlog(&self) -> u64 {
        self.observer.as_ref().map_or(0, Observer::backlog)
    }

    /// Requests that found the observers' queue full and were recorded on
    /// their own thread (0 unless `background`): how often the observers
    /// fell behind.
    pub fn overflowed(&self) -> u64 {
        self.observer.as_ref().map_or(0, Observer::overflowed)
    }

    /// The account's hash and limiter keys. Its limiter and linker cells are
    /// read at once, so that their cache misses overlap those of linking
    /// instead of following them.
    fn account_keys(&self, account: &str) -> AccountKeys {
        let account_hash = self.ev.linker.account_hash(account);
        let keys = AccountKeys {
            account_hash,
            requests: self.limiter.key(account),
            tokens: self.limiter.key(&(account_hash ^ TOKENS)),
        };
        std::hint::black_box(
            self.limiter
                .touch(keys.requests)
                .wrapping_add(self.limiter.touch(keys.tokens))
                .wrapping_add(self.ev.linker.prefetch_account(account_hash)),
        );
        keys
    }

    /// Checks every limit that applies at once (all or nothing): the
    /// account's requests, its tokens, the cluster's shared budget when
    /// `shared`, then one key per limited fingerprint value.
    fn apply_limits(
        &self,
        req: &Request<'_>,
        keys: &AccountKeys,
        shared: bool,
        indicator: Option<(u64, f64)>,
        verdict: &mut Verdict,
    ) {
        let c = &self.config;
        let mut checks = Checks::new((keys.requests, self.account_quota, 1u64));
        let tokens = c.account_tokens_per_minute > 0;
        if tokens {
            let estimate = u64::from(req.input_tokens) + u64::from(req.max_tokens);
            checks.push((keys.tokens, self.token_quota, estimate));
        }
        let cluster_index = checks.len();
        if shared {
            let key = self.limiter.key(&(verdict.cluster.id ^ CLUSTER));
            checks.push((key, self.cluster_quota, 1));
        }
        let indicator_index = checks.len();
        if let Some((budget, weight)) = indicator {
            let quota = self.intel_quotas[(weight.clamp(0.0, 1.0) * 10.0).round() as usize];
            checks.push((self.limiter.key(&(budget ^ INDICATOR)), quota, 1));
            let own = self.limiter.key(&(keys.account_hash ^ MARKED));
            checks.push((own, self.intel_account_quota, 1));
        }
        let first_fingerprint = checks.len();
        if !self.fingerprint_quotas.is_empty() {
            for (kind, value) in req.fingerprints.iter().take(MAX_FINGERPRINTS) {
                if let Some((_, h, q)) = self.fingerprint_quotas.iter().find(|f| f.0 == *kind) {
                    let key = xxh3_64_with_seed(value.as_bytes(), *h) ^ FINGERPRINT;
                    checks.push((self.limiter.key(&key), *q, 1));
                }
            }
        }
        let (d, reservation) = self
            .limiter
            .check_all_reserving(checks.as_slice(), tokens.then_some(1));
        let limited = d.limited_by();
        if limited & if tokens { 0b11 } else { 0b1 } != 0 {
            verdict.reasons.push(Reason::AccountLimit);
        }
        if shared && limited & (1 << cluster_index) != 0 {
            verdict.reasons.push(Reason::ClusterLimit);
        }
        if indicator.is_some() && limited & (0b11 << indicator_index) != 0 {
            verdict.reasons.push(Reason::SharedIndicator);
        }
        if limited >> first_fingerprint.min(63) != 0 {
            verdict.reasons.push(Reason::FingerprintLimit);
        }
        verdict.decision = if d.is_allowed() {
            Decision::Allow
        } else if d.outcome() == Outcome::NeverFits {
            Decision::Deny
        } else {
            Decision::Throttle {
                retry_after: d.retry_after(),
            }
        };
        verdict.remaining = d.remaining();
        verdict.limit = Some(d);
        verdict.reservation = reservation;
    }

    /// Records a request that another node of a fleet decided: its
    /// evidence (links, its cluster's score, its crowds) as if this guard
    /// had seen it, spending no quota and deciding nothing; with
    /// `output_tokens`, the length of its answer when it was served. What
    /// the nodes of a fleet share (`ringfence-fleet`).
    pub fn observe(&self, req: &Request<'_>, output_tokens: Option<u32>) {
        self.observe_with(req, None, output_tokens);
    }

    /// What the other nodes of a fleet need of `req`'s texts to record it
    /// without them ([`TextDigest`]; see [`Guard::observe_digested`]).
    pub fn digest(&self, req: &Request<'_>) -> TextDigest {
        let (bands, system_key) = self.ev.linker.digest_texts(req.prompt, req.system);
        TextDigest {
            bands,
            cot: req.prompt.is_some_and(|p| self.ev.scorer.is_cot(p)),
            system_key,
        }
    }

    /// [`Guard::observe`] of another node's request given with its texts
    /// digested: `req.prompt` and `req.system` are only their heads
    /// ([`text_head`], quoted by explanations), and `digest` is what
    /// [`Guard::digest`] gave for the whole texts on the node that decided
    /// it. Recorded as [`Guard::observe`] would the whole request, when the
    /// nodes share the guard's configuration.
    pub fn observe_digested(
        &self,
        req: &Request<'_>,
        digest: &TextDigest,
        output_tokens: Option<u32>,
    ) {
        self.observe_with(req, Some(digest), output_tokens);
    }

    fn observe_with(
        &self,
        req: &Request<'_>,
        pre: Option<&TextDigest>,
        output_tokens: Option<u32>,
    ) {
        let now = self.now();
        let hash = self.ev.linker.account_hash(req.account);
        let found = self.ev.record(req, hash, now, pre);
        if let Some(out) = output_tokens {
            self.ev
                .scorer
                .record_output(found.cluster.id, req.input_tokens, out, now);
            if let Some(cell) = found.cell {
                self.ev.crowds.settle(cell, now, out);
            }
        }
    }

    /// Records the answer another node of a fleet gave to a request of
    /// `account` (which this guard has recorded, through
    /// [`Guard::observe`]): its length feeds the account's behaviour and
    /// its cluster's output ratio, as [`Guard::settle`] does for this
    /// guard's own answers. An account this guard does not track is left
    /// alone.
    pub fn observe_answer(&self, account: &str, input_tokens: u32, output_tokens: u32) {
        self.observe_answer_of(
            self.ev.linker.account_hash(account),
            input_tokens,
            output_tokens,
        );
    }

    /// [`Guard::observe_answer`] for the account whose hash is `account`
    /// (a [`Settlement::account`] of another node's verdict: the nodes of
    /// a fleet share `link.seed`, so they hash accounts alike).
    pub fn observe_answer_of(&self, account: u64, input_tokens: u32, output_tokens: u32) {
        let now = self.now();
        let hash = account;
        // Its cell and cluster only: nothing here needs their scores.
        let Some((cell, cluster)) = self.ev.linker.standing_of(hash, |_| 0) else {
            return;
        };
        self.ev
            .scorer
            .record_output(cluster.id, input_tokens, output_tokens, now);
        self.ev.crowds.settle(cell, now, output_tokens);
    }

    /// Refuses a request this guard allowed, for a limit kept outside it
    /// (a fleet's global quota: `ringfence-fleet`). The verdict becomes
    /// [`Decision::Throttle`] for `retry_after` with `reason` among its
    /// reasons, and its token reservation is returned whole; nothing is fed
    /// to the scores (no answer was given). A verdict already refused, or
    /// one of another guard, is left as it is.
    pub fn refuse(&self, verdict: &mut Verdict, reason: Reason, retry_after: Duration) {
        if verdict.guard_id != self.id || !verdict.allowed() {
            return;
        }
        if let Some(r) = verdict.reservation.take() {
            let _ = self.limiter.settle(r, 0);
        }
        verdict.decision = Decision::Throttle { retry_after };
        verdict.reasons.push(reason);
        self.counters.overruled(reason);
    }

    /// Records a served request's actual output tokens: settles its token
    /// reservation (refunding what `max_tokens` over-estimated) and feeds
    /// the output/input signal. Settling a refused verdict does nothing.
    pub fn settle(&self, verdict: &Verdict, output_tokens: u32) {
        // A verdict of this guard's: it cannot be foreign.
        let _ = self.settle_token(verdict.settlement(), output_tokens);
    }

    /// [`Guard::settle`] from a verdict's [`Settlement`] token (what the
    /// bindings keep). A refused verdict's token settles nothing; one from
    /// another guard is [`SettleError::ForeignGuard`].
    pub fn settle_token(
        &self,
        settlement: Settlement,
        output_tokens: u32,
    ) -> Result<(), SettleError> {
        if settlement.guard() != self.id {
            return Err(SettleError::ForeignGuard);
        }
        if !settlement.is_served() {
            return Ok(());
        }
        let now = self.now();
        let actual = u64::from(settlement.input_tokens()) + u64::from(output_tokens);
        let reservation = settlement.reservation();
        if let Some(r) = reservation {
            // A reservation naming another limiter (words changed on the
            // way) settles nothing.
            let _ = self.limiter.settle(r, actual);
        }
        self.counters
            .settled(reservation.map(|r| r.reserved()), actual);
        self.ev.scorer.record_output(
            settlement.cluster(),
            settlement.input_tokens(),
            output_tokens,
            now,
        );
        // A verdict decided on standing before its account was first
        // recorded has no cell; its cluster is then the account alone, by
        // its hash, recorded since (a response comes long after the
        // observers took the request).
        let cell = settlement.account_cell().or_else(|| {
            (self.config.observe.mode == ObserveMode::Background)
                .then(|| self.ev.linker.account_cell(settlement.cluster()))
                .flatten()
        });
        if let Some(cell) = cell {
            self.ev.crowds.settle(cell, now, output_tokens);
        }
        Ok(())
    }

    /// Bytes the guard holds: its tables (allocated at construction, sized
    /// by the configuration) plus the names and texts kept for explanations.
    pub fn memory_bytes(&self) -> usize {
        self.ev.linker.stats().bytes
            + self.ev.scorer.bytes()
            + self.ev.crowds.bytes()
            + self.limiter.memory_bytes()
    }

    /// How full the linker's tables are.
    pub fn link_stats(&self) -> crate::link::LinkStats {
        self.ev.linker.stats()
    }

    /// Forgets expired evidence and rebuilds the clusters now (finishing a
    /// maintenance cycle in progress first). The guard does this by itself
    /// every `link.rebuild_every_secs`, a bounded step at a time taken by
    /// one request in four while a cycle runs (each step about 10 µs, under
    /// an exclusive lock that other threads' requests wait for), so a
    /// gateway need not call it. It releases the lock between steps, but a
    /// thread calling it in a loop keeps requests waiting for its steps and
    /// for the hand-over of the lock (92 µs at the median on two cores,
    /// `cargo bench --bench realistic`): call it rarely, or before a
    /// snapshot.
    pub fn maintain(&self) {
        self.flush();
        self.ev.linker.rebuild_now(self.now());
    }

    /// The current score of `account`'s cluster, or of the crowd that
    /// stands in for it when that scores higher (as in its verdicts); a
    /// cluster of size 0 and score 0 if the account is unknown.
    pub fn score_of(&self, account: &str) -> (ClusterView, f64) {
        self.flush();
        let now = self.now();
        let Some(c) = self.ev.linker.cluster_of(account) else {
            return (ClusterView { id: 0, size: 0 }, 0.0);
        };
        let score = self
            .ev
            .scorer
            .signals_of(c.id, now)
            .map_or(0.0, |s| s.score);
        match self.crowd_of(account, now) {
            Some(v) if v.score > score => (v.cluster(), v.score),
            _ => (c, score),
        }
    }

    /// What the crowds say of `account` now, if it has behaviour recorded.
    fn crowd_of(&self, account: &str, now: f64) -> Option<crate::crowd::CrowdVerdict> {
        let hash = self.ev.linker.account_hash(account);
        let cell = self.ev.linker.account_cell(hash)?;
        self.ev.crowds.of(cell, hash, now)
    }
}
