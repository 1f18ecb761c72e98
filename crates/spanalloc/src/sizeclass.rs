//! Size classes: mapping a request to its class. See lib.rs for the overview.

pub use crate::sizeclasses::*;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed, Ordering::Release};

/// The largest alignment that needs no search: for every `align <= FAST_ALIGN` (a power of
/// two) and every size, `class_of(round_up(max(size, 1), align))` already has objects aligned
/// to `align`, because every class is a multiple of 8 and every class from 32 up a multiple
/// of 16. [`class_for`] relies on this to skip its search. (The `max(size, 1)` matters: a
/// zero-byte request rounds to 0, whose class, 8 bytes, is not 16-aligned.)
///
/// The bound follows from the generator's rules, not from the particular table: the current
/// table happens to need no search up to 256, but nothing relies on that.
pub const FAST_ALIGN: usize = 16;

/// The class of a `size`-byte request: the smallest class whose objects hold `size` bytes.
///
/// Size 0 gets the smallest class (1). Sizes above [`MAX_SMALL_SIZE`] get class 0, meaning
/// "large object". Cost: one compare, one shift and one table load.
#[inline(always)]
pub fn class_of(size: usize) -> usize {
    class_and_entry(size).0
}

/// [`class_of`], with the number of the entry of the tables that holds it (as in
/// [`FREE_ENTRIES`]: the entry a sized free of `size` reads in [`free_class_of`]'s copies),
/// or 0 above [`MAX_SMALL_SIZE`]. Entry 0 is size 0's, which no free reads (a free rounds
/// 0 up to 1): the heap profiler takes 0 for "no entry".
#[inline(always)]
pub fn class_and_entry(size: usize) -> (usize, usize) {
    if size <= SMALL_SIZE_MAX {
        let i = size.div_ceil(SMALL_SIZE_DIV);
        (usize::from(SIZE_TO_CLASS8[i]), i)
    } else {
        let i = (size - SMALL_SIZE_MAX).div_ceil(LARGE_SIZE_DIV);
        // `get` doubles as the bounds check: past the table is past MAX_SMALL_SIZE.
        match SIZE_TO_CLASS128.get(i) {
            Some(&c) => (usize::from(c), SIZE_TO_CLASS8.len() + i),
            None => (0, 0),
        }
    }
}

/// [`class_of`] for sized frees, from copies of the two tables that the heap profiler
/// edits ([`route_sized_frees`]): while an entry is intact the answer is the same and costs
/// the same loads; while it is routed (a sampled object of one of its sizes is alive), it
/// answers `NUM_CLASSES + class`, whose cache list never has room, so those frees leave the
/// fast path through the branch it already has (cache.rs then looks up the pointers that
/// may be sampled objects).
#[inline(always)]
pub fn free_class_of(size: usize) -> usize {
    if size <= SMALL_SIZE_MAX {
        usize::from(FREE_CLASS8[size.div_ceil(SMALL_SIZE_DIV)].load(Relaxed))
    } else {
        match FREE_CLASS128.get((size - SMALL_SIZE_MAX).div_ceil(LARGE_SIZE_DIV)) {
            Some(c) => usize::from(c.load(Relaxed)),
            None => 0,
        }
    }
}

/// Entries of the two tables of [`free_class_of`], numbered one after the other.
pub const FREE_ENTRIES: usize = SIZE_TO_CLASS8.len() + SIZE_TO_CLASS128.len();

/// The entry that [`free_class_of`] reads for `size` (numbered as in [`FREE_ENTRIES`]),
/// or `None` past [`MAX_SMALL_SIZE`]. An entry covers 8 bytes of sizes up to 1 KiB, 128
/// above: a fraction of its class's sizes.
pub fn free_entry(size: usize) -> Option<usize> {
    match class_and_entry(size) {
        (0, _) => None,
        (_, e) => Some(e),
    }
}

