//! Replaying a trace through a [`Guard`]: the trace format, the replay loop,
//! a per-account-only baseline, and the evaluation report.
//!
//! This is what the `ringfence replay` and `ringfence demo` commands run,
//! kept in the library so that tests, benchmarks and the bindings share it.
//!
//! **The trace** is JSON Lines, one request per line (see the README's
//! "Formats"): `ts` (seconds since the epoch) and `account` are required;
//! `fingerprints` (kind → string, or array of strings), `prompt`, `system`,
//! `model`, `input_tokens`, `output_tokens`, `label` and `cohort` are
//! optional, and unknown fields are ignored. [`TraceLine::parse`] borrows
//! every string it can from the line, so parsing allocates little, and a bad
//! line is a [`TraceError`] that names the line, the column and the field.
//!
//! **The replay** ([`Replayer`]) sets the guard's clock from each line's
//! `ts` (relative to the first line's, never going backwards), checks the
//! request with its input tokens plus an estimate of its output reserved
//! against the token quota ([`ReplayOptions::max_tokens`]), and settles
//! allowed requests with their actual `output_tokens`. Beside the guard it
//! runs a per-account-only limiter with the same per-account quota: the
//! baseline the evaluation compares against.
//!
//! **The report** ([`Report`]) holds the totals, the throughput and the
//! process's peak memory and, when the trace has labels (`label`:
//! `benign` or `campaign:<operation>`), the [`Evaluation`].
//!
//! ```
//! use ringfence::guard::GuardConfig;
//! use ringfence_lab::replay::{ReplayOptions, Replayer};
//!
//! let trace = "{\"ts\": 1.0, \"account\": \"a\", \"fingerprints\": {\"ip\": \"198.51.100.7\"}}\n\
//!              {\"ts\": 2.5, \"account\": \"b\", \"prompt\": \"hello\", \"label\": \"benign\"}\n";
//! let mut replayer = Replayer::new(GuardConfig::default(), ReplayOptions::default());
//! let mut decisions = Vec::new();
//! replayer
//!     .replay_reader(trace.as_bytes(), |d| { decisions.push(d.decision); Ok(()) }, |_| {})
//!     .unwrap();
//! assert_eq!(decisions, ["allow", "allow"]);
//! let report = replayer.report();
//! assert_eq!(report.requests, 2);
//! assert!(report.evaluation.is_some()); // a line had a label
//! ```

use crate::sim::Record;
use ringfence::guard::{Decision, Guard, GuardConfig, Reason, Request, Verdict};
use ringfence::limit::{ManualClock, Quota, RateLimiter};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The trace format
// ---------------------------------------------------------------------------

/// One line of a trace: one request. Strings borrow from the line where it
/// has no escapes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TraceLine<'a> {
    /// Seconds since the Unix epoch (finite, non-negative).
    pub ts: f64,
    /// The account.
    pub account: Cow<'a, str>,
    /// `(kind, value)` pairs; a kind given an array of values appears once
    /// per value, in order.
    pub fingerprints: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The user prompt.
    pub prompt: Option<Cow<'a, str>>,
    /// The system prompt.
    pub system: Option<Cow<'a, str>>,
    /// The model asked for.
    pub model: Option<Cow<'a, str>>,
    /// Prompt tokens; when absent, estimated as a quarter of the prompt's
    /// and system prompt's bytes.
    pub input_tokens: Option<u32>,
    /// Tokens the model answered with; when absent, the reservation stands.
    pub output_tokens: Option<u32>,
    /// `benign` or `campaign:<operation>`: for evaluation only.
    pub label: Option<Cow<'a, str>>,
    /// The account's cohort: for evaluation only.
    pub cohort: Option<Cow<'a, str>>,
}

