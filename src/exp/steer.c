/* Belief-swap steering with universal IDs vs norm-matched noise (docs/EXPERIMENTS.md). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

void ids_steer_result_free(ids_steer_result *r) {
    free(r->rate_id);
    free(r->rate_noise);
    free(r->greedy_id);
    free(r->greedy_noise);
    free(r->item_id);
    free(r->item_rel);
    free(r->item_dc);
    free(r->item_truth);
    free(r->item_swap_id);
    free(r->item_swap_noise);
    free(r->item_greedy_id);
    free(r->item_greedy_noise);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}


static void rescale(float *v, int E, double norm) {
    double n = 0;
    for (int e = 0; e < E; e++) n += (double)v[e] * v[e];
    n = sqrt(n);
    for (int e = 0; e < E; e++) v[e] = n > 0 ? (float)(v[e] / n * norm) : 0.0f;
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

/* What the three steering experiments share: the model, the IDs file, one context, the scenes'
 * options, the answer tokens, and room for n_var variants (one hook, one vector of E, two
 * log-probs each; n_var 0 at init: one per cell of the IDs' grid). */
typedef struct {
    ids__exp x; /* model, catalog, objects, images per pair, seed, threads */
    const ids_tokenizer *tok;
    const ids_steer_opts *o;
    ids_st_file *f;
    const ids_st_tensor *U;
    ids_ctx *ctx;
    ids_stim_opts so;
    int L, E, G, S;
    float factor;
    ids__answers ans; /* the relation asked now */
    ids__answers ansv[IDS_REL_COUNT]; /* every relation's, made when first asked */
    bool ans_made[IDS_REL_COUNT];
    int n_var;
    float *vecs, *lp, *lpraw, *caps; /* lp: [n_var][2] answers; lpraw: [n_var][IDS__MAX_CAND]; caps: [2][L][E] */
    ids_hook *hooks, capk[2 * 64];
    ids_variant *vars;
    ids_run_out *outs;
} steer_env;

/* The universal ID at (layer, x, y), size index 0 (the largest). */
static const float *uid(const steer_env *e, int l, int x, int y) {
    return (const float *)e->U->data + ((((size_t)l * e->G + y) * e->G + x) * e->S) * e->E;
}

static void steer_env_free(steer_env *e) {
    ids_ctx_free(e->ctx);
    free(e->vecs);
    free(e->lp);
    free(e->lpraw);
    free(e->caps);
    free(e->hooks);
    free(e->vars);
    free(e->outs);
    ids_st_close(e->f);
    memset(e, 0, sizeof *e);
}

/* n_def: default object count (3 for "between"); what names the experiment in errors. */
static ids_status steer_env_init(steer_env *e, const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, int n_var,
                                 int n_def, const char *what, ids_progress_fn progress, void *user, ids_err *err) {
    memset(e, 0, sizeof *e);
    const ids_model *m = ids_vlm_model(v);
    const ids_hparams *hp = ids_model_hparams(m);
    e->o = o, e->tok = ids_model_tokenizer(m);
    e->L = hp->n_layer + 1, e->E = hp->n_embd;
    ids_status st = ids__exp_init(&e->x, &o->exp, v, cat, n_def, 2, what, progress, user, err);
    if (st) return st;
    if (!o->ids_path) return ids__err(err, IDS_ERR_ARG, "%s: no IDs file (ids extract writes one)", what);
    if ((st = ids_st_open(&e->f, o->ids_path, err))) return st;
    if ((st = ids__st_f32(e->f, o->ids_path, "universal", 5, false, &e->U, err))) {
        steer_env_free(e);
        return st;
    }
    if (e->U->shape[0] != e->L || e->U->shape[4] != e->E || e->U->shape[1] != e->U->shape[2]) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: 'universal' must be [%d layers, y, x, size, %d] (a square grid) for this "
                      "model", o->ids_path, e->L, e->E);
        steer_env_free(e);
        return st;
    }
    if (o->holdout_objects && (st = ids__holdout_check(&e->x, o->ids_path, "ids.json", what, err))) {
        steer_env_free(e);
        return st;
    }
    e->G = (int)e->U->shape[1], e->S = (int)e->U->shape[3];
    e->x.grid = e->G; /* the scenes use the IDs' grid */
    ids__exp_stim_opts(&e->x, &e->so);
    e->factor = o->factor > 0 ? o->factor : 5.0f;
    e->n_var = n_var = n_var > 0 ? n_var : (n_var < 0 ? -n_var : 1) * e->G * e->G; /* -k: k per cell */
    e->vecs = ids__malloc(sizeof(float) * (size_t)n_var * e->E);
    e->lp = ids__malloc(sizeof(float) * 2 * (size_t)n_var);
    e->lpraw = ids__malloc(sizeof(float) * IDS__MAX_CAND * (size_t)n_var);
    e->caps = ids__malloc(sizeof(float) * 2 * (size_t)e->L * e->E);
    e->hooks = ids__calloc((size_t)n_var, sizeof *e->hooks);
    e->vars = ids__calloc((size_t)n_var, sizeof *e->vars);
    e->outs = ids__calloc((size_t)n_var, sizeof *e->outs);
    if (!e->vecs || !e->lp || !e->lpraw || !e->caps || !e->hooks || !e->vars || !e->outs || e->L > 64) {
        steer_env_free(e);
        return ids__err(err, IDS_ERR_NOMEM, "steer: out of memory");
    }
    if ((st = ids__exp_ctx(&e->x, 1, 4096, true, &e->ctx, err))) steer_env_free(e);
    return st;
}

/* The answers of relation rel from now on (their tokens recorded in pr). */
static ids_status steer_answers(steer_env *e, ids_relation rel, ids_prompting *pr, ids_err *err) {
    if (!e->ans_made[rel]) {
        ids_status st = ids__answers_init(&e->ansv[rel], e->tok, rel, err);
        if (st) return st;
        e->ans_made[rel] = true;
    }
    e->ans = e->ansv[rel];
    ids__prompting_add(pr, e->x.instruction, &e->ans.set);
    return IDS_OK;
}

