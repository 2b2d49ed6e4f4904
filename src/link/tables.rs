//! The linker's fixed-size tables: accounts (with the concurrent union-find
//! of clusters), fingerprint values, and linked pairs.
//!
//! Each is an open-addressed array of small atomic cells, allocated once.
//! A key's cells are the `PROBE` cells from the one its hash chooses. On the
//! hot path cells only go from empty to taken, so two threads inserting one
//! key race for the same first empty cell and the loser finds the winner's
//! key: no lock, no duplicate. Cells are emptied only by the maintenance
//! pass (under the linker's exclusive lock); value cells, which are cheap to
//! lose, may also be *replaced* on the hot path when all of a key's cells
//! are taken (the one seen longest ago goes).

use super::kinds::GROUPS;
use crate::sketch::PackedHll;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Cells a key may occupy.
pub(crate) const PROBE: usize = 32;

/// Cells for a table meant to hold `max` keys: 25 % headroom, and at least
/// one probe window.
pub(crate) fn cells_for(max: usize) -> usize {
    max.saturating_add(max / 4).max(PROBE)
}

/// The first cell of `hash` among `n` (a multiply-shift, so `n` need not be
/// a power of two).
#[inline]
fn home(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

#[inline]
fn window(hash: u64, n: usize) -> impl Iterator<Item = usize> {
    let start = home(hash, n);
    (0..PROBE.min(n)).map(move |i| {
        let j = start + i;
        if j >= n {
            j - n
        } else {
            j
        }
    })
}

/// `n` cells made by `make`, allocated fallibly: a table too large for the
/// machine is an error naming it, not an abort.
pub(crate) fn alloc_cells<T>(
    n: usize,
    what: &str,
    make: impl Fn(usize) -> T,
) -> Result<Box<[T]>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        format!(
            "cannot allocate the {what} table ({n} cells, {} MiB): lower its `link.max_*` setting",
            (n * std::mem::size_of::<T>()) >> 20
        )
    })?;
    v.extend((0..n).map(make));
    Ok(v.into_boxed_slice())
}

// ---------------------------------------------------------------- accounts

/// One tracked account (32 bytes).
#[derive(Default)]
pub(crate) struct AccountCell {
    /// The account's hash (never 0); 0 = empty.
    pub tag: AtomicU64,
    /// Last seen (seconds, low 30 bits), paired flag (bit 30), named flag
    /// (bit 31), order of arrival (high 32 bits).
    pub seen: AtomicU64,
    /// Union-find parent (itself at a root).
    pub parent: AtomicU32,
    /// Accounts in the cluster (meaningful at a root).
    pub size: AtomicU32,
    /// The hash of the fingerprints the account last presented (high 32
    /// bits) and the minute it did (low 32): a request presenting the same
    /// ones in the same minute has nothing new to record about them.
    pub memo: AtomicU64,
}

pub(crate) const NAMED: u64 = 1 << 31;
/// Set once the account is in a linked pair (cleared by the rebuild when
/// it no longer is): accounts without it need no pair lookups.
pub(crate) const PAIRED: u64 = 1 << 30;
pub(crate) const SECONDS: u64 = PAIRED - 1;

pub(crate) struct Accounts {
    pub cells: Box<[AccountCell]>,
    pub len: AtomicUsize,
    born: AtomicU32,
    /// Held while two clusters join.
    joining: parking_lot::Mutex<()>,
}

