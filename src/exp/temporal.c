/* Temporal IDs (docs/EXPERIMENTS.md): extraction from synthetic videos in which two objects appear
 * at different frames, time-reversal patching, and steering with temporal-ID differences. A video
 * is one image block per frame, in order, so every row knows its frame (ids_row.image). */
#define _POSIX_C_SOURCE 200809L
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

void ids_temporal_result_free(ids_temporal_swap_result *r) {
    free(r->first);
    free(r->second);
    free(r->diff);
    free(r->diff_pooled);
    free(r->item_diff);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

void ids_temporal_steer_result_free(ids_temporal_steer_result *r) {
    free(r->d_before);
    free(r->d_after);
    free(r->rho_after);
    free(r->item_after);
    free(r->ctl_after[0]);
    free(r->ctl_after[1]);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

static int frames_of(const ids_temporal_opts *o) { return o->frames > 0 ? o->frames : 8; }

void ids_video_reverse(const ids_image *in, int n, ids_image *out) {
    for (int k = 0; k < n; k++) out[k] = in[n - 1 - k];
}

/* ---- statistics ---- */

/* ids_spearman: src/base/stats.c */

ids_status ids_temporal_layer_stats(const float *tids, int F, int E, float *coord, double *pc1_var, double *spearman,
                                    ids_err *err) {
    if (F < 2 || F > 64 || E < 1) return ids__err(err, IDS_ERR_ARG, "temporal statistics: %d frames of width %d (2..64 frames)", F, E);
    double *c = ids__calloc((size_t)F * E, sizeof(double));
    if (!c) return ids__err(err, IDS_ERR_NOMEM, "temporal statistics: out of memory for %d frames of width %d", F, E);
    double tot = 0;
    for (int e = 0; e < E; e++) {
        double m = 0;
        for (int k = 0; k < F; k++) m += tids[(size_t)k * E + e];
        m /= F;
        for (int k = 0; k < F; k++) {
            c[(size_t)k * E + e] = tids[(size_t)k * E + e] - m;
            tot += c[(size_t)k * E + e] * c[(size_t)k * E + e];
        }
    }
    double gram[64 * 64], vec[64], lam = 0;
    for (int i = 0; i < F; i++)
        for (int j = 0; j < F; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += c[(size_t)i * E + e] * c[(size_t)j * E + e];
            gram[i * F + j] = s;
        }
    /* top eigenvector by power iteration from a fixed start */
    for (int i = 0; i < F; i++) vec[i] = 1.0 + 0.01 * i;
    for (int it = 0; it < 1000; it++) {
        double nv[64] = {0}, norm = 0;
        for (int i = 0; i < F; i++)
            for (int j = 0; j < F; j++) nv[i] += gram[i * F + j] * vec[j];
        for (int i = 0; i < F; i++) norm += nv[i] * nv[i];
        norm = sqrt(norm);
        if (norm == 0) break;
        for (int i = 0; i < F; i++) vec[i] = nv[i] / norm;
        lam = norm;
    }
    const double sgn = vec[F - 1] >= vec[0] ? 1.0 : -1.0; /* the last frame to the right of the first */
    double idx[64], co[64];
    for (int k = 0; k < F; k++) {
        co[k] = tot > 0 ? sgn * sqrt(lam) * vec[k] : 0;
        idx[k] = k;
        if (coord) coord[k] = (float)co[k];
    }
    *pc1_var = tot > 0 ? lam / tot : 0;
    *spearman = tot > 0 ? ids_spearman(co, idx, F) : NAN;
    free(c);
    return IDS_OK;
}

/* ---- extraction ---- */

static ids_status temporal_prov(const ids__exp *x, const char *command, int T, ids_prov **out, ids_err *err) {
    ids_status st = ids__exp_prov(x, command, out, err);
    if (!st) ids_prov_opt_int(*out, "frames", T);
    if (!st && strcmp(command, "temporal extract")) ids_prov_opt_int(*out, "bootstrap", IDS_BOOT_DEFAULT); /* intervals */
    return st;
}

/* The object words' rows at every layer, averaged per appearance frame within each ordered pair and
 * then over pairs: sum[F][L][E]. */
static ids_status extract_means(ids__exp *x, ids_stim_opts *so, int n_items, int L, int E, int F, double *sum, ids_err *err) {
    const size_t LE = (size_t)L * E;
    const int P = x->n_obj * (x->n_obj - 1);
    double *pair = ids__calloc((size_t)F * LE, sizeof(double));
    int *cnt = ids__calloc((size_t)F, sizeof(int));
    float *rowbuf = ids__malloc(sizeof(float) * 2 * LE);
    ids_hook *hooks = ids__calloc((size_t)2 * L, sizeof *hooks);
    ids_ctx *ctx = NULL;
    ids_status st = !pair || !cnt || !rowbuf || !hooks ? ids__err(err, IDS_ERR_NOMEM, "temporal extract: out of memory") : IDS_OK;
    if (!st) st = ids__exp_ctx(x, so->frames, 8192, false, &ctx, err);
    x->total = (long)P * n_items;
    for (int a = 0; a < x->n_obj && !st; a++)
        for (int b = 0; b < x->n_obj && !st; b++) {
            if (a == b) continue;
            int objs[2] = {x->objs[a], x->objs[b]};
            so->objects = objs;
            so->n_objects = 2;
            ids_sel w[2] = {{.kind = IDS_SEL_WORD, .word = ids_catalog_word(x->cat, objs[0]), .after_image = true},
                            {.kind = IDS_SEL_WORD, .word = ids_catalog_word(x->cat, objs[1]), .after_image = true}};
            for (int k = 0; k < 2; k++)
                for (int l = 0; l < L; l++)
                    hooks[k * L + l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = w[k], .action = IDS_ACT_CAPTURE,
                                                  .out = rowbuf + k * LE + (size_t)l * E, .len = (size_t)E};
            memset(pair, 0, sizeof(double) * (size_t)F * LE);
            memset(cnt, 0, sizeof(int) * (size_t)F);
            for (int idx = 0; idx < n_items && !st; idx++) {
                if (!ids__item_mine(x, x->done)) { /* another shard's */
                    x->done++;
                    continue;
                }
                x->item = x->done;
                ids_stim s;
                if ((st = ids_stim_make(IDS_SET_VIDEO, so, x->cat, idx, &s, err))) break;
                ids_seq *seq = NULL;
                const void *kept = NULL;
                size_t kept_len = 0;
                st = ids__item_find(x, &kept, &kept_len, err);
                if (!st && kept && kept_len != sizeof(float) * 2 * LE)
                    st = ids__err(err, IDS_ERR_FORMAT, "temporal extract: kept item %ld has %zu bytes, %zu expected", x->item,
                                  kept_len, sizeof(float) * 2 * LE);
                if (!st && kept) memcpy(rowbuf, kept, sizeof(float) * 2 * LE);
                if (!st && !kept) st = ids__question_seq(x, IDS_REL_BEFORE_AFTER, &s, s.frames, s.n_frames, &seq, err);
                int rows[2];
                if (!st && !kept) st = ids__object_rows(seq, ids_model_tokenizer(ids_vlm_model(x->v)), w[0].word, w[1].word, rows, err);
                if (!st && !kept) st = ids_ctx_prefill(ctx, seq, hooks, 2 * L, NULL, NULL, err);
                if (!st && !kept) st = ids__item_keep(x, rowbuf, sizeof(float) * 2 * LE, err);
                for (int k = 0; !st && k < 2; k++) { /* each word under its object's appearance frame */
                    const int f = s.obj[k].appear - 1;
                    if (f < 0 || f >= F) {
                        st = ids__err(err, IDS_ERR_FORMAT, "temporal extract: video %d: object appears at frame %d, outside 1..%d",
                                      idx, f + 1, F);
                        break;
                    }
                    double *dst = pair + (size_t)f * LE;
                    const float *src = rowbuf + k * LE;
                    for (size_t i = 0; i < LE; i++) dst[i] += src[i];
                    cnt[f]++;
                }
                ids_seq_free(seq);
                ids_stim_free(&s);
                x->done++;
                if (x->progress && (x->done % 10 == 0 || x->done == x->total))
                    x->progress("temporal extract", x->done, x->total, x->puser);
            }
            for (int f = 0; !st && f < F; f++) /* this pair's mean per frame, added to the mean over pairs */
                for (size_t i = 0; i < LE; i++) sum[(size_t)f * LE + i] += pair[(size_t)f * LE + i] / (cnt[f] ? cnt[f] : 1) / P;
        }
    so->objects = NULL;
    ids_ctx_free(ctx);
    free(pair);
    free(cnt);
    free(rowbuf);
    free(hooks);
    return st;
}

/* Mean-centre over frames into tid [L][F][E]; time axis [L][E] = least-squares slope in the frame index. */
static void extract_centre(const double *sum, int L, int E, int F, float *tid, float *axis) {
    const size_t LE = (size_t)L * E;
    const double fm = (F - 1) * 0.5;
    double sff = 0;
    for (int f = 0; f < F; f++) sff += (f - fm) * (f - fm);
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++) {
            double mean = 0, slope = 0;
            for (int f = 0; f < F; f++) mean += sum[(size_t)f * LE + (size_t)l * E + e];
            mean /= F;
            for (int f = 0; f < F; f++) {
                const double c = sum[(size_t)f * LE + (size_t)l * E + e] - mean;
                tid[((size_t)l * F + f) * E + e] = (float)c; /* stored [layer][frame][E] */
                slope += (f - fm) * c;
            }
            axis[(size_t)l * E + e] = (float)(slope / sff);
        }
}

void ids_temporal_ids_free(ids_temporal_ids *r) {
    if (!r) return;
    free(r->temporal);
    free(r->time_axis);
    *r = (ids_temporal_ids){0};
}

ids_status ids_temporal_extract(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, const char *out_dir,
                                ids_progress_fn progress, void *user, ids_err *err) {
    if (!out_dir) return ids__err(err, IDS_ERR_ARG, "temporal extract: no output folder");
    return ids_temporal_extract_run(v, cat, o, out_dir, NULL, progress, user, err);
}

ids_status ids_temporal_extract_run(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, const char *out_dir,
                                    ids_temporal_ids *res, ids_progress_fn progress, void *user, ids_err *err) {
    if (res) *res = (ids_temporal_ids){0};
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    const int L = hp->n_layer + 1, E = hp->n_embd, T = frames_of(o), F = T - 1;
    ids__exp x;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 3, 2, "temporal extract", progress, user, err);
    if (st) return st;
    x.n_items = 0; /* every video of the set */
    ids_stim_opts so;
    ids__exp_stim_opts(&x, &so);
    so.frames = T;
    int n_items;
    if ((st = ids_stim_count(IDS_SET_VIDEO, &so, cat, &n_items, err))) return st; /* validates frames, grid, size */
    const size_t LE = (size_t)L * E;
    double *sum = ids__calloc((size_t)F * LE, sizeof(double));
    float *tid = ids__malloc(sizeof(float) * (size_t)F * LE), *axis = ids__malloc(sizeof(float) * LE);
    ids_prov *prov = NULL;
    if (!sum || !tid || !axis) st = ids__err(err, IDS_ERR_NOMEM, "temporal extract: out of memory");
    if (!st) st = temporal_prov(&x, "temporal extract", T, &prov, err);
    if (!st) st = extract_means(&x, &so, n_items, L, E, F, sum, err);
    if (!st && !ids__exp_partial(&x)) {
        extract_centre(sum, L, E, F, tid, axis);
        ids_prov_finish(prov);
        const char *names[IDS_EXP_MAX_OBJECTS];
        for (int i = 0; i < x.n_obj; i++) names[i] = ids_catalog_name(cat, x.objs[i]);
        if (out_dir) st = ids__temporal_write(out_dir, prov, names, x.n_obj, (long)x.total, L, F, E, tid, axis, err);
        if (!st && res) { /* the IDs in memory */
            *res = (ids_temporal_ids){.n_layers = L, .frames = F, .n_embd = E, .temporal = tid, .time_axis = axis};
            tid = axis = NULL;
        }
    }
    st = ids__exp_end(&x, st, err);
    ids_prov_free(prov);
    free(sum);
    free(tid);
    free(axis);
    return st;
}

