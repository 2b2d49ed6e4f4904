//! The keyed rate limiter.

use super::decision::{LimitDecision, Outcome};
use super::gcra;
use super::key::{Key, KeyId};
use super::reservation::Reservation;
use super::table::{Fp, Slot, Table, TableStats};
use super::{Clock, Quota, SystemClock};
use ahash::AHashMap;
use parking_lot::RwLock;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;

#[cfg(all(test, loom))]
mod loom_tests;
mod snapshot;

/// Seed used when none is configured (the bytes of `"RFLIMIT!"`).
pub const DEFAULT_LIMIT_SEED: u64 = u64::from_be_bytes(*b"RFLIMIT!");
/// Keys a table holds unless configured otherwise (about 2 MiB).
pub const DEFAULT_CAPACITY: usize = 100_000;
/// The largest capacity a table accepts (larger requests are clamped to it).
pub const MAX_CAPACITY: usize = u32::MAX as usize;

/// Why a limiter call could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitError {
    /// A reservation was settled on a limiter other than the one that made it.
    ForeignReservation,
    /// A snapshot could not be restored: what was wrong, and where.
    Snapshot(String),
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::ForeignReservation => write!(
                f,
                "this reservation was made by another rate limiter; settle it on the limiter that reserved it"
            ),
            LimitError::Snapshot(why) => write!(f, "cannot restore the rate limiter snapshot: {why}"),
        }
    }
}
impl std::error::Error for LimitError {}

static NEXT_LIMITER_ID: AtomicU64 = AtomicU64::new(1);

/// Builds a [`RateLimiter`]; see [`RateLimiter::builder`].
pub struct Builder {
    quota: Quota,
    capacity: usize,
    seed: u64,
    clock: Arc<dyn Clock>,
    shadow: bool,
}

impl Builder {
    /// The most keys held at once (default 100,000; about 21 bytes each,
    /// allocated up front). Clamped to `1..=MAX_CAPACITY` (2^32 − 1).
    #[must_use]
    pub fn capacity(mut self, keys: usize) -> Self {
        self.capacity = keys.clamp(1, MAX_CAPACITY);
        self
    }
    /// The seed of the key fingerprints; keep it secret where keys are chosen
    /// by clients, so nobody can aim keys at one shard.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The clock (default: [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Starts in shadow mode: refusals are reported, not enforced.
    #[must_use]
    pub fn shadow(mut self, on: bool) -> Self {
        self.shadow = on;
        self
    }
    /// The limiter. Its time origin is the clock's time now: arrival times
    /// are stored as 56-bit nanoseconds from there. Its horizon is 2^56 −
    /// 2^55 ns, about 13 months after creation; past it the limiter fails
    /// open (admits everything) rather than blocking every key. Restart
    /// long-lived limiters (or restore them from a snapshot) within a year.
    pub fn build(self) -> RateLimiter {
        RateLimiter {
            epoch: self.clock.now(),
            table: Table::new(self.capacity),
            default_quota: self.quota,
            seed: self.seed,
            clock: self.clock,
            shadow: AtomicBool::new(self.shadow),
            overrides: RwLock::new(AHashMap::new()),
            override_count: AtomicUsize::new(0),
            id: NEXT_LIMITER_ID.fetch_add(1, Relaxed),
        }
    }
}

