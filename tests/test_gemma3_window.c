/* Gemma 3's sliding layers: gemma3.attention.sliding_window_pattern as an integer or as one flag per
 * layer (llama.cpp reads both), and attention on the sliding layers computed over the window's keys
 * only (a query chunk starts at its first row's window): on sequences longer than a chunk the keys
 * outside the window have no influence and reuse still gives a full recompute's bits. The golden
 * text model (tests/golden/gemma3-tiny: 8 layers, window 20, pattern 6 by default) with its key
 * rewritten. */
#include "test.h"

#define G3TEXT "tests/golden/gemma3-tiny/text.gguf"
#define NL 7
#define NV 449

/* The golden text model with the pattern key set by set(w) (NULL: the key as stored, i.e. absent). */
static const char *with_pattern(const char *name, void (*set)(ids_gguf_writer *w, const void *arg), const void *arg) {
    ids_gguf *g;
    ids_err err;
    if (ids_gguf_open(&g, G3TEXT, &err)) return NULL;
    ids_gguf_writer *w = ids_gguf_writer_new();
    for (int64_t i = 0; i < ids_gguf_n_kv(g); i++)
        ids_gguf_writer_set_value(w, ids_gguf_kv_key(g, i), ids_gguf_kv_value(g, i), &err);
    if (set) set(w, arg);
    for (int64_t i = 0; i < ids_gguf_n_tensors(g); i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        ids_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err);
    }
    const char *path = t_tmp(name);
    ids_status st = ids_gguf_writer_write(w, path, &err);
    ids_gguf_writer_free(w);
    ids_gguf_close(g);
    return st ? NULL : path;
}

#define KEY "gemma3.attention.sliding_window_pattern"
static void set_u32(ids_gguf_writer *w, const void *arg) {
    ids_err err;
    ids_gguf_writer_set_u32(w, KEY, *(const uint32_t *)arg, &err);
}
static void set_bools(ids_gguf_writer *w, const void *arg) {
    ids_err err;
    ids_gguf_writer_set_arr(w, KEY, IDS_GGUF_BOOL, arg, NL, &err);
}
static void set_i32s(ids_gguf_writer *w, const void *arg) {
    ids_err err;
    ids_gguf_writer_set_arr(w, KEY, IDS_GGUF_INT32, arg, NL, &err);
}
static void set_short(ids_gguf_writer *w, const void *arg) {
    ids_err err;
    ids_gguf_writer_set_arr(w, KEY, IDS_GGUF_BOOL, arg, NL - 1, &err);
}
static void set_f32s(ids_gguf_writer *w, const void *arg) {
    ids_err err;
    ids_gguf_writer_set_arr(w, KEY, IDS_GGUF_FLOAT32, arg, NL, &err);
}

/* A text-only sequence of n tokens (ordinary pieces of the golden vocabulary). */
static ids_seq *text_seq(const ids_model *m, int n) {
    ids_seq *s = ids_seq_new(ids_model_hparams(m)->n_embd);
    ids_err err;
    for (int i = 0; s && i < n; i++) {
        int32_t t = 20 + (37 * i + 11) % 400;
        if (ids_seq_add_tokens(s, &t, 1, &err)) {
            ids_seq_free(s);
            return NULL;
        }
    }
    return s;
}

/* The last row's attention probabilities at every layer [NL, n_head, n] and its logits. */
static ids_status last_row_run(const char *path, int n, float *probs, float *logits, ids_err *err) {
    ids_model *m;
    ids_status st = ids_model_load(&m, path, err);
    if (st) return st;
    const int nh = ids_model_hparams(m)->n_head;
    ids_seq *s = text_seq(m, n);
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = n, cp.n_threads = 2;
    ids_ctx *c = NULL;
    st = s ? ids_ctx_new(&c, m, cp, err) : IDS_ERR_NOMEM;
    ids_hook hs[NL];
    for (int l = 0; l < NL; l++)
        hs[l] = (ids_hook){.site = IDS_SITE_ATTN_PROBS, .layer = l, .sel = {.kind = IDS_SEL_LAST},
                           .out = probs + (size_t)l * nh * n, .len = (size_t)nh * n};
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = logits};
    if (!st) st = ids_ctx_prefill(c, s, hs, NL, &o, &out, err);
    ids_ctx_free(c);
    ids_seq_free(s);
    ids_model_free(m);
    return st;
}

