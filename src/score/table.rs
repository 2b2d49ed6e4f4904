//! The table of scored clusters: a fixed number of cells, each behind its
//! own small lock (see [`crate::slots`]).

use super::signals::Signals;
use super::stats::Stats;
use super::{Activity, ScoreConfig};
use crate::slots::{LockedSlots, Recency};
use aho_corasick::AhoCorasick;
use xxhash_rust::xxh3::xxh3_64;

impl Recency for Stats {
    fn last_active(&self) -> f64 {
        self.last
    }
}

/// Streaming per-cluster scores (see the module docs).
pub struct Scorer {
    pub(super) config: ScoreConfig,
    cot: Option<AhoCorasick>,
    pub(super) slots: LockedSlots<Stats>,
}

impl Scorer {
    /// A scorer with this configuration.
    ///
    /// # Panics
    /// If the configuration is invalid; [`Scorer::try_new`] returns the error.
    pub fn new(config: ScoreConfig) -> Scorer {
        match Self::try_new(config) {
            Ok(s) => s,
            Err(e) => panic!("invalid score configuration: {e}"),
        }
    }

    /// A scorer with this configuration, or what is wrong with it.
    pub fn try_new(config: ScoreConfig) -> Result<Scorer, String> {
        config.validate()?;
        let cot = if config.cot_phrases.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&config.cot_phrases)
                    .map_err(|e| format!("`score.cot_phrases`: {e}"))?,
            )
        };
        Ok(Scorer {
            slots: LockedSlots::new(config.max_clusters),
            cot,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ScoreConfig {
        &self.config
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.slots.bytes()
    }

    /// Whether `prompt` elicits chain-of-thought.
    pub fn is_cot(&self, prompt: &str) -> bool {
        self.cot.as_ref().is_some_and(|ac| ac.is_match(prompt))
    }

    /// Records a request and returns its cluster's signals (all zero for a
    /// cluster smaller than `min_scored_size`).
    pub fn record(&self, a: &Activity<'_>) -> Signals {
        if a.cluster_size < self.config.min_scored_size {
            return Signals::default();
        }
        let model = a.model.map(|m| xxh3_64(m.as_bytes()) as u32 | 1);
        let c = &self.config;
        self.slots
            .update(
                a.cluster | 1,
                || Stats::new(a.now),
                |st| {
                    st.advance(a.now, c.half_life_secs);
                    st.observe(a, a.cot, model, c);
                    Signals::of(st, c)
                },
            )
            .unwrap_or_default()
    }

    /// Records the tokens of a served request of `cluster` (after the
    /// response): the output/input ratio is that of served requests, so
    /// refusing a cluster's requests does not move its signal.
    pub fn record_output(&self, cluster: u64, input_tokens: u32, output_tokens: u32, now: f64) {
        self.slots.update_existing(cluster | 1, |st| {
            st.advance(now, self.config.half_life_secs);
            st.counts.input += input_tokens as f32;
            st.counts.output += output_tokens as f32;
        });
    }

    /// The signals of `cluster` now, if it is scored.
    pub fn signals_of(&self, cluster: u64, now: f64) -> Option<Signals> {
        let mut st = self.slots.get(cluster | 1)?;
        st.advance(now, self.config.half_life_secs);
        Some(Signals::of(&st, &self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(cluster: u64, size: u32, account: u64, prompt: &str, now: f64) -> Activity<'_> {
        Activity {
            cluster,
            cluster_size: size,
            account,
            prompt: Some(prompt),
            cot: prompt.to_ascii_lowercase().contains("step by step"),
            template_shared: true,
            prompt_key: xxh3_64(prompt.as_bytes()),
            model: Some("m1"),
            input_tokens: 100,
            now,
        }
    }

    #[test]
    fn a_fleet_of_small_accounts_scores_high_and_one_busy_account_zero() {
        let s = Scorer::new(ScoreConfig::default());
        let mut fleet = Signals::default();
        let mut single = Signals::default();
        for i in 0..400u64 {
            let t = i as f64 * 5.0;
            let prompt = format!("Think STEP BY STEP about problem {i}");
            fleet = s.record(&activity(
                7,
                20,
                xxh3_64(&(i % 20).to_le_bytes()),
                &prompt,
                t,
            ));
            single = s.record(&activity(9, 20, 42, "Think step by step about x", t));
        }
        assert!(fleet.score > 0.6, "{fleet:?}");
        assert!((15.0..=26.0).contains(&fleet.active_accounts), "{fleet:?}");
        assert!(fleet.busiest_share < 0.3, "{fleet:?}");
        assert_eq!(single.spread, 0.0);
        assert_eq!(single.score, 0.0);
        // Too small a cluster is not scored at all.
        assert_eq!(
            s.record(&activity(11, 1, 1, "step by step", 0.0)),
            Signals::default()
        );
        assert!(s.signals_of(11, 0.0).is_none());
        let c = fleet.contributors(s.config());
        assert_eq!(c[0].0, "cot");
        assert!((c.iter().map(|x| x.1).sum::<f64>() - fleet.score).abs() < 1e-6);
    }

    #[test]
    fn counts_decay_and_a_late_model_is_a_pivot() {
        let s = Scorer::new(ScoreConfig::default());
        for i in 0..100u64 {
            s.record(&activity(5, 3, i % 3, "hello", i as f64));
        }
        let early = s.signals_of(5, 100.0).unwrap();
        let later = s.signals_of(5, 3700.0).unwrap();
        assert!(
            (later.volume / early.volume - 0.5).abs() < 0.02,
            "{early:?} {later:?}"
        );
        assert_eq!(early.pivot, 0.0);
        let mut a = activity(5, 3, 1, "hello", 8000.0);
        a.model = Some("brand-new-model");
        for i in 0..50 {
            a.now = 8000.0 + f64::from(i);
            s.record(&a);
        }
        assert!(s.signals_of(5, 8050.0).unwrap().pivot > 0.5);
    }

    #[test]
    fn the_table_is_bounded() {
        let s = Scorer::new(ScoreConfig {
            max_clusters: 100,
            ..ScoreConfig::default()
        });
        let bytes = s.bytes();
        for c in 0..10_000u64 {
            s.record(&activity(c * 7919, 3, c, "x", c as f64));
        }
        assert_eq!(s.bytes(), bytes);
        assert!(s.signals_of(9_999 * 7919, 10_000.0).is_some());
    }

    #[test]
    fn a_cell_is_as_small_as_before() {
        // About 180 bytes a cluster (see `ScoreConfig::max_clusters`); the
        // memory a guard reports depends on it.
        assert_eq!(std::mem::size_of::<crate::slots::Slot<Stats>>(), 184);
    }
}
