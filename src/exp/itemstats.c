/* Per-item outputs and the intervals computed from them: bootstrap 95% CIs (seeded) beside every
 * rate and mean of a result, accuracies, and the per-item CSV files ("...-items.csv"). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

void ids__jci(cJSON *o, const char *key, const double ci[2], bool *oom) {
    cJSON *a = cJSON_CreateArray();
    for (int q = 0; q < 2 && a; q++) {
        cJSON *n = ids__jnum(ci[q], 6);
        if (!n || !cJSON_AddItemToArray(a, n)) cJSON_Delete(n), *oom = true;
    }
    if (!a || !cJSON_AddItemToObject(o, key, a)) cJSON_Delete(a), *oom = true;
}

void ids__tb_csvstr(ids__tb *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        ids__tb_printf(b, "%s", s);
        return;
    }
    ids__tb_printf(b, "\"");
    for (const char *p = s; *p; p++) ids__tb_printf(b, *p == '"' ? "\"\"" : "%c", *p);
    ids__tb_printf(b, "\"");
}

void ids__ci_mean(const double *x, int n, uint64_t seed, double ci[2], bool *oom) {
    ids_err e = {0};
    if (ids_bootstrap_mean_ci(x, n, 0, seed, ci, &e)) *oom = true;
}

void ids__jadd_ci(cJSON *o, const char *key, const double *x, int n, uint64_t seed, bool *oom) {
    double ci[2];
    ids__ci_mean(x, n, seed, ci, oom);
    char k[96];
    snprintf(k, sizeof k, "%s_ci", key);
    ids__jci(o, k, ci, oom);
}

/* The 3 entries of rate[0..n) with the highest values (ties: the earlier), -1 where n < 3 (as steer.c). */
static void top3(const float *rate, int n, int best[3]) {
    best[0] = best[1] = best[2] = -1;
    for (int k = 0; k < n; k++)
        for (int b = 0; b < 3; b++)
            if (best[b] < 0 || rate[k] > rate[best[b]]) {
                for (int c = 2; c > b; c--) best[c] = best[c - 1];
                best[b] = k;
                break;
            }
}

/* Per-item mean over the layers in best[] of v[i][k] (flip: XOR with clean-correct c[i], for accuracy). */
static void best3_item(const unsigned char *v, const int best[3], int NB, int n, const unsigned char *c, double *out) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        int m = 0;
        for (int q = 0; q < 3; q++)
            if (best[q] >= 0) s += c ? (v[(size_t)i * NB + best[q]] ^ c[i]) : v[(size_t)i * NB + best[q]], m++;
        out[i] = m ? s / m : NAN;
    }
}

