//! Building libspanalloc, compiling the C and C++ test programs against it
//! (both ways: linked with libspanalloc.a, and plain under
//! `LD_PRELOAD=libspanalloc.so`), running programs with a time limit, and
//! reading spanalloc's statistics report.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The built library.
pub struct Library {
    /// `libspanalloc.so`, for `LD_PRELOAD`.
    pub so: PathBuf,
    /// `libspanalloc.a`, to link into a program.
    pub a: PathBuf,
}

/// The library, built once per test run (`cargo build --release -p
/// spanalloc-c`, in the workspace's target directory; cargo reports where).
pub fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(build_library)
}

fn build_library() -> Library {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "-p", "spanalloc-c"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run cargo");
    assert!(
        out.status.success(),
        "cargo build --release -p spanalloc-c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The artifact messages list the files built; they are JSON strings, and
    // paths without quotes or backslashes need no JSON parser to be found.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let file = |suffix: &str| -> PathBuf {
        stdout
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\""))
            .flat_map(|l| l.split('"'))
            .find(|s| s.ends_with(suffix))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("cargo built no {suffix}:\n{stdout}"))
    };
    Library {
        so: file("/libspanalloc.so"),
        a: file("/libspanalloc.a"),
    }
}

/// How a test program gets spanalloc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Linked with libspanalloc.a (`--whole-archive`).
    Static,
    /// Built plain, run under `LD_PRELOAD=libspanalloc.so`.
    Preload,
}

/// Both ways, for tests that run a program each way.
pub const BOTH: [Link; 2] = [Link::Static, Link::Preload];

/// A test program: one source file in `tests/c/`, compiled on first use
/// once for each [`Link`].
pub struct Program {
    source: &'static str,
    /// Linked statically, for `LD_PRELOAD`, as a shared library.
    built: [OnceLock<PathBuf>; 3],
}

impl Program {
    /// The program built from `tests/c/<source>` (C, or C++ for `.cpp`).
    pub const fn new(source: &'static str) -> Self {
        Program {
            source,
            built: [OnceLock::new(), OnceLock::new(), OnceLock::new()],
        }
    }

    /// The executable for `link`, compiled if need be.
    pub fn path(&self, link: Link) -> &Path {
        self.built[link as usize].get_or_init(|| compile(self.source, Some(link)))
    }

    /// The source built as a shared library (for `dlopen`), without
    /// spanalloc.
    pub fn shared_library(&self) -> &Path {
        self.built[2].get_or_init(|| compile(self.source, None))
    }

    /// A command running the program (under `LD_PRELOAD` if `link` says
    /// so), with `args`, and with spanalloc's options unset.
    pub fn command(&self, link: Link, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path(link));
        cmd.args(args);
        clear_options(&mut cmd);
        if link == Link::Preload {
            cmd.env("LD_PRELOAD", &library().so);
        }
        cmd
    }
}

/// Unsets spanalloc's options (`SPANALLOC_*`) in `cmd`'s environment, so
/// a test sees only the ones it sets.
pub fn clear_options(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SPANALLOC_") {
            cmd.env_remove(name);
        }
    }
}

