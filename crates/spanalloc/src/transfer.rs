//! Transfer slots: the lock-free hand-over of whole batches of objects
//! between thread caches of one size class. See lib.rs for the overview.
//!
//! When a thread cache overflows it hands a batch (a null-terminated list of
//! exactly `class_batch(class)` objects) to its mcentral; when one runs dry it
//! takes a batch. Most batches go from the thread that frees to a thread that
//! allocates without touching a span or a lock: this is what keeps
//! producer/consumer programs (where every free is a remote free) fast.
//!
//! Each slot holds one batch or null. `push` claims an empty slot with a
//! compare-and-swap from null; `pop` empties a full slot with a swap. A
//! thread only ever dereferences a batch it obtained by its own successful
//! swap, so there is no ABA problem: whatever a slot holds at the moment of
//! the swap belongs to the swapper. Release on publish and acquire on take
//! make the batch's links visible to the taker.

use crate::span::FreeObject;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

/// The most batches one class can park in its slots (see
/// [`crate::central::transfer_capacity`] for each class's own limit).
pub const TRANSFER_SLOTS: usize = 64;

/// One slot: the few atomic operations the slots need, so the same code runs
/// on `std` atomics and, in tests, on `loom`'s model-checked ones.
pub trait Slot {
    /// The current value, for a cheap look before trying to claim.
    fn peek(&self) -> *mut FreeObject;
    /// Stores `batch` if the slot is empty (release); true on success.
    fn publish(&self, batch: *mut FreeObject) -> bool;
    /// Empties the slot (acquire), returning what it held.
    fn take(&self) -> *mut FreeObject;
}

