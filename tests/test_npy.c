/* .npy reading and writing; .npy and safetensors files under allocation failures. */
#include "test.h"

TEST(npy_roundtrip) {
    float x[6] = {1, -2, 3.5f, 0, 1e-20f, 7};
    int64_t shape[2] = {2, 3};
    ids_err err;
    const char *p = t_tmp("a.npy");
    CHECK_OK_ERR(ids_npy_write(p, "<f4", 2, shape, x, &err), err);
    ids_npy a;
    CHECK_OK_ERR(ids_npy_read(p, &a, &err), err);
    CHECK(!strcmp(a.dtype, "<f4"));
    CHECK_EQ_INT(a.ndim, 2);
    CHECK_EQ_INT(a.shape[0], 2);
    CHECK_EQ_INT(a.shape[1], 3);
    CHECK_EQ_INT(a.nbytes, 24);
    CHECK(memcmp(a.data, x, 24) == 0);
    ids_npy_free(&a);
    /* header is 64-byte aligned, as NumPy writes it */
    size_t len;
    char *raw = t_read_file(p, &len);
    REQUIRE(raw);
    CHECK_EQ_INT((len - 24) % 64, 0);
    free(raw);
    int64_t one = 4;
    int32_t iv[4] = {-1, 0, 1, 2};
    CHECK_OK_ERR(ids_npy_write(p, "<i4", 1, &one, iv, &err), err);
    CHECK_OK_ERR(ids_npy_read(p, &a, &err), err);
    CHECK(a.ndim == 1 && a.shape[0] == 4 && ((int32_t *)a.data)[0] == -1);
    ids_npy_free(&a);
}

TEST(npy_read_golden_shapes) {
    ids_npy a;
    ids_err err;
    REQUIRE_OK(ids_npy_read(t_shared("golden/llava-tiny/expected/resid.npy"), &a, &err), err);
    CHECK(!strcmp(a.dtype, "<f4"));
    CHECK_EQ_INT(a.ndim, 3);
    CHECK(a.shape[0] == 5 && a.shape[1] == 42 && a.shape[2] == 64);
    ids_npy_free(&a);
}

TEST(npy_rejects_bad_files) {
    ids_npy a;
    ids_err err;
    const char *p = t_tmp("bad.npy");
    FILE *f = fopen(p, "wb");
    fputs("\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", f);
    fclose(f);
    CHECK_EQ_INT(ids_npy_read(p, &a, &err), IDS_ERR_FORMAT); /* data missing */
    CHECK(strstr(err.msg, "bad.npy") != NULL);
    CHECK_EQ_INT(ids_npy_read("/nonexistent.npy", &a, &err), IDS_ERR_IO);
}

static ids_status npy_read_free(void *path, ids_err *err) {
    ids_npy a;
    ids_status st = ids_npy_read(path, &a, err);
    if (!st) ids_npy_free(&a);
    return st;
}

typedef struct {
    const char *path;
    const float *x;
} st_case;

/* Write a safetensors file (three tensors and metadata), then read it back and look one up. */
static ids_status st_write_read(void *ctx, ids_err *err) {
    const st_case *c = ctx;
    ids_st_writer *w = ids_st_writer_new();
    if (!w) { /* the constructor reports failure by NULL */
        snprintf(err->msg, sizeof err->msg, "safetensors writer: out of memory");
        return IDS_ERR_NOMEM;
    }
    int64_t sh[2] = {3, 4}, one = 12;
    ids_status st = ids_st_writer_add(w, "a", "F32", 2, sh, c->x, err);
    if (!st) st = ids_st_writer_add(w, "b.long.name", "F32", 1, &one, c->x, err);
    if (!st) st = ids_st_writer_add(w, "c", "I32", 1, &one, c->x, err);
    if (!st) st = ids_st_writer_meta(w, "format", "test.v1", err);
    if (!st) st = ids_st_writer_meta(w, "note", "allocation failures", err);
    if (!st) st = ids_st_writer_write(w, c->path, err);
    ids_st_writer_free(w);
    ids_st_file *f = NULL;
    if (!st) st = ids_st_open(&f, c->path, err);
    if (!st && (ids_st_count(f) != 3 || !ids_st_find(f, "b.long.name") || !ids_st_meta(f, "note")))
        st = IDS_ERR_FORMAT;
    ids_st_close(f);
    return st;
}

/* .npy and safetensors reading (and safetensors writing) with each allocation failing in turn. */
TEST(npy_safetensors_allocation_failures) {
    char path[512];
    snprintf(path, sizeof path, "%s", t_shared("golden/llava-tiny/expected/resid.npy"));
    CHECK(CHECK_ALLOC_FAILURES(npy_read_free, path, 100) > 0);
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i * 0.5f;
    st_case c = {t_tmp("alloc.safetensors"), x};
    CHECK(CHECK_ALLOC_FAILURES(st_write_read, &c, 200) > 3);
}
