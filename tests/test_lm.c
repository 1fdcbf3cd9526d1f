/* Decoder engine: the golden LLaVA-shaped model (HF reference, cross-checked with llama.cpp),
 * hook semantics, reuse == full recompute, batching, generation, bad inputs. */
#include "test.h"
#include "engine/ops.h"

#include <cjson/cJSON.h>

static ids_model *load_llava(void) {
    ids_model *m = NULL;
    ids_err err;
    if (ids_model_load(&m, t_shared("golden/llava-tiny/text.gguf"), &err))
        t_fail(__FILE__, __LINE__, "%s", err.msg);
    return m;
}

static ids_ctx *new_ctx(const ids_model *m, bool keep_clean) {
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = 96;
    p.keep_clean = keep_clean;
    p.n_threads = 2;
    ids_ctx *c = NULL;
    ids_err err;
    if (ids_ctx_new(&c, m, p, &err)) t_fail(__FILE__, __LINE__, "%s", err.msg);
    return c;
}

/* max |a-b| / max(1, max|b|): relative to the array's scale */
static double rel_diff(const float *a, const float *b, size_t n) {
    double scale = 1;
    for (size_t i = 0; i < n; i++) if (fabs(b[i]) > scale) scale = fabs(b[i]);
    return t_max_abs_diff(a, b, n) / scale;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

TEST(lm_hparams_llava_tiny) {
    ids_model *m = load_llava();
    REQUIRE(m);
    const ids_hparams *hp = ids_model_hparams(m);
    CHECK(!strcmp(hp->arch, "llama"));
    CHECK_EQ_INT(hp->n_layer, 4);
    CHECK_EQ_INT(hp->n_embd, 64);
    CHECK_EQ_INT(hp->n_head, 4);
    CHECK_EQ_INT(hp->n_head_kv, 2);
    CHECK_EQ_INT(hp->n_ff, 176);
    CHECK_EQ_INT(hp->n_vocab, 32000);
    CHECK_EQ_INT(hp->head_dim, 16);
    CHECK(hp->rope_base == 10000.0f);
    ids_model_free(m);
}

/* Feeding resid[0] as input rows reproduces resid[1..4] and the logits at every position. */
TEST(lm_golden_llava_resid_and_logits) {
    ids_npy resid, logits;
    ids_err err;
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/resid.npy"), &resid, &err), err);
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/logits.npy"), &logits, &err), err);
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    REQUIRE(c);
    const int n = (int)resid.shape[1], d = (int)resid.shape[2], L = (int)resid.shape[0];
    const float *R = resid.data;
    ids_seq *s = ids_seq_new(d);
    CHECK_OK_ERR(ids_seq_add_embd(s, R, n, IDS_ROW_TEXT, -1, 0, &err), err);
    float *cap = malloc(sizeof(float) * (size_t)L * n * d);
    ids_hook hooks[5];
    for (int l = 0; l < L; l++)
        hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = {.kind = IDS_SEL_ALL},
                              .action = IDS_ACT_CAPTURE, .out = cap + (size_t)l * n * d,
                              .len = (size_t)n * d};
    float *lg = malloc(sizeof(float) * (size_t)n * 32000);
    ids_run_opts o = {.logits = IDS_LOGITS_ALL};
    ids_run_out out = {.logits = lg};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, hooks, L, &o, &out, &err), err);
    for (int l = 0; l < L; l++) {
        double e = t_max_abs_diff(cap + (size_t)l * n * d, R + (size_t)l * n * d, (size_t)n * d);
        CHECKF(e <= 1e-3, "resid layer %d: max |diff| %g > 1e-3", l, e);
    }
    double e = t_max_abs_diff(lg, logits.data, (size_t)n * 32000);
    CHECKF(e <= 1e-3, "logits: max |diff| %g > 1e-3", e);
    int bad_argmax = 0;
    for (int i = 0; i < n; i++)
        bad_argmax += argmax(lg + (size_t)i * 32000, 32000) != argmax((float *)logits.data + (size_t)i * 32000, 32000);
    CHECK_EQ_INT(bad_argmax, 0);
    /* the checker notices a wrong model: perturb one input row and compare again */
    ids_seq *s2 = ids_seq_new(d);
    float *R2 = malloc(sizeof(float) * (size_t)n * d);
    memcpy(R2, R, sizeof(float) * (size_t)n * d);
    R2[5 * d + 3] += 0.05f;
    CHECK_OK_ERR(ids_seq_add_embd(s2, R2, n, IDS_ROW_TEXT, -1, 0, &err), err);
    CHECK_OK_ERR(ids_ctx_prefill(c, s2, NULL, 0, &o, &out, &err), err);
    CHECK(t_max_abs_diff(lg, logits.data, (size_t)n * 32000) > 1e-3);
    free(R2);
    ids_seq_free(s2);
    free(lg);
    free(cap);
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
    ids_npy_free(&resid);
    ids_npy_free(&logits);
}

/* Residual stream after every block and the logits at every position of the golden prompt (fed as
 * resid[0] rows) from a text model file in a precision; cap [L, n, d], lg [n, V]. */
static bool golden_run(const char *path, ids_precision prec, int n_threads, const ids_npy *resid, float *cap, float *lg) {
    ids_err err;
    ids_model *m = NULL;
    ids_ctx *c = NULL;
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = 96, p.n_threads = n_threads, p.precision = prec;
    const int n = (int)resid->shape[1], d = (int)resid->shape[2], L = (int)resid->shape[0];
    ids_seq *s = ids_seq_new(d);
    ids_hook hooks[5];
    for (int l = 0; l < L; l++)
        hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = {.kind = IDS_SEL_ALL},
                              .action = IDS_ACT_CAPTURE, .out = cap + (size_t)l * n * d, .len = (size_t)n * d};
    ids_run_opts o = {.logits = IDS_LOGITS_ALL};
    ids_run_out out = {.logits = lg};
    ids_status st = !s ? IDS_ERR_NOMEM : ids_model_load(&m, path, &err);
    if (!st) st = ids_ctx_new(&c, m, p, &err);
    if (!st) st = ids_seq_add_embd(s, resid->data, n, IDS_ROW_TEXT, -1, 0, &err);
    if (!st) st = ids_ctx_prefill(c, s, hooks, L, &o, &out, &err);
    if (st) t_fail(__FILE__, __LINE__, "%s, %s: %s", path, ids_precision_name(prec), err.msg);
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
    return st == IDS_OK;
}

