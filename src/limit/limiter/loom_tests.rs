//! Model checking of the limiter's lock-free GCRA cells with `loom`: every
//! interleaving of the threads' atomic operations (and every value the C11
//! memory model lets a load return) is run, and each must keep the
//! invariants below. Run with `scripts/loom.sh`.
//!
//! The tables are tiny (one shard of four cells holding one or two keys)
//! so that evictions, cell reuse and rebuilds happen within a few steps.

use super::super::table::Fp;
use super::super::{KeyId, ManualClock, Outcome, Quota, RateLimiter};
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::thread;
use std::sync::Arc;
use std::time::Duration;

/// A limiter whose table holds `keys` keys in one shard, on a stopped clock
/// one second past its epoch.
fn limiter(burst: u64, keys: usize) -> Arc<RateLimiter> {
    limiter_and_clock(burst, keys).0
}

fn limiter_and_clock(burst: u64, keys: usize) -> (Arc<RateLimiter>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let l = RateLimiter::builder(Quota::per_minute(burst))
        .capacity(keys)
        .clock(clock.clone())
        .build();
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.table.shard_count(), 1);
    (Arc::new(l), clock)
}

/// Two keys whose probe sequences start at the same cell, so that one
/// takes over the other's cell when it is freed.
fn same_home_keys(l: &RateLimiter) -> (KeyId, KeyId) {
    let ids: Vec<KeyId> = (0..64).map(|i| l.key(&format!("key-{i}"))).collect();
    for (i, a) in ids.iter().enumerate() {
        if let Some(b) = ids[i + 1..].iter().find(|b| b.0.lo & 3 == a.0.lo & 3) {
            return (*a, *b);
        }
    }
    unreachable!("64 keys over 4 cells share a home")
}

fn remaining(l: &RateLimiter, k: KeyId) -> u64 {
    l.check(&k, 0).remaining()
}

/// Three racing checks on one key of burst 2 admit exactly what is left
/// of it, whether the key already has a cell or the threads race to give
/// it one.
#[test]
fn racing_checks_admit_exactly_the_burst() {
    for warm in [false, true] {
        crate::model::explore("racing_checks_admit_exactly_the_burst", 1_000, move || {
            let l = limiter(2, 1);
            let k = l.key("k");
            if warm {
                assert!(l.check(&k, 1).is_allowed());
            }
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let l = l.clone();
                    thread::spawn(move || l.check(&k, 1).is_allowed())
                })
                .collect();
            let admitted = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&a| a)
                .count();
            let expected = if warm { 1 } else { 2 };
            assert_eq!(admitted, expected, "warm={warm}");
            assert_eq!(remaining(&l, k), 0);
            assert_eq!(l.check(&k, 1).outcome(), Outcome::Refused);
        });
    }
}

/// A reservation settled below its estimate while another request debits
/// the same key: the key ends with exactly both real costs.
#[test]
fn settling_races_a_check_without_losing_either() {
    crate::model::explore(
        "settling_races_a_check_without_losing_either",
        1_000,
        || {
            let l = limiter(10, 1);
            let k = l.key("k");
            let a = {
                let l = l.clone();
                thread::spawn(move || {
                    let (r, _) = l.reserve(&k, 4).expect("4 of 10 fit");
                    l.settle(r, 1).unwrap();
                })
            };
            let b = {
                let l = l.clone();
                thread::spawn(move || assert!(l.check(&k, 3).is_allowed()))
            };
            a.join().unwrap();
            b.join().unwrap();
            assert_eq!(remaining(&l, k), 10 - 1 - 3);
        },
    );
}

/// Two keys fighting over a one-key table whose cells they share: a
/// handle to a cell that was given to the other key meanwhile must not
/// debit it, and the table never holds more keys than its capacity.
#[test]
fn a_stale_handle_never_debits_another_key() {
    crate::model::explore("a_stale_handle_never_debits_another_key", 1_000, || {
        let l = limiter(4, 1);
        let (k1, k2) = same_home_keys(&l);
        let a = {
            let l = l.clone();
            thread::spawn(move || {
                l.check(&k1, 1);
                l.check(&k1, 1);
            })
        };
        let b = {
            let l = l.clone();
            thread::spawn(move || {
                l.check(&k2, 2);
            })
        };
        a.join().unwrap();
        b.join().unwrap();
        // Evictions may forget debits, but never move them: k2 holds its
        // own 2 units or none, k1 some of its own.
        let (r1, r2) = (remaining(&l, k1), remaining(&l, k2));
        assert!(r2 == 2 || r2 == 4, "k2 has {r2} left");
        assert!((2..=4).contains(&r1), "k1 has {r1} left");
        assert!(l.table.stats().len <= 1, "{:?}", l.table.stats());
    });
}

