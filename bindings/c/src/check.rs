//! The per-request calls: `rf_check` a request into a caller-owned
//! verdict, `rf_settle` its real cost, and the verdict's HTTP headers.

use crate::error::{rf_status, Error};
use crate::ffi::{self, ReservationWords};
use crate::guard::rf_guard;
use ringfence::guard::{Decision, Reason, Request, Verdict};
use ringfence::limit::Outcome;
use ringfence::link::ClusterView;
use std::ffi::c_char;
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::time::Duration;

/// What to do with a request: one of the `RF_DECISION_*` values.
pub type rf_decision = u32;
/// Serve the request.
pub const RF_DECISION_ALLOW: rf_decision = 0;
/// Refuse it for now: it would fit after `retry_after_ms`.
pub const RF_DECISION_THROTTLE: rf_decision = 1;
/// Refuse it: its cluster scores as a distillation campaign (`retry_after_ms`
/// says when its score will have halved), or it can never fit its quota.
pub const RF_DECISION_DENY: rf_decision = 2;

/// Why a request was refused or limited: `RF_REASON_*` bits, or-ed.
pub type rf_reasons = u32;
/// The account's own request or token quota.
pub const RF_REASON_ACCOUNT_LIMIT: rf_reasons = 1;
/// The budget its cluster of linked accounts shares.
pub const RF_REASON_CLUSTER_LIMIT: rf_reasons = 2;
/// A fingerprint value's quota (`fingerprint_requests_per_minute`).
pub const RF_REASON_FINGERPRINT_LIMIT: rf_reasons = 4;
/// Its cluster scores as a distillation campaign (also set when the shared
/// budget applies, whether or not it binds).
pub const RF_REASON_SUSPECTED_DISTILLATION: rf_reasons = 8;

/// Which limit the rate-limit headers describe: one of the `RF_POLICY_*`
/// values (its name is the policy's name in the headers).
pub type rf_policy = u32;
/// The account's own quota (`"account"`).
pub const RF_POLICY_ACCOUNT: rf_policy = 0;
/// The cluster's shared budget (`"cluster"`).
pub const RF_POLICY_CLUSTER: rf_policy = 1;
/// A fingerprint value's quota (`"fingerprint"`).
pub const RF_POLICY_FINGERPRINT: rf_policy = 2;
/// A denied cluster (`"suspected_distillation"`): no capacity until its
/// score has halved.
pub const RF_POLICY_SUSPECTED_DISTILLATION: rf_policy = 3;

/// One fingerprint of a request: a kind (`"ip"`, `"payment"`, `"ja4"`,
/// `"device"`, `"user_agent"`, or any other name) and its value. Both are
/// UTF-8, pointer + length, not NUL-terminated; neither may be NULL.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rf_fingerprint {
    /// The kind.
    pub kind: *const c_char,
    /// Bytes in `kind`.
    pub kind_len: usize,
    /// The value.
    pub value: *const c_char,
    /// Bytes in `value`.
    pub value_len: usize,
}

/// One request, as the caller fills it. Strings are UTF-8, pointer +
/// length, not NUL-terminated; they are read only during `rf_check`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct rf_request {
    /// The account (required).
    pub account: *const c_char,
    /// Bytes in `account`.
    pub account_len: usize,
    /// The fingerprints (may be NULL when `fingerprint_count` is 0).
    pub fingerprints: *const rf_fingerprint,
    /// Entries in `fingerprints`.
    pub fingerprint_count: usize,
    /// The prompt, or NULL for none.
    pub prompt: *const c_char,
    /// Bytes in `prompt`.
    pub prompt_len: usize,
    /// The system prompt, or NULL for none.
    pub system: *const c_char,
    /// Bytes in `system`.
    pub system_len: usize,
    /// The model asked for, or NULL for none.
    pub model: *const c_char,
    /// Bytes in `model`.
    pub model_len: usize,
    /// Input tokens (an estimate will do).
    pub input_tokens: u32,
    /// The most output tokens the request may produce (`max_tokens`); with
    /// `input_tokens`, what is reserved against the token quota until
    /// `rf_settle`.
    pub max_tokens: u32,
}

