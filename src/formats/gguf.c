/* GGUF v2/v3 reader (mmap'd, every count/length/offset checked against the bytes that remain)
 * and writer (v3, aligned, atomic). One parser core serves the file and memory front-ends. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/formats.h"
#include "base/internal.h"
#include "formats/gguf_view.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_DEPTH 8 /* nesting of arrays */

struct ids_gguf {
    char *path;
    const unsigned char *base;
    size_t size;
    void *map; /* non-NULL when we own a mapping */
    size_t map_size;
    uint32_t version, alignment;
    uint64_t data_offset;
    int64_t n_kv;
    const char **keys;
    ids_gguf_value *vals;
    int64_t n_tensors;
    ids_tensor *tensors;
    ids_strmap kv_map, tensor_map;
    ids_arena arena;
    /* a view (ids__gguf_from_writer): the header bytes are owned, the tensor data is the writer's */
    ids_gguf_writer *view_of;
    unsigned char *own_head;
    uint64_t view_bytes; /* the size the file would have */
    struct keep { void *obj; void (*release)(void *); } *keep;
    int n_keep;
};

static const void *writer_tensor_data(const ids_gguf_writer *w, int64_t i);

const char *ids_gguf_type_name(int t) {
    static const char *names[IDS_GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    return (t >= 0 && t < IDS_GGUF_TYPE_COUNT) ? names[t] : "invalid";
}

static size_t scalar_size(int t) {
    switch (t) {
    case IDS_GGUF_UINT8: case IDS_GGUF_INT8: case IDS_GGUF_BOOL: return 1;
    case IDS_GGUF_UINT16: case IDS_GGUF_INT16: return 2;
    case IDS_GGUF_UINT32: case IDS_GGUF_INT32: case IDS_GGUF_FLOAT32: return 4;
    case IDS_GGUF_UINT64: case IDS_GGUF_INT64: case IDS_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Reader                                                                                     */

typedef struct {
    const unsigned char *p;
    size_t size, pos;
    const char *name;
    ids_err *err;
    ids_arena *arena;
} cursor;

static ids_status fail(cursor *c, size_t at, const char *fmt, ...) IDS_PRINTF(3, 4);
static ids_status fail(cursor *c, size_t at, const char *fmt, ...) {
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ids__err(c->err, IDS_ERR_FORMAT, "%s: offset %zu: %s", c->name, at, what);
}

static ids_status need(cursor *c, size_t n, const char *what) {
    if (n > c->size - c->pos)
        return fail(c, c->pos, "truncated while reading %s: need %zu bytes, %zu remain", what, n,
                    c->size - c->pos);
    return IDS_OK;
}

static ids_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    ids_status st = need(c, 4, what);
    if (st) return st;
    *v = ids__rd32(c->p + c->pos);
    c->pos += 4;
    return IDS_OK;
}

static ids_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    ids_status st = need(c, 8, what);
    if (st) return st;
    *v = ids__rd64(c->p + c->pos);
    c->pos += 8;
    return IDS_OK;
}

static ids_status rd_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    size_t at = c->pos;
    uint64_t n;
    ids_status st = rd_u64(c, &n, what);
    if (st) return st;
    if (n > c->size - c->pos)
        return fail(c, at, "%s: string length %llu exceeds the %zu bytes that remain", what,
                    (unsigned long long)n, c->size - c->pos);
    char *d = ids__arena_strndup(c->arena, (const char *)c->p + c->pos, (size_t)n);
    if (!d) return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory reading %s", c->name, what);
    c->pos += (size_t)n;
    *s = d;
    if (len) *len = n;
    return IDS_OK;
}

/* Smallest number of bytes one element of this type can occupy in the file. */
static size_t min_elem_bytes(int t) {
    if (t == IDS_GGUF_STRING) return 8;
    if (t == IDS_GGUF_ARRAY) return 12;
    return scalar_size(t);
}

static ids_status rd_value(cursor *c, int type, ids_gguf_value *v, const char *what, int depth);

static ids_status rd_array(cursor *c, ids_gguf_value *v, const char *what, int depth) {
    size_t at = c->pos;
    uint32_t et;
    uint64_t n;
    ids_status st = rd_u32(c, &et, what);
    if (st) return st;
    if ((int32_t)et < 0 || et >= IDS_GGUF_TYPE_COUNT)
        return fail(c, at, "%s: invalid array element type %d (expected 0..12)", what, (int32_t)et);
    if (et == IDS_GGUF_ARRAY && depth + 1 >= GGUF_MAX_DEPTH)
        return fail(c, at, "%s: arrays nested deeper than %d", what, GGUF_MAX_DEPTH);
    at = c->pos;
    if ((st = rd_u64(c, &n, what))) return st;
    uint64_t min_bytes;
    if (!ids__mul_ok(n, min_elem_bytes((int)et), &min_bytes) || min_bytes > c->size - c->pos)
        return fail(c, at, "%s: array of %llu %s elements exceeds the %zu bytes that remain", what,
                    (unsigned long long)n, ids_gguf_type_name((int)et), c->size - c->pos);
    v->v.arr.elem = (ids_gguf_type)et;
    v->v.arr.n = n;
    v->v.arr.data = NULL;
    if (n == 0) return IDS_OK;
    if (et == IDS_GGUF_STRING) {
        struct { const char *ptr; uint64_t len; } *strs =
            ids__arena_alloc(c->arena, (size_t)n * sizeof *strs, 8);
        if (!strs) return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory", c->name);
        for (uint64_t i = 0; i < n; i++)
            if ((st = rd_str(c, &strs[i].ptr, &strs[i].len, what))) return st;
        v->v.arr.data = strs;
    } else if (et == IDS_GGUF_ARRAY) {
        ids_gguf_value *sub = ids__arena_alloc(c->arena, (size_t)n * sizeof *sub, 8);
        if (!sub) return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory", c->name);
        for (uint64_t i = 0; i < n; i++) {
            sub[i].type = IDS_GGUF_ARRAY;
            if ((st = rd_array(c, &sub[i], what, depth + 1))) return st;
        }
        v->v.arr.data = sub;
    } else {
        size_t bytes = (size_t)min_bytes;
        void *d = ids__arena_alloc(c->arena, bytes, 8);
        if (!d) return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory", c->name);
        memcpy(d, c->p + c->pos, bytes);
        c->pos += bytes;
        v->v.arr.data = d;
    }
    return IDS_OK;
}

