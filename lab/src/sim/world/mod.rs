//! The population of accounts and the requests each makes, as a stream.
//!
//! Every account is a compact [`Profile`]: its fingerprints as numbers and
//! shared static strings, its own random stream, and a buffer of the times
//! of its requests in the current hour (or bulk job). Each profile makes its
//! requests lazily, in time order: hour by hour, a Poisson count of requests
//! at the hour's rate (daily cycles, office hours, bursts), placed uniformly
//! within the hour, which is an exact non-homogeneous Poisson process for
//! rates that are constant within each hour. A [`BinaryHeap`] keyed by
//! (millisecond, account, index) merges the profiles, so memory grows with
//! the accounts, not with the requests.
//!
//! Here: the shared tables (fingerprints, time zones, daily curve), the
//! profile's fields and the stream. Who the accounts are is built in
//! `population`; what each one sends, and when, is in `requests`.

use super::rng::Rng;
use super::text;
use super::{Record, Scenario};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;

mod population;
mod requests;

use population::population;
use requests::to_ms;

const COMMON_JA4: &[&str] = &[
    "t13d1516h2_8daaf6152771_02713d6af862",
    "t13d1517h2_8daaf6152771_b0da82dd1658",
    "t13d1715h2_5b57614c22b0_3d5424432f57",
    "t13d1516h2_8daaf6152771_e5627efa2ab1",
    "t13d1812h2_e8a523a41297_7f27e3ee5ee2",
    "t13d1516h2_8daaf6152771_9b887d9acb53",
    "t13d2014h2_a09f3c656075_14788d8d241b",
];
const COMMON_UA: &[&str] = &[
    "OpenAI/Python 1.54.3",
    "OpenAI/JS 4.67.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
];
const EMAIL: &[(&str, f64)] = &[
    ("gmail.com", 0.38),
    ("outlook.com", 0.12),
    ("yahoo.com", 0.06),
    ("icloud.com", 0.06),
    ("proton.me", 0.02),
    ("hotmail.com", 0.04),
];
const BINS: &[&str] = &[
    "411111", "424242", "400000", "510510", "555555", "378282", "601111", "353011", "401288",
    "520082", "431940", "455673", "476173", "483312", "492181", "512345", "522222", "540500",
    "545454", "601100",
];
const HOME_ASN: &[&str] = &[
    "AS7922", "AS7018", "AS701", "AS20115", "AS22773", "AS3320", "AS2856", "AS3215", "AS12322",
    "AS5089",
];
/// First octets of the residential ranges.
const HOME_NETS: &[u8] = &[24, 50, 67, 71, 73, 76, 98, 108, 174, 184];
/// Mobile carriers' ASNs, and first octets of their (large, public) ranges.
const MOBILE_ASN: &[&str] = &["AS21928", "AS6167", "AS20057", "AS3651"];
const MOBILE_NETS: &[u8] = &[172, 166, 107, 174];
/// Cloud providers' ASNs, and first octets of their ranges.
const CLOUD_ASN: &[&str] = &["AS16509", "AS15169", "AS8075"];
const CLOUD_NETS: &[u8] = &[52, 34, 20];
/// First octets of the reseller's residential proxy exits.
const PROXY_NETS: &[u8] = &[24, 67, 73, 98, 174];
const TIMEZONES: &[(i8, f64)] = &[
    (-8, 0.2),
    (-5, 0.25),
    (0, 0.15),
    (1, 0.15),
    (5, 0.07),
    (8, 0.1),
    (9, 0.08),
];

/// Activity (0..1) by local hour: quiet at night, busy in the evening.
const CURVE: [f64; 24] = [
    0.25, 0.15, 0.08, 0.05, 0.05, 0.07, 0.15, 0.35, 0.55, 0.7, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85,
    0.85, 0.9, 0.95, 1.0, 1.0, 0.9, 0.7, 0.45,
];
/// Activity outside office hours (9:00 to 18:00 local).
const OFF_HOURS: f64 = 0.02;
/// A scheduled job fires this long after the hour at most (seconds).
const JOB_JITTER: f64 = 80.0;
/// Share of a SaaS customer's hourly jobs that run (a few are skipped).
const JOB_RUNS: f64 = 0.97;

