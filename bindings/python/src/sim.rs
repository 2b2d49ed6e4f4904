//! The traffic simulator from Python: scenarios in, trace records out.

use crate::config::toml_value;
use crate::convert::{float, short_repr, text, to_json, uint64};
use crate::errors::{catch, config_error, input_error, type_error};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use ringfence_lab::sim::{Record, Scenario, BUILTIN_SCENARIOS};

/// A scenario from a built-in name, a dict, or TOML text (`toml`), scaled
/// and re-seeded, then checked.
fn scenario(
    scenario: Option<&Bound<'_, PyAny>>,
    toml: Option<&str>,
    scale: Option<&Bound<'_, PyAny>>,
    seed: Option<&Bound<'_, PyAny>>,
) -> PyResult<Scenario> {
    let mut s = if let Some(toml) = toml {
        deserialize(&toml_value(toml)?)?
    } else {
        match scenario.filter(|s| !s.is_none()) {
            None => Scenario::default(),
            Some(obj) if obj.is_instance_of::<PyString>() => {
                let name = text(obj, "scenario")?;
                Scenario::builtin(name).ok_or_else(|| {
                    config_error(format!(
                        "unknown scenario {name:?}: the built-in ones are {}; or pass a dict or a TOML file",
                        BUILTIN_SCENARIOS.join(", ")
                    ))
                })?
            }
            Some(obj) if obj.is_instance_of::<PyDict>() => deserialize(&to_json(obj, "")?)?,
            Some(obj) => {
                return Err(type_error(
                    "scenario",
                    "a built-in scenario's name, a dict or a path",
                    obj,
                ))
            }
        }
    };
    if let Some(scale) = scale.filter(|s| !s.is_none()) {
        let f = float(scale, "scale")?;
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            return Err(input_error(format!(
                "scale must be above 0 and at most 1000, not {}",
                short_repr(scale)
            )));
        }
        s = s.scaled(f);
    }
    if let Some(seed) = seed.filter(|s| !s.is_none()) {
        s.seed = uint64(seed, "seed")?;
    }
    s.validate().map_err(|e| config_error(e.to_string()))?;
    Ok(s)
}

fn deserialize(value: &serde_json::Value) -> PyResult<Scenario> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("`{path}`: ")
        };
        config_error(format!("invalid scenario: {at}{}", e.inner()))
    })
}

fn record_dict<'py>(py: Python<'py>, r: &Record) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ts", r.ts)?;
    d.set_item("account", &r.account)?;
    let f = PyDict::new(py);
    for (k, v) in &r.fingerprints {
        f.set_item(k, v)?;
    }
    d.set_item("fingerprints", f)?;
    d.set_item("prompt", &r.prompt)?;
    d.set_item("system", r.system.as_deref())?;
    d.set_item("model", &r.model)?;
    d.set_item("input_tokens", r.input_tokens)?;
    d.set_item("output_tokens", r.output_tokens)?;
    d.set_item("label", &r.label)?;
    d.set_item("cohort", &r.cohort)?;
    Ok(d)
}

/// Simulates a scenario; returns its records as dicts (the trace format's fields).
#[pyfunction]
#[pyo3(signature = (scenario=None, *, toml=None, scale=None, seed=None))]
pub fn simulate<'py>(
    py: Python<'py>,
    scenario: Option<&Bound<'py, PyAny>>,
    toml: Option<&Bound<'py, PyAny>>,
    scale: Option<&Bound<'py, PyAny>>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let toml = match toml.filter(|t| !t.is_none()) {
        Some(t) => Some(text(t, "toml")?),
        None => None,
    };
    let s = self::scenario(scenario, toml, scale, seed)?;
    let records = py.detach(|| catch(|| ringfence_lab::sim::simulate(&s)))?;
    let list = PyList::empty(py);
    for r in &records {
        list.append(record_dict(py, r)?)?;
    }
    Ok(list)
}

/// Simulates a scenario and writes its trace (JSON Lines) to `path`;
/// returns the number of records.
#[pyfunction]
#[pyo3(signature = (path, scenario=None, *, toml=None, scale=None, seed=None))]
pub fn write_trace<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    scenario: Option<&Bound<'py, PyAny>>,
    toml: Option<&Bound<'py, PyAny>>,
    scale: Option<&Bound<'py, PyAny>>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<usize> {
    let toml = match toml.filter(|t| !t.is_none()) {
        Some(t) => Some(text(t, "toml")?),
        None => None,
    };
    let s = self::scenario(scenario, toml, scale, seed)?;
    let os = py.import("os")?;
    let path: String = os
        .call_method1("fspath", (path,))?
        .extract()
        .map_err(|_| type_error("path", "a str or os.PathLike naming a file", path))?;
    let written = py.detach(|| {
        catch(|| -> std::io::Result<usize> {
            let records = ringfence_lab::sim::simulate(&s);
            let file = std::fs::File::create(&path)?;
            ringfence_lab::replay::write_trace(&records, std::io::BufWriter::new(file))?;
            Ok(records.len())
        })
    })?;
    Ok(written?)
}

/// The names of the built-in scenarios.
#[pyfunction]
pub fn scenario_names() -> Vec<&'static str> {
    BUILTIN_SCENARIOS.to_vec()
}