impl Accounts {
    pub fn new(max: usize) -> Result<Accounts, String> {
        let cells = alloc_cells(cells_for(max), "accounts", |i| AccountCell {
            parent: AtomicU32::new(i as u32),
            size: AtomicU32::new(1),
            ..AccountCell::default()
        })?;
        Ok(Accounts {
            cells,
            len: AtomicUsize::new(0),
            born: AtomicU32::new(0),
            joining: parking_lot::Mutex::new(()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Reads the first cell `tag` may occupy (to bring it into the cache).
    #[inline]
    pub fn touch_home(&self, tag: u64) -> u64 {
        self.cells[home(tag, self.cells.len())].tag.load(Relaxed)
    }

    pub fn find(&self, tag: u64) -> Option<u32> {
        window(tag, self.cells.len())
            .find(|&i| self.cells[i].tag.load(Relaxed) == tag)
            .map(|i| i as u32)
    }

    /// The account's cell, taken if new; `None` if its cells are all taken
    /// by others.
    pub fn find_or_insert(&self, tag: u64, now: u64) -> Option<u32> {
        // The whole window first: an expiry may have left a hole before the
        // account's cell, which must not be taken for a second copy.
        if let Some(a) = self.find(tag) {
            return Some(a);
        }
        for i in window(tag, self.cells.len()) {
            let cell = &self.cells[i];
            let t = cell.tag.load(Relaxed);
            if t == tag {
                return Some(i as u32);
            }
            if t == 0 {
                match cell.tag.compare_exchange(0, tag, Relaxed, Relaxed) {
                    Ok(_) => {
                        let born = self.born.fetch_add(1, Relaxed);
                        cell.seen
                            .store((u64::from(born) << 32) | (now & SECONDS), Relaxed);
                        self.len.fetch_add(1, Relaxed);
                        return Some(i as u32);
                    }
                    Err(t) if t == tag => return Some(i as u32),
                    Err(_) => {}
                }
            }
        }
        None
    }

    /// Marks `a` seen at `now` (seconds), writing only when the second changed.
    #[inline]
    pub fn touch(&self, a: u32, now: u64) {
        let cell = &self.cells[a as usize];
        let s = cell.seen.load(Relaxed);
        if s & SECONDS != now & SECONDS {
            let _ = cell
                .seen
                .fetch_update(Relaxed, Relaxed, |s| Some((s & !SECONDS) | (now & SECONDS)));
        }
    }

    pub fn seen(&self, a: u32) -> u64 {
        self.cells[a as usize].seen.load(Relaxed) & SECONDS
    }

    fn order(&self, a: u32) -> (u32, u32) {
        ((self.cells[a as usize].seen.load(Relaxed) >> 32) as u32, a)
    }

    /// The root of `a`'s cluster (with path halving).
    #[inline]
    pub fn root(&self, mut x: u32) -> u32 {
        loop {
            let p = self.cells[x as usize].parent.load(Relaxed);
            if p == x {
                return x;
            }
            let gp = self.cells[p as usize].parent.load(Relaxed);
            if gp != p {
                let _ = self.cells[x as usize]
                    .parent
                    .compare_exchange(p, gp, Relaxed, Relaxed);
            }
            x = gp;
        }
    }

    /// Joins the clusters of `a` and `b`; the root is the older account, so
    /// a cluster's identity stays that of its first member. Joining is rare
    /// (most calls find one root and return at once) and takes a mutex, so
    /// roots change one at a time and every size stays exact.
    pub fn union(&self, a: u32, b: u32) -> bool {
        if self.root(a) == self.root(b) {
            return false;
        }
        let _one = self.joining.lock();
        let (ra, rb) = (self.root(a), self.root(b));
        if ra == rb {
            return false;
        }
        let (child, root) = if self.order(ra) < self.order(rb) {
            (rb, ra)
        } else {
            (ra, rb)
        };
        let c = &self.cells[child as usize];
        c.parent.store(root, Relaxed);
        let n = c.size.load(Relaxed);
        self.cells[root as usize].size.fetch_add(n, Relaxed);
        true
    }

    /// Empties cell `a` (maintenance only).
    pub fn clear(&self, a: usize) {
        let c = &self.cells[a];
        if c.tag.swap(0, Relaxed) != 0 {
            self.len.fetch_sub(1, Relaxed);
        }
        c.seen.store(0, Relaxed);
        c.parent.store(a as u32, Relaxed);
        c.size.store(1, Relaxed);
        c.memo.store(0, Relaxed);
    }

    /// Every account its own cluster (maintenance only).
    pub fn reset_clusters(&self) {
        for (i, c) in self.cells.iter().enumerate() {
            c.parent.store(i as u32, Relaxed);
            c.size.store(1, Relaxed);
        }
    }

    pub fn born_counter(&self) -> u32 {
        self.born.load(Relaxed)
    }

    pub fn set_born_counter(&self, v: u32) {
        self.born.store(v, Relaxed);
    }

    /// Installs a cell as it was snapshotted (maintenance only).
    pub fn install(&self, a: usize, tag: u64, seen: u64) {
        let c = &self.cells[a];
        c.memo.store(0, Relaxed);
        if c.tag.swap(tag, Relaxed) == 0 {
            self.len.fetch_add(1, Relaxed);
        }
        c.seen.store(seen, Relaxed);
    }
}

// ------------------------------------------------------------------ values

/// The distinct-accounts sketch of a fingerprint value: 8 registers in the
/// low half of its stat word (see [`PackedHll`]).
pub(crate) type ValueHll = PackedHll<8>;

/// One fingerprint value (24 bytes).
#[derive(Default)]
pub(crate) struct ValueCell {
    /// Hash of (kind, value) with the kind's index in the low byte; 0 = empty.
    pub tag: AtomicU64,
    /// The first two accounts that presented it (slot + 1; 0 = none).
    pub anchors: AtomicU64,
    /// Tiny HLL of its accounts (low 32 bits), last seen in minutes (24
    /// bits), its current link weight in twentieths (high 8 bits).
    pub stat: AtomicU64,
}

pub(crate) const WEIGHT_SHIFT: u32 = 56;
const MINUTES_SHIFT: u32 = 32;
const MINUTES: u64 = (1 << 24) - 1;

pub(crate) fn stat_minutes(stat: u64) -> u64 {
    (stat >> MINUTES_SHIFT) & MINUTES
}

/// The link weight of a value, in twentieths.
pub(crate) fn stat_weight(stat: u64) -> u8 {
    (stat >> WEIGHT_SHIFT) as u8 & WEIGHT_UNITS
}

/// Whether a value is so common that it carries no weight and never will
/// again before it expires (its accounts are not even looked at).
pub(crate) fn stat_saturated(stat: u64) -> bool {
    (stat >> WEIGHT_SHIFT) as u8 & SATURATED != 0
}

/// The weight byte: units in the low bits, the saturation flag on top.
pub(crate) const WEIGHT_UNITS: u8 = 0x3f;
pub(crate) const SATURATED: u8 = 0x80;

pub(crate) fn make_stat(hll: u64, minutes: u64, weight: u8) -> u64 {
    (hll & ValueHll::MASK)
        | ((minutes & MINUTES) << MINUTES_SHIFT)
        | (u64::from(weight) << WEIGHT_SHIFT)
}

pub(crate) struct Values {
    pub cells: Box<[ValueCell]>,
    pub len: AtomicUsize,
    pub replaced: AtomicU64,
}

impl Values {
    pub fn new(max: usize) -> Result<Values, String> {
        Ok(Values {
            cells: alloc_cells(cells_for(max), "values", |_| ValueCell::default())?,
            len: AtomicUsize::new(0),
            replaced: AtomicU64::new(0),
        })
    }

    pub fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Reads the first cell `tag` may occupy (to bring it into the cache).
    #[inline]
    pub fn touch_home(&self, tag: u64) -> u64 {
        self.cells[home(tag, self.cells.len())].tag.load(Relaxed)
    }

    /// Stops at the first empty cell: keys sit before any hole in their
    /// window (cells empty only in `compact`, which re-places every key).
    pub fn find(&self, tag: u64) -> Option<usize> {
        for i in window(tag, self.cells.len()) {
            match self.cells[i].tag.load(Relaxed) {
                t if t == tag => return Some(i),
                0 => return None,
                _ => {}
            }
        }
        None
    }

    /// Empties the cells `keep` rejects and re-places the others from their
    /// home cells, so no key sits behind a hole (maintenance only).
    pub fn compact(&self, mut keep: impl FnMut(&ValueCell) -> bool) {
        let live: Vec<(u64, u64, u64)> = self
            .cells
            .iter()
            .filter(|c| c.tag.load(Relaxed) != 0 && keep(c))
            .map(|c| {
                (
                    c.tag.load(Relaxed),
                    c.anchors.load(Relaxed),
                    c.stat.load(Relaxed),
                )
            })
            .collect();
        for i in 0..self.cells.len() {
            self.clear(i);
        }
        for (tag, anchors, stat) in live {
            if let Some(i) =
                window(tag, self.cells.len()).find(|&i| self.cells[i].tag.load(Relaxed) == 0)
            {
                self.install(i, tag, anchors, stat);
            }
        }
    }

    /// The value's cell: found, taken if empty, or the least recently seen
    /// of its window replaced.
    pub fn find_or_insert(&self, tag: u64, minutes: u64, weight: u8) -> usize {
        self.find_or_insert_retrying(tag, minutes, weight, 2)
    }

    fn find_or_insert_retrying(&self, tag: u64, minutes: u64, weight: u8, retries: u32) -> usize {
        let n = self.cells.len();
        let (mut oldest, mut oldest_seen) = (home(tag, n), u64::MAX);
        for i in window(tag, n) {
            let cell = &self.cells[i];
            let t = cell.tag.load(Relaxed);
            if t == tag {
                return i;
            }
            if t == 0 {
                match cell.tag.compare_exchange(0, tag, Relaxed, Relaxed) {
                    Ok(_) => {
                        cell.stat.store(make_stat(0, minutes, weight), Relaxed);
                        self.len.fetch_add(1, Relaxed);
                        return i;
                    }
                    Err(t) if t == tag => return i,
                    Err(_) => continue,
                }
            }
            let seen = stat_minutes(cell.stat.load(Relaxed));
            if seen < oldest_seen {
                (oldest, oldest_seen) = (i, seen);
            }
        }
        let cell = &self.cells[oldest];
        let old = cell.tag.load(Relaxed);
        match cell.tag.compare_exchange(old, tag, Relaxed, Relaxed) {
            Ok(_) => {
                cell.anchors.store(0, Relaxed);
                cell.stat.store(make_stat(0, minutes, weight), Relaxed);
                self.replaced.fetch_add(1, Relaxed);
                oldest
            }
            // Another thread put this very key there: use it.
            Err(t) if t == tag => oldest,
            // Another key took the cell first: look again (the window
            // changed), a bounded number of times.
            Err(_) if retries > 0 => {
                self.find_or_insert_retrying(tag, minutes, weight, retries - 1)
            }
            Err(_) => oldest,
        }
    }

    pub fn clear(&self, i: usize) {
        let c = &self.cells[i];
        if c.tag.swap(0, Relaxed) != 0 {
            self.len.fetch_sub(1, Relaxed);
        }
        c.anchors.store(0, Relaxed);
        c.stat.store(0, Relaxed);
    }

    pub fn install(&self, i: usize, tag: u64, anchors: u64, stat: u64) {
        let c = &self.cells[i];
        if c.tag.swap(tag, Relaxed) == 0 {
            self.len.fetch_add(1, Relaxed);
        }
        c.anchors.store(anchors, Relaxed);
        c.stat.store(stat, Relaxed);
    }
}

/// The accounts in an anchor word (slot + 1 each, 0 = none).
#[inline]
pub(crate) fn anchors_of(word: u64) -> [Option<u32>; 2] {
    let f = |x: u64| (x != 0).then(|| (x - 1) as u32);
    [f(word & 0xffff_ffff), f(word >> 32)]
}

// ------------------------------------------------------------------- pairs

/// Evidence per group, 5 bits each (weight in twentieths, at most 31).
pub(crate) const FIELD_BITS: u32 = 5;
pub(crate) const FIELD: u64 = (1 << FIELD_BITS) - 1;
/// Weight units per 1.0.
pub(crate) const UNITS: f64 = 20.0;

const _: () = assert!(GROUPS as u32 * FIELD_BITS <= 64);

/// One linked pair of accounts (24 bytes).
#[derive(Default)]
pub(crate) struct PairCell {
    /// `(low + 1) << 32 | (high + 1)`; 0 = empty.
    pub key: AtomicU64,
    /// The evidence of each group, as last seen.
    pub weights: AtomicU64,
    /// Last seen, minutes.
    pub seen: AtomicU64,
}

pub(crate) fn pair_key(a: u32, b: u32) -> u64 {
    let (lo, hi) = (a.min(b), a.max(b));
    ((u64::from(lo) + 1) << 32) | (u64::from(hi) + 1)
}

pub(crate) fn pair_accounts(key: u64) -> (u32, u32) {
    (((key >> 32) - 1) as u32, ((key & 0xffff_ffff) - 1) as u32)
}

/// The summed evidence of a weight word, in units.
pub(crate) fn strength(weights: u64) -> u32 {
    (0..GROUPS as u32)
        .map(|g| ((weights >> (g * FIELD_BITS)) & FIELD) as u32)
        .sum()
}

pub(crate) struct Pairs {
    pub cells: Box<[PairCell]>,
    pub len: AtomicUsize,
    pub replaced: AtomicU64,
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

    /// A full-avalanche mix of the key (murmur3's finaliser): every key bit
    /// reaches the high bits that choose the cell.
    fn hash(key: u64) -> u64 {
        let mut h = key ^ (key >> 33);
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    /// Stops at the first empty cell (see [`Values::find`]).
    pub fn find(&self, key: u64) -> Option<usize> {
        for i in window(Self::hash(key), self.cells.len()) {
            match self.cells[i].key.load(Relaxed) {
                k if k == key => return Some(i),
                0 => return None,
                _ => {}
            }
        }
        None
    }

    /// Empties the cells `keep` rejects and re-places the others from their
    /// home cells (maintenance only).
    pub fn compact(&self, mut keep: impl FnMut(&PairCell) -> bool) {
        let live: Vec<(u64, u64, u64)> = self
            .cells
            .iter()
            .filter(|c| c.key.load(Relaxed) != 0 && keep(c))
            .map(|c| {
                (
                    c.key.load(Relaxed),
                    c.weights.load(Relaxed),
                    c.seen.load(Relaxed),
                )
            })
            .collect();
        for i in 0..self.cells.len() {
            self.clear(i);
        }
        for (key, weights, seen) in live {
            let home = Self::hash(key);
            if let Some(i) =
                window(home, self.cells.len()).find(|&i| self.cells[i].key.load(Relaxed) == 0)
            {
                self.install(i, key, weights, seen);
            }
        }
    }

    /// The pair's cell: found, taken if empty, or (all taken) the one seen
    /// longest ago replaced, its evidence forgotten.
    pub fn find_or_insert(&self, key: u64) -> usize {
        self.find_or_replace(key).0
    }

    /// [`Pairs::find_or_insert`], also giving the evidence of the pair it
    /// replaced, if it replaced one.
    pub fn find_or_replace(&self, key: u64) -> (usize, Option<u64>) {
        let n = self.cells.len();
        let (mut oldest, mut oldest_seen) = (home(Self::hash(key), n), u64::MAX);
        for i in window(Self::hash(key), n) {
            let cell = &self.cells[i];
            let k = cell.key.load(Relaxed);
            if k == key {
                return (i, None);
            }
            if k == 0 {
                match cell.key.compare_exchange(0, key, Relaxed, Relaxed) {
                    Ok(_) => {
                        self.len.fetch_add(1, Relaxed);
                        return (i, None);
                    }
                    Err(k) if k == key => return (i, None),
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
        match cell.key.compare_exchange(old, key, Relaxed, Relaxed) {
            Ok(_) => {
                let evidence = cell.weights.swap(0, Relaxed);
                self.replaced.fetch_add(1, Relaxed);
                (oldest, Some(evidence))
            }
            Err(k) if k == key => (oldest, None),
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

    pub fn install(&self, i: usize, key: u64, weights: u64, seen: u64) {
        let c = &self.cells[i];
        if c.key.swap(key, Relaxed) == 0 {
            self.len.fetch_add(1, Relaxed);
        }
        c.weights.store(weights, Relaxed);
        c.seen.store(seen, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_keys_round_trip() {
        let k = pair_key(7, 3);
        assert_eq!(k, pair_key(3, 7));
        assert_eq!(pair_accounts(k), (3, 7));
    }

    #[test]
    fn union_find_keeps_the_oldest_root() {
        let t = Accounts::new(100).unwrap();
        let a = t.find_or_insert(11, 0).unwrap();
        let b = t.find_or_insert(22, 0).unwrap();
        let c = t.find_or_insert(33, 0).unwrap();
        assert!(t.union(c, b));
        assert!(t.union(b, a));
        assert!(!t.union(a, c));
        assert_eq!(t.root(c), a);
        assert_eq!(t.cells[a as usize].size.load(Relaxed), 3);
        assert_eq!(t.find_or_insert(22, 5), Some(b));
        assert_eq!(t.len.load(Relaxed), 3);
    }
}
