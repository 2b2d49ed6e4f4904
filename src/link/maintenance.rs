//! Maintenance: expiring old evidence, keeping the tables within their
//! limits, and rebuilding the clusters from what is left.

use super::tables::{home, seconds};
use super::Linker;
use crate::sync::Exclusive;
use std::sync::atomic::Ordering::Relaxed;

/// Work one maintenance step may do (cells looked at, in table order; a
/// cell whose anchors, pairs or name are checked counts two): about 10 µs,
/// so that no request waits longer for maintenance.
const STEP_BUDGET: usize = 512;

/// While a cycle runs, requests take a step one call in this many (the
/// first step of a cycle is taken at once).
const STEP_EVERY: u64 = 4;

/// Cells drawn to estimate a table's quantiles when it must make room (all
/// of them in a table this small or smaller).
const SAMPLE: usize = 4096;

/// Where a maintenance cycle stands (see [`Linker::step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Forgetting accounts: expired, or least useful when the table must
    /// make room. Each leaves a tombstone.
    Accounts,
    /// Forgetting expired values and anchors to forgotten accounts.
    Values,
    Templates,
    /// Clearing the spare union-find forest.
    Spare,
    /// Forgetting expired pairs and pairs of forgotten accounts; joining
    /// the others' accounts in the spare forest (requests' joins go to both).
    Pairs,
    /// Freeing the tombstones, clearing stale paired and named flags.
    Release,
}

/// A maintenance cycle in progress.
#[derive(Debug)]
pub(super) struct Cycle {
    phase: Phase,
    /// The next cell of the phase's table.
    next: usize,
    /// Accounts last seen before this (seconds) are forgotten; below
    /// `floor` in usefulness too.
    cut: u64,
    floor: u64,
    /// Pairs last seen before this (minutes) are forgotten.
    pair_cut: u64,
    /// Whether accounts were forgotten (anchors must be checked).
    forgot: bool,
    /// The least recently seen of what was kept (seconds), and when the
    /// cycle started.
    oldest: u64,
    started: u64,
    /// Cycles started, for the sample's seed.
    count: u64,
}

impl Cycle {
    pub(super) fn new() -> Cycle {
        Cycle {
            phase: Phase::Idle,
            next: 0,
            cut: 0,
            floor: 0,
            pair_cut: 0,
            forgot: false,
            oldest: u64::MAX,
            started: 0,
            count: 0,
        }
    }
}

impl Linker {
    /// Forgets expired evidence and rebuilds the clusters now, finishing
    /// a cycle in progress first (also done automatically every
    /// `rebuild_every_secs`, and when a table is full, a bounded step at a
    /// time). Each step holds the exclusive lock for about 10 µs at most,
    /// so requests on other threads wait no longer than that.
    pub fn rebuild_now(&self, now: f64) {
        let now = self.since_epoch(now);
        let mut cycle = self.cycle.lock();
        let mut started = false;
        loop {
            let all = self.maintenance.write_quietly();
            if cycle.phase == Phase::Idle {
                if started {
                    return;
                }
                self.start_cycle(&mut cycle, now);
                started = true;
            }
            self.step(&mut cycle, &all);
            // Waiting requests go first.
            all.unlock_fair();
        }
    }

    /// Finishes a cycle in progress at once (under the exclusive lock, for
    /// what needs the tables whole: snapshots, restores, merges).
    pub(super) fn finish_cycle(&self, cycle: &mut Cycle, all: &Exclusive<'_>) {
        while cycle.phase != Phase::Idle {
            self.step(cycle, all);
        }
    }

    /// Whether a table holds more than its configured limit.
    fn over_limits(&self) -> bool {
        self.accounts.len() > self.config.max_accounts || self.pairs.len() > self.config.max_pairs
    }

    /// Whether a rebuild is due at `now` (seconds).
    fn rebuild_due(&self, now: f64) -> bool {
        let last = f64::from_bits(self.last_rebuild.load(Relaxed));
        // (A table out of room asks for a rebuild, at most once a minute:
        // when nothing can be forgotten, rebuilding at every request would
        // only stall the gateway.)
        let pressed = self.pressure.load(Relaxed) && now - last >= 60.0;
        self.over_limits() || pressed || now - last >= self.config.rebuild_every_secs
    }

