/* LLaVA-OneVision / LLaVA-Video-Qwen2 (HF model_type "llava_onevision", projector "llava_onevision",
 * text architecture "qwen2") against the golden data of tests/golden/onevision-tiny (a random-weight HF
 * folder and the activations of a NumPy transcription of HF; made by tests/golden/make_onevision.py,
 * tokens by llama.cpp's tokenizer): capture --all on an image of a 5 x 4 tile grid (unpadded, shrunk,
 * newline rows), a 4-frame video (pooled frames, one newline), HF's preprocessing bit for bit, the
 * plans of other shapes, malformed folders, allocation failures. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

#define OV(f) "tests/golden/onevision-tiny/" f
#define OV_VOCAB 916
#define OV_D 32

/* The last row's logits against the reference: within tol, the same best token. */
static void check_logits(const float *last, const char *npy, double tol) {
    ids_npy ref;
    ids_err err;
    if (ids_npy_read(npy, &ref, &err) || ref.nbytes != sizeof(float) * OV_VOCAB) {
        t_fail(__FILE__, __LINE__, "%s: unreadable or not %d logits", npy, OV_VOCAB);
        return;
    }
    const float *r = ref.data;
    int best = 0, ref_best = 0;
    for (int k = 1; k < OV_VOCAB; k++) {
        if (last[k] > last[best]) best = k;
        if (r[k] > r[ref_best]) ref_best = k;
    }
    double e = t_max_abs_diff(last, r, OV_VOCAB);
    CHECKF(e <= tol, "%s: max |diff| %g", npy, e);
    CHECK_EQ_INT(best, ref_best);
    ids_npy_free(&ref);
}

/* capture --all on the folder: tokens equal llama.cpp's (the text around the image), 21 squares
 * through the tower, 25 base rows + 13 x (16 + newline) packed rows, the stream and the last logits
 * within 1e-3 of the HF transcription; the base rows are frame 0, the packed map frame 1. */
