//! Driving a guard over trace lines: the replay's clock, the per-account-only
//! baseline beside the guard, the counts the report needs, and the
//! decisions and accounts written as it goes and at the end.

use super::evaluation::{Outcome, Tally};
use super::nodes::Nodes;
use super::report::{peak_memory_bytes, ClusterId, Report, Settings};
use super::timeline::{Class, Fate, Timeline};
use super::trace::{TraceError, TraceLine};
use crate::sim::Record;
use ringfence::guard::{
    cluster_action, estimate_tokens, ClusterAction, Decision, Guard, GuardConfig, ObserveMode,
    Reason, Request, Verdict,
};
use ringfence::limit::{ManualClock, Quota, RateLimiter};
use ringfence_fleet::{EvidenceExchange, FleetConfig, QuotaStore};
use serde::Serialize;
use std::fmt;
use std::io::{self, BufRead};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Decisions and accounts: the replay's per-line and per-account output
// ---------------------------------------------------------------------------

/// One line of the decisions file: the verdict on one trace line.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionLine<'a> {
    /// The trace line's number (from 1).
    pub line: u64,
    /// The account.
    pub account: &'a str,
    /// `allow`, `throttle` or `deny`.
    pub decision: &'static str,
    /// Why (the guard's reasons).
    pub reasons: &'a [Reason],
    /// The account's cluster.
    pub cluster: ClusterId,
    /// Accounts in the cluster.
    pub cluster_size: u32,
    /// The cluster's score.
    pub score: f64,
    /// Seconds until a throttled request would fit; `null` otherwise.
    pub retry_after: Option<f64>,
}

impl<'a> DecisionLine<'a> {
    /// The decision line for `verdict` on trace line `line` of `account`.
    pub fn new(line: u64, account: &'a str, verdict: &'a Verdict) -> DecisionLine<'a> {
        let (decision, retry_after) = match verdict.decision {
            Decision::Allow => ("allow", None),
            Decision::Throttle { retry_after } => ("throttle", Some(retry_after.as_secs_f64())),
            Decision::Deny => ("deny", None),
        };
        DecisionLine {
            line,
            account,
            decision,
            reasons: &verdict.reasons,
            cluster: ClusterId(verdict.cluster.id),
            cluster_size: verdict.cluster.size,
            score: verdict.score,
            retry_after,
        }
    }
}

/// A trace line as read: blank, a request, or what is wrong with it.
pub(super) enum Decoded<'a> {
    Blank,
    Line(TraceLine<'a>),
    Bad(TraceError),
}

/// Decodes trace line `line_no` (`buf`, its bytes as read, the newline
/// included or not).
pub(super) fn decode(buf: &[u8], line_no: u64) -> Decoded<'_> {
    let text = match std::str::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => {
            return Decoded::Bad(TraceError {
                line: line_no,
                column: e.valid_up_to() + 1,
                message: "not valid UTF-8".to_string(),
            })
        }
    };
    let text = text.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return Decoded::Blank;
    }
    match TraceLine::parse(text, line_no) {
        Ok(t) => Decoded::Line(t),
        Err(e) => Decoded::Bad(e),
    }
}

/// One line of the accounts file: an account at the end of the replay.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AccountLine {
    /// The account.
    pub account: String,
    /// Its cluster at the end.
    pub cluster: ClusterId,
    /// Accounts in the cluster.
    pub cluster_size: u32,
    /// The cluster's score at the end.
    pub score: f64,
    /// Whether cluster policy applies to it: `cluster_size ≥
    /// min_cluster_size` and `score ≥ share_at`.
    pub flagged: bool,
    /// Its requests in the trace.
    pub requests: u64,
    /// Of which refused (throttled or denied), for any reason.
    pub refused: u64,
}

// ---------------------------------------------------------------------------
// The replay
// ---------------------------------------------------------------------------

/// How to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// The output tokens reserved for each request before its verdict (a
    /// trace records what the model answered, which a gateway does not know
    /// in advance): the request's `max_tokens`. Default 1,024.
    pub max_tokens: u32,
    /// Count and skip malformed lines instead of stopping at the first.
    pub skip_bad: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            max_tokens: 1024,
            skip_bad: false,
        }
    }
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// A malformed line (and `skip_bad` was off).
    Trace(TraceError),
    /// Reading the trace failed.
    Read(io::Error),
    /// The decision sink failed (e.g. writing the decisions file).
    Write(io::Error),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Trace(e) => write!(f, "bad trace {e}"),
            ReplayError::Read(e) => write!(f, "cannot read the trace: {e}"),
            ReplayError::Write(e) => write!(f, "cannot write the decisions: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// How far a replay has got, for progress displays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Seconds spent replaying so far.
    pub elapsed_secs: f64,
}

