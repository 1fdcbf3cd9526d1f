/* Decoder benchmarks, printed as figures and ratios measured in one run:
 *  prefill  - tokens/s and GFLOP/s of a synthetic stack of LLaVA-1.5-7B-shaped blocks (n_embd 4096,
 *             n_ff 11008, 32 heads, random weights, F16 and Q8_0), 640 tokens, next to OpenBLAS
 *             SGEMM (640x11008x4096) on the same machine as the ceiling;
 *  sweep    - a patch sweep (an edit at every layer on two object-word rows near the end of a
 *             600-token sequence): reuse + batching vs full recompute, as a ratio.
 *  qwen3    - the same at Qwen3-VL-8B's decoder shape (QK-norm, interleaved M-RoPE);
 * usage: bench_lm [prefill|qwen|qwen3|sweep|all] [--blocks N] [--threads N] [--tmp DIR] [--precision P] */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"
#include "base/internal.h"

#include <cblas.h>

char *openblas_get_corename(void);

#include "synth.h"

static double sgemm_gflops(int M, int N, int K) {
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)N * K),
          *C = malloc(sizeof(float) * (size_t)M * N);
    if (!A || !B || !C) {
        fprintf(stderr, "sgemm %dx%dx%d: out of memory\n", M, N, K);
        free(A);
        free(B);
        free(C);
        return 0;
    }
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = frand();
    for (size_t i = 0; i < (size_t)N * K; i++) B[i] = frand();
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, K, B, K, 0, C, N);
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(A);
    free(B);
    free(C);
    return 2.0 * M * N * K / best / 1e9;
}

static ids_seq *token_seq(int n, int n_embd, int n_vocab) {
    ids_seq *s = ids_seq_new(n_embd);
    ids_err err;
    for (int i = 0; i < n; i++) {
        int32_t t = 3 + (int32_t)((unsigned)(i * 2654435761u) % (unsigned)(n_vocab - 3));
        ids_seq_add_tokens(s, &t, 1, &err);
    }
    return s;
}

