/* The HTML report: inline SVG charts (line charts per layer, PCA scatter, heat maps) built from the
 * experiments' JSON results. Well-formed XHTML-style markup (every tag closed). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <unistd.h>

/* The page grows in a text buffer of the results module (ids__tb); sbf appends to it. */
typedef ids__tb sb;
#define sbf ids__tb_printf

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
    for (int i = 0; i < G * G; i++)
        if (isfinite(v[i])) m = fmax(m, fabs(v[i]));
    sbf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    sbf(b, "<text x=\"0\" y=\"16\" font-size=\"14\" font-family=\"sans-serif\">");
    esc(b, title);
    sbf(b, "</text>\n");
    for (int y = 0; y < G; y++)
        for (int x = 0; x < G; x++) {
            double a = isfinite(v[y * G + x]) ? v[y * G + x] / m : 0; /* red positive, blue negative; in [-1, 1] */
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

static double num(const cJSON *o, const char *k) { return ids__jget(o, k); }
/* Integers of the result files: checked before conversion, def when unusable. */
static int inum(const cJSON *o, const char *k, int def) { return ids__jint(o, k, 0, IDS_JSON_LAYER_MAX, def); }

/* n doubles (zeroed) for a chart; NULL (and the report fails as out of memory) when refused. */
static double *dvec(sb *b, int n) {
    double *v = ids__calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!v) b->oom = true;
    return v;
}

static cJSON *load(const char *dir, ids_result_kind k, ids_relation rel) { return ids__result_load(dir, k, rel, true); }

static void not_run(sb *b, ids_result_kind k) {
    char buf[64];
    const char *folder = ids_result_folder(k), *name = ids_result_name(k, IDS_REL_LEFT_RIGHT, buf, sizeof buf);
    if (k == IDS_RESULT_STEER_GRID) name = "steer-grid-*.json";
    if (k == IDS_RESULT_TEMPORAL) name = "temporal*.json";
    sbf(b, "<p class=\"none\">not run (no %s%s%s)</p>\n", folder, *folder ? "/" : "", name);
}

static void section(sb *b, const char *id, const char *title, const char *what) {
    sbf(b, "<h2 id=\"%s\">", id);
    esc(b, title);
    sbf(b, "</h2>\n<p>");
    esc(b, what);
    sbf(b, "</p>\n");
}

/* ---- sections: each draws its results, or says they were not run; returns 1 when it had data ---- */

static int section_ids(sb *b, const char *dir) {
    section(b, "ids", "Spatial IDs", "Per layer: R^2 of a linear fit of the cell IDs in (x, y), the variance inside the plane of "
            "the axes, and the variance of the first two principal components; and the cells in PCA space at the layer with "
            "the highest R^2 (the grid re-emerging when IDs are linear).");
    cJSON *st = load(dir, IDS_RESULT_STATS, 0), *layers = cJSON_GetObjectItem(st, "layers");
    const int n = cJSON_GetArraySize(layers);
    double *r2 = n > 0 ? dvec(b, n) : NULL, *pl = n > 0 ? dvec(b, n) : NULL, *pv = n > 0 ? dvec(b, n) : NULL;
    const int ok = r2 && pl && pv;
    if (ok) {
        int best = 0;
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_GetArrayItem(layers, i);
            r2[i] = num(o, "r2"), pl[i] = num(o, "plane"), pv[i] = num(o, "pca_var");
            if (r2[i] > r2[best]) best = i;
        }
        series s[3] = {{"R^2 linear in (x,y)", r2, false}, {"axis plane", pl, false}, {"PCA 2-D", pv, true}};
        line_chart(b, "How linear and planar the IDs are", "layer", "fraction of variance", 0, n, s, 3);
        cJSON *pca = cJSON_GetObjectItem(cJSON_GetArrayItem(layers, best), "pca");
        const int np = cJSON_GetArraySize(pca);
        if (np > 0 && np <= 64) {
            double px[64], py[64];
            int lx[64], ly[64];
            for (int k = 0; k < np; k++) {
                cJSON *e = cJSON_GetArrayItem(pca, k);
                px[k] = num(e, "pc1"), py[k] = num(e, "pc2"), lx[k] = inum(e, "x", 0), ly[k] = inum(e, "y", 0);
            }
            char t[96];
            snprintf(t, sizeof t, "Cell IDs in PCA space, layer %d (labels x,y)", best);
            scatter(b, t, np, px, py, lx, ly);
        }
    } else {
        not_run(b, IDS_RESULT_STATS);
    }
    free(r2);
    free(pl);
    free(pv);
    cJSON_Delete(st);
    return ok;
}

