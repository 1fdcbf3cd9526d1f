/* ids_capture's block sites (attention and MLP outputs, attention probabilities), its edits and the
 * rows' metadata, on the golden LLaVA-shaped model. */
#include "test.h"

#define GOLD(f) t_shared("golden/llava-tiny/" f)

static const float *tensor(const ids_st_file *f, const char *name, int ndim, const int64_t *shape) {
    const ids_st_tensor *t = ids_st_find(f, name);
    if (!t || t->ndim != ndim || strcmp(t->dtype, "F32")) return NULL;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return NULL;
    return t->data;
}

static bool starts(const char *s, const char *prefix) { return s && !strncmp(s, prefix, strlen(prefix)); }

/* One vector added to the word's row, for the capture's edits. */
static float g_vec[64];

TEST(capture_block_sites_and_edits) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, GOLD("image.png"), &err), err);
    char *prompt = t_read_file(GOLD("prompt.txt"), NULL);
    REQUIRE(prompt);
    const char *out = t_tmp("sites.safetensors"), *out2 = t_tmp("edited.safetensors");
    ids_capture_opts o = {.layers = "1,2,3,4", .positions = "all", .resid = true, .attn_out = true, .mlp_out = true,
                          .attn_probs = true, .n_threads = 2};
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &o, out, &err), err);
    for (int i = 0; i < 64; i++) g_vec[i] = (float)(i % 7) - 3.0f;
    const ids_hook edit = {.site = IDS_SITE_RESID, .layer = 2, .sel = {.kind = IDS_SEL_WORD, .word = "circle",
                           .after_image = true}, .action = IDS_ACT_ADD, .vec = g_vec, .len = 64};
    const char *names[1] = {"--add v.npy --layer 2"};
    ids_capture_opts oe = o;
    oe.edits = &edit;
    oe.n_edits = 1;
    oe.edit_names = names;
    CHECK_OK_ERR(ids_capture(v, prompt, &img, 1, &oe, out2, &err), err);
    ids_st_file *f, *g;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    REQUIRE_OK(ids_st_open(&g, out2, &err), err);
    const int n = 42, E = 64;
    const int64_t rs[3] = {4, n, E}, bs[3] = {3, n, E}, ps[4] = {3, n, 4, n};
    const float *r = tensor(f, "resid", 3, rs), *ao = tensor(f, "attn_out", 3, bs), *mo = tensor(f, "mlp_out", 3, bs);
    const float *pr = tensor(f, "attn_probs", 4, ps), *re = tensor(g, "resid", 3, rs), *aoe = tensor(g, "attn_out", 3, bs);
    REQUIRE(r && ao && mo && pr && re && aoe);
    CHECK(!strcmp(ids_st_meta(f, "block_layers"), "1,2,3") && !strcmp(ids_st_meta(f, "n_layer"), "4"));
    /* the stream after block b = the stream before it + its attention and MLP outputs (blocks 1, 2, 3) */
    double worst = 0;
    for (int b = 0; b < 3; b++)
        for (size_t i = 0; i < (size_t)n * E; i++)
            worst = fmax(worst, fabs(r[(size_t)b * n * E + i] + ao[(size_t)b * n * E + i] + mo[(size_t)b * n * E + i] -
                                     r[(size_t)(b + 1) * n * E + i]));
    CHECKF(worst < 1e-5, "resid identity off by %g", worst);
    /* probabilities: each row and head sums to 1 over the keys up to the row, 0 after it */
    for (int q = 0; q < n; q += 13)
        for (int h = 0; h < 4; h++) {
            const float *p = pr + (((size_t)1 * n + q) * 4 + h) * n;
            double sum = 0;
            for (int k = 0; k < n; k++) sum += p[k];
            CHECKF(fabs(sum - 1) < 1e-5 && (q == n - 1 || p[q + 1] == 0.0f), "row %d head %d sums to %g", q, h, sum);
        }
    /* the edit: layer 2 at the word's row (26) moves by the vector, no other row, nothing before it */
    worst = 0;
    double other = 0;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < E; d++) {
            double dv = re[(size_t)1 * n * E + (size_t)i * E + d] - r[(size_t)1 * n * E + (size_t)i * E + d];
            if (i == 26) worst = fmax(worst, fabs(dv - g_vec[d]));
            else other = fmax(other, fabs(dv));
        }
    CHECKF(worst < 1e-5 && other == 0, "edit: word row off by %g, other rows moved by %g", worst, other);
    CHECK(memcmp(re, r, sizeof(float) * (size_t)n * E) == 0);     /* layer 1: before the edit */
    CHECK(memcmp(aoe, ao, sizeof(float) * (size_t)n * E) == 0);   /* block 1: before the edit */
    CHECK(memcmp(re + (size_t)3 * n * E, r + (size_t)3 * n * E, sizeof(float) * (size_t)26 * E) == 0); /* rows < 26 */
    CHECK(fabs(re[(size_t)3 * n * E + (size_t)41 * E] - r[(size_t)3 * n * E + (size_t)41 * E]) > 0 ||
          fabs(re[(size_t)3 * n * E + (size_t)41 * E + 1] - r[(size_t)3 * n * E + (size_t)41 * E + 1]) > 0);
    /* rows' metadata; the edit in the provenance */
    const char *ts = ids_st_meta(f, "token_strings"), *ro = ids_st_meta(f, "roles"), *ce = ids_st_meta(f, "cells");
    CHECKF(starts(ts, "[\"<s>\",\" US\",\"ER\",\":\",\" \",\"\",") && strstr(ts, "\" circle\""), "token_strings %s", ts);
    CHECKF(starts(ro, "[\"text\",\"text\",\"text\",\"text\",\"text\",\"image\","), "roles %s", ro);
    CHECKF(starts(ce, "[[-1,-1,-1],") && strstr(ce, "[0,3,3],[-1,-1,-1]"), "cells %s", ce);
    CHECK(strstr(ids_st_meta(g, "provenance"), "\"edits\":[\"--add v.npy --layer 2\"]") != NULL);
    CHECK(strstr(ids_st_meta(f, "hook_names"), "blocks.B.attn.hook_pattern") != NULL);
    ids_st_close(f);
    ids_st_close(g);
    /* an edit that cannot apply is named in the message */
    ids_hook bad = edit;
    bad.sel.word = "frog";
    oe.edits = &bad;
    CHECK(ids_capture(v, prompt, &img, 1, &oe, out2, &err) == IDS_ERR_NOT_FOUND);
    CHECKF(starts(err.msg, "--add v.npy --layer 2: selector: word 'frog'"), "message: %s", err.msg);
    oe.edit_names = NULL;
    CHECK(ids_capture(v, prompt, &img, 1, &oe, out2, &err) == IDS_ERR_NOT_FOUND && starts(err.msg, "edit 0: "));
    free(prompt);
    ids_image_free(&img);
    ids_vlm_free(v);
}

