//! Out of memory: `SpanAlloc` must return null, not crash, when the address
//! space runs out, keep every block it already handed out intact, and serve
//! allocations again once memory is freed. Requests too large to ever succeed
//! must return null too.
//!
//! Each case runs in a child process (this test binary re-run with
//! `SPANALLOC_OOM_CHILD=<mode>` and a filter selecting `child_entry`), which
//! lowers its own `RLIMIT_AS` to its current size plus `HEADROOM` and then
//! allocates blocks of one size until the allocator returns null. The parent
//! checks the child's exit status and its final marker line.
//!
//! `SpanAlloc` is used directly, never as the global allocator, so the test
//! harness keeps using the system allocator. While the limit is in force the
//! child allocates nothing through the global allocator on its success path,
//! and a failing check restores the limit before it panics (formatting the
//! message allocates).

#![cfg(target_os = "linux")]

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::process::Command;

use common::{fill, seed_for, verify, verify_zeroed, KIB, MIB};
use spanalloc::SpanAlloc;

/// The allocator under test, used directly (not as the global allocator).
static A: SpanAlloc = SpanAlloc;

const CHILD_VAR: &str = "SPANALLOC_OOM_CHILD";
const MARKER: &str = "SPANALLOC_OOM_CHILD_OK";
/// Address space the child may add to what it has mapped when the limit is set.
const HEADROOM: usize = 512 * MIB;
/// If the allocator hands out more than this under the limit, the limit is
/// not constraining it (say it reserved a vast region up front) and the test
/// stops rather than fill the machine's memory.
const RUNAWAY: usize = 3 * 1024 * MIB;

fn run_child(mode: &str) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = common::output_within_limit(
        Command::new(exe)
            .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_VAR, mode),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("--- child stdout\n{stdout}\n--- child stderr\n{stderr}");
    assert!(
        out.status.success(),
        "child (mode {mode}) failed: {}\n{report}",
        out.status
    );
    // Shown with --nocapture: what the child managed before and after OOM.
    for line in stdout.lines().filter(|l| l.starts_with("child:")) {
        println!("{line}");
    }
    let marker = format!("{MARKER} mode={mode}");
    assert!(
        stdout.lines().any(|l| l.trim() == marker),
        "child (mode {mode}) exited without printing {marker:?}\n{report}"
    );
}

#[test]
fn oom_with_1mib_blocks() {
    run_child("1m");
}

#[test]
fn oom_with_64kib_blocks() {
    run_child("64k");
}

#[test]
fn oom_with_64kib_blocks_aligned_to_64kib() {
    run_child("64k-aligned");
}

#[test]
fn oom_with_1kib_blocks() {
    run_child("1k");
}

#[test]
fn huge_requests_return_null() {
    run_child("huge");
}

/// The child's entry point: does nothing unless `SPANALLOC_OOM_CHILD` is set.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_VAR) else {
        return;
    };
    match mode.as_str() {
        "1m" => exhaust(MIB, 4096),
        "64k" => exhaust(64 * KIB, 16),
        // Aligned to their size: the holes left by freed blocks are aligned
        // runs of exactly the right length and must be reused.
        "64k-aligned" => exhaust(64 * KIB, 64 * KIB),
        "1k" => exhaust(KIB, 16),
        "huge" => {
            let victim = alloc_victim();
            huge_requests(&Limit::none(), victim);
            free_victim(victim);
        }
        other => panic!("unknown {CHILD_VAR} mode {other:?}"),
    }
    // On a line of its own: libtest has printed "test child_entry ... ".
    println!("\n{MARKER} mode={mode}");
}

/// A lowered soft `RLIMIT_AS`, restored on `restore` or drop.
struct Limit {
    old: Option<libc::rlimit>,
}

impl Limit {
    fn none() -> Limit {
        Limit { old: None }
    }

    /// Sets the soft address-space limit to `bytes`.
    fn set(bytes: usize) -> Limit {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) };
        assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
        let new = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &new) };
        assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
        Limit { old: Some(old) }
    }

    /// Puts the old limit back (idempotent; allocation-free).
    fn restore(&self) {
        if let Some(old) = &self.old {
            // SAFETY: setrlimit reads one rlimit through a valid pointer. The
            // soft limit goes back up to at most the unchanged hard limit, so
            // this cannot fail for lack of privilege.
            unsafe { libc::setrlimit(libc::RLIMIT_AS, old) };
        }
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        self.restore();
    }
}