    /// Called after each request: starts a cycle when one is due, and takes
    /// a bounded step of the cycle in progress one call in [`STEP_EVERY`].
    pub(super) fn maybe_rebuild(&self, now: f64) {
        let cycling = self.cycling.load(Relaxed);
        if cycling {
            if self.calls.fetch_add(1, Relaxed) % STEP_EVERY != 0 {
                return;
            }
        } else if !self.rebuild_due(now) {
            return;
        }
        let Some(mut cycle) = self.cycle.try_lock() else {
            return;
        };
        let all = self.maintenance.write_quietly();
        if cycle.phase == Phase::Idle {
            // Re-checked under the lock: another thread may have just rebuilt.
            if !self.rebuild_due(now) {
                return;
            }
            self.start_cycle(&mut cycle, now);
        }
        self.step(&mut cycle, &all);
    }

    /// Starts a cycle at `now` (seconds), or, with nothing to forget and no
    /// link weakened, notes that the rebuild was done (this keeps replays
    /// of a day's trace from scanning the tables).
    fn start_cycle(&self, cycle: &mut Cycle, now: f64) {
        let cut = seconds(now - self.config.horizon_secs);
        self.last_rebuild.store(now.to_bits(), Relaxed);
        let pressed = self.over_limits() || self.pressure.load(Relaxed);
        if cut <= self.oldest.load(Relaxed) && !pressed && !self.weakened.swap(false, Relaxed) {
            return;
        }
        self.weakened.store(false, Relaxed);
        self.cycles.fetch_add(1, Relaxed);
        cycle.count += 1;
        *cycle = Cycle {
            phase: Phase::Accounts,
            cut,
            floor: self.usefulness_floor(cycle.count),
            pair_cut: (cut / 60).max(self.pairs_cut(cycle.count)),
            started: seconds(now),
            count: cycle.count,
            ..Cycle::new()
        };
        self.cycling.store(true, Relaxed);
    }

    /// Takes one step of the cycle: as many cells of its phases as
    /// [`STEP_BUDGET`] allows (under the exclusive lock, `all`).
    ///
    /// What a verdict decided on standing reads without the lock
    /// ([`Linker::standing_of`]: account tags, the current forest) changes
    /// in ways such a reader tolerates, except when the forests swap: only
    /// that step is announced to optimistic readers. (Forgetting turns tags
    /// into tombstones, an account then found or not; freeing resets the
    /// nodes of forgotten accounts, singletons in the current forest; the
    /// other phases touch other tables and the spare forest.)
    fn step(&self, cycle: &mut Cycle, all: &Exclusive<'_>) {
        let began = std::time::Instant::now();
        self.step_phases(cycle, all);
        let ns = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.steps.fetch_add(1, Relaxed);
        self.last_step_ns.store(ns, Relaxed);
        self.max_step_ns.fetch_max(ns, Relaxed);
    }

    fn step_phases(&self, cycle: &mut Cycle, all: &Exclusive<'_>) {
        let mut budget = STEP_BUDGET;
        while budget > 0 && cycle.phase != Phase::Idle {
            let (work, end) = self.step_phase(cycle, budget);
            budget = budget.saturating_sub(work.max(1));
            if end {
                if cycle.phase == Phase::Pairs {
                    all.announce();
                }
                self.next_phase(cycle);
            }
        }
    }

