//! Reading a trace line with serde: every field checked as it is read, so
//! that an error names the field, and every string borrowed from the line
//! where it has no escapes.

use super::TraceLine;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

#[derive(Clone, Copy)]
enum Field {
    Ts,
    Account,
    Fingerprints,
    Prompt,
    System,
    Model,
    InputTokens,
    OutputTokens,
    Label,
    Cohort,
    Other,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Ts => "ts",
            Field::Account => "account",
            Field::Fingerprints => "fingerprints",
            Field::Prompt => "prompt",
            Field::System => "system",
            Field::Model => "model",
            Field::InputTokens => "input_tokens",
            Field::OutputTokens => "output_tokens",
            Field::Label => "label",
            Field::Cohort => "cohort",
            Field::Other => "",
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "ts" => Field::Ts,
                    "account" => Field::Account,
                    "fingerprints" => Field::Fingerprints,
                    "prompt" => Field::Prompt,
                    "system" => Field::System,
                    "model" => Field::Model,
                    "input_tokens" => Field::InputTokens,
                    "output_tokens" => Field::OutputTokens,
                    "label" => Field::Label,
                    "cohort" => Field::Cohort,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `ts`: a finite, non-negative number.
struct Seconds;

impl<'de> DeserializeSeed<'de> for Seconds {
    type Value = f64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seconds {
    fn check<E: de::Error>(v: f64) -> Result<f64, E> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(E::custom(format_args!(
                "`ts` must be a finite, non-negative number of seconds since the epoch, not {v}"
            )))
        }
    }
}

impl Visitor<'_> for Seconds {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`ts` as a number of seconds since the epoch")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Self::check(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Self::check(v as f64)
    }
}

/// A string field; `null` too when `optional`.
struct Text {
    field: Field,
    optional: bool,
}

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` as a string", self.field.name())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(E::invalid_type(de::Unexpected::Unit, &self))
        }
    }
}

/// A token count: a non-negative integer that fits in 32 bits, or `null`.
struct Tokens(Field);

impl<'de> DeserializeSeed<'de> for Tokens {
    type Value = Option<u32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Tokens {
    type Value = Option<u32>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` as an integer from 0 to {}",
            self.0.name(),
            u32::MAX
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
        Ok(None)
    }
}

type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// `fingerprints`: an object of kind → string or array of strings (or `null`).
struct Fingerprints<'p, 'de>(&'p mut Pairs<'de>);

impl<'de> DeserializeSeed<'de> for Fingerprints<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fingerprints<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`fingerprints` as an object of kind → string or array of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(kind) = map.next_key_seed(Text {
            field: Field::Fingerprints,
            optional: false,
        })? {
            let kind = kind.unwrap_or_default();
            map.next_value_seed(Values {
                kind,
                out: &mut *self.0,
            })?;
        }
        Ok(())
    }
}

/// One kind's value(s).
struct Values<'p, 'de> {
    kind: Cow<'de, str>,
    out: &'p mut Pairs<'de>,
}

impl<'de> DeserializeSeed<'de> for Values<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Values<'_, 'de> {
    fn push(&mut self, v: Cow<'de, str>) {
        self.out.push((self.kind.clone(), v));
    }
}

impl<'de> Visitor<'de> for Values<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fingerprint `{}` as a string or an array of strings",
            self.kind
        )
    }
    fn visit_borrowed_str<E: de::Error>(mut self, v: &'de str) -> Result<(), E> {
        self.push(Cow::Borrowed(v));
        Ok(())
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.push(Cow::Owned(v.to_string()));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let element = Element { kind: &self.kind };
            match seq.next_element_seed(element)? {
                Some(v) => self.push(v),
                None => return Ok(()),
            }
        }
    }
}

/// One element of a fingerprint's array: a string.
struct Element<'k, 'de> {
    kind: &'k Cow<'de, str>,
}

impl<'de> DeserializeSeed<'de> for Element<'_, 'de> {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_, 'de> {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fingerprint `{}`'s values as strings", self.kind)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for TraceLine<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TraceLine<'de>, D::Error> {
        d.deserialize_any(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = TraceLine<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (one request)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TraceLine<'de>, A::Error> {
        let mut t = TraceLine::default();
        let (mut ts, mut account) = (None, None);
        let mut seen = 0u16;
        while let Some(field) = map.next_key::<Field>()? {
            if !matches!(field, Field::Other) {
                let bit = 1u16 << (field as u16);
                if seen & bit != 0 {
                    return Err(de::Error::duplicate_field(field.name()));
                }
                seen |= bit;
            }
            let text = |optional| Text { field, optional };
            match field {
                Field::Ts => ts = Some(map.next_value_seed(Seconds)?),
                Field::Account => account = map.next_value_seed(text(false))?,
                Field::Fingerprints => map.next_value_seed(Fingerprints(&mut t.fingerprints))?,
                Field::Prompt => t.prompt = map.next_value_seed(text(true))?,
                Field::System => t.system = map.next_value_seed(text(true))?,
                Field::Model => t.model = map.next_value_seed(text(true))?,
                Field::InputTokens => t.input_tokens = map.next_value_seed(Tokens(field))?,
                Field::OutputTokens => t.output_tokens = map.next_value_seed(Tokens(field))?,
                Field::Label => t.label = map.next_value_seed(text(true))?,
                Field::Cohort => t.cohort = map.next_value_seed(text(true))?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        t.ts = ts.ok_or_else(|| de::Error::missing_field("ts"))?;
        t.account = account.ok_or_else(|| de::Error::missing_field("account"))?;
        if t.account.is_empty() {
            return Err(de::Error::custom("`account` must not be empty"));
        }
        Ok(t)
    }
}
