/* Figures for the report: ticks, line charts with legends and bands, equal-aspect planes, diverging
 * heat maps with a shared colour bar, bar charts with 95% whiskers (plot.h). Every figure is drawn
 * through one canvas with two backends: SVG text, or an RGB raster (raster.h) for the PNG files. */
#include "exp/plot.h"
#include "exp/raster.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "font-family=\"DejaVu Sans, Arial, sans-serif\""

/* Okabe-Ito: told apart with the common colour-vision deficiencies. */
static const char *const k_palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
static const char *const k_dash[] = {"", "7,4", "2,3", "8,3,2,3"}; /* SVG stroke-dasharray, user units */

static const char *color(int k) { return k_palette[(k < 0 ? -k : k) % 7]; }
static const char *dash(int k) { return k_dash[(k < 0 ? -k : k) % 4]; }

/* ---- the canvas: each primitive written as SVG or drawn into the raster ---- */

typedef struct cv {
    ids__tb *b;      /* SVG text, or (NULL) */
    ids__raster *r;  /* the raster */
    double scale;    /* the raster's device pixels per unit */
} cv;

static void esc(ids__tb *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') ids__tb_printf(b, "&lt;");
        else if (*s == '>') ids__tb_printf(b, "&gt;");
        else if (*s == '&') ids__tb_printf(b, "&amp;");
        else if (*s == '"') ids__tb_printf(b, "&quot;");
        else ids__tb_printf(b, "%c", *s);
    }
}

static void cv_open(cv *c, int w, int h) {
    if (c->b)
        ids__tb_printf(c->b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" " FONT
                             " font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
                       w, h, w, h);
    else ids__raster_init(c->r, w, h, c->scale);
}

static void cv_close(cv *c) {
    if (c->b) ids__tb_printf(c->b, "</svg>\n");
}

static void cv_group(cv *c, const char *cls) {
    if (c->b && cls) ids__tb_printf(c->b, "<g class=\"%s\">", cls);
    else if (c->b) ids__tb_printf(c->b, "</g>\n");
}

/* " class=\"cls\"" when cls is given. */
static void cls_attr(ids__tb *b, const char *cls) {
    if (cls) ids__tb_printf(b, " class=\"%s\"", cls);
}

