/* The demo command: every experiment on one model, then report.html and summary.json. Runs the
 * other commands in-process, one step each, skipping the steps whose output exists. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct demo_args {
    model_args m;
    const char *out;
    int n, threads;
    bool fresh;
} demo_args;

static const arg_opt demo_opts[] = {
    {.name = "out", .type = ARG_PATH, .offset = offsetof(demo_args, out), .meta = "DIR", .def = "idscope-demo",
     .help = "output folder"},
    MODEL_OPTS(demo_args),
    {.name = "n", .type = ARG_INT, .offset = offsetof(demo_args, n), .meta = "N", .min = 1, .max = INT_MAX, .def = "8",
     .help = "images per object pair in swap, steer and depth"},
    THREADS_OPT(demo_args, threads),
    {.name = "fresh", .type = ARG_FLAG, .offset = offsetof(demo_args, fresh), .help = "rerun every step"},
    {0},
};
static const arg_cmd demo_cmd = {
    "demo",
    "Run every experiment on one model (the bundled one by default) and write\n"
    "DIR/report.html and DIR/summary.json: example stimuli, ids extract\n"
    "(per pair) and ids stats, mirror and attribute swapping, belief steering vs noise, steering\n"
    "grids (left/right, above/below), the depth diagnosis, temporal IDs (extract, time-reversal\n"
    "patching, steering), the ID-strength score and the report.\n"
    "Each step's results are kept: an interrupted demo resumes at the first step whose output is\n"
    "missing (--fresh reruns everything). Prints a summary table; summary.json holds ids_r2_best\n"
    "and ids_r2_best_layer, belief_swap_rate_id / _noise (mean of the 3 best layers),\n"
    "mirror_objword_recovery_peak and its layer, temporal_pca_order (Spearman of the temporal IDs'\n"
    "PC1 with the frame at the best layer), temporal_steer_monotonic, score_best_layer, and seconds.\n",
    demo_opts, NULL, NULL};

/* The demo's folders and files, malloc'd. */
typedef struct demo_paths {
    char *stim, *ids, *swap, *steer, *depth, *temp, *f_ids, *f_stats, *f_belief, *f_score, *f_tids, *d_f1, *d_f2;
} demo_paths;

#define DEMO_PATHS(p)                                                                                         \
    {&(p)->stim, &(p)->ids, &(p)->swap, &(p)->steer, &(p)->depth, &(p)->temp, &(p)->f_ids, &(p)->f_stats,         \
     &(p)->f_belief, &(p)->f_score, &(p)->f_tids, &(p)->d_f1, &(p)->d_f2}

static void demo_paths_free(demo_paths *p) {
    char **all[] = DEMO_PATHS(p);
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) free(*all[k]);
}

static int demo_paths_make(demo_paths *p, const char *out) {
    *p = (demo_paths){str_fmt("%s/stimuli", out), str_fmt("%s/ids", out), str_fmt("%s/swap", out),
                      str_fmt("%s/steer", out), str_fmt("%s/depth", out), str_fmt("%s/temporal", out),
                      str_fmt("%s/ids/ids.safetensors", out), str_fmt("%s/ids/stats.json", out),
                      str_fmt("%s/steer/steer-belief.json", out), str_fmt("%s/score.json", out),
                      str_fmt("%s/temporal/temporal.safetensors", out), str_fmt("%s/steer/factor-1", out),
                      str_fmt("%s/steer/factor-2", out)};
    char **all[] = DEMO_PATHS(p);
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        if (!*all[k]) return 1;
    return 0;
}

/* Run one step unless its output (done_file, owned: freed here; NULL: always run) exists; the
 * step's stdout (its CSV echo) is silenced. */
static int demo_step(const char *what, char *done_file, bool fresh, int (*fn)(int, char **), int argc, char **argv) {
    struct stat sb;
    if (!fresh && done_file && stat(done_file, &sb) == 0) {
        char *own;
        fprintf(stderr, "demo: %s: already done (%s)\n", what, path_show(done_file, &own));
        free(own);
        free(done_file);
        return 0;
    }
    free(done_file);
    fprintf(stderr, "demo: %s\n", what);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), devnull = open("/dev/null", O_WRONLY);
    if (saved >= 0 && devnull >= 0) dup2(devnull, STDOUT_FILENO);
    int rc = fn(argc, argv);
    fflush(stdout);
    if (saved >= 0) dup2(saved, STDOUT_FILENO), close(saved);
    if (devnull >= 0) close(devnull);
    if (rc) fprintf(stderr, "demo: %s failed (exit %d); rerun to resume\n", what, rc);
    return rc;
}

