//! Reporting misuse (a pointer spanalloc did not hand out, a double free)
//! and printing to a file descriptor, without allocating. See lib.rs.

use core::fmt::{self, Write};

/// What is wrong with a pointer passed to free or realloc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointerError {
    /// Not the start of a live block this allocator handed out.
    NotOurs,
    /// A block that was already freed.
    DoubleFree,
}

/// A `fmt::Write` over a fixed buffer that flushes to a file descriptor:
/// formatting through it allocates nothing.
pub struct FdWriter {
    fd: i32,
    buf: [u8; 1024],
    len: usize,
}

impl FdWriter {
    /// A writer to `fd`.
    pub const fn new(fd: i32) -> Self {
        FdWriter {
            fd,
            buf: [0; 1024],
            len: 0,
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: buf[done..len] is initialised memory we own.
            let n =
                unsafe { libc::write(self.fd, self.buf[done..].as_ptr().cast(), self.len - done) };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        self.len = 0;
    }
}

impl Write for FdWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

impl Drop for FdWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Writes `spanalloc: CALL(): WHAT POINTER` to stderr and aborts the process,
/// as glibc does for `free(): invalid pointer`.
#[cold]
#[inline(never)]
pub fn report_and_abort(call: &str, p: *const u8, err: PointerError) -> ! {
    let mut w = FdWriter::new(2);
    let what = match err {
        PointerError::NotOurs => {
            "invalid pointer (not the start of a live block allocated by spanalloc)"
        }
        PointerError::DoubleFree => "double free of",
    };
    let _ = writeln!(w, "spanalloc: {call}(): {what} {p:p}");
    w.flush();
    // SAFETY: abort never returns and is async-signal-safe.
    unsafe { libc::abort() }
}