/* ||a - b|| / ||b|| over an array (the relative error of the precision goldens). */
static double rel_rms(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Every layer's residual stream (after blocks 1..L-1) and the logits within tol of the reference
 * (relative error ||a - b|| / ||b|| of each array), and the same argmax at every position except
 * where the reference's top two logits are closer than twice the largest error of that position's
 * logits (a tie within the precision). Returns the largest relative error. */
static double golden_compare(const char *what, double tol, const float *cap, const float *lg, const float *rcap,
                             const float *rlg, int L, int n, int d, int V) {
    double worst = 0;
    for (int l = 1; l < L; l++) {
        double e = rel_rms(cap + (size_t)l * n * d, rcap + (size_t)l * n * d, (size_t)n * d);
        CHECKF(e <= tol, "%s: resid layer %d: relative error %g > %g", what, l, e, tol);
        worst = e > worst ? e : worst;
    }
    double e = rel_rms(lg, rlg, (size_t)n * V);
    CHECKF(e <= tol, "%s: logits: relative error %g > %g", what, e, tol);
    worst = e > worst ? e : worst;
    int bad = 0, ties = 0;
    for (int i = 0; i < n; i++) {
        const float *ref = rlg + (size_t)i * V, *got = lg + (size_t)i * V;
        const int a = argmax(got, V), b = argmax(ref, V);
        if (a == b) continue;
        if (ref[b] - ref[a] <= 2 * t_max_abs_diff(got, ref, (size_t)V)) ties++;
        else bad++;
    }
    CHECKF(bad == 0, "%s: %d positions with another argmax (%d more within the error)", what, bad, ties);
    return worst;
}

/* A precision on the golden model against the HF reference; on a copy with quantized weights,
 * against f32 on the same copy (exact dequantization, itself checked by the f32 goldens). */
static void golden_in_precision(const char *path, ids_precision prec, bool vs_f32_of_same_file, double tol) {
    ids_npy resid, logits;
    ids_err err;
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/resid.npy"), &resid, &err), err);
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/logits.npy"), &logits, &err), err);
    const int n = (int)resid.shape[1], d = (int)resid.shape[2], L = (int)resid.shape[0], V = 32000;
    float *cap = malloc(sizeof(float) * (size_t)L * n * d), *lg = malloc(sizeof(float) * (size_t)n * V);
    float *rcap = malloc(sizeof(float) * (size_t)L * n * d), *rlg = malloc(sizeof(float) * (size_t)n * V);
    char what[512];
    snprintf(what, sizeof what, "%s, %s vs %s", path, ids_precision_name(prec), vs_f32_of_same_file ? "f32" : "HF");
    if (cap && lg && rcap && rlg && golden_run(path, prec, 2, &resid, cap, lg)) {
        bool have_ref = true;
        if (vs_f32_of_same_file) have_ref = golden_run(path, IDS_PREC_F32, 2, &resid, rcap, rlg);
        else memcpy(rcap, resid.data, resid.nbytes), memcpy(rlg, logits.data, logits.nbytes);
        if (have_ref) {
            double worst = golden_compare(what, tol, cap, lg, rcap, rlg, L, n, d, V);
            /* the precision changed the numbers (a mode that silently ran f32 would pass the bounds) */
            CHECKF(worst > 1e-5, "%s: no difference from the reference at all", what);
        }
    }
    free(cap), free(lg), free(rcap), free(rlg);
    ids_npy_free(&resid);
    ids_npy_free(&logits);
}

/* A copy of the golden text model with every matrix whose rows are whole blocks of 32 in `type`
 * (Q8_0 through ids_quantize, Q4_0 with ggml's reference rule written here). */
static const char *golden_copy(int type, const char *name) {
    ids_gguf *g = NULL;
    ids_err err;
    const char *out = t_tmp(name);
    if (ids_gguf_open(&g, t_shared("golden/llava-tiny/text.gguf"), &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    ids_gguf_writer *w = ids_gguf_writer_new();
    bool ok = w != NULL;
    for (int64_t i = 0; ok && i < ids_gguf_n_kv(g); i++)
        ok = !ids_gguf_writer_set_value(w, ids_gguf_kv_key(g, i), ids_gguf_kv_value(g, i), &err);
    for (int64_t i = 0; ok && i < ids_gguf_n_tensors(g); i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        const int64_t n = t->ne[0] * t->ne[1];
        float *f = malloc(sizeof(float) * (size_t)n);
        ok = f && !ids_tensor_to_f32(t, f, &err);
        const bool quant = ok && t->n_dims == 2 && t->ne[0] % 32 == 0 && strcmp(t->name, "token_embd.weight");
        if (ok && quant && type == IDS_TYPE_Q4_0) {
            unsigned char *q = malloc((size_t)(n / 32) * 18);
            ok = q != NULL;
            for (int64_t b = 0; ok && b < n / 32; b++) {
                const float *x = f + b * 32;
                float mx = 0;
                for (int k = 0; k < 32; k++) if (fabsf(x[k]) > fabsf(mx)) mx = x[k];
                const float dd = mx / -8, id = dd ? 1.0f / dd : 0.0f;
                uint16_t h = ids_f32_to_f16(dd);
                memcpy(q + b * 18, &h, 2);
                for (int k = 0; k < 16; k++) {
                    int a = (int)(x[k] * id + 8.5f), c = (int)(x[k + 16] * id + 8.5f);
                    a = a > 15 ? 15 : a, c = c > 15 ? 15 : c;
                    q[b * 18 + 2 + k] = (unsigned char)(a | c << 4);
                }
            }
            ok = ok && !ids_gguf_writer_add_tensor(w, t->name, IDS_TYPE_Q4_0, t->n_dims, t->ne, q, &err);
            free(q);
        } else if (ok) {
            ok = !ids_gguf_writer_add_tensor_f32(w, t->name, quant ? type : IDS_TYPE_F32, t->n_dims, t->ne, f, &err);
        }
        free(f);
    }
    ok = ok && !ids_gguf_writer_write(w, out, &err);
    if (!ok) t_fail(__FILE__, __LINE__, "writing %s: %s", out, err.msg);
    ids_gguf_writer_free(w);
    ids_gguf_close(g);
    return ok ? out : NULL;
}

TEST(lm_golden_llava_bf16) { golden_in_precision(t_shared("golden/llava-tiny/text.gguf"), IDS_PREC_BF16, false, 2e-2); }
/* int8 on Q8_0 and Q4_0 copies (their int8 blocks used as they are) against f32 on the same copy,
 * within 2e-2; on the F32 golden itself against HF, where its weights are quantized too (two
 * roundings to int8 per product), within 3e-2. */
TEST(lm_golden_llava_int8) {
    const char *q8 = golden_copy(IDS_TYPE_Q8_0, "golden-q8_0.gguf");
    if (q8) golden_in_precision(q8, IDS_PREC_INT8, true, 2e-2);
    const char *q4 = golden_copy(IDS_TYPE_Q4_0, "golden-q4_0.gguf");
    if (q4) golden_in_precision(q4, IDS_PREC_INT8, true, 2e-2);
    CHECK(q8 && q4);
    golden_in_precision(t_shared("golden/llava-tiny/text.gguf"), IDS_PREC_INT8, false, 3e-2);
}

/* Weights packed once for the kernels (ids_model_load) give the bits of packing them per product, on the
 * F32 golden and its F16, Q8_0 and Q4_0 copies in every precision; IDSCOPE_PACK_MB bounds the packed bytes
 * (0: none) and a malformed value is an error at load. */
TEST(lm_packed_weights_same_bits) {
    ids_npy resid;
    ids_err err;
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/resid.npy"), &resid, &err), err);
    const int n = (int)resid.shape[1], d = (int)resid.shape[2], L = (int)resid.shape[0], V = 32000;
    const size_t nc = (size_t)L * n * d, nl = (size_t)n * V;
    float *cap[2] = {malloc(sizeof(float) * nc), malloc(sizeof(float) * nc)};
    float *lg[2] = {malloc(sizeof(float) * nl), malloc(sizeof(float) * nl)};
    REQUIRE(cap[0] && cap[1] && lg[0] && lg[1]);
    const char *files[] = {t_shared("golden/llava-tiny/text.gguf"), golden_copy(IDS_TYPE_F16, "golden-f16.gguf"),
                           golden_copy(IDS_TYPE_Q8_0, "golden-q8_0.gguf"), golden_copy(IDS_TYPE_Q4_0, "golden-q4_0.gguf")};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++)
        for (int p = 0; p < IDS_PREC_COUNT && files[f]; p++) {
            bool ok = true;
            for (int k = 0; k < 2 && ok; k++) {
                setenv("IDSCOPE_PACK_MB", k ? "0" : "64", 1);
                ok = golden_run(files[f], (ids_precision)p, 2, &resid, cap[k], lg[k]);
            }
            if (ok)
                CHECKF(!memcmp(cap[0], cap[1], sizeof(float) * nc) && !memcmp(lg[0], lg[1], sizeof(float) * nl),
                       "%s, %s: packed weights change the result", files[f], ids_precision_name((ids_precision)p));
        }
    /* what was packed, and the bounds */
    size_t packed[3];
    const char *limits[] = {"64", "0", "1"};
    for (int k = 0; k < 3; k++) {
        setenv("IDSCOPE_PACK_MB", limits[k], 1);
        ids_model *m = NULL;
        ids_ctx *c = NULL;
        ids_seq *s = ids_seq_new(d);
        ids_ctx_params cp = ids_ctx_default_params();
        cp.n_ctx = 96, cp.n_threads = 2;
        REQUIRE_OK(ids_model_load(&m, files[0], &err), err);
        CHECK_EQ_INT((int)ids_model_packed_bytes(m), 0); /* packing happens on first use */
        REQUIRE_OK(ids_ctx_new(&c, m, cp, &err), err);
        REQUIRE_OK(ids_seq_add_embd(s, resid.data, n, IDS_ROW_TEXT, -1, 0, &err), err);
        ids_run_opts o = {.logits = IDS_LOGITS_LAST}; /* the blocks (0.7 MiB) and the output head (8 MiB) */
        ids_run_out out = {.logits = lg[0]};
        REQUIRE_OK(ids_ctx_prefill(c, s, NULL, 0, &o, &out, &err), err);
        packed[k] = ids_model_packed_bytes(m);
        ids_seq_free(s);
        ids_ctx_free(c);
        ids_model_free(m);
    }
    CHECKF(packed[0] > 0 && packed[1] == 0 && packed[2] > 0 && packed[2] <= (1u << 20) && packed[2] < packed[0],
           "packed bytes: %zu (64 MiB), %zu (0), %zu (1 MiB)", packed[0], packed[1], packed[2]);
    setenv("IDSCOPE_PACK_MB", "lots", 1);
    ids_model *m = NULL;
    CHECK_EQ_INT(ids_model_load(&m, files[0], &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "IDSCOPE_PACK_MB=lots") != NULL);
    unsetenv("IDSCOPE_PACK_MB");
    free(cap[0]), free(cap[1]), free(lg[0]), free(lg[1]);
    ids_npy_free(&resid);
}

/* Every precision gives the same bits with 1, 2 and 3 threads (each output element is one chain of
 * operations whichever thread computes it). */
TEST(lm_precisions_thread_count_bit_exact) {
    ids_npy resid;
    ids_err err;
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/resid.npy"), &resid, &err), err);
    const int n = (int)resid.shape[1], d = (int)resid.shape[2], L = (int)resid.shape[0], V = 32000;
    const size_t nc = (size_t)L * n * d, nl = (size_t)n * V;
    float *cap[3], *lg[3];
    for (int t = 0; t < 3; t++) cap[t] = malloc(sizeof(float) * nc), lg[t] = malloc(sizeof(float) * nl);
    for (int p = 0; p < IDS_PREC_COUNT; p++) {
        bool ok = true;
        for (int t = 0; t < 3 && ok; t++)
            ok = cap[t] && lg[t] && golden_run(t_shared("golden/llava-tiny/text.gguf"), (ids_precision)p, t + 1, &resid, cap[t], lg[t]);
        for (int t = 1; t < 3 && ok; t++)
            CHECKF(!memcmp(cap[0], cap[t], sizeof(float) * nc) && !memcmp(lg[0], lg[t], sizeof(float) * nl),
                   "%s: %d threads differ from 1", ids_precision_name((ids_precision)p), t + 1);
    }
    for (int t = 0; t < 3; t++) free(cap[t]), free(lg[t]);
    ids_npy_free(&resid);
}

/* Build the golden prompt from llama.cpp's token chunks, image rows from resid[0]. */
static ids_seq *golden_prompt_seq(const float *R, int d, int *img_begin, int *img_end) {
    char *js = t_read_file(t_shared("golden/llava-tiny/tokens.json"), NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    cJSON *chunks = cJSON_GetObjectItem(root, "chunks"), *ch;
    ids_seq *s = ids_seq_new(d);
    ids_err err;
    int row = 0;
    cJSON_ArrayForEach(ch, chunks) {
        const char *kind = cJSON_GetArrayItem(ch, 0)->valuestring;
        cJSON *val = cJSON_GetArrayItem(ch, 1);
        if (!strcmp(kind, "image")) {
            int k = val->valueint;
            *img_begin = row;
            ids_seq_add_embd(s, R + (size_t)row * d, k, IDS_ROW_IMAGE, 0, 4, &err);
            row += k;
            *img_end = row;
        } else {
            int k = cJSON_GetArraySize(val);
            int32_t ids[256];
            for (int i = 0; i < k; i++) ids[i] = cJSON_GetArrayItem(val, i)->valueint;
            ids_seq_add_tokens(s, ids, (size_t)k, &err);
            row += k;
        }
    }
    cJSON_Delete(root);
    free(js);
    return s;
}

TEST(lm_golden_llava_token_rows) {
    ids_npy resid, logits;
    ids_err err;
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/resid.npy"), &resid, &err), err);
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/logits.npy"), &logits, &err), err);
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    REQUIRE(c);
    const int n = 42, d = 64;
    int ib = -1, ie = -1;
    ids_seq *s = golden_prompt_seq(resid.data, d, &ib, &ie);
    CHECK_EQ_INT(ids_seq_len(s), n);
    CHECK_EQ_INT(ib, 5);
    CHECK_EQ_INT(ie, 21);
    const ids_row *r7 = ids_seq_row(s, 7);
    CHECK(r7->kind == IDS_ROW_IMAGE && r7->cell_row == 0 && r7->cell_col == 2 && r7->pos[0] == 7);
    float emb[42 * 64], last[32000];
    ids_hook h = {.site = IDS_SITE_RESID, .layer = 0, .sel = {.kind = IDS_SEL_ALL},
                  .action = IDS_ACT_CAPTURE, .out = emb, .len = 42 * 64};
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = last};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, &h, 1, &o, &out, &err), err);
    double e0 = t_max_abs_diff(emb, resid.data, (size_t)n * d);
    CHECKF(e0 <= 1e-6, "token embeddings differ from resid[0] by %g", e0);
    double e = t_max_abs_diff(last, (float *)logits.data + (size_t)(n - 1) * 32000, 32000);
    CHECKF(e <= 1e-3, "last logits differ by %g", e);
    /* selectors on the real layout */
    int *rows, nr;
    ids_sel sel = {.kind = IDS_SEL_WORD, .word = "circle", .after_image = true};
    CHECK_OK_ERR(ids_sel_resolve(s, ids_model_tokenizer(m), &sel, &rows, &nr, &err), err);
    CHECK(nr == 1 && rows[0] == ie + 5); /* "\nIs the red circle": ▁, \n, Is, the, red, circle */
    free(rows);
    sel = (ids_sel){.kind = IDS_SEL_IMAGE, .image = -1};
    CHECK_OK_ERR(ids_sel_resolve(s, ids_model_tokenizer(m), &sel, &rows, &nr, &err), err);
    CHECK(nr == 16 && rows[0] == 5 && rows[15] == 20);
    free(rows);
    sel = (ids_sel){.kind = IDS_SEL_TEXT};
    CHECK_OK_ERR(ids_sel_resolve(s, ids_model_tokenizer(m), &sel, &rows, &nr, &err), err);
    CHECK_EQ_INT(nr, 26);
    free(rows);
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
    ids_npy_free(&resid);
    ids_npy_free(&logits);
}

