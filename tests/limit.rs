//! The rate limiter: differential against governor, exactness under
//! concurrency, bounded memory, reservations, all-or-nothing, clocks.

use governor::clock::FakeRelativeClock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringfence::limit::{Clock, ManualClock, Outcome, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

fn manual(quota: Quota, capacity: usize) -> (RateLimiter, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let limiter = RateLimiter::builder(quota)
        .capacity(capacity)
        .clock(clock.clone())
        .build();
    (limiter, clock)
}

/// Thousands of random schedules of (time step, cost) under random quotas:
/// every admit/refuse decision, and every wait time, equals governor's.
#[test]
fn decisions_equal_governors_step_by_step() {
    let mut rng = StdRng::seed_from_u64(2024);
    let mut steps_checked = 0u64;
    for schedule in 0..2000 {
        let interval = Duration::from_nanos(rng.random_range(1..=5_000_000));
        let burst = rng.random_range(1..=20u32);
        let gquota = governor::Quota::with_period(interval)
            .unwrap()
            .allow_burst(NonZeroU32::new(burst).unwrap());
        let gclock = FakeRelativeClock::default();
        let theirs = governor::RateLimiter::direct_with_clock(gquota, gclock.clone());
        let (ours, clock) = manual(
            Quota::with_interval(interval).allow_burst(u64::from(burst)),
            16,
        );

        // Sometimes long idle gaps, mostly bursts of requests.
        let max_gap = interval.as_nanos() as u64 * if schedule % 3 == 0 { 5 } else { 1 };
        for step in 0..200 {
            let gap = Duration::from_nanos(rng.random_range(0..=max_gap));
            gclock.advance(gap);
            clock.advance(gap);
            let cost = rng.random_range(1..=burst + 2);
            let mine = ours.check("the key", u64::from(cost));
            let expected = theirs.check_n(NonZeroU32::new(cost).unwrap());
            match expected {
                Err(_) => assert_eq!(
                    mine.outcome(),
                    Outcome::NeverFits,
                    "schedule {schedule} step {step}"
                ),
                Ok(Ok(())) => assert_eq!(
                    mine.outcome(),
                    Outcome::Allowed,
                    "schedule {schedule} step {step}"
                ),
                Ok(Err(not_until)) => {
                    assert_eq!(
                        mine.outcome(),
                        Outcome::Refused,
                        "schedule {schedule} step {step}"
                    );
                    use governor::clock::Clock as _;
                    assert_eq!(
                        mine.retry_after(),
                        not_until.wait_time_from(gclock.now()),
                        "schedule {schedule} step {step}"
                    );
                }
            }
            steps_checked += 1;
        }
    }
    assert_eq!(steps_checked, 400_000);
}

/// N threads hammering one key, while time advances in steps: exactly
/// burst + rate × elapsed requests are admitted, never one more.
#[test]
fn concurrent_hammering_admits_exactly_the_quota() {
    let threads = 4;
    let (limiter, clock) = manual(Quota::per_second(1000).allow_burst(50), 1024);
    let limiter = Arc::new(limiter);
    let steps = 200u64;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (limiter, barrier) = (limiter.clone(), barrier.clone());
            thread::spawn(move || {
                let mut admitted = 0u64;
                for _ in 0..steps {
                    barrier.wait(); // the clock is set
                    for _ in 0..40 {
                        admitted += u64::from(limiter.check("shared", 1).is_allowed());
                    }
                    barrier.wait(); // done at this time
                }
                admitted
            })
        })
        .collect();
    for _ in 0..steps {
        barrier.wait();
        barrier.wait();
        clock.advance(Duration::from_millis(10)); // 10 more units
    }
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    // Each step offers 160 attempts against ≤ 50 available: always exhausted.
    assert_eq!(total, 50 + 10 * (steps - 1));
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// 10 million distinct keys through a table of capacity 100,000: it never
/// holds more than its capacity, and the process does not grow.
#[test]
fn ten_million_keys_never_grow_the_table_past_capacity() {
    let capacity = 100_000;
    let (limiter, clock) = manual(Quota::per_second(10).allow_burst(5), capacity);
    // Warm up: fill the table once, then measure growth from there.
    for k in 0..capacity as u64 {
        limiter.check(&k, 1);
    }
    let rss_before = resident_bytes();
    for k in capacity as u64..10_000_000 {
        // Every key is live for 100 ms after its request; the clock moves
        // 1 µs per key, so about 100,000 cells are live at any time: the
        // table must both reclaim expired cells and evict live ones.
        clock.advance(Duration::from_micros(1));
        assert!(limiter.check(&k, 1).is_allowed());
        if k % 1_000_000 == 0 {
            assert!(limiter.len() <= capacity, "{} keys", limiter.len());
        }
    }
    let stats = limiter.stats();
    assert!(stats.len <= capacity);
    assert!(stats.reclaimed > 1_000_000, "{stats:?}");
    assert!(stats.evictions > 0, "{stats:?}");
    let growth = resident_bytes().saturating_sub(rss_before);
    assert!(growth < 8 << 20, "resident memory grew by {growth} bytes");
}

