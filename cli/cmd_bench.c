/* idscope bench prefill: tokens/s and GFLOP/s of a prefill on a GGUF decoder, and with --compare the
 * same file through llama.cpp's llama-bench in the same run, with the ratio. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_args {
    const char *model, *compare;
    int tokens, threads, reps, precision, rounds;
    bool json;
} bench_args;

enum { MAX_ROUNDS = 20 };

/* The figures of every round: idscope's best run, and llama-bench's rate (with --compare). */
typedef struct {
    int n;
    double ours[MAX_ROUNDS], llama[MAX_ROUNDS];
} rounds_t;

static const arg_opt prefill_opts[] = {
    {.name = "model", .short_name = 'm', .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(bench_args, model),
     .meta = "TEXT.gguf", .help = "the decoder GGUF to time"},
    {.name = "tokens", .type = ARG_INT, .offset = offsetof(bench_args, tokens), .meta = "N", .min = 1, .max = 65536,
     .def = "640", .help = "prompt length (pseudo-random tokens)"},
    THREADS_OPT(bench_args, threads),
    {.name = "reps", .type = ARG_INT, .offset = offsetof(bench_args, reps), .meta = "R", .min = 1, .max = 100,
     .def = "3", .help = "runs; the best counts"},
    PRECISION_OPT(bench_args, precision),
    {.name = "json", .type = ARG_FLAG, .offset = offsetof(bench_args, json), .help = "one JSON object on stdout"},
    {.name = "compare", .type = ARG_PATH, .offset = offsetof(bench_args, compare), .meta = "LLAMA_BENCH",
     .help = "also run this llama-bench binary on the same file (-p N -n 0 -t THREADS -r 3) and print the ratio"},
    {.name = "rounds", .type = ARG_INT, .offset = offsetof(bench_args, rounds), .meta = "K", .min = 1,
     .max = MAX_ROUNDS, .def = "1", .help = "repeat the timing (and llama-bench) K times, in turns; the best of each "
     "counts (on a machine whose speed drifts, both get the same chances)"},
    {0},
};
static const arg_cmd prefill_cmd = {
    "bench prefill",
    "Time a prefill of N pseudo-random tokens through the whole decoder of TEXT.gguf (best of R runs)\n"
    "and print tokens/s and GFLOP/s (the matrix products of every block, causal attention and the last\n"
    "row's logits), with the CPU and the instruction sets detected at run time. --compare runs\n"
    "llama.cpp's llama-bench on the same file, threads and prompt length in the same run and prints the\n"
    "ratio idscope / llama.cpp. A warm-up run comes before the timed runs (as llama-bench does); it packs\n"
    "the model's weights for the kernels (kept for the later runs: see IDSCOPE_PACK_MB in\n"
    "docs/PRECISION.md) and is printed apart with the packed size. --rounds K repeats the timed runs and\n"
    "llama-bench K times in turns and keeps the best of each.\n",
    prefill_opts, NULL, NULL};

/* Run llama-bench on the same file; its prompt-processing rate in tokens/s, or a negative value
 * after a message. No shell: the arguments go to execv as they are. */
