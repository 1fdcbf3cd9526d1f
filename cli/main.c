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

static int fail(const ids_err *err) {
    fprintf(stderr, "%s: error: %s\n", g_prog, err->msg);
    return 1;
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
    ids_extract_opts o = {.grid = 4};
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
                if (!strcmp(a, "--grid")) o.grid = (int)x;
                else if (!strcmp(a, "--image-size")) o.image_size = (int)x;
                else o.n_threads = (int)x;
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
    rc = parse_objects("ids", cat, objects, objs, &o.n_objects);
    o.objects = objs;
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
    ids_swap_opts o = {.grid = 4, .n_images = 8, .seed = 1};
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
                if (!strcmp(a, "--n")) o.n_images = (int)x;
                else if (!strcmp(a, "--grid")) o.grid = (int)x;
                else if (!strcmp(a, "--seed")) o.seed = (uint64_t)x;
                else o.n_threads = (int)x;
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
    rc = parse_objects("swap", cat, objects, objs, &o.n_objects);
    o.objects = objs;
    ids_vlm *v = NULL;
    ids_swap_result r = {0};
    if (!rc && ids_vlm_load(&v, model, mmproj, &err)) rc = fail(&err);
    if (!rc && ids_swap_run(v, cat, &o, control, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc) {
        const char *base = control ? "swap-control" : "swap";
        char name[32];
        out_file fc = {0}, fj = {0};
        snprintf(name, sizeof name, "%s.csv", base);
        rc = out_open(&fc, out, name);
        snprintf(name, sizeof name, "%s.json", base);
        if (!rc) rc = out_open(&fj, out, name);
        if (!rc) {
            fprintf(fc.f, "layer,set,left,right,diff,diff_pooled\n");
            fprintf(stdout, "layer,set,left,right,diff,diff_pooled\n");
            fprintf(fj.f, "{\"edit\": \"%s\", \"items\": %d, \"skipped\": %d, \"layers\": %d, \"rows\": [",
                    control ? "attribute" : "mirror", r.n_items, r.n_skipped, r.n_layers);
            for (int l = 0; l < r.n_layers; l++)
                for (int k = 0; k < IDS_SWAP_SET_COUNT; k++) {
                    int vi = l * IDS_SWAP_SET_COUNT + k;
                    const char *set = ids_swap_set_name((ids_swap_set)k);
                    fprintf(fc.f, "%d,%s,%.6f,%.6f,%.6f,%.6f\n", l, set, r.left[vi], r.right[vi], r.diff[vi], r.diff_pooled[vi]);
                    fprintf(stdout, "%d,%s,%.6f,%.6f,%.6f,%.6f\n", l, set, r.left[vi], r.right[vi], r.diff[vi], r.diff_pooled[vi]);
                    fprintf(fj.f, "%s{\"layer\": %d, \"set\": \"%s\", \"left\": %.6f, \"right\": %.6f, \"diff\": %.6f, "
                            "\"diff_pooled\": %.6f}", vi ? ", " : "", l, set, r.left[vi], r.right[vi], r.diff[vi], r.diff_pooled[vi]);
                }
            fprintf(fj.f, "]}\n");
        }
        const bool ok = !rc;
        rc |= out_close(&fc, ok);
        rc |= out_close(&fj, ok);
    }
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
    c->o = (ids_steer_opts){.n_images = 8, .seed = 1, .factor = 5.0f, .relation = IDS_REL_LEFT_RIGHT, .greedy_tokens = 3};
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
            if (!strcmp(a, "--n")) o->n_images = (int)x;
            else if (!strcmp(a, "--seed")) o->seed = (uint64_t)x;
            else if (!strcmp(a, "--greedy")) o->greedy_tokens = (int)x;
            else o->n_threads = (int)x;
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
    rc = parse_objects(cmd, *cat, list, c->objs, &c->o.n_objects);
    c->o.objects = c->objs;
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
        if (ids_steer_grid(v, cat, &o, &g, print_progress, NULL, &err)) {
            rc = fail(&err);
        } else {
            char name[64];
            out_file fc = {0}, fj = {0};
            snprintf(name, sizeof name, "steer-grid-%s.csv", ids_relation_name(o.relation));
            rc = out_open(&fc, out, name);
            snprintf(name, sizeof name, "steer-grid-%s.json", ids_relation_name(o.relation));
            if (!rc) rc = out_open(&fj, out, name);
            if (!rc) {
                printf("layer %d, mean change of log P(%s) - log P(%s), target cell (row y, column x):\n", g.layer,
                       ids_answer_word(o.relation, true), ids_answer_word(o.relation, false));
                fprintf(fc.f, "x,y,delta\n");
                fprintf(fj.f, "{\"relation\": \"%s\", \"layer\": %d, \"factor\": %g, \"items\": %d, \"grid\": %d, \"delta\": [",
                        ids_relation_name(o.relation), g.layer, (double)(o.factor > 0 ? o.factor : 5), g.n_items, g.grid);
                for (int y = 0; y < g.grid; y++) {
                    for (int x = 0; x < g.grid; x++) {
                        float d = g.delta[y * g.grid + x];
                        printf("%9.4f", d);
                        fprintf(fc.f, "%d,%d,%.6f\n", x, y, d);
                        fprintf(fj.f, "%s%.6f", y || x ? ", " : "", d);
                    }
                    printf("\n");
                }
                fprintf(fj.f, "]}\n");
            }
            const bool ok = !rc;
            rc |= out_close(&fc, ok);
            rc |= out_close(&fj, ok);
            free(g.delta);
        }
    } else if (!rc && ids_steer_belief(v, cat, &o, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && !grid_mode) {
        out_file fc = {0}, fj = {0};
        rc = out_open(&fc, out, "steer-belief.csv");
        if (!rc) rc = out_open(&fj, out, "steer-belief.json");
        if (!rc) {
            const bool g = r.greedy_id != NULL;
            fprintf(fc.f, "layer,swap_rate_id,swap_rate_noise%s\n", g ? ",greedy_id,greedy_noise" : "");
            printf("layer,swap_rate_id,swap_rate_noise%s\n", g ? ",greedy_id,greedy_noise" : "");
            fprintf(fj.f, "{\"relation\": \"%s\", \"factor\": %g, \"items\": %d, \"skipped\": %d, \"greedy_tokens\": %d, "
                    "\"layers\": [", ids_relation_name(o.relation), (double)o.factor, r.n_items, r.n_skipped, g ? o.greedy_tokens : 0);
            for (int k = 0; k < r.n_band; k++) {
                fprintf(fc.f, "%d,%.4f,%.4f", r.layer_lo + k, r.rate_id[k], r.rate_noise[k]);
                printf("%d,%.4f,%.4f", r.layer_lo + k, r.rate_id[k], r.rate_noise[k]);
                fprintf(fj.f, "%s{\"layer\": %d, \"id\": %.4f, \"noise\": %.4f", k ? ", " : "", r.layer_lo + k,
                        r.rate_id[k], r.rate_noise[k]);
                if (g) {
                    fprintf(fc.f, ",%.4f,%.4f", r.greedy_id[k], r.greedy_noise[k]);
                    printf(",%.4f,%.4f", r.greedy_id[k], r.greedy_noise[k]);
                    fprintf(fj.f, ", \"greedy_id\": %.4f, \"greedy_noise\": %.4f", r.greedy_id[k], r.greedy_noise[k]);
                }
                fprintf(fc.f, "\n");
                printf("\n");
                fprintf(fj.f, "}");
            }
            fprintf(fj.f, "], \"best3_id\": %.4f, \"best3_noise\": %.4f", r.best3_id, r.best3_noise);
            if (g) fprintf(fj.f, ", \"greedy_best3_id\": %.4f, \"greedy_best3_noise\": %.4f", r.greedy_best3_id, r.greedy_best3_noise);
            fprintf(fj.f, "}\n");
            printf("best 3 layers: ID %.4f, noise %.4f\n", r.best3_id, r.best3_noise);
            if (g) printf("greedy answers, best 3 layers: ID %.4f, noise %.4f\n", r.greedy_best3_id, r.greedy_best3_noise);
        }
        const bool ok = !rc;
        rc |= out_close(&fc, ok);
        rc |= out_close(&fj, ok);
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
    if (!rc) {
        out_file fc = {0}, fj = {0};
        rc = out_open(&fc, out, "depth.csv");
        if (!rc) rc = out_open(&fj, out, "depth.json");
        if (!rc) {
            const char *hdr = "layer,above_below_down,above_below_up,front_behind_down,front_behind_up\n";
            fputs(hdr, fc.f);
            fputs(hdr, stdout);
            fprintf(fj.f, "{\"factor\": %g, \"grid_images\": %d, \"depth_images\": %d, \"layers\": [", (double)o.factor,
                    d.n_grid, d.n_depth);
            for (int k = 0; k < d.n_band; k++) {
                fprintf(fc.f, "%d,%.6f,%.6f,%.6f,%.6f\n", d.layer_lo + k, d.ab_down[k], d.ab_up[k], d.fb_down[k], d.fb_up[k]);
                printf("%d,%.6f,%.6f,%.6f,%.6f\n", d.layer_lo + k, d.ab_down[k], d.ab_up[k], d.fb_down[k], d.fb_up[k]);
                fprintf(fj.f, "%s{\"layer\": %d, \"above_below_down\": %.6f, \"above_below_up\": %.6f, "
                        "\"front_behind_down\": %.6f, \"front_behind_up\": %.6f}", k ? ", " : "", d.layer_lo + k,
                        d.ab_down[k], d.ab_up[k], d.fb_down[k], d.fb_up[k]);
            }
            fprintf(fj.f, "]}\n");
        }
        const bool ok = !rc;
        rc |= out_close(&fc, ok);
        rc |= out_close(&fj, ok);
    }
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
    ids_temporal_opts o = {.frames = 8, .n_items = 8, .seed = 1, .factor = 5.0f};
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
            else if (!strcmp(a, "--n")) o.n_items = (int)x;
            else if (!strcmp(a, "--seed")) o.seed = (uint64_t)x;
            else if (!strcmp(a, "--image-size")) o.image_size = (int)x;
            else if (!strcmp(a, "--source")) o.source = (int)x;
            else o.n_threads = (int)x;
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
        rc = parse_objects("temporal", cat, objects ? objects : "red circle,blue square,green triangle", objs, &o.n_objects);
        o.objects = objs;
    }
    ids_err err;
    ids_vlm *v = NULL;
    if (!rc && ids_vlm_load(&v, model, mmproj, &err)) rc = fail(&err);
    if (!rc && extract) {
        if (ids_temporal_extract(v, cat, &o, out, print_progress, NULL, &err)) rc = fail(&err);
        else printf("wrote %s/temporal.safetensors, temporal.json, temporal.csv\n", out);
    } else if (!rc && !steer) {
        ids_temporal_swap_result r = {0};
        if (ids_temporal_swap(v, cat, &o, &r, print_progress, NULL, &err)) rc = fail(&err);
        out_file fc = {0}, fj = {0};
        if (!rc) rc = out_open(&fc, out, "temporal-swap.csv");
        if (!rc) rc = out_open(&fj, out, "temporal-swap.json");
        if (!rc) {
            fprintf(fc.f, "layer,set,before,after,diff,diff_pooled\n");
            printf("layer,set,before,after,diff,diff_pooled\n");
            fprintf(fj.f, "{\"edit\": \"time reversal\", \"frames\": %d, \"items\": %d, \"skipped\": %d, \"layers\": %d, \"rows\": [",
                    o.frames, r.n_items, r.n_skipped, r.n_layers);
            for (int l = 0; l < r.n_layers; l++)
                for (int k = 0; k < IDS_SWAP_SET_COUNT; k++) {
                    const int vi = l * IDS_SWAP_SET_COUNT + k;
                    const char *set = ids_swap_set_name((ids_swap_set)k);
                    fprintf(fc.f, "%d,%s,%.6f,%.6f,%.6f,%.6f\n", l, set, r.first[vi], r.second[vi], r.diff[vi], r.diff_pooled[vi]);
                    printf("%d,%s,%.6f,%.6f,%.6f,%.6f\n", l, set, r.first[vi], r.second[vi], r.diff[vi], r.diff_pooled[vi]);
                    fprintf(fj.f, "%s{\"layer\": %d, \"set\": \"%s\", \"before\": %.6f, \"after\": %.6f, \"diff\": %.6f, "
                            "\"diff_pooled\": %.6f}", vi ? ", " : "", l, set, r.first[vi], r.second[vi], r.diff[vi], r.diff_pooled[vi]);
                }
            fprintf(fj.f, "]}\n");
        }
        if (fc.f || fj.f) {
            const bool ok = !rc;
            rc |= out_close(&fc, ok);
            rc |= out_close(&fj, ok);
        }
        ids_temporal_result_free(&r);
    } else if (!rc) {
        ids_temporal_steer_result r = {0};
        if (ids_temporal_steer(v, cat, &o, &r, print_progress, NULL, &err)) rc = fail(&err);
        out_file fc = {0}, fj = {0};
        if (!rc) rc = out_open(&fc, out, "temporal-steer.csv");
        if (!rc) rc = out_open(&fj, out, "temporal-steer.json");
        if (!rc) {
            fprintf(fc.f, "layer,frame,d_before,d_after\n");
            printf("layer,frame,d_before,d_after\n");
            fprintf(fj.f, "{\"factor\": %g, \"source\": %d, \"frames\": %d, \"null_frame\": %d, \"items\": %d, \"layers\": [",
                    (double)o.factor, o.source, r.frames + 1, r.null_frame, r.n_items);
            for (int k = 0; k < r.n_band; k++) {
                fprintf(fj.f, "%s{\"layer\": %d, \"spearman_after\": ", k ? ", " : "", r.layer_lo + k);
                if (isfinite(r.rho_after[k])) fprintf(fj.f, "%.4f", r.rho_after[k]);
                else fprintf(fj.f, "null");
                fprintf(fj.f, ", \"d_before\": [");
                for (int t = 0; t < r.frames; t++) fprintf(fj.f, "%s%.6f", t ? ", " : "", r.d_before[k * r.frames + t]);
                fprintf(fj.f, "], \"d_after\": [");
                for (int t = 0; t < r.frames; t++) {
                    fprintf(fj.f, "%s%.6f", t ? ", " : "", r.d_after[k * r.frames + t]);
                    fprintf(fc.f, "%d,%d,%.6f,%.6f\n", r.layer_lo + k, t + 1, r.d_before[k * r.frames + t], r.d_after[k * r.frames + t]);
                    printf("%d,%d,%.6f,%.6f\n", r.layer_lo + k, t + 1, r.d_before[k * r.frames + t], r.d_after[k * r.frames + t]);
                }
                fprintf(fj.f, "]}");
            }
            fprintf(fj.f, "], \"monotonic\": %.4f}\n", r.monotonic);
            printf("monotonic layers (change of log P(after) rises with the frame): %.3f\n", r.monotonic);
        }
        if (fc.f || fj.f) {
            const bool ok = !rc;
            rc |= out_close(&fc, ok);
            rc |= out_close(&fj, ok);
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
