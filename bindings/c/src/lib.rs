//! The C ABI of ringfence: `rf_*` functions over one opaque guard handle,
//! for gateways written in C or C++ (nginx modules, Envoy filters, custom
//! proxies). The header is `include/ringfence.h`, generated from this crate
//! by cbindgen; `bindings/cpp/ringfence.hpp` wraps it in C++17 RAII types.
//!
//! The conventions, which the header repeats on every function:
//!
//! - **Names.** Every exported symbol and type starts with `rf_` (types and
//!   functions) or `RF_` (constants).
//! - **Status codes.** Every call that can fail returns an [`rf_status`]:
//!   `RF_OK` (0) or an error, never 0. The message of the last failure on
//!   the calling thread is `rf_last_error()`. The only functions without a
//!   status are the `*_free` functions (which accept NULL and cannot fail)
//!   and those that return static strings.
//! - **Strings** are UTF-8, passed as pointer + length, never needing a
//!   NUL; each is validated, and bad UTF-8 is `RF_ERR_UTF8` naming the
//!   argument and byte offset. Strings ringfence returns are NUL-terminated
//!   too.
//! - **Pointers** are checked for NULL (`RF_ERR_NULL`, naming the argument)
//!   and alignment. Arguments are borrowed for the duration of the call
//!   only; whatever ringfence hands back is owned by the caller and freed
//!   by its own `*_free` function. Out-pointers are set to NULL on failure.
//! - **Panics** never cross the boundary: each entry point catches them and
//!   answers `RF_ERR_PANIC`.
//! - **Threads.** A guard is safe to use from many threads at once (see
//!   [`guard::rf_guard`]).
//!
//! Threat intelligence shared between providers (a guard with a consortium
//! key, `[intel] key_file`) is the `intel` module: indicators out and in as
//! STIX 2.1 bundles, and sightings, through `ringfence_intel::guard`.
//!
//! All of the crate's raw-pointer handling is in the `ffi` module.
//!
//! **Translation only.** Every rule a caller can observe is the core's, and
//! this crate calls it rather than copying it: the request contract
//! (`Guard::try_check`, whose errors become `RF_ERR_INVALID` with the
//! core's message), the token estimate (`rf_estimate_tokens`), the
//! rate-limit numbers and header lines (`Verdict::rate_limit`,
//! `RateLimitFields::header_lines`), the names of decisions, reasons,
//! policies and signals (the `names` module), the settlement token (carried
//! as the core's opaque words), sizing by accounts, and the exchange of
//! intelligence (`ringfence_intel::guard`: the export rule, the bundles and
//! their checks). What is C's own is
//! the translation: pointers, UTF-8, status codes, the per-thread message,
//! and marking a verdict settled.
//!
//! From Rust, use the `ringfence` crate itself; this crate's Rust items
//! exist for its tests and its overhead benchmark.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
// The exported names are C's: `rf_guard`, `RF_OK`.
#![allow(non_camel_case_types)]

pub mod buffer;
pub mod check;
pub mod error;
mod ffi;
pub mod fleet;
pub mod guard;
pub mod intel;
pub mod names;

pub use buffer::{
    rf_bytes, rf_bytes_data, rf_bytes_free, rf_string, rf_string_data, rf_string_free,
};
pub use check::*;
pub use error::rf_status;
pub use fleet::rf_guard_fleet_stats;
pub use guard::*;
pub use intel::*;
pub use names::*;

use std::ffi::c_char;

/// The header's major version (the workspace's, checked by
/// `tests/header.rs`); `RF_VERSION` is the three as a string.
pub const RF_VERSION_MAJOR: u32 = 0;
/// The header's minor version.
pub const RF_VERSION_MINOR: u32 = 1;
/// The header's patch version.
pub const RF_VERSION_PATCH: u32 = 0;

/// The version of the library linked at run time, `"MAJOR.MINOR.PATCH"`
/// (compare with `RF_VERSION`, the header's): a static NUL-terminated
/// string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the last call on this thread that failed, naming what
/// was wrong (the argument, the configuration key and line, the byte
/// offset): a NUL-terminated UTF-8 string, `""` if no call on this thread
/// has failed yet. Never NULL.
///
/// The string belongs to ringfence: it stays valid until the next call on
/// this thread that fails (calls that succeed leave it as it is), or until
/// the thread exits. Copy it to keep it. Each thread has its own.
#[no_mangle]
pub extern "C" fn rf_last_error() -> *const c_char {
    error::last_error()
}

/// The name and meaning of a status code, such as `"RF_ERR_UTF8: a string
/// was not valid UTF-8"` (`"RF_ERR_UNKNOWN: …"` for a value that is not one):
/// a static NUL-terminated string, never to be freed.
#[no_mangle]
pub extern "C" fn rf_status_str(status: u32) -> *const c_char {
    rf_status::describe(status).as_ptr().cast()
}
