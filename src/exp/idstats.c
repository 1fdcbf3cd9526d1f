/* Uncertainty of the IDs' linearity: R^2 of the cell IDs from their Gram matrix, its permutation null
 * (cell labels shuffled) and a bootstrap interval over object pairs (per-pair IDs resampled). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

/* The hat matrix H [C][C] of the centred design (x, y): H = Xc (Xc' Xc)^-1 Xc'. Its trace is 2 (1 when
 * the coordinates are collinear, 0 when both are constant). */
static void hat_matrix(const int *xs, const int *ys, int C, double *H) {
    double mx = 0, my = 0;
    for (int i = 0; i < C; i++) mx += xs[i], my += ys[i];
    mx /= C, my /= C;
    double sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < C; i++) {
        const double a = xs[i] - mx, b = ys[i] - my;
        sxx += a * a, syy += b * b, sxy += a * b;
    }
    const double det = sxx * syy - sxy * sxy;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            const double ai = xs[i] - mx, bi = ys[i] - my, aj = xs[j] - mx, bj = ys[j] - my;
            double h = 0;
            if (det > 1e-12 * (sxx * syy + 1e-300)) /* [ai bi] inv([[sxx sxy] [sxy syy]]) [aj bj]' */
                h = (ai * (syy * aj - sxy * bj) + bi * (-sxy * aj + sxx * bj)) / det;
            else if (sxx + syy > 0) /* one direction: project on it */
                h = (ai * aj + bi * bj) / (sxx + syy);
            H[i * C + j] = h;
        }
}

/* R^2 = tr(H_p G) / tr(J G J) for the Gram matrix G [C][C] of the cell vectors, with cell i given the
 * coordinates of cell perm[i] (perm NULL: its own). NAN when the vectors do not vary. */
static double r2_gram(const double *H, const double *G, int C, const int *perm) {
    double tr = 0, all = 0, fit = 0;
    for (int i = 0; i < C; i++) {
        tr += G[i * C + i];
        const int pi = perm ? perm[i] : i;
        for (int j = 0; j < C; j++) {
            all += G[i * C + j];
            fit += H[pi * C + (perm ? perm[j] : j)] * G[i * C + j];
        }
    }
    const double tot = tr - all / C;
    return tot > 1e-300 ? fit / tot : NAN;
}

static void gram(const float *v, int C, int E, double *G) {
    for (int i = 0; i < C; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += (double)v[(size_t)i * E + e] * v[(size_t)j * E + e];
            G[i * C + j] = G[j * C + i] = s;
        }
}

ids_status ids_spatial_r2_null(const float *ids, const int *xs, const int *ys, int n_cells, int n_embd, int n_perm,
                               uint64_t seed, ids_r2_null *out, ids_err *err) {
    *out = (ids_r2_null){.r2 = NAN, .mean = NAN, .q95 = NAN, .p = NAN};
    const int C = n_cells;
    if (C < 3 || C > 4096 || n_embd < 1)
        return ids__err(err, IDS_ERR_ARG, "R^2 null: %d cells of width %d (3..4096 cells)", C, n_embd);
    if (n_perm <= 0) n_perm = IDS_R2_NULL_PERMS;
    double *H = ids__malloc(sizeof(double) * (size_t)C * C * 2), *null = ids__malloc(sizeof(double) * (size_t)n_perm);
    int *perm = ids__malloc(sizeof(int) * (size_t)C);
    if (!H || !null || !perm) {
        free(H), free(null), free(perm);
        return ids__err(err, IDS_ERR_NOMEM, "R^2 null: out of memory for %d cells", C);
    }
    double *G = H + (size_t)C * C;
    hat_matrix(xs, ys, C, H);
    gram(ids, C, n_embd, G);
    out->r2 = r2_gram(H, G, C, NULL);
    out->n_perm = n_perm;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 0x52;
    int ge = 0, m = 0;
    double sum = 0;
    for (int b = 0; b < n_perm && isfinite(out->r2); b++) {
        for (int i = 0; i < C; i++) perm[i] = i;
        for (int i = C - 1; i > 0; i--) { /* Fisher-Yates */
            int k = (int)(ids__rng_splitmix_unit(&rng) * (i + 1));
            if (k > i) k = i;
            const int t = perm[i];
            perm[i] = perm[k], perm[k] = t;
        }
        const double r = r2_gram(H, G, C, perm);
        null[m++] = r, sum += r, ge += r >= out->r2 - 1e-12;
    }
    if (m) {
        /* the 95th percentile (insertion sort: m is small) */
        for (int i = 1; i < m; i++)
            for (int j = i; j > 0 && null[j - 1] > null[j]; j--) {
                const double t = null[j];
                null[j] = null[j - 1], null[j - 1] = t;
            }
        const double h = (m - 1) * 0.95;
        const int lo = (int)h;
        out->q95 = lo + 1 < m ? null[lo] + (h - lo) * (null[lo + 1] - null[lo]) : null[m - 1];
        out->mean = sum / m;
        out->p = (1.0 + ge) / (1.0 + m);
    }
    free(H), free(null), free(perm);
    return IDS_OK;
}

