//! Distillation scoring: streaming signals per cluster, each explainable,
//! combined into a score in [0, 1].
//!
//! **First increment of issue 4** (a single-lock prototype, tuned on the
//! simulator). Signals, each in [0, 1], kept as exponentially decayed counts
//! (half-life `half_life_secs`) so old behaviour fades:
//!
//! - `spread`: how many of the cluster's accounts carry its traffic, evenly
//!   (many small accounts running one workload), gating the rest: a single
//!   account, however busy, scores 0 (evaluation pipelines are not a fleet);
//! - `cot`: the share of requests eliciting chain-of-thought (configurable
//!   phrases);
//! - `template`: the share of requests whose prompt shares an LSH band with a
//!   recent prompt of *another* account of the cluster (one template, varied
//!   content);
//! - `synchrony`: the share of requests made in a 30-second bucket in which at
//!   least `sync_accounts` of the cluster's accounts were active;
//! - `output_ratio`: output tokens per input token, saturating at 10.
//!
//! `score = gate(spread) × Σ wᵢ·signalᵢ / Σ wᵢ`; the verdict names the
//! strongest contributors.

use ahash::AHashMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Signal weights and thresholds. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Lower-case phrases that mark chain-of-thought elicitation.
    pub cot_phrases: Vec<String>,
    /// Weight of the chain-of-thought share (default 0.45).
    pub cot_weight: f64,
    /// Weight of the template share (default 0.35).
    pub template_weight: f64,
    /// Weight of synchrony (default 0.1).
    pub synchrony_weight: f64,
    /// Weight of the output/input token ratio (default 0.1).
    pub output_ratio_weight: f64,
    /// Active accounts at which the spread gate opens fully (default 5).
    pub full_spread_accounts: f64,
    /// Accounts active in one 30 s bucket that make it synchronous (default 3).
    pub sync_accounts: usize,
    /// Half-life of every count, seconds (default 3,600).
    pub half_life_secs: f64,
    /// Clusters tracked at once (least recently active dropped; default 100,000).
    pub max_clusters: usize,
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
            cot_weight: 0.45,
            template_weight: 0.35,
            synchrony_weight: 0.1,
            output_ratio_weight: 0.1,
            full_spread_accounts: 5.0,
            sync_accounts: 3,
            half_life_secs: 3600.0,
            max_clusters: 100_000,
        }
    }
}

/// One request as scoring sees it.
#[derive(Clone, Copy, Debug)]
pub struct Activity<'a> {
    /// The cluster's id.
    pub cluster: u64,
    /// The account (an index or hash, stable per account).
    pub account: u64,
    /// The prompt.
    pub prompt: Option<&'a str>,
    /// The prompt's template band keys (from linking), if any.
    pub template_bands: &'a [u64],
    /// Input tokens.
    pub input_tokens: u32,
    /// Seconds, increasing.
    pub now: f64,
}

/// A cluster's signals and score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Signals {
    /// Decayed request count.
    pub volume: f64,
    /// Accounts active recently (decayed share above 1 %).
    pub active_accounts: f64,
    /// The spread gate in [0, 1].
    pub spread: f64,
    /// Chain-of-thought share.
    pub cot: f64,
    /// Template share.
    pub template: f64,
    /// Synchronous share.
    pub synchrony: f64,
    /// Output/input ratio, scaled to [0, 1].
    pub output_ratio: f64,
    /// The combined score.
    pub score: f64,
}

impl Signals {
    /// The signals that contribute most, strongest first, as `(name, contribution)`.
    pub fn contributors(&self, config: &ScoreConfig) -> Vec<(&'static str, f64)> {
        let mut c = vec![
            ("cot", self.cot * config.cot_weight),
            ("template", self.template * config.template_weight),
            ("synchrony", self.synchrony * config.synchrony_weight),
            (
                "output_ratio",
                self.output_ratio * config.output_ratio_weight,
            ),
        ];
        c.sort_by(|a, b| b.1.total_cmp(&a.1));
        c.retain(|(_, v)| *v > 0.0);
        c
    }
}

#[derive(Default, Clone, Copy)]
struct Decayed {
    value: f64,
}

impl Decayed {
    fn add(&mut self, x: f64, factor: f64) {
        self.value = self.value * factor + x;
    }
}

#[derive(Default)]
struct ClusterStats {
    last: f64,
    requests: Decayed,
    cot: Decayed,
    template: Decayed,
    synchronous: Decayed,
    input_tokens: Decayed,
    output_tokens: Decayed,
    /// Per-account decayed request counts (at most 256 accounts tracked).
    accounts: AHashMap<u64, (f64, f64)>,
    /// Recent template bands → the account that used them.
    bands: AHashMap<u64, u64>,
    band_order: std::collections::VecDeque<u64>,
    /// The current 30 s bucket and the accounts active in it.
    bucket: i64,
    bucket_accounts: Vec<u64>,
}

