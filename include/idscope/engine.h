/* idscope layer "engine": decoder models, vision towers, sequences, hooks, run contexts, vision-language models.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_ENGINE_H
#define IDSCOPE_ENGINE_H

#include "idscope/text.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Decoder models                                                                               */

/* IMROPE (Qwen3-VL): M-RoPE with the streams interleaved pair by pair (HF apply_interleaved_mrope). */
typedef enum ids_rope_mode { IDS_ROPE_NORM = 0, IDS_ROPE_NEOX = 2, IDS_ROPE_MROPE = 8, IDS_ROPE_IMROPE = 40 } ids_rope_mode;

typedef struct ids_hparams {
    char arch[32];
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot, n_ctx_train;
    float rms_eps, rope_base;
    ids_rope_mode rope_mode;
    int rope_sections[4];  /* M-RoPE: rotary pairs per position stream (t, h, w, e) */
    bool tied_output;
    /* Gemma 3 (arch "gemma3"; zero elsewhere): token embeddings times embd_scale = sqrt(n_embd);
     * norms after attention and the MLP; gated GELU (tanh) MLP; image blocks attended both ways;
     * layer l slides (window swa_window, RoPE base rope_base_swa, scale 1) iff swa_layers[l] when the
     * file lists the layers (swa_pattern 0 then), else iff swa_pattern is 0 or l % swa_pattern <
     * swa_pattern - 1; the others use rope_base with positions times rope_scale; queries times
     * attn_scale; logits capped as cap * tanh(logit / cap) when logit_softcap > 0. */
    bool gemma3;
    int swa_window, swa_pattern;
    bool *swa_layers;      /* [n_layer] or NULL; owned by the model */
    float rope_base_swa, rope_scale, attn_scale, embd_scale, logit_softcap;
    bool qk_norm;          /* per-head RMSNorm of q and k before the rotation (Qwen3-VL) */
    int n_deepstack;       /* Qwen3-VL: blocks 0..n_deepstack-1 get a DeepStack row added after them */
    /* Llama-3.2-Vision (arch "mllama"): blocks xattn_layer[0..n_xattn) are gated cross-attention layers
     * (the row attends to the images' cross-attention states, ids_seq_set_cross; no self-attention, no
     * rotation); token_embd has n_vocab_embd rows (vocab_size + 8 in the published files; <|image|> is
     * one of them), the output head n_vocab. n_vocab_embd = n_vocab elsewhere. */
    int n_xattn;
    int xattn_layer[64];
    int n_vocab_embd;
} ids_hparams;

typedef struct ids_model ids_model;

/* Load a decoder (text) GGUF: weights stay in the mapped file in their stored format. On its first product a
 * weight matrix is packed for the matmul kernels and kept (same results, no repacking per product): at most
 * 2.25 times its stored bytes, all packed weights at most IDSCOPE_PACK_MB MiB (by default half the
 * machine's memory; 0: never); its pages of the file are then given back to the OS. */
ids_status ids_model_load(ids_model **out, const char *path, ids_err *err);
void ids_model_free(ids_model *m);
/* Bytes of the model's weights packed so far. */
size_t ids_model_packed_bytes(const ids_model *m);
const ids_hparams *ids_model_hparams(const ids_model *m);
const ids_tokenizer *ids_model_tokenizer(const ids_model *m);
const ids_gguf *ids_model_gguf(const ids_model *m);

/* ------------------------------------------------------------------------------------------ */
/* Vision towers (mmproj GGUF)                                                                  */

typedef struct ids_vparams {
    char projector[32];   /* clip.projector_type: "mlp" (LLaVA-1.5), "qwen2vl_merger", "qwen2.5vl_merger",
                             "qwen3vl_merger", "gemma3" (n_out = (grid / 4)^2 rows after 4 x 4 average pooling),
                             "internvl" or "llava_onevision" (idscope's: HF LLaVA-OneVision, n_out per plan) */
    bool dynamic;         /* dynamic resolution (Qwen2-VL, 2.5-VL, 3-VL): image_size/grid/n_out vary per image */
    int merge;            /* cells merged per side into one output row (Qwen2-VL: 2) */
    int window;           /* Qwen2.5-VL: attention windows of window x window merged cells (0: none) */
    int n_wa_pattern;     /* Qwen2.5-VL: block l attends across windows when (l + 1) % n_wa_pattern == 0 */
    int mrope_t_step;     /* M-RoPE t advance per temporal patch of a video (Qwen2-VL 1, Qwen2.5-VL 2) */
    int min_pixels, max_pixels; /* dynamic resolution bounds */
    int image_size, patch_size, grid;  /* grid = image_size / patch_size patches per side */
    int n_embd, n_ff, n_head, n_layer; /* n_layer = blocks stored */
    int n_run;            /* blocks run: max(clip.vision.feature_layer), else all stored */
    int n_tokens;         /* tower tokens (CLS first, then patches in raster order); InternVL: per tile */
    int n_out;            /* rows per image given to the decoder; InternVL: per tile (ids_vplan: per image) */
    int n_out_embd;       /* their width (the decoder's n_embd) */
    float eps, mean[3], std[3];
    bool use_gelu;        /* false: quick-GELU */
    bool ffn_swapped;     /* legacy naming: fc1 stored as ffn_down */
    int n_deepstack;      /* Qwen3-VL: DeepStack mergers (rows added to the first decoder blocks' output) */
    int deepstack_layer[8]; /* the tower blocks they read (ascending) */
} ids_vparams;

