//! The one binary encoding of everything ringfence saves (sketches, the
//! limiter, the guard's snapshots): a small, versioned, checksummed frame.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "RFSK"
//! 4       1     kind (1 CountMin, 2 HyperLogLog, 3 MinHash, 4 LshIndex, 5 Signature, 6 RateLimiter)
//! 5       1     format version of that kind (currently 1)
//! 6       n     payload, little-endian, defined by each sketch
//! 6+n     8     xxh3-64 (seed 0) of bytes 0..6+n
//! ```
//!
//! Decoding checks the frame before it reads the payload, checks every length
//! against the bytes actually present before it allocates, and rejects
//! trailing bytes, so corrupt or hostile input yields a [`DecodeError`], never a
//! panic or a huge allocation.

use std::fmt;
use xxhash_rust::xxh3::xxh3_64;

/// Bytes that are not a valid encoding: which format, where, and what was
/// wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The format being decoded (`"HyperLogLog"`, `"Guard"`, …).
    pub format: &'static str,
    /// Byte offset at which decoding failed (0 for whole-input problems).
    pub offset: usize,
    /// What was wrong there.
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(format: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        DecodeError {
            format,
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a valid {} encoding (at byte {}): {}; the data is corrupt, truncated or of another kind",
            self.format, self.offset, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

pub(crate) const MAGIC: &[u8; 4] = b"RFSK";
const HEADER: usize = 6;
const TRAILER: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    CountMin = 1,
    HyperLogLog = 2,
    MinHash = 3,
    LshIndex = 4,
    Signature = 5,
    RateLimiter = 6,
    Guard = 7,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::CountMin => "CountMin",
            Kind::HyperLogLog => "HyperLogLog",
            Kind::MinHash => "MinHash",
            Kind::LshIndex => "LshIndex",
            Kind::Signature => "Signature",
            Kind::RateLimiter => "RateLimiter",
            Kind::Guard => "Guard",
        }
    }
}

/// Builds one frame.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(kind: Kind, version: u8, payload_hint: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER + payload_hint + TRAILER);
        buf.extend_from_slice(MAGIC);
        buf.push(kind as u8);
        buf.push(version);
        Writer { buf }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// LEB128, for counters that are mostly small.
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// A length-prefixed UTF-8 string.
    pub(crate) fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.bytes(s.as_bytes());
    }
    /// A length-prefixed byte string.
    pub(crate) fn blob(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.bytes(b);
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let sum = xxh3_64(&self.buf);
        self.buf.extend_from_slice(&sum.to_le_bytes());
        self.buf
    }
}

/// Reads one frame's payload, with offsets for error messages.
pub(crate) struct Reader<'a> {
    sketch: &'static str,
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// Checks magic, kind, version and checksum; returns a reader over the payload.
    pub(crate) fn open(data: &'a [u8], kind: Kind, version: u8) -> Result<Self, DecodeError> {
        Self::open_versions(data, kind, version..=version).map(|(r, _)| r)
    }

    /// [`Reader::open`], for a format that reads several versions: which
    /// one the data is comes back with the reader.
    pub(crate) fn open_versions(
        data: &'a [u8],
        kind: Kind,
        versions: std::ops::RangeInclusive<u8>,
    ) -> Result<(Self, u8), DecodeError> {
        let version = *versions.end();
        let sketch = kind.name();
        if data.len() < HEADER + TRAILER {
            return Err(DecodeError::new(
                sketch,
                data.len(),
                format!(
                    "input is {} bytes, shorter than the {}-byte frame",
                    data.len(),
                    HEADER + TRAILER
                ),
            ));
        }
        if &data[..4] != MAGIC {
            return Err(DecodeError::new(
                sketch,
                0,
                "missing the \"RFSK\" magic bytes",
            ));
        }
        let end = data.len() - TRAILER;
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&data[end..]);
        if u64::from_le_bytes(sum) != xxh3_64(&data[..end]) {
            return Err(DecodeError::new(sketch, end, "checksum mismatch"));
        }
        if data[4] != kind as u8 {
            return Err(DecodeError::new(
                sketch,
                4,
                format!(
                    "sketch kind byte is {}, expected {} ({sketch})",
                    data[4], kind as u8
                ),
            ));
        }
        if !versions.contains(&data[5]) {
            let reads = if versions.start() == versions.end() {
                format!("version {version}")
            } else {
                format!("versions {} to {version}", versions.start())
            };
            return Err(DecodeError::new(
                sketch,
                5,
                format!(
                    "format version {} is not supported (this build reads {reads})",
                    data[5]
                ),
            ));
        }
        Ok((
            Reader {
                sketch,
                data,
                pos: HEADER,
                end,
            },
            data[5],
        ))
    }

    pub(crate) fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(self.sketch, self.pos, reason)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.err(format!(
                "{what} needs {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn f64(&mut self, what: &str) -> Result<f64, DecodeError> {
        let v = f64::from_bits(self.u64(what)?);
        if !v.is_finite() {
            return Err(self.err(format!("{what} is not a finite number")));
        }
        Ok(v)
    }
    pub(crate) fn str(&mut self, what: &str) -> Result<String, DecodeError> {
        let b = self.blob(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
    pub(crate) fn blob(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.varint(what)?;
        let n = usize::try_from(n).map_err(|_| self.err(format!("{what} is too long")))?;
        self.take(n, what)
    }
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(b))
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(b))
    }
    pub(crate) fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.err(format!("{what}: varint overflows 64 bits")));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(format!("{what}: varint longer than 10 bytes")))
    }

    /// Fails unless `count` items of at least `min_size` bytes each can still fit.
    pub(crate) fn expect_items(
        &self,
        count: u64,
        min_size: usize,
        what: &str,
    ) -> Result<usize, DecodeError> {
        let need = count.checked_mul(min_size as u64);
        match need {
            Some(n) if n <= self.remaining() as u64 => Ok(count as usize),
            _ => Err(self.err(format!(
                "{what}: {count} entries cannot fit in the {} bytes that remain",
                self.remaining()
            ))),
        }
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.pos != self.end {
            return Err(self.err(format!("{} unexpected trailing bytes", self.end - self.pos)));
        }
        Ok(())
    }
}
