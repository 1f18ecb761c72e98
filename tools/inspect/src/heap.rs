//! `heap FILE`: reads a spanalloc heap dump and sums it up per size class.
//!
//! The dump is one JSON object, written by a program using spanalloc when
//! `SPANALLOC_DUMP=PATH` is set (at exit) or by `spanalloc::dump_heap(path)`:
//!
//! ```json
//! {"version":1,"page_size":8192,"arena_size":67108864,
//!  "stats":{"live_bytes":N,"thread_cache_bytes":N,"span_bytes_in_use":N,
//!           "mapped_bytes":N,"released_bytes":N,"metadata_bytes":N,
//!           "large_bytes":N,"large_allocs":N,"large_frees":N,
//!           "classes":[{"class":C,"size":S,"allocs":N,"frees":N,"live":N,
//!                       "cached":N,"spans":N}, ...]},
//!  "regions":[{"base":ADDR,"bytes":N}, ...],
//!  "spans":[{"start":ADDR,"pages":N,"state":"small"|"large"|"free",
//!            "class":C,"object_size":S,"objects":N,"allocated":N,
//!            "released":BOOL}, ...]}
//! ```
//!
//! Spans are sorted by address and tile every region. A small span's
//! `allocated` counts the objects it has handed out, to the program or to a
//! thread cache. Fields this version does not know are ignored, so the
//! writer can add some; a missing field or another `version` is an error.
//!
//! From the spans we compute, per size class, the spans, pages, objects
//! handed out and the utilisation (bytes handed out / bytes of the spans),
//! and for the heap the bytes mapped, in use (small and large spans), free
//! and released. Objects handed out that the program does not hold (by the
//! counters' `live`) are "idle": free, in thread caches or parked in the
//! transfer slots. (The counters' own `cached` figure is shown in the JSON
//! but not used: it counts objects when batches move, not as the program
//! takes them from a cache.) A free span counts as released only if all its pages are (the dump has one
//! flag per span), so the released bytes from the spans can be below the
//! counter's. The writer's own counters (`stats`) are shown beside them;
//! where the two disagree beyond what a running program explains, or the
//! spans do not tile the regions, a warning says so.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{read_file, Error, Result};

/// The dump format version this tool reads.
pub const VERSION: u64 = 1;

/// A heap dump, as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Dump {
    /// Format version ([`VERSION`]).
    pub version: u64,
    /// Bytes per page.
    pub page_size: u64,
    /// Bytes per arena.
    pub arena_size: u64,
    /// The allocator's counters.
    pub stats: DumpStats,
    /// The address ranges the heap has mapped.
    pub regions: Vec<DumpRegion>,
    /// Every span, in address order.
    pub spans: Vec<DumpSpan>,
}

/// The allocator's counters (`spanalloc::stats()`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DumpStats {
    /// Bytes in objects the program holds.
    pub live_bytes: u64,
    /// Bytes in objects sitting in thread caches.
    pub thread_cache_bytes: u64,
    /// Bytes in spans in use (small or large).
    pub span_bytes_in_use: u64,
    /// Bytes mapped from the OS.
    pub mapped_bytes: u64,
    /// Bytes of free pages returned to the OS.
    pub released_bytes: u64,
    /// Bytes of free pages, released or not (newer writers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
    /// Bytes of the allocator's own records.
    pub metadata_bytes: u64,
    /// Bytes in large objects.
    pub large_bytes: u64,
    /// Large objects allocated since start.
    pub large_allocs: u64,
    /// Large objects freed since start.
    pub large_frees: u64,
    /// Per size class.
    pub classes: Vec<DumpClass>,
}

/// The counters of one size class.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DumpClass {
    /// Class number.
    pub class: u32,
    /// Bytes per object.
    pub size: u64,
    /// Allocations since start.
    pub allocs: u64,
    /// Frees since start.
    pub frees: u64,
    /// Objects the program holds.
    pub live: u64,
    /// Objects in thread caches.
    pub cached: u64,
    /// Spans in use.
    pub spans: u64,
}

/// An address range the heap has mapped.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct DumpRegion {
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub bytes: u64,
}

