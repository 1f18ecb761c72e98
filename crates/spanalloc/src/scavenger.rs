//! The scavenger: returns idle free pages to the OS, as the Go runtime's
//! background scavenger does. See lib.rs for the overview.
//!
//! Policy, one pass at a time ([`MHeap::scavenge`]):
//!
//! * Keep some free memory: as long as the free pages still backed by memory
//!   ("retained") are at most `retain_percent` of the memory in use, nothing
//!   is returned, so a program that frees and allocates in waves does not
//!   pay a page fault for every page of every wave.
//! * Decay: a free run is returned only once it has stayed free for
//!   `decay_ms`, so a burst of frees followed by allocations causes no churn.
//!   This holds for the pages of large objects too: a program that frees
//!   and allocates big buffers in turn reuses their pages without a page
//!   fault. A merged run is as old as the mean of its parts, weighted by the
//!   pages each may have backed (heap.rs, `merge_flags`), so a small piece
//!   freed again and again does not keep a big old run from going back.
//! * Huge pages: when the kernel backs the arenas with transparent huge
//!   pages (THP `always`, or `madvise` with the `huge_pages` option), the part of a
//!   free run inside a 2 MiB chunk is returned only if the chunk is mostly
//!   free: the run covers at least half of it, or the chunk's free runs
//!   together cover more than half. Returning a few pages of a huge page
//!   that is mostly in use would split it for little gain; a chunk pinned by
//!   a few live spans among free runs is returned all the same, so a heap
//!   whose objects were nearly all freed (a few left scattered, as thread
//!   caches leave them) goes back to the OS.
//!
//! Where the work happens: a background thread (`start`), started only
//! once the heap retains enough free memory to be worth returning, so short
//! programs never get one; it blocks every signal. Each tick it also drains
//! the central transfer slots, whose parked objects would otherwise keep
//! their spans (and pages) from coming back to the heap. With the thread
//! switched off (`SPANALLOC_SCAVENGER=0`, the C library's default: a C
//! program that gains a thread it did not ask for can no longer, say,
//! `unshare(CLONE_NEWUSER)`), the same pass runs inline on the slow paths
//! that free memory, at most once per tick; an idle program then keeps its
//! free pages until it next frees. `release_memory()` returns everything at
//! once; near the soft memory limit the heap returns every free page before
//! it uses more, and a large object freed while the heap holds more than
//! the limit returns its pages at once, as many as the excess (heap.rs).

use crate::global::HEAP;
use crate::heap::MHeap;
use crate::options;
use crate::os::{linux::thp_mode, linux::ThpMode, sleep_ms, OsMem};
use crate::sizeclass::PAGE_SHIFT;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A transparent huge page.
pub const HUGE_PAGE: usize = 2 << 20;

/// Retained memory at which the background thread is started.
pub const START_BYTES: usize = 16 << 20;

/// The scavenger's policy (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// How long a run must stay free before it is returned.
    pub decay_ms: u64,
    /// Free memory kept, as a percentage of memory in use.
    pub retain_percent: u64,
    /// Return whole huge pages only (and parts of ones mostly free).
    pub huge_page_aware: bool,
}

impl Policy {
    /// The policy the options ask for.
    pub fn from_options() -> Self {
        let o = options::get();
        Policy {
            decay_ms: o.decay_ms,
            retain_percent: o.retain_percent,
            // Whether the kernel backs the arenas with huge pages: always
            // under THP `always`, under `madvise` when we ask for them.
            huge_page_aware: match thp_mode() {
                ThpMode::Always => true,
                ThpMode::Madvise => o.huge_pages,
                ThpMode::Never => false,
            },
        }
    }
}

/// Calls `release` for the parts of `[start, start + npages)` the
/// huge-page rule lets go: the part inside each 2 MiB chunk that the run
/// covers at least half of, or whose free pages (`free_in_chunk(chunk)`, in
/// bytes, asked only then) are more than half of it.
fn huge_page_parts(
    start: usize,
    npages: usize,
    free_in_chunk: &mut dyn FnMut(usize) -> usize,
    release: &mut dyn FnMut(usize, usize),
) {
    let end = start + (npages << PAGE_SHIFT);
    let mut chunk = start & !(HUGE_PAGE - 1);
    while chunk < end {
        let lo = start.max(chunk);
        let hi = end.min(chunk + HUGE_PAGE);
        if hi - lo >= HUGE_PAGE / 2 || free_in_chunk(chunk) > HUGE_PAGE / 2 {
            release(lo, (hi - lo) >> PAGE_SHIFT);
        }
        chunk += HUGE_PAGE;
    }
}

