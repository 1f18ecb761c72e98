//! Options: one table of settings, read once from the environment without
//! allocating. See lib.rs for the overview.
//!
//! | option | environment variable | default | meaning |
//! |---|---|---|---|
//! | check | `SPANALLOC_CHECK` | `0` | `1`: checked mode. Thread caches are bypassed, every free is verified against its span (double frees and foreign pointers are always caught) and span invariants are checked on each slow path. Slow; for debugging. |
//! | stats | `SPANALLOC_STATS` | off | `1`: print the statistics report to stderr at exit; `json`: the same as JSON. |
//! | dump | `SPANALLOC_DUMP` | unset | a path: write the heap dump (every span; see dump.rs) there at exit. |

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
    /// Where to write the heap dump at exit (`SPANALLOC_DUMP`).
    pub dump: Option<&'static CStr>,
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
    OptionSpec {
        name: "dump",
        env: c"SPANALLOC_DUMP",
        default: "",
        doc: "a path: write the heap dump (every region and span, as JSON) there at exit",
    },
];

const UNREAD: u8 = 0;
const READING: u8 = 1;
const READ: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNREAD);
static CHECK: AtomicU8 = AtomicU8::new(0);
static STATS: AtomicU8 = AtomicU8::new(0);
static DUMP: core::sync::atomic::AtomicPtr<libc::c_char> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// The value of an environment variable, without allocating.
fn env(name: &CStr) -> Option<&'static [u8]> {
    env_cstr(name).map(CStr::to_bytes)
}

/// The value of an environment variable as a C string, without allocating.
fn env_cstr(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: getenv takes a NUL-terminated name and returns null or a
    // pointer into the environment, valid while nobody calls setenv (a
    // program that changes its environment concurrently is racing with
    // every libc call that reads it).
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        None
    } else {
        // SAFETY: a non-null result is a NUL-terminated string that lives as
        // long as the environment entry.
        Some(unsafe { CStr::from_ptr(v) })
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
        dump: {
            let p = DUMP.load(Ordering::Relaxed);
            // SAFETY: a non-null DUMP came from getenv: a NUL-terminated
            // string in the environment.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
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
    if let Some(path) = env_cstr(OPTIONS[2].env).filter(|p| !p.is_empty()) {
        DUMP.store(path.as_ptr().cast_mut(), Ordering::Relaxed);
    }
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
        let unset = |v| std::env::var_os(v).is_none();
        if unset("SPANALLOC_CHECK") && unset("SPANALLOC_STATS") && unset("SPANALLOC_DUMP") {
            let expected = Options {
                check: false,
                stats: StatsAtExit::Off,
                dump: None,
            };
            assert_eq!(get(), expected);
        }
        assert_eq!(env(c"SPANALLOC_SURELY_UNSET_VARIABLE"), None);
        assert!(env(c"PATH").is_some());
    }
}
