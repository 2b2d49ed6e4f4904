//! `ringfence replay … --html` and `ringfence demo --html`: the page is
//! parsed with a real HTML5 parser (scraper, on html5ever) and read as a
//! browser would: its charts have data, its tables say what the text
//! report says, the top cluster's graph names what the guard says its
//! accounts share, nothing is loaded from elsewhere, and attacker-chosen
//! names stay text.

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_ringfence");

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ringfence-html-{}-{name}", std::process::id()));
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sel(css: &str) -> Selector {
    Selector::parse(css).unwrap()
}

/// The text of an element, its whitespace as written.
fn inner(e: ElementRef<'_>) -> String {
    e.text().collect()
}

/// A small simulated trace with a campaign large enough to be refused:
/// made once by `ringfence simulate`.
fn trace() -> &'static str {
    static TRACE: OnceLock<String> = OnceLock::new();
    TRACE.get_or_init(|| {
        let dir = TempDir::new("trace");
        let path = dir.path("trace.jsonl");
        ok(&run(&[
            "simulate",
            "--scale",
            "0.02",
            "--seed",
            "7",
            "--campaign-scale",
            "5",
            "--out",
            s(&path),
        ]));
        std::fs::read_to_string(&path).unwrap()
    })
}

/// Asserts nothing on the page loads from elsewhere.
fn self_contained(page: &str, doc: &Html) {
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert_eq!(doc.select(&sel("script")).count(), 0, "no script at all");
    assert_eq!(doc.select(&sel("link")).count(), 0, "no <link>");
    for e in doc.select(&sel("[src], [href], [srcset], [data]")) {
        for attr in ["src", "href", "srcset", "data"] {
            if let Some(v) = e.value().attr(attr) {
                let v = v.trim().to_ascii_lowercase();
                assert!(
                    !(v.starts_with("http") || v.starts_with("//") || v.contains(':')),
                    "external reference {attr}={v:?}"
                );
            }
        }
    }
    for e in doc.select(&sel("style")) {
        let css = inner(e);
        assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
    }
}

/// Asserts each report section of the page says what the text report
/// says: its title, its lines, and every table row's cells, in order on
/// one line of the text.
fn tables_match(doc: &Html, report_text: &str) -> usize {
    let mut tables = 0;
    let sections: Vec<ElementRef<'_>> = doc.select(&sel("section.report-section")).collect();
    assert!(sections.len() >= 2);
    for section in sections {
        let title = inner(section.select(&sel("h3")).next().unwrap());
        assert!(
            report_text.contains(&format!("\n{title}\n")),
            "section {title:?} not in the text report"
        );
        for p in section.select(&sel("p")) {
            let line = format!("  {}\n", inner(p));
            assert!(
                report_text.contains(&line),
                "{line:?} not in the text report"
            );
        }
        for table in section.select(&sel("table")) {
            tables += 1;
            for tr in table.select(&sel("tr")) {
                let cells: Vec<String> = tr
                    .select(&sel("th, td"))
                    .map(|c| inner(c).trim().to_string())
                    .collect();
                let found = report_text.lines().any(|l| {
                    let mut at = 0;
                    cells.iter().all(|c| match l[at..].find(c.as_str()) {
                        Some(i) => {
                            at += i + c.len();
                            true
                        }
                        None => false,
                    })
                });
                assert!(found, "row {cells:?} of {title:?} not in the text report");
            }
        }
    }
    tables
}

