/* LLaVA-OneVision / LLaVA-Video-Qwen2 vision tower (projector "llava_onevision", HF
 * LlavaOnevisionForConditionalGeneration; llama.cpp has no such projector, so the type and its keys
 * are idscope's): SigLIP at one square size (no CLS, learned positions, pre-norm blocks with biases,
 * GELU (tanh)), the stream after clip.vision.block_count blocks (HF hidden_states[vision_feature_layer],
 * before any post-LN), the projector mm.0 -> GELU (erf) -> mm.2 on every patch row. Then:
 *  - an image (HF pack_image_features, "anyres_max_N"): the base tile (the image stretched to the
 *    square) first, grid^2 rows in raster order; then the tiles of the best grid pinpoint (the image
 *    resized into it keeping its aspect, centred on black, cut row-major) joined into one feature
 *    map, the padding rows or columns removed (unpad_image), the map shrunk bilinearly when it holds
 *    more than 1.1^2 N tiles' worth of cells, and image_newline after each of its rows;
 *  - a video (HF get_video_features + apply_pooling): every frame stretched to the square, its rows
 *    shrunk bilinearly from grid x grid to ceil(grid / 2) per side, the frames in order, then one
 *    image_newline after the last frame.
 * Pixels: Pillow bicubic, rescale, normalize (image_processing_llava_onevision.py). */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "engine/vision.h"

#include <math.h>
#include <unistd.h>

ids_status ids__vision_load_onevision(ids_vision *v, ids_err *err) {
    ids_vparams *hp = &v->hp;
    const char *path = ids_gguf_path(v->g);
    ids_status st;
    if ((st = ids__vision_load_hparams(v, err))) return st;
    if ((st = ids__vision_load_feature_layer(v, err))) return st;
    if (hp->grid > 1024)
        return ids__err(err, IDS_ERR_FORMAT, "%s: a %d x %d patch grid is too large (1024 per side at most)", path,
                        hp->grid, hp->grid);
    hp->n_tokens = hp->grid * hp->grid;
    hp->n_out = hp->n_tokens;
    if ((st = ids__vision_load_patch_embd(v, err))) return st;
    const int E = hp->n_embd;
    const ids_tensor *pe;
    if ((st = ids__want_tensor(v->g, "v.position_embd.weight", E, hp->n_tokens, true, &pe, err))) return st;
    v->pos = ids__malloc(sizeof(float) * (size_t)E * hp->n_tokens);
    if (!v->pos) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    if ((st = ids_tensor_to_f32(pe, v->pos, err))) return st;
    if ((st = ids__vision_load_blocks(v, err))) return st;
    if ((st = ids__vision_load_projector(v, err))) return st;
    if ((st = ids__load_vec(v->g, "v.image_newline", hp->n_out_embd, true, &v->newline, err))) return st;
    uint32_t mx = 9;
    st = ids_gguf_get_u32(v->g, "clip.vision.anyres_max_patches", &mx, err);
    if (st && st != IDS_ERR_NOT_FOUND) return st;
    if (mx < 1 || mx > 1024)
        return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.anyres_max_patches %u is outside 1..1024", path, mx);
    v->anyres_max = (int)mx;
    const ids_gguf_value *a;
    if ((st = ids_gguf_get_arr(v->g, "clip.vision.image_grid_pinpoints", -1, &a, err))) return st;
    const uint64_t n = a->v.arr.n;
    if (n < 2 || n % 2 || n > 2 * 256)
        return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.image_grid_pinpoints has %llu values (pairs height, "
                        "width; 1..256 pairs)", path, (unsigned long long)n);
    v->pinpoints = ids__malloc(sizeof(int) * (size_t)n);
    if (!v->pinpoints) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n; i++) {
        int64_t x;
        if (ids_gguf_arr_i64(a, i, &x) || x < hp->image_size || x > 64 * hp->image_size || x % hp->image_size)
            return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.image_grid_pinpoints[%llu] is not a multiple of the "
                            "image size %d (1..64 of them)", path, (unsigned long long)i, hp->image_size);
        v->pinpoints[i] = (int)x;
        const long long tiles = i % 2 ? (long long)(v->pinpoints[i - 1] / hp->image_size) * (x / hp->image_size) : 0;
        if ((1 + tiles) * hp->n_tokens > (1 << 24))
            return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.image_grid_pinpoints[%llu]: %lld tiles of %d tokens are "
                            "more than 2^24 tower tokens", path, (unsigned long long)i, tiles, hp->n_tokens);
    }
    v->n_pinpoints = (int)(n / 2);
    hp->use_gelu = true; /* the projector's GELU is erf; the blocks use the tanh form (v->gelu_tanh) */
    v->gelu_tanh = true;
    return IDS_OK;
}