/* ---- time-reversal patching ---- */

typedef struct {
    ids__patcher *p;
    const ids__exp *x;
    ids_image *rev; /* room for the reversed frames (borrowed images) */
} tswap_job;

static ids_status tswap_video(tswap_job *j, const ids_image *frames, int T, const char *question, const char *w1,
                              const char *w2, ids_err *err) {
    ids_video_reverse(frames, T, j->rev);
    char *q = ids_instruct(question, IDS_REL_BEFORE_AFTER, j->x->instruction);
    char *prompt = q ? ids_vlm_video_prompt(j->x->v, q, 0) : NULL;
    free(q);
    ids_status st = prompt ? ids__patcher_item(j->p, frames, j->rev, T, prompt, w1, w2, err)
                           : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    free(prompt);
    return st;
}

static ids_status tswap_item(void *user, ids_stim *s, ids_err *err) {
    tswap_job *j = user;
    const ids_catalog *cat = j->x->cat;
    const char *a = ids_catalog_name(cat, s->obj[0].obj), *b = ids_catalog_name(cat, s->obj[1].obj);
    char *q = ids_question(IDS_REL_BEFORE_AFTER, a, b, NULL);
    ids_status st = q ? tswap_video(j, s->frames, s->n_frames, q, ids_catalog_word(cat, s->obj[0].obj),
                                    ids_catalog_word(cat, s->obj[1].obj), err)
                      : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    free(q);
    return st;
}

