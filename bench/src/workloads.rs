//! The allocation patterns being timed, generic over the allocator.
//!
//! A [`Workload`] is built once, before any timing: its layouts, its free
//! order and the scratch array that holds a batch's pointers all exist before
//! the first measurement and are reused by every one after it. [`Workload::run`]
//! then performs a number of iterations against any [`GlobalAlloc`], called
//! directly through the trait and monomorphised per allocator (no `dyn`), so
//! the only code that differs between the allocators is the allocator's own.
//!
//! The workloads:
//!
//! - `pairs/SIZE`: allocate one block and free it at once, for each size in
//!   [`PAIR_SIZES`]. The best case of every allocator: the fast path, one
//!   size class, a block that is always in cache. One iteration is one pair.
//! - `batch`: allocate [`DEFAULT_BATCH_SIZE`] objects of mixed small sizes
//!   ([`SMALL_MIX`]), then free them all in a random order. Many size classes
//!   live at once and frees that do not mirror the allocation order, as in a
//!   real program that builds a data structure and drops it.
//! - `batch-large-mix`: the same with sizes up to 32 KiB ([`LARGE_MIX`]),
//!   which crosses size-class and page boundaries and touches more memory.
//!
//! Every block is written once (one byte), so an allocator that hands out
//! memory it never faulted in pays for it, and the pointer goes through
//! [`black_box`] so the compiler cannot drop an allocation nobody reads.

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout};
use std::hint::black_box;

use crate::rng::SplitMix64;

/// Sizes of the `pairs` workloads, in bytes.
pub const PAIR_SIZES: [usize; 7] = [16, 32, 64, 128, 256, 512, 1024];

/// Alignment of every block this benchmark allocates: the common case of
/// Rust objects, and no allocator under test needs a special path for it.
pub const ALIGN: usize = 8;

/// Objects per batch unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 10_000;

/// Seed of the size and free-order generator unless `--seed` says otherwise.
pub const DEFAULT_SEED: u64 = 0x5EED_A110C;

/// One band of a size distribution: `percent` of the objects have a size drawn
/// uniformly from `min..=max` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Band {
    /// Share of the objects in this band; the bands of a mix add up to 100.
    pub percent: u32,
    /// Smallest size in the band, at least 1.
    pub min: usize,
    /// Largest size in the band, at least `min`.
    pub max: usize,
}

/// Sizes of the `batch` workload: 8..=1024 bytes, skewed to small objects the
/// way real programs are (most allocations are a few words).
pub const SMALL_MIX: &[Band] = &[
    Band {
        percent: 60,
        min: 8,
        max: 64,
    },
    Band {
        percent: 30,
        min: 65,
        max: 256,
    },
    Band {
        percent: 10,
        min: 257,
        max: 1024,
    },
];

/// Sizes of the `batch-large-mix` workload: 8..=32768 bytes, still skewed to
/// small objects, with one object in ten between 4 KiB and 32 KiB.
pub const LARGE_MIX: &[Band] = &[
    Band {
        percent: 50,
        min: 8,
        max: 64,
    },
    Band {
        percent: 25,
        min: 65,
        max: 512,
    },
    Band {
        percent: 15,
        min: 513,
        max: 4096,
    },
    Band {
        percent: 10,
        min: 4097,
        max: 32768,
    },
];

/// Draws one size from `mix`.
fn draw_size(rng: &mut SplitMix64, mix: &[Band]) -> usize {
    let total: u32 = mix.iter().map(|b| b.percent).sum();
    let mut ticket = rng.range_inclusive(0, u64::from(total) - 1) as u32;
    for band in mix {
        if ticket < band.percent {
            return rng.range_inclusive(band.min as u64, band.max as u64) as usize;
        }
        ticket -= band.percent;
    }
    unreachable!("ticket below the total always falls in a band")
}

