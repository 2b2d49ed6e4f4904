//! One request, and the contract every way in holds it to.
//!
//! Rust, C and Python all check a request with [`Request::validate`]
//! ([`Guard::try_check`](crate::guard::Guard::try_check) does it first), so the
//! same request gets the same answer, or the same error, from each.

use std::fmt;

/// The longest account id, in bytes.
pub const MAX_ACCOUNT_BYTES: usize = 4096;
/// The most fingerprints one request may present.
pub const MAX_FINGERPRINTS: usize = 64;
/// The longest fingerprint kind or value, in bytes.
pub const MAX_FINGERPRINT_BYTES: usize = 4096;
/// The longest model name, in bytes.
pub const MAX_MODEL_BYTES: usize = 4096;

/// One request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The account (non-empty, at most [`MAX_ACCOUNT_BYTES`] bytes).
    pub account: &'a str,
    /// (kind, value) fingerprints: at most [`MAX_FINGERPRINTS`], each kind
    /// non-empty, kinds and values at most [`MAX_FINGERPRINT_BYTES`] bytes.
    /// An empty value counts as absent.
    pub fingerprints: &'a [(&'a str, &'a str)],
    /// The prompt (any length).
    pub prompt: Option<&'a str>,
    /// The system prompt.
    pub system: Option<&'a str>,
    /// The model asked for (feeds the model-pivot signal; at most
    /// [`MAX_MODEL_BYTES`] bytes).
    pub model: Option<&'a str>,
    /// Input tokens ([`estimate_tokens`] of the text's bytes when the caller
    /// has no tokenizer).
    pub input_tokens: u32,
    /// The most output tokens the request may produce (`max_tokens`); with
    /// the input, the estimate reserved against the token quota.
    pub max_tokens: u32,
}

/// Template bands in a [`TextDigest`].
pub const DIGEST_BANDS: usize = 16;
/// Characters of a prompt or system prompt kept beside its digest, for
/// explanations (after leading whitespace; see [`text_head`]).
pub const TEXT_HEAD_CHARS: usize = 64;

/// What a request's texts give the guard, computed once where the
/// request was decided (`Guard::digest`), so that the other nodes of a
/// fleet record the request without its texts (`Guard::observe_digested`):
/// the prompt's template band keys, whether it asks for chain of thought,
/// and the system prompt's key. Nodes digest alike when they share the
/// guard's configuration (its `link.seed`, kinds and phrases).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextDigest {
    /// The prompt's template band keys (`None`: no prompt, or one too
    /// short to have a template).
    pub bands: Option<[u64; DIGEST_BANDS]>,
    /// Whether the prompt asks for chain of thought.
    pub cot: bool,
    /// The system prompt's key (`None`: none, or blank).
    pub system_key: Option<u64>,
}

