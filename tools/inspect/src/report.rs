//! Output: each subcommand's report as text for a person, or as JSON (the
//! same data, serialised as is) for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::elf::{ElfReport, Group};
use crate::heap::HeapReport;
use crate::maps::{MapsReport, Region};
use crate::profile::ProfileReport;

/// A byte count for people: `800 B`, `8.0 KiB`, `64.0 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A length of time in nanoseconds for people: `850 ns`, `12.5 µs`,
/// `3.25 ms`, `1.50 s`.
pub fn duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A profile value in its unit, for people: bytes as [`bytes`] does,
/// nanoseconds as [`duration`] does, counts as plain numbers, anything else
/// followed by its unit.
pub fn value(v: i64, unit: &str) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let n = v.unsigned_abs();
    match unit {
        "bytes" => format!("{sign}{}", bytes(n)),
        "nanoseconds" => format!("{sign}{}", duration(n)),
        "count" | "" => v.to_string(),
        unit => format!("{v} {unit}"),
    }
}

/// Pretty-printed JSON of any report, with a final newline.
pub fn json<T: Serialize>(report: &T) -> String {
    // Serialising plain structs of numbers and strings cannot fail.
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// `elf FILE` as text.
pub fn elf_text(r: &ElfReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} {}-endian {} {}, entry {:#x}, {} bytes",
        r.path, r.class, r.endian, r.machine, r.file_type, r.entry, r.file_size
    );
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }

    // Column widths that fit the longest name, address and type.
    let width = |f: &dyn Fn(&crate::elf::Section) -> usize, min: usize| {
        r.sections.iter().map(f).max().unwrap_or(0).max(min)
    };
    let name_w = width(&|s| s.name.len(), 4).min(40);
    let kind_w = width(&|s| s.kind.len(), 4);
    let addr_w = width(&|s| format!("{:#x}", s.addr).len(), 7);
    let off_w = width(&|s| format!("{:#x}", s.offset).len(), 6);
    let _ = writeln!(o, "\nSections:");
    let _ = writeln!(
        o,
        "  [Nr] {:name_w$} {:kind_w$} {:>addr_w$} {:>off_w$} {:>10} {:<5} group",
        "name", "type", "address", "offset", "size", "flags"
    );
    for s in &r.sections {
        let line = format!(
            "  [{:>2}] {:name_w$} {:kind_w$} {:>addr_w$} {:>off_w$} {:>10} {:<5} {}{}",
            s.index,
            s.name,
            s.kind,
            format!("{:#x}", s.addr),
            format!("{:#x}", s.offset),
            s.size,
            s.flags,
            s.group.name(),
            if s.in_size_sysv {
                ""
            } else {
                " (not in size -A)"
            }
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }

    let _ = writeln!(o, "\nProgram headers (the loader maps the LOAD segments):");
    let _ = writeln!(
        o,
        "  {:<13} {:>10} {:>18} {:>10} {:>10} {:<5} {:>8}  sections",
        "type", "offset", "vaddr", "filesz", "memsz", "flags", "align"
    );
    for s in &r.segments {
        let _ = writeln!(
            o,
            "  {:<13} {:#10x} {:#18x} {:#10x} {:#10x} {:<5} {:#8x}  {}",
            s.kind,
            s.offset,
            s.vaddr,
            s.filesz,
            s.memsz,
            s.flags,
            s.align,
            s.sections.join(" ")
        );
    }
    let _ = writeln!(
        o,
        "  LOAD segments map {} ({} bytes)",
        bytes(r.load_memsz),
        r.load_memsz
    );

    let _ = writeln!(o, "\nGroups (by what the sections hold at run time):");
    for g in Group::ALL {
        let t = r.groups.get(g);
        let _ = writeln!(
            o,
            "  {:<7} {:>12} bytes  {:>10}  in {} section{}",
            g.name(),
            t.bytes,
            bytes(t.bytes),
            t.sections,
            if t.sections == 1 { "" } else { "s" }
        );
    }

    let _ = writeln!(
        o,
        "\nAs size prints it (Berkeley format: text includes rodata):"
    );
    o.push_str(&r.size_lines());
    let _ = writeln!(o, "size -A total: {}", r.size_sysv_total);
    o
}

