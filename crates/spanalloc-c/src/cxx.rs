//! C++'s `operator new` and `operator delete`, all twenty replaceable forms,
//! under their Itanium C++ ABI names (Linux on x86_64 and aarch64, where
//! `size_t` is `unsigned long`, mangled `m`). See lib.rs.
//!
//! The throwing forms do what the C++ standard asks when memory is refused:
//! call the program's new-handler (`std::set_new_handler`) and retry while
//! there is one; without one, throw `std::bad_alloc`. Rust cannot throw a
//! C++ exception, so the C++ runtime throws it: `std::__throw_bad_alloc()`
//! (a function of libstdc++ and libc++ whose whole job is that throw),
//! looked up with `dlsym` only when memory runs out. Both are called
//! through the `"C-unwind"` ABI, through which a foreign exception may
//! unwind Rust frames. If no C++ runtime is loaded, the program is stopped
//! with a message instead.
//!
//! Known differences from libstdc++: the `nothrow` forms return null at once
//! without calling the new-handler (they would have to catch what it
//! throws). Built with `panic = "abort"`, this library cannot let an
//! exception unwind through its frames, so a throw from `operator new`
//! aborts instead (the workspace builds with unwinding).

use core::ffi::{c_char, c_void, CStr};
use core::ptr::null_mut;
use spanalloc::raw;

/// A C++ new-handler, as `std::get_new_handler()` returns it.
type NewHandler = Option<unsafe extern "C-unwind" fn()>;

/// Allocates for `operator new`: `size` bytes aligned to `align` (0 for the
/// default alignment). Null if refused (or `align` is not a power of two).
#[inline(always)]
fn alloc(size: usize, align: usize) -> *mut u8 {
    if align == 0 {
        raw::malloc(size)
    } else if align.is_power_of_two() {
        raw::aligned_alloc(align, size)
    } else {
        null_mut()
    }
}

/// The throwing `operator new`: retries after each call of the new-handler,
/// throws `std::bad_alloc` when there is none.
///
/// # Safety
/// Called from C++ only (a C++ exception may unwind out of it).
#[inline(always)]
unsafe fn new_or_throw(size: usize, align: usize) -> *mut c_void {
    loop {
        let p = alloc(size, align);
        if !p.is_null() {
            return p.cast();
        }
        // SAFETY: forwarded from the caller.
        unsafe { out_of_memory() };
    }
}

/// Memory was refused: calls the new-handler (which frees memory, throws or
/// aborts) or, without one, throws `std::bad_alloc`.
///
/// # Safety
/// As for [`new_or_throw`].
#[cold]
#[inline(never)]
unsafe fn out_of_memory() {
    let get = cxx_symbol(c"_ZSt15get_new_handlerv");
    if !get.is_null() {
        // SAFETY: the symbol is `std::new_handler std::get_new_handler()
        // noexcept`, which returns a `void (*)()` or null.
        let get: unsafe extern "C" fn() -> NewHandler = unsafe { core::mem::transmute(get) };
        // SAFETY: as above.
        if let Some(handler) = unsafe { get() } {
            // SAFETY: a new-handler takes no arguments; it may throw, which
            // the "C-unwind" ABI carries up to our C++ caller.
            unsafe { handler() };
            return;
        }
    }
    let throw = cxx_symbol(c"_ZSt17__throw_bad_allocv");
    if throw.is_null() {
        oom_abort();
    }
    // SAFETY: the symbol is `void std::__throw_bad_alloc()`, which throws
    // `std::bad_alloc` and never returns; it unwinds through "C-unwind".
    let throw: unsafe extern "C-unwind" fn() -> ! = unsafe { core::mem::transmute(throw) };
    // SAFETY: as above.
    unsafe { throw() }
}

/// The address of a C++ runtime function, or null if none is loaded.
fn cxx_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: RTLD_DEFAULT searches the global scope; name is NUL-terminated.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast::<c_char>()) }
}

/// No C++ runtime to throw with: says so and stops the program.
#[cold]
fn oom_abort() -> ! {
    const MSG: &[u8] = b"spanalloc: operator new: out of memory\n";
    // SAFETY: MSG is valid for its length; write and abort are
    // async-signal-safe and allocate nothing.
    unsafe {
        libc::write(libc::STDERR_FILENO, MSG.as_ptr().cast(), MSG.len());
        libc::abort()
    }
}

