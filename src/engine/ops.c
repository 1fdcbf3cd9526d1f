/* Shared compute kernels. OpenBLAS runs single-threaded; all parallelism comes from the pool. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "engine/ops.h"

#include <cblas.h>
#include <math.h>

ids_status ids__ops_init(ids_ops *o, int n_threads, int max_w, ids_err *err) {
    memset(o, 0, sizeof *o);
    o->pool = ids__pool_new(n_threads);
    o->max_w = max_w;
    size_t n = o->pool ? (size_t)ids__pool_size(o->pool) * IDS_DEQ_ROWS * (size_t)max_w : 0;
    o->deq = o->pool ? ids__malloc(n * sizeof(float)) : NULL;
    if (!o->pool || !o->deq) {
        ids__ops_free(o);
        return ids__err(err, IDS_ERR_NOMEM, "out of memory for %d compute threads", n_threads);
    }
    o->bytes = n * sizeof(float);
    ids__blas_threads_set(1); /* the pool is the parallelism (see ids__blas_threads_set) */
    return IDS_OK;
}

void ids__ops_free(ids_ops *o) {
    ids__pool_free(o->pool);
    free(o->deq);
    memset(o, 0, sizeof *o);
}

int ids__ops_threads(const ids_ops *o) { return ids__pool_size(o->pool); }

typedef struct {
    ids_ops *o;
    const ids_tensor *W;
    const float *X;
    int M;
    float *Y;
} mm_job;

static void mm_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    mm_job *j = arg;
    const int n_in = (int)j->W->ne[0], n_out = (int)j->W->ne[1];
    const int r0 = t * IDS_DEQ_ROWS, nr = n_out - r0 < IDS_DEQ_ROWS ? n_out - r0 : IDS_DEQ_ROWS;
    const float *w;
    if (j->W->type == IDS_TYPE_F32) {
        w = (const float *)j->W->data + (size_t)r0 * n_in;
    } else {
        float *scratch = j->o->deq + (size_t)tid * IDS_DEQ_ROWS * j->o->max_w;
        ids_tensor_rows_f32(j->W, r0, nr, scratch, NULL);
        w = scratch;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->M, nr, n_in, 1.0f, j->X, n_in, w, n_in,
                0.0f, j->Y + r0, n_out);
}

void ids__matmul(ids_ops *o, const ids_tensor *W, const float *X, int M, float *Y, const float *bias) {
    const int n_in = (int)W->ne[0], n_out = (int)W->ne[1];
    IDS_ASSERT(n_in <= o->max_w || W->type == IDS_TYPE_F32);
    if (M <= 0) return;
    mm_job j = {o, W, X, M, Y};
    ids__pool_run(o->pool, (n_out + IDS_DEQ_ROWS - 1) / IDS_DEQ_ROWS, mm_task, &j);
    if (bias)
        for (int i = 0; i < M; i++)
            for (int k = 0; k < n_out; k++) Y[(size_t)i * n_out + k] += bias[k];
}

typedef struct {
    const float *x;
    float *y;
    const float *w, *b;
    int n, rows;
    float eps;
} ln_job;

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
    if (!ok)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld%s%lld], got [%lld, "
                        "%lld, %lld, %lld]", ids_gguf_path(g), name, (long long)ne0, ne1 ? ", " : "",
                        (long long)(ne1 ? ne1 : 0), (long long)t->ne[0], (long long)t->ne[1],
                        (long long)t->ne[2], (long long)t->ne[3]);
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
