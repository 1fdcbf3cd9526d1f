/* GGUF reader and writer: golden files, round trips, broken fixtures, truncation and corruption
 * sweeps, allocation failures. */
#include "test.h"

#include <stdint.h>

TEST(gguf_read_golden_llava_text) {
    ids_gguf *g;
    ids_err err;
    REQUIRE_OK(ids_gguf_open(&g, t_shared("golden/llava-tiny/text.gguf"), &err), err);
    const char *arch = NULL;
    CHECK_OK_ERR(ids_gguf_get_str(g, "general.architecture", &arch, &err), err);
    CHECK(arch && !strcmp(arch, "llama"));
    uint32_t v;
    CHECK_OK_ERR(ids_gguf_get_u32(g, "llama.block_count", &v, &err), err);
    CHECK_EQ_INT(v, 4);
    CHECK_OK_ERR(ids_gguf_get_u32(g, "llama.embedding_length", &v, &err), err);
    CHECK_EQ_INT(v, 64);
    CHECK_OK_ERR(ids_gguf_get_u32(g, "llama.attention.head_count_kv", &v, &err), err);
    CHECK_EQ_INT(v, 2);
    float eps;
    CHECK_OK_ERR(ids_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, &err), err);
    CHECK(fabsf(eps - 1e-5f) < 1e-9f);
    const ids_gguf_value *toks;
    CHECK_OK_ERR(ids_gguf_get_arr(g, "tokenizer.ggml.tokens", IDS_GGUF_STRING, &toks, &err), err);
    CHECK_EQ_INT(toks->v.arr.n, 32000);
    const char *s;
    CHECK_OK(ids_gguf_arr_str(toks, 1, &s, NULL));
    CHECK(!strcmp(s, "<s>"));
    /* wrong type and missing key are reported as such, naming the file and key */
    CHECK_EQ_INT(ids_gguf_get_str(g, "llama.block_count", &s, &err), IDS_ERR_TYPE);
    CHECK(strstr(err.msg, "text.gguf") && strstr(err.msg, "llama.block_count"));
    CHECK_EQ_INT(ids_gguf_get_u32(g, "no.such.key", &v, &err), IDS_ERR_NOT_FOUND);
    CHECK_EQ_INT(ids_gguf_get_arr(g, "tokenizer.ggml.tokens", IDS_GGUF_INT32, &toks, &err), IDS_ERR_TYPE);
    const ids_tensor *t = ids_gguf_find_tensor(g, "token_embd.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->ne[0], 64);
    CHECK_EQ_INT(t->ne[1], 32000);
    CHECK_EQ_INT(t->type, IDS_TYPE_F32);
    CHECK_EQ_INT(t->nbytes, 64 * 32000 * 4);
    CHECK((uintptr_t)t->data % ids_gguf_alignment(g) == 0); /* mapping is page-aligned */
    CHECK(ids_gguf_find_tensor(g, "blk.3.ffn_down.weight") != NULL);
    CHECK(ids_gguf_find_tensor(g, "blk.4.ffn_down.weight") == NULL);
    ids_gguf_close(g);
}

TEST(gguf_read_all_vocab_and_golden_files) {
    const char *files[] = {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-qwen2.gguf",
                           "vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-llama-bpe.gguf",
                           "golden/llava-tiny/mmproj.gguf", "golden/qwen2vl-tiny/text.gguf",
                           "golden/qwen2vl-tiny/mmproj.gguf", "golden/quants/quants.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        ids_gguf *g;
        ids_err err;
        ids_status st = ids_gguf_open(&g, t_shared(files[i]), &err);
        CHECKF(st == IDS_OK, "%s: %s", files[i], err.msg);
        if (st) continue;
        CHECK(ids_gguf_version(g) == 3 || ids_gguf_version(g) == 2);
        for (int64_t k = 0; k < ids_gguf_n_tensors(g); k++) {
            const ids_tensor *t = ids_gguf_tensor_at(g, k);
            CHECK(ids_gguf_data_offset(g) + t->offset + t->nbytes <= ids_gguf_file_size(g));
        }
        ids_gguf_close(g);
    }
}

TEST(gguf_open_missing_file) {
    ids_gguf *g = NULL;
    ids_err err;
    CHECK_EQ_INT(ids_gguf_open(&g, "/nonexistent/model.gguf", &err), IDS_ERR_IO);
    CHECK(g == NULL);
    CHECK(strstr(err.msg, "/nonexistent/model.gguf") != NULL);
}