/// A trace line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// The line's number, from 1.
    pub line: u64,
    /// The column (in bytes, from 1) where it went wrong; 0 if unknown.
    pub column: usize,
    /// What is wrong, naming the field where there is one.
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column > 0 {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for TraceError {}

impl<'a> TraceLine<'a> {
    /// Parses one line of a trace (`line` is its number, for errors).
    ///
    /// ```
    /// use ringfence_lab::replay::TraceLine;
    ///
    /// let t = TraceLine::parse(r#"{"ts": 5, "account": "a", "fingerprints": {"ip": ["192.0.2.1", "192.0.2.2"]}}"#, 1).unwrap();
    /// assert_eq!(t.fingerprints.len(), 2);
    /// let e = TraceLine::parse(r#"{"ts": "soon", "account": "a"}"#, 7).unwrap_err();
    /// assert_eq!(e.to_string(), "line 7, column 13: invalid type: string \"soon\", expected `ts` as a number of seconds since the epoch");
    /// ```
    pub fn parse(text: &'a str, line: u64) -> Result<TraceLine<'a>, TraceError> {
        serde_json::from_str::<TraceLine<'a>>(text).map_err(|e| {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full);
            let message = if (e.is_syntax() || e.is_eof()) && message != "number out of range" {
                format!("not valid JSON ({message})")
            } else {
                message.to_string()
            };
            // A trace line is one line, so serde_json's column is the line's.
            let column = if e.line() == 1 { e.column() } else { 0 };
            TraceError {
                line,
                column,
                message,
            }
        })
    }

    /// The trace line of a simulated record (borrowing from it).
    pub fn from_record(r: &'a Record) -> TraceLine<'a> {
        TraceLine {
            ts: r.ts,
            account: Cow::Borrowed(&r.account),
            fingerprints: r
                .fingerprints
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
            prompt: Some(Cow::Borrowed(&r.prompt)),
            system: r.system.as_deref().map(Cow::Borrowed),
            model: Some(Cow::Borrowed(&r.model)),
            input_tokens: Some(r.input_tokens),
            output_tokens: Some(r.output_tokens),
            label: Some(Cow::Borrowed(&r.label)),
            cohort: Some(Cow::Borrowed(&r.cohort)),
        }
    }
}

/// Writes simulated records as a trace, one JSON object per line.
pub fn write_trace<W: Write>(records: &[Record], mut out: W) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[derive(Clone, Copy)]
enum Field {
    Ts,
    Account,
    Fingerprints,
    Prompt,
    System,
    Model,
    InputTokens,
    OutputTokens,
    Label,
    Cohort,
    Other,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Ts => "ts",
            Field::Account => "account",
            Field::Fingerprints => "fingerprints",
            Field::Prompt => "prompt",
            Field::System => "system",
            Field::Model => "model",
            Field::InputTokens => "input_tokens",
            Field::OutputTokens => "output_tokens",
            Field::Label => "label",
            Field::Cohort => "cohort",
            Field::Other => "",
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "ts" => Field::Ts,
                    "account" => Field::Account,
                    "fingerprints" => Field::Fingerprints,
                    "prompt" => Field::Prompt,
                    "system" => Field::System,
                    "model" => Field::Model,
                    "input_tokens" => Field::InputTokens,
                    "output_tokens" => Field::OutputTokens,
                    "label" => Field::Label,
                    "cohort" => Field::Cohort,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `ts`: a finite, non-negative number.
struct Seconds;

impl<'de> DeserializeSeed<'de> for Seconds {
    type Value = f64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seconds {
    fn check<E: de::Error>(v: f64) -> Result<f64, E> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(E::custom(format_args!(
                "`ts` must be a finite, non-negative number of seconds since the epoch, not {v}"
            )))
        }
    }
}

impl Visitor<'_> for Seconds {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`ts` as a number of seconds since the epoch")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Self::check(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Self::check(v as f64)
    }
}

/// A string field; `null` too when `optional`.
struct Text {
    field: Field,
    optional: bool,
}

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` as a string", self.field.name())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(E::invalid_type(de::Unexpected::Unit, &self))
        }
    }
}

/// A token count: a non-negative integer that fits in 32 bits, or `null`.
struct Tokens(Field);

impl<'de> DeserializeSeed<'de> for Tokens {
    type Value = Option<u32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Tokens {
    type Value = Option<u32>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` as an integer from 0 to {}",
            self.0.name(),
            u32::MAX
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
        Ok(None)
    }
}

type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// `fingerprints`: an object of kind → string or array of strings (or `null`).
struct Fingerprints<'p, 'de>(&'p mut Pairs<'de>);

impl<'de> DeserializeSeed<'de> for Fingerprints<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fingerprints<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`fingerprints` as an object of kind → string or array of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(kind) = map.next_key_seed(Text {
            field: Field::Fingerprints,
            optional: false,
        })? {
            let kind = kind.unwrap_or_default();
            map.next_value_seed(Values {
                kind,
                out: &mut *self.0,
            })?;
        }
        Ok(())
    }
}

/// One kind's value(s).
struct Values<'p, 'de> {
    kind: Cow<'de, str>,
    out: &'p mut Pairs<'de>,
}

impl<'de> DeserializeSeed<'de> for Values<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Values<'_, 'de> {
    fn push(&mut self, v: Cow<'de, str>) {
        self.out.push((self.kind.clone(), v));
    }
}

