/* Edits of a run from the command line (see edits.h). */
#define _POSIX_C_SOURCE 200809L
#include "edits.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --layer L: a residual layer, SITE:B or a TransformerLens hook name -> (site, layer). EXIT_USAGE
 * after the message, else ARGS_GO. n_layer < 0: the model's header could not be read (loading it
 * will say why), so only the form is checked. */
static int parse_layer(const char *cmd, const char *v, int n_layer, ids_site_kind *site, int *layer) {
    static const struct { const char *hook; ids_site_kind site; int plus; } hooks[] = {
        {"hook_resid_pre", IDS_SITE_RESID, 0}, {"hook_resid_post", IDS_SITE_RESID, 1},
        {"hook_attn_out", IDS_SITE_ATTN_OUT, 0}, {"hook_mlp_out", IDS_SITE_MLP_OUT, 0},
        {"hook_deepstack", IDS_SITE_DEEPSTACK, 0}, {"hook_xattn_out", IDS_SITE_XATTN_OUT, 0},
        {"hook_xattn_gate", IDS_SITE_XATTN_GATE, 0}};
    char *end;
    long b = -1;
    *site = IDS_SITE_RESID;
    if (isdigit((unsigned char)v[0])) {
        errno = 0;
        b = strtol(v, &end, 10);
        if (*end || errno || b > INT_MAX) b = -1;
    } else if (!strncmp(v, "attn_out:", 9) || !strncmp(v, "mlp_out:", 8) || !strncmp(v, "resid:", 6) ||
               !strncmp(v, "deepstack:", 10)) {
        const char *c = strchr(v, ':') + 1;
        *site = v[0] == 'a' ? IDS_SITE_ATTN_OUT : v[0] == 'm' ? IDS_SITE_MLP_OUT : v[0] == 'd' ? IDS_SITE_DEEPSTACK
                                                                                            : IDS_SITE_RESID;
        errno = 0;
        b = isdigit((unsigned char)*c) ? strtol(c, &end, 10) : -1;
        if (b >= 0 && (*end || errno || b > INT_MAX)) b = -1;
    } else if (!strncmp(v, "blocks.", 7) && isdigit((unsigned char)v[7])) {
        errno = 0;
        b = strtol(v + 7, &end, 10);
        size_t k = 0;
        while (b >= 0 && k < sizeof hooks / sizeof *hooks && !(*end == '.' && !strcmp(end + 1, hooks[k].hook))) k++;
        if (errno || b > INT_MAX - 1 || k == sizeof hooks / sizeof *hooks) {
            b = -1;
        } else {
            if (n_layer >= 0 && b >= n_layer)
                return args_bad(cmd, "--layer", v, "is outside blocks 0..%d (the model's blocks)", n_layer - 1);
            *site = hooks[k].site;
            b += hooks[k].plus;
        }
    }
    if (b < 0)
        return args_bad(cmd, "--layer", v, "is not a layer L (0..n_layer) or a hook name like blocks.2.hook_resid_post, "
                        "blocks.2.hook_attn_out, blocks.2.hook_mlp_out, blocks.0.hook_deepstack, blocks.3.hook_xattn_out, "
                        "blocks.3.hook_xattn_gate, attn_out:2");
    const int hi = *site == IDS_SITE_RESID ? n_layer : n_layer - 1;
    if (n_layer >= 0 && b > hi)
        return args_bad(cmd, "--layer", v, "is outside 0..%d (the model's %s)", hi, *site == IDS_SITE_RESID ? "layers" : "blocks");
    *layer = (int)b;
    return ARGS_GO;
}

/* --positions SEL (already checked by the parser) -> a selector. */
static int parse_positions(const char *cmd, const char *v, cli_edit *e, ids_sel *sel) {
    ids_err err;
    *sel = (ids_sel){.kind = IDS_SEL_ALL};
    if (!v || !strcmp(v, "all")) return ARGS_GO;
    if (!strcmp(v, "last")) sel->kind = IDS_SEL_LAST;
    else if (!strcmp(v, "image")) sel->kind = IDS_SEL_IMAGE, sel->image = -1;
    else if (!strcmp(v, "text")) sel->kind = IDS_SEL_TEXT;
    else if (!strncmp(v, "word:", 5)) {
        snprintf(e->word, sizeof e->word, "%s", v + 5);
        char *c = strrchr(e->word, ':');
        int nth = 0;
        if (c && c[1] && strspn(c + 1, "0123456789") == strlen(c + 1) && strlen(c + 1) < 9) {
            nth = atoi(c + 1);
            *c = 0;
        }
        *sel = (ids_sel){.kind = IDS_SEL_WORD, .word = e->word, .nth = nth, .after_image = true};
    } else {
        int n;
        if (ids_parse_index_list(v, 0, 1 << 20, &e->list, &n, &err))
            return args_bad(cmd, "--positions", v, "is not an index list of rows 0..%d", 1 << 20);
        *sel = (ids_sel){.kind = IDS_SEL_LIST, .list = e->list, .n_list = n};
    }
    return ARGS_GO;
}

