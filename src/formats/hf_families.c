/* Hugging Face folders of Gemma 3 (`gemma3`), InternVL 2.5 / 3 (`internvl_chat`: OpenGVLab's own
 * layout; `internvl`: transformers' InternVLForConditionalGeneration) and Qwen3-VL (`qwen3_vl`) as the
 * GGUF pairs llama.cpp's converters write for them (conversion/gemma.py, internvl.py with the Qwen2
 * text converter, qwen3vl.py). Each family is a table of tensor names and a function for its keys;
 * the folder, weight and tokenizer machinery is hf.c's. What differs from a plain rename:
 * - Gemma 3 stores every RMSNorm weight as w and computes (1 + w); the converter writes w + 1 in F32
 *   (`*norm.weight`, and the projector's soft-embedding norm), drops embedding rows past the
 *   tokenizer, forces the input projection to F16 and the tower's embeddings to F32.
 * - InternVL: the fused qkv rows split into attn_q/k/v, CLS and position tables squeezed from
 *   (1, 1, E) / (1, N + 1, E), the layer scales as ls1/ls2 `.weight`.
 * - Qwen3-VL: the Conv3D patch kernel as two Conv2D kernels, DeepStack mergers under the number of
 *   the tower block they read (deepstack_visual_indexes[k]), not k. */
#include "formats/hf.h"

#include <cjson/cJSON.h>
#include <math.h>

static const char *const LM_PRE[] = {"model.language_model.", "language_model.model.", "model.", NULL};
static const char *const HEAD_PRE[] = {"lm_head.", "language_model.lm_head.", NULL};
static const char *const VT_PRE[] = {"model.vision_tower.", "vision_tower.", NULL};
static const char *const PROJ_PRE[] = {"model.multi_modal_projector.", "multi_modal_projector.", NULL};
static const char *const VIS_PRE[] = {"model.visual.", "visual.", NULL};
static const char *const ROOT_PRE[] = {"", NULL};

enum { KEEP = -1 };

/* w's data as GGUF tensor `gname`, ne = the HF shape reversed without its first `lead` dimensions (of
 * size 1): kept in its type (1-D as F32) unless `type` asks for F32 or F16; `add` is added in F32 (Gemma's
 * norm shift). */
static ids_status put_as(ids__hf *h, ids_gguf_writer *gw, const char *gname, const ids__hf_weight *w, const void *data,
                         int nd, const int64_t *shape, int lead, int type, float add, ids_err *err) {
    nd -= lead, shape += lead;
    const int have = ids__hf_type(w->t->dtype);
    if (type == KEEP && add == 0.0f) return ids__hf_put(h, gw, gname, w, data, nd, shape, err);
    if (type == KEEP) type = IDS_TYPE_F32;
    int64_t ne[4] = {1, 1, 1, 1}, nel = 1;
    for (int d = 0; d < nd; d++) ne[d] = shape[nd - 1 - d], nel *= shape[d];
    if (have != type || add != 0.0f) {
        float *f = ids__hf_alloc(h, (size_t)nel * sizeof *f, err);
        if (!f) return IDS_ERR_NOMEM;
        ids_status st = ids_dequantize(have, data, f, nel, err);
        if (st) return ids__err_prefix(err, st, "%s: tensor '%s'", h->dir, w->name);
        for (int64_t i = 0; add != 0.0f && i < nel; i++) f[i] += add;
        data = f;
        if (type == IDS_TYPE_F16) {
            uint16_t *o = ids__hf_alloc(h, (size_t)nel * sizeof *o, err);
            if (!o) return IDS_ERR_NOMEM;
            for (int64_t i = 0; i < nel; i++) o[i] = ids_f32_to_f16(f[i]);
            data = o;
        }
    }
    return ids__gguf_writer_add_tensor_ref(gw, gname, type, nd, ne, data, err);
}

/* get + put_as of a whole tensor (absent and optional: nothing). */
static ids_status map_as(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre, const char *rest,
                         int nd, const int64_t *shape, bool required, int lead, int type, float add, ids_err *err) {
    const ids__hf_weight *w;
    ids_status st = ids__hf_get(h, pre, rest, nd, shape, required, &w, err);
    if (st || !w) return st;
    return put_as(h, gw, gname, w, w->t->data, nd, shape, lead, type, add, err);
}

static ids_status map(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre, const char *rest,
                      int nd, const int64_t *shape, bool required, ids_err *err) {
    return map_as(h, gw, gname, pre, rest, nd, shape, required, 0, KEEP, 0.0f, err);
}

/* A tensor split along its rows into n equal parts (fused qkv weights and biases): part k is GGUF
 * tensor names[k]. */
static ids_status map_split(ids__hf *h, ids_gguf_writer *gw, const char *const *names, int n, const char *const *pre,
                            const char *rest, int nd, const int64_t *shape, ids_err *err) {
    const ids__hf_weight *w;
    ids_status st = ids__hf_get(h, pre, rest, nd, shape, true, &w, err);
    if (st) return st;
    int64_t part[2] = {shape[0] / n, nd > 1 ? shape[1] : 1};
    const size_t bytes = (size_t)(part[0] * part[1]) * (ids__hf_type(w->t->dtype) == IDS_TYPE_F32 ? 4 : 2);
    for (int k = 0; k < n && !st; k++)
        st = ids__hf_put(h, gw, names[k], w, (const unsigned char *)w->t->data + (size_t)k * bytes, nd, part, err);
    return st;
}

static const cJSON *obj(const cJSON *c, const char *key) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsObject(o) ? o : NULL;
}

/* The text config: InternVL's llm_config, else text_config (or the top level). */
static const cJSON *text_cfg(const ids__hf *h) {
    const cJSON *l = obj(h->config, "llm_config");
    return l ? l : h->text;
}

/* ---- decoders ------------------------------------------------------------------------------ */

typedef struct {
    long long n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, head_dim;
    double eps, theta;
    bool tied;
    const cJSON *c;
} dec_hp;

/* One row of a decoder block's table: GGUF name, HF name, shape in units (E n_embd, Q n_head x head_dim,
 * K n_head_kv x head_dim, F n_ff, D head_dim; 0 = none), Gemma's + 1. */
typedef struct {
    const char *g, *hf;
    char rows, cols;
    bool shift;
} blk_row;