/// Expired cells are reclaimed before any live cell is evicted.
#[test]
fn expired_cells_are_reclaimed_before_live_ones_are_evicted() {
    let (limiter, clock) = manual(Quota::per_second(1), 1000);
    for k in 0..1000u64 {
        limiter.check(&k, 1);
    }
    // Capacity is split between shards, and keys spread unevenly over them:
    // a shard that fills first evicts within itself before the table is full.
    let first = limiter.stats();
    assert!(first.len <= 1000 && first.evictions < 100, "{first:?}");
    clock.advance(Duration::from_secs(2)); // everything expired
                                           // 500 new keys: about 83 per shard of 167 (6 shards), all served by
                                           // reclaiming expired cells.
    for k in 1000..1500u64 {
        limiter.check(&k, 1);
    }
    let second = limiter.stats();
    assert_eq!(
        second.evictions, first.evictions,
        "no live cell was evicted: {second:?}"
    );
    let fresh_slots = (1000 - first.len) as u64;
    assert!(
        second.reclaimed >= 500 - fresh_slots && second.reclaimed <= 500,
        "{second:?}"
    );
    // With every cell live, each new key evicts one, and it is counted.
    for k in 1000..1500u64 {
        limiter.check(&k, 1); // refresh the 500 new keys: all cells live now
    }
    for k in 0..1000u64 {
        limiter.check(&k, 1); // re-claim the expired ones: all 1000 cells live
    }
    let full = limiter.stats();
    for k in 5000..5100u64 {
        limiter.check(&k, 1);
    }
    assert_eq!(limiter.stats().evictions, full.evictions + 100);
    assert_eq!(limiter.stats().len, 1000);
}

/// reserve + settle lands on exactly the state of checking the actual cost.
#[test]
fn reservations_refund_and_debit_exactly() {
    for (estimate, actual) in [(500, 120), (500, 500), (500, 900), (10, 0)] {
        let (limiter, clock) = manual(Quota::per_minute(6000).allow_burst(1000), 64);
        let (reference, rclock) = manual(Quota::per_minute(6000).allow_burst(1000), 64);
        clock.advance(Duration::from_secs(5));
        rclock.advance(Duration::from_secs(5));
        limiter.check("k", 100);
        reference.check("k", 100);

        let (r, _) = limiter.reserve("k", estimate).unwrap();
        assert_eq!(r.reserved(), estimate);
        let after = limiter.settle(r, actual).unwrap();
        let expected = if actual <= 900 {
            reference.check("k", actual)
        } else {
            unreachable!()
        };
        assert_eq!(
            after.remaining(),
            expected.remaining(),
            "estimate {estimate}, actual {actual}"
        );
        assert_eq!(
            after.reset_after(),
            expected.reset_after(),
            "estimate {estimate}, actual {actual}"
        );
    }
    // Settling above the burst still debits (the tokens were served).
    let (limiter, _) = manual(Quota::per_second(10), 64);
    let (r, _) = limiter.reserve("k", 5).unwrap();
    let after = limiter.settle(r, 25).unwrap();
    assert_eq!(after.remaining(), 0);
    assert_eq!(after.reset_after(), Duration::from_millis(2500));
    assert_eq!(limiter.check("k", 1).outcome(), Outcome::Refused);
    // A reservation belongs to its limiter.
    let (other, _) = manual(Quota::per_second(10), 64);
    let (r, _) = limiter.reserve("j", 1).unwrap();
    assert!(other.settle(r, 1).is_err());
    // A reservation that does not fit is refused and debits nothing.
    let (tight, _) = manual(Quota::per_second(10), 64);
    tight.check("k", 8);
    let refused = tight.reserve("k", 5).unwrap_err();
    assert_eq!(refused.outcome(), Outcome::Refused);
    assert_eq!(tight.check("k", 0).remaining(), 2);
}

