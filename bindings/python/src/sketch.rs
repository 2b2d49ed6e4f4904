//! The sketches on their own: `CountMin`, `HyperLogLog` and `MinHash`.
//!
//! Items are `str` (their UTF-8 bytes), `bytes`/`bytearray`, or `int` (its
//! 8 little-endian bytes, as Rust hashes an `i64` or `u64`), so a Python
//! process and a Rust one with the same seed build identical sketches.

use crate::convert::{bounded, bytes_arg, float, short_repr, text, uint32, uint64};
use crate::errors::{catch, input_error, sketch_error, type_error};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyInt, PyString, PyType};
use ringfence::sketch::{self, Item, MAX_PRECISION, MAX_SHINGLE_WORDS, MIN_PRECISION};

/// The stable hash of one item with `seed`.
fn item_hash(obj: &Bound<'_, PyAny>, seed: u64) -> PyResult<u64> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(text(s.as_any(), "item")?.sketch_hash(seed));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().sketch_hash(seed));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec().sketch_hash(seed));
    }
    if !obj.is_instance_of::<PyBool>() {
        if let Ok(i) = obj.cast::<PyInt>() {
            if let Ok(v) = i.extract::<i64>() {
                return Ok(v.sketch_hash(seed));
            }
            if let Ok(v) = i.extract::<u64>() {
                return Ok(v.sketch_hash(seed));
            }
            return Err(input_error(format!(
                "item {} does not fit in 64 bits",
                short_repr(obj)
            )));
        }
    }
    Err(type_error("item", "a str, bytes or int", obj))
}

fn seed_of(seed: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match seed.filter(|s| !s.is_none()) {
        Some(s) => uint64(s, "seed"),
        None => Ok(sketch::DEFAULT_SEED),
    }
}

fn same_type<'a, T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    other: &'a Bound<'_, PyAny>,
    name: &str,
) -> PyResult<&'a T> {
    Ok(other
        .cast::<T>()
        .map_err(|_| type_error("other", name, other))?
        .get())
}

/// The `#[pymethods]` of a sketch class: its own methods (`$own`), then
/// the ones every sketch has, written once: `update` (each item through
/// `$add`), `merge`, `clear`, `to_bytes`, `from_bytes` and `seed`.
macro_rules! sketch_methods {
    (
        $class:ident, $sketch:ty, $name:literal,
        add = |$s:ident, $h:ident| $add:expr,
        merge = $merge_doc:literal, clear = $clear_doc:literal,
        { $($own:tt)* }
    ) => {
        #[pymethods]
        impl $class {
            $($own)*

            /// Adds every item of an iterable (once each).
            fn update(&self, items: &Bound<'_, PyAny>) -> PyResult<()> {
                let $s = &self.inner;
                for item in items.try_iter()? {
                    let $h = item_hash(&item?, $s.seed())?;
                    $add;
                }
                Ok(())
            }

            #[doc = $merge_doc]
            fn merge(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
                let o: &$class = same_type(other, $name)?;
                self.inner.merge(&o.inner).map_err(sketch_error)
            }

            #[doc = $clear_doc]
            fn clear(&self) {
                self.inner.clear();
            }

            /// The compact binary encoding.
            fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
                PyBytes::new(py, &self.inner.to_bytes())
            }

            /// Decodes `to_bytes`' output.
            #[classmethod]
            fn from_bytes(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
                let data = bytes_arg(data, "data")?;
                let inner = catch(|| <$sketch>::from_bytes(data.as_slice()))?
                    .map_err(sketch_error)?;
                Ok($class { inner })
            }

            /// The hash seed.
            #[getter]
            fn seed(&self) -> u64 {
                self.inner.seed()
            }
        }
    };
}

/// A Count-Min sketch: how often was an item seen?
///
/// `CountMin(width, depth, *, seed=None, conservative=False)`, or
/// `CountMin.with_error(epsilon, delta)`: estimates never fall below the
/// true count and exceed it by at most `epsilon` × total with probability
/// at least 1 − `delta`. Items are `str`, `bytes` or `int`; sketches with
/// the same shape and seed merge exactly, in Python or Rust.
#[pyclass(frozen, module = "ringfence", name = "CountMin")]
pub struct PyCountMin {
    inner: sketch::CountMin,
}

