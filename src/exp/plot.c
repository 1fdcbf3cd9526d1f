/* SVG figures for the report: ticks, line charts with legends and bands, equal-aspect planes,
 * diverging heat maps with a shared colour bar (plot.h). */
#include "exp/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "font-family=\"DejaVu Sans, Arial, sans-serif\""

/* Okabe-Ito: told apart with the common colour-vision deficiencies. */
static const char *const k_palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
static const char *const k_dash[] = {"", " stroke-dasharray=\"7,4\"", " stroke-dasharray=\"2,3\"",
                                     " stroke-dasharray=\"8,3,2,3\""};

static const char *color(int k) { return k_palette[(k < 0 ? -k : k) % 7]; }
static const char *dash(int k) { return k_dash[(k < 0 ? -k : k) % 4]; }

static void esc(ids__tb *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') ids__tb_printf(b, "&lt;");
        else if (*s == '>') ids__tb_printf(b, "&gt;");
        else if (*s == '&') ids__tb_printf(b, "&amp;");
        else if (*s == '"') ids__tb_printf(b, "&quot;");
        else ids__tb_printf(b, "%c", *s);
    }
}

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

static void svg_open(ids__tb *b, int w, int h) {
    ids__tb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" " FONT
                      " font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
                   w, h, w, h);
}

static void title_text(ids__tb *b, double x, double y, const char *t) {
    ids__tb_printf(b, "<text class=\"title\" x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", x, y);
    esc(b, t);
    ids__tb_printf(b, "</text>\n");
}

/* A plot box at (l, t) of pw x ph with x ticks tx and y ticks ty, grid lines, the axis labels. */
typedef struct frame {
    double l, t, pw, ph;
    double x0, x1, y0, y1; /* data range mapped onto the box */
} frame;

static double fx(const frame *f, double x) { return f->l + f->pw * (x - f->x0) / (f->x1 - f->x0); }
static double fy(const frame *f, double y) { return f->t + f->ph - f->ph * (y - f->y0) / (f->y1 - f->y0); }

static void axes(ids__tb *b, const frame *f, const ids__ticks *tx, const ids__ticks *ty, const char *xl, const char *yl) {
    char lab[64];
    ids__tb_printf(b, "<g class=\"axis y\">\n");
    for (int i = 0; i < ty->n; i++) {
        const double v = ty->lo + ty->step * i;
        if (v < f->y0 - 1e-9 * ty->step || v > f->y1 + 1e-9 * ty->step) continue;
        const double y = fy(f, v);
        ids__plot_tick_label(ty, v, lab, sizeof lab);
        ids__tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", f->l, y, f->l + f->pw, y,
                       fabs(v) < ty->step * 1e-6 ? "#888" : "#e5e5e5");
        ids__tb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n", f->l - 6,
                       y + 4, lab);
    }
    ids__tb_printf(b, "<text class=\"ylabel\" x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">",
                   f->t + f->ph / 2, f->t + f->ph / 2);
    esc(b, yl);
    ids__tb_printf(b, "</text>\n</g>\n<g class=\"axis x\">\n");
    for (int i = 0; i < tx->n; i++) {
        const double v = tx->lo + tx->step * i;
        if (v < f->x0 - 1e-9 * tx->step || v > f->x1 + 1e-9 * tx->step) continue;
        const double x = fx(f, v);
        ids__plot_tick_label(tx, v, lab, sizeof lab);
        ids__tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\"/>\n", x, f->t + f->ph, x,
                       f->t + f->ph + 4);
        ids__tb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n", x,
                       f->t + f->ph + 17, lab);
    }
    ids__tb_printf(b, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", f->l + f->pw / 2, f->t + f->ph + 36);
    esc(b, xl);
    ids__tb_printf(b, "</text>\n</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#555\"/>\n",
                   f->l, f->t, f->pw, f->ph);
}

