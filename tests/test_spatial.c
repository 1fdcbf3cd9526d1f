/* Spatial ID arithmetic on activations with a known answer, and extraction end to end. */
#include "test.h"

/* h = pair/anchor offset + x*u + y*v + size*w (+ garbage in the ignored anchor-cell entries).
 * Mean-centring within (pair, anchor) excludes the anchor's cell, so after averaging over anchors
 * ID(k) = f(k) - const - (x u + y v) / (C - 1)^2, and the axes are
 * (1 - 1/(C-1)^2) * D * u with D = mean of (x2 - x1) over the paper's ranges (10/9 for G = 4). */
TEST(ids_compute_linear_known_answer) {
    enum { P = 3, G = 4, S = 2, L = 2, E = 5, C = G * G, K = C * S };
    static float h[P * C * K * L * E], pp[P * K * L * E], uni[K * L * E], xa[L * E], ya[L * E];
    float u[L * E], v[L * E], w[L * E];
    uint32_t r = 1;
    for (int i = 0; i < L * E; i++) {
        r = r * 1664525u + 1013904223u, u[i] = (float)(r >> 9) / 8388608.0f - 1;
        r = r * 1664525u + 1013904223u, v[i] = (float)(r >> 9) / 8388608.0f - 1;
        r = r * 1664525u + 1013904223u, w[i] = (float)(r >> 9) / 8388608.0f - 1;
    }
    for (int p = 0; p < P; p++)
        for (int a = 0; a < C; a++) {
            float base[L * E];
            for (int i = 0; i < L * E; i++) r = r * 1664525u + 1013904223u, base[i] = 10.0f * ((float)(r >> 9) / 8388608.0f - 1);
            for (int k = 0; k < K; k++) {
                const int cell = k / S, x = cell % G, y = cell / G, s = k % S;
                float *dst = h + (((size_t)p * C + a) * K + k) * L * E;
                for (int i = 0; i < L * E; i++)
                    dst[i] = cell == a ? 1e30f : base[i] + (float)x * u[i] + (float)y * v[i] + (float)s * w[i];
            }
        }
    ids_err err;
    CHECK_OK(ids_spatial_compute(h, P, G, S, L, E, 0, pp, uni, xa, ya, &err));
    const double f = (1.0 - 1.0 / ((C - 1) * (C - 1))) * 10.0 / 9.0;
    double worst = 0;
    for (int i = 0; i < L * E; i++) {
        worst = fmax(worst, fabs(xa[i] - f * u[i]));
        worst = fmax(worst, fabs(ya[i] - f * v[i]));
    }
    CHECKF(worst < 1e-4, "axes off the known answer by %g", worst);
    /* differences of IDs: one column right = (1 - 1/(C-1)^2) u; one size step = w */
    worst = 0;
    for (int i = 0; i < L * E; i++) {
        const int k00 = 0, k10 = 1 * S, k01 = G * S, k001 = 1;
        worst = fmax(worst, fabs((uni[(size_t)k10 * L * E + i] - uni[(size_t)k00 * L * E + i]) - f * 9.0 / 10.0 * u[i]));
        worst = fmax(worst, fabs((uni[(size_t)k01 * L * E + i] - uni[(size_t)k00 * L * E + i]) - f * 9.0 / 10.0 * v[i]));
        worst = fmax(worst, fabs((uni[(size_t)k001 * L * E + i] - uni[(size_t)k00 * L * E + i]) - w[i]));
    }
    CHECKF(worst < 1e-4, "ID differences off by %g", worst);
    /* per-pair IDs equal the universal one here (no pair-specific position effect) */
    worst = 0;
    for (int i = 0; i < K * L * E; i++) worst = fmax(worst, fabs(pp[(size_t)2 * K * L * E + i] - uni[i]));
    CHECK(worst < 1e-4);
}

