//! Two providers, one operation: A detects and exports a STIX bundle; B
//! imports it and replays its own traffic (the same operator under other
//! account names, among B's own crowds), against B without the import.
//! Also: nothing raw leaves A, no benign-majority value leaves A (by the
//! simulator's labels), and under another consortium key nothing matches.

use ringfence::guard::GuardConfig;
use ringfence::intel::ConsortiumKey;
use ringfence_intel::guard::parse_for;
use ringfence_intel::Producer;
use ringfence_lab::intel::exchange;
use ringfence_lab::replay::{ReplayOptions, Replayer, Report};
use ringfence_lab::sim::{second_provider, simulate, Knobs, Record, Scenario, SecondProvider};
use std::collections::{BTreeMap, HashMap, HashSet};

const KEY: &[u8] = b"consortium key for the lab tests!";
const A_ID: &str = "identity--6b1e7a3c-2f4d-4c8e-9a1b-3d5e7f9a1c2e";

fn scenario() -> Scenario {
    let mut s = Scenario::builtin("default").unwrap().scaled(0.05);
    s.campaign_scale *= 5.0;
    s
}

fn config(accounts: u64) -> GuardConfig {
    GuardConfig::for_accounts(accounts as usize * 2)
}

fn print(name: &str, r: &Report) {
    let e = r.evaluation.as_ref().unwrap();
    for (op, o) in &e.campaign.operations {
        println!(
            "{name} {op}: {} requests, {:.1} % served, first refusal {:?}",
            o.requests,
            100.0 * o.served_share,
            o.first_refused
                .as_ref()
                .map(|d| (d.requests_before, d.secs_after_first_request.round()))
        );
    }
    println!(
        "{name} benign: {} accounts, {} flagged",
        e.benign.accounts, e.benign.accounts_flagged
    );
}

/// An operation's requests before its first refusal (all of them if never
/// refused).
fn before_refusal(r: &Report, op: &str) -> u64 {
    let o = &r.evaluation.as_ref().unwrap().campaign.operations[op];
    o.first_refused
        .as_ref()
        .map_or(o.requests, |d| d.requests_before)
}

#[test]
fn an_imported_bundle_catches_the_operation_at_the_second_provider() {
    let a = scenario();
    let key = ConsortiumKey::new(KEY).unwrap();
    let trace_a = simulate(&a);
    // At B the operator shares nothing among its accounts (each its own
    // card, device and address: B alone cannot link them), but half of
    // them reuse cards and devices from its stock at A.
    let b = SecondProvider {
        seed: a.seed + 1,
        start_offset_hours: 24.0,
        knobs: Some(Knobs {
            shared_infrastructure: false,
            ..a.knobs.clone()
        }),
        ..SecondProvider::default()
    };
    let trace_b: Vec<Record> = second_provider(&a, &b).unwrap().collect();
    let producer = Producer {
        identity_id: A_ID.into(),
        name: "Provider A trust and safety".into(),
    };
    let x = exchange(
        &trace_a,
        &trace_b,
        &config(a.total_accounts()),
        &key,
        &producer,
    )
    .unwrap();
    let (bundle, exported) = (&x.bundle, &x.exported);
    assert!(!exported.is_empty());
    let kinds: BTreeMap<&str, usize> = exported.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.kind.as_str()).or_default() += 1;
        m
    });
    println!("A exported {} indicators: {kinds:?}", exported.len());

    // Privacy: no raw value of A's trace appears in the bundle.
    let mut raw: HashSet<&str> = HashSet::new();
    for r in &trace_a {
        raw.insert(&r.account);
        raw.extend(r.fingerprints.values().map(String::as_str));
        if let Some(s) = &r.system {
            raw.insert(s);
        }
    }
    for v in raw.iter().filter(|v| v.len() >= 4) {
        assert!(!bundle.contains(*v), "the bundle contains {v:?}");
    }
    for r in trace_a.iter().step_by(97) {
        let head: String = r.prompt.chars().take(24).collect();
        assert!(
            head.len() < 12 || !bundle.contains(&head),
            "prompt {head:?}"
        );
    }

    // No benign-majority value leaves: the accounts presenting each
    // exported value, by label (an account is the campaign's if any of its
    // requests is: a reseller's genuine traffic is labelled benign).
    let campaign_accounts: HashSet<&str> = trace_a
        .iter()
        .filter(|r| r.label != "benign")
        .map(|r| r.account.as_str())
        .collect();
    let mut by_token: HashMap<[u8; 32], (HashSet<&str>, HashSet<&str>)> = HashMap::new();
    for r in &trace_a {
        for (kind, value) in &r.fingerprints {
            let t = key.value_token(kind, value.as_bytes());
            let e = by_token.entry(t).or_default();
            if !campaign_accounts.contains(r.account.as_str()) {
                e.1.insert(&r.account);
            } else {
                e.0.insert(&r.account);
            }
        }
    }
    // The rule judges a sample of 16 accounts by their clusters' standing,
    // so a value with one honest account in 15 may pass; a benign majority
    // never does, and values over the configured 5 % stay few.
    let (mut checked, mut over, mut worst) = (0, 0, 0.0f64);
    for e in exported {
        if let Some((campaign, benign)) = by_token.get(&e.token) {
            checked += 1;
            let share = benign.len() as f64 / (campaign.len() + benign.len()) as f64;
            worst = worst.max(share);
            over += usize::from(share > 0.05);
            assert!(
                benign.len() < campaign.len(),
                "{} value with {} campaign and {} benign accounts exported",
                e.kind,
                campaign.len(),
                benign.len()
            );
        }
    }
    println!("benign share of exported values: worst {worst:.3}, {over} of {checked} over 5 %");
    assert!(over * 10 <= checked, "{over} of {checked} over 5 %");
    println!("{checked} exported fingerprint values checked against the labels");

    println!("B imported: {:?}; {:?}", x.import, x.stats);
    // (Addresses, and template bands weighing under `intel.min_weight`,
    // are ignored by default.)
    assert_eq!(x.import.added + x.import.ignored, exported.len());
    assert!(x.import.added > 0, "{:?}", x.import);
    print("B without the import", &x.without);
    print("B with the import", &x.with);
    // The operations whose stock A's bundle names (coordinated's shared
    // cards, reseller's client and card BIN combinations) are refused
    // sooner; multi_route reused only devices, one per account at A, which
    // A could not export. (The target is 5x; this case reaches
    // 3x to 5x: see the README's "Sharing what was caught".)
    for op in ["coordinated", "reseller"] {
        let (without, with) = (before_refusal(&x.without, op), before_refusal(&x.with, op));
        println!(
            "{op}: {without} requests before the first refusal without the import, {with} with"
        );
        assert!(
            with * 2 <= without,
            "{op}: {with} with vs {without} without"
        );
    }
    // No benign account at B is marked by an imported indicator, and none
    // is flagged that was not without the import.
    println!("benign marked: {:?}", x.benign_marked_by);
    assert!(x.stats.marked > 0);
    assert_eq!(x.benign_marked, 0);
    let flagged = |r: &Report| r.evaluation.as_ref().unwrap().benign.accounts_flagged;
    assert!(flagged(&x.with) <= flagged(&x.without));

    // Under another key, B's guard refuses the bundle (its key_id differs).
    let other = ConsortiumKey::new(b"another consortium key for tests").unwrap();
    let mut c = config(a.total_accounts());
    c.intel.key = Some(other);
    let stranger = Replayer::new(c, ReplayOptions::default());
    let err = parse_for(stranger.guard(), bundle, trace_b[0].ts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key"), "{err}");
}