impl<'de> Visitor<'de> for Values<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fingerprint `{}` as a string or an array of strings",
            self.kind
        )
    }
    fn visit_borrowed_str<E: de::Error>(mut self, v: &'de str) -> Result<(), E> {
        self.push(Cow::Borrowed(v));
        Ok(())
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.push(Cow::Owned(v.to_string()));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let element = Element { kind: &self.kind };
            match seq.next_element_seed(element)? {
                Some(v) => self.push(v),
                None => return Ok(()),
            }
        }
    }
}

/// One element of a fingerprint's array: a string.
struct Element<'k, 'de> {
    kind: &'k Cow<'de, str>,
}

impl<'de> DeserializeSeed<'de> for Element<'_, 'de> {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_, 'de> {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fingerprint `{}`'s values as strings", self.kind)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for TraceLine<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TraceLine<'de>, D::Error> {
        d.deserialize_any(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = TraceLine<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (one request)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TraceLine<'de>, A::Error> {
        let mut t = TraceLine::default();
        let (mut ts, mut account) = (None, None);
        let mut seen = 0u16;
        while let Some(field) = map.next_key::<Field>()? {
            if !matches!(field, Field::Other) {
                let bit = 1u16 << (field as u16);
                if seen & bit != 0 {
                    return Err(de::Error::duplicate_field(field.name()));
                }
                seen |= bit;
            }
            let text = |optional| Text { field, optional };
            match field {
                Field::Ts => ts = Some(map.next_value_seed(Seconds)?),
                Field::Account => account = map.next_value_seed(text(false))?,
                Field::Fingerprints => map.next_value_seed(Fingerprints(&mut t.fingerprints))?,
                Field::Prompt => t.prompt = map.next_value_seed(text(true))?,
                Field::System => t.system = map.next_value_seed(text(true))?,
                Field::Model => t.model = map.next_value_seed(text(true))?,
                Field::InputTokens => t.input_tokens = map.next_value_seed(Tokens(field))?,
                Field::OutputTokens => t.output_tokens = map.next_value_seed(Tokens(field))?,
                Field::Label => t.label = map.next_value_seed(text(true))?,
                Field::Cohort => t.cohort = map.next_value_seed(text(true))?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        t.ts = ts.ok_or_else(|| de::Error::missing_field("ts"))?;
        t.account = account.ok_or_else(|| de::Error::missing_field("account"))?;
        if t.account.is_empty() {
            return Err(de::Error::custom("`account` must not be empty"));
        }
        Ok(t)
    }
}

// ---------------------------------------------------------------------------
// Decisions and accounts: the replay's per-line and per-account output
// ---------------------------------------------------------------------------

/// A cluster id, written as 16 hex digits (as `explain` prints it): JSON
/// numbers above 2^53 do not survive every reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u64);

impl Serialize for ClusterId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:016x}", self.0))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

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

const NONE: u16 = u16::MAX;

#[derive(Default)]
struct OpStats {
    requests: u64,
    served: u64,
    baseline_served: u64,
    first_ts: f64,
    first_refused: Option<(u64, f64)>,
    first_flagged: Option<(u64, f64)>,
}

struct AccountStats {
    name: Box<str>,
    cohort: u16,
    op: u16,
    labelled: bool,
    requests: u64,
    refused: u64,
    benign_requests: u64,
    benign_refused: u64,
    benign_refused_account: u64,
    flagged_ever: bool,
}

/// Replays trace lines through a [`Guard`] and keeps what the report needs
/// (see the module docs).
pub struct Replayer {
    guard: Guard,
    clock: Arc<ManualClock>,
    baseline: RateLimiter,
    baseline_clock: Arc<ManualClock>,
    options: ReplayOptions,
    t0: Option<f64>,
    last_ts: f64,
    now_ns: u64,
    out_of_order: u64,
    lines: u64,
    blank_lines: u64,
    bad_lines: u64,
    first_bad: Vec<TraceError>,
    requests: u64,
    allowed: u64,
    throttled: u64,
    denied: u64,
    baseline_refused: u64,
    reasons: [u64; 4],
    labelled: bool,
    index: HashMap<Box<str>, u32, ahash::RandomState>,
    accounts: Vec<AccountStats>,
    cohorts: Vec<String>,
    ops: Vec<String>,
    op_stats: Vec<OpStats>,
    wall: Duration,
}

fn reason_index(r: Reason) -> usize {
    match r {
        Reason::AccountLimit => 0,
        Reason::ClusterLimit => 1,
        Reason::FingerprintLimit => 2,
        Reason::SuspectedDistillation => 3,
    }
}

const REASONS: [&str; 4] = [
    "account_limit",
    "cluster_limit",
    "fingerprint_limit",
    "suspected_distillation",
];

fn intern(names: &mut Vec<String>, name: &str) -> u16 {
    match names.iter().position(|n| n == name) {
        Some(i) => i as u16,
        None if names.len() < usize::from(NONE) - 1 => {
            names.push(name.to_string());
            (names.len() - 1) as u16
        }
        // More distinct names than anyone would label with: lump the rest.
        None => NONE - 1,
    }
}

impl Replayer {
    /// A replayer over a fresh guard with `config`.
    pub fn new(config: GuardConfig, options: ReplayOptions) -> Replayer {
        let baseline_clock = Arc::new(ManualClock::new());
        let baseline = RateLimiter::builder(Quota::per_minute(config.account_requests_per_minute))
            .capacity(config.limiter_capacity)
            .clock(baseline_clock.clone())
            .build();
        let (guard, clock) = Guard::for_replay(config);
        Replayer {
            guard,
            clock,
            baseline,
            baseline_clock,
            options,
            t0: None,
            last_ts: 0.0,
            now_ns: 0,
            out_of_order: 0,
            lines: 0,
            blank_lines: 0,
            bad_lines: 0,
            first_bad: Vec::new(),
            requests: 0,
            allowed: 0,
            throttled: 0,
            denied: 0,
            baseline_refused: 0,
            reasons: [0; 4],
            labelled: false,
            index: HashMap::default(),
            accounts: Vec::new(),
            cohorts: Vec::new(),
            ops: Vec::new(),
            op_stats: Vec::new(),
            wall: Duration::ZERO,
        }
    }

