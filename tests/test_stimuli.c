/* Stimulus engine: determinism, ground truth against the pixels, variants, bad requests, COCO. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <cjson/cJSON.h>
#include <dirent.h>

static const uint8_t *pixel(const ids_image *im, float x, float y) {
    int ix = (int)x, iy = (int)y;
    if (ix >= im->w) ix = im->w - 1;
    if (iy >= im->h) iy = im->h - 1;
    return im->rgb + ((size_t)iy * im->w + ix) * 3;
}

static bool close_rgb(const uint8_t *a, const uint8_t *b, int tol) {
    for (int k = 0; k < 3; k++) if (abs((int)a[k] - (int)b[k]) > tol) return false;
    return true;
}

/* FNV-1a over every file of a folder tree, in name order; a manifest's "provenance" (start time,
 * duration, build) is left out: the stimuli themselves must repeat byte for byte. */
static uint64_t hash_dir(const char *dir, uint64_t h) {
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        if (nm[0] != '.') {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            for (const char *c = nm; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
            size_t len;
            char *d = t_read_file(p, &len);
            if (d) {
                const char *prov = strcmp(nm, "manifest.json") ? NULL : strstr(d, "\"provenance\"");
                if (prov) len = (size_t)(prov - d);
                for (size_t k = 0; k < len; k++) h = (h ^ (uint8_t)d[k]) * 1099511628211ull;
                free(d);
            } else {
                h = hash_dir(p, h);
            }
        }
        free(ents[i]);
    }
    free(ents);
    return h;
}

TEST(stim_same_seed_same_bytes) {
    ids_catalog *c = ids_catalog_new();
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 64;
    o.grid = 3;
    o.jitter_pos = 0.2f;
    o.jitter_rot = 30;
    ids_err err;
    const ids_set_kind kinds[3] = {IDS_SET_GRID, IDS_SET_VIDEO, IDS_SET_BETWEEN};
    for (int k = 0; k < 3; k++) {
        char d1[64], d2[64], d3[64];
        snprintf(d1, sizeof d1, "det1_%d", k);
        snprintf(d2, sizeof d2, "det2_%d", k);
        snprintf(d3, sizeof d3, "det3_%d", k);
        char p1[512], p2[512], p3[512];
        snprintf(p1, sizeof p1, "%s", t_tmp(d1));
        snprintf(p2, sizeof p2, "%s", t_tmp(d2));
        snprintf(p3, sizeof p3, "%s", t_tmp(d3));
        CHECK_OK_ERR(ids_stimuli_write(kinds[k], &o, c, p1, true, true, 12, NULL, NULL, &err), err);
        CHECK_OK_ERR(ids_stimuli_write(kinds[k], &o, c, p2, true, true, 12, NULL, NULL, &err), err);
        o.seed = 2;
        CHECK_OK_ERR(ids_stimuli_write(kinds[k], &o, c, p3, true, true, 12, NULL, NULL, &err), err);
        o.seed = 1;
        uint64_t h1 = hash_dir(p1, 14695981039346656037ull), h2 = hash_dir(p2, 14695981039346656037ull),
                 h3 = hash_dir(p3, 14695981039346656037ull);
        CHECKF(h1 == h2, "%s: same seed, different bytes", ids_set_name(kinds[k]));
        CHECKF(h1 != h3, "%s: another seed gave the same bytes", ids_set_name(kinds[k]));
    }
    ids_catalog_free(c);
}

