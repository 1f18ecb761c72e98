//! Options: one table of settings, read once from the environment without
//! allocating, and settable from Rust. See lib.rs for the overview.
//!
//! | option | environment variable | default | meaning |
//! |---|---|---|---|
//! | check | `SPANALLOC_CHECK` | `0` | `1`: checked mode. Thread caches are bypassed, every free is verified against its span (double frees and foreign pointers are always caught), span invariants are checked on the slow paths. Slow; for debugging. |
//! | stats | `SPANALLOC_STATS` | `0` | `1`: print the statistics report to stderr at exit; `json`: the same as JSON. |
//! | dump | `SPANALLOC_DUMP` | unset | a path: write the heap dump (every region and span; see dump.rs) there at exit. |
//! | decay_ms | `SPANALLOC_DECAY_MS` | `1000` | free pages unused this long are returned to the OS by the scavenger (while more than `retain_percent` of the heap in use is kept free). |
//! | retain_percent | `SPANALLOC_RETAIN_PERCENT` | `10` | free memory kept (not returned), as a percentage of the memory in use. |
//! | memory_limit | `SPANALLOC_MEMORY_LIMIT` | `0` (none) | a soft limit on the memory spanalloc holds, in bytes (`K`, `M`, `G` suffixes): near it, every free page is returned at once and central caches are drained. |
//! | scavenger | `SPANALLOC_SCAVENGER` | `1` | `0`: no background scavenger thread (memory is then returned only by `release_memory()` and under the memory limit). |
//! | huge_pages | `SPANALLOC_HUGE_PAGES` | `0` | `1`: ask for transparent huge pages (`MADV_HUGEPAGE` on the arenas) when the system's THP mode is `madvise`. Off by default: with `defrag=madvise` every such fault compacts memory synchronously, and small heaps grow in 2 MiB steps (README, "Huge pages"). Under THP `always` the kernel backs arenas with huge pages whatever this says. |
//! | profile | `SPANALLOC_PROFILE` | unset | a path: sample allocations and write the heap profile (pprof) there at exit. |
//! | profile_rate | `SPANALLOC_PROFILE_RATE` | `512K` | mean bytes allocated between samples of the heap profiler (`K`, `M`, `G` suffixes); setting it turns sampling on; `0`: off. |
//! | profile_signal | `SPANALLOC_PROFILE_SIGNAL` | `0` (none) | a signal number: each time the process gets it, write the heap profile to `PATH.1`, `PATH.2`, … (sampling on). |

use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};

/// How the statistics report is printed at exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsAtExit {
    /// No report.
    Off,
    /// A text table on stderr.
    Text,
    /// JSON on stderr.
    Json,
}

/// The options in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Checked mode (`SPANALLOC_CHECK=1`).
    pub check: bool,
    /// The report at exit (`SPANALLOC_STATS`).
    pub stats: StatsAtExit,
    /// Where to write the heap dump at exit (`SPANALLOC_DUMP`).
    pub dump: Option<&'static CStr>,
    /// Milliseconds a free page stays before the scavenger may return it.
    pub decay_ms: u64,
    /// Free memory kept, as a percentage of memory in use.
    pub retain_percent: u64,
    /// Soft limit on held memory in bytes; 0 for none.
    pub memory_limit: u64,
    /// Whether the background scavenger thread may run.
    pub scavenger: bool,
    /// Whether to ask for transparent huge pages.
    pub huge_pages: bool,
    /// Where to write the heap profile at exit (`SPANALLOC_PROFILE`).
    pub profile: Option<&'static CStr>,
    /// Mean bytes between heap-profile samples.
    pub profile_rate: u64,
    /// Whether the environment set `SPANALLOC_PROFILE_RATE`.
    pub profile_rate_set: bool,
    /// The signal that writes a heap profile; 0 for none.
    pub profile_signal: u64,
}