/// What a span holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanState {
    /// Objects of one size class.
    Small,
    /// One large object.
    Large,
    /// Free pages.
    Free,
}

/// One span.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct DumpSpan {
    /// First address.
    pub start: u64,
    /// Length in pages.
    pub pages: u64,
    /// What it holds.
    pub state: SpanState,
    /// Size class (0 unless small).
    pub class: u32,
    /// Bytes per object (0 if free).
    pub object_size: u64,
    /// Objects it can hold (0 if free).
    pub objects: u64,
    /// Objects handed out (0 if free).
    pub allocated: u64,
    /// Free pages returned to the OS.
    pub released: bool,
}

/// The summary of one size class.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassSummary {
    /// Class number.
    pub class: u32,
    /// Bytes per object.
    pub object_size: u64,
    /// Spans of this class.
    pub spans: u64,
    /// Pages in them.
    pub pages: u64,
    /// Objects they can hold.
    pub objects: u64,
    /// Objects handed out (to the program or to thread caches).
    pub allocated: u64,
    /// `allocated * object_size`.
    pub inuse_bytes: u64,
    /// `pages * page_size`.
    pub span_bytes: u64,
    /// `inuse_bytes / span_bytes`.
    pub utilisation: f64,
    /// From the counters: objects the program holds.
    pub live: u64,
    /// From the counters: objects in thread caches.
    pub cached: u64,
    /// From the counters: allocations since start.
    pub allocs: u64,
    /// From the counters: frees since start.
    pub frees: u64,
    /// Objects handed out by their spans that the program does not hold:
    /// `allocated - live` (0 if negative). Free objects in thread caches or
    /// parked in the class's transfer slots.
    pub idle: u64,
}

/// Bytes and spans of one kind.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Amount {
    /// Number of spans.
    pub spans: u64,
    /// Pages in them.
    pub pages: u64,
    /// Bytes in them.
    pub bytes: u64,
}

/// The heap as a whole, computed from the spans.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeapTotals {
    /// Regions mapped.
    pub regions: u64,
    /// Bytes of the regions.
    pub mapped_bytes: u64,
    /// Small-object spans.
    pub small: Amount,
    /// Large-object spans.
    pub large: Amount,
    /// Free spans still backed by memory.
    pub free: Amount,
    /// Free spans returned to the OS.
    pub released: Amount,
    /// Small and large spans' bytes.
    pub inuse_bytes: u64,
    /// Bytes handed out in small spans plus large objects' bytes.
    pub allocated_bytes: u64,
    /// Bytes of idle small objects (see [`ClassSummary::idle`]).
    pub idle_bytes: u64,
}

/// Everything `heap FILE` reports.
#[derive(Clone, Debug, Serialize)]
pub struct HeapReport {
    /// The dump file, as given.
    pub path: String,
    /// Bytes per page.
    pub page_size: u64,
    /// Bytes per arena.
    pub arena_size: u64,
    /// Per size class that has spans or counts, in class order.
    pub classes: Vec<ClassSummary>,
    /// The heap as a whole, from the spans.
    pub totals: HeapTotals,
    /// The writer's counters, as written.
    pub stats: DumpStats,
    /// Inconsistencies found in the dump.
    pub warnings: Vec<String>,
}

/// Reads a heap dump file.
pub fn read_dump(path: &Path) -> Result<Dump> {
    let bytes = read_file(path)?;
    parse_dump(&path.display().to_string(), &bytes)
}

/// Parses a heap dump; `path` is only used in messages.
pub fn parse_dump(path: &str, bytes: &[u8]) -> Result<Dump> {
    // Check the version first, so a future format gets a message about the
    // version rather than about whichever field changed.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_input(format!("{path}: not a heap dump: invalid JSON: {e}")))?;
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(VERSION) => {}
        Some(v) => {
            return Err(Error::bad_input(format!(
                "{path}: heap dump version {v}; this tool reads version {VERSION}"
            )))
        }
        None => {
            return Err(Error::bad_input(format!(
                "{path}: not a heap dump: no \"version\" field"
            )))
        }
    }
    let dump: Dump = serde_json::from_value(value)
        .map_err(|e| Error::bad_input(format!("{path}: not a valid heap dump: {e}")))?;
    if dump.page_size == 0 || !dump.page_size.is_power_of_two() {
        return Err(Error::bad_input(format!(
            "{path}: page_size {} is not a power of two",
            dump.page_size
        )));
    }
    Ok(dump)
}

