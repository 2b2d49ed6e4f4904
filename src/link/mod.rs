//! Account linking: accounts that share rare enough fingerprints form
//! clusters.
//!
//! **This is the first increment of issue 4**: a single-lock prototype whose
//! model is meant to be tuned on the simulator before the lock-free,
//! bounded version the Guard needs. What it already does:
//!
//! - Every fingerprint value (`kind`, `value`) counts the distinct accounts
//!   that present it (exactly up to 64, then a HyperLogLog). A value's link
//!   weight is its kind's weight times an IDF-like factor that is 1 up to
//!   `full_weight_until` accounts and falls log-linearly to 0 at
//!   `zero_weight_from`: a card shared by 8 accounts links them; an address
//!   shared by 2,000 does not.
//! - Derived values: the /24 of an IPv4 address (`ip24`), the system prompt
//!   (`system`), the prompt's template (`template`: LSH band keys of its
//!   MinHash signature), and configured *composites* of weak kinds (e.g.
//!   `ja4+ip24`): a combination rare enough is strong evidence where each
//!   part alone is common.
//! - A new account presenting a value is linked to the value's first
//!   accounts; a pair's evidence is the sum of the current weights of the
//!   distinct values it shares, and pairs at or above `link_threshold` join
//!   one cluster. Evidence expires after `horizon_secs`: the clusters are
//!   rebuilt from unexpired evidence, with the weights values have *now*,
//!   every `rebuild_every_secs`, so an address that turned out to be shared
//!   by thousands unlinks the accounts it joined while it looked rare.
//! - Memory is bounded: accounts, values and pairs not seen within the
//!   horizon are forgotten at each rebuild, and a table over its configured
//!   limit (`max_accounts`, `max_values`, `max_pairs`) forgets all but its
//!   newest half at once.

mod uf;

use crate::sketch::{HyperLogLog, Signature};
use ahash::{AHashMap, AHashSet};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uf::UnionFind;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How linking weighs evidence. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Weight of a value of each kind shared by few accounts (default:
    /// `payment` 1.0, `device` 1.0, `system` 0.6, `ip` 0.5, `template` 0.15
    /// per band, `payment_bin` 0.2, `ip24` 0.2, `ja4` 0.3, `asn` 0.05,
    /// `user_agent` 0.05, `email_domain` 0.2; composites as configured).
    pub kind_weights: BTreeMap<String, f64>,
    /// Weight of kinds not listed (default 0.2).
    pub default_weight: f64,
    /// Values shared by at most this many accounts keep their full weight (default 10).
    pub full_weight_until: f64,
    /// Values shared by at least this many accounts carry no weight (default 1,000).
    pub zero_weight_from: f64,
    /// Summed pair evidence needed to link two accounts (default 1.0).
    pub link_threshold: f64,
    /// How long evidence counts, in seconds (default 86,400).
    pub horizon_secs: f64,
    /// How often the clusters are rebuilt from unexpired evidence (default 3,600 s).
    pub rebuild_every_secs: f64,
    /// Combinations of kinds that form composite values (default
    /// `ja4+ip24`, `ja4+payment_bin`, `ip24+payment_bin`).
    pub composites: Vec<Vec<String>>,
    /// Kinds whose evidence overlaps, by group: a pair counts only the
    /// strongest value of each group (default: `network` = ip, ip24,
    /// ja4+ip24, ip24+payment_bin; `payment` = payment, payment_bin).
    /// Kinds not listed are their own group.
    pub groups: BTreeMap<String, String>,
    /// The most accounts, fingerprint values and linked pairs remembered
    /// (defaults 1,000,000, 4,000,000 and 4,000,000). Past any of them, the
    /// oldest half of what is remembered is forgotten at once (as if its
    /// evidence had expired).
    pub max_accounts: usize,
    /// See `max_accounts`.
    pub max_values: usize,
    /// See `max_accounts`.
    pub max_pairs: usize,
    /// New accounts a value links to its first accounts (default 4).
    pub anchors_per_value: usize,
    /// Seed of every stored hash.
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        let w = [
            ("payment", 1.0),
            ("device", 1.0),
            ("system", 0.6),
            ("ip", 0.5),
            ("template", 0.15),
            ("payment_bin", 0.2),
            ("ip24", 0.2),
            ("ja4", 0.3),
            ("asn", 0.05),
            ("user_agent", 0.05),
            ("email_domain", 0.2),
            ("ja4+ip24", 0.6),
            ("ja4+payment_bin", 0.6),
            ("ip24+payment_bin", 0.4),
        ];
        LinkConfig {
            kind_weights: w.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            default_weight: 0.2,
            full_weight_until: 10.0,
            zero_weight_from: 1000.0,
            link_threshold: 1.0,
            horizon_secs: 86_400.0,
            rebuild_every_secs: 3600.0,
            composites: [
                vec!["ja4", "ip24"],
                vec!["ja4", "payment_bin"],
                vec!["ip24", "payment_bin"],
            ]
            .into_iter()
            .map(|c| c.into_iter().map(String::from).collect())
            .collect(),
            groups: [
                ("ip", "network"),
                ("ip24", "network"),
                ("ja4+ip24", "network"),
                ("ip24+payment_bin", "network"),
                ("payment", "payment"),
                ("payment_bin", "payment"),
            ]
            .iter()
            .map(|(k, g)| (k.to_string(), g.to_string()))
            .collect(),
            max_accounts: 1_000_000,
            max_values: 4_000_000,
            max_pairs: 4_000_000,
            anchors_per_value: 4,
            seed: 0x6c69_6e6b,
        }
    }
}