/// Sends the sized frees that read `entry` (see [`class_and_entry`]) to the slow path (`slow`:
/// it answers `NUM_CLASSES + class`) or back to the fast path. The heap profiler does the
/// first before it hands out the first live sampled object whose size reads the entry, and
/// the second when the last such object is freed, both under its lock; a thread freeing a
/// sampled object therefore always sees its entry routed (the routing happened before the
/// object was handed out, and nothing undoes it while the object lives). Only the sizes of
/// live samples are routed, not their whole classes: a free must give the size the block
/// was allocated with (Rust's `GlobalAlloc` contract), and `realloc` moves a sampled block
/// rather than keep it under another size.
pub(crate) fn route_sized_frees(entry: usize, slow: bool) {
    const _: () = assert!(2 * NUM_CLASSES <= 256, "routed classes fit the u8 tables");
    let (table, original, i) = match entry.checked_sub(SIZE_TO_CLASS8.len()) {
        None => (&FREE_CLASS8[..], &SIZE_TO_CLASS8[..], entry),
        Some(i) => (&FREE_CLASS128[..], &SIZE_TO_CLASS128[..], i),
    };
    let c = usize::from(original[i]);
    debug_assert!(0 < c && c < NUM_CLASSES);
    table[i].store(if slow { NUM_CLASSES + c } else { c } as u8, Release);
}

/// Atomic copies of a table, for [`free_class_of`].
const fn atomic_copy<const N: usize>(table: &[u8; N]) -> [AtomicU8; N] {
    let mut out = [const { AtomicU8::new(0) }; N];
    let mut i = 0;
    while i < N {
        out[i] = AtomicU8::new(table[i]);
        i += 1;
    }
    out
}

static FREE_CLASS8: [AtomicU8; SIZE_TO_CLASS8.len()] = atomic_copy(&SIZE_TO_CLASS8);
static FREE_CLASS128: [AtomicU8; SIZE_TO_CLASS128.len()] = atomic_copy(&SIZE_TO_CLASS128);

/// The smallest class whose objects hold `size` bytes and are all aligned to `align`, or
/// `None` if no class qualifies and the request must be served as a large object.
///
/// `align` must be a power of two. Objects sit at `span_start + k * class_size(c)` with
/// `span_start` page-aligned, so a class qualifies when its size is a multiple of `align`;
/// page alignment is the most a span offers, so `align > PAGE_SIZE` gives `None`, as does a
/// size that rounded up to `align` exceeds [`MAX_SMALL_SIZE`]. For `align <= FAST_ALIGN` this
/// costs [`class_of`] plus a few instructions; larger alignments search upward from there.
#[inline(always)]
pub fn class_for(size: usize, align: usize) -> Option<usize> {
    debug_assert!(
        align.is_power_of_two(),
        "alignment {align} is not a power of two"
    );
    if align > PAGE_SIZE {
        return None;
    }
    let mask = align.wrapping_sub(1);
    // Every class holds at least one byte, so size 0 can be treated as 1 (see FAST_ALIGN).
    let rounded = size.max(1).checked_add(mask)? & !mask;
    if rounded > MAX_SMALL_SIZE {
        return None;
    }
    let c = class_of(rounded);
    if align <= FAST_ALIGN {
        Some(c)
    } else {
        first_aligned_class(c, align)
    }
}

/// The first class from `c` up whose size is a multiple of `align`.
#[cold]
#[inline(never)]
fn first_aligned_class(c: usize, align: usize) -> Option<usize> {
    (c..NUM_CLASSES).find(|&c| class_size(c) & (align - 1) == 0)
}

/// Bytes per object of class `c` (0 for class 0). `c` must be below [`NUM_CLASSES`].
#[inline(always)]
pub fn class_size(c: usize) -> usize {
    // Lossless: usize is at least 32 bits on every target spanalloc supports.
    CLASS_SIZE[c] as usize
}

/// Pages per span of class `c` (0 for class 0). `c` must be below [`NUM_CLASSES`].
#[inline(always)]
pub fn class_npages(c: usize) -> usize {
    usize::from(CLASS_NPAGES[c])
}

/// Objects per span of class `c` (0 for class 0). `c` must be below [`NUM_CLASSES`].
#[inline(always)]
pub fn class_nobjs(c: usize) -> usize {
    usize::from(CLASS_NOBJS[c])
}

