//! Writing bundles: exports, revocations and sightings.
//!
//! Every object is a struct whose field order is its key order in the
//! output, serialized compact; so a bundle is a deterministic function of
//! its inputs (its own id included, a digest of its objects).

use std::collections::HashMap;

use crate::error::{ExportError, ExportErrorKind as Kind};
use crate::ids::{campaign_id, digest_id, hex, indicator_id, is_id_of, is_v4_id_of, sco_id};
use crate::objects::{
    Campaign, ExtensionDefinition, Fingerprint, Grouping, Identity, Indicator, NewSco, Objects,
    Relationship, SightingObject,
};
use crate::time::{format_compact, format_ms, secs_to_ms};
use crate::{
    pattern, valid_kind, ExportIndicator, ExportMeta, Producer, Sighting, Tlp,
    EXTENSION_DEFINITION_ID, EXTENSION_SCHEMA_URL, MAX_SIGHTING_COUNT, RINGFENCE_IDENTITY_ID,
    SCO_TYPE,
};

/// The creation time of the code base's own objects (the "ringfence
/// project" identity and the extension definition).
const FIXED_CREATED: &str = "2025-01-01T00:00:00.000Z";

const EXTENSION_DESCRIPTION: &str = "New SCO: HMAC-SHA256 under a consortium key of a value shared by \
accounts of a distillation operation. kind: the guard kind name (payment, device, ip24, ja4, system, \
template, ...); hmac: 64 hex; key_id: fingerprint of the consortium key (32 hex). ID contributing \
properties: kind, hmac, key_id.";

/// The extension-definition object of [`SCO_TYPE`](crate::SCO_TYPE), as
/// compact JSON, byte for byte as every export carries it: a constant of the
/// code base (fixed id, timestamps and creator), so that all deployments
/// emit the same object under its id.
pub fn extension_definition() -> String {
    serde_json::to_string(&ExtensionDefinition {
        object_type: "extension-definition",
        spec_version: "2.1",
        id: EXTENSION_DEFINITION_ID,
        created_by_ref: RINGFENCE_IDENTITY_ID,
        created: FIXED_CREATED,
        modified: FIXED_CREATED,
        name: SCO_TYPE,
        description: EXTENSION_DESCRIPTION,
        schema: EXTENSION_SCHEMA_URL,
        version: "1.0.0",
        extension_types: ["new-sco"],
    })
    .expect("a fixed object serializes")
}

/// Milliseconds of a time argument, or an error naming it.
fn ms(secs: f64, what: &str) -> Result<i64, ExportError> {
    secs_to_ms(secs).ok_or_else(|| {
        ExportError::new(
            Kind::Time,
            format!("{what} {secs} is not a time between the years 0000 and 9999"),
        )
    })
}

/// Checks a producer (or sighter): a v4 identity id and a name.
fn check_producer(producer: &Producer, role: &str) -> Result<(), ExportError> {
    if !is_v4_id_of(&producer.identity_id, "identity") {
        return Err(ExportError::new(
            Kind::Producer,
            format!(
                "{role}.identity_id {:?} is not \"identity--<uuid>\" with a lower-case UUID of version 4",
                producer.identity_id
            ),
        ));
    }
    if producer.name.trim().is_empty() {
        return Err(ExportError::new(
            Kind::Producer,
            format!("{role}.name is empty"),
        ));
    }
    Ok(())
}

fn identity<'a>(producer: &'a Producer, created: &'a str) -> Identity<'a> {
    Identity {
        object_type: "identity",
        spec_version: "2.1",
        id: &producer.identity_id,
        created,
        modified: created,
        name: &producer.name,
        identity_class: "organization",
    }
}

/// The indicator `name` of a kind: fixed templates, the kind name otherwise.
fn indicator_name(kind: &str) -> String {
    match kind {
        "payment" => "ringfence: shared payment card".into(),
        "device" => "ringfence: shared device fingerprint".into(),
        "ip24" => "ringfence: shared IPv4 /24 network".into(),
        "ja4" => "ringfence: shared TLS client fingerprint (JA4)".into(),
        "system" => "ringfence: shared system prompt".into(),
        "template" => "ringfence: prompt-template band".into(),
        other => format!("ringfence: shared {other} value"),
    }
}

/// An export's checked arguments.
struct Checked<'a> {
    meta: &'a ExportMeta,
    created: String,
    valid_from: String,
    valid_until: String,
    key_id: String,
    /// Per indicator: its id and the hex of its hmac.
    items: Vec<(String, String)>,
}

