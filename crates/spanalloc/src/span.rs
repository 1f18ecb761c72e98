//! mspan: a run of pages that is free, holds objects of one size class, or
//! holds one large object. See lib.rs for the overview.

use crate::sizeclass::{class_nobjs, class_size, object_index, PAGE_SHIFT, PAGE_SIZE};
use core::ptr::null_mut;

/// A free small object: while an object is free its first word links it to
/// the next free object (in a span's free list, a thread cache, or a batch).
#[repr(C)]
pub struct FreeObject {
    /// The next free object, or null.
    pub next: *mut FreeObject,
}

/// What a span's pages are doing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum SpanState {
    /// The struct is not in use (it sits in the metadata allocator's free list).
    Dead = 0,
    /// The pages are free and owned by the page heap.
    Free = 1,
    /// The pages hold small objects of `class`, managed by that class's mcentral.
    Small = 2,
    /// The pages hold one large object starting at `start`.
    Large = 3,
}

/// A span. `next` must stay the first field: the metadata allocator
/// ([`crate::fixalloc`]) links dead spans through the first word, and stale
/// pagemap entries may still read `state` of a dead span, so the free-list
/// link must not overlap `state`.
///
/// Invariants (who may touch what):
/// * `start`, `npages`, `state`, `class`, `elem_size`, `nelems` are written
///   under the heap lock before the span is published in the pagemap, and do
///   not change while the span is Small or Large (except `npages` of a Large
///   span, under the heap lock, in an in-place realloc). They may be read
///   without a lock by anyone holding an object of the span.
/// * `next`/`prev` belong to the list that holds the span: the page heap's
///   free lists (heap lock) for Free spans, the mcentral's lists (its lock) for
///   Small spans.
/// * Free: no two Free spans are adjacent (they are coalesced); the pagemap
///   entries of the first and last page point to the span; `needzero` says
///   whether any page may hold non-zero bytes; `freed_at` is when its pages
///   were last freed. Which pages are released to the OS is kept per page
///   in the pagemap, not here.
/// * Small: every page's pagemap entry points to the span, and
///   `allocated + |freelist| + (objects past bump) == nelems`; every object
///   in `freelist` lies in the span on an object boundary.
/// * Large: the pagemap entries of the first and last page point to the span;
///   `sample` is the heap profiler's record of the object if it was sampled
///   (a sampled small object also gets a Large span of its own, see
///   profile/mod.rs), written by the allocating thread before the object is
///   handed out and cleared by the freeing thread before the span is
///   freed; or `profile::RESERVED` while the profiler keeps the span, its
///   block free, for its next sample (under the profiler's lock). It is
///   null in every other state.
#[repr(C)]
pub struct MSpan {
    /// Next span in the list that holds this one (or in the metadata free list).
    pub next: *mut MSpan,
    /// Previous span in the list that holds this one.
    pub prev: *mut MSpan,
    /// Address of the first page.
    pub start: usize,
    /// Length in pages.
    pub npages: usize,
    /// What the pages are doing.
    pub state: SpanState,
    /// Size class of the objects (Small), 0 otherwise.
    pub class: u8,
    /// Free: some page may hold non-zero bytes.
    pub needzero: bool,
    /// Free: how many of its pages are backed by memory (not released to
    /// the OS), exactly: the pagemap's released bits of its pages say the
    /// same (MHeap::check_invariants compares them). What the span's
    /// `freed_at` is weighted by when free runs merge.
    pub backed: usize,
    /// Free: when the span's pages were last freed (the OS layer's clock,
    /// milliseconds), for the scavenger's decay.
    pub freed_at: u64,
    /// Small: the span is on its mcentral's full list.
    pub in_full_list: bool,
    /// Small: bytes per object.
    pub elem_size: u32,
    /// Small: objects the span holds.
    pub nelems: u32,
    /// Small: objects handed out (to thread caches or the program).
    pub allocated: u32,
    /// Small: objects given back and not handed out again.
    pub freelist: *mut FreeObject,
    /// Small: address of the first object never handed out; objects from here
    /// to the end of the last object are untouched.
    pub bump: usize,
    /// Large: the profiler's record of the object, if it was sampled
    /// (`profile::RESERVED`: kept by the profiler, no live object).
    pub sample: *mut crate::profile::Sample,
}

impl MSpan {
    /// A span with every field cleared, in state Dead.
    pub const fn empty() -> Self {
        MSpan {
            next: null_mut(),
            prev: null_mut(),
            start: 0,
            npages: 0,
            state: SpanState::Dead,
            class: 0,
            needzero: false,
            backed: 0,
            freed_at: 0,
            in_full_list: false,
            elem_size: 0,
            nelems: 0,
            allocated: 0,
            freelist: null_mut(),
            bump: 0,
            sample: null_mut(),
        }
    }

