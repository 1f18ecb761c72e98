//! Which allocators the suite compares, and how each one is run.
//!
//! A Rust allocator is a build of the workloads with it as the
//! `#[global_allocator]`: `workloads-NAME`. A C allocator is a library in
//! `LD_PRELOAD`, which puts its `malloc` ahead of every other: in the build
//! with the system allocator (Rust's `System` calls `malloc`, `free`,
//! `realloc`, `calloc` and `posix_memalign`), in the C program and in the
//! real programs of `--c-side`. `--c-side` compares spanalloc's C library
//! (`libspanalloc.so`, from `crates/spanalloc-c`) with glibc and with
//! Debian's builds of jemalloc, mimalloc and TCMalloc this way.
//!
//! glibc is preloaded too: its own `libc.so.6`. Preloading the C library
//! changes nothing for a program that takes `malloc` from it anyway, but a
//! program linked with another allocator (Debian's `redis-server` links
//! `libjemalloc.so.2`) would otherwise run that one in glibc's place.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The Rust allocators compared by default, spanalloc first.
pub const RUST: [&str; 4] = ["spanalloc", "system", "mimalloc", "jemalloc"];

/// The spanalloc build with its heap profiler sampling at the default rate
/// (`SPANALLOC_PROFILE_RATE`, 512 KiB; no profile is written), for
/// `--profiler-cost`: the same binary as `spanalloc`, so the difference is
/// the profiler's alone.
pub const PROFILED: &str = "spanalloc-profiled";

/// The sampling rate of [`PROFILED`]: the profiler's default.
pub const PROFILED_RATE: &str = "512K";

/// The C libraries of `--c-side` after spanalloc's and glibc: name, file in
/// the system's library folder, Debian package.
const C_LIBRARIES: [(&str, &str, &str); 3] = [
    ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
    ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    (
        "tcmalloc",
        "libtcmalloc_minimal.so.4",
        "libtcmalloc-minimal4",
    ),
];

/// Where Debian puts shared libraries on this architecture.
const LIBRARY_DIRS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
];

/// One allocator under comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Contender {
    /// Its name in the reports.
    pub name: String,
    /// The workloads binary to run.
    pub binary: PathBuf,
    /// The library to put in `LD_PRELOAD`, for a C allocator.
    pub preload: Option<PathBuf>,
    /// Environment variables set for its runs (its options).
    pub env: Vec<(String, String)>,
}

/// The contenders named by `--allocators`: each `NAME` is the Rust build
/// `workloads-NAME` ([`PROFILED`]: the spanalloc build, profiling), each
/// `NAME=LIB.so` the system build with `LIB.so` preloaded.
pub fn from_specs(specs: &[String], bin_dir: &Path) -> Result<Vec<Contender>, String> {
    specs
        .iter()
        .map(|spec| {
            let contender = match spec.split_once('=') {
                None if spec == PROFILED => Contender {
                    name: spec.clone(),
                    binary: bin_dir.join("workloads-spanalloc"),
                    preload: None,
                    env: vec![("SPANALLOC_PROFILE_RATE".into(), PROFILED_RATE.into())],
                },
                None => Contender {
                    name: spec.clone(),
                    binary: bin_dir.join(format!("workloads-{spec}")),
                    preload: None,
                    env: Vec::new(),
                },
                Some((name, lib)) => Contender {
                    name: name.to_owned(),
                    binary: bin_dir.join("workloads-system"),
                    preload: Some(PathBuf::from(lib)),
                    env: Vec::new(),
                },
            };
            check(&contender)?;
            Ok(contender)
        })
        .collect()
}

/// The contenders of `--c-side`: spanalloc (`libspanalloc`, else
/// `libspanalloc.so` in `bin_dir`), glibc, and the Debian libraries that are
/// installed; each one missing is left out, with the reason in the second
/// list.
pub fn c_side(
    bin_dir: &Path,
    libspanalloc: Option<&Path>,
) -> Result<(Vec<Contender>, Vec<String>), String> {
    // The children get LD_PRELOAD as an absolute path, wherever they run.
    let absolute = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let bin_dir = absolute(bin_dir)?;
    let spanalloc = match libspanalloc {
        Some(lib) => absolute(lib)?,
        None => bin_dir.join("libspanalloc.so"),
    };
    let system = bin_dir.join("workloads-system");
    let mut all = vec![Contender {
        name: "spanalloc".to_owned(),
        binary: system.clone(),
        preload: Some(spanalloc),
        env: Vec::new(),
    }];
    let mut left_out = Vec::new();
    for (name, file, package) in [("glibc", "libc.so.6", "libc6")]
        .into_iter()
        .chain(C_LIBRARIES)
    {
        match find_library(file) {
            Some(lib) => all.push(Contender {
                name: name.to_owned(),
                binary: system.clone(),
                preload: Some(lib),
                env: Vec::new(),
            }),
            None => left_out.push(format!(
                "{name}: {file} not found (apt-get install {package})"
            )),
        }
    }
    for c in &all {
        check(c)?;
    }
    Ok((all, left_out))
}

/// `file` in the first of the system's library folders that has it.
fn find_library(file: &str) -> Option<PathBuf> {
    LIBRARY_DIRS
        .iter()
        .map(|d| Path::new(d).join(file))
        .find(|p| p.exists())
}

/// Fails unless the contender's files exist (the dynamic loader would only
/// warn about a missing preload and run the C library's malloc instead).
fn check(c: &Contender) -> Result<(), String> {
    if !c.binary.exists() {
        return Err(format!("{}: no {}", c.name, c.binary.display()));
    }
    match &c.preload {
        Some(lib) if !lib.exists() => Err(format!("{}: no {}", c.name, lib.display())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_rust_builds_and_preloads() {
        let dir = std::env::temp_dir().join(format!("suite-specs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["workloads-system", "workloads-spanalloc", "lib.so"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let lib = dir.join("lib.so");
        let specs = ["spanalloc".to_owned(), format!("c={}", lib.display())];
        let got = from_specs(&specs, &dir).unwrap();
        assert_eq!(got[0].name, "spanalloc");
        assert_eq!(got[0].binary, dir.join("workloads-spanalloc"));
        assert_eq!(got[0].preload, None);
        assert_eq!(got[1].name, "c");
        assert_eq!(got[1].binary, dir.join("workloads-system"));
        assert_eq!(got[1].preload.as_deref(), Some(lib.as_path()));

        let got = from_specs(&[PROFILED.to_owned()], &dir).unwrap();
        assert_eq!(got[0].binary, dir.join("workloads-spanalloc"));
        assert_eq!(
            got[0].env,
            [("SPANALLOC_PROFILE_RATE".to_owned(), "512K".to_owned())]
        );

        let err = from_specs(&["nosuch".to_owned()], &dir).unwrap_err();
        assert!(err.contains("workloads-nosuch"), "{err}");
        let err = from_specs(&["c=/nonexistent.so".to_owned()], &dir).unwrap_err();
        assert!(err.contains("/nonexistent.so"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
