//! The generic cell rate algorithm on one key's theoretical arrival time.
//!
//! A key's whole state is its *theoretical arrival time* (TAT): the time at
//! which its bucket would be full again. With emission interval `T` and burst
//! `b`, a request of cost `n` at time `now` fits when
//! `max(TAT, now) + n·T − now ≤ b·T`, and then sets `TAT = max(TAT, now) + n·T`.
//! A TAT at or before `now` means a full bucket, exactly like a key never seen.
//! This is the same rule as `governor`'s (tested step by step against it).

use super::decision::{Decision, Outcome};
use super::Quota;

/// The largest TAT the table stores (56 bits of nanoseconds, 2.28 years past
/// the clock's epoch); later times saturate there.
pub(crate) const MAX_TAT: u64 = (1 << 56) - 1;

/// What a test of cost `cost` against `tat` at `now` gives: the decision and
/// the new TAT to store (equal to `tat` unless allowed with a cost).
#[inline]
pub(crate) fn test(tat: u64, now: u64, quota: &Quota, cost: u64) -> (Decision, u64) {
    if cost > quota.burst() {
        return (decision(Outcome::NeverFits, tat, now, quota, 0), tat);
    }
    let base = tat.max(now);
    let next = base.saturating_add(quota.cost_ns(cost)).min(MAX_TAT);
    let ahead = next - now.min(next);
    let cap = quota.capacity_ns();
    if ahead > cap {
        return (
            decision(Outcome::Refused, tat, now, quota, ahead - cap),
            tat,
        );
    }
    if cost == 0 {
        return (decision(Outcome::Allowed, tat, now, quota, 0), tat);
    }
    (decision(Outcome::Allowed, next, now, quota, 0), next)
}

/// The new TAT after refunding `units` (a reservation settled lower).
#[inline]
pub(crate) fn refund(tat: u64, quota: &Quota, units: u64) -> u64 {
    tat.saturating_sub(quota.cost_ns(units))
}

/// The new TAT after debiting `units` unconditionally (usage already served).
#[inline]
pub(crate) fn force_debit(tat: u64, now: u64, quota: &Quota, units: u64) -> u64 {
    tat.max(now)
        .saturating_add(quota.cost_ns(units))
        .min(MAX_TAT)
}

/// The decision, given the TAT that holds after it and the wait in ns.
#[inline]
pub(crate) fn decision(
    outcome: Outcome,
    tat: u64,
    now: u64,
    quota: &Quota,
    retry_ns: u64,
) -> Decision {
    Decision {
        outcome,
        shadow: false,
        retry_ns,
        ahead_ns: tat.saturating_sub(now),
        quota: *quota,
        limited_by: 0,
    }
}
