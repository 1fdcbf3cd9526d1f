/* Vision towers, following the HF definitions. Three families, one file each for what is their own:
 *  - LLaVA-1.5 "mlp" (vision_clip.c): CLIP ViT, CLS first (position 0), patches at positions
 *    1..n, pre-LN, pre-norm blocks with biases, quick-GELU (or exact GELU), stream after n_run
 *    blocks, CLS dropped, mm.0 -> GELU(erf) -> mm.2.
 *  - Qwen2-VL "qwen2vl_merger" (vision_qwen2vl.c): dynamic resolution, patch embedding from two
 *    temporal kernels (two frames, or one frame twice), patches in 2x2-merge order, 2-D rotary
 *    positions, full attention inside each temporal patch, post-LN, 2x2 merge, mm.0 -> GELU(erf)
 *    -> mm.2.
 *  - Qwen2.5-VL "qwen2.5vl_merger" (vision_qwen25vl.c): as Qwen2-VL, with RMSNorm, a gated SiLU MLP
 *    and window attention (patches in window order between the patch embedding and the merger; the
 *    blocks given by n_wa_pattern attend across the windows of their temporal patch).
 *  - Qwen3-VL "qwen3vl_merger" (vision_qwen3vl.c): as Qwen2-VL, with a fused qkv, learned positions
 *    interpolated to the grid, a tanh-GELU MLP and DeepStack mergers on chosen blocks.
 *  - InternVL 2.5/3 "internvl" (vision_internvl.c): HF's dynamic tiles plus a thumbnail, each tile a
 *    CLIP-like InternViT pass (CLS first, layer scale on both branches), pixel shuffle, LayerNorm +
 *    MLP projector.
 * This file: loading steps they share, the dispatch on the projector type, planning,
 * preprocessing, the transformer blocks and the projector. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "engine/vision.h"

#include <cblas.h>
#include <math.h>
#include <unistd.h>

void ids_vision_free(ids_vision *v) {
    if (!v) return;
    if (v->blk) {
        for (int i = 0; i < v->hp.n_layer; i++) {
            ids_vblock *b = &v->blk[i];
            float *f[] = {b->qb,   b->kb,   b->vb,   b->ob,   b->fc1b, b->fc2b, b->gateb, b->ln1w,
                          b->ln1b, b->ln2w, b->ln2b, b->ls1,  b->ls2,  b->qn,   b->kn};
            for (size_t k = 0; k < sizeof f / sizeof *f; k++) free(f[k]);
        }
        free(v->blk);
    }
    ids__vision_free_qwen3vl(v);
    ids__vision_free_mllama(v);
    free(v->patch_b);
    free(v->post_w);
    free(v->post_b);
    free(v->cls);
    free(v->pos);
    free(v->pre_w);
    free(v->pre_b);
    free(v->mm0b);
    free(v->mm2b);
    free(v->soft_norm);
    free(v->proj_f);
    free(v->mm_ln_w);
    free(v->mm_ln_b);
    free(v->pinpoints);
    free(v->newline);
    ids__packs_free(v->packs);
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

ids_status ids__vision_load_hparams(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    ids_status st;
    if ((st = req_u32(g, "clip.vision.image_size", &hp->image_size, err))) return st;
    if ((st = req_u32(g, "clip.vision.patch_size", &hp->patch_size, err))) return st;
    if ((st = req_u32(g, "clip.vision.embedding_length", &hp->n_embd, err))) return st;
    if ((st = req_u32(g, "clip.vision.block_count", &hp->n_layer, err))) return st;
    if ((st = req_u32(g, "clip.vision.attention.head_count", &hp->n_head, err))) return st;
    if ((st = ids_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps, err))) return st;
    if ((st = f32x3(g, "clip.vision.image_mean", hp->mean, err))) return st;
    if ((st = f32x3(g, "clip.vision.image_std", hp->std, err))) return st;
    hp->use_gelu = false;
    st = ids_gguf_get_bool(g, "clip.use_gelu", &hp->use_gelu, err);
    if (st && st != IDS_ERR_NOT_FOUND) return st;
    if (hp->image_size % hp->patch_size || hp->n_embd % hp->n_head)
        return ids__err(err, IDS_ERR_FORMAT, "%s: image size %d is not a multiple of patch size %d, or width %d "
                        "not of %d heads", path, hp->image_size, hp->patch_size, hp->n_embd, hp->n_head);
    hp->grid = hp->image_size / hp->patch_size;
    hp->n_tokens = hp->grid * hp->grid + 1;
    hp->n_out = hp->grid * hp->grid;
    hp->n_run = hp->n_layer;
    hp->merge = 1;
    hp->mrope_t_step = 1;
    return IDS_OK;
}

ids_status ids__vision_load_feature_layer(ids_vision *v, ids_err *err) {
    ids_vparams *hp = &v->hp;
    const ids_gguf_value *fl;
    ids_status st = ids_gguf_get_arr(v->g, "clip.vision.feature_layer", -1, &fl, err);
    if (st == IDS_ERR_NOT_FOUND) return IDS_OK;
    if (st) return st;
    int64_t mx = -1;
    for (uint64_t i = 0; i < fl->v.arr.n; i++) {
        int64_t x;
        if (ids_gguf_arr_i64(fl, i, &x) == IDS_OK && x > mx) mx = x;
    }
    if (mx < 0 || mx > hp->n_layer)
        return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.feature_layer %lld is outside 0..%d (stored blocks)",
                        ids_gguf_path(v->g), (long long)mx, hp->n_layer);
    hp->n_run = (int)mx;
    return IDS_OK;
}

ids_status ids__vision_load_patch_embd(ids_vision *v, ids_err *err) {
    const char *path = ids_gguf_path(v->g);
    const int E = v->hp.n_embd, P = v->hp.patch_size;
    const ids_tensor *pw = ids_gguf_find_tensor(v->g, "v.patch_embd.weight");
    if (!pw || pw->ne[0] != P || pw->ne[1] != P || pw->ne[2] != 3 || pw->ne[3] != E)
        return ids__err(err, pw ? IDS_ERR_FORMAT : IDS_ERR_NOT_FOUND, "%s: tensor 'v.patch_embd.weight' %s "
                        "(expected [%d, %d, 3, %d])", path, pw ? "has the wrong shape" : "is missing", P, P, E);
    if (!ids_type_can_dequantize(pw->type))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: v.patch_embd.weight has unreadable type %s", path,
                        ids_type_name(pw->type));
    v->patch = *pw;
    v->patch.n_dims = 2;
    v->patch.ne[0] = 3LL * P * P;
    v->patch.ne[1] = E;
    v->patch.ne[2] = v->patch.ne[3] = 1;
    return ids__load_vec(v->g, "v.patch_embd.bias", E, false, &v->patch_b, err);
}

/* One block's weights; fc1 maps n_embd -> n_ff (legacy files store it as ffn_down: detected by
 * shape, and the first block's naming and n_ff are recorded). */
