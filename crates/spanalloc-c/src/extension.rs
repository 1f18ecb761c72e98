//! spanalloc's own C calls, declared (and documented for C) in
//! `include/spanalloc.h`. See lib.rs.

use core::ffi::{c_int, c_void};
use spanalloc::raw;

/// Returns free memory to the OS now; the bytes released.
#[no_mangle]
pub extern "C" fn spanalloc_release_memory() -> usize {
    raw::release_memory()
}

/// Writes the statistics report to the file descriptor `fd` (JSON when
/// `SPANALLOC_STATS=json`), without allocating.
#[no_mangle]
pub extern "C" fn spanalloc_print_stats(fd: c_int) {
    raw::write_stats(fd);
}

/// The bytes usable at `p`, or 0 if `p` is not the start of a live block
/// spanalloc handed out (so it also answers "is this block spanalloc's?").
/// Any pointer may be passed: it is looked up, never dereferenced.
#[no_mangle]
pub extern "C" fn spanalloc_usable_size(p: *const c_void) -> usize {
    raw::usable_size(p.cast()).unwrap_or(0)
}

/// Writes the heap dump (every region and span, as JSON; the format
/// `spanalloc-inspect heap` reads) to the file at `path`. Returns 0 on
/// success, -1 if the file cannot be written. Allocates nothing.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn spanalloc_dump_heap(path: *const core::ffi::c_char) -> c_int {
    if path.is_null() {
        return -1;
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let path = unsafe { core::ffi::CStr::from_ptr(path) };
    if spanalloc::dump_heap(path) {
        0
    } else {
        -1
    }
}

/// Writes the heap profile (gzip-compressed pprof) to the file at `path`.
/// Returns 0 on success, -1 if the profiler was never on or the file cannot
/// be written. Allocates.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn spanalloc_profile_write(path: *const core::ffi::c_char) -> c_int {
    if path.is_null() {
        return -1;
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let path = unsafe { core::ffi::CStr::from_ptr(path) };
    let Ok(path) = path.to_str() else {
        return -1;
    };
    match spanalloc::profile::write(path) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// Starts sampling allocations with a mean of `bytes` bytes between
/// samples, or stops it (0).
#[no_mangle]
pub extern "C" fn spanalloc_profile_set_rate(bytes: usize) {
    spanalloc::profile::set_rate(bytes);
}