/// A keyed GCRA rate limiter in bounded memory.
///
/// - **Fast, lock-free checks.** A key's whole state is one `AtomicU64` (its
///   theoretical arrival time), updated by compare-and-swap; finding an
///   existing key's cell takes no lock and allocates nothing. Only a new key
///   takes its shard's mutex, to claim a cell.
/// - **Bounded memory, no sweeping.** The table holds at most `capacity`
///   keys, allocated up front. A new key reuses a cell whose arrival time has
///   passed (such a cell is identical to a fresh one, so nothing is lost);
///   only if every cell of its shard is live is the one nearest to expiry
///   evicted, and counted in [`RateLimiter::stats`].
/// - **Costs and reservations.** `check(key, cost)` debits requests or
///   tokens; cost 0 peeks. [`RateLimiter::reserve`] debits an estimate and
///   [`RateLimiter::settle`] corrects it when the real cost is known. A cost
///   above the burst is [`Outcome::NeverFits`], not an endless retry.
/// - **All-or-nothing** over several keys with [`RateLimiter::check_all`].
/// - **Per-key quotas** ([`RateLimiter::set_quota`], or a quota per call),
///   changeable at run time without losing a key's state.
/// - **Shadow mode** ([`RateLimiter::set_shadow`]) and an injectable [`Clock`].
///
/// ```
/// use ringfence::limit::{ManualClock, Outcome, Quota, RateLimiter};
/// use std::{sync::Arc, time::Duration};
///
/// let clock = Arc::new(ManualClock::new());
/// let limiter = RateLimiter::builder(Quota::per_second(2).allow_burst(3))
///     .capacity(10_000)
///     .clock(clock.clone())
///     .build();
///
/// for _ in 0..3 {
///     assert!(limiter.check("acct-1", 1).is_allowed());
/// }
/// let refused = limiter.check("acct-1", 1);
/// assert_eq!(refused.outcome(), Outcome::Refused);
/// assert_eq!(refused.retry_after(), Duration::from_millis(500));
/// assert_eq!(limiter.check("acct-1", 4).outcome(), Outcome::NeverFits);
///
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.check("acct-1", 1).is_allowed());
/// ```
pub struct RateLimiter {
    /// The clock's reading at creation; times are kept relative to it.
    epoch: u64,
    table: Table,
    default_quota: Quota,
    seed: u64,
    clock: Arc<dyn Clock>,
    shadow: AtomicBool,
    overrides: RwLock<AHashMap<KeyId, Quota>>,
    override_count: AtomicUsize,
    id: u64,
}

impl RateLimiter {
    /// A limiter with the default capacity, seed and system clock.
    pub fn new(default_quota: Quota) -> RateLimiter {
        Self::builder(default_quota).build()
    }

    /// Starts building a limiter whose keys get `default_quota` unless
    /// given their own.
    pub fn builder(default_quota: Quota) -> Builder {
        Builder {
            quota: default_quota,
            capacity: DEFAULT_CAPACITY,
            seed: DEFAULT_LIMIT_SEED,
            clock: Arc::new(SystemClock::new()),
            shadow: false,
        }
    }

    /// The shard `key` lives in, for the keyed-hashing test.
    #[cfg(test)]
    pub(crate) fn shard_of(&self, key: KeyId) -> usize {
        self.table.shard_of(key.0)
    }

    /// Shards of the limiter's table, for the keyed-hashing test.
    #[cfg(test)]
    pub(crate) fn table_shards(&self) -> usize {
        self.table.shard_count()
    }

    /// The fingerprint of `key` in this limiter.
    #[inline]
    pub fn key<K: Key + ?Sized>(&self, key: &K) -> KeyId {
        key.key_id(self.seed)
    }

    /// The quota `key` is limited by: its own, or the default.
    pub fn quota_of<K: Key + ?Sized>(&self, key: &K) -> Quota {
        self.quota_for(self.key(key))
    }

    #[inline]
    fn quota_for(&self, id: KeyId) -> Quota {
        if self.override_count.load(Relaxed) == 0 {
            return self.default_quota;
        }
        self.overrides
            .read()
            .get(&id)
            .copied()
            .unwrap_or(self.default_quota)
    }

    /// Gives `key` its own quota (its state, the arrival time, is kept).
    pub fn set_quota<K: Key + ?Sized>(&self, key: &K, quota: Quota) {
        let mut o = self.overrides.write();
        o.insert(self.key(key), quota);
        self.override_count.store(o.len(), Relaxed);
    }

    /// Returns `key` to the default quota.
    pub fn clear_quota<K: Key + ?Sized>(&self, key: &K) {
        let mut o = self.overrides.write();
        o.remove(&self.key(key));
        self.override_count.store(o.len(), Relaxed);
    }

    /// The default quota.
    pub fn default_quota(&self) -> Quota {
        self.default_quota
    }

    /// Turns shadow mode on or off: in shadow mode refusals are reported
    /// ([`LimitDecision::would_refuse`]) but [`LimitDecision::is_allowed`] is true. A
    /// refused request is not debited, so the state is what enforcement
    /// would have left.
    pub fn set_shadow(&self, on: bool) {
        self.shadow.store(on, Relaxed);
    }

    /// Whether shadow mode is on.
    pub fn is_shadow(&self) -> bool {
        self.shadow.load(Relaxed)
    }

