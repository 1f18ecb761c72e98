//! `maps [PID]`: a process's address space, each mapping given a class.
//!
//! How each class is recognised, in the order the rules apply:
//!
//! 1. **Kernel names**: `[heap]` (the `brk` heap), `[stack]` (the main
//!    thread's stack), `[stack:TID]` (a thread's stack, on old kernels),
//!    `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]`, and
//!    `[anon:spanalloc]`, the name spanalloc gives its arenas with
//!    `prctl(PR_SET_VMA_ANON_NAME)` where the kernel allows it.
//! 2. **Program images** (the executable and shared libraries): each mapped
//!    file is read as ELF and its `PT_LOAD` segments placed at the load bias
//!    the mappings reveal. A mapping inside an executable segment is
//!    **text**, inside a read-only one **rodata**, inside a writable one
//!    **data** (also when the loader has made it read-only after relocation:
//!    RELRO), and an anonymous mapping inside a writable segment's memory
//!    size is its **bss**. When a file cannot be read (deleted, another mount
//!    namespace), a file with an executable mapping is taken as an image and
//!    its mappings classified by permission, with the anonymous mapping
//!    right after its writable one as bss.
//! 3. **Thread stacks**: the stack pointer of every thread blocked in the
//!    kernel (`/proc/PID/task/TID/syscall`; a running thread shows none)
//!    names the mapping it points into; and, as a fallback, a read-write
//!    anonymous mapping directly above a small (at most 1 MiB) inaccessible
//!    one not mapped with `MAP_NORESERVE` is a thread stack above its guard
//!    page, the layout of glibc's
//!    `pthread_create` (marked "thread stack?" in the name column), or, if
//!    it is at most 64 KiB, the alternate signal stack Rust's runtime gives
//!    every thread, also above a guard page ("signal stack?").
//! 4. **spanalloc arenas without a name**: a read-write anonymous mapping
//!    that starts on a 64 MiB boundary and whose size is a multiple of
//!    64 MiB is probably one (or several adjacent) spanalloc arenas:
//!    "spanalloc arena?".
//! 5. The rest: other **mapped files**, **anonymous** memory, and
//!    inaccessible anonymous memory (**reserved** address space; **guard**
//!    when it lies under a thread stack).
//!
//! Sizes and permissions come from `/proc/PID/maps`; resident and swapped
//! bytes from `/proc/PID/smaps`. The totals are checked against `VmSize` and
//! `VmRSS` of `/proc/PID/status` (`[vsyscall]` is not part of `VmSize`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::elf::{load_segments, LoadSegment};
use crate::error::Result;
use crate::procfs::{read_process, Mapping, Process};

/// spanalloc's arena size and alignment.
pub const ARENA_SIZE: u64 = 64 << 20;

/// The largest inaccessible mapping taken for a thread's guard page.
const MAX_GUARD: u64 = 1 << 20;

/// Stacks above a guard page up to this size are taken for alternate signal
/// stacks (`sigaltstack`; Rust's runtime makes one per thread, a few pages),
/// larger ones for thread stacks (at least 2 MiB for Rust's threads, 8 MiB
/// for C's by default).
const MAX_SIGNAL_STACK: u64 = 64 << 10;

/// What a mapping holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Machine code of the executable or a library.
    Text,
    /// Read-only data of the executable or a library.
    Rodata,
    /// Initialised writable data (including RELRO).
    Data,
    /// Zero-initialised data: anonymous memory inside a writable segment.
    Bss,
    /// The `brk` heap (`[heap]`).
    Heap,
    /// The main thread's stack (`[stack]`).
    Stack,
    /// Another thread's stack.
    ThreadStack,
    /// An inaccessible page under a thread stack.
    Guard,
    /// A spanalloc arena, named `[anon:spanalloc]`.
    SpanallocArena,
    /// Probably a spanalloc arena: unnamed, 64 MiB-aligned, a multiple of
    /// 64 MiB.
    SpanallocArenaGuess,
    /// Another mapped file.
    File,
    /// Anonymous memory (`mmap`), named or not.
    Anon,
    /// Inaccessible anonymous memory: reserved address space.
    Reserved,
    /// The kernel's pages: `[vdso]`, `[vvar]`, `[vsyscall]`.
    Vdso,
    /// Anything else the kernel names (`[uprobes]`, ...).
    Other,
}

