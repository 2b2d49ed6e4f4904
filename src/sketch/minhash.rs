//! MinHash by one-permutation hashing with optimal densification.

use super::hash::{mix64, reduce, Item, DEFAULT_SEED};
use super::Error;
use crate::codec::{Kind, Reader, Writer};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const NAME: &str = "MinHash";
const VERSION: u8 = 1;
/// The default signature length.
pub const DEFAULT_K: usize = 128;
/// Largest signature length accepted.
pub const MAX_K: usize = 1 << 16;
const EMPTY: u64 = u64::MAX;

fn check_k(sketch: &'static str, k: usize) -> Result<(), Error> {
    if k == 0 || k > MAX_K {
        return Err(Error::param(
            sketch,
            "k",
            format!("must be in 1..={MAX_K}, got {k}"),
        ));
    }
    Ok(())
}

/// Spreads an item hash again with the sketch's seed; bijective, so no new
/// collisions. The high bits choose the bin, the whole value is the rank in it.
#[inline]
fn permute(hash: u64, seed: u64) -> u64 {
    mix64(hash ^ seed)
}

/// Signatures up to this many bins densify with a bit set on the stack.
const SMALL_K: usize = 256;

/// Random draws an empty bin makes before it falls back to the next
/// non-empty bin in cyclic order.
const DRAWS: u32 = 32;

/// Fills empty bins by optimal densification (Shrivastava, ICML 2017): an
/// empty bin `i` borrows the value of the first originally non-empty bin in
/// a seeded pseudo-random sequence of bins `j(i, 1), j(i, 2), …` that depends
/// only on `(seed, i)`, so two sets with the same bins filled borrow from the
/// same places, and the chance that two sets borrow the same value equals
/// their similarity. Each 64-bit mix yields four 16-bit draws.
///
/// When so few bins are filled that 32 draws all miss, the bin instead
/// borrows from the first non-empty bin at or after a seeded start position
/// (rotation densification, Shrivastava & Li 2014, also unbiased). That
/// bounds the cost at O(k) draws plus one O(k) pass, whatever the set.
fn densify(bins: &mut [u64], seed: u64) {
    let k = bins.len();
    // A bin's own minimum always maps back to it, a borrowed value never does
    // (values carry their bin in their high bits), so no side table is
    // needed; for the small k of prompt signatures a bit set of the
    // originally filled bins makes each draw one bit test.
    let mut small = [0u64; SMALL_K / 64];
    let mut filled = 0;
    let mut last = 0;
    for j in 0..k {
        if bins[j] != EMPTY {
            filled += 1;
            last = j;
            if k <= SMALL_K {
                small[j / 64] |= 1 << (j % 64);
            }
        }
    }
    let own = |bins: &[u64], j: usize| {
        if k <= SMALL_K {
            small[j / 64] >> (j % 64) & 1 != 0
        } else {
            bins[j] != EMPTY && reduce(bins[j], k) == j
        }
    };
    if filled == 0 || filled == k {
        return;
    }
    if filled == 1 {
        // Every sequence ends at the only non-empty bin.
        let v = bins[last];
        bins.iter_mut().for_each(|b| *b = v);
        return;
    }
    let mut next_filled: Vec<u32> = Vec::new();
    for i in 0..k {
        if bins[i] != EMPTY {
            continue;
        }
        let key = mix64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut found = None;
        'draws: for counter in 1..=u64::from(DRAWS / 4) {
            let mut x = mix64(key.wrapping_add(counter));
            for _ in 0..4 {
                let j = (((x & 0xffff) * k as u64) >> 16) as usize;
                x >>= 16;
                if own(bins, j) {
                    found = Some(j);
                    break 'draws;
                }
            }
        }
        let j = match found {
            Some(j) => j,
            None => {
                if next_filled.is_empty() {
                    next_filled = next_filled_table(bins, &own);
                }
                next_filled[reduce(mix64(key ^ 0x726f_7461_7465), k)] as usize
            }
        };
        bins[i] = bins[j];
    }
}

/// For every bin, the first originally non-empty bin at or after it,
/// cyclically (two backward passes, O(k)).
fn next_filled_table(bins: &[u64], own: &impl Fn(&[u64], usize) -> bool) -> Vec<u32> {
    let k = bins.len();
    let mut next = vec![0u32; k];
    let mut nearest = None;
    for _pass in 0..2 {
        for j in (0..k).rev() {
            if own(bins, j) {
                nearest = Some(j as u32);
            }
            if let Some(n) = nearest {
                next[j] = n;
            }
        }
    }
    next
}