/* Every grid item: each object's colour sits at its recorded centre; truth follows the cells. */
TEST(stim_grid_truth_matches_pixels) {
    ids_catalog *c = ids_catalog_new();
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 96;
    o.grid = 4;
    int n;
    ids_err err;
    CHECK_OK_ERR(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), err);
    CHECK_EQ_INT(n, 16 * 15 * 4);
    int bad = 0, lr = 0, lefts = 0;
    for (int i = 0; i < n; i += 7) {
        ids_stim s, m;
        REQUIRE_OK(ids_stim_make(IDS_SET_GRID, &o, c, i, &s, &err), err);
        for (int k = 0; k < 2; k++) {
            uint8_t col[3];
            ids_catalog_color(c, s.obj[k].obj, col);
            if (!close_rgb(pixel(&s.frames[0], s.obj[k].p.cx, s.obj[k].p.cy), col, 2)) bad++;
            /* the recorded cell contains the centre */
            if ((int)(s.obj[k].p.cx / 24) != s.obj[k].cell_x || (int)(s.obj[k].p.cy / 24) != s.obj[k].cell_y) bad++;
        }
        if (s.has[IDS_REL_LEFT_RIGHT]) {
            lr++;
            lefts += s.truth[IDS_REL_LEFT_RIGHT];
            if (s.truth[IDS_REL_LEFT_RIGHT] != (s.obj[0].cell_x < s.obj[1].cell_x)) bad++;
        } else if (s.obj[0].cell_x != s.obj[1].cell_x) {
            bad++;
        }
        /* the mirror swaps left/right truth, mirrors the pixels and keeps colours at the centres */
        REQUIRE_OK(ids_stim_mirror(&s, &m, &err), err);
        if (s.has[IDS_REL_LEFT_RIGHT] && m.truth[IDS_REL_LEFT_RIGHT] == s.truth[IDS_REL_LEFT_RIGHT]) bad++;
        if (m.truth[IDS_REL_ABOVE_BELOW] != s.truth[IDS_REL_ABOVE_BELOW]) bad++;
        for (int k = 0; k < 2; k++) {
            uint8_t col[3];
            ids_catalog_color(c, m.obj[k].obj, col);
            if (!close_rgb(pixel(&m.frames[0], m.obj[k].p.cx, m.obj[k].p.cy), col, 2)) bad++;
            if (m.obj[k].cell_x != 3 - s.obj[k].cell_x) bad++;
        }
        ids_stim_free(&m);
        /* recolouring changes colours and nothing else */
        REQUIRE_OK(ids_stim_recolor(&s, &o, c, &m, &err), err);
        for (int k = 0; k < 2; k++) {
            uint8_t a[3], b[3];
            ids_catalog_color(c, s.obj[k].obj, a);
            ids_catalog_color(c, m.obj[k].obj, b);
            if (close_rgb(a, b, 0) || m.obj[k].p.cx != s.obj[k].p.cx) bad++;
            if (strcmp(ids_catalog_word(c, m.obj[k].obj), ids_catalog_word(c, s.obj[k].obj))) bad++;
            if (!close_rgb(pixel(&m.frames[0], m.obj[k].p.cx, m.obj[k].p.cy), b, 2)) bad++;
        }
        if (m.truth[IDS_REL_LEFT_RIGHT] != s.truth[IDS_REL_LEFT_RIGHT]) bad++;
        ids_stim_free(&m);
        ids_stim_free(&s);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(lr > 0 && lefts > 0 && lefts < lr); /* both answers occur */
    ids_catalog_free(c);
}

TEST(stim_video_objects_from_their_frame_on) {
    ids_catalog *c = ids_catalog_new();
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 64;
    int n, bad = 0;
    ids_err err;
    CHECK_OK_ERR(ids_stim_count(IDS_SET_VIDEO, &o, c, &n, &err), err);
    CHECK_EQ_INT(n, 7 * 6);
    for (int i = 0; i < n; i++) {
        ids_stim s;
        REQUIRE_OK(ids_stim_make(IDS_SET_VIDEO, &o, c, i, &s, &err), err);
        CHECK_EQ_INT(s.n_frames, 8);
        const uint8_t black[3] = {0, 0, 0};
        for (int k = 0; k < 2; k++) {
            uint8_t col[3];
            ids_catalog_color(c, s.obj[k].obj, col);
            if (s.obj[k].appear < 1 || s.obj[k].appear > 7) bad++;
            for (int f = 0; f < 8; f++) {
                const uint8_t *px = pixel(&s.frames[f], s.obj[k].p.cx, s.obj[k].p.cy);
                if (!close_rgb(px, f >= s.obj[k].appear ? col : black, 2)) bad++;
            }
        }
        if (s.truth[IDS_REL_BEFORE_AFTER] != (s.obj[0].appear < s.obj[1].appear)) bad++;
        ids_stim_free(&s);
    }
    CHECK_EQ_INT(bad, 0);
    ids_catalog_free(c);
}