/// What `rf_settle` needs of a verdict. Opaque: do not read or change it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rf_settlement {
    /// The guard that made the verdict; 0 once settled.
    _guard: u64,
    /// The cluster the request counted for.
    _cluster: u64,
    /// Input tokens, and bit 32 set when `_reservation` holds a reservation.
    _tokens: u64,
    /// The token reservation.
    // Spelled out, not `ReservationWords`, so that the header names no type
    // without the `rf_` prefix.
    _reservation: MaybeUninit<[u64; 7]>,
}

const HAS_RESERVATION: u64 = 1 << 32;

/// The guard's answer to one request, written by `rf_check` into memory the
/// caller owns (on the stack, say). It holds no pointers and needs no
/// freeing; settle a served request with `rf_settle`, which needs the
/// verdict as `rf_check` wrote it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rf_verdict {
    /// What to do: `RF_DECISION_ALLOW`, `RF_DECISION_THROTTLE` or
    /// `RF_DECISION_DENY`.
    pub decision: rf_decision,
    /// Why: `RF_REASON_*` bits (may be non-zero on an allowed request, e.g.
    /// `RF_REASON_SUSPECTED_DISTILLATION` while the shared budget has room).
    pub reasons: rf_reasons,
    /// Milliseconds to wait before trying again (rounded up): for a
    /// throttled request, until it would fit; for a denied cluster, until
    /// its score has halved; otherwise 0.
    pub retry_after_ms: u64,
    /// Requests left in the binding quota.
    pub remaining: u64,
    /// The cluster's distillation score, 0 to 1.
    pub score: f64,
    /// The account's cluster: the hash of its oldest account, stable as it grows.
    pub cluster_id: u64,
    /// Accounts in the cluster (1 for an account linked to no other).
    pub cluster_size: u32,
    /// The limit the headers describe: `RF_POLICY_*`.
    pub policy: rf_policy,
    /// `RateLimit-Policy` `q`: the policy's quota (its burst).
    pub policy_quota: u64,
    /// `RateLimit-Policy` `w`: seconds the policy's window takes to refill.
    pub policy_window_secs: u64,
    /// `RateLimit` `t`: seconds until the quota is full again.
    pub reset_secs: u64,
    /// `Retry-After` in whole seconds, or 0 when the response should not
    /// carry one (the request was allowed, or can never fit).
    pub retry_after_secs: u64,
    /// What `rf_settle` needs (opaque).
    pub settlement: rf_settlement,
}

fn reason_bit(r: Reason) -> rf_reasons {
    match r {
        Reason::AccountLimit => RF_REASON_ACCOUNT_LIMIT,
        Reason::ClusterLimit => RF_REASON_CLUSTER_LIMIT,
        Reason::FingerprintLimit => RF_REASON_FINGERPRINT_LIMIT,
        Reason::SuspectedDistillation => RF_REASON_SUSPECTED_DISTILLATION,
    }
}

/// Whole seconds, rounded up (as the headers count them). In 64-bit
/// arithmetic: `as_nanos` is a u128, whose division costs tens of
/// nanoseconds, a check's worth of overhead.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// Whole milliseconds, rounded up.
fn ceil_millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
}

