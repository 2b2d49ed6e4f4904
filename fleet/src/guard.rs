//! [`FleetGuard`]: a guard whose quotas hold across the fleet.

use crate::config::FleetConfig;
use crate::limits::{GlobalLimits, SystemWallClock};
use crate::redis_store::RedisStore;
use crate::store::{MemoryStore, QuotaStore, Rule};
use ringfence::guard::{Guard, GuardConfig, Reason, Request, Verdict};
use std::sync::Arc;
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The fleet's hash of a quota's key: its kind (`b'a'` account, `b'c'`
/// cluster, `b'f'` fingerprint value) and its bytes. Raw accounts and
/// values never reach the store, only these hashes.
pub fn key_hash(kind: u8, bytes: &[u8]) -> u64 {
    xxh3_64_with_seed(bytes, 0x7269_6e67_666c_6565 ^ u64::from(kind))
}

/// The fleet-wide quotas of a guard's configuration (its account, cluster
/// and fingerprint request quotas) over [`GlobalLimits`], applied after
/// the guard's own verdict: the guard decides first (its own limits are
/// per node, so never looser than the fleet's), then each quota that
/// applies is admitted fleet-wide. A refusal by the fleet is a throttle
/// with the quota's reason (`account_limit`, `cluster_limit`,
/// `fingerprint_limit`), and the guard's token reservation is returned.
///
/// Token quotas stay per node, and each node links and scores what it
/// sees: a cluster's quota is fleet-wide once the nodes know the cluster
/// by the same id.
pub struct FleetLimits {
    limits: GlobalLimits,
    account: Rule,
    cluster: Rule,
    fingerprints: Vec<(String, Rule)>,
}

impl FleetLimits {
    /// The quotas of `config`, kept by `limits`.
    pub fn new(config: &GuardConfig, limits: GlobalLimits) -> FleetLimits {
        FleetLimits {
            account: Rule::per_minute(config.account_requests_per_minute),
            cluster: Rule::per_minute(config.cluster_requests_per_minute),
            fingerprints: config
                .fingerprint_requests_per_minute
                .iter()
                .map(|(k, &n)| (k.clone(), Rule::per_minute(n)))
                .collect(),
            limits,
        }
    }

    /// The limits underneath.
    pub fn limits(&self) -> &GlobalLimits {
        &self.limits
    }

    /// Applies the fleet's quotas to `verdict`, `guard`'s verdict on `req`.
    pub fn apply(&self, guard: &Guard, req: &Request<'_>, verdict: &mut Verdict) {
        if !verdict.allowed() {
            return;
        }
        let a = self
            .limits
            .admit(key_hash(b'a', req.account.as_bytes()), self.account);
        if !a.allowed() {
            guard.refuse(verdict, Reason::AccountLimit, a.retry_after());
            return;
        }
        // The cluster's budget, where the guard's policy gave it one (the
        // guard names the cluster's policy among the reasons).
        let cluster = verdict.cluster;
        if cluster.id != 0 && verdict.reasons.contains(&Reason::SuspectedDistillation) {
            let a = self
                .limits
                .admit(key_hash(b'c', &cluster.id.to_le_bytes()), self.cluster);
            if !a.allowed() {
                guard.refuse(verdict, Reason::ClusterLimit, a.retry_after());
                return;
            }
        }
        for &(kind, value) in req.fingerprints {
            if value.is_empty() {
                continue;
            }
            let Some((_, rule)) = self.fingerprints.iter().find(|(k, _)| k == kind) else {
                continue;
            };
            let mut bytes = Vec::with_capacity(kind.len() + 1 + value.len());
            bytes.extend_from_slice(kind.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(value.as_bytes());
            let a = self.limits.admit(key_hash(b'f', &bytes), *rule);
            if !a.allowed() {
                guard.refuse(verdict, Reason::FingerprintLimit, a.retry_after());
                return;
            }
        }
    }
}

/// A [`Guard`] whose request quotas hold across the fleet
/// ([`FleetLimits`]).
pub struct FleetGuard {
    guard: Guard,
    limits: FleetLimits,
}

impl FleetGuard {
    /// `guard` with its request quotas kept by `limits`.
    pub fn new(guard: Guard, limits: GlobalLimits) -> FleetGuard {
        FleetGuard {
            limits: FleetLimits::new(guard.config(), limits),
            guard,
        }
    }

    /// A guard from its configuration, `[fleet]` included: quotas in the
    /// Redis at `fleet.url` (in this process when it is empty), renewed
    /// on a sync thread, on the system clocks.
    pub fn from_config(config: GuardConfig) -> Result<FleetGuard, String> {
        let fleet = FleetConfig::from_table(&config.fleet).map_err(|e| e.to_string())?;
        let store: Arc<dyn QuotaStore> = if fleet.url.is_empty() {
            Arc::new(MemoryStore::new())
        } else {
            Arc::new(
                RedisStore::open(&fleet.url, Duration::from_millis(fleet.timeout_ms))
                    .map_err(|e| e.to_string())?,
            )
        };
        let guard = Guard::try_new(config).map_err(|e| e.to_string())?;
        let limits = GlobalLimits::new(store, fleet, Arc::new(SystemWallClock)).start();
        Ok(FleetGuard::new(guard, limits))
    }

    /// The node's guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The fleet-wide quotas.
    pub fn limits(&self) -> &GlobalLimits {
        self.limits.limits()
    }

    /// Decides one request: the guard, then the fleet's quotas.
    pub fn check(&self, req: &Request<'_>) -> Verdict {
        let mut v = self.guard.check(req);
        self.limits.apply(&self.guard, req, &mut v);
        v
    }

    /// Settles a served request (see [`Guard::settle`]).
    pub fn settle(&self, verdict: &Verdict, output_tokens: u32) {
        self.guard.settle(verdict, output_tokens);
    }
}
