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
//! `benign` or `campaign:<operation>`), the [`Evaluation`]. [`summary`]
//! lays it out for reading (the text report), and [`html`] makes it one
//! self-contained HTML page with charts ([`Timeline`] counts what the
//! chart over trace time needs as the replay goes).
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

mod evaluation;
pub mod html;
mod nodes;
mod pipeline;
mod replayer;
mod report;
pub mod summary;
mod timeline;
mod trace;

pub use pipeline::CHUNK_LINES;
pub use replayer::{AccountLine, DecisionLine, Progress, ReplayError, ReplayOptions, Replayer};
pub use report::{
    peak_memory_bytes, BenignEval, CampaignCluster, CampaignEval, ClusterEval, ClusterId,
    CohortEval, Detection, Evaluation, MixedInEval, OperationEval, Report, Settings,
};
pub use timeline::{Bucket, OperationMarks, Timeline};
pub use trace::{write_trace, TraceError, TraceLine};
