/* The flat API for foreign callers (ids_ffi_*): the same numbers as the golden data and as the
 * structured API, errors as messages, hooks and variants, allocation failures. */
#include "test.h"

#define GOLD(f) t_shared("golden/llava-tiny/" f)

/* The golden VLM, its prompt and a run of prompt + image. */
typedef struct {
    ids_vlm *v;
    char *prompt;
    ids_ffi_run *r;
} ffi_fixture;

static bool fixture_open(ffi_fixture *f) {
    memset(f, 0, sizeof *f);
    if (ids_ffi_vlm_load(&f->v, GOLD("text.gguf"), GOLD("mmproj.gguf"))) {
        t_fail(__FILE__, __LINE__, "ids_ffi_vlm_load: %s", ids_ffi_error());
        return false;
    }
    f->prompt = t_read_file(GOLD("prompt.txt"), NULL);
    const char *img = GOLD("image.png");
    if (!f->prompt || ids_ffi_run_new(&f->r, f->v, f->prompt, 1, &img, NULL, NULL, NULL, 0, 1, 2)) {
        t_fail(__FILE__, __LINE__, "ids_ffi_run_new: %s", ids_ffi_error());
        return false;
    }
    return true;
}

static void fixture_close(ffi_fixture *f) {
    ids_ffi_run_free(f->r);
    ids_vlm_free(f->v);
    free(f->prompt);
}

TEST(ffi_model_and_text) {
    CHECK_EQ_INT(ids_ffi_version(), IDS_FFI_VERSION);
    ids_vlm *v = NULL;
    CHECK(ids_ffi_vlm_load(&v, "/nonexistent/text.gguf", GOLD("mmproj.gguf")) == IDS_ERR_IO && !v);
    CHECKF(strstr(ids_ffi_error(), "/nonexistent/text.gguf") != NULL, "message: %s", ids_ffi_error());
    REQUIRE(ids_ffi_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf")) == IDS_OK);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "n_layer"), 4);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "n_embd"), 64);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "n_vocab"), 32000);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "n_head_kv"), 2);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "vision_n_layer"), 3);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "vision_n_embd"), 48);
    CHECK_EQ_INT(ids_ffi_vlm_size(v, "no_such_size"), -1);
    CHECK(!strcmp(ids_ffi_vlm_text(v, "arch"), "llama") && !strcmp(ids_ffi_vlm_text(v, "tokenizer"), "spm"));
    CHECK(!strcmp(ids_ffi_vlm_text(v, "projector"), "mlp") && ids_ffi_vlm_text(v, "nothing") == NULL);
    int32_t *ids = NULL;
    int n = 0;
    CHECK(ids_ffi_tokenize(v, "Hello world", 1, 0, &ids, &n) == IDS_OK);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186);
    char *s = NULL;
    CHECK(ids_ffi_detokenize(v, ids, n, 0, &s) == IDS_OK && s && !strcmp(s, "Hello world"));
    ids_ffi_free(s);
    CHECK(ids_ffi_token_text(v, 1, &s) == IDS_OK && s && !strcmp(s, "<s>"));
    ids_ffi_free(s);
    CHECK(ids_ffi_token_text(v, 15043, &s) == IDS_OK && s && !strcmp(s, " Hello"));
    ids_ffi_free(s);
    CHECK(ids_ffi_token_text(v, 32000, &s) == IDS_ERR_RANGE && !s && strstr(ids_ffi_error(), "32000"));
    ids[1] = -5;
    CHECK(ids_ffi_detokenize(v, ids, n, 0, &s) == IDS_ERR_RANGE && strstr(ids_ffi_error(), "token -5 (item 1)"));
    ids_ffi_free(ids);
    int32_t tok = 0;
    CHECK(ids_ffi_word_token(v, "circle", &tok) == IDS_OK && tok == 8607);
    CHECK(ids_ffi_word_token(v, "", &tok) != IDS_OK && tok == -1 && strstr(ids_ffi_error(), "empty word"));
    CHECK(ids_ffi_prompt(v, "Where?", 1, &s) == IDS_OK && s && !strcmp(s, "USER: <image>\nWhere? ASSISTANT:"));
    ids_ffi_free(s);
    ids_vlm_free(v);
}

