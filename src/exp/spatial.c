/* Spatial ID extraction (the paper's procedure, see docs/EXPERIMENTS.md). */
#define _POSIX_C_SOURCE 200809L
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

void ids_ids_compute(const float *h, int n_pairs, int G, int S, int L, int E, int axis_size, float *per_pair,
                     float *universal, float *x_axis, float *y_axis) {
    const int C = G * G, K = C * S;
    const size_t LE = (size_t)L * E;
    double *cen = calloc((size_t)K * LE, sizeof(double)), *uni = calloc((size_t)K * LE, sizeof(double));
    double *mean = calloc(LE, sizeof(double));
    IDS_ASSERT(cen && uni && mean);
    for (int p = 0; p < n_pairs; p++) {
        memset(cen, 0, sizeof(double) * (size_t)K * LE);
        for (int a = 0; a < C; a++) {
            const float *ha = h + ((size_t)p * C + a) * K * LE;
            memset(mean, 0, sizeof(double) * LE);
            int n = 0;
            for (int k = 0; k < K; k++) {
                if (k / S == a) continue; /* the subject cannot share the anchor's cell */
                for (size_t i = 0; i < LE; i++) mean[i] += ha[(size_t)k * LE + i];
                n++;
            }
            for (size_t i = 0; i < LE; i++) mean[i] /= n;
            for (int k = 0; k < K; k++) {
                if (k / S == a) continue;
                for (size_t i = 0; i < LE; i++) cen[(size_t)k * LE + i] += ha[(size_t)k * LE + i] - mean[i];
            }
        }
        /* each subject cell was seen under C - 1 anchor cells */
        for (size_t i = 0; i < (size_t)K * LE; i++) {
            double v = cen[i] / (C - 1);
            uni[i] += v;
            if (per_pair) per_pair[(size_t)p * K * LE + i] = (float)v;
        }
    }
    for (size_t i = 0; i < (size_t)K * LE; i++) universal[i] = (float)(uni[i] / n_pairs);
    /* axes at one size: y2 >= y1 (zero terms included, as the paper's code) */
    for (int ax = 0; ax < 2; ax++) {
        float *out = ax == 0 ? x_axis : y_axis;
        memset(mean, 0, sizeof(double) * LE);
        int n = 0;
        for (int o = 0; o < G; o++)
            for (int c1 = 0; c1 < G - 1; c1++)
                for (int c2 = c1; c2 < G; c2++) {
                    int k1 = ax == 0 ? (o * G + c1) : (c1 * G + o), k2 = ax == 0 ? (o * G + c2) : (c2 * G + o);
                    const float *u1 = universal + ((size_t)k1 * S + axis_size) * LE, *u2 = universal + ((size_t)k2 * S + axis_size) * LE;
                    for (size_t i = 0; i < LE; i++) mean[i] += (double)u2[i] - u1[i];
                    n++;
                }
        for (size_t i = 0; i < LE; i++) out[i] = (float)(mean[i] / n);
    }
    free(cen);
    free(uni);
    free(mean);
}

static ids_status mkdir1(const char *d, ids_err *err) {
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", d, strerror(errno));
    return IDS_OK;
}