impl LinkConfig {
    /// The weight of a value of `kind` shared by `accounts` accounts.
    pub fn weight(&self, kind: &str, accounts: f64) -> f64 {
        let base = self
            .kind_weights
            .get(kind)
            .copied()
            .unwrap_or(self.default_weight);
        base * idf(accounts, self.full_weight_until, self.zero_weight_from)
    }
}

/// 1 up to `full`, falling linearly in log(n) to 0 at `zero`.
fn idf(n: f64, full: f64, zero: f64) -> f64 {
    if n <= full {
        return 1.0;
    }
    if n >= zero {
        return 0.0;
    }
    1.0 - (n / full).ln() / (zero / full).ln()
}

/// One request's identity as linking sees it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The account.
    pub account: &'a str,
    /// (kind, value) pairs.
    pub fingerprints: &'a [(&'a str, &'a str)],
    /// The prompt, for its template.
    pub prompt: Option<&'a str>,
    /// The system prompt.
    pub system: Option<&'a str>,
    /// Seconds (any origin, increasing).
    pub now: f64,
}

/// An account's cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// Stable id: a hash of the cluster's first account.
    pub id: u64,
    /// Accounts in it.
    pub size: u32,
}

/// One shared value, for explanations.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedValue {
    /// The kind (`payment`, `ja4+ip24`, …).
    pub kind: String,
    /// The value as presented (truncated), or a hash for derived kinds.
    pub value: String,
    /// Estimated distinct accounts presenting it.
    pub accounts: f64,
    /// Its current link weight.
    pub weight: f64,
}

struct Value {
    kind: u16,
    /// How many of `anchors` are set.
    n_anchors: u8,
    /// The first distinct accounts seen with this value: the anchors new
    /// accounts link to, and the first members of the exact count.
    anchors: [u32; MAX_ANCHORS],
    /// Further distinct members, exact while the value is shared by fewer
    /// than `SMALL` accounts (no allocation until a fifth account).
    more: Vec<u32>,
    /// The distinct count beyond `SMALL` accounts (allocated only then).
    distinct: Option<Box<HyperLogLog>>,
    /// Distinct accounts (exact while few, then the HyperLogLog's estimate,
    /// refreshed every 16 inserts).
    accounts: f64,
    /// The link weight at `accounts` (cached: read on every pair evaluation).
    weight: f64,
    inserts: u32,
    /// The value as shown in explanations (empty for derived kinds).
    display: Box<str>,
    /// When an account last presented it.
    last_seen: f64,
}

const MAX_ANCHORS: usize = 4;

impl Value {
    fn new(kind: u16, display: Box<str>) -> Value {
        Value {
            kind,
            n_anchors: 0,
            anchors: [0; MAX_ANCHORS],
            more: Vec::new(),
            distinct: None,
            accounts: 0.0,
            weight: 0.0,
            inserts: 0,
            display,
            last_seen: 0.0,
        }
    }

    fn anchors(&self) -> &[u32] {
        &self.anchors[..usize::from(self.n_anchors)]
    }

    fn exact(&self) -> usize {
        usize::from(self.n_anchors) + self.more.len()
    }

    /// Whether `account` is already counted (only known while exact).
    fn knows(&self, account: u32) -> bool {
        self.anchors().contains(&account) || self.more.contains(&account)
    }

    /// Counts `account` (making it an anchor while there is room).
    fn count(&mut self, account: u32, anchors_wanted: usize, seed: u64) {
        if self.distinct.is_none() {
            if usize::from(self.n_anchors) < anchors_wanted.min(MAX_ANCHORS) {
                self.anchors[usize::from(self.n_anchors)] = account;
                self.n_anchors += 1;
            } else {
                self.more.push(account);
            }
            self.accounts = self.exact() as f64;
            if self.exact() == SMALL {
                let h = HyperLogLog::new(8)
                    .expect("valid precision")
                    .with_seed(seed);
                for a in self.anchors().iter().chain(&self.more) {
                    h.insert(a);
                }
                self.more = Vec::new();
                self.distinct = Some(Box::new(h));
            }
            return;
        }
        if let Some(h) = &self.distinct {
            h.insert(&account);
            self.inserts += 1;
            if self.inserts % 16 == 0 {
                self.accounts = h.estimate().max(SMALL as f64);
            }
        }
    }
}

