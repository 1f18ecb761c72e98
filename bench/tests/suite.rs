//! `spanalloc-bench suite --quick` end to end, on the workload binaries cargo
//! built for this test (the dev profile): every workload completes under
//! every allocator, and the markdown, JSON and SVG charts are written; the
//! same for `--c-side` (the C libraries preloaded, the C program, python3,
//! sqlite3 and redis-server) and for `--profiler-cost`. How fast anything
//! ran is not checked; at this size it is noise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use spanalloc_workloads::{Kind, Variant};

const ALLOCATORS: [&str; 4] = ["spanalloc", "system", "mimalloc", "jemalloc"];
const C_ALLOCATORS: [&str; 5] = ["spanalloc", "glibc", "jemalloc", "mimalloc", "tcmalloc"];
const CHARTS: [&str; 5] = [
    "time.svg",
    "cpu.svg",
    "rss.svg",
    "faults.svg",
    "phased-rss.svg",
];

/// The folder of the workloads binaries cargo built for this test.
fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_workloads-spanalloc"))
        .parent()
        .unwrap()
}

/// Runs `spanalloc-bench suite --quick` with `args`, writing into a fresh
/// `out` folder; fails the test unless it succeeds.
fn quick_suite(out: &Path, args: &[&str]) {
    let _ = std::fs::remove_dir_all(out);
    let output = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .args(["suite", "--quick", "--timeout", "120", "--out"])
        .arg(out)
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(args)
        .output()
        .expect("run spanalloc-bench suite");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
}

/// Checks the report in `out`: every workload of `names`, in order, with
/// one run of every allocator of `allocators`; the markdown tables and the
/// charts. Returns the JSON.
fn check_report(out: &Path, names: &[String], allocators: &[&str]) -> serde_json::Value {
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
        let per_allocator = w["allocators"].as_array().unwrap();
        let found: Vec<&str> = per_allocator
            .iter()
            .map(|a| a["allocator"].as_str().unwrap())
            .collect();
        assert_eq!(found, allocators, "{}", w["name"]);
        for a in per_allocator {
            let runs = a["runs"].as_array().unwrap();
            assert_eq!(runs.len(), 1, "{a}");
            assert!(runs[0]["wall_s"].as_f64().unwrap() > 0.0, "{a}");
            assert!(runs[0]["peak_rss"].as_u64().unwrap() > 0, "{a}");
            assert!(runs[0]["outcome"]["ops"].as_u64().unwrap() > 0, "{a}");
            assert!(a["ratio_to_spanalloc"]["wall_s"].is_number(), "{a}");
        }
    }
    let geomeans = json["geomean_ratio_to_spanalloc"].as_array().unwrap();
    assert_eq!(geomeans.len(), allocators.len());
    let phased = json["phased"].as_array().unwrap();
    assert_eq!(phased.len(), allocators.len());
    for p in phased {
        assert!(p["series"].as_array().unwrap().len() >= 2, "{p}");
    }

    let md = std::fs::read_to_string(out.join("latest.md")).unwrap();
    for name in names {
        // One row in each of the four metric tables and in the list of
        // workloads (and, for a profiled run, one in the samples table).
        let rows = md.matches(&format!("| {name} |")).count();
        let sampled = md
            .matches(&format!("| {name} | spanalloc-profiled |"))
            .count();
        assert_eq!(rows - sampled, 5, "{name}:\n{md}");
    }
    for chart in CHARTS {
        let svg = std::fs::read_to_string(out.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{chart}"
        );
        for a in &allocators[1..] {
            assert!(svg.contains(a), "{chart} has no {a}");
        }
    }
    let bars = std::fs::read_to_string(out.join("time.svg")).unwrap();
    assert!(names.iter().all(|n| bars.contains(n.as_str())));
    json
}

#[test]
fn quick_suite_runs_every_workload_under_every_allocator() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-quick");
    quick_suite(&out, &[]);
    let names: Vec<String> = Variant::all().into_iter().map(|v| v.name).collect();
    check_report(&out, &names, &ALLOCATORS);
}

