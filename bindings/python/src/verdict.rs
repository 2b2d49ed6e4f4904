//! What `check` answers in Python: `Verdict`, a batch's `Verdicts` and
//! their iterator, and whether each was settled.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use ringfence::guard::{Decision, Verdict};
use ringfence::score::Signals;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Whether a verdict was settled: its own flag, or its slot in the batch it
/// came from (so that two `Verdict`s read from one `Verdicts` entry share it).
pub(crate) enum Settled {
    Own(AtomicBool),
    InBatch(Arc<[AtomicBool]>, usize),
}

impl Settled {
    fn flag(&self) -> &AtomicBool {
        match self {
            Settled::Own(f) => f,
            Settled::InBatch(flags, i) => &flags[*i],
        }
    }

    /// Marks it settled; whether it already was.
    pub(crate) fn swap(&self) -> bool {
        self.flag().swap(true, Relaxed)
    }

    /// Marks it unsettled again (a settlement the core refused).
    pub(crate) fn undo(&self) {
        self.flag().store(false, Relaxed);
    }
}

/// The guard's answer to one request (immutable): `decision` (`"allow"`,
/// `"throttle"` or `"deny"`), `allowed`, `retry_after`, `remaining`,
/// `score`, `cluster`, `cluster_size`, `reasons`, and `headers()` for the
/// HTTP response.
#[pyclass(frozen, module = "ringfence", name = "Verdict")]
pub struct PyVerdict {
    pub(crate) inner: Verdict,
    pub(crate) settled: Settled,
}

impl PyVerdict {
    /// The one way a core verdict becomes a Python `Verdict` (from `check`
    /// and from a `Verdicts` entry alike).
    pub(crate) fn new(inner: Verdict, settled: Settled) -> PyVerdict {
        PyVerdict { inner, settled }
    }
}

#[pymethods]
impl PyVerdict {
    /// `"allow"`, `"throttle"` or `"deny"` (the names in `DECISIONS`).
    #[getter]
    fn decision<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::intern(py, self.inner.decision.as_str())
    }

    /// Whether to serve the request.
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.allowed()
    }

    /// Seconds until a throttled request would fit; `None` otherwise.
    #[getter]
    fn retry_after(&self) -> Option<f64> {
        match self.inner.decision {
            Decision::Throttle { retry_after } => Some(retry_after.as_secs_f64()),
            _ => None,
        }
    }

    /// Requests left in the binding quota.
    #[getter]
    fn remaining(&self) -> u64 {
        self.inner.remaining
    }

    /// The cluster's distillation score, 0 to 1.
    #[getter]
    fn score(&self) -> f64 {
        self.inner.score
    }

    /// The account's cluster id.
    #[getter]
    fn cluster(&self) -> u64 {
        self.inner.cluster.id
    }

    /// Accounts in the cluster.
    #[getter]
    fn cluster_size(&self) -> u32 {
        self.inner.cluster.size
    }

    /// Why, as a tuple of names from `REASONS` (`account_limit`,
    /// `cluster_limit`, `fingerprint_limit`, `suspected_distillation`; may be
    /// non-empty on an allowed request).
    #[getter]
    fn reasons<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.reasons.iter().map(|r| r.as_str()))
    }

    /// The signals contributing most to the score, strongest first.
    #[getter]
    fn contributors(&self) -> Vec<(&'static str, f64)> {
        self.inner.contributors.to_vec()
    }

    /// Every signal behind the score, by name (the names in `SIGNALS`).
    #[getter]
    fn signals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        signals_dict(py, &self.inner.signals)
    }

    /// The request's input tokens.
    #[getter]
    fn input_tokens(&self) -> u32 {
        self.inner.input_tokens
    }

    /// The HTTP headers to answer with, in order, as the core builds them
    /// (`Verdict::headers`): `RateLimit-Policy` and `RateLimit` (IETF
    /// draft) of the binding limit, and `Retry-After` (whole seconds) when
    /// the request is refused and waiting helps.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, value) in self.inner.headers() {
            d.set_item(name, value)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let v = &self.inner;
        let reasons: Vec<&str> = v.reasons.iter().map(|r| r.as_str()).collect();
        let retry = match v.decision {
            Decision::Throttle { retry_after } => {
                format!(", retry_after={:.3}", retry_after.as_secs_f64())
            }
            _ => String::new(),
        };
        format!(
            "<ringfence.Verdict {}{retry}, reasons={reasons:?}, cluster={:016x} of {}, score={:.3}, remaining={}>",
            v.decision,
            v.cluster.id,
            v.cluster.size,
            v.score,
            v.remaining
        )
    }
}

/// Every signal the core has, by its name (`Signals::iter`): a signal added
/// to the core appears here without a change.
pub(crate) fn signals_dict<'py>(py: Python<'py>, s: &Signals) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (signal, value) in s.iter() {
        d.set_item(PyString::intern(py, signal.name()), value)?;
    }
    Ok(d)
}

/// The verdicts of a `check_many` batch, in request order (a sequence).
#[pyclass(frozen, sequence, module = "ringfence", name = "Verdicts")]
pub struct PyVerdicts {
    pub(crate) items: Vec<Verdict>,
    pub(crate) settled: Arc<[AtomicBool]>,
}

impl PyVerdicts {
    fn at(&self, index: isize) -> PyResult<PyVerdict> {
        let n = self.items.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "Verdicts index out of range",
            ));
        }
        Ok(PyVerdict::new(
            self.items[i as usize].clone(),
            Settled::InBatch(self.settled.clone(), i as usize),
        ))
    }
}

#[pymethods]
impl PyVerdicts {
    fn __len__(&self) -> usize {
        self.items.len()
    }

    fn __getitem__(&self, index: isize) -> PyResult<PyVerdict> {
        self.at(index)
    }

    fn __iter__(slf: Bound<'_, Self>) -> VerdictIter {
        VerdictIter {
            owner: slf.unbind(),
            next: AtomicU64::new(0),
        }
    }

    /// Whether each request is allowed.
    #[getter]
    fn allowed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.items.iter().map(Verdict::allowed))
    }

    /// How many requests are allowed.
    #[getter]
    fn allowed_count(&self) -> usize {
        self.items.iter().filter(|v| v.allowed()).count()
    }

    /// Each request's decision (a name in `DECISIONS`).
    #[getter]
    fn decisions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.items
                .iter()
                .map(|v| PyString::intern(py, v.decision.as_str())),
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "<ringfence.Verdicts: {} requests, {} allowed>",
            self.items.len(),
            self.allowed_count()
        )
    }
}

/// An iterator over `Verdicts`.
#[pyclass(frozen, module = "ringfence")]
pub struct VerdictIter {
    owner: Py<PyVerdicts>,
    next: AtomicU64,
}

#[pymethods]
impl VerdictIter {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> Option<PyVerdict> {
        let owner = self.owner.bind(py).get();
        let i = self.next.fetch_add(1, Relaxed) as usize;
        (i < owner.items.len())
            .then(|| owner.at(i as isize).ok())
            .flatten()
    }
}
