//! The OS layer on Linux (x86_64, aarch64): `mmap`, `mprotect`, `madvise`,
//! `munmap`, futexes and the thread-exit hook. See os/mod.rs.

use super::OsMem;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Keeps `errno` as the caller left it: the allocator's own system calls must
/// not change what a C program sees in `errno` (only a failed `malloc` sets
/// it, and the C shim does that itself).
struct ErrnoGuard(i32);

impl ErrnoGuard {
    fn save() -> Self {
        // SAFETY: __errno_location always returns the calling thread's valid errno slot.
        ErrnoGuard(unsafe { *libc::__errno_location() })
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        // SAFETY: as in save(); the slot belongs to the current thread.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// The real operating system.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxOs;

// SAFETY: every range comes fresh from mmap (nobody else uses it), alignment is
// obtained by trimming an over-sized mapping, and nothing here allocates.
unsafe impl OsMem for LinuxOs {
    fn reserve(&self, size: usize, align: usize) -> *mut u8 {
        debug_assert!(align.is_power_of_two());
        let _errno = ErrnoGuard::save();
        let Some(over) = size.checked_add(align) else {
            return null_mut();
        };
        // SAFETY: an anonymous PROT_NONE mapping at an address of the kernel's
        // choosing touches no existing memory.
        let p = unsafe {
            libc::mmap(
                null_mut(),
                over,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return null_mut();
        }
        let start = p as usize;
        let aligned = (start + align - 1) & !(align - 1);
        let head = aligned - start;
        let tail = over - head - size;
        // SAFETY: [start, start+head) and [aligned+size, start+over) are the
        // parts of our own fresh mapping outside the aligned range we keep.
        unsafe {
            if head > 0 {
                libc::munmap(p, head);
            }
            if tail > 0 {
                libc::munmap((aligned + size) as *mut c_void, tail);
            }
        }
        aligned as *mut u8
    }

    unsafe fn commit(&self, addr: *mut u8, size: usize) -> bool {
        let _errno = ErrnoGuard::save();
        // SAFETY: the caller guarantees the range is inside our reservation.
        unsafe { libc::mprotect(addr.cast(), size, libc::PROT_READ | libc::PROT_WRITE) == 0 }
    }

    unsafe fn decommit(&self, addr: *mut u8, size: usize) {
        let _errno = ErrnoGuard::save();
        // SAFETY: the caller guarantees the range is committed and unused;
        // MADV_DONTNEED on private anonymous memory makes it read as zero.
        unsafe { libc::madvise(addr.cast(), size, libc::MADV_DONTNEED) };
    }

    unsafe fn release(&self, addr: *mut u8, size: usize) {
        let _errno = ErrnoGuard::save();
        // SAFETY: the caller guarantees the range came from reserve and is unused.
        unsafe { libc::munmap(addr.cast(), size) };
    }

    unsafe fn hint_huge_pages(&self, addr: *mut u8, size: usize) {
        if thp_mode() != ThpMode::Madvise || !crate::options::get().huge_pages {
            return;
        }
        let _errno = ErrnoGuard::save();
        // SAFETY: the caller guarantees the range is committed; the advice
        // changes no contents.
        unsafe { libc::madvise(addr.cast(), size, libc::MADV_HUGEPAGE) };
    }

    fn name_region(&self, addr: *mut u8, size: usize) {
        const PR_SET_VMA: libc::c_int = 0x53564d41;
        const PR_SET_VMA_ANON_NAME: libc::c_ulong = 0;
        static NAME: &core::ffi::CStr = c"spanalloc";
        let _errno = ErrnoGuard::save();
        // SAFETY: prctl only labels the mapping (kernels without anonymous
        // VMA names refuse with EINVAL, which we ignore); NAME is static.
        unsafe {
            libc::prctl(
                PR_SET_VMA,
                PR_SET_VMA_ANON_NAME,
                addr as libc::c_ulong,
                size as libc::c_ulong,
                NAME.as_ptr(),
            );
        }
    }

    fn now_ms(&self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC_COARSE is served
        // by the vDSO without entering the kernel.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }
}

/// How the kernel uses transparent huge pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ThpMode {
    /// For every anonymous mapping.
    Always,
    /// Only where `madvise(MADV_HUGEPAGE)` asks.
    Madvise,
    /// Never, or unknown.
    Never,
}

/// The system's transparent-huge-page mode, read once from
/// /sys/kernel/mm/transparent_hugepage/enabled (without allocating).
pub fn thp_mode() -> ThpMode {
    static MODE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
    let m = MODE.load(Ordering::Relaxed);
    let mode = if m != 0 {
        m
    } else {
        let _errno = ErrnoGuard::save();
        let mut buf = [0u8; 128];
        // SAFETY: the path is NUL-terminated; buf has room for what we read.
        let n = unsafe {
            let fd = libc::open(
                c"/sys/kernel/mm/transparent_hugepage/enabled".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                0
            } else {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                libc::close(fd);
                n.max(0) as usize
            }
        };
        let text = &buf[..n];
        let has = |w: &[u8]| text.windows(w.len()).any(|x| x == w);
        let found = if has(b"[always]") {
            1
        } else if has(b"[madvise]") {
            2
        } else {
            3
        };
        MODE.store(found, Ordering::Relaxed);
        found
    };
    match mode {
        1 => ThpMode::Always,
        2 => ThpMode::Madvise,
        _ => ThpMode::Never,
    }
}

/// Sleeps for `ms` milliseconds (for the scavenger thread).
pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: ts is a valid timespec; a null remainder is allowed.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

/// Sleeps while `*word == expected` (a futex wait; spurious wake-ups happen).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    let _errno = ErrnoGuard::save();
    // SAFETY: the futex word is a live, aligned u32 for the whole call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            null_mut::<libc::timespec>(),
        );
    }
}