static const blk_row GEMMA3_BLK[] = {
    {"attn_norm.weight", "input_layernorm.weight", 'E', 0, true},
    {"attn_q.weight", "self_attn.q_proj.weight", 'Q', 'E', false},
    {"attn_k.weight", "self_attn.k_proj.weight", 'K', 'E', false},
    {"attn_v.weight", "self_attn.v_proj.weight", 'K', 'E', false},
    {"attn_output.weight", "self_attn.o_proj.weight", 'E', 'Q', false},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", 'D', 0, true},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", 'D', 0, true},
    {"post_attention_norm.weight", "post_attention_layernorm.weight", 'E', 0, true},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight", 'E', 0, true},
    {"ffn_gate.weight", "mlp.gate_proj.weight", 'F', 'E', false},
    {"ffn_up.weight", "mlp.up_proj.weight", 'F', 'E', false},
    {"ffn_down.weight", "mlp.down_proj.weight", 'E', 'F', false},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight", 'E', 0, true},
    {NULL, NULL, 0, 0, false}};

static const blk_row QWEN3_BLK[] = {
    {"attn_norm.weight", "input_layernorm.weight", 'E', 0, false},
    {"attn_q.weight", "self_attn.q_proj.weight", 'Q', 'E', false},
    {"attn_k.weight", "self_attn.k_proj.weight", 'K', 'E', false},
    {"attn_v.weight", "self_attn.v_proj.weight", 'K', 'E', false},
    {"attn_output.weight", "self_attn.o_proj.weight", 'E', 'Q', false},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", 'D', 0, false},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", 'D', 0, false},
    {"ffn_norm.weight", "post_attention_layernorm.weight", 'E', 0, false},
    {"ffn_gate.weight", "mlp.gate_proj.weight", 'F', 'E', false},
    {"ffn_up.weight", "mlp.up_proj.weight", 'F', 'E', false},
    {"ffn_down.weight", "mlp.down_proj.weight", 'E', 'F', false},
    {NULL, NULL, 0, 0, false}};

static const blk_row QWEN2_BLK[] = {
    {"attn_norm.weight", "input_layernorm.weight", 'E', 0, false},
    {"attn_q.weight", "self_attn.q_proj.weight", 'Q', 'E', false},
    {"attn_q.bias", "self_attn.q_proj.bias", 'Q', 0, false},
    {"attn_k.weight", "self_attn.k_proj.weight", 'K', 'E', false},
    {"attn_k.bias", "self_attn.k_proj.bias", 'K', 0, false},
    {"attn_v.weight", "self_attn.v_proj.weight", 'K', 'E', false},
    {"attn_v.bias", "self_attn.v_proj.bias", 'K', 0, false},
    {"attn_output.weight", "self_attn.o_proj.weight", 'E', 'Q', false},
    {"ffn_norm.weight", "post_attention_layernorm.weight", 'E', 0, false},
    {"ffn_gate.weight", "mlp.gate_proj.weight", 'F', 'E', false},
    {"ffn_up.weight", "mlp.up_proj.weight", 'F', 'E', false},
    {"ffn_down.weight", "mlp.down_proj.weight", 'E', 'F', false},
    {NULL, NULL, 0, 0, false}};

static int64_t unit(const dec_hp *t, char u) {
    switch (u) {
    case 'E': return t->n_embd;
    case 'Q': return t->n_head * t->head_dim;
    case 'K': return t->n_head_kv * t->head_dim;
    case 'F': return t->n_ff;
    case 'D': return t->head_dim;
    default: return 0;
    }
}

/* The numbers every decoder has; defaults are those of the family's config class (def[]: hidden,
 * layers, heads, KV heads, MLP, context, head_dim (0: hidden / heads)). */
static ids_status dec_hparams(const ids__hf *h, dec_hp *t, const long long def[7], double theta, ids_err *err) {
    const cJSON *c = t->c = text_cfg(h);
    ids_status st;
    if ((st = ids__hf_cfg_int(h, c, "hidden_size", def[0], &t->n_embd, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_hidden_layers", def[1], &t->n_layer, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_attention_heads", def[2], &t->n_head, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_key_value_heads", def[3] ? def[3] : t->n_head, &t->n_head_kv, err)) ||
        (st = ids__hf_cfg_int(h, c, "intermediate_size", def[4], &t->n_ff, err)) ||
        (st = ids__hf_cfg_int(h, c, "max_position_embeddings", def[5], &t->n_ctx, err)) ||
        (st = ids__hf_cfg_num(h, c, "rms_norm_eps", 1e-6, &t->eps, err)) ||
        (st = ids__hf_cfg_num(h, c, "rope_theta", theta, &t->theta, err)))
        return st;
    if (t->n_head % t->n_head_kv || (!def[6] && t->n_embd % t->n_head))
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: hidden_size %lld, %lld heads, %lld KV heads do not divide",
                        h->dir, t->n_embd, t->n_head, t->n_head_kv);
    if ((st = ids__hf_cfg_int(h, c, "head_dim", def[6] ? def[6] : t->n_embd / t->n_head, &t->head_dim, err))) return st;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings");
    if (!tie) tie = cJSON_GetObjectItemCaseSensitive(h->config, "tie_word_embeddings");
    t->tied = tie && cJSON_IsTrue(tie);
    return IDS_OK;
}

static ids_status dec_keys(ids__hf *h, ids_gguf_writer *gw, const char *a, const dec_hp *t, bool kv_len, ids_err *err) {
    const char *base = strrchr(h->dir, '/');
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
    if (kv_len) {
        U32("attention.key_length", t->head_dim);
        U32("attention.value_length", t->head_dim);
    }
#undef U32
#undef F32
    return st;
}

/* Embeddings (the first n_vocab of their `rows`), blocks by the table, final norm and (unless tied) the head. */
static ids_status dec_tensors(ids__hf *h, ids_gguf_writer *gw, const dec_hp *t, const blk_row *tab, int64_t rows,
                              int64_t n_vocab, bool shift, ids_err *err) {
    const ids__hf_weight *emb;
    const int64_t E = t->n_embd;
    ids_status st = ids__hf_get(h, LM_PRE, "embed_tokens.weight", 2, (int64_t[2]){rows, E}, true, &emb, err);
    if (st) return st;
    if (n_vocab > rows)
        return ids__err(err, IDS_ERR_FORMAT, "%s: the tokenizer has %lld tokens, tensor '%s' only %lld rows", h->dir,
                        (long long)n_vocab, emb->name, (long long)rows);
    if ((st = put_as(h, gw, "token_embd.weight", emb, emb->t->data, 2, (int64_t[2]){n_vocab, E}, 0, KEEP, 0, err)))
        return st;
    for (int l = 0; l < t->n_layer && !st; l++)
        for (const blk_row *r = tab; r->g && !st; r++) {
            char g[96], hn[128];
            const int64_t shape[2] = {unit(t, r->rows), unit(t, r->cols)};
            snprintf(g, sizeof g, "blk.%d.%s", l, r->g);
            snprintf(hn, sizeof hn, "layers.%d.%s", l, r->hf);
            st = map_as(h, gw, g, LM_PRE, hn, r->cols ? 2 : 1, shape, true, 0, KEEP, r->shift ? 1.0f : 0.0f, err);
        }
    if (!st) st = map_as(h, gw, "output_norm.weight", LM_PRE, "norm.weight", 1, (int64_t[1]){E}, true, 0, KEEP,
                         shift ? 1.0f : 0.0f, err);
    if (!st && !t->tied) st = map(h, gw, "output.weight", HEAD_PRE, "weight", 2, (int64_t[2]){rows, E}, true, err);
    return st;
}

/* The embedding's row count (checked against the tokenizer when `exact`; Gemma's converter cuts the
 * rows past the tokenizer instead). */
static ids_status embed_rows(const ids__hf *h, const dec_hp *t, int64_t *rows, ids_err *err) {
    const ids__hf_weight *emb = ids__hf_find(h, LM_PRE, "embed_tokens.weight");
    if (!emb)
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s/%s: tensor 'embed_tokens.weight' is missing (under %s or %s)", h->dir,
                        h->index_name ? h->index_name : "model.safetensors", LM_PRE[0], LM_PRE[1]);
    if (emb->t->ndim != 2 || emb->t->shape[1] != t->n_embd)
        return ids__err(err, IDS_ERR_FORMAT, "%s/%s: tensor '%s' is not [n_vocab, %lld] (hidden_size in config.json)",
                        h->dir, h->file_names[emb->file], emb->name, t->n_embd);
    *rows = emb->t->shape[0];
    return IDS_OK;
}

