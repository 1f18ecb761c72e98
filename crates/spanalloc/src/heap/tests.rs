//! Tests of the page heap, driven through the fake OS layer.

use super::*;
use crate::os::fake::FakeOs;
use core::sync::atomic::Ordering::SeqCst;

/// Address space the pagemap's top level takes.
const ROOT_BYTES: usize = 32 << 20;
/// Enough budget for the pagemap, metadata and `arenas` arenas.
fn budget(arenas: usize) -> usize {
    ROOT_BYTES + (4 << 20) + arenas * ARENA_SIZE
}

pub(crate) fn test_heap(budget: usize) -> &'static MHeap<FakeOs> {
    Box::leak(Box::new(MHeap::new(FakeOs::with_budget(budget), false)))
}

fn fill(p: *mut u8, len: usize, v: u8) {
    // SAFETY: tests call this on live blocks of at least len bytes.
    unsafe { p.write_bytes(v, len) };
}

fn holds(p: *mut u8, len: usize, v: u8) -> bool {
    // SAFETY: tests call this on live blocks of at least len bytes.
    unsafe { core::slice::from_raw_parts(p, len).iter().all(|&b| b == v) }
}

#[test]
fn large_objects_are_page_runs_that_merge_back() {
    let heap = test_heap(budget(1));
    let sizes = [40 << 10, 100 << 10, 1 << 20, 8192 * 3 + 1, 5 << 20];
    let blocks: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let (p, needzero) = heap.alloc_large(size, 8);
            assert!(!p.is_null());
            assert!(!needzero, "fresh arena memory is zero");
            assert_eq!(p as usize % PAGE_SIZE, 0);
            fill(p, size, i as u8);
            (p, size)
        })
        .collect();
    heap.check_invariants();
    for (i, &(p, size)) in blocks.iter().enumerate() {
        assert!(holds(p, size, i as u8));
        // SAFETY: p is a live large object of this heap.
        assert!(unsafe { heap.large_size(p) } >= size);
    }
    // Free in an order that forces merges on both sides.
    for &i in &[1, 3, 2, 0, 4] {
        // SAFETY: each block is live and freed once.
        unsafe { heap.free_large(blocks[i].0) };
        heap.check_invariants();
    }
    let st = heap.stats();
    assert_eq!(
        heap.free_bytes(),
        st.mapped_bytes,
        "everything merged back into free runs"
    );
    assert_eq!(st.large_allocs, 5);
    assert_eq!(st.large_frees, 5);
    assert_eq!(st.large_bytes, 0);
    assert_eq!(st.span_bytes_in_use, 0);
    // Reused pages may be dirty: alloc_zeroed must then clear them.
    let (_, needzero) = heap.alloc_large(64 << 10, 8);
    assert!(needzero);
}

#[test]
fn large_alignments_are_honoured() {
    let heap = test_heap(budget(12));
    let mut live = vec![];
    for shift in 13..=25 {
        let align = 1usize << shift;
        for size in [align / 2, align, 3 * align + 100] {
            let (p, _) = heap.alloc_large(size.max(40 << 10), align);
            assert!(!p.is_null(), "align {align} size {size}");
            assert_eq!(p as usize % align, 0, "align {align}");
            live.push(p);
        }
        heap.check_invariants();
    }
    for p in live {
        // SAFETY: p is live and freed once.
        unsafe { heap.free_large(p) };
    }
    heap.check_invariants();
    assert_eq!(heap.free_bytes(), heap.stats().mapped_bytes);
}

#[test]
fn objects_bigger_than_an_arena_get_their_own_region() {
    let heap = test_heap(budget(4));
    let size = ARENA_SIZE + ARENA_SIZE / 2;
    let (p, _) = heap.alloc_large(size, 8);
    assert!(!p.is_null());
    fill(p, size, 0xAB);
    assert!(holds(p, size, 0xAB));
    heap.check_invariants();
    // SAFETY: live, freed once.
    unsafe { heap.free_large(p) };
    heap.check_invariants();
}

