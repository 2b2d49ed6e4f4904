//! The C API called as C calls it (through the exported functions, with raw
//! pointers): settling, snapshots, explanations and many threads at once.
//! The C and C++ programs under `tests/` and `../cpp/tests` cover every
//! function again from C, under sanitizers and valgrind.

mod common;

use common::{last_error, G};
use ringfence_c::*;
use std::ffi::{c_char, CStr};
use std::ptr;

#[test]
fn settling_refunds_what_max_tokens_overestimated() {
    // 1,000 tokens a minute: 100 in + 700 max reserves 800.
    let settled = G::from_toml("account_tokens_per_minute = 1000");
    let mut first = settled.check("a", &[], 100, 700);
    assert_eq!(first.decision, RF_DECISION_ALLOW);
    assert_eq!(settled.settle(&mut first, 50), rf_status::RF_OK);
    // 150 used, 850 left: another 800 fits.
    assert_eq!(
        settled.check("a", &[], 100, 700).decision,
        RF_DECISION_ALLOW
    );

    let unsettled = G::from_toml("account_tokens_per_minute = 1000");
    unsettled.check("a", &[], 100, 700);
    let second = unsettled.check("a", &[], 100, 700);
    assert_eq!(second.decision, RF_DECISION_THROTTLE);
    assert_eq!(second.reasons, RF_REASON_ACCOUNT_LIMIT);
    assert!(second.retry_after_ms > 0 && second.retry_after_secs > 0);
}

#[test]
fn a_verdict_settles_once_and_only_on_its_guard() {
    let (g, other) = (G::from_toml(""), G::from_toml(""));
    let mut v = g.check("a", &[("ip", "192.0.2.1")], 10, 10);
    let mut copy = v;
    assert_eq!(other.settle(&mut v, 5), rf_status::RF_ERR_INVALID);
    assert!(last_error().contains("another guard"), "{}", last_error());
    assert_eq!(g.settle(&mut v, 5), rf_status::RF_OK);
    assert_eq!(g.settle(&mut v, 5), rf_status::RF_ERR_INVALID);
    assert!(last_error().contains("settled already"), "{}", last_error());
    // A copy made before settling is a second verdict as far as C can tell;
    // the header says so.
    assert_eq!(g.settle(&mut copy, 5), rf_status::RF_OK);
    // SAFETY: every field of rf_verdict is an integer or a float.
    let mut zeroed: rf_verdict = unsafe { std::mem::zeroed() };
    assert_eq!(g.settle(&mut zeroed, 5), rf_status::RF_ERR_INVALID);
}

