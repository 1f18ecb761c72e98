//! How big a run is: the full size, sized for a few seconds on the project's
//! machine in a release build, or `--quick`, a smoke test of a few
//! milliseconds that still takes every path of the workload.

/// The size of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// About 1–3 seconds per workload in a release build on 2 cores.
    Full,
    /// A smoke test: every code path, a tiny amount of work.
    Quick,
}

impl Size {
    /// `full` for a full run, `quick` for a quick one.
    pub fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Size::Full => full,
            Size::Quick => quick,
        }
    }
}

/// `total` units of work split among `threads` threads: the share of thread
/// `index` (the first `total % threads` threads get one more).
pub fn share(total: u64, threads: usize, index: usize) -> u64 {
    let threads = threads as u64;
    total / threads + u64::from((index as u64) < total % threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for threads in [1, 2, 3, 8] {
            let sum: u64 = (0..threads).map(|i| share(1001, threads, i)).sum();
            assert_eq!(sum, 1001);
        }
        assert_eq!(Size::Quick.pick(10, 1), 1);
    }
}
