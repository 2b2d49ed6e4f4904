//! Crowds: an operation too big for rarity-weighted linking is refused by
//! how its members behave, and honest crowds that share its values, or
//! behave alike for honest reasons, are served.

use ringfence::guard::{Guard, GuardConfig, Request};
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64;

/// A uniform number in [0, 1) from a counter.
fn unit(seed: u64, i: u64) -> f64 {
    (xxh3_64(&[seed.to_le_bytes(), i.to_le_bytes()].concat()) >> 11) as f64 / (1u64 << 53) as f64
}

/// Who sends a request.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Operation,
    Honest,
    /// An operation's account that starts late, once its crowd is known.
    NewOperation,
    /// An honest user that starts late, behind the operation's addresses.
    NewHonest,
}

struct Event {
    t: f64,
    who: Who,
    account: String,
    fingerprints: Vec<(String, String)>,
    system: Option<&'static str>,
    prompt: String,
    output: u32,
}

/// Replays `events` in time order; returns, per `Who` (in its order),
/// (requests, refused) over the events after `from` seconds.
fn replay(
    guard: &Guard,
    clock: &ringfence::limit::ManualClock,
    mut events: Vec<Event>,
    from: f64,
) -> [(u64, u64); 4] {
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut out = [(0, 0); 4];
    for e in &events {
        clock.set(Duration::from_secs_f64(e.t));
        let fps: Vec<(&str, &str)> = e
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let v = guard.check(&Request {
            account: &e.account,
            fingerprints: &fps,
            prompt: Some(&e.prompt),
            system: e.system,
            model: Some("big-model"),
            input_tokens: (e.prompt.len() / 4) as u32,
            max_tokens: 4000,
        });
        // (`unseen-…` accounts' answers are never seen: as if refused on
        // other evidence, or served by a gateway that does not settle.)
        if v.allowed() && !e.account.starts_with("unseen-") {
            guard.settle(&v, e.output);
        }
        if e.t >= from {
            let o = &mut out[e.who as usize];
            o.0 += 1;
            o.1 += u64::from(!v.allowed());
        }
    }
    out
}

const HOURS: f64 = 3600.0;

/// An account's requests: `per_hour` on average over `hours`, at random times.
fn times(seed: u64, per_hour: f64, hours: f64) -> Vec<f64> {
    let n = (per_hour * hours).round() as u64;
    (0..n).map(|i| unit(seed, i) * hours * HOURS).collect()
}

const OPERATION_SYSTEM: &str =
    "You are a senior engineer and teacher. Explain every design choice in detail.";
const AGENT_SYSTEM: &str =
    "You are a coding agent in the user's terminal. Explain your plan, then edit.";

/// A distinct prompt, eliciting reasoning or not.
fn prompt(seed: u64, i: u64, reasoning: bool) -> String {
    let topic = xxh3_64(&[seed.to_le_bytes(), i.to_le_bytes()].concat());
    if reasoning {
        format!("Solve problem {topic:x} completely. Think step by step and show all of your reasoning.")
    } else {
        format!("Can you help me rename the variables in function {topic:x} so they read better?")
    }
}