void ids__belief_stats(cJSON *doc, cJSON *layers, const ids_steer_result *r, ids__tb *items, bool *oom) {
    const int n = r->n_items, NB = r->n_band;
    if (!r->item_swap_id || n < 1) return;
    double *x = ids__malloc(sizeof(double) * (size_t)n * 2);
    unsigned char *correct = ids__malloc((size_t)n + 1), *acc_id = ids__malloc((size_t)n * NB + 1);
    int *known = ids__malloc(sizeof(int) * (size_t)n + 1);
    if (!x || !correct || !acc_id || !known) {
        *oom = true;
        goto done;
    }
    int nk = 0; /* the items whose truth is known: accuracy */
    for (int i = 0; i < n; i++)
        if (r->item_truth[i] >= 0) {
            correct[nk] = (r->item_dc[i] > 0) == (r->item_truth[i] == 1);
            known[nk++] = i;
        }
    /* per layer: the rates' intervals, and the accuracy with the ID and the noise push */
    cJSON *lay = layers ? layers->child : NULL;
    for (int k = 0; k < NB && lay; k++, lay = lay->next) {
        for (int i = 0; i < n; i++) x[i] = r->item_swap_id[(size_t)i * NB + k], x[n + i] = r->item_swap_noise[(size_t)i * NB + k];
        ids__jadd_ci(lay, "id", x, n, 11 + (uint64_t)k, oom);
        ids__jadd_ci(lay, "noise", x + n, n, 12 + (uint64_t)k, oom);
        for (int i = 0; i < n; i++) x[i] -= x[n + i]; /* the causal factor of the score: ID minus noise, at least 0 */
        double ci[2];
        ids__ci_mean(x, n, 13 + (uint64_t)k, ci, oom);
        for (int q = 0; q < 2; q++) ci[q] = isfinite(ci[q]) ? fmax(0.0, ci[q]) : ci[q];
        ids__jci(lay, "causal_ci", ci, oom);
        if (!nk) continue;
        for (int q = 0; q < 2; q++) {
            const unsigned char *sw = q ? r->item_swap_noise : r->item_swap_id;
            double s = 0;
            for (int t = 0; t < nk; t++) s += x[t] = correct[t] ^ sw[(size_t)known[t] * NB + k];
            ids__jadd(lay, q ? "accuracy_noise" : "accuracy_id", s / nk, 4, oom);
        }
    }
    int best[3];
    top3(r->rate_id, NB, best);
    best3_item(r->item_swap_id, best, NB, n, NULL, x);
    ids__jadd_ci(doc, "best3_id", x, n, 21, oom);
    best3_item(r->item_swap_noise, best, NB, n, NULL, x);
    ids__jadd_ci(doc, "best3_noise", x, n, 22, oom);
    if (r->greedy_id) { /* the greedy verdicts at their own 3 best layers */
        top3(r->greedy_id, NB, best);
        best3_item(r->item_greedy_id, best, NB, n, NULL, x);
        ids__jadd_ci(doc, "greedy_best3_id", x, n, 26, oom);
        best3_item(r->item_greedy_noise, best, NB, n, NULL, x);
        ids__jadd_ci(doc, "greedy_best3_noise", x, n, 27, oom);
        top3(r->rate_id, NB, best);
    }
    if (nk) { /* accuracy: clean, and at the best-3 ID layers under each push */
        cJSON *a = cJSON_AddObjectToObject(doc, "accuracy");
        if (!a) {
            *oom = true;
            goto done;
        }
        ids__jadd(a, "items", nk, 0, oom);
        double s = 0;
        for (int t = 0; t < nk; t++) s += x[t] = correct[t];
        ids__jadd(a, "baseline", s / nk, 4, oom);
        ids__jadd_ci(a, "baseline", x, nk, 23, oom);
        for (int q = 0; q < 2; q++) {
            const unsigned char *sw = q ? r->item_swap_noise : r->item_swap_id;
            for (int t = 0; t < nk; t++)
                for (int k = 0; k < NB; k++) acc_id[(size_t)t * NB + k] = sw[(size_t)known[t] * NB + k];
            best3_item(acc_id, best, NB, nk, correct, x);
            s = 0;
            for (int t = 0; t < nk; t++) s += x[t];
            ids__jadd(a, q ? "noise" : "id", s / nk, 4, oom);
            ids__jadd_ci(a, q ? "noise" : "id", x, nk, 24 + (uint64_t)q, oom);
        }
    }
    ids__tb_printf(items, "item,record,relation,truth,clean_d,layer,swapped_id,swapped_noise\n");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < NB; k++) {
            ids__tb_printf(items, "%d,", i);
            ids__tb_csvstr(items, r->item_id[i]);
            ids__tb_printf(items, ",%s,%s", ids_relation_name((ids_relation)r->item_rel[i]),
                           r->item_truth[i] < 0 ? "" : r->item_truth[i] ? "first" : "second");
            ids__tb_num(items, ",", r->item_dc[i], 6);
            ids__tb_printf(items, ",%d,%d,%d\n", r->layer_lo + k, r->item_swap_id[(size_t)i * NB + k],
                           r->item_swap_noise[(size_t)i * NB + k]);
        }
done:
    free(x);
    free(correct);
    free(acc_id);
    free(known);
}

/* depth: per item, the mean over the band of (down - up) / 2 of push p for question q (0 above/below,
 * 1 front/behind): the push's effect on D, positive when pushing down raises D. */
