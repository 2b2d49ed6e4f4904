//! Memory per tracked account, measured with a counting allocator over the
//! simulated default scenario (scale 0.1): `cargo test --release --test
//! guard_memory -- --nocapture`. The assertion only guards against gross
//! regressions of the prototype.

use ringfence::guard::{Guard, GuardConfig, Request};
use ringfence::sim::{simulate, Scenario};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn memory_per_tracked_account() {
    let trace = simulate(&Scenario::builtin("default").unwrap().scaled(0.1));
    let config = GuardConfig {
        limiter_capacity: 50_000,
        ..GuardConfig::default()
    };
    let before = LIVE.load(Relaxed);
    let (guard, clock) = Guard::for_replay(config);
    let empty = LIVE.load(Relaxed) - before;
    let t0 = trace[0].ts;
    let mut accounts = HashSet::new();
    for r in &trace {
        clock.set_nanos(((r.ts - t0) * 1e9) as u64);
        let fps: Vec<(&str, &str)> = r
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let v = guard.check(&Request {
            account: &r.account,
            fingerprints: &fps,
            prompt: Some(&r.prompt),
            system: r.system.as_deref(),
            model: Some(&r.model),
            input_tokens: r.input_tokens,
            max_tokens: 1024,
        });
        guard.settle(&v, r.output_tokens);
        accounts.insert(r.account.as_str());
    }
    let used = LIVE.load(Relaxed) - before - empty;
    let per_account = used as f64 / accounts.len() as f64;
    println!(
        "{} accounts, {} requests: {:.0} bytes per tracked account (plus {} bytes allocated up front)",
        accounts.len(),
        trace.len(),
        per_account,
        empty
    );
    // Measured 62 kB per account (target 256 B): every prompt's 16 template
    // bands become values of their own, and every linked pair keeps a map of
    // its evidence. The bound catches regressions only.
    assert!(per_account < 150_000.0, "{per_account} bytes per account");
}
