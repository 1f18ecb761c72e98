//! The sampled heap profiler, end to end: a program allocates known amounts
//! from distinct call sites, writes its profile, and the profile is decoded
//! and checked here (and by `go tool pprof`).
//!
//! Each case runs in a child process (this binary re-run with
//! `SPANALLOC_PROFILE_CHILD=<case>` and the profiler's variables), so that
//! sampling starts with the process and other tests add nothing to the
//! profile. spanalloc is the global allocator here.

mod common;
#[path = "common/pprof.rs"]
mod pprof;

use common::{Rng, KIB, MIB};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

const CHILD_VAR: &str = "SPANALLOC_PROFILE_CHILD";

/// The sampling rate of the attribution test: 16 KiB. For a site of `T`
/// bytes of objects much smaller than the rate, the estimate's standard
/// deviation is about `sqrt(T * rate)`, i.e. `sqrt(rate / T)` relative:
/// 1.6% for 64 MiB and 4.4% for 8 MiB. The tolerances below are four
/// standard deviations (the seeds are fixed, so a run is reproducible).
const TEST_RATE: usize = 16 << 10;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("profile-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn run_child(case: &str, envs: &[(&str, String)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, case);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = common::output_within_limit(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {case} failed\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("PROFILE_CHILD_OK {case}")),
        "{stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn child_entry() {
    let Ok(case) = std::env::var(CHILD_VAR) else {
        return;
    };
    match case.as_str() {
        "sites" => sites_child(),
        "threads" => threads_child(),
        "on_demand" => on_demand_child(),
        "routing" => routing_child(),
        other => panic!("unknown case {other}"),
    }
    println!("PROFILE_CHILD_OK {case}");
}

/// Holds 64 MiB in 1 KiB objects.
#[inline(never)]
fn hold_64_mib() -> Vec<Box<[u8]>> {
    (0..64 * KIB)
        .map(|_| black_box(vec![1u8; KIB]).into_boxed_slice())
        .collect()
}

/// Holds 8 MiB in objects of 256 B to 4 KiB.
#[inline(never)]
fn hold_8_mib() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(7);
    let mut v = Vec::new();
    let mut total = 0;
    while total < 8 * MIB {
        let n = (256 + rng.below(3840)).min(8 * MIB - total).max(1);
        total += n;
        v.push(black_box(vec![2u8; n]));
    }
    v
}

/// Allocates and frees 1 GiB: small objects freed in batches, and some
/// large ones.
#[inline(never)]
fn churn_1_gib() {
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(256);
    let mut total = 0;
    while total < 768 * MIB {
        batch.push(black_box(vec![3u8; 4 * KIB]));
        total += 4 * KIB;
        if batch.len() == 256 {
            batch.clear();
        }
    }
    batch.clear();
    while total < 1024 * MIB {
        drop(black_box(vec![4u8; MIB]));
        total += MIB;
    }
}

fn sites_child() {
    let a = hold_64_mib();
    let b = hold_8_mib();
    churn_1_gib();
    // The profile is written at exit (SPANALLOC_PROFILE), with a and b
    // still held.
    black_box((&a, &b));
    std::mem::forget(a);
    std::mem::forget(b);
}

