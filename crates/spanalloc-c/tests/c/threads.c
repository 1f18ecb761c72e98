/* Threads: blocks allocated in one thread and freed in another, threads
 * that exit holding cached blocks, and contents checked on every hand-over.
 * `threads CASE`. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common.h"

/* A block handed between threads: its size and seed come with it. */
struct block {
    size_t size;
    unsigned seed;
    unsigned char data[];
};

static struct block *make_block(uint64_t *rng, unsigned seed) {
    uint64_t r = rnd(rng);
    /* Mostly small, some medium, a few large. */
    size_t size = r % 100 < 90 ? r % 512 : r % 100 < 99 ? r % 30000 : r % 300000;
    struct block *b = malloc(sizeof *b + size);
    CHECK(b && ours(b));
    b->size = size;
    b->seed = seed;
    fill(b->data, size, seed);
    return b;
}

static void check_and_free(struct block *b) {
    CHECK(ours(b));
    CHECK(filled(b->data, b->size, b->seed));
    free(b);
}

/* --- producer/consumer pairs over a bounded ring (every free is remote) --- */

enum { RING = 256, PAIRS = 3, PER_PRODUCER = 60000 };

struct ring {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    struct block *slot[RING];
    size_t head, tail;
};

static struct ring rings[PAIRS];

static void *producer(void *arg) {
    struct ring *q = arg;
    uint64_t rng = (uintptr_t)arg | 1;
    for (unsigned i = 0; i < PER_PRODUCER; i++) {
        struct block *b = make_block(&rng, i);
        pthread_mutex_lock(&q->lock);
        while (q->tail - q->head == RING) pthread_cond_wait(&q->not_full, &q->lock);
        q->slot[q->tail++ % RING] = b;
        pthread_cond_signal(&q->not_empty);
        pthread_mutex_unlock(&q->lock);
    }
    return NULL;
}

static void *consumer(void *arg) {
    struct ring *q = arg;
    for (unsigned i = 0; i < PER_PRODUCER; i++) {
        pthread_mutex_lock(&q->lock);
        while (q->tail == q->head) pthread_cond_wait(&q->not_empty, &q->lock);
        struct block *b = q->slot[q->head++ % RING];
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->lock);
        CHECK(b->seed == i);
        check_and_free(b);
    }
    return NULL;
}

static void producer_consumer(void) {
    pthread_t t[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        pthread_mutex_init(&rings[i].lock, NULL);
        pthread_cond_init(&rings[i].not_full, NULL);
        pthread_cond_init(&rings[i].not_empty, NULL);
        CHECK(pthread_create(&t[2 * i], NULL, producer, &rings[i]) == 0);
        CHECK(pthread_create(&t[2 * i + 1], NULL, consumer, &rings[i]) == 0);
    }
    for (int i = 0; i < 2 * PAIRS; i++) CHECK(pthread_join(t[i], NULL) == 0);
}

/* --- short-lived threads: each allocates, frees some (filling its cache),
 * and exits leaving the rest to the main thread --- */

enum { WAVES = 20, PER_WAVE = 8, KEEP = 500 };

static void *short_lived(void *arg) {
    uint64_t rng = (uintptr_t)arg * 7919 + 1;
    struct block **kept = malloc(KEEP * sizeof *kept);
    CHECK(kept);
    for (int i = 0; i < 4 * KEEP; i++) {
        struct block *b = make_block(&rng, (unsigned)i);
        if (i % 4 == 0) {
            kept[i / 4] = b;
        } else {
            check_and_free(b);
        }
    }
    return kept; /* freed by the main thread, after this thread is gone */
}

static void thread_exit(void) {
    for (int w = 0; w < WAVES; w++) {
        pthread_t t[PER_WAVE];
        for (int i = 0; i < PER_WAVE; i++)
            CHECK(pthread_create(&t[i], NULL, short_lived,
                                 (void *)(uintptr_t)(w * PER_WAVE + i + 1)) == 0);
        for (int i = 0; i < PER_WAVE; i++) {
            struct block **kept;
            CHECK(pthread_join(t[i], (void **)&kept) == 0);
            for (int k = 0; k < KEEP; k++) {
                CHECK(kept[k]->seed == (unsigned)(4 * k));
                check_and_free(kept[k]);
            }
            free(kept);
        }
    }
}

/* --- detached threads that exit while others allocate --- */

static atomic_int running;

static void *detached(void *arg) {
    uint64_t rng = (uintptr_t)arg + 17;
    for (int i = 0; i < 2000; i++) check_and_free(make_block(&rng, (unsigned)i));
    atomic_fetch_sub(&running, 1);
    return NULL;
}

static void detached_exit(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 200; i++) {
        atomic_fetch_add(&running, 1);
        pthread_t t;
        CHECK(pthread_create(&t, &attr, detached, (void *)(uintptr_t)i) == 0);
        while (atomic_load(&running) > 4) sched_yield();
    }
    while (atomic_load(&running) > 0) sched_yield();
}

/* --- signals: a thread the allocator starts for itself (the scavenger)
 * must not take the program's signals. The usual pattern: work first
 * (enough freeing to wake a scavenger), then block SIGTERM and take it
 * with sigwait. If another thread had SIGTERM unblocked, the signal could
 * go there and kill the process. --- */

static void sigwait_after_work(void) {
    enum { N = 100000 };
    static void *p[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = malloc(512);
            CHECK(p[i]);
            memset(p[i], 1, 512);
        }
        for (int i = 0; i < N; i++) free(p[i]);
        usleep(50000);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
    for (int i = 0; i < 20; i++) {
        CHECK(kill(getpid(), SIGTERM) == 0);
        int sig = 0;
        CHECK(sigwait(&set, &sig) == 0 && sig == SIGTERM);
    }
}

static const struct test_case cases[] = {
    {"sigwait_after_work", sigwait_after_work},
    {"producer_consumer", producer_consumer},
    {"thread_exit", thread_exit},
    {"detached_exit", detached_exit},
};

int main(int argc, char **argv) {
    return run_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
