//! Building C requests from Rust values, for the tests that call the C ABI
//! as C does. (Each test or bench that includes it uses a part of it.)

#![allow(dead_code)]

use ringfence_c::{rf_fingerprint, rf_request};
use std::ptr;

/// `pairs` as C fingerprints, pointing into the given strings.
pub fn c_fingerprints(pairs: &[(&str, &str)]) -> Vec<rf_fingerprint> {
    pairs
        .iter()
        .map(|(k, v)| rf_fingerprint {
            kind: k.as_ptr().cast(),
            kind_len: k.len(),
            value: v.as_ptr().cast(),
            value_len: v.len(),
        })
        .collect()
}

/// A request of `account` (any bytes) with `fingerprints` and an optional
/// prompt; no system prompt and no model. Valid while its arguments live.
pub fn c_request(
    account: &[u8],
    fingerprints: &[rf_fingerprint],
    prompt: Option<&str>,
    tokens: (u32, u32),
) -> rf_request {
    let (prompt, prompt_len) = match prompt {
        Some(p) => (p.as_ptr().cast(), p.len()),
        None => (ptr::null(), 0),
    };
    rf_request {
        account: account.as_ptr().cast(),
        account_len: account.len(),
        fingerprints: fingerprints.as_ptr(),
        fingerprint_count: fingerprints.len(),
        prompt,
        prompt_len,
        system: ptr::null(),
        system_len: 0,
        model: ptr::null(),
        model_len: 0,
        input_tokens: tokens.0,
        max_tokens: tokens.1,
    }
}
