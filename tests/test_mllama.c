/* Llama-3.2-Vision (HF model_type mllama) against tests/golden/mllama-tiny, written with its reference
 * activations by tests/golden/make_mllama.py (a NumPy transcription of HF's modeling_mllama.py and
 * image_processing_mllama.py): the decoder with its gated cross-attention layers on the given
 * cross-attention states, the tiled tower and projector, the whole chain from the image, the
 * cross-attention hook sites, HF preprocessing, malformed folders. */
#include "test.h"
#include "engine/vision.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#define ML "tests/golden/mllama-tiny"
#define ML_E(f) ML "/expected/" f
#define NE 64
#define NL 8

static bool load_npy(const char *path, ids_npy *a) {
    ids_err err;
    if (ids_npy_read(path, a, &err)) {
        t_fail(__FILE__, __LINE__, "%s: %s", path, t_msg(&err));
        return false;
    }
    return true;
}

/* The golden's tokens as a sequence, with the reference cross-attention states after <|image|>. */
static ids_seq *golden_seq(int *image_row, int *n_valid) {
    ids_npy tk, xs;
    if (!load_npy(ML_E("tokens.npy"), &tk)) return NULL;
    if (!load_npy(ML_E("cross_states.npy"), &xs)) {
        ids_npy_free(&tk);
        return NULL;
    }
    ids_err err;
    ids_seq *s = ids_seq_new(NE);
    const int n = (int)tk.shape[0];
    CHECK_OK_ERR(ids_seq_add_tokens(s, (const int32_t *)tk.data, (size_t)n, &err), err);
    *image_row = -1;
    for (int i = 0; i < n; i++)
        if (((const int32_t *)tk.data)[i] == 540) *image_row = i;
    const int nk = (int)xs.shape[0];
    *n_valid = nk; /* the golden image fills all 4 tiles */
    CHECK_OK_ERR(ids_seq_add_cross(s, *image_row, xs.data, nk, *n_valid, &err), err);
    ids_npy_free(&tk);
    ids_npy_free(&xs);
    return s;
}

