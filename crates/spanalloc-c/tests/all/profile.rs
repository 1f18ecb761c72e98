//! The heap profiler in C programs: `SPANALLOC_PROFILE` at exit,
//! `spanalloc_profile_write` on demand, `SPANALLOC_PROFILE_SIGNAL`; the
//! profiles are decoded here and read by `go tool pprof`.

#[path = "../../../spanalloc/tests/common/pprof.rs"]
mod pprof;

use crate::harness::{run, scratch_dir, Link, Program, BOTH};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

static PROFILE: Program = Program::new("profile.c");

const MIB: f64 = (1 << 20) as f64;

fn in_use_mib(p: &pprof::Profile, func: &str) -> f64 {
    p.total_for("inuse_space", func) as f64 / MIB
}

/// At exit, each way of linking: 32 MiB from hold_big and 4 MiB from
/// hold_small in use, within four standard deviations at 16 KiB
/// (sqrt(rate / bytes): 2.2% and 6.3%); churn allocated 512 MiB and holds
/// nothing. `go tool pprof` lists the sites in that order.
#[test]
fn profile_written_at_exit_attributes_sites() {
    for link in BOTH {
        let dir = scratch_dir(&format!("profile-{link:?}"));
        let path = dir.join("sites.pprof");
        let mut cmd = PROFILE.command(link, &["sites"]);
        cmd.env("SPANALLOC_PROFILE", &path)
            .env("SPANALLOC_PROFILE_RATE", "16K");
        run(&mut cmd, Duration::from_secs(120))
            .assert_success()
            .assert_stdout_has("ok sites");
        let p = pprof::decode(&std::fs::read(&path).expect("profile written at exit"));
        let big = in_use_mib(&p, "hold_big");
        let small = in_use_mib(&p, "hold_small");
        let churn_inuse = in_use_mib(&p, "churn");
        let churn_alloc = p.total_for("alloc_space", "churn") as f64 / MIB;
        assert!(
            (big - 32.0).abs() < 32.0 * 0.09,
            "{link:?}: hold_big {big} MiB"
        );
        assert!(
            (small - 4.0).abs() < 4.0 * 0.25,
            "{link:?}: hold_small {small} MiB"
        );
        assert!(
            churn_inuse < 0.5,
            "{link:?}: churn in use {churn_inuse} MiB"
        );
        // 2 KiB then 6000 B per round (6000 B sampled in its 6144-byte class):
        // about 700 MiB of objects.
        assert!(
            churn_alloc > 500.0,
            "{link:?}: churn allocated {churn_alloc} MiB"
        );
        // The C entry points were trimmed: no stack starts in malloc.
        for (stack, _) in &p.samples {
            let top = stack.first().map(String::as_str).unwrap_or("");
            assert!(
                !matches!(top, "malloc" | "calloc" | "realloc" | "free"),
                "untrimmed stack {stack:?}"
            );
        }
        go_pprof_lists_in_order(&path, &["hold_big", "hold_small"]);
    }
}

/// `go tool pprof -top` reads the file and lists `funcs` in this order.
fn go_pprof_lists_in_order(path: &Path, funcs: &[&str]) {
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", "-cum", "-sample_index=inuse_space"])
        .arg(path)
        .output()
        .expect("run go tool pprof (Debian package golang-go)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pos: Vec<usize> = funcs
        .iter()
        .map(|f| {
            text.lines()
                .position(|l| l.contains(f))
                .unwrap_or_else(|| panic!("{f} missing from go tool pprof -top:\n{text}"))
        })
        .collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "{funcs:?} out of order:\n{text}"
    );
}

/// Sampling turned on by the program and a profile written on demand.
#[test]
fn profile_written_on_demand() {
    let dir = scratch_dir("profile-on-demand");
    let path = dir.join("now.pprof");
    run(
        &mut PROFILE.command(Link::Preload, &["on-demand", path.to_str().unwrap()]),
        Duration::from_secs(60),
    )
    .assert_success()
    .assert_stdout_has("ok on-demand");
    let p = pprof::decode(&std::fs::read(&path).unwrap());
    let big = in_use_mib(&p, "hold_big");
    // 32 MiB at 8 KiB: 1.6% standard deviation.
    assert!((big - 32.0).abs() < 32.0 * 0.07, "hold_big {big} MiB");
}

/// `SPANALLOC_PROFILE_SIGNAL=12`: SIGUSR2 writes PATH.1.
#[test]
fn profile_written_on_a_signal() {
    let dir = scratch_dir("profile-signal");
    let base = dir.join("sig.pprof");
    let _ = std::fs::remove_file(dir.join("sig.pprof.1"));
    let mut cmd = PROFILE.command(Link::Preload, &["signal", base.to_str().unwrap()]);
    cmd.env("SPANALLOC_PROFILE", &base)
        .env("SPANALLOC_PROFILE_SIGNAL", libc_sigusr2());
    run(&mut cmd, Duration::from_secs(60))
        .assert_success()
        .assert_stdout_has("ok signal");
    let p = pprof::decode(&std::fs::read(dir.join("sig.pprof.1")).unwrap());
    assert!(in_use_mib(&p, "hold_big") > 16.0);
}

fn libc_sigusr2() -> String {
    // SIGUSR2 on Linux (x86_64 and aarch64).
    "12".to_owned()
}
