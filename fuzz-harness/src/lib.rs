//! The fuzz targets' bodies. Each takes any bytes and must neither panic
//! nor hang nor allocate without bound; what decodes must round-trip. The
//! libFuzzer entry points (`fuzz/fuzz_targets/*.rs`, run by
//! `fuzz/run.sh`) call these, and `tests/corpus.rs` replays every committed
//! corpus file and every crash found through them in the normal suite.

#![deny(unsafe_op_in_unsafe_fn)]

mod c_api;

pub use c_api::c_api;

use ringfence::guard::{Guard, GuardConfig, Request};
use ringfence::sketch::{CountMin, HyperLogLog, LshIndex, MinHash, Signature};
use std::sync::OnceLock;

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of the
/// corpus directories).
pub const TARGETS: [(&str, Target); 7] = [
    ("sketch_decode", sketch_decode),
    ("guard_snapshot", guard_snapshot),
    ("trace_line", trace_line),
    ("config_toml", config_toml),
    ("request", request),
    ("c_api", c_api),
    ("evidence_batch", evidence_batch),
];

/// A small guard's configuration (fast to build per input).
pub fn small() -> GuardConfig {
    GuardConfig::for_accounts(64)
}

/// Every sketch's decoder; what decodes is re-encoded, decoded again, and
/// must give the same bytes.
pub fn sketch_decode(data: &[u8]) {
    macro_rules! round_trip {
        ($t:ty, $use:expr) => {
            if let Ok(s) = <$t>::from_bytes(data) {
                let bytes = s.to_bytes();
                let again = <$t>::from_bytes(&bytes).expect("a re-encoded sketch decodes");
                assert_eq!(again.to_bytes(), bytes, "{} round trip", stringify!($t));
                let f: fn(&$t) = $use;
                f(&s);
            }
        };
    }
    round_trip!(HyperLogLog, |h| {
        let e = h.estimate();
        assert!(e.is_finite() && e >= 0.0);
    });
    round_trip!(CountMin, |c| {
        let _ = c.estimate("x");
    });
    round_trip!(MinHash, |m| {
        let _ = m.jaccard(m);
    });
    round_trip!(Signature, |s| {
        let _ = s.jaccard(s);
    });
    round_trip!(LshIndex, |l| {
        let _ = l.len();
    });
}

/// A guard's snapshot: restored into a fresh guard and merged into one
/// with state of its own. What restores snapshots again to the same bytes.
pub fn guard_snapshot(data: &[u8]) {
    let (g, _clock) = Guard::for_replay(small());
    if g.restore(data).is_ok() {
        let bytes = g.snapshot();
        let (again, _c) = Guard::for_replay(small());
        again.restore(&bytes).expect("a snapshot restores");
        assert!(again.snapshot() == bytes, "snapshot round trip");
    }
    let (m, _clock) = Guard::for_replay(small());
    m.check(&req("acct", &[("ip", "192.0.2.1")]));
    let _ = m.merge(data);
    m.check(&req("acct", &[("ip", "192.0.2.1")]));
}

fn req<'a>(account: &'a str, fps: &'a [(&'a str, &'a str)]) -> Request<'a> {
    Request {
        account,
        fingerprints: fps,
        prompt: None,
        system: None,
        model: None,
        input_tokens: 1,
        max_tokens: 1,
    }
}

/// One line of a trace; one that parses is checked by a guard.
pub fn trace_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = ringfence_lab::replay::TraceLine::parse(text, 1) {
        let fps: Vec<(&str, &str)> = t.fingerprints.iter().map(|(k, v)| (&**k, &**v)).collect();
        let r = Request {
            account: &t.account,
            fingerprints: &fps,
            prompt: t.prompt.as_deref(),
            system: t.system.as_deref(),
            model: t.model.as_deref(),
            input_tokens: t.input_tokens.unwrap_or(0),
            max_tokens: 16,
        };
        let _ = shared().try_check(&r);
    }
}

/// The TOML configuration; one that parses and is small enough to build
/// in a fuzzer's memory is built.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = GuardConfig::from_toml(text) {
        let small_enough = c.link.max_accounts <= 4_096
            && c.link.max_values <= 16_384
            && c.link.max_templates <= 16_384
            && c.link.max_pairs <= 16_384
            && c.limiter_capacity <= 16_384
            && c.score.max_clusters <= 4_096;
        if small_enough {
            if let Ok(g) = Guard::try_new(c) {
                g.check(&req("acct", &[("ip", "192.0.2.1")]));
            }
        }
    }
}

/// A guard shared by the targets that only check requests.
fn shared() -> &'static Guard {
    static G: OnceLock<Guard> = OnceLock::new();
    G.get_or_init(|| Guard::new(small()))
}

/// The fields of an input cut at 0xFF bytes, as (lossy) text.
fn fields(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0xff)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// A request with arbitrary strings, lengths and fingerprint counts:
/// fields cut at 0xFF (account, prompt, system, model, then kind and
/// value pairs); the first two bytes give the token counts.
pub fn request(data: &[u8]) {
    let f = fields(data);
    let get = |i: usize| f.get(i).map(String::as_str);
    let fps: Vec<(&str, &str)> = f
        .get(4..)
        .unwrap_or(&[])
        .chunks(2)
        .map(|p| (p[0].as_str(), p.get(1).map_or("", String::as_str)))
        .collect();
    let tokens = |i: usize| u32::from(data.get(i).copied().unwrap_or(0)) << (i * 8 % 24);
    let r = Request {
        account: get(0).unwrap_or(""),
        fingerprints: &fps,
        prompt: get(1),
        system: get(2),
        model: get(3),
        input_tokens: tokens(0),
        max_tokens: tokens(1),
    };
    let g = shared();
    match g.try_check(&r) {
        Ok(v) => {
            g.settle(&v, tokens(2));
            let _ = g.explain(r.account);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// An evidence batch from another node; one that decodes re-encodes to
/// bytes that decode to the same batch, and is recorded by a guard.
pub fn evidence_batch(data: &[u8]) {
    use ringfence_fleet::{decode_batch, encode_batch};
    if let Ok(batch) = decode_batch(data) {
        let again = decode_batch(&encode_batch(&batch)).expect("a re-encoded batch decodes");
        assert_eq!(again, batch);
        let (g, _clock) = Guard::for_replay(small());
        for o in &batch {
            o.observe_on(&g);
        }
    }
}
