/* The RGB raster of the PNG figures: anti-aliased polygons, lines, circles and a bitmap font
 * (raster.h). */
#include "exp/raster.h"
#include "base/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB 4 /* sub-rows per pixel row */

bool ids__raster_init(ids__raster *r, double w, double h, double scale) {
    memset(r, 0, sizeof *r);
    r->scale = scale > 0 ? scale : 1;
    r->w = (int)ceil(w * r->scale), r->h = (int)ceil(h * r->scale);
    if (r->w < 1 || r->h < 1 || r->w > 16384 || r->h > 16384) {
        r->oom = true;
        return false;
    }
    r->rgb = ids__malloc((size_t)r->w * (size_t)r->h * 3);
    r->cov = ids__calloc((size_t)r->w + 2, sizeof(float));
    if (!r->rgb || !r->cov) {
        ids__raster_free(r);
        r->oom = true;
        return false;
    }
    memset(r->rgb, 255, (size_t)r->w * (size_t)r->h * 3);
    return true;
}

void ids__raster_free(ids__raster *r) {
    free(r->rgb), free(r->cov), free(r->xs), free(r->dir);
    r->rgb = NULL, r->cov = NULL, r->xs = NULL, r->dir = NULL, r->cap = 0;
}

bool ids__raster_color(const char *s, uint8_t rgb[3]) {
    unsigned a, b, c;
    char tail;
    if (!s) return false;
    if (s[0] == '#' && strlen(s) == 7 && sscanf(s + 1, "%2x%2x%2x%c", &a, &b, &c, &tail) == 3) {
        rgb[0] = (uint8_t)a, rgb[1] = (uint8_t)b, rgb[2] = (uint8_t)c;
        return true;
    }
    if (s[0] == '#' && strlen(s) == 4 && sscanf(s + 1, "%1x%1x%1x%c", &a, &b, &c, &tail) == 3) {
        rgb[0] = (uint8_t)(a * 17), rgb[1] = (uint8_t)(b * 17), rgb[2] = (uint8_t)(c * 17);
        return true;
    }
    if (sscanf(s, "rgb(%u,%u,%u)", &a, &b, &c) == 3 && a < 256 && b < 256 && c < 256) {
        rgb[0] = (uint8_t)a, rgb[1] = (uint8_t)b, rgb[2] = (uint8_t)c;
        return true;
    }
    return false;
}

/* Coverage w over [xa, xb) of the current row (device pixels, clamped). */
static void span(ids__raster *r, double xa, double xb, float w) {
    xa = fmax(xa, 0), xb = fmin(xb, r->w);
    if (xb <= xa) return;
    const int ia = (int)xa, ib = (int)xb;
    if (ia == ib) {
        r->cov[ia] += (float)(xb - xa) * w;
        return;
    }
    r->cov[ia] += (float)(ia + 1 - xa) * w;
    for (int i = ia + 1; i < ib; i++) r->cov[i] += w;
    if (ib < r->w) r->cov[ib] += (float)(xb - ib) * w;
}

static bool grow(ids__raster *r, int n) {
    if (n <= r->cap) return true;
    double *xs = ids__realloc(r->xs, (size_t)n * sizeof *xs);
    if (xs) r->xs = xs;
    int *d = xs ? ids__realloc(r->dir, (size_t)n * sizeof *d) : NULL;
    if (!d) {
        r->oom = true;
        return false;
    }
    r->dir = d, r->cap = n;
    return true;
}

/* The crossings of sub-row sy (device units) sorted by x, nonzero spans added to the coverage. */
static void sub_row(ids__raster *r, const double *p, int n, double sy) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        const double *a = p + 2 * i, *b = p + 2 * ((i + 1) % n);
        if (a[1] == b[1] || sy < fmin(a[1], b[1]) || sy >= fmax(a[1], b[1])) continue;
        const double x = a[0] + (sy - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
        int j = k++;
        for (; j > 0 && r->xs[j - 1] > x; j--) r->xs[j] = r->xs[j - 1], r->dir[j] = r->dir[j - 1];
        r->xs[j] = x, r->dir[j] = b[1] > a[1] ? 1 : -1;
    }
    int wind = 0;
    double start = 0;
    for (int j = 0; j < k; j++) {
        if (wind == 0) start = r->xs[j];
        wind += r->dir[j];
        if (wind == 0) span(r, start, r->xs[j], 1.0f / SUB);
    }
}

