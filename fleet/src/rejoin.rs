//! A node's snapshot and its rejoining after a restart: the guard's own
//! snapshot with the node's position in the evidence exchange, so that a
//! restarted node records what the others published after its snapshot
//! (and what it published itself after it, lost with the restart) once,
//! and nothing twice.
//!
//! The container: `RFFS`, a version byte, the position's count (u32, little
//! endian), each entry's length (u32) and bytes (an exchange's id, at most
//! [`MAX_POSITION_BYTES`]), then the guard's snapshot. A plain guard
//! snapshot is accepted too: the node then reads what the streams still
//! hold, as a new node does.

use crate::guard::FleetGuard;
use ringfence::guard::SnapshotError;
use std::fmt;

const MAGIC: &[u8; 4] = b"RFFS";
const VERSION: u8 = 1;
/// The longest entry of a position (bytes).
pub const MAX_POSITION_BYTES: usize = 64;
/// The most publishers a position names.
const MAX_NODES: usize = 1 << 16;

/// A fleet snapshot that could not be restored.
#[derive(Debug)]
pub enum RejoinError {
    /// The container around the guard's snapshot is malformed.
    Container(String),
    /// The guard's snapshot is (see [`SnapshotError`]); the guard is left
    /// as it was.
    Guard(SnapshotError),
}

impl fmt::Display for RejoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejoinError::Container(why) => write!(f, "bad fleet snapshot: {why}"),
            RejoinError::Guard(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RejoinError {}

/// How a node rejoined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejoined {
    /// Whether the snapshot carried the node's position (a plain guard
    /// snapshot does not).
    pub positioned: bool,
    /// Its own batches, published after the snapshot, to be recorded again.
    pub own_batches: usize,
    /// Why the exchange could not put the node back at its position (the
    /// guard is restored all the same; the node reads what the streams
    /// hold, as a new node does).
    pub resume_error: Option<String>,
}

fn encode(position: &[String], guard: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + position.len() * 24 + guard.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(position.len() as u32).to_le_bytes());
    for p in position {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(guard);
    out
}

/// The position and the guard's snapshot of a fleet snapshot; a plain
/// guard snapshot has no position.
fn decode(bytes: &[u8]) -> Result<(Option<Vec<String>>, &[u8]), RejoinError> {
    if !bytes.starts_with(MAGIC) {
        return Ok((None, bytes));
    }
    let bad = |at: usize, why: String| RejoinError::Container(format!("at byte {at}: {why}"));
    let mut at = MAGIC.len();
    let version = *bytes.get(at).ok_or_else(|| bad(at, "no version".into()))?;
    if version != VERSION {
        return Err(bad(
            at,
            format!("version {version} (this node reads {VERSION})"),
        ));
    }
    at += 1;
    let u32_at = |at: usize, what: &str| -> Result<usize, RejoinError> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| bad(at, format!("{what} past the end")))
    };
    let n = u32_at(at, "the position's count")?;
    if n > MAX_NODES {
        return Err(bad(
            at,
            format!("a position of {n} nodes, over {MAX_NODES}"),
        ));
    }
    at += 4;
    let mut position = Vec::with_capacity(n);
    for i in 0..n {
        let len = u32_at(at, "an entry's length")?;
        if len > MAX_POSITION_BYTES {
            return Err(bad(
                at,
                format!("entry {i}: {len} bytes, over {MAX_POSITION_BYTES}"),
            ));
        }
        at += 4;
        let text = bytes
            .get(at..at + len)
            .ok_or_else(|| bad(at, format!("entry {i} past the end")))?;
        let text =
            std::str::from_utf8(text).map_err(|_| bad(at, format!("entry {i} is not UTF-8")))?;
        position.push(text.to_string());
        at += len;
    }
    Ok((Some(position), &bytes[at..]))
}

impl FleetGuard {
    /// The guard's snapshot with this node's position in the evidence
    /// exchange (see the module docs): what [`FleetGuard::restore`] takes
    /// after a restart. Without shared evidence, a plain guard snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        let Some(link) = self.evidence() else {
            return self.guard().snapshot();
        };
        let node = self.limits().config().node.clone();
        let report = move |m: &str| eprintln!("ringfence-fleet [{node}]: {m}");
        let (position, guard) = link.at_position(self.guard(), &report, || self.guard().snapshot());
        if position.is_empty() {
            return guard;
        }
        encode(&position, &guard)
    }

    /// Restores a snapshot of this node ([`FleetGuard::snapshot`], or a
    /// plain guard snapshot) into this fresh guard, and puts the node back
    /// at its position in the exchange: its next sync records what the
    /// others published after the snapshot, and what this node published
    /// after it, once each. Quotas need nothing: the store holds them (a
    /// lease the node held when it stopped is lost to the fleet until the
    /// key's time catches up; never granted twice).
    ///
    /// A malformed container or guard snapshot is an error and leaves the
    /// guard as it was. An exchange that cannot resume (Redis away, its
    /// streams trimmed) is not: the guard is restored and the reason is in
    /// [`Rejoined::resume_error`].
    pub fn restore(&self, bytes: &[u8]) -> Result<Rejoined, RejoinError> {
        let (position, guard) = decode(bytes)?;
        self.guard().restore(guard).map_err(RejoinError::Guard)?;
        let mut rejoined = Rejoined::default();
        if let (Some(position), Some(link)) = (position, self.evidence()) {
            rejoined.positioned = true;
            match link.resume(&position) {
                Ok(n) => rejoined.own_batches = n,
                Err(e) => rejoined.resume_error = Some(e.to_string()),
            }
        }
        Ok(rejoined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_round_trips_and_a_plain_snapshot_passes_through() {
        let pos = vec!["0-0".to_string(), "1700000000000-3".to_string()];
        let bytes = encode(&pos, b"GUARD");
        let (p, g) = decode(&bytes).unwrap();
        assert_eq!(p, Some(pos));
        assert_eq!(g, b"GUARD");
        assert_eq!(decode(b"RFG1...").unwrap(), (None, &b"RFG1..."[..]));
    }

    #[test]
    fn a_bad_container_names_what_is_wrong_and_where() {
        let bytes = encode(&["1-1".to_string()], b"G");
        for cut in 4..13 {
            let e = decode(&bytes[..cut]).unwrap_err().to_string();
            assert!(e.starts_with("bad fleet snapshot: at byte"), "{cut}: {e}");
        }
        let mut future = bytes.clone();
        future[4] = 9;
        let e = decode(&future).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        let mut long = bytes.clone();
        long[9..13].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decode(&long).unwrap_err().to_string().contains("over 64"));
        let mut many = bytes;
        many[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&many)
            .unwrap_err()
            .to_string()
            .contains("nodes, over"));
    }
}
