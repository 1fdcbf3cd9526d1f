/* Commands on files: info (a GGUF's header and tensors), tensor (one tensor to .npy), tokenize. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- info -------------------------------------------------------------------------------- */

typedef struct info_args {
    const char *path;
    int max_items;
} info_args;

static const arg_opt info_opts[] = {
    {.name = "max-items", .type = ARG_INT, .offset = offsetof(info_args, max_items), .meta = "N", .min = 0,
     .max = INT_MAX, .def = "8", .help = "arrays longer than N elements are summarised by their first N"},
    {0},
};
static const arg_pos info_pos[] = {{"FILE.gguf", offsetof(info_args, path), true}, {0}};
static const arg_cmd info_cmd = {
    "info", "Print a GGUF file's header, architecture, metadata and tensor table.\n", info_opts, info_pos, NULL};

static void print_scalar(const ids_gguf_value *v) {
    switch (v->type) {
    case IDS_GGUF_STRING: {
        fputc('"', stdout);
        const char *s = v->v.str.ptr;
        uint64_t n = v->v.str.len > 200 ? 200 : v->v.str.len;
        for (uint64_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\n') fputs("\\n", stdout);
            else if (c == '"') fputs("\\\"", stdout);
            else if (c < 0x20) printf("\\x%02x", c);
            else fputc(c, stdout);
        }
        fputc('"', stdout);
        if (v->v.str.len > 200) printf("... (%" PRIu64 " bytes)", v->v.str.len);
        break;
    }
    case IDS_GGUF_BOOL: fputs(v->v.u ? "true" : "false", stdout); break;
    case IDS_GGUF_FLOAT32: case IDS_GGUF_FLOAT64: printf("%.9g", v->v.f); break;
    case IDS_GGUF_INT8: case IDS_GGUF_INT16: case IDS_GGUF_INT32: case IDS_GGUF_INT64:
        printf("%" PRId64, v->v.i);
        break;
    default: printf("%" PRIu64, v->v.u); break;
    }
}

static void print_value(const ids_gguf_value *v, uint64_t max_items) {
    if (v->type != IDS_GGUF_ARRAY) {
        print_scalar(v);
        return;
    }
    uint64_t n = v->v.arr.n;
    printf("[%s x %" PRIu64 "] [", ids_gguf_type_name(v->v.arr.elem), n);
    uint64_t shown = n < max_items ? n : max_items;
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", stdout);
        ids_gguf_value e = {.type = v->v.arr.elem};
        if (e.type == IDS_GGUF_ARRAY) {
            print_value(ids_gguf_arr_arr(v, i), max_items);
            continue;
        }
        if (e.type == IDS_GGUF_STRING) {
            ids_gguf_arr_str(v, i, &e.v.str.ptr, &e.v.str.len);
        } else if (e.type == IDS_GGUF_FLOAT32 || e.type == IDS_GGUF_FLOAT64) {
            ids_gguf_arr_f64(v, i, &e.v.f);
        } else if (e.type == IDS_GGUF_UINT64) { /* may not fit int64 */
            uint64_t u;
            memcpy(&u, (const unsigned char *)v->v.arr.data + 8 * i, 8);
            e.v.u = u;
        } else {
            int64_t x = 0;
            ids_gguf_arr_i64(v, i, &x);
            e.v.i = x;
            e.v.u = (uint64_t)x;
        }
        print_scalar(&e);
    }
    if (shown < n) printf(", ... %" PRIu64 " more", n - shown);
    fputc(']', stdout);
}

static void print_tensors(const ids_gguf *g) {
    int64_t nt = ids_gguf_n_tensors(g);
    printf("\ntensors (%" PRId64 "):\n", nt);
    printf("  %-48s %-7s %-28s %14s\n", "name", "type", "shape (ne0 first)", "bytes");
    uint64_t total = 0, per_type[IDS_TYPE_COUNT] = {0};
    int64_t count_type[IDS_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < nt; i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        char shape[96]; /* at most 4 dimensions */
        int k = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->n_dims; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        snprintf(shape + k, sizeof shape - (size_t)k, "]");
        printf("  %-48s %-7s %-28s %14" PRIu64 "\n", t->name, ids_type_name(t->type), shape, t->nbytes);
        total += t->nbytes;
        per_type[t->type] += t->nbytes;
        count_type[t->type]++;
    }
    printf("\ntotal tensor bytes: %" PRIu64 " (%.2f MiB)", total, (double)total / (1 << 20));
    for (int ty = 0; ty < IDS_TYPE_COUNT; ty++)
        if (count_type[ty]) printf("%s %s: %" PRId64 " tensors", ty ? "," : ";", ids_type_name(ty), count_type[ty]);
    printf("\n");
}