sketch_methods! {
    PyCountMin, sketch::CountMin, "a CountMin",
    add = |s, h| s.add_hash(h, 1),
    merge = "Adds another sketch of the same shape and seed into this one.",
    clear = "Resets every counter.",
    {
        #[new]
        #[pyo3(signature = (width, depth, *, seed=None, conservative=false))]
        fn new(
            width: &Bound<'_, PyAny>,
            depth: &Bound<'_, PyAny>,
            seed: Option<&Bound<'_, PyAny>>,
            conservative: bool,
        ) -> PyResult<Self> {
            let width = bounded(width, "width", 1, u64::from(u32::MAX))? as u32;
            let depth = bounded(depth, "depth", 1, 32)? as u32;
            let inner = sketch::CountMin::new(width, depth)
                .map_err(sketch_error)?
                .with_seed(seed_of(seed)?)
                .conservative(conservative);
            Ok(PyCountMin { inner })
        }

        /// A sketch over-estimating by at most `epsilon` × total with probability
        /// at least 1 − `delta`.
        #[classmethod]
        #[pyo3(signature = (epsilon, delta, *, seed=None, conservative=false))]
        fn with_error(
            _cls: &Bound<'_, PyType>,
            epsilon: &Bound<'_, PyAny>,
            delta: &Bound<'_, PyAny>,
            seed: Option<&Bound<'_, PyAny>>,
            conservative: bool,
        ) -> PyResult<Self> {
            let inner =
                sketch::CountMin::with_error(float(epsilon, "epsilon")?, float(delta, "delta")?)
                    .map_err(sketch_error)?
                    .with_seed(seed_of(seed)?)
                    .conservative(conservative);
            Ok(PyCountMin { inner })
        }

        /// Counts `item` `n` times.
        #[pyo3(signature = (item, n=None))]
        fn add(&self, item: &Bound<'_, PyAny>, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
            let n = match n {
                Some(n) => uint32(n, "n")?,
                None => 1,
            };
            self.inner.add_hash(item_hash(item, self.inner.seed())?, n);
            Ok(())
        }

        /// The estimated count of `item` (never below the true count).
        fn estimate(&self, item: &Bound<'_, PyAny>) -> PyResult<u32> {
            Ok(self
                .inner
                .estimate_hash(item_hash(item, self.inner.seed())?))
        }

        /// Counters per row.
        #[getter]
        fn width(&self) -> u32 {
            self.inner.width()
        }
        /// Rows.
        #[getter]
        fn depth(&self) -> u32 {
            self.inner.depth()
        }
        /// Whether updates are conservative.
        #[getter]
        fn conservative(&self) -> bool {
            self.inner.is_conservative()
        }
        /// The error bound ε (relative to the total).
        #[getter]
        fn epsilon(&self) -> f64 {
            self.inner.epsilon()
        }
        /// The probability δ of exceeding the bound.
        #[getter]
        fn delta(&self) -> f64 {
            self.inner.delta()
        }
        /// The sum of every count added.
        #[getter]
        fn total(&self) -> u64 {
            self.inner.total()
        }
        /// Bytes of memory held.
        #[getter]
        fn memory_bytes(&self) -> usize {
            self.inner.memory_bytes()
        }

        fn __repr__(&self) -> String {
            format!(
                "<ringfence.CountMin {}x{}, total {}>",
                self.inner.width(),
                self.inner.depth(),
                self.inner.total()
            )
        }
    }
}

/// A HyperLogLog sketch: how many distinct items?
///
/// `HyperLogLog(precision=12, *, seed=None)`: 2^precision registers
/// (4 to 18), relative standard error 1.04/√(2^precision) (1.6 % at 12).
/// Items are `str`, `bytes` or `int`; merges are exact.
#[pyclass(frozen, module = "ringfence", name = "HyperLogLog")]
pub struct PyHyperLogLog {
    inner: sketch::HyperLogLog,
}

