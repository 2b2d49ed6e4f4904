//! The fingerprint-value tables (values and template bands).

use super::{alloc_cells, cells_for, home, remove_shifting, window};
use crate::sketch::PackedHll;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The distinct-accounts sketch of a fingerprint value: 8 registers in the
/// low half of its stat word (see [`PackedHll`]).
pub(crate) type ValueHll = PackedHll<8>;

/// One fingerprint value (24 bytes).
#[derive(Default)]
struct ValueCell {
    /// A [`value_tag`]; 0 = empty.
    tag: AtomicU64,
    /// The first two accounts that presented it (an [`Anchors`] word).
    anchors: AtomicU64,
    /// A [`Stat`] word.
    stat: AtomicU64,
}

/// A value's tag: its hash with the kind's index in the low byte (never 0).
#[inline]
pub(crate) fn value_tag(vkey: u64, kind: u8) -> u64 {
    (vkey & !0xff) | u64::from(kind) | 0x100
}

/// The kind index a [`value_tag`] carries.
#[inline]
pub(crate) fn tag_kind(tag: u64) -> u8 {
    (tag & 0xff) as u8
}

const WEIGHT_SHIFT: u32 = 56;
const MINUTES_SHIFT: u32 = 32;
const MINUTES: u64 = (1 << 24) - 1;
/// The weight byte: units in the low bits, the saturation flag on top.
const WEIGHT_UNITS: u8 = 0x3f;
/// The weight byte's flag of a value so common that it carries no weight
/// and never will again before it expires.
pub(crate) const SATURATED: u8 = 0x80;

/// A value's statistics word: the tiny HLL of its accounts (low 32 bits),
/// last seen in minutes (24 bits), its current link weight byte (high 8
/// bits: twentieths, and the [`SATURATED`] flag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stat(u64);

impl Stat {
    pub fn new(hll: ValueHll, minutes: u64, weight: u8) -> Stat {
        Stat(
            (hll.bits() & ValueHll::MASK)
                | ((minutes & MINUTES) << MINUTES_SHIFT)
                | (u64::from(weight) << WEIGHT_SHIFT),
        )
    }

    pub fn from_bits(bits: u64) -> Stat {
        Stat(bits)
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    /// The sketch of the value's accounts.
    pub fn hll(self) -> ValueHll {
        ValueHll::from_bits(self.0)
    }

    /// Last seen, in minutes.
    pub fn minutes(self) -> u64 {
        (self.0 >> MINUTES_SHIFT) & MINUTES
    }

    /// The link weight, in twentieths.
    pub fn weight(self) -> u8 {
        self.weight_byte() & WEIGHT_UNITS
    }

    /// The whole weight byte (units and flag).
    pub fn weight_byte(self) -> u8 {
        (self.0 >> WEIGHT_SHIFT) as u8
    }

    /// Whether the value is so common that it carries no weight and never
    /// will again before it expires (its accounts are not even looked at).
    pub fn saturated(self) -> bool {
        self.weight_byte() & SATURATED != 0
    }
}

/// The first two accounts that presented a value (slot + 1 each, low word
/// first; 0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Anchors(u64);

impl Anchors {
    pub fn from_bits(bits: u64) -> Anchors {
        Anchors(bits)
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    /// The first two of `accounts` (any others are ignored).
    pub fn of(accounts: &[u32]) -> Anchors {
        Anchors(
            accounts
                .iter()
                .take(2)
                .enumerate()
                .fold(0u64, |w, (j, &a)| w | ((u64::from(a) + 1) << (32 * j))),
        )
    }

    /// The anchor accounts.
    #[inline]
    pub fn accounts(self) -> [Option<u32>; 2] {
        let f = |x: u64| (x != 0).then(|| (x - 1) as u32);
        [f(self.0 & 0xffff_ffff), f(self.0 >> 32)]
    }

    /// The anchor accounts that are set.
    #[inline]
    pub fn iter(self) -> impl Iterator<Item = u32> {
        self.accounts().into_iter().flatten()
    }

    /// Whether two accounts present the value.
    #[inline]
    pub fn both(self) -> bool {
        self.0 >> 32 != 0
    }

    /// Only the anchors `keep` accepts (the first moves up if it goes).
    pub fn retain(self, keep: impl Fn(u32) -> bool) -> Anchors {
        let kept: Vec<u32> = self.iter().filter(|&a| keep(a)).collect();
        Anchors::of(&kept)
    }
}

/// A value cell's content, as snapshotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ValueState {
    pub tag: u64,
    pub anchors: Anchors,
    pub stat: Stat,
}

pub(crate) struct Values {
    cells: Box<[ValueCell]>,
    len: AtomicUsize,
    replaced: AtomicU64,
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

