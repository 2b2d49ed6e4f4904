//! How crowds are judged: [`CrowdConfig`] and its defaults.

use serde::{Deserialize, Serialize};

/// How accounts' own behaviour is read and how crowds are judged. Every
/// field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrowdConfig {
    /// Weight of elicitation in an account's suspicion: the share of its
    /// requests that ask for the model's reasoning (the score's
    /// `cot_phrases`; default 0.35).
    pub elicitation_weight: f64,
    /// Weight of long answers: the account's mean output tokens per served
    /// request against `long_output_tokens` (default 0.45).
    pub long_output_weight: f64,
    /// Weight of sustained volume: the account's requests per day against
    /// `busy_requests_per_day` (default 0.2).
    pub busy_weight: f64,
    /// Mean output tokens per served request that count as fully long;
    /// half as many count as not long at all (default 800: well over twice
    /// an ordinary answer; distillation is after long reasoned ones).
    pub long_output_tokens: f64,
    /// Requests per day, sustained, that count as fully busy; a quarter as
    /// many count as not busy at all (default 48: two an hour around the
    /// clock).
    pub busy_requests_per_day: f64,
    /// Requests of ordinary behaviour every account starts with, so that
    /// a few requests never make an account look suspicious (default 4).
    pub prior_requests: f64,
    /// Suspicion (in [0, 1]) at which an account counts as suspicious: it
    /// counts towards its crowds' suspicious members, and a suspicious
    /// crowd's verdict applies to it (default 0.5). Crowd verdicts never
    /// apply to an account below it, whichever crowd it is in.
    pub suspicious_at: f64,
    /// Half-life of an account's behaviour counts, seconds (default 43,200).
    pub account_half_life_secs: f64,
    /// A crowd's memory: its accounts are counted over the last one to two
    /// windows, its requests decay with this half-life (seconds, default
    /// 21,600).
    pub window_secs: f64,
    /// Suspicious members at which a crowd behind a shared value starts to
    /// count, and at which it counts fully (default [10, 40]): a crowd is
    /// stronger evidence the larger it is.
    pub members: [f64; 2],
    /// Share of a crowd's active accounts that must be suspicious for it to
    /// start to count, and to count fully (default [0.3, 0.6]): a value
    /// that an operation shares with a larger honest crowd does not
    /// condemn the honest crowd, and its suspicious members are judged by
    /// their other crowds.
    pub suspicious_share: [f64; 2],
    /// Distinct prompts per prompted request below which a crowd does not
    /// count, and above which it counts fully (default [0, 0.02]: a crowd
    /// asking each of its prompts more than 50 times over a window
    /// counts less, down to nothing). An evaluation re-running a small
    /// benchmark repeats its prompts; an operation collecting answers has
    /// little use for the same answer twice, though one drawing on a
    /// limited pool of tasks does repeat some.
    pub diversity: [f64; 2],
    /// Members at which a *behaviour* crowd starts to count and counts
    /// fully (default [200, 800]). A behaviour crowd gathers suspicious
    /// accounts that behave alike (how much they elicit, how long their
    /// answers, how busy they are, how long their prompts) without sharing
    /// any value: evidence against operations that share no
    /// infrastructure, which needs a larger crowd because honest
    /// individuals can look alike by chance.
    pub behaviour_members: [f64; 2],
    /// Suspicion at which an account joins its behaviour class, and at
    /// which a behaviour class's verdict applies to it (default 0.6): a
    /// class is weaker evidence than a shared value, so it takes an account
    /// clearly suspicious on its own, not one on the edge.
    pub behaviour_suspicious_at: f64,
    /// How many times the requests of its crowd's accounts, on average
    /// (decayed counts, each account counting once), a member of a crowd
    /// behind a shared value may have and still be judged as one of them
    /// (default 8; 0: any). An
    /// operation spreads its traffic thin over many accounts; one account
    /// far busier than the rest of its crowd (an evaluation pipeline
    /// behind a popular SDK's fingerprint, a scheduled job) is another
    /// actor, left to its own limits and its other crowds.
    pub pace_factor: f64,
    /// Fingerprint kinds whose values are not judged as crowds (default
    /// `asn`, `email_domain`: a network or a mail provider is everybody's,
    /// not an operator's).
    pub excluded_kinds: Vec<String>,
    /// Crowds judged at once (default 65,536, about 100 bytes each; the
    /// least recently active is replaced when a new one needs room).
    pub max_crowds: usize,
}

