//! mheap: the page heap. Arenas, free page runs, spans for the central
//! lists, and large objects. See lib.rs for the overview.
//!
//! Free page runs are Free spans kept in 127 exact-size lists (1 to 127
//! pages, with a bitmask of the non-empty ones) and one best-fit list for
//! runs of 128 pages or more, as TCMalloc's original page heap did. A freed
//! run is merged at once with free neighbours, found through the pagemap, so
//! no two free runs ever touch.
//!
//! A freed large object is a free run like any other: its pages stay backed
//! for the next allocation and go back to the OS when the scavenger finds
//! them unused for the decay time (scavenger.rs), or at once as far as the
//! heap is over the soft memory limit. Returning them on every free made
//! each later allocation of those pages fault them all in again.

use crate::cache::CacheRegistry;
use crate::central::MCentral;
use crate::fixalloc::FixAlloc;
use crate::os::OsMem;
use crate::pagemap::{PageMap, ARENA_SIZE};
use crate::scavenger::HUGE_PAGE;
use crate::sizeclass::{class_npages, NUM_CLASSES, PAGE_SHIFT, PAGE_SIZE};
use crate::span::{MSpan, SpanList, SpanState};
use crate::stats::HeapCounters;
use crate::sync::{Mutex, MutexGuard};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

/// Exact-size free lists cover runs of 1..EXACT_LISTS pages.
const EXACT_LISTS: usize = 128;

/// Spans of each exact list looked at for an aligned request.
const ALIGNED_SCAN: usize = 16;

/// The smallest growth when a whole arena cannot be had.
const MIN_GROW: usize = 64 << 10;

/// The page-level state of the heap, guarded by the heap lock.
///
/// Invariants: every Free span is on exactly one list, the one for its
/// length (`large` from EXACT_LISTS pages on); bit n of `nonempty` is set
/// iff `free[n]` is non-empty; `free_pages` is the sum of their lengths; a
/// Free span that is clean (`needzero` false) has every page released; a
/// Free span's `backed` is the number of its pages not released.
pub struct PageHeap {
    free: [SpanList; EXACT_LISTS],
    large: SpanList,
    nonempty: u128,
    free_pages: usize,
    spans: FixAlloc<MSpan>,
    /// The address ranges the heap has grown into, sorted by address, with
    /// touching ranges merged (so a span never crosses a region's end).
    regions: *mut Region,
    region_records: FixAlloc<Region>,
}

/// A free page run, as the scavenger sees it.
#[derive(Clone, Copy, Debug)]
pub struct FreeRun {
    /// First page's address.
    pub start: usize,
    /// Length in pages.
    pub npages: usize,
    /// When its pages were last freed (the OS layer's clock, ms).
    pub freed_at: u64,
}

/// A range of address space the heap owns (one or more arenas).
pub struct Region {
    /// First address.
    pub base: usize,
    /// Length in bytes.
    pub bytes: usize,
    next: *mut Region,
}

// SAFETY: the raw pointers are span and region records owned by the page
// heap, used only under the heap lock.
unsafe impl Send for PageHeap {}

/// The heap: everything shared by all threads.
///
/// Lock order: an mcentral's lock may be held while taking the heap lock
/// (`pages`), never the reverse; the cache registry lock is taken alone.
pub struct MHeap<O: OsMem> {
    /// Where memory comes from.
    pub(crate) os: O,
    /// Address → span.
    pub(crate) pagemap: PageMap,
    /// Free pages and span records (the heap lock).
    pages: Mutex<PageHeap>,
    /// One central list per size class (index 0 unused).
    pub(crate) central: [MCentral; NUM_CLASSES],
    /// Every live thread cache, for statistics.
    pub(crate) caches: Mutex<CacheRegistry>,
    /// How many caches are in the registry (changed as caches join and
    /// leave it, read on the caches' slow paths, which share the
    /// thread-cache budget by it: cache.rs).
    pub(crate) active_caches: AtomicUsize,
    /// Counters for statistics.
    pub(crate) counters: HeapCounters,
    /// Whether this is the process's heap (at most one per process): its
    /// thread caches flush themselves when their thread exits, it prints the
    /// at-exit report and runs the background scavenger.
    pub(crate) process_heap: bool,
    /// Checked mode: 0 not decided yet (the global heap asks the options),
    /// 1 off, 2 on.
    checked: AtomicU8,
}

/// Rounds `x` up to a multiple of the power of two `a`.
#[inline]
pub(crate) const fn round_up(x: usize, a: usize) -> usize {
    (x + a - 1) & !(a - 1)
}

impl PageHeap {
    const fn new() -> Self {
        PageHeap {
            free: [const { SpanList::new() }; EXACT_LISTS],
            large: SpanList::new(),
            nonempty: 0,
            free_pages: 0,
            spans: FixAlloc::new(),
            regions: null_mut(),
            region_records: FixAlloc::new(),
        }
    }

    /// Puts a Free span on the list for its length.
    ///
    /// # Safety
    /// `s` must be a valid Free span on no list.
    unsafe fn insert(&mut self, s: *mut MSpan) {
        // SAFETY: s is valid (caller).
        let n = unsafe { (*s).npages };
        if n < EXACT_LISTS {
            // SAFETY: s is on no list; we own the lists under the heap lock.
            unsafe { self.free[n].push_front(s) };
            self.nonempty |= 1 << n;
        } else {
            // SAFETY: as above.
            unsafe { self.large.push_front(s) };
        }
        self.free_pages += n;
    }

