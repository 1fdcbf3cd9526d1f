/* Private declarations shared by the vision tower files: vision.c (what every family shares:
 * loading steps, preprocessing, the pre-norm transformer and the projector's MLP), vision_clip.c
 * (LLaVA-1.5 CLIP, projector "mlp"), vision_qwen2vl.c (Qwen2-VL, "qwen2vl_merger") and
 * vision_qwen25vl.c (Qwen2.5-VL, "qwen2.5vl_merger": window attention, RMSNorm, gated SiLU MLP) and
 * vision_internvl.c (InternVL 2.5/3, "internvl": InternViT with layer scale, tiles, pixel shuffle),
 * vision_onevision.c (LLaVA-OneVision, "llava_onevision": SigLIP, anyres tiles, newline rows). */
#ifndef IDS_VISION_H
#define IDS_VISION_H

#include "base/internal.h"
#include "engine/ops.h"

typedef struct {
    const ids_tensor *q, *k, *v, *o, *fc1, *fc2; /* fc1: n_embd -> n_ff (up), fc2: n_ff -> n_embd (down) */
    const ids_tensor *gate;                      /* gated MLP (Qwen2.5-VL): down(silu(gate x) * up x) */
    float *qb, *kb, *vb, *ob, *fc1b, *fc2b, *gateb, *ln1w, *ln1b, *ln2w, *ln2b; /* ln*b NULL: RMSNorm */
    bool full_attn;                              /* Qwen2.5-VL: this block attends across windows */
    float *ls1, *ls2;    /* InternViT: layer scale [n_embd] of the attention and MLP branches (NULL: none) */
    float *qn, *kn;      /* InternViT-6B: RMSNorm [n_embd] of the whole Q and K rows before the heads split */
} ids_vblock;

/* Qwen3-VL DeepStack merger: LayerNorm over the 2x2 group's 4E values, fc1, GELU (erf), fc2. */
typedef struct {
    int layer;                   /* the tower block whose output it reads */
    const ids_tensor *fc1, *fc2; /* [4E, 4E], [4E, n_out_embd] */
    float *nw, *nb, *fc1b, *fc2b;
} ids_vdeep;

struct ids_vision {
    ids_gguf *g;
    ids__packs *packs; /* the weights packed for the matmul kernels, kept across encodes (engine/ops.h) */
    ids_vparams hp;
    bool qwen;         /* Qwen merger towers (2-VL, 2.5-VL): dynamic resolution, temporal patches */
    bool qwen25;       /* Qwen2.5-VL: RMSNorm, gated SiLU MLP, window attention */
    bool rms;          /* the blocks' and post-norm's norms are RMSNorm (no bias) */
    bool qwen3;        /* Qwen3-VL: fused qkv, learned positions interpolated to the grid, DeepStack */
    bool gelu_tanh;    /* the blocks' MLP GELU is the tanh approximation (Qwen3-VL gelu_pytorch_tanh) */
    int pos_side;      /* Qwen3-VL: the learned position table is pos_side x pos_side (v->pos [side^2, E]) */
    ids_vdeep *deep;   /* Qwen3-VL: hp.n_deepstack mergers */
    ids_tensor *qkv_view; /* Qwen3-VL: [n_layer][3] views of the fused attn_qkv as q, k, v */
    bool internvl;     /* InternVL: tiles of image_size, CLS per tile, pixel shuffle, LayerNorm + MLP projector */
    int min_tiles, max_tiles; /* InternVL: tiles per image (clip.vision.preproc_min/max_tiles) */
    bool llamacpp_tiles;      /* InternVL: llama.cpp's tiling instead of HF's (ids_vision_set_tiling) */
    float *mm_ln_w, *mm_ln_b; /* InternVL: the projector's LayerNorm [n_embd * merge^2] */
    ids_tensor patch;  /* view of v.patch_embd.weight as [3*p*p, n_embd] */
    ids_tensor patch1; /* Qwen2-VL: the second temporal kernel */
    float *patch_b, *cls, *pos, *pre_w, *pre_b, *post_w, *post_b;
    ids_vblock *blk;
    const ids_tensor *mm0, *mm2;
    float *mm0b, *mm2b;
    /* Gemma 3 (projector "gemma3", vision_gemma3.c): SigLIP without CLS, GELU (tanh), post-LN,
     * pool x pool average pooling, soft-embedding RMSNorm, input projection (no bias) */
    bool gemma3;
    int pool;
    float *soft_norm;   /* [n_embd], stored with HF's (1 + w) folded in */
    ids_tensor proj;    /* mm.input_projection transposed to ne = [n_embd, n_out_embd], F32 (proj_f) */
    float *proj_f;
    /* LLaVA-OneVision (projector "llava_onevision", vision_onevision.c): SigLIP, anyres tiles with
     * image_newline rows, videos pooled 2x2 bilinearly */
    bool onevision;
    int *pinpoints;     /* n_pinpoints pairs (height, width), multiples of image_size */
    int n_pinpoints, anyres_max;
    float *newline;     /* v.image_newline [n_out_embd] */
    struct ids_vmllama *ml; /* Llama-3.2-Vision (projector "mllama", vision_mllama.c); NULL otherwise */
};

