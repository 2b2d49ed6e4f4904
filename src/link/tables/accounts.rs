//! The accounts table, with the concurrent union-find of clusters.
//!
//! The union-find lives in two *forests* beside the cells: requests read
//! and join clusters in the current one, while maintenance rebuilds the
//! other from the linked pairs a slice at a time (joins made meanwhile go
//! to both), then makes it current in one step. Forgotten accounts leave a
//! *tombstone* until the same maintenance cycle has dropped every anchor
//! and pair that names their cell, so that no new account inherits them.

use super::{alloc_cells, cells_for, home, window};
use crate::model;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// One tracked account (24 bytes).
#[derive(Default)]
struct AccountCell {
    /// The account's hash (never 0, and odd); 0 = empty, [`TOMB`] =
    /// forgotten, its cell not yet free.
    tag: AtomicU64,
    /// Last seen (seconds, low 29 bits), suspect flag (bit 29), paired flag
    /// (bit 30), named flag (bit 31), order of arrival (bits 32 to 62),
    /// returned flag (bit 63).
    seen: AtomicU64,
    /// The hash of the fingerprints the account last presented (high 32
    /// bits) and the minute it did (low 32): a request presenting the same
    /// ones in the same minute has nothing new to record about them.
    memo: AtomicU64,
}

/// A cell's place in one union-find forest.
struct Node {
    /// Union-find parent (itself at a root).
    parent: model::AtomicU32,
    /// Accounts in the cluster (meaningful at a root).
    size: model::AtomicU32,
}

/// The tag of a forgotten account's cell until it is free (account hashes
/// are odd, so no account has it).
const TOMB: u64 = 2;

/// Set once the account's name is kept for explanations.
const NAMED: u64 = 1 << 31;
/// Set once the account is in a linked pair (cleared by the rebuild when
/// it no longer is): accounts without it need no pair lookups.
const PAIRED: u64 = 1 << 30;
/// Set once the account's own behaviour made it suspicious (see
/// [`crate::crowd`]): kept like a linked account when the table must make
/// room, so that what its behaviour showed is not forgotten with it.
const SUSPECT: u64 = 1 << 29;
/// The seconds of the seen word (29 bits: 17 years).
const SECONDS: u64 = SUSPECT - 1;
/// Set once the account is seen in a second other than its first: an
/// account without it made one request (or one burst), the least useful
/// to remember when the table must make room.
const RETURNED: u64 = 1 << 63;
/// The order of arrival, in the seen word's bits 32 to 62.
const BORN: u32 = (1 << 31) - 1;

/// How useful an account's cell is to keep, from its seen word (smaller:
/// forgotten first): accounts in a linked pair or suspect above all, then
/// accounts that returned, then one-request accounts; within each, the
/// most recently seen.
#[inline]
fn usefulness(seen: u64) -> u64 {
    let tier = if seen & (PAIRED | SUSPECT) != 0 {
        2
    } else if seen & RETURNED != 0 {
        1
    } else {
        0
    };
    (tier << 32) | (seen & SECONDS)
}

/// Seconds since the linker's epoch as the tables keep them (30 bits;
/// negative and NaN times are 0).
#[inline]
pub(crate) fn seconds(now: f64) -> u64 {
    if now > 0.0 {
        (now as u64).min(SECONDS)
    } else {
        0
    }
}

/// An account's memo word: what it presented (a hash) and in which minute.
#[inline]
pub(crate) fn memo_word(presented: u64, minutes: u64) -> u64 {
    (presented << 32) | (minutes & 0xffff_ffff)
}

/// An account cell's content, as snapshotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccountState {
    pub tag: u64,
    /// The seen word (seconds, flags and order of arrival).
    pub seen: u64,
    pub parent: u32,
    pub size: u32,
}

impl AccountState {
    /// Last seen, in seconds.
    pub fn seconds(&self) -> u64 {
        self.seen & SECONDS
    }

    /// The same state last seen at `t` seconds instead.
    pub fn with_seconds(self, t: u64) -> AccountState {
        AccountState {
            seen: (self.seen & !SECONDS) | (t & SECONDS),
            ..self
        }
    }
}

