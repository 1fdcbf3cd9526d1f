/* llama.cpp's outputs for one VLM prompt with one image, for the golden data (built and run by
 * make_qwen25vl.py, make_qwen3vl.py and make_internvl.py against a llama.cpp build; not part of idscope's build):
 *   llamacpp_dump TEXT.gguf MMPROJ.gguf IMAGE PROMPT_FILE OUTDIR
 * The prompt's "<image>" is replaced by mtmd's media marker. Writes into OUTDIR:
 *   tokens.json          the chunks as mtmd tokenizes them: ["text", [ids]] / ["image", n_rows]
 *   positions.npy        int32 [n, 3]: the M-RoPE (t, h, w) position of every row
 *   image_embd.npy       float32 [n_img, n_embd_inp]: the projector's rows (of every image chunk, in
 *                        order: InternVL's tiles are one chunk each; Qwen3-VL: each row the main
 *                        row and then its DeepStack rows, n_embd each)
 *   vision_layer-N.npy   float32 [n_patches, n_embd_v]: the tower's stream after block N
 *                        ("layer_out-N", in the tower's own patch order, chunk after chunk)
 *   resid-N.npy          float32 [rows, n_embd]: the decoder's "l_out-N" (stream after block N; the
 *                        last block keeps only the rows whose logits are computed)
 *   logits_last.npy      float32 [n_vocab]: logits of the last position */
#include "ggml-backend.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 64

typedef struct {
    const char *prefix; /* "l_out-" or "layer_out-" */
    float *buf[MAX_LAYERS];
    size_t n[MAX_LAYERS], cap[MAX_LAYERS]; /* floats */
    int width, n_layer;
    int on;
} capture;

static bool cb(struct ggml_tensor *t, bool ask, void *ud) {
    capture *c = ud;
    size_t pl = strlen(c->prefix);
    if (strncmp(t->name, c->prefix, pl) != 0) return false;
    char *end;
    long l = strtol(t->name + pl, &end, 10);
    if (end == t->name + pl || *end) return false; /* "layer_out-1 (reshaped)" and the like are other tensors */
    if (ask) return c->on;
    if (l < 0 || l >= MAX_LAYERS || t->type != GGML_TYPE_F32) return true;
    size_t nf = (size_t)ggml_nelements(t);
    if (c->n[l] + nf > c->cap[l]) {
        c->cap[l] = (c->n[l] + nf) * 2;
        c->buf[l] = realloc(c->buf[l], c->cap[l] * sizeof(float));
    }
    ggml_backend_tensor_get(t, c->buf[l] + c->n[l], 0, nf * sizeof(float));
    c->n[l] += nf;
    c->width = (int)t->ne[0];
    if (l + 1 > c->n_layer) c->n_layer = l + 1;
    return true;
}

