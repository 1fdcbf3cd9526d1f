/* Ground-truth deviation (the paper's Fig. 8A): where the image puts an object word in the ID plane
 * against where the IDs say its box is, for items the model answers right and wrong, with the
 * Mann-Whitney U test between the two. */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

void ids_deviation_result_free(ids_deviation_result *r) {
    free(r->item_id);
    free(r->correct);
    free(r->gx);
    free(r->gy);
    free(r->dev);
    free(r->pos);
    free(r->id_pos);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

typedef struct {
    ids__exp x;
    const ids_tokenizer *tok;
    ids_st_file *f;
    const ids_st_tensor *U, *xa, *ya;
    int L, E, G, S;
    ids_ctx *ctx;
    ids__answers ans[IDS_REL_COUNT];
    bool ans_made[IDS_REL_COUNT];
    float *h;                   /* [2][L][E]: with the image, text only */
    ids_hook *hooks;            /* [2 L] */
    float *rec;                 /* the current item's record [3 + 4 L] */
    int cap;
    ids_deviation_result *out;
} dev_job;

/* Continuous grid coordinates of a point in the image as the tower sees it (cell centres at
 * 0.5, 1.5, ...; LLaVA-style towers pad to a square, the dynamic ones stretch), clamped to the grid. */
static void grid_pos(const dev_job *j, const ids_image *img, float cx, float cy, double *gx, double *gy) {
    const bool pad = !ids_vision_params(ids_vlm_vision(j->x.v))->dynamic;
    double w = img->w, h = img->h, px = cx, py = cy;
    if (pad && img->w != img->h) {
        const double S = img->w > img->h ? img->w : img->h;
        px += (int)((S - w) / 2), py += (int)((S - h) / 2);
        w = h = S;
    }
    *gx = fmin(fmax(px / w * j->G, 0.0), (double)j->G);
    *gy = fmin(fmax(py / h * j->G, 0.0), (double)j->G);
}

/* Coordinates (a, b) of v in the plane of the axes xa, ya at layer l: least squares v ~ a xa + b ya. */
static void plane_coords(const float *xa, const float *ya, const double *v, int E, double ab[2]) {
    double xx = 0, yy = 0, xy = 0, xv = 0, yv = 0;
    for (int e = 0; e < E; e++) {
        xx += (double)xa[e] * xa[e], yy += (double)ya[e] * ya[e], xy += (double)xa[e] * ya[e];
        xv += xa[e] * v[e], yv += ya[e] * v[e];
    }
    const double det = xx * yy - xy * xy;
    ab[0] = det > 0 ? (yy * xv - xy * yv) / det : NAN;
    ab[1] = det > 0 ? (xx * yv - xy * xv) / det : NAN;
}

/* The universal ID (largest size) at layer l interpolated bilinearly at grid position (gx, gy). */
static void uid_bilinear(const dev_job *j, int l, double gx, double gy, double *out) {
    const int G = j->G;
    const double fx = fmin(fmax(gx - 0.5, 0.0), G - 1.0), fy = fmin(fmax(gy - 0.5, 0.0), G - 1.0);
    const int x0 = (int)floor(fx), y0 = (int)floor(fy), x1 = x0 + 1 < G ? x0 + 1 : x0, y1 = y0 + 1 < G ? y0 + 1 : y0;
    const double tx = fx - x0, ty = fy - y0;
    const float *U = j->U->data;
    const int xs[4] = {x0, x1, x0, x1}, ys[4] = {y0, y0, y1, y1};
    const double wt[4] = {(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty};
    for (int e = 0; e < j->E; e++) out[e] = 0;
    for (int q = 0; q < 4; q++) {
        const float *u = U + ((((size_t)l * G + ys[q]) * G + xs[q]) * j->S) * j->E;
        for (int e = 0; e < j->E; e++) out[e] += wt[q] * u[e];
    }
}

static ids_status dev_grow(ids_deviation_result *r, int L, int *cap, ids_err *err) {
    if (r->n_items < *cap) return IDS_OK;
    const int nc = *cap ? 2 * *cap : 16;
    void *p[7] = {ids__realloc(r->item_id, sizeof *r->item_id * (size_t)nc), ids__realloc(r->correct, (size_t)nc),
                  ids__realloc(r->gx, sizeof(float) * (size_t)nc), ids__realloc(r->gy, sizeof(float) * (size_t)nc),
                  ids__realloc(r->dev, sizeof(float) * (size_t)nc * L), ids__realloc(r->pos, sizeof(float) * (size_t)nc * L * 2),
                  ids__realloc(r->id_pos, sizeof(float) * (size_t)nc * L * 2)};
    if (p[0]) r->item_id = p[0];
    if (p[1]) r->correct = p[1];
    if (p[2]) r->gx = p[2];
    if (p[3]) r->gy = p[3];
    if (p[4]) r->dev = p[4];
    if (p[5]) r->pos = p[5];
    if (p[6]) r->id_pos = p[6];
    for (int k = 0; k < 7; k++)
        if (!p[k]) return ids__err(err, IDS_ERR_NOMEM, "deviation: out of memory for %d items", nc);
    *cap = nc;
    return IDS_OK;
}

/* One run of the item's question, with its image or text only: the subject word's rows into h. */
static ids_status dev_run(dev_job *j, ids_relation rel, const ids__item *it, bool image, float lp[2], ids_err *err) {
    char *prompt = ids__exp_prompt(&j->x, rel, it->name[0], it->name[1], NULL, image ? 1 : 0);
    if (!prompt) return ids__err(err, IDS_ERR_NOMEM, "deviation: out of memory");
    ids_seq *seq = NULL;
    ids_status st = ids_vlm_build_seq(j->x.v, prompt, it->img, image ? 1 : 0, j->x.n_threads, NULL, &seq, err);
    free(prompt);
    int rows[2];
    if (!st) st = ids__object_rows(seq, j->tok, it->word[0], it->word[1], rows, err);
    const ids_sel word = {.kind = IDS_SEL_WORD, .word = it->word[0], .after_image = image};
    float *h = j->h + (image ? 0 : (size_t)j->L * j->E);
    for (int l = 0; l < j->L; l++)
        j->hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = word, .action = IDS_ACT_CAPTURE,
                                 .out = h + (size_t)l * j->E, .len = (size_t)j->E};
    float raw[IDS__MAX_CAND];
    ids_run_opts ro = {.cand = j->ans[rel].cand, .n_cand = j->ans[rel].n_cand};
    ids_run_out oc = {.cand_logprob = raw};
    if (!st) st = ids_ctx_prefill(j->ctx, seq, j->hooks, j->L, image ? &ro : NULL, image ? &oc : NULL, err);
    if (!st && image) ids_answer_set_reduce(&j->ans[rel].set, raw, lp);
    ids_seq_free(seq);
    if (st && it->id && *it->id) ids__err_prefix(err, st, "record '%s'", it->id);
    return st;
}

/* The item's record (kept, so that a rerun or a merge adds it again): [0] answered right (0 or 1),
 * [1..2] the box centre in grid coordinates, then per layer the image's shift in the plane (a, b)
 * and the ID's (a, b): 3 + 4 L floats. */
static ids_status dev_compute(dev_job *j, ids_relation rel, const ids__item *it, float *rec, ids_err *err) {
    float lp[2];
    ids_status st = dev_run(j, rel, it, true, lp, err);
    if (!st) st = dev_run(j, rel, it, false, NULL, err);
    if (st) return st;
    const int L = j->L, E = j->E;
    double gx, gy;
    grid_pos(j, it->img, it->cx[0], it->cy[0], &gx, &gy);
    rec[0] = (lp[0] > lp[1]) == it->truth[rel];
    rec[1] = (float)gx, rec[2] = (float)gy;
    double *d = ids__malloc(sizeof(double) * (size_t)E * 2);
    if (!d) return ids__err(err, IDS_ERR_NOMEM, "deviation: out of memory");
    for (int l = 0; l < L; l++) {
        const float *xa = (const float *)j->xa->data + (size_t)l * E, *ya = (const float *)j->ya->data + (size_t)l * E;
        double ab[2];
        for (int e = 0; e < E; e++) d[e] = (double)j->h[(size_t)l * E + e] - j->h[((size_t)L + l) * E + e];
        plane_coords(xa, ya, d, E, ab);
        rec[3 + 4 * l] = (float)ab[0], rec[3 + 4 * l + 1] = (float)ab[1];
        uid_bilinear(j, l, gx, gy, d + E);
        plane_coords(xa, ya, d + E, E, ab);
        rec[3 + 4 * l + 2] = (float)ab[0], rec[3 + 4 * l + 3] = (float)ab[1];
    }
    free(d);
    return IDS_OK;
}

static ids_status dev_item(void *user, const ids__item *it, ids_err *err) {
    dev_job *j = user;
    ids_deviation_result *r = j->out;
    const ids_relation rel = it->has[IDS_REL_LEFT_RIGHT] ? IDS_REL_LEFT_RIGHT : IDS_REL_ABOVE_BELOW;
    ids_status st = IDS_OK;
    if (!j->ans_made[rel]) {
        if ((st = ids__answers_init(&j->ans[rel], j->tok, rel, err))) return st;
        j->ans_made[rel] = true;
        ids__prompting_add(&r->prompting, j->x.instruction, &j->ans[rel].set);
    }
    const int L = j->L;
    const size_t rec_len = sizeof(float) * (3 + 4 * (size_t)L);
    const void *kept = NULL;
    size_t kept_len = 0;
    if ((st = ids__item_find(&j->x, &kept, &kept_len, err))) return st;
    if (kept && kept_len != rec_len)
        return ids__err(err, IDS_ERR_FORMAT, "deviation: kept item %ld has %zu bytes, %zu expected", j->x.item, kept_len, rec_len);
    if (kept) memcpy(j->rec, kept, rec_len);
    else if (!(st = dev_compute(j, rel, it, j->rec, err))) st = ids__item_keep(&j->x, j->rec, rec_len, err);
    if (!st) st = dev_grow(r, L, &j->cap, err);
    if (st) return st;
    const int n = r->n_items;
    const float *rec = j->rec;
    snprintf(r->item_id[n], sizeof *r->item_id, "%s", it->id ? it->id : "");
    r->correct[n] = rec[0] != 0;
    r->gx[n] = rec[1], r->gy[n] = rec[2];
    for (int l = 0; l < L; l++)
        for (int q = 0; q < 2; q++) {
            r->pos[((size_t)n * L + l) * 2 + q] = rec[3 + 4 * l + q];
            r->id_pos[((size_t)n * L + l) * 2 + q] = rec[3 + 4 * l + 2 + q];
        }
    r->n_items++;
    return IDS_OK;
}

/* Deviations from the coordinates: both sides centred over the items (the image's common shift of
 * the word is no position), then the distance in the plane; the test at the headline layer. */
static ids_status dev_finish(ids_deviation_result *r, ids_err *err) {
    const int n = r->n_items, L = r->n_layers;
    for (int l = 0; l < L; l++) {
        double m[4] = {0, 0, 0, 0};
        for (int i = 0; i < n; i++)
            for (int q = 0; q < 2; q++) m[q] += r->pos[((size_t)i * L + l) * 2 + q], m[2 + q] += r->id_pos[((size_t)i * L + l) * 2 + q];
        for (int q = 0; q < 4; q++) m[q] /= n ? n : 1;
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int q = 0; q < 2; q++) {
                const double a = r->pos[((size_t)i * L + l) * 2 + q] - m[q], b = r->id_pos[((size_t)i * L + l) * 2 + q] - m[2 + q];
                s += (a - b) * (a - b);
            }
            r->dev[(size_t)i * L + l] = (float)sqrt(s);
        }
    }
    double *a = ids__malloc(sizeof(double) * (size_t)(n + 1));
    if (!a) return ids__err(err, IDS_ERR_NOMEM, "deviation: out of memory");
    int nr = 0, nw = 0;
    for (int i = 0; i < n; i++)
        if (r->correct[i]) a[nr++] = r->dev[(size_t)i * L + r->layer];
    for (int i = 0; i < n; i++)
        if (!r->correct[i]) a[nr + nw++] = r->dev[(size_t)i * L + r->layer];
    r->n_right = nr, r->n_wrong = nw;
    r->mw = (ids_mw_result){.u = NAN, .u_min = NAN, .z = NAN, .p = NAN, .n1 = nr, .n2 = nw};
    ids_status st = nr && nw ? ids_mann_whitney(a, nr, a + nr, nw, &r->mw, err) : IDS_OK;
    free(a);
    return st;
}

