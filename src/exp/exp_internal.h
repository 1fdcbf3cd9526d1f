/* Private helpers the experiments share (exp): drawing stimuli, the item loop, question sequences,
 * answer tokens, activation patching. */
#ifndef IDS_EXP_INTERNAL_H
#define IDS_EXP_INTERNAL_H

#include "idscope/exp.h"
#include "base/internal.h"
#include "base/rng.h"

#include <cjson/cJSON.h>

/* ---- result files (results.c): every result is written and read back through these ---- */
/* A result document of kind k: {"format": ...}; NULL when out of memory. */
cJSON *ids__result_doc(ids_result_kind k);
/* Write doc (plus a copy of prov as "provenance") as DIR/<k's JSON name> and csv (may be NULL) as
 * DIR/<k's CSV name>, atomically, creating DIR; oom: an allocation failed while assembling them. */
ids_status ids__result_write(const char *dir, ids_result_kind k, ids_relation rel, cJSON *doc, const ids_prov *prov,
                             const char *csv, size_t csv_len, bool oom, ids_err *err);
/* Parse a result file (a JSON object) / the result of kind k in dir; NULL when absent or invalid. */
cJSON *ids__result_read(const char *path, ids_err *err);
cJSON *ids__result_load(const char *dir, ids_result_kind k, ids_relation rel, bool in_results_folder);
/* A number rounded to `decimals` (null when not finite); added to an object (oom set on failure). */
cJSON *ids__jnum(double v, int decimals);
void ids__jadd(cJSON *o, const char *key, double v, int decimals, bool *oom);
/* A number member, NAN when absent or not a number. */
double ids__jget(const cJSON *o, const char *key);
/* An integer member of a result read back: def when absent, not a number, fractional or outside
 * lo..hi (never converted unchecked: ids__json_int). */
int ids__jint(const cJSON *o, const char *key, int lo, int hi, int def);
#define IDS_JSON_LAYER_MAX 100000 /* layer numbers in result files */
/* A float32 tensor of a safetensors file the experiments read back (ids.safetensors,
 * temporal.safetensors): dtype F32, `ndim` dimensions of at least 1 each, its bytes exactly its
 * shape's, its data 4-byte aligned (a header whose length is not a multiple of 4 misaligns it).
 * IDS_ERR_FORMAT (naming path and tensor) otherwise; when absent, *out = NULL and IDS_OK if optional. */
ids_status ids__st_f32(const ids_st_file *f, const char *path, const char *name, int ndim, bool optional,
                       const ids_st_tensor **out, ids_err *err);
/* Write a text file DIR/NAME atomically (DIR created); mkdir -p. */
ids_status ids__write_text(const char *dir, const char *name, const char *text, size_t len, ids_err *err);
ids_status ids__mkdir_p(const char *dir, ids_err *err);
/* A growing text buffer (CSV); oom remembers a failed allocation. */
typedef struct ids__tb {
    char *p;
    size_t n, cap;
    bool oom;
} ids__tb;
void ids__tb_printf(ids__tb *b, const char *fmt, ...) IDS_PRINTF(2, 3);
void ids__tb_num(ids__tb *b, const char *sep, double v, int decimals); /* fixed decimals; empty when not finite */
/* The same under a name of the caller's (DIR/NAME). */
ids_status ids__result_write_as(const char *dir, const char *name, cJSON *doc, const ids_prov *prov, bool oom, ids_err *err);
/* A result with a tensor file: the JSON (with provenance) also as the safetensors metadata
 * "idscope"; writes DIR/st_name, the CSV (may be NULL), then the JSON. */
ids_status ids__result_write_st(const char *dir, ids_result_kind k, cJSON *doc, const ids_prov *prov, ids_st_writer *w,
                                const char *st_name, const char *csv, size_t csv_len, bool oom, ids_err *err);
/* summary.json of a demo folder: the model files (normalised paths), the numbers of the step results
 * into *s, the total time of every step ("seconds", s->seconds) and the step counts, with prov (its
 * own "seconds": this run). */
ids_status ids__summary_write(const char *dir, ids_prov *prov, const char *model, const char *mmproj, ids_demo_summary *s,
                              ids_err *err);
/* summary_ci.c: the intervals and the numbers of the controls and of Figs. 8A/8B, read from the step
 * results of a demo folder into s, and written into the summary document. */
