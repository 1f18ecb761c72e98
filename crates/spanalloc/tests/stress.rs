//! Multi-threaded stress tests of `SpanAlloc` through direct `GlobalAlloc`
//! calls: producer/consumer hand-offs (every free is cross-thread), waves of
//! short-lived threads that exit holding cached objects, and a mixed random
//! workload that trades blocks between threads. Every block carries a pattern
//! derived from its seed, checked when it is reallocated or freed.
//!
//! Loops scale with `SPANALLOC_STRESS` (a float, default 1). Workloads are
//! deterministic given their seeds, thread scheduling aside.

mod common;

use std::alloc::Layout;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

use common::{scaled, seed_for, Block, Rng, KIB, MIB};
use spanalloc::SpanAlloc;

/// The allocator under test, used directly (not as the global allocator).
static A: SpanAlloc = SpanAlloc;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("valid layout")
}

/// Allocates and fills a block; an out-of-memory null is a failure here.
fn must_alloc(layout: Layout, seed: u64) -> Block {
    Block::alloc(&A, layout, seed).unwrap_or_else(|| panic!("alloc({layout:?}) returned null"))
}

fn must_alloc_zeroed(layout: Layout, seed: u64) -> Block {
    Block::alloc_zeroed(&A, layout, seed)
        .unwrap_or_else(|| panic!("alloc_zeroed({layout:?}) returned null"))
}

/// Mixed small sizes, 8 B..32 KiB, plus some 64 KiB..1 MiB.
fn producer_size(rng: &mut Rng) -> usize {
    if rng.percent(97) {
        rng.log_uniform(8, 32 * KIB)
    } else {
        rng.log_uniform(64 * KIB, MIB)
    }
}

/// N producers allocate and fill blocks and send them over bounded channels
/// to M consumers, which check and free them: every free is cross-thread.
/// Consumers hold back every seventh block and free those at the end in
/// reverse order, so frees also come in bursts and out of allocation order.
#[test]
fn producer_consumer_cross_thread_frees() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 2;
    const ROUNDS: u64 = 3;
    let per_producer = scaled(6000);

    for round in 0..ROUNDS {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..CONSUMERS)
            .map(|_| mpsc::sync_channel::<Block>(64))
            .unzip();
        let received: usize = thread::scope(|s| {
            let consumers: Vec<_> = rxs
                .into_iter()
                .map(|rx| {
                    s.spawn(move || {
                        let mut held = Vec::new();
                        let mut count = 0usize;
                        for block in rx {
                            count += 1;
                            if count.is_multiple_of(7) {
                                block.check("consumer, on receipt");
                                held.push(block);
                            } else {
                                block.free();
                            }
                        }
                        while let Some(block) = held.pop() {
                            block.free();
                        }
                        count
                    })
                })
                .collect();
            for p in 0..PRODUCERS as u64 {
                let txs = txs.clone();
                s.spawn(move || {
                    let thread_id = (round << 8) | p;
                    let mut rng = Rng::new(seed_for(0x9D0D, thread_id));
                    for seq in 0..per_producer as u64 {
                        let size = producer_size(&mut rng);
                        let align = rng.align(4 * KIB);
                        let block = must_alloc(layout(size, align), seed_for(thread_id, seq));
                        txs[rng.below(CONSUMERS)]
                            .send(block)
                            .expect("consumer hung up early");
                    }
                });
            }
            drop(txs);
            consumers.into_iter().map(|c| c.join().unwrap()).sum()
        });
        assert_eq!(
            received,
            PRODUCERS * per_producer,
            "round {round}: blocks lost in transit"
        );
    }
}

