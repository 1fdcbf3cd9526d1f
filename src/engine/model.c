/* Decoder model loading: hyper-parameters and weight references (weights stay mmapped in their
 * stored format; only norms and biases are converted to F32 at load). */
#include "idscope/engine.h"
#include "engine/lm.h"
#include "engine/ops.h"

static ids_status get_u32_opt(const ids_gguf *g, const char *arch, const char *key, uint32_t def,
                              uint32_t *out, ids_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    ids_status st = ids_gguf_get_u32(g, k, out, err);
    if (st == IDS_ERR_NOT_FOUND) {
        *out = def;
        return IDS_OK;
    }
    return st;
}

static ids_status get_f32_opt(const ids_gguf *g, const char *arch, const char *key, float def,
                              float *out, ids_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    ids_status st = ids_gguf_get_f32(g, k, out, err);
    if (st == IDS_ERR_NOT_FOUND) {
        *out = def;
        return IDS_OK;
    }
    return st;
}

static ids_status want_tensor(const ids_model *m, const char *name, int64_t ne0, int64_t ne1,
                              bool required, const ids_tensor **out, ids_err *err) {
    return ids__want_tensor(m->g, name, ne0, ne1, required, out, err);
}

static ids_status load_vec(ids_model *m, const char *name, int64_t n, bool required, float **out,
                           ids_err *err) {
    return ids__load_vec(m->g, name, n, required, out, err);
}

void ids_model_free(ids_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int i = 0; i < m->hp.n_layer; i++) {
            ids_layer_w *L = &m->layers[i];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bq);
            free(L->bk);
            free(L->bv);
            free(L->bo);
            free(L->q_norm);
            free(L->k_norm);
            free(L->post_attn_norm);
            free(L->post_ffn_norm);
        }
        free(m->layers);
    }
    free(m->output_norm);
    ids__packs_free(m->packs);
    free(m->hp.swa_layers);
    free(m->rope_ff);
    ids_tokenizer_free(m->tok);
    ids_gguf_close(m->g);
    free(m);
}

/* Qwen2-VL's M-RoPE: the four rotary sections (temporal, height, width, unused). */
static ids_status load_mrope_sections(ids_model *m, const char *arch, ids_err *err) {
    ids_hparams *hp = &m->hp;
    const ids_gguf_value *sec;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.dimension_sections", arch);
    ids_status st = ids_gguf_get_arr(m->g, key, -1, &sec, err);
    if (st) return st;
    int sum = 0;
    for (uint64_t i = 0; i < 4; i++) {
        int64_t x = 0;
        if (i < sec->v.arr.n && ids_gguf_arr_i64(sec, i, &x) != IDS_OK) x = -1;
        if (x < 0 || x > 4096)
            return ids__err(err, IDS_ERR_FORMAT, "%s: %s[%llu] = %lld is not a valid section", ids_gguf_path(m->g),
                            key, (unsigned long long)i, (long long)x);
        hp->rope_sections[i] = (int)x;
        sum += (int)x;
    }
    if (sum <= 0) return ids__err(err, IDS_ERR_FORMAT, "%s: %s sums to %d", ids_gguf_path(m->g), key, sum);
    return IDS_OK;
}

