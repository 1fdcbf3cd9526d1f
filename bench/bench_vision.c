/* Vision benchmarks: time to encode one image and to prefill image + prompt,
 *  - for the golden LLaVA-shaped model (shared/golden/llava-tiny), and
 *  - for a synthetic LLaVA-1.5-7B-shaped tower (CLIP ViT-L/14-336: 23 blocks of width 1024, 577
 *    tokens, projector to 4096, random F16 weights) feeding a stack of 7B-shaped decoder blocks
 *    (default 2; the per-block time is printed so the full 32-block cost can be read off).
 *  - with --qwen3vl, for a synthetic Qwen3-VL-8B-shaped tower (width 1152, MLP 4304, 16 heads, patch
 *    16, DeepStack from three blocks; --vblocks of its 27 blocks) encoding a 448x448 image (784
 *    patches), next to the OpenBLAS SGEMM of its MLP product as the ceiling.
 *    --gemma3 prints the same ceiling line for the Gemma 3 tower (4096 patches at 896 px).
 * usage: bench_vision [--shared DIR] [--blocks N] [--threads N] [--tmp DIR] [--gemma3 | --qwen3vl] [--vblocks N] */
#include "base/internal.h"

#include <cblas.h>

#include "synth.h"

static double time_encode(const ids_vision *v, const ids_image *img, int threads, float *out, int reps) {
    double best = 1e9;
    ids_err err;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (ids_vision_encode(v, img, threads, out, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return -1;
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* Encode one image and prefill image + prompt; returns the best encode time (s), or -1. */
static double run(const char *label, const char *text, const char *mmproj, const ids_image *img, int threads,
                  int reps) {
    ids_vlm *v;
    ids_err err;
    if (ids_vlm_load(&v, text, mmproj, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    float *rows = malloc(sizeof(float) * (size_t)vp->n_out * vp->n_out_embd);
    if (!rows) {
        fprintf(stderr, "%s: out of memory\n", label);
        ids_vlm_free(v);
        return -1;
    }
    double enc = time_encode(ids_vlm_vision(v), img, threads, rows, reps);
    char *prompt = ids_vlm_prompt(v, "Is the red circle to the left or right of the blue square?", 1);
    double best = 1e9;
    int n = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        ids_seq *s;
        if (ids_vlm_build_seq(v, prompt, img, 1, threads, NULL, &s, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            break;
        }
        n = ids_seq_len(s);
        ids_ctx_params p = ids_ctx_default_params();
        p.n_ctx = n;
        p.n_threads = threads;
        ids_ctx *c;
        if (ids_ctx_new(&c, ids_vlm_model(v), p, &err) || ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            ids_seq_free(s);
            break;
        }
        double t = now() - t0;
        if (t < best) best = t;
        ids_ctx_free(c);
        ids_seq_free(s);
    }
    int L = ids_model_hparams(ids_vlm_model(v))->n_layer;
    printf("%s:\n  encode one image: %.2f ms (%d tower blocks, %d tokens)\n"
           "  image + prompt (%d rows) through %d decoder blocks: %.2f ms (decoder part %.2f ms, %.2f ms per block)\n",
           label, 1e3 * enc, vp->n_run, vp->n_tokens, n, L, 1e3 * best, 1e3 * (best - enc), 1e3 * (best - enc) / L);
    free(prompt);
    free(rows);
    ids_vlm_free(v);
    return enc;
}

/* OpenBLAS SGEMM of M x N x K (A [M, K] times B [N, K]^T) on random data, best of three: GFLOP/s. */
static double sgemm_gflops(int M, int N, int K, int threads) {
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)N * K);
    float *C = malloc(sizeof(float) * (size_t)M * N);
    double best = 1e9;
    ids__blas_threads_set(threads);
    for (int r = 0; A && B && C && r < 3; r++) {
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = frand();
        for (size_t i = 0; i < (size_t)N * K; i++) B[i] = frand();
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, K, B, K, 0, C, N);
        if (now() - t0 < best) best = now() - t0;
    }
    free(A);
    free(B);
    free(C);
    return 2.0 * M * N * K / best / 1e9;
}

/* Gemma-3-shaped: the SigLIP tower at 896 px (4096 patches, width 1152, MLP 4304, 16 heads; vblocks of
 * its 27 blocks, the time per block printed), pooled to 256 rows for Gemma-3-12B-shaped decoder blocks. */
static int bench_gemma3(const char *tmp, int blocks, int vblocks, int threads) {
    char t[512], m[512];
    ids_err err;
    clip_shape cs = {896, 14, 1152, 4304, 16, vblocks, 3840, IDS_TYPE_F16, true};
    llama_shape ls = {3840, 15360, 16, blocks, 32000, IDS_TYPE_F16, 8, "gemma3", 256};
    snprintf(t, sizeof t, "%s/bench-g3-text.gguf", tmp);
    snprintf(m, sizeof m, "%s/bench-g3-mmproj.gguf", tmp);
    fprintf(stderr, "writing a synthetic Gemma-3-shaped tower (%d blocks) and %d decoder blocks...\n", vblocks, blocks);
    if (make_clip(m, cs) || make_llama(t, ls)) return 1;
    ids_image big;
    ids_image_new(&big, 640, 480, (const uint8_t[3]){40, 90, 200}, &err); /* stretched to 896 x 896 */
    printf("== vision: %d threads\n", threads);
    double enc = run("synthetic Gemma-3 shape (F16; SigLIP 896 px, 12B decoder)", t, m, &big, threads, 1);
    /* the tower's products (q, k, v, o, both MLP halves, Q.K^T and P.V) and the projection of the 256
     * pooled rows, next to the SGEMM of the MLP's first product as the ceiling */
    const double T = 4096, E = 1152, F = 4304;
    const double flops = vblocks * (2 * T * (4 * E * E + 2 * E * F) + 4 * T * T * E) + 2 * 256 * E * 3840;
    const double ceil = sgemm_gflops(4096, 4304, 1152, threads);
    if (enc > 0)
        printf("  tower: %.1f GFLOP/s = %.2f of OpenBLAS SGEMM 4096x4304x1152 (%.1f GFLOP/s); %.3f s per block "
               "(27 blocks: about %.1f s)\n", flops / enc / 1e9, flops / enc / 1e9 / ceil, ceil, enc / vblocks,
               enc / vblocks * 27);
    remove(t);
    remove(m);
    ids_image_free(&big);
    return 0;
}

/* A random Qwen3-VL mmproj: fused qkv, LayerNorm, learned 48x48 positions, DeepStack mergers on the
 * first min(3, blocks) blocks, projection to 4096. */
static int make_qwen3vl_tower(const char *path, int blocks) {
    const int E = 1152, F = 4304, E4 = 4 * E, OUT = 4096, P = 16;
    ids_gguf_writer *w = ids_gguf_writer_new();
    float *buf = malloc(sizeof(float) * (size_t)E4 * OUT);
    ids_err err;
    int rc = !w || !buf;
    const float half[3] = {0.5f, 0.5f, 0.5f};
    ids_gguf_writer_set_str(w, "general.architecture", "clip", &err);
    ids_gguf_writer_set_str(w, "clip.projector_type", "qwen3vl_merger", &err);
    ids_gguf_writer_set_u32(w, "clip.vision.image_size", 768, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.patch_size", P, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.embedding_length", E, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.feed_forward_length", F, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)blocks, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.attention.head_count", 16, &err);
    ids_gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f, &err);
    ids_gguf_writer_set_arr(w, "clip.vision.image_mean", IDS_GGUF_FLOAT32, half, 3, &err);
    ids_gguf_writer_set_arr(w, "clip.vision.image_std", IDS_GGUF_FLOAT32, half, 3, &err);
    ids_gguf_writer_set_bool(w, "clip.use_gelu", true, &err);
#define ADDT(name, nd, ty, scale, ...)                                                              \
    do {                                                                                           \
        int64_t ne_[] = {__VA_ARGS__};                                                             \
        size_t cnt = 1;                                                                            \
        for (int d_ = 0; d_ < (nd); d_++) cnt *= (size_t)ne_[d_];                                  \
        for (size_t i = 0; i < cnt && !rc; i++) buf[i] = (scale) ? (scale) * frand() : 1.0f;       \
        if (!rc && ids_gguf_writer_add_tensor_f32(w, name, ty, nd, ne_, buf, &err)) rc = 1;        \
    } while (0)
    char nm[64];
    const float se = 1.0f / sqrtf((float)E), s4 = 1.0f / sqrtf((float)E4);
    ADDT("v.patch_embd.weight", 4, IDS_TYPE_F16, 0.02f, P, P, 3, E);
    ADDT("v.patch_embd.weight.1", 4, IDS_TYPE_F16, 0.02f, P, P, 3, E);
    ADDT("v.patch_embd.bias", 1, IDS_TYPE_F32, 0.01f, E);
    ADDT("v.position_embd.weight", 2, IDS_TYPE_F32, 0.02f, E, 48 * 48);
    for (int l = 0; l < blocks; l++) {
        const char *vecs[] = {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn_out.bias", "ffn_down.bias"};
        for (int k = 0; k < 6; k++) {
            snprintf(nm, sizeof nm, "v.blk.%d.%s", l, vecs[k]);
            ADDT(nm, 1, IDS_TYPE_F32, k % 2 ? 0.01f : 0.0f, E);
        }
        snprintf(nm, sizeof nm, "v.blk.%d.attn_qkv.weight", l); ADDT(nm, 2, IDS_TYPE_F16, se, E, 3 * E);
        snprintf(nm, sizeof nm, "v.blk.%d.attn_qkv.bias", l); ADDT(nm, 1, IDS_TYPE_F32, 0.01f, 3 * E);
        snprintf(nm, sizeof nm, "v.blk.%d.attn_out.weight", l); ADDT(nm, 2, IDS_TYPE_F16, se, E, E);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.weight", l); ADDT(nm, 2, IDS_TYPE_F16, se, E, F);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.bias", l); ADDT(nm, 1, IDS_TYPE_F32, 0.01f, F);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", l); ADDT(nm, 2, IDS_TYPE_F16, 1.0f / sqrtf((float)F), F, E);
        if (l >= 3) continue;
        snprintf(nm, sizeof nm, "v.deepstack.%d.norm.weight", l); ADDT(nm, 1, IDS_TYPE_F32, 0.0f, E4);
        snprintf(nm, sizeof nm, "v.deepstack.%d.norm.bias", l); ADDT(nm, 1, IDS_TYPE_F32, 0.01f, E4);
        snprintf(nm, sizeof nm, "v.deepstack.%d.fc1.weight", l); ADDT(nm, 2, IDS_TYPE_F16, s4, E4, E4);
        snprintf(nm, sizeof nm, "v.deepstack.%d.fc1.bias", l); ADDT(nm, 1, IDS_TYPE_F32, 0.01f, E4);
        snprintf(nm, sizeof nm, "v.deepstack.%d.fc2.weight", l); ADDT(nm, 2, IDS_TYPE_F16, s4, E4, OUT);
        snprintf(nm, sizeof nm, "v.deepstack.%d.fc2.bias", l); ADDT(nm, 1, IDS_TYPE_F32, 0.01f, OUT);
    }
    ADDT("v.post_ln.weight", 1, IDS_TYPE_F32, 0.0f, E);
    ADDT("v.post_ln.bias", 1, IDS_TYPE_F32, 0.01f, E);
    ADDT("mm.0.weight", 2, IDS_TYPE_F16, s4, E4, E4);
    ADDT("mm.0.bias", 1, IDS_TYPE_F32, 0.01f, E4);
    ADDT("mm.2.weight", 2, IDS_TYPE_F16, s4, E4, OUT);
    ADDT("mm.2.bias", 1, IDS_TYPE_F32, 0.01f, OUT);
#undef ADDT
    if (!rc && ids_gguf_writer_write(w, path, &err)) rc = 1;
    if (rc) fprintf(stderr, "%s: %s\n", path, w && buf ? err.msg : "out of memory");
    ids_gguf_writer_free(w);
    free(buf);
    return rc;
}

/* One 448x448 image through the synthetic Qwen3-VL tower (main and DeepStack rows), best of two, and
 * the SGEMM of its MLP's first product (784 x 4304 x 1152) as the ceiling. */
static void bench_qwen3vl_tower(const char *tmp, int blocks, int threads) {
    char m[512];
    snprintf(m, sizeof m, "%s/bench-qwen3vl-mmproj.gguf", tmp);
    fprintf(stderr, "writing a synthetic Qwen3-VL-8B-shaped tower of %d blocks...\n", blocks);
    ids_vision *v;
    ids_err err;
    if (make_qwen3vl_tower(m, blocks) || ids_vision_load(&v, m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        remove(m);
        return;
    }
    ids_image img;
    ids_image_new(&img, 448, 448, (const uint8_t[3]){40, 90, 200}, &err);
    const ids_vparams *vp = ids_vision_params(v);
    ids_vplan pl;
    ids_vision_plan(v, &img, 1, &pl, &err);
    float *out = malloc(sizeof(float) * (size_t)pl.n_out * vp->n_out_embd * (size_t)(1 + vp->n_deepstack));
    float *A = malloc(sizeof(float) * 784 * 1152), *B = malloc(sizeof(float) * 4304 * 1152), *C = malloc(sizeof(float) * 784 * 4304);
    double best = 1e9, gemm = 1e9;
    for (int r = 0; out && r < 2; r++) {
        double t0 = now();
        if (ids_vision_encode_deepstack(v, &img, 1, threads, out, out + (size_t)pl.n_out * vp->n_out_embd, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            break;
        }
        if (now() - t0 < best) best = now() - t0;
    }
    ids__blas_threads_set(threads);
    for (int r = 0; A && B && C && r < 3; r++) {
        for (size_t i = 0; i < (size_t)784 * 1152; i++) A[i] = frand();
        for (size_t i = 0; i < (size_t)4304 * 1152; i++) B[i] = frand();
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 784, 4304, 1152, 1, A, 1152, B, 1152, 0, C, 4304);
        if (now() - t0 < gemm) gemm = now() - t0;
    }
    const double T = pl.n_tokens, E = 1152, F = 4304;
    const double flops = blocks * (2 * T * (4 * E * E + 2 * E * F) + 4 * T * T * E) +
                         (1 + vp->n_deepstack) * 2 * (T / 4) * (16 * E * E + 4 * E * 4096);
    printf("synthetic Qwen3-VL-8B tower, %d of 27 blocks, %d DeepStack mergers, 448x448 (%d patches, %d rows):\n"
           "  encode: %.2f s, %.1f GFLOP/s = %.2f of OpenBLAS SGEMM 784x4304x1152 (%.1f GFLOP/s); %.3f s per block "
           "(27 blocks: about %.1f s)\n", blocks, vp->n_deepstack, pl.n_tokens, pl.n_out, best, flops / best / 1e9,
           flops / best / 1e9 / (2.0 * 784 * 4304 * 1152 / gemm / 1e9), 2.0 * 784 * 4304 * 1152 / gemm / 1e9,
           best / blocks, best / blocks * 27);
    free(A);
    free(B);
    free(C);
    free(out);
    ids_image_free(&img);
    ids_vision_free(v);
    remove(m);
}

int main(int argc, char **argv) {
    const char *shared = "../shared", *tmp = "/tmp";
    int blocks = 2, threads = 2, vblocks = 2;
    bool gemma_only = false;
    bool qwen3_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shared") && i + 1 < argc) shared = argv[++i];
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else if (!strcmp(argv[i], "--vblocks") && i + 1 < argc) vblocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gemma3")) gemma_only = true;
        else if (!strcmp(argv[i], "--qwen3vl")) qwen3_only = true;
        else {
            printf("usage: bench_vision [--shared DIR] [--blocks N] [--threads N] [--tmp DIR] [--gemma3 | --qwen3vl] [--vblocks N]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    char t[512], m[512], im[512];
    if (gemma_only) return bench_gemma3(tmp, blocks, vblocks, threads);
    if (qwen3_only) {
        bench_qwen3vl_tower(tmp, vblocks > 0 ? vblocks : 4, threads);
        return 0;
    }
    snprintf(t, sizeof t, "%s/golden/llava-tiny/text.gguf", shared);
    snprintf(m, sizeof m, "%s/golden/llava-tiny/mmproj.gguf", shared);
    snprintf(im, sizeof im, "%s/golden/llava-tiny/image.png", shared);
    ids_image img;
    ids_err err;
    if (ids_image_load(&img, im, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("== vision: %d threads\n", threads);
    run("golden llava-tiny", t, m, &img, threads, 5);
    clip_shape cs = {336, 14, 1024, 4096, 16, 23, 4096, IDS_TYPE_F16, false};
    llama_shape ls = {4096, 11008, 32, blocks, 32000, IDS_TYPE_F16, 0, NULL, 0};
    snprintf(t, sizeof t, "%s/bench-vis-text.gguf", tmp);
    snprintf(m, sizeof m, "%s/bench-vis-mmproj.gguf", tmp);
    fprintf(stderr, "writing synthetic LLaVA-7B-shaped tower and %d decoder blocks...\n", blocks);
    if (make_clip(m, cs) || make_llama(t, ls)) return 1;
    ids_image big;
    ids_image_new(&big, 640, 480, (const uint8_t[3]){40, 90, 200}, &err); /* padded and resized to 336 */
    run("synthetic LLaVA-1.5-7B shape (F16)", t, m, &big, threads, 2);
    remove(t);
    remove(m);
    ids_image_free(&big);
    ids_image_free(&img);
    return 0;
}
