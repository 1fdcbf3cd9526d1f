/* Training kernels: each backward against central finite differences of its forward, and each
 * SGEMM-based kernel against its plain reference. */
#include "test.h"
#include "train/tops.h"

static uint32_t g_seed = 12345;
static float rnd(void) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) / 16777216.0) * 2.0f - 1.0f;
}
static void fill(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] = s * rnd();
}

/* L(x) = sum r * f(x); compares dL/dx[i] (analytic) with finite differences at a few points. */
typedef void (*fwd_fn)(float *y, const float *x, void *ctx);
static int grad_check(const char *what, fwd_fn f, void *ctx, float *x, size_t nx, size_t ny, const float *r,
                      const float *analytic) {
    float *y = malloc(sizeof(float) * ny);
    int bad = 0;
    for (size_t t = 0; t < 12 && t < nx; t++) {
        size_t i = (t * 7919u) % nx;
        const float h = 1e-2f * fmaxf(1.0f, fabsf(x[i]));
        float x0 = x[i];
        double lp = 0, lm = 0;
        x[i] = x0 + h;
        f(y, x, ctx);
        for (size_t k = 0; k < ny; k++) lp += (double)r[k] * y[k];
        x[i] = x0 - h;
        f(y, x, ctx);
        for (size_t k = 0; k < ny; k++) lm += (double)r[k] * y[k];
        x[i] = x0;
        double num = (lp - lm) / (2.0 * h), ana = analytic[i];
        if (fabs(num - ana) > 2e-2 * fmax(fabs(num), fabs(ana)) + 2e-3) {
            if (bad < 3) fprintf(stderr, "  %s: d/dx[%zu]: numeric %g, analytic %g\n", what, i, num, ana);
            bad++;
        }
    }
    free(y);
    return bad;
}

typedef struct { int M, K, N; const float *w, *b, *x; } mm_ctx;
static void mm_x(float *y, const float *x, void *c) { mm_ctx *m = c; tops_matmul_forward(y, x, m->w, m->b, m->M, m->K, m->N); }
static void mm_w(float *y, const float *w, void *c) { mm_ctx *m = c; tops_matmul_forward(y, m->x, w, m->b, m->M, m->K, m->N); }
static void mm_b(float *y, const float *b, void *c) { mm_ctx *m = c; tops_matmul_forward(y, m->x, m->w, b, m->M, m->K, m->N); }

TEST(train_ops_matmul) {
    enum { M = 5, K = 7, N = 6 };
    float x[M * K], w[N * K], b[N], y[M * N], y2[M * N], r[M * N], dx[M * K] = {0}, dw[N * K] = {0}, db[N] = {0};
    fill(x, M * K, 1), fill(w, N * K, 1), fill(b, N, 1), fill(r, M * N, 1);
    tops_matmul_forward(y, x, w, b, M, K, N);
    tops_matmul_forward_ref(y2, x, w, b, M, K, N);
    for (int i = 0; i < M * N; i++) CHECK(fabsf(y[i] - y2[i]) < 1e-5f);
    tops_matmul_backward(dx, dw, db, r, x, w, M, K, N);
    mm_ctx c = {M, K, N, w, b, x};
    CHECK_EQ_INT(grad_check("matmul dx", mm_x, &c, x, M * K, M * N, r, dx), 0);
    CHECK_EQ_INT(grad_check("matmul dw", mm_w, &c, w, N * K, M * N, r, dw), 0);
    CHECK_EQ_INT(grad_check("matmul db", mm_b, &c, b, N, M * N, r, db), 0);
}

typedef struct { int M, C; const float *w, *b, *x; bool rms; } norm_ctx;
static void norm_x(float *y, const float *x, void *cv) {
    norm_ctx *c = cv;
    float mean[16], rstd[16];
    if (c->rms) tops_rmsnorm_forward(y, rstd, x, c->w, c->M, c->C, 1e-5f);
    else tops_layernorm_forward(y, mean, rstd, x, c->w, c->b, c->M, c->C, 1e-5f);
}
static void norm_w(float *y, const float *w, void *cv) {
    norm_ctx *c = cv;
    float mean[16], rstd[16];
    if (c->rms) tops_rmsnorm_forward(y, rstd, c->x, w, c->M, c->C, 1e-5f);
    else tops_layernorm_forward(y, mean, rstd, c->x, w, c->b, c->M, c->C, 1e-5f);
}
static void norm_b(float *y, const float *b, void *cv) {
    norm_ctx *c = cv;
    float mean[16], rstd[16];
    tops_layernorm_forward(y, mean, rstd, c->x, c->w, b, c->M, c->C, 1e-5f);
}

TEST(train_ops_norms) {
    enum { M = 4, C = 9 };
    float x[M * C], w[C], b[C], y[M * C], r[M * C], mean[M], rstd[M];
    fill(x, M * C, 2), fill(w, C, 1), fill(b, C, 1), fill(r, M * C, 1);
    for (int k = 0; k < 2; k++) {
        float dx[M * C] = {0}, dw[C] = {0}, db[C] = {0};
        norm_ctx c = {M, C, w, b, x, k == 1};
        if (k) {
            tops_rmsnorm_forward(y, rstd, x, w, M, C, 1e-5f);
            tops_rmsnorm_backward(dx, dw, r, x, w, rstd, M, C);
        } else {
            tops_layernorm_forward(y, mean, rstd, x, w, b, M, C, 1e-5f);
            tops_layernorm_backward(dx, dw, db, r, x, w, mean, rstd, M, C);
            CHECK_EQ_INT(grad_check("layernorm db", norm_b, &c, b, C, M * C, r, db), 0);
        }
        CHECK_EQ_INT(grad_check(k ? "rmsnorm dx" : "layernorm dx", norm_x, &c, x, M * C, M * C, r, dx), 0);
        CHECK_EQ_INT(grad_check(k ? "rmsnorm dw" : "layernorm dw", norm_w, &c, w, C, M * C, r, dw), 0);
    }
}