/* Architecture, sizes, rotary and norm settings (checked for consistency), vocabulary size. */
static ids_status load_hparams(ids_model *m, ids_err *err) {
    const char *path = ids_gguf_path(m->g), *arch;
    ids_status st = ids_gguf_get_str(m->g, "general.architecture", &arch, err);
    if (st) return st;
    ids_hparams *hp = &m->hp;
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    if (!strcmp(arch, "llama") || !strcmp(arch, "mllama")) hp->rope_mode = IDS_ROPE_NORM;
    else if (!strcmp(arch, "qwen2")) hp->rope_mode = IDS_ROPE_NEOX;
    else if (!strcmp(arch, "qwen2vl")) hp->rope_mode = IDS_ROPE_MROPE;
    else if (!strcmp(arch, "gemma3")) hp->rope_mode = IDS_ROPE_NEOX;
    else if (!strcmp(arch, "qwen3vl")) hp->rope_mode = IDS_ROPE_IMROPE, hp->qk_norm = true;
    else
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported by the "
                        "decoder (supported: llama, qwen2, qwen2vl, qwen3vl, gemma3, mllama)", path, arch);
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot, n_ctx;
    char key[128];
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    if ((st = ids_gguf_get_u32(m->g, key, &n_embd, err))) return st;
    snprintf(key, sizeof key, "%s.block_count", arch);
    if ((st = ids_gguf_get_u32(m->g, key, &n_layer, err))) return st;
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    if ((st = ids_gguf_get_u32(m->g, key, &n_head, err))) return st;
    if ((st = get_u32_opt(m->g, arch, "attention.head_count_kv", n_head, &n_head_kv, err))) return st;
    if ((st = get_u32_opt(m->g, arch, "context_length", 4096, &n_ctx, err))) return st;
    if (n_embd == 0 || n_layer == 0 || n_head == 0 || n_head_kv == 0 || n_head % n_head_kv ||
        n_embd % n_head || n_layer > 4096 || n_embd > (1u << 20))
        return ids__err(err, IDS_ERR_FORMAT, "%s: inconsistent hyper-parameters: n_embd %u, n_layer %u, "
                        "n_head %u, n_head_kv %u", path, n_embd, n_layer, n_head, n_head_kv);
    if ((st = get_u32_opt(m->g, arch, "attention.key_length", n_embd / n_head, &head_dim, err))) return st;
    if ((st = get_u32_opt(m->g, arch, "rope.dimension_count", head_dim, &n_rot, err))) return st;
    if (n_rot > head_dim || n_rot % 2 || head_dim == 0)
        return ids__err(err, IDS_ERR_FORMAT, "%s: rope.dimension_count %u does not fit head size %u",
                        path, n_rot, head_dim);
    if ((st = get_f32_opt(m->g, arch, "rope.freq_base", 10000.0f, &hp->rope_base, err))) return st;
    if ((hp->rope_mode == IDS_ROPE_MROPE || hp->rope_mode == IDS_ROPE_IMROPE) && (st = load_mrope_sections(m, arch, err)))
        return st;
    uint32_t n_ds = 0;
    if ((st = get_u32_opt(m->g, arch, "n_deepstack_layers", 0, &n_ds, err))) return st;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if ((st = ids_gguf_get_f32(m->g, key, &hp->rms_eps, err))) return st;
    const ids_tensor *te = ids_gguf_find_tensor(m->g, "token_embd.weight");
    if (!te) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: tensor 'token_embd.weight' is missing", path);
    hp->n_vocab = hp->n_vocab_embd = (int)te->ne[1];
    const ids_tensor *tff = ids_gguf_find_tensor(m->g, "blk.0.ffn_up.weight");
    if ((st = get_u32_opt(m->g, arch, "feed_forward_length", tff ? (uint32_t)tff->ne[1] : 0, &n_ff, err)))
        return st;
    hp->n_embd = (int)n_embd;
    hp->n_layer = (int)n_layer;
    hp->n_head = (int)n_head;
    hp->n_head_kv = (int)n_head_kv;
    hp->head_dim = (int)head_dim;
    hp->n_rot = (int)n_rot;
    hp->n_ff = (int)n_ff;
    hp->n_ctx_train = (int)n_ctx;
    if (n_ds > n_layer)
        return ids__err(err, IDS_ERR_FORMAT, "%s: %s.n_deepstack_layers %u exceeds the %u blocks", path, arch, n_ds,
                        n_layer);
    hp->n_deepstack = (int)n_ds;
    if (!strcmp(arch, "gemma3")) return ids__gemma3_hparams(m, err);
    if (!strcmp(arch, "mllama")) return ids__mllama_hparams(m, err);
    return IDS_OK;
}

/* One decoder block's weights (shapes checked) and its norms and optional biases in F32. */
static ids_status load_layer(ids_model *m, int l, ids_err *err) {
    const ids_hparams *hp = &m->hp;
    const int64_t n_embd = hp->n_embd, n_ff = hp->n_ff;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    ids_layer_w *L = &m->layers[l];
    ids_status st;
    char nm[96];
#define T(field, suffix, ne0, ne1)                                                         \
    snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix);                                       \
    if ((st = want_tensor(m, nm, ne0, ne1, true, &L->field, err))) return st;
