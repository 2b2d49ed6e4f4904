//! The Guard on the simulated scenarios (scale 0.3, the default
//! configuration): the targets, measured against a per-account-only
//! limiter on the same trace. The full-size figures are in the README
//! (`ringfence demo`, `examples/` commands there).

mod common;

use ringfence::guard::{Guard, GuardConfig, Reason};
use ringfence::limit::{ManualClock, Quota, RateLimiter};
use ringfence_lab::sim::{simulate, Scenario};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

struct Outcome {
    /// Per operation: (requests, served by the guard, served per-account only).
    ops: BTreeMap<String, (u64, u64, u64)>,
    benign: u64,
    benign_refused: u64,
    /// Per cohort: (accounts, flagged).
    flagged: BTreeMap<String, (u64, u64)>,
}

fn run(name: &str) -> Outcome {
    let trace = simulate(&Scenario::builtin(name).unwrap().scaled(0.3));
    let config = GuardConfig::default();
    let (share_at, min_size) = (config.share_at, config.min_cluster_size);
    let (guard, clock) = Guard::for_replay(config);
    let base_clock = Arc::new(ManualClock::new());
    let baseline = RateLimiter::builder(Quota::per_minute(20))
        .clock(base_clock.clone())
        .build();
    let t0 = trace[0].ts;
    let mut out = Outcome {
        ops: BTreeMap::new(),
        benign: 0,
        benign_refused: 0,
        flagged: BTreeMap::new(),
    };
    let mut cohort: HashMap<&str, &str> = HashMap::new();
    for r in &trace {
        let ns = ((r.ts - t0) * 1e9) as u64;
        clock.set_nanos(ns);
        base_clock.set_nanos(ns);
        let v = common::check_record(&guard, r);
        let base = baseline.check(r.account.as_str(), 1).is_allowed();
        cohort.insert(&r.account, &r.cohort);
        if r.label.starts_with("campaign:") {
            let e = out.ops.entry(r.label.clone()).or_default();
            e.0 += 1;
            e.1 += u64::from(v.allowed());
            e.2 += u64::from(base);
        } else if r.cohort != "campaign" {
            // Genuine traffic of benign accounts (the reseller's mixed-in
            // customers travel on its accounts and are counted with it).
            out.benign += 1;
            if !v.allowed() && v.reasons.iter().any(|x| *x != Reason::AccountLimit) {
                out.benign_refused += 1;
            }
        }
    }
    for (account, c) in &cohort {
        let (cluster, score) = guard.score_of(account);
        let e = out.flagged.entry(c.to_string()).or_default();
        e.0 += 1;
        e.1 += u64::from(cluster.size >= min_size && score >= share_at);
    }
    let total: (u64, u64, u64) = out
        .ops
        .values()
        .fold((0, 0, 0), |a, o| (a.0 + o.0, a.1 + o.1, a.2 + o.2));
    println!(
        "{name}: campaign served {:.2} % (per-account only {:.2} %), per operation {:?}; benign refused {} of {}; flagged {:?}",
        100.0 * total.1 as f64 / total.0 as f64,
        100.0 * total.2 as f64 / total.0 as f64,
        out.ops,
        out.benign_refused,
        out.benign,
        out.flagged
    );
    out
}

#[test]
fn default_scenario_meets_the_targets() {
    let o = run("default");
    let (n, served, base) = o
        .ops
        .values()
        .fold((0, 0, 0), |a, x| (a.0 + x.0, a.1 + x.1, a.2 + x.2));
    assert!(
        base as f64 > 0.99 * n as f64,
        "the campaign stays under its per-account limit"
    );
    // Measured 0.7 % (0.4 / 1.1 / 0.7 % per operation).
    assert!(
        served as f64 <= 0.05 * n as f64,
        "campaign served {served} of {n}"
    );
    for (op, (n, served, _)) in &o.ops {
        assert!(
            *served as f64 <= 0.05 * *n as f64,
            "{op}: served {served} of {n}"
        );
    }
    assert!(
        o.benign_refused as f64 <= 0.001 * o.benign as f64,
        "benign refused {} of {}",
        o.benign_refused,
        o.benign
    );
    let (n, f) = o.flagged["campaign"];
    assert!(f as f64 >= 0.99 * n as f64, "campaign flagged {f} of {n}");
    for (c, (n, f)) in &o.flagged {
        if c != "campaign" {
            assert!(*f as f64 <= 0.001 * *n as f64, "{c}: {f} of {n} flagged");
        }
    }
}

/// The adaptive attacker (paraphrases every prompt, stops sharing cards,
/// copies a common TLS fingerprint) gets through: measured 100 % served at
/// this scale (see the README). What must hold all the same: no benign
/// account pays for it.
#[test]
fn adaptive_scenario_breaks_detection_but_not_benign_traffic() {
    let o = run("adaptive");
    assert!(o.benign_refused as f64 <= 0.001 * o.benign as f64);
    for (c, (n, f)) in &o.flagged {
        if c != "campaign" {
            assert!(*f as f64 <= 0.001 * *n as f64, "{c}: {f} of {n} flagged");
        }
    }
}
