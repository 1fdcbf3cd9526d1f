/* Trainer for the bundled model: a LLaVA-1.5-layout VLM (CLIP-style ViT + mlp projector + llama
 * decoder) trained in C on the stimulus engine's scenes and videos. All parameters live in one flat
 * array with a table of named views (the GGUF names they are exported under); activations of a
 * batch live in one allocation. Forward/backward use the kernels of tops.c. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/train.h"
#include "train/train.h"
#include "train/tops.h"
#include "base/pool.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ids_train_default_config(ids_train_config *c) {
    memset(c, 0, sizeof *c);
    c->image_size = 64;
    c->patch_size = 16;
    c->vit_width = 64;
    c->vit_layers = 3;
    c->vit_heads = 4;
    c->vit_ff = 256;
    c->width = 128;
    c->layers = 6;
    c->heads = 4;
    c->ff = 352;
    c->frames = 8;
    c->holdout = 0.1f;
    c->batch = 32;
    c->warmup = 100;
    c->eval_every = 250;
    c->checkpoint_every = 0;
    c->lr = 2e-3f;
    c->min_lr = 1e-4f;
    c->weight_decay = 0.01f;
    c->clip = 1.0f;
    c->seed = 1;
    c->n_stages = 1;
    c->stages[0].steps = 2000;
    for (int t = 0; t < IDS_TASK_COUNT; t++) c->stages[0].weights[t] = 1.0f;
    c->threads = 0;
    c->shards = 2;
}

/* ---------------------------------------------------------------------------------------- */
/* Parameters                                                                                 */

typedef struct {
    char name[64];
    int file;        /* 0: text.gguf, 1: mmproj.gguf, 2: training only (not exported) */
    int n_dims;
    int64_t ne[4];
    size_t off, n;
    float init_std;  /* 0: ones (norm weights) or zeros (biases, by name); < 0: zeros */
    bool decay;
} pinfo;

typedef struct {
    /* dims */
    int S, P, G, NP, VT, KP, Dv, Lv, Hv, Fv, D, L, H, F, V;
    /* parameter table */
    pinfo *p;
    int np, cap;
    size_t total;
    float *w, *g, *m1, *m2; /* weights, grads, Adam moments */
    float *arena;           /* activations of a batch, kept between steps */
    size_t arena_cap;
    float aux_weight;       /* auxiliary location loss (0: off) and the residual it reads */
    int aux_layer;
} tmodel;

static int add_param(tmodel *m, const char *name, int file, int nd, int64_t a, int64_t b, int64_t c, int64_t d,
                     float std, bool decay) {
    if (m->np == m->cap) {
        int cap = m->cap ? 2 * m->cap : 128;
        pinfo *p = ids__realloc(m->p, sizeof *p * (size_t)cap);
        if (!p) return -1;
        m->p = p;
        m->cap = cap;
    }
    pinfo *pi = &m->p[m->np];
    memset(pi, 0, sizeof *pi);
    snprintf(pi->name, sizeof pi->name, "%s", name);
    pi->file = file;
    pi->n_dims = nd;
    pi->ne[0] = a, pi->ne[1] = b, pi->ne[2] = c, pi->ne[3] = d;
    pi->n = (size_t)a * (size_t)b * (size_t)c * (size_t)d;
    pi->off = m->total;
    pi->init_std = std;
    pi->decay = decay;
    m->total += (pi->n + 15) & ~(size_t)15;
    return m->np++;
}

/* Indices of the views used by the forward pass. */
typedef struct {
    int q, qb, k, kb, v, vb, o, ob, ln1w, ln1b, ln2w, ln2b, fc1, fc1b, fc2, fc2b;
} vlayer_ix;
typedef struct {
    int attn_norm, q, k, v, o, ffn_norm, gate, up, down;
} dlayer_ix;
typedef struct {
    int patch, cls, pos, pre_w, pre_b, mm0, mm0b, mm2, mm2b, tok, out_norm, out, aux, auxb;
    vlayer_ix vl[16];
    dlayer_ix dl[32];
} param_ix;

static float *W(const tmodel *m, int i) { return m->w + m->p[i].off; }
static float *Gd(const tmodel *m, int i) { return m->g + m->p[i].off; }

static ids_status build_params(tmodel *m, param_ix *ix, const ids_train_config *c, int n_vocab, ids_err *err) {
    m->S = c->image_size, m->P = c->patch_size, m->G = c->image_size / c->patch_size, m->NP = m->G * m->G;
    m->VT = m->NP + 1, m->KP = 3 * m->P * m->P;
    m->Dv = c->vit_width, m->Lv = c->vit_layers, m->Hv = c->vit_heads, m->Fv = c->vit_ff;
    m->D = c->width, m->L = c->layers, m->H = c->heads, m->F = c->ff, m->V = n_vocab;
    if (m->S % m->P || m->Dv % m->Hv || m->D % m->H || (m->D / m->H) % 2 || m->Lv > 16 || m->L > 32 || m->Lv < 1 ||
        m->L < 1)
        return ids__err(err, IDS_ERR_ARG, "train config: inconsistent sizes (image %d / patch %d, vit %d / %d heads, "
                        "width %d / %d heads, at most 16 vit and 32 decoder layers)", m->S, m->P, m->Dv, m->Hv, m->D, m->H);
    /* Fan-in scaled initialisation (1/sqrt(fan_in); projections back into a residual stream also
     * 1/sqrt(2 * layers)). A GPT-2-style 0.02 is far too small for layers this narrow: the
     * projector's output then carries ~1% image-dependent signal under a learned constant and the
     * decoder never learns to read the image (measured: describe stuck at the no-information loss). */
    const float s = 0.02f;
    const float fv = 1.0f / sqrtf((float)m->Dv), fd = 1.0f / sqrtf((float)m->D);
    const float so_v = fv / sqrtf(2.0f * m->Lv), so_vf = 1.0f / sqrtf((float)m->Fv) / sqrtf(2.0f * m->Lv);
    const float so_d = fd / sqrtf(2.0f * m->L), so_df = 1.0f / sqrtf((float)m->F) / sqrtf(2.0f * m->L);
    char nm[64];
    ix->patch = add_param(m, "v.patch_embd.weight", 1, 4, m->P, m->P, 3, m->Dv, 1.0f / sqrtf((float)m->KP), true);
    ix->cls = add_param(m, "v.class_embd", 1, 1, m->Dv, 1, 1, 1, s, false);
    ix->pos = add_param(m, "v.position_embd.weight", 1, 2, m->Dv, m->VT, 1, 1, s, false);
    ix->pre_w = add_param(m, "v.pre_ln.weight", 1, 1, m->Dv, 1, 1, 1, 0, false);
    ix->pre_b = add_param(m, "v.pre_ln.bias", 1, 1, m->Dv, 1, 1, 1, 0, false);
    for (int l = 0; l < m->Lv; l++) {
        vlayer_ix *v = &ix->vl[l];
#define VP(field, suffix, nd, a, b, std, dec) \
    snprintf(nm, sizeof nm, "v.blk.%d.%s", l, suffix); v->field = add_param(m, nm, 1, nd, a, b, 1, 1, std, dec);
        VP(ln1w, "ln1.weight", 1, m->Dv, 1, 0, false);
        VP(ln1b, "ln1.bias", 1, m->Dv, 1, 0, false);
        VP(q, "attn_q.weight", 2, m->Dv, m->Dv, fv, true);
        VP(qb, "attn_q.bias", 1, m->Dv, 1, 0, false);
        VP(k, "attn_k.weight", 2, m->Dv, m->Dv, fv, true);
        VP(kb, "attn_k.bias", 1, m->Dv, 1, 0, false);
        VP(v, "attn_v.weight", 2, m->Dv, m->Dv, fv, true);
        VP(vb, "attn_v.bias", 1, m->Dv, 1, 0, false);
        VP(o, "attn_out.weight", 2, m->Dv, m->Dv, so_v, true);
        VP(ob, "attn_out.bias", 1, m->Dv, 1, 0, false);
        VP(ln2w, "ln2.weight", 1, m->Dv, 1, 0, false);
        VP(ln2b, "ln2.bias", 1, m->Dv, 1, 0, false);
        VP(fc1, "ffn_up.weight", 2, m->Dv, m->Fv, fv, true);
        VP(fc1b, "ffn_up.bias", 1, m->Fv, 1, 0, false);
        VP(fc2, "ffn_down.weight", 2, m->Fv, m->Dv, so_vf, true);
        VP(fc2b, "ffn_down.bias", 1, m->Dv, 1, 0, false);
#undef VP
    }
    ix->mm0 = add_param(m, "mm.0.weight", 1, 2, m->Dv, m->D, 1, 1, fv, true);
    ix->mm0b = add_param(m, "mm.0.bias", 1, 1, m->D, 1, 1, 1, 0, false);
    ix->mm2 = add_param(m, "mm.2.weight", 1, 2, m->D, m->D, 1, 1, fd, true);
    ix->mm2b = add_param(m, "mm.2.bias", 1, 1, m->D, 1, 1, 1, 0, false);
    ix->tok = add_param(m, "token_embd.weight", 0, 2, m->D, m->V, 1, 1, 1.0f, true);
    for (int l = 0; l < m->L; l++) {
        dlayer_ix *d = &ix->dl[l];
#define DP(field, suffix, nd, a, b, std, dec) \
    snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix); d->field = add_param(m, nm, 0, nd, a, b, 1, 1, std, dec);
        DP(attn_norm, "attn_norm.weight", 1, m->D, 1, 0, false);
        DP(q, "attn_q.weight", 2, m->D, m->D, fd, true);
        DP(k, "attn_k.weight", 2, m->D, m->D, fd, true);
        DP(v, "attn_v.weight", 2, m->D, m->D, fd, true);
        DP(o, "attn_output.weight", 2, m->D, m->D, so_d, true);
        DP(ffn_norm, "ffn_norm.weight", 1, m->D, 1, 0, false);
        DP(gate, "ffn_gate.weight", 2, m->D, m->F, fd, true);
        DP(up, "ffn_up.weight", 2, m->D, m->F, fd, true);
        DP(down, "ffn_down.weight", 2, m->F, m->D, so_df, true);
#undef DP
    }
    ix->out_norm = add_param(m, "output_norm.weight", 0, 1, m->D, 1, 1, 1, 0, false);
    ix->out = add_param(m, "output.weight", 0, 2, m->D, m->V, 1, 1, fd, true);
    /* training-only read-out of the auxiliary location loss (last, so the others' init is unchanged) */
    /* zero: no gradient reaches the model until the read-out has learned something (a random
     * read-out's large early errors otherwise flow back into the tower and undo its perception) */
    ix->aux = add_param(m, "aux.location.weight", 2, 2, m->D, 4, 1, 1, -1.0f, false);
    ix->auxb = add_param(m, "aux.location.bias", 2, 1, 4, 1, 1, 1, 0, false);
    m->aux_weight = c->aux_weight;
    m->aux_layer = c->aux_layer;
    if (c->aux_weight < 0 || (c->aux_weight > 0 && (c->aux_layer < 1 || c->aux_layer > m->L)))
        return ids__err(err, IDS_ERR_ARG, "train config: aux_weight %g must be >= 0 and aux_layer %d within 1..%d",
                        (double)c->aux_weight, c->aux_layer, m->L);
    for (int i = 0; i < m->np; i++)
        if (m->p[i].off > m->total || !m->p) return ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    m->w = ids__calloc(m->total, sizeof(float));
    m->g = ids__calloc(m->total, sizeof(float));
    m->m1 = ids__calloc(m->total, sizeof(float));
    m->m2 = ids__calloc(m->total, sizeof(float));
    if (!m->w || !m->g || !m->m1 || !m->m2) return ids__err(err, IDS_ERR_NOMEM, "train: out of memory for %zu parameters", m->total);
    return IDS_OK;
}