/// `--profiler-cost`: the spanalloc build with the profiler off and the
/// same build sampling; the profiled runs report the profiler's estimate
/// (so it really was on), the others none.
#[test]
fn quick_profiler_cost_runs_every_workload_with_sampling_off_and_on() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-quick-profiler");
    quick_suite(&out, &["--profiler-cost"]);
    let names: Vec<String> = Variant::all().into_iter().map(|v| v.name).collect();
    let json = check_report(&out, &names, &["spanalloc", "spanalloc-profiled"]);
    let mut sampled = 0;
    for w in json["workloads"].as_array().unwrap() {
        let a = w["allocators"].as_array().unwrap();
        let estimate = |i: usize| a[i]["runs"][0]["outcome"]["profiled_alloc_bytes"].clone();
        assert!(estimate(0).is_null(), "{w}");
        let bytes = estimate(1).as_u64().unwrap_or_else(|| panic!("{w}"));
        sampled += usize::from(bytes > 0);
    }
    // At --quick size most workloads allocate several times the mean
    // sampling distance (512 KiB); a profiler that never sampled fails.
    assert!(sampled >= names.len() / 2, "{sampled} workloads sampled");
    let md = std::fs::read_to_string(out.join("latest.md")).unwrap();
    assert!(
        md.contains("- spanalloc-profiled: `SPANALLOC_PROFILE_RATE=512K`"),
        "{md}"
    );
    assert!(
        md.contains("## Samples") && md.contains("| spanalloc-profiled |"),
        "{md}"
    );
}

/// `libspanalloc.so`, built as the C library's own tests build it (`cargo
/// build --release -p spanalloc-c`, so both share one build); cargo's
/// artifact messages say where it is.
fn libspanalloc() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "-p", "spanalloc-c"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run cargo");
    assert!(
        out.status.success(),
        "cargo build --release -p spanalloc-c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.ends_with("libspanalloc.so"))
        .expect("cargo built no libspanalloc.so")
}

/// The C side: every workload (the Rust ones in the system build, the C
/// program's, python3, sqlite3, redis) under spanalloc, glibc and Debian's
/// jemalloc, mimalloc and TCMalloc, all preloaded. Needs the packages of
/// `.ci/install-packages`.
#[test]
fn quick_c_side_runs_every_workload_under_every_c_allocator() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-quick-c");
    let lib = libspanalloc();
    quick_suite(&out, &["--c-side", "--libspanalloc", lib.to_str().unwrap()]);

    let mut names: Vec<String> = Variant::all().into_iter().map(|v| v.name).collect();
    for v in Variant::all() {
        if matches!(
            v.kind,
            Kind::Larson | Kind::ProdCons | Kind::FalseShare | Kind::Churn
        ) {
            names.push(format!("c/{}", v.name));
        }
    }
    names.extend(["python3", "sqlite3", "redis"].map(String::from));
    let json = check_report(&out, &names, &C_ALLOCATORS);

    let config = &json["config"];
    assert_eq!(
        config["left_out"].as_array().unwrap().len(),
        0,
        "left out (run `bash .ci/install-packages`): {}",
        config["left_out"]
    );
    let preloads = config["preloads"].as_array().unwrap();
    assert_eq!(preloads.len(), C_ALLOCATORS.len(), "{preloads:?}");
    assert_eq!(preloads[0][1].as_str().unwrap(), lib.to_str().unwrap());
    let sources = json["geomean_by_source"].as_array().unwrap();
    let sources: Vec<&str> = sources
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["rust", "c", "program"]);
    // Each preload reached the workloads: the C program reports it.
    let c = json["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "c/larson/t2")
        .unwrap();
    for (a, p) in c["allocators"].as_array().unwrap().iter().zip(preloads) {
        assert_eq!(a["runs"][0]["outcome"]["preload"], p[1], "{a}");
    }
    let md = std::fs::read_to_string(out.join("latest.md")).unwrap();
    assert!(md.contains("The same, by kind of workload"), "{md}");
}

/// `--all` runs the three parts, each into its own folder under `--out`.
#[test]
fn quick_all_writes_the_three_parts() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-quick-all");
    let lib = libspanalloc();
    quick_suite(
        &out,
        &[
            "--all",
            "--only",
            "pairs/64",
            "--libspanalloc",
            lib.to_str().unwrap(),
        ],
    );
    for (folder, allocators) in [
        ("", &ALLOCATORS[..]),
        ("c", &C_ALLOCATORS[..]),
        ("profiler", &["spanalloc", "spanalloc-profiled"][..]),
    ] {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(folder).join("latest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["config"]["allocators"], serde_json::json!(allocators));
        assert_eq!(json["workloads"][0]["name"], "pairs/64", "{folder}");
    }
}

#[test]
fn libspanalloc_needs_the_c_side() {
    let out = Command::new(env!("CARGO_BIN_EXE_spanalloc-bench"))
        .args(["suite", "--quick", "--libspanalloc", "/x.so"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--c-side or --all"));
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
