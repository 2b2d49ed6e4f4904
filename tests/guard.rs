//! The Guard's API: configuration, reasons, fingerprint quotas, explain.

use ringfence::guard::{Decision, Guard, GuardConfig, Reason, Request};
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

#[test]
fn the_account_limit_throttles_with_a_retry_time() {
    let (guard, clock) = Guard::for_replay(GuardConfig::default());
    clock.set(Duration::from_secs(10));
    for _ in 0..20 {
        assert!(guard.check(&req("a", &[], "hello there")).allowed());
    }
    let v = guard.check(&req("a", &[], "hello there"));
    assert_eq!(v.reasons, vec![Reason::AccountLimit]);
    assert_eq!(
        v.decision,
        Decision::Throttle {
            retry_after: Duration::from_secs(3)
        }
    );
}

#[test]
fn fingerprint_quotas_limit_a_shared_value() {
    let config = GuardConfig::from_toml("[fingerprint_requests_per_minute]\nip = 5\n").unwrap();
    let (guard, _clock) = Guard::for_replay(config);
    for i in 0..5 {
        assert!(guard
            .check(&req(&format!("acct{i}"), &[("ip", "198.51.100.7")], "hi"))
            .allowed());
    }
    let v = guard.check(&req("acct9", &[("ip", "198.51.100.7")], "hi"));
    assert!(!v.allowed());
    assert_eq!(v.reasons, vec![Reason::FingerprintLimit]);
    // Another address is not affected.
    assert!(guard
        .check(&req("acct9", &[("ip", "198.51.100.8")], "hi"))
        .allowed());
}

#[test]
fn a_linked_fleet_asking_for_reasoning_is_denied_and_explained() {
    let (guard, clock) = Guard::for_replay(GuardConfig::default());
    let mut last = None;
    for i in 0..400u64 {
        clock.set(Duration::from_secs(i * 5));
        let account = format!("fleet{}", i % 10);
        let prompt = format!(
            "You will be given a problem. Solve it completely. Think step by step and show all of your reasoning before the final answer. Problem: compute {} times {}",
            i, i + 7
        );
        let v = guard.check(&req(
            &account,
            &[("payment", "card-shared"), ("ja4", "rare-client")],
            &prompt,
        ));
        if v.allowed() {
            guard.settle(&v, 900);
        }
        last = Some(v);
    }
    let v = last.unwrap();
    assert_eq!(v.decision, Decision::Deny);
    assert!(v.reasons.contains(&Reason::SuspectedDistillation));
    assert_eq!(v.cluster.size, 10);
    let e = guard.explain("fleet3").unwrap();
    assert_eq!(e.members.len(), 9);
    assert_eq!(e.shared[0].kind, "payment");
    assert_eq!(e.contributors[0].0, "cot");
    let text = e.to_string();
    assert!(
        text.contains("cluster") && text.contains("payment"),
        "{text}"
    );
    assert!(guard.explain("nobody").is_none());
}

#[test]
fn allow_listed_accounts_get_no_cluster_penalty() {
    let mut config = GuardConfig::default();
    config.allow_list.insert("verified0".into());
    let (guard, clock) = Guard::for_replay(config);
    let mut verified_refused = 0;
    for i in 0..400u64 {
        clock.set(Duration::from_secs(i * 5));
        let account = format!("verified{}", i % 10);
        let v = guard.check(&req(
            &account,
            &[("payment", "card-shared")],
            "Think step by step and show all of your reasoning: compute this",
        ));
        if account == "verified0" && !v.allowed() {
            verified_refused += 1;
        }
    }
    assert_eq!(verified_refused, 0);
}

#[test]
fn bad_configuration_names_the_key() {
    for (toml, key) in [
        ("share_at = 1.5", "share_at"),
        ("deny_at = 0.3", "deny_at"),
        (
            "account_requests_per_minute = \"ten\"",
            "account_requests_per_minute",
        ),
        ("[link]\nzero_weight_from = 2.0", "zero_weight_from"),
        ("[score]\ncot_wieght = 1.0", "cot_wieght"),
    ] {
        let err = GuardConfig::from_toml(toml).unwrap_err().to_string();
        assert!(err.contains(key), "{toml:?}: {err}");
    }
}

#[test]
fn tokens_are_reserved_and_settled_at_their_actual_use() {
    let config = GuardConfig::from_toml("account_tokens_per_minute = 2000").unwrap();
    let (guard, clock) = Guard::for_replay(config);
    clock.set(Duration::from_secs(1));
    // 40 input + 500 max_tokens reserved; only 60 produced.
    let v = guard.check(&req("a", &[], "hello"));
    assert!(v.allowed() && v.reservation.is_some());
    guard.settle(&v, 60);
    // 2000 − 100 used: three more full reservations of 540 fit, a fourth does not.
    for i in 0..3 {
        let v = guard.check(&req("a", &[], "hello"));
        assert!(v.allowed(), "{i}: {v:?}");
    }
    let v = guard.check(&req("a", &[], "hello"));
    assert!(!v.allowed());
    assert_eq!(v.reasons, vec![Reason::AccountLimit]);
    // A request whose estimate can never fit is denied outright.
    let big = Request {
        max_tokens: 5000,
        ..req("b", &[], "hello")
    };
    assert_eq!(guard.check(&big).decision, Decision::Deny);
}