/// What a workload does in one iteration.
#[derive(Debug)]
enum Pattern {
    /// Allocate one block of `layout` and free it.
    ///
    /// Invariant: `layout.size() > 0`.
    Pair { layout: Layout },
    /// Allocate one block per entry of `layouts` (in order), then free them in
    /// `free_order`.
    ///
    /// Invariants: every layout has a non-zero size; `free_order` is a
    /// permutation of `0..layouts.len()`; `ptrs.len() == layouts.len()`.
    Batch {
        layouts: Vec<Layout>,
        free_order: Vec<usize>,
        /// Scratch space for the live pointers of one iteration; allocated
        /// here, outside the timed region, and overwritten by every iteration.
        ptrs: Vec<*mut u8>,
    },
}

/// An allocation pattern, ready to run.
#[derive(Debug)]
pub struct Workload {
    /// Name shown in reports, e.g. `pairs/64` or `batch`.
    pub name: String,
    /// What one operation is, for the reports' captions.
    pub unit: &'static str,
    pattern: Pattern,
}

impl Workload {
    /// Allocate-then-free of one `size`-byte block.
    pub fn pairs(size: usize) -> Self {
        assert!(size > 0, "pairs of zero-sized blocks");
        let layout = Layout::from_size_align(size, ALIGN).expect("valid pair layout");
        Self {
            name: format!("pairs/{size}"),
            unit: "ns per alloc+free pair",
            pattern: Pattern::Pair { layout },
        }
    }

    /// `count` objects with sizes drawn from `mix`, freed in a random order;
    /// both come from a generator seeded with `seed`.
    pub fn batch(name: &str, mix: &[Band], count: usize, seed: u64) -> Self {
        assert!(count > 0, "empty batch");
        assert!(mix.iter().all(|b| 0 < b.min && b.min <= b.max));
        let mut rng = SplitMix64::new(seed);
        let layouts: Vec<Layout> = (0..count)
            .map(|_| {
                Layout::from_size_align(draw_size(&mut rng, mix), ALIGN).expect("valid layout")
            })
            .collect();
        let mut free_order: Vec<usize> = (0..count).collect();
        rng.shuffle(&mut free_order);
        Self {
            name: name.to_owned(),
            unit: "ns per object (alloc+free)",
            pattern: Pattern::Batch {
                layouts,
                free_order,
                ptrs: vec![std::ptr::null_mut(); count],
            },
        }
    }

    /// Every workload, in report order.
    pub fn all(batch_size: usize, seed: u64) -> Vec<Self> {
        let mut all: Vec<Self> = PAIR_SIZES.iter().map(|&s| Self::pairs(s)).collect();
        all.push(Self::batch("batch", SMALL_MIX, batch_size, seed));
        all.push(Self::batch("batch-large-mix", LARGE_MIX, batch_size, seed));
        all
    }

    /// Allocations (each with its free) in one iteration.
    pub fn ops_per_iteration(&self) -> u64 {
        match &self.pattern {
            Pattern::Pair { .. } => 1,
            Pattern::Batch { layouts, .. } => layouts.len() as u64,
        }
    }

    /// Runs `iterations` iterations against `alloc`. Every block allocated is
    /// freed before this returns.
    pub fn run<A: GlobalAlloc>(&mut self, alloc: &A, iterations: u64) {
        match &mut self.pattern {
            Pattern::Pair { layout } => run_pairs(alloc, *layout, iterations),
            Pattern::Batch {
                layouts,
                free_order,
                ptrs,
            } => run_batch(alloc, layouts, free_order, ptrs, iterations),
        }
    }
}

/// The `pairs` loop. Not inlined, so each allocator gets one copy of the loop
/// compiled on its own, and the layout is hidden from the optimiser so that an
/// allocator whose code can be inlined gains nothing from a constant size that
/// the ones behind a C call cannot see.
#[inline(never)]
fn run_pairs<A: GlobalAlloc>(alloc: &A, layout: Layout, iterations: u64) {
    let layout = black_box(layout);
    for i in 0..iterations {
        // SAFETY: `layout.size() > 0` (invariant of `Pattern::Pair`).
        let p = unsafe { alloc.alloc(layout) };
        if p.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: `p` is non-null and the block just allocated holds at least
        // `layout.size() >= 1` writable bytes.
        unsafe { p.write(i as u8) };
        let p = black_box(p);
        // SAFETY: `p` came from `alloc.alloc(layout)` with this same layout and
        // has not been freed.
        unsafe { alloc.dealloc(p, layout) };
    }
}

