//! Statistics of the global allocator: reading them allocates nothing, and
//! they account for what the program did, including on threads that exited.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// SpanAlloc, counting the calls made while `COUNTING` is on.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to SpanAlloc.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { spanalloc::SpanAlloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { spanalloc::SpanAlloc.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One test function, so no other test thread allocates meanwhile.
#[test]
fn stats_cost_no_allocation_and_count_exited_threads() {
    // A size class nothing else in this program is likely to use.
    const SIZE: usize = 20_000;
    let before = spanalloc::stats();
    let class = spanalloc::sizeclass::class_of(SIZE);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                let v: Vec<Box<[u8; SIZE]>> = (0..50).map(|_| Box::new([7u8; SIZE])).collect();
                assert!(v.iter().all(|b| b[SIZE - 1] == 7));
                // Keep 10 alive past the thread's exit: returned to main.
                v.into_iter().take(10).collect::<Vec<_>>()
            })
        })
        .collect();
    let kept: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    COUNTING.store(true, Ordering::SeqCst);
    let st = spanalloc::stats();
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(CALLS.load(Ordering::SeqCst), 0, "stats() allocated");

    let c = &st.classes[class];
    let b = &before.classes[class];
    assert_eq!(c.object_size, spanalloc::sizeclass::class_size(class));
    assert_eq!(
        c.allocs - b.allocs,
        8 * 50,
        "allocations on exited threads are counted"
    );
    assert_eq!(c.frees - b.frees, 8 * 40);
    assert_eq!(c.live_objects - b.live_objects, 80);
    assert!(st.live_bytes >= 80 * SIZE);
    assert!(st.mapped_bytes >= st.span_bytes_in_use && st.span_bytes_in_use > 0);
    drop(kept);
    let after = spanalloc::stats();
    assert_eq!(after.classes[class].live_objects, b.live_objects);

    // release_memory gives free pages back and says so.
    let released = spanalloc::release_memory();
    assert!(spanalloc::stats().released_bytes >= released);
    spanalloc::check_heap();
}
