//! Scoring a replay against the trace's labels: what each account and
//! operation went through, gathered request by request ([`Tally`]), and the
//! [`Evaluation`] made from it at the end (served shares, time to detection,
//! benign cohorts, and the clusters' pairwise precision and recall).

use super::report::{
    BenignEval, CampaignCluster, CampaignEval, ClusterEval, ClusterId, CohortEval, Detection,
    Evaluation, MixedInEval, OperationEval,
};
use super::timeline::Class;
use super::{AccountLine, TraceLine};
use std::collections::{BTreeMap, HashMap};

/// No cohort or operation (yet).
const NONE: u16 = u16::MAX;

/// The largest clusters holding campaign accounts that the report lists.
const LARGEST_CLUSTERS: usize = 20;

/// `a / b`, or 0 when `b` is 0.
fn share(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Unordered pairs among `n`.
fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// The index of `name` in `names`, added if new.
fn intern(names: &mut Vec<String>, name: &str) -> u16 {
    match names.iter().position(|n| n == name) {
        Some(i) => i as u16,
        None if names.len() < usize::from(NONE) - 1 => {
            names.push(name.to_string());
            (names.len() - 1) as u16
        }
        // More distinct names than anyone would label with: lump the rest.
        None => NONE - 1,
    }
}

/// What became of one request, as the tallies need it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outcome {
    /// The guard allowed it.
    pub(super) allowed: bool,
    /// The guard refused it for a reason other than the account's own limit.
    pub(super) policy_refused: bool,
    /// Its verdict showed a flagged cluster.
    pub(super) flagged: bool,
    /// The per-account-only baseline would have served it.
    pub(super) baseline: bool,
    /// The score its verdict carried (its cluster's).
    pub(super) score: f64,
}

/// One operation's requests.
#[derive(Default)]
struct OpStats {
    requests: u64,
    served: u64,
    baseline_served: u64,
    first_ts: f64,
    first_refused: Option<(u64, f64)>,
    first_flagged: Option<(u64, f64)>,
}

impl OpStats {
    fn record(&mut self, ts: f64, o: Outcome) {
        if self.requests == 0 {
            self.first_ts = ts;
        }
        if o.policy_refused && self.first_refused.is_none() {
            self.first_refused = Some((self.requests, ts - self.first_ts));
        }
        if o.flagged && self.first_flagged.is_none() {
            self.first_flagged = Some((self.requests, ts - self.first_ts));
        }
        self.requests += 1;
        self.served += u64::from(o.allowed);
        self.baseline_served += u64::from(o.baseline);
    }

    fn eval(&self) -> OperationEval {
        let point = |p: Option<(u64, f64)>| {
            p.map(|(before, secs)| Detection {
                requests_before: before,
                share_of_requests: share(before, self.requests),
                secs_after_first_request: secs,
            })
        };
        OperationEval {
            accounts: 0,
            accounts_flagged: 0,
            requests: self.requests,
            served: self.served,
            served_share: share(self.served, self.requests),
            baseline_served: self.baseline_served,
            baseline_served_share: share(self.baseline_served, self.requests),
            first_refused: point(self.first_refused),
            first_flagged: point(self.first_flagged),
        }
    }
}

