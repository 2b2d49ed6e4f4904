//! The hot path: recording one request's values, gathering the evidence
//! they give, and linking the account to the accounts it shares them with.

use super::explanation::{display, name_text};
use super::kinds::{ipv4_prefix, KindRef, UNKNOWN};
use super::tables::{
    memo_word, seconds, value_tag, Anchors, PairKey, Stat, ValueHll, Values, Weights, SATURATED,
    UNITS,
};
use super::templates::{prompt_key, Bands, Signed};
use super::{config::idf, ClusterView, CrowdValues, Linker, Observed};
use crate::request::{Request, TextDigest};
use std::sync::atomic::Ordering::Relaxed;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Fingerprints whose cells are prefetched ahead of the lookups.
const PREFETCH: usize = 24;

/// The least evidence (in units) that creates a pair: 0.4, two fifths of a
/// link (a pair with less could link only with a lot more evidence).
const MIN_NEW_PAIR: u32 = 8;

/// Evidence gathered for one request: per other account, each group's
/// strongest weight, and which groups were seen.
pub(super) struct Evidence {
    pub items: [(u32, Weights, u16); 16],
    pub len: usize,
}

impl Evidence {
    pub fn new() -> Evidence {
        Evidence {
            items: [(0, Weights::default(), 0); 16],
            len: 0,
        }
    }

    #[inline]
    pub fn add(&mut self, b: u32, group: u8, weight: u8) {
        let at = match self.items[..self.len].iter().position(|e| e.0 == b) {
            Some(i) => i,
            None if self.len < self.items.len() => {
                self.items[self.len] = (b, Weights::default(), 0);
                self.len += 1;
                self.len - 1
            }
            None => return,
        };
        let entry = &mut self.items[at];
        entry.1 = entry.1.raised(group, weight);
        entry.2 |= 1 << group;
    }
}

/// Whether two accounts or more present a value (its second anchor is set,
/// or it is too common to track them).
fn shared(anchors: Anchors, stat: Stat) -> bool {
    anchors.both() || stat.saturated()
}

/// What one request presents, hashed before any lookup.
struct Presented<'o> {
    now: u64,
    minutes: u64,
    /// The first fingerprints' kinds and value hashes.
    keys: [(KindRef, u64); PREFETCH],
    /// The system prompt (if not blank) and its hash.
    system: Option<(&'o str, u64)>,
    /// The account's memo word for this request (0: never matches).
    memo: u64,
    /// The prompt and its template band keys.
    bands: Option<(&'o str, Bands)>,
    /// The prompt's signature (with a consortium key, for its bands' tokens).
    sig: Option<Signed>,
}

/// A kind present in the request, for composites.
#[derive(Clone, Copy)]
struct Part {
    kind: u8,
    vkey: u64,
    shared: bool,
    stat: Stat,
}

/// The first value of each plain kind a request presents (for composites).
struct Parts {
    items: [Part; 16],
    len: usize,
}

impl Parts {
    fn new() -> Parts {
        let none = Part {
            kind: UNKNOWN,
            vkey: 0,
            shared: false,
            stat: Stat::default(),
        };
        Parts {
            items: [none; 16],
            len: 0,
        }
    }

    fn push(&mut self, kind: u8, vkey: u64, (anchors, stat): (Anchors, Stat)) {
        if self.len < self.items.len() {
            let shared = shared(anchors, stat);
            self.items[self.len] = Part {
                kind,
                vkey,
                shared,
                stat,
            };
            self.len += 1;
        }
    }

    fn find(&self, kind: u8) -> Option<&Part> {
        self.items[..self.len].iter().find(|p| p.kind == kind)
    }
}

/// One request being recorded: its account, minute, and the evidence
/// gathered so far.
pub(super) struct Recorder<'l> {
    pub linker: &'l Linker,
    /// The account's cell.
    pub a: u32,
    /// The account's hash.
    pub account: u64,
    pub minutes: u64,
    pub ev: Evidence,
    /// The shared values presented (for crowds).
    pub crowds: CrowdValues,
}

