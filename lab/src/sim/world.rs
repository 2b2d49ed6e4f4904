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

use super::rng::Rng;
use super::text;
use super::{Record, Scenario};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;

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

/// Builds the population, in a fixed order, from one random stream; each
/// profile then has its own stream for its requests.
struct Builder<'a> {
    s: &'a Scenario,
    r: Rng,
    out: Vec<Profile>,
}

impl Builder<'_> {
    /// An ordinary person: their own device, home IP and card (60 %); a
    /// common SDK, BIN and email domain; a daily cycle in their time zone;
    /// log-normal volume.
    fn person(&mut self, cohort: &'static str) -> Profile {
        let s = self.s;
        let r = &mut self.r;
        let index = self.out.len() as u64;
        let device = r.next_u64();
        let asn = *r.pick(HOME_ASN);
        let sdk = r.zipf(COMMON_JA4.len(), 1.2);
        let email = email_domain(r);
        let card = if r.chance(0.6) {
            let bin = common_bin(r);
            Some(card(r, bin))
        } else {
            None
        };
        let ip = Ip::Fixed(address_in(r, HOME_NETS));
        let tz = weighted(r, TIMEZONES).unwrap_or(0);
        let daily = r
            .lognormal(s.median_requests_per_day, s.volume_sigma)
            .min(2000.0);
        Profile {
            account: account_id(s.seed, index),
            label: "benign",
            cohort,
            daily,
            timing: Timing::Diurnal(tz),
            prompts: Prompts::Benign,
            models: Models::Benign,
            system: None,
            device,
            asn,
            ja4: COMMON_JA4[sdk],
            user_agent: COMMON_UA[sdk],
            email,
            card,
            ip,
            mix_in: 0.0,
            paraphrase: 0.0,
            capped: false,
            news_at: f64::INFINITY,
            rng: Rng::new(s.seed, index),
            hour: 0,
            times: Vec::new(),
            pos: 0,
            recent: VecDeque::new(),
            cursor: 0.0,
        }
    }

    /// Adds `n` people of `cohort`, each changed by `edit`.
    fn people(
        &mut self,
        n: u32,
        cohort: &'static str,
        mut edit: impl FnMut(&mut Profile, &mut Rng),
    ) {
        for _ in 0..n {
            let mut p = self.person(cohort);
            edit(&mut p, &mut self.r);
            self.out.push(p);
        }
    }

    fn pool(pools: &mut Vec<Vec<u32>>, addresses: Vec<u32>) -> Ip {
        pools.push(addresses);
        Ip::Pool((pools.len() - 1) as u16)
    }
}