TEST(stim_depth_nearfar_between_truth) {
    ids_catalog *c = ids_catalog_new();
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    ids_err err;
    int n, bad = 0, fronts = 0, nears = 0, yes = 0;
    CHECK_OK_ERR(ids_stim_count(IDS_SET_DEPTH, &o, c, &n, &err), err);
    for (int i = 0; i < n; i++) {
        ids_stim s;
        REQUIRE_OK(ids_stim_make(IDS_SET_DEPTH, &o, c, i, &s, &err), err);
        /* nearer objects are bigger and lower in the picture */
        bool a_front = s.obj[0].depth < s.obj[1].depth;
        if (s.truth[IDS_REL_FRONT_BEHIND] != a_front) bad++;
        if ((s.obj[0].p.size > s.obj[1].p.size) != a_front) bad++;
        if (s.truth[IDS_REL_ABOVE_BELOW] == a_front) bad++;
        fronts += a_front;
        for (int k = 0; k < 2; k++) {
            uint8_t col[3];
            ids_catalog_color(c, s.obj[k].obj, col);
            if (!close_rgb(pixel(&s.frames[0], s.obj[k].p.cx, s.obj[k].p.cy), col, 2)) bad++;
        }
        ids_stim_free(&s);
    }
    CHECK(fronts > 0 && fronts < n);
    CHECK_OK_ERR(ids_stim_count(IDS_SET_NEARFAR, &o, c, &n, &err), err);
    for (int i = 0; i < n; i++) {
        ids_stim s;
        REQUIRE_OK(ids_stim_make(IDS_SET_NEARFAR, &o, c, i, &s, &err), err);
        float d = hypotf(s.obj[0].p.cx - s.obj[1].p.cx, s.obj[0].p.cy - s.obj[1].p.cy);
        if (s.truth[IDS_REL_NEAR_FAR] != (d < 0.35f * 224)) bad++;
        nears += s.truth[IDS_REL_NEAR_FAR];
        ids_stim_free(&s);
    }
    CHECK(nears > 0 && nears < n);
    CHECK_OK_ERR(ids_stim_count(IDS_SET_BETWEEN, &o, c, &n, &err), err);
    for (int i = 0; i < n; i++) {
        ids_stim s;
        REQUIRE_OK(ids_stim_make(IDS_SET_BETWEEN, &o, c, i, &s, &err), err);
        CHECK(s.has[IDS_REL_BETWEEN] && !s.has[IDS_REL_LEFT_RIGHT]);
        yes += s.truth[IDS_REL_BETWEEN];
        ids_stim_free(&s);
    }
    CHECK(yes > n / 4 && yes < 3 * n / 4);
    CHECK_EQ_INT(bad, 0);
    ids_catalog_free(c);
}

