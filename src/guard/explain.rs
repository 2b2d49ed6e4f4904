//! Why an account's requests are treated as they are.

use super::Guard;
use crate::intel::IndicatorMatch;
use crate::link::ClusterView;
use crate::score::Signals;
use std::fmt;

impl Guard {
    /// Why `account` is treated as it is: its cluster, what links it, and
    /// the signals behind its cluster's score. `None` for an unknown account.
    pub fn explain(&self, account: &str) -> Option<Explanation> {
        self.flush();
        let now = self.now();
        let cluster = self.ev.linker.cluster_of(account)?;
        let members = self.ev.linker.members_of(account, 20);
        let mut signals = self
            .ev
            .scorer
            .signals_of(cluster.id, now)
            .unwrap_or_default();
        let crowd = self.crowd_of(account, now);
        let mut contributors = signals.contributors(self.ev.scorer.config());
        let mut explained_crowd = None;
        if let Some(v) = crowd {
            signals.suspicion = v.suspicion;
            signals.crowd = v.score;
            if v.score > signals.score {
                contributors = crate::score::Contributors::crowd(v.score).to_vec();
            }
            explained_crowd = self.ev.crowds.judgement(v.crowd, now).map(|judgement| {
                let behaviour = crate::link::tag_kind(v.crowd) == crate::crowd::BEHAVIOUR_KIND;
                CrowdExplanation {
                    id: v.crowd,
                    kind: if behaviour {
                        "behaviour".to_string()
                    } else {
                        self.ev.linker.kind_name(v.crowd).to_string()
                    },
                    value: if behaviour {
                        "accounts alike in elicitation, answer length, pace and prompt length"
                            .to_string()
                    } else {
                        self.ev.linker.display_of(v.crowd).unwrap_or_default()
                    },
                    judgement,
                    suspicion: v.suspicion,
                }
            });
        }
        Some(Explanation {
            account: account.to_string(),
            cluster,
            members,
            shared: self.ev.linker.evidence(account),
            contributors,
            signals,
            behaviour: crowd.map(|v| v.behaviour),
            crowd: explained_crowd,
            indicator: self.indicator_of(account),
        })
    }
}

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
    /// The imported indicator (another provider's) it presented, while
    /// that stands: its requests carry `shared_indicator`.
    pub indicator: Option<IndicatorMatch>,
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
        if let Some(m) = &self.indicator {
            writeln!(
                f,
                "  shared_indicator: presents a {} value of indicator {} from {}{} (weight {:.2}): its requests share the campaign's budget",
                m.kind,
                m.id,
                m.producer_name.as_deref().unwrap_or(&m.producer),
                if m.producer_name.is_some() {
                    format!(" ({})", m.producer)
                } else {
                    String::new()
                },
                m.weight
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
