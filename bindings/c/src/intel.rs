//! Threat intelligence shared between providers: a guard's indicators out
//! as a STIX 2.1 bundle, another provider's bundle in, and sightings of the
//! indicators imported. A guard needs a consortium key (`[intel] key_file`
//! in its configuration) to export or import.
//!
//! Translation only: every rule is `ringfence_intel::guard`'s (the same
//! glue the command line and Python call): the export rule, the bundle's
//! contents, the checks an imported bundle passes, the messages.

use crate::buffer::rf_string;
use crate::error::{rf_status, Error, Result};
use crate::ffi;
use crate::guard::rf_guard;
use ringfence::intel::ExportOptions;
use ringfence_intel::guard::{self as exchange, ExchangeError};
use ringfence_intel::{Producer, Tlp};
use std::ffi::c_char;

/// A Traffic Light Protocol level, marking every object of a bundle: one of
/// the `RF_TLP_*` values, least restrictive first (TLP 2.0).
pub type rf_tlp = u8;
/// TLP:CLEAR: no limit on disclosure.
pub const RF_TLP_CLEAR: rf_tlp = 0;
/// TLP:GREEN: the recipient's community.
pub const RF_TLP_GREEN: rf_tlp = 1;
/// TLP:AMBER: the recipient's organization and its clients, on a need to
/// know; what a consortium's exchange is usually marked (and what
/// `rf_intel_options_init` sets).
pub const RF_TLP_AMBER: rf_tlp = 2;
/// TLP:AMBER+STRICT: the recipient's organization only.
pub const RF_TLP_AMBER_STRICT: rf_tlp = 3;
/// TLP:RED: the named recipients only.
pub const RF_TLP_RED: rf_tlp = 4;

/// The levels by `RF_TLP_*` code.
pub(crate) const TLPS: [Tlp; 5] = Tlp::ALL;

/// The level of an `RF_TLP_*` code, if it is one.
pub(crate) fn tlp(code: rf_tlp) -> Option<Tlp> {
    TLPS.get(usize::from(code)).copied()
}

fn tlp_arg(code: rf_tlp, name: &str) -> Result<Tlp> {
    tlp(code).ok_or_else(|| {
        Error::new(
            rf_status::RF_ERR_INVALID,
            format!(
                "`{name}` is {code}; it must be an RF_TLP_* value, {} to {}",
                RF_TLP_CLEAR, RF_TLP_RED
            ),
        )
    })
}

/// How `rf_guard_export_indicators` exports. Strings are UTF-8, pointer +
/// length, not NUL-terminated, read only during the call.
///
/// Start from `rf_intel_options_init`, which sets every option to its
/// default, then set the producer: a zeroed struct is not the defaults
/// (`min_score` 0 counts every cluster as a campaign, and `tlp` 0 is
/// TLP:CLEAR).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rf_intel_options {
    /// The producer's STIX identity, `"identity--<uuid>"` with a lower-case
    /// UUID of version 4 (required): configured once per deployment and
    /// never changed.
    pub producer_id: *const c_char,
    /// Bytes in `producer_id`.
    pub producer_id_len: usize,
    /// The producer's name, such as `"Provider A trust & safety"`
    /// (required).
    pub producer_name: *const c_char,
    /// Bytes in `producer_name`.
    pub producer_name_len: usize,
    /// The export's time, unix seconds: when the bundle is created, and the
    /// time the guard's present is taken to be; 0 for the guard's present.
    pub now_unix: f64,
    /// Clusters scoring at least this (0 to 1) count as operations; negative
    /// or NaN for the default (the guard's `share_at`).
    pub min_score: f64,
    /// Accounts of flagged clusters that must present a value before it is
    /// exported; 0 for the default (`intel.min_campaign_accounts`, 3).
    pub min_campaign_accounts: u32,
    /// The bundle's marking, an `RF_TLP_*` value (usually `RF_TLP_AMBER`).
    pub tlp: rf_tlp,
}

/// What `rf_guard_import_indicators` did with a bundle's indicators.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct rf_import_report {
    /// Indicators now held that were not before.
    pub added: usize,
    /// Indicators replaced by a later version.
    pub updated: usize,
    /// Indicators revoked by their producer.
    pub revoked: usize,
    /// Versions ignored: not newer than the one held, expired, of an
    /// untrusted producer or too light, a revocation by someone other than
    /// the creator, or of a kind this guard ignores (`intel.ignore_kinds`).
    pub ignored: usize,
}

