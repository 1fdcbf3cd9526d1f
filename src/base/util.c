/* Errors, logging, allocation (with failure injection), arena, hash map, atomic file writes. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/base.h"
#include "base/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ids_status_name(ids_status s) {
    static const char *names[IDS_STATUS_COUNT] = {"ok", "io error", "format error", "not found",
                                                  "type mismatch", "out of range", "unsupported",
                                                  "invalid argument", "out of memory"};
    return (s >= 0 && s < IDS_STATUS_COUNT) ? names[s] : "unknown status";
}

/* The log sink is process-wide configuration set once by the embedding program, like a signal
 * handler; the library itself keeps no other mutable global state. */
static ids_log_fn g_log_fn;
static void *g_log_user;

void ids_set_log(ids_log_fn fn, void *user) {
    g_log_fn = fn;
    g_log_user = user;
}

void ids__log(int level, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (g_log_fn) {
        g_log_fn(level, buf, g_log_user);
    } else if (level <= 1) {
        fprintf(stderr, "idscope: %s: %s\n", level == 0 ? "error" : "warning", buf);
    }
}

ids_status ids__err(ids_err *err, ids_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ids__assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "idscope: internal invariant failed at %s:%d: %s\n", file, line, expr);
    abort();
}

/* Test-only failure injection; see ids_debug_fail_alloc_after. */
static long g_alloc_budget = -1;

void ids_debug_fail_alloc_after(long n) { g_alloc_budget = n; }

static bool alloc_allowed(void) {
    if (g_alloc_budget < 0) return true;
    if (g_alloc_budget == 0) return false;
    g_alloc_budget--;
    return true;
}