ids_status ids_ids_extract(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o, const char *out_dir,
                           ids_progress_fn progress, void *user, ids_err *err) {
    const ids_model *m = ids_vlm_model(v);
    const ids_hparams *hp = ids_model_hparams(m);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    const int G = o->grid > 0 ? o->grid : 4, L = hp->n_layer + 1, E = hp->n_embd;
    static const float def_sizes[4] = {1.0f, 0.78f, 0.55f, 0.33f};
    const float *sizes = o->n_sizes ? o->sizes : def_sizes;
    const int S = o->n_sizes ? o->n_sizes : 4, C = G * G, K = C * S;
    if (o->n_objects < 2) return ids__err(err, IDS_ERR_ARG, "ids extract: at least 2 objects are needed, %d given", o->n_objects);
    const int P = o->n_objects * (o->n_objects - 1);
    ids_stim_opts so;
    ids_stim_default_opts(&so);
    so.image_size = o->image_size > 0 ? o->image_size : (vp->dynamic ? 224 : vp->image_size);
    so.grid = G;
    so.sizes = sizes;
    so.n_sizes = S;
    int n_items;
    ids_status st = ids_stim_count(IDS_SET_GRID, &so, cat, &n_items, err); /* validates grid, sizes, size */
    if (st) return st;
    const size_t LE = (size_t)L * E, per_pair_n = (size_t)C * K * LE;
    float *h = ids__malloc(sizeof(float) * (size_t)P * per_pair_n), *rowbuf = ids__malloc(sizeof(float) * LE);
    float *uni = ids__malloc(sizeof(float) * (size_t)K * LE), *xa = ids__malloc(sizeof(float) * LE),
          *ya = ids__malloc(sizeof(float) * LE), *pp = o->per_pair ? ids__malloc(sizeof(float) * (size_t)P * K * LE) : NULL;
    ids_hook *hooks = ids__calloc((size_t)L, sizeof *hooks);
    ids_ctx *ctx = NULL;
    if (!h || !rowbuf || !uni || !xa || !ya || !hooks || (o->per_pair && !pp)) {
        st = ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory for %d pairs x %d images", P, C * (C - 1) * S);
        goto done;
    }
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 4096;
    cp.max_rows = 4096;
    cp.keep_clean = false;
    cp.n_threads = o->n_threads;
    if ((st = ids_ctx_new(&ctx, m, cp, err))) goto done;
    const long total = (long)P * C * (C - 1) * S;
    long done_n = 0;
    for (int p = 0, a = 0; a < o->n_objects && !st; a++)
        for (int b = 0; b < o->n_objects && !st; b++) {
            if (a == b) continue;
            /* subject B first (its word is read), anchor A second */
            int objs[2] = {o->objects[b], o->objects[a]};
            so.objects = objs;
            so.n_objects = 2;
            char *q = ids_question(IDS_REL_LEFT_RIGHT, ids_catalog_name(cat, objs[0]), ids_catalog_name(cat, objs[1]), NULL);
            char *prompt = ids_vlm_prompt(v, q, 1);
            free(q);
            ids_sel word = {.kind = IDS_SEL_WORD, .word = ids_catalog_word(cat, objs[0]), .after_image = true};
            for (int l = 0; l < L; l++)
                hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = word, .action = IDS_ACT_CAPTURE,
                                      .out = rowbuf + (size_t)l * E, .len = (size_t)E};
            for (int idx = 0; idx < n_items && !st; idx++) {
                ids_stim s;
                if ((st = ids_stim_make(IDS_SET_GRID, &so, cat, idx, &s, err))) break;
                const int cb = s.obj[0].cell_y * G + s.obj[0].cell_x, ca = s.obj[1].cell_y * G + s.obj[1].cell_x;
                const int size_i = idx % S;
                ids_seq *seq = NULL;
                st = ids_vlm_build_seq(v, prompt, &s.frames[0], 1, o->n_threads, NULL, &seq, err);
                if (!st) st = ids_ctx_prefill(ctx, seq, hooks, L, NULL, NULL, err);
                if (!st) { /* h[p][ca][cb*S+size][layer][E] */
                    float *dst = h + (size_t)p * per_pair_n + ((size_t)ca * K + (size_t)cb * S + size_i) * LE;
                    memcpy(dst, rowbuf, sizeof(float) * LE);
                }
                ids_seq_free(seq);
                ids_stim_free(&s);
                done_n++;
                if (progress && (done_n % 50 == 0 || done_n == total)) progress("ids extract", done_n, total, user);
            }
            free(prompt);
            p++;
        }
    if (st) goto done;
    ids_ids_compute(h, P, G, S, L, E, 0, pp, uni, xa, ya);
    if ((st = mkdir1(out_dir, err))) goto done;
    ids_st_writer *w = ids_st_writer_new();
    int64_t su[5] = {G, G, S, L, E};
    /* stored as [layer][y][x][size][E]: transpose from [key][layer][E] */
    float *uni_l = ids__malloc(sizeof(float) * (size_t)K * LE);
    float *pp_l = pp ? ids__malloc(sizeof(float) * (size_t)P * K * LE) : NULL;
    if (!w || !uni_l || (pp && !pp_l)) {
        ids_st_writer_free(w);
        free(uni_l);
        free(pp_l);
        st = ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory");
        goto done;
    }
    for (int k = 0; k < K; k++)
        for (int l = 0; l < L; l++) {
            memcpy(uni_l + ((size_t)l * K + k) * E, uni + ((size_t)k * L + l) * E, sizeof(float) * (size_t)E);
            for (int p = 0; pp && p < P; p++)
                memcpy(pp_l + (((size_t)p * L + l) * K + k) * E, pp + (((size_t)p * K + k) * L + l) * E, sizeof(float) * (size_t)E);
        }
    int64_t shape_u[5] = {L, su[0], su[1], su[2], E}, shape_ax[2] = {L, E}, shape_pp[6] = {P, L, G, G, S, E};
    st = ids_st_writer_add(w, "universal", "F32", 5, shape_u, uni_l, err);
    if (!st) st = ids_st_writer_add(w, "x_axis", "F32", 2, shape_ax, xa, err);
    if (!st) st = ids_st_writer_add(w, "y_axis", "F32", 2, shape_ax, ya, err);
    if (!st && pp_l) st = ids_st_writer_add(w, "per_pair", "F32", 6, shape_pp, pp_l, err);
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "format", "idscope.ids.v1");
    cJSON_AddStringToObject(meta, "model", ids_gguf_path(ids_model_gguf(m)));
    cJSON_AddNumberToObject(meta, "layers", L);
    cJSON_AddStringToObject(meta, "layer_convention", "layer l = residual stream after l blocks (0 = embeddings)");
    cJSON_AddNumberToObject(meta, "grid", G);
    cJSON *sz = cJSON_AddArrayToObject(meta, "sizes");
    for (int i = 0; i < S; i++) cJSON_AddItemToArray(sz, cJSON_CreateNumber(round((double)sizes[i] * 1e4) / 1e4));
    cJSON_AddNumberToObject(meta, "image_size", so.image_size);
    cJSON_AddStringToObject(meta, "layout", "universal[layer][y][x][size][embd]; x = column from the left, y = row from the top");
    cJSON_AddStringToObject(meta, "question", "Is the B to the left or right of the A? (B = subject at every cell, A = anchor)");
    cJSON_AddStringToObject(meta, "token", "last piece of tokenize(\" \" + subject word), first occurrence after the image");
    cJSON *objs = cJSON_AddArrayToObject(meta, "objects");
    for (int i = 0; i < o->n_objects; i++) cJSON_AddItemToArray(objs, cJSON_CreateString(ids_catalog_name(cat, o->objects[i])));
    cJSON_AddNumberToObject(meta, "pairs", P);
    cJSON_AddNumberToObject(meta, "images", (double)total);
    char *js = cJSON_Print(meta);
    char path[1200];
    if (!st && js) {
        ids_st_writer_meta(w, "idscope", js, NULL);
        snprintf(path, sizeof path, "%.1100s/ids.safetensors", out_dir);
        st = ids_st_writer_write(w, path, err);
    }
    if (!st && js) {
        snprintf(path, sizeof path, "%.1100s/ids.json", out_dir);
        const void *parts[2] = {js, "\n"};
        size_t sizes2[2] = {strlen(js), 1};
        st = ids__write_atomic(path, parts, sizes2, 2, err);
    }
    free(js);
    cJSON_Delete(meta);
    ids_st_writer_free(w);
    free(uni_l);
    free(pp_l);