/// Compiles `tests/c/<source>` into the test scratch directory: an
/// executable that gets spanalloc as `link` says, or (None) a shared
/// library.
fn compile(source: &str, link: Option<Link>) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src_dir = crate_dir.join("tests/c");
    let include_dir = crate_dir.join("../../include");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spanalloc-c");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stem = source.rsplit_once('.').map_or(source, |(s, _)| s);
    let exe = match link {
        Some(link) => out_dir.join(format!("{stem}-{}", format!("{link:?}").to_lowercase())),
        None => out_dir.join(format!("lib{stem}.so")),
    };
    let cxx = source.ends_with(".cpp");
    let mut cmd = Command::new(if cxx { "c++" } else { "cc" });
    cmd.args(["-O2", "-g", "-Wall", "-pthread"])
        .arg("-I")
        .arg(&include_dir)
        .arg(src_dir.join(source))
        .arg("-o")
        .arg(&exe);
    if cxx {
        cmd.args(["-std=c++17", "-fsized-deallocation", "-faligned-new"]);
    } else {
        cmd.args([
            "-std=gnu11",
            "-Wno-maybe-uninitialized",
            "-Wno-use-after-free",
        ]);
    }
    if link.is_none() {
        cmd.args(["-shared", "-fPIC"]);
    }
    if link == Some(Link::Static) {
        // Every member of the archive: the shims and the library constructor
        // must all come from spanalloc (see the crate's documentation).
        cmd.arg("-Wl,--whole-archive")
            .arg(&library().a)
            .arg("-Wl,--no-whole-archive");
    }
    cmd.args(["-lpthread", "-ldl", "-lm"]);
    let out = cmd.output().expect("cannot run the C compiler");
    assert!(
        out.status.success(),
        "compiling {source} failed: {cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// What a finished program did.
pub struct Outcome {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// What ran, for messages.
    pub what: String,
}

impl Outcome {
    /// Panics, showing everything, unless the program exited with 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "{} failed\n{self}", self.what);
        self
    }

    /// Panics unless the program was killed by `SIGABRT`.
    #[track_caller]
    pub fn assert_aborted(&self) -> &Self {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            self.status.signal(),
            Some(libc::SIGABRT),
            "{} did not abort\n{self}",
            self.what
        );
        self
    }

    /// Panics unless standard output contains `text`.
    #[track_caller]
    pub fn assert_stdout_has(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "no {text:?} on stdout\n{self}");
        self
    }

    /// Panics unless standard error contains `text`.
    #[track_caller]
    pub fn assert_stderr_has(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "no {text:?} on stderr\n{self}");
        self
    }

    /// The statistics reports on standard error, in order (one per process
    /// that exited with `SPANALLOC_STATS=1`).
    pub fn reports(&self) -> Vec<Report> {
        Report::parse_all(&self.stderr)
    }

    /// Panics unless standard error holds a statistics report with at least
    /// `min_allocs` allocations; returns the largest report.
    #[track_caller]
    pub fn assert_report(&self, min_allocs: u64) -> Report {
        let best = self.reports().into_iter().max_by_key(|r| r.allocs);
        match best {
            Some(r) if r.allocs >= min_allocs => r,
            _ => panic!("no statistics report with >= {min_allocs} allocations\n{self}"),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |s: &str| -> String {
            let s = s.trim_end();
            if s.len() > 6000 {
                let mut at = s.len() - 6000;
                while !s.is_char_boundary(at) {
                    at += 1;
                }
                format!("[...]{}", &s[at..])
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "status: {}\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.status,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// Runs `cmd` to the end with no input, killing it after `limit`.
#[track_caller]
pub fn run(cmd: &mut Command, limit: Duration) -> Outcome {
    Running::start(cmd).finish(limit)
}

/// A program started in the background, its output collected as it comes.
pub struct Running {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    what: String,
}

impl Running {
    /// Starts `cmd` with no input.
    #[track_caller]
    pub fn start(cmd: &mut Command) -> Running {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        // Drain both pipes on threads, so a chatty program cannot block.
        fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                String::from_utf8_lossy(&v).into_owned()
            })
        }
        Running {
            stdout: Some(drain(child.stdout.take().unwrap())),
            stderr: Some(drain(child.stderr.take().unwrap())),
            child,
            what,
        }
    }

    /// Waits for the program to end, killing it (and failing) after `limit`.
    #[track_caller]
    pub fn finish(mut self, limit: Duration) -> Outcome {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {limit:?}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
            what: std::mem::take(&mut self.what),
        }
    }
}

impl Drop for Running {
    /// A test that fails half-way leaves no program behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The figures the tests read from a statistics report (the text table
/// `SPANALLOC_STATS=1` prints at exit).
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Allocations: the sum of the per-class `allocs` column, plus
    /// `large_allocs`.
    pub allocs: u64,
    /// Frees, likewise.
    pub frees: u64,
}

impl Report {
    /// Every report in `text`, in order.
    pub fn parse_all(text: &str) -> Vec<Report> {
        text.split("spanalloc statistics")
            .skip(1)
            .map(Report::parse)
            .collect()
    }

    /// One report: `name value` lines, then a table whose header names
    /// the columns.
    fn parse(body: &str) -> Report {
        let mut r = Report::default();
        let mut columns: Option<(usize, usize)> = None;
        for line in body.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match (words.as_slice(), columns) {
                (["large_allocs", v], _) => r.allocs += v.parse::<u64>().unwrap_or(0),
                (["large_frees", v], _) => r.frees += v.parse::<u64>().unwrap_or(0),
                (header, None) if header.contains(&"allocs") => {
                    let at = |name| header.iter().position(|w| *w == name);
                    columns = at("allocs").zip(at("frees"));
                }
                (row, Some((a, f))) => {
                    let num = |i: usize| row.get(i).and_then(|w| w.parse::<u64>().ok());
                    match (num(a), num(f)) {
                        (Some(x), Some(y)) => {
                            r.allocs += x;
                            r.frees += y;
                        }
                        _ => break, // the end of the table
                    }
                }
                _ => {}
            }
        }
        r
    }
}

/// The path of an installed program, or None, which a test takes as "skip":
/// only outside CI. Under CI (`CI` set) a missing program is a failure, as
/// `.ci/install-packages` installs them.
#[track_caller]
pub fn installed(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed (CI runs .ci/install-packages first)"
        );
        eprintln!("SKIPPED: {program} is not installed (run .ci/install-packages)");
    }
    found
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A fresh empty directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("spanalloc-c")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command for an installed program under `LD_PRELOAD=libspanalloc.so`
/// with `SPANALLOC_STATS=1`.
pub fn preloaded(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    clear_options(&mut cmd);
    cmd.env("LD_PRELOAD", &library().so)
        .env("SPANALLOC_STATS", "1");
    cmd
}
