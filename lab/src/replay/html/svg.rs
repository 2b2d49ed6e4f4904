//! The charts, drawn as inline SVG: refusals over trace time, and the
//! clusters' sizes against their scores.

use super::clusters::{colour_of, ClusterPoint, Kind};
use super::escape;
use crate::replay::summary::{count, duration};
use crate::replay::{Bucket, Settings, Timeline};
use std::fmt::Write;

/// The charts' width (the viewBox's; the page scales it).
const W: f64 = 960.0;
/// Plot area margins: left, right, top, bottom.
const ML: f64 = 64.0;
const MR: f64 = 20.0;
const MT: f64 = 18.0;
const MB: f64 = 44.0;
/// Points drawn per series at most (buckets are merged to fit).
const MAX_POINTS: usize = 240;

/// A step of about a fifth of `span` that reads well: 1, 2 or 5 × 10^k.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// A time step (in seconds) that reads well for `span` seconds.
fn time_step(span: f64) -> f64 {
    const STEPS: [f64; 14] = [
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0,
        86400.0, 172_800.0, 604_800.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 12.0)
        .unwrap_or_else(|| nice_step(span / 86400.0, 8.0) * 86400.0)
}

/// A bucket's width: `6 min`, `2 h`, `90 s`.
fn width_label(secs: f64) -> String {
    if secs >= 3600.0 && secs % 3600.0 == 0.0 {
        format!("{} h", secs / 3600.0)
    } else if secs >= 60.0 && secs % 60.0 == 0.0 {
        format!("{} min", secs / 60.0)
    } else {
        duration(secs)
    }
}

/// A time axis label: `6 h`, `90 min`, `2 d`.
fn time_label(secs: f64) -> String {
    if secs == 0.0 {
        "0".to_string()
    } else if secs % 86400.0 == 0.0 && secs >= 172_800.0 {
        format!("{} d", secs / 86400.0)
    } else if secs % 3600.0 == 0.0 {
        format!("{} h", secs / 3600.0)
    } else {
        format!("{} min", secs / 60.0)
    }
}

/// A series: its class name, legend, colour, dash, and value per bucket.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    fn(&Bucket) -> u64,
);

const LABELLED: [Series; 4] = [
    (
        "campaign_refused",
        "campaign requests refused",
        "#d62728",
        "",
        |b| b.campaign_refused,
    ),
    (
        "campaign_served",
        "campaign requests served",
        "#ff9f1c",
        "",
        |b| b.campaign_served,
    ),
    (
        "benign_refused",
        "benign requests refused by cluster policy",
        "#1f77b4",
        "",
        |b| b.benign_refused,
    ),
    (
        "benign_refused_account_limit",
        "benign requests refused by their own account's limit",
        "#7fb3e0",
        "6 4",
        |b| b.benign_refused_account_limit,
    ),
];

const UNLABELLED: [Series; 2] = [
    ("served", "requests served", "#7f8793", "", |b| {
        b.requests - b.refused
    }),
    ("refused", "requests refused", "#d62728", "", |b| b.refused),
];

