/* LLaVA-1.5 vision tower (projector "mlp"): CLIP ViT with a CLS token and learned positions at
 * one fixed square size (see vision.c for the shared parts). */
#include "idscope/engine.h"
#include "engine/vision.h"

ids_status ids__vision_load_clip(ids_vision *v, ids_err *err) {
    const ids_vparams *hp = &v->hp;
    ids_status st;
    if ((st = ids__vision_load_hparams(v, err))) return st;
    if ((st = ids__vision_load_feature_layer(v, err))) return st;
    if ((st = ids__vision_load_patch_embd(v, err))) return st;
    const int E = hp->n_embd;
    if ((st = ids__load_vec(v->g, "v.class_embd", E, true, &v->cls, err))) return st;
    const ids_tensor *pe;
    if ((st = ids__want_tensor(v->g, "v.position_embd.weight", E, hp->n_tokens, true, &pe, err))) return st;
    v->pos = ids__malloc(sizeof(float) * (size_t)E * hp->n_tokens);
    if (!v->pos) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", ids_gguf_path(v->g));
    if ((st = ids_tensor_to_f32(pe, v->pos, err))) return st;
    return ids__vision_load_tower(v, err);
}

void ids__vision_embed_clip(const ids_vision *v, ids_ops *o, ids_vbufs *b) {
    const ids_vparams *hp = &v->hp;
    const int P = hp->patch_size, W = b->W, Hh = b->H, KP = 3 * P * P, E = hp->n_embd;
    const int gw = W / P, NP = gw * (Hh / P), T = NP + 1;
    /* patch rows in (channel, ky, kx) order, raster order of patches */
    for (int i = 0; i < NP; i++) {
        const int py = i / gw, px = i % gw;
        float *row = b->patches + (size_t)i * KP;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < P; ky++)
                memcpy(row + (c * P + ky) * P, b->pix + (size_t)c * W * Hh + (size_t)(py * P + ky) * W + px * P,
                       (size_t)P * sizeof(float));
    }
    ids__matmul(o, &v->patch, b->patches, NP, b->x + E, v->patch_b);
    memcpy(b->x, v->cls, (size_t)E * sizeof(float));
    for (size_t i = 0; i < (size_t)T * E; i++) b->x[i] += v->pos[i];
}
