//! The suite's workloads with jemalloc (the `tikv-jemallocator` crate's
//! bundled build) as the global allocator. See `spanalloc_workloads`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    spanalloc_workloads::cli::main("jemalloc")
}
