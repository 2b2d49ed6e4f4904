//! What the guard answers: the decision, its reasons, the headers and the
//! settlement token. The names here are the one vocabulary that Rust, C and
//! Python all answer with.

use crate::limit::{RateLimitFields, Reservation, RESERVATION_WORDS};
use crate::link::ClusterView;
use crate::score::Signals;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// Refuse it for now; it would fit after `retry_after`.
    Throttle {
        /// Time until it would fit.
        retry_after: Duration,
    },
    /// Refuse it.
    Deny,
}

impl Decision {
    /// Every decision's name, in the order of their C codes (0, 1, 2).
    pub const NAMES: [&'static str; 3] = ["allow", "throttle", "deny"];

    /// The decision's name: `allow`, `throttle` or `deny`.
    pub fn as_str(&self) -> &'static str {
        Self::NAMES[self.code() as usize]
    }

    /// The decision's code (`RF_DECISION_*` in C): 0 allow, 1 throttle, 2 deny.
    pub fn code(&self) -> u32 {
        match self {
            Decision::Allow => 0,
            Decision::Throttle { .. } => 1,
            Decision::Deny => 2,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused or limited (a fixed vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The account's own quota.
    AccountLimit,
    /// The cluster's shared budget.
    ClusterLimit,
    /// A fingerprint value's quota.
    FingerprintLimit,
    /// The cluster scores as a distillation campaign.
    SuspectedDistillation,
    /// The account presents a value another provider shared as an
    /// operation's indicator (`crate::intel`): its requests share that
    /// campaign's budget.
    SharedIndicator,
}

impl Reason {
    /// Every reason, in the order of their C bits (1, 2, 4, 8, 16).
    pub const ALL: [Reason; 5] = [
        Reason::AccountLimit,
        Reason::ClusterLimit,
        Reason::FingerprintLimit,
        Reason::SuspectedDistillation,
        Reason::SharedIndicator,
    ];

    /// The reason's bit (`RF_REASON_*` in C): 1 shifted by its place in
    /// [`Reason::ALL`].
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The reason's name in the documented vocabulary (`account_limit`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AccountLimit => "account_limit",
            Reason::ClusterLimit => "cluster_limit",
            Reason::FingerprintLimit => "fingerprint_limit",
            Reason::SuspectedDistillation => "suspected_distillation",
            Reason::SharedIndicator => "shared_indicator",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reasons of a verdict: a small set, in a fixed order, that derefs to
/// a slice (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Reasons {
    items: [Reason; 5],
    len: u8,
}

impl Reasons {
    pub(crate) const fn new() -> Reasons {
        Reasons {
            items: [Reason::AccountLimit; 5],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, r: Reason) {
        if !self.contains(&r) && usize::from(self.len) < self.items.len() {
            self.items[usize::from(self.len)] = r;
            self.len += 1;
        }
    }
}

impl Default for Reasons {
    fn default() -> Self {
        Reasons::new()
    }
}

impl std::ops::Deref for Reasons {
    type Target = [Reason];
    fn deref(&self) -> &[Reason] {
        &self.items[..usize::from(self.len)]
    }
}

impl<'a> IntoIterator for &'a Reasons {
    type Item = &'a Reason;
    type IntoIter = std::slice::Iter<'a, Reason>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq<Vec<Reason>> for Reasons {
    fn eq(&self, other: &Vec<Reason>) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<[Reason; N]> for Reasons {
    fn eq(&self, other: &[Reason; N]) -> bool {
        **self == other[..]
    }
}

impl Serialize for Reasons {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl fmt::Debug for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The Guard's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why (empty when allowed without any cluster policy).
    pub reasons: Reasons,
    /// The account's cluster.
    pub cluster: ClusterView,
    /// The cluster's distillation score in [0, 1].
    pub score: f64,
    /// The signals behind the score.
    pub signals: Signals,
    /// Requests left in the binding quota.
    pub remaining: u64,
    /// The signals that contribute most to the score, strongest first.
    pub contributors: crate::score::Contributors,
    /// The limiter's decision behind the verdict (`None` when the request
    /// was denied before the limits: `suspected_distillation` at `deny_at`).
    pub limit: Option<crate::limit::LimitDecision>,
    /// How long a denied cluster should wait before trying again (the
    /// score's half-life: by then its score has halved).
    pub deny_retry: Duration,
    /// The tokens reserved for this request, settled by [`Guard::settle`].
    pub reservation: Option<crate::limit::Reservation>,
    /// The request's input tokens (for settling).
    pub input_tokens: u32,
    /// The guard that gave the verdict (for settling).
    pub(crate) guard_id: u64,
    /// The scored cluster whose output ratio a settlement feeds (the
    /// linked cluster, even where a crowd's verdict stands in for it).
    pub(crate) scored_cluster: u64,
    /// The account's behaviour cell plus one (0: none), for settling.
    pub(crate) account_cell: u32,
    /// The account's hash (the linker's, under `link.seed`), for settling.
    pub(crate) account: u64,
}

impl Verdict {
    /// Whether to serve the request.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// How long to wait before trying again: for a throttled request,
    /// until it would fit; for a denied cluster, until its score has
    /// halved ([`Verdict::deny_retry`]); otherwise zero.
    pub fn retry_after(&self) -> Duration {
        match self.decision {
            Decision::Allow => Duration::ZERO,
            Decision::Throttle { retry_after } => retry_after,
            Decision::Deny if self.limit.is_none() => self.deny_retry,
            Decision::Deny => Duration::ZERO,
        }
    }

    /// The limit the rate-limit headers describe: the cluster's shared
    /// budget or a fingerprint's quota when one of them refused, the
    /// account's otherwise, and `suspected_distillation` for a cluster
    /// denied outright.
    pub fn policy(&self) -> Policy {
        if self.limit.is_none() {
            Policy::SuspectedDistillation
        } else if self.reasons.contains(&Reason::ClusterLimit) {
            Policy::Cluster
        } else if self.reasons.contains(&Reason::FingerprintLimit) {
            Policy::Fingerprint
        } else {
            Policy::Account
        }
    }

    /// The numbers of the rate-limit headers (see [`Verdict::headers`]).
    /// A denied cluster's policy has quota 0 and no capacity left until
    /// `deny_retry` (whole seconds, at least 1).
    pub fn rate_limit(&self) -> RateLimitFields {
        match &self.limit {
            Some(d) => d.rate_limit(),
            None => {
                let secs = self.deny_retry.as_secs().max(1);
                RateLimitFields {
                    quota: 0,
                    window_secs: secs,
                    remaining: 0,
                    reset_secs: secs,
                    retry_after_secs: if self.decision == Decision::Allow {
                        0
                    } else {
                        secs
                    },
                }
            }
        }
    }

    /// The HTTP headers to answer with: the IETF `RateLimit-Policy` and
    /// `RateLimit` fields of the binding limit ([`Verdict::policy`]), and
    /// `Retry-After` (whole seconds, at least 1) when the request is
    /// refused and waiting helps.
    ///
    /// ```
    /// use ringfence::guard::{Guard, GuardConfig, Request};
    /// let guard = Guard::new(GuardConfig::for_accounts(100));
    /// let req = Request { account: "a", fingerprints: &[], prompt: None, system: None,
    ///                     model: None, input_tokens: 10, max_tokens: 10 };
    /// let h = guard.check(&req).headers();
    /// assert_eq!(h[0], ("RateLimit-Policy", "\"account\";q=20;w=60".to_string()));
    /// assert_eq!(h[1], ("RateLimit", "\"account\";r=19;t=3".to_string()));
    /// ```
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.rate_limit().headers(self.policy().as_str())
    }

    /// What [`Guard::settle_token`] needs to settle this verdict later,
    /// possibly after crossing a language boundary.
    pub fn settlement(&self) -> Settlement {
        Settlement {
            guard: self.guard_id,
            cluster: self.scored_cluster,
            input_tokens: self.input_tokens,
            served: self.decision == Decision::Allow,
            reservation: self.reservation,
            account_cell: self.account_cell,
            account: self.account,
        }
    }
}

/// The limit a verdict's rate-limit headers describe (its name is the
/// policy's name in the headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The account's own quota (`account`).
    Account,
    /// The cluster's shared budget (`cluster`).
    Cluster,
    /// A fingerprint value's quota (`fingerprint`).
    Fingerprint,
    /// A cluster denied outright (`suspected_distillation`).
    SuspectedDistillation,
}

impl Policy {
    /// Every policy, in the order of their C codes (0 to 3).
    pub const ALL: [Policy; 4] = [
        Policy::Account,
        Policy::Cluster,
        Policy::Fingerprint,
        Policy::SuspectedDistillation,
    ];

    /// The policy's name in the headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Account => "account",
            Policy::Cluster => "cluster",
            Policy::Fingerprint => "fingerprint",
            Policy::SuspectedDistillation => "suspected_distillation",
        }
    }

    /// The policy's code (`RF_POLICY_*` in C): its place in [`Policy::ALL`].
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Words in [`Settlement::to_words`].
pub const SETTLEMENT_WORDS: usize = 4 + RESERVATION_WORDS;

const SERVED: u64 = 1 << 32;
const RESERVED: u64 = 1 << 33;
/// Word 2's high 30 bits carry the account's behaviour cell plus one.
const CELL_SHIFT: u32 = 34;
const CELL_MASK: u32 = (1 << 30) - 1;

/// What settling a verdict needs, as an opaque token: the guard that gave
/// it, the cluster, the input tokens, whether it was served, and the token
/// reservation. [`Settlement::to_words`] and [`Settlement::from_words`] let
/// a binding carry it as plain integers without knowing what is inside.
///
/// Settling a refused verdict does nothing (nothing was served and nothing
/// reserved); settling on another guard is [`SettleError::ForeignGuard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    guard: u64,
    cluster: u64,
    input_tokens: u32,
    served: bool,
    reservation: Option<Reservation>,
    /// The account's behaviour cell plus one (0: none; 30 bits).
    account_cell: u32,
    /// The account's hash.
    account: u64,
}

impl Settlement {
    /// Whether the verdict served its request (only those settle anything).
    pub fn is_served(&self) -> bool {
        self.served
    }

