//! Seeded, process-stable hashing for everything a sketch stores.
//!
//! Every hash that a sketch keeps, merges or compares with another process's
//! sketch is xxh3 (64 bit) of the item's bytes with a 64-bit seed. The seed is
//! part of each sketch; two sketches merge only if their seeds are equal. A
//! deployment may keep its seed secret, so that nobody outside can choose
//! items that collide in its sketches.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The seed used when none is configured: the bytes of `"RINGFENC"`.
///
/// Public and fixed, so sketches built with defaults by different processes
/// are comparable. Deployments exposed to adversarial inputs should configure
/// their own secret seed.
pub const DEFAULT_SEED: u64 = u64::from_be_bytes(*b"RINGFENC");

/// Something a sketch can count: hashed from a stable byte representation.
///
/// Strings and byte slices hash their bytes; integers hash their
/// little-endian bytes, so the same value hashes the same on every platform
/// and in every process that uses the same seed.
///
/// ```
/// use ringfence::sketch::Item;
/// assert_eq!("abc".sketch_hash(7), b"abc"[..].sketch_hash(7));
/// assert_ne!("abc".sketch_hash(7), "abc".sketch_hash(8));
/// ```
pub trait Item {
    /// xxh3-64 of the item's stable bytes with `seed`.
    fn sketch_hash(&self, seed: u64) -> u64;
}

impl Item for [u8] {
    #[inline]
    fn sketch_hash(&self, seed: u64) -> u64 {
        xxh3_64_with_seed(self, seed)
    }
}

impl Item for str {
    #[inline]
    fn sketch_hash(&self, seed: u64) -> u64 {
        xxh3_64_with_seed(self.as_bytes(), seed)
    }
}

impl Item for String {
    #[inline]
    fn sketch_hash(&self, seed: u64) -> u64 {
        self.as_str().sketch_hash(seed)
    }
}

impl Item for Vec<u8> {
    #[inline]
    fn sketch_hash(&self, seed: u64) -> u64 {
        self.as_slice().sketch_hash(seed)
    }
}

impl<const N: usize> Item for [u8; N] {
    #[inline]
    fn sketch_hash(&self, seed: u64) -> u64 {
        xxh3_64_with_seed(self, seed)
    }
}

impl<T: Item + ?Sized> Item for &T {
    #[inline]
    fn sketch_hash(&self, seed: u64) -> u64 {
        (**self).sketch_hash(seed)
    }
}

macro_rules! int_item {
    ($($t:ty),*) => {$(
        impl Item for $t {
            #[inline]
            fn sketch_hash(&self, seed: u64) -> u64 {
                xxh3_64_with_seed(&self.to_le_bytes(), seed)
            }
        }
    )*};
}
int_item!(u16, u32, u64, u128, i16, i32, i64, i128);

/// A fast bijective 64-bit mixer (the finaliser of MurmurHash3).
///
/// Used where a value that is already a seeded hash needs its bits spread
/// again (bin choice, densification, band keys); never on raw user input.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Maps a uniform 64-bit value onto `0..n` without division (Lemire's
/// multiply-high reduction); uses the value's high bits.
#[inline]
pub(crate) fn reduce(x: u64, n: usize) -> usize {
    ((u128::from(x) * n as u128) >> 64) as usize
}