static void depth_effect(const float *item, int n, int NB, int p, double *x) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < NB; k++) s += 0.5 * ((double)item[((size_t)i * 3 + p) * NB * 2 + 2 * k] - item[((size_t)i * 3 + p) * NB * 2 + 2 * k + 1]);
        x[i] = NB ? s / NB : NAN;
    }
}

static const char *const k_push[3] = {"vertical", "random_id", "orthogonal"};

void ids__depth_stats(cJSON *doc, cJSON *layers, const ids_depth_result *d, ids__tb *items, bool *oom) {
    static const char *const keys[4] = {"above_below_down", "above_below_up", "front_behind_down", "front_behind_up"};
    const int NB = d->n_band, nq[2] = {d->n_grid, d->n_depth};
    const float *it[2] = {d->item_ab, d->item_fb};
    if (!it[0] || !it[1]) return;
    const int nmax = nq[0] > nq[1] ? nq[0] : nq[1];
    double *x = ids__malloc(sizeof(double) * (size_t)(nmax + 1));
    if (!x) {
        *oom = true;
        return;
    }
    cJSON *lay = layers ? layers->child : NULL;
    for (int k = 0; k < NB && lay; k++, lay = lay->next)
        for (int p = 0; p < 3; p++) {
            cJSON *o = lay;
            if (p) { /* the controls beside the real push */
                if (!(o = cJSON_AddObjectToObject(lay, k_push[p]))) {
                    *oom = true;
                    continue;
                }
                for (int q = 0; q < 4; q++) ids__jadd(o, keys[q], d->ctl[p - 1][q][k], 6, oom);
            }
            for (int q = 0; q < 4; q++) {
                const int w = q / 2, dir = q % 2;
                for (int i = 0; i < nq[w]; i++) x[i] = it[w][(((size_t)i * 3 + p) * NB + k) * 2 + dir];
                ids__jadd_ci(o, keys[q], x, nq[w], 31 + (uint64_t)(k * 12 + p * 4 + q), oom);
            }
        }
    /* the effect of each push over the band: mean of (down - up) / 2, per question */
    cJSON *eff = cJSON_AddObjectToObject(doc, "effect");
    for (int p = 0; p < 3 && eff; p++) {
        cJSON *o = cJSON_AddObjectToObject(eff, k_push[p]);
        if (!o) {
            *oom = true;
            break;
        }
        for (int w = 0; w < 2; w++) {
            const char *name = w ? "front_behind" : "above_below";
            depth_effect(it[w], nq[w], NB, p, x);
            double s = 0;
            for (int i = 0; i < nq[w]; i++) s += x[i];
            ids__jadd(o, name, nq[w] ? s / nq[w] : NAN, 6, oom);
            ids__jadd_ci(o, name, x, nq[w], 71 + (uint64_t)(p * 2 + w), oom);
        }
    }
    if (!eff) *oom = true;
    ids__tb_printf(items, "item,question,push,layer,down,up\n");
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < nq[w]; i++)
            for (int p = 0; p < 3; p++)
                for (int k = 0; k < NB; k++) {
                    ids__tb_printf(items, "%d,%s,%s,%d", i, w ? "front_behind" : "above_below", k_push[p], d->layer_lo + k);
                    ids__tb_num(items, ",", it[w][(((size_t)i * 3 + p) * NB + k) * 2], 6);
                    ids__tb_num(items, ",", it[w][(((size_t)i * 3 + p) * NB + k) * 2 + 1], 6);
                    ids__tb_printf(items, "\n");
                }
    free(x);
}

void ids__patch_ci(cJSON *row, const float *item_diff, int n, int NV, int vi, bool *oom) {
    double *x = ids__malloc(sizeof(double) * (size_t)(n + 1));
    if (!x) {
        *oom = true;
        return;
    }
    for (int i = 0; i < n; i++) x[i] = item_diff[(size_t)i * NV + vi];
    ids__jadd_ci(row, "diff", x, n, 81 + (uint64_t)vi, oom);
    free(x);
}

