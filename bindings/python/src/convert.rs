//! Reading Python arguments at the boundary: every type, size and range is
//! checked here, and a bad argument is an `InputError` (or `InputTypeError`)
//! that names it.

use crate::errors::{config_error, input_error, type_error};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple,
};
use serde_json::Value;
use smallvec::SmallVec;

/// The text of a `str` argument; `what` names it in errors (called only
/// on an error, so the hot path formats nothing).
pub fn text_named<'a>(obj: &'a Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<&'a str> {
    // The exact type first: a pointer comparison, where the subclass check
    // is a call into the interpreter (under the stable ABI).
    let s = match obj.cast_exact::<PyString>() {
        Ok(s) => s,
        Err(_) => match obj.cast::<PyString>() {
            Ok(s) => s,
            Err(_) => return Err(type_error(&what(), "a str", obj)),
        },
    };
    s.to_str().map_err(|_| {
        input_error(format!(
            "{} is not valid UTF-8: it contains a lone surrogate ({})",
            what(),
            short_repr(obj)
        ))
    })
}

/// The text of a `str` argument.
pub fn text<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    text_named(obj, &|| what.to_string())
}

/// A model name: a `str` (its length is the core's contract to check).
pub fn model_named<'a>(obj: &'a Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<&'a str> {
    text_named(obj, what)
}

/// An optional model name (`None` for absent).
pub fn opt_model<'a>(obj: Option<&'a Bound<'_, PyAny>>, what: &str) -> PyResult<Option<&'a str>> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(None),
        Some(o) => model_named(o, &|| what.to_string()).map(Some),
    }
}

/// An optional `str` argument (`None` for absent).
pub fn opt_text<'a>(obj: Option<&'a Bound<'_, PyAny>>, what: &str) -> PyResult<Option<&'a str>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => text(o, what).map(Some),
    }
}

/// A short `repr` for messages (at most 60 characters).
pub fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".to_string());
    if r.chars().count() > 60 {
        let head: String = r.chars().take(57).collect();
        format!("{head}...")
    } else {
        r
    }
}

fn int<'a, 'py>(obj: &'a Bound<'py, PyAny>, what: &str) -> PyResult<&'a Bound<'py, PyInt>> {
    if obj.is_instance_of::<PyBool>() {
        return Err(type_error(what, "an int", obj));
    }
    obj.cast::<PyInt>()
        .map_err(|_| type_error(what, "an int", obj))
}

/// An integer from 0 to 2³²−1 (token counts).
pub fn uint32(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    let i = int(obj, what)?;
    i.extract::<u32>().map_err(|_| {
        input_error(format!(
            "{what} must be an integer from 0 to 4294967295, not {}",
            short_repr(obj)
        ))
    })
}

/// An integer from 0 to 2⁶⁴−1 (seeds).
pub fn uint64(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    let i = int(obj, what)?;
    i.extract::<u64>().map_err(|_| {
        input_error(format!(
            "{what} must be an integer from 0 to 2**64 - 1, not {}",
            short_repr(obj)
        ))
    })
}

/// An integer in `lo..=hi` (sketch shapes, counts).
pub fn bounded(obj: &Bound<'_, PyAny>, what: &str, lo: u64, hi: u64) -> PyResult<u64> {
    let i = int(obj, what)?;
    match i.extract::<u64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(input_error(format!(
            "{what} must be an integer from {lo} to {hi}, not {}",
            short_repr(obj)
        ))),
    }
}

/// A float (an int is accepted too).
pub fn float(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
    {
        return Err(type_error(what, "a float", obj));
    }
    obj.extract::<f64>()
        .map_err(|_| input_error(format!("{what} is out of range: {}", short_repr(obj))))
}

/// Bytes given as `bytes` or `bytearray` (snapshots and sketch encodings).
pub enum ByteArg<'a> {
    /// Borrowed from an immutable `bytes` (kept alive by the caller).
    Borrowed(&'a [u8]),
    /// Copied from a mutable `bytearray`.
    Owned(Vec<u8>),
}

impl ByteArg<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            ByteArg::Borrowed(b) => b,
            ByteArg::Owned(v) => v,
        }
    }
}

/// A `bytes` or `bytearray` argument.
pub fn bytes_arg<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<ByteArg<'a>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(ByteArg::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(ByteArg::Owned(b.to_vec()));
    }
    Err(type_error(what, "bytes or bytearray", obj))
}