impl Linker {
    pub(super) fn observe_locked(
        &self,
        obs: &Request<'_>,
        hash: u64,
        now: f64,
        pre: Option<&TextDigest>,
    ) -> Observed {
        let p = self.present(obs, hash, now, pre);
        let Some(a) = self.accounts.find_or_insert(hash, p.now) else {
            self.untracked.fetch_add(1, Relaxed);
            self.pressure.store(true, Relaxed);
            return Observed {
                cluster: ClusterView { id: hash, size: 1 },
                account: hash,
                template_shared: false,
                prompt_key: 0,
                cell: None,
                recorded: false,
                crowds: CrowdValues::default(),
            };
        };
        self.accounts.mark_seen(a, p.now);
        if self.oldest.load(Relaxed) > p.now {
            self.oldest.fetch_min(p.now, Relaxed);
        }
        let mut rec = Recorder {
            linker: self,
            a,
            account: hash,
            minutes: p.minutes,
            ev: Evidence::new(),
            crowds: CrowdValues::default(),
        };
        let mut recorded = false;
        // The same fingerprints as its last request, in the same minute:
        // counted, anchored and linked already (the values' minute and the
        // evidence are refreshed by the first request of each minute).
        if p.memo == 0 || !self.accounts.memo_matches(a, p.memo) {
            let n = obs.fingerprints.len();
            let warm = p.keys.iter().take(n).fold(0u64, |w, &(k, vkey)| {
                w.wrapping_add(self.values.prefetch(value_tag(vkey, k.index)))
            });
            std::hint::black_box(warm);
            rec.record_values(obs, &p.keys, p.system);
            recorded = true;
            if p.memo != 0 {
                self.accounts.remember(a, p.memo);
            }
        }
        let prompt_key = prompt_key(p.bands.as_ref().map(|b| &b.1));
        let peers = rec.record_templates(p.bands, p.sig.as_ref());
        for &(b, weights, present) in &rec.ev.items[..rec.ev.len] {
            self.link(a, b, weights, present, p.minutes);
        }
        let root = self.accounts.root(a);
        let size = self.accounts.size(root);
        if size >= 2 && self.accounts.name_once(a) {
            self.names.lock().insert(a, name_text(obs.account).into());
        }
        Observed {
            cluster: ClusterView {
                id: self.accounts.tag(root),
                size,
            },
            account: hash,
            template_shared: peers.any_in(&self.accounts, root),
            prompt_key,
            cell: Some(a),
            recorded,
            crowds: rec.crowds,
        }
    }

