//! Misuse stops the program (`tests/c/misuse.c`, and `operator delete` in
//! `tests/c/cxx.cpp`): `SIGABRT`, and a message on stderr naming the call
//! and the pointer.

use crate::cxx::CXX;
use crate::harness::{run, Program, BOTH};
use std::time::Duration;

static MISUSE: Program = Program::new("misuse.c");

/// Runs a misuse case (with `SPANALLOC_CHECK=1` if `checked`) and checks
/// that it aborted with spanalloc's message: `spanalloc: CALL(): ...` naming
/// the pointer the program announced on stdout ("ptr 0x...").
fn expect_abort(program: &Program, case: &str, checked: bool, call: &str, what: &str) {
    for link in BOTH {
        let mut cmd = program.command(link, &[case]);
        if checked {
            cmd.env("SPANALLOC_CHECK", "1");
        }
        let out = run(&mut cmd, Duration::from_secs(30));
        out.assert_aborted();
        let ptr = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("ptr "))
            .unwrap_or_else(|| panic!("no pointer announced\n{out}"));
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("spanalloc: {call}(): ")))
            .unwrap_or_else(|| panic!("no message from {call}\n{out}"));
        assert!(
            line.contains(what) && line.ends_with(ptr),
            "the message should say {what:?} and name {ptr}\n{out}"
        );
    }
}

const INVALID: &str = "invalid pointer";

/// `free` of a stack address.
#[test]
fn free_of_stack_pointer_aborts() {
    expect_abort(&MISUSE, "free_stack", false, "free", INVALID);
}

/// `free` of a page from `mmap`.
#[test]
fn free_of_mmap_pointer_aborts() {
    expect_abort(&MISUSE, "free_mmap", false, "free", INVALID);
}

/// `free` of a pointer into the middle of a block.
#[test]
fn free_of_interior_pointer_aborts() {
    expect_abort(&MISUSE, "free_interior", false, "free", INVALID);
}

/// `realloc` of a global.
#[test]
fn realloc_of_foreign_pointer_aborts() {
    expect_abort(&MISUSE, "realloc_foreign", false, "realloc", INVALID);
}

/// `realloc(p, 0)` (which frees) of a stack address.
#[test]
fn realloc_zero_of_foreign_pointer_aborts() {
    expect_abort(&MISUSE, "realloc_zero_foreign", false, "realloc", INVALID);
}

/// `operator delete` of a global.
#[test]
fn delete_of_foreign_pointer_aborts() {
    expect_abort(&CXX, "delete_foreign", false, "operator delete", INVALID);
}

/// `free(p); free(p);` in checked mode.
#[test]
fn double_free_aborts_in_checked_mode() {
    expect_abort(&MISUSE, "double_free", true, "free", "double free");
}

/// A double free with other frees in between, in checked mode.
#[test]
fn later_double_free_aborts_in_checked_mode() {
    expect_abort(&MISUSE, "double_free_later", true, "free", "double free");
}