static ids_status rd_value(cursor *c, int type, ids_gguf_value *v, const char *what, int depth) {
    v->type = (ids_gguf_type)type;
    if (type == IDS_GGUF_STRING) return rd_str(c, &v->v.str.ptr, &v->v.str.len, what);
    if (type == IDS_GGUF_ARRAY) return rd_array(c, v, what, depth);
    size_t sz = scalar_size(type);
    ids_status st = need(c, sz, what);
    if (st) return st;
    const unsigned char *p = c->p + c->pos;
    switch (type) {
    case IDS_GGUF_UINT8: v->v.u = p[0]; break;
    case IDS_GGUF_INT8: v->v.i = (int8_t)p[0]; break;
    case IDS_GGUF_BOOL: v->v.u = p[0] != 0; break;
    case IDS_GGUF_UINT16: v->v.u = ids__rd16(p); break;
    case IDS_GGUF_INT16: v->v.i = (int16_t)ids__rd16(p); break;
    case IDS_GGUF_UINT32: v->v.u = ids__rd32(p); break;
    case IDS_GGUF_INT32: v->v.i = (int32_t)ids__rd32(p); break;
    case IDS_GGUF_UINT64: v->v.u = ids__rd64(p); break;
    case IDS_GGUF_INT64: v->v.i = (int64_t)ids__rd64(p); break;
    case IDS_GGUF_FLOAT32: { float f; memcpy(&f, p, 4); v->v.f = f; break; }
    case IDS_GGUF_FLOAT64: { double f; memcpy(&f, p, 8); v->v.f = f; break; }
    default: IDS_ASSERT(0);
    }
    c->pos += sz;
    return IDS_OK;
}

/* Magic, version and the two counts; allocates the key, value and tensor tables. */
static ids_status parse_header(ids_gguf *g, cursor *c, uint64_t *n_kv, uint64_t *n_tensors) {
    ids_status st;
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0) {
        if (!g->size) return fail(c, 0, "not a GGUF file: the file is empty (a GGUF file starts with 'GGUF')");
        char chars[5] = {0}, hex[16] = {0};
        bool text = true;
        for (size_t i = 0; i < 4 && i < g->size; i++) {
            const unsigned char b = g->base[i];
            chars[i] = b >= 0x20 && b < 0x7f ? (char)b : '.';
            text &= (b >= 0x20 && b < 0x7f) || b == '\n' || b == '\r' || b == '\t';
            snprintf(hex + (i ? 3 * i - 1 : 0), 4, "%s%02x", i ? " " : "", b);
        }
        return fail(c, 0, "not a GGUF file: it starts with '%s' (bytes %s%s); a GGUF file starts with 'GGUF' (bytes 47 47 55 46)",
                    chars, hex, text ? ": text" : "");
    }
    c->pos = 4;
    if ((st = rd_u32(c, &g->version, "version"))) return st;
    if (g->version == 1) return fail(c, 4, "GGUF version 1 is not supported (expected 2 or 3)");
    if ((g->version & 0xFFFF) == 0)
        return fail(c, 4, "version field 0x%08x looks byte-swapped: big-endian GGUF files are "
                          "not supported", g->version);
    if (g->version > 3) return fail(c, 4, "unsupported GGUF version %u (expected 2 or 3)", g->version);
    if ((st = rd_u64(c, n_tensors, "tensor count"))) return st;
    if ((st = rd_u64(c, n_kv, "metadata count"))) return st;
    /* each KV needs >= 8+1+4+1 bytes and each tensor >= 8+4+8+4+8 bytes */
    if (*n_kv > (c->size - c->pos) / 13)
        return fail(c, 16, "metadata count %llu cannot fit in the %zu bytes that remain",
                    (unsigned long long)*n_kv, c->size - c->pos);
    if (*n_tensors > (c->size - c->pos) / 32)
        return fail(c, 8, "tensor count %llu cannot fit in the %zu bytes that remain",
                    (unsigned long long)*n_tensors, c->size - c->pos);
    g->n_kv = (int64_t)*n_kv;
    g->n_tensors = (int64_t)*n_tensors;
    g->keys = ids__arena_alloc(&g->arena, (size_t)(*n_kv ? *n_kv : 1) * sizeof(char *), 8);
    g->vals = ids__arena_alloc(&g->arena, (size_t)(*n_kv ? *n_kv : 1) * sizeof(ids_gguf_value), 8);
    g->tensors = ids__arena_alloc(&g->arena, (size_t)(*n_tensors ? *n_tensors : 1) * sizeof(ids_tensor), 8);
    if (!g->keys || !g->vals || !g->tensors || !ids__strmap_init(&g->kv_map, (size_t)*n_kv) ||
        !ids__strmap_init(&g->tensor_map, (size_t)*n_tensors))
        return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory", g->path);
    return IDS_OK;
}

