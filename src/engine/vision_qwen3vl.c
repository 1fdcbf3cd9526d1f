/* Qwen3-VL vision tower (projector "qwen3vl_merger"): the Qwen2-VL tower (dynamic resolution, two
 * temporal patch kernels, 2-D rotary positions, 2x2 merge; patch 16) with a patch bias, learned
 * absolute positions interpolated bilinearly to the patch grid, LayerNorm blocks with a fused qkv
 * and a tanh-GELU MLP, and DeepStack: the outputs of chosen blocks, each merged by its own merger
 * (LayerNorm after the 2x2 grouping), become rows added to the first decoder blocks' output at the
 * image rows. HF Qwen3VLVisionModel; see vision.c for the shared parts. */
#include "idscope/engine.h"
#include "engine/vision.h"

#include <math.h>

void ids__vision_free_qwen3vl(ids_vision *v) {
    if (v->deep)
        for (int k = 0; k < v->hp.n_deepstack; k++) {
            free(v->deep[k].nw);
            free(v->deep[k].nb);
            free(v->deep[k].fc1b);
            free(v->deep[k].fc2b);
        }
    free(v->deep);
    free(v->qkv_view);
}

/* A view of rows [r0, r0 + n) (ne[1]) of a matrix. */
static ids_tensor row_view(const ids_tensor *t, int64_t r0, int64_t n) {
    ids_tensor w = *t;
    const size_t row = (size_t)ids_type_row_bytes(t->type, t->ne[0]);
    w.data = (const uint8_t *)t->data + (size_t)r0 * row;
    w.ne[1] = n;
    w.nbytes = (uint64_t)n * row;
    return w;
}

static ids_status load_block(ids_vision *v, int l, ids_err *err) {
    const ids_gguf *g = v->g;
    const int E = v->hp.n_embd, F = v->hp.n_ff;
    ids_vblock *b = &v->blk[l];
    const ids_tensor *qkv;
    float *qkvb = NULL;
    ids_status st;
    char nm[96];
#define M(field, suffix, ne0, ne1)                                            \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__want_tensor(g, nm, ne0, ne1, true, &field, err))) return st;
#define V(field, suffix, n)                                                   \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__load_vec(g, nm, n, true, &field, err))) return st;
    M(qkv, "attn_qkv.weight", E, 3 * E);
    M(b->o, "attn_out.weight", E, E);
    M(b->fc1, "ffn_up.weight", E, F);
    M(b->fc2, "ffn_down.weight", F, E);
    V(b->ob, "attn_out.bias", E);
    V(b->fc1b, "ffn_up.bias", F);
    V(b->fc2b, "ffn_down.bias", E);
    V(b->ln1w, "ln1.weight", E);
    V(b->ln1b, "ln1.bias", E);
    V(b->ln2w, "ln2.weight", E);
    V(b->ln2b, "ln2.bias", E);
    V(qkvb, "attn_qkv.bias", 3 * E);
#undef M
#undef V
    ids_tensor *tv = v->qkv_view + 3 * l;
    float **bias[3] = {&b->qb, &b->kb, &b->vb};
    const ids_tensor **mat[3] = {&b->q, &b->k, &b->v};
    for (int i = 0; i < 3 && !st; i++) { /* HF qkv: rows 0..E-1 are q, then k, then v */
        tv[i] = row_view(qkv, (int64_t)i * E, E);
        *mat[i] = &tv[i];
        *bias[i] = ids__malloc((size_t)E * sizeof(float));
        if (!*bias[i]) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", ids_gguf_path(g));
        else memcpy(*bias[i], qkvb + (size_t)i * E, (size_t)E * sizeof(float));
    }
    free(qkvb);
    return st;
}

/* The DeepStack mergers: v.deepstack.L.* for every tower block L that has them (llama.cpp finds them
 * by their tensors); clip.vision.is_deepstack_layers, when stored, must name the same blocks. */
