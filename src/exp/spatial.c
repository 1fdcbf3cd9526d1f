/* Spatial ID extraction (the paper's procedure, see docs/EXPERIMENTS.md). */
#define _POSIX_C_SOURCE 200809L
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

/* The axes from universal IDs [K = G * G * S][LE] at one size: y2 >= y1 (zero terms included, as the
 * paper's code); mean: room for LE doubles. */
static void spatial_axes(const float *universal, int G, int S, size_t LE, int axis_size, float *x_axis, float *y_axis,
                         double *mean) {
    for (int ax = 0; ax < 2; ax++) {
        float *out = ax == 0 ? x_axis : y_axis;
        memset(mean, 0, sizeof(double) * LE);
        int n = 0;
        for (int o = 0; o < G; o++)
            for (int c1 = 0; c1 < G - 1; c1++)
                for (int c2 = c1; c2 < G; c2++) {
                    int k1 = ax == 0 ? (o * G + c1) : (c1 * G + o), k2 = ax == 0 ? (o * G + c2) : (c2 * G + o);
                    const float *u1 = universal + ((size_t)k1 * S + axis_size) * LE, *u2 = universal + ((size_t)k2 * S + axis_size) * LE;
                    for (size_t i = 0; i < LE; i++) mean[i] += (double)u2[i] - u1[i];
                    n++;
                }
        for (size_t i = 0; i < LE; i++) out[i] = (float)(mean[i] / n);
    }
}

ids_status ids_spatial_compute(const float *h, int n_pairs, int G, int S, int L, int E, int axis_size, float *per_pair,
                           float *universal, float *x_axis, float *y_axis, ids_err *err) {
    if (n_pairs < 1 || G < 2 || S < 1 || L < 1 || E < 1 || axis_size < 0 || axis_size >= S)
        return ids__err(err, IDS_ERR_ARG, "spatial IDs: %d pairs, grid %d, %d sizes (axis size %d), %d layers, width %d: "
                        "need at least 1 pair, grid 2, axis size < sizes", n_pairs, G, S, axis_size, L, E);
    const int C = G * G, K = C * S;
    const size_t LE = (size_t)L * E;
    double *cen = ids__calloc((size_t)K * LE, sizeof(double)), *uni = ids__calloc((size_t)K * LE, sizeof(double));
    double *mean = ids__calloc(LE, sizeof(double));
    if (!cen || !uni || !mean) {
        free(cen);
        free(uni);
        free(mean);
        return ids__err(err, IDS_ERR_NOMEM, "spatial IDs: out of memory for %d cells x %d sizes x %d layers", C, S, L);
    }
    for (int p = 0; p < n_pairs; p++) {
        memset(cen, 0, sizeof(double) * (size_t)K * LE);
        for (int a = 0; a < C; a++) {
            const float *ha = h + ((size_t)p * C + a) * K * LE;
            memset(mean, 0, sizeof(double) * LE);
            int n = 0;
            for (int k = 0; k < K; k++) {
                if (k / S == a) continue; /* the subject cannot share the anchor's cell */
                for (size_t i = 0; i < LE; i++) mean[i] += ha[(size_t)k * LE + i];
                n++;
            }
            for (size_t i = 0; i < LE; i++) mean[i] /= n;
            for (int k = 0; k < K; k++) {
                if (k / S == a) continue;
                for (size_t i = 0; i < LE; i++) cen[(size_t)k * LE + i] += ha[(size_t)k * LE + i] - mean[i];
            }
        }
        /* each subject cell was seen under C - 1 anchor cells */
        for (size_t i = 0; i < (size_t)K * LE; i++) {
            double v = cen[i] / (C - 1);
            uni[i] += v;
            if (per_pair) per_pair[(size_t)p * K * LE + i] = (float)v;
        }
    }
    for (size_t i = 0; i < (size_t)K * LE; i++) universal[i] = (float)(uni[i] / n_pairs);
    spatial_axes(universal, G, S, LE, axis_size, x_axis, y_axis, mean);
    free(cen);
    free(uni);
    free(mean);
    return IDS_OK;
}

/* The subject word's rows at every layer for every item of the grid set and every ordered pair:
 * h[p][anchor cell][subject cell * S + size][layer][E] (NULL in a shard: its items are only kept). */
