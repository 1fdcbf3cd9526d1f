/* Gemma 3 (text arch "gemma3", projector "gemma3") against the golden data of tests/golden/gemma3-tiny
 * (HF transcription; made by tests/golden/make_gemma3.py, which also compares llama.cpp): capture
 * --all, the attention masks (sliding window of 20 rows on layers 0-4 and 6, the image block attended
 * both ways), reuse = full recompute with edits inside the image block, the post-norm hook sites, HF
 * image preprocessing bit for bit, bad files, allocation failures. */
#include "test.h"

#include <cjson/cJSON.h>

#define G3(f) "tests/golden/gemma3-tiny/" f
#define NV 449
#define NE 64
#define N_ROWS 52
#define IMG0 6   /* first image row: <bos> <start_of_turn> user \n\n\n <start_of_image> come before */
#define IMG1 22  /* one past the last (16 rows) */

/* llama.cpp's token chunks, flattened: -1 on the image rows. */
static int golden_tokens(int32_t *want, int cap) {
    char *js = t_read_file(G3("tokens.json"), NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL, *ch;
    int n = 0;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItem(root, "chunks")) {
        cJSON *val = cJSON_GetArrayItem(ch, 1);
        if (!strcmp(cJSON_GetArrayItem(ch, 0)->valuestring, "image"))
            for (int k = 0; k < val->valueint && n < cap; k++) want[n++] = -1;
        else
            for (int k = 0; k < cJSON_GetArraySize(val) && n < cap; k++) want[n++] = cJSON_GetArrayItem(val, k)->valueint;
    }
    cJSON_Delete(root);
    free(js);
    return n;
}

/* capture --all on the golden pair: the tokens are llama.cpp's (HF's "\n\n" around the image given
 * to it in its prompt), the tower's blocks, the image rows, the stream at every layer and the last
 * logits within 1e-3 of the HF transcription. */
TEST(g3_capture_all_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, G3("text.gguf"), G3("mmproj.gguf"), &err), err);
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    CHECK(hp->gemma3 && hp->swa_window == 20 && hp->swa_pattern == 6 && hp->head_dim == 32 && hp->n_rot == 32);
    CHECK(fabsf(hp->rope_scale - 0.125f) < 1e-7f && hp->rope_base_swa == 10000.0f && hp->logit_softcap == 10.0f);
    CHECK(fabsf(hp->attn_scale - 1.0f / sqrtf(32.0f)) < 1e-7f && hp->embd_scale == 8.0f);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    CHECK(!strcmp(vp->projector, "gemma3") && vp->n_out == 16 && vp->n_tokens == 256 && vp->n_out_embd == NE);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, G3("image.png"), &err), err);
    char *prompt = t_read_file(G3("prompt.txt"), NULL);
    REQUIRE(prompt);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true,
                          .image_embd = true, .vision = true, .n_threads = 2};
    const char *out = t_tmp("g3cap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    int32_t want[128];
    const int n = golden_tokens(want, 128);
    CHECK_EQ_INT(n, N_ROWS);
    CHECK(want[IMG0 - 1] == 6 && want[IMG0] == -1 && want[IMG1 - 1] == -1 && want[IMG1] == 7);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk);
    CHECK(tk->shape[0] == n && memcmp(tk->data, want, sizeof(int32_t) * (size_t)n) == 0);
    CHECK_NPY(f, "vision", G3("expected/vision_layers.npy"), 1e-3);
    CHECK_NPY(f, "image_embd", G3("expected/image_embd.npy"), 1e-3);
    CHECK_NPY(f, "resid", G3("expected/resid.npy"), 1e-3);
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(G3("expected/logits_last.npy"), &ref, &err), err);
    const ids_st_tensor *L = ids_st_find(f, "logits");
    REQUIRE(L && L->shape[0] == n && L->shape[1] == NV && ref.nbytes == NV * 4);
    double e = t_max_abs_diff((const float *)L->data + (size_t)(n - 1) * NV, ref.data, NV);
    CHECKF(e <= 1e-3, "last logits: max |diff| %g", e);
    ids_npy_free(&ref);
    ids_st_close(f);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* The golden sequence in a context (prefilled, clean run kept). */
