//! The HTML report: one self-contained page (no script, no fonts, no
//! network: inline CSS and SVG drawn here) with
//!
//! - refusals over trace time, campaign and benign, from the replay's
//!   [`Timeline`](super::Timeline), each operation's first refusal marked;
//! - every cluster's size against its score, operations against benign
//!   cohorts where the trace has labels;
//! - the evidence of the top clusters: a sample of their accounts and the
//!   strongest values they share (what [`Guard::explain`] gives), the
//!   crowds their behaviour puts them in, and how many were left out;
//! - the text report's tables ([`super::summary`]), with the same numbers.
//!
//! Which sampled account presents which shared value is not something the
//! guard keeps: [`HtmlReport::read_trace`] (or [`HtmlReport::observe_records`]
//! for simulated records) reads the trace again for the sampled accounts
//! only, after the replay, so the replay itself pays nothing for it.
//!
//! Every string from the trace (accounts, values, labels) is attacker
//! controlled and HTML-escaped ([`escape`]).
//!
//! [`Guard::explain`]: ringfence::guard::Guard::explain

mod clusters;
mod graph;
mod svg;

use super::evaluation::Role;
use super::summary::{self, count, pct, Block};
use super::{Replayer, Report, TraceLine};
use crate::sim::Record;
use clusters::ClusterPoint;
use graph::ClusterEvidence;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt::Write;
use std::io::{self, BufRead};

/// Everything the page shows beyond the report: the clusters, and the
/// evidence of the top ones (see the module docs).
pub struct HtmlReport {
    clusters: Vec<ClusterPoint>,
    /// Accounts in no cluster of two or more.
    alone: u64,
    evidence: Vec<ClusterEvidence>,
    /// Sampled account → (cluster, account) places in `evidence`.
    wanted: HashMap<String, Vec<(usize, usize)>>,
    /// Whether the trace was read again for the sampled accounts.
    traced: bool,
}

/// The top clusters whose evidence the page draws.
pub const TOP_CLUSTERS: usize = 5;

impl HtmlReport {
    /// Gathers the clusters and the top clusters' evidence from a replay
    /// that is over.
    pub fn gather(replayer: &Replayer, report: &Report) -> HtmlReport {
        let (clusters, alone) = clusters::points(replayer);
        let top = clusters::top(&clusters, report, TOP_CLUSTERS);
        let evidence: Vec<ClusterEvidence> = top
            .iter()
            .filter_map(|p| ClusterEvidence::gather(replayer, p))
            .collect();
        let mut wanted: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (ci, c) in evidence.iter().enumerate() {
            for (ai, a) in c.accounts.iter().enumerate() {
                wanted.entry(a.name.clone()).or_default().push((ci, ai));
            }
        }
        HtmlReport {
            clusters,
            alone,
            evidence,
            wanted,
            traced: false,
        }
    }

    /// Whether the evidence graphs want `account`'s requests.
    pub fn wants(&self, account: &str) -> bool {
        self.wanted.contains_key(account)
    }

    /// The accounts the evidence graphs show.
    pub fn sampled_accounts(&self) -> impl Iterator<Item = &str> {
        self.wanted.keys().map(String::as_str)
    }

    /// Notes which shared values a sampled account's request presents.
    fn observe(&mut self, line: &TraceLine<'_>) {
        let Some(places) = self.wanted.get(line.account.as_ref()) else {
            return;
        };
        for &(ci, ai) in places {
            self.evidence[ci].observe(ai, line);
        }
    }

