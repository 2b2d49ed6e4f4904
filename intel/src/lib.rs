//! STIX 2.1 bundles for ringfence threat intelligence.
//!
//! Providers of an LLM API who share a consortium key exchange what their
//! guards learned about a distillation operation as *keyed fingerprints*:
//! HMAC-SHA256 under the consortium key of a value the operation's accounts
//! shared (a payment card, a device, a /24 network, a JA4 TLS fingerprint, a
//! system prompt, a prompt-template band, …). This crate is the format layer
//! of that exchange, and nothing else: the core computes the hashes; here
//! they become STIX 2.1 JSON and back.
//!
//! * [`export_bundle`] writes one export: the producer's `identity`, the TLP
//!   2.0 marking, the `extension-definition` of the custom observable, one
//!   `campaign` per operation, one `x-ringfence-fingerprint` SCO and one
//!   `indicator` per fingerprint, an `indicates` relationship from each
//!   indicator to its campaign, and one `grouping` of it all.
//! * [`revocation_bundle`] withdraws indicators: the same ids and `created`,
//!   `revoked: true`.
//! * [`sighting_bundle`] reports matches of someone else's indicators.
//! * [`parse_bundle`] reads any of them back under an [`ImportPolicy`], and
//!   rejects a bundle, whole, that is oversized, hashed under another
//!   consortium key, from the future, or malformed, with an error that names
//!   the object and property.
//!
//! The format follows `docs/design/intel-stix.md`; the bundles pass the OASIS
//! validator (`stix2-validator`, strict) and round-trip through `stix2`
//! (`python/tests/test_stix.py`). Names and descriptions are written from
//! fixed templates, kind names and hashes only: a bundle carries no raw value.
//!
//! ```
//! use ringfence_intel::*;
//!
//! let meta = ExportMeta {
//!     producer: Producer {
//!         identity_id: "identity--3dff565e-7265-4139-9cb0-eceed191fca9".into(),
//!         name: "Provider A trust & safety".into(),
//!     },
//!     key_id: [0xfa; 16],
//!     created: 1_740_830_400.0,
//!     valid_from: 1_740_787_200.0,
//!     valid_until: 1_743_379_200.0,
//!     tlp: Tlp::Amber,
//! };
//! let indicator = ExportIndicator {
//!     kind: "payment".into(),
//!     hmac: [7; 32],
//!     confidence: 85,
//!     campaign: 42,
//!     first_seen: 1_740_009_600.0,
//!     last_seen: 1_740_787_200.0,
//! };
//! let text = export_bundle(&meta, &[indicator]).unwrap();
//! let parsed = parse_bundle(&text, &ImportPolicy::new([0xfa; 16], 1_740_830_400.0)).unwrap();
//! assert_eq!(parsed.indicators[0].hmac, [7; 32]);
//! assert_eq!(parsed.tlp, Some(Tlp::Amber));
//! ```

#![warn(missing_docs)]

mod error;
mod export;
#[cfg(feature = "guard")]
pub mod guard;
mod ids;
mod import;
mod objects;
mod pattern;
mod time;
mod tlp;

pub use error::{BundleError, BundleErrorKind, ExportError, ExportErrorKind};
pub use export::{export_bundle, extension_definition, revocation_bundle, sighting_bundle};
pub use ids::{campaign_id, indicator_id, sco_id};
pub use import::parse_bundle;
pub use tlp::{Tlp, TLP_2_0_EXTENSION_ID};

/// The type of the custom observable that carries a keyed fingerprint.
pub const SCO_TYPE: &str = "x-ringfence-fingerprint";

/// The id of the extension definition that defines [`SCO_TYPE`]: a constant
/// of the code base, written byte for byte by every deployment.
pub const EXTENSION_DEFINITION_ID: &str =
    "extension-definition--0b6a1f64-8c2e-4d7a-b5f3-2e9c4a7d1b58";

/// The id of the "ringfence project" identity, the creator of the extension
/// definition.
pub const RINGFENCE_IDENTITY_ID: &str = "identity--5f0c2a8e-4b6d-4e1f-9a3c-7d2b8e6f1a40";

/// The JSON schema of [`SCO_TYPE`] (`intel/schemas/x-ringfence-fingerprint.json`
/// in the repository), named by the extension definition.
pub const EXTENSION_SCHEMA_URL: &str =
    "https://example.invalid/ringfence/intel/schemas/x-ringfence-fingerprint.json";

/// The confidence given to an imported indicator that states none: 50, the
/// middle of the "Med" band (30-69) of STIX 2.1 Appendix A's
/// None/Low/Med/High scale. An absent `confidence` means "unspecified", not
/// "no confidence" (0), so the neutral middle is taken; the importer's trust
/// in the producer still scales it.
pub const DEFAULT_CONFIDENCE: u8 = 50;

/// The largest `count` of a sighting (STIX 2.1 §5.2); larger counts are
/// clamped to it on export and rejected on import.
pub const MAX_SIGHTING_COUNT: u64 = 999_999_999;

/// A producer (or sighter) of intelligence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Producer {
    /// Its STIX identity id, `"identity--<uuid>"`: configured once per
    /// deployment and never changed; the `created_by_ref` of all it creates.
    /// Exports require a lower-case UUID of version 4.
    pub identity_id: String,
    /// Its name, written to its `identity` object (e.g. "Provider A trust &
    /// safety").
    pub name: String,
}

