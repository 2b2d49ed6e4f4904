//! The keyed table: one GCRA cell per key, lock-free lookups, bounded size.
//!
//! Layout: the table is split into shards of 256 cells (fewer for tiny
//! tables), each holding at most three quarters as many keys, so probe
//! sequences stay short. Everything is allocated once: the table never grows.
//!
//! A cell is two atomics, 16 bytes: a 64-bit *tag* (half of the key's
//! 128-bit fingerprint; the other half chooses the shard) and a state word
//! holding an 8-bit *generation* and the 56-bit TAT. A key lives in the first
//! free cell of its linear probe sequence, so a lookup usually touches one
//! cache line. Lookups and GCRA updates take no lock: a reader probes for its
//! tag and updates the state word by compare-and-swap. Only giving a key a
//! cell (and so possibly reclaiming or evicting another) takes the shard's
//! mutex.
//!
//! Changing what a cell holds is a small seqlock: the writer first makes the
//! generation odd (every reader's pending compare-and-swap on that cell then
//! fails), changes the tag, and publishes an even generation. A reader trusts
//! a cell only if its tag matched before and after it read an even state word.

use super::gcra::MAX_TAT;
use crate::model::{AtomicU64, Mutex};
use std::sync::atomic::Ordering::*;

const GEN_SHIFT: u32 = 56;
const GEN_ONE: u64 = 1 << GEN_SHIFT;
const EMPTY: u64 = 0;
const TOMB: u64 = u64::MAX;
/// Cells per shard (a power of two); a shard holds at most 3/4 of them.
const SHARD_CELLS: usize = 256;
const SHARD_KEYS: usize = SHARD_CELLS * 3 / 4;

#[inline]
pub(crate) fn tat_of(w: u64) -> u64 {
    w & MAX_TAT
}
#[inline]
fn generation(w: u64) -> u64 {
    w >> GEN_SHIFT
}
#[inline]
fn with_tat(w: u64, tat: u64) -> u64 {
    (w & !MAX_TAT) | tat.min(MAX_TAT)
}
/// The next even generation after `w`'s, with `tat`.
#[inline]
fn next_even(w: u64, tat: u64) -> u64 {
    let g = generation(w);
    ((((g | 1) + 1) & 0xff) << GEN_SHIFT) | tat.min(MAX_TAT)
}
/// `w` with an odd generation (unchanged if already odd).
#[inline]
fn odd(w: u64) -> u64 {
    if generation(w) & 1 == 1 {
        w
    } else {
        w.wrapping_add(GEN_ONE)
    }
}

/// A 128-bit key fingerprint (seeded xxh3-128 of the key's bytes): `hi`
/// chooses the shard, `lo` is the tag stored in the cell.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Fp {
    pub(crate) hi: u64,
    pub(crate) lo: u64,
}

impl Fp {
    #[inline]
    fn tag(self) -> u64 {
        match self.lo {
            EMPTY => 1,
            TOMB => TOMB - 1,
            t => t,
        }
    }
}

struct Cell {
    tag: AtomicU64,
    state: AtomicU64,
}

#[derive(Default)]
struct Meta {
    live: usize,
    tombstones: usize,
    hand: usize,
    evictions: u64,
    reclaimed: u64,
    /// The latest TAT of any cell reclaimed in this shard. A key's fresh
    /// cell starts no earlier than this, so a clock stepping back below a
    /// reclaimed key's TAT cannot hand that key a full bucket again. (With
    /// a forward-moving clock it is always in the past and changes nothing.)
    reclaimed_tat: u64,
}

/// One shard: its cells (a run of the table's one array, so that finding
/// them reads no header: the hot path's one cache miss is the cell), the
/// most keys it holds, and its mutex.
struct Shard<'a> {
    cells: &'a [Cell],
    keys: usize,
    meta: &'a Mutex<Meta>,
}

/// A handle to a key's cell and the state word read from it: valid while
/// the cell's generation is unchanged.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    cell: &'a Cell,
    pub(crate) word: u64,
}