/* The recovered fraction of the difference per layer for each position set of a patching result. */
static void patch_curves(const cJSON *j, int L, double **ys) {
    static const char *const sets[3] = {"image", "text", "objects"};
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "rows")) {
        const int l = inum(r, "layer", -1);
        const cJSON *set = cJSON_GetObjectItem(r, "set");
        for (int k = 0; k < 3; k++)
            if (l >= 0 && l < L && cJSON_IsString(set) && !strcmp(set->valuestring, sets[k])) ys[k][l] = num(r, "diff");
    }
}

static int section_swap(sb *b, const char *dir) {
    section(b, "swap", "Mirror swapping", "Recovered fraction of the mirror's effect on log P(left) - log P(right) when one "
            "position set is patched from the mirrored image at one layer (solid), and of the attribute edit (dashed): the "
            "named objects recoloured (the question keeps their old colours, so it no longer matches the picture), or, "
            "when run, the paper's hue shift of the whole image (swap --hue).");
    cJSON *sw = load(dir, IDS_RESULT_SWAP, 0), *sc = load(dir, IDS_RESULT_SWAP_CONTROL, 0);
    cJSON *sh = load(dir, IDS_RESULT_SWAP_HUE, 0);
    const int L = inum(sw, "layers", 0);
    int ok = 0;
    if (L > 0 && L <= 256) {
        double *ys[9];
        for (int k = 0; k < 9; k++) ys[k] = dvec(b, L);
        if (!b->oom) {
            patch_curves(sw, L, ys);
            if (sc) patch_curves(sc, L, ys + 3);
            if (sh) patch_curves(sh, L, ys + 6);
            series s[9] = {{"image rows", ys[0], false}, {"text rows", ys[1], false}, {"object words", ys[2], false}};
            int ns = 3;
            if (sc)
                s[ns++] = (series){"image (recolour)", ys[3], true}, s[ns++] = (series){"text (recolour)", ys[4], true},
                s[ns++] = (series){"objects (recolour)", ys[5], true};
            if (sh)
                s[ns++] = (series){"image (hue)", ys[6], true}, s[ns++] = (series){"text (hue)", ys[7], true},
                s[ns++] = (series){"objects (hue)", ys[8], true};
            line_chart(b, "Recovered fraction by layer", "layer", "recovered fraction", 0, L, s, ns);
            ok = 1;
        }
        for (int k = 0; k < 9; k++) free(ys[k]);
    } else {
        not_run(b, IDS_RESULT_SWAP);
    }
    cJSON_Delete(sw);
    cJSON_Delete(sc);
    cJSON_Delete(sh);
    return ok;
}

/* The factor sweep the demo runs into steer/factor-N/ (N = 1..4), with the main run's factor last. */
static void steer_sweep(sb *b, const char *dir, const cJSON *main_run) {
    bool head = false;
    for (int fk = 1; fk <= 4; fk++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s/steer/factor-%d", dir, fk);
        cJSON *fj = ids__result_load(sub, IDS_RESULT_STEER_BELIEF, 0, false);
        if (fj) {
            if (!head) sbf(b, "<table><tr><th>factor</th><th>ID (best 3)</th><th>noise</th></tr>\n");
            head = true;
            sbf(b, "<tr><td>%g</td><td>%.3f</td><td>%.3f</td></tr>\n", num(fj, "factor"), num(fj, "best3_id"),
                num(fj, "best3_noise"));
        }
        cJSON_Delete(fj);
    }
    if (head)
        sbf(b, "<tr><td>%g</td><td>%.3f</td><td>%.3f</td></tr></table>\n", num(main_run, "factor"), num(main_run, "best3_id"),
            num(main_run, "best3_noise"));
}

