//! The three allocators under comparison, how they are called, and the one
//! place where choosing them at run time turns into a monomorphised call.
//!
//! The choice is made once per measurement, outside the timed loop; inside it,
//! [`Workload::run`] is a separate copy of the loop for each allocator and
//! call mode, with no dynamic dispatch.
//!
//! How the allocator is called matters as much as which one it is. A Rust
//! crate's allocator can be inlined into its caller, a C library's cannot; a
//! program, however, reaches its `#[global_allocator]` through the
//! compiler-generated `__rust_alloc` / `__rust_dealloc` functions, which are
//! not inlined into their callers (short of LTO). By default each allocator is
//! therefore called through [`Shim`], one non-inlined function per operation
//! whose body is the allocator's trait method, the same shape as that
//! generated one. [`CallMode::Inline`] calls the allocators directly instead,
//! which shows what inlining a Rust allocator's fast path could buy.

use std::alloc::{GlobalAlloc, Layout};

use serde::Serialize;

use crate::workloads::Workload;

/// An allocator under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocator {
    /// This project: `spanalloc::SpanAlloc`.
    SpanAlloc,
    /// `std::alloc::System`, i.e. the C library's malloc (glibc on Linux).
    System,
    /// `mimalloc::MiMalloc`, the mimalloc crate's bundled build.
    Mimalloc,
}

/// How the workloads call the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallMode {
    /// Through [`Shim`]: one non-inlined call per allocation and per free,
    /// as a program calls its `#[global_allocator]`.
    GlobalAllocShim,
    /// Directly through the trait; the compiler may inline the allocator
    /// into the benchmark loop (only a Rust allocator can gain from it).
    Inline,
}

impl Allocator {
    /// All of them, in report order (each round starts one further along).
    pub const ALL: [Allocator; 3] = [Allocator::SpanAlloc, Allocator::System, Allocator::Mimalloc];

    /// Name used in tables, summaries and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::SpanAlloc => "spanalloc",
            Allocator::System => "system",
            Allocator::Mimalloc => "mimalloc",
        }
    }

    /// Runs `iterations` iterations of `workload` against this allocator,
    /// called as `calls` says.
    pub fn run(self, calls: CallMode, workload: &mut Workload, iterations: u64) {
        match self {
            Allocator::SpanAlloc => run_with(spanalloc::SpanAlloc, calls, workload, iterations),
            Allocator::System => run_with(std::alloc::System, calls, workload, iterations),
            Allocator::Mimalloc => run_with(mimalloc::MiMalloc, calls, workload, iterations),
        }
    }
}

/// [`Allocator::run`] for one concrete allocator type.
fn run_with<A: GlobalAlloc>(alloc: A, calls: CallMode, workload: &mut Workload, iterations: u64) {
    match calls {
        CallMode::GlobalAllocShim => workload.run(&Shim(alloc), iterations),
        CallMode::Inline => workload.run(&alloc, iterations),
    }
}

/// `A` behind one non-inlined function per operation, the shape of the
/// `__rust_alloc` / `__rust_dealloc` functions through which a program calls
/// its `#[global_allocator]`: `A`'s method may be inlined into the shim, the
/// shim is never inlined into the benchmark loop.
pub struct Shim<A>(pub A);

// SAFETY: every method forwards its arguments unchanged to `A`'s and returns
// its result, so `Shim<A>` keeps exactly the promises `A` makes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Shim<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller upholds `GlobalAlloc::alloc`'s contract, which is
        // the one `A::alloc` requires.
        unsafe { self.0.alloc(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: our caller upholds `GlobalAlloc::dealloc`'s contract; since
        // every allocation went to `A` unchanged, `ptr` is a block of `A`'s
        // allocated with `layout`.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: our caller upholds `GlobalAlloc::realloc`'s contract; `ptr`
        // is a block of `A`'s allocated with `layout`, as for `dealloc`.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allocator_runs_in_every_mode() {
        for calls in [CallMode::GlobalAllocShim, CallMode::Inline] {
            for mut w in Workload::all(32, 5) {
                for a in Allocator::ALL {
                    a.run(calls, &mut w, 2);
                }
            }
        }
    }

    #[test]
    fn shim_forwards_realloc_and_zeroing() {
        let shim = Shim(std::alloc::System);
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { shim.alloc_zeroed(layout) };
        assert!(!p.is_null());
        // SAFETY: `p` holds 64 bytes, zeroed by `alloc_zeroed`.
        assert!(unsafe { std::slice::from_raw_parts(p, 64) }
            .iter()
            .all(|&b| b == 0));
        // SAFETY: `p` was allocated by `shim` with `layout`; 128 is non-zero
        // and does not overflow when rounded up to the alignment.
        let q = unsafe { shim.realloc(p, layout, 128) };
        assert!(!q.is_null());
        let grown = Layout::from_size_align(128, 8).unwrap();
        // SAFETY: `q` was returned by `realloc` for a block now of 128 bytes.
        unsafe { shim.dealloc(q, grown) };
    }
}
