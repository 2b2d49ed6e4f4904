//! Distillation scoring: streaming signals per cluster, each explainable,
//! combined into a score in [0, 1].
//!
//! Only clusters of at least `min_cluster_size` accounts are scored (a lone
//! account, however busy, is not a fleet; its own quota limits it). Their
//! statistics live in a fixed table of `max_clusters` cells (the least
//! recently active is replaced when a new cluster needs room), each behind
//! its own small lock. Counts decay exponentially (half-life
//! `half_life_secs`), so old behaviour fades. The signals, each in [0, 1]:
//!
//! - `spread`: how many of the cluster's accounts carry its traffic, evenly
//!   (many small accounts running one workload), gating the rest. Active
//!   accounts are counted over the last one to two half-lives with a tiny
//!   HyperLogLog; the busiest account's share comes from decayed
//!   Misra–Gries counters. `spread = clamp((active − 1)/(full_spread_accounts
//!   − 1)) × √(1 − busiest share)`;
//! - `cot`: the share of requests eliciting chain-of-thought (a configurable
//!   phrase list, matched case-insensitively in one pass);
//! - `template`: the share of requests whose prompt shares an LSH band with
//!   another account *of the same cluster*, counted as far as the prompts
//!   differ (`diversity`: distinct prompts per request, a HyperLogLog count
//!   over one to two half-lives): one template, varied content;
//! - `synchrony`: the share of requests made in a 30-second bucket in which at
//!   least `sync_accounts` of the cluster's accounts were active, and three
//!   times as many as its steady request rate would put in one bucket (a
//!   large cluster of independent users is always busy; a fleet moves in
//!   bursts);
//! - `output_ratio`: output tokens per input token of the served requests
//!   (settled), saturating at 10;
//! - `pivot`: the share of requests for a model the cluster first used more
//!   than a half-life after it was first seen (a sudden move to a new model).
//!
//! `score = spread × Σ wᵢ·signalᵢ / Σ wᵢ`; the verdict names the strongest
//! contributors.

use crate::sketch::PackedHll;
use aho_corasick::AhoCorasick;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use xxhash_rust::xxh3::xxh3_64;

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
    /// Smallest cluster scored (default 2).
    pub min_cluster_size: u32,
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
            min_cluster_size: 2,
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

/// One request as scoring sees it.
#[derive(Clone, Copy, Debug)]
pub struct Activity<'a> {
    /// The cluster's id.
    pub cluster: u64,
    /// Accounts in the cluster.
    pub cluster_size: u32,
    /// The account's hash.
    pub account: u64,
    /// The prompt.
    pub prompt: Option<&'a str>,
    /// Whether the prompt shares a template with another account of the
    /// cluster (from linking).
    pub template_shared: bool,
    /// A key of the prompt's content (0: no prompt); equal prompts, equal keys.
    pub prompt_key: u64,
    /// The model asked for.
    pub model: Option<&'a str>,
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
    /// Accounts active recently (estimated).
    pub active_accounts: f64,
    /// The busiest account's share of the requests.
    pub busiest_share: f64,
    /// The spread gate in [0, 1].
    pub spread: f64,
    /// Chain-of-thought share.
    pub cot: f64,
    /// Template share.
    pub template: f64,
    /// Distinct prompts per prompted request over the last one to two
    /// half-lives (a HyperLogLog count): 1 when every prompt is new.
    pub diversity: f64,
    /// Synchronous share.
    pub synchrony: f64,
    /// Output/input ratio, scaled to [0, 1].
    pub output_ratio: f64,
    /// Share of requests for a model the cluster took up late.
    pub pivot: f64,
    /// The combined score.
    pub score: f64,
}

impl Signals {
    /// The signals that contribute most, strongest first, as `(name,
    /// contribution to the score)`; the contributions add up to the score.
    pub fn contributors(&self, config: &ScoreConfig) -> Vec<(&'static str, f64)> {
        self.strongest(config).to_vec()
    }

