//! Timing: calibration, round-robin alternation of the allocators, and the
//! statistics taken over the rounds.
//!
//! The machines this runs on are shared and small (two cores): a neighbour's
//! job can slow one measurement down by tens of percent, and absolute times
//! drift from one run to the next. Ratios between allocators measured close
//! together in time are stable. So:
//!
//! 1. The number of iterations is calibrated once per workload, so that one
//!    measurement lasts about the target time (the median of the three
//!    allocators' speeds decides; a slower allocator simply runs longer).
//!    Each allocator first runs one untimed iteration, so that first-touch
//!    page faults and lazy initialisation do not distort the estimate.
//! 2. Each allocator runs one full measurement as a warm-up, untimed: what
//!    the first real measurement would otherwise pay for belongs to no round.
//! 3. The allocators then run alternately, one measurement each per round,
//!    for the given number of rounds, so a burst of noise hits all of them
//!    alike. Each round starts one allocator further along (`A B C`, `B C A`,
//!    `C A B`, ...): whoever runs first after another allocator has filled
//!    the caches with its own memory, or right after a particular one, pays
//!    for it, and rotating spreads that cost evenly instead of always
//!    charging it to the same allocator.
//! 4. The median of the rounds is the allocator's result; the minimum and the
//!    maximum are reported next to it so the spread stays visible.

use std::time::{Duration, Instant};

use crate::allocators::{Allocator, CallMode};
use crate::workloads::Workload;

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Timed rounds; each round measures every allocator once.
    pub rounds: usize,
    /// Intended length of one measurement.
    pub target: Duration,
    /// How the workloads call the allocators.
    pub calls: CallMode,
}

/// The timings of one workload: for each allocator, one sample per round.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Iterations per measurement, as calibrated.
    pub iterations: u64,
    /// Operations (allocations, each with its free) per iteration.
    pub ops_per_iteration: u64,
    /// Nanoseconds per operation, one entry per round, for each allocator in
    /// the order of the `allocators` argument of [`measure`].
    pub samples: Vec<(Allocator, Vec<f64>)>,
}

/// Times the final calibration probe of each allocator is run; the fastest
/// counts.
const PROBE_REPEATS: u32 = 3;

/// Longest a calibration probe may grow to, in iterations; a guard against a
/// workload so fast that the timer reads zero.
const MAX_PROBE_ITERATIONS: u64 = 1 << 32;

/// Measures `workload` against each of `allocators` according to `plan`.
pub fn measure(workload: &mut Workload, allocators: &[Allocator], plan: &Plan) -> Measurement {
    let iterations = calibrate(workload, allocators, plan);
    let ops = iterations * workload.ops_per_iteration();
    for &allocator in allocators {
        time(allocator, plan.calls, workload, iterations);
    }
    let mut samples: Vec<(Allocator, Vec<f64>)> = allocators
        .iter()
        .map(|&a| (a, Vec::with_capacity(plan.rounds)))
        .collect();
    for round in 0..plan.rounds {
        for slot in run_order(round, samples.len()) {
            let (allocator, row) = &mut samples[slot];
            let elapsed = time(*allocator, plan.calls, workload, iterations);
            row.push(elapsed.as_nanos() as f64 / ops as f64);
        }
    }
    Measurement {
        iterations,
        ops_per_iteration: workload.ops_per_iteration(),
        samples,
    }
}

/// The order in which round `round` runs `count` allocators: all of them,
/// starting one further along each round (`A B C`, `B C A`, `C A B`, ...), so
/// that no allocator always runs first, or always right after the same one.
fn run_order(round: usize, count: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |k| (round + k) % count)
}

/// Iterations that make one measurement of `workload` last about the plan's
/// target.
///
/// Each allocator runs one untimed iteration, then is probed with 1, 2, 4, ...
/// iterations until a probe lasts an eighth of the target. That probe is
/// repeated [`PROBE_REPEATS`] times and the fastest kept, since noise only
/// ever makes a run slower. The median speed of the allocators sets the count.
fn calibrate(workload: &mut Workload, allocators: &[Allocator], plan: &Plan) -> u64 {
    for &allocator in allocators {
        time(allocator, plan.calls, workload, 1);
    }
    let probe_target = plan.target / 8;
    let ns_per_iteration: Vec<f64> = allocators
        .iter()
        .map(|&allocator| {
            let mut n = 1;
            let mut elapsed = time(allocator, plan.calls, workload, n);
            while elapsed < probe_target && n < MAX_PROBE_ITERATIONS {
                n *= 2;
                elapsed = time(allocator, plan.calls, workload, n);
            }
            for _ in 1..PROBE_REPEATS {
                elapsed = elapsed.min(time(allocator, plan.calls, workload, n));
            }
            elapsed.as_nanos().max(1) as f64 / n as f64
        })
        .collect();
    let per_iteration = median(&ns_per_iteration);
    ((plan.target.as_nanos() as f64 / per_iteration).round() as u64).max(1)
}

/// Wall-clock time of `iterations` iterations of `workload` on `allocator`.
fn time(
    allocator: Allocator,
    calls: CallMode,
    workload: &mut Workload,
    iterations: u64,
) -> Duration {
    let start = Instant::now();
    allocator.run(calls, workload, iterations);
    start.elapsed()
}

/// Median, minimum and maximum of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// The middle sample (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Stats {
    /// Statistics of `samples`, which must not be empty.
    pub fn of(samples: &[f64]) -> Self {
        assert!(!samples.is_empty(), "statistics of no samples");
        Self {
            median: median(samples),
            min: samples.iter().copied().fold(f64::INFINITY, f64::min),
            max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The median of `samples` (the mean of the two middle ones for an even
/// count); `samples` must not be empty.
pub fn median(samples: &[f64]) -> f64 {
    assert!(!samples.is_empty(), "median of no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The geometric mean of `values`, the right average for ratios; `None` if
/// there are none.
pub fn geometric_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let log_sum: f64 = values.iter().map(|v| v.ln()).sum();
    Some((log_sum / values.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn stats_of_samples() {
        let s = Stats::of(&[5.0, 1.0, 9.0, 3.0, 7.0]);
        assert_eq!(
            s,
            Stats {
                median: 5.0,
                min: 1.0,
                max: 9.0
            }
        );
    }

    #[test]
    fn geometric_mean_of_ratios() {
        let g = geometric_mean(&[0.5, 2.0]).unwrap();
        assert!((g - 1.0).abs() < 1e-12);
        let g = geometric_mean(&[2.0, 8.0]).unwrap();
        assert!((g - 4.0).abs() < 1e-12);
        assert_eq!(geometric_mean(&[]), None);
    }

    #[test]
    fn every_round_runs_everyone_once_and_starts_one_further() {
        let orders: Vec<Vec<usize>> = (0..4).map(|r| run_order(r, 3).collect()).collect();
        assert_eq!(orders, [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]);
    }

    #[test]
    fn measure_alternates_and_collects_every_round() {
        let mut w = Workload::pairs(64);
        let plan = Plan {
            rounds: 3,
            target: Duration::from_micros(200),
            calls: CallMode::GlobalAllocShim,
        };
        let m = measure(&mut w, &Allocator::ALL, &plan);
        assert!(m.iterations >= 1);
        assert_eq!(m.ops_per_iteration, 1);
        assert_eq!(m.samples.len(), 3);
        for (allocator, row) in &m.samples {
            assert_eq!(row.len(), 3, "{allocator:?}");
            assert!(row.iter().all(|&ns| ns.is_finite() && ns >= 0.0));
        }
    }
}
