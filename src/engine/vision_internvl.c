/* InternVL 2.5 / 3 vision tower (projector "internvl"), following HF transformers
 * (InternVLVisionModel, InternVLMultiModalProjector, GotOcr2ImageProcessor.crop_image_to_patches):
 *  - tiling: the grid of cols x rows tiles of image_size (min_tiles <= cols * rows <= max_tiles) whose
 *    aspect ratio is closest to the image's (on a tie the larger grid while the image covers more
 *    than half of it), the image stretched (Pillow bicubic) onto the grid and cut row-major, then a
 *    thumbnail (the whole image stretched to one tile) when there is more than one tile;
 *    ids_vision_set_tiling selects llama.cpp's rule instead (docs/DESIGN-NOTES.md);
 *  - each tile through InternViT: patch embedding, CLS first with position 0 and patch i at
 *    position i + 1, pre-norm blocks (LayerNorm, or RMSNorm when the file has no norm biases) with
 *    layer scale on the attention and MLP branches and, where stored, RMSNorm of the whole Q and K
 *    rows, exact GELU;
 *  - CLS dropped, pixel shuffle (each merge x merge group of patches side by side: feature
 *    dy * merge * E + dx * E + d of the patch at (merge * gy + dy, merge * gx + dx)), then the
 *    projector: LayerNorm (eps 1e-5), linear, GELU (erf), linear;
 *  - video frames (InternVLVideoProcessor): each frame stretched to one tile, no thumbnail.
 * See vision.c for the shared block. */
#include "idscope/engine.h"
#include "engine/vision.h"

#include <limits.h>
#include <math.h>
#include <unistd.h>

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
    if ((st = ids__load_vec(g, nm, n, req, &b->field, err))) return st;
    M(q, "attn_q.weight", E, E);
    M(k, "attn_k.weight", E, E);
    M(v, "attn_v.weight", E, E);
    M(o, "attn_out.weight", E, E);
    M(fc1, "ffn_up.weight", E, F);
    M(fc2, "ffn_down.weight", F, E);
    V(qb, "attn_q.bias", E, false);
    V(kb, "attn_k.bias", E, false);
    V(vb, "attn_v.bias", E, false);
    V(ob, "attn_out.bias", E, true);
    V(fc1b, "ffn_up.bias", F, true);
    V(fc2b, "ffn_down.bias", E, true);
    V(ln1w, "ln1.weight", E, true);
    V(ln2w, "ln2.weight", E, true);
    V(ln1b, "ln1.bias", E, !v->rms);
    V(ln2b, "ln2.bias", E, !v->rms);
    V(ls1, "ls1.weight", E, true);
    V(ls2, "ls2.weight", E, true);
    V(qn, "attn_q_norm.weight", E, false);
    V(kn, "attn_k_norm.weight", E, b->qn != NULL);
#undef M
#undef V
    return IDS_OK;
}

/* Keys beyond the shared ones: the merge (clip.vision.projector.scale_factor = 1 / downsample
 * ratio), the tile counts, the MLP width. */
static ids_status load_keys(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    uint32_t sf = 2, mn = 1, mx = 12, ff = 0;
    ids_status st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.projector.scale_factor", &sf, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.preproc_min_tiles", &mn, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.preproc_max_tiles", &mx, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.feed_forward_length", &ff, err)) && st != IDS_ERR_NOT_FOUND) return st;
    if (sf < 1 || sf > 8 || hp->grid % (int)sf)
        return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.projector.scale_factor %u does not divide the %d x %d "
                        "patch grid", path, sf, hp->grid, hp->grid);
    if (mn < 1 || mn > mx || mx > 256)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tiles per image %u..%u (clip.vision.preproc_min_tiles/max_tiles) "
                        "are invalid (1 <= min <= max <= 256)", path, mn, mx);
    if (!ff) {
        const ids_tensor *up = ids_gguf_find_tensor(g, "v.blk.0.ffn_up.weight");
        if (!up) return ids__err(err, IDS_ERR_NOT_FOUND, "%s: tensor 'v.blk.0.ffn_up.weight' is missing", path);
        ff = up->ne[1] > 0 && up->ne[1] <= 1 << 20 ? (uint32_t)up->ne[1] : 0;
    }
    if (ff < 1 || ff > 1u << 20)
        return ids__err(err, IDS_ERR_FORMAT, "%s: feed-forward width %u is out of range", path, ff);
    hp->merge = (int)sf;
    hp->n_ff = (int)ff;
    v->min_tiles = (int)mn;
    v->max_tiles = (int)mx;
    hp->n_out = (hp->grid / hp->merge) * (hp->grid / hp->merge); /* per tile */
    return IDS_OK;
}

