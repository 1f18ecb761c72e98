//! `spanalloc-bench suite`: every workload of `spanalloc_workloads`, each in
//! a process of its own, under each allocator, measured from outside.
//!
//! 1. **Build** the workload binaries (`workloads-spanalloc`, `-system`,
//!    `-mimalloc`, `-jemalloc`: the same code, four `#[global_allocator]`s)
//!    with cargo, in the driver's own profile, unless `--bin-dir` names
//!    binaries already built. With `--c-side`, the allocators are C
//!    libraries preloaded into the system build instead ([`allocators`]),
//!    and two more kinds of workload join: the C program ([`cprogram`],
//!    compiled here with `cc`) and real programs ([`programs`]: python3,
//!    sqlite3, redis-server), under the same preloads ([`jobs`]).
//! 2. **Run** each workload `--runs` times under each allocator, the
//!    allocators taking turns run by run; each round starts one allocator
//!    further along (`A B C D`, `B C D A`, ...), so that none always runs
//!    first or always after the same one. A noisy neighbour then slows all of
//!    them alike, and whatever one run leaves behind (page cache, CPU
//!    frequency) is spread evenly. Each run is a fresh process, measured by
//!    [`child`].
//! 3. **Check** that the deterministic workloads computed the same checksum
//!    under every allocator: an allocator that corrupts memory fails the suite.
//! 4. **Report** the medians, the ratios to spanalloc and their geometric
//!    means ([`results`]) as markdown ([`markdown`]), JSON and SVG charts
//!    ([`charts`]) in the output folder, and the summary on stdout.

mod allocators;
mod charts;
mod child;
mod cprogram;
mod jobs;
mod markdown;
mod programs;
mod results;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::machine::Machine;
use jobs::{Job, Kit};
use results::{Metric, SuiteConfig, SuiteReport, WorkloadResult};

/// The command line of `spanalloc-bench suite`.
#[derive(Clone, Debug, clap::Args)]
pub struct SuiteArgs {
    /// Smoke test: every workload at a tiny size, one run per allocator
    /// (unless --runs says otherwise). Checks that everything runs, not how
    /// fast.
    #[arg(long)]
    quick: bool,

    /// Runs of each workload under each allocator; the median is reported
    /// [default: 5, or 1 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    runs: Option<u32>,

    /// Run only the workloads whose name contains PATTERN (repeatable), e.g.
    /// `larson`, `pairs/64` or `t8`.
    #[arg(long, value_name = "PATTERN")]
    only: Vec<String>,

    /// The allocators to compare, comma-separated: NAME for the build with
    /// that #[global_allocator] (spanalloc, system, mimalloc, jemalloc), or
    /// NAME=LIB.so for the system build with LIB.so in LD_PRELOAD.
    #[arg(long, value_delimiter = ',', default_values_t = allocators::RUST.map(String::from))]
    allocators: Vec<String>,

    /// Compare C libraries instead, each in LD_PRELOAD: libspanalloc.so
    /// (built from crates/spanalloc-c), glibc, and Debian's libjemalloc2,
    /// libmimalloc2.0 and libtcmalloc-minimal4 where installed; under the
    /// system build of the workloads, the C program bench/c/workloads.c
    /// (`c/...`, compiled with cc), python3, sqlite3 and redis-server.
    #[arg(long, conflicts_with = "allocators")]
    c_side: bool,

    /// Measure the heap profiler's cost instead: spanalloc as it runs by
    /// default (profiler off) against the same build sampling at the
    /// default rate (`spanalloc-profiled`: SPANALLOC_PROFILE_RATE=512K, no
    /// profile written), on every workload.
    #[arg(long, conflicts_with_all = ["allocators", "c_side"])]
    profiler_cost: bool,

    /// The whole comparison, one part after the other: the Rust allocators
    /// (bench/results), the C allocators (--c-side, bench/results/c) and
    /// the profiler's cost (--profiler-cost, bench/results/profiler); with
    /// --out DIR, into DIR, DIR/c and DIR/profiler.
    #[arg(long, conflicts_with_all = ["allocators", "c_side", "profiler_cost"])]
    all: bool,

    /// With --c-side (or --all), preload this libspanalloc.so rather than
    /// the one in the binaries' folder.
    #[arg(long, value_name = "PATH")]
    libspanalloc: Option<PathBuf>,

