//! Which shared values may leave: the export rule.

use super::store::Entry;

/// What to export ([`Guard::export_indicators`](crate::guard::Guard::export_indicators)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportOptions {
    /// Clusters scoring at least this count as campaigns (default: the
    /// guard's `share_at`, where cluster policy starts).
    pub min_score: Option<f64>,
    /// Campaign accounts a value needs (default: `intel.min_campaign_accounts`).
    pub min_campaign_accounts: Option<u32>,
    /// The largest share of other accounts a value may have (default:
    /// `intel.max_benign_share`).
    pub max_benign_share: Option<f64>,
}

/// One value that linked an operation, hashed under the consortium key.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportedIndicator {
    /// The kind's name (`payment`, `device`, `ip24`, `template`, …).
    pub kind: String,
    /// `HMAC(K, "ringfence/v1/" ‖ kind ‖ 0x00 ‖ value)`.
    pub token: [u8; 32],
    /// The operation: an opaque id, random per guard, of the flagged cluster
    /// most of its sampled accounts belong to (not the cluster's own id,
    /// which is a hash of an account's name).
    pub campaign: u64,
    /// 0-100: the kind's link weight (at most 1) times the share of its
    /// accounts in flagged clusters times how far their score reaches
    /// towards `deny_at` (at most 1).
    pub confidence: u8,
    /// Estimated accounts of flagged clusters presenting it.
    pub campaign_accounts: f64,
    /// Accounts sampled, and the share of them in flagged clusters.
    pub sampled: usize,
    /// See `sampled`.
    pub flagged_share: f64,
    /// First and last presented (seconds on the guard's clock, to the minute).
    pub first_seen: f64,
    /// See `first_seen`.
    pub last_seen: f64,
}

/// The standing of one sampled account: its cluster and score, when the
/// cluster is flagged.
pub(crate) type Flagged = Option<(u64, f64)>;

/// Judges one remembered value: exported or not. `flagged` gives each
/// sampled account's flagged cluster, if any.
pub(crate) fn judge(
    e: &Entry,
    kind: &str,
    kind_weight: f64,
    flagged: impl Fn(u64) -> Flagged,
    min_accounts: u32,
    max_benign_share: f64,
    deny_at: f64,
) -> Option<ExportedIndicator> {
    let sampled = e.sampled();
    if sampled.is_empty() {
        return None;
    }
    let standing: Vec<Flagged> = sampled.iter().map(|&a| flagged(a)).collect();
    let hits: Vec<(u64, f64)> = standing.iter().flatten().copied().collect();
    let share = hits.len() as f64 / sampled.len() as f64;
    if 1.0 - share > max_benign_share + 1e-9 {
        return None;
    }
    // A full sample stands for all the value's accounts; a partial one is all of them.
    let campaign_accounts = if sampled.len() < super::store::SAMPLE {
        hits.len() as f64
    } else {
        share * f64::from(e.accounts).max(sampled.len() as f64)
    };
    if campaign_accounts < f64::from(min_accounts) {
        return None;
    }
    let mut clusters: Vec<u64> = hits.iter().map(|h| h.0).collect();
    clusters.sort_unstable();
    let campaign = clusters
        .chunk_by(|a, b| a == b)
        .max_by_key(|c| c.len())
        .map_or(0, |c| c[0]);
    let score = hits.iter().map(|h| h.1).sum::<f64>() / hits.len().max(1) as f64;
    let reach = if deny_at > 0.0 {
        (score / deny_at).min(1.0)
    } else {
        1.0
    };
    let confidence = (100.0 * kind_weight.clamp(0.0, 1.0) * share * reach).round() as u8;
    Some(ExportedIndicator {
        kind: kind.to_string(),
        token: e.token,
        campaign,
        confidence: confidence.min(100),
        campaign_accounts,
        sampled: sampled.len(),
        flagged_share: share,
        first_seen: f64::from(e.first) * 60.0,
        last_seen: f64::from(e.last) * 60.0 + 59.0,
    })
}
