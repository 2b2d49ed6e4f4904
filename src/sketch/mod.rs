//! Mergeable, bounded-memory sketches: what ringfence remembers about
//! open-ended key spaces (accounts per IP, prompts per template, …).
//!
//! | sketch | answers | error | memory |
//! |---|---|---|---|
//! | [`CountMin`] | how often was `x` seen? | over-estimates by ≤ ε·N with probability ≥ 1 − δ; never under | `4⌈e/ε⌉⌈ln 1/δ⌉` bytes |
//! | [`HyperLogLog`] | how many distinct items? | relative standard error ≈ 1.04/√m | `m/4` bytes while sparse, `5m/4` after (`m` for p < 8) |
//! | [`MinHash`] / [`Signature`] | how similar are two sets? | standard error ≈ √(J(1−J)/k) | `8k` bytes |
//! | [`PackedHll`] | how many distinct, in one word? | relative standard error ≈ 1.04/√m, m = 8 or 16 | 8 bytes |
//! | [`LshIndex`] | which stored sets are similar to this one? | candidates by banding; see [`collision_probability`] | ≈ `40 × bands` bytes per id, capacity-bounded |
//!
//! Every sketch:
//! - is `Send + Sync` and updated through `&self` with atomics (no lock;
//!   [`LshIndex`] is the one exception, see its docs);
//! - hashes with xxh3 and a 64-bit seed ([`DEFAULT_SEED`] unless set), so
//!   sketches from different processes and machines can be merged and compared;
//! - merges with another of the same parameters and seed, and refuses
//!   others with [`Error::Incompatible`];
//! - serialises with serde and with its own compact, versioned, checksummed
//!   binary encoding (`to_bytes` / `from_bytes`), which rejects corrupt input
//!   with [`Error::Decode`].

mod count_min;
mod error;
pub(crate) mod hash;
mod hyperloglog;
mod lsh;
mod minhash;
mod packed_hll;
mod shingle;

pub use count_min::CountMin;
pub use error::Error;
pub(crate) use hash::reduce;
pub use hash::{Item, DEFAULT_SEED};
pub use hyperloglog::{HyperLogLog, MAX_PRECISION, MIN_PRECISION};
pub use lsh::{band_keys_into, banding_for, collision_probability, LshIndex, MAX_LSH_CAPACITY};
pub use minhash::{MinHash, Signature, DEFAULT_K, MAX_K};
pub use packed_hll::PackedHll;
pub use shingle::{for_each_shingle, shingle, MAX_SHINGLE_WORDS};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn sketches_are_send_and_sync() {
        assert_send_sync::<CountMin>();
        assert_send_sync::<HyperLogLog>();
        assert_send_sync::<MinHash>();
        assert_send_sync::<Signature>();
        assert_send_sync::<LshIndex>();
    }
}