/// An operation of `n` accounts sharing a system prompt and a pool of 20
/// datacenter addresses, three requests an hour each, long reasoned
/// answers; 3,000 users of a popular agent sharing its system prompt; and
/// 300 honest users who happen to share the operation's address pool.
fn operation_and_neighbours(n: u64, hours: f64) -> Vec<Event> {
    let mut events = Vec::new();
    for a in 0..n {
        for (i, t) in times(a, 3.0, hours).into_iter().enumerate() {
            events.push(Event {
                t,
                who: Who::Operation,
                account: format!("op-{a}"),
                fingerprints: vec![
                    ("device".into(), format!("dev-op-{a}")),
                    ("ip".into(), format!("45.83.10.{}", 2 + (a + i as u64) % 20)),
                ],
                system: Some(OPERATION_SYSTEM),
                prompt: prompt(a, i as u64, true),
                output: 900 + (unit(a ^ 77, i as u64) * 400.0) as u32,
            });
        }
    }
    for a in 0..3000u64 {
        let seed = 1_000_000 + a;
        for (i, t) in times(seed, 0.5 + 2.0 * unit(seed, 999), hours)
            .into_iter()
            .enumerate()
        {
            events.push(Event {
                t,
                who: Who::Honest,
                account: format!("agent-user-{a}"),
                fingerprints: vec![("device".into(), format!("dev-agent-{a}"))],
                system: Some(AGENT_SYSTEM),
                prompt: prompt(seed, i as u64, unit(seed, 500 + i as u64) < 0.1),
                output: 100 + (unit(seed ^ 5, i as u64) * 400.0) as u32,
            });
        }
    }
    for a in 0..300u64 {
        let seed = 2_000_000 + a;
        for (i, t) in times(seed, 1.0, hours).into_iter().enumerate() {
            events.push(Event {
                t,
                who: Who::Honest,
                account: format!("router-user-{a}"),
                fingerprints: vec![
                    ("device".into(), format!("dev-router-{a}")),
                    ("ip".into(), format!("45.83.10.{}", 2 + (a + i as u64) % 20)),
                ],
                system: None,
                prompt: prompt(seed, i as u64, false),
                output: 100 + (unit(seed ^ 5, i as u64) * 400.0) as u32,
            });
        }
    }
    events
}

#[test]
fn a_big_operation_behind_a_shared_value_is_refused_and_its_honest_neighbours_are_not() {
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(20_000));
    let [op, honest, ..] = replay(
        &guard,
        &clock,
        operation_and_neighbours(400, 8.0),
        3.0 * HOURS,
    );
    // 400 accounts share the system prompt: too many for its rarity weight
    // to link them, and as a crowd they are refused after a couple of hours.
    assert!(
        op.1 * 10 >= op.0 * 9,
        "operation: {op:?} (requests, refused)"
    );
    assert_eq!(honest.1, 0, "honest: {honest:?} (requests, refused)");
    let e = guard.explain("op-7").unwrap();
    let crowd = e.crowd.as_ref().expect("a crowd");
    assert!(crowd.judgement.score >= 0.5, "{e}");
    assert!(crowd.judgement.members > 200.0, "{e}");
    assert!(e.signals.crowd >= 0.5 && e.signals.suspicion >= 0.5, "{e}");
    let text = e.to_string();
    assert!(text.contains("in the crowd behind"), "{text}");
    // An honest user of the operation's address pool is not suspicious,
    // whatever crowd it is in.
    let r = guard.explain("router-user-3").unwrap();
    assert!(r.signals.suspicion < 0.5 && r.signals.crowd == 0.0, "{r}");
}

#[test]
fn a_newcomer_is_read_against_its_crowds_habits() {
    // 600 accounts of an operation for four hours; then 100 more of its
    // accounts start, and 100 honest users start behind its addresses.
    let mut events = operation_and_neighbours(600, 6.0);
    let late = |a: u64, who: Who| {
        let seed = 3_000_000 + a;
        let op = who == Who::NewOperation;
        let name = if op { "new-op" } else { "new-user" };
        times(seed, 3.0, 1.0)
            .into_iter()
            .enumerate()
            .map(move |(i, t)| Event {
                t: 4.0 * HOURS + t,
                who,
                account: format!("{name}-{a}"),
                fingerprints: vec![
                    ("device".into(), format!("dev-{name}-{a}")),
                    ("ip".into(), format!("45.83.10.{}", 2 + (a + i as u64) % 20)),
                ],
                system: op.then_some(OPERATION_SYSTEM),
                prompt: prompt(seed, i as u64, op),
                output: if op { 1000 } else { 200 },
            })
    };
    for a in 0..100 {
        events.extend(late(a, Who::NewOperation));
        events.extend(late(a, Who::NewHonest));
    }
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(20_000));
    let [_, _, new_op, new_honest] = replay(&guard, &clock, events, 0.0);
    // Three requests each, in their first hour: on its own, an account that
    // new looks ordinary (`prior_requests`); as a member of the operation's
    // crowd, it is read against the crowd's habits from its first request.
    assert_eq!(new_op.0, 300);
    assert!(
        new_op.1 * 10 >= new_op.0 * 9,
        "{new_op:?} (requests, refused)"
    );
    // The honest newcomers ask for no reasoning: they are not taken for the
    // operation's kind, and are served.
    assert_eq!(new_honest, (300, 0), "(requests, refused)");
    let e = guard.explain("new-op-5").unwrap();
    let j = e.crowd.as_ref().expect("a crowd").judgement;
    assert!(j.habit_elicitation > 0.8 && j.habit_output > 900.0, "{j:?}");
}

