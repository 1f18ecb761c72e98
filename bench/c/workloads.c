/*
 * workloads.c: the multi-threaded workloads of `spanalloc-bench suite`
 * (bench/workloads/src/threaded.rs) written as a plain C11 + pthreads
 * program, for `suite --c-side`. The suite compiles it with
 * `cc -std=c11 -O2 -pthread ... -lm` and runs it with each allocator in
 * LD_PRELOAD, so every malloc and free is the preloaded allocator's, called
 * the way a C program calls it: no Rust layer, no sized free.
 *
 *   workloads-c NAME [--quick]   run one workload, print its outcome as JSON
 *   workloads-c --list           print the workload names, one a line
 *
 * NAME is larson/tN, prodcons/tN, falseshare/tN or churn/tN, N in 1, 2, 8.
 * Everything that shapes the allocations follows the Rust workloads: the
 * full and --quick sizes, the random numbers (SplitMix64, the same seeds, the
 * same log-uniform sizes drawn in the same order), the blocks (size in the
 * first word, a tag in the last byte), the order of allocations and frees,
 * and the 2 MiB thread stacks of Rust's std::thread. The deterministic
 * workloads (prodcons, churn) compute the same checksums as the Rust ones.
 *
 * The outcome line has the fields of `spanalloc_workloads::Outcome`.
 */
#define _GNU_SOURCE

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- Failing loudly ---------------------------------------------------- */

static void die(const char *what)
{
    fprintf(stderr, "workloads-c: %s\n", what);
    exit(1);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL)
        die("out of memory");
    return p;
}

/* ---- SplitMix64, as bench/workloads/src/rng.rs ------------------------- */

typedef struct {
    uint64_t state;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    r->state += UINT64_C(0x9E3779B97F4A7C15);
    uint64_t z = r->state;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A value in lo..=hi by Lemire's multiply-shift reduction. */
static uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    __extension__ typedef unsigned __int128 u128;
    u128 span = (u128)(hi - lo) + 1;
    return lo + (uint64_t)(((u128)rng_next(r) * span) >> 64);
}

/* A value below n (n > 0). */
static size_t rng_below(rng_t *r, size_t n)
{
    return (size_t)rng_range(r, 0, (uint64_t)n - 1);
}

/* A size in lo..=hi, log-uniform: every power of two about equally likely. */
static size_t rng_log_uniform(rng_t *r, size_t lo, size_t hi)
{
    double a = log((double)lo), b = log((double)(hi + 1));
    double unit = (double)(rng_next(r) >> 11) / (double)(UINT64_C(1) << 53);
    size_t x = (size_t)exp(a + (b - a) * unit);
    return x < lo ? lo : x > hi ? hi : x;
}

/* Fisher-Yates, drawing as rng.rs's shuffle does. */
static void rng_shuffle(rng_t *r, void **items, size_t n)
{
    for (size_t i = n; i-- > 1;) {
        size_t j = rng_below(r, i + 1);
        void *t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
}

/* ---- Blocks, as bench/workloads/src/block.rs --------------------------- */

#define BLOCK_MIN 16

/* A block of `size` bytes (at least BLOCK_MIN) that records its size in its
 * first word and `tag` in its last byte, touching both ends. */
static void *block_new(size_t size, uint8_t tag)
{
    if (size < BLOCK_MIN)
        size = BLOCK_MIN;
    unsigned char *p = xmalloc(size);
    memcpy(p, &size, sizeof size);
    p[size - 1] = tag;
    return p;
}

static size_t block_size(const void *p)
{
    size_t size;
    memcpy(&size, p, sizeof size);
    return size;
}

static uint8_t block_tag(const void *p)
{
    return ((const unsigned char *)p)[block_size(p) - 1];
}

/* ---- Threads ------------------------------------------------------------ */

/* Rust's std::thread gives a new thread 2 MiB of stack; so do we. */
#define STACK_SIZE (2u << 20)

static pthread_t spawn(void *(*run)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t thread;
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, STACK_SIZE) != 0)
        die("pthread_attr");
    if (pthread_create(&thread, &attr, run, arg) != 0)
        die("pthread_create");
    pthread_attr_destroy(&attr);
    return thread;
}

static void join(pthread_t thread, void **result)
{
    if (pthread_join(thread, result) != 0)
        die("pthread_join");
}

/* `total` units split among `threads`; the first total % threads get one
 * more (size.rs's share). */
static uint64_t share(uint64_t total, unsigned threads, unsigned index)
{
    return total / threads + (index < total % threads ? 1 : 0);
}