/* ---- loading: each family's loader runs the shared steps around its own tensors ---- */
ids_status ids__vision_load_clip(ids_vision *v, ids_err *err);
ids_status ids__vision_load_qwen2vl(ids_vision *v, ids_err *err);
ids_status ids__vision_load_qwen25vl(ids_vision *v, ids_err *err);
ids_status ids__vision_load_gemma3(ids_vision *v, ids_err *err);
/* The blocks v.blk.N.* (LayerNorm or RMSNorm, biases optional). */
ids_status ids__vision_load_blocks(ids_vision *v, ids_err *err);
ids_status ids__vision_load_qwen3vl(ids_vision *v, ids_err *err);
void ids__vision_free_qwen3vl(ids_vision *v);
ids_status ids__vision_load_internvl(ids_vision *v, ids_err *err);
/* LLaVA-OneVision: the plan (an image: base tile + best-pinpoint tiles, n_out = grid^2 + grid_h x
 * grid_w packed rows with the newline column last; n_frames > 1: a video of pooled frames and one
 * newline; video: a video even of one frame), the squares' normalized pixels ([1 + tiles or frames, 3, S, S], base first) and the
 * encoding (blocks: square after square, patches in raster order). */
ids_status ids__vision_load_onevision(ids_vision *v, ids_err *err);
ids_status ids__vision_plan_onevision(const ids_vision *v, const ids_image *img, int n_frames, bool video,
                                      ids_vplan *out, ids_err *err);
ids_status ids__vision_tiles_onevision(const ids_vision *v, const ids_image *frames, int n_frames, bool video,
                                       float *pixels, ids_err *err);
ids_status ids__vision_encode_onevision(const ids_vision *v, const ids_image *frames, int n_frames, bool video,
                                        int n_threads, float *out, float *blocks, ids_err *err);
/* Qwen towers: dynamic-resolution keys (merge, pixel bounds) and both temporal patch kernels. */
ids_status ids__vision_load_qwen_common(ids_vision *v, ids_err *err);
/* Sizes, normalisation and activation every family stores (clip.vision.*), with the fixed-size
 * defaults (one grid of image_size / patch_size, CLS + patches, every block run, no merge). */
ids_status ids__vision_load_hparams(ids_vision *v, ids_err *err);
/* clip.vision.feature_layer, when present: how many blocks run. */
ids_status ids__vision_load_feature_layer(ids_vision *v, ids_err *err);
/* v.patch_embd.weight (viewed as [3*p*p, n_embd]) and its bias. */
ids_status ids__vision_load_patch_embd(ids_vision *v, ids_err *err);
/* pre-LN, the blocks and the projector (mm.0 -> GELU -> mm.2). */
ids_status ids__vision_load_tower(ids_vision *v, ids_err *err);
/* The projector alone: mm.0 [n_embd * merge^2, H], mm.2 [H, n_out_embd] and their biases. */
ids_status ids__vision_load_projector(ids_vision *v, ids_err *err);

/* ---- encoding ---- */
/* Scratch of one encode call (see ids_vision_encode_frames for the sizes). */
typedef struct {
    int W, H;       /* preprocessed size */
    float *pix;     /* [n_pixel_frames, 3, H, W] */
    float *patches; /* [n_patches, 3*p*p] */
    float *patches1; /* Qwen2-VL: the second frame of each temporal patch */
    float *x, *xn, *q, *k, *v, *att, *tmp; /* [T, E] */
    float *ff;      /* [T, n_ff] */
    float *ff2;     /* Qwen2.5-VL: the gate's half of the MLP [T, n_ff] */
    float *scores;  /* [threads, ids__vision_attn_scratch(G)]: each thread's attention tile */
    float *hid;     /* [n_out, projector width] */
    float *cs;      /* Qwen2-VL: 2-D rotary cos/sin [T, head_dim/2, 2] */
} ids_vbufs;

/* One pre-norm block on w->x [T, E]: attention within the groups seg[0..n_seg] (at most Gmax rows
 * each), then the MLP; layer scale and QK-norm where the block has them. */
void ids__vision_run_block(const ids_vision *v, ids_ops *o, const ids_vblock *b, int T, const int *seg, int n_seg,
                           int Gmax, ids_vbufs *w);
/* Floats of attention scratch per thread for groups of at most Gmax rows (a tile of query rows by a
 * block of keys, bounded whatever Gmax). */
size_t ids__vision_attn_scratch(int Gmax);
/* Tests only: the key block of the tiled attention (keys <= 0: the default); the tile scratch
 * follows it, so set it before allocating. Not thread-safe. */
