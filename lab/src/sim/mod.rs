//! A deterministic simulator of LLM API traffic with a distillation
//! campaign hidden in it: the data ringfence is tuned and evaluated on.
//!
//! [`simulate`] turns a [`Scenario`] into a time-ordered list of
//! [`Record`]s, one per request, each labelled `benign` or
//! `campaign:<operation>` with its `cohort` (labels are for evaluation only:
//! the guard never reads them). The same scenario and seed always give the
//! same trace, on every platform.
//!
//! **Benign traffic**: individuals with log-normal daily volume and daily
//! cycles in several time zones, writing varied prompts; and cohorts that each
//! look suspicious on one signal: mobile CGNAT addresses shared by hundreds of
//! accounts, a campus NAT, a company whose accounts share one card, egress IP,
//! email domain and system prompt, users of one open-source coding agent
//! sharing its long system prompt, households sharing a device and an IP,
//! evaluation pipelines sending step-by-step prompts around the clock, users of
//! a third-party router, and the common SDKs' TLS fingerprints, user agents,
//! card BINs and email domains that everybody shares.
//!
//! **The campaign** (1 % of accounts by default), in three operations:
//! `coordinated` (prepaid cards shared across accounts, synchronised bursts,
//! datacenter IPs, chain-of-thought templates), `multi_route` (a third-party
//! router's IP pool, education accounts, a shared system prompt, office hours
//! in its own time zone, agentic coding templates) and `reseller` (residential
//! proxy IPs rarely reused, a device per account, one HTTP client's TLS
//! fingerprint, virtual cards from one BIN, genuine customer traffic mixed in,
//! a pivot to a newly released model half-way). Every campaign account stays
//! under the per-account limit. [`Knobs`] turn the attacker's evasions up.
//!
//! ```
//! use ringfence_lab::sim::{simulate, Scenario};
//!
//! let scenario = Scenario::builtin("default").unwrap().scaled(0.02);
//! let trace = simulate(&scenario);
//! assert!(trace.windows(2).all(|w| w[0].ts <= w[1].ts));
//! assert!(trace.iter().any(|r| r.label == "campaign:coordinated"));
//! assert_eq!(trace, simulate(&scenario)); // deterministic
//! ```

mod rng;
pub mod text;
mod world;

pub use rng::Rng;
pub use world::simulate;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One simulated request: the trace format's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Seconds since the Unix epoch.
    pub ts: f64,
    /// The account id.
    pub account: String,
    /// Fingerprint kind → value (`ip`, `asn`, `device`, `payment`,
    /// `payment_bin`, `ja4`, `user_agent`, `email_domain`).
    pub fingerprints: BTreeMap<String, String>,
    /// The user prompt.
    pub prompt: String,
    /// The system prompt, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The model asked for.
    pub model: String,
    /// Prompt tokens (about four bytes each).
    pub input_tokens: u32,
    /// Tokens the model answered with.
    pub output_tokens: u32,
    /// `benign` or `campaign:<operation>`: for evaluation only.
    pub label: String,
    /// The cohort the account belongs to: for evaluation only.
    pub cohort: String,
}

/// The attacker's evasions; [`Scenario::builtin`]`("adaptive")` turns them up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Fraction of campaign prompts whose template wording is paraphrased.
    pub paraphrase_rate: f64,
    /// Accounts per prepaid card in the coordinated operation (1: no sharing).
    pub accounts_per_card: u32,
    /// Residential proxy addresses the reseller draws from.
    pub proxy_pool: u32,
    /// Requests per campaign account per day.
    pub requests_per_account_per_day: f64,
    /// Fraction of the reseller's traffic that is genuine customers'.
    pub mix_in: f64,
    /// Whether the campaign copies the most common SDK's TLS fingerprint.
    pub copy_common_tls: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            paraphrase_rate: 0.0,
            accounts_per_card: 8,
            proxy_pool: 200_000,
            requests_per_account_per_day: 60.0,
            mix_in: 0.3,
            copy_common_tls: false,
        }
    }
}

/// Sizes of the benign cohorts (accounts, at scale 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cohorts {
    /// Mobile users behind a carrier's CGNAT.
    pub mobile_cgnat: u32,
    /// CGNAT addresses they share (hundreds of accounts each).
    pub cgnat_ips: u32,
    /// Students behind one campus NAT, with the university's email domain.
    pub campus: u32,
    /// Developers of one company: one card, one egress IP, one domain, one system prompt.
    pub company: u32,
    /// Users of one open-source coding agent (its long system prompt).
    pub agent_users: u32,
    /// Households of two to four accounts sharing a device and an IP.
    pub households: u32,
    /// Evaluation pipelines: one account each, step-by-step prompts around the clock.
    pub eval_pipelines: u32,
    /// Requests per day of each evaluation pipeline.
    pub eval_requests_per_day: f64,
    /// Benign users of the third-party router whose IP pool `multi_route` also uses.
    pub router_users: u32,
}

impl Default for Cohorts {
    fn default() -> Self {
        Cohorts {
            mobile_cgnat: 1500,
            cgnat_ips: 4,
            campus: 300,
            company: 200,
            agent_users: 3000,
            households: 500,
            eval_pipelines: 5,
            eval_requests_per_day: 3000.0,
            router_users: 300,
        }
    }
}

