//! Finds a response's output tokens as it passes: in its JSON body, or in
//! the last server-sent event that carries `usage` (OpenAI's final chunk
//! with `stream_options.include_usage`, Anthropic's `message_delta`).
//! Streamed bodies are scanned line by line and never buffered beyond one
//! line.

use serde_json::Value;

/// The output tokens of a `usage` object found in `obj` (or in its
/// `message` or `response`, as Anthropic's and the Responses API's events
/// nest it).
fn output_of(obj: &Value) -> Option<u32> {
    let usage = obj.get("usage").filter(|u| u.is_object()).or_else(|| {
        ["message", "response"]
            .iter()
            .find_map(|k| obj.get(*k)?.get("usage").filter(|u| u.is_object()))
    })?;
    ["completion_tokens", "output_tokens"]
        .iter()
        .find_map(|k| usage.get(*k)?.as_u64())
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// The output tokens of one event line (`data: {...}` carrying `usage`).
fn event_output(line: &[u8]) -> Option<u32> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let data = line.strip_prefix(b"data:")?;
    if !data.windows(7).any(|w| w == b"\"usage\"") {
        return None;
    }
    output_of(&serde_json::from_slice::<Value>(data).ok()?)
}

enum Mode {
    /// `text/event-stream`: the bytes of the line being read.
    Events(Vec<u8>),
    /// JSON: the body so far, or `None` once it grew past the limit.
    Json(Option<Vec<u8>>),
    /// Anything else: nothing to find.
    Other,
}

/// See the module docs.
pub(crate) struct UsageScanner {
    mode: Mode,
    limit: usize,
    output: Option<u32>,
}

impl UsageScanner {
    pub(crate) fn new(content_type: &str, limit: usize) -> UsageScanner {
        let ct = content_type.to_ascii_lowercase();
        let mode = if ct.contains("text/event-stream") {
            Mode::Events(Vec::new())
        } else if ct.contains("json") {
            Mode::Json(Some(Vec::new()))
        } else {
            Mode::Other
        };
        UsageScanner {
            mode,
            limit,
            output: None,
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let UsageScanner {
            mode,
            limit,
            output,
        } = self;
        match mode {
            Mode::Events(line) => {
                let mut rest = chunk;
                while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                    line.extend_from_slice(&rest[..i]);
                    rest = &rest[i + 1..];
                    if let Some(n) = event_output(line) {
                        *output = Some(n);
                    }
                    line.clear();
                }
                if line.len() + rest.len() > *limit {
                    // An endless line: give up on it.
                    line.clear();
                } else {
                    line.extend_from_slice(rest);
                }
            }
            Mode::Json(Some(buf)) => {
                if buf.len() + chunk.len() > *limit {
                    *mode = Mode::Json(None);
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            Mode::Json(None) | Mode::Other => {}
        }
    }

    /// The output tokens found, once the body has ended.
    pub(crate) fn finish(&mut self) -> Option<u32> {
        match std::mem::replace(&mut self.mode, Mode::Other) {
            Mode::Events(line) => {
                if let Some(n) = event_output(&line) {
                    self.output = Some(n);
                }
            }
            Mode::Json(Some(buf)) => {
                self.output = serde_json::from_slice::<Value>(&buf)
                    .ok()
                    .as_ref()
                    .and_then(output_of);
            }
            _ => {}
        }
        self.output
    }
}

#[cfg(test)]
mod tests {
    use super::UsageScanner;

    fn scan(ct: &str, chunks: &[&[u8]]) -> Option<u32> {
        let mut s = UsageScanner::new(ct, 1 << 20);
        for c in chunks {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn json_bodies_and_events_split_anywhere() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":42}}"#;
        for cut in 0..body.len() {
            assert_eq!(
                scan("application/json", &[&body[..cut], &body[cut..]]),
                Some(42)
            );
        }
        let events = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
                       data: {\"choices\":[],\"usage\":{\"completion_tokens\":7}}\r\n\r\n\
                       data: [DONE]\n\n";
        for cut in 0..events.len() {
            assert_eq!(
                scan(
                    "text/event-stream; charset=utf-8",
                    &[&events[..cut], &events[cut..]]
                ),
                Some(7)
            );
        }
        let anthropic = b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}";
        assert_eq!(scan("text/event-stream", &[anthropic]), Some(15));
    }

    #[test]
    fn no_usage_or_bad_text_gives_none() {
        assert_eq!(scan("application/json", &[b"{\"usage\": 5}"]), None);
        assert_eq!(scan("application/json", &[b"\xff{"]), None);
        assert_eq!(
            scan("text/plain", &[b"{\"usage\":{\"output_tokens\":1}}"]),
            None
        );
        assert_eq!(
            scan(
                "text/event-stream",
                &[b"data: {\"usage\":{\"output_tokens\":\"9\"}}\n"]
            ),
            None
        );
        let mut s = UsageScanner::new("application/json", 8);
        s.feed(b"{\"usage\":{\"output_tokens\":1}}");
        assert_eq!(s.finish(), None, "past the limit");
    }
}
