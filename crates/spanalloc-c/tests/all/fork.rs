//! `fork()` from a multi-threaded parent while its threads allocate
//! (`tests/c/fork.c`): the allocator's `pthread_atfork` hooks must leave the
//! child a usable heap.

use crate::harness::{run, Program, BOTH};
use std::time::Duration;

pub static FORK: Program = Program::new("fork.c");

/// Sixty forks while three threads allocate and free; each child
/// allocates, frees, starts a thread of its own and exits 0.
#[test]
fn fork_while_allocating() {
    for link in BOTH {
        run(
            &mut FORK.command(link, &["fork_while_allocating"]),
            Duration::from_secs(120),
        )
        .assert_success()
        .assert_stdout_has("ok fork_while_allocating");
    }
}
