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
/// 5: the intelligence part follows the limiter's (4, without it, is still read).
const SNAPSHOT_VERSION: u8 = 5;
const OLDEST_READ: u8 = 4;

/// What a snapshot holds, decoded and checked, times on this guard's clock.
type Decoded<'a> = (
    crate::link::LinkSnapshot,
    crate::score::ScoreSnapshot,
    crate::crowd::CrowdSnapshot,
    &'a [u8],
    Option<crate::intel::snapshot::IntelSnapshot>,
    // The unix time it was taken, if known.
    Option<f64>,
);

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
    /// crowds, the limiter's debts and, with a consortium key, the shared
    /// values remembered for export and the imported indicators (see
    /// [`crate::intel`]; a guard without a key restores the rest and
    /// leaves that part out).
    /// Versioned and checksummed (kind 7 of the sketches' frame); deterministic,
    /// so restoring and snapshotting again gives the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.flush();
        let now = self.now();
        let mut w = Writer::new(Kind::Guard, SNAPSHOT_VERSION, 1 << 16);
        w.f64(now);
        // (5) The unix time of the snapshot, if the guard knows it.
        match self.unix_origin() {
            Some(origin) => {
                w.u8(1);
                w.f64(origin + now);
            }
            None => w.u8(0),
        }
        self.ev.linker.encode(&mut w);
        self.ev.scorer.encode(&mut w);
        self.ev.crowds.encode(&mut w, |cell, account| {
            self.ev.linker.account_cell(account) == Some(cell)
        });
        w.blob(&self.limiter.snapshot());
        match &self.intel {
            Some(intel) => {
                w.u8(1);
                let linker = &self.ev.linker;
                intel.encode(&mut w, &|k| linker.kind_name_of(k).to_string());
            }
            None => w.u8(0),
        }
        w.finish()
    }

    /// When a [`Guard::snapshot`] was taken, in seconds on its guard's
    /// clock: a tool that restores it only to look at it (`ringfence
    /// explain`) sets its clock there first, so that no time moves.
    pub fn snapshot_time(bytes: &[u8]) -> Result<f64, SnapshotError> {
        let (mut r, _) = Reader::open_versions(bytes, Kind::Guard, OLDEST_READ..=SNAPSHOT_VERSION)
            .map_err(snapshot_error)?;
        r.f64("snapshot time").map_err(snapshot_error)
    }

    /// When a [`Guard::snapshot`] was taken, in unix seconds, if the guard
    /// that took it knew ([`Guard::unix_origin`]; snapshots of format 4 do not say).
    pub fn snapshot_unix_time(bytes: &[u8]) -> Result<Option<f64>, SnapshotError> {
        let (mut r, version) =
            Reader::open_versions(bytes, Kind::Guard, OLDEST_READ..=SNAPSHOT_VERSION)
                .map_err(snapshot_error)?;
        r.f64("snapshot time").map_err(snapshot_error)?;
        read_unix_time(&mut r, version).map_err(snapshot_error)
    }

    /// Restores a [`Guard::snapshot`] into this guard, which must be fresh
    /// (no request checked yet) and built with the same seeds and limiter
    /// capacity. The whole snapshot is decoded and checked first: a
    /// truncated, corrupt or mismatched snapshot is an error that leaves the
    /// guard untouched. Times move with the clock: a snapshot taken at `t`
    /// and restored at `t + d` has every time shifted by `d`.
    pub fn restore(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.flush();
        let (link, score, crowds, limits, intel, unix_time) = self.decode_snapshot(bytes)?;
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
        self.check_intel(intel.as_ref())?;
        self.limiter.restore(limits).map_err(snapshot_error)?;
        self.ev.linker.install(link);
        self.ev.scorer.install(score);
        self.ev.crowds.install(crowds);
        self.fold_intel(intel);
        // A guard that does not know when its clock started takes the
        // snapshot's time as its present.
        if let (None, Some(t)) = (self.unix_origin(), unix_time) {
            self.set_unix_origin(t - self.now());
        }
        Ok(())
    }

    /// Folds another node's [`Guard::snapshot`] into this guard, for
    /// gateways that run several nodes: accounts and fingerprint values
    /// merge (their sketches too), evidence and links union, cluster
    /// statistics add up, and every key owes the sum of its debts. The whole
    /// snapshot is checked first; a bad one changes nothing.
    pub fn merge(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.flush();
        let (link, score, crowds, limits, intel, _) = self.decode_snapshot(bytes)?;
        self.check_intel(intel.as_ref())?;
        self.limiter.merge(limits).map_err(snapshot_error)?;
        self.ev.linker.merge(link);
        let linker = &self.ev.linker;
        self.ev.scorer.merge(score, |cluster| {
            linker
                .standing_of(cluster, |_| 0)
                .map_or(cluster, |(_, view)| view.id)
        });
        self.ev
            .crowds
            .merge(crowds, |account| self.ev.linker.account_cell(account));
        self.fold_intel(intel);
        Ok(())
    }

    /// Fails unless this guard can take a snapshot's intelligence (same
    /// consortium key, imports that fit); a guard without a key takes none.
    fn check_intel(
        &self,
        intel: Option<&crate::intel::snapshot::IntelSnapshot>,
    ) -> Result<(), SnapshotError> {
        let Some(snap) = intel else { return Ok(()) };
        let linker = &self.ev.linker;
        snap.check(
            self.intel.as_deref(),
            &|name| linker.kind_index(name),
            self.config.link.horizon_secs,
            self.now(),
        )
        .map_err(snapshot_error)
    }

    fn fold_intel(&self, intel: Option<crate::intel::snapshot::IntelSnapshot>) {
        if let (Some(snap), Some(i)) = (intel, &self.intel) {
            let linker = &self.ev.linker;
            i.fold_in(
                snap,
                &|name| linker.kind_index(name),
                self.config.link.horizon_secs,
                self.now(),
            );
        }
    }

    /// Decodes and checks a whole snapshot, times shifted to this guard's
    /// clock; the limiter's part is returned as bytes for it to check.
    fn decode_snapshot<'a>(&self, bytes: &'a [u8]) -> Result<Decoded<'a>, SnapshotError> {
        let (mut r, version) =
            Reader::open_versions(bytes, Kind::Guard, OLDEST_READ..=SNAPSHOT_VERSION)
                .map_err(snapshot_error)?;
        let taken = r.f64("snapshot time").map_err(snapshot_error)?;
        let unix_time = read_unix_time(&mut r, version).map_err(snapshot_error)?;
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
        let has_intel = version >= 5 && r.u8("intel part").map_err(snapshot_error)? != 0;
        let intel = if has_intel {
            let linker = &self.ev.linker;
            let kind_of = |name: &str| linker.kind_index(name);
            Some(crate::intel::snapshot::decode(&mut r, shift, &kind_of).map_err(snapshot_error)?)
        } else {
            None
        };
        r.finish().map_err(snapshot_error)?;
        Ok((link, score, crowds, limits, intel, unix_time))
    }
}

fn read_unix_time(
    r: &mut Reader<'_>,
    version: u8,
) -> Result<Option<f64>, crate::codec::DecodeError> {
    if version < 5 {
        return Ok(None);
    }
    match r.u8("unix time flag")? {
        0 => Ok(None),
        1 => r.f64("unix time").map(Some),
        b => Err(r.err(format!("unix time flag {b} is neither 0 nor 1"))),
    }
}
