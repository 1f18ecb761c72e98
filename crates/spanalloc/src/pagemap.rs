//! pagemap: maps any address to the span that holds it, in O(1).
//! See lib.rs for the overview.
//!
//! A two-level radix tree over the 48-bit address space, as in the Go
//! runtime's `mheap_.arenas`: the top level has one slot per 64 MiB arena
//! (2^22 slots, 32 MiB of address space that is touched only where arenas
//! exist); the second level, one per arena in use, has a slot per 8 KiB page.
//! Lookups take no lock: slots are only ever filled in (under the heap lock)
//! and read with acquire loads, which are plain loads on x86_64 and aarch64.

use crate::os::OsMem;
use crate::sizeclass::PAGE_SHIFT;
use crate::span::MSpan;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// log2 of the arena size.
pub const ARENA_SHIFT: usize = 26;
/// Bytes per arena: the unit in which the heap reserves address space.
pub const ARENA_SIZE: usize = 1 << ARENA_SHIFT;
/// Address bits the pagemap covers (user space on x86_64 and aarch64).
pub const ADDR_BITS: usize = 48;
/// Slots in the top level.
const L1_ENTRIES: usize = 1 << (ADDR_BITS - ARENA_SHIFT);
/// Pages per arena: slots in a second-level node.
pub const PAGES_PER_ARENA: usize = 1 << (ARENA_SHIFT - PAGE_SHIFT);

type Root = [AtomicPtr<ArenaPages>; L1_ENTRIES];

/// Second level: the span of each page of one arena, and which of its
/// pages have been returned to the OS (Go keeps the same "scavenged" bits
/// per page). Released bits are read and written only under the heap lock;
/// they are atomics only so the node can be shared with lock-free readers
/// of `spans`.
#[repr(C)]
struct ArenaPages {
    spans: [AtomicPtr<MSpan>; PAGES_PER_ARENA],
    released: [AtomicU64; PAGES_PER_ARENA / 64],
}

/// The address → span map.
///
/// Invariants: `root`, once set, never changes; a top-level slot, once set,
/// never changes; nodes are never freed. Writers hold the heap lock. Which
/// page slots must be exact is stated on [`MSpan`].
pub struct PageMap {
    root: AtomicPtr<Root>,
    /// Bytes of metadata obtained from the OS for the map.
    /// Bytes of arena nodes taken from the OS.
    node_bytes: core::sync::atomic::AtomicUsize,
}

