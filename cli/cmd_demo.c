/* The demo command: ids_demo_run (every experiment on one model, then report.html and summary.json;
 * a step is skipped only when its stored result's provenance matches the request) and its table. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct demo_args {
    model_args m;
    const char *out;
    int n, threads, precision;
    ids_exp x; /* the instruction options */
    bool fresh;
} demo_args;

static const arg_opt demo_opts[] = {
    {.name = "out", .type = ARG_PATH, .offset = offsetof(demo_args, out), .meta = "DIR", .def = "idscope-demo",
     .help = "output folder"},
    MODEL_OPTS(demo_args),
    {.name = "n", .type = ARG_INT, .offset = offsetof(demo_args, n), .meta = "N", .min = 1, .max = INT_MAX, .def = "8",
     .help = "images per object pair in swap, steer and depth"},
    THREADS_OPT(demo_args, threads), PRECISION_OPT(demo_args, precision), INSTRUCTION_OPTS(demo_args, x),
    {.name = "fresh", .type = ARG_FLAG, .offset = offsetof(demo_args, fresh), .help = "rerun every step"},
    {0},
};
static const arg_cmd demo_cmd = {
    "demo",
    "Run every experiment on one model (the bundled one by default) and write\n"
    "DIR/report.html and DIR/summary.json: example stimuli, ids extract\n"
    "(per pair) and ids stats, mirror and attribute swapping (objects recoloured, and the paper's hue\n"
    "shift), belief steering vs noise, steering grids (left/right, above/below, near/far, between,\n"
    "and the paper's mirrored pairs), the depth diagnosis, temporal IDs (extract, time-reversal\n"
    "patching, steering), the ID-strength score and the report.\n"
    "The bundled model is a positive control, in which the location is put on the object words by an\n"
    "auxiliary loss during training: its numbers show that the tool works, not that the paper is right.\n"
    "Each step's results are kept with their provenance: a step is skipped only when its result\n"
    "exists and was made by the same request (model files by fingerprint, options, seed, inputs);\n"
    "otherwise it reruns and says which key differed, so an interrupted demo resumes and a demo over\n"
    "another model's folder reruns what that model changes (--fresh reruns everything). Prints a\n"
    "summary table; summary.json holds ids_r2_best\n"
    "and ids_r2_best_layer, belief_swap_rate_id / _noise (mean of the 3 best layers) and\n"
    "belief_swap_items (the images they count),\n"
    "mirror_objword_recovery_peak and its layer, temporal_pca_order (Spearman of the temporal IDs'\n"
    "PC1 with the frame at the best layer), temporal_steer_monotonic, score_best_layer, seconds (the\n"
    "time of every step, also of those done before), steps_run, steps_skipped and the provenance.\n",
    demo_opts, NULL, NULL};

static void demo_say(const char *msg, void *user) { fprintf(stderr, "%s\n", msg); }