#define V(field, suffix, n, req)                                                           \
    snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix);                                       \
    if ((st = load_vec(m, nm, n, req, &L->field, err))) return st;
    if (ids__model_is_xattn(hp, l)) {
        L->xattn = true;
        T(wq, "cross_attn_q.weight", n_embd, q_dim);
        T(wk, "cross_attn_k.weight", n_embd, kv_dim);
        T(wv, "cross_attn_v.weight", n_embd, kv_dim);
        T(wo, "cross_attn_o.weight", q_dim, n_embd);
        V(q_norm, "cross_attn_q_norm.weight", hp->head_dim, true);
        V(k_norm, "cross_attn_k_norm.weight", hp->head_dim, true);
        if ((st = ids__mllama_gates(m, l, err))) return st;
    } else {
        T(wq, "attn_q.weight", n_embd, q_dim);
        T(wk, "attn_k.weight", n_embd, kv_dim);
        T(wv, "attn_v.weight", n_embd, kv_dim);
        T(wo, "attn_output.weight", q_dim, n_embd);
    }
    T(wgate, "ffn_gate.weight", n_embd, n_ff);
    T(wup, "ffn_up.weight", n_embd, n_ff);
    T(wdown, "ffn_down.weight", n_ff, n_embd);
    V(attn_norm, "attn_norm.weight", n_embd, true);
    V(ffn_norm, "ffn_norm.weight", n_embd, true);
    V(bq, "attn_q.bias", q_dim, false);
    V(bk, "attn_k.bias", kv_dim, false);
    V(bv, "attn_v.bias", kv_dim, false);
    V(bo, "attn_output.bias", n_embd, false);
    if (!L->xattn) {
        V(q_norm, "attn_q_norm.weight", hp->head_dim, hp->gemma3 || hp->qk_norm);
        V(k_norm, "attn_k_norm.weight", hp->head_dim, hp->gemma3 || hp->qk_norm);
    }
    V(post_attn_norm, "post_attention_norm.weight", n_embd, hp->gemma3);
    V(post_ffn_norm, "post_ffw_norm.weight", n_embd, hp->gemma3);
#undef T
#undef V
    return IDS_OK;
}

/* Embeddings, output head and norm, rotary frequencies, then every block. */
static ids_status load_weights(ids_model *m, ids_err *err) {
    ids_hparams *hp = &m->hp;
    const int64_t n_embd = hp->n_embd;
    ids_status st;
    if ((st = want_tensor(m, "token_embd.weight", n_embd, hp->n_vocab_embd, true, &m->tok_embd, err))) return st;
    if (hp->n_xattn) { /* mllama: the head has vocab_size rows, token_embd 8 more */
        const ids_tensor *o = ids_gguf_find_tensor(m->g, "output.weight");
        if (o && o->ne[1] >= 1 && o->ne[1] <= hp->n_vocab) hp->n_vocab = (int)o->ne[1];
        if ((st = want_tensor(m, "output.weight", n_embd, hp->n_vocab, true, &m->output, err))) return st;
    }
    else if ((st = want_tensor(m, "output.weight", n_embd, hp->n_vocab, false, &m->output, err))) return st;
    hp->tied_output = m->output == NULL;
    if (!m->output) m->output = m->tok_embd;
    if ((st = load_vec(m, "output_norm.weight", n_embd, true, &m->output_norm, err))) return st;
    if ((st = load_vec(m, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_ff, err))) return st;
    m->layers = ids__calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", ids_gguf_path(m->g));
    for (int l = 0; l < hp->n_layer; l++)
        if ((st = load_layer(m, l, err))) return st;
    return IDS_OK;
}

size_t ids_model_packed_bytes(const ids_model *m) { return ids__packs_bytes(m->packs); }

ids_status ids_model_load(ids_model **out, const char *path, ids_err *err) {
    *out = NULL;
    ids_model *m = ids__calloc(1, sizeof *m);
    if (!m) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    ids_status st = ids_gguf_open_model(&m->g, path, IDS_HF_TEXT, err); /* a GGUF file or an HF folder */
    if (!st) st = load_hparams(m, err);
    if (!st) st = load_weights(m, err);
    if (!st) st = ids_tokenizer_load(&m->tok, m->g, err);
    if (!st) st = ids__packs_new(&m->packs, m->g, err);
    if (!st && ids_tokenizer_n_vocab(m->tok) > m->hp.n_vocab_embd)
        st = ids__err(err, IDS_ERR_FORMAT, "%s: the tokenizer has %d tokens but token_embd only %d rows",
                      path, ids_tokenizer_n_vocab(m->tok), m->hp.n_vocab_embd);
    if (st) {
        ids_model_free(m);
        return st;
    }
    *out = m;
    return IDS_OK;
}

const ids_hparams *ids_model_hparams(const ids_model *m) { return &m->hp; }
const ids_tokenizer *ids_model_tokenizer(const ids_model *m) { return m->tok; }
const ids_gguf *ids_model_gguf(const ids_model *m) { return m->g; }
