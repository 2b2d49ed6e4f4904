//! What a guard keeps for intelligence: shared values for export, imported
//! indicators, and the accounts that presented them.

pub use super::indicators::{
    ImportIndicator, ImportReport, IndicatorMatch, IntelStats, MatchedIndicator,
};
use super::{ConsortiumKey, IntelConfig, IntelError};
use ahash::AHashMap;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use xxhash_rust::xxh3::xxh3_64;

/// Imported indicators a guard can hold (the check cache keeps 16 bits).
pub(crate) const MAX_IMPORTS: usize = 65_535;
/// Accounts sampled per shared value.
pub(crate) const SAMPLE: usize = 16;
const SHARDS: usize = 16;
/// Cells of the cache of values checked against the imports.
const CACHE_CELLS: usize = 1 << 16;
/// Accounts marked by imported indicators, at most.
const MAX_MARKS: usize = 1 << 20;

/// A shared value remembered for export.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub token: [u8; 32],
    pub kind: u8,
    /// The accounts with the smallest hashes among those presenting it, ascending.
    pub sample: [u64; SAMPLE],
    pub len: u8,
    /// The linker's estimate of the accounts presenting it.
    pub accounts: f32,
    /// First and last presented, in minutes.
    pub first: u32,
    pub last: u32,
}

impl Entry {
    pub(crate) fn add(&mut self, account: u64) {
        let n = usize::from(self.len);
        let s = &mut self.sample;
        match s[..n].binary_search(&account) {
            Ok(_) => {}
            Err(at) if n < SAMPLE => {
                s.copy_within(at..n, at + 1);
                s[at] = account;
                self.len += 1;
            }
            Err(at) if at < SAMPLE => {
                s.copy_within(at..SAMPLE - 1, at + 1);
                s[at] = account;
            }
            Err(_) => {}
        }
    }

    pub fn sampled(&self) -> &[u64] {
        &self.sample[..usize::from(self.len)]
    }
}

pub(super) struct Imported {
    pub m: IndicatorMatch,
    pub confidence: u8,
    pub campaign: Option<String>,
    kind: u8,
    pub token: [u8; 32],
    pub modified: f64,
    pub revoked: bool,
    /// The budget its matches share (a hash of its campaign or producer).
    pub budget: u64,
    pub count: AtomicU64,
    pub first: AtomicU64,
    pub last: AtomicU64,
}

#[derive(Default)]
pub(super) struct Imports {
    pub list: Vec<Imported>,
    pub by_id: AHashMap<String, u32>,
    by_token: AHashMap<(u8, [u8; 32]), u32>,
}

#[derive(Clone, Copy)]
struct Mark {
    index: u32,
    until: f64,
    /// Its campaign (what `campaigns` counts it under).
    budget: u64,
}

/// A value presented by a request, for [`Intel::presented`].
pub(crate) struct Presented<'a> {
    pub tag: u64,
    pub kind: u8,
    pub kind_name: &'a str,
    pub account: u64,
    pub minutes: u64,
    /// Two accounts or more present it.
    pub shared: bool,
    pub accounts: f64,
    /// Feeds the value's bytes, in pieces.
    pub raw: &'a super::Pieces<'a>,
    /// Another account presenting it (its first), if known.
    pub other: Option<u64>,
}

/// The guard's intelligence state (see the module docs).
pub(crate) struct Intel {
    pub key: ConsortiumKey,
    pub config: IntelConfig,
    pub(super) entries: [Mutex<AHashMap<u64, Entry>>; SHARDS],
    pub(super) values: AtomicUsize,
    pub(super) max_values: usize,
    pub(super) dropped: AtomicU64,
    /// Whether any indicator is imported (nothing is checked until one is).
    active: AtomicBool,
    /// The kinds (bit `1 << (index % 64)`) with a live import: values of
    /// other kinds are not hashed at all (a prompt's 16 template bands cost
    /// 16 HMACs only where template indicators were imported).
    kinds: AtomicU64,
    pub(super) imports: RwLock<Imports>,
    /// Values checked since the last import: 48 bits of the tag, and the
    /// matching import's index + 1 (0: none) in the low 16.
    cache: Box<[AtomicU64]>,
    checked: AtomicU64,
    marks: [Mutex<AHashMap<u64, Mark>>; SHARDS],
    marked: AtomicUsize,
    /// When each shard of marks was last swept full (seconds).
    swept: [AtomicU32; SHARDS],
    /// Accounts marked per imported campaign (by budget key).
    campaigns: Mutex<AHashMap<u64, u32>>,
    /// The linker's horizon, in minutes.
    horizon: u32,
    making_room: Mutex<()>,
    /// A random key of this guard's campaign ids in exports (a cluster's
    /// own id is a hash of an account's name).
    pub campaign_salt: u64,
}