static ids_status load_deepstack(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    const int E4 = hp->n_embd * hp->merge * hp->merge, T = hp->n_out_embd;
    const ids_gguf_value *flags = NULL;
    ids_status st = ids_gguf_get_arr(g, "clip.vision.is_deepstack_layers", -1, &flags, err);
    if (st && st != IDS_ERR_NOT_FOUND) return st;
    char nm[96];
    for (int l = 0; l < hp->n_layer; l++) {
        snprintf(nm, sizeof nm, "v.deepstack.%d.fc1.weight", l);
        const bool has = ids_gguf_find_tensor(g, nm) != NULL;
        int64_t flag = has;
        if (flags && ((uint64_t)l >= flags->v.arr.n || ids_gguf_arr_i64(flags, (uint64_t)l, &flag)))
            flag = 0;
        if (flags && (flag != 0) != has)
            return ids__err(err, has ? IDS_ERR_FORMAT : IDS_ERR_NOT_FOUND, "%s: tower block %d: clip.vision."
                            "is_deepstack_layers says %s, but tensor '%s' is %s", path, l, flag ? "true" : "false",
                            nm, has ? "present" : "missing");
        if (!has) continue;
        if (hp->n_deepstack == (int)(sizeof hp->deepstack_layer / sizeof *hp->deepstack_layer))
            return ids__err(err, IDS_ERR_FORMAT, "%s: more than %d DeepStack mergers", path, hp->n_deepstack);
        ids_vdeep *d = &v->deep[hp->n_deepstack];
        hp->deepstack_layer[hp->n_deepstack++] = d->layer = l;
#define M(field, suffix, ne0, ne1)                                                   \
    snprintf(nm, sizeof nm, "v.deepstack.%d.%s", l, suffix);                         \
    if ((st = ids__want_tensor(g, nm, ne0, ne1, true, &d->field, err))) return st;
#define V(field, suffix, n)                                                          \
    snprintf(nm, sizeof nm, "v.deepstack.%d.%s", l, suffix);                         \
    if ((st = ids__load_vec(g, nm, n, true, &d->field, err))) return st;
        M(fc1, "fc1.weight", E4, E4);
        M(fc2, "fc2.weight", E4, T);
        V(nw, "norm.weight", E4);
        V(nb, "norm.bias", E4);
        V(fc1b, "fc1.bias", E4);
        V(fc2b, "fc2.bias", T);
#undef M
#undef V
    }
    return IDS_OK;
}