/* Write a synthetic model, load it and time its prefill of n_tok tokens (best of two). */
static int time_prefill(const char *path, llama_shape sh, int n_tok, int threads, double *best, size_t *mem) {
    fprintf(stderr, "writing %s ...\n", path);
    if (make_llama(path, sh)) return 1;
    ids_model *m;
    ids_err err;
    if (ids_model_load(&m, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = n_tok;
    p.n_threads = threads;
    ids_ctx *c;
    if (ids_ctx_new(&c, m, p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        ids_model_free(m);
        return 1;
    }
    ids_seq *sq = token_seq(n_tok, sh.n_embd, sh.n_vocab);
    *best = 1e9;
    for (int r = 0; r < 2; r++) {
        double t0 = now();
        ids_ctx_prefill(c, sq, NULL, 0, NULL, NULL, &err);
        double t = now() - t0;
        if (t < *best) *best = t;
    }
    *mem = ids_ctx_memory(c);
    ids_seq_free(sq);
    ids_ctx_free(c);
    ids_model_free(m);
    remove(path);
    return 0;
}

static void bench_prefill(const char *tmp, int blocks, int threads) {
    const int n_tok = 640;
    printf("== prefill: %d blocks of LLaVA-1.5-7B shape (n_embd 4096, n_ff 11008, 32 heads), %d tokens, %d threads\n",
           blocks, n_tok, threads);
    printf("OpenBLAS core: %s\n", openblas_get_corename());
    ids__blas_threads_set(threads); /* for the SGEMM ceiling; the engine sets 1 for itself */
    double ceil = sgemm_gflops(n_tok, 11008, 4096);
    printf("OpenBLAS SGEMM 640x11008x4096: %.1f GFLOP/s (ceiling)\n", ceil);
    int types[2] = {IDS_TYPE_F16, IDS_TYPE_Q8_0};
    for (int k = 0; k < 2; k++) {
        llama_shape s = {4096, 11008, 32, blocks, 32000, types[k], 0, NULL, 0};
        char path[512];
        snprintf(path, sizeof path, "%s/bench-7b-%s.gguf", tmp, ids_type_name(types[k]));
        double best;
        size_t mem;
        if (time_prefill(path, s, n_tok, threads, &best, &mem)) return;
        double params = (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008) * blocks;
        double attn = 2.0 * 2 * 32 * 128 * (double)n_tok * (n_tok + 1) / 2 * blocks;
        double flops = 2.0 * params * n_tok + attn;
        printf("%-5s prefill: %.2f s, %.1f tokens/s, %.1f GFLOP/s = %.2f of the SGEMM ceiling; context %.0f MiB\n",
               ids_type_name(types[k]), best, n_tok / best, flops / best / 1e9, flops / best / 1e9 / ceil,
               (double)mem / (1 << 20));
    }
}

/* The paper's decoders other than LLaVA's, each at one published model's shape, F16: name, what the shape
 * is, the shape, and the published model's block count (to scale the per-block time). */
typedef struct {
    const char *name, *what;
    llama_shape s;
    int full_blocks;
} family_shape;

static const family_shape k_families[] = {
    {"qwen", "Qwen2-VL-2B shape (n_embd 1536, n_ff 8960, 12 heads / 2 KV, M-RoPE)",
     {1536, 8960, 12, 0, 32000, IDS_TYPE_F16, 2, "qwen2vl", 0}, 28},
    {"qwen3", "Qwen3-VL-8B shape (n_embd 4096, n_ff 12288, 32 heads / 8 KV, QK-norm, interleaved M-RoPE)",
     {4096, 12288, 32, 0, 32000, IDS_TYPE_F16, 8, "qwen3vl", 128}, 36},
    /* the first 5 blocks slide (window 1024 > the tokens: no saving) */
    {"gemma3", "Gemma-3-12B shape (n_embd 3840, n_ff 15360, 16 heads of 256 / 8 KV, QK-norm, post-norms, GELU-tanh)",
     {3840, 15360, 16, 0, 32000, IDS_TYPE_F16, 8, "gemma3", 256}, 48},
};

/* One family's F16 prefill of 640 tokens next to the SGEMM ceiling of its MLP shape. */
static void bench_family(const char *tmp, const family_shape *f, int blocks, int threads) {
    const int n_tok = 640;
    llama_shape s = f->s;
    s.n_layer = blocks;
    const int n_kv = s.n_head_kv ? s.n_head_kv : s.n_head, hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    printf("== prefill: %d blocks of %s, F16, %d tokens, %d threads\n", blocks, f->what, n_tok, threads);
    char path[512];
    snprintf(path, sizeof path, "%s/bench-%s.gguf", tmp, s.arch);
    ids__blas_threads_set(threads); /* for the SGEMM ceiling; the engine sets 1 for itself */
    double ceil = sgemm_gflops(n_tok, s.n_ff, s.n_embd), best;
    size_t mem;
    if (time_prefill(path, s, n_tok, threads, &best, &mem)) return;
    double params = (2.0 * s.n_embd * hd * s.n_head + 2.0 * s.n_embd * hd * n_kv + 3.0 * s.n_embd * s.n_ff) * blocks;
    double flops = 2.0 * params * n_tok + 2.0 * 2 * s.n_head * hd * (double)n_tok * (n_tok + 1) / 2 * blocks;
    printf("OpenBLAS SGEMM %dx%dx%d: %.1f GFLOP/s (ceiling)\n", n_tok, s.n_ff, s.n_embd, ceil);
    printf("F16   prefill: %.2f s, %.1f tokens/s, %.1f GFLOP/s = %.2f of the SGEMM ceiling; %.3f s per block "
           "(%d blocks: about %.1f s for %d tokens)\n", best, n_tok / best, flops / best / 1e9,
           flops / best / 1e9 / ceil, best / blocks, f->full_blocks, best / blocks * f->full_blocks, n_tok);
}

static void bench_sweep_one(const ids_model *m, llama_shape s, int n_tok, int L, int threads, ids_precision prec);

/* prec < 0: every precision, f32 and bf16 on an F16 file, int8 on the same weights in Q8_0 (the files
 * int8 is for: their blocks are used as stored). */
static void bench_sweep(const char *tmp, int threads, int prec) {
    const int n_tok = 600, L = 16;
    for (int type = 0; type < 2; type++) {
        llama_shape s = {1024, 2816, 16, L, 32000, type ? IDS_TYPE_Q8_0 : IDS_TYPE_F16, 0, NULL, 0};
        const bool want[3] = {prec < 0 ? !type : prec == IDS_PREC_F32 && !type, prec < 0 ? !type : prec == IDS_PREC_BF16 && !type,
                              prec < 0 ? type : prec == IDS_PREC_INT8 && type};
        if (!want[0] && !want[1] && !want[2]) continue;
        printf("== patch sweep: %d layers (n_embd %d, n_ff %d, %s), %d tokens, edit at every layer on 2 rows near the end, "
               "%d threads\n", L, s.n_embd, s.n_ff, type ? "Q8_0" : "F16", n_tok, threads);
        char path[512];
        snprintf(path, sizeof path, "%s/bench-sweep-%s.gguf", tmp, type ? "q8_0" : "f16");
        fprintf(stderr, "writing %s ...\n", path);
        g_rng = 88172645463325252ull; /* the same weights for both files */
        if (make_llama(path, s)) return;
        ids_model *m;
        ids_err err;
        if (ids_model_load(&m, path, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return;
        }
        for (int p = 0; p < IDS_PREC_COUNT; p++)
            if (want[p]) bench_sweep_one(m, s, n_tok, L, threads, (ids_precision)p);
        ids_model_free(m);
        if (!getenv("IDS_BENCH_KEEP")) remove(path);
    }
}

static void bench_sweep_one(const ids_model *m, llama_shape s, int n_tok, int L, int threads, ids_precision prec) {
    ids_err err;
    printf("-- precision %s\n", ids_precision_name(prec));
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = n_tok;
    p.n_threads = threads;
    p.precision = prec;
    ids_ctx *c;
    if (ids_ctx_new(&c, m, p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    ids_seq *sq = token_seq(n_tok, s.n_embd, s.n_vocab);
    int32_t cand[2] = {5, 6};
    ids_run_opts o = {.cand = cand, .n_cand = 2};
    double t0 = now();
    ids_ctx_prefill(c, sq, NULL, 0, NULL, NULL, &err);
    double t_clean = now() - t0;
    int rows[2] = {n_tok - 12, n_tok - 5};
    float *vec = malloc(sizeof(float) * (size_t)s.n_embd);
    if (!vec) {
        fprintf(stderr, "sweep: out of memory\n");
        ids_seq_free(sq);
        ids_ctx_free(c);
        return;
    }
    for (int i = 0; i < s.n_embd; i++) vec[i] = frand();
    ids_hook hooks[16];
    ids_variant vars[16];
    float lp_reuse[16][2], lp_full[16][2];
    ids_run_out outs[16];
    for (int l = 0; l < L; l++) {
        hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .action = IDS_ACT_ADD, .vec = vec,
                              .len = (size_t)s.n_embd, .sel = {.kind = IDS_SEL_LIST, .list = rows, .n_list = 2}};
        vars[l] = (ids_variant){&hooks[l], 1};
        outs[l] = (ids_run_out){.cand_logprob = lp_reuse[l]};
    }
    t0 = now();
    ids_ctx_run_batch(c, vars, L, &o, outs, &err);
    double t_reuse = now() - t0;
    t0 = now();
    for (int l = 0; l < L; l++) {
        ids_run_out one = {.cand_logprob = lp_reuse[l]};
        ids_ctx_run(c, &hooks[l], 1, &o, &one, &err);
    }
    double t_reuse_single = now() - t0;
    ids_run_opts of = o;
    of.full_recompute = true;
    t0 = now();
    for (int l = 0; l < L; l++) {
        ids_run_out one = {.cand_logprob = lp_full[l]};
        ids_ctx_run(c, &hooks[l], 1, &of, &one, &err);
    }
    double t_full = now() - t0;
    double worst = 0;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 2; k++) worst = fmax(worst, fabs(lp_reuse[l][k] - lp_full[l][k]));
    printf("clean prefill (kept for reuse): %.2f s\n", t_clean);
    printf("%d edited runs, full recompute:        %.2f s\n", L, t_full);
    printf("%d edited runs, reuse, one at a time:  %.3f s  (%.1fx faster)\n", L, t_reuse_single, t_full / t_reuse_single);
    printf("%d edited runs, reuse, batched:        %.3f s  (%.1fx faster)\n", L, t_reuse, t_full / t_reuse);
    printf("max |log P difference| reuse vs full: %.2e\n", worst);
    free(vec);
    ids_seq_free(sq);
    ids_ctx_free(c);
}

int main(int argc, char **argv) {
    const char *which = "all", *tmp = "/tmp";
    int blocks = 2, threads = 2, prec = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            ids_precision pr;
            ids_err err;
            if (ids_precision_parse(argv[++i], &pr, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 2;
            }
            prec = (int)pr;
        }
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: bench_lm [prefill|qwen|qwen3|gemma3|sweep|all] [--blocks N] [--threads N] [--tmp DIR] [--precision P]\n"
                   "(sweep: every precision unless --precision)\n");
            return 0;
        } else which = argv[i];
    }
    if (!strcmp(which, "prefill") || !strcmp(which, "all")) bench_prefill(tmp, blocks, threads);
    for (size_t k = 0; k < sizeof k_families / sizeof k_families[0]; k++)
        if (!strcmp(which, k_families[k].name) || !strcmp(which, "all"))
            bench_family(tmp, &k_families[k], !strcmp(k_families[k].name, "qwen") && blocks <= 2 ? 4 : blocks, threads);
    if (!strcmp(which, "sweep") || !strcmp(which, "all")) bench_sweep(tmp, threads, prec);
    return 0;
}
