//! A deterministic simulator of LLM API traffic with a distillation
//! campaign hidden in it: the data ringfence is tuned and evaluated on.
//!
//! [`simulate_stream`] turns a [`Scenario`] into a time-ordered stream of
//! [`Record`]s, one per request, each labelled `benign` or
//! `campaign:<operation>` with its `cohort` (labels are for evaluation only:
//! the guard never reads them); it holds one small state per account, so a
//! trace of tens of millions of requests streams in bounded memory.
//! [`simulate`] collects it, for small scenarios. The same scenario and seed
//! always give the same trace, on every platform.
//!
//! **Benign traffic**: individuals with log-normal daily volume and daily
//! cycles in several time zones, writing varied prompts; and cohorts that each
//! look suspicious on one signal: mobile CGNAT addresses shared by hundreds or
//! thousands of accounts, a campus NAT (with homework asking for step-by-step
//! answers), a company whose accounts share one card, egress IP, email domain
//! and system prompt, users of one coding agent sharing its long system
//! prompt and user agent, households sharing a device and an IP, evaluation
//! organisations sending a public benchmark's chain-of-thought questions
//! around the clock near their per-account limit, users of a third-party
//! router, a SaaS product whose customers' jobs fire at the top of every
//! hour from its few servers, a news event that makes thousands of people
//! ask the same question within minutes, batch-API customers sending bulk
//! jobs of uniform prompts, and the common SDKs' TLS fingerprints, user
//! agents, card BINs and email domains that everybody shares.
//!
//! **The campaign** (1 % of accounts by default, or sized per operation with
//! [`Scenario::operations`], times [`Scenario::campaign_scale`]), in three
//! operations: `coordinated` (prepaid cards shared across accounts,
//! synchronised bursts, datacenter IPs, chain-of-thought templates),
//! `multi_route` (a third-party router's IP pool, education accounts, a
//! shared system prompt, office hours in its own time zone, agentic coding
//! templates) and `reseller` (residential proxy IPs rarely reused, a device
//! per account, one HTTP client's TLS fingerprint, virtual cards from one
//! BIN, genuine customer traffic mixed in, a pivot to a newly released
//! model). Every campaign account stays under the per-account limit.
//! [`Knobs`] turn the attacker's evasions up, down to sharing no
//! infrastructure at all ([`Knobs::shared_infrastructure`]).
//!
//! **A second provider** ([`second_provider`]): the same operator's
//! campaign at another provider, for threat-intelligence sharing: the
//! scenario under another seed (its own benign people and account names),
//! with a share of its campaign accounts reusing the cards and devices the
//! first provider's campaign used.
//!
//! ```
//! use ringfence_lab::sim::{simulate, simulate_stream, Scenario};
//!
//! let scenario = Scenario::builtin("default").unwrap().scaled(0.02);
//! let trace = simulate(&scenario);
//! assert!(trace.windows(2).all(|w| w[0].ts <= w[1].ts));
//! assert!(trace.iter().any(|r| r.label == "campaign:coordinated"));
//! assert!(simulate_stream(&scenario).eq(trace)); // deterministic
//! ```

mod providers;
mod rng;
pub mod text;
mod world;

pub use providers::{
    campaign_stock, second_provider, Card, SecondProvider, SecondProviderStream, Stock,
};
pub use rng::Rng;
pub use world::{simulate, simulate_stream, TraceStream};

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

/// The attacker's evasions; [`Scenario::builtin`]`("adaptive")` and
/// `("seed-adaptive")` turn them up.
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
    /// Whether the operations share infrastructure (default true): prepaid
    /// cards and a datacenter pool (`coordinated`), a router's IP pool,
    /// education domains and one system prompt (`multi_route`), a proxy
    /// pool, one card BIN and one HTTP client (`reseller`). When false,
    /// every campaign account has its own card (BIN drawn like everyone's),
    /// its own device, its own residential or mobile address (shared with
    /// other accounts only by chance), an email domain drawn like everyone's,
    /// the most common SDK's TLS fingerprint and user agent, and no system
    /// prompt (`multi_route`: its own paraphrase of one). Behaviour stays:
    /// volume, timing, and prompts that ask for long reasoned answers.
    pub shared_infrastructure: bool,
    /// Share of the reseller's traffic that moves to the new model once
    /// its ramp is over (default 1: all of it).
    pub pivot_share: f64,
    /// Hours over which the reseller ramps up to `pivot_share` after the
    /// release (default 0: it switches at once).
    pub pivot_ramp_hours: f64,
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
            shared_infrastructure: true,
            pivot_share: 1.0,
            pivot_ramp_hours: 0.0,
        }
    }
}

