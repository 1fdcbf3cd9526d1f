/* The demo summary's intervals and the numbers of the controls, Fig. 8A (deviation) and Fig. 8B
 * (mask): read from the step results, written as X and X_ci = [low, high]. */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

/* o[key] as [low, high] into ci (NAN when absent). */
static void rci(const cJSON *o, const char *key, double ci[2]) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    ci[0] = ci[1] = NAN;
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2)
        for (int q = 0; q < 2; q++) {
            const cJSON *v = cJSON_GetArrayItem(a, q);
            ci[q] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        }
}

static cJSON *load_as(const char *dir, const char *sub, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    return ids__result_read(path, NULL);
}

/* The objects-set row of a patching result at layer `layer`. */
static void objword_ci(const cJSON *j, int layer, double ci[2]) {
    const cJSON *r;
    ci[0] = ci[1] = NAN;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "rows")) {
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(r, "set");
        if (cJSON_IsString(set) && !strcmp(set->valuestring, "objects") && ids__jget(r, "layer") == layer) rci(r, "diff_ci", ci);
    }
}

static void spatial_ci(const char *dir, ids_demo_summary *s) {
    cJSON *stats = ids__result_load(dir, IDS_RESULT_STATS, 0, true), *belief = ids__result_load(dir, IDS_RESULT_STEER_BELIEF, 0, true);
    cJSON *swap = ids__result_load(dir, IDS_RESULT_SWAP, 0, true);
    const cJSON *it;
    s->ids_r2_best_ci[0] = s->ids_r2_best_ci[1] = s->ids_r2_null_mean = s->ids_r2_null_q95 = NAN;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(stats, "layers")) if (ids__jget(it, "layer") == s->ids_r2_best_layer) {
        rci(it, "r2_ci", s->ids_r2_best_ci);
        s->ids_r2_null_mean = ids__jget(it, "r2_null_mean");
        s->ids_r2_null_q95 = ids__jget(it, "r2_null_q95");
    }
    rci(belief, "best3_id_ci", s->belief_swap_rate_id_ci);
    rci(belief, "best3_noise_ci", s->belief_swap_rate_noise_ci);
    rci(belief, "greedy_best3_id_ci", s->belief_swap_rate_id_greedy_ci);
    rci(belief, "greedy_best3_noise_ci", s->belief_swap_rate_noise_greedy_ci);
    cJSON *score = ids__result_load(dir, IDS_RESULT_SCORE, 0, true);
    s->score_best_ci[0] = s->score_best_ci[1] = NAN;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(score, "layers")) if (ids__jget(it, "layer") == s->score_best_layer)
        rci(it, "score_ci", s->score_best_ci);
    cJSON_Delete(score);
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(belief, "accuracy");
    static const char *const ak[3] = {"baseline", "id", "noise"};
    for (int k = 0; k < 3; k++) {
        char key[32];
        s->belief_accuracy[k] = ids__jget(acc, ak[k]);
        snprintf(key, sizeof key, "%s_ci", ak[k]);
        rci(acc, key, s->belief_accuracy_ci[k]);
    }
    for (int k = 0; k < 3; k++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s/steer/factor-%d", dir, k + 1);
        cJSON *bj = k < 2 ? ids__result_load(sub, IDS_RESULT_STEER_BELIEF, 0, false) : belief;
        rci(bj, "best3_id_ci", s->sweep_id_ci[k]);
        rci(bj, "best3_noise_ci", s->sweep_noise_ci[k]);
        if (k < 2) cJSON_Delete(bj);
    }
    objword_ci(swap, s->mirror_objword_recovery_peak_layer, s->mirror_objword_recovery_peak_ci);
    cJSON_Delete(stats);
    cJSON_Delete(belief);
    cJSON_Delete(swap);
}

static const float k_tsweep[4] = {0.5f, 1, 2, 5};