enum { N = 40, NH = 4 };

/* The integer 6, the same pattern as a bool list and as an int32 list: the bits of the stored file
 * (no key: the default 6); a list of all-global layers and the integer 0 (every layer slides) move
 * the window where they say; a list of the wrong length or type is refused with its key named. */
TEST(g3w_pattern_forms) {
    static float p_ref[NL * NH * N], p[NL * NH * N];
    float lg_ref[NV], lg[NV];
    ids_err err;
    REQUIRE_OK(last_row_run(G3TEXT, N, p_ref, lg_ref, &err), err);
    const uint32_t six = 6, zero = 0;
    const bool b6[NL] = {1, 1, 1, 1, 1, 0, 1}, none[NL] = {0};
    const int32_t i6[NL] = {1, 1, 1, 1, 1, 0, 1};
    const float f6[NL] = {1, 1, 1, 1, 1, 0, 1};
    const char *same[3] = {with_pattern("p_u32.gguf", set_u32, &six), with_pattern("p_bool.gguf", set_bools, b6),
                           with_pattern("p_i32.gguf", set_i32s, i6)};
    for (int k = 0; k < 3; k++) {
        REQUIRE(same[k]);
        CHECK_OK_ERR(last_row_run(same[k], N, p, lg, &err), err);
        CHECKF(!memcmp(p, p_ref, sizeof p) && !memcmp(lg, lg_ref, sizeof lg), "%s: differs from the default", same[k]);
    }
    ids_model *m;
    REQUIRE_OK(ids_model_load(&m, same[1], &err), err);
    const ids_hparams *hp = ids_model_hparams(m);
    CHECK(hp->swa_layers && hp->swa_pattern == 0 && hp->swa_layers[4] && !hp->swa_layers[5]);
    ids_model_free(m);
    /* every layer global: layer 0's last row sees all N keys */
    const char *glob = with_pattern("p_none.gguf", set_bools, none);
    REQUIRE(glob);
    CHECK_OK_ERR(last_row_run(glob, N, p, lg, &err), err);
    for (int k = 0; k < N; k++) CHECKF(p[k] > 0, "all global: layer 0 key %d: %g", k, p[k]);
    CHECK(memcmp(lg, lg_ref, sizeof lg) != 0);
    /* the integer 0: every layer slides, the global layer 5 too */
    const char *all = with_pattern("p_zero.gguf", set_u32, &zero);
    REQUIRE(all);
    CHECK_OK_ERR(last_row_run(all, N, p, lg, &err), err);
    for (int k = 0; k < N; k++)
        CHECKF((p[(size_t)5 * NH * N + k] > 0) == (k > N - 1 - 20), "pattern 0: layer 5 key %d: %g", k,
               p[(size_t)5 * NH * N + k]);
    /* bad lists */
    const char *bad[2] = {with_pattern("p_short.gguf", set_short, b6), with_pattern("p_f32.gguf", set_f32s, f6)};
    const ids_status want[2] = {IDS_ERR_FORMAT, IDS_ERR_TYPE};
    const char *msg[2] = {"lists 6 layers, the model has 7", "holds f32 values"};
    for (int k = 0; k < 2; k++) {
        REQUIRE(bad[k]);
        m = NULL;
        ids_status st = ids_model_load(&m, bad[k], &err);
        CHECK(m == NULL);
        CHECKF(st == want[k] && strstr(err.msg, KEY) && strstr(err.msg, msg[k]) && strstr(err.msg, bad[k]),
               "case %d: %s: %s", k, ids_status_name(st), err.msg);
    }
}

