//! The sampled heap profiler: which call sites hold the program's memory.
//! See lib.rs for the overview.
//!
//! # Sampling
//!
//! As the Go runtime's `MemProfileRate`, sampling is by bytes: every byte
//! allocated has the same chance, one in `rate` (512 KiB by default), to
//! bring its object into the profile. Each thread cache keeps one countdown
//! per size class. An object of class size `s` is sampled with probability
//! `p = 1 - e^(-s/rate)`, independently of the others, so the number of
//! allocations up to the next sampled one is geometric: `⌈E·rate/s⌉` with
//! `E` exponential of mean 1 ([`draw_countdown`]). The countdown is the
//! list's allocation counter (cache.rs): the fast path decrements it and
//! leaves for [`sample_small`] when it reaches zero, and while the profiler
//! is off it starts at 2^62 and costs nothing more. A large object (the
//! mheap's) of at least `rate` bytes is always sampled; a smaller one with
//! the same `p`, drawn when it is allocated. A sample of `s` bytes stands for
//! `1/p` objects and `s/p` bytes, so the estimates are unbiased.
//!
//! # Sampled objects
//!
//! A sampled small object gets a Large span of its own (at least one page),
//! whose `sample` field points to its [`Sample`] record; a sampled large
//! object is already alone in its span. So a free finds the record through
//! the span: C's `free` looks the span up anyway; a Rust sized free knows
//! the class from the size and skips the lookup, so while a sampled object
//! is alive, the entry its size reads in the sized-free tables (8 bytes of
//! sizes up to 1 KiB, 128 above) is routed (sizeclass::route_sized_frees,
//! under the lock, counted in `live_routes`) to the cache's slow path,
//! which looks up the pointers that start a page (a sampled object always
//! does). The other sizes' frees stay on the fast path, even those of the
//! same class: a sample freed soon after its allocation costs a few slow
//! frees, and a long-lived one only the frees of its own few sizes. (The
//! allocation fast path keeps the entry it read the class from, for the
//! sampling branch, at no cost: tested by the instruction-count guard.) A
//! sized free must give the allocation's size, and `realloc` moves a
//! sampled block rather than keep it under another size.
//!
//! The record is dropped before the span is freed. The profiler keeps the
//! span of the last freed sample of each class (at most one a class, under
//! 1 MiB in all, counted by the heap as in use) for the next sample of that
//! class, which then skips the page heap; `release_memory` and turning
//! sampling off free them. (So `large_allocs`/`large_frees` count sampled
//! objects only when a span had to be taken or given back.) A second C
//! `free` of a kept span's block is refused as not a live block, and a
//! second Rust sized free aborts while its size is still routed; after
//! that, like any double free on the fast path, it goes undetected.

//! # Buckets
//!
//! On a sample the call stack is captured without allocating (unwind.rs:
//! DWARF call-frame information, each return address's rule read once and
//! cached; the platform unwinder off x86_64 Linux) and hashed into a
//! bucket: one per distinct stack, holding running totals (objects and bytes allocated and freed), as the Go
//! runtime's memory-profile buckets do. Buckets and records live in pages
//! the profiler maps from the OS layer itself ([`Arena`]), never in memory
//! from malloc; buckets are never freed. While the profiler works on a
//! thread, that thread's allocations are not sampled (the thread cache's
//! `in_profiler` flag), so it never re-enters itself.
//!
//! The peak profile is the in-use profile at the moment the estimated bytes
//! in use were highest. Copying every bucket at each new high would cost
//! too much; instead each new high starts a new epoch, and the first time a
//! bucket changes in a later epoch it saves its value first (copy on write):
//! a bucket's value at the peak is its saved value if it changed since, its
//! current value if not.
//!
//! # Writing
//!
//! [`write`] (and the C library's `spanalloc_profile_write`) copies the
//! buckets under the lock, then, off every allocation path, names the
//! frames and encodes a gzip-compressed pprof `profile.proto` (pprof.rs,
//! symbolize.rs). `SPANALLOC_PROFILE=PATH` writes one at exit;
//! `SPANALLOC_PROFILE_SIGNAL=N` writes `PATH.1`, `PATH.2`, … each time the
//! process gets signal N.

