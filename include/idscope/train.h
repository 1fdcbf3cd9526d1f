/* idscope layer "train": training the bundled tiny VLM and evaluating it.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_TRAIN_H
#define IDSCOPE_TRAIN_H

#include "idscope/exp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Training the bundled default model (a tiny LLaVA-1.5-layout VLM)                              */

typedef enum ids_task {
    IDS_TASK_DESCRIBE = 0, /* "Describe the image." -> "circle c1 r2 square c3 r0" */
    IDS_TASK_LEFT_RIGHT, IDS_TASK_ABOVE_BELOW, IDS_TASK_FRONT_BEHIND, IDS_TASK_NEAR_FAR,
    IDS_TASK_BEFORE_AFTER,
    IDS_TASK_TEXT_SPATIAL, /* no image: the scene written out, then a left/right or above/below question */
    IDS_TASK_LOCATE,       /* one object: "Describe the image." -> "circle c1 r2" (a perception warm-up) */
    IDS_TASK_WHERE,        /* two objects: "Where is the red circle?" -> "c1 r2" (binding by name) */
    IDS_TASK_COUNT
} ids_task;

const char *ids_task_name(ids_task t); /* "describe", "left-right", ..., "text-spatial" */
int ids_task_from_name(const char *name);

#define IDS_MAX_STAGES 4

typedef struct ids_train_stage {
    int steps;
    float weights[IDS_TASK_COUNT]; /* relative frequency of each task's batches */
} ids_train_stage;

typedef struct ids_train_config {
    /* vision tower */
    int image_size, patch_size, vit_width, vit_layers, vit_heads, vit_ff;
    /* decoder */
    int width, layers, heads, ff;
    /* data */
    int frames;            /* video frames for before-after */
    float holdout;         /* fraction of ordered shape pairs held out of training */
    /* optimisation */
    int batch, warmup, eval_every, checkpoint_every;
    float lr, min_lr, weight_decay, clip;
    /* auxiliary location loss: a linear read-out (training only, not exported) of the residual
     * stream entering decoder block aux_layer (aux_layer = layers: the last residual) at the
     * question's object words predicts where each object is (x, y, depth, frame); weight 0 = off */
    float aux_weight;
    int aux_layer;
    uint64_t seed;
    int n_stages;
    ids_train_stage stages[IDS_MAX_STAGES];
    int threads;
    int shards;            /* a batch is split into this many shards run side by side (default 2);
                              results depend on shards, not on threads */
    char init_from[512];   /* start from the weights exported in this folder (fresh optimiser) */
} ids_train_config;

void ids_train_default_config(ids_train_config *c);
/* Every field within its range and the sizes consistent (heads divide the widths into even head
 * sizes, patch_size divides image_size into at most 32 patches a side, frames x patches at most
 * 2048 image rows, shards at most the batch, aux_layer within the layers when aux_weight > 0, a
 * stage with steps has a task of weight > 0, ...); IDS_ERR_RANGE naming the key otherwise.
 * ids_train and ids_train_config_load check this before anything else. */
ids_status ids_train_config_check(const ids_train_config *c, ids_err *err);
/* JSON with the fields above (stages as [{"steps": N, "weights": {"describe": 1, ...}}]); every
 * number range-checked before it is converted, errors name the file and the key. */
ids_status ids_train_config_load(const char *path, ids_train_config *c, ids_err *err);
/* Train and export DIR/text.gguf + DIR/mmproj.gguf (plus DIR/ckpt-STEP/ checkpoints and
 * DIR/train-log.jsonl). progress gets (what, step, total steps). */
ids_status ids_train(const ids_train_config *c, const char *out_dir, ids_progress_fn progress, void *user,
                     ids_err *err);
/* Is this ordered pair of built-in shapes held out of training under this config? */
bool ids_train_heldout(const ids_train_config *c, int shape_a, int shape_b);

/* Evaluation with the engine on fresh stimuli: accuracy of a task (answer = the likelier of the two
 * answer words' first tokens at the answer position). n questions, seed fixed. held_out: 1 = only
 * held-out shape pairs, 0 = only trained pairs, -1 = all. */
ids_status ids_eval_task(const ids_vlm *v, ids_task task, int n, uint64_t seed, int held_out,
                         const ids_train_config *c, int n_threads, ids_precision precision, int *n_correct,
                         ids_err *err);

/* Evaluation of several tasks as a result with provenance (idscope eval --out): the same questions
 * and verdicts as ids_eval_task, with the experiments' shards and kept items (ids_exp: seed,
 * n_threads, precision, shard, items_dir, parts, command_line; the scene options are not used).
 * Items are numbered task by task in the order of `tasks`, question by question. */