/* Token texts that are not UTF-8 on their own (a byte-level piece) are written as U+FFFD, so the
 * safetensors header stays valid JSON text. */
TEST(capture_token_strings_are_utf8) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf"), &err), err);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, GOLD("image.png"), &err), err);
    /* "é" in the SPM vocabulary of this model comes as byte tokens <0xC3> <0xA9> */
    ids_capture_opts o = {.layers = "0", .positions = "last", .resid = true, .n_threads = 1};
    const char *out = t_tmp("utf8.safetensors");
    CHECK_OK_ERR(ids_capture(v, "USER: <image>\ncaf\xc3\xa9 \xf0\x9f\x90\xb8 ASSISTANT:", &img, 1, &o, out, &err), err);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, out, &err), err);
    const char *ts = ids_st_meta(f, "token_strings");
    REQUIRE(ts);
    bool valid = true;
    for (const unsigned char *p = (const unsigned char *)ts; *p && valid;) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        for (int j = 1; valid && j < len; j++) valid = (p[j] & 0xC0) == 0x80;
        valid = valid && len > 0;
        p += len ? len : 1;
    }
    CHECKF(valid, "token_strings is not UTF-8: %s", ts);
    CHECK(strstr(ts, "\xef\xbf\xbd") != NULL);
    ids_st_close(f);
    ids_image_free(&img);
    ids_vlm_free(v);
}