pub(super) fn shard(h: u64) -> usize {
    (h >> 59) as usize % SHARDS
}

impl Intel {
    pub fn new(
        key: ConsortiumKey,
        config: IntelConfig,
        max_link_values: usize,
        horizon_secs: f64,
    ) -> Intel {
        let max_values = if config.max_values > 0 {
            config.max_values
        } else {
            (max_link_values / 10).max(1024)
        };
        Intel {
            key,
            config,
            entries: std::array::from_fn(|_| Mutex::new(AHashMap::new())),
            values: AtomicUsize::new(0),
            max_values,
            dropped: AtomicU64::new(0),
            active: AtomicBool::new(false),
            kinds: AtomicU64::new(0),
            imports: RwLock::new(Imports::default()),
            cache: (0..CACHE_CELLS).map(|_| AtomicU64::new(0)).collect(),
            checked: AtomicU64::new(0),
            marks: std::array::from_fn(|_| Mutex::new(AHashMap::new())),
            marked: AtomicUsize::new(0),
            swept: Default::default(),
            campaigns: Mutex::new(AHashMap::new()),
            horizon: (horizon_secs / 60.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            making_room: Mutex::new(()),
            campaign_salt: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x6361_6d70_u64)
            },
        }
    }

    /// Records that an account presented a value (from the linker's hot
    /// path, on recorded requests): checks it against the imports, and
    /// remembers it for export once it is shared.
    pub fn presented(&self, v: &Presented<'_>, now: f64) {
        // (A prompt's template bands are checked once shared by two
        // accounts: most prompts' bands are their own, and hashing all 16
        // under the key would cost more than the rest of the request.)
        if self.active.load(Relaxed)
            && self.kinds.load(Relaxed) & kind_bit(v.kind) != 0
            && (v.shared || v.kind_name != "template")
        {
            self.check(v, now);
        }
        if !v.shared {
            return;
        }
        let minutes = v.minutes.min(u64::from(u32::MAX)) as u32;
        let at = shard(v.tag);
        let mut entries = self.entries[at].lock();
        if let Some(e) = entries.get_mut(&v.tag) {
            e.add(v.account);
            if let Some(o) = v.other {
                e.add(o);
            }
            e.last = e.last.max(minutes);
            e.accounts = v.accounts as f32;
            return;
        }
        if self.values.load(Relaxed) >= self.max_values {
            drop(entries);
            if !self.make_room(minutes) {
                self.dropped.fetch_add(1, Relaxed);
                return;
            }
            entries = self.entries[at].lock();
        }
        let mut e = Entry {
            token: self.key.token(v.kind_name, v.raw),
            kind: v.kind,
            sample: [0; SAMPLE],
            len: 0,
            accounts: v.accounts as f32,
            first: minutes,
            last: minutes,
        };
        e.add(v.account);
        if let Some(o) = v.other {
            e.add(o);
        }
        if entries.insert(v.tag, e).is_none() {
            self.values.fetch_add(1, Relaxed);
        }
    }

    /// Frees room for new shared values: forgets those not presented within
    /// the horizon and, while still over seven eighths full, those sampled
    /// from two accounts, then three (too few for the default export rule).
    /// Values of more accounts are never forgotten to make room: a new value
    /// waits instead (and is counted as dropped). Whether there is room now.
    pub(super) fn make_room(&self, minutes: u32) -> bool {
        let Some(_one) = self.making_room.try_lock() else {
            return false;
        };
        let target = self.max_values - self.max_values / 8;
        // The first pass forgets expired values only; then those of 1, 2, 3 accounts.
        let mut fewest = 0u8;
        loop {
            for s in &self.entries {
                let mut s = s.lock();
                let before = s.len();
                s.retain(|_, e| minutes.saturating_sub(e.last) <= self.horizon && e.len > fewest);
                self.values.fetch_sub(before - s.len(), Relaxed);
            }
            if self.values.load(Relaxed) <= target || fewest >= 3 {
                return self.values.load(Relaxed) < self.max_values;
            }
            fewest += 1;
        }
    }
}

