//! Crossing the boundary: the panic boundary every entry point runs in, and
//! the helpers that turn what C passes (pointers, pointer + length) into
//! references, slices and `&str`, and write results back.
//!
//! Every raw-pointer operation of the crate is in this module. The helpers
//! are `unsafe fn`s whose contract is the one the header states for the
//! argument: a pointer is NULL or valid (aligned, readable or writable for
//! its length) for the duration of the call. NULL, misalignment, lengths past
//! `isize::MAX` and bad UTF-8 are checked here and answered with an error
//! naming the argument.

use crate::error::{rf_status, Error, Result};
use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs an entry point's body: `Ok` is `RF_OK`; an error is recorded as the
/// thread's last error and its status returned; a panic is caught (it must
/// never unwind into C), recorded and answered with `RF_ERR_PANIC`.
/// `function` names the entry point in the message.
#[inline]
pub(crate) fn boundary(function: &'static str, body: impl FnOnce() -> Result<()>) -> rf_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => rf_status::RF_OK,
        Ok(Err(e)) => e.record(function),
        Err(payload) => Error::panicked(payload.as_ref()).record(function),
    }
}

/// Runs a function that returns nothing (the `*_free` functions): a panic
/// is caught and dropped, as there is no status to return it in.
pub(crate) fn boundary_void(body: impl FnOnce()) {
    // Dropping the payload runs arbitrary code too; keep that inside.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
            drop(payload);
        }
    }));
}

/// Runs an entry point that answers a value rather than a status (the
/// static-string and pure functions): a panic is caught (it must never
/// unwind into C) and answered with `fallback`.
#[inline]
pub(crate) fn boundary_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    let mut out = fallback;
    boundary_void(|| out = body());
    out
}

/// [`boundary_value`] for the functions that answer a static C string:
/// `body`'s string, or `fallback` when it has none (or panicked).
#[inline]
pub(crate) fn boundary_str(
    fallback: *const c_char,
    body: impl FnOnce() -> Option<&'static CStr>,
) -> *const c_char {
    boundary_value(fallback, || body().map_or(fallback, CStr::as_ptr))
}

/// Why an argument was refused (the caller adds its name).
#[derive(Debug)]
pub(crate) enum Bad {
    Null,
    Misaligned,
    TooLong,
    Utf8 { valid_up_to: usize },
}

impl Bad {
    /// The error, naming the argument.
    #[cold]
    pub(crate) fn named(self, name: &str) -> Error {
        match self {
            Bad::Null => Error::new(rf_status::RF_ERR_NULL, format!("`{name}` is NULL")),
            Bad::Misaligned => Error::new(
                rf_status::RF_ERR_INVALID,
                format!("`{name}` is not aligned for its type"),
            ),
            Bad::TooLong => Error::new(
                rf_status::RF_ERR_INVALID,
                format!("`{name}`: the length is larger than any object can be"),
            ),
            Bad::Utf8 { valid_up_to } => Error::new(
                rf_status::RF_ERR_UTF8,
                format!("`{name}` is not valid UTF-8 (bad byte at offset {valid_up_to})"),
            ),
        }
    }
}

/// A shared reference to the `T` that `ptr` points to.
///
/// # Safety
/// `ptr` is NULL, or points to an initialised `T` that stays valid and is
/// not written by anyone else for `'a`.
#[inline]
pub(crate) unsafe fn arg<'a, T>(ptr: *const T) -> std::result::Result<&'a T, Bad> {
    if ptr.is_null() {
        return Err(Bad::Null);
    }
    if !ptr.is_aligned() {
        return Err(Bad::Misaligned);
    }
    // SAFETY: not NULL, aligned (checked above), and per this function's
    // contract valid and unaliased by writers for 'a.
    Ok(unsafe { &*ptr })
}

/// An exclusive reference to the `T` that `ptr` points to. Only for types
/// every bit pattern of whose size is a valid value (plain integers and
/// floats), since C may have written anything there.
///
/// # Safety
/// `ptr` is NULL, or points to an initialised `T` that nobody else reads or
/// writes for `'a`.
#[inline]
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T) -> std::result::Result<&'a mut T, Bad> {
    if ptr.is_null() {
        return Err(Bad::Null);
    }
    if !ptr.is_aligned() {
        return Err(Bad::Misaligned);
    }
    // SAFETY: not NULL, aligned (checked above), and per this function's
    // contract valid and exclusively ours for 'a.
    Ok(unsafe { &mut *ptr })
}

