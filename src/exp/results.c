/* Result files, one owner: their names, where they lie in a results folder, their JSON (cJSON, a
 * "format" tag, non-finite numbers as null, a "provenance" object) and CSV companions, written
 * atomically and read back. Experiments hand their numbers here; score, report and demo read
 * results only through these functions. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- names and layout ---- */

static const struct {
    const char *folder, *json, *csv, *format;
} k_res[IDS_RESULT_COUNT] = {
    [IDS_RESULT_STIMULI] = {"stimuli", "manifest.json", NULL, "idscope.stimuli.v1"},
    [IDS_RESULT_IDS] = {"ids", "ids.json", NULL, "idscope.ids.v1"},
    [IDS_RESULT_STATS] = {"ids", "stats.json", "stats.csv", "idscope.stats.v1"},
    [IDS_RESULT_SWAP] = {"swap", "swap.json", "swap.csv", "idscope.swap.v1"},
    [IDS_RESULT_SWAP_CONTROL] = {"swap", "swap-control.json", "swap-control.csv", "idscope.swap.v1"},
    [IDS_RESULT_SWAP_HUE] = {"swap", "swap-hue.json", "swap-hue.csv", "idscope.swap.v1"},
    [IDS_RESULT_STEER_BELIEF] = {"steer", "steer-belief.json", "steer-belief.csv", "idscope.steer-belief.v1"},
    [IDS_RESULT_STEER_GRID] = {"steer", "steer-grid-%s.json", "steer-grid-%s.csv", "idscope.steer-grid.v1"},
    [IDS_RESULT_STEER_GRID_PAPER] = {"steer", "steer-grid-%s-paper.json", "steer-grid-%s-paper.csv", "idscope.steer-grid.v1"},
    [IDS_RESULT_DEPTH] = {"depth", "depth.json", "depth.csv", "idscope.depth.v1"},
    [IDS_RESULT_TEMPORAL] = {"temporal", "temporal.json", "temporal.csv", "idscope.temporal.v1"},
    [IDS_RESULT_TEMPORAL_SWAP] = {"temporal", "temporal-swap.json", "temporal-swap.csv", "idscope.temporal-swap.v1"},
    [IDS_RESULT_TEMPORAL_STEER] = {"temporal", "temporal-steer.json", "temporal-steer.csv", "idscope.temporal-steer.v1"},
    [IDS_RESULT_SCORE] = {"", "score.json", NULL, "idscope.score.v1"},
    [IDS_RESULT_SUMMARY] = {"", "summary.json", NULL, "idscope.summary.v1"},
};

const char *ids_result_folder(ids_result_kind k) { return (unsigned)k < IDS_RESULT_COUNT ? k_res[k].folder : NULL; }

static const char *file_name(ids_result_kind k, bool csv, ids_relation rel, char *buf, size_t n) {
    if ((unsigned)k >= IDS_RESULT_COUNT) return NULL;
    const char *f = csv ? k_res[k].csv : k_res[k].json;
    if (!f) return NULL;
    if (k == IDS_RESULT_STEER_GRID || k == IDS_RESULT_STEER_GRID_PAPER) {
        snprintf(buf, n, f, ids_relation_name(rel));
        return buf;
    }
    return f;
}

const char *ids_result_name(ids_result_kind k, ids_relation rel, char *buf, size_t n) { return file_name(k, false, rel, buf, n); }

char *ids_result_path(const char *dir, ids_result_kind k, ids_relation rel, bool in_results_folder) {
    char b[64];
    const char *name = file_name(k, false, rel, b, sizeof b);
    if (!name) return NULL;
    const char *folder = in_results_folder ? k_res[k].folder : "";
    const size_t n = strlen(dir) + strlen(folder) + strlen(name) + 3;
    char *p = ids__malloc(n);
    if (p) snprintf(p, n, "%s/%s%s%s", dir, folder, *folder ? "/" : "", name);
    return p;
}

/* ---- writing ---- */

ids_status ids__mkdir_p(const char *dir, ids_err *err) {
    char *d = ids__strdup(dir);
    if (!d) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_status st = IDS_OK;
    for (char *p = d + 1; !st; p++) {
        const bool end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            struct stat sb;
            if (mkdir(d, 0755) != 0 && errno != EEXIST)
                st = ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", d, strerror(errno));
            else if (stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode))
                st = ids__err(err, IDS_ERR_IO, "%s: not a folder", d);
            if (end) break;
            *p = '/';
        }
    }
    free(d);
    return st;
}

cJSON *ids__jnum(double v, int decimals) {
    if (!isfinite(v)) return cJSON_CreateNull();
    const double s = pow(10.0, decimals);
    return cJSON_CreateNumber(round(v * s) / s);
}

void ids__jadd(cJSON *o, const char *key, double v, int decimals, bool *oom) {
    cJSON *x = ids__jnum(v, decimals);
    if (!x || !cJSON_AddItemToObject(o, key, x)) {
        cJSON_Delete(x);
        *oom = true;
    }
}