/* "PATH[i,j]": the indices after the path (cut off *spec); -1 after a usage message, else their count. */
static int parse_index(const char *cmd, const char *opt, const char *value, char *spec, long *idx) {
    size_t n = strlen(spec);
    if (!n || spec[n - 1] != ']') return 0;
    char *open = strrchr(spec, '[');
    if (!open) return 0;
    spec[n - 1] = 0;
    *open = 0;
    int k = 0;
    for (char *p = open + 1;;) {
        char *end;
        errno = 0;
        long x = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
        if (x < 0 || errno || k == 8 || (*end != ',' && *end)) {
            args_bad(cmd, opt, value, "has a bad index: [i,j,...] takes up to 8 whole numbers >= 0");
            return -1;
        }
        idx[k++] = x;
        if (!*end) break;
        p = end + 1;
    }
    return k;
}

/* The array a vector spec names: its floats (malloc'd), shape and file. 0, or the exit code. */
static int read_array(const char *cmd, const char *opt, const char *value, const char *path, const char *tensor,
                      float **data, int64_t *shape, int *ndim) {
    ids_err err;
    size_t pl = strlen(path);
    if (pl > 4 && !strcmp(path + pl - 4, ".npy")) {
        if (tensor) return args_bad(cmd, opt, value, "names a tensor, but a .npy file holds one array");
        ids_npy a;
        if (ids_npy_read(path, &a, &err)) return fail(&err);
        int rc = 0;
        size_t n = 1;
        for (int i = 0; i < a.ndim; i++) n *= (size_t)a.shape[i];
        if (strcmp(a.dtype, "<f4") && strcmp(a.dtype, "<f8")) {
            fprintf(stderr, "idscope: error: %s: dtype %s, float32 or float64 needed\n", path, a.dtype);
            rc = 1;
        } else if (!(*data = malloc(sizeof(float) * (n ? n : 1)))) {
            rc = fail_oom();
        } else {
            for (size_t i = 0; i < n; i++)
                (*data)[i] = a.dtype[2] == '4' ? ((const float *)a.data)[i] : (float)((const double *)a.data)[i];
            *ndim = a.ndim;
            memcpy(shape, a.shape, sizeof(int64_t) * (size_t)a.ndim);
        }
        ids_npy_free(&a);
        return rc;
    }
    if (pl > 12 && !strcmp(path + pl - 12, ".safetensors")) {
        ids_st_file *f;
        if (ids_st_open(&f, path, &err)) return fail(&err);
        const ids_st_tensor *t = tensor ? ids_st_find(f, tensor) : ids_st_count(f) == 1 ? ids_st_at(f, 0) : NULL;
        int rc = 0;
        if (!t) {
            fprintf(stderr, "idscope: error: %s: %s%s%s; it has:", path, tensor ? "no tensor named '" : "give a tensor, "
                    "FILE.safetensors:NAME", tensor ? tensor : "", tensor ? "'" : "");
            for (int i = 0; i < ids_st_count(f); i++) fprintf(stderr, " %s", ids_st_at(f, i)->name);
            fputc('\n', stderr);
            rc = 1;
        } else if (strcmp(t->dtype, "F32")) {
            fprintf(stderr, "idscope: error: %s: tensor '%s' is %s, F32 needed\n", path, t->name, t->dtype);
            rc = 1;
        } else if (!(*data = malloc(t->nbytes ? t->nbytes : 1))) {
            rc = fail_oom();
        } else {
            memcpy(*data, t->data, t->nbytes);
            *ndim = t->ndim;
            memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        }
        ids_st_close(f);
        return rc;
    }
    return args_bad(cmd, opt, value, "is not a .npy file or FILE.safetensors[:TENSOR]");
}

