/* Joining the shards of a stimulus set (ids_stimuli_write_part, ids_stimuli_write_coco_part): the
 * records of item i are in part i % N at place i / N (times the records per item: the item and its
 * variants); the manifest (or the COCO-format files) is rebuilt in item order and every image is
 * hard-linked (or copied) from its part. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/stimuli.h"
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* An integral number member in lo..hi, def otherwise. */
static int jint(const cJSON *o, const char *key, int lo, int hi, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble || v->valuedouble < lo || v->valuedouble > hi)
        return def;
    return (int)v->valuedouble;
}

/* A JSON file of a part; NULL (with the error) when it cannot be read or parsed. */
static cJSON *read_json(const char *dir, const char *name, ids_err *err) {
    char *path = ids__path_join(dir, name), *txt = NULL;
    if (!path) {
        ids__err(err, IDS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cJSON *doc = NULL;
    if (ids__read_file(path, &txt, NULL, err) == IDS_OK) {
        doc = cJSON_Parse(txt);
        if (!doc) ids__err(err, IDS_ERR_FORMAT, "%s: not JSON", path);
    }
    free(txt);
    free(path);
    return doc;
}

static ids_status write_doc(const char *dir, const char *name, const cJSON *doc, bool formatted, ids_err *err) {
    char *path = ids__path_join(dir, name), *txt = formatted ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
    ids_status st = path && txt ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", name);
    if (!st) {
        size_t n = strlen(txt);
        if (formatted) txt[n++] = '\n'; /* as the manifest is written: the NUL replaced */
        const void *parts[1] = {txt};
        const size_t sizes[1] = {n};
        st = ids__write_atomic(path, parts, sizes, 1, err);
    }
    free(path);
    free(txt);
    return st;
}

/* mkdir -p of the folders above dir/rel's file. */
static ids_status make_parents(const char *dir, const char *rel, ids_err *err) {
    char *path = ids__path_join(dir, rel);
    if (!path) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_status st = IDS_OK;
    for (char *p = path + 1; *p && !st; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) st = ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", path, strerror(errno));
        *p = '/';
    }
    free(path);
    return st;
}

/* from/rel as to/rel: a hard link, else a copy (another file system, links not allowed). */
static ids_status link_file(const char *from, const char *to, const char *rel, ids_err *err) {
    if (!rel[0] || rel[0] == '/' || strstr(rel, ".."))
        return ids__err(err, IDS_ERR_FORMAT, "%s: the file name '%s' leaves the set's folder", from, rel);
    ids_status st = make_parents(to, rel, err);
    char *src = ids__path_join(from, rel), *dst = ids__path_join(to, rel);
    if (!st && (!src || !dst)) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    struct stat ss, sd;
    if (!st && stat(src, &ss) == 0 && stat(dst, &sd) == 0 && ss.st_dev == sd.st_dev && ss.st_ino == sd.st_ino) {
        free(src); /* already that file (out_dir is the part's folder, or a merge run again) */
        free(dst);
        return IDS_OK;
    }
    if (!st) unlink(dst);
    if (!st && link(src, dst) != 0) {
        if (errno == ENOENT) {
            st = ids__err(err, IDS_ERR_IO, "%s: missing (the part names it)", src);
        } else { /* EXDEV, EPERM, ...: copy */
            char *data = NULL;
            size_t len = 0;
            st = ids__read_file(src, &data, &len, err);
            const void *parts[1] = {data};
            const size_t sizes[1] = {len};
            if (!st) st = ids__write_atomic(dst, parts, sizes, 1, err);
            free(data);
        }
    }
    free(src);
    free(dst);
    return st;
}

/* Every file a manifest record names ("file", "frames", "video"), linked from part to out. */
static ids_status link_record(const cJSON *r, const char *from, const char *to, ids_err *err) {
    static const char *const keys[2] = {"file", "video"};
    ids_status st = IDS_OK;
    for (int k = 0; k < 2 && !st; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, keys[k]);
        if (cJSON_IsString(v)) st = link_file(from, to, v->valuestring, err);
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r, "frames")) {
        if (!st && cJSON_IsString(f)) st = link_file(from, to, f->valuestring, err);
    }
    return st;
}

/* Items of shard p of n over `total` items. */
static int shard_items(int total, int p, int n) { return total > p ? (total - p + n - 1) / n : 0; }