cJSON *ids__result_doc(ids_result_kind k) {
    cJSON *doc = cJSON_CreateObject();
    if (doc && !cJSON_AddStringToObject(doc, "format", k_res[k].format)) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

ids_status ids__write_text(const char *dir, const char *name, const char *text, size_t len, ids_err *err) {
    ids_status st = ids__mkdir_p(dir, err);
    if (st) return st;
    char *path = ids__path_join(dir, name);
    if (!path) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    const void *parts[1] = {text};
    size_t sizes[1] = {len};
    st = ids__write_atomic(path, parts, sizes, 1, err);
    free(path);
    return st;
}

/* A shard's result is its kept items and part.json (store.c); its own numbers are not written. */
static bool shard_of(const ids_prov *prov) {
    int i, n;
    if (prov) ids_prov_shard_get(prov, &i, &n);
    return prov && n > 0;
}

ids_status ids__result_write(const char *dir, ids_result_kind k, ids_relation rel, cJSON *doc, const ids_prov *prov,
                             const char *csv, size_t csv_len, bool oom, ids_err *err) {
    if (shard_of(prov)) return IDS_OK;
    char b1[64], b2[64];
    const char *jname = file_name(k, false, rel, b1, sizeof b1), *cname = file_name(k, true, rel, b2, sizeof b2);
    if (oom || !doc) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory while assembling the result", jname);
    if (prov) {
        cJSON *pj = ids__prov_json(prov, err);
        if (!pj) return err ? err->code : IDS_ERR_NOMEM;
        if (!cJSON_AddItemToObject(doc, "provenance", pj)) {
            cJSON_Delete(pj);
            return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", jname);
        }
    }
    char *txt = cJSON_Print(doc);
    if (!txt) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", jname);
    size_t n = strlen(txt);
    txt[n] = '\n'; /* written with its length: the NUL becomes the final newline */
    /* the CSV first: the JSON is what marks a result as done; when the JSON cannot be written, the
     * CSV just written goes too (no half result) */
    const bool with_csv = csv && cname;
    ids_status st = with_csv ? ids__write_text(dir, cname, csv, csv_len, err) : IDS_OK;
    if (!st && (st = ids__write_text(dir, jname, txt, n + 1, err)) && with_csv) {
        char *cpath = ids__path_join(dir, cname);
        if (cpath) unlink(cpath);
        free(cpath);
    }
    free(txt);
    return st;
}

/* A growing text (CSV) buffer; an allocation failure is remembered. */
void ids__tb_printf(ids__tb *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        const size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + (size_t)k + 1) cap *= 2;
        char *np = ids__realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np, b->cap = cap;
    }
}

/* A CSV cell: fixed decimals, empty when not finite. */
void ids__tb_num(ids__tb *b, const char *sep, double v, int decimals) {
    if (isfinite(v)) ids__tb_printf(b, "%s%.*f", sep, decimals, v);
    else ids__tb_printf(b, "%s", sep);
}

/* ---- reading back ---- */

cJSON *ids__result_read(const char *path, ids_err *err) {
    char *txt = NULL;
    if (ids__read_file(path, &txt, NULL, err)) return NULL;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        ids__err(err, IDS_ERR_FORMAT, "%s: not a JSON object (a result file of idscope)", path);
        return NULL;
    }
    return j;
}

cJSON *ids__result_load(const char *dir, ids_result_kind k, ids_relation rel, bool in_results_folder) {
    char *path = ids_result_path(dir, k, rel, in_results_folder);
    cJSON *j = path ? ids__result_read(path, NULL) : NULL;
    free(path);
    return j;
}

double ids__jget(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int ids__jint(const cJSON *o, const char *key, int lo, int hi, int def) {
    long long v;
    return ids__json_int(o, key, lo, hi, def, &v, NULL) ? def : (int)v;
}

ids_status ids__st_f32(const ids_st_file *f, const char *path, const char *name, int ndim, bool optional,
                       const ids_st_tensor **out, ids_err *err) {
    const ids_st_tensor *t = *out = ids_st_find(f, name);
    if (!t) return optional ? IDS_OK : ids__err(err, IDS_ERR_FORMAT, "%s: no tensor '%s'", path, name);
    uint64_t n = 1;
    bool ok = !strcmp(t->dtype, "F32") && t->ndim == ndim && (uintptr_t)t->data % sizeof(float) == 0;
    for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] >= 1 && ids__mul_ok(n, (uint64_t)t->shape[d], &n);
    if (!ok || n > SIZE_MAX / sizeof(float) || t->nbytes != n * sizeof(float)) {
        *out = NULL;
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s' must be float32 with %d dimensions of at least 1 and "
                        "4-byte aligned data (got %s, %d dimensions, %zu bytes%s)", path, name, ndim, t->dtype, t->ndim,
                        t->nbytes, (uintptr_t)t->data % sizeof(float) ? ", misaligned" : "");
    }
    return IDS_OK;
}

double ids_result_seconds(const char *path) {
    cJSON *j = ids__result_read(path, NULL);
    const double s = ids__jget(cJSON_GetObjectItemCaseSensitive(j, "provenance"), "seconds");
    cJSON_Delete(j);
    return s;
}

