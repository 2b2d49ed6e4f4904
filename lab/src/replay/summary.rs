//! The readable report as sections of lines and tables ([`sections`]), so
//! that the text report ([`to_text`]) and the HTML page print the same
//! numbers, formatted the same way.

use super::report::{Detection, Report};
use ringfence::guard::Guard;
use std::fmt::Write;

/// One section of the readable report: a title, then lines and tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Its title.
    pub title: String,
    /// What it says, in order.
    pub blocks: Vec<Block>,
}

/// A line of text or a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A line of text.
    Line(String),
    /// A table.
    Table(Table),
}

/// A table: a header, rows of cells, and which columns align right.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The columns' names.
    pub header: Vec<String>,
    /// The rows, one cell per column.
    pub rows: Vec<Vec<String>>,
    /// Whether each column aligns right (numbers).
    pub right: Vec<bool>,
}

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage, with the precision small shares need.
pub fn pct(share: f64) -> String {
    let p = 100.0 * share;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.1} %")
    } else if p >= 0.1 {
        format!("{p:.2} %")
    } else {
        format!("{p:.3} %")
    }
}

/// Seconds as `2 h 05 min`, `4 min 10 s` or `12.3 s`.
pub fn duration(secs: f64) -> String {
    if secs >= 3600.0 {
        let m = (secs / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    } else if secs >= 60.0 {
        let s = secs.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{secs:.1} s")
    }
}

fn bytes(n: u64) -> String {
    format!("{:.0} MiB", n as f64 / (1024.0 * 1024.0))
}

fn detection(d: Option<&Detection>, requests: u64) -> String {
    match d {
        None => "never".to_string(),
        Some(d) => format!(
            "after {} of its {} requests ({}), {} after its first",
            count(d.requests_before),
            count(requests),
            pct(d.share_of_requests),
            duration(d.secs_after_first_request)
        ),
    }
}

/// The text of `sections`: each title after a blank line, lines indented,
/// tables' columns padded to their widest cell.
pub fn to_text(sections: &[Section]) -> String {
    let mut o = String::new();
    for s in sections {
        let _ = writeln!(o, "\n{}", s.title);
        for b in &s.blocks {
            match b {
                Block::Line(l) => {
                    let _ = writeln!(o, "  {l}");
                }
                Block::Table(t) => table_text(&mut o, t),
            }
        }
    }
    o
}

/// Columns padded to their widest cell, right-aligned where `t.right` says.
fn table_text(out: &mut String, t: &Table) {
    let mut widths: Vec<usize> = t.header.iter().map(|h| h.chars().count()).collect();
    for row in &t.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str("  ");
            if t.right.get(i).copied().unwrap_or(false) {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &t.header);
    for row in &t.rows {
        line(out, row);
    }
}

/// A section being written.
struct Writer {
    sections: Vec<Section>,
}

impl Writer {
    fn section(&mut self, title: impl Into<String>) {
        self.sections.push(Section {
            title: title.into(),
            blocks: Vec::new(),
        });
    }

    fn block(&mut self, b: Block) {
        if let Some(s) = self.sections.last_mut() {
            s.blocks.push(b);
        }
    }

    fn line(&mut self, l: String) {
        self.block(Block::Line(l));
    }

    fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>, right: &[bool]) {
        self.block(Block::Table(Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
            right: right.to_vec(),
        }));
    }
}

/// The strongest value of each of the first three kinds `guard` gives as
/// evidence of `account`'s cluster.
fn strongest_evidence(guard: Option<&Guard>, account: &str) -> String {
    guard
        .and_then(|g| g.explain(account))
        .map(|x| {
            let mut kinds: Vec<&str> = Vec::new();
            let mut shown = Vec::new();
            for v in &x.shared {
                if kinds.len() == 3 {
                    break;
                }
                if !kinds.contains(&v.kind.as_str()) {
                    kinds.push(&v.kind);
                    shown.push(format!("{} ~{:.0} (w {:.2})", v.kind, v.accounts, v.weight));
                }
            }
            shown.join(", ")
        })
        .unwrap_or_default()
}

/// The readable report's sections; `guard` (the replayed one) adds each
/// cluster's evidence.
pub fn sections(r: &Report, guard: Option<&Guard>) -> Vec<Section> {
    let mut o = Writer {
        sections: Vec::new(),
    };
    o.section("Replay");
    o.line(format!(
        "{} requests from {} accounts, {} of trace time",
        count(r.requests),
        count(r.accounts),
        duration(r.trace_secs)
    ));
    let reasons: Vec<String> = r
        .reasons
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {}", count(*n)))
        .collect();
    o.line(format!(
        "allowed {}, throttled {}, denied {}{}",
        count(r.allowed),
        count(r.throttled),
        count(r.denied),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" (reasons given: {})", reasons.join(", "))
        }
    ));
    if r.bad_lines > 0 || r.out_of_order > 0 {
        o.line(format!(
            "{} malformed lines skipped, {} lines earlier than the one before",
            count(r.bad_lines),
            count(r.out_of_order)
        ));
    }
    if let Some(e) = &r.evaluation {
        evaluation(&mut o, e, guard);
    }
    o.section("Throughput and memory");
    o.line(format!(
        "{} requests in {:.1} s: {} requests/s (reading and JSON parsing included; the guard on one thread)",
        count(r.requests),
        r.wall_secs,
        count(r.requests_per_sec.round() as u64)
    ));
    o.line(match r.peak_memory_bytes {
        Some(m) => format!("peak memory {} (the whole process)", bytes(m)),
        None => "peak memory: not known on this platform".to_string(),
    });
    o.sections
}