pub(crate) struct Accounts {
    cells: Box<[AccountCell]>,
    /// The two union-find forests (see the module docs).
    forests: [Box<[Node]>; 2],
    /// Which forest is current (0 or 1).
    current: AtomicUsize,
    /// Set while maintenance builds the other forest: joins go to both.
    building: AtomicBool,
    /// Accounts in a live pair, as maintenance finds them (a bit per
    /// cell), and whether requests mark the accounts of new pairs too.
    paired_now: Box<[AtomicU64]>,
    collecting: AtomicBool,
    /// The tombstones (a bit per cell): what maintenance checks anchors and
    /// pairs against, 150 KB for a million accounts, in the cache.
    forgotten: Box<[AtomicU64]>,
    len: AtomicUsize,
    born: AtomicU32,
    /// Held while two clusters join.
    joining: model::Mutex<()>,
    /// Joins by requests of two single accounts (see [`Accounts::formed`]).
    formed: AtomicU64,
}

fn forest(n: usize) -> Result<Box<[Node]>, String> {
    alloc_cells(n, "accounts' clusters", |i| Node {
        parent: model::AtomicU32::new(i as u32),
        size: model::AtomicU32::new(1),
    })
}

impl Accounts {
    pub fn new(max: usize) -> Result<Accounts, String> {
        let cells = alloc_cells(cells_for(max), "accounts", |_| AccountCell::default())?;
        let n = cells.len();
        Ok(Accounts {
            forests: [forest(n)?, forest(n)?],
            current: AtomicUsize::new(0),
            building: AtomicBool::new(false),
            paired_now: alloc_cells(n.div_ceil(64), "accounts' pair marks", |_| {
                AtomicU64::new(0)
            })?,
            collecting: AtomicBool::new(false),
            forgotten: alloc_cells(n.div_ceil(64), "accounts' tombstones", |_| {
                AtomicU64::new(0)
            })?,
            cells,
            len: AtomicUsize::new(0),
            born: AtomicU32::new(0),
            joining: model::Mutex::new(()),
            formed: AtomicU64::new(0),
        })
    }

    /// The current forest.
    #[inline]
    fn nodes(&self) -> &[Node] {
        &self.forests[self.current.load(Relaxed) & 1]
    }

    /// The forest maintenance builds.
    fn spare(&self) -> &[Node] {
        &self.forests[(self.current.load(Relaxed) & 1) ^ 1]
    }

    pub fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Accounts tracked.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Reads the first cell `tag` may occupy, to bring it into the cache
    /// (the value is meaningless).
    #[inline]
    pub fn prefetch(&self, tag: u64) -> u64 {
        self.cells[home(tag, self.cells.len())].tag.load(Relaxed)
    }

    pub fn find(&self, tag: u64) -> Option<u32> {
        window(tag, self.cells.len())
            .find(|&i| self.cells[i].tag.load(Relaxed) == tag)
            .map(|i| i as u32)
    }

    /// The account's cell, taken if new; `None` if its cells are all taken
    /// by others.
    pub fn find_or_insert(&self, tag: u64, now: u64) -> Option<u32> {
        // The whole window first: an expiry may have left a hole before the
        // account's cell, which must not be taken for a second copy.
        if let Some(a) = self.find(tag) {
            return Some(a);
        }
        for i in window(tag, self.cells.len()) {
            let cell = &self.cells[i];
            let t = cell.tag.load(Relaxed);
            if t == tag {
                return Some(i as u32);
            }
            if t == 0 {
                match cell.tag.compare_exchange(0, tag, Relaxed, Relaxed) {
                    Ok(_) => {
                        let born = self.born.fetch_add(1, Relaxed);
                        cell.seen
                            .store((u64::from(born & BORN) << 32) | (now & SECONDS), Relaxed);
                        self.len.fetch_add(1, Relaxed);
                        return Some(i as u32);
                    }
                    Err(t) if t == tag => return Some(i as u32),
                    Err(_) => {}
                }
            }
        }
        None
    }

    /// Marks `a` seen at `now` (seconds), writing only when the second changed.
    #[inline]
    pub fn mark_seen(&self, a: u32, now: u64) {
        let cell = &self.cells[a as usize];
        let s = cell.seen.load(Relaxed);
        if s & SECONDS != now & SECONDS {
            let _ = cell.seen.fetch_update(Relaxed, Relaxed, |s| {
                Some((s & !SECONDS) | (now & SECONDS) | RETURNED)
            });
        }
    }

    /// Last seen, in seconds.
    pub fn seen(&self, a: u32) -> u64 {
        self.cells[a as usize].seen.load(Relaxed) & SECONDS
    }

    /// The account's hash (0 if the cell is empty).
    #[inline]
    pub fn tag(&self, a: u32) -> u64 {
        self.cells[a as usize].tag.load(Relaxed)
    }

    /// Whether cell `a` holds an account.
    #[inline]
    pub fn is_live(&self, a: u32) -> bool {
        let t = self.tag(a);
        t != 0 && t != TOMB
    }