void ids__summary_ci_read(const char *dir, ids_demo_summary *s);
void ids__summary_ci_json(cJSON *doc, const ids_demo_summary *s, bool *oom);
/* report.html carries its provenance in a comment "<!-- idscope-provenance {...} -->" after the
 * doctype: every result file it read, by fingerprint. */
#define IDS_REPORT_PROV_MARK "idscope-provenance"
ids_status ids__report_prov(const char *dir, ids_prov **out, ids_err *err);
/* temporal extract's files: temporal.safetensors (temporal [L][F][E], time_axis [L][E], the JSON as
 * metadata), temporal.json and temporal.csv. */
ids_status ids__temporal_write(const char *dir, const ids_prov *prov, const char *const *objects, int n_obj, long videos,
                               int L, int F, int E, const float *tid, const float *axis, ids_err *err);

/* Draw items of set `kind` (of `count` items) with the LCG state *rng until one has an answer for
 * relation `rel` (rel < 0: the first item drawn). *out is the caller's on IDS_OK. */
ids_status ids__draw_stim(ids_set_kind kind, const ids_stim_opts *so, const ids_catalog *cat, int count, int rel,
                          uint64_t *rng, ids_stim *out, ids_err *err);
/* The item loop every experiment shares: for every ordered pair (a, b), a != b, of objs[0..n_obj),
 * n_items stimuli of set `kind` with subject objs[a] and reference objs[b], drawn with
 * ids__draw_stim from the LCG seeded seed * 0x9E3779B97F4A7C15 + a * 131 + b + salt; fn gets each
 * (the loop frees it). so->objects is set per pair. *done counts items over calls (progress(what,
 * *done, total)). Stops at the first error. */
typedef ids_status (*ids__item_fn)(void *user, ids_stim *s, ids_err *err);
ids_status ids__each_item(ids_set_kind kind, ids_stim_opts *so, const ids_catalog *cat, const int *objs, int n_obj,
                          int n_items, int rel, uint64_t seed, uint64_t salt, ids__item_fn fn, void *user,
                          const char *what, ids_progress_fn progress, void *puser, long *done, long total, ids_err *err);
/* An experiment's shared options after defaults (ids_exp, resolved for one model), with the model,
 * the catalog and the progress callback: what the item loop, the contexts and the provenance use. */
typedef struct ids__store ids__store;
typedef struct ids__exp {
    const ids_vlm *v;
    const ids_catalog *cat;
    int objs[IDS_EXP_MAX_OBJECTS], n_obj;
    int grid, image_size, n_items, n_threads;
    ids_precision precision;
    uint64_t seed;
    const char *instruction; /* appended to every question ("" = none): ids_exp_instruction */
    char set_manifest[1024]; /* the image set's manifest ("" = scenes drawn by the stimulus engine) */
    ids_progress_fn progress;
    void *puser;
    long done, total; /* items done over every loop of the run, and their total (progress) */
    /* shards and kept items (store.c): what ids_exp asks, the run's provenance (set by ids__exp_prov,
     * not owned), the open store, the number of the current item */
    int shard, n_shards, n_parts, n_command_line;
    const char *items_dir;
    const char *const *parts, *const *command_line;
    ids_prov *prov;
    struct ids__store *store; /* ids__store */
    long item;
} ids__exp;
/* ---- shards and kept items (store.c, docs/CLUSTER.md) ---- */
/* Is item number idx one of this run's (its shard's)? */
bool ids__item_mine(const ids__exp *x, long idx);
/* The record kept for the current item (x->item) by an earlier run of the same request, or read
 * from the parts being merged: *rec (valid until ids__exp_end) and *len; *rec = NULL when there is
 * none (compute it, then ids__item_keep). The store is opened at the first call: x->items_dir's
 * items.bin when its request (the header's provenance) matches x->prov (otherwise it starts over,
 * with a note), or the parts (each must match; an item in two parts is an error naming both; when
 * merging, an item in none is an error). */
ids_status ids__item_find(ids__exp *x, const void **rec, size_t *len, ids_err *err);
/* Append the current item's record to items.bin (one write; a torn last record is dropped on
 * reopening). No-op without items_dir or when merging. */
ids_status ids__item_keep(ids__exp *x, const void *rec, size_t len, ids_err *err);
/* A record of n doubles: the kept one into rec (*found; its size checked), or *found = false (compute
 * rec, then ids__item_keep it). */
