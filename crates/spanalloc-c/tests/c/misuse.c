/* Misuse that must stop the program: each case prints the pointer it is
 * about to misuse ("ptr %p") and then misuses it; the test expects SIGABRT
 * and spanalloc's message naming the call and the pointer. `misuse CASE`. */
#include <sys/mman.h>

#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wuse-after-free"

#include "common.h"

static void announce(const void *p) {
    printf("ptr %p\n", p);
    fflush(stdout);
}

static void free_stack(void) {
    char local[64];
    announce(local);
    free(local);
}

static void free_mmap(void) {
    void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    announce(p);
    free(p);
}

static void free_interior(void) {
    char *p = malloc(64);
    CHECK(p);
    announce(p + 16);
    free(p + 16);
}

static void realloc_foreign(void) {
    static char global[64];
    announce(global);
    (void)!realloc(global, 128);
}

/* The pointer is announced before the frees: printing allocates (stdout's
 * buffer), which could otherwise reuse the freed block's pages. A block
 * kept alive keeps the span in use. */
static void realloc_zero_foreign(void) {
    int local;
    announce(&local);
    (void)!realloc(&local, 0);
}

static void double_free(void) {
    void *keep = malloc(32), *p = malloc(32);
    CHECK(keep && p);
    announce(p);
    free(p);
    free(p);
    free(keep);
}

/* A double free with other frees in between (caught in checked mode). */
static void double_free_later(void) {
    void *keep = malloc(32), *p = malloc(32), *q[10];
    CHECK(keep && p);
    for (int i = 0; i < 10; i++) q[i] = malloc(32);
    announce(p);
    free(p);
    for (int i = 0; i < 10; i++) free(q[i]);
    free(p);
    free(keep);
}

static const struct test_case cases[] = {
    {"free_stack", free_stack},
    {"free_mmap", free_mmap},
    {"free_interior", free_interior},
    {"realloc_foreign", realloc_foreign},
    {"realloc_zero_foreign", realloc_zero_foreign},
    {"double_free", double_free},
    {"double_free_later", double_free_later},
};

int main(int argc, char **argv) {
    return run_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
