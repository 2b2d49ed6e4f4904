//! The limiter's snapshots: restore and merge across processes.

use super::*;

const SNAPSHOT_VERSION: u8 = 1;

impl RateLimiter {
    /// The limiter's state as bytes: every key that still owes something,
    /// with its debt relative to now, and the per-key quotas. Versioned and
    /// checksummed (the sketches' frame, kind 6). Restore it with
    /// [`RateLimiter::restore`] into a limiter built with the same capacity
    /// and seed, in this process or another.
    ///
    /// ```
    /// use ringfence::limit::{ManualClock, Quota, RateLimiter};
    /// use std::sync::Arc;
    ///
    /// let build = || RateLimiter::builder(Quota::per_second(10)).clock(Arc::new(ManualClock::new())).build();
    /// let a = build();
    /// a.check("acct-1", 7);
    /// let bytes = a.snapshot();
    /// let b = build();
    /// b.restore(&bytes).unwrap();
    /// assert_eq!(b.check("acct-1", 0).remaining(), 3);
    /// assert_eq!(b.snapshot(), bytes);
    /// assert!(b.restore(&bytes[..bytes.len() - 1]).is_err());
    /// ```
    pub fn snapshot(&self) -> Vec<u8> {
        use crate::codec::{Kind, Writer};
        let now = self.now();
        let cells = self.table.export(now);
        let overrides: Vec<(KeyId, Quota)> = {
            let o = self.overrides.read();
            let mut v: Vec<(KeyId, Quota)> = o.iter().map(|(k, q)| (*k, *q)).collect();
            v.sort_unstable_by_key(|(k, _)| (k.0.hi, k.0.lo));
            v
        };
        let mut w = Writer::new(
            Kind::RateLimiter,
            SNAPSHOT_VERSION,
            32 + cells.len() * 20 + overrides.len() * 32,
        );
        w.u64(self.table.capacity() as u64);
        w.u64(self.seed);
        w.u32(self.table.shard_count() as u32);
        w.u64(overrides.len() as u64);
        for (k, q) in overrides {
            w.u64(k.0.hi);
            w.u64(k.0.lo);
            w.u64(q.interval_ns());
            w.u64(q.burst());
        }
        w.u64(cells.len() as u64);
        for (shard, tag, tat) in cells {
            w.u32(shard);
            w.u64(tag);
            w.u64(tat - now);
        }
        w.finish()
    }

    /// Restores a [`RateLimiter::snapshot`] into this limiter, which must be
    /// empty and built with the same capacity and seed. The whole snapshot is
    /// checked before anything is applied: a truncated, corrupt or
    /// mismatched one is an error and leaves the limiter as it was.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), LimitError> {
        let (overrides, cells) = self.parse_snapshot(bytes)?;
        if !self.is_empty() || self.override_count.load(Relaxed) != 0 {
            return Err(LimitError::Snapshot("restore into an empty limiter".into()));
        }
        // Everything checked: apply.
        let now = self.now();
        for (shard, tag, ahead) in cells {
            self.table
                .import(shard, tag, now.saturating_add(ahead))
                .map_err(LimitError::Snapshot)?;
        }
        let mut o = self.overrides.write();
        o.extend(overrides);
        self.override_count.store(o.len(), Relaxed);
        Ok(())
    }

    /// Folds another node's [`RateLimiter::snapshot`] into this limiter (same
    /// capacity and seed): a key known to both owes the sum of its debts,
    /// since each node admitted part of its traffic; per-key quotas are
    /// added where this limiter has none. Checked in full before anything
    /// changes. A shard that overflows evicts as usual.
    pub fn merge(&self, bytes: &[u8]) -> Result<(), LimitError> {
        let (overrides, cells) = self.parse_snapshot(bytes)?;
        let now = self.now();
        for (shard, tag, ahead) in cells {
            self.table.merge_debt(shard, tag, now, ahead);
        }
        let mut o = self.overrides.write();
        for (k, q) in overrides {
            o.entry(k).or_insert(q);
        }
        self.override_count.store(o.len(), Relaxed);
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn parse_snapshot(
        &self,
        bytes: &[u8],
    ) -> Result<(Vec<(KeyId, Quota)>, Vec<(u32, u64, u64)>), LimitError> {
        use crate::codec::{Kind, Reader};
        let bad = |e: crate::codec::DecodeError| LimitError::Snapshot(e.to_string());
        let mut r = Reader::open(bytes, Kind::RateLimiter, SNAPSHOT_VERSION).map_err(bad)?;
        let capacity = r.u64("capacity").map_err(bad)?;
        let seed = r.u64("seed").map_err(bad)?;
        let shards = r.u32("shards").map_err(bad)?;
        if capacity != self.table.capacity() as u64 || shards as usize != self.table.shard_count() {
            return Err(LimitError::Snapshot(format!(
                "it was taken with capacity {capacity}, this limiter has {}",
                self.table.capacity()
            )));
        }
        if seed != self.seed {
            return Err(LimitError::Snapshot(
                "it was taken with another seed".into(),
            ));
        }
        let n = r.u64("override count").map_err(bad)?;
        let n = r.expect_items(n, 32, "overrides").map_err(bad)?;
        let mut overrides = Vec::with_capacity(n);
        for _ in 0..n {
            let hi = r.u64("override key").map_err(bad)?;
            let lo = r.u64("override key").map_err(bad)?;
            let interval = r.u64("override interval").map_err(bad)?;
            let burst = r.u64("override burst").map_err(bad)?;
            let q = if interval == u64::MAX {
                Quota::per_second(0)
            } else {
                Quota::with_interval(std::time::Duration::from_nanos(interval)).allow_burst(burst)
            };
            overrides.push((KeyId(Fp { hi, lo }), q));
        }
        let n = r.u64("cell count").map_err(bad)?;
        let n = r.expect_items(n, 20, "cells").map_err(bad)?;
        if n > self.table.capacity() {
            return Err(LimitError::Snapshot(format!(
                "{n} keys exceed the capacity"
            )));
        }
        let mut cells = Vec::with_capacity(n);
        for _ in 0..n {
            let shard = r.u32("shard").map_err(bad)?;
            let tag = r.u64("tag").map_err(bad)?;
            let ahead = r.u64("debt").map_err(bad)?;
            if shard >= shards {
                return Err(LimitError::Snapshot(format!(
                    "shard {shard} is beyond {shards}"
                )));
            }
            if ahead > gcra::MAX_TAT {
                return Err(LimitError::Snapshot(format!(
                    "a debt of {ahead} ns is out of range"
                )));
            }
            if cells
                .last()
                .is_some_and(|&(s, t, _)| (s, t) >= (shard, tag))
            {
                return Err(LimitError::Snapshot(
                    "keys are not in order (or repeat)".into(),
                ));
            }
            cells.push((shard, tag, ahead));
        }
        r.finish().map_err(bad)?;
        let mut per_shard = vec![0usize; shards as usize];
        for &(shard, _, _) in &cells {
            per_shard[shard as usize] += 1;
        }
        if let Some(i) = (0..per_shard.len()).find(|&i| per_shard[i] > self.table.shard_keys(i)) {
            return Err(LimitError::Snapshot(format!(
                "shard {i} holds more keys than its capacity"
            )));
        }
        Ok((overrides, cells))
    }
}