/* An edit's vector: the array picked by the spec, scaled. 0 or the exit code. */
static int load_vector(const char *cmd, const arg_group *g, float scale, cli_edit *e, const char **file) {
    char opt[16];
    snprintf(opt, sizeof opt, "--%s", g->opener);
    char *spec = strdup(g->value), *tensor = NULL;
    if (!spec) return fail_oom();
    long idx[8];
    int nidx = parse_index(cmd, opt, g->value, spec, idx), rc = 0, ndim = 0;
    char *colon = strstr(spec, ".safetensors:");
    if (colon) {
        tensor = colon + 13;
        colon[12] = 0;
    }
    float *all = NULL;
    int64_t shape[8];
    if (nidx < 0) rc = EXIT_USAGE;
    if (!rc) rc = read_array(cmd, opt, g->value, spec, tensor, &all, shape, &ndim);
    size_t off = 0;
    for (int k = 0; !rc && k < nidx; k++) {
        if (k >= ndim - 1 || idx[k] >= shape[k]) {
            fprintf(stderr, "idscope: error: %s: index %ld of axis %d is outside the array of %d axes (axis %d: %lld "
                    "entries), one vector or a list of rows must remain\n", g->value, idx[k], k, ndim, k,
                    k < ndim ? (long long)shape[k] : 0ll);
            rc = 1;
            break;
        }
        size_t stride = 1;
        for (int i = k + 1; i < ndim; i++) stride *= (size_t)shape[i];
        off += (size_t)idx[k] * stride;
    }
    const int left = ndim - nidx;
    if (!rc && (left < 1 || left > 2)) {
        fprintf(stderr, "idscope: error: %s: %d axes remain; a vector [n_embd] or rows [n, n_embd] is needed "
                "(pick with [i,...])\n", g->value, left);
        rc = 1;
    }
    if (!rc) {
        e->width = (int)shape[ndim - 1];
        e->rows = left == 2 ? (int)shape[ndim - 2] : 0;
        const size_t n = (size_t)e->width * (size_t)(e->rows ? e->rows : 1);
        if (!(e->data = malloc(sizeof(float) * (n ? n : 1)))) rc = fail_oom();
        for (size_t i = 0; !rc && i < n; i++) {
            e->data[i] = all[off + i] * scale;
            if (!isfinite(e->data[i])) {
                fprintf(stderr, "idscope: error: %s: value %zu is not a finite number\n", g->value, i);
                rc = 1;
            }
        }
        if (!rc && n == 0) {
            fprintf(stderr, "idscope: error: %s: an empty vector\n", g->value);
            rc = 1;
        }
    }
    *file = g->value;
    free(all);
    free(spec);
    return rc;
}

/* REPLACE by one vector: every selected row becomes it. */
static void fill_rows(const ids_hook_view *v, float *data, void *user) {
    for (int i = 0; i < v->n_rows; i++) memcpy(data + (size_t)i * v->width, user, sizeof(float) * (size_t)v->width);
}

/* Room for one more edit: its index, or -1 after the message. */
static int edit_slot(cli_edits *out) {
    if (out->n == out->cap) {
        int cap = out->cap ? 2 * out->cap : 16;
        cli_edit *e = realloc(out->e, sizeof *e * (size_t)cap);
        if (e) out->e = e;
        ids_hook *h = e ? realloc(out->hooks, sizeof *h * (size_t)cap) : NULL;
        if (h) out->hooks = h;
        const char **nm = h ? realloc(out->names, sizeof *nm * (size_t)cap) : NULL;
        if (nm) out->names = nm;
        const char **fl = nm ? realloc(out->files, sizeof *fl * (size_t)cap) : NULL;
        if (fl) out->files = fl;
        if (!fl) {
            fail_oom();
            return -1;
        }
        out->cap = cap;
    }
    memset(&out->e[out->n], 0, sizeof *out->e);
    memset(&out->hooks[out->n], 0, sizeof *out->hooks);
    out->names[out->n] = out->files[out->n] = NULL;
    return out->n++;
}

/* A control vector's directions as edits: ADD at every row of residual layer K + 1. */
static int add_cvec(const char *path, int n_layer, cli_edits *out) {
    ids_err err;
    ids_cvec cv;
    if (ids_cvec_read(path, &cv, &err)) return fail(&err);
    int rc = 0, skipped = 0;
    for (int i = 0; !rc && i < cv.n; i++) {
        if (n_layer >= 0 && cv.layer[i] > n_layer) { /* llama.cpp has no tensor there either */
            skipped++;
            continue;
        }
        int k = edit_slot(out);
        if (k < 0) {
            rc = 1;
            break;
        }
        cli_edit *e = &out->e[k];
        e->width = cv.n_embd;
        if (!(e->data = malloc(sizeof(float) * (size_t)cv.n_embd))) {
            rc = fail_oom();
            break;
        }
        memcpy(e->data, cv.dir + (size_t)i * cv.n_embd, sizeof(float) * (size_t)cv.n_embd);
        out->hooks[k] = (ids_hook){.site = IDS_SITE_RESID, .layer = cv.layer[i], .sel = {.kind = IDS_SEL_ALL},
                                   .action = IDS_ACT_ADD, .vec = e->data, .len = (size_t)cv.n_embd};
        out->files[k] = path;
        if (!(out->names[k] = str_fmt("--control-vector %s (direction.%d)", path, cv.layer[i] - 1))) rc = 1;
    }
    if (!rc && skipped)
        fprintf(stderr, "idscope: note: %s: %d direction%s past the model's %d blocks left out (llama.cpp has no place "
                "for them either)\n", path, skipped, skipped == 1 ? "" : "s", n_layer);
    ids_cvec_free(&cv);
    return rc;
}

