//! glibc's extras: the internal `__libc_*` names (some programs and
//! libraries call them to reach "the real malloc"), `malloc_trim` and
//! `malloc_stats`. See lib.rs.

use crate::{malloc, memalign};
use core::ffi::{c_int, c_void};
use spanalloc::raw;

/// glibc's internal name of [`malloc::malloc`].
///
/// # Safety
/// As for `malloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { malloc::malloc(size) }
}

/// glibc's internal name of [`malloc::free`].
///
/// # Safety
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { malloc::free(p) }
}

/// glibc's internal name of [`malloc::calloc`].
///
/// # Safety
/// As for `calloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { malloc::calloc(n, size) }
}

/// glibc's internal name of [`malloc::realloc`].
///
/// # Safety
/// As for `realloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { malloc::realloc(p, size) }
}

/// glibc's internal name of [`memalign::memalign`].
///
/// # Safety
/// As for `memalign`.
#[no_mangle]
pub unsafe extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { memalign::memalign(align, size) }
}

/// glibc's internal name of [`memalign::valloc`].
///
/// # Safety
/// As for `valloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { memalign::valloc(size) }
}

/// glibc's internal name of [`memalign::pvalloc`].
///
/// # Safety
/// As for `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { memalign::pvalloc(size) }
}

/// glibc's internal name of [`memalign::posix_memalign`].
///
/// # Safety
/// As for `posix_memalign`.
#[no_mangle]
pub unsafe extern "C" fn __posix_memalign(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { memalign::posix_memalign(memptr, align, size) }
}

/// `malloc_trim` (glibc): returns free memory to the OS now (`pad` is
/// ignored). Returns 1 if any memory was released, else 0.
///
/// # Safety
/// None.
#[no_mangle]
pub unsafe extern "C" fn malloc_trim(_pad: usize) -> c_int {
    c_int::from(raw::release_memory() > 0)
}

/// `malloc_stats` (glibc): prints spanalloc's statistics report on stderr.
///
/// # Safety
/// None.
#[no_mangle]
pub unsafe extern "C" fn malloc_stats() {
    raw::write_stats(libc::STDERR_FILENO);
}