fn population(s: &Scenario) -> (World, Vec<Profile>) {
    let c = &s.cohorts;
    let horizon = s.hours * 3600.0;
    let mut pools: Vec<Vec<u32>> = Vec::new();
    let mut b = Builder {
        s,
        r: Rng::new(s.seed, u64::MAX),
        out: Vec::new(),
    };

    b.people(s.individuals, "individual", |p, r| {
        if r.chance(0.15) {
            p.prompts = Prompts::Coding;
        }
    });
    let cgnat: Vec<u32> = (0..c.cgnat_ips.max(1))
        .map(|i| ipv4(100, (64 << 16) | ((i / 250) << 8) | (1 + i % 250)))
        .collect();
    b.people(c.mobile_cgnat, "mobile_cgnat", |p, r| {
        p.ip = Ip::Fixed(*r.pick(&cgnat));
        p.asn = "AS21928";
    });
    let campus_ip = if c.campus_ips <= 1 {
        Ip::Fixed(ipv4(128, (32 << 16) | (18 << 8) | 7))
    } else {
        let nat = (0..c.campus_ips)
            .map(|i| ipv4(128, (32 << 16) | ((18 + i / 240) << 8) | (7 + i % 240)))
            .collect();
        Builder::pool(&mut pools, nat)
    };
    let homework = c.campus_homework;
    b.people(c.campus, "campus", |p, _| {
        p.ip = campus_ip;
        p.asn = "AS25";
        p.email = Email::Domain("berkeley.edu");
        if homework > 0.0 {
            p.prompts = Prompts::Campus;
        }
    });
    let company_card = card(&mut b.r, "556677");
    let company_system: Arc<str> = Arc::from(text::COMPANY_SYSTEM);
    b.people(c.company, "company", |p, r| {
        p.ip = Ip::Fixed(ipv4(203, 113 << 8 | 10));
        p.asn = "AS64500";
        p.card = Some(company_card);
        p.email = Email::Domain("acme-corp.com");
        p.system = Some(company_system.clone());
        p.timing = Timing::Office(-5);
        p.prompts = if r.chance(0.6) {
            Prompts::Coding
        } else {
            Prompts::Benign
        };
        p.daily = r.lognormal(15.0, 0.8);
    });
    let agent_system: Arc<str> = Arc::from(text::AGENT_SYSTEM);
    b.people(c.agent_users, "agent_users", |p, r| {
        p.system = Some(agent_system.clone());
        p.prompts = Prompts::Coding;
        p.user_agent = "openpatch/0.9.2";
        p.daily = r.lognormal(12.0, 1.0).min(2000.0);
    });
    for _ in 0..c.households {
        let shared = b.person("household");
        let Ip::Fixed(ip) = shared.ip else {
            unreachable!("a person has a fixed address")
        };
        for _ in 0..3 {
            b.people(1, "household", |p, _| {
                p.device = shared.device;
                p.ip = Ip::Fixed(ip);
            });
        }
    }
    // Evaluation organisations: 1-3 accounts each, on the organisation's own
    // cloud addresses, device and card; a public benchmark run after run.
    for org in 0..c.eval_pipelines {
        let r = &mut b.r;
        let cloud = r.below(CLOUD_NETS.len() as u64) as usize;
        let addresses = (0..r.between(1, 2))
            .map(|_| address_in(r, &CLOUD_NETS[cloud..=cloud]))
            .collect();
        let ip = Builder::pool(&mut pools, addresses);
        let device = r.next_u64();
        let bin = common_bin(r);
        let org_card = card(r, bin);
        let bench = r.below(text::BENCHMARK_SIZES.len() as u64) as u8;
        let domain = r.below(1_000_000) as u32;
        b.people(1 + org % 3, "eval_pipeline", |p, r| {
            p.ip = ip;
            p.asn = CLOUD_ASN[cloud];
            p.device = device;
            p.card = Some(org_card);
            p.email = Email::Numbered(domain);
            p.ja4 = COMMON_JA4[0];
            p.user_agent = COMMON_UA[0];
            p.timing = Timing::Always;
            p.prompts = Prompts::Eval(bench);
            p.models = Models::Eval;
            p.daily = c.eval_requests_per_day * (0.7 + 0.6 * r.unit());
            p.capped = true;
            p.cursor = r.below(u64::from(text::BENCHMARK_SIZES[usize::from(bench)])) as f64;
        });
    }
    let router: Vec<u32> = (0..40)
        .map(|i| ipv4(104, (28 << 16) | ((60 + i / 20) << 8) | (10 + i % 20)))
        .collect();
    let router_ip = Builder::pool(&mut pools, router);
    b.people(c.router_users, "router_users", |p, _| {
        p.ip = router_ip;
        p.asn = "AS13335";
        p.user_agent = "RouterSDK/2.1";
    });
    // A SaaS product: customers bring their own accounts (their own cards
    // and email); the product's workers, sharded by customer, run each
    // customer's jobs at the top of every hour.
    let workers: Vec<(u32, u64)> = (0..c.saas_ips.max(1))
        .map(|i| {
            (
                ipv4(18, (204 << 16) | (77 << 8) | (10 + i % 240)),
                b.r.next_u64(),
            )
        })
        .collect();
    let saas_system: Arc<str> = Arc::from(text::SAAS_SYSTEM);
    b.people(c.saas_customers, "saas", |p, r| {
        let (ip, device) = *r.pick(&workers);
        p.ip = Ip::Fixed(ip);
        p.device = device;
        p.asn = "AS16509";
        p.ja4 = COMMON_JA4[0];
        p.user_agent = "pulseboard-worker/3.2 OpenAI/Python 1.54.3";
        p.system = Some(saas_system.clone());
        p.timing = Timing::TopOfHour(1 + u8::from(r.chance(0.5)));
        p.prompts = Prompts::Saas;
        p.models = Models::Fixed("model-a");
    });
    // The news event: ordinary people, each asking the same question within
    // minutes of the news.
    let news_start = c.news_hour.unwrap_or(s.hours * 5.0 / 8.0) * 3600.0;
    let window = c.news_window_minutes * 60.0;
    b.people(c.news_users, "news_event", |p, r| {
        let u = r.unit();
        let at = news_start + u * u * window;
        if at < horizon {
            p.news_at = at;
        }
    });
    // Batch-API customers: bulk jobs of one template from a cloud address.
    b.people(c.batch_accounts, "batch_api", |p, r| {
        let cloud = r.below(CLOUD_NETS.len() as u64) as usize;
        p.ip = Ip::Fixed(address_in(r, &CLOUD_NETS[cloud..=cloud]));
        p.asn = CLOUD_ASN[cloud];
        p.email = Email::Numbered(r.below(1_000_000) as u32);
        p.ja4 = COMMON_JA4[0];
        p.user_agent = COMMON_UA[0];
        p.timing = Timing::Batch;
        p.prompts = Prompts::Batch(r.below(text::BATCH_TEMPLATES as u64) as u8);
        p.models = Models::Fixed("model-mini");
        p.capped = true;
    });
    campaign(&mut b, &mut pools, router_ip);

    let k = &s.knobs;
    let world = World {
        start_ts: s.start_ts,
        horizon,
        limit: s.account_limit_per_minute.max(1) as usize,
        release: s.release_hour.unwrap_or(s.hours / 2.0) * 3600.0,
        pivot_share: k.pivot_share,
        pivot_ramp: k.pivot_ramp_hours * 3600.0,
        homework: c.campus_homework,
        batch_job_requests: f64::from(c.batch_job_requests),
        batch_gap: if c.batch_requests_per_minute > 0.0 {
            60.0 / c.batch_requests_per_minute
        } else {
            f64::INFINITY
        },
        batch_jobs_per_sec: c.batch_jobs_per_day / 86_400.0,
        pools,
    };
    (world, b.out)
}

