//! The crowds' part of a guard snapshot: every account's behaviour and
//! every crowd, in table order, and how a decoded one is installed or
//! merged.
//!
//! ```text
//! u64  behaviour cells (the linker's account cells)
//! u64  accounts with behaviour
//! per account, in cell order:
//!   u32 cell, u64 account hash, u32 first seen, u32 last updated,
//!   5 × f32 counts (requests, eliciting, served, mean output, input),
//!   u64 crowd, u64 crowd verdict
//! u64  crowd table size (cells)
//! u64  crowds
//! per crowd, in cell order:
//!   u32 cell, u64 tag, u32 window, f32 last active,
//!   6 × u64 account and prompt sketches, 2 × f32 prompted requests,
//!   10 × f32 decayed sums
//! ```

use super::profile::ProfileState;
use super::table::CrowdStats;
use super::Crowds;
use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};
use crate::slots::{decode_taken, TakenCells};

/// Decoded crowd state, checked and ready to install.
pub(crate) struct CrowdSnapshot {
    profile_cells: usize,
    profiles: Vec<(u32, ProfileState)>,
    crowds: TakenCells<CrowdStats>,
}

/// Reads a cell index: in range and after the last one read.
fn cell_index(
    r: &mut Reader<'_>,
    what: &str,
    n: usize,
    last: &mut Option<u32>,
) -> Result<u32, Error> {
    let i = r.u32(what)?;
    if i as usize >= n || last.is_some_and(|l| l >= i) {
        return Err(r.err(format!("{what} {i} is out of order or beyond {n}")));
    }
    *last = Some(i);
    Ok(i)
}

/// A time in seconds shifted by `shift`, kept within the cells' range.
fn shifted(t: u32, shift: f64) -> u32 {
    (f64::from(t) + shift).clamp(0.0, f64::from(u32::MAX)) as u32
}

impl Crowds {
    /// Writes the behaviour of every account still tracked (`live(cell,
    /// hash)`) and every crowd, in table order.
    pub(crate) fn encode(&self, w: &mut Writer, mut live: impl FnMut(u32, u64) -> bool) {
        w.u64(self.profiles.len() as u64);
        let profiles: Vec<(u32, ProfileState)> = self
            .profiles
            .states()
            .filter(|(i, s)| live(*i, s.tag))
            .collect();
        w.u64(profiles.len() as u64);
        for (i, s) in profiles {
            w.u32(i);
            w.u64(s.tag);
            w.u32(s.first);
            w.u32(s.last);
            for c in s.counts {
                w.u32(c.to_bits());
            }
            w.u64(s.crowd);
            w.u64(s.verdict);
        }
        self.table.slots.encode(w, |st, w| st.encode(w));
    }

    /// Reads what `encode` wrote, shifting every time by `shift` seconds.
    pub(crate) fn decode(&self, r: &mut Reader<'_>, shift: f64) -> Result<CrowdSnapshot, Error> {
        let profile_cells = r.u64("behaviour cells")?;
        if profile_cells > 1 << 30 {
            return Err(r.err(format!("{profile_cells} behaviour cells is out of range")));
        }
        let profile_cells = profile_cells as usize;
        let n = r.u64("accounts with behaviour")?;
        let n = r.expect_items(n, 56, "accounts with behaviour")?;
        let mut profiles = Vec::with_capacity(n);
        let mut last = None;
        for _ in 0..n {
            let i = cell_index(r, "behaviour cell", profile_cells, &mut last)?;
            let tag = r.u64("account hash")?;
            let first = shifted(r.u32("first seen")?, shift);
            let seen = shifted(r.u32("last updated")?, shift);
            let mut counts = [0f32; 5];
            for c in &mut counts {
                *c = f32::from_bits(r.u32("a behaviour count")?);
                if !(c.is_finite() && *c >= 0.0) {
                    return Err(r.err(format!("behaviour cell {i}: count {c} is not a count")));
                }
            }
            if tag == 0 {
                return Err(r.err(format!("behaviour cell {i} has no account")));
            }
            let crowd = r.u64("crowd")?;
            let verdict = r.u64("crowd verdict")?;
            profiles.push((
                i,
                ProfileState {
                    tag,
                    first,
                    last: seen,
                    counts,
                    crowd,
                    verdict,
                },
            ));
        }
        let crowds = decode_taken(r, "crowd", 100, |r, _, _| {
            Ok(CrowdStats::decode(r)?.shifted(shift, &self.config))
        })?;
        Ok(CrowdSnapshot {
            profile_cells,
            profiles,
            crowds,
        })
    }

    /// Whether a decoded snapshot can be installed as it is.
    pub(crate) fn check_installable(&self, s: &CrowdSnapshot) -> Result<(), String> {
        if s.profile_cells != self.profiles.len() {
            return Err(format!(
                "it has {} account behaviour cells, this guard {}: restore into a guard with the same `link.max_accounts`, or merge it",
                s.profile_cells,
                self.profiles.len()
            ));
        }
        self.table
            .slots
            .check_installable(&s.crowds, "crowd", "crowd.max_crowds")
    }

    /// Replaces the state with a decoded one (checked with `check_installable`).
    pub(crate) fn install(&self, s: CrowdSnapshot) {
        self.profiles.forget(|_, _| false);
        for (i, p) in &s.profiles {
            self.profiles.install(*i, p);
        }
        self.table.slots.install(s.crowds.cells);
    }

    /// Folds another node's state in, after the linker merged its accounts:
    /// `cell_of` finds an account's cell here. Each node saw its own
    /// requests, so an account known on both adds up its counts (decayed to
    /// the later time); crowds add up too.
    pub(crate) fn merge(&self, other: CrowdSnapshot, cell_of: impl Fn(u64) -> Option<u32>) {
        for (_, p) in &other.profiles {
            if let Some(cell) = cell_of(p.tag) {
                self.profiles.merge(cell, p, &self.config);
            }
        }
        for (_, tag, o) in other.crowds.cells {
            self.table.merge(tag, &o, &self.config);
        }
    }
}
