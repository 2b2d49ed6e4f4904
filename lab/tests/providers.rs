//! The second provider: B is its own simulation, except that a share of its
//! campaign accounts carry cards and devices from A's campaign of the same
//! operation, and nothing else of A's.

use ringfence_lab::sim::{
    campaign_stock, second_provider, simulate, Operations, Record, Scenario, SecondProvider,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

/// A small built-in scenario (about 560 benign accounts) with 120 campaign
/// accounts per operation, enough to measure shares.
fn small(name: &str) -> Scenario {
    let mut s = Scenario::builtin(name).unwrap().scaled(0.02);
    s.operations = Some(Operations {
        coordinated: 120,
        multi_route: 120,
        reseller: 120,
    });
    s
}

/// The adaptive attacker with no shared infrastructure at all.
fn unshared() -> Scenario {
    let mut s = small("adaptive");
    s.knobs.shared_infrastructure = false;
    s
}

/// The campaign operation of a record's account (mixed-in genuine traffic
/// is the reseller's), or `None` for a benign account.
fn operation(r: &Record) -> Option<&str> {
    match r.label.strip_prefix("campaign:") {
        Some(op) => Some(op),
        None if r.cohort == "campaign" => Some("reseller"),
        None => None,
    }
}

/// What the test needs of provider A's trace, computed here from its
/// simulation (not with the library's [`campaign_stock`]).
struct ProviderA {
    accounts: HashSet<String>,
    /// Every card and device anyone used.
    values: HashSet<String>,
    /// Per operation: its cards (with their BIN) and its devices.
    cards: BTreeMap<String, HashMap<String, Option<String>>>,
    devices: BTreeMap<String, HashSet<String>>,
}

fn provider_a(a: &Scenario) -> ProviderA {
    let mut out = ProviderA {
        accounts: HashSet::new(),
        values: HashSet::new(),
        cards: BTreeMap::new(),
        devices: BTreeMap::new(),
    };
    for r in simulate(a) {
        out.accounts.insert(r.account.clone());
        let payment = r.fingerprints.get("payment");
        let device = &r.fingerprints["device"];
        out.values.extend(payment.cloned());
        out.values.insert(device.clone());
        if let Some(op) = operation(&r) {
            if let Some(p) = payment {
                let bin = r.fingerprints.get("payment_bin").cloned();
                out.cards
                    .entry(op.to_string())
                    .or_default()
                    .insert(p.clone(), bin);
            }
            out.devices
                .entry(op.to_string())
                .or_default()
                .insert(device.clone());
        }
    }
    out
}

/// For each scenario: A's facts, B's own simulation (no reuse), and B with
/// the default reuse (0.5), each computed once.
type Case = (Scenario, ProviderA, Vec<Record>, Vec<Record>);

fn case(name: &str) -> &'static Case {
    static DEFAULT: OnceLock<Case> = OnceLock::new();
    static UNSHARED: OnceLock<Case> = OnceLock::new();
    let (cell, a) = match name {
        "default" => (&DEFAULT, small("default")),
        _ => (&UNSHARED, unshared()),
    };
    cell.get_or_init(|| {
        let b = SecondProvider::default();
        let stream = second_provider(&a, &b).unwrap();
        let own = simulate(stream.scenario());
        let reused: Vec<Record> = stream.collect();
        (a.clone(), provider_a(&a), own, reused)
    })
}

fn in_time_order(trace: &[Record]) -> bool {
    trace
        .windows(2)
        .all(|w| w[0].ts < w[1].ts || (w[0].ts == w[1].ts && w[0].account <= w[1].account))
}

#[test]
fn the_same_inputs_give_the_same_stream_in_time_order() {
    let (a, _, _, reused) = case("default");
    let again = second_provider(a, &SecondProvider::default()).unwrap();
    assert!(again.eq(reused.iter().cloned()));
    assert!(in_time_order(reused));
    let other = SecondProvider {
        seed: 7,
        ..SecondProvider::default()
    };
    let first: Vec<Record> = second_provider(a, &other).unwrap().take(100).collect();
    assert_ne!(first[..], reused[..100]);
}

