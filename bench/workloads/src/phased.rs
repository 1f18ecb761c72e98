//! `phased`: a program whose memory comes and goes in phases, with its
//! resident size sampled throughout.
//!
//! 1. grow to 1 GiB of live objects of 16 B to 16 KiB (log-uniform), each
//!    filled;
//! 2. free 90% of them, chosen at random, and idle for 300 ms;
//! 3. grow again to 1 GiB live, now with objects of 64 B to 64 KiB, so the
//!    holes left by phase 2 are not all the right size;
//! 4. free 90% again and idle for 2 s, time enough for an allocator that
//!    returns memory after a delay of a second or so to do so.
//!
//! The peak resident size shows how much the allocator needed beyond the
//! 1 GiB in use (fragmentation); the final one, at the end of phase 4 with
//! 10% still live, how much it gave back. The time series shows both as
//! they happen.

use std::time::Duration;

use crate::rng::SplitMix64;
use crate::rss::{self, Sample, Sampler};
use crate::size::Size;
use crate::Work;

/// What `phased` reports beyond its work.
#[derive(Clone, Debug, Default)]
pub struct Phases {
    /// Resident size at the end of each phase, in bytes.
    pub rss_after_phase: [u64; 4],
    /// The resident size over the whole run.
    pub series: Vec<Sample>,
}

/// Live objects of one phase, with their total size.
#[derive(Default)]
struct Heap {
    objects: Vec<Box<[u8]>>,
    bytes: usize,
}

impl Heap {
    /// Allocates filled objects of `min..=max` bytes until `target` bytes
    /// are live.
    fn grow_to(&mut self, target: usize, min: usize, max: usize, rng: &mut SplitMix64) {
        while self.bytes < target {
            let size = rng.log_uniform(min, max);
            let tag = (self.objects.len() % 251) as u8 + 1;
            self.objects.push(vec![tag; size].into_boxed_slice());
            self.bytes += size;
        }
    }

    /// Frees `percent`% of the objects, chosen at random, in a random order.
    fn free_percent(&mut self, percent: u64, rng: &mut SplitMix64) {
        rng.shuffle(&mut self.objects);
        let keep = self.objects.len() - (self.objects.len() as u64 * percent / 100) as usize;
        for o in self.objects.drain(keep..) {
            self.bytes -= o.len();
        }
        self.objects.shrink_to_fit();
    }
}

/// Runs the four phases, sampling the resident size every 20 ms (5 ms with
/// `--quick`).
pub fn phased(run: Size) -> (Work, Phases) {
    let target: usize = run.pick(1 << 30, 16 << 20);
    let interval = Duration::from_millis(run.pick(20, 5));
    let idle =
        |full_ms, quick_ms| std::thread::sleep(Duration::from_millis(run.pick(full_ms, quick_ms)));
    let sampler = Sampler::start(interval);
    let mut rng = SplitMix64::new(0xFA5ED);
    let mut heap = Heap::default();
    let mut phases = Phases::default();
    let mut allocated = 0usize;

    heap.grow_to(target, 16, 16 << 10, &mut rng);
    allocated += heap.objects.len();
    phases.rss_after_phase[0] = rss::current();

    heap.free_percent(90, &mut rng);
    idle(300, 10);
    phases.rss_after_phase[1] = rss::current();

    let before = heap.objects.len();
    heap.grow_to(target, 64, 64 << 10, &mut rng);
    allocated += heap.objects.len() - before;
    phases.rss_after_phase[2] = rss::current();

    heap.free_percent(90, &mut rng);
    idle(2000, 30);
    phases.rss_after_phase[3] = rss::current();

    let checksum = heap
        .objects
        .iter()
        .map(|o| u64::from(o[0]) + o.len() as u64)
        .sum();
    drop(heap);
    phases.series = sampler.finish();
    (Work::deterministic(allocated as u64, checksum), phases)
}