static ids_status extract_collect(ids__exp *x, ids_stim_opts *so, int n_items, int S, int L, int E, float *h, ids_err *err) {
    const int G = x->grid, C = G * G, K = C * S;
    const size_t LE = (size_t)L * E, per_pair_n = (size_t)C * K * LE;
    float *rowbuf = ids__malloc(sizeof(float) * LE);
    ids_hook *hooks = ids__calloc((size_t)L, sizeof *hooks);
    ids_ctx *ctx = NULL;
    ids_status st = !rowbuf || !hooks ? ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory") : IDS_OK;
    if (!st) st = ids__exp_ctx(x, 1, 4096, false, &ctx, err);
    x->total = (long)x->n_obj * (x->n_obj - 1) * n_items;
    for (int p = 0, a = 0; a < x->n_obj && !st; a++)
        for (int b = 0; b < x->n_obj && !st; b++) {
            if (a == b) continue;
            /* subject B first (its word is read), anchor A second */
            int objs[2] = {x->objs[b], x->objs[a]};
            so->objects = objs;
            so->n_objects = 2;
            char *prompt = ids__exp_prompt(x, IDS_REL_LEFT_RIGHT, ids_catalog_name(x->cat, objs[0]),
                                           ids_catalog_name(x->cat, objs[1]), NULL, 1);
            if (!prompt) st = ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory");
            ids_sel word = {.kind = IDS_SEL_WORD, .word = ids_catalog_word(x->cat, objs[0]), .after_image = true};
            for (int l = 0; l < L; l++)
                hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = word, .action = IDS_ACT_CAPTURE,
                                      .out = rowbuf + (size_t)l * E, .len = (size_t)E};
            for (int idx = 0; idx < n_items && !st; idx++) {
                if (!ids__item_mine(x, x->done)) { /* another shard's */
                    x->done++;
                    continue;
                }
                x->item = x->done;
                ids_stim s;
                if ((st = ids_stim_make(IDS_SET_GRID, so, x->cat, idx, &s, err))) break;
                const int cb = s.obj[0].cell_y * G + s.obj[0].cell_x, ca = s.obj[1].cell_y * G + s.obj[1].cell_x;
                const int size_i = idx % S;
                const void *kept = NULL;
                size_t kept_len = 0;
                st = ids__item_find(x, &kept, &kept_len, err);
                if (!st && kept && kept_len != sizeof(float) * LE)
                    st = ids__err(err, IDS_ERR_FORMAT, "ids extract: kept item %ld has %zu bytes, %zu expected", x->item, kept_len,
                                  sizeof(float) * LE);
                ids_seq *seq = NULL;
                if (!st && !kept) {
                    st = ids_vlm_build_seq(x->v, prompt, &s.frames[0], 1, x->n_threads, NULL, &seq, err);
                    if (!st) st = ids_ctx_prefill(ctx, seq, hooks, L, NULL, NULL, err);
                    if (!st) st = ids__item_keep(x, rowbuf, sizeof(float) * LE, err);
                }
                if (!st && h) { /* h[p][ca][cb*S+size][layer][E] (a shard keeps its items only in items.bin) */
                    float *dst = h + (size_t)p * per_pair_n + ((size_t)ca * K + (size_t)cb * S + size_i) * LE;
                    memcpy(dst, kept ? kept : rowbuf, sizeof(float) * LE);
                }
                ids_seq_free(seq);
                ids_stim_free(&s);
                x->done++;
                if (x->progress && (x->done % 50 == 0 || x->done == x->total))
                    x->progress("ids extract", x->done, x->total, x->puser);
            }
            free(prompt);
            p++;
        }
    so->objects = NULL;
    ids_ctx_free(ctx);
    free(hooks);
    free(rowbuf);
    return st;
}

/* Store [key][layer][E] as [layer][y][x][size][E] (per pair: [pair][layer][...]) and write
 * ids.safetensors and ids.json. */
typedef struct {
    const char *const *names; /* the objects */
    int n_names, pairs;
    long images;
    const ids_set_use *set;   /* the image set's records (NULL: drawn scenes) */
    int empty_cells;          /* cells without any ID (an image set that does not cover the grid) */
    int alone;                /* records alone in their (pair, anchor cell): nothing to centre them on */
} extract_info;

static ids_status extract_write(const char *dir, const ids__exp *x, const ids_prov *prov, const float *sizes, int S, int L,
                                int E, const float *uni, const float *xa, const float *ya, const float *pp,
                                const extract_info *info, ids_extract_result *res, ids_err *err) {
    const int G = x->grid, K = G * G * S, P = info->pairs;
    const size_t LE = (size_t)L * E;
    ids_st_writer *w = ids_st_writer_new();
    float *uni_l = ids__malloc(sizeof(float) * (size_t)K * LE);
    float *pp_l = pp ? ids__malloc(sizeof(float) * (size_t)P * K * LE) : NULL;
    bool oom = !w || !uni_l || (pp && !pp_l);
    for (int k = 0; !oom && k < K; k++)
        for (int l = 0; l < L; l++) {
            memcpy(uni_l + ((size_t)l * K + k) * E, uni + ((size_t)k * L + l) * E, sizeof(float) * (size_t)E);
            for (int p = 0; pp && p < P; p++)
                memcpy(pp_l + (((size_t)p * L + l) * K + k) * E, pp + (((size_t)p * K + k) * L + l) * E, sizeof(float) * (size_t)E);
        }
    ids_status st = oom ? ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory") : IDS_OK;
    int64_t shape_u[5] = {L, G, G, S, E}, shape_ax[2] = {L, E}, shape_pp[6] = {P, L, G, G, S, E};
    if (!st) st = ids_st_writer_add(w, "universal", "F32", 5, shape_u, uni_l, err);
    if (!st) st = ids_st_writer_add(w, "x_axis", "F32", 2, shape_ax, xa, err);
    if (!st) st = ids_st_writer_add(w, "y_axis", "F32", 2, shape_ax, ya, err);
    if (!st && pp_l) st = ids_st_writer_add(w, "per_pair", "F32", 6, shape_pp, pp_l, err);
    cJSON *doc = ids__result_doc(IDS_RESULT_IDS), *sz = NULL, *objs = NULL;
    if (doc) {
        ids__jadd(doc, "layers", L, 0, &oom);
        oom |= !cJSON_AddStringToObject(doc, "layer_convention", "layer l = residual stream after l blocks (0 = embeddings)");
        ids__jadd(doc, "grid", G, 0, &oom);
        oom |= !(sz = cJSON_AddArrayToObject(doc, "sizes"));
        for (int i = 0; sz && i < S; i++) {
            cJSON *n = ids__jnum(sizes[i], 4);
            if (!n || !cJSON_AddItemToArray(sz, n)) cJSON_Delete(n), oom = true;
        }
        if (!info->set) ids__jadd(doc, "image_size", x->image_size, 0, &oom);
        oom |= !cJSON_AddStringToObject(doc, "layout", "universal[layer][y][x][size][embd]; x = column from the left, y = row from the top");
        oom |= !cJSON_AddStringToObject(doc, "question", "Is the B to the left or right of the A? (B = subject at every cell, A = anchor)");
        oom |= !cJSON_AddStringToObject(doc, "token", "last piece of tokenize(\" \" + subject word), first occurrence after the image");
        oom |= !(objs = cJSON_AddArrayToObject(doc, "objects"));
        for (int i = 0; objs && i < info->n_names; i++) {
            cJSON *n = cJSON_CreateString(info->names[i]);
            if (!n || !cJSON_AddItemToArray(objs, n)) cJSON_Delete(n), oom = true;
        }
        ids__jadd(doc, "pairs", P, 0, &oom);
        ids__jadd(doc, "images", (double)info->images, 0, &oom);
        if (info->set) {
            oom |= !cJSON_AddStringToObject(doc, "sizes_pooled", "an image set: the IDs pool every object size (one size entry)");
            ids__jadd(doc, "empty_cells", info->empty_cells, 0, &oom);
            ids__jadd(doc, "records_alone", info->alone, 0, &oom);
            ids__set_use_json(doc, info->set, &oom);
        }
    }
    if (!st && dir) st = ids__result_write_st(dir, IDS_RESULT_IDS, doc, prov, w, "ids.safetensors", NULL, 0, oom, err);
    if (!st && res) { /* the IDs in memory, in the file's layout */
        *res = (ids_extract_result){.n_layers = L, .grid = G, .n_sizes = S, .n_pairs = P, .n_embd = E, .universal = uni_l,
                                    .per_pair = pp_l, .x_axis = ids__malloc(sizeof(float) * LE),
                                    .y_axis = ids__malloc(sizeof(float) * LE)};
        uni_l = pp_l = NULL;
        if (!res->x_axis || !res->y_axis) {
            ids_extract_result_free(res);
            st = ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory");
        } else {
            memcpy(res->x_axis, xa, sizeof(float) * LE);
            memcpy(res->y_axis, ya, sizeof(float) * LE);
        }
    }
    cJSON_Delete(doc);
    ids_st_writer_free(w);
    free(uni_l);
    free(pp_l);
    return st;
}

