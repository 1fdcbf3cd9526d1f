/* Matmul kernels (src/base/gemm.c, gemm_x86.c) against a double-precision reference written here
 * from the definitions of the three precisions, on shapes that are not multiples of any tile,
 * every kernel path forced in turn (a path this CPU lacks is skipped, not passed); results the same
 * bit for bit for any thread count, any row chunking, and (F32, int8) on every path. */
#include "test.h"
#include "base/gemm.h"

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static float urand(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static const int k_shapes[][3] = {
    /* M, N, K */
    {1, 1, 1},    {1, 37, 5},    {13, 1, 33},    {29, 67, 301}, {12, 32, 256}, {6, 32, 1024},
    {100, 50, 1030}, {7, 33, 2049}, {25, 130, 64}, {3, 17, 31},  {64, 96, 257},
};

/* The reference's own int8 quantization of a block (from the definition in gemm.h). */
static void ref_quant(const float *x, int n, int8_t *q, double *d) {
    float amax = 0;
    for (int t = 0; t < n; t++) amax = fabsf(x[t]) > amax ? fabsf(x[t]) : amax;
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    *d = amax > 0 ? (double)(amax / 127.0f) : 0.0;
    for (int t = 0; t < 32; t++) {
        float v = t < n ? rintf(x[t] * inv) : 0.0f;
        q[t] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
}

static float bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    x = (x + 0x7fff + ((x >> 16) & 1)) & 0xffff0000u;
    memcpy(&f, &x, 4);
    return f;
}

/* Y = X W^T in double from the precision's definition; bound: a tolerance per element. */
static void reference(ids_precision p, const float *X, const float *W, int M, int N, int K, double *Y, double *bound) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            const float *x = X + (size_t)i * K, *w = W + (size_t)j * K;
            double s = 0, a = 0;
            if (p == IDS_PREC_INT8) {
                for (int b = 0; b * 32 < K; b++) {
                    const int n = K - b * 32 < 32 ? K - b * 32 : 32;
                    int8_t qx[32], qw[32];
                    double dx, dw;
                    ref_quant(x + b * 32, n, qx, &dx);
                    ref_quant(w + b * 32, n, qw, &dw);
                    long long is = 0, ia = 0;
                    for (int t = 0; t < 32; t++) is += qx[t] * qw[t], ia += abs(qx[t] * qw[t]);
                    s += dx * dw * (double)is;
                    a += dx * dw * (double)ia;
                }
            } else {
                for (int k = 0; k < K; k++) {
                    const double xv = p == IDS_PREC_BF16 ? bf16(x[k]) : x[k], wv = p == IDS_PREC_BF16 ? bf16(w[k]) : w[k];
                    s += xv * wv;
                    a += fabs(xv * wv);
                }
            }
            Y[(size_t)i * N + j] = s;
            bound[(size_t)i * N + j] = 2e-6 * a * (1 + K / 256.0) + 1e-30;
        }
}

typedef struct {
    const float *W;
    int K;
} fetch_ctx;

static void fetch_rows(const void *ctx, int n0, int nr, int k0, int kv, float *dst, size_t ld) {
    const fetch_ctx *f = ctx;
    for (int r = 0; r < nr; r++) memcpy(dst + (size_t)r * ld, f->W + (size_t)(n0 + r) * f->K + k0, sizeof(float) * (size_t)kv);
}

/* The kernel sets under test: every path (those this CPU has), then the AMX kernels on emulated tiles,
 * which run wherever the instructions do not (bf16 and int8). */
enum { SET_AMX_EMU = IDS__PATH_COUNT, N_SETS };

static const char *set_name(int s) { return s == SET_AMX_EMU ? "amx-emulated" : ids__gemm_path_name((ids__gemm_path)s); }

static bool kernel_set(int s, ids_precision p, ids__gemm *g) {
    if (s == SET_AMX_EMU) {
        if (p == IDS_PREC_F32 || !ids__k_amx_bf16_emu) return false;
        ids__gemm_init_amx(g, p, true);
        return true;
    }
    if (!ids__gemm_path_ok((ids__gemm_path)s)) return false;
    ids__gemm_init(g, (ids__gemm_path)s, p);
    return true;
}

