//! spanalloc: a memory allocator built the way the Go runtime's is (which
//! in turn follows TCMalloc), on top of the operating system's virtual memory.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;
//! ```
//!
//! # Overview
//!
//! The allocator works in runs of pages. Objects up to 32 KiB are rounded up
//! to one of about 68 size classes, each served from spans holding objects
//! of that size only; larger objects get whole page runs of their own. The
//! structures, named as in the Go runtime so a reader can map one onto the
//! other:
//!
//! * `fixalloc` ([`fixalloc`]): a free-list allocator for the allocator's own
//!   fixed-size records (span structs), fed by the OS layer, never by malloc.
//! * `mspan` ([`span`]): a run of 8 KiB pages that is free, holds objects of
//!   one size class, or holds one large object.
//! * `pagemap` ([`pagemap`]): maps every address to its span in O(1), without
//!   a lock; also answers "is this pointer ours?".
//! * `mheap` ([`heap`]): the page heap. Reserves 64 MiB arenas from the OS,
//!   keeps free page runs (merged with free neighbours), hands out spans.
//! * `mcentral` ([`central`]): one per size class; the spans of that class,
//!   and lock-free transfer slots ([`transfer`]) that pass whole batches of
//!   objects between threads.
//! * `mcache` ([`cache`]): one per thread; a bounded free list per size
//!   class. Serves small mallocs and frees without locks or atomic
//!   read-modify-write operations.
//! * The OS layer ([`os`]): the only code that makes system calls.
//!
//! Lock order: an mcentral's lock, then the heap lock; never the reverse.
//!
//! # Allocating a small object
//!
//! 1. Round the size (and alignment) up to a size class ([`sizeclass`]):
//!    two table lookups.
//! 2. Pop the head of that class's list in the thread's mcache. Done, in
//!    about 30 instructions counting the size-class lookup, with no lock.
//! 3. If the list is empty, take a batch from the class's mcentral: first a
//!    whole batch parked in its transfer slots by another thread (one atomic
//!    swap), else, under the mcentral's lock, objects carved from a span
//!    with free objects.
//! 4. If the mcentral has no span with free objects, it asks the mheap for a
//!    new span (under the heap lock): a free page run of the right length,
//!    split off a larger one if need be.
//! 5. If the mheap has no free run that fits, it reserves a new arena from
//!    the OS (`mmap`) and commits it.
//!
//! # Allocating a large object (over 32 KiB)
//!
//! Take a page run of the rounded-up size straight from the mheap (steps 4
//! and 5), aligned as asked. Its first and last pages are recorded in the
//! pagemap.
//!
//! # Freeing
//!
//! A sized free (Rust's `dealloc` knows the layout, so the class follows from
//! the size without looking at memory) pushes the object onto the thread's
//! list of its class. When the list reaches its bound, one batch goes back to
//! the mcentral: parked in a transfer slot if one is free, else each object
//! back into its span (found through the pagemap). A span whose objects have
//! all come back returns its pages to the mheap, which merges them with free
//! neighbours. A large object goes straight back to the mheap.
//!
//! Objects freed by a thread other than the one that allocated them need no
//! special path: they join the freeing thread's cache and travel back in
//! batches. When a thread exits, a `pthread` key destructor returns its
//! whole cache to the mcentrals.
//!
//! # Zeroing
//!
//! Memory fresh from the OS is zero. A free page run remembers whether it may
//! hold non-zero bytes (`needzero`); `alloc_zeroed` of a large object clears
//! memory only then. Small objects are always cleared.
//!
//! # Returning memory
//!
//! [`release_memory`] returns every free page to the OS with
//! `madvise(MADV_DONTNEED)`; the pages stay mapped and read as zero, so they
//! are reused without any further system call.
//!
//! ARCHITECTURE.md at the repository root tells the same story at length.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// The allocator's structures have `const fn new()` so they can live in
// statics; a `Default` would add nothing.
#![allow(clippy::new_without_default)]

pub mod cache;
pub mod central;
pub mod dump;
pub mod fault;
pub mod fixalloc;
mod global;
pub mod heap;
pub mod options;
pub mod os;
pub mod pagemap;
pub mod profile;
pub mod raw;
pub mod scavenger;
pub mod sizeclass;
mod sizeclasses;
pub mod span;
pub mod stats;
pub mod sync;
pub mod transfer;

pub use global::{
    check_heap, dump_heap, exit_report, release_memory, stats, usable_size, SpanAlloc,
};
pub use heap::MHeap;
pub use stats::{ClassStats, Stats};
