/* The HTML report: inline SVG charts (line charts per layer, PCA scatter, heat maps) built from the
 * experiments' JSON results. Well-formed XHTML-style markup (every tag closed). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <math.h>

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sb;

static void sbf(sb *b, const char *fmt, ...) IDS_PRINTF(2, 3);
static void sbf(sb *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->n + (size_t)k + 1) cap *= 2;
        char *np = ids__realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void esc(sb *b, const char *s) {
    for (; *s; s++) {
        if (*s == '<') sbf(b, "&lt;");
        else if (*s == '>') sbf(b, "&gt;");
        else if (*s == '&') sbf(b, "&amp;");
        else if (*s == '"') sbf(b, "&quot;");
        else sbf(b, "%c", *s);
    }
}

static const char *const k_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

typedef struct {
    const char *name;
    const double *y;
    bool dashed;
} series;

/* Line chart over x = 0..n-1 (labels x0 + i). */
static void line_chart(sb *b, const char *title, const char *xlabel, const char *ylabel, int x0, int n, const series *s,
                       int ns) {
    const int W = 560, H = 260, l = 56, r = 150, t = 30, bt = 40;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < n; i++)
            if (isfinite(s[k].y[i])) lo = fmin(lo, s[k].y[i]), hi = fmax(hi, s[k].y[i]);
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (lo > 0) lo = 0;
    if (hi - lo < 1e-9) hi = lo + 1;
    const double pw = W - l - r, ph = H - t - bt;
    sbf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    sbf(b, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">", l);
    esc(b, title);
    sbf(b, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n", l, t, pw, ph);
    for (int g = 0; g <= 4; g++) {
        double v = lo + (hi - lo) * g / 4, y = t + ph - ph * g / 4;
        sbf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" font-family=\"sans-serif\">%.3g</text>\n", l - 4, y + 3, v);
    }
    if (lo < 0 && hi > 0) {
        double y0 = t + ph - ph * (0 - lo) / (hi - lo);
        sbf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ccc\"/>\n", l, y0, l + pw, y0);
    }
    for (int i = 0; i < n; i++) {
        double x = l + (n > 1 ? pw * i / (n - 1) : pw / 2);
        sbf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" font-family=\"sans-serif\">%d</text>\n", x,
            t + (int)ph + 14, x0 + i);
    }
    sbf(b, "<text x=\"%.0f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" font-family=\"sans-serif\">", l + pw / 2, H - 6);
    esc(b, xlabel);
    sbf(b, "</text>\n");
    sbf(b, "<text x=\"12\" y=\"%.0f\" font-size=\"11\" font-family=\"sans-serif\" transform=\"rotate(-90 12 %.0f)\">", t + ph / 2, t + ph / 2);
    esc(b, ylabel);
    sbf(b, "</text>\n");
    for (int k = 0; k < ns; k++) {
        const char *c = k_colors[k % 6];
        sbf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", c, s[k].dashed ? " stroke-dasharray=\"5,3\"" : "");
        for (int i = 0; i < n; i++) {
            if (!isfinite(s[k].y[i])) continue;
            double x = l + (n > 1 ? pw * i / (n - 1) : pw / 2), y = t + ph - ph * (s[k].y[i] - lo) / (hi - lo);
            sbf(b, "%.1f,%.1f ", x, y);
        }
        sbf(b, "\"/>\n<text x=\"%.0f\" y=\"%d\" font-size=\"11\" fill=\"%s\" font-family=\"sans-serif\">", l + pw + 8, t + 14 + 16 * k, c);
        esc(b, s[k].name);
        sbf(b, "</text>\n");
    }
    sbf(b, "</svg>\n");
}