sketch_methods! {
    PyHyperLogLog, sketch::HyperLogLog, "a HyperLogLog",
    add = |s, h| s.insert_hash(h),
    merge = "Adds another sketch of the same precision and seed into this one.",
    clear = "Forgets everything.",
    {
        #[new]
        #[pyo3(signature = (precision=None, *, seed=None))]
        fn new(
            precision: Option<&Bound<'_, PyAny>>,
            seed: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<Self> {
            let p = match precision {
                Some(p) => bounded(p, "precision", MIN_PRECISION.into(), MAX_PRECISION.into())? as u8,
                None => 12,
            };
            let inner = sketch::HyperLogLog::new(p)
                .map_err(sketch_error)?
                .with_seed(seed_of(seed)?);
            Ok(PyHyperLogLog { inner })
        }

        /// The smallest sketch with relative standard error at most `error`.
        #[classmethod]
        #[pyo3(signature = (error, *, seed=None))]
        fn with_error(
            _cls: &Bound<'_, PyType>,
            error: &Bound<'_, PyAny>,
            seed: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<Self> {
            let inner = sketch::HyperLogLog::with_error(float(error, "error")?)
                .map_err(sketch_error)?
                .with_seed(seed_of(seed)?);
            Ok(PyHyperLogLog { inner })
        }

        /// Adds an item.
        fn add(&self, item: &Bound<'_, PyAny>) -> PyResult<()> {
            self.inner.insert_hash(item_hash(item, self.inner.seed())?);
            Ok(())
        }

        /// The estimated number of distinct items.
        fn estimate(&self) -> f64 {
            self.inner.estimate()
        }

        /// Whether nothing was added.
        fn is_empty(&self) -> bool {
            self.inner.is_empty()
        }

        /// The precision p (2^p registers).
        #[getter]
        fn precision(&self) -> u8 {
            self.inner.precision()
        }
        /// The relative standard error, 1.04/√m.
        #[getter]
        fn relative_error(&self) -> f64 {
            self.inner.relative_error()
        }
        /// Bytes of memory held.
        #[getter]
        fn memory_bytes(&self) -> usize {
            self.inner.memory_bytes()
        }

        fn __repr__(&self) -> String {
            format!(
                "<ringfence.HyperLogLog p={}, estimate {:.1}>",
                self.inner.precision(),
                self.inner.estimate()
            )
        }
    }
}

/// A MinHash accumulator: how similar are two sets?
///
/// `MinHash(k=128, *, seed=None)`, or `MinHash.from_text(text, n=3)` for
/// the word n-gram shingles of a text: `jaccard` estimates the Jaccard
/// similarity with standard error √(J(1−J)/k).
#[pyclass(frozen, module = "ringfence", name = "MinHash")]
pub struct PyMinHash {
    inner: sketch::MinHash,
}

fn shingle_words(n: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    match n {
        Some(n) => Ok(bounded(n, "n", 1, MAX_SHINGLE_WORDS as u64)? as usize),
        None => Ok(3),
    }
}

sketch_methods! {
    PyMinHash, sketch::MinHash, "a MinHash",
    add = |s, h| s.insert_hash(h),
    merge = "Folds another MinHash in: the result is the MinHash of the union.",
    clear = "Forgets everything.",
    {
        #[new]
        #[pyo3(signature = (k=None, *, seed=None))]
        fn new(k: Option<&Bound<'_, PyAny>>, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
            let k = match k {
                Some(k) => bounded(k, "k", 1, sketch::MAX_K as u64)? as usize,
                None => sketch::DEFAULT_K,
            };
            let inner = sketch::MinHash::new(k)
                .map_err(sketch_error)?
                .with_seed(seed_of(seed)?);
            Ok(PyMinHash { inner })
        }

        /// The MinHash of the word `n`-gram shingles of `text`.
        #[classmethod]
        #[pyo3(signature = (text, *, k=None, n=None, seed=None))]
        fn from_text(
            cls: &Bound<'_, PyType>,
            text: &Bound<'_, PyAny>,
            k: Option<&Bound<'_, PyAny>>,
            n: Option<&Bound<'_, PyAny>>,
            seed: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<Self> {
            let _ = cls;
            let m = PyMinHash::new(k, seed)?;
            m.add_text(text, n)?;
            Ok(m)
        }

        /// Adds an item.
        fn add(&self, item: &Bound<'_, PyAny>) -> PyResult<()> {
            self.inner.insert_hash(item_hash(item, self.inner.seed())?);
            Ok(())
        }

        /// Adds the word `n`-gram shingles of `text` (lower-cased, white space folded).
        #[pyo3(signature = (text, n=None))]
        fn add_text(&self, text: &Bound<'_, PyAny>, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
            let t = crate::convert::text(text, "text")?;
            let n = shingle_words(n)?;
            let seed = self.inner.seed();
            sketch::for_each_shingle(t, n, seed, |h| self.inner.insert_hash(h));
            Ok(())
        }

        /// The estimated Jaccard similarity with another MinHash of the same k and seed.
        fn jaccard(&self, other: &Bound<'_, PyAny>) -> PyResult<f64> {
            let o: &PyMinHash = same_type(other, "a MinHash")?;
            self.inner.jaccard(&o.inner).map_err(sketch_error)
        }

        /// The densified signature: k 64-bit values.
        fn signature(&self) -> Vec<u64> {
            self.inner.signature().values().to_vec()
        }

        /// Whether nothing was added.
        fn is_empty(&self) -> bool {
            self.inner.is_empty()
        }

        /// The number of bins.
        #[getter]
        fn k(&self) -> usize {
            self.inner.k()
        }

        fn __repr__(&self) -> String {
            format!("<ringfence.MinHash k={}>", self.inner.k())
        }
    }
}
