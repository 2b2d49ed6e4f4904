//! Reading bundles back, under an [`ImportPolicy`].
//!
//! The whole bundle is rejected, with an error naming the object and the
//! property, if anything in it is malformed or unacceptable (design note §5):
//! a guard fed from it is never left half-updated.

mod at;
mod items;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{BundleError, BundleErrorKind as Kind};
use crate::ids::{id_type, is_id_of};
use crate::tlp::{expected_content, Expected, TLP_2_0_EXTENSION_ID};
use crate::{ImportPolicy, ParsedBundle, Tlp, SCO_TYPE};
use at::{show, At};

/// Reads a STIX 2.1 bundle of ringfence intelligence: exports, revocations,
/// sightings, or any bundle that carries them among other objects.
///
/// Returned: the ringfence indicators (one per id, the latest version), the
/// sightings (revoked ones left out), the ids of indicators with patterns of
/// other shapes (skipped, not rejected), and the bundle's TLP level. TLP 1.0
/// and 2.0 markings are both read; unknown object types and extensions are
/// ignored.
///
/// The bundle is rejected, whole, if it is: longer than
/// `policy.max_bytes` (checked before parsing); not JSON; not a bundle;
/// longer than `policy.max_objects` objects; or if any object has a
/// malformed type or id, a `created` or `modified` without milliseconds, a
/// `created`, `modified` or `valid_from` later than `now + max_skew_secs`, a
/// `modified` before its `created`; or if an `x-ringfence-fingerprint`
/// SCO or a ringfence pattern has a `key_id` other than `policy.key_id`, a
/// malformed kind, hmac or key_id, or (the SCO) an id that is not the UUIDv5
/// of its properties; or a ringfence pattern is not exactly the
/// three-comparison form; or a ringfence indicator lacks `created_by_ref`,
/// has `valid_until <= valid_from`, a confidence that is not an integer in
/// 0..=100, or two versions that disagree on `created` or `created_by_ref`;
/// or a sighting lacks `sighting_of_ref` or `created_by_ref`, or has a count
/// above 999,999,999 or `last_seen < first_seen`; or a TLP marking
/// definition says another level than its id.
pub fn parse_bundle(text: &str, policy: &ImportPolicy) -> Result<ParsedBundle, BundleError> {
    if text.len() > policy.max_bytes {
        return Err(BundleError::bundle(
            Kind::TooLarge,
            format!(
                "bundle is {} bytes, more than the limit of {} bytes",
                text.len(),
                policy.max_bytes
            ),
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| BundleError::bundle(Kind::Json, format!("bundle is not valid JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(BundleError::bundle(
            Kind::NotABundle,
            "not a STIX bundle: the JSON is not an object",
        ));
    };
    match top.get("type") {
        Some(Value::String(t)) if t == "bundle" => {}
        other => {
            let found = other.map_or_else(|| "no type".to_owned(), |t| format!("type {t}"));
            return Err(BundleError::bundle(
                Kind::NotABundle,
                format!("not a STIX bundle: {found}, not \"bundle\""),
            ));
        }
    }
    match top.get("id") {
        Some(Value::String(id)) if is_id_of(id, "bundle") => {}
        other => {
            let found = other.map_or_else(|| "missing".to_owned(), Value::to_string);
            return Err(BundleError::bundle(
                Kind::NotABundle,
                format!("not a STIX bundle: id {found} is not \"bundle--<uuid>\""),
            ));
        }
    }
    let objects: &[Value] = match top.get("objects") {
        None => &[],
        Some(Value::Array(objects)) => objects,
        Some(_) => {
            return Err(BundleError::bundle(
                Kind::NotABundle,
                "not a STIX bundle: objects is not an array",
            ));
        }
    };
    if objects.len() > policy.max_objects {
        return Err(BundleError::bundle(
            Kind::TooManyObjects,
            format!(
                "bundle has {} objects, more than the limit of {}",
                objects.len(),
                policy.max_objects
            ),
        ));
    }
    Reader::new(policy).read(objects)
}

/// The state of one import.
struct Reader<'p> {
    policy: &'p ImportPolicy,
    out: ParsedBundle,
    /// Index in `out.indicators` by id, with the bundle index of the
    /// version kept.
    versions: HashMap<String, (usize, usize)>,
    /// Identity names by id (the first object with the id).
    names: HashMap<String, String>,
    /// `indicates` relationships to campaigns: source, target, creator.
    indicates: Vec<(String, String, Option<String>)>,
    tlp: Option<Tlp>,
}

impl<'p> Reader<'p> {
    fn new(policy: &'p ImportPolicy) -> Self {
        Reader {
            policy,
            out: ParsedBundle::default(),
            versions: HashMap::new(),
            names: HashMap::new(),
            indicates: Vec::new(),
            tlp: None,
        }
    }

    fn read(mut self, objects: &[Value]) -> Result<ParsedBundle, BundleError> {
        for (index, object) in objects.iter().enumerate() {
            self.object(index, object)?;
        }
        for ind in &mut self.out.indicators {
            ind.producer_name = self.names.get(&ind.producer).cloned();
            ind.campaign = self
                .indicates
                .iter()
                .find(|(source, _, creator)| {
                    *source == ind.id && creator.as_deref() == Some(&ind.producer)
                })
                .map(|(_, target, _)| target.clone());
        }
        self.out.tlp = self.tlp;
        Ok(self.out)
    }

    fn mark(&mut self, tlp: Tlp) {
        self.tlp = self.tlp.max(Some(tlp));
    }

    /// Rejects a time later than now plus the allowed skew.
    fn not_future(&self, at: &At, name: &str, secs: Option<f64>) -> Result<(), BundleError> {
        let limit = self.policy.now + self.policy.max_skew_secs;
        match secs {
            Some(t) if t > limit => Err(at.err(
                Kind::FromTheFuture,
                Some(name),
                format!(
                    "{name} {} is from the future (now {}, allowed skew {} s)",
                    show(t),
                    show(self.policy.now),
                    self.policy.max_skew_secs
                ),
            )),
            _ => Ok(()),
        }
    }

    fn object(&mut self, index: usize, object: &Value) -> Result<(), BundleError> {
        let mut at = At { index, id: None };
        let Value::Object(o) = object else {
            return Err(at.err(Kind::Property, None, "is not a JSON object"));
        };
        let object_type = at.str(o, "type", "")?;
        let id = at.str(o, "id", "")?;
        at.id = Some(id);
        if id_type(id) != Some(object_type) {
            return Err(at.err(
                Kind::Id,
                Some("id"),
                format!("id {id:?} is not \"{object_type}--<uuid>\""),
            ));
        }

        // Common properties of every object.
        let created = at.time(o, "created", true)?;
        let modified = at.time(o, "modified", true)?;
        let valid_from = at.time(o, "valid_from", false)?;
        self.not_future(&at, "created", created)?;
        self.not_future(&at, "modified", modified)?;
        self.not_future(&at, "valid_from", valid_from)?;
        if let (Some(c), Some(m)) = (created, modified) {
            if m < c {
                return Err(at.err(
                    Kind::Interval,
                    Some("modified"),
                    format!("modified {} is before created {}", show(m), show(c)),
                ));
            }
        }
        match o.get("object_marking_refs") {
            None => {}
            Some(Value::Array(refs)) if refs.iter().all(Value::is_string) => {
                for tlp in refs
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(Tlp::from_marking_id)
                {
                    self.mark(tlp);
                }
            }
            Some(_) => {
                return Err(at.err(
                    Kind::Property,
                    Some("object_marking_refs"),
                    "object_marking_refs is not an array of ids",
                ))
            }
        }

        match object_type {
            "identity" => {
                if let Some(name) = at.opt_str(o, "name")? {
                    self.names
                        .entry(id.to_owned())
                        .or_insert_with(|| name.to_owned());
                }
            }
            "marking-definition" => self.marking(&at, o, id)?,
            SCO_TYPE => self.fingerprint(&at, o, id)?,
            "indicator" => self.indicator(&at, o, id, created, modified, valid_from)?,
            "relationship" => {
                let revoked = o.get("revoked").and_then(Value::as_bool).unwrap_or(false);
                if at.opt_str(o, "relationship_type")? == Some("indicates") && !revoked {
                    let source = at.str(o, "source_ref", "")?;
                    let target = at.str(o, "target_ref", "")?;
                    if is_id_of(target, "campaign") {
                        let creator = at.opt_str(o, "created_by_ref")?.map(str::to_owned);
                        self.indicates
                            .push((source.to_owned(), target.to_owned(), creator));
                    }
                }
            }
            "sighting" => self.sighting(&at, o)?,
            _ => {}
        }
        Ok(())
    }

    /// A TLP marking definition must say the level of its id.
    fn marking(&mut self, at: &At, o: &Map<String, Value>, id: &str) -> Result<(), BundleError> {
        let Some(expected) = expected_content(id) else {
            return Ok(());
        };
        let (said, want, property) = match expected {
            Expected::V2(want) => {
                let said = o
                    .get("extensions")
                    .and_then(|e| e.get(TLP_2_0_EXTENSION_ID))
                    .and_then(|e| e.get("tlp_2_0"))
                    .and_then(Value::as_str);
                (said, want, "extensions")
            }
            Expected::V1(want) => {
                let said = match o.get("definition_type").and_then(Value::as_str) {
                    Some("tlp") => o
                        .get("definition")
                        .and_then(|d| d.get("tlp"))
                        .and_then(Value::as_str),
                    _ => None,
                };
                (said, want, "definition")
            }
        };
        if said != Some(want) {
            return Err(at.err(
                Kind::Property,
                Some(property),
                format!(
                    "TLP marking definition says {} but its id is that of \"{want}\"",
                    said.map_or_else(|| "no TLP level".to_owned(), |s| format!("{s:?}"))
                ),
            ));
        }
        self.mark(Tlp::from_marking_id(id).expect("a TLP id"));
        Ok(())
    }
}