fn campaign(b: &mut Builder<'_>, pools: &mut Vec<Vec<u32>>, router: Ip) {
    let s = b.s;
    let k = &s.knobs;
    let shared = k.shared_infrastructure;
    let [coordinated, multi_route, reseller] = s.campaign_accounts();
    let tls = |rare: &'static str| {
        if k.copy_common_tls || !shared {
            COMMON_JA4[0]
        } else {
            rare
        }
    };
    // Without shared infrastructure: a card (common BIN), an email domain and
    // a residential or mobile address of its own, the most common SDK.
    let own = |p: &mut Profile, r: &mut Rng| {
        let bin = common_bin(r);
        p.card = Some(card(r, bin));
        p.email = email_domain(r);
        if r.chance(0.7) {
            p.asn = *r.pick(HOME_ASN);
            p.ip = Ip::Fixed(address_in(r, HOME_NETS));
        } else {
            let m = r.below(MOBILE_ASN.len() as u64) as usize;
            p.asn = MOBILE_ASN[m];
            p.ip = Ip::Fixed(address_in(r, &MOBILE_NETS[m..=m]));
        }
        p.ja4 = COMMON_JA4[0];
        p.user_agent = COMMON_UA[0];
    };
    let base = |p: &mut Profile, label: &'static str, prompts: Prompts| {
        p.label = label;
        p.cohort = "campaign";
        p.daily = k.requests_per_account_per_day;
        p.timing = Timing::Bursts;
        p.prompts = prompts;
        p.models = Models::Fixed("model-a");
        p.paraphrase = k.paraphrase_rate;
        p.capped = true;
    };

    // Coordinated: prepaid cards shared across accounts, datacenter IPs,
    // synchronised bursts, chain-of-thought templates.
    let per_card = k.accounts_per_card.max(1);
    let cards: Vec<(&'static str, u64)> = if shared {
        (0..coordinated.div_ceil(per_card).max(1))
            .map(|_| card(&mut b.r, "532610"))
            .collect()
    } else {
        Vec::new()
    };
    let dc: Vec<u32> = (0..(coordinated / 25).max(60))
        .map(|i| ipv4(45, (83 << 16) | ((10 + i / 200) << 8) | (2 + i % 200)))
        .collect();
    let dc = Builder::pool(pools, dc);
    let mut i = 0;
    b.people(coordinated, "campaign", |p, r| {
        base(p, "campaign:coordinated", Prompts::DistillCot);
        if shared {
            p.card = Some(cards[(i / per_card) as usize % cards.len()]);
            p.asn = "AS16276";
            p.ja4 = tls("t13d301100_5b57614c22b0_3d5424432f57");
            p.user_agent = "python-httpx/0.27.0";
            p.ip = dc;
        } else {
            own(p, r);
        }
        i += 1;
    });
    // Multi-route: a third-party router's IP pool, education accounts, a
    // shared system prompt, office hours in its own time zone, agentic templates.
    const UNIS: &[&str] = &[
        "ntu.edu.example",
        "hku.edu.example",
        "pku.edu.example",
        "kaist.edu.example",
    ];
    let campaign_system: Arc<str> = Arc::from(text::CAMPAIGN_SYSTEM);
    let mut systems: HashSet<String> = HashSet::new();
    b.people(multi_route, "campaign", |p, r| {
        base(p, "campaign:multi_route", Prompts::DistillAgentic);
        p.timing = Timing::Office(8);
        if shared {
            p.email = Email::Domain(r.pick::<&'static str>(UNIS));
            p.asn = "AS13335";
            p.ja4 = tls(COMMON_JA4[3]);
            p.user_agent = "RouterSDK/2.1";
            p.system = Some(campaign_system.clone());
            p.ip = router;
        } else {
            own(p, r);
            // Its own paraphrase of the system prompt, never another's.
            let system = loop {
                let candidate = text::campaign_system_paraphrase(r);
                if systems.insert(candidate.clone()) {
                    break candidate;
                }
            };
            p.system = Some(Arc::from(system));
        }
    });
    // Reseller: residential proxies, a device per account, one client's TLS
    // fingerprint, virtual cards from one BIN, genuine traffic mixed in, a
    // pivot to the new model.
    b.people(reseller, "campaign", |p, r| {
        base(p, "campaign:reseller", Prompts::Reseller);
        p.timing = Timing::Always;
        p.models = Models::Pivot;
        p.mix_in = k.mix_in;
        if shared {
            p.card = Some(card(r, "489537"));
            p.asn = *r.pick(HOME_ASN);
            p.ja4 = tls("t13d1713h2_5b57614c22b0_06a4338a1e2b");
            p.user_agent = "OpenAI/Python 1.54.3";
            p.ip = Ip::Proxy(k.proxy_pool.max(1));
        } else {
            own(p, r);
        }
    });
}

