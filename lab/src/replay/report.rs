//! The report: what a replay did and how well, as the `--report` file holds
//! it, and the cluster id every output writes the same way.

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A cluster id, written as 16 hex digits (as `explain` prints it): JSON
/// numbers above 2^53 do not survive every reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u64);

impl Serialize for ClusterId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:016x}", self.0))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The process's peak resident memory (`VmHWM` on Linux), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What a replay did, and how well, as the `--report` file holds it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Lines read (blank and malformed ones included).
    pub lines: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Malformed lines skipped (`--skip-bad`).
    pub bad_lines: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Lines whose `ts` is earlier than an earlier line's (replayed at the
    /// latest time seen).
    pub out_of_order: u64,
    /// Distinct accounts.
    pub accounts: u64,
    /// Seconds from the first line's `ts` to the latest.
    pub trace_secs: f64,
    /// Requests allowed.
    pub allowed: u64,
    /// Requests throttled.
    pub throttled: u64,
    /// Requests denied.
    pub denied: u64,
    /// Verdicts giving each reason (a verdict may give several).
    pub reasons: BTreeMap<String, u64>,
    /// Requests the per-account-only baseline would have refused.
    pub baseline_refused: u64,
    /// Seconds spent replaying (reading and parsing included).
    pub wall_secs: f64,
    /// Requests replayed per second of `wall_secs`.
    pub requests_per_sec: f64,
    /// The process's peak resident memory in bytes (Linux `VmHWM`); `null`
    /// where unknown.
    pub peak_memory_bytes: Option<u64>,
    /// The settings that decide what "flagged" and "refused" mean.
    pub settings: Settings,
    /// The evaluation against the trace's labels; `null` without labels.
    pub evaluation: Option<Evaluation>,
}

/// The settings a report was made with.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Settings {
    /// The per-account quota (also the baseline's).
    pub account_requests_per_minute: u64,
    /// Clusters scoring this much (and at least `min_cluster_size`) are flagged.
    pub share_at: f64,
    /// Clusters scoring this much are denied.
    pub deny_at: f64,
    /// Smallest cluster that cluster policy applies to.
    pub min_cluster_size: u32,
    /// Output tokens reserved per request before its verdict.
    pub max_tokens: u32,
}

/// The evaluation against the labels.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    /// Requests labelled `campaign:<operation>`, and their accounts.
    pub campaign: CampaignEval,
    /// Accounts with no campaign-labelled request, and their requests.
    pub benign: BenignEval,
    /// The same, per cohort (`cohort` field).
    pub benign_cohorts: BTreeMap<String, CohortEval>,
    /// Requests labelled `benign` from campaign accounts (the genuine
    /// customers a reseller mixes in).
    pub campaign_genuine_traffic: MixedInEval,
    /// How well the clusters match the operations.
    pub clusters: ClusterEval,
}

/// The campaign's requests and accounts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignEval {
    /// Campaign requests.
    pub requests: u64,
    /// Of which served.
    pub served: u64,
    /// `served / requests`.
    pub served_share: f64,
    /// Of which the per-account-only baseline would have served.
    pub baseline_served: u64,
    /// `baseline_served / requests`.
    pub baseline_served_share: f64,
    /// Campaign accounts (with at least one campaign-labelled request).
    pub accounts: u64,
    /// Of which flagged at the end of the replay.
    pub accounts_flagged: u64,
    /// `accounts_flagged / accounts`.
    pub accounts_flagged_share: f64,
    /// The same per operation, by name.
    pub operations: BTreeMap<String, OperationEval>,
}

/// One operation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OperationEval {
    /// Its accounts.
    pub accounts: u64,
    /// Of which flagged at the end.
    pub accounts_flagged: u64,
    /// Its requests.
    pub requests: u64,
    /// Of which served.
    pub served: u64,
    /// `served / requests`.
    pub served_share: f64,
    /// Of which the baseline would have served.
    pub baseline_served: u64,
    /// `baseline_served / requests`.
    pub baseline_served_share: f64,
    /// Its first request refused for a reason other than `account_limit`;
    /// `null` if none was.
    pub first_refused: Option<Detection>,
    /// Its first request whose verdict showed a flagged cluster; `null` if none.
    pub first_flagged: Option<Detection>,
}

