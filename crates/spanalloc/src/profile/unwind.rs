//! Walking the stack of a sample, fast: the call-frame information of each
//! return address is read once and then remembered.
//!
//! A program compiled without frame pointers can only be walked with the
//! DWARF call-frame information (CFI) of its `.eh_frame` sections: for each
//! code address, how to find the caller's stack pointer (the *CFA*, its
//! value before the call) and where the return address and the saved
//! registers are. libgcc's `_Unwind_Backtrace` finds the entry and runs its
//! CFI program again for every frame of every stack (about 1.8 µs a stack
//! here, three quarters of the cost of a sample). Here the result for one
//! address is reduced to a [`Rule`] (CFA = `rsp` or `rbp` plus an offset;
//! return address and `rbp` at fixed offsets from the CFA) and kept in a
//! direct-mapped cache, so a stack seen before costs a few loads a frame;
//! the frames of the last walk are also kept in order, and a walk along
//! the same path reads them from there first (see [`Cache`]).
//!
//! A miss finds the object holding the address (`dl_iterate_phdr`), its
//! `.eh_frame_hdr` (the `PT_GNU_EH_FRAME` segment: a table sorted by
//! address) and, with gimli, the row of the frame description entry that
//! applies. Nothing allocates: gimli's unwind context lives on the stack.
//! Addresses whose rule is not of that simple shape (signal trampolines,
//! PLT entries, code without CFI) end the walk, as does the outermost frame
//! (return address undefined). A `dlclose` may put other code where cached
//! addresses were, so the cache is emptied whenever the loader's count of
//! removed objects moves.
//!
//! The cache's lock is taken on its own (the profiler's and the heap's are
//! not held) and is let go before each call of `dl_iterate_phdr` on a miss:
//! a thread allocating inside a `dl_iterate_phdr` callback (the backtrace
//! crate's symbolizer does) holds the loader's lock and may be sampled.
//! Only the short check of the loader's removal count is made before the
//! cache's lock is taken. x86_64 Linux only; elsewhere the profiler uses
//! the platform unwinder.

use crate::sync::Mutex;
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, NativeEndian, Pointer, ReaderOffset, Register,
    RegisterRule, UnwindContext, UnwindContextStorage, UnwindSection, UnwindTableRow, X86_64,
};

/// Cached rules: a power of two.
const SLOTS: usize = 4096;

/// A frame whose CFA is further than this above the stack pointer of the
/// frame below is taken for a broken walk.
const MAX_FRAME: usize = 64 << 20;

/// How to step from a frame at code address `pc` to its caller.
///
/// Invariant: in the cache, `pc == 0` marks an empty slot; otherwise the
/// rule is what the CFI says for `pc`, or `STOP`.
#[derive(Clone, Copy)]
struct Rule {
    pc: usize,
    /// CFA = (`rbp` if `FP_BASED`, else `rsp`) + `cfa_offset`.
    cfa_offset: i32,
    /// The return address is at CFA + `ra_offset`.
    ra_offset: i32,
    /// If `FP_SAVED`, the caller's `rbp` is at CFA + `fp_offset`; if
    /// `FP_LOST`, it is unknown; otherwise `rbp` is the caller's too.
    fp_offset: i32,
    flags: u8,
}

const FP_BASED: u8 = 1;
const FP_SAVED: u8 = 2;
/// The walk ends at this address.
const STOP: u8 = 4;
/// The caller's rbp is not recoverable (CFI rule "undefined"): a later
/// frame whose CFA is rbp-based ends the walk.
const FP_LOST: u8 = 8;

impl Rule {
    const EMPTY: Rule = Rule {
        pc: 0,
        cfa_offset: 0,
        ra_offset: 0,
        fp_offset: 0,
        flags: 0,
    };

    fn stop(pc: usize) -> Rule {
        Rule {
            pc,
            flags: STOP,
            ..Rule::EMPTY
        }
    }
}

/// Frames of the last walk kept in order (see [`Cache`]).
const RECENT: usize = 64;

/// The rules, and the loader's count of removed objects they were read at.
///
/// Invariant: `slots` as [`Rule`] says; `recent[..recent_len]` are rules
/// of the same validity, each for the address it names: those of the
/// frames of the last walk, innermost first (when walks on several threads
/// interleave, a mix of their paths; every use checks the address). A program allocates from the same few stacks over and over: a
/// walk first compares its frame `n` with `recent[n]`, a few contiguous
/// cache lines, before it hashes into `slots`, whose lines are scattered
/// and, after the program touched memory of its own, cold (the dependent
/// load of each frame's slot was a third of a walk's time).
struct Cache {
    slots: [Rule; SLOTS],
    removed: u64,
    recent: [Rule; RECENT],
    recent_len: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    slots: [Rule::EMPTY; SLOTS],
    removed: 0,
    recent: [Rule::EMPTY; RECENT],
    recent_len: 0,
});

