//! mcache: the per-thread cache of free objects. See lib.rs for the overview.
//!
//! One free list per size class. A small malloc pops the head of its class's
//! list and a sized free pushes onto it: no lock, no atomic read-modify-write,
//! no system call. Each list is bounded: when a free finds it full, one batch
//! goes back to the mcentral; when a malloc finds it empty, one batch comes
//! from the mcentral. The bounds grow with use, within the thread's share of
//! an overall budget that the active caches divide among themselves
//! ([`thread_cache_budget`]). An object freed by a thread other than the one that
//! allocated it simply joins the freeing thread's list: memory of a class is
//! interchangeable, and the bound plus the batch hand-over through the
//! transfer slots keep it from piling up anywhere.
//!
//! The cache lives in a `thread_local!` with a constant initialiser and no
//! destructor, so touching it never allocates or registers anything
//! (rust-lang/rust#116390, #144465). Its life:
//!
//! * FRESH: every list empty with limit 0, so the first malloc and the first
//!   free of the thread both take the slow path, which activates the cache:
//!   limits set, cache registered for statistics, exit hook installed.
//! * ACTIVE: normal operation.
//! * CHECKED: checked mode; as DEAD, and each free is verified first.
//! * DEAD: the thread's exit hook has run (everything went back to the
//!   mcentrals); lists empty with limit 0 again, and the slow paths send each
//!   further malloc and free (from later TLS destructors) straight to the
//!   mcentral, so nothing is stranded in a cache nobody will flush.

use crate::heap::MHeap;
use crate::os::{thread_exit_hook, OsMem};
use crate::sizeclass::{class_batch, class_size, NUM_CLASSES};
use crate::span::FreeObject;
use crate::stats::ClassStats;
use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

const FRESH: u8 = 0;
const ACTIVE: u8 = 1;
const DEAD: u8 = 2;
/// Checked mode (`SPANALLOC_CHECK=1`): like DEAD, every operation goes
/// straight to the mcentral, and every free is verified there.
const CHECKED: u8 = 3;

/// The most batches one class's list may grow to hold.
const MAX_BATCHES: usize = 8;
/// The most bytes one class's list may grow to hold (beyond one batch).
const MAX_CLASS_BYTES: usize = 256 << 10;
/// The most bytes all of a thread's lists together may be allowed to hold
/// (the sum of their bounds).
pub const MAX_THREAD_CACHE_BYTES: usize = 4 << 20;
/// The bounds of all the threads' lists together, shared out among the
/// active caches: each may grow its lists past one batch while the sum of
/// its bounds stays within its share ([`thread_cache_budget`]). One or two
/// threads get [`MAX_THREAD_CACHE_BYTES`] each; with many, each keeps about
/// one batch per class, as TCMalloc shares one overall thread-cache size out
/// among its threads. Measured on the suite (README): with 8 or 16 threads
/// exchanging objects, peak RSS fell by 40-50% for no measurable loss in
/// time; a single thread with 10,000 objects live needs the full 4 MiB.
const OVERALL_THREAD_CACHE_BYTES: usize = 8 << 20;

/// What the sum of a cache's bounds may grow to while `active` caches are
/// registered.
fn thread_cache_budget(active: usize) -> usize {
    (OVERALL_THREAD_CACHE_BYTES / active.max(1)).min(MAX_THREAD_CACHE_BYTES)
}

/// The bound of a class's list: starts at one batch; each time a free finds
/// the list full it grows by a batch (a "slow start", as TCMalloc's thread
/// caches do), up to this, while the thread's total allows.
fn max_limit(class: usize) -> usize {
    let batch = class_batch(class);
    (MAX_CLASS_BYTES / class_size(class)).clamp(batch, MAX_BATCHES * batch)
}

