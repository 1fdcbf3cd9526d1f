/* Vision towers, following the HF definitions:
 *  - LLaVA-1.5 "mlp": CLIP ViT, CLS first (position 0), patches at positions 1..n, pre-LN,
 *    pre-norm blocks with biases, quick-GELU (or exact GELU), stream after n_run blocks, CLS
 *    dropped, mm.0 -> GELU(erf) -> mm.2.
 *  - Qwen2-VL "qwen2vl_merger": dynamic resolution, patch embedding from two temporal kernels
 *    (two frames, or one frame twice), patches in 2x2-merge order, 2-D rotary positions, full
 *    attention inside each temporal patch, post-LN, 2x2 merge, mm.0 -> GELU(erf) -> mm.2. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "engine/ops.h"

#include <cblas.h>
#include <math.h>
#include <unistd.h>

typedef struct {
    const ids_tensor *q, *k, *v, *o, *fc1, *fc2;
    float *qb, *kb, *vb, *ob, *fc1b, *fc2b, *ln1w, *ln1b, *ln2w, *ln2b;
} vblock;

struct ids_vision {
    ids_gguf *g;
    ids_vparams hp;
    bool qwen;
    ids_tensor patch;  /* view of v.patch_embd.weight as [3*p*p, n_embd] */
    ids_tensor patch1; /* Qwen2-VL: the second temporal kernel */
    float *patch_b, *cls, *pos, *pre_w, *pre_b, *post_w, *post_b;
    vblock *blk;
    const ids_tensor *mm0, *mm2;
    float *mm0b, *mm2b;
};

void ids_vision_free(ids_vision *v) {
    if (!v) return;
    if (v->blk) {
        for (int i = 0; i < v->hp.n_layer; i++) {
            vblock *b = &v->blk[i];
            float *f[] = {b->qb, b->kb, b->vb, b->ob, b->fc1b, b->fc2b, b->ln1w, b->ln1b, b->ln2w, b->ln2b};
            for (size_t k = 0; k < sizeof f / sizeof *f; k++) free(f[k]);
        }
        free(v->blk);
    }
    free(v->patch_b);
    free(v->post_w);
    free(v->post_b);
    free(v->cls);
    free(v->pos);
    free(v->pre_w);
    free(v->pre_b);
    free(v->mm0b);
    free(v->mm2b);
    ids_gguf_close(v->g);
    free(v);
}

const ids_vparams *ids_vision_params(const ids_vision *v) { return &v->hp; }

static ids_status req_u32(const ids_gguf *g, const char *key, int *out, ids_err *err) {
    uint32_t x;
    ids_status st = ids_gguf_get_u32(g, key, &x, err);
    if (!st && (x == 0 || x > (1u << 16)))
        return ids__err(err, IDS_ERR_FORMAT, "%s: %s = %u is out of range", ids_gguf_path(g), key, x);
    *out = (int)x;
    return st;
}

static ids_status f32x3(const ids_gguf *g, const char *key, float out[3], ids_err *err) {
    const ids_gguf_value *a;
    ids_status st = ids_gguf_get_arr(g, key, -1, &a, err);
    if (st) return st;
    if (a->v.arr.n < 3)
        return ids__err(err, IDS_ERR_FORMAT, "%s: %s has %llu values, expected 3", ids_gguf_path(g), key,
                        (unsigned long long)a->v.arr.n);
    for (int i = 0; i < 3; i++) {
        double d;
        if (ids_gguf_arr_f64(a, (uint64_t)i, &d))
            return ids__err(err, IDS_ERR_TYPE, "%s: %s is not numeric", ids_gguf_path(g), key);
        out[i] = (float)d;
    }
    return IDS_OK;
}

