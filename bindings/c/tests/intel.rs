//! Threat intelligence through the C ABI: provider A's guard catches an
//! operation and exports it (`rf_guard_export_indicators`), provider B's
//! guard, under the same consortium key, imports the bundle
//! (`rf_guard_import_indicators`) and marks a newcomer on the operation's
//! card, then reports the sighting (`rf_guard_sightings`); and the errors:
//! arguments named, a bundle under another key, malformed or from the
//! future refused whole, a guard without a key.

mod common;

use common::{last_error, G, SMALL};
use ringfence_c::*;
use std::ffi::{c_char, CStr};
use std::path::PathBuf;
use std::ptr;

const PRODUCER: &str = "identity--3dff565e-7265-4139-9cb0-eceed191fca9";
const SIGHTER: &str = "identity--9a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";

/// A key file of `key` (32 bytes) for one test, removed when dropped.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(tag: &str, key: &[u8; 32]) -> KeyFile {
        let path = std::env::temp_dir().join(format!(
            "ringfence-c-intel-{}-{tag}.key",
            std::process::id()
        ));
        std::fs::write(&path, key).unwrap();
        KeyFile(path)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A small guard whose policy flags a cluster within a few rounds, with
/// the consortium key in `key` (none for `None`), trusting every producer.
fn guard(key: Option<&KeyFile>) -> G {
    let intel = match key {
        Some(k) => format!(
            "[intel]\nkey_file = {:?}\ndefault_trust = 1.0\nignore_kinds = []\n",
            k.0.to_str().unwrap()
        ),
        None => String::new(),
    };
    G::from_text(&format!(
        "account_requests_per_minute = 30\ncluster_requests_per_minute = 5\n\
         share_at = 0.2\ndeny_at = 1.0\n{SMALL}{intel}"
    ))
}

/// Ten accounts on one card and one rare TLS client, asking for reasoning
/// step by step, long answers settled; and six honest accounts, each on its
/// own card.
fn operation(g: &G) {
    for round in 0..8 {
        for i in 0..10 {
            let account = format!("fleet-{i}");
            let ip = format!("198.51.100.{}", 10 + i);
            let prompt = format!(
                "Think step by step and show all of your reasoning before the final answer: \
                 what is {round} * {i}?"
            );
            let fps = [
                ("payment", "card-shared"),
                ("ja4", "t13d_rare"),
                ("ip", ip.as_str()),
            ];
            let mut v = g.check_prompt(&account, &fps, Some(&prompt), (40, 900));
            assert_eq!(g.settle(&mut v, 900), rf_status::RF_OK);
            if i < 6 {
                let user = format!("user-{i}");
                let card = format!("card-{i}");
                let mut v = g.check_prompt(
                    &user,
                    &[("payment", card.as_str())],
                    Some("What is the capital of France?"),
                    (20, 100),
                );
                assert_eq!(g.settle(&mut v, 12), rf_status::RF_OK);
            }
        }
    }
}

fn options(id: &str, name: &str) -> rf_intel_options {
    let mut o = std::mem::MaybeUninit::uninit();
    // SAFETY: `o` is writable; rf_intel_options_init fills all of it.
    let mut o = unsafe {
        assert_eq!(rf_intel_options_init(o.as_mut_ptr()), rf_status::RF_OK);
        o.assume_init()
    };
    o.producer_id = id.as_ptr().cast();
    o.producer_id_len = id.len();
    o.producer_name = name.as_ptr().cast();
    o.producer_name_len = name.len();
    o
}

/// The text of an rf_string, which is then freed.
fn take(s: *mut rf_string) -> String {
    assert!(!s.is_null());
    // SAFETY: `s` is a live string from this library, freed once, here.
    unsafe {
        let (mut p, mut n) = (ptr::null(), 0);
        assert_eq!(rf_string_data(s, &mut p, &mut n), rf_status::RF_OK);
        let text = CStr::from_ptr(p).to_str().unwrap().to_owned();
        assert_eq!(text.len(), n);
        rf_string_free(s);
        text
    }
}

fn export(g: &G, o: &rf_intel_options) -> (rf_status, Option<String>, usize) {
    let (mut out, mut count) = (ptr::null_mut(), 99);
    // SAFETY: the guard and the options' strings are live; `out` and
    // `count` are locals.
    let status = unsafe { rf_guard_export_indicators(g.0, o, &mut out, &mut count) };
    if status != rf_status::RF_OK {
        assert!(out.is_null() && count == 0);
        return (status, None, count);
    }
    (status, Some(take(out)), count)
}

