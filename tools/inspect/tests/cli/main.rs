//! The `spanalloc-inspect` binary, run as a user would: `elf` against GNU
//! `size` and `readelf` on a C program compiled here and on the tool itself,
//! `maps` on this test process, `heap` on a hand-made dump, `profile` on
//! pprof profiles built here, and bad input of every kind (a clear message,
//! a non-zero exit, never a panic).
//!
//! One binary for all of them (bumpalo's layout) keeps link time down.

#[path = "../common/mod.rs"]
mod common;
// The tool's own profile.proto structs, to build profiles with.
#[path = "../../src/pprof.rs"]
mod pprof;

mod elf;
mod errors;
mod heap;
mod maps;
mod profile;
