//! Shared intelligence in the core: what is exported (and what never is),
//! what an import does to requests, revocation, and keys.

use ringfence::guard::{Decision, Guard, GuardConfig, Reason, Request};
use ringfence::intel::{ConsortiumKey, ExportOptions, ImportIndicator};
use std::time::Duration;

const KEY: &[u8] = b"example consortium key: 32 bytes";

fn config(key: &[u8], seed: u64) -> GuardConfig {
    let mut c = GuardConfig::for_accounts(10_000);
    c.link.seed = seed;
    c.intel.key = Some(ConsortiumKey::new(key).unwrap());
    c.intel.default_trust = 1.0;
    // (Addresses are ignored by default; here every exported kind counts.)
    c.intel.ignore_kinds.clear();
    c
}

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

/// Provider A: a fleet of 10 accounts on one card and one rare client,
/// asking for reasoning (flagged); a company of 6 honest accounts sharing
/// its card; and one fleet account that also uses the company's office IP
/// with the company.
/// The value of one sample (`name{labels}`) of the guard's metrics.
fn metric(g: &Guard, sample: &str) -> f64 {
    let text = g.metrics();
    let line = text
        .lines()
        .find(|l| l.strip_prefix(sample).is_some_and(|v| v.starts_with(' ')))
        .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"));
    line[sample.len()..].trim().parse().unwrap()
}

fn provider_a() -> Guard {
    let (guard, clock) = Guard::for_replay(config(KEY, 11));
    for i in 0..400u64 {
        clock.set(Duration::from_secs(i * 5));
        let account = format!("fleet{}", i % 10);
        let prompt = format!(
            "You will be given a problem. Solve it completely. Think step by step and show all of your reasoning before the final answer. Problem: compute {} times {}",
            i, i + 7
        );
        let ip = if i % 10 == 0 {
            "203.0.113.9"
        } else {
            "45.83.10.2"
        };
        let v = guard.check(&req(
            &account,
            &[
                ("payment", "card-shared"),
                ("ja4", "rare-client"),
                ("ip", ip),
            ],
            &prompt,
        ));
        if v.allowed() {
            guard.settle(&v, 900);
        }
        let colleague = format!("staff{}", i % 6);
        let v = guard.check(&req(
            &colleague,
            &[("payment", "company-card"), ("ip", "203.0.113.9")],
            &format!("Summarise this meeting note number {i} for the team"),
        ));
        if v.allowed() {
            guard.settle(&v, 120);
        }
    }
    guard
}

#[test]
fn exports_the_operations_values_and_nothing_of_honest_crowds() {
    let a = provider_a();
    assert!(a.explain("fleet3").unwrap().signals.score >= a.config().deny_at);
    let key = ConsortiumKey::new(KEY).unwrap();
    let out = a.export_indicators(&ExportOptions::default()).unwrap();
    let has = |kind: &str, value: &str| {
        let t = key.value_token(kind, value.as_bytes());
        out.iter().any(|i| i.kind == kind && i.token == t)
    };
    assert!(has("payment", "card-shared"), "{out:?}");
    assert!(has("ja4", "rare-client"), "{out:?}");
    // The company's card and its office address (shared by one fleet
    // account with six honest ones) never leave.
    assert!(!has("payment", "company-card"));
    assert!(!has("ip", "203.0.113.9"));
    assert!(!has("ip24", "203.0.113"));
    for i in &out {
        assert!(
            i.flagged_share >= 0.95 && i.campaign_accounts >= 3.0,
            "{i:?}"
        );
        assert!(i.confidence > 0 && i.confidence <= 100);
    }
    // One operation.
    assert!(out.windows(2).all(|w| w[0].campaign == w[1].campaign));
    // A stricter k leaves nothing.
    let none = a
        .export_indicators(&ExportOptions {
            min_campaign_accounts: Some(50),
            ..ExportOptions::default()
        })
        .unwrap();
    assert!(none.is_empty());
}

fn to_import(a: &Guard, producer: &str, now: f64) -> Vec<ImportIndicator> {
    a.export_indicators(&ExportOptions::default())
        .unwrap()
        .into_iter()
        .map(|e| ImportIndicator {
            id: format!(
                "indicator--{}-{}",
                e.kind,
                ringfence::intel::hex(&e.token[..4])
            ),
            producer: producer.into(),
            producer_name: Some("Provider A".into()),
            kind: e.kind,
            token: e.token,
            confidence: e.confidence.max(60),
            modified: now,
            valid_until: Some(now + 86_400.0),
            revoked: false,
            campaign: Some("campaign--op".into()),
        })
        .collect()
}