/// The `batch` loop; see [`run_pairs`] for why it is not inlined.
#[inline(never)]
fn run_batch<A: GlobalAlloc>(
    alloc: &A,
    layouts: &[Layout],
    free_order: &[usize],
    ptrs: &mut [*mut u8],
    iterations: u64,
) {
    let layouts = black_box(layouts);
    for _ in 0..iterations {
        for (slot, &layout) in ptrs.iter_mut().zip(layouts) {
            // SAFETY: every layout of a batch has a non-zero size (invariant
            // of `Pattern::Batch`).
            let p = unsafe { alloc.alloc(layout) };
            if p.is_null() {
                handle_alloc_error(layout);
            }
            // SAFETY: `p` is non-null and the block just allocated holds at
            // least `layout.size() >= 1` writable bytes.
            unsafe { p.write(layout.size() as u8) };
            *slot = p;
        }
        black_box(&mut *ptrs);
        for &i in free_order {
            // `free_order` is a permutation of the indices (invariant of
            // `Pattern::Batch`), so each block is freed exactly once.
            // SAFETY: `ptrs[i]` is live, allocated above with `layouts[i]`.
            unsafe { alloc.dealloc(ptrs[i], layouts[i]) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn batch_parts(w: &Workload) -> (&[Layout], &[usize]) {
        match &w.pattern {
            Pattern::Batch {
                layouts,
                free_order,
                ..
            } => (layouts, free_order),
            Pattern::Pair { .. } => panic!("{} is not a batch", w.name),
        }
    }

    #[test]
    fn names_are_unique_and_in_order() {
        let names: Vec<String> = Workload::all(100, 1).into_iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "pairs/16",
                "pairs/32",
                "pairs/64",
                "pairs/128",
                "pairs/256",
                "pairs/512",
                "pairs/1024",
                "batch",
                "batch-large-mix"
            ]
        );
    }

    #[test]
    fn mixes_add_up_to_one_hundred_percent() {
        for mix in [SMALL_MIX, LARGE_MIX] {
            assert_eq!(mix.iter().map(|b| b.percent).sum::<u32>(), 100);
        }
    }

    #[test]
    fn batch_sizes_follow_the_mix() {
        let w = Workload::batch("batch", SMALL_MIX, 10_000, DEFAULT_SEED);
        let (layouts, free_order) = batch_parts(&w);
        assert!(layouts
            .iter()
            .all(|l| (8..=1024).contains(&l.size()) && l.align() == ALIGN));
        let small = layouts.iter().filter(|l| l.size() <= 64).count();
        assert!((5_500..6_500).contains(&small), "{small} small objects");
        let mut order = free_order.to_vec();
        order.sort_unstable();
        assert_eq!(order, (0..10_000).collect::<Vec<_>>());

        let large = Workload::batch("batch-large-mix", LARGE_MIX, 10_000, DEFAULT_SEED);
        let (layouts, _) = batch_parts(&large);
        assert!(layouts.iter().all(|l| (8..=32768).contains(&l.size())));
        assert!(layouts.iter().any(|l| l.size() > 4096));
    }

    #[test]
    fn same_seed_same_batch() {
        let a = Workload::batch("a", LARGE_MIX, 500, 9);
        let b = Workload::batch("b", LARGE_MIX, 500, 9);
        assert_eq!(batch_parts(&a), batch_parts(&b));
    }

    #[test]
    fn every_workload_runs() {
        for mut w in Workload::all(64, 3) {
            w.run(&System, 3);
            w.run(&mimalloc::MiMalloc, 3);
            w.run(&spanalloc::SpanAlloc, 3);
        }
    }
}
