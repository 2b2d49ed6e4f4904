//! The per-request calls: `rf_check` a request into a caller-owned
//! verdict, `rf_settle` its real cost, and the verdict's HTTP headers.

use crate::error::{rf_status, Error};
use crate::ffi;
use crate::guard::rf_guard;
use crate::names;
use ringfence::guard::{Request, Settlement, Verdict, SETTLEMENT_WORDS};
use ringfence::limit::RateLimitFields;
use std::ffi::c_char;
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
/// The account presents a value another provider shared as an operation's
/// indicator; its requests share that campaign's budget (also set when the
/// budget has room).
pub const RF_REASON_SHARED_INDICATOR: rf_reasons = 16;

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

/// Words in an `rf_settlement`'s opaque token: the core's
/// `SETTLEMENT_WORDS` (the build fails if the two ever differ).
pub const RF_SETTLEMENT_WORDS: usize = 11;
const _: () = assert!(RF_SETTLEMENT_WORDS == SETTLEMENT_WORDS);

/// What `rf_settle` needs of a verdict. Opaque: do not read or change it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rf_settlement {
    /// The core's settlement token, as plain words (what is inside is the
    /// core's business: the guard, the cluster, the reservation, ...).
    _words: [u64; RF_SETTLEMENT_WORDS],
    /// Set by `rf_check`, cleared by `rf_settle`, so that a verdict is
    /// settled once.
    _state: u64,
}

/// `rf_settlement::_state` of a verdict not yet settled: an unlikely value,
/// so that zeroed or stale memory is unlikely to pass for a verdict.
const LIVE: u64 = 0x7266_5f76_6572_6469;

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

/// Whole milliseconds, rounded up.
fn ceil_millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
}

impl rf_verdict {
    /// The C form of `v`: every field is read from the core's answer
    /// (`Verdict::policy`, `Verdict::rate_limit`, `Verdict::retry_after`,
    /// `Verdict::settlement`), none re-derived here.
    pub(crate) fn new(v: &Verdict) -> rf_verdict {
        let fields = v.rate_limit();
        rf_verdict {
            decision: v.decision.code(),
            reasons: v.reasons.iter().fold(0, |bits, r| bits | r.bit()),
            retry_after_ms: ceil_millis(v.retry_after()),
            remaining: fields.remaining,
            score: v.score,
            cluster_id: v.cluster.id,
            cluster_size: v.cluster.size,
            policy: v.policy().code(),
            policy_quota: fields.quota,
            policy_window_secs: fields.window_secs,
            reset_secs: fields.reset_secs,
            retry_after_secs: fields.retry_after_secs,
            settlement: rf_settlement {
                _words: v.settlement().to_words(),
                _state: LIVE,
            },
        }
    }

    /// The headers, `Name: value` lines each ended by CR LF, as the core
    /// writes them (`RateLimitFields::header_lines`) from the verdict's
    /// numbers; an error if `policy` is not an `RF_POLICY_*` value.
    pub(crate) fn header_lines(&self) -> Result<String, Error> {
        let policy = names::policy(self.policy).ok_or_else(|| {
            Error::new(
                rf_status::RF_ERR_INVALID,
                format!(
                    "`verdict.policy` is {}, not an RF_POLICY_* value (was the verdict filled by rf_check?)",
                    self.policy
                ),
            )
        })?;
        let fields = RateLimitFields {
            quota: self.policy_quota,
            window_secs: self.policy_window_secs,
            remaining: self.remaining,
            reset_secs: self.reset_secs,
            retry_after_secs: self.retry_after_secs,
        };
        Ok(fields.header_lines(policy.as_str()))
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

/// A request that breaks the core's request contract: `RF_ERR_INVALID`
/// with the core's message (which names the field).
#[cold]
fn request_error(e: ringfence::guard::RequestError) -> Error {
    Error::new(rf_status::RF_ERR_INVALID, e.to_string())
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
/// misaligned pointer, an impossible length, or a request that breaks the
/// request contract every binding shares: an empty account, an account
/// longer than 4,096 bytes, more than 64 fingerprints, a fingerprint with
/// an empty kind, or a kind or value longer than 4,096 bytes; the message
/// is ringfence's own, naming the field, such as ``rf_check: `account` is
/// empty: every request must name its account``).
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
            let v = g.inner.try_check(&req).map_err(request_error)?;
            ffi::write(verdict, rf_verdict::new(&v)).map_err(|e| e.named("verdict"))
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
/// a guard other than the one that made it. Settling a refused request
/// does nothing (it reserved nothing and produced no output) but marks it
/// settled all the same, so a caller may settle every verdict alike. A
/// request never settled keeps its full reservation. Nothing is kept after
/// the call.
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
        // `rf_verdict` is an integer or a float, so whatever the caller
        // left there is a valid value.
        let (g, v) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::arg_mut(verdict).map_err(|e| e.named("verdict"))?,
            )
        };
        let s = &mut v.settlement;
        if s._state != LIVE {
            return Err(Error::new(
                rf_status::RF_ERR_INVALID,
                "the verdict was settled already (or never filled by rf_check)",
            ));
        }
        // Any words make some token: the core refuses one of another guard,
        // and settles no tokens against a reservation it does not hold.
        g.inner
            .settle_token(Settlement::from_words(s._words), output_tokens)
            .map_err(|e| Error::new(rf_status::RF_ERR_INVALID, e.to_string()))?;
        s._state = 0;
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
/// `RF_ERR_BUFFER_TOO_SMALL`. `text_len` may be NULL. The lines are the
/// ones every binding writes (ringfence's own formatting of the numbers);
/// the numbers are also in the verdict's fields, for callers that format
/// their own. A verdict whose `policy` is not an `RF_POLICY_*` value (one
/// `rf_check` did not fill) is `RF_ERR_INVALID`.
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
        let text = v.header_lines()?;
        // SAFETY: per this function's contract (above).
        unsafe { ffi::copy_out(text.as_bytes(), buf, buf_len, text_len, "buf") }
    })
}

