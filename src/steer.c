/* Belief-swap steering with universal IDs vs norm-matched noise (docs/EXPERIMENTS.md). */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

void ids_steer_result_free(ids_steer_result *r) {
    free(r->rate_id);
    free(r->rate_noise);
    free(r->greedy_id);
    free(r->greedy_noise);
    memset(r, 0, sizeof *r);
}

static double gauss(uint64_t *s) {
    double u1, u2;
    u1 = ((double)(ids__lcg(s) >> 11) + 0.5) / 9007199254740992.0;
    u2 = (double)(ids__lcg(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void rescale(float *v, int E, double norm) {
    double n = 0;
    for (int e = 0; e < E; e++) n += (double)v[e] * v[e];
    n = sqrt(n);
    for (int e = 0; e < E; e++) v[e] = n > 0 ? (float)(v[e] / n * norm) : 0.0f;
}

/* The universal IDs of an ids extract file, checked against this model; and the grid scenes' options. */
static ids_status open_ids(const ids_steer_opts *o, int L, int E, ids_st_file **f, const ids_st_tensor **U, ids_err *err) {
    ids_status st = ids_st_open(f, o->ids_path, err);
    if (st) return st;
    *U = ids_st_find(*f, "universal");
    if (!*U || (*U)->ndim != 5 || (*U)->shape[0] != L || (*U)->shape[4] != E) {
        ids_st_close(*f);
        *f = NULL;
        return ids__err(err, IDS_ERR_FORMAT, "%s: 'universal' must be [%d layers, y, x, size, %d] for this model",
                        o->ids_path, L, E);
    }
    return IDS_OK;
}

static void scene_opts(const ids_steer_opts *o, const ids_vparams *vp, int G, ids_stim_opts *so) {
    static const float sz[1] = {0.9f};
    ids_stim_default_opts(so);
    so->image_size = o->image_size > 0 ? o->image_size : (vp->dynamic ? 224 : vp->image_size);
    so->grid = G;
    so->sizes = sz;
    so->n_sizes = 1;
    so->seed = o->seed;
}

int ids_answer_verdict(const char *text, const char *first, const char *second) {
    const char *w[2] = {first, second};
    for (const char *p = text; *p;) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        const char *b = p;
        while (*p && isalnum((unsigned char)*p)) p++;
        const size_t n = (size_t)(p - b);
        for (int k = 0; k < 2 && n; k++) {
            /* the word itself, or the first word of a two-word answer ("in front") */
            const char *sp = strchr(w[k], ' ');
            const size_t wn = sp ? (size_t)(sp - w[k]) : strlen(w[k]);
            if (wn == n && !strncasecmp(b, w[k], n)) return k;
        }
    }
    return -1;
}

/* Word verdict of a greedy answer with the given edits (NULL: the clean run). */
static ids_status greedy_verdict(ids_ctx *ctx, const ids_tokenizer *tok, const ids_hook *hooks, int n_hooks, int n_new,
                                 ids_relation rel, int *verdict, ids_err *err) {
    int32_t toks[64];
    int n = 0;
    ids_status st = ids_ctx_generate(ctx, hooks, n_hooks, n_new < 64 ? n_new : 64, toks, &n, err);
    char *text = NULL;
    if (!st) st = ids_detokenize(tok, toks, (size_t)n, false, true, &text, err);
    if (!st) *verdict = ids_answer_verdict(text, ids_answer_word(rel, true), ids_answer_word(rel, false));
    free(text);
    return st;
}

ids_status ids_steer_belief(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, ids_steer_result *out,
                            ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    const ids_model *m = ids_vlm_model(v);
    const ids_hparams *hp = ids_model_hparams(m);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    const ids_tokenizer *tok = ids_model_tokenizer(m);
    const int L = hp->n_layer + 1, E = hp->n_embd;
    const ids_relation rel = o->relation == IDS_REL_ABOVE_BELOW ? IDS_REL_ABOVE_BELOW : IDS_REL_LEFT_RIGHT;
    const int lo = o->layer_lo > 0 ? o->layer_lo : 1, hi = o->layer_hi > 0 ? o->layer_hi : hp->n_layer - 1;
    if (lo > hi || hi >= L)
        return ids__err(err, IDS_ERR_RANGE, "steer: layer band %d..%d is outside 1..%d", lo, hi, L - 1);
    const int NB = hi - lo + 1;
    ids_st_file *f = NULL;
    const ids_st_tensor *U = NULL;
    ids_status st = open_ids(o, L, E, &f, &U, err);
    if (st) return st;
    const int G = (int)U->shape[1], S = (int)U->shape[3];
    /* push right = U(G-1, 0) - U(0, 0); push down = U(0, G-1) - U(0, 0); size index 0 */
#define UID(l, x, y) ((const float *)U->data + ((((size_t)(l) * G + (y)) * G + (x)) * S) * E)
    int def_objs[2] = {ids_catalog_builtin(0, 0), ids_catalog_builtin(2, 1)};
    const int *objs = o->n_objects ? o->objects : def_objs;
    const int n_obj = o->n_objects ? o->n_objects : 2, n_img = o->n_images > 0 ? o->n_images : 8;
    const float factor = o->factor > 0 ? o->factor : 5.0f;
    ids_stim_opts so;
    scene_opts(o, vp, G, &so);
    int32_t cand[2] = {ids_tokenizer_word_token(tok, ids_answer_word(rel, true), err),
                       ids_tokenizer_word_token(tok, ids_answer_word(rel, false), err)};
    int *swaps_id = calloc((size_t)NB, sizeof(int)), *swaps_noise = calloc((size_t)NB, sizeof(int));
    int *g_id = calloc((size_t)NB, sizeof(int)), *g_noise = calloc((size_t)NB, sizeof(int));
    float *caps = malloc(sizeof(float) * 2 * (size_t)L * E), *vecs = malloc(sizeof(float) * 4 * (size_t)NB * E);
    float *lp = malloc(sizeof(float) * 4 * (size_t)NB);
    ids_hook *hooks = calloc((size_t)4 * NB, sizeof *hooks), capk[2 * 64];
    ids_variant *vars = calloc((size_t)2 * NB, sizeof *vars);
    ids_run_out *outs = calloc((size_t)2 * NB, sizeof *outs);
    ids_ctx *ctx = NULL;
    if (cand[0] < 0 || cand[1] < 0) st = err ? err->code : IDS_ERR_NOT_FOUND;
    else if (!swaps_id || !swaps_noise || !g_id || !g_noise || !caps || !vecs || !lp || !hooks || !vars || !outs || L > 64)
        st = ids__err(err, IDS_ERR_NOMEM, "steer: out of memory");
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 4096;
    cp.max_rows = 4096;
    cp.n_threads = o->n_threads;
    if (!st) st = ids_ctx_new(&ctx, m, cp, err);
    uint64_t noise_rng = o->seed * 7919 + 17;
    const int total = n_obj * (n_obj - 1) * n_img;
    int done_n = 0;
    for (int a = 0; a < n_obj && !st; a++)
        for (int b = 0; b < n_obj && !st; b++) {
            if (a == b) continue;
            int pair[2] = {objs[a], objs[b]};
            so.objects = pair;
            so.n_objects = 2;
            int count;
            if ((st = ids_stim_count(IDS_SET_GRID, &so, cat, &count, err))) break;
            uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)(a * 131 + b) + 99;
            for (int it = 0; it < n_img && !st; it++) {
                ids_stim s;
                if ((st = ids__draw_stim(IDS_SET_GRID, &so, cat, count, (int)rel, &rng, &s, err))) break;
                ids_seq *seq = NULL;
                st = ids__question_seq(v, cat, rel, &s, &s.frames[0], 1, o->n_threads, &seq, err);
                ids_sel ws[2] = {{.kind = IDS_SEL_WORD, .word = ids_catalog_word(cat, s.obj[0].obj), .after_image = true},
                                 {.kind = IDS_SEL_WORD, .word = ids_catalog_word(cat, s.obj[1].obj), .after_image = true}};
                for (int w = 0; w < 2; w++)
                    for (int l = 0; l < L; l++)
                        capk[w * L + l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[w], .action = IDS_ACT_CAPTURE,
                                                     .out = caps + ((size_t)w * L + l) * E, .len = (size_t)E};
                float lpc[2];
                ids_run_opts ro = {.cand = cand, .n_cand = 2};
                ids_run_out oc = {.cand_logprob = lpc};
                if (!st) st = ids_ctx_prefill(ctx, seq, capk, 2 * L, &ro, &oc, err);
                if (!st) {
                    const double dc = (double)lpc[0] - lpc[1];
                    if (dc == 0) {
                        out->n_skipped++;
                    } else {
                        /* the subject's push opposes the model's answer: it said "first" (left/above) ->
                         * push the subject right/down (+d), the reference left/up (-d) */
                        const double sign_a = dc > 0 ? 1.0 : -1.0;
                        for (int k = 0; k < NB; k++) {
                            const int l = lo + k;
                            const float *u0 = UID(l, 0, 0), *u1 = rel == IDS_REL_LEFT_RIGHT ? UID(l, G - 1, 0) : UID(l, 0, G - 1);
                            for (int w = 0; w < 2; w++) {
                                float *vid = vecs + ((size_t)(4 * k) + w) * E, *vno = vecs + ((size_t)(4 * k) + 2 + w) * E;
                                const double sg = w == 0 ? sign_a : -sign_a;
                                double hn = 0;
                                const float *h = caps + ((size_t)w * L + l) * E;
                                for (int e = 0; e < E; e++) hn += (double)h[e] * h[e];
                                hn = sqrt(hn) * factor;
                                for (int e = 0; e < E; e++) {
                                    vid[e] = (float)(sg * ((double)u1[e] - u0[e]));
                                    vno[e] = (float)gauss(&noise_rng);
                                }
                                rescale(vid, E, hn);
                                rescale(vno, E, hn);
                                hooks[4 * k + w] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[w],
                                                              .action = IDS_ACT_ADD, .vec = vid, .len = (size_t)E};
                                hooks[4 * k + 2 + w] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[w],
                                                                  .action = IDS_ACT_ADD, .vec = vno, .len = (size_t)E};
                            }
                            vars[2 * k] = (ids_variant){&hooks[4 * k], 2};
                            vars[2 * k + 1] = (ids_variant){&hooks[4 * k + 2], 2};
                            outs[2 * k] = (ids_run_out){.cand_logprob = lp + 4 * k};
                            outs[2 * k + 1] = (ids_run_out){.cand_logprob = lp + 4 * k + 2};
                        }
                        st = ids_ctx_run_batch(ctx, vars, 2 * NB, &ro, outs, err);
                        for (int k = 0; !st && k < NB; k++) {
                            const double di = (double)lp[4 * k] - lp[4 * k + 1], dn = (double)lp[4 * k + 2] - lp[4 * k + 3];
                            swaps_id[k] += (di > 0) != (dc > 0);
                            swaps_noise[k] += (dn > 0) != (dc > 0);
                        }
                        /* the same from short greedy answers, judged by whole answer words */
                        int vc = -1;
                        if (!st && o->greedy_tokens > 0) st = greedy_verdict(ctx, tok, NULL, 0, o->greedy_tokens, rel, &vc, err);
                        for (int k = 0; !st && vc >= 0 && k < NB; k++) {
                            int vi = -1, vn = -1;
                            st = greedy_verdict(ctx, tok, vars[2 * k].hooks, 2, o->greedy_tokens, rel, &vi, err);
                            if (!st) st = greedy_verdict(ctx, tok, vars[2 * k + 1].hooks, 2, o->greedy_tokens, rel, &vn, err);
                            g_id[k] += vi >= 0 && vi != vc;
                            g_noise[k] += vn >= 0 && vn != vc;
                        }
                        out->n_items++;
                    }
                }
                ids_seq_free(seq);
                ids_stim_free(&s);
                done_n++;
                if (progress) progress("steer belief", done_n, total, user);
            }
        }