void ids__vision_set_key_block(int keys);
/* InternVL (vision_internvl.c): the tiling plan of one image, its tiles' normalized pixels
 * ([n_tiles, 3, S, S], thumbnail last) and the encoding of its tiles; n_frames > 1: video frames,
 * one tile each. */
ids_status ids__vision_plan_internvl(const ids_vision *v, const ids_image *img, int n_frames, ids_vplan *out,
                                    ids_err *err);
ids_status ids__vision_tiles_internvl(const ids_vision *v, const ids_image *img, int n_frames, float *pixels,
                                     ids_err *err);
ids_status ids__vision_encode_internvl(const ids_vision *v, const ids_image *img, int n_frames, int n_threads,
                                       float *out, float *blocks, ids_err *err);
/* CLIP: patch rows in raster order, patch embedding, CLS in row 0, positions added: x [T, E]. */
void ids__vision_embed_clip(const ids_vision *v, ids_ops *o, ids_vbufs *b);
/* SigLIP (Gemma 3): patch rows in raster order, patch embedding, positions added: x [T, E]. */
void ids__vision_embed_siglip(const ids_vision *v, ids_ops *o, ids_vbufs *b);
/* Gemma 3's projector on the tower's stream x [T, E]: post-LN, average pooling, soft-embedding norm,
 * input projection: out [n_out, n_out_embd]. */
void ids__vision_project_gemma3(const ids_vision *v, ids_ops *o, ids_vbufs *b, float *out);
/* Qwen2-VL: the plan for frames of equal size (dynamic resolution, frames paired). */
ids_status ids__vision_plan_qwen2vl(const ids_vision *v, const ids_image *frames, int n_frames, ids_vplan *out,
                                    ids_err *err);
/* Qwen2-VL: patch rows of both temporal kernels in 2x2-merge order, their rotary table (b->cs),
 * both patch embeddings summed: x [T, E]. */
void ids__vision_embed_qwen2vl(const ids_vision *v, ids_ops *o, const ids_vplan *pl, ids_vbufs *b);
/* Qwen3-VL: the learned position table, interpolated bilinearly (HF fast_pos_embed_interpolate) to
 * the plan's patch grid, added to x [T, E] (patches in merge order, every temporal patch). */
void ids__vision_add_pos_qwen3vl(const ids_vision *v, const ids_vplan *pl, float *x);
/* Qwen3-VL: DeepStack merger k on x [T, E] (merge order) -> out [n_out, n_out_embd]; scratch xn [T, E],
 * hid [n_out, 4E]. */
void ids__vision_deepstack_qwen3vl(const ids_vision *v, ids_ops *o, int k, int n_out, const float *x, float *xn,
                                   float *hid, float *out);
/* Qwen2-VL: the 2-D rotary positions on q or k rows [T, n_head * hd]. */
void ids__vision_rope2d(float *x, const float *cs, int T, int n_head, int hd);
/* Qwen2.5-VL window attention for a plan: win[k] = the merge-order index of the 2x2 group that
 * comes k-th in window order (HF window_index; windows of v->hp.window x window merged cells,
 * row-major, truncated at the right and bottom edges, each temporal patch on its own); seg
 * (n_seg + 1 patch offsets, in window order) = the windows. Sizes (groups, most windows) from
 * ids__vision_windows_size. */
void ids__vision_windows_size(const ids_vplan *pl, size_t *n_groups, size_t *max_seg);
void ids__vision_windows_qwen25vl(const ids_vision *v, const ids_vplan *pl, int *win, int *seg, int *n_seg);
/* Rows in groups of g (each `width` floats): dst[k] = src[win[k]] (to window order) or, inverse,
 * dst[win[k]] = src[k] (back to merge order). */
void ids__vision_permute_groups(float *dst, const float *src, const int *win, size_t n_groups, size_t group_floats,
                                bool inverse);

/* Llama-3.2-Vision (vision_mllama.c): loading, the tile plan of an image, its tiles' normalized pixels
 * ([max_tiles, 3, S, S], unused tiles zero; HF's aspect-ratio id and the tile count) and the
 * encoding: out [max_tiles * (patches + 1), n_out_embd] (the cross-attention states), blocks
 * [n_layer, max_tiles * padded rows, n_embd] (local blocks, then global ones). */
ids_status ids__vision_load_mllama(ids_vision *v, ids_err *err);
void ids__vision_free_mllama(ids_vision *v);
ids_status ids__vision_plan_mllama(const ids_vision *v, const ids_image *img, ids_vplan *out, ids_err *err);
ids_status ids__vision_tiles_mllama(const ids_vision *v, const ids_image *img, float *pixels, int *ratio_id, int *n_tiles,
                                    ids_err *err);
ids_status ids__vision_encode_mllama(const ids_vision *v, const ids_image *img, int n_threads, float *out,
                                     float *blocks, ids_err *err);

#endif