#[test]
fn the_in_use_profile_attributes_held_memory_to_its_sites() {
    let path = scratch("sites.pprof");
    run_child(
        "sites",
        &[
            ("SPANALLOC_PROFILE", path.display().to_string()),
            ("SPANALLOC_PROFILE_RATE", TEST_RATE.to_string()),
        ],
    );
    let gz = std::fs::read(&path).expect("the profile was written at exit");
    let p = pprof::decode(&gz);
    let types: Vec<&str> = p.sample_types.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "alloc_objects",
            "alloc_space",
            "inuse_objects",
            "inuse_space",
            "peak_objects",
            "peak_space"
        ]
    );
    assert_eq!(p.default_sample_type, "inuse_space");
    assert_eq!(p.period, TEST_RATE as i64);

    let mib = |v: i64| v as f64 / MIB as f64;
    let a = mib(p.total_for("inuse_space", "hold_64_mib"));
    let b = mib(p.total_for("inuse_space", "hold_8_mib"));
    let c_inuse = mib(p.total_for("inuse_space", "churn_1_gib"));
    let c_alloc = mib(p.total_for("alloc_space", "churn_1_gib"));
    println!("in use: 64 MiB site {a:.1} MiB, 8 MiB site {b:.2} MiB, churn {c_inuse:.2} MiB; churn allocated {c_alloc:.0} MiB");
    assert!((a - 64.0).abs() < 64.0 * 0.065, "64 MiB site: {a} MiB");
    assert!((b - 8.0).abs() < 8.0 * 0.18, "8 MiB site: {b} MiB");
    // Freed memory is not in use...
    assert!(c_inuse < 1.0, "churn in use: {c_inuse} MiB");
    // ...but was allocated (sampling error 0.4%; the vectors' own buffers
    // add nothing since the site allocates exactly 1 GiB of payload).
    assert!(
        (c_alloc - 1024.0).abs() < 1024.0 * 0.03,
        "churn allocated: {c_alloc} MiB"
    );
    // The peak came with both held sets live.
    let pa = mib(p.total_for("peak_space", "hold_64_mib"));
    assert!(
        (pa - a).abs() < 0.01 + a * 0.001,
        "peak of the 64 MiB site {pa} vs {a}"
    );
    // The allocator's own frames were trimmed: no stack starts inside it.
    for (stack, _) in &p.samples {
        let top = stack.first().map(String::as_str).unwrap_or("");
        assert!(
            !top.starts_with("spanalloc::") && !top.starts_with("__rust_"),
            "untrimmed stack {stack:?}"
        );
    }

    // go tool pprof reads it, and lists the sites in order of bytes in use.
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", "-cum", "-sample_index=inuse_space"])
        .arg(&path)
        .output()
        .expect("run go tool pprof (Debian package golang-go)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pos = |f: &str| {
        text.lines()
            .position(|l| l.contains(f))
            .unwrap_or_else(|| panic!("{f} missing from go tool pprof -top:\n{text}"))
    };
    assert!(pos("hold_64_mib") < pos("hold_8_mib"), "{text}");
    assert!(
        !text.contains("churn_1_gib") || pos("hold_8_mib") < pos("churn_1_gib"),
        "{text}"
    );
}

