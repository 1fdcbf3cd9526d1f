/* Vision tower, LLaVA path and capture against the golden data; loader variants; bad inputs;
 * image resampling against Pillow. */
#include "test.h"
#include "engine/vision.h"

#include <cjson/cJSON.h>

#define GOLD(f) t_shared("golden/llava-tiny/" f)

static bool check_npy(const ids_st_file *f, const char *name, const char *npy, double tol) {
    ids_npy a;
    ids_err err;
    const ids_st_tensor *t = ids_st_find(f, name);
    if (!t || ids_npy_read(npy, &a, &err)) {
        t_fail(__FILE__, __LINE__, "%s: missing tensor or reference", name);
        return false;
    }
    bool ok = t->nbytes == a.nbytes && t->ndim == a.ndim;
    for (int d = 0; ok && d < a.ndim; d++) ok = t->shape[d] == a.shape[d];
    if (!ok) {
        t_fail(__FILE__, __LINE__, "%s: shape differs from %s", name, npy);
    } else {
        double e = t_max_abs_diff(t->data, a.data, a.nbytes / 4);
        if (e > tol) {
            t_fail(__FILE__, __LINE__, "%s: max |diff| %g > %g", name, e, tol);
            ok = false;
        }
    }
    ids_npy_free(&a);
    return ok;
}

/* llama.cpp's token chunks of a golden prompt, flattened: -1 on the image rows. */
static int golden_tokens(const char *tokens_json, int32_t *want, int cap) {
    char *js = t_read_file(tokens_json, NULL);
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

/* idscope capture --all on the golden model reproduces llama.cpp's tokens and the HF reference. */
TEST(vlm_capture_all_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, GOLD("image.png"), &err), err);
    char *prompt = t_read_file(GOLD("prompt.txt"), NULL);
    REQUIRE(prompt);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true,
                          .image_embd = true, .vision = true, .n_threads = 2};
    const char *out = t_tmp("cap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    int32_t want[64];
    const int n = golden_tokens(GOLD("tokens.json"), want, 64);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk && tk->ndim == 1);
    CHECK_EQ_INT(tk->shape[0], n);
    CHECK(tk->shape[0] == n && memcmp(tk->data, want, sizeof(int32_t) * (size_t)n) == 0);
    check_npy(f, "image_embd", GOLD("expected/image_embd.npy"), 1e-3);
    check_npy(f, "vision", GOLD("expected/vision_layers.npy"), 1e-3);
    check_npy(f, "resid", GOLD("expected/resid.npy"), 1e-3);
    if (check_npy(f, "logits", GOLD("expected/logits.npy"), 1e-3)) {
        ids_npy a;
        ids_npy_read(GOLD("expected/logits.npy"), &a, &err);
        const float *g = ids_st_find(f, "logits")->data, *r = a.data;
        int bad = 0;
        for (int i = 0; i < n; i++) {
            int ag = 0, ar = 0;
            for (int k = 1; k < 32000; k++) {
                if (g[(size_t)i * 32000 + k] > g[(size_t)i * 32000 + ag]) ag = k;
                if (r[(size_t)i * 32000 + k] > r[(size_t)i * 32000 + ar]) ar = k;
            }
            bad += ag != ar;
        }
        CHECK_EQ_INT(bad, 0);
        ids_npy_free(&a);
    }
    const ids_st_tensor *ps = ids_st_find(f, "positions");
    CHECK(ps && ps->shape[0] == n && ps->shape[1] == 3 && ((const int32_t *)ps->data)[3 * 7] == 7);
    CHECK(ids_st_meta(f, "layers") && !strcmp(ids_st_meta(f, "layers"), "0,1,2,3,4"));
    ids_st_close(f);

    /* a selection: two layers at the word "circle" */
    ids_capture_opts o2 = {.layers = "1,3", .positions = "word:circle", .resid = true, .n_threads = 1};
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o2, out, &err), err);
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    const ids_st_tensor *rs = ids_st_find(f, "resid");
    ids_npy ref;
    REQUIRE_OK(ids_npy_read(GOLD("expected/resid.npy"), &ref, &err), err);
    CHECK(rs && rs->shape[0] == 2 && rs->shape[1] == 1 && rs->shape[2] == 64);
    CHECK(!strcmp(ids_st_meta(f, "positions"), "26")); /* 21 + "▁ \n Is the red circle" */
    if (rs) {
        CHECK(t_max_abs_diff(rs->data, (float *)ref.data + ((size_t)1 * 42 + 26) * 64, 64) <= 1e-3);
        CHECK(t_max_abs_diff((const float *)rs->data + 64, (float *)ref.data + ((size_t)3 * 42 + 26) * 64, 64) <= 1e-3);
    }
    CHECK(ids_st_find(f, "logits") == NULL);
    ids_npy_free(&ref);
    ids_st_close(f);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* Copy the golden mmproj with edits: drop a key, set the projector type, swap fc naming, or
 * replace mm.2 by a matrix of another output width. */