int cmd_info(int argc, char **argv) {
    info_args a = {0};
    int rc = args_parse(&info_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_err err;
    ids_gguf *g;
    if (ids_gguf_open_model(&g, a.path, IDS_HF_TEXT, &err)) return fail(&err);
    const char *arch = "(none)";
    ids_gguf_get_str(g, "general.architecture", &arch, NULL);
    char *own;
    printf("file: %s\n", path_show(a.path, &own));
    free(own);
    printf("gguf version: %u, alignment: %u, data offset: %" PRIu64 ", file size: %" PRIu64 "\n",
           ids_gguf_version(g), ids_gguf_alignment(g), ids_gguf_data_offset(g), ids_gguf_file_size(g));
    printf("architecture: %s\n", arch);
    printf("\nmetadata (%" PRId64 " entries):\n", ids_gguf_n_kv(g));
    for (int64_t i = 0; i < ids_gguf_n_kv(g); i++) {
        const ids_gguf_value *v = ids_gguf_kv_value(g, i);
        printf("  %-44s %-4s ", ids_gguf_kv_key(g, i), ids_gguf_type_name(v->type));
        print_value(v, (uint64_t)a.max_items);
        fputc('\n', stdout);
    }
    print_tensors(g);
    ids_gguf_close(g);
    return 0;
}

/* ---- tensor ------------------------------------------------------------------------------ */

typedef struct tensor_args {
    const char *path, *name, *out;
} tensor_args;

static const arg_opt tensor_opts[] = {
    {.name = "output", .short_name = 'o', .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(tensor_args, out),
     .meta = "OUT.npy", .help = "the .npy file to write"},
    {0},
};
static const arg_pos tensor_pos[] = {
    {"FILE.gguf", offsetof(tensor_args, path), true}, {"NAME", offsetof(tensor_args, name), true}, {0}};
static const arg_cmd tensor_cmd = {
    "tensor",
    "Dequantize one tensor to float32 and write it as a NumPy .npy file. The array shape is the\n"
    "GGUF shape reversed (ne = [in, out] becomes (out, in)), so the bytes keep their order.\n",
    tensor_opts, tensor_pos, NULL};

int cmd_tensor(int argc, char **argv) {
    tensor_args a = {0};
    int rc = args_parse(&tensor_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_err err;
    ids_gguf *g;
    if (ids_gguf_open_model(&g, a.path, IDS_HF_TEXT, &err)) return fail(&err);
    const ids_tensor *t = ids_gguf_find_tensor(g, a.name);
    if (!t) {
        fprintf(stderr, "idscope: error: %s: no tensor named '%s' (%" PRId64 " tensors; see 'idscope info')\n", a.path,
                a.name, ids_gguf_n_tensors(g));
        ids_gguf_close(g);
        return 1;
    }
    int64_t n = ids_tensor_nelements(t);
    float *buf = malloc((size_t)(n ? n : 1) * sizeof(float));
    rc = 0;
    if (!buf) {
        fprintf(stderr, "idscope: error: out of memory for %" PRId64 " floats\n", n);
        rc = 1;
    } else if (ids_tensor_to_f32(t, buf, &err)) {
        rc = fail(&err);
    } else {
        int64_t shape[4];
        for (int d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d];
        if (ids_npy_write(a.out, "<f4", t->n_dims, shape, buf, &err)) {
            rc = fail(&err);
        } else {
            char *own;
            fprintf(stderr, "wrote %s: %s %s -> float32 (%" PRId64 " values)\n", path_show(a.out, &own), a.name,
                    ids_type_name(t->type), n);
            free(own);
        }
    }
    free(buf);
    ids_gguf_close(g);
    return rc;
}

/* ---- tokenize ---------------------------------------------------------------------------- */

typedef struct tokenize_args {
    const char *model, *file, *text;
    bool no_bos, pieces, special;
} tokenize_args;

static const arg_opt tokenize_opts[] = {
    {.name = "model", .short_name = 'm', .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(tokenize_args, model),
     .meta = "MODEL.gguf", .help = "a GGUF holding tokenizer.ggml.* metadata (model or vocab-only file)"},
    {.name = "no-bos", .type = ARG_FLAG, .offset = offsetof(tokenize_args, no_bos),
     .help = "do not prepend BOS (by default BOS is added when the vocabulary asks)"},
    {.name = "pieces", .type = ARG_FLAG, .offset = offsetof(tokenize_args, pieces),
     .help = "print one line per token instead: id, tab, the vocabulary piece"},
    {.name = "special", .type = ARG_FLAG, .offset = offsetof(tokenize_args, special),
     .help = "recognise control tokens written in the text (e.g. <|im_start|>)"},
    {.name = "file", .short_name = 'f', .type = ARG_PATH, .offset = offsetof(tokenize_args, file), .meta = "F",
     .help = "read the text from file F ('-' for standard input) instead of TEXT"},
    {0},
};
static const arg_pos tokenize_pos[] = {{"TEXT", offsetof(tokenize_args, text), false}, {0}};
static const arg_cmd tokenize_cmd = {
    "tokenize",
    "Tokenize TEXT (or the text of --file F; one of the two) with the model's own tokenizer (SPM or\n"
    "byte-level BPE, as llama.cpp does) and print the token ids, space-separated, on one line. Quote\n"
    "the text; put -- before a text that starts with '-'.\n",
    tokenize_opts, tokenize_pos, NULL};

static int print_tokens(const tokenize_args *a, const char *text, size_t len) {
    ids_err err;
    ids_gguf *g = NULL;
    ids_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n;
    ids_tokenize_opts o = {.add_bos = !a->no_bos, .parse_special = a->special};
    int rc = 0;
    if (ids_gguf_open_model(&g, a->model, IDS_HF_TEXT, &err) || ids_tokenizer_load(&tok, g, &err) ||
        ids_tokenize(tok, text, len, o, &ids, &n, &err)) {
        rc = fail(&err);
    } else if (a->pieces) {
        for (size_t i = 0; i < n; i++) printf("%d\t%s\n", ids[i], ids_tokenizer_piece(tok, ids[i]));
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
    ids_tokenizer_free(tok);
    ids_gguf_close(g);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    tokenize_args a = {0};
    int rc = args_parse(&tokenize_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (a.text && a.file) return args_usage("tokenize", "%s", "give TEXT or --file, not both");
    if (!a.text && !a.file) return args_usage("tokenize", "%s", "missing TEXT or --file F");
    if (!a.file) return print_tokens(&a, a.text, strlen(a.text));
    size_t len = 0;
    char *text = read_all(a.file, &len);
    if (!text) {
        fprintf(stderr, "idscope: error: %s: cannot read: %s\n", a.file, strerror(errno));
        return 1;
    }
    rc = print_tokens(&a, text, len);
    free(text);
    return rc;
}