    /// Takes a Free span off its list.
    ///
    /// # Safety
    /// `s` must be a Free span on one of this heap's lists.
    unsafe fn remove(&mut self, s: *mut MSpan) {
        // SAFETY: s is valid and on the list for its length (invariant).
        let n = unsafe { (*s).npages };
        if n < EXACT_LISTS {
            // SAFETY: as above.
            unsafe { self.free[n].remove(s) };
            if self.free[n].is_empty() {
                self.nonempty &= !(1 << n);
            }
        } else {
            // SAFETY: as above.
            unsafe { self.large.remove(s) };
        }
        self.free_pages -= n;
    }

    /// Finds and removes the smallest free span holding `npages` pages that
    /// start at a multiple of `align` bytes (lowest address among equals on
    /// the large list), or null.
    ///
    /// Without alignment the first span of the smallest non-empty exact list
    /// fits. With it, a shorter span fits when it happens to be placed well
    /// (a freed aligned object leaves just such a hole), so the first
    /// `ALIGNED_SCAN` spans of each exact list are looked at.
    fn take(&mut self, npages: usize, align: usize) -> *mut MSpan {
        let fits = |s: *mut MSpan| {
            // SAFETY: only valid Free spans from our lists are passed in.
            let (start, end) = unsafe { ((*s).start, (*s).end()) };
            round_up(start, align)
                .checked_add(npages << PAGE_SHIFT)
                .is_some_and(|e| e <= end)
        };
        if npages < EXACT_LISTS {
            let mut lists = self.nonempty & !((1u128 << npages) - 1);
            while lists != 0 {
                let n = lists.trailing_zeros() as usize;
                let found = if align <= PAGE_SIZE {
                    self.free[n].first()
                } else {
                    self.free[n]
                        .iter()
                        .take(ALIGNED_SCAN)
                        .find(|&s| fits(s))
                        .unwrap_or(null_mut())
                };
                if !found.is_null() {
                    // SAFETY: found is on list n, so it is a Free span on it.
                    unsafe { self.remove(found) };
                    return found;
                }
                lists &= lists - 1;
            }
        }
        let mut best: *mut MSpan = null_mut();
        for s in self.large.iter() {
            // SAFETY: spans on the list are valid Free spans.
            let (n, start) = unsafe { ((*s).npages, (*s).start) };
            if fits(s) {
                // SAFETY: best, when set, is a valid span from the same list.
                let better = best.is_null()
                    || unsafe {
                        n < (*best).npages || (n == (*best).npages && start < (*best).start)
                    };
                if better {
                    best = s;
                }
            }
        }
        if !best.is_null() {
            // SAFETY: best is on the large list.
            unsafe { self.remove(best) };
        }
        best
    }
}

impl PageHeap {
    /// Records a new range in the sorted region list, merging it with a
    /// neighbour it touches. False if no record could be had.
    fn add_region(&mut self, os: &impl OsMem, base: usize, bytes: usize) -> bool {
        let mut prev: *mut Region = null_mut();
        let mut cur = self.regions;
        // SAFETY: region records on the list are valid (heap lock held).
        unsafe {
            while !cur.is_null() && (*cur).base < base {
                prev = cur;
                cur = (*cur).next;
            }
            if !prev.is_null() && (*prev).base + (*prev).bytes == base {
                (*prev).bytes += bytes;
                if !cur.is_null() && (*prev).base + (*prev).bytes == (*cur).base {
                    (*prev).bytes += (*cur).bytes;
                    (*prev).next = (*cur).next;
                    self.region_records.free(cur);
                }
                return true;
            }
            if !cur.is_null() && base + bytes == (*cur).base {
                (*cur).base = base;
                (*cur).bytes += bytes;
                return true;
            }
            let r = self.region_records.alloc(os);
            if r.is_null() {
                return false;
            }
            r.write(Region {
                base,
                bytes,
                next: cur,
            });
            if prev.is_null() {
                self.regions = r;
            } else {
                (*prev).next = r;
            }
        }
        true
    }

    /// The regions, in address order.
    fn regions(&self) -> impl Iterator<Item = &Region> + Clone + '_ {
        // SAFETY: region records on the list are valid while the page heap is borrowed.
        core::iter::successors(unsafe { self.regions.as_ref() }, |r| {
            // SAFETY: as above.
            unsafe { r.next.as_ref() }
        })
    }
}

impl<O: OsMem> MHeap<O> {
    /// A heap drawing memory from `os`. Nothing is mapped until the first
    /// allocation. `process_heap` must be true for at most one heap in the
    /// process (the global one).
    pub const fn new(os: O, process_heap: bool) -> Self {
        MHeap {
            os,
            pagemap: PageMap::new(),
            pages: Mutex::new(PageHeap::new()),
            central: [const { MCentral::new() }; NUM_CLASSES],
            caches: Mutex::new(CacheRegistry::new()),
            active_caches: AtomicUsize::new(0),
            counters: HeapCounters::new(),
            process_heap,
            checked: AtomicU8::new(0),
        }
    }

    /// The OS layer this heap uses.
    pub fn os(&self) -> &O {
        &self.os
    }

