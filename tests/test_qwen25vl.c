/* Qwen2.5-VL (projector "qwen2.5vl_merger") against the golden data of tests/golden/qwen25vl-tiny
 * (HF transcription; made by tests/golden/make_qwen25vl.py, which also compares llama.cpp): capture
 * --all, the window order, HF image preprocessing bit for bit, video positions, bad files. */
#include "test.h"
#include "engine/vision.h"

#include <cjson/cJSON.h>

#define Q25(f) "tests/golden/qwen25vl-tiny/" f
#define Q25_TEXT t_shared("golden/qwen2vl-tiny/text.gguf") /* Qwen2.5-VL's text model is arch qwen2vl */
#define VOCAB 151936

/* llama.cpp's token chunks, flattened: -1 on the image rows. */
static int golden_tokens(int32_t *want, int cap) {
    char *js = t_read_file(Q25("tokens.json"), NULL);
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
 * blocks (window and full attention), the image rows, the stream and the last logits within 1e-3 of
 * the HF transcription. */
TEST(q25_capture_all_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, Q25_TEXT, Q25("mmproj.gguf"), &err), err);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    CHECK(!strcmp(vp->projector, "qwen2.5vl_merger") && vp->dynamic && vp->window == 4 && vp->n_wa_pattern == 2 &&
          vp->mrope_t_step == 2 && vp->n_ff == 56 && vp->n_run == 3);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, Q25("image.png"), &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(ids_vlm_vision(v), &img, 1, &pl, &err), err);
    CHECK(pl.width == 168 && pl.height == 140 && pl.grid_w == 6 && pl.grid_h == 5 && pl.n_out == 30 && pl.n_tokens == 120);
    char *prompt = t_read_file(Q25("prompt.txt"), NULL);
    REQUIRE(prompt);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true,
                          .image_embd = true, .vision = true, .n_threads = 2};
    const char *out = t_tmp("q25cap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    int32_t want[128];
    const int n = golden_tokens(want, 128);
    CHECK_EQ_INT(n, 65);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk);
    CHECK(tk->shape[0] == n && memcmp(tk->data, want, sizeof(int32_t) * (size_t)n) == 0);
    ids_npy pos;
    REQUIRE_OK(ids_npy_read(Q25("expected/positions.npy"), &pos, &err), err);
    const ids_st_tensor *ps = ids_st_find(f, "positions");
    CHECK(ps && ps->nbytes == pos.nbytes && memcmp(ps->data, pos.data, pos.nbytes) == 0);
    ids_npy_free(&pos);
    CHECK_NPY(f, "vision", Q25("expected/vision_layers.npy"), 1e-3);
    CHECK_NPY(f, "image_embd", Q25("expected/image_embd.npy"), 1e-3);
    CHECK_NPY(f, "resid", Q25("expected/resid.npy"), 1e-3);
    ids_npy ids, vals;
    REQUIRE_OK(ids_npy_read(Q25("expected/logits_last_ids.npy"), &ids, &err), err);
    REQUIRE_OK(ids_npy_read(Q25("expected/logits_last_vals.npy"), &vals, &err), err);
    const ids_st_tensor *L = ids_st_find(f, "logits");
    REQUIRE(L && L->shape[0] == n && L->shape[1] == VOCAB);
    const float *last = (const float *)L->data + (size_t)(n - 1) * VOCAB, *ref = vals.data;
    const int32_t *id = ids.data;
    double e = 0;
    int best = 0, ref_best = 0;
    for (size_t i = 0; i < ids.nbytes / 4; i++) {
        e = fmax(e, fabs((double)last[id[i]] - ref[i]));
        if (ref[i] > ref[ref_best]) ref_best = (int)i;
    }
    for (int k = 1; k < VOCAB; k++)
        if (last[k] > last[best]) best = k;
    CHECKF(e <= 1e-3, "last logits: max |diff| %g", e);
    CHECK_EQ_INT(best, id[ref_best]);
    ids_npy_free(&ids);
    ids_npy_free(&vals);
    ids_st_close(f);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* The window order of a 6 x 5 merged grid with windows of 4 x 4 cells (HF get_window_index, written
 * out by hand): four windows visited row-major, cells row-major inside each. */