/// How an option's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `0` or `1`.
    Flag,
    /// A whole number.
    Number,
    /// A number of bytes, with an optional `K`, `M` or `G` suffix.
    Bytes,
    /// `0`, `1` or `json`.
    Report,
    /// A file path.
    Path,
}

/// One row of the options table.
pub struct OptionSpec {
    /// Short name.
    pub name: &'static str,
    /// The environment variable that sets it.
    pub env: &'static CStr,
    /// How its value is written.
    pub kind: Kind,
    /// Its value when the variable is unset.
    pub default: u64,
    /// What it does.
    pub doc: &'static str,
    value: &'static AtomicU64,
    /// For a path: where the text itself is kept.
    path: Option<&'static AtomicPtr<libc::c_char>>,
}

static CHECK: AtomicU64 = AtomicU64::new(0);
static STATS: AtomicU64 = AtomicU64::new(0);
static DUMP: AtomicU64 = AtomicU64::new(0);
static DECAY_MS: AtomicU64 = AtomicU64::new(1000);
static RETAIN_PERCENT: AtomicU64 = AtomicU64::new(10);
static MEMORY_LIMIT: AtomicU64 = AtomicU64::new(0);
static SCAVENGER: AtomicU64 = AtomicU64::new(1);
static HUGE_PAGES: AtomicU64 = AtomicU64::new(0);
static PROFILE: AtomicU64 = AtomicU64::new(0);
static PROFILE_RATE: AtomicU64 = AtomicU64::new(512 << 10);
static PROFILE_SIGNAL: AtomicU64 = AtomicU64::new(0);
/// The paths (C strings from the environment), null when unset.
static DUMP_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(core::ptr::null_mut());
static PROFILE_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(core::ptr::null_mut());
/// Whether the environment set the profile rate.
static PROFILE_RATE_SET: AtomicBool = AtomicBool::new(false);

/// Every option, in one table.
pub static OPTIONS: [OptionSpec; 11] = [
    OptionSpec { name: "check", env: c"SPANALLOC_CHECK", kind: Kind::Flag, default: 0, value: &CHECK, path: None,
        doc: "1: checked mode: thread caches bypassed, every free verified against its span, span invariants checked on slow paths" },
    OptionSpec { name: "stats", env: c"SPANALLOC_STATS", kind: Kind::Report, default: 0, value: &STATS, path: None,
        doc: "1: print the statistics report to stderr at exit; json: the same as JSON" },
    OptionSpec { name: "dump", env: c"SPANALLOC_DUMP", kind: Kind::Path, default: 0, value: &DUMP, path: Some(&DUMP_PATH),
        doc: "a path: write the heap dump (every region and span, as JSON) there at exit" },
    OptionSpec { name: "decay_ms", env: c"SPANALLOC_DECAY_MS", kind: Kind::Number, default: 1000, value: &DECAY_MS, path: None,
        doc: "free pages unused this long are returned to the OS by the scavenger" },
    OptionSpec { name: "retain_percent", env: c"SPANALLOC_RETAIN_PERCENT", kind: Kind::Number, default: 10, value: &RETAIN_PERCENT, path: None,
        doc: "free memory kept, as a percentage of the memory in use" },
    OptionSpec { name: "memory_limit", env: c"SPANALLOC_MEMORY_LIMIT", kind: Kind::Bytes, default: 0, value: &MEMORY_LIMIT, path: None,
        doc: "soft limit on memory held, in bytes (K, M, G suffixes); 0: none" },
    OptionSpec { name: "scavenger", env: c"SPANALLOC_SCAVENGER", kind: Kind::Flag, default: 1, value: &SCAVENGER, path: None,
        doc: "0: no background scavenger thread" },
    OptionSpec { name: "huge_pages", env: c"SPANALLOC_HUGE_PAGES", kind: Kind::Flag, default: 0, value: &HUGE_PAGES, path: None,
        doc: "1: ask for transparent huge pages (MADV_HUGEPAGE) in THP madvise mode" },
    OptionSpec { name: "profile", env: c"SPANALLOC_PROFILE", kind: Kind::Path, default: 0, value: &PROFILE, path: Some(&PROFILE_PATH),
        doc: "a path: sample allocations and write the heap profile (pprof) there at exit" },
    OptionSpec { name: "profile_rate", env: c"SPANALLOC_PROFILE_RATE", kind: Kind::Bytes, default: 512 << 10, value: &PROFILE_RATE, path: None,
        doc: "mean bytes allocated between heap-profile samples (K, M, G suffixes); setting it turns sampling on; 0: off" },
    OptionSpec { name: "profile_signal", env: c"SPANALLOC_PROFILE_SIGNAL", kind: Kind::Number, default: 0, value: &PROFILE_SIGNAL, path: None,
        doc: "a signal number: write the heap profile to PATH.1, PATH.2, ... each time the process gets it" },
];