TEST(ov_capture_all_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, OV("model"), NULL, &err), err);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    CHECK(!strcmp(vp->projector, "llava_onevision") && !vp->dynamic && vp->n_run == 2 && vp->n_layer == 2 &&
          vp->n_ff == 64 && vp->grid == 5 && vp->n_out_embd == OV_D);
    CHECK(!strcmp(ids_model_hparams(ids_vlm_model(v))->arch, "qwen2") && !ids_model_hparams(ids_vlm_model(v))->tied_output);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, OV("image.png"), &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(ids_vlm_vision(v), &img, 1, &pl, &err), err);
    CHECKF(pl.tiles_w == 5 && pl.tiles_h == 4 && pl.grid_t == 1 && pl.grid_h == 13 && pl.grid_w == 17 &&
               pl.n_out == 246 && pl.n_tokens == 525 && pl.width == 350 && pl.height == 280,
           "plan: %dx%d tiles, %dx%dx%d, %d rows, %d tokens", pl.tiles_w, pl.tiles_h, pl.grid_t, pl.grid_h, pl.grid_w,
           pl.n_out, pl.n_tokens);
    char *prompt = t_read_file(OV("prompt.txt"), NULL);
    REQUIRE(prompt);
    char *mine = ids_vlm_prompt(v, "Is the red circle to the left or right of the blue square?", 1);
    CHECKF(mine && !strcmp(mine, prompt), "chat template: %s", mine ? mine : "(null)");
    free(mine);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true,
                          .image_embd = true, .vision = true, .n_threads = 2};
    const char *out = t_tmp("ovcap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    ids_npy tok;
    REQUIRE_OK(ids_npy_read(OV("expected/tokens.npy"), &tok, &err), err);
    const int n = (int)(tok.nbytes / 4);
    CHECK_EQ_INT(n, 273);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk);
    CHECK(tk->shape[0] == n && memcmp(tk->data, tok.data, tok.nbytes) == 0);
    ids_npy_free(&tok);
    const char *frames = ids_st_meta(f, "frames"); /* text, 25 x frame 0 (base), 221 x frame 1 (map), text */
    CHECKF(frames && strstr(frames, "[-1,-1,-1,-1,0,") && strstr(frames, ",0,1,") && strstr(frames, ",1,-1,"),
           "frames: %.80s", frames ? frames : "(none)");
    CHECK_NPY(f, "vision", OV("expected/vision_layers.npy"), 1e-3);
    CHECK_NPY(f, "image_embd", OV("expected/image_embd.npy"), 1e-3);
    CHECK_NPY(f, "resid", OV("expected/resid.npy"), 1e-3);
    const ids_st_tensor *L = ids_st_find(f, "logits");
    REQUIRE(L && L->shape[0] == n && L->shape[1] == OV_VOCAB);
    check_logits((const float *)L->data + (size_t)(n - 1) * OV_VOCAB, OV("expected/logits_last.npy"), 1e-3);
    ids_st_close(f);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* The 4-frame video: one block of 4 x 3 x 3 pooled rows (each row's frame and cell) and one newline
 * row (frame 4); the rows, the stream at every layer and the last logits within 1e-3 of HF's. */
TEST(ov_video_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, OV("model"), NULL, &err), err);
    ids_image fr[4];
    for (int k = 0; k < 4; k++) {
        char p[128];
        snprintf(p, sizeof p, OV("frames/frame_%02d.png"), k);
        REQUIRE_OK(ids_image_load(&fr[k], p, &err), err);
    }
    char *prompt = ids_vlm_video_prompt(v, "Does the circle come before or after the square?", 0);
    char *want = t_read_file(OV("prompt-video.txt"), NULL);
    REQUIRE(prompt && want);
    CHECKF(!strcmp(prompt, want), "video prompt: %s", prompt);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, fr, 4, 4, 2, NULL, &s, &err), err);
    ids_npy tok, rows;
    REQUIRE_OK(ids_npy_read(OV("expected/video_tokens.npy"), &tok, &err), err);
    REQUIRE_OK(ids_npy_read(OV("expected/video_embd.npy"), &rows, &err), err);
    const int n = ids_seq_len(s);
    CHECK_EQ_INT(n, (int)(tok.nbytes / 4));
    int bad = 0, k = 0;
    double e = 0;
    for (int i = 0; i < n && i < (int)(tok.nbytes / 4); i++) {
        const ids_row *r = ids_seq_row(s, i);
        bad += r->token != ((const int32_t *)tok.data)[i] || r->pos[0] != i;
        if (r->token >= 0) continue;
        const bool nl = k == 36;
        bad += r->frame != (nl ? 4 : k / 9) || (!nl && (r->cell_row != k % 9 / 3 || r->cell_col != k % 3)) || r->image != 0;
        e = fmax(e, t_max_abs_diff(ids_seq_embd(s, i), (const float *)rows.data + (size_t)k * OV_D, OV_D));
        k++;
    }
    CHECK_EQ_INT(k, 37);
    CHECK_EQ_INT(bad, 0);
    CHECKF(e <= 1e-3, "video rows: max |diff| %g", e);
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = n, cp.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, ids_vlm_model(v), cp, &err), err);
    const int NL = hp->n_layer + 1;
    float *resid = malloc(sizeof(float) * (size_t)NL * n * OV_D), *logits = malloc(sizeof(float) * OV_VOCAB);
    ids_hook hooks[8];
    REQUIRE(resid && logits && NL <= 8);
    for (int l = 0; l < NL; l++)
        hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = {.kind = IDS_SEL_ALL}, .action = IDS_ACT_CAPTURE,
                              .out = resid + (size_t)l * n * OV_D, .len = (size_t)n * OV_D};
    ids_run_opts ro = {.logits = IDS_LOGITS_LAST};
    ids_run_out rout = {.logits = logits};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, hooks, NL, &ro, &rout, &err), err);
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(OV("expected/video_resid.npy"), &ref, &err), err);
    CHECK(ref.nbytes == sizeof(float) * (size_t)NL * n * OV_D);
    if (ref.nbytes == sizeof(float) * (size_t)NL * n * OV_D) {
        double er = t_max_abs_diff(resid, ref.data, (size_t)NL * n * OV_D);
        CHECKF(er <= 1e-3, "video stream: max |diff| %g", er);
    }
    check_logits(logits, OV("expected/video_logits_last.npy"), 1e-3);
    /* a one-frame video is still a video (HF's video path): frame 0's pooled rows, then the newline */
    ids_seq *s1;
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, fr, 1, 1, 2, NULL, &s1, &err), err);
    k = 0, e = 0;
    for (int i = 0; i < ids_seq_len(s1); i++) {
        if (ids_seq_row(s1, i)->token >= 0) continue;
        const int want_row = k == 9 ? 36 : k; /* the 4-frame video's rows of frame 0, its newline */
        e = fmax(e, t_max_abs_diff(ids_seq_embd(s1, i), (const float *)rows.data + (size_t)want_row * OV_D, OV_D));
        k++;
    }
    CHECK_EQ_INT(k, 10);
    CHECKF(e <= 1e-3, "one-frame video rows: max |diff| %g", e);
    ids_seq_free(s1);
    ids_npy_free(&ref);
    ids_ctx_free(c);
    free(resid);
    free(logits);
    ids_npy_free(&tok);
    ids_npy_free(&rows);
    ids_seq_free(s);
    free(prompt);
    free(want);
    for (int j = 0; j < 4; j++) ids_image_free(&fr[j]);
    ids_vlm_free(v);
}