/* The layer >= 1 whose cell IDs (largest size) are most linear in position (ids stats' r2). */
static ids_status best_r2_layer(const dev_job *j, int *best, ids_err *err) {
    const int C = j->G * j->G, E = j->E;
    float *cells = ids__malloc(sizeof(float) * (size_t)C * E);
    int *xs = ids__malloc(sizeof(int) * 2 * (size_t)C);
    ids_status st = cells && xs ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "deviation: out of memory");
    double br = -1;
    *best = 1;
    for (int k = 0; !st && k < C; k++) xs[k] = k % j->G, xs[C + k] = k / j->G;
    for (int l = 1; !st && l < j->L; l++) {
        for (int k = 0; k < C; k++)
            memcpy(cells + (size_t)k * E, (const float *)j->U->data + (((size_t)l * C + k) * j->S) * E, sizeof(float) * (size_t)E);
        ids_id_stats s;
        st = ids_spatial_layer_stats(cells, xs, xs + C, C, E, (const float *)j->xa->data + (size_t)l * E,
                                     (const float *)j->ya->data + (size_t)l * E, &s, NULL, err);
        if (!st && isfinite(s.r2) && s.r2 > br) br = s.r2, *best = l;
    }
    free(cells);
    free(xs);
    return st;
}

static void dev_job_free(dev_job *j) {
    ids_ctx_free(j->ctx);
    ids_st_close(j->f);
    free(j->h);
    free(j->hooks);
    free(j->rec);
}