typedef struct ids_eval_opts {
    ids_exp exp;
    const ids_task *tasks;
    int n_tasks;                   /* at most IDS_TASK_COUNT */
    int n;                         /* questions per task */
    int held_out;                  /* as ids_eval_task */
    const ids_train_config *config;
} ids_eval_opts;
typedef struct ids_eval_result {
    int n_tasks, n;
    ids_task task[IDS_TASK_COUNT];
    int correct[IDS_TASK_COUNT];
    ids_prov *prov;
} ids_eval_result;
/* The task geometry eval uses for a model: the trainer's defaults with the model's image size, and
 * the held-out fraction and frame count of its training (GGUF key idscope.training) when it has one. */
void ids_eval_default_config(const ids_vlm *v, ids_train_config *c);
ids_status ids_eval_run(const ids_vlm *v, const ids_eval_opts *o, ids_eval_result *out, ids_progress_fn progress, void *user,
                        ids_err *err);
/* DIR/eval.json ({"format": "idscope.eval.v1", "n", "tasks": [{"task", "correct", "accuracy"}], provenance})
 * and DIR/eval.csv (task,correct,n,accuracy). */
ids_status ids_eval_write(const char *dir, const ids_eval_result *r, ids_err *err);
void ids_eval_result_free(ids_eval_result *r);

/* ------------------------------------------------------------------------------------------ */
/* Flat API of the experiments and the stimulus engine (foreign callers; see engine.h's flat API) */
/* An experiment is named as its command and given its options as (key, value) strings named as
 * the command's long options ("n", "seed", "objects", "layers", "per-pair"; '_' may stand for '-');
 * options not given take the command's defaults, so the same options and seed give the same
 * numbers as the command. Flags are "0" or "1", lists comma-separated ("objects": "red circle,blue
 * square"; "sizes": "1,0.5"), "layers" a layer "L" or a band "LO-HI", compare's "dirs" repeated once
 * per folder. A result (ids_ffi_result) holds the files the command writes (read back from a private
 * temporary folder the writer wrote; ids_ffi_result_write writes them elsewhere), the text of its
 * JSON file, and its arrays: the C result's per-layer and per-item arrays (the extractions' IDs). Failures: an ids_status, the message in ids_ffi_error(). src/train/ffi_exp.c. */

#define IDS_FFI_MAX_DIMS 6
enum { IDS_FFI_F32 = 0, IDS_FFI_U8, IDS_FFI_I8, IDS_FFI_I32, IDS_FFI_F64 }; /* array element types */
typedef struct ids_ffi_result ids_ffi_result;

/* Run command ("ids extract", "swap", "steer belief", "steer grid", "depth", "deviation", "mask",
 * "compare", "temporal extract", "temporal swap", "temporal steer", "eval") on v (compare: may be
 * NULL); out_dir (may be NULL): also write the command's files there. Shards and kept items are the
 * command's own (not offered). */
ids_status ids_ffi_exp_run(const ids_vlm *v, const char *command, int n, const char *const *keys,
                           const char *const *values, const char *out_dir, ids_ffi_result **out);
/* One item of a stimulus set as `idscope stimuli` draws it: options of that command (the set as
 * "set-kind": grid, depth, nearfar, between, video; "size", "grid", "sizes", "objects", "seed",
 * "frames", ...), item index, variant 0 (the item), 1 (its mirror), 2 (recoloured). The result's
 * array "frames" [frames, h, w, 3] (uint8 RGB); its JSON: set, index, count (items in the set),
 * grid, mirrored, recolored, objects (name, word, cx, cy, size, rot, cell_x, cell_y, lateral,
 * depth, appear, visible, color) and truth (relation name: the right answer word). */
ids_status ids_ffi_stimulus(int n, const char *const *keys, const char *const *values, int index, int variant,
                            ids_ffi_result **out);
/* The whole set written into out_dir as the command does (options as above plus "mirror",
 * "recolor", "mp4", "limit"); the result's JSON is its manifest.json. */
ids_status ids_ffi_stimuli_write(int n, const char *const *keys, const char *const *values, const char *out_dir,
                                 ids_ffi_result **out);
/* w x h pixels of 8-bit RGB (row-major) as a PNG file, written as the stimulus sets' images are. */
ids_status ids_ffi_png_write(const uint8_t *rgb, int w, int h, const char *path);
void ids_ffi_result_free(ids_ffi_result *r);
/* The text of the result's JSON file ("" when none); owned by the result. */
const char *ids_ffi_result_json(const ids_ffi_result *r);
int ids_ffi_result_n_arrays(const ids_ffi_result *r);
/* Array i: its name, element type (IDS_FFI_*), dimensions, shape [IDS_FFI_MAX_DIMS] and data (owned by
 * the result, row-major). */
ids_status ids_ffi_result_array(const ids_ffi_result *r, int i, const char **name, int *dtype, int *ndim,
                                long long *shape, const void **data);
int ids_ffi_result_n_files(const ids_ffi_result *r);
/* File i: its name (no folder) and bytes (owned by the result). */
ids_status ids_ffi_result_file(const ids_ffi_result *r, int i, const char **name, const char **data, long long *len);
/* Write the result's files into dir (created), each atomically. */
ids_status ids_ffi_result_write(const ids_ffi_result *r, const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_TRAIN_H */
