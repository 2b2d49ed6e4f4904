//! The intelligence part of a guard snapshot: the shared values remembered
//! for export (tokens and account samples), and the imported indicators
//! with their sighting counts. Marks are not kept: after a restore, the
//! sampled accounts of remembered values that match an import are marked
//! again at once, and others as they present a value again.

use super::store::{shard, Entry, Intel, SAMPLE};
use super::{ImportIndicator, IntelError};
use crate::codec::{DecodeError, Reader, Writer};
use std::sync::atomic::Ordering::Relaxed;

/// A decoded intelligence section, times on the restoring guard's clock.
pub(crate) struct IntelSnapshot {
    pub key_id: [u8; 16],
    pub entries: Vec<(u64, Entry)>,
    pub imports: Vec<ImportIndicator>,
    /// Each import's sightings, in the same order.
    pub sightings: Vec<Sightings>,
}

/// An imported indicator's sighting counts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sightings {
    pub count: u64,
    pub first: f64,
    pub last: f64,
}

fn opt_str(w: &mut Writer, s: Option<&str>) {
    w.u8(u8::from(s.is_some()));
    if let Some(s) = s {
        w.str(s);
    }
}

fn read_opt_str(r: &mut Reader<'_>, what: &str) -> Result<Option<String>, DecodeError> {
    match r.u8(what)? {
        0 => Ok(None),
        1 => r.str(what).map(Some),
        b => Err(r.err(format!("{what}: presence byte {b} is neither 0 nor 1"))),
    }
}

fn read_token(r: &mut Reader<'_>, what: &str) -> Result<[u8; 32], DecodeError> {
    let mut t = [0u8; 32];
    t.copy_from_slice(r.take(32, what)?);
    Ok(t)
}