/// `operator delete` of every form: null does nothing; a pointer spanalloc
/// did not hand out stops the program with a message.
///
/// # Safety
/// `p` must not be used after this call.
#[inline(always)]
unsafe fn delete(p: *mut c_void) {
    // SAFETY: C++'s contract (nobody uses p afterwards); raw::free refuses,
    // without touching anything, a pointer that is not a live block of ours.
    if let Err(e) = unsafe { raw::free(p.cast()) } {
        raw::report_and_abort("operator delete", p.cast(), e);
    }
}

/// Defines throwing `operator new` forms: `name(size [, align])`.
macro_rules! operator_new {
    ($($(#[$doc:meta])* $name:ident($size:ident $(, $align:ident)?);)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Called from C++ only: may throw `std::bad_alloc`.
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($size: usize $(, $align: usize)?) -> *mut c_void {
            let align = 0 $(+ $align)?;
            // SAFETY: forwarded from the caller.
            unsafe { new_or_throw($size, align) }
        }
    )*};
}

/// Defines `nothrow` `operator new` forms: `name(size [, align], nothrow)`.
macro_rules! operator_new_nothrow {
    ($($(#[$doc:meta])* $name:ident($size:ident $(, $align:ident)?);)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// None beyond C++'s.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            $size: usize,
            $($align: usize,)?
            _nothrow: *const c_void,
        ) -> *mut c_void {
            let align = 0 $(+ $align)?;
            alloc($size, align).cast()
        }
    )*};
}

/// Defines `operator delete` forms: `name(p, other arguments…)`, all ignored
/// but `p` (the block's span knows its size and alignment).
macro_rules! operator_delete {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// `p` must be null or a block from `operator new`, not used afterwards.
        #[no_mangle]
        pub unsafe extern "C" fn $name(p: *mut c_void $(, $arg: $ty)*) {
            // SAFETY: forwarded from the caller.
            unsafe { delete(p) }
        }
    )*};
}

operator_new! {
    /// `operator new(size_t)`.
    _Znwm(size);
    /// `operator new[](size_t)`.
    _Znam(size);
    /// `operator new(size_t, std::align_val_t)`.
    _ZnwmSt11align_val_t(size, align);
    /// `operator new[](size_t, std::align_val_t)`.
    _ZnamSt11align_val_t(size, align);
}

operator_new_nothrow! {
    /// `operator new(size_t, const std::nothrow_t&)`: null if refused.
    _ZnwmRKSt9nothrow_t(size);
    /// `operator new[](size_t, const std::nothrow_t&)`: null if refused.
    _ZnamRKSt9nothrow_t(size);
    /// `operator new(size_t, std::align_val_t, const std::nothrow_t&)`.
    _ZnwmSt11align_val_tRKSt9nothrow_t(size, align);
    /// `operator new[](size_t, std::align_val_t, const std::nothrow_t&)`.
    _ZnamSt11align_val_tRKSt9nothrow_t(size, align);
}

operator_delete! {
    /// `operator delete(void*)`.
    _ZdlPv();
    /// `operator delete[](void*)`.
    _ZdaPv();
    /// `operator delete(void*, size_t)`.
    _ZdlPvm(_size: usize);
    /// `operator delete[](void*, size_t)`.
    _ZdaPvm(_size: usize);
    /// `operator delete(void*, const std::nothrow_t&)`.
    _ZdlPvRKSt9nothrow_t(_nothrow: *const c_void);
    /// `operator delete[](void*, const std::nothrow_t&)`.
    _ZdaPvRKSt9nothrow_t(_nothrow: *const c_void);
    /// `operator delete(void*, std::align_val_t)`.
    _ZdlPvSt11align_val_t(_align: usize);
    /// `operator delete[](void*, std::align_val_t)`.
    _ZdaPvSt11align_val_t(_align: usize);
    /// `operator delete(void*, size_t, std::align_val_t)`.
    _ZdlPvmSt11align_val_t(_size: usize, _align: usize);
    /// `operator delete[](void*, size_t, std::align_val_t)`.
    _ZdaPvmSt11align_val_t(_size: usize, _align: usize);
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)`.
    _ZdlPvSt11align_val_tRKSt9nothrow_t(_align: usize, _nothrow: *const c_void);
    /// `operator delete[](void*, std::align_val_t, const std::nothrow_t&)`.
    _ZdaPvSt11align_val_tRKSt9nothrow_t(_align: usize, _nothrow: *const c_void);
}
