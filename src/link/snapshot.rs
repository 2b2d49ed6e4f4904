//! Snapshots of the linker: encoding its state, decoding (and checking)
//! one, installing it as it is, or merging another node's into this one.

use super::kinds::{NAMED_GROUPS, UNKNOWN};
use super::observe::Evidence;
use super::tables::{
    seconds, tag_kind, AccountState, Anchors, PairKey, PairState, Stat, ValueState, Values, Weights,
};
use super::Linker;
use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};
use ahash::{AHashMap, AHashSet};
use parking_lot::Mutex;
use std::sync::atomic::Ordering::Relaxed;

/// A decoded linker state, checked and ready to install or merge.
pub(crate) struct LinkSnapshot {
    capacities: [usize; 4],
    born: u32,
    last_rebuild: f64,
    accounts: Vec<(u32, AccountState)>,
    /// Values, then templates.
    values: [Vec<(u32, ValueState)>; 2],
    pairs: Vec<(u32, PairState)>,
    names: Vec<(u32, String)>,
    displays: Vec<(u64, String)>,
}

/// The names of accounts and the texts of values, as snapshotted.
type SideMaps = (Vec<(u32, String)>, Vec<(u64, String)>);

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

fn shift_seconds(t: u64, shift: f64) -> u64 {
    seconds(t as f64 + shift)
}

/// Minutes shifted by `shift` seconds (not below 0).
fn shift_minutes(m: u64, shift: f64) -> u64 {
    (m as f64 + shift / 60.0).max(0.0) as u64
}