    /// The guard (to snapshot or explain after the replay).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The options.
    pub fn options(&self) -> &ReplayOptions {
        &self.options
    }

    /// Malformed lines skipped so far, and the first few of their errors.
    pub fn bad_lines(&self) -> (u64, &[TraceError]) {
        (self.bad_lines, &self.first_bad)
    }

    /// Replays one request; returns the guard's verdict and whether the
    /// per-account-only baseline would have served it.
    pub fn step(&mut self, t: &TraceLine<'_>) -> (Verdict, bool) {
        let t0 = *self.t0.get_or_insert(t.ts);
        if t.ts < self.last_ts {
            self.out_of_order += 1;
        }
        self.last_ts = self.last_ts.max(t.ts);
        // Relative to the first line, and never backwards (a line earlier
        // than the one before it is replayed at the latest time seen).
        let ns = ((t.ts - t0) * 1e9).max(0.0) as u64;
        self.now_ns = self.now_ns.max(ns);
        self.clock.set_nanos(self.now_ns);
        self.baseline_clock.set_nanos(self.now_ns);

        let fingerprints: Vec<(&str, &str)> = t
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let prompt = t.prompt.as_deref();
        let system = t.system.as_deref();
        let input_tokens = t.input_tokens.unwrap_or_else(|| {
            let bytes = prompt.map_or(0, str::len) + system.map_or(0, str::len);
            u32::try_from(bytes.div_ceil(4)).unwrap_or(u32::MAX)
        });
        let verdict = self.guard.check(&Request {
            account: &t.account,
            fingerprints: &fingerprints,
            prompt,
            system,
            model: t.model.as_deref(),
            input_tokens,
            max_tokens: self.options.max_tokens,
        });
        let allowed = verdict.allowed();
        if allowed {
            if let Some(out) = t.output_tokens {
                self.guard.settle(&verdict, out);
            }
        }
        let baseline = self.baseline.check(t.account.as_ref(), 1).is_allowed();
        self.record(t, &verdict, baseline);
        (verdict, baseline)
    }

