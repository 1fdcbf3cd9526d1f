/* Training kernels (see tops.h). Reductions over a row are accumulated in double. */
#include "idscope/train.h"
#include "train/tops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void tops_matmul_forward(float *y, const float *x, const float *w, const float *b, int M, int K, int N) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
    if (b)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) y[(size_t)i * N + j] += b[j];
}

void tops_matmul_forward_ref(float *y, const float *x, const float *w, const float *b, int M, int K, int N) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = b ? b[j] : 0.0;
            for (int k = 0; k < K; k++) s += (double)x[(size_t)i * K + k] * w[(size_t)j * K + k];
            y[(size_t)i * N + j] = (float)s;
        }
}

void tops_matmul_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int M,
                          int K, int N) {
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1.0f, dy, N, w, K, 1.0f, dx, K);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
    if (db)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int i = 0; i < M; i++) s += dy[(size_t)i * N + j];
            db[j] += (float)s;
        }
}

void tops_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b,
                            int M, int C, float eps) {
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * C;
        double s = 0, ss = 0;
        for (int c = 0; c < C; c++) s += xi[c];
        double m = s / C;
        for (int c = 0; c < C; c++) ss += (xi[c] - m) * (xi[c] - m);
        float r = (float)(1.0 / sqrt(ss / C + eps));
        mean[i] = (float)m;
        rstd[i] = r;
        for (int c = 0; c < C; c++) y[(size_t)i * C + c] = ((float)(xi[c] - m)) * r * w[c] + (b ? b[c] : 0.0f);
    }
}

void tops_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             const float *mean, const float *rstd, int M, int C) {
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
        double a = 0, bsum = 0; /* mean(dy*w), mean(dy*w*xhat) */
        for (int c = 0; c < C; c++) {
            float xh = (xi[c] - mean[i]) * rstd[i], g = dyi[c] * w[c];
            a += g;
            bsum += g * xh;
            if (dw) dw[c] += dyi[c] * xh;
            if (db) db[c] += dyi[c];
        }
        a /= C;
        bsum /= C;
        for (int c = 0; c < C; c++) {
            float xh = (xi[c] - mean[i]) * rstd[i];
            dx[(size_t)i * C + c] += rstd[i] * (float)(dyi[c] * w[c] - a - xh * bsum);
        }
    }
}

void tops_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int M, int C, float eps) {
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xi[c] * xi[c];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        rstd[i] = r;
        for (int c = 0; c < C; c++) y[(size_t)i * C + c] = xi[c] * r * w[c];
    }
}

void tops_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                           const float *rstd, int M, int C) {
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * C, *dyi = dy + (size_t)i * C;
        const float r = rstd[i];
        double dot = 0;
        for (int c = 0; c < C; c++) {
            dot += (double)dyi[c] * w[c] * xi[c];
            if (dw) dw[c] += dyi[c] * xi[c] * r;
        }
        const float k = (float)(dot / C) * r * r * r;
        for (int c = 0; c < C; c++) dx[(size_t)i * C + c] += dyi[c] * w[c] * r - xi[c] * k;
    }
}

void tops_quickgelu_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void tops_quickgelu_backward(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-1.702f * x[i]));
        dx[i] += dy[i] * (s + 1.702f * x[i] * s * (1.0f - s));
    }
}

void tops_gelu_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void tops_gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
    const float k = 0.3989422804014327f; /* 1/sqrt(2 pi) */
    for (size_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2)), pdf = k * expf(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

void tops_swiglu_forward(float *h, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void tops_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * s;
        du[i] += dh[i] * silu;
        dg[i] += dh[i] * u[i] * (s + g[i] * s * (1.0f - s));
    }
}

