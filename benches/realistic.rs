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
//!   `Guard::maintain` calls in that run.

use governor::DefaultKeyedRateLimiter;
use ringfence::guard::{Decision, Guard, GuardConfig, Request, Verdict};
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
const TRACE_NS_PER_REQUEST: u64 = 28_800_000;
/// The warm-up presents every account once over this much trace time (the
/// day before the timed phase), so evidence starts expiring right away.
const WARMUP_SPAN_NS: u64 = 86_400 * 1_000_000_000;
/// Threads sharing one guard advance the shared clock every this many
/// requests (by as many requests' worth), so that they do not write the
/// clock's cache line at every call, which a real clock never does.
const CLOCK_STRIDE: u64 = 16;
/// Zipf exponent of account activity.
const ZIPF_EXPONENT: f64 = 1.0;
/// Prompt lengths, bytes (uniform).
const PROMPT_MIN: usize = 300;
const PROMPT_MAX: usize = 1_500;
/// Words in the prompts' vocabulary.
const VOCABULARY: usize = 6_000;
/// The background maintenance thread's pause between `maintain` calls, ms
/// (`RF_MAINTAIN_MS` overrides). The replay runs far faster than real time
/// (a request's 28.8 ms of trace in a few µs), so this is about a minute of
/// trace time: maintenance ten times as often as the in-band rebuild.
const MAINTAIN_EVERY_MS: usize = 10;
const MAX_TOKENS: u32 = 1_024;
const MODELS: [&str; 4] = ["large-2025", "large-2025-mini", "coder-3", "reasoner-1"];

// ---------------------------------------------------------------------------
// Randomness: splitmix64, seeded, no dependencies.

/// splitmix64's finalizer: a well-mixed 64-bit hash of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of `(i, salt)`: one independent stream per attribute.
fn hash2(i: u64, salt: u64) -> u64 {
    mix(i ^ mix(salt.wrapping_mul(0xd6e8_feb8_6659_fd93)))
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An index in `0..m` from hash `h`, the low indices far more popular
/// (the cube of a uniform: density falling as x^(-2/3), a few values shared
/// by very many accounts, a long tail shared by few).
fn skewed(h: u64, m: u64) -> u64 {
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    ((u * u * u) * m as f64) as u64 % m
}

// ---------------------------------------------------------------------------
// The population: accounts, their fingerprints, their activity.

/// One account's 8 fingerprint values, rebuilt in place per request.
#[derive(Default)]
struct Fingerprints {
    ip: String,
    asn: String,
    device: String,
    payment: String,
    payment_bin: String,
    ja4: String,
    user_agent: String,
    email_domain: String,
}

const UA_FAMILIES: [&str; 10] = [
    "OpenAI/Python",
    "OpenAI/JS",
    "anthropic-sdk-python",
    "python-requests",
    "python-httpx",
    "curl",
    "Go-http-client",
    "okhttp",
    "LangChain",
    "node-fetch",
];
const CONSUMER_DOMAINS: [&str; 6] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "qq.com",
];

