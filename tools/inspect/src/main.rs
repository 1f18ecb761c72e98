//! `spanalloc-inspect`: see a program's memory.
//!
//! * `elf FILE`: the sections and segments of an ELF file, grouped into
//!   text, rodata, data, bss and the rest, with the totals GNU `size` prints;
//! * `maps [PID]`: a process's address space from `/proc`, each mapping
//!   classified (text, data, bss, heap, stacks, mapped files, anonymous
//!   memory, spanalloc arenas, ...), with resident and swapped sizes;
//! * `heap FILE`: a spanalloc heap dump (`SPANALLOC_DUMP=PATH`) per size
//!   class, and with `--svg` a map of its pages.
//!
//! `--json` prints the same data as JSON. This file is the command line;
//! each subcommand lives in its own module ([`elf`], [`procfs`] and [`maps`],
//! [`heap`] and [`svg`]), text and JSON output in [`report`], and failures
//! and their exit codes in [`error`].

mod elf;
mod error;
mod heap;
mod maps;
mod procfs;
mod report;
mod svg;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};

/// See a program's memory: ELF files, process address spaces and spanalloc
/// heaps.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Exit status: 0 success; 1 bad input (not an ELF file, a truncated one, \
                  not a heap dump); 2 bad command line; 3 no such process; \
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
    }
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
}
