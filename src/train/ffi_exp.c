/* The flat API of the experiments and the stimulus engine (train.h, "Flat API of the experiments"):
 * an experiment named as its command, options as (key, value) strings with the command's defaults,
 * and a result handle holding the result's files and its arrays. In the last library layer because
 * eval is one of the experiments. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/train.h"
#include "base/internal.h"
#include "engine/ffi.h"
#include "exp/exp_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the result handle -------------------------------------------------------------------- */

typedef struct ffi_array {
    char name[48];
    int dtype, ndim;
    long long shape[IDS_FFI_MAX_DIMS];
    void *data;
} ffi_array;

typedef struct ffi_file {
    char *name, *data;
    size_t len;
} ffi_file;

struct ids_ffi_result {
    char *json;          /* the main JSON file's text (a stimulus: its annotations) */
    ffi_array *arr;
    int n_arr, cap_arr;
    ffi_file *files;
    int n_files, cap_files;
};

#define keep ids__ffi_keep

void ids_ffi_result_free(ids_ffi_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_arr; i++) free(r->arr[i].data);
    for (int i = 0; i < r->n_files; i++) free(r->files[i].name), free(r->files[i].data);
    free(r->arr);
    free(r->files);
    free(r->json);
    free(r);
}

static const size_t dtype_size[] = {4, 1, 1, 4, 8}; /* IDS_FFI_F32, U8, I8, I32, F64 */

/* A copy of n elements of src as array `name` (src NULL: the array is left out). */
static ids_status add_array(ids_ffi_result *r, const char *name, int dtype, int ndim, const long long *shape, const void *src,
                            ids_err *err) {
    if (!src) return IDS_OK;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d] > 0 ? (size_t)shape[d] : 0;
    if (r->n_arr == r->cap_arr) {
        const int cap = r->cap_arr ? 2 * r->cap_arr : 16;
        ffi_array *a = ids__realloc(r->arr, sizeof *a * (size_t)cap);
        if (!a) return ids__err(err, IDS_ERR_NOMEM, "result: out of memory for array %s", name);
        r->arr = a, r->cap_arr = cap;
    }
    ffi_array *a = &r->arr[r->n_arr];
    *a = (ffi_array){.dtype = dtype, .ndim = ndim};
    snprintf(a->name, sizeof a->name, "%s", name);
    for (int d = 0; d < ndim; d++) a->shape[d] = shape[d];
    if (!(a->data = ids__malloc(n * dtype_size[dtype] + 1)))
        return ids__err(err, IDS_ERR_NOMEM, "result: out of memory for array %s", name);
    if (n) memcpy(a->data, src, n * dtype_size[dtype]);
    r->n_arr++;
    return IDS_OK;
}
#define SHAPE(...) ((const long long[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((const long long[]){__VA_ARGS__}) / sizeof(long long)))
#define ADD(r, name, dt, src, ...) add_array(r, name, dt, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__), src, err)

int ids_ffi_result_n_arrays(const ids_ffi_result *r) { return r ? r->n_arr : 0; }

ids_status ids_ffi_result_array(const ids_ffi_result *r, int i, const char **name, int *dtype, int *ndim, long long *shape,
                                const void **data) {
    ids_err err = {0};
    if (!r || i < 0 || i >= r->n_arr)
        return keep(ids__err(&err, IDS_ERR_RANGE, "result: array %d of %d", i, r ? r->n_arr : 0), &err);
    const ffi_array *a = &r->arr[i];
    *name = a->name, *dtype = a->dtype, *ndim = a->ndim, *data = a->data;
    for (int d = 0; d < IDS_FFI_MAX_DIMS; d++) shape[d] = d < a->ndim ? a->shape[d] : 0;
    return IDS_OK;
}

const char *ids_ffi_result_json(const ids_ffi_result *r) { return r && r->json ? r->json : ""; }
int ids_ffi_result_n_files(const ids_ffi_result *r) { return r ? r->n_files : 0; }

ids_status ids_ffi_result_file(const ids_ffi_result *r, int i, const char **name, const char **data, long long *len) {
    ids_err err = {0};
    if (!r || i < 0 || i >= r->n_files)
        return keep(ids__err(&err, IDS_ERR_RANGE, "result: file %d of %d", i, r ? r->n_files : 0), &err);
    *name = r->files[i].name, *data = r->files[i].data, *len = (long long)r->files[i].len;
    return IDS_OK;
}

ids_status ids_ffi_result_write(const ids_ffi_result *r, const char *dir) {
    ids_err err = {0};
    if (!r || !dir || !*dir) return keep(ids__err(&err, IDS_ERR_ARG, "result write: no folder"), &err);
    if (!r->n_files) return keep(ids__err(&err, IDS_ERR_ARG, "result write: this result has no files"), &err);
    ids_status st = ids__mkdir_p(dir, &err);
    for (int i = 0; !st && i < r->n_files; i++) {
        char *path = ids__path_join(dir, r->files[i].name);
        const void *parts[1] = {r->files[i].data};
        const size_t sizes[1] = {r->files[i].len};
        st = path ? ids__write_atomic(path, parts, sizes, 1, &err) : ids__err(&err, IDS_ERR_NOMEM, "result write: out of memory");
        free(path);
    }
    return keep(st, &err);
}

/* ---- files: the writers' output, read back from a private folder --------------------------- */

/* Read every regular file of dir into r (sorted by name), then remove them and dir. */
static ids_status slurp_and_remove(ids_ffi_result *r, const char *dir, ids_err *err) {
    struct dirent **ents = NULL;
    const int n = scandir(dir, &ents, NULL, alphasort);
    ids_status st = n < 0 ? ids__err(err, IDS_ERR_IO, "%s: cannot list (%s)", dir, strerror(errno)) : IDS_OK;
    for (int i = 0; i < n; i++) {
        char *path = ids__path_join(dir, ents[i]->d_name);
        struct stat sb;
        if (path && !st && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (r->n_files == r->cap_files) {
                const int cap = r->cap_files ? 2 * r->cap_files : 8;
                ffi_file *f = ids__realloc(r->files, sizeof *f * (size_t)cap);
                if (f) r->files = f, r->cap_files = cap;
                else st = ids__err(err, IDS_ERR_NOMEM, "result: out of memory");
            }
            ffi_file *f = st ? NULL : &r->files[r->n_files];
            if (f && !(f->name = ids__strdup(ents[i]->d_name))) st = ids__err(err, IDS_ERR_NOMEM, "result: out of memory");
            else if (f && (st = ids__read_file(path, &f->data, &f->len, err))) free(f->name);
            else if (f) r->n_files++;
        } else if (!path && !st) {
            st = ids__err(err, IDS_ERR_NOMEM, "result: out of memory");
        }
        if (path && strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) unlink(path);
        free(path);
        free(ents[i]);
    }
    free(ents);
    rmdir(dir);
    return st;
}