done:
    ids_ctx_free(ctx);
    free(hooks);
    free(h);
    free(rowbuf);
    free(uni);
    free(xa);
    free(ya);
    free(pp);
    return st;
}

/* ---- statistics ---- */

/* Top eigenvector of a symmetric n x n matrix by power iteration (deterministic start). */
static void top_eig(const double *A, int n, double *vec, double *val) {
    for (int i = 0; i < n; i++) vec[i] = 1.0 + 0.01 * i;
    double lam = 0;
    for (int it = 0; it < 500; it++) {
        double nv[64] = {0}, norm = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) nv[i] += A[i * n + j] * vec[j];
        for (int i = 0; i < n; i++) norm += nv[i] * nv[i];
        norm = sqrt(norm);
        if (norm == 0) break;
        for (int i = 0; i < n; i++) vec[i] = nv[i] / norm;
        lam = norm;
    }
    *val = lam;
}

void ids_ids_layer_stats(const float *ids, const int *xs, const int *ys, int n, int E, const float *x_axis,
                         const float *y_axis, ids_id_stats *out, float *pca) {
    IDS_ASSERT(n <= 64);
    double mean_x = 0, mean_y = 0;
    for (int k = 0; k < n; k++) mean_x += xs[k], mean_y += ys[k];
    mean_x /= n, mean_y /= n;
    /* centred IDs, total variance */
    double *c = calloc((size_t)n * E, sizeof(double));
    IDS_ASSERT(c);
    double tot = 0;
    for (int e = 0; e < E; e++) {
        double m = 0;
        for (int k = 0; k < n; k++) m += ids[(size_t)k * E + e];
        m /= n;
        for (int k = 0; k < n; k++) {
            c[(size_t)k * E + e] = ids[(size_t)k * E + e] - m;
            tot += c[(size_t)k * E + e] * c[(size_t)k * E + e];
        }
    }
    /* least squares on centred coordinates: [sxx sxy; sxy syy] [a; b] = [sxc; syc] per dimension */
    double sxx = 0, sxy = 0, syy = 0;
    for (int k = 0; k < n; k++) {
        double dx = xs[k] - mean_x, dy = ys[k] - mean_y;
        sxx += dx * dx, sxy += dx * dy, syy += dy * dy;
    }
    const double det = sxx * syy - sxy * sxy;
    double res = 0;
    for (int e = 0; e < E; e++) {
        double sxc = 0, syc = 0;
        for (int k = 0; k < n; k++) {
            sxc += (xs[k] - mean_x) * c[(size_t)k * E + e];
            syc += (ys[k] - mean_y) * c[(size_t)k * E + e];
        }
        double a = det != 0 ? (syy * sxc - sxy * syc) / det : 0, b = det != 0 ? (sxx * syc - sxy * sxc) / det : 0;
        for (int k = 0; k < n; k++) {
            double r = c[(size_t)k * E + e] - a * (xs[k] - mean_x) - b * (ys[k] - mean_y);
            res += r * r;
        }
    }
    out->r2 = tot > 0 ? 1.0 - res / tot : 0.0;
    /* axis plane: u = x/|x|, v = y - (y.u)u normalised */
    double nu = 0, uy = 0, nv = 0;
    for (int e = 0; e < E; e++) nu += (double)x_axis[e] * x_axis[e];
    nu = sqrt(nu);
    for (int e = 0; e < E; e++) uy += (nu > 0 ? x_axis[e] / nu : 0) * y_axis[e];
    double *vv = calloc((size_t)E, sizeof(double));
    IDS_ASSERT(vv);
    for (int e = 0; e < E; e++) {
        vv[e] = y_axis[e] - uy * (nu > 0 ? x_axis[e] / nu : 0);
        nv += vv[e] * vv[e];
    }
    nv = sqrt(nv);
    double inplane = 0;
    for (int k = 0; k < n; k++) {
        double pu = 0, pv = 0;
        for (int e = 0; e < E; e++) {
            pu += c[(size_t)k * E + e] * (nu > 0 ? x_axis[e] / nu : 0);
            pv += c[(size_t)k * E + e] * (nv > 0 ? vv[e] / nv : 0);
        }
        inplane += pu * pu + pv * pv;
    }
    out->plane = tot > 0 ? inplane / tot : 0.0;
    /* PCA through the n x n Gram matrix of the centred IDs */
    double gram[64 * 64] = {0}, v1[64], v2[64], l1, l2;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += c[(size_t)i * E + e] * c[(size_t)j * E + e];
            gram[i * n + j] = s;
        }
    top_eig(gram, n, v1, &l1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) gram[i * n + j] -= l1 * v1[i] * v1[j];
    top_eig(gram, n, v2, &l2);
    out->pca_var = tot > 0 ? (l1 + l2) / tot : 0.0;
    if (pca)
        for (int k = 0; k < n; k++) { /* principal coordinates: sqrt(lambda) * eigenvector */
            pca[2 * k] = (float)(sqrt(l1) * v1[k]);
            pca[2 * k + 1] = (float)(sqrt(l2 > 0 ? l2 : 0) * v2[k]);
        }
    free(vv);
    free(c);
}

