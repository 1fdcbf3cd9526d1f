/* Training kernels: forward and backward of every op of the LLaVA-style model. Row-major
 * [rows, width] buffers; outputs first; backward functions ACCUMULATE into parameter gradients and
 * OVERWRITE or ACCUMULATE input gradients as each says. Each optimised kernel has a plain reference
 * (the *_ref functions) used by the tests. Names: tops_* (the test harness owns t_*, the tasks tk_*). */
#ifndef IDS_TOPS_H
#define IDS_TOPS_H

#include <stdbool.h>
#include <stddef.h>

/* y[M,N] = x[M,K] . w[N,K]^T + b[N] */
void tops_matmul_forward(float *y, const float *x, const float *w, const float *b, int M, int K, int N);
void tops_matmul_forward_ref(float *y, const float *x, const float *w, const float *b, int M, int K, int N);
/* dx[M,K] += dy . w ; dw[N,K] += dy^T . x ; db[N] += sum_rows dy (dx/dw/db may be NULL) */
void tops_matmul_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int M,
                          int K, int N);

/* LayerNorm with affine: y = (x - mean) * rstd * w + b; saves mean, rstd per row. */
void tops_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                            int M, int C, float eps);
/* dx += ..., dw += ..., db += ... */
void tops_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             const float *mean, const float *rstd, int M, int C);
/* RMSNorm: y = x * rstd * w */
void tops_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int M, int C, float eps);
void tops_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                           const float *rstd, int M, int C);

/* Activations (elementwise). backward: dx += dy * f'(x) */
void tops_quickgelu_forward(float *y, const float *x, size_t n);
void tops_quickgelu_backward(float *dx, const float *dy, const float *x, size_t n);
void tops_gelu_forward(float *y, const float *x, size_t n); /* exact (erf) */
void tops_gelu_backward(float *dx, const float *dy, const float *x, size_t n);
/* h = silu(g) * u ; dg += , du += */
void tops_swiglu_forward(float *h, const float *g, const float *u, size_t n);
void tops_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);

/* Rotary embedding on [B*T, H*hd] rows, NORM pairing (2i, 2i+1), position of row r = r % T.
 * backward rotates by the opposite angle (in place on the gradient). */
void tops_rope_forward(float *x, int BT, int T, int H, int hd, float base);
void tops_rope_backward(float *dx, int BT, int T, int H, int hd, float base);

/* Multi-head attention over B sequences of T rows: q, k, v, out [B*T, H*hd]; probs [B, H, T, T].
 * causal: row i sees keys 0..i; else all keys 0..len-1. lens[b] (NULL = T) masks padded keys. */
void tops_attention_forward(float *out, float *probs, const float *q, const float *k, const float *v, int B, int T,
                            int H, int hd, bool causal, const int *lens);
void tops_attention_forward_ref(float *out, float *probs, const float *q, const float *k, const float *v, int B,
                                int T, int H, int hd, bool causal, const int *lens);
/* dq, dk, dv += ...; scratch [T*T] */
void tops_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                             const float *k, const float *v, int B, int T, int H, int hd, float *scratch);

/* Softmax cross-entropy at selected rows: logits [M, V], targets [M] (-1 = no loss). Returns the
 * summed loss and writes dlogits = (softmax - onehot) * scale on target rows (0 elsewhere). */
double tops_crossentropy(float *dlogits, const float *logits, const int *targets, int M, int V, float scale,
                         int *n_counted, int *n_correct);

#endif