/// Reads and sums up a heap dump.
pub fn inspect(path: &Path) -> Result<(Dump, HeapReport)> {
    let dump = read_dump(path)?;
    let report = analyse(&path.display().to_string(), &dump);
    Ok((dump, report))
}

/// Sums up a dump per class and as a whole, and checks it.
pub fn analyse(path: &str, d: &Dump) -> HeapReport {
    let ps = d.page_size;
    let mut warnings = Vec::new();
    let mut classes: BTreeMap<u32, ClassSummary> = BTreeMap::new();
    let mut t = HeapTotals {
        regions: d.regions.len() as u64,
        mapped_bytes: d.regions.iter().map(|r| r.bytes).sum(),
        ..HeapTotals::default()
    };
    for s in &d.spans {
        let bytes = s.pages.saturating_mul(ps);
        let add = |a: &mut Amount| {
            a.spans += 1;
            a.pages += s.pages;
            a.bytes += bytes;
        };
        match s.state {
            SpanState::Small => {
                add(&mut t.small);
                t.allocated_bytes += s.allocated * s.object_size;
                let c = classes.entry(s.class).or_default();
                c.class = s.class;
                c.object_size = s.object_size;
                c.spans += 1;
                c.pages += s.pages;
                c.objects += s.objects;
                c.allocated += s.allocated;
                if s.allocated > s.objects || s.objects * s.object_size > bytes {
                    warnings.push(format!(
                        "span at {:#x}: {} of {} objects of {} B do not fit {} pages",
                        s.start, s.allocated, s.objects, s.object_size, s.pages
                    ));
                }
            }
            SpanState::Large => {
                add(&mut t.large);
                t.allocated_bytes += bytes;
            }
            SpanState::Free if s.released => add(&mut t.released),
            SpanState::Free => add(&mut t.free),
        }
    }
    t.inuse_bytes = t.small.bytes + t.large.bytes;
    for c in &d.stats.classes {
        let e = classes.entry(c.class).or_default();
        e.class = c.class;
        if e.object_size == 0 {
            e.object_size = c.size;
        } else if e.object_size != c.size {
            warnings.push(format!(
                "class {}: spans hold {} B objects but the counters say {} B",
                c.class, e.object_size, c.size
            ));
        }
        e.live = c.live;
        e.cached = c.cached;
        e.allocs = c.allocs;
        e.frees = c.frees;
    }
    let classes: Vec<ClassSummary> = classes
        .into_values()
        .filter(|c| c.spans > 0 || c.allocs > 0 || c.live > 0)
        .map(|mut c| {
            c.inuse_bytes = c.allocated * c.object_size;
            c.span_bytes = c.pages * ps;
            c.idle = c.allocated.saturating_sub(c.live);
            c.utilisation = if c.span_bytes == 0 {
                0.0
            } else {
                c.inuse_bytes as f64 / c.span_bytes as f64
            };
            c
        })
        .collect();
    t.idle_bytes = classes.iter().map(|c| c.idle * c.object_size).sum();
    check_tiling(d, &mut warnings);
    if t.mapped_bytes != d.stats.mapped_bytes {
        warnings.push(format!(
            "regions add up to {} bytes but the counters say {} mapped",
            t.mapped_bytes, d.stats.mapped_bytes
        ));
    }
    HeapReport {
        path: path.to_string(),
        page_size: ps,
        arena_size: d.arena_size,
        classes,
        totals: t,
        stats: d.stats.clone(),
        warnings,
    }
}

