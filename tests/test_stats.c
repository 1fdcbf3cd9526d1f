/* Statistics: Mann-Whitney U, bootstrap intervals, Spearman's interval, the R^2 permutation null,
 * against values computed by hand. */
#include "test.h"

TEST(stats_mann_whitney_exact_small) {
    ids_err err = {0};
    ids_mw_result r;
    /* every a below every b: U = 0; 1 of C(7, 3) = 35 arrangements in each tail: p = 2/35 */
    const double a[3] = {1, 2, 3}, b[4] = {4, 5, 6, 7};
    CHECK_OK_ERR(ids_mann_whitney(a, 3, b, 4, &r, &err), err);
    CHECK(r.exact && !r.ties);
    CHECK(r.u == 0 && r.u_min == 0);
    CHECK(fabs(r.p - 2.0 / 35) < 1e-12);
    /* m = 3, n = 2: U's counts 1 1 2 2 2 1 1 over 0..6 (the coefficients of [5 choose 2]_q) */
    const double a2[3] = {3, 6, 7}, b2[2] = {1, 4}; /* U = 1 + 2 + 2 = 5: P(U >= 5) = 2/10 */
    CHECK_OK_ERR(ids_mann_whitney(a2, 3, b2, 2, &r, &err), err);
    CHECK(r.u == 5 && r.u_min == 1 && r.exact);
    CHECK(fabs(r.p - 0.4) < 1e-12);
    const double a3[3] = {5, 6, 7}, b3[2] = {1, 2}; /* U = 6: p = 2 x 1/10 */
    CHECK_OK_ERR(ids_mann_whitney(a3, 3, b3, 2, &r, &err), err);
    CHECK(r.u == 6 && fabs(r.p - 0.2) < 1e-12);
    /* swapping the samples gives n1 n2 - U and the same p */
    CHECK_OK_ERR(ids_mann_whitney(b3, 2, a3, 3, &r, &err), err);
    CHECK(r.u == 0 && fabs(r.p - 0.2) < 1e-12);
    /* the middle of the distribution: U = 3 of 0..6, both tails 6/10: p capped at 1 */
    const double a4[3] = {1.1, 3.3, 5.5}, b4[2] = {2.2, 4.4};
    CHECK_OK_ERR(ids_mann_whitney(a4, 3, b4, 2, &r, &err), err);
    CHECK(r.u == 3 && r.p == 1);
}

TEST(stats_mann_whitney_ties_normal) {
    ids_err err = {0};
    ids_mw_result r;
    /* combined ranks: 1 | 2 2 2 -> 3 | 3 3 -> 5.5 | 4 4 -> 7.5 | 5 -> 9; R1 = 1 + 3 + 3 + 5.5 = 12.5,
     * U = 12.5 - 10 = 2.5; ties sum (27 - 3) + (8 - 2) + (8 - 2) = 36; var = 20/12 (10 - 36/72) = 95/6;
     * |U - 10| - 1/2 = 7: p = erfc(7 / sqrt(95/6) / sqrt 2) */
    const double a[4] = {1, 2, 2, 3}, b[5] = {2, 3, 4, 4, 5};
    CHECK_OK_ERR(ids_mann_whitney(a, 4, b, 5, &r, &err), err);
    CHECK(!r.exact && r.ties);
    CHECKF(fabs(r.u - 2.5) < 1e-12, "U %.6f", r.u);
    CHECKF(fabs(r.z + 1.8848425873126298) < 1e-9, "z %.9f", r.z);
    CHECKF(fabs(r.p - 0.0785458509511907) < 1e-9, "p %.9f", r.p);
    /* all values equal: no evidence */
    const double c[2] = {1, 1}, d[3] = {1, 1, 1};
    CHECK_OK_ERR(ids_mann_whitney(c, 2, d, 3, &r, &err), err);
    CHECK(r.p == 1 && r.u == 3);
    /* past the exact limit without ties the normal approximation is taken; identical samples shifted
     * far apart give a tiny p */
    double x[40], y[40];
    for (int i = 0; i < 40; i++) x[i] = i, y[i] = 100 + i;
    CHECK_OK_ERR(ids_mann_whitney(x, 40, y, 40, &r, &err), err);
    CHECK(!r.exact && r.u == 0 && r.p < 1e-12);
    /* refused: an empty sample, a non-finite value */
    CHECK(ids_mann_whitney(x, 0, y, 3, &r, &err) == IDS_ERR_ARG);
    y[2] = NAN;
    CHECK(ids_mann_whitney(x, 3, y, 3, &r, &err) == IDS_ERR_ARG && strstr(err.msg, "value 2 of sample 2"));
}