/* mm.model.mlp.0 (LayerNorm [4E]), mm.model.mlp.1 [4E, H], mm.model.mlp.3 [H, n_out_embd]. */
static ids_status load_projector(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    ids_vparams *hp = &v->hp;
    const int W4 = hp->n_embd * hp->merge * hp->merge;
    ids_status st;
    if ((st = ids__load_vec(g, "mm.model.mlp.0.weight", W4, true, &v->mm_ln_w, err))) return st;
    if ((st = ids__load_vec(g, "mm.model.mlp.0.bias", W4, true, &v->mm_ln_b, err))) return st;
    const ids_tensor *m1 = ids_gguf_find_tensor(g, "mm.model.mlp.1.weight");
    const ids_tensor *m3 = ids_gguf_find_tensor(g, "mm.model.mlp.3.weight");
    if (!m1 || !m3)
        return ids__err(err, IDS_ERR_NOT_FOUND, "%s: projector tensor '%s' is missing", ids_gguf_path(g),
                        m1 ? "mm.model.mlp.3.weight" : "mm.model.mlp.1.weight");
    const int64_t H = m1->ne[1], D = m3->ne[1];
    if (H < 1 || H > 1 << 20 || D < 1 || D > 1 << 20)
        return ids__err(err, IDS_ERR_FORMAT, "%s: projector widths %lld, %lld are out of range", ids_gguf_path(g),
                        (long long)H, (long long)D);
    if ((st = ids__want_tensor(g, "mm.model.mlp.1.weight", W4, H, true, &v->mm0, err))) return st;
    if ((st = ids__want_tensor(g, "mm.model.mlp.3.weight", H, D, true, &v->mm2, err))) return st;
    if ((st = ids__load_vec(g, "mm.model.mlp.1.bias", H, true, &v->mm0b, err))) return st;
    if ((st = ids__load_vec(g, "mm.model.mlp.3.bias", D, true, &v->mm2b, err))) return st;
    hp->n_out_embd = (int)D;
    return IDS_OK;
}

ids_status ids__vision_load_internvl(ids_vision *v, ids_err *err) {
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    ids_vparams *hp = &v->hp;
    ids_status st;
    if ((st = ids__vision_load_hparams(v, err))) return st;
    if ((st = load_keys(v, err))) return st;
    if ((st = ids__vision_load_patch_embd(v, err))) return st;
    const int E = hp->n_embd;
    if ((st = ids__load_vec(g, "v.class_embd", E, true, &v->cls, err))) return st;
    const ids_tensor *pe;
    if ((st = ids__want_tensor(g, "v.position_embd.weight", E, hp->n_tokens, true, &pe, err))) return st;
    v->pos = ids__malloc(sizeof(float) * (size_t)E * hp->n_tokens);
    if (!v->pos) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    if ((st = ids_tensor_to_f32(pe, v->pos, err))) return st;
    /* InternViT-6B uses RMSNorm (HF norm_type "rms_norm"; no biases), the 300M one LayerNorm */
    v->rms = !ids_gguf_find_tensor(g, "v.blk.0.ln1.bias");
    v->blk = ids__calloc((size_t)hp->n_layer, sizeof *v->blk);
    if (!v->blk) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (int l = 0; l < hp->n_layer; l++)
        if ((st = load_block(v, l, err))) return st;
    return load_projector(v, err);
}

ids_status ids_vision_set_tiling(ids_vision *v, bool llamacpp, ids_err *err) {
    if (!v->internvl)
        return ids__err(err, IDS_ERR_ARG, "%s: tiling applies to the internvl projector only, not '%s'",
                        ids_gguf_path(v->g), v->hp.projector);
    v->llamacpp_tiles = llamacpp;
    return IDS_OK;
}

/* HF get_optimal_tiled_canvas: grids in order of area (for one area, by columns), the closest
 * aspect ratio; on a tie the later grid while the image is larger than half of it. */
static void hf_grid(int w, int h, int S, int mn, int mx, int *cols, int *rows) {
    const double aspect = (double)w / h, area = (double)w * h;
    double best = INFINITY;
    *cols = *rows = 1;
    for (int a = mn; a <= mx; a++)
        for (int c = 1; c <= a; c++) {
            if (a % c) continue;
            const int r = a / c;
            const double d = fabs(aspect - (double)c / r);
            if (d < best) {
                best = d;
                *cols = c, *rows = r;
            } else if (d == best && area > 0.5 * S * S * c * r) {
                *cols = c, *rows = r;
            }
        }
}

