//! The `ringfence` command: `demo`, `simulate`, `replay`, `explain`.
//!
//! Everything it computes comes from the library (`ringfence_lab::replay`,
//! `ringfence_lab::sim`, `ringfence::guard`); this file reads arguments and
//! files, writes outputs, and turns every failure into one line on standard
//! error and exit code 1 (2 for usage errors, from clap).

mod intel;
mod progress;
mod render;

use clap::{Parser, Subcommand};
use progress::Status;
use ringfence::guard::{Guard, GuardConfig};
use ringfence_fleet::{
    EvidenceExchange, FleetConfig, MemoryExchange, MemoryStore, QuotaStore, RedisExchange,
    RedisStore, Rule,
};
use ringfence_lab::replay::html::HtmlReport;
use ringfence_lab::replay::{ReplayError, ReplayOptions, Replayer, Report};
use ringfence_lab::sim::{simulate_stream, Scenario, BUILTIN_SCENARIOS};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// The demo's default size: a fraction of the default scenario's accounts
/// (one simulated day either way). See the README's "Quick start".
const DEMO_SCALE: f64 = 1.0;

#[derive(Parser)]
#[command(
    name = "ringfence",
    version,
    about = "Rate limiting, account linking and distillation scoring for LLM APIs: see it work, replay logs through a configuration.",
    after_help = "Start with `ringfence demo`. Formats: see the README's \"Formats\"."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a day of traffic with a distillation campaign hidden in it,
    /// replay it through a guard as it is generated, and print what was found.
    Demo {
        /// A built-in scenario (default, adaptive, seed, seed-adaptive) or a scenario TOML file.
        #[arg(long, default_value = "default", value_name = "NAME|FILE")]
        scenario: String,
        /// The simulation's seed (default: the scenario's).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Multiply the scenario's accounts by X.
        #[arg(long, default_value_t = DEMO_SCALE, value_name = "X")]
        scale: f64,
        /// Multiply the campaign's accounts (only) by F.
        #[arg(long, default_value_t = 1.0, value_name = "F")]
        campaign_scale: f64,
        /// A guard configuration (TOML; default: the defaults). Tables
        /// whose size it does not set are sized for the scenario's accounts.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Also write the report as JSON (`-`: standard output).
        #[arg(long, value_name = "FILE")]
        report: Option<String>,
        /// Also write the report as one self-contained HTML page, with
        /// charts (`-`: standard output).
        #[arg(long, value_name = "FILE")]
        html: Option<String>,
    },
    /// Write a simulated trace (JSON Lines), as it is generated.
    Simulate {
        /// A built-in scenario (default, adaptive, seed, seed-adaptive) or a scenario TOML file.
        #[arg(long, default_value = "default", value_name = "NAME|FILE")]
        scenario: String,
        /// The simulation's seed (default: the scenario's).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Multiply the scenario's accounts by X.
        #[arg(long, default_value_t = 1.0, value_name = "X")]
        scale: f64,
        /// Multiply the campaign's accounts (only) by F.
        #[arg(long, default_value_t = 1.0, value_name = "F")]
        campaign_scale: f64,
        /// Where to write the trace (`-`: standard output).
        #[arg(long, value_name = "TRACE")]
        out: String,
    },
    /// Replay a trace through a guard, with the trace's timestamps as its clock.
    Replay(ReplayArgs),
    /// Threat intelligence shared between providers (STIX 2.1).
    #[command(subcommand)]
    Intel(intel::IntelCommand),
    /// Explain an account's treatment from a replay's snapshot.
    Explain {
        /// The account.
        account: String,
        /// A snapshot written by `replay --snapshot`.
        #[arg(long, value_name = "FILE")]
        snapshot: PathBuf,
        /// The configuration the snapshot was made with, if not the default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// A failure, as one line for standard error.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

type Result<T> = std::result::Result<T, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            scenario,
            seed,
            scale,
            campaign_scale,
            config,
            report,
            html,
        } => demo(
            &ScenarioArgs {
                name: scenario,
                seed,
                scale,
                campaign_scale,
            },
            config.as_deref(),
            report.as_deref(),
            html.as_deref(),
        ),
        Command::Simulate {
            scenario,
            seed,
            scale,
            campaign_scale,
            out,
        } => simulate_cmd(
            &ScenarioArgs {
                name: scenario,
                seed,
                scale,
                campaign_scale,
            },
            &out,
        ),
        Command::Replay(args) => replay_cmd(args),
        Command::Intel(command) => intel::run(command),
        Command::Explain {
            account,
            snapshot,
            config,
        } => explain(&account, &snapshot, config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            // Writing to a closed pipe (`ringfence ... | head`) is not a failure.
            if message == BROKEN_PIPE {
                return ExitCode::SUCCESS;
            }
            eprintln!("ringfence: error: {message}");
            ExitCode::from(1)
        }
    }
}