/* A part's manifest: shard p of n, the same set and options as part 0's; *per: records per item. */
static ids_status manifest_check(cJSON *const *roots, const char *const *dirs, int p, int n, int *total, int *per,
                                 ids_err *err) {
    const cJSON *r = roots[p], *sh = cJSON_GetObjectItemCaseSensitive(r, "shard");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(r, "format");
    const int idx = jint(sh, "index", 0, 1000000, -1), cnt = jint(sh, "count", 1, 1000000, -1);
    const int items = jint(sh, "items", 0, 1000000000, -1);
    if (!cJSON_IsString(f) || strcmp(f->valuestring, "idscope.stimuli.v1") || idx < 0 || cnt < 0 || items < 0)
        return ids__err(err, IDS_ERR_FORMAT, "%s/manifest.json: not a shard of a stimulus set (format, shard)", dirs[p]);
    if (idx != p || cnt != n)
        return ids__err(err, IDS_ERR_ARG, "%s is shard %d/%d, expected shard %d/%d", dirs[p], idx, cnt, p, n);
    if (p == 0) *total = items;
    static const char *const same[6] = {"set", "seed", "image_size", "grid", "frames", "provenance"};
    for (int k = 0; k < 6; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(roots[0], same[k]), *b = cJSON_GetObjectItemCaseSensitive(r, same[k]);
        if (k == 5) { /* the options */
            a = cJSON_GetObjectItemCaseSensitive(a, "options"), b = cJSON_GetObjectItemCaseSensitive(b, "options");
        }
        if (items != *total || (a || b) != (a && b) || (a && !cJSON_Compare(a, b, true)))
            return ids__err(err, IDS_ERR_ARG, "%s and %s are not parts of one set (%s differs)", dirs[0], dirs[p],
                            items != *total ? "the number of items" : same[k]);
    }
    const int mine = shard_items(*total, p, n), recs = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "records"));
    if (mine > 0 && (*per < 0 ? recs % mine != 0 || recs / mine < 1 : recs != *per * mine))
        return ids__err(err, IDS_ERR_FORMAT, "%s/manifest.json: %d records for %d items", dirs[p], recs, mine);
    if (mine > 0 && *per < 0) *per = recs / mine;
    return IDS_OK;
}

static ids_status merge_manifests(cJSON **roots, const char *const *dirs, int n, const char *out, ids_err *err) {
    int total = 0, per = -1;
    ids_status st = IDS_OK;
    for (int p = 0; p < n && !st; p++) st = manifest_check(roots, dirs, p, n, &total, &per, err);
    cJSON *merged = st ? NULL : cJSON_CreateArray();
    cJSON **cur = st ? NULL : ids__calloc((size_t)n, sizeof *cur);
    if (!st && (!merged || !cur)) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    for (int p = 0; p < n && !st; p++) {
        const cJSON *records = cJSON_GetObjectItemCaseSensitive(roots[p], "records");
        cur[p] = cJSON_IsArray(records) ? records->child : NULL;
    }
    for (int i = 0; i < total && !st; i++) {
        const int p = i % n;
        for (int k = 0; k < per && !st; k++) {
            cJSON *r = cur[p], *records = cJSON_GetObjectItemCaseSensitive(roots[p], "records");
            if (!r) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s/manifest.json: item %d is missing", dirs[p], i);
                break;
            }
            cur[p] = r->next;
            cJSON_DetachItemViaPointer(records, r);
            cJSON_AddItemToArray(merged, r);
            st = link_record(r, dirs[p], out, err);
        }
    }
    cJSON *prov = st ? NULL : cJSON_GetObjectItemCaseSensitive(roots[0], "provenance");
    if (prov) {
        cJSON_DeleteItemFromObjectCaseSensitive(prov, "shard");
        if (!cJSON_AddNumberToObject(prov, "merged_parts", n)) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        cJSON_DeleteItemFromObjectCaseSensitive(roots[0], "shard");
        if (!cJSON_ReplaceItemInObjectCaseSensitive(roots[0], "records", merged)) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        else merged = NULL;
    }
    if (!st) st = write_doc(out, "manifest.json", roots[0], true, err);
    cJSON_Delete(merged);
    free(cur);
    return st;
}

/* The COCO-format files: rows, images and annotations (two per item) in item order, each checked
 * to be item i's (image id i + 1); categories renumbered in the order the items meet them. */