    /// The limiter's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Nanoseconds since the limiter's creation (0 if the clock is behind it).
    #[inline]
    fn now(&self) -> u64 {
        self.clock.now().saturating_sub(self.epoch)
    }

    /// Table size, capacity, reclaimed cells and evictions.
    pub fn stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Keys with a cell now (at most the capacity).
    pub fn len(&self) -> usize {
        self.table.stats().len
    }

    /// Whether no key has a cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `key`'s cell ahead of a check, so that its cache miss overlaps
    /// other work (the Guard touches all of a request's keys at once).
    #[inline]
    pub(crate) fn touch(&self, key: KeyId) -> u64 {
        self.table.touch(key.0)
    }

    /// Bytes the limiter holds (all allocated at construction).
    pub fn memory_bytes(&self) -> usize {
        self.table.bytes() + std::mem::size_of::<Self>()
    }

    /// The most keys it holds (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Checks `key` for `cost` units under its quota, debiting them if they
    /// fit. `cost = 0` peeks: nothing is debited.
    #[inline]
    pub fn check<K: Key + ?Sized>(&self, key: &K, cost: u64) -> LimitDecision {
        let id = self.key(key);
        self.check_id(id, self.quota_for(id), cost)
    }

    /// Checks `key` for `cost` units under `quota` (for callers that choose
    /// the quota per request, e.g. by account tier).
    #[inline]
    pub fn check_with<K: Key + ?Sized>(&self, key: &K, quota: Quota, cost: u64) -> LimitDecision {
        self.check_id(self.key(key), quota, cost)
    }

    fn check_id(&self, id: KeyId, quota: Quota, cost: u64) -> LimitDecision {
        let now = self.now();
        let d = self.apply(id, now, |tat| gcra::test(tat, now, &quota, cost));
        self.shadowed(d)
    }

    #[inline]
    fn shadowed(&self, mut d: LimitDecision) -> LimitDecision {
        d.shadow = self.shadow.load(Relaxed);
        d
    }

    /// Runs `f` on the key's TAT and stores the TAT it returns, retrying on
    /// contention. A key without a cell is treated as fresh and gets a cell
    /// only if `f` changes its state.
    #[inline]
    fn apply(&self, id: KeyId, now: u64, f: impl Fn(u64) -> (LimitDecision, u64)) -> LimitDecision {
        loop {
            let mut slot = match self.table.find(id.0) {
                Some(slot) => slot,
                None => {
                    let (d, next) = f(0);
                    if next == 0 {
                        // Nothing to write for a fresh key; but the lock-free
                        // lookup can miss a key whose shard is being
                        // rewritten, so make sure under the lock.
                        match self.table.find_locked(id.0) {
                            Some(slot) => slot,
                            None => return d,
                        }
                    } else {
                        let mut decided = None;
                        let (slot, placed) = self.table.find_or_insert(id.0, now, |start| {
                            let (d, next) = f(start);
                            decided = Some(d);
                            next
                        });
                        match decided {
                            Some(d) if placed => return d,
                            _ => slot,
                        }
                    }
                }
            };
            match Self::update(&mut slot, &f) {
                Some(d) => return d,
                None => continue, // the cell was reassigned under us
            }
        }
    }

    #[inline]
    /// The key's TAT now (0 if it has no cell), found under the lock if the
    /// lock-free lookup misses.
    fn current_tat(&self, id: KeyId) -> u64 {
        self.table
            .find(id.0)
            .or_else(|| self.table.find_locked(id.0))
            .map_or(0, |s| s.tat())
    }

    fn update(
        slot: &mut Slot<'_>,
        f: &impl Fn(u64) -> (LimitDecision, u64),
    ) -> Option<LimitDecision> {
        loop {
            let tat = slot.tat();
            let (d, next) = f(tat);
            if next == tat {
                return Some(d);
            }
            match slot.replace(next) {
                Ok(()) => return Some(d),
                Err(true) => continue,
                Err(false) => return None,
            }
        }
    }

    /// Debits `estimate` units from `key` if they fit, returning a
    /// reservation to settle later; else the refusing decision.
    pub fn reserve<K: Key + ?Sized>(
        &self,
        key: &K,
        estimate: u64,
    ) -> Result<(Reservation, LimitDecision), LimitDecision> {
        let id = self.key(key);
        self.reserve_with(&id, self.quota_for(id), estimate)
    }

