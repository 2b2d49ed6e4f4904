//! A fixed table of cells, each holding a key's tag and its state behind a
//! small lock of its own, found by probing from the key's home cell. When a
//! new key finds its cells all taken, the least recently active one is
//! replaced. The scorer keeps its clusters in one, the crowds theirs.
//!
//! In a snapshot a table is written as its size in cells, how many are
//! taken, and each taken cell in order: `u32` cell, `u64` tag, then its
//! state as its owner writes it.

use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};
use crate::sketch::hash::reduce;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The cells probed from a key's home cell.
pub(crate) const PROBE: usize = 8;

/// A state that knows when it was last active (seconds), so the least
/// recently active can make room.
pub(crate) trait Recency {
    fn last_active(&self) -> f64;
}

/// A cell: the key's tag (0 when free) and its state.
pub(crate) struct Slot<S> {
    tag: AtomicU64,
    state: Mutex<S>,
}

/// See the module docs.
pub(crate) struct LockedSlots<S> {
    slots: Box<[Slot<S>]>,
}

/// A table's taken cells as decoded from a snapshot.
pub(crate) struct TakenCells<S> {
    /// The table's size in cells.
    pub len: usize,
    /// (cell, tag, state), in cell order.
    pub cells: Vec<(u32, u64, S)>,
}

impl<S: Default + Copy + Recency> LockedSlots<S> {
    /// A table for `max` keys (25 % headroom, plus a probe window).
    pub fn new(max: usize) -> LockedSlots<S> {
        let n = max + max / 4 + PROBE;
        LockedSlots {
            slots: (0..n)
                .map(|_| Slot {
                    tag: AtomicU64::new(0),
                    state: Mutex::new(S::default()),
                })
                .collect(),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot<S>>()
    }

    fn home(&self, tag: u64) -> usize {
        reduce(tag, self.slots.len() - PROBE)
    }

    fn find(&self, tag: u64) -> Option<usize> {
        if tag == 0 {
            return None; // (the tag of a free cell)
        }
        let h = self.home(tag);
        (h..h + PROBE).find(|&i| self.slots[i].tag.load(Relaxed) == tag)
    }

    /// The cell of `tag`, taken (or the least recently active of its window
    /// replaced) with `fresh()` if new.
    fn find_or_insert(&self, tag: u64, fresh: &impl Fn() -> S) -> usize {
        let h = self.home(tag);
        for i in h..h + PROBE {
            let slot = &self.slots[i];
            let t = slot.tag.load(Relaxed);
            if t == tag {
                return i;
            }
            if t == 0 {
                let mut st = slot.state.lock();
                match slot.tag.compare_exchange(0, tag, Relaxed, Relaxed) {
                    Ok(_) => {
                        *st = fresh();
                        return i;
                    }
                    Err(t) if t == tag => return i,
                    Err(_) => {}
                }
            }
        }
        let oldest = (h..h + PROBE)
            .min_by(|&x, &y| {
                let (a, b) = (
                    self.slots[x].state.lock().last_active(),
                    self.slots[y].state.lock().last_active(),
                );
                a.total_cmp(&b)
            })
            .unwrap_or(h);
        let slot = &self.slots[oldest];
        let mut st = slot.state.lock();
        slot.tag.store(tag, Relaxed);
        *st = fresh();
        oldest
    }

    /// Runs `f` on `tag`'s state under its cell's lock, taking a cell for
    /// it (starting from `fresh()`) if it has none. `None` for tag 0 (a free
    /// cell's), or if its cell was taken by another key twice in between.
    pub fn update<R>(
        &self,
        tag: u64,
        fresh: impl Fn() -> S,
        f: impl FnOnce(&mut S) -> R,
    ) -> Option<R> {
        if tag == 0 {
            return None;
        }
        for _ in 0..2 {
            let i = self.find_or_insert(tag, &fresh);
            let slot = &self.slots[i];
            let mut st = slot.state.lock();
            if slot.tag.load(Relaxed) != tag {
                continue; // replaced in between: look again
            }
            return Some(f(&mut st));
        }
        None
    }

    /// Runs `f` on `tag`'s state under its cell's lock, if it has a cell.
    pub fn update_existing<R>(&self, tag: u64, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        let slot = &self.slots[self.find(tag)?];
        let mut st = slot.state.lock();
        (slot.tag.load(Relaxed) == tag).then(|| f(&mut st))
    }

    /// A copy of `tag`'s state, if it has a cell.
    pub fn get(&self, tag: u64) -> Option<S> {
        self.update_existing(tag, |st| *st)
    }

    /// Writes the table (see the module docs), each state with `write`.
    pub fn encode(&self, w: &mut Writer, write: impl Fn(&S, &mut Writer)) {
        w.u64(self.slots.len() as u64);
        let taken: Vec<(usize, u64, S)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let st = *s.state.lock();
                let tag = s.tag.load(Relaxed);
                (tag != 0).then_some((i, tag, st))
            })
            .collect();
        w.u64(taken.len() as u64);
        for (i, tag, st) in taken {
            w.u32(i as u32);
            w.u64(tag);
            write(&st, w);
        }
    }

    /// Empties every cell, then fills the given ones (restore only).
    pub fn install(&self, cells: Vec<(u32, u64, S)>) {
        for slot in self.slots.iter() {
            let mut st = slot.state.lock();
            slot.tag.store(0, Relaxed);
            *st = S::default();
        }
        for (i, tag, state) in cells {
            if let Some(slot) = self.slots.get(i as usize) {
                let mut st = slot.state.lock();
                slot.tag.store(tag, Relaxed);
                *st = state;
            }
        }
    }

    /// Whether decoded cells fit this table as they are; the message names
    /// the `setting` that sizes it.
    pub fn check_installable(
        &self,
        t: &TakenCells<S>,
        what: &str,
        setting: &str,
    ) -> Result<(), String> {
        if t.len != self.slots.len() {
            return Err(format!(
                "its {what} table has {} cells, this guard's {}: restore into a guard with the same `{setting}`, or merge it",
                t.len,
                self.slots.len()
            ));
        }
        Ok(())
    }
}

/// Reads what [`LockedSlots::encode`] wrote: `what` names the table's
/// entries in errors, `min_size` is the fewest bytes an entry takes (cell
/// and tag included), and `read` reads one state given its cell and tag.
pub(crate) fn decode_taken<S>(
    r: &mut Reader<'_>,
    what: &str,
    min_size: usize,
    mut read: impl FnMut(&mut Reader<'_>, u32, u64) -> Result<S, Error>,
) -> Result<TakenCells<S>, Error> {
    let len = r.u64(&format!("{what} table size"))?;
    if len < PROBE as u64 || len > 1 << 30 {
        return Err(r.err(format!("{what} table size {len} is out of range")));
    }
    let len = len as usize;
    let n = r.u64(&format!("{what} count"))?;
    let n = r.expect_items(n, min_size, what)?;
    let mut cells = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let i = r.u32(&format!("{what} cell"))?;
        if i as usize >= len || last.is_some_and(|l| l >= i) {
            return Err(r.err(format!("{what} cell {i} is out of order or beyond {len}")));
        }
        last = Some(i);
        let tag = r.u64(&format!("{what} tag"))?;
        if tag == 0 {
            return Err(r.err(format!("{what} cell {i} has no tag")));
        }
        let state = read(r, i, tag)?;
        cells.push((i, tag, state));
    }
    Ok(TakenCells { len, cells })
}
