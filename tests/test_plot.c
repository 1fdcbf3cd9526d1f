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
    CHECKF(h >= 234 + 8, "height %g: no room for the y label (200 units centred on the plot, 52.5 below it)", h);
    CHECKF(h <= 234 + 52, "height %g: empty room under the x label", h);
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

/* ---- the raster backend: the same figure as PNG ---- */

#include "exp/raster.h"

/* The numbers after `key` in the first element of s that starts with `tag` and holds `attr`. */
static bool svg_nums(const char *s, const char *tag, const char *attr, const char *key, double *v, int n) {
    for (const char *p = strstr(s, tag); p; p = strstr(p + 1, tag)) {
        const char *end = strchr(p, '>');
        const char *a = strstr(p, attr);
        if (!end || !a || a > end) continue;
        const char *k = strstr(p, key);
        if (!k || k > end) return false;
        k += strlen(key);
        for (int i = 0; i < n; i++) {
            char *e;
            v[i] = strtod(k, &e);
            if (e == k) return false;
            k = e + strspn(e, "\" ,=abcdefghijklmnopqrstuvwxyz-");
        }
        return true;
    }
    return false;
}

static const uint8_t *px(const ids_image *im, int x, int y) { return im->rgb + ((size_t)y * im->w + x) * 3; }