static double llama_bench(const char *bin, const char *model, int tokens, int threads) {
    char p[16], t[16];
    snprintf(p, sizeof p, "%d", tokens);
    snprintf(t, sizeof t, "%d", threads);
    char *const argv[] = {(char *)bin, "-m", (char *)model, "-p", p, "-n", "0", "-t", t, "-r", "3", "-o", "json", NULL};
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (ssize_t k; buf && (k = read(fd[0], buf + n, cap - 1 - n)) > 0;) {
        n += (size_t)k;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    double rate = -1;
    if (buf && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        buf[n] = 0;
        cJSON *j = cJSON_Parse(buf), *row, *ts;
        cJSON_ArrayForEach(row, j) if (cJSON_IsNumber(ts = cJSON_GetObjectItem(row, "avg_ts"))) rate = ts->valuedouble;
        cJSON_Delete(j);
    }
    if (rate < 0)
        fprintf(stderr, "idscope bench prefill: %s gave no prompt-processing rate (exit %d)\n", bin,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    free(buf);
    return rate;
}

static void print_text(const bench_args *a, const char *model, const ids_hparams *hp, const ids_bench_result *r,
                       const char *cpu, const char *flags, double llama, const rounds_t *rd) {
    printf("CPU: %s (%s)\n", cpu, *flags ? flags : "no vector extensions detected");
    printf("model: %s (%s, %d blocks, n_embd %d, n_ff %d, %d heads)\n", model, hp->arch, hp->n_layer, hp->n_embd,
           hp->n_ff, hp->n_head);
    char runs[48];
    if (rd->n > 1) snprintf(runs, sizeof runs, "%d runs in each of %d rounds", r->reps, rd->n);
    else snprintf(runs, sizeof runs, "%d", r->reps);
    printf("prefill of %d tokens, %d threads, precision %s (kernels %s), best of %s: %.3f s, %.1f tokens/s, "
           "%.1f GFLOP/s\n", r->n_tokens, r->n_threads, ids_precision_name(r->precision), r->kernels, runs,
           r->seconds, r->tokens_per_s, r->gflops);
    if (r->reps > 1)
        printf("mean of the %d timed runs%s: %.1f tokens/s\n", r->reps, rd->n > 1 ? " (the highest round)" : "",
               r->mean_tokens_per_s);
    printf("first run %.3f s (it packs the weights for the kernels: %.1f MiB packed, context %.1f MiB)\n",
           r->first_seconds, r->packed_bytes / 1048576.0, r->ctx_bytes / 1048576.0);
    for (int k = 0; rd->n > 1 && k < rd->n; k++) {
        printf("round %d: idscope %.1f tokens/s", k + 1, rd->ours[k]);
        if (a->compare) printf(", llama.cpp %.1f tokens/s, ratio %.2f", rd->llama[k], rd->ours[k] / rd->llama[k]);
        printf("\n");
    }
    if (a->compare && llama > 0) {
        printf("llama.cpp (llama-bench -p %d -n 0 -t %d -r 3%s): %.1f tokens/s\n", r->n_tokens, r->n_threads,
               rd->n > 1 ? ", the best round" : "", llama);
        printf("ratio idscope / llama.cpp: %.2f (idscope's best run; its mean: %.2f)\n", r->tokens_per_s / llama,
               r->mean_tokens_per_s / llama);
    }
}

/* o[key] = the rounds' figures as an array; false when out of memory (o owns what was added) */
static bool add_rounds(cJSON *o, const char *key, const double *v, int n) {
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    for (int k = 0; arr && k < n; k++) {
        cJSON *x = cJSON_CreateNumber(v[k]);
        if (!x || !cJSON_AddItemToArray(arr, x)) {
            cJSON_Delete(x);
            return false;
        }
    }
    return arr != NULL;
}

static int print_json(const bench_args *a, const char *model, const ids_bench_result *r, const char *cpu,
                      const char *flags, double llama, const rounds_t *rd) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "model", model) && cJSON_AddNumberToObject(o, "tokens", r->n_tokens) &&
              cJSON_AddNumberToObject(o, "seconds", r->seconds) && cJSON_AddNumberToObject(o, "tokens_per_s", r->tokens_per_s) &&
              cJSON_AddNumberToObject(o, "gflops", r->gflops) &&
              cJSON_AddNumberToObject(o, "mean_tokens_per_s", r->mean_tokens_per_s) &&
              cJSON_AddNumberToObject(o, "first_seconds", r->first_seconds) &&
              cJSON_AddNumberToObject(o, "packed_bytes", (double)r->packed_bytes) &&
              cJSON_AddNumberToObject(o, "context_bytes", (double)r->ctx_bytes) &&
              cJSON_AddStringToObject(o, "precision", ids_precision_name(r->precision)) &&
              cJSON_AddStringToObject(o, "kernels", r->kernels) &&
              cJSON_AddNumberToObject(o, "threads", r->n_threads) && cJSON_AddNumberToObject(o, "reps", r->reps) &&
              cJSON_AddStringToObject(o, "cpu", cpu) && cJSON_AddStringToObject(o, "cpu_flags", flags) &&
              cJSON_AddStringToObject(o, "version", ids_version()) && cJSON_AddStringToObject(o, "build", ids_build_source()) &&
              cJSON_AddNumberToObject(o, "rounds", rd->n) &&
              add_rounds(o, "round_tokens_per_s", rd->ours, rd->n);
    if (ok && a->compare && llama > 0)
        ok = cJSON_AddNumberToObject(o, "llama_cpp_tokens_per_s", llama) &&
             cJSON_AddNumberToObject(o, "ratio", r->tokens_per_s / llama) &&
             cJSON_AddNumberToObject(o, "ratio_of_means", r->mean_tokens_per_s / llama) &&
             add_rounds(o, "round_llama_cpp_tokens_per_s", rd->llama, rd->n);
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    cJSON_Delete(o);
    return txt ? 0 : fail_oom();
}

