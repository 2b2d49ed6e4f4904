//! Many threads on one Guard: totals stay exact, rebuilds and snapshots run
//! alongside without deadlock, and linking sees every thread's evidence.

use ringfence::guard::{Guard, GuardConfig, Request};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[test]
fn threads_share_one_guard_exactly() {
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(10_000));
    clock.set(Duration::from_secs(100));
    let accounts: Vec<String> = (0..200).map(|i| format!("acct-{i}")).collect();
    let allowed = AtomicU64::new(0);
    let fleet_allowed = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (guard, accounts, allowed, fleet_allowed) =
                (&guard, &accounts, &allowed, &fleet_allowed);
            s.spawn(move || {
                for n in 0..2_000usize {
                    let i = (n * 7 + t * 13) % accounts.len();
                    let device = format!("dev-{i}");
                    // Accounts 0..8 share one card (a fleet); the rest are
                    // on their own.
                    let fps: Vec<(&str, &str)> = if i < 8 {
                        vec![("payment", "card-fleet"), ("device", &device)]
                    } else {
                        vec![("device", &device)]
                    };
                    let v = guard.check(&Request {
                        account: &accounts[i],
                        fingerprints: &fps,
                        prompt: Some(
                            "Think step by step and show your reasoning about topic number seven",
                        ),
                        system: None,
                        model: Some("m"),
                        input_tokens: 10,
                        max_tokens: 10,
                    });
                    if v.allowed() {
                        if i < 8 {
                            fleet_allowed.fetch_add(1, Relaxed);
                        } else {
                            allowed.fetch_add(1, Relaxed);
                        }
                        guard.settle(&v, 5);
                    }
                }
            });
        }
        // Maintenance and snapshots alongside.
        s.spawn(|| {
            for _ in 0..20 {
                guard.maintain();
                let _ = guard.snapshot();
                std::thread::yield_now();
            }
        });
    });
    // 192 accounts on their own, each under a burst of 20 at a frozen clock:
    // exactly 20 requests each, whichever thread sent them.
    assert_eq!(allowed.load(Relaxed), 192 * 20);
    // The fleet's accounts found each other across threads.
    assert_eq!(guard.score_of("acct-0").0.size, 8);
    assert!(fleet_allowed.load(Relaxed) <= 8 * 20);
}