    /// Hashes every fingerprint first and prefetches its value's cell, so
    /// the cache misses of all the lookups overlap instead of queueing.
    /// (Hash all first, then load all, so the loads issue back to back.)
    /// With `pre`, the texts' keys are taken from it (the request's
    /// texts are then only their heads, for explanations).
    fn present<'o>(
        &self,
        obs: &Request<'o>,
        hash: u64,
        now: f64,
        pre: Option<&TextDigest>,
    ) -> Presented<'o> {
        let now = seconds(now);
        let minutes = now / 60;
        let mut keys = [(self.kinds.at(0), 0u64); PREFETCH];
        for (slot, &(kind, value)) in keys.iter_mut().zip(obs.fingerprints) {
            let k = self.kinds.get(kind);
            *slot = (k, xxh3_64_with_seed(value.as_bytes(), k.hash));
        }
        let mut warm = self.accounts.prefetch(hash);
        let system = obs.system.filter(|s| !s.trim().is_empty());
        let system_key = match pre {
            Some(d) => system.and(d.system_key),
            None => system.map(|text| {
                xxh3_64_with_seed(text.as_bytes(), self.kinds.at(self.kinds.system).hash)
            }),
        };
        // What the account presents, in one word (see `Accounts::remember`);
        // more fingerprints than are hashed ahead never match.
        let presented = keys
            .iter()
            .take(obs.fingerprints.len())
            .map(|k| k.1)
            .chain(system_key)
            .fold(obs.fingerprints.len() as u64, |h, k| {
                (h ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31)
            });
        let memo = if obs.fingerprints.len() <= PREFETCH {
            memo_word(presented, minutes)
        } else {
            0
        };
        // The prompt's template bands (pure computation, while those cells
        // arrive), then their cells too.
        let mut sig = None;
        let bands = match pre {
            Some(d) => d.bands.map(|b| (obs.prompt.unwrap_or(""), b)),
            None if self.intel.is_some() => {
                let s = sig.insert([0u64; super::templates::TEMPLATE_K]);
                self.template_signature(obs.prompt, s)
            }
            None => self.template_bands(obs.prompt),
        };
        if let Some((_, keys)) = &bands {
            warm = warm.wrapping_add(self.prefetch_templates(keys));
        }
        std::hint::black_box(warm);
        Presented {
            now,
            minutes,
            keys,
            system: system.zip(system_key),
            memo,
            bands,
            sig,
        }
    }

    /// Refreshes the evidence between `a` and `b`, joining their clusters
    /// when it is strong enough.
    pub(super) fn link(&self, a: u32, b: u32, weights: Weights, present: u16, minutes: u64) {
        let key = PairKey::new(a, b);
        // Weak evidence (values too common to link; a template band alone)
        // only refreshes a pair that exists: it never creates one, so
        // everyday coincidences do not fill the table.
        let slot = if weights.strength() < MIN_NEW_PAIR {
            if !self.accounts.is_paired(a) || !self.accounts.is_paired(b) {
                return;
            }
            self.pairs.find(key)
        } else {
            self.accounts.set_paired(a);
            self.accounts.set_paired(b);
            let (i, replaced) = self.pairs.find_or_replace(key);
            if replaced.is_some_and(|w| w.strength() >= self.threshold) {
                // A link was forgotten to make room: recompute the clusters.
                self.weakened.store(true, Relaxed);
            }
            Some(i)
        };
        let Some(i) = slot else {
            return;
        };
        let (old, new) = self.pairs.refresh(i, weights, present, minutes);
        if new.strength() >= self.threshold {
            self.accounts.union(a, b);
        } else if old.strength() >= self.threshold
            && new.strength() < self.threshold - self.threshold / 5
        {
            // Clearly weaker (a fifth below the threshold, so evidence that
            // wavers around it does not trigger a relink at every rebuild).
            self.weakened.store(true, Relaxed);
        }
    }

    pub(super) fn weight_units(&self, kind: u8, accounts: f64) -> u8 {
        let c = &self.config;
        let [full, zero] = self.kinds.rarity(kind, c);
        let w = self.kinds.base_weight(kind) * idf(accounts, full, zero);
        (w * UNITS).round().clamp(0.0, f64::from(Weights::MAX)) as u8
    }

    /// A value's weight byte: its units, flagged saturated once it is shared
    /// by twice the accounts that take all its weight away.
    fn weight_byte(&self, kind: u8, accounts: f64) -> u8 {
        let units = self.weight_units(kind, accounts);
        let [_, zero] = self.kinds.rarity(kind, &self.config);
        if units == 0 && accounts >= 2.0 * zero {
            SATURATED
        } else {
            units
        }
    }

    /// A two-part composite's weight: its full weight scaled by how much more
    /// often than chance its parts occur together (nothing at twice chance
    /// or less, all of it at `composite_lift` times), and capped by its IDF.
    /// Common parts coincide by chance however few accounts have been seen;
    /// a rare part concentrated on one other value does not. (Never
    /// saturated: its lift may change.)
    fn composite_byte(&self, kind: u8, accounts: f64, parts: [Stat; 2]) -> u8 {
        let parts = parts.map(|s| s.hll().estimate());
        let tracked = self.accounts.len().max(1) as f64;
        let lift = accounts * tracked / (parts[0] * parts[1]).max(1.0);
        let boost = ((lift / 2.0).ln() / (self.config.composite_lift / 2.0).ln()).clamp(0.0, 1.0);
        let full = (self.kinds.base_weight(kind) * UNITS)
            .round()
            .clamp(0.0, f64::from(Weights::MAX));
        let idf = self.weight_units(kind, accounts);
        ((full * boost).round() as u8).min(idf)
    }
}

