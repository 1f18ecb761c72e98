//! Returning memory to the OS, measured by the resident size the kernel
//! reports (`/proc/self/statm`): after `release_memory()`, after the
//! scavenger's decay time, after freeing large objects, and under the soft
//! memory limit.
//!
//! Each case runs in a child process (this binary re-run with
//! `SPANALLOC_RSS_CHILD=<case>`), so that what other tests do cannot move
//! the figures. spanalloc is the global allocator here.

mod common;

use common::{Rng, MIB};
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
    let out = Command::new(exe)
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, case)
        .output()
        .unwrap();
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
fn large_objects_return_their_pages_when_freed() {
    run_child("large");
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
            // No call: wait for the scavenger (decay 200 ms), up to 20 s.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let now = rss();
                if now <= start + 64 * MIB || std::time::Instant::now() > deadline {
                    break now;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    report_and_bound(
        start,
        peak,
        end,
        64 * MIB,
        "RSS after freeing the small objects",
    );
    spanalloc::check_heap();
}

/// Large objects (1 MiB and up) give their pages back as they are freed.
fn large_objects() {
    spanalloc::options::set_scavenger(false);
    let start = rss();
    let sizes = [MIB, 3 * MIB, 8 * MIB, 33 * MIB];
    let blocks: Vec<Vec<u8>> = (0..40).map(|i| vec![1u8; sizes[i % sizes.len()]]).collect();
    let peak = rss();
    assert!(peak >= start + 400 * MIB);
    drop(blocks);
    let end = rss();
    report_and_bound(
        start,
        peak,
        end,
        16 * MIB,
        "RSS after freeing the large objects",
    );
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