TEST(ids_extract_golden_end_to_end) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    ids_catalog *cat = ids_catalog_new();
    int objs[2] = {ids_catalog_find(cat, "red circle", NULL), ids_catalog_find(cat, "blue square", NULL)};
    float sizes[1] = {0.9f};
    ids_extract_opts o = {.exp = {.objects = objs, .n_objects = 2, .grid = 2, .n_threads = 1}, .sizes = sizes, .n_sizes = 1, .per_pair = true};
    const char *dir = t_tmp("ids");
    CHECK_OK_ERR(ids_spatial_extract(v, cat, &o, dir, NULL, NULL, &err), err);
    char p[600];
    snprintf(p, sizeof p, "%s/ids.safetensors", dir);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, p, &err), err);
    const ids_st_tensor *u = ids_st_find(f, "universal"), *pp = ids_st_find(f, "per_pair"), *xa = ids_st_find(f, "x_axis");
    REQUIRE(u && pp && xa);
    CHECK(u->ndim == 5 && u->shape[0] == 5 && u->shape[1] == 2 && u->shape[2] == 2 && u->shape[3] == 1 && u->shape[4] == 64);
    CHECK(pp->shape[0] == 2 && xa->shape[0] == 5 && xa->shape[1] == 64);
    const float *U = u->data;
    double l0 = 0, l4 = 0;
    for (int i = 0; i < 4 * 64; i++) {
        l0 = fmax(l0, fabs(U[i]));                /* layer 0: the word's embedding */
        l4 = fmax(l4, fabs(U[4 * 4 * 64 + i]));   /* layer 4 */
    }
    CHECKF(l0 == 0.0, "layer-0 IDs should be exactly zero, max %g", l0);
    CHECK(l4 > 1e-4 && isfinite(l4));
    ids_st_close(f);
    CHECK_OK_ERR(ids_spatial_stats(dir, &err), err);
    snprintf(p, sizeof p, "%s/stats.json", dir);
    char *sj = t_read_file(p, NULL);
    CHECK(sj && strstr(sj, "\"pair_cosine\"") && strstr(sj, "\"pc1\""));
    free(sj);
    snprintf(p, sizeof p, "%s/ids.json", dir);
    char *js = t_read_file(p, NULL);
    CHECK(js && strstr(js, "\"idscope.ids.v1\"") && strstr(js, "red circle"));
    free(js);
    int one[1] = {objs[0]};
    o.exp.objects = one;
    o.exp.n_objects = 1;
    CHECK_EQ_INT(ids_spatial_extract(v, cat, &o, dir, NULL, NULL, &err), IDS_ERR_ARG);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

/* Cell IDs exactly linear in (x, y): R2 = 1, the axis plane and the first two principal components
 * hold all the variance, and PCA coordinates keep every pairwise distance. Random IDs: low R2. */
TEST(ids_layer_stats_known_answers) {
    enum { G = 4, C = G * G, E = 12 };
    float ids[C * E], u[E], v[E], xa[E], ya[E], pca[2 * C];
    int xs[C], ys[C];
    uint32_t r = 7;
    for (int e = 0; e < E; e++) {
        r = r * 1664525u + 1013904223u, u[e] = (float)(r >> 9) / 8388608.0f - 1;
        r = r * 1664525u + 1013904223u, v[e] = (float)(r >> 9) / 8388608.0f - 1;
    }
    for (int k = 0; k < C; k++) {
        xs[k] = k % G, ys[k] = k / G;
        for (int e = 0; e < E; e++) ids[k * E + e] = 3.0f + (float)xs[k] * u[e] + (float)ys[k] * v[e];
    }
    for (int e = 0; e < E; e++) xa[e] = u[e] * 1.1f, ya[e] = v[e] * 0.9f; /* axes: any scale */
    ids_id_stats s;
    ids_err err;
    CHECK_OK(ids_spatial_layer_stats(ids, xs, ys, C, E, xa, ya, &s, pca, &err));
    CHECKF(fabs(s.r2 - 1) < 1e-6 && fabs(s.plane - 1) < 1e-5 && fabs(s.pca_var - 1) < 1e-5, "r2 %g plane %g pca %g",
           s.r2, s.plane, s.pca_var);
    double worst = 0;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            double d_ids = 0, d_pca = hypot(pca[2 * i] - pca[2 * j], pca[2 * i + 1] - pca[2 * j + 1]);
            for (int e = 0; e < E; e++) d_ids += pow((double)ids[i * E + e] - ids[j * E + e], 2);
            worst = fmax(worst, fabs(sqrt(d_ids) - d_pca));
        }
    CHECKF(worst < 1e-3, "PCA distances off by %g", worst);
    /* random IDs: a plane explains little, the linear fit too */
    for (int i = 0; i < C * E; i++) r = r * 1664525u + 1013904223u, ids[i] = (float)(r >> 9) / 8388608.0f;
    CHECK_OK(ids_spatial_layer_stats(ids, xs, ys, C, E, xa, ya, &s, NULL, &err));
    CHECK(s.r2 < 0.5 && s.plane < 0.5 && s.pca_var < 0.6);
}