/* A private folder for a writer's files (malloc'd path). */
static ids_status temp_dir(char **out, ids_err *err) {
    const char *base = getenv("TMPDIR");
    char *t = ids__path_join(base && *base ? base : "/tmp", "idscope-ffi-XXXXXX");
    if (!t) return ids__err(err, IDS_ERR_NOMEM, "result: out of memory");
    if (!mkdtemp(t)) {
        ids_status st = ids__err(err, IDS_ERR_IO, "%s: cannot make a temporary folder (%s)", t, strerror(errno));
        free(t);
        return st;
    }
    *out = t;
    return IDS_OK;
}

/* The text of the first .json file as r->json. */
static ids_status from_files(ids_ffi_result *r, ids_err *err) {
    for (int i = 0; !r->json && i < r->n_files; i++) {
        const ffi_file *f = &r->files[i];
        const size_t nl = strlen(f->name);
        if (nl > 5 && !strcmp(f->name + nl - 5, ".json") && !(r->json = ids__strdup(f->data)))
            return ids__err(err, IDS_ERR_NOMEM, "result: out of memory");
    }
    return IDS_OK;
}

/* ---- options ------------------------------------------------------------------------------- */

enum {
    C_EXTRACT, C_SWAP, C_BELIEF, C_GRID, C_DEPTH, C_DEVIATION, C_MASK, C_COMPARE, C_TEXTRACT, C_TSWAP, C_TSTEER, C_EVAL,
    C_STIMULI, C_COUNT
};
static const char *const cmd_names[C_COUNT] = {"ids extract", "swap", "steer belief", "steer grid", "depth", "deviation",
                                               "mask", "compare", "temporal extract", "temporal swap", "temporal steer",
                                               "eval", "stimuli"};
#define B(c) (1u << (c))
#define MODEL_CMDS (B(C_EXTRACT) | B(C_SWAP) | B(C_BELIEF) | B(C_GRID) | B(C_DEPTH) | B(C_DEVIATION) | B(C_MASK) | \
                    B(C_TEXTRACT) | B(C_TSWAP) | B(C_TSTEER) | B(C_EVAL))
#define EXP_CMDS (MODEL_CMDS & ~B(C_EVAL))
#define STEER_CMDS (B(C_BELIEF) | B(C_GRID) | B(C_DEPTH))
#define TEMP_CMDS (B(C_TEXTRACT) | B(C_TSWAP) | B(C_TSTEER))

#define MAX_DIRS 8
typedef struct vals {
    uint64_t seed;
    int threads, precision, n, grid, image_size, greedy, variant, layer, random, frames, source, relation, task, held, limit,
        repeats;
    float factor, radius, jitter, size_jitter, rotate, near_threshold;
    bool no_instruction, per_pair, control, hue, raw, holdout, all_pairs, mirror, recolor, mp4;
    const char *instruction, *objects, *set, *ids, *mvbench, *videos, *kind;
    int layers[2];
    float sizes[16], bg[3];
    int n_sizes, n_bg;
    const char *dirs[MAX_DIRS];
    int n_dirs;
} vals;

typedef enum { T_INT, T_U64, T_FLOAT, T_FLAG, T_STR, T_LAYERS, T_FLOATS, T_DIRS, T_CHOICE } opt_type;
typedef struct choice {
    const char *name;
    int value;
} choice;
typedef struct opt {
    const char *name;
    opt_type type;
    size_t off;
    double lo, hi;
    unsigned cmds;
    const choice *choices;
    int max_n; /* T_FLOATS: most values (exactly, when negative) */
} opt;

static const choice precisions[] = {{"f32", IDS_PREC_F32}, {"bf16", IDS_PREC_BF16}, {"int8", IDS_PREC_INT8}, {0}};
static const choice belief_rels[] = {{"left-right", IDS_REL_LEFT_RIGHT}, {"above-below", IDS_REL_ABOVE_BELOW}, {0}};
static const choice grid_rels[] = {{"left-right", IDS_REL_LEFT_RIGHT}, {"above-below", IDS_REL_ABOVE_BELOW},
                                   {"near-far", IDS_REL_NEAR_FAR}, {"between", IDS_REL_BETWEEN}, {0}};
static const choice variants[] = {{"ours", IDS_GRID_OURS}, {"paper", IDS_GRID_PAPER}, {0}};
#define EVAL_ALL (-1)
static const choice tasks[] = {{"left-right", IDS_TASK_LEFT_RIGHT}, {"above-below", IDS_TASK_ABOVE_BELOW},
                               {"front-behind", IDS_TASK_FRONT_BEHIND}, {"near-far", IDS_TASK_NEAR_FAR},
                               {"before-after", IDS_TASK_BEFORE_AFTER}, {"all", EVAL_ALL}, {0}};
static const choice helds[] = {{"only", 1}, {"exclude", 0}, {"all", -1}, {0}};

