//! Threat intelligence shared between providers, without customer data.
//!
//! An operation caught at one provider opens accounts at the next with the
//! same cards, devices, client builds, proxy ranges and prompt templates.
//! With a [`ConsortiumKey`] configured (`[intel] key_file`), a guard:
//!
//! - **remembers, for export**, each value that two accounts or more
//!   present: its keyed token (`HMAC(K, kind ‖ value)`, computed once, when
//!   it becomes shared), a uniform sample of the accounts presenting it (the
//!   16 with the smallest hashes: bottom-k sampling), how many do, and when.
//!   [`Guard::export_indicators`](crate::guard::Guard::export_indicators)
//!   then judges each sampled account by its cluster's standing *now*:
//!   a value is exported only when at least `min_campaign_accounts` accounts
//!   of flagged clusters present it and the others' share is at most
//!   `max_benign_share`. Values of honest crowds (a campus NAT, a company
//!   card, a popular agent) never leave.
//! - **recognises imported indicators** from an operation's first request:
//!   each value a request presents is hashed under the key once (a
//!   direct-mapped cache remembers which were checked), and an account
//!   presenting an imported token is marked until the indicator expires.
//!   A marked account's requests carry `shared_indicator`, are held to
//!   `account_requests_per_minute` each, and share one budget per imported
//!   campaign: an indicator alone throttles, and never denies unless
//!   `deny_alone_at` says so; with the account's own cluster flagged as
//!   well, it denies.
//!
//! Prompt templates are shared as their MinHash bands: with a key
//! configured, prompt signatures are computed under a seed derived from it
//! (band keys and table positions still follow the guard's own secret
//! seed), and a band's token hashes its index and its four signature values.
//!
//! The STIX 2.1 format of bundles is the `ringfence-intel` crate's; this
//! module deals in tokens, accounts and weights.

pub(crate) mod export;
mod indicators;
mod key;
pub(crate) mod snapshot;
mod store;

pub use export::{ExportOptions, ExportedIndicator};
pub use key::{hex, unhex, ConsortiumKey, Pieces, MIN_KEY_BYTES};
pub use store::{ImportIndicator, ImportReport, IndicatorMatch, IntelStats, MatchedIndicator};
pub(crate) use store::{Intel, Presented};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What the guard does with shared intelligence (`[intel]`). Nothing, until
/// a key is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntelConfig {
    /// A file holding the consortium key (at least 16 bytes; trailing
    /// whitespace is ignored). Read when the guard is built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// The key itself, for programs that hold it (never serialized).
    #[serde(skip)]
    pub key: Option<ConsortiumKey>,
    /// Campaign accounts that must present a value before it is exported
    /// (default 3).
    pub min_campaign_accounts: u32,
    /// The largest share of a value's accounts outside flagged clusters
    /// with which it is still exported (default 0.05: in a sample of 16, none).
    pub max_benign_share: f64,
    /// Shared values remembered for export, at most (default: a tenth of
    /// `link.max_values`, at least 1,024). About 200 bytes each.
    pub max_values: usize,
    /// Trust in each producer, by its STIX identity id (0 to 1): an
    /// indicator weighs its confidence (0-100, as a fraction) times this.
    pub trust: BTreeMap<String, f64>,
    /// Trust in producers not listed in `trust` (default 0: ignored).
    pub default_trust: f64,
    /// Imported indicators weighing less are ignored (default 0.2: prompt
    /// template bands, whose confidence is at most their link weight of
    /// 0.15, are left out unless this is lowered).
    pub min_weight: f64,
    /// Kinds whose imported indicators are ignored, and composites with
    /// one of them as a part (default `ip` and `ip24`: addresses are
    /// reassigned, and a residential proxy's exit is some honest
    /// household's address the next day).
    pub ignore_kinds: std::collections::BTreeSet<String>,
    /// Requests per minute shared by the accounts matching one imported
    /// campaign (default 0: `cluster_requests_per_minute`), scaled by the
    /// matched indicator's weight: `× (1 − weight)`, and never below
    /// `account_requests_per_minute`. The stronger the evidence that the
    /// accounts are one operation, the tighter the budget they share.
    pub shared_requests_per_minute: u64,
    /// Requests per minute each account matching an imported indicator
    /// may send (default 2, in bursts of 2): a throttle that serves an
    /// honest account caught by mistake slowly, and keeps an operation's
    /// accounts from running at their own limits.
    pub account_requests_per_minute: u64,
    /// An indicator of at least this weight denies on its own (default
    /// unset: an indicator alone only throttles; a deny needs the account's
    /// own cluster flagged too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_alone_at: Option<f64>,
    /// Imported indicators kept, at most (default 65,535).
    pub max_imports: usize,
}