    /// [`RateLimiter::reserve`] under an explicit quota.
    pub fn reserve_with<K: Key + ?Sized>(
        &self,
        key: &K,
        quota: Quota,
        estimate: u64,
    ) -> Result<(Reservation, LimitDecision), LimitDecision> {
        let id = self.key(key);
        let now = self.now();
        let d = self.shadowed(self.apply(id, now, |tat| gcra::test(tat, now, &quota, estimate)));
        if d.outcome != Outcome::Allowed {
            return Err(d);
        }
        let r = Reservation {
            key: id,
            quota,
            reserved: estimate,
            limiter: self.id,
            tat_after: now + d.ahead_ns,
        };
        Ok((r, d))
    }

    /// Settles a reservation at its `actual` cost: refunds the difference
    /// if `actual` is smaller, debits it (unconditionally: the usage has
    /// happened) if larger. Returns the key's state afterwards.
    ///
    /// A refund gives back at most the part of the reserved debt that has
    /// not yet elapsed: once the bucket has refilled past the reservation,
    /// the unused units are already back, and refunding them again would
    /// credit later requests.
    pub fn settle(
        &self,
        reservation: Reservation,
        actual: u64,
    ) -> Result<LimitDecision, LimitError> {
        if reservation.limiter != self.id {
            return Err(LimitError::ForeignReservation);
        }
        let now = self.now();
        let q = reservation.quota;
        let d = self.apply(reservation.key, now, |tat| {
            let next = if actual < reservation.reserved {
                let outstanding = reservation.tat_after.saturating_sub(now);
                gcra::refund(tat, &q, reservation.reserved - actual, outstanding)
            } else {
                gcra::force_debit(tat, now, &q, actual - reservation.reserved)
            };
            (gcra::decision(Outcome::Allowed, next, now, &q, 0), next)
        });
        Ok(self.shadowed(d))
    }

    /// Checks several keys at once and debits all of them only if every one
    /// admits its cost: the request is allowed only if the account, its
    /// cluster and its card all have room. If any refuses, none is debited.
    ///
    /// The decision is the binding one: when allowed, the smallest
    /// remaining capacity (and its quota) and the longest reset; when
    /// refused, the longest `retry_after` (or [`Outcome::NeverFits`], which
    /// outranks any wait) and, in [`LimitDecision::limited_by`], a bit for each
    /// key that refused.
    ///
    /// A key listed twice is debited twice on its one arrival time (use
    /// separate keys for separate windows, e.g. `acct:minute`, `acct:day`).
    /// If a concurrent request takes the room between the test and the
    /// debits, the debits made so far are refunded and the whole check is
    /// decided again; meanwhile other requests may briefly see them.
    ///
    /// ```
    /// use ringfence::limit::{ManualClock, Quota, RateLimiter};
    /// use std::sync::Arc;
    ///
    /// let limiter = RateLimiter::builder(Quota::per_minute(100))
    ///     .clock(Arc::new(ManualClock::new()))
    ///     .build();
    /// let account = limiter.key("acct-7");
    /// let cluster = limiter.key("cluster-42");
    /// let both = [(account, Quota::per_minute(100), 1), (cluster, Quota::per_minute(2), 1)];
    /// assert!(limiter.check_all(&both).is_allowed());
    /// assert!(limiter.check_all(&both).is_allowed());
    /// let third = limiter.check_all(&both);
    /// assert_eq!(third.limited_by(), 0b10); // the cluster refused
    /// // The account was not debited for the refused request: 98 left.
    /// assert_eq!(limiter.check_with(&account, Quota::per_minute(100), 0).remaining(), 98);
    /// ```
    pub fn check_all(&self, requests: &[(KeyId, Quota, u64)]) -> LimitDecision {
        self.check_all_reserving(requests, None).0
    }