static void qg(float *y, const float *x, void *c) { (void)c; tops_quickgelu_forward(y, x, 20); }
static void ge(float *y, const float *x, void *c) { (void)c; tops_gelu_forward(y, x, 20); }
typedef struct { const float *g, *u; } sw_ctx;
static void sw_g(float *y, const float *g, void *c) { tops_swiglu_forward(y, g, ((sw_ctx *)c)->u, 20); }
static void sw_u(float *y, const float *u, void *c) { tops_swiglu_forward(y, ((sw_ctx *)c)->g, u, 20); }

TEST(train_ops_activations) {
    float x[20], r[20], g[20], u[20];
    fill(x, 20, 3), fill(r, 20, 1), fill(g, 20, 3), fill(u, 20, 2);
    float d1[20] = {0}, d2[20] = {0}, dg[20] = {0}, du[20] = {0};
    tops_quickgelu_backward(d1, r, x, 20);
    tops_gelu_backward(d2, r, x, 20);
    tops_swiglu_backward(dg, du, r, g, u, 20);
    CHECK_EQ_INT(grad_check("quickgelu", qg, NULL, x, 20, 20, r, d1), 0);
    CHECK_EQ_INT(grad_check("gelu", ge, NULL, x, 20, 20, r, d2), 0);
    sw_ctx c = {g, u};
    CHECK_EQ_INT(grad_check("swiglu dg", sw_g, &c, g, 20, 20, r, dg), 0);
    CHECK_EQ_INT(grad_check("swiglu du", sw_u, &c, u, 20, 20, r, du), 0);
    float y[20];
    tops_gelu_forward(y, (const float[20]){1.0f}, 1);
    CHECK(fabsf(y[0] - 0.8413447f) < 1e-5f); /* GELU(1) = Phi(1) */
}

static void rope_f(float *y, const float *x, void *c) {
    (void)c;
    memcpy(y, x, sizeof(float) * 3 * 2 * 8);
    tops_rope_forward(y, 3, 3, 2, 8, 10000.0f);
}

TEST(train_ops_rope) {
    float x[48], r[48], d[48];
    fill(x, 48, 1), fill(r, 48, 1);
    memcpy(d, r, sizeof d);
    tops_rope_backward(d, 3, 3, 2, 8, 10000.0f);
    CHECK_EQ_INT(grad_check("rope", rope_f, NULL, x, 48, 48, r, d), 0);
}

typedef struct { int B, T, H, hd; bool causal; const int *lens; const float *q, *k, *v; int which; } at_ctx;
static void at_f(float *y, const float *x, void *cv) {
    at_ctx *c = cv;
    static float probs[2 * 2 * 6 * 6];
    const float *q = c->which == 0 ? x : c->q, *k = c->which == 1 ? x : c->k, *v = c->which == 2 ? x : c->v;
    tops_attention_forward(y, probs, q, k, v, c->B, c->T, c->H, c->hd, c->causal, c->lens);
}

TEST(train_ops_attention) {
    enum { B = 2, T = 6, H = 2, HD = 4, C = H * HD, N = B * T * C };
    float q[N], k[N], v[N], r[N], out[N], out2[N], probs[B * H * T * T], probs2[B * H * T * T], scratch[T * T];
    fill(q, N, 1), fill(k, N, 1), fill(v, N, 1), fill(r, N, 1);
    int lens[B] = {6, 4};
    for (int causal = 0; causal < 2; causal++) {
        tops_attention_forward(out, probs, q, k, v, B, T, H, HD, causal, lens);
        tops_attention_forward_ref(out2, probs2, q, k, v, B, T, H, HD, causal, lens);
        double e = 0;
        for (int i = 0; i < N; i++) e = fmax(e, fabs(out[i] - out2[i]));
        for (int i = 0; i < B * H * T * T; i++) e = fmax(e, fabs(probs[i] - probs2[i]));
        CHECKF(e < 1e-5, "attention (causal %d) differs from the reference by %g", causal, e);
        float dq[N] = {0}, dk[N] = {0}, dv[N] = {0};
        tops_attention_backward(dq, dk, dv, r, probs, q, k, v, B, T, H, HD, scratch);
        at_ctx c = {B, T, H, HD, causal, lens, q, k, v, 0};
        CHECK_EQ_INT(grad_check("attention dq", at_f, &c, q, N, N, r, dq), 0);
        c.which = 1;
        CHECK_EQ_INT(grad_check("attention dk", at_f, &c, k, N, N, r, dk), 0);
        c.which = 2;
        CHECK_EQ_INT(grad_check("attention dv", at_f, &c, v, N, N, r, dv), 0);
    }
}

static void ce_f(float *y, const float *l, void *c) {
    const int *t = c;
    y[0] = (float)tops_crossentropy(NULL, l, t, 3, 5, 1.0f, NULL, NULL);
}

TEST(train_ops_crossentropy) {
    float l[15], d[15], r[1] = {1.0f};
    int t[3] = {2, -1, 4}, n, ok;
    fill(l, 15, 2);
    double loss = tops_crossentropy(d, l, t, 3, 5, 1.0f, &n, &ok);
    CHECK_EQ_INT(n, 2);
    CHECK(loss > 0);
    for (int j = 0; j < 5; j++) CHECK(d[5 + j] == 0.0f);
    CHECK_EQ_INT(grad_check("crossentropy", ce_f, t, l, 15, 1, r, d), 0);
}
