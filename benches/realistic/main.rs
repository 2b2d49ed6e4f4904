//! `Guard::check` at production shape, with governor's keyed limiter measured
//! alongside in the same run.
//!
//! `benches/guard.rs` is the best case: 10,000 accounts whose cells stay in
//! cache, the same fingerprints every call, one prompt repeated. This bench
//! is the shape a gateway sees:
//!
//! - 1,000,000 tracked accounts (`acct-00000000` …), each presenting 8
//!   fingerprints (ip, asn, device, payment, payment_bin, ja4, user_agent,
//!   email_domain) with realistic sharing: devices and cards unique per
//!   account, addresses mostly unique with some shared /24s and NATs,
//!   BINs, TLS fingerprints, user agents, ASNs and email domains shared by
//!   many (skewed popularity);
//! - Zipf activity (exponent 1) over a random permutation of the accounts,
//!   so a few accounts are busy, most ask a few times a day, and the busy
//!   ones are scattered in memory;
//! - a replay clock that advances 28.8 ms per request (3 M requests a
//!   simulated day), so an account's one-minute memo mostly misses and the
//!   guard's periodic rebuild and expiry run inside the timed phase; the
//!   warm-up (untimed) presents every account once, spread over the day
//!   before, so the oldest evidence expires while the bench runs;
//! - a distinct prompt per request, 300 to 1,500 bytes (uniform) of varied
//!   words, built outside the timed section.
//!
//! Each call is timed on its own with `Instant::now()` (the timer's own
//! cost, about 20 to 30 ns, is printed and included in every figure).
//! Requests are generated, and verdicts settled, outside the timed section.
//!
//! Run: `cargo bench --bench realistic`. Environment:
//! - `RF_ACCOUNTS` (default 1000000): accounts tracked;
//! - `RF_REQUESTS` (default 200000): timed requests per round and per
//!   multi-thread run (the run with background maintenance takes a quarter:
//!   while `maintain` holds the guard, requests wait);
//! - `RF_ROUNDS` (default 3): single-thread rounds, governor and ringfence
//!   alternating;
//! - `RF_THREADS` (default `1,2`): thread counts for the shared-guard runs;
//!   the run with background maintenance uses the first;
//! - `RF_MAINTAIN_MS` (default 10): the background thread's sleep between
//!   `Guard::maintain` calls in that run;
//! - `RF_INTEL` (default `off`): `key` configures a consortium key (shared
//!   values are remembered for export: a token computed once per value as
//!   it becomes shared, an account sample kept per shared value); `imports`
//!   also imports 1,000 indicators of each of six kinds (payment, device,
//!   payment_bin, ja4, user_agent, email_domain) that no request matches,
//!   so that every value of those kinds a request presents is hashed under
//!   the key once per import (a 64 Ki-cell cache remembers);
//!   `imports+templates` adds 1,000 template-band indicators, with
//!   `intel.min_weight` lowered to 0.1 so that they count (shared bands
//!   are then hashed too). Compare runs by their ratio to governor, which
//!   is measured in each.

mod standing;
mod stats;
mod workload;

use stats::{
    median, nanos, percentile_cells, t, tally_line, timer_overhead, Stats, Tally, PERCENTILE_HEADER,
};
use workload::{
    hash2, permutation, Builder, World, PROMPT_MAX, PROMPT_MIN, VOCABULARY, ZIPF_EXPONENT,
};

