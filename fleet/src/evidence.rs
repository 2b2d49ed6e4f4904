//! Evidence shared between nodes: each node publishes what it decided
//! since its last sync ([`Observation`]s, in batches), and records what the
//! others published (`Guard::observe`), so that a hydra whose requests land
//! on every node is linked on all of them within a sync interval.
//!
//! A batch is a compact binary record with a version; a batch that does not
//! decode (corrupt, another schema, a version from the future, oversized)
//! is an error that the reader counts and skips, never a panic and never
//! half-applied. Batches travel through an [`EvidenceExchange`]: in this
//! process ([`MemoryExchange`], for replays and tests) or through Redis
//! Streams (`RedisExchange`).

use crate::store::StoreError;
use ringfence::guard::{text_head, Guard, Request, TextDigest, DIGEST_BANDS, TEXT_HEAD_CHARS};
use std::fmt;

/// The batch format's magic and version.
const MAGIC: &[u8; 4] = b"RFO2";
/// The largest batch accepted (bytes).
pub const MAX_BATCH_BYTES: usize = 64 << 20;
/// The largest prompt or system prompt carried (bytes); longer ones are cut
/// at a character boundary (templates are read from their start).
pub const MAX_TEXT_BYTES: usize = 256 << 10;
const NONE32: u32 = u32::MAX;

/// What an [`Observation`] tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Seen {
    /// A request the node decided (and, with `output`, its answer).
    #[default]
    Request,
    /// Only the answer to a request published before: `account_hash`,
    /// `input_tokens` and `output` are set, the rest is empty.
    Answer,
}

/// A request one node decided, or the answer it gave to one, for the others
/// to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// A request, or an answer.
    pub seen: Seen,
    /// The account (empty in an answer).
    pub account: String,
    /// An answer's account, by its hash (`Settlement::account`: the nodes
    /// hash accounts alike); 0 in a request.
    pub account_hash: u64,
    /// (kind, value) fingerprints.
    pub fingerprints: Vec<(String, String)>,
    /// The prompt.
    pub prompt: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// The model asked for.
    pub model: Option<String>,
    /// Input tokens.
    pub input_tokens: u32,
    /// `max_tokens`.
    pub max_tokens: u32,
    /// The answer's output tokens, if it was served.
    pub output: Option<u32>,
    /// The texts' digest (`Guard::digest`), when `prompt` and `system`
    /// are only their heads (`text_head`): how requests travel between
    /// nodes, a few hundred bytes whatever the prompt's length.
    pub digest: Option<TextDigest>,
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl Observation {
    /// `req`, served with `output` tokens (`None`: refused, or not known).
    pub fn of(req: &Request<'_>, output: Option<u32>) -> Observation {
        Observation {
            seen: Seen::Request,
            account: req.account.to_string(),
            account_hash: 0,
            fingerprints: req
                .fingerprints
                .iter()
                .map(|&(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            prompt: req.prompt.map(cut),
            system: req.system.map(cut),
            model: req.model.map(str::to_string),
            input_tokens: req.input_tokens,
            max_tokens: req.max_tokens,
            output,
            digest: None,
        }
    }

    /// This request with its texts digested by `guard` (see
    /// [`Observation::digest`]); an answer, or a request digested
    /// already, is left as it is.
    pub fn digested(mut self, guard: &Guard) -> Observation {
        if self.seen == Seen::Request && self.digest.is_none() {
            let fps: Vec<(&str, &str)> = Vec::new();
            let digest = guard.digest(&Request {
                prompt: self.prompt.as_deref(),
                system: self.system.as_deref(),
                ..self.request(&fps)
            });
            self.prompt = self.prompt.as_deref().map(|t| text_head(t).to_string());
            self.system = self.system.as_deref().map(|t| text_head(t).to_string());
            self.digest = Some(digest);
        }
        self
    }

    /// The answer of `output_tokens` to a request with `input_tokens` of
    /// the account whose hash is `account_hash`, published before.
    pub fn answer(account_hash: u64, input_tokens: u32, output_tokens: u32) -> Observation {
        Observation {
            seen: Seen::Answer,
            account: String::new(),
            account_hash,
            fingerprints: Vec::new(),
            prompt: None,
            system: None,
            model: None,
            input_tokens,
            max_tokens: 0,
            output: Some(output_tokens),
            digest: None,
        }
    }

    /// Records it on `guard` (see `Guard::observe` and
    /// `Guard::observe_answer_of`).
    pub fn observe_on(&self, guard: &Guard) {
        if self.seen == Seen::Answer {
            if let Some(out) = self.output {
                guard.observe_answer_of(self.account_hash, self.input_tokens, out);
            }
            return;
        }
        let fps: Vec<(&str, &str)> = self
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match &self.digest {
            Some(d) => guard.observe_digested(&self.request(&fps), d, self.output),
            None => guard.observe(&self.request(&fps), self.output),
        }
    }

    fn request<'a>(&'a self, fps: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request {
            account: &self.account,
            fingerprints: fps,
            prompt: self.prompt.as_deref(),
            system: self.system.as_deref(),
            model: self.model.as_deref(),
            input_tokens: self.input_tokens,
            max_tokens: self.max_tokens,
        }
    }
}

/// A batch that does not decode: what is wrong and at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// What is wrong.
    pub what: String,
    /// The byte offset where it was found.
    pub offset: usize,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad evidence batch at byte {}: {}",
            self.offset, self.what
        )
    }
}

