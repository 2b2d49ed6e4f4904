//! What the linker can say about an account: its cluster, the cluster's
//! members, the values they share, and how full the tables are.

use super::tables::{tag_kind, UNITS};
use super::{ClusterView, LinkStats, Linker, SharedValue};
use ahash::AHashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Characters of an account's name kept for explanations.
const MAX_NAME_CHARS: usize = 256;

/// Characters of a value kept for explanations.
const DISPLAY_CHARS: usize = 64;

/// A value's text as kept for explanations (truncated).
pub(super) fn display(value: &str) -> String {
    value.chars().take(DISPLAY_CHARS).collect()
}

/// An account's name as kept for explanations (truncated).
pub(super) fn name_text(account: &str) -> String {
    account.chars().take(MAX_NAME_CHARS).collect()
}

/// Bytes a side map holds: its table (key, boxed text, a control byte per
/// slot) and the texts.
fn side_map_bytes<K>(map: &AHashMap<K, Box<str>>) -> usize {
    map.capacity() * (std::mem::size_of::<K>() + std::mem::size_of::<Box<str>>() + 1)
        + map.values().map(|t| t.len()).sum::<usize>()
}

impl Linker {
    pub(super) fn cluster_at(&self, a: u32) -> ClusterView {
        let root = self.accounts.root(a);
        ClusterView {
            id: self.accounts.tag(root),
            size: self.accounts.size(root),
        }
    }

    /// How full the tables are, and the bytes they hold.
    pub fn stats(&self) -> LinkStats {
        let names = self.names.lock();
        let (n_names, name_bytes) = (names.len(), side_map_bytes(&names));
        drop(names);
        let displays = self.displays.lock();
        let (n_texts, display_bytes) = (displays.len(), side_map_bytes(&displays));
        drop(displays);
        LinkStats {
            accounts: self.accounts.len(),
            values: self.values.len(),
            templates: self.templates.len(),
            pairs: self.pairs.len(),
            replaced: self.values.replaced() + self.templates.replaced() + self.pairs.replaced(),
            untracked: self.untracked.load(Relaxed),
            names: n_names,
            texts: n_texts,
            bytes: 32 * self.accounts.capacity()
                + 24 * (self.values.capacity() + self.templates.capacity() + self.pairs.capacity())
                + name_bytes
                + display_bytes,
            max_accounts: self.config.max_accounts,
            max_values: self.config.max_values,
            max_templates: self.config.max_templates,
            max_pairs: self.config.max_pairs,
            clusters_formed: self.accounts.formed(),
            maintenance_cycles: self.cycles.load(Relaxed),
            maintenance_steps: self.steps.load(Relaxed),
            maintenance_last_step: Duration::from_nanos(self.last_step_ns.load(Relaxed)),
            maintenance_max_step: Duration::from_nanos(self.max_step_ns.load(Relaxed)),
        }
    }

