/* Llama-3.2-Vision (`mllama`) folders as GGUF views. llama.cpp has no mllama architecture, so the
 * names are this project's, in llama.cpp's style:
 * - text (architecture "mllama"): the Llama keys and tensors (Q/K rows permuted as the converter does
 *   for Llama), rope_freqs.weight from rope_scaling (rope_type llama3: the converter's frequency
 *   divisors), mllama.attention.cross_attention_layers, and at those layers
 *   blk.N.cross_attn_{q,k,v,o}.weight, cross_attn_{q,k}_norm.weight, cross_attn_attn_gate,
 *   cross_attn_mlp_gate (no rotation there, so no permutation); token_embd keeps HF's 8 extra rows
 *   (<|image|> is the first of them), output.weight has vocab_size rows;
 * - vision (projector "mllama"): v.blk.0.. the local blocks, then the global ones with
 *   v.blk.N.gate_attn / gate_ffn; v.class_embd, v.position_embd.weight and .gate,
 *   v.tile_position_embd.weight, v.pre_tile_position_embd.weight / .gate, v.post_tile_... /
 *   .gate, v.pre_ln, v.post_ln, mm.0 (the multi_modal_projector); keys clip.vision.max_tiles,
 *   clip.vision.global_block_count, clip.vision.intermediate_layers. */
#include "formats/hf.h"

#include <cjson/cJSON.h>
#include <math.h>

static const char *const ML_LM[] = {"language_model.model.", "model.language_model.", NULL};
static const char *const ML_HEAD[] = {"language_model.lm_head.", "lm_head.", NULL};
static const char *const ML_VIS[] = {"vision_model.", "model.vision_model.", NULL};
static const char *const ML_PROJ[] = {"multi_modal_projector.", "model.multi_modal_projector.", NULL};

/* An array of small non-negative ints of config.json (cross_attention_layers, ...), each < lim. */
static ids_status int_list(const ids__hf *h, const cJSON *obj, const char *key, long long lim, int32_t *out, int cap,
                           int *n, ids_err *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    *n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    if (*n < 1 || *n > cap)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: '%s' is missing or not 1..%d numbers", h->dir, key, cap);
    for (int i = 0; i < *n; i++) {
        long long x;
        ids_status st = ids__json_int(cJSON_GetArrayItem(a, i), NULL, 0, lim - 1, -1, &x, err);
        if (st) return ids__err_prefix(err, st, "%s/config.json: %s[%d]", h->dir, key, i);
        if (i && x <= out[i - 1])
            return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: %s is not ascending at [%d]", h->dir, key, i);
        out[i] = (int32_t)x;
    }
    return IDS_OK;
}

typedef struct {
    long long E, L, H, KV, F, ctx, vocab, hd;
    double eps, theta;
    int32_t xl[128];
    int n_xl;
} ml_text;

