/* safetensors: 8-byte little-endian header length, JSON header (name -> dtype, shape,
 * data_offsets; "__metadata__" -> string map), then the tensor bytes, contiguous. */
#include "idscope/formats.h"
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/mman.h>

typedef struct {
    char *name;
    char dtype[8];
    int ndim;
    int64_t shape[8];
    const void *data;
    size_t nbytes;
} st_item;

struct ids_st_writer {
    st_item *items;
    int n, cap;
    cJSON *meta;
};

static size_t dtype_bytes(const char *d) {
    if (!strcmp(d, "F32") || !strcmp(d, "I32")) return 4;
    if (!strcmp(d, "I64") || !strcmp(d, "F64")) return 8;
    if (!strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "I16")) return 2;
    if (!strcmp(d, "U8") || !strcmp(d, "I8") || !strcmp(d, "BOOL")) return 1;
    return 0;
}

ids_st_writer *ids_st_writer_new(void) {
    ids_st_writer *w = ids__calloc(1, sizeof *w);
    if (w && !(w->meta = cJSON_CreateObject())) {
        free(w);
        return NULL;
    }
    return w;
}

void ids_st_writer_free(ids_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->items[i].name);
    free(w->items);
    cJSON_Delete(w->meta);
    free(w);
}

ids_status ids_st_writer_add(ids_st_writer *w, const char *name, const char *dtype, int ndim,
                             const int64_t *shape, const void *data, ids_err *err) {
    size_t es = dtype_bytes(dtype);
    if (!es || ndim < 0 || ndim > 8 || !name || !*name || !strcmp(name, "__metadata__"))
        return ids__err(err, IDS_ERR_ARG, "safetensors: bad tensor '%s' (dtype %s, %d dims)", name ? name : "",
                        dtype, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->items[i].name, name))
            return ids__err(err, IDS_ERR_ARG, "safetensors: tensor '%s' added twice", name);
    uint64_t nb = es;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || !ids__mul_ok(nb, (uint64_t)shape[d], &nb))
            return ids__err(err, IDS_ERR_ARG, "safetensors: tensor '%s': bad shape", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 8;
        st_item *p = ids__realloc(w->items, (size_t)cap * sizeof *p);
        if (!p) return ids__err(err, IDS_ERR_NOMEM, "safetensors: out of memory");
        w->items = p;
        w->cap = cap;
    }
    st_item *it = &w->items[w->n];
    memset(it, 0, sizeof *it);
    it->name = ids__strdup(name);
    if (!it->name) return ids__err(err, IDS_ERR_NOMEM, "safetensors: out of memory");
    snprintf(it->dtype, sizeof it->dtype, "%s", dtype);
    it->ndim = ndim;
    for (int d = 0; d < ndim; d++) it->shape[d] = shape[d];
    it->data = data;
    it->nbytes = (size_t)nb;
    w->n++;
    return IDS_OK;
}

ids_status ids_st_writer_meta(ids_st_writer *w, const char *key, const char *value, ids_err *err) {
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    if (!cJSON_AddStringToObject(w->meta, key, value))
        return ids__err(err, IDS_ERR_NOMEM, "safetensors: out of memory");
    return IDS_OK;
}

static bool add_number(cJSON *arr, double x) {
    cJSON *n = cJSON_CreateNumber(x);
    if (n && cJSON_AddItemToArray(arr, n)) return true;
    cJSON_Delete(n);
    return false;
}

/* One tensor's entry: dtype, shape, data_offsets [off, off + nbytes). */
static bool add_entry(cJSON *root, const st_item *it, size_t off) {
    cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddItemToObject(root, it->name, t)) {
        cJSON_Delete(t);
        return false;
    }
    if (!cJSON_AddStringToObject(t, "dtype", it->dtype)) return false;
    cJSON *sh = cJSON_AddArrayToObject(t, "shape");
    for (int d = 0; sh && d < it->ndim; d++)
        if (!add_number(sh, (double)it->shape[d])) return false;
    cJSON *offs = sh ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
    return offs && add_number(offs, (double)off) && add_number(offs, (double)(off + it->nbytes));
}

/* The header's JSON text: "__metadata__" first, then each tensor's entry (malloc'd by cJSON; NULL
 * when any allocation fails). */
