//! Locality-sensitive hashing over MinHash signatures: find similar sets fast.

use super::hash::{mix64, DEFAULT_SEED};
use super::minhash::MAX_K;
use super::{Error, Signature};
use crate::codec::{Kind, Reader, Writer};
use ahash::AHashMap;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

const NAME: &str = "LshIndex";
const VERSION: u8 = 1;
/// Largest capacity accepted (2^32 − 1 ids; memory bounds it first in practice).
pub const MAX_LSH_CAPACITY: usize = u32::MAX as usize;

/// The probability that two sets of Jaccard similarity `s` share at least one
/// band of `rows` values, among `bands` bands: `1 − (1 − s^rows)^bands`.
pub fn collision_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

/// Writes the band keys of a MinHash signature into `out`: one key per band
/// of `rows` consecutive values, so that two signatures share a band key
/// exactly when (hash collisions aside) they agree on every value of that
/// band: the event whose probability [`collision_probability`] gives.
///
/// Band `b`'s key is xxh3-64 of the band's values as little-endian bytes,
/// with the seed `seed ^ b`; equal values in different bands give different
/// keys. `out` must hold `signature.len() / rows` keys (a remainder of
/// fewer than `rows` values is ignored). Nothing is allocated for bands of
/// up to 32 values.
///
/// ```
/// use ringfence::sketch::{band_keys_into, Signature};
/// let a = Signature::from_text(64, 7, "one two three four five six seven eight", 3)?;
/// let b = Signature::from_text(64, 7, "one two three four five six seven nine", 3)?;
/// let (mut ka, mut kb) = ([0u64; 16], [0u64; 16]);
/// band_keys_into(a.values(), 4, 42, &mut ka);
/// band_keys_into(b.values(), 4, 42, &mut kb);
/// // Similar prompts share some bands; a band's key depends on its values only.
/// for (band, (x, y)) in ka.iter().zip(&kb).enumerate() {
///     let same = a.values()[band * 4..][..4] == b.values()[band * 4..][..4];
///     assert_eq!(x == y, same);
/// }
/// # Ok::<(), ringfence::sketch::Error>(())
/// ```
///
/// # Panics
/// If `rows` is 0, or `out.len()` is not `signature.len() / rows`.
pub fn band_keys_into(signature: &[u64], rows: usize, seed: u64, out: &mut [u64]) {
    assert!(rows > 0, "a band has at least one row");
    assert_eq!(
        out.len(),
        signature.len() / rows,
        "one key per band of {rows} values"
    );
    const STACK_ROWS: usize = 32;
    let mut bytes = [0u8; STACK_ROWS * 8];
    for (band, (vals, key)) in signature.chunks_exact(rows).zip(out).enumerate() {
        let band_seed = seed ^ band as u64;
        *key = if rows <= STACK_ROWS {
            for (i, v) in vals.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            xxh3_64_with_seed(&bytes[..rows * 8], band_seed)
        } else {
            let mut h = Xxh3::with_seed(band_seed);
            for v in vals {
                h.update(&v.to_le_bytes());
            }
            h.digest()
        };
    }
}

/// The banding `(bands, rows)` with `bands × rows = k` that best separates
/// pairs above `threshold` from pairs below it: the one that minimises the
/// area of false positives below the threshold plus false negatives above it
/// (equal weights), under the collision curve [`collision_probability`].
pub fn banding_for(k: usize, threshold: f64) -> Result<(usize, usize), Error> {
    if k == 0 || k > MAX_K {
        return Err(Error::param(
            NAME,
            "k",
            format!("must be in 1..={MAX_K}, got {k}"),
        ));
    }
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(Error::param(
            NAME,
            "threshold",
            format!("must be in (0, 1), got {threshold}"),
        ));
    }
    let area = |from: f64, to: f64, f: &dyn Fn(f64) -> f64| {
        let steps = 200;
        let dx = (to - from) / f64::from(steps);
        (0..steps)
            .map(|i| {
                let x = from + dx * (f64::from(i) + 0.5);
                f(x) * dx
            })
            .sum::<f64>()
    };
    let mut best = (1, k, f64::INFINITY);
    for bands in (1..=k).filter(|b| k % b == 0) {
        let rows = k / bands;
        let fp = area(0.0, threshold, &|s| collision_probability(s, bands, rows));
        let fneg = area(threshold, 1.0, &|s| {
            1.0 - collision_probability(s, bands, rows)
        });
        let cost = fp + fneg;
        if cost < best.2 {
            best = (bands, rows, cost);
        }
    }
    Ok((best.0, best.1))
}

