/* Shared compute kernels: threaded matmul over weights in any stored format, norms. */
#ifndef IDS_OPS_H
#define IDS_OPS_H

#include "base/internal.h"
#include "base/gemm.h"
#include "base/pool.h"

/* Weights packed once for the kernels that use them (on a tensor's first product), shared by every context
 * of a model and owned by it. A tensor is packed when its packed form takes at most 2.25 times its stored
 * bytes and all packed weights stay within the limit: IDSCOPE_PACK_MB (MiB; 0: never), by default half of
 * the machine's memory. A packed tensor's pages of the file mapping are given back to the OS. Products on
 * packed weights give the same bits as packing them per product. */
typedef struct ids__packs ids__packs;
ids_status ids__packs_new(ids__packs **out, const ids_gguf *g, ids_err *err);
void ids__packs_free(ids__packs *p);
size_t ids__packs_bytes(const ids__packs *p); /* packed so far */
size_t ids__packs_limit(const ids__packs *p);

typedef struct ids_ops {
    ids_pool *pool;
    ids__gemm gemm;    /* kernels of the run's precision on this CPU's path */
    ids__gemm gemm_f16; /* the same for F16 weights, where a kernel reads F16 panels (has_f16) */
    bool has_f16;
    ids__packs *packs; /* the model's packed weights (NULL: pack per product) */
    ids__gemm attn;    /* F32 kernels on the same path (attention, in every precision) */
    ids__gemm_ws ws;   /* their buffers */
    int max_w;         /* widest weight row (n_in) a matmul may have */
    size_t bytes;
} ids_ops;

/* n_threads compute threads, products of up to max_rows rows at once (more run in chunks) with weight
 * rows up to max_w wide, in precision prec on the kernel path IDSCOPE_CPU asks for (or the best one;
 * a path this CPU lacks is an IDS_ERR_UNSUPPORTED error). */
ids_status ids__ops_init(ids_ops *o, int n_threads, int max_w, int max_rows, ids_precision prec, ids_err *err);
void ids__ops_free(ids_ops *o);
int ids__ops_threads(const ids_ops *o);
/* Y[M, n_out] = X[M, n_in] . W^T (+ bias[n_out]); W has ne = [n_in, n_out], any readable type, n_in <=
 * max_w. In the int8 precision Q8_0 and Q4_0 rows are read as int8 blocks directly. */
void ids__matmul(ids_ops *o, const ids_tensor *W, const float *X, int M, float *Y, const float *bias);
/* n products of one X (n <= IDS__GEMM_MAX_MULTI, every W[i] with the same input width): Y[i] = X . W[i]^T (+
 * bias[i] where bias and bias[i] are not NULL). X is packed once and the products share one pass of the
 * threads: the same bits as n calls of ids__matmul. */
void ids__matmul_n(ids_ops *o, int n, const ids_tensor *const *W, const float *X, int M, float *const *Y,
                   const float *const *bias);
/* Independent work in parallel: fn(arg, lo, hi) over [0, n) in one range per thread (boundaries on multiples
 * of 16), serially where n < 2 grain. Each item is computed as serially: the same bits. */
void ids__ops_for(ids_ops *o, size_t n, size_t grain, void (*fn)(void *arg, size_t lo, size_t hi), void *arg);
/* y[i] += x[i], i < n. */
void ids__ops_add(ids_ops *o, float *y, const float *x, size_t n);
/* RMSNorm over rows of width n (sum of squares in double, the scale in F32 as HF computes it):
 * y = x / sqrt(mean(x^2) + eps) * w. */
void ids__rmsnorm(ids_ops *o, const float *x, float *y, const float *w, int n, int rows, float eps);
/* LayerNorm over rows of width n (mean/variance in double): y = (x - mean)/sqrt(var + eps) * w + b. */
void ids__layernorm(ids_ops *o, const float *x, float *y, const float *w, const float *b, int n, int rows,
                    float eps);

/* HF gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Gemma 3's MLPs, SigLIP). */
float ids__gelu_tanh(float x);

/* Find a tensor and check its shape (ne1 = 0 for 1-D) and that it is readable. Absent and not
 * required: *out = NULL and IDS_OK. */
ids_status ids__want_tensor(const ids_gguf *g, const char *name, int64_t ne0, int64_t ne1, bool required,
                            const ids_tensor **out, ids_err *err);
/* A small vector converted to F32 (malloc'd, caller frees). Absent and not required: NULL. */
ids_status ids__load_vec(const ids_gguf *g, const char *name, int64_t n, bool required, float **out,
                         ids_err *err);

#endif