/* ---- extraction from an image set ---- */

#define XSET_MAX_NAMES 4096
typedef struct {
    ids__exp *x;
    const ids_tokenizer *tok;
    ids_ctx *ctx;
    ids_hook *hooks;
    int L, E;
    float *h;                /* [cap][L][E]: the subject word at every layer, per record run */
    int *pair, *cs, *ca;     /* per record: pair index, subject cell, anchor cell */
    int n, cap;
    char **names;            /* the objects met, in order */
    int n_names;
    int (*pairs)[2];         /* [XSET_MAX_NAMES] ordered (subject, anchor) name indices */
    int n_pairs;
} xset_job;

static int xset_name(xset_job *j, const char *name, ids_err *err) {
    for (int i = 0; i < j->n_names; i++)
        if (!strcmp(j->names[i], name)) return i;
    if (j->n_names == XSET_MAX_NAMES) {
        ids__err(err, IDS_ERR_RANGE, "ids extract: the set names more than %d objects", XSET_MAX_NAMES);
        return -1;
    }
    if (!(j->names[j->n_names] = ids__strdup(name))) {
        ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory");
        return -1;
    }
    return j->n_names++;
}

static ids_status xset_item(void *user, const ids__item *it, ids_err *err) {
    xset_job *j = user;
    const size_t LE = (size_t)j->L * j->E;
    const int a = xset_name(j, it->name[0], err), b = a < 0 ? -1 : xset_name(j, it->name[1], err);
    if (a < 0 || b < 0) return err ? err->code : IDS_ERR_NOMEM;
    int p = 0;
    while (p < j->n_pairs && !(j->pairs[p][0] == a && j->pairs[p][1] == b)) p++;
    if (p == j->n_pairs) {
        if (p == XSET_MAX_NAMES) return ids__err(err, IDS_ERR_RANGE, "ids extract: the set has more than %d object pairs", XSET_MAX_NAMES);
        j->pairs[p][0] = a, j->pairs[p][1] = b, j->n_pairs++;
    }
    if (j->n == j->cap) {
        const int cap = j->cap ? 2 * j->cap : 64;
        float *h = ids__realloc(j->h, sizeof(float) * (size_t)cap * LE);
        if (h) j->h = h;
        int *q[3] = {ids__realloc(j->pair, sizeof(int) * (size_t)cap), NULL, NULL};
        if (q[0]) j->pair = q[0];
        if (q[0] && (q[1] = ids__realloc(j->cs, sizeof(int) * (size_t)cap))) j->cs = q[1];
        if (q[1] && (q[2] = ids__realloc(j->ca, sizeof(int) * (size_t)cap))) j->ca = q[2];
        if (!h || !q[2]) return ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory for %d records", cap);
        j->cap = cap;
    }
    /* "Is the SUBJECT to the left or right of the ANCHOR?": the subject word at every layer */
    const void *kept = NULL;
    size_t kept_len = 0;
    ids_status st = ids__item_find(j->x, &kept, &kept_len, err);
    if (!st && kept && kept_len != sizeof(float) * LE)
        st = ids__err(err, IDS_ERR_FORMAT, "ids extract: kept item %ld has %zu bytes, %zu expected", j->x->item, kept_len,
                      sizeof(float) * LE);
    if (st) return st;
    if (kept) memcpy(j->h + (size_t)j->n * LE, kept, sizeof(float) * LE);
    ids_seq *seq = NULL;
    if (!kept) st = ids__item_seq(j->x, IDS_REL_LEFT_RIGHT, it, &seq, err);
    int rows[2];
    if (!st && !kept) st = ids__object_rows(seq, j->tok, it->word[0], it->word[1], rows, err);
    const ids_sel word = {.kind = IDS_SEL_WORD, .word = it->word[0], .after_image = true};
    for (int l = 0; l < j->L; l++)
        j->hooks[l] = (ids_hook){.site = IDS_SITE_RESID, .layer = l, .sel = word, .action = IDS_ACT_CAPTURE,
                                 .out = j->h + (size_t)j->n * LE + (size_t)l * j->E, .len = (size_t)j->E};
    if (!st && !kept) st = ids_ctx_prefill(j->ctx, seq, j->hooks, j->L, NULL, NULL, err);
    if (!st && !kept) st = ids__item_keep(j->x, j->h + (size_t)j->n * LE, sizeof(float) * LE, err);
    ids_seq_free(seq);
    if (st) return *it->id ? ids__err_prefix(err, st, "record '%s'", it->id) : st;
    const int G = j->x->grid;
    j->pair[j->n] = p;
    j->cs[j->n] = it->cell_y[0] * G + it->cell_x[0];
    j->ca[j->n] = it->cell_y[1] * G + it->cell_x[1];
    j->n++;
    return IDS_OK;
}