/// A MinHash accumulator of `k` bins, updated lock-free through `&self`.
///
/// One-permutation hashing: each item's hash picks one of `k` bins and
/// competes for that bin's minimum, so a signature costs O(n + k) rather than
/// the O(n·k) of `k` independent hash functions. Bins no item reached are
/// filled by optimal densification when the [`Signature`] is taken.
///
/// **Accuracy.** The Jaccard estimate from two signatures has standard error
/// about `√(J(1−J)/k)` (4.4 % at J = 0.5, k = 128), unbiased.
///
/// **Merging** takes the bin-wise minimum of the undensified bins, so
/// `merge(sketch(A), sketch(B))` equals `sketch(A ∪ B)` exactly.
///
/// ```
/// use ringfence::sketch::{shingle, MinHash};
///
/// let a = MinHash::new(128)?;
/// let b = MinHash::new(128)?;
/// for h in shingle("Explain step by step how a heat pump works", 3, 0) { a.insert_hash(h); }
/// for h in shingle("Explain step by step how a jet engine works", 3, 0) { b.insert_hash(h); }
/// let j = a.jaccard(&b)?;
/// assert!(j > 0.1 && j < 0.8, "{j}");
/// # Ok::<(), ringfence::sketch::Error>(())
/// ```
pub struct MinHash {
    seed: u64,
    bins: Box<[AtomicU64]>,
}

impl MinHash {
    /// An empty accumulator of `k` bins (`1..=65536`; 128 is the usual choice).
    pub fn new(k: usize) -> Result<Self, Error> {
        check_k(NAME, k)?;
        Ok(MinHash {
            seed: DEFAULT_SEED,
            bins: (0..k).map(|_| AtomicU64::new(EMPTY)).collect(),
        })
    }

    /// Sets the seed (before any insert). Signatures compare only with equal seeds.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The number of bins.
    pub fn k(&self) -> usize {
        self.bins.len()
    }
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.bins.iter().all(|b| b.load(Relaxed) == EMPTY)
    }

    /// Adds an item.
    #[inline]
    pub fn insert<T: Item + ?Sized>(&self, item: &T) {
        self.insert_hash(item.sketch_hash(self.seed));
    }

    /// Adds an item given by a well-mixed 64-bit hash, such as those of
    /// [`shingle`](super::shingle) or [`Item::sketch_hash`].
    #[inline]
    pub fn insert_hash(&self, hash: u64) {
        let v = permute(hash, self.seed);
        let bin = &self.bins[reduce(v, self.bins.len())];
        if v < bin.load(Relaxed) {
            bin.fetch_min(v, Relaxed);
        }
    }

    /// The densified signature of everything inserted so far.
    pub fn signature(&self) -> Signature {
        let mut values: Vec<u64> = self.bins.iter().map(|b| b.load(Relaxed)).collect();
        densify(&mut values, self.seed);
        Signature {
            seed: self.seed,
            values: values.into_boxed_slice(),
        }
    }

    /// The estimated Jaccard similarity of the two sets (see [`Signature::jaccard`]).
    pub fn jaccard(&self, other: &MinHash) -> Result<f64, Error> {
        self.signature().jaccard(&other.signature())
    }

    /// Folds `other` into `self` (the sketch of the union). Errors, changing
    /// nothing, if `k` or the seeds differ.
    pub fn merge(&self, other: &MinHash) -> Result<(), Error> {
        if self.k() != other.k() {
            return Err(Error::incompatible(
                NAME,
                format!("k = {} differs from k = {}", self.k(), other.k()),
            ));
        }
        if self.seed != other.seed {
            return Err(Error::incompatible(NAME, "the seeds differ"));
        }
        for (a, b) in self.bins.iter().zip(other.bins.iter()) {
            a.fetch_min(b.load(Relaxed), Relaxed);
        }
        Ok(())
    }

    /// Empties the accumulator.
    pub fn clear(&self) {
        self.bins.iter().for_each(|b| b.store(EMPTY, Relaxed));
    }

    fn raw(&self) -> Vec<u64> {
        self.bins.iter().map(|b| b.load(Relaxed)).collect()
    }

    fn from_raw(seed: u64, bins: &[u64]) -> Result<Self, String> {
        check_k(NAME, bins.len()).map_err(|e| e.to_string())?;
        for (i, &v) in bins.iter().enumerate() {
            if v != EMPTY && reduce(v, bins.len()) != i {
                return Err(format!(
                    "bin {i} holds a value that belongs to bin {}",
                    reduce(v, bins.len())
                ));
            }
        }
        Ok(MinHash {
            seed,
            bins: bins.iter().map(|&v| AtomicU64::new(v)).collect(),
        })
    }

    /// The binary encoding: k, seed, and the raw bins (empty ones included).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::MinHash, VERSION, 12 + 8 * self.k());
        w.u32(self.k() as u32);
        w.u64(self.seed);
        for v in self.raw() {
            w.u64(v);
        }
        w.finish()
    }

    /// Decodes [`MinHash::to_bytes`]; any corruption or truncation is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, Kind::MinHash, VERSION)?;
        let k = r.u32("k")?;
        let seed = r.u64("seed")?;
        check_k(NAME, k as usize).map_err(|e| r.err(e.to_string()))?;
        let k = r.expect_items(u64::from(k), 8, "bins")?;
        let mut bins = Vec::with_capacity(k);
        for _ in 0..k {
            bins.push(r.u64("bin")?);
        }
        let mh = MinHash::from_raw(seed, &bins).map_err(|e| r.err(e))?;
        r.finish()?;
        Ok(mh)
    }
}

