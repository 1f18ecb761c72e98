//! `SpanAlloc` as the global allocator, under the standard collections.
//!
//! Everything in this test binary, the test harness included, allocates
//! through `SpanAlloc`. The workloads grow and shrink Vecs, build Strings,
//! HashMaps, BTreeMaps, VecDeques, boxed slices and Rc/Arc graphs, check
//! their results, and run on four threads at once with values moved between
//! threads so their frees happen on a thread other than the allocating one.
//! The last test allocates in thread-local destructors during thread exit.
//!
//! Loops scale with `SPANALLOC_STRESS` (a float, default 1).

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use common::{scaled, seed_for, Rng, KIB};

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

/// Pushes `n` u64s one by one (every growth step reallocates), checks them,
/// shrinks, regrows with `extend`, and builds a ragged `Vec<Vec<u8>>`.
fn vec_workload(n: usize, seed: u64) {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..n as u64 {
        v.push(i ^ seed);
    }
    assert_eq!(v.len(), n);
    assert!(v.capacity() >= n);
    let sum = v.iter().fold(0u64, |acc, &x| acc.wrapping_add(x ^ seed));
    assert_eq!(sum, (n as u64) * (n as u64 - 1) / 2, "sum of pushed values");

    let keep = n / 1000 + 1;
    v.truncate(keep);
    v.shrink_to_fit();
    assert!(v.capacity() >= keep);
    assert!(
        v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ seed),
        "content after shrink"
    );

    v.extend((keep as u64..n as u64 / 2).map(|i| i ^ seed));
    assert_eq!(v.len(), (n / 2).max(keep));
    assert!(
        v.iter().enumerate().all(|(i, &x)| x == i as u64 ^ seed),
        "content after regrow"
    );
    v.clear();
    v.shrink_to_fit();
    assert_eq!(v.capacity(), 0);

    let mut rng = Rng::new(seed);
    let mut ragged: Vec<Vec<u8>> = Vec::new();
    for i in 0..n / 500 {
        let len = rng.log_uniform(1, 16 * KIB);
        ragged.push(vec![i as u8; len]);
        if i % 5 == 4 {
            // Shrink a random earlier row.
            let j = rng.below(ragged.len());
            let row = &mut ragged[j];
            row.truncate(row.len() / 3);
            row.shrink_to_fit();
        }
    }
    for (i, row) in ragged.iter().enumerate() {
        assert!(
            row.iter().all(|&b| b == i as u8),
            "ragged row {i} corrupted"
        );
    }
}

/// Builds a long string with `write!`, parses it back, and formats wide
/// fields.
fn string_workload(n: usize, seed: u64) -> String {
    let mut s = String::new();
    let mut expected_len = 0;
    for i in 0..n as u64 {
        let x = i.wrapping_mul(seed | 1);
        let before = s.len();
        write!(s, "{i}:{x:x};").unwrap();
        expected_len += format!("{i}").len() + 1 + format!("{x:x}").len() + 1;
        assert_eq!(s.len() - before, s[before..].len());
    }
    assert_eq!(s.len(), expected_len);
    for (i, field) in s.trim_end_matches(';').split(';').enumerate() {
        let (a, b) = field.split_once(':').expect("field has a colon");
        assert_eq!(a.parse::<u64>().unwrap(), i as u64);
        assert_eq!(
            u64::from_str_radix(b, 16).unwrap(),
            (i as u64).wrapping_mul(seed | 1)
        );
    }
    let upper = s.to_uppercase();
    assert_eq!(upper.len(), s.len());
    // Widths are limited to u16 by the formatting machinery.
    let wide = format!("{:>1$}|{2:<3$}|", "x", 60_000, "y", 30_000);
    assert_eq!(wide.len(), 90_002);
    assert!(wide.starts_with(' ') && wide.contains("x|y"));
    let words: Vec<String> = (0..n / 10).map(|i| format!("w{i}")).collect();
    let joined = words.join(",");
    assert_eq!(joined.split(',').count(), words.len().max(1));
    // Return something derived from the work so it can cross threads.
    let mut out = joined;
    out.truncate(out.len().min(64 * KIB));
    out
}