/* The paper's arithmetic on whatever the set covers: per pair, mean-centre the subject's rows within
 * each anchor cell (groups of one record carry nothing and are left out), average per subject cell
 * (per-pair ID), then over the pairs that have the cell (universal). uni [C][L][E]; pp [P][C][L][E]
 * (may be NULL); *empty: cells no pair covers (left at zero); *alone: records alone in their group. */
static ids_status xset_compute(const xset_job *j, int C, float *uni, float *pp, int *empty, int *alone, ids_err *err) {
    const size_t LE = (size_t)j->L * j->E;
    double *mean = ids__calloc((size_t)C * LE, sizeof(double)), *acc = ids__calloc((size_t)C * LE, sizeof(double));
    double *uacc = ids__calloc((size_t)C * LE, sizeof(double));
    int *gn = ids__calloc((size_t)C, sizeof(int)), *kn = ids__calloc((size_t)C, sizeof(int)), *un = ids__calloc((size_t)C, sizeof(int));
    ids_status st = !mean || !acc || !uacc || !gn || !kn || !un ? ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory") : IDS_OK;
    *empty = *alone = 0;
    for (int p = 0; !st && p < j->n_pairs; p++) {
        memset(mean, 0, sizeof(double) * (size_t)C * LE);
        memset(acc, 0, sizeof(double) * (size_t)C * LE);
        memset(gn, 0, sizeof(int) * (size_t)C);
        memset(kn, 0, sizeof(int) * (size_t)C);
        for (int i = 0; i < j->n; i++) /* group sums per anchor cell */
            if (j->pair[i] == p) {
                gn[j->ca[i]]++;
                for (size_t e = 0; e < LE; e++) mean[(size_t)j->ca[i] * LE + e] += j->h[(size_t)i * LE + e];
            }
        for (int g = 0; g < C; g++)
            for (size_t e = 0; gn[g] && e < LE; e++) mean[(size_t)g * LE + e] /= gn[g];
        for (int i = 0; i < j->n; i++) { /* centred, summed per subject cell */
            if (j->pair[i] != p) continue;
            if (gn[j->ca[i]] < 2) {
                (*alone)++;
                continue;
            }
            const int k = j->cs[i];
            kn[k]++;
            for (size_t e = 0; e < LE; e++) acc[(size_t)k * LE + e] += j->h[(size_t)i * LE + e] - mean[(size_t)j->ca[i] * LE + e];
        }
        for (int k = 0; k < C; k++) {
            for (size_t e = 0; e < LE; e++) {
                const double v = kn[k] ? acc[(size_t)k * LE + e] / kn[k] : 0;
                if (pp) pp[((size_t)p * C + k) * LE + e] = (float)v;
                uacc[(size_t)k * LE + e] += v;
            }
            un[k] += kn[k] > 0;
        }
    }
    for (int k = 0; !st && k < C; k++) {
        *empty += !un[k];
        for (size_t e = 0; e < LE; e++) uni[(size_t)k * LE + e] = un[k] ? (float)(uacc[(size_t)k * LE + e] / un[k]) : 0.0f;
    }
    free(mean);
    free(acc);
    free(uacc);
    free(gn);
    free(kn);
    free(un);
    return st;
}

/* ids extract --set: every record with both objects placed, sizes pooled (one size entry). */
static ids_status extract_set(ids__exp *x, const ids_extract_opts *o, const char *out_dir, ids_prov *prov,
                              ids_extract_result *res, ids_err *err) {
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(x->v));
    const int L = hp->n_layer + 1, E = hp->n_embd, G = x->grid, C = G * G;
    const size_t LE = (size_t)L * E;
    xset_job j = {.x = x, .tok = ids_model_tokenizer(ids_vlm_model(x->v)), .L = L, .E = E};
    j.hooks = ids__calloc((size_t)L, sizeof *j.hooks);
    j.names = ids__calloc(XSET_MAX_NAMES, sizeof *j.names);
    j.pairs = ids__calloc(XSET_MAX_NAMES, sizeof *j.pairs);
    ids_set_use use = {0};
    ids_status st = !j.hooks || !j.names || !j.pairs ? ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory") : IDS_OK;
    if (!st) st = ids__exp_ctx(x, 1, 4096, false, &j.ctx, err);
    ids_stim_opts so;
    ids__exp_stim_opts(x, &so);
    if (!st)
        st = ids__exp_items(x, IDS_SET_GRID, &so, -1, 0, 0, IDS__NEED_POS_A | IDS__NEED_POS_B, xset_item, &j, "ids extract", &use,
                            err);
    if (!st && j.n_pairs == 0 && !ids__exp_partial(x))
        st = ids__err(err, IDS_ERR_ARG, "ids extract: %s has no record with both objects' boxes (of %d records)", use.manifest,
                      use.records);
    float *uni = NULL, *pp = NULL, *xa = NULL, *ya = NULL;
    double *mean = NULL;
    int empty = 0, alone = 0;
    const bool partial = ids__exp_partial(x);
    if (!st && !partial) {
        uni = ids__malloc(sizeof(float) * (size_t)C * LE);
        pp = o->per_pair ? ids__malloc(sizeof(float) * (size_t)j.n_pairs * C * LE) : NULL;
        xa = ids__malloc(sizeof(float) * LE), ya = ids__malloc(sizeof(float) * LE);
        mean = ids__malloc(sizeof(double) * LE);
        if (!uni || (o->per_pair && !pp) || !xa || !ya || !mean) st = ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory");
    }
    if (!st && !partial) st = xset_compute(&j, C, uni, pp, &empty, &alone, err);
    if (!st && !partial) {
        spatial_axes(uni, G, 1, LE, 0, xa, ya, mean);
        if (empty) ids__log(1, "ids extract: %d of %d cells have no record: their IDs are zero", empty, C);
        ids_prov_finish(prov);
        static const float pooled[1] = {1.0f};
        const extract_info info = {(const char *const *)j.names, j.n_names, j.n_pairs, j.n, &use, empty, alone};
        st = extract_write(out_dir, x, prov, pooled, 1, L, E, uni, xa, ya, pp, &info, res, err);
    }
    st = ids__exp_end(x, st, err);
    for (int i = 0; j.names && i < j.n_names; i++) free(j.names[i]);
    free(j.names);
    free(j.pairs);
    free(j.hooks);
    free(j.h);
    free(j.pair);
    free(j.cs);
    free(j.ca);
    ids_ctx_free(j.ctx);
    free(uni);
    free(pp);
    free(xa);
    free(ya);
    free(mean);
    return st;
}

