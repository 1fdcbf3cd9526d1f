/* Llama-3.2-Vision's tiled tower (projector "mllama"; HF MllamaVisionModel and
 * MllamaImageProcessor):
 * - the image is resized (Pillow bilinear) to fit the canvas of tile arrangement chosen by HF's rule
 *   (the smallest upscale among the supported arrangements, else the mildest downscale; ties: the
 *   smallest canvas), padded with black at the right and bottom, normalised and cut into tiles of
 *   image_size, row-major; unused tiles (up to max_tiles) are zero;
 * - per tile: patch embedding (no bias), the gated pre-tile embedding of the aspect ratio, CLS
 *   first, the gated positional embedding ((1 - tanh g) pos + tanh g tile_pos[ratio][tile]),
 *   LayerNorm, then padded to a multiple of 8 rows with zeros;
 * - all tiles attend together: a padding row or a row of an unused tile attends to the real rows
 *   only, a real row to every row (HF's mask excludes a pair only when both rows are masked);
 * - the local blocks, LayerNorm, the gated post-tile embedding, the gated global blocks
 *   (x += tanh(gate) * branch);
 * - features per real row: the last block's output, then the intermediate layers' outputs
 *   interleaved (HF stacks them on the last axis: column E + d * n + k is dimension d of layer k),
 *   through the projector (one linear layer) to the decoder's width: the cross-attention states,
 *   max_tiles x (patches + 1) rows. */
#include "idscope/engine.h"
#include "engine/vision.h"

#include <cblas.h>
#include <math.h>
#include <unistd.h>

struct ids_vmllama {
    int tiles, n_global, n_local, n_inter, inter[64], n_ratio, np, npad, vout;
    int ratio_h[64], ratio_w[64]; /* HF's list (w, h) pairs read as (tiles down, tiles across) */
    float *pos, *gate;            /* [np, E]; per block tanh(gate_attn), tanh(gate_ffn) (1 for local blocks) */
    float g_pos, g_pre, g_post;   /* tanh of the embeddings' gates */
    const ids_tensor *tile_pos, *pre, *post, *proj;
    float *proj_b;
};

void ids__vision_free_mllama(ids_vision *v) {
    if (!v->ml) return;
    free(v->ml->pos);
    free(v->ml->gate);
    free(v->ml->proj_b);
    free(v->ml);
    v->ml = NULL;
}

static ids_status gate1(const ids_gguf *g, const char *name, float *out, ids_err *err) {
    float *x = NULL;
    ids_status st = ids__load_vec(g, name, 1, true, &x, err);
    if (!st) *out = tanhf(x[0]);
    free(x);
    return st;
}

static ids_status load_keys(ids_vision *v, ids_err *err) {
    struct ids_vmllama *ml = v->ml;
    const ids_gguf *g = v->g;
    const char *path = ids_gguf_path(g);
    uint32_t t, gl;
    ids_status st;
    if ((st = ids_gguf_get_u32(g, "clip.vision.max_tiles", &t, err)) ||
        (st = ids_gguf_get_u32(g, "clip.vision.global_block_count", &gl, err)))
        return st;
    if (t < 1 || t > 64 || gl >= (uint32_t)v->hp.n_layer)
        return ids__err(err, IDS_ERR_FORMAT, "%s: max_tiles %u or global_block_count %u of %d blocks is out of range",
                        path, t, gl, v->hp.n_layer);
    ml->tiles = (int)t, ml->n_global = (int)gl, ml->n_local = v->hp.n_layer - (int)gl;
    const ids_gguf_value *a;
    if ((st = ids_gguf_get_arr(g, "clip.vision.intermediate_layers", -1, &a, err))) return st;
    if (a->v.arr.n < 1 || a->v.arr.n > 64)
        return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.intermediate_layers has %llu entries", path,
                        (unsigned long long)a->v.arr.n);
    ml->n_inter = (int)a->v.arr.n;
    for (int i = 0; i < ml->n_inter; i++) {
        int64_t x = -1;
        if (ids_gguf_arr_i64(a, (uint64_t)i, &x) || x < 0 || x > ml->n_local)
            return ids__err(err, IDS_ERR_FORMAT, "%s: clip.vision.intermediate_layers[%d] = %lld is outside 0..%d", path,
                            i, (long long)x, ml->n_local);
        ml->inter[i] = (int)x;
    }
    for (int w = 1; w <= ml->tiles; w++) /* HF get_all_supported_aspect_ratios */
        for (int h = 1; h <= ml->tiles; h++)
            if (w * h <= ml->tiles) ml->ratio_h[ml->n_ratio] = w, ml->ratio_w[ml->n_ratio++] = h;
    ml->np = v->hp.grid * v->hp.grid + 1;
    ml->npad = ml->np + (8 - ml->np % 8) % 8;
    ml->vout = v->hp.n_embd * (1 + ml->n_inter);
    return IDS_OK;
}

