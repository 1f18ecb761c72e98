//! Model-based tests of `SpanAlloc` through the raw `GlobalAlloc` interface.
//!
//! A proptest strategy generates sequences of alloc / alloc_zeroed / realloc /
//! dealloc operations; the model keeps every live block with its layout and
//! the seed of the pattern written into it, and after every operation checks
//! what the `GlobalAlloc` contract promises: a non-null, aligned block that
//! overlaps no other live block, is writable over its whole size, keeps its
//! content until it is freed (and its common prefix across a realloc), and
//! reads as zero when it came from `alloc_zeroed`. A few deterministic tests
//! follow for cases random sequences hit rarely.

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::fmt;

use common::{fill, seed_for, verify, verify_prefix, verify_zeroed, Mismatch, KIB, MIB};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError};
use spanalloc::SpanAlloc;

/// The allocator under test, used directly (not as the global allocator).
static A: SpanAlloc = SpanAlloc;

/// Live bytes the model allows at once; allocations that would pass it are
/// skipped, which keeps every case bounded.
const LIVE_CAP: usize = 256 * MIB;
/// Every live block is re-verified after this many operations.
const SWEEP_EVERY: usize = 8;
/// Seed of the proptest RNG, unless PROPTEST_RNG_SEED overrides it.
const MODEL_SEED: u64 = 0x5EA7_A110_C0DE_0001;

#[derive(Clone, Debug)]
enum Op {
    Alloc { size: usize, align: usize },
    AllocZeroed { size: usize, align: usize },
    Realloc { idx: Index, new_size: usize },
    Dealloc { idx: Index },
}

/// Sizes from 1 B to 16 MiB, most under 1 KiB, some up to 64 KiB, few above.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        55 => 1..=128usize,
        25 => 129..=KIB,
        14 => KIB + 1..=64 * KIB,
        4 => 64 * KIB + 1..=MIB,
        2 => MIB + 1..=16 * MIB,
    ]
}

/// Powers of two from 1 B to 2 MiB, mostly at most 16.
fn align() -> impl Strategy<Value = usize> {
    prop_oneof![
        80 => 0..=4u32,
        14 => 5..=12u32,
        6 => 13..=21u32,
    ]
    .prop_map(|shift| 1usize << shift)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        35 => (size(), align()).prop_map(|(size, align)| Op::Alloc { size, align }),
        15 => (size(), align()).prop_map(|(size, align)| Op::AllocZeroed { size, align }),
        20 => (any::<Index>(), size()).prop_map(|(idx, new_size)| Op::Realloc { idx, new_size }),
        30 => any::<Index>().prop_map(|idx| Op::Dealloc { idx }),
    ]
}

fn config() -> Config {
    let default = Config::default();
    Config {
        cases: common::scaled(256) as u32,
        // Failures are reported with the fixed seed and the shrunk op
        // sequence; nothing is written to disk.
        failure_persistence: None,
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            default.rng_seed
        } else {
            RngSeed::Fixed(MODEL_SEED)
        },
        max_shrink_iters: 4096,
        ..default
    }
}

/// A live block as the model sees it.
#[derive(Clone, Copy)]
struct Live {
    ptr: *mut u8,
    layout: Layout,
    seed: u64,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:p}, +{}) align {} seed {:#x}",
            self.ptr,
            self.layout.size(),
            self.layout.align(),
            self.seed
        )
    }
}

impl Live {
    fn start(&self) -> usize {
        self.ptr as usize
    }
    fn end(&self) -> usize {
        self.ptr as usize + self.layout.size()
    }
    fn verify(&self) -> Result<(), Mismatch> {
        // SAFETY: the model only holds blocks that SpanAlloc returned for
        // self.layout and that have not been freed.
        unsafe { verify(self.ptr, self.layout.size(), self.seed) }
    }
}

/// The model: every live block. Dropping it frees whatever is still live.
/// A block involved in a failure is removed from the model first and leaked,
/// so a corrupted allocator is not handed memory it may have given out twice.
struct Model {
    live: Vec<Live>,
    live_bytes: usize,
    ops_done: usize,
    next_seed: u64,
}

impl Drop for Model {
    fn drop(&mut self) {
        for b in self.live.drain(..) {
            // SAFETY: every block in the model is live and was allocated by A
            // with b.layout; draining removes it so it is freed once.
            unsafe { A.dealloc(b.ptr, b.layout) };
        }
    }
}

fn fail(msg: String) -> Result<(), TestCaseError> {
    Err(TestCaseError::fail(msg))
}