/// A scenario: everything [`simulate`] needs. Loadable from TOML or JSON
/// with serde; every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// The seed: the same scenario and seed give the same trace.
    pub seed: u64,
    /// Simulated duration in hours (default 24).
    pub hours: f64,
    /// Start time, seconds since the Unix epoch (default 2026-11-01T00:00:00Z).
    pub start_ts: f64,
    /// Ordinary individual accounts (default 20,000).
    pub individuals: u32,
    /// Median requests per individual per day (log-normal, default 5).
    pub median_requests_per_day: f64,
    /// Shape σ of the per-account volume (default 1.3: a heavy tail).
    pub volume_sigma: f64,
    /// The per-account limit every campaign account stays under (requests per minute).
    pub account_limit_per_minute: u32,
    /// The benign cohorts.
    pub cohorts: Cohorts,
    /// Campaign accounts as a fraction of all benign accounts (default 0.01).
    pub campaign_fraction: f64,
    /// The attacker's evasions.
    pub knobs: Knobs,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            seed: 42,
            hours: 24.0,
            start_ts: 1_793_491_200.0,
            individuals: 20_000,
            median_requests_per_day: 5.0,
            volume_sigma: 1.3,
            account_limit_per_minute: 20,
            cohorts: Cohorts::default(),
            campaign_fraction: 0.01,
            knobs: Knobs::default(),
        }
    }
}

/// A scenario that could not be loaded or makes no sense.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// What was wrong, naming the key (and line, for TOML).
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid scenario: {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// The names [`Scenario::builtin`] knows.
pub const BUILTIN_SCENARIOS: &[&str] = &["default", "adaptive"];

impl Scenario {
    /// A built-in scenario: `default`, or `adaptive` (the attacker paraphrases
    /// every prompt, stops sharing cards and copies the most common TLS
    /// fingerprint).
    pub fn builtin(name: &str) -> Option<Scenario> {
        match name {
            "default" => Some(Scenario::default()),
            "adaptive" => Some(Scenario {
                name: "adaptive".into(),
                knobs: Knobs {
                    paraphrase_rate: 1.0,
                    accounts_per_card: 1,
                    copy_common_tls: true,
                    ..Knobs::default()
                },
                ..Scenario::default()
            }),
            _ => None,
        }
    }

    /// The same scenario with every account count multiplied by `factor`
    /// (each at least 1 where it was non-zero).
    #[must_use]
    pub fn scaled(mut self, factor: f64) -> Scenario {
        let s = |n: u32| {
            if n == 0 {
                0
            } else {
                ((f64::from(n) * factor).round() as u32).max(1)
            }
        };
        self.individuals = s(self.individuals);
        let c = &mut self.cohorts;
        c.mobile_cgnat = s(c.mobile_cgnat);
        c.campus = s(c.campus);
        c.company = s(c.company);
        c.agent_users = s(c.agent_users);
        c.households = s(c.households);
        c.router_users = s(c.router_users);
        c.eval_pipelines = s(c.eval_pipelines);
        self
    }

    /// Parses a scenario from TOML; missing keys take their defaults, an
    /// unknown or mistyped key is an error naming it, and the values are
    /// checked with [`Scenario::validate`].
    ///
    /// ```
    /// use ringfence_lab::sim::Scenario;
    ///
    /// let s = Scenario::from_toml("hours = 6.0\n[knobs]\nparaphrase_rate = 0.5\n").unwrap();
    /// assert_eq!((s.hours, s.knobs.paraphrase_rate, s.seed), (6.0, 0.5, 42));
    /// let e = Scenario::from_toml("hourz = 6.0").unwrap_err();
    /// assert!(e.to_string().contains("hourz"), "{e}");
    /// ```
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError {
            message: e.to_string().trim_end().to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks the values that parse but that the simulator cannot honour:
    /// non-finite or negative rates and durations, shares outside [0, 1],
    /// and more than 10 million accounts.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |key: &str, why: &str| {
            Err(ScenarioError {
                message: format!("`{key}` {why}"),
            })
        };
        let k = &self.knobs;
        let c = &self.cohorts;
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 366.0) {
            return bad("hours", "must be above 0 and at most a year (8784)");
        }
        for (key, v, max) in [
            ("start_ts", self.start_ts, 1e11),
            ("median_requests_per_day", self.median_requests_per_day, 1e6),
            ("volume_sigma", self.volume_sigma, 10.0),
            (
                "cohorts.eval_requests_per_day",
                c.eval_requests_per_day,
                1e6,
            ),
            (
                "knobs.requests_per_account_per_day",
                k.requests_per_account_per_day,
                1e6,
            ),
        ] {
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return bad(key, &format!("must be from 0 to {max}"));
            }
        }
        for (key, v) in [
            ("campaign_fraction", self.campaign_fraction),
            ("knobs.paraphrase_rate", k.paraphrase_rate),
            ("knobs.mix_in", k.mix_in),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, "must be from 0 to 1");
            }
        }
        let accounts = u64::from(self.individuals)
            + u64::from(c.mobile_cgnat)
            + u64::from(c.cgnat_ips)
            + u64::from(c.campus)
            + u64::from(c.company)
            + u64::from(c.agent_users)
            + 3 * u64::from(c.households)
            + u64::from(c.eval_pipelines)
            + u64::from(c.router_users);
        if accounts > 10_000_000 {
            return bad(
                "individuals",
                "and the cohorts must add up to at most 10,000,000 accounts",
            );
        }
        Ok(())
    }

    fn benign_accounts(&self) -> u32 {
        let c = &self.cohorts;
        self.individuals
            + c.mobile_cgnat
            + c.campus
            + c.company
            + c.agent_users
            + 3 * c.households
            + c.eval_pipelines
            + c.router_users
    }

    /// Campaign accounts in each operation (coordinated, multi-route, reseller).
    pub fn campaign_accounts(&self) -> [u32; 3] {
        let total = (f64::from(self.benign_accounts()) * self.campaign_fraction).round() as u32;
        let total = total.max(if self.campaign_fraction > 0.0 { 3 } else { 0 });
        let a = total * 4 / 10;
        let b = total * 3 / 10;
        [a, b, total - a - b]
    }
}
