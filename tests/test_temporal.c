/* Temporal IDs: rank correlation and 1-D PCA on known answers, the time-reversal pairing of a
 * video's rows, and weight-independent checks of extraction, patching and the null steer on the
 * golden LLaVA-shaped model. */
#include "test.h"

#include <math.h>

TEST(temporal_spearman_known_values) {
    const double a[5] = {1, 2, 3, 4, 5}, b[5] = {10, 20, 30, 40, 50}, c[5] = {5, 4, 3, 2, 1};
    const double d[5] = {1, 3, 2, 5, 4}, e[5] = {2, 2, 2, 2, 2};
    CHECK(fabs(ids_spearman(a, b, 5) - 1) < 1e-12);
    CHECK(fabs(ids_spearman(a, c, 5) + 1) < 1e-12);
    CHECK(fabs(ids_spearman(a, d, 5) - 0.8) < 1e-12); /* 1 - 6 * 4 / (5 * 24) */
    CHECK(isnan(ids_spearman(a, e, 5)));
    const double t1[4] = {1, 2, 2, 3}, t2[4] = {1, 2, 3, 4}; /* ties get the mean rank */
    CHECK(fabs(ids_spearman(t1, t2, 4) - 0.9486832980505138) < 1e-12);
}

TEST(temporal_layer_stats_linear_and_scrambled) {
    enum { F = 7, E = 12 };
    float t[F * E], coord[F];
    double var, rho;
    ids_err err;
    /* IDs linear in the frame (with the time running backwards in the vector): one component, in order */
    for (int f = 0; f < F; f++)
        for (int e = 0; e < E; e++) t[f * E + e] = (float)(-(f - 3) * (0.5 + 0.1 * e) + 7.0);
    CHECK_OK(ids_temporal_layer_stats(t, F, E, coord, &var, &rho, &err));
    CHECK(fabs(var - 1) < 1e-9);
    CHECK(fabs(rho - 1) < 1e-12);
    for (int f = 1; f < F; f++) CHECK(fabs((coord[f] - coord[f - 1]) - (coord[1] - coord[0])) < 1e-4 && coord[f] > coord[f - 1]);
    /* frames along the line in a scrambled order: the rank correlation of that order */
    const int order[F] = {0, 2, 1, 3, 5, 4, 6};
    for (int f = 0; f < F; f++)
        for (int e = 0; e < E; e++) t[f * E + e] = (float)(order[f] * (0.5 + 0.1 * e));
    CHECK_OK(ids_temporal_layer_stats(t, F, E, coord, &var, &rho, &err));
    double o[F], i[F];
    for (int f = 0; f < F; f++) o[f] = order[f], i[f] = f;
    CHECK(fabs(var - 1) < 1e-9);
    CHECK(fabs(rho - ids_spearman(o, i, F)) < 1e-12 && rho < 1);
    /* two equal halves in orthogonal directions: PC1 holds half the variance */
    for (int f = 0; f < F; f++)
        for (int e = 0; e < E; e++) t[f * E + e] = (float)((e == 0 ? f : 0) + (e == 1 ? (f * 5 % 7) : 0));
    CHECK_OK(ids_temporal_layer_stats(t, F, E, coord, &var, &rho, &err));
    CHECK(var > 0.4 && var < 0.99);
}

static ids_vlm *golden(void) {
    ids_vlm *v = NULL;
    ids_err err;
    if (ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err)) return NULL;
    return v;
}

/* The reversed video's rows of frame k are the clean video's rows of frame T-1-k. */
TEST(temporal_reversal_pairs_frames) {
    ids_vlm *v = golden();
    REQUIRE(v);
    ids_catalog *cat = ids_catalog_new();
    ids_stim_opts so;
    ids_stim_default_opts(&so);
    so.image_size = 64;
    so.frames = 4;
    ids_stim s;
    ids_err err;
    REQUIRE_OK(ids_stim_make(IDS_SET_VIDEO, &so, cat, 3, &s, &err), err);
    ids_image rev[4];
    ids_video_reverse(s.frames, 4, rev);
    const char *prompt = "USER: <image><image><image><image>\nDoes the red circle appear before or after the blue square? ASSISTANT:";
    ids_seq *a, *b;
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, s.frames, 4, 1, NULL, &a, &err), err);
    REQUIRE_OK(ids_vlm_build_seq(v, prompt, rev, 4, 1, NULL, &b, &err), err);
    REQUIRE(ids_seq_len(a) == ids_seq_len(b));
    const int n = ids_seq_len(a), E = ids_seq_n_embd(a);
    int first[4] = {-1, -1, -1, -1}, per = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        const ids_row *r = ids_seq_row(a, i);
        if (r->image < 0) continue;
        CHECK(r->image >= 0 && r->image < 4);
        if (first[r->image] < 0) first[r->image] = i;
        if (r->image == 0) per++;
    }
    CHECK(first[0] < first[1] && first[1] < first[2] && first[2] < first[3]); /* frames in order */
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < per; j++) {
            const float *x = ids_seq_embd(b, first[k] + j), *y = ids_seq_embd(a, first[3 - k] + j);
            for (int e = 0; e < E; e++) bad += x[e] != y[e];
        }
    CHECK_EQ_INT(bad, 0);
    ids_seq_free(a);
    ids_seq_free(b);
    ids_stim_free(&s);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

