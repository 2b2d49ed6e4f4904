//! Fleet-wide quotas against a real `redis-server` on loopback, started by
//! the test (the test command installs it; elsewhere the tests say they
//! skip unless RINGFENCE_REQUIRE_REDIS=1).

mod common;

use ringfence_fleet::local_server::Server;
use ringfence_fleet::{
    gcra_take, Admission, FailMode, FleetConfig, GlobalLimits, ManualWallClock, MemoryStore,
    QuotaStore, RedisStore, Rule, StoreError, SystemWallClock, Take,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T0: u64 = 1_800_000_000_000_000;

fn store(s: &Server, timeout_ms: u64) -> Arc<RedisStore> {
    Arc::new(RedisStore::open(&s.url(), Duration::from_millis(timeout_ms)).unwrap())
}

#[test]
fn the_script_computes_what_the_memory_store_computes() {
    let Some(s) = Server::start() else { return };
    let r = store(&s, 500);
    let rule = Rule::per_minute(30);
    let mut tat = None;
    // A seeded walk of takes and debits at moving times.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut now = T0;
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += x % 3_000_000;
        let (want, debit) = (
            (x >> 20) % 12,
            if (x >> 40) % 5 == 0 { (x >> 44) % 4 } else { 0 },
        );
        let (expected, t) = gcra_take(tat.filter(|&t| t > now), rule, want, debit, now);
        if let Some(t) = t {
            tat = Some(t);
        }
        let got = r.take("rf1:q:{parity}", rule, want, debit, now).unwrap();
        assert_eq!(got, expected, "at {now}: want {want}, debit {debit}");
    }
}

#[test]
fn a_pipeline_of_takes_answers_as_takes_one_by_one_even_after_a_script_flush() {
    let Some(s) = Server::start() else { return };
    let r = store(&s, 500);
    // 1,200 takes over 37 keys: three pipelines, keys revisited within
    // each, debits and wants mixed.
    let takes: Vec<Take> = (0..1_200u64)
        .map(|i| Take {
            key: format!("rf1:q:{{pipe{}}}", i % 37),
            rule: Rule::per_minute(30),
            want: i % 5,
            debit: i % 3,
        })
        .collect();
    // The server forgets the script (as after a restart): the first
    // pipeline is refused whole, the script loaded, and it is sent again.
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut s.conn())
        .unwrap();
    let got = r.take_many(&takes, T0);
    let expected = MemoryStore::new().take_many(&takes, T0);
    assert_eq!(got.len(), takes.len());
    assert_eq!(got, expected);
    assert!(got.iter().any(|g| g.as_ref().unwrap().granted == 0));
}

fn config(nodes: u32, lease: u32, fail: FailMode, timeout_ms: u64) -> FleetConfig {
    FleetConfig {
        nodes,
        lease,
        fail,
        timeout_ms,
        ..FleetConfig::default()
    }
}

#[test]
fn three_nodes_share_one_quota_through_redis() {
    let Some(s) = Server::start() else { return };
    let clock = Arc::new(ManualWallClock::new(T0));
    // Three nodes, each with its own connections.
    let nodes: Vec<GlobalLimits> = (0..3)
        .map(|_| {
            GlobalLimits::new(
                store(&s, 500),
                config(3, 8, FailMode::Closed, 500),
                clock.clone(),
            )
        })
        .collect();
    let rule = Rule::per_minute(600);
    let mut admitted = 0u64;
    for i in 0..10_000u64 {
        clock.set(T0 + i * 1_000);
        if i % 100 == 99 {
            nodes.iter().for_each(GlobalLimits::sync_now);
        }
        if nodes[(i % 3) as usize].admit(99, rule).allowed() {
            admitted += 1;
        }
    }
    let one = 699; // see tests/quota.rs: one node alone
    assert!(admitted <= one + 3 * 8, "admitted {admitted} against {one}");
    assert!(admitted + 3 * 8 >= one, "admitted {admitted} against {one}");
    assert_eq!(nodes.iter().map(|n| n.stats().fallbacks).sum::<u64>(), 0);
    let trips: u64 = nodes.iter().map(|n| n.stats().round_trips).sum();
    assert!(
        trips < 200,
        "{trips} round trips on the request path for 10,000 requests"
    );
}