#define O(nm, ty, f, l, h, c) {nm, ty, offsetof(vals, f), l, h, c, NULL, 0}
#define OC(nm, f, c, ch) {nm, T_CHOICE, offsetof(vals, f), 0, 0, c, ch, 0}
static const opt opts[] = {
    O("seed", T_U64, seed, 0, 9.2e18, MODEL_CMDS | B(C_STIMULI)),
    O("threads", T_INT, threads, 0, 256, MODEL_CMDS),
    OC("precision", precision, MODEL_CMDS, precisions),
    O("instruction", T_STR, instruction, 0, 0, EXP_CMDS),
    O("no-instruction", T_FLAG, no_instruction, 0, 0, EXP_CMDS),
    O("objects", T_STR, objects, 0, 0, EXP_CMDS & ~(B(C_DEVIATION) | B(C_MASK))),
    O("objects", T_STR, objects, 0, 0, B(C_STIMULI)),
    O("set", T_STR, set, 0, 0, B(C_EXTRACT) | STEER_CMDS | B(C_SWAP) | B(C_DEVIATION) | B(C_MASK)),
    O("n", T_INT, n, 1, 2147483647, B(C_EXTRACT) | B(C_SWAP) | B(C_TSWAP) | B(C_TSTEER) | B(C_EVAL)),
    O("n", T_INT, n, 0, 2147483647, STEER_CMDS | B(C_DEVIATION) | B(C_MASK)),
    O("grid", T_INT, grid, 1, 2048, B(C_EXTRACT) | B(C_SWAP) | B(C_STIMULI)),
    O("image-size", T_INT, image_size, 16, 8192, B(C_EXTRACT) | TEMP_CMDS),
    O("size", T_INT, image_size, 16, 8192, B(C_STIMULI)),
    {"sizes", T_FLOATS, offsetof(vals, sizes), 0.05, 1, B(C_EXTRACT) | B(C_STIMULI), NULL, 16},
    O("per-pair", T_FLAG, per_pair, 0, 0, B(C_EXTRACT)),
    O("control", T_FLAG, control, 0, 0, B(C_SWAP)),
    O("hue", T_FLAG, hue, 0, 0, B(C_SWAP)),
    O("ids", T_STR, ids, 0, 0, STEER_CMDS | B(C_DEVIATION) | B(C_TSTEER)),
    OC("relation", relation, B(C_BELIEF), belief_rels),
    OC("relation", relation, B(C_GRID), grid_rels),
    O("factor", T_FLOAT, factor, 0, INFINITY, STEER_CMDS | B(C_TSTEER)),
    O("layers", T_LAYERS, layers, 1, 1e6, STEER_CMDS | B(C_TSTEER)),
    O("greedy", T_INT, greedy, 0, 64, B(C_BELIEF) | B(C_GRID)),
    OC("variant", variant, B(C_GRID), variants),
    O("raw", T_FLAG, raw, 0, 0, B(C_DEPTH)),
    O("holdout-objects", T_FLAG, holdout, 0, 0, STEER_CMDS | B(C_TSTEER)),
    O("layer", T_INT, layer, 0, 100000, B(C_DEVIATION)),
    O("radius", T_FLOAT, radius, 0, 4096, B(C_MASK)),
    O("random", T_INT, random, 1, 256, B(C_MASK)),
    O("frames", T_INT, frames, 3, 64, B(C_TEXTRACT) | B(C_TSWAP) | B(C_STIMULI)),
    O("source", T_INT, source, 0, 63, B(C_TSTEER)),
    O("mvbench", T_STR, mvbench, 0, 0, B(C_TSWAP)),
    O("videos", T_STR, videos, 0, 0, B(C_TSWAP)),
    O("dirs", T_DIRS, dirs, 0, 0, B(C_COMPARE)),
    OC("task", task, B(C_EVAL), tasks),
    OC("held-out", held, B(C_EVAL), helds),
    O("set-kind", T_STR, kind, 0, 0, B(C_STIMULI)),
    O("all-pairs", T_FLAG, all_pairs, 0, 0, B(C_STIMULI)),
    O("jitter", T_FLOAT, jitter, 0, 0.45, B(C_STIMULI)),
    O("size-jitter", T_FLOAT, size_jitter, 0, 0.5, B(C_STIMULI)),
    O("rotate", T_FLOAT, rotate, -INFINITY, INFINITY, B(C_STIMULI)),
    {"bg", T_FLOATS, offsetof(vals, bg), 0, 255, B(C_STIMULI), NULL, -3},
    O("near-threshold", T_FLOAT, near_threshold, -INFINITY, INFINITY, B(C_STIMULI)),
    O("repeats", T_INT, repeats, 0, 1000000000, B(C_STIMULI)),
    O("mirror", T_FLAG, mirror, 0, 0, B(C_STIMULI)),
    O("recolor", T_FLAG, recolor, 0, 0, B(C_STIMULI)),
    O("mp4", T_FLAG, mp4, 0, 0, B(C_STIMULI)),
    O("limit", T_INT, limit, 0, 1000000000, B(C_STIMULI)),
    {0},
};

/* The command's defaults: the CLI's. */
static void vals_default(int c, vals *v) {
    *v = (vals){.seed = 1, .factor = 5, .greedy = 3, .radius = IDS_MASK_RADIUS, .random = IDS_MASK_RANDOM, .held = -1,
                .task = -2, .relation = c == C_BELIEF ? -1 : IDS_REL_LEFT_RIGHT, .near_threshold = 0.35f, .repeats = 10};
    if (c == C_EXTRACT || c == C_SWAP || c == C_STIMULI) v->grid = 4;
    if (c == C_TEXTRACT || c == C_TSWAP || c == C_STIMULI) v->frames = 8;
    if (c == C_TSWAP || c == C_TSTEER) v->n = 8;
    if (c == C_EVAL) v->n = 500;
    if (c == C_STIMULI) v->image_size = 224;
}

/* "lo-hi" or "l" into l[2]. */
static bool parse_layers(const char *s, int *l) {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) return false;
    if (*end == '-') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t) return false;
    }
    if (*end || a < 0 || b < a || b > 1000000) return false;
    l[0] = (int)a, l[1] = (int)b;
    return true;
}