TEST(temporal_extract_swap_steer_checks) {
    ids_vlm *v = golden();
    REQUIRE(v);
    ids_catalog *cat = ids_catalog_new();
    int objs[2] = {ids_catalog_find(cat, "red circle", NULL), ids_catalog_find(cat, "blue square", NULL)};
    ids_temporal_opts o = {.exp = {.objects = objs, .n_objects = 2, .image_size = 64, .n_items = 2, .seed = 3, .n_threads = 1},
                           .frames = 4};
    ids_err err;
    const char *dir = t_tmp("temporal");
    REQUIRE_OK(ids_temporal_extract(v, cat, &o, dir, NULL, NULL, &err), err);
    char path[600];
    snprintf(path, sizeof path, "%s/temporal.safetensors", dir);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, path, &err), err);
    const ids_st_tensor *t = ids_st_find(f, "temporal");
    REQUIRE(t && t->ndim == 3 && t->shape[0] == 5 && t->shape[1] == 3 && t->shape[2] == 64);
    const float *d = t->data;
    double l0 = 0, colsum = 0, norm = 0;
    for (int i = 0; i < 3 * 64; i++) l0 = fmax(l0, fabs(d[i])); /* layer 0: the word's embedding only */
    for (int l = 1; l < 5; l++)
        for (int e = 0; e < 64; e++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += d[((size_t)l * 3 + k) * 64 + e], norm += fabs(d[((size_t)l * 3 + k) * 64 + e]);
            colsum = fmax(colsum, fabs(s));
        }
    CHECKF(l0 == 0, "layer-0 temporal IDs should be exactly zero, max %g", l0);
    CHECKF(colsum < 1e-4 && norm > 1e-3, "IDs are centred over frames (max column sum %g, total %g)", colsum, norm);
    ids_st_close(f);
    snprintf(path, sizeof path, "%s/temporal.json", dir);
    size_t len;
    char *js = t_read_file(path, &len);
    CHECK(js && strstr(js, "\"best_layer\"") && strstr(js, "\"pc1_var\""));
    free(js);
    /* time-reversal patching: image rows at layer 0 carry everything, text rows at the last layer */
    o.exp.objects = NULL;
    o.exp.n_objects = 0;
    ids_temporal_swap_result r;
    REQUIRE_OK(ids_temporal_swap(v, cat, &o, &r, NULL, NULL, &err), err);
    const int S = IDS_SWAP_SET_COUNT, last = (r.n_layers - 1) * S;
    CHECK(r.n_layers == 5 && r.n_items + r.n_skipped == 4 && r.n_items > 0);
    CHECKF(fabs(r.diff[IDS_SWAP_IMAGE] - 1) < 1e-3, "image rows at layer 0: %g", r.diff[IDS_SWAP_IMAGE]);
    CHECKF(fabs(r.diff[IDS_SWAP_TEXT]) < 1e-3, "text rows at layer 0: %g", r.diff[IDS_SWAP_TEXT]);
    CHECKF(fabs(r.diff[last + IDS_SWAP_TEXT] - 1) < 1e-3, "text rows at the last layer: %g", r.diff[last + IDS_SWAP_TEXT]);
    ids_temporal_result_free(&r);
    /* steering: the paper's pairing leaves frame T/2 unmoved; a vanishing factor moves nothing */
    snprintf(path, sizeof path, "%s/temporal.safetensors", dir);
    o.ids_path = path;
    o.factor = 50;
    ids_temporal_steer_result sr;
    REQUIRE_OK(ids_temporal_steer(v, cat, &o, &sr, NULL, NULL, &err), err);
    CHECK(sr.frames == 3 && sr.null_frame == 2 && sr.layer_lo == 1 && sr.n_band == 3 && sr.n_items == 4);
    double moved = 0, null_moved = 0;
    for (int k = 0; k < sr.n_band; k++)
        for (int fr = 1; fr <= 3; fr++) {
            const double m = fmax(fabs(sr.d_before[k * 3 + fr - 1]), fabs(sr.d_after[k * 3 + fr - 1]));
            if (fr == 2) null_moved = fmax(null_moved, m);
            else moved = fmax(moved, m);
        }
    CHECKF(null_moved < 1e-4, "the null steer moved log P by %g", null_moved);
    CHECKF(moved > 1e-3, "a real steer moved nothing (%g)", moved);
    /* the controls have the push's norm frame by frame: nothing at the null frame either, something elsewhere */
    double ctl_null = 0, ctl_moved = 0;
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < sr.n_band; k++)
            for (int fr = 1; fr <= 3; fr++) {
                const double m = fabs(sr.ctl_after[c][k * 3 + fr - 1]);
                if (fr == 2) ctl_null = fmax(ctl_null, m);
                else ctl_moved = fmax(ctl_moved, m);
            }
    CHECKF(ctl_null < 1e-4, "a control moved log P(after) at the null frame by %g", ctl_null);
    CHECKF(ctl_moved > 1e-4, "the controls moved nothing (%g)", ctl_moved);
    ids_temporal_steer_result_free(&sr);
    o.source = 3; /* T[f] - T[3]: frame 3 is the null now */
    REQUIRE_OK(ids_temporal_steer(v, cat, &o, &sr, NULL, NULL, &err), err);
    CHECK(sr.null_frame == 3);
    for (int k = 0; k < sr.n_band; k++) CHECK(fabs(sr.d_after[k * 3 + 2]) < 1e-4 && fabs(sr.d_before[k * 3 + 2]) < 1e-4);
    ids_temporal_steer_result_free(&sr);
    o.source = 9;
    CHECK(ids_temporal_steer(v, cat, &o, &sr, NULL, NULL, &err) == IDS_ERR_RANGE);
    o.source = 0;
    o.frames = 8;
    CHECK(ids_temporal_steer(v, cat, &o, &sr, NULL, NULL, &err) == IDS_ERR_ARG);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

