/* Blur masking (the paper's Fig. 8B): the named object's box blurred against random boxes of the same
 * size; the change of the true answer's log-probability and of accuracy. */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

/* The pixel range a box covers: pixel i when its centre i + 1/2 lies in [lo, hi), clamped to [0, n). */
static void box_span(float lo, float hi, int n, int *a, int *b) {
    double x0 = ceil((double)lo - 0.5), x1 = ceil((double)hi - 0.5);
    *a = x0 < 0 ? 0 : x0 > n ? n : (int)x0;
    *b = x1 < *a ? *a : x1 > n ? n : (int)x1;
}

void ids_mask_box_pixels(const float box[4], int w, int h, int px[4]) {
    box_span(box[0], box[2], w, &px[0], &px[2]);
    box_span(box[1], box[3], h, &px[1], &px[3]);
}

ids_status ids_image_blur_box(const ids_image *in, const float box[4], float radius, ids_image *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    if (!(radius >= 0) || radius > 4096) return ids__err(err, IDS_ERR_RANGE, "blur: radius %g is outside 0..4096", radius);
    const int w = in->w, h = in->h, r = (int)lround(radius);
    ids_status st = ids_image_new(out, w, h, (const uint8_t[3]){0, 0, 0}, err);
    if (st) return st;
    memcpy(out->rgb, in->rgb, (size_t)w * h * 3);
    int px[4];
    ids_mask_box_pixels(box, w, h, px);
    if (px[0] >= px[2] || px[1] >= px[3] || r == 0) return IDS_OK;
    /* a box filter of window 2r + 1 (edges clamped), horizontal over the rows the box needs, then vertical */
    const int y0 = px[1] - r < 0 ? 0 : px[1] - r, y1 = px[3] + r > h ? h : px[3] + r, bw = px[2] - px[0];
    float *tmp = ids__malloc(sizeof(float) * (size_t)(y1 - y0) * bw * 3);
    if (!tmp) {
        ids_image_free(out);
        return ids__err(err, IDS_ERR_NOMEM, "blur: out of memory for a %d x %d box", bw, y1 - y0);
    }
    for (int y = y0; y < y1; y++)
        for (int x = px[0]; x < px[2]; x++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int d = -r; d <= r; d++) {
                    const int xx = x + d < 0 ? 0 : x + d >= w ? w - 1 : x + d;
                    s += in->rgb[((size_t)y * w + xx) * 3 + c];
                }
                tmp[((size_t)(y - y0) * bw + (x - px[0])) * 3 + c] = (float)(s / (2 * r + 1));
            }
    for (int y = px[1]; y < px[3]; y++)
        for (int x = px[0]; x < px[2]; x++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int d = -r; d <= r; d++) {
                    int yy = y + d < 0 ? 0 : y + d >= h ? h - 1 : y + d;
                    yy = yy < y0 ? y0 : yy >= y1 ? y1 - 1 : yy;
                    s += tmp[((size_t)(yy - y0) * bw + (x - px[0])) * 3 + c];
                }
                out->rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)lround(fmin(255.0, fmax(0.0, s / (2 * r + 1))));
            }
    free(tmp);
    return IDS_OK;
}

