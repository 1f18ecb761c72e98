//! spanalloc served the allocations: its statistics report, printed at exit
//! with `SPANALLOC_STATS`, on demand by `malloc_stats()` and
//! `spanalloc_print_stats(fd)`.

use crate::c_semantics::SEMANTICS;
use crate::harness::{run, BOTH};
use std::time::Duration;

/// With `SPANALLOC_STATS=1` the report appears on stderr at exit and counts
/// the program's 100,000 allocations (and as many frees).
#[test]
fn report_at_exit() {
    for link in BOTH {
        let mut cmd = SEMANTICS.command(link, &["workload"]);
        cmd.env("SPANALLOC_STATS", "1");
        let out = run(&mut cmd, Duration::from_secs(60));
        out.assert_success().assert_stdout_has("workload done");
        let reports = out.reports();
        assert_eq!(reports.len(), 1, "one report expected\n{out}");
        let r = out.assert_report(100_000);
        assert!(r.frees >= 100_000, "frees not counted: {r:?}\n{out}");
    }
}

/// `SPANALLOC_STATS=json` prints the report as JSON.
#[test]
fn report_at_exit_as_json() {
    let mut cmd = SEMANTICS.command(BOTH[1], &["workload"]);
    cmd.env("SPANALLOC_STATS", "json");
    let out = run(&mut cmd, Duration::from_secs(60));
    out.assert_success();
    let json = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{') && l.contains("\"classes\""))
        .unwrap_or_else(|| panic!("no JSON report\n{out}"));
    assert!(
        json.ends_with('}') && json.contains("\"allocs\":"),
        "{json}"
    );
}

/// Without `SPANALLOC_STATS`, nothing is printed at exit.
#[test]
fn no_report_by_default() {
    for link in BOTH {
        let out = run(
            &mut SEMANTICS.command(link, &["workload"]),
            Duration::from_secs(60),
        );
        out.assert_success();
        assert!(out.reports().is_empty(), "unexpected report\n{out}");
    }
}

/// `malloc_stats()` writes the report on stderr and
/// `spanalloc_print_stats(1)` on stdout, while the program runs.
#[test]
fn report_on_demand() {
    for link in BOTH {
        let out = run(
            &mut SEMANTICS.command(link, &["stats"]),
            Duration::from_secs(60),
        );
        out.assert_success()
            .assert_stderr_has("spanalloc statistics")
            .assert_stdout_has("spanalloc statistics");
        out.assert_report(1);
    }
}

/// `spanalloc_dump_heap(path)` writes the heap dump of the running program:
/// one JSON object whose spans include the 64 live 1000-byte blocks.
#[test]
fn heap_dump_on_demand() {
    for link in BOTH {
        let dir = crate::harness::scratch_dir("dump");
        let path = dir.join("heap.json");
        let mut cmd = SEMANTICS.command(link, &["dump"]);
        cmd.env("DUMP_PATH", &path);
        let out = run(&mut cmd, Duration::from_secs(60));
        out.assert_success().assert_stdout_has("dump written");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\"version\":1,") && text.trim_end().ends_with('}'),
            "{text}"
        );
        let size_1000 = spanalloc::sizeclass::class_for(1000, 16).unwrap();
        let needle = format!("\"state\":\"small\",\"class\":{size_1000},");
        assert!(
            text.contains(&needle),
            "no span of the 1000-byte class in the dump"
        );
    }
}