/* Mirror patching on the golden model: whatever the weights, patching every image row at layer 0
 * turns the clean run into the mirrored one (fraction 1) and text rows there change nothing (0);
 * at the last layer only the text rows (the answer row among them) matter. */
TEST(swap_known_answers) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    ids_catalog *cat = ids_catalog_new();
    ids_swap_opts o = {.exp = {.grid = 4, .n_items = 3, .seed = 5, .n_threads = 1}};
    for (int control = 0; control < 2; control++) {
        ids_swap_result r;
        REQUIRE_OK(ids_swap_run(v, cat, &o, control, &r, NULL, NULL, &err), err);
        CHECK(r.n_layers == 5 && r.n_items + r.n_skipped == 6 && r.n_items > 0);
        const int S = IDS_SWAP_SET_COUNT, last = (r.n_layers - 1) * S;
        CHECKF(fabs(r.diff[IDS_SWAP_IMAGE] - 1) < 1e-3, "image rows at layer 0: %g", r.diff[IDS_SWAP_IMAGE]);
        CHECKF(fabs(r.diff[IDS_SWAP_TEXT]) < 1e-3, "text rows at layer 0: %g", r.diff[IDS_SWAP_TEXT]);
        CHECKF(fabs(r.diff[IDS_SWAP_OBJECTS]) < 1e-3, "object words at layer 0: %g", r.diff[IDS_SWAP_OBJECTS]);
        CHECKF(fabs(r.diff[last + IDS_SWAP_TEXT] - 1) < 1e-3, "text rows at the last layer: %g", r.diff[last + IDS_SWAP_TEXT]);
        CHECKF(fabs(r.diff[last + IDS_SWAP_IMAGE]) < 1e-3, "image rows at the last layer: %g", r.diff[last + IDS_SWAP_IMAGE]);
        CHECK(fabs(r.left[IDS_SWAP_IMAGE] - 1) < 1e-3 && fabs(r.right[IDS_SWAP_IMAGE] - 1) < 1e-3);
        /* the pooled recovery has the same exact values at the ends */
        CHECKF(fabs(r.diff_pooled[IDS_SWAP_IMAGE] - 1) < 1e-3 && fabs(r.diff_pooled[IDS_SWAP_TEXT]) < 1e-3 &&
                   fabs(r.diff_pooled[last + IDS_SWAP_TEXT] - 1) < 1e-3,
               "pooled: image %g, text %g at layer 0; text %g at the last", r.diff_pooled[IDS_SWAP_IMAGE],
               r.diff_pooled[IDS_SWAP_TEXT], r.diff_pooled[last + IDS_SWAP_TEXT]);
        ids_swap_result_free(&r);
    }
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