void ids_extract_result_free(ids_extract_result *r) {
    if (!r) return;
    free(r->universal);
    free(r->x_axis);
    free(r->y_axis);
    free(r->per_pair);
    *r = (ids_extract_result){0};
}

ids_status ids_spatial_extract(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o, const char *out_dir,
                           ids_progress_fn progress, void *user, ids_err *err) {
    if (!out_dir) return ids__err(err, IDS_ERR_ARG, "ids extract: no output folder");
    return ids_spatial_extract_run(v, cat, o, out_dir, NULL, progress, user, err);
}

ids_status ids_spatial_extract_run(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o, const char *out_dir,
                                   ids_extract_result *res, ids_progress_fn progress, void *user, ids_err *err) {
    if (res) *res = (ids_extract_result){0};
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    const int L = hp->n_layer + 1, E = hp->n_embd;
    static const float def_sizes[4] = {1.0f, 0.78f, 0.55f, 0.33f};
    const float *sizes = o->n_sizes ? o->sizes : def_sizes;
    const int S = o->n_sizes ? o->n_sizes : 4;
    ids__exp x;
    ids_prov *prov = NULL;
    ids_status st = ids__extract_prov(v, cat, o, &x, &prov, err);
    if (st) return st;
    x.progress = progress, x.puser = user;
    if (x.set_manifest[0]) {
        st = extract_set(&x, o, out_dir, prov, res, err);
        ids_prov_free(prov);
        return st;
    }
    const int G = x.grid, C = G * G, K = C * S, P = x.n_obj * (x.n_obj - 1);
    ids_stim_opts so;
    ids__exp_stim_opts(&x, &so);
    so.sizes = sizes;
    so.n_sizes = S;
    int n_items;
    if ((st = ids_stim_count(IDS_SET_GRID, &so, cat, &n_items, err))) { /* validates grid, sizes, size */
        ids_prov_free(prov);
        return st;
    }
    const size_t LE = (size_t)L * E;
    const bool partial = ids__exp_partial(&x); /* a shard: its items go to items.bin, nothing is computed */
    float *h = partial ? NULL : ids__malloc(sizeof(float) * (size_t)P * C * K * LE);
    float *uni = ids__malloc(sizeof(float) * (size_t)K * LE);
    float *xa = ids__malloc(sizeof(float) * LE), *ya = ids__malloc(sizeof(float) * LE);
    float *pp = o->per_pair ? ids__malloc(sizeof(float) * (size_t)P * K * LE) : NULL;
    if ((!h && !partial) || !uni || !xa || !ya || (o->per_pair && !pp))
        st = ids__err(err, IDS_ERR_NOMEM, "ids extract: out of memory for %d pairs x %d images", P, C * (C - 1) * S);
    if (!st) st = extract_collect(&x, &so, n_items, S, L, E, h, err);
    if (!st && !partial) {
        st = ids_spatial_compute(h, P, G, S, L, E, 0, pp, uni, xa, ya, err);
        ids_prov_finish(prov);
        const char *names[IDS_EXP_MAX_OBJECTS];
        for (int i = 0; i < x.n_obj; i++) names[i] = ids_catalog_name(cat, x.objs[i]);
        const extract_info info = {names, x.n_obj, P, x.total, NULL, 0, 0};
        if (!st) st = extract_write(out_dir, &x, prov, sizes, S, L, E, uni, xa, ya, pp, &info, res, err);
    }
    st = ids__exp_end(&x, st, err);
    ids_prov_free(prov);
    free(h);
    free(uni);
    free(xa);
    free(ya);
    free(pp);
    return st;
}

ids_status ids__extract_prov(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o, ids__exp *x, ids_prov **out,
                             ids_err *err) {
    static const float def_sizes[4] = {1.0f, 0.78f, 0.55f, 0.33f};
    ids_status st = ids__exp_init(x, &o->exp, v, cat, 3, 2, "ids extract", NULL, NULL, err);
    if (!x->set_manifest[0]) x->n_items = 0; /* every item of the grid set */
    if (!st) st = ids__exp_prov(x, "ids extract", out, err);
    if (st) return st;
    if (!x->set_manifest[0]) ids_prov_opt_nums(*out, "sizes", o->n_sizes ? o->sizes : def_sizes, o->n_sizes ? o->n_sizes : 4);
    ids_prov_opt_bool(*out, "per_pair", o->per_pair);
    return IDS_OK;
}

/* ---- statistics ---- */

/* Top eigenvector of a symmetric n x n matrix by power iteration (deterministic start). */
static void top_eig(const double *A, int n, double *vec, double *val) {
    for (int i = 0; i < n; i++) vec[i] = 1.0 + 0.01 * i;
    double lam = 0;
    for (int it = 0; it < 500; it++) {
        double nv[64] = {0}, norm = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) nv[i] += A[i * n + j] * vec[j];
        for (int i = 0; i < n; i++) norm += nv[i] * nv[i];
        norm = sqrt(norm);
        if (norm == 0) break;
        for (int i = 0; i < n; i++) vec[i] = nv[i] / norm;
        lam = norm;
    }
    *val = lam;
}

