//! One cluster's statistics: the parts of [`super::parts`], listed once,
//! and what a request does to them.

use super::parts::{Aging, Agree, Burst, Busiest, Clock, Counts, Models, Recent, Stat, WindowStep};
use super::{Activity, ScoreConfig};
use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};
use crate::sketch::PackedHll;

/// The length of a synchrony bucket, seconds.
pub(super) const BUCKET_SECS: f64 = 30.0;

/// The distinct-count sketches of a cluster's stats (active accounts,
/// distinct prompts): 16 registers, about 26 % standard error.
type StatHll = PackedHll<16>;

/// `regs` with `hash` added, its bits spread first (the keys scored here are
/// account and prompt hashes that the packed sketch's low bits would see
/// too little of).
pub(super) fn hll_with(regs: u64, hash: u64) -> u64 {
    let h = hash.rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    StatHll::from_bits(regs).with(h.reverse_bits()).bits()
}

pub(super) fn hll_estimate(regs: u64) -> f64 {
    StatHll::from_bits(regs).estimate()
}

pub(super) fn hll_merge(a: u64, b: u64) -> u64 {
    StatHll::from_bits(a).merge(StatHll::from_bits(b)).bits()
}

fn decay(elapsed: f64, half_life: f64) -> f64 {
    if elapsed <= 0.0 {
        1.0
    } else {
        0.5f64.powf(elapsed / half_life)
    }
}

/// Declares [`Stats`] from its parts, each listed once: the struct, and the
/// advance, merge and codec that go through every part in order.
macro_rules! cell_stats {
    ($($(#[$doc:meta])* $part:ident: $ty:ty,)*) => {
        /// One cluster's statistics (decayed to `last`).
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub(super) struct Stats {
            /// First activity, seconds.
            pub(super) born: f64,
            /// Last activity, seconds.
            pub(super) last: f64,
            $($(#[$doc])* pub(super) $part: $ty,)*
        }

        impl Stats {
            fn advance_parts(&mut self, aging: &Aging) {
                $(self.$part.advance(aging);)*
            }

            fn merge_parts(&mut self, other: &Stats, agree: &Agree) {
                $(self.$part.merge(&other.$part, agree);)*
            }

            /// Writes every part (the times are the caller's).
            pub(super) fn encode(&self, w: &mut Writer) {
                $(self.$part.encode(w);)*
            }

            /// Reads what `encode` wrote, for a cell with these times.
            pub(super) fn decode(
                r: &mut Reader<'_>,
                born: f64,
                last: f64,
            ) -> Result<Stats, Error> {
                Ok(Stats {
                    born,
                    last,
                    $($part: <$ty as Stat>::decode(r)?,)*
                })
            }
        }
    };
}

cell_stats! {
    /// Decayed counts of the requests and of each kind.
    counts: Counts,
    /// The busiest accounts.
    busiest: Busiest,
    /// Active accounts and distinct prompts of this window and the last.
    recent: Recent,
    /// The current window and bucket.
    clock: Clock,
    /// The accounts of the current bucket.
    burst: Burst,
    /// The models seen.
    models: Models,
}

impl Stats {
    /// Fresh statistics of a cluster first seen `now`.
    pub(super) fn new(now: f64) -> Stats {
        Stats {
            born: now,
            last: now,
            ..Stats::default()
        }
    }

    /// Decays every count to `now`.
    pub(super) fn advance(&mut self, now: f64, half_life: f64) {
        if now <= self.last {
            return;
        }
        let window = (now / half_life) as u32;
        let step = if window == self.clock.window {
            WindowStep::Same
        } else if window == self.clock.window.wrapping_add(1) {
            WindowStep::Next
        } else {
            WindowStep::Beyond
        };
        self.advance_parts(&Aging {
            factor: decay(now - self.last, half_life) as f32,
            window,
            step,
        });
        self.last = now;
    }

    /// Folds in another cell's statistics: both decayed to the later time,
    /// counts added, windows and buckets united where they agree.
    pub(super) fn merge(&mut self, mut other: Stats, half_life: f64) {
        let now = self.last.max(other.last);
        self.advance(now, half_life);
        other.advance(now, half_life);
        self.born = self.born.min(other.born);
        let agree = Agree {
            window: self.clock.window == other.clock.window,
            bucket: self.clock.bucket == other.clock.bucket,
        };
        self.merge_parts(&other, &agree);
    }

    /// Records a request (advanced to `a.now` already): whether it elicits
    /// chain-of-thought and its model's hash are the caller's.
    pub(super) fn observe(
        &mut self,
        a: &Activity<'_>,
        cot: bool,
        model: Option<u32>,
        c: &ScoreConfig,
    ) {
        let counts = &mut self.counts;
        counts.requests += 1.0;
        counts.cot += f32::from(u8::from(cot));
        counts.template += f32::from(u8::from(a.template_shared));
        if a.prompt_key != 0 {
            self.recent.add_prompt(a.prompt_key);
        }
        self.busiest.count(a.account);
        self.recent.add_account(a.account);
        if self.is_synchronous(a, c) {
            self.counts.synchronous += 1.0;
        }
        if let Some(m) = model {
            let first = self.models.first_seen(m, (a.now - self.born) as f32);
            // A fifth model (`None`) is new by definition.
            if first.is_none_or(|t| f64::from(t) > c.half_life_secs) {
                self.counts.pivot += 1.0;
            }
        }
    }

    /// Notes the account in its 30 s bucket, and whether the bucket is now
    /// synchronous: more accounts in it than the cluster's steady rate would
    /// put there by chance (a large cluster of independent users is always
    /// busy; a fleet moves in bursts).
    fn is_synchronous(&mut self, a: &Activity<'_>, c: &ScoreConfig) -> bool {
        let bucket = (a.now / BUCKET_SECS).max(0.0) as u32;
        if bucket != self.clock.bucket {
            self.clock.bucket = bucket;
            self.burst.0 = 0;
        }
        self.burst.0 |= 1 << (a.account.rotate_left(7) & 63);
        let longest = (c.half_life_secs / std::f64::consts::LN_2).max(BUCKET_SECS);
        let lifetime = (a.now - self.born).clamp(BUCKET_SECS, longest);
        let per_bucket = f64::from(self.counts.requests) / lifetime * BUCKET_SECS;
        let needed = f64::from(c.sync_accounts).max(3.0 * per_bucket);
        f64::from(self.burst.0.count_ones()) >= needed
    }
}