ids_status ids_ids_stats(const char *dir, ids_err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%.1100s/ids.safetensors", dir);
    ids_st_file *f;
    ids_status st = ids_st_open(&f, path, err);
    if (st) return st;
    const ids_st_tensor *u = ids_st_find(f, "universal"), *xa = ids_st_find(f, "x_axis"), *ya = ids_st_find(f, "y_axis"),
                        *pp = ids_st_find(f, "per_pair");
    if (!u || !xa || !ya || u->ndim != 5 || strcmp(u->dtype, "F32") || u->shape[1] * u->shape[2] > 64) {
        ids_st_close(f);
        return ids__err(err, IDS_ERR_FORMAT, "%s: expected 'universal' [layers, y, x, size, embd] (at most 64 cells), "
                        "'x_axis' and 'y_axis' as written by ids extract", path);
    }
    const int L = (int)u->shape[0], G = (int)u->shape[1], S = (int)u->shape[3], E = (int)u->shape[4], C = G * G;
    const int P = pp ? (int)pp->shape[0] : 0;
    float *cells = malloc(sizeof(float) * (size_t)C * E), pca[128];
    int xs[64], ys[64];
    for (int k = 0; k < C; k++) xs[k] = k % G, ys[k] = k / G;
    cJSON *root = cJSON_CreateObject(), *layers = cJSON_AddArrayToObject(root, "layers");
    char *csv = malloc((size_t)L * 160 + 128);
    size_t cl = (size_t)sprintf(csv, "layer,r2,plane,pca_var,pair_cosine\n");
    const float *U = u->data;
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < C; k++) /* size index 0: the largest */
            memcpy(cells + (size_t)k * E, U + (((size_t)l * C + k) * S) * E, sizeof(float) * (size_t)E);
        ids_id_stats s;
        ids_ids_layer_stats(cells, xs, ys, C, E, (const float *)xa->data + (size_t)l * E,
                            (const float *)ya->data + (size_t)l * E, &s, pca);
        double cosm = NAN;
        if (P) { /* mean cosine of every pair's ID with the universal one, over cells */
            double acc = 0;
            int n = 0;
            for (int p = 0; p < P; p++)
                for (int k = 0; k < C; k++) {
                    const float *a = (const float *)pp->data + ((((size_t)p * L + l) * C + k) * S) * E;
                    const float *b = cells + (size_t)k * E;
                    double ab = 0, aa = 0, bb = 0;
                    for (int e = 0; e < E; e++) ab += (double)a[e] * b[e], aa += (double)a[e] * a[e], bb += (double)b[e] * b[e];
                    if (aa > 0 && bb > 0) acc += ab / sqrt(aa * bb), n++;
                }
            cosm = n ? acc / n : NAN;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", l);
        cJSON_AddNumberToObject(o, "r2", s.r2);
        cJSON_AddNumberToObject(o, "plane", s.plane);
        cJSON_AddNumberToObject(o, "pca_var", s.pca_var);
        if (P) cJSON_AddNumberToObject(o, "pair_cosine", cosm);
        cJSON *pc = cJSON_AddArrayToObject(o, "pca");
        for (int k = 0; k < C; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "x", xs[k]);
            cJSON_AddNumberToObject(e, "y", ys[k]);
            cJSON_AddNumberToObject(e, "pc1", pca[2 * k]);
            cJSON_AddNumberToObject(e, "pc2", pca[2 * k + 1]);
            cJSON_AddItemToArray(pc, e);
        }
        cJSON_AddItemToArray(layers, o);
        cl += (size_t)sprintf(csv + cl, "%d,%.6f,%.6f,%.6f,%s%.6f\n", l, s.r2, s.plane, s.pca_var, P ? "" : "", P ? cosm : NAN);
    }
    char *js = cJSON_Print(root);
    snprintf(path, sizeof path, "%.1100s/stats.json", dir);
    const void *p1[2] = {js, "\n"};
    size_t s1[2] = {js ? strlen(js) : 0, 1};
    st = js ? ids__write_atomic(path, p1, s1, 2, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) {
        snprintf(path, sizeof path, "%.1100s/stats.csv", dir);
        const void *p2[1] = {csv};
        size_t s2[1] = {cl};
        st = ids__write_atomic(path, p2, s2, 1, err);
    }
    free(js);
    cJSON_Delete(root);
    free(csv);
    free(cells);
    ids_st_close(f);
    return st;
}