/// The reasons, in the order the report counts them (the core's order).
const REASONS: [Reason; 5] = Reason::ALL;

/// A reason's place in [`REASONS`]: its bit's position.
fn reason_index(r: Reason) -> usize {
    r.bit().trailing_zeros() as usize
}

/// Whether cluster policy applies to a cluster of `size` scoring `score`:
/// the core's own [`cluster_action`], so that "flagged" here means what the
/// guard does.
fn flagged(c: &GuardConfig, size: u32, score: f64) -> bool {
    cluster_action(c, size, false, score) != ClusterAction::None
}

/// Input tokens when the trace gives none: the core's estimate from the
/// prompt's and system prompt's bytes.
fn estimate_input_tokens(prompt: Option<&str>, system: Option<&str>) -> u32 {
    estimate_tokens(prompt.map_or(0, str::len) + system.map_or(0, str::len))
}

/// The per-account-only limiter the evaluation compares against: the
/// guard's per-account quota and nothing else, on the replay's clock.
struct Baseline {
    limiter: RateLimiter,
    clock: Arc<ManualClock>,
}

impl Baseline {
    fn new(config: &GuardConfig) -> Baseline {
        let clock = Arc::new(ManualClock::new());
        let limiter = RateLimiter::builder(Quota::per_minute(config.account_requests_per_minute))
            .capacity(config.limiter_capacity)
            .clock(clock.clone())
            .build();
        Baseline { limiter, clock }
    }

    /// Whether it would serve a request of `account`.
    fn serves(&self, account: &str) -> bool {
        self.limiter.check(account, 1).is_allowed()
    }
}

/// What the replay has counted, line by line and verdict by verdict.
#[derive(Default)]
struct Counts {
    lines: u64,
    blank_lines: u64,
    bad_lines: u64,
    out_of_order: u64,
    requests: u64,
    allowed: u64,
    throttled: u64,
    denied: u64,
    baseline_refused: u64,
    reasons: [u64; 5],
}

impl Counts {
    fn verdict(&mut self, verdict: &Verdict, baseline: bool) {
        self.requests += 1;
        match verdict.decision {
            Decision::Allow => self.allowed += 1,
            Decision::Throttle { .. } => self.throttled += 1,
            Decision::Deny => self.denied += 1,
        }
        self.baseline_refused += u64::from(!baseline);
        for r in &verdict.reasons {
            self.reasons[reason_index(*r)] += 1;
        }
    }
}

/// Replays trace lines through a [`Guard`] and keeps what the report needs
/// (see the module docs).
pub struct Replayer {
    nodes: Nodes,
    config: GuardConfig,
    baseline: Baseline,
    options: ReplayOptions,
    t0: Option<f64>,
    last_ts: f64,
    now_ns: u64,
    counts: Counts,
    first_bad: Vec<TraceError>,
    tally: Tally,
    timeline: Timeline,
    wall: Duration,
}

impl Replayer {
    /// A replayer over a fresh guard with `config`.
    ///
    /// A configuration that records in the background (`[observe] mode =
    /// "background"`) replays as `after`: what it decides, without the
    /// observers' lag, so that a replay gives the same decisions every time.
    pub fn new(mut config: GuardConfig, options: ReplayOptions) -> Replayer {
        if config.observe.mode == ObserveMode::Background {
            config.observe.mode = ObserveMode::After;
        }
        let baseline = Baseline::new(&config);
        Replayer {
            nodes: Nodes::single(config.clone()),
            config,
            baseline,
            options,
            t0: None,
            last_ts: 0.0,
            now_ns: 0,
            counts: Counts::default(),
            first_bad: Vec::new(),
            tally: Tally::default(),
            timeline: Timeline::default(),
            wall: Duration::ZERO,
        }
    }

    /// The same replay over a fleet of `n` nodes fed round-robin, whose
    /// request quotas `store` keeps fleet-wide (see `ringfence-fleet`),
    /// syncing every `fleet.sync_interval_ms` of trace time. At each sync
    /// every node publishes what it decided through `exchange` and records
    /// what the others published (`None`: each node links and scores only
    /// what it sees). Call it before the first line.
    #[must_use]
    pub fn with_nodes(
        mut self,
        n: u32,
        store: Arc<dyn QuotaStore>,
        fleet: &FleetConfig,
        exchange: Option<Arc<dyn EvidenceExchange>>,
    ) -> Replayer {
        if n > 1 {
            self.nodes = Nodes::fleet(&self.config, n, store, fleet, exchange);
        }
        self
    }

    /// The guard (to snapshot or explain after the replay): node 0's when
    /// the replay runs over a fleet.
    pub fn guard(&self) -> &Guard {
        self.nodes.first()
    }

    /// The first line's timestamp (the guard's clock counts from it), once
    /// a line has been replayed.
    pub fn origin(&self) -> Option<f64> {
        self.t0
    }

