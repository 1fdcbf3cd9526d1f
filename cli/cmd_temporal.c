/* The temporal-ID experiments on videos: temporal extract, temporal swap, temporal steer. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct temporal_args {
    model_args m;
    const char *out, *objects;
    arg_layers layers;
    ids_temporal_opts o;
} temporal_args;

#define T_OFF(f) offsetof(temporal_args, f)
#define T_OUT_OPT {.name = "out", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = T_OFF(out), .meta = "DIR", \
                   .help = "output folder"}
#define T_FRAMES_OPT {.name = "frames", .type = ARG_INT, .offset = T_OFF(o.frames), .meta = "T", .min = 3, .max = 64, \
                      .def = "8", .help = "frames per video"}
#define T_N_OPT {.name = "n", .type = ARG_INT, .offset = T_OFF(o.exp.n_items), .meta = "N", .min = 1, .max = INT_MAX, \
                 .def = "8", .help = "videos per ordered object pair"}
#define T_SEED_OPT {.name = "seed", .type = ARG_U64, .offset = T_OFF(o.exp.seed), .meta = "S", .min = 0, .max = LLONG_MAX, \
                    .def = "1", .help = "random seed"}
#define T_SIZE_OPT {.name = "image-size", .type = ARG_INT, .offset = T_OFF(o.exp.image_size), .meta = "PX", .min = 16, \
                    .max = 8192, .def_help = "the tower's input size", .help = "frame size"}
#define T_OBJECTS_OPT(df, dh) {.name = "objects", .type = ARG_STR, .offset = T_OFF(objects), .meta = "LIST", \
                               .def = df, .def_help = dh, .help = "object names; every ordered pair"}

#define TEMPORAL_ABOUT                                                                                        \
    "Temporal IDs on synthetic videos of T frames (default 8; one <image> block per frame) in which\n"         \
    "object A appears at frame i and B at frame j (i != j, 1..T-1), asked 'Does the A appear before\n"         \
    "or after the B?'. The model defaults to the bundled one.\n\n"

static const arg_opt extract_opts[] = {
    MODEL_OPTS(temporal_args), T_OUT_OPT,
    T_OBJECTS_OPT("red circle,blue square,green triangle", NULL),
    T_FRAMES_OPT, T_SEED_OPT, T_SIZE_OPT, THREADS_OPT(temporal_args, o.exp.n_threads), PRECISION_OPT(temporal_args, o.exp.precision), INSTRUCTION_OPTS(temporal_args, o.exp),
    SHARD_OPT(temporal_args, o.exp), {0}};
static const arg_cmd extract_cmd = {
    "temporal extract",
    TEMPORAL_ABOUT
    "extract: the object words' residual rows at every layer, averaged per appearance frame over\n"
    "partners and object pairs, mean-centred over frames: DIR/temporal.safetensors (temporal [L][T-1][E],\n"
    "time_axis [L][E]), DIR/temporal.json and .csv (per layer the 1-D PCA coordinate of each frame,\n"
    "PC1's variance share, Spearman(coordinate, frame); best_layer).\n",
    extract_opts, NULL, NULL};

static const arg_opt swap_opts[] = {
    MODEL_OPTS(temporal_args), T_OUT_OPT,
    T_OBJECTS_OPT(NULL, "red circle,blue square"),
    T_FRAMES_OPT, T_N_OPT, T_SEED_OPT, T_SIZE_OPT, THREADS_OPT(temporal_args, o.exp.n_threads), PRECISION_OPT(temporal_args, o.exp.precision), INSTRUCTION_OPTS(temporal_args, o.exp),
    SHARD_OPT(temporal_args, o.exp),
    {.name = "mvbench", .type = ARG_PATH, .offset = T_OFF(o.mvbench), .meta = "SCENE_TRANSITION.json",
     .help = "MVBench's scene-transition questions (the task file, or the paper's derived manifest) instead of "
             "synthetic videos; at most --n of them"},
    {.name = "videos", .type = ARG_PATH, .offset = T_OFF(o.video_dir), .meta = "DIR",
     .help = "the folder the --mvbench video paths are relative to"},
    {0}};
static const arg_cmd swap_cmd = {
    "temporal swap",
    TEMPORAL_ABOUT
    "swap: time-reversal patching; the frames in reverse order are the edit; per layer and position\n"
    "set (image rows, text rows, object words) the recovered fraction of its effect on log P(before),\n"
    "log P(after) and their difference: DIR/temporal-swap.json and .csv. --mvbench: MVBench's\n"
    "scene-transition questions on their videos, patching the last word of each scene phrase as the\n"
    "object words.\n",
    swap_opts, NULL, "--mvbench videos: " IMAGE_INPUT_NOTES};

static const arg_opt steer_opts[] = {
    {.name = "ids", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = T_OFF(o.ids_path),
     .meta = "DIR/temporal.safetensors", .help = "the temporal IDs, from 'temporal extract' on the same model"},
    MODEL_OPTS(temporal_args), T_OUT_OPT, SHARD_OPT(temporal_args, o.exp),
    {.name = "factor", .type = ARG_FLOAT, .flags = ARG_GT_MIN, .offset = T_OFF(o.factor), .meta = "F", .fmin = 0,
     .fmax = INFINITY, .def = "5", .help = "factor on T[f] - T[source], not rescaled"},
    {.name = "holdout-objects", .type = ARG_FLAG, .offset = T_OFF(o.holdout_objects),
     .help = "refuse objects the temporal IDs were extracted from (temporal.json beside them)"},
    {.name = "layers", .type = ARG_LAYERS, .offset = T_OFF(layers), .meta = "LO-HI", .min = 1,
     .def_help = "1..n_layer-1", .help = "the layer band, inclusive, within 1..n_layer"},
    {.name = "source", .type = ARG_INT, .offset = T_OFF(o.source), .meta = "S", .min = 0, .max = 63, .def = "0",
     .help = "0 = the paper's pairing T[f] - T[T-f]; S > 0: T[f] - T[S], S a frame of the IDs"},
    T_OBJECTS_OPT(NULL, "red circle,blue square"),
    T_N_OPT, T_SEED_OPT, T_SIZE_OPT, THREADS_OPT(temporal_args, o.exp.n_threads), PRECISION_OPT(temporal_args, o.exp.precision), INSTRUCTION_OPTS(temporal_args, o.exp), {0}};
static const arg_cmd steer_cmd = {
    "temporal steer",
    TEMPORAL_ABOUT
    "steer: add F x (T[f] - T[T-f]) (the paper's pairing; --source S: T[f] - T[S]) to the subject word\n"
    "at each layer of the band for every target frame f; mean change of log P(before) and\n"
    "log P(after); frame T/2 (or S) adds nothing, a built-in null. DIR/temporal-steer.json and .csv,\n"
    "with the fraction of layers where the change of log P(after) rises with f (Spearman >= 0.9).\n",
    steer_opts, NULL, NULL};

static void print_temporal_swap_result(const ids_temporal_swap_result *r) {
    printf("layer,set,before,after,diff,diff_pooled\n");
    for (int l = 0; l < r->n_layers; l++)
        for (int k = 0; k < IDS_SWAP_SET_COUNT; k++) {
            const int vi = l * IDS_SWAP_SET_COUNT + k;
            printf("%d,%s,%.6f,%.6f,%.6f,%.6f\n", l, ids_swap_set_name((ids_swap_set)k), r->first[vi], r->second[vi],
                   r->diff[vi], r->diff_pooled[vi]);
        }
}

static void print_temporal_steer_result(const ids_temporal_steer_result *r) {
    printf("layer,frame,d_before,d_after\n");
    for (int k = 0; k < r->n_band; k++)
        for (int t = 0; t < r->frames; t++)
            printf("%d,%d,%.6f,%.6f\n", r->layer_lo + k, t + 1, r->d_before[k * r->frames + t],
                   r->d_after[k * r->frames + t]);
    printf("monotonic layers (change of log P(after) rises with the frame): %.3f\n", r->monotonic);
}

/* --source against the frames of the IDs file (its header only): ARGS_GO or EXIT_USAGE. Nothing is
 * checked when the file cannot be read: the run says why. */
