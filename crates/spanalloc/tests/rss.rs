//! Returning memory to the OS, measured by the resident size the kernel
//! reports (`/proc/self/statm`): after `release_memory()`; after the
//! scavenger's decay time, for small objects and for large ones (which keep
//! their pages for reuse until then), with the scavenger thread and without
//! it; and under the soft memory limit, for small and for large objects.
//!
//! Each case runs in a child process (this binary re-run with
//! `SPANALLOC_RSS_CHILD=<case>`), so that what other tests do cannot move
//! the figures. spanalloc is the global allocator here.

mod common;

use common::{Rng, KIB, MIB};
use std::alloc::{GlobalAlloc, Layout};
use std::process::Command;

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

const CHILD_VAR: &str = "SPANALLOC_RSS_CHILD";

/// Resident bytes of this process.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

fn run_child(case: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = common::output_within_limit(
        Command::new(exe)
            .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_VAR, case),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {case} failed\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("RSS_CHILD_OK {case}")),
        "{stdout}\n{stderr}"
    );
    for line in stdout
        .lines()
        .filter_map(|l| l.find("rss:").map(|i| &l[i..]))
    {
        println!("{line}");
    }
    stdout
}

#[test]
fn child_entry() {
    let Ok(case) = std::env::var(CHILD_VAR) else {
        return;
    };
    match case.as_str() {
        "release" => small_objects_then(Return::Release),
        "decay" => small_objects_then(Return::Decay),
        "large" => large_objects(),
        "large_nothread" => large_objects_without_the_thread(),
        "large_limit" => large_objects_over_the_limit(),
        "limit" => memory_limit(true),
        "nolimit" => memory_limit(false),
        other => panic!("unknown case {other}"),
    }
    println!("RSS_CHILD_OK {case}");
}

#[test]
fn release_memory_returns_a_gibibyte_of_small_objects() {
    run_child("release");
}

#[test]
fn the_scavenger_returns_it_after_the_decay_time() {
    run_child("decay");
}

#[test]
fn large_objects_keep_their_pages_until_the_decay_time() {
    run_child("large");
}

#[test]
fn without_the_scavenger_thread_a_later_free_returns_them() {
    run_child("large_nothread");
}

#[test]
fn over_the_memory_limit_large_objects_return_their_pages_when_freed() {
    run_child("large_limit");
}

#[test]
fn the_memory_limit_is_honoured() {
    let limited = run_child("limit");
    let unlimited = run_child("nolimit");
    // The same workload without the limit holds more than the limit: the
    // test would notice a limit that does nothing.
    let held = |s: &str| -> usize {
        s.lines()
            .find_map(|l| l.split("rss: held_peak=").nth(1))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        held(&unlimited) > LIMIT,
        "without a limit the workload holds {} MiB",
        held(&unlimited) / MIB
    );
    assert!(held(&limited) <= LIMIT);
}

enum Return {
    Release,
    Decay,
}

/// Sizes of small objects, 16 B to 1 KiB, weighted to the small end.
fn small_size(rng: &mut Rng) -> usize {
    rng.log_uniform(16, 1024)
}

