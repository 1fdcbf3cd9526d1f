/* Helpers shared by the idscope commands: errors, malloc'd paths, result files written atomically,
 * the model pair (the bundled one by default), object lists, progress. */
#ifndef IDSCOPE_CLI_COMMON_H
#define IDSCOPE_CLI_COMMON_H

#include "idscope.h"
#include "args.h"

#include <stdio.h>

/* "idscope: error: MSG" on stderr; returns 1 (the exit code of a runtime failure). */
int fail(const ids_err *err);
int fail_oom(void);

/* A malloc'd string (printf format); NULL after an "out of memory" message. */
char *str_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* DIR/NAME, malloc'd; NULL after a message. */
char *path_join(const char *dir, const char *name);
/* A path as shown to the user: the absolute path without . and .. when it exists, else as given.
 * *own receives the malloc'd copy to free (NULL when the path is returned unchanged). */
const char *path_show(const char *path, char **own);

/* The whole file (or standard input for "-"), NUL-terminated, malloc'd; NULL with errno set. */
char *read_all(const char *path, size_t *len);

/* The model pair of a command: -m and --mmproj, -m with a Hugging Face model folder alone, or the
 * bundled model when neither is given ($IDSCOPE_MODELS, then models/ beside the executable's build
 * folder, then ./models). */
typedef struct model_args {
    const char *model, *mmproj;
    char *own_model, *own_mmproj;
} model_args;
#define MODEL_OPTS(T)                                                                                    \
    {.name = "model", .short_name = 'm', .type = ARG_PATH, .offset = offsetof(T, m.model), .meta = "TEXT.gguf|DIR", \
     .help = "decoder GGUF, or a Hugging Face model folder (llava, qwen2_vl, qwen2_5_vl, gemma3, qwen3_vl, "      \
             "internvl_chat, internvl, llava_onevision) alone; default, with --mmproj: "                 \
             "the bundled model, models/tiny-llava"},                                                    \
    {.name = "mmproj", .type = ARG_PATH, .offset = offsetof(T, m.mmproj), .meta = "MMPROJ.gguf",            \
     .help = "vision tower GGUF (give both -m and --mmproj, or neither)"}
#define THREADS_OPT(T, f)                                                                                \
    {.name = "threads", .short_name = 't', .type = ARG_INT, .offset = offsetof(T, f), .meta = "N", .min = 0, \
     .max = 256, .def = "0", .help = "compute threads, 0 = all cores"}
/* --precision of every command that runs a model (ids_precision; the field is an int-sized enum). */
extern const arg_choice precision_choices[];
#define PRECISION_OPT(T, f)                                                                                   \
    {.name = "precision", .type = ARG_CHOICE, .offset = offsetof(T, f), .meta = "P", .choices = precision_choices,   \
     .def = "f32", .help = "numerics of the decoder's matmuls: f32 (exact), bf16, int8 (docs/PRECISION.md)"}
/* --instruction / --no-instruction of the experiments (fields of the ids_exp at path f of T). */
#define INSTRUCTION_OPTS(T, f)                                                                                   \
    {.name = "instruction", .type = ARG_STR, .offset = offsetof(T, f.instruction), .meta = "TEXT",                \
     .def_help = "Answer \"{first}\" or \"{second}\" only. (none for a model made by idscope train)",            \
     .help = "answer instruction appended to every question; {first} and {second} become the relation's answer " \
             "words"},                                                                                            \
    {.name = "no-instruction", .type = ARG_FLAG, .offset = offsetof(T, f.no_instruction),                          \
     .help = "ask the bare question, without an answer instruction"}
/* --set of the image experiments (the field set_dir of the ids_exp at path f of T). */
#define SET_OPT(T, f)                                                                                             \
    {.name = "set", .type = ARG_PATH, .offset = offsetof(T, f.set_dir), .meta = "DIR",                             \
     .help = "an image set written by 'idscope stimuli' (synthetic, or the COCO-Spatial import) instead of drawn "   \
             "scenes: each record's image, object words, boxes and relations; --n samples that many records "       \
             "(default: all)"}
/* The notes of the commands that read images or videos: the formats and the pixel budget
 * (IDS_IMAGE_MAX_PIXELS_DEFAULT, IDS_IMAGE_PIXELS_HARD_MAX). */
#define IMAGE_INPUT_NOTES                                                                                   \
    "Images: PNG, JPEG, BMP, GIF (first frame) and 8-bit binary PGM/PPM, recognised by their bytes; other\n" \
    "formats are refused by name. An image or video frame of more than the pixel budget (default\n"          \
    "67108864 pixels, 8192 x 8192) is refused from its header, before decoding: IDSCOPE_MAX_PIXELS=N\n"      \
    "(a pixel count, at most 268435456) changes it.\n"
/* --shard I/N of the commands that loop over items (the ids_shard of the ids_exp at path f of T). */
#define SHARD_OPT(T, f)                                                                                         \
    {.name = "shard", .type = ARG_SHARD, .offset = offsetof(T, f.shard), .meta = "I/N", .max = 1000000,          \
     .help = "run shard I of N: the items whose number i has i % N == I (the same on any machine and thread "       \
             "count); writes DIR/items.bin and DIR/part.json, which 'idscope merge' joins (docs/CLUSTER.md)"}
/* The command line of this process (main), recorded in a shard's part.json without --shard and --out. */
void cli_set_command_line(int argc, char **argv);
/* idscope merge: the item files of the parts the next experiment reads every item from (n 0: none). */
void cli_set_merge_parts(const char *const *parts, int n);
/* Fill m->model / m->mmproj (0), or print the usage error (EXIT_USAGE). */
int model_resolve(const char *cmd, model_args *m);
void model_args_free(model_args *m);

/* What an experiment command needs: the model (loaded after the layer options of vals were checked
 * against its header and x's options against each other), the object catalog and the chosen objects
 * (NULL list: none chosen, n = 0). */
typedef struct exp_env {
    ids_catalog *cat;
    ids_vlm *v;
    int objs[16], n_objs;
    const char **command_line; /* what x->command_line points to (owned) */
} exp_env;
/* 0, or the exit code after the message; exp_close either way. x (may be NULL) also gets the
 * command's --out folder as the folder of its kept items (resumption, shards), the command line and
 * the parts of a merge. */
int exp_open(const arg_cmd *spec, const void *vals, model_args *m, const char *objects, ids_exp *x, exp_env *e);
/* What exp_open gives x for a command that loads its model itself (eval): the --out folder for kept
 * items, the command line, the parts of a merge. 0, or the exit code after the message. */
int exp_prepare(const arg_cmd *spec, const void *vals, ids_exp *x, exp_env *e);
/* "shard I/N: K items kept in DIR (part.json)" after a shard run, instead of the result files. */
void exp_shard_note(const ids_exp *x, const char *out);
void exp_close(exp_env *e, model_args *m);

/* Comma-separated object names (spaces after commas ignored) to catalog indices, at most 16.
 * Returns 0, or the exit code after the message. */
int parse_objects(const char *cmd, const ids_catalog *cat, const char *list, int *objs, int *n);

/* Progress on stderr (an ids_progress_fn): on a terminal a bar redrawn in place with the rate and the
 * time left; to a file or pipe a line every 5 s and one at the end ("WHAT: 30/30 done in 12 s");
 * nothing with --quiet. */
void print_progress(const char *what, long done, long total, void *user);

#endif /* IDSCOPE_CLI_COMMON_H */
