//! Account linking: accounts that share rare enough fingerprints form
//! clusters.
//!
//! - Every fingerprint value (`kind`, `value`) counts the distinct accounts
//!   that present it in a tiny HyperLogLog. A value's link weight is its
//!   kind's weight times an IDF-like factor that is 1 up to
//!   `full_weight_until` accounts and falls log-linearly to 0 at
//!   `zero_weight_from`: a card shared by 8 accounts links them; an address
//!   shared by 2,000 does not.
//! - Derived values: the /24 of an IPv4 address (`ip24`), the system prompt
//!   (`system`), the prompt's template (`template`: the 16 LSH band keys of
//!   its 64-value MinHash signature over word 3-grams), and configured
//!   *composites* of weak kinds (e.g. `ja4+ip24`): a combination rare
//!   enough is strong evidence where each part alone is common. A composite
//!   is recorded once each of its parts is shared by two accounts (before
//!   that it cannot link anyone).
//! - A value remembers its first two accounts (its *anchors*); an account
//!   presenting it links to them. A pair of accounts keeps, per evidence
//!   group (kinds whose evidence overlaps, like an address and its /24), the
//!   current weight of the strongest value of that group they share; its
//!   strength is the sum over groups, and a pair at or above
//!   `link_threshold` joins one cluster (a lock-free union-find whose root is
//!   the cluster's oldest account).
//! - Evidence expires after `horizon_secs`: every `rebuild_every_secs` the
//!   expired accounts, values and pairs are forgotten and the clusters
//!   rebuilt from what is left, so links never snowball.
//! - Memory is fixed at construction: four open-addressed tables of 24-byte
//!   cells (32 for accounts) (`max_accounts`, `max_values`, `max_templates`, `max_pairs`, each
//!   with 25 % headroom), plus the names of clustered accounts and the text
//!   of shared values for explanations.
//!
//! An account's fingerprints are recorded by its first request of each
//! minute, and by any request presenting different ones; later requests in
//! the minute presenting the same ones only look the account up (a 64-bit
//! memo in its cell), so a busy account costs one cache line per request.
//!
//! `observe` takes no lock beyond one of sixteen per-thread read stripes
//! (the rebuild takes them all) and allocates nothing, except the first
//! time an account joins a cluster or a value becomes shared (its name or
//! text is kept for explanations).

mod kinds;
mod tables;

use crate::sketch::Signature;
use crate::sync::StripedLock;
use ahash::AHashMap;
use kinds::{ipv4_prefix, KindRef, Kinds, GROUPS, UNKNOWN};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use tables::{
    anchors_of, make_stat, pair_accounts, pair_key, stat_minutes, stat_saturated, stat_weight,
    strength, Accounts, Pairs, ValueHll, Values, FIELD, FIELD_BITS, NAMED, PAIRED, SECONDS, UNITS,
};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How linking weighs evidence. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Weight of a value of each kind shared by few accounts (default:
    /// `payment` 1.0, `device` 1.0, `system` 0.6, `ip` 0.5, `template` 0.15
    /// per band, `payment_bin` 0.2, `ip24` 0.2, `ja4` 0.3, `asn` 0.05,
    /// `user_agent` 0.05, `email_domain` 0.2; composites `ja4+ip24` 0.6,
    /// `ja4+payment_bin` 0.6, `ip24+payment_bin` 0.4, `system+user_agent` 0.5).
    pub kind_weights: BTreeMap<String, f64>,
    /// Weight of kinds not listed (default 0.2).
    pub default_weight: f64,
    /// Values shared by at most this many accounts keep their full weight (default 10).
    pub full_weight_until: f64,
    /// Values shared by at least this many accounts carry no weight (default 1,000).
    pub zero_weight_from: f64,
    /// Kinds whose values are naturally shared more widely, with their own
    /// `[full_weight_until, zero_weight_from]` (default: `system` [100,
    /// 3,000]: a company's 200 developers share an internal system prompt,
    /// thousands of an agent's users share its; `ja4` [100, 10,000]: a TLS
    /// fingerprint is shared by everyone on one client library version;
    /// the default composites [100, 10,000], as their lift guards them).
    pub kind_rarity: BTreeMap<String, [f64; 2]>,
    /// A two-part composite weighs in as its parts occur together more
    /// often than chance: its lift `accounts(a+b) × N / (accounts(a) ×
    /// accounts(b))`, N the accounts tracked, gives it no weight at 2 and its
    /// full (IDF-capped) weight at `composite_lift` (default 10). A rare
    /// client library paying with one card range is one operation's
    /// signature; a popular SDK and a big bank's BIN are a coincidence.
    pub composite_lift: f64,
    /// Summed pair evidence needed to link two accounts (default 1.0).
    pub link_threshold: f64,
    /// How long evidence counts, in seconds (default 86,400).
    pub horizon_secs: f64,
    /// How often the clusters are rebuilt from unexpired evidence (default
    /// 600 s; about 10 ms per million table cells).
    pub rebuild_every_secs: f64,
    /// Combinations of kinds that form composite values (default
    /// `ja4+ip24`, `ja4+payment_bin`, `ip24+payment_bin`,
    /// `system+user_agent`). Parts may be any presented kind, `ip24` or
    /// `system`.
    pub composites: Vec<Vec<String>>,
    /// Kinds whose evidence overlaps, by group: a pair counts only the
    /// strongest value of each group (default: `network` = ip, ip24,
    /// ja4+ip24, ip24+payment_bin; `payment` = payment, payment_bin;
    /// `client` = user_agent, system+user_agent). Kinds not listed are their
    /// own group; at most 11 groups (kinds the configuration does not name
    /// share a twelfth).
    pub groups: BTreeMap<String, String>,
    /// The most accounts remembered (default 250,000). Their table is
    /// allocated up front (24 bytes a cell, 25 % headroom); past the limit,
    /// the older half of the accounts is forgotten at once (as if their
    /// evidence had expired).
    pub max_accounts: usize,
    /// The most fingerprint values remembered (default 625,000, 24 bytes
    /// each); when a value's cells are all taken, the one seen longest ago
    /// is replaced.
    pub max_values: usize,
    /// The most prompt-template band values remembered (default 125,000,
    /// 24 bytes each; a prompt has 16), replaced like values.
    pub max_templates: usize,
    /// The most linked pairs remembered (default 250,000, 24 bytes each);
    /// when a pair's cells are all taken, the one seen longest ago is
    /// replaced.
    pub max_pairs: usize,
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
            ("system+user_agent", 0.5),
        ];
        LinkConfig {
            kind_weights: w.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            default_weight: 0.2,
            full_weight_until: 10.0,
            zero_weight_from: 1000.0,
            kind_rarity: [
                ("system", [100.0, 3000.0]),
                ("ja4", [100.0, 10_000.0]),
                ("ja4+ip24", [100.0, 10_000.0]),
                ("ja4+payment_bin", [100.0, 10_000.0]),
                ("ip24+payment_bin", [100.0, 10_000.0]),
                ("system+user_agent", [100.0, 10_000.0]),
            ]
            .iter()
            .map(|(k, r)| (k.to_string(), *r))
            .collect(),
            composite_lift: 10.0,
            link_threshold: 1.0,
            horizon_secs: 86_400.0,
            rebuild_every_secs: 600.0,
            composites: [
                vec!["ja4", "ip24"],
                vec!["ja4", "payment_bin"],
                vec!["ip24", "payment_bin"],
                vec!["system", "user_agent"],
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
                ("user_agent", "client"),
                ("system+user_agent", "client"),
            ]
            .iter()
            .map(|(k, g)| (k.to_string(), g.to_string()))
            .collect(),
            max_accounts: 250_000,
            max_values: 625_000,
            max_templates: 125_000,
            max_pairs: 250_000,
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
        let [full, zero] = self.rarity(kind);
        base * idf(accounts, full, zero)
    }

    /// `[full_weight_until, zero_weight_from]` of `kind`.
    pub fn rarity(&self, kind: &str) -> [f64; 2] {
        self.kind_rarity
            .get(kind)
            .copied()
            .unwrap_or([self.full_weight_until, self.zero_weight_from])
    }

    /// Checks the values that parse but make no sense; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.horizon_secs.is_nan() || self.horizon_secs <= 0.0 {
            return Err("`link.horizon_secs` must be positive".into());
        }
        if self.rebuild_every_secs.is_nan() || self.rebuild_every_secs <= 0.0 {
            return Err("`link.rebuild_every_secs` must be positive".into());
        }
        if !(self.full_weight_until >= 1.0 && self.zero_weight_from > self.full_weight_until) {
            return Err(
                "`link.zero_weight_from` must be above `link.full_weight_until` (itself at least 1)"
                    .into(),
            );
        }
        for (kind, [full, zero]) in &self.kind_rarity {
            if !(*full >= 1.0 && zero > full) {
                return Err(format!(
                    "`link.kind_rarity.{kind}`: the second count must be above the first (itself at least 1)"
                ));
            }
        }
        if self.composite_lift.is_nan() || self.composite_lift <= 2.0 {
            return Err("`link.composite_lift` must be above 2".into());
        }
        if !(self.link_threshold > 0.0 && self.link_threshold <= 12.0) {
            return Err("`link.link_threshold` must be in (0, 12]".into());
        }
        let weights = self.kind_weights.iter().map(|(k, w)| (k.as_str(), *w));
        for (kind, w) in weights.chain([("default_weight", self.default_weight)]) {
            if !(0.0..=1.5).contains(&w) {
                return Err(format!(
                    "`link.kind_weights.{kind}` must be between 0 and 1.5 (got {w})"
                ));
            }
        }
        for (key, v) in [
            ("max_accounts", self.max_accounts),
            ("max_values", self.max_values),
            ("max_templates", self.max_templates),
            ("max_pairs", self.max_pairs),
        ] {
            if v == 0 || v > 1 << 28 {
                return Err(format!("`link.{key}` must be between 1 and 2^28"));
            }
        }
        Kinds::new(self).map(|_| ())
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
    /// Seconds, increasing, from any origin (the linker counts from the
    /// first one it is given).
    pub now: f64,
}