pub(crate) mod pprof;
mod signal;
pub(crate) mod symbolize;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod unwind;

use crate::global::{with_cache, HEAP};
use crate::os::{LinuxOs, OsMem};
use crate::sizeclass::{FREE_ENTRIES, NUM_CLASSES};
use crate::span::MSpan;
use crate::sync::Mutex;
use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The values kept for each call site, in the order of [`SAMPLE_TYPES`].
pub const NUM_VALUES: usize = 6;

/// The sample types of a spanalloc heap profile, as pprof names them
/// (type, unit): what the six values of a [`SiteSample`] mean. The first four
/// are the Go runtime's heap profile's; the last two are the in-use profile
/// at the moment the in-use bytes were highest.
pub const SAMPLE_TYPES: [(&str, &str); NUM_VALUES] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
    ("peak_objects", "count"),
    ("peak_space", "bytes"),
];

/// One call site's estimated totals, ready to be written.
pub struct SiteSample<'a> {
    /// Return addresses captured at the allocation, innermost first. The
    /// allocator's own frames may still be at the front: the encoder drops
    /// them by name when it symbolises.
    pub stack: &'a [usize],
    /// Estimated totals, in the order of [`SAMPLE_TYPES`].
    pub values: [i64; NUM_VALUES],
}

/// The rate when profiling is asked for without one: 512 KiB, as Go's.
pub const DEFAULT_RATE: usize = 512 << 10;

/// Frames kept per stack.
const MAX_DEPTH: usize = 64;

/// Buckets' hash table: chains from this many heads.
const TABLE_SIZE: usize = 1 << 14;

/// The profiler's pages come from the OS in chunks of this size.
const CHUNK: usize = 1 << 20;

/// Mean bytes between samples; 0: off.
static RATE: AtomicUsize = AtomicUsize::new(0);

/// Incremented each time the rate changes; 0 until the profiler is first
/// enabled. Thread caches redraw their countdowns when it moves.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Seeds handed to threads' random number generators so far.
static SEEDS: AtomicU64 = AtomicU64::new(0);

/// When the profiler was first enabled (CLOCK_REALTIME, nanoseconds).
static START_NS: AtomicU64 = AtomicU64::new(0);

/// The buckets and records.
static PROFILER: Mutex<Profiler> = Mutex::new(Profiler::new());

/// The `sample` of a span in the profiler's reserve (see [`Profiler`]):
/// its block is free, and freeing it again is a double free.
pub(crate) const RESERVED: *mut Sample = core::ptr::dangling_mut();

/// The profiler's record of one live sampled object, pointed to by its
/// span's `sample` field.
///
/// Invariant: `bucket` is a live bucket; `objects` and `bytes` are what the
/// object added to the bucket's allocated totals (and will add to its freed
/// ones). Records are recycled through `next_free` while unused.
pub struct Sample {
    bucket: *mut Bucket,
    objects: f64,
    bytes: f64,
    /// The size class of a sampled small object, 0 for a large one.
    class: usize,
    /// The entry of the sized-free tables its frees read, counted in the
    /// profiler's `live_routes`; 0 if none (a large object, or a small one
    /// only unsized frees free: entry 0, size 0's, is read by no free).
    route: usize,
    next_free: *mut Sample,
}

/// The totals of one call stack. The stack's `depth` return addresses follow
/// the struct in memory.
///
/// Invariants: `alloc_* >= free_*` (up to rounding); `peak_*` is the
/// bucket's in-use value at the start of epoch `peak_epoch` (see the module
/// documentation), valid only while `peak_epoch` is the profiler's.
#[repr(C)]
struct Bucket {
    chain: *mut Bucket,
    all_next: *mut Bucket,
    hash: u64,
    depth: usize,
    alloc_objects: f64,
    alloc_bytes: f64,
    free_objects: f64,
    free_bytes: f64,
    peak_objects: f64,
    peak_bytes: f64,
    peak_epoch: u64,
}

