//! The trace format: JSON Lines, one request per line. [`TraceLine::parse`]
//! reads a line borrowing every string it can; [`write_trace`] writes
//! simulated records as a trace.

use crate::sim::Record;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

mod de;

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
    /// The same line owning its strings (to hand it to another thread).
    pub fn into_owned(self) -> TraceLine<'static> {
        let own = |c: Cow<'a, str>| Cow::Owned(c.into_owned());
        TraceLine {
            ts: self.ts,
            account: own(self.account),
            fingerprints: self
                .fingerprints
                .into_iter()
                .map(|(k, v)| (own(k), own(v)))
                .collect(),
            prompt: self.prompt.map(own),
            system: self.system.map(own),
            model: self.model.map(own),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            label: self.label.map(own),
            cohort: self.cohort.map(own),
        }
    }

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
