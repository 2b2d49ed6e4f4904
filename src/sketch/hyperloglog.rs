//! HyperLogLog: approximate count of distinct items, in a few KiB.

use super::hash::{mix64, Item, DEFAULT_SEED};
use super::Error;
use crate::codec::{Kind, Reader, Writer};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, Ordering::*};
use std::sync::OnceLock;

const NAME: &str = "HyperLogLog";
const VERSION: u8 = 1;
/// Smallest precision accepted.
pub const MIN_PRECISION: u8 = 4;
/// Largest precision accepted.
pub const MAX_PRECISION: u8 = 18;
/// Precisions from this one up start in the sparse form.
const SPARSE_FROM: u8 = 8;

/// A HyperLogLog sketch (Flajolet et al., 2007) with Ertl's improved
/// estimator (2017), updated lock-free through `&self`.
///
/// **Accuracy.** With `m = 2^p` registers the relative standard error is
/// about `1.04/√m` (1.6 % at the default `p = 12`) from one distinct item to
/// 10^9 and beyond: the improved estimator needs no switch to linear counting,
/// so there is no bias bump where other implementations change estimator, and
/// at small cardinalities it is far more accurate than the bound. Hashes are
/// 64 bits, so there is no large-range correction either.
///
/// **Memory.** `m` bytes of registers, one byte each (4 KiB at `p = 12`). For
/// `p ≥ 8` a sketch starts in a *sparse form* of `m/4` bytes that records only
/// the registers set so far, and moves to the dense registers on its own when
/// it holds `3m/64` of them (192 at `p = 12`); the move is lock-free and loses
/// nothing, and the sparse table stays allocated (`5m/4` bytes in all).
/// Sparse and dense sketches with the same registers are equal.
///
/// **Merging** takes the register-wise maximum, so
/// `merge(sketch(A), sketch(B))` equals `sketch(A ∪ B)` exactly.
///
/// ```
/// use ringfence::sketch::HyperLogLog;
///
/// let accounts_on_ip = HyperLogLog::new(12)?;
/// for i in 0..10_000u64 {
///     accounts_on_ip.insert(&i);
///     accounts_on_ip.insert(&i); // repeats do not count
/// }
/// let est = accounts_on_ip.estimate();
/// assert!((est - 10_000.0).abs() < 10_000.0 * 0.05, "{est}");
/// # Ok::<(), ringfence::sketch::Error>(())
/// ```
pub struct HyperLogLog {
    p: u8,
    seed: u64,
    /// Open-addressed set of `index << 8 | rank` (0 = empty); empty for p < 8.
    sparse: Box<[AtomicU32]>,
    sparse_used: AtomicU32,
    dense: OnceLock<Box<[AtomicU8]>>,
    /// Set once every sparse entry has been copied into `dense`.
    promoted: AtomicBool,
}

impl HyperLogLog {
    /// A sketch of `2^precision` registers; `precision` must be in `4..=18`.
    pub fn new(precision: u8) -> Result<Self, Error> {
        if !(MIN_PRECISION..=MAX_PRECISION).contains(&precision) {
            return Err(Error::param(
                NAME,
                "precision",
                format!("must be in {MIN_PRECISION}..={MAX_PRECISION}, got {precision}"),
            ));
        }
        let m = 1usize << precision;
        let slots = if precision >= SPARSE_FROM { m / 16 } else { 0 };
        let hll = HyperLogLog {
            p: precision,
            seed: DEFAULT_SEED,
            sparse: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            sparse_used: AtomicU32::new(0),
            dense: OnceLock::new(),
            promoted: AtomicBool::new(slots == 0),
        };
        if slots == 0 {
            hll.dense();
        }
        Ok(hll)
    }

    /// The precision whose standard error is at most `error` (e.g. `0.01`).
    pub fn with_error(error: f64) -> Result<Self, Error> {
        if !(error > 0.0 && error < 1.0) {
            return Err(Error::param(
                NAME,
                "error",
                format!("must be in (0, 1), got {error}"),
            ));
        }
        let p = (1.04 / error)
            .powi(2)
            .log2()
            .ceil()
            .max(f64::from(MIN_PRECISION));
        if p > f64::from(MAX_PRECISION) {
            return Err(Error::param(
                NAME,
                "error",
                format!("{error} needs precision {p}, above the maximum {MAX_PRECISION}"),
            ));
        }
        Self::new(p as u8)
    }

