//! Reading a process from `/proc`: its mappings with their `smaps` counters,
//! the totals of `/proc/PID/status`, and the stack pointers of its threads.
//! Only reading and parsing; `maps.rs` gives the mappings their meaning.
//!
//! Failures are sorted for the exit code: a process that does not exist (or
//! exits while we read it) is [`Kind::NoSuchProcess`], one the kernel will
//! not show us is [`Kind::PermissionDenied`].

use std::io;
use std::path::PathBuf;

use crate::error::{Error, Kind, Result};

/// One line of `/proc/PID/maps` with the counters `smaps` gives for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `rwxp` / `rwxs` as the kernel prints them.
    pub perms: String,
    /// Offset in the mapped file (0 for anonymous memory).
    pub offset: u64,
    /// Device of the mapped file, `major:minor` in hex (`00:00` if none).
    pub dev: String,
    /// Inode of the mapped file (0 if none).
    pub inode: u64,
    /// File path, or a kernel name like `[heap]`, `[stack]`,
    /// `[anon:NAME]`; empty for unnamed anonymous memory.
    pub path: String,
    /// Resident bytes.
    pub rss: u64,
    /// Proportional share of resident bytes.
    pub pss: u64,
    /// Resident bytes written by this process only.
    pub private_dirty: u64,
    /// Bytes swapped out.
    pub swap: u64,
    /// Anonymous resident bytes.
    pub anonymous: u64,
    /// Two-letter flags of the `VmFlags` line (`rd wr mr mw me ac ...`).
    pub vm_flags: Vec<String>,
}

impl Mapping {
    /// Bytes of address space.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// True if the permissions include `c` (`r`, `w`, `x`).
    pub fn can(&self, c: char) -> bool {
        self.perms.contains(c)
    }

    /// True for a mapping of no file and no kernel name (plain `mmap` of
    /// anonymous memory, or the loader's zero pages).
    pub fn is_unnamed_anon(&self) -> bool {
        self.inode == 0 && self.path.is_empty()
    }

    /// True if a file (not a kernel-named region) is mapped.
    pub fn is_file(&self) -> bool {
        self.inode != 0 || self.path.starts_with('/')
    }
}

/// The totals of `/proc/PID/status` we compare our sums with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Command name (`Name:`).
    pub name: String,
    /// Virtual size in bytes (`VmSize:`).
    pub vm_size: u64,
    /// Resident bytes (`VmRSS:`).
    pub vm_rss: u64,
    /// Swapped-out bytes (`VmSwap:`).
    pub vm_swap: u64,
    /// Number of threads (`Threads:`).
    pub threads: u64,
}

/// A thread of the process and, if the kernel told us, its stack pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// Thread id.
    pub tid: u32,
    /// Stack pointer from `/proc/PID/task/TID/syscall`, when the thread is
    /// blocked in a system call (a running thread has none to show).
    pub sp: Option<u64>,
}

/// Everything read from `/proc` about one process.
#[derive(Clone, Debug, Default)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Path of the executable (`/proc/PID/exe`), if readable.
    pub exe: Option<String>,
    /// The mappings, in address order.
    pub mappings: Vec<Mapping>,
    /// Totals from `status`.
    pub status: Status,
    /// The threads.
    pub threads: Vec<Thread>,
}

fn proc_path(pid: u32, rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rest}"))
}

/// Turns an I/O error on `/proc/PID/...` into a failure of the right kind.
fn proc_error(pid: u32, what: &str, err: &io::Error) -> Error {
    const ESRCH: i32 = 3;
    if err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(ESRCH) {
        Error::new(Kind::NoSuchProcess, format!("no such process: {pid}"))
    } else if err.kind() == io::ErrorKind::PermissionDenied {
        Error::new(
            Kind::PermissionDenied,
            format!(
                "permission denied: cannot read the {what} of process {pid} \
                 (another user's process: run as that user, or as root with CAP_SYS_PTRACE)"
            ),
        )
    } else {
        Error::new(
            Kind::Io,
            format!("cannot read the {what} of process {pid}: {err}"),
        )
    }
}

