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

ids_status ids__item_seq(const ids__exp *x, ids_relation rel, const ids__item *it, ids_seq **out, ids_err *err) {
    *out = NULL;
    char *prompt = ids__exp_prompt(x, rel, it->name[0], it->name[1], it->n_obj > 2 ? it->name[2] : NULL, 1);
    if (!prompt) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_status st = ids_vlm_build_seq(x->v, prompt, it->img, 1, x->n_threads, NULL, out, err);
    free(prompt);
    if (st && it->id && *it->id) ids__err_prefix(err, st, "record '%s'", it->id);
    return st;
}

/* The cell of a centre on a G x G grid over the image as the tower sees it: LLaVA-style towers pad
 * the image to a square (centred), dynamic ones (Qwen2-VL) and InternVL's tiles stretch it. */
static void item_cell(const ids__exp *x, const ids_image *img, float cx, float cy, int *gx, int *gy) {
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(x->v));
    const bool pad = !vp->dynamic && strcmp(vp->projector, "internvl") != 0;
    double w = img->w, h = img->h, px = cx, py = cy;
    if (pad && img->w != img->h) {
        const double S = img->w > img->h ? img->w : img->h;
        px += (int)((S - w) / 2), py += (int)((S - h) / 2);
        w = h = S;
    }
    const int G = x->grid;
    int a = (int)floor(px / w * G), b = (int)floor(py / h * G);
    *gx = a < 0 ? 0 : a >= G ? G - 1 : a;
    *gy = b < 0 ? 0 : b >= G ? G - 1 : b;
}

typedef struct {
    ids__exp *x;
    ids__item2_fn fn;
    void *user;
} stim_adapter;

/* A drawn scene as an item: its catalog names and words, centres and cells. */
static ids_status stim_item(void *user, ids_stim *s, ids_err *err) {
    stim_adapter *a = user;
    ids__item it = {.id = "", .img = &s->frames[0], .n_obj = s->n_obj, .stim = s};
    for (int k = 0; k < s->n_obj && k < 3; k++) {
        it.name[k] = ids_catalog_name(a->x->cat, s->obj[k].obj);
        it.word[k] = ids_catalog_word(a->x->cat, s->obj[k].obj);
        it.has_pos[k] = true;
        it.cx[k] = s->obj[k].p.cx, it.cy[k] = s->obj[k].p.cy;
        const float h = s->obj[k].p.size / 2;
        it.box[k][0] = it.cx[k] - h, it.box[k][1] = it.cy[k] - h, it.box[k][2] = it.cx[k] + h, it.box[k][3] = it.cy[k] + h;
        if (s->obj[k].cell_x >= 0 && s->grid == a->x->grid) it.cell_x[k] = s->obj[k].cell_x, it.cell_y[k] = s->obj[k].cell_y;
        else item_cell(a->x, it.img, it.cx[k], it.cy[k], &it.cell_x[k], &it.cell_y[k]);
    }
    memcpy(it.has, s->has, sizeof it.has);
    memcpy(it.truth, s->truth, sizeof it.truth);
    return a->fn(a->user, &it, err);
}

/* Why a record cannot be used (0 = it can): 1 no relation, 2 no position, 3 the same word. */
static int record_unfit(const ids_set_item *r, unsigned rels, int need) {
    bool rel_ok = rels == 0;
    for (int k = 0; k < IDS_REL_COUNT; k++) rel_ok |= (rels >> k & 1u) && r->has[k];
    if (!rel_ok) return 1;
    if (((need & IDS__NEED_POS_A) && !r->obj[0].has_box) || ((need & IDS__NEED_POS_B) && !r->obj[1].has_box)) return 2;
    if (!strcmp(r->obj[0].word, r->obj[1].word)) return 3;
    return 0;
}

ids_status ids__exp_items(ids__exp *x, ids_set_kind kind, ids_stim_opts *so, int rel, uint64_t salt, unsigned rels, int need,
                          ids__item2_fn fn, void *user, const char *what, ids_set_use *use, ids_err *err) {
    stim_adapter ad = {x, fn, user};
    if (!x->set_manifest[0]) return ids__exp_each(x, kind, so, rel, salt, stim_item, &ad, what, err);
    ids_set *set = NULL;
    ids_status st = ids_set_load(x->set_manifest, &set, err);
    if (st) return st;
    snprintf(use->manifest, sizeof use->manifest, "%s", x->set_manifest);
    int *pick = ids__malloc(sizeof(int) * (size_t)(set->n ? set->n : 1)), n = 0;
    if (!pick) st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
    use->records += st ? 0 : set->n;
    for (int i = 0; !st && i < set->n; i++) {
        const int why = record_unfit(&set->items[i], rels, need);
        if (why == 1) use->no_relation++;
        else if (why == 2) use->no_box++;
        else if (why == 3) use->same_word++;
        else pick[n++] = i;
    }
    if (!st && x->n_items > 0 && x->n_items < n) { /* a seeded sample, in the set's order */
        uint64_t rng = x->seed * 0x9E3779B97F4A7C15ull + 0x5E7 + salt;
        for (int i = 0; i < x->n_items; i++) {
            const int j = i + (int)((ids__lcg(&rng) >> 33) % (uint64_t)(n - i));
            const int t = pick[i];
            pick[i] = pick[j], pick[j] = t;
        }
        use->not_sampled += n - x->n_items;
        n = x->n_items;
        for (int i = 1; i < n; i++) /* back into the set's order */
            for (int j = i; j > 0 && pick[j - 1] > pick[j]; j--) {
                const int t = pick[j];
                pick[j] = pick[j - 1], pick[j - 1] = t;
            }
    }
    const long total = x->done + n;
    for (int i = 0; !st && i < n; i++) {
        const ids_set_item *r = &set->items[pick[i]];
        if (!ids__item_mine(x, x->done)) { /* another shard's */
            x->done++;
            continue;
        }
        x->item = x->done;
        ids_image img = {0};
        if ((st = ids_image_load(&img, r->file, err))) {
            ids__err_prefix(err, st, "%s: record '%s'", set->manifest, r->id);
            break;
        }
        ids__item it = {.id = r->id, .img = &img, .n_obj = r->n_obj};
        for (int k = 0; k < r->n_obj; k++) {
            it.name[k] = r->obj[k].name, it.word[k] = r->obj[k].word, it.has_pos[k] = r->obj[k].has_box;
            it.cx[k] = r->obj[k].cx, it.cy[k] = r->obj[k].cy;
            memcpy(it.box[k], r->obj[k].box, sizeof it.box[k]);
            it.cell_x[k] = it.cell_y[k] = -1;
            if (r->obj[k].cell_x >= 0 && set->grid == x->grid) it.cell_x[k] = r->obj[k].cell_x, it.cell_y[k] = r->obj[k].cell_y;
            else if (r->obj[k].has_box) item_cell(x, &img, it.cx[k], it.cy[k], &it.cell_x[k], &it.cell_y[k]);
        }
        memcpy(it.has, r->has, sizeof it.has);
        memcpy(it.truth, r->truth, sizeof it.truth);
        st = fn(user, &it, err);
        ids_image_free(&img);
        use->used += !st;
        x->done++;
        if (x->progress && (x->done % (n / 50 + 1) == 0 || x->done == total)) x->progress(what, x->done, total, x->puser);
    }
    free(pick);
    ids_set_free(set);
    return st;
}
