//! `maps` on this test process: its text, heap, stack, a thread's stack and
//! a mapping made here, with totals close to /proc/self/status.

use std::sync::mpsc;

use crate::common::{close, inspect_json, inspect_ok, num, own_status, region_at, regions};

const MIB: usize = 1 << 20;

/// An anonymous read-write mapping of `size` bytes between two inaccessible
/// ones of 2 MiB (so the kernel cannot merge it with a neighbour), of which
/// the first `touched` bytes are written. Unmapped on drop.
struct Mapping {
    base: *mut u8,
    total: usize,
    rw: *mut u8,
}

const PAD: usize = 2 * MIB;

impl Mapping {
    fn new(size: usize, touched: usize) -> Self {
        let total = size + 2 * PAD;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base.cast::<u8>();
        // SAFETY: [PAD, PAD + size) lies inside the mapping just made.
        let rw = unsafe { base.add(PAD) };
        // SAFETY: as above; the range is ours.
        let ok = unsafe { libc::mprotect(rw.cast(), size, libc::PROT_READ | libc::PROT_WRITE) };
        assert_eq!(ok, 0);
        for off in (0..touched).step_by(4096) {
            // SAFETY: off < touched <= size, inside the read-write part.
            unsafe { rw.add(off).write_volatile(1) };
        }
        Mapping { base, total, rw }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base..base+total is the mapping made in new(), unused now.
        unsafe { libc::munmap(self.base.cast(), self.total) };
    }
}

#[test]
fn finds_text_heap_stack_and_our_mapping() {
    let m = Mapping::new(3 * MIB, MIB);
    let on_stack = 0u64;
    let stack_addr = std::ptr::addr_of!(on_stack) as u64;
    let pid = std::process::id().to_string();
    let before = own_status();
    let r = inspect_json(&["maps", &pid]);
    let after = own_status();

    assert_eq!(num(&r["pid"]).to_string(), pid);
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();

    // Our own mapping: its size, and at least the touched MiB resident.
    let ours = region_at(&r, m.rw as u64);
    assert_eq!(num(&ours["start"]), m.rw as u64, "{ours}");
    assert_eq!(num(&ours["size"]), 3 * MIB as u64, "{ours}");
    assert!(num(&ours["rss"]) >= MIB as u64, "{ours}");
    assert_eq!(ours["class"], "anon", "{ours}");
    assert_eq!(ours["perms"], "rw-p");
    let pad = region_at(&r, m.base as u64);
    assert_eq!(pad["class"], "reserved", "{pad}");

    // The text of this very function, in this executable.
    let code = finds_text_heap_stack_and_our_mapping as fn() as usize as u64;
    let text = region_at(&r, code);
    assert_eq!(text["class"], "text", "{text}");
    assert_eq!(text["path"], exe, "{text}");
    assert!(regions(&r)
        .iter()
        .any(|g| g["path"] == exe && g["class"] == "rodata"));
    assert!(regions(&r)
        .iter()
        .any(|g| g["path"] == exe && g["class"] == "data"));

    // This test runs on a thread of the harness (not the main thread):
    // its stack is a thread stack. The main thread's is [stack].
    let here = region_at(&r, stack_addr);
    let main_thread = std::thread::current().name() == Some("main");
    let want = if main_thread { "stack" } else { "thread_stack" };
    assert_eq!(here["class"], want, "{here}");
    let stack: Vec<_> = regions(&r)
        .iter()
        .filter(|g| g["path"] == "[stack]")
        .collect();
    assert_eq!(stack.len(), 1);
    assert_eq!(stack[0]["class"], "stack");
    for g in regions(&r) {
        if g["path"] == "[heap]" {
            assert_eq!(g["class"], "heap", "{g}");
        }
        if g["path"] == "[vdso]" {
            assert_eq!(g["class"], "vdso", "{g}");
        }
    }

    // Totals: the sums against the kernel's, both as the tool read them and
    // as we read them around its run (other tests run meanwhile).
    let t = &r["totals"];
    let (vsz, rss) = (num(&t["vsz"]), num(&t["rss"]));
    assert!(
        close(vsz, num(&t["status_vm_size"]), 0.02, 8 * MIB as u64),
        "{t}"
    );
    assert!(
        close(rss, num(&t["status_vm_rss"]), 0.05, 4 * MIB as u64),
        "{t}"
    );
    for (vm_size, vm_rss) in [before, after] {
        assert!(
            close(vsz, vm_size, 0.05, 64 * MIB as u64),
            "{t} vs {vm_size}"
        );
        assert!(close(rss, vm_rss, 0.10, 16 * MIB as u64), "{t} vs {vm_rss}");
    }
    let summed: u64 = r["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| num(&c["size"]))
        .sum();
    let vsyscall: u64 = regions(&r)
        .iter()
        .filter(|g| g["path"] == "[vsyscall]")
        .map(|g| num(&g["size"]))
        .sum();
    assert_eq!(summed, vsz + vsyscall);
    drop(m);
}

#[test]
fn finds_a_blocked_thread_s_stack() {
    let (to_main, from_thread) = mpsc::channel();
    let (to_thread, from_main) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let local = 0u8;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        to_main
            .send((tid, std::ptr::addr_of!(local) as u64))
            .unwrap();
        from_main.recv().unwrap();
    });
    let (tid, addr) = from_thread.recv().unwrap();
    // Give the thread time to block in recv (a futex wait).
    std::thread::sleep(std::time::Duration::from_millis(50));
    let r = inspect_json(&["maps", &std::process::id().to_string()]);
    to_thread.send(()).unwrap();
    t.join().unwrap();

    let g = region_at(&r, addr);
    assert_eq!(g["class"], "thread_stack", "{g}");
    // Named after the thread when its stack pointer could be read
    // (/proc/PID/task/TID/syscall needs ptrace rights), else by the guard
    // page under it.
    let name = g["name"].as_str().unwrap();
    assert!(
        name == format!("tid {tid}") || name == "thread stack?",
        "{g}"
    );
    assert!(num(&r["threads"]) >= 2);
}

#[test]
fn summary_and_default_pid() {
    // Without a PID the tool shows itself.
    let out = inspect_ok(&["maps", "--summary"]).stdout;
    assert!(out.starts_with("process "), "{out}");
    assert!(out.contains("spanalloc-inspe"), "{out}");
    for want in ["class", "text", "stack", "total: VSZ"] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
    let full = inspect_ok(&["maps", &std::process::id().to_string()]).stdout;
    assert!(full.contains("[stack]") && full.contains("rw-p"), "{full}");

    let r = inspect_json(&["maps", "--summary"]);
    let classes: Vec<&str> = r["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"text") && classes.contains(&"stack"),
        "{classes:?}"
    );
}