/* ---- Gemma 3 text (arch gemma3) ---- */

/* transformers' newer layer_types list as the sliding-window pattern p (layer l global iff (l + 1) % p == 0,
 * the only form llama.cpp's key holds); the pattern from sliding_window_pattern when there is no list. */
static ids_status gemma3_pattern(const ids__hf *h, const dec_hp *t, long long *pattern, ids_err *err) {
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(t->c, "layer_types");
    if (!lt) return ids__hf_cfg_int(h, t->c, "sliding_window_pattern", 6, pattern, err);
    const int n = cJSON_GetArraySize(lt);
    long long p = 0;
    for (int l = 0; l < n && !p; l++) {
        const cJSON *x = cJSON_GetArrayItem(lt, l);
        if (cJSON_IsString(x) && !strcmp(x->valuestring, "full_attention")) p = l + 1;
    }
    if (!p) p = n + 1; /* no global layer */
    for (int l = 0; l < n; l++) {
        const cJSON *x = cJSON_GetArrayItem(lt, l);
        const char *want = (l + 1) % p ? "sliding_attention" : "full_attention";
        if (!cJSON_IsString(x) || strcmp(x->valuestring, want))
            return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: layer_types[%d] is not '%s': not every %lld-th layer "
                            "global (gemma3.attention.sliding_window_pattern cannot hold it)", h->dir, l, want, p);
    }
    if (n != t->n_layer)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: layer_types has %d entries for %lld layers", h->dir, n, t->n_layer);
    *pattern = p;
    return IDS_OK;
}

/* Rope scaling (linear only), the sliding window and its pattern, the softcap and the query scale:
 * what conversion/gemma.py writes, plus the pattern and scale when they are not what llama.cpp assumes. */
static ids_status gemma3_keys(ids__hf *h, ids_gguf_writer *gw, const dec_hp *t, ids_err *err) {
    const cJSON *c = t->c, *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    double swa_base, cap = 0, qpas;
    long long window, pattern;
    ids_status st;
    if ((st = ids__hf_cfg_num(h, c, "rope_local_base_freq", 10000.0, &swa_base, err)) ||
        (st = ids__hf_cfg_int(h, c, "sliding_window", 4096, &window, err)) ||
        (st = gemma3_pattern(h, t, &pattern, err)) ||
        (st = ids__hf_cfg_num(h, c, "query_pre_attn_scalar", 256, &qpas, err)))
        return st;
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(c, "final_logit_softcapping");
    if (fc && !cJSON_IsNull(fc) && (st = ids__hf_cfg_num(h, c, "final_logit_softcapping", 0, &cap, err))) return st;
    const cJSON *ac = cJSON_GetObjectItemCaseSensitive(c, "attn_logit_softcapping");
    if (ac && !cJSON_IsNull(ac))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: attn_logit_softcapping is set (Gemma 3 has none)", h->dir);
    if (!st) st = ids_gguf_writer_set_f32(gw, "gemma3.rope.freq_base_swa", (float)swa_base, err);
    if (!st && rs && !cJSON_IsNull(rs)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
        double f;
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "linear"))
            return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: rope_scaling type '%s' (linear only)", h->dir,
                            cJSON_IsString(ty) ? ty->valuestring : "?");
        if ((st = ids__hf_cfg_num(h, rs, "factor", 1.0, &f, err))) return ids__err_prefix(err, st, "rope_scaling");
        st = ids_gguf_writer_set_str(gw, "gemma3.rope.scaling.type", "linear", err);
        if (!st) st = ids_gguf_writer_set_f32(gw, "gemma3.rope.scaling.factor", (float)f, err);
    }
    if (!st && pattern != 1) st = ids_gguf_writer_set_u32(gw, "gemma3.attention.sliding_window", (uint32_t)window, err);
    if (!st && cap > 0) st = ids_gguf_writer_set_f32(gw, "gemma3.final_logit_softcapping", (float)cap, err);
    if (!st && pattern != 6) /* llama.cpp's default; read when present */
        st = ids_gguf_writer_set_u32(gw, "gemma3.attention.sliding_window_pattern", (uint32_t)pattern, err);
    /* llama.cpp (and idscope without the key) take n_embd / n_head for 62 layers, head_dim otherwise */
    const double derived = t->n_layer == 62 ? (double)t->n_embd / (double)t->n_head : (double)t->head_dim;
    if (!st && qpas != derived) st = ids_gguf_writer_set_f32(gw, "gemma3.attention.scale", (float)(1.0 / sqrt(qpas)), err);
    return st;
}

static ids_status gemma3_text(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    static const long long def[7] = {2304, 26, 8, 4, 9216, 131072, 256}; /* Gemma3TextConfig */
    dec_hp t;
    int64_t rows, n_tok;
    ids_status st = dec_hparams(h, &t, def, 1e6, err);
    if (st || (st = embed_rows(h, &t, &rows, err))) return st;
    t.tied = true; /* the converter skips lm_head.weight */
    if ((st = dec_keys(h, gw, "gemma3", &t, true, err)) || (st = gemma3_keys(h, gw, &t, err))) return st;
    if ((st = ids__hf_tokenizer_n(h, gw, 0, &n_tok, err))) return st;
    return dec_tensors(h, gw, &t, GEMMA3_BLK, rows, n_tok, true, err); /* rows past the tokenizer dropped */
}