impl Fingerprints {
    /// Account `i`'s values (of `n` accounts: pool sizes scale with `n`, so
    /// a value is shared by as many accounts at any scale).
    fn fill(&mut self, i: u32, n: u32) {
        let x = u64::from(i);
        let n = u64::from(n);
        for s in [
            &mut self.ip,
            &mut self.asn,
            &mut self.device,
            &mut self.payment,
            &mut self.payment_bin,
            &mut self.ja4,
            &mut self.user_agent,
            &mut self.email_domain,
        ] {
            s.clear();
        }
        // Addresses: 75 % unique, 20 % in shared /24s (~10 accounts per
        // block, each its own host), 5 % behind NATs (~10 per address).
        let h = hash2(x, 1);
        match h % 100 {
            0..75 => {
                // A bijection of the index: unique per account.
                let y = i.wrapping_mul(0x9e37_79b1) ^ 0x5bd1_e995;
                let [a, b, c, d] = (y ^ (y >> 15)).to_be_bytes();
                let _ = write!(self.ip, "{a}.{b}.{c}.{d}");
            }
            75..95 => {
                let block = hash2(x, 2) % (n / 50).max(1);
                let host = 1 + hash2(x, 3) % 254;
                let _ = write!(
                    self.ip,
                    "100.{}.{}.{host}",
                    64 + (block >> 8) % 64,
                    block & 255
                );
            }
            _ => {
                let nat = hash2(x, 4) % (n / 200).max(1);
                let _ = write!(self.ip, "198.18.{}.{}", (nat >> 8) % 256, nat & 255);
            }
        }
        let _ = write!(self.asn, "AS{}", 1_000 + skewed(hash2(x, 5), 3_000));
        let _ = write!(self.device, "dev-{:016x}", hash2(x, 6));
        let _ = write!(self.payment, "card-{:016x}", hash2(x, 7));
        let _ = write!(
            self.payment_bin,
            "{}",
            400_000 + 97 * skewed(hash2(x, 8), 2_000)
        );
        let j = skewed(hash2(x, 9), 48);
        let _ = write!(
            self.ja4,
            "t13d{:02}{:02}h2_{:012x}_{:012x}",
            10 + j % 9,
            8 + j % 7,
            mix(j) >> 16,
            mix(j + 100) >> 16
        );
        let u = skewed(hash2(x, 10), 240);
        let _ = write!(
            self.user_agent,
            "{}/{}.{}.{}",
            UA_FAMILIES[(u % 10) as usize],
            u % 3,
            u / 10,
            u % 7
        );
        // Email: 65 % consumer domains, the rest company domains of ~8
        // accounts each.
        let e = hash2(x, 11);
        if e % 100 < 65 {
            self.email_domain
                .push_str(CONSUMER_DOMAINS[skewed(e >> 8, 6) as usize]);
        } else {
            let _ = write!(self.email_domain, "co{:06}.com", (e >> 8) % (n / 8).max(1));
        }
    }

    fn pairs(&self) -> [(&str, &str); 8] {
        [
            ("ip", &self.ip),
            ("asn", &self.asn),
            ("device", &self.device),
            ("payment", &self.payment),
            ("payment_bin", &self.payment_bin),
            ("ja4", &self.ja4),
            ("user_agent", &self.user_agent),
            ("email_domain", &self.email_domain),
        ]
    }
}

/// Who asks (Zipf over a permutation of the accounts) and what they write.
struct World {
    accounts: u32,
    /// Cumulative Zipf weights by rank.
    cdf: Vec<f64>,
    /// Rank → account.
    perm: Vec<u32>,
    vocabulary: Vec<String>,
}

impl World {
    fn new(accounts: u32) -> World {
        let mut total = 0.0;
        let cdf: Vec<f64> = (0..accounts)
            .map(|k| {
                total += (f64::from(k) + 1.0).powf(-ZIPF_EXPONENT);
                total
            })
            .collect();
        World {
            accounts,
            cdf,
            perm: permutation(accounts, 0x2a),
            vocabulary: vocabulary(VOCABULARY, 0x766f63),
        }
    }

    /// `len` accounts asking, in order.
    fn sequence(&self, len: usize, seed: u64) -> Vec<u32> {
        let mut rng = Rng::new(seed);
        let total = *self.cdf.last().unwrap_or(&1.0);
        (0..len)
            .map(|_| {
                let x = rng.unit() * total;
                let rank = self.cdf.partition_point(|&c| c <= x);
                self.perm[rank.min(self.perm.len() - 1)]
            })
            .collect()
    }

    /// Request `seed`'s prompt, into `out`: 300 to 1,500 bytes of words.
    fn prompt(&self, out: &mut String, seed: u64) {
        let mut rng = Rng::new(seed);
        let len = PROMPT_MIN + rng.below((PROMPT_MAX - PROMPT_MIN + 1) as u64) as usize;
        out.clear();
        while out.len() < len {
            let w = &self.vocabulary[rng.below(self.vocabulary.len() as u64) as usize];
            out.push_str(w);
            match rng.below(16) {
                0 => out.push_str(". "),
                1 => out.push_str(", "),
                2 => out.push('\n'),
                _ => out.push(' '),
            }
        }
        out.truncate(len); // ASCII: any byte is a boundary
    }

