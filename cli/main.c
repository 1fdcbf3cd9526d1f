/* The idscope command-line tool. Uses only the public API; the only place that exits.
 * Exit codes: 0 success, 1 runtime failure (bad file, missing tensor, ...), 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"
#include "commands.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *g_prog = "idscope";

static int usage_error(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "%s %s: ", g_prog, cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s %s --help'.\n", g_prog, cmd);
    return EXIT_USAGE;
}

/* A result file DIR/NAME, written to DIR/NAME.tmp and renamed into place by out_close, so that a
 * reader never sees half a file. */
typedef struct out_file {
    FILE *f;
    char path[1200], tmp[1216];
} out_file;

static int out_open(out_file *o, const char *dir, const char *name) {
    mkdir(dir, 0755);
    snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
    o->f = fopen(o->tmp, "w");
    if (o->f) return 0;
    fprintf(stderr, "%s: error: %s: cannot write: %s\n", g_prog, o->tmp, strerror(errno));
    return 1;
}

/* Close and rename into place when ok, else remove; returns 1 on any failure. */
static int out_close(out_file *o, bool ok) {
    if (!o->f) return 1;
    bool bad = ferror(o->f) != 0;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (ok && !bad && rename(o->tmp, o->path) == 0) return 0;
    if (ok) fprintf(stderr, "%s: error: %s: cannot write: %s\n", g_prog, o->path, strerror(errno));
    unlink(o->tmp);
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Shared helpers                                                                            */

static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap) {
            if (ferror(f)) {
                free(b);
                b = NULL;
            }
            break;
        }
        char *nb = realloc(b, cap * 2);
        if (!nb) free(b);
        b = nb;
        cap *= 2;
    }
    if (f != stdin) fclose(f);
    if (b) {
        b[n] = 0;
        *len = n;
    }
    return b;
}

static void default_model(char *text, char *mmproj, size_t n) {
    const char *env = getenv("IDSCOPE_MODELS");
    char base[900] = "models";
    if (env && *env) {
        snprintf(base, sizeof base, "%s", env);
    } else {
        char exe[800];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k > 0) {
            exe[k] = 0;
            char *sl = strrchr(exe, '/');
            if (sl) *sl = 0;
            char cand[900];
            snprintf(cand, sizeof cand, "%s/../../models/tiny-llava/text.gguf", exe);
            FILE *f = fopen(cand, "rb");
            if (f) {
                fclose(f);
                snprintf(base, sizeof base, "%s/../../models", exe);
            }
        }
    }
    snprintf(text, n, "%s/tiny-llava/text.gguf", base);
    snprintf(mmproj, n, "%s/tiny-llava/mmproj.gguf", base);
}

/* Shared by the experiment commands: the model pair (the bundled one unless both are given) and an
 * object list. Return 0 or the exit code after printing the error. */
static int resolve_model(const char *cmd, const char **model, const char **mmproj, char *tp, char *mp, size_t n) {
    if (*model && *mmproj) return 0;
    if (*model || *mmproj) return usage_error(cmd, "%s", "give both -m and --mmproj, or neither");
    default_model(tp, mp, n);
    *model = tp;
    *mmproj = mp;
    return 0;
}


/* ---------------------------------------------------------------------------------------- */
/* demo                                                                                       */

static const char *HELP_DEMO =
    "usage: idscope demo [--out DIR] [-m TEXT.gguf --mmproj MMPROJ.gguf] [--n N] [--threads N] [--fresh]\n"
    "\n"
    "Run every experiment on one model (the bundled one by default) and write\n"
    "DIR/report.html and DIR/summary.json (default DIR: idscope-demo): example stimuli, ids extract\n"
    "(per pair) and ids stats, mirror and attribute swapping, belief steering vs noise, steering\n"
    "grids (left/right, above/below), the depth diagnosis, temporal IDs (extract, time-reversal\n"
    "patching, steering), the ID-strength score and the report.\n"
    "Each step's results are kept: an interrupted demo resumes at the first step whose output is\n"
    "missing (--fresh reruns everything). Prints a summary table; summary.json holds ids_r2_best\n"
    "and ids_r2_best_layer, belief_swap_rate_id / _noise (mean of the 3 best layers),\n"
    "mirror_objword_recovery_peak and its layer, temporal_pca_order (Spearman of the temporal IDs'\n"
    "PC1 with the frame at the best layer), temporal_steer_monotonic, score_best_layer, and seconds.\n"
    "\n"
    "  --n N   images per object pair in swap, steer and depth (default 8)\n";

