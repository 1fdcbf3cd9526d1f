/* The report's plotting layer: rounded ticks, the diverging scale, equal aspect, a colour scale
 * shared by the panels of a figure. */
#include "test.h"
#include "exp/plot.h"

TEST(plot_ticks_are_rounded) {
    /* the report's old axis of 0..0.995 with -0.0156 below: steps of 0.25, 0 a tick */
    ids__ticks t = ids__plot_ticks(-0.0156, 0.995, 5);
    CHECKF(fabs(t.step - 0.25) < 1e-12 && fabs(t.lo + 0.25) < 1e-12 && fabs(t.hi - 1) < 1e-12 && t.n == 6,
           "step %g lo %g hi %g n %d", t.step, t.lo, t.hi, t.n);
    char buf[32];
    ids__plot_tick_label(&t, t.lo + t.step, buf, sizeof buf); /* -0.25 + 0.25 in floating point */
    CHECKF(!strcmp(buf, "0.00"), "zero tick '%s'", buf);
    ids__plot_tick_label(&t, -0.25, buf, sizeof buf);
    CHECKF(!strcmp(buf, "\xe2\x88\x92" "0.25"), "negative tick '%s' (a minus sign)", buf);
    t = ids__plot_ticks(-31, 26, 5); /* the recovered fractions of a random model: steps of 2 x 10^k */
    CHECKF(t.step == 20 && t.lo == -40 && t.hi == 40 && t.decimals == 0, "step %g lo %g hi %g", t.step, t.lo, t.hi);
    t = ids__plot_ticks(0, 0.018, 4); /* 5 x 10^k, decimals enough */
    CHECKF(fabs(t.step - 0.005) < 1e-15 && fabs(t.hi - 0.02) < 1e-15 && t.decimals == 3, "step %g hi %g", t.step, t.hi);
    t = ids__plot_ticks(0, 10, 4); /* steps of 2.5 keep their decimal: 2.5, 5.0, 7.5 (the colour bar of a grid) */
    ids__plot_tick_label(&t, 2.5, buf, sizeof buf);
    CHECKF(t.step == 2.5 && !strcmp(buf, "2.5"), "step %g label '%s'", t.step, buf);
    t = ids__plot_ticks(0, 100, 4);
    CHECKF(t.step == 25 && t.decimals == 0, "step %g decimals %d", t.step, t.decimals);
    t = ids__plot_ticks(3, 3, 5); /* one value: a range around it */
    CHECK(t.lo < 3 && t.hi > 3 && t.n >= 2);
    t = ids__plot_ticks(NAN, 1, 5);
    CHECK(isfinite(t.lo) && isfinite(t.hi) && t.step > 0);
}

TEST(plot_diverging_scale) {
    int c[3];
    CHECK(!ids__plot_diverging(0, c));
    CHECK(c[0] == 247 && c[1] == 247 && c[2] == 247); /* white at 0 */
    CHECK(ids__plot_diverging(1, c) && c[0] > c[2]);  /* dark red: white text */
    CHECK(ids__plot_diverging(-1, c) && c[2] > c[0]); /* dark blue: white text, not black on blue */
    CHECK(!ids__plot_diverging(0.3, c) && c[0] > c[2]);
    ids__plot_diverging(5, c); /* clamped */
    int d[3];
    ids__plot_diverging(1, d);
    CHECK(c[0] == d[0] && c[1] == d[1] && c[2] == d[2]);
}

/* The centres of the circles of an SVG, in order. */
static int circles(const char *s, double *x, double *y, int max) {
    int n = 0;
    for (const char *p = strstr(s, "<circle cx=\""); p && n < max; p = strstr(p + 1, "<circle cx=\""))
        if (sscanf(p, "<circle cx=\"%lf\" cy=\"%lf\"", &x[n], &y[n]) == 2) n++;
    return n;
}

TEST(plot_scatter_equal_aspect) {
    const double px[4] = {0, 10, 0, 10}, py[4] = {0, 0, 1, 1};
    const int gx[4] = {0, 1, 0, 1}, gy[4] = {0, 0, 1, 1};
    const ids__plot_plane pl = {"t", "PC1", "PC2", 4, px, py, gx, gy};
    ids__tb b = {0};
    ids__plot_scatter(&b, &pl);
    REQUIRE(!b.oom && b.p);
    double x[8], y[8];
    REQUIRE(circles(b.p, x, y, 8) == 4);
    const double ux = fabs(x[1] - x[0]) / 10, uy = fabs(y[2] - y[0]) / 1; /* pixels per unit on each axis */
    CHECKF(fabs(ux - uy) < 0.02 * ux, "pixels per unit: x %g, y %g", ux, uy);
    CHECK(y[2] < y[0]); /* y grows upwards */
    CHECK(strstr(b.p, "class=\"xlabel\"") && strstr(b.p, "\">PC1</text>") && strstr(b.p, "class=\"ylabel\"") &&
          strstr(b.p, "\">PC2</text>"));
    int edges = 0; /* 4 cells of a 2 x 2 grid: 2 row and 2 column neighbours */
    for (const char *p = strstr(b.p, "<line x1"); p; p = strstr(p + 1, "<line x1"))
        if (strstr(p, "stroke-width=\"1.6\"") && strstr(p, "stroke-width=\"1.6\"") < strchr(p, '>')) edges++;
    CHECK_EQ_INT(edges, 4);
    free(b.p);
}

