/* The HTML report: inline SVG charts (line charts per layer, PCA scatter, heat maps) built from the
 * experiments' JSON results. Well-formed XHTML-style markup (every tag closed). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"
#include "exp/plot.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The page grows in a text buffer of the results module (ids__tb); sbf appends to it. The figures of
 * the section being drawn are also written as DIR/figures/SECTION-K.svg and, drawn again at twice
 * the size for slides, DIR/figures/SECTION-K.png (standalone files). */
typedef struct report_page {
    ids__tb t;
    const char *dir;
    const char *sec; /* the id of the section being drawn */
    int n_fig;       /* its figures so far */
    char written[128][40]; /* the figure files of this page (figures/NAME) */
    int n_written;
    ids_status st;   /* the first failure writing a figure file */
    ids_err *err;
} sb;
#define sbf(r, ...) ids__tb_printf(&(r)->t, __VA_ARGS__)

#define IDS_REPORT_PNG_SCALE 2 /* PNG pixels per SVG pixel */

static void esc(sb *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') sbf(b, "&lt;");
        else if (*s == '>') sbf(b, "&gt;");
        else if (*s == '&') sbf(b, "&amp;");
        else if (*s == '"') sbf(b, "&quot;");
        else sbf(b, "%c", *s);
    }
}

static void remember(sb *b, const char *name) {
    if (b->n_written < 128) snprintf(b->written[b->n_written++], sizeof b->written[0], "%s", name);
}

/* The figure as PNG: figures/NAME.png. */
static void figure_png(sb *b, const char *fd, const char *stem, const ids__plot_fig *f) {
    char name[40];
    snprintf(name, sizeof name, "%s.png", stem);
    char *path = ids__path_join(fd, name);
    ids_image img = {0};
    if (!path) b->t.oom = true;
    else if (!(b->st = ids__plot_image(f, IDS_REPORT_PNG_SCALE, &img, b->err))) b->st = ids_image_write_png(&img, path, b->err);
    remember(b, name);
    ids_image_free(&img);
    free(path);
}

/* A figure: its SVG into the page, the same SVG as figures/SECTION-K.svg and the figure drawn as
 * figures/SECTION-K.png, both linked under it. */
static void figure(sb *b, const ids__plot_fig *f) {
    char stem[32], name[40];
    snprintf(stem, sizeof stem, "%s-%d", b->sec ? b->sec : "figure", ++b->n_fig);
    snprintf(name, sizeof name, "%s.svg", stem);
    sbf(b, "<figure>\n");
    const size_t at = b->t.n;
    ids__plot_svg(&b->t, f);
    if (!b->t.oom && !b->st && b->t.n > at) {
        ids__tb svg = {0};
        ids__tb_printf(&svg, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%.*s", (int)(b->t.n - at), b->t.p + at);
        char *fd = svg.oom ? NULL : ids__path_join(b->dir, "figures");
        if (!fd) b->t.oom = true;
        else b->st = ids__write_text(fd, name, svg.p, svg.n, b->err);
        remember(b, name);
        if (fd && !b->st) figure_png(b, fd, stem, f);
        free(fd);
        free(svg.p);
    }
    sbf(b, "<figcaption><a href=\"figures/%s.svg\">figures/%s.svg</a> &#183; <a href=\"figures/%s.png\">PNG</a></figcaption>\n"
           "</figure>\n", stem, stem, stem);
}

/* A line chart on the plotting layer (bands, colours, line styles and the y range to include as given). */
static void chart(sb *b, const ids__plot_axes *ax, const ids__plot_series *s, int ns) {
    const ids__plot_fig f = {.kind = IDS_FIG_LINES, .ax = ax, .s = s, .ns = ns};
    figure(b, &f);
}

static double num(const cJSON *o, const char *k) { return ids__jget(o, k); }
/* Integers of the result files: checked before conversion, def when unusable. */
static int inum(const cJSON *o, const char *k, int def) { return ids__jint(o, k, 0, IDS_JSON_LAYER_MAX, def); }
static const char *str(const cJSON *o, const char *k) {
    const cJSON *s = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* n doubles (zeroed) for a chart; NULL (and the report fails as out of memory) when refused. */
static double *dvec(sb *b, int n) {
    double *v = ids__calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!v) b->t.oom = true;
    return v;
}

/* An interval of a per-layer entry, when the result has one: KEY_ci = [lo, hi]. */
static void ci_at(const cJSON *o, const char *key, double *lo, double *hi) {
    char k[64];
    snprintf(k, sizeof k, "%s_ci", key);
    const cJSON *c = cJSON_GetObjectItem(o, k);
    *lo = *hi = NAN;
    if (cJSON_IsArray(c) && cJSON_GetArraySize(c) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(c, 0)) &&
        cJSON_IsNumber(cJSON_GetArrayItem(c, 1)))
        *lo = cJSON_GetArrayItem(c, 0)->valuedouble, *hi = cJSON_GetArrayItem(c, 1)->valuedouble;
}

/* A per-layer key of a "layers" list into y (and its interval into lo/hi when present; else they are
 * freed and set NULL). */
static void layer_key(const cJSON *ls, int n, const char *key, double *y, double **lo, double **hi) {
    bool any = false;
    for (int i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(ls, i);
        y[i] = num(o, key);
        if (*lo && *hi) {
            ci_at(o, key, &(*lo)[i], &(*hi)[i]);
            any |= isfinite((*lo)[i]);
        }
    }
    if (!any) {
        free(*lo), free(*hi);
        *lo = *hi = NULL;
    }
}

