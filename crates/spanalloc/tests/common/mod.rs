//! Helpers shared by the integration tests: the `SPANALLOC_STRESS` multiplier,
//! a small deterministic RNG, byte patterns that identify a block, and `Block`,
//! an owned allocation made directly through `GlobalAlloc` that carries its
//! pattern and checks it when it is reallocated or freed.
//!
//! Nothing here allocates on a check's success path, so the out-of-memory test
//! can verify blocks while its address-space limit is in force.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::OnceLock;

use spanalloc::SpanAlloc;

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Stress scale

/// Environment variable holding a float multiplier for every stress loop.
pub const STRESS_VAR: &str = "SPANALLOC_STRESS";

/// The multiplier from `SPANALLOC_STRESS` (default 1). A value that does not
/// parse as a positive number panics rather than silently running the default.
pub fn stress_scale() -> f64 {
    static SCALE: OnceLock<f64> = OnceLock::new();
    *SCALE.get_or_init(|| match std::env::var(STRESS_VAR) {
        Ok(v) => {
            let s: f64 = v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{STRESS_VAR}={v:?} is not a number"));
            assert!(s.is_finite() && s > 0.0, "{STRESS_VAR}={v:?} must be > 0");
            s
        }
        Err(_) => 1.0,
    })
}

/// `n` scaled by `SPANALLOC_STRESS`, at least 1.
pub fn scaled(n: usize) -> usize {
    ((n as f64) * stress_scale()).round().max(1.0) as usize
}

// ---------------------------------------------------------------------------
// RNG

/// The SplitMix64 finaliser: a bijective mix of 64 bits.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from two numbers (a thread and a sequence number, say).
pub const fn seed_for(a: u64, b: u64) -> u64 {
    mix64(mix64(a).wrapping_add(b.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// SplitMix64: small, fast, and good enough to drive workloads.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: mix64(seed) }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi, "Rng::range({lo}, {hi})");
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    /// In `lo..=hi`, uniform in the logarithm: a power-of-two bucket is picked
    /// uniformly, then a value uniformly inside it. Biased toward small values
    /// the way real allocation sizes are.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        assert!(0 < lo && lo <= hi, "Rng::log_uniform({lo}, {hi})");
        let lo_bits = usize::BITS - lo.leading_zeros();
        let hi_bits = usize::BITS - hi.leading_zeros();
        let bits = self.range(lo_bits as usize, hi_bits as usize) as u32;
        let bucket_lo = (1usize << (bits - 1)).max(lo);
        let bucket_hi = if bits == usize::BITS {
            hi
        } else {
            ((1usize << bits) - 1).min(hi)
        };
        self.range(bucket_lo, bucket_hi)
    }

    /// A power-of-two alignment: mostly 1..=16, sometimes up to 4 KiB, rarely
    /// up to `max` (which must be a power of two).
    pub fn align(&mut self, max: usize) -> usize {
        assert!(max.is_power_of_two());
        let max_shift = max.trailing_zeros() as usize;
        let shift = match self.below(100) {
            0..=84 => self.range(0, 4),
            85..=96 => self.range(5, 12),
            _ => self.range(13, 21),
        };
        1 << shift.min(max_shift)
    }
}

// ---------------------------------------------------------------------------
// Patterns

/// Blocks up to this size carry the pattern in every byte.
pub const FULL_PATTERN_MAX: usize = 64 * KIB;
/// Above `FULL_PATTERN_MAX`, the first and last `EDGE` bytes carry the pattern…
pub const EDGE: usize = 4 * KIB;
/// …and one byte every `SAMPLE_STRIDE` bytes between them. The stride is a
/// prime just under the page size, so every page is touched, each at a
/// different offset.
pub const SAMPLE_STRIDE: usize = 4093;
/// `alloc_zeroed` blocks up to this size are checked in every byte; larger
/// ones like a patterned block (edges plus stride).
pub const FULL_ZERO_CHECK_MAX: usize = MIB;

/// Word `index` of the pattern for `seed` (byte `i` of a block is byte
/// `i % 8`, little-endian, of word `i / 8`).
#[inline]
fn pattern_word(seed: u64, index: usize) -> u64 {
    let x = seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x ^ (x >> 29) ^ (x >> 47)
}

/// The pattern byte for `seed` at byte offset `off`.
#[inline]
pub fn pattern_byte(seed: u64, off: usize) -> u8 {
    (pattern_word(seed, off / 8) >> (8 * (off % 8))) as u8
}

/// The regions of a `len`-byte block that carry the pattern, as
/// `(start, end, step)`: step 1 is dense, a larger step writes single bytes.
fn plan(len: usize, dense_max: usize) -> [(usize, usize, usize); 3] {
    if len <= dense_max {
        [(0, len, 1), (0, 0, 1), (0, 0, 1)]
    } else {
        [
            (0, EDGE, 1),
            (EDGE, len - EDGE, SAMPLE_STRIDE),
            (len - EDGE, len, 1),
        ]
    }
}

/// A byte that differs from what it should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub offset: usize,
    pub expected: u8,
    pub found: u8,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "byte at offset {} is {:#04x}, expected {:#04x}",
            self.offset, self.found, self.expected
        )
    }
}