static int section_steer(sb *b, const char *dir) {
    section(b, "steer", "Belief-swap steering", "Fraction of beliefs swapped when the object words are steered with ID "
            "differences against the model's answer, versus Gaussian noise of the same norms.");
    cJSON *sj = load(dir, IDS_RESULT_STEER_BELIEF, 0), *sl = cJSON_GetObjectItem(sj, "layers");
    const int n = cJSON_GetArraySize(sl);
    double *a = n > 0 ? dvec(b, n) : NULL, *z = n > 0 ? dvec(b, n) : NULL;
    const int ok = a && z;
    if (ok) {
        const int l0 = inum(cJSON_GetArrayItem(sl, 0), "layer", 0);
        for (int i = 0; i < n; i++) a[i] = num(cJSON_GetArrayItem(sl, i), "id"), z[i] = num(cJSON_GetArrayItem(sl, i), "noise");
        series s[2] = {{"ID steering", a, false}, {"noise", z, true}};
        line_chart(b, "Beliefs swapped", "layer", "fraction swapped", l0, n, s, 2);
        sbf(b, "<p>Best 3 layers: ID %.3f, noise %.3f.", num(sj, "best3_id"), num(sj, "best3_noise"));
        if (cJSON_GetObjectItem(sj, "greedy_best3_id"))
            sbf(b, " From short greedy answers (whole-word verdicts): ID %.3f, noise %.3f.", num(sj, "greedy_best3_id"),
                num(sj, "greedy_best3_noise"));
        sbf(b, "</p>\n");
        steer_sweep(b, dir, sj);
    } else {
        not_run(b, IDS_RESULT_STEER_BELIEF);
    }
    free(a);
    free(z);
    cJSON_Delete(sj);
    return ok;
}

static int section_grid(sb *b, const char *dir) {
    section(b, "grid", "Arbitrary steering", "Mean change of log P(first) - log P(second answer) when the subject word is "
            "steered towards each target cell (rows top to bottom, columns left to right).");
    static const ids_relation rels[4] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW, IDS_REL_NEAR_FAR, IDS_REL_BETWEEN};
    static const char *const rel_names[4] = {"left - right", "above - below", "near - far", "between: yes - no"};
    int ng = 0;
    for (int k = 0; k < 8; k++) { /* ours, then the paper's variant (mirrored pairs) */
        const ids_result_kind kind = k < 4 ? IDS_RESULT_STEER_GRID : IDS_RESULT_STEER_GRID_PAPER;
        cJSON *g = load(dir, kind, rels[k % 4]), *d = cJSON_GetObjectItem(g, "delta");
        const int G = inum(g, "grid", 0);
        if (cJSON_IsArray(d) && G > 0 && G <= 16 && cJSON_GetArraySize(d) == G * G) {
            double v[256];
            for (int i = 0; i < G * G; i++) v[i] = cJSON_GetArrayItem(d, i)->valuedouble;
            char t[128];
            snprintf(t, sizeof t, "%s, layer %d%s", rel_names[k % 4], inum(g, "layer", 0),
                     k < 4 ? "" : " (the paper's mirrored pairs)");
            heat_map(b, t, G, v);
            ng++;
        }
        cJSON_Delete(g);
    }
    if (!ng) not_run(b, IDS_RESULT_STEER_GRID);
    return ng > 0;
}

/* A line chart of one or two per-layer keys of a result's "layers" list. */
static int layer_chart(sb *b, const cJSON *j, const char *title, const char *ylabel, const char *k1, const char *n1,
                       const char *k2, const char *n2) {
    const cJSON *ls = cJSON_GetObjectItem(j, "layers");
    const int n = cJSON_GetArraySize(ls);
    double *a = n > 0 ? dvec(b, n) : NULL, *z = n > 0 && k2 ? dvec(b, n) : NULL;
    const int ok = a && (z || !k2);
    if (ok) {
        for (int i = 0; i < n; i++) {
            a[i] = num(cJSON_GetArrayItem(ls, i), k1);
            if (z) z[i] = num(cJSON_GetArrayItem(ls, i), k2);
        }
        series s[2] = {{n1, a, false}, {n2, z, false}};
        line_chart(b, title, "layer", ylabel, inum(cJSON_GetArrayItem(ls, 0), "layer", 0), n, s, k2 ? 2 : 1);
    }
    free(a);
    free(z);
    return ok;
}

static int section_depth(sb *b, const char *dir) {
    section(b, "depth", "Depth diagnosis", "Change of log P(above) - log P(below) (grid scenes) and of log P(in front) - "
            "log P(behind) (depth scenes) when the subject word is pushed down with the vertical ID.");
    cJSON *dj = load(dir, IDS_RESULT_DEPTH, 0);
    const int ok = layer_chart(b, dj, "Pushing the subject down", "change of log-odds", "above_below_down", "above - below",
                               "front_behind_down", "front - behind");
    if (!ok) not_run(b, IDS_RESULT_DEPTH);
    cJSON_Delete(dj);
    return ok;
}

static int section_score(sb *b, const char *dir) {
    section(b, "score", "ID strength", "Linearity x consistency across object pairs x causal effect (ID swap rate minus noise).");
    cJSON *sj = load(dir, IDS_RESULT_SCORE, 0);
    const int ok = layer_chart(b, sj, "ID strength by layer", "score", "score", "score", NULL, NULL);
    if (!ok) not_run(b, IDS_RESULT_SCORE);
    cJSON_Delete(sj);
    return ok;
}