/// A refused check_all leaves every key exactly as it was.
#[test]
fn refused_check_all_debits_nothing() {
    let (limiter, clock) = manual(Quota::per_minute(100), 64);
    clock.advance(Duration::from_secs(3));
    let ids = [
        limiter.key("account"),
        limiter.key("cluster"),
        limiter.key("card"),
    ];
    let quotas = [
        Quota::per_minute(100),
        Quota::per_minute(30),
        Quota::per_minute(1000).allow_burst(5),
    ];
    limiter.check_with(&ids[0], quotas[0], 40);
    limiter.check_with(&ids[1], quotas[1], 25);
    let peek = |l: &RateLimiter| -> Vec<(u64, Duration)> {
        ids.iter()
            .zip(quotas)
            .map(|(id, q)| {
                let d = l.check_with(id, q, 0);
                (d.remaining(), d.reset_after())
            })
            .collect()
    };
    let before = peek(&limiter);
    let req = [
        (ids[0], quotas[0], 6),
        (ids[1], quotas[1], 6),
        (ids[2], quotas[2], 3),
    ];
    let d = limiter.check_all(&req);
    assert_eq!(d.outcome(), Outcome::Refused);
    assert_eq!(d.limited_by(), 0b010);
    assert_eq!(peek(&limiter), before);
    // A cost above one key's burst: never fits, nothing debited.
    let req = [(ids[0], quotas[0], 1), (ids[2], quotas[2], 6)];
    assert_eq!(limiter.check_all(&req).outcome(), Outcome::NeverFits);
    assert_eq!(peek(&limiter), before);
    // When all fit, all are debited.
    let req = [
        (ids[0], quotas[0], 5),
        (ids[1], quotas[1], 5),
        (ids[2], quotas[2], 3),
    ];
    let d = limiter.check_all(&req);
    assert!(d.is_allowed());
    assert_eq!(d.remaining(), 0); // the cluster: 30 − 25 − 5
    let after = peek(&limiter);
    assert_eq!(
        after.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![before[0].0 - 5, 0, 2]
    );
}

