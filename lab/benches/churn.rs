//! Churn and amnesia: 10 million one-request accounts presenting 30
//! million distinct fingerprint values stream through a guard sized for
//! one million accounts, beside a steady population and an operation.
//! Reports resident memory, throughput against the same traffic without
//! the flood, and what the operation keeps: its linking and its refusals.
//!
//! The traffic, on a clock moving 5 ms per step of the steady traffic:
//! - a population of 200,000 recurring accounts (a device each, addresses
//!   shared by 50 accounts as behind a NAT, distinct prompts);
//! - an operation of 300 accounts sharing 20 cards and 60 devices, asking
//!   for step-by-step reasoning from one template: one request in 40;
//! - with `flood`, five one-request accounts after each step, each with
//!   its own address, device and card (three values never seen again).
//!
//! `cargo bench -p ringfence-lab --bench churn` (RF_STEPS sets the steady
//! requests, default 2,000,000: 10,000,000 flood accounts).

use ringfence::guard::{Guard, GuardConfig, Reason, Request};
use std::time::{Duration, Instant};

const POPULATION: u64 = 200_000;
const OPERATION: u64 = 300;
const FLOOD_PER_STEP: u64 = 5;

fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[derive(Default)]
struct Tally {
    op_requests: u64,
    op_served: u64,
    op_served_last_quarter: u64,
    op_requests_last_quarter: u64,
    benign_denied: u64,
    steady_checks: u64,
    flood_checks: u64,
    /// Seconds spent in the steady traffic's checks.
    steady_seconds: f64,
    seconds: f64,
    /// (steady steps done, checks a second over the last chunk, VmRSS MiB)
    chunks: Vec<(u64, f64, f64)>,
}

fn run(steps: u64, flood: bool) -> (Tally, Guard) {
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(1_000_000));
    let mut t = Tally::default();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut flood_n = 0u64;
    let chunk = (steps / 10).max(1);
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    for step in 0..steps {
        clock.set(Duration::from_millis(step * 5));
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let last_quarter = step >= steps / 4 * 3;
        let timer = Instant::now();
        if step % 40 == 0 {
            let k = x % OPERATION;
            let account = format!("op-{k}");
            let card = format!("op-card-{}", k % 20);
            let device = format!("op-dev-{}", k % 60);
            let prompt = format!(
                "You are a careful tutor. Think step by step and show all of your reasoning before the final answer. Problem {}: prove the claim about sequence {} in full detail.",
                x >> 40,
                x % 997
            );
            let v = guard.check(&Request {
                account: &account,
                fingerprints: &[
                    ("payment", &card),
                    ("device", &device),
                    ("ip", "198.51.100.23"),
                ],
                prompt: Some(&prompt),
                system: None,
                model: Some("frontier"),
                input_tokens: 60,
                max_tokens: 2_000,
            });
            t.op_requests += 1;
            t.op_served += u64::from(v.allowed());
            if last_quarter {
                t.op_requests_last_quarter += 1;
                t.op_served_last_quarter += u64::from(v.allowed());
            }
            if v.allowed() {
                guard.settle(&v, 1_500);
            }
        } else {
            let k = x % POPULATION;
            let account = format!("user-{k}");
            let device = format!("dev-{k}");
            let ip = format!("10.{}.{}.1", k / 50 % 256, k / 12_800);
            let prompt = format!(
                "question {} from user {k} about topic {}",
                x >> 44,
                x % 5_003
            );
            let v = guard.check(&Request {
                account: &account,
                fingerprints: &[("device", &device), ("ip", &ip)],
                prompt: Some(&prompt),
                system: None,
                model: Some("frontier"),
                input_tokens: 20,
                max_tokens: 300,
            });
            if v.reasons.contains(&Reason::SuspectedDistillation) && !v.allowed() {
                t.benign_denied += 1;
            }
            if v.allowed() {
                guard.settle(&v, 200);
            }
        }
        t.steady_seconds += timer.elapsed().as_secs_f64();
        t.steady_checks += 1;
        if flood {
            for _ in 0..FLOOD_PER_STEP {
                flood_n += 1;
                let account = format!("throwaway-{flood_n}");
                let ip = format!("f{flood_n}");
                let device = format!("fd{flood_n}");
                let card = format!("fc{flood_n}");
                guard.check(&Request {
                    account: &account,
                    fingerprints: &[("ip", &ip), ("device", &device), ("payment", &card)],
                    prompt: None,
                    system: None,
                    model: None,
                    input_tokens: 10,
                    max_tokens: 50,
                });
                t.flood_checks += 1;
            }
        }
        if (step + 1) % chunk == 0 {
            let checks = t.steady_checks + t.flood_checks;
            let rate = (checks - last.1) as f64 / last.0.elapsed().as_secs_f64();
            t.chunks.push((step + 1, rate, rss_mib("VmRSS:")));
            last = (Instant::now(), checks);
        }
    }
    t.seconds = start.elapsed().as_secs_f64();
    (t, guard)
}

/// The operation's accounts linked to the largest of its clusters, and
/// that cluster's size.
fn linked(guard: &Guard) -> (u64, u32) {
    let mut sizes = std::collections::HashMap::<u64, (u64, u32)>::new();
    for k in 0..OPERATION {
        let (c, _) = guard.score_of(&format!("op-{k}"));
        let e = sizes.entry(c.id).or_insert((0, c.size));
        e.0 += 1;
    }
    sizes.values().copied().max().unwrap_or((0, 0))
}

fn main() {
    let steps = std::env::var("RF_STEPS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(2_000_000u64);
    println!("churn: a guard sized for 1,000,000 accounts; {steps} steady requests (200,000 recurring accounts, an operation of 300 accounts at one request in 40)");
    for flood in [false, true] {
        let before = rss_mib("VmRSS:");
        let (t, guard) = run(steps, flood);
        let (members, size) = linked(&guard);
        let checks = t.steady_checks + t.flood_checks;
        println!();
        println!(
            "{}: {checks} checks in {:.1} s ({:.0} checks/s); {} one-request accounts, {} distinct flood values",
            if flood { "with the flood" } else { "without the flood" },
            t.seconds,
            checks as f64 / t.seconds,
            t.flood_checks,
            t.flood_checks * 3
        );
        println!(
            "  operation: {:.2} % of its {} requests served ({:.2} % in the last quarter); {members} of its 300 accounts in its largest cluster (size {size})",
            100.0 * t.op_served as f64 / t.op_requests.max(1) as f64,
            t.op_requests,
            100.0 * t.op_served_last_quarter as f64 / t.op_requests_last_quarter.max(1) as f64,
        );
        println!(
            "  the steady traffic's checks: {:.2} µs each (prompt and formatting included)",
            1e6 * t.steady_seconds / t.steady_checks.max(1) as f64
        );
        println!(
            "  benign requests denied as distillation: {}",
            t.benign_denied
        );
        println!(
            "  resident memory: {before:.0} MiB before the guard, {:.0} MiB at the end, peak {:.0} MiB (VmHWM, the whole process); guard's own count {:.0} MiB",
            rss_mib("VmRSS:"),
            rss_mib("VmHWM:"),
            guard.memory_bytes() as f64 / (1 << 20) as f64
        );
        let rows: Vec<String> = t
            .chunks
            .iter()
            .map(|(s, r, m)| format!("{}k: {:.0}/s {:.0} MiB", s / 1000, r, m))
            .collect();
        println!(
            "  by tenths (steady steps: checks a second, VmRSS): {}",
            rows.join("; ")
        );
        drop(guard);
    }
}