/// An LSH index over [`Signature`]s by banding: the `k` values are cut into
/// `bands` bands of `rows` values, and two signatures are candidates when
/// they agree on a whole band. The banding is chosen from a similarity
/// threshold using all `k` values ([`banding_for`]).
///
/// **Bounded memory.** The index holds at most `capacity` ids; inserting into
/// a full index evicts the oldest id (and returns it). Memory is about
/// `capacity × bands × 40` bytes.
///
/// **Concurrency.** `insert`, `remove` and `query` take `&self`; queries
/// share a read lock, updates take the write lock for the few map operations
/// of one id (this index is a map of buckets, not a fixed array of counters
/// like the sketches, so it is guarded by a `parking_lot::RwLock`).
///
/// ```
/// use ringfence::sketch::{shingle, LshIndex, Signature};
///
/// let index = LshIndex::new(128, 0.5, 10_000)?;
/// let sig = |t: &str| Signature::from_hashes(128, index.seed(), shingle(t, 2, 0));
/// index.insert(1, &sig("summarise the following article in three bullet points: the economy grew")?)?;
/// index.insert(2, &sig("write a haiku about autumn leaves falling on a quiet pond")?)?;
/// let found = index.query(&sig("summarise the following article in three bullet points: the economy shrank")?)?;
/// assert_eq!(found, vec![1]);
/// # Ok::<(), ringfence::sketch::Error>(())
/// ```
pub struct LshIndex {
    bands: usize,
    rows: usize,
    capacity: usize,
    seed: u64,
    inner: RwLock<Inner>,
}

#[derive(Default, Clone)]
struct Inner {
    /// id → (insertion sequence number, band keys)
    entries: AHashMap<u64, (u64, Box<[u64]>)>,
    /// per band: band key → ids
    buckets: Vec<AHashMap<u64, Vec<u64>>>,
    /// (sequence number, id), oldest first; stale pairs are skipped lazily.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
    evictions: u64,
}

impl Inner {
    fn remove(&mut self, id: u64) -> bool {
        let Some((_, keys)) = self.entries.remove(&id) else {
            return false;
        };
        for (band, key) in keys.iter().enumerate() {
            if let Some(ids) = self.buckets[band].get_mut(key) {
                ids.retain(|&x| x != id);
                if ids.is_empty() {
                    self.buckets[band].remove(key);
                }
            }
        }
        true
    }

    fn compact_order(&mut self, capacity: usize) {
        if self.order.len() > capacity.saturating_mul(2).saturating_add(64) {
            let mut live: Vec<(u64, u64)> = self
                .entries
                .iter()
                .map(|(&id, (seq, _))| (*seq, id))
                .collect();
            live.sort_unstable();
            self.order = live.into();
        }
    }

    fn evict_oldest(&mut self) -> Option<u64> {
        while let Some((seq, id)) = self.order.pop_front() {
            if self.entries.get(&id).is_some_and(|(s, _)| *s == seq) {
                self.remove(id);
                self.evictions += 1;
                return Some(id);
            }
        }
        None
    }

    fn ids_in_order(&self) -> Vec<u64> {
        self.order
            .iter()
            .filter(|(seq, id)| self.entries.get(id).is_some_and(|(s, _)| s == seq))
            .map(|&(_, id)| id)
            .collect()
    }
}

impl LshIndex {
    /// An index for signatures of `k` values, tuned for Jaccard `threshold`,
    /// holding at most `capacity` ids.
    pub fn new(k: usize, threshold: f64, capacity: usize) -> Result<Self, Error> {
        let (bands, rows) = banding_for(k, threshold)?;
        Self::with_banding(bands, rows, capacity)
    }