    /// Nodes replayed over (1 without a fleet).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The evidence the nodes shared, summed over the nodes.
    pub fn share_stats(&self) -> ringfence_fleet::ShareStats {
        self.nodes.share_stats()
    }

    /// Requests served and refused over trace time, and when each
    /// operation was first refused (for the HTML report's chart).
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The per-account tallies (for the HTML report).
    pub(super) fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The options.
    pub fn options(&self) -> &ReplayOptions {
        &self.options
    }

    /// Malformed lines skipped so far, and the first few of their errors.
    pub fn bad_lines(&self) -> (u64, &[TraceError]) {
        (self.counts.bad_lines, &self.first_bad)
    }

    /// Sets both clocks to `ts`, relative to the first line's, and never
    /// backwards (a line earlier than the one before it is replayed at the
    /// latest time seen).
    fn advance_clock(&mut self, ts: f64) {
        let t0 = match self.t0 {
            Some(t0) => t0,
            None => {
                self.nodes.set_unix_origin(ts);
                *self.t0.insert(ts)
            }
        };
        if ts < self.last_ts {
            self.counts.out_of_order += 1;
        }
        self.last_ts = self.last_ts.max(ts);
        let ns = ((ts - t0) * 1e9).max(0.0) as u64;
        self.now_ns = self.now_ns.max(ns);
        self.nodes.set_time(self.now_ns);
        self.baseline.clock.set_nanos(self.now_ns);
    }

    /// The guard's verdict on `t`, settled with its output tokens if allowed.
    fn check(&mut self, t: &TraceLine<'_>) -> Verdict {
        let fingerprints: Vec<(&str, &str)> = t
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let prompt = t.prompt.as_deref();
        let system = t.system.as_deref();
        let req = Request {
            account: &t.account,
            fingerprints: &fingerprints,
            prompt,
            system,
            model: t.model.as_deref(),
            input_tokens: t
                .input_tokens
                .unwrap_or_else(|| estimate_input_tokens(prompt, system)),
            max_tokens: self.options.max_tokens,
        };
        self.nodes.check(&req, t.output_tokens)
    }

    /// Replays one request; returns the guard's verdict and whether the
    /// per-account-only baseline would have served it.
    pub fn step(&mut self, t: &TraceLine<'_>) -> (Verdict, bool) {
        self.advance_clock(t.ts);
        let verdict = self.check(t);
        let baseline = self.baseline.serves(&t.account);
        self.counts.verdict(&verdict, baseline);
        let allowed = verdict.allowed();
        let outcome = Outcome {
            allowed,
            policy_refused: !allowed && verdict.reasons.iter().any(|r| *r != Reason::AccountLimit),
            flagged: flagged(&self.config, verdict.cluster.size, verdict.score),
            baseline,
            score: verdict.score,
        };
        let class = self.tally.record(t, outcome);
        if let Class::Campaign(op) = class {
            if !self.timeline.knows(op) {
                self.timeline.name(op, self.tally.op_name(op));
            }
        }
        let fate = Fate {
            allowed,
            policy_refused: outcome.policy_refused,
            flagged: outcome.flagged,
        };
        self.timeline.record(t.ts, class, fate);
        (verdict, baseline)
    }

    /// Counts a malformed line, or returns it as the error when `skip_bad`
    /// is off.
    pub fn bad_line(&mut self, e: TraceError) -> Result<(), TraceError> {
        if !self.options.skip_bad {
            return Err(e);
        }
        self.counts.bad_lines += 1;
        if self.first_bad.len() < 10 {
            self.first_bad.push(e);
        }
        Ok(())
    }