/// Reads a cell index: in increasing order, each within its table.
fn read_cell(
    r: &mut Reader<'_>,
    last: &mut Option<u32>,
    capacity: usize,
    what: &str,
) -> Result<u32, Error> {
    let i = r.u32(what)?;
    if i as usize >= capacity || last.is_some_and(|l| l >= i) {
        return Err(r.err(format!(
            "{what} cell {i} is out of order or beyond {capacity}"
        )));
    }
    *last = Some(i);
    Ok(i)
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
    pub(crate) fn encode(&self, w: &mut Writer) {
        let mut cycle = self.cycle.lock();
        let all = self.maintenance.write();
        self.finish_cycle(&mut cycle, &all);
        w.u64(self.config.seed);
        for c in self.capacities() {
            w.u64(c as u64);
        }
        w.u32(self.accounts.born_counter());
        w.f64(f64::from_bits(self.last_rebuild.load(Relaxed)));
        self.encode_tables(w);
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

    fn encode_tables(&self, w: &mut Writer) {
        let live: Vec<_> = self.accounts.live().collect();
        w.u64(live.len() as u64);
        for (i, c) in live {
            w.u32(i);
            w.u64(c.tag);
            w.u64(c.seen);
            w.u32(c.parent);
            w.u32(c.size);
        }
        for table in [&self.values, &self.templates] {
            let live: Vec<_> = table.live().collect();
            w.u64(live.len() as u64);
            for (i, v) in live {
                w.u32(i);
                w.u64(v.tag);
                w.u64(v.anchors.bits());
                w.u64(v.stat.bits());
            }
        }
        let live: Vec<_> = self.pairs.live().collect();
        w.u64(live.len() as u64);
        for (i, p) in live {
            w.u32(i);
            w.u64(p.key.bits());
            w.u64(p.weights.bits());
            w.u64(p.seen);
        }
    }

    /// Reads what `encode` wrote, checking every cell index and reference,
    /// and shifts every time by `shift` seconds. Nothing is installed.
    pub(crate) fn decode(&self, r: &mut Reader<'_>, shift: f64) -> Result<LinkSnapshot, Error> {
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
        let accounts = decode_accounts(r, capacities[0], shift)?;
        let live: AHashSet<u32> = accounts.iter().map(|a| a.0).collect();
        let values = [
            self.decode_values(r, capacities[1], &live, shift)?,
            self.decode_values(r, capacities[2], &live, shift)?,
        ];
        let pairs = decode_pairs(r, capacities[3], &live, shift)?;
        let (names, displays) = decode_side_maps(r, &live)?;
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

    /// Reads one value table's cells.
    fn decode_values(
        &self,
        r: &mut Reader<'_>,
        capacity: usize,
        live: &AHashSet<u32>,
        shift: f64,
    ) -> Result<Vec<(u32, ValueState)>, Error> {
        let n = r.u64("value count")?;
        let n = r.expect_items(n, 28, "values")?;
        let mut list = Vec::with_capacity(n);
        let mut last = None;
        for _ in 0..n {
            let i = read_cell(r, &mut last, capacity, "value")?;
            let tag = r.u64("value tag")?;
            let anchors = Anchors::from_bits(r.u64("value anchors")?);
            let stat = Stat::from_bits(r.u64("value stat")?);
            let kind = tag_kind(tag);
            if tag == 0
                || (kind != UNKNOWN && usize::from(kind) >= self.kinds.kinds.len())
                || anchors.iter().any(|a| !live.contains(&a))
            {
                return Err(r.err(format!("value cell {i} is malformed")));
            }
            let minutes = shift_minutes(stat.minutes(), shift);
            let stat = Stat::new(stat.hll(), minutes, stat.weight());
            list.push((i, ValueState { tag, anchors, stat }));
        }
        Ok(list)
    }
}

/// Reads the accounts' cells (each parent an account).
fn decode_accounts(
    r: &mut Reader<'_>,
    capacity: usize,
    shift: f64,
) -> Result<Vec<(u32, AccountState)>, Error> {
    let n = r.u64("account count")?;
    let n = r.expect_items(n, 28, "accounts")?;
    let mut accounts = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let i = read_cell(r, &mut last, capacity, "account")?;
        let s = AccountState {
            tag: r.u64("account tag")?,
            seen: r.u64("account seen")?,
            parent: r.u32("account parent")?,
            size: r.u32("cluster size")?,
        };
        if s.tag == 0 || s.parent as usize >= capacity {
            return Err(r.err(format!("account cell {i} is malformed")));
        }
        accounts.push((i, s.with_seconds(shift_seconds(s.seconds(), shift))));
    }
    let live: AHashSet<u32> = accounts.iter().map(|a| a.0).collect();
    for &(i, s) in &accounts {
        if !live.contains(&s.parent) {
            return Err(r.err(format!(
                "account cell {i}'s parent {} is not an account",
                s.parent
            )));
        }
    }
    Ok(accounts)
}

/// Reads the pairs' cells (each between two accounts).
fn decode_pairs(
    r: &mut Reader<'_>,
    capacity: usize,
    live: &AHashSet<u32>,
    shift: f64,
) -> Result<Vec<(u32, PairState)>, Error> {
    let n = r.u64("pair count")?;
    let n = r.expect_items(n, 28, "pairs")?;
    let mut pairs = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let i = read_cell(r, &mut last, capacity, "pair")?;
        let key = r.u64("pair key")?;
        let weights = r.u64("pair weights")?;
        let seen = r.u64("pair seen")?;
        let key = PairKey::checked(key).filter(|k| {
            let (x, y) = k.accounts();
            live.contains(&x) && live.contains(&y)
        });
        let Some(key) = key.filter(|_| Weights::is_valid(weights) && seen <= 1 << 24) else {
            return Err(r.err(format!("pair cell {i} is malformed")));
        };
        let seen = shift_minutes(seen, shift).min(1 << 24);
        let weights = Weights::from_bits(weights);
        pairs.push((i, PairState { key, weights, seen }));
    }
    Ok(pairs)
}

/// Reads the names of accounts (in cell order) and the texts of values (in
/// tag order).
fn decode_side_maps(r: &mut Reader<'_>, live: &AHashSet<u32>) -> Result<SideMaps, Error> {
    let n = r.u64("name count")?;
    let n = r.expect_items(n, 12, "names")?;
    let mut names: Vec<(u32, String)> = Vec::with_capacity(n);
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
    let mut displays: Vec<(u64, String)> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = r.u64("value tag")?;
        let d = r.str("value text")?;
        if displays.last().is_some_and(|(l, _)| *l >= t) {
            return Err(r.err("value texts are out of order"));
        }
        displays.push((t, d));
    }
    Ok((names, displays))
}