static char *header_json(const ids_st_writer *w) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && cJSON_GetArraySize(w->meta) > 0) {
        cJSON *meta = cJSON_Duplicate(w->meta, 1);
        ok = meta && cJSON_AddItemToObject(root, "__metadata__", meta);
        if (!ok) cJSON_Delete(meta);
    }
    size_t off = 0;
    for (int i = 0; ok && i < w->n; i++) {
        ok = add_entry(root, &w->items[i], off);
        off += w->items[i].nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

ids_status ids_st_writer_write(const ids_st_writer *w, const char *path, ids_err *err) {
    char *json = header_json(w);
    if (!json) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the safetensors header", path);
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    char *hdr = ids__malloc(8 + padded);
    if (!hdr) {
        free(json);
        return ids__err(err, IDS_ERR_NOMEM, "safetensors: out of memory");
    }
    uint64_t hl = padded;
    memcpy(hdr, &hl, 8);
    memcpy(hdr + 8, json, jl);
    memset(hdr + 8 + jl, ' ', padded - jl);
    free(json);
    size_t n_parts = 1 + (size_t)w->n;
    const void **parts = ids__malloc(n_parts * sizeof *parts);
    size_t *sizes = ids__malloc(n_parts * sizeof *sizes);
    ids_status st;
    if (!parts || !sizes) {
        st = ids__err(err, IDS_ERR_NOMEM, "safetensors: out of memory");
    } else {
        parts[0] = hdr;
        sizes[0] = 8 + padded;
        for (int i = 0; i < w->n; i++) {
            parts[1 + i] = w->items[i].data;
            sizes[1 + i] = w->items[i].nbytes;
        }
        st = ids__write_atomic(path, parts, sizes, n_parts, err);
    }
    free(parts);
    free(sizes);
    free(hdr);
    return st;
}

/* ---- reader ---- */
struct ids_st_file {
    unsigned char *buf; /* the file's bytes, placed so that the data section starts 64-byte aligned */
    void *mem;          /* the allocation holding them */
    void *map;          /* or the file's mapping */
    size_t size;
    ids_st_tensor *t;
    int n;
    cJSON *meta;
};

void ids_st_close(ids_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free((char *)f->t[i].name);
    free(f->t);
    cJSON_Delete(f->meta);
    free(f->mem);
    if (f->map) munmap(f->map, f->size);
    free(f);
}

static int cmp_begin(const void *a, const void *b) {
    const ids_st_tensor *x = *(const ids_st_tensor *const *)a, *y = *(const ids_st_tensor *const *)b;
    const unsigned char *p = x->data, *q = y->data;
    return p < q ? -1 : p > q ? 1 : 0;
}

/* No two tensors may share bytes (empty tensors take none). */
static ids_status check_overlaps(const ids_st_file *f, const char *path, size_t data0, ids_err *err) {
    if (f->n < 2) return IDS_OK;
    const ids_st_tensor **by = ids__malloc(sizeof *by * (size_t)f->n);
    if (!by) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    int m = 0;
    for (int i = 0; i < f->n; i++)
        if (f->t[i].nbytes) by[m++] = &f->t[i];
    qsort(by, (size_t)m, sizeof *by, cmp_begin);
    ids_status st = IDS_OK;
    for (int i = 1; i < m && !st; i++) {
        const unsigned char *end = (const unsigned char *)by[i - 1]->data + by[i - 1]->nbytes;
        if ((const unsigned char *)by[i]->data < end) {
            const size_t b0 = (size_t)((const unsigned char *)by[i - 1]->data - f->buf) - data0,
                         b1 = (size_t)((const unsigned char *)by[i]->data - f->buf) - data0;
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap", path,
                          by[i - 1]->name, b0, b0 + by[i - 1]->nbytes, by[i]->name, b1, b1 + by[i]->nbytes);
        }
    }
    free(by);
    return st;
}

/* The file's bytes in f->buf (f->size of them). The data section starts after 8 + header-length
 * bytes, which writers pad to a multiple of 8 but need not. A multiple of 8 (what writers do) is
 * mapped: every typed read is then aligned as its offset allows, and a large checkpoint is not
 * copied into memory. Otherwise the bytes are read and placed so that the data section is 64-byte
 * aligned in memory whatever that length. */
static ids_status file_bytes(ids_st_file *f, FILE *fp, const char *path, ids_err *err) {
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char len8[8] = {0};
    uint64_t hl0 = 0;
    if (sz >= 8 && fread(len8, 1, 8, fp) == 8) memcpy(&hl0, len8, 8);
    fseek(fp, 0, SEEK_SET);
    f->size = sz > 0 ? (size_t)sz : 0;
    if (sz > 0 && (8 + hl0) % 8 == 0) {
        void *m = mmap(NULL, (size_t)sz, PROT_READ, MAP_PRIVATE, fileno(fp), 0);
        if (m != MAP_FAILED) {
            f->map = f->buf = m;
            return IDS_OK;
        }
    }
    f->mem = sz > 0 && (uint64_t)sz < SIZE_MAX - 128 ? ids__malloc((size_t)sz + 64) : NULL;
    if (sz > 0 && !f->mem) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for %ld bytes", path, sz);
    if (f->mem) {
        const uintptr_t d0 = (uintptr_t)f->mem + (uintptr_t)((8 + hl0) % 64);
        f->buf = (unsigned char *)f->mem + (64 - d0 % 64) % 64;
    }
    if (!f->buf || fread(f->buf, 1, f->size, fp) != f->size)
        return ids__err(err, sz <= 0 ? IDS_ERR_FORMAT : IDS_ERR_IO, "%s: cannot read %ld bytes", path, sz);
    return IDS_OK;
}