/// Many threads racing check_all over overlapping keys never overdraw any key.
#[test]
fn concurrent_check_all_never_overdraws() {
    let (limiter, _clock) = manual(Quota::per_hour(1), 256);
    let limiter = Arc::new(limiter);
    let shared = limiter.key("cluster");
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let limiter = limiter.clone();
            thread::spawn(move || {
                let mut admitted = 0;
                for i in 0..5000u64 {
                    let own = limiter.key(&(t * 100_000 + i % 50));
                    let req = [
                        (own, Quota::per_hour(1000), 1),
                        (shared, Quota::per_hour(500), 1),
                    ];
                    admitted += u64::from(limiter.check_all(&req).is_allowed());
                }
                admitted
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(total, 500);
    assert_eq!(
        limiter
            .check_with(&shared, Quota::per_hour(500), 0)
            .remaining(),
        0
    );
}

#[test]
fn a_clock_stepping_backwards_never_grants_capacity() {
    let (limiter, clock) = manual(Quota::per_second(10).allow_burst(10), 64);
    clock.set(Duration::from_secs(100));
    assert!(limiter.check("k", 10).is_allowed());
    let at_100 = limiter.check("k", 1);
    assert_eq!(at_100.outcome(), Outcome::Refused);
    clock.set(Duration::from_secs(50));
    let back = limiter.check("k", 1);
    assert_eq!(back.outcome(), Outcome::Refused);
    assert!(back.retry_after() > at_100.retry_after());
    clock.set_nanos(0);
    assert_eq!(limiter.check("k", 1).outcome(), Outcome::Refused);
    assert_eq!(limiter.check("k", 0).remaining(), 0);
    // Far future and the maximum time: no panic, full bucket.
    clock.set_nanos(u64::MAX);
    assert!(limiter.check("k", 10).is_allowed());
}

/// A clock with absolute timestamps (a replay of a log in Unix nanoseconds)
/// works like one that starts at zero: times are kept from the limiter's
/// creation.
#[test]
fn absolute_clock_times_are_fine() {
    let clock = Arc::new(ManualClock::new());
    clock.set(Duration::from_secs(1_790_000_000)); // 2026, in Unix time
    let limiter = RateLimiter::builder(Quota::per_second(1))
        .clock(clock.clone())
        .build();
    assert!(limiter.check("k", 1).is_allowed());
    assert_eq!(limiter.check("k", 1).outcome(), Outcome::Refused);
    clock.advance(Duration::from_secs(1));
    assert!(limiter.check("k", 1).is_allowed());
    assert_eq!(limiter.check("k", 1).retry_after(), Duration::from_secs(1));
}

#[test]
fn per_key_quotas_change_at_run_time_and_keep_state() {
    let (limiter, clock) = manual(Quota::per_second(10), 64);
    limiter.check("vip", 10);
    assert_eq!(limiter.check("vip", 1).outcome(), Outcome::Refused);
    limiter.set_quota("vip", Quota::per_second(100));
    assert_eq!(limiter.quota_of("vip"), Quota::per_second(100));
    // The state, an arrival time 1 s ahead, is kept: the key is still full
    // for 1 s, but refills ten times faster.
    assert_eq!(limiter.check("vip", 0).remaining(), 0);
    clock.advance(Duration::from_millis(100));
    assert_eq!(limiter.check("vip", 0).remaining(), 10);
    assert_eq!(limiter.check("other", 0).remaining(), 10);
    limiter.clear_quota("vip");
    assert_eq!(limiter.check("vip", 0).remaining(), 1); // 100 ms under 10/s
    clock.advance(Duration::from_millis(900));
    assert!(limiter.check("vip", 10).is_allowed());
    // A zero quota blocks a key outright.
    limiter.set_quota("banned", Quota::per_minute(0));
    assert_eq!(limiter.check("banned", 1).outcome(), Outcome::NeverFits);
}

#[test]
fn shadow_mode_reports_but_does_not_refuse() {
    let (limiter, _clock) = manual(Quota::per_second(2), 64);
    limiter.set_shadow(true);
    assert!(limiter.check("k", 2).is_allowed());
    let d = limiter.check("k", 1);
    assert!(d.is_allowed() && d.would_refuse() && d.is_shadow());
    assert_eq!(d.outcome(), Outcome::Refused);
    assert!(d
        .headers("p")
        .iter()
        .all(|(name, _)| *name != "Retry-After"));
    // The would-be-refused request was not debited.
    assert_eq!(d.remaining(), 0);
    limiter.set_shadow(false);
    assert!(!limiter.check("k", 1).is_allowed());
}

#[test]
fn never_fits_is_distinct_and_debits_nothing() {
    let (limiter, _clock) = manual(Quota::per_minute(1000).allow_burst(100), 64);
    let d = limiter.check("k", 101);
    assert_eq!(d.outcome(), Outcome::NeverFits);
    assert_eq!(d.retry_after(), Duration::ZERO);
    assert_eq!(limiter.check("k", 0).remaining(), 100);
    assert!(limiter.is_empty(), "a refused or peeked key takes no cell");
}

#[test]
fn decisions_carry_header_values() {
    let (limiter, clock) = manual(Quota::per_minute(60).allow_burst(10), 64);
    clock.advance(Duration::from_secs(1));
    let d = limiter.check("k", 4);
    assert_eq!(d.remaining(), 6);
    assert_eq!(d.reset_after(), Duration::from_secs(4));
    let headers = d.headers("account");
    assert_eq!(
        headers[0],
        ("RateLimit-Policy", "\"account\";q=10;w=10".to_string())
    );
    assert_eq!(headers[1], ("RateLimit", "\"account\";r=6;t=4".to_string()));
    assert_eq!(headers.len(), 2);
}

#[test]
fn string_and_integer_keys_are_distinct() {
    let (limiter, clock) = manual(Quota::per_second(1), 64);
    assert!(clock.now() == 0);
    assert!(limiter.check("7", 1).is_allowed());
    assert!(limiter.check(&7u64, 1).is_allowed());
    assert!(limiter.check(&String::from("7"), 1).would_refuse());
}

/// Threads churning through many short-lived keys in a tiny table (cells
/// reclaimed, tombstones, shard rebuilds all the time) while each also
/// hammers one long-lived key: every long-lived key is admitted exactly
/// burst + rate × elapsed times, so no update was lost or landed elsewhere.
#[test]
fn concurrent_churn_keeps_every_key_exact() {
    let (limiter, clock) = manual(Quota::per_second(1_000_000_000), 256);
    let limiter = Arc::new(limiter);
    let tracked = Quota::per_second(1000).allow_burst(20);
    let steps = 100u64;
    let barrier = Arc::new(Barrier::new(5));
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let (limiter, barrier) = (limiter.clone(), barrier.clone());
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                let mine = format!("tracked-{t}");
                let mut admitted = 0u64;
                for _ in 0..steps {
                    barrier.wait();
                    for _ in 0..50 {
                        // Noise: fresh keys whose cells expire at once.
                        for _ in 0..20 {
                            let k: u64 = rng.random();
                            assert!(limiter.check(&k, 1).is_allowed());
                        }
                        admitted +=
                            u64::from(limiter.check_with(mine.as_str(), tracked, 1).is_allowed());
                    }
                    barrier.wait();
                }
                admitted
            })
        })
        .collect();
    for _ in 0..steps {
        barrier.wait();
        barrier.wait();
        clock.advance(Duration::from_millis(5)); // 5 more units per tracked key
    }
    for w in workers {
        assert_eq!(w.join().unwrap(), 20 + 5 * (steps - 1));
    }
    let s = limiter.stats();
    assert!(s.len <= 256);
    assert!(s.reclaimed + s.evictions > 50_000, "{s:?}");
}

