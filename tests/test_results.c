/* Result files and provenance: matching a stored result against a request, non-finite numbers as
 * null, the report and the experiments under injected allocation failures. */
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

static ids_prov *make_prov(const char *model, long n_items, int threads) {
    ids_prov *p = NULL;
    ids_err err;
    if (ids_prov_new(&p, "swap", &err)) return NULL;
    if (ids_prov_model(p, "text", model, 64, &err)) {
        ids_prov_free(p);
        return NULL;
    }
    const char *objs[2] = {"red circle", "blue square"};
    ids_prov_opt_strs(p, "objects", objs, 2);
    ids_prov_opt_int(p, "n_items", n_items);
    ids_prov_opt_num(p, "factor", 5.0);
    ids_prov_run(p, 1, threads, "f32");
    ids_prov_finish(p);
    return p;
}

/* The provenance as the JSON text a result file would hold. */
static char *prov_text(const ids_prov *p) {
    ids_swap_result r = {.n_layers = 0, .prov = (ids_prov *)p};
    const char *dir = t_tmp("provtext");
    ids_err err;
    if (ids_swap_write(dir, &r, &err)) return NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/swap.json", dir);
    return t_read_file(path, NULL);
}

TEST(prov_matches_names_the_key_that_differs) {
    const char *m1 = t_shared("golden/llava-tiny/text.gguf"), *m2 = t_shared("golden/qwen2vl-tiny/text.gguf");
    ids_prov *a = make_prov(m1, 8, 1), *same = make_prov(m1, 8, 2), *fewer = make_prov(m1, 2, 1), *other = make_prov(m2, 8, 1);
    REQUIRE(a && same && fewer && other);
    char *txt = prov_text(a);
    REQUIRE(txt);
    char why[300];
    CHECKF(ids_prov_matches(same, txt, why, sizeof why), "thread count and times must not matter: %s", why);
    CHECK(!ids_prov_matches(fewer, txt, why, sizeof why));
    CHECKF(strstr(why, "options.n_items") && strstr(why, "8 in the file") && strstr(why, "2 asked"), "why: %s", why);
    CHECK(!ids_prov_matches(other, txt, why, sizeof why));
    CHECKF(strstr(why, "models.text"), "why: %s", why);
    CHECK(!ids_prov_matches(a, "{\"format\": \"x\"}", why, sizeof why));
    CHECKF(strstr(why, "command"), "why: %s", why);
    CHECK(!ids_prov_matches(a, "not json", why, sizeof why));
    /* the stored provenance records the normalised absolute path, the size and a fingerprint */
    CHECK(strstr(txt, "\"fingerprint\":\t\"fnv1a64:") != NULL);
    CHECK(strstr(txt, "/golden/llava-tiny/text.gguf\"") && !strstr(txt, "/../"));
    CHECK(strstr(txt, ids_build_source()) != NULL);
    free(txt);
    ids_prov_free(a);
    ids_prov_free(same);
    ids_prov_free(fewer);
    ids_prov_free(other);
}

TEST(results_non_finite_numbers_are_null) {
    float left[3] = {NAN, 0.5f, INFINITY}, right[3] = {0.25f, NAN, 1}, diff[3] = {1, 2, 3}, pooled[3] = {0, 0, NAN};
    ids_swap_result r = {.n_layers = 1, .n_items = 2, .left = left, .right = right, .diff = diff, .diff_pooled = pooled};
    const char *dir = t_tmp("nanres");
    ids_err err;
    CHECK_OK(ids_swap_write(dir, &r, &err));
    char path[600];
    snprintf(path, sizeof path, "%s/swap.json", dir);
    char *txt = t_read_file(path, NULL);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    REQUIRE(j);
    const cJSON *row0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rows"), 0);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(row0, "left")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(row0, "right")) && cJSON_GetObjectItem(row0, "right")->valuedouble == 0.25);
    CHECK(!strstr(txt, "nan") && !strstr(txt, "inf"));
    cJSON_Delete(j);
    free(txt);
    snprintf(path, sizeof path, "%s/swap.csv", dir);
    txt = t_read_file(path, NULL);
    REQUIRE(txt);
    CHECKF(strstr(txt, "\n0,image,,0.250000,1.000000,0.000000\n") != NULL, "csv: %s", txt);
    free(txt);
}

