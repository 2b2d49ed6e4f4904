//! Guard::check against governor's keyed check_key on String keys, same run.
//!
//! Run: `cargo bench --bench guard`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use governor::DefaultKeyedRateLimiter;
use ringfence::guard::{Guard, GuardConfig, Request};
use std::hint::black_box;
use std::num::NonZeroU32;

const ACCOUNTS: usize = 10_000;

fn fingerprints(i: usize) -> Vec<(String, String)> {
    vec![
        (
            "ip".into(),
            format!("73.{}.{}.{}", i % 200, (i / 200) % 250, 1 + i % 250),
        ),
        ("asn".into(), format!("AS{}", 7000 + i % 10)),
        ("device".into(), format!("dev-{i:08x}")),
        ("payment".into(), format!("card-{i:08x}")),
        ("payment_bin".into(), format!("4{:05}", i % 20)),
        (
            "ja4".into(),
            format!("t13d1516h2_8daaf6152771_{:012x}", i % 7),
        ),
        ("user_agent".into(), format!("OpenAI/Python 1.{}", i % 7)),
        (
            "email_domain".into(),
            ["gmail.com", "outlook.com", "yahoo.com"][i % 3].into(),
        ),
    ]
}

fn guard(c: &mut Criterion) {
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct-{i:08}")).collect();
    let fps: Vec<Vec<(String, String)>> = (0..ACCOUNTS).map(fingerprints).collect();
    let fp_refs: Vec<Vec<(&str, &str)>> = fps
        .iter()
        .map(|f| f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .collect();
    let config = GuardConfig {
        account_requests_per_minute: 1_000_000_000,
        account_tokens_per_minute: 1_000_000_000_000,
        ..GuardConfig::default()
    };
    let g = Guard::new(config);
    // A 1 KB prompt of varied words (a repeated sentence would have too few
    // distinct shingles to be realistic).
    let vocab = [
        "data", "model", "train", "loss", "graph", "query", "token", "layer", "write", "prove",
    ];
    let mut x = 1u64;
    let mut prompt = String::new();
    while prompt.len() < 1024 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let w = (x >> 33) as usize % 600;
        prompt.push_str(&format!("{}{} ", vocab[w % 10], w));
    }
    for i in 0..ACCOUNTS {
        g.check(&Request {
            account: &accounts[i],
            fingerprints: &fp_refs[i],
            prompt: None,
            system: None,
            model: None,
            input_tokens: 10,
            max_tokens: 256,
        });
    }
    let gv: DefaultKeyedRateLimiter<String> = governor::RateLimiter::keyed(
        governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap()),
    );
    let mut group = c.benchmark_group("guard_check");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("ringfence/8_fingerprints", |b| {
        b.iter(|| {
            i = (i + 1) % ACCOUNTS;
            black_box(g.check(&Request {
                account: &accounts[i],
                fingerprints: &fp_refs[i],
                prompt: None,
                system: None,
                model: None,
                input_tokens: 10,
                max_tokens: 256,
            }))
        })
    });
    group.bench_function("ringfence/8_fingerprints_1kb_prompt", |b| {
        b.iter(|| {
            i = (i + 1) % ACCOUNTS;
            black_box(g.check(&Request {
                account: &accounts[i],
                fingerprints: &fp_refs[i],
                prompt: Some(&prompt),
                system: None,
                model: None,
                input_tokens: 250,
                max_tokens: 256,
            }))
        })
    });
    // Two threads on disjoint halves of the accounts: wall time per check.
    group.bench_function("ringfence/8_fingerprints_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|sc| {
                for t in 0..2usize {
                    let (g, accounts, fp_refs) = (&g, &accounts, &fp_refs);
                    sc.spawn(move || {
                        for n in 0..iters as usize / 2 {
                            let i = (t * ACCOUNTS / 2 + n) % ACCOUNTS;
                            black_box(g.check(&Request {
                                account: &accounts[i],
                                fingerprints: &fp_refs[i],
                                prompt: None,
                                system: None,
                                model: None,
                                input_tokens: 10,
                                max_tokens: 256,
                            }));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.bench_function("governor/check_key_string", |b| {
        b.iter(|| {
            i = (i + 1) % ACCOUNTS;
            black_box(gv.check_key(&accounts[i]).is_ok())
        })
    });
    group.finish();
}

criterion_group!(benches, guard);
criterion_main!(benches);