static ids_status merge_coco(cJSON **rows, cJSON **inst, const char *const *dirs, int n, const char *out, ids_err *err) {
    cJSON *m_rows = cJSON_CreateArray(), *m_inst = cJSON_CreateObject();
    cJSON *m_img = cJSON_AddArrayToObject(m_inst, "images"), *m_ann = cJSON_AddArrayToObject(m_inst, "annotations");
    cJSON *m_cat = cJSON_AddArrayToObject(m_inst, "categories");
    cJSON **cur = ids__calloc(3 * (size_t)n, sizeof *cur);
    ids_status st = m_rows && m_img && m_ann && m_cat && cur ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    int total = 0, n_cat = 0;
    for (int p = 0; p < n && !st; p++) {
        if (!cJSON_IsArray(rows[p]) || !cJSON_IsObject(inst[p])) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: coco_qa_two_obj.json is not a list or instances.json not an object", dirs[p]);
            break;
        }
        total += cJSON_GetArraySize(rows[p]);
        cur[3 * p] = rows[p] ? rows[p]->child : NULL;
        cur[3 * p + 1] = cJSON_GetObjectItemCaseSensitive(inst[p], "images") ? cJSON_GetObjectItemCaseSensitive(inst[p], "images")->child : NULL;
        cur[3 * p + 2] = cJSON_GetObjectItemCaseSensitive(inst[p], "annotations") ? cJSON_GetObjectItemCaseSensitive(inst[p], "annotations")->child : NULL;
    }
    for (int i = 0; i < total && !st; i++) {
        const int p = i % n;
        cJSON *row = cur[3 * p], *im = cur[3 * p + 1];
        if (!row || !im || jint(im, "id", 0, INT32_MAX, -1) != i + 1 || !cJSON_IsNumber(cJSON_GetArrayItem(row, 0)) ||
            cJSON_GetArrayItem(row, 0)->valuedouble != i + 1) {
            st = ids__err(err, IDS_ERR_ARG, "%s: image %d is not where shard %d/%d puts it (a part of another set?)", dirs[p], i + 1, p, n);
            break;
        }
        cur[3 * p] = row->next, cur[3 * p + 1] = im->next;
        cJSON_AddItemToArray(m_rows, cJSON_DetachItemViaPointer(rows[p], row));
        cJSON_AddItemToArray(m_img, cJSON_DetachItemViaPointer(cJSON_GetObjectItemCaseSensitive(inst[p], "images"), im));
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(im, "file_name");
        char *from = ids__path_join(dirs[p], "images"), *to = ids__path_join(out, "images");
        st = !from || !to ? ids__err(err, IDS_ERR_NOMEM, "out of memory")
             : cJSON_IsString(fn) ? link_file(from, to, fn->valuestring, err)
                                  : ids__err(err, IDS_ERR_FORMAT, "%s/instances.json: image %d has no file_name", dirs[p], i + 1);
        free(from);
        free(to);
        for (int k = 0; k < 2 && !st; k++) {
            cJSON *an = cur[3 * p + 2];
            const int cid = jint(an, "category_id", 1, INT32_MAX, -1);
            const cJSON *c = NULL, *cn = NULL;
            cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(inst[p], "categories"))
                if (jint(c, "id", 1, INT32_MAX, -1) == cid) break;
            cn = cJSON_GetObjectItemCaseSensitive(c, "name");
            if (!an || cid < 1 || jint(an, "image_id", 0, INT32_MAX, -1) != i + 1 || !cJSON_IsString(cn)) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s/instances.json: image %d lacks its two annotations or their categories", dirs[p], i + 1);
                break;
            }
            int gid = 0, q = 0;
            const cJSON *g;
            cJSON_ArrayForEach(g, m_cat) {
                q++;
                if (!strcmp(cJSON_GetObjectItemCaseSensitive(g, "name")->valuestring, cn->valuestring)) gid = q;
            }
            if (!gid) {
                cJSON *ct = cJSON_CreateObject();
                gid = ++n_cat;
                if (!ct || !cJSON_AddNumberToObject(ct, "id", gid) || !cJSON_AddStringToObject(ct, "name", cn->valuestring) ||
                    !cJSON_AddItemToArray(m_cat, ct))
                    cJSON_Delete(ct), st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
            }
            cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(an, "category_id"), gid);
            cur[3 * p + 2] = an->next;
            cJSON_AddItemToArray(m_ann, cJSON_DetachItemViaPointer(cJSON_GetObjectItemCaseSensitive(inst[p], "annotations"), an));
        }
    }
    for (int p = 0; p < n && !st; p++)
        if (cur[3 * p] || cur[3 * p + 1] || cur[3 * p + 2])
            st = ids__err(err, IDS_ERR_ARG, "%s: more items than shard %d/%d of %d items has", dirs[p], p, n, total);
    if (!st) st = write_doc(out, "coco_qa_two_obj.json", m_rows, false, err);
    if (!st) st = write_doc(out, "instances.json", m_inst, false, err);
    cJSON_Delete(m_rows);
    cJSON_Delete(m_inst);
    free(cur);
    return st;
}

ids_status ids_stimuli_merge(const char *const *part_dirs, int n_parts, const char *out_dir, ids_err *err) {
    if (n_parts < 1) return ids__err(err, IDS_ERR_ARG, "stimuli merge: no parts");
    char *probe = ids__path_join(part_dirs[0], "manifest.json");
    if (!probe) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    const bool coco = access(probe, F_OK) != 0;
    free(probe);
    cJSON **a = ids__calloc(2 * (size_t)n_parts, sizeof *a);
    ids_status st = a ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    for (int p = 0; p < n_parts && !st; p++) {
        if (!(a[p] = read_json(part_dirs[p], coco ? "coco_qa_two_obj.json" : "manifest.json", err))) st = err->code ? err->code : IDS_ERR_IO;
        if (!st && coco && !(a[n_parts + p] = read_json(part_dirs[p], "instances.json", err))) st = err->code ? err->code : IDS_ERR_IO;
    }
    if (!st && mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        st = ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", out_dir, strerror(errno));
    if (!st) st = coco ? merge_coco(a, a + n_parts, part_dirs, n_parts, out_dir, err) : merge_manifests(a, part_dirs, n_parts, out_dir, err);
    for (int p = 0; a && p < 2 * n_parts; p++) cJSON_Delete(a[p]);
    free(a);
    return st;
}
