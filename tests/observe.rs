//! When evidence is recorded (`[observe] mode`): before the verdict
//! (`inline`), after it on the same thread (`after`), or on observer
//! threads (`background`). All three record the same evidence; the last two
//! decide on the account's standing, one request behind.

use ringfence::guard::{Decision, Guard, GuardConfig, ObserveMode, Request, Verdict};
use ringfence::limit::ManualClock;
use std::sync::Arc;
use std::time::Duration;

const CARD: (&str, &str) = ("payment", "card-shared");

fn guard(mode: ObserveMode) -> (Guard, Arc<ManualClock>) {
    let mut config = GuardConfig::for_accounts(10_000);
    config.observe.mode = mode;
    Guard::for_replay(config)
}

fn ask(guard: &Guard, account: &str, fps: &[(&str, &str)], i: u64) -> Verdict {
    let prompt = format!(
        "You will be given a problem. Solve it completely. Think step by step and show all of your reasoning before the final answer. Problem: compute {} times {}",
        i,
        i + 7
    );
    guard.check(&Request {
        account,
        fingerprints: fps,
        prompt: Some(&prompt),
        system: None,
        model: Some("m"),
        input_tokens: 40,
        max_tokens: 500,
    })
}

/// Ten accounts sharing a card ask for reasoning, 400 requests five seconds
/// apart; the verdicts. (The last comes once everything before it is
/// recorded: a background observer may lag the replay by any amount.)
fn fleet(guard: &Guard, clock: &ManualClock) -> Vec<Verdict> {
    (0..400u64)
        .map(|i| {
            clock.set(Duration::from_secs(i * 5));
            if i == 399 {
                guard.flush();
            }
            ask(
                guard,
                &format!("fleet{}", i % 10),
                &[CARD, ("ja4", "rare-client")],
                i,
            )
        })
        .collect()
}

#[test]
fn every_mode_records_the_same_evidence() {
    let mut scores = Vec::new();
    for mode in [
        ObserveMode::Inline,
        ObserveMode::After,
        ObserveMode::Background,
    ] {
        let (g, clock) = guard(mode);
        let verdicts = fleet(&g, &clock);
        assert_eq!(
            verdicts.last().unwrap().decision,
            Decision::Deny,
            "{mode:?}"
        );
        let s: Vec<(u64, u32, f64)> = (0..10)
            .map(|a| {
                let (c, score) = g.score_of(&format!("fleet{a}"));
                (c.id, c.size, score)
            })
            .collect();
        assert_eq!(s[0].1, 10, "{mode:?}");
        assert_eq!(g.backlog(), 0);
        scores.push(s);
    }
    // Recording does not depend on the decisions (nothing was settled), so
    // `inline` and `after` know exactly the same. In the background, a
    // request that finds its queue busy goes to the next and may be
    // recorded out of its turn, a few seconds of trace time early or late:
    // the same clusters, and scores that differ in the decay of those
    // seconds (3.5e-6 seen), far from any threshold.
    assert_eq!(scores[0], scores[1]);
    for (a, b) in scores[0].iter().zip(&scores[2]) {
        assert_eq!((a.0, a.1), (b.0, b.1));
        assert!((a.2 - b.2).abs() < 1e-3, "{a:?} {b:?}");
    }
}

#[test]
fn deciding_on_standing_lags_one_request() {
    for mode in [
        ObserveMode::Inline,
        ObserveMode::After,
        ObserveMode::Background,
    ] {
        let (g, clock) = guard(mode);
        fleet(&g, &clock);
        clock.set(Duration::from_secs(2001));
        let first = ask(&g, "newcomer", &[CARD], 1);
        g.flush();
        let second = ask(&g, "newcomer", &[CARD], 2);
        if mode == ObserveMode::Inline {
            // Linked by its card before its first verdict.
            assert_eq!(first.decision, Decision::Deny, "{mode:?}");
        } else {
            // Its first request is decided on what was known: nothing.
            assert!(first.allowed(), "{mode:?}: {first:?}");
            assert_eq!(first.cluster.size, 1);
        }
        assert_eq!(second.decision, Decision::Deny, "{mode:?}");
        assert_eq!(second.cluster.size, 11, "{mode:?}");
    }
}

/// Four threads, a queue of 64 requests that overflows (the overflow is
/// recorded on the request's thread): after a flush every account is
/// known, and dropping the guard stops its observer.
#[test]
fn a_full_queue_loses_nothing() {
    let config = GuardConfig::from_toml(
        "[observe]\nmode = \"background\"\nthreads = 2\nqueue = 64\n[link]\nmax_accounts = 20000\n",
    )
    .unwrap();
    let (g, clock) = Guard::for_replay(config);
    clock.set(Duration::from_secs(1));
    std::thread::scope(|s| {
        for t in 0..4 {
            let g = &g;
            s.spawn(move || {
                for i in 0..2000u64 {
                    let account = format!("t{t}-{i}");
                    let ip = format!("10.{t}.{}.{}", i / 250, i % 250);
                    let v = ask(g, &account, &[("ip", &ip)], i);
                    assert!(v.allowed());
                }
            });
        }
    });
    g.flush();
    assert_eq!(g.backlog(), 0);
    assert_eq!(g.link_stats().accounts, 8000);
    drop(g);
}

