//! The request contract, answered the same way from Rust, C and Python.
//!
//! `tests/contract/cases.json` lists requests and what the guard answers
//! each: a verdict (decision, reasons, headers) or a contract error naming
//! the field. This test holds the core to it; `bindings/c/tests/contract.rs`
//! and `python/tests/test_contract.py` hold the C ABI and the Python package
//! to the same file. `RINGFENCE_BLESS=1 cargo test --test contract` rewrites
//! the expectations from the core (review the diff before committing it).

#[path = "contract/case.rs"]
mod case;

use case::Case;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn cases_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/cases.json")
}

/// What the core answers a case, in the file's form.
fn run(case: &Case) -> Value {
    match case.through_core() {
        Err(e) => json!({"error": "invalid_request", "field": e.field()}),
        Ok((guard, v)) => {
            if case.settle {
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
    }
}

#[test]
fn every_case_answers_as_the_file_says() {
    let mut cases = case::load(&cases_path());
    let bless = std::env::var_os("RINGFENCE_BLESS").is_some();
    for case in &mut cases {
        let got = run(case);
        if bless {
            case.raw["expect"] = got;
        } else {
            assert_eq!(got, case.raw["expect"], "case {}", case.name());
        }
    }
    if bless {
        let raw: Vec<&Value> = cases.iter().map(|c| &c.raw).collect();
        let out = serde_json::to_string_pretty(&raw).unwrap() + "\n";
        std::fs::write(cases_path(), out).unwrap();
    }
}

#[test]
fn the_file_covers_the_contract() {
    let cases = case::load(&cases_path());
    let has = |f: &dyn Fn(&Value) -> bool| cases.iter().any(|c| f(&c.raw));
    assert!(has(&|c| c["request"]["account"] == ""));
    assert!(has(&|c| c["request"]["fingerprints"] == 30));
    assert!(has(&|c| c["request"]["prompt_bytes"] == 1 << 20));
    assert!(has(
        &|c| c["settle"] == true && c["expect"]["decision"] != "allow"
    ));
}