ids_status ids_temporal_swap(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                             ids_temporal_swap_result *out, ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    const int T = frames_of(o);
    ids__exp x;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 2, 2, "temporal swap", progress, user, err);
    if (!st) st = ids__temporal_swap_prov(&x, o, &out->prov, err);
    if (st) return st;
    out->frames = T;
    const int n_items = x.n_items;
    ids_stim_opts so;
    ids__exp_stim_opts(&x, &so);
    so.frames = T;
    ids__patcher p;
    st = ids__patcher_init(&p, &x, IDS_REL_BEFORE_AFTER, T, 8192, err);
    if (!st) ids__prompting_add(&out->prompting, x.instruction, &p.ans.set);
    ids_image *rev = ids__calloc((size_t)T, sizeof *rev);
    if (!st && !rev) st = ids__err(err, IDS_ERR_NOMEM, "temporal swap: out of memory");
    tswap_job job = {&p, &x, rev};
    if (!st && o->mvbench) { /* real videos: T frames each, the question of the record */
        ids_tvq *q = NULL;
        int nq = 0, skipped = 0;
        st = ids_mvbench_load(o->mvbench, o->video_dir, &q, &nq, &skipped, err);
        const int total = nq < n_items ? nq : n_items;
        for (int k = 0; !st && k < total; k++, x.done++) {
            if (!ids__item_mine(&x, x.done)) continue; /* another shard's */
            x.item = x.done;
            ids_image *fr = NULL;
            if ((st = ids_video_load(q[k].video, T, &fr, NULL, err))) break;
            st = tswap_video(&job, fr, T, q[k].question, q[k].word_first, q[k].word_second, err);
            ids_video_free(fr, T);
            if (progress) progress("temporal swap (MVBench, time reversal)", k + 1, total, user);
        }
        free(q);
    } else if (!st) {
        st = ids__exp_each(&x, IDS_SET_VIDEO, &so, IDS_REL_BEFORE_AFTER, 11, tswap_item, &job, "temporal swap (time reversal)", err);
    }
    if (!st) st = ids__patcher_means(&p, &out->first, &out->second, &out->diff, &out->diff_pooled, err);
    if (!st) {
        out->n_layers = p.L;
        out->n_items = p.n_items;
        out->n_skipped = p.n_skipped;
        out->item_diff = p.item_diff, p.item_diff = NULL;
        ids_prov_finish(out->prov);
    }
    st = ids__exp_end(&x, st, err);
    ids__patcher_free(&p);
    free(rev);
    if (st) ids_temporal_result_free(out);
    return st;
}

