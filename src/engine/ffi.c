/* The flat API for foreign callers (engine.h, "Flat API"): handles, integers, strings and
 * caller-owned arrays over the VLM, the sequence builder, the run context and its hooks. */
#include "idscope/engine.h"
#include "base/internal.h"
#include "engine/ffi.h"

/* ---- errors ------------------------------------------------------------------------------ */

static _Thread_local char last_msg[IDS_ERR_MSG_MAX];

/* Keep the message of a failed call for ids_ffi_error; returns st. */
ids_status ids__ffi_keep(ids_status st, const ids_err *err) {
    if (st) snprintf(last_msg, sizeof last_msg, "%s", err->msg[0] ? err->msg : ids_status_name(st));
    return st;
}
#define keep ids__ffi_keep

int ids_ffi_version(void) { return IDS_FFI_VERSION; }
const char *ids_ffi_error(void) { return last_msg; }
void ids_ffi_free(void *p) { free(p); }

/* ---- the model --------------------------------------------------------------------------- */

ids_status ids_ffi_vlm_load(ids_vlm **out, const char *text_path, const char *mmproj_path) {
    ids_err err = {0};
    *out = NULL;
    if (!text_path || (!mmproj_path && !ids_hf_is_dir(text_path))) /* a Hugging Face folder holds both parts */
        return keep(ids__err(&err, IDS_ERR_ARG, "load: a model path is missing"), &err);
    return keep(ids_vlm_load(out, text_path, mmproj_path, &err), &err);
}

long long ids_ffi_vlm_size(const ids_vlm *v, const char *name) {
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(v));
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    const struct { const char *name; long long value; } sizes[] = {
        {"n_vocab", hp->n_vocab}, {"n_embd", hp->n_embd}, {"n_layer", hp->n_layer}, {"n_head", hp->n_head},
        {"n_head_kv", hp->n_head_kv}, {"head_dim", hp->head_dim}, {"n_ff", hp->n_ff}, {"n_ctx_train", hp->n_ctx_train},
        {"vision_n_embd", vp->n_embd}, {"vision_n_head", vp->n_head}, {"vision_n_layer", vp->n_run},
        {"image_size", vp->image_size}, {"patch_size", vp->patch_size}, {"dynamic", vp->dynamic},
        {"n_xattn", hp->n_xattn},
    };
    for (size_t i = 0; name && i < sizeof sizes / sizeof *sizes; i++)
        if (!strcmp(name, sizes[i].name)) return sizes[i].value;
    int k; /* "xattn_layer.K": the K-th cross-attention layer (mllama) */
    char end;
    if (name && sscanf(name, "xattn_layer.%d%c", &k, &end) == 1 && k >= 0 && k < hp->n_xattn) return hp->xattn_layer[k];
    return -1;
}

const char *ids_ffi_vlm_text(const ids_vlm *v, const char *name) {
    const ids_model *m = ids_vlm_model(v);
    if (!name) return NULL;
    if (!strcmp(name, "arch")) return ids_model_hparams(m)->arch;
    if (!strcmp(name, "projector")) return ids_vision_params(ids_vlm_vision(v))->projector;
    if (!strcmp(name, "text_path")) return ids_gguf_path(ids_model_gguf(m));
    if (!strcmp(name, "mmproj_path")) return ids_vlm_mmproj_path(v);
    if (!strcmp(name, "tokenizer")) return ids_tokenizer_kind_of(ids_model_tokenizer(m)) == IDS_TOK_SPM ? "spm" : "bpe";
    return NULL;
}

ids_status ids_ffi_prompt(const ids_vlm *v, const char *question, int n_images, char **out) {
    ids_err err = {0};
    if (!question || n_images < 0 || n_images > 4096)
        return keep(ids__err(&err, IDS_ERR_ARG, "prompt: no question, or %d images (0..4096)", n_images), &err);
    *out = ids_vlm_prompt(v, question, n_images);
    return *out ? IDS_OK : keep(ids__err(&err, IDS_ERR_NOMEM, "prompt: out of memory"), &err);
}