/// Allocates 1 GiB in small objects, touches them, frees them all in random
/// order, then checks RSS comes back within 64 MiB of where it started.
fn small_objects_then(how: Return) {
    if let Return::Decay = how {
        spanalloc::options::set_decay_ms(200);
    }
    let start = rss();
    let mut rng = Rng::new(0x5CA7);
    let mut blocks: Vec<(usize, usize)> = Vec::with_capacity(12 << 20);
    let mut total = 0;
    while total < 1024 * MIB {
        let size = small_size(&mut rng);
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { GLOBAL.alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: p has `size` bytes; touch every page it covers.
        unsafe { p.write_bytes(0xAB, size) };
        blocks.push((p as usize, size));
        total += size;
    }
    let peak = rss();
    assert!(
        peak >= start + 900 * MIB,
        "the objects were not resident: {} MiB",
        (peak - start) / MIB
    );
    for i in (1..blocks.len()).rev() {
        let j = rng.below(i + 1);
        blocks.swap(i, j);
    }
    for (p, size) in blocks.drain(..) {
        // SAFETY: each block is live with this layout and freed once.
        unsafe { GLOBAL.dealloc(p as *mut u8, Layout::from_size_align(size, 8).unwrap()) };
    }
    drop(blocks);
    let end = match how {
        Return::Release => {
            let released = spanalloc::release_memory();
            assert!(
                released >= 800 * MIB,
                "release_memory returned {} MiB",
                released / MIB
            );
            rss()
        }
        Return::Decay => {
            // No call: wait for the scavenger (decay 200 ms), up to 20 s,
            // until it has done all its policy asks: what the heap holds is
            // down to the spans still in use (pinned by the objects the
            // thread cache keeps) and the 10% of them it keeps free.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let s = loop {
                let s = spanalloc::stats();
                let target = s.span_bytes_in_use + s.span_bytes_in_use / 10 + MIB;
                if s.held_bytes <= target || std::time::Instant::now() > deadline {
                    break s;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            };
            let end = rss();
            println!(
                "rss: after decay held={} MiB spans_in_use={} MiB thread_cache={} KiB metadata={} MiB",
                s.held_bytes / MIB,
                s.span_bytes_in_use / MIB,
                s.thread_cache_bytes / KIB,
                s.metadata_bytes / MIB
            );
            assert!(
                s.held_bytes <= s.span_bytes_in_use + s.span_bytes_in_use / 10 + MIB,
                "the scavenger left {} MiB held for {} MiB of spans in use",
                s.held_bytes / MIB,
                s.span_bytes_in_use / MIB
            );
            // Freed in random order, the objects the thread cache keeps
            // (at most 4 MiB) each pin a span: bounded, and no more.
            assert!(
                s.span_bytes_in_use <= 64 * MIB,
                "{} MiB of spans still in use with nothing live",
                s.span_bytes_in_use / MIB
            );
            // And the kernel saw it: resident is the heap held, its
            // metadata and what the process had at the start.
            assert!(
                end <= start + s.held_bytes + s.metadata_bytes + 8 * MIB,
                "RSS {} MiB over start {} + held + metadata",
                end / MIB,
                start / MIB
            );
            end
        }
    };
    // release_memory() flushes the calling thread's cache first; the
    // scavenger cannot touch it, so the spans it pins stay (checked above).
    let slack = match how {
        Return::Release => 64 * MIB,
        Return::Decay => 96 * MIB,
    };
    report_and_bound(
        start,
        peak,
        end,
        slack,
        "RSS after freeing the small objects",
    );
    spanalloc::check_heap();
}

/// Sizes of the large objects of the `large` cases: 40 of them, 451 MiB.
const LARGE_SIZES: [usize; 4] = [MIB, 3 * MIB, 8 * MIB, 33 * MIB];

/// Allocates and touches the large objects; returns them with the resident
/// size before and after.
fn touch_large_objects() -> (Vec<Vec<u8>>, usize, usize) {
    let start = rss();
    let blocks: Vec<Vec<u8>> = (0..40)
        .map(|i| vec![1u8; LARGE_SIZES[i % LARGE_SIZES.len()]])
        .collect();
    let peak = rss();
    assert!(peak >= start + 400 * MIB);
    (blocks, start, peak)
}

/// Large objects keep their pages when freed, ready for the next
/// allocation; the background scavenger returns them once they have stayed
/// free for the decay time.
fn large_objects() {
    spanalloc::options::set_decay_ms(3_600_000);
    let (blocks, start, peak) = touch_large_objects();
    let total: usize = blocks.iter().map(Vec::len).sum();
    drop(blocks);
    let held = spanalloc::stats().held_bytes;
    assert!(
        held >= total,
        "freeing returned pages at once: {} MiB held after freeing {} MiB",
        held / MIB,
        total / MIB
    );
    // A decay the test can wait for: the scavenger thread (started by the
    // frees) picks it up at its next tick.
    spanalloc::options::set_decay_ms(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let end = loop {
        let now = rss();
        if now <= start + 16 * MIB || std::time::Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    report_and_bound(
        start,
        peak,
        end,
        16 * MIB,
        "RSS after the decay time of the freed large objects",
    );
    spanalloc::check_heap();
}

/// Without the scavenger thread, the scavenger's passes run on the paths
/// that free memory: freed large objects keep their pages until a free
/// after the decay time returns them.
fn large_objects_without_the_thread() {
    spanalloc::options::set_scavenger(false);
    spanalloc::options::set_decay_ms(3_600_000);
    let (blocks, start, peak) = touch_large_objects();
    let total: usize = blocks.iter().map(Vec::len).sum();
    drop(blocks);
    let held = spanalloc::stats().held_bytes;
    assert!(
        held >= total,
        "freeing returned pages at once: {} MiB held after freeing {} MiB",
        held / MIB,
        total / MIB
    );
    // A decay the test can wait for; keep freeing a little (a large object,
    // whose free runs a pass) until it has passed, up to 20 s.
    spanalloc::options::set_decay_ms(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let end = loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(std::hint::black_box(vec![0u8; MIB]));
        let now = rss();
        if now <= start + 16 * MIB || std::time::Instant::now() > deadline {
            break now;
        }
    };
    report_and_bound(
        start,
        peak,
        end,
        16 * MIB,
        "RSS after a free past the decay time",
    );
    spanalloc::check_heap();
}

/// Over the soft memory limit, freed large objects return their pages at
/// once, down to the limit, without the scavenger thread or its decay.
fn large_objects_over_the_limit() {
    const LARGE_LIMIT: usize = 128 * MIB;
    spanalloc::options::set_scavenger(false);
    spanalloc::options::set_decay_ms(3_600_000);
    spanalloc::options::set_memory_limit(LARGE_LIMIT as u64);
    // The limit is soft: 451 MiB in use is still served.
    let (blocks, start, peak) = touch_large_objects();
    drop(blocks);
    let held = spanalloc::stats().held_bytes;
    assert!(
        held <= LARGE_LIMIT,
        "{} MiB held over a {} MiB limit",
        held / MIB,
        LARGE_LIMIT / MIB
    );
    report_and_bound(
        start,
        peak,
        rss(),
        LARGE_LIMIT + 16 * MIB,
        "RSS after freeing the large objects over the limit",
    );
    spanalloc::check_heap();
}

/// Prints the three figures and checks `end` came back within `slack` of `start`.
fn report_and_bound(start: usize, peak: usize, end: usize, slack: usize, what: &str) {
    println!(
        "rss: start={} peak={} end={} MiB",
        start / MIB,
        peak / MIB,
        end / MIB
    );
    assert!(
        end <= start + slack,
        "{what}: {} MiB above the start",
        (end - start) / MIB
    );
}

const LIMIT: usize = 320 * MIB;

/// A workload that frees all it allocates but whose free pages, pinned in
/// small pieces by cached objects, cannot serve its next phase: 200 MiB of
/// 64-byte objects freed in random order, then 200 MiB of 2 MiB objects.
/// Without a limit the heap grows past 320 MiB; with it, free pages are
/// returned before the heap grows, and it holds no more than the limit.
fn memory_limit(limited: bool) {
    spanalloc::options::set_scavenger(false);
    spanalloc::options::set_decay_ms(3_600_000);
    if limited {
        spanalloc::options::set_memory_limit(LIMIT as u64);
    }
    let mut rng = Rng::new(7);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let mut small: Vec<usize> = (0..(200 * MIB / 64))
        .map(|_| {
            // SAFETY: non-zero size.
            let p = unsafe { GLOBAL.alloc(layout) };
            assert!(!p.is_null());
            // SAFETY: p has 64 bytes.
            unsafe { p.write_bytes(1, 64) };
            p as usize
        })
        .collect();
    for i in (1..small.len()).rev() {
        let j = rng.below(i + 1);
        small.swap(i, j);
    }
    for p in small.drain(..) {
        // SAFETY: live, freed once.
        unsafe { GLOBAL.dealloc(p as *mut u8, layout) };
    }
    drop(small);
    let mut held_peak = 0;
    let big: Vec<Vec<u8>> = (0..100)
        .map(|_| {
            let v = vec![2u8; 2 * MIB];
            held_peak =
                held_peak.max(spanalloc::stats().mapped_bytes - spanalloc::stats().released_bytes);
            v
        })
        .collect();
    let end = rss();
    println!(
        "rss: held_peak={held_peak} bytes ({} MiB), rss={} MiB, limited={limited}",
        held_peak / MIB,
        end / MIB
    );
    if limited {
        assert!(
            held_peak <= LIMIT,
            "held {} MiB under a {} MiB limit",
            held_peak / MIB,
            LIMIT / MIB
        );
        assert!(
            end <= LIMIT + 32 * MIB,
            "RSS {} MiB under a {} MiB limit",
            end / MIB,
            LIMIT / MIB
        );
    }
    drop(big);
}
