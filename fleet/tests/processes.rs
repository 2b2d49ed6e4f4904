//! Three guards in three processes on one real Redis, each fed its own
//! slice of a hydra's traffic: every node links the hydra from what the
//! others saw. The test starts three copies of its own binary as the
//! nodes (the environment tells a copy which node it is).

mod common;

use common::ACCOUNTS;
use ringfence::guard::{Guard, GuardConfig};
use ringfence_fleet::local_server::Server;
use ringfence_fleet::{
    FailMode, FleetConfig, FleetGuard, GlobalLimits, RedisExchange, RedisStore, SystemWallClock,
};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: u32 = 3;
const ROUNDS: usize = 4;
const TEST: &str = "three_processes_link_a_hydra";

/// A node: its slice of the hydra (accounts `k` with `k % 3 == index`),
/// then syncs until it has recorded the others' requests; prints each
/// hydra account's cluster size as this node sees it.
fn node(url: &str, index: u32, prefix: &str) {
    let second = Duration::from_secs(1);
    let fc = FleetConfig {
        nodes: NODES,
        index,
        prefix: prefix.to_string(),
        fail: FailMode::Closed,
        ..FleetConfig::default()
    };
    let store = RedisStore::open(url, second).unwrap();
    let limits = GlobalLimits::new(Arc::new(store), fc, Arc::new(SystemWallClock));
    let exchange = RedisExchange::open(url, prefix, NODES, second, 100, 60 * second).unwrap();
    let g = FleetGuard::new(Guard::new(GuardConfig::default()), limits).sharing(
        Arc::new(exchange),
        index,
        1_000,
    );
    for round in 0..ROUNDS {
        for k in (0..ACCOUNTS).filter(|k| k % NODES as usize == index as usize) {
            common::ask(k, round, |_, req| {
                let v = g.check(req);
                g.settle(&v, 900);
            });
        }
    }
    let others = (ACCOUNTS - ACCOUNTS / NODES as usize) * ROUNDS;
    let deadline = Instant::now() + Duration::from_secs(30);
    while g.share_stats().received < others as u64 && Instant::now() < deadline {
        g.sync_evidence();
        std::thread::sleep(Duration::from_millis(20));
    }
    let sizes: Vec<String> = (0..ACCOUNTS)
        .map(|k| g.guard().score_of(&common::account(k)).0.size.to_string())
        .collect();
    println!("RECEIVED {}", g.share_stats().received);
    println!("SIZES {}", sizes.join(","));
}

#[test]
fn three_processes_link_a_hydra() {
    if let (Ok(url), Ok(index), Ok(prefix)) = (
        std::env::var("RF_FLEET_URL"),
        std::env::var("RF_FLEET_INDEX"),
        std::env::var("RF_FLEET_PREFIX"),
    ) {
        node(&url, index.parse().unwrap(), &prefix);
        return;
    }
    let Some(server) = Server::start() else {
        return;
    };
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..NODES)
        .map(|i| {
            Command::new(&me)
                .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
                .env("RF_FLEET_URL", server.url())
                .env("RF_FLEET_INDEX", i.to_string())
                .env("RF_FLEET_PREFIX", "procs")
                .spawn_and_wait_later()
        })
        .collect();
    let mut views = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "node {i} failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = text
            .lines()
            .find_map(|l| l.split("SIZES ").nth(1))
            .unwrap_or_else(|| panic!("node {i}: {text}"));
        let sizes: Vec<u32> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let received = text
            .lines()
            .find_map(|l| l.split("RECEIVED ").nth(1))
            .unwrap_or_else(|| panic!("node {i}: {text}"));
        assert_eq!(
            received, "80",
            "node {i} recorded the other two nodes' 80 requests"
        );
        views.push(sizes);
    }
    for (i, sizes) in views.iter().enumerate() {
        // Each node saw ten accounts; it links more than those, from what
        // the other two saw.
        let linked = sizes.iter().filter(|&&n| n > 10).count();
        assert!(linked >= 10, "node {i}: {sizes:?}");
    }
}

/// `Command::spawn` with the child's output piped, for `wait_with_output`.
trait SpawnPiped {
    fn spawn_and_wait_later(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn spawn_and_wait_later(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
