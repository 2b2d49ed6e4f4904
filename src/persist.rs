//! Files that survive crashes: [`write_atomic`] leaves at `path` either
//! the file that was there or the whole new one, never a part, whatever
//! kills the process and when. Every way in (Rust, C, Python and the
//! `ringfence` command) saves snapshots through it.
//!
//! The steps: the bytes go to a new temporary file beside `path` (same
//! directory, so the rename cannot cross file systems); that file is
//! flushed to the disk (`fsync`); it is renamed over `path` (atomic on
//! POSIX file systems); then the directory is flushed, so that the rename
//! itself survives a power cut. A failure at any step removes the
//! temporary file and leaves `path` as it was. A process killed between
//! the first step and the rename leaves a temporary file
//! (`.<name>.tmp.<pid>.<n>`) behind, never a damaged `path`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that a crash at any moment leaves either
/// the previous file or the new one, whole (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    ));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Flushes a directory's entries (the rename) to the disk.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Windows has no directory handle to flush; the rename is durable
    // once the file system commits it.
    let _ = File::open;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rf-persist-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_file_is_left() {
        let d = scratch("replace");
        let p = d.join("snap.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second, longer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second, longer");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["snap.bin"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_says_why() {
        let d = scratch("fail");
        let p = d.join("snap.bin");
        write_atomic(&p, b"old").unwrap();
        // A directory in the way of the rename.
        let blocked = d.join("dir");
        fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert!(write_atomic(&d.join("missing/snap.bin"), b"new").is_err());
        assert!(write_atomic(Path::new("/"), b"new").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        fs::remove_dir_all(&d).unwrap();
    }
}
