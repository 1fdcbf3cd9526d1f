/* The idscope command-line tool. Uses only the public API; the only place that exits.
 * Exit codes: 0 success, 1 runtime failure (bad file, missing tensor, ...), 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"

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

static int fail(const ids_err *err) {
    fprintf(stderr, "%s: error: %s\n", g_prog, err->msg);
    return 1;
}

static char *read_all(const char *path, size_t *len);

/* Print DIR/NAME (a result's CSV) on stdout. */
static void echo_file(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2, len;
    char *path = malloc(n);
    if (!path) return;
    snprintf(path, n, "%s/%s", dir, name);
    char *txt = read_all(path, &len);
    if (txt) fwrite(txt, 1, len, stdout);
    free(txt);
    free(path);
}

/* ---------------------------------------------------------------------------------------- */
/* info                                                                                       */

static const char *HELP_INFO =
    "usage: idscope info FILE.gguf [--max-items N]\n"
    "\n"
    "Print a GGUF file's header, architecture, metadata and tensor table.\n"
    "Arrays longer than N elements (default 8) are summarised by their first N.\n";

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
        } else {
            int64_t x = 0;
            if (e.type == IDS_GGUF_UINT64) { /* may not fit int64 */
                uint64_t u;
                memcpy(&u, (const unsigned char *)v->v.arr.data + 8 * i, 8);
                e.v.u = u;
            } else {
                ids_gguf_arr_i64(v, i, &x);
                e.v.i = x;
                e.v.u = (uint64_t)x;
            }
        }
        print_scalar(&e);
    }
    if (shown < n) printf(", ... %" PRIu64 " more", n - shown);
    fputc(']', stdout);
}

