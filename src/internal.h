/* Private helpers shared by the library's files: errors, allocation, arena, hash map. */
#ifndef IDS_INTERNAL_H
#define IDS_INTERNAL_H

#include "idscope.h"
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

/* One step of the 64-bit LCG that the experiments use to pick stimuli; returns the new state. */
static inline uint64_t ids__lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s;
}

/* Draw items of set `kind` (of `count` items) with the LCG state *rng until one has an answer for
 * relation `rel` (rel < 0: the first item drawn). *out is the caller's on IDS_OK. */
ids_status ids__draw_stim(ids_set_kind kind, const ids_stim_opts *so, const ids_catalog *cat, int count, int rel,
                          uint64_t *rng, ids_stim *out, ids_err *err);
/* The item loop every experiment shares: for every ordered pair (a, b), a != b, of objs[0..n_obj),
 * n_items stimuli of set `kind` with subject objs[a] and reference objs[b], drawn with
 * ids__draw_stim from the LCG seeded seed * 0x9E3779B97F4A7C15 + a * 131 + b + salt; fn gets each
 * (the loop frees it). so->objects is set per pair. *done counts items over calls (progress(what,
 * *done, total)). Stops at the first error. */
typedef ids_status (*ids__item_fn)(void *user, ids_stim *s, ids_err *err);
ids_status ids__each_item(ids_set_kind kind, ids_stim_opts *so, const ids_catalog *cat, const int *objs, int n_obj,
                          int n_items, int rel, uint64_t seed, uint64_t salt, ids__item_fn fn, void *user,
                          const char *what, ids_progress_fn progress, void *puser, long *done, long total, ids_err *err);
/* The sequence of the question `rel` about s's first two objects, asked in the model's chat prompt
 * about n_img images from `img` (s's own frames or edited copies; several images are one video). */
ids_status ids__question_seq(const ids_vlm *v, const ids_catalog *cat, ids_relation rel, const ids_stim *s,
                             const ids_image *img, int n_img, int n_threads, ids_seq **out, ids_err *err);
/* Tokens of a relation's two answers at the answer position: the paper's word rule (last piece of
 * tokenize(" " + word)) on each answer's first word ("in" of "in front"). */
ids_status ids__answer_tokens(const ids_tokenizer *tok, ids_relation rel, int32_t cand[2], ids_err *err);
/* Activation patching of an edit (mirror, recolour, time reversal): for every layer and position
 * set (IDS_SWAP_IMAGE: every image row, IDS_SWAP_TEXT: every text row, IDS_SWAP_OBJECTS: the two
 * object words, first occurrence after the images) the clean run with that set's rows at that
 * layer replaced by the edited run's, all variants of an item batched over the clean cache. acc[0..2]
 * sum the recovered fractions of the edit's effect on the two answers' log-probs and on their
 * difference; items whose edit moves the difference by less than 1e-3 are skipped (counted). */
typedef struct ids__patcher {
    const ids_vlm *v;
    const ids_tokenizer *tok;
    ids_ctx *ctx, *ctx_edit;
    int L, E, n_threads;
    int32_t cand[2];
    double *acc[4]; /* per-item fractions summed (first, second, difference); [3]: pooled numerator */
    double pooled_den;
    int *setrows[IDS_SWAP_SET_COUNT], nset[IDS_SWAP_SET_COUNT];
    int n_items, n_skipped;
} ids__patcher;
ids_status ids__patcher_init(ids__patcher *p, const ids_vlm *v, ids_relation rel, int n_ctx, int n_threads, ids_err *err);
/* One item: the prompt over the clean images and over the edited ones (same layout); a prompt with
 * a <video> marker takes all n_img images as that video's frames. */
ids_status ids__patcher_item(ids__patcher *p, const ids_image *clean, const ids_image *edited, int n_img, const char *prompt,
                             const char *word_a, const char *word_b, ids_err *err);
/* Means over the items used, [L * IDS_SWAP_SET_COUNT] each (malloc'd); pooled: the difference's
 * recovery pooled over items, sum of sign(effect) (clean - patched) / sum of |effect|. */
ids_status ids__patcher_means(const ids__patcher *p, float **first, float **second, float **diff, float **pooled,
                              ids_err *err);
void ids__patcher_free(ids__patcher *p);

#endif
