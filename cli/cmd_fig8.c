/* The paper's Fig. 8 on an image set: deviation (ground-truth deviation of the IDs, right vs wrong,
 * Mann-Whitney U) and mask (blur of the object's box vs random boxes). */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

typedef struct dev_args {
    model_args m;
    const char *out, *ids, *objects;
    int layer;
    ids_deviation_opts o;
} dev_args;

#define FIG8_COMMON_OPTS(T, x)                                                                                    \
    MODEL_OPTS(T),                                                                                                \
    {.name = "set", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(T, x.set_dir), .meta = "DIR",      \
     .help = "an image set written by 'idscope stimuli' (synthetic, or the COCO-Spatial import with "             \
             "--coco-instances): records with a left/right or above/below question and the subject's box"},      \
    {.name = "out", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(T, out), .meta = "DIR",           \
     .help = "output folder"},                                                                                    \
    {.name = "n", .type = ARG_INT, .offset = offsetof(T, x.n_items), .meta = "N", .min = 0, .max = INT_MAX,       \
     .def_help = "all", .help = "a seeded sample of N records"},                                                  \
    {.name = "seed", .type = ARG_U64, .offset = offsetof(T, x.seed), .meta = "S", .min = 0, .max = LLONG_MAX,     \
     .def = "1", .help = "random seed"},                                                                          \
    THREADS_OPT(T, x.n_threads), PRECISION_OPT(T, x.precision), INSTRUCTION_OPTS(T, x), SHARD_OPT(T, x)

static const arg_opt dev_opts[] = {
    {.name = "ids", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(dev_args, ids), .meta = "IDS.safetensors",
     .help = "the IDs, from 'idscope ids extract' on the same model"},
    FIG8_COMMON_OPTS(dev_args, o.exp),
    {.name = "layer", .type = ARG_INT, .offset = offsetof(dev_args, layer), .meta = "L", .min = 0, .max = 100000,
     .def_help = "the layer whose IDs are most linear in position", .help = "the layer of the test"},
    {0},
};
static const arg_cmd dev_cmd = {
    "deviation",
    "Ground-truth deviation (the paper's Fig. 8A): for each record of the set, the subject word's row\n"
    "with the image minus the same prompt without it, in the plane of the IDs' x and y axes, against\n"
    "the universal ID interpolated at the centre of the subject's box (both centred over the items);\n"
    "the deviations of the items the model answers right vs wrong, compared by the Mann-Whitney U test\n"
    "(two-sided; exact p without ties up to 30 items a side, else the tie-corrected normal\n"
    "approximation). Writes DIR/deviation.json (\"mann_whitney\", means with bootstrap intervals, per\n"
    "layer) and DIR/deviation.csv (per item and layer). The model defaults to the bundled one.\n"
    "Finished items are kept in DIR/items.bin: the same command run again resumes. With --shard I/N\n"
    "only the shard's records are run; 'idscope merge' computes the statistics over all of them.\n",
    dev_opts, NULL, NULL};

