/* InternVL 2.5 / 3 (projector "internvl", text architecture "qwen2") against the golden data of
 * tests/golden/internvl-tiny (HF transcription; made by tests/golden/make_internvl.py, which also
 * compares llama.cpp): capture --all on an image of two tiles and a thumbnail, every image row's
 * tile and cell, HF's tiling and preprocessing bit for bit, llama.cpp's tiling, the QK-norm /
 * RMSNorm tower, bad files, allocation failures. */
#include "test.h"

#include <cjson/cJSON.h>

#define IVL(f) "tests/golden/internvl-tiny/" f
#define IVL_VOCAB 905
#define IVL_D 32 /* text width = the projector's output */

/* llama.cpp's token chunks, flattened: -1 on the image rows (one chunk per tile). */
static int golden_tokens(int32_t *want, int cap) {
    char *js = t_read_file(IVL("tokens.json"), NULL);
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

/* capture --all on the golden pair: the tokens equal llama.cpp's and HF's (<img>, 3 x 16 rows,
 * </img>), the tower's blocks (tile after tile, CLS first), the image rows, the stream and the last
 * logits within 1e-3 of the HF transcription. */
TEST(ivl_capture_all_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, IVL("text.gguf"), IVL("mmproj.gguf"), &err), err);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    CHECK(!strcmp(vp->projector, "internvl") && !vp->dynamic && vp->merge == 2 && vp->n_ff == 64 && vp->n_run == 2 &&
          vp->n_out == 16 && vp->n_tokens == 65 && vp->n_out_embd == IVL_D);
    CHECK(!strcmp(ids_model_hparams(ids_vlm_model(v))->arch, "qwen2"));
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, IVL("image.png"), &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(ids_vlm_vision(v), &img, 1, &pl, &err), err);
    CHECK(pl.tiles_w == 2 && pl.tiles_h == 1 && pl.grid_t == 3 && pl.grid_w == 4 && pl.grid_h == 4 && pl.n_out == 48 &&
          pl.n_tokens == 195 && pl.width == 224 && pl.height == 112);
    char *prompt = t_read_file(IVL("prompt.txt"), NULL);
    REQUIRE(prompt);
    char *mine = ids_vlm_prompt(v, "Is the red circle to the left or right of the blue square?", 1);
    CHECKF(mine && !strcmp(mine, prompt), "chat template: %s", mine ? mine : "(null)");
    free(mine);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true,
                          .image_embd = true, .vision = true, .n_threads = 2};
    const char *out = t_tmp("ivlcap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    int32_t want[128];
    const int n = golden_tokens(want, 128);
    CHECK_EQ_INT(n, 77);
    ids_npy hf_tok;
    REQUIRE_OK(ids_npy_read(IVL("expected/tokens.npy"), &hf_tok, &err), err);
    CHECK(hf_tok.nbytes == sizeof(int32_t) * (size_t)n && memcmp(hf_tok.data, want, hf_tok.nbytes) == 0);
    ids_npy_free(&hf_tok);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk);
    CHECK(tk->shape[0] == n && memcmp(tk->data, want, sizeof(int32_t) * (size_t)n) == 0);
    const char *frames = ids_st_meta(f, "frames"); /* each row's tile: text, 16 x tile 0, 1, 2 (thumbnail), text */
    CHECKF(frames && strstr(frames, "[-1,-1,-1,-1,-1,0,") && strstr(frames, ",0,1,") && strstr(frames, ",1,2,") &&
               strstr(frames, ",2,-1,"), "frames: %.80s", frames ? frames : "(none)");
    CHECK_NPY(f, "vision", IVL("expected/vision_layers.npy"), 1e-3);
    CHECK_NPY(f, "image_embd", IVL("expected/image_embd.npy"), 1e-3);
    CHECK_NPY(f, "resid", IVL("expected/resid.npy"), 1e-3);
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(IVL("expected/logits_last.npy"), &ref, &err), err);
    const ids_st_tensor *L = ids_st_find(f, "logits");
    REQUIRE(L && L->shape[0] == n && L->shape[1] == IVL_VOCAB && ref.nbytes == sizeof(float) * IVL_VOCAB);
    const float *last = (const float *)L->data + (size_t)(n - 1) * IVL_VOCAB, *r = ref.data;
    int best = 0, ref_best = 0;
    for (int k = 1; k < IVL_VOCAB; k++) {
        if (last[k] > last[best]) best = k;
        if (r[k] > r[ref_best]) ref_best = k;
    }
    double e = t_max_abs_diff(last, r, IVL_VOCAB);
    CHECKF(e <= 1e-3, "last logits: max |diff| %g", e);
    CHECK_EQ_INT(best, ref_best);
    ids_npy_free(&ref);
    ids_st_close(f);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* Every image row knows its tile (frame: 0 and 1 the grid's tiles left to right, 2 the thumbnail)
 * and its cell inside the tile; positions are plain consecutive (qwen2: 1-D rotary); <img> comes
 * right before the first image row and </img> right after the last. */
TEST(ivl_rows_know_tile_and_cell) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, IVL("text.gguf"), IVL("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, IVL("image.png"), &err), err);
    char *prompt = ids_vlm_prompt(v, "Where?", 1);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, &img, 1, 1, NULL, &s, &err), err);
    const ids_tokenizer *tok = ids_model_tokenizer(ids_vlm_model(v));
    int first = -1, bad = 0, n_img = 0;
    for (int i = 0; i < ids_seq_len(s); i++) {
        const ids_row *r = ids_seq_row(s, i);
        bad += r->pos[0] != i;
        if (r->kind != IDS_ROW_IMAGE) continue;
        if (first < 0) first = i;
        const int k = i - first;
        bad += r->image != 0 || r->frame != k / 16 || r->cell_row != (k % 16) / 4 || r->cell_col != k % 4;
        n_img++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(n_img, 48);
    REQUIRE(first > 0);
    const char *before = ids_tokenizer_piece(tok, ids_seq_row(s, first - 1)->token);
    const char *after = ids_tokenizer_piece(tok, ids_seq_row(s, first + 48)->token);
    CHECKF(before && !strcmp(before, "<img>"), "before the image: %s", before ? before : "(none)");
    CHECKF(after && !strcmp(after, "</img>"), "after the image: %s", after ? after : "(none)");
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* The text between two image blocks of s (rows after block a's last row, before block b's first). */
static char *text_between(const ids_seq *s, const ids_tokenizer *tok, int a, int b) {
    int lo = -1, hi = -1;
    for (int i = 0; i < ids_seq_len(s); i++) {
        const ids_row *r = ids_seq_row(s, i);
        if (r->kind == IDS_ROW_IMAGE && r->image == a) lo = i + 1;
        if (r->kind == IDS_ROW_IMAGE && r->image == b && hi < 0) hi = i;
    }
    int32_t ids[64];
    int n = 0;
    for (int i = lo; lo >= 0 && i < hi && n < 64; i++) ids[n++] = ids_seq_row(s, i)->token;
    char *text = NULL;
    ids_err err;
    if (lo < 0 || hi < lo || ids_detokenize(tok, ids, (size_t)n, true, false, &text, &err)) return NULL;
    return text;
}

/* A video (HF's InternVLVideoProcessor and processor): every frame one tile (stretched, no
 * thumbnail), its own block labelled as HF writes it, "Frame1: <img>...</img>\nFrame2: <img>...".
 * The golden image as a frame is stretched exactly as its thumbnail, so the frame's rows equal the
 * HF transcription's thumbnail rows. */
TEST(ivl_video_frames) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, IVL("text.gguf"), IVL("mmproj.gguf"), &err), err);
    ids_image img, other;
    REQUIRE_OK(ids_image_load(&img, IVL("image.png"), &err), err);
    CHECK_OK_ERR(ids_image_new(&other, 60, 90, (const uint8_t[3]){200, 10, 10}, &err), err);
    const ids_image fr[3] = {img, other, img};
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(ids_vlm_vision(v), fr, 3, &pl, &err), err);
    CHECK(pl.grid_t == 3 && pl.tiles_w == 1 && pl.n_out == 48);
    char *prompt = ids_vlm_video_prompt(v, "What happens?", 0);
    REQUIRE(prompt);
    CHECKF(!strcmp(prompt, "<|im_start|>user\n<video>\nWhat happens?<|im_end|>\n<|im_start|>assistant\n"), "%s", prompt);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, fr, 3, 3, 1, NULL, &s, &err), err);
    const ids_tokenizer *tok = ids_model_tokenizer(ids_vlm_model(v));
    char *between = text_between(s, tok, 0, 1), *after = text_between(s, tok, 1, 2);
    CHECKF(between && !strcmp(between, "</img>\nFrame2: <img>"), "between frames 1 and 2: %s", between ? between : "?");
    CHECKF(after && !strcmp(after, "</img>\nFrame3: <img>"), "between frames 2 and 3: %s", after ? after : "?");
    free(between);
    free(after);
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(IVL("expected/image_embd.npy"), &ref, &err), err);
    int first = -1, n_img = 0, bad = 0;
    for (int i = 0; i < ids_seq_len(s); i++) {
        const ids_row *r = ids_seq_row(s, i);
        if (r->kind != IDS_ROW_IMAGE) continue;
        if (first < 0) first = i;
        bad += r->frame != 0 || r->image != n_img / 16;
        n_img++;
    }
    CHECK_EQ_INT(n_img, 48);
    CHECK_EQ_INT(bad, 0);
    REQUIRE(first > 0);
    const float *thumb = (const float *)ref.data + 32 * IVL_D;
    double e = 0;
    for (int k = 0; k < 16; k++) e = fmax(e, t_max_abs_diff(ids_seq_embd(s, first + k), thumb + k * IVL_D, IVL_D));
    CHECKF(e <= 1e-3, "frame 1 against HF's thumbnail rows: max |diff| %g", e);
    ids_npy_free(&ref);
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&other);
    ids_image_free(&img);
    ids_vlm_free(v);
}