#undef UID
    if (!st) {
        out->layer_lo = lo;
        out->n_band = NB;
        out->rate_id = malloc(sizeof(float) * (size_t)NB);
        out->rate_noise = malloc(sizeof(float) * (size_t)NB);
        if (!out->rate_id || !out->rate_noise) st = ids__err(err, IDS_ERR_NOMEM, "steer: out of memory");
        for (int k = 0; !st && k < NB; k++) {
            out->rate_id[k] = out->n_items ? (float)swaps_id[k] / out->n_items : 0;
            out->rate_noise[k] = out->n_items ? (float)swaps_noise[k] / out->n_items : 0;
        }
        /* the paper's summary: the 3 layers with the highest ID rate */
        int best[3] = {-1, -1, -1};
        for (int k = 0; !st && k < NB; k++)
            for (int b = 0; b < 3; b++)
                if (best[b] < 0 || out->rate_id[k] > out->rate_id[best[b]]) {
                    for (int c = 2; c > b; c--) best[c] = best[c - 1];
                    best[b] = k;
                    break;
                }
        int nb = 0;
        for (int b = 0; !st && b < 3; b++)
            if (best[b] >= 0) out->best3_id += out->rate_id[best[b]], out->best3_noise += out->rate_noise[best[b]], nb++;
        if (nb) out->best3_id /= nb, out->best3_noise /= nb;
        if (!st && o->greedy_tokens > 0) {
            out->greedy_id = malloc(sizeof(float) * (size_t)NB);
            out->greedy_noise = malloc(sizeof(float) * (size_t)NB);
            if (!out->greedy_id || !out->greedy_noise) st = ids__err(err, IDS_ERR_NOMEM, "steer: out of memory");
            for (int k = 0; !st && k < NB; k++) {
                out->greedy_id[k] = out->n_items ? (float)g_id[k] / out->n_items : 0;
                out->greedy_noise[k] = out->n_items ? (float)g_noise[k] / out->n_items : 0;
            }
            int gb[3] = {-1, -1, -1};
            for (int k = 0; !st && k < NB; k++)
                for (int b = 0; b < 3; b++)
                    if (gb[b] < 0 || out->greedy_id[k] > out->greedy_id[gb[b]]) {
                        for (int c = 2; c > b; c--) gb[c] = gb[c - 1];
                        gb[b] = k;
                        break;
                    }
            int ng = 0;
            for (int b = 0; !st && b < 3; b++)
                if (gb[b] >= 0)
                    out->greedy_best3_id += out->greedy_id[gb[b]], out->greedy_best3_noise += out->greedy_noise[gb[b]], ng++;
            if (ng) out->greedy_best3_id /= ng, out->greedy_best3_noise /= ng;
        }
        if (st) ids_steer_result_free(out);
    }
    ids_ctx_free(ctx);
    free(swaps_id);
    free(swaps_noise);
    free(g_id);
    free(g_noise);
    free(caps);
    free(vecs);
    free(lp);
    free(hooks);
    free(vars);
    free(outs);
    ids_st_close(f);
    return st;
}