/// B's records are B's own simulation's, one for one (time, account,
/// prompt, label, cohort...); only the card, its BIN and the device of
/// reused campaign accounts differ, and those come from A's campaign of
/// the same operation, mapped value to value.
#[test]
fn b_is_its_own_simulation_but_for_reused_cards_and_devices() {
    for name in ["default", "unshared"] {
        let (_, a, own, reused) = case(name);
        assert_eq!(own.len(), reused.len(), "{name}");
        // B's value → A's value, per operation; and A's value → B's.
        let mut forward: HashMap<(&str, &str), &str> = HashMap::new();
        let mut backward: HashMap<(&str, &str), &str> = HashMap::new();
        let mut changed = 0;
        for (x, y) in reused.iter().zip(own) {
            let (mut xs, mut ys) = (x.clone(), y.clone());
            xs.fingerprints.clear();
            ys.fingerprints.clear();
            assert_eq!(xs, ys, "{name}: only fingerprints may differ");
            assert_eq!(
                x.fingerprints.keys().collect::<Vec<_>>(),
                y.fingerprints.keys().collect::<Vec<_>>()
            );
            for (kind, value) in &x.fingerprints {
                let mine = &y.fingerprints[kind];
                if value == mine {
                    continue;
                }
                changed += 1;
                assert!(
                    ["payment", "payment_bin", "device"].contains(&kind.as_str()),
                    "{name}: {kind} changed"
                );
                let op = operation(x).expect("only campaign accounts change");
                match kind.as_str() {
                    "payment" => {
                        let bin = &a.cards[op][value];
                        assert_eq!(bin.as_ref(), x.fingerprints.get("payment_bin"));
                    }
                    "device" => assert!(a.devices[op].contains(value)),
                    _ => continue,
                }
                let old = forward.insert((op, mine), value);
                assert!(old.is_none_or(|o| o == value), "{name}: not one mapping");
                let old = backward.insert((op, value), mine);
                // A's stock is larger than what half of B's accounts need.
                assert!(old.is_none_or(|o| o == mine), "{name}: two onto one");
            }
        }
        assert!(changed > 0, "{name}: nothing reused");
    }
}

#[test]
fn b_has_its_own_accounts_and_its_benign_people_nothing_of_a() {
    for name in ["default", "unshared"] {
        let (_, a, _, reused) = case(name);
        let mut benign = 0;
        for r in reused {
            assert!(!a.accounts.contains(&r.account), "{name}: A's account");
            if r.cohort == "campaign" {
                continue;
            }
            benign += 1;
            for kind in ["payment", "device"] {
                if let Some(v) = r.fingerprints.get(kind) {
                    assert!(
                        !a.values.contains(v),
                        "{name}: A's {kind} {v} in B's benign"
                    );
                }
            }
        }
        assert!(benign > 1000, "{name}: {benign}");
    }
}

/// A campaign account's operation, and every card (or none) and device
/// its records showed.
type Shown<'a> = (&'a str, BTreeSet<Option<&'a String>>, BTreeSet<&'a String>);

