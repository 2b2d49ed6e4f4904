//! The simulator: deterministic, labelled, streamed in order, and faithful
//! to its scenario.

use ringfence_lab::sim::{simulate, simulate_stream, Record, Scenario, BUILTIN_SCENARIOS};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

/// A small version of a built-in scenario (a few thousand accounts).
fn small(name: &str) -> Scenario {
    let scale = if name.starts_with("seed") {
        0.004
    } else {
        0.05
    };
    Scenario::builtin(name).unwrap().scaled(scale)
}

/// The `seed` scenario at 1 % (about 5,000 accounts, 250,000 requests),
/// simulated once.
fn seed() -> &'static (Scenario, Vec<Record>) {
    static SEED: OnceLock<(Scenario, Vec<Record>)> = OnceLock::new();
    SEED.get_or_init(|| {
        let s = Scenario::builtin("seed").unwrap().scaled(0.01);
        let trace = simulate(&s);
        (s, trace)
    })
}

fn of_cohort<'a>(trace: &'a [Record], cohort: &str) -> Vec<&'a Record> {
    trace.iter().filter(|r| r.cohort == cohort).collect()
}

fn by_account<'a>(rows: &[&'a Record]) -> BTreeMap<&'a str, Vec<&'a Record>> {
    let mut out: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in rows {
        out.entry(r.account.as_str()).or_default().push(r);
    }
    out
}

/// The most requests in any 60-second window of `ts` (sorted).
fn busiest_minute(ts: &[f64]) -> usize {
    (0..ts.len())
        .map(|i| ts[i..].iter().take_while(|&&u| u - ts[i] < 60.0).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let s = small("default");
    let a = simulate(&s);
    assert_eq!(a, simulate(&s));
    let b = simulate(&Scenario { seed: 7, ..s });
    assert_ne!(a, b);
}

#[test]
fn the_stream_is_ordered_deterministic_and_equals_simulate() {
    for name in ["default", "seed"] {
        let s = small(name);
        let trace = simulate(&s);
        // Time order, ties by account.
        assert!(
            trace
                .windows(2)
                .all(|w| w[0].ts < w[1].ts || (w[0].ts == w[1].ts && w[0].account <= w[1].account)),
            "{name}: out of order"
        );
        let mut a = simulate_stream(&s);
        assert!(a.accounts() as u64 >= s.total_accounts());
        let mut n = 0;
        for (x, y) in (&mut a).zip(&trace) {
            assert_eq!(&x, y);
            n += 1;
        }
        assert_eq!((n, a.next()), (trace.len(), None));
    }
}

#[test]
fn traces_are_ordered_labelled_and_well_formed() {
    for name in BUILTIN_SCENARIOS {
        let trace = simulate(&small(name));
        assert!(trace.len() > 5_000, "{name}: {} records", trace.len());
        assert!(trace.windows(2).all(|w| w[0].ts <= w[1].ts));
        let labels: BTreeSet<&str> = trace.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "benign",
                "campaign:coordinated",
                "campaign:multi_route",
                "campaign:reseller"
            ]
            .into_iter()
            .collect()
        );
        for r in &trace {
            assert!(!r.prompt.is_empty() && !r.account.is_empty());
            assert!(r.input_tokens > 0 && r.output_tokens > 0);
            for kind in ["ja4", "device", "ip", "asn", "user_agent", "email_domain"] {
                assert!(
                    r.fingerprints.contains_key(kind),
                    "{name}: no {kind}: {r:?}"
                );
            }
            assert!(r.label == "benign" || r.cohort == "campaign");
        }
    }
}

