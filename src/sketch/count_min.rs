//! Count-min sketch: approximate counts of items in a stream.

use super::hash::{mix64, reduce, Item, DEFAULT_SEED};
use super::Error;
use crate::codec::{Kind, Reader, Writer};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

const NAME: &str = "CountMin";
const VERSION: u8 = 1;
/// Upper bound on counters (width × depth): 2^28 counters, 1 GiB.
const MAX_CELLS: u64 = 1 << 28;
/// Upper bound on depth (rows); δ = e^-32 is already beyond any use.
const MAX_DEPTH: u32 = 32;

/// A count-min sketch (Cormode & Muthukrishnan, 2005) with `u32` saturating
/// counters, updated lock-free through `&self`.
///
/// **Guarantee.** With `width = ⌈e/ε⌉` and `depth = ⌈ln(1/δ)⌉`, after a stream
/// whose counts add up to `N`, `estimate(x)` is never below the true count of
/// `x`, and exceeds it by more than `ε·N` with probability at most `δ`
/// (as long as no counter saturated at `u32::MAX`).
///
/// **Conservative update** ([`CountMin::conservative`]) raises only the
/// counters that must rise, which cuts over-estimation on skewed streams
/// (by 40 % on the Zipf stream of `tests/sketch_accuracy.rs`). It keeps the never-under-estimates guarantee, also under
/// concurrent updates, but its counters depend on the order of updates, so
/// merging conservative sketches gives an upper bound rather than the sketch of
/// the union.
///
/// ```
/// use ringfence::sketch::CountMin;
///
/// let cm = CountMin::with_error(0.001, 0.01)?; // ε = 0.1 % of N, δ = 1 %
/// cm.add("card:4111", 3);
/// cm.add("card:5500", 1);
/// assert!(cm.estimate("card:4111") >= 3);
/// assert_eq!(cm.total(), 4);
///
/// // Another node's sketch of the same shape and seed merges exactly.
/// let other = CountMin::with_error(0.001, 0.01)?;
/// other.add("card:4111", 2);
/// cm.merge(&other)?;
/// assert!(cm.estimate("card:4111") >= 5);
/// # Ok::<(), ringfence::sketch::Error>(())
/// ```
pub struct CountMin {
    width: u32,
    depth: u32,
    seed: u64,
    conservative: bool,
    total: AtomicU64,
    cells: Box<[AtomicU32]>,
}

impl CountMin {
    /// A sketch of `width` counters in each of `depth` rows.
    ///
    /// Errors unless `width ≥ 1`, `1 ≤ depth ≤ 32` and `width × depth ≤ 2^28`.
    pub fn new(width: u32, depth: u32) -> Result<Self, Error> {
        let cells = Self::check_shape(width, depth)?;
        Ok(CountMin {
            width,
            depth,
            seed: DEFAULT_SEED,
            conservative: false,
            total: AtomicU64::new(0),
            cells: (0..cells).map(|_| AtomicU32::new(0)).collect(),
        })
    }

    /// Validates a shape without allocating; returns the number of counters.
    fn check_shape(width: u32, depth: u32) -> Result<u64, Error> {
        if width == 0 {
            return Err(Error::param(NAME, "width", "must be at least 1"));
        }
        if depth == 0 || depth > MAX_DEPTH {
            return Err(Error::param(
                NAME,
                "depth",
                format!("must be in 1..={MAX_DEPTH}, got {depth}"),
            ));
        }
        let cells = u64::from(width) * u64::from(depth);
        if cells > MAX_CELLS {
            return Err(Error::param(
                NAME,
                "width",
                format!("width × depth = {cells} counters exceeds the limit of {MAX_CELLS}"),
            ));
        }
        Ok(cells)
    }