    fn record(&mut self, t: &TraceLine<'_>, verdict: &Verdict, baseline: bool) {
        self.requests += 1;
        let allowed = verdict.allowed();
        match verdict.decision {
            Decision::Allow => self.allowed += 1,
            Decision::Throttle { .. } => self.throttled += 1,
            Decision::Deny => self.denied += 1,
        }
        self.baseline_refused += u64::from(!baseline);
        for r in &verdict.reasons {
            self.reasons[reason_index(*r)] += 1;
        }
        let policy_refused = !allowed && verdict.reasons.iter().any(|r| *r != Reason::AccountLimit);
        let c = self.guard.config();
        let flagged = verdict.cluster.size >= c.min_cluster_size && verdict.score >= c.share_at;

        let i = match self.index.get(t.account.as_ref()) {
            Some(&i) => i as usize,
            None => {
                let i = self.accounts.len();
                self.index.insert(t.account.as_ref().into(), i as u32);
                self.accounts.push(AccountStats {
                    name: t.account.as_ref().into(),
                    cohort: NONE,
                    op: NONE,
                    labelled: false,
                    requests: 0,
                    refused: 0,
                    benign_requests: 0,
                    benign_refused: 0,
                    benign_refused_account: 0,
                    flagged_ever: false,
                });
                i
            }
        };
        let a = &mut self.accounts[i];
        a.requests += 1;
        a.refused += u64::from(!allowed);
        a.flagged_ever |= flagged;
        if a.cohort == NONE {
            if let Some(c) = t.cohort.as_deref() {
                a.cohort = intern(&mut self.cohorts, c);
            }
        }
        let Some(label) = t.label.as_deref() else {
            return;
        };
        self.labelled = true;
        a.labelled = true;
        if let Some(op) = label.strip_prefix("campaign:") {
            let op = intern(&mut self.ops, op);
            if a.op == NONE {
                a.op = op;
            }
            let op = usize::from(op);
            if self.op_stats.len() <= op {
                self.op_stats.resize_with(op + 1, OpStats::default);
            }
            let s = &mut self.op_stats[op];
            if s.requests == 0 {
                s.first_ts = t.ts;
            }
            if policy_refused && s.first_refused.is_none() {
                s.first_refused = Some((s.requests, t.ts - s.first_ts));
            }
            if flagged && s.first_flagged.is_none() {
                s.first_flagged = Some((s.requests, t.ts - s.first_ts));
            }
            s.requests += 1;
            s.served += u64::from(allowed);
            s.baseline_served += u64::from(baseline);
        } else {
            a.benign_requests += 1;
            a.benign_refused += u64::from(policy_refused);
            a.benign_refused_account += u64::from(!allowed && !policy_refused);
        }
    }

