//! Single-threaded small-object workloads: the fast path and mixed batches.
//!
//! - `pairs/SIZE`: allocate one block and free it at once, again and again:
//!   the fast path of every allocator, one size class, always in cache.
//! - `batch`: allocate 10,000 objects of mixed small sizes, then free them in
//!   a random order, as a program builds a data structure and drops it.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::hint::black_box;

use crate::block::Block;
use crate::rng::SplitMix64;
use crate::size::Size;
use crate::Work;

/// Sizes of the `pairs` workloads, in bytes: 16 B to 32 KiB, the small-object
/// range.
pub const PAIR_SIZES: [usize; 6] = [16, 64, 256, 1024, 4096, 32768];

/// `pairs/size`: alloc+free of one `size`-byte block, both ends written.
pub fn pairs(size: usize, run: Size) -> Work {
    let n: u64 = run.pick(
        if size <= 1024 {
            150_000_000
        } else {
            60_000_000
        },
        20_000,
    );
    let layout = black_box(Layout::from_size_align(size, 8).expect("pair layout"));
    for i in 0..n {
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { alloc(layout) };
        if p.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: the block holds `size >= 1` writable bytes.
        unsafe {
            p.write(i as u8);
            p.add(size - 1).write(i as u8);
        }
        // SAFETY: `p` was allocated just above with `layout`, freed once.
        unsafe { dealloc(black_box(p), layout) };
    }
    Work::deterministic(n, n)
}

/// Objects in one `batch`.
const BATCH_OBJECTS: usize = 10_000;

/// `batch`: rounds of 10,000 objects of 8 B to 1 KiB (log-uniform), freed in
/// a random order.
pub fn batch(run: Size) -> Work {
    let rounds: u64 = run.pick(4_000, 3);
    let mut rng = SplitMix64::new(0xBA7C);
    let sizes: Vec<usize> = (0..BATCH_OBJECTS)
        .map(|_| rng.log_uniform(8, 1024))
        .collect();
    let mut order: Vec<usize> = (0..BATCH_OBJECTS).collect();
    rng.shuffle(&mut order);
    let mut live: Vec<Option<Block>> = Vec::with_capacity(BATCH_OBJECTS);
    let mut checksum = 0u64;
    for round in 0..rounds {
        live.extend(sizes.iter().map(|&s| Some(Block::new(s, round as u8))));
        for &i in &order {
            let b = live[i].take().expect("each object is freed once");
            checksum += u64::from(b.tag()) + b.size() as u64;
        }
        live.clear();
    }
    Work::deterministic(rounds * BATCH_OBJECTS as u64, checksum)
}