/// Writes the pattern for `seed` over the patterned regions of a `len`-byte
/// block.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
pub unsafe fn fill(ptr: *mut u8, len: usize, seed: u64) {
    for (start, end, step) in plan(len, FULL_PATTERN_MAX) {
        if step == 1 {
            let mut off = start;
            while off < end && off % 8 != 0 {
                // SAFETY: off < end <= len, and the caller gave len writable bytes.
                unsafe { ptr.add(off).write(pattern_byte(seed, off)) };
                off += 1;
            }
            while off + 8 <= end {
                let word = pattern_word(seed, off / 8).to_le();
                // SAFETY: off + 8 <= len; the write is unaligned-tolerant.
                unsafe { ptr.add(off).cast::<u64>().write_unaligned(word) };
                off += 8;
            }
            while off < end {
                // SAFETY: off < end <= len.
                unsafe { ptr.add(off).write(pattern_byte(seed, off)) };
                off += 1;
            }
        } else {
            for off in (start..end).step_by(step) {
                // SAFETY: off < end <= len.
                unsafe { ptr.add(off).write(pattern_byte(seed, off)) };
            }
        }
    }
}

/// Checks the bytes that `fill(ptr, written_len, seed)` wrote, restricted to
/// offsets below `checked_len` (the preserved prefix after a realloc).
///
/// # Safety
/// `ptr` must be valid for reads of `min(written_len, checked_len)` bytes.
pub unsafe fn verify_prefix(
    ptr: *const u8,
    written_len: usize,
    checked_len: usize,
    seed: u64,
) -> Result<(), Mismatch> {
    let byte = |off: usize| -> Result<(), Mismatch> {
        // SAFETY: every caller below passes off < min(written_len, checked_len).
        let found = unsafe { ptr.add(off).read() };
        let expected = pattern_byte(seed, off);
        if found == expected {
            Ok(())
        } else {
            Err(Mismatch {
                offset: off,
                expected,
                found,
            })
        }
    };
    for (start, end, step) in plan(written_len, FULL_PATTERN_MAX) {
        let end = end.min(checked_len);
        if step == 1 {
            let mut off = start;
            while off < end && off % 8 != 0 {
                byte(off)?;
                off += 1;
            }
            while off + 8 <= end {
                // SAFETY: off + 8 <= end <= the readable length.
                let found = unsafe { ptr.add(off).cast::<u64>().read_unaligned() };
                if found != pattern_word(seed, off / 8).to_le() {
                    for o in off..off + 8 {
                        byte(o)?;
                    }
                }
                off += 8;
            }
            while off < end {
                byte(off)?;
                off += 1;
            }
        } else {
            for off in (start..end).step_by(step) {
                byte(off)?;
            }
        }
    }
    Ok(())
}

/// Checks a block written by `fill(ptr, len, seed)`.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes.
pub unsafe fn verify(ptr: *const u8, len: usize, seed: u64) -> Result<(), Mismatch> {
    // SAFETY: forwarded from the caller, with checked_len == written_len.
    unsafe { verify_prefix(ptr, len, len, seed) }
}

