/* The C contract of each allocation function, one case per run:
 * `semantics CASE` prints "ok CASE" and exits 0, or names the failed check
 * on stderr and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <unistd.h>

#include "common.h"

/* C23 and glibc extras that glibc 2.36's headers do not all declare. */
void free_sized(void *p, size_t size) __attribute__((weak));
void free_aligned_sized(void *p, size_t align, size_t size) __attribute__((weak));
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);

/* Sizes the compiler cannot see (so it cannot fold the calls away). */
static volatile size_t huge = SIZE_MAX;
static volatile size_t half = SIZE_MAX / 2 + 1;
static volatile size_t two33 = (size_t)1 << 33;

static const size_t sizes[] = {1,    7,     8,     15,    16,     17,     24,
                               100,  255,   256,   1000,  4096,   5000,   32768,
                               32769, 65536, 100000, 1 << 20, 5 << 20, 33 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* The alignment C's malloc owes a block of n bytes. */
static size_t c_align(size_t n) { return n >= 16 ? 16 : 8; }

static void malloc_basic(void) {
    void *p[NSIZES];
    for (size_t i = 0; i < NSIZES; i++) {
        p[i] = malloc(sizes[i]);
        CHECK(p[i] != NULL);
        CHECK(ours(p[i]));
        CHECK(aligned_to(p[i], c_align(sizes[i])));
        CHECK(malloc_usable_size(p[i]) >= sizes[i]);
        fill(p[i], sizes[i], (unsigned)i);
    }
    for (size_t i = 0; i < NSIZES; i++) {
        CHECK(filled(p[i], sizes[i], (unsigned)i));
        free(p[i]);
    }
}

static void malloc_zero(void) {
    void *a = malloc(0), *b = malloc(0);
    CHECK(a != NULL && b != NULL && a != b);
    CHECK(ours(a) && ours(b));
    free(a);
    free(b);
}

static void free_null(void) {
    errno = 1234;
    free(NULL);
    free_sized(NULL, 0);
    CHECK(errno == 1234);
}

/* Successful calls leave errno alone (POSIX requires it of free; glibc
 * keeps it in the others too), also when memory goes back to the OS. */
static void errno_kept(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        errno = 1234;
        void *p = malloc(sizes[i]);
        void *q = calloc(1, sizes[i]);
        void *r = aligned_alloc(4096, sizes[i]);
        CHECK(p && q && r);
        p = realloc(p, sizes[i] * 2);
        CHECK(p);
        free(p);
        free(q);
        free(r);
        CHECK(errno == 1234);
    }
    errno = 1234;
    (void)malloc_trim(0);
    (void)spanalloc_release_memory();
    CHECK(errno == 1234);
}