use governor::DefaultKeyedRateLimiter;
use ringfence::guard::{Guard, GuardConfig, ObserveMode};
use ringfence::intel::{ConsortiumKey, ImportIndicator};
use ringfence::limit::{Clock, ManualClock};
use std::fmt::Write as _;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Trace time per request: 86,400 s / 3,000,000 requests a simulated day.
/// A busy account still repeats within a minute (its memo hits); most
/// accounts ask a few times a day (theirs misses), and the guard's rebuild,
/// due every `link.rebuild_every_secs` (600 s) of trace time, comes due
/// every ~21,000 requests.
pub(crate) const TRACE_NS_PER_REQUEST: u64 = 28_800_000;
/// The warm-up presents every account once over this much trace time (the
/// day before the timed phase), so evidence starts expiring right away.
const WARMUP_SPAN_NS: u64 = 86_400 * 1_000_000_000;
/// Threads sharing one guard advance the shared clock every this many
/// requests (by as many requests' worth), so that they do not write the
/// clock's cache line at every call, which a real clock never does.
const CLOCK_STRIDE: u64 = 16;
/// The background maintenance thread's pause between `maintain` calls, ms
/// (`RF_MAINTAIN_MS` overrides). The replay runs far faster than real time
/// (a request's 28.8 ms of trace in a few µs), so this is about a minute of
/// trace time: maintenance ten times as often as the in-band rebuild.
const MAINTAIN_EVERY_MS: usize = 10;

// ---------------------------------------------------------------------------
// The measured loops.

/// governor's `check_key` on `seq`'s account names; latencies into `lat`.
fn run_governor(
    gv: &DefaultKeyedRateLimiter<String>,
    world: &World,
    seq: &[u32],
    lat: &mut Vec<u32>,
) -> u64 {
    let mut b = Builder::new(world);
    let mut refused = 0;
    for &a in seq {
        b.name.clear();
        let _ = write!(b.name, "acct-{a:08}");
        let t0 = Instant::now();
        let ok = gv.check_key(black_box(&b.name)).is_ok();
        lat.push(nanos(t0.elapsed()));
        refused += u64::from(!ok);
    }
    refused
}

/// `Guard::check` on `seq`, one thread, the clock advancing per request.
fn run_guard(
    guard: &Guard,
    clock: &ManualClock,
    world: &World,
    seq: &[u32],
    prompt_seed: Option<u64>,
    lat: &mut Vec<u32>,
) -> Tally {
    let mut b = Builder::new(world);
    let mut tally = Tally::default();
    for (k, &a) in seq.iter().enumerate() {
        clock.advance(Duration::from_nanos(TRACE_NS_PER_REQUEST));
        b.load(a, prompt_seed.map(|s| hash2(s, k as u64)));
        lat.push(b.check(guard, a, prompt_seed.is_some(), &mut tally));
    }
    tally
}

struct Threaded {
    lat: Vec<u32>,
    /// Σ over threads of calls / time inside `check`.
    check_rate: f64,
    wall: Duration,
    tally: Tally,
    maintain: Vec<u32>,
    /// Trace time the run covered, ns.
    trace_ns: u64,
}

/// `Guard::check` with prompts from `threads` threads on one guard, `total`
/// requests in all; with a background thread calling `maintain` when
/// `maintain` is set.
fn run_threads(
    guard: &Guard,
    clock: &ManualClock,
    world: &World,
    threads: usize,
    total: usize,
    seed: u64,
    maintain: Option<Duration>,
) -> Threaded {
    let per = total / threads;
    let seqs: Vec<Vec<u32>> = (0..threads)
        .map(|t| world.sequence(per, hash2(seed, t as u64)))
        .collect();
    let stop = AtomicBool::new(false);
    let trace_start = Clock::now(clock);
    let start = Instant::now();
    let (results, wall, maintained) = std::thread::scope(|s| {
        let stop = &stop;
        let background = maintain.map(|pause| {
            s.spawn(move || {
                let mut costs = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    guard.maintain();
                    costs.push(nanos(t0.elapsed()));
                    std::thread::sleep(pause);
                }
                costs
            })
        });
        let workers: Vec<_> = seqs
            .iter()
            .enumerate()
            .map(|(ti, seq)| {
                s.spawn(move || {
                    let mut b = Builder::new(world);
                    let mut tally = Tally::default();
                    let mut lat = Vec::with_capacity(seq.len());
                    for (k, &a) in seq.iter().enumerate() {
                        if k as u64 % CLOCK_STRIDE == 0 {
                            clock
                                .advance(Duration::from_nanos(TRACE_NS_PER_REQUEST * CLOCK_STRIDE));
                        }
                        b.load(a, Some(hash2(seed ^ ti as u64, k as u64)));
                        lat.push(b.check(guard, a, true, &mut tally));
                    }
                    (lat, tally)
                })
            })
            .collect();
        let results: Vec<(Vec<u32>, Tally)> =
            workers.into_iter().map(|w| w.join().unwrap()).collect();
        let wall = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let maintained = background.map(|h| h.join().unwrap()).unwrap_or_default();
        (results, wall, maintained)
    });
    let mut out = Threaded {
        lat: Vec::with_capacity(total),
        check_rate: 0.0,
        wall,
        tally: Tally::default(),
        maintain: maintained,
        trace_ns: Clock::now(clock) - trace_start,
    };
    for (lat, tally) in results {
        let busy: f64 = lat.iter().map(|&x| f64::from(x)).sum();
        out.check_rate += lat.len() as f64 / (busy / 1e9);
        out.lat.extend_from_slice(&lat);
        out.tally.add(tally);
    }
    out
}

