//! Generator for spanalloc's size-class table.
//!
//! [`generate`] returns the complete text of `crates/spanalloc/src/sizeclasses.rs`; the
//! `mksizeclasses` binary writes it to disk. A unit test in `sizeclass.rs` regenerates the
//! text and compares it with the checked-in file byte for byte, so the two cannot drift.
//!
//! # How the classes are chosen
//!
//! Candidate object sizes are walked upward from 8 bytes. The distance to the next candidate
//! (the step) grows with the size, so that rounding a request up to the next candidate never
//! costs much more than an eighth of it:
//!
//! | candidate sizes | step                                                        |
//! |-----------------|-------------------------------------------------------------|
//! | 8 to 32         | 8                                                           |
//! | 32 to 128       | 16                                                          |
//! | 128 to 2048     | an eighth of the last power of two passed (16, 32, 64, 128) |
//! | 2048 to 32768   | 256                                                         |
//!
//! Every class is therefore a multiple of 8, every class from 32 up a multiple of 16, and
//! every class above 1024 a multiple of 128 (which the two lookup tables rely on).
//!
//! Each candidate gets the fewest whole 8 KiB pages whose leftover bytes at the end of the
//! span (the tail waste) are at most an eighth of the span. When a candidate needs as many
//! pages and holds as many objects as the class before it, it takes that class's place:
//! the bigger objects cost nothing, and the requests in between need no class of their own.
//!
//! Before producing any text the generator checks every property the allocator relies on
//! (see `check`) and panics if one fails, so a change of parameters cannot silently yield a
//! table the lookups would get wrong.

use std::fmt::Write as _;

/// Base-2 logarithm of the page size: pages are 8 KiB.
pub const PAGE_SHIFT: usize = 13;
/// Bytes per page.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// Largest request served from a size class; anything bigger is a large object.
pub const MAX_SMALL_SIZE: usize = 32768;

/// Granularity of the first lookup table, which covers requests up to `SMALL_SIZE_MAX`.
const SMALL_SIZE_DIV: usize = 8;
/// Largest request resolved through the fine-grained lookup table.
const SMALL_SIZE_MAX: usize = 1024;
/// Granularity of the second lookup table, for `SMALL_SIZE_MAX < size <= MAX_SMALL_SIZE`.
const LARGE_SIZE_DIV: usize = 128;

/// A thread cache moves about this many bytes' worth of objects at once...
const BATCH_BYTES: usize = 65536;
/// ...but never fewer objects than this...
const MIN_BATCH: usize = 2;
/// ...nor more than this.
const MAX_BATCH: usize = 32;

/// The command, run from the workspace root, that rewrites the checked-in table.
pub const REGENERATE: &str =
    "cargo run -p spanalloc-mksizeclasses -- crates/spanalloc/src/sizeclasses.rs";

/// The longest line rustfmt allows (its default `max_width`).
const MAX_WIDTH: usize = 100;

/// One size class. Class 0 (size 0, no pages) stands for "large object".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Class {
    /// Bytes per object.
    size: usize,
    /// Pages per span.
    npages: usize,
}

impl Class {
    fn span_bytes(self) -> usize {
        self.npages * PAGE_SIZE
    }

    fn objects(self) -> usize {
        self.span_bytes().checked_div(self.size).unwrap_or(0)
    }

    /// Bytes at the end of a span that no object can use.
    fn tail_waste(self) -> usize {
        self.span_bytes() - self.objects() * self.size
    }

    fn batch(self) -> usize {
        BATCH_BYTES
            .checked_div(self.size)
            .map_or(0, |n| n.clamp(MIN_BATCH, MAX_BATCH))
    }

    /// `ceil(2^32 / size)`, so that `(offset * magic) >> 32 == offset / size` for the
    /// offsets inside a span (verified by `check_division`).
    fn div_magic(self) -> u64 {
        if self.size == 0 {
            0
        } else {
            (1u64 << 32).div_ceil(self.size as u64)
        }
    }
}

/// The fewest whole pages whose span holds at least one `size`-byte object and loses at
/// most an eighth of itself to tail waste.
fn pages_for(size: usize) -> usize {
    let mut npages = 1;
    loop {
        let span = npages * PAGE_SIZE;
        if span >= size && span % size <= span / 8 {
            return npages;
        }
        npages += 1;
    }
}