/// An account's cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// Stable id: the hash of the cluster's oldest account.
    pub id: u64,
    /// Accounts in it.
    pub size: u32,
}

/// What linking learnt from one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The account's cluster.
    pub cluster: ClusterView,
    /// The account's hash (stable per account and seed).
    pub account: u64,
    /// Whether the prompt shares a template band with another account's.
    pub template_shared: bool,
    /// A key of the prompt's content (its template bands folded; 0 without a
    /// prompt of eight words or more): equal prompts have equal keys.
    pub prompt_key: u64,
}

/// One shared value, for explanations.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedValue {
    /// The kind (`payment`, `ja4+ip24`, …).
    pub kind: String,
    /// The value as presented (truncated), or a description for derived kinds.
    pub value: String,
    /// Estimated distinct accounts presenting it.
    pub accounts: f64,
    /// Its current link weight.
    pub weight: f64,
}

/// How full the linker's tables are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Accounts tracked.
    pub accounts: usize,
    /// Fingerprint values tracked.
    pub values: usize,
    /// Template band values tracked.
    pub templates: usize,
    /// Linked pairs tracked.
    pub pairs: usize,
    /// Values, templates and pairs replaced because their cells were full
    /// (the one seen longest ago goes).
    pub replaced: u64,
    /// Accounts that could not be tracked (their cells full until the next rebuild).
    pub untracked: u64,
    /// Names kept (of clustered accounts) and texts kept (of shared values),
    /// for explanations.
    pub names: usize,
    /// See `names`.
    pub texts: usize,
    /// Bytes held (tables and side maps).
    pub bytes: usize,
}

/// Evidence gathered for one request: per other account, each group's
/// strongest weight, and which groups were seen.
struct Evidence {
    items: [(u32, u64, u16); 16],
    len: usize,
}

impl Evidence {
    fn new() -> Evidence {
        Evidence {
            items: [(0, 0, 0); 16],
            len: 0,
        }
    }

    #[inline]
    fn add(&mut self, b: u32, group: u8, weight: u8) {
        let shift = u32::from(group) * FIELD_BITS;
        let w = u64::from(weight).min(FIELD);
        let at = match self.items[..self.len].iter().position(|e| e.0 == b) {
            Some(i) => i,
            None if self.len < self.items.len() => {
                self.items[self.len] = (b, 0, 0);
                self.len += 1;
                self.len - 1
            }
            None => return,
        };
        let entry = &mut self.items[at];
        if (entry.1 >> shift) & FIELD < w {
            entry.1 = (entry.1 & !(FIELD << shift)) | (w << shift);
        }
        entry.2 |= 1 << group;
    }
}

/// Fingerprints whose cells are touched ahead of the lookups.
const PREFETCH: usize = 24;

/// A value's tag: its hash with the kind's index in the low byte (never 0).
#[inline]
fn value_tag(vkey: u64, kind: u8) -> u64 {
    (vkey & !0xff) | u64::from(kind) | 0x100
}

/// Whether two accounts or more present a value (its second anchor is set,
/// or it is too common to track them).
fn shared(anchors: u64, stat: u64) -> bool {
    anchors >> 32 != 0 || stat_saturated(stat)
}

/// Replaces the groups of `old` that `present` names with those of `new`.
fn refresh(old: u64, new: u64, present: u16) -> u64 {
    let mut mask = 0u64;
    for g in 0..GROUPS as u32 {
        if present & (1 << g) != 0 {
            mask |= FIELD << (g * FIELD_BITS);
        }
    }
    (old & !mask) | (new & mask)
}

/// Links accounts into clusters (see the module docs).
pub struct Linker {
    config: LinkConfig,
    kinds: Kinds,
    accounts: Accounts,
    values: Values,
    templates: Values,
    pairs: Pairs,
    /// Names of accounts that joined a cluster (for explanations).
    names: Mutex<AHashMap<u32, Box<str>>>,
    /// Text of values shared by two accounts or more (for explanations).
    displays: Mutex<AHashMap<u64, Box<str>>>,
    maintenance: StripedLock,
    /// Seconds of the last rebuild (f64 bits).
    last_rebuild: AtomicU64,
    /// Set when a table ran out of room; the next call rebuilds.
    pressure: AtomicBool,
    untracked: AtomicU64,
    /// The callers' time of second 0 (f64 bits; NaN until the first call).
    epoch: AtomicU64,
    /// No account, value or pair was last seen before this (seconds): a
    /// lower bound kept by the rebuild and by new accounts.
    oldest: AtomicU64,
    /// Set when a linked pair's evidence fell below the threshold (or a
    /// pair was replaced): the next rebuild recomputes the clusters.
    weakened: AtomicBool,
    threshold: u32,
    /// The most shared-value texts kept (a tenth of `max_accounts`).
    max_texts: usize,
}

/// The least evidence (in units) that creates a pair: 0.4, two fifths of a
/// link (a pair with less could link only with a lot more evidence).
const MIN_NEW_PAIR: u32 = 8;

/// Characters of an account's name kept for explanations.
const MAX_NAME_CHARS: usize = 256;

/// Characters of a value kept for explanations.
const DISPLAY_CHARS: usize = 64;

#[inline]
fn secs(now: f64) -> u64 {
    if now > 0.0 {
        (now as u64).min(SECONDS)
    } else {
        0
    }
}

impl Linker {
    /// A linker with this configuration.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`LinkConfig::validate`]);
    /// [`Linker::try_new`] returns the error instead.
    pub fn new(config: LinkConfig) -> Linker {
        match Self::try_new(config) {
            Ok(l) => l,
            Err(e) => panic!("invalid link configuration: {e}"),
        }
    }