/* Bootstrap over object pairs: the universal ID is the mean of the per-pair IDs, so a resample of
 * pairs (with replacement, counts w) has the Gram matrix sum_kk' w_k w_k' X_kk' / P^2 with X_kk' the
 * cross-Gram of pairs k and k'. */
typedef struct {
    const double *H, *X; /* X [P][P][C][C] */
    double *G;
    int P, C;
} pair_boot;

static double pair_r2(void *user, const int *idx, int n) {
    pair_boot *b = user;
    const size_t CC = (size_t)b->C * b->C;
    for (size_t q = 0; q < CC; q++) b->G[q] = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            const double *x = b->X + ((size_t)idx[i] * b->P + idx[j]) * CC;
            for (size_t q = 0; q < CC; q++) b->G[q] += x[q];
        }
    return r2_gram(b->H, b->G, b->C, NULL);
}

ids_status ids__r2_pair_ci(const float *pp, int P, size_t pair_stride, size_t cell_stride, const int *xs, const int *ys, int C, int E,
                           uint64_t seed, double ci[2], ids_err *err) {
    ci[0] = ci[1] = NAN;
    if (P < 2) return IDS_OK;
    const size_t CC = (size_t)C * C;
    pair_boot b = {.P = P, .C = C};
    double *H = ids__malloc(sizeof(double) * CC * (2 + (size_t)P * P));
    if (!H) return ids__err(err, IDS_ERR_NOMEM, "R^2 interval: out of memory for %d pairs of %d cells", P, C);
    b.H = H, b.G = H + CC;
    double *X = H + 2 * CC;
    b.X = X;
    hat_matrix(xs, ys, C, H);
    for (int k = 0; k < P; k++)
        for (int k2 = 0; k2 <= k; k2++)
            for (int i = 0; i < C; i++)
                for (int j = 0; j < C; j++) {
                    const float *a = pp + (size_t)k * pair_stride + i * cell_stride, *c = pp + (size_t)k2 * pair_stride + j * cell_stride;
                    double s = 0;
                    for (int e = 0; e < E; e++) s += (double)a[e] * c[e];
                    X[((size_t)k * P + k2) * CC + (size_t)i * C + j] = s;
                    X[((size_t)k2 * P + k) * CC + (size_t)j * C + i] = s;
                }
    ids_status st = ids_bootstrap_ci(pair_r2, &b, P, 1000, seed, ci, err);
    free(H);
    return st;
}

/* ---- held-out objects: nothing steered was seen in extraction ---- */

ids_status ids__holdout_check(const ids__exp *x, const char *ids_path, const char *meta_name, const char *what, ids_err *err) {
    if (x->set_manifest[0])
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: --holdout-objects works on drawn scenes (their --objects); an image set's "
                        "records are not filtered by object yet", what);
    const char *slash = strrchr(ids_path, '/');
    char path[2048];
    snprintf(path, sizeof path, "%.*s%s", slash ? (int)(slash - ids_path + 1) : 0, ids_path, meta_name);
    cJSON *meta = ids__result_read(path, NULL);
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(meta, "objects"), *o;
    if (!cJSON_IsArray(objs)) {
        cJSON_Delete(meta);
        return ids__err(err, IDS_ERR_FORMAT, "%s: --holdout-objects needs the extraction's object list ('objects' of %s)", what, path);
    }
    ids_status st = IDS_OK;
    for (int i = 0; !st && i < x->n_obj; i++) {
        const char *name = ids_catalog_name(x->cat, x->objs[i]);
        cJSON_ArrayForEach(o, objs) if (!st && cJSON_IsString(o) && !strcmp(o->valuestring, name))
            st = ids__err(err, IDS_ERR_ARG, "%s: --holdout-objects: '%s' was one of the extraction's objects (%s); steer "
                          "objects it never saw (--objects)", what, name, path);
    }
    cJSON_Delete(meta);
    return st;
}