ids_status ids_ffi_tokenize(const ids_vlm *v, const char *text, int add_bos, int parse_special, int32_t **ids,
                            int *n_ids) {
    ids_err err = {0};
    size_t n = 0;
    *ids = NULL;
    *n_ids = 0;
    ids_tokenize_opts o = {.add_bos = add_bos != 0, .parse_special = parse_special != 0};
    ids_status st = ids_tokenize(ids_model_tokenizer(ids_vlm_model(v)), text, strlen(text), o, ids, &n, &err);
    if (!st && n > (size_t)INT32_MAX) {
        free(*ids);
        *ids = NULL;
        st = ids__err(&err, IDS_ERR_RANGE, "tokenize: %zu tokens are too many", n);
    }
    if (!st) *n_ids = (int)n;
    return keep(st, &err);
}

ids_status ids_ffi_detokenize(const ids_vlm *v, const int32_t *ids, int n_ids, int render_special, char **text) {
    ids_err err = {0};
    const ids_tokenizer *t = ids_model_tokenizer(ids_vlm_model(v));
    *text = NULL;
    for (int i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= ids_tokenizer_n_vocab(t))
            return keep(ids__err(&err, IDS_ERR_RANGE, "detokenize: token %d (item %d) is outside the vocabulary "
                                 "(0..%d)", ids[i], i, ids_tokenizer_n_vocab(t) - 1), &err);
    return keep(ids_detokenize(t, ids, n_ids > 0 ? (size_t)n_ids : 0, render_special != 0, true, text, &err), &err);
}

ids_status ids_ffi_token_text(const ids_vlm *v, int32_t id, char **text) {
    ids_err err = {0};
    const ids_tokenizer *t = ids_model_tokenizer(ids_vlm_model(v));
    *text = NULL;
    if (id < 0 || id >= ids_tokenizer_n_vocab(t))
        return keep(ids__err(&err, IDS_ERR_RANGE, "token %d is outside the vocabulary (0..%d)", id,
                             ids_tokenizer_n_vocab(t) - 1), &err);
    *text = ids_token_to_text(t, id);
    return *text ? IDS_OK : keep(ids__err(&err, IDS_ERR_NOMEM, "token text: out of memory"), &err);
}

ids_status ids_ffi_word_token(const ids_vlm *v, const char *word, int32_t *id) {
    ids_err err = {0};
    *id = ids_tokenizer_word_token(ids_model_tokenizer(ids_vlm_model(v)), word ? word : "", &err);
    return *id < 0 ? keep(err.code ? err.code : IDS_ERR_NOT_FOUND, &err) : IDS_OK;
}

ids_status ids_ffi_cvec_read(const char *path, int *n, int *n_embd, int **layers, float **dirs) {
    ids_err err = {0};
    ids_cvec c;
    *n = *n_embd = 0;
    *layers = NULL;
    *dirs = NULL;
    ids_status st = path ? ids_cvec_read(path, &c, &err) : ids__err(&err, IDS_ERR_ARG, "control vector: no path");
    if (st) return keep(st, &err);
    *n = c.n;
    *n_embd = c.n_embd;
    *layers = c.layer;
    *dirs = c.dir;
    return IDS_OK;
}

/* ---- runs -------------------------------------------------------------------------------- */

typedef struct ffi_variant {
    ids_hook *hooks;
    int **rows; /* each hook's resolved rows (its selector's list) */
    int n, cap;
} ffi_variant;

struct ids_ffi_run {
    const ids_vlm *v;
    ids_seq *seq;
    int n_images;               /* image blocks in the sequence */
    float *vis;                 /* the tower's blocks, image after image */
    size_t *vis_off;            /* [n_images] */
    int *vis_tokens;            /* [n_images] */
    ids_ctx *ctx;
    ids_ctx_params cp;
    int gen_room;
    bool have_clean;
    ffi_variant *vars;
    int n_vars;
};

static void clear_variants(ids_ffi_run *r) {
    for (int k = 0; k < r->n_vars; k++) {
        for (int i = 0; i < r->vars[k].n; i++) free(r->vars[k].rows[i]);
        free(r->vars[k].hooks);
        free(r->vars[k].rows);
    }
    free(r->vars);
    r->vars = NULL;
    r->n_vars = 0;
}