/* HF select_best_resolution: the pinpoint (height, width) that keeps most of the image's pixels
 * when it is scaled into it, the least wasted area among equals. */
static void best_resolution(const ids_vision *v, int w, int h, int *bh, int *bw) {
    long long best_eff = 0;
    double best_waste = INFINITY;
    *bh = v->pinpoints[0], *bw = v->pinpoints[1];
    for (int i = 0; i < v->n_pinpoints; i++) {
        const int ph = v->pinpoints[2 * i], pw = v->pinpoints[2 * i + 1];
        const double sw = (double)pw / w, sh = (double)ph / h, s = sw < sh ? sw : sh;
        const long long dw = (long long)(w * s), dh = (long long)(h * s), orig = (long long)w * h;
        const long long eff = dw * dh < orig ? dw * dh : orig;
        const double waste = (double)pw * ph - (double)eff;
        if (eff > best_eff || (eff == best_eff && waste < best_waste)) {
            best_eff = eff, best_waste = waste;
            *bh = ph, *bw = pw;
        }
    }
}

/* Python's float floor division a // b for positive a, b. */
static double floordiv(double a, double b) {
    const double mod = fmod(a, b), div = (a - mod) / b;
    double f = floor(div);
    if (div - f > 0.5) f += 1.0;
    return f;
}

/* The packed map of an image: *crop_* = the unpadded part of the (th x tw)-cell map (offsets and
 * size), *oh x *ow = after the anyres_max shrink (equal to the crop when none). */
static void pack_shape(const ids_vision *v, int w, int h, int th, int tw, int *y0, int *x0, int *ch, int *cw, int *oh,
                       int *ow) {
    *y0 = *x0 = 0, *ch = th, *cw = tw;
    if ((double)w / h > (double)tw / th) { /* HF unpad_image, round(..., 7) before int() */
        const int nh = (int)(nearbyint((double)h * ((double)tw / w) * 1e7) / 1e7);
        *y0 = (th - nh) / 2, *ch = th - 2 * *y0;
    } else {
        const int nw = (int)(nearbyint((double)w * ((double)th / h) * 1e7) / 1e7);
        *x0 = (tw - nw) / 2, *cw = tw - 2 * *x0;
    }
    const int g = v->hp.grid;
    const double ratio = sqrt((double)*ch * *cw / ((double)v->anyres_max * g * g));
    *oh = *ch, *ow = *cw;
    if (ratio > 1.1) *oh = (int)floordiv(*ch, ratio), *ow = (int)floordiv(*cw, ratio);
}

ids_status ids__vision_plan_onevision(const ids_vision *v, const ids_image *img, int n_frames, bool video,
                                      ids_vplan *out, ids_err *err) {
    const ids_vparams *hp = &v->hp;
    const int S = hp->image_size, g = hp->grid;
    memset(out, 0, sizeof *out);
    out->tiles_w = out->tiles_h = 1;
    if (n_frames < 1 || (n_frames > 1 && !video))
        return ids__err(err, IDS_ERR_ARG, "vision: %d frames given as one image", n_frames);
    if (video) { /* one square per frame, pooled rows, one newline */
        const int p = (g + 1) / 2;
        out->width = out->height = S;
        out->grid_t = n_frames, out->grid_h = out->grid_w = p;
        out->n_out = n_frames * p * p + 1;
        out->n_tokens = n_frames * g * g;
        return IDS_OK;
    }
    if (img->w <= 0 || img->h <= 0) return ids__err(err, IDS_ERR_ARG, "vision: empty image");
    int bh, bw, y0, x0, ch, cw, oh, ow;
    best_resolution(v, img->w, img->h, &bh, &bw);
    out->tiles_h = bh / S, out->tiles_w = bw / S;
    pack_shape(v, img->w, img->h, out->tiles_h * g, out->tiles_w * g, &y0, &x0, &ch, &cw, &oh, &ow);
    if (oh < 1 || ow < 1)
        return ids__err(err, IDS_ERR_RANGE, "vision: a %dx%d image leaves no feature cells after unpadding", img->w,
                        img->h);
    out->width = bw, out->height = bh;
    out->grid_t = 1, out->grid_h = oh, out->grid_w = ow + 1;
    out->n_out = g * g + oh * (ow + 1);
    out->n_tokens = (1 + out->tiles_h * out->tiles_w) * g * g;
    return IDS_OK;
}

