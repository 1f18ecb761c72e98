/* spanalloc.h: spanalloc's own calls, for C and C++ programs that use
 * libspanalloc (a memory allocator built the way the Go runtime's is).
 *
 * libspanalloc replaces malloc, free, calloc, realloc, reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, malloc_trim, malloc_stats, C23's free_sized and
 * free_aligned_sized, glibc's __libc_* names, and every C++ operator new and
 * operator delete. Those need no header beyond the usual ones. Two ways in:
 *
 *   LD_PRELOAD=/path/to/libspanalloc.so program       (no rebuild)
 *
 *   cc prog.o -L/path/to -lspanalloc                  (dynamic link)
 *
 *   cc prog.o -Wl,--whole-archive /path/to/libspanalloc.a \
 *      -Wl,--no-whole-archive -lpthread -ldl -lm       (static link)
 *
 * (--whole-archive: every replaced function and the library's constructor
 * must come from spanalloc; taking malloc from spanalloc and calloc from the
 * C library would mix two heaps.) The library must be in the process from
 * its start: loaded later with dlopen, it would be handed blocks that the
 * C library allocated before, and stop the program.
 *
 * Environment:
 *   SPANALLOC_STATS=1     print the statistics report on stderr at exit
 *   SPANALLOC_STATS=json  the same, as one line of JSON
 *   SPANALLOC_CHECK=1     checked mode: every free is verified (double frees
 *                         and foreign pointers always stop the program);
 *                         slow, for debugging
 *
 * Behaviour to know:
 *   - free, realloc or operator delete of a pointer spanalloc did not hand
 *     out stops the program (SIGABRT) with "spanalloc: free(): ..." naming
 *     the pointer; outside checked mode, only an immediate double free is
 *     caught.
 *   - realloc(p, 0) frees p and returns NULL, as glibc does.
 *   - aligned_alloc and memalign refuse an alignment that is not a power of
 *     two (NULL, errno EINVAL); glibc rounds it up in memalign (and, before
 *     2.38, in aligned_alloc).
 *   - operator new calls the new-handler and throws std::bad_alloc as the
 *     C++ standard asks; the nothrow forms return NULL at once, without
 *     calling the new-handler.
 *
 * None of the calls below allocates, except spanalloc_profile_write.
 */
#ifndef SPANALLOC_H
#define SPANALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns free memory to the operating system now (the calling thread's
 * cache, the central caches, every free page) and returns the number of
 * bytes released. The pages stay mapped and are reused without a system
 * call; malloc_trim(0) does the same and returns whether anything was
 * released. */
size_t spanalloc_release_memory(void);

/* Writes the statistics report (a text table, or JSON when
 * SPANALLOC_STATS=json) to the file descriptor fd: bytes live, cached,
 * mapped and released, and per size class the allocations, frees, live and
 * cached objects and spans. Allocates nothing, so it is safe to call from
 * anywhere the allocator may be called. malloc_stats() writes the same
 * report to stderr. */
void spanalloc_print_stats(int fd);

/* The number of bytes usable at p (at least what was asked for), or 0 if p
 * is not the start of a live block spanalloc handed out: this also answers
 * "is this block spanalloc's?". Any pointer may be passed; it is looked
 * up, never read. Unlike malloc_usable_size, it never depends on which
 * allocator the symbol resolves to. */
size_t spanalloc_usable_size(const void *p);

/*
 * Writes the heap dump (every region and span, as JSON: the format that
 * `spanalloc-inspect heap FILE` reads and draws) to the file at `path`.
 * Returns 0 on success, -1 if the file cannot be written. Allocates
 * nothing. SPANALLOC_DUMP=PATH writes the same at exit.
 */
int spanalloc_dump_heap(const char *path);

/*
 * The sampled heap profiler. Sampling is on when SPANALLOC_PROFILE=PATH
 * (written at exit), SPANALLOC_PROFILE_RATE=BYTES (mean bytes between
 * samples, 512K by default) or SPANALLOC_PROFILE_SIGNAL=N is set, or after
 * spanalloc_profile_set_rate.
 *
 * spanalloc_profile_write writes the profile now, as a gzip-compressed
 * pprof profile.proto (for `go tool pprof` and `spanalloc-inspect profile`)
 * with sample types alloc_objects, alloc_space, inuse_objects, inuse_space,
 * peak_objects and peak_space, to the file at `path`. Returns 0 on
 * success, -1 if sampling was never on or the file cannot be written.
 * It allocates (naming the frames), so do not call it from a signal
 * handler: SPANALLOC_PROFILE_SIGNAL does that safely.
 *
 * spanalloc_profile_set_rate starts sampling with a mean of `bytes` bytes
 * between samples, or stops it (0; objects sampled before stay in the
 * profile until freed).
 */
int spanalloc_profile_write(const char *path);
void spanalloc_profile_set_rate(size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* SPANALLOC_H */
