//! Reservations: units debited now, settled later with the real cost.

use super::table::Fp;
use super::{KeyId, Quota};

/// Units debited ahead of a request whose real cost is known only later
/// (an LLM call: prompt tokens + `max_tokens` now, the actual output tokens
/// when the response ends). Settle it with [`RateLimiter::settle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a reservation should be settled with the actual cost"]
pub struct Reservation {
    pub(crate) key: KeyId,
    pub(crate) quota: Quota,
    pub(crate) reserved: u64,
    pub(crate) limiter: u64,
    /// The key's TAT right after the reservation (limiter time): a refund
    /// can give back only the part of the reserved debt not yet elapsed.
    pub(crate) tat_after: u64,
}

impl Reservation {
    /// Units reserved.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
    /// The key it was made for.
    pub fn key(&self) -> KeyId {
        self.key
    }
}

/// Words in [`Reservation::to_words`].
pub(crate) const RESERVATION_WORDS: usize = 7;

impl Reservation {
    /// The reservation as plain words, for a settlement token that crosses
    /// a language boundary (see `guard::Settlement`).
    pub(crate) fn to_words(self) -> [u64; RESERVATION_WORDS] {
        [
            self.key.0.hi,
            self.key.0.lo,
            self.quota.interval_ns(),
            self.quota.burst(),
            self.reserved,
            self.limiter,
            self.tat_after,
        ]
    }

    /// A reservation read back from [`Reservation::to_words`]. Any words
    /// give some reservation; one that names another limiter is refused by
    /// [`RateLimiter::settle`](super::RateLimiter::settle).
    pub(crate) fn from_words(w: [u64; RESERVATION_WORDS]) -> Reservation {
        Reservation {
            key: KeyId(Fp { hi: w[0], lo: w[1] }),
            quota: Quota::from_raw(w[2], w[3]),
            reserved: w[4],
            limiter: w[5],
            tat_after: w[6],
        }
    }
}