static double demo_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every experiment step, in order; stops at the first failure. */
static int demo_steps(const demo_args *a, const demo_paths *p) {
    char n[16], threads[16];
    snprintf(n, sizeof n, "%d", a->n);
    snprintf(threads, sizeof threads, "%d", a->threads);
    const bool fresh = a->fresh;
    int rc = 0;
    /* common model / thread arguments appended to each experiment's argv */
    char *mo[6] = {NULL};
    int nmo = 0;
    mo[nmo++] = "-m", mo[nmo++] = (char *)a->m.model, mo[nmo++] = "--mmproj", mo[nmo++] = (char *)a->m.mmproj;
    if (a->threads) mo[nmo++] = "--threads", mo[nmo++] = threads;
#define ARGV(...) (char *[]){__VA_ARGS__, mo[0], mo[1], mo[2], mo[3], mo[4], mo[5]}
#define NARGS(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)) + nmo)
#define STEP(what, file, fn, ...) \
    if (!rc) rc = demo_step(what, file, fresh, fn, NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))
    if (!rc) rc = demo_step("stimuli (examples of the grid set, with mirrors)", path_join(p->stim, "manifest.json"), fresh,
                            cmd_stimuli, 9, (char *[]){"stimuli", "grid", "--out", p->stim, "--size", "128", "--mirror",
                                                       "--limit", "32"});
    STEP("ids extract (per-pair and universal IDs, every layer)", str_fmt("%s", p->f_ids), cmd_ids, "ids", "extract",
         "--per-pair", "--out", p->ids);
    if (!rc) rc = demo_step("ids stats", str_fmt("%s", p->f_stats), fresh, cmd_ids, 3, (char *[]){"ids", "stats", p->ids});
    STEP("swap (mirror patching per layer and position set)", path_join(p->swap, "swap.json"), cmd_swap, "swap", "--out",
         p->swap, "--n", n);
    STEP("swap --control (attribute patching)", path_join(p->swap, "swap-control.json"), cmd_swap, "swap", "--out", p->swap,
         "--n", n, "--control");
    STEP("steer belief (ID vs noise)", str_fmt("%s", p->f_belief), cmd_steer, "steer", "belief", "--ids", p->f_ids, "--out",
         p->steer, "--n", n);
    /* the same at smaller pushes: a factor sweep (the paper's 5 x the token norm can overshoot a
     * small model's range, where any push of that size flips answers) */
    STEP("steer belief, factor 1", path_join(p->d_f1, "steer-belief.json"), cmd_steer, "steer", "belief", "--ids", p->f_ids,
         "--out", p->d_f1, "--n", n, "--factor", "1");
    STEP("steer belief, factor 2", path_join(p->d_f2, "steer-belief.json"), cmd_steer, "steer", "belief", "--ids", p->f_ids,
         "--out", p->d_f2, "--n", n, "--factor", "2");
    STEP("steer grid (left/right)", path_join(p->steer, "steer-grid-left_right.json"), cmd_steer, "steer", "grid", "--ids",
         p->f_ids, "--out", p->steer, "--n", n);
    STEP("steer grid (above/below)", path_join(p->steer, "steer-grid-above_below.json"), cmd_steer, "steer", "grid",
         "--ids", p->f_ids, "--out", p->steer, "--n", n, "--relation", "above-below");
    STEP("steer grid (near/far)", path_join(p->steer, "steer-grid-near_far.json"), cmd_steer, "steer", "grid", "--ids",
         p->f_ids, "--out", p->steer, "--n", n, "--relation", "near-far");
    STEP("steer grid (between)", path_join(p->steer, "steer-grid-between.json"), cmd_steer, "steer", "grid", "--ids",
         p->f_ids, "--out", p->steer, "--n", n, "--relation", "between");
    STEP("depth diagnosis", path_join(p->depth, "depth.json"), cmd_depth, "depth", "--ids", p->f_ids, "--out", p->depth,
         "--n", n);
    STEP("temporal extract (temporal IDs from 8-frame videos)", path_join(p->temp, "temporal.safetensors"), cmd_temporal,
         "temporal", "extract", "--out", p->temp);
    STEP("temporal swap (time-reversal patching)", path_join(p->temp, "temporal-swap.json"), cmd_temporal, "temporal",
         "swap", "--out", p->temp, "--n", n);
    STEP("temporal steer (T[f] - T[T-f] at the subject word)", path_join(p->temp, "temporal-steer.json"), cmd_temporal,
         "temporal", "steer", "--ids", p->f_tids, "--out", p->temp, "--n", n);