/// Sizes of the benign cohorts (accounts, at scale 1), and the shapes of
/// the ones that look synchronised or uniform on some signal. Every cohort
/// is honest: labelled `benign`, with its own `cohort` name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cohorts {
    /// Mobile users behind a carrier's CGNAT.
    pub mobile_cgnat: u32,
    /// CGNAT addresses they share (hundreds to thousands of accounts each).
    pub cgnat_ips: u32,
    /// Students behind the campus NAT, with the university's email domain.
    pub campus: u32,
    /// The campus NAT's egress addresses (default 1).
    pub campus_ips: u32,
    /// Share of the students' prompts that are homework asking for
    /// step-by-step answers (default 0.2).
    pub campus_homework: f64,
    /// Developers of one company: one card, one egress IP, one domain, one
    /// system prompt, office hours.
    pub company: u32,
    /// Users of one coding agent (its long system prompt and its user agent).
    pub agent_users: u32,
    /// Households of three accounts sharing a device and an IP.
    pub households: u32,
    /// Evaluation organisations: organisation `i` has `1 + i % 3` accounts
    /// on its own cloud addresses, sending chain-of-thought questions from a
    /// public benchmark (so questions repeat across runs) around the clock,
    /// under the per-account limit.
    pub eval_pipelines: u32,
    /// Requests per day of each evaluation account (each draws its own rate
    /// from 0.7 to 1.3 times this; 20,000 is about 14 a minute).
    pub eval_requests_per_day: f64,
    /// Benign users of the third-party router whose IP pool `multi_route` also uses.
    pub router_users: u32,
    /// Customer accounts of a SaaS product whose scheduled jobs fire at the
    /// top of every hour, from the product's small server pool, with its
    /// user agent, its system prompt and one job template.
    pub saas_customers: u32,
    /// The SaaS product's server addresses (default 6).
    pub saas_ips: u32,
    /// Ordinary people who each ask the same question (a few in other
    /// words) within minutes of a news event, besides their usual traffic.
    pub news_users: u32,
    /// Hours from the start when the news breaks (default: five eighths of
    /// the way through).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub news_hour: Option<f64>,
    /// Minutes over which the news question arrives (default 5).
    pub news_window_minutes: f64,
    /// Batch-API customers: accounts submitting bulk jobs of uniform
    /// extraction or classification prompts from cloud addresses.
    pub batch_accounts: u32,
    /// Bulk jobs per batch account per day (default 1.5).
    pub batch_jobs_per_day: f64,
    /// Prompts per bulk job, on average (each from 0.4 to 1.6 times this;
    /// default 2,500).
    pub batch_job_requests: u32,
    /// The pace of a bulk job, in requests per minute (default 18: a client
    /// keeping under the per-account limit; any pace is capped by it).
    pub batch_requests_per_minute: f64,
}

impl Default for Cohorts {
    fn default() -> Self {
        Cohorts {
            mobile_cgnat: 1500,
            cgnat_ips: 4,
            campus: 300,
            campus_ips: 1,
            campus_homework: 0.2,
            company: 200,
            agent_users: 3000,
            households: 500,
            eval_pipelines: 2,
            eval_requests_per_day: 20_000.0,
            router_users: 300,
            saas_customers: 60,
            saas_ips: 6,
            news_users: 1000,
            news_hour: None,
            news_window_minutes: 5.0,
            batch_accounts: 3,
            batch_jobs_per_day: 1.5,
            batch_job_requests: 2500,
            batch_requests_per_minute: 18.0,
        }
    }
}

impl Cohorts {
    /// Accounts of the evaluation organisations (`1 + i % 3` each).
    pub fn eval_accounts(&self) -> u32 {
        let n = u64::from(self.eval_pipelines);
        // 1 + 2 + 3 per full cycle of three, then the remainder's.
        let accounts = 6 * (n / 3) + [0, 1, 3][(n % 3) as usize];
        u32::try_from(accounts).unwrap_or(u32::MAX)
    }
}

