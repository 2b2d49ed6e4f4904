//! `ringfence._native`: the Python bindings of ringfence, built by maturin
//! into the `ringfence` package (see `python/`).
//!
//! Every argument is checked at the boundary (`convert`), every Rust error
//! becomes one of the package's exceptions (`errors`), and every call into
//! the core runs inside a panic boundary, so no input makes Python see a
//! `PanicException`. Work that takes more than a few microseconds runs with
//! the GIL released (`Python::detach`); the core holds no lock while Python
//! runs, and the bindings hold none at all.

mod batch;
mod config;
mod convert;
mod errors;
mod explanation;
mod guard;
mod intel;
mod sim;
mod sketch;
mod verdict;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use ringfence::guard as core;
use ringfence::score::Signal;

/// The native part of the `ringfence` package; import `ringfence` instead.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let e = errors::exceptions(py)?;
    m.add("RingfenceError", e.ringfence.bind(py))?;
    m.add("ConfigError", e.config.bind(py))?;
    m.add("SnapshotError", e.snapshot.bind(py))?;
    m.add("InputError", e.input.bind(py))?;
    m.add("InputTypeError", e.input_type.bind(py))?;
    m.add_class::<guard::PyGuard>()?;
    m.add_class::<verdict::PyVerdict>()?;
    m.add_class::<verdict::PyVerdicts>()?;
    m.add_class::<explanation::PyExplanation>()?;
    m.add_class::<sketch::PyCountMin>()?;
    m.add_class::<sketch::PyHyperLogLog>()?;
    m.add_class::<sketch::PyMinHash>()?;
    m.add_function(wrap_pyfunction!(sim::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(sim::write_trace, m)?)?;
    m.add_function(wrap_pyfunction!(sim::scenario_names, m)?)?;
    m.add_function(wrap_pyfunction!(guard::py_estimate_tokens, m)?)?;
    // The request contract, sizing and vocabulary: the core's own values,
    // so that Python shows whatever the core holds.
    m.add("MAX_ACCOUNT_BYTES", core::MAX_ACCOUNT_BYTES)?;
    m.add("MAX_FINGERPRINTS", core::MAX_FINGERPRINTS)?;
    m.add("MAX_FINGERPRINT_BYTES", core::MAX_FINGERPRINT_BYTES)?;
    m.add("MAX_MODEL_BYTES", core::MAX_MODEL_BYTES)?;
    m.add("MAX_ACCOUNTS", core::MAX_ACCOUNTS)?;
    m.add("MAX_CLOCK_SECONDS", guard::MAX_CLOCK_SECONDS)?;
    m.add("DECISIONS", PyTuple::new(py, core::Decision::NAMES)?)?;
    m.add(
        "REASONS",
        PyTuple::new(py, core::Reason::ALL.map(core::Reason::as_str))?,
    )?;
    m.add(
        "POLICIES",
        PyTuple::new(py, core::Policy::ALL.map(core::Policy::as_str))?,
    )?;
    m.add(
        "SIGNALS",
        PyTuple::new(py, Signal::ALL.iter().map(|s| s.name()))?,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