static int parse_dash(const char *d, double v[4]) {
    const int n = d && *d ? sscanf(d, "%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3]) : 0;
    return n > 0 ? n : 0;
}

static void cv_line(cv *c, const char *cls, double x1, double y1, double x2, double y2, const char *stroke, double width,
                    const char *dsh) {
    if (c->b) {
        ids__tb_printf(c->b, "<line");
        cls_attr(c->b, cls);
        ids__tb_printf(c->b, " x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"", x1, y1, x2, y2, stroke);
        if (width > 0) ids__tb_printf(c->b, " stroke-width=\"%g\"", width);
        if (dsh && *dsh) ids__tb_printf(c->b, " stroke-dasharray=\"%s\"", dsh);
        ids__tb_printf(c->b, "/>");
        if (!cls || strcmp(cls, "sample")) ids__tb_printf(c->b, "\n");
        return;
    }
    uint8_t rgb[3];
    double d[4];
    const double p[4] = {x1, y1, x2, y2};
    if (ids__raster_color(stroke, rgb)) ids__raster_polyline(c->r, p, 2, width > 0 ? width : 1, rgb, d, parse_dash(dsh, d));
}

/* A polyline (fill none) or, with fill, a polygon of n points. */
static void cv_poly(cv *c, const char *cls, const double *xy, int n, const char *stroke, double width, const char *dsh,
                    const char *fill, double opacity) {
    if (c->b) {
        if (fill) {
            ids__tb_printf(c->b, "<polygon");
            cls_attr(c->b, cls);
            ids__tb_printf(c->b, " fill=\"%s\" fill-opacity=\"%g\" stroke=\"none\" points=\"", fill, opacity);
        } else {
            ids__tb_printf(c->b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-linejoin=\"round\"", stroke, width);
            if (dsh && *dsh) ids__tb_printf(c->b, " stroke-dasharray=\"%s\"", dsh);
            ids__tb_printf(c->b, " points=\"");
        }
        for (int i = 0; i < n; i++) ids__tb_printf(c->b, "%.1f,%.1f ", xy[2 * i], xy[2 * i + 1]);
        ids__tb_printf(c->b, "\"/>\n");
        return;
    }
    uint8_t rgb[3];
    double d[4];
    if (fill && ids__raster_color(fill, rgb)) ids__raster_polygon(c->r, xy, n, rgb, opacity);
    else if (!fill && ids__raster_color(stroke, rgb)) ids__raster_polyline(c->r, xy, n, width, rgb, d, parse_dash(dsh, d));
}

static void cv_rect(cv *c, const char *cls, double x, double y, double w, double h, const char *fill, const char *stroke,
                    double sw) {
    if (c->b) {
        ids__tb_printf(c->b, "<rect");
        cls_attr(c->b, cls);
        ids__tb_printf(c->b, " x=\"%.1f\" y=\"%.2f\" width=\"%.1f\" height=\"%.2f\" fill=\"%s\"", x, y, w, h, fill);
        if (stroke) ids__tb_printf(c->b, " stroke=\"%s\"", stroke);
        if (sw > 0) ids__tb_printf(c->b, " stroke-width=\"%g\"", sw);
        ids__tb_printf(c->b, "/>\n");
        return;
    }
    uint8_t rgb[3];
    if (ids__raster_color(fill, rgb)) ids__raster_rect(c->r, x, y, w, h, rgb);
    if (stroke && ids__raster_color(stroke, rgb)) { /* the outline centred on the edges, as SVG draws it */
        const double s = sw > 0 ? sw : 1;
        const double p[10] = {x, y, x + w, y, x + w, y + h, x, y + h, x, y};
        for (int i = 0; i < 4; i++) {
            const double e[4] = {p[2 * i] - (i == 0 ? s / 2 : i == 2 ? -s / 2 : 0), p[2 * i + 1] - (i == 1 ? s / 2 : i == 3 ? -s / 2 : 0),
                                 p[2 * i + 2] + (i == 0 ? s / 2 : i == 2 ? -s / 2 : 0), p[2 * i + 3] + (i == 1 ? s / 2 : i == 3 ? -s / 2 : 0)};
            ids__raster_polyline(c->r, e, 2, s, rgb, NULL, 0);
        }
    }
}

static void cv_circle(cv *c, double x, double y, double rad, const char *fill) {
    uint8_t rgb[3];
    if (c->b) ids__tb_printf(c->b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%g\" fill=\"%s\"/>\n", x, y, rad, fill);
    else if (ids__raster_color(fill, rgb)) ids__raster_circle(c->r, x, y, rad, rgb);
}

/* Text with its baseline at y; size 0: the figure's 12; fill NULL: black; rot: rotated -90 degrees
 * about (x, y). */
typedef struct text_style {
    const char *cls;
    double size;
    int anchor;
    bool bold, rot;
    const char *fill;
} text_style;

static void cv_text(cv *c, double x, double y, const text_style *t, const char *s) {
    if (!c->b) {
        uint8_t rgb[3] = {0, 0, 0};
        if (t->fill) ids__raster_color(t->fill, rgb);
        ids__raster_text(c->r, x, y, s, t->size > 0 ? t->size : 12, t->anchor, t->bold, rgb, t->rot);
        return;
    }
    ids__tb_printf(c->b, "<text");
    cls_attr(c->b, t->cls);
    ids__tb_printf(c->b, " x=\"%.1f\" y=\"%.1f\"", x, y);
    if (t->anchor != IDS_TEXT_START) ids__tb_printf(c->b, " text-anchor=\"%s\"", t->anchor == IDS_TEXT_MIDDLE ? "middle" : "end");
    if (t->size > 0) ids__tb_printf(c->b, " font-size=\"%g\"", t->size);
    if (t->bold) ids__tb_printf(c->b, " font-weight=\"bold\"");
    if (t->fill) ids__tb_printf(c->b, " fill=\"%s\"", t->fill);
    if (t->rot) ids__tb_printf(c->b, " transform=\"rotate(-90 %.1f %.1f)\"", x, y);
    ids__tb_printf(c->b, ">");
    esc(c->b, s);
    ids__tb_printf(c->b, "</text>\n");
}

/* ---- ticks ---- */

ids__ticks ids__plot_ticks(double lo, double hi, int target) {
    ids__ticks t = {0, 1, 0.25, 5, 2};
    if (!isfinite(lo) || !isfinite(hi)) return t;
    if (hi < lo) {
        double s = lo;
        lo = hi, hi = s;
    }
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) { /* one value: a unit around it */
        double d = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= d, hi += d;
    }
    if (target < 1) target = 1;
    const double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    const double m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    t.step = m * mag;
    t.lo = floor(lo / t.step + 1e-9) * t.step;
    t.hi = ceil(hi / t.step - 1e-9) * t.step;
    t.n = (int)lround((t.hi - t.lo) / t.step) + 1;
    const int e = (int)floor(log10(t.step) + 1e-9);
    t.decimals = e > 0 ? 0 : -e + (m == 2.5 ? 1 : 0); /* 2.5 needs one more than 2 or 5 (25 none) */
    if (t.decimals > 12) t.decimals = 12;
    return t;
}

void ids__plot_tick_label(const ids__ticks *t, double v, char *buf, size_t n) {
    if (fabs(v) < t->step * 1e-6) v = 0;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.*f", t->decimals, v);
    if (tmp[0] == '-') snprintf(buf, n, "\xe2\x88\x92%s", tmp + 1); /* U+2212 MINUS SIGN */
    else snprintf(buf, n, "%s", tmp);
}


static void title_text(cv *c, double x, double y, const char *t) {
    const text_style ts = {"title", 14, IDS_TEXT_START, true, false, NULL};
    cv_text(c, x, y, &ts, t);
}

/* A plot box at (l, t) of pw x ph, the data range mapped onto it, the x label's distance below it. */
typedef struct frame {
    double l, t, pw, ph;
    double x0, x1, y0, y1;
    double xl_dy; /* 0: 36 */
} frame;

static double fx(const frame *f, double x) { return f->l + f->pw * (x - f->x0) / (f->x1 - f->x0); }
static double fy(const frame *f, double y) { return f->t + f->ph - f->ph * (y - f->y0) / (f->y1 - f->y0); }

static void y_axis(cv *c, const frame *f, const ids__ticks *ty, const char *yl) {
    char lab[64];
    const text_style tick = {"tick", 11, IDS_TEXT_END, false, false, NULL}, lab_s = {"ylabel", 0, IDS_TEXT_MIDDLE, false, true, NULL};
    cv_group(c, "axis y");
    if (c->b) ids__tb_printf(c->b, "\n");
    for (int i = 0; i < ty->n; i++) {
        const double v = ty->lo + ty->step * i;
        if (v < f->y0 - 1e-9 * ty->step || v > f->y1 + 1e-9 * ty->step) continue;
        const double y = fy(f, v);
        ids__plot_tick_label(ty, v, lab, sizeof lab);
        cv_line(c, NULL, f->l, y, f->l + f->pw, y, fabs(v) < ty->step * 1e-6 ? "#888" : "#e5e5e5", 0, NULL);
        cv_text(c, f->l - 6, y + 4, &tick, lab);
    }
    cv_text(c, 14, f->t + f->ph / 2, &lab_s, yl);
    cv_group(c, NULL);
}

/* The axes of a frame: y ticks with grid lines (0 darker), x ticks (numbers of tx, or the category
 * names cats[0..tx->n-1] at x = 0, 1, ...), the axis labels and the box. */
static void axes(cv *c, const frame *f, const ids__ticks *tx, const char *const *cats, const ids__ticks *ty, const char *xl,
                 const char *yl) {
    char lab[64];
    const text_style tick = {"tick", 11, IDS_TEXT_MIDDLE, false, false, NULL}, lab_s = {"xlabel", 0, IDS_TEXT_MIDDLE, false, false, NULL};
    y_axis(c, f, ty, yl);
    cv_group(c, "axis x");
    if (c->b) ids__tb_printf(c->b, "\n");
    for (int i = 0; i < tx->n; i++) {
        const double v = cats ? i : tx->lo + tx->step * i;
        if (v < f->x0 - 1e-9 * tx->step || v > f->x1 + 1e-9 * tx->step) continue;
        const double x = fx(f, v);
        if (!cats) ids__plot_tick_label(tx, v, lab, sizeof lab);
        cv_line(c, NULL, x, f->t + f->ph, x, f->t + f->ph + 4, "#555", 0, NULL);
        cv_text(c, x, f->t + f->ph + 17, &tick, cats ? cats[i] : lab);
    }
    cv_text(c, f->l + f->pw / 2, f->t + f->ph + (f->xl_dy > 0 ? f->xl_dy : 36), &lab_s, xl);
    cv_group(c, NULL);
    cv_rect(c, NULL, f->l, f->t, f->pw, f->ph, "none", "#555", 0);
}

/* Integer ticks over x0..x0+n-1: every one up to 12, else a rounded step. */
static ids__ticks int_ticks(int x0, int n) {
    ids__ticks t = ids__plot_ticks(x0, x0 + (n > 1 ? n - 1 : 1), n <= 12 ? (n > 1 ? n - 1 : 1) : 8);
    if (t.step < 1) t = (ids__ticks){x0, x0 + (n > 1 ? n - 1 : 1), 1, n > 1 ? n : 2, 0};
    t.decimals = 0;
    return t;
}

static void legend_entry(cv *c, double x, double y, const char *col, const char *d, const char *name, bool marker) {
    const text_style ts = {NULL, 12, IDS_TEXT_START, false, false, NULL};
    cv_group(c, "legend");
    cv_line(c, "sample", x, y, x + 28, y, col, 2.5, d);
    if (marker && c->b) ids__tb_printf(c->b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x + 14, y, col);
    else if (marker) cv_circle(c, x + 14, y, 3, col);
    if (c->b) { /* one line per entry */
        ids__tb_printf(c->b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", x + 34, y + 4);
        esc(c->b, name);
        ids__tb_printf(c->b, "</text></g>\n");
    } else {
        cv_text(c, x + 34, y + 4, &ts, name);
    }
}

/* A series: its band (upper edge forwards, lower edge back), its line (a gap at every non-finite
 * value) and its points. xy: room for 2 n points. */
static void series_path(cv *c, const frame *f, const ids__plot_axes *ax, const ids__plot_series *s, double *xy) {
    const char *col = color(s->color);
    int k = 0;
    if (s->lo && s->hi) {
        for (int i = 0; i < ax->n; i++)
            if (isfinite(s->hi[i]) && isfinite(s->lo[i])) xy[2 * k] = fx(f, ax->x0 + i), xy[2 * k + 1] = fy(f, s->hi[i]), k++;
        for (int i = ax->n - 1; i >= 0; i--)
            if (isfinite(s->hi[i]) && isfinite(s->lo[i])) xy[2 * k] = fx(f, ax->x0 + i), xy[2 * k + 1] = fy(f, s->lo[i]), k++;
        cv_poly(c, "band", xy, k, NULL, 0, NULL, col, 0.18);
    }
    k = 0;
    for (int i = 0; i <= ax->n; i++) {
        if (i == ax->n || !isfinite(s->y[i])) {
            if (k) cv_poly(c, NULL, xy, k, col, 2.2, dash(s->dash), NULL, 1);
            k = 0;
            continue;
        }
        xy[2 * k] = fx(f, ax->x0 + i), xy[2 * k + 1] = fy(f, s->y[i]), k++;
    }
    for (int i = 0; i < ax->n; i++)
        if (isfinite(s->y[i])) cv_circle(c, fx(f, ax->x0 + i), fy(f, s->y[i]), 2.6, col);
}

static void mark_line(cv *c, const frame *f, const ids__plot_axes *ax) {
    if (!ax->mark_label || ax->mark_x < f->x0 || ax->mark_x > f->x1) return;
    const double mx = fx(f, ax->mark_x);
    const text_style ts = {NULL, 11, IDS_TEXT_START, false, false, "#555"};
    cv_line(c, "mark", mx, f->t, mx, f->t + f->ph, "#888", 0, "3,3");
    cv_text(c, mx + 4, f->t + 12, &ts, ax->mark_label);
}

static void draw_lines(cv *c, const ids__plot_axes *ax, const ids__plot_series *s, int ns) {
    double lo = isfinite(ax->ymin) ? ax->ymin : INFINITY, hi = isfinite(ax->ymax) ? ax->ymax : -INFINITY;
    int longest = 0;
    for (int k = 0; k < ns; k++) {
        for (int i = 0; i < ax->n; i++) {
            const double v[3] = {s[k].y[i], s[k].lo ? s[k].lo[i] : NAN, s[k].hi ? s[k].hi[i] : NAN};
            for (int j = 0; j < 3; j++)
                if (isfinite(v[j])) lo = fmin(lo, v[j]), hi = fmax(hi, v[j]);
        }
        const int len = s[k].name ? (int)strlen(s[k].name) : 0;
        if (len > longest) longest = len;
    }
    if (!isfinite(lo)) lo = 0, hi = 1;
    const ids__ticks ty = ids__plot_ticks(lo, hi, 5), tx = int_ticks(ax->x0, ax->n);
    const int legend_w = 48 + 7 * (longest < 34 ? longest : 34), W = 660 + legend_w;
    const int H = (int)fmax(300, 46 + 20 * ns + 20) + (ax->note ? 18 : 0);
    const double half = ax->n > 1 ? 0.3 : 1, pad = 0.03 * (ty.hi - ty.lo); /* lines kept off the frame */
    const frame f = {62, 34, W - 62 - legend_w - 20, H - 34 - 52 - (ax->note ? 18 : 0), ax->x0 - half,
                     ax->x0 + (ax->n > 1 ? ax->n - 1 : 0) + half, ty.lo - pad, ty.hi + pad, 0};
    double *xy = ids__malloc((size_t)(ax->n > 0 ? ax->n : 1) * 4 * sizeof *xy);
    if (!xy) {
        if (c->b) c->b->oom = true;
        else c->r->oom = true;
        return;
    }
    cv_open(c, W, H);
    title_text(c, f.l, 20, ax->title);
    axes(c, &f, &tx, NULL, &ty, ax->xlabel, ax->ylabel);
    mark_line(c, &f, ax);
    for (int k = 0; k < ns; k++) series_path(c, &f, ax, &s[k], xy);
    for (int k = 0; k < ns; k++)
        legend_entry(c, f.l + f.pw + 16, f.t + 10 + 20 * k, color(s[k].color), dash(s[k].dash), s[k].name, true);
    if (ax->note) {
        const text_style ts = {"note", 11, IDS_TEXT_START, false, false, "#444"};
        cv_text(c, f.l, H - 6, &ts, ax->note);
    }
    cv_close(c);
    free(xy);
}

/* The lines joining grid neighbours (same row, x differing by 1; same column, y by 1). */
static void plane_edges(cv *c, const frame *f, const ids__plot_plane *p) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p->n; i++)
            for (int j = i + 1; j < p->n; j++) {
                const bool row = p->gy[i] == p->gy[j] && abs(p->gx[i] - p->gx[j]) == 1;
                const bool col = p->gx[i] == p->gx[j] && abs(p->gy[i] - p->gy[j]) == 1;
                if ((pass == 0 && row) || (pass == 1 && col))
                    cv_line(c, NULL, fx(f, p->x[i]), fy(f, p->y[i]), fx(f, p->x[j]), fy(f, p->y[j]), color(pass), 1.6, dash(pass));
            }
}