static uint64_t fnv64(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* HF's GotOcr2ImageProcessor with crop_to_patches, bit for bit, on four images: 300x200 grown onto
 * a 3 x 2 grid, 100x60 (smaller than a tile, tiled all the same), 500x90 shrunk onto 6 x 1, 120x118
 * one tile without a thumbnail. Each tile's float32 bytes hashed (FNV-1a 64) against the script's. */
TEST(ivl_preprocess_matches_hf) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, IVL("mmproj.gguf"), &err), err);
    char *js = t_read_file(IVL("preprocess/cases.json"), NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL, *c;
    REQUIRE(root);
    int n_cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        char path[256];
        snprintf(path, sizeof path, IVL("preprocess/%s"), cJSON_GetObjectItem(c, "image")->valuestring);
        ids_image img;
        REQUIRE_OK(ids_image_load(&img, path, &err), err);
        ids_vplan pl;
        CHECK_OK_ERR(ids_vision_plan(v, &img, 1, &pl, &err), err);
        const int nt = cJSON_GetObjectItem(c, "n_tiles")->valueint;
        CHECKF(pl.tiles_w == cJSON_GetObjectItem(c, "cols")->valueint &&
               pl.tiles_h == cJSON_GetObjectItem(c, "rows")->valueint && pl.grid_t == nt,
               "%s: %d x %d tiles, %d in all", path, pl.tiles_w, pl.tiles_h, pl.grid_t);
        const size_t tile = 3 * 112 * 112;
        float *pix = malloc(sizeof(float) * tile * (size_t)pl.grid_t);
        REQUIRE(pix);
        CHECK_OK_ERR(ids_vision_preprocess(v, &img, pix, &err), err);
        cJSON *h = cJSON_GetObjectItem(c, "fnv64");
        for (int t = 0; t < nt && t < pl.grid_t; t++) {
            char got[17];
            snprintf(got, sizeof got, "%016llx", (unsigned long long)fnv64(pix + t * tile, tile * sizeof(float)));
            CHECKF(!strcmp(got, cJSON_GetArrayItem(h, t)->valuestring), "%s tile %d: hash %s, HF %s", path, t, got,
                   cJSON_GetArrayItem(h, t)->valuestring);
        }
        cJSON *smp = cJSON_GetObjectItem(c, "sample");
        for (int k = 0; k < cJSON_GetArraySize(smp); k++) /* the same values, for a readable failure */
            CHECKF(pix[(size_t)k * 997] == (float)cJSON_GetArrayItem(smp, k)->valuedouble, "%s value %d: %.9g", path,
                   k * 997, pix[(size_t)k * 997]);
        free(pix);
        ids_image_free(&img);
        n_cases++;
    }
    CHECK_EQ_INT(n_cases, 4);
    cJSON_Delete(root);
    free(js);
    ids_vision_free(v);
}

