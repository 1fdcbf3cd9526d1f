/* Tasks of the bundled model. Scenes come from the stimulus engine; prompts use the LLaVA-1.5
 * (vicuna) template; the vocabulary is word-level, stored as an SPM tokenizer whose merge path
 * (every prefix of every word is a token) makes the engine's tokenizer produce one token per word. */
#include "idscope/train.h"
#include "train/tasks.h"

#include <math.h>

static const char *const k_task_names[IDS_TASK_COUNT] = {"describe", "left-right", "above-below", "front-behind",
                                                         "near-far", "before-after", "text-spatial", "locate", "where"};

const char *ids_task_name(ids_task t) { return t < IDS_TASK_COUNT ? k_task_names[t] : NULL; }
int ids_task_from_name(const char *name) {
    for (int i = 0; i < IDS_TASK_COUNT; i++)
        if (!strcmp(name, k_task_names[i])) return i;
    return -1;
}

bool ids_train_heldout(const ids_train_config *c, int a, int b) {
    if (c->holdout <= 0) return false;
    uint64_t h = (uint64_t)(a * 31 + b * 7 + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return (double)(h % 1000) / 1000.0 < c->holdout;
}

void tk_free(tk_sample *s) {
    for (int i = 0; i < s->n_images; i++) ids_image_free(&s->images[i]);
    s->n_images = 0;
}

/* Two built-in objects of different shapes whose ordered pair matches heldout_mode. */
static void pick_pair(const ids_train_config *c, uint64_t *rng, int heldout_mode, int *oa, int *ob, bool *held) {
    const int ns = ids_catalog_n_shapes(), nc = ids_catalog_n_colors();
    for (int tries = 0; tries < 10000; tries++) {
        int sa = (int)(ids__rng_splitmix(rng) % (uint64_t)ns), sb = (int)(ids__rng_splitmix(rng) % (uint64_t)ns);
        if (sa == sb) continue;
        bool h = ids_train_heldout(c, sa, sb);
        if ((heldout_mode == 0 && h) || (heldout_mode == 1 && !h)) continue;
        *oa = ids_catalog_builtin((int)(ids__rng_splitmix(rng) % (uint64_t)nc), sa);
        *ob = ids_catalog_builtin((int)(ids__rng_splitmix(rng) % (uint64_t)nc), sb);
        *held = h;
        return;
    }
    *oa = ids_catalog_builtin(0, 0);
    *ob = ids_catalog_builtin(2, 1);
    *held = false;
}

static ids_set_kind task_set(ids_task t) {
    switch (t) {
    case IDS_TASK_FRONT_BEHIND: return IDS_SET_DEPTH;
    case IDS_TASK_NEAR_FAR: return IDS_SET_NEARFAR;
    case IDS_TASK_BEFORE_AFTER: return IDS_SET_VIDEO;
    default: return IDS_SET_GRID;
    }
}

static ids_relation task_rel(ids_task t) {
    switch (t) {
    case IDS_TASK_ABOVE_BELOW: return IDS_REL_ABOVE_BELOW;
    case IDS_TASK_FRONT_BEHIND: return IDS_REL_FRONT_BEHIND;
    case IDS_TASK_NEAR_FAR: return IDS_REL_NEAR_FAR;
    case IDS_TASK_BEFORE_AFTER: return IDS_REL_BEFORE_AFTER;
    default: return IDS_REL_LEFT_RIGHT;
    }
}

/* Location targets of the question's objects (see tk_sample). */
static void set_aux(tk_sample *out, const ids_catalog *cat, const ids_stim *s, const ids_stim_obj *const *objs, int n,
                    int image_size, int frames) {
    out->n_aux = n;
    for (int i = 0; i < n; i++) {
        const ids_stim_obj *o = objs[i];
        snprintf(out->aux_word[i], sizeof out->aux_word[i], "%s", ids_catalog_word(cat, o->obj));
        out->aux_val[i][0] = 2.0f * o->p.cx / (float)image_size - 1.0f;
        out->aux_val[i][1] = 2.0f * o->p.cy / (float)image_size - 1.0f;
        out->aux_val[i][2] = s->kind == IDS_SET_DEPTH ? (o->depth - 3.25f) / 1.25f : 0.0f;
        out->aux_val[i][3] = s->kind == IDS_SET_VIDEO && frames > 1 ? 2.0f * (float)o->appear / (float)(frames - 1) - 1.0f : 0.0f;
    }
    out->aux_mask[0] = out->aux_mask[1] = true;
    out->aux_mask[2] = s->kind == IDS_SET_DEPTH;
    out->aux_mask[3] = s->kind == IDS_SET_VIDEO;
}

/* The locate task: one object in a random cell of a 4x4 grid, jittered; the answer names the cell. */
static ids_status make_locate(const ids_train_config *c, const ids_catalog *cat, uint64_t *rng, int heldout_mode,
                              tk_sample *out, ids_err *err) {
    int oa, ob;
    pick_pair(c, rng, heldout_mode, &oa, &ob, &out->heldout);
    const int G = 4;
    const float cell = (float)c->image_size / G;
    int cx = (int)(ids__rng_splitmix(rng) % G), cy = (int)(ids__rng_splitmix(rng) % G);
    float j1 = (float)ids__rng_splitmix_unit(rng) - 0.5f;
    float j2 = (float)ids__rng_splitmix_unit(rng) - 0.5f;
    float sz = cell * (0.6f + 0.3f * (float)ids__rng_splitmix_unit(rng));
    ids_placed p = {oa, ((float)cx + 0.5f + 0.24f * j1) * cell, ((float)cy + 0.5f + 0.24f * j2) * cell, sz, 0, true};
    ids_status st = ids_image_new(&out->images[0], c->image_size, c->image_size, NULL, err);
    if (st) return st;
    ids_scene_draw(cat, &out->images[0], &p, 1);
    out->n_images = 1;
    snprintf(out->prompt, sizeof out->prompt, "USER: " IDS_IMAGE_MARKER "\nDescribe the image. ASSISTANT:");
    snprintf(out->answer, sizeof out->answer, "%s c%d r%d", ids_catalog_word(cat, oa), cx, cy);
    return IDS_OK;
}

ids_status tk_make(const ids_train_config *c, const ids_catalog *cat, ids_task task, uint64_t *rng,
                   int heldout_mode, tk_sample *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    out->task = task;
    if (task >= IDS_TASK_COUNT) return ids__err(err, IDS_ERR_ARG, "unknown task %d", (int)task);
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = c->image_size;
    o.grid = 4;
    o.frames = c->frames;
    o.jitter_pos = 0.12f;
    o.jitter_size = 0.1f;
    static const float sizes[3] = {0.9f, 0.75f, 0.6f};
    o.sizes = sizes;
    o.n_sizes = 3;
    o.repeats = 1000;
    if (task == IDS_TASK_LOCATE) return make_locate(c, cat, rng, heldout_mode, out, err);
    ids_set_kind kind = task_set(task);
    ids_relation rel = task_rel(task);
    for (int attempt = 0; attempt < 100; attempt++) {
        int objs[2];
        pick_pair(c, rng, heldout_mode, &objs[0], &objs[1], &out->heldout);
        o.objects = objs;
        o.n_objects = 2;
        o.seed = ids__rng_splitmix(rng);
        int n;
        ids_status st = ids_stim_count(kind, &o, cat, &n, err);
        if (st) return st;
        ids_stim s;
        if ((st = ids_stim_make(kind, &o, cat, (int)(ids__rng_splitmix(rng) % (uint64_t)n), &s, err))) return st;
        const char *na = ids_catalog_name(cat, s.obj[0].obj), *nb = ids_catalog_name(cat, s.obj[1].obj);
        if (task == IDS_TASK_WHERE) {
            const ids_stim_obj *q = &s.obj[ids__rng_splitmix(rng) & 1];
            set_aux(out, cat, &s, &q, 1, c->image_size, c->frames);
            snprintf(out->prompt, sizeof out->prompt, "USER: " IDS_IMAGE_MARKER "\nWhere is the %s? ASSISTANT:",
                     ids_catalog_name(cat, q->obj));
            snprintf(out->answer, sizeof out->answer, "c%d r%d", q->cell_x, q->cell_y);
            out->images[0] = s.frames[0];
            s.frames[0] = (ids_image){0};
            out->n_images = 1;
            ids_stim_free(&s);
            return IDS_OK;
        }
        if (task == IDS_TASK_DESCRIBE || task == IDS_TASK_TEXT_SPATIAL) {
            bool ab = ids__rng_splitmix(rng) & 1; /* objects listed in random order */
            const ids_stim_obj *first = &s.obj[ab ? 0 : 1], *second = &s.obj[ab ? 1 : 0];
            if (task == IDS_TASK_DESCRIBE) {
                snprintf(out->prompt, sizeof out->prompt, "USER: " IDS_IMAGE_MARKER "\nDescribe the image. ASSISTANT:");
                snprintf(out->answer, sizeof out->answer, "%s c%d r%d %s c%d r%d", ids_catalog_word(cat, first->obj),
                         first->cell_x, first->cell_y, ids_catalog_word(cat, second->obj), second->cell_x, second->cell_y);
                out->images[0] = s.frames[0];
                s.frames[0] = (ids_image){0};
                out->n_images = 1;
                ids_stim_free(&s);
                return IDS_OK;
            }
            /* text-spatial: the scene written out, then a spatial question about it */
            ids_relation r = ids__rng_splitmix(rng) & 1 ? IDS_REL_LEFT_RIGHT : IDS_REL_ABOVE_BELOW;
            if (!s.has[r]) {
                ids_stim_free(&s);
                continue;
            }
            char *q = ids_question(r, na, nb, NULL);
            if (!q) {
                ids_stim_free(&s);
                return ids__err(err, IDS_ERR_NOMEM, "task %s: out of memory", ids_task_name(task));
            }
            const ids_stim_obj *two[2] = {&s.obj[0], &s.obj[1]};
            set_aux(out, cat, &s, two, 2, c->image_size, c->frames);
            snprintf(out->prompt, sizeof out->prompt, "USER: %s c%d r%d , %s c%d r%d .\n%s ASSISTANT:",
                     ids_catalog_name(cat, first->obj), first->cell_x, first->cell_y, ids_catalog_name(cat, second->obj),
                     second->cell_x, second->cell_y, q);
            free(q);
            snprintf(out->answer, sizeof out->answer, "%s", ids_answer_word(r, s.truth[r]));
            snprintf(out->wrong, sizeof out->wrong, "%s", ids_answer_word(r, !s.truth[r]));
            ids_stim_free(&s);
            return IDS_OK;
        }
        if (!s.has[rel]) {
            ids_stim_free(&s);
            continue;
        }
        char *q = ids_question(rel, na, nb, NULL);
        if (!q) {
            ids_stim_free(&s);
            return ids__err(err, IDS_ERR_NOMEM, "task %s: out of memory", ids_task_name(task));
        }
        const ids_stim_obj *two[2] = {&s.obj[0], &s.obj[1]};
        set_aux(out, cat, &s, two, 2, c->image_size, c->frames);
        size_t k = (size_t)snprintf(out->prompt, sizeof out->prompt, "USER: ");
        for (int f = 0; f < s.n_frames; f++) k += (size_t)snprintf(out->prompt + k, sizeof out->prompt - k, IDS_IMAGE_MARKER);
        snprintf(out->prompt + k, sizeof out->prompt - k, "\n%s ASSISTANT:", q);
        free(q);
        snprintf(out->answer, sizeof out->answer, "%s", ids_answer_word(rel, s.truth[rel]));
        snprintf(out->wrong, sizeof out->wrong, "%s", ids_answer_word(rel, !s.truth[rel]));
        out->n_images = s.n_frames < TK_MAX_IMAGES ? s.n_frames : TK_MAX_IMAGES;
        for (int f = 0; f < out->n_images; f++) {
            out->images[f] = s.frames[f];
            s.frames[f] = (ids_image){0};
        }
        ids_stim_free(&s);
        return IDS_OK;
    }
    return ids__err(err, IDS_ERR_RANGE, "task %s: no usable scene found", ids_task_name(task));
}

/* ---- vocabulary ---- */
static const char *const k_words[] = {
    "USER", "ASSISTANT", "the", "to", "left", "or", "right", "of", "above", "below", "in", "front",
    "behind", "near", "far", "from", "appear", "before", "after", "between", "and", "yes", "no", "image",
    "Is", "Does", "Describe", "Where", "is", "what", "colour", "shape", "a", "an", "object", "objects"};
static const char *const k_starts[] = {"Is", "Does", "Describe", "Where"}; /* after "\n": no space mark */
static const char *const k_punct[] = {":", "?", ".", ","};

typedef struct {
    char **s;
    float *score;
    int32_t *type;
    int n, cap;
} vocab;

static int vocab_has(const vocab *v, const char *t) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->s[i], t)) return i;
    return -1;
}

