//! Runs the built `spanalloc-bench --quick` and checks the shape of what it
//! prints and writes: a table row for every allocator in every workload, a
//! summary line per workload, and matching JSON. Timings are not checked;
//! they are noise at this length.

use std::process::Command;

const WORKLOADS: [&str; 9] = [
    "pairs/16",
    "pairs/32",
    "pairs/64",
    "pairs/128",
    "pairs/256",
    "pairs/512",
    "pairs/1024",
    "batch",
    "batch-large-mix",
];

const ALLOCATORS: [&str; 3] = ["spanalloc", "system", "mimalloc"];

/// The lines of the section headed `### name`, up to the next heading.
fn section<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    let heading = format!("### {name}");
    stdout
        .lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect()
}

#[test]
fn quick_run_reports_every_allocator_and_workload() {
    let json_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quick.json");
    let _ = std::fs::remove_file(&json_path);
    let output = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .arg("--quick")
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run spanalloc-bench");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    for workload in WORKLOADS {
        let lines = section(&stdout, workload);
        assert!(!lines.is_empty(), "no section for {workload}:\n{stdout}");
        for allocator in ALLOCATORS {
            let prefix = format!("| {allocator} ");
            let row = lines.iter().find(|l| l.starts_with(&prefix));
            let row = row.unwrap_or_else(|| panic!("no {allocator} row for {workload}:\n{stdout}"));
            // allocator, median, min, max, two ratios.
            assert_eq!(row.matches('|').count(), 7, "malformed row: {row}");
        }
        let summary = format!("{workload}: spanalloc/mimalloc = ");
        assert!(
            stdout.lines().any(|l| l.starts_with(&summary)),
            "no summary line for {workload}:\n{stdout}"
        );
    }
    assert!(stdout.contains("geometric mean over 9 workloads: spanalloc/mimalloc = "));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON written"))
            .expect("valid JSON");
    let workloads = json["workloads"].as_array().expect("workloads array");
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, WORKLOADS);
    for w in workloads {
        let allocators: Vec<&str> = w["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["allocator"].as_str().unwrap())
            .collect();
        assert_eq!(allocators, ALLOCATORS);
        for r in w["rows"].as_array().unwrap() {
            assert_eq!(r["samples_ns"].as_array().unwrap().len(), 3);
        }
    }
    assert!(json["geomean"]["spanalloc_over_mimalloc"].is_number());
}

#[test]
fn unknown_workload_is_an_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .args(["--quick", "--workload", "no-such-workload"])
        .output()
        .expect("run spanalloc-bench");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pairs/64"));
}