/// An account's standing match: what the policy needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Matched {
    pub weight: f64,
    /// The limiter key of the budget its campaign's matches share.
    pub budget: u64,
}

/// A kind's bit in [`Intel`]'s mask of imported kinds.
fn kind_bit(kind: u8) -> u64 {
    1 << (kind % 64)
}

/// Where a tag is cached, and the word that says it was checked.
fn cache_slot(tag: u64) -> (usize, u64) {
    (
        (tag >> 48) as usize % CACHE_CELLS,
        tag.rotate_left(16) & !0xffff,
    )
}

impl Intel {
    /// Checks a presented value against the imports (once per value and
    /// import: the cache remembers), marking its account on a match.
    fn check(&self, v: &Presented<'_>, now: f64) {
        let (at, word) = cache_slot(v.tag);
        let cell = &self.cache[at];
        let seen = cell.load(Relaxed);
        let index = if seen & !0xffff == word {
            seen & 0xffff
        } else {
            self.checked.fetch_add(1, Relaxed);
            let token = self.key.token(v.kind_name, v.raw);
            // (The cell is written under the read lock, so that an import,
            // which clears the cache under its write lock, cannot be
            // followed by a stale answer.)
            let imports = self.imports.read();
            let found = imports.by_token.get(&(v.kind, token)).copied();
            let index = found.map_or(0, |i| u64::from(i) + 1);
            cell.store(word | index, Relaxed);
            index
        };
        if index != 0 {
            self.mark(v.account, (index - 1) as u32, now);
        }
    }

    /// Marks an account as presenting imported indicator `index` (keeping
    /// the heavier of two live ones), counting it under its campaign.
    fn mark(&self, account: u64, index: u32, now: f64) {
        let (weight, until, budget) = {
            let imports = self.imports.read();
            match imports.list.get(index as usize) {
                Some(i) if !i.revoked && i.m.valid_until > now => {
                    (i.m.weight, i.m.valid_until, i.budget)
                }
                _ => return,
            }
        };
        let mark = Mark {
            index,
            until,
            budget,
        };
        let mut marks = self.marks[shard(account)].lock();
        let held = marks.get(&account).copied();
        if let Some(m) = held {
            // A held mark stands if it is still live and as heavy (its
            // expiry follows the indicator's latest version).
            let imports = self.imports.read();
            let h = &imports.list[m.index as usize];
            let live = !h.revoked && h.m.valid_until > now && m.until > now;
            if live && m.index != index && h.m.weight >= weight {
                return;
            }
        } else if marks.len() >= MAX_MARKS / SHARDS {
            // A full shard is swept at most once a minute (a sweep walks
            // all of it), then takes no new mark until there is room.
            let swept = &self.swept[shard(account)];
            let second = now.max(0.0) as u32;
            let last = swept.load(Relaxed);
            if last == 0 || second.saturating_sub(last) >= 60 {
                swept.store(second, Relaxed);
                let dead = self.dead_indicators(now);
                self.sweep(&mut marks, &dead, now);
            }
            if marks.len() >= MAX_MARKS / SHARDS {
                return;
            }
        }
        marks.insert(account, mark);
        drop(marks);
        match held {
            None => {
                self.marked.fetch_add(1, Relaxed);
                *self.campaigns.lock().entry(budget).or_default() += 1;
            }
            Some(m) if m.budget != budget => {
                self.uncount(&[m.budget]);
                *self.campaigns.lock().entry(budget).or_default() += 1;
            }
            Some(_) => {}
        }
    }