impl rf_verdict {
    /// The C form of `v`, made by the guard `guard_id`. The header numbers
    /// are those of `Verdict::headers` (a test compares the two).
    pub(crate) fn new(v: &Verdict, guard_id: u64) -> rf_verdict {
        let mut reasons = 0;
        for r in v.reasons.iter() {
            reasons |= reason_bit(*r);
        }
        let (decision, retry_after_ms) = match v.decision {
            Decision::Allow => (RF_DECISION_ALLOW, 0),
            Decision::Throttle { retry_after } => (RF_DECISION_THROTTLE, ceil_millis(retry_after)),
            Decision::Deny if v.limit.is_none() => (RF_DECISION_DENY, ceil_millis(v.deny_retry)),
            Decision::Deny => (RF_DECISION_DENY, 0),
        };
        let (policy, policy_quota, policy_window_secs, reset_secs, retry_after_secs) =
            match &v.limit {
                Some(d) => {
                    let policy = if reasons & RF_REASON_CLUSTER_LIMIT != 0 {
                        RF_POLICY_CLUSTER
                    } else if reasons & RF_REASON_FINGERPRINT_LIMIT != 0 {
                        RF_POLICY_FINGERPRINT
                    } else {
                        RF_POLICY_ACCOUNT
                    };
                    let retry = if d.outcome() == Outcome::Refused && !d.is_shadow() {
                        ceil_secs(d.retry_after()).max(1)
                    } else {
                        0
                    };
                    (
                        policy,
                        d.quota().burst(),
                        ceil_secs(d.quota().window()),
                        ceil_secs(d.reset_after()),
                        retry,
                    )
                }
                None => {
                    let secs = v.deny_retry.as_secs().max(1);
                    let retry = if v.decision == Decision::Allow {
                        0
                    } else {
                        secs
                    };
                    (RF_POLICY_SUSPECTED_DISTILLATION, 0, secs, secs, retry)
                }
            };
        let (tokens, reservation) = match v.reservation {
            Some(r) => (
                u64::from(v.input_tokens) | HAS_RESERVATION,
                ffi::store_reservation(r),
            ),
            None => (u64::from(v.input_tokens), ReservationWords::uninit()),
        };
        rf_verdict {
            decision,
            reasons,
            retry_after_ms,
            remaining: v.remaining,
            score: v.score,
            cluster_id: v.cluster.id,
            cluster_size: v.cluster.size,
            policy,
            policy_quota,
            policy_window_secs,
            reset_secs,
            retry_after_secs,
            settlement: rf_settlement {
                _guard: guard_id,
                _cluster: v.cluster.id,
                _tokens: tokens,
                _reservation: reservation,
            },
        }
    }

    /// The headers, `Name: value` lines each ended by CR LF.
    pub(crate) fn header_lines(&self) -> String {
        let name = policy_name(self.policy);
        let mut s = String::with_capacity(128);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "RateLimit-Policy: \"{name}\";q={};w={}\r\nRateLimit: \"{name}\";r={};t={}\r\n",
            self.policy_quota, self.policy_window_secs, self.remaining, self.reset_secs
        );
        if self.retry_after_secs > 0 {
            let _ = write!(s, "Retry-After: {}\r\n", self.retry_after_secs);
        }
        s
    }
}

fn policy_name(p: rf_policy) -> &'static str {
    match p {
        RF_POLICY_ACCOUNT => "account",
        RF_POLICY_CLUSTER => "cluster",
        RF_POLICY_FINGERPRINT => "fingerprint",
        RF_POLICY_SUSPECTED_DISTILLATION => "suspected_distillation",
        _ => "unknown",
    }
}

/// Fingerprints up to this count are converted on the stack; more take one
/// allocation.
const INLINE_FINGERPRINTS: usize = 16;

/// One fingerprint as a `(kind, value)` pair, or `None` if either is NULL
/// or not UTF-8 ([`bad_fingerprint`] says which).
///
/// # Safety
/// The `rf_fingerprint` points to valid bytes, as `rf_check`'s contract
/// states.
#[inline(always)]
unsafe fn pair(f: &rf_fingerprint) -> Option<(&str, &str)> {
    // SAFETY: per this function's contract.
    unsafe {
        Some((
            ffi::str_fast(f.kind, f.kind_len)?,
            ffi::str_fast(f.value, f.value_len)?,
        ))
    }
}

/// What is wrong with fingerprint `i`.
///
/// # Safety
/// As [`pair`].
#[cold]
unsafe fn bad_fingerprint(f: &rf_fingerprint, i: usize) -> Error {
    // SAFETY: per this function's contract.
    let (kind, value) = unsafe { (ffi::str(f.kind, f.kind_len), ffi::str(f.value, f.value_len)) };
    match (kind, value) {
        (Err(e), _) => e.named(&format!("request.fingerprints[{i}].kind")),
        (_, Err(e)) => e.named(&format!("request.fingerprints[{i}].value")),
        _ => Error::new(
            rf_status::RF_ERR_INVALID,
            format!("`request.fingerprints[{i}]` is invalid"),
        ),
    }
}

