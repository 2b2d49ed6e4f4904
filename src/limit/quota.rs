//! Quotas: a rate and a burst.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The longest window (`burst × interval`) a quota may have: 2^55 ns.
pub const MAX_WINDOW: Duration = Duration::from_nanos(MAX_WINDOW_NS);
const MAX_WINDOW_NS: u64 = 1 << 55;

/// How much a key may use: `count` units (requests or tokens) per `period`,
/// with bursts of up to `burst` units at once.
///
/// Under GCRA a quota is an *emission interval* `T = period / count` (one unit
/// is replenished every `T`) and a capacity of `burst` units. A key that has
/// been idle long enough may spend `burst` units at once; after that, one unit
/// every `T`. By default `burst = count`, so `Quota::per_minute(600)` allows 600
/// requests at once, then 10 per second.
///
/// ```
/// use ringfence::limit::Quota;
/// use std::time::Duration;
///
/// let q = Quota::per_minute(600).allow_burst(20);
/// assert_eq!(q.burst(), 20);
/// assert_eq!(q.interval(), Duration::from_millis(100));
/// // 1M tokens per hour, of which at most 50k at once.
/// let tokens = Quota::per_hour(1_000_000).allow_burst(50_000);
/// assert_eq!(tokens.interval(), Duration::from_micros(3600));
/// ```
///
/// A quota of zero units admits nothing (every cost is "never fits"): a way to
/// block a key without special cases.
///
/// The *window*, `burst × T` (the time an empty bucket takes to fill), is at
/// most 2^55 ns, about 13 months: a longer interval is shortened to that, and
/// a burst whose window would be longer is reduced to fit. That keeps every
/// arrival time representable for the limiter's horizon (see
/// [`RateLimiter`](super::RateLimiter)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "QuotaFields")]
pub struct Quota {
    /// Nanoseconds to replenish one unit; `u64::MAX` for a zero rate.
    interval_ns: u64,
    /// Units that fit at once.
    burst: u64,
}

impl Quota {
    /// `count` units per `period`, burst `count`. The interval is rounded
    /// down to whole nanoseconds (and is at least 1 ns).
    pub fn per_period(count: u64, period: Duration) -> Quota {
        if count == 0 {
            return Quota {
                interval_ns: u64::MAX,
                burst: 0,
            };
        }
        let ns = (period.as_nanos() / u128::from(count)).max(1);
        Quota::bounded(u64::try_from(ns).unwrap_or(u64::MAX), count)
    }

    /// A quota with the window clamped to `MAX_WINDOW`.
    fn bounded(interval_ns: u64, burst: u64) -> Quota {
        let interval_ns = interval_ns.clamp(1, MAX_WINDOW_NS);
        Quota {
            interval_ns,
            burst: burst.min(MAX_WINDOW_NS / interval_ns),
        }
    }
    /// `count` units per second.
    pub fn per_second(count: u64) -> Quota {
        Self::per_period(count, Duration::from_secs(1))
    }
    /// `count` units per minute.
    pub fn per_minute(count: u64) -> Quota {
        Self::per_period(count, Duration::from_secs(60))
    }
    /// `count` units per hour.
    pub fn per_hour(count: u64) -> Quota {
        Self::per_period(count, Duration::from_secs(3600))
    }
    /// `count` units per day.
    pub fn per_day(count: u64) -> Quota {
        Self::per_period(count, Duration::from_secs(86_400))
    }
    /// One unit every `interval`, burst 1 (raise it with [`Quota::allow_burst`]).
    pub fn with_interval(interval: Duration) -> Quota {
        Quota::bounded(u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX), 1)
    }
    /// The same rate with a burst of `burst` units (a zero-rate quota stays
    /// empty; a burst whose window would exceed `MAX_WINDOW` is reduced).
    #[must_use]
    pub fn allow_burst(self, burst: u64) -> Quota {
        if self.interval_ns == u64::MAX {
            return self;
        }
        Quota::bounded(self.interval_ns, burst)
    }

    /// Units that fit at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }
    /// Time to replenish one unit.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }
    /// Time for an empty bucket to fill to `burst` (the `w` of the
    /// `RateLimit-Policy` header).
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.capacity_ns())
    }
    /// Whether this quota admits nothing.
    pub fn is_zero(&self) -> bool {
        self.burst == 0
    }

    #[inline]
    /// A quota from its raw fields (as [`Quota::interval_ns`] and
    /// [`Quota::burst`] give them back).
    pub(crate) fn from_raw(interval_ns: u64, burst: u64) -> Quota {
        Quota { interval_ns, burst }
    }
    pub(crate) fn interval_ns(&self) -> u64 {
        self.interval_ns
    }
    /// `burst × T`: how far ahead of now the arrival time may run.
    #[inline]
    pub(crate) fn capacity_ns(&self) -> u64 {
        self.interval_ns.saturating_mul(self.burst)
    }
    #[inline]
    pub(crate) fn cost_ns(&self, cost: u64) -> u64 {
        self.interval_ns.saturating_mul(cost)
    }
}

/// Deserialised fields, bounded like the constructors bound them.
#[derive(Deserialize)]
struct QuotaFields {
    interval_ns: u64,
    burst: u64,
}

impl From<QuotaFields> for Quota {
    fn from(f: QuotaFields) -> Quota {
        Quota::bounded(f.interval_ns, f.burst)
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return write!(f, "Quota(nothing)");
        }
        write!(
            f,
            "Quota(1 per {:?}, burst {})",
            self.interval(),
            self.burst
        )
    }
}