#[test]
fn campaign_is_about_one_percent_of_accounts_and_under_the_account_limit() {
    let s = small("default");
    let trace = simulate(&s);
    let mut accounts: HashMap<&str, &str> = HashMap::new();
    for r in &trace {
        accounts.insert(&r.account, &r.cohort);
    }
    let campaign = accounts.values().filter(|c| **c == "campaign").count() as f64;
    let share = campaign / accounts.len() as f64;
    assert!((0.005..0.02).contains(&share), "campaign share {share}");

    // No campaign account ever exceeds the per-account limit in any minute,
    // in any scenario (seed's included).
    for trace in [&trace, &seed().1] {
        let campaign: Vec<&Record> = trace
            .iter()
            .filter(|r| r.label.starts_with("campaign"))
            .collect();
        for (account, rows) in by_account(&campaign) {
            let ts: Vec<f64> = rows.iter().map(|r| r.ts).collect();
            let busiest = busiest_minute(&ts);
            assert!(
                busiest <= s.account_limit_per_minute as usize,
                "{account}: {busiest} requests in a minute"
            );
        }
    }
}

#[test]
fn cohorts_share_what_they_are_meant_to_share() {
    let trace = simulate(&small("default"));
    let distinct = |cohort: &str, kind: &str| -> (usize, usize) {
        let rows = of_cohort(&trace, cohort);
        let accounts: BTreeSet<&str> = rows.iter().map(|r| r.account.as_str()).collect();
        let values: BTreeSet<&str> = rows
            .iter()
            .filter_map(|r| r.fingerprints.get(kind).map(String::as_str))
            .collect();
        (accounts.len(), values.len())
    };
    let (accounts, cards) = distinct("company", "payment");
    assert!(
        accounts >= 5 && cards == 1,
        "company: {accounts} accounts, {cards} cards"
    );
    let (accounts, ips) = distinct("mobile_cgnat", "ip");
    assert!(
        accounts > ips * 10,
        "cgnat: {accounts} accounts on {ips} IPs"
    );
    // Households: three accounts per device (a few make no request in a day).
    let (accounts, devices) = distinct("household", "device");
    assert!(
        accounts > devices * 2 && accounts <= devices * 3,
        "{accounts} accounts, {devices} devices"
    );
    // SaaS customers: their own cards, the product's few servers.
    let (accounts, ips) = distinct("saas", "ip");
    let (_, devices) = distinct("saas", "device");
    assert!(
        ips <= 6 && devices == ips,
        "saas: {accounts} accounts, {ips} IPs"
    );
    // The reseller's IPs are rarely reused; the coordinated operation shares cards.
    let reseller: Vec<&Record> = trace
        .iter()
        .filter(|r| r.label == "campaign:reseller")
        .collect();
    let ips: BTreeSet<&str> = reseller
        .iter()
        .map(|r| r.fingerprints["ip"].as_str())
        .collect();
    assert!(
        ips.len() * 10 > reseller.len() * 9,
        "{} IPs for {} requests",
        ips.len(),
        reseller.len()
    );
    let coordinated: BTreeSet<(&str, &str)> = trace
        .iter()
        .filter(|r| r.label == "campaign:coordinated")
        .map(|r| (r.account.as_str(), r.fingerprints["payment"].as_str()))
        .collect();
    let cards: BTreeSet<&str> = coordinated.iter().map(|(_, c)| *c).collect();
    assert!(coordinated.len() > cards.len(), "cards are shared");
    // The reseller switches to the new model half-way (the default: no ramp).
    let mid = trace[0].ts + 12.0 * 3600.0;
    assert!(reseller
        .iter()
        .filter(|r| r.ts >= mid + 60.0)
        .all(|r| r.model == "model-b"));
    assert!(reseller
        .iter()
        .filter(|r| r.ts < mid - 60.0)
        .all(|r| r.model == "model-a"));
}

#[test]
fn the_adaptive_attacker_turns_its_knobs() {
    let trace = simulate(&small("adaptive"));
    let coordinated: Vec<&Record> = trace
        .iter()
        .filter(|r| r.label == "campaign:coordinated")
        .collect();
    let cards: BTreeSet<&str> = coordinated
        .iter()
        .map(|r| r.fingerprints["payment"].as_str())
        .collect();
    let accounts: BTreeSet<&str> = coordinated.iter().map(|r| r.account.as_str()).collect();
    assert_eq!(cards.len(), accounts.len(), "no card sharing");
    let common = "t13d1516h2_8daaf6152771_02713d6af862";
    assert!(coordinated.iter().all(|r| r.fingerprints["ja4"] == common));
    assert!(coordinated
        .iter()
        .all(|r| !r.prompt.starts_with("You will be given a problem")));
}