#[test]
fn resize_in_place_grows_into_free_neighbours_and_shrinks() {
    let heap = test_heap(budget(1));
    let (a, _) = heap.alloc_large(64 << 10, 8);
    let (b, _) = heap.alloc_large(64 << 10, 8);
    fill(a, 64 << 10, 1);
    // Fresh runs are split front to back, so b sits right after a: while b
    // is in use, a cannot grow.
    assert_eq!(b as usize, a as usize + (64 << 10));
    // SAFETY: a is live.
    let grew = unsafe { heap.resize_large_in_place(a, 200 << 10) };
    assert!(!grew);
    // SAFETY: b is live; freed once.
    unsafe { heap.free_large(b) };
    // SAFETY: a is live.
    unsafe {
        assert!(heap.resize_large_in_place(a, 300 << 10));
        assert!(heap.large_size(a) >= 300 << 10);
        assert!(holds(a, 64 << 10, 1), "contents kept");
        fill(a, 300 << 10, 2);
        heap.check_invariants();
        assert!(heap.resize_large_in_place(a, 40 << 10));
        assert_eq!(heap.large_size(a), 40 << 10);
        heap.check_invariants();
        assert!(holds(a, 40 << 10, 2));
        assert_eq!(heap.stats().large_bytes, 40 << 10);
        heap.free_large(a);
    }
    heap.check_invariants();
    assert_eq!(heap.free_bytes(), heap.stats().mapped_bytes);
}

#[test]
fn out_of_memory_returns_null_keeps_contents_and_recovers() {
    let heap = test_heap(budget(1));
    let mut live = vec![];
    loop {
        let (p, _) = heap.alloc_large(1 << 20, 8);
        if p.is_null() {
            break;
        }
        fill(p, 1 << 20, live.len() as u8);
        live.push(p);
        assert!(live.len() < 1000, "the budget should run out");
    }
    assert!(heap.os().refusals.load(SeqCst) > 0);
    assert!(
        live.len() >= 60,
        "one arena holds 64 of them, got {}",
        live.len()
    );
    for (i, &p) in live.iter().enumerate() {
        assert!(
            holds(p, 1 << 20, i as u8),
            "block {i} damaged by the failure"
        );
    }
    heap.check_invariants();
    // Freeing makes memory available again without the OS.
    // SAFETY: live, freed once.
    unsafe { heap.free_large(live.pop().unwrap()) };
    let (p, _) = heap.alloc_large(1 << 20, 8);
    assert!(!p.is_null());
    live.push(p);
    // More budget: growth works again.
    heap.os().set_budget(2 * ARENA_SIZE);
    let (q, _) = heap.alloc_large(4 << 20, 8);
    assert!(!q.is_null());
    live.push(q);
    for p in live {
        // SAFETY: live, freed once.
        unsafe { heap.free_large(p) };
    }
    heap.check_invariants();
}

#[test]
fn a_small_request_gets_pages_when_a_whole_arena_is_refused() {
    let heap = test_heap(ROOT_BYTES + (2 << 20));
    let (p, _) = heap.alloc_large(100 << 10, 8);
    assert!(
        !p.is_null(),
        "a 64 MiB arena does not fit the budget, 128 KiB does"
    );
    assert!(heap.stats().mapped_bytes < ARENA_SIZE);
    heap.check_invariants();
}

#[test]
fn overflowing_sizes_are_refused() {
    let heap = test_heap(budget(1));
    for size in [
        usize::MAX,
        usize::MAX - PAGE_SIZE,
        isize::MAX as usize,
        1 << 62,
    ] {
        assert!(heap.alloc_large(size, 8).0.is_null());
        assert!(heap.alloc_large(size, 1 << 21).0.is_null());
    }
    heap.check_invariants();
}

#[test]
fn small_spans_are_recorded_for_every_page_and_come_back() {
    let heap = test_heap(budget(1));
    let class = (1..NUM_CLASSES).find(|&c| class_npages(c) > 1).unwrap();
    let s = heap.alloc_small_span(class);
    assert!(!s.is_null());
    // SAFETY: s is a live small span we own.
    unsafe {
        for page in 0..(*s).npages {
            let addr = (*s).start + page * PAGE_SIZE;
            assert_eq!(heap.pagemap.lookup(addr), s);
        }
        assert_eq!(heap.object_span((*s).start as *const u8), s);
        assert!(
            heap.object_span(((*s).start + 1) as *const u8).is_null(),
            "interior pointers are not objects"
        );
        heap.free_small_span(s);
    }
    heap.check_invariants();
    assert_eq!(heap.free_bytes(), heap.stats().mapped_bytes);
}

