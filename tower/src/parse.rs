//! What the layer reads from a request: the account, the fingerprints, and
//! the prompt, system prompt, model and `max_tokens` of an OpenAI (chat
//! completions, completions, responses) or Anthropic (messages) JSON body.
//! The same rules as `ringfence.asgi`, so that a Python and a Rust front
//! end name and read requests alike.

use ringfence::guard::{
    estimate_tokens, MAX_ACCOUNT_BYTES, MAX_FINGERPRINT_BYTES, MAX_MODEL_BYTES,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the layer read from a request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The last user message (or the completion prompt, or the input).
    pub prompt: Option<String>,
    /// System and developer messages, Anthropic's `system`, `instructions`.
    pub system: Option<String>,
    /// The model asked for.
    pub model: Option<String>,
    /// `max_tokens`, `max_completion_tokens` or `max_output_tokens`.
    pub max_tokens: Option<u32>,
    /// [`estimate_tokens`] of the UTF-8 bytes of every message.
    pub input_tokens: u32,
}

/// The text of a message's content: a string, or the `text` of its parts.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Reads an OpenAI- or Anthropic-shaped JSON request. Unknown shapes give
/// what could be found; a body that is not JSON gives nothing but the
/// estimate of an empty prompt.
pub fn parse_request_body(body: &[u8]) -> RequestInfo {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return RequestInfo::default();
    };
    let mut info = RequestInfo {
        model: body.get("model").and_then(Value::as_str).map(str::to_owned),
        ..RequestInfo::default()
    };
    for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
        if let Some(v) = body.get(key) {
            if let Some(n) = v.as_u64() {
                info.max_tokens = Some(n.min(u64::from(u32::MAX)) as u32);
                break;
            }
            if v.as_i64().is_some() {
                info.max_tokens = Some(0);
                break;
            }
        }
    }
    let mut system: Vec<String> = ["system", "instructions"]
        .iter()
        .map(|k| text_of(body.get(*k)))
        .filter(|s| !s.is_empty())
        .collect();
    let mut texts = Vec::new();
    let mut prompt = None;
    let mut messages = body.get("messages").and_then(Value::as_array);
    if messages.is_none() {
        match body.get("input") {
            Some(Value::String(s)) => prompt = Some(s.clone()),
            Some(Value::Array(items)) => messages = Some(items),
            _ => {}
        }
    }
    for m in messages.into_iter().flatten() {
        let Value::Object(m) = m else { continue };
        let text = text_of(m.get("content"));
        match m.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => system.push(text),
            role => {
                if matches!(role, Some("user") | None) {
                    prompt = Some(text.clone());
                }
                texts.push(text);
            }
        }
    }
    if prompt.is_none() {
        // The legacy completions API.
        match body.get("prompt") {
            Some(Value::String(s)) => prompt = Some(s.clone()),
            Some(Value::Array(p)) if !p.is_empty() && p.iter().all(Value::is_string) => {
                let parts: Vec<&str> = p.iter().filter_map(Value::as_str).collect();
                prompt = Some(parts.join("\n"));
            }
            _ => {}
        }
    }
    let mut total: usize = texts.iter().chain(&system).map(String::len).sum();
    if texts.is_empty() {
        total += prompt.as_deref().map_or(0, str::len);
    }
    info.input_tokens = estimate_tokens(total);
    info.prompt = prompt;
    info.system = (!system.is_empty()).then(|| system.join("\n"));
    info.model = info.model.map(|m| truncate(m, MAX_MODEL_BYTES));
    info
}

/// `s` cut to at most `limit` bytes, at a character boundary.
pub(crate) fn truncate(mut s: String, limit: usize) -> String {
    if s.len() > limit {
        let mut end = limit;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The account an API key stands for: `key-` and the first 32 hex digits
/// of its SHA-256 (the key itself is never kept).
pub fn account_of_key(key: &str) -> String {
    format!("key-{}", &hex(&Sha256::digest(key.as_bytes()))[..32])
}

/// An account named by a header: itself, or `hdr-` and its hash when it
/// is longer than the guard takes.
pub(crate) fn account_of_header(name: &str) -> String {
    if name.len() > MAX_ACCOUNT_BYTES {
        format!("hdr-{}", &hex(&Sha256::digest(name.as_bytes()))[..32])
    } else {
        name.to_owned()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fingerprint value as the guard takes it.
pub(crate) fn fingerprint(value: &str) -> String {
    truncate(value.to_owned(), MAX_FINGERPRINT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chat_bodies_give_prompt_system_model_and_max_tokens() {
        let body = br#"{"model":"gpt-x","max_completion_tokens":300,"messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":"first"},
            {"role":"assistant","content":"ok"},
            {"role":"user","content":[{"type":"text","text":"second"},{"type":"image_url"}]}]}"#;
        let info = parse_request_body(body);
        assert_eq!(info.prompt.as_deref(), Some("second"));
        assert_eq!(info.system.as_deref(), Some("be brief"));
        assert_eq!(info.model.as_deref(), Some("gpt-x"));
        assert_eq!(info.max_tokens, Some(300));
        let bytes = "first".len() + "ok".len() + "second".len() + "be brief".len();
        assert_eq!(info.input_tokens, estimate_tokens(bytes));
    }

    #[test]
    fn anthropic_responses_and_completions_shapes() {
        let a = parse_request_body(
            br#"{"model":"claude","max_tokens":64,"system":"sys","messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(
            (a.prompt.as_deref(), a.system.as_deref(), a.max_tokens),
            (Some("hi"), Some("sys"), Some(64))
        );
        let r = parse_request_body(
            br#"{"input":"question","instructions":"rules","max_output_tokens":9}"#,
        );
        assert_eq!(
            (r.prompt.as_deref(), r.system.as_deref(), r.max_tokens),
            (Some("question"), Some("rules"), Some(9))
        );
        let c = parse_request_body(br#"{"prompt":["a","b"],"max_tokens":-5}"#);
        assert_eq!((c.prompt.as_deref(), c.max_tokens), (Some("a\nb"), Some(0)));
    }

    #[test]
    fn bad_bodies_give_nothing_and_never_panic() {
        for body in [
            &b""[..],
            b"[1,2]",
            b"{",
            b"\xff\xfe",
            br#"{"messages":"no"}"#,
            br#"{"messages":[1,null,{"role":7}]}"#,
        ] {
            let info = parse_request_body(body);
            assert_eq!(info.max_tokens, None);
        }
    }

    #[test]
    fn keys_and_long_names_are_hashed() {
        let a = account_of_key("sk-secret");
        assert!(a.starts_with("key-") && a.len() == 36 && !a.contains("secret"));
        assert_eq!(account_of_header("alice"), "alice");
        assert!(account_of_header(&"x".repeat(MAX_ACCOUNT_BYTES + 1)).starts_with("hdr-"));
        assert_eq!(truncate("é".repeat(3), 3), "é");
    }
}
