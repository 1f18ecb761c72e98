//! Presenting results: a header, a markdown table per workload, a summary of
//! ratios, and all of it again as JSON.
//!
//! Every ratio is one allocator's median divided by another's, so below 1.00x
//! means faster. The geometric mean is the average used across workloads,
//! since it treats 2x faster and 2x slower as cancelling out.

use std::fmt::Write as _;

use serde::Serialize;

use crate::allocators::{Allocator, CallMode};
use crate::machine::Machine;
use crate::measure::{geometric_mean, Measurement, Stats};

/// The settings a run was made with.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Timed rounds per workload.
    pub rounds: usize,
    /// Intended length of one measurement, in milliseconds.
    pub target_ms: f64,
    /// Objects per batch in the batch workloads.
    pub batch_size: usize,
    /// Seed of the sizes and free order.
    pub seed: u64,
    /// Whether this was a `--quick` smoke-test run.
    pub quick: bool,
    /// How the allocators were called.
    pub calls: CallMode,
}

/// One allocator's result on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Which allocator.
    pub allocator: Allocator,
    /// Median over the rounds, in nanoseconds per operation.
    pub median_ns: f64,
    /// Fastest round.
    pub min_ns: f64,
    /// Slowest round.
    pub max_ns: f64,
    /// `median_ns` over mimalloc's.
    pub ratio_to_mimalloc: Option<f64>,
    /// `median_ns` over the system allocator's.
    pub ratio_to_system: Option<f64>,
    /// Every round, in the order measured.
    pub samples_ns: Vec<f64>,
}

/// The results of one workload.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    /// Workload name, e.g. `pairs/64`.
    pub name: String,
    /// What one operation is.
    pub unit: String,
    /// Iterations per measurement.
    pub iterations: u64,
    /// Operations per iteration.
    pub ops_per_iteration: u64,
    /// One row per allocator, in the order of `Allocator::ALL`.
    pub rows: Vec<Row>,
}

impl WorkloadReport {
    /// Turns the raw samples of `measurement` into rows and ratios.
    pub fn new(name: &str, unit: &str, measurement: Measurement) -> Self {
        let medians: Vec<(Allocator, f64)> = measurement
            .samples
            .iter()
            .map(|(a, samples)| (*a, Stats::of(samples).median))
            .collect();
        let median_of = |wanted| medians.iter().find(|(a, _)| *a == wanted).map(|m| m.1);
        let rows = measurement
            .samples
            .into_iter()
            .map(|(allocator, samples_ns)| {
                let stats = Stats::of(&samples_ns);
                Row {
                    allocator,
                    median_ns: stats.median,
                    min_ns: stats.min,
                    max_ns: stats.max,
                    ratio_to_mimalloc: median_of(Allocator::Mimalloc).map(|m| stats.median / m),
                    ratio_to_system: median_of(Allocator::System).map(|s| stats.median / s),
                    samples_ns,
                }
            })
            .collect();
        Self {
            name: name.to_owned(),
            unit: unit.to_owned(),
            iterations: measurement.iterations,
            ops_per_iteration: measurement.ops_per_iteration,
            rows,
        }
    }

    /// `of`'s median over `to`'s, if both were measured.
    pub fn ratio(&self, of: Allocator, to: Allocator) -> Option<f64> {
        let median = |wanted| {
            self.rows
                .iter()
                .find(|r| r.allocator == wanted)
                .map(|r| r.median_ns)
        };
        Some(median(of)? / median(to)?)
    }

    /// The workload's section: a heading, a caption and the table.
    pub fn markdown(&self, rounds: usize) -> String {
        let mut out = format!("### {}\n\n", self.name);
        let ops = self.iterations * self.ops_per_iteration;
        let _ = writeln!(
            out,
            "{}; {rounds} rounds of {} operations each.\n",
            self.unit,
            thousands(ops)
        );
        let header = [
            "allocator",
            "median ns/op",
            "min",
            "max",
            "vs mimalloc",
            "vs system",
        ];
        let body: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.allocator.name().to_owned(),
                    format!("{:.2}", r.median_ns),
                    format!("{:.2}", r.min_ns),
                    format!("{:.2}", r.max_ns),
                    times(r.ratio_to_mimalloc),
                    times(r.ratio_to_system),
                ]
            })
            .collect();
        out.push_str(&table(&header, &body));
        out
    }

    /// `name: spanalloc/mimalloc = 0.93x, spanalloc/system = 0.45x`.
    pub fn summary_line(&self) -> String {
        format!(
            "{}: spanalloc/mimalloc = {}, spanalloc/system = {}",
            self.name,
            times(self.ratio(Allocator::SpanAlloc, Allocator::Mimalloc)),
            times(self.ratio(Allocator::SpanAlloc, Allocator::System)),
        )
    }
}

/// Geometric means of spanalloc's ratios over all workloads.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Geomean {
    /// Of spanalloc/mimalloc.
    pub spanalloc_over_mimalloc: Option<f64>,
    /// Of spanalloc/system.
    pub spanalloc_over_system: Option<f64>,
}