    /// How many of `seq`'s requests come from an account that already asked
    /// in the same trace minute (the memo can only hit on those), with the
    /// first request at `start_ns` and one every `TRACE_NS_PER_REQUEST`.
    fn same_minute(&self, seq: &[u32], start_ns: u64) -> usize {
        let mut last = vec![u64::MAX; self.accounts as usize];
        let mut repeats = 0;
        for (k, &a) in seq.iter().enumerate() {
            let minute = (start_ns + k as u64 * TRACE_NS_PER_REQUEST) / 60_000_000_000;
            repeats += usize::from(last[a as usize] == minute);
            last[a as usize] = minute;
        }
        repeats
    }
}

fn permutation(n: u32, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    let mut p: Vec<u32> = (0..n).collect();
    for i in (1..p.len()).rev() {
        p.swap(i, rng.below(i as u64 + 1) as usize);
    }
    p
}

/// `n` made-up words of one to four syllables, plus common short words.
fn vocabulary(n: usize, seed: u64) -> Vec<String> {
    const SYLLABLES: [&str; 48] = [
        "ka", "ro", "mi", "tel", "san", "qu", "pre", "ver", "lo", "dix", "an", "bor", "ce", "dra",
        "el", "fi", "gon", "hy", "im", "jul", "ker", "lum", "mon", "ny", "ox", "pha", "ri", "stu",
        "tri", "un", "vo", "wex", "yi", "zor", "ble", "cra", "de", "ent", "for", "gra", "ion",
        "ment", "ous", "ply", "ser", "tion", "ure", "ward",
    ];
    const COMMON: [&str; 24] = [
        "the", "of", "and", "to", "in", "is", "for", "that", "with", "as", "on", "be", "this",
        "by", "it", "are", "from", "or", "an", "which", "can", "how", "what", "why",
    ];
    let mut rng = Rng::new(seed);
    let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
    while words.len() < n {
        let mut w = String::new();
        for _ in 0..1 + rng.below(4) {
            w.push_str(SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize]);
        }
        words.push(w);
    }
    words
}

// ---------------------------------------------------------------------------
// One request, built outside the timed section.

/// Per-thread buffers for building requests without allocating.
struct Builder<'w> {
    world: &'w World,
    name: String,
    fingerprints: Fingerprints,
    prompt: String,
}