/* Build a file that uses every metadata type, nested arrays and several tensor types. */
static ids_gguf_writer *make_writer(uint32_t alignment, float *f32data, int64_t n) {
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_err err;
    if (alignment != 32) CHECK_OK_ERR(ids_gguf_writer_set_alignment(w, alignment, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_set_str(w, "general.architecture", "test", &err), err);
    CHECK_OK_ERR(ids_gguf_writer_set_u32(w, "test.u32", 4000000000u, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_set_i32(w, "test.i32", -7, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_set_u64(w, "test.u64", 1ull << 40, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_set_f32(w, "test.f32", 0.25f, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_set_bool(w, "test.bool", true, &err), err);
    int16_t i16[3] = {-1, 2, -3};
    CHECK_OK_ERR(ids_gguf_writer_set_arr(w, "test.arr_i16", IDS_GGUF_INT16, i16, 3, &err), err);
    double f64[2] = {1.5, -2.25};
    CHECK_OK_ERR(ids_gguf_writer_set_arr(w, "test.arr_f64", IDS_GGUF_FLOAT64, f64, 2, &err), err);
    const char *strs[] = {"a", "", "héllo"};
    CHECK_OK_ERR(ids_gguf_writer_set_arr_str(w, "test.arr_str", strs, 3, &err), err);
    /* nested: [[1, 2], [3]] of u8 */
    uint8_t a1[2] = {1, 2}, a2[1] = {3};
    ids_gguf_value sub[2] = {{.type = IDS_GGUF_ARRAY}, {.type = IDS_GGUF_ARRAY}};
    sub[0].v.arr.elem = IDS_GGUF_UINT8, sub[0].v.arr.n = 2, sub[0].v.arr.data = a1;
    sub[1].v.arr.elem = IDS_GGUF_UINT8, sub[1].v.arr.n = 1, sub[1].v.arr.data = a2;
    ids_gguf_value nested = {.type = IDS_GGUF_ARRAY};
    nested.v.arr.elem = IDS_GGUF_ARRAY, nested.v.arr.n = 2, nested.v.arr.data = sub;
    CHECK_OK_ERR(ids_gguf_writer_set_value(w, "test.nested", &nested, &err), err);
    int64_t ne2[2] = {32, n / 32};
    CHECK_OK_ERR(ids_gguf_writer_add_tensor_f32(w, "t.f32", IDS_TYPE_F32, 2, ne2, f32data, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_add_tensor_f32(w, "t.f16", IDS_TYPE_F16, 2, ne2, f32data, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_add_tensor_f32(w, "t.bf16", IDS_TYPE_BF16, 2, ne2, f32data, &err), err);
    CHECK_OK_ERR(ids_gguf_writer_add_tensor_f32(w, "t.q8", IDS_TYPE_Q8_0, 2, ne2, f32data, &err), err);
    int64_t ne1 = 3;
    CHECK_OK_ERR(ids_gguf_writer_add_tensor_f32(w, "t.odd", IDS_TYPE_F32, 1, &ne1, f32data, &err), err);
    return w;
}

static void check_roundtrip_contents(ids_gguf *g, const float *x, int64_t n) {
    ids_err err;
    uint32_t u;
    int64_t i;
    float f;
    bool b;
    CHECK_OK_ERR(ids_gguf_get_u32(g, "test.u32", &u, &err), err);
    CHECK(u == 4000000000u);
    CHECK_OK_ERR(ids_gguf_get_i64(g, "test.i32", &i, &err), err);
    CHECK_EQ_INT(i, -7);
    CHECK_EQ_INT(ids_gguf_get_u32(g, "test.i32", &u, &err), IDS_ERR_RANGE);
    CHECK_OK_ERR(ids_gguf_get_i64(g, "test.u64", &i, &err), err);
    CHECK_EQ_INT(i, 1ll << 40);
    CHECK_OK_ERR(ids_gguf_get_f32(g, "test.f32", &f, &err), err);
    CHECK(f == 0.25f);
    CHECK_OK_ERR(ids_gguf_get_bool(g, "test.bool", &b, &err), err);
    CHECK(b);
    const ids_gguf_value *a;
    CHECK_OK_ERR(ids_gguf_get_arr(g, "test.arr_i16", IDS_GGUF_INT16, &a, &err), err);
    CHECK_OK(ids_gguf_arr_i64(a, 2, &i));
    CHECK_EQ_INT(i, -3);
    CHECK_EQ_INT(ids_gguf_arr_i64(a, 3, &i), IDS_ERR_RANGE);
    double d;
    CHECK_OK_ERR(ids_gguf_get_arr(g, "test.arr_f64", IDS_GGUF_FLOAT64, &a, &err), err);
    CHECK_OK(ids_gguf_arr_f64(a, 1, &d));
    CHECK(d == -2.25);
    CHECK_OK_ERR(ids_gguf_get_arr(g, "test.arr_str", IDS_GGUF_STRING, &a, &err), err);
    const char *s;
    uint64_t len;
    CHECK_OK(ids_gguf_arr_str(a, 2, &s, &len));
    CHECK(!strcmp(s, "héllo") && len == 6);
    CHECK_OK(ids_gguf_arr_str(a, 1, &s, &len));
    CHECK(len == 0 && s[0] == 0);
    CHECK_OK_ERR(ids_gguf_get_arr(g, "test.nested", IDS_GGUF_ARRAY, &a, &err), err);
    CHECK_EQ_INT(a->v.arr.n, 2);
    const ids_gguf_value *s1 = ids_gguf_arr_arr(a, 1);
    REQUIRE(s1);
    CHECK_EQ_INT(s1->v.arr.n, 1);
    CHECK_OK(ids_gguf_arr_i64(s1, 0, &i));
    CHECK_EQ_INT(i, 3);
    CHECK(ids_gguf_arr_arr(a, 2) == NULL);

    const char *names[] = {"t.f32", "t.f16", "t.bf16", "t.q8"};
    const float tol[] = {0, 1e-3f, 1e-2f, 2e-2f};
    float *y = malloc(sizeof(float) * (size_t)n);
    for (int k = 0; k < 4; k++) {
        const ids_tensor *t = ids_gguf_find_tensor(g, names[k]);
        REQUIRE(t);
        CHECK_EQ_INT(t->ne[0], 32);
        CHECK_EQ_INT(t->ne[1], n / 32);
        CHECK_EQ_INT(t->offset % ids_gguf_alignment(g), 0);
        CHECK_OK_ERR(ids_tensor_to_f32(t, y, &err), err);
        float worst = 0;
        for (int64_t j = 0; j < n; j++) worst = fmaxf(worst, fabsf(y[j] - x[j]));
        CHECKF(worst <= tol[k], "%s: max error %g > %g", names[k], worst, tol[k]);
    }
    free(y);
    const ids_tensor *t = ids_gguf_find_tensor(g, "t.odd");
    REQUIRE(t);
    CHECK_EQ_INT(t->n_dims, 1);
    CHECK_EQ_INT(t->nbytes, 12);
}

TEST(gguf_writer_roundtrip) {
    int64_t n = 128;
    float x[128];
    for (int i = 0; i < n; i++) x[i] = sinf((float)i * 0.37f) * 3.0f;
    uint32_t aligns[] = {32, 64, 4096};
    for (int k = 0; k < 3; k++) {
        ids_gguf_writer *w = make_writer(aligns[k], x, n);
        ids_err err;
        const char *path = t_tmp("roundtrip.gguf");
        CHECK_OK_ERR(ids_gguf_writer_write(w, path, &err), err);
        ids_gguf_writer_free(w);
        ids_gguf *g;
        ids_status st = ids_gguf_open(&g, path, &err);
        CHECKF(st == IDS_OK, "reopen: %s", err.msg);
        if (st) continue;
        CHECK_EQ_INT(ids_gguf_alignment(g), aligns[k]);
        CHECK_EQ_INT(ids_gguf_data_offset(g) % aligns[k], 0);
        check_roundtrip_contents(g, x, n);
        ids_gguf_close(g);
    }
}

TEST(gguf_writer_rejects_bad_calls) {
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_err err;
    CHECK_OK_ERR(ids_gguf_writer_set_u32(w, "a.b", 1, &err), err);
    CHECK_EQ_INT(ids_gguf_writer_set_u32(w, "a.b", 2, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "a.b") != NULL);
    CHECK_EQ_INT(ids_gguf_writer_set_alignment(w, 48, &err), IDS_ERR_ARG);
    float x[33] = {0};
    int64_t ne = 33;
    CHECK_EQ_INT(ids_gguf_writer_add_tensor_f32(w, "q", IDS_TYPE_Q8_0, 1, &ne, x, &err), IDS_ERR_ARG);
    ne = 32;
    CHECK_OK_ERR(ids_gguf_writer_add_tensor_f32(w, "q", IDS_TYPE_Q8_0, 1, &ne, x, &err), err);
    CHECK_EQ_INT(ids_gguf_writer_add_tensor_f32(w, "q", IDS_TYPE_F32, 1, &ne, x, &err), IDS_ERR_ARG);
    CHECK_EQ_INT(ids_gguf_writer_add_tensor_f32(w, "r", IDS_TYPE_Q4_K, 1, &ne, x, &err), IDS_ERR_ARG);
    CHECK_EQ_INT(ids_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), IDS_ERR_IO);
    ids_gguf_writer_free(w);
}

TEST(gguf_broken_fixtures) {
    size_t len;
    char *list = t_read_file("tests/fixtures/broken/expected.txt", &len);
    REQUIRE(list);
    int n = 0;
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        char path[512];
        snprintf(path, sizeof path, "tests/fixtures/broken/%s", line);
        ids_gguf *g = NULL;
        ids_err err = {0};
        ids_status st = ids_gguf_open(&g, path, &err);
        CHECKF(st == IDS_ERR_FORMAT, "%s: expected a format error, got %s", line, ids_status_name(st));
        CHECKF(g == NULL, "%s: handle returned on error", line);
        CHECKF(strstr(err.msg, tab + 1) != NULL, "%s: message '%s' lacks '%s'", line, err.msg, tab + 1);
        CHECKF(strstr(err.msg, line) != NULL, "%s: message does not name the file: %s", line, err.msg);
        CHECKF(strstr(err.msg, "offset ") != NULL, "%s: message does not name an offset: %s", line, err.msg);
        if (st == IDS_OK) ids_gguf_close(g);
        n++;
    }
    CHECKF(n >= 15, "only %d fixtures listed", n);
    free(list);
}

/* Every strict prefix of a valid file must be rejected cleanly; corrupting any byte must never
 * crash (under ASan this also proves no out-of-bounds read). */
TEST(gguf_truncation_and_corruption_sweep) {
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)i;
    ids_gguf_writer *w = make_writer(32, x, 64);
    ids_err err;
    const char *path = t_tmp("sweep.gguf");
    CHECK_OK_ERR(ids_gguf_writer_write(w, path, &err), err);
    ids_gguf_writer_free(w);
    size_t len;
    unsigned char *data = (unsigned char *)t_read_file(path, &len);
    REQUIRE(data);
    /* the last tensor is padded: prefixes that cut only padding stay valid */
    size_t tensor_end = len;
    {
        ids_gguf *g;
        REQUIRE_OK(ids_gguf_open_memory(&g, data, len, "sweep", &err), err);
        tensor_end = 0;
        for (int64_t k = 0; k < ids_gguf_n_tensors(g); k++) {
            const ids_tensor *t = ids_gguf_tensor_at(g, k);
            size_t e = (size_t)(ids_gguf_data_offset(g) + t->offset + t->nbytes);
            if (e > tensor_end) tensor_end = e;
        }
        ids_gguf_close(g);
    }
    int bad = 0;
    for (size_t cut = 0; cut < tensor_end; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1); /* exact-size buffer: ASan sees overreads */
        memcpy(copy, data, cut);
        ids_gguf *g = NULL;
        ids_status st = ids_gguf_open_memory(&g, copy, cut, "cut", &err);
        if (st != IDS_ERR_FORMAT) bad++;
        if (st == IDS_OK) ids_gguf_close(g);
        free(copy);
    }
    CHECKF(bad == 0, "%d truncated prefixes were not rejected as format errors", bad);
    uint32_t seed = 7;
    unsigned char *copy = malloc(len);
    for (size_t pos = 0; pos < len; pos++) {
        for (int rep = 0; rep < 2; rep++) {
            memcpy(copy, data, len);
            seed = seed * 1103515245u + 12345u;
            copy[pos] = rep ? (unsigned char)(seed >> 16) : 0xFF;
            ids_gguf *g = NULL;
            if (ids_gguf_open_memory(&g, copy, len, "fuzz", &err) == IDS_OK) {
                /* touch everything the handle exposes */
                for (int64_t k = 0; k < ids_gguf_n_tensors(g); k++) {
                    const ids_tensor *t = ids_gguf_tensor_at(g, k);
                    if (ids_type_can_dequantize(t->type) && ids_tensor_nelements(t) < 100000) {
                        float *y = malloc(sizeof(float) * (size_t)(ids_tensor_nelements(t) + 1));
                        ids_tensor_to_f32(t, y, &err);
                        free(y);
                    }
                }
                ids_gguf_close(g);
            }
        }
    }
    free(copy);
    free(data);
}

TEST(gguf_allocation_failures) {
    int ok = 0, nomem = 0, other = 0;
    for (long n = 0; n < 400; n++) {
        ids_debug_fail_alloc_after(n);
        ids_gguf *g = NULL;
        ids_err err;
        ids_status st = ids_gguf_open(&g, t_shared("golden/llava-tiny/mmproj.gguf"), &err);
        ids_debug_fail_alloc_after(-1);
        if (st == IDS_OK) {
            ok++;
            ids_gguf_close(g);
        } else if (st == IDS_ERR_NOMEM) {
            nomem++;
        } else {
            other++;
        }
    }
    CHECK(nomem > 0);
    CHECK(ok > 0);
    CHECK_EQ_INT(other, 0);
}