void ids_ffi_run_free(ids_ffi_run *r) {
    if (!r) return;
    clear_variants(r);
    ids_ctx_free(r->ctx);
    ids_seq_free(r->seq);
    free(r->vis);
    free(r->vis_off);
    free(r->vis_tokens);
    free(r);
}

void ids_ffi_run_clear(ids_ffi_run *r) { clear_variants(r); }

/* Image i of the caller: its pixels (borrowed) or its file (loaded into *img, owned). */
static ids_status run_image(int i, const char *const *paths, const uint8_t *const *rgb, const int *width,
                            const int *height, ids_image *img, bool *owned, ids_err *err) {
    *owned = false;
    if (rgb && rgb[i]) {
        char what[32];
        snprintf(what, sizeof what, "image %d", i);
        if (!width || !height) return ids__err(err, IDS_ERR_ARG, "image %d: pixels without a width and height", i);
        ids_status st = ids_image_check_size(width[i], height[i], what, err);
        if (st) return st;
        img->w = width[i];
        img->h = height[i];
        img->rgb = (uint8_t *)(uintptr_t)rgb[i]; /* read only: the tower takes const images */
        return IDS_OK;
    }
    if (!paths || !paths[i]) return ids__err(err, IDS_ERR_ARG, "image %d: neither a file nor pixels", i);
    *owned = true;
    return ids_image_load(img, paths[i], err);
}

/* Room for the tower's blocks of every image (prompts without <video>). */
static ids_status run_plan_vision(ids_ffi_run *r, const ids_image *imgs, int n, ids_err *err) {
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(r->v));
    r->vis_off = ids__calloc((size_t)(n ? n : 1), sizeof *r->vis_off);
    r->vis_tokens = ids__calloc((size_t)(n ? n : 1), sizeof *r->vis_tokens);
    if (!r->vis_off || !r->vis_tokens) return ids__err(err, IDS_ERR_NOMEM, "run: out of memory");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        ids_vplan pl;
        ids_status st = ids_vision_plan(ids_vlm_vision(r->v), &imgs[i], 1, &pl, err);
        if (st) return st;
        r->vis_off[i] = total;
        r->vis_tokens[i] = pl.n_tokens;
        total += (size_t)vp->n_run * pl.n_tokens * vp->n_embd;
    }
    if (total && !(r->vis = ids__malloc(total * sizeof(float))))
        return ids__err(err, IDS_ERR_NOMEM, "run: out of memory for the tower's blocks (%zu floats)", total);
    return IDS_OK;
}

ids_status ids_ffi_run_new(ids_ffi_run **out, const ids_vlm *v, const char *prompt, int n_images,
                           const char *const *paths, const uint8_t *const *rgb, const int *width,
                           const int *height, int video_frames, int keep_vision, int n_threads) {
    ids_err err = {0};
    *out = NULL;
    if (!prompt) return keep(ids__err(&err, IDS_ERR_ARG, "run: no prompt"), &err);
    if (n_images < 0 || n_images > 4096)
        return keep(ids__err(&err, IDS_ERR_ARG, "run: %d images (0..4096)", n_images), &err);
    ids_ffi_run *r = ids__calloc(1, sizeof *r);
    ids_image *imgs = ids__calloc((size_t)(n_images ? n_images : 1), sizeof *imgs);
    bool *owned = ids__calloc((size_t)(n_images ? n_images : 1), sizeof *owned);
    ids_status st = r && imgs && owned ? IDS_OK : ids__err(&err, IDS_ERR_NOMEM, "run: out of memory");
    if (!st) {
        r->v = v;
        r->cp = ids_ctx_default_params();
        r->cp.n_threads = n_threads;
        r->gen_room = 64;
    }
    for (int i = 0; !st && i < n_images; i++) st = run_image(i, paths, rgb, width, height, &imgs[i], &owned[i], &err);
    if (!st && keep_vision) {
        if (video_frames > 0)
            st = ids__err(&err, IDS_ERR_ARG, "run: the tower's blocks are kept only for prompts without %s",
                          IDS_VIDEO_MARKER);
        else
            st = run_plan_vision(r, imgs, n_images, &err);
    }
    if (!st)
        st = ids_vlm_build_video_seq(v, prompt, imgs, n_images, video_frames, n_threads, keep_vision ? r->vis : NULL,
                                     &r->seq, &err);
    if (!st) {
        r->n_images = 0;
        for (int i = 0; i < ids_seq_len(r->seq); i++) {
            const ids_row *row = ids_seq_row(r->seq, i);
            if (row->kind == IDS_ROW_IMAGE && row->image + 1 > r->n_images) r->n_images = row->image + 1;
        }
    }
    for (int i = 0; imgs && owned && i < n_images; i++)
        if (owned[i]) ids_image_free(&imgs[i]);
    free(imgs);
    free(owned);
    if (st) {
        ids_ffi_run_free(r);
        return keep(st, &err);
    }
    *out = r;
    return IDS_OK;
}