#[test]
fn release_returns_free_pages_to_the_os_and_they_read_zero() {
    let heap = test_heap(budget(1));
    let mapped = || heap.stats().mapped_bytes;
    let (p, _) = heap.alloc_large(512 << 10, 8);
    assert_eq!(
        heap.stats().released_bytes,
        mapped() - (512 << 10),
        "fresh pages count as unbacked"
    );
    fill(p, 512 << 10, 0xEE);
    // SAFETY: live, freed once.
    unsafe { heap.free_large(p) };
    assert_eq!(
        heap.retained_bytes(),
        512 << 10,
        "the dirty pages are retained"
    );
    let released = heap.release_free_pages();
    assert_eq!(
        released,
        512 << 10,
        "only pages that were used are given back"
    );
    assert_eq!(heap.stats().released_bytes, mapped());
    assert_eq!(heap.held_bytes(), 0);
    assert!(heap.os().decommitted.load(SeqCst) >= released);
    assert_eq!(heap.release_free_pages(), 0, "nothing left to release");
    let (q, needzero) = heap.alloc_large(512 << 10, 8);
    assert!(!needzero, "released pages read as zero");
    assert!(holds(q, 512 << 10, 0));
    assert_eq!(heap.stats().released_bytes, mapped() - (512 << 10));
    heap.check_invariants();
}

#[test]
fn freed_large_objects_keep_their_pages_for_the_next_allocation() {
    let heap = test_heap(budget(1));
    let (p, _) = heap.alloc_large(8 << 20, 8);
    fill(p, 8 << 20, 1);
    let released = heap.stats().released_bytes;
    // SAFETY: live, freed once.
    unsafe { heap.free_large(p) };
    assert_eq!(heap.os().decommitted.load(SeqCst), 0, "nothing returned");
    assert_eq!(heap.retained_bytes(), 8 << 20);
    assert_eq!(heap.stats().released_bytes, released);
    // The same pages serve the next object of that size: still backed, so
    // no page fault, but they must be cleared for alloc_zeroed.
    let (q, needzero) = heap.alloc_large(8 << 20, 8);
    assert_eq!(q, p);
    assert!(needzero);
    assert!(holds(q, 8 << 20, 1));
    assert_eq!(heap.retained_bytes(), 0);
    assert_eq!(heap.stats().released_bytes, released);
    heap.check_invariants();
    // SAFETY: live, freed once.
    unsafe { heap.free_large(q) };
    heap.check_invariants();
}

#[test]
fn returning_part_of_a_free_run_takes_its_top_in_whole_huge_pages() {
    use crate::scavenger::HUGE_PAGE;
    let heap = test_heap(budget(1));
    let (live, _) = heap.alloc_large(1 << 20, 8);
    let (p, _) = heap.alloc_large(40 << 20, 8);
    // SAFETY: live, freed once.
    unsafe { heap.free_large(p) };
    let run = heap.pagemap.lookup(p as usize);
    // SAFETY: run is the free run p's pages joined (the rest of the arena
    // above them, never used, was released from the start); we hold the
    // heap lock while returning part of it.
    let returned = unsafe {
        let _ph = heap.lock();
        assert_eq!((*run).start, p as usize);
        heap.release_tail_locked(run, 5 << 20)
    };
    // From the top of the object: 5 MiB, and the rest of the huge page that
    // piece starts in.
    let top = p as usize + (40 << 20);
    let cut = (top - (5 << 20)) & !(HUGE_PAGE - 1);
    assert_eq!(returned, top - cut);
    assert!((5 << 20..(5 << 20) + HUGE_PAGE).contains(&returned));
    assert_eq!(heap.os().decommitted.load(SeqCst), returned);
    assert_eq!(heap.retained_bytes(), (40 << 20) - returned);
    // SAFETY: the pages lie in the free run; no other thread uses the heap.
    unsafe {
        assert!(heap.pagemap.all_released(cut, (top - cut) >> PAGE_SHIFT));
        assert!(!heap.pagemap.all_released(cut - PAGE_SIZE, 1));
        assert!(!heap.pagemap.all_released(p as usize, 1));
    }
    heap.check_invariants();
    // SAFETY: live, freed once.
    unsafe { heap.free_large(live) };
    heap.check_invariants();
}