ids_status ids_spatial_layer_stats(const float *ids, const int *xs, const int *ys, int n, int E, const float *x_axis,
                               const float *y_axis, ids_id_stats *out, float *pca, ids_err *err) {
    if (n < 1 || n > 64 || E < 1) return ids__err(err, IDS_ERR_ARG, "ID statistics: %d cells of width %d (1..64 cells)", n, E);
    double mean_x = 0, mean_y = 0;
    for (int k = 0; k < n; k++) mean_x += xs[k], mean_y += ys[k];
    mean_x /= n, mean_y /= n;
    /* centred IDs, total variance */
    double *c = ids__calloc((size_t)n * E, sizeof(double)), *vv = ids__calloc((size_t)E, sizeof(double));
    if (!c || !vv) {
        free(c);
        free(vv);
        return ids__err(err, IDS_ERR_NOMEM, "ID statistics: out of memory for %d cells of width %d", n, E);
    }
    double tot = 0;
    for (int e = 0; e < E; e++) {
        double m = 0;
        for (int k = 0; k < n; k++) m += ids[(size_t)k * E + e];
        m /= n;
        for (int k = 0; k < n; k++) {
            c[(size_t)k * E + e] = ids[(size_t)k * E + e] - m;
            tot += c[(size_t)k * E + e] * c[(size_t)k * E + e];
        }
    }
    /* least squares on centred coordinates: [sxx sxy; sxy syy] [a; b] = [sxc; syc] per dimension */
    double sxx = 0, sxy = 0, syy = 0;
    for (int k = 0; k < n; k++) {
        double dx = xs[k] - mean_x, dy = ys[k] - mean_y;
        sxx += dx * dx, sxy += dx * dy, syy += dy * dy;
    }
    const double det = sxx * syy - sxy * sxy;
    double res = 0;
    for (int e = 0; e < E; e++) {
        double sxc = 0, syc = 0;
        for (int k = 0; k < n; k++) {
            sxc += (xs[k] - mean_x) * c[(size_t)k * E + e];
            syc += (ys[k] - mean_y) * c[(size_t)k * E + e];
        }
        double a = det != 0 ? (syy * sxc - sxy * syc) / det : 0, b = det != 0 ? (sxx * syc - sxy * sxc) / det : 0;
        for (int k = 0; k < n; k++) {
            double r = c[(size_t)k * E + e] - a * (xs[k] - mean_x) - b * (ys[k] - mean_y);
            res += r * r;
        }
    }
    out->r2 = tot > 0 ? 1.0 - res / tot : 0.0;
    /* axis plane: u = x/|x|, v = y - (y.u)u normalised */
    double nu = 0, uy = 0, nv = 0;
    for (int e = 0; e < E; e++) nu += (double)x_axis[e] * x_axis[e];
    nu = sqrt(nu);
    for (int e = 0; e < E; e++) uy += (nu > 0 ? x_axis[e] / nu : 0) * y_axis[e];
    for (int e = 0; e < E; e++) {
        vv[e] = y_axis[e] - uy * (nu > 0 ? x_axis[e] / nu : 0);
        nv += vv[e] * vv[e];
    }
    nv = sqrt(nv);
    double inplane = 0;
    for (int k = 0; k < n; k++) {
        double pu = 0, pv = 0;
        for (int e = 0; e < E; e++) {
            pu += c[(size_t)k * E + e] * (nu > 0 ? x_axis[e] / nu : 0);
            pv += c[(size_t)k * E + e] * (nv > 0 ? vv[e] / nv : 0);
        }
        inplane += pu * pu + pv * pv;
    }
    out->plane = tot > 0 ? inplane / tot : 0.0;
    /* PCA through the n x n Gram matrix of the centred IDs */
    double gram[64 * 64] = {0}, v1[64], v2[64], l1, l2;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += c[(size_t)i * E + e] * c[(size_t)j * E + e];
            gram[i * n + j] = s;
        }
    top_eig(gram, n, v1, &l1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) gram[i * n + j] -= l1 * v1[i] * v1[j];
    top_eig(gram, n, v2, &l2);
    out->pca_var = tot > 0 ? (l1 + l2) / tot : 0.0;
    if (pca)
        for (int k = 0; k < n; k++) { /* principal coordinates: sqrt(lambda) * eigenvector */
            pca[2 * k] = (float)(sqrt(l1) * v1[k]);
            pca[2 * k + 1] = (float)(sqrt(l2 > 0 ? l2 : 0) * v2[k]);
        }
    free(vv);
    free(c);
    return IDS_OK;
}

/* Mean cosine of every pair's ID with the universal one at layer l, over the cells (NAN when none). */
static double pair_cosine(const ids_st_tensor *pp, const float *cells, int l, int L, int C, int S, int E) {
    const int P = (int)pp->shape[0];
    double acc = 0;
    int n = 0;
    for (int p = 0; p < P; p++)
        for (int k = 0; k < C; k++) {
            const float *a = (const float *)pp->data + ((((size_t)p * L + l) * C + k) * S) * E;
            const float *b = cells + (size_t)k * E;
            double ab = 0, aa = 0, bb = 0;
            for (int e = 0; e < E; e++) ab += (double)a[e] * b[e], aa += (double)a[e] * a[e], bb += (double)b[e] * b[e];
            if (aa > 0 && bb > 0) acc += ab / sqrt(aa * bb), n++;
        }
    return n ? acc / n : NAN;
}