impl Default for MinHash {
    /// An empty accumulator of [`DEFAULT_K`] = 128 bins with the default seed.
    fn default() -> Self {
        MinHash::new(DEFAULT_K).expect("default k is valid")
    }
}

impl Clone for MinHash {
    fn clone(&self) -> Self {
        MinHash {
            seed: self.seed,
            bins: self.raw().into_iter().map(AtomicU64::new).collect(),
        }
    }
}

impl PartialEq for MinHash {
    fn eq(&self, other: &Self) -> bool {
        self.seed == other.seed && self.raw() == other.raw()
    }
}
impl Eq for MinHash {}

impl std::fmt::Debug for MinHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinHash")
            .field("k", &self.k())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "MinHash", deny_unknown_fields)]
struct MinHashRepr {
    seed: u64,
    bins: Vec<u64>,
}

impl Serialize for MinHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MinHashRepr {
            seed: self.seed,
            bins: self.raw(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MinHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = MinHashRepr::deserialize(d)?;
        MinHash::from_raw(r.seed, &r.bins).map_err(serde::de::Error::custom)
    }
}

/// A densified MinHash signature: `k` values that two sets share in a
/// fraction of positions equal, in expectation, to their Jaccard similarity.
///
/// Build one from an accumulator ([`MinHash::signature`]) or in one pass over
/// hashes ([`Signature::from_hashes`], which allocates only the result).
///
/// ```
/// use ringfence::sketch::{shingle, Signature};
///
/// let a = Signature::from_hashes(128, 0, shingle("one two three four five six", 2, 0))?;
/// let b = Signature::from_hashes(128, 0, shingle("one two three four five seven", 2, 0))?;
/// let j = a.jaccard(&b)?; // true Jaccard: 4 shared bigrams of 6 = 0.67
/// assert!((j - 0.67).abs() < 0.2, "{j}");
/// # Ok::<(), ringfence::sketch::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "SignatureRepr")]
pub struct Signature {
    seed: u64,
    values: Box<[u64]>,
}

impl Signature {
    /// The signature of the set of `hashes` (duplicates are harmless) with `k`
    /// values, in O(n + k).
    pub fn from_hashes(
        k: usize,
        seed: u64,
        hashes: impl IntoIterator<Item = u64>,
    ) -> Result<Self, Error> {
        check_k("Signature", k)?;
        let mut values = vec![EMPTY; k].into_boxed_slice();
        for h in hashes {
            let v = permute(h, seed);
            let bin = &mut values[reduce(v, k)];
            // Branch-free: early on, whether v is a new minimum is a coin flip.
            *bin = (*bin).min(v);
        }
        densify(&mut values, seed);
        Ok(Signature { seed, values })
    }

    /// The signature of the word `n`-gram shingles of `text` (see
    /// [`shingle`](super::shingle), hashed with the same `seed`), in one pass
    /// that allocates only the result.
    ///
    /// ```
    /// use ringfence::sketch::{shingle, Signature};
    /// let text = "Think step by step, then answer: what is 17 * 23?";
    /// assert_eq!(
    ///     Signature::from_text(128, 9, text, 3)?,
    ///     Signature::from_hashes(128, 9, shingle(text, 3, 9))?,
    /// );
    /// # Ok::<(), ringfence::sketch::Error>(())
    /// ```
    pub fn from_text(k: usize, seed: u64, text: &str, n: usize) -> Result<Self, Error> {
        check_k("Signature", k)?;
        let mut values = vec![EMPTY; k].into_boxed_slice();
        super::for_each_shingle(text, n, seed, |h| {
            let v = permute(h, seed);
            let bin = &mut values[reduce(v, k)];
            // Branch-free: early on, whether v is a new minimum is a coin flip.
            *bin = (*bin).min(v);
        });
        densify(&mut values, seed);
        Ok(Signature { seed, values })
    }