/* The n_kv metadata entries (unique, non-empty keys). */
static ids_status parse_kvs(ids_gguf *g, cursor *c, uint64_t n_kv) {
    ids_status st;
    char what[192];
    for (uint64_t i = 0; i < n_kv; i++) {
        size_t at = c->pos;
        snprintf(what, sizeof what, "key of metadata entry %llu", (unsigned long long)i);
        uint64_t klen;
        if ((st = rd_str(c, &g->keys[i], &klen, what))) return st;
        if (klen == 0) return fail(c, at, "metadata entry %llu has an empty key", (unsigned long long)i);
        if (memchr(g->keys[i], 0, (size_t)klen)) /* it could not be looked up by name */
            return fail(c, at, "the key of metadata entry %llu ('%s') holds a NUL byte", (unsigned long long)i,
                        g->keys[i]);
        bool dup;
        if (!ids__strmap_put(&g->kv_map, g->keys[i], (size_t)klen, (int64_t)i, NULL, &dup))
            return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory", g->path);
        if (dup) return fail(c, at, "duplicate metadata key '%s'", g->keys[i]);
        snprintf(what, sizeof what, "value of '%.120s'", g->keys[i]);
        at = c->pos;
        uint32_t t;
        if ((st = rd_u32(c, &t, what))) return st;
        if (t >= IDS_GGUF_TYPE_COUNT)
            return fail(c, at, "'%s': invalid value type %d (expected 0..12)", g->keys[i], (int32_t)t);
        if ((st = rd_value(c, (int)t, &g->vals[i], what, 0))) return st;
    }
    return IDS_OK;
}

/* general.alignment when present (an unsigned power of two), else the default. */
static ids_status parse_alignment(ids_gguf *g, cursor *c) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = ids_gguf_find_kv(g, "general.alignment");
    if (ai < 0) return IDS_OK;
    const ids_gguf_value *v = &g->vals[ai];
    bool is_uint = v->type == IDS_GGUF_UINT8 || v->type == IDS_GGUF_UINT16 ||
                   v->type == IDS_GGUF_UINT32 || v->type == IDS_GGUF_UINT64;
    if (!is_uint || v->v.u == 0 || v->v.u > (1u << 30) || (v->v.u & (v->v.u - 1)))
        return fail(c, 0, "general.alignment must be an unsigned power of two, got %s %llu",
                    ids_gguf_type_name(v->type), (unsigned long long)v->v.u);
    g->alignment = (uint32_t)v->v.u;
    return IDS_OK;
}

/* One tensor info: unique name, 1..4 dimensions, a known type whose blocks tile the rows, byte
 * size, aligned offset. */
static ids_status parse_tensor_info(ids_gguf *g, cursor *c, uint64_t i) {
    ids_status st;
    char what[192];
    ids_tensor *t = &g->tensors[i];
    size_t at = c->pos;
    snprintf(what, sizeof what, "name of tensor %llu", (unsigned long long)i);
    uint64_t nlen;
    if ((st = rd_str(c, &t->name, &nlen, what))) return st;
    if (nlen == 0) return fail(c, at, "tensor %llu has an empty name", (unsigned long long)i);
    if (memchr(t->name, 0, (size_t)nlen))
        return fail(c, at, "the name of tensor %llu ('%s') holds a NUL byte", (unsigned long long)i, t->name);
    bool dup;
    if (!ids__strmap_put(&g->tensor_map, t->name, (size_t)nlen, (int64_t)i, NULL, &dup))
        return ids__err(c->err, IDS_ERR_NOMEM, "%s: out of memory", g->path);
    if (dup) return fail(c, at, "duplicate tensor name '%s'", t->name);
    snprintf(what, sizeof what, "info of tensor '%.120s'", t->name);
    at = c->pos;
    uint32_t nd;
    if ((st = rd_u32(c, &nd, what))) return st;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return fail(c, at, "tensor '%s': expected 1..%d dimensions, got %u", t->name,
                    GGUF_MAX_DIMS, nd);
    t->n_dims = (int)nd;
    uint64_t nel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= (int)nd) continue;
        at = c->pos;
        uint64_t ne;
        if ((st = rd_u64(c, &ne, what))) return st;
        if (ne > INT64_MAX)
            return fail(c, at, "tensor '%s': dimension %d is negative (%lld)", t->name, d,
                        (long long)(int64_t)ne);
        if (ne == 0)
            return fail(c, at, "tensor '%s': dimension %d is 0 (expected at least 1)", t->name, d);
        if (!ids__mul_ok(nel, ne, &nel) || nel > INT64_MAX)
            return fail(c, at, "tensor '%s': element count overflows at dimension %d",
                        t->name, d);
        t->ne[d] = (int64_t)ne;
    }
    at = c->pos;
    uint32_t type;
    if ((st = rd_u32(c, &type, what))) return st;
    if (!ids_type_name((int)type))
        return fail(c, at, "tensor '%s': unknown tensor type id %d", t->name, (int32_t)type);
    t->type = (int)type;
    int64_t blck = ids_type_block_size(t->type);
    if (t->ne[0] % blck)
        return fail(c, at, "tensor '%s': row length %lld is not a multiple of the %s block "
                           "size %lld", t->name, (long long)t->ne[0], ids_type_name(t->type),
                    (long long)blck);
    uint64_t nb;
    if (!ids__mul_ok(nel / (uint64_t)blck, (uint64_t)ids_type_block_bytes(t->type), &nb))
        return fail(c, at, "tensor '%s': byte size overflows", t->name);
    t->nbytes = nb;
    at = c->pos;
    if ((st = rd_u64(c, &t->offset, what))) return st;
    if (t->offset % g->alignment)
        return fail(c, at, "tensor '%s': data offset %llu is not a multiple of the alignment %u",
                    t->name, (unsigned long long)t->offset, g->alignment);
    return IDS_OK;
}

/* The aligned start of the data section; every tensor's bytes must lie inside it. */
static ids_status place_tensor_data(ids_gguf *g, cursor *c) {
    uint64_t data_off = c->pos;
    if (g->n_tensors > 0) data_off = (data_off + g->alignment - 1) / g->alignment * g->alignment;
    if (data_off > g->size)
        return fail(c, c->pos, "truncated: tensor data would start at offset %llu but the file "
                               "has %zu bytes", (unsigned long long)data_off, g->size);
    g->data_offset = data_off;
    if (g->view_of) { /* the bytes live in the writer, in the same order */
        for (int64_t i = 0; i < g->n_tensors; i++) g->tensors[i].data = writer_tensor_data(g->view_of, i);
        return IDS_OK;
    }
    uint64_t avail = g->size - data_off;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        ids_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return fail(c, (size_t)(data_off + (t->offset > avail ? avail : t->offset)),
                        "tensor '%s': data [%llu, %llu) extends past the end of the file "
                        "(data section holds %llu bytes)", t->name,
                        (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                        (unsigned long long)avail);
        t->data = g->base + data_off + t->offset;
    }
    return IDS_OK;
}