/* ---- InternVL text (arch qwen2: InternVL3 1B-78B, InternVL 2.5 with a Qwen2 LLM) ---- */

static ids_status internvl_text(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    static const long long def[7] = {4096, 32, 32, 0, 22016, 32768, 0}; /* Qwen2Config */
    dec_hp t;
    int64_t rows, n_tok;
    ids_status st = dec_hparams(h, &t, def, 10000.0, err);
    if (st || (st = embed_rows(h, &t, &rows, err))) return st;
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(t.c, "architectures");
    const cJSON *a0 = cJSON_GetArrayItem(ar, 0), *mt = cJSON_GetObjectItemCaseSensitive(t.c, "model_type");
    const char *name = cJSON_IsString(a0) ? a0->valuestring : cJSON_IsString(mt) ? mt->valuestring : "Qwen2ForCausalLM";
    if (strcmp(name, "Qwen2ForCausalLM") && strcmp(name, "qwen2"))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: InternVL's language model '%s' is not supported "
                        "(Qwen2 only: InternVL3 1B-78B, InternVL 2.5 1B/4B/38B/78B)", h->dir, name);
    if ((st = dec_keys(h, gw, "qwen2", &t, false, err))) return st;
    if ((st = ids__hf_tokenizer_n(h, gw, rows, &n_tok, err))) return st;
    return dec_tensors(h, gw, &t, QWEN2_BLK, rows, n_tok, false, err);
}

/* ---- Qwen3-VL text (arch qwen3vl) ---- */

static ids_status qwen3vl_text(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    static const long long def[7] = {4096, 32, 32, 0, 22016, 128000, 128}; /* Qwen3VLTextConfig */
    dec_hp t;
    int64_t rows, n_tok;
    ids_status st = dec_hparams(h, &t, def, 5e6, err);
    if (st || (st = embed_rows(h, &t, &rows, err)) || (st = dec_keys(h, gw, "qwen3vl", &t, true, err))) return st;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(t.c, "rope_scaling");
    if (!rs) rs = cJSON_GetObjectItemCaseSensitive(t.c, "rope_parameters");
    const cJSON *sec = rs ? cJSON_GetObjectItemCaseSensitive(rs, "mrope_section") : NULL;
    int32_t s[4] = {24, 20, 20, 0}; /* Qwen3VLTextConfig's default */
    long long sum = 0;
    if (sec && (!cJSON_IsArray(sec) || cJSON_GetArraySize(sec) < 1 || cJSON_GetArraySize(sec) > 4))
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: rope_scaling.mrope_section is not 1..4 numbers", h->dir);
    for (int i = 0; sec && i < 4; i++) {
        long long x = 0;
        if (i < cJSON_GetArraySize(sec) && (st = ids__json_int(cJSON_GetArrayItem(sec, i), NULL, 0, 4096, 0, &x, err)))
            return ids__err_prefix(err, st, "%s/config.json: rope_scaling.mrope_section[%d]", h->dir, i);
        s[i] = (int32_t)x;
    }
    for (int i = 0; i < 4; i++) sum += s[i];
    if (2 * sum != t.head_dim)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: mrope_section sums to %lld, expected head_dim / 2 = %lld",
                        h->dir, sum, t.head_dim / 2);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(h->vision, "deepstack_visual_indexes");
    if ((st = ids_gguf_writer_set_arr(gw, "qwen3vl.rope.dimension_sections", IDS_GGUF_INT32, s, 4, err)) ||
        (st = ids_gguf_writer_set_u32(gw, "qwen3vl.n_deepstack_layers", (uint32_t)cJSON_GetArraySize(ds), err)) ||
        (st = ids__hf_tokenizer_n(h, gw, rows, &n_tok, err)))
        return st;
    return dec_tensors(h, gw, &t, QWEN3_BLK, rows, n_tok, false, err);
}

/* ---- vision towers ---------------------------------------------------------------------------- */

typedef struct {
    long long E, F, L, H, image, patch, n_text;
    double eps;
} tower_hp;

/* clip.vision.image_mean / image_std from preprocessor_config.json, the family's defaults when absent. */
static ids_status put_mean_std(ids__hf *h, ids_gguf_writer *gw, float mean, const float *mean3, const float *std3,
                               ids_err *err) {
    float m[3], sd[3];
    for (int i = 0; i < 3; i++) m[i] = mean3 ? mean3[i] : mean, sd[i] = std3 ? std3[i] : mean;
    cJSON *pp = NULL;
    ids_status st = ids__hf_json(h, "preprocessor_config.json", &pp, err);
    if (st == IDS_ERR_NOT_FOUND) st = IDS_OK;
    for (int k = 0; pp && !st && k < 2; k++) {
        const char *key = k ? "image_std" : "image_mean";
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(pp, key);
        if (!a) continue;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
            st = ids__err(err, IDS_ERR_FORMAT, "%s/preprocessor_config.json: %s is not 3 numbers", h->dir, key);
        for (int i = 0; i < 3 && !st; i++) {
            double x;
            if ((st = ids__json_num(cJSON_GetArrayItem(a, i), NULL, -10, 10, 0, &x, err)))
                st = ids__err_prefix(err, st, "%s/preprocessor_config.json: %s[%d]", h->dir, key, i);
            (k ? sd : m)[i] = (float)x;
        }
    }
    cJSON_Delete(pp);
    if (!st) st = ids_gguf_writer_set_arr(gw, "clip.vision.image_mean", IDS_GGUF_FLOAT32, m, 3, err);
    if (!st) st = ids_gguf_writer_set_arr(gw, "clip.vision.image_std", IDS_GGUF_FLOAT32, sd, 3, err);
    return st;
}

static ids_status tower_keys(ids__hf *h, ids_gguf_writer *gw, const char *proj, const tower_hp *v, ids_err *err) {
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", "clip", err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_vision_encoder", true, err);
    if (!st) st = ids_gguf_writer_set_str(gw, "clip.projector_type", proj, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.image_size", (uint32_t)v->image, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.patch_size", (uint32_t)v->patch, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.embedding_length", (uint32_t)v->E, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.feed_forward_length", (uint32_t)v->F, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.projection_dim", (uint32_t)v->n_text, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.block_count", (uint32_t)v->L, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.attention.head_count", (uint32_t)v->H, err);
    if (!st) st = ids_gguf_writer_set_f32(gw, "clip.vision.attention.layer_norm_epsilon", (float)v->eps, err);
    return st;
}

/* A linear layer (weight [rows, cols], bias [rows]) as v.blk.L.NAME.{weight,bias}; the bias optional
 * when !bias_required. */