static int check_source(const arg_cmd *spec, const ids_temporal_opts *o) {
    ids_err err;
    ids_st_file *f;
    if (!o->source || ids_st_open(&f, o->ids_path, &err)) return ARGS_GO;
    const ids_st_tensor *t = ids_st_find(f, "temporal");
    const int F = t && t->ndim == 3 ? (int)t->shape[1] : -1;
    ids_st_close(f);
    if (F < 1 || o->source <= F) return ARGS_GO;
    char value[16];
    snprintf(value, sizeof value, "%d", o->source);
    return args_bad(spec->name, "--source", value, "is outside 0..%d (frames 1..%d of the IDs, 0 = the paper's pairing)",
                    F, F);
}

static int run_temporal(const arg_cmd *spec, int argc, char **argv) {
    temporal_args a = {.o = {.exp = {.n_items = 8, .seed = 1}, .frames = spec == &steer_cmd ? 0 : 8, /* steer: from the IDs file */
                             .factor = 5.0f}};
    int rc = args_parse(spec, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    a.o.layer_lo = a.layers.lo;
    a.o.layer_hi = a.layers.hi;
    if (spec == &steer_cmd && (rc = check_source(spec, &a.o)) != ARGS_GO) return rc;
    exp_env e;
    ids_err err;
    rc = exp_open(spec, &a, &a.m, a.objects, &a.o.exp, &e);
    a.o.exp.objects = e.objs, a.o.exp.n_objects = e.n_objs;
    if (!rc && spec == &extract_cmd) {
        if (ids_temporal_extract(e.v, e.cat, &a.o, a.out, print_progress, NULL, &err)) {
            rc = fail(&err);
        } else if (a.o.exp.shard.count > 0) {
            exp_shard_note(&a.o.exp, a.out);
        } else {
            char *own;
            printf("wrote %s/temporal.safetensors, temporal.json, temporal.csv\n", path_show(a.out, &own));
            free(own);
        }
    } else if (!rc && spec == &swap_cmd) {
        ids_temporal_swap_result r = {0};
        if (ids_temporal_swap(e.v, e.cat, &a.o, &r, print_progress, NULL, &err)) rc = fail(&err);
        if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
        else if (!rc && ids_temporal_swap_write(a.out, &r, &err)) rc = fail(&err);
        else if (!rc) print_temporal_swap_result(&r);
        ids_temporal_result_free(&r);
    } else if (!rc) {
        ids_temporal_steer_result r = {0};
        if (ids_temporal_steer(e.v, e.cat, &a.o, &r, print_progress, NULL, &err)) rc = fail(&err);
        if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
        else if (!rc && ids_temporal_steer_write(a.out, &r, &err)) rc = fail(&err);
        else if (!rc) print_temporal_steer_result(&r);
        ids_temporal_steer_result_free(&r);
    }
    exp_close(&e, &a.m);
    return rc;
}

int cmd_temporal(int argc, char **argv) {
    static const arg_sub subs[] = {{"extract", &extract_cmd, run_temporal},
                                   {"swap", &swap_cmd, run_temporal},
                                   {"steer", &steer_cmd, run_temporal},
                                   {0}};
    return args_family("temporal", subs, argc, argv);
}