/// Calls `f` with each (kind, value) of a `fingerprints` argument: `None`,
/// a dict of kind to value (a `str`, or a list or tuple of `str` for several
/// values of one kind), or an iterable of `(kind, value)` pairs. How many
/// there may be, and how long, is the core's rule (`Request::validate`).
pub fn for_each_fingerprint<'py>(
    obj: Option<&Bound<'py, PyAny>>,
    what: &dyn Fn() -> String,
    mut f: impl FnMut(Bound<'py, PyAny>, Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(());
    };
    let mut pair = |kind: Bound<'py, PyAny>, value: Bound<'py, PyAny>| -> PyResult<()> {
        // Lists and tuples are read by index, never through `__iter__`: no
        // Python code may run (and change the dict) while it is iterated.
        if value.is_exact_instance_of::<PyString>() {
            f(kind, value)
        } else if let Ok(list) = value.cast::<PyList>() {
            for v in list.iter() {
                f(kind.clone(), v)?;
            }
            Ok(())
        } else if let Ok(tuple) = value.cast::<PyTuple>() {
            for v in tuple.iter() {
                f(kind.clone(), v)?;
            }
            Ok(())
        } else {
            f(kind, value)
        }
    };
    const EXPECTED: &str = "a dict of kind to value, or (kind, value) pairs";
    if let Ok(d) = obj.cast::<PyDict>() {
        for (k, v) in d.iter() {
            pair(k, v)?;
        }
        return Ok(());
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(type_error(&what(), EXPECTED, obj));
    }
    let items = obj
        .try_iter()
        .map_err(|_| type_error(&what(), EXPECTED, obj))?;
    for item in items {
        let item = item?;
        let Some(t) = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2) else {
            return Err(type_error(
                &format!("each item of {}", what()),
                "a (kind, value) tuple",
                &item,
            ));
        };
        pair(t.get_item(0)?, t.get_item(1)?)?;
    }
    Ok(())
}

/// Fingerprints as given: strong references to the kind and value strings,
/// kept alive while the request is decided (possibly without the GIL).
pub struct Fingerprints<'py> {
    pairs: SmallVec<[(Bound<'py, PyAny>, Bound<'py, PyAny>); INLINE_FINGERPRINTS]>,
}

/// Fingerprints held on the stack; more spill to the heap.
pub const INLINE_FINGERPRINTS: usize = 16;

impl<'py> Fingerprints<'py> {
    /// Reads a `fingerprints` argument (see [`for_each_fingerprint`]).
    pub fn read(obj: Option<&Bound<'py, PyAny>>) -> PyResult<Fingerprints<'py>> {
        let mut pairs = SmallVec::new();
        for_each_fingerprint(obj, &|| "fingerprints".to_string(), |k, v| {
            pairs.push((k, v));
            Ok(())
        })?;
        Ok(Fingerprints { pairs })
    }

    /// The (kind, value) texts, checked.
    pub fn texts(&self) -> PyResult<SmallVec<[(&str, &str); INLINE_FINGERPRINTS]>> {
        self.pairs
            .iter()
            .map(|(k, v)| fingerprint_texts(k, v, &|| "fingerprints".to_string()))
            .collect()
    }
}

/// One fingerprint's kind and value texts (their lengths are the core's
/// to check).
pub fn fingerprint_texts<'a>(
    kind: &'a Bound<'_, PyAny>,
    value: &'a Bound<'_, PyAny>,
    what: &dyn Fn() -> String,
) -> PyResult<(&'a str, &'a str)> {
    let k = text_named(kind, &|| format!("a kind in {}", what()))?;
    let v = text_named(value, &|| format!("{}[{k:?}]", what()))?;
    Ok((k, v))
}

/// A Python value as JSON, for serde: dicts with `str` keys, lists, tuples
/// and sets, `str`, `int`, `float`, `bool` and `None`. `path` names the
/// value in errors (`link.kind_rarity.device[1]`).
pub fn to_json(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    let at = |p: &str| {
        if p.is_empty() {
            "the configuration".to_string()
        } else {
            format!("`{p}`")
        }
    };
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            return Ok(Value::from(v));
        }
        if let Ok(v) = i.extract::<u64>() {
            return Ok(Value::from(v));
        }
        return Err(config_error(format!(
            "{} is out of range: {}",
            at(path),
            short_repr(obj)
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| config_error(format!("{} must be a finite number, not {v}", at(path))));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::String(text(obj, &at(path))?.to_string()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        // The entries first: reading a value may run Python code (a list
        // subclass's `__iter__`), which must not change the dict mid-iteration.
        let entries: Vec<_> = d.iter().collect();
        for (k, v) in entries {
            let k = k.cast::<PyString>().map_err(|_| {
                config_error(format!(
                    "the keys of {} must be str, not {}",
                    at(path),
                    short_repr(&k)
                ))
            })?;
            let k = text(k.as_any(), &format!("a key of {}", at(path)))?;
            let sub = if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            };
            map.insert(k.to_string(), to_json(&v, &sub)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>()
    {
        let mut out = Vec::new();
        for (i, v) in obj.try_iter()?.enumerate() {
            out.push(to_json(&v?, &format!("{path}[{i}]"))?);
        }
        return Ok(Value::Array(out));
    }
    Err(config_error(format!(
        "{} has a value of type {} that a configuration cannot hold (use dict, list, str, int, float or bool)",
        at(path),
        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}