impl Recorder<'_> {
    /// Records the values a request presents (fingerprints, the /24 of an
    /// IPv4 address, the system prompt, composites), gathering evidence.
    fn record_values(
        &mut self,
        obs: &Request<'_>,
        keys: &[(KindRef, u64); PREFETCH],
        system: Option<(&str, u64)>,
    ) {
        let l = self.linker;
        let mut parts = Parts::new();
        for (i, &(kind, value)) in obs.fingerprints.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            let (k, vkey) = match keys.get(i) {
                Some(&key) => key,
                None => {
                    let k = l.kinds.get(kind);
                    (k, xxh3_64_with_seed(value.as_bytes(), k.hash))
                }
            };
            let raw = |feed: &mut dyn FnMut(&[u8])| feed(value.as_bytes());
            let got = self.value(&l.values, k, vkey, None, Some(&raw), || display(value));
            if k.index != UNKNOWN && parts.find(k.index).is_none() {
                parts.push(k.index, vkey, got);
            }
            if Some(k.index) == l.kinds.ip {
                if let Some(prefix) = ipv4_prefix(value) {
                    let k24 = l.kinds.at(l.kinds.ip24);
                    let vkey = xxh3_64_with_seed(prefix.as_bytes(), k24.hash);
                    let raw = |feed: &mut dyn FnMut(&[u8])| feed(prefix.as_bytes());
                    let got = self.value(&l.values, k24, vkey, None, Some(&raw), || {
                        format!("{prefix}.0/24")
                    });
                    parts.push(k24.index, vkey, got);
                }
            }
        }
        if let Some((text, vkey)) = system {
            let k = l.kinds.at(l.kinds.system);
            let raw = |feed: &mut dyn FnMut(&[u8])| feed(text.as_bytes());
            let got = self.value(&l.values, k, vkey, None, Some(&raw), || {
                format!("a system prompt ({:.40}…)", text.trim())
            });
            parts.push(k.index, vkey, got);
        }
        self.record_composites(obs, &parts);
    }

    /// Records the configured composites whose parts the request presents,
    /// each part already shared.
    fn record_composites(&mut self, obs: &Request<'_>, parts: &Parts) {
        let l = self.linker;
        for (kind, combo) in &l.kinds.composites {
            let mut key = [0u64; 4];
            let mut all_shared = true;
            let mut found = 0;
            // The parts' statistics, for the lift of a two-part composite.
            let mut stats = [Stat::default(); 4];
            for (i, part) in combo.iter().enumerate().take(key.len()) {
                match parts.find(*part) {
                    Some(p) => {
                        key[i] = p.vkey;
                        stats[i] = p.stat;
                        all_shared &= p.shared;
                        found += 1;
                    }
                    None => break,
                }
            }
            if found != combo.len().min(key.len()) || !all_shared {
                continue;
            }
            let k = l.kinds.at(*kind);
            let mut bytes = [0u8; 32];
            for (i, v) in key.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            let vkey = xxh3_64_with_seed(&bytes[..found * 8], k.hash);
            let counts = (found == 2).then_some([stats[0], stats[1]]);
            let raw = |feed: &mut dyn FnMut(&[u8])| composite_raw(l, obs, combo, feed);
            self.value(&l.values, k, vkey, counts, Some(&raw), || {
                composite_text(l, obs, combo)
            });
        }
    }

    /// Records that the account presents a value: counts it, makes it an
    /// anchor if the value has room, and adds evidence towards the value's
    /// other anchors. Returns the value's anchors and statistics.
    /// `composite_of` carries a two-part composite's parts' statistics.
    #[inline]
    pub(super) fn value(
        &mut self,
        table: &Values,
        k: KindRef,
        vkey: u64,
        composite_of: Option<[Stat; 2]>,
        raw: Option<&crate::intel::Pieces<'_>>,
        display: impl FnOnce() -> String,
    ) -> (Anchors, Stat) {
        let l = self.linker;
        let tag = value_tag(vkey, k.index);
        let full = (k.weight * UNITS).round().min(f64::from(Weights::MAX)) as u8;
        let (i, replaced) = table.find_or_insert(tag, self.minutes, full);
        if replaced != 0 {
            // (Its text, if kept, goes with it.)
            l.displays.lock().remove(&replaced);
        }
        // Count the account; the weight follows the count, and a
        // composite's also its parts and the population (refreshed once a
        // minute).
        let stat = table.count(
            i,
            self.account.rotate_left(17),
            self.minutes,
            |hll: ValueHll, unchanged| match (composite_of, unchanged) {
                (Some(parts), _) => l.composite_byte(k.index, hll.estimate(), parts),
                (None, Some(byte)) => byte,
                (None, None) => l.weight_byte(k.index, hll.estimate()),
            },
        );
        if std::ptr::eq(table, &l.values) {
            self.crowds.push(tag, stat.hll().estimate());
        }
        if stat.saturated() {
            self.intel(tag, k.index, raw, true, stat, None);
            return (Anchors::default(), stat);
        }
        let (anchors, now_shared) = table.anchor(i, self.a);
        if l.intel.is_some() {
            // (The other anchor too: the value's first account is sampled.)
            let other = anchors
                .iter()
                .find(|&b| b != self.a)
                .map(|b| l.accounts.tag(b));
            self.intel(tag, k.index, raw, shared(anchors, stat), stat, other);
        }
        // The second account: the value is now shared. (Template bands two
        // prompts share by chance are common: their text is kept once a
        // third account uses them.)
        if now_shared && (k.index != l.kinds.template || stat.hll().estimate() >= 2.5) {
            let mut d = l.displays.lock();
            if d.len() < l.max_texts {
                d.entry(tag).or_insert_with(|| display().into());
            }
        }
        let weight = stat.weight();
        for b in anchors.iter() {
            if b != self.a {
                self.ev.add(b, k.group, weight);
            }
        }
        (anchors, stat)
    }
}