static cJSON *load(const char *dir, ids_result_kind k, ids_relation rel) { return ids__result_load(dir, k, rel, true); }

static void not_run(sb *b, ids_result_kind k) {
    char buf[64];
    const char *folder = ids_result_folder(k), *name = ids_result_name(k, IDS_REL_LEFT_RIGHT, buf, sizeof buf);
    if (k == IDS_RESULT_STEER_GRID) name = "steer-grid-*.json";
    if (k == IDS_RESULT_TEMPORAL) name = "temporal*.json";
    sbf(b, "<p class=\"none\">not run (no %s%s%s)</p>\n", folder, *folder ? "/" : "", name);
}

/* A section's heading, what it shows, and how to read it (what a zero means). */
static void section(sb *b, const char *id, const char *title, const char *what, const char *how) {
    b->sec = id;
    b->n_fig = 0;
    sbf(b, "<h2 id=\"%s\">", id);
    esc(b, title);
    sbf(b, "</h2>\n<p>");
    esc(b, what);
    sbf(b, "</p>\n<p class=\"how\"><b>How to read it.</b> ");
    esc(b, how);
    sbf(b, "</p>\n");
}

/* Where a result came from: its command, model, idscope build, date, duration, items. */
static void prov_line(sb *b, const cJSON *j) {
    const cJSON *p = cJSON_GetObjectItem(j, "provenance");
    if (!p) return;
    const char *model = str(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "models"), "text"), "path");
    const char *base = model && strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    sbf(b, "<p class=\"prov\">From <code>idscope ");
    esc(b, str(p, "command") ? str(p, "command") : "?");
    sbf(b, "</code>");
    if (base) sbf(b, " on <code>"), esc(b, base), sbf(b, "</code>");
    sbf(b, ", idscope ");
    esc(b, str(p, "idscope") ? str(p, "idscope") : "?");
    if (str(p, "build")) sbf(b, " ("), esc(b, str(p, "build")), sbf(b, ")");
    if (str(p, "started")) sbf(b, ", started "), esc(b, str(p, "started"));
    if (isfinite(num(p, "seconds"))) sbf(b, ", %.1f s", num(p, "seconds"));
    if (isfinite(num(j, "items"))) sbf(b, ", %.0f item%s per condition", num(j, "items"), num(j, "items") == 1 ? "" : "s");
    sbf(b, ", precision ");
    esc(b, str(p, "precision") ? str(p, "precision") : "?");
    sbf(b, ".</p>\n");
}

/* ---- sections: each draws its results, or says they were not run; returns 1 when it had data ---- */

/* The cells in PCA space at one layer: equal units on both axes, neighbours joined. */
static void ids_plane(sb *b, const cJSON *layer, int li) {
    const cJSON *pca = cJSON_GetObjectItem(layer, "pca");
    const int np = cJSON_GetArraySize(pca);
    if (np <= 0 || np > 256) return;
    double px[256], py[256];
    int lx[256], ly[256];
    for (int k = 0; k < np; k++) {
        const cJSON *e = cJSON_GetArrayItem(pca, k);
        px[k] = num(e, "pc1"), py[k] = num(e, "pc2"), lx[k] = inum(e, "x", 0), ly[k] = inum(e, "y", 0);
    }
    char t[96];
    snprintf(t, sizeof t, "Cell IDs in PCA space, layer %d (labels x,y)", li);
    const ids__plot_plane pl = {t, "PC1 (residual-stream units)", "PC2 (residual-stream units)", np, px, py, lx, ly};
    const ids__plot_fig f = {.kind = IDS_FIG_SCATTER, .plane = &pl};
    figure(b, &f);
}