const UNREAD: u8 = 0;
const READING: u8 = 1;
const READ: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNREAD);

/// The value of an environment variable, without allocating.
fn env(name: &CStr) -> Option<&'static CStr> {
    // A program that calls setenv concurrently races with every libc call
    // that reads the environment; we assume, as libc does, that it does not.
    // SAFETY: name is NUL-terminated; getenv returns null or an entry of the
    // environment, which stays valid while nobody calls setenv.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: a non-null result is a NUL-terminated string that lives as
    // long as the environment entry.
    (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) })
}

/// Parses an option's text; None if it is malformed (the default stays).
pub fn parse(kind: Kind, text: &[u8]) -> Option<u64> {
    let number = |t: &[u8]| -> Option<u64> {
        if t.is_empty() {
            return None;
        }
        t.iter().try_fold(0u64, |n, &c| {
            c.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add((c - b'0') as u64))?
        })
    };
    match kind {
        Kind::Flag => match text {
            b"0" => Some(0),
            b"1" => Some(1),
            _ => None,
        },
        Kind::Number => number(text),
        Kind::Bytes => {
            let (digits, shift) = match text.last() {
                Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
                Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
                Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
                _ => (text, 0),
            };
            number(digits)?.checked_mul(1 << shift)
        }
        Kind::Report => match text {
            b"0" => Some(0),
            b"1" | b"text" => Some(1),
            b"json" => Some(2),
            _ => None,
        },
        Kind::Path => (!text.is_empty()).then_some(1),
    }
}

/// The soft memory limit alone (0: none), as [`get`] has it: the page
/// heap asks on every page allocation, so without building the whole set.
#[inline]
pub fn memory_limit() -> u64 {
    if STATE.load(Ordering::Acquire) != READ {
        read_once();
    }
    MEMORY_LIMIT.load(Ordering::Relaxed)
}