#[test]
fn snapshots_restore_the_whole_guard_byte_for_byte() {
    let (guard, clock) = Guard::for_replay(GuardConfig::default());
    for i in 0..400u64 {
        clock.set(Duration::from_secs(i * 5));
        let account = format!("fleet{}", i % 10);
        let prompt = format!(
            "Think step by step and show all of your reasoning. Problem: compute {i} times {}",
            i + 7
        );
        let v = guard.check(&req(
            &account,
            &[("payment", "card-shared"), ("ip", "45.83.10.2")],
            &prompt,
        ));
        if v.allowed() {
            guard.settle(&v, 900);
        }
        guard.check(&req(
            &format!("solo{i}"),
            &[("ip", &format!("73.1.{}.{}", i % 200, i % 250))],
            "hello there friend",
        ));
    }
    let bytes = guard.snapshot();
    let (restored, clock2) = Guard::for_replay(GuardConfig::default());
    clock2.set(Duration::from_secs(399 * 5));
    restored.restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(
        restored.explain("fleet3").unwrap(),
        guard.explain("fleet3").unwrap()
    );
    assert_eq!(restored.score_of("fleet1"), guard.score_of("fleet1"));

    // Truncated, corrupt or foreign snapshots: errors, and the guard stays fresh.
    let (fresh, _) = Guard::for_replay(GuardConfig::default());
    for cut in [0, 13, bytes.len() / 3, bytes.len() - 1] {
        assert!(fresh.restore(&bytes[..cut]).is_err());
    }
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    assert!(fresh
        .restore(&flipped)
        .unwrap_err()
        .to_string()
        .contains("checksum"));
    assert!(fresh.explain("fleet3").is_none());
    let other_seed = GuardConfig::from_toml("[link]\nseed = 7").unwrap();
    let (foreign, _) = Guard::for_replay(other_seed);
    assert!(foreign
        .restore(&bytes)
        .unwrap_err()
        .to_string()
        .contains("seed"));
    // A guard that already has state refuses to be overwritten.
    assert!(guard
        .restore(&bytes)
        .unwrap_err()
        .to_string()
        .contains("empty"));
}

/// Snapshots corrupted inside (with a valid checksum recomputed) are
/// rejected or restored, never a panic.
#[test]
fn resealed_corrupt_snapshots_never_panic() {
    use ringfence::sketch::Item;
    let (guard, clock) = Guard::for_replay(GuardConfig::default());
    for i in 0..60u64 {
        clock.set(Duration::from_secs(i));
        let v = guard.check(&req(
            &format!("a{}", i % 6),
            &[("payment", "c1"), ("device", &format!("d{}", i % 3))],
            "Think step by step about this",
        ));
        guard.settle(&v, 500);
    }
    let bytes = guard.snapshot();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bad = bytes.clone();
        let at = 6 + (x as usize % (bad.len() - 14));
        bad[at] ^= (x >> 40) as u8 | 1;
        let end = bad.len() - 8;
        let sum = bad[..end].sketch_hash(0);
        bad[end..].copy_from_slice(&sum.to_le_bytes());
        let (fresh, _) = Guard::for_replay(GuardConfig::default());
        let _ = fresh.restore(&bad);
    }
}

/// Two gateway nodes each see half of a fleet; merging one node's snapshot
/// into the other links the whole fleet and adds up every account's usage.
#[test]
fn merging_nodes_unions_links_and_adds_debts() {
    let (a, clock_a) = Guard::for_replay(GuardConfig::default());
    let (b, clock_b) = Guard::for_replay(GuardConfig::default());
    clock_a.set(Duration::from_secs(10));
    clock_b.set(Duration::from_secs(10));
    for i in 0..10u32 {
        let node = if i < 5 { &a } else { &b };
        let account = format!("f{i}");
        node.check(&req(&account, &[("payment", "card-x")], "hello there"));
    }
    // The account "shared" makes 10 requests on each node.
    for _ in 0..10 {
        a.check(&req("shared", &[], "hi"));
        b.check(&req("shared", &[], "hi"));
    }
    assert_eq!(a.explain("f0").unwrap().cluster.size, 5);
    a.merge(&b.snapshot()).unwrap();
    let e = a.explain("f0").unwrap();
    assert_eq!(e.cluster.size, 10, "{e}");
    // Counted by a tiny HyperLogLog (8 registers): 10 within a few.
    assert!((6.0..=15.0).contains(&e.shared[0].accounts), "{e}");
    // 10 + 10 of the 20 allowed per minute: the next request is refused.
    let v = a.check(&req("shared", &[], "hi"));
    assert_eq!(v.reasons, vec![Reason::AccountLimit]);
    // A bad snapshot changes nothing.
    let before = a.snapshot();
    assert!(a.merge(&before[..before.len() - 3]).is_err());
    assert_eq!(a.snapshot(), before);
}