#[test]
fn an_import_throttles_the_operation_from_its_first_requests_and_never_denies_alone() {
    let a = provider_a();
    let indicators = to_import(&a, "identity--a", 0.0);
    // Provider B: another local seed, the same consortium key.
    let (b, clock) = Guard::for_replay(config(KEY, 99));
    let report = b.import_indicators(&indicators).unwrap();
    assert_eq!(report.added, indicators.len());
    // New accounts on the operation's card, each under its own limit,
    // asking ordinary questions (nothing local against them).
    let (mut served, mut first_refusal) = (0, None);
    for i in 0..200u64 {
        clock.set(Duration::from_secs(1_000 + i));
        let account = format!("op-b-{}", i % 50);
        let v = b.check(&req(&account, &[("payment", "card-shared")], "hello"));
        assert!(v.reasons.contains(&Reason::SharedIndicator), "{v:?}");
        assert_ne!(
            v.decision,
            Decision::Deny,
            "an indicator alone never denies"
        );
        if v.allowed() {
            served += 1;
        } else if first_refusal.is_none() {
            first_refusal = Some(i);
        }
    }
    // They share one budget: the cluster's 20 a minute times (1 - weight)
    // of the card's indicator (confidence 100, trust 1: weight 1), and at
    // least the 2 a minute of one marked account: a burst of 2, then one
    // every 30 s. At one request a second the first refusal is the third.
    assert!(served <= 2 + 200 / 30 + 1, "served {served}");
    assert_eq!(first_refusal, Some(2));
    let m = b.indicator_of("op-b-7").unwrap();
    assert_eq!(m.producer, "identity--a");
    assert_eq!(m.kind, "payment");
    // `explain` names it, with the producer.
    let e = b.explain("op-b-7").unwrap();
    assert_eq!(e.indicator.as_ref(), Some(&m));
    let text = e.to_string();
    assert!(
        text.contains("shared_indicator") && text.contains("Provider A (identity--a)"),
        "{text}"
    );
    let matched = b.matched_indicators();
    assert_eq!(matched.iter().map(|m| m.count).sum::<u64>(), 200);
    // And the metrics count them.
    let n = indicators.len() as f64;
    assert_eq!(
        metric(&b, "ringfence_intel_indicators{state=\"active\"}"),
        n
    );
    assert_eq!(
        metric(&b, "ringfence_intel_indicators{state=\"revoked\"}"),
        0.0
    );
    assert_eq!(metric(&b, "ringfence_intel_matches_total"), 200.0);
    assert_eq!(metric(&b, "ringfence_intel_marked_accounts"), 50.0);
    assert!(metric(&a, "ringfence_intel_values") > 0.0);
    // An unrelated account is untouched.
    let v = b.check(&req("someone", &[("payment", "own-card")], "hello"));
    assert!(v.allowed() && v.reasons.is_empty(), "{v:?}");
}

#[test]
fn deny_alone_when_configured_and_revocation_and_keys() {
    let a = provider_a();
    let indicators = to_import(&a, "identity--a", 0.0);
    let mut c = config(KEY, 5);
    c.intel.deny_alone_at = Some(0.5);
    let (b, clock) = Guard::for_replay(c);
    b.import_indicators(&indicators).unwrap();
    clock.set(Duration::from_secs(100));
    let v = b.check(&req("x1", &[("ja4", "rare-client")], "hi"));
    assert_eq!(v.decision, Decision::Deny, "{v:?}");
    // The producer revokes: at once, nothing more.
    let revoked: Vec<ImportIndicator> = indicators
        .iter()
        .map(|i| ImportIndicator {
            revoked: true,
            modified: 50.0,
            ..i.clone()
        })
        .collect();
    // Someone else's revocation is ignored.
    let forged: Vec<ImportIndicator> = revoked
        .iter()
        .map(|i| ImportIndicator {
            producer: "identity--mallory".into(),
            ..i.clone()
        })
        .collect();
    assert_eq!(b.import_indicators(&forged).unwrap().revoked, 0);
    assert_eq!(
        b.check(&req("x1", &[("ja4", "rare-client")], "hi"))
            .decision,
        Decision::Deny
    );
    assert_eq!(
        b.import_indicators(&revoked).unwrap().revoked,
        indicators.len()
    );
    let v = b.check(&req("x1", &[("ja4", "rare-client")], "hi"));
    assert!(
        v.allowed() && !v.reasons.contains(&Reason::SharedIndicator),
        "{v:?}"
    );
    assert_eq!(
        metric(&b, "ringfence_intel_indicators{state=\"revoked\"}"),
        indicators.len() as f64
    );
    assert_eq!(
        metric(&b, "ringfence_intel_indicators{state=\"active\"}"),
        0.0
    );
    // Its marks go with it, not when they would have expired.
    assert_eq!(metric(&b, "ringfence_intel_marked_accounts"), 0.0);
    // The original, again, is older than the revocation: ignored.
    assert_eq!(b.import_indicators(&indicators).unwrap().added, 0);

    // Under another consortium key nothing matches.
    let (other, clock) = Guard::for_replay(config(b"another consortium key, 32 bytes", 5));
    other.import_indicators(&indicators).unwrap();
    clock.set(Duration::from_secs(100));
    let v = other.check(&req("y", &[("payment", "card-shared")], "hi"));
    assert!(v.reasons.is_empty(), "{v:?}");
}

