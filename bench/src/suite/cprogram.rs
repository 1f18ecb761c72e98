//! The C program of `--c-side`: `bench/c/workloads.c`, the multi-threaded
//! workloads (larson, prodcons, falseshare, churn) in plain C11 and pthreads,
//! so each allocator is also measured under a C program's `malloc` and
//! `free`, with no Rust layer in between.
//!
//! The source is compiled into this binary (`include_str!`), written to the
//! suite's scratch folder and built there at suite time with `$CC` (else
//! `cc`), `-std=c11 -O2 -pthread`, whatever the driver's own profile. The
//! program takes the same command line and prints the same outcome line as
//! the Rust workloads binaries, so the suite runs it as it runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use spanalloc_workloads::{Kind, Variant};

/// The program's source.
const SOURCE: &str = include_str!("../../c/workloads.c");

/// How the suite compiles it (then `-o BINARY SOURCE -lm`).
const CFLAGS: [&str; 3] = ["-std=c11", "-O2", "-pthread"];

/// The prefix of the C program's workloads in reports: `c/larson/t2`.
pub const PREFIX: &str = "c/";

/// The workloads the C program implements: the multi-threaded ones, under
/// their Rust names (`larson/t2`, which the program takes on its command
/// line).
pub fn variants() -> Vec<Variant> {
    Variant::all()
        .into_iter()
        .filter(|v| {
            matches!(
                v.kind,
                Kind::Larson | Kind::ProdCons | Kind::FalseShare | Kind::Churn
            )
        })
        .collect()
}

/// The compiled program.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The executable.
    pub binary: PathBuf,
    /// The compiler's command line and what it says it is, for the report.
    pub compiler: String,
}

/// Writes the source into `dir` and compiles it there, with `extra` flags
/// after the usual ones.
pub fn compile(dir: &Path, extra: &[&str]) -> Result<Compiled, String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let source = dir.join("workloads.c");
    let binary = dir.join("workloads-c");
    std::fs::write(&source, SOURCE).map_err(|e| format!("{}: {e}", source.display()))?;
    let out = Command::new(&cc)
        .args(CFLAGS)
        .args(extra)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .arg("-lm")
        .output()
        .map_err(|e| format!("cannot run the C compiler {cc:?} (apt-get install gcc): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cc} could not compile bench/c/workloads.c:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let version = Command::new(&cc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8(o.stdout).ok()?;
            Some(text.lines().next()?.trim().to_owned())
        })
        .unwrap_or_else(|| "version unknown".to_owned());
    Ok(Compiled {
        binary,
        compiler: format!("`{cc} {}` ({version})", CFLAGS.join(" ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanalloc_workloads::{Outcome, Size};

    /// The program compiles without a warning, lists exactly its workloads,
    /// and computes what the Rust workloads compute: the same operation
    /// counts, and the same checksums where the result is deterministic
    /// (same random sizes, same order, same blocks).
    #[test]
    fn c_program_matches_the_rust_workloads() {
        let dir = std::env::temp_dir().join(format!("suite-cprogram-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = compile(&dir, &["-Wall", "-Wextra", "-Wpedantic", "-Werror"]).unwrap();

        let list = Command::new(&c.binary).arg("--list").output().unwrap();
        let names: Vec<String> = variants().into_iter().map(|v| v.name).collect();
        assert_eq!(
            String::from_utf8(list.stdout).unwrap(),
            names.join("\n") + "\n"
        );

        for v in variants() {
            let out = Command::new(&c.binary)
                .args([v.name.as_str(), "--quick"])
                .env_remove("LD_PRELOAD")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}: {out:?}", v.name);
            let outcome: Outcome = serde_json::from_slice(&out.stdout).unwrap();
            let (rust, _) = v.run(Size::Quick);
            assert_eq!(outcome.name, v.name);
            assert!(outcome.quick && outcome.preload.is_none());
            assert_eq!(
                (outcome.ops, outcome.checksum),
                (rust.ops, rust.checksum),
                "{}",
                v.name
            );
        }

        let bad = Command::new(&c.binary).arg("larson/t3").output().unwrap();
        assert_eq!(bad.status.code(), Some(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