    /// A linker with this configuration, or what is wrong with it.
    pub fn try_new(config: LinkConfig) -> Result<Linker, String> {
        config.validate()?;
        let kinds = Kinds::new(&config)?;
        Ok(Linker {
            kinds,
            accounts: Accounts::new(config.max_accounts)?,
            values: Values::new(config.max_values)?,
            templates: Values::new(config.max_templates)?,
            pairs: Pairs::new(config.max_pairs)?,
            names: Mutex::new(AHashMap::new()),
            displays: Mutex::new(AHashMap::new()),
            maintenance: StripedLock::default(),
            last_rebuild: AtomicU64::new(0f64.to_bits()),
            pressure: AtomicBool::new(false),
            untracked: AtomicU64::new(0),
            weakened: AtomicBool::new(false),
            oldest: AtomicU64::new(u64::MAX),
            epoch: AtomicU64::new(f64::NAN.to_bits()),
            threshold: (config.link_threshold * UNITS).round().max(1.0) as u32,
            max_texts: (config.max_accounts / 10).max(64),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The hash an account is known by.
    #[inline]
    pub fn account_hash(&self, account: &str) -> u64 {
        xxh3_64_with_seed(account.as_bytes(), self.config.seed) | 1
    }

    /// Reads the account's first cell ahead of [`Linker::observe_full`], so
    /// that its cache miss overlaps other work (the value is meaningless).
    #[inline]
    pub fn touch_account(&self, hash: u64) -> u64 {
        self.accounts.touch_home(hash)
    }

    /// Records a request and returns its account's cluster.
    pub fn observe(&self, obs: &Observation<'_>) -> ClusterView {
        self.observe_full(obs).cluster
    }

    /// Records a request: its account's cluster, and whether its prompt
    /// follows a template another account used.
    pub fn observe_full(&self, obs: &Observation<'_>) -> Observed {
        self.observe_hashed(obs, self.account_hash(obs.account))
    }

    /// [`Linker::observe_full`] for a caller that already has the account's
    /// [`Linker::account_hash`] (the Guard needs it first for the limiter).
    pub(crate) fn observe_hashed(&self, obs: &Observation<'_>, hash: u64) -> Observed {
        let now = self.since_epoch(obs.now);
        let out = {
            let _shared = self.maintenance.read();
            self.observe_locked(obs, hash, now)
        };
        self.maybe_rebuild(now);
        out
    }

    /// Seconds since the linker's epoch: the first time it was given, so
    /// that callers may count from any origin (the Unix epoch included; the
    /// tables keep 30 bits of seconds). A Guard sets it to its clock's start.
    #[inline]
    fn since_epoch(&self, now: f64) -> f64 {
        let mut epoch = f64::from_bits(self.epoch.load(Relaxed));
        if epoch.is_nan() && now.is_finite() {
            let first = now.floor();
            epoch = match self.epoch.compare_exchange(
                f64::NAN.to_bits(),
                first.to_bits(),
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => first,
                Err(e) => f64::from_bits(e),
            };
        }
        if epoch.is_nan() {
            0.0
        } else {
            now - epoch
        }
    }

    /// Counts time from `epoch` (seconds on the callers' clock).
    pub(crate) fn set_epoch(&self, epoch: f64) {
        self.epoch.store(epoch.to_bits(), Relaxed);
    }

    fn maybe_rebuild(&self, now: f64) {
        let last = f64::from_bits(self.last_rebuild.load(Relaxed));
        let over = self.accounts.len.load(Relaxed) > self.config.max_accounts
            || self.pairs.len.load(Relaxed) > self.config.max_pairs;
        // (A table out of room asks for a rebuild, at most once a minute:
        // when nothing can be forgotten, rebuilding at every request would
        // only stall the gateway.)
        let pressed = self.pressure.load(Relaxed) && now - last >= 60.0;
        if over || pressed || now - last >= self.config.rebuild_every_secs {
            if let Some(_all) = self.maintenance.try_write() {
                // Re-checked under the lock: another thread may have just rebuilt.
                let last = f64::from_bits(self.last_rebuild.load(Relaxed));
                let over = self.accounts.len.load(Relaxed) > self.config.max_accounts
                    || self.pairs.len.load(Relaxed) > self.config.max_pairs;
                let pressed = self.pressure.load(Relaxed) && now - last >= 60.0;
                if over || pressed || now - last >= self.config.rebuild_every_secs {
                    self.rebuild_locked(now);
                }
            }
        }
    }

    fn observe_locked(&self, obs: &Observation<'_>, hash: u64, now: f64) -> Observed {
        let now = secs(now);
        let minutes = now / 60;
        // Hash every fingerprint first and touch its value's cell, so the
        // cache misses of all the lookups overlap instead of queueing.
        // (Hash all first, then load all, so the loads issue back to back.)
        let mut keys = [(self.kinds.at(0), 0u64); PREFETCH];
        for (slot, &(kind, value)) in keys.iter_mut().zip(obs.fingerprints) {
            let k = self.kinds.get(kind);
            *slot = (k, xxh3_64_with_seed(value.as_bytes(), k.hash));
        }
        let mut warm = self.accounts.touch_home(hash);
        let system = obs.system.filter(|s| !s.trim().is_empty());
        let system_key = system
            .map(|text| xxh3_64_with_seed(text.as_bytes(), self.kinds.at(self.kinds.system).hash));
        // What the account presents, in one word (see `AccountCell::memo`);
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
            (presented << 32) | (minutes & 0xffff_ffff)
        } else {
            0
        };
        // The prompt's template bands (pure computation, while those cells
        // arrive), then their cells too.
        let template = self.kinds.at(self.kinds.template);
        let bands = obs
            .prompt
            .filter(|p| p.split_ascii_whitespace().nth(7).is_some())
            .and_then(|prompt| {
                let mut sig = [0u64; 64];
                Signature::fill_from_text(&mut sig, self.config.seed, prompt, 3).ok()?;
                let mut bands = [0u64; 16];
                for (band, vals) in sig.chunks_exact(4).enumerate() {
                    let mut bytes = [0u8; 32];
                    for (i, v) in vals.iter().enumerate() {
                        bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
                    }
                    bands[band] = xxh3_64_with_seed(&bytes, template.hash ^ band as u64);
                }
                Some((prompt, bands))
            });
        if let Some((_, keys)) = &bands {
            for &vkey in keys {
                warm =
                    warm.wrapping_add(self.templates.touch_home(value_tag(vkey, template.index)));
            }
        }
        std::hint::black_box(warm);
        let Some(a) = self.accounts.find_or_insert(hash, now) else {
            self.untracked.fetch_add(1, Relaxed);
            self.pressure.store(true, Relaxed);
            return Observed {
                cluster: ClusterView { id: hash, size: 1 },
                account: hash,
                template_shared: false,
                prompt_key: 0,
            };
        };
        self.accounts.touch(a, now);
        if self.oldest.load(Relaxed) > now {
            self.oldest.fetch_min(now, Relaxed);
        }
        let mut ev = Evidence::new();
        // The same fingerprints as its last request, in the same minute:
        // counted, anchored and linked already (the values' minute and the
        // evidence are refreshed by the first request of each minute).
        let account_cell = &self.accounts.cells[a as usize];
        let fresh = memo == 0 || account_cell.memo.load(Relaxed) != memo;
        if fresh {
            for &(k, vkey) in keys.iter().take(obs.fingerprints.len()) {
                warm = warm.wrapping_add(self.values.touch_home(value_tag(vkey, k.index)));
            }
            std::hint::black_box(warm);
            self.record_values(
                a,
                hash,
                obs,
                &keys,
                system.zip(system_key),
                minutes,
                &mut ev,
            );
            if memo != 0 {
                account_cell.memo.store(memo, Relaxed);
            }
        }
        // Accounts whose prompts shared a band with this one.
        let mut template_peers = [0u32; 4];
        let mut n_peers = 0;
        // All sixteen bands folded: equal only for (nearly) equal prompts.
        let prompt_key = bands.map_or(0, |(_, keys)| {
            keys.iter().fold(0u64, |h, &k| {
                (h ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
            }) | 1
        });
        if let Some((prompt, keys)) = bands {
            for vkey in keys {
                let (anchors, _) = self.value(
                    &self.templates,
                    a,
                    hash,
                    template,
                    vkey,
                    minutes,
                    &mut ev,
                    None,
                    || format!("a prompt template ({:.40}…)", prompt.trim()),
                );
                for b in anchors_of(anchors).into_iter().flatten() {
                    if b != a
                        && n_peers < template_peers.len()
                        && !template_peers[..n_peers].contains(&b)
                    {
                        template_peers[n_peers] = b;
                        n_peers += 1;
                    }
                }
            }
        }
        for &(b, weights, present) in &ev.items[..ev.len] {
            self.link(a, b, weights, present, minutes);
        }
        let root = self.accounts.root(a);
        let template_shared = template_peers[..n_peers]
            .iter()
            .any(|&b| self.accounts.root(b) == root);
        let root_cell = &self.accounts.cells[root as usize];
        let size = root_cell.size.load(Relaxed);
        if size >= 2 && self.accounts.cells[a as usize].seen.load(Relaxed) & NAMED == 0 {
            self.accounts.cells[a as usize]
                .seen
                .fetch_or(NAMED, Relaxed);
            let name: String = obs.account.chars().take(MAX_NAME_CHARS).collect();
            self.names.lock().insert(a, name.into());
        }
        Observed {
            cluster: ClusterView {
                id: root_cell.tag.load(Relaxed),
                size,
            },
            account: hash,
            template_shared,
            prompt_key,
        }
    }

    /// Records the values a request presents (fingerprints, the /24 of an
    /// IPv4 address, the system prompt, composites), gathering evidence.
    #[allow(clippy::too_many_arguments)]
    fn record_values(
        &self,
        a: u32,
        hash: u64,
        obs: &Observation<'_>,
        keys: &[(KindRef, u64); PREFETCH],
        system: Option<(&str, u64)>,
        minutes: u64,
        ev: &mut Evidence,
    ) {
        // The first value of each plain kind (for composites): (kind, value hash, shared).
        let mut parts: [(u8, u64, bool, u64); 16] = [(UNKNOWN, 0, false, 0); 16];
        let mut n_parts = 0;
        for (i, &(kind, value)) in obs.fingerprints.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            let (k, vkey) = match keys.get(i) {
                Some(&key) => key,
                None => {
                    let k = self.kinds.get(kind);
                    (k, xxh3_64_with_seed(value.as_bytes(), k.hash))
                }
            };
            let (anchors, stat) =
                self.value(&self.values, a, hash, k, vkey, minutes, ev, None, || {
                    display(kind, value)
                });
            if k.index != UNKNOWN
                && n_parts < parts.len()
                && !parts[..n_parts].iter().any(|p| p.0 == k.index)
            {
                parts[n_parts] = (k.index, vkey, shared(anchors, stat), stat);
                n_parts += 1;
            }
            if Some(k.index) == self.kinds.ip {
                if let Some(prefix) = ipv4_prefix(value) {
                    let k24 = self.kinds.at(self.kinds.ip24);
                    let vkey = xxh3_64_with_seed(prefix.as_bytes(), k24.hash);
                    let (anchors, stat) =
                        self.value(&self.values, a, hash, k24, vkey, minutes, ev, None, || {
                            format!("{prefix}.0/24")
                        });
                    if n_parts < parts.len() {
                        parts[n_parts] = (k24.index, vkey, shared(anchors, stat), stat);
                        n_parts += 1;
                    }
                }
            }
        }
        if let Some((text, vkey)) = system {
            let k = self.kinds.at(self.kinds.system);
            let (anchors, stat) =
                self.value(&self.values, a, hash, k, vkey, minutes, ev, None, || {
                    format!("a system prompt ({:.40}…)", text.trim())
                });
            if n_parts < parts.len() {
                parts[n_parts] = (k.index, vkey, shared(anchors, stat), stat);
                n_parts += 1;
            }
        }
        let parts = &parts[..n_parts];
        for (kind, combo) in &self.kinds.composites {
            let mut key = [0u64; 4];
            let mut all_shared = true;
            let mut found = 0;
            // The parts' statistics, for the lift of a two-part composite.
            let mut stats = [0u64; 4];
            for (i, part) in combo.iter().enumerate().take(key.len()) {
                match parts.iter().find(|p| p.0 == *part) {
                    Some(p) => {
                        key[i] = p.1;
                        stats[i] = p.3;
                        all_shared &= p.2;
                        found += 1;
                    }
                    None => break,
                }
            }
            if found != combo.len().min(key.len()) || !all_shared {
                continue;
            }
            let k = self.kinds.at(*kind);
            let mut bytes = [0u8; 32];
            for (i, v) in key.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            let vkey = xxh3_64_with_seed(&bytes[..found * 8], k.hash);
            let counts = (found == 2).then_some([stats[0], stats[1]]);
            self.value(&self.values, a, hash, k, vkey, minutes, ev, counts, || {
                let texts: Vec<String> = combo
                    .iter()
                    .map(|p| {
                        let name = self.kinds.name(*p);
                        if *p == self.kinds.system {
                            return "(the system prompt)".to_string();
                        }
                        obs.fingerprints
                            .iter()
                            .find(|f| f.0 == name)
                            .map(|f| display(name, f.1))
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
            });
        }
    }

    /// Records that account `a` presents a value: counts it, makes it an
    /// anchor if the value has room, and adds evidence towards the value's
    /// other anchors. Returns the value's anchors.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn value(
        &self,
        table: &Values,
        a: u32,
        account: u64,
        k: KindRef,
        vkey: u64,
        minutes: u64,
        ev: &mut Evidence,
        composite_of: Option<[u64; 2]>,
        display: impl FnOnce() -> String,
    ) -> (u64, u64) {
        let tag = value_tag(vkey, k.index);
        let full = (k.weight * UNITS).round().min(FIELD as f64) as u8;
        let i = table.find_or_insert(tag, minutes, full);
        let cell = &table.cells[i];
        // Count the account; the weight follows the count.
        let mut stat = cell.stat.load(Relaxed);
        loop {
            let hll = ValueHll::from_bits(stat & ValueHll::MASK)
                .with(account.rotate_left(17))
                .bits();
            let same = hll == stat & ValueHll::MASK;
            let new_minute = stat_minutes(stat) != minutes;
            if same && !new_minute {
                break;
            }
            // The weight follows the count; a composite's also follows its
            // parts and the population (refreshed once a minute).
            let byte = match composite_of {
                Some(parts) => {
                    self.composite_byte(k.index, ValueHll::from_bits(hll).estimate(), parts)
                }
                None if same => (stat >> tables::WEIGHT_SHIFT) as u8,
                None => self.weight_byte(k.index, ValueHll::from_bits(hll).estimate()),
            };
            let new = make_stat(hll, minutes, byte);
            match cell.stat.compare_exchange_weak(stat, new, Relaxed, Relaxed) {
                Ok(_) => {
                    stat = new;
                    break;
                }
                Err(s) => stat = s,
            }
        }
        if stat_saturated(stat) {
            return (0, stat);
        }
        let weight = stat_weight(stat);
        // Anchors.
        let me = u64::from(a) + 1;
        let mut anchors = cell.anchors.load(Relaxed);
        loop {
            let (lo, hi) = (anchors & 0xffff_ffff, anchors >> 32);
            if lo == me || hi == me || (lo != 0 && hi != 0) {
                break;
            }
            let new = if lo == 0 { me } else { anchors | (me << 32) };
            match cell
                .anchors
                .compare_exchange_weak(anchors, new, Relaxed, Relaxed)
            {
                Ok(_) => {
                    // The second account: the value is now shared. (Template
                    // bands two prompts share by chance are common: their
                    // text is kept once a third account uses them.)
                    if lo != 0
                        && (k.index != self.kinds.template
                            || ValueHll::from_bits(stat).estimate() >= 2.5)
                    {
                        let mut d = self.displays.lock();
                        if d.len() < self.max_texts {
                            d.entry(tag).or_insert_with(|| display().into());
                        }
                    }
                    anchors = new;
                    break;
                }
                Err(x) => anchors = x,
            }
        }
        for b in anchors_of(anchors).into_iter().flatten() {
            if b != a {
                ev.add(b, k.group, weight);
            }
        }
        (anchors, stat)
    }

    fn weight_units(&self, kind: u8, accounts: f64) -> u8 {
        let c = &self.config;
        let [full, zero] = self.kinds.rarity(kind, c);
        let w = self.kinds.base_weight(kind) * idf(accounts, full, zero);
        (w * UNITS).round().clamp(0.0, FIELD as f64) as u8
    }

    /// A value's weight byte: its units, flagged saturated once it is shared
    /// by twice the accounts that take all its weight away.
    fn weight_byte(&self, kind: u8, accounts: f64) -> u8 {
        let units = self.weight_units(kind, accounts);
        let [_, zero] = self.kinds.rarity(kind, &self.config);
        if units == 0 && accounts >= 2.0 * zero {
            tables::SATURATED
        } else {
            units
        }
    }

    /// A composite's weight byte (never saturated: its lift may change).
    fn composite_byte(&self, kind: u8, accounts: f64, parts: [u64; 2]) -> u8 {
        let parts = parts.map(|s| ValueHll::from_bits(s & ValueHll::MASK).estimate());
        self.composite_units(kind, accounts, parts)
    }

    /// A two-part composite's weight: its full weight scaled by how much more
    /// often than chance its parts occur together (nothing at twice chance
    /// or less, all of it at `composite_lift` times), and capped by its IDF.
    /// Common parts coincide by chance however few accounts have been seen;
    /// a rare part concentrated on one other value does not.
    fn composite_units(&self, kind: u8, accounts: f64, parts: [f64; 2]) -> u8 {
        let tracked = self.accounts.len.load(Relaxed).max(1) as f64;
        let lift = accounts * tracked / (parts[0] * parts[1]).max(1.0);
        let boost = ((lift / 2.0).ln() / (self.config.composite_lift / 2.0).ln()).clamp(0.0, 1.0);
        let full = (self.kinds.base_weight(kind) * UNITS)
            .round()
            .clamp(0.0, FIELD as f64);
        let idf = self.weight_units(kind, accounts);
        ((full * boost).round() as u8).min(idf)
    }

    /// Refreshes the evidence between `a` and `b`, joining their clusters
    /// when it is strong enough.
    fn link(&self, a: u32, b: u32, weights: u64, present: u16, minutes: u64) {
        let key = pair_key(a, b);
        // Weak evidence (values too common to link; a template band alone)
        // only refreshes a pair that exists: it never creates one, so
        // everyday coincidences do not fill the table.
        let slot = if strength(weights) < MIN_NEW_PAIR {
            let paired = |x: u32| self.accounts.cells[x as usize].seen.load(Relaxed) & PAIRED != 0;
            if !paired(a) || !paired(b) {
                return;
            }
            self.pairs.find(key)
        } else {
            for x in [a, b] {
                let cell = &self.accounts.cells[x as usize];
                if cell.seen.load(Relaxed) & PAIRED == 0 {
                    cell.seen.fetch_or(PAIRED, Relaxed);
                }
            }
            let (i, replaced) = self.pairs.find_or_replace(key);
            if replaced.is_some_and(|w| strength(w) >= self.threshold) {
                // A link was forgotten to make room: recompute the clusters.
                self.weakened.store(true, Relaxed);
            }
            Some(i)
        };
        let Some(i) = slot else {
            return;
        };
        let cell = &self.pairs.cells[i];
        let mut old = cell.weights.load(Relaxed);
        let new = loop {
            let new = refresh(old, weights, present);
            if new == old {
                break new;
            }
            match cell
                .weights
                .compare_exchange_weak(old, new, Relaxed, Relaxed)
            {
                Ok(_) => break new,
                Err(x) => old = x,
            }
        };
        if cell.seen.load(Relaxed) != minutes {
            cell.seen.store(minutes, Relaxed);
        }
        if strength(new) >= self.threshold {
            self.accounts.union(a, b);
        } else if strength(old) >= self.threshold
            && strength(new) < self.threshold - self.threshold / 5
        {
            // Clearly weaker (a fifth below the threshold, so evidence that
            // wavers around it does not trigger a relink at every rebuild).
            self.weakened.store(true, Relaxed);
        }
    }
}

fn display(kind: &str, value: &str) -> String {
    let _ = kind;
    value.chars().take(DISPLAY_CHARS).collect()
}

// ------------------------------------------------------------ maintenance

impl Linker {
    /// Forgets expired evidence and rebuilds the clusters now (also done
    /// automatically every `rebuild_every_secs`, and when a table is full).
    pub fn rebuild_now(&self, now: f64) {
        let now = self.since_epoch(now);
        let _all = self.maintenance.write();
        self.rebuild_locked(now);
    }

    /// Under the exclusive lock.
    fn rebuild_locked(&self, now: f64) {
        let c = &self.config;
        let cut = secs(now - c.horizon_secs);
        // Nothing is older than `oldest`: before the horizon reaches it, and
        // with no table over its limit, there is nothing to forget (this
        // keeps replays of a day's trace from scanning the tables).
        let over = self.accounts.len.load(Relaxed) > c.max_accounts
            || self.pairs.len.load(Relaxed) > c.max_pairs;
        if cut <= self.oldest.load(Relaxed) && !over && !self.pressure.load(Relaxed) {
            if self.weakened.swap(false, Relaxed) {
                self.relink();
            }
            self.last_rebuild.store(now.to_bits(), Relaxed);
            return;
        }
        // Accounts: expired, then (if over the limit) all but the newest half.
        let mut cut_accounts = cut;
        let live = self.accounts.len.load(Relaxed);
        // (A full probe window alone forgets nothing unless the table is
        // nearly full: its account waits, untracked, for the expiry.)
        let nearly_full = live > c.max_accounts - c.max_accounts / 8;
        if live > c.max_accounts || (self.pressure.load(Relaxed) && nearly_full) {
            let times: Vec<u64> = self
                .accounts
                .cells
                .iter()
                .filter(|x| x.tag.load(Relaxed) != 0)
                .map(|x| x.seen.load(Relaxed) & SECONDS)
                .collect();
            cut_accounts = cut_accounts.max(newest_half_cut(times));
        }
        let mut forgotten_accounts = 0usize;
        {
            let mut names = self.names.lock();
            for (i, cell) in self.accounts.cells.iter().enumerate() {
                let t = cell.tag.load(Relaxed);
                if t != 0 && cell.seen.load(Relaxed) & SECONDS < cut_accounts {
                    self.accounts.clear(i);
                    names.remove(&(i as u32));
                    forgotten_accounts += 1;
                }
            }
        }
        let alive = |a: u32| self.accounts.cells[a as usize].tag.load(Relaxed) != 0;
        // Values: expired ones go; anchors to forgotten accounts are dropped.
        // (Each pass first checks whether it has anything to do: most
        // rebuilds forget nothing.)
        let cut_minutes = cut / 60;
        for table in [&self.values, &self.templates] {
            let expired = |cell: &tables::ValueCell| {
                cell.tag.load(Relaxed) != 0 && stat_minutes(cell.stat.load(Relaxed)) < cut_minutes
            };
            if forgotten_accounts == 0 && !table.cells.iter().any(expired) {
                continue;
            }
            table.compact(|cell| {
                if stat_minutes(cell.stat.load(Relaxed)) < cut_minutes {
                    return false;
                }
                if forgotten_accounts > 0 {
                    let kept: Vec<u32> = anchors_of(cell.anchors.load(Relaxed))
                        .into_iter()
                        .flatten()
                        .filter(|&a| alive(a))
                        .collect();
                    let word = kept
                        .iter()
                        .enumerate()
                        .fold(0u64, |w, (j, &a)| w | ((u64::from(a) + 1) << (32 * j)));
                    cell.anchors.store(word, Relaxed);
                }
                true
            });
        }
        self.displays.lock().retain(|&tag, _| {
            self.values.find(tag).is_some() || self.templates.find(tag).is_some()
        });
        // Pairs: expired, between forgotten accounts, or (over the limit)
        // all but the newest half.
        let mut cut_pairs = cut_minutes;
        if self.pairs.len.load(Relaxed) > c.max_pairs {
            let times: Vec<u64> = self
                .pairs
                .cells
                .iter()
                .filter(|x| x.key.load(Relaxed) != 0)
                .map(|x| x.seen.load(Relaxed))
                .collect();
            cut_pairs = cut_pairs.max(newest_half_cut(times));
        }
        let stale = |cell: &tables::PairCell| {
            let key = cell.key.load(Relaxed);
            if key == 0 {
                return false;
            }
            let (x, y) = pair_accounts(key);
            cell.seen.load(Relaxed) < cut_pairs || !alive(x) || !alive(y)
        };
        let forget_pairs = self.pairs.cells.iter().any(stale);
        if forget_pairs {
            self.pairs.compact(|cell| !stale(cell));
        }
        // The clusters are rebuilt when evidence went away or weakened.
        if forgotten_accounts > 0 || forget_pairs || self.weakened.swap(false, Relaxed) {
            self.relink();
        }
        // What is left is no older than this.
        let accounts = self
            .accounts
            .cells
            .iter()
            .filter(|x| x.tag.load(Relaxed) != 0)
            .map(|x| x.seen.load(Relaxed) & SECONDS);
        let values = [&self.values, &self.templates].into_iter().flat_map(|t| {
            t.cells
                .iter()
                .filter(|x| x.tag.load(Relaxed) != 0)
                .map(|x| stat_minutes(x.stat.load(Relaxed)) * 60)
        });
        let pairs = self
            .pairs
            .cells
            .iter()
            .filter(|x| x.key.load(Relaxed) != 0)
            .map(|x| x.seen.load(Relaxed) * 60);
        let oldest = accounts
            .chain(values)
            .chain(pairs)
            .min()
            .unwrap_or(u64::MAX);
        self.oldest.store(oldest, Relaxed);
        self.pressure.store(false, Relaxed);
        self.last_rebuild.store(now.to_bits(), Relaxed);
    }

    /// Recomputes the clusters from the evidence as it stands, then names
    /// the clustered accounts' names that are known (maintenance only).
    fn relink(&self) {
        self.accounts.reset_clusters();
        for cell in self.accounts.cells.iter() {
            cell.seen.fetch_and(!PAIRED, Relaxed);
        }
        for cell in self.pairs.cells.iter() {
            let key = cell.key.load(Relaxed);
            if key == 0 {
                continue;
            }
            let (x, y) = pair_accounts(key);
            for z in [x, y] {
                self.accounts.cells[z as usize]
                    .seen
                    .fetch_or(PAIRED, Relaxed);
            }
            if strength(cell.weights.load(Relaxed)) >= self.threshold {
                self.accounts.union(x, y);
            }
        }
        // Names of accounts no longer clustered are dropped (and the flag
        // cleared, so they are recorded again if they rejoin one).
        let mut names = self.names.lock();
        names.retain(|&a, _| {
            let cell = &self.accounts.cells[a as usize];
            let clustered = cell.tag.load(Relaxed) != 0 && self.cluster_at(a).size >= 2;
            if !clustered {
                cell.seen.fetch_and(!NAMED, Relaxed);
            }
            clustered
        });
    }

    fn cluster_at(&self, a: u32) -> ClusterView {
        let root = self.accounts.root(a);
        let cell = &self.accounts.cells[root as usize];
        ClusterView {
            id: cell.tag.load(Relaxed),
            size: cell.size.load(Relaxed),
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
            accounts: self.accounts.len.load(Relaxed),
            values: self.values.len.load(Relaxed),
            templates: self.templates.len.load(Relaxed),
            pairs: self.pairs.len.load(Relaxed),
            replaced: self.values.replaced.load(Relaxed)
                + self.templates.replaced.load(Relaxed)
                + self.pairs.replaced.load(Relaxed),
            untracked: self.untracked.load(Relaxed),
            names: n_names,
            texts: n_texts,
            bytes: 32 * self.accounts.capacity()
                + 24 * (self.values.capacity() + self.templates.capacity() + self.pairs.capacity())
                + name_bytes
                + display_bytes,
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
            for cell in table.cells.iter() {
                let tag = cell.tag.load(Relaxed);
                let [Some(x), Some(y)] = anchors_of(cell.anchors.load(Relaxed)) else {
                    continue;
                };
                if tag == 0 || self.accounts.root(x) != root || self.accounts.root(y) != root {
                    continue;
                }
                let stat = cell.stat.load(Relaxed);
                let kind = (tag & 0xff) as u8;
                out.push(SharedValue {
                    kind: self.kinds.name(kind).to_string(),
                    value: displays
                        .get(&tag)
                        .map_or_else(String::new, |d| d.to_string()),
                    accounts: ValueHll::from_bits(stat & ValueHll::MASK)
                        .estimate()
                        .round(),
                    weight: f64::from(stat_weight(stat)) / UNITS,
                });
            }
        }
        out.sort_by(|p, q| q.weight.total_cmp(&p.weight).then(p.kind.cmp(&q.kind)));
        // One line per (kind, text): a template's bands are one template.
        out.dedup_by(|p, q| p.kind == q.kind && p.value == q.value);
        out
    }
}

/// Bytes a side map holds: its table (key, boxed text, a control byte per
/// slot) and the texts.
fn side_map_bytes<K>(map: &AHashMap<K, Box<str>>) -> usize {
    map.capacity() * (std::mem::size_of::<K>() + std::mem::size_of::<Box<str>>() + 1)
        + map.values().map(|t| t.len()).sum::<usize>()
}

/// The time below which the older half of `times` lies (keeping at least one).
fn newest_half_cut(mut times: Vec<u64>) -> u64 {
    if times.len() < 2 {
        return 0;
    }
    let at = times.len() / 2;
    let (_, t, _) = times.select_nth_unstable(at);
    // Ties at the cut stay; if that keeps everything, drop the tie too.
    let t = *t;
    if times.iter().all(|&x| x >= t) {
        t + 1
    } else {
        t
    }
}

// ---------------------------------------------------------------- snapshots

/// A side map's entries in key order (for a deterministic snapshot).
fn sorted<K: Copy + Ord>(map: &Mutex<AHashMap<K, Box<str>>>) -> Vec<(K, String)> {
    let mut v: Vec<(K, String)> = map
        .lock()
        .iter()
        .map(|(&k, t)| (k, t.to_string()))
        .collect();
    v.sort_unstable();
    v
}

/// A decoded linker state, checked and ready to install or merge.
pub(crate) struct LinkSnapshot {
    capacities: [usize; 4],
    born: u32,
    last_rebuild: f64,
    /// (cell, tag, seen word, parent, size)
    accounts: Vec<(u32, u64, u64, u32, u32)>,
    /// (cell, tag, anchors, stat) of values, then of templates.
    values: [Vec<(u32, u64, u64, u64)>; 2],
    /// (cell, key, weights, seen)
    pairs: Vec<(u32, u64, u64, u64)>,
    names: Vec<(u32, String)>,
    displays: Vec<(u64, String)>,
}

fn shift_seconds(t: u64, shift: f64) -> u64 {
    secs(t as f64 + shift)
}

impl Linker {
    fn capacities(&self) -> [usize; 4] {
        [
            self.accounts.capacity(),
            self.values.capacity(),
            self.templates.capacity(),
            self.pairs.capacity(),
        ]
    }

    /// Writes the state, cell by cell in table order (deterministic).
    pub(crate) fn encode(&self, w: &mut crate::sketch::codec::Writer) {
        let _all = self.maintenance.write();
        w.u64(self.config.seed);
        for c in self.capacities() {
            w.u64(c as u64);
        }
        w.u32(self.accounts.born_counter());
        w.f64(f64::from_bits(self.last_rebuild.load(Relaxed)));
        let live: Vec<usize> = (0..self.accounts.capacity())
            .filter(|&i| self.accounts.cells[i].tag.load(Relaxed) != 0)
            .collect();
        w.u64(live.len() as u64);
        for i in live {
            let c = &self.accounts.cells[i];
            w.u32(i as u32);
            w.u64(c.tag.load(Relaxed));
            w.u64(c.seen.load(Relaxed));
            w.u32(c.parent.load(Relaxed));
            w.u32(c.size.load(Relaxed));
        }
        for table in [&self.values, &self.templates] {
            let live: Vec<usize> = (0..table.capacity())
                .filter(|&i| table.cells[i].tag.load(Relaxed) != 0)
                .collect();
            w.u64(live.len() as u64);
            for i in live {
                let c = &table.cells[i];
                w.u32(i as u32);
                w.u64(c.tag.load(Relaxed));
                w.u64(c.anchors.load(Relaxed));
                w.u64(c.stat.load(Relaxed));
            }
        }
        let live: Vec<usize> = (0..self.pairs.capacity())
            .filter(|&i| self.pairs.cells[i].key.load(Relaxed) != 0)
            .collect();
        w.u64(live.len() as u64);
        for i in live {
            let c = &self.pairs.cells[i];
            w.u32(i as u32);
            w.u64(c.key.load(Relaxed));
            w.u64(c.weights.load(Relaxed));
            w.u64(c.seen.load(Relaxed));
        }
        let names = sorted(&self.names);
        w.u64(names.len() as u64);
        for (a, n) in names {
            w.u32(a);
            w.str(&n);
        }
        let displays = sorted(&self.displays);
        w.u64(displays.len() as u64);
        for (t, d) in displays {
            w.u64(t);
            w.str(&d);
        }
    }

    /// Reads what `encode` wrote, checking every cell index and reference,
    /// and shifts every time by `shift` seconds. Nothing is installed.
    pub(crate) fn decode(
        &self,
        r: &mut crate::sketch::codec::Reader<'_>,
        shift: f64,
    ) -> Result<LinkSnapshot, crate::sketch::Error> {
        if r.u64("link seed")? != self.config.seed {
            return Err(r.err("it was taken with another link seed"));
        }
        let mut capacities = [0usize; 4];
        for (c, what) in capacities
            .iter_mut()
            .zip(["accounts", "values", "templates", "pairs"])
        {
            let n = r.u64("table capacity")?;
            if n == 0 || n > u64::from(u32::MAX / 2) {
                return Err(r.err(format!("the {what} table's capacity {n} is out of range")));
            }
            *c = n as usize;
        }
        let born = r.u32("arrival counter")?;
        let last_rebuild = r.f64("last rebuild")? + shift;
        if !last_rebuild.is_finite() {
            return Err(r.err("the last rebuild's time is not a number"));
        }
        // Cells in increasing order, each within its table.
        fn cell(
            r: &mut crate::sketch::codec::Reader<'_>,
            last: &mut Option<u32>,
            capacity: usize,
            what: &str,
        ) -> Result<u32, crate::sketch::Error> {
            let i = r.u32(what)?;
            if i as usize >= capacity || last.is_some_and(|l| l >= i) {
                return Err(r.err(format!(
                    "{what} cell {i} is out of order or beyond {capacity}"
                )));
            }
            *last = Some(i);
            Ok(i)
        }
        let n = r.u64("account count")?;
        let n = r.expect_items(n, 28, "accounts")?;
        let mut accounts = Vec::with_capacity(n);
        let mut last = None;
        for _ in 0..n {
            let i = cell(r, &mut last, capacities[0], "account")?;
            let tag = r.u64("account tag")?;
            let seen = r.u64("account seen")?;
            let parent = r.u32("account parent")?;
            let size = r.u32("cluster size")?;
            if tag == 0 || parent as usize >= capacities[0] {
                return Err(r.err(format!("account cell {i} is malformed")));
            }
            let t = shift_seconds(seen & SECONDS, shift);
            accounts.push((i, tag, (seen & !SECONDS) | t, parent, size));
        }
        let live: ahash::AHashSet<u32> = accounts.iter().map(|a| a.0).collect();
        for &(i, _, _, parent, _) in &accounts {
            if !live.contains(&parent) {
                return Err(r.err(format!(
                    "account cell {i}'s parent {parent} is not an account"
                )));
            }
        }
        let mut values: [Vec<(u32, u64, u64, u64)>; 2] = [Vec::new(), Vec::new()];
        for (t, list) in values.iter_mut().enumerate() {
            let n = r.u64("value count")?;
            let n = r.expect_items(n, 28, "values")?;
            let mut last = None;
            for _ in 0..n {
                let i = cell(r, &mut last, capacities[1 + t], "value")?;
                let tag = r.u64("value tag")?;
                let anchors = r.u64("value anchors")?;
                let stat = r.u64("value stat")?;
                let kind = (tag & 0xff) as u8;
                if tag == 0
                    || (kind != UNKNOWN && usize::from(kind) >= self.kinds.kinds.len())
                    || anchors_of(anchors)
                        .into_iter()
                        .flatten()
                        .any(|a| !live.contains(&a))
                {
                    return Err(r.err(format!("value cell {i} is malformed")));
                }
                let minutes = (stat_minutes(stat) as f64 + shift / 60.0).max(0.0) as u64;
                list.push((i, tag, anchors, make_stat(stat, minutes, stat_weight(stat))));
            }
        }
        let n = r.u64("pair count")?;
        let n = r.expect_items(n, 28, "pairs")?;
        let mut pairs = Vec::with_capacity(n);
        let mut last = None;
        for _ in 0..n {
            let i = cell(r, &mut last, capacities[3], "pair")?;
            let key = r.u64("pair key")?;
            let weights = r.u64("pair weights")?;
            let seen = r.u64("pair seen")?;
            let ok = key >> 32 != 0 && key & 0xffff_ffff != 0 && {
                let (x, y) = pair_accounts(key);
                x < y && live.contains(&x) && live.contains(&y)
            };
            if !ok || weights >> (GROUPS as u32 * FIELD_BITS).min(63) != 0 || seen > 1 << 24 {
                return Err(r.err(format!("pair cell {i} is malformed")));
            }
            let seen = ((seen as f64 + shift / 60.0).max(0.0) as u64).min(1 << 24);
            pairs.push((i, key, weights, seen));
        }
        let n = r.u64("name count")?;
        let n = r.expect_items(n, 12, "names")?;
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            let a = r.u32("named account")?;
            let name = r.str("account name")?;
            if !live.contains(&a) || names.last().is_some_and(|(l, _)| *l >= a) {
                return Err(r.err(format!("the name of account cell {a} is out of place")));
            }
            names.push((a, name));
        }
        let n = r.u64("display count")?;
        let n = r.expect_items(n, 16, "displays")?;
        let mut displays = Vec::with_capacity(n);
        for _ in 0..n {
            let t = r.u64("value tag")?;
            let d = r.str("value text")?;
            if displays.last().is_some_and(|(l, _)| *l >= t) {
                return Err(r.err("value texts are out of order"));
            }
            displays.push((t, d));
        }
        Ok(LinkSnapshot {
            capacities,
            born,
            last_rebuild,
            accounts,
            values,
            pairs,
            names,
            displays,
        })
    }

    /// Whether a decoded snapshot can be installed as it is (same table sizes).
    pub(crate) fn check_installable(&self, s: &LinkSnapshot) -> Result<(), String> {
        if s.capacities != self.capacities() {
            return Err(format!(
                "its linker tables hold {:?} cells (accounts, values, templates, pairs), this guard's {:?}: restore into a guard with the same `link.max_*` settings, or merge it",
                s.capacities,
                self.capacities()
            ));
        }
        Ok(())
    }

    /// Replaces the state with a decoded one (checked with `check_installable`).
    pub(crate) fn install(&self, s: LinkSnapshot) {
        let _all = self.maintenance.write();
        for i in 0..self.accounts.capacity() {
            self.accounts.clear(i);
        }
        for table in [&self.values, &self.templates] {
            for i in 0..table.capacity() {
                table.clear(i);
            }
        }
        for i in 0..self.pairs.capacity() {
            self.pairs.clear(i);
        }
        for (i, tag, seen, parent, size) in s.accounts {
            self.accounts.install(i as usize, tag, seen);
            let c = &self.accounts.cells[i as usize];
            c.parent.store(parent, Relaxed);
            c.size.store(size, Relaxed);
        }
        self.accounts.set_born_counter(s.born);
        for (table, list) in [&self.values, &self.templates].into_iter().zip(s.values) {
            for (i, tag, anchors, stat) in list {
                table.install(i as usize, tag, anchors, stat);
            }
        }
        for (i, key, weights, seen) in s.pairs {
            self.pairs.install(i as usize, key, weights, seen);
        }
        *self.names.lock() = s.names.into_iter().map(|(a, n)| (a, n.into())).collect();
        *self.displays.lock() = s.displays.into_iter().map(|(t, d)| (t, d.into())).collect();
        self.last_rebuild.store(s.last_rebuild.to_bits(), Relaxed);
        self.pressure.store(false, Relaxed);
        self.oldest.store(0, Relaxed);
    }

    /// Folds another node's decoded state in: accounts by hash, values by
    /// key (their counts merged, anchors joined, and the other node's anchors
    /// linked to this node's), pair evidence by account pair (strongest of
    /// each group); the clusters are then recomputed from all the evidence.
    pub(crate) fn merge(&self, o: LinkSnapshot) {
        let _all = self.maintenance.write();
        let mut map: AHashMap<u32, u32> = AHashMap::with_capacity(o.accounts.len());
        for &(i, tag, seen, _, _) in &o.accounts {
            let t = seen & SECONDS;
            if let Some(a) = self.accounts.find_or_insert(tag, t) {
                if self.accounts.seen(a) < t {
                    self.accounts.touch(a, t);
                }
                map.insert(i, a);
            }
        }
        let minutes_now = |stat: u64| stat_minutes(stat);
        for (table, list) in [&self.values, &self.templates].into_iter().zip(&o.values) {
            for &(_, tag, anchors, stat) in list {
                let kind = (tag & 0xff) as u8;
                let i = table.find_or_insert(tag, minutes_now(stat), stat_weight(stat));
                let cell = &table.cells[i];
                let mine = cell.stat.load(Relaxed);
                let hll = ValueHll::from_bits(mine)
                    .merge(ValueHll::from_bits(stat))
                    .bits();
                let weight = self.weight_units(kind, ValueHll::from_bits(hll).estimate());
                let minutes = stat_minutes(mine).max(stat_minutes(stat));
                cell.stat.store(make_stat(hll, minutes, weight), Relaxed);
                let ours: Vec<u32> = anchors_of(cell.anchors.load(Relaxed))
                    .into_iter()
                    .flatten()
                    .collect();
                let theirs: Vec<u32> = anchors_of(anchors)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| map.get(&a).copied())
                    .collect();
                let mut joined = ours.clone();
                for &a in &theirs {
                    if !joined.contains(&a) && joined.len() < 2 {
                        joined.push(a);
                    }
                }
                let word = joined
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (j, &a)| w | ((u64::from(a) + 1) << (32 * j)));
                cell.anchors.store(word, Relaxed);
                // The other node's accounts link to this node's anchors.
                let group = if kind == UNKNOWN {
                    kinds::NAMED_GROUPS as u8
                } else {
                    self.kinds.at(kind).group
                };
                for &a in &theirs {
                    for &b in ours.iter().filter(|&&b| b != a) {
                        let mut ev = Evidence::new();
                        ev.add(b, group, weight);
                        let (_, w, present) = ev.items[0];
                        self.link(a, b, w, present, minutes);
                    }
                }
            }
        }
        for &(_, key, weights, seen) in &o.pairs {
            let (x, y) = pair_accounts(key);
            let (Some(&x), Some(&y)) = (map.get(&x), map.get(&y)) else {
                continue;
            };
            if x == y {
                continue;
            }
            let i = self.pairs.find_or_insert(pair_key(x, y));
            let cell = &self.pairs.cells[i];
            let mine = cell.weights.load(Relaxed);
            let merged = (0..GROUPS as u32).fold(0u64, |acc, g| {
                let s = g * FIELD_BITS;
                acc | (((mine >> s) & FIELD).max((weights >> s) & FIELD) << s)
            });
            cell.weights.store(merged, Relaxed);
            cell.seen.store(cell.seen.load(Relaxed).max(seen), Relaxed);
        }
        {
            let mut names = self.names.lock();
            for (a, n) in o.names {
                if let Some(&a) = map.get(&a) {
                    names.entry(a).or_insert_with(|| n.into());
                    self.accounts.cells[a as usize]
                        .seen
                        .fetch_or(NAMED, Relaxed);
                }
            }
        }
        {
            let mut displays = self.displays.lock();
            for (t, d) in o.displays {
                if displays.len() < self.max_texts {
                    displays.entry(t).or_insert_with(|| d.into());
                }
            }
        }
        self.oldest.store(0, Relaxed);
        self.relink();
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

    #[test]
    fn templates_link_through_their_bands() {
        let l = Linker::new(LinkConfig {
            kind_weights: [("template".to_string(), 1.0)].into_iter().collect(),
            ..LinkConfig::default()
        });
        let prompt = |topic: &str| {
            format!("You are an expert tutor. Think step by step and show all of your reasoning before answering. Explain {topic} to a student.")
        };
        let obs = |account: &str, topic: &str, now: f64| {
            l.observe_full(&Observation {
                account,
                fingerprints: &[],
                prompt: Some(&prompt(topic)),
                system: None,
                now,
            })
        };
        assert!(!obs("t1", "photosynthesis", 0.0).template_shared);
        let o = obs("t2", "the krebs cycle", 1.0);
        assert_eq!(o.cluster.size, 2);
        assert!(o.template_shared);
        assert!(l.evidence("t2").iter().any(|v| v.kind == "template"));
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
        let n = l.accounts.capacity();
        ((u128::from(l.account_hash(name)) * n as u128) >> 64) as usize
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
            l.observe(&Observation {
                account: a,
                fingerprints: &[("user_agent", &ua), ("device", "shared")],
                prompt: None,
                system: Some("You are a helpful assistant for ACME."),
                now,
            });
        }
        assert!(l.stats().bytes - before < 16 << 10, "{:?}", l.stats());
    }

    #[test]
    fn bad_configurations_name_the_key() {
        let bad = LinkConfig {
            horizon_secs: -1.0,
            ..LinkConfig::default()
        };
        assert!(Linker::try_new(bad)
            .err()
            .unwrap()
            .contains("link.horizon_secs"));
        let mut groups = LinkConfig::default();
        for i in 0..20 {
            groups.kind_weights.insert(format!("k{i}"), 0.1);
        }
        assert!(Linker::try_new(groups)
            .err()
            .unwrap()
            .contains("link.groups"));
    }
}