    /// Counts a malformed line, or returns it as the error when `skip_bad`
    /// is off.
    pub fn bad_line(&mut self, e: TraceError) -> Result<(), TraceError> {
        if !self.options.skip_bad {
            return Err(e);
        }
        self.bad_lines += 1;
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
            self.lines += 1;
            let line_no = self.lines;
            if line_no % 4096 == 0 {
                progress(Progress {
                    lines: line_no,
                    bytes,
                    elapsed_secs: (wall_before + started.elapsed()).as_secs_f64(),
                });
            }
            let text = match std::str::from_utf8(&buf) {
                Ok(s) => s,
                Err(e) => {
                    let err = TraceError {
                        line: line_no,
                        column: e.valid_up_to() + 1,
                        message: "not valid UTF-8".to_string(),
                    };
                    match self.bad_line(err) {
                        Ok(()) => continue,
                        Err(e) => break Err(ReplayError::Trace(e)),
                    }
                }
            };
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                self.blank_lines += 1;
                continue;
            }
            let t = match TraceLine::parse(text, line_no) {
                Ok(t) => t,
                Err(e) => match self.bad_line(e) {
                    Ok(()) => continue,
                    Err(e) => break Err(ReplayError::Trace(e)),
                },
            };
            let (verdict, _) = self.step(&t);
            if let Err(e) = on_decision(&DecisionLine::new(line_no, t.account.as_ref(), &verdict)) {
                break Err(ReplayError::Write(e));
            }
        };
        self.wall = wall_before + started.elapsed();
        progress(Progress {
            lines: self.lines,
            bytes,
            elapsed_secs: self.wall.as_secs_f64(),
        });
        result
    }

    /// Replays simulated records directly (no JSON), timing them like
    /// [`Replayer::replay_reader`].
    pub fn replay_records(&mut self, records: &[Record]) {
        let started = Instant::now();
        for r in records {
            self.lines += 1;
            self.step(&TraceLine::from_record(r));
        }
        self.wall += started.elapsed();
    }

    /// Every account seen, in order of first appearance, as it stands now.
    pub fn accounts(&self) -> Vec<AccountLine> {
        let c = self.guard.config();
        self.accounts
            .iter()
            .map(|a| {
                let (cluster, score) = self.guard.score_of(&a.name);
                AccountLine {
                    account: a.name.to_string(),
                    cluster: ClusterId(cluster.id),
                    cluster_size: cluster.size,
                    score,
                    flagged: cluster.size >= c.min_cluster_size && score >= c.share_at,
                    requests: a.requests,
                    refused: a.refused,
                }
            })
            .collect()
    }

    /// The report on everything replayed so far.
    pub fn report(&self) -> Report {
        let c = self.guard.config();
        let wall = self.wall.as_secs_f64();
        let accounts = self.accounts();
        Report {
            lines: self.lines,
            requests: self.requests,
            bad_lines: self.bad_lines,
            blank_lines: self.blank_lines,
            out_of_order: self.out_of_order,
            accounts: self.accounts.len() as u64,
            trace_secs: self.t0.map_or(0.0, |t0| self.last_ts - t0),
            allowed: self.allowed,
            throttled: self.throttled,
            denied: self.denied,
            reasons: REASONS
                .iter()
                .zip(self.reasons)
                .map(|(name, n)| (name.to_string(), n))
                .collect(),
            baseline_refused: self.baseline_refused,
            wall_secs: wall,
            requests_per_sec: if wall > 0.0 {
                self.requests as f64 / wall
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
            evaluation: self.labelled.then(|| self.evaluate(&accounts)),
        }
    }

    fn evaluate(&self, lines: &[AccountLine]) -> Evaluation {
        let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let n_ops = self.ops.len();
        let mut per_op: Vec<OperationEval> = (0..n_ops)
            .map(|i| {
                let s = self.op_stats.get(i);
                let s0 = OpStats::default();
                let s = s.unwrap_or(&s0);
                let point = |p: Option<(u64, f64)>| {
                    p.map(|(before, secs)| Detection {
                        requests_before: before,
                        share_of_requests: share(before, s.requests),
                        secs_after_first_request: secs,
                    })
                };
                OperationEval {
                    accounts: 0,
                    accounts_flagged: 0,
                    requests: s.requests,
                    served: s.served,
                    served_share: share(s.served, s.requests),
                    baseline_served: s.baseline_served,
                    baseline_served_share: share(s.baseline_served, s.requests),
                    first_refused: point(s.first_refused),
                    first_flagged: point(s.first_flagged),
                }
            })
            .collect();
        let mut cohorts: BTreeMap<String, CohortEval> = BTreeMap::new();
        let mut benign = BenignEval::default();
        let mut mixed = MixedInEval::default();
        let (mut campaign_accounts, mut campaign_flagged) = (0u64, 0u64);
        // Per cluster: accounts of each operation, benign accounts, and one
        // campaign member to explain it by.
        struct Tally {
            size: u32,
            score: f64,
            flagged: bool,
            ops: Vec<u64>,
            benign: u64,
            sample: Option<usize>,
        }
        let mut clusters: HashMap<ClusterId, Tally, ahash::RandomState> = HashMap::default();
        for (i, (a, line)) in self.accounts.iter().zip(lines).enumerate() {
            if !a.labelled {
                continue;
            }
            let t = clusters.entry(line.cluster).or_insert_with(|| Tally {
                size: line.cluster_size,
                score: line.score,
                flagged: line.flagged,
                ops: vec![0; n_ops],
                benign: 0,
                sample: None,
            });
            if a.op != NONE {
                let op = usize::from(a.op);
                campaign_accounts += 1;
                campaign_flagged += u64::from(line.flagged);
                per_op[op].accounts += 1;
                per_op[op].accounts_flagged += u64::from(line.flagged);
                mixed.requests += a.benign_requests;
                mixed.refused += a.benign_refused + a.benign_refused_account;
                t.ops[op] += 1;
                t.sample.get_or_insert(i);
            } else {
                t.benign += 1;
                benign.accounts += 1;
                benign.accounts_flagged += u64::from(line.flagged);
                benign.accounts_flagged_ever += u64::from(a.flagged_ever);
                benign.requests += a.benign_requests;
                benign.refused += a.benign_refused;
                benign.refused_account_limit += a.benign_refused_account;
                let name = if a.cohort == NONE {
                    "(none)"
                } else {
                    self.cohorts
                        .get(usize::from(a.cohort))
                        .map_or("(other)", String::as_str)
                };
                let e = cohorts.entry(name.to_string()).or_default();
                e.accounts += 1;
                e.flagged += u64::from(line.flagged);
                e.flagged_ever += u64::from(a.flagged_ever);
                e.requests += a.benign_requests;
                e.refused += a.benign_refused;
            }
        }
        for e in cohorts.values_mut() {
            e.flagged_share = share(e.flagged, e.accounts);
            e.refused_share = share(e.refused, e.requests);
        }
        benign.refused_share = share(benign.refused, benign.requests);
        benign.accounts_flagged_share = share(benign.accounts_flagged, benign.accounts);
        mixed.refused_share = share(mixed.refused, mixed.requests);

        // Pairwise precision and recall, over pairs with a campaign account.
        let pairs = |n: u64| n * n.saturating_sub(1) / 2;
        let mut op_totals = vec![0u64; n_ops];
        let (mut same_cluster, mut correct) = (0u64, 0u64);
        let mut found = Vec::new();
        for (id, t) in &clusters {
            let campaign: u64 = t.ops.iter().sum();
            if campaign == 0 {
                continue;
            }
            same_cluster += pairs(campaign + t.benign) - pairs(t.benign);
            for (op, n) in t.ops.iter().enumerate() {
                correct += pairs(*n);
                op_totals[op] += n;
            }
            let (major, count) = t
                .ops
                .iter()
                .enumerate()
                .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
                .map_or((0, 0), |(i, n)| (i, *n));
            found.push(CampaignCluster {
                cluster: *id,
                size: t.size,
                campaign_accounts: campaign,
                benign_accounts: t.benign,
                operation: self.ops.get(major).cloned().unwrap_or_default(),
                operation_accounts: count,
                score: t.score,
                flagged: t.flagged,
                sample_account: t
                    .sample
                    .and_then(|i| self.accounts.get(i))
                    .map(|a| a.name.to_string())
                    .unwrap_or_default(),
            });
        }
        let true_pairs: u64 = op_totals.iter().map(|n| pairs(*n)).sum();
        found.sort_by(|a, b| {
            b.campaign_accounts
                .cmp(&a.campaign_accounts)
                .then(b.size.cmp(&a.size))
                .then(a.cluster.cmp(&b.cluster))
        });
        let campaign_clusters = found.len() as u64;
        found.truncate(20);

        let requests: u64 = per_op.iter().map(|o| o.requests).sum();
        let served: u64 = per_op.iter().map(|o| o.served).sum();
        let baseline_served: u64 = per_op.iter().map(|o| o.baseline_served).sum();
        Evaluation {
            campaign: CampaignEval {
                requests,
                served,
                served_share: share(served, requests),
                baseline_served,
                baseline_served_share: share(baseline_served, requests),
                accounts: campaign_accounts,
                accounts_flagged: campaign_flagged,
                accounts_flagged_share: share(campaign_flagged, campaign_accounts),
                operations: self.ops.iter().cloned().zip(per_op).collect(),
            },
            benign,
            benign_cohorts: cohorts,
            campaign_genuine_traffic: mixed,
            clusters: ClusterEval {
                pairwise_precision: if same_cluster == 0 {
                    None
                } else {
                    Some(share(correct, same_cluster))
                },
                pairwise_recall: if true_pairs == 0 {
                    None
                } else {
                    Some(share(correct, true_pairs))
                },
                same_operation_pairs: true_pairs,
                linked_pairs: same_cluster,
                correct_pairs: correct,
                campaign_clusters,
                largest: found,
            },
        }
    }
}

