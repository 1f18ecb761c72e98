//! `spanalloc-bench suite --quick` end to end, on the workload binaries cargo
//! built for this test (the dev profile): every workload completes under
//! every allocator, and the markdown, JSON and SVG charts are written. How
//! fast anything ran is not checked; at this size it is noise.

use std::path::Path;
use std::process::Command;

use spanalloc_workloads::Variant;

const ALLOCATORS: [&str; 4] = ["spanalloc", "system", "mimalloc", "jemalloc"];
const CHARTS: [&str; 5] = [
    "time.svg",
    "cpu.svg",
    "rss.svg",
    "faults.svg",
    "phased-rss.svg",
];

#[test]
fn quick_suite_runs_every_workload_under_every_allocator() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-quick");
    let _ = std::fs::remove_dir_all(&out);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_workloads-spanalloc"))
        .parent()
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .args(["suite", "--quick", "--timeout", "120", "--out"])
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir)
        .output()
        .expect("run spanalloc-bench suite");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let names: Vec<String> = Variant::all().into_iter().map(|v| v.name).collect();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("latest.json")).unwrap())
            .expect("latest.json is JSON");
    let workloads = json["workloads"].as_array().expect("workloads");
    let found: Vec<&str> = workloads
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, names);
    for w in workloads {
        let allocators = w["allocators"].as_array().unwrap();
        let found: Vec<&str> = allocators
            .iter()
            .map(|a| a["allocator"].as_str().unwrap())
            .collect();
        assert_eq!(found, ALLOCATORS, "{}", w["name"]);
        for a in allocators {
            let runs = a["runs"].as_array().unwrap();
            assert_eq!(runs.len(), 1, "{a}");
            assert!(runs[0]["wall_s"].as_f64().unwrap() > 0.0, "{a}");
            assert!(runs[0]["peak_rss"].as_u64().unwrap() > 0, "{a}");
            assert!(a["ratio_to_spanalloc"]["wall_s"].is_number(), "{a}");
        }
    }
    let geomeans = json["geomean_ratio_to_spanalloc"].as_array().unwrap();
    assert_eq!(geomeans.len(), ALLOCATORS.len());
    let phased = json["phased"].as_array().unwrap();
    assert_eq!(phased.len(), ALLOCATORS.len());
    for p in phased {
        assert!(p["series"].as_array().unwrap().len() >= 2, "{p}");
    }

    let md = std::fs::read_to_string(out.join("latest.md")).unwrap();
    for name in &names {
        // One row in each of the four metric tables and in the list of
        // workloads.
        assert_eq!(
            md.matches(&format!("| {name} |")).count(),
            5,
            "{name}:\n{md}"
        );
    }
    for chart in CHARTS {
        let svg = std::fs::read_to_string(out.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{chart}"
        );
        for a in &ALLOCATORS[1..] {
            assert!(svg.contains(a), "{chart} has no {a}");
        }
    }
    let bars = std::fs::read_to_string(out.join("time.svg")).unwrap();
    assert!(names.iter().all(|n| bars.contains(n.as_str())));
}

#[test]
fn unknown_workload_pattern_is_an_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .args([
            "suite",
            "--quick",
            "--only",
            "no-such-workload",
            "--bin-dir",
            "/nonexistent",
        ])
        .output()
        .expect("run spanalloc-bench suite");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("larson/t8"));
}
