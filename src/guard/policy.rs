//! The policy: what a cluster's score does to its requests. One pure
//! function, used by [`Guard::check`](super::Guard::check) and by the lab's
//! evaluation alike, so "flagged" means one thing.

use super::GuardConfig;

/// What cluster policy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterAction {
    /// Nothing: the account's own limits only.
    None,
    /// The cluster shares one budget (`cluster_requests_per_minute`).
    Share,
    /// The cluster's requests are denied (`suspected_distillation`); in
    /// shadow mode the shared budget is still evaluated and reported.
    Deny,
}

/// The policy for a request of a cluster of `cluster_size` accounts scoring
/// `score`: nothing below `min_cluster_size` accounts or for an `exempt`
/// (allow-listed) account, otherwise [`ClusterAction::Deny`] at `deny_at`
/// and above, [`ClusterAction::Share`] at `share_at` and above.
///
/// ```
/// use ringfence::guard::{cluster_action, ClusterAction, GuardConfig};
/// let c = GuardConfig::for_accounts(1_000); // share_at 0.4, deny_at 0.5, 3 accounts
/// assert_eq!(cluster_action(&c, 10, false, 0.45), ClusterAction::Share);
/// assert_eq!(cluster_action(&c, 10, false, 0.9), ClusterAction::Deny);
/// assert_eq!(cluster_action(&c, 2, false, 0.9), ClusterAction::None);
/// assert_eq!(cluster_action(&c, 10, true, 0.9), ClusterAction::None);
/// ```
pub fn cluster_action(
    config: &GuardConfig,
    cluster_size: u32,
    exempt: bool,
    score: f64,
) -> ClusterAction {
    if exempt || cluster_size < config.min_cluster_size {
        ClusterAction::None
    } else if score >= config.deny_at {
        ClusterAction::Deny
    } else if score >= config.share_at {
        ClusterAction::Share
    } else {
        ClusterAction::None
    }
}
