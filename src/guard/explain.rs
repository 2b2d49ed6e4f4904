//! Why an account's requests are treated as they are.

use crate::link::ClusterView;
use crate::score::Signals;
use std::fmt;

/// Why an account's requests are treated as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The account.
    pub account: String,
    /// Its cluster.
    pub cluster: ClusterView,
    /// Up to 20 other members of the cluster.
    pub members: Vec<String>,
    /// The fingerprint values that link it, with how many accounts share
    /// each and the weight that gives them, strongest first.
    pub shared: Vec<crate::link::SharedValue>,
    /// The cluster's signals and score.
    pub signals: Signals,
    /// The signals that contribute most to the score.
    pub contributors: Vec<(&'static str, f64)>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "account {} is in cluster {:016x} of {} accounts",
            self.account, self.cluster.id, self.cluster.size
        )?;
        if !self.members.is_empty() {
            writeln!(f, "  with: {}", self.members.join(", "))?;
        }
        for v in self.shared.iter().take(10) {
            writeln!(
                f,
                "  shares {} {:?} with ~{:.0} accounts (weight {:.2})",
                v.kind, v.value, v.accounts, v.weight
            )?;
        }
        write!(f, "  score {:.2}", self.signals.score)?;
        for (name, c) in &self.contributors {
            write!(f, "; {name} {c:.2}")?;
        }
        Ok(())
    }
}
