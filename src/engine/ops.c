/* Shared compute kernels: matmuls on the kernels of base/gemm.h (all parallelism from the pool), norms. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "engine/ops.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

ids_status ids__ops_init(ids_ops *o, int n_threads, int max_w, int max_rows, ids_precision prec, ids_err *err) {
    memset(o, 0, sizeof *o);
    ids_status st = ids__gemm_select(&o->gemm, prec, err);
    if (st) return st;
    ids__gemm_init(&o->attn, o->gemm.path, IDS_PREC_F32);
    o->has_f16 = ids__gemm_f16_variant(&o->gemm, &o->gemm_f16);
    o->pool = ids__pool_new(n_threads);
    if (!o->pool) return ids__err(err, IDS_ERR_NOMEM, "out of memory for %d compute threads", n_threads);
    o->max_w = max_w;
    st = ids__gemm_ws_init(&o->ws, ids__pool_size(o->pool), max_rows, max_w, err);
    if (st) {
        ids__ops_free(o);
        return st;
    }
    o->bytes = o->ws.bytes;
    ids__blas_threads_set(1); /* the pool is the parallelism (see ids__blas_threads_set) */
    return IDS_OK;
}

void ids__ops_free(ids_ops *o) {
    ids__pool_free(o->pool);
    ids__gemm_ws_free(&o->ws);
    memset(o, 0, sizeof *o);
}

int ids__ops_threads(const ids_ops *o) { return ids__pool_size(o->pool); }

static size_t row_bytes(const ids_tensor *W) { return (size_t)(W->nbytes / (uint64_t)W->ne[1]); }

static void fetch_f32(const void *ctx, int n0, int nr, int k0, int kv, float *dst, size_t ld) {
    const ids_tensor *W = ctx;
    const size_t rb = row_bytes(W), off = (size_t)ids_type_row_bytes(W->type, k0);
    for (int r = 0; r < nr; r++) {
        ids_status st = ids_dequantize(W->type, (const unsigned char *)W->data + (size_t)(n0 + r) * rb + off,
                                       dst + (size_t)r * ld, kv, NULL);
        IDS_ASSERT(st == IDS_OK); /* shape and type were checked when the model was loaded */
    }
}

static void prefetch_rows(const void *ctx, int n0, int nr, int k0, int kv) {
    const ids_tensor *W = ctx;
    if (kv <= 0 || k0 % ids_type_block_size(W->type) || kv % ids_type_block_size(W->type)) return;
    const size_t rb = row_bytes(W), off = (size_t)ids_type_row_bytes(W->type, k0),
                 len = (size_t)ids_type_row_bytes(W->type, kv);
    for (int r = 0; r < nr; r++) {
        const char *p = (const char *)W->data + (size_t)(n0 + r) * rb + off;
        for (size_t b = 0; b < len; b += 64) __builtin_prefetch(p + b, 0, 2);
    }
}

/* Q8_0: per block of 32 an F16 scale and 32 int8. Q4_0: an F16 scale and 16 bytes, element t the low
 * nibble of byte t and element t + 16 the high one, minus 8. */