typedef struct {
    const char *drop_key;
    const char *projector;
    bool swap_ffn_names;
    int mm2_out;
} mmproj_edit;

static const char *write_mmproj(const mmproj_edit *e, const char *name) {
    ids_gguf *g;
    ids_err err;
    if (ids_gguf_open(&g, GOLD("mmproj.gguf"), &err)) return NULL;
    ids_gguf_writer *w = ids_gguf_writer_new();
    for (int64_t i = 0; i < ids_gguf_n_kv(g); i++) {
        const char *k = ids_gguf_kv_key(g, i);
        if (e->drop_key && !strcmp(k, e->drop_key)) continue;
        if (e->projector && !strcmp(k, "clip.projector_type"))
            ids_gguf_writer_set_str(w, k, e->projector, &err);
        else
            ids_gguf_writer_set_value(w, k, ids_gguf_kv_value(g, i), &err);
    }
    for (int64_t i = 0; i < ids_gguf_n_tensors(g); i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        char nm[96];
        snprintf(nm, sizeof nm, "%s", t->name);
        char *p;
        if (e->swap_ffn_names && ((p = strstr(nm, "ffn_down")) || (p = strstr(nm, "ffn_up")))) {
            char tail[64];
            bool down = !strncmp(p, "ffn_down", 8);
            snprintf(tail, sizeof tail, "%s", p + (down ? 8 : 6));
            snprintf(p, sizeof nm - (size_t)(p - nm), "%s%s", down ? "ffn_up" : "ffn_down", tail);
        }
        if (e->mm2_out && (!strcmp(nm, "mm.2.weight") || !strcmp(nm, "mm.2.bias"))) {
            bool wt = !strcmp(nm, "mm.2.weight");
            int64_t ne[2] = {wt ? 64 : e->mm2_out, e->mm2_out};
            float *z = calloc((size_t)64 * e->mm2_out, sizeof(float));
            ids_gguf_writer_add_tensor_f32(w, nm, IDS_TYPE_F32, wt ? 2 : 1, ne, z, &err);
            free(z);
            continue;
        }
        ids_gguf_writer_add_tensor(w, nm, t->type, t->n_dims, t->ne, t->data, &err);
    }
    const char *path = t_tmp(name);
    ids_status st = ids_gguf_writer_write(w, path, &err);
    ids_gguf_writer_free(w);
    ids_gguf_close(g);
    return st ? NULL : path;
}

static void encode_with(const char *mmproj, float *out, ids_err *err, ids_status *st) {
    ids_vision *v;
    *st = ids_vision_load(&v, mmproj, err);
    if (*st) return;
    ids_image img;
    if ((*st = ids_image_load(&img, GOLD("image.png"), err))) {
        ids_vision_free(v);
        return;
    }
    *st = ids_vision_encode(v, &img, 1, out, NULL, err);
    ids_image_free(&img);
    ids_vision_free(v);
}

