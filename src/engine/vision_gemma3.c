/* Gemma 3's vision tower (projector "gemma3", HF SiglipVisionModel + Gemma3MultiModalProjector):
 * SigLIP at one fixed square size (896 px, 14 px patches, 64 x 64 patches in raster order, no CLS,
 * learned positions), pre-norm blocks with biases and GELU (tanh), post-LN; then 4 x 4 average
 * pooling to 16 x 16 rows (raster), RMSNorm with the soft-embedding weight (llama.cpp's converter
 * stores HF's 1 + w, so the weight is used as stored) and the input projection x . W (no bias).
 * The image is stretched to the square with Pillow's bilinear filter (HF Gemma3ImageProcessor). */
#include "idscope/engine.h"
#include "engine/vision.h"

/* mm.input_projection.weight: HF's (n_embd, n_out_embd) parameter used as x . W, stored with ne =
 * [n_out_embd, n_embd]; kept transposed in F32 so that the usual product (W rows = outputs) applies. */
static ids_status load_projection(ids_vision *v, ids_err *err) {
    const char *path = ids_gguf_path(v->g), *name = "mm.input_projection.weight";
    const int E = v->hp.n_embd;
    const ids_tensor *t = ids_gguf_find_tensor(v->g, name);
    if (!t) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: projector tensor '%s' is missing", path, name);
    if (t->n_dims != 2 || t->ne[1] != E || t->ne[0] < 1 || t->ne[0] > (1 << 20))
        return ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': expected shape [N, %d] (N = the text model's width), "
                        "got [%lld, %lld, %lld, %lld]", path, name, E, (long long)t->ne[0], (long long)t->ne[1],
                        (long long)t->ne[2], (long long)t->ne[3]);
    if (!ids_type_can_dequantize(t->type))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: %s has unreadable type %s", path, name, ids_type_name(t->type));
    const int T = (int)t->ne[0];
    float *raw = ids__malloc(sizeof(float) * (size_t)T * E);
    v->proj_f = ids__malloc(sizeof(float) * (size_t)T * E);
    if (!raw || !v->proj_f) {
        free(raw);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    ids_status st = ids_tensor_to_f32(t, raw, err);
    if (st) {
        free(raw);
        return st;
    }
    for (int i = 0; i < E; i++)
        for (int o = 0; o < T; o++) v->proj_f[(size_t)o * E + i] = raw[(size_t)i * T + o];
    free(raw);
    v->proj = (ids_tensor){.name = name, .n_dims = 2, .ne = {E, T, 1, 1}, .type = IDS_TYPE_F32,
                           .nbytes = sizeof(float) * (size_t)T * E, .data = v->proj_f};
    v->hp.n_out_embd = T;
    v->mm0 = &v->proj;
    return IDS_OK;
}

ids_status ids__vision_load_gemma3(ids_vision *v, ids_err *err) {
    ids_vparams *hp = &v->hp;
    const char *path = ids_gguf_path(v->g);
    ids_status st;
    v->rms = false;
    if ((st = ids__vision_load_hparams(v, err))) return st;
    uint32_t pool = 4; /* written only when it is not 4 (llama.cpp's default) */
    st = ids_gguf_get_u32(v->g, "clip.vision.projector.scale_factor", &pool, err);
    if (st && st != IDS_ERR_NOT_FOUND) return st;
    if (pool < 1 || pool > 64 || hp->grid % (int)pool)
        return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.projector.scale_factor %u does not divide the %d-patch grid",
                        path, pool, hp->grid);
    v->pool = (int)pool;
    hp->n_tokens = hp->grid * hp->grid;
    hp->n_out = (hp->grid / v->pool) * (hp->grid / v->pool);
    hp->use_gelu = true;
    if ((st = ids__vision_load_patch_embd(v, err))) return st;
    const int E = hp->n_embd;
    const ids_tensor *pe;
    if ((st = ids__want_tensor(v->g, "v.position_embd.weight", E, hp->n_tokens, true, &pe, err))) return st;
    v->pos = ids__malloc(sizeof(float) * (size_t)E * hp->n_tokens);
    if (!v->pos) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    if ((st = ids_tensor_to_f32(pe, v->pos, err))) return st;
    if ((st = ids__vision_load_blocks(v, err))) return st;
    if ((st = ids__load_vec(v->g, "v.post_ln.weight", E, true, &v->post_w, err))) return st;
    if ((st = ids__load_vec(v->g, "v.post_ln.bias", E, true, &v->post_b, err))) return st;
    if ((st = ids__load_vec(v->g, "mm.soft_emb_norm.weight", E, true, &v->soft_norm, err))) return st;
    return load_projection(v, err);
}

void ids__vision_embed_siglip(const ids_vision *v, ids_ops *o, ids_vbufs *b) {
    const ids_vparams *hp = &v->hp;
    const int P = hp->patch_size, W = b->W, Hh = b->H, KP = 3 * P * P, E = hp->n_embd;
    const int gw = W / P, NP = gw * (Hh / P);
    for (int i = 0; i < NP; i++) { /* (channel, ky, kx) per patch, patches in raster order */
        const int py = i / gw, px = i % gw;
        float *row = b->patches + (size_t)i * KP;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < P; ky++)
                memcpy(row + (c * P + ky) * P, b->pix + (size_t)c * W * Hh + (size_t)(py * P + ky) * W + px * P,
                       (size_t)P * sizeof(float));
    }
    ids__matmul(o, &v->patch, b->patches, NP, b->x, v->patch_b);
    for (size_t i = 0; i < (size_t)NP * E; i++) b->x[i] += v->pos[i];
}

void ids__vision_project_gemma3(const ids_vision *v, ids_ops *o, ids_vbufs *b, float *out) {
    const ids_vparams *hp = &v->hp;
    const int E = hp->n_embd, G = hp->grid, k = v->pool, g = G / k, n = g * g;
    ids__layernorm(o, b->x, b->x, v->post_w, v->post_b, E, G * G, hp->eps);
    /* HF nn.AvgPool2d(k, k) on the (E, G, G) view: each output cell the mean of its k x k patches */
    const float inv = 1.0f / (float)(k * k);
    for (int r = 0; r < g; r++)
        for (int c = 0; c < g; c++) {
            float *d = b->xn + (size_t)(r * g + c) * E;
            for (int e = 0; e < E; e++) {
                float s = 0;
                for (int dy = 0; dy < k; dy++)
                    for (int dx = 0; dx < k; dx++) s += b->x[((size_t)(r * k + dy) * G + c * k + dx) * E + e];
                d[e] = s * inv;
            }
        }
    ids__rmsnorm(o, b->xn, b->xn, v->soft_norm, E, n, hp->eps);
    ids__matmul(o, &v->proj, b->xn, n, out, NULL);
}
