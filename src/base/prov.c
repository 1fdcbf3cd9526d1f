/* Version, default thread count and the provenance of result files (base): what made a result,
 * recorded as a cJSON object and compared key by key when a run decides whether a stored result
 * answers the same request. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/base.h"
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef IDS_BUILD_SOURCE
#define IDS_BUILD_SOURCE "unknown"
#endif

const char *ids_version(void) { return IDS_VERSION_STRING; }
const char *ids_build_source(void) { return IDS_BUILD_SOURCE; }

int ids_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

struct ids_prov {
    cJSON *root, *models, *inputs, *options;
    struct timespec t0;
    bool oom;
};

char *ids__path_join(const char *dir, const char *name) {
    const size_t a = strlen(dir), b = strlen(name);
    char *p = ids__malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(ids_prov *p, const void *made) {
    if (!made) p->oom = true;
}

ids_status ids_prov_new(ids_prov **out, const char *command, ids_err *err) {
    *out = NULL;
    ids_prov *p = ids__calloc(1, sizeof *p);
    if (!p) return ids__err(err, IDS_ERR_NOMEM, "out of memory for a result's provenance");
    p->root = cJSON_CreateObject();
    if (!p->root) {
        free(p);
        return ids__err(err, IDS_ERR_NOMEM, "out of memory for a result's provenance");
    }
    check(p, cJSON_AddStringToObject(p->root, "idscope", ids_version()));
    check(p, cJSON_AddStringToObject(p->root, "build", ids_build_source()));
    check(p, cJSON_AddStringToObject(p->root, "command", command));
    check(p, p->models = cJSON_AddObjectToObject(p->root, "models"));
    check(p, p->inputs = cJSON_AddObjectToObject(p->root, "inputs"));
    check(p, p->options = cJSON_AddObjectToObject(p->root, "options"));
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    check(p, cJSON_AddStringToObject(p->root, "started", when));
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    *out = p;
    return IDS_OK;
}

void ids_prov_free(ids_prov *p) {
    if (!p) return;
    cJSON_Delete(p->root);
    free(p);
}

/* Absolute normalised path, size and FNV-1a 64 of the first `limit` bytes (0: all). */
static ids_status file_entry(ids_prov *p, cJSON *where, const char *role, const char *path, uint64_t limit,
                             ids_err *err) {
    char *abs = realpath(path, NULL);
    if (!abs) return ids__err(err, IDS_ERR_IO, "%s: cannot resolve the path: %s", path, strerror(errno));
    ids_status st = IDS_OK;
    int fd = open(abs, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = ids__err(err, IDS_ERR_IO, "%s: cannot read: %s", abs, strerror(errno));
        goto done;
    }
    uint64_t want = limit && limit < (uint64_t)sb.st_size ? limit : (uint64_t)sb.st_size, h = IDS_FNV1A64_INIT;
    unsigned char buf[1 << 16];
    while (want > 0) {
        ssize_t k = read(fd, buf, want < sizeof buf ? (size_t)want : sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            st = ids__err(err, IDS_ERR_IO, "%s: read failed while fingerprinting: %s", abs, k ? strerror(errno) : "early end");
            goto done;
        }
        h = ids__fnv1a64(h, buf, (size_t)k);
        want -= (uint64_t)k;
    }
    char fp[32];
    snprintf(fp, sizeof fp, "fnv1a64:%016llx", (unsigned long long)h);
    cJSON *e = cJSON_CreateObject();
    check(p, e);
    if (e) {
        check(p, cJSON_AddStringToObject(e, "path", abs));
        check(p, cJSON_AddNumberToObject(e, "bytes", (double)sb.st_size));
        check(p, cJSON_AddStringToObject(e, "fingerprint", fp));
        cJSON_DeleteItemFromObjectCaseSensitive(where, role);
        if (!cJSON_AddItemToObject(where, role, e)) cJSON_Delete(e), p->oom = true;
    }
done:
    if (fd >= 0) close(fd);
    free(abs);
    return st;
}

ids_status ids_prov_model(ids_prov *p, const char *role, const char *path, uint64_t header_bytes, ids_err *err) {
    return file_entry(p, p->models, role, path, header_bytes ? header_bytes : 0, err);
}

ids_status ids_prov_input(ids_prov *p, const char *role, const char *path, ids_err *err) {
    return file_entry(p, p->inputs, role, path, 0, err);
}

