//! The scorer's configuration: signal weights, thresholds and table size,
//! each with a documented default.

use serde::{Deserialize, Serialize};

/// Signal weights and thresholds. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Phrases that mark chain-of-thought elicitation (matched ignoring
    /// ASCII case; default: "step by step", "chain of thought", "show your
    /// reasoning", "reasoning", "show all of your work").
    pub cot_phrases: Vec<String>,
    /// Weight of the chain-of-thought share (default 0.4).
    pub cot_weight: f64,
    /// Weight of the template share (default 0.2: benign agents and tools
    /// template their prompts too).
    pub template_weight: f64,
    /// Weight of synchrony (default 0.1).
    pub synchrony_weight: f64,
    /// Weight of the output/input token ratio (default 0.25).
    pub output_ratio_weight: f64,
    /// Weight of the pivot to a new model (default 0.05).
    pub pivot_weight: f64,
    /// Active accounts at which the spread gate opens fully (default 5).
    pub full_spread_accounts: f64,
    /// Accounts active in one 30 s bucket that make it synchronous (default 3).
    pub sync_accounts: u32,
    /// Half-life of every count, seconds (default 3,600).
    pub half_life_secs: f64,
    /// Clusters scored at once (default 16,384, about 180 bytes each; the
    /// least recently active is replaced when a new one needs room).
    pub max_clusters: usize,
    /// Smallest cluster scored (default 2; the guard's own
    /// `min_cluster_size` is the smallest its policy applies to). Read from
    /// `min_cluster_size` too, its name before.
    #[serde(alias = "min_cluster_size")]
    pub min_scored_size: u32,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            cot_phrases: [
                "step by step",
                "chain of thought",
                "show your reasoning",
                "reasoning",
                "show all of your work",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            cot_weight: 0.4,
            template_weight: 0.2,
            synchrony_weight: 0.1,
            output_ratio_weight: 0.25,
            pivot_weight: 0.05,
            full_spread_accounts: 5.0,
            sync_accounts: 3,
            half_life_secs: 3600.0,
            max_clusters: 16_384,
            min_scored_size: 2,
        }
    }
}

impl ScoreConfig {
    /// Checks the values that parse but make no sense; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, w) in [
            ("cot_weight", self.cot_weight),
            ("template_weight", self.template_weight),
            ("synchrony_weight", self.synchrony_weight),
            ("output_ratio_weight", self.output_ratio_weight),
            ("pivot_weight", self.pivot_weight),
        ] {
            if !(0.0..=100.0).contains(&w) {
                return Err(format!("`score.{key}` must be between 0 and 100 (got {w})"));
            }
        }
        if self.full_spread_accounts.is_nan() || self.full_spread_accounts < 1.0 {
            return Err("`score.full_spread_accounts` must be at least 1".into());
        }
        if !(self.half_life_secs > 0.0 && self.half_life_secs.is_finite()) {
            return Err("`score.half_life_secs` must be positive".into());
        }
        if self.max_clusters == 0 || self.max_clusters > 1 << 24 {
            return Err("`score.max_clusters` must be between 1 and 2^24".into());
        }
        if self.sync_accounts == 0 || self.sync_accounts > 64 {
            return Err("`score.sync_accounts` must be between 1 and 64".into());
        }
        if self.cot_phrases.iter().any(|p| p.trim().is_empty()) {
            return Err("`score.cot_phrases` must not contain empty phrases".into());
        }
        Ok(())
    }
}

/// The sum of the signal weights (never zero): the score's denominator.
pub(super) fn total_weight(c: &ScoreConfig) -> f64 {
    (c.cot_weight + c.template_weight + c.synchrony_weight + c.output_ratio_weight + c.pivot_weight)
        .max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Scorer;

    #[test]
    fn bad_configurations_name_the_key() {
        let bad = ScoreConfig {
            half_life_secs: 0.0,
            ..ScoreConfig::default()
        };
        assert!(Scorer::try_new(bad)
            .err()
            .unwrap()
            .contains("score.half_life_secs"));
    }
}