/* Decoder alone: stream at every layer, the cross-attention outputs and gates, last-row logits. */
TEST(mllama_decoder_golden) {
    ids_err err;
    ids_model *m;
    REQUIRE_OK(ids_model_load(&m, ML, &err), err);
    const ids_hparams *hp = ids_model_hparams(m);
    CHECK(!strcmp(hp->arch, "mllama"));
    CHECK_EQ_INT(hp->n_layer, NL);
    CHECK_EQ_INT(hp->n_xattn, 3);
    CHECK_EQ_INT(hp->xattn_layer[0], 1);
    CHECK_EQ_INT(hp->xattn_layer[1], 4);
    CHECK_EQ_INT(hp->xattn_layer[2], 6);
    CHECK_EQ_INT(hp->n_vocab, 540);
    CHECK_EQ_INT(hp->n_vocab_embd, 548);
    int img, nv;
    ids_seq *s = golden_seq(&img, &nv);
    REQUIRE(s && img == 5);
    const int n = ids_seq_len(s);
    CHECK(ids_seq_cross_images(s, img - 1) == 0 && ids_seq_cross_images(s, img) == 1 &&
          ids_seq_cross_images(s, n + 3) == 1);
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = 64;
    p.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, m, p, &err), err);
    float *resid = calloc((size_t)(NL + 1) * n * NE, sizeof(float)), *xo = calloc((size_t)3 * n * NE, sizeof(float));
    float *gates = calloc((size_t)3 * n * 2, sizeof(float)), logits[540];
    ids_hook h[NL + 1 + 6];
    int nh = 0;
    for (int l = 0; l <= NL; l++)
        h[nh++] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = {.kind = IDS_SEL_ALL}, .action = IDS_ACT_CAPTURE,
                             .out = resid + (size_t)l * n * NE, .len = (size_t)n * NE};
    for (int k = 0; k < 3; k++) {
        h[nh++] = (ids_hook){.site = IDS_SITE_XATTN_OUT, .layer = hp->xattn_layer[k], .sel = {.kind = IDS_SEL_ALL},
                             .action = IDS_ACT_CAPTURE, .out = xo + (size_t)k * n * NE, .len = (size_t)n * NE};
        h[nh++] = (ids_hook){.site = IDS_SITE_XATTN_GATE, .layer = hp->xattn_layer[k], .sel = {.kind = IDS_SEL_ALL},
                             .action = IDS_ACT_CAPTURE, .out = gates + (size_t)k * n * 2, .len = (size_t)n * 2};
    }
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = logits};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, h, nh, &o, &out, &err), err);
    ids_npy r, x, lg;
    if (load_npy(ML_E("resid.npy"), &r)) {
        CHECK_EQ_INT(r.shape[1], n);
        double e = t_max_abs_diff(resid, r.data, (size_t)(NL + 1) * n * NE);
        printf("  mllama decoder: stream max |diff| %.2e", e);
        CHECKF(e <= 1e-3, "stream max |diff| %g", e);
        ids_npy_free(&r);
    }
    if (load_npy(ML_E("xattn_out.npy"), &x)) {
        double e = t_max_abs_diff(xo, x.data, (size_t)3 * n * NE);
        printf(", cross-attention outputs %.2e", e);
        CHECKF(e <= 1e-3, "cross-attention output max |diff| %g", e);
        ids_npy_free(&x);
    }
    if (load_npy(ML_E("logits_last.npy"), &lg)) {
        double e = t_max_abs_diff(logits, lg.data, 540);
        printf(", logits %.2e\n", e);
        CHECKF(e <= 1e-3, "logits max |diff| %g", e);
        ids_npy_free(&lg);
    }
    /* gates: tanh of the stored ones; the MLP's is 0 before the image (HF full_text_row_masked_out_mask) */
    char *js = t_read_file(ML_E("image.json"), NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL, *gj = cJSON_GetObjectItem(root, "gates");
    for (int k = 0; k < 3 && gj; k++) {
        char key[8];
        snprintf(key, sizeof key, "%d", hp->xattn_layer[k]);
        const cJSON *pair = cJSON_GetObjectItem(gj, key);
        const float ga = tanhf((float)cJSON_GetArrayItem(pair, 0)->valuedouble);
        const float gm = tanhf((float)cJSON_GetArrayItem(pair, 1)->valuedouble);
        for (int i = 0; i < n; i++) {
            CHECKF(fabsf(gates[((size_t)k * n + i) * 2] - ga) < 1e-6f, "layer %s row %d: attention gate", key, i);
            CHECKF(fabsf(gates[((size_t)k * n + i) * 2 + 1] - (i < img ? 0.0f : gm)) < 1e-6f, "layer %s row %d: MLP gate",
                   key, i);
        }
    }
    cJSON_Delete(root);
    free(js);
    /* a gate edit: SCALE 0 on both gates of every layer = the text-only run (HF skips the layers) */
    ids_hook off[3];
    for (int k = 0; k < 3; k++)
        off[k] = (ids_hook){.site = IDS_SITE_XATTN_GATE, .layer = hp->xattn_layer[k], .sel = {.kind = IDS_SEL_ALL},
                            .action = IDS_ACT_SCALE, .scale = 0.0f};
    float edited[540], plain[540];
    ids_run_out eo = {.logits = edited};
    CHECK_OK_ERR(ids_ctx_run(c, off, 3, &o, &eo, &err), err);
    ids_seq *t = ids_seq_new(NE);
    for (int i = 0; i < n; i++) CHECK_OK(ids_seq_add_tokens(t, &ids_seq_row(s, i)->token, 1, NULL));
    ids_run_out po = {.logits = plain};
    CHECK_OK_ERR(ids_ctx_prefill(c, t, NULL, 0, &o, &po, &err), err);
    CHECK(t_max_abs_diff(edited, plain, 540) == 0);
    CHECK(t_max_abs_diff(edited, logits, 540) > 1e-3);
    /* sites on a self-attention block are refused, naming the block */
    ids_hook bad = {.site = IDS_SITE_XATTN_OUT, .layer = 2, .sel = {.kind = IDS_SEL_ALL}, .action = IDS_ACT_SCALE,
                    .scale = 2};
    CHECK(ids_ctx_run(c, &bad, 1, &o, &eo, &err) == IDS_ERR_ARG && strstr(err.msg, "block 2"));
    ids_seq_free(t);
    free(resid);
    free(xo);
    free(gates);
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_model_free(m);
}