/// The free list of one class, with the sampling countdown. 32 bytes: two
/// classes share a cache line, and a malloc or free touches only this.
///
/// Invariants: `count` is the length of the list at `head`, and
/// `count <= limit` (limit 0 in FRESH and DEAD; from one batch up to
/// `max_limit(class)` when ACTIVE). While ACTIVE, `sample_left >= 1`: the
/// allocations of this class left until the next one the heap profiler
/// samples, the last of them included ([`SAMPLING_OFF`] when it is off).
/// `sample_target - sample_left` is the number of allocations this list has
/// served (the countdown doubles as the allocation counter, so the fast path
/// pays one decrement for both). Every field is touched only by the owning
/// thread; other threads see the counts through [`ListCounters`].
#[repr(C)]
struct CacheList {
    head: Cell<*mut FreeObject>,
    count: Cell<u32>,
    limit: Cell<u32>,
    sample_left: Cell<u64>,
    sample_target: Cell<u64>,
}

/// The countdown of a class while the profiler is off: 2^62 allocations,
/// which no program reaches.
pub const SAMPLING_OFF: u64 = 1 << 62;

/// Counters of one class's list that only the slow paths update.
///
/// Invariant (the owner's bookkeeping): `count = fetched + frees - allocs -
/// flushed`, where `allocs` is `sample_target - sample_left` of the list and
/// `frees` the frees pushed onto it, so `frees` needs no counter on the fast
/// path. `nmalloc`/`nfree` are those two values as of the owner's last slow
/// path (or [`MCache::publish_counts`]): what statistics read from other
/// threads, without a lock. `fetched_at_overflow` is `fetched` as of the
/// list's last overflow (see [`MCache::free_slow`]).
struct ListCounters {
    fetched: Cell<u64>,
    flushed: Cell<u64>,
    fetched_at_overflow: Cell<u64>,
    nmalloc: AtomicU64,
    nfree: AtomicU64,
}

/// A thread's cache. See the module documentation for its states.
///
/// `lists[c]` for `1 <= c < NUM_CLASSES` is the list of class `c`;
/// `lists[0]` and the routed lists `lists[NUM_CLASSES + c]` are always empty
/// with limit 0: a sized free the heap profiler routes (a size of class `c`
/// with a sample alive, sizeclass::route_sized_frees) arrives as `NUM_CLASSES + c`
/// and leaves the fast path by its bound check, the one branch it has.
#[repr(C)]
pub struct MCache {
    lists: [CacheList; 2 * NUM_CLASSES],
    counters: [ListCounters; NUM_CLASSES],
    state: Cell<u8>,
    /// Set while the heap profiler works on this thread: allocations made
    /// meanwhile are not sampled (the profiler never re-enters itself).
    in_profiler: Cell<bool>,
    /// The profiler's epoch the countdowns were drawn for (see profile.rs).
    profile_epoch: Cell<u64>,
    /// State of this thread's random number generator (0: not seeded).
    rng: Cell<u64>,
    /// Sum over classes of `limit * class_size`: the most the cache may hold.
    limit_bytes: Cell<usize>,
    /// The heap this cache feeds from, type-erased for the exit hook.
    heap: Cell<*const ()>,
    /// Flushes this cache into `heap` (set on activation; knows the heap's type).
    release: Cell<Option<unsafe fn(*const MCache)>>,
    /// Links in the heap's cache registry (under the registry lock).
    reg_next: Cell<*const MCache>,
    reg_prev: Cell<*const MCache>,
}

// SAFETY: other threads touch an MCache only through the registry, and then
// only its atomic counters and registry links (under the registry lock); the
// Cell fields belong to the owning thread.
unsafe impl Sync for MCache {}

