//! What the guard knows of accounts: linking, scoring and crowds, shared
//! between the request threads and the observer threads (`observer.rs`).

use crate::crowd::{CrowdVerdict, Crowds};
use crate::link::{ClusterView, Linker};
use crate::request::{Request, TextDigest};
use crate::score::{Activity, Scorer, Signals};

/// The linker, the scorer and the crowds (see the module docs).
pub(crate) struct Evidence {
    pub linker: Linker,
    pub scorer: Scorer,
    pub crowds: Crowds,
    /// Suspicion at which an account is kept like a linked one (`crowd.suspicious_at`).
    pub suspicious_at: f64,
}

/// What recording a request found, or an account's standing: what a
/// verdict is decided on.
pub(crate) struct Finding {
    /// The account's linked cluster.
    pub cluster: ClusterView,
    /// The account's linker cell, if it is tracked.
    pub cell: Option<u32>,
    /// The cluster's signals, with the crowds' suspicion and score.
    pub signals: Signals,
    /// What the crowds say of the account.
    pub crowd: CrowdVerdict,
}

impl Finding {
    /// What policy judges: the account's strongest crowd stands in for its
    /// cluster when it scores higher (its members share the crowd's budget).
    pub fn judged(&self) -> (ClusterView, f64) {
        if self.crowd.score > self.signals.score {
            (self.crowd.cluster(), self.crowd.score)
        } else {
            (self.cluster, self.signals.score)
        }
    }
}

impl Evidence {
    /// Records a request of the account with hash `hash`: links it, scores
    /// its cluster and judges its crowds.
    /// With `pre`, its texts are given digested (another node's request).
    pub fn record(
        &self,
        req: &Request<'_>,
        hash: u64,
        now: f64,
        pre: Option<&TextDigest>,
    ) -> Finding {
        let seen = self.linker.observe_with_hash(req, hash, now, pre);
        let cot = match pre {
            Some(d) => d.cot,
            None => req.prompt.is_some_and(|p| self.scorer.is_cot(p)),
        };
        let activity = |cluster: ClusterView| Activity {
            cluster: cluster.id,
            cluster_size: cluster.size,
            account: seen.account,
            prompt: req.prompt,
            cot,
            template_shared: seen.template_shared,
            prompt_key: seen.prompt_key,
            model: req.model,
            input_tokens: req.input_tokens,
            now,
        };
        let mut cluster = seen.cluster;
        let mut signals = self.scorer.record(&activity(cluster));
        // An account marked by an imported indicator is also scored with
        // the campaign's other accounts here; the stronger standing counts.
        let marked = self
            .linker
            .intel
            .as_ref()
            .and_then(|i| i.campaign_of(hash, now));
        if let Some(group) = self.campaign_from(marked, seen.cluster) {
            let theirs = self.scorer.record(&activity(group));
            if theirs.score > signals.score {
                (cluster, signals) = (group, theirs);
            }
        }
        let crowd = self
            .crowds
            .observe(&seen, now, cot, req.input_tokens, marked.is_some());
        if let Some(cell) = seen.cell {
            if crowd.suspicion >= self.suspicious_at {
                self.linker.mark_suspect(cell);
            }
        }
        signals.suspicion = crowd.suspicion;
        signals.crowd = crowd.score;
        Finding {
            cluster,
            cell: seen.cell,
            signals,
            crowd,
        }
    }

    /// For an account marked by an imported indicator, the indicator's
    /// campaign as a cluster, when it has more accounts here than the
    /// account's linked cluster: an operation's accounts that share nothing
    /// here are scored together, on their behaviour here.
    fn campaign(&self, linked: ClusterView, hash: u64, now: f64) -> Option<ClusterView> {
        self.campaign_from(self.linker.intel.as_ref()?.campaign_of(hash, now), linked)
    }

    /// The campaign an account is marked for (see [`crate::intel`]) as a
    /// cluster, when it is larger than `linked`.
    fn campaign_from(
        &self,
        marked: Option<(u64, u32)>,
        linked: ClusterView,
    ) -> Option<ClusterView> {
        match marked {
            Some((id, size)) if size > linked.size => Some(ClusterView { id: id | 1, size }),
            _ => None,
        }
    }

    /// The standing of the account with hash `hash`, recording nothing:
    /// its cluster as linked now and that cluster's signals now, its crowd
    /// as judged now and its behaviour as of its last recorded request. An
    /// account not yet recorded stands alone, with nothing against it.
    pub fn standing(&self, hash: u64, now: f64) -> Finding {
        let Some((cell, linked)) = self
            .linker
            .standing_of(hash, |cell| self.crowds.prefetch(cell))
        else {
            return Finding {
                cluster: ClusterView { id: hash, size: 1 },
                cell: None,
                signals: Signals::default(),
                crowd: CrowdVerdict::default(),
            };
        };
        let scored = |c: ClusterView| {
            if c.size >= self.scorer.config().min_scored_size {
                self.scorer.signals_of(c.id, now).unwrap_or_default()
            } else {
                Signals::default()
            }
        };
        let (mut cluster, mut signals) = (linked, scored(linked));
        if let Some(group) = self.campaign(linked, hash, now) {
            let theirs = scored(group);
            if theirs.score > signals.score {
                (cluster, signals) = (group, theirs);
            }
        }
        let crowd = self.crowds.of(cell, hash, now).unwrap_or_default();
        signals.suspicion = crowd.suspicion;
        signals.crowd = crowd.score;
        Finding {
            cluster,
            cell: Some(cell),
            signals,
            crowd,
        }
    }
}
