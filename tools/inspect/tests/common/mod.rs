//! Running the `spanalloc-inspect` binary from the tests.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::process::Command;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_spanalloc-inspect");

/// What one run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the tool with `args`; whatever happens, it must not panic.
pub fn inspect(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("the tool runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && run.code != 101,
        "{args:?} panicked: {run:?}"
    );
    run
}

/// Runs the tool and expects success.
pub fn inspect_ok(args: &[&str]) -> Run {
    let run = inspect(args);
    assert_eq!(run.code, 0, "{args:?} failed: {run:?}");
    run
}

/// Runs the tool with `--json` and parses what it prints.
pub fn inspect_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = inspect_ok(&all);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", run.stdout))
}

/// Runs a command and returns its standard output (it must succeed).
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A number from JSON.
pub fn num(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The `VmSize` and `VmRSS` of this process, in bytes.
pub fn own_status() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"));
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    };
    (field("VmSize:"), field("VmRSS:"))
}

/// True if `a` and `b` differ by at most `frac` of the larger plus `slack`
/// bytes.
pub fn close(a: u64, b: u64, frac: f64, slack: u64) -> bool {
    let big = a.max(b) as f64;
    (a.abs_diff(b) as f64) <= big * frac + slack as f64
}

/// Regions of a `maps --json` report.
pub fn regions(report: &serde_json::Value) -> &Vec<serde_json::Value> {
    report["regions"].as_array().expect("regions")
}

/// The region holding `addr`.
pub fn region_at(report: &serde_json::Value, addr: u64) -> &serde_json::Value {
    regions(report)
        .iter()
        .find(|r| num(&r["start"]) <= addr && addr < num(&r["end"]))
        .unwrap_or_else(|| panic!("no region holds {addr:#x}"))
}

/// The `<rect class="p">` elements of an SVG heap map, after checking that
/// the document is well-formed SVG with a legend.
pub fn svg_page_rects(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).expect("the SVG was written");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert!(root.attribute("width").is_some() && root.attribute("viewBox").is_some());
    let legend = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("legend"))
        .expect("a legend");
    let labels: Vec<&str> = legend
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for want in ["large object", "free", "free, returned to the OS"] {
        assert!(labels.contains(&want), "legend lacks {want:?}: {labels:?}");
    }
    assert!(
        doc.descendants()
            .any(|n| n.has_tag_name("text") && n.attribute("class") == Some("title")),
        "a title"
    );
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("p"))
        .count()
}