static ids_ctx *golden_ctx(ids_vlm **vout, ids_seq **sout) {
    ids_err err;
    ids_image img;
    *vout = NULL;
    if (ids_vlm_load(vout, G3("text.gguf"), G3("mmproj.gguf"), &err) || ids_image_load(&img, G3("image.png"), &err))
        return NULL;
    char *prompt = t_read_file(G3("prompt.txt"), NULL);
    ids_status st = ids_vlm_build_seq(*vout, prompt, &img, 1, 2, NULL, sout, &err);
    free(prompt);
    ids_image_free(&img);
    if (st) return NULL;
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 64, cp.n_threads = 2;
    ids_ctx *c;
    if (ids_ctx_new(&c, ids_vlm_model(*vout), cp, &err)) return NULL;
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    if (ids_ctx_prefill(c, *sout, NULL, 0, &o, NULL, &err)) {
        ids_ctx_free(c);
        return NULL;
    }
    return c;
}

/* Attention probabilities: on a sliding layer a row sees the 20 rows up to itself (keys q-19..q),
 * on the global layer 5 every earlier row; image rows see their whole block (later image rows too)
 * and nothing after it; the text row before the block (<start_of_image>) does not see the block. */
TEST(g3_attention_masks) {
    ids_vlm *v;
    ids_seq *s = NULL;
    ids_ctx *c = golden_ctx(&v, &s);
    REQUIRE(c);
    REQUIRE(ids_seq_len(s) == N_ROWS);
    const int nh = 4, n = N_ROWS;
    static float p0[N_ROWS * 4 * N_ROWS], p5[N_ROWS * 4 * N_ROWS];
    ids_hook hs[2] = {{.site = IDS_SITE_ATTN_PROBS, .layer = 0, .sel = {.kind = IDS_SEL_ALL}, .out = p0,
                       .len = sizeof p0 / 4},
                      {.site = IDS_SITE_ATTN_PROBS, .layer = 5, .sel = {.kind = IDS_SEL_ALL}, .out = p5,
                       .len = sizeof p5 / 4}};
    ids_err err;
    CHECK_OK_ERR(ids_ctx_run(c, hs, 2, NULL, NULL, &err), err);
#define P(buf, q, h, k) (buf)[((size_t)(q) * nh + (h)) * n + (k)]
    for (int h = 0; h < nh; h++) {
        for (int k = 0; k < n; k++) {
            const int q = n - 1;
            CHECKF((P(p0, q, h, k) > 0) == (k > q - 20), "layer 0 head %d: last row -> key %d: %g", h, k, P(p0, q, h, k));
            CHECKF(P(p5, q, h, k) > 0, "layer 5 head %d: last row -> key %d: %g", h, k, P(p5, q, h, k));
            const bool in_block = k >= IMG0 && k < IMG1;
            CHECKF((P(p0, IMG0, h, k) > 0) == (k <= IMG0 || in_block), "first image row -> key %d: %g", k,
                   P(p0, IMG0, h, k));
            /* the last image row: its block, and the window (21 - 19 = 2) before it */
            CHECKF((P(p0, IMG1 - 1, h, k) > 0) == (k >= IMG1 - 20 && k < IMG1), "last image row -> key %d: %g", k,
                   P(p0, IMG1 - 1, h, k));
            CHECKF((P(p5, IMG0 - 1, h, k) > 0) == (k < IMG0), "<start_of_image> -> key %d: %g", k, P(p5, IMG0 - 1, h, k));
        }
    }
#undef P
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_vlm_free(v);
}

/* Edits inside the image block change the rows before them in the block (they attend to it), and a
 * reused run (started at the block's first row) gives the bits of a full recompute; also with edits
 * on text after the block and batched variants. */
