/* Mirror / attribute swapping by activation patching (docs/EXPERIMENTS.md). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>

static const char *const k_sets[IDS_SWAP_SET_COUNT] = {"image", "text", "objects"};
const char *ids_swap_set_name(ids_swap_set s) { return s < IDS_SWAP_SET_COUNT ? k_sets[s] : NULL; }

void ids_swap_result_free(ids_swap_result *r) {
    free(r->left);
    free(r->right);
    free(r->diff);
    free(r->diff_pooled);
    free(r->item_diff);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

static ids_status swap_sets(const ids_seq *sc, const ids_tokenizer *tok, const char *word_a, const char *word_b,
                          int **setrows, int *nset, ids_err *err) {
    ids_status st = IDS_OK;
    for (int k = 0; !st && k < IDS_SWAP_SET_COUNT; k++) {
        free(setrows[k]);
        setrows[k] = NULL;
        nset[k] = 0;
        if (k == IDS_SWAP_IMAGE) {
            ids_sel sel = {.kind = IDS_SEL_IMAGE, .image = -1};
            st = ids_sel_resolve(sc, tok, &sel, &setrows[k], &nset[k], err);
        } else if (k == IDS_SWAP_TEXT) {
            ids_sel sel = {.kind = IDS_SEL_TEXT};
            st = ids_sel_resolve(sc, tok, &sel, &setrows[k], &nset[k], err);
        } else {
            int r[2];
            st = ids__object_rows(sc, tok, word_a, word_b, r, err);
            if (!st && !(setrows[k] = ids__malloc(sizeof(int) * 2))) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
            if (!st) {
                setrows[k][0] = r[0];
                setrows[k][1] = r[1];
                nset[k] = 2;
            }
        }
    }
    return st;
}

/* One item's record rec[2 + 4 * NV]: [0] used (1) or skipped (0), [1] its |effect| (pooled denominator),
 * then per variant the recovered fractions of the first answer, the second, the difference, and
 * the signed pooled numerator ([2 + k * NV + vi]); the patcher adds records in item order. */
