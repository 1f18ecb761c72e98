//! One run of one workload under one allocator: a child process, measured
//! from outside.
//!
//! The child's stdout and stderr go to files (no pipe can fill up while we
//! wait), and the child is reaped with `wait4`, which hands back its resource
//! usage: CPU time, peak resident size (`ru_maxrss`, the kernel's `VmHWM`)
//! and page faults. Wall time runs from just before the spawn to just after
//! the reaping, so it includes the process's start-up and exit, as a user
//! would see them. A watchdog kills a child that runs past the time limit,
//! and a [`Running`] child that is dropped before it was reaped (an error on
//! the way, a panic) is killed and reaped, so no run leaves a process behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use spanalloc_workloads::Outcome;

use super::allocators::Contender;

/// What one run measured: the process's resource usage (flattened into the
/// JSON record) and what the workload reported about itself (for a real
/// program, what the suite read from its output).
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    /// Times, peak RSS, page faults, context switches.
    #[serde(flatten)]
    pub usage: Usage,
    /// The workload's own report.
    pub outcome: Outcome,
}

impl RunMetrics {
    /// The measurements of `usage` with `outcome`.
    pub fn new(usage: &Usage, outcome: Outcome) -> Self {
        Self {
            usage: usage.clone(),
            outcome,
        }
    }

    /// User plus system CPU seconds.
    pub fn cpu_s(&self) -> f64 {
        self.usage.user_s + self.usage.sys_s
    }
}

/// What the kernel and the clock say about one finished process.
#[derive(Clone, Debug, Serialize)]
pub struct Usage {
    /// Wall-clock seconds, spawn to reap.
    pub wall_s: f64,
    /// User CPU seconds, all threads.
    pub user_s: f64,
    /// System CPU seconds, all threads.
    pub sys_s: f64,
    /// Peak resident set size, in bytes.
    pub peak_rss: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Involuntary plus voluntary context switches.
    pub context_switches: u64,
}

impl Usage {
    fn new(wall: Duration, r: &libc::rusage) -> Self {
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Self {
            wall_s: wall.as_secs_f64(),
            user_s: seconds(r.ru_utime),
            sys_s: seconds(r.ru_stime),
            peak_rss: u64::try_from(r.ru_maxrss).unwrap_or(0) * 1024,
            minor_faults: u64::try_from(r.ru_minflt).unwrap_or(0),
            context_switches: u64::try_from(r.ru_nvcsw + r.ru_nivcsw).unwrap_or(0),
        }
    }
}

/// A process that has exited and been reaped.
#[derive(Debug)]
pub struct Finished {
    /// Its resource usage and wall time.
    pub usage: Usage,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Its wait status.
    status: libc::c_int,
    /// Whether the watchdog killed it.
    timed_out: bool,
    /// The time limit it had.
    limit: Duration,
}

impl Finished {
    /// Fails unless the process exited with status 0 in time; the error
    /// carries its stderr.
    pub fn check_success(&self) -> Result<(), String> {
        if self.timed_out {
            return Err(format!(
                "killed after {} s\n{}",
                self.limit.as_secs(),
                self.stderr
            ));
        }
        if !(libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0) {
            return Err(format!(
                "{} (wait status {:#x})\n{}{}",
                describe(self.status),
                self.status,
                self.stdout,
                self.stderr
            ));
        }
        Ok(())
    }
}

/// A child process being run and measured. Dropped before it is reaped, it
/// is killed and reaped.
pub struct Running {
    pid: libc::pid_t,
    start: Instant,
    limit: Duration,
    out_path: PathBuf,
    err_path: PathBuf,
    /// Tells the watchdog the child is reaped; taken when it is.
    done: Option<mpsc::Sender<()>>,
    /// The watchdog; its result says whether it killed the child.
    watchdog: Option<std::thread::JoinHandle<bool>>,
    /// Wait status, resource usage and wall time once reaped.
    reaped: Option<(libc::c_int, libc::rusage, Duration)>,
}

impl Running {
    /// Starts `command` with its stdout and stderr in `scratch/TAG.stdout`
    /// and `scratch/TAG.stderr` and no stdin; the watchdog kills it after
    /// `limit`.
    pub fn spawn(
        command: &mut Command,
        scratch: &Path,
        tag: &str,
        limit: Duration,
    ) -> Result<Self, String> {
        let out_path = scratch.join(format!("{tag}.stdout"));
        let err_path = scratch.join(format!("{tag}.stderr"));
        let file = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        command
            .stdin(Stdio::null())
            .stdout(file(&out_path)?)
            .stderr(file(&err_path)?);
        let start = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // From here on the child is reaped through `pid` (`wait4`), not
        // through the handle: dropping the handle neither waits nor kills.
        drop(child);
        let (done, watchdog) = spawn_watchdog(pid, limit);
        Ok(Self {
            pid,
            start,
            limit,
            out_path,
            err_path,
            done: Some(done),
            watchdog: Some(watchdog),
            reaped: None,
        })
    }

    /// Whether the child has exited (reaping it if so), without waiting.
    pub fn has_exited(&mut self) -> Result<bool, String> {
        if self.reaped.is_none() {
            self.reaped =
                reap(self.pid, libc::WNOHANG, self.start).map_err(|e| format!("wait4: {e}"))?;
        }
        Ok(self.reaped.is_some())
    }