#[test]
fn evidence_grows_with_the_operation() {
    let mut served = Vec::new();
    for n in [12u64, 60, 600] {
        let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(20_000));
        let [op, ..] = replay(
            &guard,
            &clock,
            operation_and_neighbours(n, 6.0),
            3.0 * HOURS,
        );
        served.push((op.0 - op.1) as f64 / op.0 as f64);
    }
    // The bigger the operation, the less of it is served.
    assert!(
        served[2] <= served[1] && served[1] <= served[0],
        "{served:?}"
    );
    assert!(served[2] < 0.05, "{served:?}");
}

/// `n` accounts named `{name}-{a}` of an operation sharing nothing (each
/// its own device and address), paraphrased prompts (no reasoning phrase),
/// long answers, a request every 25 min, from `from` hours to 10.
fn unshared_operation(name: &str, n: u64, from: f64, who: Who) -> Vec<Event> {
    let mut events = Vec::new();
    for a in 0..n {
        let seed = xxh3_64(name.as_bytes()) ^ a;
        for (i, t) in times(seed, 2.4, 10.0 - from).into_iter().enumerate() {
            events.push(Event {
                t: t + from * HOURS,
                who,
                account: format!("{name}-{a}"),
                fingerprints: vec![
                    ("device".into(), format!("dev-{name}-{a}")),
                    (
                        "ip".into(),
                        format!("73.{}.{}.{}", a % 200, a / 200, 1 + i % 250),
                    ),
                ],
                system: None,
                prompt: format!(
                    "Walk me through problem {:x} and justify each part.",
                    xxh3_64(&[seed, i as u64].map(u64::to_le_bytes).concat())
                ),
                output: 900 + (unit(seed ^ 77, i as u64) * 400.0) as u32,
            });
        }
    }
    events
}

/// 5,000 honest individuals, their answers seen unless `unseen`.
fn individuals(unseen: bool) -> Vec<Event> {
    let mut events = Vec::new();
    for a in 0..5000u64 {
        let seed = 3_000_000 + a;
        let per_hour = 0.2 + 3.0 * unit(seed, 999).powi(3);
        for (i, t) in times(seed, per_hour, 10.0).into_iter().enumerate() {
            events.push(Event {
                t,
                who: Who::Honest,
                account: format!("{}person-{a}", if unseen { "unseen-" } else { "" }),
                fingerprints: vec![("device".into(), format!("dev-person-{a}"))],
                system: None,
                prompt: prompt(seed, i as u64, unit(seed, 500 + i as u64) < 0.2),
                output: 100 + (unit(seed ^ 5, i as u64) * 500.0) as u32,
            });
        }
    }
    events
}

#[test]
fn an_operation_sharing_nothing_is_caught_by_how_alike_its_accounts_behave() {
    let mut events = unshared_operation("op", 1500, 0.0, Who::Operation);
    events.extend(individuals(false));
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(20_000));
    let [op, honest, ..] = replay(&guard, &clock, events, 5.0 * HOURS);
    assert!(
        op.1 * 10 >= op.0 * 8,
        "operation: {op:?} (requests, refused)"
    );
    assert_eq!(honest.1, 0, "honest: {honest:?} (requests, refused)");
    let e = guard.explain("op-11").unwrap();
    assert_eq!(
        e.crowd.as_ref().map(|c| c.kind.as_str()),
        Some("behaviour"),
        "{e}"
    );
}

