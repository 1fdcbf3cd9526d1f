/* The stimuli command: synthetic scenes and videos with ground truth, and the COCO-Spatial import. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct stimuli_args {
    const char *set, *out, *objects, *bg_image, *coco_json, *coco_images, *coco_instances;
    arg_strs sprites;
    arg_floats sizes, bg;
    ids_stim_opts o;
    ids_exp x; /* x.shard: --shard I/N (the rest unused) */
    int limit;
    bool mirror, recolor, list, coco_format;
} stimuli_args;

#define STIM_INT(nm, f, mt, lo, hi, df, hl)                                                                  \
    {.name = nm, .type = ARG_INT, .offset = offsetof(stimuli_args, f), .meta = mt, .min = lo, .max = hi, .def = df, \
     .help = hl}
#define STIM_FLOAT(nm, f, mt, lo, hi, df, hl)                                                                  \
    {.name = nm, .type = ARG_FLOAT, .offset = offsetof(stimuli_args, f), .meta = mt, .fmin = lo, .fmax = hi,     \
     .def = df, .help = hl}
#define STIM_FLAG(nm, f, hl) {.name = nm, .type = ARG_FLAG, .offset = offsetof(stimuli_args, f), .help = hl}
#define STIM_PATH(nm, f, mt, hl) {.name = nm, .type = ARG_PATH, .offset = offsetof(stimuli_args, f), .meta = mt, .help = hl}

static const arg_opt stimuli_opts[] = {
    STIM_PATH("out", out, "DIR", "output folder (created)"),
    {.name = "seed", .type = ARG_U64, .offset = offsetof(stimuli_args, o.seed), .meta = "N", .min = 0, .max = 1000000000,
     .def = "1", .help = "random seed; the same seed gives byte-identical files"},
    STIM_INT("size", o.image_size, "PX", 16, 8192, "224", "image side in pixels"),
    STIM_INT("grid", o.grid, "N", 1, 2048, "4", "grid cells per side"),
    {.name = "sizes", .type = ARG_FLOATS, .flags = ARG_GT_MIN, .offset = offsetof(stimuli_args, sizes), .meta = "LIST",
     .max = 16, .fmin = 0.05, .fmax = 1, .def_help = "1,0.78,0.55,0.33", .help = "object sizes as fractions of a cell"},
    {.name = "objects", .type = ARG_STR, .offset = offsetof(stimuli_args, objects), .meta = "LIST",
     .def_help = "red circle,blue square(,green triangle)", .help = "comma-separated object names"},
    STIM_FLAG("all-pairs", o.all_pairs, "every ordered pair (triple) of the objects, not only the first"),
    {.name = "sprite", .type = ARG_STRS, .offset = offsetof(stimuli_args, sprites), .meta = "FILE", .max = 32,
     .help = "add a user sprite (PNG with alpha, named after the file)"},
    STIM_FLOAT("jitter", o.jitter_pos, "F", 0, 0.45, "0", "centre jitter, fraction of a cell"),
    STIM_FLOAT("size-jitter", o.jitter_size, "F", 0, 0.5, "0", "relative size jitter"),
    STIM_FLOAT("rotate", o.jitter_rot, "DEG", -INFINITY, INFINITY, "0", "rotation jitter in degrees"),
    {.name = "bg", .type = ARG_FLOATS, .flags = ARG_EXACT, .offset = offsetof(stimuli_args, bg), .meta = "R,G,B",
     .max = 3, .fmin = 0, .fmax = 255, .def = "0,0,0", .help = "background colour"},
    STIM_PATH("bg-image", bg_image, "FILE", "background image, resized to the image size"),
    STIM_INT("frames", o.frames, "T", 3, 64, "8", "video frames"),
    STIM_FLOAT("near-threshold", o.near_threshold, "F", -INFINITY, INFINITY, "0.35",
               "near / far threshold, fraction of the image size"),
    STIM_INT("repeats", o.repeats, "N", 0, 1000000000, "10", "random placements per configuration (nearfar, between)"),
    STIM_FLAG("mirror", mirror, "also write each item's horizontal mirror (left / right swapped)"),
    STIM_FLAG("recolor", recolor, "also write each item with other colours (attribute control)"),
    STIM_FLAG("mp4", o.write_mp4, "videos also as ID.mp4 (MPEG-4), besides the frame folders"),
    {.name = "limit", .type = ARG_INT, .offset = offsetof(stimuli_args, limit), .meta = "N", .min = 0, .max = 1000000000,
     .def_help = "all", .help = "write only the first N items"},
    {.name = "shard", .type = ARG_SHARD, .offset = offsetof(stimuli_args, x.shard), .meta = "I/N", .max = 1000000,
     .help = "write shard I of N: the items whose number i has i % N == I (with their variants), under the set's "
             "file names, and their manifest; 'idscope merge' joins the shards' folders into the whole set"},
    STIM_FLAG("list", list, "list the built-in objects"),
    STIM_PATH("coco-json", coco_json, "FILE", "coco: What'sUp coco_qa_two_obj.json"),
    STIM_PATH("coco-images", coco_images, "DIR", "coco: the folder of the COCO images"),
    STIM_PATH("coco-instances", coco_instances, "FILE",
              "coco: COCO's instances_val2017.json: each named object gets its box (of several instances the largest)"),
    STIM_FLAG("coco-format", coco_format,
              "grid: write the set in the COCO-Spatial format instead (coco_qa_two_obj.json, instances.json, "
              "images/ID.jpg), images with known boxes for the real-image path"),
    {0},
};
static const arg_pos stimuli_pos[] = {{"SET", offsetof(stimuli_args, set), false}, {0}};
static const arg_cmd stimuli_cmd = {
    "stimuli",
    "Generate a synthetic stimulus set with ground truth: images (PNG; videos as folders of frames)\n"
    "and DIR/manifest.json, one record per image with each object's name, prompt word, cell, centre,\n"
    "box and size, and the question and expected answer of every relation it supports.\n"
    "  idscope stimuli SET --out DIR [options]\n"
    "  idscope stimuli coco --coco-json FILE --coco-images DIR [--coco-instances FILE] --out DIR\n"
    "  idscope stimuli --list\n"
    "\n"
    "sets:\n"
    "  grid      objects A and B at every ordered pair of distinct cells of an n x n grid, each size\n"
    "  depth     a ground plane seen by a pinhole camera; truth for in front of / behind, left / right\n"
    "  nearfar   two objects at controlled distances; near / far by a threshold\n"
    "  between   three objects; is A between B and C (yes / no)\n"
    "  video     T frames; A appears at frame i, B at frame j (i != j, 1..T-1) and stay; before / after\n"
    "  coco      import COCO-Spatial (What'sUp coco_qa_two_obj.json) into the same record format\n"
    "\n"
    "--shard I/N (grid, depth, nearfar, between, video; also --coco-format) writes shard I's items\n"
    "into DIR and DIR/part.json; 'idscope merge PART_DIR... --out DIR' joins the shards' folders into\n"
    "the set the unsharded command writes (the same manifest apart from its provenance, images linked).\n",
    stimuli_opts, stimuli_pos, "--bg-image: " IMAGE_INPUT_NOTES};

