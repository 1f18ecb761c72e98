//! Tests of the thread cache against a private heap on the fake OS layer.

use super::*;
use crate::heap::tests::test_heap;
use crate::sizeclass::{class_of, class_size};
use std::collections::HashSet;

const BUDGET: usize = (32 << 20) + (8 << 20) + 2 * crate::pagemap::ARENA_SIZE;

#[test]
fn hands_out_distinct_objects_and_stays_bounded() {
    let heap = test_heap(BUDGET);
    let cache = MCache::new();
    for class in [
        1,
        class_of(24),
        class_of(100),
        class_of(4000),
        class_of(32768),
    ] {
        let n = 5 * class_batch(class) + 3;
        let mut seen = HashSet::new();
        let objs: Vec<*mut u8> = (0..n).map(|_| cache.alloc(heap, class, 0)).collect();
        for &p in &objs {
            assert!(!p.is_null());
            assert_eq!(p as usize % 8, 0);
            assert!(seen.insert(p as usize), "object handed out twice");
            // SAFETY: p is a live object of class_size(class) bytes.
            unsafe { p.write_bytes(0x5A, class_size(class)) };
        }
        for &p in &objs {
            // SAFETY: p is live, of this class, freed once.
            unsafe { cache.free(heap, class, p) };
            assert!(cache.cached(class) <= max_limit(class));
        }
        // The fast paths count without publishing; statistics read what
        // the slow paths (or this) published.
        cache.publish_counts();
        let st = heap.stats();
        assert_eq!(st.classes[class].allocs, n as u64);
        assert_eq!(st.classes[class].frees, n as u64);
        assert_eq!(st.classes[class].live_objects, 0);
        assert_eq!(
            st.classes[class].cached_objects,
            cache.cached(class) as u64,
            "the statistics see what the cache holds"
        );
    }
    heap.check_invariants();
    cache.release_all(heap);
    heap.check_invariants();
    // Everything went back (full batches wait in the transfer slots until
    // drained): no span in use, all pages free.
    heap.release_free_pages();
    let st = heap.stats();
    assert_eq!(st.span_bytes_in_use, 0, "spans stranded after release_all");
    assert_eq!(heap.free_bytes(), st.mapped_bytes);
    assert_eq!(
        st.classes[1].allocs,
        5 * class_batch(1) as u64 + 3,
        "counters survive the cache"
    );
}

#[test]
fn a_dead_cache_goes_straight_to_the_central_lists() {
    let heap = test_heap(BUDGET);
    let cache = MCache::new();
    let class = class_of(64);
    let p = cache.alloc(heap, class, 0);
    cache.release_all(heap);
    // Allocations and frees after the exit hook still work and strand nothing.
    let q = cache.alloc(heap, class, 0);
    assert!(!q.is_null() && q != p);
    // SAFETY: both live, of this class, freed once.
    unsafe {
        cache.free(heap, class, p);
        cache.free(heap, class, q);
    }
    assert_eq!(cache.cached(class), 0);
    heap.check_invariants();
    assert_eq!(heap.stats().span_bytes_in_use, 0);
    assert_eq!(heap.stats().classes[class].live_objects, 0);
}

