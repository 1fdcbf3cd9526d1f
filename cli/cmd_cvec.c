/* ids export-cvec: a universal-ID difference as a llama.cpp control vector. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct cvec_args {
    const char *ids, *from, *to, *out, *hint;
    int size;
    float scale;
    arg_layers layers;
} cvec_args;

static const arg_opt cvec_opts[] = {
    {.name = "ids", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(cvec_args, ids),
     .meta = "IDS.safetensors", .help = "the IDs, from 'idscope ids extract'"},
    {.name = "from", .type = ARG_STR, .flags = ARG_REQUIRED, .offset = offsetof(cvec_args, from), .meta = "Y,X",
     .help = "the cell the direction points away from: row from the top, column from the left"},
    {.name = "to", .type = ARG_STR, .flags = ARG_REQUIRED, .offset = offsetof(cvec_args, to), .meta = "Y,X",
     .help = "the cell it points to"},
    {.name = "size", .type = ARG_INT, .offset = offsetof(cvec_args, size), .meta = "I", .min = -1, .max = 15,
     .def = "-1", .help = "the object size (index into the IDs' sizes), -1 = the mean over sizes"},
    {.name = "scale", .type = ARG_FLOAT, .offset = offsetof(cvec_args, scale), .meta = "F", .fmin = -INFINITY,
     .fmax = INFINITY, .def = "1", .help = "multiply the direction by F"},
    {.name = "layers", .type = ARG_LAYERS, .flags = ARG_SINGLE, .offset = offsetof(cvec_args, layers), .meta = "LO-HI",
     .min = 2, .def_help = "2..n_layer", .help = "residual layers to write (a layer L goes to llama.cpp's direction.(L-1))"},
    {.name = "model-hint", .type = ARG_STR, .offset = offsetof(cvec_args, hint), .meta = "ARCH", .def = "llama",
     .help = "controlvector.model_hint (the text model's architecture)"},
    {.name = "output", .short_name = 'o', .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(cvec_args, out),
     .meta = "OUT.gguf", .help = "the control vector (written atomically)"},
    {0},
};

const arg_cmd ids_export_cvec_cmd = {
    "ids export-cvec",
    "Write scale x (ID(to) - ID(from)), the difference of two cells' universal IDs, at every chosen\n"
    "residual layer as a llama.cpp control vector (GGUF, architecture controlvector), which\n"
    "'llama-cli --control-vector' and idscope's 'ask/capture --control-vector' add at every row:\n"
    "llama.cpp adds direction.K after block K, so idscope's residual layer L is written as\n"
    "direction.(L-1) (layers 0 and 1 have no place there). The file carries its provenance.\n",
    cvec_opts, NULL, NULL};

/* "Y,X" within a grid of g cells a side. ARGS_GO or EXIT_USAGE. */
static int parse_cell(const char *opt, const char *v, int g, int *y, int *x) {
    char *end;
    errno = 0;
    long a = isdigit((unsigned char)v[0]) ? strtol(v, &end, 10) : -1, b = -1;
    if (a >= 0 && *end == ',' && isdigit((unsigned char)end[1])) b = strtol(end + 1, &end, 10);
    if (a < 0 || b < 0 || *end || errno) return args_bad("ids export-cvec", opt, v, "is not a cell Y,X (row, column)");
    if (a >= g || b >= g) return args_bad("ids export-cvec", opt, v, "is outside the IDs' grid of %d x %d cells", g, g);
    *y = (int)a, *x = (int)b;
    return ARGS_GO;
}

int run_ids_export_cvec(const arg_cmd *spec, int argc, char **argv) {
    cvec_args a = {0};
    int rc = args_parse(spec, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_err err;
    ids_st_file *f;
    if (ids_st_open(&f, a.ids, &err)) return fail(&err);
    const ids_st_tensor *u = ids_st_find(f, "universal");
    if (!u || u->ndim != 5 || strcmp(u->dtype, "F32") || u->shape[1] != u->shape[2]) {
        fprintf(stderr, "idscope: error: %s: no F32 tensor 'universal' [layers, y, x, size, embd] with a square grid "
                "(write one with 'idscope ids extract')\n", a.ids);
        ids_st_close(f);
        return 1;
    }
    const int L = (int)u->shape[0], G = (int)u->shape[1], S = (int)u->shape[3], E = (int)u->shape[4];
    int fy, fx, ty, tx;
    int lo = a.layers.text ? a.layers.lo : 2, hi = a.layers.text ? a.layers.hi : L - 1;
    char sz[16];
    snprintf(sz, sizeof sz, "%d", a.size);
    rc = parse_cell("--from", a.from, G, &fy, &fx);
    if (rc == ARGS_GO) rc = parse_cell("--to", a.to, G, &ty, &tx);
    if (rc == ARGS_GO && a.size >= S)
        rc = args_bad(spec->name, "--size", sz, "is outside -1..%d (the IDs have %d sizes)", S - 1, S);
    if (rc == ARGS_GO && (lo < 2 || hi > L - 1 || lo > hi))
        rc = args_bad(spec->name, "--layers", a.layers.text ? a.layers.text : "", "is outside 2..%d (the IDs' layers "
                      "that llama.cpp can take)", L - 1);
    if (rc != ARGS_GO) {
        ids_st_close(f);
        return rc;
    }
    rc = 0;
    const int n = hi - lo + 1;
    int *layers = malloc(sizeof(int) * (size_t)n);
    float *dirs = calloc((size_t)n * (size_t)E, sizeof(float));
    ids_prov *prov = NULL;
    if (!layers || !dirs) rc = fail_oom();
    const float *U = u->data;
    for (int i = 0; !rc && i < n; i++) { /* universal[l][y][x][s][e] */
        layers[i] = lo + i;
        for (int s = 0; s < S; s++) {
            if (a.size >= 0 && s != a.size) continue;
            const float *pt = U + ((((size_t)layers[i] * G + ty) * G + tx) * S + s) * E;
            const float *pf = U + ((((size_t)layers[i] * G + fy) * G + fx) * S + s) * E;
            for (int e = 0; e < E; e++) dirs[(size_t)i * E + e] += pt[e] - pf[e];
        }
        const float w = a.scale / (float)(a.size >= 0 ? 1 : S);
        for (int e = 0; e < E; e++) dirs[(size_t)i * E + e] *= w;
    }
    if (!rc && (ids_prov_new(&prov, "ids export-cvec", &err) || ids_prov_input(prov, "ids", a.ids, &err))) rc = fail(&err);
    if (!rc) {
        ids_prov_opt_str(prov, "from", a.from);
        ids_prov_opt_str(prov, "to", a.to);
        ids_prov_opt_int(prov, "size", a.size);
        ids_prov_opt_num(prov, "scale", a.scale);
        ids_prov_opt_int(prov, "layer_lo", lo);
        ids_prov_opt_int(prov, "layer_hi", hi);
        ids_prov_opt_str(prov, "model_hint", a.hint);
        ids_prov_finish(prov);
        if (ids_cvec_write(a.out, layers, dirs, n, E, a.hint, prov, &err)) {
            rc = fail(&err);
        } else {
            char *own;
            fprintf(stderr, "wrote %s: direction.%d..direction.%d (residual layers %d..%d), cell %s -> %s\n",
                    path_show(a.out, &own), lo - 1, hi - 1, lo, hi, a.from, a.to);
            free(own);
        }
    }
    ids_prov_free(prov);
    free(layers);
    free(dirs);
    ids_st_close(f);
    return rc;
}
