//! The simulator: deterministic, labelled, and faithful to its scenario.

use ringfence_lab::sim::{simulate, Record, Scenario, BUILTIN_SCENARIOS};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn small(name: &str) -> Scenario {
    Scenario::builtin(name).unwrap().scaled(0.05)
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
            assert!(r.fingerprints.contains_key("ja4") && r.fingerprints.contains_key("device"));
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

    // No campaign account ever exceeds the per-account limit in any minute.
    let mut by_account: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in trace.iter().filter(|r| r.label.starts_with("campaign")) {
        by_account.entry(&r.account).or_default().push(r.ts);
    }
    let limit = s.account_limit_per_minute as usize;
    for (account, ts) in by_account {
        for (i, t) in ts.iter().enumerate() {
            let in_minute = ts[i..].iter().take_while(|&&u| u - t < 60.0).count();
            assert!(
                in_minute <= limit,
                "{account}: {in_minute} requests in a minute"
            );
        }
    }
}

#[test]
fn cohorts_share_what_they_are_meant_to_share() {
    let trace = simulate(&small("default"));
    let distinct = |cohort: &str, kind: &str| -> (usize, usize) {
        let rows: Vec<&Record> = trace.iter().filter(|r| r.cohort == cohort).collect();
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
    // The reseller pivots to the new model half-way.
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
    let s = Scenario::builtin("adaptive").unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s);
    let partial: Scenario =
        serde_json::from_str(r#"{"seed": 9, "knobs": {"mix_in": 0.5}}"#).unwrap();
    assert_eq!(partial.seed, 9);
    assert_eq!(partial.knobs.mix_in, 0.5);
    assert_eq!(partial.individuals, Scenario::default().individuals);
    let err = serde_json::from_str::<Scenario>(r#"{"sed": 9}"#).unwrap_err();
    assert!(err.to_string().contains("sed"), "{err}");
    let trace = simulate(&small("default"));
    let line = serde_json::to_string(&trace[0]).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), trace[0]);
}
