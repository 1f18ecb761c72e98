//! Naming the frames of a heap profile, and trimming the allocator's own
//! frames off its stacks. See lib.rs for the overview; `pprof` writes what
//! this module finds.
//!
//! A return address becomes one or more frames (function, file, line): more
//! than one when calls were inlined at that address, innermost first, the
//! last being the function the code really belongs to. Names come from the
//! `backtrace` crate, which reads the DWARF or symbol tables of the
//! executable and of every shared library loaded when it first resolves an
//! address; for a library it does not know (one loaded later with
//! `dlopen`), `dladdr` gives the name of the exported symbol, if any.
//!
//! A captured stack starts inside the allocator (the C entry point, the Rust
//! glue, spanalloc itself). [`Symbolizer::trim`] finds where the program's
//! own frames begin; [`classify`] holds the rule on names.
//!
//! Everything here runs when a profile is written, never on the allocation
//! path, and allocates freely.

use std::collections::HashMap;
use std::ffi::{c_void, CStr};

/// One source-level frame at a code address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The function's name, demangled (without Rust's hash suffix); for a
    /// symbol that is not Rust's (C++), the same as `system_name`, which
    /// pprof then demangles itself.
    pub(crate) name: String,
    /// The name as the symbol table has it (mangled).
    pub(crate) system_name: String,
    /// The source file, or empty when unknown (no debug information).
    pub(crate) file: String,
    /// The line in `file`, or 0 when unknown.
    pub(crate) line: u32,
}

/// What is known about the code at one return address.
#[derive(Clone, Debug, Default)]
pub(crate) struct Resolved {
    /// Innermost (inlined) first; the last is the function that holds the
    /// code. Empty when nothing names the address.
    pub(crate) frames: Vec<Frame>,
    /// Whether the debug information or symbol table of the address's object
    /// named it (as opposed to `dladdr`'s exported-symbol guess, or nothing):
    /// a tool could not do better, so it need not try again.
    pub(crate) complete: bool,
    /// Whether the address lies in the shared library that holds the
    /// allocator (never true when the allocator is linked into the
    /// executable).
    pub(crate) in_allocator_object: bool,
}

/// An executable region of the process's address space, from
/// `/proc/self/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    /// First address.
    pub(crate) start: usize,
    /// One past the last address.
    pub(crate) end: usize,
    /// Offset in the file of the byte mapped at `start`.
    pub(crate) offset: u64,
    /// The file mapped (`[vdso]` and the like for the kernel's; empty for
    /// anonymous memory).
    pub(crate) path: String,
}

/// How a frame relates to the allocator, for trimming (see
/// [`Symbolizer::trim`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The allocator's: an entry point (malloc, operator new, the Rust
    /// allocation glue), spanalloc itself, or the unwinder that captured the
    /// stack.
    Allocator,
    /// The standard library's generic code (`core::`, `alloc::`, `std::`),
    /// which may sit between two allocator frames (a thread-local access in
    /// the middle of the allocator) or between the allocator and the
    /// program (`Vec`'s growth).
    Library,
    /// Anything else: the program.
    Program,
}

/// The names of the allocator's C and C++ entry points (exactly).
const ENTRY_POINTS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "__libc_malloc",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
    "__posix_memalign",
    // glibc's backtrace(), should a stack be captured with it.
    "backtrace",
];

/// Prefixes of the names of the allocator's frames.
const ALLOCATOR_PREFIXES: &[&str] = &[
    // The core crate and the C library's crate (whose library is also named
    // `spanalloc`, but in case it is not).
    "spanalloc::",
    "<spanalloc::",
    "spanalloc_c::",
    "<spanalloc_c::",
    // The Rust allocation glue: the shims the compiler generates for the
    // `#[global_allocator]`, the default one, and `alloc::alloc` up to
    // `Global`.
    "__rust_alloc",
    "__rust_realloc",
    "__rg_",
    "__rdl_",
    "alloc::alloc::",
    "<alloc::alloc::",
    // C++ operator new and new[] (mangled, as the symbol table has them, and
    // demangled, should a demangler have run).
    "_Znw",
    "_Zna",
    "operator new",
    // The unwinder.
    "backtrace::",
    "<backtrace::",
    "_Unwind_",
];

/// Prefixes of the standard library's generic code (see [`Kind::Library`]).
const LIBRARY_PREFIXES: &[&str] = &[
    "core::", "<core::", "alloc::", "<alloc::", "std::", "<std::",
];

