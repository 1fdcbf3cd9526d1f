/* .npy reading and writing. */
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