static ids_status parse(ids_gguf *g, ids_err *err) {
    cursor c = {g->base, g->size, 0, g->path, err, &g->arena};
    uint64_t n_kv = 0, n_tensors = 0;
    ids_status st = parse_header(g, &c, &n_kv, &n_tensors);
    if (!st) st = parse_kvs(g, &c, n_kv);
    if (!st) st = parse_alignment(g, &c);
    for (uint64_t i = 0; i < n_tensors && !st; i++) st = parse_tensor_info(g, &c, i);
    if (!st) st = place_tensor_data(g, &c);
    return st;
}

static ids_status open_common(ids_gguf *g, ids_gguf **out, ids_err *err) {
    ids_status st = parse(g, err);
    if (st) {
        ids_gguf_close(g);
        return st;
    }
    *out = g;
    return IDS_OK;
}

/* The parsed tables take about as many bytes as the file's header: arena blocks of the file's size
 * (4 KiB .. 1 MiB), so that a small file does not reserve a large block. */
static size_t arena_block(uint64_t file_size) {
    return file_size < 4096 ? 4096 : file_size > (1u << 20) ? (1u << 20) : (size_t)file_size;
}

static ids_gguf *new_handle(const char *name, uint64_t size) {
    ids_gguf *g = ids__calloc(1, sizeof *g);
    if (!g) return NULL;
    ids__arena_init(&g->arena, arena_block(size));
    g->path = ids__strdup(name ? name : "<memory>");
    if (!g->path) {
        free(g);
        return NULL;
    }
    return g;
}

ids_status ids_gguf_open_memory(ids_gguf **out, const void *data, size_t size, const char *name,
                                ids_err *err) {
    if (!out || (!data && size)) return ids__err(err, IDS_ERR_ARG, "ids_gguf_open_memory: NULL argument");
    *out = NULL;
    ids_gguf *g = new_handle(name, size);
    if (!g) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", name ? name : "<memory>");
    static const unsigned char empty[1];
    g->base = data ? data : empty;
    g->size = size;
    return open_common(g, out, err);
}

ids_status ids_gguf_open(ids_gguf **out, const char *path, ids_err *err) {
    if (!out || !path) return ids__err(err, IDS_ERR_ARG, "ids_gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ids__err(err, IDS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ids__err(err, IDS_ERR_IO, "%s: not a regular file", path);
    }
    ids_gguf *g = new_handle(path, (uint64_t)sb.st_size);
    if (!g) {
        close(fd);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t size = (size_t)sb.st_size;
    static const unsigned char empty[1];
    g->base = empty;
    if (size > 0) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            ids_gguf_close(g);
            return ids__err(err, IDS_ERR_IO, "%s: cannot map %zu bytes: %s", path, size,
                            strerror(errno));
        }
        g->map = m;
        g->map_size = size;
        g->base = m;
    }
    close(fd);
    g->size = size;
    return open_common(g, out, err);
}

void ids_gguf_drop_pages(const ids_gguf *g, const void *p, size_t n) {
    const unsigned char *a = p, *lo = g->map, *hi = lo + g->map_size;
    if (!g->map || a < lo || n > (size_t)(hi - a)) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t s = ((uintptr_t)a + page - 1) / page * page, e = ((uintptr_t)a + n) / page * page;
    if (e > s) madvise((void *)s, e - s, MADV_DONTNEED); /* read-only file pages: read again if touched */
}

void ids_gguf_close(ids_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->map_size);
    ids_gguf_writer_free(g->view_of);
    free(g->own_head);
    for (int i = g->n_keep - 1; i >= 0; i--) g->keep[i].release(g->keep[i].obj);
    free(g->keep);
    ids__strmap_free(&g->kv_map);
    ids__strmap_free(&g->tensor_map);
    ids__arena_free(&g->arena);
    free(g->path);
    free(g);
}

const char *ids_gguf_path(const ids_gguf *g) { return g->path; }
uint32_t ids_gguf_version(const ids_gguf *g) { return g->version; }
uint32_t ids_gguf_alignment(const ids_gguf *g) { return g->alignment; }
uint64_t ids_gguf_data_offset(const ids_gguf *g) { return g->data_offset; }
uint64_t ids_gguf_file_size(const ids_gguf *g) { return g->view_of ? g->view_bytes : g->size; }
int64_t ids_gguf_n_kv(const ids_gguf *g) { return g->n_kv; }

const char *ids_gguf_kv_key(const ids_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_kv) ? g->keys[i] : NULL;
}

const ids_gguf_value *ids_gguf_kv_value(const ids_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_kv) ? &g->vals[i] : NULL;
}

int64_t ids_gguf_find_kv(const ids_gguf *g, const char *key) {
    int64_t v;
    return ids__strmap_get(&g->kv_map, key, strlen(key), &v) ? v : -1;
}

const ids_gguf_value *ids_gguf_get(const ids_gguf *g, const char *key) {
    int64_t i = ids_gguf_find_kv(g, key);
    return i >= 0 ? &g->vals[i] : NULL;
}

static bool is_signed_int(int t) {
    return t == IDS_GGUF_INT8 || t == IDS_GGUF_INT16 || t == IDS_GGUF_INT32 || t == IDS_GGUF_INT64;
}
static bool is_unsigned_int(int t) {
    return t == IDS_GGUF_UINT8 || t == IDS_GGUF_UINT16 || t == IDS_GGUF_UINT32 || t == IDS_GGUF_UINT64;
}