impl Default for CrowdConfig {
    fn default() -> Self {
        CrowdConfig {
            elicitation_weight: 0.35,
            long_output_weight: 0.45,
            busy_weight: 0.2,
            long_output_tokens: 800.0,
            busy_requests_per_day: 48.0,
            prior_requests: 4.0,
            suspicious_at: 0.5,
            account_half_life_secs: 43_200.0,
            window_secs: 21_600.0,
            members: [10.0, 40.0],
            suspicious_share: [0.3, 0.6],
            diversity: [0.0, 0.02],
            behaviour_members: [200.0, 800.0],
            behaviour_suspicious_at: 0.6,
            pace_factor: 8.0,
            excluded_kinds: vec!["asn".into(), "email_domain".into()],
            max_crowds: 65_536,
        }
    }
}

impl CrowdConfig {
    /// Checks the values that parse but make no sense; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |key: &str, why: &str| Err(format!("`crowd.{key}` {why}"));
        for (key, w) in [
            ("elicitation_weight", self.elicitation_weight),
            ("long_output_weight", self.long_output_weight),
            ("busy_weight", self.busy_weight),
        ] {
            if !(0.0..=100.0).contains(&w) {
                return bad(key, &format!("must be between 0 and 100 (got {w})"));
            }
        }
        if self.elicitation_weight + self.long_output_weight + self.busy_weight <= 0.0 {
            return bad(
                "elicitation_weight",
                "and the other weights must not all be 0",
            );
        }
        for (key, v) in [
            ("long_output_tokens", self.long_output_tokens),
            ("busy_requests_per_day", self.busy_requests_per_day),
            ("account_half_life_secs", self.account_half_life_secs),
            ("window_secs", self.window_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, "must be positive");
            }
        }
        if !(self.prior_requests.is_finite() && self.prior_requests >= 0.0) {
            return bad("prior_requests", "must be 0 or more");
        }
        if !(self.suspicious_at > 0.0 && self.suspicious_at <= 1.0) {
            return bad("suspicious_at", "must be in (0, 1]");
        }
        if !(self.pace_factor.is_finite() && self.pace_factor >= 0.0) {
            return bad("pace_factor", "must be 0 or more");
        }
        if !(self.behaviour_suspicious_at >= self.suspicious_at
            && self.behaviour_suspicious_at <= 1.0)
        {
            return bad(
                "behaviour_suspicious_at",
                "must be from `crowd.suspicious_at` to 1",
            );
        }
        for (key, [lo, hi]) in [
            ("members", self.members),
            ("behaviour_members", self.behaviour_members),
        ] {
            if !(lo >= 2.0 && hi > lo && hi.is_finite()) {
                return bad(
                    key,
                    "must be two counts, the first at least 2 and below the second",
                );
            }
        }
        for (key, [lo, hi]) in [
            ("suspicious_share", self.suspicious_share),
            ("diversity", self.diversity),
        ] {
            if !((0.0..1.0).contains(&lo) && hi > lo && hi <= 1.0) {
                return bad(key, "must be two shares, 0 ≤ first < second ≤ 1");
            }
        }
        if self.max_crowds == 0 || self.max_crowds > 1 << 24 {
            return bad("max_crowds", "must be between 1 and 2^24");
        }
        Ok(())
    }
}

/// Where `x` lies between `lo` (0) and `hi` (1), clamped.
pub(super) fn ramp(x: f64, lo: f64, hi: f64) -> f64 {
    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// Where `x` lies between `lo` (0) and `hi` (1) on a log scale, clamped.
pub(super) fn log_ramp(x: f64, lo: f64, hi: f64) -> f64 {
    if x <= lo {
        return 0.0;
    }
    ((x / lo).ln() / (hi / lo).ln()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configurations_name_the_key() {
        let bad = CrowdConfig {
            members: [40.0, 10.0],
            ..CrowdConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("crowd.members"));
        let bad = CrowdConfig {
            suspicious_share: [0.5, 1.5],
            ..CrowdConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("crowd.suspicious_share"));
        assert!(CrowdConfig::default().validate().is_ok());
    }

    #[test]
    fn ramps_go_from_zero_to_one() {
        assert_eq!(ramp(0.2, 0.3, 0.6), 0.0);
        assert!((ramp(0.45, 0.3, 0.6) - 0.5).abs() < 1e-12);
        assert_eq!(ramp(0.9, 0.3, 0.6), 1.0);
        assert_eq!(log_ramp(5.0, 10.0, 40.0), 0.0);
        assert!((log_ramp(20.0, 10.0, 40.0) - 0.5).abs() < 1e-12);
        assert_eq!(log_ramp(100.0, 10.0, 40.0), 1.0);
    }
}