bool ids_result_matches(const char *path, const ids_prov *want, char *why, size_t why_len) {
    char *txt = NULL;
    if (ids__read_file(path, &txt, NULL, NULL)) {
        if (why && why_len) snprintf(why, why_len, "no result yet");
        return false;
    }
    /* a page (report.html) carries its provenance in a comment */
    char *json = txt, *mark = txt[0] == '{' ? NULL : strstr(txt, "<!-- " IDS_REPORT_PROV_MARK " ");
    if (mark) {
        json = mark + strlen("<!-- " IDS_REPORT_PROV_MARK " ");
        char *end = strstr(json, " -->");
        if (end) *end = 0;
    }
    const bool same = ids_prov_matches(want, json, why, why_len);
    free(txt);
    return same;
}

/* ---- the experiments' results ---- */

void ids__set_use_json(cJSON *doc, const ids_set_use *u, bool *oom) {
    if (!doc || !u || !u->manifest[0]) return;
    cJSON *o = cJSON_AddObjectToObject(doc, "set");
    *oom |= !o;
    if (!o) return;
    *oom |= !cJSON_AddStringToObject(o, "manifest", u->manifest);
    ids__jadd(o, "records", u->records, 0, oom);
    ids__jadd(o, "used", u->used, 0, oom);
    cJSON *sk = cJSON_AddObjectToObject(o, "skipped");
    *oom |= !sk;
    if (!sk) return;
    ids__jadd(sk, "no_relation", u->no_relation, 0, oom);
    ids__jadd(sk, "no_box", u->no_box, 0, oom);
    ids__jadd(sk, "same_word", u->same_word, 0, oom);
    ids__jadd(sk, "not_sampled", u->not_sampled, 0, oom);
}

void ids__prompting_json(cJSON *doc, const ids_prompting *p, bool *oom) {
    if (!doc || !p) return;
    *oom |= !cJSON_AddStringToObject(doc, "instruction", p->instruction);
    cJSON *sets = cJSON_AddArrayToObject(doc, "answer_tokens");
    *oom |= !sets;
    for (int k = 0; sets && k < p->n_sets; k++) {
        const ids_answer_set *a = &p->sets[k];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(sets, o)) {
            cJSON_Delete(o);
            *oom = true;
            return;
        }
        *oom |= !cJSON_AddStringToObject(o, "relation", ids_relation_name(a->relation));
        for (int w = 0; w < 2; w++) {
            cJSON *arr = cJSON_AddArrayToObject(o, ids_answer_word(a->relation, w == 0));
            *oom |= !arr;
            for (int i = 0; arr && i < a->n[w]; i++) {
                cJSON *t = cJSON_CreateObject();
                if (!t || !cJSON_AddItemToArray(arr, t)) {
                    cJSON_Delete(t);
                    *oom = true;
                    break;
                }
                ids__jadd(t, "token", a->tok[w][i], 0, oom);
                *oom |= !cJSON_AddStringToObject(t, "piece", a->piece[w][i]);
                *oom |= !cJSON_AddStringToObject(t, "variant", a->variant[w][i]);
            }
        }
    }
}