impl Recorder<'_> {
    /// Hands a presented value to the guard's intelligence, if it has a
    /// consortium key (see `crate::intel`).
    #[inline]
    fn intel(
        &self,
        tag: u64,
        kind: u8,
        raw: Option<&crate::intel::Pieces<'_>>,
        shared: bool,
        stat: Stat,
        other: Option<u64>,
    ) {
        let (Some(intel), Some(raw)) = (&self.linker.intel, raw) else {
            return;
        };
        if kind == UNKNOWN {
            return;
        }
        let v = crate::intel::Presented {
            tag,
            kind,
            kind_name: self.linker.kinds.name(kind),
            account: self.account,
            minutes: self.minutes,
            shared,
            accounts: stat.hll().estimate(),
            raw,
            other,
        };
        intel.presented(&v, (self.minutes * 60) as f64);
    }
}

/// A composite's value for the consortium: its parts' values, each followed
/// by 0x1f.
fn composite_raw(l: &Linker, obs: &Request<'_>, combo: &[u8], feed: &mut dyn FnMut(&[u8])) {
    for p in combo {
        let name = l.kinds.name(*p);
        if *p == l.kinds.system {
            feed(obs.system.unwrap_or("").as_bytes());
        } else if let Some(f) = obs.fingerprints.iter().find(|f| f.0 == name) {
            feed(f.1.as_bytes());
        } else if let Some(prefix) = obs
            .fingerprints
            .iter()
            .find(|f| f.0 == "ip")
            .and_then(|f| ipv4_prefix(f.1))
        {
            feed(prefix.as_bytes());
        }
        feed(&[0x1f]);
    }
}

/// The text of a composite's value, for explanations.
fn composite_text(l: &Linker, obs: &Request<'_>, combo: &[u8]) -> String {
    let texts: Vec<String> = combo
        .iter()
        .map(|p| {
            let name = l.kinds.name(*p);
            if *p == l.kinds.system {
                return "(the system prompt)".to_string();
            }
            obs.fingerprints
                .iter()
                .find(|f| f.0 == name)
                .map(|f| display(f.1))
                .or_else(|| {
                    // A derived part (ip24).
                    obs.fingerprints
                        .iter()
                        .find(|f| f.0 == "ip")
                        .and_then(|f| ipv4_prefix(f.1))
                        .map(|p| format!("{p}.0/24"))
                })
                .unwrap_or_default()
        })
        .collect();
    texts.join(" + ")
}

#[cfg(test)]
mod tests {
    use crate::link::test_util::observe;
    use crate::link::{LinkConfig, Linker};