/* Value s of option o into v. */
static ids_status set_opt(int c, const opt *o, const char *s, vals *v, ids_err *err) {
    void *dst = (char *)v + o->off;
    const char *cmd = cmd_names[c];
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case T_INT:
    case T_U64: {
        const double x = o->type == T_INT ? (double)strtoll(s, &end, 10) : (double)strtoull(s, &end, 10);
        if (!*s || *end || errno || x < o->lo || x > o->hi || (o->type == T_U64 && *s == '-'))
            return ids__err(err, IDS_ERR_RANGE, "%s: %s = '%s' is not a whole number in %.0f..%.0f", cmd, o->name, s, o->lo, o->hi);
        if (o->type == T_INT) *(int *)dst = (int)x;
        else *(uint64_t *)dst = strtoull(s, NULL, 10);
        return IDS_OK;
    }
    case T_FLOAT: {
        const double x = strtod(s, &end);
        const bool above = !strcmp(o->name, "factor") || !strcmp(o->name, "radius"); /* lo excluded */
        if (!*s || *end || !(x >= o->lo && x <= o->hi) || (above && x <= o->lo))
            return ids__err(err, IDS_ERR_RANGE, "%s: %s = '%s' is not a number in %g..%g%s", cmd, o->name, s, o->lo, o->hi,
                            above ? " above the lower bound" : "");
        *(float *)dst = (float)x;
        return IDS_OK;
    }
    case T_FLAG:
        if (strcmp(s, "0") && strcmp(s, "1"))
            return ids__err(err, IDS_ERR_ARG, "%s: %s = '%s' is not a flag (0 or 1)", cmd, o->name, s);
        *(bool *)dst = *s == '1';
        return IDS_OK;
    case T_STR: *(const char **)dst = s; return IDS_OK;
    case T_LAYERS:
        if (!parse_layers(s, (int *)dst) || ((int *)dst)[0] < 1)
            return ids__err(err, IDS_ERR_RANGE, "%s: layers = '%s' is not a layer L or a band LO-HI with 1 <= LO <= HI", cmd, s);
        return IDS_OK;
    case T_FLOATS: {
        float *f = dst;
        int *n = o->off == offsetof(vals, sizes) ? &v->n_sizes : &v->n_bg, k = 0;
        const int most = o->max_n < 0 ? -o->max_n : o->max_n;
        for (const char *p = s; *p && k <= most; k++) {
            const double x = strtod(p, &end);
            if (end == p || (*end && *end != ',') || !(x >= o->lo && x <= o->hi) || (o->lo > 0 && x <= 0) || k == most) {
                k = -1;
                break;
            }
            f[k] = (float)x;
            p = *end ? end + 1 : end;
        }
        if (k <= 0 || (o->max_n < 0 && k != most))
            return ids__err(err, IDS_ERR_RANGE, "%s: %s = '%s' is not a list of %s%d numbers in %g..%g", cmd, o->name, s,
                            o->max_n < 0 ? "" : "at most ", most, o->lo, o->hi);
        *n = k;
        return IDS_OK;
    }
    case T_DIRS:
        if (v->n_dirs == MAX_DIRS) return ids__err(err, IDS_ERR_RANGE, "%s: more than %d folders", cmd, MAX_DIRS);
        v->dirs[v->n_dirs++] = s;
        return IDS_OK;
    case T_CHOICE:
        for (const choice *ch = o->choices; ch->name; ch++)
            if (!strcmp(ch->name, s)) return *(int *)dst = ch->value, IDS_OK;
        char list[256] = "";
        for (const choice *ch = o->choices; ch->name; ch++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", ch == o->choices ? "" : ", ", ch->name);
        return ids__err(err, IDS_ERR_ARG, "%s: %s = '%s' is not one of %s", cmd, o->name, s, list);
    }
    return IDS_OK;
}

/* The command's options from (key, value) pairs; keys may spell '-' as '_'. */
static ids_status parse_opts(int c, int n, const char *const *keys, const char *const *values, vals *v, ids_err *err) {
    vals_default(c, v);
    for (int i = 0; i < n; i++) {
        char key[64];
        if (!keys[i] || !values[i]) return ids__err(err, IDS_ERR_ARG, "%s: option %d has no name or value", cmd_names[c], i);
        snprintf(key, sizeof key, "%s", keys[i]);
        for (char *p = key; *p; p++)
            if (*p == '_') *p = '-';
        const opt *o = opts;
        while (o->name && !(!strcmp(o->name, key) && (o->cmds & B(c)))) o++;
        if (!o->name) {
            char list[768] = "";
            for (const opt *q = opts; q->name; q++)
                if ((q->cmds & B(c)) && strlen(list) + strlen(q->name) + 3 < sizeof list)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", q->name);
            return ids__err(err, IDS_ERR_ARG, "%s: unknown option '%s' (options: %s)", cmd_names[c], keys[i], list);
        }
        ids_status st = set_opt(c, o, values[i], v, err);
        if (st) return st;
    }
    if (v->instruction && v->no_instruction)
        return ids__err(err, IDS_ERR_ARG, "%s: give instruction or no_instruction, not both", cmd_names[c]);
    if (v->set && v->objects)
        return ids__err(err, IDS_ERR_ARG, "%s: objects and set exclude each other (a set's records name their objects)",
                        cmd_names[c]);
    const char *need = (STEER_CMDS & B(c)) || c == C_DEVIATION || c == C_TSTEER ? (v->ids ? NULL : "ids")
                       : c == C_DEVIATION || c == C_MASK                     ? NULL
                       : c == C_COMPARE                                      ? (v->n_dirs ? NULL : "dirs")
                       : c == C_EVAL                                         ? (v->task != -2 ? NULL : "task")
                       : c == C_STIMULI                                      ? (v->kind ? NULL : "set-kind")
                                                                             : NULL;
    if (!need && (c == C_DEVIATION || c == C_MASK) && !v->set) need = "set";
    return need ? ids__err(err, IDS_ERR_ARG, "%s: the option %s is required", cmd_names[c], need) : IDS_OK;
}

/* The common experiment options, the objects resolved in cat (objs: room for IDS_EXP_MAX_OBJECTS). */
static ids_status exp_from(int c, const vals *v, const ids_catalog *cat, int *objs, ids_exp *x, ids_err *err) {
    *x = ids_exp_default();
    x->seed = v->seed, x->n_threads = v->threads, x->precision = (ids_precision)v->precision;
    x->instruction = v->instruction, x->no_instruction = v->no_instruction;
    x->set_dir = v->set, x->n_items = v->n, x->grid = v->grid, x->image_size = v->image_size;
    if (!v->objects) return IDS_OK;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v->objects);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (n == IDS_EXP_MAX_OBJECTS)
            return ids__err(err, IDS_ERR_RANGE, "%s: objects = '%s' names more than %d objects", cmd_names[c], v->objects, n);
        if ((objs[n] = ids_catalog_find(cat, t, err)) < 0) return err->code ? err->code : IDS_ERR_NOT_FOUND;
        n++;
    }
    x->objects = objs, x->n_objects = n;
    return IDS_OK;
}

/* ---- the experiments ----------------------------------------------------------------------- */