/// The `len` elements at `ptr`. NULL is accepted for an empty slice.
///
/// # Safety
/// `ptr` is NULL, or points to `len` initialised `T`s that stay valid and
/// unwritten for `'a`.
#[inline]
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> std::result::Result<&'a [T], Bad> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(Bad::Null) };
    }
    if !ptr.is_aligned() {
        return Err(Bad::Misaligned);
    }
    if len.saturating_mul(size_of::<T>()) > isize::MAX as usize {
        return Err(Bad::TooLong);
    }
    // SAFETY: not NULL, aligned, the total size fits in isize (checked
    // above), and per this function's contract `len` valid, unwritten
    // elements for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The `len` bytes at `ptr`; NULL is an error even for `len` 0.
///
/// # Safety
/// As [`slice`].
#[inline]
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> std::result::Result<&'a [u8], Bad> {
    if ptr.is_null() {
        return Err(Bad::Null);
    }
    // SAFETY: this function's contract is `slice`'s.
    unsafe { slice(ptr, len) }
}

/// The UTF-8 string of `len` bytes at `ptr` (not NUL-terminated; a NUL
/// byte is an ordinary character). NULL is an error even for `len` 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that stay unwritten for `'a`.
#[inline]
pub(crate) unsafe fn str<'a>(ptr: *const c_char, len: usize) -> std::result::Result<&'a str, Bad> {
    // SAFETY: this function's contract is `bytes`'s.
    let b = unsafe { bytes(ptr.cast::<u8>(), len) }?;
    utf8(b)
}

/// [`str`] for the hot path, without the diagnosis: `None` for NULL, an
/// impossible length or bad UTF-8 (call [`str`] on the same argument, off
/// the hot path, for the error naming what was wrong).
///
/// # Safety
/// As [`str`].
#[inline(always)]
pub(crate) unsafe fn str_fast<'a>(ptr: *const c_char, len: usize) -> Option<&'a str> {
    if ptr.is_null() || len > isize::MAX as usize {
        return None;
    }
    // SAFETY: not NULL, `u8` needs no alignment, the length fits in isize
    // (checked above), and per this function's contract `len` readable
    // bytes stay unwritten for 'a.
    let b = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    utf8(b).ok()
}

/// Like [`str`], but NULL means absent (`None`), whatever `len` says.
///
/// # Safety
/// As [`str`].
#[inline]
pub(crate) unsafe fn opt_str<'a>(
    ptr: *const c_char,
    len: usize,
) -> std::result::Result<Option<&'a str>, Bad> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: this function's contract is `str`'s.
    unsafe { str(ptr, len) }.map(Some)
}