    /// [`RateLimiter::check_all`] that also returns a [`Reservation`] for
    /// entry `reserve` when the request is admitted, so that entry's cost
    /// (e.g. an estimate of tokens) can be settled later at its actual value.
    ///
    /// ```
    /// use ringfence::limit::{ManualClock, Quota, RateLimiter};
    /// use std::sync::Arc;
    ///
    /// let limiter = RateLimiter::builder(Quota::per_minute(60)).clock(Arc::new(ManualClock::new())).build();
    /// let (requests, tokens) = (limiter.key("acct:requests"), limiter.key("acct:tokens"));
    /// let tokens_quota = Quota::per_minute(10_000);
    /// let (d, r) = limiter.check_all_reserving(&[(requests, Quota::per_minute(60), 1), (tokens, tokens_quota, 4_000)], Some(1));
    /// assert!(d.is_allowed());
    /// limiter.settle(r.unwrap(), 1_500).unwrap();
    /// assert_eq!(limiter.check_with(&tokens, tokens_quota, 0).remaining(), 8_500);
    /// ```
    pub fn check_all_reserving(
        &self,
        requests: &[(KeyId, Quota, u64)],
        reserve: Option<usize>,
    ) -> (LimitDecision, Option<Reservation>) {
        let now = self.now();
        'attempt: loop {
            // Phase 1: test every key without writing anything, as phase 2
            // will apply them: in order, a repeated key seeing the debits of
            // its earlier entries.
            let mut refused: Option<LimitDecision> = None;
            let mut allowed: Option<LimitDecision> = None;
            for (i, (id, quota, cost)) in requests.iter().enumerate() {
                let mut tat = self.current_tat(*id);
                for (prev_id, prev_quota, prev_cost) in &requests[..i] {
                    if prev_id == id {
                        tat = gcra::test(tat, now, prev_quota, *prev_cost).1;
                    }
                }
                let (d, _) = gcra::test(tat, now, quota, *cost);
                if d.outcome == Outcome::Allowed {
                    allowed = Some(combine_allowed(allowed, d));
                } else {
                    refused = Some(combine_refused(refused, d, i));
                }
            }
            if let Some(d) = refused {
                return (self.shadowed(d), None);
            }
            // Phase 2: debit each; if a concurrent request took the room
            // meanwhile, refund what was debited and decide again.
            let mut decision = None;
            let mut reservation = None;
            for (i, (id, quota, cost)) in requests.iter().enumerate() {
                let d = self.apply(*id, now, |tat| gcra::test(tat, now, quota, *cost));
                if reserve == Some(i) && d.outcome == Outcome::Allowed {
                    reservation = Some(Reservation {
                        key: *id,
                        quota: *quota,
                        reserved: *cost,
                        limiter: self.id,
                        tat_after: now + d.ahead_ns,
                    });
                }
                if d.outcome != Outcome::Allowed {
                    for (rid, rquota, rcost) in &requests[..i] {
                        // Debited at this same `now`: all of it is outstanding.
                        self.apply(*rid, now, |tat| {
                            (d, gcra::refund(tat, rquota, *rcost, u64::MAX))
                        });
                    }
                    continue 'attempt;
                }
                decision = Some(combine_allowed(decision, d));
            }
            // No keys at all: nothing limits the request.
            let d = decision.or(allowed).unwrap_or_else(|| {
                gcra::decision(
                    Outcome::Allowed,
                    0,
                    now,
                    &self.default_quota,
                    Default::default(),
                )
            });
            return (self.shadowed(d), reservation);
        }
    }
}

fn combine_allowed(acc: Option<LimitDecision>, d: LimitDecision) -> LimitDecision {
    match acc {
        None => d,
        Some(mut a) => {
            // The binding key is the one with the least room; the reset is
            // the longest of all.
            let ahead = a.ahead_ns.max(d.ahead_ns);
            if d.remaining() < a.remaining() {
                a = d;
            }
            a.ahead_ns = ahead;
            a
        }
    }
}

fn combine_refused(acc: Option<LimitDecision>, d: LimitDecision, index: usize) -> LimitDecision {
    let bit = 1u64 << index.min(63);
    let Some(a) = acc else {
        return LimitDecision {
            limited_by: bit,
            ..d
        };
    };
    let limited_by = a.limited_by | bit;
    // "Never fits" outranks a wait (no wait helps); among waits, the longest binds.
    let d_binds = match (a.outcome, d.outcome) {
        (Outcome::NeverFits, _) => false,
        (_, Outcome::NeverFits) => true,
        _ => d.retry_ns > a.retry_ns,
    };
    LimitDecision {
        limited_by,
        ..if d_binds { d } else { a }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("default_quota", &self.default_quota)
            .field("capacity", &self.capacity())
            .field("shadow", &self.is_shadow())
            .finish_non_exhaustive()
    }
}