TEST(steer_belief_checks) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    ids_catalog *cat = ids_catalog_new();
    int objs[2] = {ids_catalog_find(cat, "red circle", NULL), ids_catalog_find(cat, "blue square", NULL)};
    float sizes[1] = {0.9f};
    ids_extract_opts eo = {.exp = {.objects = objs, .n_objects = 2, .grid = 2, .n_threads = 1}, .sizes = sizes, .n_sizes = 1};
    const char *dir = t_tmp("steer-ids");
    REQUIRE_OK(ids_spatial_extract(v, cat, &eo, dir, NULL, NULL, &err), err);
    char path[600];
    snprintf(path, sizeof path, "%s/ids.safetensors", dir);
    ids_steer_opts o = {.exp = {.n_items = 3, .seed = 4, .n_threads = 1}, .ids_path = path, .factor = 1e-7f, .greedy_tokens = 2};
    ids_steer_result r, r2;
    CHECK_OK_ERR(ids_steer_belief(v, cat, &o, &r, NULL, NULL, &err), err);
    CHECK(r.layer_lo == 1 && r.n_band == 3 && r.n_items + r.n_skipped == 6);
    for (int k = 0; k < r.n_band; k++) CHECK(r.rate_id[k] == 0.0f && r.rate_noise[k] == 0.0f); /* too small to flip */
    REQUIRE(r.greedy_id && r.greedy_noise);
    for (int k = 0; k < r.n_band; k++) CHECK(r.greedy_id[k] == 0.0f && r.greedy_noise[k] == 0.0f); /* same answers */
    ids_steer_result_free(&r);
    o.factor = 5.0f;
    CHECK_OK_ERR(ids_steer_belief(v, cat, &o, &r, NULL, NULL, &err), err);
    CHECK_OK_ERR(ids_steer_belief(v, cat, &o, &r2, NULL, NULL, &err), err);
    for (int k = 0; k < r.n_band; k++) CHECK(r.rate_id[k] == r2.rate_id[k] && r.rate_noise[k] == r2.rate_noise[k]);
    CHECK(r.best3_id >= 0 && r.best3_id <= 1);
    ids_steer_result_free(&r);
    ids_steer_result_free(&r2);
    /* arbitrary steering: a vanishing factor changes nothing; a real one moves the answer */
    ids_steer_grid_result g;
    o.factor = 1e-7f;
    o.layer_lo = 2;
    CHECK_OK_ERR(ids_steer_grid(v, cat, &o, &g, NULL, NULL, &err), err);
    CHECK(g.grid == 2 && g.layer == 2 && g.n_items == 6);
    for (int t = 0; t < 4; t++) CHECKF(fabsf(g.delta[t]) < 1e-4f, "cell %d moved %g", t, g.delta[t]);
    ids_steer_grid_result_free(&g);
    o.factor = 50.0f;
    CHECK_OK_ERR(ids_steer_grid(v, cat, &o, &g, NULL, NULL, &err), err);
    float mx = 0;
    for (int t = 0; t < 4; t++) mx = fmaxf(mx, fabsf(g.delta[t]));
    CHECK(mx > 1e-3f && isfinite(mx));
    ids_steer_grid_result_free(&g);
    /* depth diagnosis: nothing moves without a push; small pushes act linearly (down = -up) */
    ids_depth_result d;
    o.factor = 1e-7f;
    o.layer_lo = 0;
    CHECK_OK_ERR(ids_depth_diag(v, cat, &o, &d, NULL, NULL, &err), err);
    CHECK(d.n_band == 3 && d.n_grid == 6 && d.n_depth == 6);
    for (int k = 0; k < d.n_band; k++)
        CHECK(fabsf(d.ab_down[k]) < 1e-4f && fabsf(d.fb_up[k]) < 1e-4f);
    for (int c = 0; c < 2; c++) /* the controls have the push's norm: nothing either */
        for (int k = 0; k < d.n_band; k++) CHECK(fabsf(d.ctl[c][0][k]) < 1e-4f && fabsf(d.ctl[c][3][k]) < 1e-4f);
    ids_depth_result_free(&d);
    o.factor = 0.01f; /* small enough for the linear regime on these weights (0.05 is not at layer 2) */
    CHECK_OK_ERR(ids_depth_diag(v, cat, &o, &d, NULL, NULL, &err), err);
    for (int k = 0; k < d.n_band; k++) {
        CHECKF(fabsf(d.ab_down[k] + d.ab_up[k]) <= 0.2f * fabsf(d.ab_down[k]) + 1e-4f, "layer %d: down %g up %g",
               d.layer_lo + k, d.ab_down[k], d.ab_up[k]);
        CHECKF(fabsf(d.fb_down[k] + d.fb_up[k]) <= 0.2f * fabsf(d.fb_down[k]) + 1e-4f, "layer %d: down %g up %g",
               d.layer_lo + k, d.fb_down[k], d.fb_up[k]);
    }
    CHECK(fabsf(d.ab_down[0]) > 1e-5f);
    for (int c = 0; c < 2; c++) /* the controls are pushes too: linear, and not nothing */
        for (int k = 0; k < d.n_band; k++)
            CHECKF(fabsf(d.ctl[c][0][k] + d.ctl[c][1][k]) <= 0.2f * fabsf(d.ctl[c][0][k]) + 1e-4f && fabsf(d.ctl[c][0][k]) > 1e-7f,
                   "control %d layer %d: down %g up %g", c, d.layer_lo + k, d.ctl[c][0][k], d.ctl[c][1][k]);
    ids_depth_result_free(&d);
    o.factor = 5.0f;
    o.layer_lo = 0;
    o.layer_hi = 9;
    CHECK_EQ_INT(ids_steer_belief(v, cat, &o, &r, NULL, NULL, &err), IDS_ERR_RANGE);
    ids_vlm *q;
    REQUIRE_OK(ids_vlm_load(&q, t_shared("golden/qwen2vl-tiny/text.gguf"), t_shared("golden/qwen2vl-tiny/mmproj.gguf"), &err), err);
    o.layer_hi = 0;
    CHECK_EQ_INT(ids_steer_belief(q, cat, &o, &r, NULL, NULL, &err), IDS_ERR_FORMAT); /* IDs of another model */
    ids_vlm_free(q);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