/// Chooses the classes (see the crate documentation). Index 0 is the large-object class.
fn make_classes() -> Vec<Class> {
    let mut classes = vec![Class { size: 0, npages: 0 }];
    let mut step = 8;
    let mut size = 8;
    while size <= MAX_SMALL_SIZE {
        if size.is_power_of_two() {
            step = if size >= 2048 {
                256
            } else if size >= 128 {
                size / 8
            } else if size >= 32 {
                16
            } else {
                step
            };
        }
        let candidate = Class {
            size,
            npages: pages_for(size),
        };
        let last = classes.last_mut().expect("class 0 is always present");
        if last.size != 0
            && last.npages == candidate.npages
            && last.objects() == candidate.objects()
        {
            last.size = size;
        } else {
            classes.push(candidate);
        }
        size += step;
    }
    classes
}

/// The smallest real class whose objects hold `size` bytes, by linear scan.
fn smallest_fitting(classes: &[Class], size: usize) -> usize {
    (1..classes.len())
        .find(|&c| classes[c].size >= size)
        .unwrap_or_else(|| panic!("no class holds {size} bytes"))
}

/// The classes together with the two request-size lookup tables.
struct Tables {
    classes: Vec<Class>,
    /// Entry `i` is the class for requests of `i * SMALL_SIZE_DIV` bytes (entry 0: class 1).
    size_to_class8: Vec<usize>,
    /// Entry `i` is the class for requests of `SMALL_SIZE_MAX + i * LARGE_SIZE_DIV` bytes.
    size_to_class128: Vec<usize>,
}

impl Tables {
    fn new() -> Tables {
        let classes = make_classes();
        let size_to_class8 = (0..=SMALL_SIZE_MAX / SMALL_SIZE_DIV)
            .map(|i| smallest_fitting(&classes, i * SMALL_SIZE_DIV))
            .collect();
        let size_to_class128 = (0..=(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV)
            .map(|i| smallest_fitting(&classes, SMALL_SIZE_MAX + i * LARGE_SIZE_DIV))
            .collect();
        Tables {
            classes,
            size_to_class8,
            size_to_class128,
        }
    }

    /// The class the allocator's lookup will pick for `size`, computed exactly as it will be.
    fn lookup(&self, size: usize) -> usize {
        if size <= SMALL_SIZE_MAX {
            self.size_to_class8[size.div_ceil(SMALL_SIZE_DIV)]
        } else {
            self.size_to_class128[(size - SMALL_SIZE_MAX).div_ceil(LARGE_SIZE_DIV)]
        }
    }
}

/// Panics unless the tables have every property the allocator relies on.
fn check(t: &Tables) {
    let classes = &t.classes;
    assert_eq!(
        classes[0],
        Class { size: 0, npages: 0 },
        "class 0 must be the large class"
    );
    assert!(
        classes.len() <= usize::from(u8::MAX) + 1,
        "class numbers must fit in u8"
    );
    assert_eq!(
        classes.last().map(|c| c.size),
        Some(MAX_SMALL_SIZE),
        "the largest class must be MAX_SMALL_SIZE"
    );
    for (i, &c) in classes.iter().enumerate().skip(1) {
        let prev = classes[i - 1].size;
        assert!(c.size > prev, "class {i}: sizes must strictly increase");
        assert_eq!(c.size % 8, 0, "class {i}: size must be a multiple of 8");
        if c.size >= 32 {
            assert_eq!(
                c.size % 16,
                0,
                "class {i}: size >= 32 must be a multiple of 16"
            );
        }
        if c.size > SMALL_SIZE_MAX {
            // Requests above SMALL_SIZE_MAX are looked up at LARGE_SIZE_DIV granularity.
            assert_eq!(
                c.size % LARGE_SIZE_DIV,
                0,
                "class {i}: size must be a multiple of 128"
            );
        }
        assert!(c.objects() >= 1, "class {i}: span must hold an object");
        assert!(
            c.tail_waste() * 8 <= c.span_bytes(),
            "class {i}: tail waste above 1/8"
        );
        assert!(
            c.npages <= usize::from(u8::MAX),
            "class {i}: npages must fit in u8"
        );
        assert!(
            c.objects() <= usize::from(u16::MAX),
            "class {i}: objects must fit in u16"
        );
        assert!(
            c.batch() <= usize::from(u8::MAX),
            "class {i}: batch must fit in u8"
        );
        check_division(i, c);
    }
    for size in 0..=MAX_SMALL_SIZE {
        let want = smallest_fitting(classes, size.max(1));
        assert_eq!(t.lookup(size), want, "lookup of size {size}");
    }
}

/// Panics unless multiply-and-shift by the class's magic divides exactly for every offset
/// inside a span.
fn check_division(i: usize, c: Class) {
    let magic = c.div_magic();
    assert!(
        magic <= u64::from(u32::MAX),
        "class {i}: division magic must fit in u32"
    );
    for offset in 0..c.span_bytes() as u64 {
        assert_eq!(
            (offset * magic) >> 32,
            offset / c.size as u64,
            "class {i}: division by {} inexact at offset {offset}",
            c.size
        );
    }
}

/// Appends one line to the output (writing to a `String` cannot fail).
macro_rules! emit {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).expect("writing to a String cannot fail")
    };
}

