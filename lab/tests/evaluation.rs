//! The evaluation when the guard cannot track every account: accounts in no
//! cluster at the end (the core's cluster 0 of size 0) are each on their
//! own, never one shared cluster.

use ringfence::guard::GuardConfig;
use ringfence_lab::replay::{ReplayOptions, Replayer};
use ringfence_lab::sim::{simulate, Scenario};
use std::collections::HashSet;

#[test]
fn untracked_accounts_are_each_on_their_own() {
    let trace = simulate(&Scenario::builtin("default").unwrap().scaled(0.03));
    // Tables sized for a fifth of the accounts: some are evicted.
    let accounts: HashSet<&str> = trace.iter().map(|r| r.account.as_str()).collect();
    let config = GuardConfig::for_accounts(accounts.len() / 5);
    let mut replayer = Replayer::new(config, ReplayOptions::default());
    replayer.replay_records(&trace);
    let lines = replayer.accounts();
    let campaign: HashSet<&str> = trace
        .iter()
        .filter(|r| r.label.starts_with("campaign:"))
        .map(|r| r.account.as_str())
        .collect();
    let untracked = |campaign_side: bool| {
        lines
            .iter()
            .filter(|l| l.cluster_size == 0)
            .filter(|l| campaign.contains(l.account.as_str()) == campaign_side)
            .count() as u64
    };
    let (c, b) = (untracked(true), untracked(false));
    assert!(b > 0, "nothing untracked: the test needs a smaller guard");

    let e = replayer.report().evaluation.unwrap();
    let k = &e.clusters;
    assert_eq!(
        (k.untracked_campaign_accounts, k.untracked_benign_accounts),
        (c, b)
    );
    assert!(k.largest.iter().all(|cl| cl.size > 0), "{:?}", k.largest);
    // Linked pairs only come from real clusters: at most the pairs within
    // the tracked clusters holding campaign accounts.
    let tracked_pairs: u64 = k
        .largest
        .iter()
        .map(|cl| {
            let n = cl.campaign_accounts + cl.benign_accounts;
            n * (n - 1) / 2
        })
        .sum();
    if k.campaign_clusters as usize <= k.largest.len() + c as usize {
        assert!(k.linked_pairs <= tracked_pairs);
    }
    // Every campaign account is still counted in its operation.
    let per_op: u64 = e.campaign.operations.values().map(|o| o.accounts).sum();
    assert_eq!(per_op, campaign.len() as u64);
}