impl<O: OsMem> MHeap<O> {
    /// One pass of the scavenger at time `now_ms` (the OS layer's clock):
    /// returns runs free for at least the decay time until the retained free
    /// memory is down to the target. Returns the bytes returned.
    pub fn scavenge(&self, now_ms: u64, p: Policy) -> usize {
        let inuse = self.counters.inuse_spans.load(Ordering::Relaxed);
        let target = inuse / 100 * p.retain_percent as usize;
        let retained = self.retained_bytes();
        if retained <= target {
            return 0;
        }
        self.release_runs(retained - target, |run, release| {
            if now_ms.saturating_sub(run.freed_at) < p.decay_ms {
                return;
            }
            if p.huge_page_aware {
                // SAFETY: release_runs calls us under the heap lock, with a
                // run on the free lists.
                let mut free_in_chunk = |chunk| unsafe { self.free_bytes_in_chunk(run, chunk) };
                huge_page_parts(run.start, run.npages, &mut free_in_chunk, release);
            } else {
                release(run.start, run.npages);
            }
        })
    }

    /// Bytes by which the memory held is over the soft limit (0 with no
    /// limit): what a large free returns at once (heap.rs), without waiting
    /// for the next pass.
    pub fn over_limit_bytes(&self) -> usize {
        match options::memory_limit() as usize {
            0 => 0,
            limit => self.held_bytes().saturating_sub(limit),
        }
    }

    /// Whether the memory held is over the soft limit.
    pub fn over_limit(&self) -> bool {
        let limit = options::memory_limit() as usize;
        limit != 0 && self.held_bytes() > limit
    }

    /// Moves every batch parked in the transfer slots back into its spans.
    pub fn drain_transfer_slots(&self) {
        for (class, central) in self.central.iter().enumerate().skip(1) {
            central.drain_transfer(self, class);
        }
    }
}

static STARTED: AtomicBool = AtomicBool::new(false);
/// When the last inline pass ran (the OS layer's clock, ms).
static LAST_INLINE_PASS: AtomicU64 = AtomicU64::new(0);

/// Called from slow paths that hold no allocator lock, after memory went
/// back to the heap. Starts the background scavenger of the process's heap
/// if it is wanted and not running (enough retained memory, or the memory
/// limit passed, and the option on); without the thread (option off, as in
/// the C library by default), runs a scavenger pass here instead, at most
/// once per tick.
pub(crate) fn on_memory_freed() {
    if STARTED.load(Ordering::Relaxed) {
        return;
    }
    if HEAP.retained_bytes() < START_BYTES && !HEAP.over_limit() {
        return;
    }
    let p = Policy::from_options();
    if options::get().scavenger {
        if !STARTED.swap(true, Ordering::AcqRel) {
            start();
        }
        return;
    }
    let now = HEAP.os().now_ms();
    let last = LAST_INLINE_PASS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < tick_ms(p) {
        return;
    }
    if LAST_INLINE_PASS
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        pass(p);
    }
}

/// Time between passes.
fn tick_ms(p: Policy) -> u64 {
    if HEAP.over_limit() {
        10
    } else {
        (p.decay_ms / 4).clamp(10, 1000)
    }
}

/// One pass over the process's heap: drain the transfer slots, then return
/// what the policy (or the memory limit) says.
fn pass(p: Policy) {
    HEAP.drain_transfer_slots();
    if HEAP.over_limit() {
        HEAP.release_free_pages();
    } else {
        HEAP.scavenge(HEAP.os().now_ms(), p);
    }
}

/// Creates the scavenger thread (detached), with every signal blocked.
fn start() {
    extern "C" fn scavenger_main(_: *mut libc::c_void) -> *mut libc::c_void {
        loop {
            sleep_ms(tick_ms(Policy::from_options()));
            pass(Policy::from_options());
        }
    }
    // The thread inherits the creator's signal mask: block everything while
    // creating it, so that no signal meant for the program (a SIGTERM it
    // waits for with sigwait, say) is ever delivered to the scavenger.
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut all: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `all` and `old` are valid sigsets owned here.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let mut tid: libc::pthread_t = 0;
    // SAFETY: tid is a valid out-pointer; default attributes; the function
    // runs forever and needs no argument. pthread_create may allocate: no
    // allocator lock is held by our callers.
    let ok = unsafe {
        libc::pthread_create(
            &mut tid,
            core::ptr::null(),
            scavenger_main,
            core::ptr::null_mut(),
        )
    } == 0;
    // SAFETY: restores the caller's own mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    if ok {
        // SAFETY: tid is the thread we just created.
        unsafe { libc::pthread_detach(tid) };
    } else {
        STARTED.store(false, Ordering::Release);
    }
}

