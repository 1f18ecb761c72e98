/* dlopen of many libraries with thread-local storage while threads
 * allocate: `dlopen DIR N` loads DIR/tls0.so .. DIR/tls<N-1>.so (copies of
 * tls_module.c) one by one while worker threads touch the TLS of every
 * library loaded so far. glibc allocates those TLS blocks, and grows each
 * thread's TLS vector, with malloc, from inside __tls_get_addr; under
 * LD_PRELOAD spanalloc's own thread-local cache is reached through
 * __tls_get_addr as well, so this checks that the two do not recurse. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

enum { MAX_MODS = 64, THREADS = 3, ROUNDS = 1500 };

static int (*touch[MAX_MODS])(void);
static atomic_int loaded;

static void *worker(void *arg) {
    (void)arg;
    for (int round = 0; round < ROUNDS; round++) {
        int n = atomic_load(&loaded);
        for (int i = 0; i < n; i++) touch[i]();
        void *p = malloc((size_t)round % 700 + 1);
        CHECK(p && ours(p));
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    int mods = atoi(argv[2]);
    CHECK(mods > 0 && mods <= MAX_MODS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
    for (int i = 0; i < mods; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tls%d.so", argv[1], i);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        touch[i] = (int (*)(void))dlsym(h, "touch");
        CHECK(touch[i]);
        atomic_store(&loaded, i + 1);
        /* A new thread sees every library loaded so far at once. */
        pthread_t x;
        CHECK(pthread_create(&x, NULL, worker, NULL) == 0);
        CHECK(pthread_join(x, NULL) == 0);
    }
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    puts("ok dlopen");
    return 0;
}