static void write_npy(const char *dir, const char *name, const char *descr, int ndim, const long *shape,
                      const void *data, size_t bytes) {
    char path[1024], hdr[256], sh[128] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < ndim; i++) {
        char d[32];
        snprintf(d, sizeof d, "%ld%s", shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
        strcat(sh, d);
    }
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    unsigned short hl = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hl, 2, 1, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

/* One file per layer, NAME-N.npy [rows, width] (the decoder's last layer keeps only the rows
 * whose logits are asked for). */
static void write_layers(const char *dir, const char *name, const capture *c) {
    for (int l = 0; l < c->n_layer; l++) {
        char fn[256];
        snprintf(fn, sizeof fn, "%s-%d.npy", name, l);
        long shape[2] = {(long)(c->n[l] / (size_t)c->width), c->width};
        write_npy(dir, fn, "<f4", 2, shape, c->buf[l], c->n[l] * sizeof(float));
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TEXT.gguf MMPROJ.gguf IMAGE PROMPT_FILE OUTDIR\n", argv[0]);
        return 2;
    }
    const char *out = argv[5];
    char prompt[8192] = "", marked[8192] = "";
    FILE *pf = fopen(argv[4], "rb");
    if (!pf) return 1;
    size_t plen = fread(prompt, 1, sizeof prompt - 1, pf);
    prompt[plen] = 0;
    fclose(pf);
    char *m = strstr(prompt, "<image>");
    if (!m) return 1;
    snprintf(marked, sizeof marked, "%.*s%s%s", (int)(m - prompt), prompt, mtmd_default_marker(), m + 7);

    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    capture lc = {.prefix = "l_out-", .on = 1}, vc = {.prefix = "layer_out-", .on = 1};
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.cb_eval = cb;
    cp.cb_eval_user_data = &lc;
    struct llama_context *lctx = llama_init_from_model(model, cp);
    struct mtmd_context_params vp = mtmd_context_params_default();
    vp.use_gpu = false;
    vp.n_threads = 2;
    vp.warmup = false;
    vp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    vp.cb_eval = cb;
    vp.cb_eval_user_data = &vc;
    mtmd_context *vctx = mtmd_init_from_file(argv[2], model, vp);
    if (!lctx || !vctx) return 1;
    struct mtmd_helper_bitmap_wrapper bw = mtmd_helper_bitmap_init_from_file(vctx, argv[3], false,
                                                                              mtmd_helper_init_opt_default());
    if (!bw.bitmap) return 1;
    mtmd_input_chunks *chunks = mtmd_input_chunks_init();
    mtmd_input_text txt = {.text = marked, .text_len = strlen(marked), .add_special = true, .parse_special = true};
    const mtmd_bitmap *bms[1] = {bw.bitmap};
    if (mtmd_tokenize(vctx, chunks, &txt, bms, 1)) return 1;

    /* tokens.json and the positions of every row */
    char path[1024];
    snprintf(path, sizeof path, "%s/tokens.json", out);
    FILE *tj = fopen(path, "w");
    fprintf(tj, "{\"chunks\": [");
    int *pos = malloc(sizeof(int) * 3 * 4096), n_rows = 0;
    float *embd = NULL;
    size_t n_embd_rows = 0;
    llama_pos n_past = 0;
    const int n_embd = llama_model_n_embd_inp(model); /* Qwen3-VL: the main rows, then the DeepStack rows */
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
        const mtmd_input_chunk *ch = mtmd_input_chunks_get(chunks, i);
        if (i) fprintf(tj, ", ");
        if (mtmd_input_chunk_get_type(ch) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
            size_t n;
            const llama_token *tk = mtmd_input_chunk_get_tokens_text(ch, &n);
            fprintf(tj, "[\"text\", [");
            for (size_t k = 0; k < n; k++) {
                fprintf(tj, "%s%d", k ? ", " : "", tk[k]);
                pos[3 * n_rows] = pos[3 * n_rows + 1] = pos[3 * n_rows + 2] = n_past + (llama_pos)k;
                n_rows++;
            }
            fprintf(tj, "]]");
        } else {
            const mtmd_image_tokens *it = mtmd_input_chunk_get_tokens_image(ch);
            size_t n = mtmd_input_chunk_get_n_tokens(ch);
            fprintf(tj, "[\"image\", %zu]", n);
            for (size_t k = 0; k < n; k++) {
                struct mtmd_decoder_pos p = mtmd_image_tokens_get_decoder_pos(it, n_past, k);
                pos[3 * n_rows] = (int)p.t;
                pos[3 * n_rows + 1] = (int)p.y;
                pos[3 * n_rows + 2] = (int)p.x;
                n_rows++;
            }
            /* the image alone, its tower blocks captured */
            if (mtmd_encode_chunk(vctx, ch)) return 1;
            embd = realloc(embd, (n_embd_rows + n) * (size_t)n_embd * sizeof(float));
            memcpy(embd + n_embd_rows * (size_t)n_embd, mtmd_get_output_embd(vctx), n * (size_t)n_embd * sizeof(float));
            n_embd_rows += n;
        }
        n_past += mtmd_input_chunk_get_n_pos(ch);
    }
    fprintf(tj, "]}\n");
    fclose(tj);
    long sh[2] = {(long)n_embd_rows, n_embd};
    write_npy(out, "image_embd.npy", "<f4", 2, sh, embd, n_embd_rows * (size_t)n_embd * sizeof(float));
    write_layers(out, "vision_layer", &vc);
    vc.on = 0;
    free(embd);
    long ps[2] = {n_rows, 3};
    write_npy(out, "positions.npy", "<i4", 2, ps, pos, sizeof(int) * 3 * (size_t)n_rows);

    llama_pos new_past;
    if (mtmd_helper_eval_chunks(vctx, lctx, chunks, 0, 0, 512, true, &new_past)) return 1;
    write_layers(out, "resid", &lc);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    long ls[1] = {n_vocab};
    write_npy(out, "logits_last.npy", "<f4", 1, ls, llama_get_logits_ith(lctx, -1), sizeof(float) * (size_t)n_vocab);
    fprintf(stderr, "llamacpp_dump: %d rows, %d decoder layers, %d tower blocks\n", n_rows, lc.n_layer, vc.n_layer);
    mtmd_input_chunks_free(chunks);
    mtmd_bitmap_free(bw.bitmap);
    mtmd_free(vctx);
    llama_free(lctx);
    llama_model_free(model);
    return 0;
}
