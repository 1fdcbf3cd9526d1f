/* Qwen2-VL vision tower (projector "qwen2vl_merger"): dynamic resolution, two temporal patch
 * kernels, patches in 2x2-merge order with 2-D rotary positions, post-LN and a 2x2 merge (see
 * vision.c for the shared parts). */
#include "idscope/engine.h"
#include "engine/vision.h"

#include <math.h>

ids_status ids__vision_load_qwen_common(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    ids_status st;
    if ((st = ids__vision_load_hparams(v, err))) return st;
    uint32_t mg = 2, mn = 56 * 56, mx = 28 * 28 * 1280;
    if ((st = ids_gguf_get_u32(g, "clip.vision.spatial_merge_size", &mg, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.image_min_pixels", &mn, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.image_max_pixels", &mx, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if (mg < 1 || mg > 8 || mn > mx)
        return ids__err(err, IDS_ERR_FORMAT, "%s: spatial merge %u or pixel bounds %u..%u are invalid", path, mg, mn,
                        mx);
    hp->dynamic = true;
    hp->merge = (int)mg;
    hp->min_pixels = (int)mn;
    hp->max_pixels = (int)mx;
    hp->n_tokens = hp->n_out = 0; /* per image */
    if ((st = ids__vision_load_feature_layer(v, err))) return st;
    if ((st = ids__vision_load_patch_embd(v, err))) return st;
    const ids_tensor *pw = ids_gguf_find_tensor(g, "v.patch_embd.weight");
    const ids_tensor *p1 = ids_gguf_find_tensor(g, "v.patch_embd.weight.1");
    if (!p1 || memcmp(p1->ne, pw->ne, sizeof p1->ne) || !ids_type_can_dequantize(p1->type))
        return ids__err(err, p1 ? IDS_ERR_FORMAT : IDS_ERR_NOT_FOUND, "%s: tensor 'v.patch_embd.weight.1' (the "
                        "second temporal kernel) is %s", path, p1 ? "not shaped like v.patch_embd.weight" : "missing");
    v->patch1 = v->patch;
    v->patch1.data = p1->data;
    v->patch1.type = p1->type;
    v->patch1.name = p1->name;
    if (hp->n_embd % hp->n_head || (hp->n_embd / hp->n_head) % 4)
        return ids__err(err, IDS_ERR_FORMAT, "%s: head size %d is not a multiple of 4 (2-D rotary positions)", path,
                        hp->n_embd / hp->n_head);
    return IDS_OK;
}

ids_status ids__vision_load_qwen2vl(ids_vision *v, ids_err *err) {
    ids_status st = ids__vision_load_qwen_common(v, err);
    if (st) return st;
    const int E = v->hp.n_embd;
    if ((st = ids__load_vec(v->g, "v.post_ln.weight", E, false, &v->post_w, err))) return st;
    if ((st = ids__load_vec(v->g, "v.post_ln.bias", E, false, &v->post_b, err))) return st;
    return ids__vision_load_tower(v, err);
}

/* HF Qwen2-VL smart_resize (Python round() is round-half-to-even, as rint). */
static ids_status smart_resize(const ids_vparams *hp, int w, int h, int *ow, int *oh, ids_err *err) {
    const double f = hp->patch_size * hp->merge;
    if (w <= 0 || h <= 0) return ids__err(err, IDS_ERR_ARG, "image of size %dx%d", w, h);
    if ((double)(w > h ? w : h) / (double)(w > h ? h : w) > 200)
        return ids__err(err, IDS_ERR_RANGE, "image aspect ratio of %dx%d exceeds 200", w, h);
    double hb = fmax(f, rint(h / f) * f), wb = fmax(f, rint(w / f) * f);
    if (hb * wb > hp->max_pixels) {
        double beta = sqrt((double)h * w / hp->max_pixels);
        hb = fmax(f, floor(h / beta / f) * f);
        wb = fmax(f, floor(w / beta / f) * f);
    } else if (hb * wb < hp->min_pixels) {
        double beta = sqrt(hp->min_pixels / ((double)h * w));
        hb = ceil(h * beta / f) * f;
        wb = ceil(w * beta / f) * f;
    }
    *ow = (int)wb;
    *oh = (int)hb;
    return IDS_OK;
}

ids_status ids__vision_plan_qwen2vl(const ids_vision *v, const ids_image *frames, int n_frames, ids_vplan *out,
                                    ids_err *err) {
    const ids_vparams *hp = &v->hp;
    for (int i = 1; i < n_frames; i++)
        if (frames[i].w != frames[0].w || frames[i].h != frames[0].h)
            return ids__err(err, IDS_ERR_ARG, "vision: frame %d is %dx%d but frame 0 is %dx%d", i, frames[i].w,
                            frames[i].h, frames[0].w, frames[0].h);
    ids_status st = smart_resize(hp, frames[0].w, frames[0].h, &out->width, &out->height, err);
    if (st) return st;
    const int gp_w = out->width / hp->patch_size, gp_h = out->height / hp->patch_size;
    out->grid_t = (n_frames + 1) / 2;
    out->grid_w = gp_w / hp->merge;
    out->grid_h = gp_h / hp->merge;
    out->n_tokens = out->grid_t * gp_w * gp_h;
    out->n_out = out->grid_t * out->grid_w * out->grid_h;
    return IDS_OK;
}

/* 2-D rotary positions (Qwen2-VL vision): pairs (i, i + d/2); the first d/4 pairs turn with the
 * patch row y, the next d/4 with its column x, frequency 10000^(-4i'/d). cs: [T, d/2, 2]. */
void ids__vision_rope2d(float *x, const float *cs, int T, int n_head, int hd) {
    const int half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            float *v = x + ((size_t)t * n_head + h) * hd;
            const float *c = cs + (size_t)t * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], co = c[2 * i], si = c[2 * i + 1];
                v[i] = a * co - b * si;
                v[i + half] = a * si + b * co;
            }
        }
}