/* Integer ticks over x0..x0+n-1: every one up to 12, else a rounded step. */
static ids__ticks int_ticks(int x0, int n) {
    ids__ticks t = ids__plot_ticks(x0, x0 + (n > 1 ? n - 1 : 1), n <= 12 ? (n > 1 ? n - 1 : 1) : 8);
    if (t.step < 1) t = (ids__ticks){x0, x0 + (n > 1 ? n - 1 : 1), 1, n > 1 ? n : 2, 0};
    t.decimals = 0;
    return t;
}

static void legend_entry(ids__tb *b, double x, double y, const char *c, const char *d, const char *name, bool marker) {
    ids__tb_printf(b, "<g class=\"legend\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>",
                   x, y, x + 28, y, c, d);
    if (marker) ids__tb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x + 14, y, c);
    ids__tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", x + 34, y + 4);
    esc(b, name);
    ids__tb_printf(b, "</text></g>\n");
}

static void series_path(ids__tb *b, const frame *f, const ids__plot_axes *ax, const ids__plot_series *s) {
    const char *c = color(s->color);
    if (s->lo && s->hi) { /* the band: upper edge forwards, lower edge back */
        ids__tb_printf(b, "<polygon class=\"band\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", c);
        for (int i = 0; i < ax->n; i++)
            if (isfinite(s->hi[i]) && isfinite(s->lo[i])) ids__tb_printf(b, "%.1f,%.1f ", fx(f, ax->x0 + i), fy(f, s->hi[i]));
        for (int i = ax->n - 1; i >= 0; i--)
            if (isfinite(s->hi[i]) && isfinite(s->lo[i])) ids__tb_printf(b, "%.1f,%.1f ", fx(f, ax->x0 + i), fy(f, s->lo[i]));
        ids__tb_printf(b, "\"/>\n");
    }
    bool open = false;
    for (int i = 0; i < ax->n; i++) { /* a gap at every non-finite value */
        if (!isfinite(s->y[i])) {
            if (open) ids__tb_printf(b, "\"/>\n");
            open = false;
            continue;
        }
        if (!open)
            ids__tb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" stroke-linejoin=\"round\"%s points=\"", c,
                           dash(s->dash));
        open = true;
        ids__tb_printf(b, "%.1f,%.1f ", fx(f, ax->x0 + i), fy(f, s->y[i]));
    }
    if (open) ids__tb_printf(b, "\"/>\n");
    for (int i = 0; i < ax->n; i++)
        if (isfinite(s->y[i])) ids__tb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\"/>\n", fx(f, ax->x0 + i), fy(f, s->y[i]), c);
}

void ids__plot_lines(ids__tb *b, const ids__plot_axes *ax, const ids__plot_series *s, int ns) {
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
    frame f = {62, 34, W - 62 - legend_w - 20, H - 34 - 52 - (ax->note ? 18 : 0), ax->x0 - half,
               ax->x0 + (ax->n > 1 ? ax->n - 1 : 0) + half, ty.lo - pad, ty.hi + pad};
    svg_open(b, W, H);
    title_text(b, f.l, 20, ax->title);
    axes(b, &f, &tx, &ty, ax->xlabel, ax->ylabel);
    if (ax->mark_label && ax->mark_x >= f.x0 && ax->mark_x <= f.x1) {
        const double mx = fx(&f, ax->mark_x);
        ids__tb_printf(b, "<line class=\"mark\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
                          "stroke-dasharray=\"3,3\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\">",
                       mx, f.t, mx, f.t + f.ph, mx + 4, f.t + 12);
        esc(b, ax->mark_label);
        ids__tb_printf(b, "</text>\n");
    }
    for (int k = 0; k < ns; k++) series_path(b, &f, ax, &s[k]);
    for (int k = 0; k < ns; k++)
        legend_entry(b, f.l + f.pw + 16, f.t + 10 + 20 * k, color(s[k].color), dash(s[k].dash), s[k].name, true);
    if (ax->note) {
        ids__tb_printf(b, "<text class=\"note\" x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"#444\">", f.l, H - 6);
        esc(b, ax->note);
        ids__tb_printf(b, "</text>\n");
    }
    ids__tb_printf(b, "</svg>\n");
}

/* The lines joining grid neighbours (same row, x differing by 1; same column, y by 1). */
static void plane_edges(ids__tb *b, const frame *f, const ids__plot_plane *p) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p->n; i++)
            for (int j = i + 1; j < p->n; j++) {
                const bool row = p->gy[i] == p->gy[j] && abs(p->gx[i] - p->gx[j]) == 1;
                const bool col = p->gx[i] == p->gx[j] && abs(p->gy[i] - p->gy[j]) == 1;
                if ((pass == 0 && row) || (pass == 1 && col))
                    ids__tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.6\"%s/>\n",
                                   fx(f, p->x[i]), fy(f, p->y[i]), fx(f, p->x[j]), fy(f, p->y[j]), color(pass), dash(pass));
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