/// `assert!` that lifts the address-space limit before panicking, so the
/// panic message can be formatted and printed.
macro_rules! check {
    ($limit:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            $limit.restore();
            panic!($($msg)+);
        }
    };
}

/// The process's virtual size, from /proc/self/statm.
fn vsz() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("statm's first field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page as usize
}

fn seed(size: usize, i: usize) -> u64 {
    seed_for(size as u64, i as u64)
}

/// Allocates `size`-byte blocks until null under a limit of current size +
/// HEADROOM, checks them all, frees half, allocates again, frees all.
fn exhaust(size: usize, align: usize) {
    let layout = Layout::from_size_align(size, align).unwrap();
    // Warm up: let the allocator set up whatever it sets up on first use,
    // for this size and a few others, before the size is measured.
    for s in [8, 1000, KIB, 64 * KIB, MIB, size] {
        let l = Layout::from_size_align(s, 8).unwrap();
        // SAFETY: l has a non-zero size.
        let p = unsafe { A.alloc(l) };
        assert!(!p.is_null(), "warm-up alloc({l:?}) returned null");
        // SAFETY: p was just allocated with l.
        unsafe { A.dealloc(p, l) };
    }
    let victim = alloc_victim();
    // All bookkeeping is allocated (by the system allocator) up front.
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(RUNAWAY / size + 16);
    println!("\nchild: {size}-byte blocks, align {align}, headroom {HEADROOM}");
    let base = vsz();
    let limit = Limit::set(base + HEADROOM);

    // 1. Allocate until the allocator says no.
    loop {
        // SAFETY: layout has a non-zero size.
        let p = unsafe { A.alloc(layout) };
        if p.is_null() {
            break;
        }
        check!(
            limit,
            (p as usize).is_multiple_of(align),
            "alloc({layout:?}) = {p:p} misaligned"
        );
        check!(
            limit,
            blocks.len() < blocks.capacity(),
            "over {RUNAWAY} bytes handed out under a {HEADROOM}-byte headroom: RLIMIT_AS \
             does not constrain the allocator"
        );
        // SAFETY: p is a fresh block of `size` writable bytes.
        unsafe { fill(p, size, seed(size, blocks.len())) };
        blocks.push(p);
    }
    let got = blocks.len() * size;
    check!(
        limit,
        got >= HEADROOM / 2,
        "alloc returned null after only {got} bytes ({} blocks) of a {HEADROOM}-byte headroom",
        blocks.len()
    );
    // SAFETY: layout has a non-zero size.
    let again = unsafe { A.alloc(layout) };
    check!(
        limit,
        again.is_null(),
        "alloc succeeded right after returning null"
    );

    // 2. Everything handed out before the failure is intact.
    for (i, &p) in blocks.iter().enumerate() {
        // SAFETY: p is live with `size` bytes, filled with seed(size, i).
        let r = unsafe { verify(p, size, seed(size, i)) };
        check!(
            limit,
            r.is_ok(),
            "block {i} at {p:p} corrupted after OOM: {:?}",
            r
        );
    }

    // 3. Requests that can never succeed fail cleanly under the limit too.
    huge_requests(&limit, victim);

    // 4. Free every other block; the allocator must serve this size again.
    let mut freed = 0;
    for i in (0..blocks.len()).step_by(2) {
        // SAFETY: blocks[i] is live, allocated by A with layout; it is
        // replaced by null so it is not freed twice.
        unsafe { A.dealloc(blocks[i], layout) };
        blocks[i] = std::ptr::null_mut();
        freed += 1;
    }
    let mut refilled = 0;
    for (i, slot) in blocks.iter_mut().enumerate().step_by(2) {
        // SAFETY: layout has a non-zero size.
        let p = unsafe { A.alloc(layout) };
        if p.is_null() {
            break;
        }
        check!(
            limit,
            (p as usize).is_multiple_of(align),
            "re-alloc({layout:?}) = {p:p} misaligned"
        );
        // SAFETY: p is a fresh block of `size` writable bytes.
        unsafe { fill(p, size, seed(size, i)) };
        *slot = p;
        refilled += 1;
    }
    check!(
        limit,
        refilled * 2 >= freed && refilled > 0,
        "{} blocks allocated before null; after freeing {freed} of them only {refilled} \
         could be allocated again",
        blocks.len()
    );
    // A zeroed block of the same size must come back zeroed.
    let mut zeroed_ok = true;
    // SAFETY: layout has a non-zero size.
    let z = unsafe { A.alloc_zeroed(layout) };
    if !z.is_null() {
        // SAFETY: z is a fresh block of `size` readable bytes.
        zeroed_ok = unsafe { verify_zeroed(z, size) }.is_ok();
        // SAFETY: z was just allocated with layout.
        unsafe { A.dealloc(z, layout) };
    }
    check!(
        limit,
        zeroed_ok,
        "alloc_zeroed after OOM returned a dirty block"
    );

    // 5. Check and free everything.
    for (i, &p) in blocks.iter().enumerate() {
        if p.is_null() {
            continue;
        }
        // SAFETY: p is live with `size` bytes, filled with seed(size, i).
        let r = unsafe { verify(p, size, seed(size, i)) };
        check!(limit, r.is_ok(), "block {i} at {p:p} corrupted: {:?}", r);
        // SAFETY: p is live, allocated by A with layout, freed once.
        unsafe { A.dealloc(p, layout) };
    }
    limit.restore();
    free_victim(victim);
    println!(
        "child: {} blocks ({got} bytes) before null; {freed} freed, {refilled} re-allocated",
        blocks.len()
    );
}