TEST(vlm_mmproj_variants) {
    ids_npy ref;
    ids_err err;
    REQUIRE_OK(ids_npy_read(GOLD("expected/image_embd.npy"), &ref, &err), err);
    float out[16 * 64];
    ids_status st;
    mmproj_edit no_fl = {.drop_key = "clip.vision.feature_layer"};
    const char *p = write_mmproj(&no_fl, "no_fl.gguf");
    REQUIRE(p);
    encode_with(p, out, &err, &st);
    CHECKF(st == IDS_OK, "%s", err.msg);
    CHECK(t_max_abs_diff(out, ref.data, 16 * 64) <= 1e-3); /* all stored blocks run */
    mmproj_edit hf_names = {.swap_ffn_names = true};
    p = write_mmproj(&hf_names, "hf_names.gguf");
    REQUIRE(p);
    ids_vision *v;
    REQUIRE_OK(ids_vision_load(&v, p, &err), err);
    CHECK(!ids_vision_params(v)->ffn_swapped);
    ids_vision_free(v);
    encode_with(p, out, &err, &st);
    CHECK(st == IDS_OK && t_max_abs_diff(out, ref.data, 16 * 64) <= 1e-3);
    REQUIRE_OK(ids_vision_load(&v, GOLD("mmproj.gguf"), &err), err);
    CHECK(ids_vision_params(v)->ffn_swapped);
    CHECK_EQ_INT(ids_vision_params(v)->n_run, 3);
    ids_vision_free(v);
    mmproj_edit other = {.projector = "resampler"};
    p = write_mmproj(&other, "other.gguf");
    REQUIRE(p);
    CHECK_EQ_INT(ids_vision_load(&v, p, &err), IDS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "'resampler'") != NULL);
    /* a text model is not an mmproj */
    CHECK_EQ_INT(ids_vision_load(&v, GOLD("text.gguf"), &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "clip") != NULL);
    /* widths that do not match */
    mmproj_edit narrow = {.mm2_out = 48};
    p = write_mmproj(&narrow, "narrow.gguf");
    REQUIRE(p);
    ids_vlm *vlm;
    CHECK_EQ_INT(ids_vlm_load(&vlm, GOLD("text.gguf"), p, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "48") && strstr(err.msg, "64"));
    ids_npy_free(&ref);
}

TEST(vlm_bad_inputs) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, GOLD("image.png"), &err), err);
    ids_seq *s = NULL;
    CHECK_EQ_INT(ids_vlm_build_seq(v, "USER: <image><image>\nHi ASSISTANT:", &img, 1, 1, NULL, &s, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "2 <image> markers") && strstr(err.msg, "1 image"));
    CHECK_EQ_INT(ids_vlm_build_seq(v, "USER: Hi ASSISTANT:", &img, 1, 1, NULL, &s, &err), IDS_ERR_ARG);
    CHECK(s == NULL);
    /* two images, text between them and none before the first */
    ids_image two[2] = {img, img};
    CHECK_OK_ERR(ids_vlm_build_seq(v, "<image><image>x", two, 2, 1, NULL, &s, &err), err);
    if (s) {
        CHECK_EQ_INT(ids_seq_len(s), 1 + 32 + 1); /* BOS, 2 x 16 rows, "▁x" (one token) */
        CHECK(ids_seq_row(s, 0)->token == 1 && ids_seq_row(s, 17)->image == 1 && ids_seq_row(s, 17)->cell_col == 0);
        ids_seq_free(s);
    }
    ids_image bad;
    CHECK_EQ_INT(ids_image_load(&bad, "/nonexistent/img.png", &err), IDS_ERR_IO);
    const char *junk = t_tmp("junk.png");
    FILE *f = fopen(junk, "wb");
    fputs("\x89PNG\r\n\x1a\n garbage, not an image", f);
    fclose(f);
    CHECK_EQ_INT(ids_image_load(&bad, junk, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "junk.png") != NULL);
    ids_image_free(&img);
    ids_vlm_free(v);
}

