//! fixalloc: a free-list allocator for the allocator's own fixed-size
//! metadata (span structs), fed directly by the OS layer. See lib.rs.
//!
//! The allocator cannot use `malloc` for its own records, so it takes memory
//! in chunks from the OS and hands it out one record at a time, keeping freed
//! records on a list threaded through their first word.

use crate::os::OsMem;
use core::marker::PhantomData;
use core::ptr::null_mut;

/// Bytes requested from the OS at a time.
const CHUNK_BYTES: usize = 256 << 10;

/// Allocator of `T` records.
///
/// Invariants: `[next, end)` is unused committed memory from the OS;
/// `free` links records through their first word (so `T` must be at least a
/// pointer wide and keep no live data in its first word while freed);
/// memory is never returned to the OS. Guarded by its owner's lock.
pub struct FixAlloc<T> {
    free: *mut *mut u8,
    next: usize,
    end: usize,
    /// Records handed out and not freed.
    pub in_use: usize,
    /// Bytes obtained from the OS.
    pub os_bytes: usize,
    _marker: PhantomData<T>,
}

// SAFETY: the raw pointers refer to memory owned by this allocator; its owner
// serialises access with a lock.
unsafe impl<T> Send for FixAlloc<T> {}

impl<T> FixAlloc<T> {
    const SIZE: usize = {
        let s = core::mem::size_of::<T>();
        let a = core::mem::align_of::<T>();
        assert!(s >= core::mem::size_of::<usize>() && a <= 4096);
        (s + a - 1) & !(a - 1)
    };

    /// An empty allocator; it asks the OS for memory on first use.
    pub const fn new() -> Self {
        FixAlloc {
            free: null_mut(),
            next: 0,
            end: 0,
            in_use: 0,
            os_bytes: 0,
            _marker: PhantomData,
        }
    }

    /// Returns uninitialised memory for one `T`, or null if the OS refuses.
    pub fn alloc(&mut self, os: &impl OsMem) -> *mut T {
        if !self.free.is_null() {
            let rec = self.free;
            // SAFETY: records on the free list hold the next link in their first word.
            self.free = unsafe { *rec }.cast();
            self.in_use += 1;
            return rec.cast();
        }
        if self.next + Self::SIZE > self.end {
            let chunk = os.reserve(CHUNK_BYTES, 4096);
            if chunk.is_null() {
                return null_mut();
            }
            // SAFETY: chunk was just reserved with this size.
            if !unsafe { os.commit(chunk, CHUNK_BYTES) } {
                // SAFETY: the chunk is ours and unused.
                unsafe { os.release(chunk, CHUNK_BYTES) };
                return null_mut();
            }
            self.os_bytes += CHUNK_BYTES;
            self.next = chunk as usize;
            self.end = chunk as usize + CHUNK_BYTES;
        }
        let rec = self.next as *mut T;
        self.next += Self::SIZE;
        self.in_use += 1;
        rec
    }

    /// Takes back a record.
    ///
    /// # Safety
    /// `rec` must come from `alloc` of this allocator and not be freed already;
    /// its first word is overwritten.
    pub unsafe fn free(&mut self, rec: *mut T) {
        let rec: *mut *mut u8 = rec.cast();
        // SAFETY: rec is one of our records (caller), at least a pointer wide.
        unsafe { *rec = self.free.cast() };
        self.free = rec;
        self.in_use -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::fake::FakeOs;

    #[test]
    fn reuses_freed_records_and_reports_refusal() {
        let os = FakeOs::with_budget(CHUNK_BYTES);
        let mut fa: FixAlloc<[u64; 8]> = FixAlloc::new();
        let a = fa.alloc(&os);
        let b = fa.alloc(&os);
        assert!(!a.is_null() && !b.is_null() && a != b);
        // SAFETY: a came from fa.alloc.
        unsafe { fa.free(a) };
        assert_eq!(fa.alloc(&os), a);
        // Exhaust the single chunk the budget allows, then expect null.
        let per_chunk = CHUNK_BYTES / 64;
        for _ in 2..per_chunk {
            assert!(!fa.alloc(&os).is_null());
        }
        assert!(fa.alloc(&os).is_null());
        assert_eq!(fa.in_use, per_chunk);
    }
}