/// `HashMap<String, Vec<u64>>`: build, look up, remove a third, check.
fn hashmap_workload(n: usize, seed: u64) -> HashMap<String, Vec<u64>> {
    let value = |i: usize| -> Vec<u64> { (0..i % 33).map(|k| (i * k) as u64 ^ seed).collect() };
    let mut map: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..n {
        assert!(map.insert(format!("key-{i:08}"), value(i)).is_none());
    }
    assert_eq!(map.len(), n);
    for i in (0..n).step_by(7) {
        assert_eq!(
            map.get(&format!("key-{i:08}")),
            Some(&value(i)),
            "lookup of {i}"
        );
    }
    assert!(!map.contains_key("key-absent"));
    for i in (0..n).step_by(3) {
        assert_eq!(map.remove(&format!("key-{i:08}")), Some(value(i)));
    }
    assert_eq!(map.len(), n - n.div_ceil(3));
    for i in 0..n {
        assert_eq!(map.contains_key(&format!("key-{i:08}")), i % 3 != 0);
    }
    map.shrink_to_fit();
    let total: usize = map.values().map(Vec::len).sum();
    let expected: usize = (0..n).filter(|i| i % 3 != 0).map(|i| i % 33).sum();
    assert_eq!(total, expected);
    map
}

/// The checksum a receiver recomputes for a map from `hashmap_workload`.
fn hashmap_checksum(map: &HashMap<String, Vec<u64>>) -> u64 {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            map[*k]
                .iter()
                .fold(k.len() as u64, |a, &x| a.wrapping_mul(31).wrapping_add(x))
        })
        .fold(0u64, u64::wrapping_add)
}

/// `BTreeMap<u64, Box<[u8]>>`: random inserts, range queries, range removal
/// with `split_off` and `retain`.
fn btreemap_workload(n: usize, seed: u64) -> BTreeMap<u64, Box<[u8]>> {
    let mut rng = Rng::new(seed);
    let mut map: BTreeMap<u64, Box<[u8]>> = BTreeMap::new();
    // A permutation of 0..n via a multiplier coprime to n's power of two.
    let m = n.next_power_of_two() as u64;
    let mut inserted = 0;
    for i in 0..m {
        let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1) % m;
        if k < n as u64 {
            let len = 1 + (k % 40) as usize;
            map.insert(k, vec![k as u8; len].into_boxed_slice());
            inserted += 1;
        }
    }
    assert_eq!(inserted, n);
    assert_eq!(map.len(), n);
    for _ in 0..100 {
        let a = rng.below(n) as u64;
        let b = rng.range(a as usize, n) as u64;
        assert_eq!(map.range(a..b).count() as u64, b - a);
    }
    // Drop the top quarter with split_off, the multiples of 5 with retain.
    let cut = (n - n / 4) as u64;
    let top = map.split_off(&cut);
    assert_eq!(top.len(), n / 4);
    assert!(top.keys().all(|&k| k >= cut));
    drop(top);
    map.retain(|k, _| k % 5 != 0);
    assert_eq!(map.len() as u64, cut - cut.div_ceil(5));
    for (k, v) in &map {
        assert!(v.len() == 1 + (k % 40) as usize && v.iter().all(|&b| b == *k as u8));
    }
    map
}

/// FIFO churn through a VecDeque whose length swings up and down.
fn vecdeque_workload(n: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut q: VecDeque<(u64, String)> = VecDeque::new();
    let (mut pushed, mut popped) = (0u64, 0u64);
    while popped < n as u64 {
        let burst = rng.range(1, 64);
        if pushed < n as u64 && (q.len() < 1000 || rng.percent(30)) {
            for _ in 0..burst {
                if pushed < n as u64 {
                    q.push_back((pushed, pushed.to_string()));
                    pushed += 1;
                }
            }
        } else {
            for _ in 0..burst {
                if let Some((i, s)) = q.pop_front() {
                    assert_eq!(i, popped, "FIFO order");
                    assert_eq!(s, i.to_string());
                    popped += 1;
                }
            }
            if rng.percent(5) {
                q.shrink_to_fit();
            }
        }
    }
    assert!(q.is_empty());
}

/// Boxed slices of log-uniform sizes up to 1 MiB, some from `vec![0; n]`
/// (which goes through `alloc_zeroed`).
fn boxed_slices_workload(n: usize, seed: u64) -> Vec<Box<[u8]>> {
    let mut rng = Rng::new(seed);
    let mut boxes: Vec<Box<[u8]>> = Vec::new();
    for i in 0..n {
        let len = rng.log_uniform(1, 1 << 20);
        if rng.percent(30) {
            let zeroed = vec![0u8; len].into_boxed_slice();
            assert!(zeroed.iter().all(|&b| b == 0), "vec![0; {len}] not zeroed");
            boxes.push(zeroed);
        } else {
            boxes.push((0..len).map(|j| (i + j) as u8).collect());
        }
        // Drop a random one now and then, and always past 256 live (which
        // bounds the memory however far the loop is scaled).
        if rng.percent(40) || boxes.len() > 256 {
            let j = rng.below(boxes.len());
            drop(boxes.swap_remove(j));
        }
    }
    // Stamp a checkable pattern on the survivors.
    for (i, b) in boxes.iter_mut().enumerate() {
        for (j, byte) in b.iter_mut().enumerate() {
            *byte = (i * 7 + j) as u8;
        }
    }
    boxes
}