const SMALL: usize = 64;

#[derive(Default)]
struct State {
    index: AHashMap<u64, u32>,
    names: Vec<String>,
    /// When each account was last seen.
    seen: Vec<f64>,
    kinds: Vec<String>,
    /// Evidence group of each kind (an index < 64).
    kind_group: Vec<u8>,
    group_index: AHashMap<String, u8>,
    kind_index: AHashMap<String, u16>,
    values: AHashMap<u64, Value>,
    /// (low, high) account index → value hash → last seen.
    pairs: AHashMap<(u32, u32), AHashMap<u64, f64>>,
    uf: UnionFind,
    last_rebuild: f64,
}

impl State {
    /// The index of `kind`, registered (with its evidence group) if new.
    fn intern_kind(&mut self, kind: &str, groups: &BTreeMap<String, String>) -> u16 {
        if let Some(&k) = self.kind_index.get(kind) {
            return k;
        }
        let k = self.kinds.len() as u16;
        let group = groups
            .get(kind)
            .cloned()
            .unwrap_or_else(|| kind.to_string());
        let next_group = self.group_index.len().min(63) as u8;
        let g = *self.group_index.entry(group).or_insert(next_group);
        self.kind_group.push(g);
        self.kind_index.insert(kind.to_string(), k);
        self.kinds.push(kind.to_string());
        k
    }
}

/// Links accounts into clusters (see the module docs).
pub struct Linker {
    config: LinkConfig,
    state: Mutex<State>,
}