    /// Sets the hash seed (before any insert). Sketches merge only with equal seeds.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A sketch with the given register values (e.g. from another
    /// implementation using the same hashing). Errors if the length is not
    /// `2^precision` or a register exceeds `65 - precision`.
    pub fn from_registers(precision: u8, seed: u64, registers: &[u8]) -> Result<Self, Error> {
        let hll = Self::new(precision)?.with_seed(seed);
        if registers.len() != hll.registers_len() {
            return Err(Error::param(
                NAME,
                "registers",
                format!(
                    "{} registers given, precision {precision} needs {}",
                    registers.len(),
                    hll.registers_len()
                ),
            ));
        }
        let max = hll.max_rank();
        for (i, &r) in registers.iter().enumerate() {
            if r > max {
                return Err(Error::param(
                    NAME,
                    "registers",
                    format!("register {i} is {r}, above the maximum {max}"),
                ));
            }
            hll.set_register(i as u32, r);
        }
        Ok(hll)
    }

    /// The precision `p`.
    pub fn precision(&self) -> u8 {
        self.p
    }
    /// The hash seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The number of registers, `m = 2^p`.
    pub fn registers_len(&self) -> usize {
        1 << self.p
    }
    /// The relative standard error `1.04/√m` of an estimate.
    pub fn relative_error(&self) -> f64 {
        1.04 / (self.registers_len() as f64).sqrt()
    }
    /// Whether the sketch still uses its sparse form.
    pub fn is_sparse(&self) -> bool {
        self.dense.get().is_none()
    }
    /// Bytes of register memory now allocated (sparse table plus dense
    /// registers once they exist).
    pub fn memory_bytes(&self) -> usize {
        self.sparse.len() * 4 + self.dense.get().map_or(0, |d| d.len())
    }

    #[inline]
    fn max_rank(&self) -> u8 {
        65 - self.p
    }

    #[inline]
    fn split(&self, hash: u64) -> (u32, u8) {
        let index = (hash >> (64 - self.p)) as u32;
        // The bits below the index, with a stop bit so the rank is at most 65 - p.
        let w = (hash << self.p) | (1 << (self.p - 1));
        (index, w.leading_zeros() as u8 + 1)
    }

    /// Adds an item.
    #[inline]
    pub fn insert<T: Item + ?Sized>(&self, item: &T) {
        self.insert_hash(item.sketch_hash(self.seed));
    }

    /// Adds an item given by its hash (`item.sketch_hash(self.seed())`).
    #[inline]
    pub fn insert_hash(&self, hash: u64) {
        let (index, rank) = self.split(hash);
        self.set_register(index, rank);
    }

    #[inline]
    fn set_register(&self, index: u32, rank: u8) {
        if rank == 0 {
            return;
        }
        if let Some(dense) = self.dense.get() {
            let reg = &dense[index as usize];
            if reg.load(Relaxed) < rank {
                reg.fetch_max(rank, Relaxed);
            }
            return;
        }
        self.set_sparse(index, rank);
    }

    #[cold]
    fn dense(&self) -> &[AtomicU8] {
        self.dense.get_or_init(|| {
            (0..self.registers_len())
                .map(|_| AtomicU8::new(0))
                .collect()
        })
    }

    fn set_sparse(&self, index: u32, rank: u8) {
        let slots = self.sparse.len();
        let key = (index << 8) | u32::from(rank);
        let mut slot = (mix64(u64::from(index)) as usize) & (slots - 1);
        for _ in 0..slots {
            let cell = &self.sparse[slot];
            let mut cur = cell.load(Acquire);
            loop {
                if cur == 0 {
                    match cell.compare_exchange(0, key, AcqRel, Acquire) {
                        Ok(_) => {
                            let used = self.sparse_used.fetch_add(1, AcqRel) + 1;
                            if used as usize >= slots * 3 / 4 {
                                self.promote();
                            }
                            self.after_sparse_write(index, rank);
                            return;
                        }
                        Err(now) => cur = now,
                    }
                } else if cur >> 8 == index {
                    if (cur & 0xff) as u8 >= rank {
                        return;
                    }
                    match cell.compare_exchange(cur, key, AcqRel, Acquire) {
                        Ok(_) => {
                            self.after_sparse_write(index, rank);
                            return;
                        }
                        Err(now) => cur = now,
                    }
                } else {
                    break;
                }
            }
            slot = (slot + 1) & (slots - 1);
        }
        // Table full of other indexes: only possible mid-promotion.
        self.promote();
        self.dense()[index as usize].fetch_max(rank, Relaxed);
    }

    /// A sparse write is visible to whoever promotes the sketch, or the
    /// writer sees the dense registers and applies its value there itself:
    /// the SeqCst fences here and in `promote` rule out that both miss.
    #[inline]
    fn after_sparse_write(&self, index: u32, rank: u8) {
        fence(SeqCst);
        if let Some(dense) = self.dense.get() {
            dense[index as usize].fetch_max(rank, Relaxed);
        }
    }

