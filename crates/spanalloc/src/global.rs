//! The process-wide heap and `SpanAlloc`, the `GlobalAlloc` front door.
//! See lib.rs for the overview.

use crate::cache::MCache;
use crate::heap::MHeap;
use crate::os::LinuxOs;
use crate::sizeclass::{
    class_and_entry, class_for, class_size, free_class_of, FAST_ALIGN, MAX_SMALL_SIZE,
};
use crate::stats::Stats;
use core::alloc::{GlobalAlloc, Layout};

/// The one heap of the process.
pub(crate) static HEAP: MHeap<LinuxOs> = MHeap::new(LinuxOs, true);

#[cfg(not(all(feature = "initial-exec-tls", target_arch = "x86_64")))]
thread_local! {
    /// This thread's cache: constant-initialised and without a destructor,
    /// so access is a plain TLS address computation (see cache.rs).
    static CACHE: MCache = const { MCache::new() };
}

/// Runs `f` on this thread's cache.
#[cfg(not(all(feature = "initial-exec-tls", target_arch = "x86_64")))]
#[inline(always)]
pub(crate) fn with_cache<R>(f: impl FnOnce(&MCache) -> R) -> R {
    CACHE.with(f)
}

/// Runs `f` on this thread's cache, reached with the initial-exec TLS model
/// (see [`ie_tls`]).
#[cfg(all(feature = "initial-exec-tls", target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn with_cache<R>(f: impl FnOnce(&MCache) -> R) -> R {
    // MCache is only used through shared references (its fields are cells
    // and atomics), so handing out `&MCache` to this thread is sound.
    // SAFETY: the pointer is this thread's own zero-filled cache storage, a
    // valid FRESH MCache (tested) that lives as long as the thread.
    f(unsafe { &*ie_tls::cache() })
}

/// The thread cache in a shared library, without `__tls_get_addr`.
///
/// Rust's `thread_local!` in a `cdylib` uses the general-dynamic TLS model:
/// every access calls `__tls_get_addr`, which costs a call on each malloc
/// and free. Stable Rust cannot choose another model, but assembly can: the
/// cache's storage is declared here in `.tbss` and reached with the
/// initial-exec sequence (its offset from the thread pointer is read from
/// the GOT, which the loader fills once), as glibc and jemalloc do. The
/// price is theirs too: a library using it cannot be `dlopen`ed late if
/// the static TLS space is used up; loading it with `LD_PRELOAD` or linking
/// it is fine. Enabled by the `initial-exec-tls` feature (the C library
/// crate turns it on); x86_64 only for now.
#[cfg(all(feature = "initial-exec-tls", target_arch = "x86_64"))]
mod ie_tls {
    use crate::cache::MCache;

    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl spanalloc_thread_cache",
        ".hidden spanalloc_thread_cache",
        ".type spanalloc_thread_cache,@object",
        ".size spanalloc_thread_cache, {size}",
        "spanalloc_thread_cache:",
        ".zero {size}",
        ".popsection",
        size = const core::mem::size_of::<MCache>(),
    );

    const _: () = assert!(core::mem::align_of::<MCache>() <= 64);

    /// This thread's cache storage.
    #[inline(always)]
    pub fn cache() -> *const MCache {
        let p: *const MCache;
        // SAFETY: reads the GOT slot holding the symbol's offset from the
        // thread pointer, and the thread pointer itself (fs:0 holds it on
        // x86_64 Linux); touches nothing else.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + spanalloc_thread_cache@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            );
        }
        p
    }
}

/// The size class serving `layout` by the fast rule, if it applies (small
/// size and alignment at most 16: almost every request), with the entry of
/// the tables it was read from, the one [`dealloc`] reads again.
#[inline(always)]
fn fast_class(size: usize, align: usize) -> Option<(usize, usize)> {
    if size <= MAX_SMALL_SIZE && align <= FAST_ALIGN {
        // Rounding to the alignment is exact for align <= FAST_ALIGN
        // (sizeclass.rs proves it); max(1) keeps a zero size aligned.
        Some(class_and_entry((size.max(1) + align - 1) & !(align - 1)))
    } else {
        None
    }
}

/// The size class serving `(size, align)`, or None for a large object;
/// with the entry a sized free of the block reads, as
/// [`crate::cache::MCache::alloc`] wants it (0: the free does not route).
#[inline(always)]
fn small_class(size: usize, align: usize) -> Option<(usize, usize)> {
    match fast_class(size, align) {
        Some(c) => Some(c),
        // dealloc_other looks for sampled objects without routing.
        None => class_for(size, align).map(|c| (c, 0)),
    }
}