/* The tower: HF preprocessing of the golden image (4 tiles, ratio 2x2), every block, the projected
 * cross-attention states. */
TEST(mllama_tower_golden) {
    ids_err err;
    ids_vision *v;
    REQUIRE_OK(ids_vision_load(&v, ML, &err), err);
    const ids_vparams *vp = ids_vision_params(v);
    CHECK(!strcmp(vp->projector, "mllama"));
    CHECK_EQ_INT(vp->n_out, 4 * 17);
    CHECK_EQ_INT(vp->n_tokens, 4 * 24);
    CHECK_EQ_INT(vp->n_out_embd, NE);
    CHECK_EQ_INT(vp->n_layer, 6);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, ML "/image.png", &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(v, &img, 1, &pl, &err), err);
    CHECK(pl.tiles_w == 2 && pl.tiles_h == 2 && pl.width == 112 && pl.height == 112);
    ids_npy px, vl, xs;
    float *pix = calloc((size_t)4 * 3 * 56 * 56, sizeof(float));
    CHECK_OK_ERR(ids_vision_preprocess(v, &img, pix, &err), err);
    if (load_npy(ML_E("pixel_values.npy"), &px)) {
        double e = t_max_abs_diff(pix, px.data, (size_t)4 * 3 * 56 * 56);
        CHECKF(e == 0, "pixels differ from HF's by %g", e);
        ids_npy_free(&px);
    }
    float *out = calloc((size_t)vp->n_out * NE, sizeof(float)), *blocks = calloc((size_t)6 * 96 * 32, sizeof(float));
    CHECK_OK_ERR(ids_vision_encode(v, &img, 2, out, blocks, &err), err);
    if (load_npy(ML_E("vision_layers.npy"), &vl)) {
        double e = t_max_abs_diff(blocks, vl.data, (size_t)6 * 96 * 32);
        printf("  mllama tower: blocks max |diff| %.2e", e);
        CHECKF(e <= 1e-3, "tower blocks max |diff| %g", e);
        ids_npy_free(&vl);
    }
    if (load_npy(ML_E("cross_states.npy"), &xs)) {
        double e = t_max_abs_diff(out, xs.data, (size_t)vp->n_out * NE);
        printf(", cross-attention states %.2e\n", e);
        CHECKF(e <= 1e-3, "cross-attention states max |diff| %g", e);
        ids_npy_free(&xs);
    }
    free(pix);
    free(out);
    free(blocks);
    ids_image_free(&img);
    ids_vision_free(v);
}

/* HF MllamaImageProcessor on four sizes: the arrangement (aspect-ratio id, tiles), Pillow's bilinear
 * resize (the stored bytes), black padding, tiles row-major, unused tiles zero. */
TEST(mllama_preprocess_hf) {
    ids_err err;
    ids_vision *v;
    REQUIRE_OK(ids_vision_load(&v, ML, &err), err);
    char *js = t_read_file(ML "/preprocess/cases.json", NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL, *cs;
    REQUIRE(root);
    const int S = 56;
    float *pix = malloc(sizeof(float) * 4 * 3 * S * S);
    int n = 0;
    cJSON_ArrayForEach(cs, root) {
        char src[256], rsz[256];
        snprintf(src, sizeof src, ML "/preprocess/src_%s.png", cs->string);
        snprintf(rsz, sizeof rsz, ML "/preprocess/resized_%s.png", cs->string);
        ids_image a, r;
        if (ids_image_load(&a, src, &err) || ids_image_load(&r, rsz, &err)) {
            t_fail(__FILE__, __LINE__, "%s: %s", cs->string, t_msg(&err));
            continue;
        }
        int ratio = 0, nt = 0;
        CHECK_OK_ERR(ids__vision_tiles_mllama(v, &a, pix, &ratio, &nt, &err), err);
        CHECKF(ratio == cJSON_GetObjectItem(cs, "aspect_ratio_id")->valueint, "%s: aspect ratio id %d", cs->string, ratio);
        CHECKF(nt == cJSON_GetObjectItem(cs, "n_tiles")->valueint, "%s: %d tiles", cs->string, nt);
        ids_vplan pl;
        CHECK_OK(ids_vision_plan(v, &a, 1, &pl, NULL));
        const int tw = pl.tiles_w;
        double worst = 0;
        const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
        for (int t = 0; t < 4; t++)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        const int row = (t / tw) * S + y, col = (t % tw) * S + x;
                        float want = 0;
                        if (t < nt) {
                            const int b = row < r.h && col < r.w ? r.rgb[3 * (row * r.w + col) + c] : 0;
                            want = ((float)(b * (1.0 / 255.0)) - mean[c]) / sd[c];
                        }
                        const double d = fabs(pix[((size_t)t * 3 + c) * S * S + (size_t)y * S + x] - want);
                        if (d > worst) worst = d;
                    }
        CHECKF(worst == 0, "%s: pixels differ by %g", cs->string, worst);
        ids_image_free(&a);
        ids_image_free(&r);
        n++;
    }
    CHECK_EQ_INT(n, 4);
    free(pix);
    cJSON_Delete(root);
    free(js);
    ids_vision_free(v);
}