ids_status ids__vision_load_mllama(ids_vision *v, ids_err *err) {
    ids_status st;
    if ((st = ids__vision_load_hparams(v, err))) return st;
    if (!(v->ml = ids__calloc(1, sizeof *v->ml))) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", ids_gguf_path(v->g));
    struct ids_vmllama *ml = v->ml;
    if ((st = load_keys(v, err)) || (st = ids__vision_load_patch_embd(v, err))) return st;
    const ids_gguf *g = v->g;
    const int E = v->hp.n_embd, R = ml->n_ratio + 1;
    if ((st = ids__load_vec(g, "v.class_embd", E, true, &v->cls, err)) ||
        (st = ids__load_vec(g, "v.pre_ln.weight", E, true, &v->pre_w, err)) ||
        (st = ids__load_vec(g, "v.pre_ln.bias", E, true, &v->pre_b, err)) ||
        (st = ids__load_vec(g, "v.post_ln.weight", E, true, &v->post_w, err)) ||
        (st = ids__load_vec(g, "v.post_ln.bias", E, true, &v->post_b, err)) ||
        (st = gate1(g, "v.position_embd.gate", &ml->g_pos, err)) ||
        (st = gate1(g, "v.pre_tile_position_embd.gate", &ml->g_pre, err)) ||
        (st = gate1(g, "v.post_tile_position_embd.gate", &ml->g_post, err)) ||
        (st = ids__want_tensor(g, "v.tile_position_embd.weight", (int64_t)ml->tiles * ml->np * E, R, true, &ml->tile_pos, err)) ||
        (st = ids__want_tensor(g, "v.pre_tile_position_embd.weight", (int64_t)ml->tiles * E, R, true, &ml->pre, err)) ||
        (st = ids__want_tensor(g, "v.post_tile_position_embd.weight", (int64_t)ml->tiles * E, R, true, &ml->post, err)))
        return st;
    const ids_tensor *pe;
    if ((st = ids__want_tensor(g, "v.position_embd.weight", E, ml->np, true, &pe, err))) return st;
    if (!(ml->pos = ids__malloc(sizeof(float) * (size_t)E * ml->np)) || !(ml->gate = ids__malloc(sizeof(float) * 2 * (size_t)v->hp.n_layer)))
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", ids_gguf_path(g));
    if ((st = ids_tensor_to_f32(pe, ml->pos, err)) || (st = ids__vision_load_blocks(v, err))) return st;
    for (int l = 0; l < v->hp.n_layer; l++) {
        ml->gate[2 * l] = ml->gate[2 * l + 1] = 1.0f;
        for (int k = 0; k < 2 && l >= ml->n_local && !st; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "v.blk.%d.%s", l, k ? "gate_ffn" : "gate_attn");
            st = gate1(g, nm, &ml->gate[2 * l + k], err);
        }
    }
    const ids_tensor *pj = ids_gguf_find_tensor(g, "mm.0.weight");
    if (st || (st = ids__want_tensor(g, "mm.0.weight", ml->vout, pj ? pj->ne[1] : 1, true, &ml->proj, err))) return st;
    v->hp.n_out_embd = (int)ml->proj->ne[1];
    if ((st = ids__load_vec(g, "mm.0.bias", v->hp.n_out_embd, true, &ml->proj_b, err))) return st;
    v->hp.n_tokens = ml->tiles * ml->npad;
    v->hp.n_out = ml->tiles * ml->np;
    v->hp.use_gelu = true;
    return IDS_OK;
}

