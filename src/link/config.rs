//! How linking weighs evidence: [`LinkConfig`] and its defaults.

use super::kinds::Kinds;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How linking weighs evidence. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Weight of a value of each kind shared by few accounts (default:
    /// `payment` 1.0, `device` 1.0, `system` 0.6, `ip` 0.5, `template` 0.15
    /// per band, `payment_bin` 0.2, `ip24` 0.2, `ja4` 0.3, `asn` 0.05,
    /// `user_agent` 0.05, `email_domain` 0.2; composites `ja4+ip24` 0.6,
    /// `ja4+payment_bin` 0.6, `ip24+payment_bin` 0.4, `system+user_agent` 0.5).
    pub kind_weights: BTreeMap<String, f64>,
    /// Weight of kinds not listed (default 0.2).
    pub default_weight: f64,
    /// Values shared by at most this many accounts keep their full weight (default 10).
    pub full_weight_until: f64,
    /// Values shared by at least this many accounts carry no weight (default 1,000).
    pub zero_weight_from: f64,
    /// Kinds whose values are naturally shared more widely, with their own
    /// `[full_weight_until, zero_weight_from]` (default: `system` [100,
    /// 3,000]: a company's 200 developers share an internal system prompt,
    /// thousands of an agent's users share its; `ja4` [100, 10,000]: a TLS
    /// fingerprint is shared by everyone on one client library version;
    /// the default composites [100, 10,000], as their lift guards them).
    pub kind_rarity: BTreeMap<String, [f64; 2]>,
    /// A two-part composite weighs in as its parts occur together more
    /// often than chance: its lift `accounts(a+b) × N / (accounts(a) ×
    /// accounts(b))`, N the accounts tracked, gives it no weight at 2 and its
    /// full (IDF-capped) weight at `composite_lift` (default 10). A rare
    /// client library paying with one card range is one operation's
    /// signature; a popular SDK and a big bank's BIN are a coincidence.
    pub composite_lift: f64,
    /// Summed pair evidence needed to link two accounts (default 1.0).
    pub link_threshold: f64,
    /// How long evidence counts, in seconds (default 86,400).
    pub horizon_secs: f64,
    /// How often the clusters are rebuilt from unexpired evidence (default
    /// 600 s; about 10 ms per million table cells).
    pub rebuild_every_secs: f64,
    /// Combinations of kinds that form composite values (default
    /// `ja4+ip24`, `ja4+payment_bin`, `ip24+payment_bin`,
    /// `system+user_agent`). Parts may be any presented kind, `ip24` or
    /// `system`.
    pub composites: Vec<Vec<String>>,
    /// Kinds whose evidence overlaps, by group: a pair counts only the
    /// strongest value of each group (default: `network` = ip, ip24,
    /// ja4+ip24, ip24+payment_bin; `payment` = payment, payment_bin;
    /// `client` = user_agent, system+user_agent). Kinds not listed are their
    /// own group; at most 11 groups (kinds the configuration does not name
    /// share a twelfth).
    pub groups: BTreeMap<String, String>,
    /// The most accounts remembered (default 250,000). Their table is
    /// allocated up front (32 bytes a cell, 25 % headroom); past the limit,
    /// the least useful accounts are forgotten until a quarter of it is
    /// free (as if their evidence had expired): one-request accounts first,
    /// then accounts in no linked pair, the longest unseen first; accounts
    /// in linked pairs, and those whose behaviour made them suspect, last.
    pub max_accounts: usize,
    /// The most fingerprint values remembered (default 625,000, 24 bytes
    /// each); when a value's cells are all taken, the one seen longest ago
    /// is replaced.
    pub max_values: usize,
    /// The most prompt-template band values remembered (default 125,000,
    /// 24 bytes each; a prompt has 16), replaced like values.
    pub max_templates: usize,
    /// The most linked pairs remembered (default 250,000, 24 bytes each);
    /// when a pair's cells are all taken, the one seen longest ago is
    /// replaced.
    pub max_pairs: usize,
    /// The guard's secret seed: every table position and stored hash of
    /// the guard (accounts, values, templates, pairs, crowds, and the
    /// limiter's keys) follows from it, so that nobody who does not know it
    /// can choose keys that collide. Set it to a secret random number
    /// (TOML integers: up to 2^63 − 1), the same on every node of a fleet
    /// and for every snapshot restored or merged.
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        let w = [
            ("payment", 1.0),
            ("device", 1.0),
            ("system", 0.6),
            ("ip", 0.5),
            ("template", 0.15),
            ("payment_bin", 0.2),
            ("ip24", 0.2),
            ("ja4", 0.3),
            ("asn", 0.05),
            ("user_agent", 0.05),
            ("email_domain", 0.2),
            ("ja4+ip24", 0.6),
            ("ja4+payment_bin", 0.6),
            ("ip24+payment_bin", 0.4),
            ("system+user_agent", 0.5),
        ];
        LinkConfig {
            kind_weights: w.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            default_weight: 0.2,
            full_weight_until: 10.0,
            zero_weight_from: 1000.0,
            kind_rarity: [
                ("system", [100.0, 3000.0]),
                ("ja4", [100.0, 10_000.0]),
                ("ja4+ip24", [100.0, 10_000.0]),
                ("ja4+payment_bin", [100.0, 10_000.0]),
                ("ip24+payment_bin", [100.0, 10_000.0]),
                ("system+user_agent", [100.0, 10_000.0]),
            ]
            .iter()
            .map(|(k, r)| (k.to_string(), *r))
            .collect(),
            composite_lift: 10.0,
            link_threshold: 1.0,
            horizon_secs: 86_400.0,
            rebuild_every_secs: 600.0,
            composites: [
                vec!["ja4", "ip24"],
                vec!["ja4", "payment_bin"],
                vec!["ip24", "payment_bin"],
                vec!["system", "user_agent"],
            ]
            .into_iter()
            .map(|c| c.into_iter().map(String::from).collect())
            .collect(),
            groups: [
                ("ip", "network"),
                ("ip24", "network"),
                ("ja4+ip24", "network"),
                ("ip24+payment_bin", "network"),
                ("payment", "payment"),
                ("payment_bin", "payment"),
                ("user_agent", "client"),
                ("system+user_agent", "client"),
            ]
            .iter()
            .map(|(k, g)| (k.to_string(), g.to_string()))
            .collect(),
            max_accounts: 250_000,
            max_values: 625_000,
            max_templates: 125_000,
            max_pairs: 250_000,
            seed: DEFAULT_LINK_SEED,
        }
    }
}