/* The time line: each frame's temporal ID on PC1 at the best layer, and PC1's share and Spearman per layer. */
static int temporal_line(sb *b, const cJSON *tj) {
    const cJSON *tl = cJSON_GetObjectItem(tj, "stats");
    const int L = cJSON_GetArraySize(tl), best = inum(tj, "best_layer", -1);
    double *var = L > 0 ? dvec(b, L) : NULL, *rho = L > 0 ? dvec(b, L) : NULL;
    const int ok = var && rho;
    if (ok) {
        for (int i = 0; i < L; i++) var[i] = num(cJSON_GetArrayItem(tl, i), "pc1_var"), rho[i] = num(cJSON_GetArrayItem(tl, i), "spearman");
        const cJSON *be = best >= 0 && best < L ? cJSON_GetArrayItem(tl, best) : NULL, *pc = cJSON_GetObjectItem(be, "pc1");
        const int F = cJSON_GetArraySize(pc);
        double *c = F > 0 ? dvec(b, F) : NULL;
        if (c) {
            for (int f = 0; f < F; f++) c[f] = cJSON_GetArrayItem(pc, f)->valuedouble;
            series s1[1] = {{"PC1 coordinate", c, false}};
            char t[96];
            snprintf(t, sizeof t, "Temporal IDs on PC1, layer %d", best);
            line_chart(b, t, "appearance frame", "PC1", 1, F, s1, 1);
        }
        free(c);
        series s2[2] = {{"PC1 variance share", var, false}, {"Spearman with frame", rho, true}};
        line_chart(b, "Time line by layer", "layer", "value", 0, L, s2, 2);
    }
    free(var);
    free(rho);
    return ok;
}

static int temporal_reversal(sb *b, const cJSON *tsw) {
    const int L = inum(tsw, "layers", 0);
    if (L <= 0 || L > 256) return 0;
    double *ys[3];
    for (int k = 0; k < 3; k++) ys[k] = dvec(b, L);
    const int ok = !b->oom;
    if (ok) {
        patch_curves(tsw, L, ys);
        series s[3] = {{"image rows", ys[0], false}, {"text rows", ys[1], false}, {"object words", ys[2], false}};
        line_chart(b, "Time reversal: recovered fraction", "layer", "recovered fraction", 0, L, s, 3);
    }
    for (int k = 0; k < 3; k++) free(ys[k]);
    return ok;
}

static int temporal_steering(sb *b, const cJSON *tst) {
    const cJSON *tsl = cJSON_GetObjectItem(tst, "layers");
    const int nl = cJSON_GetArraySize(tsl), n = nl < 6 ? nl : 6;
    const cJSON *d0 = cJSON_GetObjectItem(cJSON_GetArrayItem(tsl, 0), "d_after");
    const int F = cJSON_IsArray(d0) ? cJSON_GetArraySize(d0) : 0;
    if (n <= 0 || F <= 0 || F > 64) return 0;
    double *ys[6] = {0};
    char names[6][32];
    series s[6];
    for (int k = 0; k < n; k++) { /* up to 6 layers spread over the band */
        const int li = nl <= 6 ? k : k * (nl - 1) / 5;
        const cJSON *e = cJSON_GetArrayItem(tsl, li), *d = cJSON_GetObjectItem(e, "d_after");
        if (!(ys[k] = dvec(b, F))) break;
        for (int f = 0; f < F && f < cJSON_GetArraySize(d); f++) ys[k][f] = cJSON_GetArrayItem(d, f)->valuedouble;
        snprintf(names[k], sizeof names[k], "layer %d", inum(e, "layer", 0));
        s[k] = (series){names[k], ys[k], false};
    }
    if (!b->oom) {
        line_chart(b, "Steering: change of log P(after)", "target frame f", "change of log P(after)", 1, F, s, n);
        sbf(b, "<p>Layers where the change of log P(after) rises with f: %.3f of the band.</p>\n", num(tst, "monotonic"));
    }
    for (int k = 0; k < n; k++) free(ys[k]);
    return !b->oom;
}

