/* idscope merge PART_DIR... --out DIR: the shards of one run (--shard I/N) joined into the result an
 * unsharded run writes. Each part's part.json names its shard and the command line that made it;
 * the parts must be one run's (same command line, same shard count) and cover every shard exactly
 * once. The command is then run again over the parts' kept items (none is computed), in the
 * folder it was started from, so its sums are done in the one fixed order of the items. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct merge_args {
    arg_strs parts;
    const char *out;
} merge_args;

static const arg_opt merge_opts[] = {
    {.name = "out", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(merge_args, out), .meta = "DIR",
     .help = "output folder: the result files of the unsharded run"},
    {0},
};
static const arg_pos merge_pos[] = {{"PART_DIR...", offsetof(merge_args, parts), true}, {0}};
static const arg_cmd merge_cmd = {
    "merge",
    "Join the shards of one run (a command run with --shard I/N into PART_DIR, for every I of N) into\n"
    "the result files the run writes without --shard: byte for byte the same apart from the provenance\n"
    "record. The parts must come from the same command line (model, options, seed) and hold every shard\n"
    "once: a missing or repeated shard is an error naming it. The model files must be where the parts'\n"
    "command line names them (they are fingerprinted again). Shards of 'idscope stimuli' are joined\n"
    "without running anything: the manifest (or COCO-format files) in item order, every image\n"
    "hard-linked from its part (copied across file systems). See docs/CLUSTER.md.\n",
    merge_opts, merge_pos, NULL};

typedef struct part {
    const char *dir;
    cJSON *doc;
    int index, count;
    const cJSON *cl; /* command_line */
    const char *cwd;
} part;

/* Read DIR/part.json. 0, or 1 after the message. */
static int part_read(part *p, const char *dir) {
    p->dir = dir;
    char *path = path_join(dir, "part.json");
    size_t len;
    char *txt = path ? read_all(path, &len) : NULL;
    int rc = 0;
    if (!txt) {
        fprintf(stderr, "idscope: error: %s: cannot read (is it a folder written with --shard?)\n", path ? path : dir);
        rc = 1;
    }
    p->doc = txt ? cJSON_Parse(txt) : NULL;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(p->doc, "format"), *sh = cJSON_GetObjectItemCaseSensitive(p->doc, "shard");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(sh, "index"), *n = cJSON_GetObjectItemCaseSensitive(sh, "count");
    p->cl = cJSON_GetObjectItemCaseSensitive(p->doc, "command_line");
    const cJSON *cwd = cJSON_GetObjectItemCaseSensitive(p->doc, "cwd");
    if (!rc && (!cJSON_IsString(f) || strcmp(f->valuestring, "idscope-part") || !cJSON_IsNumber(i) || !cJSON_IsNumber(n) ||
                !cJSON_IsArray(p->cl) || cJSON_GetArraySize(p->cl) < 1 || !cJSON_IsString(cwd) || n->valuedouble < 1 ||
                n->valuedouble > 1000000 || i->valuedouble < 0 || i->valuedouble >= n->valuedouble ||
                i->valuedouble != (int)i->valuedouble || n->valuedouble != (int)n->valuedouble)) {
        fprintf(stderr, "idscope: error: %s: not a part written by --shard I/N (format, shard, command_line, cwd)\n", path);
        rc = 1;
    }
    if (!rc) p->index = (int)i->valuedouble, p->count = (int)n->valuedouble, p->cwd = cwd->valuestring;
    free(txt);
    free(path);
    return rc;
}