TEST(temporal_mvbench_formats) {
    const char *orig = t_tmp("scene_transition.json"), *derived = t_tmp("mvbench_scene_queries.json");
    FILE *f = fopen(orig, "w");
    REQUIRE(f);
    fputs("[{\"video\": \"a.mp4\", \"question\": \"?\", \"candidates\": [\"From the kitchen to the bedroom.\"],"
          " \"answer\": \"From the kitchen to the bedroom.\"},"
          " {\"video\": \"/abs/b.mp4\", \"answer\": \"From the beach to the mountain.\"},"
          " {\"video\": \"c.mp4\", \"answer\": \"no scenes here\"},"
          " {\"video\": \"d.mp4\", \"answer\": \"From a red room to a blue room.\"},"
          " {\"answer\": \"From the sea to the sky.\"}]", f);
    fclose(f);
    ids_tvq *q;
    int n, skipped;
    ids_err err;
    REQUIRE_OK(ids_mvbench_load(orig, "/videos", &q, &n, &skipped, &err), err);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(skipped, 3); /* no from/to, same last word, no video */
    if (n == 2) {
        CHECK(!strcmp(q[0].video, "/videos/a.mp4") && !strcmp(q[1].video, "/abs/b.mp4"));
        CHECK(!strcmp(q[0].word_first, "kitchen") && !strcmp(q[0].word_second, "bedroom") && q[0].truth_before);
        CHECK(!strcmp(q[1].word_first, "mountain") && !strcmp(q[1].word_second, "beach") && !q[1].truth_before);
        CHECK(strstr(q[0].question, "'the kitchen' occur before or after the scene 'the bedroom'") != NULL);
    }
    free(q);
    f = fopen(derived, "w");
    REQUIRE(f);
    fputs("[{\"video_path\": \"v/1.mp4\", \"scene1\": \"a forest\", \"scene2\": \"a city\", \"query\": \"Q1\", "
          "\"correct_order\": [0, 1], \"query_order\": [0, 1]},"
          " {\"video_path\": \"v/2.mp4\", \"scene1\": \"a city\", \"scene2\": \"a forest\", \"query\": \"Q2\", "
          "\"correct_order\": [0, 1], \"query_order\": [1, 0]}]", f);
    fclose(f);
    REQUIRE_OK(ids_mvbench_load(derived, NULL, &q, &n, &skipped, &err), err);
    CHECK(n == 2 && skipped == 0);
    if (n == 2) {
        CHECK(q[0].truth_before && !q[1].truth_before);
        CHECK(!strcmp(q[1].question, "Q2") && !strcmp(q[1].word_first, "city") && !strcmp(q[1].video, "v/2.mp4"));
    }
    free(q);
    f = fopen(derived, "w");
    fputs("{\"not\": \"a list\"}", f);
    fclose(f);
    CHECK(ids_mvbench_load(derived, NULL, &q, &n, &skipped, &err) == IDS_ERR_FORMAT);
}