void ids__plot_scatter(ids__tb *b, const ids__plot_plane *p) {
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
    frame f = {66, 34 + extra, pw, ph, x0, x1, y0, y1};
    const int W = (int)(f.l + pw + 24) > 420 ? (int)(f.l + pw + 24) : 420, H = (int)(f.t + ph + extra + 52 + (p->gx ? 40 : 0));
    svg_open(b, W, H);
    title_text(b, f.l, 20, p->title);
    const ids__ticks tx = ticks_inside(x0, x1, 6), ty = ticks_inside(y0, y1, ph < 80 ? 2 : (int)fmax(2, 6 * ph / pw));
    axes(b, &f, &tx, &ty, p->xlabel, p->ylabel);
    if (p->gx && p->gy) plane_edges(b, &f, p);
    for (int i = 0; i < p->n; i++) {
        if (!isfinite(p->x[i]) || !isfinite(p->y[i])) continue;
        const double x = fx(&f, p->x[i]), y = fy(&f, p->y[i]);
        ids__tb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#222\"/>\n", x, y);
        if (p->gx && p->gy)
            ids__tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#333\">%d,%d</text>\n", x + 5, y - 5, p->gx[i], p->gy[i]);
    }
    if (p->gx && p->gy) {
        legend_entry(b, f.l, f.t + ph + 58, color(0), dash(0), "same row (x and x+1)", false);
        legend_entry(b, f.l + 220, f.t + ph + 58, color(1), dash(1), "same column (y and y+1)", false);
    }
    ids__tb_printf(b, "</svg>\n");
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

/* One panel at (x, y) with cells of size c, values scaled by m. */
static void heat_panel(ids__tb *b, const ids__plot_heat *h, const ids__plot_panel *p, double x, double y, double c, double m,
                       int decimals) {
    ids__tb_printf(b, "<g class=\"panel\">\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\">", x, y - 24);
    esc(b, p->title);
    ids__tb_printf(b, "</text>\n");
    for (int i = 0; i < p->cols; i++) /* column labels above, row labels left */
        ids__tb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%d</text>\n", x + c * i + c / 2,
                       y - 5, i);
    for (int r = 0; r < p->rows; r++)
        ids__tb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%d</text>\n", x - 5,
                       y + c * r + c / 2 + 4, r);
    for (int r = 0; r < p->rows; r++)
        for (int q = 0; q < p->cols; q++) {
            const double v = p->v[r * p->cols + q];
            int rgb[3] = {200, 200, 200};
            const bool dark = isfinite(v) ? ids__plot_diverging(v / m, rgb) : false;
            ids__tb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"/>\n",
                           x + c * q, y + c * r, c, c, rgb[0], rgb[1], rgb[2]);
            if (isfinite(v))
                ids__tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" fill=\"%s\">%s%.*f</text>\n",
                               x + c * q + c / 2, y + c * r + c / 2 + 3.5, dark ? "#fff" : "#111",
                               v < 0 && fabs(v) >= 0.5 * pow(10, -decimals) ? "\xe2\x88\x92" : "", decimals,
                               fabs(v) < 0.5 * pow(10, -decimals) ? 0.0 : fabs(v));
        }
    if (p->mark_row >= 0 && p->mark_row < p->rows && p->mark_col >= 0 && p->mark_col < p->cols)
        ids__tb_printf(b, "<rect class=\"source\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#000\" "
                          "stroke-width=\"3\"/>\n",
                       x + c * p->mark_col + 1.5, y + c * p->mark_row + 1.5, c - 3, c - 3);
    ids__tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">", x + c * p->cols / 2, y + c * p->rows + 16);
    esc(b, h->col_label);
    ids__tb_printf(b, "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" transform=\"rotate(-90 %.1f %.1f)\">",
                   x - 22, y + c * p->rows / 2, x - 22, y + c * p->rows / 2);
    esc(b, h->row_label);
    ids__tb_printf(b, "</text>\n</g>\n");
}

