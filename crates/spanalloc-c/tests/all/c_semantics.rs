//! The C contract of each allocation function (`tests/c/semantics.c`), one
//! test per case, each run both linked with libspanalloc.a and under
//! `LD_PRELOAD`.

use crate::harness::{run, Program, BOTH};
use std::time::Duration;

pub static SEMANTICS: Program = Program::new("semantics.c");

/// Runs `semantics CASE` both ways; it prints "ok CASE" when every check
/// passed.
fn case(name: &str) {
    for link in BOTH {
        run(
            &mut SEMANTICS.command(link, &[name]),
            Duration::from_secs(60),
        )
        .assert_success()
        .assert_stdout_has(&format!("ok {name}"));
    }
}

/// Declares one test per case of semantics.c.
macro_rules! cases {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            case(stringify!($name));
        }
    )*};
}

cases! {
    /// Every allocation function the program calls resolves to spanalloc.
    symbols;
    /// Sizes from 1 byte to 33 MiB: ours, aligned as C requires, usable
    /// size, contents kept.
    malloc_basic;
    /// `malloc(0)` gives distinct, freeable blocks.
    malloc_zero;
    /// `free(NULL)` does nothing, `errno` untouched.
    free_null;
    /// Successful calls (frees that return memory to the OS included)
    /// leave `errno` alone.
    errno_kept;
    /// `malloc(SIZE_MAX)` and other impossible sizes: null, `ENOMEM`.
    malloc_enomem;
    /// `calloc` memory is zero, also when the block was dirty before.
    calloc_zeroes;
    /// `calloc` overflow: null, `ENOMEM`.
    calloc_overflow;
    /// `realloc` keeps contents through growth and shrinkage;
    /// `realloc(p, 0)` frees and returns null; `realloc(NULL, 0)` allocates.
    realloc_contents;
    /// A refused `realloc`: null, `ENOMEM`, the old block intact.
    realloc_enomem;
    /// `reallocarray` overflow: null, `ENOMEM`, the old block intact.
    reallocarray_overflow;
    /// `posix_memalign`: alignments up to 4 MiB; `EINVAL` for bad ones and
    /// `ENOMEM` for impossible sizes, with `*memptr` and `errno` untouched.
    posix_memalign;
    /// `aligned_alloc`: alignments up to 4 MiB; `EINVAL`, `ENOMEM`.
    aligned_alloc;
    /// `memalign`: as `aligned_alloc`.
    memalign;
    /// `valloc`: page-aligned.
    valloc;
    /// `pvalloc`: page-aligned, size rounded up to pages.
    pvalloc;
    /// `malloc_usable_size`: at least the size asked, all of it writable;
    /// 0 for null and for pointers that are not ours.
    usable_size;
    /// After `malloc_trim` (64 MiB of large blocks freed) and
    /// `spanalloc_release_memory` (50 MiB of small ones), resident memory has
    /// dropped; memory is usable (and calloc zero) afterwards.
    malloc_trim;
    /// The C library's own allocations (strdup, asprintf, open_memstream)
    /// are spanalloc's.
    libc_internal;
    /// glibc's internal names (`__libc_malloc`, ...) are spanalloc's.
    libc_names;
    /// C23 `free_sized` and `free_aligned_sized`.
    sized_frees;
}