/* Where results nobody reads go, so the compiler keeps computing them. */
static _Atomic uint64_t sink;

/* What a workload did: operations, and a checksum where it is
 * deterministic. */
struct work {
    uint64_t ops;
    bool has_checksum;
    uint64_t checksum;
};

/* ---- larson: threads replacing random slots of one shared array -------- */

#define LARSON_SLOTS 20000

struct larson_thread {
    _Atomic(void *) *slots;
    uint64_t count;
    unsigned index;
};

static void *larson_run(void *p)
{
    struct larson_thread *a = p;
    rng_t rng = {a->index + 1};
    uint64_t sum = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        void *fresh = block_new(rng_log_uniform(&rng, 16, 1024), (uint8_t)a->index);
        _Atomic(void *) *slot = &a->slots[rng_below(&rng, LARSON_SLOTS)];
        void *old = atomic_exchange_explicit(slot, fresh, memory_order_acq_rel);
        sum += block_tag(old);
        free(old);
    }
    atomic_fetch_add_explicit(&sink, sum, memory_order_relaxed);
    return NULL;
}

static struct work larson(unsigned threads, bool quick)
{
    uint64_t total = quick ? 20000 : 40000000;
    rng_t rng = {0x1A450};
    _Atomic(void *) *slots = xmalloc(LARSON_SLOTS * sizeof *slots);
    for (size_t i = 0; i < LARSON_SLOTS; i++)
        atomic_init(&slots[i], block_new(rng_log_uniform(&rng, 16, 1024), 0));
    struct larson_thread *args = xmalloc(threads * sizeof *args);
    pthread_t *ids = xmalloc(threads * sizeof *ids);
    for (unsigned t = 0; t < threads; t++) {
        args[t] = (struct larson_thread){slots, share(total, threads, t), t};
        ids[t] = spawn(larson_run, &args[t]);
    }
    for (unsigned t = 0; t < threads; t++)
        join(ids[t], NULL);
    for (size_t i = 0; i < LARSON_SLOTS; i++)
        free(atomic_load_explicit(&slots[i], memory_order_relaxed));
    free(ids);
    free(args);
    free(slots);
    return (struct work){total, false, 0};
}

/* ---- prodcons: producer/consumer pairs ---------------------------------- */

#define PRODCONS_BATCH 256
/* Batches in flight per pair, as Rust's sync_channel(16). */
#define CHANNEL_CAP 16

/* A bounded queue of batches from one producer to one consumer. */
struct channel {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void **items[CHANNEL_CAP];
    size_t head, len;
    bool closed;
};

static void channel_init(struct channel *c)
{
    memset(c, 0, sizeof *c);
    if (pthread_mutex_init(&c->lock, NULL) != 0 || pthread_cond_init(&c->not_empty, NULL) != 0
        || pthread_cond_init(&c->not_full, NULL) != 0)
        die("channel_init");
}

static void channel_destroy(struct channel *c)
{
    pthread_cond_destroy(&c->not_full);
    pthread_cond_destroy(&c->not_empty);
    pthread_mutex_destroy(&c->lock);
}

static void channel_send(struct channel *c, void **batch)
{
    pthread_mutex_lock(&c->lock);
    while (c->len == CHANNEL_CAP)
        pthread_cond_wait(&c->not_full, &c->lock);
    c->items[(c->head + c->len) % CHANNEL_CAP] = batch;
    c->len++;
    pthread_cond_signal(&c->not_empty);
    pthread_mutex_unlock(&c->lock);
}

/* No more batches: the consumer stops once it has taken the last. */
static void channel_close(struct channel *c)
{
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_cond_signal(&c->not_empty);
    pthread_mutex_unlock(&c->lock);
}

/* The next batch, or NULL once the channel is closed and empty. */
static void **channel_recv(struct channel *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->len == 0 && !c->closed)
        pthread_cond_wait(&c->not_empty, &c->lock);
    void **batch = NULL;
    if (c->len > 0) {
        batch = c->items[c->head];
        c->head = (c->head + 1) % CHANNEL_CAP;
        c->len--;
        pthread_cond_signal(&c->not_full);
    }
    pthread_mutex_unlock(&c->lock);
    return batch;
}

struct prodcons_pair {
    struct channel channel;
    uint64_t batches;
    unsigned index;
    uint64_t sum;
};