/// The process's peak resident memory (`VmHWM` on Linux), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// What a replay did, and how well, as the `--report` file holds it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Lines read (blank and malformed ones included).
    pub lines: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Malformed lines skipped (`--skip-bad`).
    pub bad_lines: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Lines whose `ts` is earlier than an earlier line's (replayed at the
    /// latest time seen).
    pub out_of_order: u64,
    /// Distinct accounts.
    pub accounts: u64,
    /// Seconds from the first line's `ts` to the latest.
    pub trace_secs: f64,
    /// Requests allowed.
    pub allowed: u64,
    /// Requests throttled.
    pub throttled: u64,
    /// Requests denied.
    pub denied: u64,
    /// Verdicts giving each reason (a verdict may give several).
    pub reasons: BTreeMap<String, u64>,
    /// Requests the per-account-only baseline would have refused.
    pub baseline_refused: u64,
    /// Seconds spent replaying (reading and parsing included).
    pub wall_secs: f64,
    /// Requests replayed per second of `wall_secs`.
    pub requests_per_sec: f64,
    /// The process's peak resident memory in bytes (Linux `VmHWM`); `null`
    /// where unknown.
    pub peak_memory_bytes: Option<u64>,
    /// The settings that decide what "flagged" and "refused" mean.
    pub settings: Settings,
    /// The evaluation against the trace's labels; `null` without labels.
    pub evaluation: Option<Evaluation>,
}

/// The settings a report was made with.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Settings {
    /// The per-account quota (also the baseline's).
    pub account_requests_per_minute: u64,
    /// Clusters scoring this much (and at least `min_cluster_size`) are flagged.
    pub share_at: f64,
    /// Clusters scoring this much are denied.
    pub deny_at: f64,
    /// Smallest cluster that cluster policy applies to.
    pub min_cluster_size: u32,
    /// Output tokens reserved per request before its verdict.
    pub max_tokens: u32,
}

/// The evaluation against the labels.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    /// Requests labelled `campaign:<operation>`, and their accounts.
    pub campaign: CampaignEval,
    /// Accounts with no campaign-labelled request, and their requests.
    pub benign: BenignEval,
    /// The same, per cohort (`cohort` field).
    pub benign_cohorts: BTreeMap<String, CohortEval>,
    /// Requests labelled `benign` from campaign accounts (the genuine
    /// customers a reseller mixes in).
    pub campaign_genuine_traffic: MixedInEval,
    /// How well the clusters match the operations.
    pub clusters: ClusterEval,
}