static bool vocab_add(vocab *v, const char *t, float score, int type) {
    if (vocab_has(v, t) >= 0) return true;
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 512;
        char **s = ids__realloc(v->s, sizeof *s * (size_t)cap);
        float *sc = s ? ids__realloc(v->score, sizeof *sc * (size_t)cap) : NULL;
        int32_t *ty = sc ? ids__realloc(v->type, sizeof *ty * (size_t)cap) : NULL;
        if (s) v->s = s;
        if (sc) v->score = sc;
        if (ty) v->type = ty;
        if (!ty) return false;
        v->cap = cap;
    }
    v->s[v->n] = ids__strdup(t);
    if (!v->s[v->n]) return false;
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
    return true;
}

/* A word token and every prefix of it (in characters, at least 2) as lower-scored tokens. */
static bool add_word(vocab *v, const char *w) {
    if (!vocab_add(v, w, 0.0f, IDS_TOKEN_NORMAL)) return false;
    size_t n = strlen(w);
    for (size_t k = 1; k < n; k++) {
        if (((unsigned char)w[k] & 0xC0) == 0x80) continue; /* inside a UTF-8 sequence */
        char pre[64];
        snprintf(pre, sizeof pre, "%.*s", (int)k, w);
        if (k == 1 || (k == 3 && !strcmp(pre, "\xE2\x96\x81"))) continue; /* single characters */
        if (!vocab_add(v, pre, -1.0f, IDS_TOKEN_NORMAL)) return false;
    }
    return true;
}