impl Model {
    fn new(case_seed: u64) -> Self {
        Model {
            live: Vec::new(),
            live_bytes: 0,
            ops_done: 0,
            next_seed: case_seed,
        }
    }

    fn fresh_seed(&mut self) -> u64 {
        self.next_seed = self.next_seed.wrapping_add(1);
        seed_for(self.next_seed, 0x3A5)
    }

    /// Removes block `i` from the model without freeing it.
    fn leak(&mut self, i: usize) -> Live {
        let b = self.live.swap_remove(i);
        self.live_bytes -= b.layout.size();
        b
    }

    /// Checks a block the allocator just returned (not yet in the model):
    /// non-null, aligned, disjoint from every live block. On an overlap the
    /// other block is leaked too.
    fn check_new(&mut self, what: &str, ptr: *mut u8, layout: Layout) -> Result<(), TestCaseError> {
        if ptr.is_null() {
            return fail(format!("{what}({layout:?}) returned null"));
        }
        if !(ptr as usize).is_multiple_of(layout.align()) {
            return fail(format!("{what}({layout:?}) returned misaligned {ptr:p}"));
        }
        let (start, end) = (ptr as usize, ptr as usize + layout.size());
        if let Some(j) = self
            .live
            .iter()
            .position(|o| start < o.end() && o.start() < end)
        {
            let other = self.leak(j);
            return fail(format!(
                "{what}({layout:?}) returned [{ptr:p}, +{}) overlapping live block {other:?}",
                layout.size()
            ));
        }
        Ok(())
    }

    /// Verifies the pattern of block `i`, leaking it on a mismatch.
    fn check_live(&mut self, i: usize, when: &str) -> Result<(), TestCaseError> {
        if let Err(m) = self.live[i].verify() {
            let b = self.leak(i);
            return fail(format!("{when}: live block {b:?} corrupted: {m}"));
        }
        Ok(())
    }

    fn sweep(&mut self, when: &str) -> Result<(), TestCaseError> {
        for i in (0..self.live.len()).rev() {
            self.check_live(i, when)?;
        }
        Ok(())
    }

    fn alloc(&mut self, size: usize, align: usize, zeroed: bool) -> Result<(), TestCaseError> {
        if self.live_bytes + size > LIVE_CAP {
            return Ok(());
        }
        let layout = Layout::from_size_align(size, align).expect("valid layout");
        let ptr = if zeroed {
            // SAFETY: layout has a non-zero size (sizes start at 1).
            unsafe { A.alloc_zeroed(layout) }
        } else {
            // SAFETY: as above.
            unsafe { A.alloc(layout) }
        };
        let what = if zeroed { "alloc_zeroed" } else { "alloc" };
        self.check_new(what, ptr, layout)?;
        if zeroed {
            // SAFETY: ptr is a fresh non-null block of layout.size() bytes.
            if let Err(m) = unsafe { verify_zeroed(ptr, size) } {
                return fail(format!(
                    "alloc_zeroed({layout:?}) = {ptr:p} not zeroed: {m}"
                ));
            }
        }
        let seed = self.fresh_seed();
        // SAFETY: ptr is a fresh block valid for writes of size bytes.
        unsafe { fill(ptr, size, seed) };
        self.live.push(Live { ptr, layout, seed });
        self.live_bytes += size;
        // Writing the whole block and reading it back proves it writable.
        self.check_live(self.live.len() - 1, "right after the fill")
    }

    fn realloc(&mut self, idx: &Index, new_size: usize) -> Result<(), TestCaseError> {
        if self.live.is_empty() {
            return Ok(());
        }
        let i = idx.index(self.live.len());
        let old = self.live[i];
        if self.live_bytes - old.layout.size() + new_size > LIVE_CAP {
            return Ok(());
        }
        self.check_live(i, "before realloc")?;
        let old = self.leak(i);
        // The block has left the model, so it is not used again under the
        // old pointer; new_size is non-zero and at most 16 MiB.
        // SAFETY: old.ptr is live, allocated by A with old.layout, and
        // new_size rounded up to the alignment cannot overflow isize.
        let ptr = unsafe { A.realloc(old.ptr, old.layout, new_size) };
        let layout = Layout::from_size_align(new_size, old.layout.align()).expect("valid layout");
        if ptr.is_null() {
            // The old block is still valid: keep it so it gets freed.
            self.live.push(old);
            self.live_bytes += old.layout.size();
            return fail(format!("realloc({old:?}, {new_size}) returned null"));
        }
        self.check_new("realloc", ptr, layout)?;
        let keep = old.layout.size().min(new_size);
        // SAFETY: ptr is valid for new_size >= keep bytes.
        if let Err(m) = unsafe { verify_prefix(ptr, old.layout.size(), keep, old.seed) } {
            return fail(format!(
                "realloc({old:?}, {new_size}) = {ptr:p} lost its first {keep} bytes: {m}"
            ));
        }
        let seed = self.fresh_seed();
        // SAFETY: ptr is valid for writes of new_size bytes.
        unsafe { fill(ptr, new_size, seed) };
        self.live.push(Live { ptr, layout, seed });
        self.live_bytes += new_size;
        self.check_live(self.live.len() - 1, "right after the realloc fill")
    }

