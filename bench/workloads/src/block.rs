//! [`Block`]: a heap block that knows its own size, so that any thread holding
//! it can free it.
//!
//! Rust frees with the layout the block was allocated with; a workload that
//! passes raw blocks between threads through atomics (the larson simulation)
//! cannot carry the size beside the pointer, so the block keeps it in its first
//! word, as a C program's `malloc` header would.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Alignment of every block: a word, the common case of Rust objects.
const ALIGN: usize = std::mem::align_of::<usize>();

/// Smallest block: the size word and at least one byte of payload.
pub const MIN_SIZE: usize = 16;

/// An owned heap block of at least [`MIN_SIZE`] bytes, freed on drop.
///
/// Invariant: `ptr` is a live allocation of the global allocator, made with
/// `Layout::from_size_align(size, ALIGN)` where `size` is the `usize` stored
/// at `ptr` (at least [`MIN_SIZE`]).
#[derive(Debug)]
pub struct Block {
    ptr: NonNull<u8>,
}

// SAFETY: a `Block` owns its allocation outright (nothing else points into
// it), and the global allocator may free a block on any thread.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `size` bytes (raised to [`MIN_SIZE`]), records the size and
    /// writes `tag` into its last byte, so that both ends of the block are
    /// touched as a program filling it would.
    pub fn new(size: usize, tag: u8) -> Self {
        let size = size.max(MIN_SIZE);
        let layout = Layout::from_size_align(size, ALIGN).expect("block layout");
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(p) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the block is `size >= 16` bytes, aligned for `usize`, so the
        // first word and the last byte are in it and writable.
        unsafe {
            ptr.cast::<usize>().write(size);
            p.add(size - 1).write(tag);
        }
        Self { ptr }
    }

    /// The size the block was allocated with.
    pub fn size(&self) -> usize {
        // SAFETY: the first word holds the size (invariant).
        unsafe { self.ptr.cast::<usize>().read() }
    }

    /// The byte written by [`Block::new`] (or [`Block::set_tag`]).
    pub fn tag(&self) -> u8 {
        // SAFETY: `size() - 1` is the last byte of the live block.
        unsafe { self.ptr.as_ptr().add(self.size() - 1).read() }
    }

    /// Overwrites the last byte.
    pub fn set_tag(&mut self, tag: u8) {
        // SAFETY: as for `tag`; `&mut self` means no one else reads it.
        unsafe { self.ptr.as_ptr().add(self.size() - 1).write(tag) }
    }

    /// Gives up ownership: the pointer must come back through
    /// [`Block::from_raw`] to be freed.
    pub fn into_raw(self) -> *mut u8 {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes back a pointer from [`Block::into_raw`].
    ///
    /// # Safety
    /// `p` must come from [`Block::into_raw`] and not have been taken back
    /// since.
    pub unsafe fn from_raw(p: *mut u8) -> Self {
        Self {
            ptr: NonNull::new(p).expect("Block::from_raw(null)"),
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size(), ALIGN).expect("block layout");
        // SAFETY: `ptr` was allocated by the global allocator with exactly
        // this layout (invariant) and is freed once, here.
        unsafe { dealloc(self.ptr.as_ptr(), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_size_and_tag_across_raw_round_trip() {
        let mut b = Block::new(100, 7);
        assert_eq!((b.size(), b.tag()), (100, 7));
        b.set_tag(9);
        // A raw pointer is not `Send`: carry the address to another thread,
        // which frees the block, as larson's threads do.
        let addr = b.into_raw() as usize;
        let seen = std::thread::spawn(move || {
            // SAFETY: `addr` came from `into_raw` above and is taken back once.
            let b = unsafe { Block::from_raw(addr as *mut u8) };
            (b.size(), b.tag())
        });
        assert_eq!(seen.join().unwrap(), (100, 9));
    }

    #[test]
    fn small_sizes_are_raised() {
        assert_eq!(Block::new(1, 0).size(), MIN_SIZE);
    }
}
