/* Shards and kept items (docs/CLUSTER.md): which items are a shard's, the append-only item log
 * DIR/items.bin that makes a long run resumable and holds a shard's partial result, and the parts
 * a merge reads its items from.
 *
 * items.bin: a header, then one record per finished item, appended as each is done:
 *   header  "IDSITEMS" | u32 version 1 | u32 n | n bytes: the request's provenance (JSON) | u64 FNV-1a 64 of them
 *   record  u64 item number | u64 n | n bytes | u64 FNV-1a 64 of the item number, n and the bytes
 * (little-endian as the machine writes it). Reading stops at the first record that is cut short or
 * whose checksum fails (a run killed while writing it): the file is cut there and the run goes on. */
#define _POSIX_C_SOURCE 200809L
#include "exp/exp_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define STORE_MAGIC "IDSITEMS"
#define STORE_FILE "items.bin"

typedef struct {
    const unsigned char *p; /* mmap'd file (NULL: empty) */
    size_t size;
    char *path;
} store_file;

typedef struct {
    int part; /* -1: none */
    size_t off, len;
} store_ref;

struct ids__store {
    store_file *files; /* the own items.bin (one) or the parts */
    int n_files;
    store_ref *refs; /* by item number */
    long n_refs;
    int fd;          /* items.bin opened to append (-1: none) */
    char *path;      /* its path */
    long kept, found;
};

bool ids__item_mine(const ids__exp *x, long idx) { return x->n_shards <= 1 || idx % x->n_shards == x->shard; }

bool ids__exp_partial(const ids__exp *x) { return x->n_shards > 0 && x->n_parts == 0; }

static uint64_t rec_sum(uint64_t idx, uint64_t len, const void *p) {
    uint64_t h = ids__fnv1a64(14695981039346656037ull, &idx, 8);
    h = ids__fnv1a64(h, &len, 8);
    return ids__fnv1a64(h, p, (size_t)len);
}

static void store_free(ids__store *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) {
        if (s->files[i].p) munmap((void *)s->files[i].p, s->files[i].size);
        free(s->files[i].path);
    }
    free(s->files);
    free(s->refs);
    if (s->fd >= 0) close(s->fd);
    free(s->path);
    free(s);
}

/* Map a file read-only (*f->p NULL for an empty or absent one when may_miss). */
static ids_status map_file(store_file *f, bool may_miss, ids_err *err) {
    int fd = open(f->path, O_RDONLY);
    if (fd < 0) {
        if (may_miss && errno == ENOENT) return IDS_OK;
        return ids__err(err, IDS_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    }
    struct stat sb;
    ids_status st = fstat(fd, &sb) ? ids__err(err, IDS_ERR_IO, "%s: %s", f->path, strerror(errno)) : IDS_OK;
    if (!st && sb.st_size > 0) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) st = ids__err(err, IDS_ERR_IO, "%s: cannot map: %s", f->path, strerror(errno));
        else f->p = p, f->size = (size_t)sb.st_size;
    }
    close(fd);
    return st;
}

/* The header: *body = offset of the first record, *why (when it does not fit the request) a reason. */
static bool header_ok(const ids__exp *x, const store_file *f, size_t *body, char *why, size_t why_len) {
    uint32_t ver, n;
    if (f->size < 16 || memcmp(f->p, STORE_MAGIC, 8)) {
        snprintf(why, why_len, "not an item log (no %s header)", STORE_MAGIC);
        return false;
    }
    memcpy(&ver, f->p + 8, 4);
    memcpy(&n, f->p + 12, 4);
    uint64_t sum;
    if (ver != 1 || f->size < 24 + (size_t)n) {
        snprintf(why, why_len, "version %u or a header cut short", (unsigned)ver);
        return false;
    }
    memcpy(&sum, f->p + 16 + n, 8);
    char *json = ids__malloc((size_t)n + 1);
    if (!json || sum != ids__fnv1a64(14695981039346656037ull, f->p + 16, n)) {
        snprintf(why, why_len, "%s", json ? "the header's checksum fails" : "out of memory");
        free(json);
        return false;
    }
    memcpy(json, f->p + 16, n);
    json[n] = 0;
    const bool same = ids_prov_matches(x->prov, json, why, why_len);
    free(json);
    *body = 24 + (size_t)n;
    return same;
}

