//! `ringfence intel`: the two-provider exchange experiment.

use super::{load_config, load_scenario, Failure, Result, ScenarioArgs};
use clap::Subcommand;
use ringfence::intel::ConsortiumKey;
use ringfence_intel::Producer;
use ringfence_lab::intel::exchange;
use ringfence_lab::replay::Report;
use ringfence_lab::sim::{second_provider, simulate, Record, SecondProvider};
use std::path::PathBuf;

/// The subcommands of `ringfence intel`.
#[derive(Subcommand)]
pub enum IntelCommand {
    /// Two providers, one operation: A replays a simulated day and exports
    /// what linked the operation it caught (a STIX 2.1 bundle); B, the next
    /// day, sees the same operator under other account names among its own
    /// crowds, and replays without the bundle and with it.
    Exchange {
        /// A built-in scenario or a scenario TOML file (A's; B's is A's with B's seed).
        #[arg(long, default_value = "default", value_name = "NAME|FILE")]
        scenario: String,
        /// A's seed (default: the scenario's).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Multiply the scenario's accounts by X.
        #[arg(long, default_value_t = 0.1, value_name = "X")]
        scale: f64,
        /// Multiply the campaign's accounts (only) by F.
        #[arg(long, default_value_t = 1.0, value_name = "F")]
        campaign_scale: f64,
        /// Share of B's operation accounts reusing A's cards and devices.
        #[arg(long, default_value_t = 0.5, value_name = "R")]
        reuse: f64,
        /// The consortium key file (default: a fixed example key).
        #[arg(long, value_name = "KEY")]
        key_file: Option<PathBuf>,
        /// A guard configuration (TOML) for both providers.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// At B, the operator shares no infrastructure among its accounts
        /// (each its own card, device and address), only A's stock it reuses.
        #[arg(long)]
        b_unshared: bool,
        /// Also write A's bundle here.
        #[arg(long, value_name = "BUNDLE")]
        bundle: Option<PathBuf>,
    },
}

/// Runs `ringfence intel …`.
pub fn run(command: IntelCommand) -> Result<()> {
    match command {
        IntelCommand::Exchange {
            scenario,
            seed,
            scale,
            campaign_scale,
            reuse,
            key_file,
            config,
            b_unshared,
            bundle,
        } => {
            let a = load_scenario(&ScenarioArgs {
                name: scenario,
                seed,
                scale,
                campaign_scale,
            })?;
            let key = match key_file {
                Some(p) => ConsortiumKey::from_file(p)?,
                None => ConsortiumKey::new(b"example consortium key: 32 bytes")?,
            };
            let mut config = match &config {
                Some(_) => load_config(config.as_deref())?,
                None => ringfence::guard::GuardConfig::for_accounts(
                    (2 * a.total_accounts()).max(1_000) as usize,
                ),
            };
            config.intel.key = None;
            let b = SecondProvider {
                seed: a.seed ^ 0x0005_eedb,
                reuse,
                start_offset_hours: a.hours,
                knobs: b_unshared.then(|| ringfence_lab::sim::Knobs {
                    shared_infrastructure: false,
                    ..a.knobs.clone()
                }),
            };
            eprintln!(
                "simulating provider A and provider B ({} accounts each)",
                a.total_accounts()
            );
            let trace_a = simulate(&a);
            let trace_b: Vec<Record> = second_provider(&a, &b)?.collect();
            let producer = Producer {
                identity_id: "identity--3dff565e-7265-4139-9cb0-eceed191fca9".into(),
                name: "Provider A".into(),
            };
            let x = exchange(&trace_a, &trace_b, &config, &key, &producer).map_err(Failure)?;
            if let Some(p) = bundle {
                std::fs::write(&p, &x.bundle)
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            }
            println!(
                "A exported {} indicators; B imported {} ({} ignored: too light or unknown kinds)",
                x.exported.len(),
                x.import.added,
                x.import.ignored
            );
            println!("operation at B          without the bundle          with the bundle");
            let (wo, wi) = (ops(&x.without), ops(&x.with));
            for ((op, a), (_, b)) in wo.iter().zip(&wi) {
                println!("{op:<14} {a:>28} {b:>28}");
            }
            println!(
                "B's benign accounts: {}; marked by an imported indicator: {} {:?}; flagged: {} without, {} with",
                x.benign_accounts,
                x.benign_marked,
                x.benign_marked_by,
                flagged(&x.without),
                flagged(&x.with)
            );
            Ok(())
        }
    }
}

/// Per operation: served share, and requests before the first refusal.
fn ops(r: &Report) -> Vec<(String, String)> {
    let Some(e) = &r.evaluation else {
        return Vec::new();
    };
    e.campaign
        .operations
        .iter()
        .map(|(op, o)| {
            let first = o.first_refused.as_ref().map_or("never".to_string(), |d| {
                format!(
                    "{} req, {:.0} s",
                    d.requests_before, d.secs_after_first_request
                )
            });
            (
                op.clone(),
                format!("{:.1} % served, first {first}", 100.0 * o.served_share),
            )
        })
        .collect()
}

fn flagged(r: &Report) -> u64 {
    r.evaluation
        .as_ref()
        .map_or(0, |e| e.benign.accounts_flagged)
}