impl From<ringfence::intel::ImportReport> for rf_import_report {
    fn from(r: ringfence::intel::ImportReport) -> Self {
        rf_import_report {
            added: r.added,
            updated: r.updated,
            revoked: r.revoked,
            ignored: r.ignored,
        }
    }
}

/// An exchange's failure as a status: nothing to export or report is
/// `RF_ERR_NOT_FOUND`; the rest (no consortium key, a bundle refused, an
/// option the guard refuses) `RF_ERR_INVALID`, with the core's message.
fn exchange_error(e: ExchangeError) -> Error {
    let status = match e {
        ExchangeError::Nothing(_) => rf_status::RF_ERR_NOT_FOUND,
        ExchangeError::NoKey
        | ExchangeError::Guard(_)
        | ExchangeError::Export(_)
        | ExchangeError::Bundle(_) => rf_status::RF_ERR_INVALID,
    };
    Error::new(status, e.to_string())
}

/// The unix time `now` names: 0 is the guard's present; otherwise a finite
/// time, not negative.
fn now_arg(g: &rf_guard, now: f64, name: &str) -> Result<f64> {
    if now == 0.0 {
        return Ok(exchange::now_of(g.guard()));
    }
    if now.is_finite() && now > 0.0 {
        return Ok(now);
    }
    Err(Error::new(
        rf_status::RF_ERR_INVALID,
        format!("`{name}` is {now}; it must be a unix time in seconds (0 for the guard's present)"),
    ))
}

/// A producer (or sighter) from two C strings.
///
/// # Safety
/// `id` and `name` are NULL or point to their lengths of readable bytes.
unsafe fn producer(
    id: *const c_char,
    id_len: usize,
    name: *const c_char,
    name_len: usize,
    names: (&str, &str),
) -> Result<Producer> {
    // SAFETY: per this function's contract.
    let (id, name) = unsafe {
        (
            ffi::str(id, id_len).map_err(|e| e.named(names.0))?,
            ffi::str(name, name_len).map_err(|e| e.named(names.1))?,
        )
    };
    Ok(Producer {
        identity_id: id.to_owned(),
        name: name.to_owned(),
    })
}

/// The export options C asked for, checked.
fn export_options(o: &rf_intel_options) -> Result<ExportOptions> {
    let min_score = if o.min_score.is_nan() || o.min_score < 0.0 {
        None
    } else if o.min_score <= 1.0 {
        Some(o.min_score)
    } else {
        return Err(Error::new(
            rf_status::RF_ERR_INVALID,
            format!(
                "`options.min_score` is {}; it must be between 0 and 1 (negative or NaN for the \
                 default)",
                o.min_score
            ),
        ));
    };
    Ok(ExportOptions {
        min_score,
        min_campaign_accounts: (o.min_campaign_accounts > 0).then_some(o.min_campaign_accounts),
        max_benign_share: None,
    })
}

/// Sets every export option to its default: no producer (set
/// `producer_id` and `producer_name` before exporting), `now_unix` 0 (the
/// guard's present), `min_score` -1 and `min_campaign_accounts` 0 (the
/// guard's configuration), `tlp` `RF_TLP_AMBER`.
///
/// Errors: `RF_ERR_NULL`.
///
/// # Safety
/// `options` is NULL or valid for writing an `rf_intel_options`.
#[no_mangle]
pub unsafe extern "C" fn rf_intel_options_init(options: *mut rf_intel_options) -> rf_status {
    ffi::boundary("rf_intel_options_init", || {
        let defaults = rf_intel_options {
            producer_id: std::ptr::null(),
            producer_id_len: 0,
            producer_name: std::ptr::null(),
            producer_name_len: 0,
            now_unix: 0.0,
            min_score: -1.0,
            min_campaign_accounts: 0,
            tlp: RF_TLP_AMBER,
        };
        // SAFETY: per this function's contract (above).
        unsafe { ffi::write(options, defaults) }.map_err(|e| e.named("options"))
    })
}

