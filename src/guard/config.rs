//! The guard's configuration: policy thresholds, quotas and table sizes.

use crate::crowd::CrowdConfig;
use crate::intel::IntelConfig;
use crate::link::LinkConfig;
use crate::score::ScoreConfig;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The most accounts a guard can be sized for ([`GuardConfig::for_accounts`]
/// clamps to it): 2^26, about 16 GB of tables.
pub const MAX_ACCOUNTS: usize = 1 << 26;

/// Policy and model configuration. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Requests per minute per account (default 20, burst 20).
    pub account_requests_per_minute: u64,
    /// Tokens (input + estimated output) per minute per account, reserved
    /// before the request and settled with the actual output (default
    /// 200,000; 0 turns token limits off).
    pub account_tokens_per_minute: u64,
    /// Requests per minute a suspicious cluster shares (default 20: one account's worth).
    pub cluster_requests_per_minute: u64,
    /// Score at which a cluster shares one budget (default 0.4).
    pub share_at: f64,
    /// Score at which a cluster's requests are denied (default 0.5).
    pub deny_at: f64,
    /// Smallest cluster that cluster policy applies to (default 3).
    pub min_cluster_size: u32,
    /// Accounts never given cluster penalties (verified organisations).
    pub allow_list: BTreeSet<String>,
    /// Report refusals without enforcing them.
    pub shadow: bool,
    /// Keys the limiter holds (default 500,000: an account's request and
    /// token quotas are two keys, for `link.max_accounts` = 250,000; see
    /// [`GuardConfig::for_accounts`]).
    pub limiter_capacity: usize,
    /// Requests per minute per fingerprint value, by kind (default none;
    /// e.g. `ip = 600` limits every address to 600 requests a minute).
    pub fingerprint_requests_per_minute: BTreeMap<String, u64>,
    /// Linking.
    pub link: LinkConfig,
    /// Scoring.
    pub score: ScoreConfig,
    /// Accounts' own behaviour and the crowds behind shared values.
    pub crowd: CrowdConfig,
    /// When a request's evidence is recorded: before its verdict (the
    /// default), after it, or on background threads.
    pub observe: ObserveConfig,
    /// Threat intelligence shared with other providers (`[intel]`; off
    /// until a consortium key is given).
    pub intel: IntelConfig,
    /// The `[fleet]` table, kept as written for `ringfence-fleet` (which
    /// validates it); a guard on its own ignores it.
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub fleet: toml::Table,
}

/// When a request's evidence (linking, scoring, crowds) is recorded,
/// relative to its verdict. See [`ObserveMode`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserveConfig {
    /// The mode (default `inline`).
    pub mode: ObserveMode,
    /// Threads recording evidence in `background` mode (default 1; at most 64).
    pub threads: usize,
    /// Requests waiting to be recorded in `background` mode, at most
    /// (default 4,096; 64 to 2^24). A request that finds the queue full
    /// is recorded on its own thread, after its verdict: nothing is dropped.
    pub queue: usize,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            mode: ObserveMode::Inline,
            threads: 1,
            queue: 4096,
        }
    }
}

/// When a request's evidence is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserveMode {
    /// Link, score and judge the request's crowds, then decide on what that
    /// found: a new account sharing a flagged cluster's card is refused at
    /// its first request. The whole cost (a few µs at production shape,
    /// more with a long prompt) is on the request's thread.
    Inline,
    /// Decide on the account's standing (its cluster's score and its crowd's
    /// as they are now, and its behaviour as of its last request), then
    /// record the request on the same thread. Deterministic: what
    /// `background` decides, without its lag, for replaying a trace.
    After,
    /// Decide on the account's standing, and hand the request to the
    /// observer threads to record. The request's thread pays for the
    /// standing, the limits and a copy of the request; each request's
    /// evidence counts from its account's next request (and for the other
    /// accounts once recorded, microseconds later when the observers keep up).
    Background,
}

impl Default for GuardConfig {
    /// The defaults, sized for 250,000 tracked accounts
    /// ([`GuardConfig::for_accounts`]): about 60 MB, allocated up front.
    fn default() -> Self {
        GuardConfig::for_accounts(250_000)
    }
}

impl GuardConfig {
    /// The default configuration with every table sized for `accounts`
    /// tracked accounts: `link.max_accounts` = n, `link.max_values` = 2.5n,
    /// `link.max_templates` = n/2, `link.max_pairs` = n, `limiter_capacity` =
    /// 2n (an account's request and token quotas), `score.max_clusters` =
    /// n/32 (at least 64), `crowd.max_crowds` = n/8 (at least 256).
    /// Memory is fixed at construction, about 330 bytes per account
    /// (measured by `lab/tests/guard_memory.rs`).
    ///
    /// ```
    /// use ringfence::guard::GuardConfig;
    /// let c = GuardConfig::for_accounts(1_000_000);
    /// assert_eq!(c.link.max_values, 2_500_000);
    /// assert_eq!(c.limiter_capacity, 2_000_000);
    /// ```
    pub fn for_accounts(accounts: usize) -> GuardConfig {
        let n = accounts.clamp(1, MAX_ACCOUNTS);
        GuardConfig {
            limiter_capacity: 2 * n,
            link: LinkConfig {
                max_accounts: n,
                max_values: 2 * n + n / 2,
                max_templates: n / 2,
                max_pairs: n,
                ..LinkConfig::default()
            },
            score: ScoreConfig {
                max_clusters: (n / 32).max(64),
                ..ScoreConfig::default()
            },
            crowd: CrowdConfig {
                max_crowds: (n / 8).clamp(256, 1 << 20),
                ..CrowdConfig::default()
            },
            ..GuardConfig::base()
        }
    }