/* Rows, selectors, the tower's blocks and a capture against the golden arrays. */
TEST(ffi_run_rows_and_golden) {
    ffi_fixture f;
    if (!fixture_open(&f)) return;
    const int n = ids_ffi_run_len(f.r);
    CHECK_EQ_INT(n, 42);
    CHECK_EQ_INT(ids_ffi_run_n_images(f.r), 1);
    int32_t rows[42 * 9];
    ids_ffi_run_rows(f.r, rows);
    CHECK(rows[0] == 1 && rows[1] == IDS_ROW_TEXT && rows[2] == -1);
    const int32_t *r7 = rows + 7 * 9; /* the third image row: patch (0, 2) */
    CHECK(r7[0] == -1 && r7[1] == IDS_ROW_IMAGE && r7[2] == 0 && r7[3] == 0 && r7[4] == 2 && r7[6] == 7);
    int *sel = NULL, ns = 0;
    CHECK(ids_ffi_run_select(f.r, "image:0", &sel, &ns) == IDS_OK && ns == 16 && sel[0] == 5);
    ids_ffi_free(sel);
    CHECK(ids_ffi_run_select(f.r, "word:circle", &sel, &ns) == IDS_OK && ns == 1 && sel[0] == 26);
    ids_ffi_free(sel);
    CHECK(ids_ffi_run_select(f.r, "image:1", &sel, &ns) == IDS_ERR_NOT_FOUND && strstr(ids_ffi_error(), "image"));
    CHECK(ids_ffi_run_select(f.r, "image:x", &sel, &ns) == IDS_ERR_ARG && strstr(ids_ffi_error(), "image:x"));
    CHECK(ids_ffi_run_select(f.r, "40-45", &sel, &ns) == IDS_ERR_RANGE && strstr(ids_ffi_error(), "40-45"));
    int nb, nt, w;
    const float *vis;
    CHECK(ids_ffi_run_vision(f.r, 0, &nb, &nt, &w, &vis) == IDS_OK && nb == 3 && nt == 17 && w == 48);
    CHECK(ids_ffi_run_vision(f.r, 1, &nb, &nt, &w, &vis) == IDS_ERR_RANGE);
    ids_npy vref, rref;
    ids_err err;
    REQUIRE_OK(ids_npy_read(GOLD("expected/vision_layers.npy"), &vref, &err), err);
    REQUIRE_OK(ids_npy_read(GOLD("expected/resid.npy"), &rref, &err), err);
    CHECK(t_max_abs_diff(vis, vref.data, 3 * 17 * 48) <= 1e-3);
    /* captures: the stream at layer 2 on every row, attention probabilities of block 1 at the last row */
    float *res = malloc(sizeof(float) * 42 * 64), *pr = malloc(sizeof(float) * 4 * 42), last[32000];
    int hn = 0, hw = 0;
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_RESID, 2, "all", IDS_ACT_CAPTURE, res, 42 * 64, 0, 0, &hn, &hw) == IDS_OK);
    CHECK(hn == 42 && hw == 64);
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_ATTN_PROBS, 1, "last", -1, NULL, 0, 0, 0, &hn, &hw) == IDS_OK);
    CHECK(hn == 1 && hw == 4 * 42);
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_ATTN_PROBS, 1, "last", IDS_ACT_CAPTURE, pr, 4 * 42, 0, 0, NULL, NULL) == IDS_OK);
    CHECK(ids_ffi_run_prefill(f.r, IDS_LOGITS_LAST, last, NULL, 0, NULL) == IDS_OK);
    CHECK(t_max_abs_diff(res, (const float *)rref.data + (size_t)2 * 42 * 64, 42 * 64) <= 1e-3);
    double s = 0;
    for (int k = 0; k < 42; k++) s += pr[k];
    CHECKF(fabs(s - 1) < 1e-5, "head 0 probabilities sum to %g", s);
    ids_npy lref;
    REQUIRE_OK(ids_npy_read(GOLD("expected/logits.npy"), &lref, &err), err);
    CHECK(t_max_abs_diff(last, (const float *)lref.data + (size_t)41 * 32000, 32000) <= 1e-3);
    ids_npy_free(&lref);
    ids_npy_free(&vref);
    ids_npy_free(&rref);
    free(res);
    free(pr);
    fixture_close(&f);
}

