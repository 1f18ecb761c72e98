//! `spanalloc-inspect`: see a program's memory.
//!
//! * `elf FILE`: the sections and segments of an ELF file, grouped into
//!   text, rodata, data, bss and the rest, with the totals GNU `size` prints;
//! * `maps [PID]`: a process's address space from `/proc`, each mapping
//!   classified (text, data, bss, heap, stacks, mapped files, anonymous
//!   memory, spanalloc arenas, ...), with resident and swapped sizes;
//! * `heap FILE`: a spanalloc heap dump (`SPANALLOC_DUMP=PATH`) per size
//!   class, and with `--svg` a map of its pages;
//! * `profile FILE`: a pprof profile (spanalloc's heap profiles, or any
//!   other) as `go tool pprof -top` shows it, and with `--flamegraph` a
//!   flame graph.
//!
//! `--json` prints the same data as JSON. This file is the command line;
//! each subcommand lives in its own module ([`elf`], [`procfs`] and [`maps`],
//! [`heap`] and [`svg`], [`pprof`], [`profile`] and [`flamegraph`]), text
//! and JSON output in [`report`], and failures and their exit codes in
//! [`error`].

mod elf;
mod error;
mod flamegraph;
mod heap;
mod maps;
mod pprof;
mod procfs;
mod profile;
mod report;
mod svg;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};

