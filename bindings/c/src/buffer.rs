//! Owned results handed to C: `rf_bytes` (a snapshot) and `rf_string` (an
//! explanation), each freed by its own function.

use crate::error::{rf_status, Result};
use crate::ffi;
use std::ffi::c_char;

/// Bytes owned by ringfence (a snapshot). Read them with `rf_bytes_data`;
/// free them with `rf_bytes_free`.
pub struct rf_bytes {
    pub(crate) data: Vec<u8>,
}

/// A UTF-8 text owned by ringfence (an explanation), NUL-terminated. Read it
/// with `rf_string_data`; free it with `rf_string_free`.
pub struct rf_string {
    /// The text and a NUL after it.
    pub(crate) text: Vec<u8>,
}

impl rf_string {
    pub(crate) fn new(text: String) -> rf_string {
        let mut text = text.into_bytes();
        text.push(0);
        rf_string { text }
    }
}

/// Where the bytes are and how many there are.
///
/// `*data` is set to the first byte and `*len` to the count; the bytes stay
/// valid, unchanged, until `rf_bytes_free(bytes)`. The caller must not
/// write them.
///
/// # Safety
/// `bytes` is NULL or an `rf_bytes` from this library not yet freed;
/// `data` and `len` are NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn rf_bytes_data(
    bytes: *const rf_bytes,
    data: *mut *const u8,
    len: *mut usize,
) -> rf_status {
    ffi::boundary("rf_bytes_data", || -> Result<()> {
        // SAFETY: per this function's contract (above).
        unsafe {
            let b = ffi::arg(bytes).map_err(|e| e.named("bytes"))?;
            ffi::write(data, b.data.as_ptr()).map_err(|e| e.named("data"))?;
            ffi::write(len, b.data.len()).map_err(|e| e.named("len"))
        }
    })
}

/// Frees bytes from this library. NULL is accepted and ignored.
///
/// # Safety
/// `bytes` is NULL, or an `rf_bytes` from this library not yet freed and
/// not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn rf_bytes_free(bytes: *mut rf_bytes) {
    // SAFETY: per this function's contract (above).
    ffi::boundary_void(|| unsafe { ffi::free_handle(bytes) })
}

/// Where the text is and how long it is (in bytes, without the NUL).
///
/// `*text` is set to the first byte of the UTF-8 text, which a NUL byte
/// follows (so it is also a C string, unless the text itself contains NUL
/// bytes: an account name may); `*len` to its length. Both stay valid,
/// unchanged, until `rf_string_free(string)`. The caller must not write the
/// text. `len` may be NULL.
///
/// # Safety
/// `string` is NULL or an `rf_string` from this library not yet freed;
/// `text` and `len` are NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn rf_string_data(
    string: *const rf_string,
    text: *mut *const c_char,
    len: *mut usize,
) -> rf_status {
    ffi::boundary("rf_string_data", || -> Result<()> {
        // SAFETY: per this function's contract (above).
        unsafe {
            let s = ffi::arg(string).map_err(|e| e.named("string"))?;
            ffi::write(text, s.text.as_ptr().cast::<c_char>()).map_err(|e| e.named("text"))?;
            if !len.is_null() {
                ffi::write(len, s.text.len() - 1).map_err(|e| e.named("len"))?;
            }
            Ok(())
        }
    })
}

/// Frees a string from this library. NULL is accepted and ignored.
///
/// # Safety
/// `string` is NULL, or an `rf_string` from this library not yet freed and
/// not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn rf_string_free(string: *mut rf_string) {
    // SAFETY: per this function's contract (above).
    ffi::boundary_void(|| unsafe { ffi::free_handle(string) })
}
