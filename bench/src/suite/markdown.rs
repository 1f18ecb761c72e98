//! The suite's report as markdown: the machine, the summary of ratios, one
//! table per metric (workloads down, allocators across) and the `phased`
//! table, with the charts beside it.

use std::fmt::Write as _;

use super::charts;
use super::results::{Metric, Source, SuiteReport, BASELINE};

/// The whole report, with links to the charts (files in the same folder).
pub fn render(report: &SuiteReport) -> String {
    let m = &report.machine;
    let c = &report.config;
    let mut out = String::from("# spanalloc benchmark suite\n\n");
    let _ = writeln!(
        out,
        "Measured {} on {} ({} cores), {}, {}, {} build. Each workload runs as its own \
         process, {} run{} per allocator, the allocators taking turns run by run; every \
         figure is the median of the runs{}.\n",
        m.date,
        m.cpu_model,
        m.cores,
        m.kernel,
        m.rustc,
        m.profile,
        c.runs,
        if c.runs == 1 { "" } else { "s" },
        if c.quick {
            " (`--quick`: smoke-test sizes, the numbers mean nothing)"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "Load average (1 minute) {:.2} at the start, {:.2} at the end: the machine is \
         shared, and above about 1 other work competes for its two cores.\n",
        m.load_average, c.load_average_at_end
    );
    if !c.preloads.is_empty() {
        out.push_str(
            "C allocators take the C library's place through `LD_PRELOAD`; the Rust \
             workloads then run in the build with Rust's `System` allocator, which calls \
             `malloc`:\n\n",
        );
        for (name, lib) in &c.preloads {
            let _ = writeln!(out, "- {name}: `LD_PRELOAD={lib}`");
        }
        out.push('\n');
        if c.preloads
            .iter()
            .any(|(_, lib)| lib.ends_with("/libc.so.6"))
        {
            out.push_str(
                "glibc is preloaded too, as its own `libc.so.6`: that changes nothing for a \
                 program that takes `malloc` from the C library anyway, but puts glibc's \
                 first in one linked with another allocator (Debian's `redis-server` links \
                 `libjemalloc.so.2`, which it would run otherwise).\n\n",
            );
        }
    }
    if !c.options.is_empty() {
        out.push_str("Options set in the environment of an allocator's runs:\n\n");
        for (name, vars) in &c.options {
            let _ = writeln!(out, "- {name}: `{vars}`");
        }
        out.push('\n');
    }
    if !c.tools.is_empty() {
        out.push_str("Built and run besides the workloads binaries:\n\n");
        for (what, which) in &c.tools {
            let _ = writeln!(out, "- {what}: {which}");
        }
        out.push('\n');
    }
    if !c.left_out.is_empty() {
        out.push_str("Left out, not being installed:\n\n");
        for why in &c.left_out {
            let _ = writeln!(out, "- {why}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Command: `{}`\n", c.command);

    out.push_str("## Summary\n\n");
    let _ = writeln!(
        out,
        "Geometric mean over {} workloads of each allocator's median over spanalloc's: \
         below 1.00 the allocator is faster or smaller than spanalloc, above it slower or \
         bigger.\n",
        report.workloads.len()
    );
    let mut header = vec!["allocator".to_owned()];
    header.extend(Metric::ALL.iter().map(|m| m.title().to_owned()));
    let rows = report
        .geomean_ratio_to_spanalloc
        .iter()
        .map(|(a, g)| {
            let mut row = vec![a.clone()];
            row.extend(Metric::ALL.iter().map(|&m| format!("{:.2}", g.get(m))));
            row
        })
        .collect::<Vec<_>>();
    out.push_str(&table(&header, &rows, 1));
    out.push('\n');
    if !report.geomean_by_source.is_empty() {
        out.push_str(&by_source(report));
    }
    for metric in Metric::ALL {
        let _ = writeln!(
            out,
            "![{}, ratio to spanalloc]({})\n",
            metric.title(),
            charts::bar_chart_file(metric)
        );
    }

    for metric in Metric::ALL {
        let _ = writeln!(out, "## {}\n", metric.title());
        out.push_str(
            "Median of the runs; in brackets, over spanalloc's median. The lowest is in bold.\n\n",
        );
        out.push_str(&metric_table(report, metric));
        out.push('\n');
    }

    if !report.phased.is_empty() {
        out.push_str(&phased_section(report));
    }
    out.push_str(&samples_section(report));
    out.push_str(&workloads_section(report));
    out
}

/// The summary's geometric means again, over the workloads of each source.
fn by_source(report: &SuiteReport) -> String {
    let mut out = String::from("The same, by kind of workload:\n\n");
    let mut header = vec!["workloads".to_owned(), "allocator".to_owned()];
    header.extend(Metric::ALL.iter().map(|m| m.title().to_owned()));
    let mut rows = Vec::new();
    for s in &report.geomean_by_source {
        for (a, g) in s.ratios.iter().filter(|(a, _)| a != BASELINE) {
            let mut row = vec![format!("{} ({})", s.source.title(), s.workloads), a.clone()];
            row.extend(Metric::ALL.iter().map(|&m| format!("{:.2}", g.get(m))));
            rows.push(row);
        }
    }
    out.push_str(&table(&header, &rows, 2));
    out.push('\n');
    out
}

/// For the allocators whose runs report the heap profiler's estimate of
/// the bytes allocated (the profiled build of `--profiler-cost`): how many
/// samples that is, and how many a second, beside the time ratio, since the
/// profiler's cost is per sample. Empty if no run reports one.
fn samples_section(report: &SuiteReport) -> String {
    let mut rows = Vec::new();
    for w in &report.workloads {
        for a in &w.allocators {
            let mut bytes: Vec<u64> = a
                .runs
                .iter()
                .filter_map(|r| r.outcome.profiled_alloc_bytes)
                .collect();
            if bytes.is_empty() {
                continue;
            }
            bytes.sort_unstable();
            let median = bytes[bytes.len() / 2] as f64;
            let samples = median / parse_rate(super::allocators::PROFILED_RATE);
            let ratio = a.ratio_to_spanalloc.as_ref().map_or(1.0, |r| r.wall_s);
            let baseline_s = a.median.wall_s / ratio;
            rows.push(vec![
                w.name.clone(),
                a.allocator.clone(),
                format!("{:.1} GiB", median / f64::from(1u32 << 30)),
                format!("{samples:.0}"),
                format!("{:.0}", samples / baseline_s),
                format!("{ratio:.2}"),
            ]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "
## Samples

",
    );
    let _ = writeln!(
        out,
        "The profiler's own estimate of the bytes each workload allocated (median of the \
         runs), the samples that makes at {} bytes a sample on average, and the samples per \
         second of {BASELINE}'s time. The profiler's cost is per sample: where the last \
         column is large the time ratio shows it; where it is small the ratio shows the \
         machine's noise.\n",
        super::allocators::PROFILED_RATE
    );
    let header = [
        "workload",
        "allocator",
        "allocated",
        "samples",
        "samples per second",
        "wall time ratio",
    ]
    .map(String::from);
    out.push_str(&table(&header, &rows, 2));
    out
}

/// `512K`-style byte counts (the profiler's rate option).
fn parse_rate(rate: &str) -> f64 {
    let (digits, unit) = rate.split_at(rate.trim_end_matches(['K', 'M', 'G']).len());
    let n: f64 = digits.parse().expect("a rate in bytes");
    n * match unit {
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    }
}

/// What each workload does.
fn workloads_section(report: &SuiteReport) -> String {
    let mut out = String::from("\n## The workloads\n\n");
    let sources: Vec<&str> = Source::ALL
        .into_iter()
        .filter(|s| report.workloads.iter().any(|w| w.source == *s))
        .map(|s| match s {
            Source::Rust => "`bench/workloads/src/`",
            Source::C => "`bench/c/workloads.c` (`c/…`)",
            Source::Program => {
                "`bench/programs/` and `bench/src/suite/programs.rs` (python3, sqlite3, redis)"
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "Each runs in a process of its own; `tN` is the number of threads (of \
         producer/consumer pairs for `prodcons`). Source: {}.\n",
        sources.join(", ")
    );
    let header = ["workload", "what it does", "operations per run"].map(String::from);
    let rows: Vec<Vec<String>> = report
        .workloads
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.description.clone(),
                format!("{} {}", w.ops, w.unit),
            ]
        })
        .collect();
    out.push_str(&table(&header, &rows, 2));
    out
}

/// Workloads down, allocators across, for one metric.
fn metric_table(report: &SuiteReport, metric: Metric) -> String {
    let allocators = &report.config.allocators;
    let mut header = vec!["workload".to_owned()];
    header.extend(allocators.iter().cloned());
    let rows: Vec<Vec<String>> = report
        .workloads
        .iter()
        .map(|w| {
            let values: Vec<Option<f64>> = allocators
                .iter()
                .map(|a| w.of(a).map(|r| r.median.get(metric)))
                .collect();
            let best = values
                .iter()
                .flatten()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let mut row = vec![w.name.clone()];
            for (a, v) in allocators.iter().zip(&values) {
                let Some(v) = *v else {
                    row.push("–".to_owned());
                    continue;
                };
                let mut cell = metric.format(v);
                if a != BASELINE {
                    if let Some(r) = w.of(a).and_then(|r| r.ratio_to_spanalloc.as_ref()) {
                        let _ = write!(cell, " ({:.2})", r.get(metric));
                    }
                }
                if v == best {
                    cell = format!("**{cell}**");
                }
                row.push(cell);
            }
            row
        })
        .collect();
    table(&header, &rows, 1)
}

/// The `phased` table and chart.
fn phased_section(report: &SuiteReport) -> String {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1 << 20) as f64);
    let mut out = String::from("## Phased memory: resident size over time\n\n");
    out.push_str(
        "`phased` grows to 1 GiB of live objects (16 B–16 KiB), frees 90% at random, \
         idles 0.3 s, grows back to 1 GiB (64 B–64 KiB), frees 90% again and idles 2 s. \
         Resident size at the end of each phase, from the run with the median peak:\n\n",
    );
    let header = [
        "allocator",
        "peak",
        "1: grown",
        "2: 90% freed",
        "3: regrown",
        "4: 90% freed, 2 s idle (final)",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = report
        .phased
        .iter()
        .map(|p| {
            let mut row = vec![p.allocator.clone(), mib(p.peak_rss)];
            row.extend(p.rss_after_phase.iter().map(|&b| mib(b)));
            row
        })
        .collect();
    out.push_str(&table(&header, &rows, 1));
    let _ = writeln!(
        out,
        "\n![resident size over time in phased]({})",
        charts::PHASED_FILE
    );
    out
}

/// A markdown table whose first `left` columns are left-aligned and the
/// others (numbers) right-aligned.
fn table(header: &[String], rows: &[Vec<String>], left: usize) -> String {
    let mut out = format!("| {} |\n|", header.join(" | "));
    for i in 0..header.len() {
        out.push_str(if i < left { "---|" } else { "---:|" });
    }
    out.push('\n');
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::{about, config, workload, workload_of};
    use super::*;
    use crate::machine::Machine;

    #[test]
    fn tables_have_a_row_per_workload_and_bold_the_best() {
        let mut config = config();
        config.preloads = vec![("spanalloc".into(), "/x/libspanalloc.so".into())];
        let report = SuiteReport::new(Machine::detect(), config, vec![workload()], vec![]);
        let md = render(&report);
        assert!(
            md.contains("| batch | **2.000 s** | 4.000 s (2.00) |"),
            "{md}"
        );
        assert!(
            md.contains("| batch | 100.0 MiB | **50.0 MiB (0.50)** |"),
            "{md}"
        );
        assert!(md.contains("| system | 2.00 |"), "{md}");
        assert!(md.contains("(time.svg)"));
        assert!(
            md.contains("- spanalloc: `LD_PRELOAD=/x/libspanalloc.so`"),
            "{md}"
        );
        assert!(!md.contains("by kind of workload"), "{md}");
        assert!(md.contains("Source: `bench/workloads/src/`."), "{md}");
    }

    #[test]
    fn options_are_listed() {
        let mut config = config();
        config.options = vec![(
            "spanalloc-profiled".into(),
            "SPANALLOC_PROFILE_RATE=512K".into(),
        )];
        let report = SuiteReport::new(Machine::detect(), config, vec![workload()], vec![]);
        let md = render(&report);
        assert!(
            md.contains("- spanalloc-profiled: `SPANALLOC_PROFILE_RATE=512K`"),
            "{md}"
        );
    }

    #[test]
    fn profiled_runs_get_their_samples_counted() {
        let plain = SuiteReport::new(Machine::detect(), config(), vec![workload()], vec![]);
        assert!(!render(&plain).contains("## Samples"));
        let mut w = workload();
        for r in &mut w.allocators[1].runs {
            r.outcome.profiled_alloc_bytes = Some(2 << 30);
        }
        let md = render(&SuiteReport::new(
            Machine::detect(),
            config(),
            vec![w],
            vec![],
        ));
        // 2 GiB at 512 KiB a sample, over spanalloc's median of 2 s.
        assert!(
            md.contains("| batch | system | 2.0 GiB | 4096 | 2048 | 2.00 |"),
            "{md}"
        );
        assert_eq!(parse_rate("512K"), 524288.0);
        assert_eq!(parse_rate("3M"), 3.0 * 1048576.0);
        assert_eq!(parse_rate("100"), 100.0);
    }

    #[test]
    fn c_side_sections() {
        let mut config = config();
        config.preloads = vec![("system".into(), "/usr/lib/libc.so.6".into())];
        config.tools = vec![("python3".into(), "Python 3.11.7".into())];
        config.left_out = vec!["redis: redis-server is not installed".into()];
        let workloads = vec![
            workload(),
            workload_of(&about("c/larson/t2", Source::C), 2.0),
        ];
        let report = SuiteReport::new(Machine::detect(), config, workloads, vec![]);
        let md = render(&report);
        for want in [
            "glibc is preloaded too",
            "- python3: Python 3.11.7",
            "- redis: redis-server is not installed",
            "| Rust workloads (1) | system | 2.00 |",
            "| C program (1) | system | 4.00 |",
            "(`c/…`)",
            "| c/larson/t2 |",
        ] {
            assert!(md.contains(want), "no {want:?} in\n{md}");
        }
    }
}
