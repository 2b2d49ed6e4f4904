//! The population of accounts and the requests each makes.

use super::rng::Rng;
use super::text;
use super::{Record, Scenario};
use std::collections::BTreeMap;

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
const TIMEZONES: &[(i32, f64)] = &[
    (-8, 0.2),
    (-5, 0.25),
    (0, 0.15),
    (1, 0.15),
    (5, 0.07),
    (8, 0.1),
    (9, 0.08),
];

#[derive(Clone, Copy)]
enum Timing {
    /// Daily cycle in a time zone (hours from UTC).
    Diurnal(i32),
    /// Working hours in a time zone.
    Office(i32),
    /// Uniform around the clock.
    Always,
    /// Synchronised 3-minute bursts every 20 minutes (shared by all members).
    Bursts,
}

#[derive(Clone, Copy, PartialEq)]
enum Prompts {
    Benign,
    Coding,
    Eval,
    DistillCot,
    DistillAgentic,
    Reseller,
}

enum Ip {
    Fixed(String),
    /// One of a fixed list, per request.
    Pool(Vec<String>),
    /// A fresh residential address from a pool of `n`, per request.
    Proxy(u32),
}

struct Profile {
    account: String,
    label: &'static str,
    cohort: &'static str,
    daily: f64,
    timing: Timing,
    prompts: Prompts,
    system: Option<&'static str>,
    fixed: BTreeMap<String, String>,
    ip: Ip,
    /// Switches to the newly released model half-way.
    pivots: bool,
    mix_in: f64,
    paraphrase: f64,
}

fn account_id(seed: u64, index: u64) -> String {
    let mut r = Rng::new(seed ^ 0xacc0_u64, index);
    format!("acct_{:012x}", r.next_u64() >> 16)
}

fn residential_ip(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        r.pick(&[24u8, 50, 67, 71, 73, 76, 98, 108, 174, 184]),
        r.below(256),
        r.below(256),
        r.between(1, 254)
    )
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

fn email_domain(r: &mut Rng) -> String {
    match weighted(r, EMAIL) {
        Some(d) => d.to_string(),
        None => format!("mail{}.example", r.below(1_000_000)),
    }
}

fn card(r: &mut Rng, bin: &str) -> (String, String) {
    (
        format!("card_{bin}_{:010x}", r.next_u64() >> 24),
        bin.to_string(),
    )
}

/// The fingerprints of an ordinary person: their own device, home IP and
/// card; common SDK, BIN and email domain.
fn person(r: &mut Rng) -> (BTreeMap<String, String>, Ip) {
    let mut f = BTreeMap::new();
    f.insert("device".into(), format!("dev_{:016x}", r.next_u64()));
    f.insert("asn".into(), (*r.pick(HOME_ASN)).to_string());
    let sdk = r.zipf(COMMON_JA4.len(), 1.2);
    f.insert("ja4".into(), COMMON_JA4[sdk].to_string());
    f.insert("user_agent".into(), COMMON_UA[sdk].to_string());
    f.insert("email_domain".into(), email_domain(r));
    if r.chance(0.6) {
        let bin = BINS[r.zipf(BINS.len(), 1.1)];
        let (c, b) = card(r, bin);
        f.insert("payment".into(), c);
        f.insert("payment_bin".into(), b);
    }
    (f, Ip::Fixed(residential_ip(r)))
}

fn timezone(r: &mut Rng) -> i32 {
    weighted(r, TIMEZONES).unwrap_or(0)
}

fn benign(
    s: &Scenario,
    index: &mut u64,
    cohort: &'static str,
    r: &mut Rng,
    edit: impl FnOnce(&mut Profile, &mut Rng),
) -> Profile {
    let (fixed, ip) = person(r);
    let tz = timezone(r);
    let mut p = Profile {
        account: account_id(s.seed, *index),
        label: "benign",
        cohort,
        daily: r
            .lognormal(s.median_requests_per_day, s.volume_sigma)
            .min(2000.0),
        timing: Timing::Diurnal(tz),
        prompts: Prompts::Benign,
        system: None,
        fixed,
        ip,
        pivots: false,
        mix_in: 0.0,
        paraphrase: 0.0,
    };
    *index += 1;
    edit(&mut p, r);
    p
}

