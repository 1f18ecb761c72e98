//! The command line of a workloads binary:
//!
//! ```text
//! workloads-ALLOC NAME [--quick]   run one workload, print its Outcome as JSON
//! workloads-ALLOC --list           print the workload names, one a line
//! ```
//!
//! Each binary is a two-line `main` that sets its `#[global_allocator]` and
//! calls [`main`] with the allocator's name.

use std::process::ExitCode;
use std::time::Instant;

use crate::{rss, Outcome, Size, Variant};

/// Runs the command line of a workloads binary built with `allocator`.
pub fn main(allocator: &str) -> ExitCode {
    main_profiled(allocator, || None)
}

/// As [`main`], for an allocator with a heap profiler: `profiled()` is its
/// estimate of the bytes allocated when sampling is on (None when off),
/// asked once the workload is done.
pub fn main_profiled(allocator: &str, profiled: fn() -> Option<u64>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if args.iter().any(|a| a == "--list") {
        for v in Variant::all() {
            println!("{}", v.name);
        }
        return ExitCode::SUCCESS;
    }
    let known = args.iter().all(|a| !a.starts_with("--") || a == "--quick");
    let (true, [name]) = (known, names.as_slice()) else {
        eprintln!("usage: workloads-{allocator} NAME [--quick] | --list");
        return ExitCode::from(2);
    };
    let Some(variant) = Variant::find(name) else {
        eprintln!("workloads-{allocator}: no workload {name:?} (try --list)");
        return ExitCode::from(2);
    };
    let size = if quick { Size::Quick } else { Size::Full };
    let start = Instant::now();
    let (work, phases) = variant.run(size);
    let elapsed_s = start.elapsed().as_secs_f64();
    let outcome = Outcome {
        name: variant.name,
        allocator: allocator.to_owned(),
        preload: std::env::var("LD_PRELOAD").ok(),
        quick,
        ops: work.ops,
        checksum: work.checksum,
        elapsed_s,
        final_rss: rss::current(),
        rss_after_phase: phases.as_ref().map(|p| p.rss_after_phase),
        rss_series: phases.map(|p| p.series),
        profiled_alloc_bytes: profiled(),
    };
    println!(
        "{}",
        serde_json::to_string(&outcome).expect("outcome serialises")
    );
    ExitCode::SUCCESS
}
