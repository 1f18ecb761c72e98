//! One run of one workload under one allocator: a child process, measured
//! from outside.
//!
//! The child's stdout and stderr go to files (no pipe can fill up while we
//! wait), and the child is reaped with `wait4`, which hands back its resource
//! usage: CPU time, peak resident size (`ru_maxrss`) and page faults. Wall
//! time runs from just before the spawn to just after the reaping, so it
//! includes the process's start-up and exit, as a user would see them. A
//! watchdog kills a child that runs past the time limit.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use spanalloc_workloads::Outcome;

use super::allocators::Contender;

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    /// Wall-clock seconds, spawn to reap.
    pub wall_s: f64,
    /// User CPU seconds, all threads.
    pub user_s: f64,
    /// System CPU seconds, all threads.
    pub sys_s: f64,
    /// Peak resident set size, in bytes (`ru_maxrss`).
    pub peak_rss: u64,
    /// Minor page faults (`ru_minflt`).
    pub minor_faults: u64,
    /// Involuntary plus voluntary context switches.
    pub context_switches: u64,
    /// What the workload reported about itself.
    pub outcome: Outcome,
}

impl RunMetrics {
    /// User plus system CPU seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// Runs workload `name` (`--quick` if `quick`) under `contender` and
/// measures it; `scratch` is a directory for the child's output files;
/// `limit` the longest it may run.
pub fn run(
    contender: &Contender,
    name: &str,
    quick: bool,
    scratch: &Path,
    limit: Duration,
) -> Result<RunMetrics, String> {
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let file = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let binary = &contender.binary;
    let mut command = Command::new(binary);
    command
        .arg(name)
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?);
    if quick {
        command.arg("--quick");
    }
    if let Some(lib) = &contender.preload {
        command.env("LD_PRELOAD", lib);
    }

    let start = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let (done, watchdog) = spawn_watchdog(pid, limit);
    let reaped = reap(pid);
    let wall = start.elapsed();
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    // The child is reaped already: dropping the handle neither waits nor kills.
    drop(child);
    let (status, usage) = reaped.map_err(|e| format!("wait4: {e}"))?;

    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if timed_out {
        return Err(format!("killed after {} s\n{stderr}", limit.as_secs()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!(
            "{} (wait status {status:#x})\n{stderr}",
            describe(status)
        ));
    }
    let outcome: Outcome = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no outcome line in its output:\n{stdout}\n{stderr}"))?;
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(RunMetrics {
        wall_s: wall.as_secs_f64(),
        user_s: seconds(usage.ru_utime),
        sys_s: seconds(usage.ru_stime),
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        minor_faults: u64::try_from(usage.ru_minflt).unwrap_or(0),
        context_switches: u64::try_from(usage.ru_nvcsw + usage.ru_nivcsw).unwrap_or(0),
        outcome,
    })
}

/// Waits for child `pid` to exit and returns its wait status and resource
/// usage.
fn reap(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid for writes for the duration
        // of the call; `pid` is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A thread that kills `pid` unless told, through the returned sender, that
/// it has exited within `limit`; its result says whether it killed it.
fn spawn_watchdog(
    pid: libc::pid_t,
    limit: Duration,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<bool>) {
    let (tx, rx) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: `kill` passes no memory. The main thread tells us as
            // soon as it has reaped the child, so `pid` is still our child,
            // or, in the instant between reaping and telling, no process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    (tx, handle)
}

/// How a child that did not exit with status 0 ended.
fn describe(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    }
}