static void init_params(tmodel *m, uint64_t seed) {
    uint64_t rng = seed ^ 0x1234567ull;
    for (int i = 0; i < m->np; i++) {
        pinfo *p = &m->p[i];
        float *w = m->w + p->off;
        bool bias = strstr(p->name, ".bias") != NULL;
        for (size_t k = 0; k < p->n; k++) {
            if (p->init_std == 0) {
                w[k] = bias ? 0.0f : 1.0f;
                continue;
            }
            if (p->init_std < 0) { /* zeros */
                w[k] = 0.0f;
                continue;
            }
            w[k] = p->init_std * (float)ids__rng_splitmix_normal(&rng);
        }
    }
}

static void free_model(tmodel *m) {
    free(m->arena);
    free(m->p);
    free(m->w);
    free(m->g);
    free(m->m1);
    free(m->m2);
}

/* ---------------------------------------------------------------------------------------- */
/* Batches                                                                                    */

typedef struct {
    int n;          /* rows */
    int32_t *tok;   /* [T] token, -1 on image rows */
    int32_t *img;   /* [T] image row index in the batch (tok == -1) */
    int32_t *tgt;   /* [T] next-token target (-1 none) */
    int n_aux;      /* object words with location targets */
    int aux_pos[2];
    float aux_val[2][4];
    bool aux_mask[4];
} tseq;

typedef struct {
    int B, T, n_images;
    int nt_norm, aux_norm; /* the whole batch's target and auxiliary-value counts when this is one
                              shard of it (losses are means over the whole batch); 0: this batch's own */
    tseq *seq;
    float *pixels; /* [n_images, 3, S, S] */
} tbatch;

static void free_batch(tbatch *b) {
    for (int i = 0; b->seq && i < b->B; i++) {
        free(b->seq[i].tok);
        free(b->seq[i].img);
        free(b->seq[i].tgt);
    }
    free(b->seq);
    free(b->pixels);
    memset(b, 0, sizeof *b);
}

static const float k_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, k_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Tokens of a sample as the engine builds them: prompt parts split at <image> (BOS once, specials
 * parsed), image rows, then the answer words and </s> as targets. */
static ids_status sample_to_seq(const tk_sample *s, const ids_tokenizer *tok, int np, int img0, tseq *out, ids_err *err) {
    int32_t buf[1024];
    int n = 0;
    const char *mk = IDS_IMAGE_MARKER, *part = s->prompt;
    for (int i = 0; i <= s->n_images; i++) {
        const char *m = i < s->n_images ? strstr(part, mk) : NULL;
        size_t len = m ? (size_t)(m - part) : strlen(part);
        int32_t *ids;
        size_t k;
        ids_tokenize_opts o = {.add_bos = i == 0, .parse_special = true};
        ids_status st = ids_tokenize(tok, part, len, o, &ids, &k, err);
        if (st) return st;
        for (size_t j = 0; j < k && n < 1000; j++) buf[n++] = ids[j];
        free(ids);
        if (!m) break;
        for (int r = 0; r < np && n < 1000; r++) buf[n++] = -2 - (img0 + i) * np - r; /* image row marker */
        part = m + strlen(mk);
    }
    const int n_prompt = n;
    char words[128];
    snprintf(words, sizeof words, "%s", s->answer);
    char *save = NULL; /* strtok_r: batches are made on several threads at once */
    for (char *w = strtok_r(words, " ", &save); w && n < 1000; w = strtok_r(NULL, " ", &save)) {
        int32_t id = ids_tokenizer_word_token(tok, w, err);
        if (id < 0) return err ? err->code : IDS_ERR_NOT_FOUND;
        buf[n++] = id;
    }
    buf[n++] = ids_tokenizer_eos(tok);
    out->n = n;
    /* the question's object words: the last occurrence of each shape word in the prompt */
    out->n_aux = 0;
    for (int k = 0; k < s->n_aux; k++) {
        char w[40];
        snprintf(w, sizeof w, "%s", s->aux_word[k]);
        int32_t id = ids_tokenizer_word_token(tok, w, err);
        if (id < 0) return err ? err->code : IDS_ERR_NOT_FOUND;
        int pos = -1;
        for (int i = 0; i < n_prompt; i++)
            if (buf[i] == id) pos = i;
        if (pos < 0) return ids__err(err, IDS_ERR_NOT_FOUND, "train: object word '%s' not in the prompt '%s'", w, s->prompt);
        out->aux_pos[out->n_aux] = pos;
        memcpy(out->aux_val[out->n_aux++], s->aux_val[k], sizeof s->aux_val[k]);
    }
    memcpy(out->aux_mask, s->aux_mask, sizeof out->aux_mask);
    out->tok = ids__malloc(sizeof(int32_t) * (size_t)n);
    out->img = ids__malloc(sizeof(int32_t) * (size_t)n);
    out->tgt = ids__malloc(sizeof(int32_t) * (size_t)n);
    if (!out->tok || !out->img || !out->tgt) return ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    for (int i = 0; i < n; i++) {
        out->tok[i] = buf[i] <= -2 ? -1 : buf[i];
        out->img[i] = buf[i] <= -2 ? -2 - buf[i] : -1;
        out->tgt[i] = (i + 1 < n && i + 1 >= n_prompt) ? buf[i + 1] : -1;
    }
    return IDS_OK;
}