TEST(result_paths_and_names) {
    char buf[64];
    CHECK(!strcmp(ids_result_name(IDS_RESULT_STEER_GRID, IDS_REL_NEAR_FAR, buf, sizeof buf), "steer-grid-near_far.json"));
    CHECK(!strcmp(ids_result_folder(IDS_RESULT_TEMPORAL_SWAP), "temporal"));
    char *p = ids_result_path("D", IDS_RESULT_SWAP_CONTROL, 0, true), *q = ids_result_path("D", IDS_RESULT_SCORE, 0, true);
    CHECK(p && !strcmp(p, "D/swap/swap-control.json"));
    CHECK(q && !strcmp(q, "D/score.json"));
    free(p);
    free(q);
    CHECK(ids_result_name(IDS_RESULT_COUNT, 0, buf, sizeof buf) == NULL);
}

/* A results folder with hand-made swap, steering, depth and temporal steering results. */
static const char *fake_results(void) {
    const char *dir = t_tmp("fake-results");
    static char keep[600];
    snprintf(keep, sizeof keep, "%s", dir);
    float a[9] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
    char sub[700];
    ids_err err;
    ids_swap_result sw = {.n_layers = 3, .n_items = 4, .left = a, .right = a, .diff = a, .diff_pooled = a};
    snprintf(sub, sizeof sub, "%s/swap", keep);
    if (ids_swap_write(sub, &sw, &err)) return NULL;
    ids_steer_result st = {.factor = 5, .layer_lo = 1, .n_band = 3, .n_items = 4, .rate_id = a, .rate_noise = a + 3};
    snprintf(sub, sizeof sub, "%s/steer", keep);
    if (ids_steer_write(sub, &st, &err)) return NULL;
    ids_steer_grid_result g = {.relation = IDS_REL_ABOVE_BELOW, .factor = 5, .grid = 3, .layer = 2, .n_items = 4, .delta = a};
    if (ids_steer_grid_write(sub, &g, &err)) return NULL;
    ids_depth_result d = {.factor = 5, .layer_lo = 1, .n_band = 2, .ab_down = a, .ab_up = a, .fb_down = a, .fb_up = a};
    snprintf(sub, sizeof sub, "%s/depth", keep);
    if (ids_depth_write(sub, &d, &err)) return NULL;
    float rho[2] = {1, NAN};
    ids_temporal_steer_result ts = {.factor = 5, .layer_lo = 1, .n_band = 2, .frames = 3, .n_items = 4, .null_frame = 2,
                                    .d_before = a, .d_after = a + 3, .rho_after = rho, .monotonic = 0.5f};
    snprintf(sub, sizeof sub, "%s/temporal", keep);
    if (ids_temporal_steer_write(sub, &ts, &err)) return NULL;
    return keep;
}

TEST(report_allocation_failures) {
    const char *dir = fake_results();
    REQUIRE(dir);
    int n_sec = 0;
    ids_err err;
    CHECK_OK(ids_report(dir, &n_sec, &err));
    CHECK_EQ_INT(n_sec, 5);
    int ok = 0, nomem = 0, other = 0;
    for (long n = 0; n < 4000 && !ok; n++) {
        ids_debug_fail_alloc_after(n);
        ids_status st = ids_report(dir, &n_sec, &err);
        ids_debug_fail_alloc_after(-1);
        if (st == IDS_OK) ok++;
        else if (st == IDS_ERR_NOMEM) nomem++;
        else other++, fprintf(stderr, "after %ld allocations: %s\n", n, err.msg);
    }
    CHECK(ok == 1 && nomem > 10);
    CHECK_EQ_INT(other, 0);
}

static ids_vlm *golden(void) {
    ids_vlm *v = NULL;
    ids_err err;
    if (ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err)) return NULL;
    return v;
}

/* Every allocation of a run failing in turn (then every 7th past the first 300, to stay quick):
 * each ends in IDS_OK or IDS_ERR_NOMEM with a message, never another error; no leak (ASan). */
typedef ids_status (*run_fn)(ids_vlm *v, ids_catalog *cat, const char *dir, ids_err *err);