/* The whole chain from the folder, the image and the prompt: tokens (<|image|> in place of the
 * marker, BOS from the vocabulary), the stream and logits; ids_capture's cross-attention sites. */
TEST(mllama_vlm_chain) {
    ids_err err;
    ids_vlm *v;
    REQUIRE_OK(ids_vlm_load(&v, ML, NULL, &err), err);
    char *prompt = t_read_file(ML "/prompt.txt", NULL);
    ids_image img;
    REQUIRE(prompt);
    REQUIRE_OK(ids_image_load(&img, ML "/image.png", &err), err);
    char *made = ids_vlm_prompt(v, "Is the red circle to the left or right of the blue square?", 1);
    CHECK(made && !strcmp(made, prompt));
    free(made);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, &img, 1, 2, NULL, &s, &err), err);
    ids_npy tk, r, lg;
    const int n = ids_seq_len(s);
    if (load_npy(ML_E("tokens.npy"), &tk)) {
        CHECK_EQ_INT(n, tk.shape[0]);
        for (int i = 0; i < n && i < tk.shape[0]; i++)
            CHECKF(ids_seq_row(s, i)->token == ((const int32_t *)tk.data)[i], "token %d", i);
        ids_npy_free(&tk);
    }
    CHECK_EQ_INT(ids_seq_n_cross(s), 68);
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = 64;
    p.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, ids_vlm_model(v), p, &err), err);
    float *resid = calloc((size_t)(NL + 1) * n * NE, sizeof(float)), logits[540];
    ids_hook h[NL + 1];
    for (int l = 0; l <= NL; l++)
        h[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = {.kind = IDS_SEL_ALL}, .action = IDS_ACT_CAPTURE,
                          .out = resid + (size_t)l * n * NE, .len = (size_t)n * NE};
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = logits};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, h, NL + 1, &o, &out, &err), err);
    if (load_npy(ML_E("resid.npy"), &r)) {
        double e = t_max_abs_diff(resid, r.data, (size_t)(NL + 1) * n * NE);
        printf("  mllama from the image: stream max |diff| %.2e", e);
        CHECKF(e <= 1e-3, "stream max |diff| %g", e);
        ids_npy_free(&r);
    }
    if (load_npy(ML_E("logits_last.npy"), &lg)) {
        double e = t_max_abs_diff(logits, lg.data, 540);
        printf(", logits %.2e\n", e);
        CHECKF(e <= 1e-3, "logits max |diff| %g", e);
        ids_npy_free(&lg);
    }
    /* capture: the cross-attention sites and states beside the stream */
    ids_capture_opts co = {.layers = "all", .positions = "all", .resid = true, .image_embd = true, .vision = true,
                           .xattn = true, .n_threads = 2};
    const char *path = t_tmp("mllama.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &co, path, &err), err);
    ids_st_file *f;
    if (ids_st_open(&f, path, &err) == IDS_OK) {
        const ids_st_tensor *xo = ids_st_find(f, "xattn_out"), *xg = ids_st_find(f, "xattn_gate");
        const ids_st_tensor *cs = ids_st_find(f, "cross_states"), *vs = ids_st_find(f, "vision");
        CHECK(xo && xo->ndim == 3 && xo->shape[0] == 3 && xo->shape[1] == n && xo->shape[2] == NE);
        CHECK(xg && xg->ndim == 3 && xg->shape[2] == 2);
        CHECK(cs && cs->shape[0] == 68 && cs->shape[1] == NE);
        CHECK(vs && vs->shape[0] == 6 && vs->shape[1] == 96 && vs->shape[2] == 32);
        ids_npy x;
        if (xo && load_npy(ML_E("xattn_out.npy"), &x)) {
            CHECK(t_max_abs_diff(xo->data, x.data, (size_t)3 * n * NE) <= 1e-3);
            ids_npy_free(&x);
        }
        ids_st_close(f);
    } else t_fail(__FILE__, __LINE__, "%s", t_msg(&err));
    free(resid);
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_image_free(&img);
    free(prompt);
    ids_vlm_free(v);
}

