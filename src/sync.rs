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

    /// Exclusive access: waits for every reader to leave.
    pub(crate) fn write(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.stripes.iter().map(|s| s.0.write()).collect()
    }
}