/* Rounded ticks with at least two inside [lo, hi] (the range is not widened: a plane keeps its units). */
static ids__ticks ticks_inside(double lo, double hi, int target) {
    ids__ticks t = ids__plot_ticks(lo, hi, target);
    for (int k = target + 1; k <= 12; k++) {
        int in = 0;
        for (int i = 0; i < t.n; i++) in += t.lo + t.step * i >= lo - 1e-9 * t.step && t.lo + t.step * i <= hi + 1e-9 * t.step;
        if (in >= 2) break;
        t = ids__plot_ticks(lo, hi, k);
    }
    return t;
}

static void draw_scatter(cv *c, const ids__plot_plane *p) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < p->n; i++)
        if (isfinite(p->x[i]) && isfinite(p->y[i])) x0 = fmin(x0, p->x[i]), x1 = fmax(x1, p->x[i]), y0 = fmin(y0, p->y[i]), y1 = fmax(y1, p->y[i]);
    if (!isfinite(x0)) x0 = y0 = -1, x1 = y1 = 1;
    double span = fmax(x1 - x0, y1 - y0);
    if (span < 1e-12) span = 1;
    const double pad = 0.08 * span; /* no point on the frame */
    x0 -= pad, x1 += pad, y0 -= pad, y1 += pad;
    const double box = 460, scale = box / fmax(x1 - x0, y1 - y0); /* one unit = the same pixels on both axes */
    const double pw = (x1 - x0) * scale, ph = fmax((y1 - y0) * scale, 1);
    const double extra = ph < 200 ? (200 - ph) / 2 : 0; /* a flat plane centred in room for its axis label */
    const frame f = {66, 34 + extra, pw, ph, x0, x1, y0, y1, 0};
    const double below = fmax(52 + (p->gx ? 40 : 0), extra + 8); /* the x label and legend, or the y label's lower half */
    const int W = (int)(f.l + pw + 24) > 420 ? (int)(f.l + pw + 24) : 420, H = (int)(f.t + ph + below);
    cv_open(c, W, H);
    title_text(c, f.l, 20, p->title);
    const ids__ticks tx = ticks_inside(x0, x1, 6), ty = ticks_inside(y0, y1, ph < 80 ? 2 : (int)fmax(2, 6 * ph / pw));
    axes(c, &f, &tx, NULL, &ty, p->xlabel, p->ylabel);
    if (p->gx && p->gy) plane_edges(c, &f, p);
    const text_style ts = {NULL, 10, IDS_TEXT_START, false, false, "#333"};
    for (int i = 0; i < p->n; i++) {
        if (!isfinite(p->x[i]) || !isfinite(p->y[i])) continue;
        const double x = fx(&f, p->x[i]), y = fy(&f, p->y[i]);
        cv_circle(c, x, y, 4, "#222");
        char lab[32];
        snprintf(lab, sizeof lab, "%d,%d", p->gx ? p->gx[i] : 0, p->gy ? p->gy[i] : 0);
        if (p->gx && p->gy) cv_text(c, x + 5, y - 5, &ts, lab);
    }
    if (p->gx && p->gy) {
        legend_entry(c, f.l, f.t + ph + 58, color(0), dash(0), "same row (x and x+1)", false);
        legend_entry(c, f.l + 220, f.t + ph + 58, color(1), dash(1), "same column (y and y+1)", false);
    }
    cv_close(c);
}