TEST(stim_impossible_requests) {
    ids_catalog *c = ids_catalog_new();
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    ids_err err;
    int n;
    o.grid = 1;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "two objects") != NULL);
    o.grid = 8;
    o.image_size = 24;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "does not fit") != NULL);
    ids_stim_default_opts(&o);
    CHECK_EQ_INT(ids_catalog_find(c, "plaid unicorn", &err), -1);
    CHECK(strstr(err.msg, "plaid unicorn") && strstr(err.msg, "circle"));
    int twice[2] = {ids_catalog_find(c, "red circle", NULL), ids_catalog_find(c, "red circle", NULL)};
    o.objects = twice;
    o.n_objects = 2;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), IDS_ERR_ARG);
    int same_word[2] = {ids_catalog_find(c, "red circle", NULL), ids_catalog_find(c, "blue circle", NULL)};
    o.objects = same_word;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "same word") != NULL);
    o.objects = NULL;
    o.n_objects = 0;
    float big[1] = {1.5f};
    o.sizes = big;
    o.n_sizes = 1;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), IDS_ERR_RANGE);
    ids_stim_default_opts(&o);
    o.frames = 2;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_VIDEO, &o, c, &n, &err), IDS_ERR_RANGE);
    ids_stim_default_opts(&o);
    int two[2] = {0, 11};
    o.objects = two;
    o.n_objects = 2;
    CHECK_EQ_INT(ids_stim_count(IDS_SET_BETWEEN, &o, c, &n, &err), IDS_ERR_ARG);
    ids_stim s;
    ids_stim_default_opts(&o);
    CHECK_EQ_INT(ids_stim_make(IDS_SET_GRID, &o, c, 100000, &s, &err), IDS_ERR_RANGE);
    /* all ordered pairs of 3 objects */
    int three[3] = {0, 11, 22};
    o.objects = three;
    o.n_objects = 3;
    o.all_pairs = true;
    CHECK_OK_ERR(ids_stim_count(IDS_SET_GRID, &o, c, &n, &err), err);
    CHECK_EQ_INT(n, 6 * 240 * 4);
    ids_catalog_free(c);
}

TEST(stim_user_sprite) {
    ids_catalog *c = ids_catalog_new();
    ids_err err;
    /* a 8x8 sprite: opaque green with a transparent border */
    ids_image im;
    CHECK_OK_ERR(ids_image_new(&im, 8, 8, (const uint8_t[3]){10, 200, 30}, &err), err);
    CHECK_OK_ERR(ids_image_write_png(&im, t_tmp("tiny_frog.png"), &err), err);
    ids_image_free(&im);
    CHECK_OK_ERR(ids_catalog_add_sprite(c, t_tmp("tiny_frog.png"), &err), err);
    int frog = ids_catalog_find(c, "tiny frog", &err);
    CHECK(frog >= 0);
    CHECK(!strcmp(ids_catalog_word(c, frog), "frog"));
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 64;
    int objs[2] = {frog, ids_catalog_find(c, "blue square", NULL)};
    o.objects = objs;
    o.n_objects = 2;
    ids_stim s;
    CHECK_OK_ERR(ids_stim_make(IDS_SET_GRID, &o, c, 5, &s, &err), err);
    CHECK(close_rgb(pixel(&s.frames[0], s.obj[0].p.cx, s.obj[0].p.cy), (const uint8_t[3]){10, 200, 30}, 2));
    ids_stim_free(&s);
    CHECK_EQ_INT(ids_catalog_add_sprite(c, "/nonexistent/cat.png", &err), IDS_ERR_IO);
    ids_catalog_free(c);
}

TEST(stim_coco_spatial) {
    ids_err err;
    int ok = 0, skipped = 0;
    const char *out = t_tmp("coco.json");
    CHECK_OK_ERR(ids_coco_spatial_convert("tests/fixtures/coco/coco_qa_two_obj.json", "/data/val2017", out, &ok,
                                          &skipped, &err), err);
    CHECK_EQ_INT(ok, 3);
    CHECK_EQ_INT(skipped, 4);
    char *js = t_read_file(out, NULL);
    cJSON *root = cJSON_Parse(js);
    cJSON *recs = cJSON_GetObjectItem(root, "records");
    REQUIRE(cJSON_GetArraySize(recs) == 3);
    cJSON *r0 = cJSON_GetArrayItem(recs, 0);
    CHECK(!strcmp(cJSON_GetObjectItem(r0, "file")->valuestring, "/data/val2017/000000397133.jpg"));
    cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(r0, "questions"), "left_right");
    CHECK(!strcmp(cJSON_GetObjectItem(q, "question")->valuestring, "Is the dog to the left or right of the person?"));
    CHECK(!strcmp(cJSON_GetObjectItem(q, "answer")->valuestring, "left"));
    cJSON *r2 = cJSON_GetArrayItem(recs, 2);
    cJSON *q2 = cJSON_GetObjectItem(cJSON_GetObjectItem(r2, "questions"), "above_below");
    CHECK(!strcmp(cJSON_GetObjectItem(q2, "answer")->valuestring, "below"));
    CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r2, "objects"), 1), "name")->valuestring,
                  "traffic light"));
    cJSON *sk = cJSON_GetObjectItem(root, "skipped");
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(sk, 0), "index")->valueint, 2);
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(sk, 3), "index")->valueint, 6);
    cJSON_Delete(root);
    free(js);
    CHECK_EQ_INT(ids_coco_spatial_convert("/nonexistent.json", "x", out, &ok, &skipped, &err), IDS_ERR_IO);
}