static ids_status ref_set(ids__store *s, uint64_t idx, int part, size_t off, size_t len, ids_err *err) {
    if (idx >= (uint64_t)1 << 40) return ids__err(err, IDS_ERR_FORMAT, "%s: item number %llu is out of range",
                                                  s->files[part].path, (unsigned long long)idx);
    if ((long)idx >= s->n_refs) {
        long n = s->n_refs ? s->n_refs : 1024;
        while (n <= (long)idx) n *= 2;
        store_ref *r = ids__realloc(s->refs, sizeof *r * (size_t)n);
        if (!r) return ids__err(err, IDS_ERR_NOMEM, "out of memory for %ld kept items", n);
        for (long i = s->n_refs; i < n; i++) r[i].part = -1;
        s->refs = r, s->n_refs = n;
    }
    store_ref *r = &s->refs[idx];
    if (r->part >= 0 && r->part != part)
        return ids__err(err, IDS_ERR_ARG, "item %llu is in two parts: %s and %s (a shard given twice?)",
                        (unsigned long long)idx, s->files[r->part].path, s->files[part].path);
    *r = (store_ref){part, off, len};
    return IDS_OK;
}

/* Index the records of file `part` from `body` on; *end: the end of the last whole record. */
static ids_status scan(ids__store *s, int part, size_t body, size_t *end, ids_err *err) {
    const store_file *f = &s->files[part];
    size_t o = body;
    ids_status st = IDS_OK;
    while (!st && f->size - o >= 24) {
        uint64_t idx, len, sum;
        memcpy(&idx, f->p + o, 8);
        memcpy(&len, f->p + o + 8, 8);
        if (len > f->size - o - 24) break;
        memcpy(&sum, f->p + o + 16 + len, 8);
        if (sum != rec_sum(idx, len, f->p + o + 16)) break;
        st = ref_set(s, idx, part, o + 16, (size_t)len, err);
        o += 24 + (size_t)len;
    }
    *end = o;
    return st;
}

/* A new items.bin with the request's header (the old one, if any, replaced). */
static ids_status start_log(ids__store *s, const ids__exp *x, ids_err *err) {
    cJSON *pj = ids__prov_json(x->prov, err);
    char *json = pj ? cJSON_PrintUnformatted(pj) : NULL;
    cJSON_Delete(pj);
    if (!json) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", s->path);
    const uint32_t ver = 1, n = (uint32_t)strlen(json);
    const uint64_t sum = ids__fnv1a64(14695981039346656037ull, json, n);
    unsigned char head[16];
    memcpy(head, STORE_MAGIC, 8), memcpy(head + 8, &ver, 4), memcpy(head + 12, &n, 4);
    const void *p3[3] = {head, json, &sum};
    size_t s3[3] = {16, n, 8};
    ids_status st = ids__write_atomic(s->path, p3, s3, 3, err);
    free(json);
    return st;
}