#[test]
fn scenarios_round_trip_through_serde_and_reject_unknown_fields() {
    for name in BUILTIN_SCENARIOS {
        let s = Scenario::builtin(name).unwrap();
        s.validate().unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s);
        let toml = toml::to_string(&s).unwrap();
        assert_eq!(Scenario::from_toml(&toml).unwrap(), s, "{name}");
    }
    let partial: Scenario =
        serde_json::from_str(r#"{"seed": 9, "knobs": {"mix_in": 0.5}}"#).unwrap();
    assert_eq!(partial.seed, 9);
    assert_eq!(partial.knobs.mix_in, 0.5);
    assert_eq!(partial.individuals, Scenario::default().individuals);
    let err = serde_json::from_str::<Scenario>(r#"{"sed": 9}"#).unwrap_err();
    assert!(err.to_string().contains("sed"), "{err}");
    // The cohorts' old field names still work, the new ones default.
    let old = Scenario::from_toml("[cohorts]\nmobile_cgnat = 10\ncgnat_ips = 2\neval_pipelines = 1\neval_requests_per_day = 100.0\n").unwrap();
    assert_eq!(old.cohorts.saas_customers, 60);
    let bad = Scenario::from_toml("release_hour = 30.0\n").unwrap_err();
    assert!(bad.to_string().contains("release_hour"), "{bad}");
    let bad = Scenario::from_toml("campaign_scale = -1.0\n").unwrap_err();
    assert!(bad.to_string().contains("campaign_scale"), "{bad}");
    let trace = simulate(&small("default"));
    let line = serde_json::to_string(&trace[0]).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), trace[0]);
}

#[test]
fn the_seed_scenario_is_sized_like_the_public_operations() {
    // Counted from the sizes: nothing is simulated.
    let s = Scenario::builtin("seed").unwrap();
    let [coordinated, multi_route, reseller] = s.campaign_accounts();
    assert!(coordinated + multi_route + reseller >= 24_000);
    assert!(coordinated > 0 && multi_route > 0 && reseller >= 10_000);
    assert!(s.benign_accounts() >= 500_000, "{}", s.benign_accounts());
    assert_eq!(s.hours, 72.0);
    let c = &s.cohorts;
    assert!(c.company >= 5_000 && c.agent_users >= 100_000 && c.campus >= 20_000);
    assert!(c.mobile_cgnat / c.cgnat_ips >= 10_000);
    assert!(c.saas_customers >= 2_000 && c.news_users >= 50_000);
    // Not tied to the benign crowd's size.
    let fewer = Scenario {
        individuals: 1_000,
        ..s.clone()
    };
    assert_eq!(fewer.campaign_accounts(), s.campaign_accounts());
}

#[test]
fn campaign_scale_multiplies_the_campaign_only() {
    for name in ["default", "seed"] {
        let s = Scenario::builtin(name).unwrap();
        let more = Scenario {
            campaign_scale: 3.0,
            ..s.clone()
        };
        assert_eq!(more.benign_accounts(), s.benign_accounts());
        let (a, b) = (s.campaign_accounts(), more.campaign_accounts());
        for (x, y) in a.iter().zip(b) {
            assert!(y.abs_diff(3 * x) <= 1, "{name}: {a:?} then {b:?}");
        }
        // `--scale` keeps scaling everything.
        let half = s.clone().scaled(0.5);
        assert!(half.benign_accounts() < s.benign_accounts());
        assert!(half.campaign_accounts()[2] < s.campaign_accounts()[2]);
    }
    // In the trace.
    let accounts = |s: &Scenario| {
        let trace = simulate(s);
        let mut campaign = BTreeSet::new();
        let mut benign = BTreeSet::new();
        for r in &trace {
            if r.cohort == "campaign" {
                campaign.insert(r.account.clone());
            } else {
                benign.insert(r.account.clone());
            }
        }
        (campaign.len(), benign.len())
    };
    let s = small("default");
    let (c1, b1) = accounts(&s);
    let (c3, b3) = accounts(&Scenario {
        campaign_scale: 3.0,
        ..s
    });
    assert_eq!(b1, b3);
    assert!(c3.abs_diff(3 * c1) <= 3, "{c1} then {c3}");
}

