/* Qwen3-VL (text architecture "qwen3vl", projector "qwen3vl_merger") against the golden data of
 * tests/golden/qwen3vl-tiny (HF transcription; made by tests/golden/make_qwen3vl.py, which also
 * compares llama.cpp): capture --all with the DeepStack rows, DeepStack edits against residual-stream
 * edits, HF image preprocessing bit for bit, bad files, allocation failures. The text model is
 * build/golden/qwen3vl-tiny/text.gguf, which the build joins from text-blocks.gguf and the vocabulary
 * of ../shared's Qwen2-VL golden; without ../shared the tests are skipped. */
#include "test.h"
#include "engine/vision.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#define Q3(f) "tests/golden/qwen3vl-tiny/" f
#define Q3_TEXT "build/golden/qwen3vl-tiny/text.gguf"
#define VOCAB 151936
#define NE 64

static bool have_text(void) {
    if (access(Q3_TEXT, R_OK) == 0) return true;
    t_skip(Q3_TEXT " is not built (make release joins it when ../shared/golden/qwen2vl-tiny/text.gguf exists)");
    return false;
}

/* llama.cpp's token chunks, flattened: -1 on the image rows. */
static int golden_tokens(int32_t *want, int cap) {
    char *js = t_read_file(Q3("tokens.json"), NULL);
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

/* capture --all on the golden pair: tokens (llama.cpp's) and M-RoPE positions exactly; the tower's
 * blocks, the image rows and their DeepStack rows, the stream (after each block's DeepStack
 * addition) and the last logits within 1e-3 of the HF transcription; the DeepStack sites hold the
 * DeepStack rows on the image rows and zeros on the text rows. */
TEST(q3_capture_all_golden) {
    if (!have_text()) return;
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, Q3_TEXT, Q3("mmproj.gguf"), &err), err);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    CHECK(!strcmp(vp->projector, "qwen3vl_merger") && vp->dynamic && vp->patch_size == 16 && vp->merge == 2 &&
          vp->n_ff == 48 && vp->n_run == 3 && vp->n_deepstack == 2 && vp->deepstack_layer[0] == 0 &&
          vp->deepstack_layer[1] == 1 && vp->min_pixels == 65536 && vp->max_pixels == 16777216);
    CHECK(hp->rope_mode == IDS_ROPE_IMROPE && hp->qk_norm && hp->n_deepstack == 2 && hp->head_dim == 32 &&
          hp->rope_sections[0] == 6 && hp->rope_sections[1] == 5);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, Q3("image.png"), &err), err);
    char *prompt = t_read_file(Q3("prompt.txt"), NULL);
    REQUIRE(prompt);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true, .image_embd = true,
                          .vision = true, .deepstack = true, .n_threads = 2};
    const char *out = t_tmp("q3cap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    int32_t want[160];
    const int n = golden_tokens(want, 160);
    CHECK_EQ_INT(n, 105);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk);
    CHECK(tk->shape[0] == n && memcmp(tk->data, want, sizeof(int32_t) * (size_t)n) == 0);
    ids_npy pos;
    REQUIRE_OK(ids_npy_read(Q3("expected/positions.npy"), &pos, &err), err);
    const ids_st_tensor *ps = ids_st_find(f, "positions");
    CHECK(ps && ps->nbytes == pos.nbytes && memcmp(ps->data, pos.data, pos.nbytes) == 0);
    ids_npy_free(&pos);
    CHECK_NPY(f, "vision", Q3("expected/vision_layers.npy"), 1e-3);
    CHECK_NPY(f, "image_embd", Q3("expected/image_embd.npy"), 1e-3);
    CHECK_NPY(f, "image_embd_deepstack", Q3("expected/deepstack.npy"), 1e-3);
    CHECK_NPY(f, "resid", Q3("expected/resid.npy"), 1e-3);
    const ids_st_tensor *ds = ids_st_find(f, "deepstack"), *ids_ = ids_st_find(f, "image_embd_deepstack");
    REQUIRE(ds && ids_ && ds->shape[0] == 2 && ds->shape[1] == n && ds->shape[2] == NE);
    int bad = 0, img_row = 0;
    for (int l = 0; l < 2; l++) {
        img_row = 0;
        for (int i = 0; i < n; i++) {
            const float *site = (const float *)ds->data + ((size_t)l * n + i) * NE;
            if (want[i] >= 0) {
                for (int d = 0; d < NE; d++) bad += site[d] != 0.0f;
            } else {
                bad += memcmp(site, (const float *)ids_->data + ((size_t)l * 70 + img_row++) * NE, NE * sizeof(float)) != 0;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(img_row, 70);
    ids_npy ids, vals;
    REQUIRE_OK(ids_npy_read(Q3("expected/logits_last_ids.npy"), &ids, &err), err);
    REQUIRE_OK(ids_npy_read(Q3("expected/logits_last_vals.npy"), &vals, &err), err);
    const ids_st_tensor *L = ids_st_find(f, "logits");
    REQUIRE(L && L->shape[0] == n && L->shape[1] == VOCAB);
    const float *last = (const float *)L->data + (size_t)(n - 1) * VOCAB, *ref = vals.data;
    const int32_t *id = ids.data;
    double e = 0;
    for (size_t i = 0; i < ids.nbytes / 4; i++) e = fmax(e, fabs((double)last[id[i]] - ref[i]));
    CHECKF(e <= 1e-3, "last logits: max |diff| %g", e);
    ids_npy_free(&ids);
    ids_npy_free(&vals);
    ids_st_close(f);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* An ADD at a DeepStack site changes the logits exactly (bit for bit) as the same ADD on the same rows
 * at the residual layer after that block; reuse of the clean run equals a full recompute; SCALE 0 at
 * the sites (the DeepStack rows removed) moves the logits. */
TEST(q3_deepstack_edit_equals_resid_edit) {
    if (!have_text()) return;
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, Q3_TEXT, Q3("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, Q3("image.png"), &err), err);
    char *prompt = t_read_file(Q3("prompt.txt"), NULL);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, &img, 1, 2, NULL, &s, &err), err);
    CHECK_EQ_INT(ids_seq_n_deepstack(s), 2);
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = ids_seq_len(s);
    cp.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, ids_vlm_model(v), cp, &err), err);
    static float clean[VOCAB], a[VOCAB], b[VOCAB], full[VOCAB], z[VOCAB];
    ids_run_opts ro = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = clean};
    REQUIRE_OK(ids_ctx_prefill(c, s, NULL, 0, &ro, &out, &err), err);
    float vec[NE];
    for (int d = 0; d < NE; d++) vec[d] = 0.37f * sinf(0.7f * (float)d + 0.1f);
    for (int l = 0; l < 2; l++) {
        const ids_sel im = {.kind = IDS_SEL_IMAGE, .image = -1};
        ids_hook hd = {.site = IDS_SITE_DEEPSTACK, .layer = l, .sel = im, .action = IDS_ACT_ADD, .vec = vec, .len = NE};
        ids_hook hr = hd;
        hr.site = IDS_SITE_RESID;
        hr.layer = l + 1;
        out.logits = a;
        CHECK_OK_ERR(ids_ctx_run(c, &hd, 1, &ro, &out, &err), err);
        out.logits = b;
        CHECK_OK_ERR(ids_ctx_run(c, &hr, 1, &ro, &out, &err), err);
        CHECKF(memcmp(a, b, sizeof a) == 0, "layer %d: max |diff| %g", l, t_max_abs_diff(a, b, VOCAB));
        CHECKF(t_max_abs_diff(a, clean, VOCAB) > 1e-3, "layer %d: the edit changes nothing", l);
        ids_run_opts fo = ro;
        fo.full_recompute = true;
        out.logits = full;
        CHECK_OK_ERR(ids_ctx_run(c, &hd, 1, &fo, &out, &err), err);
        CHECKF(memcmp(a, full, sizeof a) == 0, "layer %d: reuse vs full recompute %g", l, t_max_abs_diff(a, full, VOCAB));
        ids_hook h0 = {.site = IDS_SITE_DEEPSTACK, .layer = l, .sel = {.kind = IDS_SEL_ALL}, .action = IDS_ACT_SCALE,
                       .scale = 0.0f};
        out.logits = z;
        CHECK_OK_ERR(ids_ctx_run(c, &h0, 1, &ro, &out, &err), err);
        CHECKF(t_max_abs_diff(z, clean, VOCAB) > 1e-3, "layer %d: removing the DeepStack rows changes nothing", l);
    }
    ids_hook past = {.site = IDS_SITE_DEEPSTACK, .layer = 2, .sel = {.kind = IDS_SEL_ALL}, .action = IDS_ACT_SCALE};
    CHECK(ids_ctx_run(c, &past, 1, &ro, &out, &err) == IDS_ERR_RANGE && strstr(err.msg, "0..1"));
    ids_ctx_free(c);
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* Preprocessing bit for bit as HF's Qwen2VLImageProcessor with Qwen3-VL's factor 32 on three resizes:
 * ties rounded to even, a small image grown to min_pixels, a large one shrunk under max_pixels. */