/* A sequence from text, for the behavioural tests. */
static ids_seq *text_seq(const ids_model *m, const char *text) {
    ids_seq *s = ids_seq_new(ids_model_hparams(m)->n_embd);
    ids_err err;
    if (ids_seq_add_text(s, ids_model_tokenizer(m), text, true, false, &err))
        t_fail(__FILE__, __LINE__, "%s", err.msg);
    return s;
}

static const char *PROMPT = "USER: Is the red circle to the left or right of the blue square? ASSISTANT:";

typedef struct {
    float *v;
} vecs;

/* Edits at several layers and position sets: reuse == full recompute (<= 1e-5 relative). */
/* In every precision a reused run gives the bits of a full recompute: every product (attention's
 * too) computes each element with one chain of operations, whatever rows are computed together. */
TEST(lm_reuse_equals_full_recompute) {
    ids_model *m = load_llava();
    REQUIRE(m);
    int checked = 0;
    for (int prec = 0; prec < IDS_PREC_COUNT; prec++) {
        ids_ctx_params cp = ids_ctx_default_params();
        cp.n_ctx = 96, cp.n_threads = 2, cp.precision = (ids_precision)prec;
        ids_ctx *c = NULL;
        ids_err cerr;
        REQUIRE_OK(ids_ctx_new(&c, m, cp, &cerr), cerr);
        ids_seq *s = text_seq(m, PROMPT);
        const int n = ids_seq_len(s), d = 64;
        ids_err err;
        int32_t cand[2] = {ids_tokenizer_word_token(ids_model_tokenizer(m), "left", &err),
                           ids_tokenizer_word_token(ids_model_tokenizer(m), "right", &err)};
        ids_run_opts o = {.logits = IDS_LOGITS_LAST, .cand = cand, .n_cand = 2};
        CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, &o, NULL, &err), err);
        float add[64];
        for (int i = 0; i < d; i++) add[i] = 0.3f * sinf((float)i);
        int list[3] = {3, 9, n - 2};
        ids_sel sels[4] = {{.kind = IDS_SEL_WORD, .word = "circle"},
                           {.kind = IDS_SEL_RANGE, .begin = n - 6, .end = n},
                           {.kind = IDS_SEL_LIST, .list = list, .n_list = 3},
                           {.kind = IDS_SEL_ALL}};
        int layers[4] = {0, 1, 2, 4};
        for (int si = 0; si < 4; si++)
            for (int li = 0; li < 4; li++) {
                float cap_r[64 * 64], cap_f[64 * 64];
                int nr, w;
                ids_hook probe = {.site = IDS_SITE_RESID, .layer = 3, .sel = sels[si]};
                CHECK_OK_ERR(ids_ctx_hook_shape(c, &probe, &nr, &w, &err), err);
                ids_hook hs[3] = {
                    {.site = IDS_SITE_RESID, .layer = layers[li], .sel = sels[si], .action = IDS_ACT_ADD,
                     .vec = add, .len = 64},
                    {.site = IDS_SITE_RESID, .layer = 3, .sel = sels[si], .action = IDS_ACT_CAPTURE,
                     .out = cap_r, .len = (size_t)nr * w},
                    {.site = IDS_SITE_MLP_OUT, .layer = 3, .sel = {.kind = IDS_SEL_LAST},
                     .action = IDS_ACT_SCALE, .scale = 0.5f}};
                float lg_r[32000], lg_f[32000], lp_r[2], lp_f[2];
                ids_run_out out_r = {.logits = lg_r, .cand_logprob = lp_r};
                CHECK_OK_ERR(ids_ctx_run(c, hs, 3, &o, &out_r, &err), err);
                hs[1].out = cap_f;
                ids_run_opts of = o;
                of.full_recompute = true;
                ids_run_out out_f = {.logits = lg_f, .cand_logprob = lp_f};
                CHECK_OK_ERR(ids_ctx_run(c, hs, 3, &of, &out_f, &err), err);
                double e1 = rel_diff(lg_r, lg_f, 32000), e2 = rel_diff(lp_r, lp_f, 2),
                       e3 = rel_diff(cap_r, cap_f, (size_t)nr * w);
                CHECKF(!memcmp(lg_r, lg_f, sizeof lg_r) && !memcmp(lp_r, lp_f, sizeof lp_r) &&
                           !memcmp(cap_r, cap_f, sizeof(float) * (size_t)nr * w),
                       "%s, sel %d layer %d: reused run differs: logits %g, logprobs %g, capture %g",
                       ids_precision_name((ids_precision)prec), si, layers[li], e1, e2, e3);
                checked++;
            }
        CHECK_EQ_INT(checked, 16 * (prec + 1));
        /* the edit really changed something (else equality would be vacuous) */
        float lg0[32000], lg1[32000];
        ids_run_out o0 = {.logits = lg0}, o1 = {.logits = lg1};
        ids_hook h = {.site = IDS_SITE_RESID, .layer = 1, .sel = sels[1], .action = IDS_ACT_ADD, .vec = add, .len = 64};
        CHECK_OK_ERR(ids_ctx_run(c, NULL, 0, &o, &o0, &err), err);
        CHECK_OK_ERR(ids_ctx_run(c, &h, 1, &o, &o1, &err), err);
        CHECK(t_max_abs_diff(lg0, lg1, 32000) > 1e-3);
        ids_seq_free(s);
        ids_ctx_free(c);
    }
    ids_model_free(m);
}