/// Campaign accounts per operation, when given explicitly (instead of as
/// `campaign_fraction` of the benign accounts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Operations {
    /// Accounts of the `coordinated` operation.
    pub coordinated: u32,
    /// Accounts of the `multi_route` operation.
    pub multi_route: u32,
    /// Accounts of the `reseller` operation (the residential-proxy network).
    pub reseller: u32,
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
    /// The per-account limit every campaign account (and every evaluation
    /// and batch account) stays under (requests per minute).
    pub account_limit_per_minute: u32,
    /// The benign cohorts.
    pub cohorts: Cohorts,
    /// Campaign accounts as a fraction of all benign accounts (default
    /// 0.01), unless `operations` gives them.
    pub campaign_fraction: f64,
    /// Campaign accounts per operation; when set, `campaign_fraction` is
    /// not used (default: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Operations>,
    /// Multiplies the campaign's accounts, and nothing else (default 1).
    pub campaign_scale: f64,
    /// Hours from the start when the new model (`model-b`) is released
    /// (default: half-way). The reseller pivots to it, some benign traffic
    /// and the evaluation pipelines try it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_hour: Option<f64>,
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
            operations: None,
            campaign_scale: 1.0,
            release_hour: None,
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
pub const BUILTIN_SCENARIOS: &[&str] = &["default", "adaptive", "seed", "seed-adaptive"];

impl Scenario {
    /// A built-in scenario (see [`BUILTIN_SCENARIOS`]):
    ///
    /// - `default`: one day, about 27,000 benign accounts and 1 % campaign
    ///   accounts in three operations;
    /// - `adaptive`: the same, with the attacker paraphrasing every prompt,
    ///   sharing no cards and copying the most common TLS fingerprint;
    /// - `seed`: sized like the public operations: 72 hours, over 500,000
    ///   benign accounts (a 5,000-developer company, 100,000 users of one
    ///   agent, carrier NATs of 10,000 accounts per address, a university of
    ///   20,000, evaluation pipelines, a SaaS product's hourly jobs, a news
    ///   event, batch-API customers) and 24,000 campaign accounts, 12,000 of
    ///   them in the residential-proxy network, which moves half of its
    ///   traffic to the model released at hour 36 over the following day;
    /// - `seed-adaptive`: `seed` with an attacker that shares no
    ///   infrastructure ([`Knobs::shared_infrastructure`]) and paraphrases
    ///   every prompt.
    pub fn builtin(name: &str) -> Option<Scenario> {
        let adaptive = |s: Scenario, name: &str| Scenario {
            name: name.into(),
            knobs: Knobs {
                paraphrase_rate: 1.0,
                accounts_per_card: 1,
                copy_common_tls: true,
                ..s.knobs.clone()
            },
            ..s
        };
        match name {
            "default" => Some(Scenario::default()),
            "adaptive" => Some(adaptive(Scenario::default(), "adaptive")),
            "seed" => Some(Scenario::seed()),
            "seed-adaptive" => {
                let mut s = adaptive(Scenario::seed(), "seed-adaptive");
                s.knobs.shared_infrastructure = false;
                Some(s)
            }
            _ => None,
        }
    }

    /// The `seed` scenario (see [`Scenario::builtin`]).
    fn seed() -> Scenario {
        Scenario {
            name: "seed".into(),
            hours: 72.0,
            individuals: 275_000,
            cohorts: Cohorts {
                mobile_cgnat: 30_000,
                cgnat_ips: 3,
                campus: 20_000,
                campus_ips: 4,
                company: 5_000,
                agent_users: 100_000,
                households: 5_000,
                eval_pipelines: 8,
                router_users: 3_000,
                saas_customers: 2_000,
                news_users: 50_000,
                news_hour: Some(44.0),
                batch_accounts: 36,
                ..Cohorts::default()
            },
            operations: Some(Operations {
                coordinated: 6_000,
                multi_route: 6_000,
                reseller: 12_000,
            }),
            release_hour: Some(36.0),
            knobs: Knobs {
                proxy_pool: 2_000_000,
                pivot_share: 0.5,
                pivot_ramp_hours: 24.0,
                ..Knobs::default()
            },
            ..Scenario::default()
        }
    }

