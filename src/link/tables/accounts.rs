//! The accounts table, with the concurrent union-find of clusters.

use super::{alloc_cells, cells_for, home, window};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// One tracked account (32 bytes).
#[derive(Default)]
struct AccountCell {
    /// The account's hash (never 0); 0 = empty.
    tag: AtomicU64,
    /// Last seen (seconds, low 29 bits), suspect flag (bit 29), paired flag
    /// (bit 30), named flag (bit 31), order of arrival (bits 32 to 62),
    /// returned flag (bit 63).
    seen: AtomicU64,
    /// Union-find parent (itself at a root).
    parent: AtomicU32,
    /// Accounts in the cluster (meaningful at a root).
    size: AtomicU32,
    /// The hash of the fingerprints the account last presented (high 32
    /// bits) and the minute it did (low 32): a request presenting the same
    /// ones in the same minute has nothing new to record about them.
    memo: AtomicU64,
}

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
    len: AtomicUsize,
    born: AtomicU32,
    /// Held while two clusters join.
    joining: parking_lot::Mutex<()>,
}

impl Accounts {
    pub fn new(max: usize) -> Result<Accounts, String> {
        let cells = alloc_cells(cells_for(max), "accounts", |i| AccountCell {
            parent: AtomicU32::new(i as u32),
            size: AtomicU32::new(1),
            ..AccountCell::default()
        })?;
        Ok(Accounts {
            cells,
            len: AtomicUsize::new(0),
            born: AtomicU32::new(0),
            joining: parking_lot::Mutex::new(()),
        })
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
        self.tag(a) != 0
    }

    /// Accounts in the cluster whose root is `root`.
    #[inline]
    pub fn size(&self, root: u32) -> u32 {
        self.cells[root as usize].size.load(Relaxed)
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
    }

    /// Flags `a` as suspect (kept when the table makes room).
    #[inline]
    pub fn set_suspect(&self, a: u32) {
        let cell = &self.cells[a as usize];
        if cell.seen.load(Relaxed) & SUSPECT == 0 {
            cell.seen.fetch_or(SUSPECT, Relaxed);
        }
    }

    /// Clears every account's paired flag (maintenance only).
    pub fn clear_all_paired(&self) {
        for cell in self.cells.iter() {
            cell.seen.fetch_and(!PAIRED, Relaxed);
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
    pub fn root(&self, mut x: u32) -> u32 {
        loop {
            let p = self.cells[x as usize].parent.load(Relaxed);
            if p == x {
                return x;
            }
            let gp = self.cells[p as usize].parent.load(Relaxed);
            if gp != p {
                let _ = self.cells[x as usize]
                    .parent
                    .compare_exchange(p, gp, Relaxed, Relaxed);
            }
            x = gp;
        }
    }

    /// Joins the clusters of `a` and `b`; the root is the older account, so
    /// a cluster's identity stays that of its first member. Joining is rare
    /// (most calls find one root and return at once) and takes a mutex, so
    /// roots change one at a time and every size stays exact.
    pub fn union(&self, a: u32, b: u32) -> bool {
        if self.root(a) == self.root(b) {
            return false;
        }
        let _one = self.joining.lock();
        let (ra, rb) = (self.root(a), self.root(b));
        if ra == rb {
            return false;
        }
        let (child, root) = if self.order(ra) < self.order(rb) {
            (rb, ra)
        } else {
            (ra, rb)
        };
        let c = &self.cells[child as usize];
        c.parent.store(root, Relaxed);
        let n = c.size.load(Relaxed);
        self.cells[root as usize].size.fetch_add(n, Relaxed);
        true
    }

    /// Empties cell `a` (maintenance only).
    pub fn clear(&self, a: usize) {
        let c = &self.cells[a];
        if c.tag.swap(0, Relaxed) != 0 {
            self.len.fetch_sub(1, Relaxed);
        }
        c.seen.store(0, Relaxed);
        c.parent.store(a as u32, Relaxed);
        c.size.store(1, Relaxed);
        c.memo.store(0, Relaxed);
    }

    /// Forgets the accounts last seen before `cut` seconds, and those less
    /// useful to keep than `floor` (see [`Accounts::usefulness`]); how many
    /// went.
    pub fn expire_below(&self, cut: u64, floor: u64, mut forget: impl FnMut(u32)) -> usize {
        let mut forgotten = 0;
        for (i, cell) in self.cells.iter().enumerate() {
            let t = cell.tag.load(Relaxed);
            let seen = cell.seen.load(Relaxed);
            if t != 0 && (seen & SECONDS < cut || usefulness(seen) < floor) {
                self.clear(i);
                forget(i as u32);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// How useful each tracked account is to keep (see [`usefulness`]).
    pub fn usefulness(&self) -> impl Iterator<Item = u64> + '_ {
        self.cells
            .iter()
            .filter(|x| x.tag.load(Relaxed) != 0)
            .map(|x| usefulness(x.seen.load(Relaxed)))
    }

    /// When each tracked account was last seen (seconds).
    pub fn last_seen(&self) -> impl Iterator<Item = u64> + '_ {
        self.cells
            .iter()
            .filter(|x| x.tag.load(Relaxed) != 0)
            .map(|x| x.seen.load(Relaxed) & SECONDS)
    }

    /// The tracked accounts' cells, in table order.
    pub fn live(&self) -> impl Iterator<Item = (u32, AccountState)> + '_ {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.tag.load(Relaxed) != 0)
            .map(|(i, c)| {
                let state = AccountState {
                    tag: c.tag.load(Relaxed),
                    seen: c.seen.load(Relaxed),
                    parent: c.parent.load(Relaxed),
                    size: c.size.load(Relaxed),
                };
                (i as u32, state)
            })
    }

    /// Every account its own cluster (maintenance only).
    pub fn reset_clusters(&self) {
        for (i, c) in self.cells.iter().enumerate() {
            c.parent.store(i as u32, Relaxed);
            c.size.store(1, Relaxed);
        }
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
        if c.tag.swap(s.tag, Relaxed) == 0 {
            self.len.fetch_add(1, Relaxed);
        }
        c.seen.store(s.seen, Relaxed);
        c.parent.store(s.parent, Relaxed);
        c.size.store(s.size, Relaxed);
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
        t.clear_all_paired();
        t.clear_named(a);
        assert!(!t.is_paired(a) && t.name_once(a));
        let (_, s) = t.live().next().unwrap();
        assert_eq!(s.with_seconds(7).seconds(), 7);
        assert_eq!(s.with_seconds(7).seen >> 29, s.seen >> 29);
        assert_ne!(s.seen & SUSPECT, 0);
    }
}