impl Bucket {
    /// The bucket's stack.
    fn stack(&self) -> &[usize] {
        // SAFETY: buckets are made by Profiler::bucket with `depth` frames
        // right after the struct, in the same arena allocation.
        unsafe {
            core::slice::from_raw_parts((self as *const Bucket).add(1).cast::<usize>(), self.depth)
        }
    }

    fn inuse(&self) -> (f64, f64) {
        (
            self.alloc_objects - self.free_objects,
            self.alloc_bytes - self.free_bytes,
        )
    }
}

/// Memory for buckets and records: pages mapped from the OS layer, handed
/// out by bumping a pointer, never returned.
///
/// Invariant: `[next, end)` is committed memory nobody uses.
struct Arena {
    next: usize,
    end: usize,
    /// Bytes mapped so far.
    mapped: usize,
}

impl Arena {
    /// `size` bytes aligned to 16, or null if the OS refuses memory.
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let size = (size + 15) & !15;
        if self.end - self.next < size {
            let chunk = size.max(CHUNK).next_multiple_of(CHUNK);
            let p = LinuxOs.reserve(chunk, 4096);
            if p.is_null() {
                return null_mut();
            }
            // SAFETY: the range was just reserved, whole.
            if !unsafe { LinuxOs.commit(p, chunk) } {
                // SAFETY: as above; nothing uses it.
                unsafe { LinuxOs.release(p, chunk) };
                return null_mut();
            }
            self.next = p as usize;
            self.end = p as usize + chunk;
            self.mapped += chunk;
        }
        let p = self.next;
        self.next += size;
        p as *mut u8
    }
}

/// Everything the lock guards.
///
/// Invariants: every bucket is in `all` and in the chain of
/// `table[hash % TABLE_SIZE]` (`table` is null until the first bucket);
/// `inuse_bytes` is the sum over buckets of `alloc_bytes - free_bytes`;
/// `peak_bytes` is the highest it has been, reached at the start of
/// `peak_epoch`; `live_routes[e]` is the number of live records whose
/// `route` is `e`, and the sized frees that read entry `e` are routed to
/// the slow path exactly while it is not 0 (see
/// sizeclass::route_sized_frees); `reserve[c]` is null or a
/// Large span of the process heap that held a sampled object of class `c`,
/// now free: the heap still counts it in use, its `sample` is [`RESERVED`],
/// and nothing else refers to it (see [`sample_small`]); `weights[c]` is
/// `(rate, 1 / probability(class_size(c), rate))` for the last rate it was
/// computed at, or `(0, _)`.
struct Profiler {
    live_routes: [u32; FREE_ENTRIES],
    reserve: [*mut MSpan; NUM_CLASSES],
    weights: [(usize, f64); NUM_CLASSES],
    table: *mut *mut Bucket,
    all: *mut Bucket,
    nbuckets: usize,
    free_samples: *mut Sample,
    arena: Arena,
    inuse_bytes: f64,
    peak_bytes: f64,
    peak_epoch: u64,
}

// SAFETY: the raw pointers lead to arena memory that only the lock holder
// touches.
unsafe impl Send for Profiler {}

impl Profiler {
    const fn new() -> Self {
        Profiler {
            live_routes: [0; FREE_ENTRIES],
            reserve: [null_mut(); NUM_CLASSES],
            weights: [(0, 0.0); NUM_CLASSES],
            table: null_mut(),
            all: null_mut(),
            nbuckets: 0,
            free_samples: null_mut(),
            arena: Arena {
                next: 0,
                end: 0,
                mapped: 0,
            },
            inuse_bytes: 0.0,
            peak_bytes: 0.0,
            peak_epoch: 0,
        }
    }