/* The clean run of the item's question: log-probs of the answers into lpc; with n_words > 0 the rows
 * of the first n_words object words at every layer into e->caps. Returns the sequence in *seq. */
static ids_status steer_clean(steer_env *e, ids_relation rel, const ids__item *it, int n_words, ids_sel *ws, float lpc[2],
                              ids_seq **seq, ids_err *err) {
    ids_status st = ids__item_seq(&e->x, rel, it, seq, err);
    for (int w = 0; w < 2; w++) ws[w] = (ids_sel){.kind = IDS_SEL_WORD, .word = it->word[w], .after_image = true};
    int rows[2];
    if (!st) st = ids__object_rows(*seq, e->tok, ws[0].word, ws[1].word, rows, err);
    for (int w = 0; w < n_words; w++)
        for (int l = 0; l < e->L; l++)
            e->capk[w * e->L + l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[w], .action = IDS_ACT_CAPTURE,
                                               .out = e->caps + ((size_t)w * e->L + l) * e->E, .len = (size_t)e->E};
    float raw[IDS__MAX_CAND];
    ids_run_opts ro = {.cand = e->ans.cand, .n_cand = e->ans.n_cand};
    ids_run_out oc = {.cand_logprob = raw};
    if (!st) st = ids_ctx_prefill(e->ctx, *seq, e->capk, n_words * e->L, &ro, &oc, err);
    if (!st) ids_answer_set_reduce(&e->ans.set, raw, lpc);
    return st;
}

/* Norm of word w's row at layer l in the clean run, times the factor. */
static double steer_norm(const steer_env *e, int w, int l) {
    const float *h = e->caps + ((size_t)w * e->L + l) * e->E;
    double hn = 0;
    for (int i = 0; i < e->E; i++) hn += (double)h[i] * h[i];
    return sqrt(hn) * e->factor;
}

/* Variants [0, n) (set up in e->vars) in one batch over the clean cache: log-probs into e->lp. */
static ids_status steer_run(steer_env *e, int n, ids_err *err) {
    for (int k = 0; k < n; k++) e->outs[k] = (ids_run_out){.cand_logprob = e->lpraw + (size_t)IDS__MAX_CAND * k};
    ids_run_opts ro = {.cand = e->ans.cand, .n_cand = e->ans.n_cand};
    ids_status st = ids_ctx_run_batch(e->ctx, e->vars, n, &ro, e->outs, err);
    for (int k = 0; !st && k < n; k++) ids_answer_set_reduce(&e->ans.set, e->lpraw + (size_t)IDS__MAX_CAND * k, e->lp + 2 * k);
    return st;
}

/* The 3 entries of rate[0..n) with the highest values (ties: the earlier), -1 where n < 3. */
static void best3(const float *rate, int n, int best[3]) {
    best[0] = best[1] = best[2] = -1;
    for (int k = 0; k < n; k++)
        for (int b = 0; b < 3; b++)
            if (best[b] < 0 || rate[k] > rate[best[b]]) {
                for (int c = 2; c > b; c--) best[c] = best[c - 1];
                best[b] = k;
                break;
            }
}

/* ---- belief swapping ---- */

typedef struct {
    steer_env *e;
    ids_relation rel;
    unsigned rels; /* on an image set: the relations its records may be asked */
    int lo, NB;
    int *swaps_id, *swaps_noise, *g_id, *g_noise;
    uint64_t noise_rng;
    ids_steer_result *out;
    int cap;      /* items the per-item arrays of out hold */
    int32_t *rec; /* the current item's record */
} belief_job;

/* Room for item n (0-based) of the per-item arrays (grown by doubling; cap: the items they hold). */
static ids_status belief_items_grow(ids_steer_result *r, int NB, int *cap, ids_err *err) {
    if (r->n_items < *cap) return IDS_OK;
    const int nc = *cap ? 2 * *cap : 16;
    void *p[8] = {ids__realloc(r->item_id, sizeof *r->item_id * (size_t)nc), ids__realloc(r->item_rel, (size_t)nc),
                  ids__realloc(r->item_dc, sizeof(float) * (size_t)nc), ids__realloc(r->item_truth, (size_t)nc),
                  ids__realloc(r->item_swap_id, (size_t)nc * NB), ids__realloc(r->item_swap_noise, (size_t)nc * NB),
                  ids__realloc(r->item_greedy_id, (size_t)nc * NB), ids__realloc(r->item_greedy_noise, (size_t)nc * NB)};
    if (p[0]) r->item_id = p[0];
    if (p[1]) r->item_rel = p[1];
    if (p[2]) r->item_dc = p[2];
    if (p[3]) r->item_truth = p[3];
    if (p[4]) r->item_swap_id = p[4];
    if (p[5]) r->item_swap_noise = p[5];
    if (p[6]) r->item_greedy_id = p[6];
    if (p[7]) r->item_greedy_noise = p[7];
    for (int k = 0; k < 8; k++)
        if (!p[k]) return ids__err(err, IDS_ERR_NOMEM, "steer belief: out of memory for %d items", nc);
    *cap = nc;
    return IDS_OK;
}

/* An item's record into the counts and, when the item was used, into the per-item verdicts, in item
 * order (the same counts, intervals and per-item rows from fresh, kept or merged items). The id,
 * the relation and the truth are the item's own; the clean D is the record's. */
