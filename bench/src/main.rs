//! `spanalloc-bench`: spanalloc side by side with the system allocator
//! (glibc malloc), mimalloc and jemalloc. Three commands:
//!
//! - no subcommand: the in-process micro-benchmark of the fast path and of
//!   batches against spanalloc, glibc and mimalloc, each called through the
//!   [`GlobalAlloc`] trait from one process;
//! - `suite`: the whole-process workloads of `spanalloc_workloads` under
//!   each allocator as the `#[global_allocator]` of its own binary, measured
//!   from outside (wall and CPU time, peak RSS, page faults), written to
//!   `bench/results/` as markdown, JSON and SVG charts; with `--c-side`, C
//!   allocators in `LD_PRELOAD` under the same workloads, a C program and
//!   python3, sqlite3 and redis-server, written to `bench/results/c/` (see
//!   [`suite`]);
//! - `fastpath`: instructions per alloc + free pair counted with callgrind,
//!   checked against `bench/fastpath-instructions.txt` (see [`fastpath`]).
//!
//! This file is the command line; the micro-benchmark is split by concern:
//!
//! - [`workloads`]: the allocation patterns, generic over [`GlobalAlloc`];
//! - [`allocators`]: the three contenders and the dispatch to a monomorphised
//!   copy of each workload;
//! - [`measure`]: calibration, round-robin alternation and the statistics;
//! - [`report`]: the markdown tables, the summary and the JSON;
//! - [`machine`]: the machine facts in the header;
//! - [`rng`]: the fixed-seed generator behind sizes and free orders (shared
//!   with the suite's workloads).
//!
//! The program's own memory (its vectors and strings) comes from spanalloc
//! through `#[global_allocator]`, so a run is also a small smoke test of it as
//! the process allocator. The allocators being compared are called through
//! the [`GlobalAlloc`] trait, not through the global allocator: by default
//! each behind one non-inlined call per operation, as a program calls its
//! global allocator; with `--inline`, directly (see [`allocators`]).
//!
//! [`GlobalAlloc`]: std::alloc::GlobalAlloc

mod allocators;
mod bins;
mod fastpath;
mod machine;
mod measure;
mod report;
mod suite;
mod workloads;

use spanalloc_workloads::rng;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::allocators::{Allocator, CallMode};
use crate::machine::Machine;
use crate::measure::Plan;
use crate::report::{Config, Geomean, Report, WorkloadReport};
use crate::workloads::{Workload, DEFAULT_BATCH_SIZE, DEFAULT_SEED};

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

/// Rounds of `--quick`: fewer than the five a real run needs, on purpose.
const QUICK_ROUNDS: u32 = 3;
/// Target length of one measurement with `--quick`, in milliseconds.
const QUICK_MEASURE_MS: u64 = 2;

/// Benchmark spanalloc against the system allocator, mimalloc and jemalloc.
///
/// Without a subcommand: the in-process micro-benchmark, which runs each
/// workload on spanalloc, glibc and mimalloc alternately, round after round,
/// and reports the median time per operation and the ratios between them.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,

    #[command(flatten)]
    micro: Args,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every workload in its own process under each allocator (its
    /// #[global_allocator]; with --c-side, C libraries in LD_PRELOAD, also
    /// under a C program and real programs); write
    /// bench/results/latest.{md,json} and charts (bench/results/c/ with
    /// --c-side).
    Suite(suite::SuiteArgs),
    /// Count the instructions of a 64-byte alloc + sized free with callgrind
    /// and compare them with bench/fastpath-instructions.txt.
    Fastpath(fastpath::FastpathArgs),
}

/// The micro-benchmark's options.
#[derive(Debug, clap::Args)]
struct Args {
    /// Timed rounds per workload (each runs every allocator once).
    #[arg(long, default_value_t = 11, value_parser = clap::value_parser!(u32).range(5..))]
    rounds: u32,

    /// Intended length of one measurement, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    measure_ms: u64,

    /// Objects per batch in the batch workloads.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    batch_size: u64,

    /// Seed for the batch workloads' sizes and free order.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// Run only the workloads whose name starts with NAME (repeatable),
    /// e.g. `pairs`, `pairs/64` or `batch-large-mix`.
    #[arg(long = "workload", value_name = "NAME")]
    workloads: Vec<String>,

    /// Call the allocators directly, so the compiler may inline a Rust
    /// allocator's fast path into the benchmark loop (as LTO might), instead
    /// of through one non-inlined call per operation as a program reaches its
    /// #[global_allocator].
    #[arg(long)]
    inline: bool,

    /// Smoke test: 3 rounds of ~2 ms measurements; finishes in seconds.
    #[arg(long, conflicts_with_all = ["rounds", "measure_ms"])]
    quick: bool,

    /// Also write the results as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Suite(args)) => suite::main(args),
        Some(Cmd::Fastpath(args)) => fastpath::main(args),
        None => micro(cli.micro),
    }
}

/// The in-process micro-benchmark.
fn micro(args: Args) -> ExitCode {
    let (rounds, measure_ms) = if args.quick {
        (QUICK_ROUNDS, QUICK_MEASURE_MS)
    } else {
        (args.rounds, args.measure_ms)
    };
    let config = Config {
        rounds: rounds as usize,
        target_ms: measure_ms as f64,
        batch_size: usize::try_from(args.batch_size).expect("batch size fits in usize"),
        seed: args.seed,
        quick: args.quick,
        calls: if args.inline {
            CallMode::Inline
        } else {
            CallMode::GlobalAllocShim
        },
    };
    let plan = Plan {
        rounds: config.rounds,
        target: Duration::from_millis(measure_ms),
        calls: config.calls,
    };

    let mut selected: Vec<Workload> = Workload::all(config.batch_size, config.seed)
        .into_iter()
        .filter(|w| {
            args.workloads.is_empty()
                || args
                    .workloads
                    .iter()
                    .any(|p| w.name.starts_with(p.as_str()))
        })
        .collect();
    if selected.is_empty() {
        let names: Vec<String> = Workload::all(1, 0).into_iter().map(|w| w.name).collect();
        eprintln!(
            "spanalloc-bench: no workload matches {:?}; the workloads are: {}",
            args.workloads,
            names.join(", ")
        );
        return ExitCode::from(2);
    }

    let machine = Machine::detect();
    let allocators = Allocator::ALL;
    println!("{}", report::header(&machine, &config, &allocators));

    let mut results = Vec::with_capacity(selected.len());
    for workload in &mut selected {
        let measurement = measure::measure(workload, &allocators, &plan);
        let result = WorkloadReport::new(&workload.name, workload.unit, measurement);
        println!("{}", result.markdown(config.rounds));
        // Show each table as soon as it is measured, even through a pipe.
        let _ = std::io::stdout().flush();
        results.push(result);
    }

    let geomean = Geomean::of(&results);
    print!("{}", report::summary(&results, &geomean));

    if let Some(path) = &args.json {
        let report = Report {
            machine,
            config,
            workloads: results,
            geomean,
        };
        let json = serde_json::to_string_pretty(&report).expect("results serialise");
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("spanalloc-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