/* The product with kernel set g, with a pool of n_threads and room for max_rows rows at once. */
static void run_set(const ids__gemm *gp, const float *X, const float *W, int M, int N, int K, int n_threads,
                    int max_rows, bool fetch, float *Y) {
    const ids__gemm g = *gp;
    ids_pool *pool = ids__pool_new(n_threads);
    ids__gemm_ws ws;
    ids_err err;
    if (!pool || ids__gemm_ws_init(&ws, n_threads, max_rows, K, &err)) {
        t_fail(__FILE__, __LINE__, "no pool or workspace");
        ids__pool_free(pool);
        return;
    }
    fetch_ctx fc = {W, K};
    ids__gemm_src src = {.n = N, .k = K};
    if (fetch) src.fetch = fetch_rows, src.ctx = &fc;
    else src.f32 = W, src.ld = (size_t)K;
    ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &src, Y, (size_t)N);
    ids__gemm_ws_free(&ws);
    ids__pool_free(pool);
}

static void run(ids__gemm_path path, ids_precision p, const float *X, const float *W, int M, int N, int K,
                int n_threads, int max_rows, bool fetch, float *Y) {
    ids__gemm g;
    ids__gemm_init(&g, path, p);
    run_set(&g, X, W, M, N, K, n_threads, max_rows, fetch, Y);
}

static void check_set(int set) {
    int tested = 0;
    for (int p = 0; p < IDS_PREC_COUNT; p++) {
        ids__gemm g;
        if (!kernel_set(set, (ids_precision)p, &g)) continue;
        tested++;
        for (size_t s = 0; s < sizeof k_shapes / sizeof *k_shapes; s++) {
            const int M = k_shapes[s][0], N = k_shapes[s][1], K = k_shapes[s][2];
            float *X = malloc(sizeof(float) * (size_t)M * K), *W = malloc(sizeof(float) * (size_t)N * K);
            float *Y = malloc(sizeof(float) * (size_t)M * N), *Y2 = malloc(sizeof(float) * (size_t)M * N);
            double *R = malloc(sizeof(double) * (size_t)M * N), *B = malloc(sizeof(double) * (size_t)M * N);
            REQUIRE(X && W && Y && Y2 && R && B);
            for (size_t i = 0; i < (size_t)M * K; i++) X[i] = urand();
            for (size_t i = 0; i < (size_t)N * K; i++) W[i] = urand() * 0.5f;
            if (K > 40) X[3] = 0, W[K + 5] = 0; /* exact zeros, and a block with one large value */
            if (K > 64) X[40] = 30.0f;
            reference((ids_precision)p, X, W, M, N, K, R, B);
            run_set(&g, X, W, M, N, K, 2, M, false, Y);
            int bad = 0;
            double worst = 0;
            for (size_t i = 0; i < (size_t)M * N; i++) {
                const double e = fabs((double)Y[i] - R[i]);
                if (!(e <= B[i])) bad++;
                if (e / B[i] > worst || isnan(e)) worst = isnan(e) ? INFINITY : e / B[i];
            }
            CHECKF(bad == 0, "%s (%s), %s, M %d N %d K %d: %d of %d outside the bound (worst %.2f x bound)",
                   set_name(set), g.kernel_name, ids_precision_name((ids_precision)p), M, N, K, bad, M * N, worst);
            /* fetched rows, 3 threads, rows in chunks of 5: the same bits */
            run_set(&g, X, W, M, N, K, 3, 5, true, Y2);
            CHECKF(!memcmp(Y, Y2, sizeof(float) * (size_t)M * N), "%s %s M %d N %d K %d: fetched rows / threads / "
                   "chunks change the result", set_name(set), ids_precision_name((ids_precision)p), M, N, K);
            /* F32 and int8 are one chain of operations per element on every path: the same bits as scalar */
            if (p != IDS_PREC_BF16 && set != IDS__PATH_SCALAR) {
                run(IDS__PATH_SCALAR, (ids_precision)p, X, W, M, N, K, 1, M, false, Y2);
                CHECKF(!memcmp(Y, Y2, sizeof(float) * (size_t)M * N), "%s %s M %d N %d K %d: differs from the "
                       "scalar path", set_name(set), ids_precision_name((ids_precision)p), M, N, K);
            }
            free(X), free(W), free(Y), free(Y2), free(R), free(B);
        }
    }
    if (!tested) {
        char why[200];
        snprintf(why, sizeof why, "the %s path cannot run here: %s", set_name(set),
                 set == IDS__PATH_AMX && *ids__gemm_amx_problem() ? ids__gemm_amx_problem() : "this CPU lacks its instructions");
        t_skip(why);
    }
}