static void temporal_ci(const char *dir, ids_demo_summary *s) {
    cJSON *tj = ids__result_load(dir, IDS_RESULT_TEMPORAL, 0, true), *tsw = ids__result_load(dir, IDS_RESULT_TEMPORAL_SWAP, 0, true);
    objword_ci(tsw, s->temporal_objword_recovery_peak_layer, s->temporal_objword_recovery_peak_ci);
    s->temporal_pca_order_ci[0] = s->temporal_pca_order_ci[1] = NAN;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(tj, "stats")) if (ids__jget(it, "layer") == s->temporal_pca_best_layer) {
        double c[64], idx[64], rho;
        int n = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(it, "pc1")) if (n < 64 && cJSON_IsNumber(v)) c[n] = v->valuedouble, idx[n] = n, n++;
        ids_spearman_ci(c, idx, n, &rho, s->temporal_pca_order_ci); /* Fisher's z over the frames */
    }
    /* the sweep: temporal/factor-F for F < 5, the main run at 5 */
    s->temporal_steer_monotonic_factor = NAN;
    double best = 0;
    for (int k = 0; k < 4; k++) {
        char sub[64];
        snprintf(sub, sizeof sub, "temporal/factor-%g", k_tsweep[k]);
        cJSON *j = k < 3 ? load_as(dir, sub, "temporal-steer.json") : ids__result_load(dir, IDS_RESULT_TEMPORAL_STEER, 0, true);
        s->tsweep_factor[k] = ids__jget(j, "factor");
        s->tsweep_monotonic[k] = ids__jget(j, "monotonic");
        rci(j, "monotonic_ci", s->tsweep_monotonic_ci[k]);
        if (isfinite(s->tsweep_monotonic[k]) && s->tsweep_monotonic[k] > best) {
            best = s->tsweep_monotonic[k], s->temporal_steer_monotonic_factor = s->tsweep_factor[k];
            memcpy(s->temporal_steer_monotonic_ci, s->tsweep_monotonic_ci[k], sizeof s->temporal_steer_monotonic_ci);
        }
        cJSON_Delete(j);
    }
    /* the headline: the sweep's largest monotonic fraction (at the factor above); 0 when none is */
    s->temporal_steer_monotonic = isfinite(s->temporal_steer_monotonic_factor) ? best : s->tsweep_monotonic[3];
    if (!isfinite(s->temporal_steer_monotonic_factor))
        memcpy(s->temporal_steer_monotonic_ci, s->tsweep_monotonic_ci[3], sizeof s->temporal_steer_monotonic_ci);
    cJSON_Delete(tj);
    cJSON_Delete(tsw);
}

static void fig8_read(const char *dir, ids_demo_summary *s) {
    cJSON *dep = ids__result_load(dir, IDS_RESULT_DEPTH, 0, true);
    const cJSON *eff = cJSON_GetObjectItemCaseSensitive(dep, "effect");
    static const char *const pk[3] = {"vertical", "random_id", "orthogonal"}, *const qk[2] = {"above_below", "front_behind"};
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 2; q++) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(eff, pk[p]);
            char key[32];
            s->depth_effect[p][q] = ids__jget(o, qk[q]);
            snprintf(key, sizeof key, "%s_ci", qk[q]);
            rci(o, key, s->depth_effect_ci[p][q]);
        }
    cJSON_Delete(dep);
    cJSON *dev = load_as(dir, "deviation", "deviation.json"), *mask = load_as(dir, "mask", "mask.json");
    s->deviation_layer = ids__jint(dev, "layer", 0, IDS_JSON_LAYER_MAX, -1);
    s->deviation_right_n = ids__jint(dev, "right", 0, 1 << 30, -1);
    s->deviation_wrong_n = ids__jint(dev, "wrong", 0, 1 << 30, -1);
    s->deviation_right = ids__jget(dev, "deviation_right");
    s->deviation_wrong = ids__jget(dev, "deviation_wrong");
    rci(dev, "deviation_right_ci", s->deviation_right_ci);
    rci(dev, "deviation_wrong_ci", s->deviation_wrong_ci);
    const cJSON *mw = cJSON_GetObjectItemCaseSensitive(dev, "mann_whitney");
    s->deviation_mw_u = ids__jget(mw, "u");
    s->deviation_mw_p = ids__jget(mw, "p");
    static const char *const ck[3] = {"clean", "object", "random"};
    for (int c = 0; c < 3; c++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(mask, ck[c]);
        s->mask_accuracy[c] = ids__jget(o, "accuracy");
        rci(o, "accuracy_ci", s->mask_accuracy_ci[c]);
        if (c) {
            s->mask_d_change[c - 1] = ids__jget(o, "d_true_change");
            rci(o, "d_true_change_ci", s->mask_d_change_ci[c - 1]);
        }
    }
    cJSON_Delete(dev);
    cJSON_Delete(mask);
}

void ids__summary_ci_read(const char *dir, ids_demo_summary *s) {
    spatial_ci(dir, s);
    temporal_ci(dir, s);
    fig8_read(dir, s);
}

static void add_ci(cJSON *doc, const char *key, const double ci[2], bool *oom) {
    char k[96];
    snprintf(k, sizeof k, "%s_ci", key);
    ids__jci(doc, k, ci, oom);
}