    /// Accounts in the cluster whose root is `root`.
    #[inline]
    pub fn size(&self, root: u32) -> u32 {
        self.nodes()[root as usize].size.load(Relaxed)
    }

    /// Whether `a`'s last request presented what `memo` (see [`memo_word`])
    /// says, in the same minute.
    #[inline]
    pub fn memo_matches(&self, a: u32, memo: u64) -> bool {
        self.cells[a as usize].memo.load(Relaxed) == memo
    }

    /// Remembers what `a` presented (see [`memo_word`]).
    #[inline]
    pub fn remember(&self, a: u32, memo: u64) {
        self.cells[a as usize].memo.store(memo, Relaxed);
    }

    /// Flags `a` as named; whether it was not yet (its name is to be kept).
    #[inline]
    pub fn name_once(&self, a: u32) -> bool {
        let cell = &self.cells[a as usize];
        if cell.seen.load(Relaxed) & NAMED == 0 {
            cell.seen.fetch_or(NAMED, Relaxed);
            true
        } else {
            false
        }
    }

    /// Whether `a` is flagged as named.
    pub fn is_named(&self, a: u32) -> bool {
        self.cells[a as usize].seen.load(Relaxed) & NAMED != 0
    }

    /// Flags `a` as named.
    pub fn set_named(&self, a: u32) {
        self.cells[a as usize].seen.fetch_or(NAMED, Relaxed);
    }

    /// Clears `a`'s named flag (its name is recorded again if it rejoins a
    /// cluster).
    pub fn clear_named(&self, a: u32) {
        self.cells[a as usize].seen.fetch_and(!NAMED, Relaxed);
    }

    /// Whether `a` is in a linked pair.
    #[inline]
    pub fn is_paired(&self, a: u32) -> bool {
        self.cells[a as usize].seen.load(Relaxed) & PAIRED != 0
    }

    /// Flags `a` as in a linked pair.
    #[inline]
    pub fn set_paired(&self, a: u32) {
        let cell = &self.cells[a as usize];
        if cell.seen.load(Relaxed) & PAIRED == 0 {
            cell.seen.fetch_or(PAIRED, Relaxed);
        }
        if self.collecting.load(Relaxed) {
            self.mark_paired_now(a);
        }
    }

    /// Notes that `a` is in a live pair (maintenance, and requests while
    /// maintenance collects them).
    pub fn mark_paired_now(&self, a: u32) {
        let bit = 1u64 << (a % 64);
        let w = &self.paired_now[a as usize / 64];
        if w.load(Relaxed) & bit == 0 {
            w.fetch_or(bit, Relaxed);
        }
    }

    /// Starts collecting the accounts in live pairs afresh (maintenance).
    pub fn start_collecting_paired(&self) {
        for w in self.paired_now.iter() {
            w.store(0, Relaxed);
        }
        self.collecting.store(true, Relaxed);
    }

    /// Clears the paired flag of the accounts in `range` found in no live
    /// pair since collecting started (maintenance, the last pass).
    pub fn clear_unpaired(&self, range: Range<usize>) {
        for a in range {
            let cell = &self.cells[a];
            let marked = self.paired_now[a / 64].load(Relaxed) & (1 << (a % 64)) != 0;
            if !marked && cell.seen.load(Relaxed) & PAIRED != 0 {
                cell.seen.fetch_and(!PAIRED, Relaxed);
            }
        }
    }

    /// Stops collecting (maintenance, once the last pass is done).
    pub fn stop_collecting_paired(&self) {
        self.collecting.store(false, Relaxed);
    }

    /// Flags `a` as suspect (kept when the table makes room).
    #[inline]
    pub fn set_suspect(&self, a: u32) {
        let cell = &self.cells[a as usize];
        if cell.seen.load(Relaxed) & SUSPECT == 0 {
            cell.seen.fetch_or(SUSPECT, Relaxed);
        }
    }

    fn order(&self, a: u32) -> (u32, u32) {
        (
            (self.cells[a as usize].seen.load(Relaxed) >> 32) as u32 & BORN,
            a,
        )
    }

    /// The root of `a`'s cluster (with path halving).
    #[inline]
    pub fn root(&self, x: u32) -> u32 {
        root_in(self.nodes(), x)
    }

    /// `x`'s root, read without shortening the path (nothing written), or
    /// `None` past [`READ_HOPS`] steps or a parent out of range: what a
    /// reader without the lock may see of a forest being rebuilt.
    pub fn root_read(&self, mut x: u32) -> Option<u32> {
        let nodes = self.nodes();
        for _ in 0..READ_HOPS {
            let p = nodes.get(x as usize)?.parent.load(Relaxed);
            if p == x {
                return Some(x);
            }
            x = p;
        }
        None
    }