    #[cold]
    fn promote(&self) {
        let dense = self.dense();
        fence(SeqCst);
        for cell in self.sparse.iter() {
            let v = cell.load(Acquire);
            if v != 0 {
                dense[(v >> 8) as usize].fetch_max((v & 0xff) as u8, Relaxed);
            }
        }
        self.promoted.store(true, Release);
    }

    /// Calls `f(index, rank)` for every non-zero register (an index may be
    /// reported twice while a promotion is in flight; callers take the max).
    fn for_each_register(&self, mut f: impl FnMut(usize, u8)) {
        if let Some(dense) = self.dense.get() {
            for (i, r) in dense.iter().enumerate() {
                let r = r.load(Relaxed);
                if r != 0 {
                    f(i, r);
                }
            }
        }
        for cell in self.sparse.iter() {
            let v = cell.load(Acquire);
            if v != 0 {
                f((v >> 8) as usize, (v & 0xff) as u8);
            }
        }
    }

    /// The register values, `2^p` bytes.
    pub fn registers(&self) -> Vec<u8> {
        let mut regs = vec![0u8; self.registers_len()];
        self.for_each_register(|i, r| regs[i] = regs[i].max(r));
        regs
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        let mut empty = true;
        self.for_each_register(|_, _| empty = false);
        empty
    }

    /// The estimated number of distinct items inserted. O(m) (a few µs at
    /// p = 12); allocates nothing.
    pub fn estimate(&self) -> f64 {
        let mut h = [0u32; 66];
        if self.promoted.load(Acquire) {
            // Every sparse entry is in the dense registers: read only those.
            if let Some(dense) = self.dense.get() {
                // Four interleaved histograms: neighbouring registers usually
                // hold the same value, and one histogram would serialise on it.
                let mut hs = [[0u32; 66]; 4];
                for quad in dense.chunks_exact(4) {
                    for (hist, r) in hs.iter_mut().zip(quad) {
                        hist[usize::from(r.load(Relaxed))] += 1;
                    }
                }
                for (k, total) in h.iter_mut().enumerate() {
                    *total = hs.iter().map(|hist| hist[k]).sum();
                }
                return ertl_estimate(self.p, &h);
            }
        }
        if self.dense.get().is_none() {
            let mut set = 0u32;
            for cell in self.sparse.iter() {
                let v = cell.load(Acquire);
                if v != 0 {
                    h[(v & 0xff) as usize] += 1;
                    set += 1;
                }
            }
            if self.dense.get().is_none() {
                h[0] = self.registers_len() as u32 - set;
                return ertl_estimate(self.p, &h);
            }
        }
        // Mid-promotion: merge both forms.
        ertl_estimate(self.p, &histogram_of(&self.registers()))
    }

    /// Folds `other` into `self` (register-wise maximum). Errors, changing
    /// nothing, if the precisions or seeds differ.
    pub fn merge(&self, other: &HyperLogLog) -> Result<(), Error> {
        if self.p != other.p {
            return Err(Error::incompatible(
                NAME,
                format!("precision {} differs from {}", self.p, other.p),
            ));
        }
        if self.seed != other.seed {
            return Err(Error::incompatible(NAME, "the hash seeds differ"));
        }
        other.for_each_register(|i, r| self.set_register(i as u32, r));
        Ok(())
    }

    /// Resets the sketch to empty (keeps the dense registers if it has them).
    ///
    /// Not atomic with respect to concurrent inserts: an insert that runs
    /// during `clear` may or may not survive it.
    pub fn clear(&self) {
        if let Some(d) = self.dense.get() {
            d.iter().for_each(|r| r.store(0, Relaxed));
        }
        self.sparse.iter().for_each(|c| c.store(0, Relaxed));
        self.sparse_used.store(0, Relaxed);
    }

    /// The compact binary encoding: a sorted list of the set registers when
    /// few are set, else the registers packed six bits each.
    pub fn to_bytes(&self) -> Vec<u8> {
        let regs = self.registers();
        let set = regs.iter().filter(|&&r| r != 0).count();
        let packed_len = (regs.len() * 6).div_ceil(8);
        let mut w = Writer::new(Kind::HyperLogLog, VERSION, 16 + packed_len.min(set * 4));
        w.u8(self.p);
        w.u64(self.seed);
        // A sparse entry takes at most 4 bytes (index delta ≤ 3 varint bytes + rank).
        if set * 4 < packed_len {
            w.u8(0);
            w.varint(set as u64);
            let mut last = 0usize;
            for (i, &r) in regs.iter().enumerate().filter(|(_, &r)| r != 0) {
                w.varint((i - last) as u64);
                w.u8(r);
                last = i;
            }
        } else {
            w.u8(1);
            let mut acc = 0u32;
            let mut bits = 0;
            let mut out = Vec::with_capacity(packed_len);
            for &r in &regs {
                acc |= u32::from(r) << bits;
                bits += 6;
                while bits >= 8 {
                    out.push(acc as u8);
                    acc >>= 8;
                    bits -= 8;
                }
            }
            if bits > 0 {
                out.push(acc as u8);
            }
            w.bytes(&out);
        }
        w.finish()
    }

