//! The real programs of `--c-side`, each run under every allocator in
//! `LD_PRELOAD`, a fresh process per run:
//!
//! - `python3`: `bench/programs/python3.py` builds and drops big dicts,
//!   lists and strings, with `PYTHONMALLOC=malloc` so every Python object
//!   comes from `malloc` (not from Python's own small-object allocator);
//! - `sqlite3`: `bench/programs/sqlite3.sql` on a new database file in a
//!   temporary folder: a table filled in one transaction, two indexes,
//!   queries, updates, a delete;
//! - `redis`: `redis-server` on 127.0.0.1, a free port, no persistence
//!   (`--save '' --appendonly no`), driven by `redis-benchmark` (SET, GET,
//!   LPUSH, LPOP, a bounded number of requests each), then shut down with
//!   `SHUTDOWN NOSAVE` (`SIGTERM` if that fails). Only the server gets the
//!   preload, and only the server is measured: from its spawn to its exit
//!   (wall), its CPU time, peak resident size and page faults from `wait4`.
//!
//! Every run is bounded by the suite's time limit; its temporary files, and
//! the server, are cleaned up even when the run fails. The scripts are
//! compiled into this binary and written to the scratch folder.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spanalloc_workloads::Outcome;

use super::allocators::Contender;
use super::child::{self, RunMetrics, RunPlan, Running};

/// The Python script.
const PYTHON_SCRIPT: &str = include_str!("../../programs/python3.py");
/// The SQL script.
const SQL_SCRIPT: &str = include_str!("../../programs/sqlite3.sql");

/// The redis commands `redis-benchmark` runs, `-n` requests each.
const REDIS_TESTS: [&str; 4] = ["SET", "GET", "LPUSH", "LPOP"];

/// The longest `redis-server` may take to answer `PING` after its start.
const REDIS_READY: Duration = Duration::from_secs(30);

/// A real program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// python3 running `python3.py`.
    Python,
    /// sqlite3 running `sqlite3.sql`.
    Sqlite,
    /// redis-server driven by redis-benchmark.
    Redis,
}

impl Program {
    /// All of them, in report order.
    pub const ALL: [Program; 3] = [Program::Python, Program::Sqlite, Program::Redis];

    /// Its workload's name.
    pub fn name(self) -> &'static str {
        match self {
            Program::Python => "python3",
            Program::Sqlite => "sqlite3",
            Program::Redis => "redis",
        }
    }

    /// Its size: records, rows, or requests per redis command.
    fn size(self, quick: bool) -> u64 {
        match (self, quick) {
            (Program::Python, false) => 100_000,
            (Program::Python, true) => 2_000,
            (Program::Sqlite, false) => 200_000,
            (Program::Sqlite, true) => 1_000,
            (Program::Redis, false) => 40_000,
            (Program::Redis, true) => 1_000,
        }
    }

    /// What one operation is.
    pub fn unit(self) -> &'static str {
        match self {
            Program::Python => "records",
            Program::Sqlite => "rows",
            Program::Redis => "requests",
        }
    }

    /// Operations per run.
    fn ops(self, quick: bool) -> u64 {
        match self {
            Program::Redis => self.size(quick) * REDIS_TESTS.len() as u64,
            _ => self.size(quick),
        }
    }

    /// What it does, in one line (full size).
    pub fn describe(self) -> String {
        let n = self.size(false);
        match self {
            Program::Python => format!(
                "python3 (PYTHONMALLOC=malloc): {n} records as dicts, serialised to JSON \
                 and parsed back, sorted, indexed, half deleted and regrown, split into \
                 words (bench/programs/python3.py)"
            ),
            Program::Sqlite => format!(
                "sqlite3: {n} rows inserted in one transaction into a new database file, \
                 two indexes, aggregates and sorts, updates, a delete \
                 (bench/programs/sqlite3.sql)"
            ),
            Program::Redis => format!(
                "redis-server on 127.0.0.1 without persistence, driven by redis-benchmark \
                 (50 clients, not preloaded) with {n} SET, GET, LPUSH and LPOP requests \
                 each; the server is measured, start to exit"
            ),
        }
    }

    /// The commands it needs.
    fn commands(self) -> &'static [&'static str] {
        match self {
            Program::Python => &["python3"],
            Program::Sqlite => &["sqlite3"],
            Program::Redis => &["redis-server", "redis-benchmark"],
        }
    }
}

/// A program found on this machine, ready to run.
#[derive(Clone, Debug)]
pub struct Installed {
    /// Which program.
    pub program: Program,
    /// The executable measured (python3: the interpreter itself, not a
    /// wrapper script such as pyenv's shim, which would be measured too).
    exe: PathBuf,
    /// redis-benchmark, for redis.
    client: Option<PathBuf>,
    /// Its script, written into the scratch folder.
    script: Option<PathBuf>,
    /// What it is, for the report: path and version.
    pub version: String,
}