static ids_status make_batch(const ids_train_config *c, const ids_catalog *cat, const ids_tokenizer *tok, ids_task task,
                             int B, uint64_t *rng, int heldout_mode, tbatch *b, ids_err *err) {
    memset(b, 0, sizeof *b);
    b->B = B;
    b->seq = ids__calloc((size_t)B, sizeof *b->seq);
    const int S = c->image_size, np = (S / c->patch_size) * (S / c->patch_size);
    if (!b->seq) return ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    tk_sample *sm = ids__calloc((size_t)B, sizeof *sm);
    if (!sm) {
        free_batch(b);
        return ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    }
    ids_status st = IDS_OK;
    int n_img = 0;
    for (int i = 0; i < B && !st; i++) {
        st = tk_make(c, cat, task, rng, heldout_mode, &sm[i], err);
        if (!st) st = sample_to_seq(&sm[i], tok, np, n_img, &b->seq[i], err);
        n_img += sm[i].n_images;
        if (!st && b->seq[i].n > b->T) b->T = b->seq[i].n;
    }
    b->n_images = n_img;
    if (!st && n_img) {
        b->pixels = ids__malloc(sizeof(float) * (size_t)n_img * 3 * S * S);
        if (!b->pixels) st = ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
        for (int i = 0, k = 0; !st && i < B; i++)
            for (int f = 0; f < sm[i].n_images; f++, k++)
                for (int ch = 0; ch < 3; ch++)
                    for (int p = 0; p < S * S; p++) {
                        float x = (float)((double)sm[i].images[f].rgb[3 * p + ch] * (1.0 / 255.0));
                        b->pixels[((size_t)k * 3 + ch) * S * S + p] = (x - k_mean[ch]) / k_std[ch];
                    }
    }
    for (int i = 0; i < B; i++) tk_free(&sm[i]);
    free(sm);
    if (st) free_batch(b);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward and backward                                                                       */

typedef struct { /* saved activations of one ViT layer */
    float *x, *xn1, *mean1, *rstd1, *q, *k, *v, *probs, *att, *xm, *xn2, *mean2, *rstd2, *f1, *f1a;
} vacts;
typedef struct { /* one decoder layer */
    float *x, *xn1, *rstd1, *q, *k, *v, *probs, *att, *xm, *xn2, *rstd2, *g, *u, *h;
} dacts;

typedef struct {
    float *arena;
    size_t used, cap;
    /* vision */
    float *patches, *pe, *v0, *v0n, *v0mean, *v0rstd, *vout, *feat, *h0, *h0a, *imgrows;
    vacts va[16];
    /* decoder */
    float *x0;
    dacts da[32];
    float *xf, *xfn, *rstdf, *rows, *logits, *dlogits;
    int *tgt, n_tgt, *tgt_row, *lens;
    float *scratch;
} tacts;

static float *grab(tacts *a, size_t n) {
    float *p = a->arena + a->used;
    a->used += (n + 15) & ~(size_t)15;
    IDS_ASSERT(a->used <= a->cap);
    return p;
}

/* Sizes first (counting pass with arena == NULL), then pointers. */
static size_t plan_acts(tacts *a, const tmodel *m, int NI, int B, int T, int NT) {
    const size_t VT = (size_t)NI * m->VT, BT = (size_t)B * T;
    size_t n = 0;
#define S(x) n += ((x) + 15) & ~(size_t)15
    S((size_t)NI * m->NP * m->KP); S((size_t)NI * m->NP * m->Dv); S(VT * m->Dv); S(VT * m->Dv); S(VT); S(VT);
    for (int l = 0; l < m->Lv; l++) {
        S(VT * m->Dv); S(VT * m->Dv); S(VT); S(VT); S(VT * m->Dv); S(VT * m->Dv); S(VT * m->Dv);
        S((size_t)NI * m->Hv * m->VT * m->VT); S(VT * m->Dv); S(VT * m->Dv); S(VT * m->Dv); S(VT); S(VT);
        S(VT * m->Fv); S(VT * m->Fv);
    }
    S(VT * m->Dv); S((size_t)NI * m->NP * m->Dv); S((size_t)NI * m->NP * m->D); S((size_t)NI * m->NP * m->D);
    S((size_t)NI * m->NP * m->D);
    S(BT * m->D);
    for (int l = 0; l < m->L; l++) {
        S(BT * m->D); S(BT * m->D); S(BT); S(BT * m->D); S(BT * m->D); S(BT * m->D); S((size_t)B * m->H * T * T);
        S(BT * m->D); S(BT * m->D); S(BT * m->D); S(BT); S(BT * m->F); S(BT * m->F); S(BT * m->F);
    }
    S(BT * m->D); S(BT * m->D); S(BT); S((size_t)NT * m->D); S((size_t)NT * m->V); S((size_t)NT * m->V);
    size_t tt = (size_t)T * T > (size_t)m->VT * m->VT ? (size_t)T * T : (size_t)m->VT * m->VT;
    S(tt);
#undef S
    if (!a) return n;
    a->patches = grab(a, (size_t)NI * m->NP * m->KP);
    a->pe = grab(a, (size_t)NI * m->NP * m->Dv);
    a->v0 = grab(a, VT * m->Dv);
    a->v0n = grab(a, VT * m->Dv);
    a->v0mean = grab(a, VT);
    a->v0rstd = grab(a, VT);
    for (int l = 0; l < m->Lv; l++) {
        vacts *v = &a->va[l];
        v->x = grab(a, VT * m->Dv), v->xn1 = grab(a, VT * m->Dv), v->mean1 = grab(a, VT), v->rstd1 = grab(a, VT);
        v->q = grab(a, VT * m->Dv), v->k = grab(a, VT * m->Dv), v->v = grab(a, VT * m->Dv);
        v->probs = grab(a, (size_t)NI * m->Hv * m->VT * m->VT);
        v->att = grab(a, VT * m->Dv), v->xm = grab(a, VT * m->Dv), v->xn2 = grab(a, VT * m->Dv);
        v->mean2 = grab(a, VT), v->rstd2 = grab(a, VT), v->f1 = grab(a, VT * m->Fv), v->f1a = grab(a, VT * m->Fv);
    }
    a->vout = grab(a, VT * m->Dv);
    a->feat = grab(a, (size_t)NI * m->NP * m->Dv);
    a->h0 = grab(a, (size_t)NI * m->NP * m->D);
    a->h0a = grab(a, (size_t)NI * m->NP * m->D);
    a->imgrows = grab(a, (size_t)NI * m->NP * m->D);
    a->x0 = grab(a, BT * m->D);
    for (int l = 0; l < m->L; l++) {
        dacts *d = &a->da[l];
        d->x = grab(a, BT * m->D), d->xn1 = grab(a, BT * m->D), d->rstd1 = grab(a, BT);
        d->q = grab(a, BT * m->D), d->k = grab(a, BT * m->D), d->v = grab(a, BT * m->D);
        d->probs = grab(a, (size_t)B * m->H * T * T);
        d->att = grab(a, BT * m->D), d->xm = grab(a, BT * m->D), d->xn2 = grab(a, BT * m->D), d->rstd2 = grab(a, BT);
        d->g = grab(a, BT * m->F), d->u = grab(a, BT * m->F), d->h = grab(a, BT * m->F);
    }
    a->xf = grab(a, BT * m->D);
    a->xfn = grab(a, BT * m->D);
    a->rstdf = grab(a, BT);
    a->rows = grab(a, (size_t)NT * m->D);
    a->logits = grab(a, (size_t)NT * m->V);
    a->dlogits = grab(a, (size_t)NT * m->V);
    a->scratch = grab(a, tt);
    return n;
}

/* Vision tower + projector: pixels -> image rows [NI*NP, D]. */
static void vision_forward(const tmodel *m, const param_ix *ix, tacts *a, const float *pixels, int NI) {
    const int S = m->S, P = m->P, G = m->G, NP = m->NP, VT = m->VT, Dv = m->Dv, KP = m->KP;
    for (int i = 0; i < NI; i++)
        for (int py = 0; py < G; py++)
            for (int px = 0; px < G; px++) {
                float *row = a->patches + ((size_t)i * NP + py * G + px) * KP;
                for (int ch = 0; ch < 3; ch++)
                    for (int ky = 0; ky < P; ky++)
                        memcpy(row + (ch * P + ky) * P, pixels + ((size_t)i * 3 + ch) * S * S + (size_t)(py * P + ky) * S + px * P,
                               sizeof(float) * (size_t)P);
            }
    tops_matmul_forward(a->pe, a->patches, W(m, ix->patch), NULL, NI * NP, KP, Dv);
    for (int i = 0; i < NI; i++) {
        float *x = a->v0 + (size_t)i * VT * Dv;
        memcpy(x, W(m, ix->cls), sizeof(float) * (size_t)Dv);
        memcpy(x + Dv, a->pe + (size_t)i * NP * Dv, sizeof(float) * (size_t)NP * Dv);
        const float *pos = W(m, ix->pos);
        for (size_t k = 0; k < (size_t)VT * Dv; k++) x[k] += pos[k];
    }
    const int M = NI * VT;
    tops_layernorm_forward(a->v0n, a->v0mean, a->v0rstd, a->v0, W(m, ix->pre_w), W(m, ix->pre_b), M, Dv, 1e-5f);
    const float *x = a->v0n;
    for (int l = 0; l < m->Lv; l++) {
        const vlayer_ix *L = &ix->vl[l];
        vacts *v = &a->va[l];
        memcpy(v->x, x, sizeof(float) * (size_t)M * Dv);
        tops_layernorm_forward(v->xn1, v->mean1, v->rstd1, v->x, W(m, L->ln1w), W(m, L->ln1b), M, Dv, 1e-5f);
        tops_matmul_forward(v->q, v->xn1, W(m, L->q), W(m, L->qb), M, Dv, Dv);
        tops_matmul_forward(v->k, v->xn1, W(m, L->k), W(m, L->kb), M, Dv, Dv);
        tops_matmul_forward(v->v, v->xn1, W(m, L->v), W(m, L->vb), M, Dv, Dv);
        tops_attention_forward(v->att, v->probs, v->q, v->k, v->v, NI, VT, m->Hv, Dv / m->Hv, false, NULL);
        tops_matmul_forward(v->xm, v->att, W(m, L->o), W(m, L->ob), M, Dv, Dv);
        for (size_t k = 0; k < (size_t)M * Dv; k++) v->xm[k] += v->x[k];
        tops_layernorm_forward(v->xn2, v->mean2, v->rstd2, v->xm, W(m, L->ln2w), W(m, L->ln2b), M, Dv, 1e-5f);
        tops_matmul_forward(v->f1, v->xn2, W(m, L->fc1), W(m, L->fc1b), M, Dv, m->Fv);
        tops_quickgelu_forward(v->f1a, v->f1, (size_t)M * m->Fv);
        float *out = l + 1 < m->Lv ? a->va[l + 1].x : a->vout;
        tops_matmul_forward(out, v->f1a, W(m, L->fc2), W(m, L->fc2b), M, m->Fv, Dv);
        for (size_t k = 0; k < (size_t)M * Dv; k++) out[k] += v->xm[k];
        x = out;
    }
    for (int i = 0; i < NI; i++)
        memcpy(a->feat + (size_t)i * NP * Dv, a->vout + ((size_t)i * VT + 1) * Dv, sizeof(float) * (size_t)NP * Dv);
    tops_matmul_forward(a->h0, a->feat, W(m, ix->mm0), W(m, ix->mm0b), NI * NP, Dv, m->D);
    tops_gelu_forward(a->h0a, a->h0, (size_t)NI * NP * m->D);
    tops_matmul_forward(a->imgrows, a->h0a, W(m, ix->mm2), W(m, ix->mm2b), NI * NP, m->D, m->D);
}

static void vision_backward(const tmodel *m, const param_ix *ix, tacts *a, float *dimg, int NI, float *tmp1, float *tmp2) {
    const int NP = m->NP, VT = m->VT, Dv = m->Dv, M = NI * VT, D = m->D;
    /* projector */
    float *dh0a = tmp1, *dh0 = tmp2;
    memset(dh0a, 0, sizeof(float) * (size_t)NI * NP * D);
    tops_matmul_backward(dh0a, Gd(m, ix->mm2), Gd(m, ix->mm2b), dimg, a->h0a, W(m, ix->mm2), NI * NP, D, D);
    memset(dh0, 0, sizeof(float) * (size_t)NI * NP * D);
    tops_gelu_backward(dh0, dh0a, a->h0, (size_t)NI * NP * D);
    float *dx = tmp1; /* [M, Dv]: gradient of the tower's output stream */
    memset(dx, 0, sizeof(float) * (size_t)M * Dv);
    float *dfeat = tmp2 + (size_t)NI * NP * D;
    memset(dfeat, 0, sizeof(float) * (size_t)NI * NP * Dv);
    tops_matmul_backward(dfeat, Gd(m, ix->mm0), Gd(m, ix->mm0b), dh0, a->feat, W(m, ix->mm0), NI * NP, Dv, D);
    for (int i = 0; i < NI; i++)
        memcpy(dx + ((size_t)i * VT + 1) * Dv, dfeat + (size_t)i * NP * Dv, sizeof(float) * (size_t)NP * Dv);
    /* blocks, last to first; scratch buffers carved from tmp2 */
    float *dxm = tmp2, *df1a = dxm + (size_t)M * Dv, *df1 = df1a + (size_t)M * m->Fv, *dxn = df1 + (size_t)M * m->Fv,
          *datt = dxn + (size_t)M * Dv, *dq = datt + (size_t)M * Dv, *dk = dq + (size_t)M * Dv, *dv = dk + (size_t)M * Dv;
    for (int l = m->Lv - 1; l >= 0; l--) {
        const vlayer_ix *L = &ix->vl[l];
        vacts *v = &a->va[l];
        memcpy(dxm, dx, sizeof(float) * (size_t)M * Dv);
        memset(df1a, 0, sizeof(float) * (size_t)M * m->Fv);
        tops_matmul_backward(df1a, Gd(m, L->fc2), Gd(m, L->fc2b), dx, v->f1a, W(m, L->fc2), M, m->Fv, Dv);
        memset(df1, 0, sizeof(float) * (size_t)M * m->Fv);
        tops_quickgelu_backward(df1, df1a, v->f1, (size_t)M * m->Fv);
        memset(dxn, 0, sizeof(float) * (size_t)M * Dv);
        tops_matmul_backward(dxn, Gd(m, L->fc1), Gd(m, L->fc1b), df1, v->xn2, W(m, L->fc1), M, Dv, m->Fv);
        tops_layernorm_backward(dxm, Gd(m, L->ln2w), Gd(m, L->ln2b), dxn, v->xm, W(m, L->ln2w), v->mean2, v->rstd2, M,
                                Dv);
        memcpy(dx, dxm, sizeof(float) * (size_t)M * Dv);
        memset(datt, 0, sizeof(float) * (size_t)M * Dv);
        tops_matmul_backward(datt, Gd(m, L->o), Gd(m, L->ob), dxm, v->att, W(m, L->o), M, Dv, Dv);
        memset(dq, 0, sizeof(float) * (size_t)M * Dv * 3);
        tops_attention_backward(dq, dk, dv, datt, v->probs, v->q, v->k, v->v, NI, VT, m->Hv, Dv / m->Hv, a->scratch);
        memset(dxn, 0, sizeof(float) * (size_t)M * Dv);
        tops_matmul_backward(dxn, Gd(m, L->q), Gd(m, L->qb), dq, v->xn1, W(m, L->q), M, Dv, Dv);
        tops_matmul_backward(dxn, Gd(m, L->k), Gd(m, L->kb), dk, v->xn1, W(m, L->k), M, Dv, Dv);
        tops_matmul_backward(dxn, Gd(m, L->v), Gd(m, L->vb), dv, v->xn1, W(m, L->v), M, Dv, Dv);
        tops_layernorm_backward(dx, Gd(m, L->ln1w), Gd(m, L->ln1b), dxn, v->x, W(m, L->ln1w), v->mean1, v->rstd1, M,
                                Dv);
    }
    /* pre-LN, position and class embeddings, patch embedding */
    memset(dxm, 0, sizeof(float) * (size_t)M * Dv);
    tops_layernorm_backward(dxm, Gd(m, ix->pre_w), Gd(m, ix->pre_b), dx, a->v0, W(m, ix->pre_w), a->v0mean, a->v0rstd, M, Dv);
    float *gpos = Gd(m, ix->pos), *gcls = Gd(m, ix->cls);
    for (int i = 0; i < NI; i++) {
        const float *d = dxm + (size_t)i * VT * Dv;
        for (size_t k = 0; k < (size_t)VT * Dv; k++) gpos[k] += d[k];
        for (int k = 0; k < Dv; k++) gcls[k] += d[k];
        memcpy(df1a + (size_t)i * NP * Dv, d + Dv, sizeof(float) * (size_t)NP * Dv);
    }
    tops_matmul_backward(NULL, Gd(m, ix->patch), NULL, df1a, a->patches, W(m, ix->patch), NI * NP, m->KP, Dv);
}

typedef struct {
    double loss;
    double aux_loss;  /* weighted auxiliary location loss (already a mean), 0 when off */
    double aux_r2;    /* fraction of the location targets' variance the read-out explains */
    double aux_se, aux_sy, aux_syy; /* its sums over aux_n values (to merge shards) */
    int aux_n;
    int n_tgt, n_correct;
    int n_first, n_first_correct; /* the first answer token of each sequence (the answer word) */
} fwd_result;

/* One step's working memory: the activations (in the model's kept arena), the target rows and the
 * gradient scratch. */
typedef struct {
    tacts a;
    int NT;                /* target tokens of the batch */
    int *tgt;              /* [2 * (NT + 1)]: a.tgt, then a.tgt_row */
    int *lens;             /* [B] sequence lengths (attention masks) */
    float *gbuf1, *gbuf2;  /* gradient scratch, each the larger of the decoder's and the tower's need */
    float *daux;           /* [B * 2, 4] gradient of the auxiliary read-outs; NULL when there is none */
} tstep;

static void step_free(tstep *s) {
    free(s->daux);
    free(s->tgt);
    free(s->lens);
}

/* Size the activations and scratch for this batch (growing the model's arena when needed) and
 * lay them out. */
static ids_status step_begin(tmodel *m, const tbatch *b, tstep *s, ids_err *err) {
    const int B = b->B, T = b->T, D = m->D, BT = B * T, NI = b->n_images;
    memset(s, 0, sizeof *s);
    int NT = 0;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < b->seq[i].n; t++) NT += b->seq[i].tgt[t] >= 0;
    s->NT = NT;
    tacts *a = &s->a;
    a->cap = plan_acts(NULL, m, NI, B, T, NT);
    /* gradient scratch: the larger of the decoder's and the tower's needs */
    const size_t VTn = (size_t)NI * m->VT;
    size_t g1 = (size_t)BT * (6 * D + 3 * m->F) + (size_t)NT * D, g2 = VTn * (6 * m->Dv + 2 * m->Fv) + (size_t)NI * m->NP * (m->D + m->Dv);
    size_t gs = (g1 > g2 ? g1 : g2) + (size_t)NI * m->NP * m->D * 2 + 64;
    /* the arena is kept between steps (and grown when a batch needs more): fresh pages every step
     * cost a third of the time in page faults */
    const size_t need = a->cap + 2 * gs;
    if (need > m->arena_cap) {
        free(m->arena);
        m->arena = ids__malloc(sizeof(float) * need);
        m->arena_cap = m->arena ? need : 0;
    }
    a->arena = m->arena;
    s->tgt = ids__malloc(sizeof(int) * (size_t)(NT + 1) * 2);
    s->lens = ids__malloc(sizeof(int) * (size_t)B);
    if (!a->arena || !s->tgt || !s->lens)
        return ids__err(err, IDS_ERR_NOMEM, "train: out of memory for a batch of %d x %d rows", B, T);
    plan_acts(a, m, NI, B, T, NT);
    s->gbuf1 = a->arena + a->cap;
    s->gbuf2 = s->gbuf1 + gs;
    a->tgt = s->tgt;
    a->tgt_row = s->tgt + NT + 1;
    for (int i = 0; i < B; i++) s->lens[i] = b->seq[i].n;
    return IDS_OK;
}