ids_status ids__item_doubles(ids__exp *x, double *rec, size_t n, bool *found, ids_err *err);
/* Is this run a shard (its result is items.bin + part.json, not the result files)? */
bool ids__exp_partial(const ids__exp *x);
/* The end of a run's items, st its status: a shard writes items_dir/part.json; a whole run that
 * succeeded removes items.bin (its result is written: call after writing it, where the library
 * writes it); the store is closed either way. Returns st, or the failure to write part.json. */
ids_status ids__exp_end(ids__exp *x, ids_status st, ids_err *err);
/* Resolve e for v: n_def default objects (2 or 3), at least n_min; `what` names the experiment in
 * errors ("swap: at least 2 objects are needed, 1 given"). */
ids_status ids__exp_init(ids__exp *x, const ids_exp *e, const ids_vlm *v, const ids_catalog *cat, int n_def, int n_min,
                         const char *what, ids_progress_fn progress, void *user, ids_err *err);
/* The scenes' stimulus options: grid, image size and seed of x; one object size (0.9 of a cell). */
void ids__exp_stim_opts(const ids__exp *x, ids_stim_opts *so);
/* Rows of the longest sequence of the experiment: n_images images at x's size (the tower's rows per
 * image) plus room for the prompt and a short generated answer. */
int ids__exp_n_ctx(const ids__exp *x, int n_images);
/* A run context for sequences of n_images images (n_ctx from ids__exp_n_ctx; max_rows: rows of all
 * variants computed together). */
ids_status ids__exp_ctx(const ids__exp *x, int n_images, int max_rows, bool keep_clean, ids_ctx **out, ids_err *err);
/* The item loop (ids__each_item) over x's objects, n_items and seed, counting into x->done of x->total. */
ids_status ids__exp_each(ids__exp *x, ids_set_kind kind, ids_stim_opts *so, int rel, uint64_t salt, ids__item_fn fn,
                         void *user, const char *what, ids_err *err);
/* A provenance for `command` with both model files and x's options (objects by name, grid,
 * image_size, n_items unless the run uses every item of its set, seed, threads, precision). */
ids_status ids__exp_prov(const ids__exp *x, const char *command, ids_prov **out, ids_err *err);

/* One item of an experiment, drawn by the stimulus engine or read from an image set. */
typedef struct ids__item {
    const char *id;           /* the set's record id ("" for a drawn scene) */
    const ids_image *img;     /* the image */
    int n_obj;
    const char *name[3], *word[3]; /* subject, reference, third object */
    bool has_pos[3];
    float cx[3], cy[3];       /* centres in the image's pixels */
    float box[3][4];          /* boxes (x0, y0, x1, y1) in the image's pixels, where has_pos */
    int cell_x[3], cell_y[3]; /* the cell on the run's grid (x->grid) as the model sees the image; -1 unknown */
    bool has[IDS_REL_COUNT], truth[IDS_REL_COUNT];
    const ids_stim *stim;     /* the drawn scene (NULL for a set's record) */
} ids__item;
typedef ids_status (*ids__item2_fn)(void *user, const ids__item *it, ids_err *err);
/* What a record must have to be used: one of the relations in rels (a bit per ids_relation; 0: any),
 * a position for the subject / the reference. */
enum { IDS__NEED_POS_A = 1, IDS__NEED_POS_B = 2 };
/* The item loop over drawn scenes (as ids__exp_each: kind, so, rel, salt) or, with an image set,
 * over its records that have what `need` and `rels` ask (counted in *use; a seeded sample of
 * x->n_items of them when that is > 0). */
ids_status ids__exp_items(ids__exp *x, ids_set_kind kind, ids_stim_opts *so, int rel, uint64_t salt, unsigned rels, int need,
                          ids__item2_fn fn, void *user, const char *what, ids_set_use *use, ids_err *err);
/* The result's "set" object (nothing when no set was used). */
void ids__set_use_json(cJSON *doc, const ids_set_use *u, bool *oom);

/* Bootstrap 95% interval of the universal ID's R^2 over object pairs: P per-pair ID sets (pair k's
 * cell i at pp + k pair_stride + i cell_stride, E floats), resampled with replacement (1000 resamples,
 * seeded); {NAN, NAN} below 2 pairs. */
ids_status ids__r2_pair_ci(const float *pp, int P, size_t pair_stride, size_t cell_stride, const int *xs, const int *ys,
                           int C, int E, uint64_t seed, double ci[2], ids_err *err);

