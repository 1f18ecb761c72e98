//! The heap dump: a program using spanalloc as its global allocator writes
//! one, and it parses as JSON whose spans tile every region exactly and
//! agree with the statistics.

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

#[test]
fn dump_spans_tile_the_regions_and_match_the_stats() {
    const SIZE: usize = 12_000;
    let class = spanalloc::sizeclass::class_of(SIZE);
    let held: Vec<Box<[u8]>> = (0..300)
        .map(|i| vec![i as u8; SIZE].into_boxed_slice())
        .collect();
    let big = vec![1u8; 5 << 20];

    let dir = std::env::temp_dir().join(format!("spanalloc-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("heap.json");
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert!(spanalloc::dump_heap(&cpath));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).expect("the dump is valid JSON");

    assert_eq!(v["version"], 1);
    assert_eq!(v["page_size"], 8192);
    let page = 8192u64;
    let regions = v["regions"].as_array().unwrap();
    let spans = v["spans"].as_array().unwrap();
    assert!(!regions.is_empty() && !spans.is_empty());
    // Spans are in address order and cover each region without gap or overlap.
    let mut it = spans.iter().peekable();
    for r in regions {
        let (base, bytes) = (r["base"].as_u64().unwrap(), r["bytes"].as_u64().unwrap());
        let mut at = base;
        while at < base + bytes {
            let s = it.next().expect("spans run out before the region ends");
            assert_eq!(
                s["start"].as_u64().unwrap(),
                at,
                "gap or overlap at {at:#x}"
            );
            at += s["pages"].as_u64().unwrap() * page;
        }
        assert_eq!(at, base + bytes, "a span crosses the end of its region");
    }
    assert!(it.next().is_none(), "spans outside every region");

    // The held objects appear in spans of their class.
    let allocated: u64 = spans
        .iter()
        .filter(|s| s["state"] == "small" && s["class"] == class as u64)
        .map(|s| s["allocated"].as_u64().unwrap())
        .sum();
    assert!(
        allocated >= 300,
        "class {class}: {allocated} objects out, 300 held"
    );
    let stats_spans = v["stats"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == class as u64)
        .expect("the class is in the stats")["spans"]
        .as_u64()
        .unwrap();
    let dump_spans = spans
        .iter()
        .filter(|s| s["state"] == "small" && s["class"] == class as u64)
        .count() as u64;
    assert_eq!(stats_spans, dump_spans);
    // The 5 MiB vector is one large span.
    assert!(spans
        .iter()
        .any(|s| s["state"] == "large" && s["pages"].as_u64().unwrap() * page >= 5 << 20));
    drop((held, big));
}

/// Runs this binary's dump test again with `var=value` and returns its stderr.
fn rerun_with(var: &str, value: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "dump_spans_tile_the_regions_and_match_the_stats",
            "--exact",
            "--test-threads=1",
        ])
        .env(var, value)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_exit_report_is_printed_in_both_forms() {
    let text = rerun_with("SPANALLOC_STATS", "1");
    let report = &text[text
        .find("spanalloc statistics")
        .expect("a text report at exit")..];
    for field in [
        "live_bytes",
        "mapped_bytes",
        "held_bytes",
        "released_bytes",
        "thread_cache_bytes",
        "huge_page_bytes",
    ] {
        assert!(report.contains(field), "{field} missing:\n{report}");
    }
    let header = report
        .lines()
        .find(|l| l.trim_start().starts_with("class"))
        .expect("a class table");
    assert_eq!(header.split_whitespace().count(), 9);
    let rows: Vec<_> = report
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("class"))
        .skip(1)
        .collect();
    assert!(rows.len() > 3);
    for r in &rows {
        let cols: Vec<u64> = r
            .split_whitespace()
            .map(|c| c.parse().expect("numeric column"))
            .collect();
        assert_eq!(cols.len(), 9, "{r}");
        assert!(cols[8] <= 100, "utilisation over 100%: {r}");
        assert!(cols[2] >= cols[3], "more frees than allocations: {r}");
    }

    let json = rerun_with("SPANALLOC_STATS", "json");
    let line = json
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON report at exit");
    let v: serde_json::Value = serde_json::from_str(line).expect("the JSON report parses");
    assert!(v["mapped_bytes"].as_u64().unwrap() > 0);
    let classes = v["classes"].as_array().unwrap();
    assert!(classes.iter().any(|c| c["allocs"].as_u64().unwrap() >= 300));
}