    /// Values tracked.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Values replaced because their cells were all taken.
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Relaxed)
    }

    /// Reads the first cell `tag` may occupy, to bring it into the cache
    /// (the value is meaningless).
    #[inline]
    pub fn prefetch(&self, tag: u64) -> u64 {
        self.cells[home(tag, self.cells.len())].tag.load(Relaxed)
    }

    /// Stops at the first empty cell: keys sit before any hole in their
    /// window (a removal moves the later keys of its run back).
    #[cfg(test)]
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

    pub fn stat(&self, i: usize) -> Stat {
        Stat(self.cells[i].stat.load(Relaxed))
    }

    pub fn set_stat(&self, i: usize, stat: Stat) {
        self.cells[i].stat.store(stat.0, Relaxed);
    }

    pub fn anchors(&self, i: usize) -> Anchors {
        Anchors(self.cells[i].anchors.load(Relaxed))
    }

    pub fn set_anchors(&self, i: usize, anchors: Anchors) {
        self.cells[i].anchors.store(anchors.0, Relaxed);
    }

    /// Counts `item` (an account's hash) in value `i`'s sketch and moves
    /// its minute to `minutes`; `weigh` gives the new weight byte from the
    /// new sketch and, if the sketch did not change, the current byte.
    /// Returns the stat word as it then is.
    #[inline]
    pub fn count(
        &self,
        i: usize,
        item: u64,
        minutes: u64,
        weigh: impl Fn(ValueHll, Option<u8>) -> u8,
    ) -> Stat {
        let cell = &self.cells[i];
        let mut stat = Stat(cell.stat.load(Relaxed));
        loop {
            let hll = stat.hll().with(item);
            let same = hll == stat.hll();
            if same && stat.minutes() == minutes {
                return stat;
            }
            let byte = weigh(hll, same.then(|| stat.weight_byte()));
            let new = Stat::new(hll, minutes, byte);
            match cell
                .stat
                .compare_exchange_weak(stat.0, new.0, Relaxed, Relaxed)
            {
                Ok(_) => return new,
                Err(s) => stat = Stat(s),
            }
        }
    }

    /// Makes account `a` an anchor of value `i` if it has room; its anchors
    /// then, and whether `a` just became the second (the value is shared).
    #[inline]
    pub fn anchor(&self, i: usize, a: u32) -> (Anchors, bool) {
        let cell = &self.cells[i];
        let me = u64::from(a) + 1;
        let mut anchors = cell.anchors.load(Relaxed);
        loop {
            let (lo, hi) = (anchors & 0xffff_ffff, anchors >> 32);
            if lo == me || hi == me || (lo != 0 && hi != 0) {
                return (Anchors(anchors), false);
            }
            let new = if lo == 0 { me } else { anchors | (me << 32) };
            match cell
                .anchors
                .compare_exchange_weak(anchors, new, Relaxed, Relaxed)
            {
                Ok(_) => return (Anchors(new), lo != 0),
                Err(x) => anchors = x,
            }
        }
    }

    /// Forgets, among the cells of `range`, the values last seen before
    /// `cut_minutes` (calling `gone` with each one's tag), and when
    /// `check_anchors`, drops anchors to accounts no longer `alive`
    /// (maintenance only, under the exclusive lock). Keys moved back into
    /// a hole are looked at in turn. Returns the work done (cells looked at,
    /// anchor checks counting one more) and when the least recently seen of the
    /// values kept was seen (minutes).
    pub fn sweep(
        &self,
        range: Range<usize>,
        cut_minutes: u64,
        check_anchors: bool,
        alive: impl Fn(u32) -> bool,
        mut gone: impl FnMut(u64),
    ) -> (usize, u64) {
        let (mut work, mut oldest) = (0, u64::MAX);
        let mut i = range.start;
        let n = self.cells.len();
        while i < range.end.min(n) {
            work += 1;
            let cell = &self.cells[i];
            let t = cell.tag.load(Relaxed);
            if t == 0 {
                i += 1;
                continue;
            }
            let stat = Stat(cell.stat.load(Relaxed));
            if stat.minutes() < cut_minutes {
                gone(t);
                self.remove(i);
                continue;
            }
            if check_anchors {
                work += 1;
                let a = Anchors(cell.anchors.load(Relaxed));
                let kept = a.retain(&alive);
                if kept != a {
                    cell.anchors.store(kept.0, Relaxed);
                }
            }
            oldest = oldest.min(stat.minutes());
            i += 1;
        }
        (work, oldest)
    }

    /// Empties cell `i`, moving later keys of its run back (maintenance only).
    fn remove(&self, i: usize) {
        let n = self.cells.len();
        remove_shifting(
            n,
            i,
            |k| match self.cells[k].tag.load(Relaxed) {
                0 => None,
                t => Some(t),
            },
            |from, to| {
                let c = &self.cells[from];
                self.install(
                    to,
                    &ValueState {
                        tag: c.tag.load(Relaxed),
                        anchors: Anchors(c.anchors.load(Relaxed)),
                        stat: Stat(c.stat.load(Relaxed)),
                    },
                );
            },
            |k| self.clear(k),
        );
    }

    /// The tracked values' cells, in table order.
    pub fn live(&self) -> impl Iterator<Item = (u32, ValueState)> + '_ {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.tag.load(Relaxed) != 0)
            .map(|(i, c)| {
                let state = ValueState {
                    tag: c.tag.load(Relaxed),
                    anchors: Anchors(c.anchors.load(Relaxed)),
                    stat: Stat(c.stat.load(Relaxed)),
                };
                (i as u32, state)
            })
    }

    /// The value's cell: found, taken if empty, or the least recently seen
    /// of its window replaced; and the tag of the value replaced (0: none).
    pub fn find_or_insert(&self, tag: u64, minutes: u64, weight: u8) -> (usize, u64) {
        self.find_or_insert_retrying(tag, minutes, weight, 2)
    }

    fn find_or_insert_retrying(
        &self,
        tag: u64,
        minutes: u64,
        weight: u8,
        retries: u32,
    ) -> (usize, u64) {
        let n = self.cells.len();
        let fresh = Stat::new(ValueHll::default(), minutes, weight);
        let (mut oldest, mut oldest_seen) = (home(tag, n), u64::MAX);
        for i in window(tag, n) {
            let cell = &self.cells[i];
            let t = cell.tag.load(Relaxed);
            if t == tag {
                return (i, 0);
            }
            if t == 0 {
                match cell.tag.compare_exchange(0, tag, Relaxed, Relaxed) {
                    Ok(_) => {
                        cell.stat.store(fresh.0, Relaxed);
                        self.len.fetch_add(1, Relaxed);
                        return (i, 0);
                    }
                    Err(t) if t == tag => return (i, 0),
                    Err(_) => continue,
                }
            }
            let seen = Stat(cell.stat.load(Relaxed)).minutes();
            if seen < oldest_seen {
                (oldest, oldest_seen) = (i, seen);
            }
        }
        let cell = &self.cells[oldest];
        let old = cell.tag.load(Relaxed);
        match cell.tag.compare_exchange(old, tag, Relaxed, Relaxed) {
            Ok(_) => {
                cell.anchors.store(0, Relaxed);
                cell.stat.store(fresh.0, Relaxed);
                self.replaced.fetch_add(1, Relaxed);
                (oldest, old)
            }
            // Another thread put this very key there: use it.
            Err(t) if t == tag => (oldest, 0),
            // Another key took the cell first: look again (the window
            // changed), a bounded number of times.
            Err(_) if retries > 0 => {
                self.find_or_insert_retrying(tag, minutes, weight, retries - 1)
            }
            Err(_) => (oldest, 0),
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

    pub fn install(&self, i: usize, v: &ValueState) {
        let c = &self.cells[i];
        if c.tag.swap(v.tag, Relaxed) == 0 {
            self.len.fetch_add(1, Relaxed);
        }
        c.anchors.store(v.anchors.0, Relaxed);
        c.stat.store(v.stat.0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_words_keep_their_fields_apart() {
        let hll = ValueHll::default().with(12345);
        let s = Stat::new(hll, 1234, SATURATED | 7);
        assert_eq!(s.hll(), hll);
        assert_eq!(s.minutes(), 1234);
        assert_eq!(s.weight(), 7);
        assert!(s.saturated());
        assert!(!Stat::new(hll, 1, 31).saturated());
        assert_eq!(tag_kind(value_tag(0xabcd_ef00_1234_5678, 3)), 3);
    }

    #[test]
    fn a_sweep_leaves_every_kept_value_findable() {
        // A table filled to its limit, keys colliding in runs; half expire.
        let t = Values::new(400).unwrap();
        let keys: Vec<u64> = (0..400u64)
            .map(|i| value_tag(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()), 1))
            .collect();
        for (i, &k) in keys.iter().enumerate() {
            t.find_or_insert(k, if i % 2 == 0 { 10 } else { 50 }, 20);
        }
        let inserted: Vec<u64> = keys
            .iter()
            .copied()
            .filter(|&k| t.find(k).is_some())
            .collect();
        let mut gone = Vec::new();
        // In slices, as maintenance takes them.
        let n = t.capacity();
        for start in (0..n).step_by(37) {
            t.sweep(start..start + 37, 30, false, |_| true, |tag| gone.push(tag));
        }
        for &k in &inserted {
            let expired = t.find(k).is_none();
            assert_eq!(expired, gone.contains(&k), "{k:x}");
        }
        assert!(gone.len() >= 150 && t.len() + gone.len() == inserted.len());
    }

    #[test]
    fn anchors_fill_first_then_second() {
        let t = Values::new(10).unwrap();
        let (i, _) = t.find_or_insert(value_tag(99, 1), 0, 20);
        assert_eq!(t.anchor(i, 4), (Anchors::of(&[4]), false));
        assert_eq!(t.anchor(i, 4), (Anchors::of(&[4]), false));
        let (both, shared) = t.anchor(i, 9);
        assert!(shared && both.both());
        assert_eq!(both.accounts(), [Some(4), Some(9)]);
        assert_eq!(t.anchor(i, 11), (both, false));
        assert_eq!(both.retain(|a| a != 4), Anchors::of(&[9]));
    }
}