TEST(gemm_path_scalar) { check_set(IDS__PATH_SCALAR); }
TEST(gemm_path_avx2) { check_set(IDS__PATH_AVX2); }
TEST(gemm_path_avx512) { check_set(IDS__PATH_AVX512); }
TEST(gemm_path_avx512bf16) { check_set(IDS__PATH_AVX512BF16); }
TEST(gemm_path_vnni) { check_set(IDS__PATH_VNNI); }
TEST(gemm_path_amx) { check_set(IDS__PATH_AMX); }
/* The AMX kernels' layouts, tile configuration and loops, on tiles emulated from the instructions' definitions. */
TEST(gemm_amx_emulated) {
    check_set(SET_AMX_EMU);
    char why[256] = "";
    if (ids__k_amx_bf16_emu) CHECKF(ids__gemm_amx_self_check(true, why, sizeof why), "self-check: %s", why);
}

/* The reference notices a wrong kernel: a product with one weight changed is outside the bound. */
TEST(gemm_reference_notices_errors) {
    const int M = 9, N = 40, K = 300;
    float *X = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K), *Y = malloc(sizeof(float) * M * N);
    double *R = malloc(sizeof(double) * M * N), *B = malloc(sizeof(double) * M * N);
    REQUIRE(X && W && Y && R && B);
    for (int i = 0; i < M * K; i++) X[i] = urand();
    for (int i = 0; i < N * K; i++) W[i] = urand();
    for (int p = 0; p < IDS_PREC_COUNT; p++) {
        reference((ids_precision)p, X, W, M, N, K, R, B);
        W[7 * K + 100] += 0.05f;
        run(IDS__PATH_SCALAR, (ids_precision)p, X, W, M, N, K, 1, M, false, Y);
        W[7 * K + 100] -= 0.05f;
        int bad = 0;
        for (int i = 0; i < M * N; i++) bad += !(fabs((double)Y[i] - R[i]) <= B[i]);
        CHECKF(bad >= M, "%s: a changed weight went unnoticed (%d outside)", ids_precision_name((ids_precision)p), bad);
    }
    free(X), free(W), free(Y), free(R), free(B);
}

TEST(gemm_quantize_row_edges) {
    float x[70];
    int8_t q[96];
    float d[3];
    for (int i = 0; i < 70; i++) x[i] = 0;
    x[0] = -127.0f, x[1] = 0.5f, x[2] = 1.5f, x[3] = 2.5f, x[4] = 63.5f; /* scale 1: ties go to even */
    x[33] = NAN, x[34] = 3.0f;
    x[64] = 1e-30f, x[65] = -1e-30f;
    ids__gemm_quantize_row(x, 70, 96, q, d);
    CHECK(d[0] == 1.0f);
    CHECK(q[0] == -127 && q[1] == 0 && q[2] == 2 && q[3] == 2 && q[4] == 64);
    CHECK_EQ_INT(q[33], 0);   /* NaN -> 0 */
    CHECK_EQ_INT(q[34], 127);
    CHECK(d[1] == 3.0f / 127.0f);
    CHECK(d[2] > 0 && q[64] == 127 && q[65] == -127);
    for (int i = 70; i < 96; i++) CHECK_EQ_INT(q[i], 0);
    for (int i = 0; i < 70; i++) x[i] = 0;
    ids__gemm_quantize_row(x, 70, 96, q, d);
    CHECK(d[0] == 0 && d[1] == 0 && d[2] == 0 && q[5] == 0);
}