    /// Reads the trace again (JSON Lines) for the sampled accounts' values;
    /// lines that do not parse are passed over (the replay reported them).
    pub fn read_trace(&mut self, mut reader: impl BufRead) -> io::Result<()> {
        let mut buf = Vec::with_capacity(4096);
        let mut n = 0u64;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            n += 1;
            // Most lines are other accounts': skip them before parsing.
            if !self.mentions_wanted(&buf) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&buf) else {
                continue;
            };
            if let Ok(line) = TraceLine::parse(text.trim_end(), n) {
                self.observe(&line);
            }
        }
        self.traced = true;
        Ok(())
    }

    /// Whether `line` may be a sampled account's: its `account` field, read
    /// without parsing the line, is one; or it cannot be told that way.
    fn mentions_wanted(&self, line: &[u8]) -> bool {
        match account_field(line) {
            Some(name) => std::str::from_utf8(name).is_ok_and(|n| self.wants(n)),
            None => true,
        }
    }

    /// The same from simulated records (the demo's trace, simulated again).
    pub fn observe_records<R: Borrow<Record>>(&mut self, records: impl IntoIterator<Item = R>) {
        for r in records {
            let r = r.borrow();
            if self.wants(&r.account) {
                self.observe(&TraceLine::from_record(r));
            }
        }
        self.traced = true;
    }

    /// The page: `title` names what was replayed; `intro` (lines of text)
    /// says more, e.g. the demo's header.
    pub fn page(&self, replayer: &Replayer, report: &Report, title: &str, intro: &str) -> String {
        let mut o = String::with_capacity(256 << 10);
        let _ = self.write_page(&mut o, replayer, report, title, intro);
        o
    }

    fn write_page(
        &self,
        o: &mut String,
        replayer: &Replayer,
        report: &Report,
        title: &str,
        intro: &str,
    ) -> std::fmt::Result {
        let labelled = report.evaluation.is_some();
        write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>ringfence report: {}</title>\n<style>\n{}</style>\n</head>\n<body>\n<main>\n",
            escape(title),
            CSS
        )?;
        writeln!(
            o,
            "<header>\n<h1>ringfence report</h1>\n<p class=\"subtitle\">{}</p>",
            escape(title)
        )?;
        for line in intro.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(o, "<p class=\"intro\">{}</p>", escape(line.trim()))?;
        }
        writeln!(o, "</header>")?;
        cards(o, report)?;

        let t = replayer.timeline();
        writeln!(
            o,
            "<section id=\"over-time\">\n<h2>Refusals over trace time</h2>"
        )?;
        o.push_str(&svg::timeline(t, labelled));
        writeln!(o, "</section>")?;

        let colours = clusters::colours(&self.clusters);
        writeln!(
            o,
            "<section id=\"clusters\">\n<h2>Clusters: size against score</h2>"
        )?;
        o.push_str(&svg::scatter(&self.clusters, &report.settings, &colours));
        writeln!(
            o,
            "<p class=\"note\">{} clusters of two or more accounts, each a point (points with the same size, score and label are drawn once, larger); {} accounts on their own are not shown. Cluster policy applies above the dashed lines: from {} accounts and a score of {}; requests are denied from a score of {}.</p>",
            count(self.clusters.len() as u64),
            count(self.alone),
            report.settings.min_cluster_size,
            report.settings.share_at,
            report.settings.deny_at
        )?;
        writeln!(o, "</section>")?;

        writeln!(
            o,
            "<section id=\"evidence\">\n<h2>Evidence of the top clusters</h2>"
        )?;
        if self.evidence.is_empty() {
            writeln!(
                o,
                "<p class=\"note\">No cluster of two or more accounts to explain.</p>"
            )?;
        }
        for c in &self.evidence {
            c.write_html(o, &colours, self.traced)?;
        }
        writeln!(o, "</section>")?;

        writeln!(o, "<section id=\"report\">\n<h2>The report</h2>")?;
        for s in summary::sections(report, Some(replayer.guard())) {
            write_section(o, &s)?;
        }
        writeln!(o, "</section>")?;
        writeln!(
            o,
            "<footer>Made by <code>ringfence</code>; this page loads nothing from anywhere.</footer>\n</main>\n</body>\n</html>"
        )
    }
}

/// The `account` field's string of a trace line, found without parsing
/// the line; `None` where that cannot be sure (no such key, the key twice,
/// an escape in the name).
fn account_field(line: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"account\"";
    let mut found = None;
    let mut from = 0;
    while let Some(i) = find(&line[from..], KEY) {
        let at = from + i + KEY.len();
        let rest = &line[at..];
        let mut j = 0;
        while j < rest.len() && rest[j].is_ascii_whitespace() {
            j += 1;
        }
        if rest.get(j) == Some(&b':') {
            if found.is_some() {
                return None;
            }
            found = Some(at + j + 1);
        }
        from = at;
    }
    let rest = &line[found?..];
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest[start] != b'"' {
        return None;
    }
    let body = &rest[start + 1..];
    let end = body.iter().position(|&b| b == b'"' || b == b'\\')?;
    (body[end] == b'"').then(|| &body[..end])
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let j = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        if hay[i + j..].starts_with(needle) {
            return Some(i + j);
        }
        i += j + 1;
    }
    None
}

/// The key numbers, as cards above the charts.
fn cards(o: &mut String, r: &Report) -> std::fmt::Result {
    let refused = r.throttled + r.denied;
    let mut cards: Vec<(String, String)> = vec![
        (
            count(r.requests),
            format!(
                "requests from {} accounts, {}",
                count(r.accounts),
                summary::duration(r.trace_secs)
            ),
        ),
        (
            count(refused),
            format!(
                "refused ({} of requests)",
                pct(if r.requests == 0 {
                    0.0
                } else {
                    refused as f64 / r.requests as f64
                })
            ),
        ),
    ];
    if let Some(e) = &r.evaluation {
        cards.push((
            pct(e.campaign.served_share),
            format!(
                "of campaign requests served ({} per account only)",
                pct(e.campaign.baseline_served_share)
            ),
        ));
        cards.push((
            pct(e.benign.refused_share),
            "of benign requests refused by cluster policy".to_string(),
        ));
    }
    writeln!(o, "<section class=\"cards\">")?;
    for (big, small) in cards {
        writeln!(
            o,
            "<div class=\"card\"><div class=\"big\">{}</div><div class=\"small\">{}</div></div>",
            escape(&big),
            escape(&small)
        )?;
    }
    writeln!(o, "</section>")
}