/* HF get_optimal_tiled_canvas and get_image_size_fit_to_canvas: the arrangement index and the
 * resized size. */
static int canvas(const struct ids_vmllama *ml, int S, int w, int h, int *nw, int *nh) {
    double sel = -1, best_up = INFINITY, best_down = -INFINITY;
    for (int i = 0; i < ml->n_ratio; i++) {
        const double sh = (double)(ml->ratio_h[i] * S) / h, sw = (double)(ml->ratio_w[i] * S) / w, s = sw > sh ? sh : sw;
        if (s >= 1 && s < best_up) best_up = s;
        if (s < 1 && s > best_down) best_down = s;
    }
    sel = best_up < INFINITY ? best_up : best_down;
    int pick = -1;
    for (int i = 0; i < ml->n_ratio; i++) {
        const double sh = (double)(ml->ratio_h[i] * S) / h, sw = (double)(ml->ratio_w[i] * S) / w, s = sw > sh ? sh : sw;
        if (s == sel && (pick < 0 || ml->ratio_h[i] * ml->ratio_w[i] < ml->ratio_h[pick] * ml->ratio_w[pick])) pick = i;
    }
    const int cw = ml->ratio_w[pick] * S, ch = ml->ratio_h[pick] * S;
    const int tw = w < S ? S : w > cw ? cw : w, th = h < S ? S : h > ch ? ch : h;
    const double sh = (double)th / h, sw = (double)tw / w;
    if (sw < sh) {
        int x = (int)floor(h * sw);
        *nw = tw, *nh = x ? (x < th ? x : th) : 1;
    } else {
        int x = (int)floor(w * sh);
        *nh = th, *nw = x ? (x < tw ? x : tw) : 1;
    }
    return pick;
}

ids_status ids__vision_plan_mllama(const ids_vision *v, const ids_image *img, ids_vplan *out, ids_err *err) {
    const struct ids_vmllama *ml = v->ml;
    const int S = v->hp.image_size;
    int nw, nh, k = canvas(ml, S, img->w, img->h, &nw, &nh);
    out->tiles_w = ml->ratio_w[k], out->tiles_h = ml->ratio_h[k];
    out->width = out->tiles_w * S, out->height = out->tiles_h * S;
    out->grid_t = ml->tiles, out->grid_h = out->grid_w = v->hp.grid;
    out->n_out = ml->tiles * ml->np;
    out->n_tokens = ml->tiles * ml->npad;
    (void)err;
    return IDS_OK;
}