ids_status ids__patch_items_write(const char *dir, ids_result_kind k, const float *item_diff, int n, int n_layers,
                                  ids_err *err) {
    char buf[96], name[112];
    const char *j = ids_result_name(k, 0, buf, sizeof buf);
    const size_t len = strlen(j) > 5 ? strlen(j) - 5 : 0; /* without ".json" */
    snprintf(name, sizeof name, "%.*s-items.csv", (int)len, j);
    ids__tb csv = {0};
    const int NV = n_layers * IDS_SWAP_SET_COUNT;
    ids__tb_printf(&csv, "item,layer,set,diff\n");
    for (int i = 0; i < n; i++)
        for (int vi = 0; vi < NV; vi++) {
            ids__tb_printf(&csv, "%d,%d,%s", i, vi / IDS_SWAP_SET_COUNT, ids_swap_set_name((ids_swap_set)(vi % IDS_SWAP_SET_COUNT)));
            ids__tb_num(&csv, ",", item_diff[(size_t)i * NV + vi], 6);
            ids__tb_printf(&csv, "\n");
        }
    ids_status st = csv.oom ? ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", name)
                            : ids__write_text(dir, name, csv.p ? csv.p : "", csv.n, err);
    free(csv.p);
    return st;
}

/* temporal steer, videos resampled: layer k's Spearman (k >= 0) or the monotonic fraction (k < 0). */
typedef struct {
    const ids_temporal_steer_result *r;
    int k;
    double *m; /* [frames] */
} tsteer_boot;

static double tsteer_rho(const tsteer_boot *b, const int *idx, int n, int k) {
    const int F = b->r->frames, NA = 3 * b->r->n_band * F; /* per video: the push, then its two controls */
    double fi[64];
    for (int t = 0; t < F; t++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += b->r->item_after[(size_t)idx[i] * NA + k * F + t];
        b->m[t] = s / n, fi[t] = t;
    }
    return ids_spearman(b->m, fi, F);
}

static double tsteer_stat(void *user, const int *idx, int n) {
    tsteer_boot *b = user;
    if (b->k >= 0) return tsteer_rho(b, idx, n, b->k);
    int mono = 0;
    for (int k = 0; k < b->r->n_band; k++) {
        const double rho = tsteer_rho(b, idx, n, k);
        mono += isfinite(rho) && rho >= IDS_TEMPORAL_MONOTONIC_RHO;
    }
    return b->r->n_band ? (double)mono / b->r->n_band : NAN;
}

void ids__tsteer_stats(cJSON *doc, const ids_temporal_steer_result *r, ids__tb *items, bool *oom) {
    const int F = r->frames, NB = r->n_band, n = r->n_items;
    if (!r->item_after || n < 1 || F > 64) return;
    double m[64], ci[2];
    tsteer_boot b = {r, -1, m};
    ids_err e = {0};
    if (ids_bootstrap_ci(tsteer_stat, &b, n, 1000, 91, ci, &e)) *oom = true;
    ids__jci(doc, "monotonic_ci", ci, oom);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(doc, "layers");
    cJSON *lay = layers ? layers->child : NULL;
    for (int k = 0; k < NB && lay; k++, lay = lay->next) {
        b.k = k;
        if (ids_bootstrap_ci(tsteer_stat, &b, n, 1000, 92 + (uint64_t)k, ci, &e)) *oom = true;
        ids__jci(lay, "spearman_after_ci", ci, oom);
        for (int c = 0; c < 2 && r->ctl_after[c]; c++) { /* the controls' mean changes beside the push's */
            cJSON *o = cJSON_AddObjectToObject(lay, c ? "orthogonal" : "random_id"), *da = o ? cJSON_AddArrayToObject(o, "d_after") : NULL;
            for (int t = 0; da && t < F; t++) {
                cJSON *v = ids__jnum(r->ctl_after[c][k * F + t], 6);
                if (!v || !cJSON_AddItemToArray(da, v)) cJSON_Delete(v), *oom = true;
            }
            *oom |= !da;
        }
    }
    if (r->ctl_after[0]) {
        ids__jadd(doc, "monotonic_random_id", r->ctl_monotonic[0], 4, oom);
        ids__jadd(doc, "monotonic_orthogonal", r->ctl_monotonic[1], 4, oom);
    }
    static const char *const push[3] = {"push", "random_id", "orthogonal"};
    ids__tb_printf(items, "item,push,layer,frame,d_after\n");
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < NB; k++)
                for (int t = 0; t < F; t++) {
                    ids__tb_printf(items, "%d,%s,%d,%d", i, push[c], r->layer_lo + k, t + 1);
                    ids__tb_num(items, ",", r->item_after[(((size_t)i * 3 + c) * NB + k) * F + t], 6);
                    ids__tb_printf(items, "\n");
                }
}

