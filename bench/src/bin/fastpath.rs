//! `fastpath ALLOCATOR N`: N allocations of 64 bytes, each freed at once with
//! its size (`GlobalAlloc::dealloc` takes the layout), through `spanalloc`,
//! `mimalloc` or `harness` (an allocator that does nothing, to count the
//! loop and the calls alone), for `spanalloc-bench fastpath` to count the
//! instructions under callgrind.
//!
//! Each operation goes through one non-inlined function, the shape of the
//! `__rust_alloc` / `__rust_dealloc` functions through which a program calls
//! its `#[global_allocator]`. Run with two values of N, the difference of the
//! counts over the difference of N is the cost of one pair, loop included:
//! start-up and exit cancel out. Less the same for `harness`, it is the
//! allocator's own.
//!
//! Prints `profile dev` or `profile release`: counts differ between them.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::process::ExitCode;

/// The harness's own allocations go to the C library, away from the two
/// allocators being counted.
#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

/// The least an allocator can do: hand out the same block every time, free
/// nothing. Its count is that of the loop and the calls. (`black_box` keeps
/// the compiler from deleting the calls to methods that do nothing.)
struct Harness(*mut u8);

// SAFETY: every call returns the one 64-byte block `Harness` was made with,
// aligned to 8, which outlives it; `pairs` frees each allocation before the
// next, so no two live allocations overlap.
unsafe impl GlobalAlloc for Harness {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        black_box(self.0)
    }

    unsafe fn dealloc(&self, p: *mut u8, _: Layout) {
        black_box(p);
    }
}

/// One allocation through `A`, never inlined into the loop. The size and
/// the alignment arrive as `__rust_alloc`'s do, in that order (a `Layout`
/// would pass them the other way round), so that the register allocation
/// is that of the function a program calls.
#[inline(never)]
fn alloc_through<A: GlobalAlloc>(a: &A, size: usize, align: usize) -> *mut u8 {
    // SAFETY: `pairs` passes a valid layout of non-zero size (64 bytes).
    unsafe { a.alloc(Layout::from_size_align_unchecked(size, align)) }
}

/// One sized free through `A`, never inlined into the loop, with the
/// arguments of `__rust_dealloc` (pointer, size, alignment).
///
/// # Safety
/// `p` must be a live block of `a`'s allocated with that size and alignment.
#[inline(never)]
unsafe fn dealloc_through<A: GlobalAlloc>(a: &A, p: *mut u8, size: usize, align: usize) {
    // SAFETY: forwarded from the caller, who allocated with this layout.
    unsafe { a.dealloc(p, Layout::from_size_align_unchecked(size, align)) }
}

/// `n` pairs of a 64-byte allocation and its sized free.
#[inline(never)]
fn pairs<A: GlobalAlloc>(a: &A, n: u64) {
    let (size, align) = black_box((64, 8));
    for _ in 0..n {
        let p = black_box(alloc_through(a, size, align));
        assert!(!p.is_null(), "out of memory");
        // SAFETY: `p` was just allocated by `a` with this size and alignment.
        unsafe { dealloc_through(a, p, size, align) };
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.get(1).and_then(|n| n.parse::<u64>().ok());
    let (Some(allocator), Some(n)) = (args.first(), n) else {
        eprintln!("usage: fastpath spanalloc|mimalloc|harness N");
        return ExitCode::from(2);
    };
    match allocator.as_str() {
        "spanalloc" => pairs(&spanalloc::SpanAlloc, n),
        "mimalloc" => pairs(&mimalloc::MiMalloc, n),
        "harness" => {
            let mut block = Box::new([0u64; 8]);
            pairs(&Harness(block.as_mut_ptr().cast()), n);
        }
        other => {
            eprintln!("fastpath: unknown allocator {other:?}");
            return ExitCode::from(2);
        }
    }
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!("profile {profile}");
    ExitCode::SUCCESS
}