TEST(q3_preprocess_matches_hf) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, Q3("mmproj.gguf"), &err), err);
    const struct {
        int w, h, mn, mx, ow, oh;
    } cases[3] = {{80, 48, 4096, 16777216, 64, 64}, {50, 40, 8192, 16777216, 128, 96}, {300, 200, 8192, 20000, 160, 96}};
    for (int k = 0; k < 3; k++) {
        char src[160], npy[160];
        snprintf(src, sizeof src, Q3("preprocess/src_%dx%d.png"), cases[k].w, cases[k].h);
        snprintf(npy, sizeof npy, Q3("preprocess/pixels_%dx%d_%d_%d.npy"), cases[k].w, cases[k].h, cases[k].mn,
                 cases[k].mx);
        ids_image img;
        ids_npy ref;
        REQUIRE_OK(ids_image_load(&img, src, &err), err);
        REQUIRE_OK(ids_npy_read(npy, &ref, &err), err);
        CHECK_OK_ERR(ids_vision_set_pixel_bounds(v, cases[k].mn, cases[k].mx, &err), err);
        ids_vplan pl;
        CHECK_OK_ERR(ids_vision_plan(v, &img, 1, &pl, &err), err);
        CHECKF(pl.width == cases[k].ow && pl.height == cases[k].oh, "%dx%d -> %dx%d", cases[k].w, cases[k].h, pl.width,
               pl.height);
        CHECK(ref.ndim == 3 && ref.shape[0] == 3 && ref.shape[1] == pl.height && ref.shape[2] == pl.width);
        float *pix = malloc(ref.nbytes);
        CHECK_OK_ERR(ids_vision_preprocess(v, &img, pix, &err), err);
        CHECKF(memcmp(pix, ref.data, ref.nbytes) == 0, "%dx%d: max |diff| %g from HF", cases[k].w, cases[k].h,
               t_max_abs_diff(pix, ref.data, ref.nbytes / 4));
        free(pix);
        ids_npy_free(&ref);
        ids_image_free(&img);
    }
    ids_vision_free(v);
}