impl Class {
    /// The name shown in text output.
    pub fn label(self) -> &'static str {
        match self {
            Class::Text => "text",
            Class::Rodata => "rodata",
            Class::Data => "data",
            Class::Bss => "bss",
            Class::Heap => "heap",
            Class::Stack => "stack",
            Class::ThreadStack => "thread stack",
            Class::Guard => "guard",
            Class::SpanallocArena => "spanalloc arena",
            Class::SpanallocArenaGuess => "spanalloc arena?",
            Class::File => "mapped file",
            Class::Anon => "anon mmap",
            Class::Reserved => "reserved",
            Class::Vdso => "vdso/vvar",
            Class::Other => "other",
        }
    }
}

/// One mapping with its class.
#[derive(Clone, Debug, Serialize)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Bytes of address space.
    pub size: u64,
    /// Permissions as the kernel prints them (`r-xp`).
    pub perms: String,
    /// Offset in the mapped file.
    pub offset: u64,
    /// The file or kernel name (`/usr/lib/libc.so.6`, `[heap]`), if any.
    pub path: Option<String>,
    /// What it holds.
    pub class: Class,
    /// A short name: the file's base name, `tid 123`, the kernel's name.
    pub name: String,
    /// Why it was given its class.
    pub how: String,
    /// Resident bytes.
    pub rss: u64,
    /// Proportional share of resident bytes.
    pub pss: u64,
    /// Swapped-out bytes.
    pub swap: u64,
    /// Resident bytes written by this process only.
    pub private_dirty: u64,
}

/// Totals of one class.
#[derive(Clone, Debug, Serialize)]
pub struct ClassTotal {
    /// The class.
    pub class: Class,
    /// Number of mappings.
    pub regions: usize,
    /// Bytes of address space.
    pub size: u64,
    /// Resident bytes.
    pub rss: u64,
    /// Swapped-out bytes.
    pub swap: u64,
}

/// Sums over all mappings, beside the kernel's own totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Bytes of address space (without `[vsyscall]`).
    pub vsz: u64,
    /// Resident bytes.
    pub rss: u64,
    /// Proportional share of resident bytes.
    pub pss: u64,
    /// Swapped-out bytes.
    pub swap: u64,
    /// `VmSize` of `/proc/PID/status`.
    pub status_vm_size: u64,
    /// `VmRSS` of `/proc/PID/status`.
    pub status_vm_rss: u64,
    /// `VmSwap` of `/proc/PID/status`.
    pub status_vm_swap: u64,
}

/// Everything `maps` reports.
#[derive(Clone, Debug, Serialize)]
pub struct MapsReport {
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub name: String,
    /// Executable, if readable.
    pub exe: Option<String>,
    /// Number of threads.
    pub threads: usize,
    /// The mappings in address order.
    pub regions: Vec<Region>,
    /// Totals per class, in class order.
    pub summary: Vec<ClassTotal>,
    /// Totals over all mappings.
    pub totals: Totals,
}

/// Reads and classifies the address space of `pid`.
pub fn inspect(pid: u32) -> Result<MapsReport> {
    let p = read_process(pid)?;
    let root = format!("/proc/{pid}/root");
    let regions = classify(&p, &|m: &Mapping| {
        // The file as this process sees it; through /proc/PID/root if it
        // lives in another mount namespace. The inode must match, or the
        // file was replaced since it was mapped.
        use std::os::unix::fs::MetadataExt as _;
        let there = format!("{root}{}", m.path);
        let candidates = [Path::new(&m.path), Path::new(&there)];
        let file = candidates
            .into_iter()
            .find(|path| std::fs::metadata(path).is_ok_and(|meta| meta.ino() == m.inode));
        file.and_then(load_segments)
    });
    Ok(report(&p, regions))
}

/// Builds the report from classified regions.
pub fn report(p: &Process, regions: Vec<Region>) -> MapsReport {
    let mut by_class: BTreeMap<Class, ClassTotal> = BTreeMap::new();
    let mut totals = Totals {
        status_vm_size: p.status.vm_size,
        status_vm_rss: p.status.vm_rss,
        status_vm_swap: p.status.vm_swap,
        ..Totals::default()
    };
    for r in &regions {
        let t = by_class.entry(r.class).or_insert(ClassTotal {
            class: r.class,
            regions: 0,
            size: 0,
            rss: 0,
            swap: 0,
        });
        t.regions += 1;
        t.size += r.size;
        t.rss += r.rss;
        t.swap += r.swap;
        if r.path.as_deref() != Some("[vsyscall]") {
            totals.vsz += r.size;
        }
        totals.rss += r.rss;
        totals.pss += r.pss;
        totals.swap += r.swap;
    }
    MapsReport {
        pid: p.pid,
        name: p.status.name.clone(),
        exe: p.exe.clone(),
        threads: p.threads.len(),
        regions,
        summary: by_class.into_values().collect(),
        totals,
    }
}