/* HF's LlavaOnevisionImageProcessor bit for bit: the base square (300x260 stretched to 70x70 with
 * Pillow bicubic), the first tile (of 300x260 resized to 324x280, centred on black in 350x280) and
 * the last; rescale and normalize in float32. */
TEST(ov_preprocess_matches_hf) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, OV("model"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, OV("image.png"), &err), err);
    const size_t sq = 3 * 70 * 70;
    float *pix = malloc(sizeof(float) * sq * 21);
    REQUIRE(pix);
    CHECK_OK_ERR(ids_vision_preprocess(v, &img, pix, &err), err);
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(OV("expected/pixels_sel.npy"), &ref, &err), err);
    REQUIRE(ref.nbytes == sizeof(float) * sq * 3);
    static const int pick[3] = {0, 1, 20};
    for (int k = 0; k < 3; k++) {
        const float *a = pix + (size_t)pick[k] * sq, *b = (const float *)ref.data + (size_t)k * sq;
        size_t diff = 0;
        for (size_t i = 0; i < sq; i++) diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
        CHECKF(diff == 0, "square %d: %zu of %zu values differ (max |diff| %g)", pick[k], diff, sq, t_max_abs_diff(a, b, sq));
    }
    ids_npy_free(&ref);
    free(pix);
    ids_image_free(&img);
    ids_vision_free(v);
}

/* Plans of other shapes: a square within one tile (one tile, its 5 x 5 map and 5 newline rows), a
 * wide strip (one row of tiles, the map unpadded to a few rows), a tall one, a video. */
