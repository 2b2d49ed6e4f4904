//! Replay throughput, JSON parsing included, on a pre-generated in-memory
//! trace whose prompts are 300 bytes (the simulated default scenario at
//! scale 0.05, one day, each prompt extended with the next ones' words).
//!
//! In the same run, for reference: parsing each line with
//! `serde_json::from_str::<serde_json::Value>`, parsing it with
//! ringfence's borrowing `TraceLine::parse`, and the guard's `check` +
//! `settle` alone on the same, already parsed requests (so the difference
//! to the full replay is what the replay loop itself costs).
//!
//! Run: `cargo bench --bench replay`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringfence::guard::{Guard, GuardConfig, Request};
use ringfence_lab::replay::{write_trace, ReplayOptions, Replayer, TraceLine};
use ringfence_lab::sim::{simulate, Record, Scenario};
use std::hint::black_box;

const PROMPT_BYTES: usize = 300;

fn trace() -> Vec<Record> {
    let mut trace = simulate(&Scenario::builtin("default").unwrap().scaled(0.05));
    let prompts: Vec<String> = trace.iter().map(|r| r.prompt.clone()).collect();
    for (i, r) in trace.iter_mut().enumerate() {
        let mut j = i;
        while r.prompt.len() < PROMPT_BYTES {
            j = (j + 1) % prompts.len();
            r.prompt.push(' ');
            r.prompt.push_str(&prompts[j]);
        }
        let mut end = PROMPT_BYTES;
        while !r.prompt.is_char_boundary(end) {
            end -= 1;
        }
        r.prompt.truncate(end);
        r.input_tokens = (end / 4) as u32;
    }
    trace
}

fn replay(c: &mut Criterion) {
    let records = trace();
    let mut jsonl = Vec::new();
    write_trace(&records, &mut jsonl).unwrap();
    let text = std::str::from_utf8(&jsonl).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len() as u64;
    eprintln!(
        "{n} lines, {:.0} bytes per line on average",
        jsonl.len() as f64 / n as f64
    );

    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.bench_function("parse/serde_json_value", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_str::<serde_json::Value>(l).unwrap());
            }
        })
    });
    group.bench_function("parse/ringfence_trace_line", |b| {
        b.iter(|| {
            for (i, l) in lines.iter().enumerate() {
                black_box(TraceLine::parse(l, i as u64 + 1).unwrap());
            }
        })
    });
    // A fresh guard per iteration (built outside the timing, and dropped
    // outside it too: the routine returns it).
    group.bench_function("guard_only/check_and_settle_parsed", |b| {
        let parsed: Vec<TraceLine<'_>> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| TraceLine::parse(l, i as u64 + 1).unwrap())
            .collect();
        let fps: Vec<Vec<(&str, &str)>> = parsed
            .iter()
            .map(|t| {
                t.fingerprints
                    .iter()
                    .map(|(k, v)| (k.as_ref(), v.as_ref()))
                    .collect()
            })
            .collect();
        b.iter_batched(
            || Guard::for_replay(GuardConfig::default()),
            |(guard, clock)| {
                let t0 = parsed[0].ts;
                for (t, f) in parsed.iter().zip(&fps) {
                    clock.set_nanos(((t.ts - t0) * 1e9) as u64);
                    let v = guard.check(&Request {
                        account: &t.account,
                        fingerprints: f,
                        prompt: t.prompt.as_deref(),
                        system: t.system.as_deref(),
                        model: t.model.as_deref(),
                        input_tokens: t.input_tokens.unwrap_or(0),
                        max_tokens: 1024,
                    });
                    if v.allowed() {
                        guard.settle(&v, t.output_tokens.unwrap_or(0));
                    }
                }
                guard
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("replay/parse_check_settle_baseline_report", |b| {
        b.iter_batched(
            || Replayer::new(GuardConfig::default(), ReplayOptions::default()),
            |mut r| {
                r.replay_reader(&jsonl[..], |_| Ok(()), |_| {}).unwrap();
                black_box(r.report());
                r
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