/* ---- steering ---- */

typedef struct {
    ids__exp *x;
    ids_ctx *ctx;
    const ids__answers *ans;
    float *vecs, *lp; /* lp: [NV][IDS__MAX_CAND] */
    ids_hook *hooks;
    ids_variant *vars;
    ids_run_out *outs;
    double *acc_b, *acc_a;
    double *rec; /* the current item's record: [NV] changes of log P(before), then [NV] of log P(after), NV = 3 NB F */
    int lo, NB, F, E;
    ids_temporal_steer_result *out;
    int cap; /* items out->item_after holds */
} tsteer_job;

/* One video: the clean run, then every (layer, target frame) edit of the subject word in one batch. */
static ids_status tsteer_run(tsteer_job *j, ids_stim *s, ids_err *err);

/* An item's record (fresh, kept or merged) into the sums and its changes of log P(after) into the
 * per-video values of the intervals, in item order. */
static ids_status tsteer_item(void *user, ids_stim *s, ids_err *err) {
    tsteer_job *j = user;
    const int NV = 3 * j->NB * j->F; /* the push, then its two controls */
    bool found;
    ids_status st = ids__item_doubles(j->x, j->rec, 2 * (size_t)NV, &found, err);
    if (!st && !found) st = tsteer_run(j, s, err);
    if (!st && !found) st = ids__item_keep(j->x, j->rec, sizeof(double) * 2 * (size_t)NV, err);
    ids_temporal_steer_result *r = j->out;
    if (!st && r->n_items >= j->cap) { /* each video's changes of log P(after), kept for intervals */
        const int nc = j->cap ? 2 * j->cap : 16;
        float *q = ids__realloc(r->item_after, sizeof(float) * (size_t)nc * NV);
        if (!q) st = ids__err(err, IDS_ERR_NOMEM, "temporal steer: out of memory for %d videos", nc);
        else r->item_after = q, j->cap = nc;
    }
    for (int vi = 0; !st && vi < NV; vi++) {
        j->acc_b[vi] += j->rec[vi];
        j->acc_a[vi] += j->rec[NV + vi];
        r->item_after[(size_t)r->n_items * NV + vi] = (float)j->rec[NV + vi];
    }
    if (!st) r->n_items++;
    return st;
}

