/* Hugging Face model folders as GGUF pairs: config.json, model.safetensors (or the shards of
 * model.safetensors.index.json, memory-mapped), the tokenizer files and preprocessor_config.json
 * become the key-value pairs and tensors llama.cpp's converters write (LLaVA-1.5 `llava`,
 * Qwen2-VL `qwen2_vl`, Qwen2.5-VL `qwen2_5_vl`; LLaVA-OneVision `llava_onevision`, whose tower no converter
 * writes: idscope's own projector type `llava_onevision`; Gemma 3, InternVL and Qwen3-VL in hf_families.c). Tensors
 * point into the mapped files; only what the converter reshapes is copied (Llama's Q/K rows, the Conv3D patch kernel,
 * 1-D tensors as F32). */
#define _POSIX_C_SOURCE 200809L
#include "formats/hf.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

bool ids_hf_is_dir(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

ids_status ids__hf_json(const ids__hf *h, const char *name, cJSON **out, ids_err *err) {
    *out = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    struct stat sb;
    if (stat(path, &sb) != 0) return IDS_ERR_NOT_FOUND;
    char *text = NULL;
    size_t len;
    ids_status st = ids__read_file(path, &text, &len, err);
    if (st) return st;
    *out = cJSON_ParseWithLength(text, len);
    free(text);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return ids__err(err, IDS_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return IDS_OK;
}

void *ids__hf_alloc(ids__hf *h, size_t n, ids_err *err) {
    if (h->n_bufs == h->cap_bufs) {
        int cap = h->cap_bufs ? 2 * h->cap_bufs : 16;
        void **p = ids__realloc(h->bufs, (size_t)cap * sizeof *p);
        if (!p) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", h->dir), NULL;
        h->bufs = p;
        h->cap_bufs = cap;
    }
    void *b = ids__malloc(n ? n : 1);
    if (!b) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for %zu bytes", h->dir, n), NULL;
    return h->bufs[h->n_bufs++] = b;
}

void ids__hf_close(void *p) {
    ids__hf *h = p;
    if (!h) return;
    for (int i = 0; i < h->n_files; i++) {
        ids_st_close(h->files[i]);
        free(h->file_names[i]);
    }
    free(h->files);
    free(h->file_names);
    for (int i = 0; i < h->n_bufs; i++) free(h->bufs[i]);
    free(h->bufs);
    free(h->w);
    ids__strmap_free(&h->names);
    cJSON_Delete(h->config);
    free(h->dir);
    free(h);
}

/* Open one safetensors file of the folder (once) and return its index. `why` names a tensor it
 * should hold, for the message when it cannot be opened. */
static ids_status open_file(ids__hf *h, const char *name, const char *why, int *idx, ids_err *err) {
    for (int i = 0; i < h->n_files; i++)
        if (!strcmp(h->file_names[i], name)) return *idx = i, IDS_OK;
    ids_st_file **f = ids__realloc(h->files, (size_t)(h->n_files + 1) * sizeof *f);
    if (f) h->files = f;
    char **n = f ? ids__realloc(h->file_names, (size_t)(h->n_files + 1) * sizeof *n) : NULL;
    if (n) h->file_names = n;
    char *nm = n ? ids__strdup(name) : NULL;
    if (!nm) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", h->dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    ids_st_file *sf;
    ids_status st = ids_st_open(&sf, path, err);
    if (st) {
        free(nm);
        if (why) return ids__err_prefix(err, st, "%s/%s lists tensor '%s' in %s", h->dir, h->index_name, why, name);
        return st;
    }
    h->files[h->n_files] = sf;
    h->file_names[h->n_files] = nm;
    *idx = h->n_files++;
    return IDS_OK;
}

static ids_status add_weights_of(ids__hf *h, int fi, ids_err *err) {
    const int n = ids_st_count(h->files[fi]);
    ids__hf_weight *w = ids__realloc(h->w, (size_t)(h->n_w + n + 1) * sizeof *w);
    if (!w) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", h->dir);
    h->w = w;
    for (int i = 0; i < n; i++) {
        const ids_st_tensor *t = ids_st_at(h->files[fi], i);
        bool dup = false;
        if (!ids__strmap_put(&h->names, t->name, strlen(t->name), h->n_w, NULL, &dup))
            return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", h->dir);
        if (dup)
            return ids__err(err, IDS_ERR_FORMAT, "%s/%s: tensor '%s' is also in another file of the folder", h->dir,
                            h->file_names[fi], t->name);
        h->w[h->n_w++] = (ids__hf_weight){t->name, t, fi};
    }
    return IDS_OK;
}

/* model.safetensors.index.json: every listed shard opened, every listed tensor present in it. */
static ids_status open_index(ids__hf *h, const cJSON *idx, ids_err *err) {
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(idx, "weight_map"), *it;
    if (!cJSON_IsObject(map))
        return ids__err(err, IDS_ERR_FORMAT, "%s/%s: weight_map is not an object", h->dir, h->index_name);
    ids_status st = IDS_OK;
    cJSON_ArrayForEach(it, map) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/'))
            return ids__err(err, IDS_ERR_FORMAT, "%s/%s: tensor '%s': the file is not a name in the folder", h->dir,
                            h->index_name, it->string);
        int fi, before = h->n_files;
        if ((st = open_file(h, it->valuestring, it->string, &fi, err))) return st;
        if (fi == before && (st = add_weights_of(h, fi, err))) return st;
        if (!ids_st_find(h->files[fi], it->string))
            return ids__err(err, IDS_ERR_NOT_FOUND, "%s/%s: tensor '%s' is not in it, though %s lists it there", h->dir,
                            it->valuestring, it->string, h->index_name);
    }
    return st;
}

static ids_status open_weights(ids__hf *h, ids_err *err) {
    cJSON *idx = NULL;
    if (!ids__strmap_init(&h->names, 1024)) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", h->dir);
    ids_status st = ids__hf_json(h, "model.safetensors.index.json", &idx, err);
    if (st == IDS_OK) {
        h->index_name = "model.safetensors.index.json";
        st = open_index(h, idx, err);
        cJSON_Delete(idx);
        return st;
    }
    if (st != IDS_ERR_NOT_FOUND) return st;
    int fi;
    if ((st = open_file(h, "model.safetensors", NULL, &fi, err))) return st;
    return add_weights_of(h, fi, err);
}

ids_status ids__hf_open(ids__hf **out, const char *dir, ids_err *err) {
    *out = NULL;
    ids__hf *h = ids__calloc(1, sizeof *h);
    if (!h || !(h->dir = ids__strdup(dir))) {
        free(h);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", dir);
    }
    size_t n = strlen(h->dir);
    while (n > 1 && h->dir[n - 1] == '/') h->dir[--n] = 0;
    ids_status st = ids__hf_json(h, "config.json", &h->config, err);
    if (st == IDS_ERR_NOT_FOUND) st = ids__err(err, st, "%s/config.json: not found (not a Hugging Face model folder)", h->dir);
    if (!st) {
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(h->config, "model_type");
        snprintf(h->model_type, sizeof h->model_type, "%s", cJSON_IsString(mt) ? mt->valuestring : "");
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(h->config, "text_config");
        h->text = cJSON_IsObject(tc) ? tc : h->config;
        h->vision = cJSON_GetObjectItemCaseSensitive(h->config, "vision_config");
        if (!strcmp(h->model_type, "llava_qwen")) /* lmms-lab's remote-code layout (LLaVA-Video-7B-Qwen2) */
            st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: model_type 'llava_qwen' (the LLaVA-NeXT remote-code "
                          "layout) is not supported: use the checkpoint converted to 'llava_onevision' (transformers' "
                          "convert_llava_onevision_weights_to_hf.py, the llava-hf/*-hf folders)", h->dir);
        else if (strcmp(h->model_type, "llava") && strcmp(h->model_type, "qwen2_vl") && strcmp(h->model_type, "qwen2_5_vl") &&
                 strcmp(h->model_type, "llava_onevision") && strcmp(h->model_type, "mllama") &&
                 !ids__hf_family_of(h->model_type))
            st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: model_type '%s' is not supported (supported: llava, "
                          "qwen2_vl, qwen2_5_vl, llava_onevision, mllama, gemma3, internvl_chat, internvl, qwen3_vl)", h->dir,
                          h->model_type);
        else if (!cJSON_IsObject(h->vision))
            st = ids__err(err, IDS_ERR_FORMAT, "%s/config.json: vision_config is missing", h->dir);
    }
    if (!st) st = open_weights(h, err);
    if (st) {
        ids__hf_close(h);
        return st;
    }
    *out = h;
    return IDS_OK;
}

/* ---- tensors ------------------------------------------------------------------------------ */

/* The first of the prefixes under which `rest` is a tensor of the checkpoint (HF has written the
 * same model with different prefixes over time); NULL when none. */
static const ids__hf_weight *find(const ids__hf *h, const char *const *prefixes, const char *rest) {
    for (int i = 0; prefixes[i]; i++) {
        char nm[256];
        snprintf(nm, sizeof nm, "%s%s", prefixes[i], rest);
        int64_t k;
        if (ids__strmap_get(&h->names, nm, strlen(nm), &k)) return &h->w[k];
    }
    return NULL;
}

/* The prefix of the list that the checkpoint uses (for messages about a missing tensor). */
static const char *spelling(const ids__hf *h, const char *const *prefixes) {
    for (int i = 0; prefixes[i]; i++)
        for (int k = 0; k < h->n_w; k++)
            if (!strncmp(h->w[k].name, prefixes[i], strlen(prefixes[i]))) return prefixes[i];
    return prefixes[0];
}

static int type_of(const char *dtype) {
    return !strcmp(dtype, "F32") ? IDS_TYPE_F32 : !strcmp(dtype, "F16") ? IDS_TYPE_F16
           : !strcmp(dtype, "BF16") ? IDS_TYPE_BF16 : -1;
}

static void shape_text(char *b, size_t cap, int nd, const int64_t *s) {
    size_t k = (size_t)snprintf(b, cap, "[");
    for (int d = 0; d < nd && k < cap; d++) k += (size_t)snprintf(b + k, cap - k, "%s%lld", d ? ", " : "", (long long)s[d]);
    if (k < cap) snprintf(b + k, cap - k, "]");
}

/* A checkpoint tensor, checked: present (unless optional), F32/F16/BF16, of the shape given in HF's
 * order (outermost first). *out NULL when optional and absent. */
static ids_status get(const ids__hf *h, const char *const *pre, const char *rest, int nd, const int64_t *shape,
                      bool required, const ids__hf_weight **out, ids_err *err) {
    const ids__hf_weight *w = *out = find(h, pre, rest);
    if (!w) {
        if (!required) return IDS_OK;
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s/%s: tensor '%s%s' is missing", h->dir,
                        h->index_name ? h->index_name : "model.safetensors", spelling(h, pre), rest);
    }
    const char *file = h->file_names[w->file];
    if (type_of(w->t->dtype) < 0)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/%s: tensor '%s': dtype %s (expected F32, F16 or BF16)", h->dir,
                        file, w->name, w->t->dtype);
    bool ok = w->t->ndim == nd;
    for (int d = 0; ok && d < nd; d++) ok = w->t->shape[d] == shape[d];
    if (!ok) {
        char got[96], want[96];
        shape_text(got, sizeof got, w->t->ndim, w->t->shape);
        shape_text(want, sizeof want, nd, shape);
        return ids__err(err, IDS_ERR_FORMAT, "%s/%s: tensor '%s' has shape %s, expected %s (from config.json)", h->dir,
                        file, w->name, got, want);
    }
    return IDS_OK;
}

