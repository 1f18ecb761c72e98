//! The suite's workloads with mimalloc (the `mimalloc` crate's bundled build)
//! as the global allocator. See `spanalloc_workloads`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    spanalloc_workloads::cli::main("mimalloc")
}
