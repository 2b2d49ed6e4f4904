//! The C ABI's call-sequence target: each input byte is a call on one
//! guard (create, check, settle, settle again, restore garbage, merge
//! garbage, explain, snapshot, free and create again), its arguments
//! taken from the bytes that follow; NULLs and odd lengths included.

use ringfence_c::*;
use std::ptr;

const SMALL: &str = "limiter_capacity = 256\n[link]\nmax_accounts = 64\nmax_values = 256\n\
                     max_templates = 64\nmax_pairs = 64\n[score]\nmax_clusters = 32\n";

/// Runs the calls `data` spells (see the module docs).
pub fn c_api(data: &[u8]) {
    let mut g: *mut rf_guard = ptr::null_mut();
    let mut verdicts: Vec<rf_verdict> = Vec::new();
    let mut at = 0usize;
    // The bytes after the op, up to 32, as the call's argument.
    let arg = |at: &mut usize| -> Vec<u8> {
        let n = usize::from(data.get(*at).copied().unwrap_or(0) % 33);
        let start = (*at + 1).min(data.len());
        let end = (start + n).min(data.len());
        *at = end;
        data[start..end].to_vec()
    };
    while at < data.len() {
        let op = data[at] % 9;
        at += 1;
        let a = arg(&mut at);
        // SAFETY: every pointer handed over is NULL or points to live
        // memory of the length given, for the call; `g` is NULL or a live
        // guard made here and freed once.
        unsafe {
            match op {
                0 if g.is_null() => {
                    let _ = rf_guard_from_toml(SMALL.as_ptr().cast(), SMALL.len(), &mut g);
                }
                1 => {
                    let half = a.len() / 2;
                    let fp = rf_fingerprint {
                        kind: b"ip".as_ptr().cast(),
                        kind_len: 2,
                        value: a[half..].as_ptr().cast(),
                        value_len: a.len() - half,
                    };
                    let req = rf_request {
                        account: a.as_ptr().cast(),
                        account_len: half,
                        fingerprints: &fp,
                        fingerprint_count: usize::from(!a.is_empty()),
                        prompt: if a.len() % 3 == 0 {
                            ptr::null()
                        } else {
                            a.as_ptr().cast()
                        },
                        prompt_len: a.len(),
                        system: ptr::null(),
                        system_len: 0,
                        model: ptr::null(),
                        model_len: 0,
                        input_tokens: u32::from(a.first().copied().unwrap_or(0)),
                        max_tokens: u32::from(a.last().copied().unwrap_or(0)) << 4,
                    };
                    let mut v = std::mem::MaybeUninit::<rf_verdict>::zeroed();
                    if rf_check(g, &req, v.as_mut_ptr()) == rf_status::RF_OK {
                        verdicts.push(v.assume_init());
                    }
                }
                2 | 3 => {
                    // Settling the same verdict twice is an error, never a
                    // double settlement.
                    if let Some(v) = verdicts.last_mut() {
                        let out = u32::from(a.first().copied().unwrap_or(7));
                        let first = rf_settle(g, v, out);
                        let second = rf_settle(g, v, out);
                        assert!(second != rf_status::RF_OK || first != rf_status::RF_OK);
                    }
                }
                4 => {
                    let _ = rf_guard_restore(g, a.as_ptr(), a.len());
                }
                5 => {
                    let _ = rf_guard_merge(g, a.as_ptr(), a.len());
                }
                6 => {
                    let mut buf = [0 as std::ffi::c_char; 64];
                    let mut len = 0usize;
                    let _ = rf_guard_explain(
                        g,
                        a.as_ptr().cast(),
                        a.len(),
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut len,
                    );
                }
                7 => {
                    let mut b = ptr::null_mut();
                    if rf_guard_snapshot(g, &mut b) == rf_status::RF_OK {
                        let (mut p, mut n) = (ptr::null(), 0usize);
                        assert_eq!(rf_bytes_data(b, &mut p, &mut n), rf_status::RF_OK);
                        rf_bytes_free(b);
                    }
                }
                8 => {
                    rf_guard_free(g);
                    g = ptr::null_mut();
                    // Verdicts of a freed guard are never settled again.
                    verdicts.clear();
                }
                _ => {}
            }
        }
    }
    // SAFETY: NULL or the live guard made above, freed once.
    unsafe { rf_guard_free(g) };
}