/* steer grid, images resampled: the mean over target cells of |mean change| for push c. */
typedef struct {
    const ids_steer_grid_result *g;
    int c;
} grid_boot;

static double grid_mean_abs(void *user, const int *idx, int n) {
    const grid_boot *b = user;
    const int C = b->g->grid * b->g->grid;
    double s = 0;
    for (int t = 0; t < C; t++) {
        double m = 0;
        for (int i = 0; i < n; i++) m += b->g->item_delta[((size_t)idx[i] * 3 + b->c) * C + t];
        s += fabs(m / n);
    }
    return s / C;
}

void ids__grid_stats(cJSON *doc, const ids_steer_grid_result *g, ids__tb *items, bool *oom) {
    const int C = g->grid * g->grid, n = g->n_items;
    if (!g->item_delta || !g->delta_random || !g->delta_orthogonal || n < 1) return;
    static const char *const name[3] = {"delta", "delta_random", "delta_orthogonal"};
    const float *maps[3] = {g->delta, g->delta_random, g->delta_orthogonal};
    double *x = ids__malloc(sizeof(double) * (size_t)n);
    cJSON *cis = cJSON_CreateArray();
    if (!x || !cis) {
        free(x);
        cJSON_Delete(cis);
        *oom = true;
        return;
    }
    for (int c = 1; c < 3; c++) { /* the controls' maps beside "delta" */
        cJSON *a = cJSON_AddArrayToObject(doc, name[c]);
        for (int t = 0; a && t < C; t++) {
            cJSON *v = ids__jnum(maps[c][t], 6);
            if (!v || !cJSON_AddItemToArray(a, v)) cJSON_Delete(v), *oom = true;
        }
        *oom |= !a;
    }
    for (int t = 0; t < C; t++) { /* each cell's interval, the push */
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; i < n; i++) x[i] = g->item_delta[(size_t)i * 3 * C + t];
        if (o) ids__jadd_ci(o, "delta", x, n, 101 + (uint64_t)t, oom);
        cJSON *ci = o ? cJSON_DetachItemFromObject(o, "delta_ci") : NULL;
        cJSON_Delete(o);
        if (!ci || !cJSON_AddItemToArray(cis, ci)) cJSON_Delete(ci), *oom = true;
    }
    if (!cJSON_AddItemToObject(doc, "delta_ci", cis)) cJSON_Delete(cis), *oom = true;
    cJSON *ma = cJSON_AddObjectToObject(doc, "mean_abs");
    static const char *const push[3] = {"push", "random_id", "orthogonal"};
    for (int c = 0; c < 3 && ma; c++) { /* the size of each map: mean |change| over the cells */
        double s = 0, ci[2];
        for (int t = 0; t < C; t++) s += fabs(maps[c][t]);
        ids__jadd(ma, push[c], s / C, 6, oom);
        grid_boot b = {g, c};
        ids_err e = {0};
        if (ids_bootstrap_ci(grid_mean_abs, &b, n, 1000, 111 + (uint64_t)c, ci, &e)) *oom = true;
        char k[48];
        snprintf(k, sizeof k, "%s_ci", push[c]);
        ids__jci(ma, k, ci, oom);
    }
    *oom |= !ma;
    ids__tb_printf(items, "item,push,x,y,delta\n");
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int t = 0; t < C; t++) {
                ids__tb_printf(items, "%d,%s,%d,%d", i, push[c], t % g->grid, t / g->grid);
                ids__tb_num(items, ",", g->item_delta[((size_t)i * 3 + c) * C + t], 6);
                ids__tb_printf(items, "\n");
            }
    free(x);
}
