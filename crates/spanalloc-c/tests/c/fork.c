/* fork() from a multi-threaded parent while its other threads allocate:
 * the child must find the allocator usable (no lock left held by a thread
 * that does not exist in the child). `fork CASE`. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

enum { WORKERS = 3, FORKS = 60, SLOTS = 512 };

static atomic_int stop;

/* Allocates and frees all the time, in every size range. */
static void *worker(void *arg) {
    uint64_t rng = (uintptr_t)arg * 131 + 7;
    void *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    unsigned n = 0;
    while (!atomic_load(&stop)) {
        unsigned i = rnd(&rng) % SLOTS;
        if (slot[i]) {
            CHECK(filled(slot[i], size[i] < 32 ? size[i] : 32, i));
            free(slot[i]);
        }
        uint64_t r = rnd(&rng);
        size[i] = r % 100 < 95 ? r % 1024 : r % 200000;
        slot[i] = malloc(size[i]);
        CHECK(slot[i]);
        fill(slot[i], size[i] < 32 ? size[i] : 32, i);
        n++;
    }
    for (unsigned i = 0; i < SLOTS; i++) free(slot[i]);
    return NULL;
}

/* What a child does: allocate, check, free, with a thread of its own too. */
static void *child_thread(void *arg) {
    (void)arg;
    void *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = malloc((size_t)i * 13);
        CHECK(p[i] && ours(p[i]));
        fill(p[i], (size_t)i * 13, (unsigned)i);
    }
    for (int i = 0; i < 1000; i++) {
        CHECK(filled(p[i], (size_t)i * 13, (unsigned)i));
        free(p[i]);
    }
    return NULL;
}

/* The statistics report's count of threads with an active cache. */
static long thread_caches(void) {
    FILE *f = tmpfile();
    CHECK(f);
    spanalloc_print_stats(fileno(f));
    rewind(f);
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, " thread_caches %ld", &n) == 1) break;
    fclose(f);
    return n;
}

static void child(void) {
    alarm(20); /* a deadlock in the child fails the test rather than hanging it */
    /* The parent's other threads do not exist here: their caches left the
       registry, so this thread gets the whole thread-cache budget. (In
       checked mode no thread has a cache.) */
    CHECK(thread_caches() == (getenv("SPANALLOC_CHECK") ? 0 : 1));
    child_thread(NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, child_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    void *big = malloc(1 << 20);
    CHECK(big && ours(big));
    free(big);
    exit(0);
}

static void fork_while_allocating(void) {
    alarm(100);
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int f = 0; f < FORKS; f++) {
        /* The parent's own allocations around the fork. */
        char *before = malloc(100);
        CHECK(before);
        fill(before, 100, 77);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            CHECK(filled(before, 100, 77));
            free(before);
            child();
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d: status %#x (signal %d)\n", f, status,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            exit(1);
        }
        CHECK(filled(before, 100, 77));
        free(before);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) CHECK(pthread_join(t[i], NULL) == 0);
}

static const struct test_case cases[] = {
    {"fork_while_allocating", fork_while_allocating},
};

int main(int argc, char **argv) {
    return run_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
