//! Memory per tracked account: a guard sized for the scenario's accounts
//! ([`GuardConfig::for_accounts`]) replays the simulated default scenario
//! (scale 0.1), and a counting allocator measures every byte it holds, the
//! tables allocated up front included. Run with `cargo test --release --test
//! guard_memory -- --nocapture` to see the figure (target ≤ 384 bytes).

mod common;

use ringfence::guard::{Guard, GuardConfig, Request};
use ringfence_lab::sim::{simulate, Scenario};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        count_allocation();
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
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests count the process's allocations: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn memory_per_tracked_account() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let trace = simulate(&Scenario::builtin("default").unwrap().scaled(0.1));
    let accounts: HashSet<&str> = trace.iter().map(|r| r.account.as_str()).collect();
    let n = accounts.len();
    let before = LIVE.load(Relaxed);
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(n));
    let up_front = LIVE.load(Relaxed) - before;
    let t0 = trace[0].ts;
    let mut flagged = HashSet::new();
    for r in &trace {
        clock.set_nanos(((r.ts - t0) * 1e9) as u64);
        let v = common::check_record(&guard, r);
        if !v.reasons.is_empty() && r.label.starts_with("campaign") {
            flagged.insert(r.account.as_str());
        }
    }
    let held = LIVE.load(Relaxed) - before;
    let per_account = held as f64 / n as f64;
    println!(
        "{n} accounts, {} requests: {per_account:.0} bytes per tracked account ({up_front} bytes allocated up front, {} after the replay; the guard reports {})",
        trace.len(),
        held,
        guard.memory_bytes()
    );
    println!("{:?}", guard.link_stats());
    assert!(per_account <= 384.0, "{per_account} bytes per account");
    // Sized this tightly, the guard still finds the campaign.
    let campaign: HashSet<&str> = trace
        .iter()
        .filter(|r| r.label.starts_with("campaign"))
        .map(|r| r.account.as_str())
        .collect();
    assert!(
        flagged.len() * 10 >= campaign.len() * 9,
        "{} of {} campaign accounts met a cluster policy",
        flagged.len(),
        campaign.len()
    );
}

thread_local! {
    /// Allocations made by this thread. Per thread, because the test
    /// harness's own thread allocates while it reports the test before.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: a thread being torn down has no locals left to count in.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// The hot path allocates nothing: once accounts and their values are
/// known, checking and settling requests (fingerprints, a prompt, a cluster
/// under policy) makes no allocation at all.
#[test]
fn checks_allocate_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(1000));
    let accounts: Vec<String> = (0..50).map(|i| format!("acct-{i}")).collect();
    let ips: Vec<String> = (0..50).map(|i| format!("10.1.{}.{}", i % 3, i)).collect();
    let prompt = "Think step by step and show all of your reasoning: what is the derivative of x squared times sine x";
    let run = |round: u64| {
        for (i, a) in accounts.iter().enumerate() {
            clock.set_nanos((round * 50 + i as u64) * 1_000_000_000);
            let fps = [
                ("payment", "card-shared"),
                ("ip", ips[i].as_str()),
                ("ja4", "t13d_rare"),
            ];
            let v = guard.check(&Request {
                account: a,
                fingerprints: &fps,
                prompt: Some(prompt),
                system: None,
                model: Some("m"),
                input_tokens: 20,
                max_tokens: 100,
            });
            if v.allowed() {
                guard.settle(&v, 80);
            }
        }
    };
    run(0);
    run(1);
    let before = ALLOCATIONS.with(Cell::get);
    run(2);
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "allocations on the hot path");
    // The counter does count this thread's allocations.
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(ALLOCATIONS.with(Cell::get), after + 1);
    assert!(guard.score_of("acct-0").0.size >= 40);
}

/// Sized for a million accounts, everything allocated up front (every
/// table: linking, behaviour, crowds, scoring, the limiter) costs at most
/// 384 bytes per account, and the guard reports what it holds.
#[test]
fn a_guard_for_a_million_accounts_costs_at_most_384_bytes_each() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE.load(Relaxed);
    let guard = Guard::new(GuardConfig::for_accounts(1_000_000));
    let up_front = LIVE.load(Relaxed) - before;
    let per_account = up_front as f64 / 1e6;
    println!(
        "sized for 1,000,000 accounts: {up_front} bytes up front, {per_account:.0} bytes per account (the guard reports {})",
        guard.memory_bytes()
    );
    assert!(per_account <= 384.0, "{per_account} bytes per account");
    let reported = guard.memory_bytes() as f64;
    assert!(
        (reported - up_front as f64).abs() < 0.05 * up_front as f64,
        "{reported} vs {up_front}"
    );
}