bool ids__plot_diverging(double a, int rgb[3]) {
    /* RdBu anchors at -1, -0.5, 0, 0.5, 1 */
    static const int k[5][3] = {{33, 102, 172}, {103, 169, 207}, {247, 247, 247}, {239, 138, 98}, {178, 24, 43}};
    if (!isfinite(a)) a = 0;
    a = fmax(-1, fmin(1, a));
    const double pos = (a + 1) * 2;
    int i = (int)floor(pos);
    if (i > 3) i = 3;
    const double t = pos - i;
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(k[i][c] + (k[i + 1][c] - k[i][c]) * t);
    const double lum = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
    return lum < 0.5;
}

/* v with `decimals`, a minus sign (U+2212) when negative, "0" where it rounds to 0. */
static void signed_text(double v, int decimals, char *buf, size_t n) {
    const bool zero = fabs(v) < 0.5 * pow(10, -decimals);
    snprintf(buf, n, "%s%.*f", v < 0 && !zero ? "\xe2\x88\x92" : "", decimals, zero ? 0.0 : fabs(v));
}

/* The cells of a panel at (x, y), cell size cs, values scaled by m; the source cell outlined. */
static void heat_cells(cv *c, const ids__plot_panel *p, double x, double y, double cs, double m, int decimals) {
    for (int r = 0; r < p->rows; r++)
        for (int q = 0; q < p->cols; q++) {
            const double v = p->v[r * p->cols + q];
            int rgb[3] = {200, 200, 200};
            const bool dark = isfinite(v) ? ids__plot_diverging(v / m, rgb) : false;
            char fill[32], num[48];
            snprintf(fill, sizeof fill, "rgb(%d,%d,%d)", rgb[0], rgb[1], rgb[2]);
            cv_rect(c, NULL, x + cs * q, y + cs * r, cs, cs, fill, "#fff", 0);
            if (!isfinite(v)) continue;
            signed_text(v, decimals, num, sizeof num);
            const text_style ts = {NULL, 10, IDS_TEXT_MIDDLE, false, false, dark ? "#fff" : "#111"};
            cv_text(c, x + cs * q + cs / 2, y + cs * r + cs / 2 + 3.5, &ts, num);
        }
    if (p->mark_row >= 0 && p->mark_row < p->rows && p->mark_col >= 0 && p->mark_col < p->cols)
        cv_rect(c, "source", x + cs * p->mark_col + 1.5, y + cs * p->mark_row + 1.5, cs - 3, cs - 3, "none", "#000", 3);
}

