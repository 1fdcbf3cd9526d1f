/* Stimulus sets read back from their manifests (the experiments' --set), and grid sets written in
 * the COCO-Spatial format (images with known boxes for the real-image path). */
#define _POSIX_C_SOURCE 200809L
#include "idscope/stimuli.h"
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

char *ids_set_manifest_path(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return ids__path_join(dir, "manifest.json");
    return ids__strdup(dir);
}

void ids_set_free(ids_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->items[i].file);
    free(s->items);
    free(s->manifest);
    free(s);
}

#define IDS_SET_COORD_MAX 1e7 /* pixels: boxes and centres beyond are not of any image */

/* One object of a record into o; IDS_ERR_* naming the key, or IDS_OK with *usable false when the
 * object has no name. */
static ids_status set_object(const cJSON *j, ids_set_obj *o, bool *usable, ids_err *err) {
    memset(o, 0, sizeof *o);
    o->cell_x = o->cell_y = -1;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name"), *word = cJSON_GetObjectItemCaseSensitive(j, "word");
    *usable = cJSON_IsString(name) && *name->valuestring && strlen(name->valuestring) < sizeof o->name;
    if (!*usable) return IDS_OK;
    snprintf(o->name, sizeof o->name, "%s", name->valuestring);
    if (cJSON_IsString(word) && *word->valuestring && strlen(word->valuestring) < sizeof o->word) {
        snprintf(o->word, sizeof o->word, "%s", word->valuestring);
    } else { /* the last word of the name */
        const char *sp = strrchr(o->name, ' ');
        snprintf(o->word, sizeof o->word, "%s", sp ? sp + 1 : o->name);
    }
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(j, "box"), *ctr = cJSON_GetObjectItemCaseSensitive(j, "center");
    if (box && !cJSON_IsNull(box)) {
        if (!cJSON_IsArray(box) || cJSON_GetArraySize(box) != 4)
            return ids__err(err, IDS_ERR_FORMAT, "object '%s': 'box' must be [x0, y0, x1, y1]", o->name);
        for (int k = 0; k < 4; k++) {
            double v;
            ids_status st = ids__json_num(cJSON_GetArrayItem(box, k), NULL, -IDS_SET_COORD_MAX, IDS_SET_COORD_MAX, 0, &v, err);
            if (st) return ids__err_prefix(err, st, "object '%s': box[%d]", o->name, k);
            o->box[k] = (float)v;
        }
        if (!(o->box[2] >= o->box[0] && o->box[3] >= o->box[1]))
            return ids__err(err, IDS_ERR_FORMAT, "object '%s': box [%g, %g, %g, %g] has x1 < x0 or y1 < y0", o->name,
                            (double)o->box[0], (double)o->box[1], (double)o->box[2], (double)o->box[3]);
        o->has_box = true;
        o->cx = 0.5f * (o->box[0] + o->box[2]), o->cy = 0.5f * (o->box[1] + o->box[3]);
        if (cJSON_IsArray(ctr) && cJSON_GetArraySize(ctr) == 2) {
            double x, y;
            ids_status st = ids__json_num(cJSON_GetArrayItem(ctr, 0), NULL, -IDS_SET_COORD_MAX, IDS_SET_COORD_MAX, o->cx, &x, err);
            if (!st) st = ids__json_num(cJSON_GetArrayItem(ctr, 1), NULL, -IDS_SET_COORD_MAX, IDS_SET_COORD_MAX, o->cy, &y, err);
            if (st) return ids__err_prefix(err, st, "object '%s': center", o->name);
            o->cx = (float)x, o->cy = (float)y;
        }
    }
    const cJSON *cell = cJSON_GetObjectItemCaseSensitive(j, "cell");
    if (cJSON_IsObject(cell)) {
        long long x, y;
        ids_status st = ids__json_int(cell, "x", 0, 4095, -1, &x, err);
        if (!st) st = ids__json_int(cell, "y", 0, 4095, -1, &y, err);
        if (st) return ids__err_prefix(err, st, "object '%s': cell", o->name);
        if (x >= 0 && y >= 0) o->cell_x = (int)x, o->cell_y = (int)y;
    }
    return IDS_OK;
}

