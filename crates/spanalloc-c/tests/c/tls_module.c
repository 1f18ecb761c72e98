/* A shared library with thread-local storage, for dlopen.c: each thread's
 * first touch of it allocates its TLS block (with malloc) from inside
 * __tls_get_addr. */
__thread char buf[4096];
__thread int counter;

int touch(void) {
    buf[counter % 4096]++;
    return ++counter;
}
