//! A [`Guard`]'s intelligence as bundles (feature `guard`): export what it
//! caught, import what others caught, report sightings, revoke an earlier
//! export. The command line, the C ABI and the Python binding all go
//! through here.
//!
//! A guard keeps time on its own clock ([`Guard::clock_secs`]: from its
//! creation, or from a replay's start); bundles carry unix times. Each call
//! takes the unix time `now` that the guard's clock reads as its present,
//! and places every other time from there.

use crate::{
    parse_bundle, ExportIndicator, ExportMeta, ImportPolicy, ImportedIndicator, ParsedBundle,
    Producer, Sighting, Tlp,
};
use ringfence::guard::Guard;
use ringfence::intel::{ExportOptions, ExportedIndicator, ImportIndicator, ImportReport};
use std::fmt;

/// Why an exchange failed: what, and where.
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeError {
    /// The guard has no consortium key.
    NoKey,
    /// The guard refused (an export option out of range, an import over
    /// `max_imports`, …).
    Guard(String),
    /// The bundle could not be written.
    Export(crate::ExportError),
    /// The bundle was refused (malformed, another key, from the future,
    /// oversized).
    Bundle(crate::BundleError),
    /// Nothing to write (no indicator to export, none matched, none of
    /// the producer's to revoke).
    Nothing(String),
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::NoKey => {
                f.write_str("the guard has no consortium key (set `[intel] key_file`)")
            }
            ExchangeError::Guard(m) | ExchangeError::Nothing(m) => f.write_str(m),
            ExchangeError::Export(e) => write!(f, "cannot write the bundle: {e}"),
            ExchangeError::Bundle(e) => write!(f, "the bundle is refused: {e}"),
        }
    }
}

impl std::error::Error for ExchangeError {}

/// The guard's present in unix seconds: its clock placed by
/// [`Guard::unix_origin`] (a guard on the system clock, a replay), or the
/// system's time where the guard does not know its origin.
pub fn now_of(guard: &Guard) -> f64 {
    match guard.unix_origin() {
        Some(origin) => origin + guard.clock_secs(),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    }
}

/// A TLP level by its `tlp_2_0` name (`clear`, `green`, `amber`,
/// `amber+strict`, `red`; case-insensitive).
pub fn tlp_named(name: &str) -> Option<Tlp> {
    Tlp::ALL
        .into_iter()
        .find(|t| t.tlp_2_0().eq_ignore_ascii_case(name))
}

/// The unix time at which the guard's clock read 0: its own
/// ([`Guard::unix_origin`]), or placed by `now` (so that the same bundle
/// read twice gets the same times on the guard's clock).
fn origin_of(guard: &Guard, now: f64) -> f64 {
    guard
        .unix_origin()
        .unwrap_or_else(|| now - guard.clock_secs())
}

fn key_id(guard: &Guard) -> Result<[u8; 16], ExchangeError> {
    let hex = guard.intel_key_id().ok_or(ExchangeError::NoKey)?;
    ringfence::intel::unhex::<16>(&hex).map_err(|e| ExchangeError::Guard(e.to_string()))
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The STIX 2.1 bundle, JSON.
    pub bundle: String,
    /// What it holds, as the guard judged it.
    pub indicators: Vec<ExportedIndicator>,
}

/// The guard's indicators ([`Guard::export_indicators`]) as a STIX bundle
/// by `producer`, created at `now` (unix seconds), valid from then for the
/// guard's horizon, marked `tlp`. An export with nothing in it is
/// [`ExchangeError::Nothing`].
pub fn export(
    guard: &Guard,
    producer: &Producer,
    now: f64,
    tlp: Tlp,
    options: &ExportOptions,
) -> Result<Exported, ExchangeError> {
    let key_id = key_id(guard)?;
    let origin = origin_of(guard, now);
    let found = guard
        .export_indicators(options)
        .map_err(|e| ExchangeError::Guard(e.to_string()))?;
    if found.is_empty() {
        return Err(ExchangeError::Nothing(
            "nothing to export: no shared value passes the export rule (no flagged cluster, \
             too few of its accounts, or too many others)"
                .into(),
        ));
    }
    let indicators: Vec<ExportIndicator> = found
        .iter()
        .map(|e| ExportIndicator {
            kind: e.kind.clone(),
            hmac: e.token,
            confidence: e.confidence,
            campaign: e.campaign,
            first_seen: (e.first_seen + origin).min(now),
            last_seen: (e.last_seen + origin).min(now),
        })
        .collect();
    let meta = ExportMeta {
        producer: producer.clone(),
        key_id,
        created: now,
        valid_from: now,
        valid_until: now + guard.config().link.horizon_secs,
        tlp,
    };
    let bundle = crate::export_bundle(&meta, &indicators).map_err(ExchangeError::Export)?;
    Ok(Exported {
        bundle,
        indicators: found,
    })
}