TEST(g3_reuse_equals_full) {
    ids_vlm *v;
    ids_seq *s = NULL;
    ids_ctx *c = golden_ctx(&v, &s);
    REQUIRE(c);
    float add[NE];
    for (int i = 0; i < NE; i++) add[i] = 2.0f * sinf(0.7f * (float)i);
    const int rows_edit[3] = {IMG0 + 9, IMG1 - 1, 40};
    const int layers_edit[3] = {0, 2, 5};
    static float clean[N_ROWS * NE];
    ids_hook probe = {.site = IDS_SITE_RESID, .layer = 7, .sel = {.kind = IDS_SEL_ALL}, .out = clean,
                      .len = N_ROWS * NE};
    ids_err err;
    CHECK_OK_ERR(ids_ctx_run(c, &probe, 1, NULL, NULL, &err), err);
    for (int ri = 0; ri < 3; ri++)
        for (int li = 0; li < 3; li++) {
            static float cap_r[N_ROWS * NE], cap_f[N_ROWS * NE];
            float lg_r[NV], lg_f[NV];
            ids_hook hs[2] = {{.site = IDS_SITE_RESID, .layer = layers_edit[li],
                               .sel = {.kind = IDS_SEL_RANGE, .begin = rows_edit[ri], .end = rows_edit[ri] + 1},
                               .action = IDS_ACT_ADD, .vec = add, .len = NE},
                              {.site = IDS_SITE_RESID, .layer = 7, .sel = {.kind = IDS_SEL_ALL}, .out = cap_r,
                               .len = N_ROWS * NE}};
            ids_run_opts o = {.logits = IDS_LOGITS_LAST};
            ids_run_out out_r = {.logits = lg_r}, out_f = {.logits = lg_f};
            CHECK_OK_ERR(ids_ctx_run(c, hs, 2, &o, &out_r, &err), err);
            hs[1].out = cap_f;
            o.full_recompute = true;
            CHECK_OK_ERR(ids_ctx_run(c, hs, 2, &o, &out_f, &err), err);
            CHECKF(!memcmp(lg_r, lg_f, sizeof lg_r) && !memcmp(cap_r, cap_f, sizeof cap_r),
                   "row %d layer %d: reused run differs (logits %g, stream %g)", rows_edit[ri], layers_edit[li],
                   t_max_abs_diff(lg_r, lg_f, NV), t_max_abs_diff(cap_r, cap_f, N_ROWS * NE));
            /* the first image row changed when the edit is inside the block, never when it is after */
            double d = t_max_abs_diff(cap_f + (size_t)IMG0 * NE, clean + (size_t)IMG0 * NE, NE);
            const bool inside = rows_edit[ri] < IMG1;
            CHECKF(inside ? d > 1e-3 : d == 0, "row %d layer %d: first image row moved by %g", rows_edit[ri],
                   layers_edit[li], d);
            CHECK(t_max_abs_diff(cap_f, clean, (size_t)IMG0 * NE) == 0); /* rows before the block never */
        }
    /* two variants in one batch: the same bits as each alone */
    float lg_a[NV], lg_b[NV], lg_ab[2][NV];
    ids_hook ha = {.site = IDS_SITE_RESID, .layer = 1, .sel = {.kind = IDS_SEL_RANGE, .begin = IMG0 + 3, .end = IMG0 + 4},
                   .action = IDS_ACT_ADD, .vec = add, .len = NE};
    ids_hook hb = {.site = IDS_SITE_RESID, .layer = 3, .sel = {.kind = IDS_SEL_LAST}, .action = IDS_ACT_ADD, .vec = add,
                   .len = NE};
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out oa = {.logits = lg_a}, ob = {.logits = lg_b}, oab[2] = {{.logits = lg_ab[0]}, {.logits = lg_ab[1]}};
    CHECK_OK_ERR(ids_ctx_run(c, &ha, 1, &o, &oa, &err), err);
    CHECK_OK_ERR(ids_ctx_run(c, &hb, 1, &o, &ob, &err), err);
    ids_variant vs[2] = {{&ha, 1}, {&hb, 1}};
    CHECK_OK_ERR(ids_ctx_run_batch(c, vs, 2, &o, oab, &err), err);
    CHECK(!memcmp(lg_a, lg_ab[0], sizeof lg_a) && !memcmp(lg_b, lg_ab[1], sizeof lg_b));
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_vlm_free(v);
}

/* Gemma's sites: ATTN_OUT and MLP_OUT are the post-norm outputs, the two terms added to the stream:
 * resid[l + 1] = resid[l] + attn_out[l] + mlp_out[l] (up to the float rounding of the two sums). */
