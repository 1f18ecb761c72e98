//! The allocator with C semantics, for the C library crate (`spanalloc-c`):
//! frees without a size, C's alignment rules, fork hooks, reports.
//! See lib.rs for the overview.
//!
//! Nothing here sets `errno` or aborts by itself: the C shims decide that.

use crate::fault::FdWriter;
use crate::global::{self, with_cache, HEAP};
use crate::options::{self, StatsAtExit};
use crate::sizeclass::class_size;
use crate::span::SpanState;

pub use crate::fault::{report_and_abort, PointerError};

/// The alignment C requires of `malloc(size)`: enough for any object of
/// that size (16 bytes from 16 bytes up on x86_64 and aarch64, 8 below).
#[inline(always)]
fn c_align(size: usize) -> usize {
    if size >= 16 {
        16
    } else {
        8
    }
}

/// A block of at least `size` bytes aligned as C's `malloc` must be; size 0
/// gives a unique minimal block. Null if the size is too large or memory is
/// refused.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    global::alloc(size, c_align(size))
}

/// `n * size` zeroed bytes; null on overflow or refusal.
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size) {
        Some(total) => global::alloc_zeroed(total, c_align(total)),
        None => core::ptr::null_mut(),
    }
}

/// A block of at least `size` bytes aligned to `align` (a power of two,
/// which the caller checks) and to C's `malloc` alignment.
pub fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    global::alloc(size, align.max(c_align(size)))
}

/// Frees a block given only its address (null is fine). The span is found
/// through the pagemap; a pointer that is not the start of a live block is
/// refused before anything is touched.
///
/// # Safety
/// If `p` is a live block, nobody may use it afterwards.
#[inline]
pub unsafe fn free(p: *mut u8) -> Result<(), PointerError> {
    if p.is_null() {
        return Ok(());
    }
    let s = HEAP.object_span(p);
    if s.is_null() {
        return Err(PointerError::NotOurs);
    }
    // SAFETY: object_span returned the live span p starts an object of.
    let (state, class) = unsafe { ((*s).state, (*s).class as usize) };
    if state == SpanState::Large {
        // SAFETY: p is a live large (or sampled) object alone in span s.
        unsafe { global::free_large(p, s) };
        return Ok(());
    }
    with_cache(|c| {
        if c.is_last_freed(class, p) {
            return Err(PointerError::DoubleFree);
        }
        // SAFETY: p is a live object of this class (its span says so).
        unsafe { c.free(&HEAP, class, p) };
        Ok(())
    })
}

/// C's `realloc` given only the old address: null `p` allocates. The new
/// block (or `p` itself, when the size still fits its class or a large
/// block can be resized in place) keeps the contents. `Ok(null)` means
/// memory was refused and `p` is untouched.
///
/// # Safety
/// If `p` is a live block and a different block is returned, nobody may
/// use `p` afterwards.
pub unsafe fn realloc(p: *mut u8, size: usize) -> Result<*mut u8, PointerError> {
    if p.is_null() {
        return Ok(malloc(size));
    }
    let s = HEAP.object_span(p);
    if s.is_null() {
        return Err(PointerError::NotOurs);
    }
    // SAFETY: object_span returned the live span p starts an object of.
    let (state, class, large_bytes) = unsafe { ((*s).state, (*s).class as usize, (*s).bytes()) };
    let new_class = crate::sizeclass::class_for(size, c_align(size));
    let old_size = if state == SpanState::Large {
        if new_class.is_none() {
            // SAFETY: p is a live large object.
            if unsafe { HEAP.resize_large_in_place(p, size) } {
                return Ok(p);
            }
        }
        large_bytes
    } else {
        if new_class == Some(class) {
            return Ok(p);
        }
        class_size(class)
    };
    let q = malloc(size);
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct; each holds at least
        // the bytes copied.
        unsafe {
            core::ptr::copy_nonoverlapping(p, q, old_size.min(size));
            free(p)?;
        }
    }
    Ok(q)
}

/// Bytes usable at `p`, or None if `p` is not the start of a live block.
pub fn usable_size(p: *const u8) -> Option<usize> {
    global::usable_size(p)
}

/// Returns free memory to the OS now; the bytes released.
pub fn release_memory() -> usize {
    global::release_memory()
}

/// `pthread_atfork` prepare handler: takes every allocator lock.
pub fn fork_prepare() {
    crate::profile::fork_lock();
    HEAP.fork_lock_all();
}

/// `pthread_atfork` parent handler: releases the locks.
pub fn fork_parent() {
    // SAFETY: fork_prepare took them in this thread.
    unsafe {
        HEAP.fork_unlock_all();
        crate::profile::fork_unlock();
    }
}

/// `pthread_atfork` child handler: releases the locks the forking thread
/// took (it is the child's only thread).
pub fn fork_child() {
    // SAFETY: the forking thread took them in fork_prepare, the registry
    // lock among them, and this is the child handler.
    unsafe {
        with_cache(|c| c.forget_others_after_fork(&HEAP));
        HEAP.fork_unlock_all();
        crate::profile::fork_unlock();
    }
    crate::scavenger::forget_after_fork();
}

/// Settings for the C library, called from its constructor: the
/// background scavenger thread stays off unless `SPANALLOC_SCAVENGER=1` asks
/// for it (a C program should not gain a thread it did not ask for; the
/// scavenger then runs inline, see scavenger.rs).
pub fn c_library_defaults() {
    // SAFETY: getenv with a NUL-terminated name; only the null test is used.
    let asked = unsafe { !libc::getenv(c"SPANALLOC_SCAVENGER".as_ptr()).is_null() };
    if !asked {
        options::set_scavenger(false);
    }
}

/// Registers, once per process, the at-exit report the options ask for
/// (`SPANALLOC_STATS`, `SPANALLOC_DUMP`); the core prints it. The first
/// thread cache to activate registers it too; calling this from a library
/// constructor only makes sure of it early.
pub fn register_exit_report() {
    global::register_exit_report();
}

/// Writes the statistics report to `fd` (JSON if `SPANALLOC_STATS=json`),
/// without allocating.
pub fn write_stats(fd: i32) {
    let mut w = FdWriter::new(fd);
    with_cache(|c| c.publish_counts());
    let st = HEAP.stats_with_huge_pages();
    let _ = if options::get().stats == StatsAtExit::Json {
        st.write_json(&mut w)
    } else {
        st.write_text(&mut w)
    };
}