/// How far into an operation's traffic something first happened.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Detection {
    /// The operation's requests before it.
    pub requests_before: u64,
    /// `requests_before` as a share of the operation's requests.
    pub share_of_requests: f64,
    /// Seconds after the operation's first request.
    pub secs_after_first_request: f64,
}

/// Benign accounts (those with no campaign-labelled request).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct BenignEval {
    /// Benign accounts.
    pub accounts: u64,
    /// Of which flagged at the end of the replay.
    pub accounts_flagged: u64,
    /// `accounts_flagged / accounts`.
    pub accounts_flagged_share: f64,
    /// Of which flagged by some verdict during the replay.
    pub accounts_flagged_ever: u64,
    /// Their requests.
    pub requests: u64,
    /// Of which refused for a reason other than `account_limit`.
    pub refused: u64,
    /// `refused / requests`.
    pub refused_share: f64,
    /// Of which refused by their own account's limit only.
    pub refused_account_limit: u64,
    /// The highest score any verdict on a benign account carried during the
    /// replay (0 without benign accounts).
    pub max_verdict_score: f64,
    /// The benign account whose verdict carried it (the first to reach it);
    /// `null` without benign accounts.
    pub max_verdict_score_account: Option<String>,
    /// That account's cohort.
    pub max_verdict_score_cohort: Option<String>,
}

/// One benign cohort.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct CohortEval {
    /// Accounts.
    pub accounts: u64,
    /// Of which flagged at the end.
    pub flagged: u64,
    /// `flagged / accounts`.
    pub flagged_share: f64,
    /// Of which flagged by some verdict during the replay.
    pub flagged_ever: u64,
    /// Requests.
    pub requests: u64,
    /// Of which refused for a reason other than `account_limit`.
    pub refused: u64,
    /// `refused / requests`.
    pub refused_share: f64,
    /// Of which refused by their own account's limit only.
    pub refused_account_limit: u64,
    /// The highest score any verdict on its accounts carried during the replay.
    pub max_verdict_score: f64,
}

/// Genuine (benign-labelled) requests of campaign accounts.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct MixedInEval {
    /// Requests.
    pub requests: u64,
    /// Of which refused, for any reason.
    pub refused: u64,
    /// `refused / requests`.
    pub refused_share: f64,
}

/// The clusters against the operations, over pairs of accounts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ClusterEval {
    /// Of the linked pairs, the share in the same operation; `null` when
    /// no pair is linked.
    pub pairwise_precision: Option<f64>,
    /// Of the same-operation pairs, the share linked; `null` when no
    /// operation has two accounts.
    pub pairwise_recall: Option<f64>,
    /// Pairs of campaign accounts in the same operation.
    pub same_operation_pairs: u64,
    /// Pairs of accounts in one cluster, at least one of them a campaign account.
    pub linked_pairs: u64,
    /// Pairs both linked and in the same operation.
    pub correct_pairs: u64,
    /// Clusters holding at least one campaign account (an untracked
    /// campaign account counts as a cluster of its own).
    pub campaign_clusters: u64,
    /// The largest of them (by campaign accounts), at most 20.
    pub largest: Vec<CampaignCluster>,
    /// Campaign accounts in no cluster at the end (evicted from the guard's
    /// tables, or their evidence expired): each counted as on its own.
    pub untracked_campaign_accounts: u64,
    /// Benign accounts in no cluster at the end.
    pub untracked_benign_accounts: u64,
}

/// A cluster holding campaign accounts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignCluster {
    /// Its id.
    pub cluster: ClusterId,
    /// Its size, as the guard counts it.
    pub size: u32,
    /// Campaign accounts in it.
    pub campaign_accounts: u64,
    /// Benign accounts in it.
    pub benign_accounts: u64,
    /// The operation most of its campaign accounts belong to.
    pub operation: String,
    /// How many of them do.
    pub operation_accounts: u64,
    /// Its score at the end.
    pub score: f64,
    /// Whether it is flagged.
    pub flagged: bool,
    /// A campaign account in it, to `explain`.
    pub sample_account: String,
}