static bool same_image(const ids_image *a, const ids_image *b, int tol) {
    if (a->w != b->w || a->h != b->h) return false;
    for (size_t i = 0; i < (size_t)a->w * a->h * 3; i++)
        if (abs((int)a->rgb[i] - (int)b->rgb[i]) > tol) return false;
    return true;
}

TEST(vlm_image_resize_matches_pillow) {
    ids_image src, ref, out;
    ids_err err;
    REQUIRE_OK(ids_image_load(&src, "tests/fixtures/resize/src.png", &err), err);
    const int sizes[3][2] = {{56, 56}, {16, 9}, {80, 23}};
    for (int k = 0; k < 3; k++) {
        char p[128];
        snprintf(p, sizeof p, "tests/fixtures/resize/bicubic_%dx%d.png", sizes[k][0], sizes[k][1]);
        REQUIRE_OK(ids_image_load(&ref, p, &err), err);
        CHECK_OK_ERR(ids_image_resize_bicubic(&src, sizes[k][0], sizes[k][1], &out, &err), err);
        CHECKF(same_image(&out, &ref, 0), "bicubic %dx%d differs from Pillow", sizes[k][0], sizes[k][1]);
        ids_image_free(&out);
        ids_image_free(&ref);
    }
    const uint8_t mean[3] = {122, 116, 104};
    REQUIRE_OK(ids_image_load(&ref, "tests/fixtures/resize/square.png", &err), err);
    CHECK_OK_ERR(ids_image_pad_square(&src, mean, &out, &err), err);
    CHECK(same_image(&out, &ref, 0));
    ids_image_free(&out);
    ids_image_free(&ref);
    /* PNG writing round-trips */
    const char *pp = t_tmp("rt.png");
    CHECK_OK_ERR(ids_image_write_png(&src, pp, &err), err);
    REQUIRE_OK(ids_image_load(&out, pp, &err), err);
    CHECK(same_image(&out, &src, 0));
    ids_image_free(&out);
    /* a non-square image goes through pad + resize into the tower */
    ids_vision *v;
    REQUIRE_OK(ids_vision_load(&v, GOLD("mmproj.gguf"), &err), err);
    float pix[3 * 56 * 56], emb[16 * 64];
    CHECK_OK_ERR(ids_vision_preprocess(v, &src, pix, &err), err);
    /* top-left pixel is padding: (122/255 - mean) / std */
    CHECK(fabsf(pix[0] - (122.0f / 255.0f - 0.48145467f) / 0.26862955f) < 1e-5f);
    CHECK_OK_ERR(ids_vision_encode(v, &src, 2, emb, NULL, &err), err);
    ids_vision_free(v);
    ids_image_free(&src);
}

TEST(vlm_index_lists) {
    int *v, n;
    ids_err err;
    CHECK_OK_ERR(ids_parse_index_list("0,3,5-7", 0, 10, &v, &n, &err), err);
    CHECK(n == 5 && v[0] == 0 && v[1] == 3 && v[4] == 7);
    free(v);
    CHECK_OK_ERR(ids_parse_index_list("all", 2, 4, &v, &n, &err), err);
    CHECK(n == 3 && v[0] == 2);
    free(v);
    CHECK_EQ_INT(ids_parse_index_list("1,12", 0, 10, &v, &n, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "12") != NULL);
    CHECK_EQ_INT(ids_parse_index_list("1,x", 0, 10, &v, &n, &err), IDS_ERR_ARG);
    CHECK_EQ_INT(ids_parse_index_list("5-3", 0, 10, &v, &n, &err), IDS_ERR_RANGE);
}

#define QGOLD(f) t_shared("golden/qwen2vl-tiny/" f)

/* idscope capture --all on the golden Qwen2-VL-shaped model: tokens and M-RoPE positions exactly,
 * the tower, the stream and the last logits within tolerance. */
