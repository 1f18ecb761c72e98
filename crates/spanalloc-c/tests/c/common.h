/* Shared by the test programs: checks, and whether a block is spanalloc's.
 *
 * The programs run linked with libspanalloc.a or under
 * LD_PRELOAD=libspanalloc.so; spanalloc's own calls (include/spanalloc.h)
 * are made weak so that both work (and so that a run without spanalloc
 * fails clearly rather than failing to start). */
#ifndef SPANALLOC_TEST_COMMON_H
#define SPANALLOC_TEST_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spanalloc.h"
#pragma weak spanalloc_usable_size
#pragma weak spanalloc_release_memory
#pragma weak spanalloc_print_stats
#pragma weak spanalloc_dump_heap
#pragma weak spanalloc_profile_write
#pragma weak spanalloc_profile_set_rate

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* Whether p is the start of a live block spanalloc handed out. */
static inline int ours(const void *p) {
    if (!spanalloc_usable_size) {
        fprintf(stderr, "spanalloc is not loaded\n");
        exit(2);
    }
    const void *volatile q = p; /* hides malloc(0)'s size from gcc's checks */
    return spanalloc_usable_size(q) > 0;
}

static inline int aligned_to(const void *p, size_t align) {
    return ((uintptr_t)p & (align - 1)) == 0;
}

/* Fills n bytes at p with a pattern that depends on seed, and checks it. */
static inline void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed * 31 + i * 7);
}
static inline int filled(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 31 + i * 7)) return 0;
    return 1;
}

/* A small fast random generator (xorshift64*), one state per thread. */
static inline uint64_t rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Runs the case of this program named by argv[1]. */
struct test_case {
    const char *name;
    void (*run)(void);
};
static inline int run_case(const struct test_case *cases, size_t n, int argc,
                           char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(cases[i].name, argv[1])) {
            cases[i].run();
            printf("ok %s\n", argv[1]);
            return 0;
        }
    }
    fprintf(stderr, "no case %s\n", argv[1]);
    return 2;
}

#endif