ids_status ids_steer_grid(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, ids_steer_grid_result *out,
                          ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    const ids_model *m = ids_vlm_model(v);
    const ids_hparams *hp = ids_model_hparams(m);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    const ids_tokenizer *tok = ids_model_tokenizer(m);
    const int L = hp->n_layer + 1, E = hp->n_embd;
    const ids_relation rel = o->relation == IDS_REL_ABOVE_BELOW || o->relation == IDS_REL_NEAR_FAR ? o->relation
                                                                                                   : IDS_REL_LEFT_RIGHT;
    const int layer = o->layer_lo > 0 ? o->layer_lo : hp->n_layer / 2;
    if (layer < 1 || layer >= L) return ids__err(err, IDS_ERR_RANGE, "steer grid: layer %d is outside 1..%d", layer, L - 1);
    ids_st_file *f = NULL;
    const ids_st_tensor *U = NULL;
    ids_status st = open_ids(o, L, E, &f, &U, err);
    if (st) return st;
    const int G = (int)U->shape[1], S = (int)U->shape[3], C = G * G;
#define UC(cell) ((const float *)U->data + ((((size_t)layer * C) + (cell)) * S) * E)
    int def_objs[2] = {ids_catalog_builtin(0, 0), ids_catalog_builtin(2, 1)};
    const int *objs = o->n_objects ? o->objects : def_objs;
    const int n_obj = o->n_objects ? o->n_objects : 2, n_img = o->n_images > 0 ? o->n_images : 8;
    const float factor = o->factor > 0 ? o->factor : 5.0f;
    ids_stim_opts so;
    scene_opts(o, vp, G, &so);
    int32_t cand[2] = {ids_tokenizer_word_token(tok, ids_answer_word(rel, true), err),
                       ids_tokenizer_word_token(tok, ids_answer_word(rel, false), err)};
    double *acc = calloc((size_t)C, sizeof(double));
    float *vecs = malloc(sizeof(float) * (size_t)C * E), *lp = malloc(sizeof(float) * 2 * (size_t)C);
    ids_hook *hooks = calloc((size_t)C, sizeof *hooks);
    ids_variant *vars = calloc((size_t)C, sizeof *vars);
    ids_run_out *outs = calloc((size_t)C, sizeof *outs);
    ids_ctx *ctx = NULL;
    if (cand[0] < 0 || cand[1] < 0) st = err ? err->code : IDS_ERR_NOT_FOUND;
    else if (!acc || !vecs || !lp || !hooks || !vars || !outs) st = ids__err(err, IDS_ERR_NOMEM, "steer grid: out of memory");
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 4096;
    cp.max_rows = 4096;
    cp.n_threads = o->n_threads;
    if (!st) st = ids_ctx_new(&ctx, m, cp, err);
    const int total = n_obj * (n_obj - 1) * n_img;
    int done_n = 0;
    for (int a = 0; a < n_obj && !st; a++)
        for (int b = 0; b < n_obj && !st; b++) {
            if (a == b) continue;
            int pair[2] = {objs[a], objs[b]};
            so.objects = pair;
            so.n_objects = 2;
            int count;
            if ((st = ids_stim_count(IDS_SET_GRID, &so, cat, &count, err))) break;
            uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)(a * 131 + b) + 7;
            for (int it = 0; it < n_img && !st; it++) {
                ids_stim s;
                if ((st = ids__draw_stim(IDS_SET_GRID, &so, cat, count, -1, &rng, &s, err))) break;
                ids_seq *seq = NULL;
                st = ids__question_seq(v, cat, rel, &s, &s.frames[0], 1, o->n_threads, &seq, err);
                ids_sel w = {.kind = IDS_SEL_WORD, .word = ids_catalog_word(cat, s.obj[0].obj), .after_image = true};
                float lpc[2];
                ids_run_opts ro = {.cand = cand, .n_cand = 2};
                ids_run_out oc = {.cand_logprob = lpc};
                if (!st) st = ids_ctx_prefill(ctx, seq, NULL, 0, &ro, &oc, err);
                const int src = s.obj[0].cell_y * G + s.obj[0].cell_x;
                for (int t = 0; !st && t < C; t++) {
                    float *vt = vecs + (size_t)t * E;
                    const float *ut = UC(t), *us = UC(src);
                    for (int e = 0; e < E; e++) vt[e] = factor * (ut[e] - us[e]);
                    hooks[t] = (ids_hook){.site = IDS_SITE_RESID, .layer = layer, .sel = w, .action = IDS_ACT_ADD, .vec = vt,
                                          .len = (size_t)E};
                    vars[t] = (ids_variant){&hooks[t], 1};
                    outs[t] = (ids_run_out){.cand_logprob = lp + 2 * t};
                }
                if (!st) st = ids_ctx_run_batch(ctx, vars, C, &ro, outs, err);
                for (int t = 0; !st && t < C; t++) acc[t] += ((double)lp[2 * t] - lp[2 * t + 1]) - ((double)lpc[0] - lpc[1]);
                if (!st) out->n_items++;
                ids_seq_free(seq);
                ids_stim_free(&s);
                done_n++;
                if (progress) progress("steer grid", done_n, total, user);
            }
        }
