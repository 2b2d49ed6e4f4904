//! The keyed limiter against governor's keyed limiter, same keys, one run.
//!
//! Run: `cargo bench --bench limit`. Both use their default clock (both read
//! the TSC through quanta) and a quota large enough that every check is
//! admitted, so both do the full update path. ringfence's table has room for
//! 1.5× the keys (its capacity is fixed; governor's map grows to fit).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use governor::DefaultKeyedRateLimiter;
use ringfence::limit::{Quota, RateLimiter};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;

fn ours() -> RateLimiter {
    RateLimiter::builder(Quota::per_second(1_000_000_000).allow_burst(1_000_000_000))
        .capacity(KEYS * 3 / 2)
        .build()
}

fn theirs<K: std::hash::Hash + Eq + Clone>() -> DefaultKeyedRateLimiter<K> {
    governor::RateLimiter::keyed(
        governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap())
            .allow_burst(NonZeroU32::new(1_000_000_000).unwrap()),
    )
}

/// Runs `f` over `keys` split between `threads` threads, `iters` times, and
/// returns the wall time.
fn threaded<K: Sync>(keys: &[K], threads: usize, iters: u64, f: impl Fn(&K) + Sync) -> Duration {
    let chunk = keys.len().div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for part in keys.chunks(chunk) {
            let f = &f;
            s.spawn(move || {
                for _ in 0..iters {
                    for k in part {
                        f(k);
                    }
                }
            });
        }
    });
    start.elapsed()
}

fn keyed(c: &mut Criterion) {
    let strings: Vec<String> = (0..KEYS).map(|i| format!("acct-{i:08}")).collect();
    let ints: Vec<u64> = (0..KEYS as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();

    let mut g = c.benchmark_group("keyed_check");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(30);
    for threads in [1usize, 2] {
        let rf = ours();
        let gv = theirs::<String>();
        strings.iter().for_each(|k| {
            rf.check(k, 1);
            let _ = gv.check_key(k);
        });
        g.bench_function(BenchmarkId::new("ringfence/string", threads), |b| {
            b.iter_custom(|iters| {
                threaded(&strings, threads, iters, |k| {
                    black_box(rf.check(k, 1));
                })
            })
        });
        g.bench_function(BenchmarkId::new("governor/string", threads), |b| {
            b.iter_custom(|iters| {
                threaded(&strings, threads, iters, |k| {
                    let _ = black_box(gv.check_key(k));
                })
            })
        });

        let rf = ours();
        let gv = theirs::<u64>();
        ints.iter().for_each(|k| {
            rf.check(k, 1);
            let _ = gv.check_key(k);
        });
        g.bench_function(BenchmarkId::new("ringfence/u64", threads), |b| {
            b.iter_custom(|iters| {
                threaded(&ints, threads, iters, |k| {
                    black_box(rf.check(k, 1));
                })
            })
        });
        g.bench_function(BenchmarkId::new("governor/u64", threads), |b| {
            b.iter_custom(|iters| {
                threaded(&ints, threads, iters, |k| {
                    let _ = black_box(gv.check_key(k));
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, keyed);
criterion_main!(benches);