typedef struct job {
    const ids_vlm *v;
    const ids_catalog *cat;
    const vals *o;
    ids_exp x;
    const char *dir; /* where the writer writes */
    ids_ffi_result *r;
} job;

static ids_status run_swap(job *j, ids_err *err) {
    ids_swap_opts o = {.exp = j->x, .hue = j->o->hue};
    ids_swap_result s = {0};
    ids_status st = ids_swap_run(j->v, j->cat, &o, j->o->control, &s, NULL, NULL, err);
    if (!st) st = ids_swap_write(j->dir, &s, err);
    const long long L = s.n_layers, K = IDS_SWAP_SET_COUNT;
    if (!st) st = ADD(j->r, "left", IDS_FFI_F32, s.left, L, K);
    if (!st) st = ADD(j->r, "right", IDS_FFI_F32, s.right, L, K);
    if (!st) st = ADD(j->r, "diff", IDS_FFI_F32, s.diff, L, K);
    if (!st) st = ADD(j->r, "diff_pooled", IDS_FFI_F32, s.diff_pooled, L, K);
    if (!st) st = ADD(j->r, "item_diff", IDS_FFI_F32, s.item_diff, s.n_items, L, K);
    ids_swap_result_free(&s);
    return st;
}

static void steer_from(const job *j, ids_steer_opts *o) {
    *o = (ids_steer_opts){.exp = j->x, .ids_path = j->o->ids, .factor = j->o->factor, .layer_lo = j->o->layers[0],
                          .layer_hi = j->o->layers[1], .greedy_tokens = j->o->greedy, .variant = (ids_grid_variant)j->o->variant,
                          .raw = j->o->raw, .holdout_objects = j->o->holdout};
    o->relation_only = j->o->relation >= 0; /* as the CLI: given (steer grid and depth always), only the set's records of it */
    o->relation = j->o->relation >= 0 ? (ids_relation)j->o->relation : IDS_REL_LEFT_RIGHT;
}

static ids_status run_belief(job *j, ids_err *err) {
    ids_steer_opts o;
    steer_from(j, &o);
    ids_steer_result s = {0};
    ids_status st = ids_steer_belief(j->v, j->cat, &o, &s, NULL, NULL, err);
    if (!st) st = ids_steer_write(j->dir, &s, err);
    const long long n = s.n_items, b = s.n_band;
    if (!st) st = ADD(j->r, "rate_id", IDS_FFI_F32, s.rate_id, b);
    if (!st) st = ADD(j->r, "rate_noise", IDS_FFI_F32, s.rate_noise, b);
    if (!st) st = ADD(j->r, "greedy_id", IDS_FFI_F32, s.greedy_id, b);
    if (!st) st = ADD(j->r, "greedy_noise", IDS_FFI_F32, s.greedy_noise, b);
    if (!st) st = ADD(j->r, "item_dc", IDS_FFI_F32, s.item_dc, n);
    if (!st) st = ADD(j->r, "item_truth", IDS_FFI_I8, s.item_truth, n);
    if (!st) st = ADD(j->r, "item_relation", IDS_FFI_U8, s.item_rel, n);
    if (!st) st = ADD(j->r, "item_swap_id", IDS_FFI_U8, s.item_swap_id, n, b);
    if (!st) st = ADD(j->r, "item_swap_noise", IDS_FFI_U8, s.item_swap_noise, n, b);
    if (!st) st = ADD(j->r, "item_greedy_id", IDS_FFI_U8, s.item_greedy_id, n, b);
    if (!st) st = ADD(j->r, "item_greedy_noise", IDS_FFI_U8, s.item_greedy_noise, n, b);
    ids_steer_result_free(&s);
    return st;
}

static ids_status run_grid(job *j, ids_err *err) {
    ids_steer_opts o;
    steer_from(j, &o);
    ids_steer_grid_result g = {0};
    ids_status st = ids_steer_grid(j->v, j->cat, &o, &g, NULL, NULL, err);
    if (!st) st = ids_steer_grid_write(j->dir, &g, err);
    const long long G = g.grid;
    if (!st) st = ADD(j->r, "delta", IDS_FFI_F32, g.delta, G, G);
    if (!st) st = ADD(j->r, "delta_random", IDS_FFI_F32, g.delta_random, G, G);
    if (!st) st = ADD(j->r, "delta_orthogonal", IDS_FFI_F32, g.delta_orthogonal, G, G);
    if (!st) st = ADD(j->r, "item_delta", IDS_FFI_F32, g.item_delta, g.n_items, 3, G, G);
    ids_steer_grid_result_free(&g);
    return st;
}

static ids_status run_depth(job *j, ids_err *err) {
    ids_steer_opts o;
    steer_from(j, &o);
    ids_depth_result d = {0};
    ids_status st = ids_depth_diag(j->v, j->cat, &o, &d, NULL, NULL, err);
    if (!st) st = ids_depth_write(j->dir, &d, err);
    const long long b = d.n_band;
    static const char *const q[4] = {"ab_down", "ab_up", "fb_down", "fb_up"};
    for (int k = 0; !st && k < 4; k++) {
        const float *src[4] = {d.ab_down, d.ab_up, d.fb_down, d.fb_up};
        char name[48];
        st = ADD(j->r, q[k], IDS_FFI_F32, src[k], b);
        for (int c = 0; !st && c < 2; c++) {
            snprintf(name, sizeof name, "%s_%s", c ? "orthogonal" : "random", q[k]);
            st = ADD(j->r, name, IDS_FFI_F32, d.ctl[c][k], b);
        }
    }
    if (!st) st = ADD(j->r, "item_ab", IDS_FFI_F32, d.item_ab, d.n_grid, 3, b, 2);
    if (!st) st = ADD(j->r, "item_fb", IDS_FFI_F32, d.item_fb, d.n_depth, 3, b, 2);
    ids_depth_result_free(&d);
    return st;
}

