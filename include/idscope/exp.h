/* idscope layer "exp": experiments: spatial IDs, patching, steering, temporal IDs, score, report.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_EXP_H
#define IDSCOPE_EXP_H

#include "idscope/stimuli.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* What every experiment shares                                                                 */

/* The common options of every experiment, embedded as `exp` in each options struct. Zero fields take
 * the defaults, decided in one place (src/exp/context.c) for the model at hand:
 *  objects     red circle, blue square (and green triangle where three are needed: ids extract,
 *              temporal extract, steer grid --relation between); every ordered pair is used
 *  grid        4 cells per side
 *  image_size  the tower's input size (224 for dynamic-resolution towers)
 *  n_items     8 images (videos) per ordered pair
 *  n_threads   the online CPUs
 *  precision   f32 (the zero value)
 * The seed is taken as given (0 is a seed like any other; ids_exp_default() sets 1). The context
 * size of a run is derived from its longest sequence (image rows from the tower, plus the text). */
#define IDS_EXP_MAX_OBJECTS 16
typedef struct ids_shard {
    int index, count; /* shard index of count (0 <= index < count); count 0: not sharded */
} ids_shard;
typedef struct ids_exp {
    const int *objects;   /* catalog indices */
    int n_objects;
    int grid;
    int image_size;
    int n_items;
    uint64_t seed;
    int n_threads;
    ids_precision precision; /* the decoder's matmuls (default IDS_PREC_F32); recorded in provenance */
    /* The answer instruction appended to every question (after one space); {first} and {second}
     * become the relation's two answer words. NULL: the default, the paper's
     * IDS_PAPER_INSTRUCTION for chat models, none for a model made by idscope's trainer (GGUF key
     * idscope.training: it keeps the prompt it was trained on, see its card). no_instruction: none. */
    const char *instruction;
    bool no_instruction;
    /* An image set instead of drawn scenes: a folder written by `idscope stimuli` (synthetic or the
     * COCO-Spatial import) or its manifest. Each record's image, object names and words, boxes and
     * relations are used; records lacking what the experiment needs are skipped and counted.
     * n_items: a seeded sample of that many of the usable records (0: all of them). */
    const char *set_dir;
    /* Sharding and resumption (docs/CLUSTER.md). Items are numbered in the run's fixed order (every
     * loop of the experiment, drawn scenes or a set's records), the same on any machine and thread
     * count; shard {index, count} runs the items whose number i has i % count == index (count 0:
     * every item). items_dir: the folder where every finished item is kept as it is done
     * (items.bin, appended; the output folder), so that a rerun of the same request resumes from it;
     * NULL: none. A shard run writes items_dir/part.json instead of its result files. parts: the
     * items.bin of the shards being merged (n_parts > 0): every item is read from them, none run. */
    ids_shard shard;
    const char *items_dir;
    const char *const *parts;
    int n_parts;
    const char *const *command_line; /* recorded in part.json, for `idscope merge` (may be NULL) */
    int n_command_line;
} ids_exp;

/* The records of a run on an image set (ids_exp.set_dir), in every result that can use one. */
typedef struct ids_set_use {
    char manifest[1024]; /* the manifest read ("" when the run drew its own scenes) */
    int records;         /* records with a still image and two named objects */
    int used;            /* records run */
    int no_relation;     /* skipped: no question of the relation(s) the experiment asks */
    int no_box;          /* skipped: an object the experiment places (its cell) has no box */
    int same_word;       /* skipped: both objects are named by the same word */
    int not_sampled;     /* usable but left out of the sample of n_items */
} ids_set_use;

/* Seed 1, every other field 0 (the defaults above). */
ids_exp ids_exp_default(void);

#define IDS_PAPER_INSTRUCTION "Answer \"{first}\" or \"{second}\" only."
/* The instruction an experiment appends for this model (ids_exp.instruction resolved; "" = none):
 * a pointer to e->instruction or a constant. */
const char *ids_exp_instruction(const ids_exp *e, const ids_vlm *v);
/* The question of relation r about a, b (and c for between) followed by the instruction (a template;
 * NULL or "" for none) with the answer words filled in; malloc'd, NULL when out of memory. */
char *ids_question_instructed(ids_relation r, const char *a, const char *b, const char *c, const char *instruction);
/* Any question of relation r followed by the instruction, filled in likewise; malloc'd. */
char *ids_instruct(const char *question, ids_relation r, const char *instruction);

/* The tokens whose probabilities make up each answer of a relation at the answer position: for
 * each answer word (the first word of "in front") the first token of its case variants as a
 * continuation of the prompt (" left", "left", " Left", "Left": tokenized without a leading space
 * added), distinct, leaving out variants the vocabulary spells with byte fallbacks or unknown pieces and
 * those whose first token holds no letter of the word (a lone space). An answer's log-probability is the log-sum-exp over its set.
 * On a word-level vocabulary (the bundled model) that leaves the word's own token: the paper's word
 * rule. Two sets that share a token are refused (the comparison would be meaningless). */
