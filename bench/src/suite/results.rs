//! The suite's results: every run of every workload under every allocator,
//! their medians, the ratios to spanalloc and the geometric means.
//!
//! A ratio is an allocator's median over spanalloc's median on the same
//! workload, so spanalloc is always 1.00 and above 1.00 means the allocator
//! took longer, or used more memory or page faults, than spanalloc. Across
//! workloads the ratios are summarised by their geometric mean, the average
//! that treats 2x and 0.5x as cancelling out.

use serde::Serialize;

use super::child::RunMetrics;
use crate::machine::Machine;
use crate::measure::{geometric_mean, median};

/// The allocator every ratio is relative to.
pub const BASELINE: &str = "spanalloc";

/// A measured quantity of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Wall-clock time.
    Wall,
    /// User plus system CPU time.
    Cpu,
    /// Peak resident set size.
    PeakRss,
    /// Minor page faults.
    MinorFaults,
}

impl Metric {
    /// All of them, in report order.
    pub const ALL: [Metric; 4] = [
        Metric::Wall,
        Metric::Cpu,
        Metric::PeakRss,
        Metric::MinorFaults,
    ];

    /// A heading for tables and charts.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Wall => "Wall time",
            Metric::Cpu => "CPU time (user + system)",
            Metric::PeakRss => "Peak resident set size",
            Metric::MinorFaults => "Minor page faults",
        }
    }

    /// The value of this metric in `run`.
    pub fn of(self, run: &RunMetrics) -> f64 {
        match self {
            Metric::Wall => run.usage.wall_s,
            Metric::Cpu => run.cpu_s(),
            Metric::PeakRss => run.usage.peak_rss as f64,
            Metric::MinorFaults => run.usage.minor_faults as f64,
        }
    }

    /// `value` in this metric's unit, for a table cell.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Wall | Metric::Cpu => format!("{value:.3} s"),
            Metric::PeakRss => format!("{:.1} MiB", value / (1 << 20) as f64),
            Metric::MinorFaults if value >= 10_000.0 => format!("{:.0}k", value / 1e3),
            Metric::MinorFaults => format!("{value:.0}"),
        }
    }
}

/// The medians of one allocator's runs, one per [`Metric`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Medians {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds.
    pub cpu_s: f64,
    /// Peak resident size, bytes.
    pub peak_rss: f64,
    /// Minor page faults.
    pub minor_faults: f64,
}

impl Medians {
    /// The medians of `runs` (which must not be empty).
    fn of(runs: &[RunMetrics]) -> Self {
        let m = |metric: Metric| median(&runs.iter().map(|r| metric.of(r)).collect::<Vec<_>>());
        Self {
            wall_s: m(Metric::Wall),
            cpu_s: m(Metric::Cpu),
            peak_rss: m(Metric::PeakRss),
            minor_faults: m(Metric::MinorFaults),
        }
    }

    /// The median of `metric`.
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Wall => self.wall_s,
            Metric::Cpu => self.cpu_s,
            Metric::PeakRss => self.peak_rss,
            Metric::MinorFaults => self.minor_faults,
        }
    }

    /// Each median over `base`'s (a zero over a zero counts as 1).
    fn over(&self, base: &Medians) -> Medians {
        let r = |metric| ratio(self.get(metric), base.get(metric));
        Medians {
            wall_s: r(Metric::Wall),
            cpu_s: r(Metric::Cpu),
            peak_rss: r(Metric::PeakRss),
            minor_faults: r(Metric::MinorFaults),
        }
    }
}

/// `a / b`, with `0 / 0 = 1` and anything over 0 counted over 1.
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        if a == 0.0 {
            1.0
        } else {
            a
        }
    } else {
        a / b
    }
}

/// Where a workload comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `spanalloc_workloads`, built into a Rust binary.
    Rust,
    /// The C program, `bench/c/workloads.c`.
    C,
    /// A real program: python3, sqlite3, redis-server.
    Program,
}

impl Source {
    /// All of them, in report order.
    pub const ALL: [Source; 3] = [Source::Rust, Source::C, Source::Program];

    /// A heading for the summary.
    pub fn title(self) -> &'static str {
        match self {
            Source::Rust => "Rust workloads",
            Source::C => "C program",
            Source::Program => "real programs",
        }
    }
}