#[test]
fn observer_settings_are_checked() {
    for (toml, key) in [
        ("[observe]\nthreads = 0\n", "observe.threads"),
        ("[observe]\nqueue = 10\n", "observe.queue"),
        ("[observe]\nmode = \"later\"\n", "later"),
    ] {
        let err = GuardConfig::from_toml(toml).unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
}

/// A new account's first request, decided before it was recorded, still
/// counts its answer when settled.
#[test]
fn a_first_request_settled_in_the_background_counts_its_answer() {
    let (g, clock) = guard(ObserveMode::Background);
    clock.set(Duration::from_secs(10));
    let v = ask(&g, "newcomer", &[("ip", "192.0.2.9")], 1);
    assert!(v.allowed());
    g.flush();
    g.settle(&v, 900);
    let b = g.explain("newcomer").unwrap().behaviour.unwrap();
    assert!(b.mean_output > 800.0, "{b:?}");
}

/// What another node of a fleet saw: recorded as evidence, no quota spent;
/// its answer counted once it is known.
#[test]
fn a_request_another_node_decided_is_evidence_and_spends_no_quota() {
    let (g, clock) = guard(ObserveMode::Inline);
    clock.set(Duration::from_secs(10));
    let fps = [("payment", "card_shared_9")];
    let req = |account: &'static str| Request {
        account,
        fingerprints: &fps,
        prompt: None,
        system: None,
        model: None,
        input_tokens: 20,
        max_tokens: 100,
    };
    for _ in 0..50 {
        g.observe(&req("elsewhere"), None);
    }
    g.observe_answer("elsewhere", 20, 1_500);
    let b = g.explain("elsewhere").unwrap().behaviour.unwrap();
    assert!(b.requests > 40.0 && b.mean_output > 1_000.0, "{b:?}");
    // Linked to this node's own account through the card, and no quota
    // of either was spent by the other node's fifty requests.
    let v = g.check(&req("here"));
    assert!(v.allowed());
    assert_eq!(g.score_of("here").0, g.score_of("elsewhere").0);
    let v2 = g.check(&req("elsewhere"));
    assert!(v2.allowed(), "{v2:?}");
    // An answer for an account this guard never saw is left alone.
    g.observe_answer("stranger", 1, 1);
    assert!(g.explain("stranger").is_none());
}

#[test]
fn a_request_recorded_from_its_digest_is_recorded_as_the_whole_request() {
    use ringfence::guard::text_head;
    // One node decides; a second records the whole requests, a third only
    // their digests and the texts' heads. The two must know the same.
    let (origin, _) = guard(ObserveMode::Inline);
    let (whole, wc) = guard(ObserveMode::Inline);
    let (digested, dc) = guard(ObserveMode::Inline);
    let system = "   You are the extraction engine of an internal data pipeline. Answer in JSON only, with every field present and no prose around it.";
    for i in 0..300u64 {
        wc.set(Duration::from_secs(i * 3));
        dc.set(Duration::from_secs(i * 3));
        let account = format!("acct{}", i % 12);
        let device = format!("dev{}", i % 4);
        let prompt = format!(
            "Think step by step and show all of your reasoning. Template block {}: translate the passage about item {} into French, keeping the numbers exact.",
            i % 3,
            i
        );
        let fps = [("device", device.as_str()), ("ip", "203.0.113.9")];
        let req = Request {
            account: &account,
            fingerprints: &fps,
            prompt: Some(&prompt),
            system: (i % 2 == 0).then_some(system),
            model: Some("m"),
            input_tokens: 40,
            max_tokens: 500,
        };
        let digest = origin.digest(&req);
        assert!(digest.bands.is_some() && digest.cot, "{digest:?}");
        whole.observe(&req, Some(700));
        let heads = Request {
            prompt: req.prompt.map(text_head),
            system: req.system.map(text_head),
            ..req
        };
        assert!(heads.prompt.unwrap().len() < prompt.len());
        digested.observe_digested(&heads, &digest, Some(700));
    }
    for k in 0..12 {
        let account = format!("acct{k}");
        let (a, b) = (whole.explain(&account), digested.explain(&account));
        assert!(a.is_some());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{account}");
    }
    let (a, _) = whole.score_of("acct0");
    assert!(a.size >= 4, "the accounts are linked: {a:?}");
}