static ids_status belief_add(belief_job *j, const int32_t *rec, const ids__item *it, ids_relation rel, ids_err *err) {
    const int NB = j->NB;
    ids_steer_result *r = j->out;
    r->n_skipped += rec[0];
    if (!rec[1]) return IDS_OK;
    ids_status st = belief_items_grow(r, NB, &j->cap, err);
    if (st) return st;
    const size_t at = (size_t)r->n_items * NB;
    for (int k = 0; k < NB; k++) {
        j->swaps_id[k] += rec[2 + k];
        j->swaps_noise[k] += rec[2 + NB + k];
        j->g_id[k] += rec[2 + 2 * NB + k];
        j->g_noise[k] += rec[2 + 3 * NB + k];
        r->item_swap_id[at + k] = (unsigned char)rec[2 + k];
        r->item_swap_noise[at + k] = (unsigned char)rec[2 + NB + k];
        r->item_greedy_id[at + k] = (unsigned char)rec[2 + 2 * NB + k];
        r->item_greedy_noise[at + k] = (unsigned char)rec[2 + 3 * NB + k];
    }
    float dc;
    memcpy(&dc, &rec[2 + 4 * NB], sizeof dc);
    snprintf(r->item_id[r->n_items], sizeof *r->item_id, "%s", it->id ? it->id : "");
    r->item_rel[r->n_items] = (unsigned char)rel;
    r->item_dc[r->n_items] = dc;
    r->item_truth[r->n_items] = it->has[rel] ? (signed char)it->truth[rel] : -1;
    r->n_items++;
    return IDS_OK;
}

static ids_status belief_item(void *user, const ids__item *it, ids_err *err) {
    belief_job *j = user;
    steer_env *e = j->e;
    const int E = e->E, G = e->G, NB = j->NB;
    ids_seq *seq = NULL;
    ids_sel ws[2];
    float lpc[2];
    /* a drawn scene is asked the run's relation; a record of a set its own (left/right first) */
    const ids_relation rel = it->stim || !(j->rels >> IDS_REL_ABOVE_BELOW & 1u) ? j->rel
                             : (j->rels >> IDS_REL_LEFT_RIGHT & 1u) && it->has[IDS_REL_LEFT_RIGHT] ? IDS_REL_LEFT_RIGHT
                                                                                                  : IDS_REL_ABOVE_BELOW;
    j->out->relations |= 1u << rel;
    ids_status st = steer_answers(e, rel, &j->out->prompting, err);
    /* the item's record: [0] skipped, [1] used, then per layer of the band: swaps by the ID, by the
     * noise, greedy swaps by the ID, by the noise, then the clean D (a float's bits) (kept, so that a
     * rerun or a merge adds them again) */
    int32_t *rec = j->rec;
    const size_t rec_len = sizeof(int32_t) * (3 + 4 * (size_t)NB);
    const void *kept = NULL;
    size_t kept_len = 0;
    if (!st) st = ids__item_find(&e->x, &kept, &kept_len, err);
    if (!st && kept && kept_len != rec_len)
        st = ids__err(err, IDS_ERR_FORMAT, "steer belief: kept item %ld has %zu bytes, %zu expected", e->x.item, kept_len, rec_len);
    if (!st && kept) {
        memcpy(rec, kept, rec_len);
        return belief_add(j, rec, it, rel, err);
    }
    memset(rec, 0, rec_len);
    /* the noise of an item from the seed and the item's number alone (the same in any shard) */
    uint64_t noise_seed = e->x.seed * 7919 + 17 + (uint64_t)e->x.item * 0x9E3779B97F4A7C15ull;
    j->noise_rng = ids__rng_splitmix(&noise_seed);
    if (!st) st = steer_clean(e, rel, it, 2, ws, lpc, &seq, err);
    const double dc = (double)lpc[0] - lpc[1];
    if (!st && dc == 0) {
        rec[0] = 1;
    } else if (!st) {
        /* the subject's push opposes the model's answer: it said "first" (left/above) -> push the
         * subject right/down (+d), the reference left/up (-d); hooks [4k + w] ID, [4k + 2 + w] noise */
        const double sign_a = dc > 0 ? 1.0 : -1.0;
        for (int k = 0; k < NB; k++) {
            const int l = j->lo + k;
            const float *u0 = uid(e, l, 0, 0), *u1 = rel == IDS_REL_LEFT_RIGHT ? uid(e, l, G - 1, 0) : uid(e, l, 0, G - 1);
            for (int w = 0; w < 2; w++) {
                float *vid = e->vecs + ((size_t)(4 * k) + w) * E, *vno = e->vecs + ((size_t)(4 * k) + 2 + w) * E;
                const double sg = w == 0 ? sign_a : -sign_a, hn = steer_norm(e, w, l);
                for (int i = 0; i < E; i++) {
                    vid[i] = (float)(sg * ((double)u1[i] - u0[i]));
                    vno[i] = (float)ids__rng_lcg_normal(&j->noise_rng);
                }
                rescale(vid, E, hn);
                rescale(vno, E, hn);
                e->hooks[4 * k + w] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[w], .action = IDS_ACT_ADD,
                                                 .vec = vid, .len = (size_t)E};
                e->hooks[4 * k + 2 + w] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[w], .action = IDS_ACT_ADD,
                                                     .vec = vno, .len = (size_t)E};
            }
            e->vars[2 * k] = (ids_variant){&e->hooks[4 * k], 2};
            e->vars[2 * k + 1] = (ids_variant){&e->hooks[4 * k + 2], 2};
        }
        st = steer_run(e, 2 * NB, err);
        const float dcf = (float)dc;
        memcpy(&rec[2 + 4 * NB], &dcf, sizeof dcf);
        for (int k = 0; !st && k < NB; k++) {
            const float *p = e->lp + 4 * k;
            const double di = (double)p[0] - p[1], dn = (double)p[2] - p[3];
            rec[2 + k] = (di > 0) != (dc > 0);
            rec[2 + NB + k] = (dn > 0) != (dc > 0);
        }
        /* the same from short greedy answers, judged by whole answer words */
        int vc = -1;
        const int gt = e->o->greedy_tokens;
        if (!st && gt > 0) st = greedy_verdict(e->ctx, e->tok, NULL, 0, gt, rel, &vc, err);
        for (int k = 0; !st && vc >= 0 && k < NB; k++) {
            int vi = -1, vn = -1;
            st = greedy_verdict(e->ctx, e->tok, e->vars[2 * k].hooks, 2, gt, rel, &vi, err);
            if (!st) st = greedy_verdict(e->ctx, e->tok, e->vars[2 * k + 1].hooks, 2, gt, rel, &vn, err);
            rec[2 + 2 * NB + k] = vi >= 0 && vi != vc;
            rec[2 + 3 * NB + k] = vn >= 0 && vn != vc;
        }
        if (!st) rec[1] = 1;
    }
    ids_seq_free(seq);
    if (!st) st = ids__item_keep(&e->x, rec, rec_len, err);
    return st ? st : belief_add(j, rec, it, rel, err);
}