// ---------------------------------------------------------------------------

/// One row; `overflowed`, where given, is the share of requests (in %)
/// recorded on their own thread because the observer's queues were full.
fn print_threaded(label: String, r: &mut Threaded, overflowed: Option<f64>) {
    let s = Stats::of(&mut r.lat);
    let over = overflowed.map_or(String::new(), |o| format!("  {o:>9.1}%"));
    println!(
        "  {label:<26} {:>12.0} {:>13.0} {:>9}  {}{over}",
        s.n as f64 / r.wall.as_secs_f64(),
        r.check_rate,
        t(s.mean),
        percentile_cells(&s)
    );
}

fn env_usize(key: &str, default: usize) -> usize {
    match std::env::var(key) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?}: expected a whole number")),
        Err(_) => default,
    }
}

/// Every account once, in random order, over the day before; a prompt with
/// each. governor, when given, gets every key too.
fn warm_up(
    guard: &Guard,
    clock: &ManualClock,
    world: &World,
    gv: Option<&DefaultKeyedRateLimiter<String>>,
) {
    let order = permutation(world.accounts, 0x7761726d);
    let step = WARMUP_SPAN_NS / u64::from(world.accounts);
    let mut b = Builder::new(world);
    let mut tally = Tally::default();
    for (k, &a) in order.iter().enumerate() {
        clock.set_nanos(k as u64 * step);
        b.load(a, Some(hash2(0x7761726d, k as u64)));
        b.check(guard, a, true, &mut tally);
        if let Some(gv) = gv {
            black_box(gv.check_key(&b.name).is_ok());
        }
    }
    clock.set_nanos(WARMUP_SPAN_NS);
    guard.flush();
}

/// The configuration for `RF_INTEL`.
fn with_intel(mut config: GuardConfig, intel: &str) -> GuardConfig {
    match intel {
        "off" => {}
        "key" | "imports" | "imports+templates" => {
            config.intel.key = Some(
                ConsortiumKey::new(b"a consortium key for the benchmark").expect("long enough"),
            );
            config.intel.default_trust = 1.0;
            if intel.ends_with("+templates") {
                config.intel.min_weight = 0.1;
            }
        }
        other => panic!("RF_INTEL={other:?}: expected off, key, imports or imports+templates"),
    }
    config
}