/// Fills `frames` with the calling stack's code addresses, innermost first
/// (this function's own, then return addresses); the number filled.
/// Allocates nothing.
#[inline(never)]
pub(super) fn capture(frames: &mut [usize]) -> usize {
    let (mut pc, mut sp, mut fp): (usize, usize, usize);
    // SAFETY: reads three registers; touches no memory. The address taken
    // is that of the next instruction, in this function's body, where the
    // stack pointer already has the value read with it.
    unsafe {
        core::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {fp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            fp = out(reg) fp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let removed = objects_removed();
    let mut cache = CACHE.lock();
    if cache.removed != removed {
        cache.slots.fill(Rule::EMPTY);
        cache.recent_len = 0;
        cache.removed = removed;
    }
    // The previous walk's frames, while this one follows the same path.
    let mut same_path = cache.recent_len;
    // Whether `fp` holds this frame's rbp: not after a callee whose CFI
    // says it did not preserve it.
    let mut fp_known = true;
    let mut n = 0;
    while n < frames.len() {
        frames[n] = pc;
        // A return address may be the first byte after a call that never
        // returns, i.e. in the next function: look up the call itself.
        let at = if n == 0 { pc } else { pc - 1 };
        let recent = if n < same_path {
            cache.recent[n]
        } else {
            Rule::EMPTY
        };
        let i = n;
        n += 1;
        let (r, keep) = match cache.get_recent(recent, at) {
            Some(r) => (r, true),
            None => {
                same_path = 0;
                // Reading the CFI takes the loader's lock, which a thread
                // allocating inside a dl_iterate_phdr callback holds while
                // it waits for this one: never wait for it with ours held.
                drop(cache);
                let (r, keep) = read_rule(at);
                cache = CACHE.lock();
                if keep && cache.removed == removed {
                    cache.put(r);
                }
                (r, keep)
            }
        };
        // Only what the slots may hold: not a stop for an address that no
        // loaded object held (one loaded later may).
        if keep && cache.removed == removed && i < RECENT {
            cache.recent[i] = r;
            cache.recent_len = i + 1;
        }
        if r.flags & STOP != 0 || (r.flags & FP_BASED != 0 && !fp_known) {
            break;
        }
        let base = if r.flags & FP_BASED != 0 { fp } else { sp };
        let cfa = base.wrapping_add(r.cfa_offset as isize as usize);
        let ra_at = cfa.wrapping_add(r.ra_offset as isize as usize);
        let fp_at = cfa.wrapping_add(r.fp_offset as isize as usize);
        // The CFA is above the frame, and what the caller saved is between
        // the two: anything else is not a stack this walk can trust.
        let saved_ok = |a: usize| a >= sp && a.checked_add(8).is_some_and(|e| e <= cfa);
        if cfa <= sp
            || cfa - sp > MAX_FRAME
            || !saved_ok(ra_at)
            || (r.flags & FP_SAVED != 0 && !saved_ok(fp_at))
        {
            break;
        }
        if r.flags & FP_SAVED != 0 {
            // SAFETY: the CFI of the code at `at` says this word of the live
            // stack (between this frame's stack pointer and CFA) holds rbp.
            fp = unsafe { (fp_at as *const usize).read() };
            fp_known = true;
        } else if r.flags & FP_LOST != 0 {
            fp_known = false;
        }
        // SAFETY: as above, for the return address.
        pc = unsafe { (ra_at as *const usize).read() };
        sp = cfa;
        if pc == 0 {
            break;
        }
    }
    n
}

impl Cache {
    fn slot(pc: usize) -> usize {
        (pc.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) % SLOTS
    }

    /// The rule for code address `pc`: `recent` if it is that address's,
    /// else the remembered one, if any.
    #[inline(always)]
    fn get_recent(&self, recent: Rule, pc: usize) -> Option<Rule> {
        if recent.pc == pc && pc != 0 {
            return Some(recent);
        }
        self.get(pc)
    }

    /// The remembered rule for code address `pc`, if any.
    fn get(&self, pc: usize) -> Option<Rule> {
        let r = self.slots[Self::slot(pc)];
        (r.pc == pc && pc != 0).then_some(r)
    }

    /// Remembers `r` (in place of whatever shared its slot).
    fn put(&mut self, r: Rule) {
        self.slots[Self::slot(r.pc)] = r;
    }
}

/// The loader's count of objects removed from the process so far.
fn objects_removed() -> u64 {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid entry, and `data` is the u64
        // passed below.
        unsafe { *data.cast::<u64>() = (*info).dlpi_subs };
        1
    }
    let mut removed = 0u64;
    // SAFETY: the callback only reads the entry and writes `removed`.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut removed).cast()) };
    removed
}

/// Where the unwind tables of the object holding a code address are.
struct Object {
    pc: usize,
    found: bool,
    eh_frame_hdr: usize,
    eh_frame_hdr_len: usize,
    /// The object's loaded segments, to bound `.eh_frame`.
    segments: [(usize, usize); 16],
    nsegments: usize,
}

/// The rule for `pc` from its object's CFI, `STOP` if there is none of the
/// shape a [`Rule`] holds; with whether to remember it (not when no loaded
/// object holds `pc`: one loaded later might).
#[inline(never)]
fn read_rule(pc: usize) -> (Rule, bool) {
    unsafe extern "C" fn find(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid entry whose `dlpi_phdr` points to
        // `dlpi_phnum` program headers; `data` is the Object passed below.
        unsafe {
            let o = &mut *data.cast::<Object>();
            let info = &*info;
            let base = info.dlpi_addr as usize;
            let phdrs = core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            let holds = phdrs.iter().any(|p| {
                let start = base.wrapping_add(p.p_vaddr as usize);
                p.p_type == libc::PT_LOAD && start <= o.pc && o.pc - start < p.p_memsz as usize
            });
            if !holds {
                return 0;
            }
            for p in phdrs {
                let start = base.wrapping_add(p.p_vaddr as usize);
                if p.p_type == libc::PT_GNU_EH_FRAME {
                    o.eh_frame_hdr = start;
                    o.eh_frame_hdr_len = p.p_memsz as usize;
                    o.found = true;
                } else if p.p_type == libc::PT_LOAD && o.nsegments < o.segments.len() {
                    o.segments[o.nsegments] = (start, start + p.p_memsz as usize);
                    o.nsegments += 1;
                }
            }
            1
        }
    }
    let mut o = Object {
        pc,
        found: false,
        eh_frame_hdr: 0,
        eh_frame_hdr_len: 0,
        segments: [(0, 0); 16],
        nsegments: 0,
    };
    // SAFETY: the callback reads the loader's entries and writes `o` only.
    unsafe { libc::dl_iterate_phdr(Some(find), (&raw mut o).cast()) };
    if !o.found {
        return (Rule::stop(pc), false);
    }
    (rule_from_cfi(pc, &o), true)
}

/// The rule for `pc`, from the unwind tables of `o`, the object holding it.
fn rule_from_cfi(pc: usize, o: &Object) -> Rule {
    // The PT_GNU_EH_FRAME segment of a loaded object stays mapped while the
    // object is loaded (see the module documentation on dlclose).
    let (hdr_at, hdr_len) = (o.eh_frame_hdr as *const u8, o.eh_frame_hdr_len);
    // SAFETY: a loaded object's segment, mapped and readable (above).
    let hdr = unsafe { core::slice::from_raw_parts(hdr_at, hdr_len) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(o.eh_frame_hdr as u64);
    let Ok(parsed) = EhFrameHdr::new(hdr, NativeEndian).parse(&bases, 8) else {
        return Rule::stop(pc);
    };
    let Pointer::Direct(eh_frame) = parsed.eh_frame_ptr() else {
        return Rule::stop(pc);
    };
    let eh_frame = eh_frame as usize;
    let Some(&(_, end)) = o.segments[..o.nsegments]
        .iter()
        .find(|&&(s, e)| s <= eh_frame && eh_frame < e)
    else {
        return Rule::stop(pc);
    };
    // SAFETY: `.eh_frame` lies in one of the object's loaded segments,
    // mapped and readable up to its end.
    let section = unsafe { core::slice::from_raw_parts(eh_frame as *const u8, end - eh_frame) };
    let eh_frame_section = EhFrame::new(section, NativeEndian);
    let bases = bases.set_eh_frame(eh_frame as u64);
    let Some(table) = parsed.table() else {
        return Rule::stop(pc);
    };
    let mut ctx = UnwindContext::<usize, OnStack>::new_in();
    match table.unwind_info_for_address(
        &eh_frame_section,
        &bases,
        &mut ctx,
        pc as u64,
        EhFrame::cie_from_offset,
    ) {
        Ok(row) => rule_of(pc, row),
        Err(_) => Rule::stop(pc),
    }
}

/// gimli's unwind context without a heap: room for the rules of 32
/// registers (x86_64 has 17 that CFI describes) and 4 remembered states.
struct OnStack;

impl<T: ReaderOffset> UnwindContextStorage<T> for OnStack {
    type Rules = [(Register, RegisterRule<T>); 32];
    type Stack = [UnwindTableRow<T, Self>; 4];
}

/// Reduces a CFI row to a [`Rule`], or `STOP`.
fn rule_of(pc: usize, row: &UnwindTableRow<usize, OnStack>) -> Rule {
    let (flags, cfa_offset) = match *row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } if register == X86_64::RSP => (0, offset),
        CfaRule::RegisterAndOffset { register, offset } if register == X86_64::RBP => {
            (FP_BASED, offset)
        }
        _ => return Rule::stop(pc),
    };
    let Some(RegisterRule::Offset(ra_offset)) = row.register(X86_64::RA) else {
        // Undefined: the outermost frame. Anything else: not this shape.
        return Rule::stop(pc);
    };
    let (flags, fp_offset) = match row.register(X86_64::RBP) {
        None | Some(RegisterRule::SameValue) => (flags, 0),
        Some(RegisterRule::Undefined) => (flags | FP_LOST, 0),
        Some(RegisterRule::Offset(o)) => (flags | FP_SAVED, o),
        Some(_) => return Rule::stop(pc),
    };
    let fit = |v: i64| i32::try_from(v).ok();
    match (fit(cfa_offset), fit(ra_offset), fit(fp_offset)) {
        (Some(cfa_offset), Some(ra_offset), Some(fp_offset)) => Rule {
            pc,
            cfa_offset,
            ra_offset,
            fp_offset,
            flags,
        },
        _ => Rule::stop(pc),
    }
}