#[test]
fn addresses_are_ignored_by_default() {
    let a = provider_a();
    let indicators = to_import(&a, "identity--a", 0.0);
    let mut c = config(KEY, 5);
    c.intel.ignore_kinds = ringfence::intel::IntelConfig::default().ignore_kinds;
    let (b, _clock) = Guard::for_replay(c);
    let r = b.import_indicators(&indicators).unwrap();
    let addresses = indicators
        .iter()
        .filter(|i| i.kind.split('+').any(|p| p == "ip" || p == "ip24"))
        .count();
    assert!(addresses > 0);
    assert_eq!(
        (r.added, r.ignored),
        (indicators.len() - addresses, addresses)
    );
}

#[test]
fn a_bad_import_is_refused_whole_and_untrusted_producers_are_ignored() {
    let a = provider_a();
    let mut indicators = to_import(&a, "identity--a", 0.0);
    let n = indicators.len();
    indicators[n - 1].confidence = 101;
    let (b, _clock) = Guard::for_replay(config(KEY, 5));
    let err = b.import_indicators(&indicators).unwrap_err();
    assert!(err.message.contains("confidence 101"), "{err}");
    assert!(
        err.message.contains(&format!("indicator {}", n - 1)),
        "{err}"
    );
    assert_eq!(b.intel_stats().imports, 0);
    // Trust 0 (the default for unknown producers): held, never matched.
    let mut c = config(KEY, 5);
    c.intel.default_trust = 0.0;
    let (b, _clock) = Guard::for_replay(c);
    let r = b
        .import_indicators(&to_import(&a, "identity--a", 0.0))
        .unwrap();
    assert_eq!(r.added, 0);
    let v = b.check(&req("z", &[("payment", "card-shared")], "hi"));
    assert!(v.reasons.is_empty());
    // Without a key there is nothing to do, and it says so.
    let (plain, _) = Guard::for_replay(GuardConfig::for_accounts(1_000));
    assert!(plain
        .import_indicators(&[])
        .unwrap_err()
        .message
        .contains("key_file"));
}

/// Template bands are hashed under a consortium-derived seed: another
/// provider with another secret seed recognises the operation's prompts.
#[test]
fn template_bands_match_across_providers_with_different_seeds() {
    let a = provider_a();
    let indicators = to_import(&a, "identity--a", 0.0);
    let templates: Vec<ImportIndicator> = indicators
        .into_iter()
        .filter(|i| i.kind == "template")
        .collect();
    assert!(!templates.is_empty());
    let mut c = config(KEY, 12345);
    c.intel.min_weight = 0.1;
    let (b, clock) = Guard::for_replay(c);
    assert_eq!(
        b.import_indicators(&templates).unwrap().added,
        templates.len()
    );
    clock.set(Duration::from_secs(50));
    let prompt = |n: u32| {
        format!("You will be given a problem. Solve it completely. Think step by step and show all of your reasoning before the final answer. Problem: compute {n} times 9008")
    };
    // A band is checked once two accounts present it (most prompts' bands
    // are their own): the first newcomer is not marked yet, the second is,
    // and then the first too.
    let v = b.check(&req("newcomer", &[], &prompt(9001)));
    assert!(v.reasons.is_empty(), "{v:?}");
    let v = b.check(&req("second", &[], &prompt(9002)));
    assert!(v.reasons.contains(&Reason::SharedIndicator), "{v:?}");
    let v = b.check(&req("newcomer", &[], &prompt(9003)));
    assert!(v.reasons.contains(&Reason::SharedIndicator), "{v:?}");
    assert_eq!(b.indicator_of("newcomer").unwrap().kind, "template");
    let v = b.check(&req(
        "poet",
        &[],
        "Write me a short poem about the sea at night, with rhymes",
    ));
    assert!(v.reasons.is_empty(), "{v:?}");
}