    /// The bucket of `stack`, made if new; null if out of memory.
    fn bucket(&mut self, stack: &[usize], hash: u64) -> *mut Bucket {
        if self.table.is_null() {
            let t = self.arena.alloc(TABLE_SIZE * core::mem::size_of::<usize>());
            if t.is_null() {
                return null_mut();
            }
            // Fresh pages from the OS read as zero: every head is null.
            self.table = t.cast();
        }
        // SAFETY: the table has TABLE_SIZE heads.
        let head = unsafe { self.table.add(hash as usize % TABLE_SIZE) };
        // SAFETY: heads and chains hold live buckets (invariant).
        let mut b = unsafe { *head };
        while !b.is_null() {
            // SAFETY: as above.
            let bucket = unsafe { &*b };
            if bucket.hash == hash && bucket.stack() == stack {
                return b;
            }
            b = bucket.chain;
        }
        let size = core::mem::size_of::<Bucket>() + core::mem::size_of_val(stack);
        let b = self.arena.alloc(size).cast::<Bucket>();
        if b.is_null() {
            return b;
        }
        // SAFETY: b is `size` fresh bytes, aligned to 16: room for the struct
        // and the frames after it.
        unsafe {
            b.write(Bucket {
                chain: *head,
                all_next: self.all,
                hash,
                depth: stack.len(),
                alloc_objects: 0.0,
                alloc_bytes: 0.0,
                free_objects: 0.0,
                free_bytes: 0.0,
                peak_objects: 0.0,
                peak_bytes: 0.0,
                // A new bucket held nothing at the last peak.
                peak_epoch: self.peak_epoch,
            });
            core::ptr::copy_nonoverlapping(stack.as_ptr(), b.add(1).cast(), stack.len());
            *head = b;
        }
        self.all = b;
        self.nbuckets += 1;
        b
    }

    /// Saves the bucket's value at the last peak before it first changes
    /// after that peak (see the module documentation).
    fn touch(&self, b: &mut Bucket) {
        if b.peak_epoch != self.peak_epoch {
            (b.peak_objects, b.peak_bytes) = b.inuse();
            b.peak_epoch = self.peak_epoch;
        }
    }

    /// Counts a sampled allocation in its bucket and the totals.
    fn add(&mut self, b: &mut Bucket, objects: f64, bytes: f64) {
        self.touch(b);
        b.alloc_objects += objects;
        b.alloc_bytes += bytes;
        self.inuse_bytes += bytes;
        if self.inuse_bytes > self.peak_bytes {
            self.peak_bytes = self.inuse_bytes;
            self.peak_epoch += 1;
        }
    }

    /// Counts a live sampled object whose sized frees read `route` (0:
    /// none), routing them to the slow path if it is the first.
    fn count_live(&mut self, route: usize) {
        if route != 0 {
            let n = &mut self.live_routes[route];
            *n += 1;
            if *n == 1 {
                crate::sizeclass::route_sized_frees(route, true);
            }
        }
    }

    /// Undoes [`Profiler::count_live`]: the object is being freed.
    fn uncount_live(&mut self, route: usize) {
        if route != 0 {
            let n = &mut self.live_routes[route];
            *n -= 1;
            if *n == 0 {
                crate::sizeclass::route_sized_frees(route, false);
            }
        }
    }

    /// Counts the free of a sampled object.
    fn remove(&mut self, b: &mut Bucket, objects: f64, bytes: f64) {
        self.touch(b);
        b.free_objects += objects;
        b.free_bytes += bytes;
        self.inuse_bytes -= bytes;
    }

    /// Counts a sampled object of `size` bytes, standing for `objects`
    /// objects (a small one of `class`, or large if 0; its sized frees
    /// read `route`), in the bucket of `stack`: the record for its span, or
    /// null (nothing counted) if the profiler has no memory left.
    fn record(
        &mut self,
        stack: &Stack,
        size: usize,
        (class, route): (usize, usize),
        objects: f64,
    ) -> *mut Sample {
        let b = self.bucket(stack.frames(), stack.hash);
        if b.is_null() {
            return null_mut();
        }
        let rec = self.new_sample();
        if rec.is_null() {
            return rec;
        }
        let bytes = objects * size as f64;
        // SAFETY: b is a live bucket and rec an unused record, both in arena
        // memory only the lock holder (self) touches.
        unsafe {
            self.add(&mut *b, objects, bytes);
            rec.write(Sample {
                bucket: b,
                objects,
                bytes,
                class,
                route,
                next_free: null_mut(),
            });
        }
        self.count_live(route);
        rec
    }