/// A program image's `PT_LOAD` segment placed in the address space.
struct Placed {
    lo: u64,
    hi: u64,
    seg: LoadSegment,
}

/// A class for a mapping, with the short name and the reason shown for it.
#[derive(Clone, Debug)]
struct Label {
    class: Class,
    name: String,
    how: String,
}

impl Label {
    fn new(class: Class, name: impl Into<String>, how: impl Into<String>) -> Self {
        Label {
            class,
            name: name.into(),
            how: how.into(),
        }
    }
}

/// Classifies every mapping of `p`. `segments_of` gives the `PT_LOAD`
/// segments of a mapped file (the first mapping of each file is passed), or
/// `None` if it is not a readable ELF file.
pub fn classify(
    p: &Process,
    segments_of: &dyn Fn(&Mapping) -> Option<Vec<LoadSegment>>,
) -> Vec<Region> {
    let maps = &p.mappings;
    // 1. Names the kernel gives.
    let mut out: Vec<Option<Label>> = maps
        .iter()
        .map(|m| kernel_named(m).map(|(c, how)| Label::new(c, m.path.clone(), how)))
        .collect();

    // 2. Program images and other files, one file (device and inode) at a time.
    let mut files: BTreeMap<(&str, u64), Vec<usize>> = BTreeMap::new();
    for (i, m) in maps.iter().enumerate() {
        if m.is_file() && out[i].is_none() {
            files.entry((&m.dev, m.inode)).or_default().push(i);
        }
    }
    for idx in files.values() {
        let name = base_name(&maps[idx[0]].path);
        match segments_of(&maps[idx[0]]).and_then(|s| place(maps, idx, &s)) {
            Some(placed) => label_image(maps, idx, &placed, &name, &mut out),
            None if idx.iter().any(|&i| maps[i].can('x')) => {
                label_image_by_permissions(maps, idx, &name, &mut out)
            }
            None => {
                for &i in idx {
                    out[i] = Some(Label::new(Class::File, name.clone(), "mapped file"));
                }
            }
        }
    }

    // 3. Thread stacks, by stack pointer.
    for t in &p.threads {
        let Some(sp) = t.sp else { continue };
        let Some(i) = maps.iter().position(|m| m.start <= sp && sp < m.end) else {
            continue;
        };
        match &mut out[i] {
            None => {
                out[i] = Some(Label::new(
                    Class::ThreadStack,
                    format!("tid {}", t.tid),
                    format!("holds the stack pointer of thread {}", t.tid),
                ));
            }
            Some(l) if l.class == Class::Stack => l.name = format!("[stack] (tid {})", t.tid),
            Some(_) => {}
        }
    }

    // 4. and 5. The remaining anonymous mappings, and guard pages.
    for i in 0..maps.len() {
        let m = &maps[i];
        let guard = i.checked_sub(1).filter(|&j| is_guard_below(&maps[j], m));
        if out[i].is_none() && m.is_unnamed_anon() {
            out[i] = Some(label_anon(m, guard.is_some()));
        }
        if let (Some(j), Some(l)) = (guard, &out[i]) {
            let free = out[j].as_ref().is_none_or(|g| g.class == Class::Reserved);
            if l.class == Class::ThreadStack && free {
                out[j] = Some(Label::new(
                    Class::Guard,
                    "guard",
                    "inaccessible page right under a thread stack",
                ));
            }
        }
    }

    maps.iter()
        .zip(out)
        .map(|(m, l)| {
            let l = l.unwrap_or_else(|| Label::new(Class::Anon, "", "anonymous memory"));
            Region {
                start: m.start,
                end: m.end,
                size: m.size(),
                perms: m.perms.clone(),
                offset: m.offset,
                path: (!m.path.is_empty()).then(|| m.path.clone()),
                class: l.class,
                name: l.name,
                how: l.how,
                rss: m.rss,
                pss: m.pss,
                swap: m.swap,
                private_dirty: m.private_dirty,
            }
        })
        .collect()
}

