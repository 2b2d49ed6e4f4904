//! Fleet-wide quotas over the in-process store: the overshoot bound,
//! failure modes, and the guard's verdicts. Deterministic (a manual clock,
//! syncs driven by hand).

use ringfence_fleet::{
    gcra_take, Admission, FailMode, FleetConfig, GlobalLimits, ManualWallClock, MemoryStore,
    QuotaStore, Rule, StoreError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T0: u64 = 1_800_000_000_000_000; // µs since the epoch (2027)

fn config(nodes: u32, lease: u32, fail: FailMode) -> FleetConfig {
    FleetConfig {
        nodes,
        lease,
        fail,
        ..FleetConfig::default()
    }
}

/// What one node alone would admit: exact GCRA over the same arrivals.
fn single_node(rule: Rule, arrivals: impl Iterator<Item = u64>) -> u64 {
    let mut tat = None;
    let mut admitted = 0;
    for now in arrivals {
        let (g, t) = gcra_take(tat, rule, 1, 0, now);
        if let Some(t) = t {
            tat = Some(t);
        }
        admitted += g.granted;
    }
    admitted
}

/// `requests` arrivals `step_us` apart, round-robin over `nodes` nodes
/// syncing every `sync_us`; returns what the fleet admitted.
fn fleet(rule: Rule, nodes: u32, lease: u32, requests: u64, step_us: u64, sync_us: u64) -> u64 {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualWallClock::new(T0));
    let limits: Vec<GlobalLimits> = (0..nodes)
        .map(|_| {
            GlobalLimits::new(
                store.clone(),
                config(nodes, lease, FailMode::Open),
                clock.clone(),
            )
        })
        .collect();
    let mut admitted = 0;
    let mut next_sync = T0 + sync_us;
    for i in 0..requests {
        let now = T0 + i * step_us;
        clock.set(now);
        if now >= next_sync {
            limits.iter().for_each(GlobalLimits::sync_now);
            next_sync += sync_us;
        }
        if limits[(i % u64::from(nodes)) as usize]
            .admit(42, rule)
            .allowed()
        {
            admitted += 1;
        }
    }
    admitted
}

/// The stated bound over a run of `secs` seconds with sync interval `s`.
fn bound(rule: Rule, nodes: u32, lease: u32, sync_us: u64) -> u64 {
    let n = u64::from(nodes);
    let rate_per_us = 1.0 / rule.interval_us as f64;
    (rate_per_us * sync_us as f64).ceil() as u64
        + n * (u64::from(lease) - 1)
        + n * rule.burst.div_ceil(n)
}

#[test]
fn three_nodes_one_account_ten_thousand_requests_stay_within_the_bound() {
    // 600 a minute (one every 100 ms, burst 600); a request every
    // millisecond for 10 s, round-robin over three nodes, syncing every
    // 100 ms, leases of 8.
    let rule = Rule::per_minute(600);
    let arrivals = (0..10_000u64).map(|i| T0 + i * 1_000);
    let one = single_node(rule, arrivals);
    assert_eq!(one, 699, "600 at once, then one every 100 ms until 9.999 s");
    let three = fleet(rule, 3, 8, 10_000, 1_000, 100_000);
    let b = bound(rule, 3, 8, 100_000);
    assert!(
        three <= one + b,
        "three nodes admitted {three}, one node {one}, bound {b}"
    );
    // What it does in this even round-robin, well inside the worst case:
    // no more than the leases the nodes can hold.
    assert!(
        three <= one + 3 * 8,
        "three nodes admitted {three}, one node {one}"
    );
    // Not starved either: the fleet admits at least what one node would,
    // less the leases left unspent at the end.
    assert!(
        three + 3 * 8 >= one,
        "three nodes admitted {three}, one node {one}"
    );
    println!("one node {one}, three nodes {three}, bound +{b}");
}

#[test]
fn the_overshoot_grows_with_nodes_and_leases_as_stated() {
    let rule = Rule::per_minute(120);
    let arrivals = |n: u64| (0..n).map(|i| T0 + i * 2_000);
    let one = single_node(rule, arrivals(20_000));
    for (nodes, lease) in [(1, 1), (2, 4), (5, 8), (10, 16)] {
        let got = fleet(rule, nodes, lease, 20_000, 2_000, 50_000);
        let b = bound(rule, nodes, lease, 50_000);
        assert!(
            got <= one + b,
            "{nodes} nodes, lease {lease}: admitted {got}, one node {one}, bound +{b}"
        );
        assert!(
            got + u64::from(nodes * lease) >= one,
            "{nodes} nodes starved: {got} < {one}"
        );
        assert!(
            got <= one + u64::from(nodes * lease),
            "{nodes} nodes: {got} against {one}"
        );
        println!("{nodes} nodes, lease {lease}: admitted {got}, one node {one}, bound +{b}");
    }
}