/// Refusals over trace time, with a legend (see the module docs).
pub(super) fn timeline(t: &Timeline, labelled: bool) -> String {
    const H: f64 = 330.0;
    let (x0, x1, y0, y1) = (ML, W - MR, MT, H - MB);
    let factor = t.buckets().len().div_ceil(MAX_POINTS).max(1);
    let bins: Vec<Bucket> = t.buckets().chunks(factor).map(Bucket::sum).collect();
    let bin_secs = t.bucket_secs() * factor as f64;
    let span = (bins.len() as f64 * bin_secs).max(bin_secs);
    let series: &[Series] = if labelled { &LABELLED } else { &UNLABELLED };
    let top = bins
        .iter()
        .flat_map(|b| series.iter().map(move |s| (s.4)(b)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let ystep = nice_step(top, 5.0).max(1.0);
    let ymax = (top / ystep).ceil() * ystep;
    let x = |secs: f64| x0 + (x1 - x0) * secs / span;
    let y = |v: f64| y1 - (y1 - y0) * v / ymax;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg id=\"timeline\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"refusals over trace time\">"
    );
    // Grid and axes.
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let _ = write!(
            o,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#e6e9ee\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6474\">{3}</text>",
            y(v),
            x0 - 6.0,
            y(v) + 4.0,
            count(v as u64)
        );
        v += ystep;
    }
    let step = time_step(span);
    let mut s = 0.0;
    while s <= span + 1e-9 {
        let _ = write!(
            o,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{y1}\" y2=\"{1}\" stroke=\"#9aa3af\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#5b6474\">{3}</text>",
            x(s),
            y1 + 5.0,
            y1 + 18.0,
            time_label(s)
        );
        s += step;
    }
    let _ = write!(
        o,
        "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y1}\" y2=\"{y1}\" stroke=\"#9aa3af\"/>\
         <text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#5b6474\">trace time (requests per {})</text>",
        (x0 + x1) / 2.0,
        H - 8.0,
        width_label(bin_secs)
    );
    // Series.
    for (class, name, colour, dash, value) in series {
        let total: u64 = bins.iter().map(value).sum();
        let _ = write!(
            o,
            "<polyline class=\"series\" data-series=\"{class}\" data-total=\"{total}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-linejoin=\"round\"{} points=\"",
            if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            }
        );
        for (i, b) in bins.iter().enumerate() {
            let _ = write!(
                o,
                "{}{:.1},{:.1}",
                if i == 0 { "" } else { " " },
                x((i as f64 + 0.5) * bin_secs),
                y(value(b) as f64)
            );
        }
        let _ = write!(
            o,
            "\"><title>{} ({} in all)</title></polyline>",
            name,
            count(total)
        );
    }
    // Each operation's first refusal.
    let mut k = 0;
    for m in t.operations() {
        let Some(at) = m.first_refused else {
            continue;
        };
        let xm = x(at);
        let ly = y0 + 12.0 + 14.0 * (k % 4) as f64;
        k += 1;
        let anchor = if xm > x1 - 200.0 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let _ = write!(
            o,
            "<g class=\"first-refusal\" data-operation=\"{0}\" data-secs=\"{1:.1}\"><line x1=\"{2:.1}\" x2=\"{2:.1}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#222\" stroke-width=\"1\" stroke-dasharray=\"3 3\"/><text x=\"{3:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\" font-size=\"11\" fill=\"#222\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{0} first refused at {4}</text></g>",
            escape(&m.operation),
            at,
            xm,
            xm + dx,
            escape(&duration(at))
        );
    }
    o.push_str("</svg>\n<ul class=\"legend\">");
    for (_, name, colour, dash, _) in series {
        let _ = write!(
            o,
            "<li><span class=\"swatch\" style=\"background:{colour}{}\"></span>{name}</li>",
            if dash.is_empty() { "" } else { ";opacity:0.8" }
        );
    }
    if t.operations().iter().any(|m| m.first_refused.is_some()) {
        o.push_str("<li><span class=\"swatch\" style=\"background:#222;height:2px\"></span>an operation's first request refused by cluster policy</li>");
    }
    o.push_str("</ul>\n");
    o
}

