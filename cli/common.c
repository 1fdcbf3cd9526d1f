/* Helpers shared by the idscope commands (see common.h). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int fail(const ids_err *err) {
    fprintf(stderr, "idscope: error: %s\n", err->msg);
    return 1;
}

int fail_oom(void) {
    fprintf(stderr, "idscope: error: out of memory\n");
    return 1;
}

char *str_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        fail_oom();
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *path_join(const char *dir, const char *name) { return str_fmt("%s/%s", dir, name); }

const char *path_show(const char *path, char **own) {
    *own = realpath(path, NULL);
    return *own ? *own : path;
}

char *read_all(const char *path, size_t *len) {
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

/* The folder of the running executable, malloc'd, or NULL. */
static char *exe_dir(void) {
    for (size_t cap = 256; cap <= (1u << 20); cap *= 2) {
        char *b = malloc(cap);
        if (!b) return NULL;
        ssize_t k = readlink("/proc/self/exe", b, cap);
        if (k <= 0) {
            free(b);
            return NULL;
        }
        if ((size_t)k < cap) {
            b[k] = 0;
            char *sl = strrchr(b, '/');
            if (sl) *sl = 0;
            return b;
        }
        free(b);
    }
    return NULL;
}

/* The folder holding tiny-llava/: $IDSCOPE_MODELS, else models/ two levels above the executable
 * (build/release/idscope) when the model is there, else ./models. malloc'd, NULL on failure. */
static char *models_dir(void) {
    const char *env = getenv("IDSCOPE_MODELS");
    if (env && *env) return str_fmt("%s", env);
    /* a checkout's build/release/idscope, then an installed PREFIX/bin/idscope */
    static const char *const beside[] = {"../../models", "../share/idscope/models"};
    char *exe = exe_dir(), *base = NULL;
    for (size_t i = 0; exe && !base && i < sizeof beside / sizeof *beside; i++) {
        char *cand = str_fmt("%s/%s/tiny-llava/text.gguf", exe, beside[i]);
        struct stat sb;
        if (cand && stat(cand, &sb) == 0) base = str_fmt("%s/%s", exe, beside[i]);
        free(cand);
    }
    free(exe);
    return base ? base : str_fmt("models");
}

/* A malloc'd path, absolute and without . and .. when the file exists. */
static char *normalised(char *path) {
    char *r = path ? realpath(path, NULL) : NULL;
    if (!r) return path;
    free(path);
    return r;
}

int model_resolve(const char *cmd, model_args *m) {
    if (m->model && m->mmproj) return 0;
    if (m->model && ids_hf_is_dir(m->model)) return 0; /* a Hugging Face folder holds both parts */
    if (m->model || m->mmproj) return args_usage(cmd, "%s", "give both -m and --mmproj, or neither");
    char *base = models_dir();
    if (!base) return 1;
    m->own_model = normalised(str_fmt("%s/tiny-llava/text.gguf", base));
    m->own_mmproj = normalised(str_fmt("%s/tiny-llava/mmproj.gguf", base));
    free(base);
    if (!m->own_model || !m->own_mmproj) return 1;
    m->model = m->own_model;
    m->mmproj = m->own_mmproj;
    return 0;
}

void model_args_free(model_args *m) {
    free(m->own_model);
    free(m->own_mmproj);
    m->own_model = m->own_mmproj = NULL;
}

static int g_argc;
static char **g_argv;
static const char *const *g_parts;
static int g_n_parts;

void cli_set_command_line(int argc, char **argv) { g_argc = argc, g_argv = argv; }
void cli_set_merge_parts(const char *const *parts, int n) { g_parts = parts, g_n_parts = n; }

/* The value of the command's --out option (NULL: none, or not given). */
static const char *out_option(const arg_cmd *spec, const void *vals) {
    for (const arg_opt *o = spec->opts; o->name; o++)
        if (!strcmp(o->name, "out") && o->type == ARG_PATH) return *(const char *const *)((const char *)vals + o->offset);
    return NULL;
}

/* x's items folder, command line (without --shard and --out) and merge parts. */
static int exp_items(const arg_cmd *spec, const void *vals, ids_exp *x, exp_env *e) {
    x->items_dir = out_option(spec, vals);
    x->parts = g_parts, x->n_parts = g_n_parts;
    if (!(e->command_line = calloc((size_t)g_argc + 1, sizeof *e->command_line))) return fail_oom();
    int n = 0;
    for (int i = 0; i < g_argc; i++) {
        const char *a = g_argv[i];
        if (!strcmp(a, "--")) { /* the rest are positional */
            while (i < g_argc) e->command_line[n++] = g_argv[i++];
            break;
        }
        if (!strcmp(a, "--shard") || !strcmp(a, "--out")) i++;
        else if (strncmp(a, "--shard=", 8) && strncmp(a, "--out=", 6)) e->command_line[n++] = a;
    }
    x->command_line = e->command_line, x->n_command_line = n;
    return 0;
}

