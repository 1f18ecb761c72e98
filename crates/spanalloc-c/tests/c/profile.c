/* The heap profiler seen from C: known amounts from distinct functions.
 *
 *   profile sites     holds 32 MiB from hold_big (malloc), 4 MiB from
 *                     hold_small (calloc), allocates and frees 512 MiB in
 *                     churn (malloc/realloc/free), then exits: the profile
 *                     is written at exit (SPANALLOC_PROFILE).
 *   profile on-demand PATH   sampling turned on by the program, profile
 *                     written with spanalloc_profile_write(PATH).
 *   profile signal PATH      raises SIGUSR2 (SPANALLOC_PROFILE_SIGNAL=12)
 *                     and waits for PATH.1 to appear.
 */
#include "common.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void *volatile sink;

__attribute__((noinline)) static void **hold_big(void) {
    size_t n = 32 * 1024;
    void **v = malloc(n * sizeof *v);
    CHECK(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = malloc(1024);
        CHECK(v[i]);
        memset(v[i], 1, 1024);
    }
    return v;
}

__attribute__((noinline)) static void **hold_small(void) {
    size_t n = 16 * 1024;
    void **v = malloc(n * sizeof *v);
    CHECK(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = calloc(1, 256);
        CHECK(v[i]);
    }
    return v;
}

__attribute__((noinline)) static void churn(void) {
    size_t total = 0;
    while (total < ((size_t)512 << 20)) {
        char *p = malloc(2048);
        CHECK(p);
        p[0] = 1;
        p = realloc(p, 6000);
        CHECK(p);
        p[5999] = 2;
        sink = p;
        free(p);
        total += 6000;
    }
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    if (strcmp(argv[1], "sites") == 0) {
        void **big = hold_big();
        void **small = hold_small();
        churn();
        sink = big;
        sink = small;
        printf("ok sites\n");
        return 0;
    }
    if (strcmp(argv[1], "on-demand") == 0) {
        CHECK(argc == 3 && spanalloc_profile_write);
        CHECK(spanalloc_profile_write(argv[2]) == -1); /* never turned on */
        spanalloc_profile_set_rate(8 * 1024);
        void **big = hold_big();
        CHECK(spanalloc_profile_write(argv[2]) == 0);
        sink = big;
        printf("ok on-demand\n");
        return 0;
    }
    if (strcmp(argv[1], "signal") == 0) {
        CHECK(argc == 3);
        void **big = hold_big();
        sink = big;
        char path[4096];
        snprintf(path, sizeof path, "%s.1", argv[2]);
        raise(SIGUSR2);
        for (int i = 0; i < 1000 && !exists(path); i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        CHECK(exists(path));
        printf("ok signal\n");
        return 0;
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