    /// Bytes covered by the span.
    #[inline]
    pub fn bytes(&self) -> usize {
        self.npages << PAGE_SHIFT
    }

    /// First address past the span.
    #[inline]
    pub fn end(&self) -> usize {
        self.start + self.bytes()
    }

    /// Address of the last page.
    #[inline]
    pub fn last_page(&self) -> usize {
        self.end() - PAGE_SIZE
    }

    /// Whether `addr` lies inside the span.
    #[inline]
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.start && addr < self.end()
    }

    /// First address past the last object (Small spans).
    #[inline]
    pub fn objects_end(&self) -> usize {
        self.start + self.nelems as usize * self.elem_size as usize
    }

    /// Turns a span that was just taken from the page heap into a span of
    /// objects of `class`, all free and untouched.
    pub fn init_small(&mut self, class: usize) {
        self.state = SpanState::Small;
        self.class = class as u8;
        self.elem_size = class_size(class) as u32;
        self.nelems = class_nobjs(class) as u32;
        self.allocated = 0;
        self.freelist = null_mut();
        self.bump = self.start;
        self.in_full_list = false;
        debug_assert!(self.objects_end() <= self.end());
    }

    /// Whether the span has no object left to hand out.
    #[inline]
    pub fn is_exhausted(&self) -> bool {
        self.freelist.is_null() && self.bump >= self.objects_end()
    }

    /// Hands out up to `want` objects, linking each in front of `*list`.
    /// Returns how many it handed out. Objects given back come first (they are
    /// likely in cache), then untouched ones.
    pub fn take_objects(&mut self, want: usize, list: &mut *mut FreeObject) -> usize {
        let mut n = 0;
        while n < want && !self.freelist.is_null() {
            let obj = self.freelist;
            // SAFETY: objects on the span's free list are free objects of this
            // span (invariant), so their first word is a valid link.
            self.freelist = unsafe { (*obj).next };
            // SAFETY: the object is free and now ours to link.
            unsafe { (*obj).next = *list };
            *list = obj;
            n += 1;
        }
        let end = self.objects_end();
        while n < want && self.bump < end {
            let obj = self.bump as *mut FreeObject;
            self.bump += self.elem_size as usize;
            // SAFETY: obj is an untouched object inside the span's committed
            // pages, aligned to at least 8 bytes (class sizes are multiples of 8).
            unsafe { (*obj).next = *list };
            *list = obj;
            n += 1;
        }
        self.allocated += n as u32;
        n
    }

    /// Takes back one object that was handed out.
    ///
    /// # Safety
    /// `obj` must be an object of this span that is currently handed out and
    /// is no longer used by anyone.
    pub unsafe fn return_object(&mut self, obj: *mut FreeObject) {
        debug_assert!(self.is_object_address(obj as usize));
        debug_assert!(self.allocated > 0);
        // SAFETY: the caller gives us the object, so its first word is ours.
        unsafe { (*obj).next = self.freelist };
        self.freelist = obj;
        self.allocated -= 1;
    }

    /// Whether `addr` is the start of an object slot of this Small span.
    pub fn is_object_address(&self, addr: usize) -> bool {
        // The object index by multiply-and-shift (exact inside the span,
        // sizeclass.rs proves it), not a division: C's free(), which finds
        // the span from the address alone, asks this on every call.
        addr >= self.start && addr < self.objects_end() && {
            let offset = addr - self.start;
            object_index(self.class as usize, offset) * self.elem_size as usize == offset
        }
    }

    /// Checks the invariants written on [`MSpan`] (expensive for Small spans:
    /// walks the free list). Panics with a description on failure.
    pub fn check_invariants(&self) {
        assert!(self.npages > 0, "span at {:#x} has no pages", self.start);
        assert_eq!(
            self.start % PAGE_SIZE,
            0,
            "span start {:#x} not page-aligned",
            self.start
        );
        if self.state == SpanState::Small {
            assert!(self.objects_end() <= self.end());
            assert!(self.bump >= self.start && self.bump <= self.objects_end());
            assert_eq!((self.bump - self.start) % self.elem_size as usize, 0);
            let mut free = 0usize;
            let mut p = self.freelist;
            while !p.is_null() {
                assert!(
                    self.is_object_address(p as usize) && (p as usize) < self.bump,
                    "bad free object {p:?}"
                );
                free += 1;
                assert!(
                    free <= self.nelems as usize,
                    "free list cycle in span {:#x}",
                    self.start
                );
                // SAFETY: p passed the checks above: it is a free object of this span.
                p = unsafe { (*p).next };
            }
            let untouched = (self.objects_end() - self.bump) / self.elem_size as usize;
            assert_eq!(
                self.allocated as usize + free + untouched,
                self.nelems as usize,
                "span {:#x} count mismatch",
                self.start
            );
        }
    }
}