/* Decoder input rows (token embeddings or image rows, zeros past each sequence), the target list,
 * the blocks, the final norm and the logits at the target rows. */
static void decoder_forward(const tmodel *m, const param_ix *ix, const tbatch *b, tacts *a, const int *lens, int NT) {
    const int B = b->B, T = b->T, D = m->D, BT = B * T;
    const float *E = W(m, ix->tok);
    for (int i = 0, k = 0; i < B; i++)
        for (int t = 0; t < T; t++) {
            float *row = a->x0 + ((size_t)i * T + t) * D;
            const tseq *s = &b->seq[i];
            if (t >= s->n) memset(row, 0, sizeof(float) * (size_t)D);
            else if (s->tok[t] >= 0) memcpy(row, E + (size_t)s->tok[t] * D, sizeof(float) * (size_t)D);
            else memcpy(row, a->imgrows + (size_t)s->img[t] * D, sizeof(float) * (size_t)D);
            if (t < s->n && s->tgt[t] >= 0) {
                a->tgt[k] = s->tgt[t];
                a->tgt_row[k++] = i * T + t;
            }
        }
    const float *x = a->x0;
    for (int l = 0; l < m->L; l++) {
        const dlayer_ix *L = &ix->dl[l];
        dacts *d = &a->da[l];
        memcpy(d->x, x, sizeof(float) * (size_t)BT * D);
        tops_rmsnorm_forward(d->xn1, d->rstd1, d->x, W(m, L->attn_norm), BT, D, 1e-5f);
        tops_matmul_forward(d->q, d->xn1, W(m, L->q), NULL, BT, D, D);
        tops_matmul_forward(d->k, d->xn1, W(m, L->k), NULL, BT, D, D);
        tops_matmul_forward(d->v, d->xn1, W(m, L->v), NULL, BT, D, D);
        tops_rope_forward(d->q, BT, T, m->H, D / m->H, 10000.0f);
        tops_rope_forward(d->k, BT, T, m->H, D / m->H, 10000.0f);
        tops_attention_forward(d->att, d->probs, d->q, d->k, d->v, B, T, m->H, D / m->H, true, lens);
        tops_matmul_forward(d->xm, d->att, W(m, L->o), NULL, BT, D, D);
        for (size_t k = 0; k < (size_t)BT * D; k++) d->xm[k] += d->x[k];
        tops_rmsnorm_forward(d->xn2, d->rstd2, d->xm, W(m, L->ffn_norm), BT, D, 1e-5f);
        tops_matmul_forward(d->g, d->xn2, W(m, L->gate), NULL, BT, D, m->F);
        tops_matmul_forward(d->u, d->xn2, W(m, L->up), NULL, BT, D, m->F);
        tops_swiglu_forward(d->h, d->g, d->u, (size_t)BT * m->F);
        float *out = l + 1 < m->L ? a->da[l + 1].x : a->xf;
        tops_matmul_forward(out, d->h, W(m, L->down), NULL, BT, m->F, D);
        for (size_t k = 0; k < (size_t)BT * D; k++) out[k] += d->xm[k];
        x = out;
    }
    tops_rmsnorm_forward(a->xfn, a->rstdf, a->xf, W(m, ix->out_norm), BT, D, 1e-5f);
    for (int k = 0; k < NT; k++) memcpy(a->rows + (size_t)k * D, a->xfn + (size_t)a->tgt_row[k] * D, sizeof(float) * (size_t)D);
    tops_matmul_forward(a->logits, a->rows, W(m, ix->out), NULL, NT, D, m->V);
}

/* The auxiliary location loss: 0.5 w mean over (word, defined value) of (read-out - target)^2,
 * with its gradient of the read-outs in s->daux (left NULL when the batch has no such values). */
static ids_status aux_forward(const tmodel *m, const param_ix *ix, const tbatch *b, tstep *s, fwd_result *res,
                              ids_err *err) {
    const int B = b->B, T = b->T, D = m->D;
    int n_auxv = 0;
    res->aux_loss = res->aux_r2 = res->aux_se = res->aux_sy = res->aux_syy = 0;
    res->aux_n = 0;
    if (m->aux_weight > 0) {
        for (int i = 0; i < B; i++)
            for (int k = 0; k < b->seq[i].n_aux; k++)
                for (int j = 0; j < 4; j++) n_auxv += b->seq[i].aux_mask[j];
    }
    if (!n_auxv) return IDS_OK;
    float *daux = s->daux = ids__calloc((size_t)B * 2 * 4, sizeof(float));
    if (!daux) return ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    const tacts *a = &s->a;
    const float *xs = m->aux_layer < m->L ? a->da[m->aux_layer].x : a->xf, *Wa = W(m, ix->aux), *ba = W(m, ix->auxb);
    const int norm = b->aux_norm > 0 ? b->aux_norm : n_auxv;
    double se = 0, sy = 0, syy = 0;
    for (int i = 0; i < B; i++)
        for (int k = 0; k < b->seq[i].n_aux; k++) {
            const float *xr = xs + ((size_t)i * T + b->seq[i].aux_pos[k]) * D;
            for (int j = 0; j < 4; j++) {
                if (!b->seq[i].aux_mask[j]) continue;
                double p = ba[j];
                for (int c = 0; c < D; c++) p += (double)xr[c] * Wa[(size_t)j * D + c];
                const double e = p - b->seq[i].aux_val[k][j], y = b->seq[i].aux_val[k][j];
                se += e * e, sy += y, syy += y * y;
                daux[((size_t)i * 2 + k) * 4 + j] = (float)(m->aux_weight * e / norm);
            }
        }
    res->aux_loss = 0.5 * m->aux_weight * se / norm;
    res->aux_se = se, res->aux_sy = sy, res->aux_syy = syy, res->aux_n = n_auxv;
    const double var = syy - sy * sy / n_auxv;
    res->aux_r2 = var > 0 ? 1.0 - se / var : 0;
    return IDS_OK;
}

/* Accuracy of the first answer token of each sequence (the answer word). */
static void first_token_stats(const tmodel *m, const tbatch *b, const tacts *a, int NT, fwd_result *res) {
    const int T = b->T;
    res->n_first = res->n_first_correct = 0;
    for (int k = 0; k < NT; k++) {
        const int row = a->tgt_row[k], b_i = row / T, t_i = row % T;
        bool first = true;
        for (int t = 0; t < t_i; t++)
            if (b->seq[b_i].tgt[t] >= 0) first = false;
        if (!first) continue;
        const float *l = a->logits + (size_t)k * m->V;
        int am = 0;
        for (int j = 1; j < m->V; j++) if (l[j] > l[am]) am = j;
        res->n_first++;
        res->n_first_correct += am == a->tgt[k];
    }
}

/* Forward: the tower, the decoder, the loss (dlogits too when `train`), the auxiliary loss and the
 * first-token accuracy; the logits at the target rows also into logits_out when given. */
static ids_status model_forward(const tmodel *m, const param_ix *ix, const tbatch *b, tstep *s, bool train,
                                fwd_result *res, float *logits_out, ids_err *err) {
    tacts *a = &s->a;
    const int NT = s->NT;
    if (b->n_images) vision_forward(m, ix, a, b->pixels, b->n_images);
    decoder_forward(m, ix, b, a, s->lens, NT);
    const int nt_norm = b->nt_norm > 0 ? b->nt_norm : NT;
    res->loss = tops_crossentropy(train ? a->dlogits : NULL, a->logits, a->tgt, NT, m->V, nt_norm ? 1.0f / nt_norm : 0.0f,
                                  &res->n_tgt, &res->n_correct);
    if (logits_out) memcpy(logits_out, a->logits, sizeof(float) * (size_t)NT * m->V);
    ids_status st = aux_forward(m, ix, b, s, res, err);
    if (st) return st;
    first_token_stats(m, b, a, NT, res);
    return IDS_OK;
}

/* The auxiliary read-out's gradients (into its weights and into dx, the gradient of the residual
 * it reads). */