TEST(vlm_qwen2vl_capture_all_golden) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, QGOLD("text.gguf"), QGOLD("mmproj.gguf"), &err), err);
    CHECK_EQ_INT(ids_model_hparams(ids_vlm_model(v))->rope_mode, IDS_ROPE_MROPE);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, QGOLD("image.png"), &err), err);
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(ids_vlm_vision(v), &img, 1, &pl, &err), err);
    CHECK(pl.width == 112 && pl.height == 84 && pl.grid_w == 4 && pl.grid_h == 3 && pl.n_out == 12 && pl.n_tokens == 48);
    char *prompt = t_read_file(QGOLD("prompt.txt"), NULL);
    REQUIRE(prompt);
    ids_capture_opts o = {.layers = "all", .positions = "all", .resid = true, .logits = true,
                          .image_embd = true, .vision = true, .n_threads = 2};
    const char *out = t_tmp("qcap.safetensors");
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    int32_t want[64];
    const int n = golden_tokens(QGOLD("tokens.json"), want, 64);
    const ids_st_tensor *tk = ids_st_find(f, "tokens");
    REQUIRE(tk);
    CHECK_EQ_INT(tk->shape[0], n);
    CHECK(tk->shape[0] == n && memcmp(tk->data, want, sizeof(int32_t) * (size_t)n) == 0);
    ids_npy pos;
    REQUIRE_OK(ids_npy_read(QGOLD("expected/positions.npy"), &pos, &err), err);
    const ids_st_tensor *ps = ids_st_find(f, "positions");
    CHECK(ps && ps->nbytes == pos.nbytes && memcmp(ps->data, pos.data, pos.nbytes) == 0);
    ids_npy_free(&pos);
    check_npy(f, "image_embd", QGOLD("expected/image_embd.npy"), 1e-3);
    check_npy(f, "vision", QGOLD("expected/vision_layers.npy"), 1e-3);
    check_npy(f, "resid", QGOLD("expected/resid.npy"), 1e-3);
    ids_npy lg;
    REQUIRE_OK(ids_npy_read(QGOLD("expected/logits_last4.npy"), &lg, &err), err);
    const ids_st_tensor *L = ids_st_find(f, "logits");
    REQUIRE(L && L->shape[0] == n && L->shape[1] == 151936);
    double e = t_max_abs_diff((const float *)L->data + (size_t)(n - 4) * 151936, lg.data, 4 * 151936);
    CHECKF(e <= 1e-3, "last 4 logits rows: max |diff| %g", e);
    ids_npy_free(&lg);
    ids_st_close(f);
    /* rows know their merged cell */
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, &img, 1, 1, NULL, &s, &err), err);
    const ids_row *r = ids_seq_row(s, 15 + 6); /* second row of cells, third column */
    CHECK(r->kind == IDS_ROW_IMAGE && r->cell_row == 1 && r->cell_col == 2 && r->pos[0] == 15 && r->pos[1] == 16 &&
          r->pos[2] == 17);
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* A tower packs its weights on its first encode and keeps them (ids_vision_load): the first encode (which
 * packs as it goes), the next (from the packed weights) and an encode without packing (IDSCOPE_PACK_MB=0)
 * give the same bits, for the CLIP and the Qwen2-VL towers. */
