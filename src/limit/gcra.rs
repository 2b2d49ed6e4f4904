//! The generic cell rate algorithm on one key's theoretical arrival time.
//!
//! A key's whole state is its *theoretical arrival time* (TAT): the time at
//! which its bucket would be full again. With emission interval `T` and burst
//! `b`, a request of cost `n` at time `now` fits when
//! `max(TAT, now) + n·T − now ≤ b·T`, and then sets `TAT = max(TAT, now) + n·T`.
//! A TAT at or before `now` means a full bucket, exactly like a key never seen.
//! This is the same rule as `governor`'s (tested step by step against it).

use super::decision::{LimitDecision, Outcome};
use super::Quota;

/// The largest TAT the table stores (56 bits of nanoseconds, 2.28 years past
/// the limiter's creation).
pub(crate) const MAX_TAT: u64 = (1 << 56) - 1;
/// The limiter's horizon: up to this time every arrival time (at most one
/// quota window, 2^55 ns, ahead) is representable. Past it the limiter
/// fails open.
pub(crate) const HORIZON: u64 = MAX_TAT - (1 << 55);

/// What a test of cost `cost` against `tat` at `now` gives: the decision and
/// the new TAT to store (equal to `tat` unless allowed with a cost).
#[inline]
pub(crate) fn test(tat: u64, now: u64, quota: &Quota, cost: u64) -> (LimitDecision, u64) {
    if cost > quota.burst() {
        return (decision(Outcome::NeverFits, tat, now, quota, 0), tat);
    }
    if now > HORIZON {
        // Past the horizon (years of uptime): admit rather than block all.
        return (decision(Outcome::Allowed, tat, now, quota, 0), tat);
    }
    // Decided on the exact value: with now ≤ HORIZON and a window of at most
    // 2^55 ns, an admitted `next` always fits in 56 bits.
    let base = tat.max(now);
    let next = base.saturating_add(quota.cost_ns(cost));
    let ahead = next - now;
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

/// The new TAT after refunding `units`, of which at most `outstanding_ns`
/// (the part of their debt not yet elapsed) can still be given back.
#[inline]
pub(crate) fn refund(tat: u64, quota: &Quota, units: u64, outstanding_ns: u64) -> u64 {
    tat.saturating_sub(quota.cost_ns(units).min(outstanding_ns))
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
) -> LimitDecision {
    LimitDecision {
        outcome,
        shadow: false,
        retry_ns,
        ahead_ns: tat.saturating_sub(now),
        quota: *quota,
        limited_by: 0,
    }
}