static ids_status text_hp(const ids__hf *h, ml_text *t, ids_err *err) {
    const cJSON *c = h->text; /* defaults: transformers' MllamaTextConfig */
    ids_status st;
    if ((st = ids__hf_cfg_int(h, c, "hidden_size", 4096, &t->E, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_hidden_layers", 40, &t->L, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_attention_heads", 32, &t->H, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_key_value_heads", 8, &t->KV, err)) ||
        (st = ids__hf_cfg_int(h, c, "intermediate_size", 14336, &t->F, err)) ||
        (st = ids__hf_cfg_int(h, c, "max_position_embeddings", 131072, &t->ctx, err)) ||
        (st = ids__hf_cfg_int(h, c, "vocab_size", 128256, &t->vocab, err)) ||
        (st = ids__hf_cfg_num(h, c, "rms_norm_eps", 1e-5, &t->eps, err)) ||
        (st = ids__hf_cfg_num(h, c, "rope_theta", 500000, &t->theta, err)))
        return st;
    if (t->E % t->H || t->H % t->KV || t->L > 4096)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: hidden_size %lld, %lld heads, %lld KV heads do not divide",
                        h->dir, t->E, t->H, t->KV);
    t->hd = t->E / t->H;
    return int_list(h, c, "cross_attention_layers", t->L, t->xl, 128, &t->n_xl, err);
}

/* rope_scaling: none, or rope_type llama3 as rope_freqs.weight (1 / the factor HF multiplies each
 * frequency by; llama.cpp's converter writes the same divisors for Llama 3.1). */
static ids_status rope_freqs(ids__hf *h, ids_gguf_writer *gw, const ml_text *t, ids_err *err) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(h->text, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) return IDS_OK;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "llama3"))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: rope_scaling.rope_type '%s' is not supported (llama3)",
                        h->dir, cJSON_IsString(ty) ? ty->valuestring : "?");
    double f, lo, hi, old;
    ids_status st;
    if ((st = ids__hf_cfg_num(h, rs, "factor", 8, &f, err)) || (st = ids__hf_cfg_num(h, rs, "low_freq_factor", 1, &lo, err)) ||
        (st = ids__hf_cfg_num(h, rs, "high_freq_factor", 4, &hi, err)) ||
        (st = ids__hf_cfg_num(h, rs, "original_max_position_embeddings", 8192, &old, err)))
        return st;
    if (!(f > 0) || !(lo > 0) || !(hi > lo))
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: rope_scaling factor %g, low_freq_factor %g, "
                        "high_freq_factor %g are not usable", h->dir, f, lo, hi);
    const int n = (int)(t->hd / 2);
    float *d = ids__hf_alloc(h, (size_t)n * sizeof *d, err);
    if (!d) return IDS_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const double inv = pow(t->theta, -2.0 * i / (double)t->hd), wl = 2 * M_PI / inv;
        if (wl < old / hi) d[i] = 1.0f;
        else if (wl > old / lo) d[i] = (float)f;
        else {
            const double s = (old / wl - lo) / (hi - lo);
            d[i] = (float)(1.0 / ((1 - s) / f + s));
        }
    }
    return ids__gguf_writer_add_tensor_ref(gw, "rope_freqs.weight", IDS_TYPE_F32, 1, (int64_t[4]){n, 1, 1, 1}, d, err);
}

static ids_status text_keys(ids__hf *h, ids_gguf_writer *gw, const ml_text *t, ids_err *err) {
    const char *base = strrchr(h->dir, '/');
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", "mllama", err);
    if (!st) st = ids_gguf_writer_set_str(gw, "general.name", base ? base + 1 : h->dir, err);
#define U32(key, v) if (!st) st = ids_gguf_writer_set_u32(gw, "mllama." key, (uint32_t)(v), err)
    U32("block_count", t->L);
    U32("context_length", t->ctx);
    U32("embedding_length", t->E);
    U32("feed_forward_length", t->F);
    U32("attention.head_count", t->H);
    U32("attention.head_count_kv", t->KV);
    U32("rope.dimension_count", t->hd);
    U32("vocab_size", t->vocab);
#undef U32
    if (!st) st = ids_gguf_writer_set_f32(gw, "mllama.attention.layer_norm_rms_epsilon", (float)t->eps, err);
    if (!st) st = ids_gguf_writer_set_f32(gw, "mllama.rope.freq_base", (float)t->theta, err);
    if (!st) st = ids_gguf_writer_set_arr(gw, "mllama.attention.cross_attention_layers", IDS_GGUF_INT32, t->xl, t->n_xl, err);
    return st;
}

static ids_status text_block(ids__hf *h, ids_gguf_writer *gw, const ml_text *t, int l, bool cross, ids_err *err) {
    const int64_t E = t->E, Q = t->H * t->hd, KV = t->KV * t->hd, F = t->F, HD = t->hd;
    char g[96], r[128];
    ids_status st = IDS_OK;
#define M(gn, hn, nd, s0, s1)                                                                        \
    if (!st) {                                                                                       \
        snprintf(g, sizeof g, "blk.%d.%s", l, gn), snprintf(r, sizeof r, "layers.%d.%s", l, hn);     \
        st = ids__hf_map1(h, gw, g, ML_LM, r, nd, (const int64_t[2]){s0, s1}, true, err);            \
    }
    M("attn_norm.weight", "input_layernorm.weight", 1, E, 0);
    M("ffn_norm.weight", "post_attention_layernorm.weight", 1, E, 0);
    M("ffn_gate.weight", "mlp.gate_proj.weight", 2, F, E);
    M("ffn_up.weight", "mlp.up_proj.weight", 2, F, E);
    M("ffn_down.weight", "mlp.down_proj.weight", 2, E, F);
    if (cross) {
        M("cross_attn_q.weight", "cross_attn.q_proj.weight", 2, Q, E);
        M("cross_attn_k.weight", "cross_attn.k_proj.weight", 2, KV, E);
        M("cross_attn_v.weight", "cross_attn.v_proj.weight", 2, KV, E);
        M("cross_attn_o.weight", "cross_attn.o_proj.weight", 2, E, Q);
        M("cross_attn_q_norm.weight", "cross_attn.q_norm.weight", 1, HD, 0);
        M("cross_attn_k_norm.weight", "cross_attn.k_norm.weight", 1, HD, 0);
        M("cross_attn_attn_gate", "cross_attn_attn_gate", 1, 1, 0);
        M("cross_attn_mlp_gate", "cross_attn_mlp_gate", 1, 1, 0);
        return st;
    }
    M("attn_v.weight", "self_attn.v_proj.weight", 2, KV, E);
    M("attn_output.weight", "self_attn.o_proj.weight", 2, E, Q);
#undef M
    for (int k = 0; k < 2 && !st; k++) {
        snprintf(g, sizeof g, "blk.%d.attn_%c.weight", l, k ? 'k' : 'q');
        snprintf(r, sizeof r, "layers.%d.self_attn.%c_proj.weight", l, k ? 'k' : 'q');
        st = ids__hf_map_permuted(h, gw, g, ML_LM, r, k ? KV : Q, E, (int)(k ? t->KV : t->H), err);
    }
    return st;
}