/// Finds `program` and writes its script into `scratch`; `Err` says why it
/// cannot run here.
pub fn find(program: Program, scratch: &Path) -> Result<Installed, String> {
    let found: Vec<PathBuf> = program
        .commands()
        .iter()
        .map(|c| which(c).ok_or_else(|| format!("{c} is not installed")))
        .collect::<Result<_, _>>()?;
    let write = |name: &str, text: &str| {
        let path = scratch.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok::<_, String>(path)
    };
    let first_line = |exe: &Path, args: &[&str]| {
        let out = Command::new(exe)
            .args(args)
            .env_remove("LD_PRELOAD")
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match text.lines().next() {
            Some(line) if out.status.success() => Ok(line.trim().to_owned()),
            _ => Err(format!("{} {args:?} failed", exe.display())),
        }
    };
    let installed = match program {
        Program::Python => {
            // The interpreter behind `python3` on the PATH, and its version.
            let code = "import sys, platform; print(sys.executable, platform.python_version())";
            let line = first_line(&found[0], &["-c", code])?;
            let (exe, version) = line.rsplit_once(' ').ok_or("python3 says nothing")?;
            Installed {
                program,
                exe: PathBuf::from(exe),
                client: None,
                script: Some(write("python3.py", PYTHON_SCRIPT)?),
                version: format!("Python {version} ({exe})"),
            }
        }
        Program::Sqlite => {
            let line = first_line(&found[0], &["--version"])?;
            let version = line.split_whitespace().next().unwrap_or("?");
            Installed {
                program,
                exe: found[0].clone(),
                client: None,
                script: Some(write("sqlite3.sql", SQL_SCRIPT)?),
                version: format!("SQLite {version} ({})", found[0].display()),
            }
        }
        Program::Redis => {
            // "Redis server v=7.0.15 sha=... malloc=jemalloc-5.3.0 ...": the
            // allocator it was built with is worth saying, as it is the one
            // it runs without a preload.
            let line = first_line(&found[0], &["--version"])?;
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .unwrap_or("?")
                    .to_owned()
            };
            Installed {
                program,
                exe: found[0].clone(),
                client: Some(found[1].clone()),
                script: None,
                version: format!(
                    "redis-server {} built with malloc={} ({})",
                    field("v="),
                    field("malloc="),
                    found[0].display()
                ),
            }
        }
    };
    Ok(installed)
}

/// `command` on the `PATH`, if there is an executable file of that name.
fn which(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(command))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `program` once under `contender` and measures it.
pub fn run(
    program: &Installed,
    contender: &Contender,
    plan: &RunPlan,
) -> Result<RunMetrics, String> {
    let quick = plan.quick;
    let outcome = |elapsed_s: f64, checksum: Option<u64>| Outcome {
        name: program.program.name().to_owned(),
        allocator: contender.name.clone(),
        preload: contender.preload.as_ref().map(|p| p.display().to_string()),
        quick,
        ops: program.program.ops(quick),
        checksum,
        elapsed_s,
        final_rss: 0,
        rss_after_phase: None,
        rss_series: None,
        profiled_alloc_bytes: None,
    };
    match program.program {
        Program::Python => {
            let mut command = Command::new(&program.exe);
            command
                .arg(program.script.as_ref().expect("python3 has a script"))
                .arg(program.program.size(quick).to_string())
                .current_dir(plan.scratch)
                .env("PYTHONMALLOC", "malloc")
                .env("PYTHONHASHSEED", "0")
                .env("PYTHONDONTWRITEBYTECODE", "1");
            child::preload(&mut command, contender);
            let done = child::measure(&mut command, plan.scratch, "python3", plan.limit)?;
            done.check_success()?;
            let checksum = done
                .stdout
                .lines()
                .last()
                .and_then(|l| l.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("no checksum in its output:\n{}", done.stdout))?;
            Ok(RunMetrics::new(
                &done.usage,
                outcome(done.usage.wall_s, Some(checksum)),
            ))
        }
        Program::Sqlite => {
            let dir = TempDir::new(plan.scratch.join("sqlite3-db"))?;
            let rows = program.program.size(quick);
            let mut command = Command::new(&program.exe);
            command
                .args(["-batch", "-bail"])
                .arg(dir.0.join("bench.db"))
                .arg(format!(".parameter set :rows {rows}"))
                .arg(format!(
                    ".read {}",
                    program
                        .script
                        .as_ref()
                        .expect("sqlite3 has a script")
                        .display()
                ))
                .current_dir(&dir.0);
            child::preload(&mut command, contender);
            let done = child::measure(&mut command, plan.scratch, "sqlite3", plan.limit)?;
            done.check_success()?;
            // The first query counts the rows: a check that they all went in.
            if !done.stdout.starts_with(&format!("{rows}|")) {
                return Err(format!("unexpected output:\n{}", done.stdout));
            }
            let checksum = fnv1a(done.stdout.as_bytes());
            Ok(RunMetrics::new(
                &done.usage,
                outcome(done.usage.wall_s, Some(checksum)),
            ))
        }
        Program::Redis => {
            let (usage, client_s) = redis(program, contender, plan)?;
            Ok(RunMetrics::new(&usage, outcome(client_s, None)))
        }
    }
}