fn population(s: &Scenario) -> Vec<Profile> {
    let mut r = Rng::new(s.seed, u64::MAX);
    let mut index = 0u64;
    let mut out = Vec::new();
    let c = &s.cohorts;
    for _ in 0..s.individuals {
        out.push(benign(s, &mut index, "individual", &mut r, |p, r| {
            if r.chance(0.15) {
                p.prompts = Prompts::Coding;
            }
        }));
    }
    let cgnat: Vec<String> = (0..c.cgnat_ips.max(1))
        .map(|i| format!("100.64.{}.{}", i / 250, 1 + i % 250))
        .collect();
    for _ in 0..c.mobile_cgnat {
        let pool = cgnat.clone();
        out.push(benign(s, &mut index, "mobile_cgnat", &mut r, |p, r| {
            p.ip = Ip::Fixed(r.pick(&pool).clone());
            p.fixed.insert("asn".into(), "AS21928".into());
        }));
    }
    for _ in 0..c.campus {
        out.push(benign(s, &mut index, "campus", &mut r, |p, _| {
            p.ip = Ip::Fixed("128.32.18.7".into());
            p.fixed.insert("asn".into(), "AS25".into());
            p.fixed.insert("email_domain".into(), "berkeley.edu".into());
        }));
    }
    let (company_card, company_bin) = card(&mut r, "556677");
    for _ in 0..c.company {
        let (card, bin) = (company_card.clone(), company_bin.clone());
        out.push(benign(s, &mut index, "company", &mut r, |p, r| {
            p.ip = Ip::Fixed("203.0.113.10".into());
            p.fixed.insert("asn".into(), "AS64500".into());
            p.fixed.insert("payment".into(), card);
            p.fixed.insert("payment_bin".into(), bin);
            p.fixed
                .insert("email_domain".into(), "acme-corp.com".into());
            p.system = Some(text::COMPANY_SYSTEM);
            p.timing = Timing::Office(-5);
            p.prompts = if r.chance(0.6) {
                Prompts::Coding
            } else {
                Prompts::Benign
            };
            p.daily = r.lognormal(15.0, 0.8);
        }));
    }
    for _ in 0..c.agent_users {
        out.push(benign(s, &mut index, "agent_users", &mut r, |p, r| {
            p.system = Some(text::AGENT_SYSTEM);
            p.prompts = Prompts::Coding;
            p.fixed
                .insert("user_agent".into(), "openpatch/0.9.2".into());
            p.daily = r.lognormal(12.0, 1.0).min(2000.0);
        }));
    }
    for _ in 0..c.households {
        let (shared, ip) = person(&mut r);
        let ip = match ip {
            Ip::Fixed(a) => a,
            _ => unreachable!(),
        };
        for _ in 0..3 {
            let (device, ip) = (shared["device"].clone(), ip.clone());
            out.push(benign(s, &mut index, "household", &mut r, |p, _| {
                p.fixed.insert("device".into(), device);
                p.ip = Ip::Fixed(ip);
            }));
        }
    }
    for _ in 0..c.eval_pipelines {
        let daily = c.eval_requests_per_day;
        out.push(benign(s, &mut index, "eval_pipeline", &mut r, |p, _| {
            p.timing = Timing::Always;
            p.prompts = Prompts::Eval;
            p.daily = daily;
            p.fixed.insert("asn".into(), "AS16509".into());
            p.ip = Ip::Fixed("52.14.88.201".into());
        }));
    }
    let router: Vec<String> = (0..40)
        .map(|i| format!("104.28.{}.{}", 60 + i / 20, 10 + i % 20))
        .collect();
    for _ in 0..c.router_users {
        let pool = router.clone();
        out.push(benign(s, &mut index, "router_users", &mut r, |p, _| {
            p.ip = Ip::Pool(pool);
            p.fixed.insert("asn".into(), "AS13335".into());
            p.fixed.insert("user_agent".into(), "RouterSDK/2.1".into());
        }));
    }
    campaign(s, &mut index, &mut r, &router, &mut out);
    out
}