/* Same run: command line, folder and shard count as the first part; every shard once. */
static int parts_check(const part *p, int n) {
    for (int k = 1; k < n; k++) {
        if (p[k].count != p[0].count) {
            fprintf(stderr, "idscope: error: %s is shard %d/%d, %s is of %d shards: not one run\n", p[k].dir, p[k].index,
                    p[k].count, p[0].dir, p[0].count);
            return 1;
        }
        if (!cJSON_Compare(p[k].cl, p[0].cl, true) || strcmp(p[k].cwd, p[0].cwd)) {
            char *a = cJSON_PrintUnformatted(p[k].cl), *b = cJSON_PrintUnformatted(p[0].cl);
            fprintf(stderr, "idscope: error: %s and %s come from different command lines (model, options or seed): %s in %s, %s in %s\n",
                    p[k].dir, p[0].dir, a ? a : "?", p[k].cwd, b ? b : "?", p[0].cwd);
            free(a);
            free(b);
            return 1;
        }
    }
    for (int k = 0; k < n; k++)
        for (int j = 0; j < k; j++)
            if (p[j].index == p[k].index) {
                fprintf(stderr, "idscope: error: shard %d/%d is given twice: %s and %s\n", p[k].index, p[k].count, p[j].dir, p[k].dir);
                return 1;
            }
    for (int i = 0; i < p[0].count; i++) {
        int k = 0;
        while (k < n && p[k].index != i) k++;
        if (k == n) {
            fprintf(stderr, "idscope: error: shard %d/%d is missing (%d of %d parts given)\n", i, p[0].count, n, p[0].count);
            return 1;
        }
    }
    return 0;
}

/* An absolute form of path (relative to the current folder), malloc'd. */
static char *absolute(const char *path) {
    if (path[0] == '/') return str_fmt("%s", path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    return str_fmt("%s/%s", cwd, path);
}

static int merge_run(part *p, int n, const char *out) {
    const int ncl = cJSON_GetArraySize(p[0].cl);
    char **argv = calloc((size_t)ncl + 3, sizeof *argv), **items = calloc((size_t)n, sizeof *items);
    char *out_abs = absolute(out);
    int rc = argv && items && out_abs ? 0 : fail_oom(), k = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, p[0].cl) {
        if (!rc && !cJSON_IsString(t)) rc = fail_oom();
        if (!rc) argv[k++] = t->valuestring;
    }
    for (int i = 0; !rc && i < n; i++) {
        char *d = absolute(p[i].dir);
        if (!d || !(items[i] = str_fmt("%s/items.bin", d))) rc = fail_oom();
        free(d);
    }
    if (!rc) argv[k++] = "--out", argv[k++] = out_abs;
    if (!rc && chdir(p[0].cwd)) {
        fprintf(stderr, "idscope: error: %s: cannot enter the folder the shards were run in (%s)\n", p[0].cwd, p[0].dir);
        rc = 1;
    }
    if (!rc) {
        cli_set_merge_parts((const char *const *)items, n);
        cli_set_command_line(k, argv);
        rc = cli_dispatch(k, argv);
        cli_set_merge_parts(NULL, 0);
    }
    for (int i = 0; items && i < n; i++) free(items[i]);
    free(items);
    free(argv);
    free(out_abs);
    return rc;
}

/* A stimulus set: the parts' manifests (or COCO-format files) joined in item order, images linked. */
static int merge_stimuli(const part *p, int n, const char *out) {
    const char **dirs = calloc((size_t)n, sizeof *dirs);
    if (!dirs) return fail_oom();
    for (int k = 0; k < n; k++) dirs[p[k].index] = p[k].dir; /* parts_check: every shard once */
    ids_err err;
    int rc = ids_stimuli_merge(dirs, n, out, &err) ? fail(&err) : 0;
    free(dirs);
    char *own;
    if (!rc) fprintf(stderr, "wrote %s (%d parts joined)\n", path_show(out, &own), n), free(own);
    return rc;
}

int cmd_merge(int argc, char **argv) {
    merge_args a = {0};
    int rc = args_parse(&merge_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    part p[ARGS_MAX_LIST] = {0};
    rc = 0;
    for (int i = 0; !rc && i < a.parts.n; i++) rc = part_read(&p[i], a.parts.v[i]);
    if (!rc) rc = parts_check(p, a.parts.n);
    const cJSON *cmd = rc ? NULL : cJSON_GetArrayItem(p[0].cl, 0);
    if (!rc && cJSON_IsString(cmd) && !strcmp(cmd->valuestring, "stimuli")) rc = merge_stimuli(p, a.parts.n, a.out);
    else if (!rc) rc = merge_run(p, a.parts.n, a.out);
    for (int i = 0; i < a.parts.n; i++) cJSON_Delete(p[i].doc);
    return rc;
}