/// A key listed twice in one check_all sees both debits; it is decided, not
/// retried forever.
#[test]
fn check_all_with_a_repeated_key_is_decided() {
    let (limiter, _clock) = manual(Quota::per_second(100), 64);
    let k = limiter.key("k");
    let q = Quota::per_second(100);
    let d = limiter.check_all(&[(k, q, 60), (k, q, 60)]);
    assert_eq!(d.outcome(), Outcome::Refused);
    assert_eq!(d.limited_by(), 0b10);
    assert_eq!(limiter.check(&k, 0).remaining(), 100);
    assert!(limiter.check_all(&[(k, q, 40), (k, q, 60)]).is_allowed());
    assert_eq!(limiter.check(&k, 0).remaining(), 0);
}

/// "Never fits" outranks a wait in a combined decision.
#[test]
fn check_all_never_fits_outranks_a_wait() {
    let (limiter, _clock) = manual(Quota::per_second(10), 64);
    let (a, b) = (limiter.key("a"), limiter.key("b"));
    limiter.check(&a, 10);
    let d = limiter.check_all(&[(a, Quota::per_second(10), 1), (b, Quota::per_second(1), 5)]);
    assert_eq!(d.outcome(), Outcome::NeverFits);
    assert_eq!(d.retry_after(), Duration::ZERO);
    assert_eq!(d.quota(), Quota::per_second(1));
    assert_eq!(d.limited_by(), 0b11);
}

