//! spanalloc-inspect on live spanalloc heaps. This test binary runs with
//! spanalloc as its global allocator, so `maps` of this process must show
//! spanalloc's arenas around the blocks it holds, and its heap dumps (on
//! demand with `spanalloc::dump_heap`, and at exit through `SPANALLOC_DUMP`
//! in a child running this binary again) must read back with the classes and
//! counts of what it allocated.

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

mod common;

use std::ffi::CString;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use common::{inspect_json, inspect_ok, num, region_at, regions, svg_page_rects};
use spanalloc::sizeclass::{class_of, class_size};

/// The child's environment variable: when set, `child_allocates_and_exits`
/// allocates and leaks a known set of objects; otherwise it does nothing.
const CHILD: &str = "SPANALLOC_INSPECT_TEST_CHILD";

/// What the child leaks: objects of `SMALL` bytes ...
const SMALL: usize = 200;
const SMALL_COUNT: usize = 1000;
/// ... and large objects of `LARGE` bytes.
const LARGE: usize = 1 << 20;
const LARGE_COUNT: usize = 3;

fn is_arena(class: &serde_json::Value) -> bool {
    class == "spanalloc_arena" || class == "spanalloc_arena_guess"
}

#[test]
fn maps_shows_the_arenas() {
    let _serial = one_at_a_time();
    let small: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([7u8; 100])).collect();
    let big = vec![1u8; 8 << 20];
    let r = inspect_json(&["maps", &std::process::id().to_string()]);
    let arenas: Vec<_> = regions(&r)
        .iter()
        .filter(|g| is_arena(&g["class"]))
        .collect();
    assert!(!arenas.is_empty(), "no arena found");
    for g in &arenas {
        // Named by spanalloc, or found by shape: 64 MiB-aligned, 64 MiB multiples.
        assert!(
            g["path"] == "[anon:spanalloc]"
                || (num(&g["start"]).is_multiple_of(64 << 20)
                    && num(&g["size"]).is_multiple_of(64 << 20)),
            "{g}"
        );
    }
    for p in [
        small[0].as_ptr() as u64,
        small[999].as_ptr() as u64,
        big.as_ptr() as u64,
    ] {
        let g = region_at(&r, p);
        assert!(is_arena(&g["class"]), "{p:#x} is not in an arena: {g}");
    }
    let summary = inspect_ok(&["maps", "--summary", &std::process::id().to_string()]).stdout;
    assert!(summary.contains("spanalloc arena"), "{summary}");
    drop((small, big));
}

/// Serialises the tests of this binary: each allocates, and a dump taken
/// while another test allocates would see the counters move under it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a dump is expected to hold: at least `small_count` live objects of
/// `small` bytes and `large_count` of `large` bytes.
struct Expect {
    small: usize,
    small_count: u64,
    large: usize,
    large_count: u64,
    /// The dump was written with no other thread running, so the counters
    /// (read just before the spans) must agree with the spans exactly.
    quiet: bool,
}

/// Checks `heap` on a dump, and the map of it; returns the report.
fn check_dump(dump: &Path, e: &Expect) -> serde_json::Value {
    let Expect {
        small,
        small_count,
        large,
        large_count,
        quiet,
    } = *e;
    let r = inspect_json(&["heap", dump.to_str().unwrap()]);
    // The spans are written under the heap's locks: they always tile the
    // regions. The counters are read just before; only in a quiet process
    // are they sure to agree.
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .filter(|w| quiet || !w.contains("counters say"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let class = class_of(small) as u64;
    let c = r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| num(&c["class"]) == class)
        .unwrap_or_else(|| panic!("class {class} missing"));
    assert_eq!(num(&c["object_size"]), class_size(class as usize) as u64);
    assert!(num(&c["allocated"]) >= small_count, "{c}");
    assert!(num(&c["live"]) >= small_count, "{c}");
    assert!(num(&c["allocated"]) <= num(&c["objects"]), "{c}");
    let per_span = num(&c["objects"]) / num(&c["spans"]);
    assert!(num(&c["spans"]) >= small_count.div_ceil(per_span), "{c}");
    let util = c["utilisation"].as_f64().unwrap();
    assert!(util > 0.0 && util <= 1.0, "{c}");

    // Every class's span count agrees with the allocator's own counters.
    for c in r["classes"].as_array().unwrap().iter().filter(|_| quiet) {
        let counted = r["stats"]["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["class"] == c["class"])
            .map_or(0, |s| num(&s["spans"]));
        assert_eq!(num(&c["spans"]), counted, "{c}");
    }

    // The large objects: whole page runs of at least `large` bytes.
    let t = &r["totals"];
    assert!(num(&t["large"]["spans"]) >= large_count, "{t}");
    assert!(
        num(&t["large"]["bytes"]) >= large_count * large as u64,
        "{t}"
    );
    if quiet {
        assert_eq!(num(&t["mapped_bytes"]), num(&r["stats"]["mapped_bytes"]));
    }
    let pages = num(&t["small"]["pages"])
        + num(&t["large"]["pages"])
        + num(&t["free"]["pages"])
        + num(&t["released"]["pages"]);
    assert_eq!(pages * 8192, num(&t["mapped_bytes"]));

    // The map draws every page.
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("heap.svg");
    inspect_ok(&[
        "heap",
        dump.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(svg_page_rects(&svg) as u64, pages);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains(&format!("class {class}: {} B", class_size(class as usize))));
    r
}

#[test]
fn heap_of_an_on_demand_dump() {
    let _serial = one_at_a_time();
    const SIZE: usize = 3000;
    let held: Vec<Box<[u8]>> = (0..500)
        .map(|i| vec![i as u8; SIZE].into_boxed_slice())
        .collect();
    let big: Vec<Vec<u8>> = (0..2).map(|_| vec![3u8; 2 << 20]).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heap.json");
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    assert!(spanalloc::dump_heap(&cpath), "dump_heap failed");
    check_dump(
        &path,
        &Expect {
            small: SIZE,
            small_count: 500,
            large: 2 << 20,
            large_count: 2,
            // The test harness's threads may allocate meanwhile.
            quiet: false,
        },
    );
    drop((held, big));
}

#[test]
fn heap_of_a_dump_written_at_exit() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exit.json");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_allocates_and_exits", "--exact", "--test-threads=1"])
        .env(CHILD, "1")
        .env("SPANALLOC_DUMP", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(path.exists(), "no dump written at exit");
    let r = check_dump(
        &path,
        &Expect {
            small: SMALL,
            small_count: SMALL_COUNT as u64,
            large: LARGE,
            large_count: LARGE_COUNT as u64,
            quiet: true,
        },
    );
    // The child's process did little else: its live large objects are
    // exactly the leaked ones... or a few more from the test harness.
    assert!(num(&r["stats"]["large_allocs"]) >= LARGE_COUNT as u64);
}

/// Allocates and leaks a known set of objects when run as the child of
/// `heap_of_a_dump_written_at_exit`; does nothing otherwise.
#[test]
fn child_allocates_and_exits() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    for i in 0..SMALL_COUNT {
        let b: Box<[u8]> = vec![i as u8; SMALL].into_boxed_slice();
        std::mem::forget(b);
    }
    for _ in 0..LARGE_COUNT {
        std::mem::forget(vec![1u8; LARGE]);
    }
}