TEST(q25_window_order) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, Q25("mmproj.gguf"), &err), err);
    ids_vplan pl = {.grid_t = 2, .grid_h = 5, .grid_w = 6};
    size_t ng, ms;
    ids__vision_windows_size(&pl, &ng, &ms);
    CHECK(ng == 60 && ms >= 8);
    int win[60], seg[61], nseg = 0;
    ids__vision_windows_qwen25vl(v, &pl, win, seg, &nseg);
    const int want[30] = {0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21, /* 4 x 4 */
                          4, 5, 10, 11, 16, 17, 22, 23,                           /* 2 x 4 */
                          24, 25, 26, 27,                                         /* 4 x 1 */
                          28, 29};                                                /* 2 x 1 */
    const int wseg[9] = {0, 64, 96, 112, 120, 184, 216, 232, 240};               /* in patches */
    CHECK_EQ_INT(nseg, 8);
    int bad = 0;
    for (int k = 0; k < 30; k++) bad += win[k] != want[k] || win[30 + k] != want[k] + 30; /* second temporal patch */
    for (int k = 0; k < 9 && k <= nseg; k++) bad += seg[k] != wseg[k];
    CHECK_EQ_INT(bad, 0);
    /* the permutation and its inverse */
    float src[60 * 2], mid[60 * 2], back[60 * 2];
    for (int i = 0; i < 120; i++) src[i] = (float)i;
    ids__vision_permute_groups(mid, src, win, 60, 2, false);
    CHECK(mid[2 * 4] == 2 * 6 && mid[2 * 16] == 2 * 4);
    ids__vision_permute_groups(back, mid, win, 60, 2, true);
    CHECK(memcmp(back, src, sizeof src) == 0);
    ids_vision_free(v);
}

/* Preprocessing bit for bit as HF's Qwen2VLImageProcessor (smart_resize with Python's round, Pillow
 * bicubic, rescale in double, normalize in float) on three resizes: a tie rounded to even, a small
 * image grown to min_pixels, a large one shrunk under max_pixels. */
TEST(q25_preprocess_matches_hf) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, Q25("mmproj.gguf"), &err), err);
    const struct {
        int w, h, mn, mx, ow, oh;
    } cases[3] = {{70, 62, 3136, 1003520, 56, 56}, {40, 30, 3136, 1003520, 84, 56}, {100, 70, 3136, 4000, 56, 28}};
    for (int k = 0; k < 3; k++) {
        char src[160], npy[160];
        snprintf(src, sizeof src, Q25("preprocess/src_%dx%d.png"), cases[k].w, cases[k].h);
        snprintf(npy, sizeof npy, Q25("preprocess/pixels_%dx%d_%d_%d.npy"), cases[k].w, cases[k].h, cases[k].mn,
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

/* A video: each temporal patch has its own windows and full attention (identical frames give the
 * image's rows per patch); HF's M-RoPE time advances by 2 per temporal patch, the text after the
 * video starts after the largest position. */
TEST(q25_video) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, Q25_TEXT, Q25("mmproj.gguf"), &err), err);
    const ids_vision *vis = ids_vlm_vision(v);
    ids_image img, other;
    REQUIRE_OK(ids_image_load(&img, Q25("image.png"), &err), err);
    CHECK_OK_ERR(ids_image_new(&other, img.w, img.h, (const uint8_t[3]){200, 10, 10}, &err), err);
    static float one[30 * 64], vid[3 * 30 * 64];
    CHECK_OK_ERR(ids_vision_encode(vis, &img, 2, one, NULL, &err), err);
    ids_image fr[5] = {img, img, other, other, img};
    CHECK_OK_ERR(ids_vision_encode_frames(vis, fr, 5, 2, vid, NULL, &err), err);
    CHECK(t_max_abs_diff(vid, one, 30 * 64) <= 1e-5);
    CHECK(t_max_abs_diff(vid + 30 * 64, one, 30 * 64) > 1e-3);
    CHECK(t_max_abs_diff(vid + 2 * 30 * 64, one, 30 * 64) <= 1e-5); /* the odd last frame repeated */
    char *prompt = ids_vlm_video_prompt(v, "What happens?", 0);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, fr, 4, 4, 1, NULL, &s, &err), err);
    int first = -1, last = -1;
    for (int i = 0; i < ids_seq_len(s); i++)
        if (ids_seq_row(s, i)->image >= 0) {
            if (first < 0) first = i;
            last = i;
        }
    REQUIRE(first > 0 && last == first + 59);
    const ids_row *a = ids_seq_row(s, first), *b = ids_seq_row(s, first + 30 + 6 + 2), *after = ids_seq_row(s, last + 1);
    const int p0 = a->pos[0];
    CHECK(a->pos[1] == p0 && a->pos[2] == p0 && p0 == ids_seq_row(s, first - 1)->pos[0] + 1);
    CHECK(b->frame == 1 && b->pos[0] == p0 + 2 && b->pos[1] == p0 + 1 && b->pos[2] == p0 + 2);
    CHECK(after->kind == IDS_ROW_TEXT && after->pos[0] == p0 + 6); /* max(2, 4, 5) + 1 */
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&other);
    ids_image_free(&img);
    ids_vlm_free(v);
}

