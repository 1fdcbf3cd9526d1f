/* The flat API of the experiments and the stimulus engine (ids_ffi_exp_run, ids_ffi_stimulus): the
 * same numbers and pixels as the structured API, the command's defaults, errors as messages,
 * allocation failures. */
#include "test.h"

#define GOLD(f) t_shared("golden/llava-tiny/" f)

/* The array named `name` of r, or NULL. */
static const void *array_of(const ids_ffi_result *r, const char *name, int *dtype, int *ndim, long long *shape) {
    for (int i = 0; i < ids_ffi_result_n_arrays(r); i++) {
        const char *nm;
        const void *data;
        if (ids_ffi_result_array(r, i, &nm, dtype, ndim, shape, &data) == IDS_OK && !strcmp(nm, name)) return data;
    }
    return NULL;
}

TEST(ffi_exp_stimulus_equals_stim_make) {
    const char *keys[] = {"set-kind", "size", "grid", "jitter", "seed"};
    const char *vals[] = {"grid", "80", "3", "0.2", "5"};
    ids_ffi_result *r = NULL;
    REQUIRE(ids_ffi_stimulus(5, keys, vals, 7, 1, &r) == IDS_OK);
    ids_catalog *cat = ids_catalog_new();
    ids_stim_opts so;
    ids_stim_default_opts(&so);
    so.image_size = 80, so.grid = 3, so.jitter_pos = 0.2f, so.seed = 5;
    ids_stim s = {0}, m = {0};
    ids_err err;
    REQUIRE_OK(ids_stim_make(IDS_SET_GRID, &so, cat, 7, &s, &err), err);
    REQUIRE_OK(ids_stim_mirror(&s, &m, &err), err);
    int dt, nd;
    long long sh[IDS_FFI_MAX_DIMS];
    const uint8_t *px = array_of(r, "frames", &dt, &nd, sh);
    REQUIRE(px && dt == IDS_FFI_U8 && nd == 4);
    CHECK(sh[0] == 1 && sh[1] == 80 && sh[2] == 80 && sh[3] == 3);
    CHECK(memcmp(px, m.frames[0].rgb, 80 * 80 * 3) == 0);              /* the mirror, as ids_stim_mirror draws it */
    CHECK(memcmp(px, s.frames[0].rgb, 80 * 80 * 3) != 0);
    const char *j = ids_ffi_result_json(r);
    CHECKF(strstr(j, "\"mirrored\":true") && strstr(j, "\"name\":\"red circle\"") && strstr(j, "\"count\":288"), "%s", j);
    ids_stim_free(&s);
    ids_stim_free(&m);
    ids_catalog_free(cat);
    ids_ffi_result_free(r);
    const char *bad_v[] = {"grid", "80", "0", "0.2", "5"};
    CHECK(ids_ffi_stimulus(5, keys, bad_v, 0, 0, &r) == IDS_ERR_RANGE && !r);
    CHECKF(strstr(ids_ffi_error(), "grid = '0'"), "%s", ids_ffi_error());
    CHECK(ids_ffi_stimulus(5, keys, vals, 288, 0, &r) == IDS_ERR_RANGE && strstr(ids_ffi_error(), "0..287"));
}

/* swap through the flat API equals ids_swap_run with the CLI's defaults (grid 4, seed 1). */
TEST(ffi_exp_swap_equals_swap_run) {
    ids_vlm *v = NULL;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf"), &err), err);
    const char *keys[] = {"n", "threads", "seed"}, *vals[] = {"1", "2", "4"};
    ids_ffi_result *r = NULL;
    REQUIRE(ids_ffi_exp_run(v, "swap", 3, keys, vals, NULL, &r) == IDS_OK);
    ids_catalog *cat = ids_catalog_new();
    ids_swap_opts o = {.exp = ids_exp_default()};
    o.exp.n_items = 1, o.exp.n_threads = 2, o.exp.seed = 4, o.exp.grid = 4;
    ids_swap_result s = {0};
    REQUIRE_OK(ids_swap_run(v, cat, &o, false, &s, NULL, NULL, &err), err);
    int dt, nd;
    long long sh[IDS_FFI_MAX_DIMS];
    const float *diff = array_of(r, "diff", &dt, &nd, sh);
    REQUIRE(diff && dt == IDS_FFI_F32 && nd == 2 && sh[0] == s.n_layers && sh[1] == IDS_SWAP_SET_COUNT);
    CHECK(memcmp(diff, s.diff, sizeof(float) * (size_t)(s.n_layers * IDS_SWAP_SET_COUNT)) == 0);
    CHECK(strstr(ids_ffi_result_json(r), "\"format\":") != NULL);
    bool csv = false;
    for (int i = 0; i < ids_ffi_result_n_files(r); i++) {
        const char *name, *data;
        long long len;
        CHECK(ids_ffi_result_file(r, i, &name, &data, &len) == IDS_OK);
        csv |= !strcmp(name, "swap.csv") && len > 20 && !strncmp(data, "layer,set,left", 14);
    }
    CHECK(csv);
    ids_swap_result_free(&s);
    ids_ffi_result_free(r);
    const char *bad_k[] = {"n"}, *bad_v[] = {"0"};
    CHECK(ids_ffi_exp_run(v, "swap", 1, bad_k, bad_v, NULL, &r) == IDS_ERR_RANGE && !r);
    CHECKF(strstr(ids_ffi_error(), "swap: n = '0'"), "%s", ids_ffi_error());
    CHECK(ids_ffi_exp_run(v, "fly", 0, NULL, NULL, NULL, &r) == IDS_ERR_ARG && strstr(ids_ffi_error(), "no experiment 'fly'"));
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

typedef struct {
    const ids_vlm *v;
} exp_alloc_case;

static ids_status exp_cycle(void *ctx, ids_err *err) {
    exp_alloc_case *c = ctx;
    const char *keys[] = {"task", "n", "threads"}, *vals[] = {"left-right", "1", "1"};
    const char *skeys[] = {"set-kind", "size"}, *svals[] = {"video", "32"};
    ids_ffi_result *r = NULL, *s = NULL;
    ids_status st = ids_ffi_exp_run(c->v, "eval", 3, keys, vals, NULL, &r);
    if (!st) st = ids_ffi_stimulus(2, skeys, svals, 1, 0, &s);
    if (st) snprintf(err->msg, sizeof err->msg, "%s", ids_ffi_error());
    ids_ffi_result_free(r);
    ids_ffi_result_free(s);
    return st;
}

/* eval and a stimulus through the flat API with each allocation failing in turn: NOMEM, no leak. */
TEST(ffi_exp_allocation_failures) {
    ids_vlm *v = NULL;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, GOLD("text.gguf"), GOLD("mmproj.gguf"), &err), err);
    exp_alloc_case c = {v};
    long n = CHECK_ALLOC_FAILURES(exp_cycle, &c, 3000);
    CHECK(n > 10);
    ids_vlm_free(v);
}