    /// [`Signals::contributors`] without allocating.
    pub fn strongest(&self, config: &ScoreConfig) -> Contributors {
        let scale = self.spread / total_weight(config);
        let mut c = Contributors {
            items: [
                ("cot", self.cot * config.cot_weight * scale),
                (
                    "template",
                    self.template * self.diversity * config.template_weight * scale,
                ),
                (
                    "synchrony",
                    self.synchrony * config.synchrony_weight * scale,
                ),
                (
                    "output_ratio",
                    self.output_ratio * config.output_ratio_weight * scale,
                ),
                ("pivot", self.pivot * config.pivot_weight * scale),
            ],
            len: 5,
        };
        c.items.sort_by(|a, b| b.1.total_cmp(&a.1));
        c.len = c.items.iter().take_while(|(_, v)| *v > 0.0).count() as u8;
        c
    }
}

/// The signals behind a score, strongest first (at most five; derefs to a
/// slice of `(name, contribution)`).
#[derive(Clone, Copy, PartialEq)]
pub struct Contributors {
    items: [(&'static str, f64); 5],
    len: u8,
}

impl Default for Contributors {
    fn default() -> Self {
        Contributors {
            items: [("", 0.0); 5],
            len: 0,
        }
    }
}

impl std::ops::Deref for Contributors {
    type Target = [(&'static str, f64)];
    fn deref(&self) -> &Self::Target {
        &self.items[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Contributors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

fn total_weight(c: &ScoreConfig) -> f64 {
    (c.cot_weight + c.template_weight + c.synchrony_weight + c.output_ratio_weight + c.pivot_weight)
        .max(1e-9)
}

/// One cluster's statistics (decayed to `last`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Stats {
    /// First and last activity, seconds.
    born: f64,
    last: f64,
    requests: f32,
    cot: f32,
    template: f32,
    synchronous: f32,
    input: f32,
    output: f32,
    pivot: f32,
    /// Decayed Misra–Gries counters of the busiest accounts (hash, count).
    busiest: [(u32, f32); 4],
    /// Tiny HyperLogLogs of the accounts active in this window and the last.
    active: [u64; 2],
    /// Tiny HyperLogLogs of the distinct prompts of this window and the
    /// last, and how many prompted requests each saw.
    prompts: [u64; 2],
    prompted: [f32; 2],
    window: u32,
    /// The current 30 s bucket and a bitmap of its accounts.
    bucket: u32,
    bucket_bits: u64,
    /// Models seen (hash, seconds after `born` first seen).
    models: [(u32, f32); 4],
}

const BUCKET_SECS: f64 = 30.0;
const PROBE: usize = 8;

fn decay(elapsed: f64, half_life: f64) -> f64 {
    if elapsed <= 0.0 {
        1.0
    } else {
        0.5f64.powf(elapsed / half_life)
    }
}

impl Stats {
    fn new(now: f64) -> Stats {
        Stats {
            born: now,
            last: now,
            ..Stats::default()
        }
    }

    /// Decays every count to `now`.
    fn advance(&mut self, now: f64, half_life: f64) {
        if now <= self.last {
            return;
        }
        let f = decay(now - self.last, half_life) as f32;
        for x in [
            &mut self.requests,
            &mut self.cot,
            &mut self.template,
            &mut self.synchronous,
            &mut self.input,
            &mut self.output,
            &mut self.pivot,
        ] {
            *x *= f;
        }
        for b in &mut self.busiest {
            b.1 *= f;
        }
        let window = (now / half_life) as u32;
        if window != self.window {
            let next = window == self.window.wrapping_add(1);
            self.active = if next { [0, self.active[0]] } else { [0, 0] };
            self.prompts = if next { [0, self.prompts[0]] } else { [0, 0] };
            self.prompted = if next {
                [0.0, self.prompted[0]]
            } else {
                [0.0, 0.0]
            };
            self.window = window;
        }
        self.last = now;
    }

    fn count_account(&mut self, account: u64) {
        let a = account as u32;
        if let Some(b) = self.busiest.iter_mut().find(|b| b.0 == a && b.1 > 0.0) {
            b.1 += 1.0;
        } else if let Some(b) = self.busiest.iter_mut().find(|b| b.1 <= 1e-3) {
            *b = (a, 1.0);
        } else {
            for b in &mut self.busiest {
                b.1 = (b.1 - 1.0).max(0.0);
            }
        }
        self.active[0] = hll_with(self.active[0], account);
    }
}

/// The distinct-count sketches of a cluster's stats (active accounts,
/// distinct prompts): 16 registers, about 26 % standard error.
type StatHll = PackedHll<16>;

/// `regs` with `hash` added, its bits spread first (the keys scored here are
/// account and prompt hashes that the packed sketch's low bits would see
/// too little of).
fn hll_with(regs: u64, hash: u64) -> u64 {
    let h = hash.rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    StatHll::from_bits(regs).with(h.reverse_bits()).bits()
}

fn hll_estimate(regs: u64) -> f64 {
    StatHll::from_bits(regs).estimate()
}

fn hll_merge(a: u64, b: u64) -> u64 {
    StatHll::from_bits(a).merge(StatHll::from_bits(b)).bits()
}

struct Slot {
    tag: AtomicU64,
    stats: Mutex<Stats>,
}

/// Streaming per-cluster scores (see the module docs).
pub struct Scorer {
    config: ScoreConfig,
    cot: Option<AhoCorasick>,
    slots: Box<[Slot]>,
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
        let n = config.max_clusters + config.max_clusters / 4 + PROBE;
        Ok(Scorer {
            slots: (0..n)
                .map(|_| Slot {
                    tag: AtomicU64::new(0),
                    stats: Mutex::new(Stats::default()),
                })
                .collect(),
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
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// Whether `prompt` elicits chain-of-thought.
    pub fn is_cot(&self, prompt: &str) -> bool {
        self.cot.as_ref().is_some_and(|ac| ac.is_match(prompt))
    }

    fn home(&self, tag: u64) -> usize {
        ((u128::from(tag) * (self.slots.len() - PROBE) as u128) >> 64) as usize
    }

    fn find(&self, tag: u64) -> Option<usize> {
        let h = self.home(tag);
        (h..h + PROBE).find(|&i| self.slots[i].tag.load(Relaxed) == tag)
    }

    /// The cell of `tag`, taken (or the least recently active of its window
    /// replaced) if new.
    fn find_or_insert(&self, tag: u64, now: f64) -> usize {
        let h = self.home(tag);
        for i in h..h + PROBE {
            let slot = &self.slots[i];
            let t = slot.tag.load(Relaxed);
            if t == tag {
                return i;
            }
            if t == 0 {
                let mut st = slot.stats.lock();
                match slot.tag.compare_exchange(0, tag, Relaxed, Relaxed) {
                    Ok(_) => {
                        *st = Stats::new(now);
                        return i;
                    }
                    Err(t) if t == tag => return i,
                    Err(_) => {}
                }
            }
        }
        let oldest = (h..h + PROBE)
            .min_by(|&x, &y| {
                let (a, b) = (
                    self.slots[x].stats.lock().last,
                    self.slots[y].stats.lock().last,
                );
                a.total_cmp(&b)
            })
            .unwrap_or(h);
        let slot = &self.slots[oldest];
        let mut st = slot.stats.lock();
        slot.tag.store(tag, Relaxed);
        *st = Stats::new(now);
        oldest
    }

    /// Records a request and returns its cluster's signals (all zero for a
    /// cluster smaller than `min_cluster_size`).
    pub fn record(&self, a: &Activity<'_>) -> Signals {
        if a.cluster_size < self.config.min_cluster_size {
            return Signals::default();
        }
        let cot = a.prompt.is_some_and(|p| self.is_cot(p));
        let model = a.model.map(|m| xxh3_64(m.as_bytes()) as u32 | 1);
        let c = &self.config;
        let tag = a.cluster | 1;
        for _ in 0..2 {
            let i = self.find_or_insert(tag, a.now);
            let slot = &self.slots[i];
            let mut st = slot.stats.lock();
            if slot.tag.load(Relaxed) != tag {
                continue; // replaced in between: look again
            }
            st.advance(a.now, c.half_life_secs);
            st.requests += 1.0;
            st.cot += f32::from(u8::from(cot));
            st.template += f32::from(u8::from(a.template_shared));
            if a.prompt_key != 0 {
                st.prompts[0] = hll_with(st.prompts[0], a.prompt_key);
                st.prompted[0] += 1.0;
            }
            st.count_account(a.account);
            let bucket = (a.now / BUCKET_SECS).max(0.0) as u32;
            if bucket != st.bucket {
                st.bucket = bucket;
                st.bucket_bits = 0;
            }
            st.bucket_bits |= 1 << (a.account.rotate_left(7) & 63);
            // Synchronous: more accounts in this bucket than the cluster's
            // steady rate would put there by chance (a large cluster of
            // independent users is always busy; a fleet moves in bursts).
            let longest = (c.half_life_secs / std::f64::consts::LN_2).max(BUCKET_SECS);
            let lifetime = (a.now - st.born).clamp(BUCKET_SECS, longest);
            let per_bucket = f64::from(st.requests) / lifetime * BUCKET_SECS;
            let needed = f64::from(c.sync_accounts).max(3.0 * per_bucket);
            if f64::from(st.bucket_bits.count_ones()) >= needed {
                st.synchronous += 1.0;
            }
            if let Some(m) = model {
                let age = (a.now - st.born) as f32;
                let first = match st.models.iter().find(|x| x.0 == m) {
                    Some(x) => Some(x.1),
                    None => match st.models.iter_mut().find(|x| x.0 == 0) {
                        Some(free) => {
                            *free = (m, age);
                            Some(age)
                        }
                        None => None, // a fifth model: new by definition
                    },
                };
                if first.is_none_or(|t| f64::from(t) > c.half_life_secs) {
                    st.pivot += 1.0;
                }
            }
            return self.signals(&st);
        }
        Signals::default()
    }

    /// Records the tokens of a served request of `cluster` (after the
    /// response): the output/input ratio is that of served requests, so
    /// refusing a cluster's requests does not move its signal.
    pub fn record_output(&self, cluster: u64, input_tokens: u32, output_tokens: u32, now: f64) {
        let tag = cluster | 1;
        if let Some(i) = self.find(tag) {
            let slot = &self.slots[i];
            let mut st = slot.stats.lock();
            if slot.tag.load(Relaxed) == tag {
                st.advance(now, self.config.half_life_secs);
                st.input += input_tokens as f32;
                st.output += output_tokens as f32;
            }
        }
    }

    /// The signals of `cluster` now, if it is scored.
    pub fn signals_of(&self, cluster: u64, now: f64) -> Option<Signals> {
        let tag = cluster | 1;
        let i = self.find(tag)?;
        let slot = &self.slots[i];
        let mut st = *slot.stats.lock();
        if slot.tag.load(Relaxed) != tag {
            return None;
        }
        st.advance(now, self.config.half_life_secs);
        Some(self.signals(&st))
    }

    fn signals(&self, st: &Stats) -> Signals {
        let c = &self.config;
        let n = f64::from(st.requests).max(1e-9);
        let active = hll_estimate(hll_merge(st.active[0], st.active[1])).round();
        let busiest = st
            .busiest
            .iter()
            .map(|b| f64::from(b.1))
            .fold(0.0, f64::max);
        let busiest_share = (busiest / n).clamp(0.0, 1.0);
        let spread = ((active - 1.0) / (c.full_spread_accounts - 1.0).max(1.0)).clamp(0.0, 1.0)
            * (1.0 - busiest_share).sqrt();
        let share = |x: f32| (f64::from(x) / n).clamp(0.0, 1.0);
        let prompted = f64::from(st.prompted[0] + st.prompted[1]);
        let diversity = if prompted > 0.0 {
            (hll_estimate(hll_merge(st.prompts[0], st.prompts[1])) / prompted).min(1.0)
        } else {
            0.0
        };
        let (cot, template, synchrony, pivot) = (
            share(st.cot),
            share(st.template),
            share(st.synchronous),
            share(st.pivot),
        );
        let output_ratio = if st.input > 0.0 {
            (f64::from(st.output) / f64::from(st.input) / 10.0).min(1.0)
        } else {
            0.0
        };
        // One template with varied content: the template share counts as
        // far as the prompts differ (a client retrying one prompt is not a
        // template being filled).
        let content = (c.cot_weight * cot
            + c.template_weight * template * diversity
            + c.synchrony_weight * synchrony
            + c.output_ratio_weight * output_ratio
            + c.pivot_weight * pivot)
            / total_weight(c);
        Signals {
            volume: n,
            active_accounts: active,
            busiest_share,
            spread,
            cot,
            template,
            diversity,
            synchrony,
            output_ratio,
            pivot,
            score: (spread * content).clamp(0.0, 1.0),
        }
    }
}

/// Decoded scorer state, checked and ready to install.
pub(crate) struct ScoreSnapshot {
    slots: usize,
    cells: Vec<(u32, u64, Stats)>,
}

impl Scorer {
    /// Writes every scored cluster, in table order.
    pub(crate) fn encode(&self, w: &mut crate::sketch::codec::Writer) {
        w.u64(self.slots.len() as u64);
        let cells: Vec<(usize, u64, Stats)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let st = *s.stats.lock();
                let tag = s.tag.load(Relaxed);
                (tag != 0).then_some((i, tag, st))
            })
            .collect();
        w.u64(cells.len() as u64);
        for (i, tag, st) in cells {
            w.u32(i as u32);
            w.u64(tag);
            w.f64(st.born);
            w.f64(st.last);
            for x in [
                st.requests,
                st.cot,
                st.template,
                st.synchronous,
                st.input,
                st.output,
                st.pivot,
            ] {
                w.u32(x.to_bits());
            }
            for (a, n) in st.busiest {
                w.u32(a);
                w.u32(n.to_bits());
            }
            w.u64(st.active[0]);
            w.u64(st.active[1]);
            w.u64(st.prompts[0]);
            w.u64(st.prompts[1]);
            w.u32(st.prompted[0].to_bits());
            w.u32(st.prompted[1].to_bits());
            w.u32(st.window);
            w.u32(st.bucket);
            w.u64(st.bucket_bits);
            for (m, t) in st.models {
                w.u32(m);
                w.u32(t.to_bits());
            }
        }
    }

    /// Reads what `encode` wrote, shifting every time by `shift` seconds.
    pub(crate) fn decode(
        &self,
        r: &mut crate::sketch::codec::Reader<'_>,
        shift: f64,
    ) -> Result<ScoreSnapshot, crate::sketch::Error> {
        let slots = r.u64("score table size")?;
        if slots < PROBE as u64 || slots > 1 << 30 {
            return Err(r.err(format!("score table size {slots} is out of range")));
        }
        let slots = slots as usize;
        let n = r.u64("cluster count")?;
        let n = r.expect_items(n, 164, "clusters")?;
        let mut cells = Vec::with_capacity(n);
        let mut last = None;
        let count = |r: &mut crate::sketch::codec::Reader<'_>, what: &str| {
            let x = f32::from_bits(r.u32(what)?);
            if x.is_finite() && x >= 0.0 {
                Ok(x)
            } else {
                Err(r.err(format!("{what} {x} is not a count")))
            }
        };
        for _ in 0..n {
            let i = r.u32("cluster cell")?;
            if i as usize >= slots || last.is_some_and(|l| l >= i) {
                return Err(r.err(format!(
                    "cluster cell {i} is out of order or beyond {slots}"
                )));
            }
            last = Some(i);
            let tag = r.u64("cluster id")?;
            let born = r.f64("cluster born")?;
            let seen = r.f64("cluster last active")?;
            if tag == 0 || !born.is_finite() || !seen.is_finite() {
                return Err(r.err(format!("cluster cell {i} is malformed")));
            }
            let mut st = Stats {
                born: born + shift,
                last: seen + shift,
                ..Stats::default()
            };
            if !st.born.is_finite() || !st.last.is_finite() {
                return Err(r.err(format!("cluster cell {i}'s times are out of range")));
            }
            for x in [
                &mut st.requests,
                &mut st.cot,
                &mut st.template,
                &mut st.synchronous,
                &mut st.input,
                &mut st.output,
                &mut st.pivot,
            ] {
                *x = count(r, "a decayed count")?;
            }
            for b in &mut st.busiest {
                b.0 = r.u32("account")?;
                b.1 = count(r, "an account's count")?;
            }
            st.active = [r.u64("active accounts")?, r.u64("active accounts")?];
            st.prompts = [r.u64("distinct prompts")?, r.u64("distinct prompts")?];
            st.prompted = [
                count(r, "prompted requests")?,
                count(r, "prompted requests")?,
            ];
            // Windows and buckets count from this guard's clock origin: they
            // follow the shifted last activity, not the other clock's.
            st.window = r.u32("window")?;
            st.bucket = r.u32("bucket")?;
            if shift != 0.0 {
                st.window = (st.last.max(0.0) / self.config.half_life_secs) as u32;
                st.bucket = (st.last.max(0.0) / BUCKET_SECS) as u32;
            }
            st.bucket_bits = r.u64("bucket accounts")?;
            for m in &mut st.models {
                m.0 = r.u32("model")?;
                m.1 = f32::from_bits(r.u32("model first seen")?);
                if !m.1.is_finite() {
                    return Err(r.err("a model's first-seen time is not a number"));
                }
            }
            cells.push((i, tag, st));
        }
        Ok(ScoreSnapshot { slots, cells })
    }

    /// Whether a decoded snapshot can be installed as it is.
    pub(crate) fn check_installable(&self, s: &ScoreSnapshot) -> Result<(), String> {
        if s.slots != self.slots.len() {
            return Err(format!(
                "its score table has {} cells, this guard's {}: restore into a guard with the same `score.max_clusters`, or merge it",
                s.slots,
                self.slots.len()
            ));
        }
        Ok(())
    }

    /// Replaces the state with a decoded one (checked with `check_installable`).
    pub(crate) fn install(&self, s: ScoreSnapshot) {
        for slot in self.slots.iter() {
            let mut st = slot.stats.lock();
            slot.tag.store(0, Relaxed);
            *st = Stats::default();
        }
        for (i, tag, stats) in s.cells {
            let slot = &self.slots[i as usize];
            let mut st = slot.stats.lock();
            slot.tag.store(tag, Relaxed);
            *st = stats;
        }
    }

    /// Folds another node's statistics in: counts decayed to the later time
    /// and added, active accounts and buckets united.
    pub(crate) fn merge(&self, other: ScoreSnapshot) {
        let h = self.config.half_life_secs;
        for (_, tag, mut o) in other.cells {
            let i = self.find_or_insert(tag, o.last);
            let slot = &self.slots[i];
            let mut st = slot.stats.lock();
            if slot.tag.load(Relaxed) != tag {
                continue;
            }
            let now = st.last.max(o.last);
            st.advance(now, h);
            o.advance(now, h);
            st.born = st.born.min(o.born);
            st.requests += o.requests;
            st.cot += o.cot;
            st.template += o.template;
            st.synchronous += o.synchronous;
            st.input += o.input;
            st.output += o.output;
            st.pivot += o.pivot;
            for b in o.busiest {
                if let Some(x) = st.busiest.iter_mut().find(|x| x.0 == b.0) {
                    x.1 += b.1;
                } else if let Some(x) = st.busiest.iter_mut().min_by(|x, y| x.1.total_cmp(&y.1)) {
                    if x.1 < b.1 {
                        *x = b;
                    }
                }
            }
            if st.window == o.window {
                st.prompts = [
                    hll_merge(st.prompts[0], o.prompts[0]),
                    hll_merge(st.prompts[1], o.prompts[1]),
                ];
                st.prompted = [
                    st.prompted[0] + o.prompted[0],
                    st.prompted[1] + o.prompted[1],
                ];
                st.active = [
                    hll_merge(st.active[0], o.active[0]),
                    hll_merge(st.active[1], o.active[1]),
                ];
            }
            if st.bucket == o.bucket {
                st.bucket_bits |= o.bucket_bits;
            }
            for m in o.models {
                if m.0 != 0 && !st.models.iter().any(|x| x.0 == m.0) {
                    if let Some(free) = st.models.iter_mut().find(|x| x.0 == 0) {
                        *free = m;
                    }
                }
            }
        }
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