/* Open x->items_dir/items.bin: resume from its records when it answers the same request. */
static ids_status open_own(ids__store *s, const ids__exp *x, ids_err *err) {
    ids_status st = ids__mkdir_p(x->items_dir, err);
    if (!st && !(s->path = ids__path_join(x->items_dir, STORE_FILE))) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st && !(s->files = ids__calloc(1, sizeof *s->files))) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st && !(s->files[0].path = ids__strdup(s->path))) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (st) return st;
    s->n_files = 1;
    if ((st = map_file(&s->files[0], true, err))) return st;
    size_t body = 0, end = 0;
    char why[256] = "";
    bool resume = s->files[0].p && header_ok(x, &s->files[0], &body, why, sizeof why);
    if (resume) st = scan(s, 0, body, &end, err);
    long n_kept = 0;
    for (long i = 0; resume && !st && i < s->n_refs; i++) n_kept += s->refs[i].part >= 0;
    if (n_kept) ids__log(1, "%s: %ld items kept by an earlier run of the same request are reused", s->path, n_kept);
    if (!resume) {
        if (s->files[0].p) ids__log(1, "%s: %s; starting over", s->path, why);
        if (s->files[0].p) munmap((void *)s->files[0].p, s->files[0].size);
        s->files[0].p = NULL, s->files[0].size = 0;
        if (!st) st = start_log(s, x, err);
    } else if (!st && end < s->files[0].size) { /* a record cut short by a kill: drop it */
        if (truncate(s->path, (off_t)end)) st = ids__err(err, IDS_ERR_IO, "%s: cannot cut the torn record: %s", s->path, strerror(errno));
    }
    if (!st && (s->fd = open(s->path, O_WRONLY | O_APPEND)) < 0)
        st = ids__err(err, IDS_ERR_IO, "%s: cannot open to append: %s", s->path, strerror(errno));
    return st;
}

/* The parts of a merge: each must answer the same request. */
static ids_status open_parts(ids__store *s, const ids__exp *x, ids_err *err) {
    if (!(s->files = ids__calloc((size_t)x->n_parts, sizeof *s->files))) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_status st = IDS_OK;
    for (int i = 0; !st && i < x->n_parts; i++) {
        store_file *f = &s->files[i];
        s->n_files++;
        if (!(f->path = ids__strdup(x->parts[i]))) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
        size_t body = 0, end = 0;
        char why[256] = "";
        if ((st = map_file(f, false, err))) break;
        if (!f->p || !header_ok(x, f, &body, why, sizeof why))
            st = ids__err(err, IDS_ERR_ARG, "%s: not from this request: %s", f->path, f->p ? why : "empty");
        if (!st) st = scan(s, i, body, &end, err);
        if (!st && end < f->size) st = ids__err(err, IDS_ERR_FORMAT, "%s: a record at offset %zu is cut short or damaged", f->path, end);
    }
    return st;
}

static ids_status store_open(ids__exp *x, ids_err *err) {
    if (!x->prov) return ids__err(err, IDS_ERR_ARG, "kept items: the run has no provenance");
    ids__store *s = ids__calloc(1, sizeof *s);
    if (!s) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    s->fd = -1;
    ids_status st = x->n_parts > 0 ? open_parts(s, x, err) : open_own(s, x, err);
    if (st) store_free(s);
    else x->store = s;
    return st;
}

ids_status ids__item_find(ids__exp *x, const void **rec, size_t *len, ids_err *err) {
    *rec = NULL, *len = 0;
    if (!x->items_dir && x->n_parts == 0) return IDS_OK;
    ids_status st = x->store ? IDS_OK : store_open(x, err);
    if (st) return st;
    const ids__store *s = x->store;
    const store_ref *r = x->item < s->n_refs ? &s->refs[x->item] : NULL;
    if (r && r->part >= 0) {
        *rec = s->files[r->part].p + r->off, *len = r->len;
        x->store->found++;
        return IDS_OK;
    }
    if (x->n_parts > 0) return ids__err(err, IDS_ERR_ARG, "item %ld is in none of the %d parts (a shard is missing)", x->item, x->n_parts);
    return IDS_OK;
}

ids_status ids__item_keep(ids__exp *x, const void *rec, size_t len, ids_err *err) {
    if (!x->store || x->store->fd < 0) return IDS_OK;
    uint64_t h[2] = {(uint64_t)x->item, (uint64_t)len};
    const uint64_t sum = rec_sum(h[0], h[1], rec);
    struct iovec iov[3] = {{h, 16}, {(void *)rec, len}, {(void *)&sum, 8}};
    const ssize_t want = (ssize_t)(24 + len);
    const ssize_t n = writev(x->store->fd, iov, 3);
    if (n != want) /* a short write leaves a torn record, which the next run drops */
        return ids__err(err, IDS_ERR_IO, "%s: cannot append item %ld: %s", x->store->path, x->item, n < 0 ? strerror(errno) : "disk full?");
    x->store->kept++;
    return IDS_OK;
}