static int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    uint64_t max_items = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(HELP_INFO, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--max-items")) {
            if (i + 1 >= argc) return usage_error("info", "%s needs a value", argv[i]);
            char *end;
            errno = 0;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || errno || v < 0) return usage_error("info", "bad --max-items '%s'", argv[i]);
            max_items = (uint64_t)v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("info", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return usage_error("info", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!path) return usage_error("info", "%s", "missing FILE.gguf");
    ids_err err;
    ids_gguf *g;
    if (ids_gguf_open(&g, path, &err)) return fail(&err);
    const char *arch = "(none)";
    ids_gguf_get_str(g, "general.architecture", &arch, NULL);
    printf("file: %s\n", path);
    printf("gguf version: %u, alignment: %u, data offset: %" PRIu64 ", file size: %" PRIu64 "\n",
           ids_gguf_version(g), ids_gguf_alignment(g), ids_gguf_data_offset(g), ids_gguf_file_size(g));
    printf("architecture: %s\n", arch);
    printf("\nmetadata (%" PRId64 " entries):\n", ids_gguf_n_kv(g));
    for (int64_t i = 0; i < ids_gguf_n_kv(g); i++) {
        const ids_gguf_value *v = ids_gguf_kv_value(g, i);
        printf("  %-44s %-4s ", ids_gguf_kv_key(g, i), ids_gguf_type_name(v->type));
        print_value(v, max_items);
        fputc('\n', stdout);
    }
    int64_t nt = ids_gguf_n_tensors(g);
    printf("\ntensors (%" PRId64 "):\n", nt);
    printf("  %-48s %-7s %-28s %14s\n", "name", "type", "shape (ne0 first)", "bytes");
    uint64_t total = 0, per_type[IDS_TYPE_COUNT] = {0};
    int64_t count_type[IDS_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < nt; i++) {
        const ids_tensor *t = ids_gguf_tensor_at(g, i);
        char shape[96];
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
        if (count_type[ty])
            printf("%s %s: %" PRId64 " tensors", ty ? "," : ";", ids_type_name(ty), count_type[ty]);
    printf("\n");
    ids_gguf_close(g);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* tensor                                                                                     */

static const char *HELP_TENSOR =
    "usage: idscope tensor FILE.gguf NAME -o OUT.npy\n"
    "\n"
    "Dequantize one tensor to float32 and write it as a NumPy .npy file. The array shape is the\n"
    "GGUF shape reversed (ne = [in, out] becomes (out, in)), so the bytes keep their order.\n";

static int cmd_tensor(int argc, char **argv) {
    const char *path = NULL, *name = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(HELP_TENSOR, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (i + 1 >= argc) return usage_error("tensor", "%s needs a value", argv[i]);
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("tensor", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else if (!name) {
            name = argv[i];
        } else {
            return usage_error("tensor", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!path) return usage_error("tensor", "%s", "missing FILE.gguf");
    if (!name) return usage_error("tensor", "%s", "missing tensor NAME");
    if (!out) return usage_error("tensor", "%s", "missing -o OUT.npy");
    ids_err err;
    ids_gguf *g;
    if (ids_gguf_open(&g, path, &err)) return fail(&err);
    const ids_tensor *t = ids_gguf_find_tensor(g, name);
    if (!t) {
        fprintf(stderr, "%s: error: %s: no tensor named '%s' (%" PRId64 " tensors; see 'idscope info')\n",
                g_prog, path, name, ids_gguf_n_tensors(g));
        ids_gguf_close(g);
        return 1;
    }
    int64_t n = ids_tensor_nelements(t);
    float *buf = malloc((size_t)(n ? n : 1) * sizeof(float));
    int rc = 0;
    if (!buf) {
        fprintf(stderr, "%s: error: out of memory for %" PRId64 " floats\n", g_prog, n);
        rc = 1;
    } else if (ids_tensor_to_f32(t, buf, &err)) {
        rc = fail(&err);
    } else {
        int64_t shape[4];
        for (int d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d];
        if (ids_npy_write(out, "<f4", t->n_dims, shape, buf, &err)) rc = fail(&err);
        else fprintf(stderr, "wrote %s: %s %s -> float32 (%" PRId64 " values)\n", out, name,
                     ids_type_name(t->type), n);
    }
    free(buf);
    ids_gguf_close(g);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* tokenize                                                                                   */

static const char *HELP_TOKENIZE =
    "usage: idscope tokenize -m MODEL.gguf [--no-bos] [--pieces] [--special] (TEXT | --file F)\n"
    "\n"
    "Tokenize text with the model's own tokenizer (SPM or byte-level BPE, as llama.cpp does) and\n"
    "print the token ids, space-separated, on one line.\n"
    "\n"
    "  -m, --model FILE  a GGUF holding tokenizer.ggml.* metadata (model or vocab-only file)\n"
    "  --no-bos          do not prepend BOS (by default BOS is added when the vocabulary asks)\n"
    "  --pieces          print one line per token instead: id, tab, the vocabulary piece\n"
    "  --special         recognise control tokens written in the text (e.g. <|im_start|>)\n"
    "  -f, --file F      read the text from file F ('-' for standard input)\n";

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

static int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL;
    bool no_bos = false, pieces = false, special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_TOKENIZE, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) return usage_error("tokenize", "%s needs a value", a);
            model = argv[++i];
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (i + 1 >= argc) return usage_error("tokenize", "%s needs a value", a);
            file = argv[++i];
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (!strcmp(a, "--")) {
            if (i + 1 < argc && !text) text = argv[++i];
            if (i + 1 < argc) return usage_error("tokenize", "unexpected argument '%s'", argv[i + 1]);
            break;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("tokenize", "unknown option '%s'", a);
        } else if (!text) {
            text = a;
        } else {
            return usage_error("tokenize", "unexpected argument '%s' (quote the text)", a);
        }
    }
    if (!model) return usage_error("tokenize", "%s", "missing -m MODEL.gguf");
    if (text && file) return usage_error("tokenize", "%s", "give TEXT or --file, not both");
    if (!text && !file) return usage_error("tokenize", "%s", "missing TEXT or --file F");
    size_t len = 0;
    char *owned = NULL;
    if (file) {
        owned = read_all(file, &len);
        if (!owned) {
            fprintf(stderr, "%s: error: %s: cannot read: %s\n", g_prog, file, strerror(errno));
            return 1;
        }
        text = owned;
    } else {
        len = strlen(text);
    }
    ids_err err;
    ids_gguf *g = NULL;
    ids_tokenizer *tok = NULL;
    int rc = 0;
    if (ids_gguf_open(&g, model, &err) || ids_tokenizer_load(&tok, g, &err)) {
        rc = fail(&err);
        goto done;
    }
    int32_t *ids;
    size_t n;
    ids_tokenize_opts o = {.add_bos = !no_bos, .parse_special = special};
    if (ids_tokenize(tok, text, len, o, &ids, &n, &err)) {
        rc = fail(&err);
        goto done;
    }
    if (pieces) {
        for (size_t i = 0; i < n; i++) printf("%d\t%s\n", ids[i], ids_tokenizer_piece(tok, ids[i]));
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
done:
    ids_tokenizer_free(tok);
    ids_gguf_close(g);
    free(owned);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* Shared model/image/prompt options (capture, ask)                                           */

#define MAX_IMAGES 64

typedef struct {
    const char *model, *mmproj, *prompt, *prompt_file, *question, *video;
    const char *images[MAX_IMAGES];
    int n_images, threads, frames, video_frames;
} vlm_args;

/* Returns 1 if argv[*i] was one of the shared options (consuming its value), 0 if not, or -1 after
 * printing a usage error. */
static int vlm_arg(const char *cmd, vlm_args *a, int argc, char **argv, int *i) {
    const char *o = argv[*i];
    const char **dst = NULL;
    if (!strcmp(o, "-m") || !strcmp(o, "--model")) dst = &a->model;
    else if (!strcmp(o, "--mmproj")) dst = &a->mmproj;
    else if (!strcmp(o, "--prompt") || !strcmp(o, "-p")) dst = &a->prompt;
    else if (!strcmp(o, "--prompt-file")) dst = &a->prompt_file;
    else if (!strcmp(o, "--question") || !strcmp(o, "-q")) dst = &a->question;
    else if (!strcmp(o, "--video")) dst = &a->video;
    else if (!strcmp(o, "--frames")) {
        if (*i + 1 >= argc) return usage_error(cmd, "%s needs a value", o), -1;
        char *end;
        long v = strtol(argv[++*i], &end, 10);
        if (*end || v < 1 || v > 32) return usage_error(cmd, "bad --frames '%s' (1..32)", argv[*i]), -1;
        a->frames = (int)v;
        return 1;
    } else if (!strcmp(o, "--image")) {
        if (*i + 1 >= argc) return usage_error(cmd, "%s needs a value", o), -1;
        if (a->n_images == MAX_IMAGES) return usage_error(cmd, "%s", "too many --image"), -1;
        a->images[a->n_images++] = argv[++*i];
        return 1;
    } else if (!strcmp(o, "--threads") || !strcmp(o, "-t")) {
        if (*i + 1 >= argc) return usage_error(cmd, "%s needs a value", o), -1;
        char *end;
        long v = strtol(argv[++*i], &end, 10);
        if (*end || v < 1 || v > 256) return usage_error(cmd, "bad thread count '%s'", argv[*i]), -1;
        a->threads = (int)v;
        return 1;
    } else
        return 0;
    if (*i + 1 >= argc) return usage_error(cmd, "%s needs a value", o), -1;
    *dst = argv[++*i];
    return 1;
}

/* Load model, images and prompt. On failure prints the error and returns the exit code. */
/* video_mode: with --video and --question, the frames are one <video> in the prompt (a tower with a
 * video mode encodes them as temporal patches), else one <image> block each. */
static int vlm_setup(const char *cmd, vlm_args *a, ids_vlm **vlm, ids_image *imgs, char **prompt, bool video_mode) {
    ids_err err;
    *vlm = NULL;
    *prompt = NULL;
    if (!a->model) return usage_error(cmd, "%s", "missing -m TEXT.gguf");
    if (!a->mmproj) return usage_error(cmd, "%s", "missing --mmproj MMPROJ.gguf");
    int given = (a->prompt != NULL) + (a->prompt_file != NULL) + (a->question != NULL);
    if (given != 1) return usage_error(cmd, "%s", "give exactly one of --prompt, --prompt-file, --question");
    if (a->frames && !a->video) return usage_error(cmd, "%s", "--frames needs --video");
    for (int i = 0; i < a->n_images; i++) {
        if (ids_image_load(&imgs[i], a->images[i], &err)) {
            for (int k = 0; k < i; k++) ids_image_free(&imgs[k]);
            return fail(&err);
        }
    }
    if (a->video) { /* T frames sampled uniformly, each one image block after the --image ones */
        const int T = a->frames ? a->frames : 8;
        ids_image *fr;
        if (a->n_images + T > MAX_IMAGES) return usage_error(cmd, "%s", "more than 64 images and video frames");
        if (ids_video_load(a->video, T, &fr, NULL, &err)) {
            for (int k = 0; k < a->n_images; k++) ids_image_free(&imgs[k]);
            return fail(&err);
        }
        for (int k = 0; k < T; k++) imgs[a->n_images++] = fr[k];
        free(fr);
        a->video_frames = T;
    }
    if (ids_vlm_load(vlm, a->model, a->mmproj, &err)) {
        for (int k = 0; k < a->n_images; k++) ids_image_free(&imgs[k]);
        return fail(&err);
    }
    if (a->prompt_file) {
        size_t len;
        *prompt = read_all(a->prompt_file, &len);
        if (!*prompt) {
            fprintf(stderr, "%s: error: %s: cannot read: %s\n", g_prog, a->prompt_file, strerror(errno));
            return 1;
        }
    } else if (a->question && video_mode && a->video_frames) { /* the --image markers, then the video's */
        *prompt = ids_vlm_video_prompt(*vlm, a->question, a->n_images - a->video_frames);
    } else if (a->question) {
        *prompt = ids_vlm_prompt(*vlm, a->question, a->n_images);
    } else {
        *prompt = strdup(a->prompt);
    }
    return *prompt ? 0 : 1;
}

static void vlm_teardown(vlm_args *a, ids_vlm *vlm, ids_image *imgs, char *prompt) {
    for (int k = 0; k < a->n_images; k++) ids_image_free(&imgs[k]);
    ids_vlm_free(vlm);
    free(prompt);
}

#define VLM_HELP                                                                                  \
    "  -m, --model TEXT.gguf    decoder GGUF (llama architecture)\n"                               \
    "  --mmproj MMPROJ.gguf     vision tower GGUF (projector 'mlp', LLaVA-1.5)\n"                   \
    "  --image IMG              PNG/JPEG/BMP; repeat for several <image> markers\n"                 \
    "  --video V                a video (MP4...) or a folder of frames: --frames T of them (default\n" \
    "                           8), sampled uniformly, after the --image ones; with --question (ask)\n" \
    "                           one <video> (Qwen2-VL: temporal patches), else one <image> per frame\n" \
    "  --prompt TEXT            the full prompt, used verbatim, with <image> where images go\n"     \
    "  --prompt-file F          the same, read from a file\n"                                        \
    "  -q, --question TEXT      a question, wrapped in the model's chat template with the images\n" \
    "  -t, --threads N          compute threads (default: all cores)\n"

/* ---------------------------------------------------------------------------------------- */
/* capture                                                                                    */

static const char *HELP_CAPTURE =
    "usage: idscope capture -m TEXT.gguf --mmproj MMPROJ.gguf --image IMG (--prompt TEXT | --prompt-file F |\n"
    "                       --question Q) -o OUT.safetensors [--layers all|LIST] [--positions SPEC]\n"
    "                       [--sites resid,logits,image_embd,vision] [--all]\n"
    "\n"
    "Run prompt + image(s) once and write activations to a safetensors file: tokens I32 [n_pos]\n"
    "(-1 on image rows), positions I32 [n_sel, 3], resid F32 [n_layers, n_sel, n_embd], logits F32\n"
    "[n_sel, n_vocab], image_embd F32 [n_img_rows, n_embd], vision F32 [n_blocks, n_vis_tokens,\n"
    "n_vembd], with metadata naming the layers and positions.\n"
    "\n" VLM_HELP
    "  -o, --output F           the safetensors file (written atomically)\n"
    "  --layers all|LIST        residual-stream layers, 0 = embeddings .. n_layer (default all); LIST\n"
    "                           like 0,4,8-12\n"
    "  --positions SPEC         all (default), last, image, text, word:WORD[:N] (N-th occurrence after\n"
    "                           the image, 0-based), or an index list\n"
    "  --sites LIST             any of resid,logits,image_embd,vision (default resid)\n"
    "  --all                    every layer, position and site\n";

static int cmd_capture(int argc, char **argv) {
    vlm_args a = {0};
    const char *out = NULL, *sites = "resid";
    ids_capture_opts co = {.layers = "all", .positions = "all"};
    bool all = false;
    for (int i = 1; i < argc; i++) {
        int r = vlm_arg("capture", &a, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r) continue;
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(HELP_CAPTURE, stdout);
            return 0;
        } else if (!strcmp(o, "--all")) {
            all = true;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output") || !strcmp(o, "--layers") ||
                   !strcmp(o, "--positions") || !strcmp(o, "--sites")) {
            if (i + 1 >= argc) return usage_error("capture", "%s needs a value", o);
            const char *val = argv[++i];
            if (o[1] == 'o' || !strcmp(o, "--output")) out = val;
            else if (!strcmp(o, "--layers")) co.layers = val;
            else if (!strcmp(o, "--positions")) co.positions = val;
            else sites = val;
        } else {
            return usage_error("capture", "unknown argument '%s'", o);
        }
    }
    if (!out) return usage_error("capture", "%s", "missing -o OUT.safetensors");
    if (all) {
        co.layers = "all";
        co.positions = "all";
        sites = "resid,logits,image_embd,vision";
    }
    char sbuf[256];
    snprintf(sbuf, sizeof sbuf, "%s", sites);
    for (char *t = strtok(sbuf, ","); t; t = strtok(NULL, ",")) {
        if (!strcmp(t, "resid")) co.resid = true;
        else if (!strcmp(t, "logits")) co.logits = true;
        else if (!strcmp(t, "image_embd")) co.image_embd = true;
        else if (!strcmp(t, "vision")) co.vision = true;
        else return usage_error("capture", "unknown site '%s' (resid, logits, image_embd, vision)", t);
    }
    co.n_threads = a.threads;
    ids_vlm *vlm;
    ids_image imgs[MAX_IMAGES] = {{0}};
    char *prompt;
    int rc = vlm_setup("capture", &a, &vlm, imgs, &prompt, false);
    if (rc) {
        vlm_teardown(&a, vlm, imgs, prompt);
        return rc;
    }
    ids_err err;
    fprintf(stderr, "capture: encoding %d image%s and running the prompt...\n", a.n_images,
            a.n_images == 1 ? "" : "s");
    if (ids_capture(vlm, prompt, imgs, a.n_images, &co, out, &err)) rc = fail(&err);
    else fprintf(stderr, "wrote %s\n", out);
    vlm_teardown(&a, vlm, imgs, prompt);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* ask                                                                                        */

static const char *HELP_ASK =
    "usage: idscope ask -m TEXT.gguf --mmproj MMPROJ.gguf (--image IMG | --video V) (--question Q | --prompt TEXT |\n"
    "                   --prompt-file F) [-n N] [--choices \" left, right\"]\n"
    "\n"
    "Greedy answer of the model, and with --choices the log-probability of each choice as the next\n"
    "token (a choice's token is the last piece of tokenize(\" \" + choice), the paper's word rule).\n"
    "\n" VLM_HELP
    "  -n N                     answer length in tokens (default 16)\n"
    "  --choices LIST           comma-separated candidate answers\n"
    "  --json                   print one JSON object instead of text\n";

static void json_str(const char *s) {
    fputc('"', stdout);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else fputc(c, stdout);
    }
    fputc('"', stdout);
}

static int cmd_ask(int argc, char **argv) {
    vlm_args a = {0};
    int n_new = 16;
    const char *choices = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int r = vlm_arg("ask", &a, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r) continue;
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            fputs(HELP_ASK, stdout);
            return 0;
        } else if (!strcmp(o, "-n")) {
            if (i + 1 >= argc) return usage_error("ask", "%s needs a value", o);
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 4096) return usage_error("ask", "bad token count '%s'", argv[i]);
            n_new = (int)v;
        } else if (!strcmp(o, "--choices")) {
            if (i + 1 >= argc) return usage_error("ask", "%s needs a value", o);
            choices = argv[++i];
        } else if (!strcmp(o, "--json")) {
            json = true;
        } else {
            return usage_error("ask", "unknown argument '%s'", o);
        }
    }
    ids_vlm *vlm;
    ids_image imgs[MAX_IMAGES] = {{0}};
    char *prompt;
    int rc = vlm_setup("ask", &a, &vlm, imgs, &prompt, true);
    if (rc) {
        vlm_teardown(&a, vlm, imgs, prompt);
        return rc;
    }
    const ids_model *m = ids_vlm_model(vlm);
    const ids_tokenizer *tok = ids_model_tokenizer(m);
    ids_err err;
    ids_seq *s = NULL;
    ids_ctx *c = NULL;
    int32_t cand[64];
    char *names[64];
    int n_cand = 0;
    char *cbuf = choices ? strdup(choices) : NULL;
    if (cbuf)
        for (char *t = strtok(cbuf, ","); t && n_cand < 64; t = strtok(NULL, ",")) {
            while (*t == ' ') t++;
            int32_t id = ids_tokenizer_word_token(tok, t, &err);
            if (id < 0) {
                rc = fail(&err);
                goto done;
            }
            names[n_cand] = t;
            cand[n_cand++] = id;
        }
    if (ids_vlm_build_video_seq(vlm, prompt, imgs, a.n_images, strstr(prompt, IDS_VIDEO_MARKER) ? a.video_frames : 0,
                                a.threads, NULL, &s, &err)) {
        rc = fail(&err);
        goto done;
    }
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = ids_seq_len(s) + n_new;
    cp.max_rows = ids_seq_len(s);
    cp.n_threads = a.threads;
    cp.keep_clean = false;
    float lp[64];
    ids_run_opts ro = {.cand = cand, .n_cand = n_cand};
    ids_run_out out = {.cand_logprob = lp};
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)(n_new + 1));
    int n_gen = 0;
    if (ids_ctx_new(&c, m, cp, &err) || ids_ctx_prefill(c, s, NULL, 0, &ro, &out, &err) ||
        ids_ctx_generate(c, NULL, 0, n_new, gen, &n_gen, &err)) {
        free(gen);
        rc = fail(&err);
        goto done;
    }
    char *answer = NULL;
    ids_detokenize(tok, gen, (size_t)n_gen, false, true, &answer, &err);
    if (json) {
        printf("{\"answer\": ");
        json_str(answer ? answer : "");
        printf(", \"choices\": [");
        for (int i = 0; i < n_cand; i++) {
            printf("%s{\"choice\": ", i ? ", " : "");
            json_str(names[i]);
            printf(", \"token\": %d, \"logprob\": %.6f}", cand[i], lp[i]);
        }
        printf("]}\n");
    } else {
        printf("answer: %s\n", answer ? answer : "");
        for (int i = 0; i < n_cand; i++)
            printf("log P(%s) = %.4f  (token %d '%s')\n", names[i], lp[i], cand[i], ids_tokenizer_piece(tok, cand[i]));
    }
    free(answer);
    free(gen);