#undef UC
    if (!st) {
        out->grid = G;
        out->layer = layer;
        out->delta = malloc(sizeof(float) * (size_t)C);
        if (!out->delta) st = ids__err(err, IDS_ERR_NOMEM, "steer grid: out of memory");
        for (int t = 0; !st && t < C; t++) out->delta[t] = out->n_items ? (float)(acc[t] / out->n_items) : 0;
    }
    ids_ctx_free(ctx);
    free(acc);
    free(vecs);
    free(lp);
    free(hooks);
    free(vars);
    free(outs);
    ids_st_close(f);
    return st;
}

void ids_depth_result_free(ids_depth_result *r) {
    free(r->ab_down);
    free(r->ab_up);
    free(r->fb_down);
    free(r->fb_up);
    memset(r, 0, sizeof *r);
}

ids_status ids_depth_diag(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, ids_depth_result *out,
                          ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    const ids_model *m = ids_vlm_model(v);
    const ids_hparams *hp = ids_model_hparams(m);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    const ids_tokenizer *tok = ids_model_tokenizer(m);
    const int L = hp->n_layer + 1, E = hp->n_embd;
    const int lo = o->layer_lo > 0 ? o->layer_lo : 1, hi = o->layer_hi > 0 ? o->layer_hi : hp->n_layer - 1;
    if (lo > hi || hi >= L) return ids__err(err, IDS_ERR_RANGE, "depth: layer band %d..%d is outside 1..%d", lo, hi, L - 1);
    const int NB = hi - lo + 1;
    ids_st_file *f = NULL;
    const ids_st_tensor *U = NULL;
    ids_status st = open_ids(o, L, E, &f, &U, err);
    if (st) return st;
    const int G = (int)U->shape[1], S = (int)U->shape[3];
    int def_objs[2] = {ids_catalog_builtin(0, 0), ids_catalog_builtin(2, 1)};
    const int *objs = o->n_objects ? o->objects : def_objs;
    const int n_obj = o->n_objects ? o->n_objects : 2, n_img = o->n_images > 0 ? o->n_images : 8;
    const float factor = o->factor > 0 ? o->factor : 5.0f;
    ids_stim_opts so;
    scene_opts(o, vp, G, &so);
    double *acc = calloc((size_t)4 * NB, sizeof(double));
    float *caps = malloc(sizeof(float) * (size_t)L * E), *vecs = malloc(sizeof(float) * 2 * (size_t)NB * E);
    float *lp = malloc(sizeof(float) * 4 * (size_t)NB);
    ids_hook *hooks = calloc((size_t)2 * NB, sizeof *hooks), capk[64];
    ids_variant *vars = calloc((size_t)2 * NB, sizeof *vars);
    ids_run_out *outs = calloc((size_t)2 * NB, sizeof *outs);
    ids_ctx *ctx = NULL;
    if (!acc || !caps || !vecs || !lp || !hooks || !vars || !outs || L > 64) st = ids__err(err, IDS_ERR_NOMEM, "depth: out of memory");
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 4096;
    cp.max_rows = 4096;
    cp.n_threads = o->n_threads;
    if (!st) st = ids_ctx_new(&ctx, m, cp, err);
    const int total = 2 * n_obj * (n_obj - 1) * n_img;
    int done_n = 0;
    for (int which = 0; which < 2 && !st; which++) { /* 0: grid scenes, above/below; 1: depth scenes, front/behind */
        const ids_relation rel = which ? IDS_REL_FRONT_BEHIND : IDS_REL_ABOVE_BELOW;
        const ids_set_kind kind = which ? IDS_SET_DEPTH : IDS_SET_GRID;
        char w1[32], w2[32];
        snprintf(w1, sizeof w1, "%s", ids_answer_word(rel, true));
        snprintf(w2, sizeof w2, "%s", ids_answer_word(rel, false));
        if (strchr(w1, ' ')) *strchr(w1, ' ') = 0; /* the first word */
        if (strchr(w2, ' ')) *strchr(w2, ' ') = 0; /* the first word */
        int32_t cand[2] = {ids_tokenizer_word_token(tok, w1, err), ids_tokenizer_word_token(tok, w2, err)};
        if (cand[0] < 0 || cand[1] < 0) {
            st = err ? err->code : IDS_ERR_NOT_FOUND;
            break;
        }
        for (int a = 0; a < n_obj && !st; a++)
            for (int b = 0; b < n_obj && !st; b++) {
                if (a == b) continue;
                int pair[2] = {objs[a], objs[b]};
                so.objects = pair;
                so.n_objects = 2;
                int count;
                if ((st = ids_stim_count(kind, &so, cat, &count, err))) break;
                uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)(a * 131 + b) + 31 * (uint64_t)which;
                for (int it = 0; it < n_img && !st; it++) {
                    ids_stim s;
                    if ((st = ids__draw_stim(kind, &so, cat, count, (int)rel, &rng, &s, err))) break;
                    ids_seq *seq = NULL;
                    st = ids__question_seq(v, cat, rel, &s, &s.frames[0], 1, o->n_threads, &seq, err);
                    ids_sel w = {.kind = IDS_SEL_WORD, .word = ids_catalog_word(cat, s.obj[0].obj), .after_image = true};
                    for (int l = 0; l < L; l++)
                        capk[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = w, .action = IDS_ACT_CAPTURE,
                                             .out = caps + (size_t)l * E, .len = (size_t)E};
                    float lpc[2];
                    ids_run_opts ro = {.cand = cand, .n_cand = 2};
                    ids_run_out oc = {.cand_logprob = lpc};
                    if (!st) st = ids_ctx_prefill(ctx, seq, capk, L, &ro, &oc, err);
                    for (int k = 0; !st && k < NB; k++) {
                        const int l = lo + k;
                        const float *u0 = (const float *)U->data + ((((size_t)l * G + 0) * G + 0) * S) * E;
                        const float *u1 = (const float *)U->data + ((((size_t)l * G + (G - 1)) * G + 0) * S) * E;
                        double hn = 0;
                        for (int e = 0; e < E; e++) hn += (double)caps[(size_t)l * E + e] * caps[(size_t)l * E + e];
                        hn = sqrt(hn) * factor;
                        for (int dir = 0; dir < 2; dir++) { /* 0: down, 1: up */
                            float *vd = vecs + ((size_t)2 * k + dir) * E;
                            for (int e = 0; e < E; e++) vd[e] = (float)((dir ? -1.0 : 1.0) * ((double)u1[e] - u0[e]));
                            rescale(vd, E, hn);
                            hooks[2 * k + dir] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = w, .action = IDS_ACT_ADD,
                                                            .vec = vd, .len = (size_t)E};
                            vars[2 * k + dir] = (ids_variant){&hooks[2 * k + dir], 1};
                            outs[2 * k + dir] = (ids_run_out){.cand_logprob = lp + 2 * (2 * k + dir)};
                        }
                    }
                    if (!st) st = ids_ctx_run_batch(ctx, vars, 2 * NB, &ro, outs, err);
                    for (int k = 0; !st && k < NB; k++)
                        for (int dir = 0; dir < 2; dir++) {
                            const float *p = lp + 2 * (2 * k + dir);
                            acc[(size_t)(2 * which + dir) * NB + k] += ((double)p[0] - p[1]) - ((double)lpc[0] - lpc[1]);
                        }
                    if (!st) {
                        if (which) out->n_depth++;
                        else out->n_grid++;
                    }
                    ids_seq_free(seq);
                    ids_stim_free(&s);
                    done_n++;
                    if (progress) progress("depth", done_n, total, user);
                }
            }
    }
    if (!st) {
        out->layer_lo = lo;
        out->n_band = NB;
        float **dst[4] = {&out->ab_down, &out->ab_up, &out->fb_down, &out->fb_up};
        for (int q = 0; q < 4 && !st; q++) {
            *dst[q] = malloc(sizeof(float) * (size_t)NB);
            if (!*dst[q]) {
                st = ids__err(err, IDS_ERR_NOMEM, "depth: out of memory");
                break;
            }
            const int n = q < 2 ? out->n_grid : out->n_depth;
            for (int k = 0; k < NB; k++) (*dst[q])[k] = n ? (float)(acc[(size_t)q * NB + k] / n) : 0;
        }
        if (st) ids_depth_result_free(out);
    }
    ids_ctx_free(ctx);
    free(acc);
    free(caps);
    free(vecs);
    free(lp);
    free(hooks);
    free(vars);
    free(outs);
    ids_st_close(f);
    return st;
}
