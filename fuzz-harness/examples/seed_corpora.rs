//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`):
//! valid inputs of each kind, for libFuzzer to mutate from.
//!
//! `cargo run -p ringfence-fuzz-harness --example seed_corpora`

use ringfence::guard::{Guard, Request};
use ringfence::sketch::{CountMin, HyperLogLog, LshIndex, MinHash, Signature};
use ringfence_fleet::{encode_batch, Observation};
use ringfence_fuzz_harness::small;
use std::path::PathBuf;

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let h = HyperLogLog::new(8).unwrap();
    (0..500u64).for_each(|i| h.insert(&i));
    put("sketch_decode", "hll", &h.to_bytes());
    let c = CountMin::new(64, 3).unwrap();
    (0..100u64).for_each(|i| c.add(&i, 1 + i as u32 % 3));
    put("sketch_decode", "count_min", &c.to_bytes());
    let m = MinHash::new(32).unwrap();
    (0..50u64).for_each(|i| m.insert(&i));
    put("sketch_decode", "minhash", &m.to_bytes());
    let s = Signature::from_text(
        32,
        ringfence::sketch::DEFAULT_SEED,
        "a prompt of a few words to shingle into a signature",
        3,
    )
    .unwrap();
    put("sketch_decode", "signature", &s.to_bytes());
    let l = LshIndex::new(32, 0.5, 100).unwrap();
    l.insert(1, &s).unwrap();
    put("sketch_decode", "lsh", &l.to_bytes());

    let (g, clock) = Guard::for_replay(small());
    for i in 0..40u64 {
        clock.set(std::time::Duration::from_secs(i));
        let account = format!("acct{}", i % 6);
        g.check(&Request {
            account: &account,
            fingerprints: &[("payment", "card-1"), ("ip", "203.0.113.7")],
            prompt: Some("Think step by step: a template prompt about item number"),
            system: None,
            model: Some("m"),
            input_tokens: 10,
            max_tokens: 100,
        });
    }
    put("guard_snapshot", "six-accounts", &g.snapshot());
    put(
        "guard_snapshot",
        "empty",
        &Guard::for_replay(small()).0.snapshot(),
    );
    put("guard_snapshot", "junk", b"RFSK\x07\x04junk");

    put("trace_line", "full", br#"{"ts":1793491200.023,"account":"acct_1","fingerprints":{"ip":"203.0.113.7","device":["d1","d2"]},"prompt":"Explain step by step","system":"Be brief.","model":"m","input_tokens":11,"output_tokens":313,"label":"benign","cohort":"household"}"#);
    put("trace_line", "minimal", br#"{"ts":5,"account":"a"}"#);
    put(
        "trace_line",
        "escapes",
        br#"{"ts":0.5,"account":"a\u00e9\n","prompt":"\"quoted\" \\ text"}"#,
    );

    put("config_toml", "defaults", b"");
    put("config_toml", "tables", b"account_requests_per_minute = 30\nlimiter_capacity = 512\nshadow = false\n[link]\nmax_accounts = 256\nmax_values = 1024\nmax_templates = 256\nmax_pairs = 512\nseed = 99\n[score]\nmax_clusters = 128\n[observe]\nmode = \"after\"\n");
    put("config_toml", "fleet", b"deny_at = 0.9\n[fleet]\nnodes = 3\nlease = 4\nfail = \"closed\"\n[crowd]\nexcluded_kinds = [\"asn\"]\n");

    put(
        "request",
        "plain",
        b"\x20\x40\x10acct\xffa prompt\xffa system\xffmodel\xffip\xff203.0.113.7\xffdevice\xffd1",
    );
    put(
        "request",
        "empty-account",
        b"\x01\x01\x01\xff\xff\xff\xff\xff",
    );
    put(
        "request",
        "many",
        &[b"a\xff".repeat(80).as_slice()].concat(),
    );

    put(
        "c_api",
        "create-check-settle",
        &[
            0, 0, 1, 6, b'a', b'c', b'c', b'1', b'.', b'2', 2, 1, 9, 6, 3, b'a', b'c', b'c', 7, 0,
            8, 0,
        ],
    );
    put(
        "c_api",
        "restore-merge",
        &[
            0, 0, 4, 8, b'R', b'F', b'S', b'K', 7, 4, 0, 0, 5, 3, 1, 2, 3, 1, 2, b'x', b'y',
        ],
    );
    put(
        "c_api",
        "free-use",
        &[
            0, 0, 8, 0, 1, 2, b'a', b'b', 6, 1, b'a', 0, 0, 1, 2, b'a', b'b',
        ],
    );

    let fps = [("ip", "203.0.113.7"), ("device", "d1")];
    let req = Request {
        account: "acct_1",
        fingerprints: &fps,
        prompt: Some("Think step by step and show all of your reasoning: translate the passage about the harbour."),
        system: Some("You answer in JSON."),
        model: Some("m"),
        input_tokens: 40,
        max_tokens: 512,
    };
    let whole = Observation::of(&req, Some(300));
    let digested = whole.clone().digested(&Guard::new(small()));
    put("evidence_batch", "whole", &encode_batch(&[whole]));
    put(
        "evidence_batch",
        "digested",
        &encode_batch(&[digested, Observation::answer(7, 40, 300)]),
    );
    put("evidence_batch", "empty", &encode_batch(&[]));
    println!("seed corpora written under fuzz/corpus/");
}