    /// Joins the clusters of `a` and `b`; the root is the older account, so
    /// a cluster's identity stays that of its first member. Joining is rare
    /// (most calls find one root and return at once) and takes a mutex, so
    /// roots change one at a time and every size stays exact. While
    /// maintenance builds the other forest, the join is made there too.
    pub fn union(&self, a: u32, b: u32) -> bool {
        // (While the spare forest is built, a pair already joined in the
        // current one may not be there yet.)
        if self.root(a) == self.root(b)
            && (!self.building.load(Relaxed)
                || root_in(self.spare(), a) == root_in(self.spare(), b))
        {
            return false;
        }
        let _one = self.joining.lock();
        if self.building.load(Relaxed) {
            self.join_in(self.spare(), a, b);
        }
        let nodes = self.nodes();
        let (ra, rb) = (root_in(nodes, a), root_in(nodes, b));
        let alone = ra != rb
            && nodes[ra as usize].size.load(Relaxed) == 1
            && nodes[rb as usize].size.load(Relaxed) == 1;
        let joined = self.join_in(nodes, a, b);
        if joined && alone {
            self.formed.fetch_add(1, Relaxed);
        }
        joined
    }

    /// How many joins by requests made a cluster of two single accounts:
    /// new clusters formed (the rebuild's joins are not counted).
    pub fn formed(&self) -> u64 {
        self.formed.load(Relaxed)
    }

    fn join_in(&self, nodes: &[Node], a: u32, b: u32) -> bool {
        let (ra, rb) = (root_in(nodes, a), root_in(nodes, b));
        if ra == rb {
            return false;
        }
        let (child, root) = if self.order(ra) < self.order(rb) {
            (rb, ra)
        } else {
            (ra, rb)
        };
        let c = &nodes[child as usize];
        c.parent.store(root, Relaxed);
        let n = c.size.load(Relaxed);
        nodes[root as usize].size.fetch_add(n, Relaxed);
        true
    }

    /// Every account of `range` its own cluster in the forest maintenance
    /// builds, which it then builds (maintenance: the first pass).
    pub fn reset_spare(&self, range: Range<usize>) {
        for (n, i) in self.spare()[range.clone()].iter().zip(range) {
            n.parent.store(i as u32, Relaxed);
            n.size.store(1, Relaxed);
        }
    }

    /// From now on, joins go to the spare forest too (maintenance).
    pub fn start_building(&self) {
        self.building.store(true, Relaxed);
    }

    /// Joins `a` and `b` in the spare forest (maintenance, under the
    /// exclusive lock: no request joins meanwhile).
    pub fn union_spare(&self, a: u32, b: u32) {
        self.join_in(self.spare(), a, b);
    }

    /// Makes the spare forest current (maintenance, under the exclusive
    /// lock).
    pub fn swap_forests(&self) {
        self.building.store(false, Relaxed);
        self.current.fetch_xor(1, Relaxed);
    }

    /// Whether cell `a` holds a tombstone (maintenance: a bit read, not the
    /// cell).
    #[inline]
    pub fn is_forgotten(&self, a: u32) -> bool {
        let a = a as usize;
        self.forgotten
            .get(a / 64)
            .is_none_or(|w| w.load(Relaxed) & (1 << (a % 64)) != 0)
    }

    /// Empties cell `a` (maintenance only).
    pub fn clear(&self, a: usize) {
        let w = &self.forgotten[a / 64];
        if w.load(Relaxed) & (1 << (a % 64)) != 0 {
            w.fetch_and(!(1 << (a % 64)), Relaxed);
        }
        let c = &self.cells[a];
        let t = c.tag.swap(0, Relaxed);
        if t != 0 && t != TOMB {
            self.len.fetch_sub(1, Relaxed);
        }
        c.seen.store(0, Relaxed);
        c.memo.store(0, Relaxed);
        for f in &self.forests {
            f[a].parent.store(a as u32, Relaxed);
            f[a].size.store(1, Relaxed);
        }
    }