ids_status ids__vision_load_qwen3vl(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    ids_status st = ids__vision_load_qwen_common(v, err);
    if (st) return st;
    uint32_t x;
    /* HF Qwen3-VL processor defaults (shortest_edge 65536, longest_edge 16777216) unless the file says */
    if (ids_gguf_get_u32(g, "clip.vision.image_min_pixels", &x, NULL)) hp->min_pixels = 65536;
    if (ids_gguf_get_u32(g, "clip.vision.image_max_pixels", &x, NULL)) hp->max_pixels = 16777216;
    if (hp->min_pixels > hp->max_pixels)
        return ids__err(err, IDS_ERR_FORMAT, "%s: pixel bounds %d..%d are invalid", path, hp->min_pixels,
                        hp->max_pixels);
    v->qwen3 = v->gelu_tanh = true; /* HF hidden_act gelu_pytorch_tanh */
    const ids_tensor *up = ids_gguf_find_tensor(g, "v.blk.0.ffn_up.weight");
    if (!up) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: tensor 'v.blk.0.ffn_up.weight' is missing", path);
    uint32_t ff = up->ne[1] > 0 && up->ne[1] <= 1 << 20 ? (uint32_t)up->ne[1] : 0;
    if ((st = ids_gguf_get_u32(g, "clip.vision.feed_forward_length", &ff, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if (ff < 1 || ff > 1u << 20) return ids__err(err, IDS_ERR_FORMAT, "%s: feed-forward width %u is out of range", path, ff);
    hp->n_ff = (int)ff;
    const int E = hp->n_embd;
    const ids_tensor *pe = ids_gguf_find_tensor(g, "v.position_embd.weight");
    if (!pe) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: tensor 'v.position_embd.weight' is missing", path);
    const int side = (int)sqrt((double)pe->ne[1]);
    if (pe->ne[0] != E || side < 1 || (int64_t)side * side != pe->ne[1] || pe->ne[2] != 1 || pe->ne[3] != 1)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor 'v.position_embd.weight': expected shape [%d, S*S] (a square "
                        "table), got [%lld, %lld, %lld, %lld]", path, E, (long long)pe->ne[0], (long long)pe->ne[1],
                        (long long)pe->ne[2], (long long)pe->ne[3]);
    v->pos_side = side;
    v->pos = ids__malloc((size_t)side * side * E * sizeof(float));
    v->blk = ids__calloc((size_t)hp->n_layer, sizeof *v->blk);
    v->qkv_view = ids__calloc((size_t)hp->n_layer * 3, sizeof *v->qkv_view);
    v->deep = ids__calloc((size_t)hp->n_layer, sizeof *v->deep);
    if (!v->pos || !v->blk || !v->qkv_view || !v->deep) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    if ((st = ids_tensor_to_f32(pe, v->pos, err))) return st;
    for (int l = 0; l < hp->n_layer; l++)
        if ((st = load_block(v, l, err))) return st;
    if ((st = ids__load_vec(g, "v.post_ln.weight", E, true, &v->post_w, err))) return st;
    if ((st = ids__load_vec(g, "v.post_ln.bias", E, true, &v->post_b, err))) return st;
    if ((st = ids__vision_load_projector(v, err))) return st;
    if ((int)v->mm0->ne[1] != E * hp->merge * hp->merge)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor 'mm.0.weight': expected shape [%d, %d], got [%lld, %lld]", path,
                        E * hp->merge * hp->merge, E * hp->merge * hp->merge, (long long)v->mm0->ne[0],
                        (long long)v->mm0->ne[1]);
    if ((st = load_deepstack(v, err))) return st;
    for (int k = 0; k < hp->n_deepstack; k++)
        if (hp->deepstack_layer[k] >= hp->n_run)
            return ids__err(err, IDS_ERR_FORMAT, "%s: DeepStack block %d is past the %d blocks run", path,
                            hp->deepstack_layer[k], hp->n_run);
    return IDS_OK;
}

/* torch.linspace(0, side - 1, n) in float32: the first half from the start, the rest from the end. */
static float lin(int side, int n, int i) {
    if (n == 1) return 0.0f;
    const float step = (float)(side - 1) / (float)(n - 1);
    return i < n / 2 ? step * (float)i : (float)(side - 1) - step * (float)(n - 1 - i);
}

void ids__vision_add_pos_qwen3vl(const ids_vision *v, const ids_vplan *pl, float *x) {
    const int E = v->hp.n_embd, mg = v->hp.merge, S = v->pos_side;
    const int gh = pl->grid_h * mg, gw = pl->grid_w * mg, npf = gh * gw;
    for (int i = 0; i < npf; i++) {
        const int grp = i / (mg * mg), in = i % (mg * mg);
        const int py = (grp / pl->grid_w) * mg + in / mg, px = (grp % pl->grid_w) * mg + in % mg;
        const float hy = lin(S, gh, py), wx = lin(S, gw, px);
        const int y0 = (int)hy, x0 = (int)wx, y1 = y0 + 1 < S ? y0 + 1 : S - 1, x1 = x0 + 1 < S ? x0 + 1 : S - 1;
        const float dh = hy - (float)y0, dw = wx - (float)x0;
        const float wt[4] = {(1 - dh) * (1 - dw), (1 - dh) * dw, dh * (1 - dw), dh * dw};
        const float *p[4] = {v->pos + ((size_t)y0 * S + x0) * E, v->pos + ((size_t)y0 * S + x1) * E,
                             v->pos + ((size_t)y1 * S + x0) * E, v->pos + ((size_t)y1 * S + x1) * E};
        for (int t = 0; t < pl->grid_t; t++) {
            float *r = x + ((size_t)t * npf + i) * E;
            for (int d = 0; d < E; d++) r[d] += ((p[0][d] * wt[0] + p[1][d] * wt[1]) + p[2][d] * wt[2]) + p[3][d] * wt[3];
        }
    }
}

void ids__vision_deepstack_qwen3vl(const ids_vision *v, ids_ops *o, int k, int n_out, const float *x, float *xn,
                                   float *hid, float *out) {
    const ids_vdeep *d = &v->deep[k];
    const int E4 = v->hp.n_embd * v->hp.merge * v->hp.merge;
    ids__layernorm(o, x, xn, d->nw, d->nb, E4, n_out, v->hp.eps); /* after the 2x2 grouping: over 4E */
    ids__matmul(o, d->fc1, xn, n_out, hid, d->fc1b);
    for (size_t i = 0; i < (size_t)n_out * E4; i++) hid[i] = 0.5f * hid[i] * (1.0f + erff(hid[i] * (float)M_SQRT1_2));
    ids__matmul(o, d->fc2, hid, n_out, out, d->fc2b);
}