/// The seed when none is configured (public: set your own, see
/// [`LinkConfig::seed`]).
pub const DEFAULT_LINK_SEED: u64 = 0x6c69_6e6b;

impl LinkConfig {
    /// The weight of a value of `kind` shared by `accounts` accounts.
    pub fn weight(&self, kind: &str, accounts: f64) -> f64 {
        let base = self
            .kind_weights
            .get(kind)
            .copied()
            .unwrap_or(self.default_weight);
        let [full, zero] = self.rarity(kind);
        base * idf(accounts, full, zero)
    }

    /// `[full_weight_until, zero_weight_from]` of `kind`.
    pub fn rarity(&self, kind: &str) -> [f64; 2] {
        self.kind_rarity
            .get(kind)
            .copied()
            .unwrap_or([self.full_weight_until, self.zero_weight_from])
    }

    /// Checks the values that parse but make no sense; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.horizon_secs.is_nan() || self.horizon_secs <= 0.0 {
            return Err("`link.horizon_secs` must be positive".into());
        }
        if self.rebuild_every_secs.is_nan() || self.rebuild_every_secs <= 0.0 {
            return Err("`link.rebuild_every_secs` must be positive".into());
        }
        if !(self.full_weight_until >= 1.0 && self.zero_weight_from > self.full_weight_until) {
            return Err(
                "`link.zero_weight_from` must be above `link.full_weight_until` (itself at least 1)"
                    .into(),
            );
        }
        for (kind, [full, zero]) in &self.kind_rarity {
            if !(*full >= 1.0 && zero > full) {
                return Err(format!(
                    "`link.kind_rarity.{kind}`: the second count must be above the first (itself at least 1)"
                ));
            }
        }
        if self.composite_lift.is_nan() || self.composite_lift <= 2.0 {
            return Err("`link.composite_lift` must be above 2".into());
        }
        if !(self.link_threshold > 0.0 && self.link_threshold <= 12.0) {
            return Err("`link.link_threshold` must be in (0, 12]".into());
        }
        let weights = self.kind_weights.iter().map(|(k, w)| (k.as_str(), *w));
        for (kind, w) in weights.chain([("default_weight", self.default_weight)]) {
            if !(0.0..=1.5).contains(&w) {
                return Err(format!(
                    "`link.kind_weights.{kind}` must be between 0 and 1.5 (got {w})"
                ));
            }
        }
        for (key, v) in [
            ("max_accounts", self.max_accounts),
            ("max_values", self.max_values),
            ("max_templates", self.max_templates),
            ("max_pairs", self.max_pairs),
        ] {
            if v == 0 || v > 1 << 28 {
                return Err(format!("`link.{key}` must be between 1 and 2^28"));
            }
        }
        Kinds::new(self).map(|_| ())
    }
}

/// 1 up to `full`, falling linearly in log(n) to 0 at `zero`.
pub(super) fn idf(n: f64, full: f64, zero: f64) -> f64 {
    if n <= full {
        return 1.0;
    }
    if n >= zero {
        return 0.0;
    }
    1.0 - (n / full).ln() / (zero / full).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Linker;

    #[test]
    fn idf_falls_from_full_to_zero() {
        assert_eq!(idf(3.0, 10.0, 1000.0), 1.0);
        assert!((idf(100.0, 10.0, 1000.0) - 0.5).abs() < 1e-9);
        assert_eq!(idf(5000.0, 10.0, 1000.0), 0.0);
    }

    #[test]
    fn bad_configurations_name_the_key() {
        let bad = LinkConfig {
            horizon_secs: -1.0,
            ..LinkConfig::default()
        };
        assert!(Linker::try_new(bad)
            .err()
            .unwrap()
            .contains("link.horizon_secs"));
        let mut groups = LinkConfig::default();
        for i in 0..20 {
            groups.kind_weights.insert(format!("k{i}"), 0.1);
        }
        assert!(Linker::try_new(groups)
            .err()
            .unwrap()
            .contains("link.groups"));
    }
}
