//! The limiter's hot path allocates nothing: counted by a global allocator
//! that this test binary installs.

use ringfence::limit::{Quota, RateLimiter};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread. Per thread, because the test
    /// harness's own thread allocates while it reports, whenever it likes.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; it only
// counts allocations on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no locals left.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn checks_on_existing_keys_allocate_nothing() {
    let limiter = RateLimiter::builder(Quota::per_second(1_000_000))
        .capacity(10_000)
        .build();
    let names: Vec<String> = (0..1000).map(|i| format!("acct-{i}")).collect();
    let cluster = limiter.key("cluster-1");
    for (i, name) in names.iter().enumerate() {
        limiter.check(name.as_str(), 1);
        limiter.check(&(i as u64), 1);
    }
    limiter.check(&cluster, 1);

    let before = allocations();
    // The counter counts (so that the zero below means something).
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
    assert_eq!(allocations(), before + 1);
    let before = allocations();
    for round in 0..10 {
        for (i, name) in names.iter().enumerate() {
            assert!(limiter.check(name.as_str(), 1).is_allowed());
            assert!(limiter.check(&(i as u64), 1).is_allowed());
            let account = limiter.key(name.as_str());
            let both = [
                (account, Quota::per_second(1_000_000), 1),
                (cluster, Quota::per_second(10_000_000), 1),
            ];
            assert!(limiter.check_all(&both).is_allowed());
            let (r, _) = limiter.reserve(name.as_str(), 10).unwrap();
            limiter.settle(r, round).unwrap();
        }
    }
    assert_eq!(allocations() - before, 0, "the hot path allocated");
}