/// The options, read from the environment the first time this is called.
pub fn get() -> Options {
    if STATE.load(Ordering::Acquire) != READ {
        read_once();
    }
    let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let path_of = |flag: &AtomicU64, p: &AtomicPtr<libc::c_char>| {
        let p = p.load(Ordering::Relaxed);
        // SAFETY: a non-null path is a NUL-terminated string that lives for
        // the rest of the process (an entry of the environment).
        (v(flag) == 1 && !p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
    };
    Options {
        check: v(&CHECK) == 1,
        stats: match v(&STATS) {
            1 => StatsAtExit::Text,
            2 => StatsAtExit::Json,
            _ => StatsAtExit::Off,
        },
        dump: path_of(&DUMP, &DUMP_PATH),
        decay_ms: v(&DECAY_MS),
        retain_percent: v(&RETAIN_PERCENT),
        memory_limit: v(&MEMORY_LIMIT),
        scavenger: v(&SCAVENGER) == 1,
        huge_pages: v(&HUGE_PAGES) == 1,
        profile: path_of(&PROFILE, &PROFILE_PATH),
        profile_rate: v(&PROFILE_RATE),
        profile_rate_set: PROFILE_RATE_SET.load(Ordering::Relaxed),
        profile_signal: v(&PROFILE_SIGNAL),
    }
}

#[cold]
fn read_once() {
    if STATE
        .compare_exchange(UNREAD, READING, Ordering::Acquire, Ordering::Acquire)
        .is_err()
    {
        while STATE.load(Ordering::Acquire) != READ {
            core::hint::spin_loop();
        }
        return;
    }
    for o in &OPTIONS {
        let Some(text) = env(o.env) else { continue };
        if let Some(v) = parse(o.kind, text.to_bytes()) {
            if let Some(path) = o.path {
                path.store(text.as_ptr().cast_mut(), Ordering::Relaxed);
            }
            if core::ptr::eq(o.value, &PROFILE_RATE) {
                PROFILE_RATE_SET.store(true, Ordering::Relaxed);
            }
            o.value.store(v, Ordering::Relaxed);
        }
    }
    STATE.store(READ, Ordering::Release);
}

/// Stores a value set from Rust, after the environment has been read (so
/// that a later first read cannot overwrite it).
fn set(option: &AtomicU64, value: u64) {
    get();
    option.store(value, Ordering::Relaxed);
}

/// Sets the scavenger's decay time, in milliseconds.
pub fn set_decay_ms(ms: u64) {
    set(&DECAY_MS, ms);
}

/// Sets the free memory kept, as a percentage of the memory in use.
pub fn set_retain_percent(percent: u64) {
    set(&RETAIN_PERCENT, percent);
}

/// Sets the soft memory limit in bytes (0: none).
pub fn set_memory_limit(bytes: u64) {
    set(&MEMORY_LIMIT, bytes);
}

/// Allows or forbids the background scavenger thread (one already running
/// goes on).
pub fn set_scavenger(on: bool) {
    set(&SCAVENGER, on as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_match_their_variables() {
        for o in &OPTIONS {
            let var = o.env.to_str().unwrap();
            assert_eq!(var, format!("SPANALLOC_{}", o.name.to_uppercase()));
            assert!(!o.doc.is_empty());
            // No setter runs in these unit tests: unless the environment
            // sets it, each value is the default the table documents.
            if std::env::var_os(var).is_none() {
                assert_eq!(o.value.load(Ordering::Relaxed), o.default, "{var}");
            }
        }
    }

    #[test]
    fn parses_each_kind_and_refuses_malformed_text() {
        assert_eq!(parse(Kind::Flag, b"1"), Some(1));
        assert_eq!(parse(Kind::Flag, b"yes"), None);
        assert_eq!(parse(Kind::Number, b"250"), Some(250));
        assert_eq!(parse(Kind::Number, b"-3"), None);
        assert_eq!(
            parse(Kind::Number, b"99999999999999999999999"),
            None,
            "overflow"
        );
        assert_eq!(parse(Kind::Bytes, b"512M"), Some(512 << 20));
        assert_eq!(parse(Kind::Bytes, b"2g"), Some(2 << 30));
        assert_eq!(parse(Kind::Bytes, b"4096"), Some(4096));
        assert_eq!(parse(Kind::Bytes, b"M"), None);
        assert_eq!(
            parse(Kind::Bytes, b"18446744073709551615G"),
            None,
            "overflow"
        );
        assert_eq!(parse(Kind::Report, b"json"), Some(2));
        assert_eq!(parse(Kind::Path, b""), None);
    }

    #[test]
    fn reads_the_environment() {
        assert!(env(c"SPANALLOC_SURELY_UNSET_VARIABLE").is_none());
        assert!(env(c"PATH").is_some());
        if std::env::var_os("SPANALLOC_DECAY_MS").is_none() {
            assert_eq!(get().decay_ms, 1000);
        }
    }
}
