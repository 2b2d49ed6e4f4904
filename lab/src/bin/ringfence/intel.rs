//! `ringfence intel`: export a trace's operations as a STIX 2.1 bundle,
//! replay a trace with another provider's bundle imported, and the
//! two-provider exchange experiment.

use super::{load_config, load_scenario, render, Failure, Result, ScenarioArgs};
use clap::Subcommand;
use ringfence::intel::{ConsortiumKey, ExportOptions};
use ringfence_intel::{guard, Producer, Tlp};
use ringfence_lab::intel::exchange;
use ringfence_lab::replay::{ReplayOptions, Replayer, Report};
use ringfence_lab::sim::{second_provider, simulate, Record, SecondProvider};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The subcommands of `ringfence intel`.
#[derive(Subcommand)]
pub enum IntelCommand {
    /// Export the values that linked the operations a guard flagged,
    /// hashed under the consortium key, as a STIX 2.1 bundle: from a guard
    /// snapshot (`replay --snapshot`, or a gateway's), or by replaying a trace.
    Export {
        /// A guard snapshot taken with the consortium key configured.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "trace",
            conflicts_with = "trace"
        )]
        snapshot: Option<PathBuf>,
        /// A trace to replay instead (JSON Lines, as `replay` reads).
        #[arg(long, value_name = "TRACE")]
        trace: Option<PathBuf>,
        /// The export's time, unix seconds (default: when the snapshot was
        /// taken, or the trace's last request).
        #[arg(long, value_name = "UNIX")]
        at: Option<f64>,
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
    /// Revoke indicators of an earlier export (its bundle): write a bundle
    /// that re-issues them with `revoked: true`, for the importers.
    Revoke {
        /// The earlier export's bundle.
        #[arg(long, value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The consortium key file.
        #[arg(long, value_name = "KEY")]
        key_file: PathBuf,
        /// Where to write the revocation (crash-safe).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The producer's STIX identity (it may revoke only its own).
        #[arg(long, value_name = "ID")]
        producer_id: String,
        /// The producer's name.
        #[arg(long, value_name = "NAME")]
        producer_name: String,
        /// Revoke only this indicator (its STIX id); repeatable. Default: all.
        #[arg(long, value_name = "ID")]
        indicator: Vec<String>,
        /// The revocation's time, unix seconds (default: now).
        #[arg(long, value_name = "UNIX")]
        at: Option<f64>,
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
            snapshot,
            trace,
            at,
            key_file,
            out,
            producer_id,
            producer_name,
            config,
            min_score,
            min_campaign_accounts,
        } => {
            let c = keyed(config.as_deref(), &key_file)?;
            let producer = Producer {
                identity_id: producer_id,
                name: producer_name,
            };
            let options = ExportOptions {
                min_score,
                min_campaign_accounts,
                max_benign_share: None,
            };
            let export = |guard: &ringfence::guard::Guard, now: f64| -> Result<()> {
                match guard::export(guard, &producer, now, Tlp::Amber, &options) {
                    Ok(x) => {
                        write(&out, &x.bundle)?;
                        eprintln!(
                            "{} indicators written to {}",
                            x.indicators.len(),
                            out.display()
                        );
                        Ok(())
                    }
                    Err(guard::ExchangeError::Nothing(why)) => {
                        eprintln!("{why}; {} left as it was", out.display());
                        Ok(())
                    }
                    Err(e) => Err(Failure(e.to_string())),
                }
            };
            match (snapshot, trace) {
                (Some(path), _) => {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let bad =
                        |e: ringfence::guard::SnapshotError| format!("{}: {e}", path.display());
                    let taken = ringfence::guard::Guard::snapshot_time(&bytes).map_err(bad)?;
                    let unix = ringfence::guard::Guard::snapshot_unix_time(&bytes).map_err(bad)?;
                    let now = at.or(unix).ok_or_else(|| {
                        format!(
                            "{} does not say when it was taken (a snapshot of format 4): give --at",
                            path.display()
                        )
                    })?;
                    let (guard, clock) = ringfence::guard::Guard::try_for_replay(c)?;
                    clock.set(std::time::Duration::from_secs_f64(taken.max(0.0)));
                    guard.restore(&bytes).map_err(bad)?;
                    if guard.intel_stats().values == 0 {
                        eprintln!(
                            "{} holds no shared values for export (was it taken with the consortium key configured?)",
                            path.display()
                        );
                    }
                    export(&guard, now)
                }
                (None, Some(trace)) => {
                    let mut replayer = Replayer::new(c, ReplayOptions::default());
                    let (_, end) = replay_file(&mut replayer, &trace)?;
                    export(replayer.guard(), at.unwrap_or(end))
                }
                (None, None) => Err(Failure("give --snapshot or --trace".into())),
            }
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
            let imported = guard::import(replayer.guard(), &text, start)
                .map_err(|e| format!("{}: {e}", bundle.display()))?
                .report;
            eprintln!(
                "imported {} indicators ({} ignored, {} revoked)",
                imported.added, imported.ignored, imported.revoked
            );
            let (_, end) = replay_file(&mut replayer, &trace)?;
            let report = replayer.report();
            print!("{}", render::report(&report, Some(replayer.guard())));
            if let (Some(path), Some(id), Some(name)) = (sightings, sighter_id, sighter_name) {
                let sighter = Producer {
                    identity_id: id,
                    name,
                };
                match guard::sightings(replayer.guard(), &sighter, end, Tlp::Amber) {
                    Ok(text) => {
                        write(&path, &text)?;
                        let n = replayer.guard().matched_indicators().len();
                        eprintln!("{n} sightings written to {}", path.display());
                    }
                    Err(guard::ExchangeError::Nothing(why)) => {
                        eprintln!("{why}: no sightings written")
                    }
                    Err(e) => return Err(Failure(e.to_string())),
                }
            }
            Ok(())
        }
        IntelCommand::Revoke {
            bundle,
            key_file,
            out,
            producer_id,
            producer_name,
            indicator,
            at,
        } => {
            let key = ConsortiumKey::from_file(&key_file)?;
            let text = std::fs::read_to_string(&bundle)
                .map_err(|e| format!("cannot read {}: {e}", bundle.display()))?;
            let now = at.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            });
            let producer = Producer {
                identity_id: producer_id,
                name: producer_name,
            };
            let only = (!indicator.is_empty()).then_some(indicator.as_slice());
            let revocation = guard::revoke(&text, key.key_id(), &producer, now, only)
                .map_err(|e| format!("{}: {e}", bundle.display()))?;
            write(&out, &revocation)?;
            eprintln!("revocation written to {}", out.display());
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
            if let (Some(wo), Some(wi)) = (&x.without.evaluation, &x.with.evaluation) {
                println!(
                    "B's benign requests refused: {} without, {} with; highest verdict score on a benign account: {:.2} without, {:.2} with",
                    wo.benign.refused,
                    wi.benign.refused,
                    wo.benign.max_verdict_score,
                    wi.benign.max_verdict_score
                );
                println!("B's benign cohorts' highest verdict scores, without → with:");
                for (cohort, c) in &wo.benign_cohorts {
                    let with = wi
                        .benign_cohorts
                        .get(cohort)
                        .map_or(0.0, |c| c.max_verdict_score);
                    println!("  {cohort:<22} {:.2} → {with:.2}", c.max_verdict_score);
                }
            }
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
