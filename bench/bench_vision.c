/* Vision benchmarks: time to encode one image and to prefill image + prompt,
 *  - for the golden LLaVA-shaped model (shared/golden/llava-tiny), and
 *  - for a synthetic LLaVA-1.5-7B-shaped tower (CLIP ViT-L/14-336: 23 blocks of width 1024, 577
 *    tokens, projector to 4096, random F16 weights) feeding a stack of 7B-shaped decoder blocks
 *    (default 2; the per-block time is printed so the full 32-block cost can be read off).
 * usage: bench_vision [--shared DIR] [--blocks N] [--threads N] [--tmp DIR] */
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

static void run(const char *label, const char *text, const char *mmproj, const ids_image *img, int threads,
                int reps) {
    ids_vlm *v;
    ids_err err;
    if (ids_vlm_load(&v, text, mmproj, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    float *rows = malloc(sizeof(float) * (size_t)vp->n_out * vp->n_out_embd);
    if (!rows) {
        fprintf(stderr, "%s: out of memory\n", label);
        ids_vlm_free(v);
        return;
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
    run("synthetic Gemma-3 shape (F16; SigLIP 896 px, 12B decoder)", t, m, &big, threads, 1);
    remove(t);
    remove(m);
    ids_image_free(&big);
    return 0;
}

int main(int argc, char **argv) {
    const char *shared = "../shared", *tmp = "/tmp";
    int blocks = 2, threads = 2, vblocks = 2;
    bool gemma_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shared") && i + 1 < argc) shared = argv[++i];
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else if (!strcmp(argv[i], "--vblocks") && i + 1 < argc) vblocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gemma3")) gemma_only = true;
        else {
            printf("usage: bench_vision [--shared DIR] [--blocks N] [--threads N] [--tmp DIR] [--gemma3 [--vblocks N]]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    char t[512], m[512], im[512];
    if (gemma_only) return bench_gemma3(tmp, blocks, vblocks, threads);
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
