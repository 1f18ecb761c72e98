//! Threads (`tests/c/threads.c`): cross-thread frees, threads exiting with
//! full caches, contents checked at every hand-over.

use crate::harness::{run, scratch_dir, Program, BOTH};
use std::time::Duration;

pub static THREADS: Program = Program::new("threads.c");

fn case(name: &str) {
    for link in BOTH {
        run(
            &mut THREADS.command(link, &[name]),
            Duration::from_secs(120),
        )
        .assert_success()
        .assert_stdout_has(&format!("ok {name}"));
    }
}

/// Three producer/consumer pairs: every block is freed by a thread other
/// than the one that allocated it.
#[test]
fn producer_consumer() {
    case("producer_consumer");
}

/// Waves of short-lived threads that exit holding blocks (freed later by
/// the main thread) and full caches.
#[test]
fn thread_exit() {
    case("thread_exit");
}

/// Detached threads exiting while others allocate.
#[test]
fn detached_exit() {
    case("detached_exit");
}

/// A program that blocks SIGTERM after some work and takes it with
/// `sigwait` gets it, rather than being killed through a thread the
/// allocator started for itself with the signal unblocked.
#[test]
fn signals_reach_the_program() {
    case("sigwait_after_work");
}

static DLOPEN: Program = Program::new("dlopen.c");
static TLS_MODULE: Program = Program::new("tls_module.c");

/// `dlopen` of 24 libraries with thread-local storage (more than glibc's
/// spare TLS slots, so each thread's TLS vector grows) while threads
/// allocate and touch them.
#[test]
fn dlopen_of_libraries_with_tls() {
    let dir = scratch_dir("dlopen");
    let modules = 24;
    for i in 0..modules {
        // Copies, not links: glibc loads a file once per inode.
        std::fs::copy(TLS_MODULE.shared_library(), dir.join(format!("tls{i}.so"))).unwrap();
    }
    let dir = dir.to_str().unwrap();
    for link in BOTH {
        run(
            &mut DLOPEN.command(link, &[dir, &modules.to_string()]),
            Duration::from_secs(120),
        )
        .assert_success()
        .assert_stdout_has("ok dlopen");
    }
}