done:
    free(cbuf);
    ids_ctx_free(c);
    ids_seq_free(s);
    vlm_teardown(&a, vlm, imgs, prompt);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* stimuli                                                                                    */

static const char *HELP_STIMULI =
    "usage: idscope stimuli SET --out DIR [options]\n"
    "       idscope stimuli coco --coco-json FILE --coco-images DIR --out DIR\n"
    "       idscope stimuli --list\n"
    "\n"
    "Generate a synthetic stimulus set with ground truth: images (PNG; videos as folders of frames)\n"
    "and DIR/manifest.json, one record per image with each object's name, prompt word, cell, centre,\n"
    "box and size, and the question and expected answer of every relation it supports.\n"
    "\n"
    "sets:\n"
    "  grid      objects A and B at every ordered pair of distinct cells of an n x n grid, each size\n"
    "  depth     a ground plane seen by a pinhole camera; truth for in front of / behind, left / right\n"
    "  nearfar   two objects at controlled distances; near / far by a threshold\n"
    "  between   three objects; is A between B and C (yes / no)\n"
    "  video     T frames; A appears at frame i, B at frame j (i != j, 1..T-1) and stay; before / after\n"
    "  coco      import COCO-Spatial (What'sUp coco_qa_two_obj.json) into the same record format\n"
    "\n"
    "options (defaults in brackets):\n"
    "  --out DIR             output folder (created)\n"
    "  --seed N              random seed [1]; the same seed gives byte-identical files\n"
    "  --size PX             image side in pixels [224]\n"
    "  --grid N              grid cells per side [4]\n"
    "  --sizes LIST          object sizes as fractions of a cell [1,0.78,0.55,0.33]\n"
    "  --objects LIST        comma-separated object names [red circle,blue square(,green triangle)]\n"
    "  --all-pairs           every ordered pair (triple) of the objects, not only the first [off]\n"
    "  --sprite FILE         add a user sprite (PNG with alpha, named after the file); repeatable\n"
    "  --jitter F            centre jitter, fraction of a cell [0]\n"
    "  --size-jitter F       relative size jitter [0]\n"
    "  --rotate DEG          rotation jitter in degrees [0]\n"
    "  --bg R,G,B            background colour [0,0,0]\n"
    "  --bg-image FILE       background image, resized to the image size [none]\n"
    "  --frames T            video frames [8]\n"
    "  --near-threshold F    near / far threshold, fraction of the image size [0.35]\n"
    "  --repeats N           random placements per configuration (nearfar, between) [10]\n"
    "  --mirror              also write each item's horizontal mirror (left / right swapped) [off]\n"
    "  --recolor             also write each item with other colours (attribute control) [off]\n"
    "  --mp4                 videos also as ID.mp4 (MPEG-4), besides the frame folders [off]\n"
    "  --limit N             write only the first N items [all]\n"
    "  --list                list the built-in objects\n";

static void print_progress(const char *what, long done, long total, void *user) {
    (void)user;
    fprintf(stderr, "\r%s: %ld/%ld", what, done, total);
    if (done == total) fputc('\n', stderr);
}

static int parse_floats(const char *s, float *out, int max) {
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        char *end;
        double v = strtod(t, &end);
        if (*end || n == max) return -1;
        out[n++] = (float)v;
    }
    return n;
}