/// Parses a bundle for the guard (checked against its key, at `now`, unix
/// seconds), into what [`Guard::import_indicators`] takes.
pub fn parse_for(
    guard: &Guard,
    text: &str,
    now: f64,
) -> Result<(ParsedBundle, Vec<ImportIndicator>), ExchangeError> {
    let key_id = key_id(guard)?;
    let origin = origin_of(guard, now);
    let parsed =
        parse_bundle(text, &ImportPolicy::new(key_id, now)).map_err(ExchangeError::Bundle)?;
    let list = parsed
        .indicators
        .iter()
        .map(|i| ImportIndicator {
            id: i.id.clone(),
            producer: i.producer.clone(),
            producer_name: i.producer_name.clone(),
            kind: i.kind.clone(),
            token: i.hmac,
            confidence: i.confidence,
            modified: i.modified - origin,
            valid_until: i.valid_until.map(|v| v - origin),
            revoked: i.revoked,
            campaign: i.campaign.clone(),
        })
        .collect();
    Ok((parsed, list))
}

/// What [`import`] did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The bundle as read.
    pub parsed: ParsedBundle,
    /// What the guard did with its indicators.
    pub report: ImportReport,
}

/// Imports a bundle into the guard, at `now` (unix seconds): all of it or,
/// on any error, none.
pub fn import(guard: &Guard, text: &str, now: f64) -> Result<Imported, ExchangeError> {
    let (parsed, list) = parse_for(guard, text, now)?;
    let report = guard
        .import_indicators(&list)
        .map_err(|e| ExchangeError::Guard(e.to_string()))?;
    Ok(Imported { parsed, report })
}

/// The guard's sightings of imported indicators ([`Guard::matched_indicators`])
/// as a STIX bundle by `sighter`, at `now` (unix seconds): counts and times,
/// no account. None matched is [`ExchangeError::Nothing`].
pub fn sightings(
    guard: &Guard,
    sighter: &Producer,
    now: f64,
    tlp: Tlp,
) -> Result<String, ExchangeError> {
    let origin = origin_of(guard, now);
    let list: Vec<Sighting> = guard
        .matched_indicators()
        .into_iter()
        .map(|m| Sighting {
            indicator_id: m.id,
            count: m.count,
            first_seen: (m.first_seen + origin).min(now),
            last_seen: (m.last_seen + origin).min(now),
        })
        .collect();
    if list.is_empty() {
        return Err(ExchangeError::Nothing(
            "no imported indicator has matched: no sighting to report".into(),
        ));
    }
    crate::sighting_bundle(sighter, now, tlp, &list).map_err(ExchangeError::Export)
}

/// Revokes indicators of an earlier export of `producer` (its bundle,
/// `text`, read under `key_id` at `now`, unix seconds): a bundle that
/// re-issues them with `revoked: true`, `modified` = `now`. `only` keeps
/// the indicators to revoke (by their STIX id); `None` revokes all of the
/// producer's in the bundle.
pub fn revoke(
    text: &str,
    key_id: [u8; 16],
    producer: &Producer,
    now: f64,
    only: Option<&[String]>,
) -> Result<String, ExchangeError> {
    let parsed =
        parse_bundle(text, &ImportPolicy::new(key_id, now)).map_err(ExchangeError::Bundle)?;
    let mine: Vec<&ImportedIndicator> = parsed
        .indicators
        .iter()
        .filter(|i| i.producer == producer.identity_id && !i.revoked)
        .filter(|i| only.is_none_or(|ids| ids.contains(&i.id)))
        .collect();
    if let Some(ids) = only {
        if let Some(missing) = ids.iter().find(|id| !mine.iter().any(|i| &i.id == *id)) {
            return Err(ExchangeError::Nothing(format!(
                "{missing} is not a live indicator of {} in the bundle",
                producer.identity_id
            )));
        }
    }
    let Some(first) = mine.first() else {
        return Err(ExchangeError::Nothing(format!(
            "the bundle has no live indicator of {}",
            producer.identity_id
        )));
    };
    // A revocation keeps each indicator's `created`: one export's at a time.
    if mine.iter().any(|i| i.created != first.created) {
        return Err(ExchangeError::Nothing(
            "the bundle holds indicators of more than one export: revoke them one export at a time (with `only`)".into(),
        ));
    }
    let meta = ExportMeta {
        producer: producer.clone(),
        key_id,
        created: first.created,
        valid_from: first.valid_from,
        valid_until: mine
            .iter()
            .filter_map(|i| i.valid_until)
            .fold(first.valid_from + 1.0, f64::max),
        tlp: parsed.tlp.unwrap_or(Tlp::Amber),
    };
    let indicators: Vec<ExportIndicator> = mine
        .iter()
        .map(|i| ExportIndicator {
            kind: i.kind.clone(),
            hmac: i.hmac,
            confidence: i.confidence,
            campaign: 0,
            first_seen: i.valid_from,
            last_seen: i.valid_from,
        })
        .collect();
    crate::revocation_bundle(&meta, &indicators, now).map_err(ExchangeError::Export)
}