/// Labels the mappings `idx` of a program file whose segments are `placed`,
/// and the anonymous mappings inside its writable segments (its bss).
fn label_image(
    maps: &[Mapping],
    idx: &[usize],
    placed: &[Placed],
    name: &str,
    out: &mut [Option<Label>],
) {
    for &i in idx {
        out[i] = Some(image_part(&maps[i], placed, name));
    }
    for (i, m) in maps.iter().enumerate() {
        if out[i].is_some() || !m.is_unnamed_anon() {
            continue;
        }
        let inside = |pl: &&Placed| pl.seg.write() && m.start < pl.hi && pl.lo < m.end;
        if let Some(pl) = placed.iter().find(inside) {
            let how = if m.end > pl.hi {
                "anonymous, starts inside a writable PT_LOAD segment (merged with memory past it)"
            } else {
                "anonymous, inside a writable PT_LOAD segment past its file size"
            };
            out[i] = Some(Label::new(Class::Bss, name, how));
        }
    }
}

/// Labels the mappings `idx` of a program file that could not be read as
/// ELF, by their permissions; the anonymous mapping right after its
/// writable one is its bss.
fn label_image_by_permissions(
    maps: &[Mapping],
    idx: &[usize],
    name: &str,
    out: &mut [Option<Label>],
) {
    for &i in idx {
        let m = &maps[i];
        let (class, how) = if m.can('x') {
            (
                Class::Text,
                "executable mapping of a program file (not readable as ELF)",
            )
        } else if m.can('w') {
            (
                Class::Data,
                "writable mapping of a program file (not readable as ELF)",
            )
        } else {
            (
                Class::Rodata,
                "read-only mapping of a program file (not readable as ELF)",
            )
        };
        out[i] = Some(Label::new(class, name, how));
        let Some(next) = maps.get(i + 1) else {
            continue;
        };
        if m.can('w') && out[i + 1].is_none() && next.is_unnamed_anon() && next.start == m.end {
            out[i + 1] = Some(Label::new(
                Class::Bss,
                name,
                "anonymous, right after the writable mapping of a program file",
            ));
        }
    }
}

/// Labels an unnamed anonymous mapping that nothing else claimed;
/// `guard_below` tells whether a guard page lies right under it.
fn label_anon(m: &Mapping, guard_below: bool) -> Label {
    let rw = m.can('w');
    if rw && m.start.is_multiple_of(ARENA_SIZE) && m.size().is_multiple_of(ARENA_SIZE) {
        Label::new(
            Class::SpanallocArenaGuess,
            format!("{} x 64 MiB", m.size() / ARENA_SIZE),
            "unnamed, read-write, 64 MiB-aligned, a multiple of 64 MiB",
        )
    } else if rw && guard_below && m.size() <= MAX_SIGNAL_STACK {
        Label::new(
            Class::ThreadStack,
            "signal stack?",
            "small read-write memory right above a guard page (the alternate signal stack \
             Rust's runtime gives each thread)",
        )
    } else if rw && guard_below {
        Label::new(
            Class::ThreadStack,
            "thread stack?",
            "read-write memory right above a guard page (the pthread stack layout)",
        )
    } else if m.perms.starts_with("---") {
        Label::new(Class::Reserved, "", "inaccessible anonymous memory")
    } else {
        Label::new(Class::Anon, "", "anonymous memory")
    }
}

/// True if `below` looks like the guard page of a thread stack `m`: right
/// under it, anonymous, inaccessible, small, and not mapped with
/// `MAP_NORESERVE` (`nr` in `VmFlags`), which pthreads do not use but memory
/// allocators reserving address space do.
fn is_guard_below(below: &Mapping, m: &Mapping) -> bool {
    below.end == m.start
        && below.is_unnamed_anon()
        && below.perms.starts_with("---")
        && below.size() <= MAX_GUARD
        && !below.vm_flags.iter().any(|f| f == "nr")
}

/// Classes given by the kernel's name of a mapping.
fn kernel_named(m: &Mapping) -> Option<(Class, &'static str)> {
    let p = m.path.as_str();
    let c = match p {
        "[heap]" => (Class::Heap, "the brk heap, as the kernel names it"),
        "[stack]" => (
            Class::Stack,
            "the main thread's stack, as the kernel names it",
        ),
        "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]" => {
            (Class::Vdso, "the kernel's pages in every process")
        }
        "[anon:spanalloc]" => (
            Class::SpanallocArena,
            "named by spanalloc (PR_SET_VMA_ANON_NAME)",
        ),
        _ if p.starts_with("[stack:") => (
            Class::ThreadStack,
            "a thread's stack, as the kernel names it",
        ),
        _ if p.starts_with("[anon:") || p.starts_with("[anon_shmem:") => {
            (Class::Anon, "anonymous memory named by the program")
        }
        _ if p.starts_with('[') => (Class::Other, "named by the kernel"),
        _ => return None,
    };
    Some(c)
}