/// The mean of the daily curve, so that `daily` is requests per day.
fn curve_mean() -> f64 {
    CURVE.iter().sum::<f64>() / 24.0
}

fn office(hour: i64) -> f64 {
    if (9..18).contains(&hour.rem_euclid(24)) {
        1.0
    } else {
        OFF_HOURS
    }
}

fn to_ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

impl Profile {
    /// Generates the next hour (or bulk job) with any requests in it into
    /// `times`; false once past the end of the trace.
    fn refill(&mut self, w: &World) -> bool {
        while self.pos >= self.times.len() {
            self.times.clear();
            self.pos = 0;
            if let Timing::Batch = self.timing {
                if !self.next_job(w) {
                    return false;
                }
                continue;
            }
            let start = f64::from(self.hour) * 3600.0;
            if start >= w.horizon {
                return false;
            }
            self.generate_hour(start);
            self.hour += 1;
            let horizon = w.horizon;
            self.times.retain(|t| *t < horizon);
        }
        true
    }

    fn generate_hour(&mut self, start: f64) {
        let hour = i64::from(self.hour);
        let r = &mut self.rng;
        let per_hour = self.daily / 24.0;
        let uniform = |r: &mut Rng, mean: f64, times: &mut Vec<f64>| {
            for _ in 0..r.poisson(mean) {
                times.push(start + r.unit() * 3600.0);
            }
        };
        match self.timing {
            Timing::Diurnal(tz) => {
                let local = (hour + i64::from(tz)).rem_euclid(24) as usize;
                uniform(r, per_hour * CURVE[local] / curve_mean(), &mut self.times);
            }
            Timing::Office(tz) => {
                let mean = (9.0 + 15.0 * OFF_HOURS) / 24.0;
                let a = office(hour + i64::from(tz));
                uniform(r, per_hour * a / mean, &mut self.times);
            }
            Timing::Always => uniform(r, per_hour, &mut self.times),
            Timing::Bursts => {
                for _ in 0..r.poisson(per_hour) {
                    let window = r.below(3) as f64;
                    self.times.push(start + window * 1200.0 + r.unit() * 180.0);
                }
            }
            Timing::TopOfHour(jobs) => {
                for _ in 0..jobs {
                    if r.chance(JOB_RUNS) {
                        let u = r.unit();
                        self.times.push(start + 1.0 + u * u * JOB_JITTER);
                    }
                }
            }
            Timing::Batch => unreachable!("bulk jobs are generated a job at a time"),
        }
        self.times.sort_by(f64::total_cmp);
    }