/// Tells whether the frame named `name` (demangled) belongs to the
/// allocator, the standard library or the program.
pub(crate) fn classify(name: &str) -> Kind {
    // Since Rust 1.88 or so the allocation shims live in a `__rustc`
    // namespace (`__rustc::__rust_alloc`).
    let name = name.strip_prefix("__rustc::").unwrap_or(name);
    // spanalloc's own C calls (spanalloc_usable_size, ...), but not the
    // paths of other crates whose names start the same way.
    let own_c_call = name.starts_with("spanalloc_") && !name.contains("::");
    if own_c_call
        || ENTRY_POINTS.contains(&name)
        || ALLOCATOR_PREFIXES.iter().any(|p| name.starts_with(p))
    {
        Kind::Allocator
    } else if LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p)) {
        Kind::Library
    } else {
        Kind::Program
    }
}

/// Where the program's own frames start in a stack of `kinds` (one list of
/// frame kinds per address, innermost address and innermost frame first):
/// the index of the first address to keep, and how many of its (inlined)
/// frames to drop.
///
/// The rule: walk the frames from the innermost; stop at the first
/// [`Kind::Program`] frame; everything up to the last [`Kind::Allocator`]
/// frame before it goes. [`Kind::Library`] frames are crossed but kept when
/// no allocator frame follows them (so `Vec::push`'s growth stays in the
/// profile, under the program's frame that called it). An address without
/// frames (unresolved) counts as one program frame. When nothing would be
/// left the stack is kept whole: allocator frames say more than nothing.
pub(crate) fn trim_point(kinds: &[Vec<Kind>]) -> (usize, usize) {
    let mut cut = (0, 0);
    'walk: for (i, frames) in kinds.iter().enumerate() {
        if frames.is_empty() {
            break;
        }
        for (j, kind) in frames.iter().enumerate() {
            match kind {
                Kind::Allocator => {
                    cut = if j + 1 == frames.len() {
                        (i + 1, 0)
                    } else {
                        (i, j + 1)
                    }
                }
                Kind::Library => {}
                Kind::Program => break 'walk,
            }
        }
    }
    if cut.0 >= kinds.len() {
        (0, 0)
    } else {
        cut
    }
}

/// Parses the text of `/proc/self/maps` into its executable regions (those
/// with the `x` permission), in the file's (address) order. Lines it cannot
/// read are skipped.
pub(crate) fn parse_maps(text: &str) -> Vec<Region> {
    let mut regions = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode [path]; the path may hold spaces.
        let mut rest = line;
        let mut field = || {
            let trimmed = rest.trim_start();
            let end = trimmed.find(' ').unwrap_or(trimmed.len());
            let (field, after) = trimmed.split_at(end);
            rest = after;
            field
        };
        let (range, perms, offset, _dev, _inode) = (field(), field(), field(), field(), field());
        let path = rest.trim();
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        if perms.as_bytes().get(2) != Some(&b'x') || start >= end {
            continue;
        }
        regions.push(Region {
            start,
            end,
            offset,
            path: path.to_owned(),
        });
    }
    regions
}

/// Names the frames of return addresses, remembering each answer, and
/// trims stacks. Make one per profile written: dropping it releases the
/// debug information `backtrace` parsed on the way.
pub(crate) struct Symbolizer {
    /// Answers so far, by return address.
    cache: HashMap<usize, Resolved>,
    /// The process's executable regions: the main executable's first, then
    /// the others in address order.
    regions: Vec<Region>,
    /// `regions` indices sorted by start address, for lookups.
    by_address: Vec<usize>,
    /// The path of the shared library that holds the allocator, or `None`
    /// when the allocator is part of the executable (or the maps could not
    /// be read).
    allocator_object: Option<String>,
}

impl Symbolizer {
    /// A symbolizer for the process as it is mapped now.
    pub(crate) fn new() -> Self {
        let mut regions = std::fs::read_to_string("/proc/self/maps")
            .map(|text| parse_maps(&text))
            .unwrap_or_default();
        let exe = std::fs::read_link("/proc/self/exe")
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        // Any function of this crate tells which object holds the allocator.
        let own_address = Self::new as fn() -> Self as usize;
        let allocator_object = regions
            .iter()
            .find(|r| r.start <= own_address && own_address < r.end)
            .map(|r| r.path.clone())
            .filter(|path| !path.is_empty() && Some(path) != exe.as_ref());
        // pprof takes the first mapping for the main executable.
        regions.sort_by_key(|r| (Some(&r.path) != exe.as_ref(), r.start));
        let mut by_address: Vec<usize> = (0..regions.len()).collect();
        by_address.sort_by_key(|&i| regions[i].start);
        Symbolizer {
            cache: HashMap::new(),
            regions,
            by_address,
            allocator_object,
        }
    }