impl Default for MCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MCache {
    /// A FRESH cache.
    pub const fn new() -> Self {
        MCache {
            lists: [const {
                CacheList {
                    head: Cell::new(null_mut()),
                    count: Cell::new(0),
                    limit: Cell::new(0),
                    sample_left: Cell::new(0),
                    sample_target: Cell::new(0),
                }
            }; 2 * NUM_CLASSES],
            counters: [const {
                ListCounters {
                    fetched: Cell::new(0),
                    flushed: Cell::new(0),
                    fetched_at_overflow: Cell::new(0),
                    nmalloc: AtomicU64::new(0),
                    nfree: AtomicU64::new(0),
                }
            }; NUM_CLASSES],
            state: Cell::new(FRESH),
            in_profiler: Cell::new(false),
            profile_epoch: Cell::new(0),
            rng: Cell::new(0),
            limit_bytes: Cell::new(0),
            heap: Cell::new(core::ptr::null()),
            release: Cell::new(None),
            reg_next: Cell::new(core::ptr::null()),
            reg_prev: Cell::new(core::ptr::null()),
        }
    }

    /// The lists of the size classes, with their classes.
    fn class_lists(&self) -> impl Iterator<Item = (usize, &CacheList)> {
        self.lists.iter().enumerate().take(NUM_CLASSES).skip(1)
    }

    #[inline(always)]
    fn list(&self, class: usize) -> &CacheList {
        debug_assert!(class < 2 * NUM_CLASSES);
        // Classes come from the size-class functions; routed ones (only to
        // free, whose lists never have room) from sizeclass::free_class_of.
        // SAFETY: class < 2 * NUM_CLASSES, the length of `lists`.
        unsafe { self.lists.get_unchecked(class) }
    }

    /// Allocates an object of `class`: the fast path. About ten
    /// instructions when the list is non-empty: the pop, and one decrement
    /// of the sampling countdown whose flags say whether this allocation is
    /// the one to sample (the same instruction counts the allocation). Null
    /// only if the OS refuses memory. `route` is the entry of the sized-free
    /// tables that a sized free of the object will read (numbered as
    /// [`crate::sizeclass::class_and_entry`] numbers them), or 0 if none
    /// will: the heap profiler routes that entry while the object is a live
    /// sample. The slow paths take it first after the cache, in the register
    /// where `__rust_alloc` computed it, so that keeping it costs no move
    /// (the instruction-count guard of the bench crate checks this).
    #[inline(always)]
    pub fn alloc<O: OsMem>(&self, heap: &MHeap<O>, class: usize, route: usize) -> *mut u8 {
        let l = self.list(class);
        let head = l.head.get();
        if !head.is_null() {
            // SAFETY: objects on our list are free objects whose first word
            // links to the next (invariant).
            l.head.set(unsafe { (*head).next });
            l.count.set(l.count.get() - 1);
            let left = l.sample_left.get().wrapping_sub(1);
            l.sample_left.set(left);
            if left != 0 {
                return head.cast();
            }
            return self.sample_slow(route, heap, class, head);
        }
        self.alloc_slow(route, heap, class)
    }