/* One video: the clean run and every (layer, target frame) push and its controls, into j->rec. */
static ids_status tsteer_run(tsteer_job *j, ids_stim *s, ids_err *err) {
    ids_seq *seq = NULL;
    ids_status st = ids__question_seq(j->x, IDS_REL_BEFORE_AFTER, s, s->frames, s->n_frames, &seq, err);
    ids_sel w = {.kind = IDS_SEL_WORD, .word = ids_catalog_word(j->x->cat, s->obj[0].obj), .after_image = true};
    float lpc[2], raw[IDS__MAX_CAND];
    ids_run_opts ro = {.cand = j->ans->cand, .n_cand = j->ans->n_cand};
    ids_run_out oc = {.cand_logprob = raw};
    if (!st) st = ids_ctx_prefill(j->ctx, seq, NULL, 0, &ro, &oc, err);
    if (!st) ids_answer_set_reduce(&j->ans->set, raw, lpc);
    const int NV = 3 * j->NB * j->F; /* the push, then its two controls */
    for (int vi = 0; !st && vi < NV; vi++) {
        j->hooks[vi] = (ids_hook){.site = IDS_SITE_RESID, .layer = j->lo + vi % (j->NB * j->F) / j->F, .sel = w, .action = IDS_ACT_ADD,
                                  .vec = j->vecs + (size_t)vi * j->E, .len = (size_t)j->E};
        j->vars[vi] = (ids_variant){&j->hooks[vi], 1};
        j->outs[vi] = (ids_run_out){.cand_logprob = j->lp + (size_t)IDS__MAX_CAND * vi};
    }
    if (!st) st = ids_ctx_run_batch(j->ctx, j->vars, NV, &ro, j->outs, err);
    for (int vi = 0; !st && vi < NV; vi++) {
        float p[2];
        ids_answer_set_reduce(&j->ans->set, j->lp + (size_t)IDS__MAX_CAND * vi, p);
        j->rec[vi] = (double)p[0] - lpc[0];
        j->rec[NV + vi] = (double)p[1] - lpc[1];
    }
    ids_seq_free(seq);
    return st;
}

/* What a temporal steering run is after defaults: the IDs file, its frames, the band, the factor. */
typedef struct {
    ids_st_file *f;
    const ids_st_tensor *TI;
    int T, F, lo, hi;
    float factor;
} tsteer_plan;

static ids_status tsteer_plan_make(const ids_vlm *v, const ids_temporal_opts *o, tsteer_plan *pl, ids_err *err) {
    memset(pl, 0, sizeof *pl);
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    const int L = hp->n_layer + 1, E = hp->n_embd;
    if (!o->ids_path) return ids__err(err, IDS_ERR_ARG, "temporal steer: no temporal IDs file (temporal extract writes one)");
    ids_status st = ids_st_open(&pl->f, o->ids_path, err);
    if (st) return st;
    const ids_st_tensor *TI = NULL;
    st = ids__st_f32(pl->f, o->ids_path, "temporal", 3, false, &TI, err);
    pl->TI = TI;
    if (!st && (TI->shape[0] != L || TI->shape[2] != E || TI->shape[1] < 2 || TI->shape[1] > 63))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: 'temporal' must be [%d layers, frames, %d] for this model", o->ids_path, L, E);
    if (!st) {
        pl->F = (int)TI->shape[1], pl->T = pl->F + 1;
        pl->lo = o->layer_lo > 0 ? o->layer_lo : 1, pl->hi = o->layer_hi > 0 ? o->layer_hi : L - 2;
        pl->factor = o->factor > 0 ? o->factor : 5.0f;
    }
    if (!st && o->frames > 0 && o->frames != pl->T)
        st = ids__err(err, IDS_ERR_ARG, "temporal steer: the IDs are for %d-frame videos, %d frames asked", pl->T, o->frames);
    if (!st && (pl->lo < 1 || pl->hi < pl->lo || pl->hi >= L))
        st = ids__err(err, IDS_ERR_RANGE, "temporal steer: layers %d-%d outside 1..%d", pl->lo, pl->hi, L - 1);
    if (!st && (o->source < 0 || o->source > pl->F))
        st = ids__err(err, IDS_ERR_RANGE, "temporal steer: source frame %d outside 1..%d", o->source, pl->F);
    if (st) {
        ids_st_close(pl->f);
        memset(pl, 0, sizeof *pl);
    }
    return st;
}

static ids_status tsteer_prov(const ids__exp *x, const ids_temporal_opts *o, const tsteer_plan *pl, ids_prov **out,
                              ids_err *err) {
    ids_status st = temporal_prov(x, "temporal steer", pl->T, out, err);
    if (!st) st = ids_prov_input(*out, "temporal", o->ids_path, err);
    if (st) return st;
    ids_prov_opt_num(*out, "factor", pl->factor);
    ids_prov_opt_int(*out, "source", o->source);
    ids_prov_opt_int(*out, "layer_lo", pl->lo);
    ids_prov_opt_int(*out, "layer_hi", pl->hi);
    if (o->holdout_objects) ids_prov_opt_bool(*out, "holdout_objects", true);
    return IDS_OK;
}

ids_status ids__temporal_swap_prov(const ids__exp *x, const ids_temporal_opts *o, ids_prov **out, ids_err *err) {
    ids_status st = temporal_prov(x, "temporal swap", frames_of(o), out, err);
    if (!st && o->mvbench) {
        st = ids_prov_input(*out, "mvbench", o->mvbench, err);
        ids_prov_opt_str(*out, "videos", o->video_dir);
    }
    return st;
}

