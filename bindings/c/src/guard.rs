//! The guard handle: creating and freeing it, snapshots, merges and
//! explanations.

use crate::buffer::{rf_bytes, rf_string};
use crate::error::{rf_status, Error, Result};
use crate::ffi;
use ringfence::guard::{Guard, GuardConfig, MAX_ACCOUNTS};
use std::ffi::c_char;

/// A guard: everything ringfence remembers, and the limits it applies.
///
/// Opaque; made by `rf_guard_new`, `rf_guard_new_for_accounts`,
/// `rf_guard_from_toml` or `rf_guard_from_file`, freed by `rf_guard_free`.
///
/// Thread safety: a guard may be used from many threads at once, with no
/// locking by the caller: `rf_check`, `rf_settle`, `rf_guard_explain`,
/// `rf_guard_explain_string`, `rf_guard_snapshot`, `rf_guard_snapshot_file`,
/// `rf_guard_merge`, `rf_guard_maintain`, `rf_guard_export_indicators`,
/// `rf_guard_import_indicators` and `rf_guard_sightings` may all run
/// concurrently on one guard. `rf_guard_restore` and
/// `rf_guard_restore_file` are meant for a fresh guard, before its first
/// `rf_check`. Only `rf_guard_free` must not overlap any other call on the
/// same guard.
pub struct rf_guard {
    pub(crate) inner: crate::fleet::Inner,
}

impl rf_guard {
    /// The Rust guard behind the handle (for Rust code that holds a handle,
    /// such as the overhead benchmark, which compares the two on one guard).
    pub fn guard(&self) -> &Guard {
        self.inner.guard()
    }
}

/// Builds a guard from `config` and hands it to C through `out`.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
unsafe fn create(
    out: *mut *mut rf_guard,
    config: impl FnOnce() -> Result<GuardConfig>,
) -> Result<()> {
    // SAFETY: per this function's contract.
    unsafe { ffi::write(out, std::ptr::null_mut()) }.map_err(|e| e.named("out"))?;
    let inner = crate::fleet::Inner::new(config()?)?;
    // SAFETY: per this function's contract (checked writable above).
    unsafe { ffi::write(out, ffi::into_handle(rf_guard { inner })) }.map_err(|e| e.named("out"))
}

fn config_error(e: ringfence::guard::ConfigError) -> Error {
    Error::new(rf_status::RF_ERR_CONFIG, e.to_string())
}

fn snapshot_error(e: ringfence::guard::SnapshotError) -> Error {
    Error::new(rf_status::RF_ERR_SNAPSHOT, e.to_string())
}

fn io_error(what: &str, path: &str, e: std::io::Error) -> Error {
    Error::new(rf_status::RF_ERR_IO, format!("cannot {what} {path:?}: {e}"))
}

/// A guard with the default configuration, sized for 250,000 tracked
/// accounts (about 60 MB, allocated now).
///
/// On success `*out` is the new guard, owned by the caller, who frees it
/// with `rf_guard_free`. On failure `*out` is set to NULL.
///
/// # Safety
/// `out` is NULL (an error) or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_new(out: *mut *mut rf_guard) -> rf_status {
    ffi::boundary("rf_guard_new", || {
        // SAFETY: per this function's contract (above).
        unsafe { create(out, || Ok(GuardConfig::default())) }
    })
}

/// A guard with the default configuration, every table sized for
/// `accounts` tracked accounts (about 250 bytes each, allocated now;
/// `GuardConfig::for_accounts` in Rust). `accounts` is 1 to 67,108,864
/// (2^26, ringfence's `MAX_ACCOUNTS`); any other count is `RF_ERR_INVALID`.
///
/// On success `*out` is the new guard, owned by the caller, who frees it
/// with `rf_guard_free`. On failure `*out` is set to NULL.
///
/// # Safety
/// `out` is NULL (an error) or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_new_for_accounts(
    accounts: usize,
    out: *mut *mut rf_guard,
) -> rf_status {
    ffi::boundary("rf_guard_new_for_accounts", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            create(out, || {
                if (1..=MAX_ACCOUNTS).contains(&accounts) {
                    Ok(GuardConfig::for_accounts(accounts))
                } else {
                    Err(Error::new(
                        rf_status::RF_ERR_INVALID,
                        format!(
                            "`accounts` is {accounts}; it must be at least 1 and at most {MAX_ACCOUNTS}"
                        ),
                    ))
                }
            })
        }
    })
}