/* Run one step unless its output exists; the step's stdout (its CSV echo) is silenced. */
static int demo_step(const char *what, const char *done_file, bool fresh, int (*fn)(int, char **), int argc,
                     char **argv) {
    struct stat sb;
    if (!fresh && done_file && stat(done_file, &sb) == 0) {
        fprintf(stderr, "demo: %s: already done (%s)\n", what, done_file);
        return 0;
    }
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

static cJSON *demo_json(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *txt = read_all(path, &len);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    return j;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int cmd_demo(int argc, char **argv) {
    const char *out = "idscope-demo", *model = NULL, *mmproj = NULL, *n = "8", *threads = NULL;
    bool fresh = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_DEMO, stdout);
            return 0;
        } else if (!strcmp(a, "--fresh")) {
            fresh = true;
            continue;
        }
        if (i + 1 >= argc) return usage_error("demo", "%s needs a value (or is unknown)", a);
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--mmproj")) mmproj = v;
        else if (!strcmp(a, "--n") || !strcmp(a, "--threads")) {
            long x = strtol(v, &end, 10);
            if (*end || x < 1) return usage_error("demo", "bad number '%s'", v);
            if (a[2] == 'n') n = v;
            else threads = v;
        } else {
            return usage_error("demo", "unknown argument '%s'", a);
        }
    }
    if (strlen(out) > 900) return usage_error("demo", "%s", "--out: folder name too long");
    char tp[1000], mp[1000];
    int rc = resolve_model("demo", &model, &mmproj, tp, mp, sizeof tp);
    if (rc) return rc;
    struct stat sb;
    if (stat(model, &sb) != 0 || stat(mmproj, &sb) != 0) {
        fprintf(stderr, "%s demo: model not found: %s / %s (give -m and --mmproj, or set IDSCOPE_MODELS)\n", g_prog,
                model, mmproj);
        return 1;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s demo: cannot create %s: %s\n", g_prog, out, strerror(errno));
        return 1;
    }
    const double t0 = demo_now();
    char d_stim[1100], d_ids[1100], d_swap[1100], d_steer[1100], d_depth[1100], d_temp[1100], f_ids[1100], f_stats[1100],
        f_belief[1100], f_score[1100], f_tids[1200], done[1200];
    snprintf(d_stim, sizeof d_stim, "%.900s/stimuli", out);
    snprintf(d_ids, sizeof d_ids, "%.900s/ids", out);
    snprintf(d_swap, sizeof d_swap, "%.900s/swap", out);
    snprintf(d_steer, sizeof d_steer, "%.900s/steer", out);
    snprintf(d_depth, sizeof d_depth, "%.900s/depth", out);
    snprintf(d_temp, sizeof d_temp, "%.900s/temporal", out);
    snprintf(f_ids, sizeof f_ids, "%.900s/ids/ids.safetensors", out);
    snprintf(f_stats, sizeof f_stats, "%.900s/ids/stats.json", out);
    snprintf(f_belief, sizeof f_belief, "%.900s/steer/steer-belief.json", out);
    snprintf(f_score, sizeof f_score, "%.900s/score.json", out);
    /* common model / thread arguments appended to each experiment's argv */
    char *mo[6] = {NULL};
    int nmo = 0;
    mo[nmo++] = "-m", mo[nmo++] = (char *)model, mo[nmo++] = "--mmproj", mo[nmo++] = (char *)mmproj;
    if (threads) mo[nmo++] = "--threads", mo[nmo++] = (char *)threads;