fn check_boxes(boxes: &[Box<[u8]>]) {
    for (i, b) in boxes.iter().enumerate() {
        assert!(
            b.iter()
                .enumerate()
                .all(|(j, &byte)| byte == (i * 7 + j) as u8),
            "boxed slice {i} corrupted"
        );
    }
}

struct Node {
    value: u64,
    parent: RefCell<Weak<Node>>,
    children: RefCell<Vec<Rc<Node>>>,
}

/// An Rc tree with Weak parent links: build, walk, prune, and check the
/// weak links die with their targets.
fn rc_graph_workload(n: usize) {
    let root = Rc::new(Node {
        value: 0,
        parent: RefCell::new(Weak::new()),
        children: RefCell::new(Vec::new()),
    });
    let mut all = vec![Rc::clone(&root)];
    for i in 1..n as u64 {
        let parent = Rc::clone(&all[(i as usize - 1) / 3]);
        let child = Rc::new(Node {
            value: i,
            parent: RefCell::new(Rc::downgrade(&parent)),
            children: RefCell::new(Vec::new()),
        });
        parent.children.borrow_mut().push(Rc::clone(&child));
        all.push(child);
    }
    fn sum(node: &Rc<Node>) -> u64 {
        node.value + node.children.borrow().iter().map(sum).sum::<u64>()
    }
    let n64 = n as u64;
    assert_eq!(sum(&root), n64 * (n64 - 1) / 2);
    for node in &all[1..] {
        let parent = node.parent.borrow().upgrade().expect("parent alive");
        assert_eq!(parent.value, (node.value - 1) / 3);
    }
    let leaf = Rc::downgrade(all.last().unwrap());
    // Prune the root's first subtree; only `all` keeps those nodes alive.
    let pruned = root.children.borrow_mut().remove(0);
    let pruned_weak = Rc::downgrade(&pruned);
    drop(pruned);
    assert!(
        pruned_weak.upgrade().is_some(),
        "still referenced from `all`"
    );
    drop(all);
    assert!(pruned_weak.upgrade().is_none(), "pruned subtree freed");
    assert_eq!(Rc::strong_count(&root), 1);
    drop(root);
    assert!(leaf.upgrade().is_none(), "whole tree freed");
}