TEST(vlm_vision_packed_weights_same_bits) {
    const char *towers[] = {GOLD("mmproj.gguf"), QGOLD("mmproj.gguf")}, *images[] = {GOLD("image.png"), QGOLD("image.png")};
    for (int t = 0; t < 2; t++) {
        ids_err err;
        ids_image img;
        REQUIRE_OK(ids_image_load(&img, images[t], &err), err);
        float *out[3] = {NULL, NULL, NULL};
        size_t n = 0;
        for (int k = 0; k < 2; k++) {
            setenv("IDSCOPE_PACK_MB", k ? "0" : "64", 1);
            ids_vision *v;
            REQUIRE_OK(ids_vision_load(&v, towers[t], &err), err);
            ids_vplan pl;
            REQUIRE_OK(ids_vision_plan(v, &img, 1, &pl, &err), err);
            n = (size_t)pl.n_out * (size_t)ids_vision_params(v)->n_out_embd;
            for (int r = 0; r < (k ? 1 : 2); r++) {
                float *o = malloc(sizeof(float) * n);
                REQUIRE(o);
                CHECK_OK_ERR(ids_vision_encode(v, &img, 2, o, NULL, &err), err);
                out[k ? 2 : r] = o;
            }
            if (!k) CHECKF(ids__packs_bytes(v->packs) > 0, "%s: nothing packed", towers[t]);
            ids_vision_free(v);
        }
        unsetenv("IDSCOPE_PACK_MB");
        CHECKF(!memcmp(out[0], out[2], sizeof(float) * n) && !memcmp(out[1], out[2], sizeof(float) * n),
               "%s: packed weights change the rows", towers[t]);
        for (int k = 0; k < 3; k++) free(out[k]);
        ids_image_free(&img);
    }
}

/* A video of identical frames gives the image rows of one frame, per temporal patch. */
TEST(vlm_qwen2vl_video_of_one_frame) {
    ids_vision *v;
    ids_err err;
    REQUIRE_OK(ids_vision_load(&v, QGOLD("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, QGOLD("image.png"), &err), err);
    float one[12 * 64], vid[3 * 12 * 64];
    CHECK_OK_ERR(ids_vision_encode(v, &img, 2, one, NULL, &err), err);
    ids_image frames[5] = {img, img, img, img, img};
    ids_vplan pl;
    CHECK_OK_ERR(ids_vision_plan(v, frames, 5, &pl, &err), err); /* odd count: last frame repeated */
    CHECK(pl.grid_t == 3 && pl.n_out == 36);
    CHECK_OK_ERR(ids_vision_encode_frames(v, frames, 5, 2, vid, NULL, &err), err);
    for (int t = 0; t < 3; t++) CHECK(t_max_abs_diff(vid + (size_t)t * 12 * 64, one, 12 * 64) <= 1e-5);
    /* different frames change the rows of their temporal patch only */
    ids_image other;
    CHECK_OK_ERR(ids_image_new(&other, img.w, img.h, (const uint8_t[3]){200, 10, 10}, &err), err);
    ids_image mix[4] = {img, img, other, other};
    float vm[2 * 12 * 64];
    CHECK_OK_ERR(ids_vision_encode_frames(v, mix, 4, 2, vm, NULL, &err), err);
    CHECK(t_max_abs_diff(vm, one, 12 * 64) <= 1e-5);
    CHECK(t_max_abs_diff(vm + 12 * 64, one, 12 * 64) > 1e-3);
    ids_image_free(&other);
    /* dynamic resolution: sides rounded to multiples of 28, bounds respected */
    ids_image big;
    CHECK_OK_ERR(ids_image_new(&big, 1000, 300, NULL, &err), err);
    CHECK_OK_ERR(ids_vision_plan(v, &big, 1, &pl, &err), err);
    CHECK(pl.width % 28 == 0 && pl.height % 28 == 0 && pl.width == 1008 && pl.height == 308);
    CHECK_OK_ERR(ids_vision_set_pixel_bounds(v, 3136, 100000, &err), err);
    CHECK_OK_ERR(ids_vision_plan(v, &big, 1, &pl, &err), err);
    CHECK(pl.width * pl.height <= 100000 && pl.width % 28 == 0 && pl.width > 2 * pl.height);
    ids_image_free(&big);
    ids_image tiny;
    CHECK_OK_ERR(ids_image_new(&tiny, 20, 10, NULL, &err), err);
    CHECK_OK_ERR(ids_vision_plan(v, &tiny, 1, &pl, &err), err);
    CHECK(pl.width * pl.height >= 3136 && pl.height >= 28);
    ids_image_free(&tiny);
    ids_image_free(&img);
    ids_vision_free(v);
}

/* Reuse == full recompute on the M-RoPE family (positions are not row indices). */
TEST(vlm_qwen2vl_reuse_equals_full) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, QGOLD("text.gguf"), QGOLD("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, QGOLD("image.png"), &err), err);
    char *prompt = ids_vlm_prompt(v, "Is the red circle to the left or right of the blue square?", 1);
    ids_seq *s;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, &img, 1, 2, NULL, &s, &err), err);
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, ids_vlm_model(v), cp, &err), err);
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err), err);
    float add[64];
    for (int i = 0; i < 64; i++) add[i] = 0.5f * cosf((float)i);
    ids_sel sels[3] = {{.kind = IDS_SEL_WORD, .word = "circle", .after_image = true},
                       {.kind = IDS_SEL_IMAGE, .image = -1},
                       {.kind = IDS_SEL_LAST}};
    for (int si = 0; si < 3; si++)
        for (int l = 0; l <= 3; l++) {
            ids_hook h = {.site = IDS_SITE_RESID, .layer = l, .sel = sels[si], .action = IDS_ACT_ADD, .vec = add, .len = 64};
            static float a[151936], b[151936];
            ids_run_opts o = {.logits = IDS_LOGITS_LAST};
            ids_run_out oa = {.logits = a}, ob = {.logits = b};
            CHECK_OK_ERR(ids_ctx_run(c, &h, 1, &o, &oa, &err), err);
            o.full_recompute = true;
            CHECK_OK_ERR(ids_ctx_run(c, &h, 1, &o, &ob, &err), err);
            double scale = 1, d = t_max_abs_diff(a, b, 151936);
            for (int i = 0; i < 151936; i++) scale = fmax(scale, fabs(b[i]));
            CHECKF(d / scale <= 1e-5, "sel %d layer %d: %g", si, l, d / scale);
        }
    /* generation continues the M-RoPE positions */
    int32_t gen[4];
    int ng;
    CHECK_OK_ERR(ids_ctx_generate(c, NULL, 0, 3, gen, &ng, &err), err);
    ids_ctx_free(c);
    ids_seq_free(s);
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* A <video> marker: Qwen2-VL encodes the frames as temporal patches of one block (rows know their
 * patch; M-RoPE t advances per patch); reversing a video of repeated pairs swaps the patches'
 * rows. On the LLaVA path a video is one image block per frame, as with <image> markers. */