static ids_status load_block(ids_vision *v, int l, ids_err *err) {
    const ids_gguf *g = v->g;
    ids_vparams *hp = &v->hp;
    const int E = hp->n_embd;
    ids_vblock *b = &v->blk[l];
    ids_status st;
    char nm[96];
#define T(field, suffix, ne0, ne1)                                            \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__want_tensor(g, nm, ne0, ne1, true, &b->field, err))) return st;
#define V(field, suffix, n)                                                   \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix);                        \
    if ((st = ids__load_vec(g, nm, n, false, &b->field, err))) return st;
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
    snprintf(nm, sizeof nm, "v.blk.%d.ffn_down.weight", l);
    const ids_tensor *dn = ids_gguf_find_tensor(g, nm);
    snprintf(nm, sizeof nm, "v.blk.%d.ffn_up.weight", l);
    const ids_tensor *up = ids_gguf_find_tensor(g, nm);
    if (!dn || !up)
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s: block %d lacks ffn_up/ffn_down weights", ids_gguf_path(g), l);
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
    return IDS_OK;
}

ids_status ids__vision_load_blocks(ids_vision *v, ids_err *err) {
    ids_status st;
    v->blk = ids__calloc((size_t)v->hp.n_layer, sizeof *v->blk);
    if (!v->blk) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", ids_gguf_path(v->g));
    for (int l = 0; l < v->hp.n_layer; l++)
        if ((st = load_block(v, l, err))) return st;
    return IDS_OK;
}