#[test]
fn a_killed_server_never_blocks_a_request_and_counts_resynchronise() {
    let Some(mut s) = Server::start() else { return };
    let timeout_ms = 50;
    let clock = Arc::new(SystemWallClock);
    let l = GlobalLimits::new(
        store(&s, timeout_ms),
        config(2, 4, FailMode::Open, timeout_ms),
        clock,
    );
    let incidents = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let seen = incidents.clone();
    l.on_incident(move |m| seen.lock().push(m.to_string()));
    // 100 a minute: a node's share (50) is spent in the first round, so
    // later requests ask Redis.
    let rule = Rule::per_minute(100);
    for i in 0..200u64 {
        assert!(l.admit(i % 4, rule).allowed());
    }
    l.sync_now();
    s.kill();
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    for i in 0..2_000u64 {
        let t = Instant::now();
        let a = l.admit(i % 4, rule);
        slowest = slowest.max(t.elapsed());
        served += u64::from(a.allowed());
        if i % 500 == 0 {
            l.sync_now();
        }
    }
    assert_eq!(served, 2_000, "failing open serves");
    // Connection refused on loopback answers at once; the bound that
    // matters is the timeout (generous slack for a shared machine).
    assert!(
        slowest < Duration::from_millis(timeout_ms * 20),
        "a request waited {slowest:?}"
    );
    let st = l.stats();
    assert!(st.fallbacks > 0);
    assert_eq!(
        st.incidents,
        1,
        "one incident, reported once: {:?}",
        incidents.lock()
    );
    let unreported = l.unreported();
    assert!(unreported > 0, "what was served alone is kept");
    // Back: the next sync debits everything that was kept, once.
    assert!(s.spawn());
    std::thread::sleep(Duration::from_millis(1_100)); // past the reconnect pause
    let before = st.debited;
    l.sync_now();
    l.sync_now();
    assert_eq!(l.unreported(), 0);
    assert_eq!(
        l.stats().debited - before,
        unreported,
        "debited once, nothing lost"
    );
    assert_eq!(incidents.lock().len(), 2, "{:?}", incidents.lock());
}

#[test]
fn a_slow_server_costs_a_request_at_most_the_timeout_then_fails_closed() {
    let Some(s) = Server::start() else { return };
    let timeout_ms = 30;
    let l = GlobalLimits::new(
        store(&s, timeout_ms),
        config(2, 1, FailMode::Closed, timeout_ms),
        Arc::new(SystemWallClock),
    );
    l.on_incident(|_| {});
    let rule = Rule::per_minute(2); // share: 1, then every request asks Redis
    assert!(l.admit(5, rule).allowed());
    // The server sleeps 1.5 s; meanwhile requests must not wait on it.
    let url = s.url();
    let sleeper = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: redis::RedisResult<String> =
            redis::cmd("DEBUG").arg("SLEEP").arg("1.5").query(&mut c);
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let a = l.admit(5, rule);
        slowest = slowest.max(t.elapsed());
        assert!(matches!(a, Admission::FailedClosed(_)), "{a:?}");
    }
    assert!(
        slowest < Duration::from_millis(timeout_ms * 10),
        "waited {slowest:?}"
    );
    sleeper.join().unwrap();
}

#[test]
fn bad_data_in_redis_is_counted_and_skipped() {
    let Some(s) = Server::start() else { return };
    let clock = Arc::new(ManualWallClock::new(T0));
    // Ten nodes: a share of one unit a minute, so a key's second request
    // goes to Redis.
    let l = GlobalLimits::new(store(&s, 500), config(10, 1, FailMode::Closed, 500), clock);
    l.on_incident(|_| {});
    let rule = Rule::per_minute(10);
    let mut c = s.conn();
    let mut set = |key: u64, value: &str| {
        let _: () = redis::cmd("SET")
            .arg(l.store_key(key))
            .arg(value)
            .query(&mut c)
            .unwrap();
    };
    // Not a time: replaced, counted, and the quota goes on.
    assert_eq!(l.admit(1, rule), Admission::Share);
    set(1, "garbage");
    assert_eq!(l.admit(1, rule), Admission::Store);
    assert_eq!(l.stats().repaired, 1);
    // A time from the far future (another schema's, or corrupt): the same.
    assert_eq!(l.admit(2, rule), Admission::Share);
    set(2, "99999999999999999");
    assert_eq!(l.admit(2, rule), Admission::Store);
    assert_eq!(l.stats().repaired, 2);
    // A key of another type: an error, counted, decided by the failure
    // mode, and no harm to other keys.
    assert_eq!(l.admit(3, rule), Admission::Share);
    let _: () = redis::cmd("HSET")
        .arg(l.store_key(3))
        .arg("f")
        .arg("v")
        .query(&mut s.conn())
        .unwrap();
    let a = l.admit(3, rule);
    assert!(matches!(a, Admission::FailedClosed(_)), "{a:?}");
    assert_eq!(l.stats().store_errors, 1);
    assert_eq!(l.admit(4, rule), Admission::Share);
    assert_eq!(l.admit(4, rule), Admission::Store);
    let direct = RedisStore::open(&s.url(), Duration::from_millis(500)).unwrap();
    let e = direct.take(&l.store_key(3), rule, 1, 0, T0).unwrap_err();
    assert!(matches!(e, StoreError::BadReply(_)), "{e:?}");
}

