/* The spatial-ID experiments: ids (extract, stats), swap, steer (belief, grid), depth, score, report.
 * Each: option table -> one library call -> result files (written by the library's results module)
 * and the stdout echo. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

#define OBJECTS_OPT(T, df, dh, hl)                                                                              \
    {.name = "objects", .type = ARG_STR, .offset = offsetof(T, objects), .meta = "LIST", .def = df, .def_help = dh, \
     .help = hl}
#define OUT_OPT(T) \
    {.name = "out", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(T, out), .meta = "DIR", .help = "output folder"}
#define SEED_OPT(T, f) \
    {.name = "seed", .type = ARG_U64, .offset = offsetof(T, f), .meta = "S", .min = 0, .max = LLONG_MAX, .def = "1", \
     .help = "random seed"}

/* ---- ids extract / ids stats ------------------------------------------------------------- */

typedef struct ids_args {
    model_args m;
    const char *out, *objects, *dir;
    arg_floats sizes;
    ids_extract_opts o;
} ids_args;

static const arg_opt extract_opts[] = {
    MODEL_OPTS(ids_args),
    OUT_OPT(ids_args),
    OBJECTS_OPT(ids_args, NULL, "red circle,blue square,green triangle", "object names; every ordered pair"),
    {.name = "grid", .type = ARG_INT, .offset = offsetof(ids_args, o.exp.grid), .meta = "N", .min = 1, .max = 2048,
     .def = "4", .help = "cells per side"},
    {.name = "sizes", .type = ARG_FLOATS, .flags = ARG_GT_MIN, .offset = offsetof(ids_args, sizes), .meta = "LIST",
     .max = 16, .fmin = 0.05, .fmax = 1, .def_help = "1,0.78,0.55,0.33", .help = "object sizes as fractions of a cell"},
    {.name = "image-size", .type = ARG_INT, .offset = offsetof(ids_args, o.exp.image_size), .meta = "PX", .min = 16,
     .max = 8192, .def_help = "the tower's input size", .help = "stimulus size"},
    {.name = "per-pair", .type = ARG_FLAG, .offset = offsetof(ids_args, o.per_pair), .help = "also store every pair's IDs"},
    THREADS_OPT(ids_args, o.exp.n_threads), PRECISION_OPT(ids_args, o.exp.precision), INSTRUCTION_OPTS(ids_args, o.exp),
    SET_OPT(ids_args, o.exp),
    {.name = "n", .type = ARG_INT, .offset = offsetof(ids_args, o.exp.n_items), .meta = "N", .min = 1, .max = INT_MAX,
     .def_help = "all", .help = "with --set: a seeded sample of N records"},
    {.name = "seed", .type = ARG_U64, .offset = offsetof(ids_args, o.exp.seed), .meta = "S", .min = 0, .max = LLONG_MAX,
     .def = "1", .help = "random seed (of the --set sample)"},
    SHARD_OPT(ids_args, o.exp),
    {0},
};
static const arg_cmd ids_extract_cmd = {
    "ids extract",
    "Spatial IDs (the paper's procedure): for every ordered pair of the objects, subject B at every\n"
    "cell and size, anchor A at every other cell, the question \"Is the B to the left or right of the\n"
    "A?\"; the subject word's activation at every layer, mean-centred within (pair, anchor cell),\n"
    "averaged over anchor cells (per-pair ID) and over pairs (universal ID), and the x/y axes.\n"
    "Writes DIR/ids.safetensors (universal [layers, y, x, size, embd], x_axis, y_axis [layers, embd],\n"
    "per_pair) and DIR/ids.json. The model defaults to the bundled one.\n",
    extract_opts, NULL, NULL};

static const arg_opt ids_stats_opts[] = {{0}};
static const arg_pos ids_stats_pos[] = {{"DIR", offsetof(ids_args, dir), true}, {0}};
static const arg_cmd ids_stats_cmd = {
    "ids stats",
    "Read DIR/ids.safetensors (written by ids extract) and write DIR/stats.json and DIR/stats.csv: per\n"
    "layer the R^2 of a linear fit of the cell IDs in (x, y), the variance in the plane of the axes,\n"
    "the 2-D PCA coordinates of the cells and its variance, and the mean cosine of per-pair IDs with\n"
    "the universal ID (when extracted with --per-pair). Prints stats.csv.\n",
    ids_stats_opts, ids_stats_pos, NULL};

