//! Checked mode (`SPANALLOC_CHECK=1`, every free verified against its span)
//! runs the test programs clean: no block is freed twice or freed as
//! something it is not, by the shims or the C and C++ libraries above them.

use crate::c_semantics::SEMANTICS;
use crate::cxx::CXX;
use crate::fork::FORK;
use crate::harness::{run, Program, BOTH};
use crate::threads::THREADS;
use std::time::Duration;

fn checked(program: &Program, case: &str) {
    for link in BOTH {
        let mut cmd = program.command(link, &[case]);
        cmd.env("SPANALLOC_CHECK", "1");
        run(&mut cmd, Duration::from_secs(120))
            .assert_success()
            .assert_stdout_has(&format!("ok {case}"));
    }
}

/// 100,000 mallocs and frees of mixed sizes, and realloc through every size.
#[test]
fn checked_c_workload() {
    checked(&SEMANTICS, "workload");
    checked(&SEMANTICS, "realloc_contents");
    checked(&SEMANTICS, "libc_internal");
}

/// Cross-thread frees and thread exits.
#[test]
fn checked_threads() {
    checked(&THREADS, "producer_consumer");
    checked(&THREADS, "thread_exit");
}

/// Forks while threads allocate.
#[test]
fn checked_fork() {
    checked(&FORK, "fork_while_allocating");
}

/// The C++ standard library, and aligned new and delete.
#[test]
fn checked_cxx() {
    checked(&CXX, "stl");
    checked(&CXX, "aligned");
}