/* One panel at (x, y): its title, column numbers above, row numbers left, the cells, the labels. */
static void heat_panel(cv *c, const ids__plot_heat *h, const ids__plot_panel *p, double x, double y, double cs, double m,
                       int decimals) {
    const text_style head = {NULL, 12, IDS_TEXT_START, true, false, NULL}, colt = {"tick", 10, IDS_TEXT_MIDDLE, false, false, NULL},
                     rowt = {"tick", 10, IDS_TEXT_END, false, false, NULL}, cl = {NULL, 11, IDS_TEXT_MIDDLE, false, false, NULL},
                     rl = {NULL, 11, IDS_TEXT_MIDDLE, false, true, NULL};
    char lab[16];
    cv_group(c, "panel");
    if (c->b) ids__tb_printf(c->b, "\n");
    cv_text(c, x, y - 24, &head, p->title);
    for (int i = 0; i < p->cols; i++) snprintf(lab, sizeof lab, "%d", i), cv_text(c, x + cs * i + cs / 2, y - 5, &colt, lab);
    for (int r = 0; r < p->rows; r++) snprintf(lab, sizeof lab, "%d", r), cv_text(c, x - 5, y + cs * r + cs / 2 + 4, &rowt, lab);
    heat_cells(c, p, x, y, cs, m, decimals);
    cv_text(c, x + cs * p->cols / 2, y + cs * p->rows + 16, &cl, h->col_label);
    cv_text(c, x - 22, y + cs * p->rows / 2, &rl, h->row_label);
    cv_group(c, NULL);
}