/* Record r into it; *usable false when the record is not a still image with two named objects. */
static ids_status set_record(const cJSON *r, const char *base, ids_set_item *it, bool *usable, ids_err *err) {
    memset(it, 0, sizeof *it);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(r, "file"), *objs = cJSON_GetObjectItemCaseSensitive(r, "objects");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id"), *qs = cJSON_GetObjectItemCaseSensitive(r, "questions"), *o;
    *usable = cJSON_IsObject(r) && !cJSON_GetObjectItemCaseSensitive(r, "variant_of") &&
              !cJSON_GetObjectItemCaseSensitive(r, "frames") && cJSON_IsString(file) && *file->valuestring &&
              cJSON_IsArray(objs) && cJSON_GetArraySize(objs) >= 2;
    if (!*usable) return IDS_OK;
    snprintf(it->id, sizeof it->id, "%s", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_ArrayForEach(o, objs) {
        if (it->n_obj == 3) break;
        bool ok;
        ids_status st = set_object(o, &it->obj[it->n_obj], &ok, err);
        if (st) return ids__err_prefix(err, st, "record '%s'", it->id);
        if (!ok) {
            *usable = false;
            return IDS_OK;
        }
        it->n_obj++;
    }
    for (int rel = 0; rel < IDS_REL_COUNT; rel++) {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(qs, ids_relation_name((ids_relation)rel));
        const cJSON *ans = cJSON_GetObjectItemCaseSensitive(q, "answer");
        if (!cJSON_IsString(ans)) continue;
        const bool first = !strcmp(ans->valuestring, ids_answer_word((ids_relation)rel, true));
        if (!first && strcmp(ans->valuestring, ids_answer_word((ids_relation)rel, false)))
            return ids__err(err, IDS_ERR_FORMAT, "record '%s': questions.%s.answer is '%.60s', not '%s' or '%s'", it->id,
                            ids_relation_name((ids_relation)rel), ans->valuestring, ids_answer_word((ids_relation)rel, true),
                            ids_answer_word((ids_relation)rel, false));
        it->has[rel] = true;
        it->truth[rel] = first;
    }
    const char *f = file->valuestring;
    it->file = f[0] == '/' ? ids__strdup(f) : ids__path_join(base, f);
    if (!it->file) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    return IDS_OK;
}

ids_status ids_set_load(const char *dir, ids_set **out, ids_err *err) {
    *out = NULL;
    ids_set *s = ids__calloc(1, sizeof *s);
    char *txt = NULL, *base = NULL;
    if (!s || !(s->manifest = ids_set_manifest_path(dir))) {
        ids_set_free(s);
        return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    }
    ids_status st = ids__read_file(s->manifest, &txt, NULL, err);
    cJSON *root = st ? NULL : cJSON_Parse(txt);
    free(txt);
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(root, "records"), *r;
    if (!st && (!cJSON_IsObject(root) || !cJSON_IsArray(recs)))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: not a stimulus manifest (a JSON object with a \"records\" list, as written by "
                      "idscope stimuli)", s->manifest);
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(root, "set");
    long long grid = 0;
    if (!st && !(cJSON_IsString(set) && !strcmp(set->valuestring, "coco_spatial")) &&
        (st = ids__json_int(root, "grid", 1, 2048, 0, &grid, err)))
        ids__err_prefix(err, st, "%s", s->manifest);
    s->grid = (int)grid;
    const int nr = st ? 0 : cJSON_GetArraySize(recs);
    if (!st && nr > 0 && !(s->items = ids__calloc((size_t)nr, sizeof *s->items)))
        st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for %d records", s->manifest, nr);
    if (!st) {
        base = ids__strdup(s->manifest);
        char *slash = base ? strrchr(base, '/') : NULL;
        if (!base) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        else if (slash) *slash = 0;
        else strcpy(base, ".");
    }
    int idx = 0;
    cJSON_ArrayForEach(r, recs) {
        if (st) break;
        bool usable;
        st = set_record(r, base, &s->items[s->n], &usable, err);
        if (st) ids__err_prefix(err, st, "%s: records[%d]", s->manifest, idx);
        else if (usable) s->n++;
        else s->n_left_out++;
        idx++;
    }
    free(base);
    cJSON_Delete(root);
    if (st) {
        ids_set_free(s);
        return st;
    }
    *out = s;
    return IDS_OK;
}

/* ---- grid sets in the COCO-Spatial format ---- */

static bool jpush(cJSON *arr, cJSON *item) {
    if (arr && item && cJSON_AddItemToArray(arr, item)) return true;
    cJSON_Delete(item);
    return false;
}

static ids_status write_json_file(const char *dir, const char *name, cJSON *root, ids_err *err) {
    char *path = ids__path_join(dir, name), *txt = root ? cJSON_PrintUnformatted(root) : NULL;
    ids_status st = IDS_OK;
    if (!path || !txt) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", name);
    if (!st) {
        const void *parts[1] = {txt};
        size_t sizes[1] = {strlen(txt)};
        st = ids__write_atomic(path, parts, sizes, 1, err);
    }
    free(path);
    free(txt);
    return st;
}

static ids_status mkdir_one(const char *dir, ids_err *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
    return IDS_OK;
}

ids_status ids_stimuli_write_coco(const ids_stim_opts *o, const ids_catalog *c, const char *out_dir, int limit,
                                  ids_progress_fn progress, void *user, ids_err *err) {
    return ids_stimuli_write_coco_part(o, c, out_dir, limit, 0, 0, progress, user, err);
}

ids_status ids_stimuli_write_coco_part(const ids_stim_opts *o, const ids_catalog *c, const char *out_dir, int limit, int shard,
                                       int n_shards, ids_progress_fn progress, void *user, ids_err *err) {
    if (n_shards < 0 || (n_shards > 0 && (shard < 0 || shard >= n_shards)))
        return ids__err(err, IDS_ERR_ARG, "stimuli: shard %d/%d: the index must be in 0..%d", shard, n_shards, n_shards - 1);
    int n;
    ids_status st = ids_stim_count(IDS_SET_GRID, o, c, &n, err);
    if (st) return st;
    if (limit > 0 && limit < n) n = limit;
    char *img_dir = ids__path_join(out_dir, "images");
    if (!img_dir) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!(st = mkdir_one(out_dir, err))) st = mkdir_one(img_dir, err);
    cJSON *rows = cJSON_CreateArray(), *inst = cJSON_CreateObject();
    cJSON *images = inst ? cJSON_AddArrayToObject(inst, "images") : NULL;
    cJSON *anns = inst ? cJSON_AddArrayToObject(inst, "annotations") : NULL;
    cJSON *cats = inst ? cJSON_AddArrayToObject(inst, "categories") : NULL;
    if (!st && (!rows || !images || !anns || !cats)) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    int cat_ids[1024] = {0}; /* catalog index -> category id (1-based), 0 = none yet */
    int n_cats = 0;
    for (int i = 0; i < n && !st; i++) {
        if (n_shards > 0 && i % n_shards != shard) continue; /* another shard's */
        ids_stim s;
        if ((st = ids_stim_make(IDS_SET_GRID, o, c, i, &s, err))) break;
        const int image_id = i + 1;
        char name[32], path[1200];
        snprintf(name, sizeof name, "%012d.jpg", image_id);
        snprintf(path, sizeof path, "%.1000s/%s", img_dir, name);
        st = ids_image_write_jpeg(&s.frames[0], path, 95, err);
        /* the caption: left / right when the columns differ, else above / below */
        const bool lr = s.has[IDS_REL_LEFT_RIGHT];
        const ids_relation rel = lr ? IDS_REL_LEFT_RIGHT : IDS_REL_ABOVE_BELOW;
        const char *a = ids_catalog_name(c, s.obj[0].obj), *b = ids_catalog_name(c, s.obj[1].obj);
        char cap[2][600];
        for (int k = 0; k < 2; k++) {
            const bool first = k == 0 ? s.truth[rel] : !s.truth[rel];
            const char *phrase = lr ? (first ? "to the left of" : "to the right of") : (first ? "above" : "below");
            snprintf(cap[k], sizeof cap[k], "A photo of %s %s %s %s %s", strchr("aeiou", a[0]) ? "an" : "a", a, phrase,
                     strchr("aeiou", b[0]) ? "an" : "a", b);
        }
        cJSON *row = cJSON_CreateArray();
        bool ok = !st && jpush(row, cJSON_CreateNumber(image_id)) && jpush(row, cJSON_CreateString(cap[0])) &&
                  jpush(row, cJSON_CreateString(cap[1]));
        ok = ok ? jpush(rows, row) : (cJSON_Delete(row), false);
        cJSON *im = cJSON_CreateObject();
        ok = ok && cJSON_AddNumberToObject(im, "id", image_id) && cJSON_AddStringToObject(im, "file_name", name) &&
             cJSON_AddNumberToObject(im, "width", s.frames[0].w) && cJSON_AddNumberToObject(im, "height", s.frames[0].h);
        ok = ok ? jpush(images, im) : (cJSON_Delete(im), false);
        for (int k = 0; ok && k < 2; k++) {
            const int obj = s.obj[k].obj;
            if (obj < 0 || obj >= 1024) {
                st = ids__err(err, IDS_ERR_RANGE, "COCO format: object index %d is past 1023", obj);
                break;
            }
            if (!cat_ids[obj]) {
                cat_ids[obj] = ++n_cats;
                cJSON *ct = cJSON_CreateObject();
                ok = cJSON_AddNumberToObject(ct, "id", n_cats) && cJSON_AddStringToObject(ct, "name", ids_catalog_name(c, obj));
                ok = ok ? jpush(cats, ct) : (cJSON_Delete(ct), false);
            }
            const float h = s.obj[k].p.size * 0.5f;
            const double bb[4] = {round((s.obj[k].p.cx - h) * 100) / 100, round((s.obj[k].p.cy - h) * 100) / 100,
                                  round(2.0 * h * 100) / 100, round(2.0 * h * 100) / 100};
            cJSON *an = cJSON_CreateObject();
            ok = ok && an && cJSON_AddNumberToObject(an, "id", 2 * i + k + 1) && cJSON_AddNumberToObject(an, "image_id", image_id) &&
                 cJSON_AddNumberToObject(an, "category_id", cat_ids[obj]) &&
                 cJSON_AddItemToObject(an, "bbox", cJSON_CreateDoubleArray(bb, 4)) &&
                 cJSON_AddNumberToObject(an, "area", bb[2] * bb[3]);
            ok = ok ? jpush(anns, an) : (cJSON_Delete(an), false);
        }
        if (!st && !ok) st = ids__err(err, IDS_ERR_NOMEM, "COCO format: out of memory");
        ids_stim_free(&s);
        if (progress) progress("coco format", i + 1, n, user);
    }
    if (!st) st = write_json_file(out_dir, "coco_qa_two_obj.json", rows, err);
    if (!st) st = write_json_file(out_dir, "instances.json", inst, err);
    cJSON_Delete(rows);
    cJSON_Delete(inst);
    free(img_dir);
    return st;
}