/// The values that linked the operations this guard caught (its flagged
/// clusters), hashed under the consortium key, as a STIX 2.1 bundle (JSON)
/// by the producer `options` names, created at `options->now_unix`, valid
/// from then for the guard's `link.horizon_secs`, marked `options->tlp`.
/// Only values that at least `min_campaign_accounts` accounts of flagged
/// clusters present, and few others, leave; no raw value, account name or
/// prompt is in the bundle.
///
/// On success `*out` holds the bundle, owned by the caller, who reads it
/// with `rf_string_data` and frees it with `rf_string_free`, and `*count`
/// (`count` may be NULL) the number of indicators in it. On failure `*out`
/// is set to NULL and `*count` to 0.
///
/// Errors: `RF_ERR_NULL`, `RF_ERR_UTF8` (naming the argument);
/// `RF_ERR_NOT_FOUND` when no value passes the export rule (the message
/// says so); `RF_ERR_INVALID` for a guard without a consortium key (set
/// `[intel] key_file` in its configuration), an option out of range
/// (`options.tlp`, `options.min_score`, `options.now_unix`) or a producer
/// identity that is not `identity--<lower-case UUID v4>`.
///
/// # Safety
/// `guard` is NULL or a live guard; `options` is NULL or points to an
/// `rf_intel_options` whose strings are NULL or point to their lengths of
/// readable bytes; `out` is NULL or valid for writing a pointer; `count` is
/// NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_export_indicators(
    guard: *const rf_guard,
    options: *const rf_intel_options,
    out: *mut *mut rf_string,
    count: *mut usize,
) -> rf_status {
    ffi::boundary("rf_guard_export_indicators", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            ffi::write(out, std::ptr::null_mut()).map_err(|e| e.named("out"))?;
            if !count.is_null() {
                ffi::write(count, 0).map_err(|e| e.named("count"))?;
            }
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let o = ffi::arg(options).map_err(|e| e.named("options"))?;
            let who = producer(
                o.producer_id,
                o.producer_id_len,
                o.producer_name,
                o.producer_name_len,
                ("options.producer_id", "options.producer_name"),
            )?;
            let tlp = tlp_arg(o.tlp, "options.tlp")?;
            let options = export_options(o)?;
            let now = now_arg(g, o.now_unix, "options.now_unix")?;
            let exported =
                exchange::export(g.guard(), &who, now, tlp, &options).map_err(exchange_error)?;
            let n = exported.indicators.len();
            ffi::write(out, ffi::into_handle(rf_string::new(exported.bundle)))
                .map_err(|e| e.named("out"))?;
            if !count.is_null() {
                ffi::write(count, n).map_err(|e| e.named("count"))?;
            }
            Ok(())
        }
    })
}

/// Imports another provider's bundle (`rf_guard_export_indicators` of a
/// guard with the same consortium key): UTF-8 JSON of `bundle_len` bytes at
/// `bundle`, not NUL-terminated, read only during the call, checked at
/// `now_unix` (unix seconds; 0 for the guard's present). From then on, an
/// account presenting one of its values is marked
/// (`RF_REASON_SHARED_INDICATOR`) and shares its operation's budget; an
/// indicator alone throttles, never denies, unless `intel.deny_alone_at`
/// says otherwise. Each producer weighs as `intel.trust` says (or
/// `intel.default_trust`, 0 by default: set one or the other, or every
/// indicator is ignored).
///
/// The bundle is taken whole or not at all: one that is malformed, hashed
/// under another consortium key, from the future, or larger than 16 MiB is
/// `RF_ERR_INVALID` (the message names the object and property at fault)
/// and leaves the guard as it was. On success `*report` (`report` may be
/// NULL) says what the import did; on failure it is zeroed.
///
/// Errors: `RF_ERR_NULL`, `RF_ERR_UTF8`, `RF_ERR_INVALID` (a refused
/// bundle, a guard without a consortium key, a bad `now_unix`, more
/// indicators than `intel.max_imports`).
///
/// # Safety
/// `guard` is NULL or a live guard; `bundle` is NULL or points to
/// `bundle_len` readable bytes; `report` is NULL or valid for writing an
/// `rf_import_report`.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_import_indicators(
    guard: *const rf_guard,
    bundle: *const c_char,
    bundle_len: usize,
    now_unix: f64,
    report: *mut rf_import_report,
) -> rf_status {
    ffi::boundary("rf_guard_import_indicators", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            if !report.is_null() {
                ffi::write(report, rf_import_report::default()).map_err(|e| e.named("report"))?;
            }
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let text = ffi::str(bundle, bundle_len).map_err(|e| e.named("bundle"))?;
            let now = now_arg(g, now_unix, "now_unix")?;
            let imported = exchange::import(g.guard(), text, now).map_err(exchange_error)?;
            if !report.is_null() {
                ffi::write(report, imported.report.into()).map_err(|e| e.named("report"))?;
            }
            Ok(())
        }
    })
}