static ids_status patch_item(ids_ctx *ctx, ids_ctx *ctx_edit, const ids_seq *sc, const ids_seq *se, int L, int E, int NS,
                           int *const *setrows, const int *nset, const ids__answers *ans, double *rec, ids_err *err) {
    const int n = ids_seq_len(sc), NV = L * NS;
    if (ids_seq_len(se) != n)
        return ids__err(err, IDS_ERR_ARG, "patching: the edited sequence has %d rows, the clean one %d", ids_seq_len(se), n);
    float *rows = ids__malloc(sizeof(float) * (size_t)L * n * E), *lp = ids__malloc(sizeof(float) * 2 * (size_t)NV);
    float *lpraw = ids__malloc(sizeof(float) * IDS__MAX_CAND * (size_t)NV);
    ids_hook *caps = ids__calloc((size_t)L, sizeof *caps), *hooks = ids__calloc((size_t)NV, sizeof *hooks);
    ids_variant *vars = ids__calloc((size_t)NV, sizeof *vars);
    ids_run_out *outs = ids__calloc((size_t)NV, sizeof *outs);
    float **srcs = ids__calloc((size_t)NV, sizeof(float *));
    ids_status st = IDS_OK;
    if (!rows || !lp || !lpraw || !caps || !hooks || !vars || !outs || !srcs) st = ids__err(err, IDS_ERR_NOMEM, "patching: out of memory");
    /* edited run: capture every layer's stream at every row */
    for (int l = 0; !st && l < L; l++)
        caps[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = {.kind = IDS_SEL_ALL},
                             .out = rows + (size_t)l * n * E, .len = (size_t)n * E};
    float lpc[2], lpe[2], rawc[IDS__MAX_CAND], rawe[IDS__MAX_CAND];
    ids_run_opts ro = {.cand = ans->cand, .n_cand = ans->n_cand};
    ids_run_out oe = {.cand_logprob = rawe}, oc = {.cand_logprob = rawc};
    if (!st) st = ids_ctx_prefill(ctx_edit, se, caps, L, &ro, &oe, err);
    if (!st) st = ids_ctx_prefill(ctx, sc, NULL, 0, &ro, &oc, err);
    if (!st) {
        ids_answer_set_reduce(&ans->set, rawc, lpc);
        ids_answer_set_reduce(&ans->set, rawe, lpe);
    }
    /* one variant per (layer, set), all in one batched pass over the clean cache */
    for (int l = 0; !st && l < L; l++)
        for (int k = 0; !st && k < NS; k++) {
            const int vi = l * NS + k;
            if (!(srcs[vi] = ids__malloc(sizeof(float) * (size_t)(nset[k] ? nset[k] : 1) * E))) {
                st = ids__err(err, IDS_ERR_NOMEM, "patching: out of memory");
                break;
            }
            for (int r = 0; r < nset[k]; r++)
                memcpy(srcs[vi] + (size_t)r * E, rows + ((size_t)l * n + setrows[k][r]) * E, sizeof(float) * (size_t)E);
            hooks[vi] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .action = IDS_ACT_REPLACE,
                                   .sel = {.kind = IDS_SEL_LIST, .list = setrows[k], .n_list = nset[k]},
                                   .src = srcs[vi], .len = (size_t)nset[k] * E};
            vars[vi] = (ids_variant){&hooks[vi], 1};
            outs[vi] = (ids_run_out){.cand_logprob = lpraw + (size_t)IDS__MAX_CAND * vi};
        }
    if (!st) st = ids_ctx_run_batch(ctx, vars, NV, &ro, outs, err);
    for (int vi = 0; !st && vi < NV; vi++) ids_answer_set_reduce(&ans->set, lpraw + (size_t)IDS__MAX_CAND * vi, lp + 2 * vi);
    if (!st) {
        const double dl = lpc[0] - lpe[0], dr = lpc[1] - lpe[1], dd = (lpc[0] - lpc[1]) - (lpe[0] - lpe[1]);
        if (fabs(dd) >= 1e-3) {
            double *acc[4] = {rec + 2, rec + 2 + NV, rec + 2 + 2 * (size_t)NV, rec + 2 + 3 * (size_t)NV};
            for (int vi = 0; vi < NV; vi++) {
                const float *p = lp + 2 * vi;
                acc[0][vi] = fabs(dl) > 1e-9 ? (lpc[0] - p[0]) / dl : 0;
                acc[1][vi] = fabs(dr) > 1e-9 ? (lpc[1] - p[1]) / dr : 0;
                acc[2][vi] = ((lpc[0] - lpc[1]) - (p[0] - p[1])) / dd;
                acc[3][vi] = (dd > 0 ? 1 : -1) * ((lpc[0] - lpc[1]) - (p[0] - p[1])); /* pooled: over sum |dd| */
            }
            rec[1] = fabs(dd);
            rec[0] = 1;
        }
    }
    for (int vi = 0; srcs && vi < NV; vi++) free(srcs[vi]);
    free(srcs);
    free(rows);
    free(lp);
    free(lpraw);
    free(caps);
    free(hooks);
    free(vars);
    free(outs);
    return st;
}

ids_status ids__patcher_init(ids__patcher *p, const ids__exp *x, ids_relation rel, int n_img, int max_rows, ids_err *err) {
    memset(p, 0, sizeof *p);
    const ids_model *m = ids_vlm_model(x->v);
    p->v = x->v;
    p->tok = ids_model_tokenizer(m);
    p->L = ids_model_hparams(m)->n_layer + 1;
    p->E = ids_model_hparams(m)->n_embd;
    p->n_threads = x->n_threads;
    ids_status st = ids__answers_init(&p->ans, p->tok, rel, err);
    if (st) return st;
    const int NV = p->L * IDS_SWAP_SET_COUNT;
    p->x = (ids__exp *)x; /* its kept items (the loop's item number and the store) */
    for (int k = 0; k < 4; k++)
        if (!(p->acc[k] = ids__calloc((size_t)NV, sizeof(double)))) return ids__err(err, IDS_ERR_NOMEM, "patching: out of memory");
    if (!(p->rec = ids__calloc(2 + 4 * (size_t)NV, sizeof(double)))) return ids__err(err, IDS_ERR_NOMEM, "patching: out of memory");
    st = ids__exp_ctx(x, n_img, max_rows, true, &p->ctx, err);
    if (!st) st = ids__exp_ctx(x, n_img, max_rows, false, &p->ctx_edit, err);
    return st;
}

/* An item's record into the sums and the per-item fractions of the difference (in item order: the
 * same sums, intervals and per-item rows from kept, merged or fresh items). */