#undef STEP
#undef NARGS
#undef ARGV
    if (!rc) rc = demo_step("score", NULL, true, cmd_score, 7,
                            (char *[]){"score", "--stats", p->f_stats, "--steer", p->f_belief, "-o", p->f_score});
    if (!rc) rc = demo_step("report", NULL, true, cmd_report, 2, (char *[]){"report", (char *)a->out});
    return rc;
}

static cJSON *demo_json(const char *dir, const char *name) {
    char *path = path_join(dir, name), *txt = NULL;
    size_t len;
    if (path) txt = read_all(path, &len);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    free(path);
    return j;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The numbers of summary.json, read from the steps' results. */
typedef struct demo_summary {
    double r2_best, mir_peak, sw_id, sw_noise, sw_id_greedy, sw_noise_greedy, tsw_peak, t_order, t_mono, t_best;
    double sweep_factor[3], sweep_id[3], sweep_noise[3], score_layer, score_best, seconds;
    int r2_layer, mir_layer, tsw_layer;
} demo_summary;

/* The peak of "diff" over the rows of set "objects" (swap.json, temporal-swap.json). */
static void objword_peak(const cJSON *j, double *peak, int *layer) {
    const cJSON *it;
    *peak = -INFINITY;
    *layer = -1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "rows")) {
        const cJSON *set = cJSON_GetObjectItem(it, "set");
        double d = jnum(it, "diff");
        if (cJSON_IsString(set) && !strcmp(set->valuestring, "objects") && isfinite(d) && d > *peak)
            *peak = d, *layer = (int)jnum(it, "layer");
    }
}

static void demo_read(const demo_paths *p, const char *out, demo_summary *s) {
    cJSON *stats = demo_json(p->ids, "stats.json"), *belief = demo_json(p->steer, "steer-belief.json"),
          *swap = demo_json(p->swap, "swap.json"), *score = demo_json(out, "score.json"),
          *tj = demo_json(p->temp, "temporal.json"), *tsw = demo_json(p->temp, "temporal-swap.json"),
          *tst = demo_json(p->temp, "temporal-steer.json");
    const cJSON *it;
    s->r2_best = -INFINITY;
    s->r2_layer = -1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(stats, "layers")) {
        double r2 = jnum(it, "r2");
        if (isfinite(r2) && r2 > s->r2_best) s->r2_best = r2, s->r2_layer = (int)jnum(it, "layer");
    }
    objword_peak(swap, &s->mir_peak, &s->mir_layer);
    objword_peak(tsw, &s->tsw_peak, &s->tsw_layer);
    s->sw_id = jnum(belief, "best3_id"), s->sw_noise = jnum(belief, "best3_noise");
    s->sw_id_greedy = jnum(belief, "greedy_best3_id"), s->sw_noise_greedy = jnum(belief, "greedy_best3_noise");
    const char *fdirs[3] = {"factor-1/steer-belief.json", "factor-2/steer-belief.json", "steer-belief.json"};
    for (int k = 0; k < 3; k++) {
        cJSON *bj = demo_json(p->steer, fdirs[k]);
        s->sweep_factor[k] = jnum(bj, "factor");
        s->sweep_id[k] = jnum(bj, "best3_id"), s->sweep_noise[k] = jnum(bj, "best3_noise");
        cJSON_Delete(bj);
    }
    s->t_order = jnum(tj, "pca_order_spearman"), s->t_mono = jnum(tst, "monotonic"), s->t_best = jnum(tj, "best_layer");
    s->score_layer = jnum(score, "best_layer"), s->score_best = jnum(score, "best_score");
    cJSON *all[] = {stats, belief, swap, score, tj, tsw, tst};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) cJSON_Delete(all[k]);
}