impl Default for IntelConfig {
    fn default() -> Self {
        IntelConfig {
            key_file: None,
            key: None,
            min_campaign_accounts: 3,
            max_benign_share: 0.05,
            max_values: 0,
            trust: BTreeMap::new(),
            default_trust: 0.0,
            min_weight: 0.2,
            ignore_kinds: ["ip", "ip24"].into_iter().map(String::from).collect(),
            shared_requests_per_minute: 0,
            account_requests_per_minute: 2,
            deny_alone_at: None,
            max_imports: store::MAX_IMPORTS,
        }
    }
}

impl IntelConfig {
    /// Checks every field, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("intel.{name} must be between 0 and 1 (got {v})"))
            }
        };
        unit("max_benign_share", self.max_benign_share)?;
        unit("default_trust", self.default_trust)?;
        unit("min_weight", self.min_weight)?;
        if let Some(d) = self.deny_alone_at {
            unit("deny_alone_at", d)?;
        }
        for (producer, &t) in &self.trust {
            unit(&format!("trust.\"{producer}\""), t)?;
        }
        if self.account_requests_per_minute == 0 {
            return Err("intel.account_requests_per_minute must be at least 1".into());
        }
        if self.min_campaign_accounts == 0 {
            return Err("intel.min_campaign_accounts must be at least 1".into());
        }
        if self.max_imports == 0 || self.max_imports > store::MAX_IMPORTS {
            return Err(format!(
                "intel.max_imports must be 1 to {} (got {})",
                store::MAX_IMPORTS,
                self.max_imports
            ));
        }
        Ok(())
    }

    /// The key: the one given, or the one in `key_file`, or none.
    pub fn load_key(&self) -> Result<Option<ConsortiumKey>, IntelError> {
        match (&self.key, &self.key_file) {
            (Some(k), _) => Ok(Some(k.clone())),
            (None, Some(path)) => ConsortiumKey::from_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Whether imported indicators of `kind` are ignored (`ignore_kinds`).
    pub fn ignores(&self, kind: &str) -> bool {
        kind.split('+').any(|part| self.ignore_kinds.contains(part))
    }

    /// The trust in a producer.
    pub fn trust_in(&self, producer: &str) -> f64 {
        self.trust
            .get(producer)
            .copied()
            .unwrap_or(self.default_trust)
    }
}

/// The budget of an imported campaign for each indicator weight in tenths
/// (see [`IntelConfig::shared_requests_per_minute`]).
pub(crate) fn campaign_quotas(c: &IntelConfig, cluster_rpm: u64) -> [crate::limit::Quota; 11] {
    let base = match c.shared_requests_per_minute {
        0 => cluster_rpm,
        n => n,
    };
    std::array::from_fn(|tenths| {
        let scaled = (base as f64 * (1.0 - tenths as f64 / 10.0)).round() as u64;
        crate::limit::Quota::per_minute(scaled.max(c.account_requests_per_minute).max(1))
    })
}

/// Intelligence that could not be exported or imported: what and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntelError {
    /// What was wrong.
    pub message: String,
}

impl IntelError {
    pub(crate) fn new(message: impl Into<String>) -> IntelError {
        IntelError {
            message: message.into(),
        }
    }
}

impl fmt::Display for IntelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IntelError {}
