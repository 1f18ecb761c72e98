//! The C standard's allocation functions (C17, C23's sized frees, and
//! `reallocarray`, `malloc_usable_size`). See lib.rs.

use crate::{or_enomem, set_errno};
use core::ffi::c_void;
use core::ptr::null_mut;
use spanalloc::raw;

/// C `malloc`: `size` bytes, or null with `errno = ENOMEM`. `malloc(0)`
/// returns a unique block that `free` accepts.
///
/// # Safety
/// None beyond C's: the block must be freed at most once.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    or_enomem(raw::malloc(size))
}

/// C `free`: null does nothing; a pointer spanalloc did not hand out stops
/// the program with a message.
///
/// # Safety
/// `p` must not be used after this call.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: C's contract (nobody uses p afterwards); raw::free refuses,
    // without touching anything, a pointer that is not a live block of ours.
    if let Err(e) = unsafe { raw::free(p.cast()) } {
        raw::report_and_abort("free", p.cast(), e);
    }
}

/// C `calloc`: `n * size` zeroed bytes, or null with `errno = ENOMEM`
/// (also when the product overflows).
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    or_enomem(raw::calloc(n, size))
}

/// C `realloc`, as glibc does it: `realloc(NULL, n)` is `malloc(n)`;
/// `realloc(p, 0)` frees `p` and returns null; on failure returns null
/// with `errno = ENOMEM` and `p` is left as it was.
///
/// # Safety
/// If a different block is returned (or `size` is 0), `p` must not be used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if size == 0 && !p.is_null() {
        // SAFETY: C's contract (p is not used afterwards); raw::free refuses
        // a pointer that is not a live block of ours without touching it.
        if let Err(e) = unsafe { raw::free(p.cast()) } {
            raw::report_and_abort("realloc", p.cast(), e);
        }
        return null_mut();
    }
    // SAFETY: as above, for raw::realloc.
    match unsafe { raw::realloc(p.cast(), size) } {
        Ok(q) => or_enomem(q),
        Err(e) => raw::report_and_abort("realloc", p.cast(), e),
    }
}

/// `reallocarray` (glibc, BSD): `realloc(p, n * size)`, but null with
/// `errno = ENOMEM` and `p` untouched if the product overflows.
///
/// # Safety
/// As for [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded from the caller.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            null_mut()
        }
    }
}

/// C23 `free_sized`: `free`, with the size the block was asked for (unused:
/// the block's span knows it).
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { free(p) }
}

/// C23 `free_aligned_sized`: `free` of a block from `aligned_alloc`.
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { free(p) }
}

/// `malloc_usable_size` (glibc): the bytes usable at `p`, at least what was
/// asked for; 0 for null (and for a pointer spanalloc did not hand out).
///
/// # Safety
/// None: any pointer is looked up, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    raw::usable_size(p.cast()).unwrap_or(0)
}