impl Intel {
    /// The shared values remembered, with their tags (for snapshots).
    pub fn entries_with_tags(&self) -> Vec<(u64, Entry)> {
        self.entries
            .iter()
            .flat_map(|s| {
                s.lock()
                    .iter()
                    .map(|(&t, e)| (t, e.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Folds remembered values in (a restore or another node's snapshot):
    /// samples merge, the larger count and the wider times stand. New
    /// values wait for room as a request's would.
    pub fn merge_entries(&self, list: Vec<(u64, Entry)>) {
        for (tag, e) in list {
            let mut entries = self.entries[shard(tag)].lock();
            if let Some(held) = entries.get_mut(&tag) {
                for &a in e.sampled() {
                    held.add(a);
                }
                held.accounts = held.accounts.max(e.accounts);
                held.first = held.first.min(e.first);
                held.last = held.last.max(e.last);
                continue;
            }
            if self.values.load(Relaxed) >= self.max_values {
                drop(entries);
                if !self.make_room(e.last) {
                    self.dropped.fetch_add(1, Relaxed);
                    continue;
                }
                entries = self.entries[shard(tag)].lock();
            }
            if entries.insert(tag, e).is_none() {
                self.values.fetch_add(1, Relaxed);
            }
        }
    }

    /// The imported indicators held, as imported, with their sightings.
    pub fn export_imports(&self) -> Vec<(ImportIndicator, Sightings)> {
        let imports = self.imports.read();
        imports
            .list
            .iter()
            .map(|i| {
                let count = i.count.load(Relaxed);
                (
                    ImportIndicator {
                        id: i.m.id.clone(),
                        producer: i.m.producer.clone(),
                        producer_name: i.m.producer_name.clone(),
                        kind: i.m.kind.clone(),
                        token: i.token,
                        confidence: i.confidence,
                        modified: i.modified,
                        valid_until: Some(i.m.valid_until),
                        revoked: i.revoked,
                        campaign: i.campaign.clone(),
                    },
                    // (No sighting: no times.)
                    match count {
                        0 => Sightings::default(),
                        _ => Sightings {
                            count,
                            first: f64::from_bits(i.first.load(Relaxed)),
                            last: f64::from_bits(i.last.load(Relaxed)),
                        },
                    },
                )
            })
            .collect()
    }

    /// Adds sightings to an imported indicator held.
    pub fn add_sightings(&self, id: &str, s: Sightings) {
        if s.count == 0 {
            return;
        }
        let imports = self.imports.read();
        if let Some(&at) = imports.by_id.get(id) {
            let i = &imports.list[at as usize];
            i.count.fetch_add(s.count, Relaxed);
            i.first.fetch_min(s.first.max(0.0).to_bits(), Relaxed);
            i.last.fetch_max(s.last.max(0.0).to_bits(), Relaxed);
        }
    }

    /// Writes the section (see the module docs); `kind_name` names a kind index.
    pub(crate) fn encode(&self, w: &mut Writer, kind_name: &dyn Fn(u8) -> String) {
        w.bytes(&self.key.key_id());
        let mut entries: Vec<(u64, Entry)> = self
            .entries_with_tags()
            .into_iter()
            .filter(|(_, e)| e.len > 0)
            .collect();
        // Deterministic bytes: by tag.
        entries.sort_unstable_by_key(|e| e.0);
        w.varint(entries.len() as u64);
        for (tag, e) in &entries {
            w.u64(*tag);
            w.str(&kind_name(e.kind));
            w.bytes(&e.token);
            w.u8(e.len);
            for &a in e.sampled() {
                w.u64(a);
            }
            w.u32(e.accounts.to_bits());
            w.u32(e.first);
            w.u32(e.last);
        }
        let imports = self.export_imports();
        w.varint(imports.len() as u64);
        for (i, s) in &imports {
            w.str(&i.id);
            w.str(&i.producer);
            opt_str(w, i.producer_name.as_deref());
            w.str(&i.kind);
            w.bytes(&i.token);
            w.u8(i.confidence);
            w.f64(i.modified);
            w.f64(i.valid_until.unwrap_or(f64::INFINITY));
            w.u8(u8::from(i.revoked));
            opt_str(w, i.campaign.as_deref());
            w.varint(s.count);
            w.f64(s.first);
            w.f64(s.last);
        }
    }
}

/// Reads a section written by [`Intel::encode`], with times moved by
/// `shift` seconds; `kind_of` gives this guard's index of a kind name
/// (`None`: a kind it does not record, which is an error).
pub(crate) fn decode(
    r: &mut Reader<'_>,
    shift: f64,
    kind_of: &dyn Fn(&str) -> Option<u8>,
) -> Result<IntelSnapshot, DecodeError> {
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(r.take(16, "intel key id")?);
    let minutes = |m: u32| {
        (f64::from(m) + shift / 60.0)
            .round()
            .clamp(0.0, f64::from(u32::MAX)) as u32
    };
    let n = r.varint("intel values")?;
    let n = r.expect_items(n, 8 + 1 + 32 + 1 + 12, "intel values")?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = r.u64("intel value tag")?;
        let name = r.str("intel value kind")?;
        let kind = kind_of(&name).ok_or_else(|| {
            r.err(format!(
                "intel value of kind {name:?}, which this guard does not record"
            ))
        })?;
        let token = read_token(r, "intel value token")?;
        let len = r.u8("intel sample size")?;
        if usize::from(len) > SAMPLE || len == 0 {
            return Err(r.err(format!(
                "intel sample of {len} accounts (1 to {SAMPLE} are kept)"
            )));
        }
        let mut sample = [0u64; SAMPLE];
        for s in sample.iter_mut().take(usize::from(len)) {
            *s = r.u64("intel sampled account")?;
        }
        if !sample[..usize::from(len)].is_sorted_by(|a, b| a < b) {
            return Err(r.err("intel sample is not in ascending order"));
        }
        let accounts = f32::from_bits(r.u32("intel value accounts")?);
        if !accounts.is_finite() || accounts < 0.0 {
            return Err(r.err("intel value accounts is not a count"));
        }
        let (first, last) = (r.u32("intel first seen")?, r.u32("intel last seen")?);
        entries.push((
            tag,
            Entry {
                token,
                kind,
                sample,
                len,
                accounts,
                first: minutes(first),
                last: minutes(last),
            },
        ));
    }
    let n = r.varint("intel imports")?;
    let n = r.expect_items(n, 4 + 32 + 1 + 16 + 2 + 24, "intel imports")?;
    let mut imports = Vec::with_capacity(n);
    let mut sightings = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.str("import id")?;
        let producer = r.str("import producer")?;
        let producer_name = read_opt_str(r, "import producer name")?;
        let kind = r.str("import kind")?;
        let token = read_token(r, "import token")?;
        let confidence = r.u8("import confidence")?;
        let modified = r.f64("import modified")? + shift;
        let until = f64::from_bits(r.u64("import valid until")?);
        let valid_until = if until == f64::INFINITY {
            None
        } else if until.is_finite() {
            Some(until + shift)
        } else {
            return Err(r.err("import valid until is not a time"));
        };
        let revoked = match r.u8("import revoked")? {
            0 => false,
            1 => true,
            b => return Err(r.err(format!("import revoked: byte {b} is neither 0 nor 1"))),
        };
        let campaign = read_opt_str(r, "import campaign")?;
        let count = r.varint("import sightings")?;
        let first = r.f64("import first sighting")?;
        let last = r.f64("import last sighting")?;
        let (first, last) = if count > 0 {
            ((first + shift).max(0.0), (last + shift).max(0.0))
        } else {
            (first, last)
        };
        imports.push(ImportIndicator {
            id,
            producer,
            producer_name,
            kind,
            token,
            confidence,
            modified,
            valid_until,
            revoked,
            campaign,
        });
        sightings.push(Sightings { count, first, last });
    }
    Ok(IntelSnapshot {
        key_id,
        entries,
        imports,
        sightings,
    })
}

impl IntelSnapshot {
    /// Fails unless `intel` (this guard's, if any) can take it: the same
    /// consortium key, and imports that pass the import checks.
    pub fn check(
        &self,
        intel: Option<&Intel>,
        kind_of: &dyn Fn(&str) -> Option<u8>,
        horizon_secs: f64,
        now: f64,
    ) -> Result<(), IntelError> {
        let Some(intel) = intel else {
            return Ok(());
        };
        if self.key_id != intel.key.key_id() {
            return Err(IntelError::new(format!(
                "its intelligence is hashed under consortium key {}, and this guard's key is {}",
                super::hex(&self.key_id),
                intel.key.key_id_hex()
            )));
        }
        intel.check_importable(&self.imports, kind_of, horizon_secs, now)
    }
}

impl Intel {
    /// Folds a checked section in ([`IntelSnapshot::check`]): a restore
    /// into a fresh guard, or another node's merge. Remembered values
    /// merge; imports are imported (later versions win, revocations stand)
    /// and their sightings add up.
    pub(crate) fn fold_in(
        &self,
        snap: IntelSnapshot,
        kind_of: &dyn Fn(&str) -> Option<u8>,
        horizon_secs: f64,
        now: f64,
    ) {
        self.merge_entries(snap.entries);
        if !snap.imports.is_empty() {
            // (Checked beforehand: it cannot fail.)
            let _ = self.import(&snap.imports, kind_of, horizon_secs, now);
        }
        for (i, s) in snap.imports.iter().zip(snap.sightings) {
            self.add_sightings(&i.id, s);
        }
    }
}
