//! The replay library: the trace format (good and bad lines), the replay
//! loop, and the report's numbers recomputed independently on a small
//! simulated scenario.

use ringfence::guard::GuardConfig;
use ringfence::limit::{ManualClock, Quota, RateLimiter};
use ringfence_lab::replay::{
    write_trace, AccountLine, DecisionLine, ReplayError, ReplayOptions, Replayer, TraceError,
    TraceLine,
};
use ringfence_lab::sim::{simulate, Record, Scenario};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

#[test]
fn a_full_line_parses_and_borrows_its_strings() {
    let text = r#"{"ts": 1793491205.054, "account": "acct_1", "fingerprints": {"ip": "192.0.2.7", "device": "dev_1"}, "prompt": "Say \"hi\"", "system": "be brief", "model": "model-a", "input_tokens": 12, "output_tokens": 340, "label": "campaign:coordinated", "cohort": "campaign"}"#;
    let t = TraceLine::parse(text, 1).unwrap();
    assert_eq!(t.ts, 1793491205.054);
    assert!(matches!(t.account, Cow::Borrowed("acct_1")));
    assert_eq!(
        t.fingerprints,
        vec![
            (Cow::Borrowed("ip"), Cow::Borrowed("192.0.2.7")),
            (Cow::Borrowed("device"), Cow::Borrowed("dev_1")),
        ]
    );
    // An escaped string cannot borrow; it is unescaped.
    assert!(matches!(t.prompt, Some(Cow::Owned(ref p)) if p == "Say \"hi\""));
    assert_eq!(t.system.as_deref(), Some("be brief"));
    assert_eq!(t.model.as_deref(), Some("model-a"));
    assert_eq!((t.input_tokens, t.output_tokens), (Some(12), Some(340)));
    assert_eq!(t.label.as_deref(), Some("campaign:coordinated"));
    assert_eq!(t.cohort.as_deref(), Some("campaign"));
}

#[test]
fn only_ts_and_account_are_required_and_unknown_fields_are_ignored() {
    let t = TraceLine::parse(
        r#"{"request_id": 9, "ts": 0, "extra": {"nested": [1, {"a": null}]}, "account": "a", "prompt": null, "tags": ["x"]}"#,
        1,
    )
    .unwrap();
    assert_eq!(t.ts, 0.0);
    assert_eq!(t.account, "a");
    assert!(t.fingerprints.is_empty());
    assert_eq!(t.prompt, None);
    assert_eq!((t.input_tokens, t.output_tokens), (None, None));
    assert_eq!(t.label, None);
}

#[test]
fn fingerprint_values_are_strings_or_arrays_of_strings() {
    let t = TraceLine::parse(
        r#"{"ts": 1, "account": "a", "fingerprints": {"ip": ["192.0.2.1", "192.0.2.2"], "device": "d", "card": [], "asn": null}}"#,
        1,
    )
    .unwrap();
    let pairs: Vec<(&str, &str)> = t
        .fingerprints
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    assert_eq!(
        pairs,
        [("ip", "192.0.2.1"), ("ip", "192.0.2.2"), ("device", "d")]
    );
}