ids_status ids__vision_load_tower(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const int E = v->hp.n_embd;
    ids_status st;
    if ((st = ids__load_vec(g, "v.pre_ln.weight", E, false, &v->pre_w, err))) return st;
    if ((st = ids__load_vec(g, "v.pre_ln.bias", E, false, &v->pre_b, err))) return st;
    if ((st = ids__vision_load_blocks(v, err))) return st;
    return ids__vision_load_projector(v, err);
}

ids_status ids__vision_load_projector(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    const int E = hp->n_embd;
    ids_status st;
    const ids_tensor *m0 = ids_gguf_find_tensor(g, "mm.0.weight");
    if (!m0) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: projector tensor 'mm.0.weight' is missing", path);
    int H = (int)m0->ne[1];
    const int m_in = E * hp->merge * hp->merge;
    if ((st = ids__want_tensor(g, "mm.0.weight", m_in, H, true, &v->mm0, err))) return st;
    const ids_tensor *m2 = ids_gguf_find_tensor(g, "mm.2.weight");
    if (!m2) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: projector tensor 'mm.2.weight' is missing", path);
    hp->n_out_embd = (int)m2->ne[1];
    if ((st = ids__want_tensor(g, "mm.2.weight", H, hp->n_out_embd, true, &v->mm2, err))) return st;
    if ((st = ids__load_vec(g, "mm.0.bias", H, false, &v->mm0b, err))) return st;
    return ids__load_vec(g, "mm.2.bias", hp->n_out_embd, false, &v->mm2b, err);
}

/* An mmproj file (general.architecture "clip") and the projector type that picks the family. */
static ids_status read_projector(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g), *s;
    ids_status st = ids_gguf_get_str(g, "general.architecture", &s, err);
    if (st) return st;
    if (strcmp(s, "clip") != 0)
        return ids__err(err, IDS_ERR_FORMAT, "%s: general.architecture is '%s', expected 'clip' (an mmproj file)",
                        path, s);
    st = ids_gguf_get_str(g, "clip.projector_type", &s, err);
    if (st == IDS_ERR_NOT_FOUND) st = ids_gguf_get_str(g, "clip.vision.projector_type", &s, err);
    if (st == IDS_ERR_NOT_FOUND) { /* very old LLaVA files carry only has_llava_projector */
        bool llava = false;
        ids_gguf_get_bool(g, "clip.has_llava_projector", &llava, NULL);
        if (llava) s = "mlp", st = IDS_OK;
    }
    if (st) return st;
    snprintf(v->hp.projector, sizeof v->hp.projector, "%s", s);
    v->qwen25 = !strcmp(s, "qwen2.5vl_merger");
    v->qwen3 = !strcmp(s, "qwen3vl_merger");
    v->qwen = v->qwen25 || v->qwen3 || !strcmp(s, "qwen2vl_merger");
    v->gemma3 = !strcmp(s, "gemma3");
    v->internvl = !strcmp(s, "internvl");
    v->onevision = !strcmp(s, "llava_onevision");
    if (strcmp(s, "mlp") != 0 && !v->qwen && !v->gemma3 && !v->internvl && !v->onevision && strcmp(s, "mllama"))
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: projector type '%s' is not supported (supported: mlp, "
                        "qwen2vl_merger, qwen2.5vl_merger, qwen3vl_merger, internvl, llava_onevision, mllama, gemma3)",
                        path, s);
    return IDS_OK;
}

