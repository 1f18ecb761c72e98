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
    expect_failure(&["profile", d], IO, "is a directory");
    expect_failure(&["profile", m], IO, "no such file");
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
fn garbage_profiles() {
    use crate::profile::{gzip, heap_profile, write};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = heap_profile().encode();
    let good_gz = gzip(&good);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "not a pprof profile: empty file"),
        (
            "text",
            b"this is not a profile\n".to_vec(),
            "not a pprof profile: invalid protobuf",
        ),
        // Valid protobuf (a time_nanos field) but no sample types.
        (
            "time-only",
            vec![0x48, 0x01],
            "not a valid pprof profile: no sample types",
        ),
        (
            "truncated.gz",
            good_gz[..good_gz.len() / 2].to_vec(),
            "truncated gzip data",
        ),
        (
            "garbage.gz",
            gzip(b"\xff\xff\xff\xff not protobuf"),
            "invalid protobuf",
        ),
        (
            "cut.pb",
            good[..good.len() - 5].to_vec(),
            "not a pprof profile",
        ),
        (
            "badgzip.gz",
            [&[0x1f, 0x8b, 8, 0][..], &[0xff; 40]].concat(),
            "not a pprof profile",
        ),
    ];
    for (name, bytes, message) in cases {
        let f = write(d, name, &bytes);
        expect_failure(&["profile", f.to_str().unwrap()], BAD_INPUT, message);
    }
    // An ELF file is not a profile either.
    expect_failure(
        &["profile", crate::common::BIN],
        BAD_INPUT,
        "not a pprof profile",
    );

    // Dangling references, each found and named.
    let mut b = heap_profile();
    b.profile.sample[2].location_id.push(77);
    let f = write(d, "location.pb.gz", &gzip(&b.encode()));
    expect_failure(
        &["profile", f.to_str().unwrap()],
        BAD_INPUT,
        "sample 2 refers to location 77, which is not in the profile",
    );
    let mut b = heap_profile();
    b.profile.location[1].line[1].function_id = 99;
    let f = write(d, "function.pb.gz", &gzip(&b.encode()));
    expect_failure(
        &["profile", f.to_str().unwrap()],
        BAD_INPUT,
        "location 2 refers to function 99",
    );
    let mut b = heap_profile();
    b.profile.function[0].name = 5000;
    let f = write(d, "string.pb.gz", &gzip(&b.encode()));
    expect_failure(
        &["profile", f.to_str().unwrap()],
        BAD_INPUT,
        "the name of function 1 is string 5000, outside the string table",
    );
    let mut b = heap_profile();
    b.profile.sample[0].value.truncate(2);
    let f = write(d, "values.pb.gz", &gzip(&b.encode()));
    expect_failure(
        &["profile", f.to_str().unwrap()],
        BAD_INPUT,
        "sample 0 has 2 values for 6 sample types",
    );
    let mut b = heap_profile();
    b.profile.string_table[0] = b"x".to_vec();
    let f = write(d, "strings.pb.gz", &gzip(&b.encode()));
    expect_failure(
        &["profile", f.to_str().unwrap()],
        BAD_INPUT,
        "the string table starts with \"x\"",
    );
}

#[test]
fn profile_options_that_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let f = crate::profile::heap_profile_file(dir.path());
    let f = f.to_str().unwrap();
    // A sample type the profile lacks is a usage error, as clap's are.
    let run = expect_failure(
        &["profile", f, "--sample", "cpu"],
        2,
        "no sample type \"cpu\"; the profile has alloc_objects, alloc_space",
    );
    assert!(run.stderr.contains("peak_space"), "{run:?}");
    assert_eq!(inspect(&["profile", f, "--top", "many"]).code, 2);

    // A flame graph that cannot be written, or has nothing to draw.
    let out = dir.path().join("no/such/dir/flame.svg");
    expect_failure(
        &["profile", f, "--flamegraph", out.to_str().unwrap()],
        IO,
        "cannot write the flame graph",
    );
    let mut b = crate::profile::heap_profile();
    for s in &mut b.profile.sample {
        s.value[3] = 0;
    }
    let g = crate::profile::write(dir.path(), "zero.pb.gz", &crate::profile::gzip(&b.encode()));
    let out = dir.path().join("flame.svg");
    expect_failure(
        &[
            "profile",
            g.to_str().unwrap(),
            "--flamegraph",
            out.to_str().unwrap(),
        ],
        BAD_INPUT,
        "cannot draw a flame graph: no sample has a positive inuse_space",
    );
    assert!(!out.exists());
    // Without --flamegraph the same profile is fine: a total of zero.
    let run = crate::common::inspect_ok(&["profile", g.to_str().unwrap()]);
    assert!(run.stdout.contains("total inuse_space: 0 B"), "{run:?}");
    assert!(
        run.stdout
            .contains("no function has a non-zero inuse_space"),
        "{run:?}"
    );
}

#[test]
fn bad_command_lines_are_clap_s() {
    assert_eq!(inspect(&["maps", "not-a-pid"]).code, 2);
    assert_eq!(inspect(&["frobnicate"]).code, 2);
    let help = inspect(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("3 no such process"), "{}", help.stdout);
}