    /// Where to write latest.md, latest.json and the SVG charts
    /// [default: bench/results, bench/results/c with --c-side,
    /// bench/results/profiler with --profiler-cost].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Run the workloads-* binaries found in DIR instead of building them.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,

    /// Kill a run that takes longer than this many seconds (and fail).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
}

/// Runs the suite as `args` say (with `--all`, each of its parts in turn).
pub fn main(args: SuiteArgs) -> ExitCode {
    if args.libspanalloc.is_some() && !(args.c_side || args.all) {
        eprintln!("spanalloc-bench suite: --libspanalloc goes with --c-side or --all");
        return ExitCode::from(2);
    }
    let parts = if args.all {
        let part = |c_side, profiler_cost, folder: &str| SuiteArgs {
            c_side,
            profiler_cost,
            all: false,
            out: args.out.as_ref().map(|o| o.join(folder)),
            libspanalloc: args.libspanalloc.clone().filter(|_| c_side),
            ..args.clone()
        };
        vec![
            part(false, false, ""),
            part(true, false, "c"),
            part(false, true, "profiler"),
        ]
    } else {
        vec![args]
    };
    for part in &parts {
        if let Err(e) = run(part) {
            eprintln!("spanalloc-bench suite: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The suite, start to end.
fn run(args: &SuiteArgs) -> Result<(), String> {
    let catalogue = jobs::catalogue(args.c_side);
    let selected: Vec<Job> = catalogue
        .iter()
        .filter(|j| args.only.is_empty() || args.only.iter().any(|p| j.name().contains(p.as_str())))
        .cloned()
        .collect();
    if selected.is_empty() {
        let names: Vec<String> = catalogue.iter().map(Job::name).collect();
        return Err(format!(
            "no workload matches {:?}; the workloads are: {}",
            args.only,
            names.join(", ")
        ));
    }
    let runs = args
        .runs
        .map_or(if args.quick { 1 } else { 5 }, |r| r as usize);
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None if args.c_side => results.join("c"),
        None if args.profiler_cost => results.join("profiler"),
        None => results,
    };
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None if args.c_side => crate::bins::build(&["spanalloc-bench", "spanalloc-c"])?,
        None => crate::bins::build(&["spanalloc-bench"])?,
    };
    let (contenders, mut left_out) = if args.c_side {
        allocators::c_side(&bin_dir, args.libspanalloc.as_deref())?
    } else if args.profiler_cost {
        let specs = ["spanalloc", allocators::PROFILED].map(String::from);
        (allocators::from_specs(&specs, &bin_dir)?, Vec::new())
    } else {
        (
            allocators::from_specs(&args.allocators, &bin_dir)?,
            Vec::new(),
        )
    };
    let names: Vec<String> = contenders.iter().map(|c| c.name.clone()).collect();
    for c in &contenders {
        // Checks the binary runs, and brings it into the page cache.
        let ok = Command::new(&c.binary)
            .arg("--list")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(format!("cannot run {} --list", c.binary.display()));
        }
    }
    let scratch = Scratch::new()?;
    let (kit, selected, programs_left_out) = Kit::prepare(selected, &scratch.0)?;
    left_out.extend(programs_left_out);
    for why in &left_out {
        eprintln!("suite: left out: {why}");
    }
    if selected.is_empty() {
        return Err("every workload selected was left out".to_owned());
    }
    let machine = Machine::detect();
    eprintln!(
        "suite: {} workloads x {} allocators x {runs} run{}{}",
        selected.len(),
        contenders.len(),
        if runs == 1 { "" } else { "s" },
        if args.quick { " (--quick)" } else { "" }
    );

    let plan = Plan {
        contenders: &contenders,
        runs,
        kit: &kit,
        each: child::RunPlan {
            quick: args.quick,
            scratch: &scratch.0,
            limit: Duration::from_secs(args.timeout),
        },
    };
    let (workloads, phased) = measure_all(&selected, &plan)?;
    drop(scratch);

    let mut command = String::from("cargo run --release -p spanalloc-bench -- suite");
    if args.quick {
        command.push_str(" --quick");
    }
    if args.c_side {
        command.push_str(" --c-side");
    }
    if args.profiler_cost {
        command.push_str(" --profiler-cost");
    }
    if !args.c_side && !args.profiler_cost && args.allocators != allocators::RUST {
        command.push_str(&format!(" --allocators {}", args.allocators.join(",")));
    }
    for pattern in &args.only {
        command.push_str(&format!(" --only {pattern}"));
    }
    let config = SuiteConfig {
        runs,
        quick: args.quick,
        allocators: names,
        preloads: contenders
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.preload.as_ref()?.display().to_string())))
            .collect(),
        options: contenders
            .iter()
            .filter(|c| !c.env.is_empty())
            .map(|c| {
                let vars: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (c.name.clone(), vars.join(" "))
            })
            .collect(),
        command,
        tools: kit.tools(),
        left_out,
        load_average_at_end: crate::machine::load_average().unwrap_or(f64::NAN),
    };
    let report = SuiteReport::new(machine, config, workloads, phased);
    write_report(&report, &out_dir)?;
    for (a, g) in &report.geomean_ratio_to_spanalloc {
        println!(
            "geometric mean, {a} / spanalloc: wall {:.2}, cpu {:.2}, peak RSS {:.2}, faults {:.2}",
            g.wall_s, g.cpu_s, g.peak_rss, g.minor_faults
        );
    }
    println!("wrote {}", out_dir.join("latest.md").display());
    Ok(())
}

