//! What a check answers.

use super::Quota;
use std::time::Duration;

/// The verdict of a rate-limit check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The request fits; its cost was debited.
    Allowed,
    /// The request does not fit now; it will after [`Decision::retry_after`].
    Refused,
    /// The cost is larger than the quota's burst: it will never fit, however
    /// long the caller waits. (Split the request or raise the burst.)
    NeverFits,
}

/// Everything a check decided, with what an HTTP gateway needs for its
/// `Retry-After`, `RateLimit` and `RateLimit-Policy` headers.
///
/// In shadow mode a refusal is reported but not enforced:
/// [`Decision::is_allowed`] is true and [`Decision::would_refuse`] tells what
/// enforcement would have done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub(crate) outcome: Outcome,
    pub(crate) shadow: bool,
    /// Nanoseconds until the request would fit.
    pub(crate) retry_ns: u64,
    /// How far the key's TAT is ahead of now after the decision, in ns:
    /// remaining capacity and reset time are read off it on demand, so a
    /// check does no division.
    pub(crate) ahead_ns: u64,
    pub(crate) quota: Quota,
    pub(crate) limited_by: u64,
}

impl Decision {
    /// Whether the caller should serve the request: the outcome is
    /// [`Outcome::Allowed`], or the limiter is in shadow mode.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allowed || self.shadow
    }
    /// Whether enforcement refuses (or, in shadow mode, would refuse) it.
    pub fn would_refuse(&self) -> bool {
        self.outcome != Outcome::Allowed
    }
    /// The outcome enforcement decided (also in shadow mode).
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
    /// Whether the limiter was in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }
    /// Time until the request would fit (zero if it fits now; zero for
    /// [`Outcome::NeverFits`], which no wait cures).
    pub fn retry_after(&self) -> Duration {
        Duration::from_nanos(self.retry_ns)
    }
    /// Units left right after this decision.
    pub fn remaining(&self) -> u64 {
        if self.quota.is_zero() {
            return 0;
        }
        self.quota.capacity_ns().saturating_sub(self.ahead_ns) / self.quota.interval_ns()
    }
    /// Time until the bucket is full again.
    pub fn reset_after(&self) -> Duration {
        Duration::from_nanos(self.ahead_ns)
    }
    /// The quota the decision was made under (for `check_all`: the binding one).
    pub fn quota(&self) -> Quota {
        self.quota
    }
    /// For `check_all`: bit `i` is set when key `i` refused (keys past the
    /// 64th share bit 63). Zero when allowed.
    pub fn limited_by(&self) -> u64 {
        self.limited_by
    }

    /// The HTTP headers for this decision, in the IETF RateLimit-header
    /// fields draft's form, with `policy` as the policy's name:
    /// `RateLimit-Policy: "policy";q=<burst>;w=<seconds to refill>`,
    /// `RateLimit: "policy";r=<remaining>;t=<seconds to full>`, and, when
    /// refused, `Retry-After: <seconds>` (rounded up).
    ///
    /// ```
    /// use ringfence::limit::{ManualClock, Quota, RateLimiter};
    /// use std::sync::Arc;
    ///
    /// let limiter = RateLimiter::builder(Quota::per_minute(60)).clock(Arc::new(ManualClock::new())).build();
    /// let d = limiter.check("acct-1", 60);
    /// let d = limiter.check("acct-1", 1);
    /// assert_eq!(d.headers("account"), vec![
    ///     ("RateLimit-Policy", "\"account\";q=60;w=60".to_string()),
    ///     ("RateLimit", "\"account\";r=0;t=60".to_string()),
    ///     ("Retry-After", "1".to_string()),
    /// ]);
    /// ```
    pub fn headers(&self, policy: &str) -> Vec<(&'static str, String)> {
        let secs = |d: Duration| d.as_nanos().div_ceil(1_000_000_000);
        let mut h = vec![
            (
                "RateLimit-Policy",
                format!(
                    "\"{policy}\";q={};w={}",
                    self.quota.burst(),
                    secs(self.quota.window())
                ),
            ),
            (
                "RateLimit",
                format!(
                    "\"{policy}\";r={};t={}",
                    self.remaining(),
                    secs(self.reset_after())
                ),
            ),
        ];
        if self.outcome == Outcome::Refused && !self.shadow {
            h.push(("Retry-After", secs(self.retry_after()).max(1).to_string()));
        }
        h
    }
}