impl Linker {
    /// A linker with this configuration.
    pub fn new(config: LinkConfig) -> Linker {
        Linker {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Records a request and returns its account's cluster.
    pub fn observe(&self, obs: &Observation<'_>) -> ClusterView {
        self.observe_with_templates(obs).0
    }

    /// [`Linker::observe`], also returning the prompt's template band keys
    /// (for scoring).
    pub fn observe_with_templates(&self, obs: &Observation<'_>) -> (ClusterView, Vec<u64>) {
        let values = self.values_of(obs);
        let template_kind = "template";
        let bands: Vec<u64> = values
            .iter()
            .filter(|(k, _, _)| k == template_kind)
            .map(|(_, key, _)| *key)
            .collect();
        let mut st = self.state.lock();
        if obs.now - st.last_rebuild >= self.config.rebuild_every_secs {
            self.rebuild(&mut st, obs.now);
        }
        let seed = self.config.seed;
        let acct_hash = xxh3_64_with_seed(obs.account.as_bytes(), seed);
        let next = st.names.len() as u32;
        let a = *st.index.entry(acct_hash).or_insert(next);
        if a == next {
            st.names.push(obs.account.to_string());
            st.seen.push(obs.now);
            let n = st.names.len();
            st.uf.grow(n);
        }
        st.seen[a as usize] = obs.now;
        for (kind, key, display) in values {
            let kind_ix = st.intern_kind(&kind, &self.config.groups);
            let (before, n_before, weight) = {
                let v = st
                    .values
                    .entry(key)
                    .or_insert_with(|| Value::new(kind_ix, display.into_boxed_str()));
                v.last_seen = obs.now;
                let before: [u32; MAX_ANCHORS] = v.anchors;
                let n_before = usize::from(v.n_anchors);
                let weight = if v.distinct.is_none() && v.knows(a) {
                    // Seen before: refresh its evidence below.
                    f64::NAN
                } else {
                    v.count(a, self.config.anchors_per_value, seed);
                    v.weight = self.config.weight(&kind, v.accounts);
                    v.weight
                };
                (before, n_before, weight)
            };
            if weight <= 0.0 {
                continue; // too common to link anything
            }
            for &b in before[..n_before].iter().filter(|&&b| b != a) {
                let pair = (a.min(b), a.max(b));
                let fresh = st
                    .pairs
                    .entry(pair)
                    .or_default()
                    .insert(key, obs.now)
                    .is_none();
                if fresh
                    && st.uf.root(pair.0) != st.uf.root(pair.1)
                    && self.pair_strength(&st, pair) >= self.config.link_threshold
                {
                    st.uf.union(pair.0, pair.1);
                }
            }
        }
        // Over a limit: forget the older half now, so no table ever holds
        // more than its limit when `observe` returns.
        let mut a = a;
        if st.names.len() > self.config.max_accounts
            || st.values.len() > self.config.max_values
            || st.pairs.len() > self.config.max_pairs
        {
            self.rebuild(&mut st, obs.now);
            a = match st.index.get(&acct_hash) {
                Some(&a) => a,
                None => {
                    // Forgotten in a tie at the same instant: start it afresh.
                    let a = st.names.len() as u32;
                    st.index.insert(acct_hash, a);
                    st.names.push(obs.account.to_string());
                    st.seen.push(obs.now);
                    let n = st.names.len();
                    st.uf.grow(n);
                    a
                }
            };
        }
        let root = st.uf.root(a);
        let view = ClusterView {
            id: xxh3_64_with_seed(st.names[root as usize].as_bytes(), seed),
            size: st.uf.size_of(a),
        };
        (view, bands)
    }

    /// A pair's evidence: for each evidence group, the strongest value of
    /// that group the two share, summed over groups (so sixteen template
    /// bands, or an address and the composites built on it, count once, and
    /// only independent kinds of evidence add up).
    fn pair_strength(&self, st: &State, pair: (u32, u32)) -> f64 {
        let Some(vals) = st.pairs.get(&pair) else {
            return 0.0;
        };
        let mut best: [f64; 64] = [0.0; 64];
        let mut total = 0.0;
        for v in vals.keys().filter_map(|k| st.values.get(k)) {
            let w = v.weight;
            let slot = &mut best[usize::from(st.kind_group[usize::from(v.kind)])];
            if w > *slot {
                total += w - *slot;
                *slot = w;
            }
        }
        total
    }

    /// Drops expired evidence and rebuilds the clusters from what is left,
    /// with every value's current weight.
    fn rebuild(&self, st: &mut State, now: f64) {
        let c = &self.config;
        // What is forgotten: anything older than the horizon, and if a table
        // is over its limit, all but its newest half (ties broken by id).
        let newest_half = |mut items: Vec<(f64, u64)>, limit: usize| -> Option<(f64, u64)> {
            if items.len() <= limit {
                return None;
            }
            let at = items.len() - (limit / 2).max(1);
            let by = |x: &(f64, u64), y: &(f64, u64)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
            items.select_nth_unstable_by(at, by);
            Some(items[at])
        };
        let horizon_cut = now - c.horizon_secs;
        let keep = |t: f64, id: u64, cut: Option<(f64, u64)>| {
            t >= horizon_cut
                && cut.is_none_or(|(ct, cid)| t.total_cmp(&ct).then(id.cmp(&cid)).is_ge())
        };
        let account_cut = newest_half(
            st.seen
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, i as u64))
                .collect(),
            c.max_accounts,
        );
        let value_cut = newest_half(
            st.values.iter().map(|(&k, v)| (v.last_seen, k)).collect(),
            c.max_values,
        );
        let pair_id = |(x, y): (u32, u32)| (u64::from(x) << 32) | u64::from(y);
        let pair_time =
            |vals: &AHashMap<u64, f64>| vals.values().copied().fold(f64::NEG_INFINITY, f64::max);
        let pair_cut = newest_half(
            st.pairs
                .iter()
                .map(|(&p, v)| (pair_time(v), pair_id(p)))
                .collect(),
            c.max_pairs,
        );

        // Accounts: keep the recent ones, renumbered densely.
        let mut renumber = vec![u32::MAX; st.names.len()];
        let (mut names, mut seen) = (Vec::new(), Vec::new());
        for (i, (name, &t)) in st.names.iter().zip(&st.seen).enumerate() {
            if keep(t, i as u64, account_cut) {
                renumber[i] = names.len() as u32;
                names.push(name.clone());
                seen.push(t);
            }
        }
        let map = |a: u32| renumber.get(a as usize).copied().filter(|&n| n != u32::MAX);
        st.index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (xxh3_64_with_seed(n.as_bytes(), c.seed), i as u32))
            .collect();
        st.names = names;
        st.seen = seen;

        // Values: keep the recent ones; their members are renumbered (the
        // forgotten drop out of the exact lists; a HyperLogLog keeps them).
        st.values.retain(|&k, v| {
            if !keep(v.last_seen, k, value_cut) {
                return false;
            }
            let anchors: Vec<u32> = v.anchors().iter().filter_map(|&a| map(a)).collect();
            v.n_anchors = anchors.len() as u8;
            v.anchors[..anchors.len()].copy_from_slice(&anchors);
            v.more = v.more.iter().filter_map(|&a| map(a)).collect();
            if v.distinct.is_none() {
                v.accounts = v.exact() as f64;
            }
            true
        });
        for v in st.values.values_mut() {
            v.weight = c.weight(&st.kinds[v.kind as usize], v.accounts);
        }

