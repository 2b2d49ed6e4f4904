//! Where the fleet's quotas live: a [`QuotaStore`] runs GCRA atomically
//! over one key. [`MemoryStore`] keeps the keys in this process (tests, and
//! replays that evaluate a fleet in one process); [`crate::RedisStore`]
//! keeps them in Redis or Valkey, with the same arithmetic in a script.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// A quota as the store applies it: one unit every `interval_us`
/// microseconds, `burst` units at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Microseconds to replenish one unit (at least 1).
    pub interval_us: u64,
    /// Units that fit at once.
    pub burst: u64,
}

impl Rule {
    /// `count` units per `period`, burst `count` (a zero count admits
    /// nothing: its burst is 0).
    pub fn per_period(count: u64, period: Duration) -> Rule {
        let us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        Rule {
            interval_us: (us / count.max(1)).max(1),
            burst: count,
        }
    }

    /// `count` requests a minute, burst `count`.
    pub fn per_minute(count: u64) -> Rule {
        Rule::per_period(count, Duration::from_secs(60))
    }

    /// How far ahead of now the arrival time may run: `interval × burst`.
    pub fn capacity_us(&self) -> u64 {
        self.interval_us.saturating_mul(self.burst)
    }
}

/// The store's answer to a take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Units granted, from 0 to those asked for.
    pub granted: u64,
    /// How far the key's arrival time runs ahead of now afterwards (µs).
    pub ahead_us: u64,
    /// Microseconds until one more unit would fit.
    pub retry_us: u64,
    /// The stored value was not a time (foreign or corrupt data) and was
    /// replaced by a fresh one.
    pub repaired: bool,
}

/// Why a store could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Not reachable, or not within the timeout.
    Unavailable(String),
    /// It answered something other than a grant.
    BadReply(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "the quota store is unavailable: {why}"),
            StoreError::BadReply(why) => write!(f, "the quota store answered badly: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// GCRA over named keys, atomically per key, shared by every node.
pub trait QuotaStore: Send + Sync {
    /// Debits `debit` units (admitted already, taken whole even past the
    /// burst), then takes up to `want` units of `key`'s quota, at `now_us`.
    fn take(
        &self,
        key: &str,
        rule: Rule,
        want: u64,
        debit: u64,
        now_us: u64,
    ) -> Result<Grant, StoreError>;

    /// Many takes at `now_us`, one answer each, in order: what a node's
    /// sync sends (renewals and debits). A store over the network sends
    /// them in one round trip (a pipeline); this default takes them one
    /// by one.
    fn take_many(&self, takes: &[Take], now_us: u64) -> Vec<Result<Grant, StoreError>> {
        takes
            .iter()
            .map(|t| self.take(&t.key, t.rule, t.want, t.debit, now_us))
            .collect()
    }
}

/// Takes a store over the network sends in one pipeline, at most (a sync
/// with more sends several).
pub const PIPELINE_TAKES: usize = 512;

/// One take of [`QuotaStore::take_many`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Take {
    /// The store's key.
    pub key: String,
    /// The quota.
    pub rule: Rule,
    /// Units wanted.
    pub want: u64,
    /// Units debited first.
    pub debit: u64,
}

/// The arithmetic of the store's script, on one key's stored arrival time
/// (`None`: absent). Returns the grant and the arrival time to store
/// (`None`: leave the key as it is).
pub fn gcra_take(
    stored: Option<u64>,
    rule: Rule,
    want: u64,
    debit: u64,
    now_us: u64,
) -> (Grant, Option<u64>) {
    let interval = rule.interval_us.max(1);
    let capacity = rule.capacity_us();
    let mut tat = stored.unwrap_or(now_us).max(now_us);
    tat = tat.saturating_add(debit.saturating_mul(interval));
    let room = (now_us.saturating_add(capacity)).saturating_sub(tat) / interval;
    let granted = room.min(want);
    tat = tat.saturating_add(granted.saturating_mul(interval));
    let retry = (tat.saturating_add(interval)).saturating_sub(capacity.saturating_add(now_us));
    let grant = Grant {
        granted,
        ahead_us: tat - now_us,
        retry_us: retry,
        repaired: false,
    };
    (grant, (granted > 0 || debit > 0).then_some(tat))
}

/// Keys held in this process, with the arithmetic of the Redis script.
/// Keys are dropped once their arrival time has passed, as Redis expires
/// them.
#[derive(Default)]
pub struct MemoryStore {
    keys: Mutex<HashMap<String, u64>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Keys held (some may have expired).
    pub fn len(&self) -> usize {
        self.keys.lock().len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl QuotaStore for MemoryStore {
    fn take(
        &self,
        key: &str,
        rule: Rule,
        want: u64,
        debit: u64,
        now_us: u64,
    ) -> Result<Grant, StoreError> {
        let mut keys = self.keys.lock();
        let stored = keys.get(key).copied().filter(|&t| t > now_us);
        let (grant, store) = gcra_take(stored, rule, want, debit, now_us);
        if let Some(t) = store {
            keys.insert(key.to_string(), t);
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let rule = Rule::per_minute(60); // one a second, burst 60
        let s = MemoryStore::new();
        let g = s.take("k", rule, 100, 0, 0).unwrap();
        assert_eq!(g.granted, 60);
        assert_eq!(g.retry_us, 1_000_000);
        assert_eq!(s.take("k", rule, 5, 0, 500_000).unwrap().granted, 0);
        assert_eq!(s.take("k", rule, 5, 0, 2_000_000).unwrap().granted, 2);
    }

    #[test]
    fn a_forced_debit_pushes_the_arrival_time_past_the_burst() {
        let rule = Rule::per_minute(60);
        let s = MemoryStore::new();
        let g = s.take("k", rule, 0, 90, 0).unwrap();
        assert_eq!(g.granted, 0);
        assert_eq!(g.ahead_us, 90_000_000);
        // Nothing fits until the 30 units past the burst are paid for.
        assert_eq!(s.take("k", rule, 1, 0, 30_000_000).unwrap().granted, 0);
        assert_eq!(s.take("k", rule, 1, 0, 31_000_000).unwrap().granted, 1);
    }

    #[test]
    fn a_zero_rule_grants_nothing() {
        let rule = Rule::per_minute(0);
        let s = MemoryStore::new();
        assert_eq!(s.take("k", rule, 3, 0, 0).unwrap().granted, 0);
    }
}