impl Linker {
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
        let mut cycle = self.cycle.lock();
        let all = self.maintenance.write();
        self.finish_cycle(&mut cycle, &all);
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
        for (i, state) in &s.accounts {
            self.accounts.install(*i as usize, state);
        }
        self.accounts.set_born_counter(s.born);
        for (table, list) in [&self.values, &self.templates].into_iter().zip(&s.values) {
            for (i, v) in list {
                table.install(*i as usize, v);
            }
        }
        for (i, p) in &s.pairs {
            self.pairs.install(*i as usize, p);
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
        let mut cycle = self.cycle.lock();
        let all = self.maintenance.write();
        self.finish_cycle(&mut cycle, &all);
        // The other node's account cells, mapped to this node's.
        let mut map: AHashMap<u32, u32> = AHashMap::with_capacity(o.accounts.len());
        for (i, s) in &o.accounts {
            let t = s.seconds();
            if let Some(a) = self.accounts.find_or_insert(s.tag, t) {
                if self.accounts.seen(a) < t {
                    self.accounts.mark_seen(a, t);
                }
                map.insert(*i, a);
            }
        }
        for (table, list) in [&self.values, &self.templates].into_iter().zip(&o.values) {
            for (_, v) in list {
                self.merge_value(table, v, &map);
            }
        }
        for (_, p) in &o.pairs {
            let (x, y) = p.key.accounts();
            let (Some(&x), Some(&y)) = (map.get(&x), map.get(&y)) else {
                continue;
            };
            if x == y {
                continue;
            }
            let i = self.pairs.find_or_insert(PairKey::new(x, y));
            self.pairs.absorb(i, p.weights, p.seen);
        }
        self.merge_side_maps(o.names, o.displays, &map);
        self.oldest.store(0, Relaxed);
        self.relink(&mut cycle, &all);
    }

    /// Folds one of the other node's values in (see [`Linker::merge`]).
    fn merge_value(&self, table: &Values, v: &ValueState, map: &AHashMap<u32, u32>) {
        let kind = tag_kind(v.tag);
        let (i, replaced) = table.find_or_insert(v.tag, v.stat.minutes(), v.stat.weight());
        if replaced != 0 {
            self.displays.lock().remove(&replaced);
        }
        let mine = table.stat(i);
        let hll = mine.hll().merge(v.stat.hll());
        let weight = self.weight_units(kind, hll.estimate());
        let minutes = mine.minutes().max(v.stat.minutes());
        table.set_stat(i, Stat::new(hll, minutes, weight));
        let ours: Vec<u32> = table.anchors(i).iter().collect();
        let theirs: Vec<u32> = v
            .anchors
            .iter()
            .filter_map(|a| map.get(&a).copied())
            .collect();
        let mut joined = ours.clone();
        for &a in &theirs {
            if !joined.contains(&a) && joined.len() < 2 {
                joined.push(a);
            }
        }
        table.set_anchors(i, Anchors::of(&joined));
        // The other node's accounts link to this node's anchors.
        let group = if kind == UNKNOWN {
            NAMED_GROUPS as u8
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

    /// Folds the other node's names (of the accounts mapped) and texts in.
    fn merge_side_maps(
        &self,
        names: Vec<(u32, String)>,
        displays: Vec<(u64, String)>,
        map: &AHashMap<u32, u32>,
    ) {
        {
            let mut mine = self.names.lock();
            for (a, n) in names {
                if let Some(&a) = map.get(&a) {
                    mine.entry(a).or_insert_with(|| n.into());
                    self.accounts.set_named(a);
                }
            }
        }
        let mut mine = self.displays.lock();
        for (t, d) in displays {
            if mine.len() < self.max_texts {
                mine.entry(t).or_insert_with(|| d.into());
            }
        }
    }
}
