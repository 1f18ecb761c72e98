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
    /// Bytes of free pages not backed by memory: returned to the OS, or
    /// never used since the arena was mapped.
    pub released: AtomicUsize,
    /// Bytes in free page runs (a copy of the page heap's count, readable
    /// without its lock).
    pub free: AtomicUsize,
    /// Bytes in large objects.
    pub large_live: AtomicUsize,
    /// Large objects allocated / freed since start.
    pub large_allocs: AtomicU64,
    /// Large objects freed since start.
    pub large_frees: AtomicU64,
    /// Spans in use per class.
    pub class_spans: [AtomicUsize; NUM_CLASSES],
    /// Objects per class handed out by the mcentral to thread caches (or,
    /// for caches that bypass themselves, straight to the program) and not
    /// given back: live objects plus those sitting free in thread caches.
    pub class_out: [AtomicI64; NUM_CLASSES],
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
            free: AtomicUsize::new(0),
            large_live: AtomicUsize::new(0),
            large_allocs: AtomicU64::new(0),
            large_frees: AtomicU64::new(0),
            class_spans: [const { AtomicUsize::new(0) }; NUM_CLASSES],
            class_out: [const { AtomicI64::new(0) }; NUM_CLASSES],
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

/// The per-class columns of the report (JSON uses the same names), with
/// their widths in the text table.
const CLASS_COLUMNS: [(&str, usize); 9] = [
    ("class", 5),
    ("size", 8),
    ("allocs", 14),
    ("frees", 14),
    ("live", 12),
    ("cached", 10),
    ("spans", 7),
    ("bytes_in_use", 14),
    ("util%", 6),
];

impl ClassStats {
    /// The values of [`CLASS_COLUMNS`] for class `class`.
    fn fields(&self, class: usize) -> [u64; 9] {
        [
            class as u64,
            self.object_size as u64,
            self.allocs,
            self.frees,
            self.live_objects,
            self.cached_objects,
            self.spans as u64,
            self.bytes_in_use(),
            self.utilisation_percent(class),
        ]
    }

    /// Bytes in objects the program holds.
    pub fn bytes_in_use(&self) -> u64 {
        self.live_objects * self.object_size as u64
    }

    /// Bytes in use as a percentage of the bytes in the class's spans.
    pub fn utilisation_percent(&self, class: usize) -> u64 {
        let span_bytes = (self.spans * crate::sizeclass::span_bytes(class)) as u64;
        (self.bytes_in_use() * 100)
            .checked_div(span_bytes)
            .unwrap_or(0)
            .min(100)
    }
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
    /// Bytes of free pages not backed by memory: returned to the OS (or
    /// never used since they were mapped).
    pub released_bytes: usize,
    /// Bytes in free page runs of the page heap (backed or not).
    pub free_bytes: usize,
    /// Bytes the heap holds that may be resident: mapped less released (an
    /// upper bound on the heap's share of RSS).
    pub held_bytes: usize,
    /// Bytes of the heap backed by transparent huge pages; filled in by
    /// [`MHeap::stats_with_huge_pages`] (it reads /proc), 0 otherwise.
    pub huge_page_bytes: usize,
    /// Bytes of metadata (pagemap, span records) taken from the OS.
    pub metadata_bytes: usize,
    /// Bytes in large objects.
    pub large_bytes: usize,
    /// Large objects allocated since start.
    pub large_allocs: u64,
    /// Large objects freed since start.
    pub large_frees: u64,
    /// Threads with an active cache (they share the thread-cache budget).
    pub thread_caches: usize,
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
            // Handed out by the mcentral but not live: free in a thread cache.
            let out = c.class_out[i].load(Relaxed).max(0) as u64;
            cs.cached_objects = out.saturating_sub(cs.live_objects);
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
            free_bytes: c.free.load(Relaxed),
            held_bytes: self.held_bytes(),
            huge_page_bytes: 0,
            metadata_bytes: self.metadata_bytes(),
            large_bytes: c.large_live.load(Relaxed),
            large_allocs: c.large_allocs.load(Relaxed),
            large_frees: c.large_frees.load(Relaxed),
            thread_caches: self.active_caches.load(Relaxed),
            classes,
        }
    }
}

impl<O: OsMem> MHeap<O> {
    /// [`MHeap::stats`] with the huge-page coverage read from /proc.
    pub fn stats_with_huge_pages(&self) -> Stats {
        let mut st = self.stats();
        st.huge_page_bytes = self.huge_page_bytes().unwrap_or(0);
        st
    }
}

