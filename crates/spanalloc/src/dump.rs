//! The heap dump: every region and span of the heap as one JSON object, for
//! `spanalloc-inspect heap`. See lib.rs for the overview.
//!
//! ```text
//! {"version":1,"page_size":8192,"arena_size":67108864,
//!  "stats":{...the statistics report...},
//!  "regions":[{"base":ADDR,"bytes":N},...],
//!  "spans":[{"start":ADDR,"pages":N,"state":"small"|"large"|"free","class":C,
//!            "object_size":S,"objects":N,"allocated":N,"released":BOOL,
//!            "released_pages":N},...]}
//! ```
//!
//! Spans are in address order and cover every region. For free spans the
//! class, object size, objects and allocated count are 0; a large span has
//! class 0, one object of its page-rounded size, allocated 1. `allocated` of
//! a small span counts objects handed out (to the program or to thread
//! caches). `released_pages` counts the pages of a free span not backed by
//! memory (returned to the OS, or never used); `released` is true when that
//! is all of them. Written at exit when `SPANALLOC_DUMP=PATH` is set, or on demand
//! with [`crate::dump_heap`].

use crate::pagemap::PageMap;
use crate::sizeclass::PAGE_SHIFT;
use crate::span::SpanState;
use core::fmt::{self, Write};

/// Writes `"regions":[...],"spans":[...]` for the given regions.
///
/// The caller holds every allocator lock, so span records are stable.
pub(crate) fn write_regions_and_spans<'a>(
    w: &mut impl Write,
    regions: impl Iterator<Item = (usize, usize)> + Clone + 'a,
    pagemap: &PageMap,
) -> fmt::Result {
    write!(w, ",\"regions\":[")?;
    for (i, (base, bytes)) in regions.clone().enumerate() {
        let sep = if i > 0 { "," } else { "" };
        write!(w, "{sep}{{\"base\":{base},\"bytes\":{bytes}}}")?;
    }
    write!(w, "],\"spans\":[")?;
    let mut first = true;
    for (base, bytes) in regions {
        let mut page = base;
        while page < base + bytes {
            let s = pagemap.lookup(page);
            // SAFETY: every page of a region belongs to a span whose first
            // page maps to it (span invariants); all locks are held.
            let sp = unsafe { &*s };
            if s.is_null() || sp.start != page || sp.npages == 0 {
                // Should not happen; stop rather than loop or lie.
                return Err(fmt::Error);
            }
            let (state, class, size, objects, allocated) = match sp.state {
                SpanState::Small => (
                    "small",
                    sp.class as usize,
                    sp.elem_size as usize,
                    sp.nelems,
                    sp.allocated,
                ),
                SpanState::Large => ("large", 0, sp.bytes(), 1, 1),
                _ => ("free", 0, 0, 0, 0),
            };
            let mut released_pages = 0;
            if sp.state == SpanState::Free {
                let mut unreleased = 0;
                // SAFETY: the span's pages are in the pagemap; all locks are held.
                unsafe { pagemap.for_each_unreleased(sp.start, sp.npages, |_, n| unreleased += n) };
                released_pages = sp.npages - unreleased;
            }
            let sep = if first { "" } else { "," };
            first = false;
            write!(
                w,
                "{sep}{{\"start\":{},\"pages\":{},\"state\":\"{state}\",\"class\":{class},\"object_size\":{size},\"objects\":{objects},\"allocated\":{allocated},\"released\":{},\"released_pages\":{released_pages}}}",
                sp.start,
                sp.npages,
                sp.state == SpanState::Free && released_pages == sp.npages
            )?;
            page += sp.npages << PAGE_SHIFT;
        }
    }
    write!(w, "]")
}