impl Slot for AtomicPtr<FreeObject> {
    #[inline]
    fn peek(&self) -> *mut FreeObject {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn publish(&self, batch: *mut FreeObject) -> bool {
        self.compare_exchange(null_mut(), batch, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }
    #[inline]
    fn take(&self) -> *mut FreeObject {
        self.swap(null_mut(), Ordering::Acquire)
    }
}

/// The slots of one size class.
///
/// Invariant: a non-null slot holds a batch of exactly `class_batch(class)`
/// objects that no thread cache or span also holds.
pub struct TransferSlots<S: Slot = AtomicPtr<FreeObject>> {
    slots: [S; TRANSFER_SLOTS],
}

impl TransferSlots {
    /// All slots empty.
    pub const fn new() -> Self {
        TransferSlots {
            slots: [const { AtomicPtr::new(null_mut()) }; TRANSFER_SLOTS],
        }
    }
}

impl<S: Slot> TransferSlots<S> {
    /// Slots built from given cells (for model checking).
    #[cfg(test)]
    pub fn from_slots(slots: [S; TRANSFER_SLOTS]) -> Self {
        TransferSlots { slots }
    }

    /// Parks `batch` in one of the first `capacity` slots; false if they
    /// are all full (the caller keeps the batch).
    #[inline]
    pub fn push(&self, batch: *mut FreeObject, capacity: usize) -> bool {
        self.slots[..capacity.min(TRANSFER_SLOTS)]
            .iter()
            .any(|s| s.peek().is_null() && s.publish(batch))
    }

    /// Takes a parked batch, or null if there is none.
    #[inline]
    pub fn pop(&self) -> *mut FreeObject {
        for s in &self.slots {
            if !s.peek().is_null() {
                let b = s.take();
                if !b.is_null() {
                    return b;
                }
            }
        }
        null_mut()
    }

    /// Number of parked batches at this instant (for statistics).
    pub fn parked(&self) -> usize {
        self.slots.iter().filter(|s| !s.peek().is_null()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(objs: &mut [FreeObject]) -> *mut FreeObject {
        let n = objs.len();
        for i in 0..n {
            objs[i].next = if i + 1 < n {
                &mut objs[i + 1]
            } else {
                null_mut()
            };
        }
        &mut objs[0]
    }

    #[test]
    fn fills_up_then_refuses_then_drains() {
        let t = TransferSlots::new();
        let mut store: Vec<[FreeObject; 2]> = (0..TRANSFER_SLOTS + 1)
            .map(|_| {
                [
                    FreeObject { next: null_mut() },
                    FreeObject { next: null_mut() },
                ]
            })
            .collect();
        let batches: Vec<_> = store.iter_mut().map(|b| batch_of(b)).collect();
        for &b in &batches[..TRANSFER_SLOTS] {
            assert!(t.push(b, TRANSFER_SLOTS));
        }
        assert!(!t.push(batches[TRANSFER_SLOTS], TRANSFER_SLOTS));
        assert_eq!(t.parked(), TRANSFER_SLOTS);
        let mut got: Vec<_> = (0..TRANSFER_SLOTS).map(|_| t.pop()).collect();
        assert!(t.pop().is_null());
        got.sort();
        let mut want = batches[..TRANSFER_SLOTS].to_vec();
        want.sort();
        assert_eq!(got, want);
    }

    /// Model-checks the slots with loom: two threads publish batches whose
    /// contents they wrote just before, two take them; every batch is taken
    /// at most once, none is lost, and each taker sees the contents written
    /// before the publish.
    #[test]
    fn loom_batches_are_handed_over_exactly_once() {
        use loom::cell::UnsafeCell;
        use loom::sync::atomic::AtomicPtr as LoomPtr;
        use loom::sync::Arc;

        struct LoomSlot(LoomPtr<FreeObject>);
        impl Slot for LoomSlot {
            fn peek(&self) -> *mut FreeObject {
                self.0.load(Ordering::Relaxed)
            }
            fn publish(&self, b: *mut FreeObject) -> bool {
                self.0
                    .compare_exchange(null_mut(), b, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            }
            fn take(&self) -> *mut FreeObject {
                self.0.swap(null_mut(), Ordering::Acquire)
            }
        }

        /// A batch: its link word first, as in a real batch, then a
        /// payload tracked by loom for data races.
        #[repr(C)]
        struct Node {
            _link: FreeObject,
            payload: UnsafeCell<u32>,
        }

        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let slots: [LoomSlot; TRANSFER_SLOTS] =
                core::array::from_fn(|_| LoomSlot(LoomPtr::new(null_mut())));
            let t = Arc::new(TransferSlots::from_slots(slots));
            let nodes: Vec<usize> = (0..2)
                .map(|_| {
                    Box::into_raw(Box::new(Node {
                        _link: FreeObject { next: null_mut() },
                        payload: UnsafeCell::new(0),
                    })) as usize
                })
                .collect();
            let producers: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let t = Arc::clone(&t);
                    loom::thread::spawn(move || {
                        let node = n as *mut Node;
                        // SAFETY: the node is ours until published.
                        unsafe { (*node).payload.with_mut(|p| *p = 100 + i as u32) };
                        assert!(t.push(node.cast(), TRANSFER_SLOTS));
                    })
                })
                .collect();
            let consumer = {
                let t = Arc::clone(&t);
                loom::thread::spawn(move || {
                    let b = t.pop();
                    if !b.is_null() {
                        let node = b as *mut Node;
                        // SAFETY: a successful take hands the batch to us alone.
                        let v = unsafe { (*node).payload.with(|p| *p) };
                        assert!(v == 100 || v == 101, "saw unpublished payload {v}");
                    }
                    b as usize
                })
            };
            for p in producers {
                p.join().unwrap();
            }
            let first = consumer.join().unwrap();
            let mut taken = vec![];
            if first != 0 {
                taken.push(first);
            }
            loop {
                let b = t.pop();
                if b.is_null() {
                    break;
                }
                taken.push(b as usize);
            }
            taken.sort();
            let mut all = nodes.clone();
            all.sort();
            assert_eq!(taken, all, "a batch was lost or taken twice");
            for n in nodes {
                // SAFETY: every node came from Box::into_raw and was taken exactly once.
                drop(unsafe { Box::from_raw(n as *mut Node) });
            }
        });
    }
}
