//! The OS layer: the only code that makes system calls. See lib.rs for the overview.
//!
//! Address space moves through four states, named as in the Go runtime's
//! `mem.go`, with one function per transition:
//!
//! ```text
//!            reserve              commit                (first touch)
//!   None ─────────────▶ Reserved ─────────▶ Prepared ─────────────────▶ Ready
//!    ▲                     │                    ▲                         │
//!    └──── release ────────┴────────────────────┼──────── decommit ───────┘
//! ```
//!
//! * **None**: not mapped; the address belongs to nobody.
//! * **Reserved**: mapped `PROT_NONE`; the range is ours, but touching it faults.
//!   Costs virtual size (VSZ) only.
//! * **Prepared**: readable and writable, not yet backed by physical pages (or
//!   given back with `madvise`); it reads as zero and the first touch of each
//!   page costs a minor page fault.
//! * **Ready**: backed by physical memory; counts in the resident size (RSS).
//!
//! Prepared → Ready happens by itself when the program touches a page; the
//! allocator only has to track which free page runs may hold non-zero bytes
//! (`needzero` on a free span).
//!
//! Everything here preserves `errno` and never allocates: it runs inside
//! `malloc`.

pub mod linux;

pub mod fake;

pub use linux::{futex_wait, futex_wake, sleep_ms, thread_exit_hook, LinuxOs};

/// The memory operations the page heap needs from the operating system.
///
/// # Safety
///
/// Implementations must hand out ranges that are not in use by anything else,
/// honour the requested alignment, and must never allocate through the
/// allocator that calls them (they run inside `malloc`).
pub unsafe trait OsMem: Sync {
    /// None → Reserved: reserves `size` bytes of address space aligned to
    /// `align` (a power of two, at least the OS page size). Returns null when
    /// the OS refuses.
    fn reserve(&self, size: usize, align: usize) -> *mut u8;

    /// Reserved → Prepared: makes `[addr, addr + size)` readable and writable.
    /// Returns false when the OS refuses (the range stays Reserved).
    ///
    /// # Safety
    /// The range must lie inside one range returned by `reserve`.
    unsafe fn commit(&self, addr: *mut u8, size: usize) -> bool;

    /// Ready → Prepared: gives the physical pages back. The range stays
    /// accessible and reads as zero afterwards.
    ///
    /// # Safety
    /// The range must be committed and hold nothing anybody still needs.
    unsafe fn decommit(&self, addr: *mut u8, size: usize);

    /// Any state → None: unmaps the range.
    ///
    /// # Safety
    /// The range must come from `reserve` and nothing may use it afterwards.
    unsafe fn release(&self, addr: *mut u8, size: usize);

    /// Asks for transparent huge pages on a committed range, where the
    /// system wants to be asked. Only a hint; the default does nothing.
    ///
    /// # Safety
    /// The range must be committed.
    unsafe fn hint_huge_pages(&self, _addr: *mut u8, _size: usize) {}

    /// Names a range so that `/proc/PID/maps` shows it as spanalloc's,
    /// where the system supports it. Only a label; the default does nothing.
    fn name_region(&self, _addr: *mut u8, _size: usize) {}

    /// A monotonic clock in milliseconds, for the scavenger's decay.
    fn now_ms(&self) -> u64;
}