void ids_mask_result_free(ids_mask_result *r) {
    free(r->item_id);
    free(r->lp);
    free(r->ok);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

typedef struct {
    ids__exp x;
    const ids_tokenizer *tok;
    const ids_mask_opts *o;
    ids_ctx *ctx;
    ids__answers ans[IDS_REL_COUNT];
    bool ans_made[IDS_REL_COUNT];
    int K, cap; /* variants per item: clean, the object, n_random boxes */
    ids_mask_result *out;
} mask_job;

/* The true answer's log-probability minus the other's (lp_true - lp_false) and log P(true) of one image. */
static ids_status mask_run(mask_job *j, ids_relation rel, const ids__item *it, const ids_image *img, float res[2],
                           ids_err *err) {
    ids__item cp = *it;
    cp.img = img;
    ids_seq *seq = NULL;
    ids_status st = ids__item_seq(&j->x, rel, &cp, &seq, err);
    float raw[IDS__MAX_CAND], lp[2];
    ids_run_opts ro = {.cand = j->ans[rel].cand, .n_cand = j->ans[rel].n_cand};
    ids_run_out oc = {.cand_logprob = raw};
    if (!st) st = ids_ctx_prefill(j->ctx, seq, NULL, 0, &ro, &oc, err);
    ids_seq_free(seq);
    if (st) return st;
    ids_answer_set_reduce(&j->ans[rel].set, raw, lp);
    const int t = it->truth[rel] ? 0 : 1;
    res[0] = lp[t], res[1] = lp[t] - lp[1 - t];
    return IDS_OK;
}

/* The item's record (kept, so that a rerun or a merge adds it again): per variant (clean, the
 * object's box, the random boxes) log P(true) and D toward the truth, 2 K floats. The random boxes
 * come from the seed and the item's number alone (the same in any shard). */
static ids_status mask_compute(mask_job *j, ids_relation rel, const ids__item *it, float *lp, ids_err *err) {
    const float scale = (float)it->img->w / 336.0f, bw = it->box[0][2] - it->box[0][0], bh = it->box[0][3] - it->box[0][1];
    const float radius = j->o->radius * scale;
    uint64_t s = j->x.seed * 0x9E3779B97F4A7C15ull + 0xB1 + (uint64_t)j->x.item * 0xD1B54A32D192ED03ull;
    uint64_t rng = ids__rng_splitmix(&s);
    ids_status st = IDS_OK;
    for (int k = 0; !st && k < j->K; k++) { /* 0 clean, 1 the object's box, 2.. random boxes of its size */
        float box[4];
        memcpy(box, it->box[0], sizeof box);
        if (k >= 2) {
            const double fx = ids__rng_unit(ids__lcg(&rng)), fy = ids__rng_unit(ids__lcg(&rng));
            box[0] = (float)(fx * fmax(0.0, it->img->w - bw)), box[1] = (float)(fy * fmax(0.0, it->img->h - bh));
            box[2] = box[0] + bw, box[3] = box[1] + bh;
        }
        ids_image b = {0};
        if (k > 0) st = ids_image_blur_box(it->img, box, radius, &b, err);
        if (!st) st = mask_run(j, rel, it, k ? &b : it->img, lp + 2 * k, err);
        ids_image_free(&b);
    }
    return st;
}

static ids_status mask_item(void *user, const ids__item *it, ids_err *err) {
    mask_job *j = user;
    ids_mask_result *r = j->out;
    const ids_relation rel = it->has[IDS_REL_LEFT_RIGHT] ? IDS_REL_LEFT_RIGHT : IDS_REL_ABOVE_BELOW;
    ids_status st = IDS_OK;
    if (!j->ans_made[rel]) {
        if ((st = ids__answers_init(&j->ans[rel], j->tok, rel, err))) return st;
        j->ans_made[rel] = true;
        ids__prompting_add(&r->prompting, j->x.instruction, &j->ans[rel].set);
    }
    if (r->n_items >= j->cap) {
        const int nc = j->cap ? 2 * j->cap : 16;
        void *p[3] = {ids__realloc(r->item_id, sizeof *r->item_id * (size_t)nc), ids__realloc(r->lp, sizeof(float) * 2 * (size_t)nc * j->K),
                      ids__realloc(r->ok, (size_t)nc * j->K)};
        if (p[0]) r->item_id = p[0];
        if (p[1]) r->lp = p[1];
        if (p[2]) r->ok = p[2];
        if (!p[0] || !p[1] || !p[2]) return ids__err(err, IDS_ERR_NOMEM, "mask: out of memory for %d items", nc);
        j->cap = nc;
    }
    float *lp = r->lp + (size_t)r->n_items * j->K * 2;
    const size_t rec_len = sizeof(float) * 2 * (size_t)j->K;
    const void *kept = NULL;
    size_t kept_len = 0;
    st = ids__item_find(&j->x, &kept, &kept_len, err);
    if (!st && kept && kept_len != rec_len)
        st = ids__err(err, IDS_ERR_FORMAT, "mask: kept item %ld has %zu bytes, %zu expected", j->x.item, kept_len, rec_len);
    if (!st && kept) memcpy(lp, kept, rec_len);
    else if (!st && !(st = mask_compute(j, rel, it, lp, err))) st = ids__item_keep(&j->x, lp, rec_len, err);
    if (st) return it->id && *it->id ? ids__err_prefix(err, st, "record '%s'", it->id) : st;
    unsigned char *ok = r->ok + (size_t)r->n_items * j->K;
    for (int k = 0; k < j->K; k++) ok[k] = lp[2 * k + 1] > 0;
    snprintf(r->item_id[r->n_items], sizeof *r->item_id, "%s", it->id ? it->id : "");
    r->n_items++;
    return IDS_OK;
}

ids_status ids__mask_prov(const ids_vlm *v, const ids_catalog *cat, const ids_mask_opts *o, ids_prov **out, ids_err *err) {
    ids__exp x;
    *out = NULL;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 2, 2, "mask", NULL, NULL, err);
    if (!st) st = ids__exp_prov(&x, "mask", out, err);
    if (st) return st;
    ids_prov_opt_num(*out, "radius", o->radius > 0 ? o->radius : IDS_MASK_RADIUS);
    ids_prov_opt_int(*out, "random_boxes", o->n_random > 0 ? o->n_random : IDS_MASK_RANDOM);
    return IDS_OK;
}

