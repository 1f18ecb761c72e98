//! Growing buffers and large objects.
//!
//! - `realloc`: strings and vectors growing from empty to large, eight at a
//!   time (so a buffer seldom has free space behind it), three in four with
//!   the amortised doubling of `String` and `Vec`, one in four with
//!   `reserve_exact`, which reallocates on every append as naive code (or C's
//!   `realloc(p, n + k)`) does;
//! - `large`: objects of 64 KiB to 64 MiB, every page written, four alive at a
//!   time: the page heap's path, where reuse saves page faults.

use std::fmt::Write as _;

use crate::rng::SplitMix64;
use crate::size::Size;
use crate::Work;

/// Buffers growing at the same time in `realloc`.
const GROWING: usize = 8;

/// One growing buffer of `realloc`.
enum Growing {
    /// A `String` grown by `write!` with amortised doubling.
    Text(String),
    /// A `Vec<u64>` grown by `push`, amortised.
    Numbers(Vec<u64>),
    /// A byte vector grown by exact reservations, one reallocation per append.
    Exact(Vec<u8>),
}

impl Growing {
    fn new(kind: usize) -> Self {
        match kind % 4 {
            0 => Growing::Text(String::new()),
            2 => Growing::Exact(Vec::new()),
            _ => Growing::Numbers(Vec::new()),
        }
    }

    /// A final size for a new buffer, log-uniform up to `max`; exact growth
    /// copies quadratically when it moves, so it stops at an eighth of that.
    fn target(&self, max: usize, rng: &mut SplitMix64) -> usize {
        match self {
            Growing::Exact(_) => rng.log_uniform(8, max / 8),
            _ => rng.log_uniform(8, max),
        }
    }

    /// Bytes held now.
    fn len(&self) -> usize {
        match self {
            Growing::Text(s) => s.len(),
            Growing::Numbers(v) => v.len() * 8,
            Growing::Exact(v) => v.len(),
        }
    }

    /// Appends about `n` bytes.
    fn append(&mut self, n: usize, rng: &mut SplitMix64) {
        match self {
            Growing::Text(s) => {
                let end = s.len() + n;
                while s.len() < end {
                    let _ = write!(s, "{:x},", rng.next_u64());
                }
            }
            Growing::Numbers(v) => v.extend((0..n.div_ceil(8)).map(|i| i as u64)),
            Growing::Exact(v) => {
                v.reserve_exact(n);
                v.resize(v.len() + n, n as u8);
            }
        }
    }
}

/// `realloc`: buffers of 8 B to 2 MiB (log-uniform final sizes; exact growth
/// to 256 KiB), appended to in chunks of 8 B to 4 KiB.
pub fn realloc(run: Size) -> Work {
    let buffers: u64 = run.pick(12_000, 16);
    let max = run.pick(2 << 20, 64 << 10);
    let mut rng = SplitMix64::new(0x4EA1);
    let mut live: Vec<(Growing, usize)> = (0..GROWING)
        .map(|k| {
            let g = Growing::new(k);
            let target = g.target(max, &mut rng);
            (g, target)
        })
        .collect();
    let (mut done, mut appends, mut checksum) = (0u64, 0u64, 0u64);
    while done < buffers {
        for (k, (buf, target)) in live.iter_mut().enumerate() {
            let chunk = rng.log_uniform(8, 4096);
            buf.append(chunk, &mut rng);
            appends += 1;
            if buf.len() >= *target {
                checksum += buf.len() as u64;
                *buf = Growing::new(k + done as usize);
                *target = buf.target(max, &mut rng);
                done += 1;
            }
        }
    }
    Work::deterministic(appends, checksum)
}

/// Objects alive at once in `large`.
const LARGE_LIVE: usize = 4;

/// `large`: objects of 64 KiB to 64 MiB (log-uniform), every 4 KiB page
/// written, freed oldest first with [`LARGE_LIVE`] alive.
pub fn large(run: Size) -> Work {
    let count: u64 = run.pick(1_000, 12);
    let max = run.pick(64 << 20, 4 << 20);
    let mut rng = SplitMix64::new(0x1A26E);
    let mut ring: Vec<Vec<u8>> = Vec::with_capacity(LARGE_LIVE);
    let mut checksum = 0u64;
    for i in 0..count {
        let size = rng.log_uniform(64 << 10, max);
        let mut v: Vec<u8> = Vec::with_capacity(size);
        for page in v.spare_capacity_mut().iter_mut().step_by(4096) {
            page.write(i as u8);
        }
        checksum += size as u64;
        if ring.len() == LARGE_LIVE {
            ring.remove(0);
        }
        ring.push(v);
    }
    Work::deterministic(count, checksum)
}
