//! `Guard`, `Verdict`, `Verdicts` and `Explanation`.

use crate::batch::{Batch, Columns};
use crate::config::{config_value, guard_config, toml_value};
use crate::convert::{bytes_arg, float, opt_model, opt_text, text, uint32, Fingerprints};
use crate::errors::{catch, input_error, request_error, settle_error, snapshot_error, type_error};
use crate::explanation::PyExplanation;
use crate::verdict::{PyVerdict, PyVerdicts, Settled};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use ringfence::guard::{Guard, Request};
use ringfence::limit::ManualClock;
use ringfence_fleet::Node;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The latest time a manual clock may be set to, in seconds (400 days).
pub const MAX_CLOCK_SECONDS: f64 = 400.0 * 86_400.0;

/// Seconds for a manual clock: finite, non-negative, and `base + s` within
/// [`MAX_CLOCK_SECONDS`].
fn clock_seconds(obj: &Bound<'_, PyAny>, what: &str, base: f64) -> PyResult<f64> {
    let s = float(obj, what)?;
    if !(s.is_finite() && s >= 0.0 && base + s <= MAX_CLOCK_SECONDS) {
        return Err(input_error(format!(
            "{what} must be a finite number of seconds from 0 with the clock ending at most {MAX_CLOCK_SECONDS} (400 days), not {s}"
        )));
    }
    Ok(s)
}

/// The most threads `check_many` may use.
const MAX_THREADS: u64 = 256;

/// A guard: links accounts, scores clusters and applies every limit at once.
///
/// `Guard(config=None, *, accounts=None, manual_clock=False)`
///
/// - `config`: a dict of `GuardConfig` keys (every key defaulted, see the
///   README's "The Guard"), TOML text, or a path (`os.PathLike`) of a TOML
///   file; `None` for the defaults. An unknown or mistyped key raises
///   `ConfigError` naming it.
/// - `accounts`: size every table for this many tracked accounts (about
///   240 bytes each, allocated now; default 250,000), except the sizes the
///   config sets itself.
/// - `manual_clock`: run on a clock set by `set_time`/`advance` (replays,
///   tests) instead of the system clock.
///
/// One guard may be shared by any number of threads; its calls release the
/// GIL while they work.
#[pyclass(frozen, module = "ringfence", name = "Guard")]
pub struct PyGuard {
    /// A lone guard, or a fleet node when the configuration has a
    /// `[fleet]` table.
    node: Node,
    clock: Option<Arc<ManualClock>>,
}

/// Input tokens when none are given: the core's estimate
/// (`ringfence::guard::estimate_tokens`) of the prompt's and system
/// prompt's UTF-8 bytes together.
pub fn default_tokens(prompt: Option<&str>, system: Option<&str>) -> u32 {
    ringfence::guard::estimate_tokens(prompt.map_or(0, str::len) + system.map_or(0, str::len))
}

/// `estimate_tokens(nbytes)`: the input tokens the guard assumes for
/// `nbytes` bytes of request text (prompt, system prompt and messages
/// together) when no tokenizer count is given: a quarter, rounded up, at
/// most 2**32 - 1. The one estimate Rust, C and Python share.
#[pyfunction]
#[pyo3(name = "estimate_tokens")]
pub fn py_estimate_tokens(nbytes: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = crate::convert::uint64(nbytes, "nbytes")?;
    Ok(ringfence::guard::estimate_tokens(
        usize::try_from(n).unwrap_or(usize::MAX),
    ))
}

impl PyGuard {
    fn build(
        py: Python<'_>,
        value: serde_json::Value,
        accounts: Option<&Bound<'_, PyAny>>,
        manual_clock: bool,
    ) -> PyResult<PyGuard> {
        let config = guard_config(&value, accounts)?;
        if manual_clock && !config.fleet.is_empty() {
            return Err(crate::errors::config_error(
                "[fleet]: a fleet node runs on the system clock; manual_clock=True is for a lone guard (replays and tests)".to_string(),
            ));
        }
        let built = py.detach(|| {
            catch(|| {
                if manual_clock {
                    Guard::try_for_replay(config)
                        .map(|(g, c)| (Node::Local(g), Some(c)))
                        .map_err(|e| e.to_string())
                } else {
                    Node::from_config(config).map(|n| (n, None))
                }
            })
        })?;
        let (node, clock) = built.map_err(crate::errors::config_error)?;
        Ok(PyGuard { node, clock })
    }