/* llama.cpp's select_best_resolution over the candidates (a S, b S), min <= a b <= max, in its order
 * (a outer): the most effective pixels min(w' h', w h) after an aspect-keeping fit (float scale,
 * truncated), then the least waste. */
static void llamacpp_grid(int w, int h, int S, int mn, int mx, int *cols, int *rows) {
    long best_eff = 0, best_waste = LONG_MAX;
    *cols = *rows = 1;
    for (int a = mn; a <= mx; a++)
        for (int b = (mn + a - 1) / a > mn ? (mn + a - 1) / a : mn; b <= mx / a; b++) {
            const float sw = (float)(a * S) / (float)w, sh = (float)(b * S) / (float)h, s = sw < sh ? sw : sh;
            const long tw = (long)((float)w * s), th = (long)((float)h * s);
            const long eff = tw * th < (long)w * h ? tw * th : (long)w * h, waste = (long)a * S * b * S - eff;
            if (eff > best_eff || (eff == best_eff && waste < best_waste)) {
                best_eff = eff;
                best_waste = waste;
                *cols = a, *rows = b;
            }
        }
}

ids_status ids__vision_plan_internvl(const ids_vision *v, const ids_image *img, int n_frames, ids_vplan *out,
                                    ids_err *err) {
    const ids_vparams *hp = &v->hp;
    const int S = hp->image_size;
    for (int f = 0; f < n_frames; f++)
        if (img[f].w <= 0 || img[f].h <= 0 || !img[f].rgb)
            return ids__err(err, IDS_ERR_ARG, "vision: frame %d: image of size %dx%d", f, img[f].w, img[f].h);
    int cols = 1, rows = 1, n;
    if (n_frames > 1) { /* a video: one tile per frame */
        n = n_frames;
    } else if (v->llamacpp_tiles) {
        if (img->w > S || img->h > S) llamacpp_grid(img->w, img->h, S, v->min_tiles, v->max_tiles, &cols, &rows);
        n = cols * rows + (img->w > S || img->h > S); /* the overview only, or the tiles and the overview */
    } else {
        if (v->max_tiles > 1) hf_grid(img->w, img->h, S, v->min_tiles, v->max_tiles, &cols, &rows);
        n = cols * rows + (cols * rows > 1); /* a thumbnail after more than one tile */
    }
    out->width = cols * S;
    out->height = rows * S;
    out->tiles_w = cols;
    out->tiles_h = rows;
    out->grid_t = n;
    out->grid_h = out->grid_w = hp->grid / hp->merge;
    out->n_out = n * hp->n_out;
    out->n_tokens = n * hp->n_tokens;
    return IDS_OK;
}

/* One tile S x S at (x0, y0) of img, normalized as HF does: x / 255 in double rounded to float,
 * then (x - mean) / std in float, planar [3, S, S]. */
static void normalize_tile(const ids_vision *v, const ids_image *img, int x0, int y0, int S, float *dst) {
    for (int c = 0; c < 3; c++) {
        const float mean = v->hp.mean[c], std = v->hp.std[c];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const uint8_t u = img->rgb[3 * ((size_t)(y0 + y) * img->w + x0 + x) + c];
                const float f = (float)((double)u * (1.0 / 255.0));
                dst[((size_t)c * S + y) * S + x] = (f - mean) / std;
            }
    }
}

/* img stretched (Pillow bicubic; a copy when the size is already right) into *dst; llama.cpp's
 * refined image is letterboxed instead: the aspect-keeping fit (float scale, ceil) centred on black. */
