//! A fake OS layer for tests: real memory underneath, with a budget that can
//! run out, so tests can drive the page heap into out-of-memory and back
//! without the kernel's cooperation. See os/mod.rs.

use super::{LinuxOs, OsMem};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// An [`OsMem`] that refuses to reserve past a budget of bytes and counts
/// every call.
#[derive(Debug)]
pub struct FakeOs {
    /// Bytes that may still be reserved; reserve fails when the request is larger.
    budget: AtomicUsize,
    /// Bytes currently reserved (reserve adds, release subtracts).
    pub reserved: AtomicUsize,
    /// Bytes made accessible by commit.
    pub committed: AtomicUsize,
    /// Bytes given back by decommit, in total.
    pub decommitted: AtomicUsize,
    /// Number of reserve calls that failed.
    pub refusals: AtomicUsize,
    /// The clock the heap sees, in milliseconds: set by the test.
    pub clock_ms: AtomicU64,
}

impl FakeOs {
    /// A fake OS that will reserve at most `budget` bytes in all.
    pub const fn with_budget(budget: usize) -> Self {
        FakeOs {
            budget: AtomicUsize::new(budget),
            reserved: AtomicUsize::new(0),
            committed: AtomicUsize::new(0),
            decommitted: AtomicUsize::new(0),
            refusals: AtomicUsize::new(0),
            clock_ms: AtomicU64::new(0),
        }
    }

    /// Sets the number of bytes that may still be reserved.
    pub fn set_budget(&self, budget: usize) {
        self.budget.store(budget, Ordering::SeqCst);
    }
}

// SAFETY: all memory comes from LinuxOs, which satisfies the contract; the
// budget only adds refusals.
unsafe impl OsMem for FakeOs {
    fn reserve(&self, size: usize, align: usize) -> *mut u8 {
        let taken = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(size));
        if taken.is_err() {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            return core::ptr::null_mut();
        }
        let p = LinuxOs.reserve(size, align);
        if p.is_null() {
            self.budget.fetch_add(size, Ordering::SeqCst);
            self.refusals.fetch_add(1, Ordering::SeqCst);
        } else {
            self.reserved.fetch_add(size, Ordering::SeqCst);
        }
        p
    }

    unsafe fn commit(&self, addr: *mut u8, size: usize) -> bool {
        self.committed.fetch_add(size, Ordering::SeqCst);
        // SAFETY: forwarded under the caller's guarantee.
        unsafe { LinuxOs.commit(addr, size) }
    }

    unsafe fn decommit(&self, addr: *mut u8, size: usize) {
        self.decommitted.fetch_add(size, Ordering::SeqCst);
        // SAFETY: forwarded under the caller's guarantee.
        unsafe { LinuxOs.decommit(addr, size) }
    }

    fn now_ms(&self) -> u64 {
        self.clock_ms.load(Ordering::SeqCst)
    }

    unsafe fn release(&self, addr: *mut u8, size: usize) {
        self.reserved.fetch_sub(size, Ordering::SeqCst);
        self.budget.fetch_add(size, Ordering::SeqCst);
        // SAFETY: forwarded under the caller's guarantee.
        unsafe { LinuxOs.release(addr, size) }
    }
}