/// About `reuse` of each operation's campaign accounts carry A's device
/// (and A's card, where they have one), and the rest nothing of A's.
#[test]
fn about_the_reuse_share_of_campaign_accounts_carry_a_stock() {
    let p = SecondProvider::default().reuse;
    for name in ["default", "unshared"] {
        let (_, a, _, reused) = case(name);
        // Per account: its operation and every card and device it showed.
        let mut accounts: BTreeMap<&str, Shown> = BTreeMap::new();
        for r in reused {
            let Some(op) = operation(r) else { continue };
            let e = accounts
                .entry(&r.account)
                .or_insert((op, BTreeSet::new(), BTreeSet::new()));
            assert_eq!(e.0, op, "{name}: an account in two operations");
            e.1.insert(r.fingerprints.get("payment"));
            e.2.insert(&r.fingerprints["device"]);
        }
        let mut per_op: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for (account, (op, cards, devices)) in &accounts {
            // One card (or none) and one device per account, whatever the
            // record (mixed-in genuine traffic included).
            assert_eq!((cards.len(), devices.len()), (1, 1), "{name}: {account}");
            let from_a = a.devices[*op].contains(*devices.first().unwrap());
            if let Some(Some(card)) = cards.first() {
                assert_eq!(
                    a.cards[*op].contains_key(*card),
                    from_a,
                    "{name}: {account}"
                );
            }
            let e = per_op.entry(op).or_default();
            e.0 += 1;
            e.1 += u32::from(from_a);
        }
        assert_eq!(per_op.len(), 3, "{name}");
        for (op, (n, k)) in per_op {
            assert!(n >= 20, "{name} {op}: {n} accounts");
            // Each account is reused independently with probability p (a
            // seeded hash of its name), so k ~ Binomial(n, p): mean n p,
            // standard deviation sqrt(n p (1 - p)) (5.5 for n = 120,
            // p = 0.5). Allow 4 standard deviations (a chance of 6e-5 of
            // failing for a correct implementation, were the seed random).
            let n = f64::from(n);
            let sd = (n * p * (1.0 - p)).sqrt();
            let share = f64::from(k) / n;
            eprintln!("{name} {op}: {k} of {n} accounts carry A's stock ({share:.3})");
            assert!(
                (f64::from(k) - n * p).abs() <= 4.0 * sd,
                "{name} {op}: {k} of {n} reused, expected {:.1} ± {:.1}",
                n * p,
                4.0 * sd
            );
        }
    }
}

#[test]
fn without_reuse_b_is_exactly_its_own_simulation() {
    let (a, provider_a, own, _) = case("unshared");
    let none = SecondProvider {
        reuse: 0.0,
        ..SecondProvider::default()
    };
    let b = second_provider(a, &none).unwrap();
    assert!(b.eq(own.iter().cloned()));
    for r in own {
        if let Some(op) = operation(r) {
            assert!(!provider_a.devices[op].contains(&r.fingerprints["device"]));
            if let Some(card) = r.fingerprints.get("payment") {
                assert!(!provider_a.cards[op].contains_key(card));
            }
        }
    }
}

#[test]
fn b_may_run_later_and_reuse_everything() {
    let mut a = Scenario::builtin("default").unwrap().scaled(0.005);
    a.hours = 6.0;
    a.operations = Some(Operations {
        coordinated: 30,
        multi_route: 30,
        reseller: 30,
    });
    let all = SecondProvider {
        reuse: 1.0,
        start_offset_hours: 30.0,
        ..SecondProvider::default()
    };
    let b = second_provider(&a, &all).unwrap();
    let start = a.start_ts + 30.0 * 3600.0;
    assert_eq!(b.scenario().start_ts, start);
    let stock = b.stock().clone();
    assert_eq!(stock, campaign_stock(&a));
    let mut campaign = 0;
    for r in b {
        assert!(r.ts >= start && r.ts < start + 6.0 * 3600.0);
        if let Some(op) = operation(&r) {
            campaign += 1;
            assert!(stock[op].devices.contains(&r.fingerprints["device"]));
            if let Some(card) = r.fingerprints.get("payment") {
                assert!(stock[op].has_payment(card));
            }
        }
    }
    assert!(campaign > 1000);
}

#[test]
fn impossible_second_providers_are_errors() {
    let a = small("default");
    for (b, key) in [
        (
            SecondProvider {
                seed: a.seed,
                ..SecondProvider::default()
            },
            "seed",
        ),
        (
            SecondProvider {
                reuse: 1.5,
                ..SecondProvider::default()
            },
            "reuse",
        ),
        (
            SecondProvider {
                start_offset_hours: f64::NAN,
                ..SecondProvider::default()
            },
            "start_offset_hours",
        ),
        (
            SecondProvider {
                start_offset_hours: -1e9,
                ..SecondProvider::default()
            },
            "start_ts",
        ),
    ] {
        let e = second_provider(&a, &b).unwrap_err();
        assert!(e.to_string().contains(key), "{e}");
    }
}