    /// Decodes [`HyperLogLog::to_bytes`]; any corruption or truncation is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, Kind::HyperLogLog, VERSION)?;
        let p = r.u8("precision")?;
        let seed = r.u64("seed")?;
        let hll = HyperLogLog::new(p)
            .map_err(|e| r.err(e.to_string()))?
            .with_seed(seed);
        let m = hll.registers_len();
        let max = hll.max_rank();
        match r.u8("register encoding")? {
            0 => {
                let n = r.varint("register count")?;
                if n > m as u64 {
                    return Err(r
                        .err(format!("{n} registers listed, the sketch has {m}"))
                        .into());
                }
                let n = r.expect_items(n, 2, "registers")?;
                let mut index = 0u64;
                for k in 0..n {
                    let delta = r.varint("register index")?;
                    if k > 0 && delta == 0 {
                        return Err(r.err("register indexes are not strictly increasing").into());
                    }
                    index = index.saturating_add(delta);
                    if index >= m as u64 {
                        return Err(r
                            .err(format!("register index {index} is beyond {}", m - 1))
                            .into());
                    }
                    let rank = r.u8("register value")?;
                    if rank == 0 || rank > max {
                        return Err(r
                            .err(format!("register value {rank} is outside 1..={max}"))
                            .into());
                    }
                    hll.set_register(index as u32, rank);
                }
            }
            1 => {
                let packed = r.take((m * 6).div_ceil(8), "packed registers")?;
                let mut acc = 0u32;
                let mut bits = 0;
                let mut bytes = packed.iter();
                for i in 0..m {
                    if bits < 6 {
                        acc |= u32::from(*bytes.next().unwrap_or(&0)) << bits;
                        bits += 8;
                    }
                    let rank = (acc & 0x3f) as u8;
                    acc >>= 6;
                    bits -= 6;
                    if rank > max {
                        return Err(r
                            .err(format!("register {i} is {rank}, above the maximum {max}"))
                            .into());
                    }
                    hll.set_register(i as u32, rank);
                }
            }
            b => {
                return Err(r
                    .err(format!("register encoding byte must be 0 or 1, got {b}"))
                    .into())
            }
        }
        r.finish()?;
        Ok(hll)
    }
}

fn histogram_of(regs: &[u8]) -> [u32; 66] {
    let mut h = [0u32; 66];
    for &r in regs {
        h[r as usize] += 1;
    }
    h
}

/// Ertl's improved raw estimator ("New cardinality estimation algorithms for
/// HyperLogLog sketches", 2017, algorithm 6), from the register histogram.
fn ertl_estimate(p: u8, c: &[u32; 66]) -> f64 {
    let m = f64::from(1u32 << p);
    let q = 64 - usize::from(p);
    let mut z = m * tau((m - f64::from(c[q + 1])) / m);
    for k in (1..=q).rev() {
        z += f64::from(c[k]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(c[0]) / m);
    let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
    // Registers all at their maximum (never reached below ~2^60 items) would
    // give infinity; report the largest count 64-bit hashes can tell apart.
    (alpha_inf * m * m / z).min(u64::MAX as f64)
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1)
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))² 2^-k) / 3
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

impl Clone for HyperLogLog {
    fn clone(&self) -> Self {
        let copy = HyperLogLog::new(self.p)
            .expect("precision already validated")
            .with_seed(self.seed);
        self.for_each_register(|i, r| copy.set_register(i as u32, r));
        copy
    }
}

impl PartialEq for HyperLogLog {
    fn eq(&self, other: &Self) -> bool {
        self.p == other.p && self.seed == other.seed && self.registers() == other.registers()
    }
}
impl Eq for HyperLogLog {}

impl std::fmt::Debug for HyperLogLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperLogLog")
            .field("precision", &self.p)
            .field("sparse", &self.is_sparse())
            .field("estimate", &self.estimate())
            .finish_non_exhaustive()
    }
}

/// The serde form of a [`HyperLogLog`]: precision, seed and all registers.
#[derive(Serialize, Deserialize)]
#[serde(rename = "HyperLogLog", deny_unknown_fields)]
struct HyperLogLogRepr {
    precision: u8,
    seed: u64,
    registers: Vec<u8>,
}

impl Serialize for HyperLogLog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        HyperLogLogRepr {
            precision: self.p,
            seed: self.seed,
            registers: self.registers(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HyperLogLog {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = HyperLogLogRepr::deserialize(d)?;
        HyperLogLog::from_registers(r.precision, r.seed, &r.registers)
            .map_err(serde::de::Error::custom)
    }
}