static ids_status dev_open(dev_job *j, const ids_vlm *v, const ids_catalog *cat, const ids_deviation_opts *o,
                           ids_progress_fn progress, void *user, ids_err *err) {
    const ids_model *m = ids_vlm_model(v);
    j->tok = ids_model_tokenizer(m);
    j->L = ids_model_hparams(m)->n_layer + 1, j->E = ids_model_hparams(m)->n_embd;
    ids_status st = ids__exp_init(&j->x, &o->exp, v, cat, 2, 2, "deviation", progress, user, err);
    if (!st && !j->x.set_manifest[0]) st = ids__err(err, IDS_ERR_ARG, "deviation: an image set with boxes is needed (--set DIR)");
    if (!st && !o->ids_path) st = ids__err(err, IDS_ERR_ARG, "deviation: no IDs file (ids extract writes one)");
    if (!st) st = ids_st_open(&j->f, o->ids_path, err);
    if (!st) st = ids__st_f32(j->f, o->ids_path, "universal", 5, false, &j->U, err);
    if (!st) st = ids__st_f32(j->f, o->ids_path, "x_axis", 2, false, &j->xa, err);
    if (!st) st = ids__st_f32(j->f, o->ids_path, "y_axis", 2, false, &j->ya, err);
    if (!st && (j->U->shape[0] != j->L || j->U->shape[4] != j->E || j->U->shape[1] != j->U->shape[2] ||
                j->xa->shape[0] != j->L || j->xa->shape[1] != j->E || j->ya->shape[0] != j->L || j->ya->shape[1] != j->E))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: 'universal' [%d, y, x, size, %d] (a square grid) and the axes [%d, %d] are needed "
                      "for this model", o->ids_path, j->L, j->E, j->L, j->E);
    if (st) return st;
    j->G = (int)j->U->shape[1], j->S = (int)j->U->shape[3];
    j->x.grid = j->G;
    if (o->layer < 0 || o->layer >= j->L)
        return ids__err(err, IDS_ERR_RANGE, "deviation: layer %d is outside 0..%d", o->layer, j->L - 1);
    j->h = ids__malloc(sizeof(float) * 2 * (size_t)j->L * j->E);
    j->hooks = ids__calloc((size_t)j->L, sizeof *j->hooks);
    j->rec = ids__malloc(sizeof(float) * (3 + 4 * (size_t)j->L));
    if (!j->h || !j->hooks || !j->rec) return ids__err(err, IDS_ERR_NOMEM, "deviation: out of memory");
    return ids__exp_ctx(&j->x, 1, 0, false, &j->ctx, err);
}

