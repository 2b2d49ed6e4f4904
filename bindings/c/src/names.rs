//! The names of decisions, reasons, policies, signals and TLP levels, as
//! static C strings. Every name comes from the core (`Decision::NAMES`,
//! `Reason::ALL`, `Policy::ALL`, `Signal::ALL`) or the intel crate
//! (`Tlp::ALL`), made into C strings once,
//! on first use: nothing here spells a name, so a name the core adds or
//! changes reaches C without touching this crate.

use crate::check::{rf_decision, rf_policy, rf_reasons};
use crate::ffi;
use crate::intel::rf_tlp;
use ringfence::guard::{Decision, Policy, Reason};
use ringfence::score::Signal;
use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// The core's names as C strings, each table in the order of its codes.
struct Names {
    /// By position in `Reason::ALL` (bit `1 << i`).
    reasons: Vec<CString>,
    /// By `Decision::code()`.
    decisions: Vec<CString>,
    /// By `Policy::code()`.
    policies: Vec<CString>,
    /// By position in `Signal::ALL`.
    signals: Vec<CString>,
    /// By `RF_TLP_*` code, the TLP 2.0 names (`Tlp::ALL`'s order).
    tlps: Vec<CString>,
}

/// The tables, made on first use and kept for the life of the process (so
/// the pointers handed to C stay valid).
fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        // The core's names are identifiers: no NUL can be in them.
        let c = |s: &str| CString::new(s).expect("a core name has no NUL byte");
        Names {
            reasons: Reason::ALL.iter().map(|r| c(r.as_str())).collect(),
            decisions: Decision::NAMES.iter().map(|d| c(d)).collect(),
            policies: Policy::ALL.iter().map(|p| c(p.as_str())).collect(),
            signals: Signal::ALL.iter().map(|s| c(s.name())).collect(),
            tlps: crate::intel::TLPS.iter().map(|t| c(t.tlp_2_0())).collect(),
        }
    })
}

/// The reason whose bit is `bit`, as its place in `Reason::ALL`.
fn reason_index(bit: rf_reasons) -> Option<usize> {
    Reason::ALL.iter().position(|r| r.bit() == bit)
}

/// The policy whose code is `code`, as its place in `Policy::ALL`.
pub(crate) fn policy(code: rf_policy) -> Option<Policy> {
    Policy::ALL.iter().copied().find(|p| p.code() == code)
}

/// The name of one `RF_REASON_*` bit (`"account_limit"`, `"cluster_limit"`,
/// `"fingerprint_limit"`, `"suspected_distillation"`), or `"unknown"` for
/// any other value (several bits or-ed together included): a static
/// NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_reason_str(reason: rf_reasons) -> *const c_char {
    ffi::boundary_str(c"unknown".as_ptr(), || {
        reason_index(reason).map(|i| names().reasons[i].as_c_str())
    })
}

/// The name of an `RF_DECISION_*` value (`"allow"`, `"throttle"`,
/// `"deny"`), or `"unknown"`: a static NUL-terminated string, never to be
/// freed.
#[no_mangle]
pub extern "C" fn rf_decision_str(decision: rf_decision) -> *const c_char {
    ffi::boundary_str(c"unknown".as_ptr(), || {
        let names = &names().decisions;
        let i = usize::try_from(decision).ok()?;
        names.get(i).map(CString::as_c_str)
    })
}

/// The name of an `RF_POLICY_*` value as the headers give it
/// (`"account"`, `"cluster"`, `"fingerprint"`, `"suspected_distillation"`),
/// or `"unknown"`: a static NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_policy_str(policy: rf_policy) -> *const c_char {
    ffi::boundary_str(c"unknown".as_ptr(), || {
        let names = &names().policies;
        names
            .get(usize::try_from(policy).ok()?)
            .map(CString::as_c_str)
    })
}

/// How many signals a cluster's score is computed from, with the score
/// itself (`rf_signal_name` names each). The count grows when ringfence
/// gains a signal; a program that lists them by index needs no change.
#[no_mangle]
pub extern "C" fn rf_signal_count() -> usize {
    ffi::boundary_value(0, || Signal::ALL.len())
}

/// The name of signal `index` (0 to `rf_signal_count() - 1`), such as
/// `"volume"`, `"cot"`, `"diversity"` or `"score"`, as `rf_guard_explain`
/// and the other bindings name it; NULL for an index past the last. A
/// static NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_signal_name(index: usize) -> *const c_char {
    ffi::boundary_str(std::ptr::null(), || {
        names().signals.get(index).map(CString::as_c_str)
    })
}

