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
/* Experiments: spatial IDs                                                                      */

/* The ID arithmetic of the paper, on activations already captured:
 * h[pair][anchor cell][subject key][layer][E] with subject key = (y * G + x) * n_sizes + size
 * (anchor == subject cell entries are ignored). Mean-centres within (pair, anchor cell) over all
 * subject keys, averages over anchor cells per subject key (per-pair ID), averages over pairs
 * (universal ID), and computes the axes from the universal ID at size index axis_size:
 * y_axis = mean over x, y1 <= y2 of ID(x, y2) - ID(x, y1) (the paper's ranges, zero terms included),
 * x_axis likewise. Outputs: per_pair [P][K][L][E] (may be NULL), universal [K][L][E], x_axis and
 * y_axis [L][E]. All sums in double. */
void ids_ids_compute(const float *h, int n_pairs, int grid, int n_sizes, int n_layers, int n_embd,
                     int axis_size, float *per_pair, float *universal, float *x_axis, float *y_axis);

/* Statistics of one layer's cell IDs: n_cells vectors of width E at grid coordinates (x, y).
 * r2: fraction of the IDs' variance a linear function c + x a + y b explains; plane: fraction of
 * the variance inside the plane of the two axes (orthonormalised, x first); pca: the 2-D principal
 * coordinates of each cell [n_cells][2] (may be NULL); pca_var: variance fraction of those two. */
typedef struct ids_id_stats {
    double r2, plane, pca_var;
} ids_id_stats;
void ids_ids_layer_stats(const float *ids, const int *xs, const int *ys, int n_cells, int n_embd,
                         const float *x_axis, const float *y_axis, ids_id_stats *out, float *pca);
/* Read OUT_DIR/ids.safetensors and write OUT_DIR/stats.json and stats.csv: per layer r2, plane,
 * pca_var, the cells' PCA coordinates, and (when per-pair IDs were stored) the mean cosine of
 * per-pair IDs with the universal ID. Uses the largest size. */
ids_status ids_ids_stats(const char *dir, ids_err *err);

/* ID-strength score per layer: S = r2 x max(0, pair_cosine) x max(0, swap_id - swap_noise), from
 * `ids stats` (stats.json, extracted with --per-pair) and `steer belief` (steer-belief.json); each
 * factor lies in [0, 1]. Writes out_path (JSON, atomically) with every factor per layer of the
 * steering band and the best layer. */