#[test]
fn the_seed_operations_and_the_pivot_ramp() {
    let (s, trace) = seed();
    let t0 = s.start_ts;
    let ops: BTreeMap<&str, BTreeSet<&str>> =
        trace
            .iter()
            .filter(|r| r.cohort == "campaign")
            .fold(BTreeMap::new(), |mut m, r| {
                if let Some(op) = r.label.strip_prefix("campaign:") {
                    m.entry(op).or_default().insert(r.account.as_str());
                }
                m
            });
    assert_eq!(ops.len(), 3, "{:?}", ops.keys());
    assert!(ops["reseller"].len() >= 100, "{}", ops["reseller"].len());
    // The proxy network moves about half of its traffic to the new model
    // released at hour 36, over a day: a ramp, not a switch.
    let release = t0 + 36.0 * 3600.0;
    let share_b = |from: f64, to: f64| {
        let rows: Vec<&Record> = trace
            .iter()
            .filter(|r| r.label == "campaign:reseller" && r.ts >= from && r.ts < to)
            .collect();
        let b = rows.iter().filter(|r| r.model == "model-b").count();
        b as f64 / rows.len() as f64
    };
    assert_eq!(share_b(t0, release), 0.0);
    let first_hours = share_b(release, release + 4.0 * 3600.0);
    assert!(first_hours < 0.15, "{first_hours} in the first hours");
    let midway = share_b(release + 10.0 * 3600.0, release + 14.0 * 3600.0);
    assert!((0.15..0.35).contains(&midway), "{midway} half a day in");
    let after = share_b(release + 24.0 * 3600.0, t0 + 72.0 * 3600.0);
    assert!((0.42..0.58).contains(&after), "{after} a day after release");
}