ids_status ids_vision_load(ids_vision **out, const char *path, ids_err *err) {
    *out = NULL;
    ids_vision *v = ids__calloc(1, sizeof *v);
    if (!v) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    ids_status st = ids_gguf_open_model(&v->g, path, IDS_HF_VISION, err); /* a GGUF file or an HF folder */
    if (!st) st = ids__packs_new(&v->packs, v->g, err);
    if (!st) st = read_projector(v, err);
    if (!st)
        st = v->qwen3      ? ids__vision_load_qwen3vl(v, err)
             : v->qwen25   ? ids__vision_load_qwen25vl(v, err)
             : v->qwen     ? ids__vision_load_qwen2vl(v, err)
             : v->gemma3   ? ids__vision_load_gemma3(v, err)
             : v->internvl ? ids__vision_load_internvl(v, err)
             : v->onevision ? ids__vision_load_onevision(v, err)
             : !strcmp(v->hp.projector, "mllama") ? ids__vision_load_mllama(v, err)
                           : ids__vision_load_clip(v, err);
    if (st) {
        ids_vision_free(v);
        return st;
    }
    *out = v;
    return IDS_OK;
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

ids_status ids_vision_plan(const ids_vision *v, const ids_image *frames, int n_frames, ids_vplan *out,
                           ids_err *err) {
    const ids_vparams *hp = &v->hp;
    memset(out, 0, sizeof *out);
    if (n_frames < 1 || !frames || !frames[0].rgb)
        return ids__err(err, IDS_ERR_ARG, "vision: no image given");
    if (v->qwen) return ids__vision_plan_qwen2vl(v, frames, n_frames, out, err);
    if (v->internvl) return ids__vision_plan_internvl(v, frames, n_frames, out, err);
    if (v->onevision) return ids__vision_plan_onevision(v, frames, n_frames, n_frames > 1, out, err);
    if (v->ml && n_frames == 1) return ids__vision_plan_mllama(v, frames, out, err);
    if (n_frames != 1)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "vision: projector '%s' takes single images, not %d frames",
                        hp->projector, n_frames);
    out->width = out->height = hp->image_size;
    out->grid_t = 1;
    out->grid_h = out->grid_w = v->gemma3 ? hp->grid / v->pool : hp->grid;
    out->n_out = hp->n_out;
    out->n_tokens = hp->n_tokens;
    out->tiles_w = out->tiles_h = 1;
    return IDS_OK;
}

/* Normalized planar pixels [3, H, W] at the planned size. */
static ids_status preprocess(const ids_vision *v, const ids_image *img, int W, int H, float *pixels, ids_err *err) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return ids__err(err, IDS_ERR_ARG, "preprocess: empty image");
    ids_image sq = {0}, rs = {0};
    const ids_image *cur = img;
    ids_status st = IDS_OK;
    if (!v->qwen && !v->gemma3 && img->w != img->h) { /* LLaVA-1.5 pads; Gemma 3 stretches */
        const uint8_t mean_color[3] = {122, 116, 104};
        if ((st = ids_image_pad_square(img, mean_color, &sq, err))) return st;
        cur = &sq;
    }
    if (cur->w != W || cur->h != H) {
        st = v->gemma3 ? ids_image_resize_bilinear(cur, W, H, &rs, err) : ids_image_resize_bicubic(cur, W, H, &rs, err);
        if (st) {
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
    if (!st && v->internvl) return ids__vision_tiles_internvl(v, img, 1, pixels, err);
    if (!st && v->onevision) return ids__vision_tiles_onevision(v, img, 1, false, pixels, err);
    int ratio, n_tiles;
    if (!st && v->ml) return ids__vision_tiles_mllama(v, img, pixels, &ratio, &n_tiles, err);
    return st ? st : preprocess(v, img, pl.width, pl.height, pixels, err);
}

/* Attention in tiles: each task takes a block of at most VQ query rows of one (group, head) and
 * walks the group's keys in blocks of at most vk_block, so that a thread's scores are VQ x vk_block
 * floats whatever the number of patches (a 4096-patch group would need 64 MB per thread at once).
 * A group of at most vk_block keys is one block: scores, softmax over the whole row, P.V, as the
 * HF definition writes it. Longer groups keep a running maximum and sum per row (online softmax):
 * the output rows are rescaled by exp(old max - new max) when a block raises the maximum and
 * divided by the sum at the end, which equals the one-block result up to float rounding. */
enum { VQ = 64, VK_DEFAULT = 2048 };
static int vk_block = VK_DEFAULT;

void ids__vision_set_key_block(int keys) { vk_block = keys > 0 ? keys : VK_DEFAULT; }

size_t ids__vision_attn_scratch(int Gmax) {
    const int q = Gmax < VQ ? Gmax : VQ, k = Gmax < vk_block ? Gmax : vk_block;
    return (size_t)q * k;
}

typedef struct {
    const float *q, *k, *v; /* [T, E] */
    float *out;             /* [T, E] */
    float *scores;          /* [threads, ids__vision_attn_scratch(Gmax)] */
    const int *seg;         /* n_seg + 1 row offsets: the attention groups (a window, a temporal patch, all) */
    int n_qb, Gmax, E, hd, n_head;
} vattn_job;

/* One key block [k0, k0 + nk) for the nq query rows at q (rows of stride E); S [nq, nk]. first:
 * the first block of the row (m, l start here); last: divide by the sums. */
static void vattn_keys(const vattn_job *j, const float *q, const float *k, const float *v, float *o, int nq, int nk,
                       float *S, float *m, double *l, bool first, bool last) {
    const float scale = 1.0f / sqrtf((float)j->hd);
    const int E = j->E, hd = j->hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, scale, q, E, k, E, 0.0f, S, nk);
    for (int r = 0; r < nq; r++) {
        float *s = S + (size_t)r * nk, mx = first ? -INFINITY : m[r];
        for (int c = 0; c < nk; c++) if (s[c] > mx) mx = s[c];
        double sum = 0;
        for (int c = 0; c < nk; c++) {
            s[c] = expf(s[c] - mx);
            sum += s[c];
        }
        if (first && last) { /* one block: normalized probabilities, as the reference */
            const float inv = (float)(1.0 / sum);
            for (int c = 0; c < nk; c++) s[c] *= inv;
            continue;
        }
        if (!first && mx > m[r]) {
            const float f = expf(m[r] - mx);
            float *orow = o + (size_t)r * E;
            for (int d = 0; d < hd; d++) orow[d] *= f;
            l[r] *= f;
        }
        l[r] = first ? sum : l[r] + sum;
        m[r] = mx;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, S, nk, v, E, first ? 0.0f : 1.0f, o, E);
    if (!last || first) return;
    for (int r = 0; r < nq; r++) {
        const float inv = (float)(1.0 / l[r]);
        float *orow = o + (size_t)r * E;
        for (int d = 0; d < hd; d++) orow[d] *= inv;
    }
}