ids_status ids__vision_tiles_mllama(const ids_vision *v, const ids_image *img, float *pixels, int *ratio_id, int *n_tiles,
                                    ids_err *err) {
    const struct ids_vmllama *ml = v->ml;
    const int S = v->hp.image_size;
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return ids__err(err, IDS_ERR_ARG, "preprocess: empty image");
    int nw, nh, k = canvas(ml, S, img->w, img->h, &nw, &nh);
    const int tw = ml->ratio_w[k], th = ml->ratio_h[k];
    ids_image rs = {0};
    const ids_image *cur = img;
    if (nw != img->w || nh != img->h) {
        ids_status st = ids_image_resize_bilinear(img, nw, nh, &rs, err);
        if (st) return st;
        cur = &rs;
    }
    memset(pixels, 0, sizeof(float) * (size_t)ml->tiles * 3 * S * S);
    for (int t = 0; t < tw * th; t++)
        for (int c = 0; c < 3; c++) {
            const float mean = v->hp.mean[c], sd = v->hp.std[c];
            float *dst = pixels + ((size_t)t * 3 + c) * S * S;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) { /* canvas pixel (row, col); black padding right and bottom */
                    const int r = (t / tw) * S + y, col = (t % tw) * S + x;
                    const uint8_t b = r < cur->h && col < cur->w ? cur->rgb[3 * ((size_t)r * cur->w + col) + c] : 0;
                    const float f = (float)((double)b * (1.0 / 255.0));
                    dst[(size_t)y * S + x] = (f - mean) / sd;
                }
        }
    ids_image_free(&rs);
    *ratio_id = k + 1;
    *n_tiles = tw * th;
    return IDS_OK;
}

typedef struct {
    const float *q, *k, *v;
    float *out, *scores;
    const unsigned char *masked;
    int T, E, hd, n_head, chunk;
} mattn_job;

/* Task = (head, chunk of query rows): a masked row attends to the real rows only, a real row to all. */
static void mattn_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    const mattn_job *j = arg;
    const int n_chunks = (j->T + j->chunk - 1) / j->chunk, h = t / n_chunks, r0 = (t % n_chunks) * j->chunk;
    const int nq = j->T - r0 < j->chunk ? j->T - r0 : j->chunk;
    float *S = j->scores + (size_t)tid * j->chunk * j->T;
    const size_t off = (size_t)h * j->hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, j->T, j->hd, 1.0f / sqrtf((float)j->hd),
                j->q + (size_t)r0 * j->E + off, j->E, j->k + off, j->E, 0.0f, S, j->T);
    for (int r = 0; r < nq; r++) {
        float *s = S + (size_t)r * j->T, mx = -INFINITY;
        const bool m = j->masked[r0 + r];
        for (int c = 0; c < j->T; c++) {
            if (m && j->masked[c]) s[c] = -INFINITY;
            if (s[c] > mx) mx = s[c];
        }
        double sum = 0;
        for (int c = 0; c < j->T; c++) {
            s[c] = s[c] == -INFINITY ? 0.0f : expf(s[c] - mx);
            sum += s[c];
        }
        const float inv = (float)(1.0 / sum);
        for (int c = 0; c < j->T; c++) s[c] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, j->hd, j->T, 1.0f, S, j->T, j->v + off, j->E, 0.0f,
                j->out + (size_t)r0 * j->E + off, j->E);
}

typedef struct {
    float *x, *xn, *q, *k, *v, *att, *tmp, *ff, *scores, *feats, *pix, *patches, *row;
    unsigned char *masked;
} mbufs;

/* Block l on b->x [T, E]: x += g_attn * attention(LN1 x); x += g_ffn * fc2(gelu(fc1(LN2 x))). */
static void block(const ids_vision *v, ids_ops *o, int l, int T, mbufs *b) {
    const ids_vparams *hp = &v->hp;
    const ids_vblock *bk = &v->blk[l];
    const int E = hp->n_embd, F = hp->n_ff, chunk = 64;
    const float ga = v->ml->gate[2 * l], gf = v->ml->gate[2 * l + 1];
    ids__layernorm(o, b->x, b->xn, bk->ln1w, bk->ln1b, E, T, hp->eps);
    const ids_tensor *wt[3] = {bk->q, bk->k, bk->v};
    float *y[3] = {b->q, b->k, b->v};
    const float *bs[3] = {bk->qb, bk->kb, bk->vb};
    ids__matmul_n(o, 3, wt, b->xn, T, y, bs);
    mattn_job j = {b->q, b->k, b->v, b->att, b->scores, b->masked, T, E, E / hp->n_head, hp->n_head, chunk};
    ids__pool_run(o->pool, hp->n_head * ((T + chunk - 1) / chunk), mattn_task, &j);
    ids__matmul(o, bk->o, b->att, T, b->tmp, bk->ob);
    for (size_t i = 0; i < (size_t)T * E; i++) b->x[i] += ga * b->tmp[i];
    ids__layernorm(o, b->x, b->xn, bk->ln2w, bk->ln2b, E, T, hp->eps);
    ids__matmul(o, bk->fc1, b->xn, T, b->ff, bk->fc1b);
    for (size_t i = 0; i < (size_t)T * F; i++) b->ff[i] = 0.5f * b->ff[i] * (1.0f + erff(b->ff[i] * (float)M_SQRT1_2));
    ids__matmul(o, bk->fc2, b->ff, T, b->tmp, bk->fc2b);
    for (size_t i = 0; i < (size_t)T * E; i++) b->x[i] += gf * b->tmp[i];
}