/* A polygon already in device coordinates. */
static void fill_device(ids__raster *r, const double *p, int n, const uint8_t rgb[3], double alpha) {
    if (r->oom || n < 3 || !grow(r, n)) return;
    double y0 = INFINITY, y1 = -INFINITY, x0 = INFINITY, x1 = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(p[2 * i]) || !isfinite(p[2 * i + 1])) return;
        y0 = fmin(y0, p[2 * i + 1]), y1 = fmax(y1, p[2 * i + 1]), x0 = fmin(x0, p[2 * i]), x1 = fmax(x1, p[2 * i]);
    }
    const int ya = (int)fmax(0, floor(y0)), yb = (int)fmin(r->h, ceil(y1));
    const int xa = (int)fmax(0, floor(x0)), xb = (int)fmin(r->w - 1, ceil(x1));
    if (xb < xa) return;
    for (int y = ya; y < yb; y++) {
        memset(r->cov + xa, 0, (size_t)(xb - xa + 1) * sizeof(float));
        for (int s = 0; s < SUB; s++) sub_row(r, p, n, y + (s + 0.5) / SUB);
        uint8_t *row = r->rgb + (size_t)y * r->w * 3;
        for (int x = xa; x <= xb; x++) {
            const double c = fmin(1, r->cov[x]) * alpha;
            if (c <= 0) continue;
            for (int q = 0; q < 3; q++) row[3 * x + q] = (uint8_t)lround(row[3 * x + q] + (rgb[q] - row[3 * x + q]) * c);
        }
    }
}

void ids__raster_polygon(ids__raster *r, const double *xy, int n, const uint8_t rgb[3], double alpha) {
    if (r->oom || n < 3) return;
    double *p = ids__malloc((size_t)n * 2 * sizeof *p);
    if (!p) {
        r->oom = true;
        return;
    }
    for (int i = 0; i < 2 * n; i++) p[i] = xy[i] * r->scale;
    fill_device(r, p, n, rgb, alpha);
    free(p);
}

void ids__raster_rect(ids__raster *r, double x, double y, double w, double h, const uint8_t rgb[3]) {
    const double p[8] = {x, y, x + w, y, x + w, y + h, x, y + h};
    if (w > 0 && h > 0) ids__raster_polygon(r, p, 4, rgb, 1);
}

void ids__raster_circle(ids__raster *r, double cx, double cy, double rad, const uint8_t rgb[3]) {
    double p[2 * 64];
    const int n = (int)fmin(64, fmax(12, 2 * M_PI * rad * r->scale / 2));
    for (int i = 0; i < n; i++) p[2 * i] = cx + rad * cos(2 * M_PI * i / n), p[2 * i + 1] = cy + rad * sin(2 * M_PI * i / n);
    ids__raster_polygon(r, p, n, rgb, 1);
}

/* One straight piece of a line (user units), butt ends. */
static void piece(ids__raster *r, double ax, double ay, double bx, double by, double width, const uint8_t rgb[3]) {
    const double dx = bx - ax, dy = by - ay, len = hypot(dx, dy);
    if (len <= 0) return;
    const double nx = -dy / len * width / 2, ny = dx / len * width / 2;
    const double p[8] = {ax + nx, ay + ny, bx + nx, by + ny, bx - nx, by - ny, ax - nx, ay - ny};
    ids__raster_polygon(r, p, 4, rgb, 1);
}

void ids__raster_polyline(ids__raster *r, const double *xy, int n, double width, const uint8_t rgb[3], const double *dash,
                          int nd) {
    double total = 0;
    for (int k = 0; k < nd; k++) total += dash[k] > 0 ? dash[k] : 0;
    if (total <= 0) nd = 0;
    int k = 0;
    bool on = true;
    double left = nd ? dash[0] : 0;
    for (int i = 0; i + 1 < n; i++) {
        const double ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * i + 2], by = xy[2 * i + 3], len = hypot(bx - ax, by - ay);
        if (!nd) {
            piece(r, ax, ay, bx, by, width, rgb);
            if (i > 0) ids__raster_circle(r, ax, ay, width / 2, rgb); /* a round join */
            continue;
        }
        for (double t = 0; t < len;) {
            const double step = fmin(left, len - t);
            if (on && step > 0)
                piece(r, ax + (bx - ax) * t / len, ay + (by - ay) * t / len, ax + (bx - ax) * (t + step) / len,
                      ay + (by - ay) * (t + step) / len, width, rgb);
            t += step, left -= step;
            if (left <= 1e-9) k = (k + 1) % nd, left = dash[k], on = !(k & 1);
        }
    }
}

/* ---- the font: 5 x 7 dots of its own, lower case with descenders on two more rows ---- */