static const ids_gguf_value *get_checked(const ids_gguf *g, const char *key, ids_err *err,
                                         ids_status *st) {
    const ids_gguf_value *v = ids_gguf_get(g, key);
    *st = v ? IDS_OK : ids__err(err, IDS_ERR_NOT_FOUND, "%s: metadata key '%s' not found", g->path, key);
    return v;
}

ids_status ids_gguf_get_i64(const ids_gguf *g, const char *key, int64_t *out, ids_err *err) {
    ids_status st;
    const ids_gguf_value *v = get_checked(g, key, err, &st);
    if (!v) return st;
    if (is_signed_int(v->type)) *out = v->v.i;
    else if (is_unsigned_int(v->type)) {
        if (v->v.u > INT64_MAX)
            return ids__err(err, IDS_ERR_RANGE, "%s: '%s' = %llu does not fit in int64", g->path,
                            key, (unsigned long long)v->v.u);
        *out = (int64_t)v->v.u;
    } else
        return ids__err(err, IDS_ERR_TYPE, "%s: '%s': expected an integer, got %s", g->path, key,
                        ids_gguf_type_name(v->type));
    return IDS_OK;
}

ids_status ids_gguf_get_u32(const ids_gguf *g, const char *key, uint32_t *out, ids_err *err) {
    int64_t x;
    ids_status st = ids_gguf_get_i64(g, key, &x, err);
    if (st) return st;
    if (x < 0 || x > UINT32_MAX)
        return ids__err(err, IDS_ERR_RANGE, "%s: '%s' = %lld is outside 0..4294967295", g->path,
                        key, (long long)x);
    *out = (uint32_t)x;
    return IDS_OK;
}

ids_status ids_gguf_get_f32(const ids_gguf *g, const char *key, float *out, ids_err *err) {
    ids_status st;
    const ids_gguf_value *v = get_checked(g, key, err, &st);
    if (!v) return st;
    if (v->type != IDS_GGUF_FLOAT32 && v->type != IDS_GGUF_FLOAT64)
        return ids__err(err, IDS_ERR_TYPE, "%s: '%s': expected a float, got %s", g->path, key,
                        ids_gguf_type_name(v->type));
    *out = (float)v->v.f;
    return IDS_OK;
}

ids_status ids_gguf_get_bool(const ids_gguf *g, const char *key, bool *out, ids_err *err) {
    ids_status st;
    const ids_gguf_value *v = get_checked(g, key, err, &st);
    if (!v) return st;
    if (v->type != IDS_GGUF_BOOL)
        return ids__err(err, IDS_ERR_TYPE, "%s: '%s': expected bool, got %s", g->path, key,
                        ids_gguf_type_name(v->type));
    *out = v->v.u != 0;
    return IDS_OK;
}

ids_status ids_gguf_get_str(const ids_gguf *g, const char *key, const char **out, ids_err *err) {
    ids_status st;
    const ids_gguf_value *v = get_checked(g, key, err, &st);
    if (!v) return st;
    if (v->type != IDS_GGUF_STRING)
        return ids__err(err, IDS_ERR_TYPE, "%s: '%s': expected a string, got %s", g->path, key,
                        ids_gguf_type_name(v->type));
    *out = v->v.str.ptr;
    return IDS_OK;
}

ids_status ids_gguf_get_arr(const ids_gguf *g, const char *key, int elem_type,
                            const ids_gguf_value **out, ids_err *err) {
    ids_status st;
    const ids_gguf_value *v = get_checked(g, key, err, &st);
    if (!v) return st;
    if (v->type != IDS_GGUF_ARRAY)
        return ids__err(err, IDS_ERR_TYPE, "%s: '%s': expected an array, got %s", g->path, key,
                        ids_gguf_type_name(v->type));
    if (elem_type >= 0 && (int)v->v.arr.elem != elem_type)
        return ids__err(err, IDS_ERR_TYPE, "%s: '%s': expected an array of %s, got an array of %s",
                        g->path, key, ids_gguf_type_name(elem_type), ids_gguf_type_name(v->v.arr.elem));
    *out = v;
    return IDS_OK;
}

ids_status ids_gguf_arr_i64(const ids_gguf_value *a, uint64_t i, int64_t *out) {
    if (a->type != IDS_GGUF_ARRAY || i >= a->v.arr.n) return IDS_ERR_RANGE;
    const unsigned char *d = a->v.arr.data;
    switch (a->v.arr.elem) {
    case IDS_GGUF_UINT8: case IDS_GGUF_BOOL: *out = d[i]; break;
    case IDS_GGUF_INT8: *out = (int8_t)d[i]; break;
    case IDS_GGUF_UINT16: *out = ids__rd16(d + 2 * i); break;
    case IDS_GGUF_INT16: *out = (int16_t)ids__rd16(d + 2 * i); break;
    case IDS_GGUF_UINT32: *out = ids__rd32(d + 4 * i); break;
    case IDS_GGUF_INT32: *out = (int32_t)ids__rd32(d + 4 * i); break;
    case IDS_GGUF_INT64: *out = (int64_t)ids__rd64(d + 8 * i); break;
    case IDS_GGUF_UINT64: {
        uint64_t u = ids__rd64(d + 8 * i);
        if (u > INT64_MAX) return IDS_ERR_RANGE;
        *out = (int64_t)u;
        break;
    }
    default: return IDS_ERR_TYPE;
    }
    return IDS_OK;
}

ids_status ids_gguf_arr_f64(const ids_gguf_value *a, uint64_t i, double *out) {
    if (a->type != IDS_GGUF_ARRAY || i >= a->v.arr.n) return IDS_ERR_RANGE;
    const unsigned char *d = a->v.arr.data;
    if (a->v.arr.elem == IDS_GGUF_FLOAT32) {
        float f;
        memcpy(&f, d + 4 * i, 4);
        *out = f;
    } else if (a->v.arr.elem == IDS_GGUF_FLOAT64) {
        memcpy(out, d + 8 * i, 8);
    } else {
        int64_t x;
        ids_status st = ids_gguf_arr_i64(a, i, &x);
        if (st) return st;
        *out = (double)x;
    }
    return IDS_OK;
}