typedef struct {
    const ids_catalog *c;
    const ids_stim_opts *o;
    ids_set_kind kind;
    const char *dir;
} stim_case;

/* One item of the set, its mirror and its recoloured variant. */
static ids_status stim_variants(void *ctx, ids_err *err) {
    const stim_case *k = ctx;
    ids_stim s, m, r;
    ids_status st = ids_stim_make(k->kind, k->o, k->c, 3, &s, err);
    if (st) return st;
    if (!(st = ids_stim_mirror(&s, &m, err))) ids_stim_free(&m);
    if (!st && !(st = ids_stim_recolor(&s, k->o, k->c, &r, err))) ids_stim_free(&r);
    ids_stim_free(&s);
    return st;
}

/* One item of the set with its variants written out (PNGs and the manifest). */
static ids_status stim_write(void *ctx, ids_err *err) {
    const stim_case *k = ctx;
    return ids_stimuli_write(k->kind, k->o, k->c, k->dir, true, true, 1, NULL, NULL, err);
}

/* Making stimuli (every set, on a background image, with variants) and writing a set with each
 * allocation failing in turn. */
TEST(stim_allocation_failures) {
    ids_catalog *c = ids_catalog_new();
    REQUIRE(c);
    ids_err err;
    ids_image bg;
    const uint8_t grey[3] = {40, 60, 80};
    REQUIRE_OK(ids_image_new(&bg, 20, 12, grey, &err), err);
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 48;
    o.frames = 4;
    o.jitter_pos = 0.1f;
    for (int kind = 0; kind < IDS_SET_COUNT; kind++) {
        o.bg_image = kind == IDS_SET_DEPTH ? &bg : NULL;
        stim_case k = {c, &o, (ids_set_kind)kind, NULL};
        long n = CHECK_ALLOC_FAILURES(stim_variants, &k, 200);
        CHECKF(n > 2, "%s: %ld allocations", ids_set_name((ids_set_kind)kind), n);
    }
    o.bg_image = NULL;
    stim_case k = {c, &o, IDS_SET_GRID, t_tmp("alloc-grid")};
    CHECK(CHECK_ALLOC_FAILURES(stim_write, &k, 200) > 5);
    ids_image_free(&bg);
    ids_catalog_free(c);
}

/* Shards of a set joined (ids_stimuli_merge) equal the whole set byte for byte, the manifest up to
 * its provenance (video frames and variants included); so do COCO-format shards, whose categories
 * each shard numbers in its own order; parts in the wrong order or of another set are refused. */