/// Decides one request: links its account through its fingerprints, scores
/// its cluster, applies every limit at once, and writes the verdict to
/// `*verdict`.
///
/// `request` and everything it points to are read only during the call and
/// stay owned by the caller. `verdict` points to memory the caller owns;
/// on success it is overwritten with the verdict (its previous contents are
/// ignored), on failure it is not written. A served request should be
/// settled with `rf_settle` once its real output is known.
///
/// Errors: `RF_ERR_NULL` (`guard`, `request`, `verdict`, `request->account`,
/// or a fingerprint's kind or value is NULL, or `request->fingerprints` is
/// NULL with a non-zero count), `RF_ERR_UTF8` (a string is not UTF-8; the
/// message names which and the byte offset), `RF_ERR_INVALID` (a
/// misaligned pointer, an impossible length).
///
/// Safe to call from many threads at once on one guard.
///
/// # Safety
/// `guard` is NULL or a live guard; `request` is NULL or points to an
/// `rf_request` whose pointers are each NULL or valid for their lengths;
/// `verdict` is NULL or valid for writing an `rf_verdict`.
#[no_mangle]
pub unsafe extern "C" fn rf_check(
    guard: *const rf_guard,
    request: *const rf_request,
    verdict: *mut rf_verdict,
) -> rf_status {
    ffi::boundary("rf_check", || {
        // SAFETY: per this function's contract (above): every pointer is
        // NULL or valid for its length during the call.
        unsafe {
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let r = ffi::arg(request).map_err(|e| e.named("request"))?;
            if verdict.is_null() {
                return Err(ffi::Bad::Null.named("verdict"));
            }
            let fps = ffi::slice(r.fingerprints, r.fingerprint_count)
                .map_err(|e| e.named("request.fingerprints"))?;
            let mut stack = ffi::StackPairs::<INLINE_FINGERPRINTS>::new();
            let heap: Vec<(&str, &str)>;
            let pairs: &[(&str, &str)] = if fps.len() <= INLINE_FINGERPRINTS {
                for (i, f) in fps.iter().enumerate() {
                    stack.push(pair(f).ok_or_else(|| bad_fingerprint(f, i))?);
                }
                stack.as_slice()
            } else {
                heap = fps
                    .iter()
                    .enumerate()
                    .map(|(i, f)| pair(f).ok_or_else(|| bad_fingerprint(f, i)))
                    .collect::<Result<_, _>>()?;
                &heap
            };
            let req = Request {
                account: ffi::str(r.account, r.account_len)
                    .map_err(|e| e.named("request.account"))?,
                fingerprints: pairs,
                prompt: ffi::opt_str(r.prompt, r.prompt_len)
                    .map_err(|e| e.named("request.prompt"))?,
                system: ffi::opt_str(r.system, r.system_len)
                    .map_err(|e| e.named("request.system"))?,
                model: ffi::opt_str(r.model, r.model_len).map_err(|e| e.named("request.model"))?,
                input_tokens: r.input_tokens,
                max_tokens: r.max_tokens,
            };
            let v = g.guard.check(&req);
            ffi::write(verdict, rf_verdict::new(&v, g.id)).map_err(|e| e.named("verdict"))
        }
    })
}

