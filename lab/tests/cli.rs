//! The `ringfence` command, run as a user runs it: simulate → replay with
//! every output → explain, bad input of every kind, standard input.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

// `ringfence intel …`, in the same test binary.
#[path = "cli/intel.rs"]
mod intel;

const BIN: &str = env!("CARGO_BIN_EXE_ringfence");

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ringfence-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a run failed with exit code `code`, a one-line message on
/// standard error containing `needle`, and no panic.
fn fails(out: &Output, code: i32, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small simulated trace, made once by `ringfence simulate`.
fn trace() -> &'static str {
    static TRACE: OnceLock<String> = OnceLock::new();
    TRACE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ringfence-cli-{}-trace", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trace.jsonl");
        let out = run(&[
            "simulate",
            "--scale",
            "0.02",
            "--seed",
            "7",
            "--out",
            path_str(&path),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let t = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        t
    })
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn simulate_replay_explain_round_trip() {
    let dir = TempDir::new("round-trip");
    let trace_path = dir.path("trace.jsonl");
    std::fs::write(&trace_path, trace()).unwrap();
    let n = trace().lines().count();
    assert!(n > 1000, "{n} lines");
    let first: Value = serde_json::from_str(trace().lines().next().unwrap()).unwrap();
    for field in [
        "ts",
        "account",
        "fingerprints",
        "prompt",
        "model",
        "input_tokens",
        "output_tokens",
        "label",
        "cohort",
    ] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }

    let (d, a, r, s) = (
        dir.path("decisions.jsonl"),
        dir.path("accounts.jsonl"),
        dir.path("report.json"),
        dir.path("guard.snapshot"),
    );
    let out = run(&[
        "replay",
        path_str(&trace_path),
        "--decisions",
        path_str(&d),
        "--accounts",
        path_str(&a),
        "--report",
        path_str(&r),
        "--snapshot",
        path_str(&s),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for section in [
        "What was found",
        "Campaign requests served",
        "Benign requests refused",
        "Benign accounts flagged, by cohort",
        "Time to detection",
        "Throughput and memory",
    ] {
        assert!(
            stdout.contains(section),
            "{section} missing from:\n{stdout}"
        );
    }

    // Decisions: one per trace line, in order, with the documented fields.
    let decisions = lines(&d);
    assert_eq!(decisions.len(), n);
    for (i, (dl, tl)) in decisions.iter().zip(trace().lines()).enumerate() {
        let t: Value = serde_json::from_str(tl).unwrap();
        assert_eq!(dl["line"], i as u64 + 1);
        assert_eq!(dl["account"], t["account"]);
        assert!(["allow", "throttle", "deny"].contains(&dl["decision"].as_str().unwrap()));
        assert!(dl["reasons"].is_array() && dl["cluster"].is_string());
        assert!(dl["cluster_size"].as_u64().unwrap() >= 1);
        assert!(dl["score"].is_number());
        assert!(dl.as_object().unwrap().contains_key("retry_after"));
    }

    // Accounts: one per distinct account, requests adding up.
    let accounts = lines(&a);
    let distinct: std::collections::HashSet<&str> = decisions
        .iter()
        .map(|d| d["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts.len(), distinct.len());
    let total: u64 = accounts
        .iter()
        .map(|a| a["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, n as u64);
    let refused: u64 = accounts
        .iter()
        .map(|a| a["refused"].as_u64().unwrap())
        .sum();
    let not_allowed = decisions
        .iter()
        .filter(|d| d["decision"] != "allow")
        .count() as u64;
    assert_eq!(refused, not_allowed);
    for acc in &accounts {
        for field in [
            "account",
            "cluster",
            "cluster_size",
            "score",
            "flagged",
            "requests",
            "refused",
        ] {
            assert!(!acc[field].is_null(), "{field} in {acc}");
        }
    }

    // The report.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
    assert_eq!(report["requests"], n as u64);
    assert_eq!(report["accounts"], accounts.len() as u64);
    assert!(report["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["peak_memory_bytes"].as_u64().unwrap() > 1 << 20);
    let e = &report["evaluation"];
    assert_eq!(e["campaign"]["operations"].as_object().unwrap().len(), 3);
    assert!(
        e["benign_cohorts"]["individual"]["accounts"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(e["clusters"]["pairwise_recall"].is_number());

    // The highest score any benign account's verdict carried, overall and
    // per cohort, as the decisions say.
    let mut campaign = std::collections::HashSet::new();
    let mut cohort_of = std::collections::HashMap::new();
    for line in trace().lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        let account = t["account"].as_str().unwrap().to_string();
        if t["label"].as_str().unwrap().starts_with("campaign:") {
            campaign.insert(account.clone());
        }
        cohort_of
            .entry(account)
            .or_insert_with(|| t["cohort"].as_str().unwrap().to_string());
    }
    let mut highest: std::collections::BTreeMap<&str, f64> = Default::default();
    for d in &decisions {
        let account = d["account"].as_str().unwrap();
        if !campaign.contains(account) {
            let e = highest.entry(cohort_of[account].as_str()).or_default();
            *e = e.max(d["score"].as_f64().unwrap());
        }
    }
    let overall = highest.values().copied().fold(0.0, f64::max);
    assert_eq!(e["benign"]["max_verdict_score"].as_f64(), Some(overall));
    let cohort = e["benign"]["max_verdict_score_cohort"].as_str().unwrap();
    assert_eq!(highest[cohort], overall);
    assert!(e["benign"]["max_verdict_score_account"].is_string());
    for (cohort, max) in &highest {
        let c = &e["benign_cohorts"][*cohort];
        assert_eq!(c["max_verdict_score"].as_f64(), Some(*max), "{cohort}");
        assert!(c["refused_account_limit"].is_u64(), "{cohort}");
    }

    // Explain a campaign account from the snapshot.
    let account = e["clusters"]["largest"][0]["sample_account"]
        .as_str()
        .unwrap();
    let out = run(&["explain", account, "--snapshot", path_str(&s)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let x = text(&out.stdout);
    assert!(
        x.starts_with(&format!("account {account} is in cluster ")),
        "{x}"
    );
    assert!(x.contains("shares") && x.contains("score"), "{x}");

    // An account the snapshot does not know.
    let out = run(&["explain", "nobody", "--snapshot", path_str(&s)]);
    fails(&out, 1, "account `nobody` is not in the snapshot");
}

#[test]
fn a_bad_line_stops_the_replay_with_its_number() {
    let dir = TempDir::new("bad-line");
    let path = dir.path("bad.jsonl");
    let mut lines: Vec<&str> = trace().lines().take(5).collect();
    lines[2] = r#"{"ts": "noon", "account": "a"}"#;
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = run(&["replay", path_str(&path)]);
    fails(
        &out,
        1,
        "bad trace line 3, column 13: invalid type: string \"noon\", expected `ts` as a number of seconds since the epoch (--skip-bad counts and skips such lines)",
    );
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );

    // --skip-bad: counted, reported, skipped.
    let report = dir.path("report.json");
    let out = run(&[
        "replay",
        path_str(&path),
        "--skip-bad",
        "--report",
        path_str(&report),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("skipped bad line 3, column 13"),
        "{}",
        text(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (r["bad_lines"].as_u64(), r["requests"].as_u64()),
        (Some(1), Some(4))
    );
}

#[test]
fn garbage_of_every_kind_is_an_error_not_a_panic() {
    let dir = TempDir::new("garbage");
    let cases: &[(&[u8], &str)] = &[
        (
            b"{\"ts\": 1, \"account\": \"a\"",
            "line 1, column 24: not valid JSON (EOF while parsing an object)",
        ),
        (b"\xff\xfe\n", "line 1, column 1: not valid UTF-8"),
        (
            b"null\n",
            "line 1, column 4: invalid type: null, expected a JSON object (one request)",
        ),
        (
            b"{\"ts\": 1, \"account\": \"a\", \"fingerprints\": {\"ip\": {}}}",
            "expected fingerprint `ip` as a string or an array of strings",
        ),
        (
            b"{\"ts\": 1e400, \"account\": \"a\"}",
            "number out of range",
        ),
    ];
    for (i, (input, message)) in cases.iter().enumerate() {
        let path = dir.path(&format!("g{i}.jsonl"));
        std::fs::write(&path, input).unwrap();
        fails(&run(&["replay", path_str(&path)]), 1, message);
    }
    fails(
        &run(&["replay", path_str(&dir.path("missing.jsonl"))]),
        1,
        "cannot open",
    );
    fails(
        &run(&[
            "explain",
            "a",
            "--snapshot",
            path_str(&dir.path("g0.jsonl")),
        ]),
        1,
        "cannot restore the guard snapshot",
    );
    fails(
        &run(&["simulate", "--scale", "0", "--out", "-"]),
        1,
        "--scale must be above 0",
    );
    fails(
        &run(&["simulate", "--scenario", "nope", "--out", "-"]),
        1,
        "scenario `nope` is neither built in (default, adaptive, seed, seed-adaptive) nor a readable file",
    );
    for bad in ["nan", "1000", "-1", "inf"] {
        let flag = format!("--campaign-scale={bad}");
        fails(
            &run(&["simulate", flag.as_str(), "--out", "-"]),
            1,
            "--campaign-scale must be from 0 to 100",
        );
        fails(
            &run(&["demo", flag.as_str()]),
            1,
            "--campaign-scale must be from 0 to 100",
        );
    }
    fails(
        &run(&["simulate", "--campaign-scale", "lots", "--out", "-"]),
        2,
        "invalid value 'lots'",
    );
    fails(&run(&["replay"]), 2, "Usage");
    fails(&run(&["frobnicate"]), 2, "Usage");
}

#[test]
fn standard_input_and_standard_output() {
    let input: String = trace()
        .lines()
        .take(300)
        .map(|l| format!("{l}\n"))
        .collect();
    let out = run_with_stdin(
        &["replay", "-", "--report", "-", "--quiet"],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["requests"], 300);
    // The readable report moves to standard error when standard output is taken.
    assert!(text(&out.stderr).contains("Throughput and memory"));

    let out = run_with_stdin(&["replay", "-", "--decisions", "-"], input.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 300);
}

#[test]
fn replay_on_threads_decides_the_same() {
    let dir = std::env::temp_dir().join(format!("ringfence-cli-{}-threads", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.jsonl");
    std::fs::write(&path, trace()).unwrap();
    let decide = |threads: &str| {
        let out = run(&[
            "replay",
            path_str(&path),
            "--decisions",
            "-",
            "-q",
            "--threads",
            threads,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        out.stdout
    };
    let one = decide("1");
    assert_eq!(text(&one).lines().count(), trace().lines().count());
    assert!(one == decide("3"), "--threads 3 decided otherwise");
    fails(
        &run(&["replay", path_str(&path), "--threads", "0"]),
        2,
        "--threads",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_over_nodes_names_what_is_wrong() {
    let dir = TempDir::new("nodes");
    let path = dir.path("trace.jsonl");
    std::fs::write(&path, trace()).unwrap();
    let p = path_str(&path);
    fails(
        &run(&["replay", p, "--redis", "redis://127.0.0.1:1/"]),
        1,
        "--nodes 2",
    );
    fails(&run(&["replay", p, "--nodes", "0"]), 2, "--nodes");
    fails(
        &run(&[
            "replay",
            p,
            "--nodes",
            "3",
            "--redis",
            "http://127.0.0.1:1/",
        ]),
        1,
        "fleet.url",
    );
    // A server that does not answer is an error before the replay starts.
    fails(
        &run(&[
            "replay",
            p,
            "--nodes",
            "3",
            "--redis",
            "redis://127.0.0.1:1/",
        ]),
        1,
        "unavailable",
    );
    let out = run(&["replay", p, "--nodes", "3", "-q", "--decisions", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), trace().lines().count());
}

/// `ringfence replay TRACE --config CONFIG` and `extra` arguments.
fn replay_with_config(trace: &Path, config: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["replay", path_str(trace), "--config", path_str(config)];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_bad_configuration_names_its_key() {
    let dir = TempDir::new("config");
    let config = dir.path("guard.toml");
    std::fs::write(&config, "deny_at = 0.7\nshare_att = 0.4\n").unwrap();
    let trace_path = dir.path("t.jsonl");
    std::fs::write(&trace_path, trace().lines().next().unwrap()).unwrap();
    let out = replay_with_config(&trace_path, &config, &[]);
    fails(&out, 1, "invalid ringfence configuration");
    fails(&out, 1, "share_att");

    std::fs::write(&config, "deny_at = 0.3\n").unwrap();
    let out = replay_with_config(&trace_path, &config, &[]);
    fails(&out, 1, "`deny_at` must not be below `share_at`");

    // A good one changes the report's settings.
    std::fs::write(&config, "deny_at = 0.9\n").unwrap();
    let out = replay_with_config(&trace_path, &config, &["--report", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["settings"]["deny_at"], 0.9);
}

#[test]
fn scenario_files_and_seeds() {
    let dir = TempDir::new("scenario");
    let file = dir.path("small.toml");
    std::fs::write(&file, "name = \"tiny\"\nhours = 2.0\nindividuals = 50\ncampaign_fraction = 0.05\n[cohorts]\nagent_users = 10\n").unwrap();
    let a = run(&[
        "simulate",
        "--scenario",
        path_str(&file),
        "--scale",
        "1",
        "--out",
        "-",
    ]);
    assert!(a.status.success(), "{}", text(&a.stderr));
    let b = run(&[
        "simulate",
        "--scenario",
        path_str(&file),
        "--scale",
        "1",
        "--seed",
        "9",
        "--out",
        "-",
    ]);
    assert!(b.status.success());
    assert_ne!(a.stdout, b.stdout);
    let last: Value = serde_json::from_str(text(&a.stdout).lines().last().unwrap()).unwrap();
    let first: Value = serde_json::from_str(text(&a.stdout).lines().next().unwrap()).unwrap();
    assert!(last["ts"].as_f64().unwrap() - first["ts"].as_f64().unwrap() <= 2.0 * 3600.0);

    std::fs::write(&file, "hours = -2.0\n").unwrap();
    fails(
        &run(&["simulate", "--scenario", path_str(&file), "--out", "-"]),
        1,
        "`hours` must be above 0",
    );
    std::fs::write(&file, "[knobs]\nmix = 0.5\n").unwrap();
    fails(
        &run(&["simulate", "--scenario", path_str(&file), "--out", "-"]),
        1,
        "mix",
    );
}

#[test]
fn the_demo_runs_small() {
    let out = run(&["demo", "--scale", "0.02"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ringfence demo: the `default` scenario at scale 0.02 (24 h of traffic"),
        "{stdout}"
    );
    assert!(
        stdout.contains("replayed through a guard with the default configuration sized for"),
        "{stdout}"
    );
    assert!(stdout.contains("(GuardConfig::for_accounts)"), "{stdout}");
    assert!(stdout.contains("per-account only"), "{stdout}");
    assert!(stdout.contains("requests/s"), "{stdout}");
    assert!(stdout.contains("highest score"), "{stdout}");
    assert!(stdout.contains("first flagged"), "{stdout}");
}

/// Campaign and benign accounts of a simulated trace (JSON Lines).
fn campaign_and_benign(trace: &[u8]) -> (usize, usize) {
    let mut campaign = std::collections::HashSet::new();
    let mut benign = std::collections::HashSet::new();
    for line in text(trace).lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let account = r["account"].as_str().unwrap().to_string();
        if r["cohort"] == "campaign" {
            campaign.insert(account);
        } else {
            benign.insert(account);
        }
    }
    (campaign.len(), benign.len())
}

#[test]
fn campaign_scale_grows_the_campaign_only() {
    let simulate = |extra: &[&str]| {
        let mut args = vec!["simulate", "--scale", "0.02", "--out", "-"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        campaign_and_benign(&out.stdout)
    };
    let (c1, b1) = simulate(&[]);
    let (c4, b4) = simulate(&["--campaign-scale", "4"]);
    assert_eq!(b1, b4);
    assert!(c1 > 0 && c4.abs_diff(4 * c1) <= 4, "{c1} then {c4}");
    let (c0, b0) = simulate(&["--campaign-scale", "0"]);
    assert_eq!((c0, b0), (0, b1));

    // The demo says so in its header.
    let out = run(&["demo", "--scale", "0.01", "--campaign-scale", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("at scale 0.01, campaign scale 2 ("),
        "{}",
        text(&out.stdout)
    );
}