/// Cluster sizes (log scale) against scores, coloured by what the
/// clusters mostly are, with the policy's thresholds.
pub(super) fn scatter(
    points: &[ClusterPoint],
    s: &Settings,
    colours: &[(Kind, &'static str)],
) -> String {
    const H: f64 = 380.0;
    let (x0, x1, y0, y1) = (ML, W - MR, MT, H - MB);
    let max_size = points.iter().map(|p| p.size).max().unwrap_or(2).max(10);
    let (lmin, lmax) = (2f64.ln(), f64::from(max_size).ln() * 1.05);
    let x = |size: f64| x0 + (x1 - x0) * (size.max(2.0).ln() - lmin) / (lmax - lmin);
    let y = |score: f64| y1 - (y1 - y0) * score.clamp(0.0, 1.0);
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg id=\"cluster-scatter\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"cluster sizes against scores\">"
    );
    for i in 0..=5 {
        let v = f64::from(i) / 5.0;
        let _ = write!(
            o,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#e6e9ee\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#5b6474\">{v:.1}</text>",
            y(v),
            x0 - 6.0,
            y(v) + 4.0
        );
    }
    let mut tick = 1u64;
    'ticks: loop {
        for m in [2, 5, 10] {
            let t = tick * m;
            if t > u64::from(max_size) * 105 / 100 {
                break 'ticks;
            }
            if t >= 2 && (m != 10 || tick == 1 || t % 10 == 0) {
                let _ = write!(
                    o,
                    "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{y1}\" y2=\"{1}\" stroke=\"#9aa3af\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#5b6474\">{3}</text>",
                    x(t as f64),
                    y1 + 5.0,
                    y1 + 18.0,
                    count(t)
                );
            }
        }
        tick *= 10;
    }
    let _ = write!(
        o,
        "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y1}\" y2=\"{y1}\" stroke=\"#9aa3af\"/><line x1=\"{x0}\" x2=\"{x0}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#9aa3af\"/>\
         <text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#5b6474\">accounts in the cluster (log scale)</text>\
         <text transform=\"translate(16 {:.0}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#5b6474\">score</text>",
        (x0 + x1) / 2.0,
        H - 8.0,
        (y0 + y1) / 2.0
    );
    // The thresholds.
    let xm = x(f64::from(s.min_cluster_size.max(2)));
    for (score, what) in [(s.share_at, "flagged"), (s.deny_at, "denied")] {
        let _ = write!(
            o,
            "<line class=\"threshold\" x1=\"{xm:.1}\" x2=\"{x1}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#444\" stroke-dasharray=\"5 4\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#444\">{what} from {score}</text>",
            y(score),
            x1 - 4.0,
            y(score) - 4.0
        );
    }
    if s.min_cluster_size > 2 {
        let _ = write!(
            o,
            "<line class=\"threshold\" x1=\"{xm:.1}\" x2=\"{xm:.1}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#444\" stroke-dasharray=\"5 4\"/>"
        );
    }
    // One circle per (size, score to 0.01, kind); campaign ones on top.
    let mut groups: Vec<(u32, i64, &Kind, u64, bool)> = Vec::new();
    let mut keyed: std::collections::HashMap<(u32, i64, &Kind), usize> = Default::default();
    for p in points {
        let key = (p.size, (p.score * 100.0).round() as i64, &p.kind);
        match keyed.get(&key) {
            Some(&i) => groups[i].3 += 1,
            None => {
                keyed.insert(key, groups.len());
                groups.push((key.0, key.1, key.2, 1, p.flagged));
            }
        }
    }
    groups.sort_by_key(|g| (matches!(g.2, Kind::Operation(_)), g.3 == 1));
    for (size, score, kind, n, flagged) in groups {
        let score = score as f64 / 100.0;
        let r = 3.5 + 2.0 * (n as f64).ln();
        let colour = colour_of(colours, kind);
        let outline = if matches!(kind, Kind::Operation(_)) {
            "#222"
        } else {
            "#fff"
        };
        let _ = write!(
            o,
            "<circle class=\"point\" data-kind=\"{}\" data-label=\"{}\" data-size=\"{size}\" data-score=\"{score:.2}\" data-clusters=\"{n}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{colour}\" fill-opacity=\"0.8\" stroke=\"{outline}\" stroke-width=\"1\"><title>{}: {} cluster{} of {} accounts, score {score:.2}{}</title></circle>",
            kind.class(),
            escape(&kind.label()),
            x(f64::from(size)),
            y(score),
            escape(&kind.label()),
            n,
            if n == 1 { "" } else { "s" },
            size,
            if flagged { ", flagged" } else { "" }
        );
    }
    o.push_str("</svg>\n<ul class=\"legend\">");
    for (kind, colour) in colours {
        let _ = write!(
            o,
            "<li><span class=\"swatch dot\" style=\"background:{colour}\"></span>{}</li>",
            escape(&kind.label())
        );
    }
    o.push_str("</ul>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_well() {
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(time_step(86400.0), 7200.0);
        assert_eq!(time_step(600.0), 60.0);
        assert_eq!(time_label(7200.0), "2 h");
        assert_eq!(time_label(300.0), "5 min");
        assert_eq!(width_label(360.0), "6 min");
        assert_eq!(width_label(7200.0), "2 h");
        assert_eq!(width_label(90.0), "1 min 30 s");
    }
}