static int section_temporal(sb *b, const char *dir) {
    section(b, "temporal", "Temporal IDs", "Videos in which two objects appear at different frames. Left: each frame's "
            "temporal ID on the first principal axis at the layer where it explains most (frames in order = a time line), "
            "and per layer PC1's share of the variance and the Spearman correlation of the coordinate with the frame. "
            "Then time-reversal patching per position set, and the change of log P(after) when the subject word is "
            "steered with T[f] - T[T-f] (frame T/2 is the null).");
    cJSON *tj = load(dir, IDS_RESULT_TEMPORAL, 0), *tsw = load(dir, IDS_RESULT_TEMPORAL_SWAP, 0),
          *tst = load(dir, IDS_RESULT_TEMPORAL_STEER, 0);
    const int nt = temporal_line(b, tj) + temporal_reversal(b, tsw) + temporal_steering(b, tst);
    if (!nt) not_run(b, IDS_RESULT_TEMPORAL);
    cJSON_Delete(tj);
    cJSON_Delete(tsw);
    cJSON_Delete(tst);
    return nt > 0;
}

/* ---- intervals, controls and Fig. 8: bars with 95% error bars ---- */

/* o[key] = [low, high] into lo, hi (NAN when absent). */
static void ci_of(const cJSON *o, const char *key, double *lo, double *hi) {
    const cJSON *a = cJSON_GetObjectItem(o, key);
    const cJSON *x = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL, *y = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 1) : NULL;
    *lo = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    *hi = cJSON_IsNumber(y) ? y->valuedouble : NAN;
}

/* Bar chart of n values with their 95% intervals as error bars (missing intervals: no bar). */
static void bars_ci(sb *b, const char *title, const char *ylabel, int n, const char *const *labels, const double *v,
                    const double *lo, const double *hi) {
    const int W = 560, H = 260, l = 56, t = 30, bt = 56, r = 20;
    double mn = 0, mx = 0;
    for (int i = 0; i < n; i++) {
        const double c[3] = {v[i], lo[i], hi[i]};
        for (int q = 0; q < 3; q++)
            if (isfinite(c[q])) mn = fmin(mn, c[q]), mx = fmax(mx, c[q]);
    }
    if (mx - mn < 1e-9) mx = mn + 1;
    const double pw = W - l - r, ph = H - t - bt, bw = pw / (n > 0 ? n : 1);
#define YPX(val) (t + ph - ph * ((val) - mn) / (mx - mn))
    sbf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    sbf(b, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">", l);
    esc(b, title);
    sbf(b, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n", l, t, pw, ph);
    for (int g = 0; g <= 4; g++)
        sbf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" font-family=\"sans-serif\">%.3g</text>\n", l - 4,
            t + ph - ph * g / 4 + 3, mn + (mx - mn) * g / 4);
    sbf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#666\"/>\n", l, YPX(0.0), l + pw, YPX(0.0));
    sbf(b, "<text x=\"12\" y=\"%.0f\" font-size=\"11\" font-family=\"sans-serif\" transform=\"rotate(-90 12 %.0f)\">", t + ph / 2, t + ph / 2);
    esc(b, ylabel);
    sbf(b, "</text>\n");
    for (int i = 0; i < n; i++) {
        const double x = l + bw * i + bw * 0.2, w = bw * 0.6, cx = x + w / 2;
        if (isfinite(v[i])) {
            const double y0 = YPX(0.0), y1 = YPX(v[i]);
            sbf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, fmin(y0, y1), w, fabs(y1 - y0) + 0.5,
                k_colors[i % 6]);
        }
        if (isfinite(lo[i]) && isfinite(hi[i])) /* the 95% interval */
            sbf(b, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"#000\" fill=\"none\"/>\n", cx, YPX(lo[i]), YPX(hi[i]),
                cx - 5, YPX(lo[i]), cx + 5, cx - 5, YPX(hi[i]), cx + 5);
        sbf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" font-family=\"sans-serif\">", cx, t + (int)ph + 14);
        esc(b, labels[i]);
        sbf(b, "</text>\n<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" font-family=\"sans-serif\">%.3g</text>\n", cx,
            t + (int)ph + 28, v[i]);
    }
#undef YPX
    sbf(b, "</svg>\n");
}

/* Bars of o[keys[i]] with o[keys[i] + "_ci"] for several objects (objs[i], NULL = skipped). */
static void bars_of(sb *b, const char *title, const char *ylabel, int n, const char *const *labels, const cJSON *const *objs,
                    const char *const *keys) {
    double v[8], lo[8], hi[8];
    for (int i = 0; i < n && i < 8; i++) {
        char k[96];
        snprintf(k, sizeof k, "%s_ci", keys[i]);
        v[i] = num(objs[i], keys[i]);
        ci_of(objs[i], k, &lo[i], &hi[i]);
    }
    bars_ci(b, title, ylabel, n < 8 ? n : 8, labels, v, lo, hi);
}