/* A video: the temporal patches attend only to themselves, so identical frames give the image's main
 * and DeepStack rows in every patch; the sequence carries the DeepStack rows of every visual row and
 * puts each temporal patch in its own block after its time stamp (HF Qwen3VLProcessor). */
TEST(q3_video) {
    if (!have_text()) return;
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, Q3_TEXT, Q3("mmproj.gguf"), &err), err);
    const ids_vision *vis = ids_vlm_vision(v);
    ids_image img, other;
    REQUIRE_OK(ids_image_load(&img, Q3("image.png"), &err), err);
    CHECK_OK_ERR(ids_image_new(&other, img.w, img.h, (const uint8_t[3]){200, 10, 10}, &err), err);
    static float one[70 * NE], one_ds[2 * 70 * NE], vid[2 * 70 * NE], vid_ds[2 * 2 * 70 * NE];
    CHECK_OK_ERR(ids_vision_encode_deepstack(vis, &img, 1, 2, one, one_ds, NULL, &err), err);
    ids_image fr[4] = {other, other, img, img};
    CHECK_OK_ERR(ids_vision_encode_deepstack(vis, fr, 4, 2, vid, vid_ds, NULL, &err), err);
    CHECK(t_max_abs_diff(vid + 70 * NE, one, 70 * NE) <= 1e-5 && t_max_abs_diff(vid, one, 70 * NE) > 1e-3);
    for (int k = 0; k < 2; k++) /* DeepStack k of the second temporal patch */
        CHECK(t_max_abs_diff(vid_ds + ((size_t)k * 140 + 70) * NE, one_ds + (size_t)k * 70 * NE, 70 * NE) <= 1e-5);
    char *prompt = ids_vlm_video_prompt(v, "What happens?", 0);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, fr, 4, 4, 1, NULL, &s, &err), err);
    int n_vis = 0, n_ds = 0, b0 = -1, b1 = -1;
    for (int i = 0; i < ids_seq_len(s); i++) {
        const ids_row *r = ids_seq_row(s, i);
        n_vis += r->token < 0;
        n_ds += ids_seq_deepstack(s, i, 1) != NULL;
        if (r->token < 0 && r->image == 0 && b0 < 0) b0 = i;
        if (r->token < 0 && r->image == 1 && b1 < 0) b1 = i;
    }
    CHECK(n_vis == 140 && n_ds == 140);
    /* HF: each temporal patch its own block after "<t seconds>" (frames 2 and 3 at 2 fps: 1.25 s), t = 0
     * and its h, w restarting after the text before it */
    REQUIRE(b0 > 0 && b1 > b0 + 70);
    char between[256] = "";
    for (int i = b0 + 70; i < b1; i++) {
        char *t = ids_token_to_text(ids_model_tokenizer(ids_vlm_model(v)), ids_seq_row(s, i)->token);
        if (t && strlen(between) + strlen(t) < sizeof between) strcat(between, t);
        free(t);
    }
    CHECKF(!strcmp(between, "<|vision_end|><1.2 seconds><|vision_start|>"), "between the blocks: '%s'", between);
    const ids_row *r0 = ids_seq_row(s, b0), *r1 = ids_seq_row(s, b1), *end = ids_seq_row(s, b1 - 1);
    CHECK(r0->pos[0] == r0->pos[1] && r0->pos[1] == r0->pos[2] && ids_seq_row(s, b0 + 69)->pos[2] == r0->pos[0] + 9);
    CHECK(r1->pos[0] == end->pos[0] + 1 && r1->pos[1] == r1->pos[0] && ids_seq_row(s, b1 + 12)->pos[1] == r1->pos[0] + 1);
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&other);
    ids_image_free(&img);
    ids_vlm_free(v);
}