static const char *const k_glyphs[95] = {
    "...", "#/#/#/#/#/./#", "#.#/#.#", ".#.#./.#.#./#####/.#.#./#####/.#.#./.#.#.",
    "..#../.####/#.#../.###./..#.#/####./..#..", "##.../##..#/...#./..#../.#.../#..##/...##",
    ".##../#..#./#.#../.#.../#.#.#/#..#./.##.#", "#/#", ".#/#./#./#./#./#./.#", "#./.#/.#/.#/.#/.#/#.",
    "...../..#../#.#.#/.###./#.#.#/..#..", "...../..#../..#../#####/..#../..#..", "../../../../../.#/.#/#.",
    "..../..../..../####", "././././././#", "....#/...#./...#./..#../.#.../.#.../#....",
    /* 0-9 */
    ".###./#...#/#..##/#.#.#/##..#/#...#/.###.", ".#./##./.#./.#./.#./.#./###", ".###./#...#/....#/...#./..#../.#.../#####",
    "####./....#/....#/.###./....#/....#/####.", "...#./..##./.#.#./#..#./#####/...#./...#.",
    "#####/#..../####./....#/....#/#...#/.###.", "..##./.#.../#..../####./#...#/#...#/.###.",
    "#####/....#/...#./..#../.#.../.#.../.#...", ".###./#...#/#...#/.###./#...#/#...#/.###.",
    ".###./#...#/#...#/.####/....#/...#./.##..",
    /* : ; < = > ? @ */
    "././#/./././#", "../../.#/../../.#/.#/#.", "...#/..#./.#../#.../.#../..#./...#", "..../..../####/..../####",
    "#.../.#../..#./...#/..#./.#../#...", ".###./#...#/....#/...#./..#../...../..#..",
    ".###./#...#/#.###/#.#.#/#.###/#..../.####",
    /* A-Z */
    ".###./#...#/#...#/#####/#...#/#...#/#...#", "####./#...#/#...#/####./#...#/#...#/####.",
    ".###./#...#/#..../#..../#..../#...#/.###.", "####./#...#/#...#/#...#/#...#/#...#/####.",
    "#####/#..../#..../####./#..../#..../#####", "#####/#..../#..../####./#..../#..../#....",
    ".###./#...#/#..../#.###/#...#/#...#/.####", "#...#/#...#/#...#/#####/#...#/#...#/#...#",
    "###/.#./.#./.#./.#./.#./###", "..###/...#./...#./...#./...#./#..#./.##..",
    "#...#/#..#./#.#../##.../#.#../#..#./#...#", "#..../#..../#..../#..../#..../#..../#####",
    "#...#/##.##/#.#.#/#.#.#/#...#/#...#/#...#", "#...#/#...#/##..#/#.#.#/#..##/#...#/#...#",
    ".###./#...#/#...#/#...#/#...#/#...#/.###.", "####./#...#/#...#/####./#..../#..../#....",
    ".###./#...#/#...#/#...#/#.#.#/#..#./.##.#", "####./#...#/#...#/####./#.#../#..#./#...#",
    ".####/#..../#..../.###./....#/....#/####.", "#####/..#../..#../..#../..#../..#../..#..",
    "#...#/#...#/#...#/#...#/#...#/#...#/.###.", "#...#/#...#/#...#/#...#/#...#/.#.#./..#..",
    "#...#/#...#/#...#/#.#.#/#.#.#/#.#.#/.#.#.", "#...#/#...#/.#.#./..#../.#.#./#...#/#...#",
    "#...#/#...#/.#.#./..#../..#../..#../..#..", "#####/....#/...#./..#../.#.../#..../#####",
    /* [ \ ] ^ _ ` */
    "##/#./#./#./#./#./##", "#..../.#.../.#.../..#../...#./...#./....#", "##/.#/.#/.#/.#/.#/##", "..#../.#.#./#...#",
    "...../...../...../...../...../...../#####", "#./.#",
    /* a-z */
    "...../...../.###./....#/.####/#...#/.####", "#..../#..../#.##./##..#/#...#/#...#/####.",
    "...../...../.###./#..../#..../#...#/.###.", "....#/....#/.##.#/#..##/#...#/#...#/.####",
    "...../...../.###./#...#/#####/#..../.###.", "..##/.#../####/.#../.#../.#../.#..",
    "...../...../.####/#...#/#...#/.####/....#/#...#/.###.", "#..../#..../#.##./##..#/#...#/#...#/#...#",
    "#/./#/#/#/#/#", "..#/.../..#/..#/..#/..#/..#/#.#/.#.", "#.../#.../#..#/#.#./##../#.#./#..#", "#./#./#./#./#./#./.#",
    "...../...../##.#./#.#.#/#.#.#/#.#.#/#.#.#", "...../...../#.##./##..#/#...#/#...#/#...#",
    "...../...../.###./#...#/#...#/#...#/.###.", "...../...../####./#...#/#...#/####./#..../#..../#....",
    "...../...../.####/#...#/#...#/.####/....#/....#/....#", "..../..../#.##/##../#.../#.../#...",
    "...../...../.####/#..../.###./....#/####.", ".#../.#../####/.#../.#../.#../..##",
    "...../...../#...#/#...#/#...#/#..##/.##.#", "...../...../#...#/#...#/#...#/.#.#./..#..",
    "...../...../#...#/#...#/#.#.#/#.#.#/.#.#.", "...../...../#...#/.#.#./..#../.#.#./#...#",
    "...../...../#...#/#...#/#...#/.####/....#/#...#/.###.", "...../...../#####/...#./..#../.#.../#####",
    /* { | } ~ */
    "..#/.#./.#./#../.#./.#./..#", "#/#/#/#/#/#/#", "#../.#./.#./..#/.#./.#./#..", "...../...../.#.../#.#.#/...#.",
};