static int stimuli_coco(const stimuli_args *a) {
    if (!a->coco_json || !a->coco_images)
        return args_usage("stimuli", "%s", "coco needs --coco-json FILE and --coco-images DIR");
    char *path = path_join(a->out, "manifest.json"), *own;
    if (!path) return 1;
    mkdir(a->out, 0755);
    ids_err err;
    int ok_n, skipped, boxes, rc = 0;
    if (ids_coco_spatial_import(a->coco_json, a->coco_images, a->coco_instances, path, &ok_n, &skipped, &boxes, &err)) {
        rc = fail(&err);
    } else {
        fprintf(stderr, "coco-spatial: %d records, %d rows skipped", ok_n, skipped);
        if (a->coco_instances) fprintf(stderr, ", boxes for %d of %d objects", boxes, 2 * ok_n);
        fprintf(stderr, "; wrote %s\n", path_show(path, &own));
        free(own);
    }
    free(path);
    return rc;
}

/* DIR/part.json of a shard: what 'idscope merge' reads (the shard, the command line without --shard
 * and --out, the folder it ran in). 0, or 1 after the message. */
static int stimuli_part_json(stimuli_args *a) {
    exp_env e;
    int rc = exp_prepare(&stimuli_cmd, a, &a->x, &e);
    cJSON *doc = rc ? NULL : cJSON_CreateObject(), *sh = NULL, *cl = NULL;
    char cwd[4096];
    bool ok = doc && getcwd(cwd, sizeof cwd) && cJSON_AddStringToObject(doc, "format", "idscope-part") &&
              (sh = cJSON_AddObjectToObject(doc, "shard")) && cJSON_AddNumberToObject(sh, "index", a->x.shard.index) &&
              cJSON_AddNumberToObject(sh, "count", a->x.shard.count) &&
              cJSON_AddStringToObject(doc, "result", a->coco_format ? "coco_qa_two_obj.json" : "manifest.json") &&
              (cl = cJSON_AddArrayToObject(doc, "command_line"));
    for (int i = 0; ok && i < a->x.n_command_line; i++) ok = cJSON_AddItemToArray(cl, cJSON_CreateString(a->x.command_line[i]));
    ok = ok && cJSON_AddStringToObject(doc, "cwd", cwd);
    char *txt = ok ? cJSON_Print(doc) : NULL, *path = txt ? path_join(a->out, "part.json") : NULL;
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!rc && (!f || fprintf(f, "%s\n", txt) < 0)) {
        fprintf(stderr, "idscope: error: %s: cannot write\n", path ? path : "part.json");
        rc = 1;
    }
    if (f && fclose(f) && !rc) fprintf(stderr, "idscope: error: %s: cannot write\n", path), rc = 1;
    free(path);
    free(txt);
    cJSON_Delete(doc);
    free(e.command_line);
    return rc;
}