ids_status ids_vision_load(ids_vision **out, const char *path, ids_err *err) {
    *out = NULL;
    ids_vision *v = ids__calloc(1, sizeof *v);
    if (!v) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_vparams *hp = &v->hp;
    ids_status st = ids_gguf_open(&v->g, path, err);
    if (st) goto fail;
    const ids_gguf *g = v->g;
    const char *s;
    if ((st = ids_gguf_get_str(g, "general.architecture", &s, err))) goto fail;
    if (strcmp(s, "clip") != 0) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: general.architecture is '%s', expected 'clip' (an mmproj file)",
                      path, s);
        goto fail;
    }
    st = ids_gguf_get_str(g, "clip.projector_type", &s, err);
    if (st == IDS_ERR_NOT_FOUND) st = ids_gguf_get_str(g, "clip.vision.projector_type", &s, err);
    if (st == IDS_ERR_NOT_FOUND) { /* very old LLaVA files carry only has_llava_projector */
        bool llava = false;
        ids_gguf_get_bool(g, "clip.has_llava_projector", &llava, NULL);
        if (llava) s = "mlp", st = IDS_OK;
    }
    if (st) goto fail;
    snprintf(hp->projector, sizeof hp->projector, "%s", s);
    v->qwen = !strcmp(s, "qwen2vl_merger");
    if (strcmp(s, "mlp") != 0 && !v->qwen) {
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: projector type '%s' is not supported (supported: mlp, "
                      "qwen2vl_merger)", path, s);
        goto fail;
    }
    if ((st = req_u32(g, "clip.vision.image_size", &hp->image_size, err))) goto fail;
    if ((st = req_u32(g, "clip.vision.patch_size", &hp->patch_size, err))) goto fail;
    if ((st = req_u32(g, "clip.vision.embedding_length", &hp->n_embd, err))) goto fail;
    if ((st = req_u32(g, "clip.vision.block_count", &hp->n_layer, err))) goto fail;
    if ((st = req_u32(g, "clip.vision.attention.head_count", &hp->n_head, err))) goto fail;
    if ((st = ids_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps, err))) goto fail;
    if ((st = f32x3(g, "clip.vision.image_mean", hp->mean, err))) goto fail;
    if ((st = f32x3(g, "clip.vision.image_std", hp->std, err))) goto fail;
    hp->use_gelu = false;
    st = ids_gguf_get_bool(g, "clip.use_gelu", &hp->use_gelu, err);
    if (st && st != IDS_ERR_NOT_FOUND) goto fail;
    if (hp->image_size % hp->patch_size || hp->n_embd % hp->n_head) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: image size %d is not a multiple of patch size %d, or width %d "
                      "not of %d heads", path, hp->image_size, hp->patch_size, hp->n_embd, hp->n_head);
        goto fail;
    }
    hp->grid = hp->image_size / hp->patch_size;
    hp->n_tokens = hp->grid * hp->grid + 1;
    hp->n_out = hp->grid * hp->grid;
    hp->n_run = hp->n_layer;
    hp->merge = 1;
    if (v->qwen) {
        uint32_t mg = 2, mn = 56 * 56, mx = 28 * 28 * 1280;
        if ((st = ids_gguf_get_u32(g, "clip.vision.spatial_merge_size", &mg, err)) && st != IDS_ERR_NOT_FOUND) goto fail;
        if ((st = ids_gguf_get_u32(g, "clip.vision.image_min_pixels", &mn, err)) && st != IDS_ERR_NOT_FOUND) goto fail;
        if ((st = ids_gguf_get_u32(g, "clip.vision.image_max_pixels", &mx, err)) && st != IDS_ERR_NOT_FOUND) goto fail;
        st = IDS_OK;
        if (mg < 1 || mg > 8 || mn > mx) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: spatial merge %u or pixel bounds %u..%u are invalid", path, mg, mn, mx);
            goto fail;
        }
        hp->dynamic = true;
        hp->merge = (int)mg;
        hp->min_pixels = (int)mn;
        hp->max_pixels = (int)mx;
        hp->n_tokens = hp->n_out = 0; /* per image */
    }
    const ids_gguf_value *fl;
    st = ids_gguf_get_arr(g, "clip.vision.feature_layer", -1, &fl, err);
    if (st == IDS_OK) {
        int64_t mx = -1;
        for (uint64_t i = 0; i < fl->v.arr.n; i++) {
            int64_t x;
            if (ids_gguf_arr_i64(fl, i, &x) == IDS_OK && x > mx) mx = x;
        }
        if (mx < 0 || mx > hp->n_layer) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.feature_layer %lld is outside 0..%d (stored blocks)",
                          path, (long long)mx, hp->n_layer);
            goto fail;
        }
        hp->n_run = (int)mx;
    } else if (st != IDS_ERR_NOT_FOUND) {
        goto fail;
    }
    st = IDS_OK;

    const int E = hp->n_embd, P = hp->patch_size;
    const ids_tensor *pw = ids_gguf_find_tensor(g, "v.patch_embd.weight");
    if (!pw || pw->ne[0] != P || pw->ne[1] != P || pw->ne[2] != 3 || pw->ne[3] != E) {
        st = ids__err(err, pw ? IDS_ERR_FORMAT : IDS_ERR_NOT_FOUND, "%s: tensor 'v.patch_embd.weight' %s "
                      "(expected [%d, %d, 3, %d])", path, pw ? "has the wrong shape" : "is missing", P, P, E);
        goto fail;
    }
    if (!ids_type_can_dequantize(pw->type)) {
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: v.patch_embd.weight has unreadable type %s", path,
                      ids_type_name(pw->type));
        goto fail;
    }
    v->patch = *pw;
    v->patch.n_dims = 2;
    v->patch.ne[0] = 3LL * P * P;
    v->patch.ne[1] = E;
    v->patch.ne[2] = v->patch.ne[3] = 1;
    if ((st = ids__load_vec(g, "v.patch_embd.bias", E, false, &v->patch_b, err))) goto fail;
    if (v->qwen) {
        const ids_tensor *p1 = ids_gguf_find_tensor(g, "v.patch_embd.weight.1");
        if (!p1 || memcmp(p1->ne, pw->ne, sizeof p1->ne) || !ids_type_can_dequantize(p1->type)) {
            st = ids__err(err, p1 ? IDS_ERR_FORMAT : IDS_ERR_NOT_FOUND, "%s: tensor 'v.patch_embd.weight.1' (the "
                          "second temporal kernel) is %s", path, p1 ? "not shaped like v.patch_embd.weight" : "missing");
            goto fail;
        }
        v->patch1 = v->patch;
        v->patch1.data = p1->data;
        v->patch1.type = p1->type;
        v->patch1.name = p1->name;
        if (hp->n_embd % hp->n_head || (hp->n_embd / hp->n_head) % 4) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: head size %d is not a multiple of 4 (2-D rotary positions)",
                          path, hp->n_embd / hp->n_head);
            goto fail;
        }
        if ((st = ids__load_vec(g, "v.post_ln.weight", E, false, &v->post_w, err))) goto fail;
        if ((st = ids__load_vec(g, "v.post_ln.bias", E, false, &v->post_b, err))) goto fail;
    } else {
        if ((st = ids__load_vec(g, "v.class_embd", E, true, &v->cls, err))) goto fail;
        const ids_tensor *pe;
        if ((st = ids__want_tensor(g, "v.position_embd.weight", E, hp->n_tokens, true, &pe, err))) goto fail;
        v->pos = ids__malloc(sizeof(float) * (size_t)E * hp->n_tokens);
        if (!v->pos || (st = ids_tensor_to_f32(pe, v->pos, err))) {
            if (!st) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    if ((st = ids__load_vec(g, "v.pre_ln.weight", E, false, &v->pre_w, err))) goto fail;
    if ((st = ids__load_vec(g, "v.pre_ln.bias", E, false, &v->pre_b, err))) goto fail;
    v->blk = ids__calloc((size_t)hp->n_layer, sizeof *v->blk);
    if (!v->blk) {
        st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        vblock *b = &v->blk[l];
        char nm[96];
#define T(field, suffix, ne0, ne1)                                            \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__want_tensor(g, nm, ne0, ne1, true, &b->field, err))) goto fail;
#define V(field, suffix, n)                                                   \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__load_vec(g, nm, n, false, &b->field, err))) goto fail;
        T(q, "attn_q.weight", E, E);
        T(k, "attn_k.weight", E, E);
        T(v, "attn_v.weight", E, E);
        T(o, "attn_out.weight", E, E);
        V(qb, "attn_q.bias", E);
        V(kb, "attn_k.bias", E);
        V(vb, "attn_v.bias", E);
        V(ob, "attn_out.bias", E);
        V(ln1w, "ln1.weight", E);
        V(ln1b, "ln1.bias", E);
        V(ln2w, "ln2.weight", E);
        V(ln2b, "ln2.bias", E);
        /* fc1 maps n_embd -> n_ff. Legacy files store it as ffn_down: detect by shape. */
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", l);
        const ids_tensor *dn = ids_gguf_find_tensor(g, nm);
        snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.weight", l);
        const ids_tensor *up = ids_gguf_find_tensor(g, nm);
        if (!dn || !up) {
            st = ids__err(err, IDS_ERR_NOT_FOUND, "%s: block %d lacks ffn_up/ffn_down weights", path, l);
            goto fail;
        }
        bool swapped = dn->ne[0] == E && up->ne[0] != E;
        if (l == 0) hp->ffn_swapped = swapped;
        const char *fc1n = swapped ? "ffn_down" : "ffn_up", *fc2n = swapped ? "ffn_up" : "ffn_down";
        const ids_tensor *fc1 = swapped ? dn : up;
        int F = (int)fc1->ne[1];
        if (l == 0) hp->n_ff = F;
        char s1[48], s2[48];
        snprintf(s1, sizeof s1, "%s.weight", fc1n);
        snprintf(s2, sizeof s2, "%s.weight", fc2n);
        T(fc1, s1, E, F);
        T(fc2, s2, F, E);
        snprintf(s1, sizeof s1, "%s.bias", fc1n);
        snprintf(s2, sizeof s2, "%s.bias", fc2n);
        V(fc1b, s1, F);
        V(fc2b, s2, E);
#undef T
#undef V
    }
    const ids_tensor *m0 = ids_gguf_find_tensor(g, "mm.0.weight");
    if (!m0) {
        st = ids__err(err, IDS_ERR_NOT_FOUND, "%s: projector tensor 'mm.0.weight' is missing", path);
        goto fail;
    }
    int H = (int)m0->ne[1];
    const int m_in = E * hp->merge * hp->merge;
    if ((st = ids__want_tensor(g, "mm.0.weight", m_in, H, true, &v->mm0, err))) goto fail;
    const ids_tensor *m2 = ids_gguf_find_tensor(g, "mm.2.weight");
    if (!m2) {
        st = ids__err(err, IDS_ERR_NOT_FOUND, "%s: projector tensor 'mm.2.weight' is missing", path);
        goto fail;
    }
    hp->n_out_embd = (int)m2->ne[1];
    if ((st = ids__want_tensor(g, "mm.2.weight", H, hp->n_out_embd, true, &v->mm2, err))) goto fail;
    if ((st = ids__load_vec(g, "mm.0.bias", H, false, &v->mm0b, err))) goto fail;
    if ((st = ids__load_vec(g, "mm.2.bias", hp->n_out_embd, false, &v->mm2b, err))) goto fail;
    *out = v;
    return IDS_OK;
fail:
    ids_vision_free(v);
    return st;
}

ids_status ids_vision_set_pixel_bounds(ids_vision *v, int min_pixels, int max_pixels, ids_err *err) {
    if (!v->hp.dynamic) return ids__err(err, IDS_ERR_ARG, "pixel bounds apply to dynamic-resolution towers only");
    const int f = v->hp.patch_size * v->hp.merge;
    if (min_pixels < f * f || max_pixels < min_pixels)
        return ids__err(err, IDS_ERR_RANGE, "pixel bounds %d..%d: the minimum must be >= %d and <= the maximum",
                        min_pixels, max_pixels, f * f);
    v->hp.min_pixels = min_pixels;
    v->hp.max_pixels = max_pixels;
    return IDS_OK;
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

ids_status ids_vision_plan(const ids_vision *v, const ids_image *frames, int n_frames, ids_vplan *out,
                           ids_err *err) {
    const ids_vparams *hp = &v->hp;
    memset(out, 0, sizeof *out);
    if (n_frames < 1 || !frames || !frames[0].rgb)
        return ids__err(err, IDS_ERR_ARG, "vision: no image given");
    if (!v->qwen) {
        if (n_frames != 1)
            return ids__err(err, IDS_ERR_UNSUPPORTED, "vision: projector '%s' takes single images, not %d frames",
                            hp->projector, n_frames);
        out->width = out->height = hp->image_size;
        out->grid_t = 1;
        out->grid_h = out->grid_w = hp->grid;
        out->n_out = hp->n_out;
        out->n_tokens = hp->n_tokens;
        return IDS_OK;
    }
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

/* Normalized planar pixels [3, H, W] at the planned size. */
static ids_status preprocess(const ids_vision *v, const ids_image *img, int W, int H, float *pixels, ids_err *err) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return ids__err(err, IDS_ERR_ARG, "preprocess: empty image");
    ids_image sq = {0}, rs = {0};
    const ids_image *cur = img;
    ids_status st = IDS_OK;
    if (!v->qwen && img->w != img->h) {
        const uint8_t mean_color[3] = {122, 116, 104};
        if ((st = ids_image_pad_square(img, mean_color, &sq, err))) return st;
        cur = &sq;
    }
    if (cur->w != W || cur->h != H) {
        if ((st = ids_image_resize_bicubic(cur, W, H, &rs, err))) {
            ids_image_free(&sq);
            return st;
        }
        cur = &rs;
    }
    for (int c = 0; c < 3; c++) {
        const float mean = v->hp.mean[c], std = v->hp.std[c];
        for (int i = 0; i < W * H; i++) {
            float x = (float)((double)cur->rgb[3 * i + c] * (1.0 / 255.0));
            pixels[(size_t)c * W * H + i] = (x - mean) / std;
        }
    }
    ids_image_free(&sq);
    ids_image_free(&rs);
    return IDS_OK;
}

ids_status ids_vision_preprocess(const ids_vision *v, const ids_image *img, float *pixels, ids_err *err) {
    ids_vplan pl;
    ids_status st = ids_vision_plan(v, img, 1, &pl, err);
    return st ? st : preprocess(v, img, pl.width, pl.height, pixels, err);
}

typedef struct {
    const float *q, *k, *v; /* [T, E] */
    float *out;             /* [T, E] */
    float *scores;          /* [threads, G, G] */
    int G, E, hd, n_head;   /* G: tokens per attention group (one temporal patch, or all) */
} vattn_job;

/* Task = (group, head): full attention among the group's tokens. */
static void vattn_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    vattn_job *j = arg;
    const int grp = t / j->n_head, h = t % j->n_head, G = j->G;
    const size_t off = (size_t)grp * G * j->E + (size_t)h * j->hd;
    float *S = j->scores + (size_t)tid * G * G;
    const float scale = 1.0f / sqrtf((float)j->hd);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, G, j->hd, scale, j->q + off, j->E, j->k + off, j->E,
                0.0f, S, G);
    for (int r = 0; r < G; r++) {
        float *s = S + (size_t)r * G, mx = -INFINITY;
        for (int c = 0; c < G; c++) if (s[c] > mx) mx = s[c];
        double sum = 0;
        for (int c = 0; c < G; c++) {
            s[c] = expf(s[c] - mx);
            sum += s[c];
        }
        const float inv = (float)(1.0 / sum);
        for (int c = 0; c < G; c++) s[c] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, G, j->hd, G, 1.0f, S, G, j->v + off, j->E, 0.0f,
                j->out + off, j->E);
}