static ids_status build_text(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    ml_text t;
    ids_status st = text_hp(h, &t, err);
    if (st) return st;
    const ids__hf_weight *emb = ids__hf_find(h, ML_LM, "embed_tokens.weight");
    if (!emb)
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s/%s: tensor '%sembed_tokens.weight' is missing", h->dir,
                        h->index_name ? h->index_name : "model.safetensors", ids__hf_spelling(h, ML_LM));
    const int64_t rows = emb->t->ndim == 2 ? emb->t->shape[0] : 0; /* vocab_size + 8 in the published files */
    if (rows < t.vocab)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s' has %lld rows, fewer than vocab_size %lld", h->dir,
                        emb->name, (long long)rows, t.vocab);
    if ((st = text_keys(h, gw, &t, err)) || (st = ids__hf_tokenizer(h, gw, rows, err))) return st;
    if ((st = ids__hf_map1(h, gw, "token_embd.weight", ML_LM, "embed_tokens.weight", 2, (int64_t[2]){rows, t.E}, true, err)))
        return st;
    if ((st = rope_freqs(h, gw, &t, err))) return st;
    for (int l = 0, x = 0; l < t.L && !st; l++) {
        const bool cross = x < t.n_xl && t.xl[x] == l;
        x += cross;
        st = text_block(h, gw, &t, l, cross, err);
    }
    if (!st) st = ids__hf_map1(h, gw, "output_norm.weight", ML_LM, "norm.weight", 1, (int64_t[1]){t.E}, true, err);
    if (!st) st = ids__hf_map1(h, gw, "output.weight", ML_HEAD, "weight", 2, (int64_t[2]){t.vocab, t.E}, true, err);
    return st;
}

/* ---- vision ------------------------------------------------------------------------------- */

typedef struct {
    long long E, H, F, L, GL, image, patch, tiles, out, n_text;
    double eps;
    int32_t inter[64];
    int n_inter;
} ml_vis;

/* supported_aspect_ratios, when given, must be HF's enumeration for max_num_tiles (the ids depend on it). */
static ids_status check_ratios(const ids__hf *h, const ml_vis *v, ids_err *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(h->vision, "supported_aspect_ratios");
    if (!a) return IDS_OK;
    int k = 0;
    bool ok = cJSON_IsArray(a);
    for (int w = 1; ok && w <= v->tiles; w++)
        for (int t = 1; ok && t <= v->tiles; t++) {
            if (w * t > v->tiles) continue;
            const cJSON *p = cJSON_GetArrayItem(a, k++);
            ok = cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2 && cJSON_GetArrayItem(p, 0)->valuedouble == w &&
                 cJSON_GetArrayItem(p, 1)->valuedouble == t;
        }
    if (!ok || cJSON_GetArraySize(a) != k)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: supported_aspect_ratios is not every (w, h) with "
                        "w * h <= max_num_tiles %lld in HF's order", h->dir, v->tiles);
    return IDS_OK;
}