ids_status ids__temporal_prov(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, int which, ids_prov **out,
                              ids_err *err) {
    *out = NULL;
    ids__exp x;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, which == 0 ? 3 : 2, 2, "temporal", NULL, NULL, err);
    if (st) return st;
    if (which == 0) {
        x.n_items = 0; /* every video of the set */
        return temporal_prov(&x, "temporal extract", frames_of(o), out, err);
    }
    if (which == 1) return ids__temporal_swap_prov(&x, o, out, err);
    tsteer_plan pl;
    if ((st = tsteer_plan_make(v, o, &pl, err))) return st;
    st = tsteer_prov(&x, o, &pl, out, err);
    ids_st_close(pl.f);
    return st;
}

/* The added vectors do not depend on the item: factor (T[f] - T[source(f)]) per (layer, target frame). */
static void tsteer_vectors(const tsteer_plan *pl, int source, int E, float *vecs) {
    const int NB = pl->hi - pl->lo + 1, F = pl->F, T = pl->T;
    for (int k = 0; k < NB; k++)
        for (int t = 0; t < F; t++) {
            const int src = source > 0 ? source : T - (t + 1); /* frames numbered 1..F */
            const float *ut = (const float *)pl->TI->data + ((size_t)(pl->lo + k) * F + t) * E;
            const float *us = (const float *)pl->TI->data + ((size_t)(pl->lo + k) * F + (src - 1)) * E;
            float *vt = vecs + ((size_t)k * F + t) * E;
            for (int e = 0; e < E; e++) vt[e] = pl->factor * (ut[e] - us[e]);
        }
}

static void tsteer_rescale(float *v, int E, double norm) {
    double n = 0;
    for (int e = 0; e < E; e++) n += (double)v[e] * v[e];
    n = sqrt(n);
    for (int e = 0; e < E; e++) v[e] = n > 0 ? (float)(v[e] / n * norm) : 0.0f;
}

/* The controls after the NB F pushes in vecs: [NB F ..) a random direction per (layer, frame), then a
 * fixed direction per layer orthogonal to the time axis (axis [L][E], may be NULL), each of the push's
 * norm, the second signed as the frame lies after or before the null frame. */
static void tsteer_controls(const tsteer_plan *pl, const float *axis, int source, int E, uint64_t seed, float *vecs) {
    const int NB = pl->hi - pl->lo + 1, F = pl->F, NV = NB * F, T = pl->T;
    uint64_t rng = seed * 7919 + 53;
    for (int k = 0; k < NB; k++) {
        float *dir = vecs + ((size_t)2 * NV + (size_t)k * F) * E; /* built in the first frame's slot */
        const float *a = axis ? axis + (size_t)(pl->lo + k) * E : NULL;
        double aa = 0, da = 0;
        for (int e = 0; e < E; e++) dir[e] = (float)ids__rng_lcg_normal(&rng), aa += a ? (double)a[e] * a[e] : 0, da += a ? (double)dir[e] * a[e] : 0;
        for (int e = 0; a && aa > 0 && e < E; e++) dir[e] = (float)(dir[e] - da / aa * a[e]);
        tsteer_rescale(dir, E, 1.0);
        for (int t = F - 1; t >= 0; t--) {
            const float *push = vecs + ((size_t)k * F + t) * E;
            double n = 0;
            for (int e = 0; e < E; e++) n += (double)push[e] * push[e];
            n = sqrt(n);
            float *vr = vecs + ((size_t)NV + (size_t)k * F + t) * E, *vo = vecs + ((size_t)2 * NV + (size_t)k * F + t) * E;
            for (int e = 0; e < E; e++) vr[e] = (float)ids__rng_lcg_normal(&rng);
            tsteer_rescale(vr, E, n);
            const int f = t + 1, mid = source > 0 ? source : T - f; /* the pairing's mirror frame */
            const double sg = f > mid ? 1 : f < mid ? -1 : 0;
            for (int e = 0; e < E; e++) vo[e] = (float)(sg * n * dir[e]); /* t = 0 last: dir is read before it is overwritten */
        }
    }
}

/* Means per (layer, frame) over the videos, the Spearman correlation of the change of log P(after)
 * with the frame per layer, and the fraction of monotonic layers. */
