//! Resident set size, read from `/proc/self/statm`, now and over time.
//!
//! The [`Sampler`] is a thread that wakes every interval and records the
//! resident size. It must not disturb what it measures: its sample buffer is
//! allocated once, up front, and each reading goes through one open file and
//! a stack buffer (`pread`), so taking a sample allocates nothing.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One reading of the resident size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the sampler started.
    pub ms: u64,
    /// Resident set size, in bytes.
    pub rss: u64,
}

/// An open `/proc/self/statm`, read without allocating.
#[derive(Debug)]
pub struct Statm {
    file: File,
    page_size: u64,
}

impl Statm {
    /// Opens `/proc/self/statm`.
    pub fn open() -> std::io::Result<Self> {
        // SAFETY: `sysconf` reads a constant of the system; no memory is
        // passed to it.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Ok(Self {
            file: File::open("/proc/self/statm")?,
            page_size: u64::try_from(page_size).unwrap_or(4096),
        })
    }

    /// The process's resident set size now, in bytes (0 if unreadable).
    pub fn rss(&self) -> u64 {
        let mut buf = [0u8; 128];
        let n = self.file.read_at(&mut buf, 0).unwrap_or(0);
        parse_resident_pages(&buf[..n]) * self.page_size
    }
}

/// The second field of a `statm` line (resident pages); 0 if malformed.
fn parse_resident_pages(line: &[u8]) -> u64 {
    let field = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(1)
        .unwrap_or(b"0");
    field
        .iter()
        .try_fold(0u64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
        .unwrap_or(0)
}

/// The resident set size of this process now, in bytes (0 if unreadable).
pub fn current() -> u64 {
    Statm::open().map_or(0, |s| s.rss())
}

/// A background thread recording the resident size at a fixed interval.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

/// Most samples a sampler keeps (an hour at 20 ms); it stops recording after.
const MAX_SAMPLES: usize = 180_000;

impl Sampler {
    /// Starts sampling every `interval`, with a first sample at once.
    pub fn start(interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let statm = Statm::open().expect("open /proc/self/statm");
        let thread = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let mut samples = Vec::with_capacity(MAX_SAMPLES);
                let start = Instant::now();
                let mut next = start;
                while !flag.load(Ordering::Relaxed) && samples.len() < MAX_SAMPLES {
                    samples.push(Sample {
                        ms: start.elapsed().as_millis() as u64,
                        rss: statm.rss(),
                    });
                    next += interval;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
                samples
            })
            .expect("spawn the RSS sampler");
        Self { stop, thread }
    }

    /// Stops the thread and returns what it recorded.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("RSS sampler panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_second_field() {
        assert_eq!(parse_resident_pages(b"1000 250 30 1 0 400 0\n"), 250);
        assert_eq!(parse_resident_pages(b"1000"), 0);
        assert_eq!(parse_resident_pages(b"1 x2 3"), 0);
    }

    #[test]
    fn rss_grows_when_memory_is_touched() {
        let before = current();
        assert!(before > 0);
        let v = vec![1u8; 64 << 20];
        let after = current();
        assert!(after >= before + (32 << 20), "{before} -> {after}");
        drop(v);
    }

    #[test]
    fn sampler_records_at_its_interval() {
        let s = Sampler::start(Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(60));
        let samples = s.finish();
        assert!(samples.len() >= 4, "{samples:?}");
        assert!(samples.windows(2).all(|w| w[0].ms <= w[1].ms));
        assert!(samples.iter().all(|s| s.rss > 0));
    }
}