/// 1,000 indicators of each of six kinds (seven with `templates`),
/// matching nothing.
fn import_unmatched(guard: &Guard, templates: bool) {
    let kinds = [
        "payment",
        "device",
        "payment_bin",
        "ja4",
        "user_agent",
        "email_domain",
        "template",
    ];
    let list: Vec<ImportIndicator> = kinds[..if templates { 7 } else { 6 }]
        .iter()
        .flat_map(|kind| {
            (0..1_000u64).map(move |n| {
                let mut token = [0u8; 32];
                token[..8].copy_from_slice(&hash2(0x696e74656c, n).to_le_bytes());
                token[8..16].copy_from_slice(&kind.len().to_le_bytes());
                ImportIndicator {
                    id: format!("indicator--{kind}-{n}"),
                    producer: "identity--bench".into(),
                    producer_name: None,
                    kind: kind.to_string(),
                    token,
                    confidence: 100,
                    modified: 0.0,
                    valid_until: Some(1e9),
                    revoked: false,
                    campaign: Some("campaign--bench".into()),
                }
            })
        })
        .collect();
    let r = guard.import_indicators(&list).expect("a valid import");
    assert_eq!(r.added, list.len());
}

fn link_line(guard: &Guard) -> String {
    let s = guard.link_stats();
    format!(
        "accounts {}, values {}, templates {}, pairs {}, replaced {}, untracked {}",
        s.accounts, s.values, s.templates, s.pairs, s.replaced, s.untracked
    )
}