/* Add `data` (of w's dtype, nel elements) as GGUF tensor `gname` with ne = shape reversed; a 1-D
 * tensor is stored as F32, as the converters do, and a BF16 convolution kernel too (llama.cpp's
 * converters write those as F16 or F32). */
static ids_status put_data(ids__hf *h, ids_gguf_writer *gw, const char *gname, const ids__hf_weight *w,
                           const void *data, int nd, const int64_t *shape, ids_err *err) {
    int64_t ne[4] = {1, 1, 1, 1}, nel = 1;
    for (int d = 0; d < nd; d++) ne[d] = shape[nd - 1 - d], nel *= shape[d];
    int type = type_of(w->t->dtype);
    if ((nd == 1 && type != IDS_TYPE_F32) || (nd == 4 && type == IDS_TYPE_BF16)) { /* norms, biases; conv kernels */
        float *f = ids__hf_alloc(h, (size_t)nel * sizeof *f, err);
        if (!f) return IDS_ERR_NOMEM;
        ids_status st = ids_dequantize(type, data, f, nel, err);
        if (st) return ids__err_prefix(err, st, "%s: tensor '%s'", h->dir, w->name);
        data = f, type = IDS_TYPE_F32;
    }
    return ids__gguf_writer_add_tensor_ref(gw, gname, type, nd, ne, data, err);
}

/* get() + put_data() of the whole tensor. */
static ids_status map1(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre, const char *rest,
                       int nd, const int64_t *shape, bool required, ids_err *err) {
    const ids__hf_weight *w;
    ids_status st = get(h, pre, rest, nd, shape, required, &w, err);
    if (st || !w) return st;
    return put_data(h, gw, gname, w, w->t->data, nd, shape, err);
}

/* The converter's Llama permutation of Q/K rows: HF keeps each head's rotary pairs as (i, i + d/2),
 * llama.cpp's NORM rope as (2i, 2i + 1). GGUF row h*d + 2i + j = HF row h*d + j*d/2 + i. */
static ids_status map_permuted(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre,
                               const char *rest, int64_t rows, int64_t cols, int n_head, ids_err *err) {
    const int64_t shape[2] = {rows, cols};
    const ids__hf_weight *w;
    ids_status st = get(h, pre, rest, 2, shape, true, &w, err);
    if (st) return st;
    const int64_t d = rows / n_head;
    if (rows % n_head || d % 2)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': %lld rows do not split into %d heads of even size",
                        h->dir, w->name, (long long)rows, n_head);
    const size_t rb = (size_t)cols * (type_of(w->t->dtype) == IDS_TYPE_F32 ? 4 : 2);
    unsigned char *o = ids__hf_alloc(h, (size_t)rows * rb, err);
    if (!o) return IDS_ERR_NOMEM;
    const unsigned char *src = w->t->data;
    for (int64_t hd = 0; hd < n_head; hd++)
        for (int64_t i = 0; i < d / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(o + (size_t)(hd * d + 2 * i + j) * rb, src + (size_t)(hd * d + j * d / 2 + i) * rb, rb);
    return put_data(h, gw, gname, w, o, 2, shape, err);
}

/* ---- config numbers ---------------------------------------------------------------------- */

static ids_status cfg_int(const ids__hf *h, const cJSON *obj, const char *key, long long def, long long *out,
                          ids_err *err) {
    ids_status st = ids__json_int(obj, key, 1, 1ll << 31, def, out, err);
    if (st) return ids__err_prefix(err, st, "%s/config.json", h->dir);
    if (*out < 1) return ids__err(err, IDS_ERR_NOT_FOUND, "%s/config.json: '%s' is missing", h->dir, key);
    return IDS_OK;
}

static ids_status cfg_num(const ids__hf *h, const cJSON *obj, const char *key, double def, double *out, ids_err *err) {
    ids_status st = ids__json_num(obj, key, 0, 1e30, def, out, err);
    return st ? ids__err_prefix(err, st, "%s/config.json", h->dir) : IDS_OK;
}