/// The campaign's requests and accounts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignEval {
    /// Campaign requests.
    pub requests: u64,
    /// Of which served.
    pub served: u64,
    /// `served / requests`.
    pub served_share: f64,
    /// Of which the per-account-only baseline would have served.
    pub baseline_served: u64,
    /// `baseline_served / requests`.
    pub baseline_served_share: f64,
    /// Campaign accounts (with at least one campaign-labelled request).
    pub accounts: u64,
    /// Of which flagged at the end of the replay.
    pub accounts_flagged: u64,
    /// `accounts_flagged / accounts`.
    pub accounts_flagged_share: f64,
    /// The same per operation, by name.
    pub operations: BTreeMap<String, OperationEval>,
}

/// One operation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OperationEval {
    /// Its accounts.
    pub accounts: u64,
    /// Of which flagged at the end.
    pub accounts_flagged: u64,
    /// Its requests.
    pub requests: u64,
    /// Of which served.
    pub served: u64,
    /// `served / requests`.
    pub served_share: f64,
    /// Of which the baseline would have served.
    pub baseline_served: u64,
    /// `baseline_served / requests`.
    pub baseline_served_share: f64,
    /// Its first request refused for a reason other than `account_limit`;
    /// `null` if none was.
    pub first_refused: Option<Detection>,
    /// Its first request whose verdict showed a flagged cluster; `null` if none.
    pub first_flagged: Option<Detection>,
}

/// How far into an operation's traffic something first happened.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Detection {
    /// The operation's requests before it.
    pub requests_before: u64,
    /// `requests_before` as a share of the operation's requests.
    pub share_of_requests: f64,
    /// Seconds after the operation's first request.
    pub secs_after_first_request: f64,
}

/// Benign accounts (those with no campaign-labelled request).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct BenignEval {
    /// Benign accounts.
    pub accounts: u64,
    /// Of which flagged at the end of the replay.
    pub accounts_flagged: u64,
    /// `accounts_flagged / accounts`.
    pub accounts_flagged_share: f64,
    /// Of which flagged by some verdict during the replay.
    pub accounts_flagged_ever: u64,
    /// Their requests.
    pub requests: u64,
    /// Of which refused for a reason other than `account_limit`.
    pub refused: u64,
    /// `refused / requests`.
    pub refused_share: f64,
    /// Of which refused by their own account's limit only.
    pub refused_account_limit: u64,
}

/// One benign cohort.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct CohortEval {
    /// Accounts.
    pub accounts: u64,
    /// Of which flagged at the end.
    pub flagged: u64,
    /// `flagged / accounts`.
    pub flagged_share: f64,
    /// Of which flagged by some verdict during the replay.
    pub flagged_ever: u64,
    /// Requests.
    pub requests: u64,
    /// Of which refused for a reason other than `account_limit`.
    pub refused: u64,
    /// `refused / requests`.
    pub refused_share: f64,
}

/// Genuine (benign-labelled) requests of campaign accounts.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct MixedInEval {
    /// Requests.
    pub requests: u64,
    /// Of which refused, for any reason.
    pub refused: u64,
    /// `refused / requests`.
    pub refused_share: f64,
}

/// The clusters against the operations, over pairs of accounts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ClusterEval {
    /// Of the linked pairs, the share in the same operation; `null` when
    /// no pair is linked.
    pub pairwise_precision: Option<f64>,
    /// Of the same-operation pairs, the share linked; `null` when no
    /// operation has two accounts.
    pub pairwise_recall: Option<f64>,
    /// Pairs of campaign accounts in the same operation.
    pub same_operation_pairs: u64,
    /// Pairs of accounts in one cluster, at least one of them a campaign account.
    pub linked_pairs: u64,
    /// Pairs both linked and in the same operation.
    pub correct_pairs: u64,
    /// Clusters holding at least one campaign account.
    pub campaign_clusters: u64,
    /// The largest of them (by campaign accounts), at most 20.
    pub largest: Vec<CampaignCluster>,
}

/// A cluster holding campaign accounts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignCluster {
    /// Its id.
    pub cluster: ClusterId,
    /// Its size, as the guard counts it.
    pub size: u32,
    /// Campaign accounts in it.
    pub campaign_accounts: u64,
    /// Benign accounts in it.
    pub benign_accounts: u64,
    /// The operation most of its campaign accounts belong to.
    pub operation: String,
    /// How many of them do.
    pub operation_accounts: u64,
    /// Its score at the end.
    pub score: f64,
    /// Whether it is flagged.
    pub flagged: bool,
    /// A campaign account in it, to `explain`.
    pub sample_account: String,
}