TEST(stats_bootstrap_reproducible) {
    ids_err err = {0};
    double x[100], c1[2], c2[2];
    for (int i = 0; i < 100; i++) x[i] = i % 10 < 3; /* 30 ones of 100 */
    CHECK_OK_ERR(ids_bootstrap_mean_ci(x, 100, 0, 7, c1, &err), err);
    CHECK_OK_ERR(ids_bootstrap_mean_ci(x, 100, 0, 7, c2, &err), err);
    CHECK(c1[0] == c2[0] && c1[1] == c2[1]);
    /* another seed, another interval (on values that do not repeat) */
    double w[30], d1[2], d2[2];
    for (int i = 0; i < 30; i++) w[i] = sin(i * 1.7) + 0.01 * i;
    CHECK_OK_ERR(ids_bootstrap_mean_ci(w, 30, 0, 7, d1, &err), err);
    CHECK_OK_ERR(ids_bootstrap_mean_ci(w, 30, 0, 8, d2, &err), err);
    CHECK(d1[0] != d2[0] && d1[1] != d2[1]);
    CHECK_OK_ERR(ids_bootstrap_mean_ci(w, 30, 0, 7, d2, &err), err);
    CHECK(d1[0] == d2[0] && d1[1] == d2[1]);
    /* near the binomial interval 0.3 -+ 1.96 sqrt(0.3 0.7 / 100) = [0.210, 0.390] */
    CHECKF(fabs(c1[0] - 0.210) < 0.025 && fabs(c1[1] - 0.390) < 0.025, "ci [%.3f, %.3f]", c1[0], c1[1]);
    /* a constant sample: the interval is the value; one value: itself; none: no interval */
    double k[5] = {2, 2, 2, 2, 2};
    CHECK_OK_ERR(ids_bootstrap_mean_ci(k, 5, 100, 1, c1, &err), err);
    CHECK(c1[0] == 2 && c1[1] == 2);
    CHECK_OK_ERR(ids_bootstrap_mean_ci(x, 1, 100, 1, c1, &err), err);
    CHECK(c1[0] == 1 && c1[1] == 1);
    CHECK_OK_ERR(ids_bootstrap_mean_ci(x, 0, 100, 1, c1, &err), err);
    CHECK(isnan(c1[0]) && isnan(c1[1]));
}

TEST(stats_spearman_ci_known) {
    /* b: a with 1<->6, 2<->4, 7<->9 swapped: sum d^2 = 50 + 8 + 8 = 66, rho = 1 - 6 66 / 990 = 0.6 */
    const double a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, b[10] = {6, 4, 3, 2, 5, 1, 9, 8, 7, 10};
    double rho, ci[2];
    ids_spearman_ci(a, b, 10, &rho, ci);
    CHECK(fabs(rho - 0.6) < 1e-12);
    /* tanh(atanh(0.6) -+ 1.96 sqrt(1.06 / 7)) */
    CHECKF(fabs(ci[0] + 0.0694378341153716) < 1e-9 && fabs(ci[1] - 0.8968424262160614) < 1e-9, "[%.9f, %.9f]", ci[0], ci[1]);
    ids_spearman_ci(a, b, 3, &rho, ci);
    CHECK(isnan(ci[0]) && isnan(ci[1]));
}

