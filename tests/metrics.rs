//! `Guard::metrics`: what each counter counts, on traffic whose verdicts
//! the test tallies itself, and the text's shape (the Python suite parses
//! it with `prometheus_client`'s parser too).

use ringfence::guard::{Decision, Guard, GuardConfig, Reason, Request};
use std::collections::HashMap;
use std::time::Duration;

fn req<'a>(account: &'a str, fps: &'a [(&'a str, &'a str)], prompt: &'a str) -> Request<'a> {
    Request {
        account,
        fingerprints: fps,
        prompt: Some(prompt),
        system: None,
        model: None,
        input_tokens: 40,
        max_tokens: 500,
    }
}

/// The samples of the text, keyed by their name and labels as written,
/// after checking each line's shape: every family has its HELP and TYPE
/// first, names are in Prometheus's alphabet, counters end in `_total`,
/// every value is a number.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let mut family: Option<(String, String)> = None;
    let mut helped = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped = Some(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(helped.as_deref(), Some(name), "TYPE without HELP: {line}");
            assert!(kind == "counter" || kind == "gauge", "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name}");
            }
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap();
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.starts_with("ringfence_"),
            "{line}"
        );
        assert_eq!(family.as_ref().map(|f| f.0.as_str()), Some(name), "{line}");
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        assert!(out.insert(key.to_string(), v).is_none(), "repeated: {line}");
    }
    out
}

#[test]
fn counters_count_what_the_verdicts_were() {
    let (guard, clock) = Guard::for_replay(GuardConfig::default());
    let mut by_verdict: HashMap<&str, u64> = HashMap::new();
    let mut by_reason: HashMap<(&str, &str), u64> = HashMap::new();
    let (mut reserved, mut actual, mut settled) = (0u64, 0u64, 0u64);
    let mut campaign_refused = 0;
    for i in 0..400u64 {
        clock.set(Duration::from_secs(i * 5));
        // A linked fleet asking for reasoning, beside one busy honest user.
        let account = format!("fleet{}", i % 10);
        let prompt = format!(
            "Think step by step and show all of your reasoning before the final answer. Problem: compute {} times {}",
            i,
            i + 7
        );
        for (acct, fps, p) in [
            (
                account.as_str(),
                &[("payment", "card-shared"), ("ja4", "rare")][..],
                prompt.as_str(),
            ),
            ("honest", &[("payment", "card-honest")][..], "hello"),
        ] {
            let v = guard.check(&req(acct, fps, p));
            *by_verdict.entry(v.decision.as_str()).or_default() += 1;
            if v.reasons.is_empty() {
                *by_reason.entry((v.decision.as_str(), "none")).or_default() += 1;
            }
            for r in v.reasons.iter() {
                *by_reason
                    .entry((v.decision.as_str(), r.as_str()))
                    .or_default() += 1;
            }
            if v.allowed() {
                guard.settle(&v, 300);
                settled += 1;
                if let Some(r) = &v.reservation {
                    reserved += r.reserved();
                    actual += 40 + 300;
                }
            } else if acct.starts_with("fleet") {
                campaign_refused += 1;
            }
        }
    }
    assert!(campaign_refused > 0 && by_verdict["deny"] > 0);
    guard.maintain();
    let m = samples(&guard.metrics());
    for d in Decision::NAMES {
        let key = format!("ringfence_requests_total{{verdict=\"{d}\"}}");
        assert_eq!(
            m[&key],
            by_verdict.get(d).copied().unwrap_or(0) as f64,
            "{key}"
        );
        for r in ["none"]
            .into_iter()
            .chain(Reason::ALL.iter().map(|r| r.as_str()))
        {
            let key = format!("ringfence_decisions_total{{decision=\"{d}\",reason=\"{r}\"}}");
            let want = by_reason.get(&(d, r)).copied().unwrap_or(0) as f64;
            assert_eq!(m[&key], want, "{key}");
        }
    }
    assert_eq!(m["ringfence_settlements_total"], settled as f64);
    assert_eq!(
        m["ringfence_settlement_reserved_tokens_total"],
        reserved as f64
    );
    assert_eq!(m["ringfence_settlement_actual_tokens_total"], actual as f64);
    assert_eq!(
        m["ringfence_settlement_drift_tokens"],
        reserved as f64 - actual as f64
    );
    assert!(reserved > actual, "max_tokens 500 over-estimates 300");
    // The fleet is one cluster, formed from its first pair, flagged and
    // refused once each; the honest user forms nothing.
    assert!(m["ringfence_clusters_formed_total"] >= 1.0);
    assert_eq!(m["ringfence_clusters_flagged_total"], 1.0);
    assert_eq!(m["ringfence_clusters_refused_total"], 1.0);
    assert_eq!(m["ringfence_table_entries{table=\"accounts\"}"], 11.0);
    assert_eq!(
        m["ringfence_table_capacity{table=\"accounts\"}"],
        GuardConfig::default().link.max_accounts as f64
    );
    assert!(m["ringfence_maintenance_steps_total"] >= 1.0);
    assert!(m["ringfence_maintenance_step_max_seconds"] > 0.0);
    assert!(
        m["ringfence_maintenance_step_max_seconds"] >= m["ringfence_maintenance_step_last_seconds"]
    );
    assert!(m["ringfence_memory_bytes"] > 0.0);
    assert_eq!(
        m["ringfence_overruled_total{reason=\"cluster_limit\"}"],
        0.0
    );
}

#[test]
fn a_refusal_after_the_check_counts_as_overruled() {
    let (guard, _clock) = Guard::for_replay(GuardConfig::default());
    let mut v = guard.check(&req("a", &[], "hi"));
    guard.refuse(&mut v, Reason::ClusterLimit, Duration::from_secs(2));
    let m = samples(&guard.metrics());
    assert_eq!(m["ringfence_requests_total{verdict=\"allow\"}"], 1.0);
    assert_eq!(
        m["ringfence_overruled_total{reason=\"cluster_limit\"}"],
        1.0
    );
}