/// Allocates `size` bytes aligned to `align` (a power of two). Null if the
/// size overflows or the OS refuses memory.
#[inline(always)]
pub(crate) fn alloc(size: usize, align: usize) -> *mut u8 {
    if let Some((class, route)) = fast_class(size, align) {
        // By value: a borrowed capture costs the dev build a store and a load.
        return with_cache(move |c| c.alloc(&HEAP, class, route));
    }
    alloc_other(size, align)
}

#[cold]
#[inline(never)]
fn alloc_other(size: usize, align: usize) -> *mut u8 {
    match class_for(size, align) {
        // dealloc_other looks for sampled objects without routing.
        Some(class) => with_cache(|c| c.alloc(&HEAP, class, 0)),
        None => alloc_large(size, align).0,
    }
}

/// A large object from the mheap, sampled by the heap profiler when its
/// turn comes; with whether it needs zeroing.
fn alloc_large(size: usize, align: usize) -> (*mut u8, bool) {
    let r = HEAP.alloc_large(size, align);
    if crate::profile::may_have_samples() {
        crate::profile::maybe_sample_large(r.0, size);
    }
    r
}

/// Frees a large object (or a sampled small one, alone in its span `s`),
/// dropping its profiler record first.
///
/// # Safety
/// `p` must be a live object alone in its Large span `s`.
pub(crate) unsafe fn free_large(p: *mut u8, s: *mut crate::span::MSpan) {
    // SAFETY: s is the Large span of p, which the caller is freeing; the
    // profiler may keep it (true), and then nothing else may touch it.
    unsafe {
        if crate::profile::on_free(s) {
            return;
        }
        HEAP.free_large(p);
    }
    crate::scavenger::on_memory_freed();
}

/// Frees a block given its size and alignment.
///
/// # Safety
/// `p` must be a live block from [`alloc`] with the same `size` and `align`.
#[inline(always)]
pub(crate) unsafe fn dealloc(p: *mut u8, size: usize, align: usize) {
    if size <= MAX_SMALL_SIZE && align <= FAST_ALIGN {
        // Rounding to the alignment is exact for align <= FAST_ALIGN
        // (sizeclass.rs proves it); max(1) keeps a zero size aligned. The
        // class comes from the tables in which the heap profiler routes the
        // sizes that have sampled objects alive (as NUM_CLASSES + class:
        // the cache's slow path then looks for a sampled object).
        let class = free_class_of((size.max(1) + align - 1) & !(align - 1));
        // SAFETY: p is a live object of this size (caller): of this class,
        // or a sampled one of a routed size.
        return with_cache(|c| unsafe { c.free(&HEAP, class, p) });
    }
    // SAFETY: forwarded from the caller.
    unsafe { dealloc_other(p, size, align) }
}

/// # Safety
/// As for [`dealloc`].
#[cold]
#[inline(never)]
unsafe fn dealloc_other(p: *mut u8, size: usize, align: usize) {
    match small_class(size, align) {
        Some((class, _)) => {
            // A sampled small object starts a page and is alone in a Large
            // span; page-aligned pointers are rare enough to look up.
            if crate::profile::may_have_samples() {
                let s = HEAP.large_span_at_page(p);
                // SAFETY: p is a live object (caller), so s is its live span.
                if !s.is_null() && unsafe { (*s).start } == p as usize {
                    // SAFETY: p is a sampled object alone in its Large span.
                    return unsafe { free_large(p, s) };
                }
            }
            // SAFETY: p is a live object of this class (caller).
            with_cache(|c| unsafe { c.free(&HEAP, class, p) })
        }
        None => {
            let s = HEAP.object_span(p);
            // SAFETY: p is a live large object (caller) and s its span.
            unsafe { free_large(p, s) }
        }
    }
}

/// Allocates zeroed memory: small objects are cleared, large ones only when
/// their pages may have been used before.
pub(crate) fn alloc_zeroed(size: usize, align: usize) -> *mut u8 {
    if let Some((class, route)) = small_class(size, align) {
        let p = with_cache(|c| c.alloc(&HEAP, class, route));
        if !p.is_null() {
            // SAFETY: p is a fresh block of at least `size` bytes.
            unsafe { p.write_bytes(0, size) };
        }
        return p;
    }
    let (p, needzero) = alloc_large(size, align);
    if needzero && !p.is_null() {
        // SAFETY: p is a fresh large block of at least `size` bytes.
        unsafe { p.write_bytes(0, size) };
    }
    p
}

/// Resizes a block, in place when the new size keeps the same size class or
/// a large object can grow or shrink over its neighbouring pages.
///
/// # Safety
/// `p` must be a live block from [`alloc`] with `old_size` and `align`;
/// `new_size` rounded up to `align` must not overflow `isize`.
pub(crate) unsafe fn realloc(
    p: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    let old_class = small_class(old_size, align).map(|(c, _)| c);
    let new_class = small_class(new_size, align).map(|(c, _)| c);
    // A sampled block moves: its sized free is routed by its size.
    if old_class.is_some() && old_class == new_class && !is_sampled_small(p) {
        return p;
    }
    if old_class.is_none() && new_class.is_none() {
        // SAFETY: with no size class, p is a live large object (caller).
        if unsafe { HEAP.resize_large_in_place(p, new_size) } {
            return p;
        }
    }
    let q = alloc(new_size, align);
    if !q.is_null() {
        // SAFETY: both blocks are live, distinct, and hold at least the bytes copied.
        unsafe {
            core::ptr::copy_nonoverlapping(p, q, old_size.min(new_size));
            dealloc(p, old_size, align);
        }
    }
    q
}