/// Waves of short-lived threads. Each thread frees blocks that earlier
/// (now exited) threads allocated, allocates a few hundred objects, frees
/// about half in random order, sends about a third to the main thread, frees
/// the rest last thing before exiting (so its thread cache holds objects when
/// it dies), and allocates and frees a few more on the way out. The main
/// thread checks and frees half of what it receives each wave and passes the
/// other half to the next wave.
#[test]
fn thread_churn_with_handoffs() {
    const WAVE: usize = 8;
    let threads = scaled(200);
    let waves = threads.div_ceil(WAVE);
    let mut pool: Vec<Block> = Vec::new();
    let mut spawned = 0u64;

    for wave in 0..waves {
        let (tx, rx) = mpsc::channel::<Block>();
        let wave_threads = WAVE.min(threads - wave * WAVE);
        // Hand the older half of the pool to this wave's threads.
        let inherit = pool.len() / 2;
        let mut inherited: Vec<Vec<Block>> = (0..wave_threads).map(|_| Vec::new()).collect();
        for (n, block) in pool.drain(..inherit).enumerate() {
            inherited[n % wave_threads].push(block);
        }
        let handles: Vec<_> = inherited
            .into_iter()
            .map(|legacy| {
                let tx = tx.clone();
                let id = spawned;
                spawned += 1;
                thread::spawn(move || {
                    for block in legacy {
                        block.free();
                    }
                    let mut rng = Rng::new(seed_for(0xC4_0A17, id));
                    let count = rng.range(200, 400);
                    let mut mine: Vec<Block> = (0..count as u64)
                        .map(|seq| {
                            let size = if rng.percent(95) {
                                rng.log_uniform(8, 2 * KIB)
                            } else {
                                rng.log_uniform(2 * KIB, 16 * KIB)
                            };
                            must_alloc(layout(size, rng.align(256)), seed_for(id, seq))
                        })
                        .collect();
                    let mut keep = Vec::new();
                    let mut sent = 0usize;
                    while !mine.is_empty() {
                        let block = mine.swap_remove(rng.below(mine.len()));
                        match rng.below(100) {
                            0..=49 => block.free(),
                            50..=82 => {
                                tx.send(block).expect("main thread hung up");
                                sent += 1;
                            }
                            _ => keep.push(block),
                        }
                    }
                    for block in keep {
                        block.free();
                    }
                    // Leave freshly freed objects in the thread cache.
                    for seq in 0..16 {
                        must_alloc(layout(rng.log_uniform(8, 512), 8), seq).free();
                    }
                    sent
                })
            })
            .collect();
        drop(tx);
        let sent: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let before = pool.len();
        pool.extend(rx);
        assert_eq!(
            pool.len() - before,
            sent,
            "wave {wave}: blocks lost in transit"
        );
        // Free half of what is pooled now (the older half goes to the next
        // wave's threads), checking each block.
        let free_now = pool.len() / 2;
        for block in pool.drain(pool.len() - free_now..) {
            block.free();
        }
    }
    for block in pool {
        block.free();
    }
}

/// Sizes for the mixed workload: mostly up to 1 KiB, some up to 64 KiB, a
/// few up to 2 MiB.
fn mixed_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=79 => rng.log_uniform(1, KIB),
        80..=96 => rng.log_uniform(KIB + 1, 64 * KIB),
        _ => rng.log_uniform(64 * KIB + 1, 2 * MIB),
    }
}

/// Several threads, each with its own RNG and an array of slots, randomly
/// allocate (plain or zeroed), reallocate, check and free; some blocks go
/// through a shared exchange and are reallocated or freed by another thread.
#[test]
fn mixed_random_workload() {
    const THREADS: u64 = 6;
    const SLOTS: usize = 128;
    const EXCHANGE_MAX: usize = 256;
    let iterations = scaled(40_000);
    let exchange: Mutex<Vec<Block>> = Mutex::new(Vec::new());

    thread::scope(|s| {
        for t in 0..THREADS {
            let exchange = &exchange;
            s.spawn(move || {
                let mut rng = Rng::new(seed_for(0x0B5E55ED, t));
                let mut slots: Vec<Option<Block>> = (0..SLOTS).map(|_| None).collect();
                let mut seq = 0u64;
                let mut next_seed = || {
                    seq += 1;
                    seed_for((t << 32) | 0xA11, seq)
                };
                for _ in 0..iterations {
                    let i = rng.below(SLOTS);
                    match slots[i].take() {
                        None => {
                            if rng.percent(15) {
                                if let Some(block) = exchange.lock().unwrap().pop() {
                                    // Adopt a block another thread allocated.
                                    block.check("adopted from the exchange");
                                    slots[i] = Some(block);
                                    continue;
                                }
                            }
                            let l = layout(mixed_size(&mut rng), rng.align(64 * KIB));
                            slots[i] = Some(if rng.percent(20) {
                                must_alloc_zeroed(l, next_seed())
                            } else {
                                must_alloc(l, next_seed())
                            });
                        }
                        Some(block) => match rng.below(100) {
                            0..=29 => {
                                let old = block.layout().size();
                                let new_size = if rng.percent(50) {
                                    mixed_size(&mut rng)
                                } else {
                                    (old / 2 + rng.below(old * 2 + 1)).max(1)
                                };
                                let block =
                                    block.realloc(new_size, next_seed()).unwrap_or_else(|b| {
                                        panic!("realloc({b:?}, {new_size}) returned null")
                                    });
                                slots[i] = Some(block);
                            }
                            30..=44 => {
                                let mut ex = exchange.lock().unwrap();
                                if ex.len() < EXCHANGE_MAX {
                                    block.check("given to the exchange");
                                    ex.push(block);
                                } else {
                                    drop(ex);
                                    block.free();
                                }
                            }
                            45..=54 => {
                                block.check("periodic check");
                                slots[i] = Some(block);
                            }
                            55..=59 => {
                                // Free a block some other thread gave away.
                                let other = exchange.lock().unwrap().pop();
                                if let Some(other) = other {
                                    other.free();
                                }
                                slots[i] = Some(block);
                            }
                            _ => block.free(),
                        },
                    }
                }
                let mut mine: Vec<&Block> = slots.iter().flatten().collect();
                common::assert_disjoint(&mut mine);
                for block in slots.into_iter().flatten() {
                    block.free();
                }
            });
        }
    });
    for block in exchange.into_inner().unwrap() {
        block.free();
    }
}
