//! A node that restarts rejoins from its own snapshot and Redis: it records
//! what the others published after its snapshot and what it published
//! itself after it, once each, against a real `redis-server` on loopback.

mod common;

use ringfence::guard::{Guard, GuardConfig};
use ringfence_fleet::local_server::Server;
use ringfence_fleet::{
    FleetConfig, FleetGuard, GlobalLimits, RedisExchange, RedisStore, SystemWallClock,
};
use std::sync::Arc;
use std::time::Duration;

const NODES: u32 = 2;

fn node(s: &Server, prefix: &str, index: u32) -> FleetGuard {
    let second = Duration::from_secs(1);
    let fc = FleetConfig {
        nodes: NODES,
        index,
        prefix: prefix.to_string(),
        ..FleetConfig::default()
    };
    let store = Arc::new(RedisStore::open(&s.url(), Duration::from_millis(500)).unwrap());
    let limits = GlobalLimits::new(store, fc, Arc::new(SystemWallClock));
    let x = RedisExchange::open(&s.url(), prefix, NODES, second, 1_000, 60 * second).unwrap();
    FleetGuard::new(Guard::new(GuardConfig::default()), limits).sharing(Arc::new(x), index, 10_000)
}

/// Rounds `rounds` of the hydra, account `k` on node `k % 2`, each round
/// followed by a sync of both.
fn traffic(nodes: [&FleetGuard; 2], rounds: std::ops::Range<usize>) {
    for round in rounds {
        for k in 0..common::ACCOUNTS {
            common::ask(k, round, |_, req| {
                let n = nodes[k % 2];
                let v = n.check(req);
                n.settle(&v, 900);
            });
        }
        nodes.iter().for_each(|n| n.sync_evidence());
        nodes.iter().for_each(|n| n.sync_evidence());
    }
}

/// The hydra's cluster as `node` sees it: its size, its requests (volume)
/// and its distinct prompts per request. Counting a request twice raises
/// the volume and lowers the diversity.
fn view(node: &FleetGuard) -> (u32, f64, f64) {
    let e = node.guard().explain(&common::account(0)).unwrap();
    (e.cluster.size, e.signals.volume, e.signals.diversity)
}

fn close(a: (u32, f64, f64), b: (u32, f64, f64)) -> bool {
    a.0 == b.0 && (a.1 - b.1).abs() <= 0.02 * b.1 && (a.2 - b.2).abs() <= 0.02
}

#[test]
fn a_restarted_node_records_what_it_missed_once() {
    let Some(s) = Server::start() else { return };
    let a = node(&s, "rj", 0);
    let b = node(&s, "rj", 1);
    traffic([&a, &b], 0..4);
    let snapshot = a.snapshot();
    let plain = a.guard().snapshot();
    // After the snapshot, node 0 decides more (published, then lost with
    // the restart), and node 1 goes on.
    traffic([&a, &b], 4..7);
    drop(a);

    // Restarted from its fleet snapshot: position restored.
    let a2 = node(&s, "rj", 0);
    let r = a2.restore(&snapshot).unwrap();
    assert!(r.positioned && r.resume_error.is_none(), "{r:?}");
    assert!(
        r.own_batches >= 3,
        "its own batches after the snapshot: {r:?}"
    );
    a2.sync_evidence();
    let st = a2.share_stats();
    // Three rounds of 15 accounts, from each node.
    assert_eq!(st.received, 2 * 3 * 15, "{st:?}");
    let (rejoined, reference) = (view(&a2), view(&b));
    assert!(reference.0 >= 10, "the hydra is linked: {reference:?}");
    assert!(
        close(rejoined, reference),
        "rejoined {rejoined:?}, the node that stayed {reference:?}"
    );

    // The control: a plain guard snapshot has no position, so the node
    // reads every batch the streams hold, those already in its snapshot
    // included, and misses its own decided after it.
    let a3 = node(&s, "rj", 0);
    let r = a3.restore(&plain).unwrap();
    assert!(!r.positioned, "{r:?}");
    a3.sync_evidence();
    let twice = view(&a3);
    assert!(
        !close(twice, reference),
        "without a position: {twice:?}, the node that stayed {reference:?}"
    );
}

#[test]
fn a_bad_fleet_snapshot_leaves_the_guard_as_it_was() {
    let Some(s) = Server::start() else { return };
    let a = node(&s, "rjbad", 0);
    let b = node(&s, "rjbad", 1);
    traffic([&a, &b], 0..2);
    let good = a.snapshot();
    let fresh = node(&s, "rjbad", 0);
    let knows = |g: &FleetGuard| g.guard().explain(&common::account(0)).is_some();
    let mut bad = good.clone();
    bad.truncate(good.len() / 2);
    let mut future = good.clone();
    future[4] = 7;
    for bytes in [&bad[..], &future[..], b"RFFS"] {
        let e = fresh.restore(bytes).unwrap_err().to_string();
        assert!(!e.is_empty());
        assert!(!knows(&fresh), "{e}: half restored");
    }
    // A position naming more nodes than the fleet has: the guard is
    // restored, the exchange says why it could not resume.
    let mut other = Vec::from(&b"RFFS\x01\x03\x00\x00\x00"[..]);
    for _ in 0..3 {
        other.extend_from_slice(&3u32.to_le_bytes());
        other.extend_from_slice(b"0-0");
    }
    other.extend_from_slice(&a.guard().snapshot());
    let r = fresh.restore(&other).unwrap();
    assert!(knows(&fresh));
    assert!(
        r.resume_error
            .as_deref()
            .is_some_and(|e| e.contains("3 publishers")),
        "{r:?}"
    );
}