/* An edited run from the clean one's cache equals the full recompute bit for bit (the cross-attention
 * keys are kept with the sequence); greedy generation continues the image's span. */
TEST(mllama_reuse_generate) {
    ids_err err;
    ids_vlm *v;
    REQUIRE_OK(ids_vlm_load(&v, ML, NULL, &err), err);
    char *prompt = t_read_file(ML "/prompt.txt", NULL);
    ids_image img;
    REQUIRE(prompt);
    REQUIRE_OK(ids_image_load(&img, ML "/image.png", &err), err);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, &img, 1, 2, NULL, &s, &err), err);
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = 40;
    p.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, ids_vlm_model(v), p, &err), err);
    float vec[NE], a[540], b[540], clean[540];
    for (int i = 0; i < NE; i++) vec[i] = 0.2f * sinf((float)i);
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out oc = {.logits = clean}, oa = {.logits = a}, ob = {.logits = b};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, &o, &oc, &err), err);
    ids_hook h[2] = {{.site = IDS_SITE_RESID, .layer = 3, .sel = {.kind = IDS_SEL_RANGE, .begin = 12, .end = 20},
                      .action = IDS_ACT_ADD, .vec = vec, .len = NE},
                     {.site = IDS_SITE_XATTN_GATE, .layer = 6, .sel = {.kind = IDS_SEL_LAST}, .action = IDS_ACT_SCALE,
                      .scale = 0.5f}};
    CHECK_OK_ERR(ids_ctx_run(c, h, 2, &o, &oa, &err), err);
    ids_run_opts full = o;
    full.full_recompute = true;
    CHECK_OK_ERR(ids_ctx_run(c, h, 2, &full, &ob, &err), err);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(t_max_abs_diff(a, clean, 540) > 1e-4);
    int32_t toks[4];
    int n_out = 0;
    CHECK_OK_ERR(ids_ctx_generate(c, NULL, 0, 4, toks, &n_out, &err), err);
    CHECK(n_out >= 1);
    int best = 0;
    for (int i = 1; i < 540; i++) if (clean[i] > clean[best]) best = i;
    CHECK_EQ_INT(toks[0], best);
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_image_free(&img);
    free(prompt);
    ids_vlm_free(v);
}

static ids_status load_run(void *ctx, ids_err *err) {
    const ids_image *img = ctx;
    ids_vlm *v;
    ids_status st = ids_vlm_load(&v, ML, NULL, err);
    if (st) return st;
    ids_seq *s = NULL;
    ids_ctx *c = NULL;
    st = ids_vlm_build_seq(v, "<|start_header_id|>user<|end_header_id|>\n\n<image>Where is the red circle?", img, 1, 1,
                           NULL, &s, err);
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 32, cp.n_threads = 1;
    if (!st) st = ids_ctx_new(&c, ids_vlm_model(v), cp, err);
    if (!st) st = ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, err);
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_vlm_free(v);
    return st;
}

/* Loading the folder, encoding and a run with each allocation failing in turn. */
TEST(mllama_allocation_failures) {
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_load(&img, ML "/image.png", &err), err);
    long n = CHECK_ALLOC_FAILURES(load_run, &img, 3000);
    CHECKF(n > 20, "%ld allocations", n);
    ids_image_free(&img);
}