/// `maps` as text: every region, or with `summary` the totals per class.
pub fn maps_text(r: &MapsReport, summary: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "process {} ({}){}, threads: {}",
        r.pid,
        r.name,
        r.exe
            .as_deref()
            .map(|e| format!(", {e}"))
            .unwrap_or_default(),
        r.threads
    );
    if summary {
        let _ = writeln!(
            o,
            "\n{:<17} {:>7} {:>11} {:>11} {:>11}",
            "class", "regions", "size", "rss", "swap"
        );
        for c in &r.summary {
            let _ = writeln!(
                o,
                "{:<17} {:>7} {:>11} {:>11} {:>11}",
                c.class.label(),
                c.regions,
                bytes(c.size),
                bytes(c.rss),
                bytes(c.swap)
            );
        }
    } else {
        let _ = writeln!(
            o,
            "\n{:>12}-{:<12} {:<4} {:>10} {:>10} {:>9}  {:<16} name",
            "start", "end", "perm", "size", "rss", "swap", "class"
        );
        for g in &r.regions {
            o.push_str(&region_line(g));
        }
    }
    let t = &r.totals;
    let _ = writeln!(
        o,
        "\ntotal: VSZ {} (status VmSize {}), RSS {} (VmRSS {}), PSS {}, swap {} (VmSwap {})",
        bytes(t.vsz),
        bytes(t.status_vm_size),
        bytes(t.rss),
        bytes(t.status_vm_rss),
        bytes(t.pss),
        bytes(t.swap),
        bytes(t.status_vm_swap)
    );
    o
}

fn region_line(g: &Region) -> String {
    let name = match (&g.path, g.name.is_empty()) {
        (Some(p), _) if p.starts_with('/') => p.clone(),
        (_, false) => g.name.clone(),
        (Some(p), true) => p.clone(),
        (None, true) => String::new(),
    };
    let line = format!(
        "{:>12x}-{:<12x} {:<4} {:>10} {:>10} {:>9}  {:<16} {}",
        g.start,
        g.end,
        g.perms,
        bytes(g.size),
        bytes(g.rss),
        bytes(g.swap),
        g.class.label(),
        name
    );
    format!("{}\n", line.trim_end())
}