/// Checks that the spans are in address order and tile the regions exactly.
fn check_tiling(d: &Dump, warnings: &mut Vec<String>) {
    const MAX_WARNINGS: usize = 10;
    let before = warnings.len();
    let mut regions: Vec<DumpRegion> = d.regions.clone();
    regions.sort_by_key(|r| r.base);
    let mut spans = d.spans.iter().peekable();
    for r in &regions {
        let end = r.base.saturating_add(r.bytes);
        let mut at = r.base;
        while let Some(s) = spans.next_if(|s| s.start < end) {
            if s.start != at {
                warnings.push(format!(
                    "span at {:#x} does not start where the previous one ends ({at:#x})",
                    s.start
                ));
            }
            at = s.start.saturating_add(s.pages.saturating_mul(d.page_size));
        }
        if at != end {
            warnings.push(format!(
                "the spans of region {:#x} end at {at:#x}, not at its end {end:#x}",
                r.base
            ));
        }
    }
    if let Some(s) = spans.next() {
        warnings.push(format!(
            "span at {:#x} lies outside every region (or out of order)",
            s.start
        ));
    }
    if warnings.len() - before > MAX_WARNINGS {
        let n = warnings.len() - before - MAX_WARNINGS;
        warnings.truncate(before + MAX_WARNINGS);
        warnings.push(format!("... and {n} more tiling problems"));
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A small dump: one 64 KiB region with a class-1 span (8 B objects),
    /// a large span, a free span and a released one.
    pub const DUMP: &str = r#"{"version":1,"page_size":8192,"arena_size":67108864,
 "stats":{"live_bytes":800,"thread_cache_bytes":0,"span_bytes_in_use":40960,"mapped_bytes":65536,
          "released_bytes":8192,"metadata_bytes":4096,"large_bytes":32768,"large_allocs":1,"large_frees":0,
          "classes":[{"class":1,"size":8,"allocs":120,"frees":20,"live":100,"cached":0,"spans":1}]},
 "regions":[{"base":1048576,"bytes":65536}],
 "spans":[{"start":1048576,"pages":1,"state":"small","class":1,"object_size":8,"objects":1024,"allocated":100,"released":false},
          {"start":1056768,"pages":4,"state":"large","class":0,"object_size":32768,"objects":1,"allocated":1,"released":false},
          {"start":1089536,"pages":2,"state":"free","class":0,"object_size":0,"objects":0,"allocated":0,"released":false},
          {"start":1105920,"pages":1,"state":"free","class":0,"object_size":0,"objects":0,"allocated":0,"released":true,"future":"ignored"}]}"#;

    #[test]
    fn sums_up_a_dump() {
        let d = parse_dump("t", DUMP.as_bytes()).unwrap();
        let r = analyse("t", &d);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.classes.len(), 1);
        let c = &r.classes[0];
        assert_eq!(
            (c.class, c.object_size, c.spans, c.allocated, c.live),
            (1, 8, 1, 100, 100)
        );
        assert!((c.utilisation - 800.0 / 8192.0).abs() < 1e-12);
        let t = &r.totals;
        assert_eq!(t.mapped_bytes, 65536);
        assert_eq!(t.inuse_bytes, 5 * 8192);
        assert_eq!(t.free.bytes, 2 * 8192);
        assert_eq!(t.released.bytes, 8192);
        assert_eq!(t.allocated_bytes, 800 + 32768);
    }

    #[test]
    fn finds_gaps_and_overlaps() {
        let mut d = parse_dump("t", DUMP.as_bytes()).unwrap();
        d.spans.remove(2);
        let r = analyse("t", &d);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("does not start"));
        d.spans[0].allocated = 2000;
        assert_eq!(analyse("t", &d).warnings.len(), 2);
    }

    #[test]
    fn rejects_what_is_not_a_dump() {
        for (text, want) in [
            ("{", "invalid JSON"),
            ("[1,2]", "no \"version\""),
            (r#"{"version":2}"#, "version 2"),
            (r#"{"version":1,"page_size":8192}"#, "missing field"),
        ] {
            let e = parse_dump("f.json", text.as_bytes()).unwrap_err();
            assert!(e.message.contains(want), "{text}: {e}");
            assert!(e.message.starts_with("f.json: "), "{e}");
        }
    }
}