    /// Replays every line of `reader` (JSON Lines). Each replayed line's
    /// decision goes to `on_decision`; `progress` is called every few
    /// thousand lines. Blank lines are skipped; a malformed line stops the
    /// replay with its error unless `skip_bad` is set, when it is counted
    /// and skipped. Either way, no decision is made for it.
    pub fn replay_reader<R: BufRead>(
        &mut self,
        mut reader: R,
        mut on_decision: impl FnMut(&DecisionLine<'_>) -> io::Result<()>,
        mut progress: impl FnMut(Progress),
    ) -> Result<(), ReplayError> {
        let started = Instant::now();
        let wall_before = self.wall;
        let mut buf = Vec::with_capacity(4096);
        let mut bytes = 0u64;
        let result = loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(ReplayError::Read(e)),
            }
            let line_no = self.count_line(bytes, wall_before + started.elapsed(), &mut progress);
            if let Err(e) = self.replay_line(&buf, line_no, &mut on_decision) {
                break Err(e);
            }
        };
        self.finish(bytes, wall_before + started.elapsed(), &mut progress);
        result
    }

    /// Replays trace line `line_no` (`buf`, its bytes as read).
    fn replay_line(
        &mut self,
        buf: &[u8],
        line_no: u64,
        on_decision: &mut impl FnMut(&DecisionLine<'_>) -> io::Result<()>,
    ) -> Result<(), ReplayError> {
        self.replay_decoded(decode(buf, line_no), line_no, on_decision)
    }

    /// Replays a decoded line: counts a blank one, handles a bad one as
    /// `skip_bad` says, checks a request and reports its decision.
    pub(super) fn replay_decoded(
        &mut self,
        line: Decoded<'_>,
        line_no: u64,
        on_decision: &mut impl FnMut(&DecisionLine<'_>) -> io::Result<()>,
    ) -> Result<(), ReplayError> {
        let t = match line {
            Decoded::Blank => {
                self.counts.blank_lines += 1;
                return Ok(());
            }
            Decoded::Bad(e) => return self.bad_line(e).map_err(ReplayError::Trace),
            Decoded::Line(t) => t,
        };
        let (verdict, _) = self.step(&t);
        on_decision(&DecisionLine::new(line_no, t.account.as_ref(), &verdict))
            .map_err(ReplayError::Write)
    }

    /// Lines read so far.
    pub(super) fn lines_read(&self) -> u64 {
        self.counts.lines
    }

    /// Time spent replaying so far.
    pub(super) fn wall_time(&self) -> Duration {
        self.wall
    }

    /// Counts a line read and reports progress every 4,096 lines; its number.
    pub(super) fn count_line(
        &mut self,
        bytes: u64,
        elapsed: Duration,
        progress: &mut impl FnMut(Progress),
    ) -> u64 {
        self.counts.lines += 1;
        let line_no = self.counts.lines;
        if line_no % 4096 == 0 {
            progress(Progress {
                lines: line_no,
                bytes,
                elapsed_secs: elapsed.as_secs_f64(),
            });
        }
        line_no
    }

    /// Reports progress at the end of a replay and adds its time.
    pub(super) fn finish(
        &mut self,
        bytes: u64,
        wall: Duration,
        progress: &mut impl FnMut(Progress),
    ) {
        self.wall = wall;
        progress(Progress {
            lines: self.counts.lines,
            bytes,
            elapsed_secs: self.wall.as_secs_f64(),
        });
    }

    /// Replays simulated records directly (no JSON), timing them like
    /// [`Replayer::replay_reader`].
    pub fn replay_records(&mut self, records: &[Record]) {
        let started = Instant::now();
        for r in records {
            self.counts.lines += 1;
            self.step(&TraceLine::from_record(r));
        }
        self.wall += started.elapsed();
    }

    /// Every account seen, in order of first appearance, as it stands now.
    pub fn accounts(&self) -> Vec<AccountLine> {
        let c = &self.config;
        self.tally
            .accounts()
            .iter()
            .map(|a| {
                let (cluster, score) = self.nodes.score_of(&a.name);
                AccountLine {
                    account: a.name.to_string(),
                    cluster: ClusterId(cluster.id),
                    cluster_size: cluster.size,
                    score,
                    flagged: flagged(c, cluster.size, score),
                    requests: a.requests,
                    refused: a.refused,
                }
            })
            .collect()
    }

    /// The report on everything replayed so far.
    pub fn report(&self) -> Report {
        let c = &self.config;
        let n = &self.counts;
        let wall = self.wall.as_secs_f64();
        let accounts = self.accounts();
        Report {
            lines: n.lines,
            requests: n.requests,
            bad_lines: n.bad_lines,
            blank_lines: n.blank_lines,
            out_of_order: n.out_of_order,
            accounts: accounts.len() as u64,
            trace_secs: self.t0.map_or(0.0, |t0| self.last_ts - t0),
            allowed: n.allowed,
            throttled: n.throttled,
            denied: n.denied,
            // (`shared_indicator` is reported only where an import made it
            // happen, so that reports without intelligence keep their shape.)
            reasons: REASONS
                .iter()
                .zip(n.reasons)
                .filter(|&(r, k)| k > 0 || *r != Reason::SharedIndicator)
                .map(|(r, k)| (r.as_str().to_string(), k))
                .collect(),
            baseline_refused: n.baseline_refused,
            wall_secs: wall,
            requests_per_sec: if wall > 0.0 {
                n.requests as f64 / wall
            } else {
                0.0
            },
            peak_memory_bytes: peak_memory_bytes(),
            settings: Settings {
                account_requests_per_minute: c.account_requests_per_minute,
                share_at: c.share_at,
                deny_at: c.deny_at,
                min_cluster_size: c.min_cluster_size,
                max_tokens: self.options.max_tokens,
            },
            evaluation: self
                .tally
                .labelled()
                .then(|| self.tally.evaluate(&accounts)),
        }
    }
}