/* Per-layer rates from counts over n items, and the mean of both at the 3 layers best by `by`. */
static ids_status rates(const int *a, const int *b, int NB, int n, float **ra, float **rb, float *ba, float *bb,
                        ids_err *err) {
    *ra = ids__malloc(sizeof(float) * (size_t)NB);
    *rb = ids__malloc(sizeof(float) * (size_t)NB);
    if (!*ra || !*rb) return ids__err(err, IDS_ERR_NOMEM, "steer: out of memory");
    for (int k = 0; k < NB; k++) {
        (*ra)[k] = n ? (float)a[k] / n : 0;
        (*rb)[k] = n ? (float)b[k] / n : 0;
    }
    int best[3], nb = 0;
    best3(*ra, NB, best);
    *ba = *bb = 0;
    for (int q = 0; q < 3; q++)
        if (best[q] >= 0) *ba += (*ra)[best[q]], *bb += (*rb)[best[q]], nb++;
    if (nb) *ba /= nb, *bb /= nb;
    return IDS_OK;
}

/* ---- what a steering run is after defaults, and its provenance ---- */

typedef struct {
    ids_relation rel;
    unsigned rels; /* steer belief on an image set: the relations its records are asked (a bit each) */
    int lo, hi; /* band (steer grid: lo == hi, the one layer) */
    float factor;
} steer_plan;

static const char *const k_steer_cmd[3] = {"steer belief", "steer grid", "depth"};

void ids_steer_default_band(const ids_vlm *v, int *lo, int *hi) {
    const int n = ids_model_hparams(ids_vlm_model(v))->n_layer;
    const char *meta = NULL;
    *lo = 1, *hi = n - 1;
    if (ids_gguf_get_str(ids_model_gguf(ids_vlm_model(v)), "idscope.training", &meta, NULL) == IDS_OK && meta) return;
    if (ids_model_hparams(ids_vlm_model(v))->n_xattn) { /* Llama-3.2-Vision (11B, 40 layers): 10-20 */
        if (n == 40) *lo = 10, *hi = 20;
        else *lo = (int)lround(n * 10.0 / 40), *hi = (int)lround(n * 20.0 / 40);
    } else if (ids_model_hparams(ids_vlm_model(v))->gemma3) { /* Gemma 3: 10-22 for both 4B (34) and 12B (48) */
        if (n == 34 || n == 48) *lo = 10, *hi = 22;
        else *lo = (int)lround(n * 10.0 / 34), *hi = (int)lround(n * 22.0 / 34);
    } else if (ids_vision_params(ids_vlm_vision(v))->dynamic) { /* Qwen2-VL */
        if (n == 28) *lo = 6, *hi = 16;
        else if (n == 36) *lo = 8, *hi = 18;
        else *lo = (int)lround(n * 6.0 / 28), *hi = (int)lround(n * 16.0 / 28);
    } else { /* LLaVA-1.5 */
        if (n == 32) *lo = 8, *hi = 20;
        else if (n == 40) *lo = 10, *hi = 20;
        else *lo = (int)lround(n * 0.25), *hi = (int)lround(n * 0.625);
    }
    if (*lo < 1) *lo = 1;
    if (*hi > n - 1) *hi = n - 1;
    if (*hi < *lo) *hi = *lo;
}

int ids_steer_layer_limit(const ids_vlm *v) {
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    const int n = hp->n_layer;
    if (!hp->gemma3 && !hp->n_xattn) return n - 1;
    /* the layers the paper kept: Gemma-3 0-29 of 34 and 0-39 of 48, Llama-3.2-Vision 0-32 of 40 */
    int lim = hp->n_xattn ? (n == 40 ? 32 : (int)lround(n * 32.0 / 40))
                          : n == 34 ? 29 : n == 48 ? 39 : (int)lround(n * 29.0 / 34);
    return lim < 1 ? 1 : lim > n - 1 ? n - 1 : lim;
}

static ids_status steer_plan_make(ids__steer_kind k, const ids_vlm *v, const ids_steer_opts *o, steer_plan *pl, ids_err *err) {
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    const int L = hp->n_layer + 1;
    pl->factor = o->factor > 0 ? o->factor : 5.0f;
    if (k == IDS__STEER_GRID) {
        const ids_relation r = o->relation;
        pl->rel = r == IDS_REL_ABOVE_BELOW || r == IDS_REL_NEAR_FAR || r == IDS_REL_BETWEEN ? r : IDS_REL_LEFT_RIGHT;
        pl->rels = 1u << pl->rel; /* (was left unset: the provenance's "relation" read an uninitialised value) */
        pl->lo = pl->hi = o->layer_lo > 0 ? o->layer_lo : hp->n_layer / 2;
        if (pl->lo < 1 || pl->lo >= L)
            return ids__err(err, IDS_ERR_RANGE, "steer grid: layer %d is outside 1..%d", pl->lo, L - 1);
        return IDS_OK;
    }
    pl->rel = k == IDS__STEER_DEPTH ? IDS_REL_ABOVE_BELOW
              : o->relation == IDS_REL_ABOVE_BELOW ? IDS_REL_ABOVE_BELOW : IDS_REL_LEFT_RIGHT;
    pl->rels = 1u << pl->rel;
    if (k == IDS__STEER_BELIEF && o->exp.set_dir && !o->relation_only)
        pl->rels = 1u << IDS_REL_LEFT_RIGHT | 1u << IDS_REL_ABOVE_BELOW;
    int band_lo = 1, band_hi = ids_steer_layer_limit(v);
    if (k == IDS__STEER_BELIEF) ids_steer_default_band(v, &band_lo, &band_hi);
    pl->lo = o->layer_lo > 0 ? o->layer_lo : band_lo;
    pl->hi = o->layer_hi > 0 ? o->layer_hi : o->layer_lo > 0 && o->layer_lo > band_hi ? hp->n_layer - 1 : band_hi;
    if (pl->lo > pl->hi || pl->hi >= L)
        return ids__err(err, IDS_ERR_RANGE, "%s: layer band %d..%d is outside 1..%d", k_steer_cmd[k], pl->lo, pl->hi, L - 1);
    return IDS_OK;
}