static void aux_backward(tmodel *m, const param_ix *ix, const tbatch *b, const tstep *s, float *dx) {
    const int B = b->B, T = b->T, D = m->D;
    const tacts *a = &s->a;
    const float *xs = m->aux_layer < m->L ? a->da[m->aux_layer].x : a->xf, *Wa = W(m, ix->aux);
    float *gW = Gd(m, ix->aux), *gb = Gd(m, ix->auxb);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < b->seq[i].n_aux; k++) {
            const size_t row = (size_t)i * T + b->seq[i].aux_pos[k];
            const float *xr = xs + row * D, *g = s->daux + ((size_t)i * 2 + k) * 4;
            float *dr = dx + row * D;
            for (int j = 0; j < 4; j++) {
                if (g[j] == 0) continue;
                gb[j] += g[j];
                for (int c = 0; c < D; c++) {
                    gW[(size_t)j * D + c] += g[j] * xr[c];
                    dr[c] += g[j] * Wa[(size_t)j * D + c];
                }
            }
        }
}

/* One decoder block backward: dx (the gradient of its output) becomes that of its input. The
 * scratch is carved from gbuf2. */
static void decoder_layer_backward(tmodel *m, const param_ix *ix, const tbatch *b, tacts *a, int l, float *dx,
                                   float *gbuf2) {
    const int B = b->B, T = b->T, D = m->D, BT = B * T;
    float *dxm = gbuf2, *dh = dxm + (size_t)BT * D, *dg = dh + (size_t)BT * m->F, *du = dg + (size_t)BT * m->F,
          *dxn = du + (size_t)BT * m->F, *datt = dxn + (size_t)BT * D, *dq = datt + (size_t)BT * D,
          *dk = dq + (size_t)BT * D, *dv = dk + (size_t)BT * D;
    const dlayer_ix *L = &ix->dl[l];
    dacts *d = &a->da[l];
    memcpy(dxm, dx, sizeof(float) * (size_t)BT * D);
    memset(dh, 0, sizeof(float) * (size_t)BT * m->F);
    tops_matmul_backward(dh, Gd(m, L->down), NULL, dx, d->h, W(m, L->down), BT, m->F, D);
    memset(dg, 0, sizeof(float) * (size_t)BT * m->F * 2);
    tops_swiglu_backward(dg, du, dh, d->g, d->u, (size_t)BT * m->F);
    memset(dxn, 0, sizeof(float) * (size_t)BT * D);
    tops_matmul_backward(dxn, Gd(m, L->gate), NULL, dg, d->xn2, W(m, L->gate), BT, D, m->F);
    tops_matmul_backward(dxn, Gd(m, L->up), NULL, du, d->xn2, W(m, L->up), BT, D, m->F);
    tops_rmsnorm_backward(dxm, Gd(m, L->ffn_norm), dxn, d->xm, W(m, L->ffn_norm), d->rstd2, BT, D);
    memcpy(dx, dxm, sizeof(float) * (size_t)BT * D);
    memset(datt, 0, sizeof(float) * (size_t)BT * D);
    tops_matmul_backward(datt, Gd(m, L->o), NULL, dxm, d->att, W(m, L->o), BT, D, D);
    memset(dq, 0, sizeof(float) * (size_t)BT * D * 3);
    tops_attention_backward(dq, dk, dv, datt, d->probs, d->q, d->k, d->v, B, T, m->H, D / m->H, a->scratch);
    tops_rope_backward(dq, BT, T, m->H, D / m->H, 10000.0f);
    tops_rope_backward(dk, BT, T, m->H, D / m->H, 10000.0f);
    memset(dxn, 0, sizeof(float) * (size_t)BT * D);
    tops_matmul_backward(dxn, Gd(m, L->q), NULL, dq, d->xn1, W(m, L->q), BT, D, D);
    tops_matmul_backward(dxn, Gd(m, L->k), NULL, dk, d->xn1, W(m, L->k), BT, D, D);
    tops_matmul_backward(dxn, Gd(m, L->v), NULL, dv, d->xn1, W(m, L->v), BT, D, D);
    tops_rmsnorm_backward(dx, Gd(m, L->attn_norm), dxn, d->x, W(m, L->attn_norm), d->rstd1, BT, D);
}

/* Backward of a forward with `train`: output head, decoder blocks (with the auxiliary read-out's
 * gradient where it reads), token embeddings and image rows, then the tower. Gradients accumulate
 * into m->g. */
static void model_backward(tmodel *m, const param_ix *ix, const tbatch *b, tstep *s) {
    const int B = b->B, T = b->T, D = m->D, BT = B * T, NI = b->n_images, NT = s->NT;
    tacts *a = &s->a;
    float *gbuf1 = s->gbuf1, *gbuf2 = s->gbuf2;
    /* output head */
    float *drows = gbuf1, *dx = gbuf1 + (size_t)NT * D; /* dx: [BT, D] */
    memset(drows, 0, sizeof(float) * (size_t)NT * D);
    tops_matmul_backward(drows, Gd(m, ix->out), NULL, a->dlogits, a->rows, W(m, ix->out), NT, D, m->V);
    float *dxfn = gbuf2;
    memset(dxfn, 0, sizeof(float) * (size_t)BT * D);
    for (int k = 0; k < NT; k++) {
        float *dst = dxfn + (size_t)a->tgt_row[k] * D;
        for (int c = 0; c < D; c++) dst[c] += drows[(size_t)k * D + c];
    }
    memset(dx, 0, sizeof(float) * (size_t)BT * D);
    tops_rmsnorm_backward(dx, Gd(m, ix->out_norm), dxfn, a->xf, W(m, ix->out_norm), a->rstdf, BT, D);
    for (int l = m->L - 1; l >= 0; l--) {
        if (s->daux && l + 1 == m->aux_layer) aux_backward(m, ix, b, s, dx); /* dx: the residual it reads */
        decoder_layer_backward(m, ix, b, a, l, dx, gbuf2);
    }
    /* embeddings: tokens and image rows */
    float *gE = Gd(m, ix->tok);
    float *dimg = NI ? gbuf2 : NULL;
    if (NI) memset(dimg, 0, sizeof(float) * (size_t)NI * m->NP * D);
    for (int i = 0; i < B; i++)
        for (int t = 0; t < b->seq[i].n; t++) {
            const float *g = dx + ((size_t)i * T + t) * D;
            const tseq *sq = &b->seq[i];
            float *dst = sq->tok[t] >= 0 ? gE + (size_t)sq->tok[t] * D : dimg + (size_t)sq->img[t] * D;
            for (int c = 0; c < D; c++) dst[c] += g[c];
        }
    if (NI) {
        /* dimg lives in gbuf2: copy it aside (gbuf1) before the tower reuses both */
        memcpy(gbuf1, dimg, sizeof(float) * (size_t)NI * m->NP * D);
        vision_backward(m, ix, a, gbuf1, NI, gbuf1 + (size_t)NI * m->NP * D, gbuf2);
    }
}

/* One step on a batch: forward (loss and statistics in *res), and backward when `train`
 * (gradients accumulate into m->g; the optimiser's update is adamw, run by the caller). */
static ids_status model_step(tmodel *m, const param_ix *ix, const tbatch *b, bool train, fwd_result *res,
                             float *logits_out, ids_err *err) {
    tstep s;
    ids_status st = step_begin(m, b, &s, err);
    if (!st) st = model_forward(m, ix, b, &s, train, res, logits_out, err);
    if (!st && train) model_backward(m, ix, b, &s);
    step_free(&s);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Optimiser, export, loop                                                                    */

static float lr_at(const ids_train_config *c, int step, int total) {
    if (step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
    double t = (double)(step - c->warmup) / (double)(total - c->warmup > 1 ? total - c->warmup : 1);
    return c->min_lr + 0.5f * (c->lr - c->min_lr) * (float)(1.0 + cos(M_PI * (t > 1 ? 1 : t)));
}

static double adamw(tmodel *m, const ids_train_config *c, float lr, int t) {
    double norm2 = 0;
    for (size_t i = 0; i < m->total; i++) norm2 += (double)m->g[i] * m->g[i];
    double norm = sqrt(norm2);
    float scale = (c->clip > 0 && norm > c->clip) ? (float)(c->clip / norm) : 1.0f;
    const float b1 = 0.9f, b2 = 0.98f, eps = 1e-8f;
    const float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    for (int k = 0; k < m->np; k++) {
        const pinfo *p = &m->p[k];
        const float wd = p->decay ? c->weight_decay : 0.0f;
        for (size_t i = p->off; i < p->off + p->n; i++) {
            float g = m->g[i] * scale;
            m->m1[i] = b1 * m->m1[i] + (1 - b1) * g;
            m->m2[i] = b2 * m->m2[i] + (1 - b2) * g * g;
            float mh = m->m1[i] / bc1, vh = m->m2[i] / bc2;
            m->w[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * m->w[i]);
        }
    }
    return norm;
}

static ids_status export_model(const tmodel *m, const char *dir, const char *meta_json, ids_err *err) {
    char path[1200];
    ids_status st = IDS_OK;
    for (int file = 0; file < 2 && !st; file++) {
        ids_gguf_writer *w = ids_gguf_writer_new();
        if (!w) return ids__err(err, IDS_ERR_NOMEM, "export: out of memory");
        if (file == 0) {
            st = ids_gguf_writer_set_str(w, "general.architecture", "llama", err);
            if (!st) st = ids_gguf_writer_set_str(w, "general.name", "idscope-tiny-llava", err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.context_length", 2048, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)m->D, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)m->L, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)m->F, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)m->H, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)m->H, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(m->D / m->H), err);
            if (!st) st = ids_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f, err);
            if (!st) st = ids_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, err);
            if (!st) st = tk_write_vocab(w, err);
        } else {
            int32_t fl = m->Lv;
            st = ids_gguf_writer_set_str(w, "general.architecture", "clip", err);
            if (!st) st = ids_gguf_writer_set_str(w, "general.name", "idscope-tiny-llava-mmproj", err);
            if (!st) st = ids_gguf_writer_set_bool(w, "clip.has_vision_encoder", true, err);
            if (!st) st = ids_gguf_writer_set_str(w, "clip.projector_type", "mlp", err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.image_size", (uint32_t)m->S, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.patch_size", (uint32_t)m->P, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.embedding_length", (uint32_t)m->Dv, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)m->Fv, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.projection_dim", (uint32_t)m->D, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)m->Lv, err);
            if (!st) st = ids_gguf_writer_set_u32(w, "clip.vision.attention.head_count", (uint32_t)m->Hv, err);
            if (!st) st = ids_gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f, err);
            if (!st) st = ids_gguf_writer_set_arr(w, "clip.vision.feature_layer", IDS_GGUF_INT32, &fl, 1, err);
            if (!st) st = ids_gguf_writer_set_arr(w, "clip.vision.image_mean", IDS_GGUF_FLOAT32, k_mean, 3, err);
            if (!st) st = ids_gguf_writer_set_arr(w, "clip.vision.image_std", IDS_GGUF_FLOAT32, k_std, 3, err);
            if (!st) st = ids_gguf_writer_set_bool(w, "clip.use_gelu", false, err);
        }
        if (!st && meta_json) st = ids_gguf_writer_set_str(w, "idscope.training", meta_json, err);
        for (int i = 0; i < m->np && !st; i++) {
            const pinfo *p = &m->p[i];
            if (p->file != file) continue;
            st = ids_gguf_writer_add_tensor_f32(w, p->name, IDS_TYPE_F32, p->n_dims, p->ne, m->w + p->off, err);
        }
        snprintf(path, sizeof path, "%.1100s/%s", dir, file == 0 ? "text.gguf" : "mmproj.gguf");
        if (!st) st = ids_gguf_writer_write(w, path, err);
        ids_gguf_writer_free(w);
    }
    return st;
}