/* The colour bar at (x, y), height hh, for values -m..m (ticks t). */
static void colorbar(cv *c, const ids__plot_heat *h, double x, double y, double hh, double m, const ids__ticks *t) {
    cv_group(c, "colorbar");
    if (c->b) ids__tb_printf(c->b, "\n");
    const int steps = 40;
    for (int i = 0; i < steps; i++) {
        int rgb[3];
        char fill[32];
        ids__plot_diverging(1 - 2.0 * (i + 0.5) / steps, rgb);
        snprintf(fill, sizeof fill, "rgb(%d,%d,%d)", rgb[0], rgb[1], rgb[2]);
        cv_rect(c, NULL, x, y + hh * i / steps, 16, hh / steps + 0.3, fill, NULL, 0);
    }
    cv_rect(c, NULL, x, y, 16, hh, "none", "#555", 0);
    char lab[64];
    const text_style tick = {"tick", 10, IDS_TEXT_START, false, false, NULL}, lab_s = {"label", 11, IDS_TEXT_MIDDLE, false, true, NULL};
    for (int i = 0; i < t->n; i++) {
        const double v = t->lo + t->step * i;
        if (v < -m - 1e-12 || v > m + 1e-12) continue;
        const double yy = y + hh * (m - v) / (2 * m);
        ids__plot_tick_label(t, v, lab, sizeof lab);
        cv_line(c, NULL, x + 16, yy, x + 20, yy, "#555", 0, NULL);
        cv_text(c, x + 23, yy + 3.5, &tick, lab);
    }
    cv_text(c, x + 72, y + hh / 2, &lab_s, h->value_label);
    cv_group(c, NULL);
}

