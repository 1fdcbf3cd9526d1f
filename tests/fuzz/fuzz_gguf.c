/* GGUF from memory: every metadata value through every typed getter (arrays and nested arrays
 * element by element, bounded), every tensor (bytes inside the buffer, small ones dequantized
 * whole and by rows), and the tokenizer the file describes (a short text tokenized and decoded). */
#include "fuzz.h"

#define MAX_ELEMS 64           /* array elements read per array (the first and the last ones) */
#define MAX_TENSORS 64
#define MAX_DEQUANT (1 << 16)  /* elements dequantized per tensor */

static const uint8_t *g_base;
static size_t g_size;

static void walk_array(const ids_gguf_value *a, int depth) {
    if (a->type != IDS_GGUF_ARRAY || depth > 16) abort(); /* the parser nests at most 8 deep */
    uint64_t n = a->v.arr.n;
    for (uint64_t k = 0; k < n && k < 2 * MAX_ELEMS; k++) {
        uint64_t i = k < MAX_ELEMS ? k : n - 1 - (k - MAX_ELEMS); /* the first ones, then the last ones */
        int64_t x;
        double f;
        const char *s = NULL;
        uint64_t len = 0;
        ids_gguf_arr_i64(a, i, &x);
        ids_gguf_arr_f64(a, i, &f);
        if (ids_gguf_arr_str(a, i, &s, &len) == IDS_OK) {
            fz_touch(s, (size_t)len + 1);
            if (s[len] != 0) abort(); /* strings are NUL-terminated copies */
        }
        const ids_gguf_value *sub = ids_gguf_arr_arr(a, i);
        if (sub) walk_array(sub, depth + 1);
        if ((sub != NULL) != (a->v.arr.elem == IDS_GGUF_ARRAY)) abort();
    }
    /* out of range */
    int64_t x;
    if (ids_gguf_arr_i64(a, n, &x) == IDS_OK || ids_gguf_arr_arr(a, n)) abort();
}

static void walk_metadata(const ids_gguf *g) {
    int64_t n = ids_gguf_n_kv(g);
    for (int64_t i = 0; i < n; i++) {
        const char *key = ids_gguf_kv_key(g, i);
        const ids_gguf_value *v = ids_gguf_kv_value(g, i);
        if (!key || !v || ids_gguf_find_kv(g, key) != i || ids_gguf_get(g, key) != v) abort();
        ids_err err;
        int64_t i64;
        uint32_t u32;
        float f32;
        bool b;
        const char *s;
        const ids_gguf_value *arr;
        ids_gguf_get_i64(g, key, &i64, &err);
        ids_gguf_get_u32(g, key, &u32, &err);
        ids_gguf_get_f32(g, key, &f32, &err);
        ids_gguf_get_bool(g, key, &b, &err);
        if (ids_gguf_get_str(g, key, &s, &err) == IDS_OK) fz_touch(s, (size_t)v->v.str.len + 1);
        if (ids_gguf_get_arr(g, key, -1, &arr, &err) == IDS_OK) {
            walk_array(arr, 0);
            ids_gguf_get_arr(g, key, IDS_GGUF_STRING, &arr, &err);
        }
        (void)ids_gguf_type_name((int)v->type);
    }
    ids_err err;
    int64_t x;
    if (ids_gguf_get_i64(g, "no.such.key", &x, &err) != IDS_ERR_NOT_FOUND) abort();
    (void)ids_gguf_kv_key(g, n);
    (void)ids_gguf_kv_value(g, -1);
}

static void walk_tensors(const ids_gguf *g) {
    int64_t n = ids_gguf_n_tensors(g);
    for (int64_t i = 0; i < n && i < MAX_TENSORS; i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        if (!t || ids_gguf_find_tensor(g, t->name) != t) abort();
        const uint8_t *d = t->data;
        if (d < g_base || t->nbytes > g_size || (size_t)(d - g_base) > g_size - t->nbytes) abort();
        fz_touch(d, t->nbytes < 4096 ? (size_t)t->nbytes : 4096);
        (void)ids_type_name(t->type);
        int64_t nel = ids_tensor_nelements(t);
        if (nel <= 0 || nel > MAX_DEQUANT || !ids_type_can_dequantize(t->type)) continue;
        float *f = malloc(sizeof(float) * (size_t)nel);
        if (!f) continue;
        ids_err err;
        ids_tensor_to_f32(t, f, &err);
        int64_t rows = nel / t->ne[0];
        ids_tensor_rows_f32(t, rows - 1, 1, f, &err);
        ids_tensor_rows_f32(t, rows, 1, f, &err); /* past the end: an error, not a read */
        free(f);
    }
    (void)ids_gguf_tensor_at(g, n);
    (void)ids_gguf_find_tensor(g, "no.such.tensor");
}

static void try_tokenizer(const ids_gguf *g) {
    ids_tokenizer *tok = NULL;
    ids_err err;
    if (ids_tokenizer_load(&tok, g, &err) != IDS_OK) {
        if (tok) abort();
        return;
    }
    static const char text[] = "Hello world, <s> 1234 </s> <|im_start|>caf\xc3\xa9 \xe2\x96\x81x\n\n  \xff end";
    ids_tokenize_opts opts[2] = {{true, true}, {false, false}};
    for (int k = 0; k < 2; k++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (ids_tokenize(tok, text, sizeof text - 1, opts[k], &ids, &n, &err) != IDS_OK) continue;
        char *back = NULL;
        if (ids_detokenize(tok, ids, n, k == 0, k == 0, &back, &err) == IDS_OK) free(back);
        for (size_t i = 0; i < n && i < 8; i++) {
            char *s = ids_token_to_text(tok, ids[i]);
            free(s);
            (void)ids_tokenizer_is_eog(tok, ids[i]);
            (void)ids_tokenizer_piece(tok, ids[i]);
            (void)ids_tokenizer_attr(tok, ids[i]);
        }
        free(ids);
    }
    (void)ids_tokenizer_word_token(tok, "frog", &err);
    (void)ids_tokenizer_find(tok, "frog");
    (void)ids_tokenizer_piece(tok, ids_tokenizer_n_vocab(tok));
    (void)ids_tokenizer_pre(tok);
    ids_tokenizer_free(tok);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ids_gguf *g = NULL;
    ids_err err;
    /* a copy of exactly `size` bytes, so that ASan sees any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    g_base = copy;
    g_size = size;
    if (ids_gguf_open_memory(&g, copy, size, "fuzz.gguf", &err) == IDS_OK) {
        (void)ids_gguf_version(g);
        (void)ids_gguf_alignment(g);
        if (ids_gguf_data_offset(g) > size || ids_gguf_file_size(g) != size) abort();
        walk_metadata(g);
        walk_tensors(g);
        try_tokenizer(g);
        ids_gguf_close(g);
    } else if (g) {
        abort();
    }
    free(copy);
    return 0;
}
