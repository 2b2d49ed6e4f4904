//! Quotas that hold across the fleet: [`GlobalLimits`].
//!
//! The store (Redis) holds each key's GCRA state; every node asks it
//! rarely:
//!
//! 1. **A lease.** A node takes `lease` units of a key at once and spends
//!    them locally, renewing on its sync thread when half are spent, so a
//!    busy key costs one round trip per `lease` requests, off the request
//!    path.
//! 2. **The node's share.** A key with no lease left is admitted locally
//!    within `1/nodes` of its quota (its own GCRA cell), and what was
//!    admitted is debited from the store on the next sync: a quiet key
//!    never waits on the network.
//! 3. **A round trip** (at most `timeout_ms`) when both are spent: the
//!    store grants a new lease or says how long to wait, and the node
//!    remembers that wait so it does not ask again before it ends.
//!
//! **Overshoot.** Over any window of `W` seconds a key of rate `r` and
//! burst `b` is admitted at most `r·W + b` times by the store, plus what
//! the nodes hold or have admitted without it yet: up to `lease − 1`
//! unspent leased units each, and their share's admissions not yet
//! debited (its burst `⌈b/nodes⌉`, and `r/nodes` a second for one sync
//! interval `s`). Admitted ≤ `r·(W + s) + b + nodes·(lease − 1) +
//! nodes·⌈b/nodes⌉`. The debits are forced, so what the shares admitted
//! is paid back from later windows: over long runs the rate holds.
//!
//! **Failure.** A store that does not answer within `timeout_ms` (or is
//! known to be down) makes the node fall back at once: `open` serves on
//! the node's own limits and debits what it served when the store
//! returns; `closed` refuses beyond the node's share. Each fallback is
//! counted; an incident is reported once when it starts and once when it
//! ends ([`GlobalLimits::on_incident`]).

