//! Snapshots of a guard: save, restore, and merge another node's.

use super::Guard;
use crate::codec::{Kind, Reader, Writer};
use std::fmt;

/// A snapshot that could not be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    /// What was wrong, and where.
    pub message: String,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot restore the guard snapshot: {}", self.message)
    }
}

impl std::error::Error for SnapshotError {}

/// 3: the crowds' part (accounts' behaviour and crowds) follows the scorer's.
const SNAPSHOT_VERSION: u8 = 4;

fn snapshot_error(e: impl fmt::Display) -> SnapshotError {
    SnapshotError {
        message: e.to_string(),
    }
}

/// A snapshot file that could not be restored: the file could not be read,
/// or its bytes are not a snapshot this guard takes. Either way the guard
/// is left as it was.
#[derive(Debug)]
pub enum RestoreFileError {
    /// Reading the file failed.
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file's bytes are not a snapshot this guard takes.
    Snapshot {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: SnapshotError,
    },
}

impl fmt::Display for RestoreFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreFileError::Io { path, error } => {
                write!(f, "cannot read the snapshot {}: {error}", path.display())
            }
            RestoreFileError::Snapshot { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for RestoreFileError {}

impl Guard {
    /// Writes [`Guard::snapshot`] to `path` through
    /// [`crate::persist::write_atomic`]: a crash at any moment leaves the
    /// previous file or the new one, whole.
    pub fn snapshot_to_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        crate::persist::write_atomic(path, &self.snapshot())
    }

    /// [`Guard::restore`] from the file at `path`, read whole first: a
    /// file that cannot be read, or whose bytes are not a snapshot this
    /// guard takes, is an error and leaves the guard as it was.
    pub fn restore_from_file(&self, path: &std::path::Path) -> Result<(), RestoreFileError> {
        let bytes = std::fs::read(path).map_err(|error| RestoreFileError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        self.restore(&bytes)
            .map_err(|error| RestoreFileError::Snapshot {
                path: path.to_path_buf(),
                error,
            })
    }

    /// Everything the guard remembers, as bytes: linked accounts, fingerprint
    /// values and evidence, cluster statistics, accounts' behaviour and
    /// crowds, and the limiter's debts.
    /// Versioned and checksummed (kind 7 of the sketches' frame); deterministic,
    /// so restoring and snapshotting again gives the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.flush();
        let now = self.now();
        let mut w = Writer::new(Kind::Guard, SNAPSHOT_VERSION, 1 << 16);
        w.f64(now);
        self.ev.linker.encode(&mut w);
        self.ev.scorer.encode(&mut w);
        self.ev.crowds.encode(&mut w, |cell, account| {
            self.ev.linker.account_cell(account) == Some(cell)
        });
        w.blob(&self.limiter.snapshot());
        w.finish()
    }

    /// When a [`Guard::snapshot`] was taken, in seconds on its guard's
    /// clock: a tool that restores it only to look at it (`ringfence
    /// explain`) sets its clock there first, so that no time moves.
    pub fn snapshot_time(bytes: &[u8]) -> Result<f64, SnapshotError> {
        let mut r = Reader::open(bytes, Kind::Guard, SNAPSHOT_VERSION).map_err(snapshot_error)?;
        r.f64("snapshot time").map_err(snapshot_error)
    }

    /// Restores a [`Guard::snapshot`] into this guard, which must be fresh
    /// (no request checked yet) and built with the same seeds and limiter
    /// capacity. The whole snapshot is decoded and checked first: a
    /// truncated, corrupt or mismatched snapshot is an error that leaves the
    /// guard untouched. Times move with the clock: a snapshot taken at `t`
    /// and restored at `t + d` has every time shifted by `d`.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.flush();
        let (link, score, crowds, limits) = self.decode_snapshot(bytes)?;
        self.ev
            .linker
            .check_installable(&link)
            .map_err(snapshot_error)?;
        self.ev
            .scorer
            .check_installable(&score)
            .map_err(snapshot_error)?;
        self.ev
            .crowds
            .check_installable(&crowds)
            .map_err(snapshot_error)?;
        self.limiter.restore(limits).map_err(snapshot_error)?;
        self.ev.linker.install(link);
        self.ev.scorer.install(score);
        self.ev.crowds.install(crowds);
        Ok(())
    }

    /// Folds another node's [`Guard::snapshot`] into this guard, for
    /// gateways that run several nodes: accounts and fingerprint values
    /// merge (their sketches too), evidence and links union, cluster
    /// statistics add up, and every key owes the sum of its debts. The whole
    /// snapshot is checked first; a bad one changes nothing.
    pub fn merge(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.flush();
        let (link, score, crowds, limits) = self.decode_snapshot(bytes)?;
        self.limiter.merge(limits).map_err(snapshot_error)?;
        self.ev.linker.merge(link);
        self.ev.scorer.merge(score);
        self.ev
            .crowds
            .merge(crowds, |account| self.ev.linker.account_cell(account));
        Ok(())
    }

    /// Decodes and checks a whole snapshot, times shifted to this guard's
    /// clock; the limiter's part is returned as bytes for it to check.
    fn decode_snapshot<'a>(
        &self,
        bytes: &'a [u8],
    ) -> Result<
        (
            crate::link::LinkSnapshot,
            crate::score::ScoreSnapshot,
            crate::crowd::CrowdSnapshot,
            &'a [u8],
        ),
        SnapshotError,
    > {
        let mut r = Reader::open(bytes, Kind::Guard, SNAPSHOT_VERSION).map_err(snapshot_error)?;
        let taken = r.f64("snapshot time").map_err(snapshot_error)?;
        let shift = self.clock.now() as f64 / 1e9 - taken;
        let link = self
            .ev
            .linker
            .decode(&mut r, shift)
            .map_err(snapshot_error)?;
        let score = self
            .ev
            .scorer
            .decode(&mut r, shift)
            .map_err(snapshot_error)?;
        let crowds = self
            .ev
            .crowds
            .decode(&mut r, shift)
            .map_err(snapshot_error)?;
        let limits = r.blob("limiter").map_err(snapshot_error)?;
        r.finish().map_err(snapshot_error)?;
        Ok((link, score, crowds, limits))
    }
}
