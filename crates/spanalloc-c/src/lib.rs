//! libspanalloc: spanalloc as the C library's `malloc` and C++'s
//! `operator new`, for any Linux program.
//!
//! ```sh
//! LD_PRELOAD=target/release/libspanalloc.so program        # no rebuild
//! cc prog.o -Ltarget/release -lspanalloc                   # dynamic link
//! cc prog.o -Wl,--whole-archive target/release/libspanalloc.a \
//!    -Wl,--no-whole-archive -lpthread -ldl -lm             # static link
//! ```
//!
//! (`--whole-archive` because the shims and the library constructor may sit
//! in several members of the archive; without it the linker could take
//! `malloc` from spanalloc and `calloc` from the C library.) The library
//! must be in the process from the start: loaded later with `dlopen`, it
//! would be handed blocks the C library allocated before, and refuse them.
//! `include/spanalloc.h` declares spanalloc's own calls.
//!
//! This crate is the thin edge of the allocator (STYLE.md, point 4): every
//! exported function is a few lines over `spanalloc::raw`, which holds the
//! C semantics that need the allocator's internals (frees without a size,
//! C alignment, the fork hooks, the reports). What is left here is the C
//! contract itself: `errno`, `EINVAL` for bad alignments, `realloc(p, 0)`,
//! page rounding, and aborting on a bad pointer.
//!
//! | module | exports |
//! |---|---|
//! | [`malloc`] | `malloc`, `free`, `calloc`, `realloc`, `reallocarray`, `free_sized`, `free_aligned_sized`, `malloc_usable_size` |
//! | [`memalign`] | `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc` |
//! | [`glibc`] | glibc's internal names (`__libc_malloc`, …), `malloc_trim`, `malloc_stats` |
//! | [`cxx`] | every `operator new` and `operator delete` (Itanium C++ ABI names) |
//! | [`extension`] | spanalloc's own calls, declared in `include/spanalloc.h` |
//! | [`init`] | the library constructor: `pthread_atfork` hooks, the report at exit |
//!
//! Every failure returns null with `errno` set to `ENOMEM` (or `EINVAL` for
//! a bad alignment), as POSIX asks. A pointer that spanalloc did not hand
//! out, passed to `free`, `realloc` or `operator delete`, stops the program
//! with a message naming the call and the pointer (glibc does the same for
//! the cases it notices). `SPANALLOC_CHECK=1` makes that check complete
//! (double frees included); `SPANALLOC_STATS=1` prints the statistics
//! report on stderr at exit.
//!
//! The shims never panic. Should the core panic (a broken invariant caught
//! in checked mode), the panic cannot unwind out of an `extern "C"`
//! function: Rust aborts the process there.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod cxx;
pub mod extension;
pub mod glibc;
pub mod init;
pub mod malloc;
pub mod memalign;

use core::ffi::{c_int, c_void};

/// Sets the calling thread's `errno`.
#[inline]
fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno, always valid.
    unsafe { *libc::__errno_location() = e };
}

/// Passes a block on to C, setting `errno` to `ENOMEM` if it is null.
#[inline(always)]
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}
