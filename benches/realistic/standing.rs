//! The same single-thread workload on a guard that decides on standing and
//! records in the background (`[observe] mode = "background"`, one
//! observer thread): the request thread pays for the account's standing,
//! the limits and a copy of the request.
//!
//! A closed loop (the next request as soon as the last returns) offers more
//! than one observer records, so its queue fills and requests are recorded
//! on their own thread again: that run shows saturation. The paced runs
//! offer one request every `pace` (three times the inline guard's mean cost, so
//! the observer is about a third busy), which is how a gateway calls it: at
//! the rate requests arrive.

use crate::stats::{median, percentile_cells, t, tally_line, Stats, Tally, PERCENTILE_HEADER};
use crate::workload::{hash2, Builder, World};
use crate::TRACE_NS_PER_REQUEST;
use ringfence::guard::Guard;
use ringfence::limit::ManualClock;
use std::time::{Duration, Instant};

/// `Guard::check` on `seq`, one request every `pace` at most (spinning in
/// between; `None`: closed loop).
fn run_paced(
    guard: &Guard,
    clock: &ManualClock,
    world: &World,
    seq: &[u32],
    prompt_seed: Option<u64>,
    pace: Option<Duration>,
    lat: &mut Vec<u32>,
) -> Tally {
    let mut b = Builder::new(world);
    let mut tally = Tally::default();
    let mut next = Instant::now();
    for (k, &a) in seq.iter().enumerate() {
        clock.advance(Duration::from_nanos(TRACE_NS_PER_REQUEST));
        b.load(a, prompt_seed.map(|s| hash2(s, k as u64)));
        if let Some(pace) = pace {
            while Instant::now() < next {
                std::hint::spin_loop();
            }
            next += pace;
        }
        lat.push(b.check(guard, a, prompt_seed.is_some(), &mut tally));
    }
    tally
}

/// Runs and prints the background section; `inline_none` and
/// `inline_prompt` are the inline guard's mean costs (ns), which set the pace.
pub(crate) fn section(
    guard: &Guard,
    clock: &ManualClock,
    world: &World,
    requests: usize,
    rounds: usize,
    inline_none: f64,
    inline_prompt: f64,
) {
    println!();
    println!(
        "decided on standing, recorded by one observer thread ([observe] mode = \"background\"):"
    );
    println!("mean per call (median of {rounds} round(s) [min-max]), percentiles over all rounds");
    println!(
        "  {:<44} {:>22}  {PERCENTILE_HEADER}  {:>10}",
        "", "mean [min-max]", "overflowed"
    );
    let pace_none = Duration::from_nanos((3.0 * inline_none) as u64);
    let pace_prompt = Duration::from_nanos((3.0 * inline_prompt) as u64);
    let runs: [(String, bool, Option<Duration>); 3] = [
        (
            format!("no prompt, one per {}", t(pace_none.as_nanos() as f64)),
            false,
            Some(pace_none),
        ),
        (
            format!(
                "300-1500 B prompt, one per {}",
                t(pace_prompt.as_nanos() as f64)
            ),
            true,
            Some(pace_prompt),
        ),
        ("300-1500 B prompt, closed loop".to_string(), true, None),
    ];
    let mut tally = Tally::default();
    for (i, (label, prompt, pace)) in runs.iter().enumerate() {
        let mut means = Vec::new();
        let mut all = Vec::new();
        let overflowed = guard.overflowed();
        for r in 0..rounds {
            let seq = world.sequence(requests, hash2(0x0062_6772_6f75_6e64, (i * 16 + r) as u64));
            let mut lat = Vec::with_capacity(requests);
            let seed = prompt.then(|| hash2(0x6267_7072_6f6d_7074, (i * 16 + r) as u64));
            tally.add(run_paced(guard, clock, world, &seq, seed, *pace, &mut lat));
            means.push(lat.iter().map(|&x| f64::from(x)).sum::<f64>() / lat.len() as f64);
            all.extend_from_slice(&lat);
            guard.flush();
        }
        let s = Stats::of(&mut all);
        let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = means.iter().copied().fold(0.0, f64::max);
        let over = guard.overflowed() - overflowed;
        println!(
            "  {label:<44} {:>22}  {}  {:>9.1}%",
            format!("{} [{}-{}]", t(median(&means)), t(lo), t(hi)),
            percentile_cells(&s),
            100.0 * over as f64 / (requests * rounds) as f64
        );
    }
    println!(
        "  overflowed: requests that found the queue full and were recorded on their own thread"
    );
    println!("  decisions: {}", tally_line(&tally));
}
