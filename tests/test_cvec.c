/* llama.cpp control vectors: written and read back, every malformed file refused with a message
 * naming the file and the tensor, allocation failures. */
#include "test.h"

/* A GGUF with the given tensors (F32 1-D of n values each, unless type/dims say otherwise); its path
 * stays valid until the next 16 calls. */
static const char *make_cvec(const char *file, const char *arch, const char *const *names, int n_tensors, int n,
                             int type, int n_dims, float fill) {
    ids_err err;
    ids_gguf_writer *w = ids_gguf_writer_new();
    if (arch) ids_gguf_writer_set_str(w, "general.architecture", arch, &err);
    float v[128];
    for (int i = 0; i < 128; i++) v[i] = fill + (float)i;
    for (int k = 0; k < n_tensors; k++) {
        int64_t ne[2] = {n, 2};
        ids_gguf_writer_add_tensor_f32(w, names[k], type, n_dims, ne, v, &err);
    }
    static char paths[16][512];
    static int slot;
    char *path = paths[slot++ % 16];
    snprintf(path, 512, "%s", t_tmp(file));
    ids_status st = ids_gguf_writer_write(w, path, &err);
    ids_gguf_writer_free(w);
    return st ? NULL : path;
}

TEST(cvec_write_read_back) {
    ids_err err;
    const int layers[3] = {2, 5, 3};
    float dirs[3 * 64];
    for (int i = 0; i < 3 * 64; i++) dirs[i] = (float)i * 0.25f - 7.0f;
    ids_prov *prov;
    REQUIRE_OK(ids_prov_new(&prov, "test", &err), err);
    ids_prov_finish(prov);
    const char *path = t_tmp("cv.gguf");
    CHECK_OK_ERR(ids_cvec_write(path, layers, dirs, 3, 64, "qwen2vl", prov, &err), err);
    ids_prov_free(prov);
    ids_gguf *g;
    REQUIRE_OK(ids_gguf_open(&g, path, &err), err);
    const char *s = NULL;
    CHECK(ids_gguf_get_str(g, "general.architecture", &s, NULL) == IDS_OK && !strcmp(s, "controlvector"));
    CHECK(ids_gguf_get_str(g, "controlvector.model_hint", &s, NULL) == IDS_OK && !strcmp(s, "qwen2vl"));
    int64_t lc = 0;
    CHECK(ids_gguf_get_i64(g, "controlvector.layer_count", &lc, NULL) == IDS_OK && lc == 4);
    CHECK(ids_gguf_find_tensor(g, "direction.1") && ids_gguf_find_tensor(g, "direction.4") &&
          ids_gguf_find_tensor(g, "direction.2") && !ids_gguf_find_tensor(g, "direction.5"));
    CHECK(ids_gguf_get_str(g, "idscope.provenance", &s, NULL) == IDS_OK && strstr(s, "\"command\":\"test\""));
    ids_gguf_close(g);
    ids_cvec c;
    REQUIRE_OK(ids_cvec_read(path, &c, &err), err);
    CHECK(c.n == 3 && c.n_embd == 64 && c.layer[0] == 2 && c.layer[1] == 3 && c.layer[2] == 5);
    CHECK(memcmp(c.dir, dirs, 64 * sizeof(float)) == 0);                 /* layer 2 */
    CHECK(memcmp(c.dir + 64, dirs + 128, 64 * sizeof(float)) == 0);       /* layer 3 */
    CHECK(memcmp(c.dir + 128, dirs + 64, 64 * sizeof(float)) == 0);       /* layer 5 */
    ids_cvec_free(&c);
    int n = 0, e = 0, *ls = NULL;
    float *ds = NULL;
    CHECK(ids_ffi_cvec_read(path, &n, &e, &ls, &ds) == IDS_OK && n == 3 && e == 64 && ls[2] == 5 && ds[64] == dirs[128]);
    ids_ffi_free(ls);
    ids_ffi_free(ds);
    CHECK(ids_ffi_cvec_read("/nonexistent/cv.gguf", &n, &e, &ls, &ds) == IDS_ERR_IO && !ls && !ds);
    CHECK(strstr(ids_ffi_error(), "/nonexistent/cv.gguf") != NULL);
    /* layers llama.cpp cannot take, and a layer twice */
    const int bad1[1] = {1}, bad2[2] = {3, 3};
    CHECK(ids_cvec_write(path, bad1, dirs, 1, 64, NULL, NULL, &err) == IDS_ERR_RANGE && strstr(err.msg, "layer 1"));
    CHECK(ids_cvec_write(path, bad2, dirs, 2, 64, NULL, NULL, &err) == IDS_ERR_ARG && strstr(err.msg, "layer 3 given twice"));
}