    #[test]
    fn a_card_shared_by_eight_accounts_links_them() {
        let l = Linker::new(LinkConfig::default());
        for i in 0..8 {
            observe(&l, &format!("a{i}"), &[("payment", "card-1")], f64::from(i));
        }
        assert_eq!(l.cluster_of("a0").unwrap().size, 8);
        assert_eq!(l.cluster_of("a7"), l.cluster_of("a0"));
        let ev = l.evidence("a3");
        assert_eq!(ev[0].kind, "payment");
        assert_eq!(ev[0].value, "card-1");
        assert_eq!(ev[0].weight, 1.0);
        // A tiny HyperLogLog's estimate: 8 within a few.
        assert!((4.0..=13.0).contains(&ev[0].accounts), "{:?}", ev[0]);
        // Names are known once an account has made a request in its cluster.
        // (a0 made its only request before it had a cluster.)
        assert_eq!(
            l.members_of("a0", 10),
            ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]
        );
        assert_eq!(l.members_of("a1", 10).len(), 6);
        observe(&l, "a0", &[("payment", "card-1")], 9.0);
        assert_eq!(l.members_of("a1", 10).len(), 7);
        assert_eq!(l.members_of("a0", 3).len(), 3);
    }

    #[test]
    fn an_address_shared_by_thousands_links_nobody() {
        let l = Linker::new(LinkConfig::default());
        for i in 0..2000 {
            observe(&l, &format!("m{i}"), &[("ip", "100.64.0.1")], f64::from(i));
        }
        l.rebuild_now(2000.0);
        assert!((0..2000).all(|i| l.cluster_of(&format!("m{i}")).unwrap().size == 1));
    }

    #[test]
    fn common_values_weigh_nothing_and_rare_ones_link() {
        let l = Linker::new(LinkConfig::default());
        for i in 0..3000 {
            observe(
                &l,
                &format!("u{i}"),
                &[("ja4", "common-sdk"), ("device", &format!("d{i}"))],
                f64::from(i),
            );
        }
        // Two accounts sharing a device link; the SDK fingerprint (3,000
        // accounts: weight 0) adds nothing and links nobody else.
        observe(&l, "x", &[("ja4", "common-sdk"), ("device", "dx")], 3001.0);
        let c = observe(&l, "y", &[("ja4", "common-sdk"), ("device", "dx")], 3002.0);
        assert_eq!(c.size, 2);
        let ev = l.evidence("y");
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(
            (ev[0].kind.as_str(), ev[0].value.as_str()),
            ("device", "dx")
        );
        assert_eq!(l.cluster_of("u0").unwrap().size, 1);
    }

    #[test]
    fn weak_kinds_add_up_only_across_kinds() {
        let l = Linker::new(LinkConfig::default());
        // A population to be rare in (a composite's lift compares its
        // accounts with what its parts' popularity predicts).
        for i in 0..200 {
            observe(
                &l,
                &format!("bg{i}"),
                &[("ja4", "common"), ("payment_bin", &format!("4{i:05}"))],
                0.0,
            );
        }
        // Same rare TLS fingerprint, same /24, same BIN: the composites link
        // (recorded once their parts are shared, so x's second request).
        let x = [
            ("ja4", "rare"),
            ("ip", "45.83.10.2"),
            ("payment_bin", "532610"),
        ];
        let y = [
            ("ja4", "rare"),
            ("ip", "45.83.10.9"),
            ("payment_bin", "532610"),
        ];
        observe(&l, "x", &x, 0.0);
        assert_eq!(observe(&l, "y", &y, 1.0).size, 1);
        // (The same fingerprints in the same minute are not recorded again:
        // x is recorded anew in the next minute.)
        assert_eq!(observe(&l, "x", &x, 1.5).size, 1);
        assert_eq!(observe(&l, "x", &x, 61.0).size, 2);
        let kinds: Vec<String> = l.evidence("x").into_iter().map(|v| v.kind).collect();
        assert!(kinds.contains(&"ja4+ip24".to_string()), "{kinds:?}");
        // The BIN alone, however often shared, does not.
        observe(&l, "p", &[("payment_bin", "411111")], 2.0);
        assert_eq!(observe(&l, "q", &[("payment_bin", "411111")], 3.0).size, 1);
        // Nor an address and its /24, which are one group of evidence (0.5).
        observe(&l, "r", &[("ip", "9.9.9.9")], 4.0);
        assert_eq!(observe(&l, "s", &[("ip", "9.9.9.9")], 5.0).size, 1);
    }
}