ids_status ids__item_doubles(ids__exp *x, double *rec, size_t n, bool *found, ids_err *err) {
    const void *kept = NULL;
    size_t len = 0;
    *found = false;
    ids_status st = ids__item_find(x, &kept, &len, err);
    if (!st && kept && len != sizeof(double) * n)
        st = ids__err(err, IDS_ERR_FORMAT, "kept item %ld has %zu bytes, %zu expected", x->item, len, sizeof(double) * n);
    if (!st && kept) memcpy(rec, kept, len), *found = true;
    return st;
}

/* DIR/part.json: the shard, its items, the command line and the run's provenance. */
static ids_status write_part(const ids__exp *x, ids_err *err) {
    cJSON *doc = cJSON_CreateObject(), *sh = NULL, *cl = NULL;
    bool oom = !doc || !cJSON_AddStringToObject(doc, "format", "idscope-part");
    if (!oom) oom = !(sh = cJSON_AddObjectToObject(doc, "shard"));
    if (!oom) oom = !cJSON_AddNumberToObject(sh, "index", x->shard) || !cJSON_AddNumberToObject(sh, "count", x->n_shards);
    long mine = 0;
    for (long i = 0; i < x->done; i++) mine += ids__item_mine(x, i);
    if (!oom) oom = !cJSON_AddNumberToObject(doc, "items", (double)mine) || !cJSON_AddNumberToObject(doc, "total", (double)x->done);
    if (!oom) oom = !cJSON_AddStringToObject(doc, "items_file", STORE_FILE);
    if (!oom) oom = !(cl = cJSON_AddArrayToObject(doc, "command_line"));
    for (int i = 0; !oom && i < x->n_command_line; i++) {
        cJSON *t = cJSON_CreateString(x->command_line[i]);
        if (!t || !cJSON_AddItemToArray(cl, t)) cJSON_Delete(t), oom = true;
    }
    char cwd[4096];
    if (!oom && getcwd(cwd, sizeof cwd)) oom = !cJSON_AddStringToObject(doc, "cwd", cwd);
    cJSON *pj = oom ? NULL : ids__prov_json(x->prov, err);
    if (pj && !cJSON_AddItemToObject(doc, "provenance", pj)) cJSON_Delete(pj), pj = NULL;
    char *txt = pj ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    if (!txt) return ids__err(err, IDS_ERR_NOMEM, "%s/part.json: out of memory", x->items_dir);
    const size_t n = strlen(txt);
    txt[n] = '\n';
    ids_status st = ids__write_text(x->items_dir, "part.json", txt, n + 1, err);
    free(txt);
    return st;
}

ids_status ids__exp_end(ids__exp *x, ids_status st, ids_err *err) {
    ids__store *s = x->store;
    if (!st && s && s->fd >= 0 && fsync(s->fd))
        st = ids__err(err, IDS_ERR_IO, "%s: %s", s->path, strerror(errno));
    if (!st && ids__exp_partial(x) && x->items_dir) {
        if (x->prov) ids_prov_finish(x->prov);
        st = write_part(x, err);
        if (!st && s) ids__log(2, "shard %d/%d: %ld items run, %ld resumed, in %s", x->shard, x->n_shards, s->kept, s->found, s->path);
    } else if (!st && s && s->path && !ids__exp_partial(x)) {
        unlink(s->path); /* the result is written: the items are in it */
        char *part = ids__path_join(x->items_dir, "part.json"); /* a shard's, if the folder held one */
        if (part) unlink(part);
        free(part);
    }
    store_free(s);
    x->store = NULL;
    return st;
}