/// One redis run: the server's usage, and how long the benchmark took.
fn redis(
    program: &Installed,
    contender: &Contender,
    plan: &RunPlan,
) -> Result<(child::Usage, f64), String> {
    let dir = TempDir::new(plan.scratch.join("redis-dir"))?;
    let port = free_port()?;
    let addr = (Ipv4Addr::LOCALHOST, port);
    let port = port.to_string();
    let mut server = Command::new(&program.exe);
    server
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
        ])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir.0)
        .args(["--logfile", ""])
        .current_dir(&dir.0);
    child::preload(&mut server, contender);
    // From here on, an error drops `running`, which kills and reaps the
    // server.
    let mut running = Running::spawn(&mut server, plan.scratch, "redis-server", plan.limit)?;
    let ready = Instant::now();
    while ask(addr, "PING").as_deref() != Some("+PONG") {
        if running.has_exited()? || ready.elapsed() > REDIS_READY.min(plan.limit) {
            running.signal(libc::SIGKILL);
            let done = running.wait()?;
            return Err(format!(
                "redis-server did not start\n{}{}",
                done.stdout, done.stderr
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let requests = program.program.size(plan.quick).to_string();
    let mut client = Command::new(program.client.as_ref().expect("redis has a client"));
    client
        .args(["-h", "127.0.0.1", "-p", &port, "-n", &requests, "-q", "-t"])
        .arg(REDIS_TESTS.join(",").to_lowercase())
        .env_remove("LD_PRELOAD");
    let bench = child::measure(&mut client, plan.scratch, "redis-benchmark", plan.limit)
        .and_then(|b| b.check_success().map(|()| b))
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    // With -q it prints, per command, `SET: 12345.67 requests per second`
    // (after progress lines ending in \r).
    for test in REDIS_TESTS {
        let done = bench
            .stdout
            .split(['\r', '\n'])
            .any(|l| l.starts_with(&format!("{test}: ")) && l.contains(" requests per second"));
        if !done {
            return Err(format!(
                "redis-benchmark reported no result for {test}:\n{}",
                bench.stdout
            ));
        }
    }

    if !shutdown(addr) {
        running.signal(libc::SIGTERM);
    }
    let server = running.wait()?;
    server
        .check_success()
        .map_err(|e| format!("redis-server: {e}"))?;
    Ok((server.usage, bench.usage.wall_s))
}

/// A port on 127.0.0.1 that is free now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Sends one inline command to redis and returns the first line of its
/// answer, or `None` if the server is not (or no longer) there.
fn ask(addr: (Ipv4Addr, u16), command: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    let answer = String::from_utf8_lossy(&buf[..n]);
    Some(answer.lines().next().unwrap_or("").to_owned())
}

/// Asks redis to exit without saving; whether it agreed (it closes the
/// connection without an answer; an error answer is a refusal, and no
/// connection or no answer at all a failure).
fn shutdown(addr: (Ipv4Addr, u16)) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)) else {
        return false;
    };
    if s.set_read_timeout(Some(Duration::from_secs(10))).is_err()
        || s.write_all(b"SHUTDOWN NOSAVE\r\n").is_err()
    {
        return false;
    }
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(n) => !buf[..n].starts_with(b"-"),
        // Reset: the connection went with the server.
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// A folder that is emptied and removed when dropped, even on an error.
struct TempDir(PathBuf);

impl TempDir {
    /// Creates `path` afresh.
    fn new(path: PathBuf) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The 64-bit FNV-1a hash of `bytes`: a checksum of a program's output.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        assert_eq!(fnv1a(b""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xAF63_DC4C_8601_EC8C);
    }

    #[test]
    fn temp_dir_is_removed() {
        let path = std::env::temp_dir().join(format!("suite-tempdir-{}", std::process::id()));
        {
            let dir = TempDir::new(path.clone()).unwrap();
            std::fs::write(dir.0.join("f"), "x").unwrap();
        }
        assert!(!path.exists());
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("no-such-command-here").is_none());
    }
}
