// C++: every form of operator new and delete, alignment, the new-handler
// and std::bad_alloc, and the standard library on top. `cxx CASE`.
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

namespace {

// Sizes the compiler cannot see.
volatile size_t huge = SIZE_MAX / 2;

struct alignas(64) Line {
    char bytes[64];
};
struct alignas(4096) Page {
    char bytes[100];
};
struct alignas(128) Odd {
    int x;
};

// A class type, so that `delete` of it uses the sized forms under
// -fsized-deallocation.
struct Node {
    long value;
    Node *next;
    char pad[40];
};

void plain_new_delete() {
    int *i = new int(42);
    CHECK(ours(i) && *i == 42);
    delete i;
    int *a = new int[1000];
    CHECK(ours(a) && aligned_to(a, 16));
    for (int k = 0; k < 1000; k++) a[k] = k;
    delete[] a;
    Node *n = new Node{7, nullptr, {}};
    CHECK(ours(n));
    delete n;  // sized delete
    Node *ns = new Node[33];
    delete[] ns;
    void *raw = ::operator new(100);
    CHECK(ours(raw));
    ::operator delete(raw, 100);  // explicit sized delete
    void *rawa = ::operator new[](5000);
    CHECK(ours(rawa));
    ::operator delete[](rawa, 5000);
    void *z = ::operator new(0);
    CHECK(z && ours(z));
    ::operator delete(z);
    ::operator delete(nullptr);
    ::operator delete[](nullptr);
}

void aligned_new_delete() {
    Line *l = new Line;
    CHECK(ours(l) && aligned_to(l, 64));
    delete l;
    Line *ls = new Line[17];
    CHECK(aligned_to(ls, 64));
    delete[] ls;
    Page *p = new Page;
    CHECK(ours(p) && aligned_to(p, 4096));
    delete p;
    Page *ps = new Page[5];
    CHECK(aligned_to(ps, 4096));
    delete[] ps;
    std::vector<Odd> v(1000);
    CHECK(aligned_to(v.data(), 128) && ours(v.data()));
    for (size_t al = 1; al <= (size_t(1) << 20); al <<= 1) {
        void *q = ::operator new(300, std::align_val_t(al));
        CHECK(ours(q) && aligned_to(q, al));
        ::operator delete(q, std::align_val_t(al));
        q = ::operator new[](70000, std::align_val_t(al));
        CHECK(ours(q) && aligned_to(q, al));
        ::operator delete[](q, 70000, std::align_val_t(al));
        q = ::operator new(64, std::align_val_t(al));
        ::operator delete(q, 64, std::align_val_t(al));
        q = ::operator new[](64, std::align_val_t(al));
        ::operator delete[](q, std::align_val_t(al));
    }
}

void nothrow_new() {
    int *i = new (std::nothrow) int(5);
    CHECK(i && ours(i));
    delete i;
    int *a = new (std::nothrow) int[10];
    CHECK(a && ours(a));
    delete[] a;
    Line *l = new (std::nothrow) Line;
    CHECK(l && aligned_to(l, 64));
    delete l;
    Line *ls = new (std::nothrow) Line[3];
    CHECK(ls && aligned_to(ls, 64));
    delete[] ls;
    CHECK(::operator new(huge, std::nothrow) == nullptr);
    CHECK(::operator new[](huge, std::nothrow) == nullptr);
    CHECK(::operator new(huge, std::align_val_t(64), std::nothrow) == nullptr);
    CHECK(::operator new[](huge, std::align_val_t(64), std::nothrow) == nullptr);
    void *q = ::operator new(10, std::nothrow);
    ::operator delete(q, std::nothrow);
    q = ::operator new[](10, std::nothrow);
    ::operator delete[](q, std::nothrow);
    q = ::operator new(10, std::align_val_t(256), std::nothrow);
    CHECK(aligned_to(q, 256));
    ::operator delete(q, std::align_val_t(256), std::nothrow);
    q = ::operator new[](10, std::align_val_t(256), std::nothrow);
    ::operator delete[](q, std::align_val_t(256), std::nothrow);
}

// Each throwing form throws std::bad_alloc when memory is refused.
void bad_alloc() {
    int caught = 0;
    try {
        (void)::operator new(huge);
    } catch (const std::bad_alloc &) {
        caught++;
    }
    try {
        (void)::operator new[](huge);
    } catch (const std::bad_alloc &) {
        caught++;
    }
    try {
        (void)::operator new(huge, std::align_val_t(64));
    } catch (const std::bad_alloc &) {
        caught++;
    }
    try {
        (void)::operator new[](huge, std::align_val_t(4096));
    } catch (const std::bad_alloc &) {
        caught++;
    }
    try {
        std::vector<char> v;
        v.reserve(huge);
    } catch (const std::bad_alloc &) {
        caught++;
    } catch (const std::length_error &) {
        caught++;  // libstdc++ checks max_size() first
    }
    CHECK(caught == 5);
}

int handler_calls = 0;
void handler() {
    if (++handler_calls == 3) std::set_new_handler(nullptr);
}

// The new-handler is called until it uninstalls itself; then bad_alloc.
void new_handler() {
    std::set_new_handler(handler);
    bool caught = false;
    try {
        (void)::operator new(huge);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    CHECK(caught && handler_calls == 3);
    // A handler that throws something else: that exception comes through.
    std::set_new_handler([] { throw std::runtime_error("from handler"); });
    bool other = false;
    try {
        (void)::operator new(huge, std::align_val_t(32));
    } catch (const std::runtime_error &e) {
        other = !strcmp(e.what(), "from handler");
    }
    CHECK(other);
    std::set_new_handler(nullptr);
}

// The standard library on top: strings, containers, exceptions.
void stl() {
    std::unordered_map<std::string, std::vector<int>> m;
    for (int i = 0; i < 100000; i++) m["key" + std::to_string(i)].push_back(i);
    std::vector<std::string> keys;
    for (auto &kv : m) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    CHECK(keys.size() == 100000 && keys[0] == "key0");
    std::map<int, std::unique_ptr<Node>> tree;
    for (int i = 0; i < 50000; i++) tree[i * 7 % 50000] = std::make_unique<Node>();
    CHECK(tree.size() == 50000);
    std::shared_ptr<Line> s = std::make_shared<Line>();
    CHECK(aligned_to(s.get(), 64));
    int thrown = 0;
    for (int i = 0; i < 1000; i++) {
        try {
            throw std::runtime_error(std::string(100, 'x'));
        } catch (const std::exception &e) {
            thrown += strlen(e.what()) == 100;
        }
    }
    CHECK(thrown == 1000);
}

// The base address of the object (executable or library) defining f.
const void *home(const void *f) {
    Dl_info info;
    CHECK(dladdr(f, &info) != 0);
    return info.dli_fbase;
}

// Every form of operator new and delete is spanalloc's (and not libstdc++'s,
// which would call malloc, and so pass the other tests too).
void symbols() {
    const void *ours_home = home((const void *)spanalloc_usable_size);
    using New = void *(*)(size_t);
    using NewNt = void *(*)(size_t, const std::nothrow_t &);
    using NewAl = void *(*)(size_t, std::align_val_t);
    using NewAlNt = void *(*)(size_t, std::align_val_t, const std::nothrow_t &);
    using Del = void (*)(void *);
    using DelSz = void (*)(void *, size_t);
    using DelNt = void (*)(void *, const std::nothrow_t &);
    using DelAl = void (*)(void *, std::align_val_t);
    using DelSzAl = void (*)(void *, size_t, std::align_val_t);
    using DelAlNt = void (*)(void *, std::align_val_t, const std::nothrow_t &);
    const void *fns[] = {
        (const void *)static_cast<New>(::operator new),
        (const void *)static_cast<New>(::operator new[]),
        (const void *)static_cast<NewNt>(::operator new),
        (const void *)static_cast<NewNt>(::operator new[]),
        (const void *)static_cast<NewAl>(::operator new),
        (const void *)static_cast<NewAl>(::operator new[]),
        (const void *)static_cast<NewAlNt>(::operator new),
        (const void *)static_cast<NewAlNt>(::operator new[]),
        (const void *)static_cast<Del>(::operator delete),
        (const void *)static_cast<Del>(::operator delete[]),
        (const void *)static_cast<DelSz>(::operator delete),
        (const void *)static_cast<DelSz>(::operator delete[]),
        (const void *)static_cast<DelNt>(::operator delete),
        (const void *)static_cast<DelNt>(::operator delete[]),
        (const void *)static_cast<DelAl>(::operator delete),
        (const void *)static_cast<DelAl>(::operator delete[]),
        (const void *)static_cast<DelSzAl>(::operator delete),
        (const void *)static_cast<DelSzAl>(::operator delete[]),
        (const void *)static_cast<DelAlNt>(::operator delete),
        (const void *)static_cast<DelAlNt>(::operator delete[]),
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (home(fns[i]) != ours_home) {
            fprintf(stderr, "form %zu of operator new/delete is not spanalloc's\n", i);
            exit(1);
        }
    }
}

// operator delete of a pointer that is not ours stops the program.
void delete_foreign() {
    static long global[8];
    printf("ptr %p\n", (void *)global);
    fflush(stdout);
    ::operator delete(global);
}

const struct test_case cases[] = {
    {"plain", plain_new_delete},   {"aligned", aligned_new_delete},
    {"nothrow", nothrow_new},      {"bad_alloc", bad_alloc},
    {"new_handler", new_handler},  {"stl", stl},
    {"symbols", symbols},          {"delete_foreign", delete_foreign},
};

}  // namespace

int main(int argc, char **argv) {
    return run_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