fn evaluation(o: &mut Writer, e: &super::Evaluation, guard: Option<&Guard>) {
    let c = &e.campaign;
    o.section("What was found");
    o.line(format!(
        "{} campaign accounts in {} operations; {} flagged ({}) at the end",
        count(c.accounts),
        c.operations.len(),
        count(c.accounts_flagged),
        pct(c.accounts_flagged_share)
    ));
    let k = &e.clusters;
    o.line(format!(
        "{} clusters hold campaign accounts; the largest:",
        count(k.campaign_clusters)
    ));
    let rows: Vec<Vec<String>> = k
        .largest
        .iter()
        .take(8)
        .map(|cl| {
            vec![
                cl.cluster.to_string(),
                count(u64::from(cl.size)),
                format!("{} {}", cl.operation_accounts, cl.operation),
                count(cl.benign_accounts),
                format!("{:.2}", cl.score),
                if cl.flagged { "yes" } else { "no" }.to_string(),
                strongest_evidence(guard, &cl.sample_account),
            ]
        })
        .collect();
    o.table(
        &[
            "cluster",
            "size",
            "campaign",
            "benign",
            "score",
            "flagged",
            "strongest shared evidence: kind ~accounts (weight)",
        ],
        rows,
        &[false, true, false, true, true, false, false],
    );
    if k.untracked_campaign_accounts + k.untracked_benign_accounts > 0 {
        o.line(format!(
            "in no cluster at the end (evicted from the guard's tables, or evidence expired): {} campaign accounts, each counted on its own, and {} benign",
            count(k.untracked_campaign_accounts),
            count(k.untracked_benign_accounts)
        ));
    }
    let opt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    o.line(format!(
        "clusters against operations, over pairs of accounts: precision {}, recall {}",
        opt(k.pairwise_precision),
        opt(k.pairwise_recall)
    ));

    o.section("Campaign requests served");
    let mut rows = vec![vec![
        "all operations".to_string(),
        count(c.requests),
        pct(c.served_share),
        pct(c.baseline_served_share),
    ]];
    for (name, op) in &c.operations {
        rows.push(vec![
            name.clone(),
            count(op.requests),
            pct(op.served_share),
            pct(op.baseline_served_share),
        ]);
    }
    o.table(
        &["", "requests", "ringfence", "per-account only"],
        rows,
        &[false, true, true, true],
    );

    let b = &e.benign;
    o.section("Benign requests refused");
    o.line(format!(
        "{} of {} ({}) for a reason other than their own account's limit",
        count(b.refused),
        count(b.requests),
        pct(b.refused_share)
    ));
    o.line(format!(
        "{} by their own account's limit (as a per-account-only limiter would)",
        count(b.refused_account_limit)
    ));
    let m = &e.campaign_genuine_traffic;
    if m.requests > 0 {
        o.line(format!(
            "genuine requests mixed into campaign accounts: {} of {} refused ({})",
            count(m.refused),
            count(m.requests),
            pct(m.refused_share)
        ));
    }

    o.section("Benign accounts flagged, by cohort");
    let mut rows: Vec<Vec<String>> = e
        .benign_cohorts
        .iter()
        .map(|(name, c)| {
            vec![
                name.clone(),
                count(c.accounts),
                count(c.flagged),
                pct(c.flagged_share),
                count(c.flagged_ever),
                pct(c.refused_share),
                format!("{:.2}", c.max_verdict_score),
            ]
        })
        .collect();
    rows.push(vec![
        "all benign".to_string(),
        count(b.accounts),
        count(b.accounts_flagged),
        pct(b.accounts_flagged_share),
        count(b.accounts_flagged_ever),
        pct(b.refused_share),
        format!("{:.2}", b.max_verdict_score),
    ]);
    o.table(
        &[
            "cohort",
            "accounts",
            "flagged",
            "share",
            "flagged at some point",
            "requests refused*",
            "highest score",
        ],
        rows,
        &[false, true, true, true, true, true, true],
    );
    o.line(
        "* for a reason other than their own account's limit; highest score: of any verdict on the cohort's accounts"
            .to_string(),
    );
    if let (Some(account), Some(cohort)) =
        (&b.max_verdict_score_account, &b.max_verdict_score_cohort)
    {
        o.line(format!(
            "the highest, {:.2}, was {account}'s ({cohort})",
            b.max_verdict_score
        ));
    }

    o.section(
        "Time to detection (each operation's first request refused by cluster policy, and first flagged)",
    );
    let rows: Vec<Vec<String>> = c
        .operations
        .iter()
        .map(|(name, op)| {
            vec![
                name.clone(),
                format!(
                    "{} of {} ({})",
                    count(op.accounts_flagged),
                    count(op.accounts),
                    pct(if op.accounts == 0 {
                        0.0
                    } else {
                        op.accounts_flagged as f64 / op.accounts as f64
                    })
                ),
                detection(op.first_refused.as_ref(), op.requests),
                detection(op.first_flagged.as_ref(), op.requests),
            ]
        })
        .collect();
    o.table(
        &[
            "operation",
            "accounts flagged at the end",
            "first refused",
            "first flagged",
        ],
        rows,
        &[false, true, false, false],
    );
}