static ids_status tsteer_summarise(const double *acc_b, const double *acc_a, int NB, int F, ids_temporal_steer_result *out,
                                   ids_err *err) {
    const int NV = NB * F;
    out->d_before = ids__malloc(sizeof(float) * (size_t)NV);
    out->d_after = ids__malloc(sizeof(float) * (size_t)NV);
    out->rho_after = ids__malloc(sizeof(float) * (size_t)NB);
    if (!out->d_before || !out->d_after || !out->rho_after) return ids__err(err, IDS_ERR_NOMEM, "temporal steer: out of memory");
    int mono = 0;
    for (int k = 0; k < NB; k++) {
        double da[64], idx[64];
        for (int t = 0; t < F; t++) {
            const int vi = k * F + t;
            out->d_before[vi] = out->n_items ? (float)(acc_b[vi] / out->n_items) : 0;
            out->d_after[vi] = out->n_items ? (float)(acc_a[vi] / out->n_items) : 0;
            da[t] = out->d_after[vi];
            idx[t] = t;
        }
        const double rho = ids_spearman(da, idx, F);
        out->rho_after[k] = (float)rho;
        mono += isfinite(rho) && rho >= IDS_TEMPORAL_MONOTONIC_RHO;
    }
    out->monotonic = NB ? (float)mono / NB : 0;
    for (int c = 0; c < 2; c++) { /* the controls, likewise */
        if (!(out->ctl_after[c] = ids__malloc(sizeof(float) * (size_t)NV)))
            return ids__err(err, IDS_ERR_NOMEM, "temporal steer: out of memory");
        int m = 0;
        for (int k = 0; k < NB; k++) {
            double da[64], idx[64];
            for (int t = 0; t < F; t++) {
                const int vi = k * F + t;
                out->ctl_after[c][vi] = out->n_items ? (float)(acc_a[(size_t)(c + 1) * NV + vi] / out->n_items) : 0;
                da[t] = out->ctl_after[c][vi], idx[t] = t;
            }
            const double rho = ids_spearman(da, idx, F);
            m += isfinite(rho) && rho >= IDS_TEMPORAL_MONOTONIC_RHO;
        }
        out->ctl_monotonic[c] = NB ? (float)m / NB : 0;
    }
    return IDS_OK;
}

ids_status ids_temporal_steer(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                              ids_temporal_steer_result *out, ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    const ids_model *m = ids_vlm_model(v);
    const int E = ids_model_hparams(m)->n_embd;
    ids__exp x;
    tsteer_plan pl = {0};
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 2, 2, "temporal steer", progress, user, err);
    if (!st) st = tsteer_plan_make(v, o, &pl, err);
    if (!st && o->holdout_objects) st = ids__holdout_check(&x, o->ids_path, "temporal.json", "temporal steer", err);
    if (!st) st = tsteer_prov(&x, o, &pl, &out->prov, err);
    if (st) {
        ids_st_close(pl.f);
        ids_temporal_steer_result_free(out);
        return st;
    }
    const int F = pl.F, T = pl.T, NB = pl.hi - pl.lo + 1, NV = NB * F;
    out->factor = pl.factor, out->source = o->source;
    ids_stim_opts so;
    ids__exp_stim_opts(&x, &so);
    so.frames = T;
    ids__answers ans;
    const int NA = 3 * NV; /* the push and its two controls */
    double *acc_b = ids__calloc((size_t)NA, sizeof(double)), *acc_a = ids__calloc((size_t)NA, sizeof(double));
    float *vecs = ids__malloc(sizeof(float) * (size_t)NA * E), *lp = ids__malloc(sizeof(float) * IDS__MAX_CAND * (size_t)NA);
    ids_hook *hooks = ids__calloc((size_t)NA, sizeof *hooks);
    ids_variant *vars = ids__calloc((size_t)NA, sizeof *vars);
    ids_run_out *outs = ids__calloc((size_t)NA, sizeof *outs);
    ids_ctx *ctx = NULL;
    if (!acc_b || !acc_a || !vecs || !lp || !hooks || !vars || !outs) st = ids__err(err, IDS_ERR_NOMEM, "temporal steer: out of memory");
    if (!st) st = ids__answers_init(&ans, ids_model_tokenizer(m), IDS_REL_BEFORE_AFTER, err);
    if (!st) ids__prompting_add(&out->prompting, x.instruction, &ans.set);
    out->null_frame = o->source > 0 ? o->source : (T % 2 == 0 ? T / 2 : -1);
    const ids_st_tensor *axis = NULL;
    if (!st) tsteer_vectors(&pl, o->source, E, vecs);
    if (!st) st = ids__st_f32(pl.f, o->ids_path, "time_axis", 2, true, &axis, err);
    if (!st && axis && (axis->shape[0] != ids_model_hparams(m)->n_layer + 1 || axis->shape[1] != E)) axis = NULL;
    if (!st) tsteer_controls(&pl, axis ? axis->data : NULL, o->source, E, x.seed, vecs);
    if (!st) st = ids__exp_ctx(&x, T, 8192, true, &ctx, err);
    double *rec = ids__calloc(2 * (size_t)NA, sizeof(double));
    if (!st && !rec) st = ids__err(err, IDS_ERR_NOMEM, "temporal steer: out of memory");
    tsteer_job job = {&x, ctx, &ans, vecs, lp, hooks, vars, outs, acc_b, acc_a, rec, pl.lo, NB, F, E, out, 0};
    if (!st) st = ids__exp_each(&x, IDS_SET_VIDEO, &so, IDS_REL_BEFORE_AFTER, 13, tsteer_item, &job, "temporal steer", err);
    if (!st) {
        out->layer_lo = pl.lo;
        out->n_band = NB;
        out->frames = F;
        st = tsteer_summarise(acc_b, acc_a, NB, F, out, err);
    }
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&x, st, err);
    if (st) ids_temporal_steer_result_free(out);
    ids_ctx_free(ctx);
    free(rec);
    free(acc_b);
    free(acc_a);
    free(vecs);
    free(lp);
    free(hooks);
    free(vars);
    free(outs);
    ids_st_close(pl.f);
    return st;
}

