//! The Python exception hierarchy, and the mapping of every Rust error onto it.
//!
//! ```text
//! RingfenceError(Exception)
//! ├── ConfigError(RingfenceError, ValueError)      a configuration or scenario that cannot be used
//! ├── SnapshotError(RingfenceError, ValueError)    bytes that are not a snapshot or sketch encoding
//! └── InputError(RingfenceError, ValueError)       an argument with a bad value
//!     └── InputTypeError(InputError, TypeError)    an argument of the wrong type
//! ```
//!
//! The classes are made once per process with Python's `type()` (the C API
//! can only give an exception one base) and cached.

use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The exception types, built together on first use.
pub struct Exceptions {
    pub ringfence: Py<PyType>,
    pub config: Py<PyType>,
    pub snapshot: Py<PyType>,
    pub input: Py<PyType>,
    pub input_type: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: &[&Bound<'py, PyType>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "ringfence")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(class.unbind())
}

/// The exception classes (made on first use).
pub fn exceptions(py: Python<'_>) -> PyResult<&'static Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let exception = py.get_type::<PyException>();
        let value_error = py.get_type::<PyValueError>();
        let type_error = py.get_type::<PyTypeError>();
        let ringfence = new_class(
            py,
            "RingfenceError",
            &[&exception],
            "Base class of every error ringfence raises.",
        )?;
        let rf = ringfence.bind(py);
        let config = new_class(
            py,
            "ConfigError",
            &[rf, &value_error],
            "A configuration (or simulator scenario) that cannot be used: an unknown \
             or mistyped key, or a value out of range. The message names the key.",
        )?;
        let snapshot = new_class(
            py,
            "SnapshotError",
            &[rf, &value_error],
            "Bytes that are not a valid guard snapshot or sketch encoding (corrupt, \
             truncated, of another kind or version), or a snapshot that does not fit \
             this guard. The object it was given to is unchanged.",
        )?;
        let input = new_class(
            py,
            "InputError",
            &[rf, &value_error],
            "An argument with a value ringfence cannot use (out of range, too long, \
             not valid UTF-8, sketches of different shapes). The message names the \
             argument. A request that breaks the request contract (the same in Rust, \
             C and Python) has the field at fault in `field`: \"account\", \
             \"fingerprints\" or \"fingerprints[i]\".",
        )?;
        let input_type = new_class(
            py,
            "InputTypeError",
            &[input.bind(py), &type_error],
            "An argument of the wrong type. Also a TypeError, so code that catches \
             TypeError keeps working.",
        )?;
        Ok(Exceptions {
            ringfence,
            config,
            snapshot,
            input,
            input_type,
        })
    })
}

fn make(py: Python<'_>, pick: fn(&Exceptions) -> &Py<PyType>, message: String) -> PyErr {
    match exceptions(py) {
        Ok(e) => PyErr::from_type(pick(e).bind(py).clone(), message),
        Err(e) => e,
    }
}

/// An argument with a bad value.
pub fn input_error(message: impl Into<String>) -> PyErr {
    Python::attach(|py| make(py, |e| &e.input, message.into()))
}

/// A request that breaks the core's request contract
/// (`ringfence::guard::RequestError`): an `InputError` with the core's
/// message (after `at`, naming the request in a batch, when given) and the
/// core's name of the field at fault in its `field` attribute.
pub fn request_error(e: &ringfence::guard::RequestError, at: Option<&str>) -> PyErr {
    Python::attach(|py| {
        let message = match at {
            Some(at) => format!("{at}: {e}"),
            None => e.to_string(),
        };
        let err = make(py, |x| &x.input, message);
        if let Err(set) = err.value(py).setattr("field", e.field()) {
            return set;
        }
        err
    })
}

/// A verdict settled on a guard that did not give it
/// (`ringfence::guard::SettleError`), with the core's message.
pub fn settle_error(e: &ringfence::guard::SettleError) -> PyErr {
    input_error(e.to_string())
}

/// An argument of the wrong type: `what` names it, `expected` says what it
/// should be; the message adds the type it was.
pub fn type_error(what: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let name = got
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string());
    let message = format!("{what} must be {expected}, not {name}");
    make(got.py(), |e| &e.input_type, message)
}

/// A configuration that cannot be used.
pub fn config_error(message: impl Into<String>) -> PyErr {
    Python::attach(|py| make(py, |e| &e.config, message.into()))
}

/// Bytes that are not a valid snapshot.
pub fn snapshot_error(message: impl Into<String>) -> PyErr {
    Python::attach(|py| make(py, |e| &e.snapshot, message.into()))
}

/// A failure inside ringfence that is not the caller's doing (a panic caught
/// at the boundary): raised as `RingfenceError`, never as a `PanicException`.
pub fn internal_error(message: impl Into<String>) -> PyErr {
    Python::attach(|py| make(py, |e| &e.ringfence, message.into()))
}

/// Maps a sketch error: decoding failures are snapshot errors, bad
/// parameters and incompatible sketches are input errors.
pub fn sketch_error(e: ringfence::sketch::Error) -> PyErr {
    match e {
        ringfence::sketch::Error::Decode { .. } => snapshot_error(e.to_string()),
        _ => input_error(e.to_string()),
    }
}

/// A panic caught at the boundary, with its message.
pub struct Panic(String);

impl From<Panic> for PyErr {
    fn from(p: Panic) -> PyErr {
        internal_error(format!(
            "internal error in ringfence (please report it): {}",
            p.0
        ))
    }
}

/// Runs `f`, catching a panic so that none reaches Python as a
/// `PanicException` (it becomes a `RingfenceError` once converted). Every
/// call into the core goes through here; it needs no GIL, so it also runs
/// inside `Python::detach`.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        Panic(
            payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string()),
        )
    })
}
