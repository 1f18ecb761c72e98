//! A small futex-based mutex that never allocates. See lib.rs for the overview.
//!
//! The allocator cannot use a lock that might allocate, and it needs to take
//! and release its locks by hand around `fork()`, so it has its own.

use crate::os::{futex_wait, futex_wake};
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and somebody may be asleep waiting for it.
const CONTENDED: u32 = 2;

/// A mutual-exclusion lock around a `T`.
///
/// Invariant: `data` is accessed only through a [`MutexGuard`] (or between
/// [`Mutex::raw_lock`] and [`Mutex::raw_unlock`]), i.e. while `state != UNLOCKED`
/// and by the thread that moved it away from UNLOCKED.
pub struct Mutex<T> {
    state: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `data`, so sharing the Mutex
// only ever hands `&mut T` to one thread at a time; T must be Send to move
// between those threads.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: owning the Mutex owns the T.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> Self {
        Mutex {
            state: AtomicU32::new(UNLOCKED),
            data: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, sleeping if another thread holds it.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw_lock();
        MutexGuard { mutex: self }
    }

    /// Takes the lock without producing a guard (for `fork()` handlers).
    #[inline]
    pub fn raw_lock(&self) {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        // Spin briefly: critical sections here are short.
        for _ in 0..100 {
            if self.state.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .state
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            core::hint::spin_loop();
        }
        // Announce a sleeper; whoever unlocks will wake one.
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex_wait(&self.state, CONTENDED);
        }
    }

    /// Releases a lock taken with [`Mutex::raw_lock`].
    ///
    /// # Safety
    /// The calling thread must hold the lock and hold no guard for it (or, in
    /// a `fork()` child, the lock must have been held by the forking thread).
    #[inline]
    pub unsafe fn raw_unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex_wake(&self.state, 1);
        }
    }

    /// The protected value, for a caller that holds the lock through
    /// [`Mutex::raw_lock`]: dereferencing it is sound only while it does.
    pub fn data_ptr(&self) -> *mut T {
        self.data.get()
    }

    /// Access without locking, for code that holds `&mut self` (no other
    /// thread can be using the lock).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// Proof of holding a [`Mutex`]; unlocks when dropped.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock, and
        // &mut self makes this the only reference through the guard.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard was created by lock(), so this thread holds the lock.
        unsafe { self.mutex.raw_unlock() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_exactly_under_contention() {
        let m = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        let mut g = m.lock();
                        // A read-modify-write split in two, so lost updates would show.
                        let v = *g;
                        core::hint::black_box(&v);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 400_000);
    }

    #[test]
    fn raw_lock_and_unlock_pair() {
        let m = Mutex::new(5);
        m.raw_lock();
        assert_eq!(m.state.load(Ordering::Relaxed), LOCKED);
        // SAFETY: this thread took the lock just above.
        unsafe { m.raw_unlock() };
        assert_eq!(*m.lock(), 5);
    }
}