    fn base() -> Self {
        GuardConfig {
            account_requests_per_minute: 20,
            account_tokens_per_minute: 200_000,
            cluster_requests_per_minute: 20,
            share_at: 0.4,
            deny_at: 0.5,
            min_cluster_size: 3,
            allow_list: BTreeSet::new(),
            shadow: false,
            limiter_capacity: 500_000,
            fingerprint_requests_per_minute: BTreeMap::new(),
            link: LinkConfig::default(),
            score: ScoreConfig::default(),
            crowd: CrowdConfig::default(),
            observe: ObserveConfig::default(),
            intel: IntelConfig::default(),
            fleet: toml::Table::new(),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What was wrong, naming the key (and line, for TOML).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ringfence configuration: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl GuardConfig {
    /// Parses a TOML configuration; missing keys take their defaults,
    /// unknown or mistyped keys are an error naming the key and line.
    ///
    /// ```
    /// use ringfence::guard::GuardConfig;
    ///
    /// let c = GuardConfig::from_toml("deny_at = 0.9\n[link]\nhorizon_secs = 3600.0\n").unwrap();
    /// assert_eq!(c.deny_at, 0.9);
    /// assert_eq!(c.link.horizon_secs, 3600.0);
    /// assert_eq!(c.share_at, 0.4); // a default
    /// let err = GuardConfig::from_toml("deny_att = 0.9").unwrap_err();
    /// assert!(err.to_string().contains("deny_att"), "{err}");
    /// ```
    pub fn from_toml(text: &str) -> Result<GuardConfig, ConfigError> {
        let config: GuardConfig = toml::from_str(text).map_err(|e| ConfigError {
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML configuration as [`GuardConfig::from_toml`] does,
    /// except that the table sizes the text does not set are those of
    /// [`GuardConfig::for_accounts`]`(accounts)` instead of the defaults:
    /// `limiter_capacity`, `link.max_accounts`, `link.max_values`,
    /// `link.max_templates`, `link.max_pairs`, `score.max_clusters` and
    /// `crowd.max_crowds`.
    ///
    /// ```
    /// use ringfence::guard::GuardConfig;
    ///
    /// let c = GuardConfig::from_toml_sized("deny_at = 0.9\n[link]\nmax_pairs = 1000\n", 500_000).unwrap();
    /// assert_eq!(c.deny_at, 0.9);
    /// assert_eq!(c.link.max_accounts, 500_000); // sized, not the default
    /// assert_eq!(c.link.max_pairs, 1000); // as the text says
    /// ```
    pub fn from_toml_sized(text: &str, accounts: usize) -> Result<GuardConfig, ConfigError> {
        let mut config = Self::from_toml(text)?;
        let set: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            message: e.to_string().trim_end().to_string(),
        })?;
        let has = |table: Option<&str>, key: &str| match table {
            None => set.contains_key(key),
            Some(t) => set
                .get(t)
                .and_then(toml::Value::as_table)
                .is_some_and(|t| t.contains_key(key)),
        };
        let sized = Self::for_accounts(accounts);
        if !has(None, "limiter_capacity") {
            config.limiter_capacity = sized.limiter_capacity;
        }
        for (key, to, from) in [
            (
                "max_accounts",
                &mut config.link.max_accounts,
                sized.link.max_accounts,
            ),
            (
                "max_values",
                &mut config.link.max_values,
                sized.link.max_values,
            ),
            (
                "max_templates",
                &mut config.link.max_templates,
                sized.link.max_templates,
            ),
            (
                "max_pairs",
                &mut config.link.max_pairs,
                sized.link.max_pairs,
            ),
        ] {
            if !has(Some("link"), key) {
                *to = from;
            }
        }
        if !has(Some("score"), "max_clusters") {
            config.score.max_clusters = sized.score.max_clusters;
        }
        if !has(Some("crowd"), "max_crowds") {
            config.crowd.max_crowds = sized.crowd.max_crowds;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| {
            Err(ConfigError {
                message: format!("`{key}` {why}"),
            })
        };
        for (key, v) in [("share_at", self.share_at), ("deny_at", self.deny_at)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, "must be between 0 and 1");
            }
        }
        if self.deny_at < self.share_at {
            return bad("deny_at", "must not be below `share_at`");
        }
        if self.account_requests_per_minute == 0 {
            return bad("account_requests_per_minute", "must be at least 1");
        }
        if self.cluster_requests_per_minute == 0 {
            return bad("cluster_requests_per_minute", "must be at least 1");
        }
        if self.limiter_capacity == 0 || self.limiter_capacity > 1 << 30 {
            return bad("limiter_capacity", "must be between 1 and 2^30");
        }
        for (kind, &n) in &self.fingerprint_requests_per_minute {
            if n == 0 {
                return bad(
                    &format!("fingerprint_requests_per_minute.{kind}"),
                    "must be at least 1",
                );
            }
        }
        if !(1..=64).contains(&self.observe.threads) {
            return bad("observe.threads", "must be between 1 and 64");
        }
        if !(64..=1 << 24).contains(&self.observe.queue) {
            return bad("observe.queue", "must be between 64 and 2^24");
        }
        self.link
            .validate()
            .and_then(|()| self.score.validate())
            .and_then(|()| self.crowd.validate())
            .and_then(|()| self.intel.validate())
            .map_err(|message| ConfigError { message })
    }
}