#[test]
fn snapshot_restore_and_explain() {
    let g = G::from_toml("");
    for i in 0..5 {
        g.check(&format!("acct-{i}"), &[("payment", "card-shared")], 10, 10);
    }
    let mut bytes = ptr::null_mut();
    // SAFETY: live guard, local out-pointers; the bytes are read while
    // still owned, then freed once.
    unsafe {
        assert_eq!(rf_guard_snapshot(g.0, &mut bytes), rf_status::RF_OK);
        let (mut data, mut len) = (ptr::null(), 0);
        assert_eq!(rf_bytes_data(bytes, &mut data, &mut len), rf_status::RF_OK);
        let snapshot = std::slice::from_raw_parts(data, len).to_vec();
        rf_bytes_free(bytes);

        let fresh = G::from_toml("");
        let mut corrupt = snapshot.clone();
        corrupt[len / 2] ^= 0x40;
        assert_eq!(
            rf_guard_restore(fresh.0, corrupt.as_ptr(), corrupt.len()),
            rf_status::RF_ERR_SNAPSHOT
        );
        assert!(
            last_error().starts_with("rf_guard_restore: cannot restore"),
            "{}",
            last_error()
        );
        let mut bigger = ptr::null_mut();
        assert_eq!(
            rf_guard_new_for_accounts(2_000, &mut bigger),
            rf_status::RF_OK
        );
        let bigger = G(bigger);
        assert_eq!(
            rf_guard_restore(bigger.0, snapshot.as_ptr(), len),
            rf_status::RF_ERR_SNAPSHOT
        );
        assert_eq!(
            rf_guard_restore(fresh.0, snapshot.as_ptr(), len),
            rf_status::RF_OK
        );

        let account = "acct-3";
        let mut text_len = 0;
        let status = rf_guard_explain(
            fresh.0,
            account.as_ptr().cast(),
            account.len(),
            ptr::null_mut(),
            0,
            &mut text_len,
        );
        assert_eq!(status, rf_status::RF_ERR_BUFFER_TOO_SMALL);
        let mut buf = vec![0 as c_char; text_len + 1];
        let status = rf_guard_explain(
            fresh.0,
            account.as_ptr().cast(),
            account.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut text_len,
        );
        assert_eq!(status, rf_status::RF_OK);
        let text = CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
        assert!(text.starts_with("account acct-3 is in cluster"), "{text}");
        assert!(text.contains("of 5 accounts"), "{text}");
        assert!(text.contains("shares payment \"card-shared\""), "{text}");

        let mut s = ptr::null_mut();
        assert_eq!(
            rf_guard_explain_string(fresh.0, account.as_ptr().cast(), account.len(), &mut s),
            rf_status::RF_OK
        );
        let (mut p, mut n) = (ptr::null(), 0);
        assert_eq!(rf_string_data(s, &mut p, &mut n), rf_status::RF_OK);
        assert_eq!(CStr::from_ptr(p).to_str().unwrap(), text);
        assert_eq!(n, text.len());
        rf_string_free(s);

        let unknown = "nobody";
        assert_eq!(
            rf_guard_explain_string(fresh.0, unknown.as_ptr().cast(), unknown.len(), &mut s),
            rf_status::RF_ERR_NOT_FOUND
        );
        assert!(s.is_null());
    }
}

#[test]
fn bad_arguments_are_named() {
    let g = G::from_toml("");
    let mut v = std::mem::MaybeUninit::<rf_verdict>::uninit();
    let bad = b"acct\xff";
    let req = rf_request {
        fingerprints: ptr::null(),
        fingerprint_count: 3,
        ..common::c_request(bad, &[], None, (1, 1))
    };
    // SAFETY: every pointer is NULL or live for its length.
    unsafe {
        assert_eq!(
            rf_check(ptr::null(), &req, v.as_mut_ptr()),
            rf_status::RF_ERR_NULL
        );
        assert_eq!(last_error(), "rf_check: `guard` is NULL");
        assert_eq!(rf_check(g.0, &req, v.as_mut_ptr()), rf_status::RF_ERR_NULL);
        assert_eq!(last_error(), "rf_check: `request.fingerprints` is NULL");
        let req = rf_request {
            fingerprint_count: 0,
            ..req
        };
        assert_eq!(rf_check(g.0, &req, v.as_mut_ptr()), rf_status::RF_ERR_UTF8);
        assert_eq!(
            last_error(),
            "rf_check: `request.account` is not valid UTF-8 (bad byte at offset 4)"
        );
        let config = "deny_att = 0.9";
        let mut out = ptr::null_mut();
        assert_eq!(
            rf_guard_from_toml(config.as_ptr().cast(), config.len(), &mut out),
            rf_status::RF_ERR_CONFIG
        );
        assert!(out.is_null());
        assert!(last_error().contains("deny_att"), "{}", last_error());
    }
}

#[test]
fn many_threads_check_one_guard() {
    let g = G::from_toml("account_requests_per_minute = 1000000");
    let shared = g.0 as usize;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let g = G(shared as *mut rf_guard);
                let mut allowed = 0;
                for i in 0..2_000 {
                    let account = format!("t{t}-{}", i % 50);
                    let mut v = g.check(&account, &[("ip", "192.0.2.7")], 10, 10);
                    allowed += u32::from(v.decision == RF_DECISION_ALLOW);
                    assert_eq!(g.settle(&mut v, 5), rf_status::RF_OK);
                }
                std::mem::forget(g); // owned by the main thread
                allowed
            })
        })
        .collect();
    let allowed: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(allowed, 8_000);
}