/// The head of a prompt or system prompt kept beside its [`TextDigest`]:
/// its first [`TEXT_HEAD_CHARS`] characters after leading whitespace
/// (what explanations quote of it).
pub fn text_head(text: &str) -> &str {
    let text = text.trim_start();
    match text.char_indices().nth(TEXT_HEAD_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A request that breaks the contract: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The account id is empty: a request must name who sends it.
    EmptyAccount,
    /// The account id is longer than [`MAX_ACCOUNT_BYTES`].
    AccountTooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// More than [`MAX_FINGERPRINTS`] fingerprints.
    TooManyFingerprints {
        /// How many were given.
        count: usize,
    },
    /// A fingerprint's kind is empty.
    EmptyFingerprintKind {
        /// Its position in the request's fingerprints.
        index: usize,
    },
    /// A fingerprint's kind or value is longer than [`MAX_FINGERPRINT_BYTES`].
    FingerprintTooLong {
        /// Its position in the request's fingerprints.
        index: usize,
        /// The longer of its kind and value, in bytes.
        bytes: usize,
    },
    /// The model name is longer than [`MAX_MODEL_BYTES`].
    ModelTooLong {
        /// Its length in bytes.
        bytes: usize,
    },
}

impl RequestError {
    /// The field at fault, as the bindings name it: `account`,
    /// `fingerprints` or `fingerprints[i]`.
    pub fn field(&self) -> String {
        match self {
            RequestError::EmptyAccount | RequestError::AccountTooLong { .. } => "account".into(),
            RequestError::TooManyFingerprints { .. } => "fingerprints".into(),
            RequestError::EmptyFingerprintKind { index }
            | RequestError::FingerprintTooLong { index, .. } => format!("fingerprints[{index}]"),
            RequestError::ModelTooLong { .. } => "model".into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::EmptyAccount => {
                write!(f, "`account` is empty: every request must name its account")
            }
            RequestError::AccountTooLong { bytes } => write!(
                f,
                "`account` is {bytes} bytes long; the most is {MAX_ACCOUNT_BYTES} (hash longer ids first)"
            ),
            RequestError::TooManyFingerprints { count } => write!(
                f,
                "`fingerprints` has {count} entries; the most is {MAX_FINGERPRINTS}"
            ),
            RequestError::EmptyFingerprintKind { index } => {
                write!(f, "`fingerprints[{index}]` has an empty kind")
            }
            RequestError::FingerprintTooLong { index, bytes } => write!(
                f,
                "`fingerprints[{index}]` is {bytes} bytes long; kinds and values are at most {MAX_FINGERPRINT_BYTES}"
            ),
            RequestError::ModelTooLong { bytes } => write!(
                f,
                "`model` is {bytes} bytes long; the most is {MAX_MODEL_BYTES}"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

impl Request<'_> {
    /// Checks the request against the contract (see [`Request`]'s fields).
    ///
    /// ```
    /// use ringfence::guard::{Request, RequestError};
    /// let mut r = Request { account: "", fingerprints: &[], prompt: None, system: None,
    ///                       model: None, input_tokens: 0, max_tokens: 0 };
    /// assert_eq!(r.validate(), Err(RequestError::EmptyAccount));
    /// r.account = "acct-1";
    /// assert_eq!(r.validate(), Ok(()));
    /// ```
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.account.is_empty() {
            return Err(RequestError::EmptyAccount);
        }
        if self.account.len() > MAX_ACCOUNT_BYTES {
            return Err(RequestError::AccountTooLong {
                bytes: self.account.len(),
            });
        }
        if self.fingerprints.len() > MAX_FINGERPRINTS {
            return Err(RequestError::TooManyFingerprints {
                count: self.fingerprints.len(),
            });
        }
        if let Some(bytes) = self.model.map(str::len).filter(|&n| n > MAX_MODEL_BYTES) {
            return Err(RequestError::ModelTooLong { bytes });
        }
        for (index, (kind, value)) in self.fingerprints.iter().enumerate() {
            if kind.is_empty() {
                return Err(RequestError::EmptyFingerprintKind { index });
            }
            let bytes = kind.len().max(value.len());
            if bytes > MAX_FINGERPRINT_BYTES {
                return Err(RequestError::FingerprintTooLong { index, bytes });
            }
        }
        Ok(())
    }
}

/// Input tokens estimated from the bytes of a request's text (prompt,
/// system prompt and every message): a quarter of them, rounded up, at most
/// `u32::MAX`. The one estimate the replay, the bindings, the ASGI
/// middleware and the example gateway use when no tokenizer count is given.
///
/// ```
/// use ringfence::guard::estimate_tokens;
/// assert_eq!(estimate_tokens(0), 0);
/// assert_eq!(estimate_tokens(9), 3);
/// assert_eq!(estimate_tokens(usize::MAX), u32::MAX);
/// ```
pub fn estimate_tokens(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(4)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(account: &'a str, fingerprints: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request {
            account,
            fingerprints,
            prompt: None,
            system: None,
            model: None,
            input_tokens: 1,
            max_tokens: 1,
        }
    }

    #[test]
    fn the_contract() {
        assert_eq!(req("", &[]).validate(), Err(RequestError::EmptyAccount));
        let long = "a".repeat(MAX_ACCOUNT_BYTES + 1);
        assert_eq!(
            req(&long, &[]).validate(),
            Err(RequestError::AccountTooLong {
                bytes: MAX_ACCOUNT_BYTES + 1
            })
        );
        assert!(req(&long[1..], &[]).validate().is_ok());
        let fps = vec![("ip", "10.0.0.1"); MAX_FINGERPRINTS + 1];
        assert!(req("a", &fps[..MAX_FINGERPRINTS]).validate().is_ok());
        let err = req("a", &fps).validate().unwrap_err();
        assert_eq!(err, RequestError::TooManyFingerprints { count: 65 });
        assert_eq!(err.field(), "fingerprints");
        let err = req("a", &[("ip", "x"), ("", "y")]).validate().unwrap_err();
        assert_eq!(err, RequestError::EmptyFingerprintKind { index: 1 });
        assert_eq!(err.field(), "fingerprints[1]");
        let value = "v".repeat(MAX_FINGERPRINT_BYTES + 1);
        let fps = [("ip", value.as_str())];
        assert_eq!(
            req("a", &fps).validate().unwrap_err().to_string(),
            "`fingerprints[0]` is 4097 bytes long; kinds and values are at most 4096"
        );
        let model = "m".repeat(MAX_MODEL_BYTES + 1);
        let mut r = req("a", &[]);
        r.model = Some(&model[1..]);
        assert!(r.validate().is_ok());
        r.model = Some(&model);
        let err = r.validate().unwrap_err();
        assert_eq!(err, RequestError::ModelTooLong { bytes: 4097 });
        assert_eq!(err.field(), "model");
        // An empty value is allowed (it counts as absent).
        assert!(req("a", &[("ip", "")]).validate().is_ok());
    }

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(4), 1);
        assert_eq!(estimate_tokens(5), 2);
        assert_eq!(estimate_tokens(1 << 20), 1 << 18);
    }
}