    /// Generates the next bulk job; false once it would start past the end.
    fn next_job(&mut self, w: &World) -> bool {
        let r = &mut self.rng;
        if w.batch_jobs_per_sec <= 0.0 || !w.batch_gap.is_finite() {
            return false;
        }
        // `cursor`: when the last job ended; the next starts an exponential
        // wait later.
        let start = self.cursor - r.unit().max(f64::MIN_POSITIVE).ln() / w.batch_jobs_per_sec;
        if start >= w.horizon {
            return false;
        }
        let n = (w.batch_job_requests * (0.4 + 1.2 * r.unit())).round() as u64;
        for i in 0..n {
            let t = start + (i as f64 + 0.9 * r.unit()) * w.batch_gap;
            if t >= w.horizon {
                break;
            }
            self.times.push(t);
        }
        self.cursor = start + n as f64 * w.batch_gap;
        true
    }

    /// The time of this profile's next request and whether it is the news
    /// question; `None` once it has no more.
    fn advance(&mut self, w: &World) -> Option<(f64, bool)> {
        loop {
            let regular = if self.refill(w) {
                Some(self.times[self.pos])
            } else {
                None
            };
            let (t, news) = match regular {
                Some(t) if t <= self.news_at => {
                    self.pos += 1;
                    (t, false)
                }
                _ if self.news_at.is_finite() => {
                    let t = self.news_at;
                    self.news_at = f64::INFINITY;
                    (t, true)
                }
                _ => return None,
            };
            if self.capped {
                // At most `limit` requests in any window of 60 s (boundary
                // included): what would exceed it is dropped.
                let ms = to_ms(t);
                while self.recent.front().is_some_and(|&k| ms - k > 60_000) {
                    self.recent.pop_front();
                }
                if self.recent.len() >= w.limit {
                    continue;
                }
                self.recent.push_back(ms);
            }
            return Some((t, news));
        }
    }

    fn ip(&mut self, w: &World) -> u32 {
        match self.ip {
            Ip::Fixed(a) => a,
            Ip::Pool(i) => *self.rng.pick(&w.pools[usize::from(i)]),
            Ip::Proxy(n) => proxy_ip(self.rng.below(u64::from(n))),
        }
    }

