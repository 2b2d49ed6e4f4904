//! What a check answers.

use super::Quota;
use std::time::Duration;

/// The verdict of a rate-limit check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The request fits; its cost was debited.
    Allowed,
    /// The request does not fit now; it will after [`LimitDecision::retry_after`].
    Refused,
    /// The cost is larger than the quota's burst: it will never fit, however
    /// long the caller waits. (Split the request or raise the burst.)
    NeverFits,
}

/// Everything a check decided, with what an HTTP gateway needs for its
/// `Retry-After`, `RateLimit` and `RateLimit-Policy` headers.
///
/// In shadow mode a refusal is reported but not enforced:
/// [`LimitDecision::is_allowed`] is true and [`LimitDecision::would_refuse`] tells what
/// enforcement would have done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitDecision {
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

impl LimitDecision {
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
        self.rate_limit().headers(policy)
    }

    /// The numbers of [`LimitDecision::headers`], without the formatting.
    pub fn rate_limit(&self) -> RateLimitFields {
        RateLimitFields {
            quota: self.quota.burst(),
            window_secs: ceil_secs(self.quota.window()),
            remaining: self.remaining(),
            reset_secs: ceil_secs(self.reset_after()),
            retry_after_secs: if self.outcome == Outcome::Refused && !self.shadow {
                ceil_secs(self.retry_after()).max(1)
            } else {
                0
            },
        }
    }
}

/// Whole seconds, rounded up (as the headers count them), in 64-bit
/// arithmetic (`as_nanos` is a u128, whose division costs tens of ns).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// The numbers behind the rate-limit headers of a response, and the one
/// place that writes them as headers (Rust, C and Python all answer with
/// these): `RateLimit-Policy: "<policy>";q=<quota>;w=<window_secs>`,
/// `RateLimit: "<policy>";r=<remaining>;t=<reset_secs>`, and
/// `Retry-After: <retry_after_secs>` when that is not 0.
///
/// ```
/// use ringfence::limit::RateLimitFields;
/// let f = RateLimitFields { quota: 20, window_secs: 60, remaining: 0, reset_secs: 61, retry_after_secs: 4 };
/// assert_eq!(f.header_lines("cluster"),
///     "RateLimit-Policy: \"cluster\";q=20;w=60\r\nRateLimit: \"cluster\";r=0;t=61\r\nRetry-After: 4\r\n");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateLimitFields {
    /// `q`: the policy's quota (its burst).
    pub quota: u64,
    /// `w`: seconds the policy's window takes to refill.
    pub window_secs: u64,
    /// `r`: units left.
    pub remaining: u64,
    /// `t`: seconds until the quota is full again.
    pub reset_secs: u64,
    /// `Retry-After` in whole seconds; 0 when the response carries none
    /// (allowed, or a cost that can never fit).
    pub retry_after_secs: u64,
}

impl RateLimitFields {
    /// The headers as (name, value) pairs, in order.
    pub fn headers(&self, policy: &str) -> Vec<(&'static str, String)> {
        let mut h = vec![
            (
                "RateLimit-Policy",
                format!("\"{policy}\";q={};w={}", self.quota, self.window_secs),
            ),
            (
                "RateLimit",
                format!("\"{policy}\";r={};t={}", self.remaining, self.reset_secs),
            ),
        ];
        if self.retry_after_secs > 0 {
            h.push(("Retry-After", self.retry_after_secs.to_string()));
        }
        h
    }

    /// The headers as `Name: value` lines, each ended by CR LF.
    pub fn header_lines(&self, policy: &str) -> String {
        let mut s = String::with_capacity(128);
        for (name, value) in self.headers(policy) {
            s.push_str(name);
            s.push_str(": ");
            s.push_str(&value);
            s.push_str("\r\n");
        }
        s
    }
}