ids_status tk_write_vocab(ids_gguf_writer *w, ids_err *err) {
    vocab v = {0};
    bool ok = vocab_add(&v, "<unk>", 0, IDS_TOKEN_UNKNOWN) && vocab_add(&v, "<s>", 0, IDS_TOKEN_CONTROL) &&
              vocab_add(&v, "</s>", 0, IDS_TOKEN_CONTROL);
    for (int b = 0; b < 256 && ok; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        ok = vocab_add(&v, t, 0, IDS_TOKEN_BYTE);
    }
    ok = ok && vocab_add(&v, "\xE2\x96\x81", 0, IDS_TOKEN_NORMAL);
    char t[64];
#define WORD(str)                                                 \
    do {                                                          \
        snprintf(t, sizeof t, "\xE2\x96\x81%s", str);             \
        ok = ok && add_word(&v, t);                               \
    } while (0)
    for (size_t i = 0; i < sizeof k_words / sizeof *k_words; i++) WORD(k_words[i]);
    for (int i = 0; i < ids_catalog_n_colors(); i++) WORD(ids_catalog_color_name(i));
    for (int i = 0; i < ids_catalog_n_shapes(); i++) WORD(ids_catalog_shape_name(i));
    for (int i = 0; i < 16; i++) {
        char cell[16];
        snprintf(cell, sizeof cell, "c%d", i);
        WORD(cell);
        snprintf(cell, sizeof cell, "r%d", i);
        WORD(cell);
        snprintf(cell, sizeof cell, "f%d", i);
        WORD(cell);
    }
    for (size_t i = 0; i < sizeof k_punct / sizeof *k_punct; i++) {
        ok = ok && vocab_add(&v, k_punct[i], 0, IDS_TOKEN_NORMAL);
        WORD(k_punct[i]);
    }
#undef WORD
    for (size_t i = 0; i < sizeof k_starts / sizeof *k_starts; i++) ok = ok && add_word(&v, k_starts[i]);
    ids_status st = ok ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "vocabulary: out of memory");
    if (!st) st = ids_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", err);
    if (!st) st = ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.s, (uint64_t)v.n, err);
    if (!st) st = ids_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IDS_GGUF_FLOAT32, v.score, (uint64_t)v.n, err);
    if (!st) st = ids_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IDS_GGUF_INT32, v.type, (uint64_t)v.n, err);
    if (!st) st = ids_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err);
    if (!st) st = ids_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err);
    if (!st) st = ids_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err);
    if (!st) st = ids_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err);
    for (int i = 0; i < v.n; i++) free(v.s[i]);
    free(v.s);
    free(v.score);
    free(v.type);
    return st;
}