typedef t_gguf_edit edit;

/* Bad towers: the error names the file, the tensor or key, and the expected vs the stored shape. */
TEST(q3_bad_files) {
    const struct {
        edit e;
        ids_status want;
        const char *msg[3];
    } cases[] = {
        {{.drop_tensor = "v.blk.1.attn_qkv.bias"}, IDS_ERR_NOT_FOUND, {"'v.blk.1.attn_qkv.bias'", "missing"}},
        {{.reshape = "v.blk.0.attn_qkv.weight", .ne0 = 32, .ne1 = 64}, IDS_ERR_FORMAT,
         {"'v.blk.0.attn_qkv.weight'", "expected shape [32, 96]", "got [32, 64, 1, 1]"}},
        {{.reshape = "v.blk.2.ln1.bias", .ne0 = 31}, IDS_ERR_FORMAT,
         {"'v.blk.2.ln1.bias'", "expected shape [32]", "got [31, 1, 1, 1]"}},
        {{.reshape = "v.position_embd.weight", .ne0 = 32, .ne1 = 15}, IDS_ERR_FORMAT,
         {"'v.position_embd.weight'", "square", "got [32, 15, 1, 1]"}},
        {{.drop_tensor = "v.position_embd.weight"}, IDS_ERR_NOT_FOUND, {"'v.position_embd.weight'", "missing"}},
        {{.drop_tensor = "v.deepstack.1.fc2.weight"}, IDS_ERR_NOT_FOUND, {"'v.deepstack.1.fc2.weight'", "missing"}},
        {{.reshape = "v.deepstack.0.fc2.weight", .ne0 = 128, .ne1 = 32}, IDS_ERR_FORMAT,
         {"'v.deepstack.0.fc2.weight'", "expected shape [128, 64]", "got [128, 32, 1, 1]"}},
        {{.drop_tensor = "v.deepstack.1.fc1.weight"}, IDS_ERR_NOT_FOUND,
         {"is_deepstack_layers says true", "'v.deepstack.1.fc1.weight' is missing"}},
        {{.drop_tensor = "v.post_ln.bias"}, IDS_ERR_NOT_FOUND, {"'v.post_ln.bias'", "missing"}},
        {{.projector = "qwen3.5vl_merger"}, IDS_ERR_UNSUPPORTED, {"'qwen3.5vl_merger'", "qwen3vl_merger"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "q3bad%zu.gguf", k);
        const char *p = t_write_gguf_edit(Q3("mmproj.gguf"), &cases[k].e, name);
        REQUIRE(p);
        ids_vision *v = NULL;
        ids_err err = {0};
        ids_status st = ids_vision_load(&v, p, &err);
        CHECKF(st == cases[k].want, "case %zu: %s: %s", k, ids_status_name(st), err.msg);
        CHECKF(strstr(err.msg, name) != NULL, "case %zu: the file is not named: %s", k, err.msg);
        for (int m = 0; m < 3 && cases[k].msg[m]; m++)
            CHECKF(strstr(err.msg, cases[k].msg[m]) != NULL, "case %zu: '%s' not in: %s", k, cases[k].msg[m], err.msg);
        CHECK(v == NULL);
        ids_vision_free(v);
    }
}

/* Bad text models: a missing QK-norm, one of the wrong size, a tower whose DeepStack count the text
 * model does not take. */
TEST(q3_bad_text_files) {
    if (!have_text()) return;
    const struct {
        edit e;
        ids_status want;
        const char *msg[3];
    } cases[] = {
        {{.drop_tensor = "blk.1.attn_k_norm.weight"}, IDS_ERR_NOT_FOUND, {"'blk.1.attn_k_norm.weight'", "missing"}},
        {{.reshape = "blk.0.attn_q_norm.weight", .ne0 = 64}, IDS_ERR_FORMAT,
         {"'blk.0.attn_q_norm.weight'", "expected shape [32]", "got [64, 1, 1, 1]"}},
        {{.drop_key = "qwen3vl.rope.dimension_sections"}, IDS_ERR_NOT_FOUND, {"qwen3vl.rope.dimension_sections"}},
        {{.drop_key = "qwen3vl.n_deepstack_layers"}, IDS_ERR_FORMAT, {"2 DeepStack mergers", "takes 0"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "q3badtext%zu.gguf", k);
        const char *p = t_write_gguf_edit(Q3_TEXT, &cases[k].e, name);
        REQUIRE(p);
        ids_vlm *v = NULL;
        ids_err err = {0};
        ids_status st = ids_vlm_load(&v, p, Q3("mmproj.gguf"), &err);
        CHECKF(st == cases[k].want, "case %zu: %s: %s", k, ids_status_name(st), err.msg);
        CHECKF(strstr(err.msg, name) != NULL, "case %zu: the file is not named: %s", k, err.msg);
        for (int m = 0; m < 3 && cases[k].msg[m]; m++)
            CHECKF(strstr(err.msg, cases[k].msg[m]) != NULL, "case %zu: '%s' not in: %s", k, cases[k].msg[m], err.msg);
        CHECK(v == NULL);
        ids_vlm_free(v);
        unlink(p);
    }
}

typedef struct {
    const ids_image *img;
} q3_case;

static ids_status load_encode(void *ctx, ids_err *err) {
    const q3_case *c = ctx;
    ids_vision *v;
    ids_status st = ids_vision_load(&v, Q3("mmproj.gguf"), err);
    if (st) return st;
    static float out[70 * NE], ds[2 * 70 * NE], blocks[3 * 280 * 32];
    st = ids_vision_encode_deepstack(v, c->img, 1, 1, out, ds, blocks, err);
    ids_vision_free(v);
    return st;
}

/* Loading and encoding with each allocation failing in turn. */
TEST(q3_allocation_failures) {
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_load(&img, Q3("image.png"), &err), err);
    q3_case c = {&img};
    long n = CHECK_ALLOC_FAILURES(load_encode, &c, 500);
    CHECKF(n > 10, "%ld allocations", n);
    ids_image_free(&img);
}

typedef struct {
    const ids_vlm *v;
    const ids_image *img;
    const char *prompt;
} q3_run_case;

static ids_status build_and_run(void *ctx, ids_err *err) {
    const q3_run_case *c = ctx;
    ids_seq *s = NULL;
    ids_ctx *x = NULL;
    ids_status st = ids_vlm_build_seq(c->v, c->prompt, c->img, 1, 1, NULL, &s, err);
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_threads = 1;
    if (!st) cp.n_ctx = ids_seq_len(s), st = ids_ctx_new(&x, ids_vlm_model(c->v), cp, err);
    if (!st) st = ids_ctx_prefill(x, s, NULL, 0, NULL, NULL, err);
    float scale_out[NE];
    ids_hook h[2] = {{.site = IDS_SITE_DEEPSTACK, .layer = 1, .sel = {.kind = IDS_SEL_IMAGE, .image = -1},
                      .action = IDS_ACT_SCALE, .scale = 2.0f},
                     {.site = IDS_SITE_DEEPSTACK, .layer = 0, .sel = {.kind = IDS_SEL_LAST}, .action = IDS_ACT_CAPTURE,
                      .out = scale_out, .len = NE}};
    if (!st) st = ids_ctx_run(x, h, 2, NULL, NULL, err);
    ids_ctx_free(x);
    ids_seq_free(s);
    return st;
}

/* Building a sequence with DeepStack rows and running an edit at a DeepStack site, with each
 * allocation failing in turn. */
TEST(q3_run_allocation_failures) {
    if (!have_text()) return;
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, Q3_TEXT, Q3("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, Q3("image.png"), &err), err);
    q3_run_case c = {v, &img, "<|im_start|>user\n<image>Where?<|im_end|>\n"};
    long n = CHECK_ALLOC_FAILURES(build_and_run, &c, 2000);
    CHECKF(n > 10, "%ld allocations", n);
    ids_image_free(&img);
    ids_vlm_free(v);
}