/// Input tokens estimated from the bytes of a request's text (its prompt,
/// system prompt and every message together), for a caller with no
/// tokenizer count: ringfence's one estimate, the same in every binding (a
/// quarter of the bytes, rounded up, at most `UINT32_MAX`). Cannot fail.
#[no_mangle]
pub extern "C" fn rf_estimate_tokens(bytes: usize) -> u32 {
    ffi::boundary_value(u32::MAX, || ringfence::guard::estimate_tokens(bytes))
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

    /// The lines `rf_verdict_headers` writes from a verdict's C fields are
    /// the core's headers for it, for every kind of verdict: allowed,
    /// throttled by the account, the cluster or a fingerprint, denied as a
    /// campaign or as never fitting, and in shadow mode.
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
                let c = rf_verdict::new(&v);
                let expected = v.rate_limit().header_lines(v.policy().as_str());
                assert_eq!(c.header_lines().unwrap(), expected, "{v:?}");
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
        let mut bad = rf_verdict::new(&traffic("")[0]);
        bad.policy = 9;
        let e = bad.header_lines().unwrap_err();
        assert_eq!(e.status, rf_status::RF_ERR_INVALID);
        assert!(e.message.contains("`verdict.policy` is 9"), "{}", e.message);
    }

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
                u128::from(ceil_millis(d)),
                d.as_nanos().div_ceil(1_000_000),
                "{d:?}"
            );
        }
        assert_eq!(ceil_millis(Duration::MAX), u64::MAX);
    }

    /// The verdict's fields say what the core's verdict says.
    #[test]
    fn fields_follow_the_verdict() {
        for v in traffic("share_at = 0.2\ndeny_at = 0.3") {
            let c = rf_verdict::new(&v);
            let fields = v.rate_limit();
            assert_eq!(c.decision, v.decision.code());
            assert_eq!(c.reasons, v.reasons.iter().map(|r| r.bit()).sum::<u32>());
            assert_eq!(
                u128::from(c.retry_after_ms),
                v.retry_after().as_nanos().div_ceil(1_000_000)
            );
            assert_eq!(c.remaining, v.remaining);
            assert_eq!(c.score, v.score);
            assert_eq!(
                (c.cluster_id, c.cluster_size),
                (v.cluster.id, v.cluster.size)
            );
            assert_eq!(c.policy, v.policy().code());
            assert_eq!(
                (
                    c.policy_quota,
                    c.policy_window_secs,
                    c.remaining,
                    c.reset_secs,
                    c.retry_after_secs
                ),
                (
                    fields.quota,
                    fields.window_secs,
                    fields.remaining,
                    fields.reset_secs,
                    fields.retry_after_secs
                )
            );
            assert_eq!(Settlement::from_words(c.settlement._words), v.settlement());
            assert_eq!(c.settlement._state, LIVE);
        }
    }

    #[test]
    fn the_token_estimate_is_the_cores() {
        for bytes in [0, 1, 4, 5, 1 << 20, usize::MAX] {
            assert_eq!(
                rf_estimate_tokens(bytes),
                ringfence::guard::estimate_tokens(bytes)
            );
        }
    }
}
