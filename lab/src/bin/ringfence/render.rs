//! The readable report: sections, aligned columns, numbers a person reads.

use ringfence::guard::Guard;
use ringfence_lab::replay::{Detection, Report};
use ringfence_lab::sim::{Record, Scenario};
use std::collections::HashSet;
use std::fmt::Write;

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
fn pct(share: f64) -> String {
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
fn duration(secs: f64) -> String {
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

/// Columns padded to their widest cell; `right` marks right-aligned ones.
fn table(
    out: &mut String,
    header: &[&str],
    rows: &[Vec<String>],
    right: &[bool],
) -> std::fmt::Result {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (i, cell) in cells.enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str("  ");
            if right.get(i).copied().unwrap_or(false) {
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
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
    Ok(())
}

/// What the demo simulated, for its header: counted as the records stream
/// past.
pub struct DemoTrace {
    name: String,
    scale: f64,
    campaign_scale: f64,
    hours: f64,
    guard: String,
    requests: u64,
    accounts: HashSet<Box<str>>,
}

impl DemoTrace {
    /// Nothing seen yet of scenario `s` (at `scale` and `campaign_scale`),
    /// replayed through `guard` (how the guard was configured).
    pub fn new(s: &Scenario, scale: f64, campaign_scale: f64, guard: String) -> DemoTrace {
        DemoTrace {
            name: s.name.clone(),
            scale,
            campaign_scale,
            hours: s.hours,
            guard,
            requests: 0,
            accounts: HashSet::new(),
        }
    }

    /// Counts one simulated record.
    pub fn observe(&mut self, r: &Record) {
        self.requests += 1;
        if !self.accounts.contains(r.account.as_str()) {
            self.accounts.insert(r.account.as_str().into());
        }
    }
}

pub fn demo_header(t: &DemoTrace) -> String {
    let campaign = if t.campaign_scale == 1.0 {
        String::new()
    } else {
        format!(", campaign scale {}", t.campaign_scale)
    };
    format!(
        "\nringfence demo: the `{}` scenario at scale {}{campaign} ({} h of traffic, {} accounts, {} requests)\n\
         replayed through a guard with {}, against a per-account-only limiter on the same trace.\n",
        t.name,
        t.scale,
        t.hours,
        count(t.accounts.len() as u64),
        count(t.requests),
        t.guard
    )
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

/// The readable report; `guard` (the replayed one) adds each cluster's evidence.
pub fn report(r: &Report, guard: Option<&Guard>) -> String {
    let mut o = String::new();
    let _ = write_report(&mut o, r, guard);
    o
}

fn write_report(o: &mut String, r: &Report, guard: Option<&Guard>) -> std::fmt::Result {
    writeln!(o, "\nReplay")?;
    writeln!(
        o,
        "  {} requests from {} accounts, {} of trace time",
        count(r.requests),
        count(r.accounts),
        duration(r.trace_secs)
    )?;
    let reasons: Vec<String> = r
        .reasons
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {}", count(*n)))
        .collect();
    writeln!(
        o,
        "  allowed {}, throttled {}, denied {}{}",
        count(r.allowed),
        count(r.throttled),
        count(r.denied),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" (reasons given: {})", reasons.join(", "))
        }
    )?;
    if r.bad_lines > 0 || r.out_of_order > 0 {
        writeln!(
            o,
            "  {} malformed lines skipped, {} lines earlier than the one before",
            count(r.bad_lines),
            count(r.out_of_order)
        )?;
    }

    if let Some(e) = &r.evaluation {
        let c = &e.campaign;
        writeln!(o, "\nWhat was found")?;
        writeln!(
            o,
            "  {} campaign accounts in {} operations; {} flagged ({}) at the end",
            count(c.accounts),
            c.operations.len(),
            count(c.accounts_flagged),
            pct(c.accounts_flagged_share)
        )?;
        let k = &e.clusters;
        writeln!(
            o,
            "  {} clusters hold campaign accounts; the largest:",
            count(k.campaign_clusters)
        )?;
        let rows: Vec<Vec<String>> = k
            .largest
            .iter()
            .take(8)
            .map(|cl| {
                let evidence = guard
                    .and_then(|g| g.explain(&cl.sample_account))
                    .map(|x| {
                        // The strongest value of each of the first three kinds.
                        let mut kinds: Vec<&str> = Vec::new();
                        let mut shown = Vec::new();
                        for v in &x.shared {
                            if kinds.len() == 3 {
                                break;
                            }
                            if !kinds.contains(&v.kind.as_str()) {
                                kinds.push(&v.kind);
                                shown.push(format!(
                                    "{} ~{:.0} (w {:.2})",
                                    v.kind, v.accounts, v.weight
                                ));
                            }
                        }
                        shown.join(", ")
                    })
                    .unwrap_or_default();
                vec![
                    cl.cluster.to_string(),
                    count(u64::from(cl.size)),
                    format!("{} {}", cl.operation_accounts, cl.operation),
                    count(cl.benign_accounts),
                    format!("{:.2}", cl.score),
                    if cl.flagged { "yes" } else { "no" }.to_string(),
                    evidence,
                ]
            })
            .collect();
        table(
            o,
            &[
                "cluster",
                "size",
                "campaign",
                "benign",
                "score",
                "flagged",
                "strongest shared evidence: kind ~accounts (weight)",
            ],
            &rows,
            &[false, true, false, true, true, false, false],
        )?;
        if k.untracked_campaign_accounts + k.untracked_benign_accounts > 0 {
            writeln!(
                o,
                "  in no cluster at the end (evicted from the guard's tables, or evidence expired): {} campaign accounts, each counted on its own, and {} benign",
                count(k.untracked_campaign_accounts),
                count(k.untracked_benign_accounts)
            )?;
        }
        let opt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        writeln!(
            o,
            "  clusters against operations, over pairs of accounts: precision {}, recall {}",
            opt(k.pairwise_precision),
            opt(k.pairwise_recall)
        )?;

        writeln!(o, "\nCampaign requests served")?;
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
        table(
            o,
            &["", "requests", "ringfence", "per-account only"],
            &rows,
            &[false, true, true, true],
        )?;

        let b = &e.benign;
        writeln!(o, "\nBenign requests refused")?;
        writeln!(
            o,
            "  {} of {} ({}) for a reason other than their own account's limit",
            count(b.refused),
            count(b.requests),
            pct(b.refused_share)
        )?;
        writeln!(
            o,
            "  {} by their own account's limit (as a per-account-only limiter would)",
            count(b.refused_account_limit)
        )?;
        let m = &e.campaign_genuine_traffic;
        if m.requests > 0 {
            writeln!(
                o,
                "  genuine requests mixed into campaign accounts: {} of {} refused ({})",
                count(m.refused),
                count(m.requests),
                pct(m.refused_share)
            )?;
        }

        writeln!(o, "\nBenign accounts flagged, by cohort")?;
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
        table(
            o,
            &[
                "cohort",
                "accounts",
                "flagged",
                "share",
                "flagged at some point",
                "requests refused*",
                "highest score",
            ],
            &rows,
            &[false, true, true, true, true, true, true],
        )?;
        writeln!(
            o,
            "  * for a reason other than their own account's limit; highest score: of any verdict on the cohort's accounts"
        )?;
        if let (Some(account), Some(cohort)) =
            (&b.max_verdict_score_account, &b.max_verdict_score_cohort)
        {
            writeln!(
                o,
                "  the highest, {:.2}, was {account}'s ({cohort})",
                b.max_verdict_score
            )?;
        }

        writeln!(
            o,
            "\nTime to detection (each operation's first request refused by cluster policy, and first flagged)"
        )?;
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
        table(
            o,
            &[
                "operation",
                "accounts flagged at the end",
                "first refused",
                "first flagged",
            ],
            &rows,
            &[false, true, false, false],
        )?;
    }

    writeln!(o, "\nThroughput and memory")?;
    writeln!(
        o,
        "  {} requests in {:.1} s: {} requests/s (reading and JSON parsing included; the guard on one thread)",
        count(r.requests),
        r.wall_secs,
        count(r.requests_per_sec.round() as u64)
    )?;
    match r.peak_memory_bytes {
        Some(m) => writeln!(o, "  peak memory {} (the whole process)", bytes(m))?,
        None => writeln!(o, "  peak memory: not known on this platform")?,
    }
    Ok(())
}
