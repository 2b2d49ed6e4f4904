//! Shared threat intelligence (`Guard.export_indicators`,
//! `import_indicators`, `sightings`, `matched_indicators`): the work behind
//! the `Guard` methods, through `ringfence_intel::guard`, the glue the
//! command line and the C ABI share. Bundles are STIX 2.1 JSON text.
//!
//! Every call reads its arguments first, with the GIL held, then does the
//! work with the GIL released; no Rust lock is held while Python runs.

use crate::convert::{float, opt_text, text, uint32};
use crate::errors::{catch, config_error, input_error};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use ringfence::guard::Guard;
use ringfence::intel::{ExportOptions, IndicatorMatch};
use ringfence_intel::guard::{self as exchange, ExchangeError};
use ringfence_intel::{Producer, Tlp};

/// The TLP names `tlp=` takes, in order.
fn tlp_names() -> String {
    Tlp::ALL
        .iter()
        .map(|t| format!("{:?}", t.tlp_2_0()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `tlp` argument (default amber): one of the TLP 2.0 names,
/// case-insensitive.
fn tlp_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Tlp> {
    let Some(name) = opt_text(obj, "tlp")? else {
        return Ok(Tlp::Amber);
    };
    exchange::tlp_named(name).ok_or_else(|| {
        input_error(format!(
            "tlp must be one of {} (TLP 2.0, case-insensitive), not {name:?}",
            tlp_names()
        ))
    })
}

/// A `now` argument: unix seconds, finite and positive; `None` for the
/// guard's present (`ringfence_intel::guard::now_of`).
fn now_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let now = float(obj, "now")?;
    if !(now.is_finite() && now > 0.0) {
        return Err(input_error(format!(
            "now must be a finite, positive unix time in seconds, not {now}"
        )));
    }
    Ok(Some(now))
}

/// A producer (or sighter): its STIX identity id and name, checked by the
/// bundle writer (an identity id that is not `identity--<lower-case UUID
/// v4>` raises `InputError` there).
fn producer(id: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>, role: &str) -> PyResult<Producer> {
    Ok(Producer {
        identity_id: text(id, &format!("{role}_id"))?.to_owned(),
        name: text(name, &format!("{role}_name"))?.to_owned(),
    })
}

/// An exchange that failed: a guard without a key is a `ConfigError`
/// (the message says to set `[intel] key_file`); a refused bundle, a
/// producer that cannot be written, an option out of range or an import
/// the guard cannot hold an `InputError`, with the message naming what is
/// wrong.
fn exchange_error(e: &ExchangeError) -> PyErr {
    match e {
        ExchangeError::NoKey => config_error(format!(
            "{e}: build the guard with a consortium key to share intelligence"
        )),
        _ => input_error(e.to_string()),
    }
}

/// The guard's key, or the `NoKey` error.
fn keyed(guard: &Guard) -> PyResult<()> {
    match guard.intel_key_id() {
        Some(_) => Ok(()),
        None => Err(exchange_error(&ExchangeError::NoKey)),
    }
}

/// The arguments of `Guard.export_indicators`, as Python passed them.
pub struct ExportArgs<'a, 'py> {
    pub producer_id: &'a Bound<'py, PyAny>,
    pub producer_name: &'a Bound<'py, PyAny>,
    pub now: Option<&'a Bound<'py, PyAny>>,
    pub min_score: Option<&'a Bound<'py, PyAny>>,
    pub min_campaign_accounts: Option<&'a Bound<'py, PyAny>>,
    pub max_benign_share: Option<&'a Bound<'py, PyAny>>,
    pub tlp: Option<&'a Bound<'py, PyAny>>,
}

/// An optional fraction from 0 to 1.
fn opt_unit(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<f64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let v = float(obj, what)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(input_error(format!(
            "{what} must be between 0 and 1, not {v}"
        )));
    }
    Ok(Some(v))
}

/// `Guard.export_indicators`: the bundle, or `None` when nothing passes
/// the export rule.
pub fn export(
    py: Python<'_>,
    guard: &Guard,
    args: &ExportArgs<'_, '_>,
) -> PyResult<Option<String>> {
    let producer = producer(args.producer_id, args.producer_name, "producer")?;
    let now = now_arg(args.now)?;
    let tlp = tlp_arg(args.tlp)?;
    let min_campaign_accounts = match args.min_campaign_accounts.filter(|o| !o.is_none()) {
        Some(k) => {
            let k = uint32(k, "min_campaign_accounts")?;
            if k == 0 {
                return Err(input_error("min_campaign_accounts must be at least 1"));
            }
            Some(k)
        }
        None => None,
    };
    let options = ExportOptions {
        min_score: opt_unit(args.min_score, "min_score")?,
        min_campaign_accounts,
        max_benign_share: opt_unit(args.max_benign_share, "max_benign_share")?,
    };
    keyed(guard)?;
    let done = py.detach(|| {
        catch(|| {
            let now = now.unwrap_or_else(|| exchange::now_of(guard));
            exchange::export(guard, &producer, now, tlp, &options)
        })
    })?;
    match done {
        Ok(x) => Ok(Some(x.bundle)),
        Err(ExchangeError::Nothing(_)) => Ok(None),
        Err(e) => Err(exchange_error(&e)),
    }
}

/// `Guard.import_indicators`: the import report as a dict.
pub fn import<'py>(
    py: Python<'py>,
    guard: &Guard,
    bundle: &Bound<'py, PyAny>,
    now: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let bundle = text(bundle, "bundle")?;
    let now = now_arg(now)?;
    let done = py.detach(|| {
        catch(|| {
            let now = now.unwrap_or_else(|| exchange::now_of(guard));
            exchange::import(guard, bundle, now)
        })
    })?;
    let report = done.map_err(|e| exchange_error(&e))?.report;
    let d = PyDict::new(py);
    d.set_item("added", report.added)?;
    d.set_item("updated", report.updated)?;
    d.set_item("revoked", report.revoked)?;
    d.set_item("ignored", report.ignored)?;
    Ok(d)
}