const char *ids__font_glyph(unsigned cp) {
    if (cp >= 32 && cp < 127) return k_glyphs[cp - 32];
    if (cp == 0x2212) return k_glyphs['-' - 32];         /* minus sign */
    if (cp == 0xB2) return "##./..#/.#./###";              /* superscript 2 */
    if (cp == 0xB7) return "./././#";                      /* middle dot */
    if (cp == 0xD7) return "...../#...#/.#.#./..#../.#.#./#...#"; /* multiplication sign */
    return NULL;
}

/* The next code point of UTF-8 text (malformed bytes: one each, as '?'). */
static unsigned next_cp(const char **s) {
    const unsigned char *p = (const unsigned char *)*s;
    unsigned cp = '?';
    int n = 1;
    if (p[0] < 0x80) cp = p[0];
    else if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) cp = (p[0] & 0x1Fu) << 6 | (p[1] & 0x3Fu), n = 2;
    else if ((p[0] & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80)
        cp = (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu), n = 3;
    *s += n;
    return cp;
}

static const char *glyph_of(const char **s) {
    const char *g = ids__font_glyph(next_cp(s));
    return g ? g : k_glyphs['?' - 32];
}

static int glyph_width(const char *g) { return (int)strcspn(g, "/"); }

/* The dot's side in device pixels for a font size: the capitals 7 dots tall, about 0.72 em. */
static int dot_px(const ids__raster *r, double size) {
    const int d = (int)lround(size * 0.72 / 7 * r->scale);
    return d < 1 ? 1 : d;
}

static int advance_dots(const char *s, bool bold) {
    int n = 0;
    while (*s) n += glyph_width(glyph_of(&s)) + 1;
    return n > 0 ? n - 1 : 0;
}

double ids__raster_text_width(const ids__raster *r, const char *s, double size, bool bold) {
    return s ? advance_dots(s, bold) * dot_px(r, size) / r->scale : 0;
}

void ids__raster_text(ids__raster *r, double x, double y, const char *s, double size, int anchor, bool bold,
                      const uint8_t rgb[3], bool rotated) {
    if (!s || r->oom) return;
    const int d = dot_px(r, size), wd = advance_dots(s, bold) * d;
    const double ox = lround(x * r->scale), oy = lround(y * r->scale); /* the anchor, whole device pixels */
    double u = anchor == IDS_TEXT_MIDDLE ? -wd / 2 : anchor == IDS_TEXT_END ? -wd : 0; /* along the text */
    u = round(u);
    while (*s) {
        const char *g = glyph_of(&s);
        const int gw = glyph_width(g);
        int row = 0, col = 0;
        for (const char *c = g; *c; c++) {
            if (*c == '/') {
                row++, col = 0;
                continue;
            }
            if (*c == '#') { /* the dot's box along (a) and across (b, up from the baseline) the text */
                const double a0 = u + col * d, a1 = a0 + d + (bold ? (d + 1) / 2 : 0), b0 = (7 - row) * d, b1 = b0 - d;
                double p[8];
                if (rotated) { /* rotate(-90) about the anchor: along the text is up the page */
                    const double q[8] = {ox - b0, oy - a0, ox - b1, oy - a0, ox - b1, oy - a1, ox - b0, oy - a1};
                    memcpy(p, q, sizeof p);
                } else {
                    const double q[8] = {ox + a0, oy - b0, ox + a1, oy - b0, ox + a1, oy - b1, ox + a0, oy - b1};
                    memcpy(p, q, sizeof p);
                }
                fill_device(r, p, 4, rgb, 1);
            }
            col++;
        }
        u += (gw + 1) * d;
    }
}