TEST(cvec_malformed_files) {
    ids_err err;
    ids_cvec c;
    const char *one[1] = {"direction.0"}, *bias[1] = {"bias.1"}, *two[2] = {"direction.1", "direction.2"};
    const char *big[1] = {"direction.99999999"}, *dup[2] = {"direction.1", "direction.01"};
    struct {
        const char *path, *want;
    } cases[] = {
        {make_cvec("zero.gguf", "controlvector", one, 1, 64, IDS_TYPE_F32, 1, 0), "layer 0 has no direction"},
        {make_cvec("bias.gguf", "controlvector", bias, 1, 64, IDS_TYPE_F32, 1, 0), "'bias.1' is not direction.K"},
        {make_cvec("huge.gguf", "controlvector", big, 1, 64, IDS_TYPE_F32, 1, 0), "not direction.K with a layer K in 1..1048576"},
        {make_cvec("f16.gguf", "controlvector", two, 1, 64, IDS_TYPE_F16, 1, 0), "is F16 with 1 dimensions, expected F32"},
        {make_cvec("2d.gguf", "controlvector", two, 1, 64, IDS_TYPE_F32, 2, 0), "is F32 with 2 dimensions"},
        {make_cvec("arch.gguf", "llama", two, 2, 64, IDS_TYPE_F32, 1, 0), "general.architecture is 'llama', expected 'controlvector'"},
        {make_cvec("empty.gguf", "controlvector", two, 0, 64, IDS_TYPE_F32, 1, 0), "no direction tensors"},
        {make_cvec("nan.gguf", "controlvector", two, 1, 64, IDS_TYPE_F32, 1, NAN), "value 0 is not a finite number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        REQUIRE(cases[i].path);
        err.msg[0] = 0;
        ids_status st = ids_cvec_read(cases[i].path, &c, &err);
        CHECKF(st != IDS_OK && strstr(err.msg, cases[i].want) && strstr(err.msg, cases[i].path) && !c.dir && !c.layer,
               "%s: %s", cases[i].path, err.msg);
    }
    /* directions of different lengths: the second one is named */
    ids_gguf_writer *w = ids_gguf_writer_new();
    float v[64] = {0};
    int64_t a = 64, b = 32;
    ids_gguf_writer_add_tensor_f32(w, "direction.1", IDS_TYPE_F32, 1, &a, v, &err);
    ids_gguf_writer_add_tensor_f32(w, "direction.2", IDS_TYPE_F32, 1, &b, v, &err);
    const char *mixed = t_tmp("mixed.gguf");
    REQUIRE_OK(ids_gguf_writer_write(w, mixed, &err), err);
    ids_gguf_writer_free(w);
    CHECK(ids_cvec_read(mixed, &c, &err) == IDS_ERR_FORMAT && strstr(err.msg, "'direction.2' has 32 values, expected 64"));
    /* two names for one layer add up, as in llama.cpp; no architecture key is accepted */
    const char *dp = make_cvec("dup.gguf", NULL, dup, 2, 16, IDS_TYPE_F32, 1, 1);
    REQUIRE(dp);
    REQUIRE_OK(ids_cvec_read(dp, &c, &err), err);
    CHECK(c.n == 1 && c.layer[0] == 2 && c.n_embd == 16 && c.dir[0] == 2.0f && c.dir[15] == 32.0f);
    ids_cvec_free(&c);
}

static ids_status cvec_cycle(void *ctx, ids_err *err) {
    ids_cvec c;
    ids_status st = ids_cvec_read(ctx, &c, err);
    ids_cvec_free(&c);
    return st;
}

TEST(cvec_read_allocation_failures) {
    ids_err err;
    const int layers[2] = {2, 4};
    float dirs[2 * 32] = {0};
    const char *path = t_tmp("alloc.gguf");
    REQUIRE_OK(ids_cvec_write(path, layers, dirs, 2, 32, NULL, NULL, &err), err);
    CHECK(CHECK_ALLOC_FAILURES(cvec_cycle, (void *)path, 200) > 2);
}