ids_status ids__deviation_prov(const ids_vlm *v, const ids_catalog *cat, const ids_deviation_opts *o, ids_prov **out,
                               ids_err *err) {
    ids__exp x;
    *out = NULL;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 2, 2, "deviation", NULL, NULL, err);
    if (!st) st = ids__exp_prov(&x, "deviation", out, err);
    if (!st && o->ids_path) st = ids_prov_input(*out, "ids", o->ids_path, err);
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
        return st;
    }
    ids_prov_opt_int(*out, "layer", o->layer);
    return IDS_OK;
}

ids_status ids_deviation(const ids_vlm *v, const ids_catalog *cat, const ids_deviation_opts *o, ids_deviation_result *out,
                         ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    dev_job j = {.out = out};
    ids_status st = ids__deviation_prov(v, cat, o, &out->prov, err);
    if (!st) st = dev_open(&j, v, cat, o, progress, user, err);
    j.x.prov = out->prov; /* the request the kept items answer */
    out->n_layers = j.L, out->grid = j.G;
    if (!st && o->layer > 0) out->layer = o->layer;
    else if (!st) st = best_r2_layer(&j, &out->layer, err);
    /* records with a left/right or above/below question and the subject's box */
    if (!st)
        st = ids__exp_items(&j.x, IDS_SET_GRID, NULL, -1, 41, 1u << IDS_REL_LEFT_RIGHT | 1u << IDS_REL_ABOVE_BELOW,
                            IDS__NEED_POS_A, dev_item, &j, "deviation", &out->set, err);
    if (!st) st = dev_finish(out, err);
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&j.x, st, err);
    if (st) ids_deviation_result_free(out);
    dev_job_free(&j);
    return st;
}

