/* Gemma 3's decoder pieces (arch "gemma3", HF Gemma3TextModel): its keys, which layers slide, the
 * attention range of a row (sliding window, image blocks attended both ways), GELU (tanh).
 * The forward pass itself is lm.c's, switched by the flags in ids_hparams. */
#include "idscope/engine.h"
#include "engine/lm.h"
#include "engine/ops.h"

#include <math.h>

static ids_status opt_f32(const ids_gguf *g, const char *key, float def, float *out, ids_err *err) {
    ids_status st = ids_gguf_get_f32(g, key, out, err);
    if (st == IDS_ERR_NOT_FOUND) {
        *out = def;
        return IDS_OK;
    }
    return st;
}

static ids_status opt_u32(const ids_gguf *g, const char *key, uint32_t def, uint32_t *out, ids_err *err) {
    ids_status st = ids_gguf_get_u32(g, key, out, err);
    if (st == IDS_ERR_NOT_FOUND) {
        *out = def;
        return IDS_OK;
    }
    return st;
}

/* The global layers' RoPE scaling: none, or linear with a factor (positions divided by it). */
static ids_status rope_scaling(const ids_gguf *g, ids_hparams *hp, ids_err *err) {
    const char *path = ids_gguf_path(g), *type = "none";
    ids_status st = ids_gguf_get_str(g, "gemma3.rope.scaling.type", &type, err);
    if (st && st != IDS_ERR_NOT_FOUND) return st;
    if (st == IDS_ERR_NOT_FOUND) type = "none";
    float factor = 1.0f;
    if ((st = opt_f32(g, "gemma3.rope.scaling.factor", 1.0f, &factor, err))) return st;
    if (!strcmp(type, "none")) factor = 1.0f;
    else if (strcmp(type, "linear") != 0)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: gemma3.rope.scaling.type '%s' is not supported "
                        "(expected linear or none)", path, type);
    if (!(factor >= 1e-3f && factor <= 1e6f))
        return ids__err(err, IDS_ERR_FORMAT, "%s: gemma3.rope.scaling.factor %g is out of range", path, factor);
    hp->rope_scale = 1.0f / factor;
    return IDS_OK;
}

/* gemma3.attention.sliding_window_pattern: an integer n (layer l slides iff l % n < n - 1; 0: every
 * layer; default 6), or one flag per layer (bool or integer array, nonzero = sliding), as llama.cpp
 * reads either form. The list is kept in hp->swa_layers (owned by the model). */
static ids_status swa_pattern(ids_model *m, ids_err *err) {
    const ids_gguf *g = m->g;
    const char *path = ids_gguf_path(g), *key = "gemma3.attention.sliding_window_pattern";
    ids_hparams *hp = &m->hp;
    hp->swa_pattern = 6;
    if (ids_gguf_find_kv(g, key) < 0) return IDS_OK;
    const ids_gguf_value *a;
    ids_status st = ids_gguf_get_arr(g, key, -1, &a, NULL);
    if (st) { /* not an array: the integer form */
        uint32_t pat;
        if ((st = ids_gguf_get_u32(g, key, &pat, err))) return st;
        if (pat > 4096) return ids__err(err, IDS_ERR_FORMAT, "%s: %s = %u is out of range (0..4096)", path, key, pat);
        hp->swa_pattern = (int)pat;
        return IDS_OK;
    }
    if (a->v.arr.n != (uint64_t)hp->n_layer)
        return ids__err(err, IDS_ERR_FORMAT, "%s: %s lists %llu layers, the model has %d", path, key,
                        (unsigned long long)a->v.arr.n, hp->n_layer);
    hp->swa_layers = ids__calloc((size_t)hp->n_layer, sizeof *hp->swa_layers);
    if (!hp->swa_layers) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (int l = 0; l < hp->n_layer; l++) {
        int64_t x;
        if (ids_gguf_arr_i64(a, (uint64_t)l, &x))
            return ids__err(err, IDS_ERR_TYPE, "%s: %s holds %s values, expected bool or integer flags", path, key,
                            ids_gguf_type_name(a->v.arr.elem));
        hp->swa_layers[l] = x != 0;
    }
    hp->swa_pattern = 0;
    return IDS_OK;
}