TEST(ids_score_arithmetic) {
    const char *sp = t_tmp("stats.json"), *tp = t_tmp("steer.json"), *op = t_tmp("score.json");
    FILE *f = fopen(sp, "w");
    fputs("{\"layers\": [{\"layer\": 1, \"r2\": 0.5, \"pair_cosine\": 0.8}, {\"layer\": 2, \"r2\": 0.9, \"pair_cosine\": -0.2},"
          " {\"layer\": 3, \"r2\": 1.0, \"pair_cosine\": 1.0}]}", f);
    fclose(f);
    f = fopen(tp, "w");
    fputs("{\"layers\": [{\"layer\": 1, \"id\": 0.7, \"noise\": 0.2}, {\"layer\": 2, \"id\": 0.9, \"noise\": 0.1},"
          " {\"layer\": 3, \"id\": 0.1, \"noise\": 0.3}]}", f);
    fclose(f);
    int best;
    double score;
    ids_err err;
    CHECK_OK_ERR(ids_score(sp, tp, op, &best, &score, &err), err);
    CHECK_EQ_INT(best, 1);                     /* 0.5 * 0.8 * 0.5 = 0.2; layer 2 and 3 clamp to 0 */
    CHECK(fabs(score - 0.2) < 1e-9);
    char *js = t_read_file(op, NULL);
    CHECK(js && strstr(js, "\"best_layer\":\t1"));
    free(js);
    f = fopen(sp, "w");
    fputs("{\"layers\": [{\"layer\": 1, \"r2\": 0.5}]}", f);
    fclose(f);
    CHECK_EQ_INT(ids_score(sp, tp, op, &best, &score, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "--per-pair") != NULL);
}

TEST(answer_verdict_whole_words) {
    CHECK_EQ_INT(ids_answer_verdict("Left.", "left", "right"), 0);
    CHECK_EQ_INT(ids_answer_verdict(" it is to the right of it", "left", "right"), 1);
    CHECK_EQ_INT(ids_answer_verdict("alright, hmm", "left", "right"), -1); /* the reference code's substring bug */
    CHECK_EQ_INT(ids_answer_verdict("leftover rights", "left", "right"), -1);
    CHECK_EQ_INT(ids_answer_verdict("right or left", "left", "right"), 1); /* the first named */
    CHECK_EQ_INT(ids_answer_verdict("In front.", "in front", "behind"), 0);
    CHECK_EQ_INT(ids_answer_verdict("", "above", "below"), -1);
}