static void *producer_run(void *p)
{
    struct prodcons_pair *a = p;
    rng_t rng = {0x9D0C + a->index};
    for (uint64_t b = 0; b < a->batches; b++) {
        void **batch = xmalloc(PRODCONS_BATCH * sizeof *batch);
        for (size_t i = 0; i < PRODCONS_BATCH; i++)
            batch[i] = block_new(rng_log_uniform(&rng, 16, 512), (uint8_t)b);
        channel_send(&a->channel, batch);
    }
    channel_close(&a->channel);
    return NULL;
}

static void *consumer_run(void *p)
{
    struct prodcons_pair *a = p;
    void **batch;
    uint64_t sum = 0;
    while ((batch = channel_recv(&a->channel)) != NULL) {
        for (size_t i = 0; i < PRODCONS_BATCH; i++) {
            sum += block_tag(batch[i]);
            free(batch[i]);
        }
        free(batch);
    }
    a->sum = sum;
    return NULL;
}

static struct work prodcons(unsigned pairs, bool quick)
{
    uint64_t total_batches = quick ? 20 : 120000;
    struct prodcons_pair *args = xmalloc(pairs * sizeof *args);
    pthread_t *ids = xmalloc(2 * pairs * sizeof *ids);
    for (unsigned p = 0; p < pairs; p++) {
        channel_init(&args[p].channel);
        args[p].batches = share(total_batches, pairs, p);
        args[p].index = p;
        args[p].sum = 0;
        ids[2 * p] = spawn(producer_run, &args[p]);
        ids[2 * p + 1] = spawn(consumer_run, &args[p]);
    }
    uint64_t checksum = 0;
    for (unsigned p = 0; p < pairs; p++) {
        join(ids[2 * p], NULL);
        join(ids[2 * p + 1], NULL);
        checksum += args[p].sum;
        channel_destroy(&args[p].channel);
    }
    free(ids);
    free(args);
    return (struct work){total_batches * PRODCONS_BATCH, true, checksum};
}

/* ---- falseshare: small per-thread objects hammered with atomic adds ----- */

#define WRITES_PER_OBJECT 100

/* A thread's counters, 16 bytes, as Rust's Box<[AtomicU64; 2]>. */
struct counters {
    _Atomic uint64_t value[2];
};

static struct counters *counters_new(unsigned t)
{
    struct counters *c = xmalloc(sizeof *c);
    atomic_init(&c->value[0], t);
    atomic_init(&c->value[1], 0);
    return c;
}

struct falseshare_thread {
    struct counters *first;
    uint64_t objects;
    unsigned index;
};

static void *falseshare_run(void *p)
{
    struct falseshare_thread *a = p;
    /* The first object was allocated by the main thread next to the other
     * threads' first objects; freeing it here is passive false sharing. */
    struct counters *obj = a->first;
    for (uint64_t i = 0; i < a->objects; i++) {
        for (int w = 0; w < WRITES_PER_OBJECT; w++)
            atomic_fetch_add_explicit(&obj->value[1], 1, memory_order_relaxed);
        struct counters *next = counters_new(a->index);
        free(obj);
        obj = next;
    }
    free(obj);
    return NULL;
}

static struct work falseshare(unsigned threads, bool quick)
{
    uint64_t total_objects = quick ? 200 : 6000000;
    struct falseshare_thread *args = xmalloc(threads * sizeof *args);
    pthread_t *ids = xmalloc(threads * sizeof *ids);
    /* Back to back from this thread, so likely in one cache line. */
    for (unsigned t = 0; t < threads; t++)
        args[t] = (struct falseshare_thread){counters_new(t), share(total_objects, threads, t), t};
    for (unsigned t = 0; t < threads; t++)
        ids[t] = spawn(falseshare_run, &args[t]);
    for (unsigned t = 0; t < threads; t++)
        join(ids[t], NULL);
    free(ids);
    free(args);
    return (struct work){total_objects * WRITES_PER_OBJECT, false, 0};
}

/* ---- churn: waves of short-lived threads -------------------------------- */

#define CHURN_BLOCKS 1000

/* The blocks a churn thread hands back to the main thread. */
struct kept {
    void **items;
    size_t len, cap;
};

/* Appends, growing as a Rust Vec of pointers does: 4, then doubling. */
static void kept_push(struct kept *k, void *item)
{
    if (k->len == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4;
        void **items = realloc(k->items, cap * sizeof *items);
        if (items == NULL)
            die("out of memory");
        k->items = items;
        k->cap = cap;
    }
    k->items[k->len++] = item;
}

struct churn_thread {
    uint64_t seed;
    struct kept kept;
};