#[test]
fn the_seed_cohorts_have_their_shapes() {
    let (s, trace) = seed();
    let t0 = s.start_ts;
    let limit = s.account_limit_per_minute as usize;

    // SaaS: jobs at the top of every hour, within a minute and a half.
    let saas = of_cohort(trace, "saas");
    assert!(saas.len() > 72 * 15, "{} saas requests", saas.len());
    assert!(saas.iter().all(|r| (r.ts - t0) % 3600.0 < 90.0));
    assert!(saas
        .iter()
        .all(|r| r.system.is_some() && r.prompt.contains("Hour digest")));

    // The news: each of its users asks once, within the window.
    let news_at = t0 + 44.0 * 3600.0;
    let news = of_cohort(trace, "news_event");
    let asked: Vec<&&Record> = news
        .iter()
        .filter(|r| r.prompt.contains("central bank"))
        .collect();
    let users: BTreeSet<&str> = news.iter().map(|r| r.account.as_str()).collect();
    assert_eq!(asked.len(), users.len());
    assert!(asked
        .iter()
        .all(|r| r.ts >= news_at && r.ts <= news_at + 300.0));
    let mut wordings: HashMap<&str, usize> = HashMap::new();
    for r in &asked {
        *wordings.entry(r.prompt.as_str()).or_default() += 1;
    }
    let same = *wordings.values().max().unwrap();
    assert!(
        same * 2 > asked.len() && same < asked.len(),
        "{same} of {}",
        asked.len()
    );

    // Evaluation pipelines: near the limit, around the clock, questions
    // repeating run after run, long answers.
    let eval = of_cohort(trace, "eval_pipeline");
    for (account, rows) in by_account(&eval) {
        let ts: Vec<f64> = rows.iter().map(|r| r.ts).collect();
        assert!(busiest_minute(&ts) <= limit, "{account}");
        let per_minute = rows.len() as f64 / (72.0 * 60.0);
        assert!(
            (8.0..=18.5).contains(&per_minute),
            "{account}: {per_minute}/min"
        );
        let distinct: BTreeSet<&str> = rows.iter().map(|r| r.prompt.as_str()).collect();
        assert!(
            distinct.len() * 5 < rows.len(),
            "{account}: questions repeat"
        );
        let mut out: Vec<u32> = rows.iter().map(|r| r.output_tokens).collect();
        out.sort_unstable();
        assert!(out[out.len() / 2] > 500);
    }

    // Batch-API customers: one instruction, a steady pace under the limit,
    // short answers.
    let batch = of_cohort(trace, "batch_api");
    assert!(!batch.is_empty());
    for (account, rows) in by_account(&batch) {
        let first: BTreeSet<&str> = rows
            .iter()
            .map(|r| r.prompt.lines().next().unwrap())
            .collect();
        assert!(
            first.len() <= 1 || rows[0].prompt.starts_with("Extract"),
            "{account}"
        );
        let ts: Vec<f64> = rows.iter().map(|r| r.ts).collect();
        assert!(busiest_minute(&ts) <= limit);
        let mut out: Vec<u32> = rows.iter().map(|r| r.output_tokens).collect();
        out.sort_unstable();
        assert!(out[out.len() / 2] < 60);
    }

    // The campus: one NAT pool, its domain, some homework asking for steps.
    let campus = of_cohort(trace, "campus");
    let ips: BTreeSet<&str> = campus
        .iter()
        .map(|r| r.fingerprints["ip"].as_str())
        .collect();
    assert!(ips.len() <= 4);
    let homework = campus
        .iter()
        .filter(|r| r.prompt.starts_with("Problem "))
        .count();
    let share = homework as f64 / campus.len() as f64;
    assert!((0.15..0.25).contains(&share), "homework {share}");

    // Carrier NATs: thousands of accounts per address at full size.
    let cgnat = of_cohort(trace, "mobile_cgnat");
    let ips: BTreeSet<&str> = cgnat
        .iter()
        .map(|r| r.fingerprints["ip"].as_str())
        .collect();
    assert!(ips.len() <= 3);
    // The agent's users share its system prompt and user agent.
    let agent = of_cohort(trace, "agent_users");
    let uas: BTreeSet<&str> = agent
        .iter()
        .map(|r| r.fingerprints["user_agent"].as_str())
        .collect();
    assert_eq!(uas.len(), 1);
}

#[test]
fn the_seed_adaptive_attacker_shares_no_infrastructure() {
    let s = Scenario::builtin("seed-adaptive").unwrap().scaled(0.01);
    assert!(!s.knobs.shared_infrastructure);
    let trace = simulate(&s);
    let campaign: Vec<&Record> = trace
        .iter()
        .filter(|r| r.label.starts_with("campaign:"))
        .collect();
    let accounts = by_account(&campaign);
    assert!(accounts.len() > 200);
    // Each card, device, address and system prompt belongs to one account.
    for kind in ["payment", "device", "ip", "system"] {
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for r in &campaign {
            let value = match kind {
                "system" => match &r.system {
                    Some(s) => s.as_str(),
                    None => continue,
                },
                _ => r.fingerprints[kind].as_str(),
            };
            let first = owner.entry(value).or_insert(r.account.as_str());
            assert_eq!(*first, r.account.as_str(), "{kind} {value} is shared");
        }
    }
    // BINs, TLS and user agent like everyone's; every prompt paraphrased;
    // answers still long.
    let bins: BTreeSet<&str> = campaign
        .iter()
        .map(|r| r.fingerprints["payment_bin"].as_str())
        .collect();
    assert!(bins.len() > 5);
    assert!(campaign.iter().all(|r| r.fingerprints["ja4"]
        == "t13d1516h2_8daaf6152771_02713d6af862"
        && r.fingerprints["user_agent"] == "OpenAI/Python 1.54.3"));
    assert!(campaign
        .iter()
        .all(|r| !r.prompt.starts_with("You will be given a problem")
            && !r.prompt.starts_with("Task: ")));
    let mut out: Vec<u32> = campaign.iter().map(|r| r.output_tokens).collect();
    out.sort_unstable();
    assert!(out[out.len() / 2] > 500);
}
