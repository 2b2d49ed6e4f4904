//! A reader-biased lock for state that many threads update with atomics and
//! one maintenance pass occasionally rebuilds.
//!
//! Readers take one of `STRIPES` read locks, chosen per thread, so readers on
//! different cores touch different cache lines; the writer takes all of them.
//! Reading costs one uncontended atomic on a line no other core writes.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const STRIPES: usize = 16;

/// One read lock per stripe, each on its own cache line.
#[repr(align(128))]
#[derive(Default)]
struct Stripe(RwLock<()>);

/// See the module docs.
#[derive(Default)]
pub(crate) struct StripedLock {
    stripes: [Stripe; STRIPES],
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_THREAD.fetch_add(1, Relaxed) % STRIPES;
}

impl StripedLock {
    /// Shared access (the hot path).
    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ()> {
        let i = STRIPE.with(|s| *s);
        self.stripes[i].0.read()
    }

    /// Exclusive access: waits for every reader to leave (allocates nothing).
    pub(crate) fn write(&self) -> Exclusive<'_> {
        Exclusive(std::array::from_fn(|i| self.stripes[i].0.write()))
    }
}

/// Every stripe, held (see [`StripedLock::write`]).
pub(crate) struct Exclusive<'a>(#[allow(dead_code)] [RwLockWriteGuard<'a, ()>; STRIPES]);

impl Exclusive<'_> {
    /// Releases every stripe to the threads waiting for it first, so that a
    /// writer taking the lock again at once (a maintenance loop) does not
    /// starve the readers.
    pub(crate) fn unlock_fair(self) {
        for g in self.0 {
            RwLockWriteGuard::unlock_fair(g);
        }
    }
}