#[test]
fn cross_thread_frees_travel_back_in_batches() {
    let heap = test_heap(BUDGET);
    let class = class_of(48);
    let rounds = 200;
    let per_round = 3 * class_batch(class);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<usize>>(4);
    let producer = std::thread::spawn(move || {
        let cache = MCache::new();
        for r in 0..rounds {
            let objs: Vec<usize> = (0..per_round)
                .map(|i| {
                    let p = cache.alloc(heap, class, 0);
                    assert!(!p.is_null());
                    // SAFETY: p is a live 48-byte object.
                    unsafe { (p as *mut u64).write((r * per_round + i) as u64) };
                    p as usize
                })
                .collect();
            tx.send(objs).unwrap();
        }
        cache.release_all(heap);
    });
    let consumer = std::thread::spawn(move || {
        let cache = MCache::new();
        let mut k = 0u64;
        for objs in rx {
            for p in objs {
                // SAFETY: p is a live object sent to us; we free it once.
                unsafe {
                    assert_eq!(
                        (p as *const u64).read(),
                        k,
                        "object contents changed in flight"
                    );
                    cache.free(heap, class, p as *mut u8);
                }
                k += 1;
                assert!(cache.cached(class) <= max_limit(class));
            }
        }
        cache.release_all(heap);
        k
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), (rounds * per_round) as u64);
    let st = heap.stats();
    assert_eq!(st.classes[class].live_objects, 0);
    // Bounded: the whole run needed only a few spans at a time.
    assert!(st.mapped_bytes <= crate::pagemap::ARENA_SIZE);
    heap.release_free_pages();
    heap.check_invariants();
    assert_eq!(
        heap.stats().span_bytes_in_use,
        0,
        "no span stranded after both threads released"
    );
}

#[test]
fn out_of_memory_gives_null_and_recovers() {
    // Room for the pagemap's top level only: the first span cannot be had.
    let heap = test_heap(32 << 20);
    let cache = MCache::new();
    assert!(cache.alloc(heap, class_of(256), 0).is_null());
    // Enough for the pagemap's top level and an arena.
    heap.os().set_budget(BUDGET);
    let p = cache.alloc(heap, class_of(256), 0);
    assert!(!p.is_null());
    // SAFETY: live, freed once.
    unsafe { cache.free(heap, class_of(256), p) };
    cache.release_all(heap);
    heap.check_invariants();
}

#[test]
fn checked_mode_verifies_every_free() {
    let heap = test_heap(BUDGET);
    heap.set_checked(true);
    let cache = MCache::new();
    let class = class_of(32);
    let p = cache.alloc(heap, class, 0);
    let q = cache.alloc(heap, class, 0);
    assert_eq!(cache.cached(class), 0, "checked mode caches nothing");
    assert_eq!(heap.central[class].verify_live(heap, class, p), Ok(()));
    // SAFETY: live, freed once.
    unsafe { cache.free(heap, class, p) };
    assert_eq!(
        heap.central[class].verify_live(heap, class, p),
        Err(crate::fault::PointerError::DoubleFree)
    );
    let never = (q as usize + 64 * class_size(class)) as *mut u8;
    assert_eq!(
        heap.central[class].verify_live(heap, class, never),
        Err(crate::fault::PointerError::NotOurs),
        "an object never handed out"
    );
    assert_eq!(
        heap.central[class_of(64)].verify_live(heap, class_of(64), q),
        Err(crate::fault::PointerError::NotOurs),
        "wrong class"
    );
    // SAFETY: live, freed once.
    unsafe { cache.free(heap, class, q) };
    heap.check_invariants();
    assert_eq!(heap.stats().span_bytes_in_use, 0);
}

#[test]
fn zero_filled_storage_is_a_fresh_cache() {
    // The C library keeps each thread's cache in zero-filled .tbss storage
    // (global.rs, ie_tls): all-zero bytes must be a valid FRESH cache.
    // SAFETY: every field of MCache (cells of raw pointers, integers, an
    // Option of a fn pointer, atomics) is valid when zeroed.
    let z: MCache = unsafe { core::mem::zeroed() };
    assert_eq!(z.state.get(), FRESH);
    assert_eq!(z.limit_bytes.get(), 0);
    assert!(z.heap.get().is_null() && z.release.get().is_none());
    for l in &z.lists {
        assert!(l.head.get().is_null());
        assert_eq!((l.count.get(), l.limit.get()), (0, 0));
        assert_eq!((l.sample_left.get(), l.sample_target.get()), (0, 0));
    }
    for k in &z.counters {
        assert_eq!(k.nmalloc.load(Relaxed) + k.nfree.load(Relaxed), 0);
        assert_eq!((k.fetched.get(), k.flushed.get()), (0, 0));
    }
    assert!(!z.in_profiler.get() && z.rng.get() == 0 && z.profile_epoch.get() == 0);
    // And it works as one.
    let heap = test_heap(BUDGET);
    let p = z.alloc(heap, class_of(40), 0);
    assert!(!p.is_null());
    // SAFETY: live, freed once.
    unsafe { z.free(heap, class_of(40), p) };
    z.release_all(heap);
    heap.check_invariants();
}