use crate::config::{FailMode, FleetConfig};
use crate::store::{Grant, QuotaStore, Rule, StoreError, Take, PIPELINE_TAKES};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The fleet's time: microseconds since the Unix epoch, shared by every
/// node (through NTP) and by the store's keys.
pub trait WallClock: Send + Sync {
    /// Microseconds since the Unix epoch.
    fn now_us(&self) -> u64;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now_us(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

/// A clock set by hand (tests, and replays in trace time).
#[derive(Debug, Default)]
pub struct ManualWallClock(AtomicU64);

impl ManualWallClock {
    /// A clock reading `now_us`.
    pub fn new(now_us: u64) -> ManualWallClock {
        ManualWallClock(AtomicU64::new(now_us))
    }
    /// Sets the time.
    pub fn set(&self, now_us: u64) {
        self.0.store(now_us, Relaxed);
    }
    /// Moves the time on.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(u64::try_from(by.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }
}

impl WallClock for ManualWallClock {
    fn now_us(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// How a request was admitted, or why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// From the node's lease of the key.
    Lease,
    /// Within the node's own share of the key's quota.
    Share,
    /// From a lease taken from the store for this request.
    Store,
    /// The store could not answer and the failure mode is `open`.
    FailedOpen,
    /// Refused: the fleet's quota is spent; try again after this long.
    Refused(Duration),
    /// Refused: the store could not answer, the failure mode is `closed`
    /// and the node's share is spent.
    FailedClosed(Duration),
}

impl Admission {
    /// Whether to serve the request.
    pub fn allowed(&self) -> bool {
        !matches!(self, Admission::Refused(_) | Admission::FailedClosed(_))
    }

    /// How long to wait before trying again (zero when allowed).
    pub fn retry_after(&self) -> Duration {
        match *self {
            Admission::Refused(d) | Admission::FailedClosed(d) => d,
            _ => Duration::ZERO,
        }
    }
}

/// Counts kept by a node (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Admitted from a lease held.
    pub from_lease: u64,
    /// Admitted within the node's share.
    pub from_share: u64,
    /// Admitted from a lease taken for the request.
    pub from_store: u64,
    /// Refused because the fleet's quota was spent.
    pub refused: u64,
    /// Requests decided by the failure mode (`open` or `closed`).
    pub fallbacks: u64,
    /// Round trips on a request's path.
    pub round_trips: u64,
    /// Round trips on the sync thread (renewals and debits).
    pub sync_round_trips: u64,
    /// Units debited from the store for what the node admitted alone.
    pub debited: u64,
    /// Store answers that failed (unreachable, timed out, bad reply).
    pub store_errors: u64,
    /// Keys whose stored value was not a time and was replaced.
    pub repaired: u64,
    /// Incidents: runs of failures, each reported once.
    pub incidents: u64,
}

#[derive(Default)]
struct Counters {
    from_lease: AtomicU64,
    from_share: AtomicU64,
    from_store: AtomicU64,
    refused: AtomicU64,
    fallbacks: AtomicU64,
    round_trips: AtomicU64,
    sync_round_trips: AtomicU64,
    debited: AtomicU64,
    store_errors: AtomicU64,
    repaired: AtomicU64,
    incidents: AtomicU64,
}

/// One key's state on this node.
struct Lease {
    rule: Rule,
    /// Leased units not yet spent.
    tokens: u64,
    /// Refused by the store until then (µs).
    denied_until: u64,
    /// The node's share: its own GCRA arrival time (µs).
    share_tat: u64,
    /// Units admitted without the store, not yet debited.
    unreported: u64,
    /// A renewal is queued or running.
    renewing: bool,
    /// Queued for a debit.
    dirty: bool,
    /// Units a request of this key costs (1, or a request's reserved
    /// tokens): a lease is `lease` requests' worth.
    unit: u64,
    last_us: u64,
}

const SHARDS: usize = 64;

/// A shard of the node's keys (their hashes already: ahash only mixes).
type LeaseMap = HashMap<u64, Lease, ahash::RandomState>;

type Reporter = Box<dyn Fn(&str) + Send + Sync>;

struct Inner {
    store: Arc<dyn QuotaStore>,
    config: FleetConfig,
    clock: Arc<dyn WallClock>,
    shards: Box<[Mutex<LeaseMap>]>,
    /// Keys to renew and keys to debit, for the sync thread.
    renew: Mutex<Vec<u64>>,
    debit: Mutex<Vec<u64>>,
    counters: Counters,
    /// Since when the store is failing (µs; 0: it is not), and how many
    /// fallbacks this incident.
    incident: Mutex<(u64, u64)>,
    report: Mutex<Reporter>,
    stop: AtomicBool,
}

/// Fleet-wide quotas over a [`QuotaStore`] (see the module docs).
pub struct GlobalLimits {
    inner: Arc<Inner>,
    sync: Option<JoinHandle<()>>,
}

impl GlobalLimits {
    /// Quotas kept in `store`, with no sync thread: call
    /// [`GlobalLimits::sync_now`] (replays, tests) or
    /// [`GlobalLimits::start`].
    pub fn new(
        store: Arc<dyn QuotaStore>,
        config: FleetConfig,
        clock: Arc<dyn WallClock>,
    ) -> GlobalLimits {
        let node = config.node.clone();
        GlobalLimits {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                shards: (0..SHARDS)
                    .map(|_| Mutex::new(LeaseMap::default()))
                    .collect(),
                renew: Mutex::new(Vec::new()),
                debit: Mutex::new(Vec::new()),
                counters: Counters::default(),
                incident: Mutex::new((0, 0)),
                report: Mutex::new(Box::new(move |m: &str| {
                    eprintln!("ringfence-fleet [{node}]: {m}");
                })),
                stop: AtomicBool::new(false),
            }),
            sync: None,
        }
    }

    /// Starts the sync thread: every `sync_interval_ms` it renews leases
    /// and debits what the node admitted alone.
    #[must_use]
    pub fn start(mut self) -> GlobalLimits {
        if self.sync.is_none() {
            let inner = Arc::clone(&self.inner);
            let pause = Duration::from_millis(inner.config.sync_interval_ms);
            self.sync = std::thread::Builder::new()
                .name("ringfence-fleet-sync".into())
                .spawn(move || {
                    while !inner.stop.load(Relaxed) {
                        inner.sync();
                        std::thread::park_timeout(pause);
                    }
                })
                .ok();
        }
        self
    }

    /// Where incidents are reported (default: standard error), once when
    /// the store starts failing and once when it answers again.
    pub fn on_incident(&self, report: impl Fn(&str) + Send + Sync + 'static) {
        *self.inner.report.lock() = Box::new(report);
    }