/// What an account's labels say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role<'a> {
    /// In this operation.
    Campaign(&'a str),
    /// Benign, in this cohort.
    Benign(&'a str),
    /// Unlabelled.
    Unknown,
}

/// One account's requests.
pub(super) struct AccountStats {
    pub(super) name: Box<str>,
    cohort: u16,
    op: u16,
    labelled: bool,
    pub(super) requests: u64,
    pub(super) refused: u64,
    benign_requests: u64,
    benign_refused: u64,
    benign_refused_account: u64,
    flagged_ever: bool,
    /// The highest score its verdicts carried.
    max_score: f64,
}

impl AccountStats {
    fn new(name: &str) -> AccountStats {
        AccountStats {
            name: name.into(),
            cohort: NONE,
            op: NONE,
            labelled: false,
            requests: 0,
            refused: 0,
            benign_requests: 0,
            benign_refused: 0,
            benign_refused_account: 0,
            flagged_ever: false,
            max_score: 0.0,
        }
    }
}

/// Every account's and operation's requests, in order of first appearance.
#[derive(Default)]
pub(super) struct Tally {
    labelled: bool,
    index: HashMap<Box<str>, u32, ahash::RandomState>,
    accounts: Vec<AccountStats>,
    cohorts: Vec<String>,
    ops: Vec<String>,
    op_stats: Vec<OpStats>,
}

impl Tally {
    /// Whether any request had a label.
    pub(super) fn labelled(&self) -> bool {
        self.labelled
    }

    /// The accounts, in order of first appearance.
    pub(super) fn accounts(&self) -> &[AccountStats] {
        &self.accounts
    }

    fn account(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i as usize;
        }
        let i = self.accounts.len();
        self.index.insert(name.into(), i as u32);
        self.accounts.push(AccountStats::new(name));
        i
    }

    /// Counts one request; what its label says.
    pub(super) fn record(&mut self, t: &TraceLine<'_>, o: Outcome) -> Class {
        let i = self.account(&t.account);
        let a = &mut self.accounts[i];
        a.requests += 1;
        a.refused += u64::from(!o.allowed);
        a.flagged_ever |= o.flagged;
        if o.score > a.max_score {
            a.max_score = o.score;
        }
        if a.cohort == NONE {
            if let Some(c) = t.cohort.as_deref() {
                a.cohort = intern(&mut self.cohorts, c);
            }
        }
        let Some(label) = t.label.as_deref() else {
            return Class::Unlabelled;
        };
        self.labelled = true;
        a.labelled = true;
        if let Some(op) = label.strip_prefix("campaign:") {
            let op = intern(&mut self.ops, op);
            if a.op == NONE {
                a.op = op;
            }
            let op = usize::from(op);
            if self.op_stats.len() <= op {
                self.op_stats.resize_with(op + 1, OpStats::default);
            }
            self.op_stats[op].record(t.ts, o);
            Class::Campaign(op as u16)
        } else {
            a.benign_requests += 1;
            a.benign_refused += u64::from(o.policy_refused);
            a.benign_refused_account += u64::from(!o.allowed && !o.policy_refused);
            Class::Benign
        }
    }

    /// Operation `op`'s name.
    pub(super) fn op_name(&self, op: u16) -> &str {
        self.ops
            .get(usize::from(op))
            .map_or("(other)", String::as_str)
    }

    /// What `a`'s labels say it is: its operation (if any request of it
    /// was labelled `campaign:…`), or its cohort, or nothing without labels.
    pub(super) fn role(&self, a: &AccountStats) -> Role<'_> {
        if a.op != NONE {
            Role::Campaign(self.op_name(a.op))
        } else if a.labelled {
            Role::Benign(self.cohort_name(a))
        } else {
            Role::Unknown
        }
    }

    /// The account named `name`, if seen.
    pub(super) fn find(&self, name: &str) -> Option<&AccountStats> {
        self.index.get(name).map(|&i| &self.accounts[i as usize])
    }

    fn cohort_name(&self, a: &AccountStats) -> &str {
        if a.cohort == NONE {
            "(none)"
        } else {
            self.cohorts
                .get(usize::from(a.cohort))
                .map_or("(other)", String::as_str)
        }
    }

    /// The evaluation, given every account as it stands at the end (`lines`,
    /// in the order of [`Tally::accounts`]).
    pub(super) fn evaluate(&self, lines: &[AccountLine]) -> Evaluation {
        let s0 = OpStats::default();
        let per_op = (0..self.ops.len())
            .map(|i| self.op_stats.get(i).unwrap_or(&s0).eval())
            .collect();
        let mut sums = Sums::new(per_op);
        for (i, (a, line)) in self.accounts.iter().zip(lines).enumerate() {
            if !a.labelled {
                continue;
            }
            if line.cluster_size == 0 {
                // In no cluster at the end (evicted from the guard's tables,
                // or its evidence expired): on its own, not in a cluster 0.
                if a.op != NONE {
                    sums.untracked_ops[usize::from(a.op)] += 1;
                    sums.add_campaign(a, line);
                } else {
                    sums.untracked_benign += 1;
                    sums.add_benign(a, line, self.cohort_name(a));
                }
                continue;
            }
            let t = sums.cluster(line, self.ops.len());
            if a.op != NONE {
                t.ops[usize::from(a.op)] += 1;
                t.sample.get_or_insert(i);
                sums.add_campaign(a, line);
            } else {
                t.benign += 1;
                sums.add_benign(a, line, self.cohort_name(a));
            }
        }
        sums.finish();
        Evaluation {
            clusters: self.cluster_eval(&sums.clusters, &sums.untracked_ops, sums.untracked_benign),
            campaign: self.campaign_eval(
                sums.per_op,
                sums.campaign_accounts,
                sums.campaign_flagged,
            ),
            benign: sums.benign,
            benign_cohorts: sums.cohorts,
            campaign_genuine_traffic: sums.mixed,
        }
    }

    fn campaign_eval(
        &self,
        per_op: Vec<OperationEval>,
        accounts: u64,
        flagged: u64,
    ) -> CampaignEval {
        let requests: u64 = per_op.iter().map(|o| o.requests).sum();
        let served: u64 = per_op.iter().map(|o| o.served).sum();
        let baseline_served: u64 = per_op.iter().map(|o| o.baseline_served).sum();
        CampaignEval {
            requests,
            served,
            served_share: share(served, requests),
            baseline_served,
            baseline_served_share: share(baseline_served, requests),
            accounts,
            accounts_flagged: flagged,
            accounts_flagged_share: share(flagged, accounts),
            operations: self.ops.iter().cloned().zip(per_op).collect(),
        }
    }

    /// Pairwise precision and recall, over pairs with a campaign account,
    /// and the largest clusters holding campaign accounts.
    fn cluster_eval(
        &self,
        clusters: &HashMap<ClusterId, ClusterTally, ahash::RandomState>,
        untracked_ops: &[u64],
        untracked_benign: u64,
    ) -> ClusterEval {
        // Untracked campaign accounts are each on their own: in no linked
        // pair, but in their operation's pairs.
        let mut op_totals = untracked_ops.to_vec();
        let untracked_campaign: u64 = untracked_ops.iter().sum();
        let (mut same_cluster, mut correct) = (0u64, 0u64);
        let mut found = Vec::new();
        for (id, t) in clusters {
            let campaign: u64 = t.ops.iter().sum();
            if campaign == 0 {
                continue;
            }
            same_cluster += pairs(campaign + t.benign) - pairs(t.benign);
            for (op, n) in t.ops.iter().enumerate() {
                correct += pairs(*n);
                op_totals[op] += n;
            }
            found.push(self.campaign_cluster(*id, t, campaign));
        }
        let true_pairs: u64 = op_totals.iter().map(|n| pairs(*n)).sum();
        found.sort_by(|a, b| {
            b.campaign_accounts
                .cmp(&a.campaign_accounts)
                .then(b.size.cmp(&a.size))
                .then(a.cluster.cmp(&b.cluster))
        });
        let campaign_clusters = found.len() as u64 + untracked_campaign;
        found.truncate(LARGEST_CLUSTERS);
        ClusterEval {
            pairwise_precision: (same_cluster != 0).then(|| share(correct, same_cluster)),
            pairwise_recall: (true_pairs != 0).then(|| share(correct, true_pairs)),
            same_operation_pairs: true_pairs,
            linked_pairs: same_cluster,
            correct_pairs: correct,
            campaign_clusters,
            largest: found,
            untracked_campaign_accounts: untracked_campaign,
            untracked_benign_accounts: untracked_benign,
        }
    }

    fn campaign_cluster(&self, id: ClusterId, t: &ClusterTally, campaign: u64) -> CampaignCluster {
        let (major, count) = t
            .ops
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
            .map_or((0, 0), |(i, n)| (i, *n));
        CampaignCluster {
            cluster: id,
            size: t.size,
            campaign_accounts: campaign,
            benign_accounts: t.benign,
            operation: self.ops.get(major).cloned().unwrap_or_default(),
            operation_accounts: count,
            score: t.score,
            flagged: t.flagged,
            sample_account: t
                .sample
                .and_then(|i| self.accounts.get(i))
                .map(|a| a.name.to_string())
                .unwrap_or_default(),
        }
    }
}