/* Task = (group, head, block of query rows): attention of those rows over the group's keys. */
static void vattn_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    vattn_job *j = arg;
    const int qb = t % j->n_qb, gh = t / j->n_qb, grp = gh / j->n_head, h = gh % j->n_head;
    const int G = j->seg[grp + 1] - j->seg[grp], r0 = qb * VQ;
    if (r0 >= G) return;
    const int nq = G - r0 < VQ ? G - r0 : VQ, kb = G < vk_block ? G : vk_block;
    const size_t off = (size_t)j->seg[grp] * j->E + (size_t)h * j->hd, qoff = off + (size_t)r0 * j->E;
    float *S = j->scores + (size_t)tid * ids__vision_attn_scratch(j->Gmax), m[VQ];
    double l[VQ];
    for (int k0 = 0; k0 < G; k0 += kb) {
        const int nk = G - k0 < kb ? G - k0 : kb;
        vattn_keys(j, j->q + qoff, j->k + off + (size_t)k0 * j->E, j->v + off + (size_t)k0 * j->E, j->out + qoff, nq,
                   nk, S, m, l, k0 == 0, k0 + nk >= G);
    }
}

/* The block norm of the family: LayerNorm (w, b), or RMSNorm (w; b NULL) when v->rms. */
static void vnorm(const ids_vision *v, ids_ops *o, const float *x, float *y, const float *w, const float *b,
                  int rows) {
    const ids_vparams *hp = &v->hp;
    if (!v->rms) {
        ids__layernorm(o, x, y, w, b, hp->n_embd, rows, hp->eps);
        return;
    }
    ids__rmsnorm(o, x, y, w, hp->n_embd, rows, hp->eps);
}

/* Each row of x [rows, n] times the vector s [n] (layer scale). */
static void scale_rows(float *x, const float *s, int rows, int n) {
    for (size_t r = 0; r < (size_t)rows; r++)
        for (int i = 0; i < n; i++) x[r * n + i] *= s[i];
}