/// Objects moved at once between a thread cache and the central list of class `c`
/// (0 for class 0). `c` must be below [`NUM_CLASSES`].
#[inline(always)]
pub fn class_batch(c: usize) -> usize {
    usize::from(CLASS_BATCH[c])
}

/// Bytes per span of class `c` (0 for class 0). `c` must be below [`NUM_CLASSES`].
#[inline(always)]
pub fn span_bytes(c: usize) -> usize {
    class_npages(c) << PAGE_SHIFT
}

/// `offset / class_size(c)` for an `offset` into a span of class `c`: the index of the object
/// containing that byte. One multiply and one shift (see [`CLASS_DIV_MAGIC`]); exact only for
/// `1 <= c < NUM_CLASSES` and `offset < span_bytes(c)`.
#[inline(always)]
pub fn object_index(c: usize, offset: usize) -> usize {
    debug_assert!(c != 0, "class 0 has no objects");
    debug_assert!(
        offset < span_bytes(c),
        "offset {offset} outside a class {c} span"
    );
    // Offsets within a span are far below 2^32 and magic below 2^32: no overflow.
    ((offset as u64 * u64::from(CLASS_DIV_MAGIC[c])) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// All real classes, smallest first.
    fn classes() -> std::ops::Range<usize> {
        1..NUM_CLASSES
    }

    /// The model of `class_of`: a linear scan for the smallest class that fits.
    fn smallest_fitting(size: usize) -> usize {
        classes().find(|&c| class_size(c) >= size).unwrap_or(0)
    }

    /// The model of `class_for`: a linear scan, straight from the definition.
    fn smallest_fitting_aligned(size: usize, align: usize) -> Option<usize> {
        if align > PAGE_SIZE {
            return None;
        }
        classes().find(|&c| class_size(c) >= size && class_size(c).is_multiple_of(align))
    }

    fn alignments() -> impl Iterator<Item = usize> {
        (0..=PAGE_SHIFT).map(|shift| 1 << shift)
    }

    #[test]
    fn generated_table_is_up_to_date() {
        let generated = spanalloc_mksizeclasses::generate();
        let checked_in = include_str!("sizeclasses.rs");
        if generated != checked_in {
            let line = generated
                .lines()
                .zip(checked_in.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "the end".to_string(), |i| format!("line {}", i + 1));
            panic!(
                "crates/spanalloc/src/sizeclasses.rs differs from the generator's output (first at \
                 {line}); regenerate it from the workspace root with: {}",
                spanalloc_mksizeclasses::REGENERATE
            );
        }
    }

    #[test]
    fn class_count_is_reasonable() {
        assert!(
            (60..=75).contains(&NUM_CLASSES),
            "NUM_CLASSES = {NUM_CLASSES}"
        );
        assert_eq!(PAGE_SIZE, 8192);
    }

    #[test]
    fn class_zero_is_the_large_class() {
        assert_eq!(class_size(0), 0);
        assert_eq!(class_npages(0), 0);
        assert_eq!(class_nobjs(0), 0);
        assert_eq!(class_batch(0), 0);
        assert_eq!(CLASS_DIV_MAGIC[0], 0);
        assert_eq!(span_bytes(0), 0);
    }

    #[test]
    fn sizes_increase_and_are_aligned() {
        for c in classes() {
            let size = class_size(c);
            assert!(
                size > class_size(c - 1),
                "class {c}: sizes must strictly increase"
            );
            assert_eq!(size % 8, 0, "class {c}: {size} is not a multiple of 8");
            if size >= 32 {
                assert_eq!(size % 16, 0, "class {c}: {size} is not a multiple of 16");
            }
        }
        assert_eq!(class_size(NUM_CLASSES - 1), MAX_SMALL_SIZE);
    }

    #[test]
    fn tail_waste_is_at_most_an_eighth() {
        for c in classes() {
            let tail = span_bytes(c) - class_nobjs(c) * class_size(c);
            assert!(tail * 8 <= span_bytes(c), "class {c}: tail waste {tail}");
        }
    }

    #[test]
    fn nobjs_and_batch_are_consistent() {
        for c in classes() {
            let (size, span) = (class_size(c), span_bytes(c));
            assert_eq!(span, class_npages(c) * PAGE_SIZE);
            assert!(class_npages(c) >= 1, "class {c}: empty span");
            assert_eq!(class_nobjs(c), span / size, "class {c}: objects per span");
            assert!(class_nobjs(c) >= 1, "class {c}: span holds no object");
            assert_eq!(
                class_batch(c),
                (65536 / size).clamp(2, 32),
                "class {c}: batch"
            );
        }
    }

    #[test]
    fn class_of_picks_the_smallest_fitting_class() {
        assert_eq!(SIZE_TO_CLASS8[0], 1);
        assert_eq!(class_of(0), 1);
        for size in 0..=MAX_SMALL_SIZE {
            assert_eq!(class_of(size), smallest_fitting(size), "size {size}");
        }
        for size in [
            MAX_SMALL_SIZE + 1,
            MAX_SMALL_SIZE + 128,
            MAX_SMALL_SIZE + 129,
            usize::MAX,
        ] {
            assert_eq!(class_of(size), 0, "size {size} is a large object");
        }
    }

    #[test]
    fn class_for_matches_the_model_for_every_size_and_alignment() {
        for align in alignments().chain([PAGE_SIZE * 2, 1 << 20, 1 << (usize::BITS - 1)]) {
            for size in (0..=MAX_SMALL_SIZE + 256).chain([usize::MAX - 8192, usize::MAX]) {
                assert_eq!(
                    class_for(size, align),
                    smallest_fitting_aligned(size, align),
                    "size {size}, align {align}"
                );
            }
        }
    }

    #[test]
    fn fast_align_needs_no_search() {
        for align in alignments().take_while(|&a| a <= FAST_ALIGN) {
            for size in 0..=MAX_SMALL_SIZE {
                let rounded = size.max(1).next_multiple_of(align);
                if rounded <= MAX_SMALL_SIZE {
                    let c = class_of(rounded);
                    assert_eq!(class_size(c) % align, 0, "size {size}, align {align}");
                }
            }
        }
    }

    #[test]
    fn object_index_divides_exactly() {
        for c in classes() {
            let size = class_size(c);
            for offset in 0..span_bytes(c) {
                assert_eq!(
                    object_index(c, offset),
                    offset / size,
                    "class {c}, offset {offset}"
                );
            }
        }
    }

    #[test]
    fn routing_an_entry_routes_exactly_its_sizes() {
        for e in 1..FREE_ENTRIES {
            route_sized_frees(e, true);
            for size in 1..=MAX_SMALL_SIZE {
                let routed = free_entry(size) == Some(e);
                let want = class_of(size) + if routed { NUM_CLASSES } else { 0 };
                assert_eq!(free_class_of(size), want, "entry {e} routed, size {size}");
            }
            route_sized_frees(e, false);
            for size in 1..=MAX_SMALL_SIZE {
                assert_eq!(free_class_of(size), class_of(size), "entry {e} restored");
            }
        }
        assert_eq!(free_entry(1), Some(1));
        assert_eq!(free_entry(MAX_SMALL_SIZE), Some(FREE_ENTRIES - 1));
        assert_eq!(free_entry(MAX_SMALL_SIZE + 1), None);
    }

    proptest! {
        #[test]
        fn class_for_fits_is_aligned_and_is_smallest(
            size in prop_oneof![0..=MAX_SMALL_SIZE + 1024, any::<usize>()],
            shift in 0..usize::BITS,
        ) {
            let align = 1usize << shift;
            match class_for(size, align) {
                Some(c) => {
                    prop_assert!((1..NUM_CLASSES).contains(&c));
                    prop_assert!(class_size(c) >= size);
                    // Every object of a page-aligned span starts on an `align` boundary.
                    prop_assert!(align <= PAGE_SIZE);
                    for k in 0..class_nobjs(c) {
                        prop_assert_eq!((k * class_size(c)) % align, 0);
                    }
                    // No smaller class both fits and is aligned.
                    prop_assert!((1..c)
                        .all(|d| class_size(d) < size || !class_size(d).is_multiple_of(align)));
                }
                None => prop_assert_eq!(smallest_fitting_aligned(size, align), None),
            }
        }
    }
}
