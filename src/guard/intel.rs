//! The guard's side of shared intelligence (see [`crate::intel`]).

use super::{cluster_action, ClusterAction, Guard};
use crate::intel::{
    ExportOptions, ExportedIndicator, ImportIndicator, ImportReport, IndicatorMatch, IntelError,
    IntelStats, MatchedIndicator,
};

impl Guard {
    fn intel_or_err(&self) -> Result<&crate::intel::Intel, IntelError> {
        self.intel.as_deref().ok_or_else(|| {
            IntelError::new("this guard has no consortium key (set `[intel] key_file`)")
        })
    }

    /// The consortium key's fingerprint (32 hex digits), if one is configured.
    pub fn intel_key_id(&self) -> Option<String> {
        self.intel.as_ref().map(|i| i.key.key_id_hex())
    }

    /// The values that linked the flagged clusters, hashed under the
    /// consortium key, for sharing with other providers: only values that
    /// at least `min_campaign_accounts` accounts of flagged clusters present,
    /// with at most `max_benign_share` of their sampled accounts elsewhere
    /// (see [`crate::intel`]). Sorted by campaign, then confidence.
    pub fn export_indicators(
        &self,
        options: &ExportOptions,
    ) -> Result<Vec<ExportedIndicator>, IntelError> {
        let intel = self.intel_or_err()?;
        self.flush();
        let c = &self.config;
        let min_score = options.min_score.unwrap_or(c.share_at);
        let k = options
            .min_campaign_accounts
            .unwrap_or(c.intel.min_campaign_accounts);
        let benign = options.max_benign_share.unwrap_or(c.intel.max_benign_share);
        if !(0.0..=1.0).contains(&min_score) || !(0.0..=1.0).contains(&benign) {
            return Err(IntelError::new(
                "min_score and max_benign_share must be between 0 and 1",
            ));
        }
        let now = self.now();
        let flagged = |account: u64| {
            if self.allowed.contains(&account) {
                return None;
            }
            let f = self.ev.standing(account, now);
            let (cluster, score) = f.judged();
            let action = cluster_action(c, cluster.size, false, score);
            (action != ClusterAction::None && score >= min_score).then_some((cluster.id, score))
        };
        let linker = &self.ev.linker;
        let mut out: Vec<ExportedIndicator> = intel
            .entries()
            .iter()
            .filter_map(|e| {
                let kind = linker.kind_name_of(e.kind);
                let weight = linker.kind_weight(kind);
                let mut found =
                    crate::intel::export::judge(e, kind, weight, flagged, k, benign, c.deny_at)?;
                found.campaign = xxhash_rust::xxh3::xxh3_64_with_seed(
                    &found.campaign.to_le_bytes(),
                    intel.campaign_salt,
                );
                Some(found)
            })
            .collect();
        out.sort_by(|a, b| {
            (a.campaign, b.confidence, a.token).cmp(&(b.campaign, a.confidence, b.token))
        });
        Ok(out)
    }

    /// Imports another provider's indicators (all or none): an account
    /// presenting one of their values is marked until it expires, its
    /// requests carry [`Reason::SharedIndicator`](super::Reason::SharedIndicator)
    /// and share the campaign's budget. Later versions replace earlier
    /// ones; a revocation by the creator removes one at once.
    pub fn import_indicators(
        &self,
        indicators: &[ImportIndicator],
    ) -> Result<ImportReport, IntelError> {
        let intel = self.intel_or_err()?;
        let linker = &self.ev.linker;
        let kind_of = |name: &str| linker.kind_index(name);
        intel.import(
            indicators,
            &kind_of,
            self.config.link.horizon_secs,
            self.now(),
        )
    }

    /// Imported indicators that matched, with how many requests of marked
    /// accounts each counted: what a sighting reports (no account names).
    pub fn matched_indicators(&self) -> Vec<MatchedIndicator> {
        self.intel.as_ref().map_or_else(Vec::new, |i| i.matched())
    }

    /// The imported indicator an account is marked by, if any.
    pub fn indicator_of(&self, account: &str) -> Option<IndicatorMatch> {
        let i = self.intel.as_ref()?;
        i.explain(self.ev.linker.account_hash(account), self.now())
    }

    /// How full the intelligence tables are (all zero without a key).
    pub fn intel_stats(&self) -> IntelStats {
        self.intel.as_ref().map(|i| i.stats()).unwrap_or_default()
    }
}