static cJSON *load_sub(const char *dir, const char *rel) {
    char *p = ids__path_join(dir, rel);
    cJSON *j = p ? ids__result_read(p, NULL) : NULL;
    free(p);
    return j;
}

/* Intervals of the headline numbers: belief swap rates and accuracy, R^2 beside its permutation null,
 * the depth diagnosis with its two controls, the temporal steering sweep. */
static int section_intervals(sb *b, const char *dir) {
    section(b, "intervals", "Intervals and controls", "Bootstrap 95% intervals (items resampled, seeded) as error bars. "
            "Belief steering at the 3 best layers: swap rates and the accuracy without steering and under each push. "
            "The depth diagnosis: each push's effect over the band, (down - up) / 2, on log P(above) - log P(below) and "
            "log P(in front) - log P(behind), for the vertical ID and its two controls of the same norm (a random "
            "direction, the orthogonal axis). The steering grids beside the same two controls. The temporal steering "
            "sweep: the fraction of monotonic layers per factor.");
    cJSON *bel = load(dir, IDS_RESULT_STEER_BELIEF, 0), *st = load(dir, IDS_RESULT_STATS, 0), *dep = load(dir, IDS_RESULT_DEPTH, 0);
    int had = 0;
    if (bel && cJSON_GetObjectItem(bel, "best3_id_ci")) {
        const cJSON *acc = cJSON_GetObjectItem(bel, "accuracy");
        const cJSON *objs[5] = {bel, bel, acc, acc, acc};
        static const char *const keys[5] = {"best3_id", "best3_noise", "baseline", "id", "noise"};
        static const char *const labels[5] = {"swap: ID", "swap: noise", "acc: none", "acc: ID", "acc: noise"};
        bars_of(b, "Belief steering (best 3 layers)", "rate", acc ? 5 : 2, labels, objs, keys);
        had = 1;
    }
    const cJSON *it;
    bool opened = false;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(st, "layers")) if (isfinite(num(it, "r2_null_mean")) && num(it, "layer") >= 1) {
        if (!opened)
            sbf(b, "<p>R&#178; of the cell IDs per layer, beside its permutation null (cell labels shuffled: mean, 95th "
                   "percentile, p) and its interval over object pairs:<br/>\n");
        opened = true;
        double lo, hi;
        ci_of(it, "r2_ci", &lo, &hi);
        sbf(b, "layer %d: R&#178; %.3f [%.3f, %.3f] (null %.3f, q95 %.3f, p %.3g)<br/>\n", inum(it, "layer", 0), num(it, "r2"), lo,
            hi, num(it, "r2_null_mean"), num(it, "r2_null_q95"), num(it, "r2_null_p"));
        had = 1;
    }
    if (opened) sbf(b, "</p>\n");
    const cJSON *eff = cJSON_GetObjectItem(dep, "effect");
    if (eff) {
        static const char *const push[3] = {"vertical", "random_id", "orthogonal"};
        static const char *const labels[3] = {"vertical ID", "random (ctl)", "orthogonal (ctl)"};
        for (int q = 0; q < 2; q++) {
            const cJSON *objs[3];
            const char *keys[3];
            for (int p = 0; p < 3; p++) objs[p] = cJSON_GetObjectItem(eff, push[p]), keys[p] = q ? "front_behind" : "above_below";
            bars_of(b, q ? "Depth diagnosis: log P(in front) - log P(behind)" : "Depth diagnosis: log P(above) - log P(below)",
                    "(down - up) / 2", 3, labels, objs, keys);
        }
        had = 1;
    }
    static const ids_relation grels[2] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW};
    for (int q = 0; q < 2; q++) { /* the steering grids' size beside their controls' */
        cJSON *gj = load(dir, IDS_RESULT_STEER_GRID, grels[q]);
        const cJSON *ma = cJSON_GetObjectItem(gj, "mean_abs");
        if (ma) {
            static const char *const labels[3] = {"ID push", "random (ctl)", "orthogonal (ctl)"};
            static const char *const keys[3] = {"push", "random_id", "orthogonal"};
            const cJSON *objs[3] = {ma, ma, ma};
            char title[96];
            snprintf(title, sizeof title, "Steering grid (%s): mean |change| over target cells", ids_relation_name(grels[q]));
            bars_of(b, title, "mean |change of D|", 3, labels, objs, keys);
            had = 1;
        }
        cJSON_Delete(gj);
    }
    static const char *const tf[4] = {"temporal/factor-0.5/temporal-steer.json", "temporal/factor-1/temporal-steer.json",
                                      "temporal/factor-2/temporal-steer.json", "temporal/temporal-steer.json"};
    static const char *const tl[4] = {"factor 0.5", "factor 1", "factor 2", "factor 5"};
    cJSON *tj[4];
    const cJSON *tjc[4];
    const char *tk[4];
    int nt = 0;
    for (int k = 0; k < 4; k++) tjc[k] = tj[k] = load_sub(dir, tf[k]), tk[k] = "monotonic", nt += tj[k] != NULL;
    if (nt > 1) {
        bars_of(b, "Temporal steering: monotonic layers by factor", "fraction of layers", 4, tl, tjc, tk);
        had = 1;
    }
    for (int k = 0; k < 4; k++) cJSON_Delete(tj[k]);
    if (!had) sbf(b, "<p class=\"none\">no intervals found (results of an older build)</p>\n");
    cJSON_Delete(bel);
    cJSON_Delete(st);
    cJSON_Delete(dep);
    return had;
}