static ids_status vlin(ids__hf *h, ids_gguf_writer *gw, const char *const *pre, int l, const char *gn, const char *hn,
                       int64_t rows, int64_t cols, bool bias_required, ids_err *err) {
    char g[96], r[192];
    snprintf(g, sizeof g, "v.blk.%d.%s.weight", l, gn);
    snprintf(r, sizeof r, "%s.weight", hn);
    ids_status st = map(h, gw, g, pre, r, cols ? 2 : 1, (int64_t[2]){rows, cols}, true, err);
    snprintf(g, sizeof g, "v.blk.%d.%s.bias", l, gn);
    snprintf(r, sizeof r, "%s.bias", hn);
    return st ? st : map(h, gw, g, pre, r, 1, (int64_t[1]){rows}, bias_required, err);
}

/* ---- Gemma 3: SigLIP + Gemma3MultiModalProjector ---- */

static ids_status gemma3_vision(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    const cJSON *c = h->vision;
    tower_hp v;
    long long seq = 256;
    ids_status st; /* defaults: transformers' SiglipVisionConfig */
    if ((st = ids__hf_cfg_int(h, c, "hidden_size", 768, &v.E, err)) || (st = ids__hf_cfg_int(h, c, "intermediate_size", 3072, &v.F, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_hidden_layers", 12, &v.L, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_attention_heads", 12, &v.H, err)) ||
        (st = ids__hf_cfg_int(h, c, "image_size", 224, &v.image, err)) || (st = ids__hf_cfg_int(h, c, "patch_size", 16, &v.patch, err)) ||
        (st = ids__hf_cfg_num(h, c, "layer_norm_eps", 1e-6, &v.eps, err)) ||
        (st = ids__hf_cfg_int(h, text_cfg(h), "hidden_size", 2304, &v.n_text, err)) ||
        (st = ids__hf_cfg_int(h, h->config, "mm_tokens_per_image", 256, &seq, err)))
        return st;
    cJSON *pp = NULL;
    if ((st = ids__hf_json(h, "preprocessor_config.json", &pp, err)) && st != IDS_ERR_NOT_FOUND) return st;
    st = pp ? ids__json_int(pp, "image_seq_length", 1, 1 << 20, seq, &seq, err) : IDS_OK;
    if (st) st = ids__err_prefix(err, st, "%s/preprocessor_config.json", h->dir);
    cJSON_Delete(pp);
    const long long side = v.image / v.patch, per = (long long)(sqrt((double)seq) + 0.5);
    if (!st && (per * per != seq || side % per))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: %lld image rows (image_seq_length) do not pool a %lld x %lld patch grid",
                      h->dir, seq, side, side);
    if (st || (st = tower_keys(h, gw, "gemma3", &v, err)) || (st = put_mean_std(h, gw, 0.5f, NULL, NULL, err)) ||
        (st = ids_gguf_writer_set_bool(gw, "clip.use_gelu", true, err)))
        return st;
    if (side / per != 4 && (st = ids_gguf_writer_set_u32(gw, "clip.vision.projector.scale_factor", (uint32_t)(side / per), err)))
        return st;
    const int64_t E = v.E, P = v.patch;
    if ((st = map_as(h, gw, "v.patch_embd.weight", VT_PRE, "vision_model.embeddings.patch_embedding.weight", 4,
                     (int64_t[4]){E, 3, P, P}, true, 0, IDS_TYPE_F32, 0, err)) ||
        (st = map(h, gw, "v.patch_embd.bias", VT_PRE, "vision_model.embeddings.patch_embedding.bias", 1, (int64_t[1]){E}, true, err)) ||
        (st = map_as(h, gw, "v.position_embd.weight", VT_PRE, "vision_model.embeddings.position_embedding.weight", 2,
                     (int64_t[2]){side * side, E}, true, 0, IDS_TYPE_F32, 0, err)))
        return st;
    static const char *const lin[6][2] = {{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                                          {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"},
                                          {"ln1", "layer_norm1"}, {"ln2", "layer_norm2"}};
    for (int l = 0; l < v.L && !st; l++) {
        char b[96];
        for (int k = 0; k < 6 && !st; k++) {
            snprintf(b, sizeof b, "vision_model.encoder.layers.%d.%s", l, lin[k][1]);
            st = vlin(h, gw, VT_PRE, l, lin[k][0], b, E, k < 4 ? E : 0, true, err);
        }
        snprintf(b, sizeof b, "vision_model.encoder.layers.%d.mlp.fc1", l);
        if (!st) st = vlin(h, gw, VT_PRE, l, "ffn_up", b, v.F, E, true, err);
        snprintf(b, sizeof b, "vision_model.encoder.layers.%d.mlp.fc2", l);
        if (!st) st = vlin(h, gw, VT_PRE, l, "ffn_down", b, E, v.F, true, err);
    }
    if (!st) st = map(h, gw, "v.post_ln.weight", VT_PRE, "vision_model.post_layernorm.weight", 1, (int64_t[1]){E}, true, err);
    if (!st) st = map(h, gw, "v.post_ln.bias", VT_PRE, "vision_model.post_layernorm.bias", 1, (int64_t[1]){E}, true, err);
    if (!st) st = map_as(h, gw, "mm.soft_emb_norm.weight", PROJ_PRE, "mm_soft_emb_norm.weight", 1, (int64_t[1]){E}, true, 0,
                         IDS_TYPE_F32, 1.0f, err);
    if (!st) st = map_as(h, gw, "mm.input_projection.weight", PROJ_PRE, "mm_input_projection_weight", 2,
                         (int64_t[2]){E, v.n_text}, true, 0, IDS_TYPE_F16, 0, err);
    return st;
}

/* ---- InternVL: InternViT + mlp1 ---- */

/* The two layouts' names: OpenGVLab's (`internvl_chat`, InternVLChatModel) and transformers'
 * (`internvl`, InternVLForConditionalGeneration, from convert_internvl_weights_to_hf.py). */
typedef struct {
    const char *const *vpre, *const *ppre;
    const char *cls, *patch, *pos, *layer, *qkv, *q, *k, *v, *o, *qn, *kn, *ls1, *ls2, *ln1, *ln2, *mm0, *mm1, *mm3;
    const char *bias_key, *qk_key;
    long long def_E, def_F, def_L, def_H, def_image;
    bool def_bias, def_qk, def_rms;
} ivl_layout;

static const ivl_layout IVL_CHAT = {
    ROOT_PRE, ROOT_PRE, "vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding",
    "vision_model.embeddings.position_embedding", "vision_model.encoder.layers.%d.", "attn.qkv", NULL, NULL, NULL,
    "attn.proj", "attn.q_norm", "attn.k_norm", "ls1", "ls2", "norm1", "norm2", "mlp1.0", "mlp1.1", "mlp1.3", "qkv_bias",
    "qk_normalization", 3200, 12800, 48, 25, 224, false, true, true}; /* InternVisionConfig */

static const ivl_layout IVL_HF = {
    VT_PRE, PROJ_PRE, "embeddings.cls_token", "embeddings.patch_embeddings.projection", "embeddings.position_embeddings",
    "encoder.layer.%d.", NULL, "attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.projection_layer",
    "attention.q_norm", "attention.k_norm", "lambda_1", "lambda_2", "layernorm_before", "layernorm_after",
    "layer_norm", "linear_1", "linear_2", "attention_bias", "use_qk_norm", 1024, 4096, 24, 16, 448, false, false,
    false}; /* InternVLVisionConfig */

/* A number of the config that may be a list (InternVLVisionConfig's image_size / patch_size): its first. */
static ids_status first_int(const ids__hf *h, const cJSON *c, const char *key, long long def, long long *out, ids_err *err) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    if (cJSON_IsArray(x)) {
        ids_status st = ids__json_int(cJSON_GetArrayItem(x, 0), NULL, 1, 1 << 20, def, out, err);
        return st ? ids__err_prefix(err, st, "%s/config.json: %s[0]", h->dir, key) : IDS_OK;
    }
    return ids__hf_cfg_int(h, c, key, def, out, err);
}