    /// The objects a sample of `class` stands for at `rate`: `1/p`,
    /// computed once per class and rate.
    fn weight(&mut self, class: usize, rate: usize) -> f64 {
        let (at, w) = self.weights[class];
        if at == rate {
            return w;
        }
        let w = 1.0 / probability(crate::sizeclass::class_size(class), rate);
        self.weights[class] = (rate, w);
        w
    }

    /// A record to fill in, or null if out of memory.
    fn new_sample(&mut self) -> *mut Sample {
        let s = self.free_samples;
        if !s.is_null() {
            // SAFETY: records on the free list are unused (invariant).
            self.free_samples = unsafe { (*s).next_free };
            return s;
        }
        self.arena
            .alloc(core::mem::size_of::<Sample>())
            .cast::<Sample>()
    }
}

/// The mean bytes between samples; 0 when the profiler is off.
pub fn rate() -> usize {
    RATE.load(Ordering::Acquire)
}

/// Whether allocations are being sampled.
pub fn is_enabled() -> bool {
    rate() != 0
}

/// Starts sampling with a mean of `rate` bytes between samples, or stops
/// it (`0`; objects sampled before stay in the profile until freed). Each
/// thread takes a new rate at its next trip to the central lists (the
/// calling thread at once). The environment does the same before `main`
/// (`SPANALLOC_PROFILE`, `SPANALLOC_PROFILE_RATE`).
pub fn set_rate(rate: usize) {
    set_rate_quietly(rate);
    with_cache(|c| c.rearm_if_changed());
    if rate == 0 {
        release_reserve();
    }
}

/// [`set_rate`] without touching the calling thread's cache.
fn set_rate_quietly(rate: usize) {
    if rate > 0 && START_NS.load(Ordering::Relaxed) == 0 {
        START_NS.store(realtime_ns(), Ordering::Relaxed);
    }
    RATE.store(rate, Ordering::Release);
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// The profiler's epoch (see [`EPOCH`]); thread caches compare theirs.
#[inline]
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// Whether any object may have been sampled: frees must then look.
#[inline]
pub(crate) fn may_have_samples() -> bool {
    EPOCH.load(Ordering::Relaxed) != 0
}

/// Starts the profiler as the environment asks, once: at the first thread
/// cache's activation (and from the C library's constructor).
pub fn init_from_options() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::AcqRel) {
        return;
    }
    let o = crate::options::get();
    let asked = o.profile.is_some() || o.profile_signal != 0 || o.profile_rate_set;
    if asked && o.profile_rate > 0 {
        set_rate_quietly(o.profile_rate as usize);
    }
}