/// A guard from a TOML configuration (the keys of Rust's `GuardConfig`,
/// every one optional; see the README). `toml` is UTF-8 of `toml_len`
/// bytes, not NUL-terminated, read only during the call.
///
/// An unknown or mistyped key, or a value out of range, is `RF_ERR_CONFIG`
/// with a message naming the key and line. On success `*out` is the new
/// guard, owned by the caller, who frees it with `rf_guard_free`. On failure
/// `*out` is set to NULL.
///
/// # Safety
/// `toml` is NULL or points to `toml_len` readable bytes; `out` is NULL or
/// valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_from_toml(
    toml: *const c_char,
    toml_len: usize,
    out: *mut *mut rf_guard,
) -> rf_status {
    ffi::boundary("rf_guard_from_toml", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            create(out, || {
                let text = ffi::str(toml, toml_len).map_err(|e| e.named("toml"))?;
                GuardConfig::from_toml(text).map_err(config_error)
            })
        }
    })
}

/// A guard from a TOML configuration file at `path` (UTF-8, `path_len`
/// bytes, not NUL-terminated, read only during the call).
///
/// A file that cannot be read is `RF_ERR_IO`; a bad configuration
/// `RF_ERR_CONFIG`. On success `*out` is the new guard, owned by the
/// caller, who frees it with `rf_guard_free`. On failure `*out` is set to
/// NULL.
///
/// # Safety
/// `path` is NULL or points to `path_len` readable bytes; `out` is NULL or
/// valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_from_file(
    path: *const c_char,
    path_len: usize,
    out: *mut *mut rf_guard,
) -> rf_status {
    ffi::boundary("rf_guard_from_file", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            create(out, || {
                let path = ffi::str(path, path_len).map_err(|e| e.named("path"))?;
                let text = std::fs::read_to_string(path)
                    .map_err(|e| io_error("read the configuration", path, e))?;
                GuardConfig::from_toml(&text)
                    .map_err(|e| Error::new(rf_status::RF_ERR_CONFIG, format!("{path}: {e}")))
            })
        }
    })
}

/// Frees a guard and everything it holds. NULL is accepted and ignored.
///
/// # Safety
/// `guard` is NULL, or a guard from this library not yet freed; no other
/// call may use it during or after this one.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_free(guard: *mut rf_guard) {
    // SAFETY: per this function's contract (above).
    ffi::boundary_void(|| unsafe { ffi::free_handle(guard) })
}

/// Everything the guard remembers (linked accounts, fingerprint values and
/// evidence, cluster statistics, the limiter's debts), as bytes in a
/// versioned, checksummed format.
///
/// On success `*out` holds the bytes, owned by the caller, who frees them
/// with `rf_bytes_free` (read them with `rf_bytes_data`). On failure `*out`
/// is set to NULL.
///
/// # Safety
/// `guard` is NULL or a live guard; `out` is NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_snapshot(
    guard: *const rf_guard,
    out: *mut *mut rf_bytes,
) -> rf_status {
    ffi::boundary("rf_guard_snapshot", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            ffi::write(out, std::ptr::null_mut()).map_err(|e| e.named("out"))?;
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let bytes = ffi::into_handle(rf_bytes {
                data: g.inner.snapshot(),
            });
            ffi::write(out, bytes).map_err(|e| e.named("out"))
        }
    })
}

/// Writes the guard's snapshot (see `rf_guard_snapshot`) to the file at
/// `path` (UTF-8, `path_len` bytes, not NUL-terminated), crash-safe: the
/// bytes go to a new temporary file beside it, flushed to the disk, which
/// is renamed over `path`, and the directory is flushed (the core's
/// `ringfence::persist::write_atomic`, which every way in shares). A crash
/// at any moment leaves the previous file or the new one, whole. A write
/// that fails is `RF_ERR_IO` and leaves `path` as it was.
///
/// # Safety
/// `guard` is NULL or a live guard; `path` is NULL or points to `path_len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_snapshot_file(
    guard: *const rf_guard,
    path: *const c_char,
    path_len: usize,
) -> rf_status {
    ffi::boundary("rf_guard_snapshot_file", || {
        // SAFETY: per this function's contract (above).
        let (g, path) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::str(path, path_len).map_err(|e| e.named("path"))?,
            )
        };
        let bytes = g.inner.snapshot();
        ringfence::persist::write_atomic(std::path::Path::new(path), &bytes)
            .map_err(|e| io_error("write the snapshot to", path, e))
    })
}