/* The colour bar at (x, y), height hh, for values -m..m (ticks t). */
static void colorbar(ids__tb *b, const ids__plot_heat *h, double x, double y, double hh, double m, const ids__ticks *t) {
    ids__tb_printf(b, "<g class=\"colorbar\">\n");
    const int steps = 40;
    for (int i = 0; i < steps; i++) {
        int rgb[3];
        ids__plot_diverging(1 - 2.0 * (i + 0.5) / steps, rgb);
        ids__tb_printf(b, "<rect x=\"%.1f\" y=\"%.2f\" width=\"16\" height=\"%.2f\" fill=\"rgb(%d,%d,%d)\"/>\n", x, y + hh * i / steps,
                       hh / steps + 0.3, rgb[0], rgb[1], rgb[2]);
    }
    ids__tb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.1f\" fill=\"none\" stroke=\"#555\"/>\n", x, y, hh);
    char lab[64];
    for (int i = 0; i < t->n; i++) {
        const double v = t->lo + t->step * i;
        if (v < -m - 1e-12 || v > m + 1e-12) continue;
        const double yy = y + hh * (m - v) / (2 * m);
        ids__plot_tick_label(t, v, lab, sizeof lab);
        ids__tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\"/>\n", x + 16, yy, x + 20, yy);
        ids__tb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s</text>\n", x + 23, yy + 3.5, lab);
    }
    ids__tb_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" transform=\"rotate(-90 %.1f %.1f)\">",
                   x + 72, y + hh / 2, x + 72, y + hh / 2);
    esc(b, h->value_label);
    ids__tb_printf(b, "</text>\n</g>\n");
}

void ids__plot_heatmaps(ids__tb *b, const ids__plot_heat *h, const ids__plot_panel *p, int np) {
    double m = 0;
    int rows = 1, cols = 1;
    for (int k = 0; k < np; k++) {
        for (int i = 0; i < p[k].rows * p[k].cols; i++)
            if (isfinite(p[k].v[i])) m = fmax(m, fabs(p[k].v[i]));
        rows = p[k].rows > rows ? p[k].rows : rows, cols = p[k].cols > cols ? p[k].cols : cols;
    }
    ids__ticks t = ids__plot_ticks(-(m > 0 ? m : 1), m > 0 ? m : 1, 6);
    m = t.hi; /* the scale's end is a tick: equal colours mean equal values in every panel */
    const double c = fmin(44, 176.0 / (rows > cols ? rows : cols));
    const int per_row = np < 4 ? (np > 0 ? np : 1) : 4, prow = (np + per_row - 1) / per_row;
    const double pw = c * cols + 56, ph = c * rows + 64;
    const int W = (int)(per_row * pw + 120), H = (int)(34 + prow * ph + 8);
    svg_open(b, W, H);
    title_text(b, 8, 18, h->title);
    for (int k = 0; k < np; k++)
        heat_panel(b, h, &p[k], 40 + (k % per_row) * pw, 34 + 26 + (k / per_row) * ph, c, m, t.decimals + 1);
    colorbar(b, h, per_row * pw + 24, 60, fmin(H - 80, 200), m, &t);
    ids__tb_printf(b, "</svg>\n");
}
