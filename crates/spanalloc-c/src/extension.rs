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