static ids_status fit(const ids_image *img, int W, int H, bool letterbox, ids_image *dst, ids_err *err) {
    if (img->w == W && img->h == H) {
        dst->rgb = ids__malloc((size_t)W * H * 3);
        if (!dst->rgb) return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d image", W, H);
        memcpy(dst->rgb, img->rgb, (size_t)W * H * 3);
        dst->w = W, dst->h = H;
        return IDS_OK;
    }
    if (!letterbox) return ids_image_resize_bicubic(img, W, H, dst, err);
    const float sw = (float)W / (float)img->w, sh = (float)H / (float)img->h, s = sw < sh ? sw : sh;
    int nw = (int)ceilf((float)img->w * s), nh = (int)ceilf((float)img->h * s);
    if (nw > W) nw = W;
    if (nh > H) nh = H;
    ids_image rs = {0};
    ids_status st = ids_image_resize_bicubic(img, nw, nh, &rs, err);
    if (st) return st;
    dst->rgb = ids__calloc((size_t)W * H, 3);
    if (!dst->rgb) {
        ids_image_free(&rs);
        return ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for a %dx%d image", W, H);
    }
    dst->w = W, dst->h = H;
    const int ox = (W - nw) / 2, oy = (H - nh) / 2;
    for (int y = 0; y < nh; y++)
        memcpy(dst->rgb + 3 * ((size_t)(oy + y) * W + ox), rs.rgb + 3 * (size_t)y * nw, (size_t)nw * 3);
    ids_image_free(&rs);
    return IDS_OK;
}

ids_status ids__vision_tiles_internvl(const ids_vision *v, const ids_image *img, int n_frames, float *pixels,
                                     ids_err *err) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return ids__err(err, IDS_ERR_ARG, "preprocess: empty image");
    ids_vplan pl;
    ids_status st = ids__vision_plan_internvl(v, img, n_frames, &pl, err);
    if (st) return st;
    const int S = v->hp.image_size, n_grid = pl.tiles_w * pl.tiles_h;
    const size_t tile = (size_t)3 * S * S;
    ids_image fr = {0};
    for (int f = 0; n_frames > 1 && f < n_frames; f++) { /* video frames: each stretched to one tile */
        if ((st = fit(&img[f], S, S, false, &fr, err))) return st;
        normalize_tile(v, &fr, 0, 0, S, pixels + (size_t)f * tile);
        ids_image_free(&fr);
    }
    if (n_frames > 1) return IDS_OK;
    const bool overview_only = pl.grid_t == 1 && v->llamacpp_tiles; /* llama.cpp: the image fits one tile */
    ids_image grid = {0}, thumb = {0};
    if (!overview_only) {
        if ((st = fit(img, pl.width, pl.height, v->llamacpp_tiles, &grid, err))) return st;
        for (int t = 0; t < n_grid; t++)
            normalize_tile(v, &grid, (t % pl.tiles_w) * S, (t / pl.tiles_w) * S, S, pixels + (size_t)t * tile);
        ids_image_free(&grid);
    }
    if (pl.grid_t > n_grid || overview_only) { /* the thumbnail (overview): the image stretched to one tile */
        if ((st = fit(img, S, S, false, &thumb, err))) return st;
        normalize_tile(v, &thumb, 0, 0, S, pixels + (size_t)(pl.grid_t - 1) * tile);
        ids_image_free(&thumb);
    }
    return IDS_OK;
}

/* Pixel shuffle of one tile's patches x [g * g, E] (CLS already dropped) into sh [(g/m)^2, m * m * E]. */
static void pixel_shuffle(const float *x, float *sh, int g, int m, int E) {
    const int gm = g / m;
    for (int gy = 0; gy < gm; gy++)
        for (int gx = 0; gx < gm; gx++)
            for (int dy = 0; dy < m; dy++)
                for (int dx = 0; dx < m; dx++)
                    memcpy(sh + (size_t)(gy * gm + gx) * m * m * E + (size_t)(dy * m + dx) * E,
                           x + ((size_t)(m * gy + dy) * g + (size_t)(m * gx + dx)) * E, (size_t)E * sizeof(float));
}

/* Scratch of one tile's pass. */
typedef struct {
    ids_vbufs w;
    float *patches, *sh, *hid;
} tile_bufs;

static float *alloc_tile(const ids_vision *v, int n_threads, size_t n_pix, tile_bufs *t) {
    const ids_vparams *hp = &v->hp;
    const int P = hp->patch_size, KP = 3 * P * P, E = hp->n_embd, F = hp->n_ff, g = hp->grid;
    const size_t NP = (size_t)g * g, G = NP + 1, no = (size_t)hp->n_out, W4 = (size_t)E * hp->merge * hp->merge;
    const size_t Hd = (size_t)v->mm0->ne[1];
    float *m = ids__malloc(sizeof(float) * (n_pix + NP * KP + 7 * G * E + G * F + (size_t)n_threads * ids__vision_attn_scratch((int)G) +
                                            no * W4 + no * Hd));
    if (!m) return NULL;
    memset(t, 0, sizeof *t);
    t->w.pix = m;
    t->patches = m + n_pix;
    t->w.x = t->patches + NP * KP;
    t->w.xn = t->w.x + G * E;
    t->w.q = t->w.xn + G * E;
    t->w.k = t->w.q + G * E;
    t->w.v = t->w.k + G * E;
    t->w.att = t->w.v + G * E;
    t->w.tmp = t->w.att + G * E;
    t->w.ff = t->w.tmp + G * E;
    t->w.scores = t->w.ff + G * F;
    t->sh = t->w.scores + (size_t)n_threads * ids__vision_attn_scratch((int)G);
    t->hid = t->sh + no * W4;
    return m;
}