    /// The configuration.
    pub fn config(&self) -> &FleetConfig {
        &self.inner.config
    }

    /// Admits one request against key `key` (a hash: see
    /// [`crate::key_hash`]) of quota `rule`.
    pub fn admit(&self, key: u64, rule: Rule) -> Admission {
        self.inner.admit(key, rule, 1)
    }

    /// Admits `cost` units at once (a request's reserved tokens), all or
    /// none, against key `key` of quota `rule`.
    pub fn admit_units(&self, key: u64, rule: Rule, cost: u64) -> Admission {
        self.inner.admit(key, rule, cost.max(1))
    }

    /// Gives back `units` admitted but not used (a token reservation
    /// settled below its estimate): they return to this node's lease of
    /// the key, for its next requests. Units of a key forgotten since are
    /// lost (the fleet admits less, never more).
    pub fn refund(&self, key: u64, units: u64) {
        if let Some(l) = self.inner.shard(key).lock().get_mut(&key) {
            l.tokens += units;
        }
    }

    /// Charges `units` used past what was admitted (an answer longer than
    /// its reservation): debited from the store at the next sync.
    pub fn charge(&self, key: u64, units: u64) {
        if units == 0 {
            return;
        }
        let mut shard = self.inner.shard(key).lock();
        if let Some(l) = shard.get_mut(&key) {
            self.inner.note_unreported(key, l, units);
        }
    }

    /// Renews the leases that need it, debits what was admitted alone,
    /// and forgets idle keys, now (what the sync thread does).
    pub fn sync_now(&self) {
        self.inner.sync();
    }

    /// The counts so far.
    pub fn stats(&self) -> FleetStats {
        let c = &self.inner.counters;
        FleetStats {
            from_lease: c.from_lease.load(Relaxed),
            from_share: c.from_share.load(Relaxed),
            from_store: c.from_store.load(Relaxed),
            refused: c.refused.load(Relaxed),
            fallbacks: c.fallbacks.load(Relaxed),
            round_trips: c.round_trips.load(Relaxed),
            sync_round_trips: c.sync_round_trips.load(Relaxed),
            debited: c.debited.load(Relaxed),
            store_errors: c.store_errors.load(Relaxed),
            repaired: c.repaired.load(Relaxed),
            incidents: c.incidents.load(Relaxed),
        }
    }

    /// The store's name for key hash `key`.
    pub fn store_key(&self, key: u64) -> String {
        self.inner.name(key)
    }

    /// Keys this node holds state for.
    pub fn keys(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Units admitted without the store and not yet debited, over all keys.
    pub fn unreported(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().values().map(|l| l.unreported).sum::<u64>())
            .sum()
    }
}