    /// The same scenario with every account count multiplied by `factor`
    /// (each at least 1 where it was non-zero), the campaign's included;
    /// address pools keep their size.
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
        c.saas_customers = s(c.saas_customers);
        c.news_users = s(c.news_users);
        c.batch_accounts = s(c.batch_accounts);
        if let Some(o) = &mut self.operations {
            o.coordinated = s(o.coordinated);
            o.multi_route = s(o.multi_route);
            o.reseller = s(o.reseller);
        }
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
    /// let s = Scenario::from_toml("[operations]\nreseller = 500\n").unwrap();
    /// assert_eq!(s.campaign_accounts(), [0, 0, 500]);
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
    /// times outside the trace, and more than 10 million accounts.
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
            ("campaign_scale", self.campaign_scale, 1000.0),
            (
                "cohorts.eval_requests_per_day",
                c.eval_requests_per_day,
                1e6,
            ),
            ("cohorts.batch_jobs_per_day", c.batch_jobs_per_day, 1000.0),
            (
                "cohorts.batch_requests_per_minute",
                c.batch_requests_per_minute,
                1e4,
            ),
            ("cohorts.news_window_minutes", c.news_window_minutes, 1440.0),
            (
                "knobs.requests_per_account_per_day",
                k.requests_per_account_per_day,
                1e6,
            ),
            ("knobs.pivot_ramp_hours", k.pivot_ramp_hours, 24.0 * 366.0),
        ] {
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return bad(key, &format!("must be from 0 to {max}"));
            }
        }
        for (key, v) in [
            ("campaign_fraction", self.campaign_fraction),
            ("cohorts.campus_homework", c.campus_homework),
            ("knobs.paraphrase_rate", k.paraphrase_rate),
            ("knobs.mix_in", k.mix_in),
            ("knobs.pivot_share", k.pivot_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, "must be from 0 to 1");
            }
        }
        for (key, v) in [
            ("release_hour", self.release_hour),
            ("cohorts.news_hour", c.news_hour),
        ] {
            if let Some(h) = v {
                if !(h.is_finite() && (0.0..self.hours).contains(&h)) {
                    return bad(key, "must be from 0 to below `hours`");
                }
            }
        }
        if c.batch_job_requests > 1_000_000 {
            return bad("cohorts.batch_job_requests", "must be at most 1000000");
        }
        let accounts = u64::from(self.individuals)
            + u64::from(c.mobile_cgnat)
            + u64::from(c.cgnat_ips)
            + u64::from(c.campus)
            + u64::from(c.campus_ips)
            + u64::from(c.company)
            + u64::from(c.agent_users)
            + 3 * u64::from(c.households)
            + u64::from(c.eval_accounts())
            + u64::from(c.router_users)
            + u64::from(c.saas_customers)
            + u64::from(c.saas_ips)
            + u64::from(c.news_users)
            + u64::from(c.batch_accounts);
        let campaign = match &self.operations {
            Some(o) => u64::from(o.coordinated) + u64::from(o.multi_route) + u64::from(o.reseller),
            None => accounts,
        };
        if accounts + (campaign as f64 * self.campaign_scale) as u64 > 10_000_000 {
            return bad(
                "individuals",
                "and the cohorts and the campaign must add up to at most 10,000,000 accounts",
            );
        }
        Ok(())
    }

    /// Benign accounts, counted from the sizes (no simulation).
    pub fn benign_accounts(&self) -> u32 {
        let c = &self.cohorts;
        self.individuals
            + c.mobile_cgnat
            + c.campus
            + c.company
            + c.agent_users
            + 3 * c.households
            + c.eval_accounts()
            + c.router_users
            + c.saas_customers
            + c.news_users
            + c.batch_accounts
    }

    /// Campaign accounts in each operation (coordinated, multi-route,
    /// reseller), counted from the sizes (no simulation): `operations` if
    /// set, else `campaign_fraction` of the benign accounts (at least one
    /// per operation), times `campaign_scale`.
    ///
    /// ```
    /// use ringfence_lab::sim::Scenario;
    ///
    /// let seed = Scenario::builtin("seed").unwrap();
    /// assert_eq!(seed.campaign_accounts(), [6_000, 6_000, 12_000]);
    /// let more = Scenario { campaign_scale: 2.0, ..seed.clone() };
    /// assert_eq!(more.campaign_accounts(), [12_000, 12_000, 24_000]);
    /// assert_eq!(more.benign_accounts(), seed.benign_accounts());
    /// ```
    pub fn campaign_accounts(&self) -> [u32; 3] {
        let base = match &self.operations {
            Some(o) => [o.coordinated, o.multi_route, o.reseller],
            None => {
                let total =
                    (f64::from(self.benign_accounts()) * self.campaign_fraction).round() as u32;
                let total = total.max(if self.campaign_fraction > 0.0 { 3 } else { 0 });
                let a = total * 4 / 10;
                let b = total * 3 / 10;
                [a, b, total - a - b]
            }
        };
        if self.campaign_scale == 1.0 {
            return base;
        }
        base.map(|n| (f64::from(n) * self.campaign_scale).round() as u32)
    }

    /// Every account the scenario has: benign and campaign.
    pub fn total_accounts(&self) -> u64 {
        u64::from(self.benign_accounts())
            + self
                .campaign_accounts()
                .iter()
                .map(|n| u64::from(*n))
                .sum::<u64>()
    }
}
