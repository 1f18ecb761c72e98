//! Multi-threaded workloads, each run with 1, 2 and 8 threads. The total work
//! is fixed and split among the threads, so on 2 cores perfect scaling halves
//! the time from 1 to 2 threads and keeps it from 2 to 8 (oversubscribed).
//!
//! - `larson`: a server simulation after Larson and Krishnan: threads replace
//!   random slots of one shared array of blocks, so most frees are of blocks
//!   another thread allocated;
//! - `prodcons`: producer/consumer pairs (`t` is the number of pairs): one
//!   thread allocates, the other frees;
//! - `falseshare`: threads each hammering a small object of their own with
//!   atomic increments; an
//!   allocator that puts two threads' objects in one cache line makes the
//!   line bounce between cores. It starts with objects allocated by the main
//!   thread and freed by the workers (passive false sharing), then each
//!   thread allocates its own (active);
//! - `churn`: waves of short-lived threads that allocate, hand some blocks
//!   back to the main thread, and exit.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc;

use crate::block::Block;
use crate::rng::SplitMix64;
use crate::size::{share, Size};
use crate::Work;

/// Slots of the shared `larson` array.
const LARSON_SLOTS: usize = 20_000;

/// `larson`: `threads` threads replacing random slots of a shared array with
/// new blocks of 16 B to 1 KiB.
pub fn larson(threads: usize, run: Size) -> Work {
    let total: u64 = run.pick(40_000_000, 20_000);
    let mut rng = SplitMix64::new(0x1A450);
    let slots: Vec<AtomicPtr<u8>> = (0..LARSON_SLOTS)
        .map(|_| AtomicPtr::new(Block::new(rng.log_uniform(16, 1024), 0).into_raw()))
        .collect();
    std::thread::scope(|s| {
        for t in 0..threads {
            let slots = &slots;
            s.spawn(move || {
                let mut rng = SplitMix64::new(t as u64 + 1);
                let mut sum = 0u64;
                for _ in 0..share(total, threads, t) {
                    let fresh = Block::new(rng.log_uniform(16, 1024), t as u8);
                    let slot = &slots[rng.below(LARSON_SLOTS)];
                    let old = slot.swap(fresh.into_raw(), Ordering::AcqRel);
                    // SAFETY: every slot holds a pointer from `into_raw`, and
                    // the swap made this thread its only holder.
                    let old = unsafe { Block::from_raw(old) };
                    sum += u64::from(old.tag());
                }
                black_box(sum);
            });
        }
    });
    for slot in slots {
        // SAFETY: as above; the threads are done and each slot is taken once.
        drop(unsafe { Block::from_raw(slot.into_inner()) });
    }
    Work::racy(total)
}

/// Blocks per message from a producer to its consumer.
const PRODCONS_BATCH: usize = 256;

/// `prodcons`: `pairs` producer/consumer pairs; producers send batches of
/// blocks of 16 B to 512 B through a bounded channel, consumers read and free
/// them.
pub fn prodcons(pairs: usize, run: Size) -> Work {
    let total_batches: u64 = run.pick(120_000, 20);
    let mut checksum = 0u64;
    std::thread::scope(|s| {
        let consumers: Vec<_> = (0..pairs)
            .map(|p| {
                let (tx, rx) = mpsc::sync_channel::<Vec<Block>>(16);
                let batches = share(total_batches, pairs, p);
                s.spawn(move || {
                    let mut rng = SplitMix64::new(0x9D0C + p as u64);
                    for b in 0..batches {
                        let batch = (0..PRODCONS_BATCH)
                            .map(|_| Block::new(rng.log_uniform(16, 512), b as u8))
                            .collect();
                        tx.send(batch).expect("consumer alive");
                    }
                });
                s.spawn(move || {
                    let mut sum = 0u64;
                    for batch in rx {
                        sum += batch.iter().map(|b| u64::from(b.tag())).sum::<u64>();
                    }
                    sum
                })
            })
            .collect();
        checksum = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    });
    Work::deterministic(total_batches * PRODCONS_BATCH as u64, checksum)
}

/// Increments of its object per allocation in `falseshare`.
const WRITES_PER_OBJECT: u64 = 100;

/// A thread's counters, as a program keeps statistics in a small heap object.
type Counters = Box<[AtomicU64; 2]>;

/// `falseshare`: each thread frees an object the main thread allocated next
/// to the other threads' ones, then allocates a 16-byte object, increments it
/// [`WRITES_PER_OBJECT`] times with atomic adds (each needs the cache line to
/// itself), frees it, and so on.
pub fn falseshare(threads: usize, run: Size) -> Work {
    let total_objects: u64 = run.pick(6_000_000, 200);
    let fresh = |t: usize| -> Counters { Box::new([AtomicU64::new(t as u64), AtomicU64::new(0)]) };
    // Allocated back to back by this thread, so likely in one cache line.
    let handed: Vec<Counters> = (0..threads).map(fresh).collect();
    std::thread::scope(|s| {
        for (t, first) in handed.into_iter().enumerate() {
            s.spawn(move || {
                let mut obj = first;
                for _ in 0..share(total_objects, threads, t) {
                    for _ in 0..WRITES_PER_OBJECT {
                        obj[1].fetch_add(1, Ordering::Relaxed);
                    }
                    black_box(&obj);
                    obj = fresh(t);
                }
            });
        }
    });
    Work::racy(total_objects * WRITES_PER_OBJECT)
}

/// Blocks each `churn` thread allocates.
const CHURN_BLOCKS: usize = 1_000;

/// `churn`: waves of `threads` threads, each allocating [`CHURN_BLOCKS`]
/// blocks of 16 B to 4 KiB, freeing most of them and handing one in eight
/// back to the main thread, which frees them after the thread exited.
pub fn churn(threads: usize, run: Size) -> Work {
    let total_threads: u64 = run.pick(8_000, 16);
    let waves = total_threads.div_ceil(threads as u64);
    let mut checksum = 0u64;
    for wave in 0..waves {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut rng = SplitMix64::new(wave * 64 + t as u64);
                    let mut kept = Vec::new();
                    let mut blocks: Vec<Block> = (0..CHURN_BLOCKS)
                        .map(|i| Block::new(rng.log_uniform(16, 4096), i as u8))
                        .collect();
                    rng.shuffle(&mut blocks);
                    for (i, b) in blocks.into_iter().enumerate() {
                        if i % 8 == 0 {
                            kept.push(b);
                        }
                    }
                    kept
                })
            })
            .collect();
        for h in handles {
            let kept = h.join().expect("churn thread panicked");
            checksum += kept.iter().map(|b| b.size() as u64).sum::<u64>();
        }
    }
    Work::deterministic(waves * threads as u64 * CHURN_BLOCKS as u64, checksum)
}