/// What a workload is, as the report describes it.
#[derive(Clone, Debug)]
pub struct About {
    /// Its name, e.g. `larson/t8`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What its operations are.
    pub unit: String,
    /// Threads (pairs, for `prodcons`).
    pub threads: usize,
    /// Where it comes from.
    pub source: Source,
}

/// One allocator's results on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct AllocatorResult {
    /// The allocator's name.
    pub allocator: String,
    /// Medians over the runs.
    pub median: Medians,
    /// Medians over the baseline's medians; `None` without a baseline.
    pub ratio_to_spanalloc: Option<Medians>,
    /// Every run, in the order measured (without `phased`'s time series).
    pub runs: Vec<RunMetrics>,
}

/// One workload's results.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    /// The workload's name, e.g. `larson/t8`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What its operations are.
    pub unit: String,
    /// Threads (pairs, for `prodcons`).
    pub threads: usize,
    /// Where it comes from.
    pub source: Source,
    /// Operations per run.
    pub ops: u64,
    /// One entry per allocator, in the suite's order.
    pub allocators: Vec<AllocatorResult>,
}

impl WorkloadResult {
    /// Summarises the runs of each allocator (`runs[i]` belongs to
    /// `allocators[i]`); `phased`'s time series are moved out first.
    pub fn new(about: &About, allocators: &[String], runs: Vec<Vec<RunMetrics>>) -> Self {
        let medians: Vec<Medians> = runs.iter().map(|r| Medians::of(r)).collect();
        let base = allocators.iter().position(|a| a == BASELINE);
        let ops = runs
            .iter()
            .flatten()
            .map(|r| r.outcome.ops)
            .next()
            .unwrap_or(0);
        let allocators = allocators
            .iter()
            .zip(runs)
            .zip(&medians)
            .map(|((name, runs), median)| AllocatorResult {
                allocator: name.clone(),
                median: median.clone(),
                ratio_to_spanalloc: base.map(|b| median.over(&medians[b])),
                runs,
            })
            .collect();
        Self {
            name: about.name.clone(),
            description: about.description.clone(),
            unit: about.unit.clone(),
            threads: about.threads,
            source: about.source,
            ops,
            allocators,
        }
    }

    /// The result of `allocator`, if it ran.
    pub fn of(&self, allocator: &str) -> Option<&AllocatorResult> {
        self.allocators.iter().find(|a| a.allocator == allocator)
    }
}

/// The resident size over time of one allocator's `phased` run.
#[derive(Clone, Debug, Serialize)]
pub struct PhasedSeries {
    /// The allocator's name.
    pub allocator: String,
    /// Peak resident size of the run (`ru_maxrss`), bytes.
    pub peak_rss: u64,
    /// Resident size at the end of the last phase (10% live, after the idle
    /// time), bytes.
    pub final_rss: u64,
    /// Resident size at the end of each of the four phases, bytes.
    pub rss_after_phase: [u64; 4],
    /// `(milliseconds, bytes)` samples.
    pub series: Vec<spanalloc_workloads::rss::Sample>,
}

/// The settings of a suite run.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteConfig {
    /// Runs per workload and allocator.
    pub runs: usize,
    /// Whether the workloads ran at their `--quick` size.
    pub quick: bool,
    /// The allocators, in the order of each first run.
    pub allocators: Vec<String>,
    /// The C libraries preloaded, by allocator name: `(name, library)`.
    pub preloads: Vec<(String, String)>,
    /// The options set for an allocator's runs, by allocator name:
    /// `(name, "VAR=VALUE ...")`.
    pub options: Vec<(String, String)>,
    /// The command that runs the suite this way.
    pub command: String,
    /// The programs built or run besides the workloads binaries, as
    /// `(what, which)`: the C compiler, python3, sqlite3, redis-server.
    pub tools: Vec<(String, String)>,
    /// The allocators and workloads left out (not installed), and why.
    pub left_out: Vec<String>,
    /// The 1-minute load average when the suite finished (the one when it
    /// started is in the machine description).
    pub load_average_at_end: f64,
}