    /// The token as plain words.
    pub fn to_words(&self) -> [u64; SETTLEMENT_WORDS] {
        let mut w = [0u64; SETTLEMENT_WORDS];
        w[0] = self.guard;
        w[1] = self.cluster;
        w[2] = u64::from(self.input_tokens)
            | if self.served { SERVED } else { 0 }
            | if self.reservation.is_some() {
                RESERVED
            } else {
                0
            }
            | (u64::from(self.account_cell & CELL_MASK) << CELL_SHIFT);
        w[3] = self.account;
        if let Some(r) = self.reservation {
            w[4..].copy_from_slice(&r.to_words());
        }
        w
    }

    /// A token read back from [`Settlement::to_words`]. Any words give some
    /// token: one naming another guard is refused when settled, and one
    /// whose reservation names another limiter settles no tokens.
    pub fn from_words(w: [u64; SETTLEMENT_WORDS]) -> Settlement {
        let mut r = [0u64; RESERVATION_WORDS];
        r.copy_from_slice(&w[4..]);
        Settlement {
            guard: w[0],
            cluster: w[1],
            input_tokens: w[2] as u32,
            served: w[2] & SERVED != 0,
            reservation: (w[2] & RESERVED != 0).then(|| Reservation::from_words(r)),
            account_cell: (w[2] >> CELL_SHIFT) as u32 & CELL_MASK,
            account: w[3],
        }
    }

    /// The hash of the verdict's account: the same for one account on
    /// every guard with the same `link.seed` (the nodes of a fleet), so
    /// that whatever is settled later can be keyed by it without the
    /// account's name (see `Guard::observe_answer_of`).
    pub fn account(&self) -> u64 {
        self.account
    }

    pub(crate) fn guard(&self) -> u64 {
        self.guard
    }
    pub(crate) fn cluster(&self) -> u64 {
        self.cluster
    }
    /// The request's input tokens.
    pub fn input_tokens(&self) -> u32 {
        self.input_tokens
    }
    /// The token reservation the verdict made, if any.
    pub fn reservation(&self) -> Option<Reservation> {
        self.reservation
    }
    /// The account's behaviour cell, if the verdict had one.
    pub(crate) fn account_cell(&self) -> Option<u32> {
        self.account_cell.checked_sub(1)
    }
}

/// A settlement that could not be carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettleError {
    /// The verdict was given by another guard.
    ForeignGuard,
}

impl fmt::Display for SettleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettleError::ForeignGuard => f.write_str(
                "this verdict was given by another guard; settle it with the guard that gave it",
            ),
        }
    }
}

impl std::error::Error for SettleError {}
