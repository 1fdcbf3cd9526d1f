/* llama.cpp control vectors (engine.h): read and write the GGUF format of llama.cpp's
 * --control-vector, mapped onto idscope's residual layers. */
#include "idscope/engine.h"
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>

#define CVEC_MAX_LAYER (1 << 20)

void ids_cvec_free(ids_cvec *c) {
    if (!c) return;
    free(c->layer);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

/* "direction.K" -> K (llama.cpp's reading: the digits after the first dot), or -1. */
static long direction_index(const char *name) {
    if (strncmp(name, "direction.", 10) || !isdigit((unsigned char)name[10])) return -1;
    char *end;
    errno = 0;
    long k = strtol(name + 10, &end, 10);
    return *end || errno || k > CVEC_MAX_LAYER ? -1 : k;
}

ids_status ids_cvec_read(const char *path, ids_cvec *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    ids_gguf *g = NULL;
    ids_status st = ids_gguf_open(&g, path, err);
    if (st) return st;
    const char *arch = NULL;
    if (ids_gguf_get_str(g, "general.architecture", &arch, NULL) == IDS_OK && arch && strcmp(arch, "controlvector"))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: general.architecture is '%s', expected 'controlvector' (a llama.cpp "
                      "control vector)", path, arch);
    const int64_t nt = ids_gguf_n_tensors(g);
    if (!st && nt == 0) st = ids__err(err, IDS_ERR_FORMAT, "%s: no direction tensors", path);
    if (!st && nt > CVEC_MAX_LAYER) st = ids__err(err, IDS_ERR_RANGE, "%s: %lld tensors", path, (long long)nt);
    long max_k = 0;
    for (int64_t i = 0; !st && i < nt; i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        const long k = direction_index(t->name);
        if (k < 0)
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s' is not direction.K with a layer K in 1..%d", path, t->name,
                          CVEC_MAX_LAYER);
        else if (k == 0)
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': layer 0 has no direction (llama.cpp adds direction.K "
                          "after block K, K >= 1)", path, t->name);
        else if (t->type != IDS_TYPE_F32 || t->n_dims != 1)
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s' is %s with %d dimensions, expected F32 [n_embd]", path,
                          t->name, ids_type_name(t->type) ? ids_type_name(t->type) : "?", t->n_dims);
        else if (t->ne[0] < 1 || t->ne[0] > (1 << 20) || (out->n_embd && t->ne[0] != out->n_embd))
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s' has %lld values, expected %d", path, t->name,
                          (long long)t->ne[0], out->n_embd ? out->n_embd : 1);
        if (!st) {
            out->n_embd = (int)t->ne[0];
            if (k > max_k) max_k = k;
        }
    }
    /* one direction per layer, ascending; directions named for the same layer add up (as in llama.cpp) */
    int *has = !st ? ids__calloc((size_t)max_k + 1, sizeof *has) : NULL;
    if (!st && !has) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (int64_t i = 0; !st && i < nt; i++) has[direction_index(ids_gguf_tensor_at(g, i)->name)] = 1;
    for (long k = 1; !st && k <= max_k; k++) out->n += has[k];
    if (!st) {
        out->layer = ids__malloc(sizeof(int) * (size_t)out->n);
        out->dir = ids__calloc((size_t)out->n * (size_t)out->n_embd, sizeof(float));
        if (!out->layer || !out->dir) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    for (long k = 1, j = 0; !st && k <= max_k; k++)
        if (has[k]) {
            has[k] = (int)j; /* its slot */
            out->layer[j++] = (int)k + 1;
        }
    float *row = !st ? ids__malloc(sizeof(float) * (size_t)out->n_embd) : NULL;
    if (!st && !row) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (int64_t i = 0; !st && i < nt; i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        if ((st = ids_tensor_to_f32(t, row, err))) break;
        float *d = out->dir + (size_t)has[direction_index(t->name)] * out->n_embd;
        for (int e = 0; e < out->n_embd; e++) {
            if (!isfinite(row[e])) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': value %d is not a finite number", path, t->name, e);
                break;
            }
            d[e] += row[e];
        }
    }
    free(row);
    free(has);
    ids_gguf_close(g);
    if (st) ids_cvec_free(out);
    return st;
}

ids_status ids_cvec_write(const char *path, const int *layers, const float *dirs, int n, int n_embd,
                          const char *model_hint, const ids_prov *prov, ids_err *err) {
    if (n < 1 || n_embd < 1) return ids__err(err, IDS_ERR_ARG, "%s: %d directions of %d values", path, n, n_embd);
    int max_layer = 0;
    for (int i = 0; i < n; i++) {
        if (layers[i] < 2 || layers[i] > CVEC_MAX_LAYER)
            return ids__err(err, IDS_ERR_RANGE, "%s: residual layer %d has no llama.cpp direction (layers 2.., each "
                            "written as direction.(layer - 1), added after that block)", path, layers[i]);
        for (int j = 0; j < i; j++)
            if (layers[j] == layers[i]) return ids__err(err, IDS_ERR_ARG, "%s: layer %d given twice", path, layers[i]);
        if (layers[i] > max_layer) max_layer = layers[i];
    }
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_status st = w ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    if (!st) st = ids_gguf_writer_set_str(w, "general.architecture", "controlvector", err);
    if (!st) st = ids_gguf_writer_set_str(w, "controlvector.model_hint", model_hint ? model_hint : "llama", err);
    if (!st) st = ids_gguf_writer_set_i32(w, "controlvector.layer_count", max_layer - 1, err);
    if (!st)
        st = ids_gguf_writer_set_str(w, "idscope.layer_convention", "direction.K is added to the output of block K (0-based) "
                                     "at every row, i.e. to idscope's residual layer K + 1", err);
    if (!st && prov) {
        cJSON *pj = ids__prov_json(prov, err);
        char *txt = pj ? cJSON_PrintUnformatted(pj) : NULL;
        cJSON_Delete(pj);
        st = txt ? ids_gguf_writer_set_str(w, "idscope.provenance", txt, err) : ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        free(txt);
    }
    for (int i = 0; !st && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "direction.%d", layers[i] - 1);
        const int64_t ne[1] = {n_embd};
        st = ids_gguf_writer_add_tensor_f32(w, name, IDS_TYPE_F32, 1, ne, dirs + (size_t)i * n_embd, err);
    }
    if (!st) st = ids_gguf_writer_write(w, path, err);
    ids_gguf_writer_free(w);
    return st;
}