/* Fig. 8A (deviation right vs wrong, Mann-Whitney) and Fig. 8B (blur masking). */
static int section_fig8(sb *b, const char *dir) {
    section(b, "fig8", "Deviation and masking", "Deviation: the subject word's shift by the image (with the image minus "
            "text only) in the plane of the ID axes, against the universal ID at its box centre; items answered right "
            "vs wrong, Mann-Whitney U. Masking: the subject's box blurred against random boxes of its size: accuracy, "
            "and the change of log P(true) - log P(other).");
    cJSON *dev = load_sub(dir, "deviation/deviation.json"), *mask = load_sub(dir, "mask/mask.json");
    if (dev) {
        static const char *const labels[2] = {"right", "wrong"}, *const keys[2] = {"deviation_right", "deviation_wrong"};
        const cJSON *objs[2] = {dev, dev};
        bars_of(b, "Deviation from the ID at the box centre", "distance in the ID plane", 2, labels, objs, keys);
        const cJSON *mw = cJSON_GetObjectItem(dev, "mann_whitney"), *m = cJSON_GetObjectItem(mw, "method");
        sbf(b, "<p>Layer %d: %d right, %d wrong; Mann-Whitney U %.1f, p %.3g (", inum(dev, "layer", 0), inum(dev, "right", 0),
            inum(dev, "wrong", 0), num(mw, "u"), num(mw, "p"));
        esc(b, cJSON_IsString(m) ? m->valuestring : "?");
        sbf(b, ").</p>\n");
    }
    if (mask) {
        static const char *const labels[3] = {"clean", "object blurred", "random blurred"};
        static const char *const acc[3] = {"accuracy", "accuracy", "accuracy"};
        const cJSON *objs[3] = {cJSON_GetObjectItem(mask, "clean"), cJSON_GetObjectItem(mask, "object"), cJSON_GetObjectItem(mask, "random")};
        bars_of(b, "Masking: accuracy", "accuracy", 3, labels, objs, acc);
        static const char *const dk[2] = {"d_true_change", "d_true_change"};
        bars_of(b, "Masking: change of log P(true) - log P(other)", "change", 2, labels + 1, objs + 1, dk);
    }
    if (!dev && !mask) sbf(b, "<p class=\"none\">not run (idscope deviation, idscope mask)</p>\n");
    const int had = dev || mask;
    cJSON_Delete(dev);
    cJSON_Delete(mask);
    return had;
}

/* The text model the results were made with (the first result found that names one), malloc'd or NULL. */
static char *results_model(const char *dir) {
    static const ids_result_kind kinds[] = {IDS_RESULT_IDS, IDS_RESULT_STEER_BELIEF, IDS_RESULT_SWAP, IDS_RESULT_DEPTH,
                                            IDS_RESULT_TEMPORAL, IDS_RESULT_SUMMARY};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        cJSON *j = load(dir, kinds[k], 0);
        const cJSON *models = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "provenance"), "models");
        const cJSON *path = cJSON_GetObjectItem(cJSON_GetObjectItem(models, "text"), "path");
        char *p = cJSON_IsString(path) ? ids__strdup(path->valuestring) : NULL;
        cJSON_Delete(j);
        if (p) return p;
    }
    return NULL;
}

/* Where the results came from: the extraction's settings and provenance, as stored. */
static void section_meta(sb *b, const char *dir) {
    cJSON *ij = load(dir, IDS_RESULT_IDS, 0);
    if (!ij) return;
    char *t = cJSON_Print(ij);
    sbf(b, "<h2 id=\"meta\">Extraction settings</h2>\n<pre>");
    if (t) esc(b, t);
    else b->oom = true;
    sbf(b, "</pre>\n");
    free(t);
    cJSON_Delete(ij);
}