static ids_status mkdirs(const char *dir, ids_err *err) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
    return IDS_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Tokenizer of the word-level vocabulary (written to a GGUF and read back, exactly as the engine
 * will read the exported model). */
static ids_status vocab_tokenizer(const char *dir, ids_tokenizer **tok, ids_err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%.1100s/vocab.gguf", dir);
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_status st = w ? ids_gguf_writer_set_str(w, "general.architecture", "llama", err)
                      : ids__err(err, IDS_ERR_NOMEM, "train: out of memory for the vocabulary");
    if (!st) st = tk_write_vocab(w, err);
    if (!st) st = ids_gguf_writer_write(w, path, err);
    ids_gguf_writer_free(w);
    ids_gguf *g = NULL;
    if (!st) st = ids_gguf_open(&g, path, err);
    if (!st) st = ids_tokenizer_load(tok, g, err);
    ids_gguf_close(g);
    remove(path);
    return st;
}

static ids_task pick_task(const ids_train_stage *sg, uint64_t *rng) {
    double tot = 0;
    for (int t = 0; t < IDS_TASK_COUNT; t++) tot += sg->weights[t] > 0 ? sg->weights[t] : 0;
    double r = ids__rng_splitmix_unit(rng) * tot;
    for (int t = 0; t < IDS_TASK_COUNT; t++) {
        if (sg->weights[t] <= 0) continue;
        if (r < sg->weights[t]) return (ids_task)t;
        r -= sg->weights[t];
    }
    return IDS_TASK_LEFT_RIGHT;
}

static ids_status load_exported(tmodel *m, const char *dir, ids_err *err);

/* One training batch split into shards that run side by side (each its own samples, activations
 * and gradient buffer; weights shared read-only). Shards are made from seeds drawn in order and
 * their gradients summed in order, so a run gives the same numbers whatever the thread count. */
#define MAX_SHARDS 16
typedef struct {
    const ids_train_config *c;
    const ids_catalog *cat;
    const ids_tokenizer *tok;
    tmodel *m;
    const param_ix *ix;
    ids_task task;
    int n, phase; /* phase 0: make the shards' batches, 1: forward + backward */
    uint64_t seed[MAX_SHARDS];
    tbatch b[MAX_SHARDS];
    float *g[MAX_SHARDS], *arena[MAX_SHARDS];
    size_t arena_cap[MAX_SHARDS];
    fwd_result r[MAX_SHARDS];
    ids_status st[MAX_SHARDS];
    ids_err err[MAX_SHARDS];
} shard_job;

static void shard_task(void *arg, int s, int n, int tid) {
    (void)n, (void)tid;
    shard_job *j = arg;
    if (j->phase == 0) {
        const int B = j->c->batch / j->n + (s < j->c->batch % j->n);
        uint64_t rng = j->seed[s];
        j->st[s] = make_batch(j->c, j->cat, j->tok, j->task, B, &rng, 0, &j->b[s], &j->err[s]);
        return;
    }
    tmodel wm = *j->m;
    wm.g = j->g[s];
    wm.arena = j->arena[s];
    wm.arena_cap = j->arena_cap[s];
    memset(wm.g, 0, sizeof(float) * wm.total);
    j->st[s] = model_step(&wm, j->ix, &j->b[s], true, &j->r[s], NULL, &j->err[s]);
    j->arena[s] = wm.arena;
    j->arena_cap[s] = wm.arena_cap;
}

/* Make and run one batch of `task`; the summed gradient lands in m->g, the merged result in *r. */
static ids_status sharded_step(shard_job *j, ids_pool *pool, ids_task task, uint64_t *rng, fwd_result *r, long *tokens,
                               ids_err *err) {
    j->task = task;
    for (int s = 0; s < j->n; s++) j->seed[s] = ids__rng_splitmix(rng), j->st[s] = IDS_OK;
    j->phase = 0;
    ids__pool_run(pool, j->n, shard_task, j);
    ids_status st = IDS_OK;
    for (int s = 0; s < j->n; s++)
        if (j->st[s] && !st) {
            st = j->st[s];
            if (err) *err = j->err[s];
        }
    if (!st) {
        int nt = 0, naux = 0;
        for (int s = 0; s < j->n; s++)
            for (int i = 0; i < j->b[s].B; i++) {
                const tseq *q = &j->b[s].seq[i];
                for (int t = 0; t < q->n; t++) nt += q->tgt[t] >= 0;
                for (int k = 0; k < q->n_aux; k++)
                    for (int d = 0; d < 4; d++) naux += q->aux_mask[d];
            }
        for (int s = 0; s < j->n; s++) j->b[s].nt_norm = nt, j->b[s].aux_norm = naux;
        j->phase = 1;
        ids__pool_run(pool, j->n, shard_task, j);
        for (int s = 0; s < j->n; s++)
            if (j->st[s] && !st) {
                st = j->st[s];
                if (err) *err = j->err[s];
            }
    }
    if (!st) {
        memset(r, 0, sizeof *r);
        memcpy(j->m->g, j->g[0], sizeof(float) * j->m->total);
        for (int s = 1; s < j->n; s++)
            for (size_t i = 0; i < j->m->total; i++) j->m->g[i] += j->g[s][i];
        for (int s = 0; s < j->n; s++) {
            const fwd_result *q = &j->r[s];
            r->loss += q->loss, r->aux_loss += q->aux_loss;
            r->aux_se += q->aux_se, r->aux_sy += q->aux_sy, r->aux_syy += q->aux_syy, r->aux_n += q->aux_n;
            r->n_tgt += q->n_tgt, r->n_correct += q->n_correct;
            r->n_first += q->n_first, r->n_first_correct += q->n_first_correct;
            *tokens += (long)j->b[s].B * j->b[s].T;
        }
        const double var = r->aux_n ? r->aux_syy - r->aux_sy * r->aux_sy / r->aux_n : 0;
        r->aux_r2 = var > 0 ? 1.0 - r->aux_se / var : 0;
    }
    for (int s = 0; s < j->n; s++) free_batch(&j->b[s]);
    return st;
}