    /// Which imported indicators (by index) no longer stand: revoked or
    /// expired.
    fn dead_indicators(&self, now: f64) -> Vec<bool> {
        let imports = self.imports.read();
        imports
            .list
            .iter()
            .map(|i| i.revoked || i.m.valid_until <= now)
            .collect()
    }

    /// Drops the marks of one shard that expired or whose indicator is
    /// `dead`, and takes them off the counts.
    fn sweep(&self, marks: &mut AHashMap<u64, Mark>, dead: &[bool], now: f64) {
        let mut gone = Vec::new();
        marks.retain(|_, m| {
            let keep = m.until > now && !dead.get(m.index as usize).copied().unwrap_or(true);
            if !keep {
                gone.push(m.budget);
            }
            keep
        });
        self.marked.fetch_sub(gone.len(), Relaxed);
        self.uncount(&gone);
    }

    /// Takes marks that are gone off their campaigns' counts.
    fn uncount(&self, budgets: &[u64]) {
        if budgets.is_empty() {
            return;
        }
        let mut c = self.campaigns.lock();
        for b in budgets {
            if let Some(n) = c.get_mut(b) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.remove(b);
                }
            }
        }
    }

    /// The imported campaign an account is marked for, if it still
    /// stands: its id (the budget key) and the accounts marked for it, which
    /// the guard scores as one cluster.
    pub fn campaign_of(&self, account: u64, now: f64) -> Option<(u64, u32)> {
        if !self.active.load(Relaxed) {
            return None;
        }
        let m = self.marks[shard(account)].lock().get(&account).copied()?;
        if m.until <= now {
            return None;
        }
        let budget = {
            let imports = self.imports.read();
            let i = imports.list.get(m.index as usize)?;
            if i.revoked || i.m.valid_until <= now {
                return None;
            }
            i.budget
        };
        let size = self.campaigns.lock().get(&budget).copied().unwrap_or(1);
        Some((budget, size))
    }

    /// The imported indicator the account matched, if it still stands;
    /// counts the request towards its sightings.
    pub fn match_of(&self, account: u64, now: f64) -> Option<Matched> {
        if !self.active.load(Relaxed) {
            return None;
        }
        let m = self.marks[shard(account)].lock().get(&account).copied()?;
        if m.until <= now {
            return None;
        }
        let imports = self.imports.read();
        let i = imports.list.get(m.index as usize)?;
        if i.revoked || i.m.valid_until <= now {
            return None;
        }
        i.count.fetch_add(1, Relaxed);
        // (Times are non-negative, so their bits order as they do.)
        let bits = now.max(0.0).to_bits();
        i.first.fetch_min(bits, Relaxed);
        i.last.fetch_max(bits, Relaxed);
        Some(Matched {
            weight: i.m.weight,
            budget: i.budget,
        })
    }

    /// The indicator behind an account's mark, for explanations.
    pub fn explain(&self, account: u64, now: f64) -> Option<IndicatorMatch> {
        let m = self.marks[shard(account)].lock().get(&account).copied()?;
        let imports = self.imports.read();
        let i = imports.list.get(m.index as usize)?;
        (!i.revoked && i.m.valid_until > now).then(|| i.m.clone())
    }

    /// Imports indicators, all or none (see [`ImportReport`] for what is
    /// ignored). `kind_of` gives the guard's index of a kind name.
    pub fn import(
        &self,
        list: &[ImportIndicator],
        kind_of: &dyn Fn(&str) -> Option<u8>,
        horizon_secs: f64,
        now: f64,
    ) -> Result<ImportReport, IntelError> {
        validate(list)?;
        let weight_of = |i: &ImportIndicator| self.weight_of(i);
        let until_of = |i: &ImportIndicator| i.valid_until.unwrap_or(i.modified + horizon_secs);
        let kind_index = |i: &ImportIndicator| self.kind_index(i, kind_of);
        let storable = |i: &ImportIndicator| self.storable(i, kind_of, horizon_secs, now);
        let mut imports = self.imports.write();
        self.room_for(&imports, list, &storable)?;
        let mut report = ImportReport::default();
        for i in list {
            let Some(kind) = kind_index(i) else {
                report.ignored += 1;
                continue;
            };
            let weight = weight_of(i);
            let version = Imported {
                confidence: i.confidence,
                campaign: i.campaign.clone(),
                m: IndicatorMatch {
                    id: i.id.clone(),
                    producer: i.producer.clone(),
                    producer_name: i.producer_name.clone(),
                    kind: i.kind.clone(),
                    weight,
                    valid_until: until_of(i),
                },
                kind,
                token: i.token,
                modified: i.modified,
                revoked: i.revoked,
                budget: xxh3_64(i.campaign.as_deref().unwrap_or(&i.producer).as_bytes()),
                count: AtomicU64::new(0),
                first: AtomicU64::new(u64::MAX),
                last: AtomicU64::new(0),
            };
            let Imports {
                list: held, by_id, ..
            } = &mut *imports;
            match by_id.get(&i.id).copied() {
                Some(at) => {
                    let old = &mut held[at as usize];
                    // Only a later version by the same creator counts, and
                    // a revocation is final.
                    if i.modified <= old.modified || i.producer != old.m.producer || old.revoked {
                        report.ignored += 1;
                        continue;
                    }
                    if i.revoked {
                        report.revoked += 1;
                    } else {
                        report.updated += 1;
                    }
                    // (Its matches so far stay counted.)
                    version.count.store(old.count.load(Relaxed), Relaxed);
                    version.first.store(old.first.load(Relaxed), Relaxed);
                    version.last.store(old.last.load(Relaxed), Relaxed);
                    *old = version;
                }
                None if storable(i) => {
                    let at = held.len() as u32;
                    held.push(version);
                    by_id.insert(i.id.clone(), at);
                    if i.revoked {
                        report.ignored += 1;
                    } else {
                        report.added += 1;
                    }
                }
                None => report.ignored += 1,
            }
        }
        // Each token matches its heaviest live version (two producers may
        // share one value: revoking one leaves the other).
        let Imports {
            list: held,
            by_token,
            ..
        } = &mut *imports;
        by_token.clear();
        for (at, h) in held.iter().enumerate() {
            if h.revoked || h.m.weight < self.config.min_weight || h.m.valid_until <= now {
                continue;
            }
            let slot = by_token.entry((h.kind, h.token)).or_insert(at as u32);
            if held[*slot as usize].m.weight < h.m.weight {
                *slot = at as u32;
            }
        }
        let live = !by_token.is_empty();
        let kinds = by_token.keys().fold(0, |m, k| m | kind_bit(k.0));
        self.kinds.store(kinds, Relaxed);
        // (Cleared under the write lock: see `check`.)
        for c in self.cache.iter() {
            c.store(0, Relaxed);
        }
        drop(imports);
        self.active.store(live, Relaxed);
        if report.revoked > 0 {
            // Revoked marks leave the counts (and the campaigns' sizes) at
            // once, not when they would have expired.
            let dead = self.dead_indicators(now);
            for shard in &self.marks {
                self.sweep(&mut shard.lock(), &dead, now);
            }
        }
        self.mark_known(now);
        Ok(report)
    }

    fn weight_of(&self, i: &ImportIndicator) -> f64 {
        f64::from(i.confidence) / 100.0 * self.config.trust_in(&i.producer)
    }

    /// The guard's index of an indicator's kind, unless it is not recorded or ignored.
    fn kind_index(&self, i: &ImportIndicator, kind_of: &dyn Fn(&str) -> Option<u8>) -> Option<u8> {
        kind_of(&i.kind).filter(|_| !self.config.ignores(&i.kind))
    }

    /// Whether an import of `i` would be held: a live version heavy enough,
    /// or a revocation (kept, so that the original, arriving later, is
    /// ignored), of a kind recorded and not ignored.
    fn storable(
        &self,
        i: &ImportIndicator,
        kind_of: &dyn Fn(&str) -> Option<u8>,
        horizon_secs: f64,
        now: f64,
    ) -> bool {
        let until = i.valid_until.unwrap_or(i.modified + horizon_secs);
        self.kind_index(i, kind_of).is_some()
            && (i.revoked || (self.weight_of(i) >= self.config.min_weight && until > now))
    }

    /// Fails if importing `list` would hold more than `max_imports`.
    fn room_for(
        &self,
        imports: &Imports,
        list: &[ImportIndicator],
        storable: &dyn Fn(&ImportIndicator) -> bool,
    ) -> Result<(), IntelError> {
        let new_ids = list
            .iter()
            .filter(|i| !imports.by_id.contains_key(&i.id) && storable(i))
            .map(|i| &i.id)
            .collect::<ahash::AHashSet<_>>()
            .len();
        if imports.list.len() + new_ids > self.config.max_imports {
            return Err(IntelError::new(format!(
                "importing {new_ids} new indicators would hold {} (intel.max_imports is {})",
                imports.list.len() + new_ids,
                self.config.max_imports
            )));
        }
        Ok(())
    }

    /// Fails where [`Intel::import`] of `list` would, changing nothing.
    pub fn check_importable(
        &self,
        list: &[ImportIndicator],
        kind_of: &dyn Fn(&str) -> Option<u8>,
        horizon_secs: f64,
        now: f64,
    ) -> Result<(), IntelError> {
        validate(list)?;
        let storable = |i: &ImportIndicator| self.storable(i, kind_of, horizon_secs, now);
        self.room_for(&self.imports.read(), list, &storable)
    }

    /// Marks the sampled accounts of shared values already remembered that
    /// match an import.
    fn mark_known(&self, now: f64) {
        let mut hits = Vec::new();
        {
            let imports = self.imports.read();
            for s in &self.entries {
                for e in s.lock().values() {
                    if let Some(&at) = imports.by_token.get(&(e.kind, e.token)) {
                        hits.extend(e.sampled().iter().map(|&a| (a, at)));
                    }
                }
            }
        }
        for (account, at) in hits {
            self.mark(account, at, now);
        }
    }

    /// Imported indicators that matched, with their counts.
    pub fn matched(&self) -> Vec<MatchedIndicator> {
        let imports = self.imports.read();
        imports
            .list
            .iter()
            .filter(|i| i.count.load(Relaxed) > 0)
            .map(|i| MatchedIndicator {
                id: i.m.id.clone(),
                count: i.count.load(Relaxed),
                first_seen: f64::from_bits(i.first.load(Relaxed)),
                last_seen: f64::from_bits(i.last.load(Relaxed)),
            })
            .collect()
    }

    /// The shared values remembered (copied out, so that no lock is held
    /// while the caller looks accounts up).
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .flat_map(|s| s.lock().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    pub fn stats(&self) -> IntelStats {
        let imports = self.imports.read();
        IntelStats {
            values: self.values.load(Relaxed),
            imports: imports.list.len(),
            marked: self.marked.load(Relaxed),
            checked: self.checked.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            revoked: imports.list.iter().filter(|i| i.revoked).count(),
            matches: imports.list.iter().map(|i| i.count.load(Relaxed)).sum(),
        }
    }
}

/// Checks each indicator's fields, naming the first that is wrong.
fn validate(list: &[ImportIndicator]) -> Result<(), IntelError> {
    for (n, i) in list.iter().enumerate() {
        let bad = |what: &str| {
            IntelError::new(format!("indicator {n} ({}): {what}", i.id.escape_debug()))
        };
        if i.id.is_empty() || i.id.len() > 256 {
            return Err(bad("its id must be 1 to 256 bytes"));
        }
        if i.producer.is_empty() || i.producer.len() > 256 {
            return Err(bad("its producer must be 1 to 256 bytes"));
        }
        if i.confidence > 100 {
            return Err(bad(&format!("confidence {} is over 100", i.confidence)));
        }
        if !i.modified.is_finite() || i.valid_until.is_some_and(|v| !v.is_finite()) {
            return Err(bad("its times must be finite"));
        }
    }
    Ok(())
}