/* The report's own provenance: every result file it reads (JSON of each kind found). */
ids_status ids__report_prov(const char *dir, ids_prov **out, ids_err *err) {
    ids_status st = ids_prov_new(out, "report", err);
    static const ids_relation rels[4] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW, IDS_REL_NEAR_FAR, IDS_REL_BETWEEN};
    for (int k = IDS_RESULT_IDS; !st && k <= IDS_RESULT_SCORE; k++)
        for (int r = 0; !st && r < (k == IDS_RESULT_STEER_GRID || k == IDS_RESULT_STEER_GRID_PAPER ? 4 : 1); r++) {
            char *path = ids_result_path(dir, (ids_result_kind)k, rels[r], true), buf[64];
            if (!path) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
            else if (access(path, R_OK) == 0)
                st = ids_prov_input(*out, ids_result_name((ids_result_kind)k, rels[r], buf, sizeof buf), path, err);
            free(path);
        }
    static const char *const more[5] = {"deviation/deviation.json", "mask/mask.json", "temporal/factor-0.5/temporal-steer.json",
                                        "temporal/factor-1/temporal-steer.json", "temporal/factor-2/temporal-steer.json"};
    for (int k = 0; !st && k < 5; k++) { /* Fig. 8 and the temporal steering sweep */
        char *path = ids__path_join(dir, more[k]);
        if (!path) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        else if (access(path, R_OK) == 0) st = ids_prov_input(*out, more[k], path, err);
        free(path);
    }
    for (int fk = 1; !st && fk <= 4; fk++) {
        char sub[64];
        snprintf(sub, sizeof sub, "steer/factor-%d/steer-belief.json", fk);
        char *path = ids__path_join(dir, sub);
        if (!path) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        else if (access(path, R_OK) == 0) st = ids_prov_input(*out, sub, path, err);
        free(path);
    }
    if (!st) ids_prov_run(*out, 0, 1, "f32");
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
    }
    return st;
}

ids_status ids_report(const char *dir, int *n_sections, ids_err *err) {
    sb b = {0};
    *n_sections = 0;
    ids_prov *prov = NULL;
    ids_status st = ids__report_prov(dir, &prov, err);
    if (st) return st;
    ids_prov_finish(prov);
    cJSON *pj = ids__prov_json(prov, err);
    char *pt = pj ? cJSON_PrintUnformatted(pj) : NULL;
    cJSON_Delete(pj);
    ids_prov_free(prov);
    if (!pt) return ids__err(err, IDS_ERR_NOMEM, "report: out of memory");
    sbf(&b, "<!DOCTYPE html>\n");
    if (!strstr(pt, "--")) sbf(&b, "<!-- " IDS_REPORT_PROV_MARK " %s -->\n", pt); /* a comment may not hold "--" */
    free(pt);
    sbf(&b, "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><meta charset=\"utf-8\"/>"
            "<title>idscope report</title><style>body{font-family:sans-serif;max-width:980px;margin:24px auto;}"
            "h2{border-bottom:1px solid #ddd;} .none{color:#999;}</style></head><body>\n<h1>idscope report</h1>\n<p>");
    esc(&b, dir);
    char *model = results_model(dir);
    if (model) {
        sbf(&b, "<br/>model: ");
        esc(&b, model);
    }
    sbf(&b, "</p>\n");
    if (model && ids_positive_control(model)) { /* a model made by idscope's trainer, such as the bundled one */
        sbf(&b, "<p><strong>");
        esc(&b, IDS_POSITIVE_CONTROL_NOTE);
        sbf(&b, "</strong> Evidence about pretrained VLMs comes from running the same experiments on them.</p>\n");
    }
    free(model);
    int (*const sections[])(sb *, const char *) = {section_ids, section_swap, section_steer, section_grid,
                                                  section_depth, section_score, section_temporal, section_intervals,
                                                  section_fig8};
    for (size_t k = 0; k < sizeof sections / sizeof *sections; k++) *n_sections += sections[k](&b, dir);
    section_meta(&b, dir);
    sbf(&b, "</body></html>\n");
    if (b.oom) {
        free(b.p);
        return ids__err(err, IDS_ERR_NOMEM, "report: out of memory");
    }
    st = ids__write_text(dir, "report.html", b.p, b.n, err);
    free(b.p);
    return st;
}