#define IDS_ANSWER_MAX 4
typedef struct ids_answer_set {
    ids_relation relation;
    int n[2];                                /* tokens of the first / second answer */
    int32_t tok[2][IDS_ANSWER_MAX];
    char variant[2][IDS_ANSWER_MAX][24];     /* the text whose first token it is (" Left") */
    char piece[2][IDS_ANSWER_MAX][48];       /* the token's vocabulary text */
} ids_answer_set;
ids_status ids_answer_set_make(const ids_tokenizer *tok, ids_relation rel, ids_answer_set *out, ids_err *err);
/* The candidate tokens in run order (first answer's, then second's) into cand; returns their count. */
int ids_answer_set_cands(const ids_answer_set *s, int32_t *cand);
/* The two answers' log-probabilities from the candidates' (in ids_answer_set_cands order). */
void ids_answer_set_reduce(const ids_answer_set *s, const float *cand_lp, float out[2]);

/* How an experiment asked and scored: the instruction appended ("" = none) and the answer-token set
 * of every relation asked; every result that reads answers carries one and writes it. */
#define IDS_PROMPTING_MAX_SETS 3
typedef struct ids_prompting {
    char instruction[256];
    int n_sets;
    ids_answer_set sets[IDS_PROMPTING_MAX_SETS];
} ids_prompting;

/* ------------------------------------------------------------------------------------------ */
/* Experiments: spatial IDs                                                                      */

/* The ID arithmetic of the paper, on activations already captured:
 * h[pair][anchor cell][subject key][layer][E] with subject key = (y * G + x) * n_sizes + size
 * (anchor == subject cell entries are ignored). Mean-centres within (pair, anchor cell) over all
 * subject keys, averages over anchor cells per subject key (per-pair ID), averages over pairs
 * (universal ID), and computes the axes from the universal ID at size index axis_size:
 * y_axis = mean over x, y1 <= y2 of ID(x, y2) - ID(x, y1) (the paper's ranges, zero terms included),
 * x_axis likewise. Outputs: per_pair [P][K][L][E] (may be NULL), universal [K][L][E], x_axis and
 * y_axis [L][E]. All sums in double. */
ids_status ids_spatial_compute(const float *h, int n_pairs, int grid, int n_sizes, int n_layers, int n_embd,
                           int axis_size, float *per_pair, float *universal, float *x_axis, float *y_axis, ids_err *err);

/* Statistics of one layer's cell IDs: n_cells vectors of width E at grid coordinates (x, y).
 * r2: fraction of the IDs' variance a linear function c + x a + y b explains; plane: fraction of
 * the variance inside the plane of the two axes (orthonormalised, x first); pca: the 2-D principal
 * coordinates of each cell [n_cells][2] (may be NULL); pca_var: variance fraction of those two. */
typedef struct ids_id_stats {
    double r2, plane, pca_var;
} ids_id_stats;
ids_status ids_spatial_layer_stats(const float *ids, const int *xs, const int *ys, int n_cells, int n_embd,
                               const float *x_axis, const float *y_axis, ids_id_stats *out, float *pca, ids_err *err);
/* Permutation null of r2 (cell labels shuffled): the IDs' R^2 of the fit c + x a + y b, and of
 * n_perm (0: IDS_R2_NULL_PERMS) random permutations of the cells' coordinates (seeded): their mean,
 * 95th percentile and p = (1 + #{null >= r2}) / (1 + n_perm). Whatever the vectors, the mean over all
 * permutations is 2 / (n_cells - 1) (the fit's two dimensions of n_cells - 1). */
#define IDS_R2_NULL_PERMS 1000
typedef struct ids_r2_null {
    double r2, mean, q95, p;
    int n_perm;
} ids_r2_null;
ids_status ids_spatial_r2_null(const float *ids, const int *xs, const int *ys, int n_cells, int n_embd, int n_perm,
                               uint64_t seed, ids_r2_null *out, ids_err *err);
/* Read OUT_DIR/ids.safetensors and write OUT_DIR/stats.json and stats.csv: per layer r2, plane,
 * pca_var, the cells' PCA coordinates, and (when per-pair IDs were stored) the mean cosine of
 * per-pair IDs with the universal ID. Uses the largest size. */
ids_status ids_spatial_stats(const char *dir, ids_err *err);

/* ID-strength score per layer: S = r2 x max(0, pair_cosine) x max(0, swap_id - swap_noise), from
 * `ids stats` (stats.json, extracted with --per-pair) and `steer belief` (steer-belief.json); each
 * factor lies in [0, 1]. Writes out_path (JSON, atomically) with every factor per layer of the
 * steering band and the best layer. */
ids_status ids_score(const char *stats_json, const char *steer_json, const char *out_path, int *best_layer,
                     double *best_score, ids_err *err);

typedef struct ids_extract_opts {
    ids_exp exp;          /* objects (>= 2, distinct words; default 3), grid, image size, threads (every item of the set is used) */
    const float *sizes;   /* fractions of a cell (default 1, 0.78, 0.55, 0.33) */
    int n_sizes;
    bool per_pair;        /* also store every pair's IDs */
} ids_extract_opts;

/* Render the grid set, run every image with the question "Is the B to the left or right of the A?"
 * (B = subject at every cell, A = anchor at every other cell), capture the subject word's token
 * (last piece of " " + word, first occurrence after the image) at every layer 0..n_layer, and
 * write OUT_DIR/ids.safetensors (universal [L+1, G, G, S, E] indexed [layer][y][x][size], x_axis,
 * y_axis [L+1, E], per_pair when asked) and OUT_DIR/ids.json (metadata). */
ids_status ids_spatial_extract(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o,
                           const char *out_dir, ids_progress_fn progress, void *user, ids_err *err);