/// An Arc DAG shared by several threads, each walking it; the last owner
/// (whichever thread) frees it.
fn arc_graph_workload(n: usize, threads: usize) {
    let nodes: Vec<Arc<(u64, Vec<Arc<u64>>)>> = {
        let leaves: Vec<Arc<u64>> = (0..n as u64).map(Arc::new).collect();
        (0..n / 4)
            .map(|i| {
                let refs = (0..4)
                    .map(|k| Arc::clone(&leaves[(i * 4 + k * 13) % n]))
                    .collect();
                Arc::new((i as u64, refs))
            })
            .collect()
    };
    let shared = Arc::new(nodes);
    let sums: Vec<u64> = thread::scope(|s| {
        (0..threads)
            .map(|t| {
                let shared = Arc::clone(&shared);
                s.spawn(move || {
                    let mut total = t as u64;
                    for node in shared.iter() {
                        total += node.0 + node.1.iter().map(|x| **x).sum::<u64>();
                    }
                    total - t as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        sums.windows(2).all(|w| w[0] == w[1]),
        "threads saw different graphs"
    );
    let weak = Arc::downgrade(&shared);
    assert_eq!(Arc::strong_count(&shared), 1);
    drop(shared);
    assert!(weak.upgrade().is_none());
}

#[test]
fn vec_push_millions_and_shrink() {
    vec_workload(scaled(2_000_000), 0x51);
}

#[test]
fn string_building_and_formatting() {
    let out = string_workload(scaled(100_000), 0x52);
    assert!(!out.is_empty());
}

#[test]
fn hashmap_of_string_to_vec() {
    let map = hashmap_workload(scaled(100_000), 0x53);
    assert_ne!(hashmap_checksum(&map), 0);
}

#[test]
fn btreemap_inserts_and_range_removal() {
    let map = btreemap_workload(scaled(200_000), 0x54);
    assert!(!map.is_empty());
}

#[test]
fn vecdeque_fifo_churn() {
    vecdeque_workload(scaled(300_000), 0x55);
}

#[test]
fn boxed_slices_of_varying_sizes() {
    let boxes = boxed_slices_workload(scaled(2_000), 0x56);
    check_boxes(&boxes);
}

#[test]
fn rc_and_arc_graphs() {
    rc_graph_workload(scaled(100_000));
    arc_graph_workload(scaled(40_000), 4);
}

/// What one worker hands to the next: values allocated on one thread and
/// checked and dropped on another.
struct Parcel {
    from: u64,
    map: HashMap<String, Vec<u64>>,
    map_checksum: u64,
    tree: BTreeMap<u64, Box<[u8]>>,
    boxes: Vec<Box<[u8]>>,
    text: String,
}

/// Four threads run every workload at once, then pass their results around a
/// ring of channels; each thread checks and drops what it receives, so those
/// frees are cross-thread. The number of rounds scales with the stress
/// multiplier; the work in each round does not.
#[test]
fn four_threads_with_values_moved_between_them() {
    const THREADS: usize = 4;
    let rounds = scaled(3) as u64;
    for round in 0..rounds {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<Parcel>()).unzip();
        let mut rxs: Vec<Option<mpsc::Receiver<Parcel>>> = rxs.into_iter().map(Some).collect();
        thread::scope(|s| {
            for t in 0..THREADS {
                let tx = txs[(t + 1) % THREADS].clone();
                let rx = rxs[t].take().unwrap();
                s.spawn(move || {
                    let seed = seed_for(round, t as u64);
                    vec_workload(300_000, seed);
                    vecdeque_workload(50_000, seed);
                    rc_graph_workload(20_000);
                    let map = hashmap_workload(20_000, seed);
                    let parcel = Parcel {
                        from: t as u64,
                        map_checksum: hashmap_checksum(&map),
                        map,
                        tree: btreemap_workload(30_000, seed),
                        boxes: boxed_slices_workload(300, seed),
                        text: string_workload(20_000, seed),
                    };
                    tx.send(parcel).unwrap();
                    drop(tx);
                    let got = rx.recv().expect("neighbour sent nothing");
                    assert_eq!(got.from as usize, (t + THREADS - 1) % THREADS);
                    assert_eq!(hashmap_checksum(&got.map), got.map_checksum);
                    assert!(got
                        .tree
                        .iter()
                        .all(|(k, v)| v.iter().all(|&b| b == *k as u8)));
                    check_boxes(&got.boxes);
                    assert!(got.text.starts_with("w0,w1,"));
                    drop(got); // freed here, allocated by the neighbour
                });
            }
        });
    }
}

static TL_DROPS_OK: AtomicUsize = AtomicUsize::new(0);

/// Thread-local state whose destructor checks its content and then
/// allocates, fills, checks and frees more memory, during thread teardown.
struct TeardownAllocator {
    id: usize,
    items: Vec<Box<[u64]>>,
}

impl Drop for TeardownAllocator {
    fn drop(&mut self) {
        let ok = self
            .items
            .iter()
            .enumerate()
            .all(|(i, b)| b.iter().all(|&x| x == (self.id * 1000 + i) as u64));
        let scratch: Vec<String> = (0..200)
            .map(|i| format!("teardown-{}-{i}", self.id))
            .collect();
        let total: usize = scratch.iter().map(String::len).sum();
        let mut grow: Vec<u64> = Vec::new();
        for i in 0..10_000 {
            grow.push(i);
        }
        let sum: u64 = grow.iter().sum();
        drop(std::mem::take(&mut self.items));
        if ok && total > 200 * 11 && sum == 10_000 * 9_999 / 2 {
            TL_DROPS_OK.fetch_add(1, Ordering::SeqCst);
        }
    }
}

thread_local! {
    static TEARDOWN: RefCell<Option<TeardownAllocator>> = const { RefCell::new(None) };
}

/// 100 threads each park allocations in a thread-local whose destructor
/// allocates and frees: allocation must keep working while a thread is being
/// torn down (after or around the allocator's own per-thread cleanup).
#[test]
fn thread_local_destructors_allocate_during_teardown() {
    let threads = scaled(100);
    let handles: Vec<_> = (0..threads)
        .map(|id| {
            thread::spawn(move || {
                TEARDOWN.with(|cell| {
                    let items = (0..50)
                        .map(|i| {
                            vec![(id * 1000 + i) as u64; 1 + (id + i) % 300].into_boxed_slice()
                        })
                        .collect();
                    *cell.borrow_mut() = Some(TeardownAllocator { id, items });
                });
                // Some ordinary churn so the thread cache is populated.
                let v: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 1 + i * 13]).collect();
                assert!(v.iter().enumerate().all(|(i, x)| x.len() == 1 + i * 13));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        TL_DROPS_OK.load(Ordering::SeqCst),
        threads,
        "thread-local destructors that ran and passed"
    );
}