/// Three gateway nodes on one Redis, a hydra of 30 accounts sharing a card,
/// each account always sent to the same node (as a load balancer hashing
/// by account would): each node sees ten of them.
fn hydra_over_three_nodes(s: &Server, share: bool) -> Vec<Vec<u32>> {
    use ringfence::guard::{Guard, GuardConfig};
    use ringfence_fleet::{FleetGuard, RedisExchange};
    let second = Duration::from_secs(1);
    let prefix = format!("t{}", u8::from(share));
    let nodes: Vec<FleetGuard> = (0..3u32)
        .map(|i| {
            let fc = FleetConfig {
                nodes: 3,
                index: i,
                prefix: prefix.clone(),
                ..FleetConfig::default()
            };
            let limits = GlobalLimits::new(store(s, 500), fc, Arc::new(SystemWallClock));
            let g = FleetGuard::new(Guard::new(GuardConfig::default()), limits);
            if share {
                let x =
                    RedisExchange::open(&s.url(), &prefix, 3, second, 100, 60 * second).unwrap();
                g.sharing(Arc::new(x), i, 1_000)
            } else {
                g
            }
        })
        .collect();
    for round in 0..4 {
        for k in 0..common::ACCOUNTS {
            common::ask(k, round, |_, req| {
                let v = nodes[k % 3].check(req);
                nodes[k % 3].settle(&v, 900);
            });
        }
        // Every node publishes, then every node records the others'.
        nodes.iter().for_each(FleetGuard::sync_evidence);
        nodes.iter().for_each(FleetGuard::sync_evidence);
    }
    if share {
        for n in &nodes {
            let st = n.share_stats();
            assert_eq!(st.published, 40, "{st:?}");
            assert_eq!(st.received, 80, "{st:?}");
            assert_eq!((st.bad_batches, st.dropped, st.errors), (0, 0, 0), "{st:?}");
            // Answers travel too, once settled.
            assert!(
                st.answers_published > 0 && st.answers_received > 0,
                "{st:?}"
            );
        }
    }
    // Each node's view of every hydra account: its cluster's size.
    nodes
        .iter()
        .map(|n| {
            (0..common::ACCOUNTS)
                .map(|k| n.guard().score_of(&common::account(k)).0.size)
                .collect()
        })
        .collect()
}

#[test]
fn a_hydra_split_over_three_nodes_is_linked_whole_on_each() {
    let Some(s) = Server::start() else { return };
    let alone = hydra_over_three_nodes(&s, false);
    let shared = hydra_over_three_nodes(&s, true);
    for (node, sizes) in alone.iter().enumerate() {
        let seen: Vec<u32> = (0..30)
            .filter(|k| k % 3 == node)
            .map(|k| sizes[k])
            .collect();
        assert!(seen.iter().all(|&n| n <= 10), "node {node} alone: {seen:?}");
    }
    // One guard that sees everything, for reference.
    let one = {
        use ringfence::guard::{Guard, GuardConfig};
        let g = Guard::new(GuardConfig::default());
        for round in 0..4 {
            for k in 0..common::ACCOUNTS {
                common::ask(k, round, |_, req| {
                    let v = g.check(req);
                    g.settle(&v, 900);
                });
            }
        }
        (0..common::ACCOUNTS)
            .map(|k| g.score_of(&common::account(k)).0.size)
            .collect::<Vec<u32>>()
    };
    let linked = |sizes: &[u32]| sizes.iter().filter(|&&n| n > 10).count();
    assert!(linked(&one) >= 10, "one node: {one:?}");
    for (node, sizes) in shared.iter().enumerate() {
        // Each node links across what the others saw, at least as much of
        // the hydra as one node seeing all of it.
        assert!(
            linked(sizes) >= linked(&one),
            "node {node} sharing: {sizes:?}, one node: {one:?}"
        );
    }
}

#[test]
fn a_corrupt_evidence_batch_is_counted_and_skipped() {
    let Some(s) = Server::start() else { return };
    use ringfence::guard::{Guard, GuardConfig};
    use ringfence_fleet::{FleetGuard, RedisExchange};
    let second = Duration::from_secs(1);
    let x = RedisExchange::open(&s.url(), "rf1", 2, second, 100, 60 * second).unwrap();
    let stream = x.stream(1);
    let limits = GlobalLimits::new(
        store(&s, 500),
        config(2, 1, FailMode::Open, 500),
        Arc::new(SystemWallClock),
    );
    let g = FleetGuard::new(Guard::new(GuardConfig::default()), limits).sharing(Arc::new(x), 0, 10);
    let mut c = s.conn();
    for junk in [&b"RFO9future"[..], b"garbage", b""] {
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("b")
            .arg(junk)
            .query(&mut c)
            .unwrap();
    }
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("other")
        .arg("shape")
        .query(&mut c)
        .unwrap();
    g.sync_evidence();
    let st = g.share_stats();
    assert_eq!(st.bad_batches, 4, "{st:?}");
    assert_eq!(st.received, 0);
}
