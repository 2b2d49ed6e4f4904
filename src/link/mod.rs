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
//! - Evidence expires after `horizon_secs`: every `rebuild_every_secs` a
//!   maintenance cycle forgets the expired accounts, values and pairs and
//!   rebuilds the clusters from what is left, so links never snowball.
//!   A cycle goes a bounded step at a time (512 cells, about 10 µs), one
//!   request in four taking a step while it runs, so no request
//!   waits long for it: forgotten accounts leave tombstones until nothing
//!   names their cells, and the clusters are rebuilt in a second union-find
//!   forest (joins made meanwhile go to both) that replaces the first in one
//!   step. A table over its limit is brought back under it by the next
//!   cycle (its cells' 25 % headroom takes what arrives meanwhile).
//! - Memory is fixed at construction: four open-addressed tables of 24-byte
//!   cells (`max_accounts`, `max_values`, `max_templates`, `max_pairs`, each
//!   with 25 % headroom; accounts also have two 8-byte union-find nodes),
//!   plus the names of clustered accounts and the text of shared values for
//!   explanations.
//!
//! An account's fingerprints are recorded by its first request of each
//! minute, and by any request presenting different ones; later requests in
//! the minute presenting the same ones only look the account up (a 64-bit
//! memo in its cell), so a busy account costs one cache line per request.
//!
//! `observe` takes no lock beyond one of sixteen per-thread read stripes
//! (a maintenance step takes them all) and allocates nothing, except the first
//! time an account joins a cluster or a value becomes shared (its name or
//! text is kept for explanations).

mod config;
mod explanation;
mod kinds;
mod maintenance;
mod observe;
mod snapshot;
mod tables;
mod templates;

pub use config::{LinkConfig, DEFAULT_LINK_SEED};
pub use kinds::ipv4_prefix;
pub(crate) use snapshot::LinkSnapshot;

use crate::request::{Request, TextDigest};
use crate::sync::StripedLock;
use ahash::AHashMap;
use kinds::Kinds;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use tables::{Accounts, Pairs, Values, UNITS};
use xxhash_rust::xxh3::xxh3_64_with_seed;

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
    /// The account's cell (`None`: the table had no room for it).
    pub cell: Option<u32>,
    /// Whether this request's values were recorded (an account's first
    /// request of each minute, and any presenting different values): only
    /// then is `crowds` filled.
    pub recorded: bool,
    /// The values the request presents that several accounts share: the
    /// crowds it belongs to.
    pub crowds: CrowdValues,
}

/// The most shared values one request reports in [`Observed::crowds`].
pub const MAX_CROWD_VALUES: usize = 12;

/// Shared values a request presents (their tags, with the estimated
/// accounts presenting each), at most [`MAX_CROWD_VALUES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrowdValues {
    items: [(u64, u32); MAX_CROWD_VALUES],
    len: u8,
}

impl CrowdValues {
    /// Values presented by at least this many accounts are reported.
    const MIN_ACCOUNTS: f64 = 4.0;

    #[inline]
    fn push(&mut self, tag: u64, accounts: f64) {
        let n = usize::from(self.len);
        if accounts >= Self::MIN_ACCOUNTS && n < MAX_CROWD_VALUES {
            self.items[n] = (tag, accounts.round() as u32);
            self.len += 1;
        }
    }