static int section_ids(sb *b, const char *dir) {
    section(b, "ids", "Spatial IDs",
            "Per layer: R\xc2\xb2 of a linear fit of the cell IDs in (x, y), the share of their variance inside the plane of "
            "the x and y axes, and the share of the first two principal components; then the cells in PCA space at "
            "the layer with the highest R\xc2\xb2.",
            "A fraction near 1 means the IDs of the cells lie on a plane laid out like the grid, and 0 means position "
            "explains none of their variance (as at layer 0, the word embeddings, which see no image). In the PCA "
            "picture both axes have the same units: a grid of joined rows and columns that keeps its shape is a "
            "linear map of the image plane.");
    cJSON *st = load(dir, IDS_RESULT_STATS, 0), *layers = cJSON_GetObjectItem(st, "layers");
    const int n = cJSON_GetArraySize(layers);
    double *y[3] = {0}, *lo[3] = {0}, *hi[3] = {0};
    static const char *const keys[3] = {"r2", "plane", "pca_var"};
    int ok = n > 0;
    for (int k = 0; ok && k < 3; k++) {
        y[k] = dvec(b, n), lo[k] = dvec(b, n), hi[k] = dvec(b, n);
        ok = y[k] && lo[k] && hi[k];
    }
    if (ok) {
        prov_line(b, st);
        for (int k = 0; k < 3; k++) layer_key(layers, n, keys[k], y[k], &lo[k], &hi[k]);
        int best = 0;
        for (int i = 0; i < n; i++)
            if (y[0][i] > y[0][best]) best = i;
        const ids__plot_series s[3] = {{"R\xc2\xb2 of a linear fit in (x, y)", y[0], lo[0], hi[0], 0, IDS_PLOT_SOLID},
                                       {"variance in the axis plane", y[1], lo[1], hi[1], 1, IDS_PLOT_DASHED},
                                       {"variance in PC1 + PC2", y[2], lo[2], hi[2], 2, IDS_PLOT_DOTTED}};
        const ids__plot_axes ax = {"How linear and planar the IDs are", "layer (0 = embeddings)", "fraction of variance",
                                   inum(cJSON_GetArrayItem(layers, 0), "layer", 0), n, 0, 1, NULL, NULL, 0};
        chart(b, &ax, s, 3);
        ids_plane(b, cJSON_GetArrayItem(layers, best), inum(cJSON_GetArrayItem(layers, best), "layer", best));
    } else {
        not_run(b, IDS_RESULT_STATS);
    }
    for (int k = 0; k < 3; k++) free(y[k]), free(lo[k]), free(hi[k]);
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
    section(b, "swap", "Mirror swapping",
            "Recovered fraction of the mirror's effect on log P(left) - log P(right) when one position set is patched "
            "from the mirrored image at one layer (solid), and of the attribute edit (dashed): the named objects "
            "recoloured (the question keeps their old colours, so it no longer matches the picture), or, when run, "
            "the paper's hue shift of the whole image (dotted; swap --hue).",
            "Colour is the position set patched, the line style the edit. 1 means patching that set at that layer "
            "carries the whole effect of the mirror, 0 that it carries none of it (the answer stays with the "
            "unpatched image).");
    cJSON *sw = load(dir, IDS_RESULT_SWAP, 0), *sc = load(dir, IDS_RESULT_SWAP_CONTROL, 0);
    cJSON *sh = load(dir, IDS_RESULT_SWAP_HUE, 0);
    const int L = inum(sw, "layers", 0);
    int ok = 0;
    if (L > 0 && L <= 256) {
        double *ys[9];
        for (int k = 0; k < 9; k++) ys[k] = dvec(b, L);
        if (!b->t.oom) {
            prov_line(b, sw);
            patch_curves(sw, L, ys);
            if (sc) patch_curves(sc, L, ys + 3);
            if (sh) patch_curves(sh, L, ys + 6);
            static const char *const names[9] = {"image rows (mirror)", "text rows (mirror)", "object words (mirror)",
                                                 "image rows (recolour)", "text rows (recolour)", "object words (recolour)",
                                                 "image rows (hue)", "text rows (hue)", "object words (hue)"};
            ids__plot_series s[9];
            int ns = 0;
            for (int k = 0; k < 9; k++)
                if (k < 3 || (k < 6 && sc) || (k >= 6 && sh))
                    s[ns++] = (ids__plot_series){names[k], ys[k], NULL, NULL, k % 3, k / 3};
            const ids__plot_axes ax = {"Recovered fraction by layer", "layer patched (0 = embeddings)",
                                       "recovered fraction of the effect", 0, L, 0, 1, NULL, NULL, 0};
            chart(b, &ax, s, ns);
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
            if (!head)
                sbf(b, "<table><tr><th>factor</th><th>swapped with IDs (best 3 layers)</th><th>with noise</th></tr>\n");
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
    section(b, "steer", "Belief-swap steering",
            "Fraction of beliefs swapped when the object words are steered with ID differences against the model's "
            "answer, versus Gaussian noise of the same norms, per layer.",
            "A belief is swapped when the sign of log P(correct) - log P(wrong) flips; 0 means no answer flipped, 1 "
            "that every one did. IDs above the noise line are the causal evidence; shaded bands, where a result has "
            "them, are 95% intervals.");
    cJSON *sj = load(dir, IDS_RESULT_STEER_BELIEF, 0), *sl = cJSON_GetObjectItem(sj, "layers");
    const int n = cJSON_GetArraySize(sl);
    double *y[2] = {0}, *lo[2] = {0}, *hi[2] = {0};
    int ok = n > 0;
    for (int k = 0; ok && k < 2; k++) {
        y[k] = dvec(b, n), lo[k] = dvec(b, n), hi[k] = dvec(b, n);
        ok = y[k] && lo[k] && hi[k];
    }
    if (ok) {
        prov_line(b, sj);
        layer_key(sl, n, "id", y[0], &lo[0], &hi[0]);
        layer_key(sl, n, "noise", y[1], &lo[1], &hi[1]);
        const ids__plot_series s[2] = {{"ID steering", y[0], lo[0], hi[0], 0, IDS_PLOT_SOLID},
                                       {"noise of the same norm", y[1], lo[1], hi[1], 1, IDS_PLOT_DASHED}};
        const ids__plot_axes ax = {"Beliefs swapped", "layer steered", "fraction of answers swapped",
                                   inum(cJSON_GetArrayItem(sl, 0), "layer", 0), n, 0, 1, NULL, NULL, 0};
        chart(b, &ax, s, 2);
        sbf(b, "<p>Best 3 layers: ID %.3f, noise %.3f.", num(sj, "best3_id"), num(sj, "best3_noise"));
        if (cJSON_GetObjectItem(sj, "greedy_best3_id"))
            sbf(b, " From short greedy answers (whole-word verdicts): ID %.3f, noise %.3f.", num(sj, "greedy_best3_id"),
                num(sj, "greedy_best3_noise"));
        sbf(b, "</p>\n");
        steer_sweep(b, dir, sj);
    } else {
        not_run(b, IDS_RESULT_STEER_BELIEF);
    }
    for (int k = 0; k < 2; k++) free(y[k]), free(lo[k]), free(hi[k]);
    cJSON_Delete(sj);
    return ok;
}

/* One figure of steering grids (ours or the paper's variant): the panels of every relation found, on
 * one colour scale. Returns the panels drawn. */
static int grid_figure(sb *b, const char *dir, ids_result_kind kind, const char *title) {
    static const ids_relation rels[4] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW, IDS_REL_NEAR_FAR, IDS_REL_BETWEEN};
    static const char *const rel_names[4] = {"left - right", "above - below", "near - far", "between: yes - no"};
    double v[4][256];
    char t[4][64];
    ids__plot_panel p[4];
    int np = 0;
    cJSON *first = NULL;
    for (int k = 0; k < 4; k++) {
        cJSON *g = load(dir, kind, rels[k]), *d = cJSON_GetObjectItem(g, "delta");
        const int G = inum(g, "grid", 0);
        if (cJSON_IsArray(d) && G > 0 && G <= 16 && cJSON_GetArraySize(d) == G * G) {
            for (int i = 0; i < G * G; i++) {
                const cJSON *e = cJSON_GetArrayItem(d, i);
                v[np][i] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
            }
            snprintf(t[np], sizeof t[np], "%s, layer %d", rel_names[k], inum(g, "layer", 0));
            const cJSON *src = cJSON_GetObjectItem(g, "source"); /* a fixed source cell, when the result has one */
            p[np] = (ids__plot_panel){t[np], G, G, v[np], inum(src, "y", -1), inum(src, "x", -1)};
            np++;
        }
        if (!first && np) first = g;
        else cJSON_Delete(g);
    }
    if (np) {
        prov_line(b, first);
        const ids__plot_heat h = {title, "target row y (0 = top)", "target column x (0 = left)",
                                  "mean change of log-odds (nats)"};
        const ids__plot_fig f = {.kind = IDS_FIG_HEAT, .heat = &h, .panels = p, .np = np};
        figure(b, &f);
    }
    cJSON_Delete(first);
    return np;
}

static int section_grid(sb *b, const char *dir) {
    section(b, "grid", "Arbitrary steering",
            "Mean change of log P(first) - log P(second answer) when the subject word is steered towards each target "
            "cell (rows top to bottom, columns left to right), one panel per relation; the source is the subject's own "
            "cell, which differs per image (a panel outlines a source cell only when the result fixes one).",
            "Red means the first answer (left, above, near, yes) gained, blue that the second did, white (0) that the "
            "steering changed nothing; all panels of a figure share one colour scale, so equal colours are equal "
            "changes.");
    int ng = grid_figure(b, dir, IDS_RESULT_STEER_GRID, "Steering towards each cell");
    ng += grid_figure(b, dir, IDS_RESULT_STEER_GRID_PAPER, "The paper's variant (mirrored pairs)");
    if (!ng) not_run(b, IDS_RESULT_STEER_GRID);
    return ng > 0;
}

/* A line chart of one or two per-layer keys of a result's "layers" list (bands from KEY_ci); the y range
 * includes 0 and ymax (NAN: no upper value). */
static int layer_chart(sb *b, const cJSON *j, const char *title, const char *ylabel, double ymax, const char *k1,
                       const char *n1, const char *k2, const char *n2) {
    const cJSON *ls = cJSON_GetObjectItem(j, "layers");
    const int n = cJSON_GetArraySize(ls), ns = k2 ? 2 : 1;
    double *y[2] = {0}, *lo[2] = {0}, *hi[2] = {0};
    int ok = n > 0;
    for (int k = 0; ok && k < ns; k++) {
        y[k] = dvec(b, n), lo[k] = dvec(b, n), hi[k] = dvec(b, n);
        ok = y[k] && lo[k] && hi[k];
    }
    if (ok) {
        prov_line(b, j);
        layer_key(ls, n, k1, y[0], &lo[0], &hi[0]);
        if (k2) layer_key(ls, n, k2, y[1], &lo[1], &hi[1]);
        const ids__plot_series s[2] = {{n1, y[0], lo[0], hi[0], 0, IDS_PLOT_SOLID}, {n2, y[1], lo[1], hi[1], 1, IDS_PLOT_DASHED}};
        const ids__plot_axes ax = {title, "layer steered", ylabel, inum(cJSON_GetArrayItem(ls, 0), "layer", 0), n, 0, ymax, NULL, NULL, 0};
        chart(b, &ax, s, ns);
    }
    for (int k = 0; k < 2; k++) free(y[k]), free(lo[k]), free(hi[k]);
    return ok;
}

static int section_depth(sb *b, const char *dir) {
    section(b, "depth", "Depth diagnosis",
            "Change of log P(above) - log P(below) (grid scenes) and of log P(in front) - log P(behind) (depth scenes) "
            "when the subject word is pushed down with the vertical ID.",
            "Both lines falling below 0 together means the model reads the vertical ID as depth as well (down = behind); "
            "0 means the push left that answer unchanged. Units are nats of log-odds.");
    cJSON *dj = load(dir, IDS_RESULT_DEPTH, 0);
    const int ok = layer_chart(b, dj, "Pushing the subject down", "change of log-odds (nats)", NAN, "above_below_down",
                               "above - below", "front_behind_down", "in front - behind");
    if (!ok) not_run(b, IDS_RESULT_DEPTH);
    cJSON_Delete(dj);
    return ok;
}

static int section_score(sb *b, const char *dir) {
    section(b, "score", "ID strength",
            "Linearity (R\xc2\xb2) \xc3\x97 consistency across object pairs \xc3\x97 causal effect (ID swap rate minus noise), per layer.",
            "The score is 1 only when the IDs are linear, the same for every pair of objects and swap beliefs where "
            "noise does not; it is 0 wherever one factor is 0, most often the causal one (IDs no better than noise).");
    cJSON *sj = load(dir, IDS_RESULT_SCORE, 0);
    const int ok = layer_chart(b, sj, "ID strength by layer", "score (0..1)", 1, "score", "score", NULL, NULL);
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
        prov_line(b, tj);
        for (int i = 0; i < L; i++) var[i] = num(cJSON_GetArrayItem(tl, i), "pc1_var"), rho[i] = num(cJSON_GetArrayItem(tl, i), "spearman");
        const cJSON *be = best >= 0 && best < L ? cJSON_GetArrayItem(tl, best) : NULL, *pc = cJSON_GetObjectItem(be, "pc1");
        const int F = cJSON_GetArraySize(pc);
        double *c = F > 0 ? dvec(b, F) : NULL;
        if (c) {
            for (int f = 0; f < F; f++) {
                const cJSON *e = cJSON_GetArrayItem(pc, f);
                c[f] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
            }
            const ids__plot_series s1[1] = {{"PC1 coordinate", c, NULL, NULL, 0, IDS_PLOT_SOLID}};
            char t[96];
            snprintf(t, sizeof t, "Temporal IDs on PC1, layer %d", best);
            const ids__plot_axes a1 = {t, "frame the object appears in", "PC1 (residual-stream units)", 1, F, NAN, NAN, NULL, NULL, 0};
            chart(b, &a1, s1, 1);
        }
        free(c);
        const ids__plot_series s2[2] = {{"PC1 share of the variance", var, NULL, NULL, 0, IDS_PLOT_SOLID},
                                        {"Spearman of PC1 with the frame", rho, NULL, NULL, 1, IDS_PLOT_DASHED}};
        const ids__plot_axes a2 = {"Time line by layer", "layer (0 = embeddings)", "share / correlation", 0, L, 0, 1, NULL, NULL, 0};
        chart(b, &a2, s2, 2);
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
    const int ok = !b->t.oom;
    if (ok) {
        prov_line(b, tsw);
        patch_curves(tsw, L, ys);
        const ids__plot_series s[3] = {{"image rows", ys[0], NULL, NULL, 0, 0}, {"text rows", ys[1], NULL, NULL, 1, 0},
                                       {"object words", ys[2], NULL, NULL, 2, 0}};
        const ids__plot_axes ax = {"Time reversal: recovered fraction", "layer patched (0 = embeddings)",
                                   "recovered fraction of the effect", 0, L, 0, 1, NULL, NULL, 0};
        chart(b, &ax, s, 3);
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
    ids__plot_series s[6];
    prov_line(b, tst);
    for (int k = 0; k < n; k++) { /* up to 6 layers spread over the band */
        const int li = nl <= 6 ? k : k * (nl - 1) / 5;
        const cJSON *e = cJSON_GetArrayItem(tsl, li), *d = cJSON_GetObjectItem(e, "d_after");
        if (!(ys[k] = dvec(b, F))) break;
        for (int f = 0; f < F && f < cJSON_GetArraySize(d); f++) ys[k][f] = cJSON_GetArrayItem(d, f)->valuedouble;
        snprintf(names[k], sizeof names[k], "layer %d", inum(e, "layer", 0));
        s[k] = (ids__plot_series){names[k], ys[k], NULL, NULL, k, k % 4};
    }
    if (!b->t.oom) {
        const int nf = inum(tst, "null_frame", -1);
        const ids__plot_axes ax = {"Steering: change of log P(after)", "target frame f", "change of log P(after) (nats)", 1, F,
                                   0, NAN, NULL, nf >= 1 ? "null: adds nothing" : NULL, nf};
        chart(b, &ax, s, n);
        sbf(b, "<p>Monotonic layers: %.3f of the band. A layer counts as monotonic when the change of log P(after) "
               "rises with the target frame f (Spearman correlation at least %.1f); 0 means no steered layer orders "
               "the answer by time, 1 that every one does.</p>\n",
            num(tst, "monotonic"), IDS_TEMPORAL_MONOTONIC_RHO);
    }
    for (int k = 0; k < n; k++) free(ys[k]);
    return !b->t.oom;
}

static int section_temporal(sb *b, const char *dir) {
    section(b, "temporal", "Temporal IDs",
            "Videos in which two objects appear at different frames. First, each frame's temporal ID on the first "
            "principal axis at the layer where that axis explains most (frames in order = a time line), and per layer "
            "PC1's share of the variance and the Spearman correlation of the coordinate with the frame. Then "
            "time-reversal patching per position set, and the change of log P(after) when the subject word is steered "
            "with T[f] - T[T-f] (frame T/2 adds nothing: the null).",
            "A Spearman of 1 means PC1 orders the frames exactly in time, 0 that it does not order them; a recovered "
            "fraction of 0 means patching carries none of the reversal. Steering changes of 0 mean the answer did not "
            "move, as expected at the null frame.");
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

/* A bar chart of o[keys[i]] with o[keys[i] + "_ci"] as whiskers for several objects (objs[i], NULL:
 * no bar). */
static void bars_of(sb *b, const char *title, const char *xlabel, const char *ylabel, int n, const char *const *labels,
                    const cJSON *const *objs, const char *const *keys) {
    double v[8], lo[8], hi[8];
    for (int i = 0; i < n && i < 8; i++) {
        char k[96];
        snprintf(k, sizeof k, "%s_ci", keys[i]);
        v[i] = num(objs[i], keys[i]);
        ci_of(objs[i], k, &lo[i], &hi[i]);
    }
    const ids__plot_bars bars = {title, xlabel, ylabel, n < 8 ? n : 8, labels, v, lo, hi};
    const ids__plot_fig f = {.kind = IDS_FIG_BARS, .bars = &bars};
    figure(b, &f);
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
            "sweep: the fraction of monotonic layers per factor.",
            "A bar whose error bar crosses zero is not told apart from no effect; a real push should stand clear of "
            "both controls, which are expected near zero.");
    cJSON *bel = load(dir, IDS_RESULT_STEER_BELIEF, 0), *st = load(dir, IDS_RESULT_STATS, 0), *dep = load(dir, IDS_RESULT_DEPTH, 0);
    int had = 0;
    if (bel && cJSON_GetObjectItem(bel, "best3_id_ci")) {
        const cJSON *acc = cJSON_GetObjectItem(bel, "accuracy");
        const cJSON *objs[5] = {bel, bel, acc, acc, acc};
        static const char *const keys[5] = {"best3_id", "best3_noise", "baseline", "id", "noise"};
        static const char *const labels[5] = {"swap: ID", "swap: noise", "acc: none", "acc: ID", "acc: noise"};
        bars_of(b, "Belief steering (best 3 layers)", "swap rate or accuracy, by push", "fraction of items", acc ? 5 : 2, labels, objs, keys);
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
                    "push of the same norm (ctl = control)", "(down - up) / 2 (nats)", 3, labels, objs, keys);
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
            bars_of(b, title, "push (ctl = control)", "mean |change of log-odds| (nats)", 3, labels, objs, keys);
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
        bars_of(b, "Temporal steering: monotonic layers by factor", "steering factor", "fraction of layers monotonic", 4, tl, tjc, tk);
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
            "and the change of log P(true) - log P(other).",
            "Deviation zero means the word carries exactly the ID of its box centre; a larger deviation for wrong "
            "answers links the ID to accuracy. A masking change near zero means the blurred box did not matter.");
    cJSON *dev = load_sub(dir, "deviation/deviation.json"), *mask = load_sub(dir, "mask/mask.json");
    if (dev) {
        static const char *const labels[2] = {"right", "wrong"}, *const keys[2] = {"deviation_right", "deviation_wrong"};
        const cJSON *objs[2] = {dev, dev};
        bars_of(b, "Deviation from the ID at the box centre", "answer", "distance in the ID plane", 2, labels, objs, keys);
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
        bars_of(b, "Masking: accuracy", "image", "accuracy", 3, labels, objs, acc);
        static const char *const dk[2] = {"d_true_change", "d_true_change"};
        bars_of(b, "Masking: change of log P(true) - log P(other)", "box blurred", "change of log-odds (nats)", 2, labels + 1, objs + 1, dk);
    }
    if (!dev && !mask) sbf(b, "<p class=\"none\">not run (idscope deviation, idscope mask)</p>\n");
    const int had = dev || mask;
    cJSON_Delete(dev);
    cJSON_Delete(mask);
    return had;
}

/* ---- the page's head, the example stimuli, the settings ---- */

/* The first result found that names a text model (its provenance), or NULL; the caller deletes it. */
static cJSON *first_with_model(const char *dir) {
    static const ids_result_kind kinds[] = {IDS_RESULT_IDS, IDS_RESULT_STEER_BELIEF, IDS_RESULT_SWAP, IDS_RESULT_DEPTH,
                                            IDS_RESULT_TEMPORAL, IDS_RESULT_SUMMARY};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        cJSON *j = load(dir, kinds[k], 0);
        const cJSON *models = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "provenance"), "models");
        if (str(cJSON_GetObjectItem(models, "text"), "path")) return j;
        cJSON_Delete(j);
    }
    return NULL;
}