TEST(gemm_cpu_env) {
    ids__gemm_path p;
    ids_err err;
    const char *old = getenv("IDSCOPE_CPU");
    char saved[64] = "";
    if (old) snprintf(saved, sizeof saved, "%s", old);
    setenv("IDSCOPE_CPU", "pentium", 1);
    CHECK_EQ_INT(ids__gemm_path_env(&p, &err), IDS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "IDSCOPE_CPU=pentium") && strstr(err.msg, "avx512bf16"));
    setenv("IDSCOPE_CPU", "scalar", 1);
    CHECK_OK_ERR(ids__gemm_path_env(&p, &err), err);
    CHECK_EQ_INT(p, IDS__PATH_SCALAR);
    CHECK(!strcmp(ids_cpu_path(), "scalar"));
    /* a path the CPU lacks is an error naming it (AMX on CPUs without it) */
    for (int q = 0; q < IDS__PATH_COUNT; q++) {
        setenv("IDSCOPE_CPU", ids__gemm_path_name((ids__gemm_path)q), 1);
        ids_status st = ids__gemm_path_env(&p, &err);
        CHECK_EQ_INT(st, ids__gemm_path_ok((ids__gemm_path)q) ? IDS_OK : IDS_ERR_UNSUPPORTED);
        if (st) CHECK(strstr(err.msg, "lacks") || strstr(err.msg, "IDSCOPE_CPU=amx: "));
    }
    if (old) setenv("IDSCOPE_CPU", saved, 1);
    else unsetenv("IDSCOPE_CPU");
}

/* The vectorised packers of X write the same bytes as the portable ones, also for NaN, infinities,
 * rounding ties, zero blocks and tails of K (bf16: finite normal values, where both round alike). */
TEST(gemm_pack_a_simd_matches_portable) {
    int tested = 0;
    for (int path = 0; path < N_SETS; path++) {
        for (int p = 0; p < IDS_PREC_COUNT; p++) {
            ids__gemm g, ref;
            if (!kernel_set(path, (ids_precision)p, &g) || !g.pack_a) continue;
            ref = g;
            ref.pack_a = NULL;
            const int Ks[] = {1, 31, 33, 300, 1100}, ms[] = {1, g.mr - 1, g.mr};
            for (size_t a = 0; a < sizeof Ks / sizeof *Ks; a++)
                for (size_t b = 0; b < sizeof ms / sizeof *ms; b++) {
                    const int K = Ks[a], m = ms[b] < 1 ? 1 : ms[b];
                    float *X = malloc(sizeof(float) * (size_t)g.mr * K);
                    const size_t nb = ids__gemm_tile_bytes(&g, K) + 64;
                    unsigned char *o1 = calloc(1, nb), *o2 = calloc(1, nb);
                    REQUIRE(X && o1 && o2);
                    for (int i = 0; i < g.mr * K; i++) X[i] = urand() * 3;
                    if (p != IDS_PREC_BF16 && K > 40) {
                        X[2] = NAN, X[5] = INFINITY, X[K + 7] = -INFINITY;
                        for (int t = 64; t < 96 && t < K; t++) X[t] = 0; /* a zero block */
                        X[K - 1] = 63.5f, X[K - 2] = -127.0f;               /* a tie after scaling */
                    }
                    ids__gemm_pack_a(&g, X, (size_t)K, m, K, o1, 0);
                    ids__gemm_pack_a(&ref, X, (size_t)K, m, K, o2, 0);
                    CHECKF(!memcmp(o1, o2, ids__gemm_tile_bytes(&g, K)), "%s %s K %d m %d: packed X differs",
                           set_name(path), ids_precision_name((ids_precision)p), K, m);
                    tested++;
                    free(X), free(o1), free(o2);
                }
        }
    }
    if (!tested) t_skip("no vectorised packer on this CPU");
}

/* Random X [M, K], weights as F16 rows H [N, K] and the same values as F32 rows W, two outputs [M, N]. */
typedef struct {
    float *X, *W, *Y1, *Y2;
    uint16_t *H;
} f16_case;

