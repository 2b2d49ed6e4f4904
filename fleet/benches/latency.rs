//! What fleet mode adds to a request: `GlobalLimits::admit` (one quota)
//! against a redis-server on loopback that the benchmark starts, with
//! leases of 1 (every admission past the node's share is a round trip),
//! 8 and 32, beside the same limits over the in-process store (no
//! network: the cost of the local path alone).
//!
//! The workload: `RF_ACCOUNTS` (default 10,000) accounts drawn at random,
//! each with a quota of 20 requests a minute, over a fleet of 3 nodes
//! (this process is one of them: its share is 7 of the 20), the system
//! clock; `RF_REQUESTS` (default 200,000) requests per run. Accounts
//! return within the minute, so most requests past the share need the
//! fleet's quota: the shape of a busy fleet, not a quiet one.
//!
//! Then the whole `check`, a lone guard's beside a fleet node's (quotas in
//! the loopback Redis, evidence shared through it, sync threads running),
//! on the same requests (one fingerprint and a distinct prompt each).
//!
//! `cargo bench -p ringfence-fleet --bench latency`

use ringfence_fleet::local_server::Server;
use ringfence_fleet::{
    FailMode, FleetConfig, GlobalLimits, MemoryStore, QuotaStore, RedisStore, Rule, SystemWallClock,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn run(label: &str, store: Arc<dyn QuotaStore>, lease: u32, accounts: u64, requests: u64) {
    let config = FleetConfig {
        nodes: 3,
        lease,
        fail: FailMode::Open,
        timeout_ms: 50,
        sync_interval_ms: 20,
        // Each run's keys of its own: what one run spent stays spent in
        // the store for a minute.
        prefix: format!("bench{}", label.len() * 100 + lease as usize),
        ..FleetConfig::default()
    };
    let limits = GlobalLimits::new(store, config, Arc::new(SystemWallClock)).start();
    limits.on_incident(|m| eprintln!("incident: {m}"));
    let rule = Rule::per_minute(20);
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ u64::from(lease);
    let mut lat = Vec::with_capacity(requests as usize);
    let mut allowed = 0u64;
    let start = Instant::now();
    for _ in 0..requests {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = x % accounts;
        let t = Instant::now();
        let a = limits.admit(key.wrapping_mul(0x9e37_79b9_7f4a_7c15), rule);
        lat.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
        allowed += u64::from(a.allowed());
    }
    let wall = start.elapsed();
    let st = limits.stats();
    lat.sort_unstable();
    let mean = lat.iter().map(|&v| f64::from(v)).sum::<f64>() / lat.len() as f64;
    let us = |ns: u32| f64::from(ns) / 1e3;
    println!(
        "  {label:<28} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>10.1}   {:>6.1}%  {:>7.2}%  {:>6.1}%  {:>5.1} s",
        mean / 1e3,
        us(percentile(&lat, 0.5)),
        us(percentile(&lat, 0.99)),
        us(percentile(&lat, 0.999)),
        us(*lat.last().unwrap()),
        100.0 * allowed as f64 / requests as f64,
        100.0 * st.round_trips as f64 / requests as f64,
        100.0 * st.fallbacks as f64 / requests as f64,
        wall.as_secs_f64()
    );
}

fn main() {
    let accounts = env("RF_ACCOUNTS", 10_000).max(1);
    let requests = env("RF_REQUESTS", 200_000).max(1);
    println!("fleet mode: GlobalLimits::admit, one quota (20 a minute) per account");
    println!(
        "  {accounts} accounts at random, {requests} requests per run, 3 nodes (share 7 of 20), sync every 20 ms, system clock"
    );
    println!(
        "  {:<28} {:>8} {:>8} {:>8} {:>9} {:>10}   {:>7}  {:>8}  {:>7}  {:>7}",
        "µs per admit", "mean", "p50", "p99", "p99.9", "max", "allowed", "trips", "fallbk", "wall"
    );
    for lease in [1, 8, 32] {
        run(
            &format!("in-process store, lease {lease}"),
            Arc::new(MemoryStore::new()),
            lease,
            accounts,
            requests,
        );
    }
    let Some(server) = Server::start() else {
        println!("  (no redis-server on PATH: the Redis rows are skipped)");
        return;
    };
    for lease in [1, 8, 32] {
        let store =
            RedisStore::open(&server.url(), Duration::from_millis(50)).expect("the URL parses");
        run(
            &format!("loopback Redis, lease {lease}"),
            Arc::new(store),
            lease,
            accounts,
            requests,
        );
    }
    println!("  trips: round trips on the request path, per request; fallbk: requests decided by the failure mode");
    whole_checks(&server, accounts, requests);
}

/// The whole `check`: a lone guard's beside a fleet node's (its quotas in
/// the loopback Redis, its evidence shared through it, its sync threads
/// running), on the same requests: one fingerprint, a distinct prompt of
/// about 200 bytes each.
fn whole_checks(server: &Server, accounts: u64, requests: u64) {
    use ringfence::guard::{GuardConfig, Request};
    use ringfence_fleet::Node;
    println!();
    println!("the whole check: Guard::check alone, and FleetGuard::check (3 nodes, this one of them), same requests");
    println!(
        "  {:<44} {:>8} {:>8} {:>8} {:>9} {:>10}   {:>7}",
        "µs per check", "mean", "p50", "p99", "p99.9", "max", "allowed"
    );
    let base = "account_requests_per_minute = 20\nlimiter_capacity = 65536\n\
                [link]\nmax_accounts = 65536\nmax_values = 131072\nmax_templates = 65536\n\
                max_pairs = 65536\n[score]\nmax_clusters = 16384\n";
    let mut rows: Vec<(String, Vec<u32>)> = Vec::new();
    for (label, fleet) in [
        ("lone guard", String::new()),
        (
            "fleet node, lease 1 (no lease to speak of)",
            "lease = 1\nindex = 0\nprefix = \"bc1\"\n".to_string(),
        ),
        (
            "fleet node, lease 8",
            "lease = 8\nindex = 0\nprefix = \"bc8\"\n".to_string(),
        ),
    ] {
        let text = if fleet.is_empty() {
            base.to_string()
        } else {
            format!(
                "{base}[fleet]\nurl = \"{}\"\nnodes = 3\ntimeout_ms = 50\nsync_interval_ms = 20\n{fleet}",
                server.url()
            )
        };
        let node = Node::from_config(GuardConfig::from_toml(&text).expect("the bench's TOML"))
            .expect("the bench's node");
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut lat = Vec::with_capacity(requests as usize);
        let mut allowed = 0u64;
        for i in 0..requests {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % accounts;
            let account = format!("acct-{k}");
            let ip = format!("10.{}.{}.{}", k >> 16 & 255, k >> 8 & 255, k & 255);
            let prompt = format!(
                "Request {i} of account {k}: summarise the following notes about topic {} in three bullet points, keeping the figures exact and naming the sources as given.",
                x >> 40
            );
            let fps = [("ip", ip.as_str())];
            let req = Request {
                account: &account,
                fingerprints: &fps,
                prompt: Some(&prompt),
                system: None,
                model: None,
                input_tokens: 50,
                max_tokens: 300,
            };
            let t = Instant::now();
            let v = node.check(&req);
            lat.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
            allowed += u64::from(v.allowed());
            let _ = node.settle_token(v.settlement(), 120);
        }
        lat.sort_unstable();
        let mean = lat.iter().map(|&v| f64::from(v)).sum::<f64>() / lat.len() as f64;
        let us = |ns: u32| f64::from(ns) / 1e3;
        println!(
            "  {label:<44} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>10.1}   {:>6.1}%",
            mean / 1e3,
            us(percentile(&lat, 0.5)),
            us(percentile(&lat, 0.99)),
            us(percentile(&lat, 0.999)),
            us(*lat.last().unwrap()),
            100.0 * allowed as f64 / requests as f64,
        );
        rows.push((label.to_string(), lat));
    }
    let lone = &rows[0].1;
    for (label, lat) in &rows[1..] {
        let d = |p: f64| (f64::from(percentile(lat, p)) - f64::from(percentile(lone, p))) / 1e3;
        println!(
            "  added by the {label}: p50 {:+.2} µs, p99 {:+.2} µs, p99.9 {:+.2} µs, max {:+.1} µs",
            d(0.5),
            d(0.99),
            d(0.999),
            (f64::from(*lat.last().unwrap()) - f64::from(*lone.last().unwrap())) / 1e3
        );
    }
}