TEST(stats_r2_null_random_cells) {
    /* random cell vectors on a 4 x 4 grid: the null's mean is 2 / (16 - 1) for any vectors */
    enum { G = 4, C = G * G, E = 48 };
    float v[C * E];
    int xs[C], ys[C];
    uint64_t s = 12345;
    for (int i = 0; i < C * E; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    for (int k = 0; k < C; k++) xs[k] = k % G, ys[k] = k / G;
    ids_err err = {0};
    ids_r2_null n1, n2;
    CHECK_OK_ERR(ids_spatial_r2_null(v, xs, ys, C, E, 4000, 3, &n1, &err), err);
    CHECKF(fabs(n1.mean - 2.0 / 15) < 0.006, "null mean %.4f, expected %.4f", n1.mean, 2.0 / 15);
    CHECK(n1.q95 > n1.mean && n1.p > 0.01);
    /* the same R^2 as the regression of ids stats */
    ids_id_stats st;
    float xa[E] = {0}, ya[E] = {0};
    xa[0] = 1, ya[1] = 1;
    CHECK_OK_ERR(ids_spatial_layer_stats(v, xs, ys, C, E, xa, ya, &st, NULL, &err), err);
    CHECKF(fabs(n1.r2 - st.r2) < 1e-6, "gram R^2 %.6f, regression %.6f", n1.r2, st.r2);
    /* seeded */
    CHECK_OK_ERR(ids_spatial_r2_null(v, xs, ys, C, E, 4000, 3, &n2, &err), err);
    CHECK(n1.mean == n2.mean && n1.q95 == n2.q95 && n1.p == n2.p);
    /* IDs linear in position: R^2 = 1, far above the null, p = 1 / (1 + n) unless a permutation
     * happens to be a symmetry of the grid (the mirrors keep R^2 = 1) */
    for (int k = 0; k < C; k++)
        for (int e = 0; e < E; e++) v[k * E + e] = (float)(xs[k] * (e % 3) + ys[k] * (e % 5 == 1) + 0.25 * (e % 7));
    CHECK_OK_ERR(ids_spatial_r2_null(v, xs, ys, C, E, 1000, 3, &n1, &err), err);
    CHECK(fabs(n1.r2 - 1) < 1e-9 && n1.q95 < 0.6 && n1.p < 0.01);
}

TEST(mask_blur_covers_the_box_exactly) {
    /* a noise image: the blur changes every pixel of the box (in some channel) and nothing else */
    enum { W = 40, H = 30 };
    ids_image img = {0}, out = {0};
    ids_err err = {0};
    REQUIRE_OK(ids_image_new(&img, W, H, (const uint8_t[3]){0, 0, 0}, &err), err);
    uint64_t s = 99;
    for (int i = 0; i < W * H * 3; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        img.rgb[i] = (uint8_t)(s >> 56);
    }
    const float boxes[3][4] = {{10, 5, 30, 20}, {10.4f, 5.6f, 29.5f, 19.49f}, {-5, 25, 8, 60}};
    const int want[3][4] = {{10, 5, 30, 20}, {10, 6, 29, 19}, {0, 25, 8, 30}}; /* centres i + 1/2 inside */
    for (int b = 0; b < 3; b++) {
        int px[4];
        ids_mask_box_pixels(boxes[b], W, H, px);
        CHECKF(!memcmp(px, want[b], sizeof px), "box %d: [%d, %d) x [%d, %d)", b, px[0], px[2], px[1], px[3]);
        REQUIRE_OK(ids_image_blur_box(&img, boxes[b], 3, &out, &err), err);
        int inside_same = 0, outside_diff = 0, inside = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const bool in = x >= want[b][0] && x < want[b][2] && y >= want[b][1] && y < want[b][3];
                const bool same = !memcmp(img.rgb + (y * W + x) * 3, out.rgb + (y * W + x) * 3, 3);
                inside += in;
                inside_same += in && same;
                outside_diff += !in && !same;
            }
        CHECK_EQ_INT(inside, (want[b][2] - want[b][0]) * (want[b][3] - want[b][1]));
        CHECK_EQ_INT(inside_same, 0);
        CHECK_EQ_INT(outside_diff, 0);
        /* the blurred value: the mean of the 7 x 7 window (edges clamped) at a pixel well inside */
        if (b == 0) {
            double m = 0;
            for (int dy = -3; dy <= 3; dy++)
                for (int dx = -3; dx <= 3; dx++) m += img.rgb[((12 + dy) * W + (20 + dx)) * 3];
            CHECKF(abs((int)out.rgb[(12 * W + 20) * 3] - (int)lround(m / 49)) <= 1, "%d vs %.2f", out.rgb[(12 * W + 20) * 3], m / 49);
        }
        ids_image_free(&out);
    }
    CHECK(ids_image_blur_box(&img, boxes[0], -1, &out, &err) == IDS_ERR_RANGE);
    ids_image_free(&img);
}

TEST(compare_spearman_known) {
    /* four demo folders: scores 0.1..0.4, accuracies 0.5 0.7 0.6 0.9 (ranks 1 3 2 4): rho = 1 - 6 x 2 / 60 = 0.8 */
    static const double acc[4] = {0.5, 0.7, 0.6, 0.9};
    char dirs[4][512];
    const char *dp[4];
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "cmp%d", k);
        snprintf(dirs[k], sizeof dirs[k], "%s", t_tmp(name));
        dp[k] = dirs[k];
        char path[600];
        snprintf(path, sizeof path, "mkdir -p %s", dirs[k]);
        CHECK(system(path) == 0);
        snprintf(path, sizeof path, "%s/summary.json", dirs[k]);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (!f) return;
        fprintf(f, "{\"model\": \"m%d\", \"score_best\": %.1f, \"belief_accuracy_baseline\": %.1f, "
                   "\"belief_accuracy_baseline_ci\": [0.4, 1], \"belief_swap_rate_id\": 0.5, \"ids_r2_best\": 0.9}\n",
                k, 0.1 * (k + 1), acc[k]);
        fclose(f);
    }
    ids_err err = {0};
    double rho = 0;
    const char *out = t_tmp("cmp_out");
    REQUIRE_OK(ids_compare(dp, 4, out, &rho, &err), err);
    CHECKF(fabs(rho - 0.8) < 1e-12, "rho %.6f", rho);
    char path[600];
    snprintf(path, sizeof path, "%s/compare.csv", out);
    size_t n = 0;
    char *csv = t_read_file(path, &n);
    int lines = 0;
    for (size_t i = 0; csv && i < n; i++) lines += csv[i] == '\n';
    CHECK_EQ_INT(lines, 5);
    CHECK(csv && strstr(csv, "m3,0.900000,0.400000,1.000000,0.500000,"));
    free(csv);
    snprintf(path, sizeof path, "%s/compare.html", out);
    char *html = t_read_file(path, &n);
    CHECK(html && strstr(html, "<svg") && strstr(html, "Spearman 0.800"));
    free(html);
    /* a folder without a summary is an error naming it */
    const char *bad[1] = {out};
    CHECK(ids_compare(bad, 1, t_tmp("cmp_bad"), NULL, &err) == IDS_ERR_FORMAT && strstr(err.msg, "summary.json"));
}