TEST(lm_batch_equals_single_runs) {
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    REQUIRE(c);
    ids_seq *s = text_seq(m, PROMPT);
    ids_err err;
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err), err);
    enum { NV = 6 };
    float add[NV][64];
    ids_hook hs[NV];
    ids_variant vars[NV];
    for (int v = 0; v < NV; v++) {
        for (int i = 0; i < 64; i++) add[v][i] = 0.2f * cosf((float)(i * (v + 1)));
        hs[v] = (ids_hook){.site = IDS_SITE_RESID, .layer = v % 5, .action = IDS_ACT_ADD,
                           .sel = {.kind = IDS_SEL_WORD, .word = v % 2 ? "circle" : "square"},
                           .vec = add[v], .len = 64};
        vars[v] = (ids_variant){&hs[v], 1};
    }
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    static float lb[NV][32000], ls[32000];
    ids_run_out outs[NV];
    for (int v = 0; v < NV; v++) outs[v] = (ids_run_out){.logits = lb[v]};
    CHECK_OK_ERR(ids_ctx_run_batch(c, vars, NV, &o, outs, &err), err);
    for (int v = 0; v < NV; v++) {
        ids_run_out one = {.logits = ls};
        CHECK_OK_ERR(ids_ctx_run(c, &hs[v], 1, &o, &one, &err), err);
        double e = rel_diff(lb[v], ls, 32000);
        CHECKF(e <= 1e-5, "variant %d differs from its single run by %g", v, e);
    }
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
}