        // Pairs: keep unexpired evidence between kept accounts.
        let old = std::mem::take(&mut st.pairs);
        for ((x, y), mut vals) in old {
            if !keep(pair_time(&vals), pair_id((x, y)), pair_cut) {
                continue;
            }
            vals.retain(|k, t| *t >= horizon_cut && st.values.contains_key(k));
            if let (Some(x), Some(y), false) = (map(x), map(y), vals.is_empty()) {
                st.pairs.insert((x.min(y), x.max(y)), vals);
            }
        }
        self.relink(st);
        st.last_rebuild = now;
    }

    /// Recomputes the clusters from the evidence as it stands.
    fn relink(&self, st: &mut State) {
        st.uf = UnionFind::default();
        st.uf.grow(st.names.len());
        let pairs: Vec<(u32, u32)> = st.pairs.keys().copied().collect();
        for pair in pairs {
            if self.pair_strength(st, pair) >= self.config.link_threshold {
                st.uf.union(pair.0, pair.1);
            }
        }
    }

    /// How many accounts, fingerprint values and linked pairs it remembers.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let st = self.state.lock();
        (st.names.len(), st.values.len(), st.pairs.len())
    }

    /// Forces a rebuild at time `now` (also done automatically).
    pub fn rebuild_now(&self, now: f64) {
        let mut st = self.state.lock();
        self.rebuild(&mut st, now);
    }

    /// The cluster of `account`, if it was seen.
    pub fn cluster_of(&self, account: &str) -> Option<ClusterView> {
        let st = self.state.lock();
        let a = *st
            .index
            .get(&xxh3_64_with_seed(account.as_bytes(), self.config.seed))?;
        let root = st.uf.root(a);
        Some(ClusterView {
            id: xxh3_64_with_seed(st.names[root as usize].as_bytes(), self.config.seed),
            size: st.uf.size_of(a),
        })
    }

    /// Up to `limit` other accounts of `account`'s cluster.
    pub fn members_of(&self, account: &str, limit: usize) -> Vec<String> {
        let st = self.state.lock();
        let Some(&a) = st
            .index
            .get(&xxh3_64_with_seed(account.as_bytes(), self.config.seed))
        else {
            return Vec::new();
        };
        let root = st.uf.root(a);
        (0..st.names.len() as u32)
            .filter(|&b| b != a && st.uf.root(b) == root)
            .take(limit)
            .map(|b| st.names[b as usize].clone())
            .collect()
    }

    /// Every account with its cluster id (for evaluation and reports).
    pub fn clusters(&self) -> Vec<(String, u64)> {
        let st = self.state.lock();
        (0..st.names.len() as u32)
            .map(|a| {
                let root = st.uf.root(a);
                (
                    st.names[a as usize].clone(),
                    xxh3_64_with_seed(st.names[root as usize].as_bytes(), self.config.seed),
                )
            })
            .collect()
    }

    /// The values `account` shares with the other accounts of its cluster
    /// that link it, strongest first.
    pub fn evidence(&self, account: &str) -> Vec<SharedValue> {
        let st = self.state.lock();
        let Some(&a) = st
            .index
            .get(&xxh3_64_with_seed(account.as_bytes(), self.config.seed))
        else {
            return Vec::new();
        };
        let mut seen = AHashSet::new();
        let mut out = Vec::new();
        for (&(x, y), vals) in &st.pairs {
            if x != a && y != a {
                continue;
            }
            for key in vals.keys() {
                if !seen.insert(*key) {
                    continue;
                }
                if let Some(v) = st.values.get(key) {
                    let kind = &st.kinds[v.kind as usize];
                    let n = v.accounts;
                    out.push(SharedValue {
                        kind: kind.clone(),
                        value: if v.display.is_empty() {
                            "(a prompt template)".to_string()
                        } else {
                            v.display.to_string()
                        },
                        accounts: n,
                        weight: self.config.weight(kind, n),
                    });
                }
            }
        }
        out.sort_by(|p, q| q.weight.total_cmp(&p.weight));
        out
    }

    /// The (kind, key, display) values of an observation, derived ones included.
    fn values_of(&self, obs: &Observation<'_>) -> Vec<(String, u64, String)> {
        let seed = self.config.seed;
        let key = |kind: &str, value: &str| {
            let k = xxh3_64_with_seed(kind.as_bytes(), seed);
            xxh3_64_with_seed(value.as_bytes(), k)
        };
        let display = |v: &str| v.chars().take(64).collect::<String>();
        let mut plain: BTreeMap<String, String> = BTreeMap::new();
        for (kind, value) in obs.fingerprints {
            if value.is_empty() {
                continue;
            }
            plain.insert(kind.to_string(), value.to_string());
            if *kind == "ip" {
                let octets: Vec<&str> = value.split('.').collect();
                if octets.len() == 4 {
                    plain.insert(
                        "ip24".into(),
                        format!("{}.{}.{}.0/24", octets[0], octets[1], octets[2]),
                    );
                }
            }
        }
        let mut out: Vec<(String, u64, String)> = plain
            .iter()
            .map(|(k, v)| (k.clone(), key(k, v), display(v)))
            .collect();
        for combo in &self.config.composites {
            let parts: Option<Vec<&String>> = combo.iter().map(|k| plain.get(k)).collect();
            if let Some(parts) = parts {
                let kind = combo.join("+");
                let value = parts
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("|");
                out.push((kind.clone(), key(&kind, &value), display(&value)));
            }
        }
        if let Some(system) = obs.system.filter(|s| !s.trim().is_empty()) {
            let h = xxh3_64_with_seed(system.as_bytes(), seed);
            out.push((
                "system".into(),
                key("system", &h.to_string()),
                format!("system prompt {h:016x}"),
            ));
        }
        if let Some(prompt) = obs.prompt.filter(|p| p.split_whitespace().count() >= 8) {
            if let Ok(sig) = Signature::from_text(64, seed, prompt, 3) {
                for (band, vals) in sig.values().chunks(4).enumerate() {
                    let mut b = band as u64;
                    for v in vals {
                        b = xxh3_64_with_seed(&v.to_le_bytes(), b);
                    }
                    out.push((
                        "template".into(),
                        key("template", &b.to_string()),
                        String::new(),
                    ));
                }
            }
        }
        out
    }
}