static bool near_rgb(const uint8_t *p, int r, int g, int b, int tol) {
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

/* Pixels darker than 128 in grey inside [x0, x1) x [y0, y1) (device pixels), and their extent. */
static int dark_in(const ids_image *im, int x0, int y0, int x1, int y1, int *w, int *h) {
    int n = 0, ax = 1 << 30, bx = -1, ay = 1 << 30, by = -1;
    for (int y = y0 > 0 ? y0 : 0; y < y1 && y < im->h; y++)
        for (int x = x0 > 0 ? x0 : 0; x < x1 && x < im->w; x++) {
            const uint8_t *p = px(im, x, y);
            if (p[0] + p[1] + p[2] < 3 * 128) n++, ax = x < ax ? x : ax, bx = x > bx ? x : bx, ay = y < ay ? y : ay, by = y > by ? y : by;
        }
    if (w) *w = n ? bx - ax + 1 : 0;
    if (h) *h = n ? by - ay + 1 : 0;
    return n;
}

static const double k_y[3] = {0, 0.5, 1};
static const ids__plot_series k_series[1] = {{"rising", k_y, NULL, NULL, 0, IDS_PLOT_SOLID}};
static const ids__plot_axes k_axes = {"A known plot", "layer steered", "fraction", 0, 3, 0, 1, NULL, NULL, 0};

/* A line chart of 0, 0.5, 1 as PNG at scale 2: the frame, the line, the labels where the SVG puts
 * them (the SVG's coordinates times 2), and through the PNG writer and reader unchanged. */
TEST(plot_png_matches_the_svg_layout) {
    const ids__plot_fig f = {.kind = IDS_FIG_LINES, .ax = &k_axes, .s = k_series, .ns = 1};
    ids__tb b = {0};
    ids__plot_svg(&b, &f);
    REQUIRE(!b.oom && b.p);
    double fr[4], pts[6], svg_wh[2], xl[2], yl[2];
    REQUIRE(svg_nums(b.p, "<rect x=", "stroke=\"#555\"", "x=\"", fr, 4)); /* the frame: x, y, width, height */
    REQUIRE(svg_nums(b.p, "<polyline", "stroke=\"#0072B2\"", "points=\"", pts, 6));
    REQUIRE(svg_nums(b.p, "<svg", "xmlns", "width=\"", svg_wh, 2));
    REQUIRE(svg_nums(b.p, "<text class=\"xlabel\"", "x=", "x=\"", xl, 2));
    REQUIRE(svg_nums(b.p, "<text class=\"ylabel\"", "x=", "x=\"", yl, 2));
    ids_image im = {0};
    ids_err err = {0};
    REQUIRE_OK(ids__plot_image(&f, 2, &im, &err), err);
    CHECKF(im.w == (int)(2 * svg_wh[0]) && im.h == (int)(2 * svg_wh[1]), "%dx%d for an SVG of %gx%g", im.w, im.h, svg_wh[0],
           svg_wh[1]);
    /* the frame's left edge (x = fr[0], 1 unit wide: device columns 2 fr[0] - 1 and 2 fr[0]) and bottom */
    const int lx = (int)lround(2 * fr[0]), by = (int)lround(2 * (fr[1] + fr[3]));
    int edge = 0, inside = 0;
    for (int y = (int)(2 * fr[1]) + 4; y < by - 4; y++) {
        edge += near_rgb(px(&im, lx - 1, y), 0x55, 0x55, 0x55, 2) && near_rgb(px(&im, lx, y), 0x55, 0x55, 0x55, 2);
        inside += px(&im, lx + 3, y)[0] > 200; /* just inside the frame: white or a light grid line */
    }
    CHECKF(edge == by - 4 - ((int)(2 * fr[1]) + 4), "left edge: %d of %d rows grey", edge, by - 8 - (int)(2 * fr[1]));
    CHECKF(inside >= edge - 12, "inside the frame: %d light rows", inside);
    int bottom = 0;
    for (int x = lx + 4; x < (int)(2 * (fr[0] + fr[2])) - 4; x++)
        bottom += near_rgb(px(&im, x, by - 1), 0x55, 0x55, 0x55, 2) && near_rgb(px(&im, x, by), 0x55, 0x55, 0x55, 2);
    CHECKF(bottom == (int)(2 * (fr[0] + fr[2])) - 4 - (lx + 4), "bottom edge: %d grey columns", bottom);
    /* the line (#0072B2, 2.2 units wide) through the midpoints of its segments */
    for (int k = 0; k < 2; k++) {
        const int mx = (int)floor(pts[2 * k] + pts[2 * k + 2]), my = (int)floor(pts[2 * k + 1] + pts[2 * k + 3]);
        const uint8_t *p = px(&im, mx, my);
        CHECKF(near_rgb(p, 0x00, 0x72, 0xB2, 6), "segment %d at (%d, %d): %d %d %d", k, mx, my, p[0], p[1], p[2]);
    }
    /* text where the labels are: the x label centred under the frame, the y label rotated (taller
     * than wide), nothing far below the frame's right end */
    int w, h;
    const int nx = dark_in(&im, (int)(2 * xl[0]) - 60, (int)(2 * xl[1]) - 20, (int)(2 * xl[0]) + 60, (int)(2 * xl[1]) + 6, &w, &h);
    CHECKF(nx > 40 && w > 3 * h, "x label: %d dark pixels, %dx%d", nx, w, h);
    const int ny = dark_in(&im, (int)(2 * yl[0]) - 16, (int)(2 * yl[1]) - 80, (int)(2 * yl[0]) + 8, (int)(2 * yl[1]) + 80, &w, &h);
    CHECKF(ny > 40 && h > 3 * w, "y label: %d dark pixels, %dx%d", ny, w, h);
    CHECK_EQ_INT(dark_in(&im, (int)(2 * (fr[0] + fr[2])) - 60, by + 90, (int)(2 * (fr[0] + fr[2])), im.h, NULL, NULL), 0);
    int colours = 0, white = 0; /* not blank */
    for (int i = 0; i < im.w * im.h; i++) {
        const uint8_t *p = im.rgb + 3 * (size_t)i;
        white += p[0] == 255 && p[1] == 255 && p[2] == 255;
        colours += near_rgb(p, 0x00, 0x72, 0xB2, 0);
    }
    CHECKF(white < im.w * im.h * 0.98 && white > im.w * im.h * 0.5 && colours > 200, "white %d of %d, line colour %d", white,
           im.w * im.h, colours);
    /* through the project's PNG writer and back */
    const char *path = t_tmp("plot.png");
    CHECK_OK_ERR(ids_image_write_png(&im, path, &err), err);
    ids_image back = {0};
    CHECK_OK_ERR(ids_image_load(&back, path, &err), err);
    CHECK(back.w == im.w && back.h == im.h && back.rgb && !memcmp(back.rgb, im.rgb, (size_t)im.w * im.h * 3));
    ids_image_free(&back);
    ids_image_free(&im);
    free(b.p);
}

/* Heat maps as PNG: each cell in its colour of the shared scale, the source cell's outline only
 * where a panel names one. */
TEST(plot_png_heat_cells_and_source) {
    const double a[4] = {0.14, 0, 0, -0.07}, c[4] = {0.03, 0, 0, 0};
    const ids__plot_panel p[2] = {{"a", 2, 2, a, -1, -1}, {"c", 2, 2, c, 1, 0}};
    const ids__plot_heat h = {"t", "row", "column", "change (nats)"};
    const ids__plot_fig f = {.kind = IDS_FIG_HEAT, .heat = &h, .panels = p, .np = 2};
    ids__tb b = {0};
    ids__plot_svg(&b, &f);
    REQUIRE(!b.oom && b.p);
    int n_src = 0;
    for (const char *q = strstr(b.p, "class=\"source\""); q; q = strstr(q + 1, "class=\"source\"")) n_src++;
    CHECK_EQ_INT(n_src, 1); /* panel a names no source cell */
    double cell[4], src[4];
    int rgb[3];
    ids__plot_diverging(-0.07 / 0.15, rgb);
    char want[48];
    snprintf(want, sizeof want, "fill=\"rgb(%d,%d,%d)\"", rgb[0], rgb[1], rgb[2]);
    REQUIRE(svg_nums(b.p, "<rect x=", want, "x=\"", cell, 4)); /* panel a, row 1, column 1 */
    REQUIRE(svg_nums(b.p, "<rect class=\"source\"", "x=", "x=\"", src, 4));
    ids_image im = {0};
    ids_err err = {0};
    REQUIRE_OK(ids__plot_image(&f, 2, &im, &err), err);
    const uint8_t *q = px(&im, (int)(2 * cell[0]) + 6, (int)(2 * cell[1]) + 6); /* a corner, clear of the number */
    CHECKF(near_rgb(q, rgb[0], rgb[1], rgb[2], 1), "cell %d %d %d, expected %d %d %d", q[0], q[1], q[2], rgb[0], rgb[1], rgb[2]);
    q = px(&im, (int)(2 * src[0]) + 1, (int)(2 * (src[1] + src[3] / 2))); /* the outline's left side, 3 units wide */
    CHECKF(near_rgb(q, 0, 0, 0, 8), "source outline %d %d %d", q[0], q[1], q[2]);
    int w, hh; /* the corresponding cell of panel a: no outline, the cell's colour at the same place */
    const double dx = src[0] - 1.5 - (cell[0] - cell[2]); /* panel c's column 0 minus panel a's column 0 */
    q = px(&im, (int)(2 * (src[0] - dx)) + 1, (int)(2 * (src[1] + src[3] / 2)));
    CHECKF(q[0] + q[1] + q[2] > 3 * 200, "no outline in panel a: %d %d %d", q[0], q[1], q[2]);
    CHECK(dark_in(&im, 0, 0, im.w, (int)(2 * 24), &w, &hh) > 30); /* the title */
    ids_image_free(&im);
    free(b.p);
}

/* Bars with whiskers: heights in proportion to the values from one 0 line, a negative bar below it,
 * three whisker lines per interval and none without one. */
TEST(plot_bars_with_whiskers) {
    static const char *const names[3] = {"ID", "random (ctl)", "orthogonal (ctl)"};
    const double v[3] = {0.6, -0.2, 0.3}, lo[3] = {0.4, -0.35, NAN}, hi[3] = {0.8, -0.05, NAN};
    const ids__plot_bars bars = {"t", "push", "change (nats)", 3, names, v, lo, hi};
    ids__tb b = {0};
    ids__plot_bar_chart(&b, &bars);
    REQUIRE(!b.oom && b.p);
    double r[3][4];
    int n = 0;
    for (const char *p = strstr(b.p, "<rect class=\"bar\""); p && n < 3; p = strstr(p + 1, "<rect class=\"bar\""), n++)
        REQUIRE(sscanf(p, "<rect class=\"bar\" x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\"", &r[n][0], &r[n][1], &r[n][2], &r[n][3]) == 4);
    REQUIRE(n == 3);
    CHECKF(fabs(r[0][3] / r[2][3] - 2) < 0.02 && fabs(r[1][3] / r[2][3] - 2.0 / 3) < 0.02, "heights %g %g %g", r[0][3], r[1][3], r[2][3]);
    CHECK(fabs(r[0][1] + r[0][3] - r[1][1]) < 0.05); /* the positive bar ends where the negative one starts: at 0 */
    int whiskers = 0;
    for (const char *p = strstr(b.p, "class=\"whisker\""); p; p = strstr(p + 1, "class=\"whisker\"")) whiskers++;
    CHECK_EQ_INT(whiskers, 6);
    CHECK(strstr(b.p, ">random (ctl)</text>") && strstr(b.p, "class=\"xlabel\"") && strstr(b.p, ">change (nats)</text>"));
    CHECK(strstr(b.p, ">\xe2\x88\x92" "0.2</text>") != NULL); /* the value under the bar, a minus sign */
    free(b.p);
}

/* The font: every glyph a rectangle of 5 x 7 dots or narrower (two more rows below the baseline at
 * most); the full stop on the baseline, the comma below it. */
TEST(plot_font_glyphs) {
    for (unsigned cp = 32; cp < 127; cp++) {
        const char *g = ids__font_glyph(cp);
        REQUIRE(g);
        const size_t w = strcspn(g, "/");
        int rows = 0;
        for (const char *r = g; *r; rows++) {
            const size_t n = strcspn(r, "/");
            CHECKF(n == w && strspn(r, ".#") == n, "glyph '%c': row %d '%.*s'", (char)cp, rows, (int)n, r);
            r += n + (r[n] == '/');
        }
        CHECKF(w >= 1 && w <= 5 && rows <= 9, "glyph '%c': %zu x %d", (char)cp, w, rows);
    }
    CHECK(!strcmp(ids__font_glyph('.'), "././././././#"));
    int slashes = 0;
    for (const char *c = ids__font_glyph(','); *c; c++) slashes += *c == '/';
    CHECK_EQ_INT(slashes, 7); /* 8 rows: the comma's tail on the first row below the baseline */
    CHECK(ids__font_glyph(0x2212) == ids__font_glyph('-') && ids__font_glyph(0x4E00) == NULL);
    ids__raster r = {0};
    REQUIRE(ids__raster_init(&r, 10, 10, 2));
    /* at size 12 and scale 2 a dot is 2 pixels, 1 unit: "1" 3 dots, "." 1, "5" 5, a dot between glyphs */
    CHECK(ids__raster_text_width(&r, "11", 12, false) == 7 && ids__raster_text_width(&r, "1.5", 12, false) == 11);
    CHECK(ids__raster_text_width(&r, "\xe2\x88\x92" "1", 12, false) == 8); /* the minus sign as '-', 4 dots */
    ids__raster_free(&r);
}

static ids_status png_cycle(void *ctx, ids_err *err) {
    ids_image im = {0};
    const ids_status st = ids__plot_image(ctx, 2, &im, err);
    ids_image_free(&im);
    return st;
}

/* A refused allocation anywhere while drawing: out of memory, nothing leaked. */
TEST(plot_png_allocation_failures) {
    const ids__plot_fig f = {.kind = IDS_FIG_LINES, .ax = &k_axes, .s = k_series, .ns = 1};
    CHECK(CHECK_ALLOC_FAILURES(png_cycle, (void *)&f, 50) >= 3);
}