/// Checks the meta and the indicators of an export or a revocation.
fn check<'a>(
    meta: &'a ExportMeta,
    indicators: &[ExportIndicator],
    what: &str,
) -> Result<Checked<'a>, ExportError> {
    check_producer(&meta.producer, "producer")?;
    let created = ms(meta.created, "created")?;
    let valid_from = ms(meta.valid_from, "valid_from")?;
    let valid_until = ms(meta.valid_until, "valid_until")?;
    if valid_until <= valid_from {
        return Err(ExportError::new(
            Kind::Interval,
            format!(
                "valid_until {} is not later than valid_from {} (at millisecond precision)",
                format_ms(valid_until),
                format_ms(valid_from)
            ),
        ));
    }
    if indicators.is_empty() {
        return Err(ExportError::new(
            Kind::Empty,
            format!("no indicators to {what}"),
        ));
    }
    let mut seen: HashMap<(&str, &[u8; 32]), usize> = HashMap::new();
    let mut items = Vec::with_capacity(indicators.len());
    for (i, ind) in indicators.iter().enumerate() {
        let at = format!(
            "indicator {i} ({})",
            if valid_kind(&ind.kind) {
                &ind.kind
            } else {
                "?"
            }
        );
        if !valid_kind(&ind.kind) {
            return Err(ExportError::new(
                Kind::Kind,
                format!(
                    "{at}: kind {:?} is not a kind name ([a-z0-9_+.-]{{1,64}})",
                    ind.kind
                ),
            ));
        }
        if ind.confidence > 100 {
            return Err(ExportError::new(
                Kind::Confidence,
                format!("{at}: confidence {} is outside 0..=100", ind.confidence),
            ));
        }
        let first = ms(ind.first_seen, &format!("{at}: first_seen"))?;
        let last = ms(ind.last_seen, &format!("{at}: last_seen"))?;
        if last < first {
            return Err(ExportError::new(
                Kind::Interval,
                format!(
                    "{at}: last_seen {} is before first_seen {}",
                    format_ms(last),
                    format_ms(first)
                ),
            ));
        }
        if let Some(j) = seen.insert((&ind.kind, &ind.hmac), i) {
            return Err(ExportError::new(
                Kind::Duplicate,
                format!(
                    "{at}: same kind and hmac as indicator {j} (one indicator per fingerprint)"
                ),
            ));
        }
        items.push((
            indicator_id(&meta.producer.identity_id, &ind.kind, &ind.hmac),
            hex(&ind.hmac),
        ));
    }
    Ok(Checked {
        meta,
        created: format_ms(created),
        valid_from: format_compact(valid_from),
        valid_until: format_compact(valid_until),
        key_id: hex(&meta.key_id),
        items,
    })
}

impl Checked<'_> {
    /// The indicator object of input `i`, at version `modified`.
    fn indicator<'s>(
        &'s self,
        ind: &ExportIndicator,
        i: usize,
        modified: &'s str,
        revoked: bool,
    ) -> Indicator<'s> {
        let (id, hmac) = &self.items[i];
        Indicator {
            object_type: "indicator",
            spec_version: "2.1",
            id,
            created_by_ref: &self.meta.producer.identity_id,
            created: &self.created,
            modified,
            revoked,
            name: indicator_name(&ind.kind),
            description: format!(
                "HMAC-SHA256 under consortium key {} of a {} value shared by a distillation operation.",
                self.key_id, ind.kind
            ),
            indicator_types: ["malicious-activity"],
            pattern: pattern::write(&ind.kind, hmac, &self.key_id),
            pattern_type: "stix",
            pattern_version: "2.1",
            valid_from: &self.valid_from,
            valid_until: &self.valid_until,
            confidence: ind.confidence,
            object_marking_refs: [self.meta.tlp.marking_id()],
        }
    }
}