/// Wakes up to `n` threads sleeping in [`futex_wait`] on `word`.
pub fn futex_wake(word: &AtomicU32, n: i32) {
    let _errno = ErrnoGuard::save();
    // SAFETY: the futex word is a live, aligned u32 for the whole call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}

/// Running a function when a thread exits, through a `pthread_key_create`
/// destructor. Unlike Rust's `thread_local!` destructors this never allocates
/// through the allocator that registers it (rust-lang/rust#116390), and it
/// fires for threads created from C as well.
pub mod thread_exit_hook {
    use super::*;

    const KEY_UNSET: usize = usize::MAX;
    const KEY_BUSY: usize = usize::MAX - 1;

    /// The process-wide key, or KEY_UNSET / KEY_BUSY while it is being made.
    static KEY: AtomicUsize = AtomicUsize::new(KEY_UNSET);

    /// The function every registered thread runs at exit, with the value it
    /// registered.
    pub type ExitFn = unsafe extern "C" fn(*mut c_void);

    /// Arranges for `on_exit(value)` to run when the calling thread exits.
    /// The same `on_exit` must be passed by every caller in the process.
    /// Returns false if the hook cannot be installed (no keys left).
    ///
    /// `pthread_setspecific` may allocate for high key numbers, so the caller
    /// must be ready for re-entry (its cache must already be usable).
    ///
    /// # Safety
    /// `value` must stay valid for `on_exit` until the thread exits.
    pub unsafe fn register(value: *mut c_void, on_exit: ExitFn) -> bool {
        let _errno = ErrnoGuard::save();
        let key = loop {
            match KEY.load(Ordering::Acquire) {
                KEY_BUSY => core::hint::spin_loop(),
                KEY_UNSET => {
                    if KEY
                        .compare_exchange(KEY_UNSET, KEY_BUSY, Ordering::Acquire, Ordering::Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    let mut k: libc::pthread_key_t = 0;
                    // SAFETY: k is a valid out-pointer; on_exit has the
                    // destructor signature pthread expects.
                    let ok = unsafe { libc::pthread_key_create(&mut k, Some(on_exit)) } == 0;
                    if !ok {
                        KEY.store(KEY_UNSET, Ordering::Release);
                        return false;
                    }
                    KEY.store(k as usize, Ordering::Release);
                    break k;
                }
                k => break k as libc::pthread_key_t,
            }
        };
        // SAFETY: key was created by pthread_key_create and is never deleted.
        unsafe { libc::pthread_setspecific(key, value) == 0 }
    }
}

/// Sums the `AnonHugePages` of the mappings in `/proc/self/smaps` for which
/// `wanted(start, end)` is true, in bytes, reading through a stack buffer
/// (no allocation). None if the file cannot be read.
pub fn smaps_anon_huge_bytes(mut wanted: impl FnMut(usize, usize) -> bool) -> Option<usize> {
    let _errno = ErrnoGuard::save();
    // SAFETY: the path is NUL-terminated.
    let fd = unsafe {
        libc::open(
            c"/proc/self/smaps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 4096];
    let mut len = 0;
    let mut total = 0usize;
    let mut counting = false;
    loop {
        // SAFETY: buf[len..] is ours to fill.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n <= 0 {
            break;
        }
        len += n as usize;
        let mut done = 0;
        while let Some(nl) = buf[done..len].iter().position(|&b| b == b'\n') {
            let line = &buf[done..done + nl];
            done += nl + 1;
            if let Some((start, end)) = parse_range(line) {
                counting = wanted(start, end);
            } else if counting && line.starts_with(b"AnonHugePages:") {
                let kb = line
                    .iter()
                    .filter(|b| b.is_ascii_digit())
                    .fold(0usize, |n, &d| n * 10 + (d - b'0') as usize);
                total += kb * 1024;
            }
        }
        buf.copy_within(done..len, 0);
        len -= done;
        if len == buf.len() {
            len = 0; // a line longer than the buffer: skip it
        }
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    Some(total)
}

/// The address range of a maps/smaps header line (`start-end perms ...`).
fn parse_range(line: &[u8]) -> Option<(usize, usize)> {
    let hex = |s: &[u8]| -> Option<usize> {
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        s.iter().try_fold(0usize, |n, &c| {
            Some(n * 16 + (c as char).to_digit(16)? as usize)
        })
    };
    let dash = line.iter().position(|&b| b == b'-')?;
    let space = line.iter().position(|&b| b == b' ')?;
    if space < dash {
        return None;
    }
    Some((hex(&line[..dash])?, hex(&line[dash + 1..space])?))
}

/// Starts a detached thread running `main(arg)` with every signal blocked,
/// so that no signal meant for the program (a SIGTERM it waits for with
/// `sigwait`, say) is ever delivered to it. False if it could not start.
/// `pthread_create` may allocate: the caller must hold no allocator lock.
///
/// # Safety
/// `main` must be sound to run on another thread with `arg`.
pub unsafe fn spawn_quiet_thread(
    main: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> bool {
    // The thread inherits the creator's signal mask: block everything while
    // creating it.
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut all: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `all` and `old` are valid sigsets owned here.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let mut tid: libc::pthread_t = 0;
    // SAFETY: tid is a valid out-pointer; default attributes; `main` may
    // run with `arg` on another thread (caller).
    let ok = unsafe { libc::pthread_create(&mut tid, core::ptr::null(), main, arg) } == 0;
    // SAFETY: restores the caller's own mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    if ok {
        // SAFETY: tid is the thread we just created.
        unsafe { libc::pthread_detach(tid) };
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_map_header_lines_only() {
        assert_eq!(
            parse_range(b"7f00a000-7f00b000 rw-p 00000000 00:00 0"),
            Some((0x7f00a000, 0x7f00b000))
        );
        assert_eq!(parse_range(b"AnonHugePages:      2048 kB"), None);
        assert_eq!(parse_range(b"Rss:                  4 kB"), None);
    }

    #[test]
    fn reads_smaps_of_this_process() {
        // Every mapping: the sum is whatever the system has, but it is read.
        assert!(smaps_anon_huge_bytes(|_, _| true).is_some());
        assert_eq!(smaps_anon_huge_bytes(|_, _| false), Some(0));
    }
}