typedef struct ids_vision ids_vision;

ids_status ids_vision_load(ids_vision **out, const char *path, ids_err *err);
void ids_vision_free(ids_vision *v);
const ids_vparams *ids_vision_params(const ids_vision *v);
/* InternVL: HF's tiling (false, the default: closest aspect ratio over min..max tiles, stretched,
 * small images tiled too) or llama.cpp's (true: LLaVA-NeXT best resolution, letterboxed in black,
 * images within image_size in both sides one tile). */
ids_status ids_vision_set_tiling(ids_vision *v, bool llamacpp, ids_err *err);
/* Override the dynamic-resolution pixel bounds (Qwen2-VL, Qwen2.5-VL). */
ids_status ids_vision_set_pixel_bounds(ids_vision *v, int min_pixels, int max_pixels, ids_err *err);

/* What encoding these frames gives: the preprocessed size, the grid of output rows
 * (grid_t temporal patches x grid_h x grid_w, raster order) and the tower's token count. */
typedef struct ids_vplan {
    int width, height;
    int grid_t, grid_h, grid_w;
    int n_out;     /* grid_t * grid_h * grid_w rows for the decoder */
    int n_tokens;  /* tokens inside the tower (CLS + patches, or patches) */
    int tiles_w, tiles_h; /* InternVL: the image cut into tiles_w x tiles_h tiles (row-major), each a
                           * "temporal patch" t < tiles_w * tiles_h of grid_h x grid_w cells; with more
                           * than one tile a thumbnail of the whole image follows (t = grid_t - 1).
                           * LLaVA-OneVision: an image's tiles (the base square first, not counted),
                           * n_out = grid^2 base rows + grid_h x grid_w rows of the packed map (its
                           * last column the newline rows), grid_t 1; a video: grid_t frames of
                           * grid_h x grid_w pooled rows and one newline row.
                           * 1 x 1 for every other tower. width x height: the tiled image's size. */
} ids_vplan;
/* Dynamic resolution rule (Qwen2-VL, Qwen2.5-VL; HF smart_resize): each side rounded to the nearest
 * multiple of 28 (ties to even), then scaled down (floor) or up (ceil) by one common factor to keep
 * width * height inside [min_pixels, max_pixels]; resampled with Pillow's bicubic filter, not at all
 * when the size is already right. A video is a list of frames grouped in pairs (the last frame is
 * repeated when the count is odd). */
ids_status ids_vision_plan(const ids_vision *v, const ids_image *frames, int n_frames, ids_vplan *out,
                           ids_err *err);
ids_status ids_vision_encode_frames(const ids_vision *v, const ids_image *frames, int n_frames,
                                    int n_threads, float *out, float *blocks, ids_err *err);
/* The same with the DeepStack rows of a Qwen3-VL tower: deepstack (optional, NULL for none)
 * [n_deepstack, n_out, n_out_embd], merger k's rows from tower block deepstack_layer[k]. */
ids_status ids_vision_encode_deepstack(const ids_vision *v, const ids_image *frames, int n_frames, int n_threads,
                                       float *out, float *deepstack, float *blocks, ids_err *err);
/* Image -> normalized planar pixels [3, H, W] as the tower expects (LLaVA-1.5: pad to a square with
 * the mean colour (122,116,104), bicubic resize to S; Qwen: the dynamic-resolution size; then
 * (x/255 - mean) / std). Size from ids_vision_plan. InternVL: every tile, thumbnail last,
 * [grid_t, 3, image_size, image_size]; LLaVA-OneVision: the base square, then every tile,
 * [n_tokens / grid^2, 3, image_size, image_size]. */
ids_status ids_vision_preprocess(const ids_vision *v, const ids_image *img, float *pixels, ids_err *err);
/* Encode one image: out [n_out, n_out_embd]; blocks (optional) [n_run, n_tokens, n_embd] = the
 * tower's stream after each block (Qwen2-VL, Qwen2.5-VL: patches in merge order, each 2x2 group
 * together; Qwen2.5-VL runs its blocks in window order and the copy undoes it; InternVL: tile after
 * tile, each CLS first, then its patches in raster order). */
