//! C++ (`tests/c/cxx.cpp`): every form of `operator new` and `operator
//! delete`, alignment, `std::bad_alloc` and the new-handler, the standard
//! library on top.

use crate::harness::{run, Program, BOTH};
use std::time::Duration;

pub static CXX: Program = Program::new("cxx.cpp");

fn case(name: &str) {
    for link in BOTH {
        run(&mut CXX.command(link, &[name]), Duration::from_secs(60))
            .assert_success()
            .assert_stdout_has(&format!("ok {name}"));
    }
}

/// All twenty forms resolve to spanalloc (not libstdc++'s, which would call
/// malloc and pass the other tests too).
#[test]
fn cxx_symbols() {
    case("symbols");
}

/// `new`/`delete`, arrays, sized delete (`-fsized-deallocation`), `new(0)`,
/// `delete nullptr`.
#[test]
fn cxx_plain() {
    case("plain");
}

/// `alignas(64)`, `alignas(4096)` and `alignas(128)` types, and explicit
/// aligned forms for alignments up to 1 MiB.
#[test]
fn cxx_aligned() {
    case("aligned");
}

/// The `nothrow` forms: blocks, and null when memory is refused.
#[test]
fn cxx_nothrow() {
    case("nothrow");
}

/// The throwing forms throw `std::bad_alloc` when memory is refused.
#[test]
fn cxx_bad_alloc() {
    case("bad_alloc");
}

/// The new-handler is called until it uninstalls itself; an exception it
/// throws reaches the caller.
#[test]
fn cxx_new_handler() {
    case("new_handler");
}

/// Strings, hash maps, trees, shared pointers, exceptions.
#[test]
fn cxx_stl() {
    case("stl");
}