/// Several threads allocate and free sampled objects, many freed by
/// another thread, while one thread writes profiles; then everything is
/// freed and the profile must show nothing in use.
fn threads_child() {
    use std::sync::mpsc;
    let rounds = (20_000.0 * common::stress_scale()) as usize;
    let (tx, rx) = mpsc::sync_channel::<Vec<Box<[u8]>>>(64);
    let mut workers = Vec::new();
    for t in 0..3 {
        let tx = tx.clone();
        workers.push(std::thread::spawn(move || {
            let mut rng = Rng::new(100 + t);
            let mut mine = Vec::new();
            for i in 0..rounds {
                let n = 16 + rng.below(8 * KIB);
                let batch: Vec<Box<[u8]>> = (0..8)
                    .map(|_| vec![t as u8; n].into_boxed_slice())
                    .collect();
                if i % 2 == 0 {
                    tx.send(batch).unwrap();
                } else {
                    mine.push(batch);
                    if mine.len() > 32 {
                        mine.swap_remove(rng.below(mine.len()));
                    }
                }
                if i % 1000 == 0 {
                    // Large objects too, sometimes freed elsewhere.
                    let big = vec![9u8; 256 * KIB + rng.below(MIB)].into_boxed_slice();
                    tx.send(vec![big]).unwrap();
                }
            }
        }));
    }
    drop(tx);
    let writer = std::thread::spawn(|| {
        for i in 0..5 {
            let path = scratch(&format!("threads-{i}.pprof"));
            spanalloc::profile::write(&path).unwrap();
            pprof::decode(&std::fs::read(&path).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    // The consumer frees what the workers send.
    let mut freed = 0usize;
    for batch in rx {
        freed += batch.len();
        drop(batch);
    }
    for w in workers {
        w.join().unwrap();
    }
    writer.join().unwrap();
    assert!(freed > 0);
    let t = spanalloc::profile::totals();
    // Everything was freed: the in-use estimate is zero, up to the
    // rounding of each site's total.
    let sites = t[0].max(1);
    assert!(
        t[3].abs() <= sites,
        "in use after everything was freed: {t:?}"
    );
    assert!(t[1] > 0, "nothing was sampled: {t:?}");
    spanalloc::check_heap();
}

#[test]
fn sampling_on_many_threads_with_cross_thread_frees_loses_no_record() {
    run_child(
        "threads",
        &[("SPANALLOC_PROFILE_RATE", (32 << 10).to_string())],
    );
}

/// Turned on from the program, written on demand.
fn on_demand_child() {
    assert!(!spanalloc::profile::is_enabled());
    assert!(spanalloc::profile::write(scratch("never.pprof")).is_err());
    spanalloc::profile::set_rate(4 << 10);
    let held: Vec<Vec<u8>> = (0..4096).map(|_| vec![5u8; 2 * KIB]).collect();
    let path = std::env::var("PROFILE_OUT").unwrap();
    spanalloc::profile::write(&path).unwrap();
    drop(held);
}

#[test]
fn a_program_can_turn_sampling_on_and_write_a_profile_on_demand() {
    let path = scratch("on-demand.pprof");
    run_child("on_demand", &[("PROFILE_OUT", path.display().to_string())]);
    let p = pprof::decode(&std::fs::read(&path).unwrap());
    let held = p.total_for("inuse_space", "on_demand_child") as f64 / MIB as f64;
    // 8 MiB at 4 KiB: 3% standard deviation.
    assert!((held - 8.0).abs() < 8.0 * 0.15, "{held} MiB");
}

/// While a sampled object is alive, the entry its size reads in the
/// sized-free tables is routed to the slow path (it reads as NUM_CLASSES +
/// class), and only that entry, not the other sizes of its class; the last
/// free of a sample of that size routes it back. A `realloc` within the
/// class moves a sampled block (its free, under the new size, is not
/// routed). The span of a freed sample is kept for the next sample of its
/// class (unless C's realloc grew it), a second free of its block is
/// refused, and `release_memory` gives the kept spans back.
fn routing_child() {
    use spanalloc::raw::{self, PointerError};
    use spanalloc::sizeclass::{class_of, free_class_of, free_entry, NUM_CLASSES};
    const SIZE: usize = 3000;
    let class = class_of(SIZE);
    let routed = NUM_CLASSES + class;
    // A smaller size of the same class whose frees read another entry.
    let sibling = (1..SIZE)
        .rev()
        .find(|&s| class_of(s) == class && free_entry(s) != free_entry(SIZE))
        .expect("the class spans two entries");
    assert_eq!(free_class_of(SIZE), class);
    // At a rate of 1 byte every allocation is sampled; the three below are
    // the only ones of these sizes made while it is on.
    spanalloc::profile::set_rate(1);
    let a = black_box(vec![1u8; SIZE]);
    let b = black_box(vec![2u8; SIZE]);
    let mut c = black_box(vec![3u8; SIZE]);
    spanalloc::profile::set_rate(0);
    assert_eq!(a.as_ptr() as usize % 8192, 0, "not a sampled block");
    assert_eq!(
        free_class_of(SIZE),
        routed,
        "sampled size still on the fast path"
    );
    assert_eq!(
        free_class_of(sibling),
        class,
        "another size of the class was routed"
    );
    assert_eq!(
        free_class_of(16),
        class_of(16),
        "an unsampled class was routed"
    );
    // Shrinking to the sibling size keeps the class but not the entry.
    let before = c.as_ptr();
    c.truncate(sibling);
    c.shrink_to_fit();
    assert_ne!(
        c.as_ptr(),
        before,
        "a sampled block kept under another size"
    );
    assert!(c.iter().all(|&x| x == 3));
    drop(c);
    drop(a);
    assert_eq!(
        free_class_of(SIZE),
        routed,
        "routed back with a sample alive"
    );
    // Freed on another thread: the record goes all the same.
    std::thread::spawn(move || drop(b)).join().unwrap();
    assert_eq!(
        free_class_of(SIZE),
        class,
        "not routed back after the last free"
    );
    assert!(spanalloc::profile::totals()[3].abs() <= 1);

    // The reserve: a freed sample's span serves the next sample of its class.
    spanalloc::profile::set_rate(1);
    let p = raw::malloc(SIZE);
    assert_eq!(p as usize % 8192, 0, "not a sampled block");
    // SAFETY: p is live and freed once; the second free is the misuse
    // under test, refused before anything is touched.
    unsafe {
        raw::free(p).unwrap();
        assert_eq!(raw::free(p), Err(PointerError::NotOurs));
    }
    let q = black_box(vec![4u8; SIZE]);
    assert_eq!(q.as_ptr(), p.cast_const(), "the kept span was not reused");
    drop(q);
    let held = spanalloc::stats().large_bytes;
    spanalloc::release_memory();
    let after = spanalloc::stats().large_bytes;
    assert!(
        held >= after + 8192,
        "release_memory kept the profiler's spans: {held} -> {after}"
    );
    // A sampled block that C's realloc grew in place is not kept for the
    // next sample of its class.
    let g = raw::malloc(SIZE);
    assert_eq!(raw::usable_size(g), Some(8192));
    // SAFETY: g is live; realloc hands back the live block it becomes,
    // freed once.
    unsafe {
        let g2 = raw::realloc(g, 4 * MIB).unwrap();
        // The case needs the growth in place (free pages follow the span).
        assert_eq!(g2, g, "realloc moved the block: the case is not run");
        raw::free(g2).unwrap();
    }
    let h = raw::malloc(SIZE);
    assert_eq!(raw::usable_size(h), Some(8192), "a grown span was reused");
    // SAFETY: h is live, freed once.
    unsafe { raw::free(h).unwrap() };
    spanalloc::profile::set_rate(0);
    spanalloc::check_heap();
}

#[test]
fn a_size_with_samples_alive_frees_through_its_spans() {
    run_child("routing", &[]);
}
