//! What the overhead benchmark (`benches/ffi.rs`) and measurement
//! (`examples/overhead.rs`) send: the same requests to one guard, as Rust
//! sees them and as C passes them.

#[path = "../../tests/common/mod.rs"]
mod common;

use ringfence::guard::{Guard, Request};
use ringfence_c::{
    rf_check, rf_fingerprint, rf_guard, rf_guard_free, rf_guard_from_toml, rf_request, rf_status,
    rf_verdict,
};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr;

pub const ACCOUNTS: usize = 1_000;

/// Quotas no request reaches, so every check does the full work; tables
/// sized for 10,000 accounts.
const CONFIG: &str = "account_requests_per_minute = 1000000000\n\
                      account_tokens_per_minute = 1000000000000\n\
                      limiter_capacity = 20000\n\
                      [link]\nmax_accounts = 10000\nmax_values = 25000\n\
                      max_templates = 5000\nmax_pairs = 10000\n";

pub type CheckFn =
    unsafe extern "C" fn(*const rf_guard, *const rf_request, *mut rf_verdict) -> rf_status;

pub struct Traffic {
    accounts: Vec<String>,
    fingerprints: Vec<Vec<(String, String)>>,
    prompt: String,
}

impl Traffic {
    pub fn new() -> Traffic {
        let fingerprints = (0..ACCOUNTS)
            .map(|i| {
                vec![
                    (
                        "ip".into(),
                        format!("73.{}.{}.{}", i % 200, (i / 200) % 250, 1 + i % 250),
                    ),
                    ("asn".into(), format!("AS{}", 7000 + i % 10)),
                    ("device".into(), format!("dev-{i:08x}")),
                    ("payment".into(), format!("card-{i:08x}")),
                    ("payment_bin".into(), format!("4{:05}", i % 20)),
                    (
                        "ja4".into(),
                        format!("t13d1516h2_8daaf6152771_{:012x}", i % 7),
                    ),
                    ("user_agent".into(), format!("OpenAI/Python 1.{}", i % 7)),
                    (
                        "email_domain".into(),
                        ["gmail.com", "outlook.com", "yahoo.com"][i % 3].into(),
                    ),
                ]
            })
            .collect();
        // A 1 KB prompt of varied words.
        let vocab = [
            "data", "model", "train", "loss", "graph", "query", "token", "layer", "write", "prove",
        ];
        let mut x = 1u64;
        let mut prompt = String::new();
        while prompt.len() < 1024 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let w = (x >> 33) as usize % 600;
            prompt.push_str(&format!("{}{} ", vocab[w % 10], w));
        }
        Traffic {
            accounts: (0..ACCOUNTS).map(|i| format!("acct-{i:08}")).collect(),
            fingerprints,
            prompt,
        }
    }
}

/// The same requests, as Rust sees them and as C passes them.
pub struct Requests<'a> {
    rust_fps: Vec<Vec<(&'a str, &'a str)>>,
    c_fps: Vec<Vec<rf_fingerprint>>,
    t: &'a Traffic,
}

impl<'a> Requests<'a> {
    pub fn new(t: &'a Traffic) -> Requests<'a> {
        let rust_fps: Vec<Vec<(&str, &str)>> = t
            .fingerprints
            .iter()
            .map(|f| f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .collect();
        let c_fps = rust_fps.iter().map(|f| common::c_fingerprints(f)).collect();
        Requests { rust_fps, c_fps, t }
    }

    fn rust(&self, i: usize, prompt: bool) -> Request<'_> {
        Request {
            account: &self.t.accounts[i],
            fingerprints: &self.rust_fps[i],
            prompt: prompt.then_some(self.t.prompt.as_str()),
            system: None,
            model: None,
            input_tokens: 10,
            max_tokens: 256,
        }
    }

    fn c(&self, i: usize, prompt: bool) -> rf_request {
        let account = &self.t.accounts[i];
        rf_request {
            account: account.as_ptr().cast(),
            account_len: account.len(),
            fingerprints: self.c_fps[i].as_ptr(),
            fingerprint_count: self.c_fps[i].len(),
            prompt: if prompt {
                self.t.prompt.as_ptr().cast()
            } else {
                ptr::null()
            },
            prompt_len: if prompt { self.t.prompt.len() } else { 0 },
            system: ptr::null(),
            system_len: 0,
            model: ptr::null(),
            model_len: 0,
            input_tokens: 10,
            max_tokens: 256,
        }
    }
}

pub fn native(g: &Guard, r: &Requests<'_>, i: usize, prompt: bool) {
    black_box(g.check(&r.rust(i, prompt)));
}

pub fn through_c(
    check: CheckFn,
    handle: *const rf_guard,
    r: &Requests<'_>,
    i: usize,
    prompt: bool,
) {
    let req = r.c(i, prompt);
    let mut v = MaybeUninit::<rf_verdict>::uninit();
    // SAFETY: `handle` is a live guard; `req` points into `r`, alive for the
    // call; `v` is writable.
    let status = unsafe { check(handle, &req, v.as_mut_ptr()) };
    assert_eq!(status, rf_status::RF_OK);
    // SAFETY: rf_check returned RF_OK, so it wrote the verdict.
    black_box(unsafe { v.assume_init() });
}

/// A guard made through the C API, with the Rust guard behind it; freed
/// on drop.
pub struct Handle(pub *mut rf_guard);

impl Handle {
    pub fn new() -> Handle {
        let mut handle = ptr::null_mut();
        // SAFETY: CONFIG is a live string; `handle` is a local out-pointer.
        let status =
            unsafe { rf_guard_from_toml(CONFIG.as_ptr().cast(), CONFIG.len(), &mut handle) };
        assert_eq!(status, rf_status::RF_OK);
        Handle(handle)
    }

    pub fn guard(&self) -> &Guard {
        // SAFETY: made by rf_guard_from_toml and not freed until `self` drops.
        unsafe { &*self.0 }.guard()
    }

    /// `rf_check` through a pointer the optimiser cannot see through, as
    /// from C.
    pub fn check_fn() -> CheckFn {
        black_box(rf_check as CheckFn)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: made by rf_guard_from_toml, freed once, here.
        unsafe { rf_guard_free(self.0) }
    }
}
