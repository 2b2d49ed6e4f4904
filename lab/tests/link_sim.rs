//! Linking on the simulated scenario (small scale): campaign operations form
//! clusters, and no cluster mixes campaign and benign accounts or grows past
//! the real group it belongs to.

use ringfence::guard::Request;
use ringfence::link::{LinkConfig, Linker};
use ringfence_lab::sim::{simulate, Scenario};
use std::collections::{BTreeMap, BTreeSet, HashMap};

struct Outcome {
    mixed: usize,
    /// Per operation: accounts, and accounts in its largest cluster.
    ops: BTreeMap<String, (usize, usize)>,
    /// Per benign cohort: its largest cluster.
    largest: BTreeMap<String, usize>,
}

fn run(name: &str, scale: f64) -> Outcome {
    let trace = simulate(&Scenario::builtin(name).unwrap().scaled(scale));
    let linker = Linker::new(LinkConfig::default());
    let t0 = trace[0].ts;
    let mut cohort: HashMap<&str, &str> = HashMap::new();
    let mut op: HashMap<&str, &str> = HashMap::new();
    for r in &trace {
        let fps: Vec<(&str, &str)> = r
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        linker.observe(
            &Request {
                account: &r.account,
                fingerprints: &fps,
                prompt: Some(&r.prompt),
                system: r.system.as_deref(),
                model: None,
                input_tokens: 0,
                max_tokens: 0,
            },
            r.ts - t0,
        );
        cohort.insert(&r.account, &r.cohort);
        if r.label.starts_with("campaign:") {
            op.insert(&r.account, &r.label);
        }
    }
    linker.rebuild_now(trace.last().unwrap().ts - t0);
    let mut members: HashMap<u64, Vec<String>> = HashMap::new();
    for (account, cluster) in linker.clusters() {
        members.entry(cluster).or_default().push(account);
    }
    let mut out = Outcome {
        mixed: 0,
        ops: BTreeMap::new(),
        largest: BTreeMap::new(),
    };
    for accounts in members.values() {
        let cohorts: BTreeSet<&str> = accounts.iter().map(|a| cohort[a.as_str()]).collect();
        if cohorts.contains("campaign") && cohorts.len() > 1 {
            out.mixed += 1;
        }
        for c in cohorts.iter().filter(|c| **c != "campaign") {
            let e = out.largest.entry(c.to_string()).or_default();
            *e = (*e).max(accounts.len());
        }
        let mut per_op: BTreeMap<&str, usize> = BTreeMap::new();
        for a in accounts {
            if let Some(o) = op.get(a.as_str()) {
                *per_op.entry(o).or_default() += 1;
            }
        }
        for (o, n) in per_op {
            let e = out.ops.entry(o.to_string()).or_default();
            e.1 = e.1.max(n);
        }
    }
    for o in op.values() {
        out.ops.entry(o.to_string()).or_default().0 += 0;
    }
    let mut sizes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, o) in &op {
        sizes.entry(o).or_default().insert(a);
    }
    for (o, accts) in sizes {
        out.ops.get_mut(o).unwrap().0 = accts.len();
    }
    println!(
        "{name}: mixed {}, operations {:?}, largest benign {:?}",
        out.mixed, out.ops, out.largest
    );
    out
}

#[test]
fn default_scenario_links_each_operation_and_no_benign_group_beyond_itself() {
    let o = run("default", 0.3);
    assert_eq!(o.mixed, 0, "a cluster mixes campaign and benign accounts");
    for (op, (accounts, largest)) in &o.ops {
        assert!(
            *largest * 10 >= *accounts * 9,
            "{op}: only {largest} of {accounts} accounts in one cluster"
        );
    }
    // The real groups: the company's developers (59 at this scale), a
    // household's 3 accounts and the SaaS product's customers (18, on its
    // workers) may each form one cluster; everybody else is on their own.
    let bound = |c: &str| match c {
        "company" => 60,
        "household" => 3,
        "saas" => 18,
        _ => 1,
    };
    for (cohort, largest) in &o.largest {
        assert!(
            *largest <= bound(cohort),
            "{cohort}: a cluster of {largest}"
        );
    }
}