static void draw_heatmaps(cv *c, const ids__plot_heat *h, const ids__plot_panel *p, int np) {
    double m = 0;
    int rows = 1, cols = 1;
    for (int k = 0; k < np; k++) {
        for (int i = 0; i < p[k].rows * p[k].cols; i++)
            if (isfinite(p[k].v[i])) m = fmax(m, fabs(p[k].v[i]));
        rows = p[k].rows > rows ? p[k].rows : rows, cols = p[k].cols > cols ? p[k].cols : cols;
    }
    ids__ticks t = ids__plot_ticks(-(m > 0 ? m : 1), m > 0 ? m : 1, 6);
    m = t.hi; /* the scale's end is a tick: equal colours mean equal values in every panel */
    const double cs = fmin(44, 176.0 / (rows > cols ? rows : cols));
    const int per_row = np < 4 ? (np > 0 ? np : 1) : 4, prow = (np + per_row - 1) / per_row;
    const double pw = cs * cols + 56, ph = cs * rows + 64;
    const int W = (int)(per_row * pw + 120), H = (int)(34 + prow * ph + 8);
    cv_open(c, W, H);
    title_text(c, 8, 18, h->title);
    for (int k = 0; k < np; k++)
        heat_panel(c, h, &p[k], 40 + (k % per_row) * pw, 34 + 26 + (k / per_row) * ph, cs, m, t.decimals + 1);
    colorbar(c, h, per_row * pw + 24, 60, fmin(H - 80, 200), m, &t);
    cv_close(c);
}

/* Bars from 0 in the palette's colours, the 95% interval as a whisker with caps, each bar's value
 * under its name. */