/// Restores a snapshot (`rf_guard_snapshot`) of `len` bytes at `bytes`,
/// read only during the call, into `guard`, which must be fresh (no
/// request checked yet) and made with the same configuration seeds and
/// sizes. The whole snapshot is checked first: a truncated, corrupt or
/// mismatched one is `RF_ERR_SNAPSHOT` and leaves the guard untouched.
///
/// # Safety
/// `guard` is NULL or a live guard; `bytes` is NULL or points to `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_restore(
    guard: *const rf_guard,
    bytes: *const u8,
    len: usize,
) -> rf_status {
    ffi::boundary("rf_guard_restore", || {
        // SAFETY: per this function's contract (above).
        let (g, bytes) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::bytes(bytes, len).map_err(|e| e.named("bytes"))?,
            )
        };
        g.inner
            .restore(bytes)
            .map_err(|e| Error::new(rf_status::RF_ERR_SNAPSHOT, e))
    })
}

/// Restores the snapshot in the file at `path` (UTF-8, `path_len` bytes,
/// not NUL-terminated), as `rf_guard_restore` does. A file that cannot be
/// read is `RF_ERR_IO`.
///
/// # Safety
/// `guard` is NULL or a live guard; `path` is NULL or points to `path_len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_restore_file(
    guard: *const rf_guard,
    path: *const c_char,
    path_len: usize,
) -> rf_status {
    ffi::boundary("rf_guard_restore_file", || {
        // SAFETY: per this function's contract (above).
        let (g, path) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::str(path, path_len).map_err(|e| e.named("path"))?,
            )
        };
        let bytes = std::fs::read(path).map_err(|e| io_error("read the snapshot", path, e))?;
        g.inner
            .restore(&bytes)
            .map_err(|e| Error::new(rf_status::RF_ERR_SNAPSHOT, format!("{path}: {e}")))
    })
}

/// Folds another gateway node's snapshot (`len` bytes at `bytes`, read only
/// during the call) into `guard`: accounts and values merge, evidence and
/// links union, cluster statistics add up, every key owes the sum of its
/// debts. The whole snapshot is checked first; a bad one is
/// `RF_ERR_SNAPSHOT` and changes nothing.
///
/// # Safety
/// `guard` is NULL or a live guard; `bytes` is NULL or points to `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_merge(
    guard: *const rf_guard,
    bytes: *const u8,
    len: usize,
) -> rf_status {
    ffi::boundary("rf_guard_merge", || {
        // SAFETY: per this function's contract (above).
        let (g, bytes) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::bytes(bytes, len).map_err(|e| e.named("bytes"))?,
            )
        };
        g.guard().merge(bytes).map_err(snapshot_error)
    })
}

/// Forgets expired evidence and rebuilds the clusters now. The guard does
/// this by itself every `link.rebuild_every_secs` (the request that finds it
/// due pays for it); a gateway that wants no request to pay can call this
/// from a background thread a little more often.
///
/// # Safety
/// `guard` is NULL or a live guard.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_maintain(guard: *const rf_guard) -> rf_status {
    ffi::boundary("rf_guard_maintain", || {
        // SAFETY: per this function's contract (above).
        let g = unsafe { ffi::arg(guard) }.map_err(|e| e.named("guard"))?;
        g.guard().maintain();
        Ok(())
    })
}

/// Records every request still waiting for the observer threads (a guard
/// configured with `[observe] mode = "background"`; nothing to do
/// otherwise), so that explanations, scores and snapshots count every
/// request checked before the call. `backlog` (may be NULL) receives the
/// requests that were waiting, and `overflowed` (may be NULL) how many
/// requests so far found the observers' queue full and were recorded on
/// their own thread.
///
/// # Safety
/// `guard` is NULL or a live guard; `backlog` and `overflowed` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_flush(
    guard: *const rf_guard,
    backlog: *mut u64,
    overflowed: *mut u64,
) -> rf_status {
    ffi::boundary("rf_guard_flush", || {
        // SAFETY: per this function's contract (above).
        let g = unsafe { ffi::arg(guard) }.map_err(|e| e.named("guard"))?;
        let waiting = g.guard().backlog();
        g.guard().flush();
        if !backlog.is_null() {
            // SAFETY: per this function's contract (above).
            unsafe { ffi::write(backlog, waiting) }.map_err(|e| e.named("backlog"))?;
        }
        if !overflowed.is_null() {
            // SAFETY: per this function's contract (above).
            unsafe { ffi::write(overflowed, g.guard().overflowed()) }
                .map_err(|e| e.named("overflowed"))?;
        }
        Ok(())
    })
}