    /// Whether checked mode is on: decided by `SPANALLOC_CHECK` for the
    /// global heap, by [`MHeap::set_checked`] for others. Caches read it
    /// once, when they activate.
    pub fn is_checked(&self) -> bool {
        match self.checked.load(Relaxed) {
            2 => true,
            1 => false,
            _ => {
                let on = self.process_heap && crate::options::get().check;
                self.checked.store(if on { 2 } else { 1 }, Relaxed);
                on
            }
        }
    }

    /// Turns checked mode on or off for caches activated from now on.
    pub fn set_checked(&self, on: bool) {
        self.checked.store(if on { 2 } else { 1 }, Relaxed);
    }

    /// Takes every lock of the heap, in lock order, so that `fork()` happens
    /// while no other thread is inside the allocator. Pair with
    /// [`MHeap::fork_unlock_all`] in both parent and child.
    pub fn fork_lock_all(&self) {
        for central in self.central.iter().skip(1) {
            central.raw_lock();
        }
        self.pages.raw_lock();
        self.caches.raw_lock();
    }

    /// Releases what [`MHeap::fork_lock_all`] took.
    ///
    /// # Safety
    /// The calling thread (or, in a fork child, the thread that forked) must
    /// hold every lock through `fork_lock_all`.
    pub unsafe fn fork_unlock_all(&self) {
        // SAFETY: the caller holds all of them.
        unsafe {
            self.caches.raw_unlock();
            self.pages.raw_unlock();
            for central in self.central.iter().skip(1).rev() {
                central.raw_unlock();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, PageHeap> {
        self.pages.lock()
    }

    /// Reserves and commits a new region big enough for `npages` pages (whole
    /// arenas if possible) and adds it to the free lists, merged with any free
    /// neighbour. Returns false if the OS refuses.
    fn grow(&self, ph: &mut PageHeap, npages: usize) -> bool {
        let Some(need) = npages
            .checked_mul(PAGE_SIZE)
            .filter(|&b| b <= isize::MAX as usize / 2)
        else {
            return false;
        };
        // Whole arenas normally; if the OS refuses that much (an address-space
        // limit, say), just what this request needs, so that a program near
        // its limit can still get the pages it asks for.
        let mut bytes = round_up(need, ARENA_SIZE);
        let mut base = self.os.reserve(bytes, ARENA_SIZE);
        if base.is_null() {
            bytes = round_up(need, MIN_GROW);
            base = self.os.reserve(bytes, PAGE_SIZE);
        }
        if base.is_null() {
            return false;
        }
        // SAFETY: base..base+bytes was just reserved.
        let usable = unsafe { self.os.commit(base, bytes) }
            && self.pagemap.ensure(&self.os, base as usize, bytes);
        let s = if usable {
            ph.spans.alloc(&self.os)
        } else {
            null_mut()
        };
        if s.is_null() {
            // SAFETY: the region is ours and nothing points into it.
            unsafe { self.os.release(base, bytes) };
            return false;
        }
        // SAFETY: s is fresh record memory; we initialise every field.
        unsafe {
            s.write(MSpan::empty());
            (*s).start = base as usize;
            (*s).npages = bytes >> PAGE_SHIFT;
            // Clean: all released (marked below), nothing backed.
            (*s).backed = 0;
        }
        if !ph.add_region(&self.os, base as usize, bytes) {
            // SAFETY: the span record and the region are ours and unused.
            unsafe {
                ph.spans.free(s);
                self.os.release(base, bytes);
            }
            return false;
        }
        self.counters.mapped.fetch_add(bytes, Relaxed);
        self.os.name_region(base, bytes);
        // SAFETY: the region is committed; its pages are in the pagemap. Fresh
        // pages are not backed by memory: they count as released until used.
        unsafe {
            self.os.hint_huge_pages(base, bytes);
            self.pagemap
                .mark_released(base as usize, bytes >> PAGE_SHIFT, true);
        }
        self.counters.released.fetch_add(bytes, Relaxed);
        // SAFETY: s is a valid span on no list whose pages are in the pagemap.
        unsafe { self.free_span_locked(ph, s) };
        true
    }

    /// Splits the first `n` pages off the Free span `s` (on no list). `s`
    /// keeps them; the rest becomes a new Free span on no list, returned.
    /// Null if no span record could be had (then `s` is unchanged).
    ///
    /// # Safety
    /// `s` must be a valid Free span on no list with more than `n` pages.
    unsafe fn split(&self, ph: &mut PageHeap, s: *mut MSpan, n: usize) -> *mut MSpan {
        let rest = ph.spans.alloc(&self.os);
        if rest.is_null() {
            return rest;
        }
        // SAFETY: s is valid (caller); rest is fresh record memory we
        // initialise; the pages of both pieces are in the pagemap.
        unsafe {
            debug_assert!((*s).npages > n);
            let mut r = MSpan::empty();
            r.start = (*s).start + (n << PAGE_SHIFT);
            r.npages = (*s).npages - n;
            r.state = SpanState::Free;
            r.needzero = (*s).needzero;
            r.freed_at = (*s).freed_at;
            // Count the backed pages of the smaller piece; the other has
            // the rest. (Counted for an in-use span too, where `backed` means
            // nothing: cheap, and set again when it is freed.)
            if (*s).needzero {
                if n <= r.npages {
                    let first = self.pagemap.count_unreleased((*s).start, n);
                    r.backed = (*s).backed.saturating_sub(first);
                    (*s).backed = first;
                } else {
                    r.backed = self.pagemap.count_unreleased(r.start, r.npages);
                    (*s).backed = (*s).backed.saturating_sub(r.backed);
                }
            }
            rest.write(r);
            (*s).npages = n;
            self.pagemap.set((*s).last_page(), s);
            self.pagemap.set((*rest).start, rest);
            self.pagemap.set((*rest).last_page(), rest);
        }
        rest
    }

    /// Takes `npages` pages starting at a multiple of `align_pages` pages off
    /// the free lists, growing the heap if needed. The span comes back in
    /// state Free, on no list, with `needzero` telling whether it may hold
    /// non-zero bytes. Null if the OS refuses memory.
    fn alloc_pages(&self, ph: &mut PageHeap, npages: usize, align_pages: usize) -> *mut MSpan {
        debug_assert!(npages > 0 && align_pages.is_power_of_two());
        let align = align_pages << PAGE_SHIFT;
        let limit = crate::options::memory_limit() as usize;
        if limit != 0 && self.held_bytes() + (npages << PAGE_SHIFT) > limit {
            // Near the soft limit: give every free page back before using more.
            self.release_runs_locked(ph, usize::MAX, |run, release| {
                release(run.start, run.npages)
            });
        }
        let mut s = ph.take(npages, align);
        if s.is_null() {
            // A fresh region is arena-aligned, which covers alignments up to
            // an arena; beyond that, room to slide to an aligned start.
            let Some(total) = npages.checked_add(align_pages - 1) else {
                return null_mut();
            };
            if !self.grow(ph, total) {
                return null_mut();
            }
            s = ph.take(npages, align);
            if s.is_null() {
                debug_assert!(false, "a grown heap must fit the request");
                return null_mut();
            }
        }
        // SAFETY: s was just taken off a list: a valid Free span on no list,
        // with at least `total` pages; the pieces we split off go back on lists.
        unsafe {
            let aligned = round_up((*s).start, align);
            if aligned > (*s).start {
                let rest = self.split(ph, s, (aligned - (*s).start) >> PAGE_SHIFT);
                if rest.is_null() {
                    ph.insert(s);
                    return null_mut();
                }
                ph.insert(s);
                s = rest;
            }
            if (*s).npages > npages {
                let tail = self.split(ph, s, npages);
                if tail.is_null() {
                    ph.insert(s);
                    return null_mut();
                }
                ph.insert(tail);
            }
            let reused = self.pagemap.mark_released((*s).start, (*s).npages, false);
            self.counters
                .released
                .fetch_sub(reused << PAGE_SHIFT, Relaxed);
            self.counters.inuse_spans.fetch_add((*s).bytes(), Relaxed);
        }
        self.counters
            .free
            .store(ph.free_pages << PAGE_SHIFT, Relaxed);
        s
    }

    /// Gives the pages of `s` back to the free lists, merging with free
    /// neighbours. The caller has set `needzero` and `backed` and accounted
    /// the span out of `inuse_spans`.
    ///
    /// # Safety
    /// `s` must be a valid span on no list whose pages nobody uses any more.
    unsafe fn free_span_locked(&self, ph: &mut PageHeap, s: *mut MSpan) {
        // SAFETY: s is valid (caller); neighbours found through the pagemap
        // are checked to be Free spans that touch s before they are used.
        unsafe {
            (*s).state = SpanState::Free;
            (*s).freed_at = self.os.now_ms();
            (*s).class = 0;
            if (*s).start >= PAGE_SIZE {
                let left = self.pagemap.lookup((*s).start - PAGE_SIZE);
                if !left.is_null()
                    && (*left).state == SpanState::Free
                    && (*left).end() == (*s).start
                {
                    ph.remove(left);
                    self.merge_flags(s, left);
                    (*s).start = (*left).start;
                    (*s).npages += (*left).npages;
                    (*s).backed += (*left).backed;
                    (*left).state = SpanState::Dead;
                    ph.spans.free(left);
                }
            }
            let right = self.pagemap.lookup((*s).end());
            if !right.is_null() && (*right).state == SpanState::Free && (*right).start == (*s).end()
            {
                ph.remove(right);
                self.merge_flags(s, right);
                (*s).npages += (*right).npages;
                (*s).backed += (*right).backed;
                (*right).state = SpanState::Dead;
                ph.spans.free(right);
            }
            self.pagemap.set((*s).start, s);
            self.pagemap.set((*s).last_page(), s);
            ph.insert(s);
        }
        self.counters
            .free
            .store(ph.free_pages << PAGE_SHIFT, Relaxed);
    }

    /// Flags of a free run merged from `s` and `other` (called before their
    /// lengths are added up): dirty if either is; freed at the mean of their
    /// times, weighted by the pages each has backed (`backed`: released pages
    /// have nothing left to decay).
    ///
    /// The mean, rather than the later time, keeps a big run that has long
    /// been free old when a small piece of it is allocated and freed again
    /// and again: otherwise every such free would make the whole run young,
    /// and the scavenger would never return it. A freed object next to a
    /// clean run (the untouched rest of an arena, say) keeps its own time.
    ///
    /// # Safety
    /// Both must be valid spans.
    unsafe fn merge_flags(&self, s: *mut MSpan, other: *mut MSpan) {
        // SAFETY: both valid (caller).
        unsafe {
            let weight = |x: *mut MSpan| (*x).backed as u128;
            let (ws, wo) = (weight(s), weight(other));
            let sum = u128::from((*s).freed_at) * ws + u128::from((*other).freed_at) * wo;
            // The mean of two u64 values fits a u64; with nothing backed on
            // either side the time does not matter: take the later.
            (*s).freed_at = match sum.checked_div(ws + wo) {
                Some(mean) => mean as u64,
                None => (*s).freed_at.max((*other).freed_at),
            };
            (*s).needzero |= (*other).needzero;
        }
    }

    /// A fresh span for the mcentral of `class`, with all objects free and
    /// every page recorded in the pagemap. Null if the OS refuses memory.
    pub(crate) fn alloc_small_span(&self, class: usize) -> *mut MSpan {
        let npages = class_npages(class);
        let mut ph = self.lock();
        let s = self.alloc_pages(&mut ph, npages, 1);
        if !s.is_null() {
            // SAFETY: s is ours now (off every list); its arena is in the pagemap.
            unsafe {
                (*s).init_small(class);
                self.pagemap.set_range((*s).start, npages, s);
            }
            self.counters.class_spans[class].fetch_add(1, Relaxed);
        }
        s
    }

    /// Gives an empty small span's pages back.
    ///
    /// # Safety
    /// `s` must be a Small span on no mcentral list with no object handed out.
    pub(crate) unsafe fn free_small_span(&self, s: *mut MSpan) {
        let mut ph = self.lock();
        // SAFETY: s is a valid Small span that nobody uses (caller).
        unsafe {
            debug_assert_eq!((*s).allocated, 0);
            self.counters.class_spans[(*s).class as usize].fetch_sub(1, Relaxed);
            self.counters.inuse_spans.fetch_sub((*s).bytes(), Relaxed);
            // Every page of a span in use is backed (alloc_pages marked them).
            (*s).needzero = true;
            (*s).backed = (*s).npages;
            self.free_span_locked(&mut ph, s);
        }
    }

    /// Allocates a large object of `size` bytes aligned to `align`. Returns
    /// the address and whether the memory may hold non-zero bytes, or null if
    /// the size overflows or the OS refuses memory.
    pub fn alloc_large(&self, size: usize, align: usize) -> (*mut u8, bool) {
        let Some(npages) = size
            .max(1)
            .checked_add(PAGE_SIZE - 1)
            .map(|b| b >> PAGE_SHIFT)
        else {
            return (null_mut(), false);
        };
        let align_pages = (align >> PAGE_SHIFT).max(1);
        let mut ph = self.lock();
        let s = self.alloc_pages(&mut ph, npages, align_pages);
        if s.is_null() {
            return (null_mut(), false);
        }
        // SAFETY: s is ours now; its first and last pages already map to it.
        unsafe {
            (*s).state = SpanState::Large;
            self.counters.large_live.fetch_add((*s).bytes(), Relaxed);
            self.counters.large_allocs.fetch_add(1, Relaxed);
            ((*s).start as *mut u8, (*s).needzero)
        }
    }

    /// The Large span whose pages hold `ptr`, if `ptr` starts a page: where
    /// a sized free looks for a sampled small object (the heap profiler
    /// gives each a Large span of its own). Null for any other pointer. The
    /// caller checks that `ptr` starts the span.
    pub fn large_span_at_page(&self, ptr: *const u8) -> *mut MSpan {
        if !(ptr as usize).is_multiple_of(PAGE_SIZE) {
            return null_mut();
        }
        let s = self.pagemap.lookup(ptr as usize);
        // SAFETY: pagemap entries point to span records, never unmapped.
        if !s.is_null() && unsafe { (*s).state } == SpanState::Large {
            s
        } else {
            null_mut()
        }
    }

    /// The in-use span that `ptr` is the start of an object of, or null if
    /// `ptr` is not such an address (not ours, free, or an interior pointer).
    pub fn object_span(&self, ptr: *const u8) -> *mut MSpan {
        let addr = ptr as usize;
        let s = self.pagemap.lookup(addr);
        if s.is_null() {
            return s;
        }
        // SAFETY: pagemap entries always point to span records, which are
        // never unmapped; a stale one fails the checks below.
        let ok = unsafe {
            match (*s).state {
                // A span the profiler keeps has no live block. `sample`
                // becomes or stops being RESERVED only under the profiler's
                // lock with no live block in the span: for the caller's live
                // block the read sees its record.
                SpanState::Large => (*s).start == addr && (*s).sample != crate::profile::RESERVED,
                SpanState::Small => (*s).is_object_address(addr),
                _ => false,
            }
        };
        if ok {
            s
        } else {
            null_mut()
        }
    }

    /// Frees the large object that starts at `ptr`.
    ///
    /// # Safety
    /// `ptr` must be a live large object of this heap.
    pub unsafe fn free_large(&self, ptr: *mut u8) {
        let s = self.pagemap.lookup(ptr as usize);
        // SAFETY: ptr is a live large object (caller), so s is its span.
        unsafe {
            debug_assert!(
                !s.is_null() && (*s).state == SpanState::Large && (*s).start == ptr as usize
            );
            let mut ph = self.lock();
            self.counters.large_live.fetch_sub((*s).bytes(), Relaxed);
            self.counters.large_frees.fetch_add(1, Relaxed);
            self.counters.inuse_spans.fetch_sub((*s).bytes(), Relaxed);
            self.free_large_pages_locked(&mut ph, s);
        }
    }

    /// Gives the pages of a large object (or of the tail cut off one) back
    /// to the free lists. They stay backed by memory, ready for the next
    /// allocation without a page fault, until the scavenger returns them
    /// after the decay time, as it does any free run (scavenger.rs). Only
    /// when the heap holds more than the soft memory limit does the freed
    /// memory go back at once, as much of it as the excess, from the high
    /// end of the merged run (the end that allocations take last).
    ///
    /// # Safety
    /// `s` must be a valid span on no list whose pages nobody uses any more,
    /// already accounted out of `inuse_spans`.
    unsafe fn free_large_pages_locked(&self, ph: &mut PageHeap, s: *mut MSpan) {
        // SAFETY: forwarded from the caller; after free_span_locked, s is the
        // record of the merged free run, on its list, whose pages nobody
        // uses; the object's own pages in it are all still backed.
        unsafe {
            let freed = (*s).bytes();
            (*s).needzero = true;
            (*s).backed = (*s).npages;
            self.free_span_locked(ph, s);
            let excess = self.over_limit_bytes();
            if excess > 0 {
                self.release_tail_locked(s, excess.min(freed));
            }
        }
    }

    /// Returns at least `want` bytes of the free run `s` that are still
    /// backed (or all of them, if fewer), working down from its end; each
    /// piece starts at a huge-page boundary unless it starts the run.
    /// Returns the bytes returned.
    ///
    /// # Safety
    /// `s` must be a Free span on a free list; the heap lock is held.
    unsafe fn release_tail_locked(&self, s: *mut MSpan, want: usize) -> usize {
        // SAFETY: s is a valid Free span whose pages are in the pagemap (caller).
        let (start, end) = unsafe { ((*s).start, (*s).end()) };
        let mut released = 0;
        let mut hi = end;
        while released < want && hi > start {
            let lo = (hi.saturating_sub(want - released) & !(HUGE_PAGE - 1)).max(start);
            // SAFETY: [lo, hi) lies inside the free run s (caller).
            released += unsafe { self.release_range_locked(s, lo, (hi - lo) >> PAGE_SHIFT) };
            hi = lo;
        }
        self.counters.released.fetch_add(released, Relaxed);
        // SAFETY: as above.
        unsafe {
            if self.pagemap.all_released(start, (*s).npages) {
                (*s).needzero = false;
            }
        }
        released
    }

    /// Returns to the OS the pages of `[start, start + npages pages)` that
    /// are still backed and marks them all released, keeping `backed` of
    /// the free run `s` they lie in true; returns the bytes returned. The
    /// caller adds them to `counters.released`.
    ///
    /// # Safety
    /// The range must lie inside the free run `s`; the heap lock is held.
    unsafe fn release_range_locked(&self, s: *mut MSpan, start: usize, npages: usize) -> usize {
        let mut released = 0;
        // SAFETY: the pages of a free run are in the pagemap and nobody uses
        // them (caller), so they may be decommitted; s is valid (caller).
        unsafe {
            self.pagemap.for_each_unreleased(start, npages, |a, n| {
                self.os.decommit(a as *mut u8, n << PAGE_SHIFT);
                released += n << PAGE_SHIFT;
            });
            self.pagemap.mark_released(start, npages, true);
            (*s).backed -= released >> PAGE_SHIFT;
        }
        released
    }

    /// Bytes usable in the large object at `ptr`.
    ///
    /// # Safety
    /// `ptr` must be a live large object of this heap.
    pub unsafe fn large_size(&self, ptr: *mut u8) -> usize {
        // SAFETY: ptr is a live large object (caller).
        unsafe { (*self.pagemap.lookup(ptr as usize)).bytes() }
    }

    /// Grows or shrinks the large object at `ptr` in place to hold
    /// `new_size` bytes, if the pages after it allow. Returns false (and
    /// changes nothing) otherwise.
    ///
    /// # Safety
    /// `ptr` must be a live large object of this heap.
    pub unsafe fn resize_large_in_place(&self, ptr: *mut u8, new_size: usize) -> bool {
        let Some(new_pages) = new_size.checked_add(PAGE_SIZE - 1).map(|b| b >> PAGE_SHIFT) else {
            return false;
        };
        let s = self.pagemap.lookup(ptr as usize);
        // A buffer growing by small steps (`reserve_exact`, C's
        // `realloc(p, n + k)`) mostly stays within its last page.
        // SAFETY: s is the span of a live large object (caller); only its
        // resize, the caller's to make, writes its length: no lock needed.
        let old_pages = unsafe { (*s).npages };
        if new_pages == old_pages {
            return true;
        }
        let mut ph = self.lock();
        // SAFETY: as above, and the heap lock is held for the free lists; the
        // neighbour is checked to be a Free span that touches s before use.
        unsafe {
            if new_pages < old_pages {
                (*s).state = SpanState::Free;
                let tail = self.split(&mut ph, s, new_pages);
                (*s).state = SpanState::Large;
                if tail.is_null() {
                    return false;
                }
                self.pagemap.set((*s).last_page(), s);
                let freed = (*tail).bytes();
                self.counters.large_live.fetch_sub(freed, Relaxed);
                self.counters.inuse_spans.fetch_sub(freed, Relaxed);
                self.free_large_pages_locked(&mut ph, tail);
                return true;
            }
            let need = new_pages - old_pages;
            let right = self.pagemap.lookup((*s).end());
            if right.is_null()
                || (*right).state != SpanState::Free
                || (*right).start != (*s).end()
                || (*right).npages < need
            {
                return false;
            }
            ph.remove(right);
            if (*right).npages > need {
                let rest = self.split(&mut ph, right, need);
                if rest.is_null() {
                    ph.insert(right);
                    return false;
                }
                ph.insert(rest);
            }
            let reused = self
                .pagemap
                .mark_released((*right).start, (*right).npages, false);
            self.counters
                .released
                .fetch_sub(reused << PAGE_SHIFT, Relaxed);
            let grown = (*right).bytes();
            (*right).state = SpanState::Dead;
            ph.spans.free(right);
            (*s).npages = new_pages;
            self.pagemap.set((*s).last_page(), s);
            self.counters.large_live.fetch_add(grown, Relaxed);
            self.counters.inuse_spans.fetch_add(grown, Relaxed);
            self.counters
                .free
                .store(ph.free_pages << PAGE_SHIFT, Relaxed);
            true
        }
    }

    /// Bytes the heap holds from the OS that may be backed by memory:
    /// mapped, less free pages returned (or never used). An upper bound on
    /// the heap's share of the resident size.
    pub fn held_bytes(&self) -> usize {
        let c = &self.counters;
        c.mapped
            .load(Relaxed)
            .saturating_sub(c.released.load(Relaxed))
    }

    /// Bytes in free pages that are still backed: what the scavenger may
    /// return.
    pub fn retained_bytes(&self) -> usize {
        let c = &self.counters;
        c.free
            .load(Relaxed)
            .saturating_sub(c.released.load(Relaxed))
    }

    /// Returns free pages to the OS: `pick` sees each free run and calls
    /// `release(start, npages)` for the parts of it to return; stops once
    /// `max_bytes` have been returned. Pages already returned are skipped.
    /// Returns the bytes returned.
    pub(crate) fn release_runs(
        &self,
        max_bytes: usize,
        pick: impl FnMut(FreeRun, &mut dyn FnMut(usize, usize)),
    ) -> usize {
        let mut ph = self.lock();
        self.release_runs_locked(&mut ph, max_bytes, pick)
    }

    fn release_runs_locked(
        &self,
        ph: &mut PageHeap,
        max_bytes: usize,
        mut pick: impl FnMut(FreeRun, &mut dyn FnMut(usize, usize)),
    ) -> usize {
        let mut released = 0;
        let lists = ph.free.iter().chain(core::iter::once(&ph.large));
        'all: for list in lists {
            for s in list.iter() {
                if released >= max_bytes {
                    break 'all;
                }
                // SAFETY: spans on the free lists are valid Free spans whose
                // pages nobody uses, all in the pagemap; the heap lock is held.
                unsafe {
                    let run = FreeRun {
                        start: (*s).start,
                        npages: (*s).npages,
                        freed_at: (*s).freed_at,
                    };
                    pick(run, &mut |start, npages| {
                        debug_assert!(
                            start >= run.start && start + (npages << PAGE_SHIFT) <= (*s).end()
                        );
                        released += self.release_range_locked(s, start, npages);
                    });
                    if self.pagemap.all_released((*s).start, (*s).npages) {
                        (*s).needzero = false;
                    }
                }
            }
        }
        self.counters.released.fetch_add(released, Relaxed);
        released
    }

    /// Bytes of free pages (returned to the OS or not) in the 2 MiB chunk at
    /// `chunk`, which the free run `run` overlaps: the scavenger's measure
    /// of how busy the chunk's huge page is. Walks the spans on either side
    /// of `run` through the pagemap, whose first and last page of every
    /// span map to it, stopping at the chunk's ends or the end of the mapped
    /// region; at most a chunk's pages in steps.
    ///
    /// # Safety
    /// The heap lock is held; `run` is a span on the free lists.
    pub(crate) unsafe fn free_bytes_in_chunk(&self, run: FreeRun, chunk: usize) -> usize {
        let (lo, hi) = (chunk, chunk + HUGE_PAGE);
        let overlap = |a: usize, b: usize| b.min(hi).saturating_sub(a.max(lo));
        let run_end = run.start + (run.npages << PAGE_SHIFT);
        let mut free = overlap(run.start, run_end);
        // A page inside a span may map to a stale record, but only span
        // boundaries are looked up; a lookup that finds no span adjoining the
        // last one ends the walk.
        // SAFETY: the heap lock is held, so no span changes; span boundaries
        // map to live records, which are never unmapped.
        unsafe {
            let mut addr = run_end;
            while addr < hi {
                let s = self.pagemap.lookup(addr);
                if s.is_null() || (*s).start != addr || (*s).state == SpanState::Dead {
                    break;
                }
                if (*s).state == SpanState::Free {
                    free += overlap((*s).start, (*s).end());
                }
                addr = (*s).end();
            }
            let mut addr = run.start;
            while addr > lo {
                let s = self.pagemap.lookup(addr - PAGE_SIZE);
                if s.is_null() || (*s).end() != addr || (*s).state == SpanState::Dead {
                    break;
                }
                if (*s).state == SpanState::Free {
                    free += overlap((*s).start, (*s).end());
                }
                addr = (*s).start;
            }
        }
        free
    }

    /// Returns every free page to the OS now, after draining the central
    /// transfer slots so that empty spans come back to the heap first.
    /// Returns the bytes newly returned.
    pub fn release_free_pages(&self) -> usize {
        for (class, central) in self.central.iter().enumerate().skip(1) {
            central.drain_transfer(self, class);
        }
        self.release_runs(usize::MAX, |run, release| release(run.start, run.npages))
    }

    /// Writes the heap dump (format in dump.rs): statistics, regions, and
    /// every span in address order. Every allocator lock is held while the
    /// spans are walked, so the picture is consistent; nothing is allocated.
    pub fn write_dump(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        let stats = self.stats();
        write!(
            w,
            "{{\"version\":1,\"page_size\":{PAGE_SIZE},\"arena_size\":{ARENA_SIZE},\"stats\":"
        )?;
        stats.write_json_object(w)?;
        self.fork_lock_all();
        // SAFETY: every lock is held by this thread until fork_unlock_all;
        // the page heap is only read.
        let ph = unsafe { &*self.pages.data_ptr() };
        let result = crate::dump::write_regions_and_spans(
            w,
            ph.regions().map(|r| (r.base, r.bytes)),
            &self.pagemap,
        );
        // SAFETY: this thread took them all just above.
        unsafe { self.fork_unlock_all() };
        result?;
        writeln!(w, "}}")
    }

    /// Bytes of the heap's regions backed by transparent huge pages
    /// (`AnonHugePages` in /proc/self/smaps), or None if that cannot be read.
    /// Reads a file: for reports, not for hot paths.
    pub fn huge_page_bytes(&self) -> Option<usize> {
        // Copy the regions (at most a fixed number) so no lock is held while
        // the file is read.
        let mut regions = [(0usize, 0usize); 64];
        let mut n = 0;
        for r in self.lock().regions().take(regions.len()) {
            regions[n] = (r.base, r.base + r.bytes);
            n += 1;
        }
        crate::os::linux::smaps_anon_huge_bytes(|start, end| {
            regions[..n].iter().any(|&(lo, hi)| start < hi && end > lo)
        })
    }

    /// Bytes of metadata the heap took from the OS (pagemap and span records).
    pub fn metadata_bytes(&self) -> usize {
        {
            let ph = self.lock();
            self.pagemap.os_bytes() + ph.spans.os_bytes + ph.region_records.os_bytes
        }
    }

    /// Bytes in free page runs.
    pub fn free_bytes(&self) -> usize {
        self.lock().free_pages << PAGE_SHIFT
    }

    /// Checks the heap's invariants (free lists, coalescing, pagemap entries,
    /// every central list and span). Panics with a description on failure.
    /// Expensive: for tests and checked builds.
    pub fn check_invariants(&self) {
        for (class, central) in self.central.iter().enumerate().skip(1) {
            central.check_invariants(self, class);
        }
        let ph = self.lock();
        let mut pages = 0;
        let mut released_pages = 0;
        let mut mask = 0u128;
        let lists = ph
            .free
            .iter()
            .enumerate()
            .map(|(n, l)| (Some(n), l))
            .chain(core::iter::once((None, &ph.large)));
        for (exact, list) in lists {
            if let Some(n) = exact {
                if !list.is_empty() {
                    mask |= 1 << n;
                }
            }
            for s in list.iter() {
                // SAFETY: spans on the free lists are valid records (heap lock held).
                let sp = unsafe { &*s };
                assert_eq!(
                    sp.state,
                    SpanState::Free,
                    "span {:#x} on a free list is {:?}",
                    sp.start,
                    sp.state
                );
                match exact {
                    Some(n) => assert_eq!(sp.npages, n, "span {:#x} on the wrong list", sp.start),
                    None => assert!(sp.npages >= EXACT_LISTS),
                }
                sp.check_invariants();
                assert_eq!(
                    self.pagemap.lookup(sp.start),
                    s,
                    "pagemap first page of free span {:#x}",
                    sp.start
                );
                assert_eq!(
                    self.pagemap.lookup(sp.last_page()),
                    s,
                    "pagemap last page of free span {:#x}",
                    sp.start
                );
                let left = self.pagemap.lookup(sp.start.wrapping_sub(PAGE_SIZE));
                // SAFETY: pagemap entries point to span records.
                let left_touches_free = !left.is_null()
                    && unsafe { (*left).state == SpanState::Free && (*left).end() == sp.start };
                assert!(
                    !left_touches_free,
                    "free span {:#x} not merged with its left neighbour",
                    sp.start
                );
                pages += sp.npages;
                let mut unreleased = 0;
                // SAFETY: a free span's pages are in the pagemap; heap lock held.
                unsafe {
                    self.pagemap
                        .for_each_unreleased(sp.start, sp.npages, |_, n| unreleased += n)
                };
                assert!(
                    sp.needzero || unreleased == 0,
                    "clean free span {:#x} has {unreleased} backed pages",
                    sp.start
                );
                assert_eq!(
                    sp.backed, unreleased,
                    "free span {:#x} counts {} backed pages, the pagemap {unreleased}",
                    sp.start, sp.backed
                );
                released_pages += sp.npages - unreleased;
            }
        }
        assert_eq!(mask, ph.nonempty, "nonempty mask out of date");
        assert_eq!(
            released_pages << PAGE_SHIFT,
            self.counters.released.load(Relaxed),
            "released bytes differ from the released pages of free runs"
        );
        assert_eq!(pages, ph.free_pages, "free page count out of date");
    }
}

#[cfg(test)]
pub(crate) mod tests;