static int g_cb_calls, g_cb_rows, g_cb_width;
static void cb_zero(const ids_hook_view *v, float *data, void *user) {
    (void)user;
    g_cb_calls++;
    g_cb_rows = v->n_rows;
    g_cb_width = v->width;
    memset(data, 0, sizeof(float) * (size_t)v->n_rows * v->width);
}

static void cb_uniform_probs(const ids_hook_view *v, float *data, void *user) {
    int n_head = *(int *)user, n_tot = v->width / n_head;
    for (int i = 0; i < v->n_rows; i++) {
        int keys = v->rows[i] + 1;
        for (int h = 0; h < n_head; h++)
            for (int k = 0; k < n_tot; k++)
                data[((size_t)i * n_head + h) * n_tot + k] = k < keys ? 1.0f / keys : 0.0f;
    }
}

TEST(lm_hook_semantics) {
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    REQUIRE(c);
    ids_seq *s = text_seq(m, PROMPT);
    const int n = ids_seq_len(s), d = 64;
    ids_err err;
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err), err);
    /* resid[l+1] = resid[l] + attn_out[l] + mlp_out[l] */
    static float r2[128 * 64], r3[128 * 64], ao[128 * 64], mo[128 * 64];
    size_t nd = (size_t)n * d;
    ids_sel all = {.kind = IDS_SEL_ALL};
    ids_hook caps[4] = {{.site = IDS_SITE_RESID, .layer = 2, .sel = all, .out = r2, .len = nd},
                        {.site = IDS_SITE_RESID, .layer = 3, .sel = all, .out = r3, .len = nd},
                        {.site = IDS_SITE_ATTN_OUT, .layer = 2, .sel = all, .out = ao, .len = nd},
                        {.site = IDS_SITE_MLP_OUT, .layer = 2, .sel = all, .out = mo, .len = nd}};
    CHECK_OK_ERR(ids_ctx_run(c, caps, 4, NULL, NULL, &err), err);
    double worst = 0;
    for (size_t i = 0; i < nd; i++) worst = fmax(worst, fabs(r2[i] + ao[i] + mo[i] - r3[i]));
    CHECKF(worst < 1e-5, "resid identity off by %g", worst);
    CHECK(t_max_abs_diff(ao, r3, nd) > 1e-3); /* the sites really differ */

    /* ADD then capture at the same site shows the vector; SCALE 1 and no-op hooks change nothing */
    float add[64], cap[64], base[64];
    for (int i = 0; i < d; i++) add[i] = (float)i;
    ids_sel w = {.kind = IDS_SEL_WORD, .word = "circle"};
    ids_hook h2[2] = {{.site = IDS_SITE_RESID, .layer = 2, .sel = w, .action = IDS_ACT_ADD, .vec = add, .len = 64},
                      {.site = IDS_SITE_RESID, .layer = 2, .sel = w, .out = cap, .len = 64}};
    CHECK_OK_ERR(ids_ctx_run(c, &h2[1], 1, NULL, NULL, &err), err);
    memcpy(base, cap, sizeof base);
    CHECK_OK_ERR(ids_ctx_run(c, h2, 2, NULL, NULL, &err), err);
    worst = 0;
    for (int i = 0; i < d; i++) worst = fmax(worst, fabs(cap[i] - base[i] - add[i]));
    CHECK(worst < 1e-5);

    /* REPLACE every row at layer 0 with another prompt's rows reproduces that prompt's logits */
    ids_seq *s2 = text_seq(m, "USER: Is the red circle to the right or left of the blue square? ASSISTANT:");
    CHECK_EQ_INT(ids_seq_len(s2), n);
    static float other[128 * 64];
    float lg_other[32000], lg_patched[32000];
    ids_hook cap0 = {.site = IDS_SITE_RESID, .layer = 0, .sel = all, .out = other, .len = nd};
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = lg_other};
    CHECK_OK_ERR(ids_ctx_prefill(c, s2, &cap0, 1, &o, &out, &err), err);
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err), err);
    ids_hook rep = {.site = IDS_SITE_RESID, .layer = 0, .sel = all, .action = IDS_ACT_REPLACE, .src = other, .len = nd};
    out.logits = lg_patched;
    CHECK_OK_ERR(ids_ctx_run(c, &rep, 1, &o, &out, &err), err);
    CHECK(rel_diff(lg_patched, lg_other, 32000) <= 1e-5);

    /* callback sees the selection's shape and its edit takes effect */
    g_cb_calls = 0;
    ids_hook cb = {.site = IDS_SITE_MLP_OUT, .layer = 1, .sel = {.kind = IDS_SEL_RANGE, .begin = 2, .end = 7},
                   .action = IDS_ACT_CALLBACK, .fn = cb_zero};
    float lg_cb[32000], lg_clean[32000];
    out.logits = lg_cb;
    CHECK_OK_ERR(ids_ctx_run(c, &cb, 1, &o, &out, &err), err);
    CHECK(g_cb_calls == 1 && g_cb_rows == 5 && g_cb_width == 64);
    out.logits = lg_clean;
    CHECK_OK_ERR(ids_ctx_run(c, NULL, 0, &o, &out, &err), err);
    CHECK(t_max_abs_diff(lg_cb, lg_clean, 32000) > 1e-4);

    /* attention probabilities: rows sum to 1, zero past the causal limit */
    int n_head = 4;
    static float probs[2 * 4 * 128];
    int qrows[2] = {0, n - 1};
    ids_hook ph = {.site = IDS_SITE_ATTN_PROBS, .layer = 1, .sel = {.kind = IDS_SEL_LIST, .list = qrows, .n_list = 2},
                   .out = probs, .len = (size_t)2 * n_head * n};
    CHECK_OK_ERR(ids_ctx_run(c, &ph, 1, NULL, NULL, &err), err);
    for (int i = 0; i < 2; i++)
        for (int h = 0; h < n_head; h++) {
            const float *p = probs + ((size_t)i * n_head + h) * n;
            double sum = 0;
            for (int k = 0; k < n; k++) sum += p[k];
            CHECKF(fabs(sum - 1) < 1e-5, "row %d head %d sums to %g", qrows[i], h, sum);
            for (int k = qrows[i] + 1; k < n; k++) CHECK(p[k] == 0.0f);
        }
    CHECK(probs[0] == 1.0f); /* the first row can only attend to itself */
    /* editing them (uniform attention) changes the output; reuse agrees with full recompute */
    ids_hook pe = {.site = IDS_SITE_ATTN_PROBS, .layer = 2, .sel = {.kind = IDS_SEL_RANGE, .begin = n - 4, .end = n},
                   .action = IDS_ACT_CALLBACK, .fn = cb_uniform_probs, .user = &n_head};
    float lg_u[32000], lg_uf[32000];
    out.logits = lg_u;
    CHECK_OK_ERR(ids_ctx_run(c, &pe, 1, &o, &out, &err), err);
    CHECK(t_max_abs_diff(lg_u, lg_clean, 32000) > 1e-4);
    ids_run_opts of = o;
    of.full_recompute = true;
    out.logits = lg_uf;
    CHECK_OK_ERR(ids_ctx_run(c, &pe, 1, &of, &out, &err), err);
    CHECK(rel_diff(lg_u, lg_uf, 32000) <= 1e-5);
    ids_seq_free(s2);
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
}

