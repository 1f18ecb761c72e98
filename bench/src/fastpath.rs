//! `spanalloc-bench fastpath`: a deterministic guard for the fast path.
//!
//! Timings on a shared two-core machine move by ±10%; instruction counts do
//! not. The `fastpath` binary performs N pairs of a 64-byte allocation and its
//! sized free through spanalloc or mimalloc; valgrind's callgrind counts the
//! instructions of the whole process for two values of N, and the difference
//! over the difference of N is the cost of one pair (start-up and exit cancel
//! out). The same count for an allocator that does nothing (`harness`) is
//! the loop's and the calls'; less it, what remains is the allocator's own.
//!
//! The counts are kept in `bench/fastpath-instructions.txt`, one line per
//! build profile and allocator (`release` for `cargo test --release` and real
//! runs, `dev` for `cargo test`, which builds with `opt-level = 1` and debug
//! assertions). `--check` fails when spanalloc's count exceeds its line by
//! more than [`SLACK`]; `--write` records new counts, after a change that is
//! meant to cost instructions (or saves some).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Instructions per pair that spanalloc may gain over its checked-in count
/// before `--check` fails (compiler versions shift code by an instruction or
/// two).
pub const SLACK: f64 = 2.0;

/// The allocators counted; the first is the one guarded.
const ALLOCATORS: [&str; 2] = ["spanalloc", "mimalloc"];

/// The allocator that does nothing, whose count is subtracted.
const HARNESS: &str = "harness";

/// The two numbers of pairs whose counts are subtracted.
const PAIRS: (u64, u64) = (10_000, 110_000);

/// Exit status when valgrind cannot be run.
pub const NO_VALGRIND: u8 = 3;

/// The command line of `spanalloc-bench fastpath`.
#[derive(Debug, clap::Args)]
pub struct FastpathArgs {
    /// Fail (exit status 1) if spanalloc's count exceeds the checked-in one
    /// by more than 2 instructions.
    #[arg(long)]
    check: bool,

    /// Record the counts measured in the file, for this build's profile.
    #[arg(long)]
    write: bool,

    /// The file of checked-in counts [default: bench/fastpath-instructions.txt].
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,

    /// The `fastpath` binary to count [default: build it and use the one
    /// beside this binary].
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
}

/// Runs `spanalloc-bench fastpath`.
pub fn main(args: FastpathArgs) -> ExitCode {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fastpath-instructions.txt"));
    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => match crate::bins::build(&["spanalloc-bench"]) {
            Ok(dir) => dir.join("fastpath"),
            Err(e) => return fail(2, &e),
        },
    };
    if Command::new("valgrind").arg("--version").output().is_err() {
        return fail(
            NO_VALGRIND,
            "valgrind is not installed (apt-get install valgrind)",
        );
    }
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let mut counts = parse(&text);

    let (profile, harness) = match per_pair(&bin, HARNESS) {
        Ok(counted) => counted,
        Err(e) => return fail(2, &format!("{HARNESS}: {e}")),
    };
    println!("the loop and the two calls: {harness:.2} instructions per pair ({profile} build)");
    let mut measured = Vec::new();
    for allocator in ALLOCATORS {
        match per_pair(&bin, allocator) {
            Ok((_, count)) => measured.push((allocator, count - harness)),
            Err(e) => return fail(2, &format!("{allocator}: {e}")),
        }
    }
    let mut regressed = false;
    for &(allocator, count) in &measured {
        let key = (profile.clone(), allocator.to_owned());
        let checked_in = counts.get(&key).copied();
        let shown = checked_in.map_or("none".to_owned(), |c| c.to_string());
        println!(
            "{allocator}: {count:.2} instructions per 64-byte alloc + sized free, \
             beyond the loop ({profile} build; checked in: {shown})"
        );
        if allocator == ALLOCATORS[0] {
            match checked_in {
                Some(c) if count > c as f64 + SLACK => {
                    println!(
                        "spanalloc's fast path grew: {count:.2} > {c} + {SLACK} \
                         (if intended: cargo run -p spanalloc-bench{} -- fastpath --write)",
                        if profile == "release" {
                            " --release"
                        } else {
                            ""
                        }
                    );
                    regressed = true;
                }
                None => {
                    println!(
                        "no checked-in count for spanalloc in the {profile} profile in {}",
                        file.display()
                    );
                    regressed = true;
                }
                Some(_) => {}
            }
        }
    }
    if args.write {
        for &(allocator, count) in &measured {
            counts.insert(
                (profile.clone(), allocator.to_owned()),
                count.round() as u64,
            );
        }
        if let Err(e) = std::fs::write(&file, render(&counts)) {
            return fail(2, &format!("{}: {e}", file.display()));
        }
        println!("wrote {}", file.display());
    } else if args.check && regressed {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Prints `message` and returns exit status `code`.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("spanalloc-bench fastpath: {message}");
    ExitCode::from(code)
}