#[test]
fn bad_lines_name_the_line_the_column_and_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"account": "a"}"#, "line 7, column 16: missing field `ts`"),
        (r#"{"ts": 1}"#, "line 7, column 9: missing field `account`"),
        (r#"{"ts": "soon", "account": "a"}"#, "line 7, column 13: invalid type: string \"soon\", expected `ts` as a number of seconds since the epoch"),
        (r#"{"ts": -1.5, "account": "a"}"#, "line 7, column 11: `ts` must be a finite, non-negative number of seconds since the epoch, not -1.5"),
        (r#"{"ts": null, "account": "a"}"#, "line 7, column 11: invalid type: null, expected `ts` as a number of seconds since the epoch"),
        (r#"{"ts": 1e999, "account": "a"}"#, "line 7, column 12: number out of range"),
        (r#"{"ts": 1, "account": 5}"#, "line 7, column 22: invalid type: integer `5`, expected `account` as a string"),
        (r#"{"ts": 1, "account": ""}"#, "line 7, column 24: `account` must not be empty"),
        (r#"{"ts": 1, "account": "a", "input_tokens": -3}"#, "line 7, column 44: invalid value: integer `-3`, expected `input_tokens` as an integer from 0 to 4294967295"),
        (r#"{"ts": 1, "account": "a", "output_tokens": 1.5}"#, "line 7, column 46: invalid type: floating point `1.5`, expected `output_tokens` as an integer from 0 to 4294967295"),
        (r#"{"ts": 1, "account": "a", "input_tokens": 4294967296}"#, "line 7, column 52: invalid value: integer `4294967296`, expected `input_tokens` as an integer from 0 to 4294967295"),
        (r#"{"ts": 1, "account": "a", "prompt": ["x"]}"#, "line 7, column 37: invalid type: sequence, expected `prompt` as a string"),
        (r#"{"ts": 1, "account": "a", "fingerprints": {"ip": 3}}"#, "line 7, column 50: invalid type: integer `3`, expected fingerprint `ip` as a string or an array of strings"),
        (r#"{"ts": 1, "account": "a", "fingerprints": {"ip": ["x", 4]}}"#, "line 7, column 56: invalid type: integer `4`, expected fingerprint `ip`'s values as strings"),
        (r#"{"ts": 1, "account": "a", "fingerprints": "ip"}"#, "line 7, column 46: invalid type: string \"ip\", expected `fingerprints` as an object of kind → string or array of strings"),
        (r#"{"ts": 1, "ts": 2, "account": "a"}"#, "line 7, column 14: duplicate field `ts`"),
        (r#"[1, 2]"#, "line 7, column 1: invalid type: sequence, expected a JSON object (one request)"),
        (r#"{"ts": 1, "account": "a""#, "line 7, column 24: not valid JSON (EOF while parsing an object)"),
        (r#"{"ts": 1, "account": "a"} {}"#, "line 7, column 27: not valid JSON (trailing characters)"),
        ("ts=1 account=a", "line 7, column 2: not valid JSON (expected ident)"),
        ("account=a", "line 7, column 1: not valid JSON (expected value)"),
    ];
    for (line, message) in cases {
        assert_eq!(
            TraceLine::parse(line, 7).unwrap_err().to_string(),
            *message,
            "{line}"
        );
    }
}

/// Replays `text` through a guard with `config`, collecting `each` of the
/// decisions.
fn replay_with<T>(
    config: GuardConfig,
    options: ReplayOptions,
    text: &[u8],
    mut each: impl FnMut(&DecisionLine<'_>) -> T,
) -> (Replayer, Result<Vec<T>, ReplayError>) {
    let mut r = Replayer::new(config, options);
    let mut out = Vec::new();
    let result = r.replay_reader(
        text,
        |d| {
            out.push(each(d));
            Ok(())
        },
        |_| {},
    );
    (r, result.map(|()| out))
}

/// The numbers of the lines `text` gets decisions for.
fn replay_text(text: &str, options: ReplayOptions) -> (Replayer, Result<Vec<u64>, ReplayError>) {
    replay_with(GuardConfig::default(), options, text.as_bytes(), |d| d.line)
}

const MIXED: &str = "{\"ts\": 10, \"account\": \"a\"}\n\
                     \n\
                     {\"ts\": 11, \"account\": \"b\", \"input_tokens\": \"many\"}\r\n\
                     {\"ts\": 12, \"account\": \"c\", \"label\": \"benign\"}\r\n\
                     \u{0}\u{ff}\n\
                     {\"ts\": 9, \"account\": \"a\"}";

#[test]
fn a_bad_line_stops_the_replay_with_its_number() {
    let (r, result) = replay_text(MIXED, ReplayOptions::default());
    match result {
        Err(ReplayError::Trace(e)) => assert_eq!(
            e,
            TraceError {
                line: 3,
                column: 49,
                message: "invalid type: string \"many\", expected `input_tokens` as an integer from 0 to 4294967295".into()
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.report().requests, 1);
}

#[test]
fn skip_bad_counts_and_skips_bad_lines_and_blank_lines_are_ignored() {
    let (r, result) = replay_text(
        MIXED,
        ReplayOptions {
            skip_bad: true,
            ..ReplayOptions::default()
        },
    );
    // The decisions name the trace lines they answer.
    assert_eq!(result.unwrap(), vec![1, 4, 6]);
    let (bad, first) = r.bad_lines();
    assert_eq!(bad, 2);
    assert_eq!((first[0].line, first[1].line), (3, 5));
    assert_eq!(
        first[1].to_string(),
        "line 5, column 1: not valid JSON (expected value)"
    );
    let report = r.report();
    assert_eq!(
        (
            report.lines,
            report.requests,
            report.bad_lines,
            report.blank_lines
        ),
        (6, 3, 2, 1)
    );
    assert_eq!(report.out_of_order, 1);
    assert_eq!(report.accounts, 2);
    assert!(report.evaluation.is_some(), "line 4 has a label");
}

#[test]
fn invalid_utf8_is_a_bad_line() {
    let mut r = Replayer::new(GuardConfig::default(), ReplayOptions::default());
    let text: &[u8] = b"{\"ts\": 1, \"account\": \"a\"}\n{\"ts\": 2, \"account\": \"\xff\"}\n";
    match r.replay_reader(text, |_| Ok(()), |_| {}) {
        Err(ReplayError::Trace(e)) => {
            assert_eq!(e.to_string(), "line 2, column 23: not valid UTF-8")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn time_never_goes_backwards_and_huge_gaps_do_not_panic() {
    let text = "{\"ts\": 100, \"account\": \"a\"}\n\
                {\"ts\": 50, \"account\": \"a\"}\n\
                {\"ts\": 1e15, \"account\": \"a\"}\n\
                {\"ts\": 0, \"account\": \"b\"}\n";
    let (r, result) = replay_text(text, ReplayOptions::default());
    assert_eq!(result.unwrap().len(), 4);
    let report = r.report();
    assert_eq!(report.out_of_order, 2);
    assert_eq!(report.trace_secs, 1e15 - 100.0);
    assert!(report.evaluation.is_none(), "no labels");
}

#[test]
fn input_tokens_default_to_a_quarter_of_the_prompt_and_output_settles() {
    // An account token quota of 100 per minute: a 400-byte prompt (100
    // tokens estimated) plus max_tokens 0 fits once; a second does not.
    let config = GuardConfig {
        account_tokens_per_minute: 100,
        ..GuardConfig::default()
    };
    let prompt = "x".repeat(400);
    let text = format!(
        "{{\"ts\": 1, \"account\": \"a\", \"prompt\": \"{prompt}\"}}\n\
         {{\"ts\": 1, \"account\": \"a\", \"prompt\": \"{prompt}\"}}\n"
    );
    let options = ReplayOptions {
        max_tokens: 0,
        ..ReplayOptions::default()
    };
    let (_, decisions) = replay_with(config, options, text.as_bytes(), |d| {
        (d.decision, d.reasons.to_vec())
    });
    let decisions = decisions.unwrap();
    assert_eq!(decisions[0].0, "allow");
    assert_eq!(decisions[1].0, "throttle");
    assert_eq!(
        serde_json::to_string(&decisions[1].1).unwrap(),
        "[\"account_limit\"]"
    );
}

// ---------------------------------------------------------------------------
// The report's numbers on a small scenario, recomputed from the decisions.
// ---------------------------------------------------------------------------

struct Small {
    trace: Vec<Record>,
    decisions: Vec<Value>,
    accounts: Vec<AccountLine>,
    report: Value,
}

fn small() -> &'static Small {
    static SMALL: OnceLock<Small> = OnceLock::new();
    SMALL.get_or_init(|| {
        let trace = simulate(&Scenario::builtin("default").unwrap().scaled(0.05));
        let mut jsonl = Vec::new();
        write_trace(&trace, &mut jsonl).unwrap();
        let (r, decisions) = replay_with(
            GuardConfig::default(),
            ReplayOptions::default(),
            &jsonl,
            |d| serde_json::to_value(d).unwrap(),
        );
        let decisions = decisions.unwrap();
        Small {
            accounts: r.accounts(),
            report: serde_json::to_value(r.report()).unwrap(),
            trace,
            decisions,
        }
    })
}

fn refused_by_policy(d: &Value) -> bool {
    d["decision"] != "allow"
        && d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r != "account_limit")
}

#[test]
fn the_report_counts_what_the_decisions_say() {
    let s = small();
    let (trace, decisions, report) = (&s.trace, &s.decisions, &s.report);
    assert_eq!(decisions.len(), trace.len());
    assert_eq!(report["requests"], trace.len() as u64);
    for (i, (d, r)) in decisions.iter().zip(trace).enumerate() {
        assert_eq!(d["line"], i as u64 + 1);
        assert_eq!(d["account"], r.account.as_str());
        assert_eq!(d["cluster"].as_str().unwrap().len(), 16);
        let throttled = d["decision"] == "throttle";
        assert_eq!(d["retry_after"].is_number(), throttled);
    }
    let n = |what: &str| decisions.iter().filter(|d| d["decision"] == what).count() as u64;
    assert_eq!(report["allowed"], n("allow"));
    assert_eq!(report["throttled"], n("throttle"));
    assert_eq!(report["denied"], n("deny"));
    assert!(n("deny") > 0, "the campaign is refused at this scale");

    // Campaign served, overall and per operation; the baseline recomputed
    // with its own limiter.
    let clock = Arc::new(ManualClock::new());
    let baseline = RateLimiter::builder(Quota::per_minute(20))
        .clock(clock.clone())
        .build();
    let mut per_op: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for (d, r) in decisions.iter().zip(trace) {
        clock.set_nanos(((r.ts - trace[0].ts) * 1e9) as u64);
        let base = baseline.check(r.account.as_str(), 1).is_allowed();
        if let Some(op) = r.label.strip_prefix("campaign:") {
            let e = per_op.entry(op).or_default();
            e.0 += 1;
            e.1 += u64::from(d["decision"] == "allow");
            e.2 += u64::from(base);
        }
    }
    let campaign = &report["evaluation"]["campaign"];
    let total: u64 = per_op.values().map(|e| e.0).sum();
    assert_eq!(campaign["requests"], total);
    assert_eq!(
        campaign["served"],
        per_op.values().map(|e| e.1).sum::<u64>()
    );
    assert_eq!(
        campaign["baseline_served"],
        per_op.values().map(|e| e.2).sum::<u64>()
    );
    assert_eq!(
        campaign["baseline_served"], total,
        "every campaign account stays under its per-account limit"
    );
    for (op, (req, served, base)) in &per_op {
        let o = &campaign["operations"][op];
        assert_eq!(o["requests"], *req, "{op}");
        assert_eq!(o["served"], *served, "{op}");
        assert_eq!(o["baseline_served"], *base, "{op}");
        assert_eq!(o["served_share"], *served as f64 / *req as f64, "{op}");
    }
    assert_eq!(per_op.len(), 3);

    // Time to detection: the index of each operation's first request
    // refused for a reason other than the account's own limit.
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut first: HashMap<&str, u64> = HashMap::new();
    for (d, r) in decisions.iter().zip(trace) {
        if let Some(op) = r.label.strip_prefix("campaign:") {
            let k = seen.entry(op).or_default();
            if refused_by_policy(d) {
                first.entry(op).or_insert(*k);
            }
            *k += 1;
        }
    }
    for op in per_op.keys() {
        let got = &campaign["operations"][op]["first_refused"];
        match first.get(op) {
            Some(k) => assert_eq!(got["requests_before"], *k, "{op}"),
            None => assert!(got.is_null(), "{op}"),
        }
    }
}

#[test]
fn the_report_counts_benign_refusals_and_flags_per_cohort() {
    let s = small();
    let (trace, decisions, report) = (&s.trace, &s.decisions, &s.report);
    let e = &report["evaluation"];
    // Benign accounts: those with no campaign-labelled request.
    let campaign_accounts: std::collections::HashSet<&str> = trace
        .iter()
        .filter(|r| r.label.starts_with("campaign:"))
        .map(|r| r.account.as_str())
        .collect();
    let (mut benign, mut refused, mut mixed) = (0u64, 0u64, 0u64);
    for (d, r) in decisions.iter().zip(trace) {
        if r.label == "benign" {
            if campaign_accounts.contains(r.account.as_str()) {
                mixed += 1;
            } else {
                benign += 1;
                refused += u64::from(refused_by_policy(d));
            }
        }
    }
    assert_eq!(e["benign"]["requests"], benign);
    assert_eq!(e["benign"]["refused"], refused);
    assert_eq!(e["campaign_genuine_traffic"]["requests"], mixed);
    assert!(mixed > 0, "the reseller mixes genuine traffic in");

    // Flagged accounts per cohort, from the accounts lines.
    let cohort: HashMap<&str, &str> = trace
        .iter()
        .map(|r| (r.account.as_str(), r.cohort.as_str()))
        .collect();
    let mut flagged: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for a in &s.accounts {
        let c = if campaign_accounts.contains(a.account.as_str()) {
            "(campaign)"
        } else {
            cohort[a.account.as_str()]
        };
        let f = flagged.entry(c).or_default();
        f.0 += 1;
        f.1 += u64::from(a.flagged);
        assert_eq!(
            a.flagged,
            a.cluster_size >= 3 && a.score >= 0.5,
            "{}",
            a.account
        );
    }
    assert_eq!(
        s.accounts.len() as u64,
        report["accounts"].as_u64().unwrap()
    );
    let (n, f) = flagged.remove("(campaign)").unwrap();
    assert_eq!(e["campaign"]["accounts"], n);
    assert_eq!(e["campaign"]["accounts_flagged"], f);
    assert!(f > 0);
    let cohorts = e["benign_cohorts"].as_object().unwrap();
    assert_eq!(cohorts.len(), flagged.len());
    for (c, (n, f)) in &flagged {
        assert_eq!(cohorts[*c]["accounts"], *n, "{c}");
        assert_eq!(cohorts[*c]["flagged"], *f, "{c}");
    }
    assert_eq!(
        e["benign"]["accounts"],
        flagged.values().map(|x| x.0).sum::<u64>()
    );
}

#[test]
fn pairwise_precision_and_recall_match_a_brute_force_count() {
    let s = small();
    let op: HashMap<&str, &str> = s
        .trace
        .iter()
        .filter_map(|r| Some((r.account.as_str(), r.label.strip_prefix("campaign:")?)))
        .collect();
    let (mut linked, mut same, mut both) = (0u64, 0u64, 0u64);
    let a = &s.accounts;
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let (x, y) = (op.get(a[i].account.as_str()), op.get(a[j].account.as_str()));
            if x.is_none() && y.is_none() {
                continue;
            }
            let together = a[i].cluster == a[j].cluster;
            let same_op = x.is_some() && x == y;
            linked += u64::from(together);
            same += u64::from(same_op);
            both += u64::from(together && same_op);
        }
    }
    let c = &s.report["evaluation"]["clusters"];
    assert_eq!(c["linked_pairs"], linked);
    assert_eq!(c["same_operation_pairs"], same);
    assert_eq!(c["correct_pairs"], both);
    assert_eq!(c["pairwise_precision"], both as f64 / linked as f64);
    assert_eq!(c["pairwise_recall"], both as f64 / same as f64);
    assert!(same > 0 && linked > 0);
}

/// `v` without its `score` fields, each checked against `other`'s within
/// `1e-3`: two guards replaying the same trace do not compute bit-identical
/// scores (differences of about 2e-5 have been seen), though every decision,
/// cluster and count agrees.
fn without_scores(v: &Value, other: &Value) -> Value {
    match (v, other) {
        (Value::Array(a), Value::Array(b)) => Value::Array(
            a.iter()
                .zip(b.iter().chain(std::iter::repeat(&Value::Null)))
                .map(|(x, y)| without_scores(x, y))
                .collect(),
        ),
        (Value::Object(o), Value::Object(p)) => Value::Object(
            o.iter()
                .filter(|(k, x)| {
                    if k.as_str() != "score" {
                        return true;
                    }
                    let y = p.get(k.as_str()).and_then(Value::as_f64).unwrap();
                    assert!((x.as_f64().unwrap() - y).abs() < 1e-3, "{x} vs {y}");
                    false
                })
                .map(|(k, x)| {
                    (
                        k.clone(),
                        without_scores(x, p.get(k).unwrap_or(&Value::Null)),
                    )
                })
                .collect(),
        ),
        (v, _) => v.clone(),
    }
}

#[test]
fn replaying_records_directly_decides_as_replaying_their_json() {
    let s = small();
    let mut r = Replayer::new(GuardConfig::default(), ReplayOptions::default());
    r.replay_records(&s.trace);
    let report = serde_json::to_value(r.report()).unwrap();
    for key in ["requests", "allowed", "throttled", "denied", "evaluation"] {
        assert_eq!(
            without_scores(&report[key], &s.report[key]),
            without_scores(&s.report[key], &report[key]),
            "{key}"
        );
    }
    let accounts = r.accounts();
    assert_eq!(accounts.len(), s.accounts.len());
    for (a, b) in accounts.iter().zip(&s.accounts) {
        assert_eq!(
            (
                &a.account,
                a.cluster,
                a.cluster_size,
                a.flagged,
                a.requests,
                a.refused
            ),
            (
                &b.account,
                b.cluster,
                b.cluster_size,
                b.flagged,
                b.requests,
                b.refused
            )
        );
        assert!((a.score - b.score).abs() < 1e-3, "{}", a.account);
    }
}

// ---------------------------------------------------------------------------
// No input makes the replay panic.
// ---------------------------------------------------------------------------

const VALID: &str = r#"{"ts": 1793491205.054, "account": "acct_1", "fingerprints": {"ip": "192.0.2.7", "device": ["d1", "d2"]}, "prompt": "Think step by step and show all reasoning", "system": "s", "model": "m", "input_tokens": 12, "output_tokens": 340, "label": "campaign:x", "cohort": "c"}"#;

fn garbage_line() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let fields = prop::sample::select(vec![
        "ts",
        "account",
        "fingerprints",
        "prompt",
        "system",
        "model",
        "input_tokens",
        "output_tokens",
        "label",
        "cohort",
    ]);
    let values = prop::sample::select(vec![
        "null",
        "-1",
        "0",
        "1e308",
        "-0.0",
        "\"\"",
        "\"x\"",
        "[]",
        "{}",
        "true",
        "4294967296",
        "18446744073709551616",
        "1.5",
        "\"\\u0000\\ud800\"",
        "[1, \"a\"]",
        "{\"ip\": [null]}",
        "{\"\": \"\"}",
    ]);
    prop_oneof![
        any::<String>(),
        // One field replaced by a value of the wrong kind (or range).
        (fields, values).prop_map(|(f, v)| {
            let mut t: serde_json::Map<String, Value> = serde_json::from_str(VALID).unwrap();
            t.insert(
                f.to_string(),
                serde_json::from_str(v).unwrap_or(Value::Null),
            );
            let text = serde_json::to_string(&t).unwrap();
            // Unparseable replacement values go in raw.
            text.replace("null", v)
        }),
        // A character replaced by one that matters to JSON.
        (
            0..VALID.len(),
            prop::sample::select(vec![
                '{', '}', '[', ']', '"', ',', ':', '\\', '-', 'e', '9', ' ', '\u{0}', 'é'
            ])
        )
            .prop_map(|(i, c)| {
                let mut s: Vec<char> = VALID.chars().collect();
                let i = i.min(s.len() - 1);
                s[i] = c;
                s.into_iter().collect()
            }),
        // Truncated.
        (0..VALID.len()).prop_map(|i| VALID.chars().take(i).collect()),
        Just(VALID.to_string()),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    #[test]
    fn no_input_makes_the_replay_panic(lines in proptest::collection::vec(garbage_line(), 1..12)) {
        let config = GuardConfig { limiter_capacity: 1024, ..GuardConfig::default() };
        let mut r = Replayer::new(config, ReplayOptions { skip_bad: true, ..ReplayOptions::default() });
        let text = lines.join("\n");
        let mut decided = 0u64;
        r.replay_reader(text.as_bytes(), |_| { decided += 1; Ok(()) }, |_| {}).unwrap();
        let report = r.report();
        proptest::prop_assert_eq!(report.requests, decided);
        proptest::prop_assert_eq!(report.requests + report.bad_lines + report.blank_lines, report.lines);
        let _ = serde_json::to_string(&report).unwrap();
        // And without --skip-bad: an error or a clean finish, never a panic.
        let mut r = Replayer::new(GuardConfig { limiter_capacity: 1024, ..GuardConfig::default() }, ReplayOptions::default());
        let _ = r.replay_reader(text.as_bytes(), |_| Ok(()), |_| {});
    }
}
