/* Matmul kernels, printed as figures: for each precision on the CPU's kernel path, GFLOP/s of
 *  kernel - the micro-kernel alone on an L1-resident packed block (its ceiling),
 *  run     - the whole product Y[M,N] = X[M,K] . W^T from F32 weights (packing included),
 *  packed  - the same on weights packed beforehand (as a model's weights are after their first use),
 * next to OpenBLAS SGEMM on the same shape in the same run. --f16: the weights as F16 rows (a model's F16
 * weights; the f32 precision then reads them as F16 panels where the CPU has a kernel for it).
 * usage: bench_gemm [--m M] [--n N] [--k K] [--threads T] [--precision P] [--f16] */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"
#include "base/gemm.h"

#include <cblas.h>
#include "synth.h"

/* F16 rows [n0, n0 + nr) at [k0, k0 + kv) as F32 (where a kernel set does not read F16 rows itself). */
static void fetch_f16(const void *ctx, int n0, int nr, int k0, int kv, float *dst, size_t ld) {
    const ids__gemm_src *s = ctx;
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < kv; k++) dst[(size_t)r * ld + k] = ids_f16_to_f32(s->f16[(size_t)(n0 + r) * s->ld + k0 + k]);
}

int main(int argc, char **argv) {
    int M = 640, N = 4096, K = 4096, T = 1, only = -1;
    bool f16 = false;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--f16")) {
            f16 = true;
            i--;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "bench_gemm: %s needs a value\n", argv[i]);
            return 2;
        } else if (!strcmp(argv[i], "--m")) M = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--n")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--k")) K = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--precision")) {
            ids_precision pr;
            if (ids_precision_parse(argv[i + 1], &pr, NULL)) return 2;
            only = (int)pr;
        }
        else {
            fprintf(stderr, "usage: bench_gemm [--m M] [--n N] [--k K] [--threads T] [--precision P] [--f16]\n");
            return 2;
        }
    }
    if (M < 1 || N < 1 || K < 1 || T < 1) return 2;
    char cpu[256], flags[256];
    ids_cpu_describe(cpu, sizeof cpu, flags, sizeof flags);
    printf("CPU: %s (%s); kernel path %s; M %d N %d K %d, %d threads, %s weights\n", cpu, flags, ids_cpu_path(), M,
           N, K, T, f16 ? "F16" : "F32");
    float *X = malloc(sizeof(float) * (size_t)M * K), *W = malloc(sizeof(float) * (size_t)N * K),
          *Y = malloc(sizeof(float) * (size_t)M * N);
    uint16_t *H = f16 ? malloc(sizeof(uint16_t) * (size_t)N * K) : NULL;
    if (!X || !W || !Y || (f16 && !H)) return 1;
    for (size_t i = 0; i < (size_t)M * K; i++) X[i] = frand();
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = frand();
    for (size_t i = 0; f16 && i < (size_t)N * K; i++) H[i] = ids_f32_to_f16(W[i]), W[i] = ids_f16_to_f32(H[i]);
    ids_pool *pool = ids__pool_new(T);
    ids__gemm_ws ws;
    ids_err err;
    if (!pool || ids__gemm_ws_init(&ws, T, M, K, &err)) return 1;
    for (int p = 0; p < IDS_PREC_COUNT; p++) {
        if (only >= 0 && p != only) continue;
        ids__gemm g;
        if (ids__gemm_select(&g, (ids_precision)p, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        /* kernel alone: one packed block of kc, one tile, repeated */
        const int kb = g.kc;
        unsigned char *a = aligned_alloc(64, ids__gemm_tile_bytes(&g, kb) + 64),
                      *b = aligned_alloc(64, (size_t)g.nr * kb * 4 + 64 * 64);
        memset(a, 1, ids__gemm_tile_bytes(&g, kb));
        memset(b, 1, (size_t)g.nr * kb * 4);
        float c[16 * 32];
        const int reps = 200000000 / (g.mr * g.nr * kb) + 1;
        double t0 = now();
        for (int r = 0; r < reps; r++) g.kernel(kb, a, b, c, 32, g.mr, g.nr, r > 0);
        double tk = now() - t0;
        free(a);
        free(b);
        ids__gemm_src src = {.n = N, .k = K, .f32 = W, .ld = (size_t)K};
        if (f16) {
            src = (ids__gemm_src){.n = N, .k = K, .f16 = H, .ld = (size_t)K, .fetch = fetch_f16};
            src.ctx = &src;
            ids__gemm gh;
            if (ids__gemm_f16_variant(&g, &gh)) g = gh;
        }
        double best = 1e9, best_packed = 1e9;
        for (int r = 0; r < 3; r++) {
            t0 = now();
            ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &src, Y, (size_t)N);
            double t = now() - t0;
            if (t < best) best = t;
        }
        const size_t pb = ids__gemm_packed_bytes(&g, N, K);
        unsigned char *pk = aligned_alloc(64, (pb + 63) / 64 * 64);
        if (!pk) return 1;
        ids__gemm_pack_weights(pool, &ws, &g, &src, pk);
        const ids__gemm_src psrc = {.n = N, .k = K, .packed = pk};
        for (int r = 0; r < 3; r++) {
            t0 = now();
            ids__gemm_run(pool, &ws, &g, X, (size_t)K, M, &psrc, Y, (size_t)N);
            double t = now() - t0;
            if (t < best_packed) best_packed = t;
        }
        free(pk);
        const double flop = 2.0 * M * N * (double)K;
        printf("%-5s %-18s kernel %6.1f GFLOP/s (1 thread)   run %6.1f GFLOP/s (%.1f ms)   packed %6.1f GFLOP/s\n",
               ids_precision_name(g.prec), g.kernel_name, 2.0 * g.mr * g.nr * kb * (double)reps / tk / 1e9,
               flop / best / 1e9, best * 1e3, flop / best_packed / 1e9);
    }
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, X, K, W, K, 0.0f, Y, N);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("OpenBLAS sgemm (its own threads)  %6.1f GFLOP/s\n", 2.0 * M * N * (double)K / best / 1e9);
    ids__gemm_ws_free(&ws);
    ids__pool_free(pool);
    free(X);
    free(W);
    free(H);
    free(Y);
    return 0;
}
