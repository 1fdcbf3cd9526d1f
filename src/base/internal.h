/* Private helpers of every layer (base): errors, allocation, arena, hash map, little-endian loads,
 * whole-file reading and atomic writing. */
#ifndef IDS_INTERNAL_H
#define IDS_INTERNAL_H

#include "idscope/base.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define IDS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IDS_PRINTF(a, b)
#endif

/* Always-on invariant check for programmer errors (never for file contents). */
#define IDS_ASSERT(x)                                                                         \
    do {                                                                                      \
        if (!(x)) ids__assert_fail(__FILE__, __LINE__, #x);                                   \
    } while (0)
void ids__assert_fail(const char *file, int line, const char *expr);

/* Fill err (may be NULL) and return code. */
ids_status ids__err(ids_err *err, ids_status code, const char *fmt, ...) IDS_PRINTF(3, 4);
void ids__log(int level, const char *fmt, ...) IDS_PRINTF(2, 3);

/* Allocation through one place so that failures can be injected in tests. */
void *ids__malloc(size_t n);
void *ids__calloc(size_t n, size_t size);
void *ids__realloc(void *p, size_t n);
char *ids__strdup(const char *s);
/* a*b with overflow detection: returns false on overflow. */
static inline bool ids__mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

/* Bump allocator: many small allocations freed together. */
typedef struct ids_arena_block ids_arena_block;
typedef struct ids_arena {
    ids_arena_block *head;
    size_t block_size;
} ids_arena;
void ids__arena_init(ids_arena *a, size_t block_size);
void *ids__arena_alloc(ids_arena *a, size_t n, size_t align);
char *ids__arena_strndup(ids_arena *a, const char *s, size_t n);
void ids__arena_free(ids_arena *a);

/* Open-addressing hash map from byte strings (not owned) to int64 values. */
typedef struct ids_strmap_slot {
    const char *key;
    uint32_t len;
    uint32_t hash;
    int64_t value;
} ids_strmap_slot;
typedef struct ids_strmap {
    ids_strmap_slot *slots;
    size_t cap, count;
} ids_strmap;
bool ids__strmap_init(ids_strmap *m, size_t expected);
void ids__strmap_free(ids_strmap *m);
/* Insert; returns false on allocation failure. If the key exists, *existing gets its value and the
 * map is unchanged (existing may be NULL: then the old value is overwritten). */
bool ids__strmap_put(ids_strmap *m, const char *key, size_t len, int64_t value, int64_t *existing,
                     bool *was_present);
bool ids__strmap_get(const ids_strmap *m, const char *key, size_t len, int64_t *value);

/* Little-endian loads from unaligned memory. */
static inline uint16_t ids__rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ids__rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ids__rd64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* OpenBLAS's thread count is process-wide state; the library sets it only through this function,
 * which returns the previous count (n < 1 counts as 1).
 * The engine runs OpenBLAS single-threaded (ids__ops_init sets 1 and leaves it so): its own pool
 * splits every matmul into chunks of weight rows and each worker calls SGEMM on its chunk, so
 * threaded BLAS under it would start n x n threads on n cores and run slower and erratically. The
 * trainer sets the count for the duration of ids_train (1 when a batch runs as several shards on
 * its pool, all cores when it runs as one) and restores the previous count when it returns. */
int ids__blas_threads_set(int n);

/* Read a whole regular file into a NUL-terminated malloc'd buffer (*len excludes the NUL). */
ids_status ids__read_file(const char *path, char **out, size_t *len, ids_err *err);

/* Write a whole buffer to `path` atomically: temp file in the same folder, fsync, rename. */
ids_status ids__write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                             size_t n_parts, ids_err *err);

/* UTF-8 length of the sequence that starts with byte c (1 for invalid lead bytes). */
static inline int ids__utf8_len(unsigned char c) {
    static const int lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* Instruction sets of the running CPU (cpuid and the OS's saved register state), as IDS__CPU_* bits. */
#define IDS__CPU_F16C 1u
#define IDS__CPU_FMA 2u
#define IDS__CPU_AVX2 4u
#define IDS__CPU_AVX512F 8u
#define IDS__CPU_AVX512_VNNI 16u
#define IDS__CPU_AVX512_BF16 32u
#define IDS__CPU_AMX_BF16 64u  /* the OS saves tile state; Linux still asks for arch_prctl permission */
#define IDS__CPU_AMX_INT8 128u
unsigned ids__cpu_features(void);
/* Asks Linux for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM: a process must, before its first tile
 * instruction); false with the reason in why where it is refused or not Linux on x86-64. */
bool ids__cpu_amx_permit(char *why, size_t why_len);

/* FNV-1a 64 of a buffer, continuing from h (start with IDS_FNV1A64_INIT). */
#define IDS_FNV1A64_INIT 0xcbf29ce484222325ull
static inline uint64_t ids__fnv1a64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The provenance as a cJSON object (a deep copy the caller owns), or NULL with err set when an
 * allocation failed while it was built. */
struct cJSON;
struct cJSON *ids__prov_json(const ids_prov *p, ids_err *err);
/* Parse text (NUL-terminated, read from path) as a JSON object. On failure *out = NULL and
 * IDS_ERR_FORMAT naming path, the line, column and byte where parsing stopped, and whether the text
 * ended before the JSON did (truncated) or what stands there. */
ids_status ids__json_parse_object(const char *text, const char *path, struct cJSON **out, ids_err *err);
/* Numbers from JSON, checked before any conversion (a double outside the target type's range is
 * undefined behaviour when converted). The value is obj's member `key`, or obj itself when key is
 * NULL. Absent (or null, or obj NULL): *out = def and IDS_OK. Not a number: IDS_ERR_TYPE "'key'
 * must be a number". ids__json_int: an integer in lo..hi (|value| <= 2^53), else IDS_ERR_RANGE
 * "'key' is 1e+10, expected an integer in lo..hi" (key NULL: "1e+10 is not an integer in lo..hi");
 * ids__json_num: a number in [lo, hi] (infinities refused). On any error *out = def. Callers add
 * the file or record with ids__err_prefix. */
ids_status ids__json_int(const struct cJSON *obj, const char *key, long long lo, long long hi, long long def,
                         long long *out, ids_err *err);
ids_status ids__json_num(const struct cJSON *obj, const char *key, double lo, double hi, double def, double *out,
                         ids_err *err);
/* Put "PREFIX: " before the message already in err (a file name, a record); returns code. */
ids_status ids__err_prefix(ids_err *err, ids_status code, const char *fmt, ...) IDS_PRINTF(3, 4);
/* "DIR/NAME" (malloc'd; NULL when out of memory). */
char *ids__path_join(const char *dir, const char *name);

#endif
