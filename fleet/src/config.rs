//! The `[fleet]` table of the guard's TOML: [`FleetConfig`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a node does with a fleet-wide quota when the store cannot answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Serve: the node's own limits still hold (each node grants up to the
    /// whole quota, so the fleet up to `nodes` times it), and what it
    /// admits is debited from the fleet's quota when the store returns.
    #[default]
    Open,
    /// Refuse what the node's own share (`1/nodes` of the quota) does not
    /// cover, until the store answers again.
    Closed,
}

/// A node's place in a fleet. Every field has a default; in the guard's
/// TOML it is the `[fleet]` table:
///
/// ```toml
/// [fleet]
/// url = "redis://127.0.0.1:6379/"
/// node = "gw-eu-1"
/// nodes = 12
/// lease = 8
/// timeout_ms = 5
/// sync_interval_ms = 100
/// fail = "closed"
/// index = 3
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// The Redis or Valkey server holding the fleet's quotas (`redis://`
    /// or `rediss://`; empty: none, quotas stay per node).
    pub url: String,
    /// This node's name, for logs and for the store's bookkeeping.
    pub node: String,
    /// Nodes in the fleet (default 1). Each node admits up to `1/nodes`
    /// of a quota on its own, without asking the store.
    pub nodes: u32,
    /// Units a node takes from the store at once, and spends locally
    /// (default 8; 1: every admission beyond the node's share is a round
    /// trip). The fleet may overshoot a quota by up to `nodes × lease`.
    pub lease: u32,
    /// How long a request may wait on the store, milliseconds (default 5).
    pub timeout_ms: u64,
    /// How often leases are renewed ahead of need and a node's own
    /// admissions are debited from the store, milliseconds (default 100).
    pub sync_interval_ms: u64,
    /// What to do when the store cannot answer (default `open`).
    pub fail: FailMode,
    /// The prefix of every key in the store (default `rf1`; the `1` is the
    /// key schema's version).
    pub prefix: String,
    /// Seconds after which a key's lease that nobody used is forgotten
    /// (default 300).
    pub idle_secs: u64,
    /// This node's place in the fleet, from 0 to `nodes − 1` (a
    /// StatefulSet's ordinal, say; default 0): its evidence stream.
    pub index: u32,
    /// Share evidence with the other nodes through the store (default
    /// true; only with a `url`).
    pub share_evidence: bool,
    /// Observations a node keeps for the store while it cannot reach it;
    /// past this the oldest are dropped and counted (default 100,000).
    pub max_pending: usize,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            url: String::new(),
            node: "node".into(),
            nodes: 1,
            lease: 8,
            timeout_ms: 5,
            sync_interval_ms: 100,
            fail: FailMode::Open,
            prefix: "rf1".into(),
            idle_secs: 300,
            index: 0,
            share_evidence: true,
            max_pending: 100_000,
        }
    }
}

/// A `[fleet]` table that is not a valid [`FleetConfig`]; the message
/// names the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfigError(pub String);

impl fmt::Display for FleetConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FleetConfigError {}

impl FleetConfig {
    /// The `[fleet]` table as the guard's configuration kept it
    /// (`GuardConfig::fleet`), validated.
    pub fn from_table(table: &toml::Table) -> Result<FleetConfig, FleetConfigError> {
        let c: FleetConfig =
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    FleetConfigError(format!("[fleet]: {}", e.to_string().trim_end()))
                })?;
        c.validate()?;
        Ok(c)
    }

    /// Checks values that parse but make no sense; the message names the key.
    pub fn validate(&self) -> Result<(), FleetConfigError> {
        let bad = |key: &str, why: &str| Err(FleetConfigError(format!("`fleet.{key}` {why}")));
        let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !self.url.is_empty() && !schemes.iter().any(|p| self.url.starts_with(p)) {
            return bad("url", "must start with redis://, rediss:// or unix://");
        }
        if !(1..=100_000).contains(&self.nodes) {
            return bad("nodes", "must be between 1 and 100,000");
        }
        if !(1..=1_000_000).contains(&self.lease) {
            return bad("lease", "must be between 1 and 1,000,000");
        }
        if !(1..=10_000).contains(&self.timeout_ms) {
            return bad("timeout_ms", "must be between 1 and 10,000");
        }
        if !(1..=3_600_000).contains(&self.sync_interval_ms) {
            return bad("sync_interval_ms", "must be between 1 and 3,600,000");
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
        {
            return bad("prefix", "must be 1 to 64 letters, digits, '-', '_' or ':'");
        }
        if self.node.len() > 256 {
            return bad("node", "must be at most 256 bytes");
        }
        if self.index >= self.nodes {
            return bad("index", "must be below `fleet.nodes`");
        }
        if !(1..=100_000_000).contains(&self.max_pending) {
            return bad("max_pending", "must be between 1 and 100,000,000");
        }
        if self.idle_secs == 0 {
            return bad("idle_secs", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_the_guard_configuration_is_read() {
        let g = ringfence::guard::GuardConfig::from_toml(
            "deny_at = 0.9\n[fleet]\nurl = \"redis://127.0.0.1:6379/\"\nnodes = 3\nfail = \"closed\"\n",
        )
        .unwrap();
        let f = FleetConfig::from_table(&g.fleet).unwrap();
        assert_eq!(f.nodes, 3);
        assert_eq!(f.fail, FailMode::Closed);
        assert_eq!(f.lease, 8);
    }

    #[test]
    fn bad_tables_name_the_key() {
        let table = |s: &str| -> toml::Table { toml::from_str(s).unwrap() };
        let e = FleetConfig::from_table(&table("nodez = 3")).unwrap_err();
        assert!(e.0.contains("nodez"), "{e}");
        let e = FleetConfig::from_table(&table("nodes = 0")).unwrap_err();
        assert!(e.0.contains("fleet.nodes"), "{e}");
        let e = FleetConfig::from_table(&table("url = \"http://x\"")).unwrap_err();
        assert!(e.0.contains("fleet.url"), "{e}");
        let e = FleetConfig::from_table(&table("fail = \"maybe\"")).unwrap_err();
        assert!(e.0.contains("fail"), "{e}");
    }
}