typedef t_gguf_edit edit;

static const char *write_edit(const edit *e, const char *name) { return t_write_gguf_edit(Q25("mmproj.gguf"), e, name); }

/* Bad files: the error names the file, the tensor or key, and the expected vs the stored shape. */
TEST(q25_bad_files) {
    const struct {
        edit e;
        ids_status want;
        const char *msg[3];
    } cases[] = {
        {{.drop_tensor = "v.blk.1.ffn_gate.weight"}, IDS_ERR_NOT_FOUND, {"'v.blk.1.ffn_gate.weight'", "missing"}},
        {{.reshape = "v.blk.0.ffn_up.weight", .ne0 = 32, .ne1 = 40}, IDS_ERR_FORMAT,
         {"'v.blk.0.ffn_up.weight'", "expected shape [32, 56]", "got [32, 40, 1, 1]"}},
        {{.reshape = "v.blk.2.ln2.weight", .ne0 = 31}, IDS_ERR_FORMAT,
         {"'v.blk.2.ln2.weight'", "expected shape [32]", "got [31, 1, 1, 1]"}},
        {{.reshape = "mm.0.weight", .ne0 = 64, .ne1 = 128}, IDS_ERR_FORMAT,
         {"'mm.0.weight'", "expected shape [128, 128]", "got [64, 128, 1, 1]"}},
        {{.drop_tensor = "v.post_ln.weight"}, IDS_ERR_NOT_FOUND, {"'v.post_ln.weight'", "missing"}},
        {{.drop_tensor = "v.patch_embd.weight.1"}, IDS_ERR_NOT_FOUND, {"'v.patch_embd.weight.1'", "missing"}},
        {{.drop_key = "clip.vision.n_wa_pattern"}, IDS_ERR_NOT_FOUND, {"'clip.vision.n_wa_pattern'", "missing"}},
        {{.projector = "qwen2.6vl_merger"}, IDS_ERR_UNSUPPORTED, {"'qwen2.6vl_merger'", "qwen2.5vl_merger"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[32];
        snprintf(name, sizeof name, "q25bad%zu.gguf", k);
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

typedef struct {
    const ids_image *img;
} q25_case;

static ids_status load_encode(void *ctx, ids_err *err) {
    const q25_case *c = ctx;
    ids_vision *v;
    ids_status st = ids_vision_load(&v, Q25("mmproj.gguf"), err);
    if (st) return st;
    static float out[30 * 64], blocks[3 * 120 * 32];
    st = ids_vision_encode(v, c->img, 1, out, blocks, err);
    ids_vision_free(v);
    return st;
}

/* Loading and encoding with each allocation failing in turn. */
TEST(q25_allocation_failures) {
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_load(&img, Q25("image.png"), &err), err);
    q25_case c = {&img};
    long n = CHECK_ALLOC_FAILURES(load_encode, &c, 500);
    CHECKF(n > 10, "%ld allocations", n);
    ids_image_free(&img);
}
