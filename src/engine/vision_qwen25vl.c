/* Qwen2.5-VL vision tower (projector "qwen2.5vl_merger"): the Qwen2-VL tower (dynamic resolution,
 * two temporal patch kernels, 2-D rotary positions, 2x2 merge) with RMSNorm, a gated SiLU MLP with
 * biases, and window attention: the 2x2 groups are reordered window by window (windows of
 * window_size / patch / merge merged cells per side), most blocks attend inside their window and
 * every n_wa_pattern-th block across its whole temporal patch; the order is undone before the
 * merger. HF Qwen2_5_VisionTransformerPretrainedModel; see vision.c for the shared parts. */
#include "idscope/engine.h"
#include "engine/vision.h"

/* A 1-D tensor of n values (F32 copy in *out); its shape is checked here so that the message gives
 * the expected and the stored shape. */
static ids_status vec(const ids_gguf *g, const char *name, int n, bool required, float **out, ids_err *err) {
    const ids_tensor *t = ids_gguf_find_tensor(g, name);
    *out = NULL;
    if (!t && !required) return IDS_OK;
    if (t && (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1))
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': expected shape [%d], got [%lld, %lld, %lld, %lld]",
                        ids_gguf_path(g), name, n, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                        (long long)t->ne[3]);
    return ids__load_vec(g, name, n, required, out, err);
}

static ids_status load_block(ids_vision *v, int l, ids_err *err) {
    const ids_gguf *g = v->g;
    const ids_vparams *hp = &v->hp;
    const int E = hp->n_embd, F = hp->n_ff;
    ids_vblock *b = &v->blk[l];
    ids_status st;
    char nm[96];
#define M(field, suffix, ne0, ne1)                                            \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__want_tensor(g, nm, ne0, ne1, true, &b->field, err))) return st;
#define V(field, suffix, n, req)                                              \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = vec(g, nm, n, req, &b->field, err))) return st;
    M(q, "attn_q.weight", E, E);
    M(k, "attn_k.weight", E, E);
    M(v, "attn_v.weight", E, E);
    M(o, "attn_out.weight", E, E);
    M(gate, "ffn_gate.weight", E, F);
    M(fc1, "ffn_up.weight", E, F);
    M(fc2, "ffn_down.weight", F, E);
    V(qb, "attn_q.bias", E, false);
    V(kb, "attn_k.bias", E, false);
    V(vb, "attn_v.bias", E, false);
    V(ob, "attn_out.bias", E, false);
    V(gateb, "ffn_gate.bias", F, false);
    V(fc1b, "ffn_up.bias", F, false);
    V(fc2b, "ffn_down.bias", E, false);
    V(ln1w, "ln1.weight", E, true);
    V(ln2w, "ln2.weight", E, true);
#undef M
#undef V
    /* HF fullatt_block_indexes = the blocks l with (l + 1) % n_wa_pattern == 0 (llama.cpp's key) */
    b->full_attn = hp->n_wa_pattern == 0 || (l + 1) % hp->n_wa_pattern == 0;
    return IDS_OK;
}

ids_status ids__vision_load_qwen25vl(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    ids_status st = ids__vision_load_qwen_common(v, err);
    if (st) return st;
    v->rms = true;
    hp->mrope_t_step = 2; /* HF: tokens_per_second 2 x second_per_grid_t 1 (2 frames per temporal patch at 2 fps) */
    uint32_t pat, ws = 112, ff = 0;
    if ((st = ids_gguf_get_u32(g, "clip.vision.n_wa_pattern", &pat, err)))
        return st == IDS_ERR_NOT_FOUND
                   ? ids__err(err, st, "%s: key 'clip.vision.n_wa_pattern' (which blocks attend across windows) is "
                              "missing; a qwen2.5vl_merger tower needs it", path)
                   : st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.window_size", &ws, err)) && st != IDS_ERR_NOT_FOUND) return st;
    const int cell = hp->patch_size * hp->merge;
    if (pat > 1u << 16 || ws < (uint32_t)cell || ws > 1u << 16 || ws % (uint32_t)cell)
        return ids__err(err, IDS_ERR_FORMAT, "%s: window attention: n_wa_pattern %u or window size %u (a multiple of %d "
                        "expected) is invalid", path, pat, ws, cell);
    hp->n_wa_pattern = (int)pat;
    hp->window = (int)ws / cell;
    /* the MLP width: clip.vision.feed_forward_length, else the first block's ffn_up */
    if ((st = ids_gguf_get_u32(g, "clip.vision.feed_forward_length", &ff, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if (!ff) {
        const ids_tensor *up = ids_gguf_find_tensor(g, "v.blk.0.ffn_up.weight");
        if (!up) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: tensor 'v.blk.0.ffn_up.weight' is missing", path);
        ff = up->ne[1] > 0 && up->ne[1] <= 1 << 20 ? (uint32_t)up->ne[1] : 0;
    }
    if (ff < 1 || ff > 1u << 20)
        return ids__err(err, IDS_ERR_FORMAT, "%s: feed-forward width %u is out of range", path, ff);
    hp->n_ff = (int)ff;
    v->blk = ids__calloc((size_t)hp->n_layer, sizeof *v->blk);
    if (!v->blk) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (int l = 0; l < hp->n_layer; l++)
        if ((st = load_block(v, l, err))) return st;
    if ((st = vec(g, "v.post_ln.weight", hp->n_embd, true, &v->post_w, err))) return st;
    return ids__vision_load_projector(v, err);
}

void ids__vision_windows_size(const ids_vplan *pl, size_t *n_groups, size_t *max_seg) {
    *n_groups = (size_t)pl->grid_t * pl->grid_h * pl->grid_w;
    *max_seg = *n_groups; /* at most one window per group */
}

void ids__vision_windows_qwen25vl(const ids_vision *v, const ids_vplan *pl, int *win, int *seg, int *n_seg) {
    const int gh = pl->grid_h, gw = pl->grid_w, u = v->hp.merge * v->hp.merge;
    const int ws = v->hp.window > 0 ? v->hp.window : (gh > gw ? gh : gw);
    int k = 0, n = 0;
    seg[0] = 0;
    for (int t = 0; t < pl->grid_t; t++)
        for (int y0 = 0; y0 < gh; y0 += ws)
            for (int x0 = 0; x0 < gw; x0 += ws) {
                for (int y = y0; y < y0 + ws && y < gh; y++)
                    for (int x = x0; x < x0 + ws && x < gw; x++) win[k++] = (t * gh + y) * gw + x;
                seg[++n] = k * u;
            }
    *n_seg = n;
}

void ids__vision_permute_groups(float *dst, const float *src, const int *win, size_t n_groups, size_t group_floats,
                                bool inverse) {
    const size_t bytes = group_floats * sizeof(float);
    for (size_t k = 0; k < n_groups; k++) {
        if (inverse) memcpy(dst + (size_t)win[k] * group_floats, src + k * group_floats, bytes);
        else memcpy(dst + k * group_floats, src + (size_t)win[k] * group_floats, bytes);
    }
}