/* ---- ID-strength score ---- */
static cJSON *read_json(const char *path, ids_err *err, ids_status *st) {
    char *txt;
    *st = ids__read_file(path, &txt, NULL, err);
    if (*st) return NULL;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!j) *st = ids__err(err, IDS_ERR_FORMAT, "%s: not valid JSON", path);
    return j;
}

ids_status ids_score(const char *stats_json, const char *steer_json, const char *out_path, int *best_layer,
                     double *best_score, ids_err *err) {
    ids_status st;
    *best_layer = -1;
    *best_score = 0;
    cJSON *sj = read_json(stats_json, err, &st);
    if (!sj) return st;
    cJSON *tj = read_json(steer_json, err, &st);
    if (!tj) {
        cJSON_Delete(sj);
        return st;
    }
    cJSON *sl = cJSON_GetObjectItem(sj, "layers"), *tl = cJSON_GetObjectItem(tj, "layers"), *it;
    cJSON *root = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(root, "layers");
    cJSON_AddStringToObject(root, "definition", "score = r2 * max(0, pair_cosine) * max(0, swap_id - swap_noise)");
    if (!cJSON_IsArray(sl) || !cJSON_IsArray(tl)) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s / %s: expected a \"layers\" list in each (from ids stats and steer belief)",
                      stats_json, steer_json);
        goto done;
    }
    cJSON_ArrayForEach(it, tl) {
        const int layer = cJSON_GetObjectItem(it, "layer") ? cJSON_GetObjectItem(it, "layer")->valueint : -1;
        cJSON *s = NULL, *e;
        cJSON_ArrayForEach(e, sl) if (cJSON_GetObjectItem(e, "layer") && cJSON_GetObjectItem(e, "layer")->valueint == layer) s = e;
        cJSON *r2 = s ? cJSON_GetObjectItem(s, "r2") : NULL, *pc = s ? cJSON_GetObjectItem(s, "pair_cosine") : NULL;
        cJSON *rid = cJSON_GetObjectItem(it, "id"), *rno = cJSON_GetObjectItem(it, "noise");
        if (!cJSON_IsNumber(r2) || !cJSON_IsNumber(pc) || !cJSON_IsNumber(rid) || !cJSON_IsNumber(rno)) {
            st = ids__err(err, IDS_ERR_FORMAT, "layer %d: stats need r2 and pair_cosine (extract with --per-pair) and the "
                          "steering file id and noise rates", layer);
            goto done;
        }
        const double lin = r2->valuedouble < 0 ? 0 : r2->valuedouble, cons = pc->valuedouble < 0 ? 0 : pc->valuedouble;
        const double caus = rid->valuedouble - rno->valuedouble < 0 ? 0 : rid->valuedouble - rno->valuedouble;
        const double score = lin * cons * caus;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", layer);
        cJSON_AddNumberToObject(o, "linearity", lin);
        cJSON_AddNumberToObject(o, "consistency", cons);
        cJSON_AddNumberToObject(o, "causal", caus);
        cJSON_AddNumberToObject(o, "score", score);
        cJSON_AddItemToArray(rows, o);
        if (score > *best_score || *best_layer < 0) *best_score = score, *best_layer = layer;
    }
    cJSON_AddNumberToObject(root, "best_layer", *best_layer);
    cJSON_AddNumberToObject(root, "best_score", *best_score);
    char *txt = cJSON_Print(root);
    if (!txt) {
        st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        goto done;
    }
    const void *parts[2] = {txt, "\n"};
    size_t sizes[2] = {strlen(txt), 1};
    st = ids__write_atomic(out_path, parts, sizes, 2, err);
    free(txt);
done:
    cJSON_Delete(root);
    cJSON_Delete(sj);
    cJSON_Delete(tj);
    return st;
}