    /// An index with an explicit banding (`bands × rows` = the signature length).
    pub fn with_banding(bands: usize, rows: usize, capacity: usize) -> Result<Self, Error> {
        if bands == 0 || rows == 0 || bands.checked_mul(rows).is_none_or(|k| k > MAX_K) {
            return Err(Error::param(
                NAME,
                "banding",
                format!("bands × rows must be in 1..={MAX_K}, got {bands} × {rows}"),
            ));
        }
        if capacity == 0 || capacity > MAX_LSH_CAPACITY {
            return Err(Error::param(
                NAME,
                "capacity",
                format!("must be in 1..={MAX_LSH_CAPACITY}, got {capacity}"),
            ));
        }
        Ok(LshIndex {
            bands,
            rows,
            capacity,
            seed: DEFAULT_SEED,
            inner: RwLock::new(Inner {
                buckets: vec![AHashMap::new(); bands],
                ..Inner::default()
            }),
        })
    }

    /// Sets the seed that signatures must have been built with.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Bands.
    pub fn bands(&self) -> usize {
        self.bands
    }
    /// Values per band.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// The signature length this index takes, `bands × rows`.
    pub fn k(&self) -> usize {
        self.bands * self.rows
    }
    /// The seed signatures must carry.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The most ids it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The similarity at which the chance of becoming a candidate is about
    /// one half: `(1/bands)^(1/rows)`.
    pub fn threshold(&self) -> f64 {
        (1.0 / self.bands as f64).powf(1.0 / self.rows as f64)
    }
    /// Ids held now.
    pub fn len(&self) -> usize {
        self.inner.read().entries.len()
    }
    /// Whether it holds no id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Ids evicted to stay within capacity, since creation.
    pub fn evictions(&self) -> u64 {
        self.inner.read().evictions
    }

    fn band_keys(&self, sig: &Signature) -> Result<Box<[u64]>, Error> {
        if sig.len() != self.k() {
            return Err(Error::incompatible(
                NAME,
                format!(
                    "signature has k = {}, the index takes k = {}",
                    sig.len(),
                    self.k()
                ),
            ));
        }
        if sig.seed() != self.seed {
            return Err(Error::incompatible(
                NAME,
                "the signature's seed differs from the index's",
            ));
        }
        Ok(sig
            .values()
            .chunks_exact(self.rows)
            .enumerate()
            .map(|(band, vals)| {
                vals.iter()
                    .fold(mix64(band as u64 ^ 0x6c73_685f_6261_6e64), |h, &v| {
                        mix64(h.rotate_left(23) ^ v)
                    })
            })
            .collect())
    }

    /// Adds `id` (replacing its previous signature, if any). Returns the id
    /// evicted to make room, if the index was full.
    pub fn insert(&self, id: u64, sig: &Signature) -> Result<Option<u64>, Error> {
        let keys = self.band_keys(sig)?;
        Ok(self.insert_keys(id, keys))
    }

    fn insert_keys(&self, id: u64, keys: Box<[u64]>) -> Option<u64> {
        let mut inner = self.inner.write();
        inner.remove(id);
        let evicted = if inner.entries.len() >= self.capacity {
            inner.evict_oldest()
        } else {
            None
        };
        for (band, &key) in keys.iter().enumerate() {
            inner.buckets[band].entry(key).or_default().push(id);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.entries.insert(id, (seq, keys));
        inner.order.push_back((seq, id));
        inner.compact_order(self.capacity);
        evicted
    }

    /// The ids that share at least one band with `sig`, most shared bands
    /// first (then by id).
    pub fn query(&self, sig: &Signature) -> Result<Vec<u64>, Error> {
        let keys = self.band_keys(sig)?;
        let inner = self.inner.read();
        let mut hits: AHashMap<u64, u32> = AHashMap::new();
        for (band, key) in keys.iter().enumerate() {
            if let Some(ids) = inner.buckets[band].get(key) {
                for &id in ids {
                    *hits.entry(id).or_default() += 1;
                }
            }
        }
        drop(inner);
        let mut found: Vec<(u64, u32)> = hits.into_iter().collect();
        found.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(found.into_iter().map(|(id, _)| id).collect())
    }

    /// Removes `id`; returns whether it was there.
    pub fn remove(&self, id: u64) -> bool {
        self.inner.write().remove(id)
    }

    /// Adds all of `other`'s ids, oldest first, as if inserted into `self`
    /// after its own (so capacity may evict). Errors if the banding or seed differ.
    pub fn merge(&self, other: &LshIndex) -> Result<(), Error> {
        if (self.bands, self.rows) != (other.bands, other.rows) {
            return Err(Error::incompatible(
                NAME,
                format!(
                    "banding {}×{} differs from {}×{}",
                    self.bands, self.rows, other.bands, other.rows
                ),
            ));
        }
        if self.seed != other.seed {
            return Err(Error::incompatible(NAME, "the seeds differ"));
        }
        if std::ptr::eq(self, other) {
            return Ok(());
        }
        for (id, keys) in other.entries_in_order() {
            self.insert_keys(id, keys);
        }
        Ok(())
    }

    fn entries_in_order(&self) -> Vec<(u64, Box<[u64]>)> {
        let inner = self.inner.read();
        inner
            .ids_in_order()
            .into_iter()
            .map(|id| (id, inner.entries[&id].1.clone()))
            .collect()
    }

    /// The binary encoding: banding, capacity, seed, then each id with its
    /// band keys, oldest first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let entries = self.entries_in_order();
        let mut w = Writer::new(
            Kind::LshIndex,
            VERSION,
            32 + entries.len() * 8 * (1 + self.bands),
        );
        w.u32(self.bands as u32);
        w.u32(self.rows as u32);
        w.u64(self.capacity as u64);
        w.u64(self.seed);
        w.u64(entries.len() as u64);
        for (id, keys) in entries {
            w.u64(id);
            keys.iter().for_each(|&k| w.u64(k));
        }
        w.finish()
    }