#[test]
fn merged_runs_are_as_old_as_their_backed_pages() {
    use crate::scavenger::Policy;
    let heap = test_heap(budget(1));
    let mib = 1 << 20;
    // A at [0, 28 MiB) of the arena, B at [28, 60 MiB); the rest is clean.
    let (a, _) = heap.alloc_large(28 * mib, 8);
    let (b, _) = heap.alloc_large(32 * mib, 8);
    assert_eq!(b as usize, a as usize + 28 * mib);
    fill(a, 28 * mib, 1);
    fill(b, 32 * mib, 2);
    heap.os().clock_ms.store(1_000, SeqCst);
    // SAFETY: live, freed once.
    unsafe { heap.free_large(b) };
    let run = heap.pagemap.lookup(b as usize);
    // SAFETY: run is B's free run (joined with the clean rest of the
    // arena); the heap lock is held while part of it is returned.
    unsafe {
        let _ph = heap.lock();
        assert_eq!((*run).backed, (32 * mib) >> PAGE_SHIFT);
        assert_eq!(heap.release_tail_locked(run, 28 * mib), 28 * mib);
        assert_eq!((*run).backed, (4 * mib) >> PAGE_SHIFT);
        assert!((*run).needzero);
    }
    heap.check_invariants();
    // A, freed later next to the run's 4 MiB still backed: the merged run
    // is mostly A's 28 MiB, freed at 5 000 ms, so its age is 4 500 ms (had
    // the run's released pages counted, it would be 2 867 ms and A's pages
    // would go back before A had been free for the decay time).
    heap.os().clock_ms.store(5_000, SeqCst);
    // SAFETY: live, freed once.
    unsafe { heap.free_large(a) };
    let merged = heap.pagemap.lookup(a as usize);
    // SAFETY: the merged free run's record; no other thread uses the heap.
    unsafe { assert_eq!(((*merged).freed_at, (*merged).backed), (4_500, 4096)) };
    let policy = Policy {
        decay_ms: 1_000,
        retain_percent: 0,
        huge_page_aware: false,
    };
    assert_eq!(heap.scavenge(5_100, policy), 0);
    assert_eq!(heap.scavenge(5_500, policy), 32 * mib);
    heap.check_invariants();
}

#[test]
fn a_shrunk_tail_is_kept_like_a_freed_object() {
    let heap = test_heap(budget(1));
    let (p, _) = heap.alloc_large(4 << 20, 8);
    fill(p, 4 << 20, 3);
    // SAFETY: p is live.
    unsafe {
        assert!(heap.resize_large_in_place(p, 1 << 20));
        assert_eq!(heap.large_size(p), 1 << 20);
    }
    assert_eq!(heap.retained_bytes(), 3 << 20);
    assert_eq!(heap.os().decommitted.load(SeqCst), 0);
    // Growing back takes the same, still backed, pages.
    // SAFETY: p is live.
    unsafe {
        assert!(heap.resize_large_in_place(p, 4 << 20));
        assert!(holds(p, 1 << 20, 3));
        assert_eq!(heap.retained_bytes(), 0);
        heap.free_large(p);
    }
    heap.check_invariants();
}

#[test]
fn unknown_pointers_are_not_objects() {
    let heap = test_heap(budget(1));
    let local = 5u64;
    assert!(heap
        .object_span(&local as *const u64 as *const u8)
        .is_null());
    assert!(heap.object_span(core::ptr::null()).is_null());
    let (p, _) = heap.alloc_large(64 << 10, 8);
    assert!(!heap.object_span(p).is_null());
    assert!(heap.object_span(p.wrapping_add(PAGE_SIZE)).is_null());
    // SAFETY: live, freed once.
    unsafe { heap.free_large(p) };
    assert!(
        heap.object_span(p).is_null(),
        "a freed large object is not an object"
    );
}