ids_status ids_st_open(ids_st_file **out, const char *path, ids_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ids__err(err, IDS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ids_st_file *f = ids__calloc(1, sizeof *f);
    ids_status st = IDS_OK;
    cJSON *root = NULL;
    ids_strmap names = {0};
    if (!f) {
        fclose(fp);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    if ((st = file_bytes(f, fp, path, err))) goto done;
    uint64_t hl;
    if (f->size < 8 || (memcpy(&hl, f->buf, 8), hl > f->size - 8)) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset 0: header length exceeds the file", path);
        goto done;
    }
    root = cJSON_ParseWithLength((const char *)f->buf + 8, (size_t)hl);
    if (!root || !cJSON_IsObject(root)) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: offset 8: header is not a JSON object", path);
        goto done;
    }
    const size_t data0 = 8 + (size_t)hl;
    int cnt = cJSON_GetArraySize(root);
    f->t = ids__calloc((size_t)(cnt ? cnt : 1), sizeof *f->t);
    if (!f->t || !ids__strmap_init(&names, (size_t)cnt)) {
        st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!strcmp(it->string, "__metadata__")) {
            if (f->meta) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s: header has \"__metadata__\" twice", path);
                goto done;
            }
            if (!cJSON_IsObject(it)) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s: header: \"__metadata__\" is not an object", path);
                goto done;
            }
            if (!(f->meta = cJSON_Duplicate(it, 1))) {
                st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            continue;
        }
        bool dup;
        if (!ids__strmap_put(&names, it->string, strlen(it->string), f->n, NULL, &dup)) {
            st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        if (dup) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: header has tensor '%s' twice", path, it->string);
            goto done;
        }
        ids_st_tensor *t = &f->t[f->n];
        cJSON *dt = cJSON_GetObjectItem(it, "dtype"), *sh = cJSON_GetObjectItem(it, "shape"),
              *of = cJSON_GetObjectItem(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
            cJSON_GetArraySize(sh) > 8 || !dtype_bytes(dt->valuestring)) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': bad header entry", path, it->string);
            goto done;
        }
        if (!(t->name = ids__strdup(it->string))) {
            st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        f->n++;
        snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
        t->ndim = cJSON_GetArraySize(sh);
        /* every size a whole number within the file, checked before it is converted */
        const long long lim = (long long)f->size;
        uint64_t nb = dtype_bytes(t->dtype);
        for (int d = 0; d < t->ndim; d++) {
            long long v;
            const cJSON *x = cJSON_GetArrayItem(sh, d);
            if (!cJSON_IsNumber(x) || ids__json_int(x, NULL, 0, 1ll << 53, 0, &v, err)) {
                if (!cJSON_IsNumber(x)) ids__err(err, IDS_ERR_FORMAT, "not a number");
                st = ids__err_prefix(err, IDS_ERR_FORMAT, "%s: tensor '%s': shape[%d]", path, t->name, d);
                goto done;
            }
            t->shape[d] = v;
            if (!ids__mul_ok(nb, (uint64_t)v, &nb) || nb > (uint64_t)lim) nb = UINT64_MAX;
        }
        long long b, e;
        const cJSON *ob = cJSON_GetArrayItem(of, 0), *oe = cJSON_GetArrayItem(of, 1);
        if (!cJSON_IsNumber(ob) || !cJSON_IsNumber(oe) || ids__json_int(ob, NULL, 0, lim, 0, &b, err) ||
            ids__json_int(oe, NULL, 0, lim, 0, &e, err)) {
            if (!cJSON_IsNumber(ob) || !cJSON_IsNumber(oe)) ids__err(err, IDS_ERR_FORMAT, "not a number");
            st = ids__err_prefix(err, IDS_ERR_FORMAT, "%s: tensor '%s': data_offsets", path, t->name);
            goto done;
        }
        if (e < b || (uint64_t)(e - b) != nb || data0 + (uint64_t)e > f->size) {
            char need[32] = "more than the file";
            if (nb != UINT64_MAX) snprintf(need, sizeof need, "%llu bytes", (unsigned long long)nb);
            st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld) do not fit its shape "
                          "(%s) or the file", path, t->name, b, e, need);
            goto done;
        }
        t->data = f->buf + data0 + (size_t)b;
        t->nbytes = (size_t)nb;
    }
    st = check_overlaps(f, path, data0, err);
done:
    ids__strmap_free(&names);
    cJSON_Delete(root);
    fclose(fp);
    if (st) {
        ids_st_close(f);
        return st;
    }
    *out = f;
    return IDS_OK;
}

int ids_st_count(const ids_st_file *f) { return f->n; }
const ids_st_tensor *ids_st_at(const ids_st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
const ids_st_tensor *ids_st_find(const ids_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}
const char *ids_st_meta(const ids_st_file *f, const char *key) {
    cJSON *v = f->meta ? cJSON_GetObjectItem(f->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