static void set_opt(ids_prov *p, const char *key, cJSON *v) {
    if (!v) {
        p->oom = true;
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(p->options, key);
    if (!cJSON_AddItemToObject(p->options, key, v)) cJSON_Delete(v), p->oom = true;
}

void ids_prov_opt_int(ids_prov *p, const char *key, long long v) { set_opt(p, key, cJSON_CreateNumber((double)v)); }
void ids_prov_opt_num(ids_prov *p, const char *key, double v) {
    set_opt(p, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}
void ids_prov_opt_str(ids_prov *p, const char *key, const char *v) {
    set_opt(p, key, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}
void ids_prov_opt_bool(ids_prov *p, const char *key, bool v) { set_opt(p, key, cJSON_CreateBool(v)); }
void ids_prov_opt_strs(ids_prov *p, const char *key, const char *const *v, int n) {
    set_opt(p, key, n > 0 ? cJSON_CreateStringArray(v, n) : cJSON_CreateArray()); /* cJSON makes no empty one */
}
void ids_prov_opt_nums(ids_prov *p, const char *key, const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        /* a float's decimal form to 6 significant digits: 0.78f is stored as 0.78, not 0.77999997 */
        char t[32];
        snprintf(t, sizeof t, "%.6g", (double)v[i]);
        cJSON *x = cJSON_CreateNumber(strtod(t, NULL));
        if (!x || !cJSON_AddItemToArray(a, x)) cJSON_Delete(x), p->oom = true;
    }
    set_opt(p, key, a);
}

static void set_root(ids_prov *p, const char *key, cJSON *v) {
    if (!v) {
        p->oom = true;
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(p->root, key);
    if (!cJSON_AddItemToObject(p->root, key, v)) cJSON_Delete(v), p->oom = true;
}

void ids_prov_run(ids_prov *p, uint64_t seed, int threads, const char *precision) {
    set_root(p, "seed", cJSON_CreateNumber((double)seed));
    set_root(p, "threads", cJSON_CreateNumber(threads > 0 ? threads : ids_default_threads()));
    set_root(p, "precision", cJSON_CreateString(precision ? precision : "f32"));
}

void ids_prov_shard(ids_prov *p, int index, int count) {
    if (count <= 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(p->root, "shard");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "index", index) || !cJSON_AddNumberToObject(o, "count", count))) {
        cJSON_Delete(o);
        o = NULL;
    }
    set_root(p, "shard", o);
}

void ids_prov_shard_get(const ids_prov *p, int *index, int *count) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(p->root, "shard");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, "index"), *n = cJSON_GetObjectItemCaseSensitive(o, "count");
    *index = cJSON_IsNumber(i) ? i->valueint : 0;
    *count = cJSON_IsNumber(n) ? n->valueint : 0;
}

void ids_prov_finish(ids_prov *p) {
    const double t0 = (double)p->t0.tv_sec + 1e-9 * (double)p->t0.tv_nsec;
    set_root(p, "seconds", cJSON_CreateNumber(round((now_mono() - t0) * 1000) / 1000));
}

cJSON *ids__prov_json(const ids_prov *p, ids_err *err) {
    cJSON *c = p->oom ? NULL : cJSON_Duplicate(p->root, true);
    if (!c) ids__err(err, IDS_ERR_NOMEM, "out of memory while recording a result's provenance");
    return c;
}

/* ---- matching a stored result against a request ---- */

static void show(const cJSON *v, char *out, size_t n) {
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(out, n, "%s", t ? t : "(absent)");
    if (t && strlen(t) >= n && n > 4) strcpy(out + n - 4, "...");
    free(t);
}

static bool differ(const char *key, const cJSON *stored, const cJSON *want, char *why, size_t why_len) {
    if (stored && want && cJSON_Compare(stored, want, true)) return false;
    if (!stored && !want) return false;
    if (why && why_len) {
        char a[96], b[96];
        show(stored, a, sizeof a);
        show(want, b, sizeof b);
        snprintf(why, why_len, "%s: %s in the file, %s asked", key, a, b);
    }
    return true;
}

/* Compare two objects key by key (union of keys); files compare by fingerprint only. */
static bool differ_obj(const char *name, const cJSON *stored, const cJSON *want, bool files, char *why, size_t why_len) {
    const cJSON *sides[2] = {want, stored}, *it;
    for (int s = 0; s < 2; s++)
        cJSON_ArrayForEach(it, sides[s]) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(stored, it->string);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(want, it->string);
            char key[160];
            snprintf(key, sizeof key, "%s.%s", name, it->string);
            if (files) {
                if (a) a = cJSON_GetObjectItemCaseSensitive(a, "fingerprint");
                if (b) b = cJSON_GetObjectItemCaseSensitive(b, "fingerprint");
            }
            if (differ(key, a, b, why, why_len)) return true;
        }
    return false;
}

bool ids_prov_matches(const ids_prov *p, const char *stored_json, char *why, size_t why_len) {
    if (why && why_len) why[0] = 0;
    cJSON *doc = stored_json ? cJSON_Parse(stored_json) : NULL;
    const cJSON *st = doc && cJSON_HasObjectItem(doc, "provenance") ? cJSON_GetObjectItemCaseSensitive(doc, "provenance") : doc;
    bool same = false;
    if (!cJSON_IsObject(st) || p->oom) {
        if (why && why_len) snprintf(why, why_len, "provenance: %s", p->oom ? "out of memory" : "none in the file");
    } else {
        static const char *const scalars[] = {"command", "seed", "precision"};
        same = true;
        for (size_t i = 0; same && i < sizeof scalars / sizeof *scalars; i++)
            same = !differ(scalars[i], cJSON_GetObjectItemCaseSensitive(st, scalars[i]),
                           cJSON_GetObjectItemCaseSensitive(p->root, scalars[i]), why, why_len);
        if (same) same = !differ_obj("models", cJSON_GetObjectItemCaseSensitive(st, "models"), p->models, true, why, why_len);
        if (same) same = !differ_obj("inputs", cJSON_GetObjectItemCaseSensitive(st, "inputs"), p->inputs, true, why, why_len);
        if (same) same = !differ_obj("options", cJSON_GetObjectItemCaseSensitive(st, "options"), p->options, false, why, why_len);
    }
    cJSON_Delete(doc);
    return same;
}