ids_status ids_ffi_run_set(ids_ffi_run *r, const char *key, long long value) {
    ids_err err = {0};
    if (r->ctx) return keep(ids__err(&err, IDS_ERR_ARG, "run: %s is set before the first run", key ? key : "(null)"), &err);
    if (!key) return keep(ids__err(&err, IDS_ERR_ARG, "run: setting without a name"), &err);
    long long lo = 0, hi = 0;
    if (!strcmp(key, "threads")) lo = 0, hi = 256;
    else if (!strcmp(key, "precision")) lo = 0, hi = IDS_PREC_COUNT - 1;
    else if (!strcmp(key, "max_rows")) lo = ids_seq_len(r->seq), hi = 1 << 20;
    else if (!strcmp(key, "gen_room")) lo = 0, hi = 1 << 16;
    else return keep(ids__err(&err, IDS_ERR_ARG, "run: unknown setting '%s' (threads, precision, max_rows, gen_room)", key), &err);
    if (value < lo || value > hi)
        return keep(ids__err(&err, IDS_ERR_RANGE, "run: %s %lld is outside %lld..%lld", key, value, lo, hi), &err);
    if (!strcmp(key, "threads")) r->cp.n_threads = (int)value;
    else if (!strcmp(key, "precision")) r->cp.precision = (ids_precision)value;
    else if (!strcmp(key, "max_rows")) r->cp.max_rows = (int)value;
    else r->gen_room = (int)value;
    return IDS_OK;
}

int ids_ffi_run_len(const ids_ffi_run *r) { return ids_seq_len(r->seq); }
int ids_ffi_run_n_images(const ids_ffi_run *r) { return r->n_images; }

void ids_ffi_run_rows(const ids_ffi_run *r, int32_t *out) {
    for (int i = 0; i < ids_seq_len(r->seq); i++) {
        const ids_row *row = ids_seq_row(r->seq, i);
        int32_t *o = out + (size_t)i * 9;
        o[0] = row->token;
        o[1] = row->kind;
        o[2] = row->image;
        o[3] = row->cell_row;
        o[4] = row->cell_col;
        o[5] = row->frame;
        o[6] = row->pos[0];
        o[7] = row->pos[1];
        o[8] = row->pos[2];
    }
}

ids_status ids_ffi_run_vision(const ids_ffi_run *r, int image, int *n_blocks, int *n_tokens, int *width,
                              const float **data) {
    ids_err err = {0};
    if (!r->vis) return keep(ids__err(&err, IDS_ERR_ARG, "run: the tower's blocks were not kept (keep_vision)"), &err);
    if (image < 0 || image >= r->n_images)
        return keep(ids__err(&err, IDS_ERR_RANGE, "run: image %d is outside 0..%d", image, r->n_images - 1), &err);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(r->v));
    *n_blocks = vp->n_run;
    *n_tokens = r->vis_tokens[image];
    *width = vp->n_embd;
    *data = r->vis + r->vis_off[image];
    return IDS_OK;
}

