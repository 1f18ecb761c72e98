//! What machine the numbers come from, for the report's header.
//!
//! Read from `/proc` (Linux) and `rustc --version`; anything that cannot be
//! read is reported as `unknown` rather than failing the run.

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
    /// The compiler on the `PATH` (or `$RUSTC`), as `rustc --version` says.
    pub rustc: String,
    /// When the measurement started, UTC, as `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// The 1-minute load average when the measurement started: other work
    /// on the machine (above about 1 on two cores, expect noise).
    pub load_average: f64,
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
            rustc: rustc_version().unwrap_or_else(|| "rustc unknown".to_owned()),
            date: utc_date(std::time::SystemTime::now()),
            load_average: load_average().unwrap_or(f64::NAN),
        }
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// `rustc --version`, of `$RUSTC` if set.
fn rustc_version() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// `time` as `YYYY-MM-DD HH:MM UTC`.
fn utc_date(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// The proleptic Gregorian date of the day `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        assert_eq!(utc_date(t), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn detect_never_fails() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.load_average >= 0.0);
        assert!(!m.cpu_model.is_empty() && !m.kernel.is_empty());
    }
}
