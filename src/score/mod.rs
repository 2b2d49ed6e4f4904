//! Distillation scoring: streaming signals per cluster, each explainable,
//! combined into a score in [0, 1].
//!
//! Only clusters of at least `min_scored_size` accounts are scored (a lone
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

//!
//! The module's parts: [`ScoreConfig`] (`config`); each part of a cluster's
//! statistics with its decay, merge and codec (`parts`), put together once
//! in `stats`; the named [`Signal`]s and the score computed from them
//! (`signals`); the table of clusters, [`Scorer`] (`table`); and the
//! scorer's part of a snapshot (`snapshot`).

mod config;
mod parts;
mod signals;
mod snapshot;
mod stats;
mod table;

pub use config::ScoreConfig;
pub use signals::{Contributors, Signal, Signals};
pub(crate) use snapshot::ScoreSnapshot;
pub use table::Scorer;

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
    /// Whether the prompt elicits chain-of-thought ([`Scorer::is_cot`]).
    pub cot: bool,
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