static ids_status run_deviation(job *j, ids_err *err) {
    ids_deviation_opts o = {.exp = j->x, .ids_path = j->o->ids, .layer = j->o->layer};
    ids_deviation_result d = {0};
    ids_status st = ids_deviation(j->v, j->cat, &o, &d, NULL, NULL, err);
    if (!st) st = ids_deviation_write(j->dir, &d, err);
    const long long n = d.n_items, L = d.n_layers;
    if (!st) st = ADD(j->r, "correct", IDS_FFI_U8, d.correct, n);
    if (!st) st = ADD(j->r, "gx", IDS_FFI_F32, d.gx, n);
    if (!st) st = ADD(j->r, "gy", IDS_FFI_F32, d.gy, n);
    if (!st) st = ADD(j->r, "dev", IDS_FFI_F32, d.dev, n, L);
    if (!st) st = ADD(j->r, "pos", IDS_FFI_F32, d.pos, n, L, 2);
    if (!st) st = ADD(j->r, "id_pos", IDS_FFI_F32, d.id_pos, n, L, 2);
    ids_deviation_result_free(&d);
    return st;
}

static ids_status run_mask(job *j, ids_err *err) {
    ids_mask_opts o = {.exp = j->x, .radius = j->o->radius, .n_random = j->o->random};
    ids_mask_result m = {0};
    ids_status st = ids_mask(j->v, j->cat, &o, &m, NULL, NULL, err);
    if (!st) st = ids_mask_write(j->dir, &m, err);
    const long long n = m.n_items, K = 2 + m.n_random;
    if (!st) st = ADD(j->r, "lp", IDS_FFI_F32, m.lp, n, K, 2);
    if (!st) st = ADD(j->r, "ok", IDS_FFI_U8, m.ok, n, K);
    ids_mask_result_free(&m);
    return st;
}

static void temporal_from(const job *j, ids_temporal_opts *o) {
    *o = (ids_temporal_opts){.exp = j->x, .frames = j->o->frames, .factor = j->o->factor, .layer_lo = j->o->layers[0],
                             .layer_hi = j->o->layers[1], .source = j->o->source, .ids_path = j->o->ids,
                             .holdout_objects = j->o->holdout, .mvbench = j->o->mvbench, .video_dir = j->o->videos};
}

static ids_status run_tswap(job *j, ids_err *err) {
    ids_temporal_opts o;
    temporal_from(j, &o);
    ids_temporal_swap_result s = {0};
    ids_status st = ids_temporal_swap(j->v, j->cat, &o, &s, NULL, NULL, err);
    if (!st) st = ids_temporal_swap_write(j->dir, &s, err);
    const long long L = s.n_layers, K = IDS_SWAP_SET_COUNT;
    if (!st) st = ADD(j->r, "first", IDS_FFI_F32, s.first, L, K);
    if (!st) st = ADD(j->r, "second", IDS_FFI_F32, s.second, L, K);
    if (!st) st = ADD(j->r, "diff", IDS_FFI_F32, s.diff, L, K);
    if (!st) st = ADD(j->r, "diff_pooled", IDS_FFI_F32, s.diff_pooled, L, K);
    if (!st) st = ADD(j->r, "item_diff", IDS_FFI_F32, s.item_diff, s.n_items, L, K);
    ids_temporal_result_free(&s);
    return st;
}

static ids_status run_tsteer(job *j, ids_err *err) {
    ids_temporal_opts o;
    temporal_from(j, &o);
    ids_temporal_steer_result s = {0};
    ids_status st = ids_temporal_steer(j->v, j->cat, &o, &s, NULL, NULL, err);
    if (!st) st = ids_temporal_steer_write(j->dir, &s, err);
    const long long b = s.n_band, F = s.frames;
    if (!st) st = ADD(j->r, "d_before", IDS_FFI_F32, s.d_before, b, F);
    if (!st) st = ADD(j->r, "d_after", IDS_FFI_F32, s.d_after, b, F);
    if (!st) st = ADD(j->r, "rho_after", IDS_FFI_F32, s.rho_after, b);
    if (!st) st = ADD(j->r, "random_after", IDS_FFI_F32, s.ctl_after[0], b, F);
    if (!st) st = ADD(j->r, "orthogonal_after", IDS_FFI_F32, s.ctl_after[1], b, F);
    if (!st) st = ADD(j->r, "item_after", IDS_FFI_F32, s.item_after, s.n_items, 3, b, F);
    ids_temporal_steer_result_free(&s);
    return st;
}

static ids_status run_extract(job *j, ids_err *err) {
    ids_extract_opts o = {.exp = j->x, .sizes = j->o->n_sizes ? j->o->sizes : NULL, .n_sizes = j->o->n_sizes,
                          .per_pair = j->o->per_pair};
    ids_extract_result e = {0};
    ids_status st = ids_spatial_extract_run(j->v, j->cat, &o, j->dir, &e, NULL, NULL, err);
    const long long L = e.n_layers, G = e.grid, S = e.n_sizes, E = e.n_embd;
    if (!st) st = ADD(j->r, "universal", IDS_FFI_F32, e.universal, L, G, G, S, E);
    if (!st) st = ADD(j->r, "x_axis", IDS_FFI_F32, e.x_axis, L, E);
    if (!st) st = ADD(j->r, "y_axis", IDS_FFI_F32, e.y_axis, L, E);
    if (!st) st = ADD(j->r, "per_pair", IDS_FFI_F32, e.per_pair, e.n_pairs, L, G, G, S, E);
    ids_extract_result_free(&e);
    return st;
}

static ids_status run_textract(job *j, ids_err *err) {
    ids_temporal_opts o;
    temporal_from(j, &o);
    ids_temporal_ids t = {0};
    ids_status st = ids_temporal_extract_run(j->v, j->cat, &o, j->dir, &t, NULL, NULL, err);
    if (!st) st = ADD(j->r, "temporal", IDS_FFI_F32, t.temporal, t.n_layers, t.frames, t.n_embd);
    if (!st) st = ADD(j->r, "time_axis", IDS_FFI_F32, t.time_axis, t.n_layers, t.n_embd);
    ids_temporal_ids_free(&t);
    return st;
}

static ids_status run_compare(job *j, ids_err *err) {
    double rho;
    ids_status st = ids_compare(j->o->dirs, j->o->n_dirs, j->dir, &rho, err);
    return st ? st : ADD(j->r, "rho", IDS_FFI_F64, &rho, 1);
}