    /// Works through the phase's next cells within `budget`; the work done,
    /// and whether the phase is finished.
    fn step_phase(&self, cycle: &mut Cycle, budget: usize) -> (usize, bool) {
        let from = cycle.next;
        match cycle.phase {
            Phase::Idle => (0, true),
            Phase::Accounts => {
                let to = (from + budget).min(self.accounts.capacity());
                let mut names = self.names.lock();
                let (gone, oldest) = self.accounts.forget(from..to, cycle.cut, cycle.floor, |a| {
                    names.remove(&a);
                });
                cycle.forgot |= gone > 0;
                cycle.oldest = cycle.oldest.min(oldest);
                cycle.next = to;
                (to - from, to == self.accounts.capacity())
            }
            Phase::Values | Phase::Templates => {
                let table = if cycle.phase == Phase::Values {
                    &self.values
                } else {
                    &self.templates
                };
                // (Anchors are checked against the forgotten accounts' bits,
                // a small array in the cache.)
                let per_cell = if cycle.forgot { 2 } else { 1 };
                let to = (from + budget / per_cell)
                    .max(from + 1)
                    .min(table.capacity());
                let mut displays = self.displays.lock();
                let (work, oldest) = table.sweep(
                    from..to,
                    cycle.cut / 60,
                    cycle.forgot,
                    |a| !self.accounts.is_forgotten(a),
                    |tag| {
                        displays.remove(&tag);
                    },
                );
                cycle.oldest = cycle.oldest.min(oldest.saturating_mul(60));
                cycle.next = to;
                (work, to == table.capacity())
            }
            Phase::Spare => {
                let to = (from + budget).min(self.accounts.capacity());
                self.accounts.reset_spare(from..to);
                cycle.next = to;
                (to - from, to == self.accounts.capacity())
            }
            Phase::Pairs => {
                let to = (from + budget / 2).max(from + 1).min(self.pairs.capacity());
                let (cut, threshold) = (cycle.pair_cut, self.threshold);
                let mut oldest = u64::MAX;
                let work = self.pairs.sweep(
                    from..to,
                    |p| {
                        let (x, y) = p.key.accounts();
                        p.seen >= cut
                            && !self.accounts.is_forgotten(x)
                            && !self.accounts.is_forgotten(y)
                    },
                    |p| {
                        let (x, y) = p.key.accounts();
                        self.accounts.mark_paired_now(x);
                        self.accounts.mark_paired_now(y);
                        if p.weights.strength() >= threshold {
                            self.accounts.union_spare(x, y);
                        }
                        oldest = oldest.min(p.seen);
                    },
                );
                cycle.oldest = cycle.oldest.min(oldest.saturating_mul(60));
                cycle.next = to;
                (work * 2, to == self.pairs.capacity())
            }
            Phase::Release => {
                let to = (from + budget / 2)
                    .max(from + 1)
                    .min(self.accounts.capacity());
                self.accounts.free(from..to);
                self.accounts.clear_unpaired(from..to);
                // Names of accounts no longer clustered are dropped (and the
                // flag cleared, so they are recorded again if they rejoin one).
                let mut names = self.names.lock();
                for a in from..to {
                    let a = a as u32;
                    if self.accounts.is_named(a) && self.cluster_at(a).size < 2 {
                        names.remove(&a);
                        self.accounts.clear_named(a);
                    }
                }
                cycle.next = to;
                ((to - from) * 2, to == self.accounts.capacity())
            }
        }
    }

    fn next_phase(&self, cycle: &mut Cycle) {
        cycle.next = 0;
        cycle.phase = match cycle.phase {
            Phase::Accounts => Phase::Values,
            Phase::Values => Phase::Templates,
            Phase::Templates => Phase::Spare,
            Phase::Spare => {
                // From here on, requests' joins go to both forests, and the
                // accounts of new pairs are noted.
                self.accounts.start_building();
                self.accounts.start_collecting_paired();
                Phase::Pairs
            }
            Phase::Pairs => {
                // The spare forest holds every join: it becomes current.
                self.accounts.swap_forests();
                Phase::Release
            }
            Phase::Release | Phase::Idle => {
                self.accounts.stop_collecting_paired();
                self.oldest.store(cycle.oldest.min(cycle.started), Relaxed);
                self.pressure.store(false, Relaxed);
                self.cycling.store(false, Relaxed);
                Phase::Idle
            }
        };
    }