/// A decoded linker state, checked and ready to install.
pub(crate) struct LinkSnapshot(State);

impl Linker {
    /// Writes the state in a fixed order (times as they are).
    pub(crate) fn encode(&self, w: &mut crate::sketch::codec::Writer) {
        let now = 0.0;
        let st = self.state.lock();
        w.u64(self.config.seed);
        w.f64(st.last_rebuild - now);
        w.u64(st.names.len() as u64);
        for (name, t) in st.names.iter().zip(&st.seen) {
            w.str(name);
            w.f64(t - now);
        }
        w.u64(st.kinds.len() as u64);
        for k in &st.kinds {
            w.str(k);
        }
        let mut keys: Vec<u64> = st.values.keys().copied().collect();
        keys.sort_unstable();
        w.u64(keys.len() as u64);
        for k in keys {
            let v = &st.values[&k];
            w.u64(k);
            w.u32(u32::from(v.kind));
            w.u8(v.n_anchors);
            for a in v.anchors() {
                w.u32(*a);
            }
            w.u64(v.more.len() as u64);
            for a in &v.more {
                w.u32(*a);
            }
            match &v.distinct {
                Some(h) => w.blob(&h.to_bytes()),
                None => w.blob(&[]),
            }
            w.f64(v.accounts);
            w.u32(v.inserts);
            w.str(&v.display);
            w.f64(v.last_seen - now);
        }
        let mut pairs: Vec<(u32, u32)> = st.pairs.keys().copied().collect();
        pairs.sort_unstable();
        w.u64(pairs.len() as u64);
        for p in pairs {
            w.u32(p.0);
            w.u32(p.1);
            let mut vals: Vec<(u64, f64)> = st.pairs[&p].iter().map(|(&k, &t)| (k, t)).collect();
            vals.sort_unstable_by_key(|v| v.0);
            w.u64(vals.len() as u64);
            for (k, t) in vals {
                w.u64(k);
                w.f64(t - now);
            }
        }
    }