/* One layer's row of stats.json and stats.csv. */
/* ex: the R^2 permutation null's mean, 95th percentile and p, and the pair-bootstrap interval of R^2. */
static void stats_row(cJSON *layers, ids__tb *csv, int l, const ids_id_stats *s, bool has_pairs, double cosm, const int *xs,
                      const int *ys, const float *pca, int C, const double ex[5], bool *oom) {
    cJSON *o = cJSON_CreateObject(), *pc = NULL;
    if (!o || !cJSON_AddItemToArray(layers, o)) {
        cJSON_Delete(o);
        *oom = true;
        return;
    }
    ids__jadd(o, "layer", l, 0, oom);
    ids__jadd(o, "r2", s->r2, 6, oom);
    ids__jadd(o, "r2_null_mean", ex[0], 6, oom);
    ids__jadd(o, "r2_null_q95", ex[1], 6, oom);
    ids__jadd(o, "r2_null_p", ex[2], 6, oom);
    if (has_pairs) {
        cJSON *ci = cJSON_AddArrayToObject(o, "r2_ci");
        for (int q = 0; q < 2 && ci; q++) {
            cJSON *n = ids__jnum(ex[3 + q], 6);
            if (!n || !cJSON_AddItemToArray(ci, n)) cJSON_Delete(n), *oom = true;
        }
        *oom |= !ci;
    }
    ids__jadd(o, "plane", s->plane, 6, oom);
    ids__jadd(o, "pca_var", s->pca_var, 6, oom);
    if (has_pairs) ids__jadd(o, "pair_cosine", cosm, 6, oom);
    *oom |= !(pc = cJSON_AddArrayToObject(o, "pca"));
    for (int k = 0; pc && k < C; k++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(pc, e)) {
            cJSON_Delete(e);
            *oom = true;
            break;
        }
        ids__jadd(e, "x", xs[k], 0, oom);
        ids__jadd(e, "y", ys[k], 0, oom);
        ids__jadd(e, "pc1", pca[2 * k], 6, oom);
        ids__jadd(e, "pc2", pca[2 * k + 1], 6, oom);
    }
    ids__tb_printf(csv, "%d", l);
    ids__tb_num(csv, ",", s->r2, 6);
    ids__tb_num(csv, ",", s->plane, 6);
    ids__tb_num(csv, ",", s->pca_var, 6);
    ids__tb_num(csv, ",", has_pairs ? cosm : NAN, 6);
    for (int q = 0; q < 5; q++) ids__tb_num(csv, ",", ex[q], 6);
    ids__tb_printf(csv, "\n");
}

ids_status ids__stats_prov(const char *dir, ids_prov **out, ids_err *err) {
    char *path = ids__path_join(dir, "ids.safetensors");
    ids_status st = path ? ids_prov_new(out, "ids stats", err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) st = ids_prov_input(*out, "ids", path, err);
    if (!st) ids_prov_run(*out, 0, 1, "f32");
    if (!st) ids_prov_opt_int(*out, "r2_null_permutations", IDS_R2_NULL_PERMS); /* beside R^2 */
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
    }
    free(path);
    return st;
}

ids_status ids_spatial_stats(const char *dir, ids_err *err) {
    char *path = ids__path_join(dir, "ids.safetensors");
    if (!path) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_st_file *f = NULL;
    ids_prov *prov = NULL;
    ids_status st = ids_st_open(&f, path, err);
    const ids_st_tensor *u = NULL, *xa = NULL, *ya = NULL, *pp = NULL;
    if (!st) st = ids__st_f32(f, path, "universal", 5, false, &u, err);
    if (!st) st = ids__st_f32(f, path, "x_axis", 2, false, &xa, err);
    if (!st) st = ids__st_f32(f, path, "y_axis", 2, false, &ya, err);
    if (!st) st = ids__st_f32(f, path, "per_pair", 6, true, &pp, err);
    /* a square grid of at most 64 cells; the axes [layers, embd]; per-pair IDs [pairs, universal's shape] */
    bool shapes = !st && u->shape[1] == u->shape[2] && u->shape[1] <= 8;
    for (int d = 0; shapes && d < 2; d++) shapes = xa->shape[d] == u->shape[d ? 4 : 0] && ya->shape[d] == xa->shape[d];
    for (int d = 0; shapes && pp && d < 5; d++) shapes = pp->shape[d + 1] == u->shape[d];
    if (!st && !shapes)
        st = ids__err(err, IDS_ERR_FORMAT, "%s: expected 'universal' [layers, y, x, size, embd] (a square grid of at most "
                      "64 cells), 'x_axis' and 'y_axis' [layers, embd] and optionally 'per_pair' [pairs, layers, y, x, size, "
                      "embd] as written by ids extract", path);
    if (!st) st = ids__stats_prov(dir, &prov, err);
    free(path);
    if (st) {
        ids_st_close(f);
        return st;
    }
    const int L = (int)u->shape[0], G = (int)u->shape[1], S = (int)u->shape[3], E = (int)u->shape[4], C = G * G;
    float *cells = ids__malloc(sizeof(float) * (size_t)C * E), pca[128];
    int xs[64], ys[64];
    for (int k = 0; k < C; k++) xs[k] = k % G, ys[k] = k / G;
    cJSON *doc = ids__result_doc(IDS_RESULT_STATS), *layers = doc ? cJSON_AddArrayToObject(doc, "layers") : NULL;
    bool oom = !cells || !layers;
    ids__tb csv = {0};
    ids__tb_printf(&csv, "layer,r2,plane,pca_var,pair_cosine,r2_null_mean,r2_null_q95,r2_null_p,r2_ci_low,r2_ci_high\n");
    const float *U = u->data;
    for (int l = 0; !oom && l < L; l++) {
        for (int k = 0; k < C; k++) /* size index 0: the largest */
            memcpy(cells + (size_t)k * E, U + (((size_t)l * C + k) * S) * E, sizeof(float) * (size_t)E);
        ids_id_stats s;
        if ((st = ids_spatial_layer_stats(cells, xs, ys, C, E, (const float *)xa->data + (size_t)l * E,
                                      (const float *)ya->data + (size_t)l * E, &s, pca, err)))
            break;
        const double cosm = pp ? pair_cosine(pp, cells, l, L, C, S, E) : NAN;
        /* beside R^2: its permutation null (cell labels shuffled) and an interval over object pairs */
        ids_r2_null nl;
        double ex[5] = {NAN, NAN, NAN, NAN, NAN};
        if ((st = ids_spatial_r2_null(cells, xs, ys, C, E, 0, 1000 + (uint64_t)l, &nl, err))) break;
        ex[0] = nl.mean, ex[1] = nl.q95, ex[2] = nl.p;
        const size_t cs = (size_t)S * E, ps = (size_t)L * C * cs;
        if (pp && (st = ids__r2_pair_ci((const float *)pp->data + (size_t)l * C * cs, (int)pp->shape[0], ps, cs, xs, ys, C, E,
                                        2000 + (uint64_t)l, ex + 3, err)))
            break;
        stats_row(layers, &csv, l, &s, pp != NULL, cosm, xs, ys, pca, C, ex, &oom);
    }
    ids_prov_finish(prov);
    if (!st) st = ids__result_write(dir, IDS_RESULT_STATS, 0, doc, prov, csv.p, csv.n, oom || csv.oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    free(cells);
    ids_prov_free(prov);
    ids_st_close(f);
    return st;
}

/* ---- ID-strength score ---- */

ids_status ids__score_prov(const char *stats_json, const char *steer_json, ids_prov **out, ids_err *err) {
    ids_status st = ids_prov_new(out, "score", err);
    if (!st) st = ids_prov_input(*out, "stats", stats_json, err);
    if (!st) st = ids_prov_input(*out, "steer_belief", steer_json, err);
    if (!st) ids_prov_run(*out, 0, 1, "f32");
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
    }
    return st;
}