ids_status ids_gguf_arr_str(const ids_gguf_value *a, uint64_t i, const char **ptr, uint64_t *len) {
    if (a->type != IDS_GGUF_ARRAY || i >= a->v.arr.n) return IDS_ERR_RANGE;
    if (a->v.arr.elem != IDS_GGUF_STRING) return IDS_ERR_TYPE;
    const struct { const char *ptr; uint64_t len; } *s = a->v.arr.data;
    *ptr = s[i].ptr;
    if (len) *len = s[i].len;
    return IDS_OK;
}

const ids_gguf_value *ids_gguf_arr_arr(const ids_gguf_value *a, uint64_t i) {
    if (a->type != IDS_GGUF_ARRAY || i >= a->v.arr.n || a->v.arr.elem != IDS_GGUF_ARRAY) return NULL;
    return &((const ids_gguf_value *)a->v.arr.data)[i];
}

int64_t ids_gguf_n_tensors(const ids_gguf *g) { return g->n_tensors; }

const ids_tensor *ids_gguf_tensor_at(const ids_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const ids_tensor *ids_gguf_find_tensor(const ids_gguf *g, const char *name) {
    int64_t i;
    return ids__strmap_get(&g->tensor_map, name, strlen(name), &i) ? &g->tensors[i] : NULL;
}

int64_t ids_tensor_nelements(const ids_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

ids_status ids_tensor_rows_f32(const ids_tensor *t, int64_t r0, int64_t nr, float *dst,
                               ids_err *err) {
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    if (r0 < 0 || nr < 0 || r0 > rows || nr > rows - r0)
        return ids__err(err, IDS_ERR_ARG, "tensor '%s': rows [%lld, %lld) outside 0..%lld", t->name,
                        (long long)r0, (long long)(r0 + nr), (long long)rows);
    int64_t rb = ids_type_row_bytes(t->type, t->ne[0]);
    const unsigned char *src = (const unsigned char *)t->data + r0 * rb;
    ids_status st = ids_dequantize(t->type, src, dst, t->ne[0] * nr, err);
    if (st && err) {
        char tmp[IDS_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "tensor '%.60s': %.400s", t->name, tmp);
    }
    return st;
}

ids_status ids_tensor_to_f32(const ids_tensor *t, float *dst, ids_err *err) {
    return ids_tensor_rows_f32(t, 0, t->ne[1] * t->ne[2] * t->ne[3], dst, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Writer                                                                                     */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const void *d, size_t n) {
    if (b->oom || n == 0) return; /* nothing to copy (d may be NULL: a GGUF without metadata) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = ids__realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void buf_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(buf *b, const char *s, size_t n) {
    buf_u64(b, n);
    buf_put(b, s, n);
}

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    void *data;
    const void *ref; /* the bytes when referenced, not copied (data is then NULL) */
    uint64_t nbytes;
} wtensor;

struct ids_gguf_writer {
    buf kv;
    uint64_t n_kv;
    uint32_t alignment;
    ids_strmap keys;   /* key strings owned by key_store */
    char **key_store;
    size_t n_keys_store, cap_keys_store;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    ids_strmap names;
};

ids_gguf_writer *ids_gguf_writer_new(void) {
    ids_gguf_writer *w = ids__calloc(1, sizeof *w);
    if (!w) return NULL;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!ids__strmap_init(&w->keys, 64) || !ids__strmap_init(&w->names, 64)) {
        ids__strmap_free(&w->keys);
        free(w);
        return NULL;
    }
    return w;
}

void ids_gguf_writer_free(ids_gguf_writer *w) {
    if (!w) return;
    free(w->kv.p);
    for (size_t i = 0; i < w->n_keys_store; i++) free(w->key_store[i]);
    free(w->key_store);
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->tensors);
    ids__strmap_free(&w->keys);
    ids__strmap_free(&w->names);
    free(w);
}

/* Reserve a new key; writes the key string and the value type. */
static ids_status begin_kv(ids_gguf_writer *w, const char *key, int type, ids_err *err) {
    if (!key || !*key) return ids__err(err, IDS_ERR_ARG, "gguf writer: empty metadata key");
    int64_t dummy;
    if (ids__strmap_get(&w->keys, key, strlen(key), &dummy))
        return ids__err(err, IDS_ERR_ARG, "gguf writer: metadata key '%s' set twice", key);
    if (w->n_keys_store == w->cap_keys_store) {
        size_t cap = w->cap_keys_store ? 2 * w->cap_keys_store : 32;
        char **p = ids__realloc(w->key_store, cap * sizeof *p);
        if (!p) return ids__err(err, IDS_ERR_NOMEM, "gguf writer: out of memory");
        w->key_store = p;
        w->cap_keys_store = cap;
    }
    char *k = ids__strdup(key);
    if (!k || !ids__strmap_put(&w->keys, k, strlen(k), 0, NULL, NULL)) {
        free(k);
        return ids__err(err, IDS_ERR_NOMEM, "gguf writer: out of memory");
    }
    w->key_store[w->n_keys_store++] = k;
    buf_str(&w->kv, key, strlen(key));
    buf_u32(&w->kv, (uint32_t)type);
    w->n_kv++;
    return IDS_OK;
}

static ids_status end_kv(ids_gguf_writer *w, ids_err *err) {
    return w->kv.oom ? ids__err(err, IDS_ERR_NOMEM, "gguf writer: out of memory") : IDS_OK;
}

ids_status ids_gguf_writer_set_alignment(ids_gguf_writer *w, uint32_t alignment, ids_err *err) {
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > 4096)
        return ids__err(err, IDS_ERR_ARG, "gguf writer: alignment %u is not a power of two <= 4096",
                        alignment);
    ids_status st = begin_kv(w, "general.alignment", IDS_GGUF_UINT32, err);
    if (st) return st;
    buf_u32(&w->kv, alignment);
    w->alignment = alignment;
    return end_kv(w, err);
}