/// `Guard.sightings`: the sighting bundle, or `None` when no imported
/// indicator has matched.
pub fn sightings(
    py: Python<'_>,
    guard: &Guard,
    sighter_id: &Bound<'_, PyAny>,
    sighter_name: &Bound<'_, PyAny>,
    now: Option<&Bound<'_, PyAny>>,
    tlp: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<String>> {
    let sighter = producer(sighter_id, sighter_name, "sighter")?;
    let now = now_arg(now)?;
    let tlp = tlp_arg(tlp)?;
    keyed(guard)?;
    let done = py.detach(|| {
        catch(|| {
            let now = now.unwrap_or_else(|| exchange::now_of(guard));
            exchange::sightings(guard, &sighter, now, tlp)
        })
    })?;
    match done {
        Ok(bundle) => Ok(Some(bundle)),
        Err(ExchangeError::Nothing(_)) => Ok(None),
        Err(e) => Err(exchange_error(&e)),
    }
}

/// `Guard.matched_indicators`: a list of dicts (`id`, `count`,
/// `first_seen`, `last_seen`; times on the guard's clock).
pub fn matched<'py>(py: Python<'py>, guard: &Guard) -> PyResult<Bound<'py, PyList>> {
    let list = py.detach(|| catch(|| guard.matched_indicators()))?;
    let out = PyList::empty(py);
    for m in list {
        let d = PyDict::new(py);
        d.set_item("id", m.id)?;
        d.set_item("count", m.count)?;
        d.set_item("first_seen", m.first_seen)?;
        d.set_item("last_seen", m.last_seen)?;
        out.append(d)?;
    }
    Ok(out)
}

/// An imported indicator an account matched, as a dict (`id`, `producer`,
/// `producer_name`, `kind`, `weight`, `valid_until`).
pub fn indicator_dict<'py>(py: Python<'py>, m: &IndicatorMatch) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &m.id)?;
    d.set_item("producer", &m.producer)?;
    d.set_item("producer_name", m.producer_name.as_deref())?;
    d.set_item("kind", &m.kind)?;
    d.set_item("weight", m.weight)?;
    d.set_item("valid_until", m.valid_until)?;
    Ok(d)
}
