//! The errors of export and import. Each message says what is wrong and
//! where: the input item (export) or the bundle object, by index and id, and
//! the property (import).

use std::fmt;

/// What kind of problem stopped an export.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportErrorKind {
    /// The producer's identity id or name is unusable.
    Producer,
    /// An indicator's kind name is not `[a-z0-9_+.-]{1,64}`.
    Kind,
    /// A confidence is outside 0..=100.
    Confidence,
    /// A time is not finite or lies outside the years 0000 to 9999.
    Time,
    /// A time interval is empty or reversed (`valid_until <= valid_from`,
    /// `last_seen < first_seen`, a revocation not after the export).
    Interval,
    /// Two input items would become the same STIX object.
    Duplicate,
    /// There is nothing to export.
    Empty,
    /// A sighting names something other than an indicator id.
    Reference,
}

/// Why a bundle could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError {
    pub(crate) kind: ExportErrorKind,
    pub(crate) message: String,
}

impl ExportError {
    pub(crate) fn new(kind: ExportErrorKind, message: impl Into<String>) -> Self {
        ExportError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> ExportErrorKind {
        self.kind
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExportError {}

/// What kind of problem made a bundle unacceptable.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleErrorKind {
    /// The text is longer than [`ImportPolicy::max_bytes`](crate::ImportPolicy::max_bytes)
    /// (checked before parsing).
    TooLarge,
    /// The text is not JSON.
    Json,
    /// The JSON is not a STIX bundle.
    NotABundle,
    /// The bundle has more objects than [`ImportPolicy::max_objects`](crate::ImportPolicy::max_objects).
    TooManyObjects,
    /// A fingerprint was hashed under another consortium key.
    ForeignKey,
    /// A `created`, `modified` or `valid_from` lies beyond now plus the skew.
    FromTheFuture,
    /// An id is malformed, or a fingerprint SCO's id is not the UUIDv5 of its
    /// properties.
    Id,
    /// A timestamp is not in the required form.
    Timestamp,
    /// A time interval is empty or reversed.
    Interval,
    /// A confidence is not an integer in 0..=100.
    Confidence,
    /// A ringfence pattern is not the three-comparison form.
    Pattern,
    /// A property is missing or has a value of the wrong form.
    Property,
    /// Two versions of one object disagree on what may not change.
    Conflict,
}

/// Why a bundle was rejected, with where: the object's index in `objects`
/// and its id, and the property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError {
    pub(crate) kind: BundleErrorKind,
    pub(crate) object: Option<(usize, Option<String>)>,
    pub(crate) property: Option<String>,
    pub(crate) message: String,
}

impl BundleError {
    /// A problem of the bundle as a whole.
    pub(crate) fn bundle(kind: BundleErrorKind, message: impl Into<String>) -> Self {
        BundleError {
            kind,
            object: None,
            property: None,
            message: message.into(),
        }
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> BundleErrorKind {
        self.kind
    }

    /// The index in the bundle's `objects` of the object at fault, if one is.
    pub fn object_index(&self) -> Option<usize> {
        self.object.as_ref().map(|(i, _)| *i)
    }

    /// The id of the object at fault, if it has one.
    pub fn object_id(&self) -> Option<&str> {
        self.object.as_ref().and_then(|(_, id)| id.as_deref())
    }

    /// The property at fault, if one is.
    pub fn property(&self) -> Option<&str> {
        self.property.as_deref()
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            Some((index, Some(id))) => write!(f, "object {index} ({id}): ")?,
            Some((index, None)) => write!(f, "object {index}: ")?,
            None => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for BundleError {}