/// An operation's accounts whose answers the guard never sees, because
/// they are refused from their first requests on independent evidence
/// (here, an imported indicator on their card), are unknown, not short:
/// they are judged with the accounts that ask as they do, and the crowd
/// keeps its size. Honest users whose answers are never seen (nothing
/// imported against them) are not pulled in.
#[test]
fn accounts_refused_on_an_import_are_judged_with_those_asking_alike() {
    use ringfence::intel::{ConsortiumKey, ImportIndicator};
    let mut events = unshared_operation("op", 1500, 0.0, Who::Operation);
    let mut unseen = unshared_operation("unseen-op", 300, 4.0, Who::NewOperation);
    for e in &mut unseen {
        e.fingerprints
            .push(("payment".into(), "card-unseen-op".into()));
    }
    events.extend(unseen);
    events.extend(individuals(true));
    let key = ConsortiumKey::new(b"a consortium key of 32 bytes....").unwrap();
    let mut c = GuardConfig::for_accounts(20_000);
    c.intel.key = Some(key.clone());
    c.intel.default_trust = 1.0;
    let (guard, clock) = Guard::for_replay(c);
    let card = key.token("payment", &|f: &mut dyn FnMut(&[u8])| f(b"card-unseen-op"));
    let report = guard
        .import_indicators(&[ImportIndicator {
            id: "indicator--card".into(),
            producer: "identity--a".into(),
            producer_name: None,
            kind: "payment".into(),
            token: card,
            confidence: 100,
            modified: 0.0,
            valid_until: None,
            revoked: false,
            campaign: None,
        }])
        .unwrap();
    assert_eq!(report.added, 1);
    let [_, honest, unseen_op, _] = replay(&guard, &clock, events, 6.0 * HOURS);
    assert!(guard.indicator_of("unseen-op-7").is_some());
    // Their own counts alone (busy, no reasoning asked for, no answer)
    // would put them in no crowd, and the indicator alone never denies.
    assert!(
        unseen_op.1 * 10 >= unseen_op.0 * 8,
        "operation, answers unseen: {unseen_op:?} (requests, refused)"
    );
    assert_eq!(honest.1, 0, "honest, answers unseen: {honest:?}");
    let e = guard.explain("unseen-op-7").unwrap();
    assert_eq!(
        e.crowd.as_ref().map(|c| c.kind.as_str()),
        Some("behaviour"),
        "{e}"
    );
}

const COMMON_SDK: &str = "t13d1516h2_8daaf6152771_02713d6af862";

/// `labs` evaluation labs of `per_lab` pipelines, each lab on its own
/// egress address, all on one cloud network and the most common SDK,
/// asking for reasoning over a benchmark of `questions`, a request a minute
/// each, around the clock, with long answers; and 3,000 people on the same
/// SDK.
fn evaluations(labs: u64, per_lab: u64, questions: u64, hours: f64) -> Vec<Event> {
    let mut events = Vec::new();
    for a in 0..3000u64 {
        let seed = 4_000_000 + a;
        for (i, t) in times(seed, 0.3 + 2.0 * unit(seed, 999), hours)
            .into_iter()
            .enumerate()
        {
            events.push(Event {
                t,
                who: Who::Honest,
                account: format!("person-{a}"),
                fingerprints: vec![
                    ("device".into(), format!("dev-person-{a}")),
                    ("ja4".into(), COMMON_SDK.into()),
                ],
                system: None,
                prompt: prompt(seed, i as u64, unit(seed, 500 + i as u64) < 0.1),
                output: 100 + (unit(seed ^ 5, i as u64) * 400.0) as u32,
            });
        }
    }
    for a in 0..labs * per_lab {
        let lab = a / per_lab;
        for (i, t) in times(a, 60.0, hours).into_iter().enumerate() {
            let q = xxh3_64(&[a, i as u64].map(u64::to_le_bytes).concat()) % questions;
            events.push(Event {
                t,
                who: Who::Honest,
                account: format!("eval-{a}"),
                fingerprints: vec![
                    ("device".into(), format!("dev-eval-{a}")),
                    (
                        "ip".into(),
                        format!("52.{}.{}.7", 10 + lab % 200, (lab * 7) % 250),
                    ),
                    ("asn".into(), "AS16509".into()),
                    ("ja4".into(), COMMON_SDK.into()),
                ],
                system: None,
                prompt: prompt(7 + lab, q, true),
                output: 900 + (unit(a ^ 77, i as u64) * 400.0) as u32,
            });
        }
    }
    events
}

