//! Double frees caught by `spanalloc::raw`. Alone in its test binary: a
//! test running beside it could be handed the freed large block's pages
//! between the two frees, and the second free would then be a legal free
//! of that test's block.

use spanalloc::raw::{self, PointerError};

#[test]
fn an_immediate_double_free_is_caught() {
    let p = raw::malloc(48);
    // SAFETY: live, freed once; the second call is the double free under test,
    // refused before anything is touched.
    unsafe {
        raw::free(p).unwrap();
        assert_eq!(raw::free(p), Err(PointerError::DoubleFree));
    }
    let big = raw::malloc(1 << 20);
    // SAFETY: as above, for a large block.
    unsafe {
        raw::free(big).unwrap();
        assert_eq!(raw::free(big), Err(PointerError::NotOurs));
    }
}
