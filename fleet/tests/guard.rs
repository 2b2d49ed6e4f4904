//! A guard's quotas across three nodes: one account spread over them gets
//! its quota once, not three times.

use ringfence::guard::{Decision, Guard, GuardConfig, Reason, Request};
use ringfence_fleet::{
    FailMode, FleetConfig, FleetGuard, GlobalLimits, ManualWallClock, MemoryStore,
};
use std::sync::Arc;
use std::time::Duration;

const T0: u64 = 1_800_000_000_000_000;

fn request(account: &str) -> Request<'_> {
    Request {
        account,
        fingerprints: &[],
        prompt: None,
        system: None,
        model: None,
        input_tokens: 10,
        max_tokens: 10,
    }
}

/// Three nodes on one store; `fleet` false gives each its own store (no
/// fleet). Returns the requests served out of `n`, a second apart.
fn serve(n: u64, fleet: bool) -> (u64, Vec<ringfence::guard::Verdict>) {
    let shared = Arc::new(MemoryStore::new());
    let wall = Arc::new(ManualWallClock::new(T0));
    let mut clocks = Vec::new();
    let nodes: Vec<FleetGuard> = (0..3)
        .map(|_| {
            let config = GuardConfig {
                account_requests_per_minute: 20,
                ..GuardConfig::default()
            };
            let (guard, clock) = Guard::for_replay(config);
            clocks.push(clock);
            let store = if fleet {
                shared.clone()
            } else {
                Arc::new(MemoryStore::new())
            };
            let fc = FleetConfig {
                nodes: 3,
                lease: 2,
                fail: FailMode::Closed,
                ..FleetConfig::default()
            };
            FleetGuard::new(guard, GlobalLimits::new(store, fc, wall.clone()))
        })
        .collect();
    let mut served = 0;
    let mut refused = Vec::new();
    for i in 0..n {
        wall.set(T0 + i * 1_000_000);
        for c in &clocks {
            c.set_nanos(i * 1_000_000_000);
        }
        if i % 5 == 0 {
            nodes.iter().for_each(|g| g.limits().sync_now());
        }
        let node = &nodes[(i % 3) as usize];
        let v = node.check(&request("hydra-account"));
        if v.allowed() {
            served += 1;
            node.settle(&v, 5);
        } else {
            node.settle(&v, 5); // settling a refused verdict does nothing
            refused.push(v);
        }
    }
    (served, refused)
}

#[test]
fn one_account_over_three_nodes_gets_its_quota_once() {
    // 60 requests in a minute against 20 a minute (burst 20).
    let (alone, _) = serve(60, false);
    let (fleet, refused) = serve(60, true);
    assert_eq!(
        alone, 60,
        "each node grants its own 20 and more as they refill"
    );
    // One quota fleet-wide: 20 at once plus one every 3 s for a minute,
    // within the leases the three nodes may hold (3 × 2).
    assert!(fleet <= 20 + 20 + 6, "served {fleet}");
    assert!(fleet >= 20 + 20 - 6, "served {fleet}");
    let v = &refused[0];
    assert!(matches!(v.decision, Decision::Throttle { .. }));
    assert!(v.reasons.contains(&Reason::AccountLimit));
    assert!(v.retry_after() > Duration::ZERO);
    assert!(v.reservation.is_none(), "the tokens went back");
}

#[test]
fn the_fleet_table_is_read_from_the_guard_configuration() {
    let config = GuardConfig::from_toml("[fleet]\nnodes = 4\nlease = 3\n").unwrap();
    let g = FleetGuard::from_config(config).unwrap();
    assert_eq!(g.limits().config().nodes, 4);
    assert!(g.check(&request("a")).allowed());
    let bad = GuardConfig::from_toml("[fleet]\nnodes = 0\n").unwrap();
    let e = FleetGuard::from_config(bad).err().unwrap();
    assert!(e.contains("fleet.nodes"), "{e}");
}

/// Tokens: three nodes, one account whose token quota (2,000 a minute)
/// binds before its request quota; each request reserves 100 tokens.
fn tokens_served(n: u64, output: u32) -> u64 {
    let shared = Arc::new(MemoryStore::new());
    let wall = Arc::new(ManualWallClock::new(T0));
    let mut clocks = Vec::new();
    let nodes: Vec<FleetGuard> = (0..3)
        .map(|_| {
            let config = GuardConfig {
                account_requests_per_minute: 10_000,
                account_tokens_per_minute: 2_000,
                ..GuardConfig::default()
            };
            let (guard, clock) = Guard::for_replay(config);
            clocks.push(clock);
            let fc = FleetConfig {
                nodes: 3,
                lease: 2,
                ..FleetConfig::default()
            };
            FleetGuard::new(guard, GlobalLimits::new(shared.clone(), fc, wall.clone()))
        })
        .collect();
    let mut served = 0;
    for i in 0..n {
        wall.set(T0 + i * 1_000_000);
        for c in &clocks {
            c.set_nanos(i * 1_000_000_000);
        }
        if i % 5 == 0 {
            nodes.iter().for_each(|g| g.limits().sync_now());
        }
        let node = &nodes[(i % 3) as usize];
        let mut req = request("tokens-account");
        req.input_tokens = 10;
        req.max_tokens = 90;
        let v = node.check(&req);
        if v.allowed() {
            served += 1;
            node.settle(&v, output);
        }
    }
    served
}

#[test]
fn an_account_token_quota_holds_across_nodes_and_refunds_return() {
    // 60 requests in a minute reserving 100 tokens each against 2,000 a
    // minute: one node would serve 20 at once and 20 more as the quota
    // refills, each node alone 60.
    let full = tokens_served(60, 90);
    assert!(
        (34..=46).contains(&full),
        "answers as long as reserved: {full} served"
    );
    // Answers of 10 tokens use a fifth of each reservation; the rest goes
    // back to the node's lease and serves more requests.
    let short = tokens_served(60, 10);
    assert!(
        short > full + 10,
        "short answers: {short} served, long ones {full}"
    );
    println!("tokens: {full} served with answers as long as reserved, {short} with short ones");
}