/// The build profile of `bin` and its instructions per pair through
/// `allocator`.
fn per_pair(bin: &Path, allocator: &str) -> Result<(String, f64), String> {
    let (profile, low) = count(bin, allocator, PAIRS.0)?;
    let (_, high) = count(bin, allocator, PAIRS.1)?;
    let pairs = (PAIRS.1 - PAIRS.0) as f64;
    Ok((profile, (high as f64 - low as f64) / pairs))
}

/// Runs `bin allocator pairs` under callgrind: the profile it prints and the
/// instructions callgrind collected.
fn count(bin: &Path, allocator: &str, pairs: u64) -> Result<(String, u64), String> {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(bin)
        .arg(allocator)
        .arg(pairs.to_string())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "valgrind {} failed ({}):\n{stderr}",
            bin.display(),
            out.status
        ));
    }
    let profile = stdout
        .lines()
        .find_map(|l| l.strip_prefix("profile "))
        .ok_or_else(|| format!("{} printed no profile:\n{stdout}", bin.display()))?;
    let collected = collected(&stderr)
        .ok_or_else(|| format!("no `Collected :` line from callgrind:\n{stderr}"))?;
    Ok((profile.trim().to_owned(), collected))
}

/// The number on callgrind's `==PID== Collected : N` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let (_, rest) = l.split_once("Collected :")?;
        rest.trim().parse().ok()
    })
}

/// `(profile, allocator) -> instructions` from the file's text.
fn parse(text: &str) -> BTreeMap<(String, String), u64> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [profile, allocator, n] => Some((
                    (profile.to_string(), allocator.to_string()),
                    n.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// The file's text for `counts`.
fn render(counts: &BTreeMap<(String, String), u64>) -> String {
    let mut out = String::from(
        "# Instructions per 64-byte allocation + sized free, each through one\n\
         # non-inlined call (as a program calls its #[global_allocator]), less\n\
         # those of the loop and the calls, counted by valgrind --tool=callgrind.\n\
         # Written by\n\
         #   cargo run --release -p spanalloc-bench -- fastpath --write   (release)\n\
         #   cargo run -p spanalloc-bench -- fastpath --write             (dev)\n\
         # `cargo test` (dev) and `cargo test --release` fail when spanalloc's\n\
         # count exceeds its line by more than 2.\n\
         # profile  allocator  instructions\n",
    );
    for ((profile, allocator), n) in counts {
        out.push_str(&format!("{profile:<10} {allocator:<10} {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrinds_total() {
        let stderr = "==12== Callgrind, a call-graph generating cache profiler\n\
                      ==12== Events    : Ir\n==12== Collected : 1234567\n==12==\n";
        assert_eq!(collected(stderr), Some(1_234_567));
        assert_eq!(collected("nothing"), None);
    }

    #[test]
    fn file_round_trips() {
        let mut counts = BTreeMap::new();
        counts.insert(("release".to_owned(), "spanalloc".to_owned()), 21);
        counts.insert(("dev".to_owned(), "mimalloc".to_owned()), 40);
        assert_eq!(parse(&render(&counts)), counts);
        assert!(parse("# only a comment\nbad line\n").is_empty());
    }
}