static ids_status vis_hp(const ids__hf *h, ml_vis *v, ids_err *err) {
    const cJSON *c = h->vision; /* defaults: transformers' MllamaVisionConfig */
    ids_status st;
    if ((st = ids__hf_cfg_int(h, c, "hidden_size", 1280, &v->E, err)) ||
        (st = ids__hf_cfg_int(h, c, "attention_heads", 16, &v->H, err)) ||
        (st = ids__hf_cfg_int(h, c, "intermediate_size", 5120, &v->F, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_hidden_layers", 32, &v->L, err)) ||
        (st = ids__hf_cfg_int(h, c, "num_global_layers", 8, &v->GL, err)) ||
        (st = ids__hf_cfg_int(h, c, "image_size", 448, &v->image, err)) ||
        (st = ids__hf_cfg_int(h, c, "patch_size", 14, &v->patch, err)) ||
        (st = ids__hf_cfg_int(h, c, "max_num_tiles", 4, &v->tiles, err)) ||
        (st = ids__hf_cfg_num(h, c, "norm_eps", 1e-5, &v->eps, err)) ||
        (st = ids__hf_cfg_int(h, h->text, "hidden_size", 4096, &v->n_text, err)))
        return st;
    if ((st = int_list(h, c, "intermediate_layers_indices", v->L + 1, v->inter, 64, &v->n_inter, err))) return st;
    if ((st = ids__hf_cfg_int(h, c, "vision_output_dim", v->E * (1 + v->n_inter), &v->out, err))) return st;
    if (v->out != v->E * (1 + v->n_inter))
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: vision_output_dim %lld is not hidden_size %lld times 1 + "
                        "%d intermediate layers", h->dir, v->out, v->E, v->n_inter);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(c, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu")))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/config.json: vision hidden_act is not 'gelu'", h->dir);
    if (v->image % v->patch || v->E % v->H || v->tiles > 64 || v->L + v->GL > 4096)
        return ids__err(err, IDS_ERR_FORMAT, "%s/config.json: image_size %lld, patch_size %lld, hidden_size %lld, "
                        "%lld heads, max_num_tiles %lld do not fit", h->dir, v->image, v->patch, v->E, v->H, v->tiles);
    return check_ratios(h, v, err);
}

static ids_status vis_keys(ids__hf *h, ids_gguf_writer *gw, const ml_vis *v, ids_err *err) {
    ids_status st = ids_gguf_writer_set_str(gw, "general.architecture", "clip", err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.has_vision_encoder", true, err);
    if (!st) st = ids_gguf_writer_set_str(gw, "clip.projector_type", "mllama", err);
    if (!st) st = ids_gguf_writer_set_bool(gw, "clip.use_gelu", true, err);
#define U32(key, x) if (!st) st = ids_gguf_writer_set_u32(gw, "clip.vision." key, (uint32_t)(x), err)
    U32("image_size", v->image);
    U32("patch_size", v->patch);
    U32("embedding_length", v->E);
    U32("feed_forward_length", v->F);
    U32("projection_dim", v->n_text);
    U32("block_count", v->L + v->GL);
    U32("global_block_count", v->GL);
    U32("max_tiles", v->tiles);
    U32("attention.head_count", v->H);
#undef U32
    if (!st) st = ids_gguf_writer_set_f32(gw, "clip.vision.attention.layer_norm_epsilon", (float)v->eps, err);
    if (!st) st = ids_gguf_writer_set_arr(gw, "clip.vision.intermediate_layers", IDS_GGUF_INT32, v->inter, v->n_inter, err);
    if (!st) st = ids__hf_put_norm(h, gw, err);
    return st;
}

static ids_status vis_block(ids__hf *h, ids_gguf_writer *gw, const ml_vis *v, int l, ids_err *err) {
    const bool global = l >= v->L;
    const int k = global ? (int)(l - v->L) : l;
    const int64_t E = v->E, F = v->F;
    static const char *const nm[10][2] = {
        {"attn_q.weight", "self_attn.q_proj.weight"}, {"attn_k.weight", "self_attn.k_proj.weight"},
        {"attn_v.weight", "self_attn.v_proj.weight"}, {"attn_out.weight", "self_attn.o_proj.weight"},
        {"ffn_up.weight", "mlp.fc1.weight"}, {"ffn_up.bias", "mlp.fc1.bias"}, {"ffn_down.weight", "mlp.fc2.weight"},
        {"ffn_down.bias", "mlp.fc2.bias"}, {"gate_attn", "gate_attn"}, {"gate_ffn", "gate_ffn"}};
    const int64_t shp[10][2] = {{E, E}, {E, E}, {E, E}, {E, E}, {F, E}, {F, 0}, {E, F}, {E, 0}, {1, 0}, {1, 0}};
    ids_status st = IDS_OK;
    char g[96], r[160];
    for (int i = 0; i < (global ? 10 : 8) && !st; i++) {
        snprintf(g, sizeof g, "v.blk.%d.%s", l, nm[i][0]);
        snprintf(r, sizeof r, "%s.layers.%d.%s", global ? "global_transformer" : "transformer", k, nm[i][1]);
        st = ids__hf_map1(h, gw, g, ML_VIS, r, shp[i][1] ? 2 : 1, shp[i], true, err);
    }
    for (int n = 1; n <= 2 && !st; n++)
        for (int j = 0; j < 2 && !st; j++) {
            snprintf(g, sizeof g, "v.blk.%d.ln%d.%s", l, n, j ? "bias" : "weight");
            snprintf(r, sizeof r, "%s.layers.%d.%s.%s", global ? "global_transformer" : "transformer", k,
                     n == 1 ? "input_layernorm" : "post_attention_layernorm", j ? "bias" : "weight");
            st = ids__hf_map1(h, gw, g, ML_VIS, r, 1, (int64_t[1]){E}, true, err);
        }
    return st;
}

static ids_status build_vision(ids__hf *h, ids_gguf_writer *gw, ids_err *err) {
    ml_vis v;
    ids_status st = vis_hp(h, &v, err);
    if (st || (st = vis_keys(h, gw, &v, err))) return st;
    const int64_t E = v.E, P = v.patch, NP = (v.image / v.patch) * (v.image / v.patch) + 1;
    /* the aspect-ratio tables have one row per supported ratio plus row 0 (no image) */
    int64_t n_ratio = 0;
    for (int w = 1; w <= v.tiles; w++) n_ratio += v.tiles / w;
    static const char *const tab[8][2] = {
        {"v.class_embd", "class_embedding"}, {"v.position_embd.weight", "gated_positional_embedding.embedding"},
        {"v.position_embd.gate", "gated_positional_embedding.gate"},
        {"v.tile_position_embd.weight", "gated_positional_embedding.tile_embedding.weight"},
        {"v.pre_tile_position_embd.weight", "pre_tile_positional_embedding.embedding.weight"},
        {"v.pre_tile_position_embd.gate", "pre_tile_positional_embedding.gate"},
        {"v.post_tile_position_embd.weight", "post_tile_positional_embedding.embedding.weight"},
        {"v.post_tile_position_embd.gate", "post_tile_positional_embedding.gate"}};
    const int64_t shp[8][2] = {{E, 0}, {NP, E}, {1, 0}, {n_ratio + 1, v.tiles * NP * E}, {n_ratio + 1, v.tiles * E},
                               {1, 0}, {n_ratio + 1, v.tiles * E}, {1, 0}};
    if ((st = ids__hf_map1(h, gw, "v.patch_embd.weight", ML_VIS, "patch_embedding.weight", 4, (int64_t[4]){E, 3, P, P},
                           true, err)))
        return st;
    for (int i = 0; i < 8 && !st; i++) st = ids__hf_map1(h, gw, tab[i][0], ML_VIS, tab[i][1], shp[i][1] ? 2 : 1, shp[i], true, err);
    static const char *const ln[4][2] = {{"v.pre_ln.weight", "layernorm_pre.weight"}, {"v.pre_ln.bias", "layernorm_pre.bias"},
                                         {"v.post_ln.weight", "layernorm_post.weight"}, {"v.post_ln.bias", "layernorm_post.bias"}};
    for (int i = 0; i < 4 && !st; i++) st = ids__hf_map1(h, gw, ln[i][0], ML_VIS, ln[i][1], 1, (int64_t[1]){E}, true, err);
    for (int l = 0; l < v.L + v.GL && !st; l++) st = vis_block(h, gw, &v, l, err);
    if (!st) st = ids__hf_map1(h, gw, "mm.0.weight", ML_PROJ, "weight", 2, (int64_t[2]){v.n_text, v.out}, true, err);
    if (!st) st = ids__hf_map1(h, gw, "mm.0.bias", ML_PROJ, "bias", 1, (int64_t[1]){v.n_text}, true, err);
    return st;
}

ids_status ids__hf_build_mllama(ids__hf *h, ids_hf_part part, ids_gguf_writer *gw, ids_err *err) {
    return part == IDS_HF_TEXT ? build_text(h, gw, err) : build_vision(h, gw, err);
}