/* 2-D rotary positions (Qwen2-VL vision): pairs (i, i + d/2); the first d/4 pairs turn with the
 * patch row y, the next d/4 with its column x, frequency 10000^(-4i'/d). cs: [T, d/2, 2]. */
static void rope2d(float *x, const float *cs, int T, int n_head, int hd) {
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

ids_status ids_vision_encode_frames(const ids_vision *v, const ids_image *frames, int n_frames, int n_threads,
                                    float *out, float *blocks, ids_err *err) {
    const ids_vparams *hp = &v->hp;
    ids_vplan pl;
    ids_status st = ids_vision_plan(v, frames, n_frames, &pl, err);
    if (st) return st;
    const int P = hp->patch_size, W = pl.width, Hh = pl.height, KP = 3 * P * P, E = hp->n_embd, F = hp->n_ff;
    const int gw = W / P, gh = Hh / P, NPF = gw * gh; /* patches per frame */
    const int T = pl.n_tokens, Hd = (int)v->mm0->ne[1], mg = hp->merge;
    const int G = v->qwen ? NPF : T; /* attention group */
    const int n_pix_frames = v->qwen ? 2 * pl.grid_t : 1;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    int max_w = E * mg * mg > F ? E * mg * mg : F;
    if (KP > max_w) max_w = KP;
    if (Hd > max_w) max_w = Hd;
    ids_ops o;
    if ((st = ids__ops_init(&o, n_threads, max_w, err))) return st;
    const size_t NP = (size_t)(v->qwen ? T : T - 1);
    const size_t nbuf = (size_t)n_pix_frames * 3 * W * Hh + 2 * NP * KP + (size_t)T * E * 7 + (size_t)T * F +
                        (size_t)n_threads * G * G + (size_t)pl.n_out * Hd + (size_t)T * (E / hp->n_head) +
                        (size_t)T * E * mg * mg / (mg * mg);
    float *mem = ids__malloc(nbuf * sizeof(float));
    if (!mem) {
        ids__ops_free(&o);
        return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d image", W, Hh);
    }
    float *pix = mem, *patches = pix + (size_t)n_pix_frames * 3 * W * Hh, *patches1 = patches + NP * KP,
          *x = patches1 + NP * KP, *xn = x + (size_t)T * E, *q = xn + (size_t)T * E, *k = q + (size_t)T * E,
          *vv = k + (size_t)T * E, *att = vv + (size_t)T * E, *tmp = att + (size_t)T * E, *ff = tmp + (size_t)T * E,
          *scores = ff + (size_t)T * F, *hid = scores + (size_t)n_threads * G * G, *cs = hid + (size_t)pl.n_out * Hd;
    for (int f = 0; f < n_pix_frames && !st; f++) {
        int src = f < n_frames ? f : n_frames - 1; /* odd frame counts repeat the last frame */
        st = preprocess(v, &frames[src], W, Hh, pix + (size_t)f * 3 * W * Hh, err);
    }
    if (st) goto done;
    /* patch rows in (channel, ky, kx) order; Qwen2-VL: 2x2 merge groups together */
    for (int t = 0; t < (v->qwen ? pl.grid_t : 1); t++)
        for (int i = 0; i < NPF; i++) {
            int py, px;
            if (v->qwen) {
                int grp = i / (mg * mg), in = i % (mg * mg);
                py = (grp / (gw / mg)) * mg + in / mg;
                px = (grp % (gw / mg)) * mg + in % mg;
                float *c2 = cs + ((size_t)t * NPF + i) * (E / hp->n_head);
                const int hd = E / hp->n_head, quarter = hd / 4;
                for (int a = 0; a < 2 * quarter; a++) {
                    double pos = a < quarter ? py : px, ex = (double)(a % quarter) * 4.0 / hd;
                    double th = pos * pow(10000.0, -ex);
                    c2[2 * a] = (float)cos(th);
                    c2[2 * a + 1] = (float)sin(th);
                }
            } else {
                py = i / gw;
                px = i % gw;
            }
            for (int which = 0; which < (v->qwen ? 2 : 1); which++) {
                const float *fr = pix + (size_t)(v->qwen ? 2 * t + which : 0) * 3 * W * Hh;
                float *row = (which ? patches1 : patches) + ((size_t)t * NPF + i) * KP;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < P; ky++)
                        memcpy(row + (c * P + ky) * P, fr + (size_t)c * W * Hh + (size_t)(py * P + ky) * W + px * P,
                               (size_t)P * sizeof(float));
            }
        }
    if (v->qwen) {
        ids__matmul(&o, &v->patch, patches, T, x, v->patch_b);
        ids__matmul(&o, &v->patch1, patches1, T, tmp, NULL);
        for (size_t i = 0; i < (size_t)T * E; i++) x[i] += tmp[i];
    } else {
        ids__matmul(&o, &v->patch, patches, (int)NP, x + E, v->patch_b);
        memcpy(x, v->cls, (size_t)E * sizeof(float));
        for (size_t i = 0; i < (size_t)T * E; i++) x[i] += v->pos[i];
    }
    if (v->pre_w) ids__layernorm(&o, x, x, v->pre_w, v->pre_b, E, T, hp->eps);
    for (int l = 0; l < hp->n_run; l++) {
        const vblock *b = &v->blk[l];
        ids__layernorm(&o, x, xn, b->ln1w, b->ln1b, E, T, hp->eps);
        ids__matmul(&o, b->q, xn, T, q, b->qb);
        ids__matmul(&o, b->k, xn, T, k, b->kb);
        ids__matmul(&o, b->v, xn, T, vv, b->vb);
        if (v->qwen) {
            rope2d(q, cs, T, hp->n_head, E / hp->n_head);
            rope2d(k, cs, T, hp->n_head, E / hp->n_head);
        }
        vattn_job aj = {q, k, vv, att, scores, G, E, E / hp->n_head, hp->n_head};
        ids__pool_run(o.pool, (T / G) * hp->n_head, vattn_task, &aj);
        ids__matmul(&o, b->o, att, T, tmp, b->ob);
        for (size_t i = 0; i < (size_t)T * E; i++) x[i] += tmp[i];
        ids__layernorm(&o, x, xn, b->ln2w, b->ln2b, E, T, hp->eps);
        ids__matmul(&o, b->fc1, xn, T, ff, b->fc1b);
        const size_t nf = (size_t)T * F;
        if (hp->use_gelu)
            for (size_t i = 0; i < nf; i++) ff[i] = 0.5f * ff[i] * (1.0f + erff(ff[i] * (float)M_SQRT1_2));
        else
            for (size_t i = 0; i < nf; i++) ff[i] = ff[i] / (1.0f + expf(-1.702f * ff[i]));
        ids__matmul(&o, b->fc2, ff, T, tmp, b->fc2b);
        for (size_t i = 0; i < (size_t)T * E; i++) x[i] += tmp[i];
        if (blocks) memcpy(blocks + (size_t)l * T * E, x, (size_t)T * E * sizeof(float));
    }
    if (v->qwen) {
        /* post-LN, then each 2x2 group's four rows side by side: [T/4, 4E] (rows are contiguous) */
        if (v->post_w) ids__layernorm(&o, x, x, v->post_w, v->post_b, E, T, hp->eps);
        ids__matmul(&o, v->mm0, x, pl.n_out, hid, v->mm0b);
    } else {
        ids__matmul(&o, v->mm0, x + E, pl.n_out, hid, v->mm0b); /* CLS (row 0) dropped */
    }
    for (size_t i = 0; i < (size_t)pl.n_out * Hd; i++) hid[i] = 0.5f * hid[i] * (1.0f + erff(hid[i] * (float)M_SQRT1_2));
    ids__matmul(&o, v->mm2, hid, pl.n_out, out, v->mm2b);
done:
    free(mem);
    ids__ops_free(&o);
    return st;
}

ids_status ids_vision_encode(const ids_vision *v, const ids_image *img, int n_threads, float *out,
                             float *blocks, ids_err *err) {
    return ids_vision_encode_frames(v, img, 1, n_threads, out, blocks, err);
}