    /// Checks that counters and total agree: in a standard sketch every row
    /// adds up to the total, in a conservative one to at most the total
    /// (rows holding a saturated counter are exempt).
    fn check_totals(&self) -> Result<(), String> {
        let total = self.total();
        if total == u64::MAX {
            return Ok(());
        }
        for (row, cells) in self.cells.chunks(self.width as usize).enumerate() {
            let mut sum = 0u64;
            for c in cells {
                let v = c.load(Relaxed);
                if v == u32::MAX {
                    sum = u64::MAX;
                    break;
                }
                sum += u64::from(v);
            }
            let ok = sum == u64::MAX
                || if self.conservative {
                    sum <= total
                } else {
                    sum == total
                };
            if !ok {
                return Err(format!(
                    "row {row} adds up to {sum} but the total is {total}"
                ));
            }
        }
        Ok(())
    }

    /// A sketch whose estimates exceed the truth by more than `epsilon × N`
    /// with probability at most `delta`: `width = ⌈e/ε⌉`, `depth = ⌈ln(1/δ)⌉`.
    ///
    /// Errors unless `0 < epsilon < 1` and `0 < delta < 1`.
    pub fn with_error(epsilon: f64, delta: f64) -> Result<Self, Error> {
        if !(epsilon > 0.0 && epsilon < 1.0) {
            return Err(Error::param(
                NAME,
                "epsilon",
                format!("must be in (0, 1), got {epsilon}"),
            ));
        }
        if !(delta > 0.0 && delta < 1.0) {
            return Err(Error::param(
                NAME,
                "delta",
                format!("must be in (0, 1), got {delta}"),
            ));
        }
        let width = (std::f64::consts::E / epsilon).ceil();
        let depth = (1.0 / delta).ln().ceil().max(1.0);
        if width > f64::from(u32::MAX) {
            return Err(Error::param(
                NAME,
                "epsilon",
                format!("{epsilon} needs too wide a sketch"),
            ));
        }
        Self::new(width as u32, depth as u32)
    }

    /// Sets the hash seed (before any update). Sketches merge only with equal seeds.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns conservative update on or off (before any update).
    #[must_use]
    pub fn conservative(mut self, on: bool) -> Self {
        self.conservative = on;
        self
    }

    /// Counters per row.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Rows.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// The hash seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Whether conservative update is on.
    pub fn is_conservative(&self) -> bool {
        self.conservative
    }
    /// The ε of the guarantee, `e / width`.
    pub fn epsilon(&self) -> f64 {
        std::f64::consts::E / f64::from(self.width)
    }
    /// The δ of the guarantee, `e^-depth`.
    pub fn delta(&self) -> f64 {
        (-f64::from(self.depth)).exp()
    }
    /// Sum of all counts added (the `N` of the guarantee); saturates at `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
    /// Bytes of counter memory.
    pub fn memory_bytes(&self) -> usize {
        self.cells.len() * 4
    }

    #[inline]
    fn index(&self, hash: u64, row: u32) -> usize {
        // Kirsch–Mitzenmacher double hashing: row i uses h1 + i·h2.
        let h2 = mix64(hash) | 1;
        let h = hash.wrapping_add(u64::from(row).wrapping_mul(h2));
        row as usize * self.width as usize + reduce(mix64(h), self.width as usize)
    }

    /// Adds `n` occurrences of `item`.
    #[inline]
    pub fn add<T: Item + ?Sized>(&self, item: &T, n: u32) {
        self.add_hash(item.sketch_hash(self.seed), n);
    }

    /// Adds `n` occurrences of an item given by its hash (`item.sketch_hash(self.seed())`).
    pub fn add_hash(&self, hash: u64, n: u32) {
        if n == 0 {
            return;
        }
        saturating_add_u64(&self.total, u64::from(n));
        if self.conservative {
            self.add_conservative(hash, n);
        } else {
            for row in 0..self.depth {
                saturating_add_u32(&self.cells[self.index(hash, row)], n);
            }
        }
    }

