/* Accuracy against steerability across models (the paper's Fig. 9): several demo folders tabulated
 * (accuracy, swap rates, ID-strength score, R^2), with Spearman's correlation of ID strength and
 * accuracy and its interval, as JSON, CSV and one page with the scatter plot. */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

typedef struct {
    char model[512];
    double acc, acc_ci[2], swap_id, swap_noise, score, r2;
} cmp_row;

static void ci2(const cJSON *o, const char *key, double ci[2]) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    for (int q = 0; q < 2; q++) {
        const cJSON *v = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, q) : NULL;
        ci[q] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    }
}

static ids_status cmp_read(const char *dir, cmp_row *r, ids_err *err) {
    char *path = ids_result_path(dir, IDS_RESULT_SUMMARY, 0, true);
    if (!path) return ids__err(err, IDS_ERR_NOMEM, "compare: out of memory");
    cJSON *s = ids__result_read(path, err);
    if (!s) {
        ids_status st = ids__err(err, IDS_ERR_FORMAT, "compare: %s: no readable summary.json (run idscope demo into the folder)", path);
        free(path);
        return st;
    }
    free(path);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(s, "model");
    snprintf(r->model, sizeof r->model, "%s", cJSON_IsString(m) ? m->valuestring : dir);
    r->acc = ids__jget(s, "belief_accuracy_baseline");
    ci2(s, "belief_accuracy_baseline_ci", r->acc_ci);
    r->swap_id = ids__jget(s, "belief_swap_rate_id");
    r->swap_noise = ids__jget(s, "belief_swap_rate_noise");
    r->score = ids__jget(s, "score_best");
    r->r2 = ids__jget(s, "ids_r2_best");
    cJSON_Delete(s);
    return IDS_OK;
}

/* The scatter of ID strength (x) against accuracy (y), each model a labelled point. */
static void cmp_page(ids__tb *b, const cmp_row *rows, int n, double rho, const double ci[2]) {
    const int W = 520, H = 400, pad = 50;
    ids__tb_printf(b, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><meta charset=\"utf-8\"/>"
                      "<title>idscope compare</title></head><body style=\"font-family:sans-serif\">\n"
                      "<h1>Accuracy against ID strength</h1>\n<p>Spearman %.3f over %d models; ", rho, n);
    if (isfinite(ci[0]) && isfinite(ci[1])) ids__tb_printf(b, "95%% interval [%.3f, %.3f] (Fisher's z).</p>\n", ci[0], ci[1]);
    else ids__tb_printf(b, "no interval (Fisher's z needs 4 models or more).</p>\n");
    ids__tb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n"
                      "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                      "fill=\"none\" stroke=\"#999\"/>\n", W, H, W, H, pad, pad, W - 2 * pad, H - 2 * pad);
    ids__tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">ID strength (score, best layer)</text>\n"
                      "<text x=\"14\" y=\"%d\" font-size=\"11\" transform=\"rotate(-90 14 %d)\">accuracy</text>\n",
                   W / 2, H - 14, H / 2, H / 2);
    for (int i = 0; i < n; i++) {
        const double sx = isfinite(rows[i].score) ? fmin(fmax(rows[i].score, 0), 1) : 0;
        const double sy = isfinite(rows[i].acc) ? fmin(fmax(rows[i].acc, 0), 1) : 0;
        const double x = pad + (W - 2 * pad) * sx, y = H - pad - (H - 2 * pad) * sy;
        if (isfinite(rows[i].acc_ci[0]) && isfinite(rows[i].acc_ci[1]))
            ids__tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", x,
                           H - pad - (H - 2 * pad) * rows[i].acc_ci[0], x, H - pad - (H - 2 * pad) * rows[i].acc_ci[1]);
        ids__tb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"#1f77b4\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%d</text>\n",
                       x, y, x + 8, y - 6, i + 1);
    }
    ids__tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\">0</text><text x=\"%d\" y=\"%d\" font-size=\"10\">1</text>\n</svg>\n",
                   pad, H - pad + 14, W - pad, H - pad + 14);
    ids__tb_printf(b, "<table border=\"1\" cellpadding=\"4\"><tr><th>#</th><th>model</th><th>accuracy</th><th>swap ID</th>"
                      "<th>swap noise</th><th>score</th><th>R&#178;</th></tr>\n");
    for (int i = 0; i < n; i++) {
        ids__tb_printf(b, "<tr><td>%d</td><td>", i + 1);
        for (const char *p = rows[i].model; *p; p++)
            ids__tb_printf(b, "%s", *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : (char[2]){*p, 0});
        ids__tb_printf(b, "</td><td>%.3f [%.3f, %.3f]</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>\n", rows[i].acc,
                       rows[i].acc_ci[0], rows[i].acc_ci[1], rows[i].swap_id, rows[i].swap_noise, rows[i].score, rows[i].r2);
    }
    ids__tb_printf(b, "</table>\n</body></html>\n");
}