    fn dealloc(&mut self, idx: &Index) -> Result<(), TestCaseError> {
        if self.live.is_empty() {
            return Ok(());
        }
        let i = idx.index(self.live.len());
        self.check_live(i, "before dealloc")?;
        let b = self.leak(i);
        // SAFETY: b is live, allocated by A with b.layout, and has left the
        // model, so it is freed exactly once.
        unsafe { A.dealloc(b.ptr, b.layout) };
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Alloc { size, align } => self.alloc(*size, *align, false)?,
            Op::AllocZeroed { size, align } => self.alloc(*size, *align, true)?,
            Op::Realloc { idx, new_size } => self.realloc(idx, *new_size)?,
            Op::Dealloc { idx } => self.dealloc(idx)?,
        }
        self.ops_done += 1;
        if self.ops_done.is_multiple_of(SWEEP_EVERY) {
            self.sweep("periodic sweep")?;
        }
        Ok(())
    }

    /// Verifies and frees every live block.
    fn free_all(&mut self) -> Result<(), TestCaseError> {
        self.sweep("final sweep")?;
        while let Some(b) = self.live.pop() {
            self.live_bytes -= b.layout.size();
            // SAFETY: b is live, allocated by A with b.layout, and was popped
            // from the model, so it is freed exactly once.
            unsafe { A.dealloc(b.ptr, b.layout) };
        }
        assert_eq!(self.live_bytes, 0);
        Ok(())
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_op_sequences_keep_the_contract(ops in prop::collection::vec(op(), 1..160)) {
        let mut model = Model::new(ops.len() as u64);
        for (n, op) in ops.iter().enumerate() {
            model
                .apply(op)
                .map_err(|e| TestCaseError::fail(format!("op #{n} {op:?}: {e}")))?;
        }
        model.free_all()?;
    }
}

/// Memory handed back dirty must come back zeroed from `alloc_zeroed`, for
/// small, medium and large sizes, including after it was freed by the same
/// thread (the thread cache is the likeliest place to skip the zeroing).
#[test]
fn alloc_zeroed_after_dirty_free() {
    let sizes = [
        1,
        8,
        16,
        24,
        48,
        100,
        256,
        1000,
        4096,
        12 * KIB + 1,
        32 * KIB,
        64 * KIB,
        256 * KIB + 3,
        MIB,
        3 * MIB + 5,
    ];
    for &size in &sizes {
        let count = if size <= 64 * KIB { 64 } else { 4 };
        for align in [8, 64, 4096] {
            let layout = Layout::from_size_align(size, align).unwrap();
            for round in 0..common::scaled(3) {
                let mut ptrs = Vec::with_capacity(count);
                for _ in 0..count {
                    // SAFETY: layout has a non-zero size.
                    let p = unsafe { A.alloc(layout) };
                    assert!(!p.is_null(), "alloc({layout:?}) returned null");
                    // SAFETY: p is a fresh block of `size` writable bytes.
                    unsafe { p.write_bytes(0xA5, size) };
                    ptrs.push(p);
                }
                for p in ptrs.drain(..) {
                    // SAFETY: p was allocated above with layout and is live.
                    unsafe { A.dealloc(p, layout) };
                }
                for _ in 0..count {
                    // SAFETY: layout has a non-zero size.
                    let p = unsafe { A.alloc_zeroed(layout) };
                    assert!(!p.is_null(), "alloc_zeroed({layout:?}) returned null");
                    assert_eq!(p as usize % align, 0, "alloc_zeroed({layout:?}) misaligned");
                    // SAFETY: p is a fresh block of `size` readable bytes.
                    if let Err(m) = unsafe { verify_zeroed(p, size) } {
                        panic!("alloc_zeroed({layout:?}) round {round} = {p:p}: {m}");
                    }
                    // Dirty it again for the next round.
                    // SAFETY: as above, writable.
                    unsafe { p.write_bytes(0x5A, size) };
                    ptrs.push(p);
                }
                for p in ptrs.drain(..) {
                    // SAFETY: p was allocated above with layout and is live.
                    unsafe { A.dealloc(p, layout) };
                }
            }
        }
    }
}