static bool cfg_bool(const cJSON *c, const char *key, bool def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsBool(x) ? cJSON_IsTrue(x) : def;
}

/* Keys beyond the shared ones: activation, the pixel-shuffle factor, the tile range; the feature layer
 * must be the last (llama.cpp runs every block). */
static ids_status internvl_keys(ids__hf *h, ids_gguf_writer *gw, bool chat, long long *shuffle, ids_err *err) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(h->vision, "hidden_act");
    const char *a = cJSON_IsString(act) ? act->valuestring : "gelu";
    double ratio;
    long long sel, mn = 0, mx = 0;
    ids_status st;
    if (strcmp(a, "gelu") && strcmp(a, "silu"))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: vision hidden_act '%s' (gelu or silu)", h->dir, a);
    if ((st = ids__hf_cfg_num(h, h->config, "downsample_ratio", 0.5, &ratio, err))) return st;
    if ((st = ids__json_int(h->config, chat ? "select_layer" : "vision_feature_layer", -1000, 1000, -1, &sel, err)))
        return ids__err_prefix(err, st, "%s/config.json", h->dir);
    if (sel != -1)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: %s %lld (only -1, the last block, as llama.cpp runs)",
                        h->dir, chat ? "select_layer" : "vision_feature_layer", sel);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(h->config, "ps_version");
    if (chat && cJSON_IsString(ps) && strcmp(ps->valuestring, "v2"))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: ps_version '%s' (v2 only)", h->dir, ps->valuestring);
    *shuffle = (long long)(1.0 / ratio + 0.5);
    if (ratio <= 0 || fabs(1.0 / ratio - (double)*shuffle) > 1e-6)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: downsample_ratio %g is not 1 / an integer", h->dir, ratio);
    cJSON *pp = NULL;
    if (chat) {
        if ((st = ids__json_int(h->config, "min_dynamic_patch", 0, 4096, 0, &mn, err)) ||
            (st = ids__json_int(h->config, "max_dynamic_patch", 0, 4096, 0, &mx, err)))
            return ids__err_prefix(err, st, "%s/config.json", h->dir);
    } else if (!(st = ids__hf_json(h, "preprocessor_config.json", &pp, err))) {
        if ((st = ids__json_int(pp, "min_patches", 0, 4096, 0, &mn, err)) || (st = ids__json_int(pp, "max_patches", 0, 4096, 0, &mx, err)))
            st = ids__err_prefix(err, st, "%s/preprocessor_config.json", h->dir);
        cJSON_Delete(pp);
        if (st) return st;
    } else if (st != IDS_ERR_NOT_FOUND) {
        return st;
    }
    st = ids_gguf_writer_set_bool(gw, strcmp(a, "gelu") ? "clip.use_silu" : "clip.use_gelu", true, err);
    if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision.projector.scale_factor", (uint32_t)*shuffle, err);
    if (!st && mn > 0) st = ids_gguf_writer_set_u32(gw, "clip.vision.preproc_min_tiles", (uint32_t)mn, err);
    if (!st && mx > 0) st = ids_gguf_writer_set_u32(gw, "clip.vision.preproc_max_tiles", (uint32_t)mx, err);
    return st;
}

static ids_status internvl_block(ids__hf *h, ids_gguf_writer *gw, const ivl_layout *n, const tower_hp *v, int l,
                                 bool bias, bool qk, bool rms, ids_err *err) {
    char p[96], r[160], g[64];
    const int64_t E = v->E;
    snprintf(p, sizeof p, n->layer, l);
    ids_status st = IDS_OK;
    if (n->qkv) {
        static const char *const w[3] = {"attn_q.weight", "attn_k.weight", "attn_v.weight"};
        static const char *const b[3] = {"attn_q.bias", "attn_k.bias", "attn_v.bias"};
        char gw3[3][64], gb3[3][64];
        const char *wn[3], *bn[3];
        for (int k = 0; k < 3; k++) {
            snprintf(gw3[k], sizeof gw3[k], "v.blk.%d.%s", l, w[k]), wn[k] = gw3[k];
            snprintf(gb3[k], sizeof gb3[k], "v.blk.%d.%s", l, b[k]), bn[k] = gb3[k];
        }
        snprintf(r, sizeof r, "%s%s.weight", p, n->qkv);
        st = map_split(h, gw, wn, 3, n->vpre, r, 2, (int64_t[2]){3 * E, E}, err);
        snprintf(r, sizeof r, "%s%s.bias", p, n->qkv);
        if (!st && bias) st = map_split(h, gw, bn, 3, n->vpre, r, 1, (int64_t[1]){3 * E}, err);
    } else {
        const char *const hq[3] = {n->q, n->k, n->v}, *const gq[3] = {"attn_q", "attn_k", "attn_v"};
        for (int k = 0; k < 3 && !st; k++) {
            snprintf(r, sizeof r, "%s%s", p, hq[k]);
            st = vlin(h, gw, n->vpre, l, gq[k], r, E, E, bias, err);
        }
    }
    const char *const hn[7] = {n->o, n->ln1, n->ln2, n->ls1, n->ls2, n->qn, n->kn};
    const char *const gn[7] = {"attn_out", "ln1", "ln2", "ls1", "ls2", "attn_q_norm", "attn_k_norm"};
    for (int k = 0; k < 7 && !st; k++) {
        if (k >= 5 && !qk) break;
        snprintf(r, sizeof r, "%s%s", p, hn[k]);
        if (k == 0 || ((k == 1 || k == 2) && !rms)) {
            st = vlin(h, gw, n->vpre, l, gn[k], r, E, k == 0 ? E : 0, true, err);
        } else { /* a weight alone; the layer scales are stored without ".weight" */
            snprintf(g, sizeof g, "v.blk.%d.%s.weight", l, gn[k]);
            if (k < 3 || k >= 5) snprintf(r, sizeof r, "%s%s.weight", p, hn[k]);
            st = map(h, gw, g, n->vpre, r, 1, (int64_t[1]){E}, true, err);
        }
    }
    snprintf(r, sizeof r, "%smlp.fc1", p);
    if (!st) st = vlin(h, gw, n->vpre, l, "ffn_up", r, v->F, E, true, err);
    snprintf(r, sizeof r, "%smlp.fc2", p);
    if (!st) st = vlin(h, gw, n->vpre, l, "ffn_down", r, E, v->F, true, err);
    return st;
}