/* Attention-probability hooks: capturing them leaves the run's numbers exactly as they are; hooks on
 * the same rows act in order (an edit is seen by the captures after it, not by those before), and
 * an edit works whatever other hooks share its rows. */
TEST(lm_probs_hooks_in_order) {
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    REQUIRE(c);
    ids_seq *s = text_seq(m, PROMPT);
    const int n = ids_seq_len(s), n_head = 4;
    ids_err err;
    float lg_clean[32000], lg[32000], lg_scaled[32000];
    ids_run_opts o = {.logits = IDS_LOGITS_LAST};
    ids_run_out out = {.logits = lg_clean};
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, &o, &out, &err), err);
    static float before[4 * 128], after[4 * 128];
    const size_t w = (size_t)n_head * n;
    const ids_sel last = {.kind = IDS_SEL_LAST}, tail = {.kind = IDS_SEL_RANGE, .begin = n - 3, .end = n};
    ids_hook cap = {.site = IDS_SITE_ATTN_PROBS, .layer = 2, .sel = last, .out = before, .len = w};
    ids_run_opts of = o;
    of.full_recompute = true; /* the prefill's own computation, all rows at once */
    out.logits = lg;
    CHECK_OK_ERR(ids_ctx_run(c, &cap, 1, &of, &out, &err), err);
    CHECK(t_max_abs_diff(lg, lg_clean, 32000) == 0); /* a capture changes nothing, to the bit */
    /* capture, scale (on more rows), capture: the first sees the softmax, the second the scaled one */
    ids_hook hs[3] = {cap,
                      {.site = IDS_SITE_ATTN_PROBS, .layer = 2, .sel = tail, .action = IDS_ACT_SCALE, .scale = 0.5f},
                      {.site = IDS_SITE_ATTN_PROBS, .layer = 2, .sel = last, .out = after, .len = w}};
    out.logits = lg_scaled;
    CHECK_OK_ERR(ids_ctx_run(c, hs, 3, &o, &out, &err), err);
    double s0 = 0, s1 = 0;
    for (int k = 0; k < n; k++) s0 += before[k], s1 += after[k];
    CHECKF(fabs(s0 - 1) < 1e-5 && fabs(s1 - 0.5) < 1e-5, "head 0 sums: %g before the scale, %g after", s0, s1);
    CHECK(t_max_abs_diff(lg_scaled, lg_clean, 32000) > 1e-4);
    /* the scale alone gives the same logits */
    out.logits = lg;
    CHECK_OK_ERR(ids_ctx_run(c, &hs[1], 1, &o, &out, &err), err);
    CHECK(t_max_abs_diff(lg, lg_scaled, 32000) == 0);
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
}

/* Greedy generation equals step-by-step argmax over full prefills (no cache involved). */
TEST(lm_generation_matches_stepwise_argmax) {
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    ids_ctx *c2 = m ? new_ctx(m, false) : NULL;
    REQUIRE(c && c2);
    ids_err err;
    ids_seq *s = text_seq(m, PROMPT);
    float add[64];
    for (int i = 0; i < 64; i++) add[i] = 2.0f * sinf(0.7f * (float)i);
    ids_hook h = {.site = IDS_SITE_RESID, .layer = 2, .sel = {.kind = IDS_SEL_WORD, .word = "circle"},
                  .action = IDS_ACT_ADD, .vec = add, .len = 64};
    for (int with_hook = 0; with_hook < 2; with_hook++) {
        int32_t gen[8], gen2[8];
        int ng = 0, ng2 = 0;
        CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err), err);
        CHECK_OK_ERR(ids_ctx_generate(c, &h, with_hook, 6, gen, &ng, &err), err);
        CHECK_OK_ERR(ids_ctx_prefill(c2, s, NULL, 0, NULL, NULL, &err), err); /* no clean cache: full path */
        CHECK_OK_ERR(ids_ctx_generate(c2, &h, with_hook, 6, gen2, &ng2, &err), err);
        CHECK_EQ_INT(ng, ng2);
        for (int k = 0; k < ng && k < ng2; k++) CHECK_EQ_INT(gen[k], gen2[k]);
        /* reference: extend the sequence one token at a time and prefill from scratch */
        ids_seq *cur = text_seq(m, PROMPT);
        int nref = 0;
        for (int k = 0; k < ng; k++) {
            float lg[32000];
            ids_run_opts o = {.logits = IDS_LOGITS_LAST};
            ids_run_out out = {.logits = lg};
            CHECK_OK_ERR(ids_ctx_prefill(c2, cur, NULL, 0, NULL, NULL, &err), err);
            CHECK_OK_ERR(ids_ctx_run(c2, &h, with_hook, &o, &out, &err), err);
            int32_t t = argmax(lg, 32000);
            CHECK_EQ_INT(t, gen[k]);
            ids_seq_add_tokens(cur, &t, 1, &err);
            nref++;
        }
        CHECK(ng == 6 || ng == nref);
        ids_seq_free(cur);
    }
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_ctx_free(c2);
    ids_model_free(m);
}