/* One steering layer's factors against the stats of the same layer. */
static ids_status score_row(const cJSON *it, const char *steer_json, const cJSON *sl, cJSON *rows, int *best_layer,
                            double *best_score, bool *oom, ids_err *err) {
    long long lv;
    if (ids__json_int(it, "layer", 0, IDS_JSON_LAYER_MAX, -1, &lv, err))
        return ids__err_prefix(err, IDS_ERR_FORMAT, "%s: layers", steer_json);
    if (lv < 0) return ids__err(err, IDS_ERR_FORMAT, "%s: layers: an entry has no 'layer'", steer_json);
    const int layer = (int)lv;
    const cJSON *s = NULL, *e;
    cJSON_ArrayForEach(e, sl) if (ids__jget(e, "layer") == layer) s = e;
    const double r2 = ids__jget(s, "r2"), pc = ids__jget(s, "pair_cosine"), rid = ids__jget(it, "id"), rno = ids__jget(it, "noise");
    if (!isfinite(r2) || !isfinite(pc) || !isfinite(rid) || !isfinite(rno))
        return ids__err(err, IDS_ERR_FORMAT, "layer %d: stats need r2 and pair_cosine (extract with --per-pair) and the "
                        "steering file id and noise rates", layer);
    const double lin = r2 < 0 ? 0 : r2, cons = pc < 0 ? 0 : pc, caus = rid - rno < 0 ? 0 : rid - rno;
    const double score = lin * cons * caus;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(rows, o)) {
        cJSON_Delete(o);
        *oom = true;
        return IDS_OK;
    }
    ids__jadd(o, "layer", layer, 0, oom);
    ids__jadd(o, "linearity", lin, 6, oom);
    ids__jadd(o, "consistency", cons, 6, oom);
    ids__jadd(o, "causal", caus, 6, oom);
    ids__jadd(o, "score", score, 6, oom);
    /* the interval of the causal factor (items resampled), linearity and consistency held */
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(it, "causal_ci");
    if (cJSON_IsArray(cc) && cJSON_GetArraySize(cc) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(cc, 0)) &&
        cJSON_IsNumber(cJSON_GetArrayItem(cc, 1))) {
        const double ci[2] = {lin * cons * cJSON_GetArrayItem(cc, 0)->valuedouble, lin * cons * cJSON_GetArrayItem(cc, 1)->valuedouble};
        ids__jci(o, "score_ci", ci, oom);
    }
    if (score > *best_score || *best_layer < 0) *best_score = score, *best_layer = layer;
    return IDS_OK;
}

ids_status ids_score(const char *stats_json, const char *steer_json, const char *out_path, int *best_layer,
                     double *best_score, ids_err *err) {
    *best_layer = -1;
    *best_score = 0;
    ids_prov *prov = NULL;
    cJSON *sj = ids__result_read(stats_json, err), *tj = sj ? ids__result_read(steer_json, err) : NULL;
    ids_status st = !sj || !tj ? (err ? err->code : IDS_ERR_FORMAT) : IDS_OK;
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(sj, "layers"), *tl = cJSON_GetObjectItemCaseSensitive(tj, "layers"), *it;
    if (!st && (!cJSON_IsArray(sl) || !cJSON_IsArray(tl)))
        st = ids__err(err, IDS_ERR_FORMAT, "%s / %s: expected a \"layers\" list in each (from ids stats and steer belief)",
                      stats_json, steer_json);
    if (!st) st = ids__score_prov(stats_json, steer_json, &prov, err);
    bool oom = false;
    cJSON *doc = st ? NULL : ids__result_doc(IDS_RESULT_SCORE), *rows = NULL;
    if (!st && doc) {
        oom |= !cJSON_AddStringToObject(doc, "definition", "score = r2 * max(0, pair_cosine) * max(0, swap_id - swap_noise)");
        oom |= !(rows = cJSON_AddArrayToObject(doc, "layers"));
    }
    cJSON_ArrayForEach(it, tl) {
        if (st || !rows) break;
        st = score_row(it, steer_json, sl, rows, best_layer, best_score, &oom, err);
    }
    if (!st && doc) {
        ids__jadd(doc, "best_layer", *best_layer, 0, &oom);
        ids__jadd(doc, "best_score", *best_score, 6, &oom);
    }
    if (!st) {
        ids_prov_finish(prov);
        /* out_path names the file itself: its folder and name */
        char *dir = ids__strdup(out_path), *slash = dir ? strrchr(dir, '/') : NULL;
        const char *name = slash ? slash + 1 : out_path;
        if (!dir) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        else if (slash) *slash = 0;
        if (!st) st = ids__result_write_as(slash ? (*dir ? dir : "/") : ".", name, doc, prov, oom, err);
        free(dir);
    }
    cJSON_Delete(doc);
    ids_prov_free(prov);
    cJSON_Delete(sj);
    cJSON_Delete(tj);
    return st;
}