/// Checks that a block is zero: every byte up to `FULL_ZERO_CHECK_MAX`, the
/// edges and one byte per stride above.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes.
pub unsafe fn verify_zeroed(ptr: *const u8, len: usize) -> Result<(), Mismatch> {
    for (start, end, step) in plan(len, FULL_ZERO_CHECK_MAX) {
        let mut off = start;
        while off < end {
            let chunk = if step == 1 && off % 8 == 0 && off + 8 <= end {
                8
            } else {
                1
            };
            let nonzero = if chunk == 8 {
                // SAFETY: off + 8 <= end <= len.
                unsafe { ptr.add(off).cast::<u64>().read_unaligned() != 0 }
            } else {
                // SAFETY: off < end <= len.
                unsafe { ptr.add(off).read() != 0 }
            };
            if nonzero {
                for o in off..off + chunk {
                    // SAFETY: o < off + chunk <= end <= len.
                    let found = unsafe { ptr.add(o).read() };
                    if found != 0 {
                        return Err(Mismatch {
                            offset: o,
                            expected: 0,
                            found,
                        });
                    }
                }
            }
            off += if step == 1 { chunk } else { step };
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Blocks

/// An allocation made directly through `GlobalAlloc` on a `'static`
/// allocator, filled with the pattern for `seed`.
///
/// Invariant: `ptr` was returned by `heap` for `layout`, has not been freed,
/// is owned by this value alone, and its patterned bytes hold the pattern for
/// `seed` unless the allocator corrupted them. Dropping a `Block` without
/// `free` leaks it (deliberately: a test that panics must not hand memory it
/// suspects back to the allocator).
#[must_use = "a Block leaks unless it is freed"]
pub struct Block {
    heap: &'static SpanAlloc,
    ptr: NonNull<u8>,
    layout: Layout,
    seed: u64,
}

// SAFETY: a Block owns its allocation exclusively (no other pointer to it is
// kept), and a GlobalAlloc may free memory on any thread, so moving the owner
// to another thread is sound.
unsafe impl Send for Block {}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Block {{ addr: {:p}, size: {}, align: {}, seed: {:#018x} }}",
            self.ptr,
            self.layout.size(),
            self.layout.align(),
            self.seed
        )
    }
}

/// Panics unless `ptr` is aligned to `align`.
fn assert_aligned(ptr: NonNull<u8>, layout: Layout, what: &str) {
    assert!(
        (ptr.as_ptr() as usize).is_multiple_of(layout.align()),
        "{what}({layout:?}) returned {ptr:p}, which is not {}-byte aligned",
        layout.align()
    );
}

impl Block {
    /// Allocates `layout` from `heap` and fills it; `None` if the allocator
    /// returned null. Panics if the block is misaligned.
    pub fn alloc(heap: &'static SpanAlloc, layout: Layout, seed: u64) -> Option<Block> {
        assert!(layout.size() > 0, "GlobalAlloc needs a non-zero size");
        // SAFETY: layout has a non-zero size (checked above).
        let ptr = NonNull::new(unsafe { heap.alloc(layout) })?;
        assert_aligned(ptr, layout, "alloc");
        // SAFETY: the allocator returned ptr for layout, so it is valid for
        // writes of layout.size() bytes.
        unsafe { fill(ptr.as_ptr(), layout.size(), seed) };
        Some(Block {
            heap,
            ptr,
            layout,
            seed,
        })
    }

    /// Like `alloc` but through `alloc_zeroed`; panics unless the block reads
    /// as zero before it is filled.
    pub fn alloc_zeroed(heap: &'static SpanAlloc, layout: Layout, seed: u64) -> Option<Block> {
        assert!(layout.size() > 0, "GlobalAlloc needs a non-zero size");
        // SAFETY: layout has a non-zero size (checked above).
        let ptr = NonNull::new(unsafe { heap.alloc_zeroed(layout) })?;
        assert_aligned(ptr, layout, "alloc_zeroed");
        // SAFETY: the allocator returned ptr for layout: readable for
        // layout.size() bytes.
        if let Err(m) = unsafe { verify_zeroed(ptr.as_ptr(), layout.size()) } {
            panic!("alloc_zeroed({layout:?}) returned {ptr:p} that is not zeroed: {m}");
        }
        // SAFETY: as above, writable for layout.size() bytes.
        unsafe { fill(ptr.as_ptr(), layout.size(), seed) };
        Some(Block {
            heap,
            ptr,
            layout,
            seed,
        })
    }

    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Checks the pattern without panicking.
    pub fn verify(&self) -> Result<(), Mismatch> {
        // SAFETY: by the type's invariant ptr is live for layout.size() bytes
        // and owned by self.
        unsafe { verify(self.ptr.as_ptr(), self.layout.size(), self.seed) }
    }

    /// Checks the pattern; panics with `what` and the block on a mismatch.
    pub fn check(&self, what: &str) {
        if let Err(m) = self.verify() {
            panic!("{what}: {self:?} corrupted: {m}");
        }
    }

    /// Checks the pattern, then reallocates to `new_size`, checks the
    /// preserved prefix and refills the whole block with `new_seed`. On a null
    /// return the original block comes back untouched as `Err`.
    pub fn realloc(self, new_size: usize, new_seed: u64) -> Result<Block, Block> {
        self.check("before realloc");
        assert!(new_size > 0, "GlobalAlloc::realloc needs a non-zero size");
        let old = self.layout;
        let new_layout = Layout::from_size_align(new_size, old.align())
            .expect("new size overflows when rounded to the alignment");
        // SAFETY: ptr was allocated by heap with layout `old` and is still
        // live (type invariant); new_size is non-zero and, rounded up to the
        // alignment, does not overflow isize (Layout::from_size_align above).
        let raw = unsafe { self.heap.realloc(self.ptr.as_ptr(), old, new_size) };
        let Some(ptr) = NonNull::new(raw) else {
            return Err(self);
        };
        assert_aligned(ptr, new_layout, "realloc");
        let keep = old.size().min(new_size);
        // SAFETY: realloc returned a block valid for new_size >= keep bytes.
        if let Err(m) = unsafe { verify_prefix(ptr.as_ptr(), old.size(), keep, self.seed) } {
            panic!(
                "realloc of {self:?} to {new_size} bytes (now at {ptr:p}) lost the \
                 first {keep} bytes: {m}"
            );
        }
        // SAFETY: valid for writes of new_size bytes.
        unsafe { fill(ptr.as_ptr(), new_size, new_seed) };
        Ok(Block {
            heap: self.heap,
            ptr,
            layout: new_layout,
            seed: new_seed,
        })
    }

    /// Checks the pattern (panicking on a mismatch, and then leaking the
    /// block) and frees the block.
    pub fn free(self) {
        self.check("before free");
        // SAFETY: ptr was allocated by heap with this layout and is live; self
        // is consumed, so it is freed exactly once.
        unsafe { self.heap.dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Panics if any two of `blocks` overlap.
pub fn assert_disjoint(blocks: &mut [&Block]) {
    blocks.sort_by_key(|b| b.addr());
    for pair in blocks.windows(2) {
        assert!(
            pair[0].addr() + pair[0].layout.size() <= pair[1].addr(),
            "live blocks overlap: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

// ---------------------------------------------------------------------------
// Child processes

/// How long a test's child process may run before it is killed and the test
/// fails: a heap corrupted by a regression can make a child loop forever,
/// which would otherwise hang the whole test run.
pub const CHILD_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `cmd` to completion like `Command::output`, but kills it and panics
/// if it runs longer than [`CHILD_TIME_LIMIT`].
pub fn output_within_limit(cmd: &mut std::process::Command) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process");
    // Drained on threads of their own, so that a chatty child never blocks
    // on a full pipe while this thread waits.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes)
                .expect("read the child's output");
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + CHILD_TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
            panic!("child killed after {CHILD_TIME_LIMIT:?}: {cmd:?}\n{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