    /// Forgets, among the cells of `range`, the accounts last seen before
    /// `cut` seconds and those less useful to keep than `floor` (see
    /// [`usefulness`]): each leaves a tombstone until [`Accounts::free`]
    /// (maintenance only). Returns how many went and when the least recently
    /// seen of those kept was seen.
    pub fn forget(
        &self,
        range: Range<usize>,
        cut: u64,
        floor: u64,
        mut forget: impl FnMut(u32),
    ) -> (usize, u64) {
        let (mut forgotten, mut oldest) = (0, u64::MAX);
        for i in range {
            let cell = &self.cells[i];
            let t = cell.tag.load(Relaxed);
            if t == 0 || t == TOMB {
                continue;
            }
            let seen = cell.seen.load(Relaxed);
            if seen & SECONDS < cut || usefulness(seen) < floor {
                cell.tag.store(TOMB, Relaxed);
                self.forgotten[i / 64].fetch_or(1 << (i % 64), Relaxed);
                cell.memo.store(0, Relaxed);
                self.len.fetch_sub(1, Relaxed);
                forget(i as u32);
                forgotten += 1;
            } else {
                oldest = oldest.min(seen & SECONDS);
            }
        }
        (forgotten, oldest)
    }

    /// Frees the tombstones among the cells of `range` (maintenance, once
    /// nothing names them).
    pub fn free(&self, range: Range<usize>) {
        for i in range {
            if self.cells[i].tag.load(Relaxed) == TOMB {
                self.clear(i);
            }
        }
    }

    /// How useful the account in cell `a` is to keep (see [`usefulness`]),
    /// if it holds one.
    pub fn usefulness_of(&self, a: usize) -> Option<u64> {
        let c = self.cells.get(a)?;
        let t = c.tag.load(Relaxed);
        (t != 0 && t != TOMB).then(|| usefulness(c.seen.load(Relaxed)))
    }

    /// The tracked accounts' cells, in table order.
    pub fn live(&self) -> impl Iterator<Item = (u32, AccountState)> + '_ {
        let nodes = self.nodes();
        self.cells
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.is_live(i as u32))
            .map(move |(i, c)| {
                let state = AccountState {
                    tag: c.tag.load(Relaxed),
                    seen: c.seen.load(Relaxed),
                    parent: nodes[i].parent.load(Relaxed),
                    size: nodes[i].size.load(Relaxed),
                };
                (i as u32, state)
            })
    }

    pub fn born_counter(&self) -> u32 {
        self.born.load(Relaxed)
    }

    pub fn set_born_counter(&self, v: u32) {
        self.born.store(v, Relaxed);
    }

    /// Installs a cell as it was snapshotted (maintenance only).
    pub fn install(&self, a: usize, s: &AccountState) {
        let c = &self.cells[a];
        c.memo.store(0, Relaxed);
        let t = c.tag.swap(s.tag, Relaxed);
        if t == 0 || t == TOMB {
            self.len.fetch_add(1, Relaxed);
        }
        c.seen.store(s.seen, Relaxed);
        let n = &self.nodes()[a];
        n.parent.store(s.parent, Relaxed);
        n.size.store(s.size, Relaxed);
    }
}

/// The root of `x`'s cluster in `nodes` (with path halving).
/// The longest path [`Accounts::root_read`] follows.
const READ_HOPS: usize = 32;

#[inline]
fn root_in(nodes: &[Node], mut x: u32) -> u32 {
    loop {
        let p = nodes[x as usize].parent.load(Relaxed);
        if p == x {
            return x;
        }
        let gp = nodes[p as usize].parent.load(Relaxed);
        if gp != p {
            let _ = nodes[x as usize]
                .parent
                .compare_exchange(p, gp, Relaxed, Relaxed);
        }
        x = gp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_keeps_the_oldest_root() {
        let t = Accounts::new(100).unwrap();
        let a = t.find_or_insert(11, 0).unwrap();
        let b = t.find_or_insert(22, 0).unwrap();
        let c = t.find_or_insert(33, 0).unwrap();
        assert!(t.union(c, b));
        assert!(t.union(b, a));
        assert!(!t.union(a, c));
        assert_eq!(t.root(c), a);
        assert_eq!(t.size(a), 3);
        assert_eq!(t.find_or_insert(22, 5), Some(b));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn flags_leave_the_seconds_alone() {
        let t = Accounts::new(10).unwrap();
        let a = t.find_or_insert(5, 42).unwrap();
        assert!(t.name_once(a));
        assert!(!t.name_once(a));
        t.set_paired(a);
        t.set_suspect(a);
        assert!(t.is_paired(a));
        assert_eq!(t.seen(a), 42);
        t.mark_seen(a, 43);
        assert_eq!(t.seen(a), 43);
        t.start_collecting_paired();
        t.clear_unpaired(0..t.capacity());
        t.clear_named(a);
        assert!(!t.is_paired(a) && t.name_once(a));
        let (_, s) = t.live().next().unwrap();
        assert_eq!(s.with_seconds(7).seconds(), 7);
        assert_eq!(s.with_seconds(7).seen >> 29, s.seen >> 29);
        assert_ne!(s.seen & SUSPECT, 0);
    }
}