impl std::error::Error for BatchError {}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, b: Option<&str>) {
    match b {
        Some(s) => put_bytes(out, s.as_bytes()),
        None => out.extend_from_slice(&NONE32.to_le_bytes()),
    }
}

/// Encodes a batch.
pub fn encode_batch(batch: &[Observation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + batch.len() * 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    for o in batch {
        if o.seen == Seen::Answer {
            // An answer: its account's hash and its tokens (17 bytes).
            out.push(1);
            out.extend_from_slice(&o.account_hash.to_le_bytes());
            out.extend_from_slice(&o.input_tokens.to_le_bytes());
            out.extend_from_slice(&o.output.unwrap_or(0).to_le_bytes());
            continue;
        }
        // A request: whole (0), or digested (2: the digest follows).
        out.push(if o.digest.is_some() { 2 } else { 0 });
        put_bytes(&mut out, o.account.as_bytes());
        out.extend_from_slice(&(o.fingerprints.len() as u32).to_le_bytes());
        for (k, v) in &o.fingerprints {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        put_opt(&mut out, o.prompt.as_deref());
        put_opt(&mut out, o.system.as_deref());
        put_opt(&mut out, o.model.as_deref());
        out.extend_from_slice(&o.input_tokens.to_le_bytes());
        out.extend_from_slice(&o.max_tokens.to_le_bytes());
        out.extend_from_slice(&o.output.unwrap_or(NONE32).to_le_bytes());
        if let Some(d) = &o.digest {
            let flags = u8::from(d.bands.is_some())
                | u8::from(d.cot) << 1
                | u8::from(d.system_key.is_some()) << 2;
            out.push(flags);
            for b in d.bands.iter().flatten() {
                out.extend_from_slice(&b.to_le_bytes());
            }
            if let Some(k) = d.system_key {
                out.extend_from_slice(&k.to_le_bytes());
            }
        }
    }
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: impl Into<String>) -> BatchError {
        BatchError {
            what: what.into(),
            offset: self.at,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], BatchError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(format!("{what}: {n} bytes past the end")))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, BatchError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn text(&mut self, what: &str, max: usize) -> Result<Option<String>, BatchError> {
        let n = self.u32(what)?;
        if n == NONE32 {
            return Ok(None);
        }
        let n = n as usize;
        if n > max {
            return Err(self.err(format!("{what}: {n} bytes, over {max}")));
        }
        let at = self.at;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| BatchError {
                what: format!("{what}: not UTF-8"),
                offset: at,
            })
    }

    fn required(&mut self, what: &str, max: usize) -> Result<String, BatchError> {
        self.text(what, max)?
            .ok_or_else(|| self.err(format!("{what}: missing")))
    }
}