static ids_status internvl_vision(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    const bool chat = !strcmp(h->model_type, "internvl_chat");
    const ivl_layout *n = chat ? &IVL_CHAT : &IVL_HF;
    const cJSON *c = h->vision, *nt = cJSON_GetObjectItemCaseSensitive(c, "norm_type");
    tower_hp v;
    ids_status st;
    if ((st = ids__hf_cfg_int(h, c, "hidden_size", n->def_E, &v.E, err)) ||
        (st = ids__hf_cfg_int(h, c, "intermediate_size", n->def_F, &v.F, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_hidden_layers", n->def_L, &v.L, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_attention_heads", n->def_H, &v.H, err)) ||
        (st = first_int(h, c, "image_size", n->def_image, &v.image, err)) || (st = first_int(h, c, "patch_size", 14, &v.patch, err)) ||
        (st = ids__hf_cfg_num(h, c, "layer_norm_eps", 1e-6, &v.eps, err)) ||
        (st = ids__hf_cfg_int(h, text_cfg(h), "hidden_size", 4096, &v.n_text, err)))
        return st;
    const bool rms = cJSON_IsString(nt) ? !strcmp(nt->valuestring, "rms_norm") : n->def_rms;
    const bool bias = cfg_bool(c, n->bias_key, n->def_bias), qk = cfg_bool(c, n->qk_key, n->def_qk);
    long long s = 2;
    if ((st = tower_keys(h, gw, "internvl", &v, err)) ||
        (st = put_mean_std(h, gw, 0, (const float[3]){0.485f, 0.456f, 0.406f}, (const float[3]){0.229f, 0.224f, 0.225f}, err)) ||
        (st = internvl_keys(h, gw, chat, &s, err)))
        return st;
    const int64_t E = v.E, P = v.patch, np = (v.image / P) * (v.image / P) + 1, M = E * s * s, T = v.n_text;
    char r[128];
    snprintf(r, sizeof r, "%s.weight", n->patch);
    if (!st) st = map(h, gw, "v.patch_embd.weight", n->vpre, r, 4, (int64_t[4]){E, 3, P, P}, true, err);
    snprintf(r, sizeof r, "%s.bias", n->patch);
    if (!st) st = map(h, gw, "v.patch_embd.bias", n->vpre, r, 1, (int64_t[1]){E}, true, err);
    if (!st) st = map_as(h, gw, "v.class_embd", n->vpre, n->cls, 3, (int64_t[3]){1, 1, E}, true, 2, KEEP, 0, err);
    if (!st) st = map_as(h, gw, "v.position_embd.weight", n->vpre, n->pos, 3, (int64_t[3]){1, np, E}, true, 1, IDS_TYPE_F32, 0, err);
    for (int l = 0; l < v.L && !st; l++) st = internvl_block(h, gw, n, &v, l, bias, qk, rms, err);
    const char *const mm[3] = {n->mm0, n->mm1, n->mm3}, *const gmm[3] = {"mm.model.mlp.0", "mm.model.mlp.1", "mm.model.mlp.3"};
    const int64_t rows[3] = {M, T, T}, cols[3] = {0, M, T};
    for (int k = 0; k < 3 && !st; k++)
        for (int j = 0; j < 2 && !st; j++) {
            char g[64];
            snprintf(g, sizeof g, "%s.%s", gmm[k], j ? "bias" : "weight");
            snprintf(r, sizeof r, "%s.%s", mm[k], j ? "bias" : "weight");
            st = map(h, gw, g, n->ppre, r, j || !cols[k] ? 1 : 2, (int64_t[2]){rows[k], cols[k]}, true, err);
        }
    return st;
}

/* ---- Qwen3-VL: the merger tower with DeepStack ---- */