TEST(g3_post_norm_sites) {
    ids_vlm *v;
    ids_seq *s = NULL;
    ids_ctx *c = golden_ctx(&v, &s);
    REQUIRE(c);
    static float r2[N_ROWS * NE], r3[N_ROWS * NE], ao[N_ROWS * NE], mo[N_ROWS * NE];
    ids_sel all = {.kind = IDS_SEL_ALL};
    ids_hook hs[4] = {{.site = IDS_SITE_RESID, .layer = 2, .sel = all, .out = r2, .len = N_ROWS * NE},
                      {.site = IDS_SITE_RESID, .layer = 3, .sel = all, .out = r3, .len = N_ROWS * NE},
                      {.site = IDS_SITE_ATTN_OUT, .layer = 2, .sel = all, .out = ao, .len = N_ROWS * NE},
                      {.site = IDS_SITE_MLP_OUT, .layer = 2, .sel = all, .out = mo, .len = N_ROWS * NE}};
    ids_err err;
    CHECK_OK_ERR(ids_ctx_run(c, hs, 4, NULL, NULL, &err), err);
    double e = 0, scale = 0;
    for (int i = 0; i < N_ROWS * NE; i++) {
        e = fmax(e, fabs((double)r3[i] - ((double)r2[i] + ao[i] + mo[i])));
        scale = fmax(scale, fabs((double)ao[i]));
    }
    CHECKF(e <= 1e-5 * fmax(1.0, scale) * 4, "resid[3] - resid[2] - attn_out - mlp_out: %g", e);
    /* RMS-normed with a weight near 1: each row of attn_out has an RMS close to the weight's */
    double ss = 0;
    for (int i = 0; i < NE; i++) ss += (double)ao[(size_t)30 * NE + i] * ao[(size_t)30 * NE + i];
    CHECKF(sqrt(ss / NE) > 0.7 && sqrt(ss / NE) < 1.3, "attn_out row RMS %g", sqrt(ss / NE));
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_vlm_free(v);
}

/* Preprocessing bit for bit as HF's Gemma3ImageProcessor: Pillow bilinear to 224 x 224 without keeping
 * the aspect (shrunk both ways, grown both ways, shrunk and grown), rescale in double, normalize in
 * float with mean = std = 0.5 (the resized bytes are Pillow's, from the script). */
TEST(g3_preprocess_matches_hf) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, G3("mmproj.gguf"), &err), err);
    const int sizes[3][2] = {{300, 260}, {100, 70}, {400, 150}}, S = 224;
    float *pix = malloc(sizeof(float) * 3 * S * S), *ref = malloc(sizeof(float) * 3 * S * S);
    for (int k = 0; k < 3; k++) {
        char src[160], rs[160];
        snprintf(src, sizeof src, G3("preprocess/src_%dx%d.png"), sizes[k][0], sizes[k][1]);
        snprintf(rs, sizeof rs, G3("preprocess/resized_%dx%d.png"), sizes[k][0], sizes[k][1]);
        ids_image img, pil;
        REQUIRE_OK(ids_image_load(&img, src, &err), err);
        REQUIRE_OK(ids_image_load(&pil, rs, &err), err);
        REQUIRE(pil.w == S && pil.h == S);
        for (int ch = 0; ch < 3; ch++)
            for (int i = 0; i < S * S; i++) {
                float x = (float)((double)pil.rgb[3 * i + ch] * (1.0 / 255.0));
                ref[(size_t)ch * S * S + i] = (x - 0.5f) / 0.5f;
            }
        CHECK_OK_ERR(ids_vision_preprocess(v, &img, pix, &err), err);
        CHECKF(memcmp(pix, ref, sizeof(float) * 3 * S * S) == 0, "%dx%d: max |diff| %g from HF", sizes[k][0],
               sizes[k][1], t_max_abs_diff(pix, ref, (size_t)3 * S * S));
        ids_image_free(&img);
        ids_image_free(&pil);
    }
    free(pix);
    free(ref);
    ids_vision_free(v);
}

typedef t_gguf_edit edit;

static const char *write_edit(const edit *e, const char *name) { return t_write_gguf_edit(NULL, e, name); }