    /// Sends `signal` to the child, if it has not been reaped.
    pub fn signal(&self, signal: libc::c_int) {
        if self.reaped.is_none() {
            // SAFETY: `kill` passes no memory; `pid` is our child and not yet
            // reaped, so it cannot be another process.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Waits for the child to exit (at most its time limit, then the
    /// watchdog kills it) and returns what it did.
    pub fn wait(mut self) -> Result<Finished, String> {
        if self.reaped.is_none() {
            self.reaped = reap(self.pid, 0, self.start).map_err(|e| format!("wait4: {e}"))?;
        }
        let (status, rusage, wall) = self.reaped.expect("wait4 without WNOHANG reaps");
        let timed_out = self.stop_watchdog();
        Ok(Finished {
            usage: Usage::new(wall, &rusage),
            stdout: std::fs::read_to_string(&self.out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err_path).unwrap_or_default(),
            status,
            timed_out,
            limit: self.limit,
        })
    }

    /// Tells the watchdog the child is reaped and waits for it; whether it
    /// had killed the child.
    fn stop_watchdog(&mut self) -> bool {
        drop(self.done.take());
        self.watchdog
            .take()
            .is_some_and(|w| w.join().unwrap_or(false))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            self.signal(libc::SIGKILL);
            let _ = reap(self.pid, 0, self.start);
        }
        self.stop_watchdog();
    }
}

/// Runs `command` to the end (at most `limit`) and measures it; `scratch`
/// and `tag` name its output files.
pub fn measure(
    command: &mut Command,
    scratch: &Path,
    tag: &str,
    limit: Duration,
) -> Result<Finished, String> {
    Running::spawn(command, scratch, tag, limit)?.wait()
}

/// Puts `contender`'s library in `command`'s `LD_PRELOAD`, or takes
/// `LD_PRELOAD` away for one without, and sets its options.
pub fn preload(command: &mut Command, contender: &Contender) {
    match &contender.preload {
        Some(lib) => command.env("LD_PRELOAD", lib),
        None => command.env_remove("LD_PRELOAD"),
    };
    command.envs(contender.env.iter().map(|(k, v)| (k, v)));
}

/// How each run is made.
pub struct RunPlan<'a> {
    /// Whether at `--quick` size.
    pub quick: bool,
    /// A folder for the children's output and temporary files.
    pub scratch: &'a Path,
    /// The longest one run may take.
    pub limit: Duration,
}

/// Runs workload `name` of a workloads program (`binary`, which prints an
/// [`Outcome`] line) under `contender`, and measures it.
pub fn run_workload(
    binary: &Path,
    contender: &Contender,
    name: &str,
    plan: &RunPlan,
) -> Result<RunMetrics, String> {
    let mut command = Command::new(binary);
    command.arg(name);
    if plan.quick {
        command.arg("--quick");
    }
    preload(&mut command, contender);
    let finished = measure(&mut command, plan.scratch, "workload", plan.limit)?;
    finished.check_success()?;
    let outcome: Outcome = finished
        .stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            format!(
                "no outcome line in its output:\n{}\n{}",
                finished.stdout, finished.stderr
            )
        })?;
    Ok(RunMetrics::new(&finished.usage, outcome))
}

/// Reaps child `pid` (`flags`: 0 to wait, `WNOHANG` not to): its wait
/// status, resource usage and the time since `start`, or `None` if it is
/// still running.
fn reap(
    pid: libc::pid_t,
    flags: libc::c_int,
    start: Instant,
) -> std::io::Result<Option<(libc::c_int, libc::rusage, Duration)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid for writes for the duration
        // of the call; `pid` is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            return Ok(Some((status, usage, start.elapsed())));
        }
        if r == 0 {
            return Ok(None);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A thread that kills `pid` unless told, through the returned sender (a
/// message or its drop), that it has exited within `limit`; its result says
/// whether it killed it.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("suite-child-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn measures_output_and_status() {
        let dir = scratch("status");
        let limit = Duration::from_secs(30);
        let ok = measure(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            &dir,
            "t",
            limit,
        )
        .unwrap();
        ok.check_success().unwrap();
        assert_eq!((ok.stdout.as_str(), ok.stderr.as_str()), ("out\n", "err\n"));
        assert!(ok.usage.wall_s > 0.0 && ok.usage.peak_rss > 0);
        let bad = measure(Command::new("sh").args(["-c", "exit 3"]), &dir, "t", limit).unwrap();
        assert!(bad.check_success().unwrap_err().contains("status 3"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn watchdog_kills_and_drop_reaps() {
        let dir = scratch("kill");
        let slow = measure(
            Command::new("sleep").arg("30"),
            &dir,
            "t",
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(slow.check_success().unwrap_err().contains("killed after"));

        let mut running = Running::spawn(
            Command::new("sleep").arg("30"),
            &dir,
            "t",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(!running.has_exited().unwrap());
        let pid = running.pid;
        drop(running);
        // Killed and reaped: no such process any more.
        // SAFETY: signal 0 only checks whether `pid` exists.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
