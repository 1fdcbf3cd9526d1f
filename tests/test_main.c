/* Test runner: runs every registered test (or those whose name contains argv[1..]). */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct { const char *name; t_fn fn; } g_tests[MAX_TESTS];
static int g_n_tests;
static int g_cur_failures;
static int g_cur_skipped;
static const char *g_cur_name;
static char g_tmpdir[256];

void t_register(const char *name, t_fn fn) {
    if (g_n_tests < MAX_TESTS) {
        g_tests[g_n_tests].name = name;
        g_tests[g_n_tests].fn = fn;
        g_n_tests++;
    }
}

void t_fail(const char *file, int line, const char *fmt, ...) {
    if (g_cur_failures < 10) {
        fprintf(stderr, "  %s:%d: %s: ", file, line, g_cur_name);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    g_cur_failures++;
}

void t_skip(const char *why) {
    fprintf(stderr, "  skip %s: %s\n", g_cur_name, why);
    g_cur_skipped = 1;
}

const char *t_shared(const char *rel) {
    static char buf[4][1024];
    static int k;
    const char *root = getenv("IDSCOPE_SHARED");
    if (!root || !*root) root = "../shared";
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

const char *t_tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmpdir, name);
    return buf[k];
}

const char *t_msg(const ids_err *err) { return err->msg[0] ? err->msg : "(no message)"; }

long t_alloc_sweep(const char *file, int line, const char *what, t_alloc_fn run, void *ctx, long max_n) {
    for (long n = 0; n < max_n; n++) {
        ids_err err = {0};
        ids_debug_fail_alloc_after(n);
        ids_status st = run(ctx, &err);
        ids_debug_fail_alloc_after(-1);
        if (st == IDS_OK) return n;
        if (st != IDS_ERR_NOMEM || !strstr(err.msg, "out of memory")) {
            t_fail(file, line, "%s with allocation %ld failing: %s: %s (expected out of memory)", what, n,
                   ids_status_name(st), t_msg(&err));
            return -1;
        }
    }
    t_fail(file, line, "%s: still out of memory with %ld allocations allowed", what, max_n);
    return -1;
}

char *t_read_file(const char *path, size_t *len) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    }
    return b;
}

static void quiet_log(int level, const char *msg, void *user) { (void)level, (void)msg, (void)user; }

int main(int argc, char **argv) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/idscope-test-%ld", (long)getpid());
    mkdir(g_tmpdir, 0755);
    ids_set_log(quiet_log, NULL); /* tests check messages through ids_err, not the log */
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < g_n_tests; i++) {
        bool run = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strstr(g_tests[i].name, argv[a])) run = true;
        if (!run) continue;
        g_cur_name = g_tests[i].name;
        g_cur_failures = 0;
        g_cur_skipped = 0;
        g_tests[i].fn();
        if (g_cur_failures) {
            printf("FAIL %s (%d check%s failed)\n", g_cur_name, g_cur_failures,
                   g_cur_failures == 1 ? "" : "s");
            failed++;
        } else if (g_cur_skipped) {
            printf("skip %s\n", g_cur_name);
            skipped++;
        } else {
            printf("ok   %s\n", g_cur_name);
            passed++;
        }
        fflush(stdout);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmpdir);
    if (skipped) printf("unit: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

double t_max_abs_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= w)) w = isnan(d) ? INFINITY : d;
    }
    return w;
}

void t_check_npy(const char *file, int line, const ids_st_file *f, const char *name, const char *npy, double tol) {
    ids_npy a;
    ids_err err;
    const ids_st_tensor *t = ids_st_find(f, name);
    if (!t || ids_npy_read(npy, &a, &err)) {
        t_fail(file, line, "%s: missing tensor or reference %s", name, npy);
        return;
    }
    bool ok = t->nbytes == a.nbytes && t->ndim == a.ndim;
    for (int d = 0; ok && d < a.ndim; d++) ok = t->shape[d] == a.shape[d];
    if (!ok) t_fail(file, line, "%s: shape differs from %s", name, npy);
    double e = ok ? t_max_abs_diff(t->data, a.data, a.nbytes / 4) : 0;
    if (!(e <= tol)) t_fail(file, line, "%s: max |diff| %g > %g", name, e, tol);
    ids_npy_free(&a);
}

const char *t_write_gguf_edit(const char *from, const t_gguf_edit *e, const char *name) {
    ids_gguf *g;
    ids_err err;
    if (ids_gguf_open(&g, from ? from : e->src, &err)) return NULL;
    ids_gguf_writer *w = ids_gguf_writer_new();
    bool set = false;
    for (int64_t i = 0; w && i < ids_gguf_n_kv(g); i++) {
        const char *k = ids_gguf_kv_key(g, i);
        if (e->drop_key && !strcmp(k, e->drop_key)) continue;
        if (e->projector && !strcmp(k, "clip.projector_type")) ids_gguf_writer_set_str(w, k, e->projector, &err);
        else if (e->key && !strcmp(k, e->key)) set = !ids_gguf_writer_set_str(w, k, e->value, &err);
        else if (e->u32_key && !strcmp(k, e->u32_key)) ids_gguf_writer_set_u32(w, k, e->u32, &err);
        else ids_gguf_writer_set_value(w, k, ids_gguf_kv_value(g, i), &err);
    }
    if (w && e->key && !set) ids_gguf_writer_set_str(w, e->key, e->value, &err);
    for (int64_t i = 0; w && i < ids_gguf_n_tensors(g); i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor)) continue;
        if (e->reshape && !strcmp(t->name, e->reshape)) {
            int64_t ne[2] = {e->ne0, e->ne1};
            float *z = calloc((size_t)(e->ne0 * (e->ne1 ? e->ne1 : 1)), sizeof(float));
            ids_gguf_writer_add_tensor_f32(w, t->name, IDS_TYPE_F32, e->ne1 ? 2 : 1, ne, z, &err);
            free(z);
            continue;
        }
        ids_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err);
    }
    const char *path = t_tmp(name);
    ids_status st = w ? ids_gguf_writer_write(w, path, &err) : IDS_ERR_NOMEM;
    ids_gguf_writer_free(w);
    ids_gguf_close(g);
    return st ? NULL : path;
}