/* llama.cpp's tiling (ids_vision_set_tiling): an image within one tile is the overview alone; a
 * larger one takes LLaVA-NeXT's best resolution (500x90 -> 5 x 1, where HF takes 6 x 1), letterboxed
 * in black (90 x 1.12 = 100.8 -> 101 rows, 5 black rows above), the overview last. */
TEST(ivl_llamacpp_tiling) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, IVL("mmproj.gguf"), &err), err);
    CHECK_OK_ERR(ids_vision_set_tiling(v, true, &err), err);
    ids_image small, wide;
    REQUIRE_OK(ids_image_load(&small, IVL("preprocess/src_100x60.png"), &err), err);
    REQUIRE_OK(ids_image_load(&wide, IVL("preprocess/src_500x90.png"), &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(v, &small, 1, &pl, &err), err);
    CHECK(pl.grid_t == 1 && pl.tiles_w == 1 && pl.n_out == 16);
    CHECK_OK_ERR(ids_vision_plan(v, &wide, 1, &pl, &err), err);
    CHECK(pl.tiles_w == 5 && pl.tiles_h == 1 && pl.grid_t == 6 && pl.width == 560);
    const size_t tile = 3 * 112 * 112;
    float *pix = malloc(sizeof(float) * tile * 6);
    REQUIRE(pix);
    CHECK_OK_ERR(ids_vision_preprocess(v, &wide, pix, &err), err);
    const ids_vparams *vp = ids_vision_params(v);
    const float black = (0.0f - vp->mean[0]) / vp->std[0];
    int bad = 0;
    for (int t = 0; t < 5; t++)
        for (int x = 0; x < 112; x++) {
            bad += pix[t * tile + 4 * 112 + x] != black || pix[t * tile + 106 * 112 + x] != black; /* rows 4, 106 */
            bad += pix[t * tile + 5 * 112 + x] == black && pix[t * tile + 50 * 112 + x] == black;
        }
    CHECK_EQ_INT(bad, 0);
    CHECK(pix[5 * tile] != black); /* the overview is stretched, not letterboxed */
    CHECK_OK_ERR(ids_vision_set_tiling(v, false, &err), err);
    CHECK_OK_ERR(ids_vision_plan(v, &wide, 1, &pl, &err), err);
    CHECK(pl.tiles_w == 6 && pl.grid_t == 7);
    free(pix);
    ids_image_free(&small);
    ids_image_free(&wide);
    ids_vision_free(v);
}