TEST(lm_bad_inputs) {
    ids_model *m = load_llava();
    ids_ctx *c = m ? new_ctx(m, true) : NULL;
    REQUIRE(c);
    ids_err err;
    ids_seq *s = text_seq(m, PROMPT);
    const int n = ids_seq_len(s);
    CHECK_EQ_INT(ids_ctx_run(c, NULL, 0, NULL, NULL, &err), IDS_ERR_ARG); /* no sequence yet */
    CHECK_OK_ERR(ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, &err), err);
    float v[64] = {0};
    ids_hook h = {.site = IDS_SITE_RESID, .layer = 5, .sel = {.kind = IDS_SEL_LAST},
                  .action = IDS_ACT_ADD, .vec = v, .len = 64};
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "layer 5") != NULL);
    h.layer = 4;
    h.site = IDS_SITE_MLP_OUT; /* blocks are 0..3 */
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_RANGE);
    h.site = IDS_SITE_RESID;
    int past = n + 3;
    h.sel = (ids_sel){.kind = IDS_SEL_LIST, .list = &past, .n_list = 1};
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_RANGE);
    char want[64];
    snprintf(want, sizeof want, "row %d", past);
    CHECK(strstr(err.msg, want) != NULL);
    h.sel = (ids_sel){.kind = IDS_SEL_WORD, .word = "frog"};
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "frog") != NULL);
    h.sel = (ids_sel){.kind = IDS_SEL_WORD, .word = "circle", .nth = 1};
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_NOT_FOUND);
    h.sel = (ids_sel){.kind = IDS_SEL_WORD, .word = "circle"};
    h.len = 32; /* wrong width */
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "32 floats") && strstr(err.msg, "expected 64"));
    h.len = 64;
    h.sel = (ids_sel){.kind = IDS_SEL_IMAGE, .image = -1};
    CHECK_EQ_INT(ids_ctx_run(c, &h, 1, NULL, NULL, &err), IDS_ERR_NOT_FOUND); /* text-only prompt */
    int32_t bad = 40000;
    ids_run_opts o = {.cand = &bad, .n_cand = 1};
    CHECK_EQ_INT(ids_ctx_run(c, NULL, 0, &o, NULL, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "40000") != NULL);
    ids_seq *wide = ids_seq_new(32);
    float row[32] = {0};
    ids_seq_add_embd(wide, row, 1, IDS_ROW_TEXT, -1, 0, &err);
    CHECK_EQ_INT(ids_ctx_prefill(c, wide, NULL, 0, NULL, NULL, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "32") != NULL);
    ids_seq_free(wide);
    ids_seq *tooling = ids_seq_new(64);
    int32_t big = 32000;
    ids_seq_add_tokens(tooling, &big, 1, &err);
    CHECK_EQ_INT(ids_ctx_prefill(c, tooling, NULL, 0, NULL, NULL, &err), IDS_ERR_RANGE);
    ids_seq_free(tooling);
    ids_model *m2 = NULL;
    CHECK_EQ_INT(ids_model_load(&m2, t_shared("golden/llava-tiny/mmproj.gguf"), &err), IDS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "clip") != NULL);
    ids_seq_free(s);
    ids_ctx_free(c);
    ids_model_free(m);
}

static ids_status load_model(void *path, ids_err *err) {
    ids_model *m;
    ids_status st = ids_model_load(&m, path, err);
    if (!st) ids_model_free(m);
    return st;
}

/* The golden Qwen2-VL decoder with the golden LLaVA's 32000-token SPM vocabulary in place of its
 * 151936-token BPE one (the weights unchanged): loads several times faster. */
static const char *qwen_with_small_vocab(void) {
    ids_gguf *q = NULL, *l = NULL;
    ids_err err;
    if (ids_gguf_open(&q, t_shared("golden/qwen2vl-tiny/text.gguf"), &err) ||
        ids_gguf_open(&l, t_shared("golden/llava-tiny/text.gguf"), &err)) {
        ids_gguf_close(q);
        return NULL;
    }
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_status st = w ? IDS_OK : IDS_ERR_NOMEM;
    for (int64_t i = 0; !st && i < ids_gguf_n_kv(q); i++)
        if (strncmp(ids_gguf_kv_key(q, i), "tokenizer.", 10))
            st = ids_gguf_writer_set_value(w, ids_gguf_kv_key(q, i), ids_gguf_kv_value(q, i), &err);
    for (int64_t i = 0; !st && i < ids_gguf_n_kv(l); i++)
        if (!strncmp(ids_gguf_kv_key(l, i), "tokenizer.", 10))
            st = ids_gguf_writer_set_value(w, ids_gguf_kv_key(l, i), ids_gguf_kv_value(l, i), &err);
    for (int64_t i = 0; !st && i < ids_gguf_n_tensors(q); i++) {
        const ids_tensor *t = ids_gguf_tensor_at(q, i);
        st = ids_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err);
    }
    const char *path = t_tmp("qwen2vl-small-vocab.gguf");
    if (!st) st = ids_gguf_writer_write(w, path, &err);
    ids_gguf_writer_free(w);
    ids_gguf_close(q);
    ids_gguf_close(l);
    return st ? NULL : path;
}

/* Decoder loading (GGUF, hyper-parameters, weights, tokenizer) with each allocation failing in
 * turn: llama (LLaVA) and qwen2vl (M-RoPE sections, attention biases). */
TEST(lm_load_allocation_failures) {
    char paths[2][512];
    snprintf(paths[0], sizeof paths[0], "%s", t_shared("golden/llava-tiny/text.gguf"));
    const char *q = qwen_with_small_vocab();
    REQUIRE(q);
    snprintf(paths[1], sizeof paths[1], "%s", q);
    for (int k = 0; k < 2; k++) {
        long n = CHECK_ALLOC_FAILURES(load_model, paths[k], 500);
        CHECKF(n > 10, "%s: %ld allocations", paths[k], n);
    }
}