/// The sum of a timeline series' `data-total`.
fn series_total(doc: &Html, name: &str) -> u64 {
    let s = sel(&format!("svg#timeline polyline[data-series=\"{name}\"]"));
    let e = doc
        .select(&s)
        .next()
        .unwrap_or_else(|| panic!("no series {name}"));
    e.value().attr("data-total").unwrap().parse().unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

#[test]
fn the_page_of_a_small_replay() {
    let dir = TempDir::new("replay");
    let (t, page_path, report_path, snapshot) = (
        dir.path("trace.jsonl"),
        dir.path("page.html"),
        dir.path("report.json"),
        dir.path("snapshot.bin"),
    );
    std::fs::write(&t, trace()).unwrap();
    let plain = ok(&run(&["replay", "-q", s(&t)]));
    let report_text = ok(&run(&[
        "replay",
        "-q",
        s(&t),
        "--html",
        s(&page_path),
        "--report",
        s(&report_path),
        "--snapshot",
        s(&snapshot),
    ]));
    // The text report is as it was without --html (but the timing lines).
    let stable = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.contains("requests/s") && !l.contains("peak memory"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(stable(&plain), stable(&report_text));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let page = std::fs::read_to_string(&page_path).unwrap();
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    self_contained(&page, &doc);
    let title = inner(doc.select(&sel("title")).next().unwrap());
    assert!(title.contains("trace.jsonl"), "{title}");

    // Over time: every series has a point per bucket, and its totals are
    // the report's.
    let series: Vec<ElementRef<'_>> = doc.select(&sel("svg#timeline polyline.series")).collect();
    assert_eq!(series.len(), 4);
    for p in &series {
        let points = p.value().attr("points").unwrap().split(' ').count();
        assert!(points > 20, "{points} points");
    }
    let e = &report["evaluation"];
    let campaign = &e["campaign"];
    assert_eq!(
        series_total(&doc, "campaign_served"),
        u(&campaign["served"])
    );
    assert_eq!(
        series_total(&doc, "campaign_served") + series_total(&doc, "campaign_refused"),
        u(&campaign["requests"])
    );
    assert!(series_total(&doc, "campaign_refused") > 0);
    // Benign-labelled requests: the benign accounts' and the genuine
    // requests mixed into campaign accounts.
    let benign =
        series_total(&doc, "benign_refused") + series_total(&doc, "benign_refused_account_limit");
    let b = &e["benign"];
    let accounts_benign = u(&b["refused"]) + u(&b["refused_account_limit"]);
    assert!(benign >= accounts_benign);
    assert!(benign <= accounts_benign + u(&e["campaign_genuine_traffic"]["refused"]));
    // Each operation refused is marked, at or after its first refusal.
    let mut marked = 0;
    for (name, op) in campaign["operations"].as_object().unwrap() {
        let mark = doc
            .select(&sel("svg#timeline g.first-refusal"))
            .find(|g| g.value().attr("data-operation") == Some(name.as_str()));
        match op["first_refused"].as_object() {
            Some(first) => {
                let mark = mark.unwrap_or_else(|| panic!("{name} not marked"));
                let at: f64 = mark.value().attr("data-secs").unwrap().parse().unwrap();
                let after = first["secs_after_first_request"].as_f64().unwrap();
                assert!(at + 0.01 >= after, "{name}: {at} < {after}");
                assert!(inner(mark).contains(name.as_str()));
                marked += 1;
            }
            None => assert!(mark.is_none(), "{name} marked but never refused"),
        }
    }
    assert!(marked >= 2, "{marked} operations marked");

    // The clusters: campaign ones against benign ones.
    let points: Vec<ElementRef<'_>> = doc
        .select(&sel("svg#cluster-scatter circle.point"))
        .collect();
    assert!(!points.is_empty());
    let kind = |k: &str| {
        points
            .iter()
            .filter(|p| p.value().attr("data-kind") == Some(k))
            .count()
    };
    assert!(kind("operation") >= 2 && kind("cohort") >= 1);
    for p in &points {
        let score: f64 = p.value().attr("data-score").unwrap().parse().unwrap();
        let size: u32 = p.value().attr("data-size").unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&score) && size >= 2);
    }

    // The top cluster's graph: the report's largest cluster, its accounts,
    // values the guard names for it (as `explain` prints them), and edges.
    let largest = &e["clusters"]["largest"][0];
    let articles: Vec<ElementRef<'_>> = doc.select(&sel("#evidence article.cluster")).collect();
    assert!(!articles.is_empty() && articles.len() <= 5);
    let top = articles[0];
    assert_eq!(
        top.value().attr("data-cluster"),
        largest["cluster"].as_str()
    );
    let sample = largest["sample_account"].as_str().unwrap();
    let accounts: Vec<&str> = top
        .select(&sel("g.account"))
        .map(|g| g.value().attr("data-account").unwrap())
        .collect();
    assert!(accounts.contains(&sample), "{sample} not in {accounts:?}");
    let explained = ok(&run(&["explain", sample, "--snapshot", s(&snapshot)]));
    let values: Vec<(String, String)> = top
        .select(&sel("g.value"))
        .map(|g| {
            let v = g.value();
            (
                v.attr("data-kind").unwrap().to_string(),
                v.attr("data-value").unwrap().to_string(),
            )
        })
        .collect();
    assert!(!values.is_empty());
    let (k, v) = &values[0];
    assert!(
        explained.contains(&format!("shares {k} {v:?}")),
        "{k} {v:?} not in:\n{explained}"
    );
    assert!(inner(top).contains(k.as_str()));
    assert!(
        top.select(&sel("path.edge")).count() > 0,
        "no edges in the top cluster's graph"
    );
    let shown = format!(
        "{} of its {} accounts shown",
        accounts.len(),
        u(&largest["size"])
    );
    assert!(inner(top).contains(&shown), "{shown}");

    // The tables: what the text report prints.
    assert!(tables_match(&doc, &report_text) >= 4);
}