/// One section of the text report, as HTML.
fn write_section(o: &mut String, s: &summary::Section) -> std::fmt::Result {
    writeln!(
        o,
        "<section class=\"report-section\" data-title=\"{}\">\n<h3>{}</h3>",
        escape(&s.title),
        escape(&s.title)
    )?;
    for b in &s.blocks {
        match b {
            Block::Line(l) => writeln!(o, "<p>{}</p>", escape(l))?,
            Block::Table(t) => {
                writeln!(o, "<div class=\"scroll\"><table>\n<thead><tr>")?;
                for (i, h) in t.header.iter().enumerate() {
                    let class = if t.right.get(i).copied().unwrap_or(false) {
                        " class=\"num\""
                    } else {
                        ""
                    };
                    write!(o, "<th{class}>{}</th>", escape(h))?;
                }
                writeln!(o, "</tr></thead>\n<tbody>")?;
                for row in &t.rows {
                    write!(o, "<tr>")?;
                    for (i, cell) in row.iter().enumerate() {
                        let class = if t.right.get(i).copied().unwrap_or(false) {
                            " class=\"num\""
                        } else {
                            ""
                        };
                        write!(o, "<td{class}>{}</td>", escape(cell))?;
                    }
                    writeln!(o, "</tr>")?;
                }
                writeln!(o, "</tbody></table></div>")?;
            }
        }
    }
    writeln!(o, "</section>")
}

/// `s` made safe as HTML text or a quoted attribute value: `&`, `<`, `>`,
/// `"` and `'` as references, and control characters (other than tab and
/// newline) as U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// How a role is named on the page.
fn role_text(r: Role<'_>) -> String {
    match r {
        Role::Campaign(op) => format!("campaign: {op}"),
        Role::Benign(cohort) => format!("benign: {cohort}"),
        Role::Unknown => "unlabelled".to_string(),
    }
}

/// The page's style: system fonts only.
const CSS: &str = "\
:root { --fg: #1d2330; --muted: #5b6474; --line: #dde1e8; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { margin: 0 0 2px; font-size: 26px; }
h2 { margin: 0 0 10px; font-size: 19px; }
h3 { margin: 14px 0 6px; font-size: 16px; }
header { margin-bottom: 16px; }
.subtitle { margin: 0 0 6px; color: var(--muted); font-size: 15px; }
.intro { margin: 2px 0; color: var(--muted); font-size: 13px; }
section#over-time, section#clusters, section#evidence, section#report {
  background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; margin: 16px 0; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { flex: 1 1 200px; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .big { font-size: 24px; font-weight: 650; }
.card .small { color: var(--muted); font-size: 13px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 6px 0 0; font-size: 13px; color: var(--muted); padding: 0; list-style: none; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 4px; border-radius: 2px; }
.swatch.dot { width: 10px; height: 10px; border-radius: 50%; }
.note { color: var(--muted); font-size: 13px; margin: 6px 0; }
article.cluster { border-top: 1px solid var(--line); padding-top: 8px; margin-top: 8px; }
article.cluster:first-of-type { border-top: none; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: #eef1f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.report-section p { margin: 3px 0; font-size: 14px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 20px; }
code { font-family: ui-monospace, 'SF Mono', Menlo, Consolas, monospace; }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x' & \"y\")</script>\u{0}"),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;\u{FFFD}"
        );
    }

    #[test]
    fn the_account_field_is_found_without_parsing() {
        let f =
            |l: &str| account_field(l.as_bytes()).map(|b| String::from_utf8(b.to_vec()).unwrap());
        assert_eq!(
            f(r#"{"ts": 1, "account" : "a1", "prompt": "x"}"#).as_deref(),
            Some("a1")
        );
        assert_eq!(
            f(r#"{"prompt": "\"account\" no", "account":"b"}"#).as_deref(),
            Some("b")
        );
        assert_eq!(f(r#"{"account": "a\u0031"}"#), None);
        assert_eq!(
            f(r#"{"account": "a", "fingerprints": {"account": "b"}}"#),
            None
        );
        assert_eq!(f(r#"{"ts": 1}"#), None);
    }

    #[test]
    fn clip_cuts_at_characters() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("ab", 4), "ab");
        assert_eq!(clip("ééééé", 3), "éé…");
    }
}