static ids_status qwen3vl_vision_keys(ids__hf *h, ids_gguf_writer *gw, tower_hp *v, const cJSON *ds, ids_err *err) {
    const cJSON *c = h->vision;
    long long npos, merge, tps;
    ids_status st; /* defaults: transformers' Qwen3VLVisionConfig */
    if ((st = ids__hf_cfg_int(h, c, "hidden_size", 1152, &v->E, err)) || (st = ids__hf_cfg_int(h, c, "intermediate_size", 4304, &v->F, err)) ||
        (st = ids__hf_cfg_int(h, c, "depth", 27, &v->L, err)) || (st = ids__hf_cfg_int(h, c, "num_heads", 16, &v->H, err)) ||
        (st = ids__hf_cfg_int(h, c, "patch_size", 16, &v->patch, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_position_embeddings", 2304, &npos, err)) ||
        (st = ids__hf_cfg_int(h, c, "spatial_merge_size", 2, &merge, err)) ||
        (st = ids__hf_cfg_int(h, c, "temporal_patch_size", 2, &tps, err)) ||
        (st = ids__hf_cfg_int(h, c, "out_hidden_size", 3584, &v->n_text, err)) ||
        (st = ids__hf_cfg_num(h, text_cfg(h), "rms_norm_eps", 1e-6, &v->eps, err)))
        return st;
    const long long side = (long long)(sqrt((double)npos) + 0.5);
    if (side * side != npos)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: num_position_embeddings %lld is not a square", h->dir, npos);
    if (tps != 2) return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: temporal_patch_size %lld (2 only)", h->dir, tps);
    if ((st = ids__hf_cfg_int(h, c, "image_size", side * v->patch, &v->image, err))) return st;
    long long text_E;
    if ((st = ids__hf_cfg_int(h, text_cfg(h), "hidden_size", 4096, &text_E, err))) return st;
    if (text_E != v->n_text)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: vision out_hidden_size %lld differs from the text hidden_size %lld",
                        h->dir, v->n_text, text_E);
    bool *flags = ids__hf_alloc(h, (size_t)v->L * sizeof *flags, err);
    if (!flags) return IDS_ERR_NOMEM;
    memset(flags, 0, (size_t)v->L * sizeof *flags);
    for (int k = 0; k < cJSON_GetArraySize(ds); k++) {
        long long x;
        if ((st = ids__json_int(cJSON_GetArrayItem(ds, k), NULL, 0, v->L - 1, -1, &x, err)))
            return ids__err_prefix(err, st, "%s/config.json: deepstack_visual_indexes[%d]", h->dir, k);
        flags[x] = true;
    }
    if ((st = tower_keys(h, gw, "qwen3vl_merger", v, err)) || (st = put_mean_std(h, gw, 0.5f, NULL, NULL, err)) ||
        (st = ids_gguf_writer_set_bool(gw, "clip.use_gelu", true, err)) ||
        (st = ids_gguf_writer_set_u32(gw, "clip.vision.spatial_merge_size", (uint32_t)merge, err)) ||
        (st = ids_gguf_writer_set_arr(gw, "clip.vision.is_deepstack_layers", IDS_GGUF_BOOL, flags, (uint64_t)v->L, err)))
        return st;
    return merge == 2 ? ids__hf_put_pixels(h, gw, err)
                      : ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: spatial_merge_size %lld (2 only)", h->dir, merge);
}

/* A merger (LayerNorm of `norm` wide, fc1 [4E, 4E], fc2 [T, 4E]) under GGUF names gn[0..2]. */
static ids_status qwen3vl_merger(ids__hf *h, ids_gguf_writer *gw, const char *hp, const char *const gn[3], int64_t norm,
                                 int64_t M, int64_t T, ids_err *err) {
    static const char *const hn[3] = {"norm", "linear_fc1", "linear_fc2"};
    const int64_t rows[3] = {norm, M, T}, cols[3] = {0, M, M};
    ids_status st = IDS_OK;
    for (int k = 0; k < 3 && !st; k++)
        for (int j = 0; j < 2 && !st; j++) {
            char g[64], r[128];
            snprintf(g, sizeof g, "%s.%s", gn[k], j ? "bias" : "weight");
            snprintf(r, sizeof r, "%s%s.%s", hp, hn[k], j ? "bias" : "weight");
            st = map(h, gw, g, VIS_PRE, r, j || !cols[k] ? 1 : 2, (int64_t[2]){rows[k], cols[k]}, true, err);
        }
    return st;
}

static ids_status qwen3vl_vision(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(h->vision, "deepstack_visual_indexes");
    tower_hp v;
    ids_status st = qwen3vl_vision_keys(h, gw, &v, ds, err);
    if (st) return st;
    const int64_t E = v.E, P = v.patch, M = 4 * E, T = v.n_text, side = v.image / v.patch;
    const ids__hf_weight *w;
    if ((st = ids__hf_get(h, VIS_PRE, "patch_embed.proj.weight", 5, (int64_t[5]){E, 3, 2, P, P}, true, &w, err))) return st;
    const size_t es = ids__hf_type(w->t->dtype) == IDS_TYPE_F32 ? 4 : 2, blk = (size_t)(P * P) * es;
    for (int t = 0; t < 2 && !st; t++) { /* Conv3D [E, 3, 2, P, P] -> two Conv2D kernels [E, 3, P, P] */
        unsigned char *o = ids__hf_alloc(h, (size_t)(E * 3) * blk, err);
        if (!o) return IDS_ERR_NOMEM;
        for (int64_t ec = 0; ec < E * 3; ec++)
            memcpy(o + (size_t)ec * blk, (const unsigned char *)w->t->data + ((size_t)ec * 2 + (size_t)t) * blk, blk);
        st = ids__hf_put(h, gw, t ? "v.patch_embd.weight.1" : "v.patch_embd.weight", w, o, 4, (int64_t[4]){E, 3, P, P}, err);
    }
    if (!st) st = map(h, gw, "v.patch_embd.bias", VIS_PRE, "patch_embed.proj.bias", 1, (int64_t[1]){E}, true, err);
    if (!st) st = map_as(h, gw, "v.position_embd.weight", VIS_PRE, "pos_embed.weight", 2, (int64_t[2]){side * side, E}, true,
                         0, IDS_TYPE_F32, 0, err);
    static const char *const lin[6][2] = {{"attn_qkv", "attn.qkv"}, {"attn_out", "attn.proj"}, {"ffn_up", "mlp.linear_fc1"},
                                          {"ffn_down", "mlp.linear_fc2"}, {"ln1", "norm1"}, {"ln2", "norm2"}};
    const int64_t rows[6] = {3 * E, E, v.F, E, E, E}, cols[6] = {E, E, E, v.F, 0, 0};
    for (int l = 0; l < v.L && !st; l++)
        for (int k = 0; k < 6 && !st; k++) {
            char r[96];
            snprintf(r, sizeof r, "blocks.%d.%s", l, lin[k][1]);
            st = vlin(h, gw, VIS_PRE, l, lin[k][0], r, rows[k], cols[k], true, err);
        }
    static const char *const main_names[3] = {"v.post_ln", "mm.0", "mm.2"};
    if (!st) st = qwen3vl_merger(h, gw, "merger.", main_names, E, M, T, err);
    for (int k = 0; k < cJSON_GetArraySize(ds) && !st; k++) {
        long long L;
        ids__json_int(cJSON_GetArrayItem(ds, k), NULL, 0, v.L - 1, -1, &L, NULL);
        char hp[64], g[3][48];
        snprintf(hp, sizeof hp, "deepstack_merger_list.%d.", k);
        snprintf(g[0], sizeof g[0], "v.deepstack.%lld.norm", L);
        snprintf(g[1], sizeof g[1], "v.deepstack.%lld.fc1", L);
        snprintf(g[2], sizeof g[2], "v.deepstack.%lld.fc2", L);
        const char *const gn[3] = {g[0], g[1], g[2]};
        st = qwen3vl_merger(h, gw, hp, gn, M, M, T, err);
    }
    return st;
}

/* ---- the table ------------------------------------------------------------------------------- */

static const ids__hf_family FAMILIES[] = {
    {"gemma3", gemma3_text, gemma3_vision},
    {"internvl_chat", internvl_text, internvl_vision},
    {"internvl", internvl_text, internvl_vision},
    {"qwen3_vl", qwen3vl_text, qwen3vl_vision},
};

const ids__hf_family *ids__hf_family_of(const char *model_type) {
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        if (!strcmp(FAMILIES[i].model_type, model_type)) return &FAMILIES[i];
    return NULL;
}