TEST(stim_shards_merged_equal_whole) {
    ids_catalog *c = ids_catalog_new();
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 48;
    o.grid = 2;
    o.frames = 4;
    ids_err err;
    const ids_set_kind kinds[2] = {IDS_SET_GRID, IDS_SET_VIDEO};
    char parts[3][512], whole[512], merged[512];
    const char *pp[3] = {parts[0], parts[1], parts[2]};
    for (int k = 0; k < 2; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "shw_%d", k), snprintf(whole, sizeof whole, "%s", t_tmp(nm));
        snprintf(nm, sizeof nm, "shm_%d", k), snprintf(merged, sizeof merged, "%s", t_tmp(nm));
        CHECK_OK_ERR(ids_stimuli_write(kinds[k], &o, c, whole, true, k == 0, 7, NULL, NULL, &err), err);
        for (int p = 0; p < 3; p++) {
            snprintf(nm, sizeof nm, "shp_%d_%d", k, p), snprintf(parts[p], sizeof parts[p], "%s", t_tmp(nm));
            CHECK_OK_ERR(ids_stimuli_write_part(kinds[k], &o, c, parts[p], true, k == 0, 7, p, 3, NULL, NULL, &err), err);
        }
        CHECK_OK_ERR(ids_stimuli_merge(pp, 3, merged, &err), err);
        CHECKF(hash_dir(whole, 14695981039346656037ull) == hash_dir(merged, 14695981039346656037ull),
               "%s: the joined shards differ from the whole set", ids_set_name(kinds[k]));
        const char *swapped[3] = {parts[1], parts[0], parts[2]};
        CHECK_EQ_INT(ids_stimuli_merge(swapped, 3, t_tmp("shm_bad"), &err), IDS_ERR_ARG);
        CHECK(strstr(err.msg, "is shard 1/3, expected shard 0/3"));
    }
    const char *mixed[3] = {t_tmp("shp_0_0"), t_tmp("shp_1_1"), t_tmp("shp_0_2")};
    char m0[512], m1[512], m2[512];
    snprintf(m0, sizeof m0, "%s", mixed[0]), snprintf(m1, sizeof m1, "%s", mixed[1]), snprintf(m2, sizeof m2, "%s", mixed[2]);
    const char *mix[3] = {m0, m1, m2};
    CHECK_EQ_INT(ids_stimuli_merge(mix, 3, t_tmp("shm_mix"), &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "not parts of one set"));
    CHECK_EQ_INT(ids_stimuli_write_part(IDS_SET_GRID, &o, c, t_tmp("shp_bad"), false, false, 7, 3, 3, NULL, NULL, &err), IDS_ERR_ARG);
    /* COCO format: three objects, every ordered pair, 12 items a pair; of 13 shards of 14 items, shard
     * 12 holds item 12 only (the second pair) and numbers its categories in another order */
    int objs[3] = {ids_catalog_find(c, "red circle", NULL), ids_catalog_find(c, "blue square", NULL),
                   ids_catalog_find(c, "green triangle", NULL)};
    const float one_size[1] = {1};
    o.objects = objs, o.n_objects = 3, o.all_pairs = true, o.sizes = one_size, o.n_sizes = 1;
    snprintf(whole, sizeof whole, "%s", t_tmp("shw_coco"));
    snprintf(merged, sizeof merged, "%s", t_tmp("shm_coco"));
    CHECK_OK_ERR(ids_stimuli_write_coco(&o, c, whole, 14, NULL, NULL, &err), err);
    char cparts[13][512];
    const char *cp[13];
    for (int p = 0; p < 13; p++) {
        char nm[64];
        snprintf(nm, sizeof nm, "shp_coco_%d", p), snprintf(cparts[p], sizeof cparts[p], "%s", t_tmp(nm));
        cp[p] = cparts[p];
        CHECK_OK_ERR(ids_stimuli_write_coco_part(&o, c, cparts[p], 14, p, 13, NULL, NULL, &err), err);
    }
    CHECK_OK_ERR(ids_stimuli_merge(cp, 13, merged, &err), err);
    CHECK(hash_dir(whole, 14695981039346656037ull) == hash_dir(merged, 14695981039346656037ull));
    char pa[600];
    snprintf(pa, sizeof pa, "%s/instances.json", cparts[12]);
    size_t len;
    char *inst = t_read_file(pa, &len);
    CHECK(inst && strstr(inst, "\"categories\":[{\"id\":1,\"name\":\"red circle\"},{\"id\":2,\"name\":\"green triangle\"}]"));
    free(inst);
    snprintf(pa, sizeof pa, "%s/instances.json", merged);
    inst = t_read_file(pa, &len);
    CHECK(inst && strstr(inst, "{\"id\":2,\"name\":\"blue square\"},{\"id\":3,\"name\":\"green triangle\"}]"));
    free(inst);
    const char *t = cp[1];
    cp[1] = cp[2], cp[2] = t;
    CHECK_EQ_INT(ids_stimuli_merge(cp, 13, t_tmp("shm_coco_bad"), &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "image 2 is not where shard 1/13 puts it"));
    ids_catalog_free(c);
}