static int cmd_stimuli(int argc, char **argv) {
    const char *set = NULL, *out = NULL, *objects = NULL, *bg_image = NULL, *coco_json = NULL, *coco_images = NULL;
    const char *sprites[32];
    int n_sprites = 0, limit = 0;
    bool mirror = false, recolor = false, list = false;
    float sizes[16];
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_STIMULI, stdout);
            return 0;
        } else if (!strcmp(a, "--mirror")) mirror = true;
        else if (!strcmp(a, "--recolor")) recolor = true;
        else if (!strcmp(a, "--mp4")) o.write_mp4 = true;
        else if (!strcmp(a, "--all-pairs")) o.all_pairs = true;
        else if (!strcmp(a, "--list")) list = true;
        else if (a[0] == '-' && a[1] == '-') {
            if (!val) return usage_error("stimuli", "%s needs a value", a);
            i++;
            if (!strcmp(a, "--out")) out = val;
            else if (!strcmp(a, "--objects")) objects = val;
            else if (!strcmp(a, "--bg-image")) bg_image = val;
            else if (!strcmp(a, "--coco-json")) coco_json = val;
            else if (!strcmp(a, "--coco-images")) coco_images = val;
            else if (!strcmp(a, "--sprite")) {
                if (n_sprites == 32) return usage_error("stimuli", "%s", "at most 32 sprites");
                sprites[n_sprites++] = val;
            } else if (!strcmp(a, "--sizes")) {
                o.n_sizes = parse_floats(val, sizes, 16);
                if (o.n_sizes <= 0) return usage_error("stimuli", "bad --sizes '%s'", val);
                o.sizes = sizes;
            } else if (!strcmp(a, "--bg")) {
                float rgb[3];
                if (parse_floats(val, rgb, 3) != 3) return usage_error("stimuli", "bad --bg '%s' (expected R,G,B)", val);
                for (int k = 0; k < 3; k++) {
                    if (rgb[k] < 0 || rgb[k] > 255) return usage_error("stimuli", "bad --bg '%s'", val);
                    o.bg[k] = (uint8_t)rgb[k];
                }
            } else if (!strcmp(a, "--jitter") || !strcmp(a, "--size-jitter") || !strcmp(a, "--rotate") ||
                       !strcmp(a, "--near-threshold")) {
                double v = strtod(val, &end);
                if (*end) return usage_error("stimuli", "bad number '%s'", val);
                if (!strcmp(a, "--jitter")) o.jitter_pos = (float)v;
                else if (!strcmp(a, "--size-jitter")) o.jitter_size = (float)v;
                else if (!strcmp(a, "--rotate")) o.jitter_rot = (float)v;
                else o.near_threshold = (float)v;
            } else if (!strcmp(a, "--seed") || !strcmp(a, "--size") || !strcmp(a, "--grid") ||
                       !strcmp(a, "--frames") || !strcmp(a, "--repeats") || !strcmp(a, "--limit")) {
                long long v = strtoll(val, &end, 10);
                if (*end || v < 0 || v > 1000000000LL) return usage_error("stimuli", "bad integer '%s'", val);
                if (!strcmp(a, "--seed")) o.seed = (uint64_t)v;
                else if (!strcmp(a, "--size")) o.image_size = (int)v;
                else if (!strcmp(a, "--grid")) o.grid = (int)v;
                else if (!strcmp(a, "--frames")) o.frames = (int)v;
                else if (!strcmp(a, "--repeats")) o.repeats = (int)v;
                else limit = (int)v;
            } else {
                return usage_error("stimuli", "unknown option '%s'", a);
            }
        } else if (!set) {
            set = a;
        } else {
            return usage_error("stimuli", "unexpected argument '%s'", a);
        }
    }
    ids_catalog *cat = ids_catalog_new();
    ids_err err;
    int rc = 0, objs[16];
    ids_image bg = {0};
    if (!cat) return 1;
    for (int k = 0; k < n_sprites; k++)
        if (ids_catalog_add_sprite(cat, sprites[k], &err)) {
            rc = fail(&err);
            goto done;
        }
    if (list) {
        for (int k = 0; k < ids_catalog_count(cat); k++) printf("%s\n", ids_catalog_name(cat, k));
        goto done;
    }
    if (!set) {
        rc = usage_error("stimuli", "%s", "missing SET (grid, depth, nearfar, between, video, coco)");
        goto done;
    }
    if (!out) {
        rc = usage_error("stimuli", "%s", "missing --out DIR");
        goto done;
    }
    if (!strcmp(set, "coco")) {
        if (!coco_json || !coco_images) {
            rc = usage_error("stimuli", "%s", "coco needs --coco-json FILE and --coco-images DIR");
            goto done;
        }
        char path[1100];
        snprintf(path, sizeof path, "%s/manifest.json", out);
        mkdir(out, 0755);
        int ok_n, skipped;
        if (ids_coco_spatial_convert(coco_json, coco_images, path, &ok_n, &skipped, &err)) rc = fail(&err);
        else fprintf(stderr, "coco-spatial: %d records, %d rows skipped; wrote %s\n", ok_n, skipped, path);
        goto done;
    }
    int kind = ids_set_from_name(set);
    if (kind < 0) {
        rc = usage_error("stimuli", "unknown set '%s' (grid, depth, nearfar, between, video, coco)", set);
        goto done;
    }
    if (objects) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", objects);
        o.n_objects = 0;
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            while (*t == ' ') t++;
            if (o.n_objects == 16) {
                rc = usage_error("stimuli", "%s", "at most 16 objects");
                goto done;
            }
            int idx = ids_catalog_find(cat, t, &err);
            if (idx < 0) {
                rc = fail(&err);
                goto done;
            }
            objs[o.n_objects++] = idx;
        }
        o.objects = objs;
    }
    if (bg_image) {
        if (ids_image_load(&bg, bg_image, &err)) {
            rc = fail(&err);
            goto done;
        }
        o.bg_image = &bg;
    }
    if (ids_stimuli_write((ids_set_kind)kind, &o, cat, out, mirror, recolor, limit, print_progress, NULL, &err))
        rc = fail(&err);
    else fprintf(stderr, "wrote %s/manifest.json\n", out);
done:
    ids_image_free(&bg);
    ids_catalog_free(cat);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* train / eval                                                                               */

static const char *HELP_TRAIN =
    "usage: idscope train --config CONFIG.json --out DIR [--threads N]\n"
    "\n"
    "Train the tiny LLaVA-layout VLM on the stimulus engine's tasks and write DIR/text.gguf and\n"
    "DIR/mmproj.gguf (plus DIR/train-log.jsonl and DIR/ckpt-STEP/ checkpoints when asked).\n"
    "Progress (step, loss, held-out accuracy, tokens/s) goes to stderr.\n"
    "\n"
    "CONFIG keys (defaults): image_size 64, patch_size 16, vit_width 64, vit_layers 3, vit_heads 4,\n"
    "vit_ff 256, width 128, layers 6, heads 4, ff 352, frames 8, holdout 0.1, batch 32, warmup 100,\n"
    "eval_every 250, checkpoint_every 0, lr 0.002, min_lr 0.0001, weight_decay 0.01, clip 1, seed 1,\n"
    "threads 0 (all cores), shards 2 (a batch split into shards run side by side; the result\n"
    "depends on shards, not on threads), aux_weight 0 and aux_layer (the auxiliary location loss at\n"
    "the question's object words, read from the residual entering block aux_layer), init_from \"\"\n"
    "(a folder with text.gguf + mmproj.gguf to start from, fresh optimiser),\n"
    "stages [{\"steps\": N, \"weights\": {TASK: weight, ...}}] with tasks\n"
    "describe, left-right, above-below, front-behind, near-far, before-after, text-spatial, locate, where.\n";

static void train_progress(const char *what, long done, long total, void *user) {
    (void)user;
    if (!strcmp(what, "train")) {
        if (done % 10 == 0 || done == total) fprintf(stderr, "\rtrain: step %ld/%ld", done, total);
    } else {
        fprintf(stderr, "\r%s\n", what);
    }
}

static int cmd_train(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_TRAIN, stdout);
            return 0;
        } else if (!strcmp(a, "--config") || !strcmp(a, "--out") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return usage_error("train", "%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--config")) config = v;
            else if (!strcmp(a, "--out")) out = v;
            else {
                char *end;
                threads = (int)strtol(v, &end, 10);
                if (*end || threads < 1) return usage_error("train", "bad thread count '%s'", v);
            }
        } else {
            return usage_error("train", "unknown argument '%s'", a);
        }
    }
    if (!config) return usage_error("train", "%s", "missing --config CONFIG.json");
    if (!out) return usage_error("train", "%s", "missing --out DIR");
    ids_train_config c;
    ids_err err;
    if (ids_train_config_load(config, &c, &err)) return fail(&err);
    if (threads) c.threads = threads;
    if (ids_train(&c, out, train_progress, NULL, &err)) return fail(&err);
    fprintf(stderr, "\nwrote %s/text.gguf and %s/mmproj.gguf\n", out, out);
    return 0;
}

/* The bundled model: $IDSCOPE_MODELS, then models/ beside the executable's build folder, then ./models. */
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