/// Appends a static array, laid out the way rustfmt lays out a list of short literals: as
/// many items per line as fit in `MAX_WIDTH`, so that `cargo fmt` leaves the file alone.
fn array(out: &mut String, docs: &[&str], decl: &str, items: &[usize]) {
    let items: Vec<String> = items.iter().map(usize::to_string).collect();
    let one_line = format!("{decl} = [{}];", items.join(", "));
    // rustfmt would keep a short array on one line; none of ours is that short.
    assert!(
        one_line.len() > MAX_WIDTH,
        "{decl}: too short for the multi-line layout"
    );
    for doc in docs {
        emit!(out, "/// {doc}");
    }
    emit!(out, "{decl} = [");
    let mut current = String::new();
    for item in &items {
        // Each item is followed by a comma, items on a line are separated by one space, and
        // rustfmt keeps the last column free (it budgets a space after the final comma).
        if !current.is_empty() && 4 + current.len() + 1 + item.len() + 1 > MAX_WIDTH - 1 {
            emit!(out, "    {current}");
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(item);
        current.push(',');
    }
    emit!(out, "    {current}");
    emit!(out, "];");
}

/// Appends the comment table describing every class.
fn comment_table(out: &mut String, classes: &[Class]) {
    emit!(
        out,
        "// Columns: class number; bytes per object; bytes per span; objects per span;"
    );
    emit!(
        out,
        "// tail waste, the bytes at the end of a span that no object can use; and max"
    );
    emit!(
        out,
        "// waste, the share of a span lost in the worst case, when every object holds a"
    );
    emit!(
        out,
        "// request one byte larger than the previous class (rounding up + tail waste)."
    );
    emit!(out, "//");
    emit!(
        out,
        "// class  bytes/obj  bytes/span  objects  tail waste  max waste"
    );
    for (i, &c) in classes.iter().enumerate().skip(1) {
        let prev = classes[i - 1].size;
        let worst = (c.size - prev - 1) * c.objects() + c.tail_waste();
        let percent = 100.0 * worst as f64 / c.span_bytes() as f64;
        emit!(
            out,
            "// {i:5}  {:9}  {:10}  {:7}  {:10}  {percent:8.2}%",
            c.size,
            c.span_bytes(),
            c.objects(),
            c.tail_waste()
        );
    }
}

/// Returns the complete text of `crates/spanalloc/src/sizeclasses.rs`.
///
/// # Panics
///
/// If the chosen classes break a property the allocator relies on: sizes strictly
/// increasing and multiples of 8 (of 16 from 32 up), tail waste at most 1/8 of the span,
/// table lookups picking the smallest class that fits, exact division by multiply-and-shift,
/// and every value fitting its table's integer type.
pub fn generate() -> String {
    let t = Tables::new();
    check(&t);
    let classes = &t.classes;
    let column = |f: fn(Class) -> usize| classes.iter().map(|&c| f(c)).collect::<Vec<_>>();

    let mut out = String::new();
    emit!(
        out,
        "// Code generated by tools/mksizeclasses; DO NOT EDIT."
    );
    emit!(out, "// To regenerate: {REGENERATE}");
    emit!(out);
    emit!(
        out,
        "//! Size-class tables, generated. See sizeclass.rs for the lookups."
    );
    emit!(out);
    comment_table(&mut out, classes);
    emit!(out);
    emit!(out, "/// Base-2 logarithm of the page size.");
    emit!(out, "pub const PAGE_SHIFT: usize = {PAGE_SHIFT};");
    emit!(out, "/// Bytes per page.");
    emit!(out, "pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;");
    emit!(
        out,
        "/// Largest request served from a size class; anything bigger is a large object."
    );
    emit!(out, "pub const MAX_SMALL_SIZE: usize = {MAX_SMALL_SIZE};");
    emit!(
        out,
        "/// Number of classes, including class 0 (large objects)."
    );
    emit!(out, "pub const NUM_CLASSES: usize = {};", classes.len());
    emit!(out, "/// Granularity of `SIZE_TO_CLASS8`.");
    emit!(out, "pub const SMALL_SIZE_DIV: usize = {SMALL_SIZE_DIV};");
    emit!(out, "/// Largest request looked up in `SIZE_TO_CLASS8`.");
    emit!(out, "pub const SMALL_SIZE_MAX: usize = {SMALL_SIZE_MAX};");
    emit!(out, "/// Granularity of `SIZE_TO_CLASS128`.");
    emit!(out, "pub const LARGE_SIZE_DIV: usize = {LARGE_SIZE_DIV};");
    emit!(out);
    array(
        &mut out,
        &["Bytes per object of each class; class 0 means \"large object\" and has size 0."],
        "pub static CLASS_SIZE: [u32; NUM_CLASSES]",
        &column(|c| c.size),
    );
    emit!(out);
    array(
        &mut out,
        &["Pages per span of each class (0 for class 0)."],
        "pub static CLASS_NPAGES: [u8; NUM_CLASSES]",
        &column(|c| c.npages),
    );
    emit!(out);
    array(
        &mut out,
        &["Objects per span of each class (0 for class 0)."],
        "pub static CLASS_NOBJS: [u16; NUM_CLASSES]",
        &column(Class::objects),
    );
    emit!(out);
    array(
        &mut out,
        &[
            "Objects moved at once between a thread cache and its central list:",
            "clamp(65536 / size, 2, 32) (0 for class 0).",
        ],
        "pub static CLASS_BATCH: [u8; NUM_CLASSES]",
        &column(Class::batch),
    );
    emit!(out);
    let magic: Vec<usize> = classes
        .iter()
        .map(|c| usize::try_from(c.div_magic()).expect("checked to fit in u32"))
        .collect();
    array(
        &mut out,
        &[
            "Division by the object size as multiply-and-shift: for every offset `o` below the",
            "span's byte count, `o / size == ((o as u64 * magic as u64) >> 32) as usize`, where",
            "`magic = ceil(2^32 / size)` (0 for class 0). The generator verifies this for every",
            "offset of every class.",
        ],
        "pub static CLASS_DIV_MAGIC: [u32; NUM_CLASSES]",
        &magic,
    );
    emit!(out);
    array(
        &mut out,
        &["`SIZE_TO_CLASS8[(size + 7) / 8]` is the class of `size` for `size <= SMALL_SIZE_MAX`."],
        "pub static SIZE_TO_CLASS8: [u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1]",
        &t.size_to_class8,
    );
    emit!(out);
    array(
        &mut out,
        &[
            "`SIZE_TO_CLASS128[(size - SMALL_SIZE_MAX + 127) / 128]` is the class of `size` for",
            "`SMALL_SIZE_MAX < size <= MAX_SMALL_SIZE`.",
        ],
        "pub static SIZE_TO_CLASS128: [u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1]",
        &t.size_to_class128,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generate(), generate());
    }

    #[test]
    fn classes_match_the_design() {
        let classes = make_classes();
        assert_eq!(classes[1], Class { size: 8, npages: 1 });
        assert_eq!(classes.last().map(|c| c.size), Some(MAX_SMALL_SIZE));
        assert!(
            (60..=75).contains(&classes.len()),
            "{} classes",
            classes.len()
        );
    }

    #[test]
    fn pages_for_picks_the_smallest_span() {
        for size in (8..=MAX_SMALL_SIZE).step_by(8) {
            let n = pages_for(size);
            for fewer in 1..n {
                let span = fewer * PAGE_SIZE;
                assert!(
                    span < size || span % size > span / 8,
                    "size {size}: {fewer} pages do"
                );
            }
        }
    }

    #[test]
    fn generated_lines_fit_rustfmt_width() {
        for l in generate().lines() {
            assert!(l.len() <= MAX_WIDTH, "line too long: {l}");
        }
    }
}
