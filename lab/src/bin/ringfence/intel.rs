//! `ringfence intel`: export a trace's operations as a STIX 2.1 bundle,
//! replay a trace with another provider's bundle imported, and the
//! two-provider exchange experiment.

use super::{load_config, load_scenario, render, Failure, Result, ScenarioArgs};
use clap::Subcommand;
use ringfence::intel::{ConsortiumKey, ExportOptions};
use ringfence_intel::{Producer, Sighting, Tlp};
use ringfence_lab::intel::{exchange, export_bundle, parse_for};
use ringfence_lab::replay::{ReplayOptions, Replayer, Report};
use ringfence_lab::sim::{second_provider, simulate, Record, SecondProvider};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The subcommands of `ringfence intel`.
#[derive(Subcommand)]
pub enum IntelCommand {
    /// Replay a trace and export the values that linked the operations it
    /// flagged, hashed under the consortium key, as a STIX 2.1 bundle.
    Export {
        /// The trace (JSON Lines, as `replay` reads).
        #[arg(long, value_name = "TRACE")]
        trace: PathBuf,
        /// The consortium key file.
        #[arg(long, value_name = "KEY")]
        key_file: PathBuf,
        /// Where to write the bundle (replaced whole, crash-safe).
        #[arg(long, value_name = "BUNDLE")]
        out: PathBuf,
        /// This provider's STIX identity (`identity--` and a lower-case UUIDv4).
        #[arg(long, value_name = "ID")]
        producer_id: String,
        /// This provider's name, as the bundle shows it.
        #[arg(long, value_name = "NAME")]
        producer_name: String,
        /// A guard configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Clusters scoring at least this count as operations (default: `share_at`).
        #[arg(long, value_name = "X")]
        min_score: Option<f64>,
        /// Operation accounts a value needs (default: `intel.min_campaign_accounts`).
        #[arg(long, value_name = "N")]
        min_campaign_accounts: Option<u32>,
    },
    /// Replay a trace with another provider's bundle imported, print the
    /// report, and optionally write STIX sightings of what matched (counts
    /// and times, no accounts).
    Import {
        /// The bundle.
        #[arg(long, value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The trace (JSON Lines).
        #[arg(long, value_name = "TRACE")]
        trace: PathBuf,
        /// The consortium key file.
        #[arg(long, value_name = "KEY")]
        key_file: PathBuf,
        /// Trust a producer (its STIX identity id) fully; repeatable.
        /// (`[intel.trust]` in the configuration sets partial trust.)
        #[arg(long, value_name = "ID")]
        trust: Vec<String>,
        /// A guard configuration (TOML).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Write sightings of the matched indicators here (crash-safe).
        #[arg(long, value_name = "FILE", requires_all = ["sighter_id", "sighter_name"])]
        sightings: Option<PathBuf>,
        /// This provider's STIX identity, for the sightings.
        #[arg(long, value_name = "ID")]
        sighter_id: Option<String>,
        /// This provider's name, for the sightings.
        #[arg(long, value_name = "NAME")]
        sighter_name: Option<String>,
    },
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

/// A guard configuration with the consortium key.
fn keyed(config: Option<&Path>, key_file: &Path) -> Result<ringfence::guard::GuardConfig> {
    let mut c = load_config(config)?;
    c.intel.key = Some(ConsortiumKey::from_file(key_file)?);
    Ok(c)
}

/// Replays a trace file; its first and last timestamps.
fn replay_file(replayer: &mut Replayer, trace: &Path) -> Result<(f64, f64)> {
    let f = File::open(trace).map_err(|e| format!("cannot open {}: {e}", trace.display()))?;
    replayer
        .replay_reader(BufReader::with_capacity(1 << 18, f), |_| Ok(()), |_| {})
        .map_err(|e| format!("{}: {e}", trace.display()))?;
    let origin = replayer
        .origin()
        .ok_or_else(|| format!("{}: no requests", trace.display()))?;
    Ok((origin, origin + replayer.report().trace_secs))
}

/// The start of a trace file (its first line's `ts`), before replaying it.
fn first_ts(trace: &Path) -> Result<f64> {
    use std::io::BufRead;
    let f = File::open(trace).map_err(|e| format!("cannot open {}: {e}", trace.display()))?;
    let mut line = String::new();
    BufReader::new(f)
        .read_line(&mut line)
        .map_err(|e| format!("cannot read {}: {e}", trace.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("{} line 1: {e}", trace.display()))?;
    v.get("ts")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| Failure(format!("{} line 1: no number `ts`", trace.display())))
}

fn write(path: &Path, text: &str) -> Result<()> {
    ringfence::persist::write_atomic(path, text.as_bytes())
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

/// Runs `ringfence intel …`.
pub fn run(command: IntelCommand) -> Result<()> {
    match command {
        IntelCommand::Export {
            trace,
            key_file,
            out,
            producer_id,
            producer_name,
            config,
            min_score,
            min_campaign_accounts,
        } => {
            let mut replayer = Replayer::new(
                keyed(config.as_deref(), &key_file)?,
                ReplayOptions::default(),
            );
            let (origin, end) = replay_file(&mut replayer, &trace)?;
            let producer = Producer {
                identity_id: producer_id,
                name: producer_name,
            };
            let options = ExportOptions {
                min_score,
                min_campaign_accounts,
                max_benign_share: None,
            };
            let found = replayer.guard().export_indicators(&options)?;
            if found.is_empty() {
                eprintln!(
                    "nothing to export: no shared value of a flagged cluster passes the export rule; {} left as it was",
                    out.display()
                );
                return Ok(());
            }
            let (text, found) = export_bundle(replayer.guard(), &producer, end, origin, &options)
                .map_err(Failure)?;
            write(&out, &text)?;
            eprintln!("{} indicators written to {}", found.len(), out.display());
            Ok(())
        }
        IntelCommand::Import {
            bundle,
            trace,
            key_file,
            trust,
            config,
            sightings,
            sighter_id,
            sighter_name,
        } => {
            let mut c = keyed(config.as_deref(), &key_file)?;
            for t in trust {
                c.intel.trust.insert(t, 1.0);
            }
            let text = std::fs::read_to_string(&bundle)
                .map_err(|e| format!("cannot read {}: {e}", bundle.display()))?;
            let start = first_ts(&trace)?;
            let mut replayer = Replayer::new(c, ReplayOptions::default());
            let (_, list) = parse_for(replayer.guard(), &text, start, start)
                .map_err(|e| format!("{}: {e}", bundle.display()))?;
            let imported = replayer.guard().import_indicators(&list)?;
            eprintln!(
                "imported {} indicators ({} ignored, {} revoked)",
                imported.added, imported.ignored, imported.revoked
            );
            let (origin, end) = replay_file(&mut replayer, &trace)?;
            let report = replayer.report();
            print!("{}", render::report(&report, Some(replayer.guard())));
            if let (Some(path), Some(id), Some(name)) = (sightings, sighter_id, sighter_name) {
                let seen: Vec<Sighting> = replayer
                    .guard()
                    .matched_indicators()
                    .into_iter()
                    .map(|m| Sighting {
                        indicator_id: m.id,
                        count: m.count,
                        first_seen: m.first_seen + origin,
                        last_seen: m.last_seen + origin,
                    })
                    .collect();
                if seen.is_empty() {
                    eprintln!("no indicator matched: no sightings written");
                } else {
                    let sighter = Producer {
                        identity_id: id,
                        name,
                    };
                    let text = ringfence_intel::sighting_bundle(&sighter, end, Tlp::Amber, &seen)?;
                    write(&path, &text)?;
                    eprintln!("{} sightings written to {}", seen.len(), path.display());
                }
            }
            Ok(())
        }
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
                seed: a.seed.wrapping_add(1),
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
