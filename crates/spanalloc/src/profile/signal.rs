//! Writing a profile when the process gets a signal
//! (`SPANALLOC_PROFILE_SIGNAL`). See profile/mod.rs.
//!
//! A signal handler may not allocate, and naming frames allocates; so the
//! handler only writes a byte into a pipe, and a thread of the profiler's
//! own, waiting on the pipe with every signal blocked, writes `PATH.1`,
//! `PATH.2`, … (`PATH` from `SPANALLOC_PROFILE`, else `spanalloc.PID.pprof`).

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The pipe's write end (-1 until the thread runs).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// Installs the handler of signal `SPANALLOC_PROFILE_SIGNAL` and starts the
/// writer thread, once, if the option asks and the profiler is on. Call it
/// where starting a thread is safe: the C library's constructor, or a slow
/// path of `free` holding no lock (as the scavenger starts).
pub fn start_signal_thread() {
    // Decided once, at the first call: the option comes from the
    // environment, which enabled the profiler before any free could run.
    static DECIDED: AtomicBool = AtomicBool::new(false);
    if DECIDED.load(Ordering::Relaxed) || DECIDED.swap(true, Ordering::AcqRel) {
        return;
    }
    let signal = crate::options::get().profile_signal as i32;
    if signal <= 0 || !super::is_enabled() {
        return;
    }
    let mut fds = [0i32; 2];
    // SAFETY: fds is room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let read_fd = fds[0];
    PIPE_WRITE.store(fds[1], Ordering::Release);
    // SAFETY: writer_main takes the pipe's read end as its argument, an
    // integer, and touches nothing else of ours.
    let started = unsafe {
        crate::os::linux::spawn_quiet_thread(writer_main, read_fd as usize as *mut libc::c_void)
    };
    if !started {
        return;
    }
    // SAFETY: an all-zero sigaction is valid; we set the handler and flags.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: sa is a valid action; the handler is async-signal-safe.
    unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(signal, &sa, core::ptr::null_mut());
    }
}

/// The handler: one byte into the pipe (async-signal-safe), errno kept.
extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: __errno_location is this thread's errno; write is
    // async-signal-safe; the byte is a valid 1-byte buffer.
    unsafe {
        let errno = *libc::__errno_location();
        let fd = PIPE_WRITE.load(Ordering::Acquire);
        if fd >= 0 {
            libc::write(fd, b"!".as_ptr().cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

/// The writer thread: a numbered profile per byte read.
extern "C" fn writer_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    let fd = arg as usize as i32;
    let mut n = 0u64;
    loop {
        let mut b = 0u8;
        // SAFETY: b is a valid 1-byte buffer; fd is the pipe's read end.
        let got = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if got < 0 {
            // SAFETY: reads this thread's errno.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return core::ptr::null_mut();
        }
        if got == 0 {
            return core::ptr::null_mut();
        }
        n += 1;
        let base = match crate::options::get().profile.and_then(|p| p.to_str().ok()) {
            Some(p) => p.to_owned(),
            // SAFETY: getpid has no preconditions.
            None => format!("spanalloc.{}.pprof", unsafe { libc::getpid() }),
        };
        let path = format!("{base}.{n}");
        if let Err(e) = super::write(&path) {
            eprintln!("spanalloc: cannot write the heap profile to {path}: {e}");
        }
    }
}