    fn guard(&self) -> &Guard {
        self.node.guard()
    }

    fn manual(&self) -> PyResult<&ManualClock> {
        self.clock.as_deref().ok_or_else(|| {
            input_error("this guard runs on the system clock; build it with manual_clock=True to set its time")
        })
    }
}

#[pymethods]
impl PyGuard {
    #[new]
    #[pyo3(signature = (config=None, *, accounts=None, manual_clock=false))]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyAny>>,
        accounts: Option<&Bound<'_, PyAny>>,
        manual_clock: bool,
    ) -> PyResult<PyGuard> {
        let value = config_value(py, config)?;
        PyGuard::build(py, value, accounts, manual_clock)
    }

    /// A guard from TOML text (see `Guard`); a syntax error names the line.
    #[staticmethod]
    #[pyo3(signature = (text, *, accounts=None, manual_clock=false))]
    fn from_toml(
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        accounts: Option<&Bound<'_, PyAny>>,
        manual_clock: bool,
    ) -> PyResult<PyGuard> {
        let text = crate::convert::text(text, "text")?;
        PyGuard::build(py, toml_value(text)?, accounts, manual_clock)
    }

    /// A guard from a TOML file (see `Guard`). A missing file raises
    /// `FileNotFoundError`; a bad one `ConfigError`.
    #[staticmethod]
    #[pyo3(signature = (path, *, accounts=None, manual_clock=false))]
    fn from_file(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        accounts: Option<&Bound<'_, PyAny>>,
        manual_clock: bool,
    ) -> PyResult<PyGuard> {
        let text = crate::config::read_text_file(py, path)?;
        PyGuard::build(py, toml_value(&text)?, accounts, manual_clock)
    }

    /// Decides one request and returns its `Verdict`.
    ///
    /// - `account`: the account id (a non-empty str of at most
    ///   `MAX_ACCOUNT_BYTES` bytes).
    /// - `fingerprints`: kind to value (`{"ip": "203.0.113.7", "payment":
    ///   "card-9f2c"}`; a list of values for several of one kind), or
    ///   `(kind, value)` pairs; at most `MAX_FINGERPRINTS` values, kinds
    ///   non-empty, kinds and values at most `MAX_FINGERPRINT_BYTES` bytes.
    /// - `prompt`, `system`: the user and system prompts (any length).
    /// - `model`: the model asked for.
    /// - `tokens`: the request's input tokens (default: `estimate_tokens` of
    ///   the prompt's and system prompt's UTF-8 bytes).
    /// - `max_tokens`: the most output tokens it may produce (default 0);
    ///   with `tokens`, reserved against the token quota until `settle`.
    ///
    /// A refused request consumes nothing. Bad arguments raise `InputError`
    /// (`InputTypeError` for a wrong type) naming the argument; a request
    /// that breaks the request contract (the same rules and messages in
    /// Rust, C and Python) raises `InputError` with the field at fault in
    /// its `field` attribute (`"account"`, `"fingerprints"` or
    /// `"fingerprints[i]"`).
    #[pyo3(signature = (account, fingerprints=None, prompt=None, system=None, model=None, tokens=None, max_tokens=None))]
    fn check(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        fingerprints: Option<&Bound<'_, PyAny>>,
        prompt: Option<&Bound<'_, PyAny>>,
        system: Option<&Bound<'_, PyAny>>,
        model: Option<&Bound<'_, PyAny>>,
        tokens: Option<&Bound<'_, PyAny>>,
        max_tokens: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyVerdict> {
        let account = text(account, "account")?;
        let fps = Fingerprints::read(fingerprints)?;
        let fps = fps.texts()?;
        let prompt = opt_text(prompt, "prompt")?;
        let system = opt_text(system, "system")?;
        let model = opt_model(model, "model")?;
        let input_tokens = match tokens.filter(|t| !t.is_none()) {
            Some(t) => uint32(t, "tokens")?,
            None => default_tokens(prompt, system),
        };
        let max_tokens = match max_tokens.filter(|t| !t.is_none()) {
            Some(t) => uint32(t, "max_tokens")?,
            None => 0,
        };
        let request = Request {
            account,
            fingerprints: &fps,
            prompt,
            system,
            model,
            input_tokens,
            max_tokens,
        };
        let node = &self.node;
        let verdict = py
            .detach(|| catch(|| node.try_check(&request)))?
            .map_err(|e| request_error(&e, None))?;
        Ok(PyVerdict::new(
            verdict,
            Settled::Own(AtomicBool::new(false)),
        ))
    }

    /// Decides a batch of requests with the GIL released; returns `Verdicts`.
    ///
    /// Either `requests`, a list of dicts with `check`'s argument names as
    /// keys (`account` required), or columns of one entry per request:
    /// `accounts` (required), `fingerprints` (a list of one `check`-style
    /// fingerprints argument per request, or a dict of kind to a list of
    /// values, `None` for none), `prompts`, `systems`, `models`, `tokens`
    /// and `max_tokens` (each also may be one int for all). The whole
    /// batch is checked (against the request contract too) and copied
    /// first (a bad entry raises, naming its position, and nothing is
    /// decided), then decided in order, on
    /// `threads` threads (default 1; each takes a contiguous share, so
    /// requests of different shares race as concurrent callers would).
    #[pyo3(signature = (requests=None, *, accounts=None, fingerprints=None, prompts=None, systems=None, models=None, tokens=None, max_tokens=None, threads=None))]
    fn check_many(
        &self,
        py: Python<'_>,
        requests: Option<&Bound<'_, PyAny>>,
        accounts: Option<&Bound<'_, PyAny>>,
        fingerprints: Option<&Bound<'_, PyAny>>,
        prompts: Option<&Bound<'_, PyAny>>,
        systems: Option<&Bound<'_, PyAny>>,
        models: Option<&Bound<'_, PyAny>>,
        tokens: Option<&Bound<'_, PyAny>>,
        max_tokens: Option<&Bound<'_, PyAny>>,
        threads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyVerdicts> {
        let threads = match threads {
            Some(t) => crate::convert::bounded(t, "threads", 1, MAX_THREADS)? as usize,
            None => 1,
        };
        let columns = Columns {
            accounts,
            fingerprints,
            prompts,
            systems,
            models,
            tokens,
            max_tokens,
        };
        let batch = match requests.filter(|r| !r.is_none()) {
            Some(r) => {
                if columns.any() {
                    return Err(input_error(
                        "check_many takes either a list of requests or columns (accounts=, ...), not both",
                    ));
                }
                Batch::from_requests(r)?
            }
            None => Batch::from_columns(columns)?,
        };
        let node = &self.node;
        let verdicts = py.detach(|| catch(|| batch.check(node, threads)))?;
        Ok(PyVerdicts {
            settled: verdicts.iter().map(|_| AtomicBool::new(false)).collect(),
            items: verdicts,
        })
    }

    /// Benchmark helper: seconds per native `check` of these requests, timed
    /// in Rust over `rounds` passes (no Python in the loop). Takes the same
    /// columns as `check_many`; the checks count against the guard.
    #[pyo3(signature = (accounts, fingerprints=None, prompts=None, rounds=None))]
    fn _time_native(
        &self,
        py: Python<'_>,
        accounts: &Bound<'_, PyAny>,
        fingerprints: Option<&Bound<'_, PyAny>>,
        prompts: Option<&Bound<'_, PyAny>>,
        rounds: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<f64> {
        let rounds = match rounds {
            Some(r) => crate::convert::bounded(r, "rounds", 1, 1 << 20)? as usize,
            None => 1,
        };
        let batch = Batch::from_columns(Columns {
            accounts: Some(accounts),
            fingerprints,
            prompts,
            ..Columns::default()
        })?;
        let guard = self.guard();
        Ok(py.detach(|| catch(|| batch.time_native(guard, rounds)))?)
    }

    /// Settles an allowed request's token reservation with its real output
    /// tokens (refunding what `max_tokens` over-estimated) and feeds the
    /// output/input signal. Settling a refused verdict does nothing (the
    /// core's rule); a verdict is settled once, by the guard that gave it
    /// (another guard raises `InputError`).
    fn settle(
        &self,
        py: Python<'_>,
        verdict: &Bound<'_, PyAny>,
        output_tokens: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let v = verdict
            .cast::<PyVerdict>()
            .map_err(|_| type_error("verdict", "a Verdict", verdict))?
            .get();
        let output = uint32(output_tokens, "output_tokens")?;
        let settlement = v.inner.settlement();
        // Only a served verdict settles anything, so only one can be
        // settled twice; the flag is Python's, the rest the core's.
        if settlement.is_served() && v.settled.swap() {
            return Err(input_error("this verdict was already settled"));
        }
        let node = &self.node;
        let settled = py.detach(|| catch(|| node.settle_token(settlement, output)));
        match settled {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                if settlement.is_served() {
                    v.settled.undo();
                }
                Err(settle_error(&e))
            }
            Err(panic) => Err(panic.into()),
        }
    }

    /// Why `account` is treated as it is: its cluster, the values linking
    /// it and the signals behind the score (`Explanation`); `None` for an
    /// unknown account.
    fn explain(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
    ) -> PyResult<Option<PyExplanation>> {
        let account = text(account, "account")?;
        let guard = self.guard();
        let e = py.detach(|| catch(|| guard.explain(account)))?;
        Ok(e.map(|e| PyExplanation { inner: e }))
    }

    /// The guard's intelligence as a STIX 2.1 bundle (JSON text) by the
    /// producer `producer_id` (`"identity--<lower-case UUID v4>"`, fixed
    /// per deployment) named `producer_name`: the values that linked its
    /// flagged clusters, as keyed hashes under the consortium key (no
    /// account, raw value or prompt ever leaves). `None` when nothing
    /// passes the export rule.
    ///
    /// - `now`: the unix time the bundle is created at, which the guard's
    ///   clock reads as its present (default: the guard's present).
    /// - `min_score`, `min_campaign_accounts`, `max_benign_share`: the
    ///   export rule (defaults: `share_at`, `intel.min_campaign_accounts`,
    ///   `intel.max_benign_share`).
    /// - `tlp`: the TLP 2.0 marking: `"clear"`, `"green"`, `"amber"`
    ///   (default), `"amber+strict"` or `"red"`.
    ///
    /// A guard without a consortium key raises `ConfigError` (set
    /// `[intel] key_file`); a bad argument raises `InputError`.
    #[pyo3(
        signature = (producer_id, producer_name, *, now=None, min_score=None, min_campaign_accounts=None, max_benign_share=None, tlp=None),
        text_signature = "($self, producer_id, producer_name, *, now=None, min_score=None, min_campaign_accounts=None, max_benign_share=None, tlp='amber')"
    )]
    fn export_indicators(
        &self,
        py: Python<'_>,
        producer_id: &Bound<'_, PyAny>,
        producer_name: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
        min_score: Option<&Bound<'_, PyAny>>,
        min_campaign_accounts: Option<&Bound<'_, PyAny>>,
        max_benign_share: Option<&Bound<'_, PyAny>>,
        tlp: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<String>> {
        let args = crate::intel::ExportArgs {
            producer_id,
            producer_name,
            now,
            min_score,
            min_campaign_accounts,
            max_benign_share,
            tlp,
        };
        crate::intel::export(py, self.guard(), &args)
    }

    /// Imports another provider's STIX 2.1 bundle (JSON text), checked
    /// against the consortium key at `now` (unix seconds; default: the
    /// guard's present): accounts presenting its values are marked, their
    /// requests carry `shared_indicator`. Returns the report: a dict of
    /// `added`, `updated`, `revoked` and `ignored` indicators.
    ///
    /// All or nothing: a refused bundle (malformed, under another key,
    /// from the future, oversized, over `intel.max_imports`) raises
    /// `InputError` naming what is wrong, and leaves the guard as it was.
    /// A guard without a consortium key raises `ConfigError`.
    #[pyo3(signature = (bundle, *, now=None))]
    fn import_indicators<'py>(
        &self,
        py: Python<'py>,
        bundle: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        crate::intel::import(py, self.guard(), bundle, now)
    }

    /// The guard's sightings of imported indicators as a STIX 2.1 bundle
    /// (JSON text) by `sighter_id` named `sighter_name`, at `now` (unix
    /// seconds; default: the guard's present), marked `tlp` (as in
    /// `export_indicators`): counts and times, no account. `None` when no
    /// imported indicator has matched. A guard without a consortium key
    /// raises `ConfigError`.
    #[pyo3(
        signature = (sighter_id, sighter_name, *, now=None, tlp=None),
        text_signature = "($self, sighter_id, sighter_name, *, now=None, tlp='amber')"
    )]
    fn sightings(
        &self,
        py: Python<'_>,
        sighter_id: &Bound<'_, PyAny>,
        sighter_name: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
        tlp: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<String>> {
        crate::intel::sightings(py, self.guard(), sighter_id, sighter_name, now, tlp)
    }

    /// Imported indicators that matched, as dicts: `id` (the STIX
    /// indicator id), `count` (requests of accounts marked by it),
    /// `first_seen` and `last_seen` (the guard's clock, in seconds, as
    /// `time` reads on a manual clock). What `sightings` reports; empty
    /// without a key.
    fn matched_indicators<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        crate::intel::matched(py, self.guard())
    }

    /// The consortium key's id (32 hex digits, the `key_id` bundles
    /// carry), or `None` for a guard without a key (`[intel] key_file`).
    #[getter]
    fn intel_key_id(&self) -> Option<String> {
        self.guard().intel_key_id()
    }

    /// Everything the guard remembers, as bytes: versioned, checksummed and
    /// deterministic, for `restore` and `merge`.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let node = &self.node;
        let bytes = py.detach(|| catch(|| node.snapshot()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Restores a `snapshot` into this guard, which must be fresh and built
    /// with the same seeds and sizes. A corrupt, truncated or mismatched
    /// snapshot raises `SnapshotError` and changes nothing.
    fn restore(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = bytes_arg(data, "data")?;
        let bytes = data.as_slice();
        let node = &self.node;
        let rejoined = py
            .detach(|| catch(|| node.restore(bytes)))?
            .map_err(|e| snapshot_error(e.to_string()))?;
        if let Some(why) = rejoined.resume_error {
            // Restored all the same; the node reads what the streams hold.
            eprintln!("ringfence-fleet: restored, but not at its place in the exchange: {why}");
        }
        Ok(())
    }

    /// Writes `snapshot()` to the file at `path` (str or `os.PathLike`),
    /// crash-safe: a new temporary file beside it, flushed to the disk,
    /// renamed over `path`, the directory flushed (the core's
    /// `ringfence::persist::write_atomic`, which every way in shares). A
    /// crash at any moment leaves the previous file or the new one, whole;
    /// a write that fails raises `OSError` and leaves `path` as it was.
    fn snapshot_file(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<()> {
        let path = fs_path(py, path)?;
        let node = &self.node;
        py.detach(|| catch(|| ringfence::persist::write_atomic(&path, &node.snapshot())))?
            .map_err(|e| os_error(&e, "cannot write the snapshot to", &path))
    }

    /// `restore` from the file at `path`, read whole first: a file that
    /// cannot be read raises `OSError` (`FileNotFoundError`, ...), one
    /// whose bytes are not a snapshot `SnapshotError`; either way the
    /// guard is left as it was.
    fn restore_file(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<()> {
        let path = fs_path(py, path)?;
        let bytes = py
            .detach(|| std::fs::read(&path))
            .map_err(|e| os_error(&e, "cannot read the snapshot", &path))?;
        let node = &self.node;
        let rejoined = py
            .detach(|| catch(|| node.restore(&bytes)))?
            .map_err(|e| snapshot_error(format!("{}: {e}", path.display())))?;
        if let Some(why) = rejoined.resume_error {
            eprintln!("ringfence-fleet: restored, but not at its place in the exchange: {why}");
        }
        Ok(())
    }

    /// Folds another gateway node's `snapshot` into this guard (counts add,
    /// links union). A bad snapshot raises `SnapshotError` and changes nothing.
    fn merge(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = bytes_arg(data, "data")?;
        let bytes = data.as_slice();
        let guard = self.guard();
        py.detach(|| catch(|| guard.merge(bytes)))?
            .map_err(|e| snapshot_error(e.to_string()))
    }

    /// Forgets expired evidence and rebuilds the clusters now (the guard
    /// does this itself every `link.rebuild_every_secs`; call it from a
    /// background thread so that no request pays for it).
    fn maintain(&self, py: Python<'_>) -> PyResult<()> {
        let guard = self.guard();
        py.detach(|| catch(|| guard.maintain()))?;
        Ok(())
    }

    /// Records every request still waiting for the observer threads
    /// (`[observe] mode = "background"`; nothing to do otherwise), so that
    /// `explain`, `score_of` and snapshots count every request checked
    /// before the call.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let guard = self.guard();
        py.detach(|| catch(|| guard.flush()))?;
        Ok(())
    }

    /// Requests waiting for the observer threads (0 unless
    /// `[observe] mode = "background"`).
    #[getter]
    fn backlog(&self) -> u64 {
        self.guard().backlog()
    }

    /// Requests recorded on their own thread because the observers' queue
    /// was full (0 unless `[observe] mode = "background"`).
    #[getter]
    fn overflowed(&self) -> u64 {
        self.guard().overflowed()
    }

    /// Sets a manual clock's time: seconds since the guard's start (as
    /// `ringfence replay` counts from a trace's first line), from 0 to
    /// `MAX_CLOCK_SECONDS` (400 days: the limiter keeps times in 56 bits of
    /// nanoseconds).
    fn set_time(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let clock = self.manual()?;
        let s = clock_seconds(seconds, "seconds", 0.0)?;
        clock.set(Duration::from_secs_f64(s));
        Ok(())
    }

    /// Moves a manual clock forwards by `seconds` (at most to `MAX_CLOCK_SECONDS`).
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let clock = self.manual()?;
        let now = ringfence::limit::Clock::now(clock) as f64 / 1e9;
        let s = clock_seconds(seconds, "seconds", now)?;
        clock.advance(Duration::from_secs_f64(s));
        Ok(())
    }

    /// The guard's clock, in seconds (since its start, for a manual clock).
    #[getter]
    fn time(&self) -> f64 {
        match &self.clock {
            Some(c) => ringfence::limit::Clock::now(&**c) as f64 / 1e9,
            None => f64::NAN,
        }
    }

    /// The configuration in force, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = serde_json::to_string(self.guard().config())
            .map_err(|e| crate::errors::internal_error(e.to_string()))?;
        py.import("json")?.call_method1("loads", (json,))
    }

    /// A fleet node's counts, as a dict: `{"node": ..., "quotas": {...},
    /// "evidence": {...}}` (the fleet quotas' admissions, refusals,
    /// failure-mode fallbacks, round trips and incidents; the evidence
    /// published, received, skipped as bad and dropped). `None` for a
    /// guard whose configuration has no `[fleet]` table.
    fn fleet_stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.node.fleet_stats() {
            Some(json) => Ok(Some(py.import("json")?.call_method1("loads", (json,))?)),
            None => Ok(None),
        }
    }

    /// The guard's counters and gauges in the Prometheus text format
    /// (0.0.4), ready to serve at `/metrics`; `ringfence.prometheus` turns
    /// them into a `prometheus_client` collector.
    fn metrics(&self, py: Python<'_>) -> String {
        let guard = self.guard();
        py.detach(|| guard.metrics())
    }

    /// Bytes the guard holds.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.guard().memory_bytes()
    }

    /// Whether the guard runs on a manual clock.
    #[getter]
    fn manual_clock(&self) -> bool {
        self.clock.is_some()
    }

    fn __repr__(&self) -> String {
        let c = self.guard().config();
        format!(
            "<ringfence.Guard for {} accounts, {} requests/min per account{}>",
            c.link.max_accounts,
            c.account_requests_per_minute,
            if self.clock.is_some() {
                ", manual clock"
            } else {
                ""
            }
        )
    }
}

/// A path argument (str or `os.PathLike` of str) as a file-system path.
fn fs_path(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<std::path::PathBuf> {
    let p = py
        .import("os")?
        .call_method1("fspath", (path,))
        .map_err(|_| type_error("path", "a str or os.PathLike", path))?;
    let text: String = p
        .extract()
        .map_err(|_| type_error("path", "a str or os.PathLike of str", path))?;
    Ok(std::path::PathBuf::from(text))
}

/// An I/O error as Python's own `OSError` subclass, naming the file.
fn os_error(e: &std::io::Error, what: &str, path: &std::path::Path) -> PyErr {
    use pyo3::exceptions::{
        PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError,
    };
    let message = format!("{what} {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
        std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
        _ => PyOSError::new_err(message),
    }
}
