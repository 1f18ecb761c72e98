//! The library constructor: the C library's option defaults, the `fork`
//! hooks and the report at exit. See lib.rs.
//!
//! The constructor sits in `.init_array`, so the dynamic loader runs it when
//! libspanalloc.so is loaded (and the C runtime, when libspanalloc.a is
//! linked in), before `main`. Allocations made before it runs need nothing
//! from it: the allocator starts itself on first use.

use spanalloc::raw;

/// The constructor's entry in `.init_array`.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

/// Runs once, when the library is loaded.
extern "C" fn init() {
    // Handlers registered early run last among the prepare handlers and
    // first among the parent and child ones, so other libraries' prepare
    // handlers may still allocate before the allocator's locks are taken.
    // SAFETY: the three handlers are plain functions that stay valid for
    // the life of the process.
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
    // No background scavenger thread unless asked for (see raw.rs).
    raw::c_library_defaults();
    // With SPANALLOC_STATS or SPANALLOC_DUMP set: the report at exit.
    // Registered early, so it runs late, after the program's own atexit
    // handlers have freed what they free.
    raw::register_exit_report();
    // With SPANALLOC_PROFILE (or _RATE, _SIGNAL): sampling from now on, and
    // the thread that writes a profile on the signal (started here, where
    // starting a thread is safe).
    spanalloc::profile::init_from_options();
    spanalloc::profile::start_signal_thread();
}

/// Before `fork`: takes every allocator lock, so the child starts with a
/// consistent heap.
extern "C" fn fork_prepare() {
    raw::fork_prepare();
}

/// After `fork`, in the parent: releases the locks.
extern "C" fn fork_parent() {
    raw::fork_parent();
}

/// After `fork`, in the child: releases the locks.
extern "C" fn fork_child() {
    raw::fork_child();
}