static int parse_objects(const char *cmd, const ids_catalog *cat, const char *list, int *objs, int *n) {
    char buf[1024];
    ids_err err;
    *n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        while (*t == ' ') t++;
        if (*n == 16) return usage_error(cmd, "%s", "at most 16 objects");
        if ((objs[*n] = ids_catalog_find(cat, t, &err)) < 0) return fail(&err);
        (*n)++;
    }
    return 0;
}

static const char *HELP_EVAL =
    "usage: idscope eval [-m TEXT.gguf --mmproj MMPROJ.gguf] --task TASK [--n N] [--seed S]\n"
    "                    [--held-out only|exclude|all] [--json] [--threads N]\n"
    "\n"
    "Accuracy on fresh stimuli, measured with the engine: the answer is the likelier of the two\n"
    "answer words at the answer position. Prints one line per task, 'TASK accuracy CORRECT/N', or\n"
    "with --json one object {\"TASK\": accuracy, ...}. The model defaults to the bundled one.\n"
    "\n"
    "  --task TASK      left-right, above-below, front-behind, near-far, before-after, or all\n"
    "  --n N            questions per task (default 500)\n"
    "  --seed S         evaluation seed (default 1)\n"
    "  --held-out MODE  object pairs: only the held-out ones, exclude them, or all (default all)\n";

static int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *mmproj = NULL, *task = NULL, *held = "all";
    long n = 500, seed = 1;
    int threads = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_EVAL, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--mmproj") || !strcmp(a, "--task") ||
                   !strcmp(a, "--n") || !strcmp(a, "--seed") || !strcmp(a, "--held-out") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return usage_error("eval", "%s needs a value", a);
            const char *v = argv[++i];
            char *end = NULL;
            if (!strcmp(a, "--mmproj")) mmproj = v;
            else if (!strcmp(a, "--task")) task = v;
            else if (!strcmp(a, "--held-out")) held = v;
            else if (a[1] == 'm' || !strcmp(a, "--model")) model = v;
            else {
                long x = strtol(v, &end, 10);
                if (*end || x < 0 || (strcmp(a, "--seed") && x < 1)) return usage_error("eval", "bad number '%s'", v);
                if (!strcmp(a, "--n")) n = x;
                else if (!strcmp(a, "--seed")) seed = x;
                else threads = (int)x;
            }
        } else {
            return usage_error("eval", "unknown argument '%s'", a);
        }
    }
    if (!task) return usage_error("eval", "%s", "missing --task TASK");
    int held_mode = !strcmp(held, "only") ? 1 : !strcmp(held, "exclude") ? 0 : !strcmp(held, "all") ? -1 : -2;
    if (held_mode == -2) return usage_error("eval", "bad --held-out '%s' (only, exclude, all)", held);
    const ids_task all[5] = {IDS_TASK_LEFT_RIGHT, IDS_TASK_ABOVE_BELOW, IDS_TASK_FRONT_BEHIND, IDS_TASK_NEAR_FAR,
                             IDS_TASK_BEFORE_AFTER};
    ids_task tasks[5];
    int nt = 0;
    if (!strcmp(task, "all")) {
        memcpy(tasks, all, sizeof all);
        nt = 5;
    } else {
        int t = ids_task_from_name(task);
        for (int k = 0; k < 5; k++)
            if ((int)all[k] == t) tasks[nt++] = all[k];
        if (!nt) return usage_error("eval", "unknown task '%s' (left-right, above-below, front-behind, near-far, "
                                    "before-after, all)", task);
    }
    char tp[1000], mp[1000];
    int rc0 = resolve_model("eval", &model, &mmproj, tp, mp, sizeof tp);
    if (rc0) return rc0;
    ids_err err;
    ids_vlm *v;
    if (ids_vlm_load(&v, model, mmproj, &err)) return fail(&err);
    /* task geometry from the model: its image size; held-out pairs and frames from its training */
    ids_train_config c;
    ids_train_default_config(&c);
    c.image_size = ids_vision_params(ids_vlm_vision(v))->image_size;
    const char *meta = NULL;
    if (ids_gguf_get_str(ids_model_gguf(ids_vlm_model(v)), "idscope.training", &meta, NULL) == IDS_OK && meta) {
        const char *h = strstr(meta, "\"holdout\":"), *f = strstr(meta, "\"frames\":");
        if (h) c.holdout = (float)strtod(h + 10, NULL);
        if (f) c.frames = (int)strtol(f + 9, NULL, 10);
    }
    int rc = 0;
    if (json) printf("{");
    for (int k = 0; k < nt; k++) {
        int correct = 0;
        if (ids_eval_task(v, tasks[k], (int)n, (uint64_t)seed, held_mode, &c, threads, &correct, &err)) {
            rc = fail(&err);
            break;
        }
        double acc = n ? (double)correct / (double)n : 0;
        if (json) printf("%s\"%s\": %.4f", k ? ", " : "", ids_task_name(tasks[k]), acc);
        else printf("%s accuracy %d/%ld\n", ids_task_name(tasks[k]), correct, n);
        fflush(stdout);
    }
    if (json) printf("}\n");
    ids_vlm_free(v);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* ids                                                                                        */

static const char *HELP_IDS =
    "usage: idscope ids extract [-m TEXT.gguf --mmproj MMPROJ.gguf] --out DIR [--objects LIST]\n"
    "       idscope ids stats DIR\n"
    "                           [--grid N] [--sizes LIST] [--image-size PX] [--per-pair] [--threads N]\n"
    "\n"
    "Spatial IDs (the paper's procedure): for every ordered pair of the objects, subject B at every\n"
    "cell and size, anchor A at every other cell, the question \"Is the B to the left or right of the\n"
    "A?\"; the subject word's activation at every layer, mean-centred within (pair, anchor cell),\n"
    "averaged over anchor cells (per-pair ID) and over pairs (universal ID), and the x/y axes.\n"
    "Writes DIR/ids.safetensors (universal [layers, y, x, size, embd], x_axis, y_axis [layers, embd],\n"
    "per_pair) and DIR/ids.json. The model defaults to the bundled one.\n"
    "\n"
    "  --objects LIST     object names (default: red circle,blue square,green triangle)\n"
    "  --grid N           cells per side (default 4)\n"
    "  --sizes LIST       object sizes as fractions of a cell (default 1,0.78,0.55,0.33)\n"
    "  --image-size PX    stimulus size (default: the tower's input size)\n"
    "  --per-pair         also store every pair's IDs\n"
    "\n"
    "ids stats DIR reads DIR/ids.safetensors and writes DIR/stats.json and DIR/stats.csv: per layer\n"
    "the R^2 of a linear fit of the cell IDs in (x, y), the variance in the plane of the axes, the 2-D\n"
    "PCA coordinates of the cells and its variance, and the mean cosine of per-pair IDs with the\n"
    "universal ID (when extracted with --per-pair).\n";