static void normalize(const ids_vision *v, const ids_image *im, int x0, int y0, int S, float *dst) {
    for (int c = 0; c < 3; c++) {
        const float mean = v->hp.mean[c], sd = v->hp.std[c];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const float u = (float)((double)im->rgb[3 * ((size_t)(y0 + y) * im->w + (x0 + x)) + c] * (1.0 / 255.0));
                dst[(size_t)c * S * S + (size_t)y * S + x] = (u - mean) / sd;
            }
    }
}

/* The image stretched to w x h with Pillow's bicubic filter (a copy when it has that size). */
static ids_status stretch(const ids_image *img, int w, int h, ids_image *out, ids_err *err) {
    if (img->w == w && img->h == h) {
        out->rgb = ids__malloc((size_t)w * h * 3);
        if (!out->rgb) return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory");
        memcpy(out->rgb, img->rgb, (size_t)w * h * 3);
        out->w = w, out->h = h;
        return IDS_OK;
    }
    return ids_image_resize_bicubic(img, w, h, out, err);
}

/* HF get_image_patches: the image resized into bw x bh keeping its aspect (get_patch_output_size),
 * centred on black, cut into tiles row-major: pixels of tiles 1.. (tile 0 is the base image). */
static ids_status grid_tiles(const ids_vision *v, const ids_image *img, const ids_vplan *pl, float *pixels,
                             ids_err *err) {
    const int S = v->hp.image_size, bw = pl->width, bh = pl->height;
    const double sw = (double)bw / img->w, sh = (double)bh / img->h;
    int nw, nh;
    if (sw < sh) nw = bw, nh = (int)ceil(img->h * sw) < bh ? (int)ceil(img->h * sw) : bh;
    else nh = bh, nw = (int)ceil(img->w * sh) < bw ? (int)ceil(img->w * sh) : bw;
    ids_image rs = {0}, canvas = {0};
    ids_status st = stretch(img, nw, nh, &rs, err);
    if (st) return st;
    canvas.w = bw, canvas.h = bh;
    canvas.rgb = ids__calloc((size_t)bw * bh, 3);
    if (!canvas.rgb) {
        ids_image_free(&rs);
        return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d canvas", bw, bh);
    }
    const int px = (bw - nw) / 2, py = (bh - nh) / 2; /* _get_padding_size: the smaller half first */
    for (int y = 0; y < nh; y++)
        memcpy(canvas.rgb + 3 * ((size_t)(py + y) * bw + px), rs.rgb + 3 * (size_t)y * nw, 3 * (size_t)nw);
    ids_image_free(&rs);
    const size_t tile = (size_t)3 * S * S;
    for (int t = 0; t < pl->tiles_w * pl->tiles_h; t++)
        normalize(v, &canvas, (t % pl->tiles_w) * S, (t / pl->tiles_w) * S, S, pixels + (size_t)(t + 1) * tile);
    ids_image_free(&canvas);
    return IDS_OK;
}

ids_status ids__vision_tiles_onevision(const ids_vision *v, const ids_image *frames, int n_frames, bool video,
                                       float *pixels, ids_err *err) {
    const int S = v->hp.image_size;
    ids_vplan pl;
    ids_status st = ids__vision_plan_onevision(v, &frames[0], n_frames, video, &pl, err);
    const size_t tile = (size_t)3 * S * S;
    for (int f = 0; !st && f < n_frames; f++) { /* the base image, or every frame */
        ids_image sq = {0};
        if ((st = stretch(&frames[f], S, S, &sq, err))) break;
        normalize(v, &sq, 0, 0, S, pixels + (size_t)f * tile);
        ids_image_free(&sq);
    }
    if (!st && !video) st = grid_tiles(v, &frames[0], &pl, pixels, err);
    return st;
}

/* PyTorch's bilinear interpolation (align_corners=False, no antialias) of a map src [ih, iw, C]
 * (rows of C floats, row stride `sstride` cells) to dst [oh, ow, C]. */