/// Decodes a batch, checking each request against the request contract;
/// nothing is returned unless all of it decodes.
pub fn decode_batch(buf: &[u8]) -> Result<Vec<Observation>, BatchError> {
    use ringfence::guard::{
        MAX_ACCOUNT_BYTES, MAX_FINGERPRINTS, MAX_FINGERPRINT_BYTES, MAX_MODEL_BYTES,
    };
    let mut r = Reader { buf, at: 0 };
    if buf.len() > MAX_BATCH_BYTES {
        return Err(r.err(format!("{} bytes, over {MAX_BATCH_BYTES}", buf.len())));
    }
    let magic = r.take(4, "the magic")?;
    if &magic[..3] != b"RFO" {
        return Err(BatchError {
            what: "not an evidence batch".into(),
            offset: 0,
        });
    }
    if magic[3] != MAGIC[3] {
        return Err(BatchError {
            what: format!(
                "format version {} (this node reads {})",
                char::from(magic[3]),
                char::from(MAGIC[3])
            ),
            offset: 3,
        });
    }
    let n = r.u32("the count")? as usize;
    // Each record takes at least 17 bytes: a count past that is corrupt.
    if n > buf.len() / 17 {
        return Err(r.err(format!("{n} records cannot fit in {} bytes", buf.len())));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let start = r.at;
        let kind = r.take(1, "a record's kind")?[0];
        let seen = match kind {
            0 | 2 => Seen::Request,
            1 => {
                let h = r.take(8, "an answer's account")?;
                let account_hash = u64::from_le_bytes(h.try_into().expect("8 bytes"));
                let input_tokens = r.u32("input tokens")?;
                let output = r.u32("output tokens")?;
                out.push(Observation::answer(account_hash, input_tokens, output));
                continue;
            }
            k => {
                return Err(BatchError {
                    what: format!("record {i}: unknown kind {k}"),
                    offset: start,
                })
            }
        };
        let account = r.required("an account", MAX_ACCOUNT_BYTES)?;
        let k = r.u32("a fingerprint count")? as usize;
        if k > MAX_FINGERPRINTS {
            return Err(r.err(format!(
                "record {i}: {k} fingerprints, over {MAX_FINGERPRINTS}"
            )));
        }
        let mut fingerprints = Vec::with_capacity(k);
        for _ in 0..k {
            let kind = r.required("a fingerprint kind", MAX_FINGERPRINT_BYTES)?;
            let value = r.required("a fingerprint value", MAX_FINGERPRINT_BYTES)?;
            fingerprints.push((kind, value));
        }
        let prompt = r.text("a prompt", MAX_TEXT_BYTES)?;
        let system = r.text("a system prompt", MAX_TEXT_BYTES)?;
        let model = r.text("a model", MAX_MODEL_BYTES)?;
        let input_tokens = r.u32("input tokens")?;
        let max_tokens = r.u32("max tokens")?;
        let output = Some(r.u32("output tokens")?).filter(|&o| o != NONE32);
        let digest = if kind == 2 {
            Some(read_digest(
                &mut r,
                i,
                prompt.as_deref(),
                system.as_deref(),
            )?)
        } else {
            None
        };
        let o = Observation {
            seen,
            account,
            account_hash: 0,
            fingerprints,
            prompt,
            system,
            model,
            input_tokens,
            max_tokens,
            output,
            digest,
        };
        let fps: Vec<(&str, &str)> = o
            .fingerprints
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Err(e) = o.request(&fps).validate() {
            return Err(BatchError {
                what: format!("record {i}: {e}"),
                offset: start,
            });
        }
        out.push(o);
    }
    if r.at != buf.len() {
        return Err(r.err(format!("{} bytes after the last record", buf.len() - r.at)));
    }
    Ok(out)
}