/// A node merging another's snapshot keeps that node's cluster scores,
/// even where the merged links have another root account (a cluster's id).
#[test]
fn a_merged_cluster_keeps_its_score() {
    let (a, clock) = Guard::for_replay(GuardConfig::for_accounts(1_000));
    for i in 0..400u64 {
        clock.set(Duration::from_secs(i * 5));
        let account = format!("fleet{}", i % 10);
        let prompt = format!(
            "Think step by step and show all of your reasoning before the final answer: {i} times {}",
            i + 7
        );
        let v = a.check(&req(&account, &[("payment", "card-shared")], &prompt));
        if v.allowed() {
            a.settle(&v, 900);
        }
    }
    let score = a.explain("fleet3").unwrap().signals.score;
    assert!(score >= a.config().share_at, "{score}");
    let bytes = a.snapshot();
    let (b, clock) = Guard::for_replay(GuardConfig::for_accounts(1_000));
    clock.set(Duration::from_secs_f64(
        Guard::snapshot_time(&bytes).unwrap(),
    ));
    b.merge(&bytes).unwrap();
    let merged = b.explain("fleet3").unwrap();
    assert_eq!(merged.cluster.size, 10);
    assert!(
        (merged.signals.score - score).abs() < 0.05,
        "{score} then {merged}"
    );
}

fn fresh_req<'a>(
    account: &'a str,
    fps: &'a [(&'a str, &'a str)],
    prompt: Option<&'a str>,
) -> Request<'a> {
    Request {
        account,
        fingerprints: fps,
        prompt,
        system: None,
        model: Some("m"),
        input_tokens: 10,
        max_tokens: 10,
    }
}

/// A half-life shorter than a synchrony bucket is a valid configuration.
#[test]
fn a_short_half_life_is_fine() {
    let mut config = GuardConfig::for_accounts(1000);
    config.score.half_life_secs = 1.0;
    let (g, clock) = Guard::for_replay(config);
    clock.set(Duration::from_secs(100));
    g.check(&fresh_req("a", &[("device", "d1")], None));
    assert_eq!(
        g.check(&fresh_req("b", &[("device", "d1")], None))
            .cluster
            .size,
        2
    );
}

/// A snapshot restored into a process whose clock started later keeps its
/// clusters' scores (windows follow the shifted times).
#[test]
fn scores_survive_a_restore_into_a_new_process() {
    let config = GuardConfig::for_accounts(1000);
    let (g, clock) = Guard::for_replay(config.clone());
    let accounts: Vec<String> = (0..8).map(|i| format!("f{i}")).collect();
    let mut t = 0;
    for r in 0..400u64 {
        t = 86_400 + r * 5;
        clock.set(Duration::from_secs(t));
        let p = format!("Think step by step and show your reasoning about topic {r}");
        g.check(&fresh_req(
            &accounts[(r % 8) as usize],
            &[("payment", "card")],
            Some(&p),
        ));
    }
    let before = g.score_of("f0").1;
    assert!(before > 0.3, "{before}");
    let snapshot = g.snapshot();
    let (g2, clock2) = Guard::for_replay(config);
    g2.restore(&snapshot).unwrap();
    clock2.set(Duration::from_secs(1));
    let p = "Think step by step and show your reasoning about topic x";
    let v = g2.check(&fresh_req("f1", &[("payment", "card")], Some(p)));
    assert!(v.score > 0.3, "{} then {:?}", before, v.signals);
    let _ = t;
}

/// Snapshots with out-of-range fields (a recomputed checksum) are refused
/// or restored, and the guard keeps working: no overflow anywhere.
#[test]
fn crafted_snapshot_fields_are_harmless() {
    use ringfence::sketch::Item;
    let config = GuardConfig::for_accounts(1000);
    let (g, clock) = Guard::for_replay(config.clone());
    clock.set(Duration::from_secs(10));
    g.check(&fresh_req("a", &[("device", "d1")], None));
    g.check(&fresh_req("b", &[("device", "d1")], None));
    let bytes = g.snapshot();
    // Every 8-byte field set to its largest value, one at a time.
    for at in (6..bytes.len().saturating_sub(16)).step_by(4) {
        let mut bad = bytes.clone();
        bad[at..at + 8].copy_from_slice(&(u64::MAX / 3).to_le_bytes());
        let end = bad.len() - 8;
        let sum = bad[..end].sketch_hash(0);
        bad[end..].copy_from_slice(&sum.to_le_bytes());
        let (g2, clock2) = Guard::for_replay(config.clone());
        clock2.set(Duration::from_secs(10));
        if g2.restore(&bad).is_ok() {
            clock2.set(Duration::from_secs(200_000));
            g2.check(&fresh_req("b", &[("device", "d1")], None));
            g2.maintain();
            let _ = g2.explain("a");
        }
    }
}