    /// Frees an object of `class`: the fast path, a push with one bound check.
    ///
    /// # Safety
    /// `p` must be a live object of `class` allocated from `heap`, unused from now on.
    #[inline(always)]
    pub unsafe fn free<O: OsMem>(&self, heap: &MHeap<O>, class: usize, p: *mut u8) {
        let l = self.list(class);
        let count = l.count.get();
        if count < l.limit.get() {
            let obj = p.cast::<FreeObject>();
            // SAFETY: the object is ours now (caller) and at least 8 bytes.
            unsafe { (*obj).next = l.head.get() };
            l.head.set(obj);
            l.count.set(count + 1);
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.free_slow(heap, class, p) }
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow<O: OsMem>(&self, route: usize, heap: &MHeap<O>, class: usize) -> *mut u8 {
        if self.state.get() == FRESH {
            self.activate(heap);
        }
        if self.state.get() != ACTIVE {
            return alloc_direct(heap, class, self.state.get() == CHECKED);
        }
        if heap.process_heap && self.profile_epoch.get() != crate::profile::epoch() {
            self.arm_all();
        }
        let l = self.list(class);
        if !l.head.get().is_null() {
            // Re-entered during activation and refilled meanwhile.
            return self.alloc(heap, class, route);
        }
        let (head, n) = heap.central[class].get_batch(heap, class, class_batch(class));
        if n == 0 {
            return null_mut();
        }
        heap.counters.class_out[class].fetch_add(n as i64, Relaxed);
        let k = &self.counters[class];
        k.fetched.set(k.fetched.get() + n as u64);
        // SAFETY: the batch is a null-terminated list of n >= 1 free objects, now ours.
        l.head.set(unsafe { (*head).next });
        l.count.set(n as u32 - 1);
        let left = l.sample_left.get() - 1;
        l.sample_left.set(left);
        if left == 0 {
            return self.sample_slow(route, heap, class, head);
        }
        self.publish(class);
        head.cast()
    }

    /// The countdown of `class` ran out: this allocation (`obj`, already
    /// popped and counted) is the one the profiler samples. The object goes
    /// back on the list and a sampled block, with a span of its own and a
    /// record of the call stack, is handed out instead (see profile.rs).
    #[cold]
    #[inline(never)]
    fn sample_slow<O: OsMem>(
        &self,
        route: usize,
        heap: &MHeap<O>,
        class: usize,
        obj: *mut FreeObject,
    ) -> *mut u8 {
        let l = self.list(class);
        let sampling = heap.process_heap && !self.in_profiler.get();
        if sampling {
            // Undo the pop: the object stays cached, uncounted.
            // SAFETY: obj was the head of our list a moment ago; it is a
            // free object of this class, ours.
            unsafe { (*obj).next = l.head.get() };
            l.head.set(obj);
            l.count.set(l.count.get() + 1);
            l.sample_target.set(l.sample_target.get() - 1);
        }
        self.arm(class);
        if sampling {
            self.in_profiler.set(true);
            let p = crate::profile::sample_small(class, route);
            self.in_profiler.set(false);
            if !p.is_null() {
                self.publish(class);
                return p;
            }
            // No memory for the sampled block: serve the object after all.
            // SAFETY: obj is the head of our list again (pushed above).
            l.head.set(unsafe { (*obj).next });
            l.count.set(l.count.get() - 1);
            l.sample_target.set(l.sample_target.get() + 1);
        }
        self.publish(class);
        obj.cast()
    }

    /// Draws the countdown of `class` anew, keeping its allocation count.
    fn arm(&self, class: usize) {
        let l = self.list(class);
        let n = if self.profile_epoch.get() == 0 {
            SAMPLING_OFF
        } else {
            crate::profile::draw_countdown(self.rng(), class_size(class))
        };
        let allocs = l.sample_target.get().wrapping_sub(l.sample_left.get());
        l.sample_target.set(allocs.wrapping_add(n));
        l.sample_left.set(n);
    }

    /// Takes the profiler's current rate for every class (at activation,
    /// and on a slow path after the rate changed).
    fn arm_all(&self) {
        self.profile_epoch.set(crate::profile::epoch());
        for class in 1..NUM_CLASSES {
            self.arm(class);
        }
    }

    /// Takes a new profiler rate now rather than at the next slow path.
    pub(crate) fn rearm_if_changed(&self) {
        if self.state.get() == ACTIVE && self.profile_epoch.get() != crate::profile::epoch() {
            self.arm_all();
        }
    }

    /// Marks the profiler at work on this thread, so that allocations made
    /// meanwhile are not sampled; false if it already was (the caller must
    /// then leave the profiler alone).
    pub(crate) fn enter_profiler(&self) -> bool {
        !self.in_profiler.replace(true)
    }

    /// Ends what [`MCache::enter_profiler`] began.
    pub(crate) fn leave_profiler(&self) {
        self.in_profiler.set(false);
    }

    /// This thread's random number generator state, seeded on first use.
    pub(crate) fn rng(&self) -> &Cell<u64> {
        if self.rng.get() == 0 {
            self.rng.set(crate::profile::seed());
        }
        &self.rng
    }

    /// Makes the counts of `class` visible to statistics on other threads.
    #[inline]
    fn publish(&self, class: usize) {
        let l = self.list(class);
        let k = &self.counters[class];
        let allocs = l.sample_target.get().wrapping_sub(l.sample_left.get());
        let frees = (l.count.get() as u64)
            .wrapping_add(allocs)
            .wrapping_add(k.flushed.get())
            .wrapping_sub(k.fetched.get());
        k.nmalloc.store(allocs, Relaxed);
        k.nfree.store(frees, Relaxed);
    }

    /// Makes every class's counts visible to statistics on other threads
    /// (the fast paths count without publishing).
    pub fn publish_counts(&self) {
        for class in 1..NUM_CLASSES {
            self.publish(class);
        }
    }

    /// # Safety
    /// As for [`MCache::free`].
    #[cold]
    #[inline(never)]
    unsafe fn free_slow<O: OsMem>(&self, heap: &MHeap<O>, class: usize, p: *mut u8) {
        if class >= NUM_CLASSES {
            // SAFETY: forwarded from the caller.
            return unsafe { self.free_routed(heap, class - NUM_CLASSES, p) };
        }
        if self.state.get() == FRESH {
            self.activate(heap);
        }
        if self.state.get() != ACTIVE {
            // SAFETY: forwarded from the caller.
            return unsafe { free_direct(heap, class, p, self.state.get() == CHECKED) };
        }
        let l = self.list(class);
        if l.count.get() >= l.limit.get() && !self.grow_on_overflow(heap, class) {
            self.shrink_limit(heap, class);
            // Whole batches go until there is room: one, or two when the
            // bound was just lowered by a batch.
            while l.count.get() >= l.limit.get() {
                // SAFETY: count >= limit >= one batch, so the list holds a
                // whole batch.
                unsafe { self.flush(heap, class, class_batch(class)) };
            }
            if heap.process_heap {
                // No lock is held here: a good place to start the scavenger
                // (and the profiler's signal thread, if asked for).
                crate::scavenger::on_memory_freed();
                crate::profile::start_signal_thread();
            }
        }
        // SAFETY: forwarded from the caller; there is room now.
        unsafe { self.free(heap, class, p) };
        self.publish(class);
    }

    /// A sized free of `class` while the heap profiler has a sample of its
    /// size alive (routed here as `NUM_CLASSES + class`, see [`MCache`]). A
    /// sampled object starts a page, alone in a Large span: only a pointer
    /// that starts a page is looked up, so the others cost the call of
    /// `free_slow` (into which this is inlined) and a test.
    ///
    /// # Safety
    /// `p` must be a live object of `class` allocated from `heap` (or a
    /// sampled one of its size), unused from now on.
    #[inline(always)]
    unsafe fn free_routed<O: OsMem>(&self, heap: &MHeap<O>, class: usize, p: *mut u8) {
        let s = heap.large_span_at_page(p);
        if !s.is_null() {
            debug_assert!(heap.process_heap, "routing is the global heap's");
            // A sized free's pointer is trusted as on the fast path (the
            // caller's contract), but a Large span it does not start is not
            // its block: stop there rather than free another's.
            // SAFETY: p is a live object (caller), so s is its live span.
            if unsafe { (*s).start } != p as usize {
                crate::fault::report_and_abort("free", p, crate::fault::PointerError::NotOurs);
            }
            // SAFETY: p is a sampled object alone in its Large span s.
            return unsafe { crate::global::free_large(p, s) };
        }
        // SAFETY: p is a live object of this class (caller).
        unsafe { self.free(heap, class, p) }
    }

    /// Sends the first `n` objects of the list of `class` back to the mcentral.
    ///
    /// # Safety
    /// The list must hold at least `n >= 1` objects.
    unsafe fn flush<O: OsMem>(&self, heap: &MHeap<O>, class: usize, n: usize) {
        let l = self.list(class);
        let first = l.head.get();
        let mut last = first;
        for _ in 1..n {
            // SAFETY: the list has at least n objects (caller).
            last = unsafe { (*last).next };
        }
        // SAFETY: last is the n-th object of our list.
        unsafe {
            l.head.set((*last).next);
            (*last).next = null_mut();
        }
        l.count.set(l.count.get() - n as u32);
        let k = &self.counters[class];
        k.flushed.set(k.flushed.get() + n as u64);
        heap.counters.class_out[class].fetch_sub(n as i64, Relaxed);
        // SAFETY: the n objects were free objects of this class in our cache.
        unsafe { heap.central[class].put_batch(heap, class, first, n) };
    }

    /// The list of `class` is full as an object is freed: raises its bound
    /// (true) if this thread also refilled the list from its mcentral since
    /// the last overflow, so that a longer list saves trips both ways. A
    /// thread that only frees objects of a class (a consumer, or a thread
    /// collecting others' blocks) would only hold them longer: its bound
    /// stays, and each overflow sends a batch on to the threads that
    /// allocate.
    fn grow_on_overflow<O: OsMem>(&self, heap: &MHeap<O>, class: usize) -> bool {
        let k = &self.counters[class];
        let refilled = k.fetched.get() != k.fetched_at_overflow.get();
        k.fetched_at_overflow.set(k.fetched.get());
        refilled && self.grow_limit(heap, class)
    }

    /// Raises the bound of `class` by one batch if that class and the
    /// thread's share of the overall budget allow; true if it did.
    fn grow_limit<O: OsMem>(&self, heap: &MHeap<O>, class: usize) -> bool {
        let l = self.list(class);
        let batch = class_batch(class);
        let grown = l.limit.get() as usize + batch;
        let bytes = self.limit_bytes.get() + batch * class_size(class);
        let budget = thread_cache_budget(heap.active_caches.load(Relaxed));
        if grown > max_limit(class) || bytes > budget {
            return false;
        }
        l.limit.set(grown as u32);
        self.limit_bytes.set(bytes);
        true
    }

    /// Lowers the bound of `class` by one batch (never below one batch) if
    /// the cache's bounds add up to more than its share, which happens when
    /// more threads started after it grew: a full list gives back a little
    /// at each overflow until the cache fits its share.
    fn shrink_limit<O: OsMem>(&self, heap: &MHeap<O>, class: usize) {
        let l = self.list(class);
        let batch = class_batch(class);
        let budget = thread_cache_budget(heap.active_caches.load(Relaxed));
        if self.limit_bytes.get() > budget && l.limit.get() as usize > batch {
            l.limit.set(l.limit.get() - batch as u32);
            self.limit_bytes
                .set(self.limit_bytes.get() - batch * class_size(class));
        }
    }

    /// FRESH → ACTIVE: sets the limits, joins the registry, installs the exit hook.
    fn activate<O: OsMem>(&self, heap: &MHeap<O>) {
        if heap.is_checked() {
            self.state.set(CHECKED);
            return;
        }
        self.state.set(ACTIVE);
        let mut bytes = 0;
        for (class, l) in self.class_lists() {
            l.limit.set(class_batch(class) as u32);
            bytes += class_batch(class) * class_size(class);
        }
        self.limit_bytes.set(bytes);
        if heap.process_heap {
            crate::profile::init_from_options();
        }
        self.arm_all();
        self.heap.set(heap as *const MHeap<O> as *const ());
        self.release.set(Some(release_thunk::<O>));
        heap.caches.lock().insert(self);
        heap.active_caches.fetch_add(1, Relaxed);
        if heap.process_heap {
            // The process's heap: arrange the at-exit report, if asked for.
            // atexit may allocate; this cache is usable by now.
            crate::global::register_exit_report();
            // May allocate (and so re-enter this cache, which is usable now).
            // SAFETY: the cache lives in thread-local storage, which outlives
            // the thread's key destructors.
            unsafe {
                thread_exit_hook::register(self as *const MCache as *mut c_void, on_thread_exit)
            };
        }
    }

    /// Gives every cached object back to the mcentrals and leaves the
    /// registry, folding this cache's counters into the heap's: ACTIVE → DEAD.
    /// A thread's exit hook calls this; tests call it on caches they own.
    pub fn release_all<O: OsMem>(&self, heap: &MHeap<O>) {
        if self.state.get() != ACTIVE {
            self.state.set(DEAD);
            return;
        }
        for (_, l) in self.class_lists() {
            l.limit.set(0);
        }
        self.limit_bytes.set(0);
        self.flush_all(heap);
        self.publish_counts();
        let mut reg = heap.caches.lock();
        for (class, k) in self.counters.iter().enumerate().skip(1) {
            heap.counters.class_nmalloc[class].fetch_add(k.nmalloc.swap(0, Relaxed), Relaxed);
            heap.counters.class_nfree[class].fetch_add(k.nfree.swap(0, Relaxed), Relaxed);
        }
        reg.remove(self);
        heap.active_caches.fetch_sub(1, Relaxed);
        self.state.set(DEAD);
    }

    /// In a `fork()` child, whose only thread is the one that forked (this
    /// cache's): drops every other cache from the registry, folding their
    /// counters into the heap's, so that the child's one thread gets the
    /// whole thread-cache budget again. Their cached objects stay stranded
    /// (no thread is left to use them), counted as cached.
    ///
    /// # Safety
    /// Only in the fork child handler, with the registry lock still held by
    /// this thread (taken in the prepare handler), before it is released.
    pub unsafe fn forget_others_after_fork<O: OsMem>(&self, heap: &MHeap<O>) {
        // SAFETY: this thread holds the registry lock (caller); the caches it
        // lists live on in the child's copy of the parent's memory.
        let reg = unsafe { &mut *heap.caches.data_ptr() };
        let mut c = reg.head;
        let mut kept = 0;
        while !c.is_null() {
            // SAFETY: registered caches are alive (invariant, as above).
            let cache = unsafe { &*c };
            let next = cache.reg_next.get();
            if core::ptr::eq(cache, self) {
                kept = 1;
            } else {
                for (class, k) in cache.counters.iter().enumerate().skip(1) {
                    heap.counters.class_nmalloc[class]
                        .fetch_add(k.nmalloc.swap(0, Relaxed), Relaxed);
                    heap.counters.class_nfree[class].fetch_add(k.nfree.swap(0, Relaxed), Relaxed);
                }
                reg.remove(cache);
            }
            c = next;
        }
        heap.active_caches.store(kept, Relaxed);
    }

    /// Gives every cached object back to the mcentrals; the cache stays usable.
    pub fn flush_all<O: OsMem>(&self, heap: &MHeap<O>) {
        for (class, l) in self.class_lists() {
            while l.count.get() > 0 {
                let n = (l.count.get() as usize).min(class_batch(class));
                // SAFETY: the list holds at least n objects.
                unsafe { self.flush(heap, class, n) };
            }
        }
    }

    /// Whether `p` is the object most recently freed into the list of
    /// `class`: a free of it now would be a double free. One comparison,
    /// for the unsized (C) free path, which looks the pointer up anyway.
    #[inline]
    pub fn is_last_freed(&self, class: usize, p: *mut u8) -> bool {
        self.list(class).head.get() == p.cast()
    }

    /// Objects in this cache's list of `class`.
    pub fn cached(&self, class: usize) -> usize {
        self.list(class).count.get() as usize
    }
}

/// An allocation that bypasses the cache (DEAD or CHECKED): one object
/// from the mcentral, counted in the heap's totals.
fn alloc_direct<O: OsMem>(heap: &MHeap<O>, class: usize, checked: bool) -> *mut u8 {
    let (p, n) = heap.central[class].get_batch(heap, class, 1);
    if n == 1 {
        heap.counters.class_nmalloc[class].fetch_add(1, Relaxed);
        heap.counters.class_out[class].fetch_add(1, Relaxed);
        if checked {
            heap.central[class].check_span_of(heap, class, p.cast());
        }
    }
    p.cast()
}

/// A free that bypasses the cache (DEAD or CHECKED); in checked mode the
/// object is first verified to be a live object of `class`.
///
/// # Safety
/// As for [`MCache::free`] (in checked mode a violation is reported and the
/// process aborts instead).
unsafe fn free_direct<O: OsMem>(heap: &MHeap<O>, class: usize, p: *mut u8, checked: bool) {
    if checked {
        if let Err(e) = heap.central[class].verify_live(heap, class, p) {
            crate::fault::report_and_abort("free", p, e);
        }
    }
    let obj = p.cast::<FreeObject>();
    // SAFETY: the object is ours (caller, or verified); it becomes a one-object list.
    unsafe {
        (*obj).next = null_mut();
        heap.central[class].put_batch(heap, class, obj, 1);
    }
    heap.counters.class_nfree[class].fetch_add(1, Relaxed);
    heap.counters.class_out[class].fetch_sub(1, Relaxed);
}

/// Flushes a cache into the heap it was activated with.
///
/// # Safety
/// `c` must be a live cache activated with a `MHeap<O>` that is still alive.
unsafe fn release_thunk<O: OsMem>(c: *const MCache) {
    // SAFETY: the cache was activated with a MHeap<O> (that is how this thunk
    // was chosen) and heaps with exit hooks are statics.
    unsafe {
        let heap = &*((*c).heap.get() as *const MHeap<O>);
        (*c).release_all(heap);
    }
}

/// The pthread-key destructor: runs once in each exiting thread that activated a cache.
unsafe extern "C" fn on_thread_exit(arg: *mut c_void) {
    let c = arg as *const MCache;
    // SAFETY: the key's value is the exiting thread's own cache, still alive
    // (thread-local storage is freed after key destructors run).
    unsafe {
        if let Some(f) = (*c).release.get() {
            f(c);
        }
    }
}

/// Every ACTIVE cache of a heap, linked through the caches themselves.
///
/// Invariant: holds exactly the heap's ACTIVE caches; guarded by the
/// heap's registry lock; a cache leaves it before its memory goes away.
pub struct CacheRegistry {
    head: *const MCache,
}

// SAFETY: the registry is only touched under its lock; the caches it points
// to are Sync for the fields it uses.
unsafe impl Send for CacheRegistry {}

impl CacheRegistry {
    /// Empty.
    pub const fn new() -> Self {
        CacheRegistry {
            head: core::ptr::null(),
        }
    }

    fn insert(&mut self, c: &MCache) {
        c.reg_prev.set(core::ptr::null());
        c.reg_next.set(self.head);
        if !self.head.is_null() {
            // SAFETY: registered caches are alive (invariant).
            unsafe { (*self.head).reg_prev.set(c) };
        }
        self.head = c;
    }

    fn remove(&mut self, c: &MCache) {
        let (prev, next) = (c.reg_prev.get(), c.reg_next.get());
        if prev.is_null() {
            self.head = next;
        } else {
            // SAFETY: registered caches are alive (invariant).
            unsafe { (*prev).reg_next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).reg_prev.set(prev) };
        }
    }

    /// Adds the counters of every registered cache into `classes`.
    pub fn add_counts(&self, classes: &mut [ClassStats; NUM_CLASSES]) {
        let mut c = self.head;
        while !c.is_null() {
            // SAFETY: registered caches are alive; we read only atomics and links.
            let cache = unsafe { &*c };
            for (cs, k) in classes.iter_mut().zip(cache.counters.iter()).skip(1) {
                cs.allocs += k.nmalloc.load(Relaxed);
                cs.frees += k.nfree.load(Relaxed);
            }
            c = cache.reg_next.get();
        }
    }
}

#[cfg(test)]
mod tests;