impl PageMap {
    /// An empty map; the top level is mapped on first use.
    pub const fn new() -> Self {
        PageMap {
            root: AtomicPtr::new(null_mut()),
            node_bytes: core::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The span recorded for the page holding `addr`, or null if the address
    /// is not in an arena of this heap. A non-null result may be stale for
    /// pages inside free spans or inside large objects: callers check
    /// `contains` and `state` on the span.
    #[inline]
    pub fn lookup(&self, addr: usize) -> *mut MSpan {
        let root = self.root.load(Ordering::Acquire);
        let l1 = addr >> ARENA_SHIFT;
        if root.is_null() || l1 >= L1_ENTRIES {
            return null_mut();
        }
        // SAFETY: root points to L1_ENTRIES slots (invariant) and l1 is in range.
        let node = unsafe { (*root)[l1].load(Ordering::Acquire) };
        if node.is_null() {
            return null_mut();
        }
        // SAFETY: a set slot points to a live node that is never freed.
        unsafe {
            (*node).spans[(addr >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)].load(Ordering::Acquire)
        }
    }

    /// Bytes of metadata the map may have resident: its arena nodes, and of
    /// the 32 MiB top level only the pages its slots in use can have
    /// touched (one 4 KiB page per node at most; the rest is address space
    /// that is never touched).
    pub fn os_bytes(&self) -> usize {
        let nodes = self.node_bytes.load(Ordering::Relaxed) / core::mem::size_of::<ArenaPages>();
        nodes * (core::mem::size_of::<ArenaPages>() + 4096)
    }

    /// Makes sure every arena in `[base, base + size)` has a node. Returns
    /// false if the OS refuses memory (nodes made so far stay).
    /// Must be called with the heap lock held.
    pub fn ensure(&self, os: &impl OsMem, base: usize, size: usize) -> bool {
        if base + size > 1 << ADDR_BITS {
            return false;
        }
        let mut root = self.root.load(Ordering::Acquire);
        if root.is_null() {
            root = map_zeroed(os, core::mem::size_of::<Root>()).cast();
            if root.is_null() {
                return false;
            }
            self.root.store(root, Ordering::Release);
        }
        let mut a = base >> ARENA_SHIFT;
        while a < (base + size).div_ceil(ARENA_SIZE) {
            // SAFETY: root is the live top level; a < L1_ENTRIES (checked bound above).
            let slot = unsafe { &(*root)[a] };
            if slot.load(Ordering::Acquire).is_null() {
                let node: *mut ArenaPages =
                    map_zeroed(os, core::mem::size_of::<ArenaPages>()).cast();
                if node.is_null() {
                    return false;
                }
                self.node_bytes
                    .fetch_add(core::mem::size_of::<ArenaPages>(), Ordering::Relaxed);
                slot.store(node, Ordering::Release);
            }
            a += 1;
        }
        true
    }

    /// Records `span` for the page holding `addr`.
    ///
    /// # Safety
    /// The arena of `addr` must have a node ([`PageMap::ensure`]) and the
    /// caller must hold the heap lock.
    #[inline]
    pub unsafe fn set(&self, addr: usize, span: *mut MSpan) {
        let root = self.root.load(Ordering::Relaxed);
        // SAFETY: the caller ensured the node exists, so root is set and the slot filled.
        unsafe {
            let node = (*root)[addr >> ARENA_SHIFT].load(Ordering::Relaxed);
            debug_assert!(!node.is_null());
            (*node).spans[(addr >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)]
                .store(span, Ordering::Release);
        }
    }

    /// The released bits of the arena holding `addr`, and the bit index of
    /// its page.
    ///
    /// # Safety
    /// The arena must have a node.
    unsafe fn released_word(&self, addr: usize) -> (&AtomicU64, u64) {
        let root = self.root.load(Ordering::Relaxed);
        let page = (addr >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1);
        // SAFETY: the caller ensured the node exists; nodes are never freed.
        let node = unsafe { &*(*root)[addr >> ARENA_SHIFT].load(Ordering::Relaxed) };
        (&node.released[page / 64], 1 << (page % 64))
    }

    /// Marks `npages` pages from `start` released (`true`) or in use
    /// (`false`); returns how many pages changed.
    ///
    /// # Safety
    /// As for [`PageMap::set`], for every page of the range.
    pub unsafe fn mark_released(&self, start: usize, npages: usize, released: bool) -> usize {
        let mut changed = 0;
        for i in 0..npages {
            // SAFETY: forwarded from the caller.
            let (word, bit) = unsafe { self.released_word(start + (i << PAGE_SHIFT)) };
            let old = word.load(Ordering::Relaxed);
            let new = if released { old | bit } else { old & !bit };
            if new != old {
                word.store(new, Ordering::Relaxed);
                changed += 1;
            }
        }
        changed
    }

    /// Calls `f(start, npages)` for each maximal run of pages in
    /// `[start, start + npages pages)` that is not released, in address order.
    ///
    /// # Safety
    /// As for [`PageMap::set`], for every page of the range.
    pub unsafe fn for_each_unreleased(
        &self,
        start: usize,
        npages: usize,
        mut f: impl FnMut(usize, usize),
    ) {
        let mut run = 0;
        for i in 0..npages {
            let addr = start + (i << PAGE_SHIFT);
            // SAFETY: forwarded from the caller.
            let (word, bit) = unsafe { self.released_word(addr) };
            if word.load(Ordering::Relaxed) & bit == 0 {
                run += 1;
            } else if run > 0 {
                f(addr - (run << PAGE_SHIFT), run);
                run = 0;
            }
        }
        if run > 0 {
            f(start + ((npages - run) << PAGE_SHIFT), run);
        }
    }

    /// How many pages of `[start, start + npages pages)` are not released.
    ///
    /// # Safety
    /// As for [`PageMap::set`], for every page of the range.
    pub unsafe fn count_unreleased(&self, start: usize, npages: usize) -> usize {
        let mut n = 0;
        // SAFETY: forwarded from the caller.
        unsafe { self.for_each_unreleased(start, npages, |_, k| n += k) };
        n
    }

    /// Whether every page of the range is released.
    ///
    /// # Safety
    /// As for [`PageMap::set`], for every page of the range.
    pub unsafe fn all_released(&self, start: usize, npages: usize) -> bool {
        let mut any = false;
        // SAFETY: forwarded from the caller.
        unsafe { self.for_each_unreleased(start, npages, |_, _| any = true) };
        !any
    }

    /// Records `span` for `npages` pages from `start`.
    ///
    /// # Safety
    /// As for [`PageMap::set`], for every page of the range.
    pub unsafe fn set_range(&self, start: usize, npages: usize, span: *mut MSpan) {
        for i in 0..npages {
            // SAFETY: forwarded from the caller.
            unsafe { self.set(start + (i << PAGE_SHIFT), span) };
        }
    }
}

/// Zeroed, committed memory straight from the OS, or null.
fn map_zeroed(os: &impl OsMem, size: usize) -> *mut u8 {
    let p = os.reserve(size, 4096);
    if p.is_null() {
        return p;
    }
    // SAFETY: p was just reserved with this size; fresh anonymous memory is zero.
    if unsafe { os.commit(p, size) } {
        p
    } else {
        // SAFETY: the range is ours and unused.
        unsafe { os.release(p, size) };
        null_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::fake::FakeOs;
    use crate::sizeclass::PAGE_SIZE;

    #[test]
    fn unmapped_addresses_are_not_ours() {
        let pm = PageMap::new();
        assert!(pm.lookup(0x1234_5000).is_null());
        let os = FakeOs::with_budget(1 << 30);
        let base = 7 * ARENA_SIZE;
        assert!(pm.ensure(&os, base, ARENA_SIZE));
        assert!(pm.lookup(base).is_null());
        assert!(pm.lookup(usize::MAX).is_null());
        assert!(pm.lookup(1 << ADDR_BITS).is_null());
    }

    #[test]
    fn set_and_lookup_every_page_of_a_range() {
        let pm = PageMap::new();
        let os = FakeOs::with_budget(1 << 30);
        // A range that straddles two arenas.
        let start = 9 * ARENA_SIZE - 3 * PAGE_SIZE;
        assert!(pm.ensure(&os, start, 6 * PAGE_SIZE));
        let mut span = MSpan::empty();
        let sp: *mut MSpan = &mut span;
        // SAFETY: nodes exist for the whole range; the test is single-threaded.
        unsafe { pm.set_range(start, 6, sp) };
        for i in 0..6 {
            assert_eq!(pm.lookup(start + i * PAGE_SIZE + 17), sp);
        }
        assert!(pm.lookup(start - 1).is_null());
        assert!(pm.lookup(start + 6 * PAGE_SIZE).is_null());
    }

    #[test]
    fn released_bits_track_runs_of_pages() {
        let pm = PageMap::new();
        let os = FakeOs::with_budget(1 << 30);
        let start = 3 * ARENA_SIZE - 4 * PAGE_SIZE; // straddles two arenas
        assert!(pm.ensure(&os, start, 16 * PAGE_SIZE));
        // SAFETY: nodes exist for the whole range; single-threaded test.
        unsafe {
            assert_eq!(pm.mark_released(start + 2 * PAGE_SIZE, 6, true), 6);
            assert_eq!(
                pm.mark_released(start + 4 * PAGE_SIZE, 2, true),
                0,
                "already released"
            );
            let mut runs = vec![];
            pm.for_each_unreleased(start, 16, |a, n| runs.push(((a - start) / PAGE_SIZE, n)));
            assert_eq!(runs, vec![(0, 2), (8, 8)]);
            assert!(pm.all_released(start + 2 * PAGE_SIZE, 6));
            assert!(!pm.all_released(start, 3));
            assert_eq!(pm.mark_released(start, 16, false), 6);
            assert!(!pm.all_released(start + 2 * PAGE_SIZE, 1));
        }
    }

    #[test]
    fn refuses_when_the_os_does() {
        let pm = PageMap::new();
        let os = FakeOs::with_budget(4096);
        assert!(!pm.ensure(&os, ARENA_SIZE, ARENA_SIZE));
        assert!(pm.lookup(ARENA_SIZE).is_null());
    }
}