static void bilinear(const float *src, int ih, int iw, int sstride, int C, float *dst, int oh, int ow) {
    const float sy = (float)ih / oh, sx = (float)iw / ow;
    for (int y = 0; y < oh; y++) {
        float fy = sy * (y + 0.5f) - 0.5f;
        if (fy < 0) fy = 0;
        const int y0 = (int)fy, y1 = y0 + (y0 < ih - 1);
        const float ly = fy - y0;
        for (int x = 0; x < ow; x++) {
            float fx = sx * (x + 0.5f) - 0.5f;
            if (fx < 0) fx = 0;
            const int x0 = (int)fx, x1 = x0 + (x0 < iw - 1);
            const float lx = fx - x0;
            const float *a = src + ((size_t)y0 * sstride + x0) * C, *b = src + ((size_t)y0 * sstride + x1) * C;
            const float *c = src + ((size_t)y1 * sstride + x0) * C, *d = src + ((size_t)y1 * sstride + x1) * C;
            float *o = dst + ((size_t)y * ow + x) * C;
            for (int k = 0; k < C; k++)
                o[k] = (1 - ly) * ((1 - lx) * a[k] + lx * b[k]) + ly * ((1 - lx) * c[k] + lx * d[k]);
        }
    }
}

/* Scratch of one tile's pass: the tower's buffers, patch rows, the projector's hidden rows. */
typedef struct {
    ids_vbufs w;
    float *patches, *hid;
} ov_bufs;

static float *alloc_bufs(const ids_vision *v, int n_threads, size_t n_pix, ov_bufs *t) {
    const ids_vparams *hp = &v->hp;
    const int P = hp->patch_size, KP = 3 * P * P, E = hp->n_embd, F = hp->n_ff;
    const size_t G = (size_t)hp->n_tokens, Hd = (size_t)v->mm0->ne[1];
    float *m = ids__malloc(sizeof(float) * (n_pix + G * KP + 7 * G * E + G * F + (size_t)n_threads * G * G + G * Hd));
    if (!m) return NULL;
    memset(t, 0, sizeof *t);
    t->w.pix = m;
    t->patches = m + n_pix;
    t->w.x = t->patches + G * KP;
    t->w.xn = t->w.x + G * E;
    t->w.q = t->w.xn + G * E;
    t->w.k = t->w.q + G * E;
    t->w.v = t->w.k + G * E;
    t->w.att = t->w.v + G * E;
    t->w.tmp = t->w.att + G * E;
    t->w.ff = t->w.tmp + G * E;
    t->w.scores = t->w.ff + G * F;
    t->hid = t->w.scores + (size_t)n_threads * G * G;
    return m;
}

/* One square's pixels [3, S, S] through SigLIP and the projector: out [grid^2, n_out_embd]; the
 * stream after each block into blocks (layer-major over all n_tok_all tokens, this tile at `tile`). */
static void encode_tile(const ids_vision *v, ids_ops *o, ov_bufs *t, const float *pix, int n_tok_all, int tile,
                        float *out, float *blocks) {
    const ids_vparams *hp = &v->hp;
    const int S = hp->image_size, P = hp->patch_size, KP = 3 * P * P, E = hp->n_embd, g = hp->grid, G = g * g;
    const int Hd = (int)v->mm0->ne[1];
    for (int i = 0; i < G; i++) { /* patch rows in (channel, ky, kx) order, raster order of patches */
        const int py = i / g, px = i % g;
        float *row = t->patches + (size_t)i * KP;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < P; ky++)
                memcpy(row + (c * P + ky) * P, pix + (size_t)c * S * S + (size_t)(py * P + ky) * S + px * P,
                       (size_t)P * sizeof(float));
    }
    float *x = t->w.x;
    ids__matmul(o, &v->patch, t->patches, G, x, v->patch_b);
    for (size_t i = 0; i < (size_t)G * E; i++) x[i] += v->pos[i];
    const int seg[2] = {0, G};
    for (int l = 0; l < hp->n_run; l++) {
        ids__vision_run_block(v, o, &v->blk[l], G, seg, 1, G, &t->w);
        if (blocks) memcpy(blocks + ((size_t)l * n_tok_all + (size_t)tile * G) * E, x, (size_t)G * E * sizeof(float));
    }
    ids__matmul(o, v->mm0, x, G, t->hid, v->mm0b);
    for (size_t i = 0; i < (size_t)G * Hd; i++) t->hid[i] = 0.5f * t->hid[i] * (1.0f + erff(t->hid[i] * (float)M_SQRT1_2));
    ids__matmul(o, v->mm2, t->hid, G, out, v->mm2b);
}