/// Requests no machine can satisfy return null, whether or not a limit is in
/// force, and a failed realloc leaves its block untouched.
/// `victim` comes from `alloc_victim`; it is still live afterwards.
fn huge_requests(limit: &Limit, victim: *mut u8) {
    let p = victim;
    let top = isize::MAX as usize + 1; // 2^63
    let layouts = [
        (top - 4096, 4096),
        (isize::MAX as usize, 1),
        (top - 2 * MIB, 2 * MIB),
        (1 << 62, 8),
        (1 << 48, 16), // beyond a 47-bit user address space
    ];
    for (size, align) in layouts {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: layout has a non-zero size.
        let p = unsafe { A.alloc(layout) };
        check!(
            limit,
            p.is_null(),
            "alloc({layout:?}) returned {p:p}, not null"
        );
        // SAFETY: as above.
        let p = unsafe { A.alloc_zeroed(layout) };
        check!(
            limit,
            p.is_null(),
            "alloc_zeroed({layout:?}) returned {p:p}, not null"
        );
    }
    for new_size in [top - 4096, 1 << 62, 1 << 48] {
        // SAFETY: p is live with layout VICTIM; new_size is non-zero and,
        // rounded up to 8, does not exceed isize::MAX.
        let q = unsafe { A.realloc(p, VICTIM, new_size) };
        check!(
            limit,
            q.is_null(),
            "realloc(64 -> {new_size}) returned {q:p}, not null"
        );
        // SAFETY: realloc failed, so p is still live with 64 bytes.
        let r = unsafe { verify(p, VICTIM.size(), VICTIM_SEED) };
        check!(
            limit,
            r.is_ok(),
            "failed realloc(64 -> {new_size}) damaged the block: {:?}",
            r
        );
    }
}

/// The small block whose failed reallocations `huge_requests` checks. It is
/// allocated before any limit is set: under memory exhaustion even a 64-byte
/// request may rightly fail (its size class may need a new span).
const VICTIM: Layout = match Layout::from_size_align(64, 8) {
    Ok(l) => l,
    Err(_) => panic!("bad VICTIM layout"),
};
const VICTIM_SEED: u64 = 0x4A6E;

fn alloc_victim() -> *mut u8 {
    // SAFETY: VICTIM has a non-zero size.
    let p = unsafe { A.alloc(VICTIM) };
    assert!(!p.is_null(), "alloc({VICTIM:?}) returned null");
    // SAFETY: p is a fresh block of VICTIM.size() writable bytes.
    unsafe { fill(p, VICTIM.size(), VICTIM_SEED) };
    p
}

fn free_victim(p: *mut u8) {
    // SAFETY: p came from alloc_victim and is still live.
    let r = unsafe { verify(p, VICTIM.size(), VICTIM_SEED) };
    assert!(r.is_ok(), "victim block corrupted: {r:?}");
    // SAFETY: p is live, allocated by A with VICTIM, and freed once.
    unsafe { A.dealloc(p, VICTIM) };
}