TEST(vlm_video_marker) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, QGOLD("text.gguf"), QGOLD("mmproj.gguf"), &err), err);
    ids_image a, b;
    REQUIRE_OK(ids_image_load(&a, QGOLD("image.png"), &err), err);
    CHECK_OK_ERR(ids_image_new(&b, a.w, a.h, (const uint8_t[3]){30, 200, 60}, &err), err);
    ids_image fr[4] = {a, a, b, b}, rev[4];
    ids_video_reverse(fr, 4, rev);
    char *prompt = ids_vlm_video_prompt(v, "What happens?", 0);
    REQUIRE(prompt && strstr(prompt, IDS_VIDEO_MARKER));
    ids_seq *s, *r;
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, fr, 4, 4, 1, NULL, &s, &err), err);
    REQUIRE_OK(ids_vlm_build_video_seq(v, prompt, rev, 4, 4, 1, NULL, &r, &err), err);
    const int n = ids_seq_len(s), E = ids_seq_n_embd(s);
    int first[2] = {-1, -1}, cnt[2] = {0, 0}, t0 = -1, t1 = -1;
    for (int i = 0; i < n; i++) {
        const ids_row *w = ids_seq_row(s, i);
        if (w->image < 0) continue;
        CHECK(w->image == 0 && (w->frame == 0 || w->frame == 1));
        if (w->frame < 0 || w->frame > 1) continue;
        if (first[w->frame] < 0) first[w->frame] = i;
        cnt[w->frame]++;
        if (w->frame == 0) t0 = w->pos[0];
        else t1 = w->pos[0];
    }
    CHECK(cnt[0] > 0 && cnt[0] == cnt[1] && first[1] == first[0] + cnt[0]);
    CHECK_EQ_INT(t1, t0 + 1);
    int bad = 0;
    for (int j = 0; j < cnt[0]; j++)
        for (int p = 0; p < 2; p++) {
            const float *x = ids_seq_embd(r, first[p] + j), *y = ids_seq_embd(s, first[1 - p] + j);
            for (int e = 0; e < E; e++) bad += fabsf(x[e] - y[e]) > 1e-6f;
        }
    CHECK_EQ_INT(bad, 0);
    ids_seq_free(r);
    /* bad counts are refused */
    CHECK(ids_vlm_build_video_seq(v, prompt, fr, 3, 4, 1, NULL, &r, &err) == IDS_ERR_ARG);
    CHECK(ids_vlm_build_seq(v, prompt, fr, 4, 1, NULL, &r, &err) == IDS_ERR_ARG);
    ids_seq_free(s);
    free(prompt);
    ids_vlm_free(v);
    /* LLaVA: one block per frame, identical to four <image> markers */
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    REQUIRE_OK(ids_vlm_build_video_seq(v, "USER: <video>\nWhat happens? ASSISTANT:", fr, 4, 4, 1, NULL, &s, &err), err);
    REQUIRE_OK(ids_vlm_build_seq(v, "USER: <image><image><image><image>\nWhat happens? ASSISTANT:", fr, 4, 1, NULL, &r, &err), err);
    CHECK(ids_seq_len(s) == ids_seq_len(r));
    bad = 0;
    for (int i = 0; i < ids_seq_len(s) && i < ids_seq_len(r); i++) {
        const ids_row *x = ids_seq_row(s, i), *y = ids_seq_row(r, i);
        bad += x->token != y->token || x->image != y->image;
    }
    CHECK_EQ_INT(bad, 0);
    ids_seq_free(s);
    ids_seq_free(r);
    ids_vlm_free(v);
    ids_image_free(&a);
    ids_image_free(&b);
}