/// Writes one export as a STIX 2.1 bundle: the producer's `identity`, the
/// "ringfence project" identity, the TLP 2.0 marking, the extension
/// definition, one `campaign` per distinct [`ExportIndicator::campaign`], one
/// `x-ringfence-fingerprint` SCO and one `indicator` per input (id
/// [`indicator_id`]), an `indicates` relationship from each indicator to its
/// campaign, and one `grouping` of the campaigns, indicators and SCOs.
///
/// Errors: a producer identity id that is not a v4 `identity--<uuid>`, an
/// empty producer name, a kind name outside `[a-z0-9_+.-]{1,64}`, a
/// confidence above 100, a time that is not finite or outside the years
/// 0000-9999, `valid_until <= valid_from`, `last_seen < first_seen`, two
/// inputs with the same kind and hmac, no inputs.
pub fn export_bundle(
    meta: &ExportMeta,
    indicators: &[ExportIndicator],
) -> Result<String, ExportError> {
    let c = check(meta, indicators, "export")?;
    let producer = &meta.producer.identity_id;
    let marking = [meta.tlp.marking_id()];

    // Campaigns in order of first appearance: id, first_seen, last_seen,
    // confidence (the earliest, the latest, the highest of its indicators).
    let mut campaigns: Vec<(String, i64, i64, u8)> = Vec::new();
    let mut campaign_of = Vec::with_capacity(indicators.len());
    let mut index: HashMap<u64, usize> = HashMap::new();
    for ind in indicators {
        let first = secs_to_ms(ind.first_seen).expect("checked");
        let last = secs_to_ms(ind.last_seen).expect("checked");
        let k = *index.entry(ind.campaign).or_insert_with(|| {
            campaigns.push((
                campaign_id(producer, ind.campaign),
                first,
                last,
                ind.confidence,
            ));
            campaigns.len() - 1
        });
        let entry = &mut campaigns[k];
        entry.1 = entry.1.min(first);
        entry.2 = entry.2.max(last);
        entry.3 = entry.3.max(ind.confidence);
        campaign_of.push(k);
    }

    let mut out = Objects::default();
    out.push(&identity(&meta.producer, &c.created));
    out.push(&Identity {
        object_type: "identity",
        spec_version: "2.1",
        id: RINGFENCE_IDENTITY_ID,
        created: FIXED_CREATED,
        modified: FIXED_CREATED,
        name: "ringfence project",
        identity_class: "system",
    });
    out.push(&meta.tlp.marking_object());
    out.0.push(extension_definition());
    for (id, first, last, confidence) in &campaigns {
        out.push(&Campaign {
            object_type: "campaign",
            spec_version: "2.1",
            id,
            created_by_ref: producer,
            created: &c.created,
            modified: &c.created,
            // 8 hex digits of the campaign's (hashed) id, never the anchor.
            name: format!(
                "distillation operation op-{}",
                &id["campaign--".len()..][..8]
            ),
            first_seen: format_compact(*first),
            last_seen: format_compact(*last),
            confidence: *confidence,
            object_marking_refs: marking,
        });
    }
    let sco_ids: Vec<String> = indicators
        .iter()
        .zip(&c.items)
        .map(|(ind, (_, hmac))| sco_id(&ind.kind, hmac, &c.key_id))
        .collect();
    for ((ind, (_, hmac)), id) in indicators.iter().zip(&c.items).zip(&sco_ids) {
        out.push(&Fingerprint {
            object_type: SCO_TYPE,
            spec_version: "2.1",
            id,
            kind: &ind.kind,
            hmac,
            key_id: &c.key_id,
            extensions: [(
                EXTENSION_DEFINITION_ID,
                NewSco {
                    extension_type: "new-sco",
                },
            )]
            .into_iter()
            .collect(),
        });
    }
    for (i, ind) in indicators.iter().enumerate() {
        out.push(&c.indicator(ind, i, &c.created, false));
    }
    for ((id, _), &k) in c.items.iter().zip(&campaign_of) {
        let target = &campaigns[k].0;
        let rel_id = digest_id(
            "relationship",
            "indicates",
            &[producer.as_bytes(), id.as_bytes(), target.as_bytes()],
        );
        out.push(&Relationship {
            object_type: "relationship",
            spec_version: "2.1",
            id: &rel_id,
            created_by_ref: producer,
            created: &c.created,
            modified: &c.created,
            relationship_type: "indicates",
            source_ref: id,
            target_ref: target,
            object_marking_refs: marking,
        });
    }
    let object_refs: Vec<&str> = campaigns
        .iter()
        .map(|c| c.0.as_str())
        .chain(c.items.iter().map(|(id, _)| id.as_str()))
        .chain(sco_ids.iter().map(String::as_str))
        .collect();
    let mut parts: Vec<&[u8]> = vec![producer.as_bytes(), c.created.as_bytes()];
    parts.extend(object_refs.iter().map(|r| r.as_bytes()));
    let grouping_id = digest_id("grouping", "export", &parts);
    let n = indicators.len();
    let m = campaigns.len();
    out.push(&Grouping {
        object_type: "grouping",
        spec_version: "2.1",
        id: &grouping_id,
        created_by_ref: producer,
        created: &c.created,
        modified: &c.created,
        name: format!(
            "ringfence export {}: {n} indicator{}, {m} operation{}",
            c.created,
            if n == 1 { "" } else { "s" },
            if m == 1 { "" } else { "s" }
        ),
        context: "suspicious-activity",
        object_refs,
        object_marking_refs: marking,
    });
    Ok(out.into_bundle())
}