impl Geomean {
    /// Over every workload in `workloads` that measured both allocators.
    pub fn of(workloads: &[WorkloadReport]) -> Self {
        let over = |to| {
            let ratios: Vec<f64> = workloads
                .iter()
                .filter_map(|w| w.ratio(Allocator::SpanAlloc, to))
                .collect();
            geometric_mean(&ratios)
        };
        Self {
            spanalloc_over_mimalloc: over(Allocator::Mimalloc),
            spanalloc_over_system: over(Allocator::System),
        }
    }
}

/// A whole run: what `--json` writes.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub config: Config,
    /// The results, in the order run.
    pub workloads: Vec<WorkloadReport>,
    /// The averages over all workloads.
    pub geomean: Geomean,
}

/// The lines printed before any result.
pub fn header(machine: &Machine, config: &Config, allocators: &[Allocator]) -> String {
    let mut out = String::from("# spanalloc-bench\n\n");
    let _ = writeln!(
        out,
        "- machine: {}, {} cores, {}",
        machine.cpu_model, machine.cores, machine.kernel
    );
    let _ = writeln!(
        out,
        "- build: {}; the program itself runs on spanalloc (#[global_allocator])",
        machine.profile
    );
    let order: Vec<&str> = allocators.iter().map(|a| a.name()).collect();
    let _ = writeln!(
        out,
        "- method: per workload, one warm-up run each, then {} rounds alternating {} \
         (each round starting one further along; ~{} ms per measurement); \
         median, min and max over the rounds",
        config.rounds,
        order.join(", "),
        config.target_ms
    );
    let _ = writeln!(
        out,
        "- calls: {}",
        match config.calls {
            CallMode::GlobalAllocShim =>
                "one non-inlined call per alloc and per free, as a program calls its \
                 #[global_allocator] (--inline to let the compiler inline them)",
            CallMode::Inline =>
                "direct, inlined where the compiler can (--inline); a Rust allocator \
                 gains from this, a C one cannot: not how a #[global_allocator] is called",
        }
    );
    let _ = writeln!(
        out,
        "- ratios: median / the other allocator's median; below 1.00x is faster"
    );
    if config.quick {
        out.push_str(
            "- QUICK MODE: a smoke test with short measurements; do not quote these numbers\n",
        );
    }
    if machine.profile == "debug" {
        out.push_str("- WARNING: debug build; run with --release for meaningful numbers\n");
    }
    out
}

/// The closing section: one line per workload and the geometric means.
pub fn summary(workloads: &[WorkloadReport], geomean: &Geomean) -> String {
    let mut out = String::from("## Summary\n\n");
    for w in workloads {
        out.push_str(&w.summary_line());
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\ngeometric mean over {} workloads: spanalloc/mimalloc = {}, spanalloc/system = {}",
        workloads.len(),
        times(geomean.spanalloc_over_mimalloc),
        times(geomean.spanalloc_over_system),
    );
    out
}

/// A ratio as `0.93x`, or `n/a`.
fn times(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A markdown table with padded columns: the first left-aligned, the rest
/// right-aligned (they are numbers).
fn table<const N: usize>(header: &[&str; N], body: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::from("|");
        for (i, (cell, w)) in cells.zip(widths).enumerate() {
            if i == 0 {
                let _ = write!(out, " {cell:<w$} |");
            } else {
                let _ = write!(out, " {cell:>w$} |");
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(w.saturating_sub(1).max(2));
        if i == 0 {
            let _ = write!(out, " :{dashes} |");
        } else {
            let _ = write!(out, " {dashes}: |");
        }
    }
    out.push('\n');
    for row in body {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WorkloadReport {
        WorkloadReport::new(
            "pairs/64",
            "ns per alloc+free pair",
            Measurement {
                iterations: 1000,
                ops_per_iteration: 1,
                samples: vec![
                    (Allocator::SpanAlloc, vec![9.0, 10.0, 11.0]),
                    (Allocator::System, vec![20.0, 21.0, 19.0]),
                    (Allocator::Mimalloc, vec![8.0, 8.0, 8.0]),
                ],
            },
        )
    }

    #[test]
    fn ratios_are_medians_over_medians() {
        let w = sample();
        assert_eq!(w.ratio(Allocator::SpanAlloc, Allocator::System), Some(0.5));
        assert_eq!(w.rows[2].ratio_to_mimalloc, Some(1.0));
        assert_eq!(w.rows[0].ratio_to_mimalloc, Some(1.25));
        assert_eq!(
            w.summary_line(),
            "pairs/64: spanalloc/mimalloc = 1.25x, spanalloc/system = 0.50x"
        );
    }

    #[test]
    fn table_has_a_row_per_allocator() {
        let md = sample().markdown(3);
        assert!(md.starts_with("### pairs/64\n"));
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 5, "{md}");
        assert!(rows[1].starts_with("| :"));
        assert!(rows[2].starts_with("| spanalloc ") && rows[2].contains("1.25x"));
        let width = rows[0].len();
        assert!(rows.iter().all(|r| r.len() == width), "{md}");
    }

    #[test]
    fn geomean_over_workloads() {
        let g = Geomean::of(&[sample(), sample()]);
        assert!((g.spanalloc_over_mimalloc.unwrap() - 1.25).abs() < 1e-12);
        assert!(summary(&[sample()], &g).contains("spanalloc/system = 0.50x"));
        assert_eq!(Geomean::of(&[]).spanalloc_over_system, None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