/* The IDs of an extraction in memory, in the file's layout: universal [n_layers][grid][grid][n_sizes]
 * [n_embd], x_axis and y_axis [n_layers][n_embd], per_pair [n_pairs][n_layers][grid][grid][n_sizes]
 * [n_embd] (NULL unless per_pair was asked). Owned; ids_extract_result_free. */
typedef struct ids_extract_result {
    int n_layers, grid, n_sizes, n_pairs, n_embd;
    float *universal, *x_axis, *y_axis, *per_pair;
} ids_extract_result;
/* ids_spatial_extract that also returns the IDs in *out (may be NULL); out_dir NULL: no files are
 * written. A shard run (o->exp.shard) keeps its items and leaves *out empty. */
ids_status ids_spatial_extract_run(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o, const char *out_dir,
                                   ids_extract_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_extract_result_free(ids_extract_result *r);

typedef enum ids_swap_set { IDS_SWAP_IMAGE = 0, IDS_SWAP_TEXT, IDS_SWAP_OBJECTS, IDS_SWAP_SET_COUNT } ids_swap_set;

typedef struct ids_swap_opts {
    ids_exp exp;          /* objects, grid, image size, images per pair drawn from the grid set, seed, threads */
    bool hue;             /* the attribute control as the paper does it: a hue shift of the whole image
                             (ids_image_hue_shift, seeded per image) instead of recolouring the named objects */
} ids_swap_opts;

/* Per layer and position set: mean recovered fraction of an edit's effect, for log P(left),
 * log P(right) and their difference D, when the clean run's residual rows of the set are replaced at
 * that layer by the edited image's. frac = (clean - patched) / (clean - edited); items whose edit
 * moves D by less than 1e-3 are skipped. */
typedef struct ids_swap_result {
    bool control;               /* the attribute edit (else the mirror) */
    bool hue;                   /* ... as the hue shift of the whole image (else the objects recoloured) */
    int n_layers, n_items, n_skipped;
    float *left, *right, *diff; /* [n_layers * IDS_SWAP_SET_COUNT], owned: per-image fractions averaged */
    float *diff_pooled;         /* the difference's recovery pooled over images: sum of sign(effect) x
                                   (clean - patched) / sum of |effect| (steady when effects are small) */
    float *item_diff;           /* per image used: its recovered fraction of D [n_items][n_layers * IDS_SWAP_SET_COUNT]
                                   (the intervals and the per-item CSV; NULL in results read back) */
    ids_prompting prompting;    /* the instruction and the answer tokens */
    ids_set_use set;            /* the image set's records, when one was used */
    ids_prov *prov;             /* how it was made (owned) */
} ids_swap_result;

/* Mirror patching (the edit is the horizontal mirror) or, with control, the attribute edit: the
 * named objects recoloured (the question keeps the old colour names, so it no longer matches the
 * picture), or with o->hue the paper's hue shift of the whole image (the objects' names change
 * nothing in the question). Uses the clean run's cache and batches all variants. */
ids_status ids_swap_run(const ids_vlm *v, const ids_catalog *cat, const ids_swap_opts *o, bool control,
                        ids_swap_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_swap_result_free(ids_swap_result *r);
const char *ids_swap_set_name(ids_swap_set s);

/* Arbitrary steering's vectors: ours, factor (U(target) - U(source)) with source the subject's true
 * cell; the paper's (batch_lr.py), factor (U(i, j) - U(G-1-i, j)) for every cell (i, j), the
 * horizontal mirror pair (vertical, U(i, j) - U(i, G-1-j), for above/below and between), which needs
 * no true cell. */
typedef enum ids_grid_variant { IDS_GRID_OURS = 0, IDS_GRID_PAPER } ids_grid_variant;

typedef struct ids_steer_opts {
    ids_exp exp;          /* objects, image size, images per pair, seed (also of the noise), threads; the grid is the IDs' */
    const char *ids_path; /* ids.safetensors from ids extract (same model) */
    ids_relation relation;/* IDS_REL_LEFT_RIGHT (default) or IDS_REL_ABOVE_BELOW */
    bool relation_only;   /* steer belief on an image set: only its records of `relation`; by default each
                             record's own left/right or above/below question (left/right when it has both) */
    float factor;         /* steering norm = factor x the token's norm at that layer (default 5) */
    int layer_lo, layer_hi; /* band, inclusive (default: steer belief, the paper's band of the model's family,
                               ids_steer_default_band; depth 1 .. n_layer - 1) */
    int greedy_tokens;    /* steer belief: greedy answer length for the word verdicts (0 = off) */
    ids_grid_variant variant; /* steer grid: ours (from the subject's true cell) or the paper's mirrored pair */
    bool raw;             /* depth: factor x the row-only difference as it is (the paper's), not rescaled to the
                             word's norm */
    bool holdout_objects; /* refuse objects the IDs were extracted from (ids.json's "objects" beside ids_path):
                             nothing steered was seen in extraction (drawn scenes) */
} ids_steer_opts;

/* The paper's belief-steering layer band for this model's family (its adversarial_steering.sh):
 * LLaVA-1.5 (a CLIP tower with the mlp projector) 8-20 of 32 layers (7B), 10-20 of 40 (13B);
 * Qwen2-VL and Qwen2.5-VL (dynamic-resolution towers) 6-16 of 28 (Qwen2-VL-2B, Qwen2.5-VL-7B), 8-18 of
 * 36 (Qwen2.5-VL-3B); other depths of a family scaled from its first band (LLaVA 0.25..0.625 of the
 * layers, Qwen 6/28..16/28), rounded, within 1..n_layer-1; Gemma 3 10-22 of 34 (4B) and of 48 (12B),
 * other depths 10/34..22/34; Llama-3.2-Vision (mllama) 10-20 of 40, other depths 10/40..20/40. A model
 * made by idscope's trainer: 1..n_layer-1 (every inner layer). */
void ids_steer_default_band(const ids_vlm *v, int *lo, int *hi);
/* The last layer the paper edits and reads in this model's family, the default top of depth's band:
 * Gemma 3 29 of 34 (4B), 39 of 48 (12B), other depths 29/34 of them (the paper's runs keep layers
 * 0-29 / 0-39 only); Llama-3.2-Vision 32 of 40 (the paper keeps layers 0-32 of the 11B), other depths
 * 32/40; every other family n_layer - 1. */
int ids_steer_layer_limit(const ids_vlm *v);

typedef struct ids_steer_result {
    ids_relation relation;       /* the relation asked (of several on an image set: the first) */
    unsigned relations;          /* every relation asked, a bit per ids_relation */
    float factor;
    int greedy_tokens;
    int layer_lo, n_band, n_items, n_skipped;
    float *rate_id, *rate_noise; /* [n_band] fraction of beliefs swapped, owned */
    float best3_id, best3_noise; /* mean over the 3 layers with the highest ID rate (the paper's) */
    /* the same verdicts from a short greedy answer (greedy_tokens > 0): swapped when the clean
     * answer names one answer word and the steered answer the other (whole words, see
     * ids_answer_verdict); NULL when not run */
    float *greedy_id, *greedy_noise;
    float greedy_best3_id, greedy_best3_noise; /* at the 3 layers with the highest greedy ID rate */
    /* per item, in run order (n_items): the record's id ("" for a drawn scene), the relation asked,
     * the clean D = log P(first) - log P(second), the truth (1: the first answer is right, 0: the
     * second, -1: unknown) and per layer whether the ID / noise push swapped the belief
     * ([n_items][n_band]); the intervals and accuracies of the result file come from these */
    char (*item_id)[64];
    unsigned char *item_rel;
    float *item_dc;
    signed char *item_truth;
    unsigned char *item_swap_id, *item_swap_noise;
    unsigned char *item_greedy_id, *item_greedy_noise; /* the greedy verdicts likewise (greedy_tokens > 0) */
    ids_prompting prompting;     /* the instruction and the answer tokens */
    ids_set_use set;            /* the image set's records, when one was used */
    ids_prov *prov;              /* how it was made (owned) */
} ids_steer_result;
/* Which answer word a generated text names first, as a whole word (case-insensitive, letters
 * and digits only): 0 = `first`, 1 = `second`, -1 = neither ("alright" names neither "right"). */
int ids_answer_verdict(const char *text, const char *first, const char *second);

/* Belief-swap steering: per layer in the band, add to the subject word the universal-ID difference
 * that pushes it against the model's own answer (and the opposite to the reference word), rescaled
 * to factor x the word's activation norm; control: Gaussian noise of the same norms (seeded). A
 * belief is swapped when the sign of log P(first answer) - log P(second) flips. */
ids_status ids_steer_belief(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                            ids_steer_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_steer_result_free(ids_steer_result *r);

/* Arbitrary steering at one layer (o->layer_lo; default n_layer / 2): the subject word gets
 * factor x (U(target) - U(source)), source = its true cell, for every target cell (o->variant
 * IDS_GRID_PAPER: the paper's mirrored pair of the target cell instead); delta[t] = mean over
 * images of the change of log P(first answer) - log P(second) ([grid * grid], raster order, owned).
 * The factor is not rescaled by the token's norm (as the paper's arbitrary steering). */
typedef struct ids_steer_grid_result {
    ids_relation relation;
    ids_grid_variant variant;
    float factor;
    int grid, layer, n_items;
    float *delta;
    /* the controls beside each push, of its norm: a random direction (seeded) and the same arithmetic on
     * the transposed IDs (the other axis) less its component along the push ([grid * grid] each); per
     * image the three maps [n_items][3][grid * grid] (intervals) */
    float *delta_random, *delta_orthogonal, *item_delta;
    ids_prompting prompting;
    ids_set_use set;            /* the image set's records, when one was used */
    ids_prov *prov;
} ids_steer_grid_result;
ids_status ids_steer_grid(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                          ids_steer_grid_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_steer_grid_result_free(ids_steer_grid_result *r);

/* Depth diagnosis: per layer in the band, the subject word is pushed down (+) or up (-) with the
 * row-only ID difference U(0, G-1) - U(0, 0), rescaled to factor x its norm (o->raw: factor x the
 * difference itself, the paper's); mean changes of
 * D_ab = log P(above) - log P(below) on grid scenes and of D_fb = log P(in [front]) - log P(behind)
 * on depth scenes. [n_band] each, owned. A model that reads depth from height moves D_fb with the
 * vertical ID. */
typedef struct ids_depth_result {
    float factor;
    bool raw;                   /* the vector not rescaled (the paper's) */
    int layer_lo, n_band, n_grid, n_depth;
    float *ab_down, *ab_up, *fb_down, *fb_up;
    /* the two controls, pushed like the vertical ID with the same norm: [control][q][n_band], control 0
     * a random direction (Gaussian, seeded), 1 the orthogonal axis (the column-only difference
     * U(G-1, 0) - U(0, 0) less its component along the vertical one); q as ab_down, ab_up, fb_down, fb_up */
    float *ctl[2][4];
    /* per item: [n_grid][3][n_band][2] changes of D_ab and [n_depth][3][n_band][2] of D_fb; push 0 the
     * vertical ID, 1 random, 2 orthogonal; 0 down, 1 up */
    float *item_ab, *item_fb;
    ids_prompting prompting;
    ids_set_use set;            /* the image set's records, when one was used */
    ids_prov *prov;
} ids_depth_result;
ids_status ids_depth_diag(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                          ids_depth_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_depth_result_free(ids_depth_result *r);

/* Ground-truth deviation (the paper's Fig. 8A), on an image set with boxes: per record (a left/right
 * or above/below question, the subject's box) the subject word's row with the image minus the same
 * prompt text only, at every layer, in the plane of the IDs' axes (least-squares coordinates on
 * x_axis, y_axis), against the universal ID interpolated bilinearly at the box's centre (grid
 * coordinates as the tower sees the image); both centred over the items, the deviation is their
 * distance. The model's answer (log-probabilities) makes the item right or wrong; the Mann-Whitney
 * U test compares the deviations of both groups at `layer` (0: the layer >= 1 whose IDs are most
 * linear in position). */
typedef struct ids_deviation_opts {
    ids_exp exp;            /* set_dir required; objects are the set's */
    const char *ids_path;   /* ids.safetensors of the same model */
    int layer;
} ids_deviation_opts;
typedef struct ids_deviation_result {
    int n_layers, layer, grid, n_items, n_right, n_wrong;
    char (*item_id)[64];    /* per item, in run order */
    unsigned char *correct;
    float *gx, *gy;         /* the box centre in grid coordinates */
    float *dev;             /* [n_items][n_layers] */
    float *pos, *id_pos;    /* [n_items][n_layers][2]: the image's shift and the ID, in the plane (not centred) */
    ids_mw_result mw;       /* at `layer`: right (sample 1) vs wrong */
    ids_prompting prompting;
    ids_set_use set;
    ids_prov *prov;
} ids_deviation_result;
ids_status ids_deviation(const ids_vlm *v, const ids_catalog *cat, const ids_deviation_opts *o, ids_deviation_result *out,
                         ids_progress_fn progress, void *user, ids_err *err);
void ids_deviation_result_free(ids_deviation_result *r);
/* DIR/deviation.json (means with intervals, "mann_whitney", per-layer means) and DIR/deviation.csv
 * (per item and layer). */
ids_status ids_deviation_write(const char *dir, const ids_deviation_result *r, ids_err *err);

/* Blur masking (the paper's Fig. 8B), on an image set with boxes: per record (a left/right or
 * above/below question, the subject's box) the clean image, the subject's box blurred, and n_random
 * boxes of the same size placed at random (seeded, inside the image) blurred; the true answer's
 * log-probability, D toward the truth (log P(true) - log P(other)) and the verdict of each. The blur
 * is a box filter of window 2 r + 1 with r = radius x image width / 336, applied to the box's pixels. */
#define IDS_MASK_RADIUS 20.0f
#define IDS_MASK_RANDOM 8
typedef struct ids_mask_opts {
    ids_exp exp;      /* set_dir required */
    float radius;     /* pixels at 336 px (default IDS_MASK_RADIUS) */
    int n_random;     /* random boxes per item (default IDS_MASK_RANDOM, at most 256) */
} ids_mask_opts;
typedef struct ids_mask_result {
    float radius;
    int n_random, n_items;
    char (*item_id)[64];
    float *lp;          /* [n_items][2 + n_random][2]: log P(true), D toward the truth; variant 0 clean, 1 the object */
    unsigned char *ok;  /* [n_items][2 + n_random]: answered right */
    ids_prompting prompting;
    ids_set_use set;
    ids_prov *prov;
} ids_mask_result;
ids_status ids_mask(const ids_vlm *v, const ids_catalog *cat, const ids_mask_opts *o, ids_mask_result *out,
                    ids_progress_fn progress, void *user, ids_err *err);
void ids_mask_result_free(ids_mask_result *r);
/* DIR/mask.json (accuracy and changes per condition with intervals) and DIR/mask.csv (per item and variant). */
ids_status ids_mask_write(const char *dir, const ids_mask_result *r, ids_err *err);
/* The pixels a box (x0, y0, x1, y1) covers: those whose centre lies inside, [px0, px1) x [py0, py1), clamped. */
void ids_mask_box_pixels(const float box[4], int w, int h, int px[4]);
/* A copy of `in` with the box's pixels (ids_mask_box_pixels) replaced by the box-filtered image (window
 * 2 round(radius) + 1, edges clamped); every other pixel unchanged. */
ids_status ids_image_blur_box(const ids_image *in, const float box[4], float radius, ids_image *out, ids_err *err);

/* Accuracy against steerability across models (the paper's Fig. 9): the summary.json of each demo
 * folder in dirs (accuracy without steering with its interval, belief swap rates, the ID-strength
 * score, R^2) in one table, and Spearman's correlation of the score with the accuracy with its
 * interval (Fisher's z; none below 4 models); writes out_dir/compare.json, compare.csv and
 * compare.html (the scatter plot and the table). *rho (may be NULL): the correlation. */
ids_status ids_compare(const char *const *dirs, int n, const char *out_dir, double *rho, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Experiments: temporal IDs                                                                     */

/* Videos of T frames (one image block per frame) in which object A appears at frame i and B at
 * frame j (i != j, 1..T-1); question "Does the A appear before or after the B?". */
typedef struct ids_temporal_opts {
    ids_exp exp;            /* objects (extract: default 3), grid, image size, videos per pair (swap, steer), seed, threads */
    int frames;             /* T (default 8; steer: taken from the IDs file) */
    float factor;           /* steer: factor on T[f] - T[source] (raw, default 5) */
    int layer_lo, layer_hi; /* steer band, inclusive (default 1 .. n_layer - 1) */
    int source;             /* steer: 0 = the paper's pairing T[f] - T[T - f]; s > 0: T[f] - T[s] */
    const char *ids_path;   /* steer: temporal.safetensors from ids_temporal_extract (same model) */
    bool holdout_objects;   /* steer: refuse objects of the extraction (temporal.json's "objects" beside ids_path) */
    const char *mvbench;    /* swap: MVBench scene-transition JSON instead of synthetic videos (n_items = at most that many) */
    const char *video_dir;  /* ... and the folder its video paths are relative to */
} ids_temporal_opts;

/* A temporal question about a real video: "Does the scene FIRST occur before or after the scene
 * SECOND?"; the words read and patched are the last word of each phrase. */
typedef struct ids_tvq {
    char video[1024];
    char question[512];
    char first[128], second[128];
    char word_first[64], word_second[64];
    bool truth_before;
} ids_tvq;
/* MVBench scene-transition questions: the original task file (a list of {"video", "question",
 * "candidates", "answer": "From the X to the Y."}: X then Y, asked in both orders, alternately) or
 * the paper's derived manifest ({"video_path", "scene1", "scene2", "query", "correct_order",
 * "query_order"}; before when query_order == correct_order). Video paths are joined to video_dir
 * when relative. Records that cannot be used (missing fields, no "From ... to ..." answer, both
 * phrases ending in the same word) are skipped and counted. *out: malloc'd array. */
ids_status ids_mvbench_load(const char *json_path, const char *video_dir, ids_tvq **out, int *n, int *n_skipped,
                            ids_err *err);

/* Temporal IDs: every ordered object pair, every (i, j); the object words' residual rows at every
 * layer, averaged per appearance frame within a pair, then over pairs, then mean-centred over the
 * frames. Writes out_dir/temporal.safetensors ("temporal" [L][T-1][E], "time_axis" [L][E]: the
 * least-squares slope in the frame index), temporal.json (metadata; per layer the 1-D PCA
 * coordinate of each frame, PC1's variance fraction and the Spearman correlation of the
 * coordinate with the frame index; best_layer = the layer >= 1 whose PC1 explains most) and
 * temporal.csv. */
ids_status ids_temporal_extract(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, const char *out_dir,
                                ids_progress_fn progress, void *user, ids_err *err);
/* The temporal IDs in memory: temporal [n_layers][frames][n_embd] (frames = T - 1 appearance frames),
 * time_axis [n_layers][n_embd]. Owned; ids_temporal_ids_free. */
typedef struct ids_temporal_ids {
    int n_layers, frames, n_embd;
    float *temporal, *time_axis;
} ids_temporal_ids;
/* ids_temporal_extract that also returns the IDs in *out (may be NULL); out_dir NULL: no files. */
ids_status ids_temporal_extract_run(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, const char *out_dir,
                                    ids_temporal_ids *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_temporal_ids_free(ids_temporal_ids *r);
/* 1-D PCA of F temporal IDs (frames in order, width E): coord[F] (may be NULL) oriented so that the
 * last frame lies right of the first; PC1's share of the variance; Spearman(coord, frame index). */
ids_status ids_temporal_layer_stats(const float *tids, int F, int E, float *coord, double *pc1_var, double *spearman,
                                    ids_err *err);
/* ids_spearman (Spearman's rank correlation) is in base.h. */
/* The time-reversed video: out[k] = in[n - 1 - k] (shallow copies: the images stay in's). */
void ids_video_reverse(const ids_image *in, int n, ids_image *out);

/* Time-reversal patching: like ids_swap_run with the frame order reversed as the edit; per layer
 * and position set (IDS_SWAP_IMAGE / TEXT / OBJECTS) the recovered fraction of the reversal's
 * effect on log P(before) (first), log P(after) (second) and their difference. */
typedef struct ids_temporal_swap_result {
    int frames;
    int n_layers, n_items, n_skipped;
    float *first, *second, *diff; /* [n_layers * IDS_SWAP_SET_COUNT], owned */
    float *diff_pooled;           /* as in ids_swap_result */
    float *item_diff;             /* as in ids_swap_result */
    ids_prompting prompting;
    ids_prov *prov;
} ids_temporal_swap_result;
ids_status ids_temporal_swap(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                             ids_temporal_swap_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_temporal_result_free(ids_temporal_swap_result *r);

/* Temporal steering: at each layer of the band add factor (T[f] - T[source(f)]) to the subject word
 * for every target frame f = 1..T-1; mean change of log P(before) and log P(after) over the videos.
 * With the paper's pairing the frame f = T/2 adds nothing: a built-in null. A layer counts as
 * monotonic when the Spearman correlation of the change of log P(after) with f is at least
 * IDS_TEMPORAL_MONOTONIC_RHO. */
#define IDS_TEMPORAL_MONOTONIC_RHO 0.9
typedef struct ids_temporal_steer_result {
    float factor;
    int source;                /* 0: the paper's pairing T[f] - T[T - f] */
    int layer_lo, n_band, frames, n_items;
    int null_frame;            /* the target frame whose added vector is zero, -1 if none */
    float *d_before, *d_after; /* [n_band][frames] (frame f at index f - 1), owned */
    float *rho_after;          /* [n_band] Spearman(f, change of log P(after)) */
    float monotonic;           /* fraction of the band's layers with rho_after >= IDS_TEMPORAL_MONOTONIC_RHO */
    /* per video: [n_items][3][n_band][frames] changes of log P(after) (intervals, per-item CSV): the push,
     * then its two controls */
    float *item_after;
    /* the controls, each of the push's norm at every (layer, frame): [0] a random direction per (layer,
     * frame), [1] a fixed direction per layer orthogonal to the time axis, signed as the push (frames
     * after the null frame one way, before it the other); their mean changes of log P(after)
     * [n_band][frames] and fraction of monotonic layers */
    float *ctl_after[2];
    float ctl_monotonic[2];
    ids_prompting prompting;
    ids_prov *prov;
} ids_temporal_steer_result;
ids_status ids_temporal_steer(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                              ids_temporal_steer_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_temporal_steer_result_free(ids_temporal_steer_result *r);

/* ------------------------------------------------------------------------------------------ */
/* The report                                                                                   */

/* Self-contained HTML report (inline SVG, no network) of the results found in dir: ids/stats.json
 * (and ids/ids.json), swap/swap.json and swap/swap-control.json, steer/steer-belief.json,
 * steer/steer-grid-*.json, depth/depth.json, score.json, temporal/temporal.json,
 * temporal/temporal-swap.json and temporal/temporal-steer.json, with thumbnails of stimuli/ and a
 * header naming the model, the idscope build and the dates. Sections without results say so. Writes
 * dir/report.html atomically and each figure as dir/figures/SECTION-K.svg; *n_sections receives how
 * many sections had data. A folder that does not exist, or holds none of these files, is an error
 * (IDS_ERR_IO, IDS_ERR_NOT_FOUND naming what was looked for) and nothing is written. */
ids_status ids_report(const char *dir, int *n_sections, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Result files: names, layout, writing and reading back (src/exp/results.c)                    */

/* Every JSON result has a "format" tag, numbers (non-finite ones as null) and a "provenance" object
 * (ids_prov_new); most have a CSV companion with the same rows. A command's --out DIR holds the
 * files themselves; a results folder (the demo's, the report's) holds each kind in its folder. */
typedef enum ids_result_kind {
    IDS_RESULT_STIMULI = 0,    /* stimuli/manifest.json */
    IDS_RESULT_IDS,            /* ids/ids.json (and ids.safetensors) */
    IDS_RESULT_STATS,          /* ids/stats.json, stats.csv */
    IDS_RESULT_SWAP,           /* swap/swap.json, swap.csv */
    IDS_RESULT_SWAP_CONTROL,   /* swap/swap-control.json, .csv */
    IDS_RESULT_SWAP_HUE,       /* swap/swap-hue.json, .csv (the hue-shift control) */
    IDS_RESULT_STEER_BELIEF,   /* steer/steer-belief.json, .csv */
    IDS_RESULT_STEER_GRID,     /* steer/steer-grid-RELATION.json, .csv (one per relation) */
    IDS_RESULT_STEER_GRID_PAPER, /* steer/steer-grid-RELATION-paper.json, .csv (--variant paper) */
    IDS_RESULT_DEPTH,          /* depth/depth.json, .csv */
    IDS_RESULT_TEMPORAL,       /* temporal/temporal.json, .csv (and temporal.safetensors) */
    IDS_RESULT_TEMPORAL_SWAP,  /* temporal/temporal-swap.json, .csv */
    IDS_RESULT_TEMPORAL_STEER, /* temporal/temporal-steer.json, .csv */
    IDS_RESULT_SCORE,          /* score.json */
    IDS_RESULT_SUMMARY,        /* summary.json (idscope demo) */
    IDS_RESULT_COUNT
} ids_result_kind;
/* The JSON file name of a result ("swap.json"; steer grid: "steer-grid-left_right.json" for rel;
 * buf holds that one), and its folder in a results folder ("swap"; "" at the top). */
const char *ids_result_name(ids_result_kind k, ids_relation rel, char *buf, size_t n);
const char *ids_result_folder(ids_result_kind k);
/* "DIR/[FOLDER/]NAME" (malloc'd): in_results_folder adds the kind's folder. */
char *ids_result_path(const char *dir, ids_result_kind k, ids_relation rel, bool in_results_folder);
/* Was the result at path made by the same request (ids_prov_matches)? why: the first difference,
 * or "no result yet". */
bool ids_result_matches(const char *path, const ids_prov *want, char *why, size_t why_len);
/* The seconds recorded in a result's provenance (NAN when absent). */
double ids_result_seconds(const char *path);

/* The results of the experiments that do not write files themselves, written into dir (created):
 * JSON and CSV per ids_result_kind, with the result's provenance. */
ids_status ids_swap_write(const char *dir, const ids_swap_result *r, ids_err *err);
ids_status ids_steer_write(const char *dir, const ids_steer_result *r, ids_err *err);
ids_status ids_steer_grid_write(const char *dir, const ids_steer_grid_result *g, ids_err *err);
ids_status ids_depth_write(const char *dir, const ids_depth_result *d, ids_err *err);
ids_status ids_temporal_swap_write(const char *dir, const ids_temporal_swap_result *r, ids_err *err);
ids_status ids_temporal_steer_write(const char *dir, const ids_temporal_steer_result *r, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* The demo: every experiment on one model (src/exp/demo.c)                                     */

typedef struct ids_demo_opts {
    const char *out_dir;          /* the results folder (created) */
    const char *model, *mmproj;   /* the text and mmproj GGUF files */
    int n_items;                  /* images (videos) per object pair in swap, steer, depth, temporal swap/steer (default 8) */
    int n_threads;                /* 0: online CPUs */
    ids_precision precision;      /* the decoder's matmuls in every step (default f32) */
    const char *instruction;      /* as ids_exp.instruction / no_instruction, in every step */
    bool no_instruction;
    bool fresh;                   /* rerun every step, whatever is stored */
    ids_progress_fn progress;     /* the experiments' progress (may be NULL) */
    void (*say)(const char *msg, void *user); /* one line per step: run, skipped (and why), failed (may be NULL) */
    void *user;
} ids_demo_opts;

/* A model made by idscope's trainer (GGUF key idscope.training; the bundled model is one) is a
 * positive control: its recipe puts the location on the object words with an auxiliary loss
 * (docs/TRAINING.md), so what the experiments find in it shows the tool at work, not the paper's
 * claim about pretrained VLMs. Everything that shows its numbers says so, in these words. */
#define IDS_POSITIVE_CONTROL_NOTE                                                                          \
    "This model is a positive control, in which the location is put on the object words by an auxiliary " \
    "loss during training: its numbers show that the tool works, not that the paper is right."
bool ids_positive_control(const char *text_gguf);

/* The headline numbers (NAN / -1 when the result lacks them), from the step results. */
typedef struct ids_demo_summary {
    double ids_r2_best;
    int ids_r2_best_layer;
    double belief_swap_rate_id, belief_swap_rate_noise;       /* best 3 layers, factor 5 */
    int belief_swap_items;                                    /* ... over this many images */
    double belief_swap_rate_id_greedy, belief_swap_rate_noise_greedy;
    double sweep_factor[3], sweep_id[3], sweep_noise[3];       /* factors 1, 2, 5 */
    double mirror_objword_recovery_peak;
    int mirror_objword_recovery_peak_layer;
    double temporal_pca_order;
    int temporal_pca_best_layer;
    double temporal_steer_monotonic;
    double temporal_objword_recovery_peak;
    int temporal_objword_recovery_peak_layer;
    int score_best_layer;
    double score_best;
    /* 95% intervals ([low, high], NAN when the result has none) of the numbers above, and the
     * numbers of the controls and of Figs. 8A/8B (summary.json: each X beside X_ci) */
    double ids_r2_best_ci[2], ids_r2_null_mean, ids_r2_null_q95;
    double belief_swap_rate_id_ci[2], belief_swap_rate_noise_ci[2];
    double belief_swap_rate_id_greedy_ci[2], belief_swap_rate_noise_greedy_ci[2];
    double score_best_ci[2];      /* the causal factor's interval, linearity and consistency held */
    double belief_accuracy[3], belief_accuracy_ci[3][2]; /* baseline, under the ID push, under noise (best 3 layers) */
    double sweep_id_ci[3][2], sweep_noise_ci[3][2];
    double mirror_objword_recovery_peak_ci[2], temporal_objword_recovery_peak_ci[2];
    double temporal_pca_order_ci[2];
    double temporal_steer_monotonic_ci[2];
    double tsweep_factor[4], tsweep_monotonic[4], tsweep_monotonic_ci[4][2]; /* the temporal steering sweep */
    double temporal_steer_monotonic_factor; /* the smallest factor of the sweep with the most monotonic layers (NAN: none) */
    double depth_effect[3][2], depth_effect_ci[3][2][2]; /* [vertical, random_id, orthogonal][above_below, front_behind] */
    int deviation_layer, deviation_right_n, deviation_wrong_n;
    double deviation_right, deviation_right_ci[2], deviation_wrong, deviation_wrong_ci[2], deviation_mw_u, deviation_mw_p;
    double mask_accuracy[3], mask_accuracy_ci[3][2];     /* clean, object blurred, random boxes blurred */
    double mask_d_change[2], mask_d_change_ci[2][2];     /* object, random: change of D toward the truth */
    double seconds;               /* every step's recorded time, also of the steps skipped now */
    int steps_run, steps_skipped;
    bool positive_control;        /* the model was made by idscope's trainer (ids_positive_control) */
} ids_demo_summary;

/* Run the chain into o->out_dir: stimuli examples, ids extract (per pair) and stats, swap (mirror and
 * attribute), steer belief (factors 5, 1, 2), steer grid (left/right, above/below, near/far,
 * between), depth, temporal extract / swap / steer, score, report; then summary.json (the numbers
 * below, with provenance). A step whose result exists with a matching provenance is skipped; any
 * other reruns (o->say tells which key differed). An interrupted run resumes. */
ids_status ids_demo_run(const ids_demo_opts *o, ids_demo_summary *out, ids_err *err);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_EXP_H */
