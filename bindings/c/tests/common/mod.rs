//! Building C requests from Rust values, for the tests that call the C ABI
//! as C does. (Each test or bench that includes it uses a part of it.)

#![allow(dead_code)]

use ringfence_c::*;
use std::ffi::CStr;
use std::ptr;

/// The tables of a small guard, for the tests.
pub const SMALL: &str = "limiter_capacity = 4096\n[link]\nmax_accounts = 1024\nmax_values = 4096\n\
                     max_templates = 1024\nmax_pairs = 1024\n[score]\nmax_clusters = 256\n";

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

/// An owned guard for the tests.
pub struct G(pub *mut rf_guard);

impl G {
    pub fn from_toml(extra: &str) -> G {
        G::from_text(&format!("{extra}\n{SMALL}"))
    }

    /// A guard from the whole of its TOML.
    pub fn from_text(text: &str) -> G {
        let mut g = ptr::null_mut();
        // SAFETY: `text` is live for the call; `g` is a local out-pointer.
        let status = unsafe { rf_guard_from_toml(text.as_ptr().cast(), text.len(), &mut g) };
        assert_eq!(status, rf_status::RF_OK, "{}", last_error());
        G(g)
    }

    pub fn check(&self, account: &str, fps: &[(&str, &str)], input: u32, max: u32) -> rf_verdict {
        self.check_prompt(account, fps, None, (input, max))
    }

    /// [`G::check`] with an optional prompt.
    pub fn check_prompt(
        &self,
        account: &str,
        fps: &[(&str, &str)],
        prompt: Option<&str>,
        (input, max): (u32, u32),
    ) -> rf_verdict {
        let fps = c_fingerprints(fps);
        let req = c_request(account.as_bytes(), &fps, prompt, (input, max));
        let mut v = std::mem::MaybeUninit::<rf_verdict>::uninit();
        // SAFETY: the guard is live; `req` and what it points to are live
        // for the call; `v` is writable.
        let status = unsafe { rf_check(self.0, &req, v.as_mut_ptr()) };
        assert_eq!(status, rf_status::RF_OK, "{}", last_error());
        // SAFETY: rf_check returned RF_OK, so it wrote the verdict.
        unsafe { v.assume_init() }
    }

    pub fn settle(&self, v: &mut rf_verdict, output: u32) -> rf_status {
        // SAFETY: the guard is live; `v` is a live verdict.
        unsafe { rf_settle(self.0, v, output) }
    }
}

impl Drop for G {
    fn drop(&mut self) {
        // SAFETY: made by rf_guard_from_toml, freed once, here.
        unsafe { rf_guard_free(self.0) }
    }
}

/// The message of the last failure on this thread.
pub fn last_error() -> String {
    // SAFETY: rf_last_error returns a NUL-terminated string, valid until
    // the next failing call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(rf_last_error()) }
        .to_string_lossy()
        .into_owned()
}
