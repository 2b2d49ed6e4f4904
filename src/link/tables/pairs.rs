//! The linked-pairs table.

use super::super::kinds::GROUPS;
use super::{alloc_cells, cells_for, home, remove_shifting, window};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Weight units per 1.0.
pub(crate) const UNITS: f64 = 20.0;

/// Evidence per group, 5 bits each (weight in twentieths, at most 31).
const FIELD_BITS: u32 = 5;
const FIELD: u64 = (1 << FIELD_BITS) - 1;

const _: () = assert!(GROUPS as u32 * FIELD_BITS <= 64);

/// The evidence between two accounts: per evidence group, the weight (in
/// [`UNITS`]) of the strongest value of that group they share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Weights(u64);

impl Weights {
    /// The most units one group holds.
    pub const MAX: u8 = FIELD as u8;

    pub fn from_bits(bits: u64) -> Weights {
        Weights(bits)
    }

    /// Whether `bits` is a weight word (no bits beyond the groups').
    pub fn is_valid(bits: u64) -> bool {
        bits >> (GROUPS as u32 * FIELD_BITS).min(63) == 0
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    /// Group `g`'s units.
    #[inline]
    fn get(self, g: u32) -> u64 {
        (self.0 >> (g * FIELD_BITS)) & FIELD
    }

    /// With group `group` at least `units` (capped at [`Weights::MAX`]).
    #[inline]
    pub fn raised(self, group: u8, units: u8) -> Weights {
        let shift = u32::from(group) * FIELD_BITS;
        let w = u64::from(units).min(FIELD);
        if (self.0 >> shift) & FIELD < w {
            Weights((self.0 & !(FIELD << shift)) | (w << shift))
        } else {
            self
        }
    }

    /// The summed evidence, in units.
    pub fn strength(self) -> u32 {
        (0..GROUPS as u32).map(|g| self.get(g) as u32).sum()
    }

    /// These weights with the groups `present` names (bit per group) taken
    /// from `new`.
    pub fn refresh(self, new: Weights, present: u16) -> Weights {
        let mut mask = 0u64;
        for g in 0..GROUPS as u32 {
            if present & (1 << g) != 0 {
                mask |= FIELD << (g * FIELD_BITS);
            }
        }
        Weights((self.0 & !mask) | (new.0 & mask))
    }

    /// The stronger of the two, group by group.
    pub fn max(self, other: Weights) -> Weights {
        Weights((0..GROUPS as u32).fold(0u64, |acc, g| {
            acc | (self.get(g).max(other.get(g)) << (g * FIELD_BITS))
        }))
    }
}

/// Two accounts' pair key: `(low + 1) << 32 | (high + 1)` (never 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PairKey(u64);

impl PairKey {
    pub fn new(a: u32, b: u32) -> PairKey {
        let (lo, hi) = (a.min(b), a.max(b));
        PairKey(((u64::from(lo) + 1) << 32) | (u64::from(hi) + 1))
    }

    /// The key of a snapshot, if it is one of two distinct accounts.
    pub fn checked(bits: u64) -> Option<PairKey> {
        let k = PairKey(bits);
        (bits >> 32 != 0 && bits & 0xffff_ffff != 0 && {
            let (x, y) = k.accounts();
            x < y
        })
        .then_some(k)
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    /// The two accounts, lower slot first.
    pub fn accounts(self) -> (u32, u32) {
        (
            ((self.0 >> 32) - 1) as u32,
            ((self.0 & 0xffff_ffff) - 1) as u32,
        )
    }

    /// A full-avalanche mix of the key (murmur3's finaliser): every key bit
    /// reaches the high bits that choose the cell.
    fn hash(self) -> u64 {
        let key = self.0;
        let mut h = key ^ (key >> 33);
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// One linked pair of accounts (24 bytes).
#[derive(Default)]
struct PairCell {
    /// A [`PairKey`]; 0 = empty.
    key: AtomicU64,
    /// The [`Weights`], as last seen.
    weights: AtomicU64,
    /// Last seen, minutes.
    seen: AtomicU64,
}

/// A pair cell's content, as snapshotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PairState {
    pub key: PairKey,
    pub weights: Weights,
    /// Last seen, minutes.
    pub seen: u64,
}

pub(crate) struct Pairs {
    cells: Box<[PairCell]>,
    len: AtomicUsize,
    replaced: AtomicU64,
}

impl Pairs {
    pub fn new(max: usize) -> Result<Pairs, String> {
        Ok(Pairs {
            cells: alloc_cells(cells_for(max), "pairs", |_| PairCell::default())?,
            len: AtomicUsize::new(0),
            replaced: AtomicU64::new(0),
        })
    }

    pub fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Pairs tracked.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Pairs replaced because their cells were all taken.
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Relaxed)
    }