    /// The values: (tag, estimated accounts).
    pub fn iter(&self) -> impl Iterator<Item = &(u64, u32)> {
        self.items[..usize::from(self.len)].iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The kind index a value's tag carries (see [`Linker::kind_name`]).
#[inline]
pub fn tag_kind(tag: u64) -> u8 {
    tables::tag_kind(tag)
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
    /// The most accounts, fingerprint values, template band values and
    /// linked pairs kept (the configuration's `max_*`).
    pub max_accounts: usize,
    /// See `max_accounts`.
    pub max_values: usize,
    /// See `max_accounts`.
    pub max_templates: usize,
    /// See `max_accounts`.
    pub max_pairs: usize,
    /// Joins of two single accounts into a new cluster, by requests (the
    /// rebuild's re-joins of known pairs are not counted).
    pub clusters_formed: u64,
    /// Maintenance: cycles started, steps taken, and how long the last and
    /// the longest step held the exclusive lock (what requests waited).
    pub maintenance_cycles: u64,
    /// See `maintenance_cycles`.
    pub maintenance_steps: u64,
    /// See `maintenance_cycles`.
    pub maintenance_last_step: std::time::Duration,
    /// See `maintenance_cycles`.
    pub maintenance_max_step: std::time::Duration,
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
    /// The maintenance cycle in progress (see `maintenance.rs`), whether
    /// one is, and requests since (to pace its steps).
    cycle: Mutex<maintenance::Cycle>,
    cycling: AtomicBool,
    calls: AtomicU64,
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
    /// Maintenance cycles and steps, and the last and longest step (ns).
    cycles: AtomicU64,
    steps: AtomicU64,
    last_step_ns: AtomicU64,
    max_step_ns: AtomicU64,
    /// The guard's shared intelligence, with a consortium key.
    pub(crate) intel: Option<std::sync::Arc<crate::intel::Intel>>,
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
            cycle: Mutex::new(maintenance::Cycle::new()),
            cycling: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            last_rebuild: AtomicU64::new(0f64.to_bits()),
            pressure: AtomicBool::new(false),
            untracked: AtomicU64::new(0),
            weakened: AtomicBool::new(false),
            oldest: AtomicU64::new(u64::MAX),
            epoch: AtomicU64::new(f64::NAN.to_bits()),
            threshold: (config.link_threshold * UNITS).round().max(1.0) as u32,
            max_texts: (config.max_accounts / 10).max(64),
            cycles: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            last_step_ns: AtomicU64::new(0),
            max_step_ns: AtomicU64::new(0),
            intel: None,
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

    /// Prefetches the account's first cell ahead of
    /// [`Linker::observe`]: reads it so that its cache miss overlaps
    /// other work (the value is meaningless).
    #[inline]
    pub fn prefetch_account(&self, hash: u64) -> u64 {
        self.accounts.prefetch(hash)
    }

    /// Records a request: its account's cluster, and whether its prompt
    /// follows a template another account used.
    pub fn observe(&self, req: &Request<'_>, now: f64) -> Observed {
        self.observe_with_hash(req, self.account_hash(req.account), now, None)
    }

    /// [`Linker::observe`] for a caller that already has the account's
    /// [`Linker::account_hash`] (the Guard needs it first for the limiter).
    /// With `pre`, the request's texts are given digested (another
    /// node's request: its prompt and system prompt are only their heads).
    pub(crate) fn observe_with_hash(
        &self,
        req: &Request<'_>,
        hash: u64,
        now: f64,
        pre: Option<&TextDigest>,
    ) -> Observed {
        let now = self.since_epoch(now);
        let out = {
            let _shared = self.maintenance.read();
            self.observe_locked(req, hash, now, pre)
        };
        self.maybe_rebuild(now);
        out
    }

    /// The keys a request's texts give the linker: its prompt's template
    /// bands and its system prompt's key (see `TextDigest`).
    pub(crate) fn digest_texts(
        &self,
        prompt: Option<&str>,
        system: Option<&str>,
    ) -> (Option<templates::Bands>, Option<u64>) {
        let bands = self.template_bands(prompt).map(|(_, b)| b);
        let system = system
            .filter(|s| !s.trim().is_empty())
            .map(|text| xxh3_64_with_seed(text.as_bytes(), self.kinds.at(self.kinds.system).hash));
        (bands, system)
    }

    /// Seconds since the linker's epoch: the first time it was given, so
    /// that callers may count from any origin (the Unix epoch included; the
    /// tables keep 29 bits of seconds). A Guard sets it to its clock's start.
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

    /// The index of the kind called `name`, if the configuration has it.
    pub(crate) fn kind_index(&self, name: &str) -> Option<u8> {
        let k = self.kinds.get(name);
        (k.index != kinds::UNKNOWN).then_some(k.index)
    }

    /// The name of the kind a value's tag carries.
    pub fn kind_name(&self, tag: u64) -> &str {
        self.kinds.name(tag_kind(tag))
    }

    /// The text kept for a shared value's tag (for explanations), if any.
    pub fn display_of(&self, tag: u64) -> Option<String> {
        self.displays.lock().get(&tag).map(|d| d.to_string())
    }

    /// The account cells (tracked accounts and their headroom).
    pub(crate) fn account_cells(&self) -> usize {
        self.accounts.capacity()
    }

    /// Marks the account in `cell` as suspect: when the table must make
    /// room, it is kept like a linked account.
    #[inline]
    pub(crate) fn mark_suspect(&self, cell: u32) {
        if (cell as usize) < self.accounts.capacity() {
            self.accounts.set_suspect(cell);
        }
    }

    /// The cell of the account with this hash, if it is tracked.
    pub(crate) fn account_cell(&self, hash: u64) -> Option<u32> {
        self.accounts.find(hash)
    }

    /// Where `account` and the value `value` of `kind` start in their
    /// tables (their home cells), for the keyed-hashing test.
    #[cfg(test)]
    pub(crate) fn homes(&self, account: &str, kind: &str, value: &str) -> (usize, usize) {
        let k = self.kinds.get(kind);
        let tag = tables::value_tag(xxh3_64_with_seed(value.as_bytes(), k.hash), k.index);
        (
            tables::home(self.account_hash(account), self.accounts.capacity()),
            tables::home(tag, self.values.capacity()),
        )
    }

    /// Hands every presented value to `intel` too (before any request).
    pub(crate) fn set_intel(&mut self, intel: std::sync::Arc<crate::intel::Intel>) {
        self.intel = Some(intel);
    }

    /// The name of the kind with index `kind`.
    pub(crate) fn kind_name_of(&self, kind: u8) -> &str {
        self.kinds.name(kind)
    }

    /// The configured link weight of a kind, by name (0 if unknown).
    pub(crate) fn kind_weight(&self, name: &str) -> f64 {
        self.kind_index(name)
            .map_or(0.0, |k| self.kinds.base_weight(k))
    }

    /// Counts time from `epoch` (seconds on the callers' clock).
    pub(crate) fn set_epoch(&self, epoch: f64) {
        self.epoch.store(epoch.to_bits(), Relaxed);
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::{ClusterView, Linker};
    use crate::guard::Request;

    /// Observes a request with fingerprints only.
    pub fn observe(l: &Linker, account: &str, fps: &[(&str, &str)], now: f64) -> ClusterView {
        l.observe(
            &Request {
                account,
                fingerprints: fps,
                prompt: None,
                system: None,
                model: None,
                input_tokens: 0,
                max_tokens: 0,
            },
            now,
        )
        .cluster
    }

    /// [`observe`], then finishes the maintenance cycle the request may
    /// have started (for tests of what maintenance does, not of its pace).
    pub fn observe_maintained(
        l: &Linker,
        account: &str,
        fps: &[(&str, &str)],
        now: f64,
    ) -> ClusterView {
        let view = observe(l, account, fps, now);
        let mut cycle = l.cycle.lock();
        let all = l.maintenance.write();
        l.finish_cycle(&mut cycle, &all);
        view
    }
}