/* A selector (see ids_ffi_run_select) to row indices. */
static ids_status resolve_rows(const ids_ffi_run *r, const char *spec, int **rows, int *n, ids_err *err) {
    const ids_tokenizer *t = ids_model_tokenizer(ids_vlm_model(r->v));
    if (!spec || !*spec) return ids__err(err, IDS_ERR_ARG, "selector: empty (all, last, text, image, image:K, "
                                         "word:WORD[:N] or an index list)");
    if (!strncmp(spec, "image:", 6)) {
        const char *k = spec + 6;
        if (!*k || strspn(k, "0123456789") != strlen(k) || strlen(k) > 6)
            return ids__err(err, IDS_ERR_ARG, "selector '%s': image:K needs an image number K", spec);
        ids_sel sel = {.kind = IDS_SEL_IMAGE, .image = atoi(k)};
        return ids_sel_resolve(r->seq, t, &sel, rows, n, err);
    }
    return ids_parse_positions(spec, r->seq, t, rows, n, err);
}

ids_status ids_ffi_run_select(const ids_ffi_run *r, const char *rows, int **out, int *n_rows) {
    ids_err err = {0};
    return keep(resolve_rows(r, rows, out, n_rows, &err), &err);
}

static const char *site_name(int site) {
    static const char *const names[] = {"resid", "attn_out", "mlp_out", "attn_probs", "deepstack", "xattn_out",
                                        "xattn_gate"};
    return site >= 0 && site < IDS_SITE_COUNT ? names[site] : "?";
}

/* Checks of a hook against the model and the sequence; its width. */
static ids_status check_hook(const ids_ffi_run *r, int site, int layer, int action, int *width, ids_err *err) {
    const ids_hparams *hp = ids_model_hparams(ids_vlm_model(r->v));
    if (site < 0 || site >= IDS_SITE_COUNT)
        return ids__err(err, IDS_ERR_ARG, "hook: unknown site %d (0 resid, 1 attn_out, 2 mlp_out, 3 attn_probs, 4 deepstack, "
                        "5 xattn_out, 6 xattn_gate)", site);
    const int max_layer = site == IDS_SITE_RESID ? hp->n_layer : site == IDS_SITE_DEEPSTACK ? hp->n_deepstack - 1
                                                                                          : hp->n_layer - 1;
    if (layer < 0 || layer > max_layer)
        return ids__err(err, IDS_ERR_RANGE, "hook: %s layer %d is outside 0..%d (the model has %d blocks)",
                        site_name(site), layer, max_layer, hp->n_layer);
    if (action < -1 || action >= IDS_ACT_CALLBACK)
        return ids__err(err, IDS_ERR_ARG, "hook: unknown action %d (0 capture, 1 add, 2 replace, 3 scale)", action);
    if (site == IDS_SITE_ATTN_PROBS && (action == IDS_ACT_ADD || action == IDS_ACT_REPLACE))
        return ids__err(err, IDS_ERR_ARG, "hook: attention probabilities (layer %d) can be captured or scaled, "
                        "not %s", layer, action == IDS_ACT_ADD ? "added to" : "replaced");
    *width = site == IDS_SITE_ATTN_PROBS ? hp->n_head * ids_seq_len(r->seq) : site == IDS_SITE_XATTN_GATE ? 2 : hp->n_embd;
    return IDS_OK;
}

static ids_status add_hook(ids_ffi_run *r, int variant, const ids_hook *h, int *rows, ids_err *err) {
    if (variant >= r->n_vars) {
        ffi_variant *nv = ids__realloc(r->vars, sizeof *nv * (size_t)(variant + 1));
        if (!nv) return ids__err(err, IDS_ERR_NOMEM, "hook: out of memory");
        memset(nv + r->n_vars, 0, sizeof *nv * (size_t)(variant + 1 - r->n_vars));
        r->vars = nv;
        r->n_vars = variant + 1;
    }
    ffi_variant *fv = &r->vars[variant];
    if (fv->n == fv->cap) {
        int cap = fv->cap ? 2 * fv->cap : 8;
        ids_hook *hk = ids__realloc(fv->hooks, sizeof *hk * (size_t)cap);
        if (hk) fv->hooks = hk;
        int **rw = hk ? ids__realloc(fv->rows, sizeof *rw * (size_t)cap) : NULL;
        if (rw) fv->rows = rw;
        if (!hk || !rw) return ids__err(err, IDS_ERR_NOMEM, "hook: out of memory");
        fv->cap = cap;
    }
    fv->hooks[fv->n] = *h;
    fv->rows[fv->n++] = rows;
    return IDS_OK;
}