static void head_row(sb *b, const char *k, const char *v) {
    sbf(b, "<tr><th>%s</th><td>", k);
    esc(b, v ? v : "(not recorded)");
    sbf(b, "</td></tr>\n");
}

/* Title, what the results were made with, when, and the contents. Returns the text model's path
 * (malloc'd, NULL when no result names one). */
static char *report_head(sb *b, const char *dir) {
    cJSON *j = first_with_model(dir);
    const cJSON *p = cJSON_GetObjectItem(j, "provenance"), *models = cJSON_GetObjectItem(p, "models");
    const char *model = str(cJSON_GetObjectItem(models, "text"), "path");
    char *own = model ? ids__strdup(model) : NULL;
    if (model && !own) b->t.oom = true;
    char now[32] = "?";
    const time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", &tm);
    sbf(b, "<h1>idscope report</h1>\n<table class=\"head\">\n");
    head_row(b, "results folder", dir);
    head_row(b, "model (text)", model);
    head_row(b, "model (vision tower)", str(cJSON_GetObjectItem(models, "mmproj"), "path"));
    head_row(b, "model fingerprint", str(cJSON_GetObjectItem(models, "text"), "fingerprint"));
    char ver[128];
    snprintf(ver, sizeof ver, "%s%s%s", str(p, "idscope") ? str(p, "idscope") : "?", str(p, "build") ? ", " : "",
             str(p, "build") ? str(p, "build") : "");
    head_row(b, "results made by idscope", p ? ver : NULL);
    head_row(b, "results started", str(p, "started"));
    head_row(b, "report written", now);
    head_row(b, "report written by idscope", IDS_VERSION_STRING);
    sbf(b, "</table>\n<p class=\"how\">Each section names the command, model, build and date of the result it "
           "draws (its provenance); every figure is also a standalone SVG file, and a PNG at twice its size, in figures/.</p>\n");
    if (model && ids_positive_control(model)) { /* a model made by idscope's trainer, such as the bundled one */
        sbf(b, "<p><strong>");
        esc(b, IDS_POSITIVE_CONTROL_NOTE);
        sbf(b, "</strong> Evidence about pretrained VLMs comes from running the same experiments on them.</p>\n");
    }
    sbf(b, "<p class=\"toc\">Sections: <a href=\"#stimuli\">stimuli</a> &#183; <a href=\"#ids\">spatial IDs</a> &#183; "
           "<a href=\"#swap\">mirror swapping</a> &#183; <a href=\"#steer\">belief steering</a> &#183; <a href=\"#grid\">"
           "arbitrary steering</a> &#183; <a href=\"#depth\">depth</a> &#183; <a href=\"#score\">ID strength</a> &#183; "
           "<a href=\"#temporal\">temporal IDs</a> &#183; <a href=\"#intervals\">intervals and controls</a> &#183; "
           "<a href=\"#fig8\">deviation and masking</a> &#183; <a href=\"#meta\">settings</a></p>\n");
    cJSON_Delete(j);
    return own;
}

