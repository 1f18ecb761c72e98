//! `heap FILE` on a hand-made dump (tests/data/small-heap.json): two
//! regions, four size classes, a large object, free and released pages.

use std::path::PathBuf;

use crate::common::{inspect_json, inspect_ok, num, svg_page_rects};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/small-heap.json")
}

#[test]
fn classes_and_counts() {
    let f = fixture();
    let r = inspect_json(&["heap", f.to_str().unwrap()]);
    assert_eq!(
        r["warnings"].as_array().unwrap().len(),
        0,
        "{}",
        r["warnings"]
    );
    let classes = r["classes"].as_array().unwrap();
    // (class, object size, spans, pages, objects, allocated, live)
    let want = [
        (1, 8, 1, 1, 1024, 1000, 990),
        (5, 48, 2, 2, 340, 255, 250),
        (35, 1408, 1, 2, 11, 11, 11),
        (67, 32768, 1, 4, 1, 1, 1),
    ];
    assert_eq!(classes.len(), want.len());
    for (c, w) in classes.iter().zip(want) {
        let got = (
            num(&c["class"]),
            num(&c["object_size"]),
            num(&c["spans"]),
            num(&c["pages"]),
            num(&c["objects"]),
            num(&c["allocated"]),
            num(&c["live"]),
        );
        assert_eq!(got, w);
        let util = c["utilisation"].as_f64().unwrap();
        let expect = (w.1 * w.5) as f64 / (w.3 * 8192) as f64;
        assert!(
            (util - expect).abs() < 1e-9,
            "class {}: {util} vs {expect}",
            w.0
        );
    }
    let t = &r["totals"];
    assert_eq!(num(&t["regions"]), 2);
    assert_eq!(num(&t["mapped_bytes"]), 26 * 8192);
    assert_eq!(num(&t["small"]["pages"]), 9);
    assert_eq!(num(&t["large"]["pages"]), 4);
    assert_eq!(num(&t["free"]["pages"]), 3);
    assert_eq!(num(&t["released"]["pages"]), 10);
    assert_eq!(num(&t["inuse_bytes"]), 13 * 8192);
}

#[test]
fn text_report() {
    let f = fixture();
    let out = inspect_ok(&["heap", f.to_str().unwrap()]).stdout;
    for want in [
        "class",
        "util",
        "large objects: 1 spans, 4 pages",
        "mapped",
        "released",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
    // Class 1: 1000 of 1024 8-byte objects in one page.
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .expect("a row for class 1");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[..6], ["1", "8", "1", "1", "1024", "1000"], "{line}");
    assert!(line.contains("97.7%"), "{line}");
}

#[test]
fn svg_heap_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("map.svg");
    let f = fixture();
    let run = inspect_ok(&["heap", f.to_str().unwrap(), "--svg", out.to_str().unwrap()]);
    assert!(run.stdout.contains("heap map:"), "{}", run.stdout);
    assert_eq!(svg_page_rects(&out), 26);
    let text = std::fs::read_to_string(&out).unwrap();
    for class in [
        "class 1: 8 B",
        "class 5: 48 B",
        "class 35: 1408 B",
        "class 67: 32768 B",
    ] {
        assert!(text.contains(class), "legend lacks {class}");
    }

    // JSON and the map together; an unwritable map is an I/O error.
    let r = inspect_json(&["heap", f.to_str().unwrap(), "--svg", out.to_str().unwrap()]);
    assert_eq!(r["classes"].as_array().unwrap().len(), 4);
    let bad = dir.path().join("no/such/dir/map.svg");
    let run =
        crate::common::inspect(&["heap", f.to_str().unwrap(), "--svg", bad.to_str().unwrap()]);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("cannot write the map"), "{run:?}");
}