/* Tile t's normalized pixels [3, S, S] through the tower and the projector: out [n_out, D]. */
static void encode_tile(const ids_vision *v, ids_ops *o, tile_bufs *t, const float *pix, int n_tok_all, int tile,
                        float *out, float *blocks) {
    const ids_vparams *hp = &v->hp;
    const int S = hp->image_size, P = hp->patch_size, KP = 3 * P * P, E = hp->n_embd, g = hp->grid;
    const int NP = g * g, G = NP + 1, W4 = E * hp->merge * hp->merge, Hd = (int)v->mm0->ne[1];
    for (int i = 0; i < NP; i++) { /* patch rows in (channel, ky, kx) order, raster order of patches */
        const int py = i / g, px = i % g;
        float *row = t->patches + (size_t)i * KP;
        for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < P; ky++)
                memcpy(row + (c * P + ky) * P, pix + (size_t)c * S * S + (size_t)(py * P + ky) * S + px * P,
                       (size_t)P * sizeof(float));
    }
    float *x = t->w.x;
    ids__matmul(o, &v->patch, t->patches, NP, x + E, v->patch_b);
    memcpy(x, v->cls, (size_t)E * sizeof(float)); /* HF: CLS first, the position table as stored */
    for (size_t i = 0; i < (size_t)G * E; i++) x[i] += v->pos[i];
    const int seg[2] = {0, G};
    for (int l = 0; l < hp->n_run; l++) {
        ids__vision_run_block(v, o, &v->blk[l], G, seg, 1, G, &t->w);
        if (blocks) memcpy(blocks + ((size_t)l * n_tok_all + (size_t)tile * G) * E, x, (size_t)G * E * sizeof(float));
    }
    pixel_shuffle(x + E, t->sh, g, hp->merge, E);
    ids__layernorm(o, t->sh, t->sh, v->mm_ln_w, v->mm_ln_b, W4, hp->n_out, 1e-5f); /* nn.LayerNorm's default */
    ids__matmul(o, v->mm0, t->sh, hp->n_out, t->hid, v->mm0b);
    for (size_t i = 0; i < (size_t)hp->n_out * Hd; i++)
        t->hid[i] = 0.5f * t->hid[i] * (1.0f + erff(t->hid[i] * (float)M_SQRT1_2));
    ids__matmul(o, v->mm2, t->hid, hp->n_out, out, v->mm2b);
}

ids_status ids__vision_encode_internvl(const ids_vision *v, const ids_image *img, int n_frames, int n_threads,
                                       float *out, float *blocks, ids_err *err) {
    const ids_vparams *hp = &v->hp;
    ids_vplan pl;
    ids_status st = ids__vision_plan_internvl(v, img, n_frames, &pl, err);
    if (st) return st;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    const int S = hp->image_size, P = hp->patch_size, E = hp->n_embd, G = hp->n_tokens;
    int max_w = E * hp->merge * hp->merge;
    const int more[] = {hp->n_ff, 3 * P * P, (int)v->mm0->ne[1], hp->n_out_embd};
    for (int i = 0; i < 4; i++) if (more[i] > max_w) max_w = more[i];
    ids_ops o;
    if ((st = ids__ops_init(&o, n_threads, max_w, G < 1024 ? G : 1024, IDS_PREC_F32, err))) return st;
    o.packs = v->packs;
    const size_t tile = (size_t)3 * S * S;
    tile_bufs t;
    float *mem = alloc_tile(v, n_threads, tile * pl.grid_t, &t);
    if (!mem) st = ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for %d tiles of %dx%d", pl.grid_t, S, S);
    if (!st) st = ids__vision_tiles_internvl(v, img, n_frames, t.w.pix, err);
    for (int k = 0; !st && k < pl.grid_t; k++)
        encode_tile(v, &o, &t, t.w.pix + (size_t)k * tile, pl.n_tokens, k, out + (size_t)k * hp->n_out * hp->n_out_embd,
                    blocks);
    free(mem);
    ids__ops_free(&o);
    return st;
}