typedef struct {
    const char *mmproj;
    const ids_image *img;
} vision_case;

/* Load a tower, encode one image (the tower's blocks captured too), free. */
static ids_status vision_load_encode(void *ctx, ids_err *err) {
    const vision_case *c = ctx;
    ids_vision *v;
    ids_status st = ids_vision_load(&v, c->mmproj, err);
    if (st) return st;
    ids_vplan pl;
    const ids_vparams *vp = ids_vision_params(v);
    float *out = NULL, *blocks = NULL;
    if (!(st = ids_vision_plan(v, c->img, 1, &pl, err))) {
        out = malloc(sizeof(float) * (size_t)pl.n_out * vp->n_out_embd);
        blocks = malloc(sizeof(float) * (size_t)vp->n_run * pl.n_tokens * vp->n_embd);
        st = out && blocks ? ids_vision_encode(v, c->img, 1, out, blocks, err) : IDS_ERR_ARG;
    }
    free(out);
    free(blocks);
    ids_vision_free(v);
    return st;
}

/* Vision tower loading and encoding with each allocation failing in turn: CLIP (LLaVA-1.5) and
 * Qwen2-VL. */
TEST(vlm_vision_allocation_failures) {
    const char *dirs[2] = {"llava-tiny", "qwen2vl-tiny"};
    for (int k = 0; k < 2; k++) {
        char mmproj[512], png[512];
        snprintf(mmproj, sizeof mmproj, "%s/%s/mmproj.gguf", t_shared("golden"), dirs[k]);
        snprintf(png, sizeof png, "%s/%s/image.png", t_shared("golden"), dirs[k]);
        ids_image img;
        ids_err err;
        REQUIRE_OK(ids_image_load(&img, png, &err), err);
        vision_case c = {mmproj, &img};
        long n = CHECK_ALLOC_FAILURES(vision_load_encode, &c, 500);
        CHECKF(n > 10, "%s: %ld allocations", dirs[k], n);
        ids_image_free(&img);
    }
}