void *ids__malloc(size_t n) { return alloc_allowed() ? malloc(n ? n : 1) : NULL; }
void *ids__calloc(size_t n, size_t size) {
    return alloc_allowed() ? calloc(n ? n : 1, size ? size : 1) : NULL;
}
void *ids__realloc(void *p, size_t n) { return alloc_allowed() ? realloc(p, n ? n : 1) : NULL; }
char *ids__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ids__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- arena ---- */
struct ids_arena_block {
    ids_arena_block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

void ids__arena_init(ids_arena *a, size_t block_size) {
    a->head = NULL;
    a->block_size = block_size ? block_size : 65536;
}

void *ids__arena_alloc(ids_arena *a, size_t n, size_t align) {
    if (align == 0) align = 1;
    IDS_ASSERT((align & (align - 1)) == 0 && align <= 16);
    ids_arena_block *b = a->head;
    if (b) {
        size_t off = (b->used + align - 1) & ~(align - 1);
        if (off <= b->cap && n <= b->cap - off) {
            b->used = off + n;
            return b->data + off;
        }
    }
    size_t cap = n > a->block_size ? n : a->block_size;
    if (cap > SIZE_MAX - sizeof(ids_arena_block)) return NULL;
    b = ids__malloc(sizeof(ids_arena_block) + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->used = n;
    b->next = a->head;
    a->head = b;
    return b->data;
}

char *ids__arena_strndup(ids_arena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *d = ids__arena_alloc(a, n + 1, 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void ids__arena_free(ids_arena *a) {
    ids_arena_block *b = a->head;
    while (b) {
        ids_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* ---- string map (FNV-1a, linear probing, power-of-two capacity) ---- */
static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

bool ids__strmap_init(ids_strmap *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 1) cap <<= 1;
    m->slots = ids__calloc(cap, sizeof(ids_strmap_slot));
    m->cap = m->slots ? cap : 0;
    m->count = 0;
    return m->slots != NULL;
}

void ids__strmap_free(ids_strmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

static bool strmap_grow(ids_strmap *m) {
    ids_strmap old = *m;
    if (!ids__strmap_init(m, old.cap)) {
        *m = old;
        return false;
    }
    for (size_t i = 0; i < old.cap; i++) {
        ids_strmap_slot *s = &old.slots[i];
        if (!s->key) continue;
        size_t j = s->hash & (m->cap - 1);
        while (m->slots[j].key) j = (j + 1) & (m->cap - 1);
        m->slots[j] = *s;
        m->count++;
    }
    free(old.slots);
    return true;
}

bool ids__strmap_put(ids_strmap *m, const char *key, size_t len, int64_t value, int64_t *existing,
                     bool *was_present) {
    if (was_present) *was_present = false;
    if (len > UINT32_MAX) return false;
    if ((m->count + 1) * 2 > m->cap && !strmap_grow(m)) return false;
    uint32_t h = hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        ids_strmap_slot *s = &m->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            if (was_present) *was_present = true;
            if (existing) *existing = s->value;
            else s->value = value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].key = key;
    m->slots[j].len = (uint32_t)len;
    m->slots[j].hash = h;
    m->slots[j].value = value;
    m->count++;
    return true;
}

bool ids__strmap_get(const ids_strmap *m, const char *key, size_t len, int64_t *value) {
    if (!m->cap || len > UINT32_MAX) return false;
    uint32_t h = hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        const ids_strmap_slot *s = &m->slots[j];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            *value = s->value;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

/* ---- atomic writes ---- */
/* Nothing is left behind on failure: the temporary file is removed and the target is untouched
 * (a full disk, a file-size limit and a failed fsync all end the same way). Messages name the
 * target. */
ids_status ids__write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                             size_t n_parts, ids_err *err) {
    size_t plen = strlen(path);
    char *tmp = ids__malloc(plen + 32);
    if (!tmp) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        ids_status st = ids__err(err, IDS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    uint64_t done = 0;
    for (size_t p = 0; p < n_parts; p++) {
        const unsigned char *b = parts[p];
        size_t left = sizes[p];
        while (left > 0) {
            ssize_t w = write(fd, b, left > (1u << 30) ? (1u << 30) : left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                const int e = w < 0 ? errno : EIO;
                ids_status st = ids__err(err, IDS_ERR_IO, "%s: write failed after %llu bytes: %s (nothing written)",
                                         path, (unsigned long long)done, strerror(e));
                close(fd);
                unlink(tmp);
                free(tmp);
                return st;
            }
            b += w;
            left -= (size_t)w;
            done += (uint64_t)w;
        }
    }
    int sync_rc = fsync(fd);
    int sync_errno = errno;
    int close_rc = close(fd);
    if (sync_rc != 0 || close_rc != 0) {
        ids_status st = ids__err(err, IDS_ERR_IO, "%s: flush failed: %s (nothing written)", path,
                                 strerror(sync_rc != 0 ? sync_errno : errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        ids_status st = ids__err(err, IDS_ERR_IO, "%s: cannot rename %s into place: %s", path,
                                 tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return IDS_OK;
}

ids_status ids__read_file(const char *path, char **out, size_t *len, ids_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ids__err(err, IDS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ids__err(err, IDS_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *b = ids__malloc(n + 1);
    if (!b) {
        close(fd);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return ids__err(err, IDS_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    b[n] = 0;
    *out = b;
    if (len) *len = n;
    return IDS_OK;
}

static const char *const k_precisions[IDS_PREC_COUNT] = {"f32", "bf16", "int8"};

const char *ids_precision_name(ids_precision p) {
    return (unsigned)p < IDS_PREC_COUNT ? k_precisions[p] : "?";
}

ids_status ids_precision_parse(const char *s, ids_precision *out, ids_err *err) {
    for (int p = 0; p < IDS_PREC_COUNT; p++)
        if (s && !strcmp(s, k_precisions[p])) {
            *out = (ids_precision)p;
            return IDS_OK;
        }
    return ids__err(err, IDS_ERR_ARG, "precision '%s' is not one of f32, bf16, int8", s ? s : "(null)");
}