int cmd_deviation(int argc, char **argv) {
    dev_args a = {0};
    a.o.exp = ids_exp_default();
    int rc = args_parse(&dev_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    exp_env e;
    ids_err err;
    a.o.ids_path = a.ids;
    a.o.layer = a.layer;
    rc = exp_open(&dev_cmd, &a, &a.m, a.objects, &a.o.exp, &e);
    ids_deviation_result r = {0};
    if (!rc && ids_deviation(e.v, e.cat, &a.o, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && a.o.exp.shard.count > 0) {
        exp_shard_note(&a.o.exp, a.out);
    } else if (!rc && ids_deviation_write(a.out, &r, &err)) {
        rc = fail(&err);
    } else if (!rc) {
        printf("layer %d: %d items, %d answered right, %d wrong\n", r.layer, r.n_items, r.n_right, r.n_wrong);
        if (r.n_right && r.n_wrong)
            printf("Mann-Whitney U %.1f, z %.3f, p %.4g (%s)\n", r.mw.u, r.mw.z, r.mw.p, r.mw.exact ? "exact" : "normal approximation");
        else
            printf("Mann-Whitney: not run (a group is empty)\n");
    }
    ids_deviation_result_free(&r);
    exp_close(&e, &a.m);
    return rc;
}

typedef struct mask_args {
    model_args m;
    const char *out, *objects;
    ids_mask_opts o;
} mask_args;

static const arg_opt mask_opts[] = {
    FIG8_COMMON_OPTS(mask_args, o.exp),
    {.name = "radius", .type = ARG_FLOAT, .flags = ARG_GT_MIN, .offset = offsetof(mask_args, o.radius), .meta = "R",
     .fmin = 0, .fmax = 4096, .def = "20", .help = "blur radius in pixels of a 336-pixel-wide image (scaled to the image)"},
    {.name = "random", .type = ARG_INT, .offset = offsetof(mask_args, o.n_random), .meta = "N", .min = 1, .max = 256,
     .def = "8", .help = "random boxes of the object's size per record"},
    {0},
};
static const arg_cmd mask_cmd = {
    "mask",
    "Blur masking (the paper's Fig. 8B): for each record of the set, blur the subject's box (a box\n"
    "filter of radius R at 336 pixels, default 20) and, as the control, N random boxes of the same size;\n"
    "the change of the true answer's log-probability and of accuracy against the clean image, with\n"
    "bootstrap intervals. Writes DIR/mask.json and DIR/mask.csv (per record and variant). The model\n"
    "defaults to the bundled one. The random boxes of a record come from the seed and its number.\n"
    "Finished items are kept in DIR/items.bin: the same command run again resumes. With --shard I/N\n"
    "only the shard's records are run; 'idscope merge' computes the statistics over all of them.\n",
    mask_opts, NULL, NULL};

int cmd_mask(int argc, char **argv) {
    mask_args a = {0};
    a.o.exp = ids_exp_default();
    int rc = args_parse(&mask_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    exp_env e;
    ids_err err;
    rc = exp_open(&mask_cmd, &a, &a.m, a.objects, &a.o.exp, &e);
    ids_mask_result r = {0};
    if (!rc && ids_mask(e.v, e.cat, &a.o, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && a.o.exp.shard.count > 0) {
        exp_shard_note(&a.o.exp, a.out);
    } else if (!rc && ids_mask_write(a.out, &r, &err)) {
        rc = fail(&err);
    } else if (!rc) {
        const int K = 2 + r.n_random;
        int ok[3] = {0, 0, 0};
        for (int i = 0; i < r.n_items; i++)
            for (int k = 0; k < K; k++) ok[k < 2 ? k : 2] += r.ok[(size_t)i * K + k];
        printf("%d records: accuracy clean %.3f, object blurred %.3f, random boxes blurred %.3f\n", r.n_items,
               r.n_items ? (double)ok[0] / r.n_items : 0, r.n_items ? (double)ok[1] / r.n_items : 0,
               r.n_items ? (double)ok[2] / r.n_items / r.n_random : 0);
    }
    ids_mask_result_free(&r);
    exp_close(&e, &a.m);
    return rc;
}

#define CMP_MAX 8
typedef struct cmp_args {
    const char *out, *dirs[CMP_MAX];
} cmp_args;

static const arg_opt cmp_opts[] = {
    {.name = "out", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(cmp_args, out), .meta = "OUT",
     .help = "output folder"},
    {0},
};
static const arg_pos cmp_pos[] = {{"RUN_DIR", offsetof(cmp_args, dirs[0]), true},  {"RUN_DIR", offsetof(cmp_args, dirs[1]), false},
                                  {"RUN_DIR", offsetof(cmp_args, dirs[2]), false}, {"RUN_DIR", offsetof(cmp_args, dirs[3]), false},
                                  {"RUN_DIR", offsetof(cmp_args, dirs[4]), false}, {"RUN_DIR", offsetof(cmp_args, dirs[5]), false},
                                  {"RUN_DIR", offsetof(cmp_args, dirs[6]), false}, {"RUN_DIR", offsetof(cmp_args, dirs[7]), false},
                                  {0}};
static const arg_cmd cmp_cmd = {
    "compare",
    "Accuracy against steerability across models (the paper's Fig. 9): reads the summary.json of each\n"
    "demo folder RUN_DIR (up to 8; 'idscope demo' writes them) and tabulates accuracy without steering\n"
    "(with its interval), the belief swap rates, the ID-strength score and R^2, with Spearman's\n"
    "correlation of the score with the accuracy and its 95% interval (Fisher's z; none below 4\n"
    "models). Writes OUT/compare.json, OUT/compare.csv and OUT/compare.html (the scatter plot).\n",
    cmp_opts, cmp_pos, NULL};

int cmd_compare(int argc, char **argv) {
    cmp_args a = {0};
    int rc = args_parse(&cmp_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    int n = 0;
    while (n < CMP_MAX && a.dirs[n]) n++;
    ids_err err;
    double rho;
    if (ids_compare(a.dirs, n, a.out, &rho, &err)) return fail(&err);
    printf("%d models; Spearman(score, accuracy) %.3f; wrote %s/compare.json, compare.csv, compare.html\n", n, rho, a.out);
    return 0;
}