/// A digested request's digest, checked against its texts' heads.
fn read_digest(
    r: &mut Reader<'_>,
    i: usize,
    prompt: Option<&str>,
    system: Option<&str>,
) -> Result<TextDigest, BatchError> {
    let at = r.at;
    let bad = |what: String| BatchError {
        what: format!("record {i}: {what}"),
        offset: at,
    };
    for (name, text) in [("prompt", prompt), ("system prompt", system)] {
        if text.is_some_and(|t| t.chars().count() > TEXT_HEAD_CHARS) {
            return Err(bad(format!(
                "a digested request's {name} is longer than its head ({TEXT_HEAD_CHARS} characters)"
            )));
        }
    }
    let flags = r.take(1, "a digest's flags")?[0];
    if flags >> 3 != 0 {
        return Err(bad(format!("unknown digest flags {flags:#04x}")));
    }
    let bands = if flags & 1 != 0 {
        let mut b = [0u64; DIGEST_BANDS];
        for k in &mut b {
            let w = r.take(8, "a template band")?;
            *k = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        }
        Some(b)
    } else {
        None
    };
    let system_key = if flags & 4 != 0 {
        let w = r.take(8, "a system prompt's key")?;
        Some(u64::from_le_bytes(w.try_into().expect("8 bytes")))
    } else {
        None
    };
    if system_key.is_some() != system.is_some_and(|s| !s.trim().is_empty()) {
        return Err(bad(
            "a system prompt's key without its head, or a head without its key".into(),
        ));
    }
    if bands.is_some() && prompt.is_none() {
        return Err(bad("template bands without the prompt's head".into()));
    }
    Ok(TextDigest {
        bands,
        cot: flags & 2 != 0,
        system_key,
    })
}

/// How batches travel between nodes. A node publishes its own batches and
/// fetches the others', each node's in the order it published them.
pub trait EvidenceExchange: Send + Sync {
    /// Publishes node `node`'s batch.
    fn publish(&self, node: u32, batch: Vec<u8>) -> Result<(), StoreError>;
    /// The batches the other nodes published since `node` last fetched
    /// them: (publisher, batch), by publisher, each publisher's in order.
    fn fetch(&self, node: u32) -> Result<Vec<(u32, Vec<u8>)>, StoreError>;
    /// Where `node` stands, for its snapshot: per publisher, the last
    /// batch it read of theirs (of its own: the last it published). Empty
    /// where the exchange cannot resume.
    fn position(&self, _node: u32) -> Vec<String> {
        Vec::new()
    }
    /// Puts a restarted `node` back where [`EvidenceExchange::position`]
    /// said: its next fetch gives the others' batches after those, and
    /// first its own published after its position (what it decided after
    /// its snapshot, lost with the restart). Returns how many of its own
    /// batches it will read again.
    fn resume(&self, _node: u32, _position: &[String]) -> Result<usize, StoreError> {
        Err(StoreError::BadReply(
            "this exchange cannot resume a node".into(),
        ))
    }
}

/// What a node did with the batches it fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Requests recorded.
    pub observed: u64,
    /// Answers recorded.
    pub answers: u64,
    /// Batches skipped because they did not decode.
    pub bad_batches: u64,
}