/// A seed for a thread's random number generator: distinct per thread and
/// the same from run to run of the same program (so are its samples).
pub(crate) fn seed() -> u64 {
    let n = SEEDS.fetch_add(1, Ordering::Relaxed) + 1;
    splitmix(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in (0, 1] (xorshift64*).
fn uniform(rng: &Cell<u64>) -> f64 {
    let mut x = rng.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng.set(x);
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    ((r >> 11) + 1) as f64 / (1u64 << 53) as f64
}

/// The allocations of `size`-byte objects up to and including the next
/// sampled one: geometric with success probability `1 - e^(-size/rate)`,
/// at least 1. [`crate::cache::SAMPLING_OFF`] while the profiler is off.
pub(crate) fn draw_countdown(rng: &Cell<u64>, size: usize) -> u64 {
    let rate = rate();
    if rate == 0 {
        return crate::cache::SAMPLING_OFF;
    }
    countdown(-uniform(rng).ln(), rate, size)
}

/// `⌈e·rate/size⌉` for an exponential draw `e >= 0`, within `1..=`
/// [`crate::cache::SAMPLING_OFF`].
fn countdown(e: f64, rate: usize, size: usize) -> u64 {
    let x = (e * rate as f64 / size as f64).min(crate::cache::SAMPLING_OFF as f64);
    // The ceiling without libm's ceil (a call: x86_64's baseline has no
    // rounding instruction); x >= 0, and the conversion truncates.
    let t = x as u64;
    (t + u64::from((t as f64) < x)).max(1)
}

/// The chance that an object of `size` bytes is sampled.
fn probability(size: usize, rate: usize) -> f64 {
    -(-(size as f64) / rate as f64).exp_m1()
}

/// Allocates the sampled block for a small object of `class` and records
/// it: a span of its own, the one the profiler kept from the last freed
/// sample of the class if there is one (skipping the page heap: its lock,
/// split and merge are a tenth of a sample's cost), else a fresh one. Null
/// if the profiler was turned off meanwhile or memory is refused (the
/// caller then serves an ordinary object): a block handed out always has
/// its record, so its size's sized frees look for it. Called by the
/// thread cache with its `in_profiler` set; `route` as for
/// [`crate::cache::MCache::alloc`].
pub(crate) fn sample_small(class: usize, route: usize) -> *mut u8 {
    let rate = rate();
    if rate == 0 {
        return null_mut();
    }
    let size = crate::sizeclass::class_size(class);
    let stack = Stack::capture();
    let mut pr = PROFILER.lock();
    let mut span = core::mem::replace(&mut pr.reserve[class], null_mut());
    if span.is_null() {
        // The heap's lock after the profiler's: the order of fork_lock.
        let (p, _) = HEAP.alloc_large(size, crate::sizeclass::PAGE_SIZE);
        if p.is_null() {
            return null_mut();
        }
        span = HEAP.object_span(p);
        debug_assert!(!span.is_null());
    }
    let objects = pr.weight(class, rate);
    let rec = pr.record(&stack, size, (class, route), objects);
    // SAFETY: the span is ours alone: just allocated, or taken from the
    // reserve (invariant: nothing else refers to it); its block is handed
    // out only after this, under the lock that guards the reserve.
    unsafe {
        if rec.is_null() {
            // No memory for the record: the span waits for the next sample,
            // unless sampling stopped meanwhile (its reserve was released).
            if self::rate() != 0 {
                (*span).sample = RESERVED;
                pr.reserve[class] = span;
            } else {
                drop(pr);
                (*span).sample = null_mut();
                HEAP.free_large((*span).start as *mut u8);
            }
            return null_mut();
        }
        (*span).sample = rec;
        (*span).start as *mut u8
    }
}

/// Decides whether the large object just allocated at `p` is sampled, and
/// records it if so.
pub(crate) fn maybe_sample_large(p: *mut u8, size: usize) {
    let rate = rate();
    if rate == 0 || p.is_null() {
        return;
    }
    with_cache(|c| {
        if !c.enter_profiler() {
            return;
        }
        let prob = if size >= rate {
            1.0
        } else {
            probability(size, rate)
        };
        if prob >= 1.0 || uniform(c.rng()) <= prob {
            // A large object dropped for want of profiler memory is simply
            // not sampled: its frees look its span up anyway.
            record_large(p, size, 1.0 / prob);
        }
        c.leave_profiler();
    });
}

/// Captures the stack and counts the sampled large object `p` in its
/// bucket; its span keeps the record (none if the profiler has no memory
/// left for it: the sample is dropped).
fn record_large(p: *mut u8, size: usize, objects: f64) {
    let stack = Stack::capture();
    let span = HEAP.object_span(p);
    debug_assert!(!span.is_null());
    let rec = PROFILER.lock().record(&stack, size, (0, 0), objects);
    // SAFETY: p was just allocated by this thread and is alone in its Large
    // span, which nobody else touches until p is handed out.
    unsafe { (*span).sample = rec };
}

/// Drops the record of the sampled object of span `s`, if it has one: its
/// object is being freed. True if the profiler keeps the span, free, for
/// its next sample of the same class: the caller must then leave it alone.
///
/// # Safety
/// `s` must be the Large span of a live object that the caller is freeing.
pub(crate) unsafe fn on_free(s: *mut MSpan) -> bool {
    // SAFETY: the caller owns the span's object (caller).
    let rec = unsafe { (*s).sample };
    if rec.is_null() {
        return false;
    }
    if rec == RESERVED {
        // The block of a span in the reserve is free: freed twice.
        // SAFETY: s is a span record (caller), never unmapped.
        let p = unsafe { (*s).start } as *mut u8;
        crate::fault::report_and_abort("free", p, crate::fault::PointerError::DoubleFree);
    }
    let mut pr = PROFILER.lock();
    // SAFETY: rec is a live record (the span held it) and its bucket a live
    // bucket; both are only touched under the lock.
    let class = unsafe {
        let r = &mut *rec;
        pr.remove(&mut *r.bucket, r.objects, r.bytes);
        pr.uncount_live(r.route);
        r.next_free = pr.free_samples;
        r.class
    };
    pr.free_samples = rec;
    // Only a span of its class's size: C's realloc may have grown it.
    // SAFETY: s is the caller's span (caller).
    let npages = unsafe { (*s).npages };
    let keep =
        class != 0 && pr.reserve[class].is_null() && npages == class_pages(class) && rate() != 0;
    // SAFETY: the caller is freeing the span's only object; the reserve is
    // guarded by the lock held.
    unsafe { (*s).sample = if keep { RESERVED } else { null_mut() } };
    if keep {
        pr.reserve[class] = s;
    }
    keep
}

/// The pages of the span a sampled object of `class` gets.
fn class_pages(class: usize) -> usize {
    crate::sizeclass::class_size(class).div_ceil(crate::sizeclass::PAGE_SIZE)
}

/// Frees the spans the profiler keeps for its next samples: when memory is
/// released to the OS, and when sampling stops.
pub(crate) fn release_reserve() {
    let kept = core::mem::replace(&mut PROFILER.lock().reserve, [null_mut(); NUM_CLASSES]);
    for s in kept.into_iter().filter(|s| !s.is_null()) {
        // SAFETY: a span taken from the reserve is a Large span of the
        // process heap whose block is free and referred to by nothing
        // (invariant): freeing it frees nobody's memory.
        unsafe {
            (*s).sample = null_mut();
            HEAP.free_large((*s).start as *mut u8);
        }
    }
}

/// Fills `frames` with the return addresses of the calling stack, innermost
/// first; the number filled. Allocates nothing. On x86_64 Linux, with the
/// profiler's caching walker (unwind.rs).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn capture(frames: &mut [usize; MAX_DEPTH]) -> usize {
    unwind::capture(frames)
}

/// Fills `frames` with the return addresses of the calling stack, innermost
/// first; the number filled. Allocates nothing.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn capture(frames: &mut [usize; MAX_DEPTH]) -> usize {
    let mut n = 0;
    // The synchronised variant would take a lock from a thread-local that
    // may allocate, which the profiler must not.
    // SAFETY: libgcc's _Unwind_Backtrace may run on several threads at once.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            frames[n] = frame.ip() as usize;
            n += 1;
            n < MAX_DEPTH
        });
    }
    n
}

