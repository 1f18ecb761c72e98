//! The C-semantics layer (`spanalloc::raw`) from Rust: frees without a
//! size, C alignment, realloc, usable sizes, and refusal of pointers
//! spanalloc did not hand out.

use spanalloc::raw::{self, PointerError};

#[test]
fn malloc_aligns_as_c_requires_and_frees_without_a_size() {
    for size in [
        0usize,
        1,
        7,
        8,
        9,
        15,
        16,
        17,
        24,
        100,
        1000,
        4096,
        40_000,
        1 << 20,
    ] {
        let p = raw::malloc(size);
        assert!(!p.is_null(), "malloc({size})");
        let align = if size >= 16 { 16 } else { 8 };
        assert_eq!(p as usize % align, 0, "malloc({size}) alignment");
        let usable = raw::usable_size(p).expect("our block");
        assert!(usable >= size.max(1));
        // SAFETY: p is a fresh block of at least `usable` bytes.
        unsafe { p.write_bytes(0xA5, usable) };
        // SAFETY: p is live and freed once.
        assert_eq!(unsafe { raw::free(p) }, Ok(()));
    }
    // SAFETY: freeing null is allowed.
    assert_eq!(unsafe { raw::free(core::ptr::null_mut()) }, Ok(()));
}

#[test]
fn zero_sized_blocks_are_unique() {
    let a = raw::malloc(0);
    let b = raw::malloc(0);
    assert!(!a.is_null() && !b.is_null() && a != b);
    // SAFETY: live, freed once each.
    unsafe {
        raw::free(a).unwrap();
        raw::free(b).unwrap();
    }
}

#[test]
fn overflowing_requests_return_null() {
    assert!(raw::malloc(usize::MAX).is_null());
    assert!(raw::malloc(isize::MAX as usize).is_null());
    assert!(raw::calloc(usize::MAX / 2, 3).is_null());
    assert!(raw::calloc(1 << 40, 1 << 40).is_null());
    assert!(raw::aligned_alloc(4096, usize::MAX - 100).is_null());
}

#[test]
fn calloc_is_zero_even_on_reused_memory() {
    for size in [24usize, 512, 5000, 100_000, 3 << 20] {
        let p = raw::malloc(size);
        // SAFETY: fresh block of `size` bytes.
        unsafe { p.write_bytes(0xFF, size) };
        // SAFETY: live, freed once.
        unsafe { raw::free(p).unwrap() };
        let q = raw::calloc(1, size);
        // SAFETY: fresh block of `size` bytes.
        let all_zero = unsafe { core::slice::from_raw_parts(q, size) }
            .iter()
            .all(|&b| b == 0);
        assert!(all_zero, "calloc({size}) not zero");
        // SAFETY: live, freed once.
        unsafe { raw::free(q).unwrap() };
    }
}

#[test]
fn aligned_alloc_honours_every_alignment() {
    for shift in 0..=22 {
        let align = 1usize << shift;
        for size in [1usize, align, 3 * align + 5] {
            let p = raw::aligned_alloc(align, size);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "align {align} size {size}");
            assert!(raw::usable_size(p).unwrap() >= size);
            // SAFETY: live, freed once.
            unsafe { raw::free(p).unwrap() };
        }
    }
}

#[test]
fn realloc_keeps_contents_across_classes_and_large_sizes() {
    // SAFETY: null realloc allocates.
    let mut p = unsafe { raw::realloc(core::ptr::null_mut(), 10) }.unwrap();
    let mut size = 10usize;
    // SAFETY: p has `size` bytes.
    unsafe { p.write_bytes(1, size) };
    for new in [20usize, 24, 300, 40_000, 2 << 20, 100, 5] {
        // SAFETY: p is live.
        let q = unsafe { raw::realloc(p, new) }.unwrap();
        assert!(!q.is_null());
        let kept = size.min(new);
        // SAFETY: q has at least `kept` bytes copied from p.
        let ok = unsafe { core::slice::from_raw_parts(q, kept) }
            .iter()
            .all(|&b| b == 1);
        assert!(ok, "realloc {size} -> {new} lost contents");
        // SAFETY: q has `new` bytes.
        unsafe { q.write_bytes(1, new) };
        p = q;
        size = new;
    }
    // SAFETY: live, freed once.
    unsafe { raw::free(p).unwrap() };
}

#[test]
fn foreign_and_interior_pointers_are_refused() {
    let local = [0u64; 4];
    let stack = local.as_ptr() as *mut u8;
    // SAFETY: free refuses pointers it does not own without touching them.
    assert_eq!(unsafe { raw::free(stack) }, Err(PointerError::NotOurs));
    let boxed = Box::into_raw(Box::new(7u64)) as *mut u8; // the system allocator's
                                                          // SAFETY: as above.
    assert_eq!(unsafe { raw::free(boxed) }, Err(PointerError::NotOurs));
    // SAFETY: boxed came from Box::into_raw.
    drop(unsafe { Box::from_raw(boxed as *mut u64) });
    let p = raw::malloc(64);
    // SAFETY: as above; p + 8 is inside a live block, not its start.
    assert_eq!(unsafe { raw::free(p.add(8)) }, Err(PointerError::NotOurs));
    // SAFETY: realloc, like free, refuses a pointer it does not own untouched.
    let refused = unsafe { raw::realloc(stack, 10) };
    assert_eq!(refused, Err(PointerError::NotOurs));
    assert_eq!(raw::usable_size(stack), None);
    // SAFETY: live, freed once.
    unsafe { raw::free(p).unwrap() };
}

#[test]
fn the_report_is_printed_without_allocating() {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    raw::write_stats(fds[1]);
    // SAFETY: we own the write end.
    unsafe { libc::close(fds[1]) };
    let mut out = vec![0u8; 1 << 16];
    // SAFETY: out has room for its length; we own the read end.
    let n = unsafe { libc::read(fds[0], out.as_mut_ptr().cast(), out.len()) };
    // SAFETY: we own the read end.
    unsafe { libc::close(fds[0]) };
    let text = String::from_utf8_lossy(&out[..n.max(0) as usize]).into_owned();
    assert!(text.starts_with("spanalloc statistics"), "{text}");
    assert!(text.contains("mapped_bytes"));
}
