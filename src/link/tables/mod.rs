//! The linker's fixed-size tables: accounts (with the concurrent union-find
//! of clusters), fingerprint values, and linked pairs.
//!
//! Each is an open-addressed array of small atomic cells, allocated once.
//! A key's cells are the `PROBE` cells from the one its hash chooses. On the
//! hot path cells only go from empty to taken, so two threads inserting one
//! key race for the same first empty cell and the loser finds the winner's
//! key: no lock, no duplicate. Cells are emptied only by maintenance, a
//! bounded slice at a time, each under the linker's exclusive lock (values
//! and pairs move later keys of a run back into the hole, so lookups may
//! stop at the first empty cell; accounts leave a tombstone until nothing
//! names the cell); value and pair cells, which are cheap to lose, may also
//! be *replaced* on the hot path when all of a key's cells are taken (the
//! one seen longest ago goes).
//!
//! The cells are private to this module: every bit layout (an account's
//! seen word and flags, its memo, a value's anchors and stat word, a pair's
//! key and evidence word) is read and written through the methods and the
//! small word types here.

mod accounts;
#[cfg(all(test, loom))]
mod loom_tests;
mod pairs;
mod values;

pub(crate) use accounts::{memo_word, seconds, AccountState, Accounts};
pub(crate) use pairs::{PairKey, PairState, Pairs, Weights, UNITS};
pub(crate) use values::{
    tag_kind, value_tag, Anchors, Stat, ValueHll, ValueState, Values, SATURATED,
};

use crate::sketch::reduce;

/// Cells a key may occupy.
pub(crate) const PROBE: usize = 32;

/// Cells for a table meant to hold `max` keys: 25 % headroom, and at least
/// one probe window.
pub(crate) fn cells_for(max: usize) -> usize {
    max.saturating_add(max / 4).max(PROBE)
}

/// The first cell of `hash` among `n` (a multiply-shift, so `n` need not be
/// a power of two).
#[inline]
pub(crate) fn home(hash: u64, n: usize) -> usize {
    reduce(hash, n)
}

/// The cells `hash` may occupy among `n`, from its home cell on (wrapping).
#[inline]
fn window(hash: u64, n: usize) -> impl Iterator<Item = usize> {
    let start = home(hash, n);
    (0..PROBE.min(n)).map(move |i| {
        let j = start + i;
        if j >= n {
            j - n
        } else {
            j
        }
    })
}

/// Empties cell `hole` of a table whose lookups stop at the first empty
/// cell of a key's window, and moves the later keys of its run back into
/// the hole where their window allows, so that no key sits behind a hole
/// (maintenance only, under the exclusive lock: no lookup runs meanwhile).
/// `hash_at(i)`: the hash of the key in cell `i` (`None` if empty);
/// `relocate(from, to)` copies a cell's content into an empty one; `clear`
/// empties one.
pub(crate) fn remove_shifting(
    n: usize,
    mut hole: usize,
    hash_at: impl Fn(usize) -> Option<u64>,
    mut relocate: impl FnMut(usize, usize),
    mut clear: impl FnMut(usize),
) {
    let dist = |from: usize, to: usize| if to >= from { to - from } else { to + n - from };
    clear(hole);
    let mut k = hole;
    // A key lies within `PROBE` cells of its home, so none further than
    // that past the hole can move into it: the scan ends there, or at the
    // run's end, even in a table with no empty cell.
    for _ in 1..n {
        k = if k + 1 == n { 0 } else { k + 1 };
        if dist(hole, k) >= PROBE {
            return;
        }
        let Some(h) = hash_at(k) else {
            return;
        };
        let start = home(h, n);
        // The key at `k` may move back if the hole lies in its window
        // before it.
        if dist(start, hole) < dist(start, k) {
            relocate(k, hole);
            clear(k);
            hole = k;
        }
    }
}

/// `n` cells made by `make`, allocated fallibly: a table too large for the
/// machine is an error naming it, not an abort.
fn alloc_cells<T>(n: usize, what: &str, make: impl Fn(usize) -> T) -> Result<Box<[T]>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        format!(
            "cannot allocate the {what} table ({n} cells, {} MiB): lower its `link.max_*` setting",
            (n * std::mem::size_of::<T>()) >> 20
        )
    })?;
    v.extend((0..n).map(make));
    Ok(v.into_boxed_slice())
}