    /// Conservative update that stays an upper bound under concurrency: the
    /// rows holding the minimum are raised by compare-and-swap from the value
    /// that was read, and the whole update is retried if any of them moved in
    /// between, so two concurrent adds can never both build on the same minimum.
    fn add_conservative(&self, hash: u64, n: u32) {
        let depth = self.depth as usize;
        let mut idx = [0usize; MAX_DEPTH as usize];
        for (row, slot) in idx.iter_mut().enumerate().take(depth) {
            *slot = self.index(hash, row as u32);
        }
        let idx = &idx[..depth];
        'retry: loop {
            let mut vals = [0u32; MAX_DEPTH as usize];
            let mut min = u32::MAX;
            for (v, &i) in vals.iter_mut().zip(idx) {
                *v = self.cells[i].load(Relaxed);
                min = min.min(*v);
            }
            let target = min.saturating_add(n);
            // Rows above the minimum only need to reach the target.
            for (v, &i) in vals.iter().zip(idx) {
                if *v != min {
                    self.cells[i].fetch_max(target, Relaxed);
                }
            }
            for (v, &i) in vals.iter().zip(idx) {
                if *v == min
                    && self.cells[i]
                        .compare_exchange(min, target, Relaxed, Relaxed)
                        .is_err()
                {
                    continue 'retry;
                }
            }
            return;
        }
    }

    /// An upper bound on how often `item` was added.
    #[inline]
    pub fn estimate<T: Item + ?Sized>(&self, item: &T) -> u32 {
        self.estimate_hash(item.sketch_hash(self.seed))
    }

    /// [`CountMin::estimate`] for an item given by its hash.
    pub fn estimate_hash(&self, hash: u64) -> u32 {
        (0..self.depth)
            .map(|row| self.cells[self.index(hash, row)].load(Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// Adds `other`'s counts into `self`, counter by counter (saturating).
    ///
    /// For standard sketches the result equals, bit for bit, the sketch of
    /// both streams. Errors, changing nothing, if shape, seed or update mode differ.
    pub fn merge(&self, other: &CountMin) -> Result<(), Error> {
        self.check_compatible(other)?;
        for (a, b) in self.cells.iter().zip(other.cells.iter()) {
            saturating_add_u32(a, b.load(Relaxed));
        }
        saturating_add_u64(&self.total, other.total());
        Ok(())
    }

    fn check_compatible(&self, other: &CountMin) -> Result<(), Error> {
        if (self.width, self.depth) != (other.width, other.depth) {
            return Err(Error::incompatible(
                NAME,
                format!(
                    "shape {}×{} differs from {}×{}",
                    self.width, self.depth, other.width, other.depth
                ),
            ));
        }
        if self.seed != other.seed {
            return Err(Error::incompatible(NAME, "the hash seeds differ"));
        }
        if self.conservative != other.conservative {
            return Err(Error::incompatible(
                NAME,
                "one uses conservative update and the other does not",
            ));
        }
        Ok(())
    }

    /// Resets every counter to zero.
    pub fn clear(&self) {
        for c in self.cells.iter() {
            c.store(0, Relaxed);
        }
        self.total.store(0, Relaxed);
    }

    /// The compact binary encoding (counters as LEB128 varints).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::CountMin, VERSION, 24 + self.cells.len());
        w.u32(self.width);
        w.u32(self.depth);
        w.u64(self.seed);
        w.u8(u8::from(self.conservative));
        w.u64(self.total());
        for c in self.cells.iter() {
            w.varint(u64::from(c.load(Relaxed)));
        }
        w.finish()
    }

    /// Decodes [`CountMin::to_bytes`]; any corruption or truncation is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, Kind::CountMin, VERSION)?;
        let width = r.u32("width")?;
        let depth = r.u32("depth")?;
        let seed = r.u64("seed")?;
        let conservative = match r.u8("update mode")? {
            0 => false,
            1 => true,
            b => {
                return Err(r
                    .err(format!("update mode byte must be 0 or 1, got {b}"))
                    .into())
            }
        };
        let total = r.u64("total")?;
        let cells = CountMin::check_shape(width, depth).map_err(|e| r.err(e.to_string()))?;
        r.expect_items(cells, 1, "counters")?;
        let cm = CountMin::new(width, depth)
            .map_err(|e| r.err(e.to_string()))?
            .with_seed(seed)
            .conservative(conservative);
        for c in cm.cells.iter() {
            let v = r.varint("counter")?;
            let v = u32::try_from(v).map_err(|_| r.err(format!("counter {v} exceeds u32")))?;
            c.store(v, Relaxed);
        }
        r.finish()?;
        cm.total.store(total, Relaxed);
        cm.check_totals().map_err(|e| Error::decode(NAME, 0, e))?;
        Ok(cm)
    }

    fn snapshot(&self) -> Vec<u32> {
        self.cells.iter().map(|c| c.load(Relaxed)).collect()
    }
}