/// A random sequence of large allocations, frees and in-place resizes,
/// checked against a model of live ranges: no overlap, contents kept,
/// invariants intact after every step.
#[test]
fn random_large_operations_match_a_model() {
    let heap = test_heap(budget(3));
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut live: Vec<(usize, usize, u8)> = vec![];
    for step in 0..1500 {
        let r = next();
        match r % 4 {
            0 | 1 if live.len() < 64 => {
                let size = (40 << 10) + (next() % (3 << 20)) as usize;
                let align = 1usize << (3 + next() % 20);
                let (p, _) = heap.alloc_large(size, align);
                assert!(!p.is_null(), "step {step}");
                assert_eq!(p as usize % align, 0);
                let (a, b) = (p as usize, p as usize + size);
                for &(q, qs, _) in &live {
                    assert!(b <= q || a >= q + qs, "overlap at step {step}");
                }
                fill(p, size.min(4096), step as u8);
                live.push((a, size, step as u8));
            }
            2 if !live.is_empty() => {
                let (p, size, v) = live.swap_remove((next() % live.len() as u64) as usize);
                assert!(holds(p as *mut u8, size.min(4096), v), "step {step}");
                // SAFETY: live, freed once.
                unsafe { heap.free_large(p as *mut u8) };
            }
            _ if !live.is_empty() => {
                let i = (next() % live.len() as u64) as usize;
                let (p, size, v) = live[i];
                let new = (40 << 10) + (next() % (3 << 20)) as usize;
                // SAFETY: p is live.
                if unsafe { heap.resize_large_in_place(p as *mut u8, new) } {
                    assert!(holds(p as *mut u8, size.min(new).min(4096), v));
                    for (j, &(q, qs, _)) in live.iter().enumerate() {
                        assert!(
                            j == i || p + new <= q || p >= q + qs,
                            "resize overlap at step {step}"
                        );
                    }
                    live[i].1 = new;
                }
            }
            _ => {}
        }
        if step % 10 == 0 {
            heap.check_invariants();
        }
    }
    for (p, _, _) in live {
        // SAFETY: live, freed once.
        unsafe { heap.free_large(p as *mut u8) };
    }
    heap.check_invariants();
    assert_eq!(heap.free_bytes(), heap.stats().mapped_bytes);
}

#[test]
fn freed_aligned_holes_are_reused_without_growing() {
    let heap = test_heap(budget(2));
    let (size, align) = (64 << 10, 64 << 10);
    let blocks: Vec<_> = (0..200).map(|_| heap.alloc_large(size, align).0).collect();
    assert!(blocks
        .iter()
        .all(|p| !p.is_null() && (*p as usize).is_multiple_of(align)));
    for p in blocks.iter().step_by(2) {
        // SAFETY: live, freed once.
        unsafe { heap.free_large(*p) };
    }
    let mapped = heap.stats().mapped_bytes;
    let again: Vec<_> = (0..100).map(|_| heap.alloc_large(size, align).0).collect();
    assert!(again
        .iter()
        .all(|p| !p.is_null() && (*p as usize).is_multiple_of(align)));
    assert_eq!(
        heap.stats().mapped_bytes,
        mapped,
        "the 64 KiB holes fit 64 KiB-aligned requests"
    );
    heap.check_invariants();
}

#[test]
fn metadata_counts_what_can_be_resident_not_the_pagemaps_address_space() {
    let heap = test_heap(budget(1));
    let (p, _) = heap.alloc_large(1 << 20, 8);
    let meta = heap.stats().metadata_bytes;
    // One arena node (64 KiB + its released bits), a page of the top level,
    // a chunk of span records and one of region records: well under 1 MiB,
    // although the pagemap reserved 32 MiB of address space.
    assert!(meta > 64 << 10 && meta < 1 << 20, "metadata_bytes = {meta}");
    // SAFETY: live, freed once.
    unsafe { heap.free_large(p) };
}