void ids__summary_ci_json(cJSON *doc, const ids_demo_summary *s, bool *oom) {
    add_ci(doc, "ids_r2_best", s->ids_r2_best_ci, oom);
    ids__jadd(doc, "ids_r2_null_mean", s->ids_r2_null_mean, 6, oom);
    ids__jadd(doc, "ids_r2_null_q95", s->ids_r2_null_q95, 6, oom);
    add_ci(doc, "belief_swap_rate_id", s->belief_swap_rate_id_ci, oom);
    add_ci(doc, "belief_swap_rate_noise", s->belief_swap_rate_noise_ci, oom);
    add_ci(doc, "belief_swap_rate_id_greedy", s->belief_swap_rate_id_greedy_ci, oom);
    add_ci(doc, "belief_swap_rate_noise_greedy", s->belief_swap_rate_noise_greedy_ci, oom);
    add_ci(doc, "score_best", s->score_best_ci, oom);
    static const char *const ak[3] = {"belief_accuracy_baseline", "belief_accuracy_id", "belief_accuracy_noise"};
    for (int k = 0; k < 3; k++) {
        ids__jadd(doc, ak[k], s->belief_accuracy[k], 4, oom);
        add_ci(doc, ak[k], s->belief_accuracy_ci[k], oom);
    }
    cJSON *sw = cJSON_GetObjectItemCaseSensitive(doc, "belief_swap_by_factor"), *e = sw ? sw->child : NULL;
    for (int k = 0; k < 3 && e; k++, e = e->next) {
        ids__jci(e, "id_ci", s->sweep_id_ci[k], oom);
        ids__jci(e, "noise_ci", s->sweep_noise_ci[k], oom);
    }
    add_ci(doc, "mirror_objword_recovery_peak", s->mirror_objword_recovery_peak_ci, oom);
    add_ci(doc, "temporal_objword_recovery_peak", s->temporal_objword_recovery_peak_ci, oom);
    add_ci(doc, "temporal_pca_order", s->temporal_pca_order_ci, oom);
    add_ci(doc, "temporal_steer_monotonic", s->temporal_steer_monotonic_ci, oom);
    ids__jadd(doc, "temporal_steer_monotonic_factor", s->temporal_steer_monotonic_factor, 4, oom);
    cJSON *ts = cJSON_AddArrayToObject(doc, "temporal_steer_by_factor");
    for (int k = 0; k < 4 && ts; k++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(ts, o)) {
            cJSON_Delete(o);
            *oom = true;
            break;
        }
        ids__jadd(o, "factor", s->tsweep_factor[k], 4, oom);
        ids__jadd(o, "monotonic", s->tsweep_monotonic[k], 4, oom);
        ids__jci(o, "monotonic_ci", s->tsweep_monotonic_ci[k], oom);
    }
    *oom |= !ts;
    static const char *const dk[3][2] = {{"depth_vertical_above_below", "depth_vertical_front_behind"},
                                         {"depth_random_id_above_below", "depth_random_id_front_behind"},
                                         {"depth_orthogonal_above_below", "depth_orthogonal_front_behind"}};
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 2; q++) {
            ids__jadd(doc, dk[p][q], s->depth_effect[p][q], 6, oom);
            add_ci(doc, dk[p][q], s->depth_effect_ci[p][q], oom);
        }
    ids__jadd(doc, "deviation_layer", s->deviation_layer, 0, oom);
    ids__jadd(doc, "deviation_right", s->deviation_right, 6, oom);
    add_ci(doc, "deviation_right", s->deviation_right_ci, oom);
    ids__jadd(doc, "deviation_wrong", s->deviation_wrong, 6, oom);
    add_ci(doc, "deviation_wrong", s->deviation_wrong_ci, oom);
    ids__jadd(doc, "deviation_items_right", s->deviation_right_n, 0, oom);
    ids__jadd(doc, "deviation_items_wrong", s->deviation_wrong_n, 0, oom);
    ids__jadd(doc, "deviation_mann_whitney_u", s->deviation_mw_u, 4, oom);
    ids__jadd(doc, "deviation_mann_whitney_p", s->deviation_mw_p, 8, oom);
    static const char *const mk[3] = {"mask_accuracy_clean", "mask_accuracy_object", "mask_accuracy_random"};
    for (int c = 0; c < 3; c++) {
        ids__jadd(doc, mk[c], s->mask_accuracy[c], 4, oom);
        add_ci(doc, mk[c], s->mask_accuracy_ci[c], oom);
    }
    static const char *const md[2] = {"mask_d_change_object", "mask_d_change_random"};
    for (int c = 0; c < 2; c++) {
        ids__jadd(doc, md[c], s->mask_d_change[c], 6, oom);
        add_ci(doc, md[c], s->mask_d_change_ci[c], oom);
    }
}