/// One block grown step by step from 1 B to 16 MiB and shrunk back, for a
/// range of alignments: the content must survive every move between size
/// classes, from small objects to large spans and back.
#[test]
fn realloc_chain_across_all_size_ranges() {
    for (n, align) in [1usize, 8, 16, 64, 4096, 64 * KIB, 2 * MIB]
        .into_iter()
        .enumerate()
    {
        let mut layout = Layout::from_size_align(1, align).unwrap();
        let mut seed = seed_for(0xC4A1, n as u64);
        // SAFETY: layout has a non-zero size.
        let mut ptr = unsafe { A.alloc(layout) };
        assert!(!ptr.is_null());
        // SAFETY: ptr is a fresh 1-byte block.
        unsafe { fill(ptr, 1, seed) };
        let mut sizes: Vec<usize> = Vec::new();
        let mut s = 1usize;
        while s < 16 * MIB {
            s = (s + s / 2 + 1).min(16 * MIB);
            sizes.push(s);
        }
        let down: Vec<usize> = sizes.iter().rev().skip(1).map(|s| s - s / 7).collect();
        sizes.extend(down);
        sizes.push(1);
        for (step, &new_size) in sizes.iter().enumerate() {
            // SAFETY: ptr is live with `layout`; new_size is non-zero and at
            // most 16 MiB, so it cannot overflow when rounded to `align`.
            let new = unsafe { A.realloc(ptr, layout, new_size) };
            assert!(
                !new.is_null(),
                "realloc to {new_size} (align {align}) returned null"
            );
            assert_eq!(new as usize % align, 0, "realloc to {new_size} misaligned");
            let keep = layout.size().min(new_size);
            // SAFETY: new is valid for new_size >= keep bytes.
            if let Err(m) = unsafe { verify_prefix(new, layout.size(), keep, seed) } {
                panic!(
                    "align {align} step {step}: realloc {} -> {new_size} lost content: {m}",
                    layout.size()
                );
            }
            seed = seed_for(seed, step as u64);
            // SAFETY: new is valid for writes of new_size bytes.
            unsafe { fill(new, new_size, seed) };
            ptr = new;
            layout = Layout::from_size_align(new_size, align).unwrap();
        }
        // SAFETY: ptr is live with `layout`.
        unsafe { A.dealloc(ptr, layout) };
    }
}

/// Sizes around powers of two and alignments from 1 B to 2 MiB, all live at
/// once per alignment: aligned, disjoint, and each keeps its own pattern.
#[test]
fn boundary_sizes_and_alignments() {
    for shift in 0..=21u32 {
        let align = 1usize << shift;
        let mut sizes = vec![
            1,
            align.saturating_sub(1).max(1),
            align,
            align + 1,
            2 * align + 3,
        ];
        for k in 3..=22u32 {
            sizes.extend([(1usize << k) - 1, 1 << k, (1 << k) + 1]);
        }
        let mut live: Vec<Live> = Vec::new();
        for (n, &size) in sizes.iter().enumerate() {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: layout has a non-zero size.
            let ptr = unsafe { A.alloc(layout) };
            assert!(!ptr.is_null(), "alloc({layout:?}) returned null");
            assert_eq!(
                ptr as usize % align,
                0,
                "alloc({layout:?}) = {ptr:p} misaligned"
            );
            let seed = seed_for(u64::from(shift), n as u64);
            // SAFETY: ptr is a fresh block of `size` writable bytes.
            unsafe { fill(ptr, size, seed) };
            live.push(Live { ptr, layout, seed });
        }
        live.sort_by_key(|b| b.start());
        for pair in live.windows(2) {
            assert!(
                pair[0].end() <= pair[1].start(),
                "align {align}: {:?} overlaps {:?}",
                pair[0],
                pair[1]
            );
        }
        for b in live {
            if let Err(m) = b.verify() {
                panic!("align {align}: block {b:?} corrupted: {m}");
            }
            // SAFETY: b was allocated above by A with b.layout and is live.
            unsafe { A.dealloc(b.ptr, b.layout) };
        }
    }
}