/// The last component of a path (the whole thing if it has none).
fn base_name(path: &str) -> String {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Places a file's `PT_LOAD` segments in memory, from the first of its
/// mappings whose file offset lies inside a segment: that mapping's address
/// minus the segment address its offset corresponds to is the load bias.
fn place(maps: &[Mapping], idx: &[usize], segs: &[LoadSegment]) -> Option<Vec<Placed>> {
    /// The largest page size: a segment's first mapping starts at most this
    /// far before the segment's file offset.
    const MAX_PAGE: u64 = 64 << 10;
    let bias = idx.iter().find_map(|&i| {
        let m = &maps[i];
        let s = segs.iter().find(|s| {
            m.offset < s.offset.saturating_add(s.filesz)
                && s.offset < m.offset.saturating_add(MAX_PAGE)
        })?;
        // File offset m.offset is at address m.start, and at s.vaddr + (m.offset -
        // s.offset) before relocation: the difference is the bias.
        m.start
            .checked_add(s.offset)?
            .checked_sub(s.vaddr.checked_add(m.offset)?)
    })?;
    Some(
        segs.iter()
            .map(|s| Placed {
                lo: bias + s.vaddr,
                hi: bias + s.vaddr + s.memsz,
                seg: *s,
            })
            .collect(),
    )
}

/// Classifies one mapping of a placed program image.
fn image_part(m: &Mapping, placed: &[Placed], name: &str) -> Label {
    let Some(pl) = placed.iter().find(|pl| m.start < pl.hi && pl.lo < m.end) else {
        return Label::new(
            Class::File,
            name,
            "part of a program file outside its PT_LOAD segments",
        );
    };
    let (class, how) = if pl.seg.exec() {
        (Class::Text, "inside an executable PT_LOAD segment")
    } else if !pl.seg.write() {
        (Class::Rodata, "inside a read-only PT_LOAD segment")
    } else if !m.can('w') {
        (
            Class::Data,
            "inside a writable PT_LOAD segment, made read-only after relocation (RELRO)",
        )
    } else {
        (Class::Data, "inside a writable PT_LOAD segment")
    };
    Label::new(class, name, how)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{parse_maps_line, Thread};

    fn process(lines: &str, threads: Vec<Thread>) -> Process {
        Process {
            pid: 1,
            mappings: lines.lines().map(|l| parse_maps_line(l).unwrap()).collect(),
            threads,
            ..Process::default()
        }
    }

    /// The mappings of `cat` on x86-64, with a thread, spanalloc arenas and
    /// an anonymous mapping added.
    const MAPS: &str = "\
5566e5486000-5566e5488000 r--p 00000000 fe:00 247030 /usr/bin/cat
5566e5488000-5566e548d000 r-xp 00002000 fe:00 247030 /usr/bin/cat
5566e548d000-5566e5490000 r--p 00007000 fe:00 247030 /usr/bin/cat
5566e5490000-5566e5491000 r--p 00009000 fe:00 247030 /usr/bin/cat
5566e5491000-5566e5492000 rw-p 0000a000 fe:00 247030 /usr/bin/cat
5566e5492000-5566e5493000 rw-p 00000000 00:00 0 
5566f6c0a000-5566f6c2b000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0008000000 rw-p 00000000 00:00 0 
7f0008000000-7f000c000000 rw-p 00000000 00:00 0                          [anon:spanalloc]
7f2952cf0000-7f2952d00000 ---p 00000000 00:00 0 
7f2952d00000-7f2953500000 rw-p 00000000 00:00 0 
7f2953500000-7f2953501000 ---p 00000000 00:00 0 
7f2953501000-7f2953601000 rw-p 00000000 00:00 0 
7f2953601000-7f2953602000 rw-p 00000000 00:00 0 
7fecdf307000-7fecdf329000 r--p 00000000 fe:00 316534                     /usr/lib/locale/C.utf8/LC_CTYPE
7fecdf579000-7fecdf57d000 r--p 00000000 00:00 0                          [vvar]
7fecdf57f000-7fecdf581000 r-xp 00000000 00:00 0                          [vdso]
7ffcc94f2000-7ffcc9513000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

    /// `cat`'s program headers (readelf -lW /usr/bin/cat).
    fn cat_segments(m: &Mapping) -> Option<Vec<LoadSegment>> {
        use object::elf::{PF_R, PF_W, PF_X};
        (m.path == "/usr/bin/cat").then(|| {
            vec![
                LoadSegment {
                    offset: 0,
                    vaddr: 0,
                    filesz: 0x1c10,
                    memsz: 0x1c10,
                    flags: PF_R,
                },
                LoadSegment {
                    offset: 0x2000,
                    vaddr: 0x2000,
                    filesz: 0x4da9,
                    memsz: 0x4da9,
                    flags: PF_R | PF_X,
                },
                LoadSegment {
                    offset: 0x7000,
                    vaddr: 0x7000,
                    filesz: 0x1f48,
                    memsz: 0x1f48,
                    flags: PF_R,
                },
                LoadSegment {
                    offset: 0x9c30,
                    vaddr: 0xac30,
                    filesz: 0x638,
                    memsz: 0x17d0,
                    flags: PF_R | PF_W,
                },
            ]
        })
    }

    fn classes(
        p: &Process,
        f: &dyn Fn(&Mapping) -> Option<Vec<LoadSegment>>,
    ) -> Vec<(Class, String)> {
        classify(p, f)
            .into_iter()
            .map(|r| (r.class, r.name))
            .collect()
    }

    #[test]
    fn classifies_a_whole_address_space() {
        let p = process(
            MAPS,
            vec![
                Thread {
                    tid: 7,
                    sp: Some(0x7f2953000000),
                },
                Thread {
                    tid: 1,
                    sp: Some(0x7ffcc9512000),
                },
            ],
        );
        let got = classes(&p, &cat_segments);
        let want: Vec<(Class, &str)> = vec![
            (Class::Rodata, "cat"),
            (Class::Text, "cat"),
            (Class::Rodata, "cat"),
            (Class::Data, "cat"), // RELRO
            (Class::Data, "cat"),
            (Class::Bss, "cat"),
            (Class::Heap, "[heap]"),
            (Class::SpanallocArenaGuess, "2 x 64 MiB"),
            (Class::SpanallocArena, "[anon:spanalloc]"),
            (Class::Guard, "guard"),
            (Class::ThreadStack, "tid 7"),
            (Class::Guard, "guard"),
            (Class::ThreadStack, "thread stack?"),
            (Class::Anon, ""),
            (Class::File, "LC_CTYPE"),
            (Class::Vdso, "[vvar]"),
            (Class::Vdso, "[vdso]"),
            (Class::Stack, "[stack] (tid 1)"),
            (Class::Vdso, "[vsyscall]"),
        ];
        let want: Vec<(Class, String)> =
            want.into_iter().map(|(c, n)| (c, n.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn falls_back_to_permissions_without_elf() {
        let p = process(MAPS, vec![]);
        let got = classes(&p, &|_| None);
        assert_eq!(got[0].0, Class::Rodata);
        assert_eq!(got[1].0, Class::Text);
        assert_eq!(got[3].0, Class::Rodata); // RELRO is not recognised without the headers
        assert_eq!(got[4].0, Class::Data);
        assert_eq!(got[5].0, Class::Bss);
        assert_eq!(got[10], (Class::ThreadStack, "thread stack?".to_string()));
        assert_eq!(got[14].0, Class::File);
    }

    #[test]
    fn an_allocator_s_reservation_is_no_guard_page() {
        let mut p = process(
            "7f0dd4eab000-7f0dd4eac000 ---p 00000000 00:00 0 \n7f0dd4eac000-7f0dd6eac000 rw-p 00000000 00:00 0 ",
            vec![],
        );
        assert_eq!(classes(&p, &|_| None)[1].0, Class::ThreadStack);
        p.mappings[0].vm_flags = vec!["mr".into(), "nr".into()];
        let got = classes(&p, &|_| None);
        assert_eq!(got[0].0, Class::Reserved);
        assert_eq!(got[1].0, Class::Anon);
    }

    #[test]
    fn totals_leave_out_vsyscall() {
        let p = process(MAPS, vec![]);
        let r = report(&p, classify(&p, &|_| None));
        let all: u64 = r.regions.iter().map(|r| r.size).sum();
        assert_eq!(r.totals.vsz, all - 4096);
        assert_eq!(
            r.summary.iter().map(|c| c.regions).sum::<usize>(),
            r.regions.len()
        );
    }
}