int exp_prepare(const arg_cmd *spec, const void *vals, ids_exp *x, exp_env *e) {
    *e = (exp_env){0};
    if (x->shard.count > 0 && g_n_parts > 0) return args_usage(spec->name, "%s", "--shard cannot be merged again");
    return exp_items(spec, vals, x, e);
}

void exp_shard_note(const ids_exp *x, const char *out) {
    char *own;
    const char *dir = path_show(out, &own);
    fprintf(stderr, "shard %d/%d: wrote %s/items.bin and %s/part.json ('idscope merge' joins the shards)\n", x->shard.index,
            x->shard.count, dir, dir);
    free(own);
}

int exp_open(const arg_cmd *spec, const void *vals, model_args *m, const char *objects, ids_exp *x, exp_env *e) {
    *e = (exp_env){0};
    if (x && x->shard.count > 0 && g_n_parts > 0) return args_usage(spec->name, "%s", "--shard cannot be merged again");
    if (x && exp_items(spec, vals, x, e)) return 1;
    if (x && x->instruction && x->no_instruction)
        return args_usage(spec->name, "%s", "give --instruction TEXT or --no-instruction, not both");
    if (x && x->set_dir && objects)
        return args_usage(spec->name, "%s", "--objects and --set exclude each other (a set's records name their objects)");
    int rc = model_resolve(spec->name, m);
    if (rc) return rc;
    if ((rc = args_check_model(spec, vals, m->model)) != ARGS_GO) return rc;
    if (!(e->cat = ids_catalog_new())) return fail_oom();
    if (objects && (rc = parse_objects(spec->name, e->cat, objects, e->objs, &e->n_objs))) return rc;
    ids_err err;
    if (ids_vlm_load(&e->v, m->model, m->mmproj, &err)) return fail(&err);
    return 0;
}

void exp_close(exp_env *e, model_args *m) {
    free(e->command_line);
    ids_vlm_free(e->v);
    ids_catalog_free(e->cat);
    *e = (exp_env){0};
    model_args_free(m);
}

int parse_objects(const char *cmd, const ids_catalog *cat, const char *list, int *objs, int *n) {
    char *buf = str_fmt("%s", list), *save = NULL;
    ids_err err;
    int rc = buf ? 0 : 1;
    *n = 0;
    for (char *t = buf ? strtok_r(buf, ",", &save) : NULL; t && !rc; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (*n == 16) rc = args_bad(cmd, "--objects", list, "names more than 16 objects");
        else if ((objs[*n] = ids_catalog_find(cat, t, &err)) < 0) rc = fail(&err);
        else (*n)++;
    }
    free(buf);
    return rc;
}

/* Progress of one phase (a `what`): when it started, when it was last shown. */
static struct {
    char what[64];
    double t0, shown;
    long done;
    int tty; /* 1: stderr is a terminal, 0: a file or pipe, -1: not asked yet */
} prog = {.tty = -1};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1:05" / "12 s" */
static void fmt_secs(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0f s", s);
    else snprintf(buf, n, "%d:%02d", (int)(s / 60), (int)s % 60);
}

void print_progress(const char *what, long done, long total, void *user) {
    (void)user;
    if (args_quiet()) return;
    if (prog.tty < 0) {
        const char *term = getenv("TERM");
        prog.tty = isatty(STDERR_FILENO) && !(term && !strcmp(term, "dumb"));
    }
    const double t = now_s();
    if (strncmp(prog.what, what, sizeof prog.what - 1) || done < prog.done) { /* a new phase */
        snprintf(prog.what, sizeof prog.what, "%s", what);
        prog.t0 = prog.shown = t;
    }
    prog.done = done;
    const bool end = done >= total;
    const double el = t - prog.t0, rate = el > 0 ? (double)done / el : 0;
    char eta[16], took[16];
    fmt_secs(rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
    fmt_secs(el, took, sizeof took);
    if (prog.tty) { /* a bar redrawn in place, at most 10 times a second */
        if (!end && t - prog.shown < 0.1 && done > 0) return;
        prog.shown = t;
        const int width = 24, fill = total > 0 ? (int)((double)width * (double)done / (double)total) : width;
        fprintf(stderr, "\r\033[K%s [%.*s%*s] %ld/%ld", what, fill, "########################", width - fill, "", done, total);
        if (end) fprintf(stderr, " in %s\n", took);
        else if (done > 0) fprintf(stderr, "  %.2f/s  ETA %s", rate, eta);
        fflush(stderr);
    } else if (end) { /* a log: one line every few seconds, and one at the end */
        fprintf(stderr, "%s: %ld/%ld done in %s\n", what, done, total, took);
    } else if (t - prog.shown >= 5) {
        prog.shown = t;
        fprintf(stderr, "%s: %ld/%ld (%.0f%%), %.2f/s, about %s left\n", what, done, total,
                total > 0 ? 100.0 * (double)done / (double)total : 0, rate, eta);
    }
}

const arg_choice precision_choices[] = {{"f32", IDS_PREC_F32}, {"bf16", IDS_PREC_BF16}, {"int8", IDS_PREC_INT8}, {0}};