static int cmd_ids(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "stats")) {
        if (argc >= 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
            fputs(HELP_IDS, stdout);
            return 0;
        }
        if (argc != 3) return usage_error("ids", "%s", "ids stats takes one folder (written by ids extract)");
        ids_err err;
        if (ids_ids_stats(argv[2], &err)) return fail(&err);
        char path[1100];
        snprintf(path, sizeof path, "%s/stats.csv", argv[2]);
        size_t len;
        char *csv = read_all(path, &len);
        if (csv) fputs(csv, stdout);
        free(csv);
        return 0;
    }
    if (argc < 2 || (strcmp(argv[1], "extract") && strcmp(argv[1], "-h") && strcmp(argv[1], "--help")))
        return usage_error("ids", "%s", argc < 2 ? "missing subcommand (extract, stats)" : "unknown subcommand (extract, stats)");
    if (strcmp(argv[1], "extract")) {
        fputs(HELP_IDS, stdout);
        return 0;
    }
    const char *model = NULL, *mmproj = NULL, *out = NULL, *objects = "red circle,blue square,green triangle";
    float sizes[16];
    ids_extract_opts o = {.exp = {.grid = 4}};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_IDS, stdout);
            return 0;
        } else if (!strcmp(a, "--per-pair")) {
            o.per_pair = true;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--mmproj") || !strcmp(a, "--out") ||
                   !strcmp(a, "--objects") || !strcmp(a, "--grid") || !strcmp(a, "--sizes") ||
                   !strcmp(a, "--image-size") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return usage_error("ids", "%s needs a value", a);
            const char *v = argv[++i];
            char *end = NULL;
            if (!strcmp(a, "--mmproj")) mmproj = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--objects")) objects = v;
            else if (!strcmp(a, "--sizes")) {
                o.n_sizes = parse_floats(v, sizes, 16);
                if (o.n_sizes <= 0) return usage_error("ids", "bad --sizes '%s'", v);
                o.sizes = sizes;
            } else if (a[1] == 'm' || !strcmp(a, "--model")) model = v;
            else {
                long x = strtol(v, &end, 10);
                if (*end || x < 1) return usage_error("ids", "bad number '%s'", v);
                if (!strcmp(a, "--grid")) o.exp.grid = (int)x;
                else if (!strcmp(a, "--image-size")) o.exp.image_size = (int)x;
                else o.exp.n_threads = (int)x;
            }
        } else {
            return usage_error("ids", "unknown argument '%s'", a);
        }
    }
    if (!out) return usage_error("ids", "%s", "missing --out DIR");
    char tp[1000], mp[1000];
    int rc = resolve_model("ids", &model, &mmproj, tp, mp, sizeof tp);
    if (rc) return rc;
    ids_catalog *cat = ids_catalog_new();
    ids_err err;
    int objs[16];
    rc = parse_objects("ids", cat, objects, objs, &o.exp.n_objects);
    o.exp.objects = objs;
    ids_vlm *v = NULL;
    if (!rc && ids_vlm_load(&v, model, mmproj, &err)) rc = fail(&err);
    if (!rc && ids_ids_extract(v, cat, &o, out, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc) fprintf(stderr, "wrote %s/ids.safetensors and %s/ids.json\n", out, out);
    ids_vlm_free(v);
    ids_catalog_free(cat);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* swap                                                                                       */

static const char *HELP_SWAP =
    "usage: idscope swap [-m TEXT.gguf --mmproj MMPROJ.gguf] --out DIR [--control] [--objects LIST]\n"
    "                    [--n N] [--grid N] [--seed S] [--threads N]\n"
    "\n"
    "Mirror swapping by activation patching: for grid images with a left/right answer, the clean run's\n"
    "residual rows of one position set (image rows, text rows, the two object words) are replaced at\n"
    "one layer by the mirrored image's; the recovered fraction of the mirror's effect on log P(left),\n"
    "log P(right) and their difference, per layer and set, averaged over images (diff_pooled: the\n"
    "difference pooled over images, steadier when the edit's effect is small). --control uses the\n"
    "attribute edit (recoloured objects, same question) instead of the mirror. Writes DIR/swap.json\n"
    "(or swap-control.json) and the matching .csv. The model defaults to the bundled one.\n"
    "\n"
    "  --objects LIST   object names (default: red circle,blue square); every ordered pair is used\n"
    "  --n N            images per pair (default 8)\n";

static int cmd_swap(int argc, char **argv) {
    const char *model = NULL, *mmproj = NULL, *out = NULL, *objects = "red circle,blue square";
    ids_swap_opts o = {.exp = {.grid = 4, .n_items = 8, .seed = 1}};
    bool control = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_SWAP, stdout);
            return 0;
        } else if (!strcmp(a, "--control")) {
            control = true;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--mmproj") || !strcmp(a, "--out") ||
                   !strcmp(a, "--objects") || !strcmp(a, "--n") || !strcmp(a, "--grid") || !strcmp(a, "--seed") ||
                   !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return usage_error("swap", "%s needs a value", a);
            const char *v = argv[++i];
            char *end;
            if (!strcmp(a, "--mmproj")) mmproj = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--objects")) objects = v;
            else if (a[1] == 'm' || !strcmp(a, "--model")) model = v;
            else {
                long x = strtol(v, &end, 10);
                if (*end || x < 0 || (x < 1 && strcmp(a, "--seed"))) return usage_error("swap", "bad number '%s'", v);
                if (!strcmp(a, "--n")) o.exp.n_items = (int)x;
                else if (!strcmp(a, "--grid")) o.exp.grid = (int)x;
                else if (!strcmp(a, "--seed")) o.exp.seed = (uint64_t)x;
                else o.exp.n_threads = (int)x;
            }
        } else {
            return usage_error("swap", "unknown argument '%s'", a);
        }
    }
    if (!out) return usage_error("swap", "%s", "missing --out DIR");
    char tp[1000], mp[1000];
    int rc = resolve_model("swap", &model, &mmproj, tp, mp, sizeof tp);
    if (rc) return rc;
    ids_catalog *cat = ids_catalog_new();
    ids_err err;
    int objs[16];
    rc = parse_objects("swap", cat, objects, objs, &o.exp.n_objects);
    o.exp.objects = objs;
    ids_vlm *v = NULL;
    ids_swap_result r = {0};
    if (!rc && ids_vlm_load(&v, model, mmproj, &err)) rc = fail(&err);
    if (!rc && ids_swap_run(v, cat, &o, control, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && ids_swap_write(out, &r, &err)) rc = fail(&err);
    if (!rc) echo_file(out, control ? "swap-control.csv" : "swap.csv");
    ids_swap_result_free(&r);
    ids_vlm_free(v);
    ids_catalog_free(cat);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* steer                                                                                      */

static const char *HELP_STEER =
    "usage: idscope steer belief --ids IDS.safetensors [-m TEXT.gguf --mmproj MMPROJ.gguf] --out DIR\n"
    "                            [--relation left-right|above-below] [--factor F] [--layers LO-HI]\n"
    "                            (steer grid also --relation near-far or between)\n"
    "                            [--objects LIST] [--n N] [--seed S] [--threads N]\n"
    "       idscope steer grid --ids IDS.safetensors [...same options...] [--layers L]\n"
    "\n"
    "Belief-swap steering: for grid images, add to the subject word (at one layer) the universal-ID\n"
    "difference that moves it against the model's own answer, and the opposite to the reference word,\n"
    "each scaled to F (default 5) times that word's activation norm; the control adds Gaussian noise\n"
    "of the same norms. Swapped = the sign of log P(first answer) - log P(second) flips. Prints and\n"
    "writes DIR/steer-belief.json and .csv: the rate per layer (ID vs noise) and the mean of the 3\n"
    "best layers. IDs come from 'idscope ids extract' on the same model. Layers default to 1..n-1.\n"
    "The same verdicts from short greedy answers (--greedy N tokens, default 3; 0 = off): swapped when\n"
    "the steered answer names the other answer word (whole words: 'alright' is not 'right').\n"
    "\n"
    "steer grid: at one layer (default n/2) add F x (ID(target) - ID(source cell)) to the subject word\n"
    "for every target cell (F not rescaled; default 5); prints the grid of mean changes of\n"
    "log P(first) - log P(second) and writes DIR/steer-grid-RELATION.json and .csv.\n";

/* Command line shared by steer and depth: the model, the IDs file, the output folder, the objects and
 * the steering knobs of ids_steer_opts. The model paths point into tp/mp when they are defaulted. */
typedef struct steer_cli {
    const char *model, *mmproj, *out, *ids, *objects;
    ids_steer_opts o;
    int objs[16];
    char tp[1000], mp[1000];
} steer_cli;

/* Parse argv[first..]: returns -1 to go on, else the exit code (0 after --help). with_relation: accept
 * --relation; one_layer: --layers may name a single layer. */
static int steer_cli_parse(const char *cmd, const char *help, bool with_relation, bool one_layer, int argc, char **argv,
                           int first, steer_cli *c) {
    c->model = c->mmproj = c->out = c->ids = NULL;
    c->objects = NULL; /* default: red circle, blue square (and green triangle for "between") */
    c->o = (ids_steer_opts){.exp = {.n_items = 8, .seed = 1}, .factor = 5.0f, .relation = IDS_REL_LEFT_RIGHT, .greedy_tokens = 3};
    ids_steer_opts *o = &c->o;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return 0;
        }
        if (i + 1 >= argc) return usage_error(cmd, "%s needs a value (or is unknown)", a);
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--mmproj")) c->mmproj = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) c->model = v;
        else if (!strcmp(a, "--out")) c->out = v;
        else if (!strcmp(a, "--ids")) c->ids = v;
        else if (!strcmp(a, "--objects")) c->objects = v;
        else if (with_relation && !strcmp(a, "--relation")) {
            if (!strcmp(v, "left-right")) o->relation = IDS_REL_LEFT_RIGHT;
            else if (!strcmp(v, "above-below")) o->relation = IDS_REL_ABOVE_BELOW;
            else if (one_layer && !strcmp(v, "near-far")) o->relation = IDS_REL_NEAR_FAR;
            else if (one_layer && !strcmp(v, "between")) o->relation = IDS_REL_BETWEEN;
            else return usage_error(cmd, one_layer ? "bad --relation '%s' (left-right, above-below, near-far, between)"
                                                   : "bad --relation '%s' (left-right, above-below)", v);
        } else if (!strcmp(a, "--factor")) {
            o->factor = strtof(v, &end);
            if (*end || o->factor <= 0) return usage_error(cmd, "bad --factor '%s'", v);
        } else if (!strcmp(a, "--layers")) {
            int k = sscanf(v, "%d-%d", &o->layer_lo, &o->layer_hi);
            if (one_layer && k == 1 && o->layer_lo >= 1) o->layer_hi = o->layer_lo;
            else if (k != 2 || o->layer_lo < 1 || o->layer_hi < o->layer_lo)
                return usage_error(cmd, one_layer ? "bad --layers '%s' (e.g. 2-5; steer grid: one layer)"
                                                  : "bad --layers '%s' (e.g. 2-5)", v);
        } else if (!strcmp(a, "--n") || !strcmp(a, "--seed") || !strcmp(a, "--threads") || !strcmp(a, "--greedy")) {
            long x = strtol(v, &end, 10);
            if (*end || x < 0 || (!strcmp(a, "--greedy") && x > 64)) return usage_error(cmd, "bad number '%s'", v);
            if (!strcmp(a, "--n")) o->exp.n_items = (int)x;
            else if (!strcmp(a, "--seed")) o->exp.seed = (uint64_t)x;
            else if (!strcmp(a, "--greedy")) o->greedy_tokens = (int)x;
            else o->exp.n_threads = (int)x;
        } else {
            return usage_error(cmd, "unknown argument '%s'", a);
        }
    }
    if (!c->ids) return usage_error(cmd, "%s", "missing --ids IDS.safetensors");
    if (!c->out) return usage_error(cmd, "%s", "missing --out DIR");
    c->o.ids_path = c->ids;
    return -1;
}