/* One synthetic set into a->out. */
static int stimuli_set(stimuli_args *a, const ids_catalog *cat) {
    int kind = ids_set_from_name(a->set), objs[16];
    if (kind < 0) return args_usage("stimuli", "unknown set '%s' (grid, depth, nearfar, between, video, coco)", a->set);
    ids_err err;
    int rc = 0;
    if (a->objects) {
        rc = parse_objects("stimuli", cat, a->objects, objs, &a->o.n_objects);
        a->o.objects = objs;
    }
    if (a->sizes.n) a->o.sizes = a->sizes.v, a->o.n_sizes = a->sizes.n;
    for (int k = 0; k < 3; k++) a->o.bg[k] = (uint8_t)a->bg.v[k];
    ids_image bg = {0};
    if (!rc && a->bg_image) {
        if (ids_image_load(&bg, a->bg_image, &err)) rc = fail(&err);
        else a->o.bg_image = &bg;
    }
    if (!rc && a->coco_format) {
        if (kind != IDS_SET_GRID) rc = args_usage("stimuli", "%s", "--coco-format writes the grid set only");
        else if (ids_stimuli_write_coco_part(&a->o, cat, a->out, a->limit, a->x.shard.index, a->x.shard.count,
                                             print_progress, NULL, &err))
            rc = fail(&err);
        char *own;
        if (!rc) fprintf(stderr, "wrote %s/coco_qa_two_obj.json, instances.json and images/\n", path_show(a->out, &own)), free(own);
        ids_image_free(&bg);
        return rc;
    }
    if (!rc && ids_stimuli_write_part((ids_set_kind)kind, &a->o, cat, a->out, a->mirror, a->recolor, a->limit,
                                      a->x.shard.index, a->x.shard.count, print_progress, NULL, &err))
        rc = fail(&err);
    char *path = rc ? NULL : path_join(a->out, "manifest.json"), *own;
    if (path) {
        fprintf(stderr, "wrote %s\n", path_show(path, &own));
        free(own);
        free(path);
    }
    ids_image_free(&bg);
    return rc;
}

int cmd_stimuli(int argc, char **argv) {
    stimuli_args a = {0};
    ids_stim_default_opts(&a.o);
    int rc = args_parse(&stimuli_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    rc = 0;
    ids_catalog *cat = ids_catalog_new();
    if (!cat) return fail_oom();
    ids_err err;
    for (int k = 0; k < a.sprites.n && !rc; k++)
        if (ids_catalog_add_sprite(cat, a.sprites.v[k], &err)) rc = fail(&err);
    if (!rc && a.list) {
        for (int k = 0; k < ids_catalog_count(cat); k++) printf("%s\n", ids_catalog_name(cat, k));
    } else if (!rc && !a.set) {
        rc = args_usage("stimuli", "%s", "missing SET (grid, depth, nearfar, between, video, coco)");
    } else if (!rc && !a.out) {
        rc = args_usage("stimuli", "%s", "missing --out DIR");
    } else if (!rc && a.x.shard.count > 0 && !strcmp(a.set, "coco")) {
        rc = args_usage("stimuli", "%s", "--shard: the coco import writes one manifest and no images (nothing to shard)");
    } else if (!rc) {
        rc = strcmp(a.set, "coco") ? stimuli_set(&a, cat) : stimuli_coco(&a);
        if (!rc && a.x.shard.count > 0) rc = stimuli_part_json(&a);
        char *part = !rc && a.x.shard.count == 0 ? path_join(a.out, "part.json") : NULL;
        if (part) unlink(part); /* a shard's, if the folder held one: this is the whole set */
        free(part);
        char *own;
        if (!rc && a.x.shard.count > 0)
            fprintf(stderr, "shard %d/%d: wrote %s/part.json ('idscope merge' joins the shards)\n", a.x.shard.index,
                    a.x.shard.count, path_show(a.out, &own)), free(own);
    }
    ids_catalog_free(cat);
    return rc;
}