/// One cluster's labelled accounts: of each operation, benign, and one
/// campaign member to explain it by.
struct ClusterTally {
    size: u32,
    score: f64,
    flagged: bool,
    ops: Vec<u64>,
    benign: u64,
    sample: Option<usize>,
}

/// The per-account sums of an evaluation.
struct Sums {
    per_op: Vec<OperationEval>,
    cohorts: BTreeMap<String, CohortEval>,
    benign: BenignEval,
    mixed: MixedInEval,
    campaign_accounts: u64,
    campaign_flagged: u64,
    clusters: HashMap<ClusterId, ClusterTally, ahash::RandomState>,
    /// Accounts in no cluster at the end: campaign ones per operation, benign.
    untracked_ops: Vec<u64>,
    untracked_benign: u64,
}

impl Sums {
    fn new(per_op: Vec<OperationEval>) -> Sums {
        Sums {
            untracked_ops: vec![0; per_op.len()],
            untracked_benign: 0,
            per_op,
            cohorts: BTreeMap::new(),
            benign: BenignEval::default(),
            mixed: MixedInEval::default(),
            campaign_accounts: 0,
            campaign_flagged: 0,
            clusters: HashMap::default(),
        }
    }

    /// The tally of `line`'s cluster.
    fn cluster(&mut self, line: &AccountLine, n_ops: usize) -> &mut ClusterTally {
        self.clusters
            .entry(line.cluster)
            .or_insert_with(|| ClusterTally {
                size: line.cluster_size,
                score: line.score,
                flagged: line.flagged,
                ops: vec![0; n_ops],
                benign: 0,
                sample: None,
            })
    }