static const char *const LM_PRE[] = {"model.language_model.", "language_model.model.", "model.", NULL};
static const char *const HEAD_PRE[] = {"lm_head.", "language_model.lm_head.", NULL};
static const char *const VT_PRE[] = {"model.vision_tower.", "vision_tower.", NULL};
static const char *const PROJ_PRE[] = {"model.multi_modal_projector.", "multi_modal_projector.", NULL};
static const char *const VIS_PRE[] = {"model.visual.", "visual.", NULL};

typedef struct {
    long long n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, head_dim;
    double eps, theta;
    bool qwen, tied, mrope; /* qwen: q/k/v biases, rows as stored; mrope: Qwen2-VL's sections */
    const char *arch;
} text_hp;

static ids_status text_hparams(const ids__hf *h, text_hp *t, ids_err *err) {
    const cJSON *c = h->text;
    t->mrope = !strcmp(h->model_type, "qwen2_vl") || !strcmp(h->model_type, "qwen2_5_vl");
    t->qwen = t->mrope || !strcmp(h->model_type, "llava_onevision"); /* OneVision: a plain Qwen2 decoder */
    t->arch = t->mrope ? "qwen2vl" : t->qwen ? "qwen2" : "llama";
    ids_status st; /* defaults: transformers' LlamaConfig / Qwen2VLConfig */
    if ((st = cfg_int(h, c, "hidden_size", t->qwen ? 8192 : 4096, &t->n_embd, err))) return st;
    if ((st = cfg_int(h, c, "num_hidden_layers", t->qwen ? 80 : 32, &t->n_layer, err))) return st;
    if ((st = cfg_int(h, c, "num_attention_heads", t->qwen ? 64 : 32, &t->n_head, err))) return st;
    if ((st = cfg_int(h, c, "num_key_value_heads", t->qwen ? 8 : t->n_head, &t->n_head_kv, err))) return st;
    if ((st = cfg_int(h, c, "intermediate_size", t->qwen ? 29568 : 11008, &t->n_ff, err))) return st;
    if ((st = cfg_int(h, c, "max_position_embeddings", t->qwen ? 32768 : 2048, &t->n_ctx, err))) return st;
    if ((st = cfg_num(h, c, "rms_norm_eps", 1e-6, &t->eps, err))) return st;
    if ((st = cfg_num(h, c, "rope_theta", t->qwen ? 1e6 : 1e4, &t->theta, err))) return st;
    if (t->n_embd % t->n_head || t->n_head % t->n_head_kv)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: hidden_size %lld, %lld heads, %lld KV heads do not divide",
                        h->dir, t->n_embd, t->n_head, t->n_head_kv);
    if ((st = cfg_int(h, c, "head_dim", t->n_embd / t->n_head, &t->head_dim, err))) return st;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    if (!t->qwen && rs && !cJSON_IsNull(rs))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: rope_scaling of the Llama decoder is not supported",
                        h->dir);
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings");
    if (!tie) tie = cJSON_GetObjectItemCaseSensitive(h->config, "tie_word_embeddings");
    t->tied = tie ? cJSON_IsTrue(tie) : false;
    return IDS_OK;
}

/* M-RoPE sections of Qwen2-VL: rope_scaling.mrope_section, written as four (the last 0). */
static ids_status put_mrope(const ids__hf *h, ids_gguf_writer *gw, const text_hp *t, ids_err *err) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(h->text, "rope_scaling");
    if (!rs) rs = cJSON_GetObjectItemCaseSensitive(h->config, "rope_scaling");
    const cJSON *sec = rs ? cJSON_GetObjectItemCaseSensitive(rs, "mrope_section") : NULL;
    int32_t s[4] = {0, 0, 0, 0};
    long long sum = 0;
    if (!cJSON_IsArray(sec) || cJSON_GetArraySize(sec) < 1 || cJSON_GetArraySize(sec) > 4)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: rope_scaling.mrope_section is missing or not 1..4 numbers", h->dir);
    for (int i = 0; i < cJSON_GetArraySize(sec); i++) {
        long long x;
        ids_status st = ids__json_int(cJSON_GetArrayItem(sec, i), NULL, 0, 4096, 0, &x, err);
        if (st) return ids__err_prefix(err, st, "%s/config.json: rope_scaling.mrope_section[%d]", h->dir, i);
        s[i] = (int32_t)x, sum += x;
    }
    if (2 * sum != t->head_dim)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: mrope_section sums to %lld, expected head_dim / 2 = %lld",
                        h->dir, sum, t->head_dim / 2);
    char key[96];
    snprintf(key, sizeof key, "%s.rope.dimension_sections", t->arch);
    return ids_gguf_writer_set_arr(gw, key, IDS_GGUF_INT32, s, 4, err);
}

static ids_status text_keys(ids__hf *h, ids_gguf_writer *gw, const text_hp *t, int64_t n_vocab, ids_err *err) {
    const char *a = t->arch, *base = strrchr(h->dir, '/');
    char k[96];
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", a, err);
    if (!st) st = ids_gguf_writer_set_str(gw, "general.name", base ? base + 1 : h->dir, err);
#define U32(key, v) if (!st) snprintf(k, sizeof k, "%s." key, a), st = ids_gguf_writer_set_u32(gw, k, (uint32_t)(v), err)
#define F32(key, v) if (!st) snprintf(k, sizeof k, "%s." key, a), st = ids_gguf_writer_set_f32(gw, k, (float)(v), err)
    U32("block_count", t->n_layer);
    U32("context_length", t->n_ctx);
    U32("embedding_length", t->n_embd);
    U32("feed_forward_length", t->n_ff);
    U32("attention.head_count", t->n_head);
    U32("attention.head_count_kv", t->n_head_kv);
    F32("attention.layer_norm_rms_epsilon", t->eps);
    F32("rope.freq_base", t->theta);
    if (!t->qwen) {
        U32("rope.dimension_count", t->head_dim);
        U32("vocab_size", n_vocab);
    }
#undef U32
#undef F32
    if (!st && t->mrope) st = put_mrope(h, gw, t, err);
    return st;
}

static ids_status text_block(ids__hf *h, ids_gguf_writer *gw, const text_hp *t, int l, ids_err *err) {
    const int64_t E = t->n_embd, Q = t->n_head * t->head_dim, KV = t->n_head_kv * t->head_dim, F = t->n_ff;
    char g[96], r[128];
    ids_status st = IDS_OK;
#define M(gn, hn, rows, cols)                                                                     \
    if (!st) {                                                                                    \
        const int64_t s_[2] = {rows, cols};                                                       \
        snprintf(g, sizeof g, "blk.%d.%s", l, gn), snprintf(r, sizeof r, "layers.%d.%s", l, hn);  \
        st = map1(h, gw, g, LM_PRE, r, (cols) ? 2 : 1, s_, true, err);                         \
    }
#define P(gn, hn, rows, heads)                                                                    \
    if (!st) {                                                                                    \
        snprintf(g, sizeof g, "blk.%d.%s", l, gn), snprintf(r, sizeof r, "layers.%d.%s", l, hn);  \
        st = t->qwen ? map1(h, gw, g, LM_PRE, r, 2, (const int64_t[2]){rows, E}, true, err)        \
                     : map_permuted(h, gw, g, LM_PRE, r, rows, E, heads, err);                    \
    }
    M("attn_norm.weight", "input_layernorm.weight", E, 0);
    P("attn_q.weight", "self_attn.q_proj.weight", Q, (int)t->n_head);
    P("attn_k.weight", "self_attn.k_proj.weight", KV, (int)t->n_head_kv);
    M("attn_v.weight", "self_attn.v_proj.weight", KV, E);
    M("attn_output.weight", "self_attn.o_proj.weight", E, Q);
    if (t->qwen) {
        M("attn_q.bias", "self_attn.q_proj.bias", Q, 0);
        M("attn_k.bias", "self_attn.k_proj.bias", KV, 0);
        M("attn_v.bias", "self_attn.v_proj.bias", KV, 0);
    }
    M("ffn_norm.weight", "post_attention_layernorm.weight", E, 0);
    M("ffn_gate.weight", "mlp.gate_proj.weight", F, E);
    M("ffn_up.weight", "mlp.up_proj.weight", F, E);
    M("ffn_down.weight", "mlp.down_proj.weight", E, F);
#undef M
#undef P
    return st;
}

