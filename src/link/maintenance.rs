//! Maintenance: expiring old evidence, keeping the tables within their
//! limits, and rebuilding the clusters from what is left.

use super::tables::seconds;
use super::Linker;
use std::sync::atomic::Ordering::Relaxed;

impl Linker {
    /// Forgets expired evidence and rebuilds the clusters now (also done
    /// automatically every `rebuild_every_secs`, and when a table is full).
    pub fn rebuild_now(&self, now: f64) {
        let now = self.since_epoch(now);
        let _all = self.maintenance.write();
        self.rebuild_locked(now);
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

    pub(super) fn maybe_rebuild(&self, now: f64) {
        if self.rebuild_due(now) {
            if let Some(_all) = self.maintenance.try_write() {
                // Re-checked under the lock: another thread may have just rebuilt.
                if self.rebuild_due(now) {
                    self.rebuild_locked(now);
                }
            }
        }
    }

    /// Under the exclusive lock.
    fn rebuild_locked(&self, now: f64) {
        let cut = seconds(now - self.config.horizon_secs);
        // Nothing is older than `oldest`: before the horizon reaches it, and
        // with no table over its limit, there is nothing to forget (this
        // keeps replays of a day's trace from scanning the tables).
        if cut <= self.oldest.load(Relaxed) && !self.over_limits() && !self.pressure.load(Relaxed) {
            if self.weakened.swap(false, Relaxed) {
                self.relink();
            }
            self.last_rebuild.store(now.to_bits(), Relaxed);
            return;
        }
        let forgotten_accounts = self.forget_accounts(cut);
        // Values: expired ones go; anchors to forgotten accounts are dropped.
        // (Each pass first checks whether it has anything to do: most
        // rebuilds forget nothing.)
        let cut_minutes = cut / 60;
        for table in [&self.values, &self.templates] {
            table.expire(cut_minutes, forgotten_accounts > 0, |a| {
                self.accounts.is_live(a)
            });
        }
        self.displays.lock().retain(|&tag, _| {
            self.values.find(tag).is_some() || self.templates.find(tag).is_some()
        });
        let forgotten_pairs = self.forget_pairs(cut_minutes);
        // The clusters are rebuilt when evidence went away or weakened.
        if forgotten_accounts > 0 || forgotten_pairs || self.weakened.swap(false, Relaxed) {
            self.relink();
        }
        self.oldest.store(self.oldest_seen(), Relaxed);
        self.pressure.store(false, Relaxed);
        self.last_rebuild.store(now.to_bits(), Relaxed);
    }

    /// Forgets the accounts last seen before `cut` seconds and, when the
    /// table is over its limit (or nearly full and an account found no
    /// room), the least useful accounts until a quarter of the limit is free
    /// again: one-request accounts first, then accounts in no linked pair,
    /// each the longest unseen first; accounts in linked pairs, and those
    /// whose own behaviour made them suspect, last. (A
    /// flood of throwaway accounts replaces throwaway accounts, not what
    /// links an operation.) How many went.
    fn forget_accounts(&self, cut: u64) -> usize {
        let c = &self.config;
        let live = self.accounts.len();
        let nearly_full = live > c.max_accounts - c.max_accounts / 8;
        let mut floor = 0;
        if live > c.max_accounts || (self.pressure.load(Relaxed) && nearly_full) {
            // (A quarter free: the table is "nearly full" again only after
            // an eighth of it has filled, so the scan is paid once per
            // eighth of the accounts at most, not at every full probe.)
            let keep = c.max_accounts - c.max_accounts / 4;
            let keys: Vec<u64> = self.accounts.usefulness().collect();
            floor = least_useful_cut(keys, live.saturating_sub(keep).max(1));
        }
        let mut names = self.names.lock();
        self.accounts.expire_below(cut, floor, |a| {
            names.remove(&a);
        })
    }

    /// Forgets the pairs last seen before `cut_minutes`, between forgotten
    /// accounts, or (over the limit) all but the newest half; whether any
    /// went.
    fn forget_pairs(&self, cut_minutes: u64) -> bool {
        let mut cut_pairs = cut_minutes;
        if self.pairs.len() > self.config.max_pairs {
            let times: Vec<u64> = self.pairs.last_seen_minutes().collect();
            let half = times.len() / 2;
            cut_pairs = cut_pairs.max(least_useful_cut(times, half));
        }
        self.pairs.retain(|p| {
            let (x, y) = p.key.accounts();
            p.seen >= cut_pairs && self.accounts.is_live(x) && self.accounts.is_live(y)
        })
    }

    /// When the least recently seen account, value or pair was last seen
    /// (seconds; `u64::MAX` if none is tracked).
    fn oldest_seen(&self) -> u64 {
        let values = [&self.values, &self.templates]
            .into_iter()
            .flat_map(|t| t.last_seen_minutes().map(|m| m * 60));
        let pairs = self.pairs.last_seen_minutes().map(|m| m * 60);
        self.accounts
            .last_seen()
            .chain(values)
            .chain(pairs)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Recomputes the clusters from the evidence as it stands, then names
    /// the clustered accounts' names that are known (maintenance only).
    pub(super) fn relink(&self) {
        self.accounts.reset_clusters();
        self.accounts.clear_all_paired();
        for (_, p) in self.pairs.live() {
            let (x, y) = p.key.accounts();
            self.accounts.set_paired(x);
            self.accounts.set_paired(y);
            if p.weights.strength() >= self.threshold {
                self.accounts.union(x, y);
            }
        }
        // Names of accounts no longer clustered are dropped (and the flag
        // cleared, so they are recorded again if they rejoin one).
        let mut names = self.names.lock();
        names.retain(|&a, _| {
            let clustered = self.accounts.is_live(a) && self.cluster_at(a).size >= 2;
            if !clustered {
                self.accounts.clear_named(a);
            }
            clustered
        });
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
    use crate::link::test_util::observe;
    use crate::link::{LinkConfig, Linker};

    #[test]
    fn memory_stays_within_the_configured_limits() {
        let config = LinkConfig {
            max_accounts: 1000,
            max_values: 3000,
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
            let (accounts, _, pairs) = l.sizes();
            assert!(accounts <= 1000 && pairs <= 2000, "{accounts} {pairs}");
        }
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
            assert!(l.sizes().0 <= 100);
        }
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
            observe(
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
            observe(
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
        observe(&l, "c", &[("device", "other")], 500.0);
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
        observe(&l, "c", &[("device", "other")], t + 500.0);
        assert!(l.cluster_of("a").is_none(), "{:?}", l.cluster_of("a"));
    }
}