#[inline]
pub(crate) fn saturating_add_u32(cell: &AtomicU32, n: u32) {
    // One locked compare-and-swap in the uncontended case, like fetch_add, but
    // a counter never wraps, not even for an instant.
    let _ = cell.fetch_update(Relaxed, Relaxed, |v| {
        (v != u32::MAX).then(|| v.saturating_add(n))
    });
}

#[inline]
fn saturating_add_u64(cell: &AtomicU64, n: u64) {
    let _ = cell.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_add(n)));
}

impl Clone for CountMin {
    fn clone(&self) -> Self {
        CountMin {
            width: self.width,
            depth: self.depth,
            seed: self.seed,
            conservative: self.conservative,
            total: AtomicU64::new(self.total()),
            cells: self.snapshot().into_iter().map(AtomicU32::new).collect(),
        }
    }
}

impl PartialEq for CountMin {
    fn eq(&self, other: &Self) -> bool {
        self.width == other.width
            && self.depth == other.depth
            && self.seed == other.seed
            && self.conservative == other.conservative
            && self.total() == other.total()
            && self
                .cells
                .iter()
                .zip(other.cells.iter())
                .all(|(a, b)| a.load(Relaxed) == b.load(Relaxed))
    }
}
impl Eq for CountMin {}

impl std::fmt::Debug for CountMin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountMin")
            .field("width", &self.width)
            .field("depth", &self.depth)
            .field("conservative", &self.conservative)
            .field("total", &self.total())
            .finish_non_exhaustive()
    }
}

/// The serde form of a [`CountMin`]: parameters and the counters, row-major.
#[derive(Serialize, Deserialize)]
#[serde(rename = "CountMin", deny_unknown_fields)]
struct CountMinRepr {
    width: u32,
    depth: u32,
    seed: u64,
    conservative: bool,
    total: u64,
    counters: Vec<u32>,
}

impl Serialize for CountMin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CountMinRepr {
            width: self.width,
            depth: self.depth,
            seed: self.seed,
            conservative: self.conservative,
            total: self.total(),
            counters: self.snapshot(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CountMin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = CountMinRepr::deserialize(d)?;
        let cells = CountMin::check_shape(r.width, r.depth).map_err(serde::de::Error::custom)?;
        if r.counters.len() as u64 != cells {
            return Err(serde::de::Error::custom(format!(
                "CountMin: {} counters given for a {}×{} sketch",
                r.counters.len(),
                r.width,
                r.depth
            )));
        }
        let cm = CountMin::new(r.width, r.depth)
            .map_err(serde::de::Error::custom)?
            .with_seed(r.seed)
            .conservative(r.conservative);
        for (c, v) in cm.cells.iter().zip(r.counters) {
            c.store(v, Relaxed);
        }
        cm.total.store(r.total, Relaxed);
        cm.check_totals()
            .map_err(|e| serde::de::Error::custom(format!("CountMin: {e}")))?;
        Ok(cm)
    }
}
