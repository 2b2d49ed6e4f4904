//! The request contract, answered the same way from Rust, C and Python.
//!
//! `tests/contract/cases.json` lists requests and what the guard answers
//! each: a verdict (decision, reasons, headers) or a contract error naming
//! the field. This test holds the core to it; `bindings/c/tests/contract.rs`
//! and `python/tests/test_contract.py` hold the C ABI and the Python package
//! to the same file. `RINGFENCE_BLESS=1 cargo test --test contract` rewrites
//! the expectations from the core (review the diff before committing it).

use ringfence::guard::{Guard, GuardConfig, Request};
use serde_json::{json, Value};
use std::path::Path;

fn cases_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/cases.json")
}

/// The case's prompt: "Explain this: " then "word " repeated, cut to
/// exactly `bytes` bytes (no prompt for 0).
fn prompt(bytes: usize) -> Option<String> {
    (bytes > 0).then(|| {
        let mut p = String::from("Explain this: ");
        while p.len() < bytes {
            p.push_str("word ");
        }
        p.truncate(bytes);
        p
    })
}

/// Runs one case on a fresh guard; what it answered, in the file's form.
fn run(case: &Value) -> Value {
    let r = &case["request"];
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let kinds: Vec<(String, String)> = (0..n("fingerprints"))
        .map(|i| (format!("kind{i}"), format!("value-{i}")))
        .collect();
    let fingerprints: Vec<(&str, &str)> = kinds
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let prompt = prompt(n("prompt_bytes") as usize);
    let req = Request {
        account: r["account"].as_str().unwrap(),
        fingerprints: &fingerprints,
        prompt: prompt.as_deref(),
        system: None,
        model: None,
        input_tokens: n("input_tokens") as u32,
        max_tokens: n("max_tokens") as u32,
    };
    let guard = Guard::new(GuardConfig::for_accounts(1000));
    let mut last = None;
    for _ in 0..n("repeat").max(1) {
        match guard.try_check(&req) {
            Ok(v) => last = Some(v),
            Err(e) => return json!({"error": "invalid_request", "field": e.field()}),
        }
    }
    let v = last.unwrap();
    if case["settle"].as_bool() == Some(true) {
        guard
            .settle_token(v.settlement(), 100)
            .expect("settles on its own guard");
    }
    json!({
        "decision": v.decision.as_str(),
        "reasons": v.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "headers": v.headers(),
    })
}

#[test]
fn every_case_answers_as_the_file_says() {
    let text = std::fs::read_to_string(cases_path()).unwrap();
    let mut cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let bless = std::env::var_os("RINGFENCE_BLESS").is_some();
    for case in &mut cases {
        let got = run(case);
        if bless {
            case["expect"] = got;
        } else {
            assert_eq!(got, case["expect"], "case {}", case["name"]);
        }
    }
    if bless {
        let out = serde_json::to_string_pretty(&cases).unwrap() + "\n";
        std::fs::write(cases_path(), out).unwrap();
    }
}

#[test]
fn the_file_covers_the_contract() {
    let text = std::fs::read_to_string(cases_path()).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let has = |f: &dyn Fn(&Value) -> bool| cases.iter().any(f);
    assert!(has(&|c| c["request"]["account"] == ""));
    assert!(has(&|c| c["request"]["fingerprints"] == 30));
    assert!(has(&|c| c["request"]["prompt_bytes"] == 1 << 20));
    assert!(has(
        &|c| c["settle"] == true && c["expect"]["decision"] != "allow"
    ));
}