    /// How many accounts, fingerprint values (templates included) and
    /// linked pairs it remembers.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let s = self.stats();
        (s.accounts, s.values + s.templates, s.pairs)
    }

    /// The cluster of `account`, if it is tracked.
    pub fn cluster_of(&self, account: &str) -> Option<ClusterView> {
        let _shared = self.maintenance.read();
        let a = self.accounts.find(self.account_hash(account))?;
        Some(self.cluster_at(a))
    }

    /// The cell and cluster of the account with this hash, if it is tracked
    /// (what a verdict decided on standing reads).
    ///
    /// It takes no lock unless maintenance changes the tables while it
    /// reads them (then it reads again, under the lock): requests decided
    /// on standing do not wait for maintenance steps.
    ///
    /// `warm` is called with the account's cell as soon as it is found, to
    /// start reading what the caller will read next (its result is unused).
    pub(crate) fn standing_of(
        &self,
        hash: u64,
        warm: impl Fn(u32) -> u64,
    ) -> Option<(u32, ClusterView)> {
        let quick = self.maintenance.optimistic(|| {
            let Some(a) = self.accounts.find(hash) else {
                return Some(None);
            };
            std::hint::black_box(warm(a));
            let root = self.accounts.root_read(a)?;
            let view = ClusterView {
                id: self.accounts.tag(root),
                size: self.accounts.size(root),
            };
            Some(Some((a, view)))
        });
        quick.unwrap_or_else(|| {
            let _shared = self.maintenance.read();
            let a = self.accounts.find(hash)?;
            Some((a, self.cluster_at(a)))
        })
    }

    /// Up to `limit` other accounts of `account`'s cluster whose names are
    /// known (every clustered account that made a request since joining).
    pub fn members_of(&self, account: &str, limit: usize) -> Vec<String> {
        let _shared = self.maintenance.read();
        let Some(a) = self.accounts.find(self.account_hash(account)) else {
            return Vec::new();
        };
        let root = self.accounts.root(a);
        let names = self.names.lock();
        let mut out: Vec<&str> = names
            .iter()
            .filter(|(&b, _)| b != a && self.accounts.root(b) == root)
            .map(|(_, n)| &**n)
            .collect();
        out.sort_unstable();
        out.into_iter().take(limit).map(str::to_string).collect()
    }

    /// Every clustered account (in a cluster of two or more) whose name is
    /// known, with its cluster id; accounts on their own are not listed.
    pub fn clusters(&self) -> Vec<(String, u64)> {
        let _shared = self.maintenance.read();
        let names = self.names.lock();
        let mut out: Vec<(String, u64)> = names
            .iter()
            .map(|(&a, n)| (n.to_string(), self.cluster_at(a).id))
            .collect();
        out.sort_unstable();
        out
    }

    /// The values `account`'s cluster shares (values whose two anchors are
    /// both in the cluster), strongest first, and how strongly each of the
    /// account's own links holds, by evidence group.
    pub fn evidence(&self, account: &str) -> Vec<SharedValue> {
        let _shared = self.maintenance.read();
        let Some(a) = self.accounts.find(self.account_hash(account)) else {
            return Vec::new();
        };
        let root = self.accounts.root(a);
        let displays = self.displays.lock();
        let mut out = Vec::new();
        for table in [&self.values, &self.templates] {
            for (_, v) in table.live() {
                let [Some(x), Some(y)] = v.anchors.accounts() else {
                    continue;
                };
                if self.accounts.root(x) != root || self.accounts.root(y) != root {
                    continue;
                }
                out.push(SharedValue {
                    kind: self.kinds.name(tag_kind(v.tag)).to_string(),
                    value: displays
                        .get(&v.tag)
                        .map_or_else(String::new, |d| d.to_string()),
                    accounts: v.stat.hll().estimate().round(),
                    weight: f64::from(v.stat.weight()) / UNITS,
                });
            }
        }
        out.sort_by(|p, q| q.weight.total_cmp(&p.weight).then(p.kind.cmp(&q.kind)));
        // One line per (kind, text): a template's bands are one template.
        out.dedup_by(|p, q| p.kind == q.kind && p.value == q.value);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::guard::Request;
    use crate::link::{LinkConfig, Linker};

    /// Texts kept for explanations are truncated, whatever a client sends.
    #[test]
    fn explanation_texts_stay_small() {
        let l = Linker::new(LinkConfig::default());
        let before = l.stats().bytes;
        let ua = "x".repeat(1 << 20);
        let account: String = "y".repeat(1 << 16);
        for (a, now) in [
            (account.as_str(), 0.0),
            ("a2", 1.0),
            (account.as_str(), 70.0),
        ] {
            l.observe(
                &Request {
                    account: a,
                    fingerprints: &[("user_agent", &ua), ("device", "shared")],
                    prompt: None,
                    system: Some("You are a helpful assistant for ACME."),
                    model: None,
                    input_tokens: 0,
                    max_tokens: 0,
                },
                now,
            );
        }
        assert!(l.stats().bytes - before < 16 << 10, "{:?}", l.stats());
    }
}