/* The decoder's GGUF: keys, tokenizer, embeddings, blocks, final norm and output head. */
static ids_status build_text(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    text_hp t;
    ids_status st = text_hparams(h, &t, err);
    if (st) return st;
    const ids__hf_weight *emb = find(h, LM_PRE, "embed_tokens.weight");
    if (!emb)
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s/%s: tensor '%sembed_tokens.weight' is missing", h->dir,
                        h->index_name ? h->index_name : "model.safetensors", spelling(h, LM_PRE));
    const int64_t n_vocab = emb->t->ndim == 2 ? emb->t->shape[0] : 0;
    if ((st = text_keys(h, gw, &t, n_vocab, err))) return st;
    if ((st = ids__hf_tokenizer(h, gw, n_vocab, err))) return st;
    const int64_t se[2] = {n_vocab, t.n_embd}, sn[1] = {t.n_embd};
    if ((st = map1(h, gw, "token_embd.weight", LM_PRE, "embed_tokens.weight", 2, se, true, err))) return st;
    for (int l = 0; l < t.n_layer; l++)
        if ((st = text_block(h, gw, &t, l, err))) return st;
    if ((st = map1(h, gw, "output_norm.weight", LM_PRE, "norm.weight", 1, sn, true, err))) return st;
    if (t.tied) return IDS_OK;
    return map1(h, gw, "output.weight", HEAD_PRE, "weight", 2, se, true, err);
}

/* ---- vision towers ------------------------------------------------------------------------ */

/* image_mean / image_std of preprocessor_config.json (CLIP's when absent). */
static ids_status put_norm(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    cJSON *pp = NULL;
    ids_status st = ids__hf_json(h, "preprocessor_config.json", &pp, err);
    if (st == IDS_ERR_NOT_FOUND) st = IDS_OK;
    for (int k = 0; pp && !st && k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(pp, k ? "image_std" : "image_mean");
        if (!a) continue;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
            st = ids__err(err, IDS_ERR_FORMAT, "%s/preprocessor_config.json: %s is not 3 numbers", h->dir,
                          k ? "image_std" : "image_mean");
        for (int i = 0; i < 3 && !st; i++) {
            double x;
            if ((st = ids__json_num(cJSON_GetArrayItem(a, i), NULL, -10, 10, 0, &x, err)))
                st = ids__err_prefix(err, st, "%s/preprocessor_config.json: %s[%d]", h->dir, k ? "image_std" : "image_mean", i);
            (k ? sd : mean)[i] = (float)x;
        }
    }
    cJSON_Delete(pp);
    if (!st) st = ids_gguf_writer_set_arr(gw, "clip.vision.image_mean", IDS_GGUF_FLOAT32, mean, 3, err);
    if (!st) st = ids_gguf_writer_set_arr(gw, "clip.vision.image_std", IDS_GGUF_FLOAT32, sd, 3, err);
    return st;
}

typedef struct {
    long long E, F, L, H, image, patch, proj, n_text, merge, window, wa_pattern;
    double eps;
    bool q25; /* Qwen2.5-VL: RMSNorm, gated SiLU MLP, window attention */
} vis_hp;

/* A tower block's attention and MLP: GGUF name suffix -> HF name suffix with shape. */
static ids_status vis_linear(ids__hf *h, ids_gguf_writer *gw, const char *const *pre, int l, const char *gn,
                             const char *hn, int64_t rows, int64_t cols, ids_err *err) {
    char g[96], r[160];
    const int64_t sw[2] = {rows, cols}, sb[1] = {rows};
    snprintf(g, sizeof g, "v.blk.%d.%s.weight", l, gn);
    snprintf(r, sizeof r, "%s.weight", hn);
    ids_status st = map1(h, gw, g, pre, r, 2, sw, true, err);
    snprintf(g, sizeof g, "v.blk.%d.%s.bias", l, gn);
    snprintf(r, sizeof r, "%s.bias", hn);
    return st ? st : map1(h, gw, g, pre, r, 1, sb, true, err);
}

/* LLaVA-1.5: CLIP ViT (CLS first, pre-LN, quick-GELU), blocks up to the feature layer, the 2-layer
 * projector. Names and keys of llama.cpp's legacy LLaVA converter (fc1 as ffn_down, fc2 as ffn_up). */
static ids_status clip_keys(ids__hf *h, ids_gguf_writer *gw, const vis_hp *v, long long fl, ids_err *err) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(h->vision, "hidden_act");
    const bool gelu = cJSON_IsString(act) && !strcmp(act->valuestring, "gelu");
    const int32_t fl32 = (int32_t)fl;
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", "clip", err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_text_encoder", false, err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_vision_encoder", true, err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_llava_projector", true, err);
    if (!st) st = ids_gguf_writer_set_str(gw, "clip.projector_type", "mlp", err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.image_size", (uint32_t)v->image, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.patch_size", (uint32_t)v->patch, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.embedding_length", (uint32_t)v->E, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.feed_forward_length", (uint32_t)v->F, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.projection_dim", (uint32_t)v->proj, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.attention.head_count", (uint32_t)v->H, err);
    if (!st) st = ids_gguf_writer_set_f32(gw, "clip.vision.attention.layer_norm_epsilon", (float)v->eps, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.block_count", (uint32_t)fl, err);
    if (!st) st = ids_gguf_writer_set_arr(gw, "clip.vision.feature_layer", IDS_GGUF_INT32, &fl32, 1, err);
    if (!st) st = put_norm(h, gw, err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.use_gelu", gelu, err);
    return st;
}

/* vision_feature_layer (default -2) as the number of blocks whose output is used; only the default
 * strategy (drop CLS) is what llama.cpp's mlp projector does. */
static ids_status feature_layer(const ids__hf *h, long long L, long long *fl, ids_err *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(h->config, "vision_feature_layer");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(h->config, "vision_feature_select_strategy");
    if (s && (!cJSON_IsString(s) || strcmp(s->valuestring, "default")))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: vision_feature_select_strategy '%s' is not supported "
                        "(default only)", h->dir, cJSON_IsString(s) ? s->valuestring : "?");
    long long x;
    ids_status st = ids__json_int(f, NULL, -L - 1, L, -2, &x, err);
    if (st) return ids__err_prefix(err, st, "%s/config.json: vision_feature_layer", h->dir);
    *fl = x < 0 ? L + 1 + x : x;
    if (*fl < 1) return ids__err(err, IDS_ERR_RANGE, "%s/config.json: vision_feature_layer %lld selects the embeddings",
                                 h->dir, x);
    return IDS_OK;
}

