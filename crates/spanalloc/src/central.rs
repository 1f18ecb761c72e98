//! mcentral: the central list of one size class. See lib.rs for the overview.
//!
//! It owns the class's spans that have objects handed out: `partial` (some
//! object free) and `full` (none free). Thread caches take and give back
//! objects in batches: first through the lock-free transfer slots
//! ([`crate::transfer`]), which move whole batches between threads without
//! touching a span; only when those are empty (or full) does the central list
//! take its lock and carve objects out of spans (or put them back).
//! A span whose objects have all come back returns to the page heap.

use crate::fault::PointerError;
use crate::heap::MHeap;
use crate::os::OsMem;
use crate::sizeclass::{class_batch, class_size};
use crate::span::{FreeObject, MSpan, SpanList, SpanState};
use crate::sync::{Mutex, MutexGuard};
use crate::transfer::{TransferSlots, TRANSFER_SLOTS};
use core::ptr::null_mut;

/// Bytes of objects one class may park in its transfer slots.
const TRANSFER_BYTES: usize = 1 << 20;

/// How many batches the transfer slots of `class` may hold: about
/// `TRANSFER_BYTES` of objects, and at least 8 batches.
pub fn transfer_capacity(class: usize) -> usize {
    let batch_bytes = class_batch(class) * class_size(class);
    (TRANSFER_BYTES / batch_bytes).clamp(8, TRANSFER_SLOTS)
}

/// The spans of one class, under the central lock.
///
/// Invariants: every span on `partial` is Small, of this class, with
/// `in_full_list == false` and at least one object handed out or not yet
/// handed out; every span on `full` is Small, of this class, exhausted, with
/// `in_full_list == true`.
pub struct CentralLists {
    partial: SpanList,
    full: SpanList,
}

/// The central list of one size class.
#[repr(align(64))]
pub struct MCentral {
    transfer: TransferSlots,
    lists: Mutex<CentralLists>,
}

impl MCentral {
    /// An empty central list.
    pub const fn new() -> Self {
        MCentral {
            transfer: TransferSlots::new(),
            lists: Mutex::new(CentralLists {
                partial: SpanList::new(),
                full: SpanList::new(),
            }),
        }
    }

    /// Takes the central lock without a guard (for `fork()`).
    pub fn raw_lock(&self) {
        self.lists.raw_lock();
    }

