//! The clusters at the end of a replay, as the scatter plot draws them, and
//! which of them the page explains.

use super::super::evaluation::Role;
use super::super::{Replayer, Report};
use std::collections::HashMap;

/// What a cluster mostly is, by its accounts' labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Kind {
    /// Holds campaign accounts, most of them of this operation.
    Operation(String),
    /// Only benign accounts, most of them of this cohort.
    Cohort(String),
    /// No labels.
    Unlabelled,
}

impl Kind {
    /// The name a legend gives it.
    pub(super) fn label(&self) -> String {
        match self {
            Kind::Operation(op) => format!("operation {op}"),
            Kind::Cohort(c) => format!("benign: {c}"),
            Kind::Unlabelled => "unlabelled".to_string(),
        }
    }

    /// Its class on the page (`operation`, `cohort`, `unlabelled`).
    pub(super) fn class(&self) -> &'static str {
        match self {
            Kind::Operation(_) => "operation",
            Kind::Cohort(_) => "cohort",
            Kind::Unlabelled => "unlabelled",
        }
    }
}

/// One cluster of two or more accounts.
#[derive(Clone, Debug)]
pub(super) struct ClusterPoint {
    pub(super) id: u64,
    pub(super) size: u32,
    pub(super) score: f64,
    pub(super) flagged: bool,
    pub(super) kind: Kind,
    /// Its campaign accounts (of any operation).
    pub(super) campaign: u64,
    /// Its benign accounts.
    pub(super) benign: u64,
    /// An account in it to explain it by: a campaign account if it has one.
    pub(super) sample: String,
}

/// Tallies of one cluster's accounts, as they are met.
struct Acc<'a> {
    size: u32,
    score: f64,
    flagged: bool,
    ops: Vec<(&'a str, u64)>,
    cohorts: Vec<(&'a str, u64)>,
    sample: &'a str,
    sample_is_campaign: bool,
}

fn bump<'a>(v: &mut Vec<(&'a str, u64)>, name: &'a str) {
    match v.iter_mut().find(|(n, _)| *n == name) {
        Some((_, k)) => *k += 1,
        None => v.push((name, 1)),
    }
}

/// The name with the most accounts (the first met among equals).
fn most<'a>(v: &[(&'a str, u64)]) -> Option<&'a str> {
    let best = v.iter().map(|(_, k)| *k).max()?;
    v.iter().find(|(_, k)| *k == best).map(|(n, _)| *n)
}

/// Every cluster of two or more accounts, and how many accounts are on
/// their own (or in no cluster).
pub(super) fn points(r: &Replayer) -> (Vec<ClusterPoint>, u64) {
    let tally = r.tally();
    let lines = r.accounts();
    let mut by_id: HashMap<u64, Acc<'_>> = HashMap::new();
    let mut alone = 0u64;
    for (a, line) in tally.accounts().iter().zip(&lines) {
        if line.cluster_size < 2 {
            alone += 1;
            continue;
        }
        let role = tally.role(a);
        let e = by_id.entry(line.cluster.0).or_insert_with(|| Acc {
            size: line.cluster_size,
            score: line.score,
            flagged: line.flagged,
            ops: Vec::new(),
            cohorts: Vec::new(),
            sample: &a.name,
            sample_is_campaign: false,
        });
        match role {
            Role::Campaign(op) => {
                bump(&mut e.ops, op);
                if !e.sample_is_campaign {
                    e.sample = &a.name;
                    e.sample_is_campaign = true;
                }
            }
            Role::Benign(c) => bump(&mut e.cohorts, c),
            Role::Unknown => {}
        }
    }
    let mut out: Vec<ClusterPoint> = by_id
        .into_iter()
        .map(|(id, e)| {
            let kind = match (most(&e.ops), most(&e.cohorts)) {
                (Some(op), _) => Kind::Operation(op.to_string()),
                (None, Some(c)) => Kind::Cohort(c.to_string()),
                (None, None) => Kind::Unlabelled,
            };
            ClusterPoint {
                id,
                size: e.size,
                score: e.score,
                flagged: e.flagged,
                kind,
                campaign: e.ops.iter().map(|(_, k)| k).sum(),
                benign: e.cohorts.iter().map(|(_, k)| k).sum(),
                sample: e.sample.to_string(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
    (out, alone)
}

/// The clusters whose evidence the page draws, at most `n`: with labels,
/// those holding the most campaign accounts (as the report's table lists
/// them) and the benign cluster scoring highest; without, the flagged
/// ones first, then by score and size.
pub(super) fn top<'a>(
    points: &'a [ClusterPoint],
    report: &Report,
    n: usize,
) -> Vec<&'a ClusterPoint> {
    let mut sorted: Vec<&ClusterPoint> = points.iter().collect();
    if report.evaluation.is_none() {
        sorted.sort_by(|a, b| {
            b.flagged
                .cmp(&a.flagged)
                .then(b.score.total_cmp(&a.score))
                .then(b.size.cmp(&a.size))
                .then(a.id.cmp(&b.id))
        });
        sorted.truncate(n);
        return sorted;
    }
    sorted.sort_by(|a, b| {
        b.campaign
            .cmp(&a.campaign)
            .then(b.size.cmp(&a.size))
            .then(a.id.cmp(&b.id))
    });
    let mut out: Vec<&ClusterPoint> = sorted
        .iter()
        .copied()
        .filter(|p| p.campaign > 0)
        .take(n.saturating_sub(1).max(1))
        .collect();
    let benign = points.iter().filter(|p| p.campaign == 0).max_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then(a.size.cmp(&b.size))
            .then(b.id.cmp(&a.id))
    });
    if let Some(b) = benign {
        out.push(b);
    }
    // Room left (few campaign clusters): the largest others.
    for p in sorted {
        if out.len() >= n {
            break;
        }
        if !out.iter().any(|q| q.id == p.id) {
            out.push(p);
        }
    }
    out.truncate(n);
    out
}

/// Operations in warm colours, cohorts in cool ones, unlabelled grey.
const OPERATION_COLOURS: [&str; 6] = [
    "#d62728", "#ff7f0e", "#9467bd", "#e377c2", "#8c564b", "#bcbd22",
];
const COHORT_COLOURS: [&str; 10] = [
    "#1f77b4", "#17becf", "#2ca02c", "#6b8fb3", "#7fb8a4", "#3c6e91", "#98b9d9", "#5aa469",
    "#4b9cc6", "#88a0a8",
];
/// Unlabelled clusters.
pub(super) const GREY: &str = "#7f8793";

/// Each kind's colour, in the order a legend lists them.
pub(super) fn colours(points: &[ClusterPoint]) -> Vec<(Kind, &'static str)> {
    let mut kinds: Vec<Kind> = points.iter().map(|p| p.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    let (mut ops, mut cohorts) = (0, 0);
    kinds
        .into_iter()
        .map(|k| {
            let c = match &k {
                Kind::Operation(_) => {
                    ops += 1;
                    OPERATION_COLOURS[(ops - 1) % OPERATION_COLOURS.len()]
                }
                Kind::Cohort(_) => {
                    cohorts += 1;
                    COHORT_COLOURS[(cohorts - 1) % COHORT_COLOURS.len()]
                }
                Kind::Unlabelled => GREY,
            };
            (k, c)
        })
        .collect()
}

/// The colour of `kind` in `colours`.
pub(super) fn colour_of(colours: &[(Kind, &'static str)], kind: &Kind) -> &'static str {
    colours
        .iter()
        .find(|(k, _)| k == kind)
        .map_or(GREY, |(_, c)| c)
}