#[test]
fn a_quiet_key_is_admitted_within_the_share_without_asking_the_store() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualWallClock::new(T0));
    let l = GlobalLimits::new(store.clone(), config(4, 8, FailMode::Open), clock.clone());
    let rule = Rule::per_minute(40); // share: 10 at once
    for _ in 0..10 {
        assert_eq!(l.admit(7, rule), Admission::Share);
    }
    assert_eq!(l.stats().round_trips, 0);
    assert!(store.is_empty(), "nothing asked of the store yet");
    assert_eq!(l.unreported(), 10);
    l.sync_now();
    assert_eq!(l.unreported(), 0);
    assert_eq!(l.stats().debited, 10);
    // The store now holds the 10 units: 30 remain fleet-wide.
    let g = store.take(&l.store_key(7), rule, 100, 0, T0).unwrap();
    assert_eq!(g.granted, 30);
}

/// A store that fails while `down` is set.
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
}

impl QuotaStore for Flaky {
    fn take(
        &self,
        key: &str,
        rule: Rule,
        want: u64,
        debit: u64,
        now_us: u64,
    ) -> Result<ringfence_fleet::Grant, StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("down for the test".into()));
        }
        self.inner.take(key, rule, want, debit, now_us)
    }
}

fn flaky() -> Arc<Flaky> {
    Arc::new(Flaky {
        inner: MemoryStore::new(),
        down: AtomicBool::new(false),
    })
}

#[test]
fn failing_closed_refuses_beyond_the_share_and_reports_one_incident() {
    let store = flaky();
    let clock = Arc::new(ManualWallClock::new(T0));
    let l = GlobalLimits::new(store.clone(), config(2, 4, FailMode::Closed), clock.clone());
    let reports = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let r = reports.clone();
    l.on_incident(move |m| r.lock().push(m.to_string()));
    store.down.store(true, Ordering::Relaxed);
    let rule = Rule::per_minute(20); // share 10
    let decided: Vec<Admission> = (0..30).map(|_| l.admit(1, rule)).collect();
    assert!(decided[..10].iter().all(|a| *a == Admission::Share));
    assert!(decided[10..]
        .iter()
        .all(|a| matches!(a, Admission::FailedClosed(_))));
    assert_eq!(l.stats().fallbacks, 20);
    assert_eq!(l.stats().incidents, 1);
    assert_eq!(
        reports.lock().len(),
        1,
        "one report when it starts: {:?}",
        reports.lock()
    );
    // Back: the share's ten are debited, and the end is reported once.
    store.down.store(false, Ordering::Relaxed);
    clock.advance(Duration::from_secs(1));
    l.sync_now();
    assert_eq!(l.unreported(), 0);
    assert_eq!(l.stats().debited, 10);
    assert_eq!(reports.lock().len(), 2, "{:?}", reports.lock());
    assert!(reports.lock()[1].contains("answers again"));
}

#[test]
fn failing_open_serves_and_debits_what_it_served_when_the_store_returns() {
    let store = flaky();
    let clock = Arc::new(ManualWallClock::new(T0));
    let l = GlobalLimits::new(store.clone(), config(2, 4, FailMode::Open), clock.clone());
    l.on_incident(|_| {});
    store.down.store(true, Ordering::Relaxed);
    let rule = Rule::per_minute(20);
    assert!((0..30).all(|_| l.admit(1, rule).allowed()));
    assert_eq!(l.stats().fallbacks, 20);
    l.sync_now(); // still down: nothing lost
    assert_eq!(l.unreported(), 30);
    store.down.store(false, Ordering::Relaxed);
    l.sync_now();
    assert_eq!(l.unreported(), 0);
    assert_eq!(l.stats().debited, 30, "each unit debited once");
    // 30 debited against a burst of 20: the fleet's quota is spent for
    // the next 30 s (10 units' worth past the burst, then the burst).
    let g = store.inner.take(&l.store_key(1), rule, 1, 0, T0).unwrap();
    assert_eq!(g.granted, 0);
}