/// Records a served request's actual output tokens: settles the token
/// reservation `rf_check` made (refunding what `max_tokens` over-estimated,
/// or debiting the excess) and feeds the cluster's output/input signal.
///
/// `verdict` is the caller's verdict as `rf_check` wrote it (a copy will
/// do). Settling marks it settled: settling it again, or settling a
/// verdict `rf_check` never filled, is `RF_ERR_INVALID`, as is settling on
/// a guard other than the one that made it. Settling a refused request is
/// allowed (it reserved nothing; only the output signal is fed). A request
/// never settled keeps its full reservation. Nothing is kept after the call.
///
/// Safe to call from many threads at once on one guard.
///
/// # Safety
/// `guard` is NULL or a live guard; `verdict` is NULL or points to an
/// `rf_verdict` nobody else uses during the call.
#[no_mangle]
pub unsafe extern "C" fn rf_settle(
    guard: *const rf_guard,
    verdict: *mut rf_verdict,
    output_tokens: u32,
) -> rf_status {
    ffi::boundary("rf_settle", || {
        // SAFETY: per this function's contract (above); every field of an
        // `rf_verdict` is an integer or a float (or the MaybeUninit words),
        // so whatever the caller left there is a valid value.
        let (g, v) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::arg_mut(verdict).map_err(|e| e.named("verdict"))?,
            )
        };
        let s = &mut v.settlement;
        if s._guard == 0 {
            return Err(Error::new(
                rf_status::RF_ERR_INVALID,
                "the verdict was settled already (or never filled by rf_check)",
            ));
        }
        if s._guard != g.id {
            return Err(Error::new(
                rf_status::RF_ERR_INVALID,
                "the verdict was made by another guard (or never filled by rf_check)",
            ));
        }
        let reservation = if s._tokens & HAS_RESERVATION != 0 {
            // SAFETY: the flag is set only next to words that
            // `store_reservation` filled (in `rf_verdict::new`), or the
            // caller wrote them, and C memory is initialised.
            Some(unsafe { ffi::load_reservation(&s._reservation) })
        } else {
            None
        };
        // `Guard::settle` reads the reservation, the input tokens and the
        // cluster; the rest of the verdict is not needed to settle it.
        let rebuilt = Verdict {
            decision: Decision::Allow,
            reasons: Default::default(),
            cluster: ClusterView {
                id: s._cluster,
                size: v.cluster_size,
            },
            score: v.score,
            signals: Default::default(),
            remaining: v.remaining,
            contributors: Default::default(),
            limit: None,
            deny_retry: Duration::ZERO,
            reservation,
            input_tokens: s._tokens as u32,
        };
        g.guard.settle(&rebuilt, output_tokens);
        s._guard = 0;
        Ok(())
    })
}

/// The HTTP headers to answer the request with, as `Name: value` lines,
/// each ended by CR LF: the IETF `RateLimit-Policy` and `RateLimit`
/// fields of the binding limit and, when the request is refused and a wait
/// helps, `Retry-After` (whole seconds). For example:
///
/// ```text
/// RateLimit-Policy: "cluster";q=20;w=60
/// RateLimit: "cluster";r=0;t=61
/// Retry-After: 4
/// ```
///
/// They are copied, with a NUL after them, into `buf` (`buf_len` bytes,
/// owned by the caller; 256 bytes always suffice), and their length without
/// the NUL to `*text_len`. If `buf_len` is too small, nothing is written to
/// `buf`, `*text_len` still gets the length, and the answer is
/// `RF_ERR_BUFFER_TOO_SMALL`. `text_len` may be NULL. The numbers are also
/// in the verdict's fields, for callers that format their own.
///
/// # Safety
/// `verdict` is NULL or points to an `rf_verdict`; `buf` is NULL or valid
/// for writing `buf_len` bytes; `text_len` is NULL or valid for writing a
/// `size_t`.
#[no_mangle]
pub unsafe extern "C" fn rf_verdict_headers(
    verdict: *const rf_verdict,
    buf: *mut c_char,
    buf_len: usize,
    text_len: *mut usize,
) -> rf_status {
    ffi::boundary("rf_verdict_headers", || {
        // SAFETY: per this function's contract (above); every field of an
        // `rf_verdict` is an integer or a float, so any contents are valid.
        let v = unsafe { ffi::arg(verdict) }.map_err(|e| e.named("verdict"))?;
        let text = v.header_lines();
        // SAFETY: per this function's contract (above).
        unsafe { ffi::copy_out(text.as_bytes(), buf, buf_len, text_len, "buf") }
    })
}