static void f16_case_free(f16_case *f) { free(f->X), free(f->W), free(f->H), free(f->Y1), free(f->Y2); }

static bool f16_case_new(f16_case *f, int M, int N, int K) {
    f->X = malloc(sizeof(float) * M * K), f->W = malloc(sizeof(float) * N * K);
    f->H = malloc(sizeof(uint16_t) * N * K);
    f->Y1 = malloc(sizeof(float) * M * N), f->Y2 = malloc(sizeof(float) * M * N);
    if (!f->X || !f->W || !f->H || !f->Y1 || !f->Y2) {
        f16_case_free(f);
        return false;
    }
    for (int i = 0; i < M * K; i++) f->X[i] = urand();
    for (int i = 0; i < N * K; i++) f->H[i] = ids_f32_to_f16(urand()), f->W[i] = ids_f16_to_f32(f->H[i]);
    return true;
}

/* F16 weights packed straight from their rows give the same bits as the same values given as F32. */
TEST(gemm_f16_rows_match_f32_rows) {
    const int shapes[][3] = {{13, 67, 301}, {40, 96, 1030}, {3, 33, 17}};
    int tested = 0;
    for (int path = 0; path < N_SETS; path++) {
        for (int p = 0; p < IDS_PREC_COUNT; p++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                ids__gemm g;
                if (!kernel_set(path, (ids_precision)p, &g)) continue;
                const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                f16_case fc16;
                REQUIRE(f16_case_new(&fc16, M, N, K));
                float *X = fc16.X, *W = fc16.W, *Y1 = fc16.Y1, *Y2 = fc16.Y2;
                uint16_t *H = fc16.H;
                ids_pool *pool = ids__pool_new(2);
                ids__gemm_ws ws;
                ids_err err;
                REQUIRE(pool && !ids__gemm_ws_init(&ws, 2, M, K, &err));
                ids__gemm_src a = {.n = N, .k = K, .f32 = W, .ld = (size_t)K}, b = {.n = N, .k = K, .f16 = H, .ld = (size_t)K};
                fetch_ctx fc = {W, K};
                b.fetch = fetch_rows, b.ctx = &fc; /* where no packer reads F16 */
                ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &a, Y1, (size_t)N);
                ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &b, Y2, (size_t)N);
                CHECKF(!memcmp(Y1, Y2, sizeof(float) * M * N), "%s %s M %d N %d K %d: F16 rows differ from F32 rows",
                       set_name(path), ids_precision_name((ids_precision)p), M, N, K);
                tested += g.pack_b_f16 != NULL;
                ids__gemm_ws_free(&ws);
                ids__pool_free(pool);
                f16_case_free(&fc16);
            }
    }
    if (!tested) t_skip("no packer reads F16 rows on this CPU");
}

/* Weights packed once (ids__gemm_pack_weights, into exactly ids__gemm_packed_bytes) give the same bits as
 * packing them per product, on every path and precision; F16 weights through the kernels that read F16
 * panels (F16P) give the bits of the F32 kernels on the same values. */