/* A flat plane (PC1 spanning 25 units, PC2 2, as the bundled model's layer 1) keeps equal units, two
 * labelled ticks on each axis, and room for its axis label. */
TEST(plot_scatter_flat_plane) {
    const double px[3] = {-13, 0, 12}, py[3] = {-1, 1, 0.2};
    const ids__plot_plane pl = {"t", "PC1", "PC2 (units)", 3, px, py, NULL, NULL};
    ids__tb b = {0};
    ids__plot_scatter(&b, &pl);
    REQUIRE(!b.oom && b.p);
    int yt = 0;
    const char *ya = strstr(b.p, "class=\"axis y\""), *xa = strstr(b.p, "class=\"axis x\"");
    REQUIRE(ya && xa);
    for (const char *q = strstr(ya, "class=\"tick\""); q && q < xa; q = strstr(q + 1, "class=\"tick\"")) yt++;
    CHECKF(yt >= 2, "%d y ticks", yt);
    double w = 0, h = 0;
    REQUIRE(sscanf(b.p, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%lf\" height=\"%lf\"", &w, &h) == 2);
    CHECKF(h >= 234 + 52, "height %g: no room for the y label", h);
    double x[4], y[4];
    REQUIRE(circles(b.p, x, y, 4) == 3);
    CHECKF(fabs((x[2] - x[0]) / 25 - (y[0] - y[1]) / 2) < 0.02 * (x[2] - x[0]) / 25, "units differ");
    free(b.p);
}

TEST(plot_heatmaps_share_one_scale) {
    const double a[4] = {0.14, 0, 0, -0.07}, c[4] = {0.03, 0, 0, 0};
    const ids__plot_panel p[2] = {{"a", 2, 2, a, -1, -1}, {"c", 2, 2, c, 1, 0}};
    const ids__plot_heat h = {"t", "row", "column", "change (nats)"};
    ids__tb b = {0};
    ids__plot_heatmaps(&b, &h, p, 2);
    REQUIRE(!b.oom && b.p);
    int full = 0, top[3], c3[3];
    ids__plot_diverging(1, top);
    ids__plot_diverging(0.03 / 0.15, c3); /* the scale ends at the tick above 0.14 */
    char want[64], want3[64];
    snprintf(want, sizeof want, "fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"", top[0], top[1], top[2]);
    snprintf(want3, sizeof want3, "fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"", c3[0], c3[1], c3[2]);
    for (const char *q = strstr(b.p, want); q; q = strstr(q + 1, want)) full++;
    CHECK_EQ_INT(full, 0);             /* 0.14 is not the scale's end: the bar's top is 0.15 */
    CHECK(strstr(b.p, want3) != NULL); /* 0.03 coloured on the shared scale, not as its panel's maximum */
    CHECK(strstr(b.p, "class=\"colorbar\"") && strstr(b.p, ">0.15<") && strstr(b.p, ">\xe2\x88\x92" "0.15<"));
    CHECK(strstr(b.p, "class=\"source\"") != NULL); /* panel c marks its source cell */
    free(b.p);
}

TEST(plot_lines_bands_legend_and_gaps) {
    const double y[4] = {0.2, 0.5, NAN, 0.9}, lo[4] = {0.1, 0.4, NAN, 0.8}, hi[4] = {0.3, 0.6, NAN, 1.0};
    const double z[4] = {0.1, 0.1, 0.1, 0.1};
    const ids__plot_series s[2] = {{"ID steering", y, lo, hi, 0, IDS_PLOT_SOLID}, {"noise", z, NULL, NULL, 1, IDS_PLOT_DASHED}};
    const ids__plot_axes ax = {"t", "layer", "fraction swapped", 1, 4, 0, 1, NULL, NULL, 0};
    ids__tb b = {0};
    ids__plot_lines(&b, &ax, s, 2);
    REQUIRE(!b.oom && b.p);
    int bands = 0, lines = 0, legends = 0;
    for (const char *p = strstr(b.p, "class=\"band\""); p; p = strstr(p + 1, "class=\"band\"")) bands++;
    for (const char *p = strstr(b.p, "<polyline"); p; p = strstr(p + 1, "<polyline")) lines++;
    for (const char *p = strstr(b.p, "<g class=\"legend\"><line"); p; p = strstr(p + 1, "<g class=\"legend\"><line")) legends++;
    CHECK_EQ_INT(bands, 1);   /* only the series with an interval */
    CHECK_EQ_INT(lines, 3);   /* the NaN splits the first line in two */
    CHECK_EQ_INT(legends, 2); /* each entry a line sample */
    CHECK(strstr(b.p, "stroke-dasharray=\"7,4\"") != NULL);
    CHECK(strstr(b.p, ">0.0<") && strstr(b.p, ">1.0<") && strstr(b.p, ">fraction swapped<")); /* 0..1 kept */
    free(b.p);
}