#define ARGV(...) (char *[]){__VA_ARGS__, mo[0], mo[1], mo[2], mo[3], mo[4], mo[5]}
#define NARGS(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)) + nmo)
#define STEP(what, file, fn, ...) \
    if (!rc) rc = demo_step(what, file, fresh, fn, NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))
    snprintf(done, sizeof done, "%s/manifest.json", d_stim);
    if (!rc) rc = demo_step("stimuli (examples of the grid set, with mirrors)", done, fresh, cmd_stimuli, 9,
                            (char *[]){"stimuli", "grid", "--out", d_stim, "--size", "128", "--mirror", "--limit", "32"});
    STEP("ids extract (per-pair and universal IDs, every layer)", f_ids, cmd_ids, "ids", "extract", "--per-pair", "--out", d_ids);
    if (!rc) rc = demo_step("ids stats", f_stats, fresh, cmd_ids, 3, (char *[]){"ids", "stats", d_ids});
    snprintf(done, sizeof done, "%s/swap.json", d_swap);
    STEP("swap (mirror patching per layer and position set)", done, cmd_swap, "swap", "--out", d_swap, "--n", (char *)n);
    snprintf(done, sizeof done, "%s/swap-control.json", d_swap);
    STEP("swap --control (attribute patching)", done, cmd_swap, "swap", "--out", d_swap, "--n", (char *)n, "--control");
    STEP("steer belief (ID vs noise)", f_belief, cmd_steer, "steer", "belief", "--ids", f_ids, "--out", d_steer, "--n",
         (char *)n);
    /* the same at smaller pushes: a factor sweep (the paper's 5 x the token norm can overshoot a
     * small model's range, where any push of that size flips answers) */
    char d_f1[1200], d_f2[1200], f_f1[1300], f_f2[1300];
    snprintf(d_f1, sizeof d_f1, "%s/factor-1", d_steer);
    snprintf(d_f2, sizeof d_f2, "%s/factor-2", d_steer);
    snprintf(f_f1, sizeof f_f1, "%s/steer-belief.json", d_f1);
    snprintf(f_f2, sizeof f_f2, "%s/steer-belief.json", d_f2);
    STEP("steer belief, factor 1", f_f1, cmd_steer, "steer", "belief", "--ids", f_ids, "--out", d_f1, "--n", (char *)n,
         "--factor", "1");
    STEP("steer belief, factor 2", f_f2, cmd_steer, "steer", "belief", "--ids", f_ids, "--out", d_f2, "--n", (char *)n,
         "--factor", "2");
    snprintf(done, sizeof done, "%s/steer-grid-left_right.json", d_steer);
    STEP("steer grid (left/right)", done, cmd_steer, "steer", "grid", "--ids", f_ids, "--out", d_steer, "--n", (char *)n);
    snprintf(done, sizeof done, "%s/steer-grid-above_below.json", d_steer);
    STEP("steer grid (above/below)", done, cmd_steer, "steer", "grid", "--ids", f_ids, "--out", d_steer, "--n", (char *)n,
         "--relation", "above-below");
    snprintf(done, sizeof done, "%s/steer-grid-near_far.json", d_steer);
    STEP("steer grid (near/far)", done, cmd_steer, "steer", "grid", "--ids", f_ids, "--out", d_steer, "--n", (char *)n,
         "--relation", "near-far");
    snprintf(done, sizeof done, "%s/steer-grid-between.json", d_steer);
    STEP("steer grid (between)", done, cmd_steer, "steer", "grid", "--ids", f_ids, "--out", d_steer, "--n", (char *)n,
         "--relation", "between");
    snprintf(done, sizeof done, "%s/depth.json", d_depth);
    STEP("depth diagnosis", done, cmd_depth, "depth", "--ids", f_ids, "--out", d_depth, "--n", (char *)n);
    snprintf(done, sizeof done, "%s/temporal.safetensors", d_temp);
    STEP("temporal extract (temporal IDs from 8-frame videos)", done, cmd_temporal, "temporal", "extract", "--out", d_temp);
    snprintf(done, sizeof done, "%s/temporal-swap.json", d_temp);
    STEP("temporal swap (time-reversal patching)", done, cmd_temporal, "temporal", "swap", "--out", d_temp, "--n", (char *)n);
    snprintf(f_tids, sizeof f_tids, "%s/temporal.safetensors", d_temp);
    snprintf(done, sizeof done, "%s/temporal-steer.json", d_temp);
    STEP("temporal steer (T[f] - T[T-f] at the subject word)", done, cmd_temporal, "temporal", "steer", "--ids", f_tids,
         "--out", d_temp, "--n", (char *)n);