/* bytes as base64 into the page. */
static void base64(sb *b, const unsigned char *p, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[5] = {0};
    for (size_t i = 0; i < n; i += 3) {
        const unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = a[v >> 18 & 63], q[1] = a[v >> 12 & 63], q[2] = i + 1 < n ? a[v >> 6 & 63] : '=', q[3] = i + 2 < n ? a[v & 63] : '=';
        sbf(b, "%s", q);
    }
}

/* Thumbnails of the first example stimuli (stimuli/manifest.json), embedded, with their question. */
static void section_stimuli(sb *b, const char *dir) {
    cJSON *m = load(dir, IDS_RESULT_STIMULI, 0);
    const cJSON *recs = cJSON_GetObjectItem(m, "records");
    if (!cJSON_GetArraySize(recs)) {
        cJSON_Delete(m);
        return;
    }
    section(b, "stimuli", "Example stimuli",
            "The first images of the stimulus set the experiments drew from, with the question asked and its answer.",
            "Cells are numbered x from the left and y from the top, starting at 0; the subject of a question is the "
            "first object it names.");
    sbf(b, "<div class=\"thumbs\">\n");
    int shown = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, recs) {
        const char *file = str(r, "file");
        if (!file || shown >= 6 || strchr(file, '/')) continue;
        char *sub = ids__path_join("stimuli", file), *path = sub ? ids__path_join(dir, sub) : NULL;
        char *data = NULL;
        size_t len = 0;
        ids_err e2;
        if (path && !ids__read_file(path, &data, &len, &e2) && len < (1u << 20)) {
            const cJSON *q = cJSON_GetObjectItem(r, "questions"), *q0 = q ? q->child : NULL;
            sbf(b, "<figure class=\"thumb\"><img width=\"128\" height=\"128\" alt=\"");
            esc(b, file);
            sbf(b, "\" src=\"data:image/png;base64,");
            base64(b, (const unsigned char *)data, len);
            sbf(b, "\"/><figcaption>");
            esc(b, str(q0, "question") ? str(q0, "question") : file);
            if (str(q0, "answer")) sbf(b, " <b>"), esc(b, str(q0, "answer")), sbf(b, "</b>");
            sbf(b, "</figcaption></figure>\n");
            shown++;
        }
        if (!sub || (sub && !path)) b->t.oom = true;
        free(data);
        free(path);
        free(sub);
    }
    sbf(b, "</div>\n");
    prov_line(b, m);
    cJSON_Delete(m);
}