/// Fills and frees `n` objects of `class` through `cache`.
fn churn_class(heap: &MHeap<crate::os::fake::FakeOs>, cache: &MCache, class: usize, n: usize) {
    let objs: Vec<*mut u8> = (0..n).map(|_| cache.alloc(heap, class, 0)).collect();
    for &p in &objs {
        assert!(!p.is_null());
        // SAFETY: p is live, of this class, freed once.
        unsafe { cache.free(heap, class, p) };
    }
}

#[test]
fn the_thread_cache_budget_is_shared_among_active_caches() {
    assert_eq!(thread_cache_budget(1), MAX_THREAD_CACHE_BYTES);
    assert_eq!(thread_cache_budget(2), MAX_THREAD_CACHE_BYTES);
    assert_eq!(thread_cache_budget(8), 1 << 20);
    assert_eq!(thread_cache_budget(0), MAX_THREAD_CACHE_BYTES);

    let heap = test_heap(BUDGET);
    let class = class_of(1024);
    let batch = class_batch(class);
    // Alone, a cache that keeps allocating and freeing grows the list to
    // its class bound (a batch per round of refills and overflows).
    let alone = MCache::new();
    for _ in 0..MAX_BATCHES {
        churn_class(heap, &alone, class, 4 * max_limit(class));
    }
    assert_eq!(heap.active_caches.load(Relaxed), 1);
    assert_eq!(alone.list(class).limit.get() as usize, max_limit(class));
    let grown = alone.limit_bytes.get();
    // With many caches active, a new one keeps one batch per class: its
    // first bounds already add up to more than its share.
    heap.active_caches.store(64, Relaxed);
    let crowded = MCache::new();
    churn_class(heap, &crowded, class, 4 * max_limit(class));
    assert_eq!(crowded.list(class).limit.get() as usize, batch);
    assert!(crowded.cached(class) <= batch);
    // And the one that grew gives back a batch of bound at each overflow
    // until it is down to one batch.
    for _ in 0..MAX_BATCHES {
        churn_class(heap, &alone, class, 4 * max_limit(class));
    }
    assert_eq!(alone.list(class).limit.get() as usize, batch);
    assert_eq!(
        alone.limit_bytes.get(),
        grown - (max_limit(class) - batch) * class_size(class)
    );
    assert!(alone.cached(class) <= batch);
    heap.active_caches.store(2, Relaxed);
    for c in [&alone, &crowded] {
        c.release_all(heap);
    }
    assert_eq!(heap.active_caches.load(Relaxed), 0);
    heap.check_invariants();
}

#[test]
fn a_cache_that_only_frees_a_class_keeps_its_bound() {
    let heap = test_heap(BUDGET);
    let class = class_of(256);
    let batch = class_batch(class);
    // One thread allocates, another only frees (a consumer): the consumer's
    // list never grows past a batch, whatever it frees.
    let producer = MCache::new();
    let consumer = MCache::new();
    for _ in 0..4 {
        let objs: Vec<*mut u8> = (0..10 * batch)
            .map(|_| producer.alloc(heap, class, 0))
            .collect();
        for p in objs {
            assert!(!p.is_null());
            // SAFETY: p is live, of this class, freed once.
            unsafe { consumer.free(heap, class, p) };
            assert!(consumer.cached(class) <= batch);
        }
    }
    assert_eq!(consumer.list(class).limit.get() as usize, batch);
    for c in [&producer, &consumer] {
        c.release_all(heap);
    }
    heap.check_invariants();
}