static int run_ids_extract(const arg_cmd *spec, int argc, char **argv) {
    ids_args a = {0};
    int rc = args_parse(spec, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (a.sizes.n) a.o.sizes = a.sizes.v, a.o.n_sizes = a.sizes.n;
    exp_env e;
    ids_err err;
    rc = exp_open(spec, &a, &a.m, a.objects, &a.o.exp, &e);
    a.o.exp.objects = e.objs, a.o.exp.n_objects = e.n_objs;
    if (!rc && ids_spatial_extract(e.v, e.cat, &a.o, a.out, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
    else if (!rc) {
        char *own;
        const char *dir = path_show(a.out, &own);
        fprintf(stderr, "wrote %s/ids.safetensors and %s/ids.json\n", dir, dir);
        free(own);
    }
    exp_close(&e, &a.m);
    return rc;
}

static int run_ids_stats(const arg_cmd *spec, int argc, char **argv) {
    ids_args a = {0};
    int rc = args_parse(spec, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_err err;
    if (ids_spatial_stats(a.dir, &err)) return fail(&err);
    char *path = path_join(a.dir, "stats.csv");
    size_t len;
    char *csv = path ? read_all(path, &len) : NULL;
    if (csv) fputs(csv, stdout);
    free(csv);
    free(path);
    return 0;
}

int cmd_ids(int argc, char **argv) {
    static const arg_sub subs[] = {
        {"extract", &ids_extract_cmd, run_ids_extract}, {"stats", &ids_stats_cmd, run_ids_stats},
        {"export-cvec", &ids_export_cvec_cmd, run_ids_export_cvec}, {0}};
    return args_family("ids", subs, argc, argv);
}

/* ---- swap -------------------------------------------------------------------------------- */

typedef struct swap_args {
    model_args m;
    const char *out, *objects;
    bool control;
    ids_swap_opts o;
} swap_args;

static const arg_opt swap_opts[] = {
    MODEL_OPTS(swap_args),
    OUT_OPT(swap_args),
    {.name = "control", .type = ARG_FLAG, .offset = offsetof(swap_args, control),
     .help = "the attribute edit instead of the mirror: the named objects recoloured (the question keeps their old "
             "colours, so it no longer matches the picture); drawn scenes only"},
    {.name = "hue", .type = ARG_FLAG, .offset = offsetof(swap_args, o.hue),
     .help = "the attribute control as the paper does it: a random rainbow hue shift of the whole image (any image, "
             "question unchanged); writes swap-hue.json"},
    OBJECTS_OPT(swap_args, NULL, "red circle,blue square", "object names; every ordered pair is used"),
    SET_OPT(swap_args, o.exp),
    {.name = "n", .type = ARG_INT, .offset = offsetof(swap_args, o.exp.n_items), .meta = "N", .min = 1, .max = INT_MAX,
     .def_help = "8 per pair; with --set all", .help = "images per pair (with --set: a seeded sample of N records)"},
    {.name = "grid", .type = ARG_INT, .offset = offsetof(swap_args, o.exp.grid), .meta = "N", .min = 1, .max = 2048,
     .def = "4", .help = "grid cells per side"},
    SEED_OPT(swap_args, o.exp.seed),
    THREADS_OPT(swap_args, o.exp.n_threads), PRECISION_OPT(swap_args, o.exp.precision), INSTRUCTION_OPTS(swap_args, o.exp),
    SHARD_OPT(swap_args, o.exp),
    {0},
};
static const arg_cmd swap_cmd = {
    "swap",
    "Mirror swapping by activation patching: for grid images with a left/right answer, the clean run's\n"
    "residual rows of one position set (image rows, text rows, the two object words) are replaced at\n"
    "one layer by the mirrored image's; the recovered fraction of the mirror's effect on log P(left),\n"
    "log P(right) and their difference, per layer and set, averaged over images (diff_pooled: the\n"
    "difference pooled over images, steadier when the edit's effect is small). --control uses the\n"
    "attribute edit (recoloured objects, same question) instead of the mirror, --hue the paper's hue\n"
    "shift of the whole image. Writes DIR/swap.json (swap-control.json, swap-hue.json) and the matching\n"
    ".csv. With --set DIR the images of an image set (its left/right records). The model defaults to\n"
    "the bundled one.\n",
    swap_opts, NULL, NULL};

static void print_swap_result(const ids_swap_result *r) {
    printf("layer,set,left,right,diff,diff_pooled\n");
    for (int l = 0; l < r->n_layers; l++)
        for (int k = 0; k < IDS_SWAP_SET_COUNT; k++) {
            const int vi = l * IDS_SWAP_SET_COUNT + k;
            printf("%d,%s,%.6f,%.6f,%.6f,%.6f\n", l, ids_swap_set_name((ids_swap_set)k), r->left[vi], r->right[vi],
                   r->diff[vi], r->diff_pooled[vi]);
        }
}

int cmd_swap(int argc, char **argv) {
    swap_args a = {0};
    int rc = args_parse(&swap_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    exp_env e;
    ids_err err;
    ids_swap_result r = {0};
    rc = exp_open(&swap_cmd, &a, &a.m, a.objects, &a.o.exp, &e);
    a.o.exp.objects = e.objs, a.o.exp.n_objects = e.n_objs;
    if (!rc && ids_swap_run(e.v, e.cat, &a.o, a.control, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
    else if (!rc && ids_swap_write(a.out, &r, &err)) rc = fail(&err);
    else if (!rc) print_swap_result(&r);
    ids_swap_result_free(&r);
    exp_close(&e, &a.m);
    return rc;
}

/* ---- steer belief / steer grid / depth --------------------------------------------------- */

typedef struct steer_args {
    model_args m;
    const char *out, *ids, *objects;
    int relation;
    arg_layers layers;
    ids_steer_opts o;
} steer_args;

static const arg_choice belief_relations[] = {
    {"left-right", IDS_REL_LEFT_RIGHT}, {"above-below", IDS_REL_ABOVE_BELOW}, {0}};
static const arg_choice grid_variants[] = {{"ours", IDS_GRID_OURS}, {"paper", IDS_GRID_PAPER}, {0}};
static const arg_choice grid_relations[] = {{"left-right", IDS_REL_LEFT_RIGHT}, {"above-below", IDS_REL_ABOVE_BELOW},
                                            {"near-far", IDS_REL_NEAR_FAR}, {"between", IDS_REL_BETWEEN}, {0}};

#define STEER_COMMON_OPTS                                                                                      \
    {.name = "ids", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(steer_args, ids),                 \
     .meta = "IDS.safetensors", .help = "the IDs, from 'idscope ids extract' on the same model"},                 \
    MODEL_OPTS(steer_args), OUT_OPT(steer_args),                                                                \
    OBJECTS_OPT(steer_args, NULL, "red circle,blue square", "object names; every ordered pair"),              \
    {.name = "n", .type = ARG_INT, .offset = offsetof(steer_args, o.exp.n_items), .meta = "N", .min = 0, .max = INT_MAX, \
     .def_help = "8 per pair; with --set all", .help = "images per pair (with --set: a seeded sample of N records)"}, \
    SET_OPT(steer_args, o.exp),                                                                                 \
    SEED_OPT(steer_args, o.exp.seed), THREADS_OPT(steer_args, o.exp.n_threads),                                  \
    PRECISION_OPT(steer_args, o.exp.precision), INSTRUCTION_OPTS(steer_args, o.exp),                            \
    SHARD_OPT(steer_args, o.exp),                                                                               \
    {.name = "holdout-objects", .type = ARG_FLAG, .offset = offsetof(steer_args, o.holdout_objects),               \
     .help = "refuse objects the IDs were extracted from (ids.json beside the IDs): nothing steered was seen in "  \
             "extraction"}
#define STEER_FACTOR_OPT(hl)                                                                                    \
    {.name = "factor", .type = ARG_FLOAT, .flags = ARG_GT_MIN, .offset = offsetof(steer_args, o.factor), .meta = "F", \
     .fmin = 0, .fmax = INFINITY, .def = "5", .help = hl}
#define STEER_LAYERS_OPT(fl, mt, dh, hl)                                                                        \
    {.name = "layers", .type = ARG_LAYERS, .flags = fl, .offset = offsetof(steer_args, layers), .meta = mt,      \
     .min = 1, .def_help = dh, .help = hl}
#define STEER_GREEDY_OPT                                                                                        \
    {.name = "greedy", .type = ARG_INT, .offset = offsetof(steer_args, o.greedy_tokens), .meta = "N", .min = 0,    \
     .max = 64, .def = "3", .help = "greedy answer length in tokens for the word verdicts, 0 = off"}

static const arg_opt steer_belief_opts[] = {
    STEER_COMMON_OPTS,
    {.name = "relation", .type = ARG_CHOICE, .offset = offsetof(steer_args, relation), .meta = "REL",
     .choices = belief_relations, .def_help = "left-right; with --set each record's own question",
     .help = "the question asked (with --set: only the records asked it)"},
    STEER_FACTOR_OPT("steering norm = F x the word's activation norm at that layer"),
    STEER_LAYERS_OPT(0, "LO-HI",
                     "the paper's band for the model's family: LLaVA-1.5 8-20 of 32 layers, Qwen2-VL 6-16 of 28, "
                     "Gemma 3 10-22 of 34 and 48, scaled for other depths; 1..n_layer-1 for a model made by "
                     "idscope train",
                     "the layer band, inclusive, within 1..n_layer"),
    STEER_GREEDY_OPT,
    {0},
};
static const arg_cmd steer_belief_cmd = {
    "steer belief",
    "Belief-swap steering: for grid images, add to the subject word (at one layer) the universal-ID\n"
    "difference that moves it against the model's own answer, and the opposite to the reference word,\n"
    "each scaled to F (default 5) times that word's activation norm; the control adds Gaussian noise\n"
    "of the same norms. Swapped = the sign of log P(first answer) - log P(second) flips. Prints and\n"
    "writes DIR/steer-belief.json and .csv: the rate per layer (ID vs noise) and the mean of the 3\n"
    "best layers. IDs come from 'idscope ids extract' on the same model. Layers default to 1..n-1.\n"
    "The same verdicts from short greedy answers (--greedy N tokens, default 3; 0 = off): swapped when\n"
    "the steered answer names the other answer word (whole words: 'alright' is not 'right').\n"
    "The model defaults to the bundled one.\n",
    steer_belief_opts, NULL, NULL};

static const arg_opt steer_grid_opts[] = {
    STEER_COMMON_OPTS,
    {.name = "relation", .type = ARG_CHOICE, .offset = offsetof(steer_args, relation), .meta = "REL",
     .choices = grid_relations, .def = "left-right",
     .help = "the question asked; between asks about three objects, by default red circle, blue square and "
             "green triangle"},
    STEER_FACTOR_OPT("F x (ID(target) - ID(source cell)), not rescaled"),
    STEER_LAYERS_OPT(ARG_SINGLE, "L", "n_layer/2", "the layer, within 1..n_layer (of a band LO-HI: its first)"),
    STEER_GREEDY_OPT,
    {.name = "variant", .type = ARG_CHOICE, .offset = offsetof(steer_args, o.variant), .meta = "V", .choices = grid_variants,
     .def = "ours", .help = "ours: F x (ID(target) - ID(the subject's cell)); paper: F x (ID(target) - ID(its mirror "
                            "cell)), horizontal (vertical for above-below and between), no true cell needed; writes "
                            "steer-grid-RELATION-paper.json"},
    {0},
};
static const arg_cmd steer_grid_cmd = {
    "steer grid",
    "Arbitrary steering: at one layer (default n/2) add F x (ID(target) - ID(source cell)) to the\n"
    "subject word for every target cell (F not rescaled; default 5); prints the grid of mean changes\n"
    "of log P(first) - log P(second) and writes DIR/steer-grid-RELATION.json and .csv. The model\n"
    "defaults to the bundled one.\n",
    steer_grid_opts, NULL, NULL};

static const arg_opt depth_opts[] = {
    STEER_COMMON_OPTS,
    STEER_FACTOR_OPT("steering norm = F x the word's activation norm at that layer"),
    STEER_LAYERS_OPT(0, "LO-HI", "1..n_layer-1; Gemma 3 1-29 of 34, 1-39 of 48 (the paper's layers)",
                     "the layer band, inclusive, within 1..n_layer"),
    {.name = "raw", .type = ARG_FLAG, .offset = offsetof(steer_args, o.raw),
     .help = "push with F x the row-only ID difference itself, as the paper, instead of rescaling it to F x the "
             "word's norm"},
    {0},
};
static const arg_cmd depth_cmd = {
    "depth",
    "Depth diagnosis: push the subject word down (+) or up (-) with the row-only ID difference\n"
    "U(0, bottom) - U(0, top), scaled to F (default 5) x its norm, at each layer of the band; report the\n"
    "mean change of log P(above) - log P(below) on grid scenes and of log P(in front) - log P(behind)\n"
    "on depth scenes. A model that confuses up/down with back/front moves its depth answer with the\n"
    "vertical ID. Writes DIR/depth.json and DIR/depth.csv. The model defaults to the bundled one.\n",
    depth_opts, NULL, NULL};

/* The steering options from the parsed values, the model and the objects (default by relation). */
static int steer_open(const arg_cmd *spec, steer_args *a, exp_env *e) {
    a->o.ids_path = a->ids;
    a->o.relation_only = a->relation >= 0; /* given: with --set, only its records */
    a->o.relation = a->relation >= 0 ? (ids_relation)a->relation : IDS_REL_LEFT_RIGHT;
    a->o.layer_lo = a->layers.lo;
    a->o.layer_hi = a->layers.hi;
    int rc = exp_open(spec, a, &a->m, a->objects, &a->o.exp, e);
    a->o.exp.objects = e->objs;
    a->o.exp.n_objects = e->n_objs;
    return rc;
}

static void print_steer_belief_result(const ids_steer_result *r) {
    const bool g = r->greedy_id != NULL;
    printf("layer,swap_rate_id,swap_rate_noise%s\n", g ? ",greedy_id,greedy_noise" : "");
    for (int k = 0; k < r->n_band; k++) {
        printf("%d,%.4f,%.4f", r->layer_lo + k, r->rate_id[k], r->rate_noise[k]);
        if (g) printf(",%.4f,%.4f", r->greedy_id[k], r->greedy_noise[k]);
        printf("\n");
    }
    printf("best 3 layers: ID %.4f, noise %.4f\n", r->best3_id, r->best3_noise);
    if (g) printf("greedy answers, best 3 layers: ID %.4f, noise %.4f\n", r->greedy_best3_id, r->greedy_best3_noise);
    int known = 0, right = 0; /* the items whose truth is known: accuracy without steering */
    for (int i = 0; r->item_truth && i < r->n_items; i++)
        if (r->item_truth[i] >= 0) known++, right += (r->item_dc[i] > 0) == (r->item_truth[i] == 1);
    if (known) printf("accuracy without steering: %.4f of %d images (under each push: DIR/steer-belief.json)\n", (double)right / known, known);
}

static void print_steer_grid_result(const ids_steer_grid_result *g) {
    printf("layer %d, mean change of log P(%s) - log P(%s), target cell (row y, column x):\n", g->layer,
           ids_answer_word(g->relation, true), ids_answer_word(g->relation, false));
    for (int y = 0; y < g->grid; y++) {
        for (int x = 0; x < g->grid; x++) printf("%9.4f", g->delta[y * g->grid + x]);
        printf("\n");
    }
}

static int run_steer(const arg_cmd *spec, int argc, char **argv) {
    steer_args a = {.relation = -1};
    int rc = args_parse(spec, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    exp_env e;
    ids_err err;
    rc = steer_open(spec, &a, &e);
    if (!rc && spec == &steer_grid_cmd) {
        ids_steer_grid_result g = {0};
        if (ids_steer_grid(e.v, e.cat, &a.o, &g, print_progress, NULL, &err)) rc = fail(&err);
        if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
        else if (!rc && ids_steer_grid_write(a.out, &g, &err)) rc = fail(&err);
        else if (!rc) print_steer_grid_result(&g);
        ids_steer_grid_result_free(&g);
    } else if (!rc) {
        ids_steer_result r = {0};
        if (ids_steer_belief(e.v, e.cat, &a.o, &r, print_progress, NULL, &err)) rc = fail(&err);
        if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
        else if (!rc && ids_steer_write(a.out, &r, &err)) rc = fail(&err);
        else if (!rc) print_steer_belief_result(&r);
        ids_steer_result_free(&r);
    }
    exp_close(&e, &a.m);
    return rc;
}

int cmd_steer(int argc, char **argv) {
    static const arg_sub subs[] = {
        {"belief", &steer_belief_cmd, run_steer}, {"grid", &steer_grid_cmd, run_steer}, {0}};
    return args_family("steer", subs, argc, argv);
}

static void print_depth_result(const ids_depth_result *d) {
    fputs("layer,above_below_down,above_below_up,front_behind_down,front_behind_up\n", stdout);
    for (int k = 0; k < d->n_band; k++)
        printf("%d,%.6f,%.6f,%.6f,%.6f\n", d->layer_lo + k, d->ab_down[k], d->ab_up[k], d->fb_down[k], d->fb_up[k]);
}

int cmd_depth(int argc, char **argv) {
    steer_args a = {0};
    int rc = args_parse(&depth_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    exp_env e;
    ids_err err;
    ids_depth_result d = {0};
    rc = steer_open(&depth_cmd, &a, &e);
    if (!rc && ids_depth_diag(e.v, e.cat, &a.o, &d, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && a.o.exp.shard.count > 0) exp_shard_note(&a.o.exp, a.out);
    else if (!rc && ids_depth_write(a.out, &d, &err)) rc = fail(&err);
    else if (!rc) print_depth_result(&d);
    ids_depth_result_free(&d);
    exp_close(&e, &a.m);
    return rc;
}

/* ---- score / report ---------------------------------------------------------------------- */

typedef struct score_args {
    const char *stats, *steer, *out;
} score_args;

static const arg_opt score_opts[] = {
    {.name = "stats", .type = ARG_PATH, .offset = offsetof(score_args, stats), .meta = "STATS.json",
     .help = "from 'ids stats' (IDs extracted with --per-pair)"},
    {.name = "steer", .type = ARG_PATH, .offset = offsetof(score_args, steer), .meta = "STEER-BELIEF.json",
     .help = "from 'steer belief'"},
    {.name = "output", .short_name = 'o', .type = ARG_PATH, .offset = offsetof(score_args, out), .meta = "SCORE.json",
     .help = "the score file to write"},
    {0},
};
static const arg_cmd score_cmd = {
    "score",
    "ID-strength score per layer (not in the paper): linearity (R^2 of the IDs in position, from\n"
    "'ids stats') x consistency across object pairs (mean cosine with the universal ID, clamped at 0;\n"
    "extract with --per-pair) x causal effect (ID swap rate minus noise swap rate, clamped at 0, from\n"
    "'steer belief'). Each factor is in [0, 1]. Needs --stats, --steer and -o. Prints the best layer\n"
    "and its score.\n",
    score_opts, NULL, NULL};

int cmd_score(int argc, char **argv) {
    score_args a = {0};
    int rc = args_parse(&score_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (!a.stats || !a.steer || !a.out) return args_usage("score", "%s", "needs --stats, --steer and -o");
    ids_err err;
    int best;
    double score;
    if (ids_score(a.stats, a.steer, a.out, &best, &score, &err)) return fail(&err);
    char *own;
    printf("best layer %d, score %.4f (written to %s)\n", best, score, path_show(a.out, &own));
    free(own);
    return 0;
}

typedef struct report_args {
    const char *dir;
} report_args;

static const arg_opt report_opts[] = {{0}};
static const arg_pos report_pos[] = {{"RESULTS_DIR", offsetof(report_args, dir), true}, {0}};
static const arg_cmd report_cmd = {
    "report",
    "Write RESULTS_DIR/report.html: one self-contained page (inline SVG, no network) with the results\n"
    "found in RESULTS_DIR: ids/stats.json (R^2, axis plane, PCA picture of the cell IDs), swap/swap.json\n"
    "and swap/swap-control.json (patching curves), steer/steer-belief.json (ID vs noise swap rates),\n"
    "steer/steer-grid-*.json (heat maps), depth/depth.json, score.json, temporal/temporal.json,\n"
    "temporal/temporal-swap.json and temporal/temporal-steer.json (time line, reversal patching, temporal\n"
    "steering). Missing results are marked.\n",
    report_opts, report_pos, NULL};

int cmd_report(int argc, char **argv) {
    report_args a = {0};
    int rc = args_parse(&report_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_err err;
    int n;
    if (ids_report(a.dir, &n, &err)) return fail(&err);
    char *own;
    printf("wrote %s/report.html (%d of 9 sections with results)\n", path_show(a.dir, &own), n);
    free(own);
    return 0;
}
