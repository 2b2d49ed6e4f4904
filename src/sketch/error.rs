//! The one error type of the sketches.

use std::fmt;

/// What went wrong when building, merging or decoding a sketch.
///
/// Every variant names the sketch and the field involved, and its `Display`
/// says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A constructor was given a parameter outside its valid range.
    InvalidParameter {
        /// The sketch being built, e.g. `"HyperLogLog"`.
        sketch: &'static str,
        /// The parameter, e.g. `"precision"`.
        name: &'static str,
        /// What is allowed and what was given.
        reason: String,
    },
    /// Two sketches of different shape or seed were combined (merge, Jaccard,
    /// an LSH insert of a signature of the wrong length).
    Incompatible {
        /// The sketch being combined.
        sketch: &'static str,
        /// Which property differs, with both values.
        reason: String,
    },
    /// Bytes given to `from_bytes` (or data given to serde) are not a valid
    /// encoding of this sketch.
    Decode {
        /// The sketch being decoded.
        sketch: &'static str,
        /// Byte offset at which decoding failed (0 for whole-input problems).
        offset: usize,
        /// What was wrong there.
        reason: String,
    },
}

impl Error {
    pub(crate) fn param(
        sketch: &'static str,
        name: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            sketch,
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn incompatible(sketch: &'static str, reason: impl Into<String>) -> Self {
        Error::Incompatible {
            sketch,
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(sketch: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        Error::Decode {
            sketch,
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParameter { sketch, name, reason } => {
                write!(f, "invalid {sketch} parameter `{name}`: {reason}")
            }
            Error::Incompatible { sketch, reason } => write!(
                f,
                "cannot combine these {sketch} sketches: {reason}; build both with the same parameters and seed"
            ),
            Error::Decode {
                sketch,
                offset,
                reason,
            } => write!(
                f,
                "not a valid {sketch} encoding (at byte {offset}): {reason}; the data is corrupt, truncated or from another sketch type"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::codec::DecodeError> for Error {
    fn from(e: crate::codec::DecodeError) -> Self {
        Error::Decode {
            sketch: e.format,
            offset: e.offset,
            reason: e.reason,
        }
    }
}
