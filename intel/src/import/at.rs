//! Where a check is, and the typed reads of properties that name it in
//! their errors.

use serde_json::{Map, Value};

use crate::error::{BundleError, BundleErrorKind as Kind};
use crate::ids::is_id_of;
use crate::time::{self, format_ms, secs_to_ms};

/// Where in the bundle a check is: the object's index and id.
pub(super) struct At<'a> {
    pub(super) index: usize,
    pub(super) id: Option<&'a str>,
}

impl At<'_> {
    pub(super) fn err(
        &self,
        kind: Kind,
        property: Option<&str>,
        message: impl Into<String>,
    ) -> BundleError {
        BundleError {
            kind,
            object: Some((self.index, self.id.map(str::to_owned))),
            property: property.map(str::to_owned),
            message: message.into(),
        }
    }

    /// A string property: `None` when absent, an error when not a string.
    pub(super) fn opt_str<'v>(
        &self,
        o: &'v Map<String, Value>,
        name: &str,
    ) -> Result<Option<&'v str>, BundleError> {
        match o.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(
                Kind::Property,
                Some(name),
                format!("{name} is not a string: {other}"),
            )),
        }
    }

    /// A required string property; `why` follows "is missing" in the error.
    pub(super) fn str<'v>(
        &self,
        o: &'v Map<String, Value>,
        name: &str,
        why: &str,
    ) -> Result<&'v str, BundleError> {
        self.opt_str(o, name)?.ok_or_else(|| {
            self.err(
                Kind::Property,
                Some(name),
                format!("{name} is missing{why}"),
            )
        })
    }

    /// A required reference to an object of `object_type`; `why` follows
    /// "is missing" in the error.
    pub(super) fn reference<'v>(
        &self,
        o: &'v Map<String, Value>,
        name: &str,
        object_type: &str,
        why: &str,
    ) -> Result<&'v str, BundleError> {
        let value = self.str(o, name, why)?;
        if !is_id_of(value, object_type) {
            return Err(self.err(
                Kind::Id,
                Some(name),
                format!("{name} {value:?} is not \"{object_type}--<uuid>\""),
            ));
        }
        Ok(value)
    }

    /// An optional timestamp property as unix seconds; `millis` asks for at
    /// least three fraction digits, as STIX requires of `created` and
    /// `modified`.
    pub(super) fn time(
        &self,
        o: &Map<String, Value>,
        name: &str,
        millis: bool,
    ) -> Result<Option<f64>, BundleError> {
        let Some(text) = self.opt_str(o, name)? else {
            return Ok(None);
        };
        let parsed = time::parse(text).map_err(|why| {
            self.err(
                Kind::Timestamp,
                Some(name),
                format!("{name} {text:?} {why}"),
            )
        })?;
        if millis && parsed.fraction_digits < 3 {
            return Err(self.err(
                Kind::Timestamp,
                Some(name),
                format!(
                    "{name} {text:?} lacks milliseconds (STIX requires YYYY-MM-DDTHH:MM:SS.fffZ)"
                ),
            ));
        }
        Ok(Some(parsed.secs))
    }
}

/// A time for a message: RFC 3339 where representable.
pub(super) fn show(secs: f64) -> String {
    secs_to_ms(secs).map_or_else(|| format!("{secs} (unix seconds)"), format_ms)
}