impl Slot<'_> {
    /// The key's TAT as read.
    #[inline]
    pub(crate) fn tat(&self) -> u64 {
        tat_of(self.word)
    }

    /// Replaces the TAT if the state word is unchanged. On failure, the slot
    /// holds the word re-read, and the error says whether the cell still
    /// belongs to the same key (another thread updated it: retry) or not
    /// (it was reassigned: look the key up again).
    ///
    /// The generation has 8 bits, so a handle held across 128 rewrites of
    /// its cell (a thread descheduled between lookup and update while its
    /// shard churns through thousands of new keys) would see the generation
    /// come round again; its update then still fails unless the cell also
    /// holds the very same TAT to the nanosecond, which live cells (never
    /// given TAT 0) practically never do.
    #[inline]
    pub(crate) fn replace(&mut self, tat: u64) -> Result<(), bool> {
        let new = with_tat(self.word, tat);
        match self
            .cell
            .state
            .compare_exchange_weak(self.word, new, AcqRel, Acquire)
        {
            Ok(_) => {
                self.word = new;
                Ok(())
            }
            Err(now) => {
                let same_key = generation(now) == generation(self.word);
                self.word = now;
                Err(same_key)
            }
        }
    }
}

/// Table statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Keys with a cell now.
    pub len: usize,
    /// The most keys the table holds.
    pub capacity: usize,
    /// Cells whose TAT had passed, reused for new keys (nothing lost).
    pub reclaimed: u64,
    /// Live cells evicted because the table was full (nearest to expiry first).
    pub evictions: u64,
    /// Shards the table is split into.
    pub shards: usize,
}

pub(crate) struct Table {
    /// Every shard's cells, `per` each.
    cells: Box<[Cell]>,
    /// Cells per shard (a power of two).
    per: usize,
    /// One per shard.
    metas: Box<[Mutex<Meta>]>,
    capacity: usize,
}

impl Table {
    /// A table that holds at most `capacity` keys (at least 1).
    pub(crate) fn new(capacity: usize) -> Table {
        let capacity = capacity.max(1);
        let n = capacity.div_ceil(SHARD_KEYS);
        let most = capacity.div_ceil(n);
        let per = (most * 4 / 3 + 1).next_power_of_two().clamp(4, SHARD_CELLS);
        Table {
            cells: (0..n * per)
                .map(|_| Cell {
                    tag: AtomicU64::new(EMPTY),
                    state: AtomicU64::new(0),
                })
                .collect(),
            per,
            metas: (0..n).map(|_| Mutex::new(Meta::default())).collect(),
            capacity,
        }
    }