/// The lock on the cache, for fork (see profile::fork_lock).
pub(super) fn fork_lock() {
    CACHE.raw_lock();
}

/// # Safety
/// The caller must hold the lock through [`fork_lock`].
pub(super) unsafe fn fork_unlock() {
    // SAFETY: forwarded from the caller.
    unsafe { CACHE.raw_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(depth: usize, out: &mut Vec<usize>, reference: &mut Vec<usize>) {
        if depth > 0 {
            nested(depth - 1, out, reference);
            core::hint::black_box(());
            return;
        }
        let mut frames = [0usize; 64];
        let n = capture(&mut frames);
        out.extend_from_slice(&frames[..n]);
        // SAFETY: as in profile::capture.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                reference.push(f.ip() as usize);
                true
            });
        }
    }

    /// The walk finds the same return addresses as libgcc's unwinder, from
    /// the caller of `capture` to the end of the stack (or 64 frames).
    fn agrees_with_libgcc() {
        agrees_with_libgcc_at(12);
    }

    fn agrees_with_libgcc_at(depth: usize) {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        nested(depth, &mut ours, &mut theirs);
        assert!(
            ours.len() > depth + 1,
            "walked {} frames: {ours:x?}",
            ours.len()
        );
        // Our first frame is inside capture and our second the return
        // into `nested` from it; the third, a return into `nested` from
        // itself, is also in libgcc's list (after its own frames and the
        // return from the call of the trace).
        let start = theirs
            .iter()
            .position(|&a| a == ours[2])
            .unwrap_or_else(|| panic!("{:x?} not in {theirs:x?}", ours[2]));
        let mut theirs = &theirs[start..];
        // libgcc reports a last frame of address 0 past the outermost one.
        while let [rest @ .., 0] = theirs {
            theirs = rest;
        }
        let common = (ours.len() - 2).min(theirs.len());
        assert_eq!(&ours[2..2 + common], &theirs[..common]);
        // Ours ends where libgcc's does, unless 64 frames ran out first.
        if ours.len() < 64 {
            assert_eq!(ours.len() - 2, theirs.len(), "{ours:x?}\n{theirs:x?}");
        }
    }

    #[test]
    fn the_walk_matches_the_platform_unwinder() {
        agrees_with_libgcc();
        // A second time, from the cache.
        agrees_with_libgcc();
    }

    #[test]
    fn a_walk_that_leaves_the_last_path_still_matches() {
        // Deeper, shallower, then the first again: each walk starts along
        // the previous one's frames (Cache::recent) and must notice where
        // it leaves them.
        for depth in [12, 3, 20, 12, 0, 12] {
            agrees_with_libgcc_at(depth);
        }
    }

    #[test]
    fn the_walk_matches_on_other_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(agrees_with_libgcc))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn code_without_cfi_ends_the_walk() {
        let mut c = Cache {
            slots: [Rule::EMPTY; SLOTS],
            removed: 0,
            recent: [Rule::EMPTY; RECENT],
            recent_len: 0,
        };
        // Not code of any loaded object.
        // Not code of any loaded object: a stop, not to be remembered.
        let (r, keep) = read_rule(0x10);
        assert!(r.flags & STOP != 0 && !keep);
        let code = agrees_with_libgcc as fn() as usize;
        let (r, keep) = read_rule(code + 1);
        assert!(r.flags & STOP == 0 && keep);
        c.put(r);
        assert_eq!(c.get(code + 1).map(|r| r.pc), Some(code + 1));
        assert!(c.get(code + 2).is_none());
    }
}