static void demo_print(const char *out, const char *model, const ids_demo_summary *s) {
    char *own_m, *own_o;
    printf("idscope demo: %s\n", path_show(model, &own_m));
    if (s->positive_control) printf("  %s\n", IDS_POSITIVE_CONTROL_NOTE);
#define CI(a) (a)[0], (a)[1]
    printf("  %-44s %8.3f  [%.3f, %.3f]  (layer %d; null %.3f, q95 %.3f)\n", "ID linearity R^2, best layer", s->ids_r2_best,
           CI(s->ids_r2_best_ci), s->ids_r2_best_layer, s->ids_r2_null_mean, s->ids_r2_null_q95);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (of %d images)\n", "belief swap rate, ID (best 3, factor 5)", s->belief_swap_rate_id,
           CI(s->belief_swap_rate_id_ci), s->belief_swap_items);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (of %d images)\n", "belief swap rate, noise (best 3, factor 5)",
           s->belief_swap_rate_noise, CI(s->belief_swap_rate_noise_ci), s->belief_swap_items);
    for (int k = 0; k < 2; k++)
        printf("  %-44s %8.3f  [%.3f, %.3f]  (noise %.3f [%.3f, %.3f])\n",
               k ? "  the same at factor 2: ID" : "  the same at factor 1: ID", s->sweep_id[k], CI(s->sweep_id_ci[k]),
               s->sweep_noise[k], CI(s->sweep_noise_ci[k]));
    printf("  %-44s %8.3f  [%.3f, %.3f]  (ID push %.3f, noise %.3f)\n", "accuracy without steering", s->belief_accuracy[0],
           CI(s->belief_accuracy_ci[0]), s->belief_accuracy[1], s->belief_accuracy[2]);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (layer %d)\n", "mirror recovery at object words, peak", s->mirror_objword_recovery_peak,
           CI(s->mirror_objword_recovery_peak_ci), s->mirror_objword_recovery_peak_layer);
    static const char *const dq[2] = {"depth: vertical ID on above/below", "depth: vertical ID on front/behind"};
    for (int q = 0; q < 2; q++)
        printf("  %-44s %8.3f  [%.3f, %.3f]  (random %.3f, orthogonal %.3f)\n", dq[q], s->depth_effect[0][q],
               CI(s->depth_effect_ci[0][q]), s->depth_effect[1][q], s->depth_effect[2][q]);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (wrong %.3f [%.3f, %.3f]; Mann-Whitney p %.3g)\n", "deviation from the ID, right",
           s->deviation_right, CI(s->deviation_right_ci), s->deviation_wrong, CI(s->deviation_wrong_ci), s->deviation_mw_p);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (random boxes %.3f [%.3f, %.3f])\n", "masking: change of D, object blurred",
           s->mask_d_change[0], CI(s->mask_d_change_ci[0]), s->mask_d_change[1], CI(s->mask_d_change_ci[1]));
    printf("  %-44s %8.3f  [%.3f, %.3f]  (layer %d)\n", "temporal IDs: PCA order (Spearman)", s->temporal_pca_order,
           CI(s->temporal_pca_order_ci), s->temporal_pca_best_layer);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (at factor %g; %.3f at 5)\n", "temporal steering: monotonic layers",
           s->temporal_steer_monotonic, CI(s->temporal_steer_monotonic_ci), s->temporal_steer_monotonic_factor, s->tsweep_monotonic[3]);
    printf("  %-44s %8.3f  [%.3f, %.3f]  (layer %d)\n", "time reversal at object words, peak", s->temporal_objword_recovery_peak,
           CI(s->temporal_objword_recovery_peak_ci), s->temporal_objword_recovery_peak_layer);
#undef CI
    printf("  %-44s %8.0f  (%d steps run, %d already done)\n", "seconds", s->seconds, s->steps_run, s->steps_skipped);
    const char *o = path_show(out, &own_o);
    printf("wrote %s/report.html and %s/summary.json\n", o, o);
    free(own_m);
    free(own_o);
}

int cmd_demo(int argc, char **argv) {
    demo_args a = {0};
    int rc = args_parse(&demo_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (a.x.instruction && a.x.no_instruction) return args_usage("demo", "%s", "give --instruction TEXT or --no-instruction, not both");
    rc = model_resolve("demo", &a.m);
    struct stat sb;
    if (!rc && (stat(a.m.model, &sb) != 0 || stat(a.m.mmproj, &sb) != 0)) {
        fprintf(stderr, "idscope demo: model not found: %s / %s (give -m and --mmproj, or set IDSCOPE_MODELS)\n",
                a.m.model, a.m.mmproj);
        rc = 1;
    }
    if (!rc) {
        const ids_demo_opts o = {.out_dir = a.out, .model = a.m.model, .mmproj = a.m.mmproj, .n_items = a.n,
                                 .n_threads = a.threads, .precision = (ids_precision)a.precision, .instruction = a.x.instruction,
                                 .no_instruction = a.x.no_instruction, .fresh = a.fresh, .progress = print_progress, .say = demo_say};
        ids_demo_summary s;
        ids_err err;
        if (ids_demo_run(&o, &s, &err)) rc = fail(&err);
        else demo_print(a.out, a.m.model, &s);
    }
    model_args_free(&a.m);
    return rc;
}