fn import(g: &G, bundle: &str, now: f64) -> (rf_status, rf_import_report) {
    let mut report = rf_import_report {
        added: 7,
        updated: 7,
        revoked: 7,
        ignored: 7,
    };
    // SAFETY: the guard and `bundle` are live; `report` is a local.
    let status = unsafe {
        rf_guard_import_indicators(g.0, bundle.as_ptr().cast(), bundle.len(), now, &mut report)
    };
    (status, report)
}

fn sightings(g: &G, tlp: rf_tlp) -> (rf_status, Option<String>) {
    let name = "Provider B";
    let mut out = ptr::null_mut();
    // SAFETY: the guard and the strings are live; `out` is a local.
    let status = unsafe {
        rf_guard_sightings(
            g.0,
            SIGHTER.as_ptr().cast(),
            SIGHTER.len(),
            name.as_ptr().cast(),
            name.len(),
            0.0,
            tlp,
            &mut out,
        )
    };
    if status != rf_status::RF_OK {
        assert!(out.is_null());
        return (status, None);
    }
    (status, Some(take(out)))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn an_operation_caught_by_a_is_marked_at_b() {
    let key = KeyFile::new("shared", b"example consortium key: 32 bytes");
    let a = guard(Some(&key));
    operation(&a);
    let o = options(PRODUCER, "Provider A trust & safety");
    let (status, bundle, count) = export(&a, &o);
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
    let bundle = bundle.unwrap();
    assert!(count >= 1, "{count}");
    assert!(bundle.contains("\"type\":\"bundle\""), "{bundle}");
    assert_eq!(bundle.matches("\"type\":\"indicator\"").count(), count);
    assert!(bundle.contains("TLP:AMBER"));
    for raw in [
        "card-shared",
        "t13d_rare",
        "fleet-",
        "user-",
        "card-0",
        "step by step",
    ] {
        assert!(!bundle.contains(raw), "{raw} is in the bundle");
    }
    // A stricter rule leaves nothing: RF_ERR_NOT_FOUND, saying why.
    let strict = rf_intel_options {
        min_campaign_accounts: 50,
        ..o
    };
    assert_eq!(export(&a, &strict).0, rf_status::RF_ERR_NOT_FOUND);
    assert!(
        last_error().contains("nothing to export"),
        "{}",
        last_error()
    );
    // A has imported nothing, so it has no sighting to report.
    assert_eq!(sightings(&a, RF_TLP_AMBER).0, rf_status::RF_ERR_NOT_FOUND);
    assert!(last_error().contains("no sighting"), "{}", last_error());

    // B: the same key. A bundle from the future (A's export an hour after
    // B's present) is refused whole.
    let b = guard(Some(&key));
    let (status, report) = import(&b, &bundle, unix_now() - 3600.0);
    assert_eq!(status, rf_status::RF_ERR_INVALID);
    assert_eq!(report, rf_import_report::default());
    assert!(
        last_error().contains("the bundle is refused"),
        "{}",
        last_error()
    );
    let v = b.check("newcomer-0", &[("payment", "card-shared")], 10, 10);
    assert_eq!(v.reasons & RF_REASON_SHARED_INDICATOR, 0, "untouched");

    let (status, report) = import(&b, &bundle, 0.0);
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
    // The card, the client and more are held; prompt-template bands, whose
    // confidence is at most their link weight, weigh less than
    // `intel.min_weight` and are ignored.
    assert!(report.added >= 2, "{report:?}");
    assert_eq!(report.added + report.ignored, count, "{report:?}");
    assert_eq!((report.updated, report.revoked), (0, 0));
    // Again: nothing new. (The held versions may count as updated: the
    // bundle's times are placed on the guard's clock from `now`, to within
    // the microseconds between two readings of it.)
    let (status, again) = import(&b, &bundle, 0.0);
    assert_eq!(status, rf_status::RF_OK);
    assert_eq!((again.added, again.revoked), (0, 0), "{again:?}");
    assert_eq!(again.updated + again.ignored, count, "{again:?}");

    let v = b.check("newcomer-1", &[("payment", "card-shared")], 10, 10);
    assert_ne!(
        v.reasons & RF_REASON_SHARED_INDICATOR,
        0,
        "reasons {}",
        v.reasons
    );
    assert_ne!(v.decision, RF_DECISION_DENY);
    let v = b.check("someone", &[("payment", "own-card")], 10, 10);
    assert_eq!(v.reasons, 0);

    let (status, text) = sightings(&b, RF_TLP_GREEN);
    assert_eq!(status, rf_status::RF_OK, "{}", last_error());
    let text = text.unwrap();
    assert!(text.contains("\"type\":\"sighting\""), "{text}");
    assert!(
        text.contains(SIGHTER) && text.contains("TLP:GREEN"),
        "{text}"
    );
    assert!(!text.contains("newcomer") && !text.contains("card-shared"));
    assert_eq!(sightings(&b, 5).0, rf_status::RF_ERR_INVALID);
    assert_eq!(
        last_error(),
        "rf_guard_sightings: `tlp` is 5; it must be an RF_TLP_* value, 0 to 4"
    );

    // C: another consortium.
    let other = KeyFile::new("other", b"another consortium's 32-byte key");
    let c = guard(Some(&other));
    let (status, report) = import(&c, &bundle, 0.0);
    assert_eq!(status, rf_status::RF_ERR_INVALID);
    assert_eq!(report, rf_import_report::default());
    assert!(
        last_error().contains("is not this consortium's key"),
        "{}",
        last_error()
    );
    let v = c.check("newcomer-2", &[("payment", "card-shared")], 10, 10);
    assert_eq!(v.reasons & RF_REASON_SHARED_INDICATOR, 0);
    // Malformed.
    assert_eq!(
        import(&b, "{\"type\": \"bundle\"", 0.0).0,
        rf_status::RF_ERR_INVALID
    );
    assert!(
        last_error().starts_with("rf_guard_import_indicators: the bundle is refused"),
        "{}",
        last_error()
    );
}

#[test]
fn without_a_key_nothing_is_exchanged() {
    let g = guard(None);
    operation(&g);
    let o = options(PRODUCER, "Provider A");
    assert_eq!(export(&g, &o).0, rf_status::RF_ERR_INVALID);
    assert_eq!(
        last_error(),
        "rf_guard_export_indicators: the guard has no consortium key (set `[intel] key_file`)"
    );
    assert_eq!(import(&g, "{}", 0.0).0, rf_status::RF_ERR_INVALID);
    assert!(
        last_error().contains("[intel] key_file"),
        "{}",
        last_error()
    );
    assert_eq!(sightings(&g, RF_TLP_AMBER).0, rf_status::RF_ERR_NOT_FOUND);
}

#[test]
fn bad_arguments_are_named() {
    let key = KeyFile::new("args", b"example consortium key: 32 bytes");
    let g = guard(Some(&key));
    let o = options(PRODUCER, "Provider A");
    let mut out = ptr::null_mut();
    let check = |status: rf_status, expected: rf_status, message: &str| {
        assert_eq!(status, expected, "{}", last_error());
        assert_eq!(last_error(), message);
    };
    // SAFETY: every pointer is NULL or live for its length.
    unsafe {
        check(
            rf_guard_export_indicators(ptr::null(), &o, &mut out, ptr::null_mut()),
            rf_status::RF_ERR_NULL,
            "rf_guard_export_indicators: `guard` is NULL",
        );
        check(
            rf_guard_export_indicators(g.0, ptr::null(), &mut out, ptr::null_mut()),
            rf_status::RF_ERR_NULL,
            "rf_guard_export_indicators: `options` is NULL",
        );
        check(
            rf_guard_export_indicators(g.0, &o, ptr::null_mut(), ptr::null_mut()),
            rf_status::RF_ERR_NULL,
            "rf_guard_export_indicators: `out` is NULL",
        );
        let no_id = rf_intel_options {
            producer_id: ptr::null(),
            ..o
        };
        check(
            rf_guard_export_indicators(g.0, &no_id, &mut out, ptr::null_mut()),
            rf_status::RF_ERR_NULL,
            "rf_guard_export_indicators: `options.producer_id` is NULL",
        );
        let bad_name = rf_intel_options {
            producer_name: c"\xff".as_ptr(),
            producer_name_len: 1,
            ..o
        };
        check(
            rf_guard_export_indicators(g.0, &bad_name, &mut out, ptr::null_mut()),
            rf_status::RF_ERR_UTF8,
            "rf_guard_export_indicators: `options.producer_name` is not valid UTF-8 (bad byte \
             at offset 0)",
        );
        check(
            rf_guard_export_indicators(
                g.0,
                &rf_intel_options { tlp: 9, ..o },
                &mut out,
                ptr::null_mut(),
            ),
            rf_status::RF_ERR_INVALID,
            "rf_guard_export_indicators: `options.tlp` is 9; it must be an RF_TLP_* value, 0 to 4",
        );
        for now in [f64::NAN, -1.0, f64::INFINITY] {
            let status = rf_guard_export_indicators(
                g.0,
                &rf_intel_options { now_unix: now, ..o },
                &mut out,
                ptr::null_mut(),
            );
            assert_eq!(status, rf_status::RF_ERR_INVALID);
            assert!(
                last_error().contains("`options.now_unix` is"),
                "{}",
                last_error()
            );
        }
        let status = rf_guard_export_indicators(
            g.0,
            &rf_intel_options {
                min_score: 2.0,
                ..o
            },
            &mut out,
            ptr::null_mut(),
        );
        assert_eq!(status, rf_status::RF_ERR_INVALID);
        assert!(
            last_error().contains("`options.min_score` is 2"),
            "{}",
            last_error()
        );
        assert!(out.is_null());

        let mut report = rf_import_report::default();
        check(
            rf_guard_import_indicators(ptr::null(), c"{}".as_ptr(), 2, 0.0, &mut report),
            rf_status::RF_ERR_NULL,
            "rf_guard_import_indicators: `guard` is NULL",
        );
        check(
            rf_guard_import_indicators(g.0, ptr::null(), 0, 0.0, ptr::null_mut()),
            rf_status::RF_ERR_NULL,
            "rf_guard_import_indicators: `bundle` is NULL",
        );
        check(
            rf_guard_import_indicators(g.0, c"\xc3(".as_ptr(), 2, 0.0, ptr::null_mut()),
            rf_status::RF_ERR_UTF8,
            "rf_guard_import_indicators: `bundle` is not valid UTF-8 (bad byte at offset 0)",
        );
        let status = rf_guard_import_indicators(g.0, c"{}".as_ptr(), 2, f64::NAN, ptr::null_mut());
        assert_eq!(status, rf_status::RF_ERR_INVALID);
        assert!(
            last_error().contains("`now_unix` is NaN"),
            "{}",
            last_error()
        );

        let name = "B";
        check(
            rf_guard_sightings(
                g.0,
                ptr::null(),
                0,
                name.as_ptr().cast(),
                1,
                0.0,
                RF_TLP_AMBER,
                &mut out,
            ),
            rf_status::RF_ERR_NULL,
            "rf_guard_sightings: `sighter_id` is NULL",
        );
        check(
            rf_guard_sightings(
                g.0,
                SIGHTER.as_ptr().cast(),
                SIGHTER.len(),
                name.as_ptr().cast(),
                1,
                0.0,
                RF_TLP_AMBER,
                ptr::null_mut(),
            ),
            rf_status::RF_ERR_NULL,
            "rf_guard_sightings: `out` is NULL",
        );
        check(
            rf_intel_options_init(ptr::null_mut()),
            rf_status::RF_ERR_NULL,
            "rf_intel_options_init: `options` is NULL",
        );
    }
    // An identity that is not `identity--<uuid v4>` is refused by the
    // bundle writer (once there is something to write).
    operation(&g);
    let (status, _, _) = export(&g, &options("identity--not-a-uuid", "A"));
    assert_eq!(status, rf_status::RF_ERR_INVALID);
    assert!(
        last_error().contains("identity--not-a-uuid"),
        "{}",
        last_error()
    );
    let names: Vec<&str> = [RF_TLP_CLEAR, RF_TLP_AMBER_STRICT, 7]
        .into_iter()
        // SAFETY: rf_tlp_str answers a static NUL-terminated string.
        .map(|t| unsafe { CStr::from_ptr(rf_tlp_str(t)) }.to_str().unwrap())
        .collect();
    assert_eq!(names, ["clear", "amber+strict", "unknown"]);
    let _: *const c_char = rf_tlp_str(RF_TLP_RED);
}
