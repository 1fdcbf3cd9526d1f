/* What the experiments share before patching: stimuli drawn per ordered object pair, the question
 * sequence of an item, the answer tokens of a relation. */
#include "exp/exp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ids_status ids__draw_stim(ids_set_kind kind, const ids_stim_opts *so, const ids_catalog *cat, int count, int rel,
                          uint64_t *rng, ids_stim *out, ids_err *err) {
    for (;;) {
        ids_status st = ids_stim_make(kind, so, cat, (int)((ids__lcg(rng) >> 33) % (uint64_t)count), out, err);
        if (st || rel < 0 || out->has[rel]) return st;
        ids_stim_free(out);
    }
}

ids_status ids__each_item(ids_set_kind kind, ids_stim_opts *so, const ids_catalog *cat, const int *objs, int n_obj,
                          int n_items, int rel, uint64_t seed, uint64_t salt, ids__item_fn fn, void *user,
                          const char *what, ids_progress_fn progress, void *puser, long *done, long total, ids_err *err) {
    ids_status st = IDS_OK;
    for (int a = 0; a < n_obj && !st; a++)
        for (int b = 0; b < n_obj && !st; b++) {
            if (a == b) continue;
            int tuple[3] = {objs[a], objs[b], -1};
            for (int c = 0; c < n_obj && tuple[2] < 0; c++) /* "between" needs a third: the first other one */
                if (c != a && c != b) tuple[2] = objs[c];
            so->objects = tuple;
            so->n_objects = kind == IDS_SET_BETWEEN ? 3 : 2;
            if (kind == IDS_SET_BETWEEN && tuple[2] < 0) {
                st = ids__err(err, IDS_ERR_ARG, "the between set needs 3 objects, %d given", n_obj);
                break;
            }
            int count;
            if ((st = ids_stim_count(kind, so, cat, &count, err))) break;
            uint64_t rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(a * 131 + b) + salt;
            for (int it = 0; it < n_items && !st; it++) {
                ids_stim s;
                if ((st = ids__draw_stim(kind, so, cat, count, rel, &rng, &s, err))) break;
                st = fn(user, &s, err);
                ids_stim_free(&s);
                ++*done;
                if (progress) progress(what, *done, total, puser);
            }
            so->objects = NULL;
        }
    return st;
}

char *ids__exp_prompt(const ids__exp *x, ids_relation rel, const char *a, const char *b, const char *c, int n_img) {
    char *q = ids_question_instructed(rel, a, b, c, x->instruction);
    char *prompt = !q ? NULL : n_img > 1 ? ids_vlm_video_prompt(x->v, q, 0) : ids_vlm_prompt(x->v, q, n_img);
    free(q);
    return prompt;
}

ids_status ids__question_seq(const ids__exp *x, ids_relation rel, const ids_stim *s, const ids_image *img, int n_img,
                             ids_seq **out, ids_err *err) {
    *out = NULL;
    const ids_catalog *cat = x->cat;
    char *prompt = ids__exp_prompt(x, rel, ids_catalog_name(cat, s->obj[0].obj), ids_catalog_name(cat, s->obj[1].obj),
                                   s->n_obj > 2 ? ids_catalog_name(cat, s->obj[2].obj) : NULL, n_img);
    if (!prompt) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    /* several images: one video (frames in order) */
    ids_status st = ids_vlm_build_video_seq(x->v, prompt, img, n_img, n_img > 1 ? n_img : 0, x->n_threads, NULL, out, err);
    free(prompt);
    return st;
}

ids_status ids__answers_init(ids__answers *a, const ids_tokenizer *tok, ids_relation rel, ids_err *err) {
    memset(a, 0, sizeof *a);
    ids_status st = ids_answer_set_make(tok, rel, &a->set, err);
    if (!st) a->n_cand = ids_answer_set_cands(&a->set, a->cand);
    return st;
}

void ids__prompting_add(ids_prompting *p, const char *instruction, const ids_answer_set *s) {
    snprintf(p->instruction, sizeof p->instruction, "%s", instruction ? instruction : "");
    for (int k = 0; k < p->n_sets; k++)
        if (p->sets[k].relation == s->relation) return;
    if (p->n_sets < IDS_PROMPTING_MAX_SETS) p->sets[p->n_sets++] = *s;
}

ids_status ids__object_rows(const ids_seq *seq, const ids_tokenizer *tok, const char *word_a, const char *word_b, int rows[2],
                            ids_err *err) {
    const char *w[2] = {word_a, word_b};
    for (int k = 0; k < 2; k++) {
        ids_sel sel = {.kind = IDS_SEL_WORD, .word = w[k], .after_image = true};
        int *r = NULL, n = 0;
        ids_status st = ids_sel_resolve(seq, tok, &sel, &r, &n, err);
        rows[k] = !st && n > 0 ? r[0] : -1;
        free(r);
        if (st) return st;
        if (rows[k] < 0) return ids__err(err, IDS_ERR_NOT_FOUND, "the question word '%s' is not in the prompt", w[k]);
    }
    if (rows[0] == rows[1])
        return ids__err(err, IDS_ERR_ARG, "the objects' question words '%s' and '%s' are the same token at row %d: the two "
                        "objects cannot be read or edited apart (name them by different last words)", word_a, word_b, rows[0]);
    return IDS_OK;
}