/// The guard's sightings of the indicators it imported, as a STIX 2.1
/// bundle (JSON) of `sighting` objects by the sighter `sighter_id`
/// (`"identity--<uuid>"`) named `sighter_name` (both UTF-8, pointer +
/// length), at `now_unix` (unix seconds; 0 for the guard's present), marked
/// `tlp`: for each indicator that matched, how many requests and when
/// first and last, and no account.
///
/// On success `*out` holds the bundle, owned by the caller, who reads it
/// with `rf_string_data` and frees it with `rf_string_free`. On failure
/// `*out` is set to NULL.
///
/// Errors: `RF_ERR_NULL`, `RF_ERR_UTF8`; `RF_ERR_NOT_FOUND` when no
/// imported indicator has matched; `RF_ERR_INVALID` for a `tlp` that is not
/// an `RF_TLP_*` value, a bad `now_unix` or an unusable sighter identity.
///
/// # Safety
/// `guard` is NULL or a live guard; `sighter_id` and `sighter_name` are
/// NULL or point to their lengths of readable bytes; `out` is NULL or valid
/// for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_sightings(
    guard: *const rf_guard,
    sighter_id: *const c_char,
    sighter_id_len: usize,
    sighter_name: *const c_char,
    sighter_name_len: usize,
    now_unix: f64,
    tlp: rf_tlp,
    out: *mut *mut rf_string,
) -> rf_status {
    ffi::boundary("rf_guard_sightings", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            ffi::write(out, std::ptr::null_mut()).map_err(|e| e.named("out"))?;
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let who = producer(
                sighter_id,
                sighter_id_len,
                sighter_name,
                sighter_name_len,
                ("sighter_id", "sighter_name"),
            )?;
            let tlp = tlp_arg(tlp, "tlp")?;
            let now = now_arg(g, now_unix, "now_unix")?;
            let text = exchange::sightings(g.guard(), &who, now, tlp).map_err(exchange_error)?;
            ffi::write(out, ffi::into_handle(rf_string::new(text))).map_err(|e| e.named("out"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are the intel crate's levels, in its order.
    #[test]
    fn tlp_codes_are_the_levels() {
        let codes = [
            (RF_TLP_CLEAR, Tlp::Clear),
            (RF_TLP_GREEN, Tlp::Green),
            (RF_TLP_AMBER, Tlp::Amber),
            (RF_TLP_AMBER_STRICT, Tlp::AmberStrict),
            (RF_TLP_RED, Tlp::Red),
        ];
        assert_eq!(codes.len(), Tlp::ALL.len());
        for (code, level) in codes {
            assert_eq!(tlp(code), Some(level));
        }
        for bad in [5, 9, u8::MAX] {
            assert_eq!(tlp(bad), None);
            let e = tlp_arg(bad, "tlp").unwrap_err();
            assert_eq!(e.status, rf_status::RF_ERR_INVALID);
            assert!(
                e.message.starts_with(&format!("`tlp` is {bad};")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn options_map_to_the_cores() {
        let mut o = rf_intel_options {
            producer_id: std::ptr::null(),
            producer_id_len: 0,
            producer_name: std::ptr::null(),
            producer_name_len: 0,
            now_unix: 0.0,
            min_score: f64::NAN,
            min_campaign_accounts: 0,
            tlp: RF_TLP_AMBER,
        };
        assert_eq!(export_options(&o).unwrap(), ExportOptions::default());
        o.min_score = -1.0;
        o.min_campaign_accounts = 7;
        let e = export_options(&o).unwrap();
        assert_eq!((e.min_score, e.min_campaign_accounts), (None, Some(7)));
        o.min_score = 0.5;
        assert_eq!(export_options(&o).unwrap().min_score, Some(0.5));
        for bad in [1.5, f64::INFINITY] {
            o.min_score = bad;
            let e = export_options(&o).unwrap_err();
            assert_eq!(e.status, rf_status::RF_ERR_INVALID);
            assert!(e.message.contains("`options.min_score`"), "{}", e.message);
        }
    }

    #[test]
    fn exchange_errors_become_statuses() {
        let nothing = exchange_error(ExchangeError::Nothing("nothing to export".into()));
        assert_eq!(nothing.status, rf_status::RF_ERR_NOT_FOUND);
        assert_eq!(nothing.message, "nothing to export");
        let no_key = exchange_error(ExchangeError::NoKey);
        assert_eq!(no_key.status, rf_status::RF_ERR_INVALID);
        assert!(
            no_key.message.contains("[intel] key_file"),
            "{}",
            no_key.message
        );
    }
}