/* The rows of an image from its tiles' projected rows feat [1 + tiles, g^2, D] (base first). */
static ids_status pack_image(const ids_vision *v, const ids_image *img, const ids_vplan *pl, const float *feat,
                             float *out, ids_err *err) {
    const int g = v->hp.grid, D = v->hp.n_out_embd, th = pl->tiles_h * g, tw = pl->tiles_w * g;
    int y0, x0, ch, cw, oh, ow;
    pack_shape(v, img->w, img->h, th, tw, &y0, &x0, &ch, &cw, &oh, &ow);
    memcpy(out, feat, (size_t)g * g * D * sizeof(float));
    float *map = ids__malloc(sizeof(float) * ((size_t)th * tw + (size_t)oh * ow) * D);
    if (!map) return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d feature map", tw, th);
    for (int y = 0; y < th; y++) /* cell (y, x) = tile (y / g, x / g), its cell (y % g, x % g) */
        for (int x = 0; x < tw; x++)
            memcpy(map + ((size_t)y * tw + x) * D,
                   feat + ((size_t)(1 + (y / g) * pl->tiles_w + x / g) * g * g + (size_t)(y % g) * g + x % g) * D,
                   (size_t)D * sizeof(float));
    const float *crop = map + ((size_t)y0 * tw + x0) * D;
    float *small = map + (size_t)th * tw * D;
    const bool shrink = oh != ch || ow != cw;
    if (shrink) bilinear(crop, ch, cw, tw, D, small, oh, ow);
    float *o = out + (size_t)g * g * D;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++, o += D)
            memcpy(o, shrink ? small + ((size_t)y * ow + x) * D : crop + ((size_t)y * tw + x) * D, (size_t)D * sizeof(float));
        memcpy(o, v->newline, (size_t)D * sizeof(float));
        o += D;
    }
    free(map);
    return IDS_OK;
}

ids_status ids__vision_encode_onevision(const ids_vision *v, const ids_image *frames, int n_frames, bool video,
                                        int n_threads, float *out, float *blocks, ids_err *err) {
    const ids_vparams *hp = &v->hp;
    if (n_frames < 1 || !frames || !frames[0].rgb) return ids__err(err, IDS_ERR_ARG, "vision: no image given");
    ids_vplan pl;
    ids_status st = ids__vision_plan_onevision(v, &frames[0], n_frames, video, &pl, err);
    if (st) return st;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    const int S = hp->image_size, P = hp->patch_size, E = hp->n_embd, g = hp->grid, G = g * g, D = hp->n_out_embd;
    const int n_sq = pl.n_tokens / G; /* squares through the tower: base + tiles, or frames */
    int max_w = E;
    const int more[] = {hp->n_ff, 3 * P * P, (int)v->mm0->ne[1], D};
    for (int i = 0; i < 4; i++) if (more[i] > max_w) max_w = more[i];
    ids_ops o;
    if ((st = ids__ops_init(&o, n_threads, max_w, G < 1024 ? G : 1024, IDS_PREC_F32, err))) return st;
    o.packs = v->packs;
    const size_t tile = (size_t)3 * S * S;
    ov_bufs t;
    float *mem = alloc_bufs(v, n_threads, tile * n_sq, &t);
    float *feat = mem ? ids__malloc(sizeof(float) * (size_t)n_sq * G * D) : NULL;
    if (!feat) st = ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for %d squares of %dx%d", n_sq, S, S);
    if (!st) st = ids__vision_tiles_onevision(v, frames, n_frames, video, t.w.pix, err);
    for (int k = 0; !st && k < n_sq; k++)
        encode_tile(v, &o, &t, t.w.pix + (size_t)k * tile, pl.n_tokens, k, feat + (size_t)k * G * D, blocks);
    if (!st && video) { /* apply_pooling per frame, then the one newline */
        const int p = pl.grid_h;
        for (int f = 0; f < n_frames; f++)
            bilinear(feat + (size_t)f * G * D, g, g, g, D, out + (size_t)f * p * p * D, p, p);
        memcpy(out + (size_t)n_frames * p * p * D, v->newline, (size_t)D * sizeof(float));
    } else if (!st)
        st = pack_image(v, &frames[0], &pl, feat, out, err);
    free(feat);
    free(mem);
    ids__ops_free(&o);
    return st;
}