static ids_status build_clip(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    const cJSON *c = h->vision;
    vis_hp v = {0};
    ids_status st; /* defaults: transformers' CLIPVisionConfig */
    if ((st = cfg_int(h, c, "hidden_size", 768, &v.E, err)) || (st = cfg_int(h, c, "intermediate_size", 3072, &v.F, err)) ||
        (st = cfg_int(h, c, "num_hidden_layers", 12, &v.L, err)) ||
        (st = cfg_int(h, c, "num_attention_heads", 12, &v.H, err)) ||
        (st = cfg_int(h, c, "image_size", 224, &v.image, err)) || (st = cfg_int(h, c, "patch_size", 32, &v.patch, err)) ||
        (st = cfg_int(h, c, "projection_dim", 512, &v.proj, err)) || (st = cfg_num(h, c, "layer_norm_eps", 1e-5, &v.eps, err)) ||
        (st = cfg_int(h, h->text, "hidden_size", 4096, &v.n_text, err)))
        return st;
    long long fl = 0;
    if ((st = feature_layer(h, v.L, &fl, err)) || (st = clip_keys(h, gw, &v, fl, err))) return st;
    const int64_t E = v.E, F = v.F, P = v.patch, np = (v.image / v.patch) * (v.image / v.patch) + 1;
    const char *const *pre = VT_PRE;
    if ((st = map1(h, gw, "v.class_embd", pre, "vision_model.embeddings.class_embedding", 1, (int64_t[1]){E}, true, err)) ||
        (st = map1(h, gw, "v.patch_embd.weight", pre, "vision_model.embeddings.patch_embedding.weight", 4,
                   (int64_t[4]){E, 3, P, P}, true, err)) ||
        (st = map1(h, gw, "v.position_embd.weight", pre, "vision_model.embeddings.position_embedding.weight", 2,
                   (int64_t[2]){np, E}, true, err)) ||
        (st = map1(h, gw, "v.pre_ln.weight", pre, "vision_model.pre_layrnorm.weight", 1, (int64_t[1]){E}, true, err)) ||
        (st = map1(h, gw, "v.pre_ln.bias", pre, "vision_model.pre_layrnorm.bias", 1, (int64_t[1]){E}, true, err)))
        return st;
    for (int l = 0; l < fl && !st; l++) {
        char b[96];
        static const char *const lin[6][2] = {{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                                              {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"},
                                              {"ln1", "layer_norm1"}, {"ln2", "layer_norm2"}};
        for (int k = 0; k < 6 && !st; k++) {
            snprintf(b, sizeof b, "vision_model.encoder.layers.%d.%s", l, lin[k][1]);
            st = k < 4 ? vis_linear(h, gw, pre, l, lin[k][0], b, E, E, err) : IDS_OK;
            if (k >= 4) { /* LayerNorms: weight and bias */
                char g[64], r[128];
                for (int j = 0; j < 2 && !st; j++) {
                    snprintf(g, sizeof g, "v.blk.%d.%s.%s", l, lin[k][0], j ? "bias" : "weight");
                    snprintf(r, sizeof r, "%s.%s", b, j ? "bias" : "weight");
                    st = map1(h, gw, g, pre, r, 1, (int64_t[1]){E}, true, err);
                }
            }
        }
        snprintf(b, sizeof b, "vision_model.encoder.layers.%d.mlp.fc1", l);
        if (!st) st = vis_linear(h, gw, pre, l, "ffn_down", b, F, E, err);
        snprintf(b, sizeof b, "vision_model.encoder.layers.%d.mlp.fc2", l);
        if (!st) st = vis_linear(h, gw, pre, l, "ffn_up", b, E, F, err);
    }
    const int64_t T = v.n_text;
    if (!st) st = map1(h, gw, "mm.0.weight", PROJ_PRE, "linear_1.weight", 2, (int64_t[2]){T, E}, true, err);
    if (!st) st = map1(h, gw, "mm.0.bias", PROJ_PRE, "linear_1.bias", 1, (int64_t[1]){T}, true, err);
    if (!st) st = map1(h, gw, "mm.2.weight", PROJ_PRE, "linear_2.weight", 2, (int64_t[2]){T, T}, true, err);
    if (!st) st = map1(h, gw, "mm.2.bias", PROJ_PRE, "linear_2.bias", 1, (int64_t[1]){T}, true, err);
    return st;
}

/* Qwen2-VL: the Conv3D patch kernel [E, 3, 2, P, P] as two Conv2D kernels (temporal index 0 and 1),
 * the fused qkv rows as attn_q / attn_k / attn_v, the merger (ln_q, mlp.0, mlp.2) as v.post_ln,
 * mm.0, mm.2: the names of llama.cpp's converter. */
static ids_status qwen_patch(ids__hf *h, ids_gguf_writer *gw, const vis_hp *v, ids_err *err) {
    const int64_t E = v->E, P = v->patch, shape5[5] = {E, 3, 2, P, P}, shape4[4] = {E, 3, P, P};
    const ids__hf_weight *w;
    ids_status st = get(h, VIS_PRE, "patch_embed.proj.weight", 5, shape5, true, &w, err);
    if (st) return st;
    const size_t es = type_of(w->t->dtype) == IDS_TYPE_F32 ? 4 : 2, blk = (size_t)(P * P) * es;
    for (int t = 0; t < 2 && !st; t++) {
        unsigned char *o = ids__hf_alloc(h, (size_t)(E * 3) * blk, err);
        if (!o) return IDS_ERR_NOMEM;
        for (int64_t ec = 0; ec < E * 3; ec++)
            memcpy(o + (size_t)ec * blk, (const unsigned char *)w->t->data + ((size_t)ec * 2 + (size_t)t) * blk, blk);
        st = put_data(h, gw, t ? "v.patch_embd.weight.1" : "v.patch_embd.weight", w, o, 4, shape4, err);
    }
    return st;
}

static ids_status qwen_block(ids__hf *h, ids_gguf_writer *gw, const vis_hp *v, int l, ids_err *err) {
    const int64_t E = v->E;
    char r[96], g[64];
    const ids__hf_weight *qw, *qb;
    snprintf(r, sizeof r, "blocks.%d.attn.qkv.weight", l);
    ids_status st = get(h, VIS_PRE, r, 2, (int64_t[2]){3 * E, E}, true, &qw, err);
    snprintf(r, sizeof r, "blocks.%d.attn.qkv.bias", l);
    if (!st) st = get(h, VIS_PRE, r, 1, (int64_t[1]){3 * E}, true, &qb, err);
    static const char *const qkv[3] = {"attn_q", "attn_k", "attn_v"};
    for (int k = 0; k < 3 && !st; k++) {
        const size_t ew = type_of(qw->t->dtype) == IDS_TYPE_F32 ? 4 : 2, eb = type_of(qb->t->dtype) == IDS_TYPE_F32 ? 4 : 2;
        snprintf(g, sizeof g, "v.blk.%d.%s.weight", l, qkv[k]);
        st = put_data(h, gw, g, qw, (const unsigned char *)qw->t->data + (size_t)(k * E * E) * ew, 2, (int64_t[2]){E, E}, err);
        snprintf(g, sizeof g, "v.blk.%d.%s.bias", l, qkv[k]);
        if (!st) st = put_data(h, gw, g, qb, (const unsigned char *)qb->t->data + (size_t)(k * E) * eb, 1, (int64_t[1]){E}, err);
    }
    char b[64];
    snprintf(b, sizeof b, "blocks.%d.attn.proj", l);
    if (!st) st = vis_linear(h, gw, VIS_PRE, l, "attn_out", b, E, E, err);
    static const char *const mlp[2][3][2] = {{{"ffn_up", "mlp.fc1"}, {"ffn_down", "mlp.fc2"}, {NULL, NULL}},
                                             {{"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}}};
    for (int k = 0; k < 3 && !st && mlp[v->q25][k][0]; k++) {
        const bool down = !strcmp(mlp[v->q25][k][0], "ffn_down");
        snprintf(b, sizeof b, "blocks.%d.%s", l, mlp[v->q25][k][1]);
        st = vis_linear(h, gw, VIS_PRE, l, mlp[v->q25][k][0], b, down ? E : v->F, down ? v->F : E, err);
    }
    for (int n = 1; n <= 2 && !st; n++) /* LayerNorm (weight, bias); Qwen2.5-VL: RMSNorm (weight) */
        for (int j = 0; j < (v->q25 ? 1 : 2) && !st; j++) {
            snprintf(g, sizeof g, "v.blk.%d.ln%d.%s", l, n, j ? "bias" : "weight");
            snprintf(r, sizeof r, "blocks.%d.norm%d.%s", l, n, j ? "bias" : "weight");
            st = map1(h, gw, g, VIS_PRE, r, 1, (int64_t[1]){E}, true, err);
        }
    return st;
}

/* Qwen2-VL's pixel bounds from preprocessor_config.json (min_pixels / max_pixels, or
 * size.shortest_edge / size.longest_edge in newer files), as clip.vision.image_min_pixels / _max_pixels
 * (keys llama.cpp defines; its converter writes none for this projector). Absent: nothing written. */
static ids_status put_pixels(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    cJSON *pp = NULL;
    ids_status st = ids__hf_json(h, "preprocessor_config.json", &pp, err);
    if (st) return st == IDS_ERR_NOT_FOUND ? IDS_OK : st;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(pp, "size");
    static const char *const keys[2][3] = {{"min_pixels", "shortest_edge", "clip.vision.image_min_pixels"},
                                           {"max_pixels", "longest_edge", "clip.vision.image_max_pixels"}};
    long long px[2] = {0, 0};
    for (int k = 0; k < 2 && !st; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(pp, keys[k][0]);
        if (!x && cJSON_IsObject(size)) x = cJSON_GetObjectItemCaseSensitive(size, keys[k][1]);
        if ((st = ids__json_int(x, NULL, 1, UINT32_MAX, 0, &px[k], err)))
            st = ids__err_prefix(err, st, "%s/preprocessor_config.json: %s", h->dir, keys[k][0]);
    }
    if (!st && px[0] && px[1] && px[0] > px[1])
        st = ids__err(err, IDS_ERR_RANGE, "%s/preprocessor_config.json: min_pixels %lld > max_pixels %lld", h->dir, px[0], px[1]);
    for (int k = 0; k < 2 && !st; k++)
        if (px[k]) st = ids_gguf_writer_set_u32(gw, keys[k][2], (uint32_t)px[k], err);
    cJSON_Delete(pp);
    return st;
}

static ids_status qwen_keys(ids__hf *h, ids_gguf_writer *gw, const vis_hp *v, ids_err *err) {
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", "clip", err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_vision_encoder", true, err);
    if (!st) st = ids_gguf_writer_set_str(gw, "clip.projector_type", v->q25 ? "qwen2.5vl_merger" : "qwen2vl_merger", err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.image_size", (uint32_t)v->image, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.patch_size", (uint32_t)v->patch, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.embedding_length", (uint32_t)v->E, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.feed_forward_length", (uint32_t)v->F, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.projection_dim", (uint32_t)v->n_text, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.block_count", (uint32_t)v->L, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.attention.head_count", (uint32_t)v->H, err);
    if (!st) st = ids_gguf_writer_set_f32(gw, "clip.vision.attention.layer_norm_epsilon", (float)v->eps, err);
    if (!st) st = put_norm(h, gw, err);
    if (!st) st = put_pixels(h, gw, err);
    if (!v->q25) return st ? st : ids_gguf_writer_set_u32(gw, "clip.vision.spatial_merge_size", (uint32_t)v->merge, err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.use_silu", true, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.n_wa_pattern", (uint32_t)v->wa_pattern, err);
    if (!st && v->window != 112) /* llama.cpp assumes 112 and its converter writes no key */
        st = ids_gguf_writer_set_u32(gw, "clip.vision.window_size", (uint32_t)v->window, err);
    return st;
}

/* Qwen2.5-VL's fullatt_block_indexes as llama.cpp's n_wa_pattern: the blocks (l + 1) % n == 0. */
static ids_status wa_pattern(const ids__hf *h, vis_hp *v, ids_err *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(h->vision, "fullatt_block_indexes");
    const int n = cJSON_GetArraySize(f);
    long long first = 0, x;
    for (int i = 0; i < n; i++) {
        ids_status st = ids__json_int(cJSON_GetArrayItem(f, i), NULL, 0, v->L - 1, -1, &x, err);
        if (st) return ids__err_prefix(err, st, "%s/config.json: fullatt_block_indexes[%d]", h->dir, i);
        if (i == 0) first = x;
        if (x != (first + 1) * (i + 1) - 1)
            return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: fullatt_block_indexes is not every %lld-th block "
                            "(llama.cpp's n_wa_pattern cannot hold it)", h->dir, first + 1);
    }
    if (!cJSON_IsArray(f) || n < 1)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: vision_config.fullatt_block_indexes is missing", h->dir);
    v->wa_pattern = first + 1;
    return IDS_OK;
}

/* The Qwen2-VL / Qwen2.5-VL vision config (defaults: transformers' Qwen2VLVisionConfig and
 * Qwen2_5_VLVisionConfig; Qwen2-VL names the width embed_dim and the output hidden_size, Qwen2.5-VL
 * hidden_size and out_hidden_size). */
static ids_status qwen_hparams(const ids__hf *h, vis_hp *v, ids_err *err) {
    const cJSON *c = h->vision;
    long long ratio = 0, tps;
    ids_status st;
    v->q25 = !strcmp(h->model_type, "qwen2_5_vl");
    if (v->q25 ? (st = cfg_int(h, c, "hidden_size", 1280, &v->E, err)) || (st = cfg_int(h, c, "intermediate_size", 3420, &v->F, err)) ||
                     (st = cfg_int(h, c, "out_hidden_size", 3584, &v->n_text, err)) ||
                     (st = cfg_int(h, c, "window_size", 112, &v->window, err))
               : (st = cfg_int(h, c, "embed_dim", 1280, &v->E, err)) || (st = cfg_int(h, c, "mlp_ratio", 4, &ratio, err)) ||
                     (st = cfg_int(h, c, "hidden_size", 3584, &v->n_text, err)))
        return st;
    if ((st = cfg_int(h, c, "depth", 32, &v->L, err)) || (st = cfg_int(h, c, "num_heads", 16, &v->H, err)) ||
        (st = cfg_int(h, c, "patch_size", 14, &v->patch, err)) || (st = cfg_int(h, c, "spatial_merge_size", 2, &v->merge, err)) ||
        (st = cfg_int(h, c, "temporal_patch_size", 2, &tps, err)) || (st = cfg_int(h, c, "image_size", 560, &v->image, err)) ||
        (st = cfg_num(h, h->text, "rms_norm_eps", 1e-6, &v->eps, err)))
        return st;
    if (tps != 2) return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: temporal_patch_size %lld (2 only)", h->dir, tps);
    if (!v->q25) v->F = v->E * ratio;
    return v->q25 ? wa_pattern(h, v, err) : IDS_OK;
}

static ids_status build_qwen2vl(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    vis_hp v = {0};
    ids_status st = qwen_hparams(h, &v, err);
    if (st || (st = qwen_keys(h, gw, &v, err)) || (st = qwen_patch(h, gw, &v, err))) return st;
    for (int l = 0; l < v.L && !st; l++) st = qwen_block(h, gw, &v, l, err);
    const int64_t M = v.E * v.merge * v.merge, T = v.n_text;
    if (!st) st = map1(h, gw, "v.post_ln.weight", VIS_PRE, "merger.ln_q.weight", 1, (int64_t[1]){v.E}, true, err);
    if (!st && !v.q25) st = map1(h, gw, "v.post_ln.bias", VIS_PRE, "merger.ln_q.bias", 1, (int64_t[1]){v.E}, true, err);
    if (!st) st = map1(h, gw, "mm.0.weight", VIS_PRE, "merger.mlp.0.weight", 2, (int64_t[2]){M, M}, true, err);
    if (!st) st = map1(h, gw, "mm.0.bias", VIS_PRE, "merger.mlp.0.bias", 1, (int64_t[1]){M}, true, err);
    if (!st) st = map1(h, gw, "mm.2.weight", VIS_PRE, "merger.mlp.2.weight", 2, (int64_t[2]){T, M}, true, err);
    if (!st) st = map1(h, gw, "mm.2.bias", VIS_PRE, "merger.mlp.2.bias", 1, (int64_t[1]){T}, true, err);
    return st;
}

/* ---- shared with hf_families.c ------------------------------------------------------------ */

const ids__hf_weight *ids__hf_find(const ids__hf *h, const char *const *prefixes, const char *rest) {
    return find(h, prefixes, rest);
}

ids_status ids__hf_get(const ids__hf *h, const char *const *pre, const char *rest, int nd, const int64_t *shape,
                       bool required, const ids__hf_weight **out, ids_err *err) {
    return get(h, pre, rest, nd, shape, required, out, err);
}

ids_status ids__hf_put(ids__hf *h, ids_gguf_writer *gw, const char *gname, const ids__hf_weight *w, const void *data,
                       int nd, const int64_t *shape, ids_err *err) {
    return put_data(h, gw, gname, w, data, nd, shape, err);
}

int ids__hf_type(const char *dtype) { return type_of(dtype); }

ids_status ids__hf_cfg_int(const ids__hf *h, const cJSON *obj, const char *key, long long def, long long *out,
                           ids_err *err) {
    return cfg_int(h, obj, key, def, out, err);
}

ids_status ids__hf_cfg_num(const ids__hf *h, const cJSON *obj, const char *key, double def, double *out, ids_err *err) {
    return cfg_num(h, obj, key, def, out, err);
}

ids_status ids__hf_put_pixels(ids__hf *h, ids_gguf_writer *gw, ids_err *err) { return put_pixels(h, gw, err); }

/* ---- LLaVA-OneVision (HF LlavaOnevisionForConditionalGeneration) ---------------------------- */

/* The SigLIP tower's config and what config.json says about its use: vision_feature_layer as the
 * number of blocks run, the "full" strategy (SigLIP has no CLS to drop), SigLIP's tanh GELU. */
static ids_status ov_hparams(const ids__hf *h, vis_hp *v, long long *fl, ids_err *err) {
    const cJSON *c = h->vision, *act = cJSON_GetObjectItemCaseSensitive(c, "hidden_act");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(h->config, "vision_feature_select_strategy");
    ids_status st; /* defaults: transformers' SiglipVisionConfig */
    if ((st = cfg_int(h, c, "hidden_size", 768, &v->E, err)) || (st = cfg_int(h, c, "intermediate_size", 3072, &v->F, err)) ||
        (st = cfg_int(h, c, "num_hidden_layers", 12, &v->L, err)) ||
        (st = cfg_int(h, c, "num_attention_heads", 12, &v->H, err)) ||
        (st = cfg_int(h, c, "image_size", 224, &v->image, err)) || (st = cfg_int(h, c, "patch_size", 16, &v->patch, err)) ||
        (st = cfg_num(h, c, "layer_norm_eps", 1e-6, &v->eps, err)) ||
        (st = cfg_int(h, h->text, "hidden_size", 4096, &v->n_text, err)))
        return st;
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu_pytorch_tanh")))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: vision_config.hidden_act '%s' is not supported "
                        "(gelu_pytorch_tanh, SigLIP's)", h->dir, cJSON_IsString(act) ? act->valuestring : "?");
    if (s && (!cJSON_IsString(s) || strcmp(s->valuestring, "full")))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: vision_feature_select_strategy '%s' is not supported "
                        "(full only: SigLIP has no CLS row)", h->dir, cJSON_IsString(s) ? s->valuestring : "?");
    if (v->image % v->patch || v->E % v->H)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: image_size %lld is not a multiple of patch_size %lld, or "
                        "hidden_size %lld not of %lld heads", h->dir, v->image, v->patch, v->E, v->H);
    long long x;
    st = ids__json_int(cJSON_GetObjectItemCaseSensitive(h->config, "vision_feature_layer"), NULL, -v->L - 1, v->L, -1, &x, err);
    if (st) return ids__err_prefix(err, st, "%s/config.json: vision_feature_layer (one layer)", h->dir);
    *fl = x < 0 ? v->L + 1 + x : x;
    if (*fl < 1) return ids__err(err, IDS_ERR_RANGE, "%s/config.json: vision_feature_layer %lld selects the embeddings",
                                 h->dir, x);
    return IDS_OK;
}

/* image_grid_pinpoints ([height, width] pairs; HF's default: 1..6 x 1..6 squares) and
 * vision_aspect_ratio "anyres_max_N" (default 9) as clip.vision.image_grid_pinpoints (flat pairs)
 * and clip.vision.anyres_max_patches. */
static ids_status ov_anyres(const ids__hf *h, ids_gguf_writer *gw, const vis_hp *v, ids_err *err) {
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(h->config, "image_grid_pinpoints");
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(h->config, "vision_aspect_ratio");
    int32_t pin[512];
    int n = 0;
    ids_status st = IDS_OK;
    if (!pp)
        for (int a = 1; a <= 6; a++)
            for (int b = 1; b <= 6; b++) pin[n++] = (int32_t)(a * v->image), pin[n++] = (int32_t)(b * v->image);
    else if (!cJSON_IsArray(pp) || cJSON_GetArraySize(pp) < 1 || cJSON_GetArraySize(pp) > 256)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: image_grid_pinpoints is not a list of 1..256 pairs", h->dir);
    for (int i = 0; pp && i < cJSON_GetArraySize(pp); i++) {
        const cJSON *pr = cJSON_GetArrayItem(pp, i);
        for (int k = 0; k < 2; k++) {
            long long x;
            if (!cJSON_IsArray(pr) || cJSON_GetArraySize(pr) != 2)
                return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: image_grid_pinpoints[%d] is not [height, width]", h->dir, i);
            if ((st = ids__json_int(cJSON_GetArrayItem(pr, k), NULL, v->image, 64 * v->image, 0, &x, err)))
                return ids__err_prefix(err, st, "%s/config.json: image_grid_pinpoints[%d][%d]", h->dir, i, k);
            if (x % v->image)
                return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: image_grid_pinpoints[%d][%d] = %lld is not a multiple "
                                "of image_size %lld", h->dir, i, k, x, v->image);
            pin[n++] = (int32_t)x;
        }
    }
    long long mx = 9;
    if (ar) {
        char *end = NULL;
        const char *s = cJSON_IsString(ar) ? ar->valuestring : "";
        if (strncmp(s, "anyres_max_", 11) || (mx = strtoll(s + 11, &end, 10)) < 1 || mx > 1024 || *end)
            return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: vision_aspect_ratio '%s' is not supported "
                            "(anyres_max_N, N in 1..1024)", h->dir, s);
    }
    st = ids_gguf_writer_set_arr(gw, "clip.vision.image_grid_pinpoints", IDS_GGUF_INT32, pin, (uint64_t)n, err);
    return st ? st : ids_gguf_writer_set_u32(gw, "clip.vision.anyres_max_patches", (uint32_t)mx, err);
}