    /// Uniform draws for a sample, seeded by the cycle.
    fn draws(&self, count: u64) -> impl Iterator<Item = u64> {
        let mut x = self.config.seed ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (0..SAMPLE).map(move |_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    }

    /// When the account table is over its limit (or nearly full and an
    /// account found no room), the usefulness below which accounts go so
    /// that a quarter of the limit is free again: one-request accounts
    /// first, then accounts in no linked pair, each the longest unseen
    /// first; accounts in linked pairs, and those whose own behaviour made
    /// them suspect, last (a flood of throwaway accounts replaces throwaway
    /// accounts, not what links an operation). Estimated from a sample of
    /// cells in a large table. 0 when nothing needs to go.
    fn usefulness_floor(&self, count: u64) -> u64 {
        let c = &self.config;
        let live = self.accounts.len();
        let nearly_full = live > c.max_accounts - c.max_accounts / 8;
        if !(live > c.max_accounts || (self.pressure.load(Relaxed) && nearly_full)) {
            return 0;
        }
        // (A quarter free: the table is "nearly full" again only after an
        // eighth of it has filled, so the work is paid once per eighth of
        // the accounts at most, not at every full probe.)
        let keep = c.max_accounts - c.max_accounts / 4;
        let drop = live.saturating_sub(keep).max(1);
        let cells = self.accounts.capacity();
        let keys: Vec<u64> = if cells <= SAMPLE {
            (0..cells)
                .filter_map(|a| self.accounts.usefulness_of(a))
                .collect()
        } else {
            self.draws(count)
                .filter_map(|x| self.accounts.usefulness_of(home(x, cells)))
                .collect()
        };
        let share = keys.len() * drop / live.max(1);
        least_useful_cut(keys, share)
    }

    /// When the pairs table is over its limit, the minute before which the
    /// older half of the pairs go (estimated from a sample); 0 otherwise.
    fn pairs_cut(&self, count: u64) -> u64 {
        if self.pairs.len() <= self.config.max_pairs {
            return 0;
        }
        let times = self.pairs.sample_seen(self.draws(count));
        let half = times.len() / 2;
        least_useful_cut(times, half)
    }

    /// Recomputes the clusters from the evidence as it stands at once (a
    /// cycle that forgets nothing, run to its end: merges), under the
    /// exclusive lock.
    pub(super) fn relink(&self, cycle: &mut Cycle, all: &Exclusive<'_>) {
        self.finish_cycle(cycle, all);
        *cycle = Cycle {
            phase: Phase::Spare,
            count: cycle.count,
            ..Cycle::new()
        };
        self.cycling.store(true, Relaxed);
        self.finish_cycle(cycle, all);
    }
}

/// The key below which the `drop` smallest of `keys` lie (at least one of
/// them goes, and at least one stays).
fn least_useful_cut(mut keys: Vec<u64>, drop: usize) -> u64 {
    if keys.len() < 2 {
        return 0;
    }
    let at = drop.clamp(1, keys.len() - 1);
    let (_, k, _) = keys.select_nth_unstable(at);
    let k = *k;
    // Ties at the cut stay; if that keeps everything, drop the tie too.
    if keys.iter().all(|&x| x >= k) {
        k + 1
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use crate::link::test_util::{observe, observe_maintained};
    use crate::link::{LinkConfig, Linker};

    #[test]
    fn memory_stays_within_the_configured_limits() {
        // (Tables in proportion, as `GuardConfig::for_accounts` sizes them:
        // a maintenance cycle then frees room as fast as new accounts come.)
        let config = LinkConfig {
            max_accounts: 1000,
            max_values: 3000,
            max_templates: 500,
            max_pairs: 2000,
            ..LinkConfig::default()
        };
        let l = Linker::new(config);
        let bytes = l.stats().bytes;
        for i in 0..20_000u32 {
            let (card, ip) = (
                format!("card{}", i / 4),
                format!("10.{}.{}.{}", i % 7, i % 11, i % 13),
            );
            observe(
                &l,
                &format!("a{i}"),
                &[("payment", &card), ("ip", &ip)],
                f64::from(i),
            );
            // Within the cells' headroom while a cycle brings it back.
            let (accounts, _, pairs) = l.sizes();
            assert!(accounts <= 1250 && pairs <= 2500, "{accounts} {pairs}");
        }
        l.rebuild_now(20_000.0);
        let (accounts, _, pairs) = l.sizes();
        assert!(accounts <= 1000 && pairs <= 2000, "{accounts} {pairs}");
        // The tables never grow; the side maps hold only names and texts.
        assert!(l.stats().bytes < bytes + 200_000, "{:?}", l.stats());
        // Recent evidence survives the forgetting: the last card's four accounts.
        assert_eq!(l.cluster_of("a19999").unwrap().size, 4);

        // A frozen clock (every observation at one instant) cannot keep
        // "the newest half" by time: the limits hold all the same.
        let l = Linker::new(LinkConfig {
            max_accounts: 100,
            ..LinkConfig::default()
        });
        for i in 0..1000u32 {
            observe(
                &l,
                &format!("f{}", i % 300),
                &[("device", &format!("d{}", i % 50))],
                0.0,
            );
            assert!(l.sizes().0 <= 125);
        }
        l.rebuild_now(0.0);
        assert!(l.sizes().0 <= 100);
    }

    /// A flood of throwaway accounts (one request each) into a full table
    /// replaces throwaway accounts, not the accounts an operation's links
    /// hold together.
    #[test]
    fn a_flood_of_throwaway_accounts_does_not_wipe_what_links_an_operation() {
        let l = Linker::new(LinkConfig {
            max_accounts: 2000,
            ..LinkConfig::default()
        });
        let op = |l: &Linker, i: u32, t: f64| {
            observe_maintained(
                l,
                &format!("op{i}"),
                &[("payment", &format!("card{}", i / 4))],
                t,
            );
        };
        for i in 0..80 {
            op(&l, i, f64::from(i));
        }
        for i in 0..100_000u32 {
            let t = 100.0 + f64::from(i) * 0.5;
            observe_maintained(
                &l,
                &format!("throwaway{i}"),
                &[("device", &format!("d{i}"))],
                t,
            );
            if i % 1000 == 0 && i < 50_000 {
                // The operation works through half the flood, then pauses.
                for j in 0..80 {
                    op(&l, j, t);
                }
            }
            assert!(l.sizes().0 <= 2000);
        }
        let sizes: Vec<Option<u32>> = (0..80)
            .map(|i| l.cluster_of(&format!("op{i}")).map(|c| c.size))
            .collect();
        assert!(sizes.iter().all(|&s| s == Some(4)), "{sizes:?}");
    }

    /// Maintenance proceeds a bounded step at a time while requests go on,
    /// and clusters stand whole throughout: the union-find is rebuilt aside
    /// and swapped in at once.
    #[test]
    fn maintenance_takes_bounded_steps_and_clusters_stand_throughout() {
        use std::sync::atomic::Ordering::Relaxed;
        let l = Linker::new(LinkConfig {
            horizon_secs: 1000.0,
            rebuild_every_secs: 100.0,
            ..LinkConfig::default()
        });
        for i in 0..200 {
            let d = format!("d{i}");
            observe(&l, &format!("a{i}"), &[("device", &d)], 0.0);
            observe(&l, &format!("b{i}"), &[("device", &d)], 0.0);
        }
        for i in 0..1000 {
            observe(&l, &format!("old{i}"), &[("device", &format!("o{i}"))], 1.0);
        }
        // The pairs are refreshed; the old accounts are not.
        for i in 0..200 {
            let d = format!("d{i}");
            observe(&l, &format!("a{i}"), &[("device", &d)], 900.0);
            assert_eq!(
                observe(&l, &format!("b{i}"), &[("device", &d)], 900.0).size,
                2
            );
        }
        // Past the old accounts' horizon, requests go on; each takes a
        // step of the cycle now and then.
        let mut requests = 0;
        loop {
            requests += 1;
            observe(&l, &format!("new{requests}"), &[("device", "n")], 1050.0);
            for i in [0, 77, 199] {
                assert_eq!(
                    l.cluster_of(&format!("a{i}")).unwrap().size,
                    2,
                    "{requests}"
                );
            }
            if !l.cycling.load(Relaxed) {
                break;
            }
            assert!(requests < 100_000);
        }
        // The default tables take many steps (a step looks at a few
        // thousand cells, one request in four takes one).
        assert!(requests > 100, "{requests}");
        assert!(l.cluster_of("old3").is_none() && l.cluster_of("old999").is_none());
        assert_eq!(l.cluster_of("b5").unwrap().size, 2);
        // The new accounts share a device: linked, with their pairs kept.
        assert!(l.cluster_of("new1").unwrap().size >= 2);
    }

    /// Threads link and expire accounts while maintenance cycles run
    /// between their requests: what is refreshed stays linked, what
    /// expired goes, and nothing is lost or linked twice.
    #[test]
    fn cycles_run_while_threads_link() {
        let l = Linker::new(LinkConfig {
            max_accounts: 5000,
            max_values: 12_500,
            max_templates: 2500,
            max_pairs: 5000,
            horizon_secs: 100.0,
            rebuild_every_secs: 10.0,
            ..LinkConfig::default()
        });
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let l = &l;
                s.spawn(move || {
                    for n in 0..10_000u32 {
                        let now = f64::from(n) * 0.1;
                        let k = (n + t) % 8;
                        let device = format!("fd{k}");
                        observe(
                            l,
                            &format!("fleet{k}"),
                            &[("payment", "fleet"), ("device", &device)],
                            now,
                        );
                        let own = format!("t{t}-{n}");
                        observe(
                            l,
                            &own,
                            &[("device", &own), ("ip", &format!("10.0.{t}.{}", n % 200))],
                            now,
                        );
                    }
                });
            }
        });
        l.rebuild_now(1000.0);
        for k in 0..8 {
            assert_eq!(
                l.cluster_of(&format!("fleet{k}")).unwrap().size,
                8,
                "fleet{k}"
            );
        }
        // Seen at 0 s to 1 s, past the horizon at 1,000 s.
        assert!(l.cluster_of("t0-0").is_none() && l.cluster_of("t3-5").is_none());
        let (accounts, _, pairs) = l.sizes();
        assert!(accounts <= 5000 && pairs <= 5000, "{accounts} {pairs}");
        // The names kept are of clustered accounts, each in its own cluster.
        for (name, id) in l.clusters() {
            let c = l.cluster_of(&name).unwrap();
            assert!(c.size >= 2 && c.id == id, "{name}: {c:?}");
        }
    }

    #[test]
    fn evidence_expires_after_the_horizon() {
        let config = LinkConfig {
            horizon_secs: 100.0,
            rebuild_every_secs: 10.0,
            ..LinkConfig::default()
        };
        let l = Linker::new(config);
        observe(&l, "a", &[("device", "d1")], 0.0);
        assert_eq!(observe(&l, "b", &[("device", "d1")], 1.0).size, 2);
        observe_maintained(&l, "c", &[("device", "other")], 500.0);
        // Past the horizon, a and b and their link are forgotten.
        assert!(l.cluster_of("a").is_none() && l.cluster_of("b").is_none());
        assert_eq!(l.sizes(), (1, 1, 0));
        assert!(l.clusters().is_empty());
    }

    fn home(l: &Linker, name: &str) -> usize {
        crate::link::tables::home(l.account_hash(name), l.accounts.capacity())
    }

    /// An expiry that leaves a hole in front of an account's cell does not
    /// make a second copy of it.
    #[test]
    fn an_account_is_never_tracked_twice() {
        let l = Linker::new(LinkConfig {
            max_accounts: 1000,
            horizon_secs: 100.0,
            rebuild_every_secs: 1e9,
            ..LinkConfig::default()
        });
        // Two names with the same home cell.
        let mut seen = std::collections::HashMap::new();
        let (b, a) = (0..)
            .find_map(|i| {
                let name = format!("acct{i}");
                seen.insert(home(&l, &name), name.clone())
                    .map(|prev| (prev, name))
            })
            .unwrap();
        observe(&l, &b, &[], 0.0); // b takes the home cell
        observe(&l, &a, &[("device", "d1")], 50.0); // a the next one
        assert_eq!(observe(&l, "d", &[("device", "d1")], 51.0).size, 2);
        l.rebuild_now(120.0); // b expires; a and d stay
        assert_eq!(l.sizes().0, 2);
        assert_eq!(observe(&l, &a, &[], 121.0).size, 2);
        assert_eq!(l.sizes().0, 2);
    }

    /// Times may count from any origin, the Unix epoch included.
    #[test]
    fn unix_times_expire_like_any_other() {
        let t = 1.7e9;
        let l = Linker::new(LinkConfig {
            horizon_secs: 100.0,
            rebuild_every_secs: 10.0,
            ..LinkConfig::default()
        });
        observe(&l, "a", &[("device", "d1")], t);
        assert_eq!(observe(&l, "b", &[("device", "d1")], t + 1.0).size, 2);
        observe_maintained(&l, "c", &[("device", "other")], t + 500.0);
        assert!(l.cluster_of("a").is_none(), "{:?}", l.cluster_of("a"));
    }
}