    /// Stops at the first empty cell (see [`super::Values::find`]).
    pub fn find(&self, key: PairKey) -> Option<usize> {
        for i in window(key.hash(), self.cells.len()) {
            match self.cells[i].key.load(Relaxed) {
                k if k == key.0 => return Some(i),
                0 => return None,
                _ => {}
            }
        }
        None
    }

    /// Refreshes pair `i`'s evidence with the groups `present` names from
    /// `weights`, and its minute; the evidence before and after.
    pub fn refresh(
        &self,
        i: usize,
        weights: Weights,
        present: u16,
        minutes: u64,
    ) -> (Weights, Weights) {
        let cell = &self.cells[i];
        let mut old = Weights(cell.weights.load(Relaxed));
        let new = loop {
            let new = old.refresh(weights, present);
            if new == old {
                break new;
            }
            match cell
                .weights
                .compare_exchange_weak(old.0, new.0, Relaxed, Relaxed)
            {
                Ok(_) => break new,
                Err(x) => old = Weights(x),
            }
        };
        if cell.seen.load(Relaxed) != minutes {
            cell.seen.store(minutes, Relaxed);
        }
        (old, new)
    }

    /// Folds another node's evidence of pair `i` in: the stronger of each
    /// group, the later minute (maintenance only).
    pub fn absorb(&self, i: usize, weights: Weights, seen: u64) {
        let cell = &self.cells[i];
        let mine = Weights(cell.weights.load(Relaxed));
        cell.weights.store(mine.max(weights).0, Relaxed);
        cell.seen.store(cell.seen.load(Relaxed).max(seen), Relaxed);
    }

    /// Forgets, among the cells of `range`, the pairs `keep` rejects, and
    /// calls `kept` with each of the others (maintenance only, under the
    /// exclusive lock). Keys moved back into a hole are looked at in turn.
    /// Returns the cells looked at.
    pub fn sweep(
        &self,
        range: Range<usize>,
        keep: impl Fn(&PairState) -> bool,
        mut kept: impl FnMut(&PairState),
    ) -> usize {
        let mut work = 0;
        let mut i = range.start;
        let n = self.cells.len();
        while i < range.end.min(n) {
            work += 1;
            let Some(p) = self.state(i) else {
                i += 1;
                continue;
            };
            if keep(&p) {
                kept(&p);
                i += 1;
            } else {
                self.remove(i);
            }
        }
        work
    }

    /// The pair in cell `i`, if any.
    fn state(&self, i: usize) -> Option<PairState> {
        let c = &self.cells[i];
        let key = c.key.load(Relaxed);
        (key != 0).then(|| PairState {
            key: PairKey(key),
            weights: Weights(c.weights.load(Relaxed)),
            seen: c.seen.load(Relaxed),
        })
    }

    /// Empties cell `i`, moving later keys of its run back (maintenance only).
    fn remove(&self, i: usize) {
        remove_shifting(
            self.cells.len(),
            i,
            |k| self.state(k).map(|p| p.key.hash()),
            |from, to| {
                if let Some(p) = self.state(from) {
                    self.install(to, &p);
                }
            },
            |k| self.clear(k),
        );
    }