void ids__vision_run_block(const ids_vision *v, ids_ops *o, const ids_vblock *b, int T, const int *seg, int n_seg,
                           int Gmax, ids_vbufs *w) {
    const ids_vparams *hp = &v->hp;
    const int E = hp->n_embd, F = hp->n_ff;
    float *x = w->x, *xn = w->xn, *q = w->q, *k = w->k, *vv = w->v, *tmp = w->tmp, *ff = w->ff;
    vnorm(v, o, x, xn, b->ln1w, b->ln1b, T);
    {
        const ids_tensor *wt[3] = {b->q, b->k, b->v};
        float *y[3] = {q, k, vv};
        const float *bs[3] = {b->qb, b->kb, b->vb};
        ids__matmul_n(o, 3, wt, xn, T, y, bs);
    }
    if (b->qn) { /* HF InternVLVisionRMSNorm over the whole width (eps 1e-6), before the heads split */
        ids__rmsnorm(o, q, q, b->qn, E, T, 1e-6f);
        ids__rmsnorm(o, k, k, b->kn, E, T, 1e-6f);
    }
    if (v->qwen) {
        ids__vision_rope2d(q, w->cs, T, hp->n_head, E / hp->n_head);
        ids__vision_rope2d(k, w->cs, T, hp->n_head, E / hp->n_head);
    }
    const int n_qb = (Gmax + VQ - 1) / VQ;
    vattn_job aj = {q, k, vv, w->att, w->scores, seg, n_qb, Gmax, E, E / hp->n_head, hp->n_head};
    ids__pool_run(o->pool, n_seg * hp->n_head * n_qb, vattn_task, &aj);
    ids__matmul(o, b->o, w->att, T, tmp, b->ob);
    if (b->ls1) scale_rows(tmp, b->ls1, T, E);
    for (size_t i = 0; i < (size_t)T * E; i++) x[i] += tmp[i];
    vnorm(v, o, x, xn, b->ln2w, b->ln2b, T);
    const size_t nf = (size_t)T * F;
    if (b->gate) { /* down(silu(gate x) * up x) */
        float *g = w->ff2;
        const ids_tensor *wt[2] = {b->fc1, b->gate};
        float *y[2] = {ff, g};
        const float *bs[2] = {b->fc1b, b->gateb};
        ids__matmul_n(o, 2, wt, xn, T, y, bs);
        for (size_t i = 0; i < nf; i++) ff[i] *= g[i] / (1.0f + expf(-g[i]));
    } else {
        ids__matmul(o, b->fc1, xn, T, ff, b->fc1b);
        if (v->gemma3 || v->gelu_tanh) /* SigLIP, Qwen3-VL: gelu_pytorch_tanh */
            for (size_t i = 0; i < nf; i++) ff[i] = ids__gelu_tanh(ff[i]);
        else if (hp->use_gelu)
            for (size_t i = 0; i < nf; i++) ff[i] = 0.5f * ff[i] * (1.0f + erff(ff[i] * (float)M_SQRT1_2));
        else
            for (size_t i = 0; i < nf; i++) ff[i] = ff[i] / (1.0f + expf(-1.702f * ff[i]));
    }
    ids__matmul(o, b->fc2, ff, T, tmp, b->fc2b);
    if (b->ls2) scale_rows(tmp, b->ls2, T, E);
    for (size_t i = 0; i < (size_t)T * E; i++) x[i] += tmp[i];
}

/* The projector on the tower's output: out [n_out, n_out_embd]. Qwen2-VL: post-LN, then each 2x2
 * group's four rows side by side ([T/4, 4E]: the rows are contiguous); CLIP: CLS (row 0) dropped. */
static void project(const ids_vision *v, ids_ops *o, const ids_vplan *pl, ids_vbufs *w, float *out) {
    const ids_vparams *hp = &v->hp;
    const int E = hp->n_embd, T = pl->n_tokens, Hd = (int)v->mm0->ne[1];
    float *x = w->x, *hid = w->hid;
    if (v->gemma3) {
        ids__vision_project_gemma3(v, o, w, out);
        return;
    }
    if (v->qwen) {
        if (v->post_w) vnorm(v, o, x, x, v->post_w, v->post_b, T);
        ids__matmul(o, v->mm0, x, pl->n_out, hid, v->mm0b);
    } else {
        ids__matmul(o, v->mm0, x + E, pl->n_out, hid, v->mm0b);
    }
    for (size_t i = 0; i < (size_t)pl->n_out * Hd; i++) hid[i] = 0.5f * hid[i] * (1.0f + erff(hid[i] * (float)M_SQRT1_2));
    ids__matmul(o, v->mm2, hid, pl->n_out, out, v->mm2b);
}

