/* InternVL3 benchmarks, figures and ratios measured in one run:
 *  tower   - one 448 x 448 image (one tile: 1025 tokens) through a synthetic InternViT-300M-shaped
 *            tower (width 1024, MLP 4096, 16 heads, layer scale, random F16 weights; --vblocks of its
 *            24 blocks, the time per block printed so the whole tower can be read off), pixel
 *            shuffle and the projector to 3584, next to OpenBLAS SGEMM 1025x4096x1024;
 *  prefill - a stack of InternVL3-8B text blocks (Qwen2.5-7B: arch qwen2, n_embd 3584, MLP 18944,
 *            28 heads / 4 KV, q/k/v biases, F16), 256 image rows + 64 text tokens, next to SGEMM
 *            320x18944x3584.
 * usage: bench_internvl [--vblocks N] [--blocks N] [--threads N] [--tmp DIR] */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"
#include "base/internal.h"

#include <cblas.h>

#include "synth.h"

static double sgemm_gflops(int M, int N, int K) {
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)N * K),
          *C = malloc(sizeof(float) * (size_t)M * N);
    double best = 1e9;
    for (size_t i = 0; A && B && i < (size_t)M * K; i++) A[i] = frand();
    for (size_t i = 0; A && B && i < (size_t)N * K; i++) B[i] = frand();
    for (int r = 0; A && B && C && r < 3; r++) {
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

/* A random "internvl" mmproj: 448 px tiles, patch 14, width E, MLP F, n_layer blocks, projector to D. */
static int make_internvl(const char *path, int E, int F, int H, int n_layer, int D) {
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_err err;
    const int S = 448, P = 14, T = (S / P) * (S / P) + 1;
    float *buf = malloc(sizeof(float) * (size_t)4 * E * (F > D ? F : D));
    if (!w || !buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        free(buf);
        ids_gguf_writer_free(w);
        return 1;
    }
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    ids_gguf_writer_set_str(w, "general.architecture", "clip", &err);
    ids_gguf_writer_set_str(w, "clip.projector_type", "internvl", &err);
    ids_gguf_writer_set_u32(w, "clip.vision.image_size", (uint32_t)S, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.patch_size", (uint32_t)P, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.embedding_length", (uint32_t)E, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)F, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)n_layer, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.attention.head_count", (uint32_t)H, &err);
    ids_gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f, &err);
    ids_gguf_writer_set_arr(w, "clip.vision.image_mean", IDS_GGUF_FLOAT32, mean, 3, &err);
    ids_gguf_writer_set_arr(w, "clip.vision.image_std", IDS_GGUF_FLOAT32, std, 3, &err);
    ids_gguf_writer_set_bool(w, "clip.use_gelu", true, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.projector.scale_factor", 2, &err);
    int rc = 0;
    char nm[64];
#define ADDN(name, nd, ty, scale, ...)                                                          \
    do {                                                                                       \
        int64_t ne_[] = {__VA_ARGS__};                                                         \
        size_t cnt = 1;                                                                        \
        for (int d_ = 0; d_ < (nd); d_++) cnt *= (size_t)ne_[d_];                              \
        for (size_t i = 0; i < cnt; i++) buf[i] = (scale) ? (scale) * frand() : 1.0f;          \
        if (!rc && ids_gguf_writer_add_tensor_f32(w, name, ty, nd, ne_, buf, &err)) {          \
            fprintf(stderr, "%s\n", err.msg);                                                  \
            rc = 1;                                                                            \
        }                                                                                      \
    } while (0)
    const float sc = 1.0f / sqrtf((float)E);
    ADDN("v.patch_embd.weight", 4, IDS_TYPE_F16, 0.02f, P, P, 3, E);
    ADDN("v.patch_embd.bias", 1, IDS_TYPE_F32, 0.01f, E);
    ADDN("v.class_embd", 1, IDS_TYPE_F32, 0.02f, E);
    ADDN("v.position_embd.weight", 2, IDS_TYPE_F32, 0.02f, E, T);
    for (int l = 0; l < n_layer; l++) {
        const char *mats[4] = {"attn_q", "attn_k", "attn_v", "attn_out"}, *vecs[4] = {"ln1", "ln2", "ls1", "ls2"};
        for (int k = 0; k < 4; k++) {
            snprintf(nm, sizeof nm, "v.blk.%d.%s.weight", l, mats[k]);
            ADDN(nm, 2, IDS_TYPE_F16, sc, E, E);
            snprintf(nm, sizeof nm, "v.blk.%d.%s.bias", l, mats[k]);
            ADDN(nm, 1, IDS_TYPE_F32, 0.01f, E);
            snprintf(nm, sizeof nm, "v.blk.%d.%s.%s", l, vecs[k], k < 2 ? "bias" : "weight");
            ADDN(nm, 1, IDS_TYPE_F32, k < 2 ? 0.01f : 0.1f, E);
        }
        snprintf(nm, sizeof nm, "v.blk.%d.ln1.weight", l);
        ADDN(nm, 1, IDS_TYPE_F32, 0.0f, E);
        snprintf(nm, sizeof nm, "v.blk.%d.ln2.weight", l);
        ADDN(nm, 1, IDS_TYPE_F32, 0.0f, E);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.weight", l);
        ADDN(nm, 2, IDS_TYPE_F16, sc, E, F);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.bias", l);
        ADDN(nm, 1, IDS_TYPE_F32, 0.01f, F);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", l);
        ADDN(nm, 2, IDS_TYPE_F16, 1.0f / sqrtf((float)F), F, E);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.bias", l);
        ADDN(nm, 1, IDS_TYPE_F32, 0.01f, E);
    }
    ADDN("mm.model.mlp.0.weight", 1, IDS_TYPE_F32, 0.0f, 4 * E);
    ADDN("mm.model.mlp.0.bias", 1, IDS_TYPE_F32, 0.01f, 4 * E);
    const float sc1 = 0.5f * sc;
    ADDN("mm.model.mlp.1.weight", 2, IDS_TYPE_F16, sc1, 4 * E, D);
    ADDN("mm.model.mlp.1.bias", 1, IDS_TYPE_F32, 0.01f, D);
    ADDN("mm.model.mlp.3.weight", 2, IDS_TYPE_F16, 1.0f / sqrtf((float)D), D, D);
    ADDN("mm.model.mlp.3.bias", 1, IDS_TYPE_F32, 0.01f, D);
#undef ADDN
    free(buf);
    if (!rc && ids_gguf_writer_write(w, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        rc = 1;
    }
    ids_gguf_writer_free(w);
    return rc;
}

static void bench_tower(const char *tmp, int vblocks, int threads) {
    const int E = 1024, F = 4096, T = 1025, D = 3584;
    char path[512];
    snprintf(path, sizeof path, "%s/bench-internvl-mmproj.gguf", tmp);
    printf("== tower: one 448x448 image (1 tile, %d tokens) through %d InternViT-300M-shaped blocks (F16), %d threads\n",
           T, vblocks, threads);
    ids__blas_threads_set(threads); /* for the SGEMM ceiling; the engine sets 1 for itself */
    const double ceil = sgemm_gflops(T, F, E);
    printf("OpenBLAS SGEMM %dx%dx%d: %.1f GFLOP/s (ceiling)\n", T, F, E, ceil);
    ids_vision *v = NULL;
    ids_image img = {0};
    ids_err err;
    float *out = malloc(sizeof(float) * 256 * D);
    if (!out || make_internvl(path, E, F, 16, vblocks, D) || ids_vision_load(&v, path, &err) ||
        ids_image_new(&img, 448, 448, (const uint8_t[3]){40, 90, 200}, &err)) {
        fprintf(stderr, "tower: %s\n", out ? err.msg : "out of memory");
        goto done;
    }
    double best = 1e9;
    for (int r = 0; r < 2; r++) {
        double t0 = now();
        if (ids_vision_encode(v, &img, threads, out, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            goto done;
        }
        if (now() - t0 < best) best = now() - t0;
    }
    /* per block: q, k, v, out (4 E^2), the MLP (2 E F) per token, attention 2 T^2 E twice */
    const double blk = 2.0 * T * (4.0 * E * E + 2.0 * E * F) + 4.0 * (double)T * T * E;
    const double proj = 2.0 * 256 * (4.0 * E * D + (double)D * D), flops = blk * vblocks + proj;
    printf("encode: %.2f s, %.1f GFLOP/s = %.2f of the SGEMM ceiling; about %.2f s per block (24 blocks: about %.1f s "
           "per tile, %.0f s for 12 tiles + thumbnail)\n", best, flops / best / 1e9, flops / best / 1e9 / ceil,
           best / vblocks, best / vblocks * 24, best / vblocks * 24 * 13);
done:
    ids_image_free(&img);
    ids_vision_free(v);
    free(out);
    remove(path);
}

static void bench_prefill(const char *tmp, int blocks, int threads) {
    const int n_tok = 256 + 64;
    llama_shape s = {3584, 18944, 28, blocks, 32000, IDS_TYPE_F16, 4, "qwen2", 0};
    char path[512];
    snprintf(path, sizeof path, "%s/bench-internvl-text.gguf", tmp);
    printf("== prefill: %d blocks of InternVL3-8B text shape (qwen2: n_embd 3584, n_ff 18944, 28 heads / 4 KV), F16, "
           "%d tokens (one tile + text), %d threads\n", blocks, n_tok, threads);
    ids__blas_threads_set(threads);
    const double ceil = sgemm_gflops(n_tok, 18944, 3584);
    printf("OpenBLAS SGEMM %dx18944x3584: %.1f GFLOP/s (ceiling)\n", n_tok, ceil);
    ids_model *m = NULL;
    ids_err err;
    ids_bench_result r;
    if (make_llama(path, s) || ids_model_load(&m, path, &err) ||
        ids_bench_prefill(m, n_tok, threads, 2, IDS_PREC_F32, &r, &err)) {
        fprintf(stderr, "prefill: %s\n", err.msg);
    } else {
        printf("F16   prefill: %.2f s, %.1f tokens/s, %.1f GFLOP/s = %.2f of the SGEMM ceiling; %.3f s per block "
               "(28 blocks: about %.1f s)\n", r.seconds, r.tokens_per_s, r.gflops, r.gflops / ceil, r.seconds / blocks,
               r.seconds / blocks * 28);
    }
    ids_model_free(m);
    remove(path);
}

int main(int argc, char **argv) {
    const char *tmp = "/tmp";
    int vblocks = 4, blocks = 2, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vblocks") && i + 1 < argc) vblocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else {
            printf("usage: bench_internvl [--vblocks N] [--blocks N] [--threads N] [--tmp DIR]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (vblocks < 1 || vblocks > 24 || blocks < 1 || blocks > 28 || threads < 1) {
        fprintf(stderr, "bench_internvl: --vblocks 1..24, --blocks 1..28, --threads >= 1\n");
        return 2;
    }
    bench_tower(tmp, vblocks, threads);
    bench_prefill(tmp, blocks, threads);
    return 0;
}
