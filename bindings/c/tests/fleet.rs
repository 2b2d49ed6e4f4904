//! Fleet mode through the C ABI: three handles made from TOML with a
//! `[fleet]` table, one real `redis-server` on loopback (started here; the
//! test command installs it). The same calls as a lone guard, with quotas
//! that hold across the three and evidence shared between them.

mod common;

use common::{last_error, G, SMALL};
use ringfence_c::*;
use ringfence_fleet::local_server::Server;
use std::ffi::CStr;
use std::ptr;
use std::time::{Duration, Instant};

fn node(url: &str, prefix: &str, index: u32) -> G {
    G::from_text(&format!(
        "account_requests_per_minute = 30\n{SMALL}\
         [fleet]\nurl = \"{url}\"\nnodes = 3\nindex = {index}\nnode = \"n{index}\"\n\
         prefix = \"{prefix}\"\nlease = 4\nsync_interval_ms = 50\ntimeout_ms = 200\n"
    ))
}

fn stats(g: &G) -> serde_json::Value {
    let mut s = ptr::null_mut();
    // SAFETY: the guard is live; `s` is a local out-pointer.
    let status = unsafe { rf_guard_fleet_stats(g.0, &mut s) };
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
    // SAFETY: `s` is the string just made, read then freed once.
    let text = unsafe {
        let mut p = ptr::null();
        assert_eq!(rf_string_data(s, &mut p, ptr::null_mut()), rf_status::RF_OK);
        let t = CStr::from_ptr(p).to_string_lossy().into_owned();
        rf_string_free(s);
        t
    };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn three_handles_share_one_quota_and_their_evidence() {
    let Some(s) = Server::start() else { return };
    let nodes: Vec<G> = (0..3).map(|i| node(&s.url(), "cfleet", i)).collect();
    // One account, 300 requests round-robin: alone, each node would admit
    // its own 30 a minute (90 in all).
    let mut admitted = 0;
    for i in 0..300 {
        let g = &nodes[i % 3];
        let mut v = g.check("one-account", &[("ip", "198.51.100.7")], 20, 100);
        if v.decision == RF_DECISION_ALLOW {
            admitted += 1;
        }
        assert_eq!(g.settle(&mut v, 50), rf_status::RF_OK, "{}", last_error());
    }
    // docs/fleet.md's bound: r(W + s) + b + nodes(lease - 1) + nodes*ceil(b/nodes),
    // r = 0.5/s, W well under 10 s, s = 0.05 s, b = 30, 3 nodes, lease 4.
    let bound = (0.5f64 * 10.05).ceil() as usize + 30 + 3 * 3 + 3 * 10;
    eprintln!("admitted {admitted} of 300 (bound {bound})");
    assert!(
        (30..=bound).contains(&admitted),
        "admitted {admitted}, bound {bound}"
    );
    // Each node hears of the others' requests within a few sync intervals.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Vec<u64> = nodes
            .iter()
            .map(|g| stats(g)["evidence"]["received"].as_u64().unwrap())
            .collect();
        if got.iter().all(|&n| n == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "received {got:?} of 200 each");
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = stats(&nodes[1]);
    assert_eq!(st["node"], "n1");
    assert!(st["quotas"]["refused"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["evidence"]["bad_batches"], 0, "{st}");
    assert!(
        st["evidence"]["answers_published"].as_u64().unwrap() > 0,
        "{st}"
    );

    // A node's snapshot carries its place in the exchange; a restarted
    // node restores it.
    let mut snap = ptr::null_mut();
    // SAFETY: the guard is live; `snap` is a local out-pointer.
    assert_eq!(
        unsafe { rf_guard_snapshot(nodes[0].0, &mut snap) },
        rf_status::RF_OK
    );
    let (mut data, mut len) = (ptr::null(), 0usize);
    // SAFETY: `snap` is live until freed below; `data` and `len` are locals.
    assert_eq!(
        unsafe { rf_bytes_data(snap, &mut data, &mut len) },
        rf_status::RF_OK
    );
    // SAFETY: rf_bytes_data gave `len` readable bytes at `data`.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    // SAFETY: made by rf_guard_snapshot, freed once.
    unsafe { rf_bytes_free(snap) };
    assert!(bytes.starts_with(b"RFFS"), "a fleet snapshot");
    drop(nodes);
    let again = node(&s.url(), "cfleet", 0);
    // SAFETY: the guard is live; `bytes` is live for the call.
    let status = unsafe { rf_guard_restore(again.0, bytes.as_ptr(), bytes.len()) };
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
}

#[test]
fn fleet_calls_on_a_lone_guard_and_bad_fleet_tables_are_named() {
    let lone = G::from_toml("");
    let mut s = ptr::null_mut();
    // SAFETY: the guard is live; `s` is a local out-pointer.
    let status = unsafe { rf_guard_fleet_stats(lone.0, &mut s) };
    assert_eq!(status, rf_status::RF_ERR_INVALID);
    assert!(s.is_null());
    assert!(
        last_error().contains("not a fleet node"),
        "{}",
        last_error()
    );
    for (toml, named) in [
        ("[fleet]\nnodes = 0\n", "nodes"),
        ("[fleet]\nfail = \"sometimes\"\n", "fail"),
        ("[fleet]\nurl = \"http://not-redis\"\n", "url"),
    ] {
        let mut g = ptr::null_mut();
        // SAFETY: `toml` is live for the call; `g` is a local out-pointer.
        let status = unsafe { rf_guard_from_toml(toml.as_ptr().cast(), toml.len(), &mut g) };
        assert_eq!(status, rf_status::RF_ERR_CONFIG, "{toml}");
        assert!(g.is_null());
        let e = last_error();
        assert!(e.contains(named), "{toml}: {e}");
    }
}