/* 300 rows (three query chunks) with every layer sliding: the last row's probabilities are the
 * window's (summing to 1); the last row's logits equal those of the last 200 rows run alone (its
 * receptive field is 7 x 19 rows back; RoPE is relative, so up to rounding); edits reused from the
 * clean run give the bits of a full recompute, and one out of the last row's reach leaves its bits. */
TEST(g3w_window_keys_only) {
    const bool all[NL] = {1, 1, 1, 1, 1, 1, 1};
    const char *path = with_pattern("p_all.gguf", set_bools, all);
    REQUIRE(path);
    enum { L = 300, S = 200 };
    static float p[NL * NH * L];
    float lg[NV], lg2[NV];
    ids_err err;
    REQUIRE_OK(last_row_run(path, L, p, lg, &err), err);
    for (int l = 0; l < NL; l += 7)
        for (int h = 0; h < NH; h++) {
            const float *r = p + ((size_t)l * NH + h) * L;
            double sum = 0;
            for (int k = 0; k < L; k++) {
                CHECKF((r[k] > 0) == (k >= L - 20), "layer %d head %d key %d: %g", l, h, k, r[k]);
                sum += r[k];
            }
            CHECKF(fabs(sum - 1) < 1e-5, "layer %d head %d: probabilities sum to %g", l, h, sum);
        }
    /* the last S rows alone: row i of it is row i + L - S of the long run */
    ids_model *m;
    REQUIRE_OK(ids_model_load(&m, path, &err), err);
    ids_seq *full = text_seq(m, L), *tail = ids_seq_new(ids_model_hparams(m)->n_embd);
    REQUIRE(full && tail);
    for (int i = L - S; i < L; i++) {
        int32_t t = 20 + (37 * i + 11) % 400;
        REQUIRE_OK(ids_seq_add_tokens(tail, &t, 1, &err), err);
    }
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = L, cp.n_threads = 2;
    ids_ctx *c;
    REQUIRE_OK(ids_ctx_new(&c, m, cp, &err), err);
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = lg2};
    CHECK_OK_ERR(ids_ctx_prefill(c, tail, NULL, 0, &o, &out, &err), err);
    double d = 0, mx = 0;
    for (int i = 0; i < NV; i++) d = fmax(d, fabs((double)lg[i] - lg2[i])), mx = fmax(mx, fabs((double)lg[i]));
    printf("     last row, 300 rows vs its last 200 alone: max |logit diff| %.2g (of %.2g)\n", d, mx);
    CHECKF(d <= 1e-4 * mx, "logits of the last row: %g of %g", d, mx);
    /* an edit reused from its row = full recompute, bit for bit; at row 200 (layer 2) it is out of the
     * last row's reach (200 + 5 x 19 < 299): the clean logits' bits; at row 250 it reaches it */
    CHECK_OK_ERR(ids_ctx_prefill(c, full, NULL, 0, &o, NULL, &err), err);
    float add[64];
    for (int i = 0; i < 64; i++) add[i] = 1.5f * cosf(0.3f * (float)i);
    for (int row = 200; row <= 250; row += 50) {
        ids_hook h = {.site = IDS_SITE_RESID, .layer = 2, .sel = {.kind = IDS_SEL_RANGE, .begin = row, .end = row + 1},
                      .action = IDS_ACT_ADD, .vec = add, .len = 64};
        float lr[NV], lf[NV];
        ids_run_out orr = {.logits = lr}, of = {.logits = lf};
        o.full_recompute = false;
        CHECK_OK_ERR(ids_ctx_run(c, &h, 1, &o, &orr, &err), err);
        o.full_recompute = true;
        CHECK_OK_ERR(ids_ctx_run(c, &h, 1, &o, &of, &err), err);
        CHECKF(!memcmp(lr, lf, sizeof lr), "edit at row %d: reused run differs from a full recompute", row);
        CHECKF((memcmp(lr, lg, sizeof lr) != 0) == (row == 250), "edit at row %d: last logits %s", row,
               row == 250 ? "unchanged" : "changed");
    }
    ids_ctx_free(c);
    ids_seq_free(full);
    ids_seq_free(tail);
    ids_model_free(m);
}