/* ---- MVBench scene transitions ---- */

static void last_word(const char *phrase, char *out, size_t n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", phrase);
    size_t k = strlen(buf);
    while (k && !(isalnum((unsigned char)buf[k - 1]))) buf[--k] = 0; /* trailing punctuation, quotes, spaces */
    size_t b = k;
    while (b && isalnum((unsigned char)buf[b - 1])) b--;
    snprintf(out, n, "%s", buf + b);
    for (char *c = out; *c; c++) *c = (char)tolower((unsigned char)*c);
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "From the kitchen to the bedroom." -> "the kitchen", "the bedroom" */
static bool parse_from_to(const char *ans, char *x, size_t nx, char *y, size_t ny) {
    const char *f = strstr(ans, "From ");
    if (!f) f = strstr(ans, "from ");
    if (!f) return false;
    f += 5;
    const char *t = strstr(f, " to ");
    if (!t || t == f) return false;
    snprintf(x, nx, "%.*s", (int)(t - f), f);
    snprintf(y, ny, "%s", t + 4);
    size_t k = strlen(y);
    while (k && (y[k - 1] == '.' || y[k - 1] == ' ')) y[--k] = 0;
    return k > 0 && x[0];
}

ids_status ids_mvbench_load(const char *json_path, const char *video_dir, ids_tvq **out, int *n, int *n_skipped,
                            ids_err *err) {
    *out = NULL;
    *n = *n_skipped = 0;
    char *txt;
    ids_status st = ids__read_file(json_path, &txt, NULL, err);
    if (st) return st;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return ids__err(err, IDS_ERR_FORMAT, "%s: not a JSON list of questions", json_path);
    }
    const int cnt = cJSON_GetArraySize(j);
    ids_tvq *q = ids__calloc((size_t)(cnt ? cnt : 1), sizeof *q);
    if (!q) {
        cJSON_Delete(j);
        return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    }
    int k = 0, i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        ids_tvq *r = &q[k];
        const char *vid = jstr(e, "video_path") ? jstr(e, "video_path") : jstr(e, "video");
        bool ok = vid != NULL;
        if (ok && jstr(e, "scene1") && jstr(e, "scene2")) { /* the paper's derived manifest */
            const cJSON *co = cJSON_GetObjectItem(e, "correct_order"), *qo = cJSON_GetObjectItem(e, "query_order");
            snprintf(r->first, sizeof r->first, "%s", jstr(e, "scene1"));
            snprintf(r->second, sizeof r->second, "%s", jstr(e, "scene2"));
            ok = co && qo;
            if (ok) {
                char *a = cJSON_PrintUnformatted(co), *b = cJSON_PrintUnformatted(qo);
                r->truth_before = a && b && !strcmp(a, b);
                free(a);
                free(b);
            }
            if (jstr(e, "query")) snprintf(r->question, sizeof r->question, "%s", jstr(e, "query"));
        } else if (ok && jstr(e, "answer")) { /* the original task file */
            char x[128], y[128];
            ok = parse_from_to(jstr(e, "answer"), x, sizeof x, y, sizeof y);
            if (ok) {
                const bool swap = i % 2 == 1; /* both orders, alternately */
                snprintf(r->first, sizeof r->first, "%s", swap ? y : x);
                snprintf(r->second, sizeof r->second, "%s", swap ? x : y);
                r->truth_before = !swap;
            }
        } else {
            ok = false;
        }
        if (ok) {
            last_word(r->first, r->word_first, sizeof r->word_first);
            last_word(r->second, r->word_second, sizeof r->word_second);
            ok = r->word_first[0] && r->word_second[0] && strcmp(r->word_first, r->word_second);
        }
        if (ok) {
            if (vid[0] == '/' || !video_dir) snprintf(r->video, sizeof r->video, "%s", vid);
            else snprintf(r->video, sizeof r->video, "%.500s/%.500s", video_dir, vid);
            if (!r->question[0])
                snprintf(r->question, sizeof r->question, "Does the scene '%s' occur before or after the scene '%s'?", r->first,
                         r->second);
            k++;
        } else {
            memset(r, 0, sizeof *r);
            (*n_skipped)++;
        }
        i++;
    }
    cJSON_Delete(j);
    *out = q;
    *n = k;
    return IDS_OK;
}
