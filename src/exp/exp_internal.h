/* Private helpers the experiments share (exp): drawing stimuli, the item loop, question sequences,
 * answer tokens, activation patching. */
#ifndef IDS_EXP_INTERNAL_H
#define IDS_EXP_INTERNAL_H

#include "idscope/exp.h"
#include "base/internal.h"
#include "base/rng.h"

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