/// Evaluation pipelines on the most common SDK, which a big operation
/// also uses (most of that SDK's accounts are the operation's): each
/// pipeline is suspicious and a member of the operation's crowd, but sends
/// dozens of times the requests of the operation's accounts, so the
/// crowd's verdict is not theirs (`crowd.pace_factor`).
#[test]
fn a_pipeline_far_busier_than_its_crowd_is_not_judged_as_one_of_it() {
    let mut events = evaluations(2, 2, 5000, 10.0);
    events.retain(|e| e.who == Who::Honest && e.account.starts_with("eval-"));
    for e in &mut events {
        e.who = Who::NewHonest;
    }
    let mut op = unshared_operation("op", 1500, 0.0, Who::Operation);
    for e in &mut op {
        e.fingerprints.push(("ja4".into(), COMMON_SDK.into()));
    }
    events.extend(op);
    let run = |pace_factor: f64| {
        let mut c = GuardConfig::for_accounts(20_000);
        c.crowd.pace_factor = pace_factor;
        let (guard, clock) = Guard::for_replay(c);
        let [op, _, _, evals] = replay(&guard, &clock, events_again(&events), 5.0 * HOURS);
        (op, evals)
    };
    let (op, evals) = run(GuardConfig::default().crowd.pace_factor);
    assert!(
        op.1 * 10 >= op.0 * 8,
        "operation: {op:?} (requests, refused)"
    );
    assert_eq!(evals.1, 0, "pipelines: {evals:?} (requests, refused)");
    // Any pace: the pipelines are taken for the operation.
    let (_, evals) = run(0.0);
    assert!(evals.1 * 2 >= evals.0, "pipelines, any pace: {evals:?}");
}

/// A copy of `events` (the replay consumes them).
fn events_again(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .map(|e| Event {
            account: e.account.clone(),
            fingerprints: e.fingerprints.clone(),
            prompt: e.prompt.clone(),
            ..*e
        })
        .collect()
}

#[test]
fn evaluation_pipelines_around_the_clock_are_not_an_operation() {
    // 30 labs of two pipelines each: every pipeline looks suspicious alone,
    // but no crowd of them shares anything an operator provisions.
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(20_000));
    let [_, honest, ..] = replay(&guard, &clock, evaluations(30, 2, 5000, 6.0), 0.0);
    let e = guard.explain("eval-3").unwrap();
    assert!(
        e.signals.suspicion >= 0.5,
        "each pipeline looks suspicious alone: {e}"
    );
    assert_eq!(honest.1, 0, "evaluations: {honest:?} (requests, refused)");
}

#[test]
fn a_lab_rerunning_its_benchmark_is_served_once_its_prompts_repeat() {
    // One lab's 40 pipelines on one egress, over a benchmark of 100
    // questions. Its first hours look like an operation's (a lab this size
    // belongs on the allow list); once each question has been asked
    // dozens of times over, its crowd no longer counts. (By nine hours,
    // each question has been asked over 200 times. Its pipelines are alike
    // from their first requests, so its crowd looks most uniform, and the
    // repeats take until about 8 h 40 min to outweigh that.)
    let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(20_000));
    let [_, honest, ..] = replay(&guard, &clock, evaluations(1, 40, 100, 12.0), 9.0 * HOURS);
    assert_eq!(
        honest.1, 0,
        "after nine hours: {honest:?} (requests, refused)"
    );
    let e = guard.explain("eval-3").unwrap();
    let crowd = e.crowd.as_ref();
    assert!(
        e.signals.crowd < 0.4 && crowd.is_none_or(|c| c.judgement.diversity < 0.01),
        "{e}"
    );
}