impl<'w> Builder<'w> {
    fn new(world: &'w World) -> Builder<'w> {
        Builder {
            world,
            name: String::with_capacity(16),
            fingerprints: Fingerprints::default(),
            prompt: String::with_capacity(PROMPT_MAX + 16),
        }
    }

    /// Fills the buffers for account `a`; the prompt too when `prompt_seed`
    /// is given.
    fn load(&mut self, a: u32, prompt_seed: Option<u64>) {
        self.name.clear();
        let _ = write!(self.name, "acct-{a:08}");
        self.fingerprints.fill(a, self.world.accounts);
        if let Some(seed) = prompt_seed {
            self.world.prompt(&mut self.prompt, seed);
        }
    }

    /// Checks the loaded request, timing the call alone; settles it
    /// afterwards (untimed) as a gateway would once the answer is served.
    fn check(&self, guard: &Guard, a: u32, with_prompt: bool, tally: &mut Tally) -> u32 {
        let fps = self.fingerprints.pairs();
        let prompt = with_prompt.then_some(self.prompt.as_str());
        let req = Request {
            account: &self.name,
            fingerprints: &fps,
            prompt,
            system: None,
            model: Some(MODELS[(hash2(u64::from(a), 12) % 4) as usize]),
            input_tokens: prompt.map_or(200, |p| (p.len() / 4) as u32),
            max_tokens: MAX_TOKENS,
        };
        let t0 = Instant::now();
        let verdict = guard.check(black_box(&req));
        let ns = nanos(t0.elapsed());
        tally.count(&verdict);
        guard.settle(&verdict, 50 + (hash2(u64::from(a), 13) % 700) as u32);
        ns
    }
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Decisions seen.
#[derive(Default, Clone, Copy)]
struct Tally {
    allow: u64,
    throttle: u64,
    deny: u64,
}

impl Tally {
    fn count(&mut self, v: &Verdict) {
        match v.decision {
            Decision::Allow => self.allow += 1,
            Decision::Throttle { .. } => self.throttle += 1,
            Decision::Deny => self.deny += 1,
        }
    }
    fn add(&mut self, o: Tally) {
        self.allow += o.allow;
        self.throttle += o.throttle;
        self.deny += o.deny;
    }
}

// ---------------------------------------------------------------------------
// Latency statistics.

struct Stats {
    n: usize,
    mean: f64,
    p50: u32,
    p99: u32,
    p999: u32,
    p9999: u32,
    max: u32,
    over_1ms: usize,
}

impl Stats {
    /// Sorts `lat`.
    fn of(lat: &mut [u32]) -> Stats {
        lat.sort_unstable();
        let n = lat.len();
        let at = |p: f64| {
            if n == 0 {
                0
            } else {
                lat[((p * n as f64).ceil() as usize).clamp(1, n) - 1]
            }
        };
        Stats {
            n,
            mean: lat.iter().map(|&x| f64::from(x)).sum::<f64>() / n.max(1) as f64,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            p9999: at(0.9999),
            max: lat.last().copied().unwrap_or(0),
            over_1ms: n - lat.partition_point(|&x| x <= 1_000_000),
        }
    }
}

/// Nanoseconds, readably.
fn t(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        0.0
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

fn percentile_cells(s: &Stats) -> String {
    format!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
        t(f64::from(s.p50)),
        t(f64::from(s.p99)),
        t(f64::from(s.p999)),
        t(f64::from(s.p9999)),
        t(f64::from(s.max)),
        s.over_1ms
    )
}

const PERCENTILE_HEADER: &str = "      p50       p99     p99.9    p99.99       max  >1 ms";

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

fn print_threaded(label: String, r: &mut Threaded) {
    let s = Stats::of(&mut r.lat);
    println!(
        "  {label:<26} {:>12.0} {:>13.0} {:>9}  {}",
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

fn timer_overhead() -> (u32, f64) {
    let mut lat: Vec<u32> = (0..200_000)
        .map(|_| {
            let t0 = Instant::now();
            nanos(black_box(t0).elapsed())
        })
        .collect();
    let s = Stats::of(&mut lat);
    (s.p50, s.mean)
}

fn link_line(guard: &Guard) -> String {
    let s = guard.link_stats();
    format!(
        "accounts {}, values {}, templates {}, pairs {}, replaced {}, untracked {}",
        s.accounts, s.values, s.templates, s.pairs, s.replaced, s.untracked
    )
}

fn tally_line(t: &Tally) -> String {
    format!(
        "allow {}, throttle {}, deny {}",
        t.allow, t.throttle, t.deny
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
    let (guard, clock) = Guard::for_replay(config);
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

    // Warm-up: every account once, in random order, over the day before; a
    // prompt with each. governor gets every key too.
    let t_warm = Instant::now();
    {
        let order = permutation(accounts, 0x7761726d);
        let step = WARMUP_SPAN_NS / u64::from(accounts);
        let mut b = Builder::new(&world);
        let mut tally = Tally::default();
        for (k, &a) in order.iter().enumerate() {
            clock.set_nanos(k as u64 * step);
            b.load(a, Some(hash2(0x7761726d, k as u64)));
            b.check(&guard, a, true, &mut tally);
            black_box(gv.check_key(&b.name).is_ok());
        }
        clock.set_nanos(WARMUP_SPAN_NS);
    }
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
        print_threaded(format!("T={n}, {requests} req"), &mut r);
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
    print_threaded(format!("T={tm}+maintain, {maintain_requests} req"), &mut r);
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