    fn add_campaign(&mut self, a: &AccountStats, line: &AccountLine) {
        let op = &mut self.per_op[usize::from(a.op)];
        self.campaign_accounts += 1;
        self.campaign_flagged += u64::from(line.flagged);
        op.accounts += 1;
        op.accounts_flagged += u64::from(line.flagged);
        self.mixed.requests += a.benign_requests;
        self.mixed.refused += a.benign_refused + a.benign_refused_account;
    }

    fn add_benign(&mut self, a: &AccountStats, line: &AccountLine, cohort: &str) {
        let b = &mut self.benign;
        b.accounts += 1;
        b.accounts_flagged += u64::from(line.flagged);
        b.accounts_flagged_ever += u64::from(a.flagged_ever);
        b.requests += a.benign_requests;
        b.refused += a.benign_refused;
        b.refused_account_limit += a.benign_refused_account;
        if a.max_score > b.max_verdict_score || b.max_verdict_score_account.is_none() {
            b.max_verdict_score = a.max_score;
            b.max_verdict_score_account = Some(a.name.to_string());
            b.max_verdict_score_cohort = Some(cohort.to_string());
        }
        let e = self.cohorts.entry(cohort.to_string()).or_default();
        e.accounts += 1;
        e.flagged += u64::from(line.flagged);
        e.flagged_ever += u64::from(a.flagged_ever);
        e.requests += a.benign_requests;
        e.refused += a.benign_refused;
        e.refused_account_limit += a.benign_refused_account;
        e.max_verdict_score = e.max_verdict_score.max(a.max_score);
    }

    /// Fills in the shares.
    fn finish(&mut self) {
        for e in self.cohorts.values_mut() {
            e.flagged_share = share(e.flagged, e.accounts);
            e.refused_share = share(e.refused, e.requests);
        }
        let b = &mut self.benign;
        b.refused_share = share(b.refused, b.requests);
        b.accounts_flagged_share = share(b.accounts_flagged, b.accounts);
        self.mixed.refused_share = share(self.mixed.refused, self.mixed.requests);
    }
}