/* Hooks: shape checks with messages; variants of one clean run equal full recomputation, and an
 * edit moves the answer while an empty variant gives the clean logits. */
TEST(ffi_hooks_and_variants) {
    ffi_fixture f;
    if (!fixture_open(&f)) return;
    float vec[64], big[65], clean[32000], lg[3 * 32000], full[3 * 32000], lp[3 * 2];
    for (int i = 0; i < 64; i++) vec[i] = 0.5f * (float)((i * 37) % 11) - 2.0f;
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_RESID, 3, "word:circle", IDS_ACT_ADD, big, 65, 0, 0, NULL, NULL) == IDS_ERR_ARG);
    CHECKF(strstr(ids_ffi_error(), "resid layer 3, rows 'word:circle': the vector holds 65 floats, 64 expected"),
           "message: %s", ids_ffi_error());
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_MLP_OUT, 4, "all", IDS_ACT_SCALE, NULL, 0, 2, 0, NULL, NULL) == IDS_ERR_RANGE);
    CHECK(strstr(ids_ffi_error(), "mlp_out layer 4 is outside 0..3"));
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_ATTN_PROBS, 0, "all", IDS_ACT_ADD, vec, 64, 0, 0, NULL, NULL) == IDS_ERR_ARG);
    CHECK(ids_ffi_run_hook(f.r, 0, IDS_SITE_RESID, 0, "word:frog", IDS_ACT_SCALE, NULL, 0, 2, 0, NULL, NULL) ==
          IDS_ERR_NOT_FOUND && strstr(ids_ffi_error(), "frog"));
    CHECK(ids_ffi_run_prefill(f.r, IDS_LOGITS_LAST, clean, NULL, 0, NULL) == IDS_OK);
    /* variant 0: none; 1: add at layer 3 on the word; 2: scale the attention output of block 1 */
    CHECK(ids_ffi_run_hook(f.r, 1, IDS_SITE_RESID, 3, "word:circle", IDS_ACT_ADD, vec, 64, 0, 0, NULL, NULL) == IDS_OK);
    CHECK(ids_ffi_run_hook(f.r, 2, IDS_SITE_ATTN_OUT, 1, "text", IDS_ACT_SCALE, NULL, 0, 0.25f, 0, NULL, NULL) == IDS_OK);
    const int32_t cand[2] = {2175, 1492};
    CHECK(ids_ffi_run_variants(f.r, 3, IDS_LOGITS_LAST, lg, cand, 2, lp, 0) == IDS_OK);
    CHECK(ids_ffi_run_variants(f.r, 3, IDS_LOGITS_LAST, full, NULL, 0, NULL, 1) == IDS_OK);
    CHECK(t_max_abs_diff(lg, clean, 32000) == 0);
    CHECK(t_max_abs_diff(lg, full, 3 * 32000) <= 1e-5);
    CHECK(t_max_abs_diff(lg + 32000, clean, 32000) > 1e-2);
    CHECK(t_max_abs_diff(lg + 2 * 32000, clean, 32000) > 1e-2);
    double mx = -1e30, sum = 0;
    for (int i = 0; i < 32000; i++) mx = lg[32000 + i] > mx ? lg[32000 + i] : mx;
    for (int i = 0; i < 32000; i++) sum += exp((double)lg[32000 + i] - mx);
    CHECK(fabs(lp[2] - (lg[32000 + 2175] - mx - log(sum))) < 1e-4);
    int32_t toks[4];
    int n_out = -1;
    CHECK(ids_ffi_run_generate(f.r, 1, 4, toks, &n_out) == IDS_OK && n_out >= 0 && n_out <= 4);
    CHECK(ids_ffi_run_generate(f.r, -1, 65, toks, &n_out) == IDS_ERR_RANGE && strstr(ids_ffi_error(), "gen_room"));
    CHECK(ids_ffi_run_set(f.r, "threads", 1) == IDS_ERR_ARG && strstr(ids_ffi_error(), "before the first run"));
    ids_ffi_run_clear(f.r);
    CHECK(ids_ffi_run_variants(f.r, 1, IDS_LOGITS_LAST, lg, NULL, 0, NULL, 0) == IDS_OK);
    CHECK(t_max_abs_diff(lg, clean, 32000) == 0);
    fixture_close(&f);
}