ids_status ids__gemma3_hparams(ids_model *m, ids_err *err) {
    const ids_gguf *g = m->g;
    const char *path = ids_gguf_path(g);
    ids_hparams *hp = &m->hp;
    ids_status st;
    hp->gemma3 = true;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    uint32_t win = 0;
    if ((st = opt_u32(g, "gemma3.attention.sliding_window", 0, &win, err))) return st;
    if (win > (1u << 24))
        return ids__err(err, IDS_ERR_FORMAT, "%s: gemma3.attention.sliding_window %u is out of range", path, win);
    hp->swa_window = (int)win;
    if ((st = swa_pattern(m, err))) return st;
    if ((st = opt_f32(g, "gemma3.rope.freq_base_swa", 10000.0f, &hp->rope_base_swa, err))) return st;
    if ((st = rope_scaling(g, hp, err))) return st;
    if ((st = opt_f32(g, "gemma3.final_logit_softcapping", 0.0f, &hp->logit_softcap, err))) return st;
    /* HF: query_pre_attn_scalar^-0.5. The converter does not store it; llama.cpp (and this) takes
     * n_embd / n_head for the 62-layer 27B and head_dim otherwise, which are the released configs'
     * values; an explicit gemma3.attention.scale wins. */
    float qpas = hp->n_layer == 62 ? (float)(hp->n_embd / hp->n_head) : (float)hp->head_dim;
    if ((st = opt_f32(g, "gemma3.attention.scale", 1.0f / sqrtf(qpas), &hp->attn_scale, err))) return st;
    if (!(hp->rope_base_swa > 0) || !(hp->attn_scale > 0) || hp->logit_softcap < 0)
        return ids__err(err, IDS_ERR_FORMAT, "%s: gemma3 rope.freq_base_swa %g, attention scale %g or "
                        "final_logit_softcapping %g is out of range", path, hp->rope_base_swa, hp->attn_scale,
                        hp->logit_softcap);
    return IDS_OK;
}

bool ids__layer_is_swa(const ids_hparams *hp, int l) {
    if (hp->swa_window <= 0) return false;
    if (hp->swa_layers) return l < hp->n_layer && hp->swa_layers[l];
    return hp->swa_pattern == 0 || l % hp->swa_pattern < hp->swa_pattern - 1;
}

/* Causal within the window (HF: kv_idx > q_idx - sliding_window), OR-ed with q's image block (HF
 * token_type_ids_mask_function): the union is one range, because the block contains q. */
void ids__attn_range(const ids_hparams *hp, int l, int q, const int *blk_lo, const int *blk_hi, int *lo,
                     int *hi) {
    int a = 0, b = q + 1;
    if (ids__layer_is_swa(hp, l) && q - hp->swa_window + 1 > 0) a = q - hp->swa_window + 1;
    if (blk_lo && blk_hi[q] > blk_lo[q]) {
        if (blk_lo[q] < a) a = blk_lo[q];
        if (blk_hi[q] > b) b = blk_hi[q];
    }
    *lo = a;
    *hi = b;
}

void ids__image_blocks(const ids_seq *s, int *lo, int *hi) {
    const int n = ids_seq_len(s);
    for (int r = 0; r < n;) {
        const ids_row *a = ids_seq_row(s, r);
        int e = r + 1;
        if (a->kind == IDS_ROW_IMAGE) {
            while (e < n && ids_seq_row(s, e)->kind == IDS_ROW_IMAGE && ids_seq_row(s, e)->image == a->image) e++;
            for (int k = r; k < e; k++) lo[k] = r, hi[k] = e;
        } else {
            lo[r] = hi[r] = r + 1;
        }
        r = e;
    }
}

float ids__gelu_tanh(float x) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}