ids_status ids_mask(const ids_vlm *v, const ids_catalog *cat, const ids_mask_opts *o, ids_mask_result *out,
                    ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    ids_mask_opts oo = *o;
    if (!(oo.radius > 0)) oo.radius = IDS_MASK_RADIUS;
    if (oo.n_random <= 0) oo.n_random = IDS_MASK_RANDOM;
    mask_job j = {.o = &oo, .out = out, .K = 2 + oo.n_random};
    j.tok = ids_model_tokenizer(ids_vlm_model(v));
    ids_status st = ids__mask_prov(v, cat, o, &out->prov, err);
    if (!st) st = ids__exp_init(&j.x, &o->exp, v, cat, 2, 2, "mask", progress, user, err);
    if (!st && !j.x.set_manifest[0]) st = ids__err(err, IDS_ERR_ARG, "mask: an image set with boxes is needed (--set DIR)");
    if (!st && oo.n_random > 256) st = ids__err(err, IDS_ERR_RANGE, "mask: %d random boxes (at most 256)", oo.n_random);
    if (!st) st = ids__exp_ctx(&j.x, 1, 0, false, &j.ctx, err);
    out->radius = oo.radius, out->n_random = oo.n_random;
    j.x.prov = out->prov; /* the request the kept items answer */
    if (!st)
        st = ids__exp_items(&j.x, IDS_SET_GRID, NULL, -1, 43, 1u << IDS_REL_LEFT_RIGHT | 1u << IDS_REL_ABOVE_BELOW,
                            IDS__NEED_POS_A, mask_item, &j, "mask", &out->set, err);
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&j.x, st, err);
    if (st) ids_mask_result_free(out);
    ids_ctx_free(j.ctx);
    return st;
}

/* Per item: the mean over its random boxes of lp[q] (q 0: log P(true), 1: D toward the truth) or of ok. */
static double rand_mean(const ids_mask_result *r, int i, int q) {
    const int K = 2 + r->n_random;
    double s = 0;
    for (int k = 2; k < K; k++) s += q < 2 ? r->lp[((size_t)i * K + k) * 2 + q] : r->ok[(size_t)i * K + k];
    return s / r->n_random;
}

ids_status ids_mask_write(const char *dir, const ids_mask_result *r, ids_err *err) {
    bool oom = false;
    const int n = r->n_items, K = 2 + r->n_random;
    cJSON *doc = cJSON_CreateObject();
    double *x = ids__malloc(sizeof(double) * (size_t)(n + 1));
    oom |= !doc || !x || !cJSON_AddStringToObject(doc, "format", "idscope.mask.v1");
    static const char *const cond[3] = {"clean", "object", "random"};
    if (!oom) {
        ids__jadd(doc, "radius_at_336", r->radius, 4, &oom);
        ids__jadd(doc, "random_boxes", r->n_random, 0, &oom);
        ids__jadd(doc, "items", n, 0, &oom);
        oom |= !cJSON_AddStringToObject(doc, "blur", "box filter of window 2 r + 1 (r = radius x image width / 336), "
                                                     "applied to the box's pixels only");
        ids__prompting_json(doc, &r->prompting, &oom);
        ids__set_use_json(doc, &r->set, &oom);
    }
    for (int c = 0; !oom && c < 3; c++) { /* accuracy and, against the clean image, the changes */
        cJSON *o = cJSON_AddObjectToObject(doc, cond[c]);
        if (!o) {
            oom = true;
            break;
        }
        double s = 0;
        for (int i = 0; i < n; i++) s += x[i] = c < 2 ? r->ok[(size_t)i * K + c] : rand_mean(r, i, 2);
        ids__jadd(o, "accuracy", n ? s / n : NAN, 4, &oom);
        ids__jadd_ci(o, "accuracy", x, n, 61 + (uint64_t)c, &oom);
        for (int q = 0; c > 0 && q < 2; q++) {
            const char *key = q ? "d_true_change" : "logp_true_change";
            s = 0;
            for (int i = 0; i < n; i++)
                s += x[i] = (c == 1 ? r->lp[((size_t)i * K + 1) * 2 + q] : rand_mean(r, i, q)) - r->lp[(size_t)i * K * 2 + q];
            ids__jadd(o, key, n ? s / n : NAN, 6, &oom);
            ids__jadd_ci(o, key, x, n, 64 + (uint64_t)(c * 2 + q), &oom);
        }
    }
    if (!oom) { /* the object against random boxes, paired per item */
        double s = 0;
        for (int i = 0; i < n; i++) s += x[i] = r->lp[((size_t)i * K + 1) * 2] - rand_mean(r, i, 0);
        ids__jadd(doc, "object_minus_random_logp", n ? s / n : NAN, 6, &oom);
        ids__jadd_ci(doc, "object_minus_random_logp", x, n, 69, &oom);
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "item,record,variant,logp_true,d_true,correct\n");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) {
            ids__tb_printf(&csv, "%d,", i);
            ids__tb_csvstr(&csv, r->item_id[i]);
            if (k < 2) ids__tb_printf(&csv, ",%s", cond[k]);
            else ids__tb_printf(&csv, ",random%d", k - 2);
            ids__tb_num(&csv, ",", r->lp[((size_t)i * K + k) * 2], 6);
            ids__tb_num(&csv, ",", r->lp[((size_t)i * K + k) * 2 + 1], 6);
            ids__tb_printf(&csv, ",%d\n", r->ok[(size_t)i * K + k]);
        }
    ids_status st = csv.oom ? ids__err(err, IDS_ERR_NOMEM, "mask.csv: out of memory")
                            : ids__write_text(dir, "mask.csv", csv.p ? csv.p : "", csv.n, err);
    if (!st) st = ids__result_write_as(dir, "mask.json", doc, r->prov, oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    free(x);
    return st;
}