/* Pixels given by the caller equal the same image read from its file; settings are checked. */
TEST(ffi_pixels_and_settings) {
    ffi_fixture f;
    if (!fixture_open(&f)) return;
    ids_image img;
    ids_err err;
    REQUIRE_OK(ids_image_load(&img, GOLD("image.png"), &err), err);
    ids_ffi_run *r2 = NULL;
    const uint8_t *px = img.rgb;
    CHECK(ids_ffi_run_new(&r2, f.v, f.prompt, 1, NULL, &px, &img.w, &img.h, 0, 0, 1) == IDS_OK);
    float a[32000], b[32000];
    CHECK(r2 && ids_ffi_run_set(r2, "max_rows", 10) == IDS_ERR_RANGE && strstr(ids_ffi_error(), "max_rows 10 is outside 42.."));
    CHECK(r2 && ids_ffi_run_set(r2, "speed", 1) == IDS_ERR_ARG && strstr(ids_ffi_error(), "'speed'"));
    CHECK(r2 && ids_ffi_run_set(r2, "precision", 3) == IDS_ERR_RANGE);
    CHECK(r2 && ids_ffi_run_prefill(r2, IDS_LOGITS_LAST, a, NULL, 0, NULL) == IDS_OK);
    CHECK(ids_ffi_run_prefill(f.r, IDS_LOGITS_LAST, b, NULL, 0, NULL) == IDS_OK);
    CHECK(t_max_abs_diff(a, b, 32000) == 0);
    int nb, nt, w;
    const float *vis;
    CHECK(r2 && ids_ffi_run_vision(r2, 0, &nb, &nt, &w, &vis) == IDS_ERR_ARG && strstr(ids_ffi_error(), "keep_vision"));
    ids_ffi_run_free(r2);
    int big = 70000;
    ids_ffi_run *r3 = NULL;
    CHECK(ids_ffi_run_new(&r3, f.v, f.prompt, 1, NULL, &px, &big, &img.h, 0, 0, 1) == IDS_ERR_RANGE && !r3);
    CHECK(strstr(ids_ffi_error(), "image 0"));
    const char *missing = "/nonexistent/pic.png";
    CHECK(ids_ffi_run_new(&r3, f.v, f.prompt, 1, &missing, NULL, NULL, NULL, 0, 0, 1) == IDS_ERR_IO && !r3);
    CHECK(strstr(ids_ffi_error(), "/nonexistent/pic.png"));
    CHECK(ids_ffi_run_new(&r3, f.v, f.prompt, 0, NULL, NULL, NULL, NULL, 0, 0, 1) == IDS_ERR_ARG && !r3);
    CHECK(strstr(ids_ffi_error(), "1 <image> marker but 0 images"));
    ids_image_free(&img);
    fixture_close(&f);
}

typedef struct {
    const ids_vlm *v;
    const char *prompt, *image;
} ffi_alloc_case;

static ids_status ffi_run_cycle(void *ctx, ids_err *err) {
    ffi_alloc_case *c = ctx;
    ids_ffi_run *r = NULL;
    float cap[64];
    ids_status st = ids_ffi_run_new(&r, c->v, c->prompt, 1, &c->image, NULL, NULL, NULL, 0, 1, 1);
    if (!st) st = ids_ffi_run_hook(r, 0, IDS_SITE_RESID, 1, "last", IDS_ACT_CAPTURE, cap, 64, 0, 0, NULL, NULL);
    if (!st) st = ids_ffi_run_hook(r, 1, IDS_SITE_MLP_OUT, 1, "word:circle", IDS_ACT_SCALE, NULL, 0, 2, 0, NULL, NULL);
    if (!st) st = ids_ffi_run_variants(r, 2, IDS_LOGITS_NONE, NULL, NULL, 0, NULL, 0);
    if (st) snprintf(err->msg, sizeof err->msg, "%s", ids_ffi_error());
    ids_ffi_run_free(r);
    return st;
}

/* A run with hooks and variants with each allocation failing in turn: NOMEM, no crash, no leak. */
TEST(ffi_allocation_failures) {
    ffi_fixture f;
    if (!fixture_open(&f)) return;
    ffi_alloc_case c = {f.v, f.prompt, GOLD("image.png")};
    long n = CHECK_ALLOC_FAILURES(ffi_run_cycle, &c, 400);
    CHECK(n > 10);
    fixture_close(&f);
}