/// The suite's scratch folder (the children's output, the C program, the
/// scripts, temporary databases), removed when dropped, even on an error.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("spanalloc-suite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to run each workload.
struct Plan<'a> {
    /// The allocators, in the order of the first round.
    contenders: &'a [allocators::Contender],
    /// Runs per workload and allocator.
    runs: usize,
    /// The C program and the real programs, ready.
    kit: &'a Kit,
    /// How each run is made.
    each: child::RunPlan<'a>,
}

/// Runs every job of `jobs` as `plan` says: the results per workload, and
/// `phased`'s time series per allocator.
fn measure_all(
    jobs: &[Job],
    plan: &Plan,
) -> Result<(Vec<WorkloadResult>, Vec<results::PhasedSeries>), String> {
    let names: Vec<String> = plan.contenders.iter().map(|c| c.name.clone()).collect();
    let n = names.len();
    let mut workloads = Vec::with_capacity(jobs.len());
    let mut phased = Vec::new();
    for job in jobs {
        let name = job.name();
        let mut per_allocator: Vec<Vec<child::RunMetrics>> = vec![Vec::new(); n];
        for round in 0..plan.runs {
            for k in 0..n {
                let i = (round + k) % n;
                let m = plan
                    .kit
                    .run(job, &plan.contenders[i], &plan.each)
                    .map_err(|e| format!("{name} under {}: {e}", names[i]))?;
                per_allocator[i].push(m);
            }
        }
        check_checksums(&name, &names, &per_allocator)?;
        if job.is_phased() {
            for (a, runs) in names.iter().zip(&mut per_allocator) {
                phased.extend(results::take_phased_series(a, runs));
            }
        }
        let result = WorkloadResult::new(&job.about(), &names, per_allocator);
        println!("{}", one_line(&result));
        workloads.push(result);
    }
    Ok((workloads, phased))
}

/// Fails if a deterministic workload's checksum differs between runs.
fn check_checksums(
    workload: &str,
    allocators: &[String],
    runs: &[Vec<child::RunMetrics>],
) -> Result<(), String> {
    let mut first: Option<(u64, &str)> = None;
    for (a, runs) in allocators.iter().zip(runs) {
        for sum in runs.iter().filter_map(|r| r.outcome.checksum) {
            match first {
                None => first = Some((sum, a)),
                Some((f, fa)) if f != sum => {
                    return Err(format!(
                        "{workload}: checksum {sum:#x} under {a} but {f:#x} under {fa}: \
                         the program computed a different result"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// A workload's wall times and peak sizes on one line, as progress.
fn one_line(w: &WorkloadResult) -> String {
    let cells: Vec<String> = w
        .allocators
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a.allocator,
                Metric::Wall.format(a.median.wall_s),
                Metric::PeakRss.format(a.median.peak_rss)
            )
        })
        .collect();
    format!("{:<16} {}", w.name, cells.join(" | "))
}

/// Writes latest.md, latest.json and the charts into `dir`.
fn write_report(report: &SuiteReport, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("latest.md", markdown::render(report))?;
    let json = serde_json::to_string_pretty(report).expect("the report serialises");
    write("latest.json", json + "\n")?;
    charts::write_all(report, dir).map_err(|e| format!("charts: {e}"))
}