/// A new key reclaiming the cell of a key whose TAT has passed, while a
/// request for that key debits it: either the debit lands first and the
/// key is evicted instead (it is the only candidate), or the cell is
/// reclaimed first and the request starts the key afresh. Either way the
/// table holds one key.
#[test]
fn reclaiming_races_the_expired_keys_own_request() {
    crate::model::explore(
        "reclaiming_races_the_expired_keys_own_request",
        1_000,
        || {
            let (l, clock) = limiter_and_clock(4, 1);
            let (k1, k2) = same_home_keys(&l);
            assert!(l.check(&k1, 1).is_allowed());
            clock.advance(Duration::from_secs(60));
            let a = {
                let l = l.clone();
                thread::spawn(move || assert!(l.check(&k1, 1).is_allowed()))
            };
            let b = {
                let l = l.clone();
                thread::spawn(move || assert!(l.check(&k2, 2).is_allowed()))
            };
            a.join().unwrap();
            b.join().unwrap();
            let stats = l.table.stats();
            assert_eq!(stats.len, 1, "{stats:?}");
            let (r1, r2) = (remaining(&l, k1), remaining(&l, k2));
            assert!(
                (r1, r2) == (3, 4) || (r1, r2) == (4, 2),
                "{r1} and {r2} left"
            );
        },
    );
}

/// A check racing a rebuild of its shard (every cell frozen, emptied and
/// re-placed): its debit lands exactly once, and the other key's state is
/// carried over unchanged.
#[test]
fn a_check_racing_a_rebuild_lands_once() {
    crate::model::explore("a_check_racing_a_rebuild_lands_once", 1_000, || {
        let l = limiter(5, 2);
        let (k1, k2) = same_home_keys(&l);
        assert!(l.check(&k1, 1).is_allowed());
        assert!(l.check(&k2, 2).is_allowed());
        let a = {
            let l = l.clone();
            thread::spawn(move || assert!(l.check(&k1, 1).is_allowed()))
        };
        let b = {
            let l = l.clone();
            thread::spawn(move || l.table.rebuild_shard_for_test(0))
        };
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(remaining(&l, k1), 3);
        assert_eq!(remaining(&l, k2), 3);
        assert_eq!(l.table.stats().len, 2);
    });
}

/// What the 8-bit generation admits (see `Slot::replace`): a handle held
/// while its cell is rewritten 128 times (64 keys taking it over in turn)
/// sees the same generation again. Its update still fails when the cell's
/// word differs from the one it read; only a new key with the very same
/// TAT to the nanosecond takes it. (The lookup comes first and the update
/// after the 128th rewrite; `a_stale_handle_never_debits_another_key`
/// explores the lookups and updates that race a takeover.)
#[test]
fn a_wrapped_generation_fails_unless_the_tat_is_equal() {
    for same_tat in [false, true] {
        // 64 takeovers are some 1,300 atomic operations in one thread.
        crate::model::explore(
            "a_wrapped_generation_fails_unless_the_tat_is_equal",
            100_000,
            move || {
                let t = Arc::new(super::super::table::Table::new(1));
                let keys = [0x10u64, 0x20, 0x30].map(|lo| Fp { hi: 0, lo });
                let start = 1_000;
                t.find_or_insert(keys[0], start, |s| s);
                let found = Arc::new(AtomicBool::new(false));
                let done = Arc::new(AtomicBool::new(false));
                let b = {
                    let (t, found, done) = (t.clone(), found.clone(), done.clone());
                    thread::spawn(move || {
                        while !found.load(SeqCst) {
                            thread::yield_now();
                        }
                        for j in 1..=64u64 {
                            let now = if same_tat { start } else { start + j };
                            t.find_or_insert(keys[(j % 3) as usize], now, |s| s);
                        }
                        done.store(true, SeqCst);
                    })
                };
                let slot = t.find(keys[0]);
                found.store(true, SeqCst);
                while !done.load(SeqCst) {
                    thread::yield_now();
                }
                b.join().unwrap();
                let mut slot = slot.expect("keys[0] was in its cell when looked up");
                let landed = slot.replace(start + 7).is_ok();
                // After 64 takeovers the cell holds keys[64 % 3] = keys[1].
                let now = t.find(keys[1]).expect("keys[1] holds the cell").tat();
                if same_tat {
                    assert!(landed, "the admitted case: same generation, same TAT");
                    assert_eq!(now, start + 7);
                } else {
                    assert!(!landed, "a stale update landed on another key");
                    assert_eq!(now, start + 64);
                }
            },
        );
    }
}
