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
    /// The account's own behaviour (`None` if it has none recorded).
    pub behaviour: Option<crate::crowd::Behaviour>,
    /// The crowd whose verdict applies to it, if any.
    pub crowd: Option<CrowdExplanation>,
}

/// The crowd whose verdict applies to an account: which value (or
/// behaviour class) gathers it, and how the crowd was judged.
#[derive(Clone, Debug, PartialEq)]
pub struct CrowdExplanation {
    /// The crowd's id (what verdicts give as the cluster id).
    pub id: u64,
    /// The kind of the value it shares (`payment_bin`, `system`, …), or
    /// `behaviour` for a behaviour class.
    pub kind: String,
    /// The value as presented (truncated) or described, where kept.
    pub value: String,
    /// How the crowd is judged now.
    pub judgement: crate::crowd::CrowdJudgement,
    /// The account's suspicion as a member of the crowd: its own counts
    /// read against the crowd's habits (at its last request of the minute).
    pub suspicion: f64,
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
        if let Some(b) = &self.behaviour {
            writeln!(
                f,
                "  behaves: suspicion {:.2} (elicits reasoning {:.2}, long answers {:.2}, busy {:.2} at {:.0} requests a day)",
                b.suspicion, b.elicitation, b.long_output, b.busy, b.per_day
            )?;
        }
        if let Some(c) = &self.crowd {
            let j = &c.judgement;
            writeln!(
                f,
                "  in the crowd behind {} {:?} (id {:016x}): ~{:.0} suspicious of ~{:.0} active accounts ({:.0} %), crowd score {:.2} (their elicitation {:.2}, long answers {:.2}, busy {:.2})",
                c.kind,
                c.value,
                c.id,
                j.members,
                j.accounts,
                100.0 * j.share,
                j.score,
                j.elicitation,
                j.long_output,
                j.busy
            )?;
            writeln!(
                f,
                "  the crowd's habits: {:.0} % of requests elicit reasoning, answers of {:.0} tokens; read against them, its suspicion as a member is {:.2}",
                100.0 * j.habit_elicitation,
                j.habit_output,
                c.suspicion
            )?;
        }
        write!(
            f,
            "  score {:.2}",
            self.signals.score.max(self.signals.crowd)
        )?;
        for (name, c) in &self.contributors {
            write!(f, "; {name} {c:.2}")?;
        }
        Ok(())
    }
}