ids_status ids_ffi_run_hook(ids_ffi_run *r, int variant, int site, int layer, const char *rows, int action,
                            float *data, long long len, float scale, int per_row, int *n_rows, int *width) {
    ids_err err = {0};
    int w = 0, n = 0, *list = NULL;
    if (variant < 0 || variant >= (1 << 16))
        return keep(ids__err(&err, IDS_ERR_RANGE, "hook: variant %d is outside 0..65535", variant), &err);
    ids_status st = check_hook(r, site, layer, action, &w, &err);
    if (!st) st = resolve_rows(r, rows, &list, &n, &err);
    if (!st) {
        if (n_rows) *n_rows = n;
        if (width) *width = w;
    }
    if (!st && action >= 0) {
        long long need = action == IDS_ACT_SCALE ? 0 : (action == IDS_ACT_ADD && !per_row) ? w : (long long)n * w;
        if (action != IDS_ACT_SCALE && (!data || len != need))
            st = ids__err(&err, IDS_ERR_ARG, "hook at %s layer %d, rows '%s': the %s holds %lld floats, %lld expected "
                          "(%d row%s x %d)", site_name(site), layer, rows, action == IDS_ACT_CAPTURE ? "capture buffer"
                          : action == IDS_ACT_ADD ? "vector" : "replacement", data ? len : 0, need,
                          need == w ? 1 : n, need == w ? "" : "s", w);
    }
    if (!st && action >= 0) {
        ids_hook h = {.site = (ids_site_kind)site, .layer = layer, .action = (ids_action)action,
                      .sel = {.kind = IDS_SEL_LIST, .list = list, .n_list = n}, .scale = scale,
                      .per_row = per_row != 0, .len = (size_t)(len > 0 ? len : 0)};
        if (action == IDS_ACT_CAPTURE) h.out = data;
        else if (action == IDS_ACT_ADD) h.vec = data;
        else if (action == IDS_ACT_REPLACE) h.src = data;
        st = add_hook(r, variant, &h, list, &err);
        if (!st) list = NULL; /* the variant owns it */
    }
    free(list);
    return keep(st, &err);
}

static ids_status run_ctx(ids_ffi_run *r, ids_err *err) {
    if (r->ctx) return IDS_OK;
    const int n = ids_seq_len(r->seq);
    ids_ctx_params cp = r->cp;
    cp.n_ctx = n + r->gen_room;
    if (cp.max_rows <= 0) cp.max_rows = 4 * n > cp.n_ctx ? 4 * n : cp.n_ctx;
    cp.keep_clean = true;
    return ids_ctx_new(&r->ctx, ids_vlm_model(r->v), cp, err);
}

static ids_status check_logits_mode(int mode, ids_err *err) {
    if (mode < IDS_LOGITS_NONE || mode > IDS_LOGITS_ALL)
        return ids__err(err, IDS_ERR_ARG, "run: unknown logits mode %d (0 none, 1 last, 2 all)", mode);
    return IDS_OK;
}

static ids_status prefill(ids_ffi_run *r, const ids_hook *hooks, int n_hooks, int logits_mode, float *logits,
                          const int32_t *cand, int n_cand, float *cand_logprob, ids_err *err) {
    ids_status st = check_logits_mode(logits_mode, err);
    if (!st && n_cand < 0) st = ids__err(err, IDS_ERR_ARG, "run: %d candidates", n_cand);
    if (!st) st = run_ctx(r, err);
    if (st) return st;
    ids_run_opts o = {.logits = (ids_logits_mode)logits_mode, .cand = cand, .n_cand = cand ? n_cand : 0};
    ids_run_out ou = {.logits = logits_mode ? logits : NULL, .cand_logprob = cand ? cand_logprob : NULL};
    r->have_clean = false;
    st = ids_ctx_prefill(r->ctx, r->seq, hooks, n_hooks, &o, &ou, err);
    r->have_clean = st == IDS_OK;
    return st;
}