TEST(gemm_packed_weights_same_bits) {
    const int shapes[][3] = {{13, 67, 301}, {40, 96, 1030}, {3, 33, 17}, {1, 1, 1}, {29, 130, 2049}, {100, 70, 1030}};
    int tested = 0, tested_f16p = 0;
    for (int path = 0; path < N_SETS; path++) {
        for (int p = 0; p < IDS_PREC_COUNT; p++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                ids__gemm g;
                if (!kernel_set(path, (ids_precision)p, &g)) continue;
                const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                f16_case fc16;
                REQUIRE(f16_case_new(&fc16, M, N, K));
                float *X = fc16.X, *W = fc16.W, *Y1 = fc16.Y1, *Y2 = fc16.Y2;
                uint16_t *H = fc16.H;
                ids__gemm gh;
                ids_pool *pool = ids__pool_new(3);
                ids__gemm_ws ws;
                ids_err err;
                REQUIRE(pool && !ids__gemm_ws_init(&ws, 3, M, K, &err));
                fetch_ctx fc = {W, K};
                ids__gemm_src a = {.n = N, .k = K, .fetch = fetch_rows, .ctx = &fc};
                ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &a, Y1, (size_t)N);
                const size_t nb = ids__gemm_packed_bytes(&g, N, K);
                unsigned char *pk = aligned_alloc(64, (nb + 63) / 64 * 64), *pk2 = aligned_alloc(64, (nb + 63) / 64 * 64);
                REQUIRE(pk && pk2);
                memset(pk, 0xa5, nb), memset(pk2, 0xa5, nb);
                ids__gemm_pack_weights(pool, &ws, &g, &a, pk);
                ids__gemm_src b = {.n = N, .k = K, .packed = pk};
                memset(Y2, 0xff, sizeof(float) * M * N);
                ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &b, Y2, (size_t)N);
                CHECKF(!memcmp(Y1, Y2, sizeof(float) * M * N), "%s %s M %d N %d K %d: packed weights differ",
                       set_name(path), ids_precision_name((ids_precision)p), M, N, K);
                /* packed by the product itself as it goes (rows in chunks past 42 or so): the same bytes, results */
                ids__gemm_src c = {.n = N, .k = K, .fetch = fetch_rows, .ctx = &fc, .pack_into = pk2};
                memset(Y2, 0xff, sizeof(float) * M * N);
                ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &c, Y2, (size_t)N);
                CHECKF(!memcmp(Y1, Y2, sizeof(float) * M * N) && !memcmp(pk, pk2, nb), "%s %s M %d N %d K %d: packing "
                       "during the product differs", set_name(path), ids_precision_name((ids_precision)p), M, N, K);
                free(pk), free(pk2);
                tested++;
                if (ids__gemm_f16_variant(&g, &gh)) {
                    CHECK_EQ_INT(gh.fmt, IDS__FMT_F16P);
                    ids__gemm_src h = {.n = N, .k = K, .f16 = H, .ld = (size_t)K};
                    memset(Y2, 0xff, sizeof(float) * M * N);
                    ids__gemm_run(pool, &ws, &gh, X, (size_t)K, M, &h, Y2, (size_t)N);
                    CHECKF(!memcmp(Y1, Y2, sizeof(float) * M * N), "%s M %d N %d K %d: F16 panels differ from F32",
                           set_name(path), M, N, K);
                    const size_t nh = ids__gemm_packed_bytes(&gh, N, K);
                    CHECKF(nh * 2 <= nb + (size_t)64 * ((N + 31) / 32) * ((K + 255) / 256),
                           "F16 panels take %zu bytes, F32 ones %zu", nh, nb);
                    pk = aligned_alloc(64, (nh + 63) / 64 * 64);
                    REQUIRE(pk);
                    ids__gemm_pack_weights(pool, &ws, &gh, &h, pk);
                    ids__gemm_src hp = {.n = N, .k = K, .packed = pk};
                    memset(Y2, 0xff, sizeof(float) * M * N);
                    ids__gemm_run(pool, &ws, &gh, X, (size_t)K, M, &hp, Y2, (size_t)N);
                    CHECKF(!memcmp(Y1, Y2, sizeof(float) * M * N), "%s M %d N %d K %d: packed F16 panels differ",
                           set_name(path), M, N, K);
                    free(pk);
                    tested_f16p++;
                }
                ids__gemm_ws_free(&ws);
                ids__pool_free(pool);
                f16_case_free(&fc16);
            }
    }
    CHECK(tested > 0); /* the scalar path is always there */
    if (!tested_f16p) t_skip("no kernel reads F16 panels on this CPU (AVX-512)");
}

/* Several products of one X in one pass (ids__gemm_run_multi) give the bits of one product at a time, on
 * every path and precision, with thread counts 1 and 3, rows in chunks, an empty product, and the three ways
 * to read W mixed: packed beforehand, fetched, and packed as the pass goes (into the bytes
 * ids__gemm_pack_weights makes). */
