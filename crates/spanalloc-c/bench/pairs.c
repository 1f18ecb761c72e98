/* malloc+free pairs of 64 bytes: the C fast path, for comparing allocators
 * loaded with LD_PRELOAD (see ARCHITECTURE.md, "Thread caches in the C
 * library"). Prints nanoseconds per pair.
 *
 *   gcc -O2 -o /tmp/pairs crates/spanalloc-c/bench/pairs.c
 *   /tmp/pairs; LD_PRELOAD=target/release/libspanalloc.so /tmp/pairs
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 50000000;
    void *volatile sink;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        void *p = malloc(64);
        sink = p;
        free(p);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)sink;
    printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    return 0;
}