/* Intermediate layer k's output into the features: column E + d * n_inter + k of each real row. */
static void keep_inter(const struct ids_vmllama *ml, int E, int k, const float *x, float *feats) {
    for (int t = 0; t < ml->tiles; t++)
        for (int p = 0; p < ml->np; p++)
            for (int d = 0; d < E; d++)
                feats[((size_t)t * ml->np + p) * ml->vout + E + (size_t)d * ml->n_inter + k] =
                    x[((size_t)t * ml->npad + p) * E + d];
}

/* Patch and position embeddings, pre-LN and padding: b->x [T, E]; the masked rows. */
static ids_status embed(const ids_vision *v, ids_ops *o, int ratio, int n_tiles, mbufs *b, ids_err *err) {
    const struct ids_vmllama *ml = v->ml;
    const int E = v->hp.n_embd, P = v->hp.patch_size, S = v->hp.image_size, g = v->hp.grid, KP = 3 * P * P;
    ids_status st;
    memset(b->x, 0, sizeof(float) * (size_t)ml->tiles * ml->npad * E);
    if ((st = ids_tensor_rows_f32(ml->pre, ratio, 1, b->row, err))) return st;
    for (int t = 0; t < ml->tiles; t++) {
        const float *pix = b->pix + (size_t)t * 3 * S * S;
        for (int i = 0; i < g * g; i++)
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    memcpy(b->patches + (size_t)i * KP + (c * P + ky) * P,
                           pix + (size_t)c * S * S + (size_t)((i / g) * P + ky) * S + (i % g) * P, (size_t)P * sizeof(float));
        float *x = b->x + (size_t)t * ml->npad * E;
        ids__matmul(o, &v->patch, b->patches, g * g, x + E, v->patch_b);
        for (int i = 1; i < ml->np; i++)
            for (int d = 0; d < E; d++) x[(size_t)i * E + d] += ml->g_pre * b->row[(size_t)t * E + d];
        memcpy(x, v->cls, (size_t)E * sizeof(float));
    }
    if ((st = ids_tensor_rows_f32(ml->tile_pos, ratio, 1, b->row, err))) return st;
    for (int t = 0; t < ml->tiles; t++) {
        float *x = b->x + (size_t)t * ml->npad * E;
        for (size_t i = 0; i < (size_t)ml->np * E; i++)
            x[i] += (1 - ml->g_pos) * ml->pos[i] + ml->g_pos * b->row[(size_t)t * ml->np * E + i];
        ids__layernorm(o, x, x, v->pre_w, v->pre_b, E, ml->np, v->hp.eps);
        for (int p = 0; p < ml->npad; p++) b->masked[t * ml->npad + p] = t >= n_tiles || p >= ml->np;
    }
    return IDS_OK;
}

