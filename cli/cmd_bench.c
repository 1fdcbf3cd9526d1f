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
    int tokens, threads, reps, precision;
    bool json;
} bench_args;

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
    {0},
};
static const arg_cmd prefill_cmd = {
    "bench prefill",
    "Time a prefill of N pseudo-random tokens through the whole decoder of TEXT.gguf (best of R runs)\n"
    "and print tokens/s and GFLOP/s (the matrix products of every block, causal attention and the last\n"
    "row's logits), with the CPU and the instruction sets detected at run time. --compare runs\n"
    "llama.cpp's llama-bench on the same file, threads and prompt length in the same run and prints the\n"
    "ratio idscope / llama.cpp. The first run packs the model's weights for the kernels (kept for the\n"
    "later runs: see IDSCOPE_PACK_MB in docs/PRECISION.md); it is printed apart with the packed size.\n",
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
                       const char *cpu, const char *flags, double llama) {
    printf("CPU: %s (%s)\n", cpu, *flags ? flags : "no vector extensions detected");
    printf("model: %s (%s, %d blocks, n_embd %d, n_ff %d, %d heads)\n", model, hp->arch, hp->n_layer, hp->n_embd,
           hp->n_ff, hp->n_head);
    printf("prefill of %d tokens, %d threads, precision %s (kernels %s), best of %d: %.3f s, %.1f tokens/s, "
           "%.1f GFLOP/s\n", r->n_tokens, r->n_threads, ids_precision_name(r->precision), r->kernels, r->reps,
           r->seconds, r->tokens_per_s, r->gflops);
    printf("first run %.3f s (it packs the weights for the kernels: %.1f MiB packed, context %.1f MiB)\n",
           r->first_seconds, r->packed_bytes / 1048576.0, r->ctx_bytes / 1048576.0);
    if (a->compare && llama > 0) {
        printf("llama.cpp (llama-bench -p %d -n 0 -t %d -r 3): %.1f tokens/s\n", r->n_tokens, r->n_threads, llama);
        printf("ratio idscope / llama.cpp: %.2f\n", r->tokens_per_s / llama);
    }
}

static int print_json(const bench_args *a, const char *model, const ids_bench_result *r, const char *cpu,
                      const char *flags, double llama) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "model", model) && cJSON_AddNumberToObject(o, "tokens", r->n_tokens) &&
              cJSON_AddNumberToObject(o, "seconds", r->seconds) && cJSON_AddNumberToObject(o, "tokens_per_s", r->tokens_per_s) &&
              cJSON_AddNumberToObject(o, "gflops", r->gflops) &&
              cJSON_AddNumberToObject(o, "first_seconds", r->first_seconds) &&
              cJSON_AddNumberToObject(o, "packed_bytes", (double)r->packed_bytes) &&
              cJSON_AddNumberToObject(o, "context_bytes", (double)r->ctx_bytes) &&
              cJSON_AddStringToObject(o, "precision", ids_precision_name(r->precision)) &&
              cJSON_AddStringToObject(o, "kernels", r->kernels) &&
              cJSON_AddNumberToObject(o, "threads", r->n_threads) && cJSON_AddNumberToObject(o, "reps", r->reps) &&
              cJSON_AddStringToObject(o, "cpu", cpu) && cJSON_AddStringToObject(o, "cpu_flags", flags) &&
              cJSON_AddStringToObject(o, "version", ids_version()) && cJSON_AddStringToObject(o, "build", ids_build_source());
    if (ok && a->compare && llama > 0)
        ok = cJSON_AddNumberToObject(o, "llama_cpp_tokens_per_s", llama) &&
             cJSON_AddNumberToObject(o, "ratio", r->tokens_per_s / llama);
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
    fprintf(stderr, "bench prefill: %d tokens, best of %d ...\n", a.tokens, a.reps);
    ids_bench_result r;
    rc = ids_bench_prefill(m, a.tokens, a.threads, a.reps, (ids_precision)a.precision, &r, &err) ? fail(&err) : 0;
    double llama = -1;
    if (!rc && a.compare) {
        fprintf(stderr, "bench prefill: %s on the same file ...\n", a.compare);
        if ((llama = llama_bench(a.compare, a.model, a.tokens, r.n_threads)) < 0) rc = 1;
    }
    const char *shown = path_show(a.model, &own);
    if (!rc && a.json) rc = print_json(&a, shown, &r, cpu, flags, llama);
    else if (!rc) print_text(&a, shown, ids_model_hparams(m), &r, cpu, flags, llama);
    free(own);
    ids_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    static const arg_sub subs[] = {{"prefill", &prefill_cmd, run_prefill}, {0}};
    return args_family("bench", subs, argc, argv);
}