ids_status ids_train(const ids_train_config *c, const char *out_dir, ids_progress_fn progress, void *user,
                     ids_err *err) {
    ids_status st = ids_train_config_check(c, err);
    if (st || (st = mkdirs(out_dir, err))) return st;
    int total = 0;
    for (int k = 0; k < c->n_stages; k++) total += c->stages[k].steps;
    const int n_threads = c->threads > 0 ? c->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* shards run on the pool, each with a single-threaded OpenBLAS; one shard uses OpenBLAS's threads
     * (restored before returning) */
    const int blas_prev = ids__blas_threads_set(c->shards > 1 ? 1 : n_threads);
    ids_pool *pool = ids__pool_new(c->shards > 1 ? (n_threads < c->shards ? n_threads : c->shards) : 1);
    shard_job job;
    memset(&job, 0, sizeof job);
    ids_tokenizer *tok = NULL;
    ids_catalog *cat = ids_catalog_new();
    tmodel m = {0};
    param_ix ix;
    memset(&ix, 0, sizeof ix);
    FILE *log = NULL;
    if (!cat || !pool) {
        st = ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
        goto done;
    }
    if ((st = vocab_tokenizer(out_dir, &tok, err))) goto done;
    if ((st = build_params(&m, &ix, c, ids_tokenizer_n_vocab(tok), err))) goto done;
    job.c = c, job.cat = cat, job.tok = tok, job.m = &m, job.ix = &ix, job.n = c->shards;
    for (int s = 0; s < job.n; s++)
        if (!(job.g[s] = ids__malloc(sizeof(float) * m.total))) {
            st = ids__err(err, IDS_ERR_NOMEM, "train: out of memory for %d gradient buffers", job.n);
            goto done;
        }
    init_params(&m, c->seed);
    if (c->init_from[0] && (st = load_exported(&m, c->init_from, err))) goto done;
    char path[1200];
    snprintf(path, sizeof path, "%.1100s/train-log.jsonl", out_dir);
    log = fopen(path, "w");
    uint64_t rng = c->seed * 0x9E3779B97F4A7C15ull + 7;
    double t0 = now_s(), loss_acc = 0, r2_acc = 0;
    long tokens = 0;
    int n_acc = 0, ok_acc = 0, tgt_acc = 0;
    int step = 0;
    for (int sgi = 0; sgi < c->n_stages && !st; sgi++) {
        for (int k = 0; k < c->stages[sgi].steps && !st; k++, step++) {
            ids_task task = pick_task(&c->stages[sgi], &rng);
            fwd_result r;
            if ((st = sharded_step(&job, pool, task, &rng, &r, &tokens, err))) break;
            double gnorm = adamw(&m, c, lr_at(c, step, total), step + 1);
            loss_acc += r.n_tgt ? r.loss / r.n_tgt : 0;
            r2_acc += r.aux_r2;
            n_acc++;
            ok_acc += r.n_correct;
            tgt_acc += r.n_tgt;
            if (log) {
                fprintf(log, "{\"step\": %d, \"stage\": %d, \"task\": \"%s\", \"loss\": %.5f, \"token_acc\": %.4f, "
                        "\"aux_loss\": %.5f, \"aux_r2\": %.4f, \"grad_norm\": %.4f, \"lr\": %.6f}\n", step, sgi,
                        ids_task_name(task), r.n_tgt ? r.loss / r.n_tgt : 0, r.n_tgt ? (double)r.n_correct / r.n_tgt : 0,
                        r.aux_loss, r.aux_r2, gnorm, lr_at(c, step, total));
                fflush(log);
            }
            bool report = c->eval_every > 0 && ((step + 1) % c->eval_every == 0 || step + 1 == total);
            if (report) {
                /* held-out check with the trainer's forward: answer-token accuracy per task */
                char line[512];
                int k2 = snprintf(line, sizeof line, "step %d/%d loss %.4f tok-acc %.3f", step + 1, total,
                                  loss_acc / n_acc, tgt_acc ? (double)ok_acc / tgt_acc : 0);
                if (c->aux_weight > 0) k2 += snprintf(line + k2, sizeof line - (size_t)k2, " aux-r2 %.2f", r2_acc / n_acc);
                k2 += snprintf(line + k2, sizeof line - (size_t)k2, " %.0f tok/s | held-out answer accuracy:",
                               tokens / (now_s() - t0));
                uint64_t erng = 4242;
                for (int t = 0; t < IDS_TASK_COUNT && !st; t++) {
                    if (c->stages[sgi].weights[t] <= 0) continue;
                    tbatch eb;
                    if ((st = make_batch(c, cat, tok, (ids_task)t, 32, &erng, 1, &eb, err))) break;
                    fwd_result er;
                    st = model_step(&m, &ix, &eb, false, &er, NULL, err);
                    free_batch(&eb);
                    k2 += snprintf(line + k2, sizeof line - (size_t)k2, " %s %.2f", ids_task_name((ids_task)t),
                                   er.n_first ? (double)er.n_first_correct / er.n_first : 0);
                }
                if (progress) progress(line, step + 1, total, user);
                loss_acc = r2_acc = 0;
                n_acc = ok_acc = tgt_acc = 0;
            } else if (progress) {
                progress("train", step + 1, total, user);
            }
            if (!st && c->checkpoint_every > 0 && (step + 1) % c->checkpoint_every == 0) {
                char dir[1200];
                snprintf(dir, sizeof dir, "%.1100s/ckpt-%06d", out_dir, step + 1);
                if (!(st = mkdirs(dir, err))) st = export_model(&m, dir, NULL, err);
            }
        }
    }
    if (!st) {
        char meta[512];
        snprintf(meta, sizeof meta, "{\"steps\": %d, \"seed\": %llu, \"seconds\": %.0f, \"holdout\": %g, \"frames\": %d}",
                 total, (unsigned long long)c->seed, now_s() - t0, (double)c->holdout, c->frames);
        st = export_model(&m, out_dir, meta, err);
    }
done:
    if (log) fclose(log);
    for (int s = 0; s < MAX_SHARDS; s++) free(job.g[s]), free(job.arena[s]);
    ids__pool_free(pool);
    free_model(&m);
    ids_tokenizer_free(tok);
    ids_catalog_free(cat);
    ids__blas_threads_set(blas_prev);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Config                                                                                     */

/* Every number of a config and its range; the sizes' relations are checked in check_config. */
typedef struct {
    const char *key;
    size_t off;
    long long lo, hi;
} int_key;

#define IK(f, lo, hi) {#f, offsetof(ids_train_config, f), lo, hi}
static const int_key k_int_keys[] = {
    IK(image_size, 8, 512), IK(patch_size, 1, 512), IK(vit_width, 1, 2048), IK(vit_layers, 1, 16),
    IK(vit_heads, 1, 2048), IK(vit_ff, 1, 8192), IK(width, 2, 2048), IK(layers, 1, 32), IK(heads, 1, 2048),
    IK(ff, 1, 8192), IK(frames, 3, 64), IK(batch, 1, 1024), IK(warmup, 0, 100000000), IK(eval_every, 0, 100000000),
    IK(checkpoint_every, 0, 100000000), IK(threads, 0, 1024), IK(shards, 1, MAX_SHARDS), IK(aux_layer, 0, 32),
};
#undef IK

typedef struct {
    const char *key;
    size_t off;
    double lo, hi;
} num_key;

#define NK(f, lo, hi) {#f, offsetof(ids_train_config, f), lo, hi}
static const num_key k_num_keys[] = {
    NK(holdout, 0, 1), NK(lr, 0, 10), NK(min_lr, 0, 10), NK(weight_decay, 0, 10), NK(clip, 0, 1e6), NK(aux_weight, 0, 1e3),
};
#undef NK

#define MAX_STAGE_STEPS 100000000
#define MAX_IMAGE_ROWS 2048 /* image rows of one sample (frames x patches): what the engine's eval takes */

static int *int_at(ids_train_config *c, size_t off) { return (int *)(void *)((char *)c + off); }
static int int_of(const ids_train_config *c, size_t off) { return *(const int *)(const void *)((const char *)c + off); }
static float num_of(const ids_train_config *c, size_t off) { return *(const float *)(const void *)((const char *)c + off); }

/* Every field in its range and the sizes consistent; messages start with `what` and name the key. */
static ids_status check_config(const ids_train_config *c, const char *what, ids_err *err) {
    for (size_t i = 0; i < sizeof k_int_keys / sizeof *k_int_keys; i++) {
        const int_key *k = &k_int_keys[i];
        const int v = int_of(c, k->off);
        if (v < k->lo || v > k->hi)
            return ids__err(err, IDS_ERR_RANGE, "%s: '%s' is %d, expected an integer in %lld..%lld", what, k->key, v, k->lo,
                            k->hi);
    }
    for (size_t i = 0; i < sizeof k_num_keys / sizeof *k_num_keys; i++) {
        const num_key *k = &k_num_keys[i];
        const float v = num_of(c, k->off);
        if (!(v >= k->lo && v <= k->hi))
            return ids__err(err, IDS_ERR_RANGE, "%s: '%s' is %g, expected a number in [%g, %g]", what, k->key, (double)v,
                            k->lo, k->hi);
    }
    if (c->image_size % c->patch_size)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'patch_size' %d does not divide 'image_size' %d", what, c->patch_size,
                        c->image_size);
    const int g = c->image_size / c->patch_size;
    if (g > 32)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'image_size' / 'patch_size' is %d patches a side (at most 32)", what, g);
    if ((long)c->frames * g * g > MAX_IMAGE_ROWS)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'frames' %d x %d patches a frame is more than %d image rows", what,
                        c->frames, g * g, MAX_IMAGE_ROWS);
    if (c->vit_width % c->vit_heads)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'vit_heads' %d does not divide 'vit_width' %d", what, c->vit_heads,
                        c->vit_width);
    if (c->width % c->heads)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'heads' %d does not divide 'width' %d", what, c->heads, c->width);
    if ((c->width / c->heads) % 2)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'width' / 'heads' is %d, which must be even (rotary positions)", what,
                        c->width / c->heads);
    if (c->shards > c->batch)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'shards' %d is more than 'batch' %d", what, c->shards, c->batch);
    if (c->min_lr > c->lr)
        return ids__err(err, IDS_ERR_RANGE, "%s: 'min_lr' %g is above 'lr' %g", what, (double)c->min_lr, (double)c->lr);
    if (c->aux_weight > 0 && (c->aux_layer < 1 || c->aux_layer > c->layers))
        return ids__err(err, IDS_ERR_RANGE, "%s: 'aux_layer' %d is outside 1..%d ('layers'), needed when 'aux_weight' is "
                        "above 0", what, c->aux_layer, c->layers);
    if (c->n_stages < 1 || c->n_stages > IDS_MAX_STAGES)
        return ids__err(err, IDS_ERR_RANGE, "%s: %d 'stages', expected 1..%d", what, c->n_stages, IDS_MAX_STAGES);
    long total = 0;
    for (int s = 0; s < c->n_stages; s++) {
        const ids_train_stage *S = &c->stages[s];
        if (S->steps < 0 || S->steps > MAX_STAGE_STEPS)
            return ids__err(err, IDS_ERR_RANGE, "%s: stage %d: 'steps' is %d, expected an integer in 0..%d", what, s,
                            S->steps, MAX_STAGE_STEPS);
        bool any = false;
        for (int t = 0; t < IDS_TASK_COUNT; t++) {
            if (!(S->weights[t] >= 0 && S->weights[t] <= 1e6f))
                return ids__err(err, IDS_ERR_RANGE, "%s: stage %d: weight of '%s' is %g, expected a number in [0, 1e+06]",
                                what, s, ids_task_name((ids_task)t), (double)S->weights[t]);
            any |= S->weights[t] > 0;
        }
        if (S->steps > 0 && !any)
            return ids__err(err, IDS_ERR_RANGE, "%s: stage %d: no task has a weight above 0", what, s);
        total += S->steps;
    }
    if (total < 1) return ids__err(err, IDS_ERR_RANGE, "%s: the stages have no 'steps'", what);
    return IDS_OK;
}

ids_status ids_train_config_check(const ids_train_config *c, ids_err *err) { return check_config(c, "train config", err); }

/* One stage: {"steps": N, "weights": {"task": w, ...}}. */
static ids_status load_stage(const cJSON *sg, int index, ids_train_stage *S, const char *path, ids_err *err) {
    memset(S, 0, sizeof *S);
    const cJSON *steps = cJSON_GetObjectItem(sg, "steps"), *wts = cJSON_GetObjectItem(sg, "weights"), *wt;
    if (!cJSON_IsObject(sg) || !steps || !cJSON_IsObject(wts))
        return ids__err(err, IDS_ERR_FORMAT, "%s: stage %d needs \"steps\" and \"weights\"", path, index);
    long long n;
    ids_status st = ids__json_int(sg, "steps", 0, MAX_STAGE_STEPS, 0, &n, err);
    if (st) return ids__err_prefix(err, st, "%s: stage %d", path, index);
    S->steps = (int)n;
    cJSON_ArrayForEach(wt, wts) {
        const int t = ids_task_from_name(wt->string);
        if (t < 0)
            return ids__err(err, IDS_ERR_FORMAT, "%s: stage %d: unknown task '%s'", path, index, wt->string);
        double w;
        if ((st = ids__json_num(wt, NULL, 0, 1e6, 0, &w, err)))
            return ids__err_prefix(err, st, "%s: stage %d: weight of '%s'", path, index, wt->string);
        S->weights[t] = (float)w;
    }
    return IDS_OK;
}