/* A value of the settings as text: numbers, strings, true/false, lists joined by commas. */
static void setting_value(sb *b, const cJSON *v) {
    if (cJSON_IsString(v)) esc(b, v->valuestring);
    else if (cJSON_IsNumber(v)) sbf(b, "%g", v->valuedouble);
    else if (cJSON_IsBool(v)) sbf(b, "%s", cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsArray(v)) {
        const cJSON *e;
        int k = 0;
        cJSON_ArrayForEach(e, v) {
            if (k++) sbf(b, ", ");
            if (k > 24) {
                sbf(b, "... (%d in all)", cJSON_GetArraySize(v));
                break;
            }
            setting_value(b, e);
        }
    } else if (cJSON_IsNull(v)) sbf(b, "(none)");
    else sbf(b, "(%d entries)", cJSON_GetArraySize(v));
}

/* The extraction's settings and its provenance as a table. */
static void section_meta(sb *b, const char *dir) {
    cJSON *ij = load(dir, IDS_RESULT_IDS, 0);
    if (!ij) return;
    section(b, "meta", "Extraction settings",
            "The settings of the ID extraction every steering experiment reads (ids/ids.json), then how it was run.",
            "Layer l is the residual stream after l blocks (0 = the embeddings); a grid cell is (x from the left, y "
            "from the top).");
    sbf(b, "<table class=\"settings\">\n");
    const cJSON *e, *p = cJSON_GetObjectItem(ij, "provenance");
    cJSON_ArrayForEach(e, ij) {
        if (!strcmp(e->string, "provenance") || cJSON_IsObject(e)) continue;
        sbf(b, "<tr><th>");
        esc(b, e->string);
        sbf(b, "</th><td>");
        setting_value(b, e);
        sbf(b, "</td></tr>\n");
    }
    static const char *const pk[] = {"command", "idscope", "build", "started", "seconds", "seed", "threads", "precision"};
    for (size_t k = 0; k < sizeof pk / sizeof *pk; k++)
        if (cJSON_GetObjectItem(p, pk[k])) {
            sbf(b, "<tr><th>run: %s</th><td>", pk[k]);
            setting_value(b, cJSON_GetObjectItem(p, pk[k]));
            sbf(b, "</td></tr>\n");
        }
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(p, "options")) {
        sbf(b, "<tr><th>option: ");
        esc(b, e->string);
        sbf(b, "</th><td>");
        setting_value(b, e);
        sbf(b, "</td></tr>\n");
    }
    sbf(b, "</table>\n");
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