/// One fingerprint to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportIndicator {
    /// The guard kind name: `payment`, `device`, `ip24`, `ja4`, `system`,
    /// `template`, `ja4+ip24`, … (`[a-z0-9_+.-]{1,64}`).
    pub kind: String,
    /// The keyed hash computed by the core (HMAC-SHA256 under the consortium
    /// key).
    pub hmac: [u8; 32],
    /// The evidence weight, 0..=100 (STIX `confidence`).
    pub confidence: u8,
    /// The producer's local operation anchor: indicators with equal
    /// `campaign` go to one `campaign` object, whose id is
    /// [`campaign_id`]`(producer, campaign)`. The anchor itself is not
    /// written.
    pub campaign: u64,
    /// When the value was first seen, unix seconds (the campaign's
    /// `first_seen` is the earliest of its indicators').
    pub first_seen: f64,
    /// When the value was last seen, unix seconds, not before `first_seen`
    /// (the campaign's `last_seen` is the latest of its indicators').
    pub last_seen: f64,
}

/// What an export says about all its indicators.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMeta {
    /// Who exports.
    pub producer: Producer,
    /// The fingerprint of the consortium key (computed by the core), written
    /// to every SCO and pattern as 32 hex digits.
    pub key_id: [u8; 16],
    /// The export time, unix seconds: `created` and `modified` of every
    /// object (millisecond precision). A later export of the same indicator
    /// is a new version of it only if it keeps `created`: pass the time of
    /// the first export where that matters, as [`revocation_bundle`] must.
    pub created: f64,
    /// The indicators' `valid_from`, unix seconds.
    pub valid_from: f64,
    /// The indicators' `valid_until`, unix seconds; must be later than
    /// `valid_from` (at millisecond precision).
    pub valid_until: f64,
    /// The marking of every object that can carry one.
    pub tlp: Tlp,
}

/// A report that an indicator matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The indicator sighted, `"indicator--<uuid>"` (usually another
    /// producer's, and not in the bundle).
    pub indicator_id: String,
    /// How many requests matched (clamped to [`MAX_SIGHTING_COUNT`]); 0 means
    /// "not seen".
    pub count: u64,
    /// The first match, unix seconds.
    pub first_seen: f64,
    /// The last match, unix seconds, not before `first_seen`.
    pub last_seen: f64,
}

/// What [`parse_bundle`] accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPolicy {
    /// The importer's consortium key fingerprint: a fingerprint under any
    /// other key is an error that names both.
    pub key_id: [u8; 16],
    /// Now, unix seconds.
    pub now: f64,
    /// A `created`, `modified` or `valid_from` later than `now +
    /// max_skew_secs` is an error ("from the future").
    pub max_skew_secs: f64,
    /// The longest text read, in bytes; checked before parsing.
    pub max_bytes: usize,
    /// The most objects a bundle may have.
    pub max_objects: usize,
}

impl ImportPolicy {
    /// The default allowed clock skew: 300 s.
    pub const DEFAULT_MAX_SKEW_SECS: f64 = 300.0;
    /// The default byte cap: 16 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 16 << 20;
    /// The default object cap: 100,000.
    pub const DEFAULT_MAX_OBJECTS: usize = 100_000;

    /// A policy for the consortium key `key_id` at time `now` (unix seconds),
    /// with the default skew (300 s), byte cap (16 MiB) and object cap
    /// (100,000).
    pub fn new(key_id: [u8; 16], now: f64) -> Self {
        ImportPolicy {
            key_id,
            now,
            max_skew_secs: Self::DEFAULT_MAX_SKEW_SECS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_objects: Self::DEFAULT_MAX_OBJECTS,
        }
    }
}

/// An indicator read from a bundle, in the ringfence pattern form.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedIndicator {
    /// Its STIX id, `"indicator--<uuid>"`.
    pub id: String,
    /// Its producer: the `created_by_ref` identity id.
    pub producer: String,
    /// The producer's `name`, if the bundle has its `identity` object.
    pub producer_name: Option<String>,
    /// The guard kind name.
    pub kind: String,
    /// The keyed hash.
    pub hmac: [u8; 32],
    /// Its `confidence`, or [`DEFAULT_CONFIDENCE`] where it states none.
    pub confidence: u8,
    /// `created`, unix seconds.
    pub created: f64,
    /// `modified`, unix seconds.
    pub modified: f64,
    /// `valid_from`, unix seconds.
    pub valid_from: f64,
    /// `valid_until`, unix seconds, if stated.
    pub valid_until: Option<f64>,
    /// Whether this version revokes the indicator.
    pub revoked: bool,
    /// The id of the campaign the indicator `indicates`, if a relationship
    /// of the same producer in the bundle says so (the first such, in bundle
    /// order).
    pub campaign: Option<String>,
}

/// A sighting read from a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSighting {
    /// What was sighted: its `sighting_of_ref`.
    pub sighting_of: String,
    /// Who sighted it: its `created_by_ref`.
    pub sighter: String,
    /// Its `count`; 1 where it states none (a sighting says the object was
    /// seen at least once).
    pub count: u64,
    /// `first_seen`, unix seconds, if stated.
    pub first_seen: Option<f64>,
    /// `last_seen`, unix seconds, if stated.
    pub last_seen: Option<f64>,
}

/// What [`parse_bundle`] read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedBundle {
    /// The ringfence indicators, one per id: of several versions in the
    /// bundle, the one with the greatest `modified` (the first of equals).
    pub indicators: Vec<ImportedIndicator>,
    /// The sightings, in bundle order.
    pub sightings: Vec<ParsedSighting>,
    /// The ids of indicators with patterns of other shapes (or another
    /// `pattern_type`), which were skipped.
    pub skipped: Vec<String>,
    /// The most restrictive TLP level among the TLP marking definitions in
    /// the bundle and the TLP markings its objects reference, if any.
    pub tlp: Option<Tlp>,
}

/// Whether `kind` is a valid guard kind name: `[a-z0-9_+.-]{1,64}`.
pub(crate) fn valid_kind(kind: &str) -> bool {
    (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_+.-".contains(&c))
}
