//! The guards a replay drives: one, or a fleet of `N` nodes fed
//! round-robin whose request quotas are kept fleet-wide by
//! `ringfence-fleet` (in this process, or in a Redis), synchronised in
//! trace time so that a replay decides the same every time.
//!
//! Evidence is shared too: at each sync every node records what the
//! others saw since the last (`Guard::observe`: links, scores, crowds,
//! answer lengths; no quota spent), in node order, so a hydra whose
//! requests land on every node is linked on all of them within a sync
//! interval. Without it (`isolated`), each node links and scores only
//! what it sees: the replay then shows what a fleet loses.

use ringfence::guard::{Guard, GuardConfig, Request, Verdict};
use ringfence::limit::ManualClock;
use ringfence::link::ClusterView;
use ringfence_fleet::{
    EvidenceExchange, EvidenceLink, FleetConfig, FleetLimits, GlobalLimits, ManualWallClock,
    QuotaStore,
};
use std::sync::Arc;

/// The fleet's wall clock at the trace's first line (µs since the epoch):
/// any fixed time will do, the keys only compare times.
const WALL_T0_US: u64 = 1_700_000_000_000_000;

pub(super) struct Nodes {
    guards: Vec<(Guard, Arc<ManualClock>)>,
    fleet: Vec<FleetLimits>,
    /// Each node's link to the evidence exchange (empty: the nodes do
    /// not share evidence).
    links: Vec<EvidenceLink>,
    wall: Arc<ManualWallClock>,
    turn: usize,
    sync_ns: u64,
    next_sync_ns: u64,
}

impl Nodes {
    /// One guard.
    pub fn single(config: GuardConfig) -> Nodes {
        Nodes {
            guards: vec![Guard::for_replay(config)],
            fleet: Vec::new(),
            links: Vec::new(),
            wall: Arc::new(ManualWallClock::new(WALL_T0_US)),
            turn: 0,
            sync_ns: u64::MAX,
            next_sync_ns: u64::MAX,
        }
    }

    /// `n` guards of `config` whose request quotas `store` keeps, each
    /// syncing every `fleet.sync_interval_ms` of trace time, sharing their
    /// evidence through `exchange` (`None`: isolated).
    pub fn fleet(
        config: &GuardConfig,
        n: u32,
        store: Arc<dyn QuotaStore>,
        fleet: &FleetConfig,
        exchange: Option<Arc<dyn EvidenceExchange>>,
    ) -> Nodes {
        let wall = Arc::new(ManualWallClock::new(WALL_T0_US));
        let guards: Vec<_> = (0..n).map(|_| Guard::for_replay(config.clone())).collect();
        let fleet_limits = (0..n)
            .map(|i| {
                let fc = FleetConfig {
                    nodes: n,
                    node: format!("node{i}"),
                    ..fleet.clone()
                };
                let limits = GlobalLimits::new(store.clone(), fc, wall.clone());
                limits.on_incident(|m| eprintln!("fleet: {m}"));
                FleetLimits::new(config, limits)
            })
            .collect();
        let sync_ns = fleet.sync_interval_ms.saturating_mul(1_000_000);
        Nodes {
            // A replay's nodes publish at every sync: nothing waits long.
            links: exchange.map_or_else(Vec::new, |x| {
                (0..n)
                    .map(|i| EvidenceLink::new(Arc::clone(&x), i, usize::MAX))
                    .collect()
            }),
            guards,
            fleet: fleet_limits,
            wall,
            turn: 0,
            sync_ns,
            next_sync_ns: sync_ns,
        }
    }

    /// The nodes.
    pub fn len(&self) -> usize {
        self.guards.len()
    }

    /// Node 0's guard.
    pub fn first(&self) -> &Guard {
        &self.guards[0].0
    }

    /// Tells every guard the unix time its clock counts from.
    pub fn set_unix_origin(&self, unix_secs: f64) {
        for (g, _) in &self.guards {
            g.set_unix_origin(unix_secs);
        }
    }

    /// Sets every clock to `now_ns` of trace time, syncing the fleet at
    /// each sync interval passed.
    pub fn set_time(&mut self, now_ns: u64) {
        for (_, c) in &self.guards {
            c.set_nanos(now_ns);
        }
        self.wall.set(WALL_T0_US + now_ns / 1_000);
        if now_ns >= self.next_sync_ns {
            for f in &self.fleet {
                f.limits().sync_now();
            }
            self.share_evidence();
            // (Intervals with no request pass without a sync.)
            self.next_sync_ns = (now_ns / self.sync_ns + 1).saturating_mul(self.sync_ns);
        }
    }

    /// The next node's verdict on `req`, settled with `output` if served.
    pub fn check(&mut self, req: &Request<'_>, output: Option<u32>) -> Verdict {
        let i = self.turn % self.guards.len();
        self.turn += 1;
        let guard = &self.guards[i].0;
        let mut verdict = guard.check(req);
        if let Some(f) = self.fleet.get(i) {
            f.apply(guard, req, &mut verdict);
        }
        let served = verdict.allowed().then_some(output).flatten();
        if let Some(out) = served {
            guard.settle(&verdict, out);
            if let Some(f) = self.fleet.get(i) {
                let actual = u64::from(verdict.input_tokens) + u64::from(out);
                f.settle(&verdict.settlement(), actual);
            }
        }
        if let Some(link) = self.links.get(i) {
            link.note(req, served);
        }
        verdict
    }

    /// Every node publishes what it decided since the last sync, then
    /// records what the others published, in node order.
    fn share_evidence(&mut self) {
        let report = |m: &str| eprintln!("fleet: {m}");
        for (link, (guard, _)) in self.links.iter().zip(&self.guards) {
            link.publish(guard, &report);
        }
        for (link, (guard, _)) in self.links.iter().zip(&self.guards) {
            link.receive_on(guard, &report);
        }
    }

    /// The evidence the nodes shared, summed (zeros when they share none).
    pub fn share_stats(&self) -> ringfence_fleet::ShareStats {
        self.links
            .iter()
            .fold(Default::default(), |sum, l| sum.plus(l.stats()))
    }

    /// The account's cluster and score as the node that scores it highest
    /// sees it.
    pub fn score_of(&self, account: &str) -> (ClusterView, f64) {
        self.guards
            .iter()
            .map(|(g, _)| g.score_of(account))
            .reduce(|best, x| if best.1 >= x.1 { best } else { x })
            .expect("at least one node")
    }
}