static void fail_each_allocation(const char *what, run_fn fn) {
    ids_vlm *v = golden();
    REQUIRE(v);
    ids_catalog *cat = ids_catalog_new();
    const char *dir = t_tmp(what);
    int ok = 0, nomem = 0, other = 0;
    for (long n = 0; n < 200000 && !ok; n += n < 300 ? 1 : 7) {
        ids_err err = {0};
        ids_debug_fail_alloc_after(n);
        ids_status st = fn(v, cat, dir, &err);
        ids_debug_fail_alloc_after(-1);
        if (st == IDS_OK) ok++;
        else if (st == IDS_ERR_NOMEM && err.msg[0]) nomem++;
        else if (other++ < 3) fprintf(stderr, "%s, after %ld allocations: %s (%s)\n", what, n, ids_status_name(st), err.msg);
    }
    CHECKF(ok == 1 && nomem > 20, "%s: %d ok, %d out of memory", what, ok, nomem);
    CHECK_EQ_INT(other, 0);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

static ids_status run_swap(ids_vlm *v, ids_catalog *cat, const char *dir, ids_err *err) {
    ids_swap_opts o = {.exp = {.n_items = 1, .image_size = 64, .seed = 1, .n_threads = 1}};
    ids_swap_result r;
    ids_status st = ids_swap_run(v, cat, &o, false, &r, NULL, NULL, err);
    if (st) return st;
    st = ids_swap_write(dir, &r, err);
    ids_swap_result_free(&r);
    return st;
}

static ids_status run_temporal(ids_vlm *v, ids_catalog *cat, const char *dir, ids_err *err) {
    ids_temporal_opts o = {.exp = {.n_items = 1, .image_size = 64, .seed = 1, .n_threads = 1}, .frames = 3};
    return ids_temporal_extract(v, cat, &o, dir, NULL, NULL, err);
}

TEST(swap_allocation_failures) { fail_each_allocation("swap-nomem", run_swap); }
TEST(temporal_extract_allocation_failures) { fail_each_allocation("temporal-nomem", run_temporal); }

/* The report draws intervals as bands where a result carries them (KEY_ci), writes each figure as a
 * standalone SVG beside the page, and refuses a folder without results. */
TEST(report_bands_figures_and_empty_folder) {
    const char *dir = t_tmp("report-ci");
    char sub[1024], path[1100];
    snprintf(sub, sizeof sub, "%s/steer", dir);
    REQUIRE(mkdir(dir, 0755) == 0 && mkdir(sub, 0755) == 0);
    snprintf(path, sizeof path, "%s/steer-belief.json", sub);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"format\": \"idscope.steer-belief.v1\", \"best3_id\": 0.5, \"best3_noise\": 0.1, \"layers\": ["
          "{\"layer\": 1, \"id\": 0.5, \"id_ci\": [0.4, 0.6], \"noise\": 0.1}, "
          "{\"layer\": 2, \"id\": 0.7, \"id_ci\": [0.55, 0.8], \"noise\": 0.2}]}", f);
    fclose(f);
    int n = -1;
    ids_err err;
    CHECK_OK_ERR(ids_report(dir, &n, &err), err);
    CHECK_EQ_INT(n, 1);
    snprintf(path, sizeof path, "%s/report.html", dir);
    char *page = t_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/figures/steer-1.svg", dir);
    char *svg = t_read_file(path, NULL);
    REQUIRE(page && svg);
    CHECK(strstr(page, "class=\"band\"") && strstr(svg, "class=\"band\""));
    CHECK(strstr(svg, "<?xml") == svg && strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    CHECK(strstr(page, "href=\"figures/steer-1.svg\""));
    free(page);
    free(svg);
    const char *empty = t_tmp("report-empty");
    REQUIRE(mkdir(empty, 0755) == 0);
    CHECK(ids_report(empty, &n, &err) == IDS_ERR_NOT_FOUND && strstr(err.msg, "holds no idscope results"));
    snprintf(path, sizeof path, "%s/report.html", empty);
    CHECK(access(path, F_OK) != 0);
    CHECK(ids_report(t_tmp("report-none"), &n, &err) == IDS_ERR_IO && strstr(err.msg, "cannot open the results folder"));
}