fn explain(g: &rf_guard, account: &str) -> Result<String> {
    match g.guard().explain(account) {
        Some(e) => Ok(e.to_string()),
        None => Err(Error::new(
            rf_status::RF_ERR_NOT_FOUND,
            format!("the guard knows nothing of account {account:?}"),
        )),
    }
}

/// Why `account` (UTF-8, `account_len` bytes, not NUL-terminated) is
/// treated as it is: its cluster, some other members, the fingerprint
/// values that link it (how many accounts share each, and their weight),
/// and the signals behind its cluster's score; several lines of text.
///
/// The text and a NUL after it are copied into `buf` (`buf_len` bytes,
/// owned by the caller), and its length without the NUL to `*text_len`. If
/// `buf_len` is too small (less than the length plus one), nothing is
/// written to `buf`, `*text_len` still gets the length, and the answer is
/// `RF_ERR_BUFFER_TOO_SMALL`: call again with a larger buffer (`buf` may be
/// NULL with `buf_len` 0 to ask for the length). `text_len` may be NULL. An
/// account the guard has never seen is `RF_ERR_NOT_FOUND`.
///
/// # Safety
/// `guard` is NULL or a live guard; `account` is NULL or points to
/// `account_len` readable bytes; `buf` is NULL or valid for writing
/// `buf_len` bytes; `text_len` is NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_explain(
    guard: *const rf_guard,
    account: *const c_char,
    account_len: usize,
    buf: *mut c_char,
    buf_len: usize,
    text_len: *mut usize,
) -> rf_status {
    ffi::boundary("rf_guard_explain", || {
        // SAFETY: per this function's contract (above).
        let (g, account) = unsafe {
            (
                ffi::arg(guard).map_err(|e| e.named("guard"))?,
                ffi::str(account, account_len).map_err(|e| e.named("account"))?,
            )
        };
        let text = explain(g, account)?;
        // SAFETY: per this function's contract (above).
        unsafe { ffi::copy_out(text.as_bytes(), buf, buf_len, text_len, "buf") }
    })
}

/// `rf_guard_explain`, into a string that ringfence allocates: on success
/// `*out` holds the text, owned by the caller, who reads it with
/// `rf_string_data` and frees it with `rf_string_free`. On failure `*out` is
/// set to NULL.
///
/// # Safety
/// `guard` is NULL or a live guard; `account` is NULL or points to
/// `account_len` readable bytes; `out` is NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_explain_string(
    guard: *const rf_guard,
    account: *const c_char,
    account_len: usize,
    out: *mut *mut rf_string,
) -> rf_status {
    ffi::boundary("rf_guard_explain_string", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            ffi::write(out, std::ptr::null_mut()).map_err(|e| e.named("out"))?;
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let account = ffi::str(account, account_len).map_err(|e| e.named("account"))?;
            let text = explain(g, account)?;
            ffi::write(out, ffi::into_handle(rf_string::new(text))).map_err(|e| e.named("out"))
        }
    })
}

/// The guard's counters and gauges in the Prometheus text format (0.0.4),
/// ready to serve at `/metrics`: requests by verdict, decisions by reason,
/// clusters formed, flagged and refused, evictions, each table's fill,
/// maintenance steps and their longest pause, settlement drift (see the
/// README, "Metrics", for every name). On success `*out` holds the text,
/// owned by the caller, who reads it with `rf_string_data` and frees it with
/// `rf_string_free`; on failure `*out` is set to NULL.
///
/// Errors: `RF_ERR_NULL`.
///
/// # Safety
/// `guard` is NULL or a live guard; `out` is NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_metrics(
    guard: *const rf_guard,
    out: *mut *mut rf_string,
) -> rf_status {
    ffi::boundary("rf_guard_metrics", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            ffi::write(out, std::ptr::null_mut()).map_err(|e| e.named("out"))?;
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let text = g.inner.guard().metrics();
            ffi::write(out, ffi::into_handle(rf_string::new(text))).map_err(|e| e.named("out"))
        }
    })
}
