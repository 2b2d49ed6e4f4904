//! The cross-binding contract, through the C ABI: every case of
//! `tests/contract/cases.json` (the file the core's `tests/contract.rs` and
//! the Python package's contract test read too) runs through `rf_check`,
//! `rf_verdict_headers`, `rf_settle` and `rf_last_error`, called as C calls
//! them, on a fresh `rf_guard_new_for_accounts(1000)` guard, and must answer
//! what the file says: the same decision, reasons and headers, or
//! `RF_ERR_INVALID` with a message naming the field.
//!
//! Each case is also run on the core itself (`Guard::try_check`), and C
//! must answer exactly as Rust does, message included: this holds even for
//! a case whose expectation the file does not give yet (`"expect": null`).
//!
//! The cases are read by `tests/contract/case.rs`, shared with the core's
//! contract test, so both build the same requests.

#[path = "../../../tests/contract/case.rs"]
mod case;
mod common;

use case::Case;
use ringfence_c::*;
use serde_json::{json, Value};
use std::ffi::{c_char, CStr};
use std::path::PathBuf;
use std::ptr;

fn cases_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/contract/cases.json")
}

fn last_error() -> String {
    // SAFETY: rf_last_error returns a NUL-terminated string, valid until
    // the next failing call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(rf_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn c_str(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: the name functions answer static NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

/// The headers of `v` as `rf_verdict_headers` writes them, parsed back
/// into (name, value) pairs.
fn headers(v: &rf_verdict) -> Vec<(String, String)> {
    let mut buf = vec![0 as c_char; 256];
    let mut len = 0;
    // SAFETY: `v` is a live verdict; `buf` holds `buf.len()` bytes; `len`
    // is a local.
    let status = unsafe { rf_verdict_headers(v, buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
    // SAFETY: on RF_OK, `buf` holds `len` bytes and a NUL.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(text.len(), len);
    assert!(text.ends_with("\r\n"), "{text:?}");
    text.split_terminator("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("a `Name: value` line");
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// What C answered: `{"error": "invalid_request", "message": ...}` or
/// `{"decision", "reasons" (sorted), "headers"}`.
fn through_c(case: &Case) -> Value {
    let pairs = case.pairs();
    let fps = common::c_fingerprints(&pairs);
    let req = common::c_request(
        case.account.as_bytes(),
        &fps,
        case.prompt.as_deref(),
        (case.input_tokens, case.max_tokens),
    );
    let mut guard = ptr::null_mut();
    // SAFETY: `guard` is a local out-pointer.
    let status = unsafe { rf_guard_new_for_accounts(1000, &mut guard) };
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
    let mut answer = None;
    let mut verdict = std::mem::MaybeUninit::<rf_verdict>::uninit();
    for _ in 0..case.repeat {
        // SAFETY: the guard is live; `req` and everything it points to
        // (`fps`, the case's strings) are live for the call; `verdict` is
        // writable.
        let status = unsafe { rf_check(guard, &req, verdict.as_mut_ptr()) };
        if status != rf_status::RF_OK {
            assert_eq!(status, rf_status::RF_ERR_INVALID, "{}", last_error());
            answer = Some(json!({"error": "invalid_request", "message": last_error()}));
            break;
        }
    }
    let answer = answer.unwrap_or_else(|| {
        // SAFETY: the last rf_check returned RF_OK, so it wrote the verdict.
        let mut v = unsafe { verdict.assume_init() };
        let mut reasons: Vec<String> = (0..32)
            .map(|i| 1u32 << i)
            .filter(|bit| v.reasons & bit != 0)
            .map(|bit| c_str(rf_reason_str(bit)))
            .collect();
        reasons.sort();
        let answer = json!({
            "decision": c_str(rf_decision_str(v.decision)),
            "reasons": reasons,
            "headers": headers(&v),
        });
        if case.settle {
            // SAFETY: the guard that made `v` is live; `v` is a local.
            let status = unsafe { rf_settle(guard, &mut v, 100) };
            assert_eq!(status, rf_status::RF_OK, "{}", last_error());
        }
        answer
    });
    // SAFETY: made above, freed once, here.
    unsafe { rf_guard_free(guard) };
    answer
}

/// What the core answers, in the same form (the message as `rf_check`
/// reports it).
fn through_rust(case: &Case) -> Value {
    match case.through_core() {
        Err(e) => json!({"error": "invalid_request", "message": format!("rf_check: {e}")}),
        Ok((_, v)) => {
            let mut reasons: Vec<&str> = v.reasons.iter().map(|r| r.as_str()).collect();
            reasons.sort();
            json!({"decision": v.decision.as_str(), "reasons": reasons, "headers": v.headers()})
        }
    }
}

/// `got` against the file's expectation (`expect` is not null).
fn check_expectation(name: &str, got: &Value, expect: &Value) {
    if let Some(kind) = expect.get("error") {
        assert_eq!(got.get("error"), Some(kind), "case {name:?}: {got}");
        let field = expect["field"].as_str().expect("expect.field");
        let message = got["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{field}`")),
            "case {name:?}: the message names `{field}`: {message}"
        );
        return;
    }
    assert_eq!(got["decision"], expect["decision"], "case {name:?}");
    let mut reasons: Vec<&str> = expect["reasons"]
        .as_array()
        .expect("expect.reasons")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(got["reasons"], json!(reasons), "case {name:?}");
    assert_eq!(got["headers"], expect["headers"], "case {name:?}");
}

#[test]
fn every_case_answers_through_c_as_in_rust_and_the_file() {
    let cases = case::load(&cases_path());
    let mut expected = 0;
    for c in &cases {
        let name = c.name();
        let got = through_c(c);
        assert_eq!(got, through_rust(c), "case {name:?}: C and Rust differ");
        if !c.raw["expect"].is_null() {
            check_expectation(name, &got, &c.raw["expect"]);
            expected += 1;
        }
    }
    eprintln!(
        "{} contract cases through C; {expected} with an expectation in the file",
        cases.len()
    );
}

/// The cases the issue names are in the file, and C answers them as the
/// contract says, whatever the file's expectations.
#[test]
fn the_named_cases_answer_as_the_contract_says() {
    let cases = case::load(&cases_path());
    let find = |f: &dyn Fn(&Value) -> bool| cases.iter().find(|c| f(&c.raw["request"]));
    // An empty account is refused, naming the field.
    let empty = find(&|r| r["account"] == "").expect("a case with an empty account");
    let got = through_c(empty);
    assert_eq!(got["error"], "invalid_request", "{got}");
    assert!(
        got["message"].as_str().unwrap().contains("`account`"),
        "{got}"
    );
    // 30 fingerprints are allowed.
    let thirty = find(&|r| r["fingerprints"] == 30).expect("a case with 30 fingerprints");
    assert_eq!(through_c(thirty)["decision"], "allow");
    // A 1 MiB prompt is a request like any other.
    let big = find(&|r| r["prompt_bytes"] == 1 << 20).expect("a case with a 1 MiB prompt");
    assert!(through_c(big).get("decision").is_some());
    // A refused verdict settles (doing nothing): `through_c` asserts RF_OK.
    let refused = cases
        .iter()
        .filter(|c| c.settle)
        .map(through_c)
        .any(|got| got["decision"] != "allow");
    assert!(refused, "a case settles a refused verdict");
}
