//! Intelligence shared between two providers, measured: provider A replays
//! its traffic and exports what linked the operation it caught as a STIX
//! 2.1 bundle; provider B parses the bundle and replays its own traffic
//! (the same operator under other account names, among B's own crowds),
//! with the import and without it.
//!
//! B is measured by the replay's own evaluation ([`Report`]): per
//! operation, the share served and its first refusal for a reason other
//! than its accounts' own limits.

use crate::replay::{ReplayOptions, Replayer, Report};
use crate::sim::Record;
use ringfence::guard::GuardConfig;
use ringfence::intel::{ConsortiumKey, ExportOptions, ExportedIndicator, ImportReport, IntelStats};
use ringfence_intel::guard::{export, import};
use ringfence_intel::{Producer, Tlp};
use std::collections::HashSet;

/// The two-provider experiment's results.
pub struct Exchange {
    /// What A exported.
    pub exported: Vec<ExportedIndicator>,
    /// A's bundle.
    pub bundle: String,
    /// What B's import did.
    pub import: ImportReport,
    /// B's replay without the import, and with it.
    pub without: Report,
    /// See `without`.
    pub with: Report,
    /// B's intelligence tables after the replay with the import.
    pub stats: IntelStats,
    /// B's benign accounts (no campaign-labelled request) marked by an
    /// imported indicator at the end, and all of them.
    pub benign_marked: u64,
    /// The kinds of the indicators that marked them.
    pub benign_marked_by: std::collections::BTreeMap<String, u64>,
    /// See `benign_marked`.
    pub benign_accounts: u64,
}

/// Runs the experiment: A replays `a`, exports as `producer`; B (the
/// trace `b`) replays without the import and with it, trusting `producer`.
pub fn exchange(
    a: &[Record],
    b: &[Record],
    config: &GuardConfig,
    key: &ConsortiumKey,
    producer: &Producer,
) -> Result<Exchange, String> {
    let (Some(last_a), Some(first_b)) = (a.last(), b.first()) else {
        return Err("both traces need requests".into());
    };
    let mut config = config.clone();
    config.intel.key = Some(key.clone());
    config.intel.trust.insert(producer.identity_id.clone(), 1.0);
    let mut at_a = Replayer::new(config.clone(), ReplayOptions::default());
    at_a.replay_records(a);
    let out = export(
        at_a.guard(),
        producer,
        last_a.ts,
        Tlp::Amber,
        &ExportOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let (bundle, exported) = (out.bundle, out.indicators);
    let mut without = Replayer::new(config.clone(), ReplayOptions::default());
    without.replay_records(b);
    let mut with = Replayer::new(config, ReplayOptions::default());
    let import = import(with.guard(), &bundle, first_b.ts)
        .map_err(|e| e.to_string())?
        .report;
    with.replay_records(b);
    let campaign: HashSet<&str> = b
        .iter()
        .filter(|r| r.label != "benign")
        .map(|r| r.account.as_str())
        .collect();
    let benign: HashSet<&str> = b
        .iter()
        .map(|r| r.account.as_str())
        .filter(|a| !campaign.contains(a))
        .collect();
    let mut benign_marked_by = std::collections::BTreeMap::new();
    for a in &benign {
        if let Some(m) = with.guard().indicator_of(a) {
            *benign_marked_by.entry(m.kind).or_insert(0u64) += 1;
        }
    }
    let benign_marked = benign_marked_by.values().sum();
    Ok(Exchange {
        exported,
        bundle,
        import,
        without: without.report(),
        stats: with.guard().intel_stats(),
        with: with.report(),
        benign_marked,
        benign_marked_by,
        benign_accounts: benign.len() as u64,
    })
}