static void malloc_enomem(void) {
    errno = 0;
    CHECK(malloc(huge) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(malloc(half) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(malloc(huge - 4096) == NULL);
    CHECK(errno == ENOMEM);
    /* Still works afterwards. */
    void *p = malloc(100);
    CHECK(p && ours(p));
    free(p);
}

static void calloc_zeroes(void) {
    /* Dirty blocks of every size, free them, then calloc the same sizes. */
    for (size_t i = 0; i < NSIZES; i++) {
        void *d = malloc(sizes[i]);
        CHECK(d);
        memset(d, 0xAB, sizes[i]);
        free(d);
        unsigned char *z = calloc(1, sizes[i]);
        CHECK(z && ours(z));
        CHECK(aligned_to(z, c_align(sizes[i])));
        for (size_t j = 0; j < sizes[i]; j++) CHECK(z[j] == 0);
        free(z);
    }
    unsigned char *m = calloc(1000, 1000);
    CHECK(m);
    for (size_t j = 0; j < 1000 * 1000; j++) CHECK(m[j] == 0);
    free(m);
    void *z = calloc(0, 0);
    CHECK(z && ours(z));
    free(z);
}

static void calloc_overflow(void) {
    errno = 0;
    CHECK(calloc(half, 2) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(calloc(two33, two33) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(calloc(1, huge) == NULL);
    CHECK(errno == ENOMEM);
}

static void realloc_contents(void) {
    /* Grow through every size, then shrink back: the common prefix stays. */
    char *p = realloc(NULL, 1);
    CHECK(p && ours(p));
    fill(p, 1, 9);
    size_t have = 1;
    for (size_t i = 0; i < NSIZES; i++) {
        p = realloc(p, sizes[i]);
        CHECK(p && ours(p));
        CHECK(aligned_to(p, c_align(sizes[i])));
        CHECK(filled(p, have, 9));
        fill(p, sizes[i], 9);
        have = sizes[i];
    }
    for (size_t i = NSIZES; i-- > 0;) {
        p = realloc(p, sizes[i]);
        CHECK(p && ours(p));
        CHECK(filled(p, sizes[i], 9));
    }
    /* The same size, and a little more within the block, keep the block. */
    size_t u = malloc_usable_size(p);
    CHECK(realloc(p, u) == p);
    /* glibc's realloc(p, 0): frees p, returns null. */
    errno = 0;
    CHECK(realloc(p, 0) == NULL);
    CHECK(errno == 0);
    /* realloc(NULL, 0) is malloc(0). */
    void *z = realloc(NULL, 0);
    CHECK(z && ours(z));
    free(z);
}

static void realloc_enomem(void) {
    char *p = malloc(100);
    CHECK(p);
    fill(p, 100, 3);
    errno = 0;
    CHECK(realloc(p, huge) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(ours(p) && filled(p, 100, 3));
    errno = 0;
    CHECK(realloc(p, half) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(ours(p) && filled(p, 100, 3));
    free(p);
}

static void reallocarray_overflow(void) {
    int *a = reallocarray(NULL, 100, sizeof(int));
    CHECK(a && ours(a));
    for (int i = 0; i < 100; i++) a[i] = i;
    a = reallocarray(a, 100000, sizeof(int));
    CHECK(a && ours(a));
    for (int i = 0; i < 100; i++) CHECK(a[i] == i);
    errno = 0;
    CHECK(reallocarray(a, half, 4) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(ours(a) && a[99] == 99);
    free(a);
}

static void posix_memalign_semantics(void) {
    for (size_t align = sizeof(void *); align <= ((size_t)1 << 22); align <<= 1) {
        for (size_t i = 0; i < NSIZES; i += 3) {
            void *p = NULL;
            errno = 1234;
            CHECK(posix_memalign(&p, align, sizes[i]) == 0);
            CHECK(errno == 1234);
            CHECK(p && ours(p) && aligned_to(p, align));
            CHECK(malloc_usable_size(p) >= sizes[i]);
            fill(p, sizes[i], 1);
            free(p);
        }
        void *z = NULL;
        CHECK(posix_memalign(&z, align, 0) == 0 && z && aligned_to(z, align));
        free(z);
    }
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1234;
        errno = 1234;
        CHECK(posix_memalign(&p, bad[i], 64) == EINVAL);
        CHECK(p == (void *)0x1234);
        CHECK(errno == 1234);
    }
    void *p = (void *)0x1234;
    errno = 1234;
    CHECK(posix_memalign(&p, 64, huge) == ENOMEM);
    CHECK(p == (void *)0x1234);
    CHECK(errno == 1234);
    CHECK(posix_memalign(&p, (size_t)1 << 62, 1) == ENOMEM);
    CHECK(p == (void *)0x1234);
}

/* aligned_alloc and memalign share their contract. */
static void check_aligned(void *(*f)(size_t, size_t)) {
    for (size_t align = 1; align <= ((size_t)1 << 22); align <<= 1) {
        for (size_t i = 0; i < NSIZES; i += 2) {
            void *p = f(align, sizes[i]);
            CHECK(p && ours(p) && aligned_to(p, align));
            CHECK(aligned_to(p, c_align(sizes[i])));
            CHECK(malloc_usable_size(p) >= sizes[i]);
            fill(p, sizes[i], 2);
            free(p);
        }
    }
    static const size_t bad[] = {0, 3, 12, 24, 100, 4095};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(f(bad[i], 64) == NULL);
        CHECK(errno == EINVAL);
    }
    errno = 0;
    CHECK(f(64, huge) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(f((size_t)1 << 62, 1) == NULL);
    CHECK(errno == ENOMEM);
}

static void aligned_alloc_semantics(void) { check_aligned(aligned_alloc); }
static void memalign_semantics(void) { check_aligned(memalign); }

static void valloc_semantics(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < NSIZES; i++) {
        void *p = valloc(sizes[i]);
        CHECK(p && ours(p) && aligned_to(p, page));
        CHECK(malloc_usable_size(p) >= sizes[i]);
        fill(p, sizes[i], 4);
        free(p);
    }
    errno = 0;
    CHECK(valloc(huge) == NULL);
    CHECK(errno == ENOMEM);
}

static void pvalloc_semantics(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < NSIZES; i++) {
        void *p = pvalloc(sizes[i]);
        size_t rounded = (sizes[i] + page - 1) / page * page;
        CHECK(p && ours(p) && aligned_to(p, page));
        CHECK(malloc_usable_size(p) >= rounded);
        fill(p, rounded, 5);
        free(p);
    }
    void *z = pvalloc(0);
    CHECK(z && aligned_to(z, page) && malloc_usable_size(z) >= page);
    free(z);
    errno = 0;
    CHECK(pvalloc(huge) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(pvalloc(huge - page) == NULL);
    CHECK(errno == ENOMEM);
}

static void usable_size(void) {
    CHECK(malloc_usable_size(NULL) == 0);
    for (size_t n = 0; n < 70000; n += n < 600 ? 1 : 997) {
        unsigned char *p = malloc(n);
        CHECK(p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n);
        CHECK(spanalloc_usable_size(p) == u);
        memset(p, 0x5A, u); /* every usable byte may be written */
        free(p);
    }
    int local;
    CHECK(spanalloc_usable_size(&local) == 0);
    CHECK(spanalloc_usable_size(NULL) == 0);
}

/* Resident memory of this process, in bytes. */
static size_t resident(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f);
    unsigned long total, rss;
    CHECK(fscanf(f, "%lu %lu", &total, &rss) == 2);
    fclose(f);
    return rss * (size_t)sysconf(_SC_PAGESIZE);
}

/* malloc_trim (large blocks) and spanalloc_release_memory (small ones,
 * which sit in thread and central caches) give freed memory back to the
 * OS: resident memory drops by most of what was freed. (Whether the pages
 * went back during the frees or during the call depends on the
 * scavenger's policy, so the return values are only checked for range.) */
static void trim(void) {
    enum { N = 64, MIB = 1 << 20, SMALL = 200000 };
    static void *p[SMALL];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(MIB);
        CHECK(p[i]);
        memset(p[i], 1, MIB);
    }
    size_t live = resident();
    for (int i = 0; i < N; i++) free(p[i]);
    int r = malloc_trim(0);
    CHECK(r == 0 || r == 1);
    size_t after = resident();
    CHECK(live > after && live - after >= 48 * MIB);

    for (int i = 0; i < SMALL; i++) {
        p[i] = malloc(256);
        CHECK(p[i]);
        memset(p[i], 2, 256);
    }
    live = resident();
    for (int i = 0; i < SMALL; i++) free(p[i]);
    (void)spanalloc_release_memory();
    after = resident();
    CHECK(live > after && live - after >= 32 * MIB);

    /* Still usable afterwards, and zeroed memory is still zero. */
    unsigned char *z = calloc(1, MIB);
    CHECK(z && ours(z));
    for (size_t j = 0; j < MIB; j++) CHECK(z[j] == 0);
    free(z);
    for (int i = 0; i < N; i++) {
        p[i] = malloc(MIB);
        CHECK(p[i]);
        fill(p[i], MIB, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        CHECK(filled(p[i], MIB, (unsigned)i));
        free(p[i]);
    }
}

static void stats(void) {
    void *keep = malloc(777);
    CHECK(keep);
    fflush(stdout);
    malloc_stats();            /* the report, on stderr */
    spanalloc_print_stats(1); /* the same, on stdout */
    free(keep);
}

/* spanalloc_dump_heap: a heap dump of the live heap, to the path in argv. */
static void dump(void) {
    char *held[64];
    for (int i = 0; i < 64; i++) {
        held[i] = malloc(1000);
        memset(held[i], i, 1000);
    }
    const char *path = getenv("DUMP_PATH");
    CHECK(path != NULL);
    CHECK(spanalloc_dump_heap(path) == 0);
    CHECK(spanalloc_dump_heap("/nonexistent-dir/x.json") == -1);
    for (int i = 0; i < 64; i++) free(held[i]);
    puts("dump written");
}

static void libc_internal(void) {
    /* The C library's own allocations are spanalloc's too. */
    char *s = strdup("spanalloc");
    CHECK(s && ours(s) && !strcmp(s, "spanalloc"));
    char *t = NULL;
    CHECK(asprintf(&t, "%s-%d", s, 42) > 0);
    CHECK(t && ours(t) && !strcmp(t, "spanalloc-42"));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f);
    for (int i = 0; i < 10000; i++) fprintf(f, "%d,", i);
    fclose(f);
    CHECK(buf && ours(buf) && len > 10000);
    free(s);
    free(t);
    free(buf);
}

static void libc_names(void) {
    void *a = __libc_malloc(40), *b = __libc_calloc(4, 10), *c = __libc_memalign(256, 40);
    CHECK(a && b && c && ours(a) && ours(b) && ours(c) && aligned_to(c, 256));
    a = __libc_realloc(a, 4000);
    CHECK(a && ours(a));
    __libc_free(a);
    __libc_free(b);
    __libc_free(c);
}

static void sized_frees(void) {
    void *p = malloc(48);
    CHECK(p);
    free_sized(p, 48);
    void *q = aligned_alloc(128, 256);
    CHECK(q && aligned_to(q, 128));
    free_aligned_sized(q, 128, 256);
    void *r = malloc(1 << 20);
    CHECK(r);
    free_sized(r, 1 << 20);
}

/* Many allocations (the stats test reads the report of this case). */
static void workload(void) {
    enum { N = 20000 };
    static void *p[N];
    uint64_t s = 42;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = rnd(&s) % (i % 100 == 0 ? 200000 : 600);
            p[i] = malloc(n);
            CHECK(p[i]);
            fill(p[i], n < 64 ? n : 64, (unsigned)i);
        }
        for (int i = 0; i < N; i++) free(p[i]);
    }
    puts("workload done");
}

/* The base address of the object (executable or library) defining f. */
static const void *home(const void *f) {
    Dl_info info;
    CHECK(dladdr(f, &info) != 0);
    return info.dli_fbase;
}

/* Every allocation function this program calls is spanalloc's. */
static void symbols(void) {
    const void *ours_home = home((const void *)spanalloc_usable_size);
    const void *fns[] = {
        (const void *)malloc,        (const void *)free,
        (const void *)calloc,        (const void *)realloc,
        (const void *)reallocarray,  (const void *)posix_memalign,
        (const void *)aligned_alloc, (const void *)memalign,
        (const void *)valloc,        (const void *)pvalloc,
        (const void *)malloc_usable_size, (const void *)malloc_trim,
        (const void *)malloc_stats,  (const void *)free_sized,
        (const void *)free_aligned_sized, (const void *)__libc_malloc,
        (const void *)__libc_free,   (const void *)__libc_calloc,
        (const void *)__libc_realloc, (const void *)__libc_memalign,
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (home(fns[i]) != ours_home) {
            fprintf(stderr, "function %zu is not spanalloc's\n", i);
            exit(1);
        }
    }
}

static const struct test_case cases[] = {
    {"symbols", symbols},
    {"malloc_basic", malloc_basic},
    {"malloc_zero", malloc_zero},
    {"free_null", free_null},
    {"errno_kept", errno_kept},
    {"malloc_enomem", malloc_enomem},
    {"calloc_zeroes", calloc_zeroes},
    {"calloc_overflow", calloc_overflow},
    {"realloc_contents", realloc_contents},
    {"realloc_enomem", realloc_enomem},
    {"reallocarray_overflow", reallocarray_overflow},
    {"posix_memalign", posix_memalign_semantics},
    {"aligned_alloc", aligned_alloc_semantics},
    {"memalign", memalign_semantics},
    {"valloc", valloc_semantics},
    {"pvalloc", pvalloc_semantics},
    {"usable_size", usable_size},
    {"malloc_trim", trim},
    {"stats", stats},
    {"dump", dump},
    {"libc_internal", libc_internal},
    {"libc_names", libc_names},
    {"sized_frees", sized_frees},
    {"workload", workload},
};

int main(int argc, char **argv) {
    return run_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