static ids_status run_eval(job *j, ids_err *err) {
    ids_train_config c;
    ids_eval_default_config(j->v, &c);
    ids_task t[IDS_TASK_COUNT];
    int n_tasks = 0;
    for (const choice *ch = tasks; ch->value != EVAL_ALL; ch++)
        if (j->o->task == EVAL_ALL || j->o->task == ch->value) t[n_tasks++] = (ids_task)ch->value;
    ids_eval_opts o = {.exp = j->x, .tasks = t, .n_tasks = n_tasks, .n = j->o->n, .held_out = j->o->held, .config = &c};
    ids_eval_result e = {0};
    ids_status st = ids_eval_run(j->v, &o, &e, NULL, NULL, err);
    if (!st) st = ids_eval_write(j->dir, &e, err);
    int32_t correct[IDS_TASK_COUNT];
    for (int k = 0; k < e.n_tasks; k++) correct[k] = e.correct[k];
    if (!st) st = ADD(j->r, "correct", IDS_FFI_I32, correct, e.n_tasks);
    ids_eval_result_free(&e);
    return st;
}

typedef ids_status (*runner)(job *j, ids_err *err);
static const runner runners[C_COUNT] = {
    [C_EXTRACT] = run_extract, [C_SWAP] = run_swap,         [C_BELIEF] = run_belief,     [C_GRID] = run_grid,
    [C_DEPTH] = run_depth,     [C_DEVIATION] = run_deviation, [C_MASK] = run_mask,       [C_COMPARE] = run_compare,
    [C_TEXTRACT] = run_textract, [C_TSWAP] = run_tswap,     [C_TSTEER] = run_tsteer,     [C_EVAL] = run_eval,
};

static int command_index(const char *command) {
    for (int c = 0; command && c < C_COUNT; c++)
        if (!strcmp(cmd_names[c], command)) return c;
    return -1;
}

ids_status ids_ffi_exp_run(const ids_vlm *v, const char *command, int n, const char *const *keys, const char *const *values,
                           const char *out_dir, ids_ffi_result **out) {
    ids_err err = {0};
    *out = NULL;
    const int c = command_index(command);
    if (c < 0 || c == C_STIMULI)
        return keep(ids__err(&err, IDS_ERR_ARG, "no experiment '%s' (ids extract, swap, steer belief, steer grid, depth, "
                             "deviation, mask, compare, temporal extract, temporal swap, temporal steer, eval)",
                             command ? command : "(null)"), &err);
    if (!v && c != C_COMPARE) return keep(ids__err(&err, IDS_ERR_ARG, "%s: no model", command), &err);
    if (n < 0 || (n > 0 && (!keys || !values))) return keep(ids__err(&err, IDS_ERR_ARG, "%s: no options", command), &err);
    vals o;
    int objs[IDS_EXP_MAX_OBJECTS];
    ids_catalog *cat = ids_catalog_new();
    job j = {.v = v, .cat = cat, .o = &o, .r = ids__calloc(1, sizeof(ids_ffi_result))};
    char *dir = NULL;
    ids_status st = cat && j.r ? IDS_OK : ids__err(&err, IDS_ERR_NOMEM, "%s: out of memory", command);
    if (!st) st = parse_opts(c, n, keys, values, &o, &err);
    if (!st) st = exp_from(c, &o, cat, objs, &j.x, &err);
    if (!st) st = temp_dir(&dir, &err);
    j.dir = dir;
    if (!st) st = runners[c](&j, &err);
    if (dir) {
        ids_status s2 = slurp_and_remove(j.r, dir, &err);
        if (!st) st = s2;
    }
    if (!st) st = from_files(j.r, &err);
    free(dir);
    ids_catalog_free(cat);
    if (st) keep(st, &err);
    else if (out_dir) st = ids_ffi_result_write(j.r, out_dir);
    if (st) {
        ids_ffi_result_free(j.r);
        return st;
    }
    *out = j.r;
    return IDS_OK;
}

/* ---- the stimulus engine ------------------------------------------------------------------- */

/* The stimulus options (objects resolved in cat into objs) and the set's kind. */
static ids_status stim_from(int n, const char *const *keys, const char *const *values, ids_catalog *cat, vals *v, int *objs,
                            ids_stim_opts *so, int *kind, ids_err *err) {
    if (n < 0 || (n > 0 && (!keys || !values))) return ids__err(err, IDS_ERR_ARG, "stimuli: no options");
    ids_status st = parse_opts(C_STIMULI, n, keys, values, v, err);
    if (st) return st;
    if ((*kind = ids_set_from_name(v->kind)) < 0)
        return ids__err(err, IDS_ERR_ARG, "stimuli: unknown set '%s' (grid, depth, nearfar, between, video)", v->kind);
    ids_exp x;
    if ((st = exp_from(C_STIMULI, v, cat, objs, &x, err))) return st;
    ids_stim_default_opts(so);
    so->seed = v->seed, so->image_size = v->image_size, so->grid = v->grid, so->objects = x.objects;
    so->n_objects = x.n_objects, so->all_pairs = v->all_pairs, so->jitter_pos = v->jitter, so->jitter_size = v->size_jitter;
    so->jitter_rot = v->rotate, so->frames = v->frames, so->near_threshold = v->near_threshold, so->repeats = v->repeats;
    so->write_mp4 = v->mp4;
    if (v->n_sizes) so->sizes = v->sizes, so->n_sizes = v->n_sizes;
    for (int k = 0; k < 3; k++) so->bg[k] = (uint8_t)v->bg[k];
    return IDS_OK;
}

/* One object of a stimulus as JSON. */
static bool stim_obj_json(cJSON *arr, const ids_catalog *cat, const ids_stim_obj *o) {
    cJSON *j = cJSON_CreateObject();
    bool ok = j && cJSON_AddItemToArray(arr, j);
    if (!ok) return cJSON_Delete(j), false;
    uint8_t rgb[3];
    ok &= cJSON_AddStringToObject(j, "name", ids_catalog_name(cat, o->obj)) && cJSON_AddStringToObject(j, "word", ids_catalog_word(cat, o->obj));
    const double nums[] = {o->p.cx, o->p.cy, o->p.size, o->p.rot, o->cell_x, o->cell_y, o->lateral, o->depth, o->appear};
    static const char *const keys[] = {"cx", "cy", "size", "rot", "cell_x", "cell_y", "lateral", "depth", "appear"};
    for (size_t k = 0; ok && k < sizeof nums / sizeof *nums; k++) ok &= cJSON_AddNumberToObject(j, keys[k], nums[k]) != NULL;
    ok &= cJSON_AddBoolToObject(j, "visible", o->p.visible) != NULL;
    if (ok && ids_catalog_color(cat, o->obj, rgb)) {
        cJSON *c = cJSON_AddArrayToObject(j, "color");
        for (int k = 0; ok && k < 3; k++) {
            cJSON *e = c ? cJSON_CreateNumber(rgb[k]) : NULL;
            ok &= e && cJSON_AddItemToArray(c, e);
        }
    }
    return ok;
}