ids_status ids_vision_encode(const ids_vision *v, const ids_image *img, int n_threads, float *out,
                             float *blocks, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Sequences: what every row of a run is                                                       */

typedef enum ids_row_kind { IDS_ROW_TEXT = 0, IDS_ROW_IMAGE = 1 } ids_row_kind;

typedef struct ids_row {
    int32_t token;     /* token id, or -1 for an embedding row (image patch / given vector) */
    int8_t kind;       /* ids_row_kind */
    int16_t image;     /* image / frame index for image rows, else -1 */
    int16_t cell_row;  /* patch or merged cell of the image: row, column (-1 for text) */
    int16_t cell_col;
    int16_t frame;     /* temporal patch of a video (0 for still images, -1 for text) */
    int32_t pos[3];    /* rotary position (t, h, w); equal for models without M-RoPE */
} ids_row;

typedef struct ids_seq ids_seq;

ids_seq *ids_seq_new(int n_embd);
void ids_seq_free(ids_seq *s);
/* Append token rows (text). Positions continue from the last row. */
ids_status ids_seq_add_tokens(ids_seq *s, const int32_t *ids, size_t n, ids_err *err);
/* Tokenize and append; BOS only when add_bos and the vocabulary asks for it. */
ids_status ids_seq_add_text(ids_seq *s, const ids_tokenizer *t, const char *text, bool add_bos,
                            bool parse_special, ids_err *err);
/* Append n_rows embedding rows ([n_rows, n_embd], copied). kind = IDS_ROW_IMAGE with a grid of
 * grid_w columns gives each row its cell (i / grid_w, i % grid_w); IDS_ROW_TEXT rows are plain
 * given vectors (cell -1). */
ids_status ids_seq_add_embd(ids_seq *s, const float *rows, int n_rows, ids_row_kind kind,
                            int image, int grid_w, ids_err *err);
/* Positions of image rows: one per row (llama), or M-RoPE (t, h, w) grids (Qwen2-VL). */
void ids_seq_set_mrope(ids_seq *s, bool on);
/* Append an image's (or video's) rows: grid_t temporal patches of grid_h x grid_w cells, raster
 * order ([grid_t * grid_h * grid_w, n_embd]). With M-RoPE, cell (t, r, c) gets position
 * (p0 + t, p0 + r, p0 + c) and the next row p0 + max(grid_t, grid_h, grid_w). */
ids_status ids_seq_add_image(ids_seq *s, const float *rows, int image, int grid_t, int grid_h,
                             int grid_w, ids_err *err);
/* The same with temporal patch t at M-RoPE time p0 + t * t_step (HF Qwen2.5-VL: 2 at its default
 * 2 frames per second); the next row follows the largest position, p0 + max((grid_t - 1) * t_step,
 * grid_h - 1, grid_w - 1) + 1. */
ids_status ids_seq_add_visual(ids_seq *s, const float *rows, int image, int grid_t, int grid_h, int grid_w,
                              int t_step, ids_err *err);
/* Qwen3-VL: the DeepStack rows of the visual rows just appended by ids_seq_add_visual (the last
 * n_rows rows): ds [n_ds, n_rows, n_embd]; every visual block of a sequence has the same n_ds. */
ids_status ids_seq_set_deepstack(ids_seq *s, const float *ds, int n_ds, int n_rows, ids_err *err);
/* DeepStack rows per visual row (0 when none), and row i's k-th one (NULL when row i has none). */
int ids_seq_n_deepstack(const ids_seq *s);
const float *ids_seq_deepstack(const ids_seq *s, int i, int k);
/* Llama-3.2-Vision: an image's cross-attention states [n_keys, n_embd] (every tile of the tower's
 * output, CLS included), given after its <|image|> token row `row` (rows of images ascending); the
 * rows of its span attend to its first n_valid keys (the image's tiles; HF cross_attention_mask), a
 * row in no span attends to every key and its cross-attention MLP output is zeroed (HF
 * full_text_row_masked_out_mask). At most IDS_SEQ_MAX_CROSS images. */
#define IDS_SEQ_MAX_CROSS 64
ids_status ids_seq_add_cross(ids_seq *s, int row, const float *states, int n_keys, int n_valid, ids_err *err);
int ids_seq_n_cross(const ids_seq *s);          /* key rows of all images */
const float *ids_seq_cross(const ids_seq *s);   /* [n_cross, n_embd] */
int ids_seq_n_cross_images(const ids_seq *s);
void ids_seq_cross_image(const ids_seq *s, int i, int *row, int *first, int *n_valid);
/* The images whose span holds row r (bit i: image i; HF's rule: an <|image|> row's span runs to the
 * next image's row, adjacent ones share the span after the last, the last runs to the end); rows past
 * the end have the last row's. */
uint64_t ids_seq_cross_images(const ids_seq *s, int r);
int ids_seq_len(const ids_seq *s);
const ids_row *ids_seq_row(const ids_seq *s, int i);
/* The input vector of an embedding row (image patch / given vector) i; NULL for token rows. */
const float *ids_seq_embd(const ids_seq *s, int i);
int ids_seq_n_embd(const ids_seq *s);

/* Position selectors */
typedef enum ids_sel_kind {
    IDS_SEL_ALL = 0,  /* every row */
    IDS_SEL_RANGE,    /* rows [begin, end) */
    IDS_SEL_LIST,     /* explicit rows */
    IDS_SEL_IMAGE,    /* image rows (of image `image`, or all images when image < 0) */
    IDS_SEL_TEXT,     /* text rows */
    IDS_SEL_WORD,     /* the token of " " + word (last piece), nth occurrence (0-based) */
    IDS_SEL_LAST      /* the last row */
} ids_sel_kind;

typedef struct ids_sel {
    ids_sel_kind kind;
    int begin, end;       /* RANGE */
    const int *list;      /* LIST */
    int n_list;
    int image;            /* IMAGE */
    const char *word;     /* WORD */
    int nth;              /* WORD */
    bool after_image;     /* WORD: search only after the last image row (the paper's rule) */
} ids_sel;

/* Resolve a selector to row indices (malloc'd, ascending as given). Errors name the value at fault
 * (row past the end, word not in the sequence, ...). */
ids_status ids_sel_resolve(const ids_seq *s, const ids_tokenizer *t, const ids_sel *sel,
                           int **rows, int *n_rows, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Hooks                                                                                        */

typedef enum ids_site_kind {
    IDS_SITE_RESID = 0, /* residual stream at layer l = 0..n_layer (0 = embeddings, l = after block l) */
    IDS_SITE_ATTN_OUT,  /* attention output of block l (after the output projection), l < n_layer */
    IDS_SITE_MLP_OUT,   /* MLP output of block l, l < n_layer */
    IDS_SITE_ATTN_PROBS,/* attention probabilities of block l: per selected query row [n_head, n_seq] */
    IDS_SITE_DEEPSTACK, /* Qwen3-VL: the DeepStack rows added after block l (l < n_deepstack; zero on rows
                         * without one); layer l + 1 is the stream after the addition. An ADD here is
                         * applied to the stream after the addition, the same sum as an ADD at RESID l + 1
                         * on those rows; the other actions see and change the DeepStack rows themselves */
    IDS_SITE_XATTN_OUT, /* mllama: a cross-attention layer's attention output (after o_proj, before its gate) */
    IDS_SITE_XATTN_GATE,/* mllama: a cross-attention layer's gates per row, width 2: tanh(attn gate) and
                         * tanh(MLP gate) x the row's mask (0 on rows that attend to no image); editing
                         * them (SCALE 0 ablates the images at that layer) changes what the layer adds */
    IDS_SITE_COUNT
} ids_site_kind;

typedef enum ids_action {
    IDS_ACT_CAPTURE = 0, /* copy the selected rows into `out` ([n_sel, width]) */
    IDS_ACT_ADD,         /* add `vec` ([width], or [n_sel, width] when per_row) */
    IDS_ACT_REPLACE,     /* replace the selected rows with `src` ([n_sel, width]) */
    IDS_ACT_SCALE,       /* multiply by `scale` */
    IDS_ACT_CALLBACK     /* call fn with a writable pointer to the selected rows */
} ids_action;

typedef struct ids_hook_view {
    ids_site_kind site;
    int layer;
    int variant;     /* index of the variant in a batch */
    int n_rows;      /* selected rows */
    const int *rows; /* their sequence indices */
    int width;       /* floats per row (n_embd, or n_head * n_seq for attention probabilities) */
} ids_hook_view;

/* data: [n_rows, width], rows in the order of view->rows; writable. */
typedef void (*ids_hook_fn)(const ids_hook_view *view, float *data, void *user);

typedef struct ids_hook {
    ids_site_kind site;
    int layer;
    ids_sel sel;
    ids_action action;
    float *out;          /* CAPTURE */
    const float *vec;    /* ADD */
    bool per_row;        /* ADD */
    const float *src;    /* REPLACE */
    float scale;         /* SCALE */
    ids_hook_fn fn;      /* CALLBACK */
    void *user;          /* CALLBACK */
    size_t len;          /* floats in out / vec / src; checked against what the selection needs */
} ids_hook;

/* A set of hooks that makes one edited run of the context's sequence. */
typedef struct ids_variant {
    const ids_hook *hooks;
    int n_hooks;
} ids_variant;

/* ------------------------------------------------------------------------------------------ */
/* Run context: per-run state over a shared model                                              */

typedef struct ids_ctx ids_ctx;

typedef struct ids_ctx_params {
    int n_ctx;       /* longest sequence (prompt + generated tokens) */
    int max_rows;    /* rows computed together (variants x rows); default n_ctx */
    int n_threads;   /* default: online CPUs */
    bool keep_clean; /* keep the clean run's residuals and K/V for reuse (default true) */
    ids_precision precision; /* numerics of the matmuls (default IDS_PREC_F32; see ids_precision) */
} ids_ctx_params;

ids_ctx_params ids_ctx_default_params(void);
ids_status ids_ctx_new(ids_ctx **out, const ids_model *m, ids_ctx_params p, ids_err *err);
void ids_ctx_free(ids_ctx *c);
/* Bytes of the buffers the context holds. */
size_t ids_ctx_memory(const ids_ctx *c);

typedef enum ids_logits_mode { IDS_LOGITS_NONE = 0, IDS_LOGITS_LAST, IDS_LOGITS_ALL } ids_logits_mode;

typedef struct ids_run_opts {
    bool full_recompute;   /* ignore the clean cache: compute every layer at every row */
    ids_logits_mode logits;/* what goes to out->logits */
    const int32_t *cand;   /* candidate tokens: log-probabilities at the last row */
    int n_cand;
} ids_run_opts;

typedef struct ids_run_out {
    float *logits;       /* caller buffer: [n_vocab] (LAST) or [n_seq, n_vocab] (ALL), or NULL */
    float *cand_logprob; /* caller buffer [n_cand], or NULL */
} ids_run_out;

/* Run the sequence without edits and make it the context's current sequence (its clean run is
 * kept for reuse when keep_clean). Hooks given here may only capture. */
ids_status ids_ctx_prefill(ids_ctx *c, const ids_seq *s, const ids_hook *hooks, int n_hooks,
                           const ids_run_opts *opts, ids_run_out *out, ids_err *err);
/* One edited run of the current sequence. */
ids_status ids_ctx_run(ids_ctx *c, const ids_hook *hooks, int n_hooks, const ids_run_opts *opts,
                       ids_run_out *out, ids_err *err);
/* Many edited runs of the current sequence, computed together (outs: one per variant). */
ids_status ids_ctx_run_batch(ids_ctx *c, const ids_variant *vars, int n_vars,
                             const ids_run_opts *opts, ids_run_out *outs, ids_err *err);
/* Greedy generation of up to n_new tokens after the current sequence, with `hooks` applied to the
 * prompt pass. Stops early at an end-of-generation token (not written). */
ids_status ids_ctx_generate(ids_ctx *c, const ids_hook *hooks, int n_hooks, int n_new,
                            int32_t *tokens, int *n_out, ids_err *err);

/* Rows and floats per row that a hook's selection covers on the current sequence (the size
 * of its CAPTURE / REPLACE buffers). */
ids_status ids_ctx_hook_shape(const ids_ctx *c, const ids_hook *h, int *n_rows, int *width,
                              ids_err *err);
const ids_seq *ids_ctx_seq(const ids_ctx *c);

/* ------------------------------------------------------------------------------------------ */
/* Speed                                                                                        */

typedef struct ids_bench_result {
    int n_tokens, n_threads, reps;
    double seconds;      /* the best of the timed runs */
    double tokens_per_s, gflops;
    double mean_tokens_per_s; /* the mean of the timed runs' tokens/s (what llama-bench reports) */
    double flops;        /* arithmetic of one prefill (ids_prefill_flops) */
    double first_seconds; /* the warm-up run before them (it packs the weights not packed yet: ids_model_load) */
    size_t ctx_bytes;    /* the run context's buffers */
    size_t packed_bytes; /* the model's packed weights after the runs */
    ids_precision precision;
    char kernels[16];    /* the kernel path (ids_cpu_path) */
} ids_bench_result;
/* Floating-point operations of a prefill of n tokens: the matrix products of every block (q, k, v,
 * output, gate, up, down), attention over the causal half (QK^T and AV), the last row's logits. */
double ids_prefill_flops(const ids_hparams *hp, int n);
/* Time a prefill of n_tokens pseudo-random tokens through the whole decoder: a warm-up run, then the best
 * of reps runs. */
ids_status ids_bench_prefill(const ids_model *m, int n_tokens, int n_threads, int reps, ids_precision precision,
                             ids_bench_result *out, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Vision-language models: a decoder plus a vision tower                                       */

#define IDS_IMAGE_MARKER "<image>"
#define IDS_VIDEO_MARKER "<video>"

typedef struct ids_vlm ids_vlm;

/* Load a text GGUF and an mmproj GGUF; their widths must agree. Either path may be a Hugging Face
 * model folder (ids_hf_open: the folder's decoder or tower); mmproj_path NULL means text_path is a
 * folder holding both. */
ids_status ids_vlm_load(ids_vlm **out, const char *text_path, const char *mmproj_path, ids_err *err);
void ids_vlm_free(ids_vlm *v);
const ids_model *ids_vlm_model(const ids_vlm *v);
const ids_vision *ids_vlm_vision(const ids_vlm *v);
/* The mmproj file the VLM was loaded from (the text file: ids_gguf_path(ids_model_gguf(...))). */
const char *ids_vlm_mmproj_path(const ids_vlm *v);
/* Record both model files in a provenance (roles "text" and "mmproj"; fingerprints of their GGUF
 * headers and tensor tables). */
ids_status ids_vlm_prov(ids_prov *p, const ids_vlm *v, ids_err *err);
/* The family's chat prompt around a question, with one <image> marker per image
 * (LLaVA-1.5: "USER: <image>\nQUESTION ASSISTANT:"). malloc'd. */
char *ids_vlm_prompt(const ids_vlm *v, const char *question, int n_images);
/* Split `prompt` at <image> markers (their count must equal n_images), tokenize each text part as
 * llama.cpp does (BOS once at the start, special tokens parsed), encode each image and insert its
 * rows. vision_blocks (optional): [n_images, n_run, n_tokens, n_vembd]. */
ids_status ids_vlm_build_seq(const ids_vlm *v, const char *prompt, const ids_image *images,
                             int n_images, int n_threads, float *vision_blocks, ids_seq **out,
                             ids_err *err);
/* The same with <video> markers too: images are taken in marker order, one per <image> and
 * video_frames per <video>. A video is one block of temporal patches (frames in pairs) where the
 * tower has a video mode (Qwen2-VL, Qwen2.5-VL: rows carry their temporal patch in ids_row.frame), else one
 * image block per frame (LLaVA-style: ids_row.image is the frame). vision_blocks only without
 * videos. */
ids_status ids_vlm_build_video_seq(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                                   int video_frames, int n_threads, float *vision_blocks, ids_seq **out, ids_err *err);
/* The chat prompt around a question about n_images images and then one video: ids_vlm_prompt with
 * n_images + 1 markers, the last one <video>. malloc'd. */
char *ids_vlm_video_prompt(const ids_vlm *v, const char *question, int n_images);

/* Parse "all" or a list like "0,3,5-7" of integers in [lo, hi]. *out is malloc'd. */
ids_status ids_parse_index_list(const char *spec, int lo, int hi, int **out, int *n, ids_err *err);
/* Parse a position spec against a sequence: "all", "last", "image", "text", "word:WORD[:N]"
 * (N-th occurrence after the image, 0-based) or an index list. */
ids_status ids_parse_positions(const char *spec, const ids_seq *s, const ids_tokenizer *t, int **out,
                               int *n, ids_err *err);

typedef struct ids_capture_opts {
    const char *layers;    /* "all" or an index list over 0..n_layer (default "all") */
    const char *positions; /* see ids_parse_positions (default "all") */
    bool resid, logits, image_embd, vision;
    int n_threads;
    ids_precision precision; /* the decoder's matmuls (default f32) */
    bool attn_out, mlp_out, attn_probs; /* block sites, at the blocks among `layers` (those < n_layer) */
    bool deepstack;        /* Qwen3-VL: the DeepStack sites (IDS_SITE_DEEPSTACK, every block < n_deepstack) */
    bool xattn;            /* mllama: the cross-attention sites at every cross-attention layer */
    const ids_hook *edits;   /* edits of the run (ADD, REPLACE, SCALE or CALLBACK hooks); the captures
                                see what they leave */
    int n_edits;
    const char *const *edit_names; /* optional: each edit as messages and the provenance name it */
    const char *const *edit_files; /* optional: the file each edit's vector came from (a provenance
                                      input; NULL entries for none) */
} ids_capture_opts;

/* One forward pass of prompt + images (with the edits, when given); writes a safetensors file with
 * tokens [n_pos] (-1 on image rows), positions [n_sel, 3], and the selected sites: resid
 * [n_layers, n_sel, n_embd], attn_out and mlp_out [n_blocks, n_sel, n_embd], attn_probs
 * [n_blocks, n_sel, n_head, n_pos], logits [n_sel, n_vocab], image_embd [n_img_rows, n_embd],
 * vision [n_vblocks, n_vis_tokens, n_vembd] (with a leading n_images axis when there are several),
 * Qwen3-VL: deepstack [n_deepstack, n_sel, n_embd] (the rows added after blocks 0.., zero on text rows)
 * mllama: xattn_out [n_xattn, n_sel, n_embd], xattn_gate [n_xattn, n_sel, 2] and, with image_embd,
 * cross_states [n_cross, n_embd] (the images' cross-attention states; there are no image rows)
 * and, with image_embd, image_embd_deepstack [n_deepstack, n_img_rows, n_embd] (the tower's DeepStack
 * rows of the image rows; image_embd holds their main rows),
 * plus metadata: the layers and blocks, the positions, n_layer, each row's token text
 * ("token_strings", a JSON array; "" on image rows), role ("roles": "text" or "image") and cell
 * ("cells": [image, cell row, cell column], -1 for text), the edits, the provenance. */
ids_status ids_capture(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                       const ids_capture_opts *o, const char *out_path, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* llama.cpp control vectors                                                                    */
/* A GGUF of architecture "controlvector" (keys controlvector.model_hint, controlvector.layer_count)
 * holding F32 tensors direction.K [n_embd], K >= 1. llama.cpp (--control-vector) adds direction.K
 * at every row to the output of block K (0-based), which is idscope's residual layer K + 1; it
 * refuses direction.0 and has no place for K >= n_layer. */
typedef struct ids_cvec {
    int n_embd;
    int n;       /* directions */
    int *layer;  /* the residual layer each is added to (K + 1), ascending */
    float *dir;  /* [n, n_embd]; directions named for the same layer are summed, as llama.cpp does */
} ids_cvec;
/* Every tensor must be direction.K (K in 1..2^20), F32, one dimension, all of one length; errors
 * name the file and the tensor. */
ids_status ids_cvec_read(const char *path, ids_cvec *out, ids_err *err);
void ids_cvec_free(ids_cvec *c);
/* Directions for residual layers (each >= 2; written as direction.(layer - 1)), atomically, with the
 * provenance (may be NULL; finished by the caller) as the key idscope.provenance. */
ids_status ids_cvec_write(const char *path, const int *layers, const float *dirs, int n, int n_embd,
                          const char *model_hint, const ids_prov *prov, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Flat API for foreign callers (Python's ctypes, other FFIs)                                  */
/* Opaque handles, integers, C strings and caller-owned arrays only: no struct of this header
 * crosses the boundary, so a caller needs no copy of its layouts. Every call that can fail returns
 * an ids_status; the message of the calling thread's last failure is ids_ffi_error(). Arrays and
 * strings the library hands out are released with ids_ffi_free. Sites, actions, logits modes and
 * precisions are the integer values of ids_site_kind, ids_action, ids_logits_mode and
 * ids_precision. A run (ids_ffi_run) is one prompt with its images over a loaded VLM: its rows,
 * its clean run (kept for reuse) and any number of hooked variants of it; it is not safe to use
 * from two threads at once. python/idscope/ is the caller this was made for. */

#define IDS_FFI_VERSION 1
int ids_ffi_version(void);
/* The message of this thread's last failed ids_ffi_* call ("" when none failed). */
const char *ids_ffi_error(void);
void ids_ffi_free(void *p);

ids_status ids_ffi_vlm_load(ids_vlm **out, const char *text_path, const char *mmproj_path);
/* A number about the model by name: n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff,
 * n_ctx_train, n_xattn and xattn_layer.K (mllama: the K-th cross-attention layer) (decoder);
 * vision_n_embd, vision_n_head, vision_n_layer (blocks run), image_size, patch_size, dynamic (tower).
 * -1 for an unknown name. */
long long ids_ffi_vlm_size(const ids_vlm *v, const char *name);
/* A text about the model by name: arch, projector, text_path, mmproj_path, tokenizer ("spm" or
 * "bpe"). NULL for an unknown name; owned by the VLM. */
const char *ids_ffi_vlm_text(const ids_vlm *v, const char *name);
/* The model's chat prompt around a question with n_images <image> markers (ids_vlm_prompt). */
ids_status ids_ffi_prompt(const ids_vlm *v, const char *question, int n_images, char **out);
ids_status ids_ffi_tokenize(const ids_vlm *v, const char *text, int add_bos, int parse_special, int32_t **ids,
                            int *n_ids);
ids_status ids_ffi_detokenize(const ids_vlm *v, const int32_t *ids, int n_ids, int render_special, char **text);
/* One token as it reads in decoded text, control tokens included ("<s>", " circle"). */
ids_status ids_ffi_token_text(const ids_vlm *v, int32_t id, char **text);
/* The token of a word by the paper's rule (ids_tokenizer_word_token) into *id. */
ids_status ids_ffi_word_token(const ids_vlm *v, const char *word, int32_t *id);

/* A control vector file (ids_cvec_read): *layers [n] (residual layers) and *dirs [n, n_embd], both
 * malloc'd (ids_ffi_free). */
ids_status ids_ffi_cvec_read(const char *path, int *n, int *n_embd, int **layers, float **dirs);

typedef struct ids_ffi_run ids_ffi_run;
/* Encode the images and build the sequence of prompt (with <image> / <video> markers). Image i is
 * the file paths[i], or when rgb and rgb[i] are given, width[i] x height[i] pixels of 8-bit RGB
 * (row-major, copied). video_frames: images per <video> marker (0 without). keep_vision: keep the
 * tower's stream after each block for ids_ffi_run_vision (prompts without <video> only). */
ids_status ids_ffi_run_new(ids_ffi_run **out, const ids_vlm *v, const char *prompt, int n_images,
                           const char *const *paths, const uint8_t *const *rgb, const int *width,
                           const int *height, int video_frames, int keep_vision, int n_threads);
void ids_ffi_run_free(ids_ffi_run *r);
/* Settings of the run context, before the first run: "threads" (0: all cores), "precision",
 * "max_rows" (rows computed together, variants x rows; default 4 x the sequence), "gen_room"
 * (tokens that ids_ffi_run_generate may add; default 64). */
ids_status ids_ffi_run_set(ids_ffi_run *r, const char *key, long long value);
int ids_ffi_run_len(const ids_ffi_run *r);
int ids_ffi_run_n_images(const ids_ffi_run *r);
/* Every row as 9 int32 (out: [len, 9]): token (-1 on embedding rows), kind (ids_row_kind), image
 * block, cell row, cell column, frame (see ids_row), rotary position t, h, w. */
void ids_ffi_run_rows(const ids_ffi_run *r, int32_t *out);
/* The tower's stream of image block i (keep_vision): [n_blocks, n_tokens, width], owned by the run. */
ids_status ids_ffi_run_vision(const ids_ffi_run *r, int image, int *n_blocks, int *n_tokens, int *width,
                              const float **data);
/* Rows chosen by a selector: all, last, text, image, image:K (rows of image block K),
 * word:WORD[:N] (the N-th occurrence, 0-based, of the word's token after the last image row) or
 * an index list like 0,3,5-7. *rows is malloc'd (ids_ffi_free). */
ids_status ids_ffi_run_select(const ids_ffi_run *r, const char *rows, int **out, int *n_rows);
/* Hooks of variant `variant` (0, 1, ...; kept until ids_ffi_run_clear): at (site, layer) on the
 * rows of a selector, `action` with data (CAPTURE: out [n_rows, width]; ADD: [width], or
 * [n_rows, width] when per_row; REPLACE: [n_rows, width]; len = floats in data) or scale (SCALE).
 * width is n_embd, or n_head x len for ATTN_PROBS. data stays the caller's and must live until
 * the run that uses it returns. *n_rows and *width (may be NULL) receive the hook's shape; with
 * action -1 nothing is added (a shape query). */
ids_status ids_ffi_run_hook(ids_ffi_run *r, int variant, int site, int layer, const char *rows, int action,
                            float *data, long long len, float scale, int per_row, int *n_rows, int *width);
void ids_ffi_run_clear(ids_ffi_run *r);
/* The clean run, with the captures of variant 0 (only captures allowed). logits: [len, n_vocab]
 * (ALL) or [n_vocab] (LAST) or NULL; cand_logprob [n_cand] at the last row, or NULL. */
ids_status ids_ffi_run_prefill(ids_ffi_run *r, int logits_mode, float *logits, const int32_t *cand, int n_cand,
                               float *cand_logprob);
/* Variants 0..n_variants-1 as edited runs of the clean one (made first when there is none),
 * computed together: logits [n_variants, len or 1, n_vocab] by logits_mode, cand_logprob
 * [n_variants, n_cand]. full_recompute: compute every layer and row (for comparisons). */
ids_status ids_ffi_run_variants(ids_ffi_run *r, int n_variants, int logits_mode, float *logits, const int32_t *cand,
                                int n_cand, float *cand_logprob, int full_recompute);
/* Greedy answer of up to n_new tokens (at most gen_room) with the hooks of `variant` applied to
 * the prompt (-1: none); tokens [n_new]. */
ids_status ids_ffi_run_generate(ids_ffi_run *r, int variant, int n_new, int32_t *tokens, int *n_out);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_ENGINE_H */
