//! Guard configurations from Python: a dict, TOML text or a TOML file, all
//! read into one JSON value and deserialised with the key path in errors.

use crate::convert::{bounded, to_json};
use crate::errors::config_error;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use ringfence::guard::{GuardConfig, MAX_ACCOUNTS};
use serde_json::Value;

/// TOML text as a JSON value; a syntax error names the line.
pub fn toml_value(text: &str) -> PyResult<Value> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        config_error(format!(
            "invalid ringfence configuration: {}",
            e.to_string().trim_end()
        ))
    })?;
    serde_json::to_value(table).map_err(|e| config_error(e.to_string()))
}

/// Reads a file's text through Python's `open` (so a missing file is the
/// usual `FileNotFoundError`, naming it); text that is not UTF-8 is a
/// `ConfigError`.
pub fn read_text_file(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<String> {
    let io = py.import("io")?;
    let file = io.call_method1("open", (path, "rb"))?;
    let data = file.call_method0("read");
    file.call_method0("close")?;
    let data = data?;
    let bytes = data.cast::<PyBytes>()?.as_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        config_error(format!(
            "the file {} is not valid UTF-8 (at byte {})",
            crate::convert::short_repr(path),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The configuration value of a `config` argument: `None` (the defaults),
/// a dict, TOML text, or a path-like object naming a TOML file.
pub fn config_value(py: Python<'_>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    let Some(config) = config.filter(|c| !c.is_none()) else {
        return Ok(Value::Object(Default::default()));
    };
    if config.is_instance_of::<PyDict>() {
        return to_json(config, "");
    }
    if config.is_instance_of::<PyString>() {
        let text = crate::convert::text(config, "config")?;
        return toml_value(text);
    }
    let os = py.import("os")?;
    if config.is_instance(&os.getattr("PathLike")?)? {
        return toml_value(&read_text_file(py, config)?);
    }
    Err(crate::errors::type_error(
        "config",
        "a dict, TOML text (str) or a path (os.PathLike)",
        config,
    ))
}

fn has(value: &Value, path: &[&str]) -> bool {
    let mut v = value;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return false,
        }
    }
    true
}

/// A `GuardConfig` from its JSON value: unknown or mistyped keys are named
/// with their path; `accounts` (when given) sizes every table that the
/// value does not size itself, as `GuardConfig::for_accounts` would.
pub fn guard_config(value: &Value, accounts: Option<&Bound<'_, PyAny>>) -> PyResult<GuardConfig> {
    if !value.is_object() {
        return Err(config_error(
            "invalid ringfence configuration: it must be a table of keys",
        ));
    }
    let mut config: GuardConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            config_error(format!("invalid ringfence configuration: {}", e.inner()))
        } else {
            config_error(format!(
                "invalid ringfence configuration: `{path}`: {}",
                e.inner()
            ))
        }
    })?;
    if let Some(accounts) = accounts.filter(|a| !a.is_none()) {
        let n = bounded(accounts, "accounts", 1, MAX_ACCOUNTS as u64)? as usize;
        let sized = GuardConfig::for_accounts(n);
        if !has(value, &["limiter_capacity"]) {
            config.limiter_capacity = sized.limiter_capacity;
        }
        if !has(value, &["link", "max_accounts"]) {
            config.link.max_accounts = sized.link.max_accounts;
        }
        if !has(value, &["link", "max_values"]) {
            config.link.max_values = sized.link.max_values;
        }
        if !has(value, &["link", "max_templates"]) {
            config.link.max_templates = sized.link.max_templates;
        }
        if !has(value, &["link", "max_pairs"]) {
            config.link.max_pairs = sized.link.max_pairs;
        }
        if !has(value, &["score", "max_clusters"]) {
            config.score.max_clusters = sized.score.max_clusters;
        }
    }
    config.validate().map_err(|e| config_error(e.to_string()))?;
    Ok(config)
}