TEST(gemm_multi_same_bits) {
    const int shapes[][2] = {{100, 301}, {7, 1030}}; /* M, K; N of the products: 67, 1, 0, 130 */
    enum { NP = 4 };
    const int Ns[NP] = {67, 1, 0, 130};
    int tested = 0;
    for (int path = 0; path < N_SETS; path++)
        for (int p = 0; p < IDS_PREC_COUNT; p++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (int nt = 1; nt <= 3; nt += 2) {
                    ids__gemm g;
                    if (!kernel_set(path, (ids_precision)p, &g)) continue;
                    const int M = shapes[s][0], K = shapes[s][1];
                    float *X = malloc(sizeof(float) * M * K), *W[NP], *Y1[NP], *Y2[NP];
                    REQUIRE(X);
                    for (int i = 0; i < M * K; i++) X[i] = urand();
                    ids_pool *pool = ids__pool_new(nt);
                    ids__gemm_ws ws;
                    ids_err err;
                    REQUIRE(pool && !ids__gemm_ws_init(&ws, nt, 40, K, &err)); /* 100 rows: in chunks */
                    fetch_ctx fc[NP];
                    ids__gemm_src src[NP], multi[NP];
                    unsigned char *pk[NP];
                    size_t ldy[NP], nb[NP];
                    for (int w = 0; w < NP; w++) {
                        const int N = Ns[w];
                        W[w] = malloc(sizeof(float) * (N * K + 1)), Y1[w] = malloc(sizeof(float) * (M * N + 1));
                        Y2[w] = malloc(sizeof(float) * (M * N + 1));
                        nb[w] = ids__gemm_packed_bytes(&g, N, K);
                        pk[w] = aligned_alloc(64, (nb[w] + 127) / 64 * 64);
                        REQUIRE(W[w] && Y1[w] && Y2[w] && pk[w]);
                        for (int i = 0; i < N * K; i++) W[w][i] = urand();
                        fc[w] = (fetch_ctx){W[w], K};
                        src[w] = (ids__gemm_src){.n = N, .k = K, .fetch = fetch_rows, .ctx = &fc[w]};
                        ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &src[w], Y1[w], (size_t)N);
                        memset(Y2[w], 0xff, sizeof(float) * M * N);
                        memset(pk[w], 0xa5, nb[w]);
                        multi[w] = src[w], ldy[w] = (size_t)N;
                    }
                    ids__gemm_pack_weights(pool, &ws, &g, &src[0], pk[0]);
                    multi[0] = (ids__gemm_src){.n = Ns[0], .k = K, .packed = pk[0]};
                    multi[3].pack_into = pk[3];
                    ids__gemm_run_multi(pool, &ws, &g, X, (size_t)K, M, NP, multi, Y2, ldy);
                    int stray = 0; /* the fetched product packs nowhere */
                    for (size_t i = 0; i < nb[1]; i++) stray += pk[1][i] != 0xa5;
                    CHECKF(stray == 0, "%s %s: %d bytes written into a buffer no product packs into", set_name(path),
                           ids_precision_name((ids_precision)p), stray);
                    for (int w = 0; w < NP; w++)
                        CHECKF(!memcmp(Y1[w], Y2[w], sizeof(float) * M * Ns[w]), "%s %s M %d K %d, %d threads: "
                               "product %d of the pass differs", set_name(path), ids_precision_name((ids_precision)p),
                               M, K, nt, w);
                    /* pk[3], packed by the pass: the same bytes as packing W[3] */
                    unsigned char *ref = aligned_alloc(64, (nb[3] + 63) / 64 * 64);
                    REQUIRE(ref);
                    memset(ref, 0xa5, nb[3]);
                    ids__gemm_pack_weights(pool, &ws, &g, &src[3], ref);
                    CHECKF(!memcmp(ref, pk[3], nb[3]), "%s %s M %d K %d: the pass packed other bytes", set_name(path),
                           ids_precision_name((ids_precision)p), M, K);
                    free(ref);
                    for (int w = 0; w < NP; w++) free(W[w]), free(Y1[w]), free(Y2[w]), free(pk[w]);
                    free(X);
                    ids__gemm_ws_free(&ws);
                    ids__pool_free(pool);
                    tested++;
                }
    CHECK(tested > 0);
}