ids_status ids_deviation_write(const char *dir, const ids_deviation_result *r, ids_err *err) {
    bool oom = false;
    const int n = r->n_items, L = r->n_layers;
    cJSON *doc = cJSON_CreateObject(), *mw = NULL, *layers = NULL;
    double *x = ids__malloc(sizeof(double) * (size_t)(n + 1) * 2);
    oom |= !doc || !x || !cJSON_AddStringToObject(doc, "format", "idscope.deviation.v1");
    if (!oom) {
        ids__jadd(doc, "layer", r->layer, 0, &oom);
        ids__jadd(doc, "grid", r->grid, 0, &oom);
        ids__jadd(doc, "items", n, 0, &oom);
        ids__jadd(doc, "right", r->n_right, 0, &oom);
        ids__jadd(doc, "wrong", r->n_wrong, 0, &oom);
        ids__prompting_json(doc, &r->prompting, &oom);
        ids__set_use_json(doc, &r->set, &oom);
        for (int g = 0; g < 2; g++) { /* mean deviation of the items answered right / wrong, with intervals */
            int m = 0;
            double s = 0;
            for (int i = 0; i < n; i++)
                if (r->correct[i] == (g == 0)) s += x[m++] = r->dev[(size_t)i * L + r->layer];
            ids__jadd(doc, g ? "deviation_wrong" : "deviation_right", m ? s / m : NAN, 6, &oom);
            ids__jadd_ci(doc, g ? "deviation_wrong" : "deviation_right", x, m, 51 + (uint64_t)g, &oom);
        }
        oom |= !(mw = cJSON_AddObjectToObject(doc, "mann_whitney"));
    }
    if (mw) {
        oom |= !cJSON_AddStringToObject(mw, "test", "two-sided; deviations of the items answered right vs wrong");
        ids__jadd(mw, "u", r->mw.u, 4, &oom);
        ids__jadd(mw, "u_min", r->mw.u_min, 4, &oom);
        ids__jadd(mw, "z", r->mw.z, 6, &oom);
        ids__jadd(mw, "p", r->mw.p, 8, &oom);
        oom |= !cJSON_AddStringToObject(mw, "method", !r->mw.n1 || !r->mw.n2 ? "not run: a group is empty"
                                                      : r->mw.exact ? "exact"
                                                                    : "normal approximation, tie-corrected, continuity 1/2");
        ids__jadd(mw, "n_right", r->mw.n1, 0, &oom);
        ids__jadd(mw, "n_wrong", r->mw.n2, 0, &oom);
        oom |= !(layers = cJSON_AddArrayToObject(doc, "layers"));
    }
    for (int l = 0; layers && l < L; l++) { /* every layer's mean deviations */
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(layers, o)) {
            cJSON_Delete(o);
            oom = true;
            break;
        }
        ids__jadd(o, "layer", l, 0, &oom);
        for (int g = 0; g < 2; g++) {
            double s = 0;
            int m = 0;
            for (int i = 0; i < n; i++)
                if (r->correct[i] == (g == 0)) s += r->dev[(size_t)i * L + l], m++;
            ids__jadd(o, g ? "wrong" : "right", m ? s / m : NAN, 6, &oom);
        }
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "item,record,correct,grid_x,grid_y,layer,deviation,image_a,image_b,id_a,id_b\n");
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++) {
            ids__tb_printf(&csv, "%d,", i);
            ids__tb_csvstr(&csv, r->item_id[i]);
            ids__tb_printf(&csv, ",%d", r->correct[i]);
            ids__tb_num(&csv, ",", r->gx[i], 4);
            ids__tb_num(&csv, ",", r->gy[i], 4);
            ids__tb_printf(&csv, ",%d", l);
            ids__tb_num(&csv, ",", r->dev[(size_t)i * L + l], 6);
            for (int q = 0; q < 2; q++) ids__tb_num(&csv, ",", r->pos[((size_t)i * L + l) * 2 + q], 6);
            for (int q = 0; q < 2; q++) ids__tb_num(&csv, ",", r->id_pos[((size_t)i * L + l) * 2 + q], 6);
            ids__tb_printf(&csv, "\n");
        }
    ids_status st = csv.oom ? ids__err(err, IDS_ERR_NOMEM, "deviation.csv: out of memory")
                            : ids__write_text(dir, "deviation.csv", csv.p ? csv.p : "", csv.n, err);
    if (!st) st = ids__result_write_as(dir, "deviation.json", doc, r->prov, oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    free(x);
    return st;
}