/// The same indicators as [`export_bundle`] writes for `meta` (same ids and
/// `created`: pass the `meta` of the original export), re-issued with
/// `revoked: true` and `modified` = `revoked_at`, bundled with the
/// producer's `identity` and the TLP marking.
///
/// Errors: those of [`export_bundle`], and a `revoked_at` not later than
/// `meta.created` (at millisecond precision).
pub fn revocation_bundle(
    meta: &ExportMeta,
    indicators: &[ExportIndicator],
    revoked_at: f64,
) -> Result<String, ExportError> {
    let c = check(meta, indicators, "revoke")?;
    let revoked = ms(revoked_at, "revoked_at")?;
    if revoked <= secs_to_ms(meta.created).expect("checked") {
        return Err(ExportError::new(
            Kind::Interval,
            format!(
                "revoked_at {} is not later than the indicators' created {} (at millisecond precision)",
                format_ms(revoked),
                c.created
            ),
        ));
    }
    let modified = format_ms(revoked);
    let mut out = Objects::default();
    // The identity as the original export wrote it.
    out.push(&identity(&meta.producer, &c.created));
    out.push(&meta.tlp.marking_object());
    for (i, ind) in indicators.iter().enumerate() {
        out.push(&c.indicator(ind, i, &modified, true));
    }
    Ok(out.into_bundle())
}

/// Writes sightings of indicators by `sighter` as a STIX 2.1 bundle: the
/// sighter's `identity`, the TLP 2.0 marking and one `sighting` per input,
/// with `where_sighted_refs` = the sighter and `count` clamped to
/// [`MAX_SIGHTING_COUNT`]. `created` (unix seconds) is the report time.
///
/// Errors: a sighter identity id that is not a v4 `identity--<uuid>`, an
/// empty sighter name, an indicator id that is not `indicator--<uuid>`, a
/// time that is not finite or outside the years 0000-9999, `last_seen <
/// first_seen`, no sightings.
pub fn sighting_bundle(
    sighter: &Producer,
    created: f64,
    tlp: Tlp,
    sightings: &[Sighting],
) -> Result<String, ExportError> {
    check_producer(sighter, "sighter")?;
    let created_ms = ms(created, "created")?;
    if sightings.is_empty() {
        return Err(ExportError::new(Kind::Empty, "no sightings to report"));
    }
    let created = format_ms(created_ms);
    let mut out = Objects::default();
    out.push(&identity(sighter, &created));
    out.push(&tlp.marking_object());
    for (i, s) in sightings.iter().enumerate() {
        if !is_id_of(&s.indicator_id, "indicator") {
            return Err(ExportError::new(
                Kind::Reference,
                format!(
                    "sighting {i}: indicator_id {:?} is not \"indicator--<uuid>\"",
                    s.indicator_id
                ),
            ));
        }
        let first = ms(
            s.first_seen,
            &format!("sighting {i} ({}): first_seen", s.indicator_id),
        )?;
        let last = ms(
            s.last_seen,
            &format!("sighting {i} ({}): last_seen", s.indicator_id),
        )?;
        if last < first {
            return Err(ExportError::new(
                Kind::Interval,
                format!(
                    "sighting {i} ({}): last_seen {} is before first_seen {}",
                    s.indicator_id,
                    format_ms(last),
                    format_ms(first)
                ),
            ));
        }
        let index = (i as u64).to_le_bytes();
        let id = digest_id(
            "sighting",
            "sighting",
            &[
                sighter.identity_id.as_bytes(),
                created.as_bytes(),
                &index,
                s.indicator_id.as_bytes(),
            ],
        );
        out.push(&SightingObject {
            object_type: "sighting",
            spec_version: "2.1",
            id: &id,
            created_by_ref: &sighter.identity_id,
            created: &created,
            modified: &created,
            sighting_of_ref: &s.indicator_id,
            count: s.count.min(MAX_SIGHTING_COUNT),
            first_seen: format_compact(first),
            last_seen: format_compact(last),
            where_sighted_refs: [&sighter.identity_id],
            object_marking_refs: [tlp.marking_id()],
        });
    }
    Ok(out.into_bundle())
}