/* The scratch of one encode in one allocation (*mem, freed by the caller). */
static ids_status alloc_bufs(const ids_vision *v, const ids_vplan *pl, int n_threads, ids_vbufs *w, float **mem,
                             ids_err *err) {
    const ids_vparams *hp = &v->hp;
    const int P = hp->patch_size, W = pl->width, Hh = pl->height, KP = 3 * P * P, E = hp->n_embd, F = hp->n_ff;
    const int T = pl->n_tokens, Hd = (int)v->mm0->ne[1], mg = hp->merge;
    const int G = v->qwen ? (W / P) * (Hh / P) : T; /* attention group */
    const int n_pix_frames = v->qwen ? 2 * pl->grid_t : 1;
    const size_t NP = (size_t)(v->qwen || v->gemma3 ? T : T - 1);
    const size_t nff = (size_t)T * F * (v->qwen25 ? 2 : 1); /* the gated MLP's two halves */
    const size_t nbuf = (size_t)n_pix_frames * 3 * W * Hh + 2 * NP * KP + (size_t)T * E * 7 + nff +
                        (size_t)n_threads * ids__vision_attn_scratch(G) + (size_t)pl->n_out * Hd + (size_t)T * (E / hp->n_head) +
                        (size_t)T * E * mg * mg / (mg * mg);
    float *m = *mem = ids__malloc(nbuf * sizeof(float));
    if (!m) return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d image", W, Hh);
    w->W = W;
    w->H = Hh;
    w->pix = m;
    w->patches = w->pix + (size_t)n_pix_frames * 3 * W * Hh;
    w->patches1 = w->patches + NP * KP;
    w->x = w->patches1 + NP * KP;
    w->xn = w->x + (size_t)T * E;
    w->q = w->xn + (size_t)T * E;
    w->k = w->q + (size_t)T * E;
    w->v = w->k + (size_t)T * E;
    w->att = w->v + (size_t)T * E;
    w->tmp = w->att + (size_t)T * E;
    w->ff = w->tmp + (size_t)T * E;
    w->ff2 = v->qwen25 ? w->ff + (size_t)T * F : NULL;
    w->scores = w->ff + nff;
    w->hid = w->scores + (size_t)n_threads * ids__vision_attn_scratch(G);
    w->cs = w->hid + (size_t)pl->n_out * Hd;
    return IDS_OK;
}

ids_status ids_vision_encode_frames(const ids_vision *v, const ids_image *frames, int n_frames, int n_threads,
                                    float *out, float *blocks, ids_err *err) {
    return ids_vision_encode_deepstack(v, frames, n_frames, n_threads, out, NULL, blocks, err);
}

