//! [`FleetGuard`]: a guard whose quotas hold across the fleet.

use crate::config::FleetConfig;
use crate::evidence::EvidenceExchange;
use crate::limits::{GlobalLimits, SystemWallClock};
use crate::redis_store::RedisStore;
use crate::share::{EvidenceLink, ShareStats};
use crate::store::{MemoryStore, QuotaStore, Rule};
use crate::streams::RedisExchange;
use ringfence::guard::{Guard, GuardConfig, Reason, Request, SettleError, Settlement, Verdict};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The fleet's hash of a quota's key: its kind (`b'a'` account, `b'c'`
/// cluster, `b'f'` fingerprint value) and its bytes. Raw accounts and
/// values never reach the store, only these hashes.
pub fn key_hash(kind: u8, bytes: &[u8]) -> u64 {
    xxh3_64_with_seed(bytes, 0x7269_6e67_666c_6565 ^ u64::from(kind))
}

/// The key of an account's token quota, from the account's hash (what a
/// settlement carries, so that settling needs no account name).
fn tokens_key(account_hash: u64) -> u64 {
    key_hash(b't', &account_hash.to_le_bytes())
}

/// The fleet-wide quotas of a guard's configuration (its account, cluster
/// and fingerprint request quotas) over [`GlobalLimits`], applied after
/// the guard's own verdict: the guard decides first (its own limits are
/// per node, so never looser than the fleet's), then each quota that
/// applies is admitted fleet-wide. A refusal by the fleet is a throttle
/// with the quota's reason (`account_limit`, `cluster_limit`,
/// `fingerprint_limit`), and the guard's token reservation is returned.
///
/// The account's token quota is fleet-wide too: a request's reserved
/// tokens are admitted at once, and what its answer did not use returns
/// to the node's lease when it is settled ([`FleetLimits::settle`]).
/// Cluster quotas are fleet-wide once the nodes know the cluster by the
/// same id (with shared evidence, they do).
pub struct FleetLimits {
    limits: GlobalLimits,
    account: Rule,
    /// The account's token quota: a request's reserved tokens admitted
    /// at once, the unused part refunded when it is settled.
    tokens: Rule,
    cluster: Rule,
    fingerprints: Vec<(String, Rule)>,
}

impl FleetLimits {
    /// The quotas of `config`, kept by `limits`.
    pub fn new(config: &GuardConfig, limits: GlobalLimits) -> FleetLimits {
        FleetLimits {
            account: Rule::per_minute(config.account_requests_per_minute),
            tokens: Rule::per_minute(config.account_tokens_per_minute),
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

    /// Settles the fleet's token quota of a served request that used
    /// `actual` tokens: the unused part of its reservation goes back to
    /// this node's lease, a longer answer is charged.
    pub fn settle(&self, settlement: &Settlement, actual: u64) {
        let Some(r) = settlement.reservation().filter(|_| settlement.is_served()) else {
            return;
        };
        let key = tokens_key(settlement.account());
        let reserved = r.reserved();
        if actual < reserved {
            self.limits.refund(key, reserved - actual);
        } else {
            self.limits.charge(key, actual - reserved);
        }
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
        if let Some(r) = verdict.reservation {
            let a = self.limits.admit_units(
                tokens_key(verdict.settlement().account()),
                self.tokens,
                r.reserved(),
            );
            if !a.allowed() {
                guard.refuse(verdict, Reason::AccountLimit, a.retry_after());
                return;
            }
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
/// ([`FleetLimits`]) and which shares its evidence with the other nodes
/// (with [`FleetGuard::sharing`]: each request it decides is published at
/// its next sync, and each sync records what the others decided).
pub struct FleetGuard {
    guard: Arc<Guard>,
    limits: FleetLimits,
    evidence: Option<Arc<EvidenceLink>>,
    sharer: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl FleetGuard {
    /// `guard` with its request quotas kept by `limits`.
    pub fn new(guard: Guard, limits: GlobalLimits) -> FleetGuard {
        FleetGuard {
            limits: FleetLimits::new(guard.config(), limits),
            guard: Arc::new(guard),
            evidence: None,
            sharer: None,
        }
    }

    /// Shares evidence through `exchange` as node `index` (keeping up to
    /// `max_pending` requests while the exchange is away). Syncs happen
    /// on [`FleetGuard::sync_evidence`] until [`FleetGuard::start_sharing`].
    #[must_use]
    pub fn sharing(
        mut self,
        exchange: Arc<dyn EvidenceExchange>,
        index: u32,
        max_pending: usize,
    ) -> FleetGuard {
        self.evidence = Some(Arc::new(EvidenceLink::new(exchange, index, max_pending)));
        self
    }

    /// Starts a thread that syncs the evidence every `every`.
    #[must_use]
    pub fn start_sharing(mut self, every: Duration) -> FleetGuard {
        if let (Some(link), None) = (&self.evidence, &self.sharer) {
            let (link, guard) = (Arc::clone(link), Arc::clone(&self.guard));
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            let node = self.limits.limits().config().node.clone();
            let thread = std::thread::Builder::new()
                .name("ringfence-fleet-evidence".into())
                .spawn(move || {
                    let report = |m: &str| eprintln!("ringfence-fleet [{node}]: {m}");
                    while !stopped.load(Relaxed) {
                        link.sync(&guard, &report);
                        std::thread::park_timeout(every);
                    }
                })
                .ok();
            self.sharer = thread.map(|t| (stop, t));
        }
        self
    }

    /// A guard from its configuration, `[fleet]` included: quotas in the
    /// Redis at `fleet.url` (in this process when it is empty), renewed
    /// on a sync thread, and evidence shared through Redis Streams as node
    /// `fleet.index` (unless `fleet.share_evidence` is off), on the
    /// system clocks.
    pub fn from_config(config: GuardConfig) -> Result<FleetGuard, String> {
        let fleet = FleetConfig::from_table(&config.fleet).map_err(|e| e.to_string())?;
        let timeout = Duration::from_millis(fleet.timeout_ms);
        let store: Arc<dyn QuotaStore> = if fleet.url.is_empty() {
            Arc::new(MemoryStore::new())
        } else {
            Arc::new(RedisStore::open(&fleet.url, timeout).map_err(|e| e.to_string())?)
        };
        let horizon = Duration::from_secs_f64(config.link.horizon_secs.max(1.0));
        let guard = Guard::try_new(config).map_err(|e| e.to_string())?;
        let every = Duration::from_millis(fleet.sync_interval_ms);
        let share = (!fleet.url.is_empty() && fleet.share_evidence).then(|| {
            // Streams hold about a minute of batches each (a node reads
            // them at every sync) and expire a horizon after the last.
            let entries = (60_000 / fleet.sync_interval_ms).max(16);
            RedisExchange::open(
                &fleet.url,
                &fleet.prefix,
                fleet.nodes,
                timeout,
                entries,
                horizon,
            )
            .map(|x| (x, fleet.index, fleet.max_pending))
        });
        let limits = GlobalLimits::new(store, fleet, Arc::new(SystemWallClock)).start();
        let mut g = FleetGuard::new(guard, limits);
        if let Some(share) = share {
            let (exchange, index, max_pending) = share.map_err(|e| e.to_string())?;
            g = g
                .sharing(Arc::new(exchange), index, max_pending)
                .start_sharing(every);
        }
        Ok(g)
    }

    /// The node's guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The fleet-wide quotas.
    pub fn limits(&self) -> &GlobalLimits {
        self.limits.limits()
    }

    /// Decides one request: the guard, then the fleet's quotas; the
    /// request is kept for the other nodes when evidence is shared.
    pub fn check(&self, req: &Request<'_>) -> Verdict {
        let mut v = self.guard.check(req);
        self.limits.apply(&self.guard, req, &mut v);
        if let Some(link) = &self.evidence {
            link.note(req, None);
        }
        v
    }

    /// Settles a served request (see [`Guard::settle`]): its tokens here
    /// and in the fleet's token quota; when evidence is shared, its
    /// answer's length goes to the other nodes at the next sync.
    pub fn settle(&self, verdict: &Verdict, output_tokens: u32) {
        // A verdict of this guard's: it cannot be foreign.
        let _ = self.settle_token(verdict.settlement(), output_tokens);
    }

    /// [`FleetGuard::settle`] from a verdict's [`Settlement`] token (what
    /// the bindings keep); one from another guard is an error and settles
    /// nothing.
    pub fn settle_token(
        &self,
        settlement: Settlement,
        output_tokens: u32,
    ) -> Result<(), SettleError> {
        self.guard.settle_token(settlement, output_tokens)?;
        let input = settlement.input_tokens();
        self.limits
            .settle(&settlement, u64::from(input) + u64::from(output_tokens));
        if let (Some(link), true) = (&self.evidence, settlement.is_served()) {
            link.note_answer(settlement.account(), input, output_tokens);
        }
        Ok(())
    }

    /// Publishes what waits and records what the other nodes published,
    /// now (what the sharing thread does).
    pub fn sync_evidence(&self) {
        if let Some(link) = &self.evidence {
            let node = &self.limits.limits().config().node;
            link.sync(&self.guard, &|m: &str| {
                eprintln!("ringfence-fleet [{node}]: {m}");
            });
        }
    }

    /// The node's side of shared evidence, if it shares.
    pub(crate) fn evidence(&self) -> Option<&EvidenceLink> {
        self.evidence.as_deref()
    }

    /// Counts of the evidence shared (zeros when it is not).
    pub fn share_stats(&self) -> ShareStats {
        self.evidence
            .as_ref()
            .map(|l| l.stats())
            .unwrap_or_default()
    }

    /// The node's counts as one JSON object, for the C and Python ways in:
    /// `{"node": …, "quotas": {…FleetStats, "keys"}, "evidence": {…ShareStats}}`.
    pub fn stats_json(&self) -> String {
        let l = self.limits().stats();
        let e = self.share_stats();
        let quotas = [
            ("from_lease", l.from_lease),
            ("from_share", l.from_share),
            ("from_store", l.from_store),
            ("refused", l.refused),
            ("fallbacks", l.fallbacks),
            ("round_trips", l.round_trips),
            ("sync_round_trips", l.sync_round_trips),
            ("debited", l.debited),
            ("store_errors", l.store_errors),
            ("repaired", l.repaired),
            ("incidents", l.incidents),
            ("keys", self.limits().keys() as u64),
        ];
        let evidence = [
            ("shared", u64::from(self.evidence.is_some())),
            ("published", e.published),
            ("answers_published", e.answers_published),
            ("received", e.received),
            ("answers_received", e.answers_received),
            ("bad_batches", e.bad_batches),
            ("dropped", e.dropped),
            ("errors", e.errors),
            ("bytes_published", e.bytes_published),
        ];
        let object = |fields: &[(&str, u64)]| {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            format!("{{{}}}", body.join(", "))
        };
        format!(
            "{{\"node\": {}, \"quotas\": {}, \"evidence\": {}}}",
            json_string(&self.limits().config().node),
            object(&quotas),
            object(&evidence)
        )
    }
}

impl Drop for FleetGuard {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.sharer.take() {
            stop.store(true, Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