fn main() {
    let accounts = env_usize("RF_ACCOUNTS", 1_000_000).clamp(1, u32::MAX as usize) as u32;
    let requests = env_usize("RF_REQUESTS", 200_000).max(1);
    let rounds = env_usize("RF_ROUNDS", 3).max(1);
    let threads: Vec<usize> = std::env::var("RF_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("RF_THREADS: {s:?} is not a number"))
                .max(1)
        })
        .collect();
    let maintain_ms = env_usize("RF_MAINTAIN_MS", MAINTAIN_EVERY_MS);
    let started = Instant::now();

    println!("ringfence realistic bench: Guard::check at production shape (a million accounts,");
    println!("cold cells, distinct prompts, the clock moving); benches/guard.rs is the");
    println!("cache-resident best case.");
    println!();
    println!("configuration");
    println!(
        "  accounts              {accounts} (GuardConfig::for_accounts, limits that never refuse)"
    );
    println!("  fingerprints          8 per request (ip, asn, device, payment, payment_bin, ja4, user_agent, email_domain)");
    println!("  activity              Zipf, exponent {ZIPF_EXPONENT}, over a random permutation of the accounts");
    println!(
        "  trace time            {:.1} ms per request ({:.2} M requests per simulated day)",
        TRACE_NS_PER_REQUEST as f64 / 1e6,
        86_400e9 / TRACE_NS_PER_REQUEST as f64 / 1e6
    );
    println!("  prompts               distinct per request, {PROMPT_MIN} to {PROMPT_MAX} bytes (uniform), {VOCABULARY} words");
    println!("  requests per round    {requests}, {rounds} round(s), single thread");
    let maintain_requests = (requests / 4).max(1);
    println!(
        "  shared-guard threads  {threads:?} ({requests} requests per run; {maintain_requests} with the maintenance thread)"
    );

    let world = World::new(accounts);
    let config = GuardConfig {
        account_requests_per_minute: 1_000_000_000,
        account_tokens_per_minute: 1_000_000_000_000,
        ..GuardConfig::for_accounts(accounts as usize)
    };
    println!(
        "  rebuild every         {} s of trace time (~{} requests); evidence horizon {} s",
        config.link.rebuild_every_secs,
        (config.link.rebuild_every_secs * 1e9 / TRACE_NS_PER_REQUEST as f64) as u64,
        config.link.horizon_secs
    );
    let intel = std::env::var("RF_INTEL").unwrap_or_else(|_| "off".into());
    let config = with_intel(config, &intel);
    let (guard, clock) = Guard::for_replay(config.clone());
    if intel.starts_with("imports") {
        import_unmatched(&guard, intel.ends_with("+templates"));
    }
    println!(
        "  intel                 {intel} ({} imported indicators)",
        guard.intel_stats().imports
    );
    let gv: DefaultKeyedRateLimiter<String> = governor::RateLimiter::keyed(
        governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap()),
    );
    let (timer_p50, timer_mean) = timer_overhead();
    println!(
        "  timer                 Instant::now() + elapsed() costs {timer_p50} ns (median; mean {timer_mean:.1} ns), included in every figure"
    );
    println!(
        "  guard memory          {:.0} MB",
        guard.memory_bytes() as f64 / 1e6
    );

    let t_warm = Instant::now();
    warm_up(&guard, &clock, &world, Some(&gv));
    println!(
        "  warm-up               {accounts} requests over the previous 24 h of trace, {:.1} s; then {}",
        t_warm.elapsed().as_secs_f64(),
        link_line(&guard)
    );

    // Single thread, rounds alternating governor and ringfence.
    let mut lat_gv = Vec::with_capacity(requests * rounds);
    let mut lat_none = Vec::with_capacity(requests * rounds);
    let mut lat_prompt = Vec::with_capacity(requests * rounds);
    let (mut means_gv, mut means_none, mut means_prompt) = (vec![], vec![], vec![]);
    let (mut tally_none, mut tally_prompt) = (Tally::default(), Tally::default());
    let mut gv_refused = 0;
    let mut repeats = 0;
    let mut lat = Vec::with_capacity(requests);
    for r in 0..rounds {
        let seq = world.sequence(requests, hash2(0x726f756e64, r as u64));
        let clock_now = Clock::now(&*clock);
        repeats += world.same_minute(&seq, clock_now + TRACE_NS_PER_REQUEST);
        let order: [u8; 3] = if r % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for which in order {
            lat.clear();
            match which {
                0 => gv_refused += run_governor(&gv, &world, &seq, &mut lat),
                1 => tally_none.add(run_guard(&guard, &clock, &world, &seq, None, &mut lat)),
                _ => tally_prompt.add(run_guard(
                    &guard,
                    &clock,
                    &world,
                    &seq,
                    Some(hash2(0x70726f6d7074, r as u64)),
                    &mut lat,
                )),
            }
            let mean = lat.iter().map(|&x| f64::from(x)).sum::<f64>() / lat.len() as f64;
            let (means, all) = match which {
                0 => (&mut means_gv, &mut lat_gv),
                1 => (&mut means_none, &mut lat_none),
                _ => (&mut means_prompt, &mut lat_prompt),
            };
            means.push(mean);
            all.extend_from_slice(&lat);
        }
    }
    println!(
        "  memo                  {:.1} % of requests come from an account that already asked in the same trace minute (only those can hit)",
        100.0 * repeats as f64 / (requests * rounds) as f64
    );
    println!();
    println!("single thread: mean per call (median of {rounds} round(s) [min-max]), percentiles over all rounds");
    println!("  {:<34} {:>22}  {PERCENTILE_HEADER}", "", "mean [min-max]");
    let gv_median = median(&means_gv);
    for (name, means, lat) in [
        ("governor check_key (String key)", &means_gv, &mut lat_gv),
        ("ringfence check, no prompt", &means_none, &mut lat_none),
        (
            "ringfence check, 300-1500 B prompt",
            &means_prompt,
            &mut lat_prompt,
        ),
    ] {
        let s = Stats::of(lat);
        let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = means.iter().copied().fold(0.0, f64::max);
        println!(
            "  {name:<34} {:>22}  {}",
            format!("{} [{}-{}]", t(median(means)), t(lo), t(hi)),
            percentile_cells(&s)
        );
    }
    let ratio = |m: &[f64]| median(m) / gv_median;
    let ratio_spread = |m: &[f64]| {
        let r: Vec<f64> = m.iter().zip(&means_gv).map(|(a, b)| a / b).collect();
        (
            r.iter().copied().fold(f64::INFINITY, f64::min),
            r.iter().copied().fold(0.0, f64::max),
        )
    };
    let (lo, hi) = ratio_spread(&means_none);
    println!(
        "  ratio ringfence/governor: no prompt {:.1}x (per round {lo:.1}-{hi:.1}x)",
        ratio(&means_none)
    );
    let (lo, hi) = ratio_spread(&means_prompt);
    println!(
        "                            with prompt {:.1}x (per round {lo:.1}-{hi:.1}x)",
        ratio(&means_prompt)
    );
    println!(
        "  decisions: no prompt {}; with prompt {}; governor refused {gv_refused}",
        tally_line(&tally_none),
        tally_line(&tally_prompt)
    );

    {
        let mut config = config.clone();
        config.observe.mode = ObserveMode::Background;
        let (bg, bg_clock) = Guard::for_replay(config);
        warm_up(&bg, &bg_clock, &world, None);
        bg_clock.set_nanos(Clock::now(&*clock));
        standing::section(
            &bg,
            &bg_clock,
            &world,
            requests,
            rounds,
            median(&means_none),
            median(&means_prompt),
        );
        // The same guard from several request threads at once, closed
        // loops, with prompts: the observer's queues are shared.
        println!();
        println!("  from T request threads, 300-1500 B prompt, closed loops (percentiles pooled over threads)");
        println!(
            "  {:<26} {:>12} {:>13} {:>9}  {PERCENTILE_HEADER}  {:>10}",
            "", "wall calls/s", "check calls/s", "mean", "overflowed"
        );
        for (i, &n) in threads.iter().enumerate() {
            let before = bg.overflowed();
            let seed = hash2(0x6267_7468, i as u64);
            let mut r = run_threads(&bg, &bg_clock, &world, n, requests, seed, None);
            bg.flush();
            let over = bg.overflowed() - before;
            let share = 100.0 * over as f64 / r.lat.len().max(1) as f64;
            print_threaded(format!("T={n}, {requests} req"), &mut r, Some(share));
        }
    }

    // Shared guard, several threads, prompts.
    println!();
    println!("shared guard, check with prompt from T threads (percentiles pooled over threads)");
    println!(
        "  {:<26} {:>12} {:>13} {:>9}  {PERCENTILE_HEADER}",
        "", "wall calls/s", "check calls/s", "mean"
    );
    let mut mt_tally = Tally::default();
    for (i, &n) in threads.iter().enumerate() {
        let seed = hash2(0x74687265, i as u64);
        let mut r = run_threads(&guard, &clock, &world, n, requests, seed, None);
        mt_tally.add(r.tally);
        print_threaded(format!("T={n}, {requests} req"), &mut r, None);
    }
    let tm = threads.first().copied().unwrap_or(1);
    let pause = Duration::from_millis(maintain_ms as u64);
    let mut r = run_threads(
        &guard,
        &clock,
        &world,
        tm,
        maintain_requests,
        0x6d61696e,
        Some(pause),
    );
    mt_tally.add(r.tally);
    print_threaded(
        format!("T={tm}+maintain, {maintain_requests} req"),
        &mut r,
        None,
    );
    let m = Stats::of(&mut r.maintain);
    println!(
        "  wall calls/s: requests / wall time, request generation included; check calls/s: sum over threads of calls / time inside check"
    );
    println!(
        "  background maintain(): {} calls, {maintain_ms} ms apart (~{:.0} s of trace time apart): mean {}, p50 {}, max {}",
        m.n,
        r.trace_ns as f64 / 1e9 / m.n.max(1) as f64,
        t(m.mean),
        t(f64::from(m.p50)),
        t(f64::from(m.max))
    );
    println!("  decisions: {}", tally_line(&mt_tally));
    println!();
    println!("at the end: {}", link_line(&guard));
    println!(
        "trace time {:.1} h; total run {:.1} s",
        Clock::now(&*clock) as f64 / 3.6e12,
        started.elapsed().as_secs_f64()
    );
}