static ids_status patcher_add(ids__patcher *p, const double *rec, ids_err *err) {
    const int NV = p->L * IDS_SWAP_SET_COUNT;
    if (rec[0] == 0) {
        p->n_skipped++;
        return IDS_OK;
    }
    if (p->n_items >= p->item_cap) { /* the item's own fractions, kept for intervals */
        const int nc = p->item_cap ? 2 * p->item_cap : 16;
        float *q = ids__realloc(p->item_diff, sizeof(float) * (size_t)nc * NV);
        if (!q) return ids__err(err, IDS_ERR_NOMEM, "patching: out of memory for %d items", nc);
        p->item_diff = q, p->item_cap = nc;
    }
    for (int k = 0; k < 4; k++)
        for (int vi = 0; vi < NV; vi++) p->acc[k][vi] += rec[2 + (size_t)k * NV + vi];
    for (int vi = 0; vi < NV; vi++) { /* a fraction of exactly 0 (nothing recovered) as +0, not -0 when the effect is negative */
        const double f = rec[2 + 2 * (size_t)NV + vi];
        p->item_diff[(size_t)p->n_items * NV + vi] = f == 0 ? 0.0f : (float)f;
    }
    p->pooled_den += rec[1];
    p->n_items++;
    return IDS_OK;
}

ids_status ids__patcher_item(ids__patcher *p, const ids_image *clean, const ids_image *edited, int n_img, const char *prompt,
                             const char *word_a, const char *word_b, ids_err *err) {
    const size_t rec_len = sizeof(double) * (2 + 4 * (size_t)p->L * IDS_SWAP_SET_COUNT);
    const void *kept = NULL;
    size_t kept_len = 0;
    ids_status st = ids__item_find(p->x, &kept, &kept_len, err);
    if (!st && kept && kept_len != rec_len)
        st = ids__err(err, IDS_ERR_FORMAT, "patching: kept item %ld has %zu bytes, %zu expected", p->x->item, kept_len, rec_len);
    if (!st && kept) memcpy(p->rec, kept, rec_len);
    if (st || kept) return st ? st : patcher_add(p, p->rec, err);
    memset(p->rec, 0, rec_len);
    ids_seq *sc = NULL, *se = NULL;
    const int vf = strstr(prompt, IDS_VIDEO_MARKER) ? n_img : 0; /* a video prompt: all images are its frames */
    st = ids_vlm_build_video_seq(p->v, prompt, clean, n_img, vf, p->n_threads, NULL, &sc, err);
    if (!st) st = ids_vlm_build_video_seq(p->v, prompt, edited, n_img, vf, p->n_threads, NULL, &se, err);
    if (!st) st = swap_sets(sc, p->tok, word_a, word_b, p->setrows, p->nset, err);
    if (!st) st = patch_item(p->ctx, p->ctx_edit, sc, se, p->L, p->E, IDS_SWAP_SET_COUNT, p->setrows, p->nset, &p->ans, p->rec, err);
    if (!st) st = ids__item_keep(p->x, p->rec, rec_len, err);
    if (!st) st = patcher_add(p, p->rec, err);
    ids_seq_free(sc);
    ids_seq_free(se);
    return st;
}

ids_status ids__patcher_means(const ids__patcher *p, float **first, float **second, float **diff, float **pooled,
                              ids_err *err) {
    const int NV = p->L * IDS_SWAP_SET_COUNT;
    float *r[4];
    for (int k = 0; k < 4; k++) r[k] = ids__malloc(sizeof(float) * (size_t)NV);
    if (!r[0] || !r[1] || !r[2] || !r[3]) {
        for (int k = 0; k < 4; k++) free(r[k]);
        return ids__err(err, IDS_ERR_NOMEM, "patching: out of memory");
    }
    const double n = p->n_items ? p->n_items : 1, den = p->pooled_den > 0 ? p->pooled_den : 1;
    for (int k = 0; k < 3; k++)
        for (int vi = 0; vi < NV; vi++) r[k][vi] = (float)(p->acc[k][vi] / n);
    for (int vi = 0; vi < NV; vi++) r[3][vi] = (float)(p->acc[3][vi] / den);
    *first = r[0], *second = r[1], *diff = r[2], *pooled = r[3];
    return IDS_OK;
}

void ids__patcher_free(ids__patcher *p) {
    for (int k = 0; k < IDS_SWAP_SET_COUNT; k++) free(p->setrows[k]);
    for (int k = 0; k < 4; k++) free(p->acc[k]);
    free(p->item_diff);
    free(p->rec);
    ids_ctx_free(p->ctx);
    ids_ctx_free(p->ctx_edit);
    memset(p, 0, sizeof *p);
}

typedef struct {
    ids__patcher *p;
    const ids__exp *x;
    const ids_stim_opts *so;
    bool control, hue;
    uint64_t hue_seed, hue_rng; /* the hue shift's gradient per image (from the seed and the item number) */
} swap_job;