TEST(ov_plans) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, OV("model"), &err), err);
    static const struct { int w, h, tw, th, gh, gw, n_out; } c[] = {
        {70, 70, 1, 1, 5, 6, 25 + 30},       /* (70, 70): nothing to unpad */
        {300, 40, 5, 1, 3, 26, 25 + 3 * 26}, /* 350x70: 40 * 25 / 300 = 3.3 -> 3 rows, padding 1 above and below */
        {40, 200, 1, 3, 15, 4, 25 + 15 * 4}, /* 70x210: 40 * 15 / 200 = 3 columns, padding 1 each side */
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        ids_image img;
        REQUIRE_OK(ids_image_new(&img, c[k].w, c[k].h, (const uint8_t[3]){10, 20, 30}, &err), err);
        ids_vplan pl;
        CHECK_OK_ERR(ids_vision_plan(v, &img, 1, &pl, &err), err);
        CHECKF(pl.tiles_w == c[k].tw && pl.tiles_h == c[k].th && pl.grid_h == c[k].gh && pl.grid_w == c[k].gw &&
                   pl.n_out == c[k].n_out && pl.n_tokens == 25 * (1 + c[k].tw * c[k].th),
               "%dx%d: %dx%d tiles, map %dx%d, %d rows", c[k].w, c[k].h, pl.tiles_w, pl.tiles_h, pl.grid_h, pl.grid_w,
               pl.n_out);
        float out[200 * OV_D];
        if (pl.n_out <= 200) CHECK_OK_ERR(ids_vision_encode(v, &img, 1, out, NULL, &err), err);
        ids_image_free(&img);
    }
    ids_image fr[3];
    for (int k = 0; k < 3; k++) REQUIRE_OK(ids_image_new(&fr[k], 90, 50, (const uint8_t[3]){(uint8_t)(50 * k), 9, 9}, &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(v, fr, 3, &pl, &err), err);
    CHECK(pl.grid_t == 3 && pl.grid_h == 3 && pl.grid_w == 3 && pl.n_out == 28 && pl.n_tokens == 75);
    for (int k = 0; k < 3; k++) ids_image_free(&fr[k]);
    ids_vision_free(v);
}

/* A folder made from the golden one: every file linked, config.json with `from` replaced by `to`,
 * and extra (name, text) files. */
static const char *variant(const char *name, const char *from, const char *to, const char *extra, const char *text) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", t_tmp(name));
    mkdir(dir, 0755);
    static const char *const files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "preprocessor_config.json"};
    char src[1024], dst[1024], cwd[512];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        snprintf(src, sizeof src, "%s/" OV("model/%s"), cwd, files[k]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[k]);
        unlink(dst);
        if (symlink(src, dst)) return NULL;
    }
    char *cfg = t_read_file(OV("model/config.json"), NULL), *at = cfg ? strstr(cfg, from) : NULL;
    if (!at) {
        free(cfg);
        return NULL;
    }
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    FILE *f = fopen(dst, "w");
    if (f) fprintf(f, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from)), fclose(f);
    free(cfg);
    if (extra) {
        snprintf(dst, sizeof dst, "%s/%s", dir, extra);
        if ((f = fopen(dst, "w"))) fputs(text, f), fclose(f);
    }
    return dir;
}

