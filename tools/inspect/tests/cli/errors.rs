//! Bad input: a clear message on stderr, a distinct non-zero exit code,
//! nothing on stdout, never a panic.

use std::process::Command;

use crate::common::{inspect, Run};
use crate::elf::compile;

/// Exit codes, as `spanalloc-inspect --help` documents them.
const BAD_INPUT: i32 = 1;
const NO_SUCH_PROCESS: i32 = 3;
const PERMISSION_DENIED: i32 = 4;
const IO: i32 = 5;

fn expect_failure(args: &[&str], code: i32, message: &str) -> Run {
    let run = inspect(args);
    assert_eq!(run.code, code, "{args:?}: {run:?}");
    assert!(
        run.stderr.contains(message),
        "{args:?}: want {message:?} in {run:?}"
    );
    assert!(run.stderr.starts_with("spanalloc-inspect: "), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    run
}

#[test]
fn not_an_elf_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("script.sh");
    std::fs::write(&f, "#!/bin/sh\necho hello\n").unwrap();
    expect_failure(&["elf", f.to_str().unwrap()], BAD_INPUT, "not an ELF file");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    expect_failure(
        &["elf", empty.to_str().unwrap()],
        BAD_INPUT,
        "not an ELF file (empty file)",
    );
}

#[test]
fn truncated_elf_files() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path());
    let bytes = std::fs::read(&exe).unwrap();
    for keep in [6, 64, 200, bytes.len() / 2, bytes.len() - 1] {
        let cut = dir.path().join(format!("cut-{keep}"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        expect_failure(&["elf", cut.to_str().unwrap()], BAD_INPUT, "truncated");
    }
}

#[test]
fn directories_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    expect_failure(&["elf", d], IO, "is a directory");
    expect_failure(&["heap", d], IO, "is a directory");
    let missing = dir.path().join("missing");
    let m = missing.to_str().unwrap();
    expect_failure(&["elf", m], IO, "no such file");
    expect_failure(&["heap", m], IO, "no such file");
}

#[test]
fn dead_process() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id().to_string();
    child.wait().unwrap();
    expect_failure(&["maps", &pid], NO_SUCH_PROCESS, "no such process");
    expect_failure(
        &["maps", "--summary", &pid],
        NO_SUCH_PROCESS,
        "no such process",
    );
    expect_failure(
        &["--json", "maps", &pid],
        NO_SUCH_PROCESS,
        "no such process",
    );
}

#[test]
fn another_user_s_process() {
    use std::os::unix::process::CommandExt as _;
    // As root, run the tool as nobody against this process (root's): the
    // kernel will not show it the memory map. Otherwise there is no process
    // we can be sure we may not read; say so and pass.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("another_user_s_process: skipped, not running as root");
        return;
    }
    let out = Command::new(crate::common::BIN)
        .args(["maps", &std::process::id().to_string()])
        .uid(65534)
        .gid(65534)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("another_user_s_process: skipped, cannot run the tool as nobody: {e}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    // With /proc mounted hidepid=2, other users' processes are invisible.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts.contains("hidepid=2") || mounts.contains("hidepid=invisible") {
        assert_eq!(out.status.code(), Some(NO_SUCH_PROCESS), "{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(PERMISSION_DENIED), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn zombie_process() {
    // A child that has exited but not been waited for.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    let stat = format!("/proc/{pid}/stat");
    for _ in 0..500 {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        if s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    expect_failure(
        &["maps", &pid.to_string()],
        NO_SUCH_PROCESS,
        "no such process",
    );
    child.wait().unwrap();
}

#[test]
fn garbage_heap_dumps() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, message) in [
        ("garbage.json", "this is not JSON {", "invalid JSON"),
        ("array.json", "[1, 2, 3]", "no \"version\""),
        ("future.json", r#"{"version": 99}"#, "version 99"),
        (
            "partial.json",
            r#"{"version": 1, "page_size": 8192}"#,
            "missing field",
        ),
        ("binary.json", "\u{0}\u{1}\u{2}", "invalid JSON"),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        expect_failure(&["heap", f.to_str().unwrap()], BAD_INPUT, message);
    }
    // An ELF file is not a heap dump either.
    expect_failure(&["heap", crate::common::BIN], BAD_INPUT, "invalid JSON");
}

#[test]
fn bad_command_lines_are_clap_s() {
    assert_eq!(inspect(&["maps", "not-a-pid"]).code, 2);
    assert_eq!(inspect(&["frobnicate"]).code, 2);
    let help = inspect(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("3 no such process"), "{}", help.stdout);
}