/// The TLP 2.0 name of an `RF_TLP_*` value (`"clear"`, `"green"`,
/// `"amber"`, `"amber+strict"`, `"red"`, as a bundle's marking spells it),
/// or `"unknown"`: a static NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_tlp_str(tlp: rf_tlp) -> *const c_char {
    ffi::boundary_str(c"unknown".as_ptr(), || {
        names().tlps.get(usize::from(tlp)).map(CString::as_c_str)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::*;
    use std::ffi::CStr;

    /// A name as a Rust string (for the tests).
    fn read(p: *const c_char) -> &'static str {
        assert!(!p.is_null());
        // SAFETY: every function above answers NULL (checked) or a static
        // NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    /// The ABI's constants are the core's codes, and the names C answers
    /// with are the core's names.
    #[test]
    fn codes_and_names_are_the_cores() {
        let reasons = [
            (Reason::AccountLimit, RF_REASON_ACCOUNT_LIMIT),
            (Reason::ClusterLimit, RF_REASON_CLUSTER_LIMIT),
            (Reason::FingerprintLimit, RF_REASON_FINGERPRINT_LIMIT),
            (
                Reason::SuspectedDistillation,
                RF_REASON_SUSPECTED_DISTILLATION,
            ),
            (Reason::SharedIndicator, RF_REASON_SHARED_INDICATOR),
        ];
        assert_eq!(reasons.len(), Reason::ALL.len());
        for (r, c) in reasons {
            assert_eq!(r.bit(), c, "{r:?}");
            assert_eq!(read(rf_reason_str(c)), r.as_str());
        }
        let decisions = [
            (Decision::Allow, RF_DECISION_ALLOW),
            (
                Decision::Throttle {
                    retry_after: std::time::Duration::from_secs(1),
                },
                RF_DECISION_THROTTLE,
            ),
            (Decision::Deny, RF_DECISION_DENY),
        ];
        assert_eq!(decisions.len(), Decision::NAMES.len());
        for (d, c) in decisions {
            assert_eq!(d.code(), c, "{d:?}");
            assert_eq!(read(rf_decision_str(c)), d.as_str());
        }
        let policies = [
            (Policy::Account, RF_POLICY_ACCOUNT),
            (Policy::Cluster, RF_POLICY_CLUSTER),
            (Policy::Fingerprint, RF_POLICY_FINGERPRINT),
            (
                Policy::SuspectedDistillation,
                RF_POLICY_SUSPECTED_DISTILLATION,
            ),
        ];
        assert_eq!(policies.len(), Policy::ALL.len());
        for (p, c) in policies {
            assert_eq!(p.code(), c, "{p:?}");
            assert_eq!(read(rf_policy_str(c)), p.as_str());
            assert_eq!(policy(c), Some(p));
        }
        for bad in [0, 3, 32, u32::MAX] {
            assert_eq!(read(rf_reason_str(bad)), "unknown");
        }
        assert_eq!(read(rf_decision_str(3)), "unknown");
        assert_eq!(read(rf_policy_str(4)), "unknown");
        assert_eq!(policy(4), None);
        // The same pointer every time: the strings are made once.
        assert_eq!(rf_reason_str(1), rf_reason_str(1));
    }

    #[test]
    fn tlp_levels_are_named_as_bundles_name_them() {
        use crate::intel::*;
        let names = [
            (RF_TLP_CLEAR, "clear"),
            (RF_TLP_GREEN, "green"),
            (RF_TLP_AMBER, "amber"),
            (RF_TLP_AMBER_STRICT, "amber+strict"),
            (RF_TLP_RED, "red"),
        ];
        for (code, name) in names {
            assert_eq!(read(rf_tlp_str(code)), name);
            let level = ringfence_intel::guard::tlp_named(name).unwrap();
            assert_eq!(level.tlp_2_0(), name);
        }
        assert_eq!(read(rf_tlp_str(5)), "unknown");
        assert_eq!(read(rf_tlp_str(u8::MAX)), "unknown");
    }

    #[test]
    fn every_signal_is_named_as_the_core_names_it() {
        assert_eq!(rf_signal_count(), Signal::ALL.len());
        let names: Vec<&str> = (0..rf_signal_count())
            .map(|i| read(rf_signal_name(i)))
            .collect();
        let core: Vec<&str> = ringfence::score::Signals::default()
            .iter()
            .map(|(s, _)| s.name())
            .collect();
        assert_eq!(names, core);
        assert!(names.contains(&"diversity") && names.contains(&"score"));
        assert!(rf_signal_name(rf_signal_count()).is_null());
        assert!(rf_signal_name(usize::MAX).is_null());
    }
}