/* The page, once the sections are known to have data. */
static const char k_style[] =
    "<style>body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1000px;margin:24px auto;color:#111;}"
    "h2{border-bottom:1px solid #ddd;margin-top:2em;} .none{color:#777;} .how{color:#333;background:#f6f6f6;padding:6px 10px;}"
    " .prov{color:#555;font-size:90%;} figure{margin:12px 0;} figure svg{max-width:100%;height:auto;} figcaption{font-size:80%;color:#666;}"
    " table{border-collapse:collapse;} th,td{text-align:left;padding:2px 10px;border-bottom:1px solid #eee;vertical-align:top;}"
    " .thumbs{display:flex;flex-wrap:wrap;gap:12px;} .thumb{width:150px;margin:0;} .thumb img{border:1px solid #ccc;"
    "image-rendering:pixelated;}</style>";

static void report_page(sb *b, const char *dir, const char *prov_text, int *n_sections) {
    sbf(b, "<!DOCTYPE html>\n");
    if (!strstr(prov_text, "--")) sbf(b, "<!-- " IDS_REPORT_PROV_MARK " %s -->\n", prov_text); /* a comment may not hold "--" */
    sbf(b, "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
           "<title>idscope report</title>%s</head><body>\n", k_style);
    free(report_head(b, dir));
    section_stimuli(b, dir);
    int (*const sections[])(sb *, const char *) = {section_ids, section_swap, section_steer, section_grid,
                                                  section_depth, section_score, section_temporal, section_intervals,
                                                  section_fig8};
    for (size_t k = 0; k < sizeof sections / sizeof *sections; k++) *n_sections += sections[k](b, dir);
    section_meta(b, dir);
    sbf(b, "</body></html>\n");
}