/// Everything a suite run produced.
#[derive(Clone, Debug, Serialize)]
pub struct SuiteReport {
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub config: SuiteConfig,
    /// One entry per workload, in catalogue order.
    pub workloads: Vec<WorkloadResult>,
    /// Per allocator, the geometric mean over the workloads of each ratio to
    /// spanalloc.
    pub geomean_ratio_to_spanalloc: Vec<(String, Medians)>,
    /// The same over the workloads of each source, when there is more than
    /// one.
    pub geomean_by_source: Vec<SourceGeomean>,
    /// The `phased` workload's resident size over time, per allocator (the
    /// run with the median peak), if it ran.
    pub phased: Vec<PhasedSeries>,
}

impl SuiteReport {
    /// Builds the summary of `workloads`.
    pub fn new(
        machine: Machine,
        config: SuiteConfig,
        workloads: Vec<WorkloadResult>,
        phased: Vec<PhasedSeries>,
    ) -> Self {
        let geomean_ratio_to_spanalloc = geomeans(&config.allocators, &workloads);
        let sources: Vec<Source> = Source::ALL
            .into_iter()
            .filter(|s| workloads.iter().any(|w| w.source == *s))
            .collect();
        let geomean_by_source = if sources.len() > 1 {
            sources
                .into_iter()
                .map(|source| {
                    let mine: Vec<WorkloadResult> = workloads
                        .iter()
                        .filter(|w| w.source == source)
                        .cloned()
                        .collect();
                    SourceGeomean {
                        source,
                        workloads: mine.len(),
                        ratios: geomeans(&config.allocators, &mine),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            machine,
            config,
            workloads,
            geomean_ratio_to_spanalloc,
            geomean_by_source,
            phased,
        }
    }
}

/// The geometric means over the workloads of one source.
#[derive(Clone, Debug, Serialize)]
pub struct SourceGeomean {
    /// Which source.
    pub source: Source,
    /// How many workloads it has.
    pub workloads: usize,
    /// Per allocator, the geometric mean of each ratio to spanalloc.
    pub ratios: Vec<(String, Medians)>,
}

/// Per allocator, the geometric mean over `workloads` of each ratio to
/// spanalloc.
fn geomeans(allocators: &[String], workloads: &[WorkloadResult]) -> Vec<(String, Medians)> {
    allocators
        .iter()
        .map(|a| {
            let ratios: Vec<&Medians> = workloads
                .iter()
                .filter_map(|w| w.of(a)?.ratio_to_spanalloc.as_ref())
                .collect();
            let g = |metric: Metric| {
                let values: Vec<f64> = ratios.iter().map(|r| r.get(metric)).collect();
                geometric_mean(&values).unwrap_or(f64::NAN)
            };
            let means = Medians {
                wall_s: g(Metric::Wall),
                cpu_s: g(Metric::Cpu),
                peak_rss: g(Metric::PeakRss),
                minor_faults: g(Metric::MinorFaults),
            };
            (a.clone(), means)
        })
        .collect()
}

/// Takes the time series out of `runs` (all of one allocator on `phased`)
/// and keeps the one of the run with the median peak resident size.
pub fn take_phased_series(allocator: &str, runs: &mut [RunMetrics]) -> Option<PhasedSeries> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| runs[i].usage.peak_rss);
    let pick = *order.get(order.len() / 2)?;
    let mut chosen = None;
    for (i, run) in runs.iter_mut().enumerate() {
        let series = run.outcome.rss_series.take();
        if i == pick {
            let phases = run.outcome.rss_after_phase.unwrap_or_default();
            chosen = Some(PhasedSeries {
                allocator: allocator.to_owned(),
                peak_rss: run.usage.peak_rss,
                final_rss: phases[3],
                rss_after_phase: phases,
                series: series.unwrap_or_default(),
            });
        }
    }
    chosen
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use spanalloc_workloads::Outcome;

    /// A run with the given wall time and peak resident size.
    pub(crate) fn run(wall_s: f64, peak_rss: u64) -> RunMetrics {
        RunMetrics {
            usage: crate::suite::child::Usage {
                wall_s,
                user_s: wall_s / 2.0,
                sys_s: wall_s / 4.0,
                peak_rss,
                minor_faults: peak_rss / 4096,
                context_switches: 0,
            },
            outcome: Outcome {
                name: "batch".into(),
                allocator: "x".into(),
                preload: None,
                quick: true,
                ops: 10,
                checksum: Some(1),
                elapsed_s: wall_s,
                final_rss: 0,
                rss_after_phase: None,
                rss_series: None,
                profiled_alloc_bytes: None,
            },
        }
    }

    pub(crate) fn about(name: &str, source: Source) -> About {
        About {
            name: name.to_owned(),
            description: "test".to_owned(),
            unit: "objects".to_owned(),
            threads: 1,
            source,
        }
    }

    pub(crate) fn workload() -> WorkloadResult {
        workload_of(&about("batch", Source::Rust), 1.0)
    }

    /// A workload on which "system" is `scale` times as slow as in
    /// [`workload`].
    pub(crate) fn workload_of(about: &About, scale: f64) -> WorkloadResult {
        let names: Vec<String> = ["spanalloc", "system"].map(String::from).to_vec();
        WorkloadResult::new(
            about,
            &names,
            vec![
                vec![
                    run(1.0, 100 << 20),
                    run(3.0, 100 << 20),
                    run(2.0, 300 << 20),
                ],
                vec![
                    run(4.0 * scale, 50 << 20),
                    run(4.0 * scale, 50 << 20),
                    run(5.0 * scale, 50 << 20),
                ],
            ],
        )
    }

    #[test]
    fn medians_and_ratios() {
        let w = workload();
        let span = w.of("spanalloc").unwrap();
        assert_eq!(span.median.wall_s, 2.0);
        assert_eq!(span.ratio_to_spanalloc.as_ref().unwrap().wall_s, 1.0);
        let sys = w.of("system").unwrap().ratio_to_spanalloc.clone().unwrap();
        assert_eq!(sys.wall_s, 2.0);
        assert_eq!(sys.peak_rss, 0.5);
        assert_eq!(w.ops, 10);
    }

    pub(crate) fn config() -> SuiteConfig {
        SuiteConfig {
            runs: 3,
            quick: true,
            allocators: vec!["spanalloc".into(), "system".into()],
            preloads: vec![],
            options: vec![],
            command: "suite".into(),
            tools: vec![],
            left_out: vec![],
            load_average_at_end: 0.5,
        }
    }

    #[test]
    fn geomean_over_workloads() {
        let report = SuiteReport::new(
            Machine::detect(),
            config(),
            vec![workload(), workload()],
            vec![],
        );
        let (name, g) = &report.geomean_ratio_to_spanalloc[1];
        assert_eq!(name, "system");
        assert!((g.wall_s - 2.0).abs() < 1e-12);
        assert!(report.geomean_by_source.is_empty());
    }

    #[test]
    fn geomean_by_source_when_there_are_several() {
        let workloads = vec![
            workload(),
            workload_of(&about("c/x", Source::C), 4.0),
            workload_of(&about("c/y", Source::C), 4.0),
        ];
        let report = SuiteReport::new(Machine::detect(), config(), workloads, vec![]);
        let by: Vec<(Source, usize, f64)> = report
            .geomean_by_source
            .iter()
            .map(|s| (s.source, s.workloads, s.ratios[1].1.wall_s))
            .collect();
        assert_eq!(by.len(), 2);
        assert_eq!((by[0].0, by[0].1), (Source::Rust, 1));
        assert_eq!((by[1].0, by[1].1), (Source::C, 2));
        assert!((by[0].2 - 2.0).abs() < 1e-12 && (by[1].2 - 8.0).abs() < 1e-12);
        // Overall: the geometric mean of 2, 8 and 8.
        let all = report.geomean_ratio_to_spanalloc[1].1.wall_s;
        assert!((all - 128f64.cbrt()).abs() < 1e-9);
    }

    #[test]
    fn ratio_of_zeroes() {
        assert_eq!(ratio(0.0, 0.0), 1.0);
        assert_eq!(ratio(5.0, 0.0), 5.0);
        assert_eq!(ratio(1.0, 4.0), 0.25);
    }

    #[test]
    fn phased_series_of_the_median_run() {
        let mut runs = vec![run(1.0, 30), run(1.0, 10), run(1.0, 20)];
        for (i, r) in runs.iter_mut().enumerate() {
            r.outcome.rss_series = Some(vec![spanalloc_workloads::rss::Sample {
                ms: i as u64,
                rss: 1,
            }]);
        }
        let s = take_phased_series("system", &mut runs).unwrap();
        assert_eq!(s.peak_rss, 20);
        assert_eq!(s.series[0].ms, 2);
        assert!(runs.iter().all(|r| r.outcome.rss_series.is_none()));
    }
}