static void *churn_run(void *p)
{
    struct churn_thread *a = p;
    rng_t rng = {a->seed};
    void **blocks = xmalloc(CHURN_BLOCKS * sizeof *blocks);
    for (size_t i = 0; i < CHURN_BLOCKS; i++)
        blocks[i] = block_new(rng_log_uniform(&rng, 16, 4096), (uint8_t)i);
    rng_shuffle(&rng, blocks, CHURN_BLOCKS);
    for (size_t i = 0; i < CHURN_BLOCKS; i++) {
        if (i % 8 == 0)
            kept_push(&a->kept, blocks[i]);
        else
            free(blocks[i]);
    }
    free(blocks);
    return NULL;
}

static struct work churn(unsigned threads, bool quick)
{
    uint64_t total_threads = quick ? 16 : 8000;
    uint64_t waves = (total_threads + threads - 1) / threads;
    struct churn_thread *args = xmalloc(threads * sizeof *args);
    pthread_t *ids = xmalloc(threads * sizeof *ids);
    uint64_t checksum = 0;
    for (uint64_t wave = 0; wave < waves; wave++) {
        for (unsigned t = 0; t < threads; t++) {
            args[t] = (struct churn_thread){wave * 64 + t, {NULL, 0, 0}};
            ids[t] = spawn(churn_run, &args[t]);
        }
        /* Each thread's blocks are freed here, after it has exited. */
        for (unsigned t = 0; t < threads; t++) {
            join(ids[t], NULL);
            struct kept *k = &args[t].kept;
            for (size_t i = 0; i < k->len; i++)
                checksum += block_size(k->items[i]);
            for (size_t i = 0; i < k->len; i++)
                free(k->items[i]);
            free(k->items);
        }
    }
    free(ids);
    free(args);
    return (struct work){waves * threads * CHURN_BLOCKS, true, checksum};
}

/* ---- The command line ---------------------------------------------------- */

static const char *const KINDS[] = {"larson", "prodcons", "falseshare", "churn"};
static const unsigned THREADS[] = {1, 2, 8};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Runs workload `name` (e.g. "larson/t8"); false if there is no such one. */
static bool run(const char *name, bool quick, struct work *out)
{
    for (size_t k = 0; k < COUNT(KINDS); k++) {
        for (size_t t = 0; t < COUNT(THREADS); t++) {
            char candidate[32];
            snprintf(candidate, sizeof candidate, "%s/t%u", KINDS[k], THREADS[t]);
            if (strcmp(name, candidate) != 0)
                continue;
            unsigned n = THREADS[t];
            switch (k) {
            case 0: *out = larson(n, quick); break;
            case 1: *out = prodcons(n, quick); break;
            case 2: *out = falseshare(n, quick); break;
            default: *out = churn(n, quick); break;
            }
            return true;
        }
    }
    return false;
}

/* `s` as a JSON string, or null. */
static void print_json_string(const char *s)
{
    if (s == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Resident set size now, in bytes, from /proc/self/statm. */
static uint64_t current_rss(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    const char *name = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            for (size_t k = 0; k < COUNT(KINDS); k++)
                for (size_t t = 0; t < COUNT(THREADS); t++)
                    printf("%s/t%u\n", KINDS[k], THREADS[t]);
            return 0;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (argv[i][0] != '-' && name == NULL) {
            name = argv[i];
        } else {
            name = NULL;
            break;
        }
    }
    if (name == NULL) {
        fputs("usage: workloads-c NAME [--quick] | --list\n", stderr);
        return 2;
    }

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct work work;
    if (!run(name, quick, &work)) {
        fprintf(stderr, "workloads-c: no workload \"%s\" (try --list)\n", name);
        return 2;
    }
    double elapsed = seconds_since(&start);

    printf("{\"name\":");
    print_json_string(name);
    printf(",\"allocator\":\"malloc\",\"preload\":");
    print_json_string(getenv("LD_PRELOAD"));
    printf(",\"quick\":%s,\"ops\":%llu,\"checksum\":", quick ? "true" : "false",
           (unsigned long long)work.ops);
    if (work.has_checksum)
        printf("%llu", (unsigned long long)work.checksum);
    else
        fputs("null", stdout);
    printf(",\"elapsed_s\":%.6f,\"final_rss\":%llu,\"rss_after_phase\":null,"
           "\"rss_series\":null}\n",
           elapsed, (unsigned long long)current_rss());
    return fflush(stdout) == 0 ? 0 : 1;
}
