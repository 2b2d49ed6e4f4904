//! The readable report (made by `ringfence_lab::replay::summary`, which the
//! HTML page shares) and the demo's header.

use ringfence::guard::Guard;
use ringfence_lab::replay::html::HtmlReport;
use ringfence_lab::replay::{summary, Replayer, Report};
use ringfence_lab::sim::{Record, Scenario};
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

pub use ringfence_lab::replay::summary::count;

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

/// The readable report; `guard` (the replayed one) adds each cluster's evidence.
pub fn report(r: &Report, guard: Option<&Guard>) -> String {
    summary::to_text(&summary::sections(r, guard))
}

/// The HTML page of a replay of `trace` (`-`: standard input) through
/// `config` (the default if `None`) on `nodes` nodes. A trace file is read
/// again for the evidence graphs; standard input cannot be.
pub fn replay_page(
    replayer: &Replayer,
    report: &Report,
    trace: &str,
    config: Option<&Path>,
    nodes: u32,
) -> Result<String, String> {
    let mut page = HtmlReport::gather(replayer, report);
    if trace != "-" {
        // Which sampled account presents which value: from the trace.
        let again = |e: std::io::Error| {
            format!("cannot read {trace} again for the HTML report's evidence graphs: {e}")
        };
        let f = File::open(trace).map_err(again)?;
        page.read_trace(BufReader::with_capacity(1 << 18, f))
            .map_err(again)?;
    }
    let intro = format!(
        "Replayed through {}{}, against a per-account-only limiter on the same trace.",
        config.map_or("the default configuration".to_string(), |p| {
            format!("the configuration {}", p.display())
        }),
        if nodes > 1 {
            format!(" on {nodes} nodes (the evidence shown is node 0's)")
        } else {
            String::new()
        }
    );
    let title = if trace == "-" {
        "replay of standard input".to_string()
    } else {
        format!("replay of {trace}")
    };
    Ok(page.page(replayer, report, &title, &intro))
}