/// The name of one `RF_REASON_*` bit (`"account_limit"`, `"cluster_limit"`,
/// `"fingerprint_limit"`, `"suspected_distillation"`), or `"unknown"` for
/// any other value: a static NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_reason_str(reason: u32) -> *const c_char {
    match reason {
        RF_REASON_ACCOUNT_LIMIT => c"account_limit",
        RF_REASON_CLUSTER_LIMIT => c"cluster_limit",
        RF_REASON_FINGERPRINT_LIMIT => c"fingerprint_limit",
        RF_REASON_SUSPECTED_DISTILLATION => c"suspected_distillation",
        _ => c"unknown",
    }
    .as_ptr()
}

/// The name of an `RF_DECISION_*` value (`"allow"`, `"throttle"`,
/// `"deny"`), or `"unknown"`: a static NUL-terminated string, never to be
/// freed.
#[no_mangle]
pub extern "C" fn rf_decision_str(decision: u32) -> *const c_char {
    match decision {
        RF_DECISION_ALLOW => c"allow",
        RF_DECISION_THROTTLE => c"throttle",
        RF_DECISION_DENY => c"deny",
        _ => c"unknown",
    }
    .as_ptr()
}

/// The name of an `RF_POLICY_*` value as the headers give it
/// (`"account"`, `"cluster"`, `"fingerprint"`, `"suspected_distillation"`),
/// or `"unknown"`: a static NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_policy_str(policy: u32) -> *const c_char {
    match policy {
        RF_POLICY_ACCOUNT => c"account",
        RF_POLICY_CLUSTER => c"cluster",
        RF_POLICY_FINGERPRINT => c"fingerprint",
        RF_POLICY_SUSPECTED_DISTILLATION => c"suspected_distillation",
        _ => c"unknown",
    }
    .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringfence::guard::{Guard, GuardConfig};

    const SMALL: &str = "limiter_capacity = 4096\n[link]\nmax_accounts = 1024\n\
                         max_values = 4096\nmax_templates = 1024\nmax_pairs = 1024\n\
                         [score]\nmax_clusters = 256\n";

    fn guard(extra: &str) -> Guard {
        let config = GuardConfig::from_toml(&format!(
            "account_requests_per_minute = 30\ncluster_requests_per_minute = 5\n{extra}\n{SMALL}"
        ))
        .unwrap();
        Guard::for_replay(config).0
    }

    /// Six accounts sharing a card and a TLS fingerprint with
    /// chain-of-thought prompts, six unrelated ones, in turns, then one
    /// account over its own quota and one request larger than the token
    /// burst. Returns every verdict.
    fn traffic(extra: &str) -> Vec<Verdict> {
        let guard = guard(extra);
        let mut out = Vec::new();
        let mut check = |account: &str, fps: &[(&str, &str)], prompt: &str, max_tokens: u32| {
            let v = guard.check(&Request {
                account,
                fingerprints: fps,
                prompt: Some(prompt),
                system: None,
                model: Some("m"),
                input_tokens: 20,
                max_tokens,
            });
            guard.settle(&v, 90);
            out.push(v);
        };
        for round in 0..8 {
            for i in 0..6 {
                let ip = format!("198.51.100.{}", 10 + i);
                let fps = [
                    ("payment", "card-shared"),
                    ("ja4", "t13d_rare"),
                    ("ip", ip.as_str()),
                ];
                let prompt = format!("Explain step by step: what is {round} * {i}?");
                check(&format!("campaign-{i}"), &fps, &prompt, 100);
                let (card, ip) = (format!("card-{i}"), format!("203.0.113.{}", 10 + i));
                let fps = [("payment", card.as_str()), ("ip", ip.as_str())];
                check(
                    &format!("user-{i}"),
                    &fps,
                    "What is the capital of France?",
                    100,
                );
            }
        }
        for _ in 0..35 {
            check("busy", &[], "hello", 10);
        }
        check("greedy", &[], "hello", 10_000_000);
        out
    }

    /// `rf_verdict_headers` gives exactly `Verdict::headers`, for every kind
    /// of verdict: allowed, throttled by the account, the cluster or a
    /// fingerprint, denied as a campaign or as never fitting, and in shadow mode.
    #[test]
    fn header_lines_are_the_verdicts_headers() {
        let mut seen = std::collections::BTreeSet::new();
        for extra in [
            "share_at = 0.2\ndeny_at = 1.0",
            "share_at = 0.2\ndeny_at = 0.3",
            "[fingerprint_requests_per_minute]\npayment = 4",
            "shadow = true\nshare_at = 0.2\ndeny_at = 0.3",
        ] {
            for v in traffic(extra) {
                let c = rf_verdict::new(&v, 1);
                let expected: String = v
                    .headers()
                    .iter()
                    .map(|(n, v)| format!("{n}: {v}\r\n"))
                    .collect();
                assert_eq!(c.header_lines(), expected, "{v:?}");
                seen.insert((c.decision, c.policy, c.retry_after_secs > 0));
            }
        }
        for case in [
            (RF_DECISION_ALLOW, RF_POLICY_ACCOUNT, false),
            // (In shadow mode a denied cluster's limits are still evaluated,
            // so its verdict carries the binding limit's policy.)
            (RF_DECISION_THROTTLE, RF_POLICY_ACCOUNT, true),
            (RF_DECISION_THROTTLE, RF_POLICY_CLUSTER, true),
            (RF_DECISION_THROTTLE, RF_POLICY_FINGERPRINT, true),
            (RF_DECISION_DENY, RF_POLICY_SUSPECTED_DISTILLATION, true),
            (RF_DECISION_DENY, RF_POLICY_ACCOUNT, false),
        ] {
            assert!(
                seen.contains(&case),
                "no verdict of kind {case:?} in {seen:?}"
            );
        }
    }

    /// The verdict's fields say what the Rust verdict says.
    #[test]
    fn rounding_up() {
        for ns in [
            0,
            1,
            999_999,
            1_000_000,
            1_000_001,
            999_999_999,
            1_000_000_000,
            61_500_000_000,
        ] {
            let d = Duration::from_nanos(ns);
            assert_eq!(
                u128::from(ceil_secs(d)),
                d.as_nanos().div_ceil(1_000_000_000),
                "{d:?}"
            );
            assert_eq!(
                u128::from(ceil_millis(d)),
                d.as_nanos().div_ceil(1_000_000),
                "{d:?}"
            );
        }
        assert_eq!(ceil_millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn fields_follow_the_verdict() {
        for v in traffic("share_at = 0.2\ndeny_at = 0.3") {
            let c = rf_verdict::new(&v, 7);
            assert_eq!(c.cluster_id, v.cluster.id);
            assert_eq!(c.cluster_size, v.cluster.size);
            assert_eq!(c.score, v.score);
            assert_eq!(c.remaining, v.remaining);
            let bits = v.reasons.iter().fold(0, |b, r| b | reason_bit(*r));
            assert_eq!(c.reasons, bits);
            match v.decision {
                Decision::Allow => {
                    assert_eq!((c.decision, c.retry_after_ms), (RF_DECISION_ALLOW, 0))
                }
                Decision::Throttle { retry_after } => {
                    assert_eq!(c.decision, RF_DECISION_THROTTLE);
                    assert_eq!(
                        u128::from(c.retry_after_ms),
                        retry_after.as_nanos().div_ceil(1_000_000)
                    );
                    assert!(c.retry_after_ms > 0);
                }
                Decision::Deny => assert_eq!(c.decision, RF_DECISION_DENY),
            }
            assert_eq!(c.settlement._guard, 7);
            assert_eq!(
                c.settlement._tokens & HAS_RESERVATION != 0,
                v.reservation.is_some()
            );
            if let Some(r) = v.reservation {
                // SAFETY: stored by `rf_verdict::new` just above.
                let stored = unsafe { ffi::load_reservation(&c.settlement._reservation) };
                assert_eq!(stored, r);
            }
        }
    }
}