ids_status ids_ffi_run_prefill(ids_ffi_run *r, int logits_mode, float *logits, const int32_t *cand, int n_cand,
                               float *cand_logprob) {
    ids_err err = {0};
    const ids_hook *h = r->n_vars ? r->vars[0].hooks : NULL;
    const int nh = r->n_vars ? r->vars[0].n : 0;
    return keep(prefill(r, h, nh, logits_mode, logits, cand, n_cand, cand_logprob, &err), &err);
}

ids_status ids_ffi_run_variants(ids_ffi_run *r, int n_variants, int logits_mode, float *logits, const int32_t *cand,
                                int n_cand, float *cand_logprob, int full_recompute) {
    ids_err err = {0};
    if (n_variants < 1 || n_variants > (1 << 16))
        return keep(ids__err(&err, IDS_ERR_RANGE, "run: %d variants (1..65536)", n_variants), &err);
    ids_status st = check_logits_mode(logits_mode, &err);
    if (!st && n_cand < 0) st = ids__err(&err, IDS_ERR_ARG, "run: %d candidates", n_cand);
    if (!st && !r->have_clean) st = prefill(r, NULL, 0, IDS_LOGITS_NONE, NULL, NULL, 0, NULL, &err);
    if (st) return keep(st, &err);
    ids_variant *vars = ids__calloc((size_t)n_variants, sizeof *vars);
    ids_run_out *outs = ids__calloc((size_t)n_variants, sizeof *outs);
    if (!vars || !outs) st = ids__err(&err, IDS_ERR_NOMEM, "run: out of memory for %d variants", n_variants);
    const size_t n_vocab = (size_t)ids_model_hparams(ids_vlm_model(r->v))->n_vocab;
    const size_t per = logits_mode == IDS_LOGITS_ALL ? (size_t)ids_seq_len(r->seq) * n_vocab : n_vocab;
    for (int k = 0; !st && k < n_variants; k++) {
        if (k < r->n_vars) vars[k] = (ids_variant){r->vars[k].hooks, r->vars[k].n};
        outs[k].logits = logits && logits_mode ? logits + (size_t)k * per : NULL;
        outs[k].cand_logprob = cand && cand_logprob ? cand_logprob + (size_t)k * n_cand : NULL;
    }
    if (!st) {
        ids_run_opts o = {.full_recompute = full_recompute != 0, .logits = (ids_logits_mode)logits_mode,
                          .cand = cand, .n_cand = cand ? n_cand : 0};
        st = ids_ctx_run_batch(r->ctx, vars, n_variants, &o, outs, &err);
    }
    free(vars);
    free(outs);
    return keep(st, &err);
}

ids_status ids_ffi_run_generate(ids_ffi_run *r, int variant, int n_new, int32_t *tokens, int *n_out) {
    ids_err err = {0};
    *n_out = 0;
    if (variant < -1 || variant >= (1 << 16))
        return keep(ids__err(&err, IDS_ERR_RANGE, "generate: variant %d is outside -1..65535", variant), &err);
    if (n_new < 0 || n_new > r->gen_room)
        return keep(ids__err(&err, IDS_ERR_RANGE, "generate: %d new tokens is outside 0..%d (gen_room)", n_new, r->gen_room),
                    &err);
    ids_status st = r->have_clean ? IDS_OK : prefill(r, NULL, 0, IDS_LOGITS_NONE, NULL, NULL, 0, NULL, &err);
    const bool hooked = variant >= 0 && variant < r->n_vars;
    if (!st)
        st = ids_ctx_generate(r->ctx, hooked ? r->vars[variant].hooks : NULL, hooked ? r->vars[variant].n : 0, n_new,
                              tokens, n_out, &err);
    return keep(st, &err);
}
