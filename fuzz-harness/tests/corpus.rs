//! Every committed corpus input (`fuzz/corpus/<target>/`) and every crash
//! the fuzzers found (`fuzz/regressions/<target>/`) through its target, in
//! the normal suite: what was once fixed stays fixed.

use ringfence_fuzz_harness::TARGETS;
use std::path::PathBuf;

fn inputs(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&d) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_target_has_a_seed_corpus_and_takes_it() {
    for (name, run) in TARGETS {
        let corpus = inputs("corpus", name);
        assert!(
            corpus.len() >= 3,
            "{name}: a seed corpus of {} inputs",
            corpus.len()
        );
        for (path, bytes) in corpus {
            eprintln!("{}", path.display());
            run(&bytes);
        }
    }
}

#[test]
fn every_crash_found_stays_fixed() {
    for (name, run) in TARGETS {
        for (path, bytes) in inputs("regressions", name) {
            eprintln!("{}", path.display());
            run(&bytes);
        }
    }
}

#[test]
fn the_targets_take_any_bytes() {
    // A seeded walk of random inputs through every target: a smoke test of
    // the harness itself (the fuzzers do the real search).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (_, run) in TARGETS {
        for len in [0usize, 1, 2, 7, 64, 300] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            run(&bytes);
        }
    }
}