    /// Reads what `encode` wrote, checking every index, and shifts every
    /// time by `now` (0 to keep them). Nothing is installed.
    pub(crate) fn decode(
        &self,
        r: &mut crate::sketch::codec::Reader<'_>,
        now: f64,
    ) -> Result<LinkSnapshot, crate::sketch::Error> {
        let c = &self.config;
        if r.u64("link seed")? != c.seed {
            return Err(r.err("it was taken with another link seed"));
        }
        let mut st = State {
            last_rebuild: now + r.f64("last rebuild")?,
            ..State::default()
        };
        let n = r.u64("account count")?;
        let n = r.expect_items(n, 9, "accounts")?;
        for i in 0..n {
            let name = r.str("account name")?;
            let t = now + r.f64("account seen")?;
            let h = xxh3_64_with_seed(name.as_bytes(), c.seed);
            if st.index.insert(h, i as u32).is_some() {
                return Err(r.err(format!("account {name:?} appears twice")));
            }
            st.names.push(name);
            st.seen.push(t);
        }
        let accounts = st.names.len() as u32;
        let check = |r: &crate::sketch::codec::Reader<'_>, a: u32| {
            if a < accounts {
                Ok(a)
            } else {
                Err(r.err(format!("account index {a} is beyond {accounts}")))
            }
        };
        let n = r.u64("kind count")?;
        let n = r.expect_items(n, 1, "kinds")?;
        if n > u16::MAX as usize {
            return Err(r.err("too many kinds"));
        }
        for i in 0..n {
            let kind = r.str("kind")?;
            if usize::from(st.intern_kind(&kind, &c.groups)) != i {
                return Err(r.err(format!("kind {kind:?} appears twice")));
            }
        }
        let n = r.u64("value count")?;
        let n = r.expect_items(n, 40, "values")?;
        let mut last_key = None;
        for _ in 0..n {
            let key = r.u64("value key")?;
            if last_key.is_some_and(|l| l >= key) {
                return Err(r.err("values are not in order (or repeat)"));
            }
            last_key = Some(key);
            let kind = r.u32("value kind")?;
            if kind as usize >= st.kinds.len() {
                return Err(r.err(format!("kind index {kind} is beyond {}", st.kinds.len())));
            }
            let mut v = Value::new(kind as u16, Box::from(""));
            v.n_anchors = r.u8("anchor count")?;
            if usize::from(v.n_anchors) > MAX_ANCHORS {
                return Err(r.err("too many anchors"));
            }
            for i in 0..usize::from(v.n_anchors) {
                let a = r.u32("anchor")?;
                v.anchors[i] = check(r, a)?;
            }
            let m = r.u64("member count")?;
            let m = r.expect_items(m, 4, "members")?;
            if m >= SMALL {
                return Err(r.err("too many exact members"));
            }
            for _ in 0..m {
                let a = r.u32("member")?;
                v.more.push(check(r, a)?);
            }
            let hll = r.blob("distinct count")?;
            if !hll.is_empty() {
                let h = HyperLogLog::from_bytes(hll).map_err(|e| r.err(e.to_string()))?;
                v.distinct = Some(Box::new(h));
            }
            v.accounts = r.f64("account estimate")?;
            v.inserts = r.u32("inserts")?;
            v.display = r.str("display")?.into_boxed_str();
            v.last_seen = now + r.f64("value seen")?;
            v.weight = c.weight(&st.kinds[v.kind as usize], v.accounts);
            st.values.insert(key, v);
        }
        let n = r.u64("pair count")?;
        let n = r.expect_items(n, 16, "pairs")?;
        let mut last_pair = None;
        for _ in 0..n {
            let x = r.u32("pair")?;
            let y = r.u32("pair")?;
            let (x, y) = (check(r, x)?, check(r, y)?);
            if x >= y || last_pair.is_some_and(|l| l >= (x, y)) {
                return Err(r.err("pairs are not in order (or repeat)"));
            }
            last_pair = Some((x, y));
            let m = r.u64("evidence count")?;
            let m = r.expect_items(m, 16, "evidence")?;
            let mut vals = AHashMap::with_capacity(m);
            for _ in 0..m {
                let k = r.u64("evidence value")?;
                let t = now + r.f64("evidence seen")?;
                if !st.values.contains_key(&k) || vals.insert(k, t).is_some() {
                    return Err(r.err("evidence names an unknown or repeated value"));
                }
            }
            st.pairs.insert((x, y), vals);
        }
        self.relink(&mut st);
        Ok(LinkSnapshot(st))
    }

    /// Replaces the state with a decoded one.
    pub(crate) fn install(&self, snapshot: LinkSnapshot) {
        *self.state.lock() = snapshot.0;
    }

    /// Folds another node's decoded state in: accounts by name, values by
    /// key (exact members and HyperLogLogs merged), evidence unioned (latest
    /// time kept); the clusters are then recomputed from all the evidence.
    pub(crate) fn merge(&self, other: LinkSnapshot) {
        let o = other.0;
        let c = &self.config;
        let mut st = self.state.lock();
        let st = &mut *st;
        let accounts: Vec<u32> = o
            .names
            .iter()
            .zip(&o.seen)
            .map(|(name, &t)| {
                let h = xxh3_64_with_seed(name.as_bytes(), c.seed);
                let next = st.names.len() as u32;
                let a = *st.index.entry(h).or_insert(next);
                if a == next {
                    st.names.push(name.clone());
                    st.seen.push(t);
                }
                st.seen[a as usize] = st.seen[a as usize].max(t);
                a
            })
            .collect();
        st.uf.grow(st.names.len());
        let kinds: Vec<u16> = o
            .kinds
            .iter()
            .map(|kind| st.intern_kind(kind, &c.groups))
            .collect();
        for (key, ov) in o.values {
            let v = st
                .values
                .entry(key)
                .or_insert_with(|| Value::new(kinds[usize::from(ov.kind)], ov.display.clone()));
            let anchors: Vec<u32> = v.anchors().to_vec();
            let mut newcomers = Vec::new();
            for &a in ov.anchors().iter().chain(&ov.more) {
                let a = accounts[a as usize];
                if v.distinct.is_some() || !v.knows(a) {
                    v.count(a, c.anchors_per_value, c.seed);
                    newcomers.push(a);
                }
            }
            if ov.distinct.is_some() && v.distinct.is_none() {
                let mine = HyperLogLog::new(8)
                    .expect("valid precision")
                    .with_seed(c.seed);
                for a in v.anchors().iter().chain(&v.more) {
                    mine.insert(a);
                }
                v.more = Vec::new();
                v.distinct = Some(Box::new(mine));
            }
            if let (Some(mine), Some(theirs)) = (&v.distinct, &ov.distinct) {
                // Same precision and seed: both were built with this config.
                let _ = mine.merge(theirs);
            }
            if let Some(h) = &v.distinct {
                v.accounts = h.estimate().max(SMALL as f64);
            }
            v.last_seen = v.last_seen.max(ov.last_seen);
            v.weight = c.weight(&st.kinds[v.kind as usize], v.accounts);
            // The other node's members link to this node's anchors, as if
            // they had presented the value here.
            if v.weight > 0.0 {
                let seen = v.last_seen;
                for &a in &newcomers {
                    for &b in anchors.iter().filter(|&&b| b != a) {
                        st.pairs
                            .entry((a.min(b), a.max(b)))
                            .or_default()
                            .insert(key, seen);
                    }
                }
            }
        }
        for ((x, y), vals) in o.pairs {
            let (x, y) = (accounts[x as usize], accounts[y as usize]);
            if x == y {
                continue;
            }
            let e = st.pairs.entry((x.min(y), x.max(y))).or_default();
            for (k, t) in vals {
                let slot = e.entry(k).or_insert(t);
                *slot = slot.max(t);
            }
        }
        self.relink(st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(l: &Linker, account: &str, fps: &[(&str, &str)], now: f64) -> ClusterView {
        l.observe(&Observation {
            account,
            fingerprints: fps,
            prompt: None,
            system: None,
            now,
        })
    }

    #[test]
    fn idf_falls_from_full_to_zero() {
        assert_eq!(idf(3.0, 10.0, 1000.0), 1.0);
        assert!((idf(100.0, 10.0, 1000.0) - 0.5).abs() < 1e-9);
        assert_eq!(idf(5000.0, 10.0, 1000.0), 0.0);
    }

    #[test]
    fn a_card_shared_by_eight_accounts_links_them() {
        let l = Linker::new(LinkConfig::default());
        for i in 0..8 {
            observe(&l, &format!("a{i}"), &[("payment", "card-1")], f64::from(i));
        }
        assert_eq!(l.cluster_of("a0").unwrap().size, 8);
        let ev = l.evidence("a3");
        assert_eq!(ev[0].kind, "payment");
        assert_eq!(ev[0].accounts, 8.0);
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
    fn popular_values_keep_counting_past_the_exact_limit() {
        let l = Linker::new(LinkConfig::default());
        for i in 0..300 {
            observe(
                &l,
                &format!("u{i}"),
                &[("ja4", "common-sdk"), ("device", &format!("d{i}"))],
                f64::from(i),
            );
            observe(
                &l,
                &format!("u{i}"),
                &[("ja4", "common-sdk"), ("device", &format!("d{i}"))],
                f64::from(i),
            );
        }
        observe(&l, "x", &[("ja4", "common-sdk"), ("device", "dx")], 301.0);
        observe(&l, "y", &[("ja4", "common-sdk"), ("device", "dx")], 302.0);
        // The SDK fingerprint links y to its first accounts, weakly, and
        // reports its true popularity: ~302 accounts (a HyperLogLog estimate
        // past 64 accounts: 6.5 % standard error, so within 3σ ≈ 60).
        let ja4 = l
            .evidence("y")
            .into_iter()
            .find(|v| v.kind == "ja4")
            .unwrap();
        assert!((ja4.accounts - 302.0).abs() < 60.0, "{ja4:?}");
        assert!(ja4.weight < 0.1);
        let dev = l
            .evidence("y")
            .into_iter()
            .find(|v| v.kind == "device")
            .unwrap();
        assert_eq!(dev.accounts, 2.0);
    }

    #[test]
    fn weak_kinds_add_up_only_across_kinds() {
        let l = Linker::new(LinkConfig::default());
        // Same rare TLS fingerprint, same /24, same BIN: composites link.
        observe(
            &l,
            "x",
            &[
                ("ja4", "rare"),
                ("ip", "45.83.10.2"),
                ("payment_bin", "532610"),
            ],
            0.0,
        );
        let c = observe(
            &l,
            "y",
            &[
                ("ja4", "rare"),
                ("ip", "45.83.10.9"),
                ("payment_bin", "532610"),
            ],
            1.0,
        );
        assert_eq!(c.size, 2);
        // The BIN alone, however often shared, does not.
        observe(&l, "p", &[("payment_bin", "411111")], 2.0);
        assert_eq!(observe(&l, "q", &[("payment_bin", "411111")], 3.0).size, 1);
    }

    #[test]
    fn memory_stays_within_the_configured_limits() {
        let config = LinkConfig {
            max_accounts: 1000,
            max_values: 3000,
            max_pairs: 2000,
            ..LinkConfig::default()
        };
        let l = Linker::new(config);
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
            let (accounts, values, pairs) = l.sizes();
            assert!(
                accounts <= 1000 && values <= 3000 && pairs <= 2000,
                "{accounts} {values} {pairs}"
            );
        }
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
            assert!(l.sizes().0 <= 101);
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
        observe(&l, "c", &[("device", "other")], 500.0);
        // Past the horizon, a and b and their link are forgotten.
        assert!(l.cluster_of("a").is_none() && l.cluster_of("b").is_none());
        assert_eq!(l.sizes(), (1, 1, 0));
    }
}