/// A sample's call stack, captured without allocating, with its hash.
struct Stack {
    frames: [usize; MAX_DEPTH],
    depth: usize,
    hash: u64,
}

impl Stack {
    /// The calling stack. Inlined, so that it adds no frame of its own.
    #[inline(always)]
    fn capture() -> Stack {
        let mut frames = [0usize; MAX_DEPTH];
        let depth = capture(&mut frames);
        let hash = hash_stack(&frames[..depth]);
        Stack {
            frames,
            depth,
            hash,
        }
    }

    fn frames(&self) -> &[usize] {
        &self.frames[..self.depth]
    }
}

/// A hash of the frames: each multiplied on its own (the multiplies run in
/// parallel; FNV's chain of them was a sample's slowest arithmetic), folded
/// in by rotation, then mixed. The table compares whole stacks, so the hash
/// only has to spread them.
fn hash_stack(stack: &[usize]) -> u64 {
    let mut h: u64 = stack.len() as u64;
    for &f in stack {
        h = h.rotate_left(23) ^ (f as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    splitmix(h)
}

/// The estimated totals of each call site, copied under the lock.
fn snapshot() -> Vec<(Vec<usize>, [i64; NUM_VALUES])> {
    let pr = PROFILER.lock();
    let mut sites = Vec::with_capacity(pr.nbuckets);
    let mut b = pr.all;
    while !b.is_null() {
        // SAFETY: `all` links live buckets (invariant); we hold the lock.
        let bucket = unsafe { &*b };
        let (inuse_objects, inuse_bytes) = bucket.inuse();
        let (peak_objects, peak_bytes) = if bucket.peak_epoch == pr.peak_epoch {
            (bucket.peak_objects, bucket.peak_bytes)
        } else {
            (inuse_objects, inuse_bytes)
        };
        let values = [
            bucket.alloc_objects,
            bucket.alloc_bytes,
            inuse_objects,
            inuse_bytes,
            peak_objects,
            peak_bytes,
        ]
        .map(|v| v.max(0.0).round() as i64);
        sites.push((bucket.stack().to_vec(), values));
        b = bucket.all_next;
    }
    sites
}

/// Estimated totals over every call site, in the order of [`SAMPLE_TYPES`].
pub fn totals() -> [i64; NUM_VALUES] {
    let mut t = [0i64; NUM_VALUES];
    without_sampling(|| {
        for (_, values) in snapshot() {
            for (t, v) in t.iter_mut().zip(values) {
                *t += v;
            }
        }
    });
    t
}

/// Runs `f` with sampling suspended on this thread.
fn without_sampling<R>(f: impl FnOnce() -> R) -> R {
    with_cache(|c| {
        let entered = c.enter_profiler();
        let r = f();
        if entered {
            c.leave_profiler();
        }
        r
    })
}

/// The profile as a gzip-compressed pprof `profile.proto`, with named
/// frames. An error if the profiler has never been enabled.
pub fn encode() -> std::io::Result<Vec<u8>> {
    if EPOCH.load(Ordering::Acquire) == 0 {
        return Err(std::io::Error::other(
            "the heap profiler is off: set SPANALLOC_PROFILE or SPANALLOC_PROFILE_RATE, \
             or call spanalloc::profile::set_rate",
        ));
    }
    Ok(without_sampling(|| {
        let sites = snapshot();
        let samples: Vec<SiteSample<'_>> = sites
            .iter()
            .map(|(stack, values)| SiteSample {
                stack,
                values: *values,
            })
            .collect();
        let now = realtime_ns();
        let start = START_NS.load(Ordering::Relaxed);
        // time_nanos is when collection started: when sampling began.
        pprof::encode(
            &samples,
            rate().max(1) as i64,
            start as i64,
            now.saturating_sub(start) as i64,
        )
    }))
}

/// Writes the profile (see [`encode`]) to the file at `path`.
pub fn write(path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
    let bytes = encode()?;
    without_sampling(|| std::fs::write(path, bytes))
}

/// Writes the profile at exit, if `SPANALLOC_PROFILE` asks; a failure is
/// reported on stderr.
pub(crate) fn write_at_exit() {
    let Some(path) = crate::options::get().profile else {
        return;
    };
    let Ok(path) = path.to_str() else { return };
    if let Err(e) = write(path) {
        let mut w = crate::fault::FdWriter::new(2);
        let _ = core::fmt::Write::write_fmt(
            &mut w,
            format_args!("spanalloc: cannot write the heap profile to {path}: {e}\n"),
        );
    }
}

/// Bytes the profiler has mapped for its buckets and records.
pub fn metadata_bytes() -> usize {
    PROFILER.lock().arena.mapped
}

/// Takes the profiler's lock, before `fork()` (it comes before the heap's
/// locks: a profile being written allocates while holding it).
pub(crate) fn fork_lock() {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    unwind::fork_lock();
    PROFILER.raw_lock();
}

/// Releases the lock [`fork_lock`] took.
///
/// # Safety
/// The calling thread (or, in a forked child, the forking thread) must
/// hold it through [`fork_lock`].
pub(crate) unsafe fn fork_unlock() {
    // SAFETY: forwarded from the caller (who took both locks).
    unsafe {
        PROFILER.raw_unlock();
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        unwind::fork_unlock();
    }
}

pub use signal::start_signal_thread;

fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests;
