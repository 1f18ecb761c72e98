//! Statistics: counters kept by the heap and the snapshot `stats()` returns.
//! See lib.rs for the overview.
//!
//! Counting never costs the fast path an atomic read-modify-write: thread
//! caches count their own allocations and frees per class with plain
//! (relaxed load + store) updates, and a snapshot adds up the caches of live
//! threads (through the cache registry) and the totals that exited threads
//! left behind. Reading the statistics allocates nothing.

use crate::heap::MHeap;
use crate::os::OsMem;
use crate::sizeclass::{class_size, NUM_CLASSES};
use core::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Counters the heap keeps (all updated off the fast path).
pub struct HeapCounters {
    /// Bytes of arenas reserved and committed.
    pub mapped: AtomicUsize,
    /// Bytes in spans in use (Small or Large).
    pub inuse_spans: AtomicUsize,
    /// Bytes in free spans returned to the OS.
    pub released: AtomicUsize,
    /// Bytes in large objects.
    pub large_live: AtomicUsize,
    /// Large objects allocated / freed since start.
    pub large_allocs: AtomicU64,
    /// Large objects freed since start.
    pub large_frees: AtomicU64,
    /// Spans in use per class.
    pub class_spans: [AtomicUsize; NUM_CLASSES],
    /// Objects sitting in thread caches per class.
    pub class_cached: [AtomicI64; NUM_CLASSES],
    /// Allocations per class by threads that have exited (and by threads
    /// past their exit hook).
    pub class_nmalloc: [AtomicU64; NUM_CLASSES],
    /// Frees per class, likewise.
    pub class_nfree: [AtomicU64; NUM_CLASSES],
}

impl HeapCounters {
    /// All zero.
    pub const fn new() -> Self {
        HeapCounters {
            mapped: AtomicUsize::new(0),
            inuse_spans: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            large_live: AtomicUsize::new(0),
            large_allocs: AtomicU64::new(0),
            large_frees: AtomicU64::new(0),
            class_spans: [const { AtomicUsize::new(0) }; NUM_CLASSES],
            class_cached: [const { AtomicI64::new(0) }; NUM_CLASSES],
            class_nmalloc: [const { AtomicU64::new(0) }; NUM_CLASSES],
            class_nfree: [const { AtomicU64::new(0) }; NUM_CLASSES],
        }
    }
}

/// Statistics of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Bytes per object.
    pub object_size: usize,
    /// Allocations since start.
    pub allocs: u64,
    /// Frees since start.
    pub frees: u64,
    /// Objects in use by the program (allocs − frees).
    pub live_objects: u64,
    /// Objects sitting in thread caches, free but not in their spans.
    pub cached_objects: u64,
    /// Spans of this class in use.
    pub spans: usize,
}

/// A snapshot of the allocator's memory.
///
/// Counters are read one after another while other threads run, so the
/// figures are each exact but not taken at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Bytes in objects the program holds (small objects counted at their
    /// class size, large ones at their page-rounded size).
    pub live_bytes: usize,
    /// Bytes of free objects held in thread caches.
    pub thread_cache_bytes: usize,
    /// Bytes in spans in use (small-object spans and large objects).
    pub span_bytes_in_use: usize,
    /// Bytes of arenas mapped from the OS.
    pub mapped_bytes: usize,
    /// Bytes of free pages returned to the OS.
    pub released_bytes: usize,
    /// Bytes of metadata (pagemap, span records) taken from the OS.
    pub metadata_bytes: usize,
    /// Bytes in large objects.
    pub large_bytes: usize,
    /// Large objects allocated since start.
    pub large_allocs: u64,
    /// Large objects freed since start.
    pub large_frees: u64,
    /// Per size class; index 0 is unused (large objects are counted above).
    pub classes: [ClassStats; NUM_CLASSES],
}

impl<O: OsMem> MHeap<O> {
    /// A snapshot of this heap's statistics.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let mut classes = [ClassStats::default(); NUM_CLASSES];
        for (i, cs) in classes.iter_mut().enumerate().skip(1) {
            cs.object_size = class_size(i);
            cs.allocs = c.class_nmalloc[i].load(Relaxed);
            cs.frees = c.class_nfree[i].load(Relaxed);
        }
        self.caches.lock().add_counts(&mut classes);
        let mut live_bytes = c.large_live.load(Relaxed);
        let mut thread_cache_bytes = 0;
        for (i, cs) in classes.iter_mut().enumerate().skip(1) {
            cs.live_objects = cs.allocs.saturating_sub(cs.frees);
            cs.cached_objects = c.class_cached[i].load(Relaxed).max(0) as u64;
            cs.spans = c.class_spans[i].load(Relaxed);
            live_bytes += cs.live_objects as usize * cs.object_size;
            thread_cache_bytes += cs.cached_objects as usize * cs.object_size;
        }
        Stats {
            live_bytes,
            thread_cache_bytes,
            span_bytes_in_use: c.inuse_spans.load(Relaxed),
            mapped_bytes: c.mapped.load(Relaxed),
            released_bytes: c.released.load(Relaxed),
            metadata_bytes: self.metadata_bytes(),
            large_bytes: c.large_live.load(Relaxed),
            large_allocs: c.large_allocs.load(Relaxed),
            large_frees: c.large_frees.load(Relaxed),
            classes,
        }
    }
}
