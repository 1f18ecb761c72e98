//! The suite's workloads with spanalloc as the global allocator. See
//! `spanalloc_workloads`.

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

fn main() -> std::process::ExitCode {
    spanalloc_workloads::cli::main("spanalloc")
}
