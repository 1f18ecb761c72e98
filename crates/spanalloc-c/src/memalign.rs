//! Aligned allocation: POSIX `posix_memalign`, C11 `aligned_alloc`, and the
//! obsolete `memalign`, `valloc`, `pvalloc`. See lib.rs.
//!
//! An alignment that is not a power of two is refused with `EINVAL` (glibc
//! before 2.38 rounds it up in `memalign` and `aligned_alloc` instead).

use crate::{or_enomem, set_errno};
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use spanalloc::raw;

/// `aligned_alloc` and `memalign`: null with `EINVAL` for a bad alignment,
/// with `ENOMEM` if memory is refused.
fn aligned(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return null_mut();
    }
    or_enomem(raw::aligned_alloc(align, size))
}

/// The system's page size, asked once.
fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let n = if n > 0 { n as usize } else { 4096 };
            PAGE.store(n, Relaxed);
            n
        }
        n => n,
    }
}

/// POSIX `posix_memalign`: stores a block of `size` bytes aligned to `align`
/// in `*memptr` and returns 0; returns `EINVAL` if `align` is not a power of
/// two multiple of `sizeof(void *)`, `ENOMEM` if memory is refused. On
/// failure `*memptr` and `errno` are left as they were.
///
/// # Safety
/// `memptr` must be valid for a write when the call succeeds.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let p = raw::aligned_alloc(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a writable pointer (POSIX's contract).
    unsafe { *memptr = p.cast() };
    0
}

/// C11 `aligned_alloc`: `size` bytes aligned to `align` (a power of two).
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    aligned(align, size)
}

/// `memalign` (obsolete): as [`aligned_alloc`].
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    aligned(align, size)
}

/// `valloc` (obsolete): `size` bytes aligned to the page size.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned(page_size(), size)
}

/// `pvalloc` (obsolete): `valloc` of `size` rounded up to whole pages.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.checked_add(page - 1) {
        Some(s) => aligned(page, (s & !(page - 1)).max(page)),
        None => or_enomem(null_mut()),
    }
}