    /// A symbolizer that knows only `regions` (the main executable's first)
    /// and the answers given (addresses not among them are resolved for
    /// real), for tests of what uses it.
    #[cfg(test)]
    pub(crate) fn fake(regions: Vec<Region>, answers: Vec<(usize, Resolved)>) -> Self {
        let mut by_address: Vec<usize> = (0..regions.len()).collect();
        by_address.sort_by_key(|&i| regions[i].start);
        Symbolizer {
            cache: answers.into_iter().collect(),
            regions,
            by_address,
            allocator_object: None,
        }
    }

    /// The process's executable regions: the main executable's first, then
    /// the others in address order.
    pub(crate) fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The index in [`Self::regions`] of the region that holds `addr`.
    pub(crate) fn region_of(&self, addr: usize) -> Option<usize> {
        let after = self
            .by_address
            .partition_point(|&i| self.regions[i].start <= addr);
        let i = *self.by_address.get(after.checked_sub(1)?)?;
        (addr < self.regions[i].end).then_some(i)
    }

    /// What is known about the return address `addr`.
    pub(crate) fn resolve(&mut self, addr: usize) -> &Resolved {
        if !self.cache.contains_key(&addr) {
            let mut resolved = resolve_uncached(addr);
            resolved.in_allocator_object = match (&self.allocator_object, self.region_of(addr)) {
                (Some(object), Some(i)) => self.regions[i].path == *object,
                _ => false,
            };
            self.cache.insert(addr, resolved);
        }
        &self.cache[&addr]
    }

    /// Where the program's frames start in `stack` (return addresses,
    /// innermost first): the index of the first address to keep and how
    /// many of its inlined frames to drop. See [`trim_point`] for the rule;
    /// every frame at an address inside the allocator's shared library is
    /// the allocator's, whatever its name.
    pub(crate) fn trim(&mut self, stack: &[usize]) -> (usize, usize) {
        let kinds: Vec<Vec<Kind>> = stack
            .iter()
            .map(|&addr| {
                let resolved = self.resolve(addr);
                if resolved.in_allocator_object {
                    vec![Kind::Allocator; resolved.frames.len().max(1)]
                } else {
                    resolved.frames.iter().map(|f| classify(&f.name)).collect()
                }
            })
            .collect();
        trim_point(&kinds)
    }
}

impl Drop for Symbolizer {
    fn drop(&mut self) {
        // The parsed debug information can run to tens of megabytes; the
        // next profile parses it again.
        backtrace::clear_symbol_cache();
    }
}

/// Names the frames at the return address `addr`, without the cache.
fn resolve_uncached(addr: usize) -> Resolved {
    let mut frames = Vec::new();
    // `resolve` looks up `addr - 1` itself: a return address follows the
    // call, which may be the last instruction of its function or of an
    // inlined block.
    backtrace::resolve(addr as *mut c_void, |symbol| {
        let (name, system_name) = match symbol.name() {
            Some(name) => (
                format!("{name:#}"),
                String::from_utf8_lossy(name.as_bytes()).into_owned(),
            ),
            None => (String::new(), String::new()),
        };
        frames.push(Frame {
            name,
            system_name,
            file: symbol
                .filename()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            line: symbol.lineno().unwrap_or(0),
        });
    });
    let complete = frames.iter().any(|f| !f.name.is_empty());
    if !complete {
        frames.clear();
        if let Some(name) = exported_symbol(addr) {
            frames.push(name);
        }
    }
    // A frame with a file and line but no name (rare) is named after the
    // address, so that the line is not lost.
    for frame in &mut frames {
        if frame.name.is_empty() {
            frame.name = format!("{addr:#x}");
        }
    }
    Resolved {
        frames,
        complete,
        in_allocator_object: false,
    }
}

