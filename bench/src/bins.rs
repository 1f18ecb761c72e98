//! The binaries the `suite` and `fastpath` commands run (this package's
//! workloads and `fastpath`, and `libspanalloc.so` for `suite --c-side`):
//! built with cargo in this binary's own profile, and found beside it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `packages` with cargo (`$CARGO`, as `cargo run` sets it, else
/// `cargo` on the `PATH`), in this binary's profile, and returns the folder
/// their binaries are in: this binary's own.
pub fn build(packages: &[&str]) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .args(packages.iter().flat_map(|p| ["-p", p]))
        .arg("--manifest-path")
        .arg(&manifest);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    eprintln!("building the benchmark binaries: {command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the benchmark binaries failed ({status})"));
    }
    own_dir()
}

/// The folder this binary is in.
pub fn own_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    Ok(exe
        .parent()
        .expect("an executable is in a folder")
        .to_path_buf())
}