const BROKEN_PIPE: &str = "\u{0}broken pipe";

/// Maps a write error to a failure naming what was being written.
fn writing(what: &str) -> impl Fn(io::Error) -> Failure + '_ {
    move |e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure(BROKEN_PIPE.into())
        } else {
            Failure(format!("cannot write {what}: {e}"))
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<GuardConfig> {
    let Some(path) = path else {
        return Ok(GuardConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
    GuardConfig::from_toml(&text).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// The scenario options of `demo` and `simulate`.
struct ScenarioArgs {
    name: String,
    seed: Option<u64>,
    scale: f64,
    campaign_scale: f64,
}

fn load_scenario(a: &ScenarioArgs) -> Result<Scenario> {
    let (name, scale, campaign_scale) = (a.name.as_str(), a.scale, a.campaign_scale);
    if !(scale.is_finite() && scale > 0.0 && scale <= 100.0) {
        return Err(Failure(format!(
            "--scale must be above 0 and at most 100, not {scale}"
        )));
    }
    if !(campaign_scale.is_finite() && (0.0..=100.0).contains(&campaign_scale)) {
        return Err(Failure(format!(
            "--campaign-scale must be from 0 to 100, not {campaign_scale}"
        )));
    }
    let base = match Scenario::builtin(name) {
        Some(s) => s,
        None => {
            let path = Path::new(name);
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "scenario `{name}` is neither built in ({}) nor a readable file: {e}",
                    BUILTIN_SCENARIOS.join(", ")
                )
            })?;
            Scenario::from_toml(&text).map_err(|e| Failure(format!("{name}: {e}")))?
        }
    };
    let mut s = base.scaled(scale);
    s.campaign_scale *= campaign_scale;
    if let Some(seed) = a.seed {
        s.seed = seed;
    }
    s.validate().map_err(|e| {
        Failure(format!(
            "{e} (after --scale {scale}, --campaign-scale {campaign_scale})"
        ))
    })?;
    Ok(s)
}

/// Writes the scenario's trace to `out` as it is generated; the number of
/// requests written.
fn write_stream(s: &Scenario, out: &mut impl Write, status: &mut Status) -> io::Result<u64> {
    let started = Instant::now();
    let mut n = 0u64;
    for r in simulate_stream(s) {
        serde_json::to_writer(&mut *out, &r)?;
        out.write_all(b"\n")?;
        n += 1;
        if n % 65_536 == 0 {
            status.tick(&format!(
                "simulating ... {} requests, {:.0} s",
                render::count(n),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    out.flush()?;
    Ok(n)
}

fn simulate_cmd(args: &ScenarioArgs, out: &str) -> Result<()> {
    let s = load_scenario(args)?;
    let mut status = Status::new(false);
    status.message(&format!(
        "simulating the {} scenario ({} h, seed {}, {} accounts)",
        s.name,
        s.hours,
        s.seed,
        render::count(s.total_accounts())
    ));
    let started = Instant::now();
    let result = if out == "-" {
        write_stream(&s, &mut BufWriter::new(io::stdout().lock()), &mut status)
    } else {
        let f = File::create(out).map_err(|e| format!("cannot create {out}: {e}"))?;
        write_stream(&s, &mut BufWriter::with_capacity(1 << 16, f), &mut status)
    };
    let n = result.map_err(writing(if out == "-" { "the trace" } else { out }))?;
    status.done(&format!(
        "wrote {} requests to {} in {:.1} s",
        render::count(n),
        if out == "-" { "standard output" } else { out },
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// An output file, or standard output for `-`.
fn create(path: &str) -> Result<Box<dyn Write>> {
    if path == "-" {
        Ok(Box::new(BufWriter::new(io::stdout())))
    } else {
        let f = File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?;
        Ok(Box::new(BufWriter::with_capacity(1 << 16, f)))
    }
}

/// Writes the report as JSON (`--report`).
fn write_report(w: &mut dyn Write, report: &Report) -> Result<()> {
    serde_json::to_writer_pretty(&mut *w, report)
        .map_err(io::Error::from)
        .map_err(writing("the report"))?;
    w.write_all(b"\n").map_err(writing("the report"))?;
    w.flush().map_err(writing("the report"))
}

/// Prints the readable report: on standard output, or on standard error
/// when standard output is taken by a JSON output.
fn print_report(text: &str, stdout_taken: bool) -> Result<()> {
    if stdout_taken {
        eprint!("{text}");
        return Ok(());
    }
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(writing("the report"))
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The trace (JSON Lines; `-`: standard input).
    trace: String,
    /// A guard configuration (TOML; default: the defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write one decision per replayed line (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    decisions: Option<String>,
    /// Write one line per account at the end (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    accounts: Option<String>,
    /// Write the report as JSON (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Write the report as one self-contained HTML page, with charts
    /// (`-`: standard output). A trace file is read again for the evidence
    /// graphs.
    #[arg(long, value_name = "FILE")]
    html: Option<String>,
    /// Write the guard's snapshot at the end (for `explain`).
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Count and skip malformed lines instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// Output tokens reserved per request before its verdict.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_tokens: u32,
    /// Threads: one replays through the guard in the trace's order, the
    /// others read and parse beside it. The decisions are the same with
    /// any number; parsing is a tenth of the work, so more threads gain
    /// at most that (and on two cores shared with a busy neighbour, lose).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: u32,
    /// Gateway nodes: the trace is fed to N guards round-robin, whose
    /// request quotas are kept fleet-wide (ringfence-fleet, the
    /// configuration's [fleet] table) and synchronised in trace time. Each
    /// node links and scores what it sees.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    nodes: u32,
    /// Keep the fleet's quotas in this Redis or Valkey (`redis://host:port/`)
    /// instead of in this process (with --nodes).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// With --nodes: the nodes share quotas but not evidence (each links
    /// and scores only what it sees), to measure what sharing is worth.
    #[arg(long)]
    isolated: bool,
    /// No progress display.
    #[arg(long, short)]
    quiet: bool,
}

/// What a fleet replay runs on (`replay --nodes`).
struct FleetParts {
    store: Arc<dyn QuotaStore>,
    config: FleetConfig,
    exchange: Option<Arc<dyn EvidenceExchange>>,
}

/// The fleet's quota store, settings and evidence exchange for `replay
/// --nodes`: in this process, or in the Redis at `redis`, under a prefix
/// of this run's own (what another run left there, quotas in its trace
/// time and its evidence, is never read).
fn fleet_parts(
    config: &GuardConfig,
    nodes: u32,
    redis: Option<&str>,
    isolated: bool,
) -> Result<FleetParts> {
    let mut fleet = FleetConfig::from_table(&config.fleet).map_err(|e| Failure(e.to_string()))?;
    if let Some(url) = redis {
        fleet.url = url.to_string();
        fleet
            .validate()
            .map_err(|e| Failure(format!("--redis: {e}")))?;
    }
    if fleet.url.is_empty() {
        return Ok(FleetParts {
            store: Arc::new(MemoryStore::new()),
            exchange: (!isolated)
                .then(|| Arc::new(MemoryExchange::new(nodes)) as Arc<dyn EvidenceExchange>),
            config: fleet,
        });
    }
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    fleet.prefix = format!("{}:replay{run:x}", fleet.prefix);
    // A replay waits for answers (a second each) rather than fall back,
    // and checks the server answers before it starts.
    let timeout = std::time::Duration::from_secs(1);
    let failed = |e: ringfence_fleet::StoreError| Failure(format!("{}: {e}", fleet.url));
    let store = RedisStore::open(&fleet.url, timeout).map_err(failed)?;
    store
        .take(
            &format!("{}:probe", fleet.prefix),
            Rule::per_minute(1),
            0,
            0,
            0,
        )
        .map_err(failed)?;
    let exchange = if isolated {
        None
    } else {
        // Streams kept a day past their last batch, trimmed to about 1,000
        // batches each: a replay's nodes read them at every sync.
        let e = RedisExchange::open(
            &fleet.url,
            &fleet.prefix,
            nodes,
            timeout,
            1_000,
            std::time::Duration::from_secs(86_400),
        )
        .map_err(failed)?;
        Some(Arc::new(e) as Arc<dyn EvidenceExchange>)
    };
    Ok(FleetParts {
        store: Arc::new(store),
        config: fleet,
        exchange,
    })
}

fn replay_cmd(a: ReplayArgs) -> Result<()> {
    let config = load_config(a.config.as_deref())?;
    if a.redis.is_some() && a.nodes < 2 {
        return Err(Failure("--redis needs --nodes 2 or more".into()));
    }
    let fleet = fleet_parts(&config, a.nodes, a.redis.as_deref(), a.isolated)?;
    let (input, total): (Box<dyn BufRead + Send>, Option<u64>) = if a.trace == "-" {
        (Box::new(BufReader::new(io::stdin())), None)
    } else {
        let f = File::open(&a.trace).map_err(|e| format!("cannot open {}: {e}", a.trace))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 18, f)), len)
    };
    // Open every output first, so that a bad path fails before the work.
    let mut decisions = a.decisions.as_deref().map(create).transpose()?;
    let mut accounts = a.accounts.as_deref().map(create).transpose()?;
    let mut report_out = a.report.as_deref().map(create).transpose()?;
    let mut html_out = a.html.as_deref().map(create).transpose()?;
    // The snapshot is written at the end, crash-safe (a temporary file
    // renamed over it); its directory is checked now.
    if let Some(p) = &a.snapshot {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() || p.is_dir() {
            return Err(Failure(format!(
                "cannot create {}: {}",
                p.display(),
                if p.is_dir() {
                    "it is a directory"
                } else {
                    "its directory does not exist"
                }
            )));
        }
    }
    let stdout_taken = [&a.decisions, &a.accounts, &a.report, &a.html]
        .iter()
        .any(|o| o.as_deref() == Some("-"));

    let mut status = Status::new(a.quiet);
    let options = ReplayOptions {
        max_tokens: a.max_tokens,
        skip_bad: a.skip_bad,
    };
    let mut replayer = Replayer::new(config, options).with_nodes(
        a.nodes,
        fleet.store,
        &fleet.config,
        fleet.exchange,
    );
    let skip_bad = replayer.options().skip_bad;
    let result = replayer.replay_reader_threads(
        input,
        a.threads as usize,
        |d| match decisions.as_mut() {
            Some(w) => {
                serde_json::to_writer(&mut *w, d).map_err(io::Error::from)?;
                w.write_all(b"\n")
            }
            None => Ok(()),
        },
        |p| status.progress(p, total),
    );
    status.clear();
    let shared = replayer.share_stats();
    if shared.published > 0 {
        eprintln!(
            "ringfence: the nodes shared {} requests and {} answers in {:.1} MB of evidence ({:.0} bytes a request)",
            shared.published,
            shared.answers_published,
            shared.bytes_published as f64 / 1e6,
            shared.bytes_published as f64 / shared.published as f64
        );
    }
    let (bad, first_bad) = replayer.bad_lines();
    for e in first_bad {
        eprintln!("ringfence: skipped bad {e}");
    }
    if bad > first_bad.len() as u64 {
        eprintln!(
            "ringfence: skipped {} more bad lines",
            bad - first_bad.len() as u64
        );
    }
    match result {
        Ok(()) => {}
        Err(ReplayError::Write(e)) => return Err(writing("the decisions")(e)),
        Err(ReplayError::Trace(e)) => {
            return Err(Failure(format!(
                "{}: bad trace {e}{}",
                a.trace,
                if skip_bad {
                    ""
                } else {
                    " (--skip-bad counts and skips such lines)"
                }
            )))
        }
        Err(e) => return Err(Failure(format!("{}: {e}", a.trace))),
    }
    if let Some(w) = decisions.as_mut() {
        w.flush().map_err(writing("the decisions"))?;
    }
    if let Some(w) = accounts.as_mut() {
        for line in replayer.accounts() {
            serde_json::to_writer(&mut *w, &line)
                .map_err(io::Error::from)
                .map_err(writing("the accounts"))?;
            w.write_all(b"\n").map_err(writing("the accounts"))?;
        }
        w.flush().map_err(writing("the accounts"))?;
    }
    if let Some(p) = &a.snapshot {
        replayer
            .guard()
            .snapshot_to_file(p)
            .map_err(|e| Failure(format!("cannot write the snapshot {}: {e}", p.display())))?;
    }
    let report = replayer.report();
    if let Some(w) = report_out.as_mut() {
        write_report(w, &report)?;
    }
    if let Some(w) = html_out.as_mut() {
        let page = render::replay_page(&replayer, &report, &a.trace, a.config.as_deref(), a.nodes)
            .map_err(Failure)?;
        write_html(w, &page)?;
    }
    print_report(
        &render::report(&report, Some(replayer.guard())),
        stdout_taken,
    )
}

/// Writes the HTML report (`--html`).
fn write_html(w: &mut dyn Write, page: &str) -> Result<()> {
    w.write_all(page.as_bytes())
        .and_then(|()| w.flush())
        .map_err(writing("the HTML report"))
}

/// The trace's lines, read from the simulating thread's chunks.
struct ChannelReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.chunk.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                // The simulation is over.
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// Simulates on its own thread, serialising each record as a trace line
/// into chunks of a bounded channel, and counting what the header shows.
fn produce(
    s: &Scenario,
    mut trace: render::DemoTrace,
    chunks: mpsc::SyncSender<Vec<u8>>,
) -> render::DemoTrace {
    const CHUNK: usize = 1 << 18;
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    for r in simulate_stream(s) {
        trace.observe(&r);
        // A record always serialises (strings, numbers and a map of strings).
        serde_json::to_writer(&mut chunk, &r).expect("a record serialises");
        chunk.push(b'\n');
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK + 4096));
            if chunks.send(full).is_err() {
                // The replay stopped.
                return trace;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = chunks.send(chunk);
    }
    trace
}

fn demo(
    args: &ScenarioArgs,
    config_path: Option<&Path>,
    report_path: Option<&str>,
    html_path: Option<&str>,
) -> Result<()> {
    let s = load_scenario(args)?;
    let accounts = s.total_accounts();
    let (config, guard) = match config_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
            let n = usize::try_from(accounts).unwrap_or(usize::MAX);
            let config = GuardConfig::from_toml_sized(&text, n)
                .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
            (
                config,
                format!(
                    "your configuration, with the table sizes it does not set sized for {} accounts",
                    render::count(accounts)
                ),
            )
        }
        None => (
            GuardConfig::for_accounts(usize::try_from(accounts).unwrap_or(usize::MAX)),
            format!(
                "the default configuration sized for {} accounts (GuardConfig::for_accounts)",
                render::count(accounts)
            ),
        ),
    };
    let mut report_out = report_path.map(create).transpose()?;
    let mut html_out = html_path.map(create).transpose()?;
    let mut status = Status::new(false);
    status.message(&format!(
        "simulating the {} scenario ({} h, seed {}, {} accounts) and replaying it through a guard ({guard})",
        s.name,
        s.hours,
        s.seed,
        render::count(accounts)
    ));
    // Replay it as `ringfence replay` would a file: through the trace format,
    // so the throughput includes JSON parsing; the simulation runs on its
    // own thread, a few chunks ahead, and the trace is never held whole.
    let labels = render::DemoTrace::new(&s, args.scale, args.campaign_scale, guard);
    let mut replayer = Replayer::new(config, ReplayOptions::default());
    let (labels, result) = std::thread::scope(|scope| {
        let (send, chunks) = mpsc::sync_channel(8);
        let producer = scope.spawn(|| produce(&s, labels, send));
        let reader = ChannelReader {
            chunks,
            chunk: Vec::new(),
            pos: 0,
        };
        let result = replayer.replay_reader(reader, |_| Ok(()), |p| status.progress(p, None));
        match producer.join() {
            Ok(labels) => (labels, result),
            // The simulator does not panic on a validated scenario; if it
            // ever did, report it as the failure it is.
            Err(p) => std::panic::resume_unwind(p),
        }
    });
    result.map_err(|e| Failure(format!("the simulated trace: {e}")))?;
    status.clear();
    let report = replayer.report();
    if let Some(w) = report_out.as_mut() {
        write_report(w, &report)?;
    }
    let header = render::demo_header(&labels);
    if let Some(w) = html_out.as_mut() {
        let mut page = HtmlReport::gather(&replayer, &report);
        // Which sampled account presents which value: from the same
        // trace, simulated again (it is never held whole).
        status.message("simulating the trace again for the HTML report's evidence graphs");
        page.observe_records(simulate_stream(&s));
        status.clear();
        let title = format!("demo of the `{}` scenario", s.name);
        write_html(w, &page.page(&replayer, &report, &title, &header))?;
    }
    let mut text = header;
    text.push_str(&render::report(&report, Some(replayer.guard())));
    print_report(&text, report_path == Some("-") || html_path == Some("-"))
}

fn explain(account: &str, snapshot: &Path, config: Option<&Path>) -> Result<()> {
    let config = load_config(config)?;
    let bytes = std::fs::read(snapshot)
        .map_err(|e| format!("cannot read the snapshot {}: {e}", snapshot.display()))?;
    let (guard, clock) = Guard::for_replay(config);
    // At the snapshot's own time: nothing ages while it is explained.
    let taken = Guard::snapshot_time(&bytes)
        .map_err(|e| Failure(format!("{}: {e}", snapshot.display())))?;
    if taken.is_finite() && taken > 0.0 {
        clock.set(std::time::Duration::from_secs_f64(taken.min(1e12)));
    }
    guard
        .restore(&bytes)
        .map_err(|e| Failure(format!("{}: {e}", snapshot.display())))?;
    let Some(explanation) = guard.explain(account) else {
        return Err(Failure(format!(
            "account `{account}` is not in the snapshot {} (unknown, or its evidence expired)",
            snapshot.display()
        )));
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{explanation}")
        .and_then(|()| out.flush())
        .map_err(writing("the explanation"))
}
