//! The suite's workloads with spanalloc as the global allocator. See
//! `spanalloc_workloads`.

#[global_allocator]
static GLOBAL: spanalloc::SpanAlloc = spanalloc::SpanAlloc;

fn main() -> std::process::ExitCode {
    // With SPANALLOC_PROFILE_RATE set (the suite's `spanalloc-profiled`),
    // report the profiler's estimate so the suite can see it was on.
    spanalloc_workloads::cli::main_profiled("spanalloc", || {
        spanalloc::profile::is_enabled().then(|| {
            let [_, alloc_space, ..] = spanalloc::profile::totals();
            alloc_space.max(0) as u64
        })
    })
}