static int run_prefill(const arg_cmd *spec, int argc, char **argv) {
    bench_args a = {0};
    int rc = args_parse(spec, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (a.compare && access(a.compare, X_OK) != 0)
        return args_bad(spec->name, "--compare", a.compare, "is not an executable file (%s)", strerror(errno));
    ids_model *m = NULL;
    ids_err err;
    if (ids_model_load(&m, a.model, &err)) return fail(&err);
    char cpu[256], flags[256], *own;
    ids_cpu_describe(cpu, sizeof cpu, flags, sizeof flags);
    ids_bench_result r, best = {0};
    rounds_t rd = {0};
    rc = 0;
    double llama = -1;
    for (int k = 0; !rc && k < a.rounds; k++) {
        if (!args_quiet()) {
            fprintf(stderr, "bench prefill: %d tokens, a warm-up run and the best of %d", a.tokens, a.reps);
            if (a.rounds > 1) fprintf(stderr, " (round %d of %d)", k + 1, a.rounds);
            fprintf(stderr, " ...\n");
        }
        if (ids_bench_prefill(m, a.tokens, a.threads, a.reps, (ids_precision)a.precision, &r, &err)) {
            rc = fail(&err);
            break;
        }
        /* the best run of all rounds, the first round's warm-up (it packed), the highest round mean (as the
         * highest of llama-bench's means is kept) */
        const double first = k ? best.first_seconds : r.first_seconds;
        const double mean = k && best.mean_tokens_per_s > r.mean_tokens_per_s ? best.mean_tokens_per_s : r.mean_tokens_per_s;
        if (k == 0 || r.tokens_per_s > best.tokens_per_s) best = r;
        best.first_seconds = first, best.mean_tokens_per_s = mean;
        rd.ours[rd.n] = r.tokens_per_s;
        if (a.compare) {
            if (!args_quiet()) fprintf(stderr, "bench prefill: %s on the same file ...\n", a.compare);
            if ((rd.llama[rd.n] = llama_bench(a.compare, a.model, a.tokens, r.n_threads)) < 0) rc = 1;
            if (rd.llama[rd.n] > llama) llama = rd.llama[rd.n];
        }
        rd.n++;
    }
    const char *shown = path_show(a.model, &own);
    if (!rc && a.json) rc = print_json(&a, shown, &best, cpu, flags, llama, &rd);
    else if (!rc) print_text(&a, shown, ids_model_hparams(m), &best, cpu, flags, llama, &rd);
    free(own);
    ids_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    static const arg_sub subs[] = {{"prefill", &prefill_cmd, run_prefill}, {0}};
    return args_family("bench", subs, argc, argv);
}
