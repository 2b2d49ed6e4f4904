//! Rate limiting: keyed GCRA with bounded memory, token costs, reservations
//! and all-or-nothing checks.
//!
//! ## The algorithm
//!
//! GCRA (the generic cell rate algorithm) is a leaky bucket kept as a single
//! timestamp per key, the *theoretical arrival time* (TAT). A [`Quota`] of
//! `count` units per `period` with burst `b` has emission interval
//! `T = period / count`. A request of cost `n` at time `now`:
//!
//! ```text
//! next = max(TAT, now) + n·T
//! allowed  ⇔  next − now ≤ b·T        (then TAT := next)
//! otherwise retry_after = next − now − b·T
//! ```
//!
//! So an idle key may spend `b` units at once (the *burst*), and then one unit
//! every `T`. A TAT at or before `now` is a full bucket, the same as a key never
//! seen: that is what lets the table drop such cells without losing anything.
//! This is exactly `governor`'s rule, checked step by step against it.
//!
//! ## Example
//!
//! ```
//! use ringfence::limit::{ManualClock, Quota, RateLimiter};
//! use std::sync::Arc;
//!
//! // 60 requests a minute per account, bursts of 10.
//! let limiter = RateLimiter::builder(Quota::per_minute(60).allow_burst(10)).capacity(1_000_000).build();
//! let d = limiter.check("acct-1", 1);
//! assert!(d.is_allowed());
//! assert_eq!(d.remaining(), 9);
//!
//! // Tokens: reserve prompt + max_tokens, settle with the real usage.
//! let tokens = RateLimiter::builder(Quota::per_minute(100_000))
//!     .clock(Arc::new(ManualClock::new())) // a frozen clock keeps the numbers exact
//!     .build();
//! let (reservation, _) = tokens.reserve("acct-1", 1_200 + 4_096).expect("fits");
//! let after = tokens.settle(reservation, 1_200 + 350).unwrap();
//! assert_eq!(after.remaining(), 100_000 - 1_550);
//! ```

mod clock;
mod decision;
mod gcra;
mod key;
mod limiter;
mod quota;
mod reservation;
mod table;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{LimitDecision, Outcome, RateLimitFields};
pub use key::{Key, KeyId};
pub use limiter::{
    Builder, LimitError, RateLimiter, DEFAULT_CAPACITY, DEFAULT_LIMIT_SEED, MAX_CAPACITY,
};
pub use quota::{Quota, MAX_WINDOW};
pub use reservation::Reservation;
pub(crate) use reservation::RESERVATION_WORDS;
pub use table::TableStats;