/* Malformed folders: each error names the file and the tensor, key or value at fault. */
TEST(ov_bad_folders) {
    const struct {
        const char *from, *to, *extra, *text;
        ids_status want;
        const char *msg[3];
    } cases[] = {
        {"\"model_type\": \"llava_onevision\"", "\"model_type\": \"llava_qwen\"", NULL, NULL, IDS_ERR_UNSUPPORTED,
         {"config.json", "'llava_qwen'", "convert_llava_onevision_weights_to_hf.py"}},
        {"\"model_type\": \"llava_onevision\"", "\"model_type\": \"llava_next_video\"", NULL, NULL, IDS_ERR_UNSUPPORTED,
         {"config.json", "'llava_next_video'", "llava_onevision,"}},
        {"\"intermediate_size\": 64", "\"intermediate_size\": 60", NULL, NULL, IDS_ERR_FORMAT,
         {"model.safetensors", "'model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight'", "[64, 32], expected [60, 32]"}},
        {"\"model_type\": \"llava_onevision\"", "\"model_type\": \"llava_onevision\"", "model.safetensors.index.json",
         "{\"weight_map\": {\"model.image_newline\": \"model-00002-of-00002.safetensors\"}}", IDS_ERR_IO,
         {"model-00002-of-00002.safetensors", "'model.image_newline'", "model.safetensors.index.json"}},
        {"\"vision_aspect_ratio\": \"anyres_max_9\"", "\"vision_aspect_ratio\": \"anyres\"", NULL, NULL, IDS_ERR_UNSUPPORTED,
         {"config.json", "vision_aspect_ratio 'anyres'"}},
        {"\"vision_feature_select_strategy\": \"full\"", "\"vision_feature_select_strategy\": \"default\"", NULL, NULL,
         IDS_ERR_UNSUPPORTED, {"config.json", "'default'", "full only"}},
        {"\"vision_feature_layer\": -2", "\"vision_feature_layer\": -4", NULL, NULL, IDS_ERR_RANGE,
         {"config.json", "vision_feature_layer -4", "embeddings"}},
        {"[\n   70,\n   140\n  ]", "[\n   70,\n   150\n  ]", NULL, NULL, IDS_ERR_FORMAT,
         {"config.json", "image_grid_pinpoints[1][1] = 150", "image_size 70"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "ovbad%zu", k);
        const char *dir = variant(name, cases[k].from, cases[k].to, cases[k].extra, cases[k].text);
        REQUIRE(dir);
        ids_vlm *v = NULL;
        ids_err err = {0};
        ids_status st = ids_vlm_load(&v, dir, NULL, &err);
        CHECKF(st == cases[k].want, "case %zu: %s: %s", k, ids_status_name(st), err.msg);
        CHECKF(strstr(err.msg, dir) != NULL, "case %zu: the folder is not named: %s", k, err.msg);
        for (int m = 0; m < 3 && cases[k].msg[m]; m++)
            CHECKF(strstr(err.msg, cases[k].msg[m]) != NULL, "case %zu: '%s' not in: %s", k, cases[k].msg[m], err.msg);
        CHECK(v == NULL);
    }
}

/* A folder whose model.safetensors lacks one tensor of the golden checkpoint: the message names the
 * file and the tensor. */
TEST(ov_missing_tensor) {
    static const char *const drop[] = {"model.image_newline", "model.language_model.layers.2.self_attn.k_proj.bias",
                                       "model.vision_tower.vision_model.encoder.layers.1.layer_norm2.bias"};
    for (size_t k = 0; k < sizeof drop / sizeof *drop; k++) {
        char name[32];
        snprintf(name, sizeof name, "ovdrop%zu", k);
        const char *dir = variant(name, "\"model_type\"", "\"model_type\"", NULL, NULL);
        REQUIRE(dir);
        char path[600];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        unlink(path);
        ids_st_file *f;
        ids_err err = {0};
        REQUIRE_OK(ids_st_open(&f, OV("model/model.safetensors"), &err), err);
        ids_st_writer *w = ids_st_writer_new();
        REQUIRE(w);
        for (int i = 0; i < ids_st_count(f); i++) {
            const ids_st_tensor *t = ids_st_at(f, i);
            if (strcmp(t->name, drop[k])) CHECK_OK_ERR(ids_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err), err);
        }
        CHECK_OK_ERR(ids_st_writer_write(w, path, &err), err);
        ids_st_writer_free(w);
        ids_st_close(f);
        ids_vlm *v = NULL;
        ids_status st = ids_vlm_load(&v, dir, NULL, &err);
        CHECKF(st == IDS_ERR_NOT_FOUND && strstr(err.msg, "model.safetensors: tensor '") && strstr(err.msg, drop[k]) &&
                   strstr(err.msg, "is missing") && strstr(err.msg, dir),
               "drop %s: %s: %s", drop[k], ids_status_name(st), err.msg);
        CHECK(v == NULL);
    }
}

static ids_status load_encode(void *ctx, ids_err *err) {
    const ids_image *img = ctx;
    ids_vision *v;
    ids_status st = ids_vision_load(&v, OV("model"), err);
    if (st) return st;
    static float out[55 * OV_D], blocks[2 * 50 * 32];
    st = ids_vision_encode(v, img, 1, out, blocks, err);
    ids_vision_free(v);
    return st;
}

/* Loading the folder's tower and encoding a one-tile image with each allocation failing in turn. */
TEST(ov_allocation_failures) {
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_new(&img, 70, 70, (const uint8_t[3]){200, 10, 10}, &err), err);
    long n = CHECK_ALLOC_FAILURES(load_encode, &img, 2000);
    CHECKF(n > 10, "%ld allocations", n);
    ids_image_free(&img);
}