ids_status ids__steer_prov(ids__steer_kind k, const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                           ids_prov **out, ids_err *err) {
    *out = NULL;
    steer_plan pl;
    ids__exp x;
    ids_status st = steer_plan_make(k, v, o, &pl, err);
    const int n_def = k == IDS__STEER_GRID && pl.rel == IDS_REL_BETWEEN ? 3 : 2;
    if (!st) st = ids__exp_init(&x, &o->exp, v, cat, n_def, 2, k_steer_cmd[k], NULL, NULL, err);
    if (!st && !o->ids_path) st = ids__err(err, IDS_ERR_ARG, "%s: no IDs file (ids extract writes one)", k_steer_cmd[k]);
    ids_st_file *f = NULL;
    if (!st) st = ids_st_open(&f, o->ids_path, err);
    const ids_st_tensor *U = f ? ids_st_find(f, "universal") : NULL;
    if (!st && U && U->ndim == 5) x.grid = (int)U->shape[1]; /* the scenes use the IDs' grid */
    ids_st_close(f);
    if (!st) st = ids__exp_prov(&x, k_steer_cmd[k], out, err);
    if (!st) st = ids_prov_input(*out, "ids", o->ids_path, err);
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
        return st;
    }
    ids_prov_opt_str(*out, "relation", pl.rels == (1u << pl.rel) ? ids_relation_name(pl.rel) : "each record's left_right or above_below");
    ids_prov_opt_num(*out, "factor", pl.factor);
    ids_prov_opt_int(*out, "layer_lo", pl.lo);
    ids_prov_opt_int(*out, "layer_hi", pl.hi);
    ids_prov_opt_int(*out, "bootstrap", IDS_BOOT_DEFAULT); /* the intervals' resamples */
    if (k == IDS__STEER_BELIEF) ids_prov_opt_int(*out, "greedy_tokens", o->greedy_tokens > 0 ? o->greedy_tokens : 0);
    if (k == IDS__STEER_GRID && o->variant == IDS_GRID_PAPER) ids_prov_opt_str(*out, "variant", "paper");
    if (k == IDS__STEER_DEPTH && o->raw) ids_prov_opt_bool(*out, "raw", true);
    if (o->holdout_objects) ids_prov_opt_bool(*out, "holdout_objects", true);
    return IDS_OK;
}

ids_status ids_steer_belief(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, ids_steer_result *out,
                            ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    steer_plan pl;
    ids_status st = steer_plan_make(IDS__STEER_BELIEF, v, o, &pl, err);
    if (!st) st = ids__steer_prov(IDS__STEER_BELIEF, v, cat, o, &out->prov, err);
    if (st) return st;
    const ids_relation rel = pl.rel;
    const int lo = pl.lo, NB = pl.hi - pl.lo + 1;
    out->relation = rel, out->factor = pl.factor, out->greedy_tokens = o->greedy_tokens > 0 ? o->greedy_tokens : 0;
    steer_env e;
    if ((st = steer_env_init(&e, v, cat, o, 4 * NB, 2, "steer belief", progress, user, err))) {
        ids_steer_result_free(out);
        return st;
    }
    belief_job j = {&e, rel, pl.rels, lo, NB, ids__calloc((size_t)NB, sizeof(int)), ids__calloc((size_t)NB, sizeof(int)),
                    ids__calloc((size_t)NB, sizeof(int)), ids__calloc((size_t)NB, sizeof(int)), 0, out, 0,
                    ids__calloc(3 + 4 * (size_t)NB, sizeof(int32_t))};
    if (!j.swaps_id || !j.swaps_noise || !j.g_id || !j.g_noise || !j.rec) st = ids__err(err, IDS_ERR_NOMEM, "steer: out of memory");
    e.x.prov = out->prov; /* the request the kept items answer */
    /* no true cell is needed: the push opposes the model's own answer */
    if (!st)
        st = ids__exp_items(&e.x, IDS_SET_GRID, &e.so, (int)rel, 99, pl.rels, 0, belief_item, &j, "steer belief", &out->set, err);
    if (!st) {
        out->layer_lo = lo;
        out->n_band = NB;
        st = rates(j.swaps_id, j.swaps_noise, NB, out->n_items, &out->rate_id, &out->rate_noise, &out->best3_id,
                   &out->best3_noise, err);
    }
    if (!st && o->greedy_tokens > 0)
        st = rates(j.g_id, j.g_noise, NB, out->n_items, &out->greedy_id, &out->greedy_noise, &out->greedy_best3_id,
                   &out->greedy_best3_noise, err);
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&e.x, st, err);
    if (st) ids_steer_result_free(out);
    free(j.rec);
    free(j.swaps_id);
    free(j.swaps_noise);
    free(j.g_id);
    free(j.g_noise);
    steer_env_free(&e);
    return st;
}

/* ---- arbitrary steering over the grid ---- */

typedef struct {
    steer_env *e;
    ids_relation rel;
    int layer;
    double *acc, *rec; /* [3][C]: the push, the random and the orthogonal control; sums, then the current item's record */
    ids_steer_grid_result *out;
    uint64_t rng;
    int cap;     /* items out->item_delta holds */
} grid_job;

/* The two controls of a grid push vt (E floats): a random direction and the same arithmetic on the
 * transposed IDs (x and y swapped: the other axis) less its component along vt, both of vt's norm. */