/// Account names, values and labels are the client's: they stay text.
#[test]
fn attacker_strings_stay_text() {
    let dir = TempDir::new("escape");
    let (t, page_path) = (dir.path("trace.jsonl"), dir.path("page.html"));
    let names = [
        "<script>alert(\"a\")</script>",
        "x\"><img src=x onerror=alert(1)>",
        "</svg></title><script>alert(3)</script>&amp;",
    ];
    let card = "<b>card</b>\"'&";
    let device = "</text><script>alert(4)</script>";
    let mut trace = String::new();
    for minute in 0..12 {
        for (i, name) in names.iter().enumerate() {
            let line = serde_json::json!({
                "ts": 1_700_000_000.0 + f64::from(minute) * 60.0 + i as f64,
                "account": name,
                "fingerprints": {"payment": card, "device": device, "ip": "198.51.100.7"},
                "prompt": "Think step by step: <script>alert(5)</script>",
                "label": "campaign:<i>op</i>",
                "cohort": "<u>c</u>",
            });
            trace.push_str(&line.to_string());
            trace.push('\n');
        }
        let benign = serde_json::json!({
            "ts": 1_700_000_000.0 + f64::from(minute) * 60.0 + 30.0,
            "account": "benign<&>",
            "fingerprints": {"ip": "203.0.113.9"},
            "prompt": "hello",
            "label": "benign",
            "cohort": "<script>cohort</script>",
        });
        trace.push_str(&benign.to_string());
        trace.push('\n');
    }
    std::fs::write(&t, &trace).unwrap();
    let report_text = ok(&run(&["replay", "-q", s(&t), "--html", s(&page_path)]));
    let page = std::fs::read_to_string(&page_path).unwrap();
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    self_contained(&page, &doc);
    assert_eq!(doc.select(&sel("img, b, i, u")).count(), 0);
    // The names come back, as they were, from attributes and text.
    let accounts: Vec<&str> = doc
        .select(&sel("g.account"))
        .map(|g| g.value().attr("data-account").unwrap())
        .collect();
    for name in names {
        assert!(accounts.contains(&name), "{name:?} not in {accounts:?}");
    }
    let values: Vec<&str> = doc
        .select(&sel("g.value"))
        .map(|g| g.value().attr("data-value").unwrap())
        .collect();
    assert!(values.contains(&card), "{values:?}");
    assert!(values.contains(&device), "{values:?}");
    let cells: Vec<String> = doc.select(&sel("td")).map(inner).collect();
    assert!(cells.iter().any(|c| c == "<i>op</i>"), "{cells:?}");
    assert!(
        cells.iter().any(|c| c == "<script>cohort</script>"),
        "{cells:?}"
    );
    assert!(tables_match(&doc, &report_text) >= 3);
}

#[test]
fn bad_paths_are_clear_errors() {
    let dir = TempDir::new("bad-paths");
    let t = dir.path("trace.jsonl");
    std::fs::write(&t, trace().lines().take(50).collect::<Vec<_>>().join("\n")).unwrap();
    let missing = dir.path("no/such/dir/page.html");
    for args in [
        vec!["replay", "-q", s(&t), "--html", s(&missing)],
        vec!["replay", "-q", s(&t), "--html", s(&dir.0)],
        vec!["demo", "--scale", "0.01", "--html", s(&missing)],
    ] {
        let out = run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("ringfence: error: cannot create"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        // It failed before the work: no report.
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

#[test]
fn standard_input_and_the_demo() {
    let dir = TempDir::new("stdin-demo");
    let page_path = dir.path("page.html");
    let mut child = Command::new(BIN)
        .args(["replay", "-q", "-", "--html", s(&page_path)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), trace().as_bytes()).unwrap();
    ok(&child.wait_with_output().unwrap());
    let page = std::fs::read_to_string(&page_path).unwrap();
    let doc = Html::parse_document(&page);
    // Read once: who presents which value cannot be known, and says so.
    assert!(doc.select(&sel("#evidence article.cluster")).count() > 0);
    assert_eq!(doc.select(&sel("path.edge:not(.crowd-edge)")).count(), 0);
    assert!(inner(doc.select(&sel("#evidence")).next().unwrap()).contains("not known"));

    // The demo, its page to standard output (the text report goes to
    // standard error then).
    let out = run(&["demo", "--scale", "0.02", "--html", "-"]);
    let page = ok(&out);
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    self_contained(&page, &doc);
    let header = inner(doc.select(&sel("header")).next().unwrap());
    assert!(header.contains("`default` scenario"), "{header}");
    assert!(doc.select(&sel("svg#timeline polyline.series")).count() == 4);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Campaign requests served"), "{stderr}");
    assert!(tables_match(&doc, &stderr) >= 4);
}