/* The catalog, the objects and the model of a parsed steer_cli; returns the exit code (0 to go on).
 * *cat is the caller's even on failure; *v is NULL on failure. */
static int steer_cli_load(const char *cmd, steer_cli *c, ids_catalog **cat, ids_vlm **v) {
    *cat = NULL;
    *v = NULL;
    int rc = resolve_model(cmd, &c->model, &c->mmproj, c->tp, c->mp, sizeof c->tp);
    if (rc) return rc;
    *cat = ids_catalog_new();
    const char *list = c->objects ? c->objects
                                  : c->o.relation == IDS_REL_BETWEEN ? "red circle,blue square,green triangle"
                                                                     : "red circle,blue square";
    rc = parse_objects(cmd, *cat, list, c->objs, &c->o.exp.n_objects);
    c->o.exp.objects = c->objs;
    ids_err err;
    if (!rc && ids_vlm_load(v, c->model, c->mmproj, &err)) rc = fail(&err);
    return rc;
}

static int cmd_steer(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "belief") && strcmp(argv[1], "grid"))) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            fputs(HELP_STEER, stdout);
            return 0;
        }
        return usage_error("steer", "%s", "missing or unknown subcommand (belief, grid)");
    }
    const bool grid_mode = !strcmp(argv[1], "grid");
    steer_cli c;
    int rc = steer_cli_parse("steer", HELP_STEER, true, grid_mode, argc, argv, 2, &c);
    if (rc >= 0) return rc;
    const char *out = c.out;
    ids_catalog *cat;
    ids_vlm *v;
    ids_err err;
    ids_steer_result r = {0};
    rc = steer_cli_load("steer", &c, &cat, &v);
    const ids_steer_opts o = c.o; /* with the objects steer_cli_load parsed */
    if (!rc && grid_mode) {
        ids_steer_grid_result g;
        if (ids_steer_grid(v, cat, &o, &g, print_progress, NULL, &err) || ids_steer_grid_write(out, &g, &err)) {
            rc = fail(&err);
        } else {
            printf("layer %d, mean change of log P(%s) - log P(%s), target cell (row y, column x):\n", g.layer,
                   ids_answer_word(g.relation, true), ids_answer_word(g.relation, false));
            for (int y = 0; y < g.grid; y++) {
                for (int x = 0; x < g.grid; x++) printf("%9.4f", g.delta[y * g.grid + x]);
                printf("\n");
            }
        }
        ids_steer_grid_result_free(&g);
    } else if (!rc && ids_steer_belief(v, cat, &o, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && !grid_mode && ids_steer_write(out, &r, &err)) rc = fail(&err);
    if (!rc && !grid_mode) {
        echo_file(out, "steer-belief.csv");
        printf("best 3 layers: ID %.4f, noise %.4f\n", r.best3_id, r.best3_noise);
        if (r.greedy_id)
            printf("greedy answers, best 3 layers: ID %.4f, noise %.4f\n", r.greedy_best3_id, r.greedy_best3_noise);
    }
    ids_steer_result_free(&r);
    ids_vlm_free(v);
    ids_catalog_free(cat);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* depth                                                                                      */

static const char *HELP_DEPTH =
    "usage: idscope depth --ids IDS.safetensors [-m TEXT.gguf --mmproj MMPROJ.gguf] --out DIR\n"
    "                     [--layers LO-HI] [--factor F] [--objects LIST] [--n N] [--seed S] [--threads N]\n"
    "\n"
    "Depth diagnosis: push the subject word down (+) or up (-) with the row-only ID difference\n"
    "U(0, bottom) - U(0, top), scaled to F (default 5) x its norm, at each layer of the band; report the\n"
    "mean change of log P(above) - log P(below) on grid scenes and of log P(in front) - log P(behind)\n"
    "on depth scenes. A model that confuses up/down with back/front moves its depth answer with the\n"
    "vertical ID. Writes DIR/depth.json and DIR/depth.csv.\n";

static int cmd_depth(int argc, char **argv) {
    steer_cli c;
    int rc = steer_cli_parse("depth", HELP_DEPTH, false, false, argc, argv, 1, &c);
    if (rc >= 0) return rc;
    const char *out = c.out;
    ids_catalog *cat;
    ids_vlm *v;
    ids_err err;
    ids_depth_result d = {0};
    rc = steer_cli_load("depth", &c, &cat, &v);
    const ids_steer_opts o = c.o; /* with the objects steer_cli_load parsed */
    if (!rc && ids_depth_diag(v, cat, &o, &d, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && ids_depth_write(out, &d, &err)) rc = fail(&err);
    if (!rc) echo_file(out, "depth.csv");
    ids_depth_result_free(&d);
    ids_vlm_free(v);
    ids_catalog_free(cat);
    return rc;
}


/* ---------------------------------------------------------------------------------------- */
/* score                                                                                      */

static const char *HELP_SCORE =
    "usage: idscope score --stats STATS.json --steer STEER-BELIEF.json -o SCORE.json\n"
    "\n"
    "ID-strength score per layer (not in the paper): linearity (R^2 of the IDs in position, from\n"
    "'ids stats') x consistency across object pairs (mean cosine with the universal ID, clamped at 0;\n"
    "extract with --per-pair) x causal effect (ID swap rate minus noise swap rate, clamped at 0, from\n"
    "'steer belief'). Each factor is in [0, 1]. Prints the best layer and its score.\n";

static int cmd_score(int argc, char **argv) {
    const char *stats = NULL, *steer = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_SCORE, stdout);
            return 0;
        }
        if (i + 1 >= argc) return usage_error("score", "%s needs a value (or is unknown)", a);
        if (!strcmp(a, "--stats")) stats = argv[++i];
        else if (!strcmp(a, "--steer")) steer = argv[++i];
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = argv[++i];
        else return usage_error("score", "unknown argument '%s'", a);
    }
    if (!stats || !steer || !out) return usage_error("score", "%s", "needs --stats, --steer and -o");
    ids_err err;
    int best;
    double score;
    if (ids_score(stats, steer, out, &best, &score, &err)) return fail(&err);
    printf("best layer %d, score %.4f (written to %s)\n", best, score, out);
    return 0;
}


/* ---------------------------------------------------------------------------------------- */
/* report                                                                                     */

static const char *HELP_REPORT =
    "usage: idscope report RESULTS_DIR\n"
    "\n"
    "Write RESULTS_DIR/report.html: one self-contained page (inline SVG, no network) with the results\n"
    "found in RESULTS_DIR: ids/stats.json (R^2, axis plane, PCA picture of the cell IDs), swap/swap.json\n"
    "and swap/swap-control.json (patching curves), steer/steer-belief.json (ID vs noise swap rates),\n"
    "steer/steer-grid-*.json (heat maps), depth/depth.json, score.json, temporal/temporal.json,\n"
    "temporal/temporal-swap.json and temporal/temporal-steer.json (time line, reversal patching, temporal\n"
    "steering). Missing results are marked.\n";

static int cmd_report(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(HELP_REPORT, stdout);
        return 0;
    }
    if (argc != 2) return usage_error("report", "%s", "expected one RESULTS_DIR");
    ids_err err;
    int n;
    if (ids_report(argv[1], &n, &err)) return fail(&err);
    printf("wrote %s/report.html (%d of 7 sections with results)\n", argv[1], n);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------- */
/* temporal                                                                                   */

