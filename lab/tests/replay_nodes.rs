//! `ringfence replay --nodes N`: N guards fed round-robin whose request
//! quotas are kept fleet-wide, synchronised in trace time.

use ringfence::guard::GuardConfig;
use ringfence_fleet::{EvidenceExchange, FleetConfig, MemoryExchange, MemoryStore, RedisExchange};
use ringfence_lab::replay::{write_trace, ReplayOptions, Replayer};
use ringfence_lab::sim::{simulate, Scenario};
use std::fmt::Write as _;
use std::sync::Arc;

/// One account sending `n` requests over a minute (limit: 20 a minute).
fn hammer(n: u32) -> String {
    let mut t = String::new();
    for i in 0..n {
        let ts = 1_700_000_000.0 + 60.0 * f64::from(i) / f64::from(n);
        writeln!(
            t,
            "{{\"ts\":{ts},\"account\":\"acct_one\",\"fingerprints\":{{\"ip\":\"10.{}.0.1\"}},\"output_tokens\":10}}",
            i % 7
        )
        .unwrap();
    }
    t
}

/// Replays `text` over `nodes` nodes (`fleet`: their quotas shared);
/// returns every decision as JSON and the requests served.
fn replay(text: &str, nodes: u32, fleet: bool) -> (Vec<String>, u64) {
    let mut r = Replayer::new(GuardConfig::default(), ReplayOptions::default());
    if fleet {
        r = r.with_nodes(
            nodes,
            Arc::new(MemoryStore::new()),
            &FleetConfig::default(),
            Some(Arc::new(MemoryExchange::new(nodes))),
        );
        assert_eq!(r.nodes(), nodes as usize);
    }
    let mut decisions = Vec::new();
    let mut served = 0;
    r.replay_reader(
        text.as_bytes(),
        |d| {
            served += u64::from(d.decision == "allow");
            decisions.push(serde_json::to_string(d).unwrap());
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    (decisions, served)
}

#[test]
fn one_account_over_three_nodes_gets_its_quota_once() {
    let text = hammer(90);
    let (_, one) = replay(&text, 1, false);
    let (three, served) = replay(&text, 3, true);
    // 20 at once and one every 3 s: 39 or 40 of 90 on one node.
    assert!((38..=41).contains(&one), "one node served {one}");
    // Three nodes keep one quota, within the leases they may hold (3 × 8).
    assert!(
        served <= one + 24,
        "three nodes served {served}, one node {one}"
    );
    assert!(
        served + 24 >= one,
        "three nodes served {served}, one node {one}"
    );
    assert!(three.iter().any(|d| d.contains("account_limit")));
    // The same every time.
    assert_eq!(replay(&text, 3, true).0, three);
}

#[test]
fn a_fleet_replay_decides_the_same_every_time_and_one_node_as_before() {
    let records = simulate(&Scenario::builtin("default").unwrap().scaled(0.02));
    let mut jsonl = Vec::new();
    write_trace(&records, &mut jsonl).unwrap();
    let text = String::from_utf8(jsonl).unwrap();
    let (plain, _) = replay(&text, 1, false);
    let (one, _) = replay(&text, 1, true);
    assert_eq!(plain, one, "--nodes 1 is the plain replay");
    let (a, _) = replay(&text, 4, true);
    let (b, _) = replay(&text, 4, true);
    assert_eq!(a, b);
    assert_eq!(a.len(), plain.len());
}

/// A fleet syncing every minute of trace time (a day's trace: 1,440 syncs).
fn minutely() -> FleetConfig {
    FleetConfig {
        sync_interval_ms: 60_000,
        ..FleetConfig::default()
    }
}

/// Every decision of a replay over 3 nodes on `store` and `exchange`.
fn decisions_over(
    text: &str,
    store: Arc<dyn ringfence_fleet::QuotaStore>,
    exchange: Arc<dyn EvidenceExchange>,
) -> Vec<String> {
    let mut r = Replayer::new(GuardConfig::default(), ReplayOptions::default()).with_nodes(
        3,
        store,
        &minutely(),
        Some(exchange),
    );
    let mut decisions = Vec::new();
    r.replay_reader(
        text.as_bytes(),
        |d| {
            decisions.push(serde_json::to_string(d).unwrap());
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    decisions
}

#[test]
fn through_redis_the_fleet_decides_as_in_process() {
    let Some(server) = ringfence_fleet::local_server::Server::start() else {
        return;
    };
    let records = simulate(&Scenario::builtin("default").unwrap().scaled(0.02));
    let mut jsonl = Vec::new();
    write_trace(&records, &mut jsonl).unwrap();
    let text = String::from_utf8(jsonl).unwrap();
    let in_process = decisions_over(
        &text,
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryExchange::new(3)),
    );
    let second = std::time::Duration::from_secs(1);
    let store = ringfence_fleet::RedisStore::open(&server.url(), second).unwrap();
    let exchange =
        RedisExchange::open(&server.url(), "rf1", 3, second, 1_000, 60 * second).unwrap();
    let through_redis = decisions_over(&text, Arc::new(store), Arc::new(exchange));
    assert!(
        through_redis == in_process,
        "quotas and evidence through Redis decide as in this process"
    );
    // Shared evidence changed something: isolated nodes decide otherwise.
    let mut isolated = Replayer::new(GuardConfig::default(), ReplayOptions::default()).with_nodes(
        3,
        Arc::new(MemoryStore::new()),
        &FleetConfig::default(),
        None,
    );
    let mut differs = false;
    let mut k = 0;
    isolated
        .replay_reader(
            text.as_bytes(),
            |d| {
                differs |= serde_json::to_string(d).unwrap() != in_process[k];
                k += 1;
                Ok(())
            },
            |_| {},
        )
        .unwrap();
    assert!(differs);
}

/// Campaign served and benign refused (other than by their own account's
/// limit) over `nodes` nodes, sharing evidence unless `isolated`.
fn detection(text: &str, nodes: u32, isolated: bool) -> (f64, u64) {
    let mut r = Replayer::new(GuardConfig::for_accounts(20_000), ReplayOptions::default())
        .with_nodes(
            nodes,
            Arc::new(MemoryStore::new()),
            &FleetConfig::default(),
            (!isolated).then(|| Arc::new(MemoryExchange::new(nodes)) as Arc<dyn EvidenceExchange>),
        );
    r.replay_reader(text.as_bytes(), |_| Ok(()), |_| {})
        .unwrap();
    let e = r.report().evaluation.expect("a labelled trace");
    (
        e.campaign.served_share,
        e.benign.refused - e.benign.refused_account_limit,
    )
}

#[test]
fn nodes_sharing_evidence_catch_a_hydra_as_one_node_does() {
    let records = simulate(&Scenario::builtin("default").unwrap().scaled(0.1));
    let mut jsonl = Vec::new();
    write_trace(&records, &mut jsonl).unwrap();
    let text = String::from_utf8(jsonl).unwrap();
    let (one, benign_one) = detection(&text, 1, false);
    let (shared, benign_shared) = detection(&text, 4, false);
    let (isolated, _) = detection(&text, 4, true);
    // The hydra's requests land on every node: with evidence shared, each
    // node links it as one node would, within a sync interval.
    assert!(
        (shared - one).abs() <= 0.01,
        "campaign served: one node {one}, four sharing {shared}"
    );
    assert_eq!(benign_shared, benign_one, "no benign change");
    // Isolated, each node sees a quarter of it and links it later.
    assert!(isolated > shared, "isolated {isolated}, shared {shared}");
}