int edits_prepare(const char *cmd, const arg_groups *g, const arg_strs *cvecs, const char *text_gguf, cli_edits *out) {
    memset(out, 0, sizeof *out);
    const int n_layer = g->n || cvecs->n ? args_model_layers(text_gguf) : -1;
    for (int i = 0; i < cvecs->n; i++) {
        int rc = add_cvec(cvecs->v[i], n_layer, out);
        if (rc) return rc;
    }
    for (int gi = 0; gi < g->n; gi++) {
        const arg_group *gr = &g->g[gi];
        const int k = edit_slot(out);
        if (k < 0) return 1;
        cli_edit *e = &out->e[k];
        ids_hook *h = &out->hooks[k];
        if (!gr->slot[EDIT_LAYER]) return args_usage(cmd, "--%s %s needs --layer L after it", gr->opener, gr->value);
        int rc = parse_layer(cmd, gr->slot[EDIT_LAYER], n_layer, &h->site, &h->layer);
        if (rc == ARGS_GO) rc = parse_positions(cmd, gr->slot[EDIT_POSITIONS], e, &h->sel);
        if (rc != ARGS_GO) return rc;
        const float scale = gr->slot[EDIT_SCALE] ? strtof(gr->slot[EDIT_SCALE], NULL) : 1.0f;
        if ((rc = load_vector(cmd, gr, scale, e, &out->files[k]))) return rc;
        const size_t n = (size_t)e->width * (size_t)(e->rows ? e->rows : 1);
        if (!strcmp(gr->opener, "add")) {
            h->action = IDS_ACT_ADD;
            h->vec = e->data;
            h->per_row = e->rows > 0;
            h->len = n;
        } else if (e->rows) {
            h->action = IDS_ACT_REPLACE;
            h->src = e->data;
            h->len = n;
        } else {
            h->action = IDS_ACT_CALLBACK;
            h->fn = fill_rows;
            h->user = e->data;
        }
        out->names[k] = str_fmt("--%s %s --layer %s --positions %s --scale %s", gr->opener, gr->value,
                                gr->slot[EDIT_LAYER], gr->slot[EDIT_POSITIONS] ? gr->slot[EDIT_POSITIONS] : "all",
                                gr->slot[EDIT_SCALE] ? gr->slot[EDIT_SCALE] : "1");
        if (!out->names[k]) return 1;
    }
    return 0;
}

int edits_bind(cli_edits *e, int n_embd) {
    for (int k = 0; k < e->n; k++) {
        const bool gate = e->hooks[k].site == IDS_SITE_XATTN_GATE; /* mllama: two gates per row */
        if (e->e[k].width != (gate ? 2 : n_embd)) {
            if (gate)
                fprintf(stderr, "idscope: error: %s: vectors of %d values, but a cross-attention gate site has 2 per row\n",
                        e->files[k], e->e[k].width);
            else
                fprintf(stderr, "idscope: error: %s: vectors of %d values, but the model's n_embd is %d\n", e->files[k],
                        e->e[k].width, n_embd);
            return 1;
        }
    }
    return 0;
}

void edits_free(cli_edits *e) {
    for (int k = 0; k < e->n; k++) {
        free(e->e[k].data);
        free(e->e[k].list);
        free((char *)e->names[k]);
    }
    free(e->e);
    free(e->hooks);
    free(e->names);
    free(e->files);
    memset(e, 0, sizeof *e);
}

int edits_fail(const cli_edits *e, const ids_err *err) {
    int k = -1, used = 0;
    if (sscanf(err->msg, "hook %d: %n", &k, &used) == 1 && used > 0 && k >= 0 && k < e->n) {
        fprintf(stderr, "idscope: error: %s: %s\n", e->names[k], err->msg + used);
        return 1;
    }
    return fail(err);
}