/* OUT/summary.json. */
static int demo_write_summary(const char *out, const demo_args *a, const demo_summary *s) {
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "model", a->m.model);
    cJSON_AddStringToObject(sum, "mmproj", a->m.mmproj);
    cJSON_AddNumberToObject(sum, "ids_r2_best", s->r2_layer >= 0 ? s->r2_best : NAN);
    cJSON_AddNumberToObject(sum, "ids_r2_best_layer", s->r2_layer);
    cJSON_AddNumberToObject(sum, "belief_swap_rate_id", s->sw_id);
    cJSON_AddNumberToObject(sum, "belief_swap_rate_noise", s->sw_noise);
    cJSON *sweep = cJSON_AddArrayToObject(sum, "belief_swap_by_factor");
    for (int k = 0; k < 3; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "factor", s->sweep_factor[k]);
        cJSON_AddNumberToObject(e, "id", s->sweep_id[k]);
        cJSON_AddNumberToObject(e, "noise", s->sweep_noise[k]);
        cJSON_AddItemToArray(sweep, e);
    }
    cJSON_AddNumberToObject(sum, "belief_swap_rate_id_greedy", s->sw_id_greedy);
    cJSON_AddNumberToObject(sum, "belief_swap_rate_noise_greedy", s->sw_noise_greedy);
    cJSON_AddNumberToObject(sum, "mirror_objword_recovery_peak", s->mir_layer >= 0 ? s->mir_peak : NAN);
    cJSON_AddNumberToObject(sum, "mirror_objword_recovery_peak_layer", s->mir_layer);
    cJSON_AddNumberToObject(sum, "temporal_pca_order", s->t_order);
    cJSON_AddNumberToObject(sum, "temporal_pca_best_layer", s->t_best);
    cJSON_AddNumberToObject(sum, "temporal_steer_monotonic", s->t_mono);
    cJSON_AddNumberToObject(sum, "temporal_objword_recovery_peak", s->tsw_layer >= 0 ? s->tsw_peak : NAN);
    cJSON_AddNumberToObject(sum, "temporal_objword_recovery_peak_layer", s->tsw_layer);
    cJSON_AddNumberToObject(sum, "score_best_layer", s->score_layer);
    cJSON_AddNumberToObject(sum, "score_best", s->score_best);
    cJSON_AddNumberToObject(sum, "seconds", round(s->seconds * 10) / 10);
    char *js = cJSON_Print(sum);
    out_file fs = {0};
    int rc = js ? out_open(&fs, out, "summary.json") : 1;
    if (!rc) fprintf(fs.f, "%s\n", js);
    rc |= out_close(&fs, !rc);
    free(js);
    cJSON_Delete(sum);
    return rc;
}

static void demo_print(const char *out, const char *model, const demo_summary *s) {
    char *own_m, *own_o;
    printf("idscope demo: %s\n", path_show(model, &own_m));
    printf("  %-44s %8.3f  (layer %d)\n", "ID linearity R^2, best layer", s->r2_best, s->r2_layer);
    printf("  %-44s %8.3f\n", "belief swap rate, ID (best 3, factor 5)", s->sw_id);
    printf("  %-44s %8.3f\n", "belief swap rate, noise (best 3, factor 5)", s->sw_noise);
    for (int k = 0; k < 2; k++)
        printf("  %-44s %8.3f  (noise %.3f)\n", k ? "  the same at factor 2: ID" : "  the same at factor 1: ID",
               s->sweep_id[k], s->sweep_noise[k]);
    printf("  %-44s %8.3f  (layer %d)\n", "mirror recovery at object words, peak", s->mir_peak, s->mir_layer);
    printf("  %-44s %8.3f  (layer %d)\n", "temporal IDs: PCA order (Spearman)", s->t_order, (int)s->t_best);
    printf("  %-44s %8.3f\n", "temporal steering: monotonic layers", s->t_mono);
    printf("  %-44s %8.3f  (layer %d)\n", "time reversal at object words, peak", s->tsw_peak, s->tsw_layer);
    printf("  %-44s %8.0f\n", "seconds", s->seconds);
    const char *dir = path_show(out, &own_o);
    printf("wrote %s/report.html and %s/summary.json\n", dir, dir);
    free(own_m);
    free(own_o);
}

int cmd_demo(int argc, char **argv) {
    demo_args a = {0};
    int rc = args_parse(&demo_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    rc = model_resolve("demo", &a.m);
    struct stat sb;
    if (!rc && (stat(a.m.model, &sb) != 0 || stat(a.m.mmproj, &sb) != 0)) {
        fprintf(stderr, "idscope demo: model not found: %s / %s (give -m and --mmproj, or set IDSCOPE_MODELS)\n",
                a.m.model, a.m.mmproj);
        rc = 1;
    }
    if (!rc && mkdir(a.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "idscope demo: cannot create %s: %s\n", a.out, strerror(errno));
        rc = 1;
    }
    const double t0 = demo_now();
    demo_paths p = {0};
    if (!rc) rc = demo_paths_make(&p, a.out);
    if (!rc) rc = demo_steps(&a, &p);
    if (!rc) {
        demo_summary s;
        demo_read(&p, a.out, &s);
        s.seconds = demo_now() - t0;
        rc = demo_write_summary(a.out, &a, &s);
        demo_print(a.out, a.m.model, &s);
    }
    demo_paths_free(&p);
    model_args_free(&a.m);
    return rc;
}