ids_status ids_score(const char *stats_json, const char *steer_json, const char *out_path, int *best_layer,
                     double *best_score, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Experiments: temporal IDs                                                                     */

/* Videos of T frames (one image block per frame) in which object A appears at frame i and B at
 * frame j (i != j, 1..T-1); question "Does the A appear before or after the B?". */
typedef struct ids_temporal_opts {
    const int *objects;     /* extract: at least 2 (every ordered pair); swap / steer: default red circle, blue square */
    int n_objects;
    int frames;             /* T (default 8; steer: taken from the IDs file) */
    int image_size, grid;   /* default: the model's input size (224 when dynamic), 4 */
    int n_items;            /* swap / steer: videos per ordered pair (default 8) */
    float factor;           /* steer: factor on T[f] - T[source] (raw, default 5) */
    int layer_lo, layer_hi; /* steer band, inclusive (default 1 .. n_layer - 1) */
    int source;             /* steer: 0 = the paper's pairing T[f] - T[T - f]; s > 0: T[f] - T[s] */
    const char *ids_path;   /* steer: temporal.safetensors from ids_temporal_extract (same model) */
    const char *mvbench;    /* swap: MVBench scene-transition JSON instead of synthetic videos (n_items = at most that many) */
    const char *video_dir;  /* ... and the folder its video paths are relative to */
    uint64_t seed;
    int n_threads;
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
/* 1-D PCA of F temporal IDs (frames in order, width E): coord[F] (may be NULL) oriented so that the
 * last frame lies right of the first; PC1's share of the variance; Spearman(coord, frame index). */
void ids_temporal_layer_stats(const float *tids, int F, int E, float *coord, double *pc1_var, double *spearman);
/* Spearman rank correlation (average ranks for ties); NAN when either side is constant. */
double ids_spearman(const double *a, const double *b, int n);
/* The time-reversed video: out[k] = in[n - 1 - k] (shallow copies: the images stay in's). */
void ids_video_reverse(const ids_image *in, int n, ids_image *out);

/* Time-reversal patching: like ids_swap_run with the frame order reversed as the edit; per layer
 * and position set (IDS_SWAP_IMAGE / TEXT / OBJECTS) the recovered fraction of the reversal's
 * effect on log P(before) (first), log P(after) (second) and their difference. */
typedef struct ids_temporal_swap_result {
    int n_layers, n_items, n_skipped;
    float *first, *second, *diff; /* [n_layers * IDS_SWAP_SET_COUNT], owned */
    float *diff_pooled;           /* as in ids_swap_result */
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
    int layer_lo, n_band, frames, n_items;
    int null_frame;            /* the target frame whose added vector is zero, -1 if none */
    float *d_before, *d_after; /* [n_band][frames] (frame f at index f - 1), owned */
    float *rho_after;          /* [n_band] Spearman(f, change of log P(after)) */
    float monotonic;           /* fraction of the band's layers with rho_after >= IDS_TEMPORAL_MONOTONIC_RHO */
} ids_temporal_steer_result;
ids_status ids_temporal_steer(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                              ids_temporal_steer_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_temporal_steer_result_free(ids_temporal_steer_result *r);

/* Self-contained HTML report (inline SVG, no network) of the results found in dir: ids/stats.json
 * (and ids/ids.json), swap/swap.json and swap/swap-control.json, steer/steer-belief.json,
 * steer/steer-grid-*.json, depth/depth.json, score.json, temporal/temporal.json,
 * temporal/temporal-swap.json and temporal/temporal-steer.json. Sections without results say so. Writes
 * dir/report.html atomically; *n_sections receives how many sections had data. */
ids_status ids_report(const char *dir, int *n_sections, ids_err *err);

typedef struct ids_extract_opts {
    const int *objects;   /* catalog indices (>= 2, distinct words); every ordered pair is used */
    int n_objects;
    int grid;             /* default 4 */
    const float *sizes;   /* fractions of a cell (default 1, 0.78, 0.55, 0.33) */
    int n_sizes;
    int image_size;       /* default: the tower's input size, or 224 for dynamic towers */
    bool per_pair;        /* also store every pair's IDs */
    int n_threads;
} ids_extract_opts;

/* Render the grid set, run every image with the question "Is the B to the left or right of the A?"
 * (B = subject at every cell, A = anchor at every other cell), capture the subject word's token
 * (last piece of " " + word, first occurrence after the image) at every layer 0..n_layer, and
 * write OUT_DIR/ids.safetensors (universal [L+1, G, G, S, E] indexed [layer][y][x][size], x_axis,
 * y_axis [L+1, E], per_pair when asked) and OUT_DIR/ids.json (metadata). */
ids_status ids_ids_extract(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o,
                           const char *out_dir, ids_progress_fn progress, void *user, ids_err *err);

typedef enum ids_swap_set { IDS_SWAP_IMAGE = 0, IDS_SWAP_TEXT, IDS_SWAP_OBJECTS, IDS_SWAP_SET_COUNT } ids_swap_set;

typedef struct ids_swap_opts {
    const int *objects;   /* catalog indices; every ordered pair (default red circle, blue square) */
    int n_objects;
    int grid, n_images;   /* grid cells per side (4); images per pair drawn from the grid set (8) */
    int image_size;       /* default: the tower's input size, or 224 */
    uint64_t seed;
    int n_threads;
} ids_swap_opts;

/* Per layer and position set: mean recovered fraction of an edit's effect, for log P(left),
 * log P(right) and their difference D, when the clean run's residual rows of the set are replaced at
 * that layer by the edited image's. frac = (clean - patched) / (clean - edited); items whose edit
 * moves D by less than 1e-3 are skipped. */
typedef struct ids_swap_result {
    int n_layers, n_items, n_skipped;
    float *left, *right, *diff; /* [n_layers * IDS_SWAP_SET_COUNT], owned: per-image fractions averaged */
    float *diff_pooled;         /* the difference's recovery pooled over images: sum of sign(effect) x
                                   (clean - patched) / sum of |effect| (steady when effects are small) */
} ids_swap_result;

/* Mirror patching (the edit is the horizontal mirror) or, with control, the attribute edit (the
 * recoloured image, question unchanged). Uses the clean run's cache and batches all variants. */
ids_status ids_swap_run(const ids_vlm *v, const ids_catalog *cat, const ids_swap_opts *o, bool control,
                        ids_swap_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_swap_result_free(ids_swap_result *r);
const char *ids_swap_set_name(ids_swap_set s);

typedef struct ids_steer_opts {
    const char *ids_path; /* ids.safetensors from ids extract (same model) */
    const int *objects;   /* default red circle, blue square; every ordered pair */
    int n_objects;
    int grid, n_images;   /* grid of the IDs (from the file) and images per pair (default 8) */
    int image_size;
    ids_relation relation;/* IDS_REL_LEFT_RIGHT (default) or IDS_REL_ABOVE_BELOW */
    float factor;         /* steering norm = factor x the token's norm at that layer (default 5) */
    int layer_lo, layer_hi; /* band, inclusive (default 1 .. n_layer - 1) */
    int greedy_tokens;    /* steer belief: greedy answer length for the word verdicts (0 = off) */
    uint64_t seed;
    int n_threads;
} ids_steer_opts;

typedef struct ids_steer_result {
    int layer_lo, n_band, n_items, n_skipped;
    float *rate_id, *rate_noise; /* [n_band] fraction of beliefs swapped, owned */
    float best3_id, best3_noise; /* mean over the 3 layers with the highest ID rate (the paper's) */
    /* the same verdicts from a short greedy answer (greedy_tokens > 0): swapped when the clean
     * answer names one answer word and the steered answer the other (whole words, see
     * ids_answer_verdict); NULL when not run */
    float *greedy_id, *greedy_noise;
    float greedy_best3_id, greedy_best3_noise; /* at the 3 layers with the highest greedy ID rate */
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
 * factor x (U(target) - U(source)), source = its true cell, for every target cell; delta[t] = mean over
 * images of the change of log P(first answer) - log P(second) ([grid * grid], raster order, owned).
 * The factor is not rescaled by the token's norm (as the paper's arbitrary steering). */
typedef struct ids_steer_grid_result {
    int grid, layer, n_items;
    float *delta;
} ids_steer_grid_result;
ids_status ids_steer_grid(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                          ids_steer_grid_result *out, ids_progress_fn progress, void *user, ids_err *err);

/* Depth diagnosis: per layer in the band, the subject word is pushed down (+) or up (-) with the
 * row-only ID difference U(0, G-1) - U(0, 0), rescaled to factor x its norm; mean changes of
 * D_ab = log P(above) - log P(below) on grid scenes and of D_fb = log P(in [front]) - log P(behind)
 * on depth scenes. [n_band] each, owned. A model that reads depth from height moves D_fb with the
 * vertical ID. */
typedef struct ids_depth_result {
    int layer_lo, n_band, n_grid, n_depth;
    float *ab_down, *ab_up, *fb_down, *fb_up;
} ids_depth_result;
ids_status ids_depth_diag(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                          ids_depth_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_depth_result_free(ids_depth_result *r);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_EXP_H */
