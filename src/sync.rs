//! A reader-biased lock for state that many threads update with atomics and
//! one maintenance pass occasionally rebuilds.
//!
//! Readers take one of `STRIPES` read locks, chosen per thread, so readers on
//! different cores touch different cache lines; the writer takes all of them.
//! Reading costs one uncontended atomic on a line no other core writes.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::cell::Cell;
use std::sync::atomic::{
    fence, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

const STRIPES: usize = 16;

/// One read lock per stripe, each on its own cache line.
#[repr(align(128))]
#[derive(Default)]
struct Stripe(RwLock<()>);

/// See the module docs.
#[derive(Default)]
pub(crate) struct StripedLock {
    stripes: [Stripe; STRIPES],
    /// Odd while a writer holds the lock; one more at each taking and
    /// release (see [`StripedLock::optimistic`]).
    version: Version,
}

#[repr(align(128))]
#[derive(Default)]
struct Version(AtomicU64);

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_THREAD.fetch_add(1, Relaxed) % STRIPES;
}

/// The calling thread's stripe, in `0..STRIPES` (fixed per thread): for
/// per-thread state spread over cache lines, like the guard's counters.
#[inline]
pub(crate) fn stripe() -> usize {
    STRIPE.with(|s| *s)
}

/// How many stripes [`stripe`] chooses among.
pub(crate) const STRIPE_COUNT: usize = STRIPES;

impl StripedLock {
    /// Shared access (the hot path).
    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ()> {
        let i = stripe();
        self.stripes[i].0.read()
    }

    /// Exclusive access: waits for every reader to leave (allocates
    /// nothing). Optimistic readers ([`StripedLock::optimistic`]) are told.
    pub(crate) fn write(&self) -> Exclusive<'_> {
        let all = self.write_quietly();
        all.announce();
        all
    }

    /// [`StripedLock::write`] for a writer that changes nothing optimistic
    /// readers read, until it calls [`Exclusive::announce`].
    pub(crate) fn write_quietly(&self) -> Exclusive<'_> {
        Exclusive {
            bump: Bump {
                version: &self.version.0,
                announced: Cell::new(false),
            },
            stripes: std::array::from_fn(|i| self.stripes[i].0.write()),
        }
    }

    /// Runs `read`, a reader of atomics that writes nothing, without taking
    /// a stripe, and returns its answer if no writer held the lock
    /// meanwhile (a sequence lock: the version was even and unchanged
    /// around it) and `read` gave one. `None` otherwise, after two tries:
    /// `read` may then have run on a half-changed state, and the caller
    /// reads again under [`StripedLock::read`].
    #[inline]
    pub(crate) fn optimistic<R>(&self, read: impl Fn() -> Option<R>) -> Option<R> {
        for _ in 0..2 {
            let before = self.version.0.load(Acquire);
            if before % 2 == 0 {
                let r = read();
                fence(Acquire);
                if r.is_some() && self.version.0.load(Relaxed) == before {
                    return r;
                }
            }
            std::hint::spin_loop();
        }
        None
    }
}

/// Every stripe, held (see [`StripedLock::write`]).
pub(crate) struct Exclusive<'a> {
    // Dropped first: the version is even again before the stripes go.
    bump: Bump<'a>,
    stripes: [RwLockWriteGuard<'a, ()>; STRIPES],
}

/// Makes the version odd when announced, and even again when dropped.
struct Bump<'a> {
    version: &'a AtomicU64,
    announced: Cell<bool>,
}

impl Drop for Bump<'_> {
    fn drop(&mut self) {
        if self.announced.get() {
            // Everything the writer changed is visible before the even version.
            self.version.fetch_add(1, Release);
        }
    }
}

impl Exclusive<'_> {
    /// Tells optimistic readers that what they read is about to change
    /// (once; [`StripedLock::write`] does it at once).
    pub(crate) fn announce(&self) {
        if !self.bump.announced.replace(true) {
            self.bump.version.fetch_add(1, Relaxed);
            // The odd version is visible before anything the writer changes.
            fence(Release);
        }
    }

    /// Releases every stripe to the threads waiting for it first, so that a
    /// writer taking the lock again at once (a maintenance loop) does not
    /// starve the readers.
    pub(crate) fn unlock_fair(self) {
        let Exclusive { bump, stripes } = self;
        drop(bump);
        for g in stripes {
            RwLockWriteGuard::unlock_fair(g);
        }
    }
}