/* A norm weight of the wrong length is named with both shapes ("expected shape [64], got [63, ...]"). */
TEST(lm_bad_vector_shape_message) {
    ids_gguf *g = NULL;
    ids_err err;
    REQUIRE_OK(ids_gguf_open(&g, t_shared("golden/llava-tiny/text.gguf"), &err), err);
    ids_gguf_writer *w = ids_gguf_writer_new();
    bool ok = w != NULL;
    for (int64_t i = 0; ok && i < ids_gguf_n_kv(g); i++)
        ok = !ids_gguf_writer_set_value(w, ids_gguf_kv_key(g, i), ids_gguf_kv_value(g, i), &err);
    for (int64_t i = 0; ok && i < ids_gguf_n_tensors(g); i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (!strcmp(t->name, "blk.1.ffn_norm.weight")) ne[0] = 63;
        ok = !ids_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, &err);
    }
    const char *path = t_tmp("short-norm.gguf");
    ok = ok && !ids_gguf_writer_write(w, path, &err);
    ids_gguf_writer_free(w);
    ids_gguf_close(g);
    REQUIRE(ok);
    ids_model *m = NULL;
    CHECK_EQ_INT(ids_model_load(&m, path, &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "blk.1.ffn_norm.weight': expected shape [64], got [63, 1, 1, 1]") != NULL, "%s", err.msg);
    ids_model_free(m);
}

static void count_range(void *arg, size_t lo, size_t hi) {
    unsigned char *seen = arg;
    for (size_t i = lo; i < hi; i++) seen[i]++;
}

/* ids__ops_for visits every index once, whatever n, grain and thread count (33 rows on 2 threads once lost
 * the last row). */
TEST(ops_for_covers_every_index_once) {
    for (int t = 1; t <= 3; t++) {
        ids_ops o;
        ids_err err;
        REQUIRE_OK(ids__ops_init(&o, t, 64, 16, IDS_PREC_F32, &err), err);
        for (size_t n = 0; n < 300; n += (n < 70 ? 1 : 37)) {
            unsigned char seen[300] = {0};
            ids__ops_for(&o, n, n % 3 ? 8 : 1, count_range, seen);
            int bad = 0;
            for (size_t i = 0; i < 300; i++) bad += seen[i] != (i < n);
            CHECKF(bad == 0, "%d threads, n %zu: %d indices visited other than once", t, n, bad);
        }
        ids__ops_free(&o);
    }
}

/* ids__matmul_n (the products of one X in one pass: q/k/v, gate/up) gives the bits of one ids__matmul at a
 * time without packed weights: two F16 matrices together (the F16 panels' kernel set on AVX-512), F32 and
 * Q8_0 ones, a tensor given twice in one pass (the second reads it unpacked while the first packs it), a
 * bias, rows in chunks; in every precision, on 1 and 3 threads, when it packs the weights and when it reads
 * them packed. */
TEST(ops_matmul_n_same_bits) {
    enum { K = 96, M = 50, NT = 4, NW = 4 };
    const int types[NT] = {IDS_TYPE_F16, IDS_TYPE_F16, IDS_TYPE_F32, IDS_TYPE_Q8_0}, ns[NT] = {40, 24, 33, 70};
    /* the calls: tensor indices (the first packs w3 while reading it again), and which product has the bias (w2) */
    const int calls[2][NW] = {{3, 2, 3, 0}, {0, 1, 2, 3}}, with_bias[2] = {1, 2};
    ids_err err;
    ids_gguf_writer *wr = ids_gguf_writer_new();
    REQUIRE(wr);
    uint32_t r = 7;
    float *vals = malloc(sizeof(float) * K * 70), *X = malloc(sizeof(float) * M * K), bias[33];
    REQUIRE(vals && X);
    bool ok = true;
    for (int t = 0; t < NT; t++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", t);
        for (int i = 0; i < K * ns[t]; i++) r = r * 1664525u + 1013904223u, vals[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
        const int64_t ne[2] = {K, ns[t]};
        ok = ok && !ids_gguf_writer_add_tensor_f32(wr, name, types[t], 2, ne, vals, &err);
    }
    for (int i = 0; i < M * K; i++) r = r * 1664525u + 1013904223u, X[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    for (int i = 0; i < 33; i++) bias[i] = 0.25f * (float)i - 3.0f;
    const char *path = t_tmp("matmul-n.gguf");
    ok = ok && !ids_gguf_writer_write(wr, path, &err);
    ids_gguf_writer_free(wr);
    REQUIRE(ok);
    ids_gguf *g = NULL;
    REQUIRE_OK(ids_gguf_open(&g, path, &err), err);
    const ids_tensor *ts[NT];
    for (int t = 0; t < NT; t++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", t);
        REQUIRE((ts[t] = ids_gguf_find_tensor(g, name)) != NULL);
    }
    float *y1[NW], *y2[NW];
    for (int i = 0; i < NW; i++) {
        y1[i] = malloc(sizeof(float) * M * 70), y2[i] = malloc(sizeof(float) * M * 70);
        REQUIRE(y1[i] && y2[i]);
    }
    for (int p = 0; p < IDS_PREC_COUNT; p++)
        for (int nt = 1; nt <= 3; nt += 2) {
            ids_ops o;
            REQUIRE_OK(ids__ops_init(&o, nt, K, 16, (ids_precision)p, &err), err);
            REQUIRE_OK(ids__packs_new(&o.packs, g, &err), err);
            for (int pass = 0; pass < 2; pass++) /* packs them, then reads them packed */
                for (int c = 0; c < 2; c++) {
                    const ids_tensor *w[NW];
                    const float *b[NW] = {NULL, NULL, NULL, NULL};
                    b[with_bias[c]] = bias;
                    for (int i = 0; i < NW; i++) w[i] = ts[calls[c][i]];
                    ids__packs *packs = o.packs;
                    o.packs = NULL;
                    for (int i = 0; i < NW; i++) ids__matmul(&o, w[i], X, M, y1[i], b[i]);
                    o.packs = packs;
                    for (int i = 0; i < NW; i++) memset(y2[i], 0xff, sizeof(float) * M * (size_t)w[i]->ne[1]);
                    ids__matmul_n(&o, NW, w, X, M, y2, b);
                    for (int i = 0; i < NW; i++)
                        CHECKF(!memcmp(y1[i], y2[i], sizeof(float) * M * (size_t)w[i]->ne[1]), "%s, %d threads, pass %d, "
                               "call %d: product %d differs", ids_precision_name((ids_precision)p), nt, pass, c, i);
                }
            CHECKF(ids__packs_bytes(o.packs) > 0, "%s: nothing packed", ids_precision_name((ids_precision)p));
            ids__packs_free(o.packs);
            o.packs = NULL;
            ids__ops_free(&o);
        }
    for (int i = 0; i < NW; i++) free(y1[i]), free(y2[i]);
    free(vals), free(X);
    ids_gguf_close(g);
}