ids_status ids_train_config_load(const char *path, ids_train_config *c, ids_err *err) {
    ids_train_default_config(c);
    char *txt;
    ids_status rs = ids__read_file(path, &txt, NULL, err);
    if (rs) return rs;
    cJSON *j;
    rs = ids__json_parse_object(txt, path, &j, err);
    free(txt);
    if (rs) return rs;
    ids_status st = IDS_OK;
    cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const char *k = it->string;
        const int_key *ik = NULL;
        const num_key *nk = NULL;
        for (size_t i = 0; i < sizeof k_int_keys / sizeof *k_int_keys; i++)
            if (!strcmp(k, k_int_keys[i].key)) ik = &k_int_keys[i];
        for (size_t i = 0; i < sizeof k_num_keys / sizeof *k_num_keys; i++)
            if (!strcmp(k, k_num_keys[i].key)) nk = &k_num_keys[i];
        if (ik || nk) {
            if (!cJSON_IsNumber(it)) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s: '%s' must be a number", path, k);
            } else if (ik) {
                long long v;
                if ((st = ids__json_int(j, k, ik->lo, ik->hi, 0, &v, err))) st = ids__err_prefix(err, st, "%s", path);
                else *int_at(c, ik->off) = (int)v;
            } else {
                double v;
                if ((st = ids__json_num(j, k, nk->lo, nk->hi, 0, &v, err))) st = ids__err_prefix(err, st, "%s", path);
                else *(float *)(void *)((char *)c + nk->off) = (float)v;
            }
        } else if (!strcmp(k, "seed")) {
            long long v;
            if ((st = ids__json_int(j, k, 0, 1ll << 53, 1, &v, err))) st = ids__err_prefix(err, st, "%s", path);
            else c->seed = (uint64_t)v;
        } else if (!strcmp(k, "comment") || !strcmp(k, "description")) {
            continue;
        } else if (!strcmp(k, "init_from")) {
            if (!cJSON_IsString(it)) st = ids__err(err, IDS_ERR_FORMAT, "%s: 'init_from' must be a folder name", path);
            else if (strlen(it->valuestring) >= sizeof c->init_from)
                st = ids__err(err, IDS_ERR_RANGE, "%s: 'init_from' is longer than %zu bytes", path, sizeof c->init_from - 1);
            else snprintf(c->init_from, sizeof c->init_from, "%s", it->valuestring);
        } else if (!strcmp(k, "stages")) {
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > IDS_MAX_STAGES) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s: stages must be a list of 1..%d objects", path, IDS_MAX_STAGES);
            } else {
                c->n_stages = 0;
                cJSON *sg;
                cJSON_ArrayForEach(sg, it) {
                    if ((st = load_stage(sg, c->n_stages, &c->stages[c->n_stages], path, err))) break;
                    c->n_stages++;
                }
            }
        } else {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: unknown key '%s'", path, k);
        }
        if (st) break;
    }
    cJSON_Delete(j);
    return st ? st : check_config(c, path, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Reloading exported weights (tests, resuming)                                               */

static ids_status load_exported(tmodel *m, const char *dir, ids_err *err) {
    ids_status st = IDS_OK;
    for (int file = 0; file < 2 && !st; file++) {
        char path[1200];
        snprintf(path, sizeof path, "%.1100s/%s", dir, file == 0 ? "text.gguf" : "mmproj.gguf");
        ids_gguf *g;
        if ((st = ids_gguf_open(&g, path, err))) break;
        for (int i = 0; i < m->np && !st; i++) {
            const pinfo *p = &m->p[i];
            if (p->file != file) continue;
            const ids_tensor *t = ids_gguf_find_tensor(g, p->name);
            if (!t || (size_t)ids_tensor_nelements(t) != p->n)
                st = ids__err(err, IDS_ERR_FORMAT, "%s: tensor '%s' is missing or has another size", path, p->name);
            else
                st = ids_tensor_to_f32(t, m->w + p->off, err);
        }
        ids_gguf_close(g);
    }
    return st;
}

ids_status ids__train_logits(const ids_train_config *c, const char *dir, const tk_sample *s, float *logits,
                             int *n_vocab, ids_err *err) {
    ids_tokenizer *tok = NULL;
    tmodel m = {0};
    param_ix ix;
    memset(&ix, 0, sizeof ix);
    tbatch b = {0};
    ids_status st = ids_train_config_check(c, err);
    if (!st) st = vocab_tokenizer(dir, &tok, err);
    if (!st) st = build_params(&m, &ix, c, ids_tokenizer_n_vocab(tok), err);
    if (!st) st = load_exported(&m, dir, err);
    if (!st) {
        const int S = c->image_size, np = (S / c->patch_size) * (S / c->patch_size);
        b.B = 1;
        b.seq = ids__calloc(1, sizeof *b.seq);
        b.n_images = s->n_images;
        b.pixels = s->n_images ? ids__malloc(sizeof(float) * (size_t)s->n_images * 3 * S * S) : NULL;
        if (!b.seq || (s->n_images && !b.pixels)) st = ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
        if (!st) st = sample_to_seq(s, tok, np, 0, &b.seq[0], err);
        for (int f = 0; !st && f < s->n_images; f++)
            for (int ch = 0; ch < 3; ch++)
                for (int p = 0; p < S * S; p++) {
                    float x = (float)((double)s->images[f].rgb[3 * p + ch] * (1.0 / 255.0));
                    b.pixels[((size_t)f * 3 + ch) * S * S + p] = (x - k_mean[ch]) / k_std[ch];
                }
        if (!st) b.T = b.seq[0].n;
    }
    if (!st) { /* keep only the first target: the answer position the engine reads */
        bool seen = false;
        for (int t = 0; t < b.seq[0].n; t++)
            if (b.seq[0].tgt[t] >= 0) {
                if (seen) b.seq[0].tgt[t] = -1;
                seen = true;
            }
        fwd_result r;
        st = model_step(&m, &ix, &b, false, &r, logits, err);
    }
    if (n_vocab) *n_vocab = m.V;
    free_batch(&b);
    free_model(&m);
    ids_tokenizer_free(tok);
    return st;
}

/* The checks' model: the vocabulary's tokenizer (through a temporary folder) and parameters
 * initialised from the config's seed. */
static ids_status check_model(const ids_train_config *c, const char *what, ids_tokenizer **tok, tmodel *m, param_ix *ix,
                              ids_err *err) {
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/idscope-%s-XXXXXX", what);
    ids_status st = mkdtemp(dir) ? IDS_OK : ids__err(err, IDS_ERR_IO, "cannot make a temporary folder");
    if (!st) st = vocab_tokenizer(dir, tok, err);
    rmdir(dir);
    if (!st) st = build_params(m, ix, c, ids_tokenizer_n_vocab(*tok), err);
    if (!st) init_params(m, c->seed);
    return st;
}

/* Whole-model gradient check: analytic gradients of a tiny model on one batch against central
 * differences of the loss, at n_probe parameters spread over every tensor. Returns the number of
 * probes off by more than 5% (relative, with an absolute floor). */
ids_status ids__train_gradcheck(const ids_train_config *c, ids_task task, int n_probe, int *n_bad, double *worst,
                                ids_err *err) {
    *n_bad = 0;
    *worst = 0;
    ids_tokenizer *tok = NULL;
    ids_catalog *cat = ids_catalog_new();
    tmodel m = {0};
    param_ix ix;
    memset(&ix, 0, sizeof ix);
    tbatch b = {0};
    ids_status st = cat ? check_model(c, "gradcheck", &tok, &m, &ix, err) : ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    if (!st) {
        /* larger random weights everywhere (also norms and biases) so every path carries gradient */
        uint64_t r = 99;
        for (size_t i = 0; i < m.total; i++) m.w[i] += 0.05f * (float)(ids__rng_splitmix_unit(&r) - 0.5);
        uint64_t rng = c->seed;
        st = make_batch(c, cat, tok, task, 2, &rng, -1, &b, err);
    }
    fwd_result res;
    if (!st) {
        memset(m.g, 0, sizeof(float) * m.total);
        st = model_step(&m, &ix, &b, true, &res, NULL, err);
    }
    for (int k = 0; k < n_probe && !st; k++) {
        const pinfo *p = &m.p[k % m.np];
        size_t i = p->off + (size_t)((k / m.np) * 7919 + k * 31) % p->n;
        const double h = 3e-3; /* small enough for curvature, large enough for float32 noise */
        float w0 = m.w[i];
        fwd_result rp, rm;
        m.w[i] = w0 + (float)h;
        st = model_step(&m, &ix, &b, false, &rp, NULL, err);
        m.w[i] = w0 - (float)h;
        if (!st) st = model_step(&m, &ix, &b, false, &rm, NULL, err);
        m.w[i] = w0;
        if (st) break;
        double num = ((rp.loss / rp.n_tgt + rp.aux_loss) - (rm.loss / rm.n_tgt + rm.aux_loss)) / (2 * h), ana = m.g[i];
        double e = fabs(num - ana) / (fmax(fabs(num), fabs(ana)) + 1e-4);
        if (e > *worst) *worst = e;
        if (fabs(num - ana) > 0.05 * fmax(fabs(num), fabs(ana)) + 2e-4) {
            if (*n_bad < 5) ids__log(1, "gradcheck %s[%zu]: numeric %g analytic %g", p->name, i - p->off, num, ana);
            (*n_bad)++;
        }
    }
    free_batch(&b);
    free_model(&m);
    ids_tokenizer_free(tok);
    ids_catalog_free(cat);
    return st;
}

/* Sharding check: the gradient of one batch equals the sum of its shards' gradients (each shard
 * normalised by the whole batch's counts). Returns the largest difference relative to the largest
 * gradient entry. */
ids_status ids__train_shardcheck(const ids_train_config *c, ids_task task, double *rel_diff, ids_err *err) {
    *rel_diff = 1;
    ids_tokenizer *tok = NULL;
    ids_catalog *cat = ids_catalog_new();
    tmodel m = {0};
    param_ix ix;
    memset(&ix, 0, sizeof ix);
    tbatch part[2] = {{0}}, whole = {0};
    float *g_whole = NULL;
    ids_status st = cat ? check_model(c, "shardcheck", &tok, &m, &ix, err) : ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
    if (!st) {
        uint64_t r1 = 5, r2 = 6;
        st = make_batch(c, cat, tok, task, 2, &r1, -1, &part[0], err);
        if (!st) st = make_batch(c, cat, tok, task, 3, &r2, -1, &part[1], err);
    }
    if (!st) { /* the two parts as one batch */
        const size_t img = (size_t)3 * c->image_size * c->image_size;
        whole.B = 5;
        whole.T = part[0].T > part[1].T ? part[0].T : part[1].T;
        whole.n_images = part[0].n_images + part[1].n_images;
        whole.seq = ids__calloc(5, sizeof *whole.seq);
        whole.pixels = ids__malloc(sizeof(float) * img * (size_t)(whole.n_images ? whole.n_images : 1));
        g_whole = ids__malloc(sizeof(float) * m.total);
        if (!whole.seq || !whole.pixels || !g_whole) st = ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
        for (int p = 0, i = 0; !st && p < 2; p++)
            for (int k = 0; k < part[p].B; k++, i++) {
                tseq *d = &whole.seq[i];
                const tseq *q = &part[p].seq[k];
                *d = *q;
                d->tok = ids__malloc(sizeof(int32_t) * (size_t)q->n);
                d->img = ids__malloc(sizeof(int32_t) * (size_t)q->n);
                d->tgt = ids__malloc(sizeof(int32_t) * (size_t)q->n);
                if (!d->tok || !d->img || !d->tgt) {
                    st = ids__err(err, IDS_ERR_NOMEM, "train: out of memory");
                    break;
                }
                memcpy(d->tok, q->tok, sizeof(int32_t) * (size_t)q->n);
                memcpy(d->tgt, q->tgt, sizeof(int32_t) * (size_t)q->n);
                for (int t = 0; t < q->n; t++) d->img[t] = q->img[t] < 0 ? -1 : q->img[t] + (p ? part[0].n_images * m.NP : 0);
            }
        if (!st) {
            memcpy(whole.pixels, part[0].pixels, sizeof(float) * img * (size_t)part[0].n_images);
            memcpy(whole.pixels + img * (size_t)part[0].n_images, part[1].pixels, sizeof(float) * img * (size_t)part[1].n_images);
        }
    }
    fwd_result r;
    if (!st) {
        memset(m.g, 0, sizeof(float) * m.total);
        st = model_step(&m, &ix, &whole, true, &r, NULL, err);
        if (!st) memcpy(g_whole, m.g, sizeof(float) * m.total);
    }
    if (!st) {
        int nt = 0, naux = 0;
        for (int i = 0; i < whole.B; i++) {
            for (int t = 0; t < whole.seq[i].n; t++) nt += whole.seq[i].tgt[t] >= 0;
            for (int k = 0; k < whole.seq[i].n_aux; k++)
                for (int d = 0; d < 4; d++) naux += whole.seq[i].aux_mask[d];
        }
        memset(m.g, 0, sizeof(float) * m.total);
        for (int p = 0; p < 2 && !st; p++) {
            part[p].nt_norm = nt, part[p].aux_norm = naux;
            st = model_step(&m, &ix, &part[p], true, &r, NULL, err); /* gradients accumulate in m.g */
        }
    }
    if (!st) {
        double dmax = 0, gmax = 0;
        for (size_t i = 0; i < m.total; i++) {
            dmax = fmax(dmax, fabs((double)m.g[i] - g_whole[i]));
            gmax = fmax(gmax, fabs((double)g_whole[i]));
        }
        *rel_diff = gmax > 0 ? dmax / gmax : 1;
    }
    free(g_whole);
    free_batch(&whole);
    free_batch(&part[0]);
    free_batch(&part[1]);
    free_model(&m);
    ids_tokenizer_free(tok);
    ids_catalog_free(cat);
    return st;
}