static void heat_map(sb *b, const char *title, int G, const double *v) {
    const int cell = 48, W = G * cell + 140, H = G * cell + 50;
    double m = 1e-12;
    for (int i = 0; i < G * G; i++) m = fmax(m, fabs(v[i]));
    sbf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    sbf(b, "<text x=\"0\" y=\"16\" font-size=\"14\" font-family=\"sans-serif\">");
    esc(b, title);
    sbf(b, "</text>\n");
    for (int y = 0; y < G; y++)
        for (int x = 0; x < G; x++) {
            double a = v[y * G + x] / m; /* red positive, blue negative */
            int rr = a > 0 ? 255 : (int)(255 * (1 + a)), bb = a < 0 ? 255 : (int)(255 * (1 - a)), gg = (int)(255 * (1 - fabs(a)));
            sbf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"/>\n", x * cell,
                24 + y * cell, cell, cell, rr, gg, bb);
            sbf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" font-family=\"sans-serif\">%.2g</text>\n",
                x * cell + cell / 2, 24 + y * cell + cell / 2 + 3, v[y * G + x]);
        }
    sbf(b, "<text x=\"%d\" y=\"40\" font-size=\"11\" font-family=\"sans-serif\">max |value| %.3g</text>\n", G * cell + 10, m);
    sbf(b, "</svg>\n");
}

static void scatter(sb *b, const char *title, int n, const double *px, const double *py, const int *lx, const int *ly) {
    const int W = 420, H = 360, pad = 40;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++) x0 = fmin(x0, px[i]), x1 = fmax(x1, px[i]), y0 = fmin(y0, py[i]), y1 = fmax(y1, py[i]);
    if (x1 - x0 < 1e-12) x1 = x0 + 1;
    if (y1 - y0 < 1e-12) y1 = y0 + 1;
    sbf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    sbf(b, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">", pad);
    esc(b, title);
    sbf(b, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", pad, pad, W - 2 * pad, H - 2 * pad);
    for (int i = 0; i < n; i++) {
        double x = pad + (W - 2 * pad) * (px[i] - x0) / (x1 - x0), y = H - pad - (H - 2 * pad) * (py[i] - y0) / (y1 - y0);
        sbf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>\n", x, y, k_colors[lx[i] % 6]);
        sbf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" font-family=\"sans-serif\">%d,%d</text>\n", x + 6, y - 4, lx[i], ly[i]);
    }
    sbf(b, "</svg>\n");
}

static cJSON *load(const char *dir, const char *rel) {
    char path[1200], *txt;
    snprintf(path, sizeof path, "%.1000s/%s", dir, rel);
    if (ids__read_file(path, &txt, NULL, NULL)) return NULL;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    return j;
}