/* ---- per-item outputs and intervals (itemstats.c) ---- */
/* o[key] = [low, high] (nulls when not finite). */
void ids__jci(cJSON *o, const char *key, const double ci[2], bool *oom);
/* The seeded bootstrap 95% interval of the mean of x[0..n) (ids_bootstrap_mean_ci, 2000 resamples). */
void ids__ci_mean(const double *x, int n, uint64_t seed, double ci[2], bool *oom);
/* o[key + "_ci"] = that interval. */
void ids__jadd_ci(cJSON *o, const char *key, const double *x, int n, uint64_t seed, bool *oom);
/* A CSV field, quoted when it holds a comma, a quote or a line break. */
void ids__tb_csvstr(ids__tb *b, const char *s);
/* steer belief: per layer "id_ci", "noise_ci", "accuracy_id", "accuracy_noise" (into layers' entries,
 * in order), "best3_id_ci", "best3_noise_ci" and "accuracy" {items, baseline, id, noise and their _ci}
 * (at the 3 best ID layers) into doc; the per-item rows into items. */
void ids__belief_stats(cJSON *doc, cJSON *layers, const ids_steer_result *r, ids__tb *items, bool *oom);
/* depth: per layer the intervals of the four means ("above_below_down_ci", ...) and the controls'
 * means and intervals ("random_id": {...}, "orthogonal": {...}); "effect": per push (vertical,
 * random_id, orthogonal) and question, the mean over the band of (down - up) / 2 with its interval;
 * the per-item rows into items. */
/* patching: row["diff_ci"] of variant vi from the items' fractions item_diff [n][NV]; the per-item
 * CSV of result kind k ("swap-items.csv": item, layer, set, diff). */
void ids__patch_ci(cJSON *row, const float *item_diff, int n, int NV, int vi, bool *oom);
ids_status ids__patch_items_write(const char *dir, ids_result_kind k, const float *item_diff, int n, int n_layers,
                                  ids_err *err);
/* temporal steer: "monotonic_ci" (videos resampled: the fraction of monotonic layers of the resampled
 * means) and per layer "spearman_after_ci"; the per-item rows into items. */
void ids__tsteer_stats(cJSON *doc, const ids_temporal_steer_result *r, ids__tb *items, bool *oom);
/* steer grid: the controls' maps ("delta_random", "delta_orthogonal"), every cell's interval ("delta_ci"),
 * "mean_abs" (per push, the mean over cells of |change|, with its interval); per-item rows into items. */
void ids__grid_stats(cJSON *doc, const ids_steer_grid_result *g, ids__tb *items, bool *oom);
void ids__depth_stats(cJSON *doc, cJSON *layers, const ids_depth_result *d, ids__tb *items, bool *oom);

/* --holdout-objects: IDS_ERR_ARG naming the first of x's objects that the extraction used (the
 * "objects" of meta_name, ids.json or temporal.json, beside ids_path); drawn scenes only. */
ids_status ids__holdout_check(const ids__exp *x, const char *ids_path, const char *meta_name, const char *what, ids_err *err);

/* Provenance of a run before it runs (what a stored result is compared with): the options after
 * defaults, the models and the inputs. The runs record the same in their results. */
ids_status ids__swap_prov(const ids__exp *x, bool control, bool hue, ids_prov **out, ids_err *err);
/* ids extract: resolves o into *x as the run does. */
ids_status ids__extract_prov(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o, ids__exp *x, ids_prov **out,
                             ids_err *err);
/* ids stats over DIR/ids.safetensors; score over its two inputs. */
ids_status ids__stats_prov(const char *dir, ids_prov **out, ids_err *err);
ids_status ids__score_prov(const char *stats_json, const char *steer_json, ids_prov **out, ids_err *err);
typedef enum ids__steer_kind { IDS__STEER_BELIEF = 0, IDS__STEER_GRID, IDS__STEER_DEPTH } ids__steer_kind;
ids_status ids__steer_prov(ids__steer_kind k, const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                           ids_prov **out, ids_err *err);

ids_status ids__deviation_prov(const ids_vlm *v, const ids_catalog *cat, const ids_deviation_opts *o, ids_prov **out,
                               ids_err *err);

ids_status ids__mask_prov(const ids_vlm *v, const ids_catalog *cat, const ids_mask_opts *o, ids_prov **out, ids_err *err);

/* which: 0 temporal extract, 1 temporal swap, 2 temporal steer. */
ids_status ids__temporal_prov(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, int which, ids_prov **out,
                              ids_err *err);