/// `heap FILE` as text.
pub fn heap_text(r: &HeapReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "spanalloc heap dump {}: {} B pages, {} arenas",
        r.path,
        r.page_size,
        bytes(r.arena_size)
    );
    let _ = writeln!(
        o,
        "\n{:>5} {:>6} {:>6} {:>7} {:>9} {:>9} {:>10} {:>10} {:>6} {:>9} {:>7}",
        "class",
        "size",
        "spans",
        "pages",
        "objects",
        "in use",
        "in-use B",
        "span B",
        "util",
        "live",
        "idle"
    );
    for c in &r.classes {
        let _ = writeln!(
            o,
            "{:>5} {:>6} {:>6} {:>7} {:>9} {:>9} {:>10} {:>10} {:>5.1}% {:>9} {:>7}",
            c.class,
            c.object_size,
            c.spans,
            c.pages,
            c.objects,
            c.allocated,
            bytes(c.inuse_bytes),
            bytes(c.span_bytes),
            c.utilisation * 100.0,
            c.live,
            c.idle
        );
    }
    let t = &r.totals;
    let s = &r.stats;
    let _ = writeln!(
        o,
        "\nlarge objects: {} spans, {} pages, {} ({} allocated, {} freed since start)",
        t.large.spans,
        t.large.pages,
        bytes(t.large.bytes),
        s.large_allocs,
        s.large_frees
    );
    let _ = writeln!(
        o,
        "\n{:<10} {:>12} {:>12}   (from the spans / from the counters)",
        "heap", "spans", "counters"
    );
    let row = |o: &mut String, name: &str, a: u64, b: Option<u64>| {
        let line = format!(
            "{:<10} {:>12} {:>12}",
            name,
            bytes(a),
            b.map(bytes).unwrap_or_default()
        );
        o.push_str(line.trim_end());
        o.push('\n');
    };
    row(&mut o, "mapped", t.mapped_bytes, Some(s.mapped_bytes));
    row(&mut o, "in use", t.inuse_bytes, Some(s.span_bytes_in_use));
    row(&mut o, "  small", t.small.bytes, None);
    row(&mut o, "  large", t.large.bytes, Some(s.large_bytes));
    row(
        &mut o,
        "free",
        t.free.bytes + t.released.bytes,
        s.free_bytes,
    );
    row(
        &mut o,
        "  released",
        t.released.bytes,
        Some(s.released_bytes),
    );
    let _ = writeln!(
        o,
        "\nobjects handed out: {}, of which {} idle in thread caches or transfer slots; \
         the counters say: {} live, {} in thread caches; metadata {}",
        bytes(t.allocated_bytes),
        bytes(t.idle_bytes),
        bytes(s.live_bytes),
        bytes(s.thread_cache_bytes),
        bytes(s.metadata_bytes)
    );
    let _ = writeln!(
        o,
        "(in use: objects handed out by their spans; live: held by the program, by the counters; \
         idle: the rest, free in thread caches or transfer slots)"
    );
    if t.released.bytes < s.released_bytes {
        let _ = writeln!(
            o,
            "(free spans count as released only when all their pages are: {} of the free bytes are partly released)",
            bytes((s.released_bytes - t.released.bytes).min(t.free.bytes))
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}

/// `profile FILE` as text: the header, then the top functions as `go tool
/// pprof -top` shows them.
pub fn profile_text(r: &ProfileReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "pprof profile {}: {} samples, {} locations",
        r.path, r.samples, r.locations
    );
    for c in &r.comments {
        let _ = writeln!(o, "comment: {c}");
    }
    let kind_w = r
        .sample_types
        .iter()
        .map(|t| t.value_type.kind.len())
        .max()
        .unwrap_or(0)
        .max("sample type".len());
    let unit_w = r
        .sample_types
        .iter()
        .map(|t| t.value_type.unit.len())
        .max()
        .unwrap_or(0)
        .max("unit".len());
    let _ = writeln!(
        o,
        "\n{:kind_w$}  {:unit_w$}  {:>12}",
        "sample type", "unit", "total"
    );
    for t in &r.sample_types {
        let vt = &t.value_type;
        let mut notes = Vec::new();
        if r.default_sample_type.as_deref() == Some(vt.kind.as_str()) {
            notes.push("default");
        }
        if vt.kind == r.sample_type {
            notes.push("shown");
        }
        let line = format!(
            "{:kind_w$}  {:unit_w$}  {:>12}  {}",
            vt.kind,
            vt.unit,
            value(t.total, &vt.unit),
            notes.join(", ")
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    let mut facts = Vec::new();
    if let Some(pt) = &r.period_type {
        facts.push(format!(
            "period {} ({}/{})",
            value(r.period, &pt.unit),
            pt.kind,
            pt.unit
        ));
    } else if r.period != 0 {
        facts.push(format!("period {}", r.period));
    }
    if let Some(t) = &r.time {
        facts.push(format!("time {t}"));
    }
    if r.duration_nanos > 0 {
        facts.push(format!(
            "duration {}",
            duration(r.duration_nanos.unsigned_abs())
        ));
    }
    if !facts.is_empty() {
        let _ = writeln!(o, "\n{}", facts.join(", "));
    }
    let _ = writeln!(o, "\ntotal {}: {}", r.sample_type, value(r.total, &r.unit));
    if r.functions.len() < r.functions_with_values {
        let _ = writeln!(
            o,
            "showing the top {} of {} functions (--top N; 0 for all)",
            r.functions.len(),
            r.functions_with_values
        );
    }
    if r.functions.is_empty() {
        let _ = writeln!(o, "\nno function has a non-zero {}", r.sample_type);
        return o;
    }
    let cells: Vec<(String, String)> = r
        .functions
        .iter()
        .map(|f| (value(f.flat, &r.unit), value(f.cum, &r.unit)))
        .collect();
    let w = cells
        .iter()
        .map(|(a, b)| a.chars().count().max(b.chars().count()))
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        o,
        "\n{:>w$} {:>7} {:>7} {:>w$} {:>7}  name",
        "flat", "flat%", "sum%", "cum", "cum%"
    );
    for (f, (flat, cum)) in r.functions.iter().zip(&cells) {
        let _ = writeln!(
            o,
            "{:>w$} {:>6.2}% {:>6.2}% {:>w$} {:>6.2}%  {}{}",
            flat,
            f.flat_percent,
            f.sum_percent,
            cum,
            f.cum_percent,
            f.name,
            if f.inline { " (inline)" } else { "" }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(8192), "8.0 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn profile_values_read_well() {
        assert_eq!(value(2048, "bytes"), "2.0 KiB");
        assert_eq!(value(-2048, "bytes"), "-2.0 KiB");
        assert_eq!(value(123_456, "count"), "123456");
        assert_eq!(value(10_000_000, "nanoseconds"), "10.00 ms");
        assert_eq!(value(7, "requests"), "7 requests");
        assert_eq!(duration(999), "999 ns");
        assert_eq!(duration(1_500), "1.5 µs");
        assert_eq!(duration(2_500_000_000), "2.50 s");
    }
}