/// Two producers sharing one value: revoking one leaves the other's match.
#[test]
fn a_value_two_producers_share_survives_one_revocation() {
    let key = ConsortiumKey::new(KEY).unwrap();
    let one = |producer: &str, revoked: bool, modified: f64| ImportIndicator {
        id: format!("indicator--{producer}"),
        producer: producer.into(),
        producer_name: None,
        kind: "payment".into(),
        token: key.value_token("payment", b"card-9"),
        confidence: 90,
        modified,
        valid_until: Some(10_000.0),
        revoked,
        campaign: None,
    };
    let (b, clock) = Guard::for_replay(config(KEY, 5));
    b.import_indicators(&[one("a", false, 0.0), one("c", false, 0.0)])
        .unwrap();
    // Revocation is final: a later unrevoked version is ignored.
    let r = b.import_indicators(&[one("c", true, 1.0)]).unwrap();
    assert_eq!(r.revoked, 1);
    assert_eq!(
        b.import_indicators(&[one("c", false, 2.0)])
            .unwrap()
            .ignored,
        1
    );
    clock.set(Duration::from_secs(100));
    let v = b.check(&req("x", &[("payment", "card-9")], "hi"));
    assert!(v.reasons.contains(&Reason::SharedIndicator), "{v:?}");
    assert_eq!(b.indicator_of("x").unwrap().producer, "a");
    // The sighting's first match is the first request's time.
    let m = b.matched_indicators();
    assert_eq!((m.len(), m[0].first_seen), (1, 100.0));
}

fn exported_tokens(g: &Guard) -> Vec<(String, [u8; 32], u8)> {
    let mut v: Vec<_> = g
        .export_indicators(&ExportOptions::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.token, e.confidence))
        .collect();
    v.sort();
    v
}

/// A snapshot carries the values remembered for export and the imports
/// with their sightings; it is refused whole under another key, and a
/// guard without a key restores the rest.
#[test]
fn snapshots_carry_what_is_remembered_for_export_and_the_imports() {
    let a = provider_a();
    let before = exported_tokens(&a);
    assert!(!before.is_empty());
    let bytes = a.snapshot();
    let at = Guard::snapshot_time(&bytes).unwrap();
    for merge in [false, true] {
        let (r, clock) = Guard::for_replay(config(KEY, 11));
        clock.set(Duration::from_secs_f64(at));
        if merge {
            // (The merged links may have other roots: the clusters'
            // statistics follow them.)
            r.merge(&bytes).unwrap();
            assert_eq!(r.intel_stats().values, a.intel_stats().values);
            assert_eq!(exported_tokens(&r), before);
        } else {
            r.restore(&bytes).unwrap();
            assert!(
                r.snapshot() == bytes,
                "restoring and snapshotting again changed the bytes"
            );
            assert_eq!(exported_tokens(&r), before);
        }
    }
    // Another consortium key: refused, and nothing restored.
    let (other, _) = Guard::for_replay(config(b"another consortium key, 32 bytes", 11));
    let err = other.restore(&bytes).unwrap_err();
    assert!(err.message.contains("consortium key"), "{err}");
    assert_eq!(other.intel_stats().values, 0);
    assert!(other.explain("fleet3").is_none());
    // No key: the rest restores.
    let mut plain = config(KEY, 11);
    plain.intel.key = None;
    let (plain, _) = Guard::for_replay(plain);
    plain.restore(&bytes).unwrap();
    assert!(plain.explain("fleet3").is_some());

    // B's imports and their sightings survive a restart.
    let (b, clock) = Guard::for_replay(config(KEY, 99));
    b.import_indicators(&to_import(&a, "identity--a", 0.0))
        .unwrap();
    for i in 0..30u64 {
        clock.set(Duration::from_secs(100 + i));
        b.check(&req(
            &format!("op-b-{}", i % 10),
            &[("payment", "card-shared")],
            "hello",
        ));
    }
    let seen = b.matched_indicators();
    assert_eq!(seen.iter().map(|m| m.count).sum::<u64>(), 30);
    let bytes = b.snapshot();
    let (b2, clock) = Guard::for_replay(config(KEY, 99));
    clock.set(Duration::from_secs(129));
    b2.restore(&bytes).unwrap();
    assert_eq!(b2.intel_stats().imports, b.intel_stats().imports);
    assert_eq!(b2.matched_indicators(), seen);
    clock.set(Duration::from_secs(140));
    let v = b2.check(&req("op-b-new", &[("payment", "card-shared")], "hello"));
    assert!(v.reasons.contains(&Reason::SharedIndicator), "{v:?}");
    // A truncated snapshot is refused whole.
    let (b3, _) = Guard::for_replay(config(KEY, 99));
    assert!(b3.restore(&bytes[..bytes.len() - 20]).is_err());
    assert_eq!(b3.intel_stats().imports, 0);
}