void ids__vision_embed_qwen2vl(const ids_vision *v, ids_ops *o, const ids_vplan *pl, ids_vbufs *b) {
    const ids_vparams *hp = &v->hp;
    const int P = hp->patch_size, W = b->W, Hh = b->H, KP = 3 * P * P, E = hp->n_embd, mg = hp->merge;
    const int gw = W / P, NPF = gw * (Hh / P), T = pl->n_tokens; /* NPF: patches per frame */
    const int hd = E / hp->n_head, quarter = hd / 4;
    /* patch rows in (channel, ky, kx) order, 2x2 merge groups together; the rotary table beside */
    for (int t = 0; t < pl->grid_t; t++)
        for (int i = 0; i < NPF; i++) {
            int grp = i / (mg * mg), in = i % (mg * mg);
            const int py = (grp / (gw / mg)) * mg + in / mg;
            const int px = (grp % (gw / mg)) * mg + in % mg;
            float *c2 = b->cs + ((size_t)t * NPF + i) * hd;
            for (int a = 0; a < 2 * quarter; a++) {
                double pos = a < quarter ? py : px, ex = (double)(a % quarter) * 4.0 / hd;
                double th = pos * pow(10000.0, -ex);
                c2[2 * a] = (float)cos(th);
                c2[2 * a + 1] = (float)sin(th);
            }
            for (int which = 0; which < 2; which++) {
                const float *fr = b->pix + (size_t)(2 * t + which) * 3 * W * Hh;
                float *row = (which ? b->patches1 : b->patches) + ((size_t)t * NPF + i) * KP;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < P; ky++)
                        memcpy(row + (c * P + ky) * P, fr + (size_t)c * W * Hh + (size_t)(py * P + ky) * W + px * P,
                               (size_t)P * sizeof(float));
            }
        }
    ids__matmul(o, &v->patch, b->patches, T, b->x, v->patch_b);
    ids__matmul(o, &v->patch1, b->patches1, T, b->tmp, NULL);
    for (size_t i = 0; i < (size_t)T * E; i++) b->x[i] += b->tmp[i];
}