    /// Decodes [`LshIndex::to_bytes`]; any corruption or truncation is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, Kind::LshIndex, VERSION)?;
        let bands = r.u32("bands")? as usize;
        let rows = r.u32("rows")? as usize;
        let capacity = r.u64("capacity")?;
        let seed = r.u64("seed")?;
        let capacity =
            usize::try_from(capacity).map_err(|_| r.err("capacity does not fit in memory"))?;
        let index = LshIndex::with_banding(bands, rows, capacity)
            .map_err(|e| r.err(e.to_string()))?
            .with_seed(seed);
        let count = r.u64("entry count")?;
        if count > capacity as u64 {
            return Err(r
                .err(format!("{count} entries exceed the capacity {capacity}"))
                .into());
        }
        let count = r.expect_items(count, 8 * (1 + bands), "entries")?;
        let mut seen = ahash::AHashSet::with_capacity(count);
        for _ in 0..count {
            let id = r.u64("id")?;
            if !seen.insert(id) {
                return Err(r.err(format!("id {id} appears twice")).into());
            }
            let keys = (0..bands)
                .map(|_| r.u64("band key"))
                .collect::<Result<Box<[u64]>, _>>()?;
            index.insert_keys(id, keys);
        }
        r.finish()?;
        Ok(index)
    }
}

impl Clone for LshIndex {
    fn clone(&self) -> Self {
        LshIndex {
            bands: self.bands,
            rows: self.rows,
            capacity: self.capacity,
            seed: self.seed,
            inner: RwLock::new(self.inner.read().clone()),
        }
    }
}

impl PartialEq for LshIndex {
    /// Equal parameters and the same ids with the same band keys, in the same order.
    fn eq(&self, other: &Self) -> bool {
        (self.bands, self.rows, self.capacity, self.seed)
            == (other.bands, other.rows, other.capacity, other.seed)
            && self.entries_in_order() == other.entries_in_order()
    }
}

impl std::fmt::Debug for LshIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LshIndex")
            .field("bands", &self.bands)
            .field("rows", &self.rows)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename = "LshIndex", deny_unknown_fields)]
struct LshRepr {
    bands: usize,
    rows: usize,
    capacity: usize,
    seed: u64,
    /// (id, band keys), oldest first
    entries: Vec<(u64, Vec<u64>)>,
}

