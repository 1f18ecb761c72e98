//! Whole-program tests of libspanalloc: C and C++ programs (in `tests/c/`)
//! linked with libspanalloc.a or run under `LD_PRELOAD=libspanalloc.so`,
//! and real programs (python3, git, gcc, sqlite3, redis) under
//! `LD_PRELOAD`. One test binary, so everything links once and the tests
//! run in parallel.
//!
//! Each test first needs the library: the harness builds it with
//! `cargo build --release -p spanalloc-c` (once per run).

mod c_semantics;
mod checked;
mod cxx;
mod fork;
mod harness;
mod misuse;
mod profile;
mod real_programs;
mod stats;
mod threads;