static void rope_rows(float *x, int BT, int T, int H, int hd, float base, float sign) {
    for (int r = 0; r < BT; r++) {
        const int p = r % T;
        for (int i = 0; i < hd / 2; i++) {
            const double th = p * pow((double)base, -2.0 * i / hd);
            const float c = (float)cos(th), s = sign * (float)sin(th);
            for (int h = 0; h < H; h++) {
                float *v = x + (size_t)r * H * hd + (size_t)h * hd;
                const float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

void tops_rope_forward(float *x, int BT, int T, int H, int hd, float base) {
    rope_rows(x, BT, T, H, hd, base, 1.0f);
}
void tops_rope_backward(float *dx, int BT, int T, int H, int hd, float base) {
    rope_rows(dx, BT, T, H, hd, base, -1.0f);
}

void tops_attention_forward(float *out, float *probs, const float *q, const float *k, const float *v, int B, int T,
                            int H, int hd, bool causal, const int *lens) {
    const int C = H * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * hd;
            float *P = probs + ((size_t)b * H + h) * T * T;
            const int len = lens ? lens[b] : T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q + off, C, k + off, C, 0.0f, P, T);
            for (int i = 0; i < T; i++) {
                float *row = P + (size_t)i * T;
                const int n = causal ? (i + 1 < len ? i + 1 : len) : len;
                float mx = -INFINITY;
                for (int j = 0; j < n; j++) if (row[j] > mx) mx = row[j];
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                const float inv = n > 0 ? (float)(1.0 / sum) : 0.0f;
                for (int j = 0; j < n; j++) row[j] *= inv;
                for (int j = n; j < T; j++) row[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, v + off, C, 0.0f, out + off, C);
        }
}

void tops_attention_forward_ref(float *out, float *probs, const float *q, const float *k, const float *v, int B,
                                int T, int H, int hd, bool causal, const int *lens) {
    const int C = H * hd;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const int len = lens ? lens[b] : T;
            for (int i = 0; i < T; i++) {
                const int n = causal ? (i + 1 < len ? i + 1 : len) : len;
                float *P = probs + (((size_t)b * H + h) * T + i) * T;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++)
                        s += (double)q[((size_t)b * T + i) * C + h * hd + d] * k[((size_t)b * T + j) * C + h * hd + d];
                    P[j] = (float)(s / sqrt((double)hd));
                    if (P[j] > mx) mx = P[j];
                }
                for (int j = 0; j < n; j++) sum += exp(P[j] - mx);
                for (int j = 0; j < T; j++) P[j] = j < n ? (float)(exp(P[j] - mx) / sum) : 0.0f;
                for (int d = 0; d < hd; d++) {
                    double s = 0;
                    for (int j = 0; j < n; j++) s += (double)P[j] * v[((size_t)b * T + j) * C + h * hd + d];
                    out[((size_t)b * T + i) * C + h * hd + d] = (float)s;
                }
            }
        }
}

void tops_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                             const float *k, const float *v, int B, int T, int H, int hd, float *dP) {
    const int C = H * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const size_t off = (size_t)b * T * C + (size_t)h * hd;
            const float *P = probs + ((size_t)b * H + h) * T * T;
            /* dV += P^T dO ; dP = dO V^T */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dout + off, C, 1.0f, dv + off, C);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dout + off, C, v + off, C, 0.0f, dP, T);
            /* dS = P * (dP - rowsum(dP * P)) */
            for (int i = 0; i < T; i++) {
                float *d = dP + (size_t)i * T;
                const float *p = P + (size_t)i * T;
                double s = 0;
                for (int j = 0; j < T; j++) s += (double)d[j] * p[j];
                for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - (float)s);
            }
            /* dQ += scale dS K ; dK += scale dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dP, T, k + off, C, 1.0f, dq + off, C);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dP, T, q + off, C, 1.0f, dk + off, C);
        }
}

double tops_crossentropy(float *dlogits, const float *logits, const int *targets, int M, int V, float scale,
                         int *n_counted, int *n_correct) {
    double loss = 0;
    int cnt = 0, ok = 0;
    for (int i = 0; i < M; i++) {
        float *d = dlogits ? dlogits + (size_t)i * V : NULL;
        if (targets[i] < 0) {
            if (d) memset(d, 0, sizeof(float) * (size_t)V);
            continue;
        }
        const float *l = logits + (size_t)i * V;
        float mx = -INFINITY;
        int am = 0;
        for (int j = 0; j < V; j++)
            if (l[j] > mx) mx = l[j], am = j;
        double s = 0;
        for (int j = 0; j < V; j++) s += exp((double)l[j] - mx);
        const double lse = mx + log(s);
        loss += lse - l[targets[i]];
        cnt++;
        ok += am == targets[i];
        if (d) {
            for (int j = 0; j < V; j++) d[j] = (float)(exp((double)l[j] - lse)) * scale;
            d[targets[i]] -= scale;
        }
    }
    if (n_counted) *n_counted = cnt;
    if (n_correct) *n_correct = ok;
    return loss;
}
