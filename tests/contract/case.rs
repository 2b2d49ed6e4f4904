//! The contract's cases (`tests/contract/cases.json`) as Rust values: one
//! reader shared by the core's contract test (`tests/contract.rs`) and the
//! C ABI's (`bindings/c/tests/contract.rs`), so that both build exactly
//! the same requests.
//!
//! A case's `request` has `account`, `fingerprints` (a count N: pairs
//! `("kind{i}", "value-{i}")`), `prompt_bytes` ("Explain this: " then
//! "word " repeated, cut to exactly that many bytes; 0 for no prompt),
//! `input_tokens`, `max_tokens` and `repeat` (sent that many times on one
//! fresh guard, the last verdict compared); `settle: true` settles the
//! last verdict with 100 output tokens, which must succeed.

use ringfence::guard::{Guard, GuardConfig, Request, RequestError, Verdict};
use serde_json::Value;
use std::path::Path;

/// One case, its request owned.
pub struct Case {
    /// The case as the file has it (for its name and expectation).
    pub raw: Value,
    pub account: String,
    pub fingerprints: Vec<(String, String)>,
    pub prompt: Option<String>,
    pub input_tokens: u32,
    pub max_tokens: u32,
    pub repeat: u64,
    pub settle: bool,
}

/// Every case of the file at `path`.
pub fn load(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("tests/contract/cases.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("the cases are JSON");
    assert!(!cases.is_empty());
    cases.into_iter().map(Case::from_json).collect()
}

/// The case's prompt: "Explain this: " then "word " repeated, cut to
/// exactly `bytes` bytes (none for 0).
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

impl Case {
    pub fn from_json(raw: Value) -> Case {
        let r = &raw["request"];
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        Case {
            account: r["account"].as_str().expect("request.account").to_string(),
            fingerprints: (0..n("fingerprints"))
                .map(|i| (format!("kind{i}"), format!("value-{i}")))
                .collect(),
            prompt: prompt(n("prompt_bytes") as usize),
            input_tokens: u32::try_from(n("input_tokens")).unwrap(),
            max_tokens: u32::try_from(n("max_tokens")).unwrap(),
            repeat: n("repeat").max(1),
            settle: raw["settle"].as_bool() == Some(true),
            raw,
        }
    }

    pub fn name(&self) -> &str {
        self.raw["name"].as_str().expect("case.name")
    }

    /// The fingerprints as borrowed pairs.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.fingerprints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The case run on the core: a fresh guard sized for 1,000 accounts,
    /// the request sent `repeat` times; the guard and the last verdict, or
    /// the contract's error. (Settling is left to the caller.)
    pub fn through_core(&self) -> Result<(Guard, Verdict), RequestError> {
        let fps = self.pairs();
        let req = Request {
            account: &self.account,
            fingerprints: &fps,
            prompt: self.prompt.as_deref(),
            system: None,
            model: None,
            input_tokens: self.input_tokens,
            max_tokens: self.max_tokens,
        };
        let guard = Guard::new(GuardConfig::for_accounts(1000));
        let mut last = guard.try_check(&req)?;
        for _ in 1..self.repeat {
            last = guard.try_check(&req)?;
        }
        Ok((guard, last))
    }
}