/// Records on `guard` the batches `node` fetches from `exchange`, skipping
/// (and counting) those that do not decode; `report` hears of each.
pub fn receive(
    exchange: &dyn EvidenceExchange,
    node: u32,
    guard: &Guard,
    mut report: impl FnMut(u32, &BatchError),
) -> Result<Received, StoreError> {
    let mut got = Received::default();
    for (from, batch) in exchange.fetch(node)? {
        match decode_batch(&batch) {
            Ok(observations) => {
                for o in &observations {
                    o.observe_on(guard);
                    match o.seen {
                        Seen::Request => got.observed += 1,
                        Seen::Answer => got.answers += 1,
                    }
                }
            }
            Err(e) => {
                got.bad_batches += 1;
                report(from, &e);
            }
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Observation> {
        vec![
            Observation {
                seen: Seen::Request,
                account: "acct_1".into(),
                account_hash: 0,
                fingerprints: vec![
                    ("ip".into(), "203.0.113.7".into()),
                    ("device".into(), "d1".into()),
                ],
                prompt: Some("Explain step by step: é".into()),
                system: None,
                model: Some("model-a".into()),
                input_tokens: 40,
                max_tokens: 512,
                output: Some(300),
                digest: None,
            },
            Observation {
                seen: Seen::Request,
                account: "acct_2".into(),
                account_hash: 0,
                fingerprints: vec![],
                prompt: None,
                system: Some("You are helpful.".into()),
                model: None,
                input_tokens: 0,
                max_tokens: 0,
                output: None,
                digest: None,
            },
        ]
    }

    /// The first sample digested by a guard with the default configuration.
    fn digested() -> Observation {
        let g = Guard::new(ringfence::guard::GuardConfig::for_accounts(1_000));
        let mut o = sample()[0].clone();
        o.prompt = Some(
            "Think step by step and show all of your reasoning: translate the passage about the harbour and its ships into French."
                .into(),
        );
        o.system = Some("  You answer in JSON.".into());
        o.digested(&g)
    }

    #[test]
    fn a_batch_round_trips() {
        let mut b = sample();
        b.push(Observation::answer(0x0123_4567_89ab_cdef, 40, 812));
        assert_eq!(decode_batch(&encode_batch(&b)).unwrap(), b);
        assert_eq!(decode_batch(&encode_batch(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_digested_request_travels_as_its_heads_and_digest() {
        let o = digested();
        let d = o.digest.expect("digested");
        assert!(
            d.bands.is_some() && d.cot && d.system_key.is_some(),
            "{d:?}"
        );
        assert_eq!(
            o.prompt.as_deref().unwrap().chars().count(),
            TEXT_HEAD_CHARS
        );
        assert_eq!(o.system.as_deref(), Some("You answer in JSON."));
        let batch = vec![o.clone()];
        let bytes = encode_batch(&batch);
        assert_eq!(decode_batch(&bytes).unwrap(), batch);
        // Digesting twice changes nothing.
        let g = Guard::new(ringfence::guard::GuardConfig::for_accounts(1_000));
        assert_eq!(o.clone().digested(&g), o);
        // A head longer than a head, a key without its head, unknown flags.
        let mut long = o.clone();
        long.prompt = Some("x".repeat(TEXT_HEAD_CHARS + 1));
        let e = decode_batch(&encode_batch(&[long])).unwrap_err();
        assert!(e.what.contains("longer than its head"), "{e}");
        let mut headless = o.clone();
        headless.system = None;
        let e = decode_batch(&encode_batch(&[headless])).unwrap_err();
        assert!(e.what.contains("without its head"), "{e}");
        let flags_at = bytes.len() - 1 - 8 * (DIGEST_BANDS + 1);
        let mut flags = bytes.clone();
        flags[flags_at] |= 0x10;
        let e = decode_batch(&flags).unwrap_err();
        assert!(e.what.contains("unknown digest flags"), "{e}");
    }

    #[test]
    fn bad_batches_name_what_is_wrong_and_where() {
        let good = encode_batch(&sample());
        let e = decode_batch(&good[..good.len() - 3]).unwrap_err();
        assert!(e.what.contains("past the end"), "{e}");
        let e = decode_batch(b"JUNKJUNK").unwrap_err();
        assert_eq!(e.what, "not an evidence batch");
        let mut future = good.clone();
        future[3] = b'9';
        let e = decode_batch(&future).unwrap_err();
        assert!(e.what.contains("format version 9"), "{e}");
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_batch(&trailing)
            .unwrap_err()
            .what
            .contains("after the last record"));
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_batch(&huge).unwrap_err().what.contains("cannot fit"));
        // An empty account breaks the request contract.
        let mut empty = sample();
        empty[1].account.clear();
        let e = decode_batch(&encode_batch(&empty)).unwrap_err();
        assert!(e.what.contains("record 1"), "{e}");
        // An answer is its account's hash and its tokens: cut short, it
        // names what is missing.
        let answer = encode_batch(&[Observation::answer(7, 1, 2)]);
        assert_eq!(answer.len(), 8 + 17);
        let e = decode_batch(&answer[..answer.len() - 2]).unwrap_err();
        assert!(e.what.contains("output tokens"), "{e}");
        let mut unknown = encode_batch(&sample());
        unknown[8] = 7;
        assert!(decode_batch(&unknown)
            .unwrap_err()
            .what
            .contains("unknown kind 7"));
    }

    #[test]
    fn no_mutation_of_a_batch_panics() {
        let mut all = sample();
        all.push(digested());
        all.push(Observation::answer(5, 6, 7));
        let good = encode_batch(&all);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..1 + (x % 4) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % b.len();
                b[i] = (x >> 32) as u8;
            }
            if x % 7 == 0 {
                b.truncate((x as usize >> 8) % b.len());
            }
            let _ = decode_batch(&b);
        }
    }
}
