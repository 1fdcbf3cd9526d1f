/* Minimal test harness: TEST(name) registers a test; CHECK* record failures with file:line.
 * The runner prints one line per test and closes with "unit: N passed, N failed". */
#ifndef IDS_TEST_H
#define IDS_TEST_H

#include "idscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*t_fn)(void);
void t_register(const char *name, t_fn fn);
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_skip(const char *why);
/* Path of a file under the shared folder (IDSCOPE_SHARED, default ../shared). */
const char *t_shared(const char *rel);
/* A fresh scratch path under the test's temporary folder. */
const char *t_tmp(const char *name);
/* Read a whole file; NULL if it cannot be read. */
char *t_read_file(const char *path, size_t *len);
/* The message of an error for a failure line ("(no message)" when the call left it empty). */
const char *t_msg(const ids_err *err);
/* Allocation-failure sweep: run(ctx, err) with the n-th allocation made through ids__malloc and
 * co. failing (and every later one: ids_debug_fail_alloc_after), for n = 0, 1, 2, ... until a run
 * succeeds (at most max_n runs). Every failing run must return IDS_ERR_NOMEM with a message that
 * says "out of memory"; crashes and leaks show under ASan. run frees what a successful run made.
 * Returns the allocations a successful run makes (its n), or -1 after a failed check. */
typedef ids_status (*t_alloc_fn)(void *ctx, ids_err *err);
long t_alloc_sweep(const char *file, int line, const char *what, t_alloc_fn run, void *ctx, long max_n);
#define CHECK_ALLOC_FAILURES(run, ctx, max_n) t_alloc_sweep(__FILE__, __LINE__, #run, run, ctx, max_n)

#define TEST(name)                                                                            \
    static void name(void);                                                                   \
    __attribute__((constructor)) static void t_reg_##name(void) { t_register(#name, name); } \
    static void name(void)

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) t_fail(__FILE__, __LINE__, "%s", #cond);                                \
    } while (0)
#define CHECKF(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) t_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                    \
    do {                                                                                      \
        long long t_a = (long long)(a), t_b = (long long)(b);                                 \
        if (t_a != t_b) t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a, t_b); \
    } while (0)
/* Status checks. CHECK_OK is for calls that take no ids_err; CHECK_OK_ERR(expr, err) names the
 * ids_err the call fills and prints its message with the failing expression and status, so a
 * failing test says why (the message is cleared first: a call that fails without writing one
 * prints "(no message)", never a stale one). REQUIRE_OK does the same and stops the test. */
#define CHECK_OK(expr)                                                                        \
    do {                                                                                      \
        ids_status t_s = (expr);                                                              \
        if (t_s != IDS_OK) t_fail(__FILE__, __LINE__, "%s -> %s", #expr, ids_status_name(t_s)); \
    } while (0)
#define CHECK_OK_ERR(expr, err)                                                               \
    do {                                                                                      \
        (err).msg[0] = 0;                                                                     \
        ids_status t_s = (expr);                                                              \
        if (t_s != IDS_OK)                                                                    \
            t_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr, ids_status_name(t_s), t_msg(&(err))); \
    } while (0)
/* The largest |a[i] - b[i]| over n floats (infinity when a difference is NaN). */
double t_max_abs_diff(const float *a, const float *b, size_t n);
/* A capture tensor (`name` of safetensors file f) against an .npy of the same shape: the shapes
 * agree and max |diff| <= tol; a failure names the tensor, the file and the caller's line. */
void t_check_npy(const char *file, int line, const ids_st_file *f, const char *name, const char *npy, double tol);
#define CHECK_NPY(f, name, npy, tol) t_check_npy(__FILE__, __LINE__, (f), (name), (npy), (tol))
/* A copy of a GGUF file with edits, for the tests of bad files: a key dropped, the projector type
 * renamed, a string key set (added when absent), a u32 key changed, a tensor dropped, or a tensor
 * replaced by zeros of shape [ne0] or [ne0, ne1]. Written under the test's scratch folder as `name`;
 * NULL when it cannot be. `from` NULL: e->src. */
typedef struct {
    const char *src, *drop_key, *projector, *key, *value, *u32_key, *drop_tensor, *reshape;
    uint32_t u32;
    int64_t ne0, ne1;
} t_gguf_edit;
const char *t_write_gguf_edit(const char *from, const t_gguf_edit *e, const char *name);
/* Stop the current test when a precondition fails (e.g. a file could not be opened). */
#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            t_fail(__FILE__, __LINE__, "required: %s", #cond);                               \
            return;                                                                           \
        }                                                                                     \
    } while (0)
#define REQUIRE_OK(expr, err)                                                                 \
    do {                                                                                      \
        (err).msg[0] = 0;                                                                     \
        ids_status t_s = (expr);                                                              \
        if (t_s != IDS_OK) {                                                                  \
            t_fail(__FILE__, __LINE__, "required: %s -> %s: %s", #expr, ids_status_name(t_s),  \
                   t_msg(&(err)));                                                            \
            return;                                                                           \
        }                                                                                     \
    } while (0)

#endif