/// An intrusive doubly-linked list of spans, through `MSpan::next`/`prev`.
///
/// Invariant: `len` is the number of spans reachable from `head`; each span
/// is on at most one list; `head.prev` is null.
pub struct SpanList {
    head: *mut MSpan,
    len: usize,
}

// SAFETY: a list only links span records; whoever owns the list (under the
// heap or an mcentral lock) owns access to them, from any thread.
unsafe impl Send for SpanList {}

impl SpanList {
    /// An empty list.
    pub const fn new() -> Self {
        SpanList {
            head: null_mut(),
            len: 0,
        }
    }

    /// Whether the list is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Number of spans on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The first span, or null.
    #[inline]
    pub fn first(&self) -> *mut MSpan {
        self.head
    }

    /// Puts `s` at the front.
    ///
    /// # Safety
    /// `s` must be a valid span on no list, and the caller must own the list.
    pub unsafe fn push_front(&mut self, s: *mut MSpan) {
        // SAFETY: s is valid and on no list (caller); head, if any, is on this list.
        unsafe {
            (*s).prev = null_mut();
            (*s).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// Takes `s` off the list.
    ///
    /// # Safety
    /// `s` must be on this list.
    pub unsafe fn remove(&mut self, s: *mut MSpan) {
        // SAFETY: s and its neighbours are on this list (caller).
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if prev.is_null() {
                debug_assert_eq!(self.head, s);
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*s).next = null_mut();
            (*s).prev = null_mut();
        }
        self.len -= 1;
    }

    /// Iterates over the spans (the list must not change meanwhile).
    pub fn iter(&self) -> impl Iterator<Item = *mut MSpan> + '_ {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            let s = cur;
            // SAFETY: spans on the list are valid while the list is borrowed.
            cur = unsafe { (*s).next };
            Some(s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizeclass::{class_of, span_bytes};

    /// A span over real, page-aligned memory from the test allocator.
    fn with_small_span(class: usize, f: impl FnOnce(&mut MSpan)) {
        let bytes = span_bytes(class);
        let layout = std::alloc::Layout::from_size_align(bytes, PAGE_SIZE).unwrap();
        // SAFETY: non-zero size.
        let mem = unsafe { std::alloc::alloc(layout) };
        assert!(!mem.is_null());
        let mut s = MSpan::empty();
        s.start = mem as usize;
        s.npages = bytes / PAGE_SIZE;
        s.init_small(class);
        f(&mut s);
        // SAFETY: allocated above with the same layout.
        unsafe { std::alloc::dealloc(mem, layout) };
    }

    #[test]
    fn hands_out_every_object_once_then_takes_them_back() {
        for class in [1, class_of(48), class_of(1000), class_of(32768)] {
            with_small_span(class, |s| {
                let n = s.nelems as usize;
                let mut list = null_mut();
                let mut got = 0;
                while got < n {
                    let k = s.take_objects(3, &mut list);
                    assert!(k > 0);
                    got += k;
                    s.check_invariants();
                }
                assert!(s.is_exhausted());
                assert_eq!(s.take_objects(1, &mut list), 0);
                let mut seen = std::collections::HashSet::new();
                let mut p = list;
                while !p.is_null() {
                    assert!(s.is_object_address(p as usize));
                    assert!(seen.insert(p as usize), "object handed out twice");
                    // SAFETY: p is one of the objects we were handed.
                    let next = unsafe { (*p).next };
                    // SAFETY: p is handed out and unused.
                    unsafe { s.return_object(p) };
                    s.check_invariants();
                    p = next;
                }
                assert_eq!(seen.len(), n);
                assert_eq!(s.allocated, 0);
                // Returned objects are handed out again before untouched ones run out.
                let mut again = null_mut();
                assert_eq!(s.take_objects(n, &mut again), n);
                s.check_invariants();
            });
        }
    }

    #[test]
    #[should_panic(expected = "count mismatch")]
    fn invariant_check_catches_a_miscount() {
        with_small_span(class_of(64), |s| {
            let mut list = null_mut();
            s.take_objects(4, &mut list);
            s.allocated += 1;
            s.check_invariants();
        });
    }

    #[test]
    fn span_list_push_remove() {
        let mut spans: Vec<MSpan> = (0..4).map(|_| MSpan::empty()).collect();
        let ptrs: Vec<*mut MSpan> = spans.iter_mut().map(|s| s as *mut MSpan).collect();
        let mut l = SpanList::new();
        for &p in &ptrs {
            // SAFETY: each span is valid and on no list.
            unsafe { l.push_front(p) };
        }
        assert_eq!(l.len(), 4);
        // SAFETY: ptrs[1] and ptrs[3] are on the list.
        unsafe {
            l.remove(ptrs[1]);
            l.remove(ptrs[3]);
        }
        let order: Vec<_> = l.iter().collect();
        assert_eq!(order, vec![ptrs[2], ptrs[0]]);
        assert_eq!(l.len(), 2);
    }
}