static const char *HELP_TEMPORAL =
    "usage: idscope temporal extract [-m TEXT.gguf --mmproj MMPROJ.gguf] --out DIR [--objects LIST]\n"
    "                                [--frames T] [--image-size PX] [--threads N]\n"
    "       idscope temporal swap    [model] --out DIR [--objects LIST] [--frames T] [--n N] [--seed S]\n"
    "                                [--mvbench SCENE_TRANSITION.json --videos DIR]\n"
    "       idscope temporal steer   --ids DIR/temporal.safetensors [model] --out DIR [--factor F]\n"
    "                                [--layers LO-HI] [--source S] [--objects LIST] [--n N] [--seed S]\n"
    "\n"
    "Temporal IDs on synthetic videos of T frames (default 8; one <image> block per frame) in which\n"
    "object A appears at frame i and B at frame j (i != j, 1..T-1), asked 'Does the A appear before\n"
    "or after the B?'.\n"
    "\n"
    "extract: the object words' residual rows at every layer, averaged per appearance frame over\n"
    "  partners and object pairs (every ordered pair of --objects, default red circle, blue square,\n"
    "  green triangle), mean-centred over frames: DIR/temporal.safetensors (temporal [L][T-1][E],\n"
    "  time_axis [L][E]), DIR/temporal.json and .csv (per layer the 1-D PCA coordinate of each frame,\n"
    "  PC1's variance share, Spearman(coordinate, frame); best_layer).\n"
    "swap: time-reversal patching; the frames in reverse order are the edit; per layer and position\n"
    "  set (image rows, text rows, object words) the recovered fraction of its effect on log P(before),\n"
    "  log P(after) and their difference: DIR/temporal-swap.json and .csv. --mvbench: MVBench's\n"
    "  scene-transition questions (the task file, or the paper's derived manifest) on their videos\n"
    "  (at most --n of them), patching the last word of each scene phrase as the object words.\n"
    "steer: add F x (T[f] - T[T-f]) (the paper's pairing; --source S: T[f] - T[S]) to the subject word\n"
    "  at each layer of the band for every target frame f; mean change of log P(before) and\n"
    "  log P(after); frame T/2 (or S) adds nothing, a built-in null. DIR/temporal-steer.json and .csv,\n"
    "  with the fraction of layers where the change of log P(after) rises with f (Spearman >= 0.9).\n"
    "The model defaults to the bundled one.\n";

static int cmd_temporal(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "extract") && strcmp(argv[1], "swap") && strcmp(argv[1], "steer"))) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            fputs(HELP_TEMPORAL, stdout);
            return 0;
        }
        return usage_error("temporal", "%s", "missing or unknown subcommand (extract, swap, steer)");
    }
    const char *sub = argv[1];
    const bool extract = !strcmp(sub, "extract"), steer = !strcmp(sub, "steer");
    const char *model = NULL, *mmproj = NULL, *out = NULL, *objects = NULL;
    ids_temporal_opts o = {.exp = {.n_items = 8, .seed = 1}, .frames = 8, .factor = 5.0f};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_TEMPORAL, stdout);
            return 0;
        }
        if (i + 1 >= argc) return usage_error("temporal", "%s needs a value (or is unknown)", a);
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--mmproj")) mmproj = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--objects")) objects = v;
        else if (steer && !strcmp(a, "--ids")) o.ids_path = v;
        else if (!extract && !steer && !strcmp(a, "--mvbench")) o.mvbench = v;
        else if (!extract && !steer && !strcmp(a, "--videos")) o.video_dir = v;
        else if (steer && !strcmp(a, "--factor")) {
            o.factor = strtof(v, &end);
            if (*end || !(o.factor > 0)) return usage_error("temporal", "bad --factor '%s'", v);
        } else if (steer && !strcmp(a, "--layers")) {
            if (sscanf(v, "%d-%d", &o.layer_lo, &o.layer_hi) != 2 || o.layer_lo < 1 || o.layer_hi < o.layer_lo)
                return usage_error("temporal", "bad --layers '%s' (e.g. 2-5)", v);
        } else if (!strcmp(a, "--frames") || !strcmp(a, "--n") || !strcmp(a, "--seed") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--image-size") || (steer && !strcmp(a, "--source"))) {
            long x = strtol(v, &end, 10);
            if (*end || x < 0 || (x < 1 && strcmp(a, "--seed") && strcmp(a, "--source")))
                return usage_error("temporal", "bad number '%s'", v);
            if (!strcmp(a, "--frames")) o.frames = (int)x;
            else if (!strcmp(a, "--n")) o.exp.n_items = (int)x;
            else if (!strcmp(a, "--seed")) o.exp.seed = (uint64_t)x;
            else if (!strcmp(a, "--image-size")) o.exp.image_size = (int)x;
            else if (!strcmp(a, "--source")) o.source = (int)x;
            else o.exp.n_threads = (int)x;
        } else {
            return usage_error("temporal", "unknown argument '%s'", a);
        }
    }
    if (!out) return usage_error("temporal", "%s", "missing --out DIR");
    if (steer && !o.ids_path) return usage_error("temporal", "%s", "steer needs --ids DIR/temporal.safetensors");
    if (steer) o.frames = 0; /* from the IDs file */
    char tp[1000], mp[1000];
    int rc = resolve_model("temporal", &model, &mmproj, tp, mp, sizeof tp);
    if (rc) return rc;
    ids_catalog *cat = ids_catalog_new();
    int objs[16];
    if (objects || extract) {
        rc = parse_objects("temporal", cat, objects ? objects : "red circle,blue square,green triangle", objs, &o.exp.n_objects);
        o.exp.objects = objs;
    }
    ids_err err;
    ids_vlm *v = NULL;
    if (!rc && ids_vlm_load(&v, model, mmproj, &err)) rc = fail(&err);
    if (!rc && extract) {
        if (ids_temporal_extract(v, cat, &o, out, print_progress, NULL, &err)) rc = fail(&err);
        else printf("wrote %s/temporal.safetensors, temporal.json, temporal.csv\n", out);
    } else if (!rc && !steer) {
        ids_temporal_swap_result r = {0};
        if (ids_temporal_swap(v, cat, &o, &r, print_progress, NULL, &err) || ids_temporal_swap_write(out, &r, &err))
            rc = fail(&err);
        else echo_file(out, "temporal-swap.csv");
        ids_temporal_result_free(&r);
    } else if (!rc) {
        ids_temporal_steer_result r = {0};
        if (ids_temporal_steer(v, cat, &o, &r, print_progress, NULL, &err) || ids_temporal_steer_write(out, &r, &err)) {
            rc = fail(&err);
        } else {
            echo_file(out, "temporal-steer.csv");
            printf("monotonic layers (change of log P(after) rises with the frame): %.3f\n", r.monotonic);
        }
        ids_temporal_steer_result_free(&r);
    }
    ids_vlm_free(v);
    ids_catalog_free(cat);
    return rc;
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

static void demo_say(const char *msg, void *user) { fprintf(stderr, "%s\n", msg); }

static int cmd_demo(int argc, char **argv) {
    const char *out = "idscope-demo", *model = NULL, *mmproj = NULL;
    ids_demo_opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP_DEMO, stdout);
            return 0;
        } else if (!strcmp(a, "--fresh")) {
            o.fresh = true;
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
            if (*end || x < 1 || x > 100000) return usage_error("demo", "bad number '%s'", v);
            if (a[2] == 'n') o.n_items = (int)x;
            else o.n_threads = (int)x;
        } else {
            return usage_error("demo", "unknown argument '%s'", a);
        }
    }
    char tp[1000], mp[1000];
    int rc = resolve_model("demo", &model, &mmproj, tp, mp, sizeof tp);
    if (rc) return rc;
    struct stat sb;
    if (stat(model, &sb) != 0 || stat(mmproj, &sb) != 0) {
        fprintf(stderr, "%s demo: model not found: %s / %s (give -m and --mmproj, or set IDSCOPE_MODELS)\n", g_prog,
                model, mmproj);
        return 1;
    }
    o.out_dir = out, o.model = model, o.mmproj = mmproj;
    o.progress = print_progress, o.say = demo_say;
    ids_demo_summary s;
    ids_err err;
    if (ids_demo_run(&o, &s, &err)) return fail(&err);
    char *abs = realpath(model, NULL);
    printf("idscope demo: %s\n", abs ? abs : model);
    free(abs);
    printf("  %-44s %8.3f  (layer %d)\n", "ID linearity R^2, best layer", s.ids_r2_best, s.ids_r2_best_layer);
    printf("  %-44s %8.3f\n", "belief swap rate, ID (best 3, factor 5)", s.belief_swap_rate_id);
    printf("  %-44s %8.3f\n", "belief swap rate, noise (best 3, factor 5)", s.belief_swap_rate_noise);
    for (int k = 0; k < 2; k++)
        printf("  %-44s %8.3f  (noise %.3f)\n", k ? "  the same at factor 2: ID" : "  the same at factor 1: ID", s.sweep_id[k],
               s.sweep_noise[k]);
    printf("  %-44s %8.3f  (layer %d)\n", "mirror recovery at object words, peak", s.mirror_objword_recovery_peak,
           s.mirror_objword_recovery_peak_layer);
    printf("  %-44s %8.3f  (layer %d)\n", "temporal IDs: PCA order (Spearman)", s.temporal_pca_order, s.temporal_pca_best_layer);
    printf("  %-44s %8.3f\n", "temporal steering: monotonic layers", s.temporal_steer_monotonic);
    printf("  %-44s %8.3f  (layer %d)\n", "time reversal at object words, peak", s.temporal_objword_recovery_peak,
           s.temporal_objword_recovery_peak_layer);
    printf("  %-44s %8.0f  (%d steps run, %d already done)\n", "seconds", s.seconds, s.steps_run, s.steps_skipped);
    printf("wrote %s/report.html and %s/summary.json\n", out, out);
    return 0;
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