    /// Releases a lock taken with [`MCentral::raw_lock`].
    ///
    /// # Safety
    /// The calling thread must hold it through `raw_lock`.
    pub unsafe fn raw_unlock(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.lists.raw_unlock() }
    }

    /// Hands out up to `want` objects of `class` as a null-terminated list.
    /// Returns the list and its length; length 0 means out of memory.
    pub fn get_batch<O: OsMem>(
        &self,
        heap: &MHeap<O>,
        class: usize,
        want: usize,
    ) -> (*mut FreeObject, usize) {
        if want == class_batch(class) {
            let b = self.transfer.pop();
            if !b.is_null() {
                return (b, want);
            }
        }
        let mut l = self.lists.lock();
        let mut head = null_mut();
        let mut n = 0;
        while n < want {
            let mut s = l.partial.first();
            if s.is_null() {
                s = heap.alloc_small_span(class);
                if s.is_null() {
                    break;
                }
                // SAFETY: a fresh span is on no list.
                unsafe { l.partial.push_front(s) };
            }
            // SAFETY: s is a Small span of this class on our partial list; the
            // central lock is held.
            unsafe {
                n += (*s).take_objects(want - n, &mut head);
                if (*s).is_exhausted() {
                    l.partial.remove(s);
                    l.full.push_front(s);
                    (*s).in_full_list = true;
                }
            }
        }
        (head, n)
    }

    /// Takes back a null-terminated list of `n` objects of `class`.
    ///
    /// # Safety
    /// Every object on the list must be a handed-out object of `class` from
    /// this heap that nobody uses any more.
    pub unsafe fn put_batch<O: OsMem>(
        &self,
        heap: &MHeap<O>,
        class: usize,
        head: *mut FreeObject,
        n: usize,
    ) {
        if n == class_batch(class) && self.transfer.push(head, transfer_capacity(class)) {
            return;
        }
        let mut l = self.lists.lock();
        // SAFETY: forwarded from the caller.
        unsafe { Self::return_list(heap, &mut l, head) };
    }

    /// Puts each object of a list back into its span.
    ///
    /// # Safety
    /// As for [`MCentral::put_batch`]; the central lock is held (`l`).
    unsafe fn return_list<O: OsMem>(
        heap: &MHeap<O>,
        l: &mut MutexGuard<'_, CentralLists>,
        mut obj: *mut FreeObject,
    ) {
        while !obj.is_null() {
            // SAFETY: obj is a handed-out object of ours (caller): its span is
            // a Small span of this class, on one of our lists.
            unsafe {
                let next = (*obj).next;
                let s: *mut MSpan = heap.pagemap.lookup(obj as usize);
                debug_assert!(
                    !s.is_null()
                        && (*s).state == SpanState::Small
                        && (*s).is_object_address(obj as usize)
                );
                if (*s).allocated == 0 {
                    // Every object of the span is free already: this one was
                    // freed twice. Caught here, off the fast path.
                    crate::fault::report_and_abort("free", obj.cast(), PointerError::DoubleFree);
                }
                (*s).return_object(obj);
                if (*s).in_full_list {
                    l.full.remove(s);
                    l.partial.push_front(s);
                    (*s).in_full_list = false;
                }
                if (*s).allocated == 0 {
                    l.partial.remove(s);
                    heap.free_small_span(s);
                }
                obj = next;
            }
        }
    }

    /// Moves every batch parked in the transfer slots back into its spans
    /// (so that empty spans can return to the page heap).
    pub fn drain_transfer<O: OsMem>(&self, heap: &MHeap<O>, _class: usize) {
        loop {
            let b = self.transfer.pop();
            if b.is_null() {
                return;
            }
            let mut l = self.lists.lock();
            // SAFETY: parked batches hold handed-out objects nobody uses (slot invariant).
            unsafe { Self::return_list(heap, &mut l, b) };
        }
    }

    /// Verifies that `p` is a handed-out object of `class` in a span of this
    /// central list: `NotOurs` if it is no object of the class or was never
    /// handed out, `DoubleFree` if it is on its span's free list. Checks the
    /// span's invariants too. O(objects in the span): for checked mode.
    /// (Objects sitting in thread caches or transfer slots are not seen; in
    /// checked mode there are none.)
    pub fn verify_live<O: OsMem>(
        &self,
        heap: &MHeap<O>,
        class: usize,
        p: *mut u8,
    ) -> Result<(), PointerError> {
        let s = heap.object_span(p);
        let _l = self.lists.lock();
        // SAFETY: object_span returns null or a live span record; its
        // small-object fields are ours to read under the central lock.
        unsafe {
            if s.is_null() || (*s).state != SpanState::Small || (*s).class as usize != class {
                return Err(PointerError::NotOurs);
            }
            if p as usize >= (*s).bump {
                return Err(PointerError::NotOurs);
            }
            let mut f = (*s).freelist;
            while !f.is_null() {
                if core::ptr::eq(f.cast::<u8>(), p) {
                    return Err(PointerError::DoubleFree);
                }
                f = (*f).next;
            }
            (*s).check_invariants();
        }
        Ok(())
    }

    /// Checks the invariants of the span holding the object `p`.
    pub fn check_span_of<O: OsMem>(&self, heap: &MHeap<O>, class: usize, p: *mut u8) {
        let s = heap.pagemap.lookup(p as usize);
        let _l = self.lists.lock();
        // SAFETY: p is an object we just handed out, so s is its live span.
        unsafe {
            assert_eq!((*s).class as usize, class);
            (*s).check_invariants();
        }
    }

    /// Batches parked in the transfer slots right now.
    pub fn parked_batches(&self) -> usize {
        self.transfer.parked()
    }

    /// Spans on the partial and full lists.
    pub fn span_counts(&self) -> (usize, usize) {
        let l = self.lists.lock();
        (l.partial.len(), l.full.len())
    }

    /// Checks the list invariants and every span's. Panics on failure.
    pub fn check_invariants<O: OsMem>(&self, heap: &MHeap<O>, class: usize) {
        let l = self.lists.lock();
        for (list, full) in [(&l.partial, false), (&l.full, true)] {
            for s in list.iter() {
                // SAFETY: spans on our lists are valid Small spans (central lock held).
                let sp = unsafe { &*s };
                assert_eq!(sp.state, SpanState::Small);
                assert_eq!(
                    sp.class as usize, class,
                    "span {:#x} on the wrong central list",
                    sp.start
                );
                assert_eq!(sp.in_full_list, full);
                assert_eq!(
                    sp.is_exhausted(),
                    full,
                    "span {:#x} on the wrong list",
                    sp.start
                );
                sp.check_invariants();
                for page in 0..sp.npages {
                    assert_eq!(
                        heap.pagemap
                            .lookup(sp.start + page * crate::sizeclass::PAGE_SIZE),
                        s
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::tests::test_heap;
    use crate::sizeclass::{class_nobjs, class_of};

    const BUDGET: usize = (32 << 20) + (8 << 20) + crate::pagemap::ARENA_SIZE;

    fn collect(mut p: *mut FreeObject) -> Vec<*mut FreeObject> {
        let mut v = vec![];
        while !p.is_null() {
            v.push(p);
            // SAFETY: p is on a list we were handed.
            p = unsafe { (*p).next };
        }
        v
    }

    #[test]
    fn batches_come_from_spans_and_spans_go_back_when_empty() {
        let heap = test_heap(BUDGET);
        let class = class_of(512);
        let c = &heap.central[class];
        let per_span = class_nobjs(class);
        // More than one span's worth, in odd-sized batches.
        let mut got = vec![];
        while got.len() < per_span + 5 {
            let (head, n) = c.get_batch(heap, class, 7);
            assert_eq!(n, 7);
            got.extend(collect(head));
        }
        let (partial, full) = c.span_counts();
        assert_eq!((partial, full), (1, 1), "one exhausted span and one in use");
        c.check_invariants(heap, class);
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), got.len());
        // Give them back one odd batch at a time (not the transfer size, so
        // they go into their spans).
        for chunk in got.chunks(3) {
            for w in chunk.windows(2) {
                // SAFETY: the objects are ours; relink them into a batch.
                unsafe { (*w[0]).next = w[1] };
            }
            // SAFETY: as above; the last one ends the list.
            unsafe {
                (**chunk.last().unwrap()).next = core::ptr::null_mut();
                c.put_batch(heap, class, chunk[0], chunk.len());
            }
            c.check_invariants(heap, class);
        }
        assert_eq!(c.span_counts(), (0, 0), "empty spans went back to the heap");
        assert_eq!(heap.stats().span_bytes_in_use, 0);
        heap.check_invariants();
    }

    #[test]
    fn full_batches_pass_through_the_transfer_slots() {
        let heap = test_heap(BUDGET);
        let class = class_of(64);
        let c = &heap.central[class];
        let b = class_batch(class);
        let (head, n) = c.get_batch(heap, class, b);
        assert_eq!(n, b);
        // SAFETY: a batch we were just handed, returned whole.
        unsafe { c.put_batch(heap, class, head, n) };
        assert_eq!(c.parked_batches(), 1);
        let (again, m) = c.get_batch(heap, class, b);
        assert_eq!(
            (again, m),
            (head, b),
            "the parked batch is handed over as is"
        );
        assert_eq!(c.parked_batches(), 0);
        // SAFETY: as above.
        unsafe { c.put_batch(heap, class, again, m) };
        c.drain_transfer(heap, class);
        assert_eq!(c.parked_batches(), 0);
        assert_eq!(c.span_counts(), (0, 0));
        heap.check_invariants();
    }

    #[test]
    fn out_of_memory_hands_out_nothing() {
        let heap = test_heap(32 << 20);
        let (head, n) = heap.central[1].get_batch(heap, 1, 4);
        assert!(head.is_null());
        assert_eq!(n, 0);
    }
}