#undef STEP
#undef NARGS
#undef ARGV
    if (!rc) rc = demo_step("score", NULL, true, cmd_score, 7,
                            (char *[]){"score", "--stats", f_stats, "--steer", f_belief, "-o", f_score});
    if (!rc) rc = demo_step("report", NULL, true, cmd_report, 2, (char *[]){"report", (char *)out});
    if (rc) return rc;
    /* summary */
    cJSON *stats = demo_json(d_ids, "stats.json"), *belief = demo_json(d_steer, "steer-belief.json"),
          *swap = demo_json(d_swap, "swap.json"), *score = demo_json(out, "score.json"),
          *tj = demo_json(d_temp, "temporal.json"), *tsw = demo_json(d_temp, "temporal-swap.json"),
          *tst = demo_json(d_temp, "temporal-steer.json");
    double r2_best = -INFINITY, mir_peak = -INFINITY;
    int r2_layer = -1, mir_layer = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(stats, "layers")) {
        double r2 = jnum(it, "r2");
        if (isfinite(r2) && r2 > r2_best) r2_best = r2, r2_layer = (int)jnum(it, "layer");
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(swap, "rows")) {
        const cJSON *set = cJSON_GetObjectItem(it, "set");
        double d = jnum(it, "diff");
        if (cJSON_IsString(set) && !strcmp(set->valuestring, "objects") && isfinite(d) && d > mir_peak)
            mir_peak = d, mir_layer = (int)jnum(it, "layer");
    }
    const double sw_id = jnum(belief, "best3_id"), sw_noise = jnum(belief, "best3_noise");
    double tsw_peak = -INFINITY;
    int tsw_layer = -1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(tsw, "rows")) {
        const cJSON *set = cJSON_GetObjectItem(it, "set");
        double d = jnum(it, "diff");
        if (cJSON_IsString(set) && !strcmp(set->valuestring, "objects") && isfinite(d) && d > tsw_peak)
            tsw_peak = d, tsw_layer = (int)jnum(it, "layer");
    }
    const double t_order = jnum(tj, "pca_order_spearman"), t_mono = jnum(tst, "monotonic");
    const double seconds = demo_now() - t0;
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "model", model);
    cJSON_AddStringToObject(sum, "mmproj", mmproj);
    cJSON_AddNumberToObject(sum, "ids_r2_best", r2_layer >= 0 ? r2_best : NAN);
    cJSON_AddNumberToObject(sum, "ids_r2_best_layer", r2_layer);
    cJSON_AddNumberToObject(sum, "belief_swap_rate_id", sw_id);
    cJSON_AddNumberToObject(sum, "belief_swap_rate_noise", sw_noise);
    cJSON *sweep = cJSON_AddArrayToObject(sum, "belief_swap_by_factor");
    const char *fdirs[3] = {"factor-1/steer-belief.json", "factor-2/steer-belief.json", "steer-belief.json"};
    double sweep_id[3], sweep_noise[3];
    for (int k = 0; k < 3; k++) {
        cJSON *bj = demo_json(d_steer, fdirs[k]), *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "factor", jnum(bj, "factor"));
        cJSON_AddNumberToObject(e, "id", jnum(bj, "best3_id"));
        cJSON_AddNumberToObject(e, "noise", jnum(bj, "best3_noise"));
        cJSON_AddItemToArray(sweep, e);
        sweep_id[k] = jnum(bj, "best3_id"), sweep_noise[k] = jnum(bj, "best3_noise");
        cJSON_Delete(bj);
    }
    cJSON_AddNumberToObject(sum, "belief_swap_rate_id_greedy", jnum(belief, "greedy_best3_id"));
    cJSON_AddNumberToObject(sum, "belief_swap_rate_noise_greedy", jnum(belief, "greedy_best3_noise"));
    cJSON_AddNumberToObject(sum, "mirror_objword_recovery_peak", mir_layer >= 0 ? mir_peak : NAN);
    cJSON_AddNumberToObject(sum, "mirror_objword_recovery_peak_layer", mir_layer);
    cJSON_AddNumberToObject(sum, "temporal_pca_order", t_order);
    cJSON_AddNumberToObject(sum, "temporal_pca_best_layer", jnum(tj, "best_layer"));
    cJSON_AddNumberToObject(sum, "temporal_steer_monotonic", t_mono);
    cJSON_AddNumberToObject(sum, "temporal_objword_recovery_peak", tsw_layer >= 0 ? tsw_peak : NAN);
    cJSON_AddNumberToObject(sum, "temporal_objword_recovery_peak_layer", tsw_layer);
    cJSON_AddNumberToObject(sum, "score_best_layer", jnum(score, "best_layer"));
    cJSON_AddNumberToObject(sum, "score_best", jnum(score, "best_score"));
    cJSON_AddNumberToObject(sum, "seconds", round(seconds * 10) / 10);
    char *js = cJSON_Print(sum);
    out_file fs = {0};
    rc = js ? out_open(&fs, out, "summary.json") : 1;
    if (!rc) fprintf(fs.f, "%s\n", js);
    rc |= out_close(&fs, !rc);
    free(js);
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", out);
    printf("idscope demo: %s\n", model);
    printf("  %-44s %8.3f  (layer %d)\n", "ID linearity R^2, best layer", r2_best, r2_layer);
    printf("  %-44s %8.3f\n", "belief swap rate, ID (best 3, factor 5)", sw_id);
    printf("  %-44s %8.3f\n", "belief swap rate, noise (best 3, factor 5)", sw_noise);
    for (int k = 0; k < 2; k++)
        printf("  %-44s %8.3f  (noise %.3f)\n", k ? "  the same at factor 2: ID" : "  the same at factor 1: ID", sweep_id[k],
               sweep_noise[k]);
    printf("  %-44s %8.3f  (layer %d)\n", "mirror recovery at object words, peak", mir_peak, mir_layer);
    printf("  %-44s %8.3f  (layer %d)\n", "temporal IDs: PCA order (Spearman)", t_order, (int)jnum(tj, "best_layer"));
    printf("  %-44s %8.3f\n", "temporal steering: monotonic layers", t_mono);
    printf("  %-44s %8.3f  (layer %d)\n", "time reversal at object words, peak", tsw_peak, tsw_layer);
    printf("  %-44s %8.0f\n", "seconds", seconds);
    printf("wrote %s/report.html and %s\n", out, path);
    cJSON_Delete(stats);
    cJSON_Delete(belief);
    cJSON_Delete(swap);
    cJSON_Delete(score);
    cJSON_Delete(tj);
    cJSON_Delete(tsw);
    cJSON_Delete(tst);
    cJSON_Delete(sum);
    return rc;
}