/// In a `fork()` child the scavenger thread does not exist: let it start
/// again when wanted.
pub(crate) fn forget_after_fork() {
    STARTED.store(false, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::round_up;
    use crate::sizeclass::PAGE_SIZE;

    #[test]
    fn huge_page_rule_keeps_small_pieces_of_busy_chunks() {
        let mb = 1 << 20;
        let mut got = vec![];
        // 4 MiB from 0.25 MiB into a chunk: 1.75 MiB of the first chunk
        // (over half: returned), all of the second (returned), 0.25 MiB of
        // the third (kept).
        // The chunks around it are busy (a quarter free).
        let busy = &mut |_| HUGE_PAGE / 4;
        huge_page_parts(
            HUGE_PAGE * 10 + mb / 4,
            (4 * mb) >> PAGE_SHIFT,
            busy,
            &mut |a, n| got.push((a, n)),
        );
        assert_eq!(
            got,
            vec![
                (HUGE_PAGE * 10 + mb / 4, (7 * mb / 4) >> PAGE_SHIFT),
                (HUGE_PAGE * 11, HUGE_PAGE >> PAGE_SHIFT)
            ]
        );
        got.clear();
        // A 256 KiB run inside a chunk: kept.
        let small = (HUGE_PAGE * 3 + mb, (mb / 4) >> PAGE_SHIFT);
        huge_page_parts(small.0, small.1, busy, &mut |a, n| got.push((a, n)));
        assert!(got.is_empty());
        // The same run in a chunk that is mostly free (a few live spans
        // among free runs): returned.
        let mostly_free = &mut |chunk| {
            assert_eq!(chunk, HUGE_PAGE * 3);
            HUGE_PAGE / 2 + PAGE_SIZE
        };
        huge_page_parts(small.0, small.1, mostly_free, &mut |a, n| got.push((a, n)));
        assert_eq!(got, vec![small]);
        assert_eq!(round_up(HUGE_PAGE + 1, HUGE_PAGE), 2 * HUGE_PAGE);
    }

    use crate::heap::tests::test_heap;
    use core::sync::atomic::Ordering::SeqCst;

    const BUDGET: usize = (32 << 20) + (8 << 20) + 2 * crate::pagemap::ARENA_SIZE;

    fn dirty_then_free(heap: &MHeap<crate::os::fake::FakeOs>, bytes: usize) {
        let blocks: Vec<_> = (0..bytes / (512 << 10))
            .map(|_| heap.alloc_large(512 << 10, 8).0)
            .collect();
        for &p in &blocks {
            // SAFETY: a live 512 KiB block.
            unsafe { p.write_bytes(1, 512 << 10) };
        }
        for p in blocks {
            // SAFETY: live, freed once.
            unsafe { heap.free_large(p) };
        }
    }

    #[test]
    fn nothing_is_returned_before_the_decay_time() {
        let heap = test_heap(BUDGET);
        heap.os().clock_ms.store(1_000, SeqCst);
        dirty_then_free(heap, 16 << 20);
        let p = Policy {
            decay_ms: 500,
            retain_percent: 0,
            huge_page_aware: false,
        };
        assert_eq!(heap.scavenge(1_499, p), 0, "still within the decay time");
        assert_eq!(heap.scavenge(1_500, p), 16 << 20);
        assert_eq!(heap.retained_bytes(), 0);
        assert_eq!(heap.scavenge(5_000, p), 0);
        heap.check_invariants();
    }

    #[test]
    fn a_freed_large_object_waits_for_the_decay_like_any_free_run() {
        let heap = test_heap(BUDGET);
        heap.os().clock_ms.store(2_000, SeqCst);
        let (p, _) = heap.alloc_large(32 << 20, 8);
        // SAFETY: a live 32 MiB block, then freed once.
        unsafe {
            p.write_bytes(1, 32 << 20);
            heap.free_large(p);
        }
        assert_eq!(heap.retained_bytes(), 32 << 20, "kept for reuse");
        let policy = Policy {
            decay_ms: 1_000,
            retain_percent: 10,
            huge_page_aware: true,
        };
        assert_eq!(heap.scavenge(2_999, policy), 0);
        assert_eq!(heap.scavenge(3_000, policy), 32 << 20, "nothing in use");
        assert_eq!(heap.held_bytes(), 0);
        heap.check_invariants();
    }

    #[test]
    fn a_piece_freed_again_and_again_does_not_keep_an_old_run_young() {
        let heap = test_heap(BUDGET);
        let policy = Policy {
            decay_ms: 1_000,
            retain_percent: 0,
            huge_page_aware: false,
        };
        heap.os().clock_ms.store(1_000, SeqCst);
        let (big, _) = heap.alloc_large(32 << 20, 8);
        // SAFETY: a live 32 MiB block, then freed once.
        unsafe {
            big.write_bytes(1, 32 << 20);
            heap.free_large(big);
        }
        // Every 100 ms a 1 MiB object is carved from the front of the old
        // run and freed back into it.
        for t in (1_100..=3_000).step_by(100) {
            heap.os().clock_ms.store(t, SeqCst);
            let (q, _) = heap.alloc_large(1 << 20, 8);
            assert_eq!(q, big);
            // SAFETY: live, freed once.
            unsafe { heap.free_large(q) };
        }
        // The run's age is mostly that of its 31 MiB freed at 1 000 ms.
        assert_eq!(heap.scavenge(3_000, policy), 32 << 20);
        heap.check_invariants();
    }

    #[test]
    fn a_share_of_the_heap_in_use_is_kept_free() {
        let heap = test_heap(BUDGET);
        let (live, _) = heap.alloc_large(40 << 20, 8); // 40 MiB in use
        dirty_then_free(heap, 16 << 20);
        let p = Policy {
            decay_ms: 0,
            retain_percent: 25,
            huge_page_aware: false,
        };
        let released = heap.scavenge(10, p);
        // Keep 25% of 40 MiB = 10 MiB: return the other 6 MiB, in whole runs.
        assert!(released >= 6 << 20, "released {released}");
        assert!(heap.retained_bytes() <= 10 << 20);
        heap.check_invariants();
        // SAFETY: live, freed once.
        unsafe { heap.free_large(live) };
        heap.check_invariants();
    }

    #[test]
    fn huge_page_aware_passes_keep_small_runs_in_busy_chunks() {
        let heap = test_heap(BUDGET);
        // Fill 4 MiB with 64 KiB blocks, then free every other one: free runs
        // of 64 KiB between live blocks, nothing worth a huge page.
        let blocks: Vec<_> = (0..64).map(|_| heap.alloc_large(64 << 10, 8).0).collect();
        for &p in &blocks {
            // SAFETY: a live 64 KiB block.
            unsafe { p.write_bytes(1, 64 << 10) };
        }
        for p in blocks.iter().step_by(2) {
            // SAFETY: live, freed once.
            unsafe { heap.free_large(*p) };
        }
        let before = heap.os().decommitted.load(SeqCst);
        let aware = Policy {
            decay_ms: 0,
            retain_percent: 0,
            huge_page_aware: true,
        };
        heap.scavenge(10, aware);
        assert_eq!(
            heap.os().decommitted.load(SeqCst),
            before,
            "no huge page split for 64 KiB"
        );
        let plain = Policy {
            huge_page_aware: false,
            ..aware
        };
        assert_eq!(heap.scavenge(10, plain), 32 * (64 << 10));
        heap.check_invariants();
    }

    #[test]
    fn huge_page_aware_passes_return_chunks_pinned_by_a_few_live_spans() {
        let heap = test_heap(BUDGET);
        // 8 MiB of 64 KiB blocks; keep one block in eight: each chunk holds
        // 256 KiB in use and 1.75 MiB free, in runs of 448 KiB (each under
        // half a chunk, but together most of it).
        let blocks: Vec<_> = (0..128).map(|_| heap.alloc_large(64 << 10, 8).0).collect();
        for &p in &blocks {
            // SAFETY: a live 64 KiB block.
            unsafe { p.write_bytes(1, 64 << 10) };
        }
        let mut kept = Vec::new();
        for (i, &p) in blocks.iter().enumerate() {
            if i % 8 == 0 {
                kept.push(p);
            } else {
                // SAFETY: live, freed once.
                unsafe { heap.free_large(p) };
            }
        }
        let aware = Policy {
            decay_ms: 0,
            retain_percent: 0,
            huge_page_aware: true,
        };
        assert_eq!(heap.scavenge(10, aware), 112 * (64 << 10));
        assert_eq!(heap.retained_bytes(), 0);
        heap.check_invariants();
        for p in kept {
            // SAFETY: live, freed once.
            unsafe { heap.free_large(p) };
        }
        heap.check_invariants();
    }
}
