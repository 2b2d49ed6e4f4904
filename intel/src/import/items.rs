//! The objects ringfence reads: fingerprint SCOs, indicators and sightings.

use serde_json::{Map, Value};

use super::at::{show, At};
use super::Reader;
use crate::error::{BundleError, BundleErrorKind as Kind};
use crate::ids::{hex, id_type, sco_id, unhex};
use crate::pattern::{self, Shape};
use crate::{
    valid_kind, ImportedIndicator, ParsedSighting, DEFAULT_CONFIDENCE, MAX_SIGHTING_COUNT,
};

impl Reader<'_> {
    /// Checks kind, hmac and key_id values (from an SCO or a pattern) and
    /// the key; `prefix` names where they come from in messages.
    fn fingerprint_values(
        &self,
        at: &At,
        property: &str,
        prefix: &str,
        kind: &str,
        hmac: &str,
        key_id: &str,
    ) -> Result<[u8; 32], BundleError> {
        if !valid_kind(kind) {
            return Err(at.err(
                Kind::Property,
                Some(property),
                format!("{prefix}kind {kind:?} is not a kind name ([a-z0-9_+.-]{{1,64}})"),
            ));
        }
        let Some(hmac) = unhex::<32>(hmac) else {
            return Err(at.err(
                Kind::Property,
                Some(property),
                format!("{prefix}hmac {hmac:?} is not 64 lower-case hex digits"),
            ));
        };
        let Some(key) = unhex::<16>(key_id) else {
            return Err(at.err(
                Kind::Property,
                Some(property),
                format!("{prefix}key_id {key_id:?} is not 32 lower-case hex digits"),
            ));
        };
        if key != self.policy.key_id {
            return Err(at.err(
                Kind::ForeignKey,
                Some(property),
                format!(
                    "{prefix}key_id {key_id} is not this consortium's key (expected {})",
                    hex(&self.policy.key_id)
                ),
            ));
        }
        Ok(hmac)
    }

    /// An `x-ringfence-fingerprint` SCO: well-formed values under this
    /// consortium's key, and the UUIDv5 of them as its id.
    pub(super) fn fingerprint(
        &mut self,
        at: &At,
        o: &Map<String, Value>,
        id: &str,
    ) -> Result<(), BundleError> {
        let why = " (a property of every x-ringfence-fingerprint)";
        let kind = at.str(o, "kind", why)?;
        let hmac = at.str(o, "hmac", why)?;
        let key_id = at.str(o, "key_id", why)?;
        self.fingerprint_values(at, "key_id", "", kind, hmac, key_id)?;
        let expected = sco_id(kind, hmac, key_id);
        if id != expected {
            return Err(at.err(
                Kind::Id,
                Some("id"),
                format!("id is not the UUIDv5 of its properties kind, hmac and key_id (expected {expected})"),
            ));
        }
        Ok(())
    }

    /// An indicator: read if its pattern is the ringfence form, skipped if
    /// it is of another shape. `created`, `modified` and `valid_from` were
    /// read (and checked) with the common properties.
    pub(super) fn indicator(
        &mut self,
        at: &At,
        o: &Map<String, Value>,
        id: &str,
        created: Option<f64>,
        modified: Option<f64>,
        valid_from: Option<f64>,
    ) -> Result<(), BundleError> {
        let pattern_type = at.str(o, "pattern_type", " (required of an indicator)")?;
        let pattern = at.str(o, "pattern", " (required of an indicator)")?;
        if pattern_type != "stix" {
            self.out.skipped.push(id.to_owned());
            return Ok(());
        }
        let fp = match pattern::read(pattern) {
            Shape::Other => {
                self.out.skipped.push(id.to_owned());
                return Ok(());
            }
            Shape::Malformed(why) => {
                return Err(at.err(Kind::Pattern, Some("pattern"), format!("pattern {why}")))
            }
            Shape::Ringfence(fp) => fp,
        };
        let hmac =
            self.fingerprint_values(at, "pattern", "pattern: ", &fp.kind, &fp.hmac, &fp.key_id)?;
        let producer = at.reference(
            o,
            "created_by_ref",
            "identity",
            ": a ringfence indicator must name its producer",
        )?;
        let missing = |name: &str| {
            at.err(
                Kind::Property,
                Some(name),
                format!("{name} is missing (required of an indicator)"),
            )
        };
        let created = created.ok_or_else(|| missing("created"))?;
        let modified = modified.ok_or_else(|| missing("modified"))?;
        let valid_from = valid_from.ok_or_else(|| missing("valid_from"))?;
        let valid_until = at.time(o, "valid_until", false)?;
        if let Some(until) = valid_until {
            if until <= valid_from {
                return Err(at.err(
                    Kind::Interval,
                    Some("valid_until"),
                    format!(
                        "valid_until {} is not later than valid_from {}",
                        show(until),
                        show(valid_from)
                    ),
                ));
            }
        }
        let confidence = match o.get("confidence") {
            None => DEFAULT_CONFIDENCE,
            Some(v) => match v.as_u64() {
                Some(c) if c <= 100 => c as u8,
                _ => {
                    return Err(at.err(
                        Kind::Confidence,
                        Some("confidence"),
                        format!("confidence {v} is not an integer in 0..=100"),
                    ))
                }
            },
        };
        let revoked = match o.get("revoked") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(at.err(
                    Kind::Property,
                    Some("revoked"),
                    format!("revoked {v} is not a boolean"),
                ));
            }
        };
        let indicator = ImportedIndicator {
            id: id.to_owned(),
            producer: producer.to_owned(),
            producer_name: None,
            kind: fp.kind,
            hmac,
            confidence,
            created,
            modified,
            valid_from,
            valid_until,
            revoked,
            campaign: None,
        };
        self.keep_latest(at, indicator)
    }

    /// Adds an indicator, or replaces an earlier version of it if this one
    /// is later; versions must agree on creator and `created`.
    fn keep_latest(&mut self, at: &At, indicator: ImportedIndicator) -> Result<(), BundleError> {
        let Some(&(slot, first_index)) = self.versions.get(&indicator.id) else {
            self.versions
                .insert(indicator.id.clone(), (self.out.indicators.len(), at.index));
            self.out.indicators.push(indicator);
            return Ok(());
        };
        let kept = &self.out.indicators[slot];
        if kept.producer != indicator.producer {
            return Err(at.err(
                Kind::Conflict,
                Some("created_by_ref"),
                format!(
                    "created_by_ref {} differs from {} of object {first_index}, another version of this \
                     indicator (only the creator may version an object)",
                    indicator.producer, kept.producer
                ),
            ));
        }
        if kept.created != indicator.created {
            return Err(at.err(
                Kind::Conflict,
                Some("created"),
                format!(
                    "created {} differs from {} of object {first_index}, another version of this indicator",
                    show(indicator.created),
                    show(kept.created)
                ),
            ));
        }
        if indicator.modified > kept.modified {
            self.versions.insert(indicator.id.clone(), (slot, at.index));
            self.out.indicators[slot] = indicator;
        }
        Ok(())
    }

    /// A sighting: what was sighted, by whom, how often, when.
    pub(super) fn sighting(&mut self, at: &At, o: &Map<String, Value>) -> Result<(), BundleError> {
        let sighting_of = at.str(o, "sighting_of_ref", " (required of a sighting)")?;
        if id_type(sighting_of).is_none() {
            return Err(at.err(
                Kind::Id,
                Some("sighting_of_ref"),
                format!("sighting_of_ref {sighting_of:?} is not \"<type>--<uuid>\""),
            ));
        }
        let sighter = at.reference(
            o,
            "created_by_ref",
            "identity",
            ": a sighting must name its sighter",
        )?;
        let count = match o.get("count") {
            None => 1,
            Some(v) => match v.as_u64() {
                Some(c) if c <= MAX_SIGHTING_COUNT => c,
                _ => {
                    return Err(at.err(
                        Kind::Property,
                        Some("count"),
                        format!("count {v} is not an integer in 0..={MAX_SIGHTING_COUNT}"),
                    ))
                }
            },
        };
        let first_seen = at.time(o, "first_seen", false)?;
        let last_seen = at.time(o, "last_seen", false)?;
        if let (Some(first), Some(last)) = (first_seen, last_seen) {
            if last < first {
                return Err(at.err(
                    Kind::Interval,
                    Some("last_seen"),
                    format!(
                        "last_seen {} is before first_seen {}",
                        show(last),
                        show(first)
                    ),
                ));
            }
        }
        if o.get("revoked").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        self.out.sightings.push(ParsedSighting {
            sighting_of: sighting_of.to_owned(),
            sighter: sighter.to_owned(),
            count,
            first_seen,
            last_seen,
        });
        Ok(())
    }
}