/* Bad files: the error names the file, the tensor or key, and the expected vs the stored shape. */
TEST(g3_bad_files) {
    const char *T = G3("text.gguf"), *M = G3("mmproj.gguf");
    const struct {
        edit e;
        bool text;
        ids_status want;
        const char *msg[3];
    } cases[] = {
        {{T, .drop_tensor = "blk.3.attn_k_norm.weight"}, true, IDS_ERR_NOT_FOUND, {"'blk.3.attn_k_norm.weight'", "missing"}},
        {{T, .drop_tensor = "blk.6.post_ffw_norm.weight"}, true, IDS_ERR_NOT_FOUND, {"'blk.6.post_ffw_norm.weight'", "missing"}},
        {{T, .reshape = "blk.1.post_attention_norm.weight", .ne0 = 63}, true, IDS_ERR_FORMAT,
         {"'blk.1.post_attention_norm.weight'", "expected shape [64]", "got [63, 1, 1, 1]"}},
        {{T, .reshape = "blk.0.attn_q_norm.weight", .ne0 = 16}, true, IDS_ERR_FORMAT,
         {"'blk.0.attn_q_norm.weight'", "expected shape [32]", "got [16, 1, 1, 1]"}},
        {{T, .key = "gemma3.rope.scaling.type", .value = "yarn"}, true, IDS_ERR_UNSUPPORTED,
         {"gemma3.rope.scaling.type", "'yarn'"}},
        {{M, .drop_tensor = "mm.soft_emb_norm.weight"}, false, IDS_ERR_NOT_FOUND, {"'mm.soft_emb_norm.weight'", "missing"}},
        {{M, .reshape = "mm.input_projection.weight", .ne0 = 64, .ne1 = 31}, false, IDS_ERR_FORMAT,
         {"'mm.input_projection.weight'", "expected shape [N, 32]", "got [64, 31, 1, 1]"}},
        {{M, .reshape = "v.position_embd.weight", .ne0 = 32, .ne1 = 255}, false, IDS_ERR_FORMAT,
         {"'v.position_embd.weight'", "expected shape [32, 256]", "got [32, 255, 1, 1]"}},
        {{M, .drop_tensor = "v.post_ln.bias"}, false, IDS_ERR_NOT_FOUND, {"'v.post_ln.bias'", "missing"}},
        {{M, .key = "clip.projector_type", .value = "gemma3n"}, false, IDS_ERR_UNSUPPORTED, {"'gemma3n'", "gemma3)"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "g3bad%zu.gguf", k);
        const char *p = write_edit(&cases[k].e, name);
        REQUIRE(p);
        ids_err err = {0};
        ids_status st;
        if (cases[k].text) {
            ids_model *m = NULL;
            st = ids_model_load(&m, p, &err);
            CHECK(m == NULL);
            ids_model_free(m);
        } else {
            ids_vision *v = NULL;
            st = ids_vision_load(&v, p, &err);
            CHECK(v == NULL);
            ids_vision_free(v);
        }
        CHECKF(st == cases[k].want, "case %zu: %s: %s", k, ids_status_name(st), err.msg);
        CHECKF(strstr(err.msg, name) != NULL, "case %zu: the file is not named: %s", k, err.msg);
        for (int m = 0; m < 3 && cases[k].msg[m]; m++)
            CHECKF(strstr(err.msg, cases[k].msg[m]) != NULL, "case %zu: '%s' not in: %s", k, cases[k].msg[m], err.msg);
    }
}

static ids_status load_run(void *ctx, ids_err *err) {
    const ids_image *img = ctx;
    ids_vlm *v;
    ids_status st = ids_vlm_load(&v, G3("text.gguf"), G3("mmproj.gguf"), err);
    if (st) return st;
    ids_seq *s = NULL;
    ids_ctx *c = NULL;
    st = ids_vlm_build_seq(v, "<start_of_turn>user\n<image>Where is the red circle?<end_of_turn>\n", img, 1, 1, NULL,
                           &s, err);
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 48, cp.n_threads = 1;
    if (!st) st = ids_ctx_new(&c, ids_vlm_model(v), cp, err);
    if (!st) st = ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, err);
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_vlm_free(v);
    return st;
}

/* Loading, encoding and a run with each allocation failing in turn. */
TEST(g3_allocation_failures) {
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_load(&img, G3("image.png"), &err), err);
    long n = CHECK_ALLOC_FAILURES(load_run, &img, 2000);
    CHECKF(n > 20, "%ld allocations", n);
    ids_image_free(&img);
}

/* The family's layers for steering: the paper's belief band 10-22 of 34 scaled to the 7 layers
 * (2..5), and the top of the depth band 29/34 of them (6, the last inner layer). */
TEST(g3_steer_band) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, G3("text.gguf"), G3("mmproj.gguf"), &err), err);
    int lo = 0, hi = 0;
    ids_steer_default_band(v, &lo, &hi);
    CHECK(lo == 2 && hi == 5);
    CHECK_EQ_INT(ids_steer_layer_limit(v), 6);
    ids_vlm_free(v);
}