    /// The minute each of up to `n` pairs drawn from `draw` (cell indices
    /// reduced modulo the table) was last seen, for a quantile.
    pub fn sample_seen(&self, draw: impl Iterator<Item = u64>) -> Vec<u64> {
        let n = self.cells.len();
        draw.filter_map(|x| self.state(super::home(x, n)).map(|p| p.seen))
            .collect()
    }

    /// The tracked pairs' cells, in table order.
    pub fn live(&self) -> impl Iterator<Item = (u32, PairState)> + '_ {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key.load(Relaxed) != 0)
            .map(|(i, c)| {
                let state = PairState {
                    key: PairKey(c.key.load(Relaxed)),
                    weights: Weights(c.weights.load(Relaxed)),
                    seen: c.seen.load(Relaxed),
                };
                (i as u32, state)
            })
    }

    /// The pair's cell: found, taken if empty, or (all taken) the one seen
    /// longest ago replaced, its evidence forgotten.
    pub fn find_or_insert(&self, key: PairKey) -> usize {
        self.find_or_replace(key).0
    }

    /// [`Pairs::find_or_insert`], also giving the evidence of the pair it
    /// replaced, if it replaced one.
    pub fn find_or_replace(&self, key: PairKey) -> (usize, Option<Weights>) {
        let n = self.cells.len();
        let (mut oldest, mut oldest_seen) = (home(key.hash(), n), u64::MAX);
        for i in window(key.hash(), n) {
            let cell = &self.cells[i];
            let k = cell.key.load(Relaxed);
            if k == key.0 {
                return (i, None);
            }
            if k == 0 {
                match cell.key.compare_exchange(0, key.0, Relaxed, Relaxed) {
                    Ok(_) => {
                        self.len.fetch_add(1, Relaxed);
                        return (i, None);
                    }
                    Err(k) if k == key.0 => return (i, None),
                    Err(_) => continue,
                }
            }
            let seen = cell.seen.load(Relaxed);
            if seen < oldest_seen {
                (oldest, oldest_seen) = (i, seen);
            }
        }
        let cell = &self.cells[oldest];
        let old = cell.key.load(Relaxed);
        match cell.key.compare_exchange(old, key.0, Relaxed, Relaxed) {
            Ok(_) => {
                let evidence = cell.weights.swap(0, Relaxed);
                self.replaced.fetch_add(1, Relaxed);
                (oldest, Some(Weights(evidence)))
            }
            Err(k) if k == key.0 => (oldest, None),
            // Another pair took the cell first: look again.
            Err(_) => self.find_or_replace(key),
        }
    }

    pub fn clear(&self, i: usize) {
        let c = &self.cells[i];
        if c.key.swap(0, Relaxed) != 0 {
            self.len.fetch_sub(1, Relaxed);
        }
        c.weights.store(0, Relaxed);
        c.seen.store(0, Relaxed);
    }

    pub fn install(&self, i: usize, p: &PairState) {
        let c = &self.cells[i];
        if c.key.swap(p.key.0, Relaxed) == 0 {
            self.len.fetch_add(1, Relaxed);
        }
        c.weights.store(p.weights.0, Relaxed);
        c.seen.store(p.seen, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_keys_round_trip() {
        let k = PairKey::new(7, 3);
        assert_eq!(k, PairKey::new(3, 7));
        assert_eq!(k.accounts(), (3, 7));
        assert_eq!(PairKey::checked(k.bits()), Some(k));
        assert_eq!(PairKey::checked(PairKey::new(3, 3).bits()), None);
        assert_eq!(PairKey::checked(1 << 32), None);
    }

    #[test]
    fn weights_keep_the_strongest_of_each_group() {
        let w = Weights::default().raised(2, 8).raised(2, 5).raised(0, 40);
        assert_eq!(w.strength(), 8 + 31);
        assert_eq!(w.max(Weights::default().raised(2, 10)).strength(), 41);
        let fresh = Weights::default().raised(0, 3);
        assert_eq!(w.refresh(fresh, 1).strength(), 3 + 8);
        assert!(Weights::is_valid(w.bits()) && !Weights::is_valid(u64::MAX));
    }
}
