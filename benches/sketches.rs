//! The sketches against the best existing crates, side by side, same inputs.
//!
//! Run: `cargo bench --bench sketches`. Compare the ratios within one run;
//! absolute times on shared machines are noisy.

use cardinality_estimator::CardinalityEstimator;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pdatastructs::countminsketch::CountMinSketch as PdCountMin;
use probminhash::densminhash::OptDensMinHash;
use probminhash::nohasher::NoHashHasher;
use ringfence::sketch::{shingle, CountMin, HyperLogLog, Signature};
use std::hash::BuildHasherDefault;
use std::hint::black_box;

/// Distinct-looking keys (a bijection of 0..n), as a gateway would see ids.
fn keys(n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555)
        .collect()
}

fn hll_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("hll_insert_p12");
    // A new sketch filled with n distinct items (creation and drop included;
    // no estimate: see hll_estimate).
    for n in [1_000u64, 100_000] {
        let items = keys(n);
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("ringfence", n), &items, |b, items| {
            b.iter(|| {
                let h = HyperLogLog::new(12).unwrap();
                for x in items {
                    h.insert(x);
                }
                black_box(h)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("cardinality-estimator", n),
            &items,
            |b, items| {
                b.iter(|| {
                    let mut h = CardinalityEstimator::<u64>::new();
                    for x in items {
                        h.insert(x);
                    }
                    black_box(h)
                })
            },
        );
    }
    // The steady state of a long-lived sketch: items already seen.
    let items = keys(100_000);
    g.throughput(Throughput::Elements(items.len() as u64));
    let h = HyperLogLog::new(12).unwrap();
    items.iter().for_each(|x| h.insert(x));
    g.bench_function("ringfence/warm", |b| {
        b.iter(|| {
            for x in &items {
                h.insert(x);
            }
        })
    });
    let mut ce = CardinalityEstimator::<u64>::new();
    items.iter().for_each(|x| ce.insert(x));
    g.bench_function("cardinality-estimator/warm", |b| {
        b.iter(|| {
            for x in &items {
                ce.insert(x);
            }
        })
    });
    g.finish();

    // Estimates: cardinality-estimator keeps running sums on every insert
    // and answers in O(1); ringfence reads the registers (O(m)).
    let mut g = c.benchmark_group("hll_estimate_p12");
    g.bench_function("ringfence", |b| {
        b.iter(|| black_box(black_box(&h).estimate()))
    });
    g.bench_function("cardinality-estimator", |b| {
        b.iter(|| black_box(black_box(&ce).estimate()))
    });
    g.finish();
}

/// About 1 KB of prompt-like text: words drawn from a 2,000-word vocabulary
/// with a Zipf-like skew, capitalised at sentence starts.
fn text_1kb() -> String {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = String::new();
    let mut sentence_start = true;
    while s.len() < 1024 {
        let r = next();
        // Rank ~ 1/u: frequent words often, rare words sometimes.
        let rank = (2000.0 / (1.0 + (r % 1999) as f64)) as u64;
        let word = format!(
            "w{}{}",
            rank,
            ["ing", "ed", "s", "", "ly"][(r >> 32) as usize % 5]
        );
        if sentence_start {
            s.push_str(&word.to_uppercase());
        } else {
            s.push_str(&word);
        }
        sentence_start = r % 11 == 0;
        s.push_str(if sentence_start { ". " } else { " " });
    }
    s.truncate(1024);
    s
}

fn minhash_1kb(c: &mut Criterion) {
    let text = text_1kb();
    let hashes = shingle(&text, 3, 0);
    let mut g = c.benchmark_group("minhash_1kb_k128");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("ringfence/text", |b| {
        b.iter(|| black_box(Signature::from_text(128, 0, black_box(&text), 3).unwrap()))
    });
    g.bench_function("ringfence/hashes", |b| {
        b.iter(|| {
            black_box(Signature::from_hashes(128, 0, black_box(&hashes).iter().copied()).unwrap())
        })
    });
    g.bench_function("probminhash-optdens/hashes", |b| {
        b.iter(|| {
            let mut s = OptDensMinHash::<f64, u64, NoHashHasher>::new(
                128,
                BuildHasherDefault::<NoHashHasher>::default(),
            );
            s.sketch_slice(black_box(&hashes)).unwrap();
            black_box(s.get_hsketch_u64())
        })
    });
    g.finish();
}

fn count_min_add(c: &mut Criterion) {
    // A skewed stream: item i appears about 1/(i+1) of the time.
    let items: Vec<u64> = (0..100_000u64)
        .map(|i| (i * 2654435761) % ((i % 1000) + 1))
        .collect();
    let mut g = c.benchmark_group("count_min_add_eps0.001_delta0.01");
    g.throughput(Throughput::Elements(items.len() as u64));
    let cm = CountMin::with_error(0.001, 0.01).unwrap();
    g.bench_function("ringfence", |b| {
        b.iter(|| {
            for x in &items {
                cm.add(x, 1);
            }
        })
    });
    let cons = CountMin::with_error(0.001, 0.01)
        .unwrap()
        .conservative(true);
    g.bench_function("ringfence-conservative", |b| {
        b.iter(|| {
            for x in &items {
                cons.add(x, 1);
            }
        })
    });
    let mut pd: PdCountMin<u64, u32> = PdCountMin::with_point_query_properties(0.001, 0.01);
    g.bench_function("pdatastructs", |b| {
        b.iter(|| {
            for x in &items {
                pd.add(x);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, hll_insert, minhash_1kb, count_min_add);
criterion_main!(benches);