    /// Shard `i` (of [`Table::shard_count`]).
    #[inline]
    fn shard_at(&self, i: usize) -> Shard<'_> {
        let n = self.metas.len();
        Shard {
            cells: &self.cells[i * self.per..(i + 1) * self.per],
            keys: self.capacity / n + usize::from(i < self.capacity % n),
            meta: &self.metas[i],
        }
    }

    #[inline]
    #[cfg(test)]
    pub(crate) fn shard_of(&self, fp: Fp) -> usize {
        self.shard_index(fp)
    }

    fn shard_index(&self, fp: Fp) -> usize {
        ((u128::from(fp.hi) * self.metas.len() as u128) >> 64) as usize
    }

    #[inline]
    fn shard(&self, fp: Fp) -> Shard<'_> {
        self.shard_at(self.shard_index(fp))
    }

    /// Reads the key's first cell, to bring it into the cache ahead of a
    /// lookup (the value is meaningless).
    #[inline]
    pub(crate) fn touch(&self, fp: Fp) -> u64 {
        let shard = self.shard(fp);
        let mask = shard.cells.len() - 1;
        shard.cells[fp.tag() as usize & mask].tag.load(Relaxed)
    }

    /// Lock-free lookup: the key's cell and its state word, if it has one.
    #[inline]
    pub(crate) fn find(&self, fp: Fp) -> Option<Slot<'_>> {
        let shard = self.shard(fp);
        let mask = shard.cells.len() - 1;
        let tag = fp.tag();
        let mut pos = tag as usize & mask;
        for _ in 0..=mask {
            let cell = &shard.cells[pos];
            let t = cell.tag.load(Acquire);
            if t == EMPTY {
                return None;
            }
            if t == tag {
                let w = cell.state.load(Acquire);
                if generation(w) & 1 == 0 && cell.tag.load(Acquire) == tag {
                    return Some(Slot { cell, word: w });
                }
                // Being rewritten: the locked path sorts it out.
                return None;
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Lookup under the shard's mutex: finds a key that the lock-free
    /// `find` can miss while its shard is being rewritten. For operations
    /// that must land on an existing cell (refunds, peeks).
    pub(crate) fn find_locked(&self, fp: Fp) -> Option<Slot<'_>> {
        let _meta = self.shard(fp).meta.lock();
        self.find(fp)
    }

    /// The key's cell, giving it one (reclaiming or evicting if its shard
    /// is full) under the shard's mutex. Returns the cell, and whether it
    /// was given now.
    ///
    /// A new cell's TAT is `first(start)`, where `start` is
    /// `max(now, latest reclaimed TAT)`: the same full bucket as a key
    /// never seen, and `first` applies the request that brought the key in
    /// before any other thread can see the cell. (A cell published at
    /// `start` and debited after would be expired, the first to go, until
    /// the debit lands: two threads bringing in keys of a full shard could
    /// then take each other's cells without end, which the model checker
    /// found.) The TAT is never 0, so a stale handle to an earlier occupant
    /// of the cell is unlikely to match its word (see `Slot::replace`).
    pub(crate) fn find_or_insert(
        &self,
        fp: Fp,
        now: u64,
        first: impl FnOnce(u64) -> u64,
    ) -> (Slot<'_>, bool) {
        let shard = &self.shard(fp);
        let mut meta = shard.meta.lock();
        if let Some(slot) = self.find(fp) {
            return (slot, false);
        }
        if meta.live >= shard.keys {
            Self::free_one(shard, &mut meta, now);
        }
        if meta.live + meta.tombstones + 1 > shard.cells.len() - shard.cells.len() / 8 {
            Self::rebuild(shard, &mut meta);
        }
        let start = now.max(meta.reclaimed_tat).min(MAX_TAT);
        let tat = first(start).clamp(start, MAX_TAT);
        let (cell, word, reused) = Self::place(shard, fp.tag(), tat);
        meta.live += 1;
        meta.tombstones -= usize::from(reused);
        (Slot { cell, word }, true)
    }

    /// Writes `tag` with `tat` into the first free cell of its probe
    /// sequence (under the mutex). Returns the cell, the published state
    /// word, and whether a tombstone was reused.
    fn place<'a>(shard: &Shard<'a>, tag: u64, tat: u64) -> (&'a Cell, u64, bool) {
        let mask = shard.cells.len() - 1;
        let mut pos = tag as usize & mask;
        loop {
            let cell = &shard.cells[pos];
            let t = cell.tag.load(Relaxed);
            if t == EMPTY || t == TOMB {
                let w = cell.state.load(Relaxed);
                cell.state.store(odd(w), Release);
                cell.tag.store(tag, Release);
                let word = next_even(w, tat);
                cell.state.store(word, Release);
                return (cell, word, t == TOMB);
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Turns a live cell into a tombstone if its state word is still
    /// `observed`; else returns the word it holds now (a request updated it).
    fn retire(cell: &Cell, observed: u64) -> Result<(), u64> {
        cell.state
            .compare_exchange(observed, odd(observed), AcqRel, Acquire)?;
        cell.tag.store(TOMB, Release);
        cell.state.store(next_even(observed, 0), Release);
        Ok(())
    }

    /// Frees one cell of a full shard: the first expired one from the clock
    /// hand (its state equals a fresh cell's, so nothing is lost); if every
    /// cell is live, the one nearest to expiry.
    fn free_one(shard: &Shard, meta: &mut Meta, now: u64) {
        let n = shard.cells.len();
        loop {
            let mut best: Option<(usize, u64)> = None;
            for _ in 0..n {
                let i = meta.hand;
                meta.hand = if i + 1 == n { 0 } else { i + 1 };
                let cell = &shard.cells[i];
                let t = cell.tag.load(Relaxed);
                if t == EMPTY || t == TOMB {
                    continue;
                }
                let mut w = cell.state.load(Acquire);
                if tat_of(w) <= now {
                    match Self::retire(cell, w) {
                        Ok(()) => {
                            meta.reclaimed += 1;
                            meta.reclaimed_tat = meta.reclaimed_tat.max(tat_of(w));
                            meta.live -= 1;
                            meta.tombstones += 1;
                            return;
                        }
                        // Used just now: live after all, and still a
                        // candidate for eviction. (Skipping it could leave
                        // the shard with no candidate, and a key over its
                        // capacity: found by the model checker.)
                        Err(current) => w = current,
                    }
                }
                if best.is_none_or(|(_, b)| tat_of(w) < tat_of(b)) {
                    best = Some((i, w));
                }
            }
            let Some((i, w)) = best else { return };
            if Self::retire(&shard.cells[i], w).is_ok() {
                meta.evictions += 1;
                meta.live -= 1;
                meta.tombstones += 1;
                return;
            }
            // The victim was updated while we scanned: choose again.
        }
    }

    /// Re-places every live key to clear the tombstones. Readers racing it
    /// may miss a key and take the locked path, which waits for it; their
    /// pending compare-and-swaps fail on the changed generations.
    fn rebuild(shard: &Shard, meta: &mut Meta) {
        let mut live = Vec::with_capacity(meta.live);
        for cell in shard.cells.iter() {
            let t = cell.tag.load(Relaxed);
            // Freeze every cell: odd generation, so no update lands.
            let w = cell
                .state
                .fetch_update(AcqRel, Acquire, |w| Some(odd(w)))
                .unwrap_or(0);
            if t != EMPTY && t != TOMB {
                live.push((t, tat_of(w)));
            }
            cell.tag.store(EMPTY, Release);
            cell.state.store(next_even(w, 0), Release);
        }
        meta.tombstones = 0;
        for (tag, tat) in live {
            Self::place(shard, tag, tat);
        }
    }

    /// Rebuilds shard `i` now (for the model checker and the tests).
    #[cfg(test)]
    pub(crate) fn rebuild_shard_for_test(&self, i: usize) {
        let shard = &self.shard_at(i);
        let mut meta = shard.meta.lock();
        Self::rebuild(shard, &mut meta);
    }

    /// Bytes held by the cells and shards.
    pub(crate) fn bytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<Cell>()
            + self.metas.len() * std::mem::size_of::<Mutex<Meta>>()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every live cell (TAT after `now`) as (shard, tag, TAT), sorted: the
    /// order does not depend on where in its shard a key happens to sit.
    pub(crate) fn export(&self, now: u64) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        for i in 0..self.metas.len() {
            let shard = self.shard_at(i);
            let _meta = shard.meta.lock();
            for cell in shard.cells.iter() {
                let tag = cell.tag.load(Acquire);
                let tat = tat_of(cell.state.load(Acquire));
                if tag != EMPTY && tag != TOMB && tat > now {
                    out.push((i as u32, tag, tat));
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The most keys shard `i` holds.
    pub(crate) fn shard_keys(&self, i: usize) -> usize {
        if i < self.metas.len() {
            self.shard_at(i).keys
        } else {
            0
        }
    }

    /// The number of shards (a snapshot is restored only into a table of the
    /// same shape).
    pub(crate) fn shard_count(&self) -> usize {
        self.metas.len()
    }

    /// Adds `ahead` ns of debt to the key (shard, tag), giving it a cell if
    /// it has none (reclaiming or evicting as usual).
    pub(crate) fn merge_debt(&self, shard: u32, tag: u64, now: u64, ahead: u64) {
        let shard = shard as usize;
        if shard >= self.metas.len() {
            return;
        }
        let s = &self.shard_at(shard);
        if tag == EMPTY || tag == TOMB {
            return;
        }
        let mut meta = s.meta.lock();
        let mask = s.cells.len() - 1;
        let mut pos = tag as usize & mask;
        for _ in 0..=mask {
            let cell = &s.cells[pos];
            let t = cell.tag.load(Acquire);
            if t == EMPTY {
                break;
            }
            if t == tag {
                let _ = cell.state.fetch_update(AcqRel, Acquire, |w| {
                    Some(with_tat(w, tat_of(w).max(now).saturating_add(ahead)))
                });
                return;
            }
            pos = (pos + 1) & mask;
        }
        if meta.live >= s.keys {
            Self::free_one(s, &mut meta, now);
        }
        if meta.live + meta.tombstones + 1 > s.cells.len() - s.cells.len() / 8 {
            Self::rebuild(s, &mut meta);
        }
        let (_, _, reused) = Self::place(s, tag, now.saturating_add(ahead).min(MAX_TAT));
        meta.live += 1;
        meta.tombstones -= usize::from(reused);
    }

    /// Puts a key's cell back (restoring a snapshot into an empty table).
    /// Fails if the shard does not exist or is full.
    pub(crate) fn import(&self, shard: u32, tag: u64, tat: u64) -> Result<(), String> {
        if shard as usize >= self.metas.len() {
            return Err(format!("shard {shard} does not exist"));
        }
        let s = &self.shard_at(shard as usize);
        if tag == EMPTY || tag == TOMB {
            return Err(format!("{tag:#x} is not a key tag"));
        }
        let mut meta = s.meta.lock();
        if meta.live >= s.keys {
            return Err(format!("shard {shard} holds more keys than its capacity"));
        }
        Self::place(s, tag, tat.min(MAX_TAT));
        meta.live += 1;
        Ok(())
    }

    pub(crate) fn stats(&self) -> TableStats {
        let mut s = TableStats {
            capacity: self.capacity,
            shards: self.metas.len(),
            ..TableStats::default()
        };
        for meta in self.metas.iter() {
            let m = meta.lock();
            s.len += m.live;
            s.evictions += m.evictions;
            s.reclaimed += m.reclaimed;
        }
        s
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Fp, Table};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Threads inserting, updating, evicting and rebuilding in a table of
    /// two shards too small for their keys (small enough for Miri, which
    /// checks every access for data races and undefined behaviour): every
    /// update that lands is on a key's own cell, and no shard holds more
    /// keys than it may.
    #[test]
    fn threads_churning_a_tiny_table() {
        let table = Table::new(6);
        let landed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (table, landed) = (&table, &landed);
                s.spawn(move || {
                    for i in 0..60u64 {
                        let fp = Fp {
                            hi: (i % 4) << 62,
                            lo: 0x100 * (t + 1) + i % 5,
                        };
                        let now = 1_000 + i;
                        let (mut slot, _) = table.find_or_insert(fp, now, |start| start + 1);
                        loop {
                            let tat = slot.tat();
                            match slot.replace(tat + 1) {
                                Ok(()) => {
                                    landed.fetch_add(1, Relaxed);
                                    break;
                                }
                                Err(true) => continue,
                                Err(false) => break, // reassigned: a new lookup would follow
                            }
                        }
                        if i % 17 == 0 {
                            table.rebuild_shard_for_test((t as usize) % table.shard_count());
                        }
                    }
                });
            }
        });
        let stats = table.stats();
        assert!(stats.len <= stats.capacity, "{stats:?}");
        assert!(landed.load(Relaxed) > 0);
        for (shard, tag, tat) in table.export(0) {
            assert!(
                tag >= 0x100 && tat >= 1_000,
                "shard {shard}: {tag:#x} at {tat}"
            );
        }
    }
}
