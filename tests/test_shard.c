/* Shards, merge and kept items (src/exp/store.c) through the library, on the golden model: two
 * shards merged give the whole run's tensors bit for bit; a repeated or missing part is refused;
 * a run resumes from a torn item log and gives the same bits. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "idscope.h"

#include <sys/stat.h>
#include <unistd.h>

static bool same_tensor(const char *dir_a, const char *dir_b, const char *name) {
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/ids.safetensors", dir_a);
    snprintf(pb, sizeof pb, "%s/ids.safetensors", dir_b);
    ids_st_file *fa = NULL, *fb = NULL;
    bool same = ids_st_open(&fa, pa, NULL) == IDS_OK && ids_st_open(&fb, pb, NULL) == IDS_OK;
    const ids_st_tensor *a = same ? ids_st_find(fa, name) : NULL, *b = same ? ids_st_find(fb, name) : NULL;
    same = a && b && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
    ids_st_close(fa);
    ids_st_close(fb);
    return same;
}

static bool exists(const char *dir, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0;
}

typedef struct {
    ids_vlm *v;
    ids_catalog *cat;
    int objs[2];
    float sizes[1];
    ids_extract_opts o;
} shard_env;

static void env_init(shard_env *e, ids_err *err) {
    memset(e, 0, sizeof *e);
    if (ids_vlm_load(&e->v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), err)) return;
    e->cat = ids_catalog_new();
    e->objs[0] = ids_catalog_find(e->cat, "red circle", NULL);
    e->objs[1] = ids_catalog_find(e->cat, "blue square", NULL);
    e->sizes[0] = 0.9f;
    e->o = (ids_extract_opts){.exp = {.objects = e->objs, .n_objects = 2, .grid = 2, .n_threads = 1},
                              .sizes = e->sizes, .n_sizes = 1, .per_pair = true};
}

static ids_status run(shard_env *e, const char *dir, int index, int count, ids_err *err) {
    ids_extract_opts o = e->o;
    o.exp.items_dir = dir;
    o.exp.shard = (ids_shard){index, count};
    return ids_spatial_extract(e->v, e->cat, &o, dir, NULL, NULL, err);
}

TEST(shard_merge_equals_whole_run) {
    shard_env e;
    ids_err err;
    env_init(&e, &err);
    REQUIRE(e.v);
    const char *whole = t_tmp("sh_whole"), *a = t_tmp("sh_a"), *b = t_tmp("sh_b"), *m = t_tmp("sh_m");
    CHECK_OK_ERR(run(&e, whole, 0, 0, &err), err);
    CHECK(exists(whole, "ids.json") && !exists(whole, "items.bin"));
    CHECK_OK_ERR(run(&e, a, 0, 2, &err), err);
    CHECK_OK_ERR(run(&e, b, 1, 2, &err), err);
    CHECK(exists(a, "part.json") && exists(a, "items.bin") && !exists(a, "ids.json"));
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/items.bin", a);
    snprintf(pb, sizeof pb, "%s/items.bin", b);
    const char *parts[2] = {pa, pb}, *twice[2] = {pa, pa}, *one[1] = {pb};
    ids_extract_opts o = e.o;
    o.exp.items_dir = m, o.exp.parts = parts, o.exp.n_parts = 2;
    CHECK_OK_ERR(ids_spatial_extract(e.v, e.cat, &o, m, NULL, NULL, &err), err);
    CHECK(same_tensor(whole, m, "universal") && same_tensor(whole, m, "per_pair") && same_tensor(whole, m, "x_axis"));
    o.exp.parts = twice;
    CHECK_EQ_INT(ids_spatial_extract(e.v, e.cat, &o, t_tmp("sh_m2"), NULL, NULL, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "two parts"));
    o.exp.parts = one, o.exp.n_parts = 1;
    CHECK_EQ_INT(ids_spatial_extract(e.v, e.cat, &o, t_tmp("sh_m3"), NULL, NULL, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "none of the 1 parts"));
    /* a part of another request (other sizes) is refused, naming the option */
    float other[1] = {0.5f};
    o.exp.parts = parts, o.exp.n_parts = 2, o.sizes = other;
    CHECK_EQ_INT(ids_spatial_extract(e.v, e.cat, &o, t_tmp("sh_m4"), NULL, NULL, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "options.sizes"));
    ids_catalog_free(e.cat);
    ids_vlm_free(e.v);
}

TEST(kept_items_resume_after_a_torn_record) {
    shard_env e;
    ids_err err;
    env_init(&e, &err);
    REQUIRE(e.v);
    const char *whole = t_tmp("kr_whole"), *r = t_tmp("kr_resumed");
    CHECK_OK_ERR(run(&e, whole, 0, 0, &err), err);
    /* half of the items kept (shard 0 of 2), the last record cut short as a kill mid-write leaves it */
    CHECK_OK_ERR(run(&e, r, 0, 2, &err), err);
    char p[600];
    snprintf(p, sizeof p, "%s/items.bin", r);
    struct stat sb;
    REQUIRE(stat(p, &sb) == 0 && sb.st_size > 100);
    CHECK(truncate(p, sb.st_size - 7) == 0);
    CHECK_OK_ERR(run(&e, r, 0, 0, &err), err); /* the whole run in the same folder: resumes */
    CHECK(same_tensor(whole, r, "universal") && same_tensor(whole, r, "per_pair"));
    CHECK(!exists(r, "items.bin"));
    /* a shard index outside 0..N-1 */
    CHECK_EQ_INT(run(&e, t_tmp("kr_bad"), 2, 2, &err), IDS_ERR_ARG);
    ids_catalog_free(e.cat);
    ids_vlm_free(e.v);
}