fn campaign(s: &Scenario, index: &mut u64, r: &mut Rng, router: &[String], out: &mut Vec<Profile>) {
    let k = &s.knobs;
    let [coordinated, multi_route, reseller] = s.campaign_accounts();
    let tls = |rare: &str| {
        if k.copy_common_tls {
            COMMON_JA4[0].to_string()
        } else {
            rare.to_string()
        }
    };
    let base = |r: &mut Rng, index: &mut u64, label, cohort, prompts| {
        let mut fixed = BTreeMap::new();
        fixed.insert("device".to_string(), format!("dev_{:016x}", r.next_u64()));
        fixed.insert("email_domain".to_string(), email_domain(r));
        let p = Profile {
            account: account_id(s.seed, *index),
            label,
            cohort,
            daily: k.requests_per_account_per_day,
            timing: Timing::Bursts,
            prompts,
            system: None,
            fixed,
            ip: Ip::Fixed(String::new()),
            pivots: false,
            mix_in: 0.0,
            paraphrase: k.paraphrase_rate,
        };
        *index += 1;
        p
    };

    // Coordinated: prepaid cards shared across accounts, datacenter IPs,
    // synchronised bursts, chain-of-thought templates.
    let per_card = k.accounts_per_card.max(1);
    let cards: Vec<(String, String)> = (0..coordinated.div_ceil(per_card).max(1))
        .map(|_| card(r, "532610"))
        .collect();
    let dc: Vec<String> = (0..60)
        .map(|i| format!("45.83.{}.{}", 10 + i / 20, 2 + i % 20))
        .collect();
    for i in 0..coordinated {
        let mut p = base(
            r,
            index,
            "campaign:coordinated",
            "campaign",
            Prompts::DistillCot,
        );
        let (c, b) = &cards[(i / per_card) as usize % cards.len()];
        p.fixed.insert("payment".into(), c.clone());
        p.fixed.insert("payment_bin".into(), b.clone());
        p.fixed.insert("asn".into(), "AS16276".into());
        p.fixed
            .insert("ja4".into(), tls("t13d301100_5b57614c22b0_3d5424432f57"));
        p.fixed
            .insert("user_agent".into(), "python-httpx/0.27.0".into());
        p.ip = Ip::Pool(dc.clone());
        out.push(p);
    }
    // Multi-route: a third-party router's IP pool, education accounts, a
    // shared system prompt, office hours in its own time zone, agentic templates.
    const UNIS: &[&str] = &[
        "ntu.edu.example",
        "hku.edu.example",
        "pku.edu.example",
        "kaist.edu.example",
    ];
    for _ in 0..multi_route {
        let mut p = base(
            r,
            index,
            "campaign:multi_route",
            "campaign",
            Prompts::DistillAgentic,
        );
        p.fixed
            .insert("email_domain".into(), (*r.pick(UNIS)).to_string());
        p.fixed.insert("asn".into(), "AS13335".into());
        p.fixed.insert("ja4".into(), tls(COMMON_JA4[3]));
        p.fixed.insert("user_agent".into(), "RouterSDK/2.1".into());
        p.system = Some(text::CAMPAIGN_SYSTEM);
        p.timing = Timing::Office(8);
        p.ip = Ip::Pool(router.to_vec());
        out.push(p);
    }
    // Reseller: residential proxies, a device per account, one client's TLS
    // fingerprint, virtual cards from one BIN, genuine traffic mixed in, a
    // pivot to the new model half-way.
    for _ in 0..reseller {
        let mut p = base(r, index, "campaign:reseller", "campaign", Prompts::Reseller);
        let (c, b) = card(r, "489537");
        p.fixed.insert("payment".into(), c);
        p.fixed.insert("payment_bin".into(), b);
        p.fixed
            .insert("asn".into(), (*r.pick(HOME_ASN)).to_string());
        p.fixed
            .insert("ja4".into(), tls("t13d1713h2_5b57614c22b0_06a4338a1e2b"));
        p.fixed
            .insert("user_agent".into(), "OpenAI/Python 1.54.3".into());
        p.timing = Timing::Always;
        p.ip = Ip::Proxy(k.proxy_pool.max(1));
        p.pivots = true;
        p.mix_in = k.mix_in;
        out.push(p);
    }
}

/// Activity (0..1) at a local hour: quiet at night, busy in the evening.
fn diurnal(hour: f64) -> f64 {
    const CURVE: [f64; 24] = [
        0.25, 0.15, 0.08, 0.05, 0.05, 0.07, 0.15, 0.35, 0.55, 0.7, 0.8, 0.85, 0.85, 0.85, 0.85,
        0.85, 0.85, 0.9, 0.95, 1.0, 1.0, 0.9, 0.7, 0.45,
    ];
    CURVE[(hour.rem_euclid(24.0)) as usize % 24]
}

