//! Status codes and the per-thread message of the last error.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CString};

/// What a call did: `RF_OK` (0), or why it failed (never 0). After a
/// failure, `rf_last_error()` says what was wrong, naming the argument,
/// key or byte offset.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum rf_status {
    /// Success.
    RF_OK = 0,
    /// A pointer that must not be NULL was NULL.
    RF_ERR_NULL = 1,
    /// A string was not valid UTF-8.
    RF_ERR_UTF8 = 2,
    /// The configuration is invalid: an unknown or mistyped key, or a value
    /// out of range (the message names the key and line).
    RF_ERR_CONFIG = 3,
    /// A snapshot is truncated, corrupt, of another format version, or was
    /// taken by a guard of another size or seed.
    RF_ERR_SNAPSHOT = 4,
    /// A file could not be read or written.
    RF_ERR_IO = 5,
    /// The caller's buffer is too small; the length needed was written to
    /// the length out-parameter.
    RF_ERR_BUFFER_TOO_SMALL = 6,
    /// Nothing was found: the guard knows nothing of the account, has no
    /// value to export, or no imported indicator has matched.
    RF_ERR_NOT_FOUND = 7,
    /// An argument is invalid in another way: a misaligned pointer, an
    /// impossible length, a verdict already settled or made by another
    /// guard, a threat-intelligence bundle refused; or the guard's
    /// configuration does not allow the call (no `[fleet]` table, no
    /// `[intel] key_file`).
    RF_ERR_INVALID = 8,
    /// ringfence panicked: a bug (please report it with the message). The
    /// panic was caught; the guard stays usable, but the call may have had
    /// part of its effect.
    RF_ERR_PANIC = 9,
}

impl rf_status {
    /// The status's name and meaning.
    pub(crate) fn describe(code: u32) -> &'static str {
        match code {
            0 => "RF_OK: success\0",
            1 => "RF_ERR_NULL: a pointer that must not be NULL was NULL\0",
            2 => "RF_ERR_UTF8: a string was not valid UTF-8\0",
            3 => "RF_ERR_CONFIG: the configuration is invalid\0",
            4 => "RF_ERR_SNAPSHOT: the snapshot is corrupt, truncated or does not fit this guard\0",
            5 => "RF_ERR_IO: a file could not be read or written\0",
            6 => "RF_ERR_BUFFER_TOO_SMALL: the buffer is too small\0",
            7 => "RF_ERR_NOT_FOUND: not found (an unknown account, nothing to export)\0",
            8 => "RF_ERR_INVALID: an argument is invalid\0",
            9 => "RF_ERR_PANIC: ringfence panicked (a bug)\0",
            _ => "RF_ERR_UNKNOWN: not a ringfence status\0",
        }
    }
}

/// A failed call: its status and what was wrong.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) status: rf_status,
    pub(crate) message: String,
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

impl Error {
    #[cold]
    pub(crate) fn new(status: rf_status, message: impl Into<String>) -> Error {
        debug_assert!(status != rf_status::RF_OK);
        Error {
            status,
            message: message.into(),
        }
    }

    #[cold]
    pub(crate) fn panicked(payload: &(dyn Any + Send)) -> Error {
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        Error::new(
            rf_status::RF_ERR_PANIC,
            format!("ringfence panicked (a bug; please report it): {what}"),
        )
    }

    /// Makes this the thread's last error, as `function: message`, and
    /// returns its status.
    #[cold]
    pub(crate) fn record(self, function: &str) -> rf_status {
        let text = format!("{function}: {}", self.message).replace('\0', "\u{FFFD}");
        let text = CString::new(text).unwrap_or_default();
        // During the thread's exit the slot may be gone: the status is all
        // the caller gets then.
        let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
        self.status
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// The message of the last call on this thread that failed, as a
/// NUL-terminated UTF-8 string (`""` when none has).
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}