ids_status ids_vision_encode_deepstack(const ids_vision *v, const ids_image *frames, int n_frames, int n_threads,
                                       float *out, float *deepstack, float *blocks, ids_err *err) {
    const ids_vparams *hp = &v->hp;
    if (v->internvl) return ids__vision_encode_internvl(v, frames, n_frames, n_threads, out, blocks, err);
    if (v->onevision) return ids__vision_encode_onevision(v, frames, n_frames, n_frames > 1, n_threads, out, blocks, err);
    ids_vplan pl;
    if (v->ml) {
        ids_status s0 = ids_vision_plan(v, frames, n_frames, &pl, err);
        return s0 ? s0 : ids__vision_encode_mllama(v, frames, n_threads, out, blocks, err);
    }
    ids_status st = ids_vision_plan(v, frames, n_frames, &pl, err);
    if (st) return st;
    const int P = hp->patch_size, KP = 3 * P * P, E = hp->n_embd, F = hp->n_ff;
    const int T = pl.n_tokens, Hd = (int)v->mm0->ne[1], mg = hp->merge;
    const int G = v->qwen ? (pl.width / P) * (pl.height / P) : T; /* attention group: a temporal patch, or all */
    const int n_pix_frames = v->qwen ? 2 * pl.grid_t : 1;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    int max_w = E * mg * mg > F ? E * mg * mg : F;
    if (KP > max_w) max_w = KP;
    if (Hd > max_w) max_w = Hd;
    ids_ops o;
    if ((st = ids__ops_init(&o, n_threads, max_w, T < 1024 ? T : 1024, IDS_PREC_F32, err))) return st;
    o.packs = v->packs;
    ids_vbufs w;
    float *mem = NULL;
    int *ib = NULL;
    if ((st = alloc_bufs(v, &pl, n_threads, &w, &mem, err))) goto done;
    /* attention groups: fseg = the temporal patches (or all tokens); Qwen2.5-VL: the windows too */
    const int n_fs = T / G, gf = mg * mg * E;
    size_t n_groups = 0, max_seg = 0;
    if (v->qwen25) ids__vision_windows_size(&pl, &n_groups, &max_seg);
    ib = ids__malloc(sizeof(int) * (n_groups + max_seg + 1 + (size_t)n_fs + 1));
    if (!ib) {
        st = ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d image", pl.width, pl.height);
        goto done;
    }
    int *win = ib, *wseg = ib + n_groups, *fseg = wseg + max_seg + 1, n_wseg = 0;
    for (int i = 0; i <= n_fs; i++) fseg[i] = i * G;
    if (v->qwen25) ids__vision_windows_qwen25vl(v, &pl, win, wseg, &n_wseg);
    for (int f = 0; f < n_pix_frames && !st; f++) {
        int src = f < n_frames ? f : n_frames - 1; /* odd frame counts repeat the last frame */
        st = preprocess(v, &frames[src], w.W, w.H, w.pix + (size_t)f * 3 * w.W * w.H, err);
    }
    if (st) goto done;
    if (v->qwen) ids__vision_embed_qwen2vl(v, &o, &pl, &w);
    else if (v->gemma3) ids__vision_embed_siglip(v, &o, &w);
    else ids__vision_embed_clip(v, &o, &w);
    if (v->qwen3) ids__vision_add_pos_qwen3vl(v, &pl, w.x);
    if (v->pre_w) ids__layernorm(&o, w.x, w.x, v->pre_w, v->pre_b, E, T, hp->eps);
    if (v->qwen25) { /* patches and their rotary table into window order (whole 2x2 groups move) */
        const int hd = E / hp->n_head;
        ids__vision_permute_groups(w.xn, w.x, win, n_groups, (size_t)gf, false);
        memcpy(w.x, w.xn, (size_t)T * E * sizeof(float));
        ids__vision_permute_groups(w.tmp, w.cs, win, n_groups, (size_t)mg * mg * hd, false);
        memcpy(w.cs, w.tmp, (size_t)T * hd * sizeof(float));
    }
    for (int l = 0; l < hp->n_run; l++) {
        const bool full = !v->qwen25 || v->blk[l].full_attn;
        ids__vision_run_block(v, &o, &v->blk[l], T, full ? fseg : wseg, full ? n_fs : n_wseg, G, &w);
        for (int k = 0; deepstack && k < hp->n_deepstack; k++)
            if (hp->deepstack_layer[k] == l)
                ids__vision_deepstack_qwen3vl(v, &o, k, pl.n_out, w.x, w.xn, w.hid,
                                              deepstack + (size_t)k * pl.n_out * hp->n_out_embd);
        if (!blocks) continue;
        if (v->qwen25) ids__vision_permute_groups(blocks + (size_t)l * T * E, w.x, win, n_groups, (size_t)gf, true);
        else memcpy(blocks + (size_t)l * T * E, w.x, (size_t)T * E * sizeof(float));
    }
    if (v->qwen25) { /* back to merge order: the merger's rows come out in raster order of the merged grid */
        ids__vision_permute_groups(w.xn, w.x, win, n_groups, (size_t)gf, true);
        memcpy(w.x, w.xn, (size_t)T * E * sizeof(float));
    }
    project(v, &o, &pl, &w, out);
done:
    free(ib);
    free(mem);
    ids__ops_free(&o);
    return st;
}

ids_status ids_vision_encode(const ids_vision *v, const ids_image *img, int n_threads, float *out,
                             float *blocks, ids_err *err) {
    return ids_vision_encode_frames(v, img, 1, n_threads, out, blocks, err);
}
