//! What keys a limiter: a key's 128-bit identity and the types that have one.

use super::table::Fp;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// A key's identity in a limiter: a 128-bit seeded xxh3 fingerprint of the
/// key. Compute it once with [`RateLimiter::key`] to check the same key in
/// several calls, or to pass keys of different types to
/// [`RateLimiter::check_all`].
///
/// The table tells keys apart by 64 bits of the fingerprint plus the shard
/// the other 64 choose: two keys share a cell only if both collide, about
/// once in 2^64 pairs of keys of one shard, which with a secret seed nobody
/// can arrange.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KeyId(pub(crate) Fp);

/// What can key a limiter: strings (account ids, IPs, card hashes), integers,
/// or a precomputed [`KeyId`]. A string and an integer never share a cell.
pub trait Key {
    /// This key's fingerprint under `seed`.
    fn key_id(&self, seed: u64) -> KeyId;
}

#[inline]
fn fp_of(bytes: &[u8], seed: u64) -> KeyId {
    let h = xxh3_128_with_seed(bytes, seed);
    KeyId(Fp {
        hi: (h >> 64) as u64,
        lo: h as u64,
    })
}

impl Key for str {
    #[inline]
    fn key_id(&self, seed: u64) -> KeyId {
        fp_of(self.as_bytes(), seed)
    }
}
impl Key for String {
    #[inline]
    fn key_id(&self, seed: u64) -> KeyId {
        fp_of(self.as_bytes(), seed)
    }
}
impl Key for u64 {
    #[inline]
    fn key_id(&self, seed: u64) -> KeyId {
        // A different seed keeps integer keys apart from 8-byte strings.
        fp_of(&self.to_le_bytes(), seed ^ 0x6b65_795f_7536_3421)
    }
}
impl Key for KeyId {
    #[inline]
    fn key_id(&self, _seed: u64) -> KeyId {
        *self
    }
}
impl<T: Key + ?Sized> Key for &T {
    #[inline]
    fn key_id(&self, seed: u64) -> KeyId {
        (**self).key_id(seed)
    }
}