/// The exported symbol that holds the return address `addr`, by `dladdr`.
fn exported_symbol(addr: usize) -> Option<Frame> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let call_site = addr.checked_sub(1)?;
    // SAFETY: dladdr only compares the address with the loader's tables (it
    // never dereferences it) and writes `info`, which is valid for writes.
    let found = unsafe { libc::dladdr(call_site as *const c_void, &mut info) };
    if found == 0 || info.dli_sname.is_null() {
        return None;
    }
    // SAFETY: a non-null `dli_sname` points at a NUL-terminated name in the
    // dynamic string table of an object that is loaded, and so stays valid
    // while we copy it.
    let raw = unsafe { CStr::from_ptr(info.dli_sname) }.to_bytes();
    Some(Frame {
        name: format!("{:#}", backtrace::SymbolName::new(raw)),
        system_name: String::from_utf8_lossy(raw).into_owned(),
        file: String::new(),
        line: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn probe_function() -> usize {
        std::hint::black_box(7)
    }

    #[test]
    fn classify_allocator_names() {
        for name in [
            "spanalloc::global::alloc_slow",
            "<spanalloc::global::SpanAlloc as core::alloc::global::GlobalAlloc>::alloc",
            "spanalloc_c::malloc::malloc",
            "<spanalloc_c::X as core::ops::Drop>::drop",
            "spanalloc_usable_size",
            "__rust_alloc",
            "__rust_alloc_zeroed",
            "__rust_realloc",
            "__rustc::__rust_alloc",
            "__rustc::__rust_realloc",
            "__rg_alloc",
            "__rg_alloc_zeroed",
            "__rg_realloc",
            "__rdl_alloc",
            "alloc::alloc::alloc",
            "alloc::alloc::exchange_malloc",
            "alloc::alloc::Global::alloc_impl",
            "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
            "malloc",
            "calloc",
            "realloc",
            "reallocarray",
            "posix_memalign",
            "aligned_alloc",
            "memalign",
            "valloc",
            "pvalloc",
            "__libc_malloc",
            "_Znwm",
            "_Znam",
            "_ZnwmRKSt9nothrow_t",
            "_ZnwmSt11align_val_t",
            "_ZnamSt11align_val_tRKSt9nothrow_t",
            "operator new(unsigned long)",
            "backtrace::backtrace::trace",
            "_Unwind_Backtrace",
        ] {
            assert_eq!(classify(name), Kind::Allocator, "{name}");
        }
    }

    #[test]
    fn classify_other_names() {
        for name in [
            "alloc::raw_vec::finish_grow",
            "<alloc::vec::Vec<T,A> as core::clone::Clone>::clone",
            "core::ptr::drop_in_place<u8>",
            "std::thread::local::LocalKey<T>::with",
            "<std::io::stdio::Stdout as std::io::Write>::write",
        ] {
            assert_eq!(classify(name), Kind::Library, "{name}");
        }
        for name in [
            "main",
            "strdup",
            "my_crate::load",
            "mallocator",
            "malloc_helper",
            "reallocate_everything",
            "",
            "0x1234",
            "spanallocator::thing",
            "spanalloc_bench::workloads::run",
            "_ZN3foo3barEv",
            "__libc_start_main",
        ] {
            assert_eq!(classify(name), Kind::Program, "{name}");
        }
    }

    /// The kinds of a stack given by names, one `&[&str]` per address.
    fn kinds(stack: &[&[&str]]) -> Vec<Vec<Kind>> {
        stack
            .iter()
            .map(|frames| frames.iter().map(|n| classify(n)).collect())
            .collect()
    }

    #[test]
    fn trim_drops_leading_allocator_frames() {
        // A C program through libspanalloc.so.
        let stack = kinds(&[
            &["spanalloc::cache::MCache::refill"],
            &["spanalloc::raw::malloc", "malloc"],
            &["read_config"],
            &["main"],
        ]);
        assert_eq!(trim_point(&stack), (2, 0));
        // C++: operator new, then the program.
        let stack = kinds(&[&["spanalloc::raw::malloc"], &["_Znwm"], &["_ZN3app4loadEv"]]);
        assert_eq!(trim_point(&stack), (2, 0));
        // A Rust program: the glue goes, Vec's growth stays.
        let stack = kinds(&[
            &["<spanalloc::global::SpanAlloc as core::alloc::global::GlobalAlloc>::alloc"],
            &["__rustc::__rust_alloc"],
            &[
                "alloc::alloc::Global::alloc_impl",
                "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
                "alloc::raw_vec::finish_grow",
            ],
            &["alloc::raw_vec::RawVec<T,A>::grow_one"],
            &["app::build"],
        ]);
        assert_eq!(trim_point(&stack), (2, 2));
        // No allocator frame at all: nothing goes.
        let stack = kinds(&[&["core::ptr::write"], &["app::f"], &["main"]]);
        assert_eq!(trim_point(&stack), (0, 0));
    }

    #[test]
    fn trim_crosses_library_frames_inside_the_allocator() {
        // A thread-local access between two allocator frames goes too.
        let stack = kinds(&[
            &["spanalloc::cache::MCache::alloc"],
            &["std::thread::local::LocalKey<T>::try_with"],
            &["spanalloc::global::alloc", "__rust_alloc"],
            &["alloc::raw_vec::finish_grow"],
            &["app::f"],
        ]);
        assert_eq!(trim_point(&stack), (3, 0));
        // But not past the first program frame.
        let stack = kinds(&[
            &["malloc"],
            &["strdup"],
            &["spanalloc::dump::write"],
            &["main"],
        ]);
        assert_eq!(trim_point(&stack), (1, 0));
    }

    #[test]
    fn trim_edge_cases() {
        assert_eq!(trim_point(&[]), (0, 0));
        // Everything is the allocator's: keep it all.
        let stack = kinds(&[&["spanalloc::a"], &["malloc"]]);
        assert_eq!(trim_point(&stack), (0, 0));
        // An unresolved address stops the walk, and is kept.
        let stack = kinds(&[&["malloc"], &[], &["main"]]);
        assert_eq!(trim_point(&stack), (1, 0));
        let stack = kinds(&[&[], &["malloc"], &["main"]]);
        assert_eq!(trim_point(&stack), (0, 0));
        // An allocator frame inlined into the program's function: only the
        // inner frames of that address go.
        let stack = kinds(&[&["malloc"], &["spanalloc::raw::f", "app::g"], &["main"]]);
        assert_eq!(trim_point(&stack), (1, 1));
    }

    #[test]
    fn parse_maps_keeps_executable_regions() {
        let text = "\
55d0c8a00000-55d0c8a10000 r--p 00000000 08:01 1234   /usr/bin/my prog
55d0c8a10000-55d0c8a80000 r-xp 00010000 08:01 1234   /usr/bin/my prog
7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0
7f1e2d028000-7f1e2d1bd000 r-xp 00028000 08:01 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f1e2d400000-7f1e2d401000 r-xp 00000000 00:00 0
7ffd3b7f0000-7ffd3b7f2000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
garbage line
7f1e2d1bd000 r-xp 0 0 0 /nope
";
        let regions = parse_maps(text);
        let expect = [
            (0x55d0c8a10000, 0x55d0c8a80000, 0x10000, "/usr/bin/my prog"),
            (
                0x7f1e2d028000,
                0x7f1e2d1bd000,
                0x28000,
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ),
            (0x7f1e2d400000, 0x7f1e2d401000, 0, ""),
            (0x7ffd3b7f0000, 0x7ffd3b7f2000, 0, "[vdso]"),
            (0xffffffffff600000, 0xffffffffff601000, 0, "[vsyscall]"),
        ];
        assert_eq!(regions.len(), expect.len(), "{regions:?}");
        for (r, &(start, end, offset, path)) in regions.iter().zip(&expect) {
            assert_eq!(
                (r.start, r.end, r.offset, r.path.as_str()),
                (start, end, offset, path)
            );
        }
        assert!(parse_maps("").is_empty());
    }

    #[test]
    fn resolves_a_function_of_this_binary() {
        let mut symbolizer = Symbolizer::new();
        let addr = probe_function as fn() -> usize as usize;
        // As a return address just past the function's first byte.
        let resolved = symbolizer.resolve(addr + 1).clone();
        assert!(resolved.complete, "{resolved:?}");
        assert!(!resolved.in_allocator_object);
        let last = resolved.frames.last().expect("a frame");
        assert!(last.name.ends_with("tests::probe_function"), "{last:?}");
        assert!(!last.name.contains("::h"), "hash left in {last:?}");
        assert!(last.system_name.starts_with("_R") || last.system_name.starts_with("_ZN"));
        assert!(last.file.ends_with("symbolize.rs"), "{last:?}");
        assert!(last.line > 0);
        // The executable is the first region, and holds the address.
        assert_eq!(symbolizer.region_of(addr), Some(0));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(symbolizer.regions()[0].path, exe.to_string_lossy());
    }

    #[test]
    fn unresolvable_addresses_give_no_frames() {
        let mut symbolizer = Symbolizer::new();
        for addr in [0, 1, 0x1000, usize::MAX] {
            let resolved = symbolizer.resolve(addr).clone();
            assert!(resolved.frames.is_empty(), "{addr:#x}: {resolved:?}");
            assert!(!resolved.complete);
        }
        assert_eq!(symbolizer.region_of(0), None);
        assert_eq!(symbolizer.trim(&[]), (0, 0));
        assert_eq!(symbolizer.trim(&[0, 1]), (0, 0));
    }

    #[test]
    fn dladdr_names_exported_functions() {
        // libc's getpid, reached through the dynamic linker.
        let addr = libc::getpid as unsafe extern "C" fn() -> libc::pid_t as usize;
        let frame = exported_symbol(addr + 1).expect("getpid is exported");
        assert!(frame.name.contains("getpid"), "{frame:?}");
    }
}