impl Serialize for LshIndex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LshRepr {
            bands: self.bands,
            rows: self.rows,
            capacity: self.capacity,
            seed: self.seed,
            entries: self
                .entries_in_order()
                .into_iter()
                .map(|(id, k)| (id, k.into_vec()))
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for LshIndex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let r = LshRepr::deserialize(d)?;
        let index = LshIndex::with_banding(r.bands, r.rows, r.capacity)
            .map_err(D::Error::custom)?
            .with_seed(r.seed);
        if r.entries.len() > r.capacity {
            return Err(D::Error::custom(format!(
                "LshIndex: {} entries exceed the capacity {}",
                r.entries.len(),
                r.capacity
            )));
        }
        let mut seen = ahash::AHashSet::new();
        for (id, keys) in r.entries {
            if keys.len() != r.bands {
                return Err(D::Error::custom(format!(
                    "LshIndex: id {id} has {} band keys, expected {}",
                    keys.len(),
                    r.bands
                )));
            }
            if !seen.insert(id) {
                return Err(D::Error::custom(format!("LshIndex: id {id} appears twice")));
            }
            index.insert_keys(id, keys.into_boxed_slice());
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn keys(sig: &[u64], rows: usize, seed: u64) -> Vec<u64> {
        let mut out = vec![0; sig.len() / rows];
        band_keys_into(sig, rows, seed, &mut out);
        out
    }

    #[test]
    fn band_keys_hash_each_band_s_little_endian_values() {
        let sig: Vec<u64> = (0..64u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for rows in [1, 4, 8, 64] {
            let got = keys(&sig, rows, 77);
            for (band, vals) in sig.chunks_exact(rows).enumerate() {
                let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
                assert_eq!(got[band], xxh3_64_with_seed(&bytes, 77 ^ band as u64));
            }
        }
        // Past the stack buffer (streamed) the keys are the same function.
        let long: Vec<u64> = (0..80u64).collect();
        let bytes: Vec<u8> = long[..40].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(keys(&long, 40, 5)[0], xxh3_64_with_seed(&bytes, 5));
        // A remainder shorter than a band is ignored.
        let odd: Vec<u64> = (0..66).collect();
        assert_eq!(keys(&odd, 4, 1), keys(&odd[..64], 4, 1));
    }

    #[test]
    fn band_keys_are_equal_exactly_when_band_values_are() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..200 {
            let a: Vec<u64> = (0..64).map(|_| rng.random()).collect();
            let mut b = a.clone();
            for v in b.iter_mut() {
                if rng.random_bool(0.05) {
                    *v = rng.random();
                }
            }
            let (ka, kb) = (keys(&a, 4, 9), keys(&b, 4, 9));
            for band in 0..16 {
                let same = a[band * 4..band * 4 + 4] == b[band * 4..band * 4 + 4];
                assert_eq!(ka[band] == kb[band], same);
            }
        }
        // Equal values in different bands give different keys.
        let flat = vec![3u64; 64];
        let k = keys(&flat, 4, 9);
        let distinct: std::collections::HashSet<u64> = k.iter().copied().collect();
        assert_eq!(distinct.len(), 16);
        // And the seed matters.
        assert_ne!(keys(&flat, 4, 10), k);
    }

    /// Two signatures that agree on each value with probability `s` (as
    /// two MinHash signatures of sets of Jaccard similarity `s` do) share a
    /// band key as often as `collision_probability` says, within four
    /// binomial standard deviations.
    #[test]
    fn band_keys_collide_as_the_banding_curve_says() {
        let mut rng = StdRng::seed_from_u64(0x6c_7368);
        let trials = 4000;
        for (bands, rows) in [(16, 4), (8, 8), (32, 2)] {
            for s in [0.2, 0.5, 0.7, 0.9] {
                let p = collision_probability(s, bands, rows);
                let mut hits = 0u32;
                for _ in 0..trials {
                    let a: Vec<u64> = (0..bands * rows).map(|_| rng.random()).collect();
                    let b: Vec<u64> = a
                        .iter()
                        .map(|&v| if rng.random_bool(s) { v } else { rng.random() })
                        .collect();
                    let (ka, kb) = (keys(&a, rows, 3), keys(&b, rows, 3));
                    hits += u32::from(ka.iter().zip(&kb).any(|(x, y)| x == y));
                }
                let observed = f64::from(hits) / f64::from(trials);
                let sd = (p * (1.0 - p) / f64::from(trials)).sqrt();
                assert!(
                    (observed - p).abs() <= 4.0 * sd + 1e-3,
                    "bands {bands} rows {rows} s {s}: observed {observed}, expected {p} (sd {sd})"
                );
            }
        }
    }
}