/// Quotas with long windows keep limiting (their arrival times fit), and
/// windows beyond the maximum are clamped.
#[test]
fn long_windows_keep_limiting() {
    let (limiter, clock) = manual(Quota::per_period(12, Duration::from_secs(365 * 86_400)), 64);
    clock.advance(Duration::from_secs(200 * 86_400));
    let admitted = (0..1000)
        .filter(|_| limiter.check("k", 1).is_allowed())
        .count();
    assert_eq!(admitted, 12);
    let q = Quota::per_day(1).allow_burst(10_000);
    assert!(q.window() <= ringfence::limit::MAX_WINDOW);
    let (limiter, _clock) = manual(q, 64);
    let admitted = (0..20_000)
        .filter(|_| limiter.check("k", 1).is_allowed())
        .count();
    assert_eq!(admitted as u64, q.burst());
    let q = Quota::with_interval(Duration::from_secs(3 * 365 * 86_400));
    assert_eq!(q.window(), ringfence::limit::MAX_WINDOW);
    let (limiter, _clock) = manual(q, 64);
    assert_eq!(
        (0..100)
            .filter(|_| limiter.check("k", 1).is_allowed())
            .count(),
        1
    );
}

/// A refund gives back only what has not yet been replenished anyway.
#[test]
fn late_settlement_does_not_credit_later_usage() {
    let (limiter, clock) = manual(Quota::per_second(100), 64);
    let (r, _) = limiter.reserve("k", 100).unwrap();
    clock.advance(Duration::from_secs(1)); // the reserved units are back
    assert!(limiter.check("k", 100).is_allowed());
    limiter.settle(r, 0).unwrap();
    assert_eq!(limiter.check("k", 1).outcome(), Outcome::Refused);
    // Half elapsed: half of the unused part can still come back.
    let (limiter, clock) = manual(Quota::per_second(100), 64);
    let (r, _) = limiter.reserve("k", 100).unwrap();
    clock.advance(Duration::from_millis(500));
    let after = limiter.settle(r, 0).unwrap();
    assert_eq!(after.remaining(), 100);
}

/// A clock stepping back below a reclaimed key's arrival time does not give
/// that key a full bucket again.
#[test]
fn reclaimed_keys_get_no_capacity_from_a_clock_stepping_back() {
    let (limiter, clock) = manual(Quota::per_second(10), 1);
    clock.set(Duration::from_secs(100));
    assert!(limiter.check("a", 10).is_allowed());
    clock.set(Duration::from_secs(102));
    assert!(limiter.check("b", 1).is_allowed()); // reclaims a's expired cell
    assert_eq!(limiter.stats().reclaimed, 1);
    clock.set(Duration::from_secs(100));
    assert_eq!(limiter.check("a", 10).outcome(), Outcome::Refused);
}

#[test]
fn snapshots_restore_every_debt_and_quota_exactly() {
    let build = || manual(Quota::per_minute(600).allow_burst(50), 10_000);
    let (a, clock) = build();
    clock.set(Duration::from_secs(100));
    a.set_quota("vip", Quota::per_second(100));
    for k in 0..3000u64 {
        a.check(&k, 1 + k % 50);
    }
    a.check("vip", 80);
    let bytes = a.snapshot();
    let (b, clock_b) = build();
    clock_b.set(Duration::from_secs(5)); // another process, another clock reading
    b.restore(&bytes).unwrap();
    assert_eq!(
        b.snapshot(),
        bytes,
        "restore then snapshot is byte-identical"
    );
    for k in (0..3000u64).step_by(37) {
        let (x, y) = (a.check(&k, 0), b.check(&k, 0));
        assert_eq!(
            (x.remaining(), x.reset_after()),
            (y.remaining(), y.reset_after()),
            "key {k}"
        );
    }
    assert_eq!(b.quota_of("vip"), Quota::per_second(100));
    assert_eq!(b.check("vip", 0).remaining(), 20);

    // Bad input: errors, and nothing applied.
    let (c, _) = build();
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(c.restore(&bytes[..cut]).is_err());
    }
    let mut flipped = bytes.clone();
    flipped[20] ^= 0x40;
    let err = c.restore(&flipped).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    assert!(c.is_empty());
    let (small, _) = manual(Quota::per_minute(600), 100);
    assert!(small
        .restore(&bytes)
        .unwrap_err()
        .to_string()
        .contains("capacity"));
    assert!(b.restore(&bytes).unwrap_err().to_string().contains("empty"));
}