/// Whether the live small block `p` is a sampled one (see profile.rs: alone
/// in a Large span, at its start).
#[inline]
fn is_sampled_small(p: *mut u8) -> bool {
    crate::profile::may_have_samples() && !HEAP.large_span_at_page(p).is_null()
}

/// Bytes usable in the block at `p` (its class size or large-object size),
/// or None if `p` is not the start of a live block of this heap.
pub fn usable_size(p: *const u8) -> Option<usize> {
    let s = HEAP.object_span(p);
    if s.is_null() {
        return None;
    }
    // SAFETY: object_span returned a live span containing p.
    unsafe {
        Some(match (*s).class {
            0 => (*s).bytes(),
            c => class_size(c as usize),
        })
    }
}

/// A snapshot of the allocator's statistics. Allocates nothing.
pub fn stats() -> Stats {
    with_cache(|c| c.publish_counts());
    HEAP.stats()
}

/// Returns all free memory to the OS now: this thread's cache, the central
/// transfer slots, the heap profiler's spare spans and every free page.
/// Returns the bytes released.
pub fn release_memory() -> usize {
    with_cache(|c| c.flush_all(&HEAP));
    if crate::profile::may_have_samples() {
        crate::profile::release_reserve();
    }
    HEAP.release_free_pages()
}

/// Checks every invariant of the global heap; panics with a description if
/// one is broken. Expensive (walks every span): for tests and debugging.
pub fn check_heap() {
    HEAP.check_invariants();
}

/// The spanalloc memory allocator, for use as the global allocator:
///
/// ```
/// #[global_allocator]
/// static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanAlloc;

// SAFETY: blocks come from the heap, sized and aligned as asked (size
// classes and page runs are checked for both); a block is handed out once
// until freed; null is returned on failure; dealloc and realloc rely on the
// caller's layout, as GlobalAlloc's contract requires.
unsafe impl GlobalAlloc for SpanAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        alloc(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: ptr came from us with this layout.
        unsafe { dealloc(ptr, layout.size(), layout.align()) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        alloc_zeroed(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: ptr came from us with this layout,
        // and new_size rounded to the alignment fits isize.
        unsafe { realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}

/// Writes a heap dump (see the `dump` module) to the file at `path`,
/// creating or truncating it. Allocates nothing. False if the file cannot
/// be written.
pub fn dump_heap(path: &core::ffi::CStr) -> bool {
    // SAFETY: path is a NUL-terminated string; the flags and mode are valid.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return false;
    }
    with_cache(|c| c.publish_counts());
    let ok = {
        let mut w = crate::fault::FdWriter::new(fd);
        HEAP.write_dump(&mut w).is_ok()
    };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    ok
}

/// Whether the at-exit report has been registered (by the first thread
/// cache to activate, or by the C library's constructor).
static EXIT_REPORT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Registers, once per process, the at-exit report the options ask for
/// (`SPANALLOC_STATS`, `SPANALLOC_DUMP`). `atexit` may allocate, so this
/// runs outside every allocator lock, with the caller's cache usable.
pub(crate) fn register_exit_report() {
    use core::sync::atomic::Ordering;
    let o = crate::options::get();
    if o.stats == crate::options::StatsAtExit::Off && o.dump.is_none() && o.profile.is_none() {
        return;
    }
    if EXIT_REPORT.swap(true, Ordering::AcqRel) {
        return;
    }
    extern "C" fn at_exit() {
        exit_report();
    }
    // SAFETY: at_exit is a plain extern "C" function valid for the process's life.
    unsafe { libc::atexit(at_exit) };
}

/// Prints the statistics report to stderr and writes the heap dump and
/// the heap profile, as the options ask. Called at exit.
pub fn exit_report() {
    crate::profile::write_at_exit();
    let o = crate::options::get();
    let mut w = crate::fault::FdWriter::new(2);
    with_cache(|c| c.publish_counts());
    let st = HEAP.stats_with_huge_pages();
    let _ = match o.stats {
        crate::options::StatsAtExit::Off => Ok(()),
        crate::options::StatsAtExit::Text => st.write_text(&mut w),
        crate::options::StatsAtExit::Json => st.write_json(&mut w),
    };
    drop(w);
    if let Some(path) = o.dump {
        dump_heap(path);
    }
}