static ids_status ov_keys(ids__hf *h, ids_gguf_writer *gw, const vis_hp *v, long long fl, ids_err *err) {
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", "clip", err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_vision_encoder", true, err);
    if (!st) st = ids_gguf_writer_set_str(gw, "clip.projector_type", "llava_onevision", err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.image_size", (uint32_t)v->image, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.patch_size", (uint32_t)v->patch, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.embedding_length", (uint32_t)v->E, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.feed_forward_length", (uint32_t)v->F, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.projection_dim", (uint32_t)v->n_text, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.block_count", (uint32_t)fl, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.attention.head_count", (uint32_t)v->H, err);
    if (!st) st = ids_gguf_writer_set_f32(gw, "clip.vision.attention.layer_norm_epsilon", (float)v->eps, err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.use_gelu", true, err);
    if (!st) st = put_norm(h, gw, err);
    return st ? st : ov_anyres(h, gw, v, err);
}

static const char *const NEWLINE_PRE[] = {"model.", "", NULL};

/* SigLIP blocks up to the feature layer (fc1 as ffn_up, fc2 as ffn_down), the patch and position
 * embeddings, the projector (mm.0, mm.2) and image_newline (v.image_newline); no post-LN. */
static ids_status build_onevision(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    vis_hp v = {0};
    long long fl = 0;
    ids_status st;
    if ((st = ov_hparams(h, &v, &fl, err)) || (st = ov_keys(h, gw, &v, fl, err))) return st;
    const int64_t E = v.E, F = v.F, P = v.patch, T = v.n_text, np = (v.image / v.patch) * (v.image / v.patch);
    const char *const *pre = VT_PRE;
    if ((st = map1(h, gw, "v.patch_embd.weight", pre, "vision_model.embeddings.patch_embedding.weight", 4,
                   (int64_t[4]){E, 3, P, P}, true, err)) ||
        (st = map1(h, gw, "v.patch_embd.bias", pre, "vision_model.embeddings.patch_embedding.bias", 1, (int64_t[1]){E},
                   true, err)) ||
        (st = map1(h, gw, "v.position_embd.weight", pre, "vision_model.embeddings.position_embedding.weight", 2,
                   (int64_t[2]){np, E}, true, err)))
        return st;
    static const char *const lin[4][2] = {{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                                          {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"}};
    for (int l = 0; l < fl && !st; l++) {
        char b[96], g[64], r[128];
        for (int k = 0; k < 4 && !st; k++) {
            snprintf(b, sizeof b, "vision_model.encoder.layers.%d.%s", l, lin[k][1]);
            st = vis_linear(h, gw, pre, l, lin[k][0], b, E, E, err);
        }
        for (int n = 1; n <= 2; n++)
            for (int j = 0; j < 2 && !st; j++) {
                snprintf(g, sizeof g, "v.blk.%d.ln%d.%s", l, n, j ? "bias" : "weight");
                snprintf(r, sizeof r, "vision_model.encoder.layers.%d.layer_norm%d.%s", l, n, j ? "bias" : "weight");
                st = map1(h, gw, g, pre, r, 1, (int64_t[1]){E}, true, err);
            }
        snprintf(b, sizeof b, "vision_model.encoder.layers.%d.mlp.fc1", l);
        if (!st) st = vis_linear(h, gw, pre, l, "ffn_up", b, F, E, err);
        snprintf(b, sizeof b, "vision_model.encoder.layers.%d.mlp.fc2", l);
        if (!st) st = vis_linear(h, gw, pre, l, "ffn_down", b, E, F, err);
    }
    if (!st) st = map1(h, gw, "mm.0.weight", PROJ_PRE, "linear_1.weight", 2, (int64_t[2]){T, E}, true, err);
    if (!st) st = map1(h, gw, "mm.0.bias", PROJ_PRE, "linear_1.bias", 1, (int64_t[1]){T}, true, err);
    if (!st) st = map1(h, gw, "mm.2.weight", PROJ_PRE, "linear_2.weight", 2, (int64_t[2]){T, T}, true, err);
    if (!st) st = map1(h, gw, "mm.2.bias", PROJ_PRE, "linear_2.bias", 1, (int64_t[1]){T}, true, err);
    if (!st) st = map1(h, gw, "v.image_newline", NEWLINE_PRE, "image_newline", 1, (int64_t[1]){T}, true, err);
    return st;
}

/* ---- public ------------------------------------------------------------------------------ */

static ids_status build(ids__hf *h, ids_hf_part part, ids_gguf_writer **out, ids_err *err) {
    ids_gguf_writer *w = *out = ids_gguf_writer_new();
    if (!w) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", h->dir);
    const ids__hf_family *fam = ids__hf_family_of(h->model_type);
    ids_status st = !strcmp(h->model_type, "mllama") ? ids__hf_build_mllama(h, part, w, err)
                    : fam ? (part == IDS_HF_TEXT ? fam->text(h, w, err) : fam->vision(h, w, err))
                    : part == IDS_HF_TEXT ? build_text(h, w, err)
                    : !strcmp(h->model_type, "llava") ? build_clip(h, w, err)
                    : !strcmp(h->model_type, "llava_onevision") ? build_onevision(h, w, err) : build_qwen2vl(h, w, err);
    if (st) {
        ids_gguf_writer_free(w);
        *out = NULL;
    }
    return st;
}

ids_status ids_hf_open(ids_gguf **out, const char *dir, ids_hf_part part, ids_err *err) {
    *out = NULL;
    ids__hf *h;
    ids_status st = ids__hf_open(&h, dir, err);
    if (st) return st;
    ids_gguf_writer *w;
    if ((st = build(h, part, &w, err))) {
        ids__hf_close(h);
        return st;
    }
    char name[1100];
    snprintf(name, sizeof name, "%s", h->dir);
    ids_gguf *g;
    if ((st = ids__gguf_from_writer(w, name, &g, err))) {
        ids__hf_close(h);
        return st;
    }
    if ((st = ids__gguf_attach(g, h, ids__hf_close, err))) {
        ids_gguf_close(g);
        return st;
    }
    *out = g;
    return IDS_OK;
}

ids_status ids_gguf_open_model(ids_gguf **out, const char *path, ids_hf_part part, ids_err *err) {
    if (ids_hf_is_dir(path)) return ids_hf_open(out, path, part, err);
    return ids_gguf_open(out, path, err);
}

ids_status ids_hf_convert(const char *dir, const char *out_dir, ids_err *err) {
    ids__hf *h;
    ids_status st = ids__hf_open(&h, dir, err);
    if (st) return st;
    if (!strcmp(h->model_type, "mllama")) { /* no GGUF layout llama.cpp reads */
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: model_type mllama has no GGUF pair llama.cpp runs (llama.cpp has "
                      "no mllama architecture); use the folder itself with -m", h->dir);
        ids__hf_close(h);
        return st;
    }
    static const char *const files[2] = {"text.gguf", "mmproj.gguf"};
    char path[2][1100];
    int written = 0;
    for (int p = 0; p < 2 && !st; p++) {
        ids_gguf_writer *w;
        snprintf(path[p], sizeof path[p], "%s/%s", out_dir, files[p]);
        if ((st = build(h, p ? IDS_HF_VISION : IDS_HF_TEXT, &w, err))) break;
        if (!(st = ids_gguf_writer_write(w, path[p], err))) written++;
        ids_gguf_writer_free(w);
    }
    if (st && written) remove(path[0]); /* a pair or nothing */
    ids__hf_close(h);
    return st;
}

/* ---- also for hf_mllama.c (find, cfg_int and cfg_num above) ---------------------------------------------- */

const char *ids__hf_spelling(const ids__hf *h, const char *const *prefixes) { return spelling(h, prefixes); }
ids_status ids__hf_map1(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre, const char *rest,
                        int nd, const int64_t *shape, bool required, ids_err *err) {
    return map1(h, gw, gname, pre, rest, nd, shape, required, err);
}
ids_status ids__hf_map_permuted(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre,
                                const char *rest, int64_t rows, int64_t cols, int n_head, ids_err *err) {
    return map_permuted(h, gw, gname, pre, rest, rows, cols, n_head, err);
}
ids_status ids__hf_put_norm(ids__hf *h, ids_gguf_writer *gw, ids_err *err) { return put_norm(h, gw, err); }