/* Per layer and position set: (first, second, diff, diff_pooled) under the given answer names. */
static ids_status write_patching(const char *dir, ids_result_kind k, const char *edit, const char *first_name,
                                 const char *second_name, int frames, int n_layers, int n_items, int n_skipped,
                                 const float *first, const float *second, const float *diff, const float *pooled,
                                 const float *item_diff, const ids_prompting *pr, const ids_set_use *su, const ids_prov *prov,
                                 ids_err *err) {
    bool oom = false;
    cJSON *doc = ids__result_doc(k), *rows = NULL;
    if (doc) {
        oom |= !cJSON_AddStringToObject(doc, "edit", edit);
        ids__prompting_json(doc, pr, &oom);
        ids__set_use_json(doc, su, &oom);
        if (frames > 0) ids__jadd(doc, "frames", frames, 0, &oom);
        ids__jadd(doc, "items", n_items, 0, &oom);
        ids__jadd(doc, "skipped", n_skipped, 0, &oom);
        ids__jadd(doc, "layers", n_layers, 0, &oom);
        oom |= !(rows = cJSON_AddArrayToObject(doc, "rows"));
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "layer,set,%s,%s,diff,diff_pooled\n", first_name, second_name);
    for (int l = 0; rows && l < n_layers; l++)
        for (int s = 0; s < IDS_SWAP_SET_COUNT; s++) {
            const int vi = l * IDS_SWAP_SET_COUNT + s;
            const char *set = ids_swap_set_name((ids_swap_set)s);
            cJSON *r = cJSON_CreateObject();
            if (!r || !cJSON_AddItemToArray(rows, r)) {
                cJSON_Delete(r);
                oom = true;
                break;
            }
            ids__jadd(r, "layer", l, 0, &oom);
            oom |= !cJSON_AddStringToObject(r, "set", set);
            ids__jadd(r, first_name, first[vi], 6, &oom);
            ids__jadd(r, second_name, second[vi], 6, &oom);
            ids__jadd(r, "diff", diff[vi], 6, &oom);
            ids__jadd(r, "diff_pooled", pooled[vi], 6, &oom);
            if (item_diff) ids__patch_ci(r, item_diff, n_items, n_layers * IDS_SWAP_SET_COUNT, vi, &oom);
            ids__tb_printf(&csv, "%d,%s", l, set);
            ids__tb_num(&csv, ",", first[vi], 6);
            ids__tb_num(&csv, ",", second[vi], 6);
            ids__tb_num(&csv, ",", diff[vi], 6);
            ids__tb_num(&csv, ",", pooled[vi], 6);
            ids__tb_printf(&csv, "\n");
        }
    ids_status st = item_diff ? ids__patch_items_write(dir, k, item_diff, n_items, n_layers, err) : IDS_OK;
    if (!st) st = ids__result_write(dir, k, 0, doc, prov, csv.p, csv.n, oom || csv.oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

ids_status ids_swap_write(const char *dir, const ids_swap_result *r, ids_err *err) {
    return write_patching(dir, r->control ? (r->hue ? IDS_RESULT_SWAP_HUE : IDS_RESULT_SWAP_CONTROL) : IDS_RESULT_SWAP,
                          r->control ? (r->hue ? "hue shift of the whole image" : "attribute (objects recoloured)") : "mirror",
                          "left", "right", 0, r->n_layers, r->n_items, r->n_skipped, r->left, r->right, r->diff,
                          r->diff_pooled, r->item_diff, &r->prompting, &r->set, r->prov, err);
}

ids_status ids_temporal_swap_write(const char *dir, const ids_temporal_swap_result *r, ids_err *err) {
    return write_patching(dir, IDS_RESULT_TEMPORAL_SWAP, "time reversal", "before", "after", r->frames, r->n_layers,
                          r->n_items, r->n_skipped, r->first, r->second, r->diff, r->diff_pooled, r->item_diff, &r->prompting, NULL, r->prov, err);
}

ids_status ids_steer_write(const char *dir, const ids_steer_result *r, ids_err *err) {
    bool oom = false;
    const bool g = r->greedy_id != NULL;
    cJSON *doc = ids__result_doc(IDS_RESULT_STEER_BELIEF), *layers = NULL;
    if (doc) {
        oom |= !cJSON_AddStringToObject(doc, "relation", ids_relation_name(r->relation));
        ids__jadd(doc, "factor", r->factor, 6, &oom);
        ids__jadd(doc, "items", r->n_items, 0, &oom);
        ids__jadd(doc, "skipped", r->n_skipped, 0, &oom);
        ids__jadd(doc, "greedy_tokens", g ? r->greedy_tokens : 0, 0, &oom);
        ids__prompting_json(doc, &r->prompting, &oom);
        ids__set_use_json(doc, &r->set, &oom);
        oom |= !(layers = cJSON_AddArrayToObject(doc, "layers"));
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "layer,swap_rate_id,swap_rate_noise%s\n", g ? ",greedy_id,greedy_noise" : "");
    for (int k = 0; layers && k < r->n_band; k++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(layers, o)) {
            cJSON_Delete(o);
            oom = true;
            break;
        }
        ids__jadd(o, "layer", r->layer_lo + k, 0, &oom);
        ids__jadd(o, "id", r->rate_id[k], 4, &oom);
        ids__jadd(o, "noise", r->rate_noise[k], 4, &oom);
        ids__tb_printf(&csv, "%d", r->layer_lo + k);
        ids__tb_num(&csv, ",", r->rate_id[k], 4);
        ids__tb_num(&csv, ",", r->rate_noise[k], 4);
        if (g) {
            ids__jadd(o, "greedy_id", r->greedy_id[k], 4, &oom);
            ids__jadd(o, "greedy_noise", r->greedy_noise[k], 4, &oom);
            ids__tb_num(&csv, ",", r->greedy_id[k], 4);
            ids__tb_num(&csv, ",", r->greedy_noise[k], 4);
        }
        ids__tb_printf(&csv, "\n");
    }
    if (doc) {
        ids__jadd(doc, "best3_id", r->best3_id, 4, &oom);
        ids__jadd(doc, "best3_noise", r->best3_noise, 4, &oom);
        if (g) {
            ids__jadd(doc, "greedy_best3_id", r->greedy_best3_id, 4, &oom);
            ids__jadd(doc, "greedy_best3_noise", r->greedy_best3_noise, 4, &oom);
        }
    }
    ids__tb items = {0};
    if (doc) ids__belief_stats(doc, layers, r, &items, &oom);
    ids_status st = items.n ? ids__write_text(dir, "steer-belief-items.csv", items.p, items.n, err) : IDS_OK;
    if (items.oom) st = ids__err(err, IDS_ERR_NOMEM, "steer-belief-items.csv: out of memory");
    free(items.p);
    if (!st) st = ids__result_write(dir, IDS_RESULT_STEER_BELIEF, 0, doc, r->prov, csv.p, csv.n, oom || csv.oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

ids_status ids_steer_grid_write(const char *dir, const ids_steer_grid_result *g, ids_err *err) {
    bool oom = false;
    const ids_result_kind kind = g->variant == IDS_GRID_PAPER ? IDS_RESULT_STEER_GRID_PAPER : IDS_RESULT_STEER_GRID;
    cJSON *doc = ids__result_doc(kind), *delta = NULL;
    if (doc) {
        oom |= !cJSON_AddStringToObject(doc, "relation", ids_relation_name(g->relation));
        oom |= !cJSON_AddStringToObject(doc, "variant", g->variant == IDS_GRID_PAPER
                                                            ? "paper: factor x (U(target) - U(its mirror cell)), raw"
                                                            : "ours: factor x (U(target) - U(the subject's cell)), raw");
        ids__jadd(doc, "layer", g->layer, 0, &oom);
        ids__jadd(doc, "factor", g->factor, 6, &oom);
        ids__jadd(doc, "items", g->n_items, 0, &oom);
        ids__jadd(doc, "grid", g->grid, 0, &oom);
        ids__prompting_json(doc, &g->prompting, &oom);
        ids__set_use_json(doc, &g->set, &oom);
        oom |= !(delta = cJSON_AddArrayToObject(doc, "delta"));
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "x,y,delta\n");
    for (int y = 0; delta && y < g->grid; y++)
        for (int x = 0; x < g->grid; x++) {
            const double d = g->delta[y * g->grid + x];
            cJSON *n = ids__jnum(d, 6);
            if (!n || !cJSON_AddItemToArray(delta, n)) cJSON_Delete(n), oom = true;
            ids__tb_printf(&csv, "%d,%d", x, y);
            ids__tb_num(&csv, ",", d, 6);
            ids__tb_printf(&csv, "\n");
        }
    ids__tb items = {0};
    if (doc) ids__grid_stats(doc, g, &items, &oom);
    char jb[96], iname[112];
    const char *jn = ids_result_name(kind, g->relation, jb, sizeof jb);
    snprintf(iname, sizeof iname, "%.*s-items.csv", (int)(strlen(jn) > 5 ? strlen(jn) - 5 : 0), jn);
    ids_status st = items.n ? ids__write_text(dir, iname, items.p, items.n, err) : IDS_OK;
    if (items.oom) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", iname);
    free(items.p);
    if (!st) st = ids__result_write(dir, kind, g->relation, doc, g->prov, csv.p, csv.n, oom || csv.oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

ids_status ids_depth_write(const char *dir, const ids_depth_result *d, ids_err *err) {
    static const char *const keys[4] = {"above_below_down", "above_below_up", "front_behind_down", "front_behind_up"};
    const float *vals[4] = {d->ab_down, d->ab_up, d->fb_down, d->fb_up};
    bool oom = false;
    cJSON *doc = ids__result_doc(IDS_RESULT_DEPTH), *layers = NULL;
    if (doc) {
        ids__jadd(doc, "factor", d->factor, 6, &oom);
        oom |= !cJSON_AddStringToObject(doc, "push", d->raw ? "raw: factor x (U(0, G-1) - U(0, 0)), the paper's"
                                                            : "factor x the word's norm along U(0, G-1) - U(0, 0)");
        ids__jadd(doc, "grid_images", d->n_grid, 0, &oom);
        ids__jadd(doc, "depth_images", d->n_depth, 0, &oom);
        ids__prompting_json(doc, &d->prompting, &oom);
        ids__set_use_json(doc, &d->set, &oom);
        oom |= !(layers = cJSON_AddArrayToObject(doc, "layers"));
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "layer,%s,%s,%s,%s\n", keys[0], keys[1], keys[2], keys[3]);
    for (int k = 0; layers && k < d->n_band; k++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(layers, o)) {
            cJSON_Delete(o);
            oom = true;
            break;
        }
        ids__jadd(o, "layer", d->layer_lo + k, 0, &oom);
        ids__tb_printf(&csv, "%d", d->layer_lo + k);
        for (int q = 0; q < 4; q++) {
            ids__jadd(o, keys[q], vals[q][k], 6, &oom);
            ids__tb_num(&csv, ",", vals[q][k], 6);
        }
        ids__tb_printf(&csv, "\n");
    }
    ids__tb items = {0};
    if (doc) ids__depth_stats(doc, layers, d, &items, &oom);
    ids_status st = items.n ? ids__write_text(dir, "depth-items.csv", items.p, items.n, err) : IDS_OK;
    if (items.oom) st = ids__err(err, IDS_ERR_NOMEM, "depth-items.csv: out of memory");
    free(items.p);
    if (!st) st = ids__result_write(dir, IDS_RESULT_DEPTH, 0, doc, d->prov, csv.p, csv.n, oom || csv.oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

ids_status ids_temporal_steer_write(const char *dir, const ids_temporal_steer_result *r, ids_err *err) {
    bool oom = false;
    cJSON *doc = ids__result_doc(IDS_RESULT_TEMPORAL_STEER), *layers = NULL;
    if (doc) {
        ids__jadd(doc, "factor", r->factor, 6, &oom);
        ids__jadd(doc, "source", r->source, 0, &oom);
        ids__jadd(doc, "frames", r->frames + 1, 0, &oom);
        ids__jadd(doc, "null_frame", r->null_frame, 0, &oom);
        ids__jadd(doc, "items", r->n_items, 0, &oom);
        ids__prompting_json(doc, &r->prompting, &oom);
        oom |= !(layers = cJSON_AddArrayToObject(doc, "layers"));
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "layer,frame,d_before,d_after\n");
    for (int k = 0; layers && k < r->n_band; k++) {
        cJSON *o = cJSON_CreateObject(), *db = NULL, *da = NULL;
        if (!o || !cJSON_AddItemToArray(layers, o)) {
            cJSON_Delete(o);
            oom = true;
            break;
        }
        ids__jadd(o, "layer", r->layer_lo + k, 0, &oom);
        ids__jadd(o, "spearman_after", r->rho_after[k], 4, &oom);
        oom |= !(db = cJSON_AddArrayToObject(o, "d_before")) || !(da = cJSON_AddArrayToObject(o, "d_after"));
        for (int t = 0; db && da && t < r->frames; t++) {
            const double b = r->d_before[k * r->frames + t], a = r->d_after[k * r->frames + t];
            cJSON *nb = ids__jnum(b, 6), *na = ids__jnum(a, 6);
            if (!nb || !cJSON_AddItemToArray(db, nb)) cJSON_Delete(nb), oom = true;
            if (!na || !cJSON_AddItemToArray(da, na)) cJSON_Delete(na), oom = true;
            ids__tb_printf(&csv, "%d,%d", r->layer_lo + k, t + 1);
            ids__tb_num(&csv, ",", b, 6);
            ids__tb_num(&csv, ",", a, 6);
            ids__tb_printf(&csv, "\n");
        }
    }
    if (doc) ids__jadd(doc, "monotonic", r->monotonic, 4, &oom);
    ids__tb items = {0};
    if (doc) ids__tsteer_stats(doc, r, &items, &oom);
    ids_status sti = items.n ? ids__write_text(dir, "temporal-steer-items.csv", items.p, items.n, err) : IDS_OK;
    if (items.oom) sti = ids__err(err, IDS_ERR_NOMEM, "temporal-steer-items.csv: out of memory");
    free(items.p);
    if (sti) {
        cJSON_Delete(doc);
        free(csv.p);
        return sti;
    }
    ids_status st = ids__result_write(dir, IDS_RESULT_TEMPORAL_STEER, 0, doc, r->prov, csv.p, csv.n, oom || csv.oom, err);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

/* ---- results with a tensor file, and results under a name of the caller's ---- */

/* Add a copy of prov to doc as "provenance" and print it (malloc'd, NULL when out of memory). */
static char *print_with_prov(cJSON *doc, const ids_prov *prov, const char *what, ids_err *err) {
    if (prov) {
        cJSON *pj = ids__prov_json(prov, err);
        if (!pj) return NULL;
        if (!cJSON_AddItemToObject(doc, "provenance", pj)) {
            cJSON_Delete(pj);
            ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", what);
            return NULL;
        }
    }
    char *txt = cJSON_Print(doc);
    if (!txt) ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", what);
    return txt;
}

ids_status ids__result_write_as(const char *dir, const char *name, cJSON *doc, const ids_prov *prov, bool oom, ids_err *err) {
    if (shard_of(prov)) return IDS_OK;
    if (oom || !doc) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory while assembling the result", name);
    char *txt = print_with_prov(doc, prov, name, err);
    if (!txt) return err ? err->code : IDS_ERR_NOMEM;
    size_t n = strlen(txt);
    txt[n] = '\n';
    ids_status st = ids__write_text(dir, name, txt, n + 1, err);
    free(txt);
    return st;
}

ids_status ids__result_write_st(const char *dir, ids_result_kind k, cJSON *doc, const ids_prov *prov, ids_st_writer *w,
                                const char *st_name, const char *csv, size_t csv_len, bool oom, ids_err *err) {
    if (shard_of(prov)) return IDS_OK;
    char b[64];
    const char *jname = file_name(k, false, 0, b, sizeof b), *cname = file_name(k, true, 0, b, sizeof b);
    if (oom || !doc || !w) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory while assembling the result", jname);
    ids_status st = ids__mkdir_p(dir, err);
    if (st) return st;
    char *txt = print_with_prov(doc, prov, jname, err);
    if (!txt) return err ? err->code : IDS_ERR_NOMEM;
    char *path = ids__path_join(dir, st_name);
    if (!path) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) st = ids_st_writer_meta(w, "idscope", txt, err);
    if (!st) st = ids_st_writer_write(w, path, err);
    const bool st_written = !st, with_csv = csv && cname;
    if (!st && with_csv) st = ids__write_text(dir, cname, csv, csv_len, err);
    const bool csv_written = !st && with_csv;
    if (!st) {
        size_t n = strlen(txt);
        txt[n] = '\n';
        st = ids__write_text(dir, jname, txt, n + 1, err);
    }
    if (st) { /* no half result: what this call wrote goes */
        if (st_written) unlink(path);
        char *cpath = csv_written ? ids__path_join(dir, cname) : NULL;
        if (cpath) unlink(cpath);
        free(cpath);
    }
    free(path);
    free(txt);
    return st;
}

ids_status ids__temporal_write(const char *dir, const ids_prov *prov, const char *const *objects, int n_obj, long videos,
                               int L, int F, int E, const float *tid, const float *axis, ids_err *err) {
    bool oom = false;
    cJSON *doc = ids__result_doc(IDS_RESULT_TEMPORAL), *objs = NULL, *layers = NULL;
    if (doc) {
        ids__jadd(doc, "layers", L, 0, &oom);
        oom |= !cJSON_AddStringToObject(doc, "layer_convention", "layer l = residual stream after l blocks (0 = embeddings)");
        ids__jadd(doc, "frames", F + 1, 0, &oom);
        oom |= !cJSON_AddStringToObject(doc, "layout", "temporal[layer][frame - 1][embd] for appearance frames 1..T-1, mean-centred over frames");
        oom |= !cJSON_AddStringToObject(doc, "question", "Does the A appear before or after the B? (video: one image block per frame)");
        oom |= !cJSON_AddStringToObject(doc, "token", "each object word (last piece of tokenize(\" \" + word)), first occurrence after the frames");
        oom |= !(objs = cJSON_CreateStringArray(objects, n_obj)) || !cJSON_AddItemToObject(doc, "objects", objs);
        ids__jadd(doc, "pairs", n_obj * (n_obj - 1), 0, &oom);
        ids__jadd(doc, "videos", (double)videos, 0, &oom);
        oom |= !(layers = cJSON_AddArrayToObject(doc, "stats"));
    }
    ids__tb csv = {0};
    ids__tb_printf(&csv, "layer,pc1_var,spearman");
    for (int f = 1; f <= F; f++) ids__tb_printf(&csv, ",pc1_frame%d", f);
    ids__tb_printf(&csv, "\n");
    int best = -1;
    double best_var = -1, best_rho = NAN;
    for (int l = 0; layers && l < L; l++) {
        float coord[64];
        double var, rho;
        if (ids_temporal_layer_stats(tid + (size_t)l * F * E, F, E, coord, &var, &rho, err)) {
            cJSON_Delete(doc);
            free(csv.p);
            return err ? err->code : IDS_ERR_NOMEM;
        }
        cJSON *e = cJSON_CreateObject(), *pc = NULL;
        if (!e || !cJSON_AddItemToArray(layers, e)) {
            cJSON_Delete(e);
            oom = true;
            break;
        }
        ids__jadd(e, "layer", l, 0, &oom);
        ids__jadd(e, "pc1_var", var, 6, &oom);
        ids__jadd(e, "spearman", rho, 6, &oom);
        oom |= !(pc = cJSON_AddArrayToObject(e, "pc1"));
        ids__tb_printf(&csv, "%d", l);
        ids__tb_num(&csv, ",", var, 6);
        ids__tb_num(&csv, ",", rho, 6);
        for (int f = 0; pc && f < F; f++) {
            cJSON *n = ids__jnum(coord[f], 6);
            if (!n || !cJSON_AddItemToArray(pc, n)) cJSON_Delete(n), oom = true;
            ids__tb_printf(&csv, ",%.6g", coord[f]);
        }
        ids__tb_printf(&csv, "\n");
        if (l >= 1 && var > best_var) best_var = var, best = l, best_rho = rho;
    }
    if (doc) {
        ids__jadd(doc, "best_layer", best, 0, &oom);
        ids__jadd(doc, "pca_order_spearman", best_rho, 6, &oom);
    }
    ids_st_writer *w = ids_st_writer_new();
    int64_t shape_t[3] = {L, F, E}, shape_ax[2] = {L, E};
    ids_status st = w ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) st = ids_st_writer_add(w, "temporal", "F32", 3, shape_t, tid, err);
    if (!st) st = ids_st_writer_add(w, "time_axis", "F32", 2, shape_ax, axis, err);
    if (!st)
        st = ids__result_write_st(dir, IDS_RESULT_TEMPORAL, doc, prov, w, "temporal.safetensors", csv.p, csv.n, oom || csv.oom,
                                  err);
    ids_st_writer_free(w);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

/* ---- the demo's summary ---- */

/* The peak of the "objects" set's recovered difference over layers in a patching result. */
static void objword_peak(const cJSON *j, double *peak, int *layer) {
    *peak = NAN, *layer = -1;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(j, "rows")) {
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(r, "set");
        const double v = ids__jget(r, "diff");
        if (cJSON_IsString(set) && !strcmp(set->valuestring, "objects") && isfinite(v) && (*layer < 0 || v > *peak))
            *peak = v, *layer = ids__jint(r, "layer", 0, IDS_JSON_LAYER_MAX, -1);
    }
}

static int jint(const cJSON *o, const char *key) { return ids__jint(o, key, 0, IDS_JSON_LAYER_MAX, -1); }

/* The numbers of the step results in a demo folder. */
static void summary_read(const char *dir, ids_demo_summary *s) {
    cJSON *stats = ids__result_load(dir, IDS_RESULT_STATS, 0, true), *belief = ids__result_load(dir, IDS_RESULT_STEER_BELIEF, 0, true);
    cJSON *swap = ids__result_load(dir, IDS_RESULT_SWAP, 0, true), *score = ids__result_load(dir, IDS_RESULT_SCORE, 0, true);
    cJSON *tj = ids__result_load(dir, IDS_RESULT_TEMPORAL, 0, true), *tsw = ids__result_load(dir, IDS_RESULT_TEMPORAL_SWAP, 0, true);
    cJSON *tst = ids__result_load(dir, IDS_RESULT_TEMPORAL_STEER, 0, true);
    s->ids_r2_best = NAN, s->ids_r2_best_layer = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(stats, "layers")) {
        const double r2 = ids__jget(it, "r2");
        if (isfinite(r2) && (s->ids_r2_best_layer < 0 || r2 > s->ids_r2_best)) s->ids_r2_best = r2, s->ids_r2_best_layer = jint(it, "layer");
    }
    s->belief_swap_rate_id = ids__jget(belief, "best3_id");
    s->belief_swap_items = ids__jint(belief, "items", 0, 1 << 30, -1);
    s->belief_swap_rate_noise = ids__jget(belief, "best3_noise");
    s->belief_swap_rate_id_greedy = ids__jget(belief, "greedy_best3_id");
    s->belief_swap_rate_noise_greedy = ids__jget(belief, "greedy_best3_noise");
    for (int k = 0; k < 3; k++) { /* factor-1, factor-2, then the main run */
        char sub[64];
        snprintf(sub, sizeof sub, "%s/steer/factor-%d", dir, k + 1);
        cJSON *bj = k < 2 ? ids__result_load(sub, IDS_RESULT_STEER_BELIEF, 0, false) : belief;
        s->sweep_factor[k] = ids__jget(bj, "factor");
        s->sweep_id[k] = ids__jget(bj, "best3_id");
        s->sweep_noise[k] = ids__jget(bj, "best3_noise");
        if (k < 2) cJSON_Delete(bj);
    }
    objword_peak(swap, &s->mirror_objword_recovery_peak, &s->mirror_objword_recovery_peak_layer);
    objword_peak(tsw, &s->temporal_objword_recovery_peak, &s->temporal_objword_recovery_peak_layer);
    s->temporal_pca_order = ids__jget(tj, "pca_order_spearman");
    s->temporal_pca_best_layer = jint(tj, "best_layer");
    s->temporal_steer_monotonic = ids__jget(tst, "monotonic");
    s->score_best_layer = jint(score, "best_layer");
    s->score_best = ids__jget(score, "best_score");
    cJSON *all[7] = {stats, belief, swap, score, tj, tsw, tst};
    for (int k = 0; k < 7; k++) cJSON_Delete(all[k]);
}

ids_status ids__summary_write(const char *dir, ids_prov *prov, const char *model, const char *mmproj, ids_demo_summary *s,
                              ids_err *err) {
    summary_read(dir, s);
    ids__summary_ci_read(dir, s);
    bool oom = false;
    cJSON *doc = ids__result_doc(IDS_RESULT_SUMMARY), *sweep = NULL;
    if (doc) {
        oom |= !cJSON_AddStringToObject(doc, "model", model);
        oom |= !cJSON_AddStringToObject(doc, "mmproj", mmproj);
        oom |= !cJSON_AddBoolToObject(doc, "positive_control", s->positive_control);
        if (s->positive_control) oom |= !cJSON_AddStringToObject(doc, "note", IDS_POSITIVE_CONTROL_NOTE);
        ids__jadd(doc, "ids_r2_best", s->ids_r2_best, 6, &oom);
        ids__jadd(doc, "ids_r2_best_layer", s->ids_r2_best_layer, 0, &oom);
        ids__jadd(doc, "belief_swap_rate_id", s->belief_swap_rate_id, 4, &oom);
        ids__jadd(doc, "belief_swap_rate_noise", s->belief_swap_rate_noise, 4, &oom);
        ids__jadd(doc, "belief_swap_items", s->belief_swap_items, 0, &oom);
        oom |= !(sweep = cJSON_AddArrayToObject(doc, "belief_swap_by_factor"));
        for (int k = 0; sweep && k < 3; k++) {
            cJSON *e = cJSON_CreateObject();
            if (!e || !cJSON_AddItemToArray(sweep, e)) {
                cJSON_Delete(e);
                oom = true;
                break;
            }
            ids__jadd(e, "factor", s->sweep_factor[k], 6, &oom);
            ids__jadd(e, "id", s->sweep_id[k], 4, &oom);
            ids__jadd(e, "noise", s->sweep_noise[k], 4, &oom);
        }
        ids__jadd(doc, "belief_swap_rate_id_greedy", s->belief_swap_rate_id_greedy, 4, &oom);
        ids__jadd(doc, "belief_swap_rate_noise_greedy", s->belief_swap_rate_noise_greedy, 4, &oom);
        ids__jadd(doc, "mirror_objword_recovery_peak", s->mirror_objword_recovery_peak, 6, &oom);
        ids__jadd(doc, "mirror_objword_recovery_peak_layer", s->mirror_objword_recovery_peak_layer, 0, &oom);
        ids__jadd(doc, "temporal_pca_order", s->temporal_pca_order, 6, &oom);
        ids__jadd(doc, "temporal_pca_best_layer", s->temporal_pca_best_layer, 0, &oom);
        ids__jadd(doc, "temporal_steer_monotonic", s->temporal_steer_monotonic, 4, &oom);
        ids__jadd(doc, "temporal_objword_recovery_peak", s->temporal_objword_recovery_peak, 6, &oom);
        ids__jadd(doc, "temporal_objword_recovery_peak_layer", s->temporal_objword_recovery_peak_layer, 0, &oom);
        ids__jadd(doc, "score_best_layer", s->score_best_layer, 0, &oom);
        ids__jadd(doc, "score_best", s->score_best, 6, &oom);
        ids__summary_ci_json(doc, s, &oom);
        ids__jadd(doc, "seconds", s->seconds, 1, &oom);
        ids__jadd(doc, "steps_run", s->steps_run, 0, &oom);
        ids__jadd(doc, "steps_skipped", s->steps_skipped, 0, &oom);
    }
    ids_prov_finish(prov);
    ids_status st = ids__result_write(dir, IDS_RESULT_SUMMARY, 0, doc, prov, NULL, 0, oom, err);
    cJSON_Delete(doc);
    return st;
}