    /// Writes the signature of `text`'s word `n`-gram shingles (as
    /// [`Signature::from_text`] with `k = out.len()`) into `out`, allocating
    /// nothing: for hot paths that keep a buffer on the stack.
    ///
    /// ```
    /// use ringfence::sketch::Signature;
    /// let text = "Think step by step, then answer: what is 17 * 23?";
    /// let mut out = [0u64; 64];
    /// Signature::fill_from_text(&mut out, 9, text, 3)?;
    /// assert_eq!(&out[..], Signature::from_text(64, 9, text, 3)?.values());
    /// # Ok::<(), ringfence::sketch::Error>(())
    /// ```
    pub fn fill_from_text(out: &mut [u64], seed: u64, text: &str, n: usize) -> Result<(), Error> {
        let k = out.len();
        check_k("Signature", k)?;
        out.fill(EMPTY);
        super::for_each_shingle(text, n, seed, |h| {
            let v = permute(h, seed);
            let bin = &mut out[reduce(v, k)];
            *bin = (*bin).min(v);
        });
        densify(out, seed);
        Ok(())
    }

    /// The number of values, `k`.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Always false: a signature has at least one value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Whether the signature is of the empty set.
    pub fn is_of_empty_set(&self) -> bool {
        self.values.iter().all(|&v| v == EMPTY)
    }
    /// The seed it was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The values.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    /// The estimated Jaccard similarity `|A ∩ B| / |A ∪ B|`: the fraction of
    /// positions where the signatures agree. Two empty sets have similarity
    /// 1; an empty and a non-empty set, 0. Errors if `k` or the seeds differ.
    pub fn jaccard(&self, other: &Signature) -> Result<f64, Error> {
        if self.len() != other.len() {
            return Err(Error::incompatible(
                "Signature",
                format!("k = {} differs from k = {}", self.len(), other.len()),
            ));
        }
        if self.seed != other.seed {
            return Err(Error::incompatible("Signature", "the seeds differ"));
        }
        let equal = self
            .values
            .iter()
            .zip(other.values.iter())
            .filter(|(a, b)| a == b)
            .count();
        Ok(equal as f64 / self.len() as f64)
    }

    /// The binary encoding: k, seed, values.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::Signature, VERSION, 12 + 8 * self.len());
        w.u32(self.len() as u32);
        w.u64(self.seed);
        for &v in self.values.iter() {
            w.u64(v);
        }
        w.finish()
    }

    /// Decodes [`Signature::to_bytes`]; any corruption or truncation is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, Kind::Signature, VERSION)?;
        let k = r.u32("k")?;
        let seed = r.u64("seed")?;
        check_k("Signature", k as usize).map_err(|e| r.err(e.to_string()))?;
        let k = r.expect_items(u64::from(k), 8, "values")?;
        let mut values = Vec::with_capacity(k);
        for _ in 0..k {
            values.push(r.u64("value")?);
        }
        check_signature_values(&values).map_err(|e| r.err(e))?;
        r.finish()?;
        Ok(Signature {
            seed,
            values: values.into_boxed_slice(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename = "Signature", deny_unknown_fields)]
struct SignatureRepr {
    seed: u64,
    values: Vec<u64>,
}

impl TryFrom<SignatureRepr> for Signature {
    type Error = Error;
    fn try_from(r: SignatureRepr) -> Result<Self, Error> {
        check_k("Signature", r.values.len())?;
        check_signature_values(&r.values).map_err(|e| Error::decode("Signature", 0, e))?;
        Ok(Signature {
            seed: r.seed,
            values: r.values.into_boxed_slice(),
        })
    }
}

/// A densified signature is either all empty (the empty set) or has no empty
/// value; anything else did not come from a set.
fn check_signature_values(values: &[u64]) -> Result<(), String> {
    let empty = values.iter().filter(|&&v| v == EMPTY).count();
    if empty != 0 && empty != values.len() {
        return Err(format!(
            "{empty} of {} values are empty: a signature is either of the empty set or has no empty value",
            values.len()
        ));
    }
    Ok(())
}