static ids_status swap_item(void *user, const ids__item *it, ids_err *err) {
    swap_job *j = user;
    ids_stim e = {0};
    ids_image edited = {0};
    ids_status st = IDS_OK;
    if (j->control && !j->hue && !it->stim)
        return ids__err(err, IDS_ERR_ARG, "swap --control recolours the named objects of scenes drawn by the stimulus engine; "
                        "record '%s' of an image set has none (--hue shifts the hue of any image)", it->id);
    if (j->hue) { /* the whole image's hue shifted along a random rainbow gradient, drawn per item number */
        uint64_t z = j->hue_seed + (uint64_t)j->x->item * 0x9E3779B97F4A7C15ull;
        j->hue_rng = ids__rng_splitmix(&z);
        const double theta = 2 * M_PI * ids__rng_unit(ids__lcg(&j->hue_rng)); /* the paper's ranges */
        const double freq = 0.8 + 1.7 * ids__rng_unit(ids__lcg(&j->hue_rng));
        const double phase = ids__rng_unit(ids__lcg(&j->hue_rng));
        st = ids_image_new(&edited, it->img->w, it->img->h, (const uint8_t[3]){0, 0, 0}, err);
        if (!st) {
            memcpy(edited.rgb, it->img->rgb, (size_t)it->img->w * it->img->h * 3);
            ids_image_hue_shift(&edited, theta, freq, phase);
        }
    } else if (it->stim) { /* a drawn scene: its mirror or recoloured copy from the placements */
        st = j->control ? ids_stim_recolor(it->stim, j->so, j->x->cat, &e, err) : ids_stim_mirror(it->stim, &e, err);
    } else { /* an image of a set: its pixels mirrored */
        st = ids_image_new(&edited, it->img->w, it->img->h, (const uint8_t[3]){0, 0, 0}, err);
        if (!st) {
            memcpy(edited.rgb, it->img->rgb, (size_t)it->img->w * it->img->h * 3);
            ids_image_mirror(&edited);
        }
    }
    if (st) return st;
    char *prompt = ids__exp_prompt(j->x, IDS_REL_LEFT_RIGHT, it->name[0], it->name[1], NULL, 1);
    st = prompt ? ids__patcher_item(j->p, it->img, it->stim && !j->hue ? &e.frames[0] : &edited, 1, prompt, it->word[0], it->word[1],
                                    err)
                : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (st && *it->id) ids__err_prefix(err, st, "record '%s'", it->id);
    free(prompt);
    ids_stim_free(&e);
    ids_image_free(&edited);
    return st;
}

ids_status ids__swap_prov(const ids__exp *x, bool control, bool hue, ids_prov **out, ids_err *err) {
    ids_status st = ids__exp_prov(x, control ? (hue ? "swap --hue" : "swap --control") : "swap", out, err);
    if (!st) ids_prov_opt_int(*out, "bootstrap", IDS_BOOT_DEFAULT); /* the intervals' resamples */
    return st;
}

ids_status ids_swap_run(const ids_vlm *v, const ids_catalog *cat, const ids_swap_opts *o, bool control,
                        ids_swap_result *out, ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    ids__exp x;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 2, 2, "swap", progress, user, err);
    const bool hue = o->hue;
    if (!st) st = ids__swap_prov(&x, control || hue, hue, &out->prov, err);
    if (st) return st;
    control |= hue;
    out->control = control, out->hue = hue;
    ids_stim_opts so;
    ids__exp_stim_opts(&x, &so);
    ids__patcher p;
    st = ids__patcher_init(&p, &x, IDS_REL_LEFT_RIGHT, 1, 4096, err);
    if (!st) ids__prompting_add(&out->prompting, x.instruction, &p.ans.set);
    swap_job job = {&p, &x, &so, control, hue, x.seed * 0x9E3779B97F4A7C15ull + 0x4875, 0};
    if (!st) /* the mirror changes the left/right answer: records asked it */
        st = ids__exp_items(&x, IDS_SET_GRID, &so, IDS_REL_LEFT_RIGHT, 0, 1u << IDS_REL_LEFT_RIGHT, 0, swap_item, &job,
                            hue ? "swap (hue-shift control)" : control ? "swap (attribute control)" : "swap (mirror)", &out->set, err);
    if (!st) st = ids__patcher_means(&p, &out->left, &out->right, &out->diff, &out->diff_pooled, err);
    if (!st) {
        out->n_layers = p.L;
        out->n_items = p.n_items;
        out->n_skipped = p.n_skipped;
        out->item_diff = p.item_diff, p.item_diff = NULL;
        ids_prov_finish(out->prov);
    }
    st = ids__exp_end(&x, st, err);
    ids__patcher_free(&p);
    if (st) ids_swap_result_free(out);
    return st;
}