impl Stats {
    /// The heap-wide figures, as (name, bytes-or-count) pairs, in report order.
    fn totals(&self) -> [(&'static str, u64); 14] {
        [
            ("live_bytes", self.live_bytes as u64),
            ("thread_cache_bytes", self.thread_cache_bytes as u64),
            ("span_bytes_in_use", self.span_bytes_in_use as u64),
            ("mapped_bytes", self.mapped_bytes as u64),
            ("committed_bytes", self.mapped_bytes as u64),
            ("held_bytes", self.held_bytes as u64),
            ("huge_page_bytes", self.huge_page_bytes as u64),
            ("free_bytes", self.free_bytes as u64),
            ("released_bytes", self.released_bytes as u64),
            ("metadata_bytes", self.metadata_bytes as u64),
            ("large_bytes", self.large_bytes as u64),
            ("large_allocs", self.large_allocs),
            ("large_frees", self.large_frees),
            ("thread_caches", self.thread_caches as u64),
        ]
    }

    /// Classes that have seen any use.
    fn used_classes(&self) -> impl Iterator<Item = (usize, &ClassStats)> {
        self.classes
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, c)| c.allocs > 0 || c.spans > 0)
    }

    /// Writes the report as a text table.
    pub fn write_text(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        writeln!(w, "spanalloc statistics")?;
        for (name, v) in self.totals() {
            writeln!(w, "  {name:<20} {v:>16}")?;
        }
        for (name, width) in CLASS_COLUMNS {
            write!(w, "{name:>width$} ")?;
        }
        writeln!(w)?;
        for (i, c) in self.used_classes() {
            for ((_, width), v) in CLASS_COLUMNS.iter().zip(c.fields(i)) {
                write!(w, "{v:>width$} ")?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// Writes the report as one JSON object, on a line of its own.
    pub fn write_json(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        self.write_json_object(w)?;
        writeln!(w)
    }

    /// Writes the report as one JSON object (no newline).
    pub fn write_json_object(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        write!(w, "{{")?;
        for (name, v) in self.totals() {
            write!(w, "\"{name}\":{v},")?;
        }
        write!(w, "\"classes\":[")?;
        for (n, (i, c)) in self.used_classes().enumerate() {
            if n > 0 {
                write!(w, ",")?;
            }
            write!(w, "{{")?;
            for (k, ((name, _), v)) in CLASS_COLUMNS.iter().zip(c.fields(i)).enumerate() {
                let sep = if k > 0 { "," } else { "" };
                write!(w, "{sep}\"{name}\":{v}")?;
            }
            write!(w, "}}")?;
        }
        write!(w, "]}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        let mut classes = [ClassStats::default(); NUM_CLASSES];
        classes[3] = ClassStats {
            object_size: 24,
            allocs: 10,
            frees: 4,
            live_objects: 6,
            cached_objects: 2,
            spans: 1,
        };
        Stats {
            live_bytes: 144,
            thread_cache_bytes: 48,
            span_bytes_in_use: 8192,
            mapped_bytes: 64 << 20,
            released_bytes: 0,
            free_bytes: 0,
            held_bytes: 0,
            huge_page_bytes: 0,
            metadata_bytes: 1 << 20,
            large_bytes: 0,
            large_allocs: 0,
            large_frees: 0,
            thread_caches: 0,
            classes,
        }
    }

    #[test]
    fn text_report_has_totals_and_used_classes_only() {
        let mut s = String::new();
        sample().write_text(&mut s).unwrap();
        assert!(s.starts_with("spanalloc statistics\n"));
        assert!(s.contains("live_bytes"));
        let rows: Vec<_> = s
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert_eq!(rows.len(), 1, "{s}");
        let cols: Vec<_> = rows[0].split_whitespace().collect();
        assert_eq!(cols, ["3", "24", "10", "4", "6", "2", "1", "144", "1"]);
    }

    #[test]
    fn json_report_is_well_formed() {
        let mut s = String::new();
        sample().write_json(&mut s).unwrap();
        // A minimal structural check: balanced braces and brackets, the
        // fields present, no trailing comma before a closer.
        let depth = s.chars().try_fold(0i32, |d, c| match c {
            '{' | '[' => Some(d + 1),
            '}' | ']' => (d > 0).then(|| d - 1),
            _ => Some(d),
        });
        assert_eq!(depth, Some(0), "{s}");
        assert!(!s.contains(",]") && !s.contains(",}"), "{s}");
        assert!(
            s.contains("\"classes\":[{\"class\":3,\"size\":24,\"allocs\":10"),
            "{s}"
        );
        assert!(s.contains("\"mapped_bytes\":67108864"), "{s}");
    }
}