/* Figure files of an earlier page that this one did not write (NAME-K.svg and NAME-K.png in
 * figures/) are removed, so that figures/ holds the page's figures only. */
static void remove_stale_figures(const sb *b) {
    char *fd = ids__path_join(b->dir, "figures");
    DIR *d = fd ? opendir(fd) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *dash = strrchr(e->d_name, '-');
        const size_t n = strlen(e->d_name);
        if (!dash || n < 6 || (strcmp(e->d_name + n - 4, ".svg") && strcmp(e->d_name + n - 4, ".png")) ||
            strspn(dash + 1, "0123456789") != n - 4 - (size_t)(dash + 1 - e->d_name))
            continue;
        bool ours = false;
        for (int i = 0; i < b->n_written && !ours; i++) ours = !strcmp(b->written[i], e->d_name);
        char *path = ours ? NULL : ids__path_join(fd, e->d_name);
        if (path) unlink(path);
        free(path);
    }
    if (d) closedir(d);
    free(fd);
}

/* Whether dir holds any result file the report reads (readable or not). */
static bool results_present(const char *dir) {
    static const ids_relation rels[4] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW, IDS_REL_NEAR_FAR, IDS_REL_BETWEEN};
    bool any = false;
    for (int k = IDS_RESULT_IDS; !any && k <= IDS_RESULT_SCORE; k++)
        for (int r = 0; !any && r < 4; r++) {
            char *path = ids_result_path(dir, (ids_result_kind)k, rels[r], true);
            any = !path || access(path, F_OK) == 0; /* out of memory: let the page say so */
            free(path);
        }
    return any;
}

ids_status ids_report(const char *dir, int *n_sections, ids_err *err) {
    *n_sections = 0;
    struct stat sd;
    if (stat(dir, &sd) != 0) return ids__err(err, IDS_ERR_IO, "%s: cannot open the results folder: %s", dir, strerror(errno));
    if (!S_ISDIR(sd.st_mode)) return ids__err(err, IDS_ERR_IO, "%s: not a folder (a results folder is asked for)", dir);
    if (!results_present(dir))
        return ids__err(err, IDS_ERR_NOT_FOUND,
                        "%s holds no idscope results (looked for ids/stats.json, swap/swap.json, steer/steer-belief.json, "
                        "steer/steer-grid-*.json, depth/depth.json, score.json, temporal/temporal*.json); run 'idscope "
                        "demo --out %s' or an experiment with --out there first",
                        dir, dir);
    ids_prov *prov = NULL;
    ids_status st = ids__report_prov(dir, &prov, err);
    if (st) return st;
    ids_prov_finish(prov);
    cJSON *pj = ids__prov_json(prov, err);
    char *pt = pj ? cJSON_PrintUnformatted(pj) : NULL;
    cJSON_Delete(pj);
    ids_prov_free(prov);
    if (!pt) return ids__err(err, IDS_ERR_NOMEM, "report: out of memory");
    sb b = {.dir = dir, .err = err};
    report_page(&b, dir, pt, n_sections);
    free(pt);
    if (b.t.oom) st = ids__err(err, IDS_ERR_NOMEM, "report: out of memory");
    else if (b.st) st = b.st;
    else st = ids__write_text(dir, "report.html", b.t.p, b.t.n, err);
    if (!st) remove_stale_figures(&b);
    free(b.t.p);
    return st;
}