ids_status ids_compare(const char *const *dirs, int n, const char *out_dir, double *rho_out, ids_err *err) {
    if (n < 1) return ids__err(err, IDS_ERR_ARG, "compare: no results folder given");
    cmp_row *rows = ids__calloc((size_t)n, sizeof *rows);
    double *xs = ids__malloc(sizeof(double) * 2 * (size_t)n);
    ids_prov *prov = NULL;
    ids_status st = rows && xs ? ids_prov_new(&prov, "compare", err) : ids__err(err, IDS_ERR_NOMEM, "compare: out of memory");
    for (int i = 0; !st && i < n; i++) {
        st = cmp_read(dirs[i], &rows[i], err);
        char *p = st ? NULL : ids_result_path(dirs[i], IDS_RESULT_SUMMARY, 0, true), key[32];
        snprintf(key, sizeof key, "summary_%d", i + 1);
        if (p) st = ids_prov_input(prov, key, p, err);
        free(p);
    }
    double rho = NAN, ci[2] = {NAN, NAN};
    int m = 0; /* the models with both numbers */
    for (int i = 0; !st && i < n; i++)
        if (isfinite(rows[i].score) && isfinite(rows[i].acc)) xs[m] = rows[i].score, xs[n + m] = rows[i].acc, m++;
    if (!st) ids_spearman_ci(xs, xs + n, m, &rho, ci);
    if (rho_out) *rho_out = rho;
    bool oom = false;
    cJSON *doc = st ? NULL : cJSON_CreateObject(), *arr = NULL, *sp = NULL;
    ids__tb csv = {0}, page = {0};
    if (!st) {
        oom |= !doc || !cJSON_AddStringToObject(doc, "format", "idscope.compare.v1");
        oom |= !(sp = cJSON_AddObjectToObject(doc, "spearman_score_accuracy"));
        ids__jadd(sp, "rho", rho, 6, &oom);
        ids__jci(sp, "rho_ci", ci, &oom);
        ids__jadd(sp, "models", m, 0, &oom);
        oom |= !cJSON_AddStringToObject(sp, "interval", "Fisher's z, variance 1.06 / (n - 3); none below 4 models");
        oom |= !(arr = cJSON_AddArrayToObject(doc, "models"));
        ids__tb_printf(&csv, "model,accuracy,accuracy_ci_low,accuracy_ci_high,swap_rate_id,swap_rate_noise,score,r2\n");
    }
    for (int i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            oom = true;
            break;
        }
        oom |= !cJSON_AddStringToObject(o, "model", rows[i].model) || !cJSON_AddStringToObject(o, "results", dirs[i]);
        ids__jadd(o, "accuracy", rows[i].acc, 4, &oom);
        ids__jci(o, "accuracy_ci", rows[i].acc_ci, &oom);
        ids__jadd(o, "swap_rate_id", rows[i].swap_id, 4, &oom);
        ids__jadd(o, "swap_rate_noise", rows[i].swap_noise, 4, &oom);
        ids__jadd(o, "score", rows[i].score, 6, &oom);
        ids__jadd(o, "r2", rows[i].r2, 6, &oom);
        ids__tb_csvstr(&csv, rows[i].model);
        const double v[7] = {rows[i].acc, rows[i].acc_ci[0], rows[i].acc_ci[1], rows[i].swap_id, rows[i].swap_noise, rows[i].score, rows[i].r2};
        for (int q = 0; q < 7; q++) ids__tb_num(&csv, ",", v[q], 6);
        ids__tb_printf(&csv, "\n");
    }
    if (!st) cmp_page(&page, rows, n, rho, ci);
    if (!st && (page.oom || csv.oom)) st = ids__err(err, IDS_ERR_NOMEM, "compare: out of memory");
    if (!st) st = ids__write_text(out_dir, "compare.csv", csv.p, csv.n, err);
    if (!st) st = ids__write_text(out_dir, "compare.html", page.p, page.n, err);
    if (!st) {
        ids_prov_finish(prov);
        st = ids__result_write_as(out_dir, "compare.json", doc, prov, oom, err);
    }
    cJSON_Delete(doc);
    free(csv.p);
    free(page.p);
    ids_prov_free(prov);
    free(rows);
    free(xs);
    return st;
}
