//! The suite's workloads with the system allocator (glibc malloc) as the
//! global allocator. See `spanalloc_workloads`.

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() -> std::process::ExitCode {
    spanalloc_workloads::cli::main("system")
}