static void fetch_q8(const void *ctx, int n0, int nr, int k0, int kb, int8_t *q, size_t ldq, float *d, size_t ldd) {
    const ids_tensor *W = ctx;
    const int nb = (int)(W->ne[0] / 32), b0 = k0 / 32, bs = W->type == IDS_TYPE_Q8_0 ? 34 : 18;
    const int have = nb - b0 < kb / 32 ? nb - b0 : kb / 32; /* blocks inside the row */
    const size_t rb = row_bytes(W);
    uint16_t half[IDS__GEMM_MAX_KB / 32];
    for (int r = 0; r < nr; r++) {
        const unsigned char *x = (const unsigned char *)W->data + (size_t)(n0 + r) * rb + (size_t)b0 * bs;
        int8_t *qr = q + (size_t)r * ldq;
        float *dr = d + (size_t)r * ldd;
        for (int b = 0; b < have; b++) {
            const unsigned char *blk = x + (size_t)b * bs;
            half[b] = ids__rd16(blk);
            if (W->type == IDS_TYPE_Q8_0) {
                memcpy(qr + b * 32, blk + 2, 32);
            } else {
                for (int t = 0; t < 16; t++) {
                    qr[b * 32 + t] = (int8_t)((blk[2 + t] & 15) - 8);
                    qr[b * 32 + t + 16] = (int8_t)((blk[2 + t] >> 4) - 8);
                }
            }
        }
        ids_dequantize(IDS_TYPE_F16, half, dr, have, NULL); /* the scales, through F16C where the CPU has it */
        for (int b = have; b < kb / 32; b++) {
            memset(qr + b * 32, 0, 32);
            dr[b] = 0.0f;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Packed weights                                                                              */

typedef struct {
    const ids_tensor *W;
    uint32_t key;           /* ids__gemm_layout_key of the kernels */
    unsigned char *data;    /* 64-byte aligned in mem; NULL: not packed (over a bound) */
    void *mem;
    bool filling;           /* being packed by the ids__matmul_n under way (a W given to it twice is read unpacked
                               the second time) */
} pack_entry;

struct ids__packs {
    pthread_mutex_t mu;
    const ids_gguf *g;
    size_t limit, used;
    pack_entry *e;
    int n, cap;
};

ids_status ids__packs_new(ids__packs **out, const ids_gguf *g, ids_err *err) {
    *out = NULL;
    size_t limit;
    const char *env = getenv("IDSCOPE_PACK_MB");
    if (env && *env) {
        char *end;
        errno = 0;
        const unsigned long long mb = strtoull(env, &end, 10);
        if (errno || *end || *env == '-' || mb > (1ull << 40))
            return ids__err(err, IDS_ERR_ARG, "IDSCOPE_PACK_MB=%s is not a number of MiB (0 turns packing off)", env);
        limit = (size_t)mb << 20;
    } else {
        const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        limit = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz / 2 : (size_t)1 << 30;
    }
    ids__packs *p = ids__calloc(1, sizeof *p);
    if (!p) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    p->g = g;
    p->limit = limit;
    *out = p;
    return IDS_OK;
}

void ids__packs_free(ids__packs *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->e[i].mem);
    free(p->e);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

size_t ids__packs_bytes(const ids__packs *p) { return p ? p->used : 0; }
size_t ids__packs_limit(const ids__packs *p) { return p ? p->limit : 0; }

static bool grow_entries(ids__packs *p) {
    const int cap = p->cap ? 2 * p->cap : 64;
    pack_entry *e = ids__realloc(p->e, (size_t)cap * sizeof *e);
    if (!e) return false;
    p->e = e, p->cap = cap;
    return true;
}

/* W packed for g into src->packed; or, on its first product and within the bounds, a buffer for it in
 * src->pack_into (true); neither where it is over a bound or out of memory. The packs' mutex is held. */
static bool packed_weights(ids__packs *p, const ids__gemm *g, const ids_tensor *W, ids__gemm_src *src) {
    const uint32_t key = ids__gemm_layout_key(g);
    int i = 0;
    while (i < p->n && !(p->e[i].W == W && p->e[i].key == key)) i++;
    if (i < p->n) {
        if (!p->e[i].filling) src->packed = p->e[i].data;
    } else if (p->n < p->cap || grow_entries(p)) {
        pack_entry *e = &p->e[p->n++];
        *e = (pack_entry){W, key, NULL, NULL, false};
        const size_t bytes = ids__gemm_packed_bytes(g, src->n, src->k);
        const size_t huge = (size_t)2 << 20; /* the buffer in 2 MiB pages where the OS gives them (fewer faults
                                                 and TLB misses on a stream of weights) */
        const size_t align = bytes >= huge ? huge : 64;
        if (bytes <= W->nbytes / 4 * 9 + 65536 && bytes <= p->limit - p->used && (e->mem = ids__malloc(bytes + align))) {
            e->data = (unsigned char *)e->mem + (align - (uintptr_t)e->mem % align);
#ifdef MADV_HUGEPAGE
            if (bytes >= huge) madvise(e->data, bytes / huge * huge, MADV_HUGEPAGE);
#endif
            p->used += bytes;
            src->pack_into = e->data;
            e->filling = true;
            return true;
        }
    }
    return false;
}

/* The source of W for the kernels of o, and the kernel set that reads it. */
static const ids__gemm *weight_src(const ids_ops *o, const ids_tensor *W, ids__gemm_src *src) {
    const ids__gemm *g = &o->gemm;
    const int n_in = (int)W->ne[0], n_out = (int)W->ne[1];
    *src = (ids__gemm_src){.n = n_out, .k = n_in, .fetch = fetch_f32, .prefetch = prefetch_rows, .ctx = W};
    if (W->type == IDS_TYPE_F32) {
        src->f32 = W->data;
        src->ld = (size_t)n_in;
    } else if (W->type == IDS_TYPE_F16 && (uintptr_t)W->data % 2 == 0) {
        src->f16 = W->data;
        src->ld = (size_t)n_in;
        if (o->has_f16) g = &o->gemm_f16;
    }
    if ((W->type == IDS_TYPE_Q8_0 || W->type == IDS_TYPE_Q4_0) && n_in % 32 == 0) src->fetch_q8 = fetch_q8;
    return g;
}

void ids__matmul_n(ids_ops *o, int n, const ids_tensor *const *W, const float *X, int M, float *const *Y,
                   const float *const *bias) {
    IDS_ASSERT(n >= 1 && n <= IDS__GEMM_MAX_MULTI);
    for (int i = 0; i < n; i++) IDS_ASSERT(W[i]->ne[0] <= o->max_w && W[i]->ne[0] == W[0]->ne[0]);
    if (M <= 0) return;
    ids__gemm_src src[IDS__GEMM_MAX_MULTI];
    const ids__gemm *g[IDS__GEMM_MAX_MULTI];
    size_t ldy[IDS__GEMM_MAX_MULTI];
    bool packing = false;
    if (o->packs) pthread_mutex_lock(&o->packs->mu);
    for (int i = 0; i < n; i++) {
        g[i] = weight_src(o, W[i], &src[i]);
        ldy[i] = (size_t)W[i]->ne[1];
        if (o->packs) packing |= packed_weights(o->packs, g[i], W[i], &src[i]);
    }
    /* while this product packs weights, other users of the packs wait for it */
    if (o->packs && !packing) pthread_mutex_unlock(&o->packs->mu);
    /* products on one kernel set share a pass; another kernel set starts its own */
    for (int i = 0; i < n;) {
        int e = i + 1;
        while (e < n && g[e] == g[i]) e++;
        ids__gemm_run_multi(o->pool, &o->ws, g[i], X, (size_t)W[0]->ne[0], M, e - i, src + i, Y + i, ldy + i);
        i = e;
    }
    if (packing) { /* the file pages of what was packed go back to the OS */
        for (int i = 0; i < o->packs->n; i++) o->packs->e[i].filling = false;
        for (int i = 0; i < n; i++)
            if (src[i].pack_into) ids_gguf_drop_pages(o->packs->g, W[i]->data, (size_t)W[i]->nbytes);
        pthread_mutex_unlock(&o->packs->mu);
    }
    for (int i = 0; i < n; i++)
        if (bias && bias[i])
            for (int r = 0; r < M; r++)
                for (int k = 0; k < (int)ldy[i]; k++) Y[i][(size_t)r * ldy[i] + k] += bias[i][k];
}

void ids__matmul(ids_ops *o, const ids_tensor *W, const float *X, int M, float *Y, const float *bias) {
    ids__matmul_n(o, 1, &W, X, M, &Y, &bias);
}

typedef struct {
    void (*fn)(void *arg, size_t lo, size_t hi);
    void *arg;
    size_t n;
} for_job;

static void for_task(void *arg, int t, int nt, int tid) {
    (void)tid;
    const for_job *j = arg;
    const size_t per = ((j->n + (size_t)nt - 1) / (size_t)nt + 15) & ~(size_t)15, lo = (size_t)t * per, hi = lo + per < j->n ? lo + per : j->n;
    if (lo < hi) j->fn(j->arg, lo, hi);
}

void ids__ops_for(ids_ops *o, size_t n, size_t grain, void (*fn)(void *arg, size_t lo, size_t hi), void *arg) {
    if (n < 2 * grain || ids__ops_threads(o) == 1) {
        if (n) fn(arg, 0, n);
        return;
    }
    for_job j = {fn, arg, n};
    ids__pool_run(o->pool, ids__ops_threads(o), for_task, &j);
}

typedef struct {
    float *y;
    const float *x;
} add_job;

static void add_range(void *arg, size_t lo, size_t hi) {
    const add_job *j = arg;
    for (size_t i = lo; i < hi; i++) j->y[i] += j->x[i];
}

void ids__ops_add(ids_ops *o, float *y, const float *x, size_t n) {
    add_job j = {y, x};
    ids__ops_for(o, n, 2048, add_range, &j);
}

typedef struct {
    const float *x;
    float *y;
    const float *w, *b;
    int n, rows;
    float eps;
} ln_job;

static void rms_task(void *arg, int t, int nt, int tid) {
    (void)tid;
    ln_job *j = arg;
    const int per = (j->rows + nt - 1) / nt;
    for (int r = t * per; r < (t + 1) * per && r < j->rows; r++) {
        const float *x = j->x + (size_t)r * j->n;
        float *y = j->y + (size_t)r * j->n;
        double ss = 0;
        for (int i = 0; i < j->n; i++) ss += (double)x[i] * x[i];
        const float scale = 1.0f / sqrtf((float)(ss / j->n) + j->eps);
        for (int i = 0; i < j->n; i++) y[i] = x[i] * scale * j->w[i];
    }
}

void ids__rmsnorm(ids_ops *o, const float *x, float *y, const float *w, int n, int rows, float eps) {
    ln_job j = {x, y, w, NULL, n, rows, eps};
    ids__pool_run(o->pool, rows < 8 ? 1 : ids__ops_threads(o), rms_task, &j);
}

static void ln_task(void *arg, int t, int nt, int tid) {
    (void)tid;
    ln_job *j = arg;
    int per = (j->rows + nt - 1) / nt;
    for (int r = t * per; r < (t + 1) * per && r < j->rows; r++) {
        const float *x = j->x + (size_t)r * j->n;
        float *y = j->y + (size_t)r * j->n;
        double s = 0, ss = 0;
        for (int i = 0; i < j->n; i++) s += x[i];
        const double mean = s / j->n;
        for (int i = 0; i < j->n; i++) ss += (x[i] - mean) * (x[i] - mean);
        const float inv = (float)(1.0 / sqrt(ss / j->n + j->eps));
        for (int i = 0; i < j->n; i++) {
            float v = (float)(x[i] - mean) * inv;
            y[i] = v * (j->w ? j->w[i] : 1.0f) + (j->b ? j->b[i] : 0.0f);
        }
    }
}

void ids__layernorm(ids_ops *o, const float *x, float *y, const float *w, const float *b, int n, int rows,
                    float eps) {
    ln_job j = {x, y, w, b, n, rows, eps};
    ids__pool_run(o->pool, rows < 8 ? 1 : ids__ops_threads(o), ln_task, &j);
}

ids_status ids__want_tensor(const ids_gguf *g, const char *name, int64_t ne0, int64_t ne1, bool required,
                            const ids_tensor **out, ids_err *err) {
    const ids_tensor *t = ids_gguf_find_tensor(g, name);
    *out = t;
    if (!t) {
        if (!required) return IDS_OK;
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s: tensor '%s' is missing", ids_gguf_path(g), name);
    }
    bool ok = t->ne[0] == ne0 && t->ne[2] == 1 && t->ne[3] == 1 && (ne1 ? t->ne[1] == ne1 : t->ne[1] == 1);
    if (!ok) {
        char want[64];
        if (ne1) snprintf(want, sizeof want, "[%lld, %lld]", (long long)ne0, (long long)ne1);
        else snprintf(want, sizeof want, "[%lld]", (long long)ne0);
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': expected shape %s, got [%lld, %lld, %lld, %lld]",
                        ids_gguf_path(g), name, want, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                        (long long)t->ne[3]);
    }
    if (!ids_type_can_dequantize(t->type))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which idscope cannot "
                        "read yet", ids_gguf_path(g), name, ids_type_name(t->type));
    return IDS_OK;
}

ids_status ids__load_vec(const ids_gguf *g, const char *name, int64_t n, bool required, float **out,
                         ids_err *err) {
    const ids_tensor *t;
    *out = NULL;
    ids_status st = ids__want_tensor(g, name, n, 0, required, &t, err);
    if (st || !t) return st;
    float *v = ids__malloc((size_t)n * sizeof(float));
    if (!v) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for tensor '%s'", ids_gguf_path(g), name);
    st = ids_tensor_to_f32(t, v, err);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    return IDS_OK;
}