impl Drop for GlobalLimits {
    fn drop(&mut self) {
        self.inner.stop.store(true, Relaxed);
        if let Some(h) = self.sync.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Inner {
    fn shard(&self, key: u64) -> &Mutex<LeaseMap> {
        &self.shards[(key >> 58) as usize % SHARDS]
    }

    /// The store's name for `key`: hash-tagged, so that Redis Cluster and
    /// Valkey cluster place it by its hash.
    fn name(&self, key: u64) -> String {
        format!("{}:q:{{{key:016x}}}", self.config.prefix)
    }

    /// The node's share of `rule`: `1/nodes` of its rate and burst (at
    /// least one unit).
    fn share(&self, rule: Rule) -> Rule {
        let n = u64::from(self.config.nodes.max(1));
        Rule {
            interval_us: rule.interval_us.saturating_mul(n),
            burst: rule.burst.div_ceil(n).min(rule.burst),
        }
    }

    fn admit(&self, key: u64, rule: Rule, cost: u64) -> Admission {
        let now = self.clock.now_us();
        let c = &self.counters;
        let lease = u64::from(self.config.lease).saturating_mul(cost);
        let debit;
        {
            let mut shard = self.shard(key).lock();
            let l = shard.entry(key).or_insert(Lease {
                rule,
                tokens: 0,
                denied_until: 0,
                share_tat: 0,
                unreported: 0,
                renewing: false,
                dirty: false,
                unit: cost,
                last_us: now,
            });
            l.rule = rule;
            l.unit = cost;
            l.last_us = now;
            if l.tokens >= cost {
                l.tokens -= cost;
                if 2 * l.tokens <= lease && !l.renewing && lease > cost {
                    l.renewing = true;
                    self.renew.lock().push(key);
                }
                c.from_lease.fetch_add(1, Relaxed);
                return Admission::Lease;
            }
            if now < l.denied_until {
                c.refused.fetch_add(1, Relaxed);
                return Admission::Refused(Duration::from_micros(l.denied_until - now));
            }
            let share = self.share(rule);
            let (grant, tat) = crate::store::gcra_take(Some(l.share_tat), share, cost, 0, now);
            if grant.granted == cost {
                l.share_tat = tat.unwrap_or(l.share_tat);
                self.note_unreported(key, l, cost);
                c.from_share.fetch_add(1, Relaxed);
                return Admission::Share;
            }
            // Both spent: the store is asked for a lease, and told in the
            // same call what the node admitted alone.
            debit = std::mem::take(&mut l.unreported);
        }
        c.round_trips.fetch_add(1, Relaxed);
        let answer = self.store.take(&self.name(key), rule, lease, debit, now);
        if answer.is_ok() {
            c.debited.fetch_add(debit, Relaxed);
        }
        let mut shard = self.shard(key).lock();
        if answer.is_err() {
            if let Some(l) = shard.get_mut(&key) {
                l.unreported += debit;
            }
        }
        let Some(l) = shard.get_mut(&key) else {
            // Forgotten meanwhile (idle): decide on the answer alone.
            return match answer {
                Ok(g) if g.granted >= cost => Admission::Store,
                Ok(g) => Admission::Refused(Duration::from_micros(g.retry_us)),
                Err(_) => self.fallback_without_cell(),
            };
        };
        match answer {
            Ok(g) => {
                drop(shard);
                self.note_ok(g.repaired);
                let mut shard = self.shard(key).lock();
                let Some(l) = shard.get_mut(&key) else {
                    return if g.granted >= cost {
                        Admission::Store
                    } else {
                        Admission::Refused(Duration::from_micros(g.retry_us))
                    };
                };
                l.tokens += g.granted;
                if l.tokens >= cost {
                    l.tokens -= cost;
                    c.from_store.fetch_add(1, Relaxed);
                    Admission::Store
                } else {
                    // Until the units still missing fit.
                    let missing = cost - l.tokens;
                    let wait = g
                        .retry_us
                        .saturating_add((missing - 1).saturating_mul(rule.interval_us));
                    l.denied_until = now.saturating_add(wait);
                    c.refused.fetch_add(1, Relaxed);
                    Admission::Refused(Duration::from_micros(wait))
                }
            }
            Err(e) => {
                let mode = self.config.fail;
                let admission = match mode {
                    FailMode::Open => {
                        self.note_unreported(key, l, cost);
                        Admission::FailedOpen
                    }
                    FailMode::Closed => {
                        Admission::FailedClosed(Duration::from_millis(self.config.sync_interval_ms))
                    }
                };
                drop(shard);
                self.note_failure(&e);
                c.fallbacks.fetch_add(1, Relaxed);
                admission
            }
        }
    }

    /// `takes` in pipelined round trips, counted.
    fn take_all(&self, takes: &[Take], now: u64) -> Vec<Result<Grant, StoreError>> {
        if takes.is_empty() {
            return Vec::new();
        }
        self.counters
            .sync_round_trips
            .fetch_add(takes.len().div_ceil(PIPELINE_TAKES) as u64, Relaxed);
        self.store.take_many(takes, now)
    }

    fn fallback_without_cell(&self) -> Admission {
        self.counters.fallbacks.fetch_add(1, Relaxed);
        match self.config.fail {
            FailMode::Open => Admission::FailedOpen,
            FailMode::Closed => {
                Admission::FailedClosed(Duration::from_millis(self.config.sync_interval_ms))
            }
        }
    }

    fn note_unreported(&self, key: u64, l: &mut Lease, n: u64) {
        l.unreported += n;
        if !l.dirty {
            l.dirty = true;
            self.debit.lock().push(key);
        }
    }

    fn note_ok(&self, repaired: bool) {
        if repaired {
            self.counters.repaired.fetch_add(1, Relaxed);
        }
        let ended = {
            let mut i = self.incident.lock();
            if i.0 == 0 {
                return;
            }
            let ended = *i;
            *i = (0, 0);
            ended
        };
        let secs = self.clock.now_us().saturating_sub(ended.0) as f64 / 1e6;
        (self.report.lock())(&format!(
            "the quota store answers again after {secs:.1} s; {} request(s) were decided by the failure mode ({:?})",
            ended.1, self.config.fail
        ));
    }

    fn note_failure(&self, e: &StoreError) {
        self.counters.store_errors.fetch_add(1, Relaxed);
        let started = {
            let mut i = self.incident.lock();
            i.1 += 1;
            if i.0 != 0 {
                return;
            }
            i.0 = self.clock.now_us().max(1);
            true
        };
        if started {
            self.counters.incidents.fetch_add(1, Relaxed);
            (self.report.lock())(&format!(
                "{e}; deciding by the failure mode ({:?}) until it answers",
                self.config.fail
            ));
        }
    }

    fn sync(&self) {
        let now = self.clock.now_us();
        let lease = u64::from(self.config.lease);
        // Renewals and debits of what was admitted alone, each batch in
        // one pipelined round trip (see `QuotaStore::take_many`).
        let renew = std::mem::take(&mut *self.renew.lock());
        let mut keys = Vec::with_capacity(renew.len());
        let mut takes = Vec::with_capacity(renew.len());
        for key in renew {
            if let Some(l) = self.shard(key).lock().get_mut(&key) {
                keys.push(key);
                takes.push(Take {
                    key: self.name(key),
                    rule: l.rule,
                    want: lease.saturating_mul(l.unit),
                    debit: std::mem::take(&mut l.unreported),
                });
            }
        }
        let answers = self.take_all(&takes, now);
        for ((key, take), answer) in keys.into_iter().zip(&takes).zip(answers) {
            if let Ok(g) = &answer {
                self.note_ok(g.repaired);
                self.counters.debited.fetch_add(take.debit, Relaxed);
            }
            let mut shard = self.shard(key).lock();
            if let Some(l) = shard.get_mut(&key) {
                l.renewing = false;
                match answer {
                    Ok(g) if g.granted > 0 => l.tokens += g.granted,
                    Ok(g) => l.denied_until = now.saturating_add(g.retry_us),
                    Err(e) => {
                        l.unreported += take.debit;
                        drop(shard);
                        self.note_failure(&e);
                    }
                }
            }
        }
        // Debits of what was admitted alone (kept until the store takes them).
        let debit = std::mem::take(&mut *self.debit.lock());
        let mut keys = Vec::with_capacity(debit.len());
        let mut takes = Vec::with_capacity(debit.len());
        for key in debit {
            if let Some(l) = self.shard(key).lock().get_mut(&key) {
                let n = std::mem::take(&mut l.unreported);
                if n == 0 {
                    l.dirty = false;
                    continue;
                }
                keys.push(key);
                takes.push(Take {
                    key: self.name(key),
                    rule: l.rule,
                    want: 0,
                    debit: n,
                });
            }
        }
        let answers = self.take_all(&takes, now);
        let mut again = Vec::new();
        for ((key, take), answer) in keys.into_iter().zip(&takes).zip(answers) {
            match answer {
                Ok(g) => {
                    self.note_ok(g.repaired);
                    self.counters.debited.fetch_add(take.debit, Relaxed);
                    if let Some(l) = self.shard(key).lock().get_mut(&key) {
                        l.dirty = l.unreported > 0;
                        if l.dirty {
                            again.push(key);
                        }
                    }
                }
                Err(e) => {
                    // Put the units back; a debit that reached the store
                    // but whose answer was lost is counted twice (at most
                    // one batch per key per failure).
                    if let Some(l) = self.shard(key).lock().get_mut(&key) {
                        l.unreported += take.debit;
                    }
                    again.push(key);
                    self.note_failure(&e);
                }
            }
        }
        self.debit.lock().extend(again);
        // Forget idle keys with nothing to report.
        let idle = self.config.idle_secs.saturating_mul(1_000_000);
        for s in self.shards.iter() {
            s.lock().retain(|_, l| {
                l.unreported > 0 || l.renewing || now.saturating_sub(l.last_us) < idle
            });
        }
    }
}