static void draw_bars(cv *c, const ids__plot_bars *p) {
    const int n = p->n < 1 ? 1 : p->n > 8 ? 8 : p->n;
    double lo = 0, hi = 0;
    for (int i = 0; i < n && i < p->n; i++) {
        const double v[3] = {p->v[i], p->lo ? p->lo[i] : NAN, p->hi ? p->hi[i] : NAN};
        for (int q = 0; q < 3; q++)
            if (isfinite(v[q])) lo = fmin(lo, v[q]), hi = fmax(hi, v[q]);
    }
    const ids__ticks ty = ids__plot_ticks(lo, hi > lo ? hi : lo + 1, 5);
    const ids__ticks tx = {0, n - 1, 1, n, 0};
    const double pad = 0.03 * (ty.hi - ty.lo);
    const int W = 560, H = 290;
    const frame f = {62, 34, W - 62 - 20, H - 34 - 72, -0.5, n - 0.5, ty.lo - (ty.lo < 0 ? pad : 0), ty.hi + (ty.hi > 0 ? pad : 0), 52};
    const char *cats[8];
    for (int i = 0; i < n; i++) cats[i] = i < p->n && p->labels[i] ? p->labels[i] : "";
    cv_open(c, W, H);
    title_text(c, f.l, 20, p->title);
    axes(c, &f, &tx, cats, &ty, p->xlabel, p->ylabel);
    const text_style val = {"value", 10, IDS_TEXT_MIDDLE, false, false, "#444"};
    const double bw = f.pw / n * 0.6;
    for (int i = 0; i < n && i < p->n; i++) {
        const double cx = fx(&f, i), y0 = fy(&f, 0);
        char num[48];
        if (isfinite(p->v[i])) {
            const double y1 = fy(&f, p->v[i]);
            cv_rect(c, "bar", cx - bw / 2, fmin(y0, y1), bw, fmax(fabs(y1 - y0), 0.5), k_palette[i % 6], NULL, 0);
            snprintf(num, sizeof num, "%.3g", fabs(p->v[i]));
            if (p->v[i] < 0 && strspn(num, "0.") != strlen(num)) memmove(num + 3, num, strlen(num) + 1), memcpy(num, "\xe2\x88\x92", 3);
            cv_text(c, cx, f.t + f.ph + 31, &val, num);
        }
        if (p->lo && p->hi && isfinite(p->lo[i]) && isfinite(p->hi[i])) { /* the 95% interval */
            const double a = fy(&f, p->lo[i]), b = fy(&f, p->hi[i]);
            cv_line(c, "whisker", cx, a, cx, b, "#000", 1.2, NULL);
            cv_line(c, "whisker", cx - 5, a, cx + 5, a, "#000", 1.2, NULL);
            cv_line(c, "whisker", cx - 5, b, cx + 5, b, "#000", 1.2, NULL);
        }
    }
    cv_close(c);
}

/* ---- the public entry points ---- */

static void draw(cv *c, const ids__plot_fig *f) {
    if (f->kind == IDS_FIG_LINES) draw_lines(c, f->ax, f->s, f->ns);
    else if (f->kind == IDS_FIG_SCATTER) draw_scatter(c, f->plane);
    else if (f->kind == IDS_FIG_HEAT) draw_heatmaps(c, f->heat, f->panels, f->np);
    else if (f->kind == IDS_FIG_BARS) draw_bars(c, f->bars);
}

void ids__plot_svg(ids__tb *b, const ids__plot_fig *f) {
    cv c = {b, NULL, 1};
    draw(&c, f);
}

ids_status ids__plot_image(const ids__plot_fig *f, double scale, ids_image *out, ids_err *err) {
    ids__raster r = {0};
    cv c = {NULL, &r, scale};
    memset(out, 0, sizeof *out);
    draw(&c, f);
    if (r.oom || !r.rgb) {
        ids__raster_free(&r);
        return ids__err(err, IDS_ERR_NOMEM, "figure: out of memory drawing the PNG");
    }
    out->w = r.w, out->h = r.h, out->rgb = r.rgb;
    r.rgb = NULL;
    ids__raster_free(&r);
    return IDS_OK;
}

void ids__plot_lines(ids__tb *b, const ids__plot_axes *ax, const ids__plot_series *s, int ns) {
    const ids__plot_fig f = {.kind = IDS_FIG_LINES, .ax = ax, .s = s, .ns = ns};
    ids__plot_svg(b, &f);
}

void ids__plot_scatter(ids__tb *b, const ids__plot_plane *p) {
    const ids__plot_fig f = {.kind = IDS_FIG_SCATTER, .plane = p};
    ids__plot_svg(b, &f);
}

void ids__plot_heatmaps(ids__tb *b, const ids__plot_heat *h, const ids__plot_panel *p, int np) {
    const ids__plot_fig f = {.kind = IDS_FIG_HEAT, .heat = h, .panels = p, .np = np};
    ids__plot_svg(b, &f);
}

void ids__plot_bar_chart(ids__tb *b, const ids__plot_bars *p) {
    const ids__plot_fig f = {.kind = IDS_FIG_BARS, .bars = p};
    ids__plot_svg(b, &f);
}