/// The bytes of `b` or-ed together, a word at a time: `b` is ASCII if and
/// only if `high_bits(b) & HIGH == 0`. Few instructions for the short
/// strings a request is mostly made of (account ids, fingerprint kinds and
/// values): the last word overlaps the one before, with no loop over single
/// bytes.
#[inline(always)]
fn high_bits(b: &[u8]) -> u64 {
    #[inline(always)]
    fn word(b: &[u8], i: usize) -> u64 {
        let mut w = [0; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    }
    #[inline(always)]
    fn half(b: &[u8], i: usize) -> u64 {
        let mut w = [0; 4];
        w.copy_from_slice(&b[i..i + 4]);
        u64::from(u32::from_le_bytes(w))
    }
    let n = b.len();
    if n > 64 {
        // An or of every byte, which the compiler turns into a vector loop
        // (several times faster than `<[u8]>::is_ascii` on a 1 KB prompt).
        u64::from(b.iter().fold(0, |acc, &x| acc | x))
    } else if n >= 8 {
        let mut acc = word(b, n - 8);
        let mut i = 0;
        while i + 8 < n {
            acc |= word(b, i);
            i += 8;
        }
        acc
    } else if n >= 4 {
        half(b, 0) | half(b, n - 4)
    } else {
        u64::from(b.iter().fold(0, |acc, &x| acc | x))
    }
}

/// The high bit of every byte of a word.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether `b` is ASCII.
#[inline(always)]
fn is_ascii(b: &[u8]) -> bool {
    high_bits(b) & HIGH == 0
}

/// Checks UTF-8, with an ASCII pass first: most of what a gateway passes
/// (account ids, fingerprints, English prompts) is ASCII.
#[inline]
fn utf8(b: &[u8]) -> std::result::Result<&str, Bad> {
    if is_ascii(b) {
        // SAFETY: ASCII is valid UTF-8 (checked just above).
        return Ok(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b).map_err(|e| Bad::Utf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Writes `value` to the out-parameter `ptr`, without reading or dropping
/// what was there (C may have left it uninitialised).
///
/// # Safety
/// `ptr` is NULL or valid for writing a `T`, and nobody else reads or writes
/// it during the call.
#[inline]
pub(crate) unsafe fn write<T>(ptr: *mut T, value: T) -> std::result::Result<(), Bad> {
    if ptr.is_null() {
        return Err(Bad::Null);
    }
    if !ptr.is_aligned() {
        return Err(Bad::Misaligned);
    }
    // SAFETY: not NULL, aligned (checked above), writable per this
    // function's contract; `write` does not drop the old contents.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Copies `text` and a terminating NUL into the caller's buffer `buf` of
/// `cap` bytes, and its length (without the NUL) to `*len_out`. If it does
/// not fit (`cap < text.len() + 1`), nothing is written to `buf`,
/// `*len_out` still gets the length and the answer is
/// `RF_ERR_BUFFER_TOO_SMALL`. `buf` may be NULL when `cap` is 0 (a query of
/// the length; NULL with a `cap` above 0 is `RF_ERR_NULL`); `len_out` may
/// be NULL.
///
/// # Safety
/// `buf` is NULL or valid for writing `cap` bytes; `len_out` is NULL or
/// valid for writing a `size_t`; neither is used by anyone else meanwhile.
pub(crate) unsafe fn copy_out(
    text: &[u8],
    buf: *mut c_char,
    cap: usize,
    len_out: *mut usize,
    buf_name: &str,
) -> Result<()> {
    if buf.is_null() && cap > 0 {
        return Err(Bad::Null.named(buf_name));
    }
    if !len_out.is_null() {
        // SAFETY: per this function's contract.
        unsafe { write(len_out, text.len()) }.map_err(|b| b.named("len_out"))?;
    }
    if cap <= text.len() {
        return Err(Error::new(
            rf_status::RF_ERR_BUFFER_TOO_SMALL,
            format!(
                "`{buf_name}` holds {cap} bytes; {} are needed (the text and its NUL)",
                text.len() + 1
            ),
        ));
    }
    // SAFETY: `buf` is not NULL (as `cap` > 0) and, per this function's contract, valid for
    // `cap` > text.len() bytes of writing; `text` is a Rust slice, so the
    // two do not overlap unless the caller broke that contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    Ok(())
}

/// Up to `N` string pairs on the stack, filled in order: a request's
/// fingerprints as the guard takes them, without initialising the slots it
/// does not use (rf_check's hot path allocates nothing and writes only what
/// it needs).
pub(crate) struct StackPairs<'a, const N: usize> {
    slots: [MaybeUninit<(&'a str, &'a str)>; N],
    len: usize,
}

impl<'a, const N: usize> StackPairs<'a, N> {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        StackPairs {
            slots: [const { MaybeUninit::uninit() }; N],
            len: 0,
        }
    }

    /// Appends a pair. Panics when full (the caller checks the count first).
    #[inline(always)]
    pub(crate) fn push(&mut self, pair: (&'a str, &'a str)) {
        self.slots[self.len].write(pair);
        self.len += 1;
    }

    /// The pairs pushed so far.
    #[inline(always)]
    pub(crate) fn as_slice(&self) -> &[(&'a str, &'a str)] {
        // SAFETY: the first `len` slots were written by `push` and are never
        // uninitialised again; `MaybeUninit<T>` has the layout of `T`.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast(), self.len) }
    }
}

/// Moves `value` to the heap and hands its ownership to C.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops a handle made by [`into_handle`]; NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or came from `into_handle::<T>` and has not been freed; no
/// other call uses it during or after this one.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: per this function's contract, `ptr` is a live Box<T> that
        // C now gives back.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_error() -> String {
        // SAFETY: `last_error` returns a NUL-terminated string valid until
        // the next failing call on this thread.
        unsafe { CStr::from_ptr(crate::error::last_error()) }
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = boundary("rf_test", || panic!("boom {}", 42));
        assert_eq!(status, rf_status::RF_ERR_PANIC);
        assert!(
            last_error().starts_with("rf_test: ringfence panicked"),
            "{}",
            last_error()
        );
        assert!(last_error().ends_with("boom 42"), "{}", last_error());
        boundary_void(|| panic!("dropped"));
    }

    #[test]
    fn errors_are_recorded_per_thread_and_kept_by_successes() {
        let status = boundary("rf_test", || Err(Bad::Null.named("guard")));
        assert_eq!(status, rf_status::RF_ERR_NULL);
        assert_eq!(last_error(), "rf_test: `guard` is NULL");
        assert_eq!(boundary("rf_test", || Ok(())), rf_status::RF_OK);
        assert_eq!(last_error(), "rf_test: `guard` is NULL");
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
    }

    #[test]
    fn strings_are_checked() {
        let ok = "naïve";
        // SAFETY: the pointers and lengths below are a live string's.
        unsafe {
            assert_eq!(str(ok.as_ptr().cast(), ok.len()).unwrap(), ok);
            assert!(matches!(str(std::ptr::null(), 0), Err(Bad::Null)));
            assert_eq!(opt_str(std::ptr::null(), 5).unwrap(), None);
            let bad = b"ab\xffcd";
            assert!(matches!(
                str(bad.as_ptr().cast(), bad.len()),
                Err(Bad::Utf8 { valid_up_to: 2 })
            ));
            assert!(matches!(slice(std::ptr::null::<u64>(), 0), Ok([])));
            assert!(matches!(slice(std::ptr::null::<u64>(), 1), Err(Bad::Null)));
            let words = [0u64; 2];
            let odd = words.as_ptr().cast::<u8>().add(1).cast::<u64>();
            assert!(matches!(slice(odd, 1), Err(Bad::Misaligned)));
            assert!(matches!(
                slice(words.as_ptr(), usize::MAX / 4),
                Err(Bad::TooLong)
            ));
        }
    }

    #[test]
    fn is_ascii_agrees_with_the_standard_library() {
        let mut text = Vec::new();
        for n in 0..200 {
            text.push(b'a' + (n % 26) as u8);
            assert!(is_ascii(&text), "{n}");
            for at in 0..text.len() {
                let mut bad = text.clone();
                bad[at] = 0xC3;
                assert_eq!(is_ascii(&bad), bad.is_ascii(), "{n} {at}");
                assert!(!is_ascii(&bad));
            }
        }
    }

    #[test]
    fn stack_pairs_hold_what_was_pushed() {
        let mut pairs = StackPairs::<3>::new();
        assert!(pairs.as_slice().is_empty());
        pairs.push(("ip", "192.0.2.1"));
        pairs.push(("ja4", "t13d"));
        assert_eq!(pairs.as_slice(), [("ip", "192.0.2.1"), ("ja4", "t13d")]);
    }

    #[test]
    fn copy_out_writes_text_and_nul_or_nothing() {
        let mut buf = [b'x' as c_char; 6];
        let mut len = 0usize;
        // SAFETY: `buf` and `len` are live locals of the sizes given.
        unsafe {
            let e = copy_out(b"hello!", buf.as_mut_ptr(), buf.len(), &mut len, "buf").unwrap_err();
            assert_eq!((e.status, len), (rf_status::RF_ERR_BUFFER_TOO_SMALL, 6));
            assert!(buf.iter().all(|&c| c == b'x' as c_char));
            copy_out(b"hello", buf.as_mut_ptr(), buf.len(), &mut len, "buf").unwrap();
            assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "hello");
            let e = copy_out(b"hi", std::ptr::null_mut(), 0, &mut len, "buf").unwrap_err();
            assert_eq!((e.status, len), (rf_status::RF_ERR_BUFFER_TOO_SMALL, 2));
        }
    }
}