#define DEFINE_SET(fn, ctype, gtype)                                                           \
    ids_status fn(ids_gguf_writer *w, const char *key, ctype v, ids_err *err) {               \
        ids_status st = begin_kv(w, key, gtype, err);                                          \
        if (st) return st;                                                                     \
        buf_put(&w->kv, &v, sizeof v);                                                         \
        return end_kv(w, err);                                                                 \
    }
DEFINE_SET(ids_gguf_writer_set_u32, uint32_t, IDS_GGUF_UINT32)
DEFINE_SET(ids_gguf_writer_set_i32, int32_t, IDS_GGUF_INT32)
DEFINE_SET(ids_gguf_writer_set_u64, uint64_t, IDS_GGUF_UINT64)
DEFINE_SET(ids_gguf_writer_set_f32, float, IDS_GGUF_FLOAT32)

ids_status ids_gguf_writer_set_bool(ids_gguf_writer *w, const char *key, bool v, ids_err *err) {
    ids_status st = begin_kv(w, key, IDS_GGUF_BOOL, err);
    if (st) return st;
    uint8_t b = v ? 1 : 0;
    buf_put(&w->kv, &b, 1);
    return end_kv(w, err);
}

ids_status ids_gguf_writer_set_str(ids_gguf_writer *w, const char *key, const char *v, ids_err *err) {
    ids_status st = begin_kv(w, key, IDS_GGUF_STRING, err);
    if (st) return st;
    buf_str(&w->kv, v, strlen(v));
    return end_kv(w, err);
}

ids_status ids_gguf_writer_set_arr(ids_gguf_writer *w, const char *key, int elem_type,
                                   const void *data, uint64_t n, ids_err *err) {
    size_t sz = scalar_size(elem_type);
    if (!sz)
        return ids__err(err, IDS_ERR_ARG, "gguf writer: '%s': element type %s is not a scalar", key,
                        ids_gguf_type_name(elem_type));
    ids_status st = begin_kv(w, key, IDS_GGUF_ARRAY, err);
    if (st) return st;
    buf_u32(&w->kv, (uint32_t)elem_type);
    buf_u64(&w->kv, n);
    buf_put(&w->kv, data, (size_t)n * sz);
    return end_kv(w, err);
}

ids_status ids_gguf_writer_set_arr_str(ids_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n, ids_err *err) {
    ids_status st = begin_kv(w, key, IDS_GGUF_ARRAY, err);
    if (st) return st;
    buf_u32(&w->kv, IDS_GGUF_STRING);
    buf_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) buf_str(&w->kv, strs[i], strlen(strs[i]));
    return end_kv(w, err);
}

static void put_value_body(buf *b, const ids_gguf_value *v) {
    switch (v->type) {
    case IDS_GGUF_STRING: buf_str(b, v->v.str.ptr, (size_t)v->v.str.len); return;
    case IDS_GGUF_ARRAY: {
        buf_u32(b, v->v.arr.elem);
        buf_u64(b, v->v.arr.n);
        if (v->v.arr.elem == IDS_GGUF_ARRAY) {
            for (uint64_t i = 0; i < v->v.arr.n; i++) put_value_body(b, ids_gguf_arr_arr(v, i));
        } else if (v->v.arr.elem == IDS_GGUF_STRING) {
            for (uint64_t i = 0; i < v->v.arr.n; i++) {
                const char *p = "";
                uint64_t len = 0;
                ids_gguf_arr_str(v, i, &p, &len);
                buf_str(b, p, (size_t)len);
            }
        } else {
            buf_put(b, v->v.arr.data, (size_t)v->v.arr.n * scalar_size(v->v.arr.elem));
        }
        return;
    }
    case IDS_GGUF_FLOAT32: { float f = (float)v->v.f; buf_put(b, &f, 4); return; }
    case IDS_GGUF_FLOAT64: buf_put(b, &v->v.f, 8); return;
    default: {
        /* integers and bool: little-endian truncation of the widened value */
        uint64_t u = is_signed_int(v->type) ? (uint64_t)v->v.i : v->v.u;
        buf_put(b, &u, scalar_size(v->type));
        return;
    }
    }
}

ids_status ids_gguf_writer_set_value(ids_gguf_writer *w, const char *key, const ids_gguf_value *v,
                                     ids_err *err) {
    if (!v || v->type >= IDS_GGUF_TYPE_COUNT)
        return ids__err(err, IDS_ERR_ARG, "gguf writer: '%s': invalid value", key);
    if (strcmp(key, "general.alignment") == 0) {
        if (v->type != IDS_GGUF_UINT32)
            return ids__err(err, IDS_ERR_ARG, "gguf writer: general.alignment must be u32");
        return ids_gguf_writer_set_alignment(w, (uint32_t)v->v.u, err);
    }
    ids_status st = begin_kv(w, key, v->type, err);
    if (st) return st;
    put_value_body(&w->kv, v);
    return end_kv(w, err);
}

