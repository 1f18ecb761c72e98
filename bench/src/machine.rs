//! What machine the numbers come from, for the report's header.
//!
//! Read from `/proc` (Linux); anything that cannot be read is reported as
//! `unknown` rather than failing the run.

use std::fs;

use serde::Serialize;

/// The facts about the machine and build printed above the results.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model name, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Operating system and kernel release, as `uname -sr` prints them.
    pub kernel: String,
    /// `release` or `debug`: numbers from a debug build mean little.
    pub profile: &'static str,
}

impl Machine {
    /// Looks at the machine this process runs on.
    pub fn detect() -> Self {
        Self {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: kernel().unwrap_or_else(|| std::env::consts::OS.to_owned()),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

/// The first `model name` line of `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo_model_name(&cpuinfo)
}

/// The value of the first `model name` field in the text of `/proc/cpuinfo`.
fn cpuinfo_model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// `ostype osrelease`, the same as `uname -sr`.
fn kernel() -> Option<String> {
    let read = |name| fs::read_to_string(format!("/proc/sys/kernel/{name}")).ok();
    Some(format!(
        "{} {}",
        read("ostype")?.trim(),
        read("osrelease")?.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_is_found() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpuinfo_model_name(text).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpuinfo_model_name("processor : 0\n"), None);
    }

    #[test]
    fn detect_never_fails() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(!m.cpu_model.is_empty() && !m.kernel.is_empty());
    }
}