/// When a profile's requests happen.
#[derive(Clone, Copy, Debug)]
enum Timing {
    /// Daily cycle in a time zone (hours from UTC).
    Diurnal(i8),
    /// Working hours in a time zone.
    Office(i8),
    /// Uniform around the clock.
    Always,
    /// Synchronised 3-minute bursts every 20 minutes (shared by all members).
    Bursts,
    /// This many scheduled jobs at the top of every hour.
    TopOfHour(u8),
    /// Bulk jobs at a steady pace, one after another.
    Batch,
}

/// What a profile's prompts are.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Prompts {
    Benign,
    Coding,
    /// Benign, and homework asking for step-by-step answers.
    Campus,
    /// Questions of this public benchmark, in order, run after run.
    Eval(u8),
    DistillCot,
    DistillAgentic,
    Reseller,
    Saas,
    /// Bulk job prompts of this template.
    Batch(u8),
}

/// Which model a profile asks for.
#[derive(Clone, Copy, Debug)]
enum Models {
    /// Mostly `model-a`, some `model-mini`, and some `model-b` once released.
    Benign,
    /// Half on `model-b` once it is released.
    Eval,
    /// The reseller's pivot to `model-b`.
    Pivot,
    Fixed(&'static str),
}

/// A profile's source address.
#[derive(Clone, Copy, Debug)]
enum Ip {
    Fixed(u32),
    /// One of the world's pool, per request.
    Pool(u16),
    /// A fresh residential exit from a pool of `n`, per request.
    Proxy(u32),
}

#[derive(Clone, Copy, Debug)]
enum Email {
    Domain(&'static str),
    /// `mail{n}.example`: a small provider or a personal domain.
    Numbered(u32),
}

/// Scenario-wide values the profiles refer to.
struct World {
    start_ts: f64,
    horizon: f64,
    limit: usize,
    /// The new model's release (seconds from the start).
    release: f64,
    pivot_share: f64,
    pivot_ramp: f64,
    homework: f64,
    batch_job_requests: f64,
    batch_gap: f64,
    batch_jobs_per_sec: f64,
    /// Address pools ([`Ip::Pool`]).
    pools: Vec<Vec<u32>>,
}

/// One account: who it is, what it sends, and where its stream stands.
struct Profile {
    account: u64,
    label: &'static str,
    cohort: &'static str,
    /// Mean requests per day.
    daily: f64,
    timing: Timing,
    prompts: Prompts,
    models: Models,
    system: Option<Arc<str>>,
    device: u64,
    asn: &'static str,
    ja4: &'static str,
    user_agent: &'static str,
    email: Email,
    card: Option<(&'static str, u64)>,
    ip: Ip,
    mix_in: f64,
    paraphrase: f64,
    /// Stays under the per-account limit (drops what would exceed it).
    capped: bool,
    /// When it asks the news question (seconds; infinite: never).
    news_at: f64,
    // The stream.
    rng: Rng,
    /// The next hour to generate.
    hour: u32,
    /// Times of the current hour (or bulk job), sorted; `pos` is the next.
    times: Vec<f64>,
    pos: usize,
    /// Capped profiles: milliseconds of the requests kept in the last minute.
    recent: VecDeque<u64>,
    /// Evaluation: the next benchmark question's index; batch: when its
    /// last bulk job ended (seconds).
    cursor: f64,
}

fn account_id(seed: u64, index: u64) -> u64 {
    let mut r = Rng::new(seed ^ 0xacc0_u64, index);
    r.next_u64() >> 16
}

fn ipv4(a: u8, rest: u32) -> u32 {
    (u32::from(a) << 24) | (rest & 0x00ff_ffff)
}

fn ip_string(ip: u32) -> String {
    let [a, b, c, d] = ip.to_be_bytes();
    format!("{a}.{b}.{c}.{d}")
}

/// A random address in one of `nets` (last octet 1..=254).
fn address_in(r: &mut Rng, nets: &[u8]) -> u32 {
    let a = *r.pick(nets);
    let rest = (r.below(1 << 16) << 8) as u32 | r.between(1, 254) as u32;
    ipv4(a, rest)
}

/// Exit `x` of a proxy pool: distinct `x` give distinct addresses (an odd
/// multiplier permutes 24 bits) spread over the residential ranges.
fn proxy_ip(x: u64) -> u32 {
    let a = PROXY_NETS[(x % PROXY_NETS.len() as u64) as usize];
    let y = ((x / PROXY_NETS.len() as u64) as u32).wrapping_mul(0x9e37_79b1) & 0x00ff_ffff;
    ipv4(a, y)
}

/// One of `table`'s items, each with its probability; `None` (for the
/// probability left over) past the end of the table.
fn weighted<T: Copy>(r: &mut Rng, table: &[(T, f64)]) -> Option<T> {
    let u = r.unit();
    let mut acc = 0.0;
    for (item, p) in table {
        acc += p;
        if u < acc {
            return Some(*item);
        }
    }
    None
}

fn email_domain(r: &mut Rng) -> Email {
    match weighted(r, EMAIL) {
        Some(d) => Email::Domain(d),
        None => Email::Numbered(r.below(1_000_000) as u32),
    }
}

fn card(r: &mut Rng, bin: &'static str) -> (&'static str, u64) {
    (bin, r.next_u64() >> 24)
}

/// A card BIN drawn as everyone's are (the common ones most often).
fn common_bin(r: &mut Rng) -> &'static str {
    BINS[r.zipf(BINS.len(), 1.1)]
}

/// The scenario's trace as a stream of records in time order (ties by
/// account): see [`simulate_stream`].
pub struct TraceStream {
    world: World,
    profiles: Vec<Profile>,
    /// Each profile's next request: (millisecond, account, profile), and
    /// its exact time and whether it is the news question.
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    next: Vec<(f64, bool)>,
}

impl TraceStream {
    /// Accounts in the scenario's population (some may make no request).
    pub fn accounts(&self) -> usize {
        self.profiles.len()
    }
}

impl Iterator for TraceStream {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let Reverse((_, account, i)) = self.heap.pop()?;
        let i = i as usize;
        let (t, news) = self.next[i];
        let p = &mut self.profiles[i];
        let record = p.record(&self.world, t, news);
        if let Some((t, news)) = p.advance(&self.world) {
            self.next[i] = (t, news);
            self.heap.push(Reverse((to_ms(t), account, i as u32)));
        } else {
            // Its stream is over: free its buffers.
            p.times = Vec::new();
            p.recent = VecDeque::new();
        }
        Some(record)
    }
}

/// Generates the scenario's trace lazily, in time order (ties by account),
/// holding one small state per account: memory grows with the accounts,
/// not the requests. The same scenario gives the same records as
/// [`simulate`], on every platform.
///
/// ```
/// use ringfence_lab::sim::{simulate_stream, Scenario};
///
/// let s = Scenario::builtin("default").unwrap().scaled(0.01);
/// let mut last = 0.0;
/// let mut n = 0;
/// for r in simulate_stream(&s) {
///     assert!(r.ts >= last);
///     last = r.ts;
///     n += 1;
/// }
/// assert!(n > 1000);
/// ```
pub fn simulate_stream(s: &Scenario) -> TraceStream {
    let (world, mut profiles) = population(s);
    let mut heap = BinaryHeap::with_capacity(profiles.len());
    let mut next = vec![(0.0, false); profiles.len()];
    for (i, p) in profiles.iter_mut().enumerate() {
        if let Some((t, news)) = p.advance(&world) {
            next[i] = (t, news);
            heap.push(Reverse((to_ms(t), p.account, i as u32)));
        }
    }
    TraceStream {
        world,
        profiles,
        heap,
        next,
    }
}

/// Generates the scenario's whole trace, ordered by time (then account):
/// [`simulate_stream`], collected. For small scenarios; large ones are
/// better streamed.
pub fn simulate(s: &Scenario) -> Vec<Record> {
    simulate_stream(s).collect()
}