/* A tensor record; its bytes copied (copy) or referenced. */
static ids_status add_tensor(ids_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                             const void *data, bool copy, ids_err *err) {
    if (!name || !*name) return ids__err(err, IDS_ERR_ARG, "gguf writer: empty tensor name");
    if (!ids_type_name(type))
        return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': unknown type %d", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': %d dimensions (expected 1..4)",
                        name, n_dims);
    int64_t dummy;
    if (ids__strmap_get(&w->names, name, strlen(name), &dummy))
        return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s' added twice", name);
    uint64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || !ids__mul_ok(nel, (uint64_t)ne[d], &nel) || nel > INT64_MAX) /* as the reader */
            return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': bad dimension %d = %lld",
                            name, d, (long long)ne[d]);
    }
    if (ne[0] % ids_type_block_size(type))
        return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': row length %lld is not a "
                        "multiple of the %s block size", name, (long long)ne[0], ids_type_name(type));
    uint64_t nbytes = nel / (uint64_t)ids_type_block_size(type) * (uint64_t)ids_type_block_bytes(type);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor *p = ids__realloc(w->tensors, cap * sizeof *p);
        if (!p) return ids__err(err, IDS_ERR_NOMEM, "gguf writer: out of memory");
        w->tensors = p;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = ids__strdup(name);
    t->data = copy ? ids__malloc((size_t)nbytes) : NULL;
    if (!t->name || (copy && !t->data) ||
        !ids__strmap_put(&w->names, t->name, strlen(t->name), 0, NULL, NULL)) {
        free(t->name);
        free(t->data);
        return ids__err(err, IDS_ERR_NOMEM, "gguf writer: out of memory for tensor '%s'", name);
    }
    if (copy) memcpy(t->data, data, (size_t)nbytes);
    t->ref = copy ? t->data : data;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    w->n_tensors++;
    return IDS_OK;
}

ids_status ids_gguf_writer_add_tensor(ids_gguf_writer *w, const char *name, int type, int n_dims,
                                      const int64_t *ne, const void *data, ids_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, true, err);
}

ids_status ids__gguf_writer_add_tensor_ref(ids_gguf_writer *w, const char *name, int type, int n_dims,
                                           const int64_t *ne, const void *data, ids_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, false, err);
}

static const void *writer_tensor_data(const ids_gguf_writer *w, int64_t i) { return w->tensors[i].ref; }

ids_status ids_gguf_writer_add_tensor_f32(ids_gguf_writer *w, const char *name, int type,
                                          int n_dims, const int64_t *ne, const float *data,
                                          ids_err *err) {
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': %d dimensions (expected 1..4)",
                        name, n_dims);
    int64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || nel > INT64_MAX / ne[d])
            return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': bad shape", name);
        nel *= ne[d];
    }
    int64_t bytes = ids_type_row_bytes(type, nel);
    if (bytes < 0)
        return ids__err(err, IDS_ERR_ARG, "gguf writer: tensor '%s': %lld elements cannot be stored "
                        "as %s", name, (long long)nel, ids_type_name(type) ? ids_type_name(type) : "?");
    void *tmp = ids__malloc((size_t)bytes);
    if (!tmp) return ids__err(err, IDS_ERR_NOMEM, "gguf writer: out of memory");
    ids_status st = ids_quantize(type, data, tmp, nel, err);
    if (!st) st = ids_gguf_writer_add_tensor(w, name, type, n_dims, ne, tmp, err);
    free(tmp);
    return st;
}

/* The header, key-value pairs and tensor table, padded to the data section; *data_bytes = the
 * size of that section. */
static void build_head(const ids_gguf_writer *w, buf *head, uint64_t *data_bytes) {
    buf_put(head, GGUF_MAGIC, 4);
    buf_u32(head, 3);
    buf_u64(head, w->n_tensors);
    buf_u64(head, w->n_kv);
    buf_put(head, w->kv.p, w->kv.len);
    uint64_t off = 0;
    const uint64_t A = w->alignment;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        buf_str(head, t->name, strlen(t->name));
        buf_u32(head, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) buf_u64(head, (uint64_t)t->ne[d]);
        buf_u32(head, (uint32_t)t->type);
        buf_u64(head, off);
        off += (t->nbytes + A - 1) / A * A;
    }
    static const unsigned char zeros[64];
    size_t pad = w->n_tensors ? (size_t)((head->len + A - 1) / A * A - head->len) : 0;
    while (pad > 0) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        buf_put(head, zeros, k);
        pad -= k;
    }
    *data_bytes = off;
}

ids_status ids__gguf_from_writer(ids_gguf_writer *w, const char *name, ids_gguf **out, ids_err *err) {
    *out = NULL;
    buf head = {0};
    uint64_t data_bytes = 0;
    build_head(w, &head, &data_bytes);
    ids_gguf *g = head.oom || w->kv.oom ? NULL : new_handle(name, head.len);
    if (!g) {
        free(head.p);
        ids_gguf_writer_free(w);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", name);
    }
    g->view_of = w;
    g->own_head = head.p;
    g->base = head.p;
    g->size = head.len;
    g->view_bytes = head.len + data_bytes;
    return open_common(g, out, err);
}

ids_status ids__gguf_attach(ids_gguf *g, void *obj, void (*release)(void *), ids_err *err) {
    struct keep *k = ids__realloc(g->keep, (size_t)(g->n_keep + 1) * sizeof *k);
    if (!k) {
        release(obj);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", g->path);
    }
    g->keep = k;
    k[g->n_keep++] = (struct keep){obj, release};
    return IDS_OK;
}

ids_status ids_gguf_writer_write(const ids_gguf_writer *w, const char *path, ids_err *err) {
    buf head = {0};
    uint64_t data_bytes;
    build_head(w, &head, &data_bytes);
    static const unsigned char zeros[1 << 12];
    const uint64_t A = w->alignment;
    if (head.oom || w->kv.oom) {
        free(head.p);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory while writing", path);
    }
    size_t n_parts = 1 + 2 * w->n_tensors;
    const void **parts = ids__malloc(n_parts * sizeof *parts);
    size_t *sizes = ids__malloc(n_parts * sizeof *sizes);
    if (!parts || !sizes) {
        free(parts);
        free(sizes);
        free(head.p);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory while writing", path);
    }
    parts[0] = head.p;
    sizes[0] = head.len;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        parts[1 + 2 * i] = t->ref;
        sizes[1 + 2 * i] = (size_t)t->nbytes;
        parts[2 + 2 * i] = zeros;
        sizes[2 + 2 * i] = (size_t)((t->nbytes + A - 1) / A * A - t->nbytes);
    }
    ids_status st = ids__write_atomic(path, parts, sizes, n_parts, err);
    free(parts);
    free(sizes);
    free(head.p);
    return st;
}