static void grid_controls(grid_job *j, const float *vt, int tx, int ty, int sx, int sy, float *vr, float *vo) {
    steer_env *e = j->e;
    const int E = e->E;
    const float *ut = uid(e, j->layer, ty, tx), *us = uid(e, j->layer, sy, sx);
    double nn = 0, dot = 0;
    for (int i = 0; i < E; i++) {
        vr[i] = (float)ids__rng_lcg_normal(&j->rng);
        vo[i] = e->factor * (ut[i] - us[i]);
        nn += (double)vt[i] * vt[i], dot += (double)vo[i] * vt[i];
    }
    const double c = nn > 0 ? dot / nn : 0;
    for (int i = 0; i < E; i++) vo[i] = (float)(vo[i] - c * vt[i]);
    rescale(vr, E, sqrt(nn));
    rescale(vo, E, sqrt(nn));
}

/* The current item's record (the change per target cell under the push and its two controls) into
 * the sums and the per-image maps, in item order. */
static ids_status grid_add(grid_job *j, ids_err *err) {
    const int C3 = 3 * j->e->G * j->e->G;
    ids_steer_grid_result *r = j->out;
    if (r->n_items >= j->cap) { /* each image's changes, kept for intervals */
        const int nc = j->cap ? 2 * j->cap : 16;
        float *q = ids__realloc(r->item_delta, sizeof(float) * (size_t)nc * C3);
        if (!q) return ids__err(err, IDS_ERR_NOMEM, "steer grid: out of memory for %d items", nc);
        r->item_delta = q, j->cap = nc;
    }
    for (int v = 0; v < C3; v++) {
        j->acc[v] += j->rec[v];
        r->item_delta[(size_t)r->n_items * C3 + v] = (float)j->rec[v];
    }
    r->n_items++;
    return IDS_OK;
}

static ids_status grid_item(void *user, const ids__item *it, ids_err *err) {
    grid_job *j = user;
    steer_env *e = j->e;
    const int E = e->E, G = e->G, C = G * G;
    bool found;
    ids_status st = ids__item_doubles(&e->x, j->rec, 3 * (size_t)C, &found, err);
    if (st || found) return st ? st : grid_add(j, err);
    /* the random control's directions from the seed and the item's number (the same in any shard) */
    uint64_t rng_seed = e->x.seed * 7919 + 41 + (uint64_t)e->x.item * 0x9E3779B97F4A7C15ull;
    j->rng = ids__rng_splitmix(&rng_seed);
    ids_seq *seq = NULL;
    ids_sel ws[2];
    float lpc[2];
    st = steer_clean(e, j->rel, it, 0, ws, lpc, &seq, err);
    /* ours: from the subject's cell (off the grid, as in the "between" scenes: the cell its centre
     * falls in); the paper's: from the target's mirror cell, horizontal (vertical for above/below and
     * between) */
    const bool paper = e->o->variant == IDS_GRID_PAPER;
    const bool vertical = j->rel == IDS_REL_ABOVE_BELOW || j->rel == IDS_REL_BETWEEN;
    for (int t = 0; !st && t < C; t++) { /* factor x (ID(target) - ID(source)) at the subject word; [C + t], [2C + t] controls */
        float *vt = e->vecs + (size_t)t * E;
        const int tx = t % G, ty = t / G;
        const int sx = !paper ? it->cell_x[0] : vertical ? tx : G - 1 - tx, sy = !paper ? it->cell_y[0] : vertical ? G - 1 - ty : ty;
        const float *ut = uid(e, j->layer, tx, ty), *us = uid(e, j->layer, sx, sy);
        for (int i = 0; i < E; i++) vt[i] = e->factor * (ut[i] - us[i]);
        grid_controls(j, vt, tx, ty, sx, sy, e->vecs + (size_t)(C + t) * E, e->vecs + (size_t)(2 * C + t) * E);
        for (int c = 0; c < 3; c++) {
            const int v = c * C + t;
            e->hooks[v] = (ids_hook){.site = IDS_SITE_RESID, .layer = j->layer, .sel = ws[0], .action = IDS_ACT_ADD,
                                     .vec = e->vecs + (size_t)v * E, .len = (size_t)E};
            e->vars[v] = (ids_variant){&e->hooks[v], 1};
        }
    }
    if (!st) st = steer_run(e, 3 * C, err);
    for (int v = 0; !st && v < 3 * C; v++) j->rec[v] = ((double)e->lp[2 * v] - e->lp[2 * v + 1]) - ((double)lpc[0] - lpc[1]);
    if (!st) st = ids__item_keep(&e->x, j->rec, sizeof(double) * 3 * (size_t)C, err);
    if (!st) st = grid_add(j, err);
    ids_seq_free(seq);
    return st;
}

ids_status ids_steer_grid(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, ids_steer_grid_result *out,
                          ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    steer_plan pl;
    ids_status st = steer_plan_make(IDS__STEER_GRID, v, o, &pl, err);
    if (!st) st = ids__steer_prov(IDS__STEER_GRID, v, cat, o, &out->prov, err);
    if (st) return st;
    const ids_relation rel = pl.rel;
    const int layer = pl.lo;
    /* "between" asks about a third object: its own scenes (objects off the grid), three objects */
    const bool between = rel == IDS_REL_BETWEEN;
    out->relation = rel, out->factor = pl.factor, out->variant = o->variant;
    steer_env e; /* one variant per cell of the IDs' grid */
    if ((st = steer_env_init(&e, v, cat, o, -3, between ? 3 : 2, "steer grid", progress, user, err))) {
        ids_steer_grid_result_free(out);
        return st;
    }
    const int C = e.G * e.G;
    grid_job j = {&e, rel, layer, ids__calloc((size_t)3 * C, sizeof(double)), ids__calloc((size_t)3 * C, sizeof(double)), out, 0, 0};
    if (!j.acc || !j.rec) st = ids__err(err, IDS_ERR_NOMEM, "steer grid: out of memory");
    e.x.prov = out->prov; /* the request the kept items answer */
    if (!st) st = steer_answers(&e, rel, &out->prompting, err);
    /* records of an image set need the relation's question and the subject's box (its cell) */
    if (!st)
        st = ids__exp_items(&e.x, between ? IDS_SET_BETWEEN : IDS_SET_GRID, &e.so, -1, 7, 1u << rel,
                            o->variant == IDS_GRID_PAPER ? 0 : IDS__NEED_POS_A, grid_item, &j, "steer grid", &out->set, err);
    if (!st) {
        out->grid = e.G;
        out->layer = layer;
        float **dst[3] = {&out->delta, &out->delta_random, &out->delta_orthogonal};
        for (int c = 0; c < 3 && !st; c++) {
            if (!(*dst[c] = ids__malloc(sizeof(float) * (size_t)C))) st = ids__err(err, IDS_ERR_NOMEM, "steer grid: out of memory");
            for (int t = 0; !st && t < C; t++) (*dst[c])[t] = out->n_items ? (float)(j.acc[c * C + t] / out->n_items) : 0;
        }
    }
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&e.x, st, err);
    if (st) ids_steer_grid_result_free(out);
    free(j.acc);
    free(j.rec);
    steer_env_free(&e);
    return st;
}