/// Reads one `/proc/PID/...` file.
fn read_proc(pid: u32, rest: &str, what: &str) -> Result<String> {
    std::fs::read_to_string(proc_path(pid, rest)).map_err(|e| proc_error(pid, what, &e))
}

/// Reads the address space and threads of process `pid`.
pub fn read_process(pid: u32) -> Result<Process> {
    std::fs::metadata(proc_path(pid, "")).map_err(|e| proc_error(pid, "entry", &e))?;
    let smaps = read_proc(pid, "smaps", "memory map")?;
    let status = parse_status(&read_proc(pid, "status", "status")?);
    let mappings =
        parse_smaps(&smaps).map_err(|e| Error::bad_input(format!("/proc/{pid}/smaps: {e}")))?;
    if mappings.is_empty() {
        let stat = read_proc(pid, "stat", "status")?;
        return Err(if process_state(&stat) == Some('Z') {
            Error::new(
                Kind::NoSuchProcess,
                format!("no such process: {pid} has exited (a zombie)"),
            )
        } else {
            Error::bad_input(format!(
                "process {pid} ({}) has no user address space (a kernel thread?)",
                status.name
            ))
        });
    }
    let exe = std::fs::read_link(proc_path(pid, "exe"))
        .ok()
        .map(|p| p.display().to_string());
    Ok(Process {
        pid,
        exe,
        mappings,
        status,
        threads: read_threads(pid),
    })
}

/// The state letter of a `/proc/PID/stat` line (after the parenthesised
/// command name, which may itself hold spaces and parentheses).
fn process_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Lists the threads and reads each one's stack pointer where the kernel
/// shows it. Threads that exit meanwhile are skipped; a `syscall` file we may
/// not read (it needs ptrace rights) just gives no stack pointer.
fn read_threads(pid: u32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(proc_path(pid, "task")) else {
        return Vec::new();
    };
    let mut threads: Vec<Thread> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .map(|tid: u32| Thread {
            tid,
            sp: std::fs::read_to_string(proc_path(pid, &format!("task/{tid}/syscall")))
                .ok()
                .and_then(|s| parse_syscall_sp(&s)),
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    threads
}

/// The stack pointer in a `/proc/PID/task/TID/syscall` line: `NR ARG1 ...
/// ARG6 SP PC` for a thread blocked in a system call, `-1 SP PC` for one
/// blocked elsewhere, `running` for a running one (no stack pointer).
pub fn parse_syscall_sp(line: &str) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let sp = match fields.len() {
        9 => fields[7],
        3 => fields[1],
        _ => return None,
    };
    u64::from_str_radix(sp.strip_prefix("0x")?, 16).ok()
}

/// Parses `/proc/PID/status`.
pub fn parse_status(text: &str) -> Status {
    let mut st = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let kb = || parse_kb(value).unwrap_or(0);
        match key {
            "Name" => st.name = value.to_string(),
            "VmSize" => st.vm_size = kb(),
            "VmRSS" => st.vm_rss = kb(),
            "VmSwap" => st.vm_swap = kb(),
            "Threads" => st.threads = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    st
}

/// `"1234 kB"` as bytes.
fn parse_kb(value: &str) -> Option<u64> {
    let n = value.strip_suffix("kB").unwrap_or(value).trim();
    n.parse::<u64>().ok()?.checked_mul(1024)
}

/// Parses the header line of a mapping: `start-end perms offset dev inode
/// [path]`. The path may contain spaces, and is padded on the left.
pub fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        f
    };
    let range = field();
    let perms = field().to_string();
    let offset = u64::from_str_radix(field(), 16).ok()?;
    let dev = field().to_string();
    let inode = field().parse().ok()?;
    let path = rest.trim_start_matches(' ').to_string();
    let (s, e) = range.split_once('-')?;
    let start = u64::from_str_radix(s, 16).ok()?;
    let end = u64::from_str_radix(e, 16).ok()?;
    if end < start || perms.len() != 4 || !dev.contains(':') {
        return None;
    }
    Some(Mapping {
        start,
        end,
        perms,
        offset,
        dev,
        inode,
        path,
        ..Mapping::default()
    })
}