/// See a program's memory: ELF files, process address spaces, spanalloc
/// heaps and heap profiles.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Exit status: 0 success; 1 bad input (not an ELF file, a truncated one, \
                  not a heap dump, not a pprof profile); 2 bad command line (or a \
                  --sample the profile lacks); 3 no such process; \
                  4 permission denied; 5 a file that cannot be read or written \
                  (missing, a directory)."
)]
struct Cli {
    /// Print the report as JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sections and program segments of an ELF file, grouped as `size` does.
    Elf {
        /// The ELF file (executable, shared library or object file).
        file: PathBuf,
    },
    /// The address space of a process, each mapping classified.
    Maps {
        /// Process id (default: this process).
        pid: Option<u32>,
        /// Totals per class instead of every mapping.
        #[arg(long)]
        summary: bool,
    },
    /// A spanalloc heap dump, per size class.
    Heap {
        /// The dump (written when SPANALLOC_DUMP=PATH is set, or by
        /// `spanalloc::dump_heap`).
        file: PathBuf,
        /// Also draw a map of the heap's pages as an SVG file.
        #[arg(long, value_name = "OUT.svg")]
        svg: Option<PathBuf>,
    },
    /// A pprof profile's top functions by flat and cumulative value, as
    /// `go tool pprof -top` shows them.
    #[command(
        long_about = "A pprof profile's top functions, as `go tool pprof -top` shows them.\n\n\
                      Reads spanalloc's heap profiles (sample types alloc_objects, \
                      alloc_space, inuse_objects, inuse_space, peak_objects, peak_space) \
                      and any other pprof profile (Go's heap and CPU profiles, ...), \
                      gzip-compressed or not. Prints the sample types with their totals, \
                      the period and time, then per function: flat (the samples it is \
                      the innermost frame of), flat%, sum% (running total of flat%), \
                      cum (the samples whose stack holds it, once per sample even when \
                      it recurs) and cum%. Inlined calls count as functions of their \
                      own (marked \"(inline)\" when never met otherwise). Bytes are \
                      shown as B/KiB/MiB, nanoseconds as ns/µs/ms/s, counts as plain \
                      numbers. --flamegraph draws the same sample type as a flame \
                      graph."
    )]
    Profile {
        /// The profile (`profile.proto`, gzip-compressed or not), as
        /// spanalloc (`SPANALLOC_PROFILE=PATH`) or Go's runtime/pprof writes
        /// it.
        file: PathBuf,
        /// The sample type to show (default: the profile's default, else
        /// its last type).
        #[arg(long, value_name = "TYPE")]
        sample: Option<String>,
        /// How many functions to list (0: all).
        #[arg(long, value_name = "N", default_value_t = 20)]
        top: usize,
        /// Also draw a flame graph of the sample type as an SVG file
        /// (samples whose value is zero are left out).
        #[arg(long, value_name = "OUT.svg")]
        flamegraph: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|_| stdout.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spanalloc-inspect: {e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}

/// Runs the command and returns what to print.
fn run(cli: &Cli) -> Result<String> {
    match &cli.command {
        Command::Elf { file } => {
            let r = elf::inspect(file)?;
            Ok(if cli.json {
                report::json(&r)
            } else {
                report::elf_text(&r)
            })
        }
        Command::Maps { pid, summary } => {
            let r = maps::inspect(pid.unwrap_or_else(std::process::id))?;
            Ok(if cli.json {
                report::json(&r)
            } else {
                report::maps_text(&r, *summary)
            })
        }
        Command::Heap { file, svg: out } => {
            let (dump, r) = heap::inspect(file)?;
            for w in &r.warnings {
                eprintln!("spanalloc-inspect: warning: {w}");
            }
            let mut text = if cli.json {
                report::json(&r)
            } else {
                report::heap_text(&r)
            };
            if let Some(out) = out {
                let (doc, drawn) = svg::render(&dump, &r);
                std::fs::write(out, doc).map_err(|e| {
                    let e = Error::file(out, &e);
                    Error::new(e.kind, format!("cannot write the map: {e}"))
                })?;
                if drawn.left_out > 0 {
                    eprintln!(
                        "spanalloc-inspect: warning: the map shows the first {} pages, {} more are left out",
                        drawn.pages, drawn.left_out
                    );
                }
                if !cli.json {
                    text.push_str(&format!(
                        "\nheap map: {} ({} pages)\n",
                        out.display(),
                        drawn.pages
                    ));
                }
            }
            Ok(text)
        }
        Command::Profile {
            file,
            sample,
            top,
            flamegraph: out,
        } => {
            let resolved = profile::read(file)?;
            let index = resolved.choose(sample.as_deref())?;
            let r = resolved.report(index, *top);
            let mut text = if cli.json {
                report::json(&r)
            } else {
                report::profile_text(&r)
            };
            if let Some(out) = out {
                let stacks = draw_flamegraph(&resolved, &r, index, out)?;
                if !cli.json {
                    text.push_str(&format!(
                        "\nflame graph: {} ({stacks} stacks)\n",
                        out.display()
                    ));
                }
            }
            Ok(text)
        }
    }
}

/// Writes the flame graph of sample type `index` to `out`; returns the
/// number of distinct stacks drawn.
fn draw_flamegraph(
    resolved: &profile::Resolved,
    r: &profile::ProfileReport,
    index: usize,
    out: &std::path::Path,
) -> Result<usize> {
    let (folded, negative) = resolved.folded(index);
    if negative > 0 {
        eprintln!(
            "spanalloc-inspect: warning: {negative} samples with a negative {} are left out of the flame graph",
            r.sample_type
        );
    }
    let t = &resolved.sample_types[index];
    let title = format!("{}: {}", r.sample_type, report::value(r.total, &r.unit));
    let subtitle = format!(
        "{}: {} samples, values in {}",
        r.path,
        r.samples,
        flamegraph::count_name(t)
    );
    let svg = flamegraph::render(
        &folded,
        t,
        title,
        subtitle,
        &format!("no sample has a positive {}", r.sample_type),
    )?;
    std::fs::write(out, svg).map_err(|e| {
        let e = Error::file(out, &e);
        Error::new(e.kind, format!("cannot write the flame graph: {e}"))
    })?;
    Ok(folded.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_flag_goes_anywhere() {
        let a = Cli::try_parse_from(["x", "--json", "maps", "1"]).unwrap();
        let b = Cli::try_parse_from(["x", "maps", "1", "--json"]).unwrap();
        assert!(a.json && b.json);
    }

    #[test]
    fn profile_options() {
        let c = Cli::try_parse_from(["x", "profile", "p.pb.gz"]).unwrap();
        let Command::Profile { top, sample, .. } = c.command else {
            panic!("not profile");
        };
        assert_eq!((top, sample), (20, None));
        let c = Cli::try_parse_from(["x", "profile", "p", "--top", "5", "--sample", "alloc_space"])
            .unwrap();
        assert!(matches!(c.command, Command::Profile { top: 5, .. }));
        assert!(Cli::try_parse_from(["x", "profile", "p", "--top", "-1"]).is_err());
    }
}