/* The InternViT-6B layout (RMSNorm without biases, no Q/K/V biases, RMSNorm of the whole Q and K
 * rows): the image rows within 1e-3 of the HF transcription. */
TEST(ivl_qknorm_golden) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, IVL("mmproj-qknorm.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, IVL("image.png"), &err), err);
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(IVL("expected/qknorm_image_embd.npy"), &ref, &err), err);
    REQUIRE(ref.nbytes == sizeof(float) * 48 * IVL_D);
    static float out[48 * IVL_D];
    CHECK_OK_ERR(ids_vision_encode(v, &img, 2, out, NULL, &err), err);
    double e = t_max_abs_diff(out, ref.data, 48 * IVL_D);
    CHECKF(e <= 1e-3, "image rows: max |diff| %g", e);
    ids_npy_free(&ref);
    ids_image_free(&img);
    ids_vision_free(v);
}

typedef t_gguf_edit edit;

static const char *write_edit(const edit *e, const char *name) { return t_write_gguf_edit(IVL("mmproj.gguf"), e, name); }

/* Bad files: the error names the file, the tensor or key, and the expected vs the stored shape. */
TEST(ivl_bad_files) {
    const struct {
        edit e;
        ids_status want;
        const char *msg[3];
    } cases[] = {
        {{.drop_tensor = "v.blk.1.ls2.weight"}, IDS_ERR_NOT_FOUND, {"'v.blk.1.ls2.weight'", "missing"}},
        {{.drop_tensor = "mm.model.mlp.0.bias"}, IDS_ERR_NOT_FOUND, {"'mm.model.mlp.0.bias'", "missing"}},
        {{.drop_tensor = "v.class_embd"}, IDS_ERR_NOT_FOUND, {"'v.class_embd'", "missing"}},
        {{.reshape = "v.blk.0.ffn_down.weight", .ne0 = 60, .ne1 = 32}, IDS_ERR_FORMAT,
         {"'v.blk.0.ffn_down.weight'", "expected shape [64, 32]", "got [60, 32, 1, 1]"}},
        {{.reshape = "mm.model.mlp.1.weight", .ne0 = 96, .ne1 = 32}, IDS_ERR_FORMAT,
         {"'mm.model.mlp.1.weight'", "expected shape [128, 32]", "got [96, 32, 1, 1]"}},
        {{.reshape = "v.position_embd.weight", .ne0 = 32, .ne1 = 64}, IDS_ERR_FORMAT,
         {"'v.position_embd.weight'", "expected shape [32, 65]", "got [32, 64, 1, 1]"}},
        {{.reshape = "v.blk.1.ls1.weight", .ne0 = 16}, IDS_ERR_FORMAT,
         {"'v.blk.1.ls1.weight'", "expected shape [32]", "got [16, 1, 1, 1]"}},
        {{.u32_key = "clip.vision.projector.scale_factor", .u32 = 3}, IDS_ERR_FORMAT,
         {"clip.vision.projector.scale_factor 3", "8 x 8"}},
        {{.u32_key = "clip.vision.preproc_max_tiles", .u32 = 0}, IDS_ERR_FORMAT, {"preproc_min_tiles", "1..0"}},
        {{.projector = "internvl2"}, IDS_ERR_UNSUPPORTED, {"'internvl2'", " internvl,"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "ivlbad%zu.gguf", k);
        const char *p = write_edit(&cases[k].e, name);
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

static ids_status load_encode(void *ctx, ids_err *err) {
    const ids_image *img = ctx;
    ids_vision *v;
    ids_status st = ids_vision_load(&v, IVL("mmproj.gguf"), err);
    if (st) return st;
    static float out[48 * IVL_D], blocks[2 * 195 * 32];
    st = ids_vision_encode(v, img, 1, out, blocks, err);
    ids_vision_free(v);
    return st;
}

/* Loading and encoding with each allocation failing in turn. */
TEST(ivl_allocation_failures) {
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_load(&img, IVL("image.png"), &err), err);
    long n = CHECK_ALLOC_FAILURES(load_encode, &img, 500);
    CHECKF(n > 10, "%ld allocations", n);
    ids_image_free(&img);
}