const BUCKET_SECS: f64 = 30.0;
const MAX_ACCOUNTS: usize = 256;
const MAX_BANDS: usize = 1024;

/// Streaming per-cluster scores (see the module docs).
pub struct Scorer {
    config: ScoreConfig,
    clusters: Mutex<AHashMap<u64, ClusterStats>>,
}

impl Scorer {
    /// A scorer with this configuration.
    pub fn new(config: ScoreConfig) -> Scorer {
        Scorer {
            config,
            clusters: Mutex::new(AHashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ScoreConfig {
        &self.config
    }

    /// Whether `prompt` elicits chain-of-thought.
    pub fn is_cot(&self, prompt: &str) -> bool {
        let p = prompt.to_lowercase();
        self.config
            .cot_phrases
            .iter()
            .any(|phrase| p.contains(phrase.as_str()))
    }

    /// Records a request and returns its cluster's signals.
    pub fn record(&self, a: &Activity<'_>) -> Signals {
        let cot = a.prompt.is_some_and(|p| self.is_cot(p));
        let mut clusters = self.clusters.lock();
        if clusters.len() >= self.config.max_clusters && !clusters.contains_key(&a.cluster) {
            // Drop the least recently active cluster.
            if let Some((&old, _)) = clusters.iter().min_by(|x, y| x.1.last.total_cmp(&y.1.last)) {
                clusters.remove(&old);
            }
        }
        let st = clusters.entry(a.cluster).or_default();
        let factor = decay(a.now - st.last, self.config.half_life_secs);
        st.last = a.now;
        st.requests.add(1.0, factor);
        st.cot.add(if cot { 1.0 } else { 0.0 }, factor);
        st.input_tokens.add(f64::from(a.input_tokens), factor);
        // Output tokens arrive later (record_output) but decay on the same clock.
        st.output_tokens.add(0.0, factor);
        // Template: a band shared with another account's recent prompt.
        let mut shared = false;
        for &b in a.template_bands {
            match st.bands.get(&b) {
                Some(&other) if other != a.account => shared = true,
                Some(_) => {}
                None => {
                    st.bands.insert(b, a.account);
                    st.band_order.push_back(b);
                    if st.band_order.len() > MAX_BANDS {
                        if let Some(old) = st.band_order.pop_front() {
                            st.bands.remove(&old);
                        }
                    }
                }
            }
        }
        st.template.add(if shared { 1.0 } else { 0.0 }, factor);
        // Synchrony.
        let bucket = (a.now / BUCKET_SECS).floor() as i64;
        if bucket != st.bucket {
            st.bucket = bucket;
            st.bucket_accounts.clear();
        }
        if !st.bucket_accounts.contains(&a.account) && st.bucket_accounts.len() < 64 {
            st.bucket_accounts.push(a.account);
        }
        let synchronous = st.bucket_accounts.len() >= self.config.sync_accounts;
        st.synchronous
            .add(if synchronous { 1.0 } else { 0.0 }, factor);
        // Accounts carrying the traffic.
        if st.accounts.len() < MAX_ACCOUNTS || st.accounts.contains_key(&a.account) {
            let e = st.accounts.entry(a.account).or_insert((0.0, a.now));
            e.0 = e.0 * decay(a.now - e.1, self.config.half_life_secs) + 1.0;
            e.1 = a.now;
        }
        self.signals(st, a.now)
    }

    /// Records the output tokens of a request of `cluster` (after the response).
    pub fn record_output(&self, cluster: u64, output_tokens: u32, now: f64) {
        let mut clusters = self.clusters.lock();
        if let Some(st) = clusters.get_mut(&cluster) {
            let factor = decay(now - st.last, self.config.half_life_secs);
            st.output_tokens.add(f64::from(output_tokens), factor);
            // Keep the other counts on the same clock.
            st.requests.add(0.0, factor);
            st.cot.add(0.0, factor);
            st.template.add(0.0, factor);
            st.synchronous.add(0.0, factor);
            st.input_tokens.add(0.0, factor);
            st.last = now.max(st.last);
        }
    }

    /// The signals of `cluster` now, if it is tracked.
    pub fn signals_of(&self, cluster: u64, now: f64) -> Option<Signals> {
        let clusters = self.clusters.lock();
        clusters.get(&cluster).map(|st| self.signals(st, now))
    }

    fn signals(&self, st: &ClusterStats, now: f64) -> Signals {
        let c = &self.config;
        let n = st.requests.value.max(1e-9);
        let total: f64 = st
            .accounts
            .values()
            .map(|(v, t)| v * decay(now - t, c.half_life_secs))
            .sum::<f64>()
            .max(1e-9);
        let (mut active, mut max_share) = (0.0, 0.0f64);
        for (v, t) in st.accounts.values() {
            let share = v * decay(now - t, c.half_life_secs) / total;
            if share >= 0.01 {
                active += 1.0;
            }
            max_share = max_share.max(share);
        }
        let spread = ((active - 1.0) / (c.full_spread_accounts - 1.0).max(1.0)).clamp(0.0, 1.0)
            * (1.0 - max_share).sqrt();
        let cot = st.cot.value / n;
        let template = st.template.value / n;
        let synchrony = st.synchronous.value / n;
        let output_ratio = if st.input_tokens.value > 0.0 {
            (st.output_tokens.value / st.input_tokens.value / 10.0).min(1.0)
        } else {
            0.0
        };
        let weights = c.cot_weight + c.template_weight + c.synchrony_weight + c.output_ratio_weight;
        let content = (c.cot_weight * cot
            + c.template_weight * template
            + c.synchrony_weight * synchrony
            + c.output_ratio_weight * output_ratio)
            / weights.max(1e-9);
        Signals {
            volume: st.requests.value,
            active_accounts: active,
            spread,
            cot,
            template,
            synchrony,
            output_ratio,
            score: (spread * content).clamp(0.0, 1.0),
        }
    }
}

fn decay(elapsed: f64, half_life: f64) -> f64 {
    if elapsed <= 0.0 {
        1.0
    } else {
        0.5f64.powf(elapsed / half_life)
    }
}

/// Decoded scorer state, checked and ready to install.
pub(crate) struct ScoreSnapshot(AHashMap<u64, ClusterStats>);

impl Scorer {
    /// Writes every cluster's statistics in a fixed order.
    pub(crate) fn encode(&self, w: &mut crate::sketch::codec::Writer) {
        let clusters = self.clusters.lock();
        let mut ids: Vec<u64> = clusters.keys().copied().collect();
        ids.sort_unstable();
        w.u64(ids.len() as u64);
        for id in ids {
            let c = &clusters[&id];
            w.u64(id);
            for v in [
                c.last,
                c.requests.value,
                c.cot.value,
                c.template.value,
                c.synchronous.value,
                c.input_tokens.value,
                c.output_tokens.value,
            ] {
                w.f64(v);
            }
            let mut accounts: Vec<(u64, (f64, f64))> =
                c.accounts.iter().map(|(&k, &v)| (k, v)).collect();
            accounts.sort_unstable_by_key(|a| a.0);
            w.u64(accounts.len() as u64);
            for (k, (v, t)) in accounts {
                w.u64(k);
                w.f64(v);
                w.f64(t);
            }
            w.u64(c.band_order.len() as u64);
            for b in &c.band_order {
                w.u64(*b);
                w.u64(c.bands[b]);
            }
            w.u64(c.bucket as u64);
            w.u64(c.bucket_accounts.len() as u64);
            for a in &c.bucket_accounts {
                w.u64(*a);
            }
        }
    }

    /// Reads what `encode` wrote, shifting every time by `shift` seconds.
    pub(crate) fn decode(
        &self,
        r: &mut crate::sketch::codec::Reader<'_>,
        shift: f64,
    ) -> Result<ScoreSnapshot, crate::sketch::Error> {
        let n = r.u64("cluster count")?;
        let n = r.expect_items(n, 88, "clusters")?;
        let mut out = AHashMap::with_capacity(n);
        let mut last = None;
        for _ in 0..n {
            let id = r.u64("cluster id")?;
            if last.is_some_and(|l| l >= id) {
                return Err(r.err("clusters are not in order (or repeat)"));
            }
            last = Some(id);
            let mut c = ClusterStats {
                last: r.f64("last activity")? + shift,
                ..ClusterStats::default()
            };
            for d in [
                &mut c.requests,
                &mut c.cot,
                &mut c.template,
                &mut c.synchronous,
                &mut c.input_tokens,
                &mut c.output_tokens,
            ] {
                d.value = r.f64("count")?;
            }
            let m = r.u64("account count")?;
            let m = r.expect_items(m, 24, "accounts")?;
            if m > MAX_ACCOUNTS {
                return Err(r.err("too many accounts in a cluster"));
            }
            for _ in 0..m {
                let k = r.u64("account")?;
                let v = r.f64("account volume")?;
                let t = r.f64("account seen")? + shift;
                c.accounts.insert(k, (v, t));
            }
            let m = r.u64("band count")?;
            let m = r.expect_items(m, 16, "bands")?;
            if m > MAX_BANDS {
                return Err(r.err("too many template bands in a cluster"));
            }
            for _ in 0..m {
                let b = r.u64("band")?;
                let a = r.u64("band account")?;
                if c.bands.insert(b, a).is_some() {
                    return Err(r.err("a template band repeats"));
                }
                c.band_order.push_back(b);
            }
            c.bucket = r.u64("bucket")? as i64 + (shift / BUCKET_SECS).round() as i64;
            let m = r.u64("bucket account count")?;
            let m = r.expect_items(m, 8, "bucket accounts")?;
            if m > 64 {
                return Err(r.err("too many accounts in a bucket"));
            }
            for _ in 0..m {
                c.bucket_accounts.push(r.u64("bucket account")?);
            }
            out.insert(id, c);
        }
        if out.len() > self.config.max_clusters {
            return Err(r.err("more clusters than this scorer holds"));
        }
        Ok(ScoreSnapshot(out))
    }

    /// Replaces the state with a decoded one.
    pub(crate) fn install(&self, snapshot: ScoreSnapshot) {
        *self.clusters.lock() = snapshot.0;
    }

    /// Folds another node's decoded statistics in: counts of a cluster both
    /// know are added (each saw part of its traffic), accounts and template
    /// bands unioned within their bounds.
    pub(crate) fn merge(&self, other: ScoreSnapshot) {
        let mut clusters = self.clusters.lock();
        for (id, o) in other.0 {
            let Some(c) = clusters.get_mut(&id) else {
                if clusters.len() < self.config.max_clusters {
                    clusters.insert(id, o);
                }
                continue;
            };
            c.last = c.last.max(o.last);
            for (mine, theirs) in [
                (&mut c.requests, o.requests),
                (&mut c.cot, o.cot),
                (&mut c.template, o.template),
                (&mut c.synchronous, o.synchronous),
                (&mut c.input_tokens, o.input_tokens),
                (&mut c.output_tokens, o.output_tokens),
            ] {
                mine.value += theirs.value;
            }
            for (k, (v, t)) in o.accounts {
                if let Some(e) = c.accounts.get_mut(&k) {
                    e.0 += v;
                    e.1 = e.1.max(t);
                } else if c.accounts.len() < MAX_ACCOUNTS {
                    c.accounts.insert(k, (v, t));
                }
            }
            for b in o.band_order {
                if c.band_order.len() < MAX_BANDS && !c.bands.contains_key(&b) {
                    c.bands.insert(b, o.bands[&b]);
                    c.band_order.push_back(b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(cluster: u64, account: u64, prompt: &str, bands: &[u64], now: f64) -> Activity<'static> {
        let prompt: &'static str = Box::leak(prompt.to_string().into_boxed_str());
        let bands: &'static [u64] = Box::leak(bands.to_vec().into_boxed_slice());
        Activity {
            cluster,
            account,
            prompt: Some(prompt),
            template_bands: bands,
            input_tokens: 50,
            now,
        }
    }

    #[test]
    fn a_fleet_on_one_template_scores_high_and_a_lone_pipeline_zero() {
        let s = Scorer::new(ScoreConfig::default());
        let mut last = Signals::default();
        for i in 0..200u64 {
            last = s.record(&act(
                1,
                i % 20,
                "Think step by step: problem",
                &[7, 8],
                i as f64,
            ));
            s.record_output(1, 900, i as f64);
        }
        assert!(last.score > 0.8, "{last:?}");
        assert_eq!(last.contributors(s.config())[0].0, "cot");
        let mut lone = Signals::default();
        for i in 0..200u64 {
            lone = s.record(&act(
                2,
                99,
                "Think step by step: problem",
                &[7, 8],
                i as f64,
            ));
        }
        assert_eq!(lone.score, 0.0);
    }

    /// Output and input tokens decay on one clock: a steady 5:1 ratio reads
    /// as 0.5 however long the cluster runs.
    #[test]
    fn output_ratio_is_steady_for_steady_traffic() {
        let s = Scorer::new(ScoreConfig::default());
        let mut last = Signals::default();
        for i in 0..2000u64 {
            last = s.record(&act(4, i % 5, "hello", &[], i as f64 * 30.0));
            s.record_output(4, 250, i as f64 * 30.0);
        }
        assert!((last.output_ratio - 0.5).abs() < 0.01, "{last:?}");
    }

    #[test]
    fn a_busy_company_writing_varied_prompts_scores_low() {
        let s = Scorer::new(ScoreConfig::default());
        let mut last = Signals::default();
        for i in 0..500u64 {
            last = s.record(&act(
                3,
                i % 50,
                &format!("write an email about topic {i}"),
                &[1000 + i],
                i as f64 * 5.0,
            ));
            s.record_output(3, 250, i as f64 * 5.0);
        }
        assert!(last.spread > 0.9);
        assert!(last.score < 0.3, "{last:?}");
    }
}