    fn model(&mut self, w: &World, t: f64) -> &'static str {
        let released = t >= w.release;
        let r = &mut self.rng;
        match self.models {
            Models::Fixed(m) => m,
            Models::Benign => {
                if released && r.chance(0.1) {
                    "model-b"
                } else if r.chance(0.3) {
                    "model-mini"
                } else {
                    "model-a"
                }
            }
            Models::Eval => {
                if released && r.chance(0.5) {
                    "model-b"
                } else {
                    "model-a"
                }
            }
            Models::Pivot => {
                if !released {
                    return "model-a";
                }
                let ramp = if w.pivot_ramp > 0.0 {
                    ((t - w.release) / w.pivot_ramp).min(1.0)
                } else {
                    1.0
                };
                if r.chance(w.pivot_share * ramp) {
                    "model-b"
                } else {
                    "model-a"
                }
            }
        }
    }

    /// The record of the request at `t` (`news`: the news question).
    fn record(&mut self, w: &World, t: f64, news: bool) -> Record {
        let r = &mut self.rng;
        let genuine = self.mix_in > 0.0 && r.chance(self.mix_in);
        let paraphrase = r.chance(self.paraphrase);
        // Answers are long when the prompt asks for reasoning, whatever its
        // wording: the campaign paraphrases its requests, not its intent.
        let mut median = 250.0;
        let prompt = match (self.prompts, genuine || news) {
            _ if news => text::news_prompt(r),
            (_, true) | (Prompts::Benign, _) => text::benign_prompt(r),
            (Prompts::Coding, _) => text::coding_prompt(r),
            (Prompts::Campus, _) => {
                if r.chance(w.homework) {
                    median = 900.0;
                    text::homework_prompt(r)
                } else {
                    text::benign_prompt(r)
                }
            }
            (Prompts::Eval(bench), _) => {
                median = 900.0;
                let size = text::BENCHMARK_SIZES[usize::from(bench)];
                let i = self.cursor as u32 % size;
                self.cursor = f64::from((i + 1) % size);
                text::benchmark_question(usize::from(bench), i)
            }
            (Prompts::DistillCot, _) => {
                median = 900.0;
                text::distill_cot_prompt(r, paraphrase)
            }
            (Prompts::DistillAgentic, _) => {
                median = 900.0;
                text::distill_agentic_prompt(r, paraphrase)
            }
            (Prompts::Reseller, _) => {
                median = 900.0;
                if r.chance(0.5) {
                    text::distill_cot_prompt(r, paraphrase)
                } else {
                    text::distill_agentic_prompt(r, paraphrase)
                }
            }
            (Prompts::Saas, _) => {
                median = 400.0;
                text::saas_job_prompt(r, self.account)
            }
            (Prompts::Batch(template), _) => {
                median = 20.0;
                text::batch_prompt(r, usize::from(template))
            }
        };
        let model = self.model(w, t);
        let ip = self.ip(w);
        let mut fingerprints = BTreeMap::new();
        fingerprints.insert("device".to_string(), format!("dev_{:016x}", self.device));
        fingerprints.insert("asn".to_string(), self.asn.to_string());
        fingerprints.insert("ja4".to_string(), self.ja4.to_string());
        fingerprints.insert("user_agent".to_string(), self.user_agent.to_string());
        fingerprints.insert(
            "email_domain".to_string(),
            match self.email {
                Email::Domain(d) => d.to_string(),
                Email::Numbered(n) => format!("mail{n}.example"),
            },
        );
        if let Some((bin, number)) = self.card {
            fingerprints.insert("payment".to_string(), format!("card_{bin}_{number:010x}"));
            fingerprints.insert("payment_bin".to_string(), bin.to_string());
        }
        fingerprints.insert("ip".to_string(), ip_string(ip));
        let system = self.system.as_deref();
        let input_tokens = text::input_tokens(&prompt, system);
        Record {
            ts: w.start_ts + to_ms(t) as f64 / 1000.0,
            account: format!("acct_{:012x}", self.account),
            fingerprints,
            system: system.map(str::to_string),
            prompt,
            model: model.to_string(),
            input_tokens,
            output_tokens: text::output_tokens_around(&mut self.rng, median),
            label: if genuine { "benign" } else { self.label }.to_string(),
            cohort: self.cohort.to_string(),
        }
    }
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