ids_status ids__temporal_swap_prov(const ids__exp *x, const ids_temporal_opts *o, ids_prov **out, ids_err *err);

/* The chat prompt of the question `rel` about objects named a, b (and c) with x's instruction, for
 * n_img images (several: one video); malloc'd, NULL when out of memory. */
char *ids__exp_prompt(const ids__exp *x, ids_relation rel, const char *a, const char *b, const char *c, int n_img);
/* The sequence of the question `rel` about s's first two objects, asked in the model's chat prompt
 * (with x's instruction) about n_img images from `img` (s's own frames or edited copies; several
 * images are one video). */
ids_status ids__question_seq(const ids__exp *x, ids_relation rel, const ids_stim *s, const ids_image *img, int n_img,
                             ids_seq **out, ids_err *err);
/* The same about an item's objects and its image. */
ids_status ids__item_seq(const ids__exp *x, ids_relation rel, const ids__item *it, ids_seq **out, ids_err *err);
/* The rows of the two objects' question words (last piece of " " + word, first occurrence after the
 * images); IDS_ERR_ARG when both are the same row (a word two objects share), naming the words. */
ids_status ids__object_rows(const ids_seq *seq, const ids_tokenizer *tok, const char *word_a, const char *word_b, int rows[2],
                            ids_err *err);
/* A relation's answer-token set (ids_answer_set_make) and its candidates in run order. */
#define IDS__MAX_CAND (2 * IDS_ANSWER_MAX)
typedef struct ids__answers {
    ids_answer_set set;
    int32_t cand[IDS__MAX_CAND];
    int n_cand;
} ids__answers;
ids_status ids__answers_init(ids__answers *a, const ids_tokenizer *tok, ids_relation rel, ids_err *err);
/* Record the instruction and (once per relation) an answer set in p. */
void ids__prompting_add(ids_prompting *p, const char *instruction, const ids_answer_set *s);
/* A result's "instruction" and "answer_tokens" ([{relation, FIRST: [{token, piece, variant}], SECOND: [...]}]). */
void ids__prompting_json(cJSON *doc, const ids_prompting *p, bool *oom);
/* Activation patching of an edit (mirror, recolour, time reversal): for every layer and position
 * set (IDS_SWAP_IMAGE: every image row, IDS_SWAP_TEXT: every text row, IDS_SWAP_OBJECTS: the two
 * object words, first occurrence after the images) the clean run with that set's rows at that
 * layer replaced by the edited run's, all variants of an item batched over the clean cache. acc[0..2]
 * sum the recovered fractions of the edit's effect on the two answers' log-probs and on their
 * difference; items whose edit moves the difference by less than 1e-3 are skipped (counted). */
typedef struct ids__patcher {
    const ids_vlm *v;
    const ids_tokenizer *tok;
    ids_ctx *ctx, *ctx_edit;
    int L, E, n_threads;
    ids__answers ans;
    double *acc[4]; /* per-item fractions summed (first, second, difference); [3]: pooled numerator */
    double pooled_den;
    int *setrows[IDS_SWAP_SET_COUNT], nset[IDS_SWAP_SET_COUNT];
    int n_items, n_skipped;
    float *item_diff; /* per item used: its recovered fraction of the difference [n_items][L * IDS_SWAP_SET_COUNT],
                       * taken from its record as records are added (so kept and merged items give it too) */
    int item_cap;
    ids__exp *x;  /* the run (its current item and kept items) */
    double *rec;  /* the current item's record (kept, then added to acc in item order) */
} ids__patcher;
/* n_img: images per prompt (the context is sized from them); max_rows: rows computed together. */
ids_status ids__patcher_init(ids__patcher *p, const ids__exp *x, ids_relation rel, int n_img, int max_rows, ids_err *err);
/* One item: the prompt over the clean images and over the edited ones (same layout); a prompt with
 * a <video> marker takes all n_img images as that video's frames. */
ids_status ids__patcher_item(ids__patcher *p, const ids_image *clean, const ids_image *edited, int n_img, const char *prompt,
                             const char *word_a, const char *word_b, ids_err *err);
/* Means over the items used, [L * IDS_SWAP_SET_COUNT] each (malloc'd); pooled: the difference's
 * recovery pooled over items, sum of sign(effect) (clean - patched) / sum of |effect|. */
ids_status ids__patcher_means(const ids__patcher *p, float **first, float **second, float **diff, float **pooled,
                              ids_err *err);
void ids__patcher_free(ids__patcher *p);

#endif
