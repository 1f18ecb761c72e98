//! Options: one table of settings, read once from the environment without
//! allocating. See lib.rs for the overview.
//!
//! | option | environment variable | default | meaning |
//! |---|---|---|---|
//! | check | `SPANALLOC_CHECK` | `0` | `1`: checked mode. Thread caches are bypassed, every free is verified against its span (double frees and foreign pointers are always caught) and span invariants are checked on each slow path. Slow; for debugging. |
//! | stats | `SPANALLOC_STATS` | off | `1`: print the statistics report to stderr at exit; `json`: the same as JSON. |

use core::ffi::CStr;
use core::sync::atomic::{AtomicU8, Ordering};

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
}

/// One row of the options table.
pub struct OptionSpec {
    /// Short name.
    pub name: &'static str,
    /// The environment variable that sets it.
    pub env: &'static CStr,
    /// Its value when the variable is unset.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Every option, in one table (the README's table is generated from the
/// same text).
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "check",
        env: c"SPANALLOC_CHECK",
        default: "0",
        doc: "1: checked mode: thread caches bypassed, every free verified against its span, span invariants checked on slow paths",
    },
    OptionSpec {
        name: "stats",
        env: c"SPANALLOC_STATS",
        default: "0",
        doc: "1: print the statistics report to stderr at exit; json: the same as JSON",
    },
];

const UNREAD: u8 = 0;
const READING: u8 = 1;
const READ: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNREAD);
static CHECK: AtomicU8 = AtomicU8::new(0);
static STATS: AtomicU8 = AtomicU8::new(0);

/// The value of an environment variable, without allocating.
fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv takes a NUL-terminated name and returns null or a
    // pointer into the environment, valid while nobody calls setenv (a
    // program that changes its environment concurrently is racing with
    // every libc call that reads it).
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        None
    } else {
        // SAFETY: a non-null result is a NUL-terminated string.
        Some(unsafe { CStr::from_ptr(v) }.to_bytes())
    }
}

/// The options, read from the environment the first time this is called.
pub fn get() -> Options {
    if STATE.load(Ordering::Acquire) != READ {
        read_once();
    }
    Options {
        check: CHECK.load(Ordering::Relaxed) == 1,
        stats: match STATS.load(Ordering::Relaxed) {
            1 => StatsAtExit::Text,
            2 => StatsAtExit::Json,
            _ => StatsAtExit::Off,
        },
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
    let check = matches!(env(OPTIONS[0].env), Some(b"1"));
    let stats = match env(OPTIONS[1].env) {
        Some(b"1") | Some(b"text") => 1,
        Some(b"json") => 2,
        _ => 0,
    };
    CHECK.store(check as u8, Ordering::Relaxed);
    STATS.store(stats, Ordering::Relaxed);
    STATE.store(READ, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_match_their_variables() {
        for o in OPTIONS {
            let var = o.env.to_str().unwrap();
            assert_eq!(var, format!("SPANALLOC_{}", o.name.to_uppercase()));
            assert!(!o.doc.is_empty());
        }
    }

    #[test]
    fn reads_the_environment() {
        // The test harness does not set these; the defaults apply.
        if std::env::var_os("SPANALLOC_CHECK").is_none()
            && std::env::var_os("SPANALLOC_STATS").is_none()
        {
            assert_eq!(
                get(),
                Options {
                    check: false,
                    stats: StatsAtExit::Off
                }
            );
        }
        assert_eq!(env(c"SPANALLOC_SURELY_UNSET_VARIABLE"), None);
        assert!(env(c"PATH").is_some());
    }
}