static ids_status run(const ids_vision *v, ids_ops *o, const ids_image *img, float *out, float *blocks, mbufs *b,
                      ids_err *err) {
    const struct ids_vmllama *ml = v->ml;
    const int E = v->hp.n_embd, T = ml->tiles * ml->npad;
    int ratio, n_tiles;
    ids_status st;
    if ((st = ids__vision_tiles_mllama(v, img, b->pix, &ratio, &n_tiles, err)) ||
        (st = embed(v, o, ratio, n_tiles, b, err)))
        return st;
    for (int l = 0; l <= v->hp.n_layer; l++) {
        for (int k = 0; k < ml->n_inter && l <= ml->n_local; k++)
            if (ml->inter[k] == l) keep_inter(ml, E, k, b->x, b->feats);
        if (l == ml->n_local) { /* local blocks done: post-LN and the post-tile embedding */
            ids__layernorm(o, b->x, b->x, v->post_w, v->post_b, E, T, v->hp.eps);
            if ((st = ids_tensor_rows_f32(ml->post, ratio, 1, b->row, err))) return st;
            for (int r = 0; r < T; r++)
                for (int d = 0; d < E; d++) b->x[(size_t)r * E + d] += ml->g_post * b->row[(size_t)(r / ml->npad) * E + d];
        }
        if (l == v->hp.n_layer) break;
        block(v, o, l, T, b);
        if (blocks) memcpy(blocks + (size_t)l * T * E, b->x, sizeof(float) * (size_t)T * E);
    }
    for (int t = 0; t < ml->tiles; t++)
        for (int p = 0; p < ml->np; p++)
            memcpy(b->feats + ((size_t)t * ml->np + p) * ml->vout, b->x + ((size_t)t * ml->npad + p) * E,
                   sizeof(float) * (size_t)E);
    ids__matmul(o, ml->proj, b->feats, ml->tiles * ml->np, out, ml->proj_b);
    return IDS_OK;
}

ids_status ids__vision_encode_mllama(const ids_vision *v, const ids_image *img, int n_threads, float *out,
                                     float *blocks, ids_err *err) {
    const struct ids_vmllama *ml = v->ml;
    const int E = v->hp.n_embd, F = v->hp.n_ff, P = v->hp.patch_size, S = v->hp.image_size;
    const size_t T = (size_t)ml->tiles * ml->npad, KP = 3 * (size_t)P * P;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    int max_w = F > ml->vout ? F : ml->vout;
    if ((int)KP > max_w) max_w = (int)KP;
    ids_ops o;
    ids_status st = ids__ops_init(&o, n_threads, max_w, T < 1024 ? (int)T : 1024, IDS_PREC_F32, err);
    if (st) return st;
    o.packs = v->packs;
    const size_t rowlen = (size_t)ml->tiles * ml->np * E > T * E ? (size_t)ml->tiles * ml->np * E : T * E;
    const size_t sizes[] = {T * E, T * E, T * E, T * E, T * E, T * E, T * E, T * F,
                            (size_t)ids__ops_threads(&o) * 64 * T, (size_t)ml->tiles * ml->np * ml->vout,
                            (size_t)ml->tiles * 3 * S * S, (size_t)v->hp.grid * v->hp.grid * KP, rowlen};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += sizes[i];
    float *mem = ids__malloc(total * sizeof(float));
    unsigned char *masked = ids__malloc(T);
    mbufs b = {0};
    if (!mem || !masked) {
        st = ids__err(err, IDS_ERR_NOMEM, "vision: out of memory for %zu tower rows", T);
    } else {
        float **ptr[] = {&b.x, &b.xn, &b.q, &b.k, &b.v, &b.att, &b.tmp, &b.ff, &b.scores, &b.feats, &b.pix, &b.patches, &b.row};
        float *p = mem;
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) *ptr[i] = p, p += sizes[i];
        b.masked = masked;
        st = run(v, &o, img, out, blocks, &b, err);
    }
    free(mem);
    free(masked);
    ids__ops_free(&o);
    return st;
}