static double num(cJSON *o, const char *k) {
    cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void section(sb *b, const char *id, const char *title, const char *what) {
    sbf(b, "<h2 id=\"%s\">", id);
    esc(b, title);
    sbf(b, "</h2>\n<p>");
    esc(b, what);
    sbf(b, "</p>\n");
}

ids_status ids_report(const char *dir, int *n_sections, ids_err *err) {
    sb b = {0};
    *n_sections = 0;
    sbf(&b, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><meta charset=\"utf-8\"/>"
            "<title>idscope report</title><style>body{font-family:sans-serif;max-width:980px;margin:24px auto;}"
            "h2{border-bottom:1px solid #ddd;} .none{color:#999;}</style></head><body>\n<h1>idscope report</h1>\n<p>");
    esc(&b, dir);
    sbf(&b, "</p>\n");
    /* IDs */
    cJSON *st = load(dir, "ids/stats.json"), *ij = load(dir, "ids/ids.json");
    section(&b, "ids", "Spatial IDs", "Per layer: R^2 of a linear fit of the cell IDs in (x, y), the variance inside the plane of "
            "the axes, and the variance of the first two principal components; and the cells in PCA space at the layer with "
            "the highest R^2 (the grid re-emerging when IDs are linear).");
    cJSON *layers = st ? cJSON_GetObjectItem(st, "layers") : NULL;
    if (cJSON_IsArray(layers) && cJSON_GetArraySize(layers) > 0) {
        int n = cJSON_GetArraySize(layers), best = 0;
        double *r2 = calloc((size_t)n, sizeof(double)), *pl = calloc((size_t)n, sizeof(double)), *pv = calloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_GetArrayItem(layers, i);
            r2[i] = num(o, "r2"), pl[i] = num(o, "plane"), pv[i] = num(o, "pca_var");
            if (r2[i] > r2[best]) best = i;
        }
        series s[3] = {{"R^2 linear in (x,y)", r2, false}, {"axis plane", pl, false}, {"PCA 2-D", pv, true}};
        line_chart(&b, "How linear and planar the IDs are", "layer", "fraction of variance", 0, n, s, 3);
        cJSON *pca = cJSON_GetObjectItem(cJSON_GetArrayItem(layers, best), "pca");
        int np = cJSON_GetArraySize(pca);
        if (np > 0 && np <= 64) {
            double px[64], py[64];
            int lx[64], ly[64];
            for (int k = 0; k < np; k++) {
                cJSON *e = cJSON_GetArrayItem(pca, k);
                px[k] = num(e, "pc1"), py[k] = num(e, "pc2"), lx[k] = (int)num(e, "x"), ly[k] = (int)num(e, "y");
            }
            char t[96];
            snprintf(t, sizeof t, "Cell IDs in PCA space, layer %d (labels x,y)", best);
            scatter(&b, t, np, px, py, lx, ly);
        }
        free(r2);
        free(pl);
        free(pv);
        (*n_sections)++;
    } else {
        sbf(&b, "<p class=\"none\">not run (no ids/stats.json)</p>\n");
    }
    /* swap */
    section(&b, "swap", "Mirror swapping", "Recovered fraction of the mirror's effect on log P(left) - log P(right) when one "
            "position set is patched from the mirrored image at one layer (solid), and of the attribute edit (dashed).");
    cJSON *sw = load(dir, "swap/swap.json"), *sc = load(dir, "swap/swap-control.json");
    if (sw) {
        int L = (int)num(sw, "layers");
        if (L > 0 && L <= 256) {
            double *ys[6];
            for (int k = 0; k < 6; k++) ys[k] = calloc((size_t)L, sizeof(double));
            const char *sets[3] = {"image", "text", "objects"};
            for (int src = 0; src < 2; src++) {
                cJSON *j = src ? sc : sw, *r;
                if (!j) {
                    for (int k = 0; k < 3; k++)
                        for (int l = 0; l < L; l++) ys[3 + k][l] = NAN;
                    continue;
                }
                cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "rows")) {
                    int l = (int)num(r, "layer");
                    const char *set = cJSON_GetObjectItem(r, "set") ? cJSON_GetObjectItem(r, "set")->valuestring : "";
                    for (int k = 0; k < 3; k++)
                        if (l >= 0 && l < L && !strcmp(set, sets[k])) ys[3 * src + k][l] = num(r, "diff");
                }
            }
            series s[6] = {{"image rows", ys[0], false}, {"text rows", ys[1], false}, {"object words", ys[2], false},
                           {"image (attr.)", ys[3], true}, {"text (attr.)", ys[4], true}, {"objects (attr.)", ys[5], true}};
            line_chart(&b, "Recovered fraction by layer", "layer", "recovered fraction", 0, L, s, sc ? 6 : 3);
            for (int k = 0; k < 6; k++) free(ys[k]);
            (*n_sections)++;
        }
    } else {
        sbf(&b, "<p class=\"none\">not run (no swap/swap.json)</p>\n");
    }
    /* steering */
    section(&b, "steer", "Belief-swap steering", "Fraction of beliefs swapped when the object words are steered with ID "
            "differences against the model's answer, versus Gaussian noise of the same norms.");
    cJSON *sb1 = load(dir, "steer/steer-belief.json");
    cJSON *sl = sb1 ? cJSON_GetObjectItem(sb1, "layers") : NULL;
    if (cJSON_IsArray(sl) && cJSON_GetArraySize(sl) > 0) {
        int n = cJSON_GetArraySize(sl), l0 = (int)num(cJSON_GetArrayItem(sl, 0), "layer");
        double *a = calloc((size_t)n, sizeof(double)), *z = calloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++) a[i] = num(cJSON_GetArrayItem(sl, i), "id"), z[i] = num(cJSON_GetArrayItem(sl, i), "noise");
        series s[2] = {{"ID steering", a, false}, {"noise", z, true}};
        line_chart(&b, "Beliefs swapped", "layer", "fraction swapped", l0, n, s, 2);
        sbf(&b, "<p>Best 3 layers: ID %.3f, noise %.3f.", num(sb1, "best3_id"), num(sb1, "best3_noise"));
        if (cJSON_GetObjectItem(sb1, "greedy_best3_id"))
            sbf(&b, " From short greedy answers (whole-word verdicts): ID %.3f, noise %.3f.", num(sb1, "greedy_best3_id"),
                num(sb1, "greedy_best3_noise"));
        sbf(&b, "</p>\n");
        /* factor sweep (idscope demo runs factors 1 and 2 into steer/factor-N/) */
        bool head = false;
        for (int fk = 1; fk <= 4; fk++) {
            char rel[64];
            snprintf(rel, sizeof rel, "steer/factor-%d/steer-belief.json", fk);
            cJSON *fj = load(dir, rel);
            if (fj) {
                if (!head) sbf(&b, "<table><tr><th>factor</th><th>ID (best 3)</th><th>noise</th></tr>\n");
                head = true;
                sbf(&b, "<tr><td>%g</td><td>%.3f</td><td>%.3f</td></tr>\n", num(fj, "factor"), num(fj, "best3_id"),
                    num(fj, "best3_noise"));
            }
            cJSON_Delete(fj);
        }
        if (head)
            sbf(&b, "<tr><td>%g</td><td>%.3f</td><td>%.3f</td></tr></table>\n", num(sb1, "factor"), num(sb1, "best3_id"),
                num(sb1, "best3_noise"));
        free(a);
        free(z);
        (*n_sections)++;
    } else {
        sbf(&b, "<p class=\"none\">not run (no steer/steer-belief.json)</p>\n");
    }
    section(&b, "grid", "Arbitrary steering", "Mean change of log P(first) - log P(second answer) when the subject word is "
            "steered towards each target cell (rows top to bottom, columns left to right).");
    int ng = 0;
    const char *rels[4] = {"steer/steer-grid-left_right.json", "steer/steer-grid-above_below.json",
                           "steer/steer-grid-near_far.json", "steer/steer-grid-between.json"};
    const char *rel_names[4] = {"left - right", "above - below", "near - far", "between: yes - no"};
    for (int k = 0; k < 4; k++) {
        cJSON *g = load(dir, rels[k]);
        cJSON *d = g ? cJSON_GetObjectItem(g, "delta") : NULL;
        int G = g ? (int)num(g, "grid") : 0;
        if (cJSON_IsArray(d) && G > 0 && G <= 16 && cJSON_GetArraySize(d) == G * G) {
            double v[256];
            for (int i = 0; i < G * G; i++) v[i] = cJSON_GetArrayItem(d, i)->valuedouble;
            char t[96];
            snprintf(t, sizeof t, "%s, layer %d", rel_names[k], (int)num(g, "layer"));
            heat_map(&b, t, G, v);
            ng++;
        }
        cJSON_Delete(g);
    }
    if (ng) (*n_sections)++;
    else sbf(&b, "<p class=\"none\">not run (no steer/steer-grid-*.json)</p>\n");
    section(&b, "depth", "Depth diagnosis", "Change of log P(above) - log P(below) (grid scenes) and of log P(in front) - "
            "log P(behind) (depth scenes) when the subject word is pushed down with the vertical ID.");
    cJSON *dj = load(dir, "depth/depth.json"), *dl = dj ? cJSON_GetObjectItem(dj, "layers") : NULL;
    if (cJSON_IsArray(dl) && cJSON_GetArraySize(dl) > 0) {
        int n = cJSON_GetArraySize(dl), l0 = (int)num(cJSON_GetArrayItem(dl, 0), "layer");
        double *a = calloc((size_t)n, sizeof(double)), *z = calloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++) a[i] = num(cJSON_GetArrayItem(dl, i), "above_below_down"), z[i] = num(cJSON_GetArrayItem(dl, i), "front_behind_down");
        series s[2] = {{"above - below", a, false}, {"front - behind", z, false}};
        line_chart(&b, "Pushing the subject down", "layer", "change of log-odds", l0, n, s, 2);
        free(a);
        free(z);
        (*n_sections)++;
    } else {
        sbf(&b, "<p class=\"none\">not run (no depth/depth.json)</p>\n");
    }
    section(&b, "score", "ID strength", "Linearity x consistency across object pairs x causal effect (ID swap rate minus noise).");
    cJSON *sj = load(dir, "score.json"), *sl2 = sj ? cJSON_GetObjectItem(sj, "layers") : NULL;
    if (cJSON_IsArray(sl2) && cJSON_GetArraySize(sl2) > 0) {
        int n = cJSON_GetArraySize(sl2), l0 = (int)num(cJSON_GetArrayItem(sl2, 0), "layer");
        double *a = calloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++) a[i] = num(cJSON_GetArrayItem(sl2, i), "score");
        series s[1] = {{"score", a, false}};
        line_chart(&b, "ID strength by layer", "layer", "score", l0, n, s, 1);
        free(a);
        (*n_sections)++;
    } else {
        sbf(&b, "<p class=\"none\">not run (no score.json)</p>\n");
    }
    /* temporal IDs */
    section(&b, "temporal", "Temporal IDs", "Videos in which two objects appear at different frames. Left: each frame's "
            "temporal ID on the first principal axis at the layer where it explains most (frames in order = a time line), "
            "and per layer PC1's share of the variance and the Spearman correlation of the coordinate with the frame. "
            "Then time-reversal patching per position set, and the change of log P(after) when the subject word is "
            "steered with T[f] - T[T-f] (frame T/2 is the null).");
    cJSON *tj = load(dir, "temporal/temporal.json"), *tsw = load(dir, "temporal/temporal-swap.json"),
          *tst = load(dir, "temporal/temporal-steer.json");
    int nt = 0;
    cJSON *tl = tj ? cJSON_GetObjectItem(tj, "stats") : NULL;
    if (cJSON_IsArray(tl) && cJSON_GetArraySize(tl) > 0) {
        const int L = cJSON_GetArraySize(tl), best = (int)num(tj, "best_layer");
        double *var = calloc((size_t)L, sizeof(double)), *rho = calloc((size_t)L, sizeof(double));
        for (int i = 0; i < L; i++) {
            cJSON *e = cJSON_GetArrayItem(tl, i), *r = cJSON_GetObjectItem(e, "spearman");
            var[i] = num(e, "pc1_var");
            rho[i] = cJSON_IsNumber(r) ? r->valuedouble : NAN;
        }
        cJSON *be = best >= 0 && best < L ? cJSON_GetArrayItem(tl, best) : NULL, *pc = be ? cJSON_GetObjectItem(be, "pc1") : NULL;
        if (cJSON_IsArray(pc) && cJSON_GetArraySize(pc) > 0) {
            const int F = cJSON_GetArraySize(pc);
            double *c = calloc((size_t)F, sizeof(double));
            for (int f = 0; f < F; f++) c[f] = cJSON_GetArrayItem(pc, f)->valuedouble;
            series s1[1] = {{"PC1 coordinate", c, false}};
            char t[96];
            snprintf(t, sizeof t, "Temporal IDs on PC1, layer %d", best);
            line_chart(&b, t, "appearance frame", "PC1", 1, F, s1, 1);
            free(c);
        }
        series s2[2] = {{"PC1 variance share", var, false}, {"Spearman with frame", rho, true}};
        line_chart(&b, "Time line by layer", "layer", "value", 0, L, s2, 2);
        free(var);
        free(rho);
        nt++;
    }
    if (tsw && (int)num(tsw, "layers") > 0 && (int)num(tsw, "layers") <= 256) {
        const int L = (int)num(tsw, "layers");
        double *ys[3];
        for (int k = 0; k < 3; k++) ys[k] = calloc((size_t)L, sizeof(double));
        const char *sets[3] = {"image", "text", "objects"};
        cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(tsw, "rows")) {
            int l = (int)num(r, "layer");
            const char *set = cJSON_GetObjectItem(r, "set") ? cJSON_GetObjectItem(r, "set")->valuestring : "";
            for (int k = 0; k < 3; k++)
                if (l >= 0 && l < L && !strcmp(set, sets[k])) ys[k][l] = num(r, "diff");
        }
        series s[3] = {{"image rows", ys[0], false}, {"text rows", ys[1], false}, {"object words", ys[2], false}};
        line_chart(&b, "Time reversal: recovered fraction", "layer", "recovered fraction", 0, L, s, 3);
        for (int k = 0; k < 3; k++) free(ys[k]);
        nt++;
    }
    cJSON *tsl = tst ? cJSON_GetObjectItem(tst, "layers") : NULL;
    if (cJSON_IsArray(tsl) && cJSON_GetArraySize(tsl) > 0) {
        const int n = cJSON_GetArraySize(tsl) < 6 ? cJSON_GetArraySize(tsl) : 6;
        cJSON *d0 = cJSON_GetObjectItem(cJSON_GetArrayItem(tsl, 0), "d_after");
        const int F = cJSON_IsArray(d0) ? cJSON_GetArraySize(d0) : 0;
        if (F > 0 && F <= 64) {
            double *ys[6];
            char names[6][32];
            series s[6];
            for (int k = 0; k < n; k++) { /* up to 6 layers spread over the band */
                const int li = cJSON_GetArraySize(tsl) <= 6 ? k : k * (cJSON_GetArraySize(tsl) - 1) / 5;
                cJSON *e = cJSON_GetArrayItem(tsl, li), *d = cJSON_GetObjectItem(e, "d_after");
                ys[k] = calloc((size_t)F, sizeof(double));
                for (int f = 0; f < F && f < cJSON_GetArraySize(d); f++) ys[k][f] = cJSON_GetArrayItem(d, f)->valuedouble;
                snprintf(names[k], sizeof names[k], "layer %d", (int)num(e, "layer"));
                s[k] = (series){names[k], ys[k], false};
            }
            line_chart(&b, "Steering: change of log P(after)", "target frame f", "change of log P(after)", 1, F, s, n);
            sbf(&b, "<p>Layers where the change of log P(after) rises with f: %.3f of the band.</p>\n", num(tst, "monotonic"));
            for (int k = 0; k < n; k++) free(ys[k]);
            nt++;
        }
    }
    if (nt) (*n_sections)++;
    else sbf(&b, "<p class=\"none\">not run (no temporal/temporal*.json)</p>\n");
    cJSON_Delete(tj);
    cJSON_Delete(tsw);
    cJSON_Delete(tst);
    if (ij) {
        char *t = cJSON_Print(ij);
        sbf(&b, "<h2 id=\"meta\">Extraction settings</h2>\n<pre>");
        if (t) esc(&b, t);
        sbf(&b, "</pre>\n");
        free(t);
    }
    sbf(&b, "</body></html>\n");
    cJSON_Delete(st);
    cJSON_Delete(ij);
    cJSON_Delete(sw);
    cJSON_Delete(sc);
    cJSON_Delete(sb1);
    cJSON_Delete(dj);
    cJSON_Delete(sj);
    if (b.oom) {
        free(b.p);
        return ids__err(err, IDS_ERR_NOMEM, "report: out of memory");
    }
    char path[1200];
    snprintf(path, sizeof path, "%.1100s/report.html", dir);
    const void *parts[1] = {b.p};
    size_t sizes[1] = {b.n};
    ids_status rs = ids__write_atomic(path, parts, sizes, 1, err);
    free(b.p);
    return rs;
}