/* A stimulus's annotations as JSON text (malloc'd). */
static char *stim_json(const ids_stim *s, const ids_catalog *cat, int count) {
    cJSON *j = cJSON_CreateObject(), *objs = NULL, *rel = NULL;
    bool ok = j && cJSON_AddStringToObject(j, "set", ids_set_name(s->kind)) && cJSON_AddNumberToObject(j, "index", s->index) &&
              cJSON_AddNumberToObject(j, "count", count) && cJSON_AddNumberToObject(j, "grid", s->grid) &&
              cJSON_AddBoolToObject(j, "mirrored", s->mirrored) && cJSON_AddBoolToObject(j, "recolored", s->recolored) &&
              (objs = cJSON_AddArrayToObject(j, "objects")) && (rel = cJSON_AddObjectToObject(j, "truth"));
    for (int k = 0; ok && k < s->n_obj; k++) ok = stim_obj_json(objs, cat, &s->obj[k]);
    for (int r = 0; ok && r < IDS_REL_COUNT; r++)
        if (s->has[r])
            ok = cJSON_AddStringToObject(rel, ids_relation_name((ids_relation)r), ids_answer_word((ids_relation)r, s->truth[r])) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return text;
}

ids_status ids_ffi_stimulus(int n, const char *const *keys, const char *const *values, int index, int variant,
                            ids_ffi_result **out) {
    ids_err err = {0};
    *out = NULL;
    vals v;
    int objs[IDS_EXP_MAX_OBJECTS], kind, count = 0;
    ids_stim_opts so;
    ids_stim s = {0}, e = {0};
    ids_catalog *cat = ids_catalog_new();
    ids_ffi_result *r = ids__calloc(1, sizeof *r);
    ids_status st = cat && r ? IDS_OK : ids__err(&err, IDS_ERR_NOMEM, "stimuli: out of memory");
    if (!st) st = stim_from(n, keys, values, cat, &v, objs, &so, &kind, &err);
    if (!st) st = ids_stim_count((ids_set_kind)kind, &so, cat, &count, &err);
    if (!st && (index < 0 || index >= count))
        st = ids__err(&err, IDS_ERR_RANGE, "stimuli: item %d is outside the set's 0..%d", index, count - 1);
    if (!st && (variant < 0 || variant > 2))
        st = ids__err(&err, IDS_ERR_ARG, "stimuli: variant %d (0 the item, 1 its mirror, 2 recoloured)", variant);
    if (!st) st = ids_stim_make((ids_set_kind)kind, &so, cat, index, &s, &err);
    if (!st && variant == 1) st = ids_stim_mirror(&s, &e, &err);
    if (!st && variant == 2) st = ids_stim_recolor(&s, &so, cat, &e, &err);
    const ids_stim *use = variant ? &e : &s;
    if (!st && !(r->json = stim_json(use, cat, count))) st = ids__err(&err, IDS_ERR_NOMEM, "stimuli: out of memory");
    const long long F = use->n_frames, H = F ? use->frames[0].h : 0, W = F ? use->frames[0].w : 0;
    uint8_t *px = st ? NULL : ids__malloc((size_t)(F * H * W * 3) + 1);
    if (!st && !px) st = ids__err(&err, IDS_ERR_NOMEM, "stimuli: out of memory");
    for (long long f = 0; !st && f < F; f++) memcpy(px + f * H * W * 3, use->frames[f].rgb, (size_t)(H * W * 3));
    if (!st) st = add_array(r, "frames", IDS_FFI_U8, 4, SHAPE(F, H, W, 3), px, &err);
    free(px);
    ids_stim_free(&s);
    ids_stim_free(&e);
    ids_catalog_free(cat);
    if (st) {
        ids_ffi_result_free(r);
        return keep(st, &err);
    }
    *out = r;
    return IDS_OK;
}

ids_status ids_ffi_stimuli_write(int n, const char *const *keys, const char *const *values, const char *out_dir,
                                 ids_ffi_result **out) {
    ids_err err = {0};
    *out = NULL;
    vals v;
    int objs[IDS_EXP_MAX_OBJECTS], kind;
    ids_stim_opts so;
    ids_catalog *cat = ids_catalog_new();
    ids_ffi_result *r = ids__calloc(1, sizeof *r);
    ids_status st = cat && r ? IDS_OK : ids__err(&err, IDS_ERR_NOMEM, "stimuli: out of memory");
    if (!st && (!out_dir || !*out_dir)) st = ids__err(&err, IDS_ERR_ARG, "stimuli: no output folder");
    if (!st) st = stim_from(n, keys, values, cat, &v, objs, &so, &kind, &err);
    if (!st) st = ids_stimuli_write((ids_set_kind)kind, &so, cat, out_dir, v.mirror, v.recolor, v.limit, NULL, NULL, &err);
    char *path = st ? NULL : ids__path_join(out_dir, "manifest.json");
    size_t len;
    if (!st) st = path ? ids__read_file(path, &r->json, &len, &err) : ids__err(&err, IDS_ERR_NOMEM, "stimuli: out of memory");
    free(path);
    ids_catalog_free(cat);
    if (st) {
        ids_ffi_result_free(r);
        return keep(st, &err);
    }
    *out = r;
    return IDS_OK;
}

ids_status ids_ffi_png_write(const uint8_t *rgb, int w, int h, const char *path) {
    ids_err err = {0};
    if (!rgb || w < 1 || h < 1 || !path)
        return keep(ids__err(&err, IDS_ERR_ARG, "png: no pixels (%d x %d) or no path", w, h), &err);
    const ids_image img = {.w = w, .h = h, .rgb = (uint8_t *)rgb};
    return keep(ids_image_write_png(&img, path, &err), &err);
}
