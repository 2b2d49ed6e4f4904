//! `ringfence intel`: export (from a trace and from a snapshot), revoke,
//! import with sightings, and their errors.

use super::{fails, lines, path_str, run, text, TempDir};
use serde_json::Value;
use std::path::Path;

/// The objects of type `kind` in the STIX bundle at `path` (which must be
/// a bundle).
fn objects(path: &Path, kind: &str) -> Vec<Value> {
    let b: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(b["type"], "bundle", "{}", path.display());
    b["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == kind)
        .cloned()
        .collect()
}

/// `intel export` then `intel import` with sightings, and their errors:
/// another key's bundle, a missing key file, a short key.
#[test]
fn intel_export_import_and_sightings() {
    let dir = TempDir::new("intel");
    let (t, key, bundle, seen) = (
        dir.path("trace.jsonl"),
        dir.path("key"),
        dir.path("bundle.json"),
        dir.path("sightings.json"),
    );
    // (An operation large enough to be flagged, sharing its stock.)
    let out = run(&[
        "simulate",
        "--scale",
        "0.02",
        "--campaign-scale",
        "5",
        "--seed",
        "7",
        "--out",
        path_str(&t),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&key, "a consortium key for the CLI test\n").unwrap();
    let producer = "identity--3dff565e-7265-4139-9cb0-eceed191fca9";
    let out = run(&[
        "intel",
        "export",
        "--trace",
        path_str(&t),
        "--key-file",
        path_str(&key),
        "--out",
        path_str(&bundle),
        "--producer-id",
        producer,
        "--producer-name",
        "Provider A",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let indicators = objects(&bundle, "indicator").len();
    assert!(indicators > 0, "{}", text(&out.stderr));
    let ids = |path: &Path| -> Vec<String> {
        let mut v: Vec<String> = objects(path, "indicator")
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // The same export from a snapshot of the replay (taken with the key
    // configured): the same indicators.
    let (cfg, snap, from_snap) = (
        dir.path("keyed.toml"),
        dir.path("guard.snap"),
        dir.path("from-snapshot.json"),
    );
    std::fs::write(&cfg, format!("[intel]\nkey_file = {:?}\n", path_str(&key))).unwrap();
    let out = run(&[
        "replay",
        path_str(&t),
        "--config",
        path_str(&cfg),
        "--snapshot",
        path_str(&snap),
        "-q",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export_snapshot = |key: &Path| {
        run(&[
            "intel",
            "export",
            "--snapshot",
            path_str(&snap),
            "--key-file",
            path_str(key),
            "--out",
            path_str(&from_snap),
            "--producer-id",
            producer,
            "--producer-name",
            "Provider A",
        ])
    };
    let out = export_snapshot(&key);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(ids(&from_snap), ids(&bundle));
    // The producer revokes two of them; only its own can be.
    let revocation = dir.path("revocation.json");
    let revoke = |who: &str, only: &[&str]| {
        let mut args = vec![
            "intel",
            "revoke",
            "--bundle",
            path_str(&bundle),
            "--key-file",
            path_str(&key),
            "--out",
            path_str(&revocation),
            "--producer-id",
            who,
            "--producer-name",
            "Provider A",
            "--at",
            "4102444800",
        ];
        for id in only {
            args.extend(["--indicator", id]);
        }
        run(&args)
    };
    let all = ids(&bundle);
    let out = revoke(producer, &[&all[0], &all[1]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let revoked = objects(&revocation, "indicator");
    assert_eq!(ids(&revocation), all[..2].to_vec());
    assert!(revoked.iter().all(|o| o["revoked"] == true));
    fails(
        &revoke("identity--9a7c0e52-1d3b-4f6a-8e2d-5c4b3a291807", &[]),
        1,
        "no live indicator",
    );
    // The same trace a day later, with its own bundle: the operation matches.
    let later = dir.path("later.jsonl");
    let shifted: Vec<String> = lines(&t)
        .into_iter()
        .map(|mut v| {
            v["ts"] = Value::from(v["ts"].as_f64().unwrap() + 86_400.0);
            v.to_string()
        })
        .collect();
    std::fs::write(&later, shifted.join("\n") + "\n").unwrap();
    let out = run(&[
        "intel",
        "import",
        "--bundle",
        path_str(&bundle),
        "--trace",
        path_str(&later),
        "--key-file",
        path_str(&key),
        "--trust",
        producer,
        "--sightings",
        path_str(&seen),
        "--sighter-id",
        "identity--9a7c0e52-1d3b-4f6a-8e2d-5c4b3a291807",
        "--sighter-name",
        "Provider B",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("imported"),
        "{}",
        text(&out.stderr)
    );
    let sightings = objects(&seen, "sighting");
    assert!(!sightings.is_empty());
    assert!(sightings.iter().all(|o| o["count"].as_u64().unwrap() > 0));
    // Refused whole, naming what is wrong: the bundle is from the future
    // for the day it was made from; another consortium's key; no key.
    let import = |trace: &Path, key: &Path| {
        run(&[
            "intel",
            "import",
            "--bundle",
            path_str(&bundle),
            "--trace",
            path_str(trace),
            "--key-file",
            path_str(key),
        ])
    };
    fails(&import(&t, &key), 1, "from the future");
    let other = dir.path("other-key");
    std::fs::write(&other, "another consortium key, 32 bytes").unwrap();
    fails(&import(&later, &other), 1, "not this consortium's key");
    fails(
        &import(&later, &dir.path("missing")),
        1,
        "cannot read the consortium key file",
    );
    std::fs::write(&other, "short").unwrap();
    let out = run(&[
        "intel",
        "export",
        "--trace",
        path_str(&t),
        "--key-file",
        path_str(&other),
        "--out",
        path_str(&bundle),
        "--producer-id",
        producer,
        "--producer-name",
        "A",
    ]);
    fails(&out, 1, "at least 16");
}