fn request_time(timing: Timing, horizon: f64, r: &mut Rng) -> f64 {
    match timing {
        Timing::Always => r.unit() * horizon,
        Timing::Bursts => {
            let windows = (horizon / 1200.0).floor().max(1.0) as u64;
            let w = r.below(windows) as f64;
            (w * 1200.0 + r.unit() * 180.0).min(horizon - 1e-3)
        }
        Timing::Diurnal(tz) | Timing::Office(tz) => loop {
            let t = r.unit() * horizon;
            let hour = t / 3600.0 + f64::from(tz);
            let p = match timing {
                Timing::Office(_) => {
                    let h = hour.rem_euclid(24.0);
                    if (9.0..18.0).contains(&h) {
                        1.0
                    } else {
                        0.02
                    }
                }
                _ => diurnal(hour),
            };
            if r.chance(p) {
                return t;
            }
        },
    }
}

fn requests(s: &Scenario, p: &Profile, stream: u64, out: &mut Vec<Record>) {
    let mut r = Rng::new(s.seed, stream);
    let horizon = s.hours * 3600.0;
    let n = r.poisson(p.daily * s.hours / 24.0);
    let mut times: Vec<f64> = (0..n)
        .map(|_| request_time(p.timing, horizon, &mut r))
        .collect();
    times.sort_by(f64::total_cmp);
    // Stay under the per-account limit: at most `limit` requests in any minute.
    let limit = s.account_limit_per_minute.max(1) as usize;
    if p.label != "benign" {
        let mut kept: Vec<f64> = Vec::with_capacity(times.len());
        for t in times {
            let in_minute = kept.iter().rev().take_while(|&&k| t - k < 60.0).count();
            if in_minute < limit {
                kept.push(t);
            }
        }
        times = kept;
    }
    let midpoint = horizon / 2.0;
    for t in times {
        let genuine = p.mix_in > 0.0 && r.chance(p.mix_in);
        let paraphrase = r.chance(p.paraphrase);
        let prompt = match (p.prompts, genuine) {
            (_, true) | (Prompts::Benign, _) => text::benign_prompt(&mut r),
            (Prompts::Coding, _) => text::coding_prompt(&mut r),
            (Prompts::Eval, _) => text::eval_prompt(&mut r),
            (Prompts::DistillCot, _) => text::distill_cot_prompt(&mut r, paraphrase),
            (Prompts::DistillAgentic, _) => text::distill_agentic_prompt(&mut r, paraphrase),
            (Prompts::Reseller, _) => {
                if r.chance(0.5) {
                    text::distill_cot_prompt(&mut r, paraphrase)
                } else {
                    text::distill_agentic_prompt(&mut r, paraphrase)
                }
            }
        };
        let model = if p.pivots {
            if t >= midpoint {
                "model-b"
            } else {
                "model-a"
            }
        } else if p.label == "benign" && t >= midpoint && r.chance(0.1) {
            "model-b"
        } else if p.label == "benign" && r.chance(0.3) {
            "model-mini"
        } else {
            "model-a"
        };
        let mut fingerprints = p.fixed.clone();
        let ip = match &p.ip {
            Ip::Fixed(a) => a.clone(),
            Ip::Pool(pool) => r.pick(pool).clone(),
            Ip::Proxy(n) => {
                let x = r.below(u64::from(*n));
                format!(
                    "{}.{}.{}.{}",
                    [24, 67, 73, 98, 174][(x % 5) as usize],
                    (x >> 3) % 256,
                    (x >> 11) % 256,
                    1 + (x >> 19) % 254
                )
            }
        };
        if !ip.is_empty() {
            fingerprints.insert("ip".into(), ip);
        }
        // Answers are long when the prompt asks for reasoning, whatever its
        // wording: the campaign paraphrases its requests, not its intent.
        let cot = !genuine
            && matches!(
                p.prompts,
                Prompts::Eval | Prompts::DistillCot | Prompts::DistillAgentic | Prompts::Reseller
            );
        let input_tokens = text::input_tokens(&prompt, p.system);
        out.push(Record {
            ts: s.start_ts + (t * 1000.0).round() / 1000.0,
            account: p.account.clone(),
            fingerprints,
            prompt,
            system: p.system.map(str::to_string),
            model: model.to_string(),
            input_tokens,
            output_tokens: text::output_tokens(&mut r, cot),
            label: if genuine {
                "benign".to_string()
            } else {
                p.label.to_string()
            },
            cohort: p.cohort.to_string(),
        });
    }
}

/// Generates the scenario's trace, ordered by time (then account).
pub fn simulate(s: &Scenario) -> Vec<Record> {
    let people = population(s);
    let mut out = Vec::new();
    for (i, p) in people.iter().enumerate() {
        requests(s, p, i as u64, &mut out);
    }
    out.sort_by(|a, b| {
        a.ts.total_cmp(&b.ts)
            .then_with(|| a.account.cmp(&b.account))
    });
    out
}
