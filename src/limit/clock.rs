//! Time, injectable: a system clock for production, a manual one for tests
//! and trace replays.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A source of monotonic time in nanoseconds since the clock's own epoch.
///
/// The limiter reads the time once per decision. A clock may step backwards
/// (a replayed trace out of order, a manual clock set back): the limiter never
/// panics on that and never grants extra capacity for it; requests are simply
/// judged at the earlier time.
pub trait Clock: Send + Sync {
    /// Nanoseconds since this clock's epoch.
    fn now(&self) -> u64;
}

/// The machine's monotonic clock, with its epoch at the clock's creation.
///
/// It reads the CPU's time-stamp counter, calibrated against the OS's
/// monotonic clock (via `quanta`), which costs a few nanoseconds where
/// `std::time::Instant::now()` costs 20–25 on the machines we measured; where
/// no reliable counter exists it falls back to the OS clock.
///
/// Under Miri (which cannot run the counter's instruction) it reads
/// `std::time::Instant` instead.
#[derive(Debug, Clone)]
pub struct SystemClock {
    #[cfg(not(miri))]
    clock: quanta::Clock,
    #[cfg(not(miri))]
    epoch: u64,
    #[cfg(miri)]
    epoch: std::time::Instant,
}

impl SystemClock {
    /// A clock whose epoch is now.
    #[cfg(not(miri))]
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        SystemClock { clock, epoch }
    }

    /// A clock whose epoch is now.
    #[cfg(miri)]
    pub fn new() -> Self {
        SystemClock {
            epoch: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    #[cfg(not(miri))]
    fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.epoch, self.clock.raw())
    }

    #[cfg(miri)]
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to: for tests and for replaying traces
/// at their own timestamps. Shareable between threads.
///
/// ```
/// use ringfence::limit::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), 1_500_000_000);
/// clock.set(Duration::from_secs(1)); // backwards is allowed
/// assert_eq!(clock.now(), 1_000_000_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the time (forwards or backwards).
    pub fn set(&self, since_epoch: Duration) {
        self.set_nanos(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX));
    }
    /// Sets the time in nanoseconds since the epoch.
    pub fn set_nanos(&self, nanos: u64) {
        self.now.store(nanos, Relaxed);
    }
    /// Moves the time forwards.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .now
            .fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_add(by)));
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        self.now.load(Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    #[inline]
    fn now(&self) -> u64 {
        (**self).now()
    }
}