/// Parses `/proc/PID/smaps`: each mapping's header line followed by
/// `Key: value kB` lines and a `VmFlags:` line.
pub fn parse_smaps(text: &str) -> std::result::Result<Vec<Mapping>, String> {
    let mut out: Vec<Mapping> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let first = line.split(' ').next().unwrap_or("");
        if let Some(key) = first.strip_suffix(':') {
            let Some(m) = out.last_mut() else {
                return Err(format!("line {}: a field before any mapping", n + 1));
            };
            let value = line[first.len()..].trim();
            match key {
                "VmFlags" => m.vm_flags = value.split_whitespace().map(String::from).collect(),
                "Rss" => m.rss = parse_kb(value).unwrap_or(0),
                "Pss" => m.pss = parse_kb(value).unwrap_or(0),
                "Private_Dirty" => m.private_dirty = parse_kb(value).unwrap_or(0),
                "Swap" => m.swap = parse_kb(value).unwrap_or(0),
                "Anonymous" => m.anonymous = parse_kb(value).unwrap_or(0),
                _ => {}
            }
        } else {
            let m = parse_maps_line(line)
                .ok_or_else(|| format!("line {}: not a mapping: {line:?}", n + 1))?;
            out.push(m);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5566e5486000-5566e5488000 r--p 00000000 fe:00 247030                     /usr/bin/my cat
Size:                  8 kB
Rss:                   8 kB
Pss:                   4 kB
Private_Dirty:         0 kB
Swap:                  0 kB
VmFlags: rd mr mw me
7fecdf307000-7fecdf329000 rw-p 00000000 00:00 0 
Size:                136 kB
Rss:                 12 kB
Swap:                 4 kB
Anonymous:           12 kB
VmFlags: rd wr mr mw me ac
7ffcc94f2000-7ffcc9513000 rw-p 00000000 00:00 0                          [stack]
Rss:                 16 kB
";

    #[test]
    fn parses_smaps() {
        let m = parse_smaps(SMAPS).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path, "/usr/bin/my cat");
        assert_eq!(m[0].size(), 8192);
        assert_eq!((m[0].rss, m[0].pss), (8192, 4096));
        assert_eq!(m[0].inode, 247030);
        assert!(m[0].is_file() && !m[0].is_unnamed_anon());
        assert_eq!(m[1].path, "");
        assert!(m[1].is_unnamed_anon());
        assert_eq!((m[1].rss, m[1].swap, m[1].anonymous), (12288, 4096, 12288));
        assert_eq!(m[1].vm_flags.len(), 6);
        assert_eq!(m[2].path, "[stack]");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_smaps("hello world\n").is_err());
        assert!(parse_smaps("Rss: 4 kB\n").is_err());
    }

    #[test]
    fn parses_status_and_syscall() {
        let st =
            parse_status("Name:\tcat\nVmSize:\t    3760 kB\nVmRSS:\t    1992 kB\nThreads:\t3\n");
        assert_eq!(st.name, "cat");
        assert_eq!(
            (st.vm_size, st.vm_rss, st.threads),
            (3760 * 1024, 1992 * 1024, 3)
        );
        assert_eq!(
            parse_syscall_sp(
                "202 0x7fc290000ba0 0x189 0x0 0x0 0x0 0xffffffff 0x7fc295ace8c0 0x7fc2960a3f16\n"
            ),
            Some(0x7fc295ace8c0)
        );
        assert_eq!(parse_syscall_sp("-1 0x7ffd1000 0x4000\n"), Some(0x7ffd1000));
        assert_eq!(parse_syscall_sp("running\n"), None);
    }

    #[test]
    fn state_after_odd_command_names() {
        assert_eq!(process_state("42 (a) b) Z 1 2"), Some('Z'));
        assert_eq!(process_state("42 (sleep) S 1"), Some('S'));
    }

    #[test]
    fn reads_itself() {
        let p = read_process(std::process::id()).unwrap();
        assert!(p.mappings.iter().any(|m| m.path == "[stack]"));
        assert!(p.status.vm_size > 0);
        assert!(!p.threads.is_empty());
    }

    #[test]
    fn missing_process_is_no_such_process() {
        // PIDs are below 2^22 on Linux.
        let e = read_process(u32::MAX - 1).unwrap_err();
        assert_eq!(e.kind, Kind::NoSuchProcess);
    }
}