void ids_steer_grid_result_free(ids_steer_grid_result *r) {
    free(r->delta);
    free(r->delta_random);
    free(r->delta_orthogonal);
    free(r->item_delta);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

/* ---- depth diagnosis ---- */

void ids_depth_result_free(ids_depth_result *r) {
    free(r->ab_down);
    free(r->ab_up);
    free(r->fb_down);
    free(r->fb_up);
    for (int c = 0; c < 2; c++)
        for (int q = 0; q < 4; q++) free(r->ctl[c][q]);
    free(r->item_ab);
    free(r->item_fb);
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

typedef struct {
    steer_env *e;
    int which, lo, NB; /* which: 0 grid scenes (above/below), 1 depth scenes (front/behind), -1 both (a set's images) */
    double *acc;       /* [3 pushes][4][NB]: (2 which + dir) */
    double *rec;       /* the current item's record: [3][4][NB] as acc, then the grid and depth question counts */
    ids_depth_result *out;
    uint64_t rng;      /* the random control's directions */
    int cap[2];        /* items the per-item arrays hold (above/below, front/behind) */
} depth_job;

/* The three pushes at layer l, each of norm hn (raw: the vertical difference's own norm x factor):
 * out[0] the vertical ID difference, out[1] a random direction, out[2] the horizontal difference
 * made orthogonal to the vertical one. */
static void depth_pushes(depth_job *j, int l, double hn, float *out[3]) {
    steer_env *e = j->e;
    const int E = e->E, G = e->G;
    const float *u0 = uid(e, l, 0, 0), *uv = uid(e, l, 0, G - 1), *uh = uid(e, l, G - 1, 0);
    double vv = 0, hv = 0;
    for (int i = 0; i < E; i++) {
        const double v = (double)uv[i] - u0[i];
        vv += v * v, hv += v * ((double)uh[i] - u0[i]);
    }
    if (e->o->raw) hn = sqrt(vv) * e->factor;
    const double c = vv > 0 ? hv / vv : 0;
    for (int i = 0; i < E; i++) {
        const double v = (double)uv[i] - u0[i];
        out[0][i] = (float)v;
        out[1][i] = (float)ids__rng_lcg_normal(&j->rng);
        out[2][i] = (float)(((double)uh[i] - u0[i]) - c * v);
    }
    for (int p = 0; p < 3; p++) rescale(out[p], E, hn);
}

/* Room for one more item of question `which` in the per-item arrays. */
static ids_status depth_grow(depth_job *j, int which, int n, ids_err *err) {
    if (n < j->cap[which]) return IDS_OK;
    const int nc = j->cap[which] ? 2 * j->cap[which] : 16;
    float **a = which ? &j->out->item_fb : &j->out->item_ab;
    float *p = ids__realloc(*a, sizeof(float) * (size_t)nc * 6 * j->NB);
    if (!p) return ids__err(err, IDS_ERR_NOMEM, "depth: out of memory for %d items", nc);
    *a = p, j->cap[which] = nc;
    return IDS_OK;
}

/* One question (which: 0 above/below, 1 in front/behind) about the item, pushed down and up. */
static ids_status depth_one(depth_job *j, const ids__item *it, int which, ids_err *err) {
    steer_env *e = j->e;
    const int E = e->E, NB = j->NB;
    const ids_relation rel = which ? IDS_REL_FRONT_BEHIND : IDS_REL_ABOVE_BELOW;
    ids_seq *seq = NULL;
    ids_sel ws[2];
    float lpc[2];
    ids_status st = steer_answers(e, rel, &j->out->prompting, err);
    if (!st) st = steer_clean(e, rel, it, 1, ws, lpc, &seq, err);
    /* variant (p NB + k) 2 + dir: push p (0 the row-only ID difference, 1 random, 2 orthogonal) at
     * layer lo + k, dir 0 down, 1 up; raw: the vertical difference x factor as it is (the paper's), the
     * controls of the same norm */
    for (int k = 0; !st && k < NB; k++) {
        const int l = j->lo + k;
        float *pv[3];
        for (int p = 0; p < 3; p++) pv[p] = e->vecs + ((size_t)(p * NB + k) * 2) * E;
        depth_pushes(j, l, steer_norm(e, 0, l), pv);
        for (int p = 0; p < 3; p++)
            for (int dir = 0; dir < 2; dir++) {
                const int v = (p * NB + k) * 2 + dir;
                float *vd = e->vecs + (size_t)v * E;
                if (dir)
                    for (int i = 0; i < E; i++) vd[i] = -pv[p][i];
                e->hooks[v] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = ws[0], .action = IDS_ACT_ADD, .vec = vd,
                                         .len = (size_t)E};
                e->vars[v] = (ids_variant){&e->hooks[v], 1};
            }
    }
    if (!st) st = steer_run(e, 6 * NB, err);
    for (int p = 0; !st && p < 3; p++)
        for (int k = 0; k < NB; k++)
            for (int dir = 0; dir < 2; dir++) {
                const float *q = e->lp + 2 * ((p * NB + k) * 2 + dir);
                j->rec[((size_t)p * 4 + 2 * which + dir) * NB + k] = ((double)q[0] - q[1]) - ((double)lpc[0] - lpc[1]);
            }
    if (!st) j->rec[12 * (size_t)NB + which] = 1;
    ids_seq_free(seq);
    return st;
}

/* The current item's record into the sums and the per-item changes of each question it asked, in
 * item order (the same sums, intervals and per-item rows from fresh, kept or merged items). */
static ids_status depth_add(depth_job *j, ids_err *err) {
    const int NB = j->NB;
    for (size_t i = 0; i < 12 * (size_t)NB; i++) j->acc[i] += j->rec[i];
    for (int which = 0; which < 2; which++) {
        if (j->rec[12 * (size_t)NB + which] == 0) continue;
        int *n = which ? &j->out->n_depth : &j->out->n_grid;
        ids_status st = depth_grow(j, which, *n, err);
        if (st) return st;
        float *item = (which ? j->out->item_fb : j->out->item_ab) + (size_t)*n * 6 * NB;
        for (int p = 0; p < 3; p++)
            for (int k = 0; k < NB; k++)
                for (int dir = 0; dir < 2; dir++)
                    item[((size_t)p * NB + k) * 2 + dir] = (float)j->rec[((size_t)p * 4 + 2 * which + dir) * NB + k];
        (*n)++;
    }
    return IDS_OK;
}

static ids_status depth_item(void *user, const ids__item *it, ids_err *err) {
    depth_job *j = user;
    const size_t n = 12 * (size_t)j->NB + 2;
    bool found;
    ids_status st = ids__item_doubles(&j->e->x, j->rec, n, &found, err);
    for (int w = 0; !st && found && w < 2; w++) /* the answers asked (recorded in the result) */
        if (j->which < 0 || j->which == w) st = steer_answers(j->e, w ? IDS_REL_FRONT_BEHIND : IDS_REL_ABOVE_BELOW, &j->out->prompting, err);
    if (!st && !found) {
        /* the random control's directions from the seed and the item's number (the same in any shard) */
        uint64_t rng_seed = j->e->x.seed * 7919 + 29 + (uint64_t)j->e->x.item * 0x9E3779B97F4A7C15ull;
        j->rng = ids__rng_splitmix(&rng_seed);
        memset(j->rec, 0, sizeof(double) * n);
        st = depth_one(j, it, j->which >= 0 ? j->which : 0, err);
        if (!st && j->which < 0) st = depth_one(j, it, 1, err); /* an image of a set: both questions about it */
        if (!st) st = ids__item_keep(&j->e->x, j->rec, sizeof(double) * n, err);
    }
    return st ? st : depth_add(j, err);
}

ids_status ids_depth_diag(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o, ids_depth_result *out,
                          ids_progress_fn progress, void *user, ids_err *err) {
    memset(out, 0, sizeof *out);
    steer_plan pl;
    ids_status st = steer_plan_make(IDS__STEER_DEPTH, v, o, &pl, err);
    if (!st) st = ids__steer_prov(IDS__STEER_DEPTH, v, cat, o, &out->prov, err);
    if (st) return st;
    const int lo = pl.lo, NB = pl.hi - pl.lo + 1;
    out->factor = pl.factor, out->raw = o->raw;
    steer_env e;
    if ((st = steer_env_init(&e, v, cat, o, 6 * NB, 2, "depth", progress, user, err))) {
        ids_depth_result_free(out);
        return st;
    }
    depth_job j = {&e, 0, lo, NB, ids__calloc((size_t)12 * NB, sizeof(double)), ids__calloc((size_t)12 * NB + 2, sizeof(double)),
                   out, 0, {0, 0}};
    if (!j.acc || !j.rec) st = ids__err(err, IDS_ERR_NOMEM, "depth: out of memory");
    e.x.prov = out->prov; /* the request the kept items answer */
    if (!st && e.x.set_manifest[0]) { /* an image set: both questions about each of its images, no truth needed */
        j.which = -1;
        st = ids__exp_items(&e.x, IDS_SET_GRID, &e.so, -1, 31, 0, 0, depth_item, &j, "depth", &out->set, err);
    }
    e.x.total = 2L * e.x.n_obj * (e.x.n_obj - 1) * e.x.n_items;
    for (int which = 0; which < 2 && !st && !e.x.set_manifest[0]; which++) {
        j.which = which;
        const ids_relation rel = which ? IDS_REL_FRONT_BEHIND : IDS_REL_ABOVE_BELOW;
        st = ids__exp_items(&e.x, which ? IDS_SET_DEPTH : IDS_SET_GRID, &e.so, (int)rel, 31 * (uint64_t)which, 0, 0, depth_item,
                            &j, "depth", &out->set, err);
    }
    if (!st) {
        out->layer_lo = lo;
        out->n_band = NB;
        float **dst[12] = {&out->ab_down, &out->ab_up, &out->fb_down, &out->fb_up};
        for (int q = 4; q < 12; q++) dst[q] = &out->ctl[q / 4 - 1][q % 4];
        for (int q = 0; q < 12 && !st; q++) {
            if (!(*dst[q] = ids__malloc(sizeof(float) * (size_t)NB))) {
                st = ids__err(err, IDS_ERR_NOMEM, "depth: out of memory");
                break;
            }
            const int n = q % 4 < 2 ? out->n_grid : out->n_depth;
            for (int k = 0; k < NB; k++) (*dst[q])[k] = n ? (float)(j.acc[(size_t)q * NB + k] / n) : 0;
        }
    }
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&e.x, st, err);
    if (st) ids_depth_result_free(out);
    free(j.acc);
    free(j.rec);
    steer_env_free(&e);
    return st;
}