static const char *HELP_MAIN =
    "idscope " IDS_VERSION_STRING " - find, test and steer spatial and temporal IDs in VLMs\n"
    "\n"
    "usage: idscope COMMAND [options]      (idscope COMMAND --help for each)\n"
    "\n"
    "commands:\n"
    "  info      header, metadata and tensor table of a GGUF file\n"
    "  tensor    dequantize one tensor of a GGUF file to a float32 .npy\n"
    "  tokenize  tokenize text with a model's tokenizer\n"
    "  capture   run prompt + image(s) and save activations (safetensors)\n"
    "  ask       a VLM's greedy answer and the log-probabilities of chosen answers\n"
    "  stimuli   synthetic scenes and videos with ground truth (grid, depth, nearfar, between, video)\n"
    "  train     train the tiny default VLM from a config\n"
    "  eval      accuracy of a VLM on fresh stimuli, per task\n"
    "  ids       spatial IDs: ids extract, ids stats\n"
    "  swap      mirror / attribute swapping by activation patching, per layer and position set\n"
    "  steer     steering with IDs: steer belief (vs noise), steer grid (every target cell)\n"
    "  depth     depth diagnosis: vertical ID steering read by above/below and front/behind\n"
    "  score     ID-strength score per layer (linearity x consistency x causal effect)\n"
    "  report    self-contained HTML report of a results folder\n"
    "  temporal  temporal IDs in videos: temporal extract, temporal swap, temporal steer\n"
    "  demo      every experiment on the bundled model: report.html and summary.json\n"
    "\n"
    "exit status: 0 success, 1 failure (bad input file, missing tensor...), 2 usage error\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(HELP_MAIN, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(HELP_MAIN, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("idscope %s\n", IDS_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "tensor")) return cmd_tensor(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "capture")) return cmd_capture(argc - 1, argv + 1);
    if (!strcmp(cmd, "ask")) return cmd_ask(argc - 1, argv + 1);
    if (!strcmp(cmd, "stimuli")) return cmd_stimuli(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "ids")) return cmd_ids(argc - 1, argv + 1);
    if (!strcmp(cmd, "swap")) return cmd_swap(argc - 1, argv + 1);
    if (!strcmp(cmd, "steer")) return cmd_steer(argc - 1, argv + 1);
    if (!strcmp(cmd, "depth")) return cmd_depth(argc - 1, argv + 1);
    if (!strcmp(cmd, "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "temporal")) return cmd_temporal(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo")) return cmd_demo(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n\n", g_prog, cmd);
    fputs(HELP_MAIN, stderr);
    return EXIT_USAGE;
}
