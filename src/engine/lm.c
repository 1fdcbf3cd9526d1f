/* Decoder forward pass with hooks, clean-run reuse, batched variants and greedy generation.
 *
 * Layout: every activation buffer is row-major [rows, width]; "rows" are the computed rows of all
 * active variants stacked (variant v, local row i -> buffer row v*m + i, sequence row p0 + i).
 * Weights W have ne = [n_in, n_out]: Y[M, n_out] = X[M, n_in] . W^T.
 *
 * Reuse: an edit at layer l on rows >= p changes nothing at layers < l or rows < p. The clean run
 * keeps resid[l][row] for every layer and K/V for every block; an edited run loads resid[s][p..n)
 * and recomputes blocks >= s on rows >= p, reading K/V of rows < p from the clean cache. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "engine/lm.h"
#include "engine/ops.h"

#include <math.h>
#include <unistd.h>


#define OUT_ROWS 16  /* output rows per logits chunk */
#define QCHUNK 128   /* query rows per attention product */

typedef struct {
    const ids_hook *h;
    int *rows;
    int n_rows;
    int width;
    float *pbuf; /* ATTN_PROBS: [n_rows, n_head, n_tot] */
} rhook;

typedef struct {
    rhook *hooks;
    int n_hooks;
    int start;      /* first resid layer it needs recomputed from */
    int min_row;    /* first row it changes */
    int orig_index; /* position in the caller's array */
} rvariant;

struct ids_ctx {
    const ids_model *m;
    ids_ctx_params p;
    ids_ops ops;
    int kv_dim, q_dim, max_w;
    int n_ds; /* DeepStack blocks run: the model's, when the sequence has DeepStack rows */
    /* current sequence (copy) and generated tokens */
    ids_seq *seq;
    int n_seq;
    int32_t *gen_tok; /* [n_ctx] */
    int n_gen;
    bool have_clean;
    /* work buffers [max_rows, ...] */
    float *x, *xn, *q, *kn, *vn, *att, *tmp, *gate, *up, *rope;
    float *rope_g;    /* Gemma 3: the global layers' table (c->rope: the sliding layers') */
    int *blk_lo, *blk_hi; /* [n_ctx]: image block of each row (bidirectional attention), or NULL */
    int32_t *row_pos; /* [max_rows, 3] */
    float *scores;    /* [n_threads, QCHUNK, n_ctx] */
    unsigned char *att_scratch; /* [n_threads, att_scratch_bytes]: packed operands of attention's products */
    size_t att_scratch_bytes;
    float *logit_buf; /* [OUT_ROWS, n_vocab] */
    float *hook_tmp;  /* gather buffer for callbacks */
    size_t hook_tmp_n;
    /* caches */
    float *resid_clean;        /* [n_layer+1, n_ctx, n_embd] */
    float *k_clean, *v_clean;  /* [n_layer, n_ctx, kv_dim] */
    float *k_gen, *v_gen;      /* [n_layer, n_ctx, kv_dim], allocated by the first generate */
    /* mllama: keys and values of the sequence's cross-attention states [n_xattn, n_cross, kv_dim]
     * (made when the sequence is set), each computed row's images, its two gates [max_rows, 2] */
    float *xk, *xv, *xscores, *xgate;
    uint64_t *xmask;
    size_t bytes;
};

/* ---------------------------------------------------------------------------------------- */
/* Parallel helpers                                                                           */

static void matmul(ids_ctx *c, const ids_tensor *W, const float *X, int M, float *Y, const float *bias) {
    ids__matmul(&c->ops, W, X, M, Y, bias);
}

static void rmsnorm(ids_ctx *c, const float *x, float *y, const float *w, int rows) {
    ids__rmsnorm(&c->ops, x, y, w, c->m->hp.n_embd, rows, c->m->hp.rms_eps);
}

/* cos/sin table per computed row: rope[r][2i] = cos, [2i+1] = sin of pair i. Pair i turns with
 * frequency base^(-2i/n_rot); M-RoPE takes the position of pair i from the stream (t, h, w, e) that
 * its section names (sector = i mod the sum of the sections); interleaved M-RoPE (Qwen3-VL) turns
 * pair i with h when i % 3 == 1 and i < 3 sections[1], with w when i % 3 == 2 and i < 3 sections[2],
 * else with t (HF; llama.cpp gives pairs past 3 sections[0] the fourth stream, 0 on image rows). */
static void rope_table(ids_ctx *c, int rows, float *dst, double base, double pscale) {
    const ids_hparams *hp = &c->m->hp;
    const int half = hp->n_rot / 2;
    const int *sec = hp->rope_sections;
    const int ssum = sec[0] + sec[1] + sec[2] + sec[3];
    for (int r = 0; r < rows; r++) {
        float *cs = dst + (size_t)r * hp->n_rot;
        const int32_t *pos = c->row_pos + 3 * r;
        for (int i = 0; i < half; i++) {
            double p = pos[0];
            if (hp->rope_mode == IDS_ROPE_MROPE) {
                int sector = i % ssum;
                if (sector < sec[0]) p = pos[0];
                else if (sector < sec[0] + sec[1]) p = pos[1];
                else if (sector < sec[0] + sec[1] + sec[2]) p = pos[2];
                else p = 0; /* the fourth stream is unused by these models */
            }
            else if (hp->rope_mode == IDS_ROPE_IMROPE) /* HF apply_interleaved_mrope: h on pairs 1, 4, ..., w on 2, 5, ... */
                p = (i % 3 == 1 && i < 3 * sec[1]) ? pos[1] : (i % 3 == 2 && i < 3 * sec[2]) ? pos[2] : pos[0];
            double inv = pow(base, -2.0 * i / hp->n_rot);
            if (c->m->rope_ff) inv /= c->m->rope_ff[i];
            double th = p * pscale * inv;
            cs[2 * i] = (float)cos(th);
            cs[2 * i + 1] = (float)sin(th);
        }
    }
}

/* Rotate `n_heads` heads of each row of x ([rows, n_heads*head_dim]). */
typedef struct {
    ids_ctx *c;
    const float *tab;
    float *x;
    int n_heads;
} rope_job;

/* Rotate rows [lo, hi) (see rope_apply). */
static void rope_rows(void *arg, size_t lo, size_t hi) {
    const rope_job *j = arg;
    const ids_hparams *hp = &j->c->m->hp;
    const float *tab = j->tab;
    float *x = j->x;
    const int hd = hp->head_dim, half = hp->n_rot / 2, n_heads = j->n_heads;
    for (size_t r = lo; r < hi; r++) {
        const float *cs = tab + (size_t)r * hp->n_rot;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)r * n_heads * hd + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                int a, b;
                if (hp->rope_mode == IDS_ROPE_NORM) a = 2 * i, b = 2 * i + 1;
                else a = i, b = i + half;
                float x0 = v[a], x1 = v[b], co = cs[2 * i], si = cs[2 * i + 1];
                v[a] = x0 * co - x1 * si;
                v[b] = x0 * si + x1 * co;
            }
        }
    }
}

static void rope_apply(ids_ctx *c, const float *tab, float *x, int rows, int n_heads) {
    rope_job j = {c, tab, x, n_heads};
    ids__ops_for(&c->ops, (size_t)rows, 8, rope_rows, &j);
}

/* ---------------------------------------------------------------------------------------- */
/* Attention                                                                                  */

typedef struct {
    ids_ctx *c;
    int block, n_var, m, p0;
    const float *kp, *vp; /* prefix cache for this block: [n_ctx, kv_dim] */
    rvariant *vars;
    int n_tot; /* sequence length used for probability rows */
    int phase; /* 0: normal (deferring hooked rows), 1: V-sum of deferred rows from pbuf */
} attn_job;

/* The index of sequence row r among a hook's rows, or -1. */
static int hook_row(const rhook *h, int r) {
    for (int i = 0; i < h->n_rows; i++)
        if (h->rows[i] == r) return i;
    return -1;
}

/* The last probs hook of variant v at this block that selects sequence row r (NULL if none), the
 * index of r in its rows, and whether any of them edits (hooks act in order, each edit passed on
 * to the hooks after it, so the last one holds the row's final probabilities). */
static rhook *probs_hook(rvariant *rv, int block, int r, int *idx, bool *edited) {
    rhook *last = NULL;
    *edited = false;
    for (int k = 0; k < rv->n_hooks; k++) {
        rhook *h = &rv->hooks[k];
        if (h->h->site != IDS_SITE_ATTN_PROBS || h->h->layer != block) continue;
        int i = hook_row(h, r);
        if (i < 0) continue;
        last = h;
        *idx = i;
        *edited = *edited || h->h->action != IDS_ACT_CAPTURE;
    }
    return last;
}

/* Phase 0, one task per (variant, head): scores against the prefix cache (rows < p0) and the new
 * rows, causal softmax, probabilities of hooked rows saved (for every hook on the row), then P.V
 * (the F32 kernels, serially). Phase 1: rows whose probabilities a hook edited are recomputed from
 * the edited copy (rows that are only captured keep the phase-0 result). */
static void attn_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    attn_job *j = arg;
    ids_ctx *c = j->c;
    const ids_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, n_head = hp->n_head, group = hp->n_head / hp->n_head_kv;
    const float scale = hp->attn_scale > 0 ? hp->attn_scale : 1.0f / sqrtf((float)hd);
    const int v = t / n_head, h = t % n_head, hk = h / group;
    rvariant *rv = &j->vars[v];
    const int p0 = j->p0, m = j->m;
    const size_t base = (size_t)v * m;
    const float *kn = c->kn + base * c->kv_dim + (size_t)hk * hd;
    const float *vn = c->vn + base * c->kv_dim + (size_t)hk * hd;
    if (j->phase == 1) {
        for (int i = 0; i < m; i++) {
            int pidx = 0;
            bool edited;
            rhook *ph = probs_hook(rv, j->block, p0 + i, &pidx, &edited);
            if (!ph || !edited) continue;
            const float *pr = ph->pbuf + ((size_t)pidx * n_head + h) * j->n_tot;
            float *o = c->att + (base + i) * c->q_dim + (size_t)h * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            int klo, khi;
            ids__attn_range(hp, j->block, p0 + i, c->blk_lo, c->blk_hi, &klo, &khi);
            for (int k = klo; k < khi; k++) {
                const float *vv = k < p0 ? j->vp + (size_t)k * c->kv_dim + (size_t)hk * hd
                                         : vn + (size_t)(k - p0) * c->kv_dim;
                for (int d = 0; d < hd; d++) o[d] += pr[k] * vv[d];
            }
        }
        return;
    }
    float *S = c->scores + (size_t)tid * QCHUNK * c->p.n_ctx;
    unsigned char *scr = c->att_scratch + (size_t)tid * c->att_scratch_bytes;
    const ids__gemm *g = &c->ops.attn;
    for (int i0 = 0; i0 < m; i0 += QCHUNK) {
        const int i1 = m - i0 < QCHUNK ? m : i0 + QCHUNK, nq = i1 - i0;
        /* keys of the chunk, [k0, nk): from the first key any row sees (on a sliding layer the
         * first row's window) to the last row's, or further inside an image block */
        int nk = p0 + i1, k0 = nk;
        for (int r = 0; r < nq; r++) {
            int lo, hi;
            ids__attn_range(hp, j->block, p0 + i0 + r, c->blk_lo, c->blk_hi, &lo, &hi);
            if (hi > nk) nk = hi < p0 + m ? hi : p0 + m;
            if (lo < k0) k0 = lo;
        }
        const int nw = nk - k0, n0 = k0 > p0 ? k0 : p0; /* n0: the first new row's key */
        const float *Q = c->q + (base + i0) * c->q_dim + (size_t)h * hd;
        float *O = c->att + (base + i0) * c->q_dim + (size_t)h * hd;
        /* scores S [nq, nw] (column k - k0) against the prefix cache (keys < p0) and the new rows;
         * each a dot product along the head */
        if (k0 < p0)
            ids__gemm_serial(g, scr, Q, c->q_dim, nq, hd, j->kp + (size_t)k0 * c->kv_dim + (size_t)hk * hd, c->kv_dim,
                             true, p0 - k0, S, nw, false);
        ids__gemm_serial(g, scr, Q, c->q_dim, nq, hd, kn + (size_t)(n0 - p0) * c->kv_dim, c->kv_dim, true, nk - n0,
                         S + (n0 - k0), nw, false);
        for (int r = 0; r < nq; r++) {
            float *sr = S + (size_t)r * nw;
            int lo, keys;
            ids__attn_range(hp, j->block, p0 + i0 + r, c->blk_lo, c->blk_hi, &lo, &keys);
            lo -= k0, keys -= k0; /* columns */
            float mx = -INFINITY;
            for (int k = lo; k < keys; k++) {
                sr[k] *= scale;
                if (sr[k] > mx) mx = sr[k];
            }
            double sum = 0;
            for (int k = lo; k < keys; k++) {
                sr[k] = expf(sr[k] - mx);
                sum += sr[k];
            }
            const float inv = (float)(1.0 / sum);
            for (int k = 0; k < lo; k++) sr[k] = 0.0f;
            for (int k = lo; k < keys; k++) sr[k] *= inv;
            for (int k = keys; k < nw; k++) sr[k] = 0.0f;
            for (int k = 0; k < rv->n_hooks; k++) {
                rhook *ph = &rv->hooks[k];
                int pidx;
                if (ph->h->site != IDS_SITE_ATTN_PROBS || ph->h->layer != j->block ||
                    (pidx = hook_row(ph, p0 + i0 + r)) < 0)
                    continue;
                float *dst = ph->pbuf + ((size_t)pidx * n_head + h) * j->n_tot;
                memset(dst, 0, (size_t)k0 * sizeof(float));
                memcpy(dst + k0, sr, (size_t)nw * sizeof(float));
                memset(dst + nk, 0, (size_t)(j->n_tot - nk) * sizeof(float));
            }
        }
        /* P.V over the keys in order: the prefix's values, then the new rows' (one chain per element,
         * whatever p0, so that a reused run gives a full run's bits; the keys before k0 have
         * probability 0 and would add exact zeros to it) */
        if (k0 < p0)
            ids__gemm_serial(g, scr, S, nw, nq, p0 - k0, j->vp + (size_t)k0 * c->kv_dim + (size_t)hk * hd, c->kv_dim,
                             false, hd, O, c->q_dim, false);
        ids__gemm_serial(g, scr, S + (n0 - k0), nw, nq, nk - n0, vn + (size_t)(n0 - p0) * c->kv_dim, c->kv_dim, false,
                         hd, O, c->q_dim, k0 < p0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Hooks                                                                                      */

/* Apply the hooks of variant v at (site, layer). data: this site's buffer for the variant's rows
 * ([m, width], local row = seq row - p0). clean: for RESID captures of rows < p0 (may be NULL). */
enum { HOOKS_ALL, HOOKS_BUT_ADD, HOOKS_ADD_ONLY };
static void apply_hooks_f(ids_ctx *c, rvariant *rv, int v, ids_site_kind site, int layer, float *data, int p0,
                          const float *clean, int which) {
    for (int k = 0; k < rv->n_hooks; k++) {
        rhook *rh = &rv->hooks[k];
        const ids_hook *h = rh->h;
        if (h->site != site || h->layer != layer) continue;
        if (which != HOOKS_ALL && (h->action == IDS_ACT_ADD) != (which == HOOKS_ADD_ONLY)) continue;
        const int w = rh->width;
        float *buf = site == IDS_SITE_ATTN_PROBS ? rh->pbuf : NULL;
        for (int i = 0; i < rh->n_rows; i++) {
            const int r = rh->rows[i];
            float *row = buf ? buf + (size_t)i * w
                         : (r >= p0 ? data + (size_t)(r - p0) * w : NULL);
            if (!row) { /* only captures reach here (edits set p0 <= their rows) */
                if (h->action == IDS_ACT_CAPTURE && h->out && clean)
                    memcpy(h->out + (size_t)i * w, clean + (size_t)r * w, (size_t)w * sizeof(float));
                continue;
            }
            switch (h->action) {
            case IDS_ACT_CAPTURE:
                if (h->out) memcpy(h->out + (size_t)i * w, row, (size_t)w * sizeof(float));
                break;
            case IDS_ACT_ADD: {
                const float *a = h->vec + (h->per_row ? (size_t)i * w : 0);
                for (int d = 0; d < w; d++) row[d] += a[d];
                break;
            }
            case IDS_ACT_REPLACE:
                memcpy(row, h->src + (size_t)i * w, (size_t)w * sizeof(float));
                break;
            case IDS_ACT_SCALE:
                for (int d = 0; d < w; d++) row[d] *= h->scale;
                break;
            case IDS_ACT_CALLBACK: /* gathered, called once for all rows below */
                if (!buf) memcpy(c->hook_tmp + (size_t)i * w, row, (size_t)w * sizeof(float));
                break;
            }
        }
        if (h->action == IDS_ACT_CALLBACK) {
            ids_hook_view view = {site, layer, v, rh->n_rows, rh->rows, w};
            if (buf) {
                h->fn(&view, buf, h->user);
            } else {
                h->fn(&view, c->hook_tmp, h->user);
                for (int i = 0; i < rh->n_rows; i++)
                    memcpy(data + (size_t)(rh->rows[i] - p0) * w, c->hook_tmp + (size_t)i * w,
                           (size_t)w * sizeof(float));
            }
        }
        /* probabilities live in each hook's copy: an edit is passed on to the later hooks on its rows */
        if (buf && h->action != IDS_ACT_CAPTURE)
            for (int k2 = k + 1; k2 < rv->n_hooks; k2++) {
                rhook *r2 = &rv->hooks[k2];
                if (r2->h->site != site || r2->h->layer != layer) continue;
                for (int i = 0; i < rh->n_rows; i++) {
                    int i2 = hook_row(r2, rh->rows[i]);
                    if (i2 >= 0) memcpy(r2->pbuf + (size_t)i2 * w, buf + (size_t)i * w, (size_t)w * sizeof(float));
                }
            }
    }
}

static void apply_hooks(ids_ctx *c, rvariant *rv, int v, ids_site_kind site, int layer, float *data, int p0,
                        const float *clean) {
    apply_hooks_f(c, rv, v, site, layer, data, p0, clean, HOOKS_ALL);
}

/* ---------------------------------------------------------------------------------------- */
/* Forward                                                                                    */

typedef struct {
    rvariant *vars; /* sorted by start ascending */
    int n_var, p0, m;
    const float *kp, *vp;    /* prefix caches [n_layer, n_ctx, kv_dim] (rows < p0) */
    float *ks, *vs;          /* store caches for rows [p0, p0+m) (n_var == 1) or NULL */
    float *resid_store;      /* clean resid cache to fill (n_var == 1) or NULL */
    const float *resid_src;  /* clean resid cache to start variants from */
    int n_tot;               /* total rows of the sequence being computed (p0 + m) */
} fwd_plan;

/* Sequence row r: token id (or -1) and embedding pointer. */
static int32_t row_token(const ids_ctx *c, int r, const float **embd) {
    *embd = NULL;
    if (r < c->n_seq) {
        const ids_row *row = ids_seq_row(c->seq, r);
        if (row->token < 0) *embd = ids__seq_embd(c->seq, r);
        return row->token;
    }
    return c->gen_tok[r - c->n_seq];
}

static void row_position(const ids_ctx *c, int r, int32_t pos[3]) {
    if (r < c->n_seq) {
        memcpy(pos, ids_seq_row(c->seq, r)->pos, 3 * sizeof(int32_t));
    } else { /* generated tokens continue after the sequence */
        pos[0] = pos[1] = pos[2] = ids__seq_next_pos(c->seq) + (r - c->n_seq);
    }
}

static void load_rows(ids_ctx *c, const fwd_plan *pl, int v, int layer) {
    const int n_embd = c->m->hp.n_embd;
    float *dst = c->x + (size_t)v * pl->m * n_embd;
    if (layer == 0) {
        for (int i = 0; i < pl->m; i++) {
            const float *e;
            int32_t tok = row_token(c, pl->p0 + i, &e);
            if (tok >= 0) {
                float *d = dst + (size_t)i * n_embd;
                ids_tensor_rows_f32(c->m->tok_embd, tok, 1, d, NULL);
                if (c->m->hp.embd_scale > 0) /* Gemma 3: token rows only, image rows as given */
                    for (int k = 0; k < n_embd; k++) d[k] *= c->m->hp.embd_scale;
            } else memcpy(dst + (size_t)i * n_embd, e, (size_t)n_embd * sizeof(float));
        }
    } else {
        const float *src = pl->resid_src + ((size_t)layer * c->p.n_ctx + pl->p0) * n_embd;
        memcpy(dst, src, (size_t)pl->m * n_embd * sizeof(float));
    }
}

/* Qwen3-VL DeepStack after block l: each variant's rows get their DeepStack row l (zero on rows
 * without one) after the hooks at the site have seen it; ADD hooks there act on the stream after
 * the addition (the sum an ADD at RESID l + 1 makes). */
static void add_deepstack(ids_ctx *c, const fwd_plan *pl, int n_act, int l) {
    const int n_embd = c->m->hp.n_embd, m = pl->m;
    for (int v = 0; v < n_act; v++) {
        float *buf = c->tmp + (size_t)v * m * n_embd, *x = c->x + (size_t)v * m * n_embd;
        for (int i = 0; i < m; i++) {
            const float *d = pl->p0 + i < c->n_seq ? ids_seq_deepstack(c->seq, pl->p0 + i, l) : NULL;
            if (d) memcpy(buf + (size_t)i * n_embd, d, (size_t)n_embd * sizeof(float));
            else memset(buf + (size_t)i * n_embd, 0, (size_t)n_embd * sizeof(float));
        }
        apply_hooks_f(c, &pl->vars[v], v, IDS_SITE_DEEPSTACK, l, buf, pl->p0, NULL, HOOKS_BUT_ADD);
        for (size_t i = 0; i < (size_t)m * n_embd; i++) x[i] += buf[i];
        apply_hooks_f(c, &pl->vars[v], v, IDS_SITE_DEEPSTACK, l, x, pl->p0, NULL, HOOKS_ADD_ONLY);
    }
}

/* The block's MLP on M rows of c->x: c->tmp = down(act(gate xn) * up xn), xn = the FFN norm of x. */
/* gate = act(gate) * up over [lo, hi): GELU (tanh) for Gemma 3, else SiLU. */
static void glu_range(void *arg, size_t lo, size_t hi) {
    ids_ctx *c = arg;
    if (c->m->hp.gemma3)
        for (size_t i = lo; i < hi; i++) c->gate[i] = ids__gelu_tanh(c->gate[i]) * c->up[i];
    else
        for (size_t i = lo; i < hi; i++) {
            const float g = c->gate[i];
            c->gate[i] = g / (1.0f + expf(-g)) * c->up[i];
        }
}

static void mlp(ids_ctx *c, const ids_layer_w *L, int M) {
    const ids_hparams *hp = &c->m->hp;
    rmsnorm(c, c->x, c->xn, L->ffn_norm, M);
    const ids_tensor *w[2] = {L->wgate, L->wup};
    float *y[2] = {c->gate, c->up};
    ids__matmul_n(&c->ops, 2, w, c->xn, M, y, NULL);
    ids__ops_for(&c->ops, (size_t)M * hp->n_ff, 2048, glu_range, c);
    matmul(c, L->wdown, c->gate, M, c->tmp, NULL);
    if (L->post_ffn_norm) rmsnorm(c, c->tmp, c->tmp, L->post_ffn_norm, M);
}

/* mllama's gated cross-attention layer l (decoder_mllama.c has the attention): hooks see the
 * cross-attention output before its gate (XATTN_OUT), the rows' two gates (XATTN_GATE: tanh of the
 * attention gate; tanh of the MLP gate, 0 on rows without images), then the gated outputs as
 * ATTN_OUT / MLP_OUT. Without cross-attention states (no image) both gates are 0: HF skips the layer.
 * Attention probabilities have no self-attention to show here: captures get zeros. */
static void xattn_block(ids_ctx *c, const fwd_plan *pl, int n_act, int l) {
    const ids_hparams *hp = &c->m->hp;
    const ids_layer_w *L = &c->m->layers[l];
    const int n_embd = hp->n_embd, m = pl->m, M = n_act * m, nk = ids_seq_n_cross(c->seq);
    const bool have = c->xk && nk > 0;
    for (int i = 0; i < m; i++) c->xmask[i] = have ? ids_seq_cross_images(c->seq, pl->p0 + i) : 0;
    if (have) {
        int xi = 0;
        while (hp->xattn_layer[xi] != l) xi++;
        const size_t off = (size_t)xi * nk * c->kv_dim;
        rmsnorm(c, c->x, c->xn, L->attn_norm, M);
        matmul(c, L->wq, c->xn, M, c->q, NULL);
        ids__rmsnorm(&c->ops, c->q, c->q, L->q_norm, hp->head_dim, M * hp->n_head, hp->rms_eps);
        ids__xattn(&c->ops, hp, c->seq, c->q, n_act, m, c->xmask, c->xk + off, c->xv + off, c->xscores, c->att);
        matmul(c, L->wo, c->att, M, c->tmp, NULL);
    } else memset(c->tmp, 0, (size_t)M * n_embd * sizeof(float));
    for (int v = 0; v < n_act; v++) {
        for (int k = 0; k < pl->vars[v].n_hooks; k++) {
            rhook *rh = &pl->vars[v].hooks[k];
            if (rh->h->site == IDS_SITE_ATTN_PROBS && rh->h->layer == l)
                memset(rh->pbuf, 0, (size_t)rh->n_rows * rh->width * sizeof(float));
        }
        apply_hooks(c, &pl->vars[v], v, IDS_SITE_ATTN_PROBS, l, NULL, pl->p0, NULL);
        apply_hooks(c, &pl->vars[v], v, IDS_SITE_XATTN_OUT, l, c->tmp + (size_t)v * m * n_embd, pl->p0, NULL);
        float *g = c->xgate + (size_t)v * m * 2;
        for (int i = 0; i < m; i++) {
            g[2 * i] = have ? L->xgate_attn : 0.0f;
            g[2 * i + 1] = c->xmask[i] ? L->xgate_mlp : 0.0f;
        }
        apply_hooks(c, &pl->vars[v], v, IDS_SITE_XATTN_GATE, l, g, pl->p0, NULL);
    }
    for (int r = 0; r < M; r++)
        for (int d = 0; d < n_embd; d++) c->tmp[(size_t)r * n_embd + d] *= c->xgate[2 * r];
    for (int v = 0; v < n_act; v++)
        apply_hooks(c, &pl->vars[v], v, IDS_SITE_ATTN_OUT, l, c->tmp + (size_t)v * m * n_embd, pl->p0, NULL);
    ids__ops_add(&c->ops, c->x, c->tmp, (size_t)M * n_embd);
    mlp(c, L, M);
    for (int r = 0; r < M; r++)
        for (int d = 0; d < n_embd; d++) c->tmp[(size_t)r * n_embd + d] *= c->xgate[2 * r + 1];
    for (int v = 0; v < n_act; v++)
        apply_hooks(c, &pl->vars[v], v, IDS_SITE_MLP_OUT, l, c->tmp + (size_t)v * m * n_embd, pl->p0, NULL);
    ids__ops_add(&c->ops, c->x, c->tmp, (size_t)M * n_embd);
}

static void forward(ids_ctx *c, const fwd_plan *pl) {
    const ids_hparams *hp = &c->m->hp;
    const int n_embd = hp->n_embd, m = pl->m;
    const size_t ctx_rows = (size_t)c->p.n_ctx;
    int n_act = 0;
    /* positions and rotary table are the same for every variant: fill for m rows */
    for (int i = 0; i < m; i++) row_position(c, pl->p0 + i, c->row_pos + 3 * i);
    /* Gemma 3: c->rope for the sliding layers (local base, scale 1), c->rope_g for the global ones */
    rope_table(c, m, c->rope, hp->gemma3 ? hp->rope_base_swa : hp->rope_base, 1.0);
    if (hp->gemma3) rope_table(c, m, c->rope_g, hp->rope_base, hp->rope_scale);
    for (int v = 1; v < pl->n_var; v++) { /* replicate for stacked variants */
        memcpy(c->rope + (size_t)v * m * hp->n_rot, c->rope, (size_t)m * hp->n_rot * sizeof(float));
        if (hp->gemma3)
            memcpy(c->rope_g + (size_t)v * m * hp->n_rot, c->rope_g, (size_t)m * hp->n_rot * sizeof(float));
    }

    for (int l = 0; l <= hp->n_layer; l++) {
        while (n_act < pl->n_var && pl->vars[n_act].start <= l) load_rows(c, pl, n_act++, l);
        const float *clean_l = c->resid_clean && c->have_clean ? c->resid_clean + (size_t)l * ctx_rows * n_embd : NULL;
        for (int v = 0; v < n_act; v++)
            apply_hooks(c, &pl->vars[v], v, IDS_SITE_RESID, l, c->x + (size_t)v * m * n_embd, pl->p0, clean_l);
        if (pl->resid_store)
            memcpy(pl->resid_store + ((size_t)l * ctx_rows + pl->p0) * n_embd, c->x,
                   (size_t)m * n_embd * sizeof(float));
        if (l == hp->n_layer || n_act == 0) continue;

        const ids_layer_w *L = &c->m->layers[l];
        const int M = n_act * m;
        if (L->xattn) {
            xattn_block(c, pl, n_act, l);
            continue;
        }
        rmsnorm(c, c->x, c->xn, L->attn_norm, M);
        {
            const ids_tensor *w[3] = {L->wq, L->wk, L->wv};
            float *y[3] = {c->q, c->kn, c->vn};
            const float *b[3] = {L->bq, L->bk, L->bv};
            ids__matmul_n(&c->ops, 3, w, c->xn, M, y, b);
        }
        if (L->q_norm) ids__rmsnorm(&c->ops, c->q, c->q, L->q_norm, hp->head_dim, M * hp->n_head, hp->rms_eps);
        if (L->k_norm) ids__rmsnorm(&c->ops, c->kn, c->kn, L->k_norm, hp->head_dim, M * hp->n_head_kv, hp->rms_eps);
        const float *tab = hp->gemma3 && !ids__layer_is_swa(hp, l) ? c->rope_g : c->rope;
        rope_apply(c, tab, c->q, M, hp->n_head);
        rope_apply(c, tab, c->kn, M, hp->n_head_kv);
        const size_t cache_off = (size_t)l * ctx_rows * c->kv_dim;
        if (pl->ks) {
            memcpy(pl->ks + cache_off + (size_t)pl->p0 * c->kv_dim, c->kn, (size_t)m * c->kv_dim * sizeof(float));
            memcpy(pl->vs + cache_off + (size_t)pl->p0 * c->kv_dim, c->vn, (size_t)m * c->kv_dim * sizeof(float));
        }
        attn_job aj = {c, l, n_act, m, pl->p0, pl->kp ? pl->kp + cache_off : NULL,
                       pl->vp ? pl->vp + cache_off : NULL, pl->vars, pl->n_tot, 0};
        const int n_pairs = n_act * hp->n_head;
        ids__pool_run(c->ops.pool, n_pairs, attn_task, &aj);
        bool have_probs = false, edit_probs = false;
        for (int v = 0; v < n_act; v++)
            for (int k = 0; k < pl->vars[v].n_hooks; k++)
                if (pl->vars[v].hooks[k].h->site == IDS_SITE_ATTN_PROBS && pl->vars[v].hooks[k].h->layer == l) {
                    have_probs = true;
                    edit_probs = edit_probs || pl->vars[v].hooks[k].h->action != IDS_ACT_CAPTURE;
                }
        if (have_probs)
            for (int v = 0; v < n_act; v++)
                apply_hooks(c, &pl->vars[v], v, IDS_SITE_ATTN_PROBS, l, NULL, pl->p0, NULL);
        if (edit_probs) {
            aj.phase = 1;
            ids__pool_run(c->ops.pool, n_pairs, attn_task, &aj);
        }
        matmul(c, L->wo, c->att, M, c->tmp, L->bo);
        if (L->post_attn_norm) rmsnorm(c, c->tmp, c->tmp, L->post_attn_norm, M);
        for (int v = 0; v < n_act; v++)
            apply_hooks(c, &pl->vars[v], v, IDS_SITE_ATTN_OUT, l, c->tmp + (size_t)v * m * n_embd, pl->p0, NULL);
        ids__ops_add(&c->ops, c->x, c->tmp, (size_t)M * n_embd);

        mlp(c, L, M);
        for (int v = 0; v < n_act; v++)
            apply_hooks(c, &pl->vars[v], v, IDS_SITE_MLP_OUT, l, c->tmp + (size_t)v * m * n_embd, pl->p0, NULL);
        ids__ops_add(&c->ops, c->x, c->tmp, (size_t)M * n_embd);
        if (l < c->n_ds) add_deepstack(c, pl, n_act, l);
    }
}

/* Logits of `n` rows of the final stream (row indices into c->x) into dst rows (stride n_vocab),
 * plus candidate log-probabilities. */
static void final_logits(ids_ctx *c, const int *xrows, int n, float *const *dst, float *const *cand_out,
                         const int32_t *cand, int n_cand) {
    const ids_hparams *hp = &c->m->hp;
    for (int k0 = 0; k0 < n; k0 += OUT_ROWS) {
        int nk = n - k0 < OUT_ROWS ? n - k0 : OUT_ROWS;
        for (int k = 0; k < nk; k++)
            memcpy(c->xn + (size_t)k * hp->n_embd, c->x + (size_t)xrows[k0 + k] * hp->n_embd,
                   (size_t)hp->n_embd * sizeof(float));
        rmsnorm(c, c->xn, c->xn, c->m->output_norm, nk);
        matmul(c, c->m->output, c->xn, nk, c->logit_buf, NULL);
        if (hp->logit_softcap > 0) { /* Gemma: cap * tanh(logit / cap) */
            const float cap = hp->logit_softcap;
            for (size_t i = 0; i < (size_t)nk * hp->n_vocab; i++) c->logit_buf[i] = cap * tanhf(c->logit_buf[i] / cap);
        }
        for (int k = 0; k < nk; k++) {
            const float *lg = c->logit_buf + (size_t)k * hp->n_vocab;
            if (dst && dst[k0 + k]) memcpy(dst[k0 + k], lg, (size_t)hp->n_vocab * sizeof(float));
            if (cand_out && cand_out[k0 + k] && n_cand > 0) {
                float mx = -INFINITY;
                for (int i = 0; i < hp->n_vocab; i++) if (lg[i] > mx) mx = lg[i];
                double s = 0;
                for (int i = 0; i < hp->n_vocab; i++) s += exp((double)lg[i] - mx);
                double lse = mx + log(s);
                for (int i = 0; i < n_cand; i++) cand_out[k0 + k][i] = (float)(lg[cand[i]] - lse);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Context                                                                                    */

ids_ctx_params ids_ctx_default_params(void) {
    ids_ctx_params p = {.n_ctx = 1024, .max_rows = 0, .n_threads = 0, .keep_clean = true,
                        .precision = IDS_PREC_F32};
    return p;
}

static float *alloc_f(ids_ctx *c, size_t n, bool *ok) {
    float *p = ids__malloc(n * sizeof(float));
    if (!p) *ok = false;
    else c->bytes += n * sizeof(float);
    return p;
}

void ids_ctx_free(ids_ctx *c) {
    if (!c) return;
    ids__ops_free(&c->ops);
    ids_seq_free(c->seq);
    float *bufs[] = {c->x, c->xn, c->q, c->kn, c->vn, c->att, c->tmp, c->gate, c->up, c->rope, c->rope_g,
                     c->scores, c->logit_buf, c->hook_tmp, c->resid_clean, c->k_clean,
                     c->v_clean, c->k_gen, c->v_gen, c->xk, c->xv, c->xscores, c->xgate};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(c->row_pos);
    free(c->blk_lo);
    free(c->blk_hi);
    free(c->gen_tok);
    free(c->att_scratch);
    free(c->xmask);
    free(c);
}

ids_status ids_ctx_new(ids_ctx **out, const ids_model *m, ids_ctx_params p, ids_err *err) {
    *out = NULL;
    const ids_hparams *hp = &m->hp;
    if (p.n_ctx <= 0 || p.n_ctx > (1 << 20))
        return ids__err(err, IDS_ERR_ARG, "context: n_ctx %d is outside 1..1048576", p.n_ctx);
    if ((unsigned)p.precision >= IDS_PREC_COUNT)
        return ids__err(err, IDS_ERR_ARG, "context: precision %d is not one of f32, bf16, int8", (int)p.precision);
    if (p.max_rows <= 0) p.max_rows = p.n_ctx;
    if (p.n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    ids_ctx *c = ids__calloc(1, sizeof *c);
    if (!c) return ids__err(err, IDS_ERR_NOMEM, "context: out of memory");
    c->m = m;
    c->p = p;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    c->q_dim = hp->n_head * hp->head_dim;
    c->max_w = hp->n_embd;
    if (hp->n_ff > c->max_w) c->max_w = hp->n_ff;
    if (c->q_dim > c->max_w) c->max_w = c->q_dim;
    const size_t R = (size_t)p.max_rows, N = (size_t)p.n_ctx;
    bool ok = true;
    c->x = alloc_f(c, R * hp->n_embd, &ok);
    c->xn = alloc_f(c, R * hp->n_embd, &ok);
    c->tmp = alloc_f(c, R * hp->n_embd, &ok);
    c->q = alloc_f(c, R * c->q_dim, &ok);
    c->att = alloc_f(c, R * c->q_dim, &ok);
    c->kn = alloc_f(c, R * c->kv_dim, &ok);
    c->vn = alloc_f(c, R * c->kv_dim, &ok);
    c->gate = alloc_f(c, R * hp->n_ff, &ok);
    c->up = alloc_f(c, R * hp->n_ff, &ok);
    c->rope = alloc_f(c, R * hp->n_rot, &ok);
    if (hp->gemma3) {
        c->rope_g = alloc_f(c, R * hp->n_rot, &ok);
        c->blk_lo = ids__malloc(N * sizeof(int));
        c->blk_hi = ids__malloc(N * sizeof(int));
        if (!c->blk_lo || !c->blk_hi) ok = false;
    }
    c->scores = alloc_f(c, (size_t)p.n_threads * QCHUNK * N, &ok);
    c->logit_buf = alloc_f(c, (size_t)OUT_ROWS * hp->n_vocab, &ok);
    c->row_pos = ids__malloc(R * 3 * sizeof(int32_t));
    if (hp->n_xattn) {
        c->xgate = alloc_f(c, R * 2, &ok);
        c->xmask = ids__malloc(R * sizeof *c->xmask);
        if (!c->xmask) ok = false;
    }
    c->gen_tok = ids__malloc(N * sizeof(int32_t));
    if (p.keep_clean) {
        c->resid_clean = alloc_f(c, (size_t)(hp->n_layer + 1) * N * hp->n_embd, &ok);
        c->k_clean = alloc_f(c, (size_t)hp->n_layer * N * c->kv_dim, &ok);
        c->v_clean = alloc_f(c, (size_t)hp->n_layer * N * c->kv_dim, &ok);
    }
    ids_err oerr = {0};
    ids_status ost = ids__ops_init(&c->ops, p.n_threads, c->max_w, p.max_rows < 1024 ? p.max_rows : 1024,
                                   p.precision, &oerr);
    c->bytes += c->ops.bytes;
    c->ops.packs = m->packs;
    if (!ost) {
        const int kmax = (int)N > hp->head_dim ? (int)N : hp->head_dim;
        c->att_scratch_bytes = ids__gemm_serial_bytes(&c->ops.attn, QCHUNK, kmax);
        c->att_scratch = ids__malloc(c->att_scratch_bytes * (size_t)ids__ops_threads(&c->ops));
        if (!c->att_scratch) ok = false;
        else c->bytes += c->att_scratch_bytes * (size_t)ids__ops_threads(&c->ops);
    }
    if (!ok || !c->row_pos || !c->gen_tok || ost) {
        ids_ctx_free(c);
        if (ost && ost != IDS_ERR_NOMEM) return ids__err(err, ost, "context: %s", oerr.msg);
        return ids__err(err, IDS_ERR_NOMEM, "context: out of memory for n_ctx %d, max_rows %d",
                        p.n_ctx, p.max_rows);
    }
    *out = c;
    return IDS_OK;
}

size_t ids_ctx_memory(const ids_ctx *c) { return c->bytes; }
const ids_seq *ids_ctx_seq(const ids_ctx *c) { return c->seq; }

static int hook_width(const ids_ctx *c, const ids_hook *h, int n_tot) {
    return h->site == IDS_SITE_ATTN_PROBS ? c->m->hp.n_head * n_tot : h->site == IDS_SITE_XATTN_GATE ? 2
                                                                                                     : c->m->hp.n_embd;
}

/* Validate and resolve the hooks of one variant. */
static ids_status resolve_variant(ids_ctx *c, const ids_hook *hooks, int n_hooks, rvariant *rv,
                                  bool captures_only, ids_err *err) {
    const ids_hparams *hp = &c->m->hp;
    memset(rv, 0, sizeof *rv);
    rv->start = hp->n_layer;
    rv->min_row = c->n_seq;
    if (n_hooks < 0 || (n_hooks > 0 && !hooks))
        return ids__err(err, IDS_ERR_ARG, "hooks: %d hooks given without an array", n_hooks);
    rv->hooks = ids__calloc((size_t)(n_hooks ? n_hooks : 1), sizeof *rv->hooks);
    if (!rv->hooks) return ids__err(err, IDS_ERR_NOMEM, "hooks: out of memory");
    rv->n_hooks = n_hooks;
    for (int k = 0; k < n_hooks; k++) {
        const ids_hook *h = &hooks[k];
        rhook *rh = &rv->hooks[k];
        rh->h = h;
        int max_layer = h->site == IDS_SITE_RESID ? hp->n_layer : h->site == IDS_SITE_DEEPSTACK ? c->n_ds - 1
                                                                                                 : hp->n_layer - 1;
        if (h->site == IDS_SITE_DEEPSTACK && c->n_ds == 0)
            return ids__err(err, IDS_ERR_ARG, "hook %d: the model (%s) has no DeepStack sites", k, hp->arch);
        if ((int)h->site < 0 || h->site >= IDS_SITE_COUNT)
            return ids__err(err, IDS_ERR_ARG, "hook %d: unknown site %d", k, (int)h->site);
        if (h->layer < 0 || h->layer > max_layer)
            return ids__err(err, IDS_ERR_RANGE, "hook %d: layer %d is out of range 0..%d for this "
                            "site (the model has %d blocks)", k, h->layer, max_layer, hp->n_layer);
        if (captures_only && h->action != IDS_ACT_CAPTURE)
            return ids__err(err, IDS_ERR_ARG, "hook %d: only captures are allowed here", k);
        switch (h->action) {
        case IDS_ACT_CAPTURE: break;
        case IDS_ACT_ADD:
            if (!h->vec) return ids__err(err, IDS_ERR_ARG, "hook %d: ADD without a vector", k);
            break;
        case IDS_ACT_REPLACE:
            if (!h->src) return ids__err(err, IDS_ERR_ARG, "hook %d: REPLACE without source rows", k);
            break;
        case IDS_ACT_SCALE: break;
        case IDS_ACT_CALLBACK:
            if (!h->fn) return ids__err(err, IDS_ERR_ARG, "hook %d: CALLBACK without a function", k);
            break;
        default: return ids__err(err, IDS_ERR_ARG, "hook %d: unknown action %d", k, (int)h->action);
        }
        const bool xsite = h->site == IDS_SITE_XATTN_OUT || h->site == IDS_SITE_XATTN_GATE;
        if (xsite && !ids__model_is_xattn(hp, h->layer))
            return ids__err(err, IDS_ERR_ARG, "hook %d: block %d is not a cross-attention layer (%s)", k, h->layer,
                            hp->n_xattn ? "see the model's cross_attention_layers" : "the model has none");
        if (h->site == IDS_SITE_ATTN_PROBS && ids__model_is_xattn(hp, h->layer) && h->action != IDS_ACT_CAPTURE)
            return ids__err(err, IDS_ERR_ARG, "hook %d: block %d is a cross-attention layer: it has no self-attention "
                            "probabilities to edit", k, h->layer);
        if (h->site == IDS_SITE_ATTN_PROBS && (h->action == IDS_ACT_ADD || h->action == IDS_ACT_REPLACE))
            return ids__err(err, IDS_ERR_ARG, "hook %d: attention probabilities can be captured, "
                            "scaled or edited by callback only", k);
        ids_status st = ids_sel_resolve(c->seq, c->m->tok, &h->sel, &rh->rows, &rh->n_rows, err);
        if (st) {
            char tmp[IDS_ERR_MSG_MAX];
            if (err) {
                snprintf(tmp, sizeof tmp, "%s", err->msg);
                snprintf(err->msg, sizeof err->msg, "hook %d: %.480s", k, tmp);
            }
            return st;
        }
        rh->width = hook_width(c, h, c->n_seq);
        size_t need = (size_t)rh->n_rows * rh->width;
        if (h->action == IDS_ACT_ADD && !h->per_row) need = (size_t)rh->width;
        if ((h->action == IDS_ACT_CAPTURE && h->out) || h->action == IDS_ACT_ADD ||
            h->action == IDS_ACT_REPLACE) {
            if (h->len != need)
                return ids__err(err, IDS_ERR_ARG, "hook %d: %s buffer holds %zu floats, expected %zu "
                                "(%d row%s x %d)", k, h->action == IDS_ACT_CAPTURE ? "capture" :
                                h->action == IDS_ACT_ADD ? "ADD vector" : "REPLACE source",
                                h->len, need, need == (size_t)rh->width ? 1 : rh->n_rows,
                                need == (size_t)rh->width ? "" : "s", rh->width);
        }
        int lo = rh->rows[0];
        for (int i = 1; i < rh->n_rows; i++) if (rh->rows[i] < lo) lo = rh->rows[i];
        bool edits = h->action != IDS_ACT_CAPTURE;
        if (h->site != IDS_SITE_RESID || edits) {
            if (h->layer < rv->start) rv->start = h->layer;
            if (lo < rv->min_row) rv->min_row = lo;
        }
        if (h->site == IDS_SITE_ATTN_PROBS) {
            rh->pbuf = ids__malloc((size_t)rh->n_rows * rh->width * sizeof(float));
            if (!rh->pbuf) return ids__err(err, IDS_ERR_NOMEM, "hooks: out of memory");
        } else if (h->action == IDS_ACT_CALLBACK) {
            size_t tmp_n = (size_t)rh->n_rows * rh->width;
            if (tmp_n > c->hook_tmp_n) {
                float *t = ids__realloc(c->hook_tmp, tmp_n * sizeof(float));
                if (!t) return ids__err(err, IDS_ERR_NOMEM, "hooks: out of memory");
                c->hook_tmp = t;
                c->hook_tmp_n = tmp_n;
            }
        }
    }
    return IDS_OK;
}

static void free_variant(rvariant *rv) {
    for (int k = 0; k < rv->n_hooks; k++) {
        free(rv->hooks[k].rows);
        free(rv->hooks[k].pbuf);
    }
    free(rv->hooks);
}

/* Captures of probabilities go from pbuf to the caller after the run. */
static void finish_variant(rvariant *rv) {
    for (int k = 0; k < rv->n_hooks; k++) {
        rhook *rh = &rv->hooks[k];
        if (rh->h->site == IDS_SITE_ATTN_PROBS && rh->h->action == IDS_ACT_CAPTURE && rh->h->out)
            memcpy(rh->h->out, rh->pbuf, (size_t)rh->n_rows * rh->width * sizeof(float));
    }
}

ids_status ids_ctx_hook_shape(const ids_ctx *c, const ids_hook *h, int *n_rows, int *width, ids_err *err) {
    if (!c->seq) return ids__err(err, IDS_ERR_ARG, "context has no sequence (call ids_ctx_prefill)");
    int *rows;
    ids_status st = ids_sel_resolve(c->seq, c->m->tok, &h->sel, &rows, n_rows, err);
    if (st) return st;
    free(rows);
    *width = hook_width(c, h, c->n_seq);
    return IDS_OK;
}

static int cmp_start(const void *a, const void *b) {
    const rvariant *x = a, *y = b;
    if (x->start != y->start) return x->start - y->start;
    return x->orig_index - y->orig_index;
}

/* Run resolved variants (already sorted); outputs in caller order. */
static ids_status run_resolved(ids_ctx *c, rvariant *vars, int n_vars, const ids_run_opts *o,
                               ids_run_out *outs, ids_err *err) {
    const ids_hparams *hp = &c->m->hp;
    const int n = c->n_seq;
    bool reuse = c->have_clean && !o->full_recompute;
    int P = n - 1;
    for (int v = 0; v < n_vars; v++) {
        if (!reuse) vars[v].start = 0;
        if (vars[v].min_row < P) P = vars[v].min_row;
    }
    if (!reuse || o->logits == IDS_LOGITS_ALL) P = 0;
    if (c->blk_lo && c->blk_hi[P] > c->blk_lo[P]) P = c->blk_lo[P]; /* a changed image row changes its whole block */
    const int m = n - P;
    if (m > c->p.max_rows)
        return ids__err(err, IDS_ERR_RANGE, "run: %d rows to compute exceed max_rows %d", m, c->p.max_rows);
    qsort(vars, (size_t)n_vars, sizeof *vars, cmp_start);
    int per_pass = c->p.max_rows / m;
    if (o->logits == IDS_LOGITS_ALL) per_pass = 1;
    int xrows[OUT_ROWS * 64];
    for (int v0 = 0; v0 < n_vars; v0 += per_pass) {
        int nv = n_vars - v0 < per_pass ? n_vars - v0 : per_pass;
        fwd_plan pl = {vars + v0, nv, P, m, c->k_clean, c->v_clean, NULL, NULL, NULL, c->resid_clean, n};
        if (!reuse) pl.kp = pl.vp = NULL;
        /* RESID captures below a variant's start come from the clean cache */
        for (int v = 0; v < nv; v++) {
            rvariant *rv = &vars[v0 + v];
            for (int k = 0; k < rv->n_hooks; k++) {
                const rhook *rh = &rv->hooks[k];
                if (rh->h->site != IDS_SITE_RESID || rh->h->layer >= rv->start || !rh->h->out) continue;
                const float *src = c->resid_clean + (size_t)rh->h->layer * c->p.n_ctx * hp->n_embd;
                for (int i = 0; i < rh->n_rows; i++)
                    memcpy(rh->h->out + (size_t)i * hp->n_embd, src + (size_t)rh->rows[i] * hp->n_embd,
                           (size_t)hp->n_embd * sizeof(float));
            }
        }
        forward(c, &pl);
        for (int v = 0; v < nv; v++) finish_variant(&vars[v0 + v]);
        if (o->logits == IDS_LOGITS_ALL) {
            ids_run_out *ou = &outs[vars[v0].orig_index];
            for (int r0 = 0; r0 < m; r0 += OUT_ROWS * 64) {
                int k = m - r0 < OUT_ROWS * 64 ? m - r0 : OUT_ROWS * 64;
                float *dst[OUT_ROWS * 64], *cd[OUT_ROWS * 64];
                for (int i = 0; i < k; i++) {
                    xrows[i] = r0 + i;
                    dst[i] = ou->logits ? ou->logits + (size_t)(r0 + i) * hp->n_vocab : NULL;
                    cd[i] = (r0 + i == m - 1) ? ou->cand_logprob : NULL;
                }
                final_logits(c, xrows, k, dst, cd, o->cand, o->n_cand);
            }
        } else if (o->logits == IDS_LOGITS_LAST || o->n_cand > 0) {
            for (int a = 0; a < nv; a += OUT_ROWS * 64) {
                int k = nv - a < OUT_ROWS * 64 ? nv - a : OUT_ROWS * 64;
                float *dst[OUT_ROWS * 64], *cd[OUT_ROWS * 64];
                for (int i = 0; i < k; i++) {
                    ids_run_out *ou = &outs[vars[v0 + a + i].orig_index];
                    xrows[i] = (a + i) * m + m - 1;
                    dst[i] = o->logits == IDS_LOGITS_LAST ? ou->logits : NULL;
                    cd[i] = ou->cand_logprob;
                }
                final_logits(c, xrows, k, dst, cd, o->cand, o->n_cand);
            }
        }
    }
    return IDS_OK;
}

static ids_status check_opts(const ids_ctx *c, const ids_run_opts *o, ids_err *err) {
    for (int i = 0; i < o->n_cand; i++)
        if (o->cand[i] < 0 || o->cand[i] >= c->m->hp.n_vocab)
            return ids__err(err, IDS_ERR_RANGE, "run: candidate token %d is outside the vocabulary "
                            "(0..%d)", o->cand[i], c->m->hp.n_vocab - 1);
    return IDS_OK;
}

/* mllama: the keys and values of the new sequence's cross-attention states at every cross-attention
 * layer (they do not depend on the stream, so edited runs reuse them). */
static ids_status xattn_states(ids_ctx *c, ids_err *err) {
    const ids_hparams *hp = &c->m->hp;
    float **bufs[3] = {&c->xk, &c->xv, &c->xscores};
    for (int i = 0; i < 3; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    const int nk = ids_seq_n_cross(c->seq);
    if (!nk) return IDS_OK;
    const size_t per = (size_t)nk * c->kv_dim, nt = (size_t)ids__ops_threads(&c->ops);
    c->xk = ids__malloc((size_t)hp->n_xattn * per * sizeof(float));
    c->xv = ids__malloc((size_t)hp->n_xattn * per * sizeof(float));
    c->xscores = ids__malloc(nt * nk * sizeof(float));
    if (!c->xk || !c->xv || !c->xscores)
        return ids__err(err, IDS_ERR_NOMEM, "run: out of memory for the keys of %d cross-attention rows", nk);
    for (int i = 0; i < hp->n_xattn; i++)
        ids__xattn_kv(&c->ops, hp, &c->m->layers[hp->xattn_layer[i]], ids_seq_cross(c->seq), nk, c->xk + i * per,
                      c->xv + i * per);
    return IDS_OK;
}

static ids_status copy_seq(ids_ctx *c, const ids_seq *s, ids_err *err) {
    const ids_hparams *hp = &c->m->hp;
    if (ids_seq_n_embd(s) != hp->n_embd)
        return ids__err(err, IDS_ERR_ARG, "sequence rows have width %d but the model's n_embd is %d",
                        ids_seq_n_embd(s), hp->n_embd);
    int n = ids_seq_len(s);
    if (n == 0) return ids__err(err, IDS_ERR_ARG, "empty sequence");
    if (n > c->p.n_ctx || n > c->p.max_rows)
        return ids__err(err, IDS_ERR_RANGE, "sequence of %d rows exceeds the context (n_ctx %d, "
                        "max_rows %d)", n, c->p.n_ctx, c->p.max_rows);
    ids_seq *cp = ids_seq_new(hp->n_embd);
    if (!cp) return ids__err(err, IDS_ERR_NOMEM, "run: out of memory for a sequence of %d rows", n);
    for (int i = 0; i < n; i++) {
        const ids_row *r = ids_seq_row(s, i);
        if (r->token >= hp->n_vocab_embd) {
            ids_seq_free(cp);
            return ids__err(err, IDS_ERR_RANGE, "sequence row %d: token %d is outside the "
                            "vocabulary (%d)", i, r->token, hp->n_vocab_embd);
        }
    }
    /* rows are copied verbatim (positions included) */
    ids_status st = ids__seq_copy(cp, s, err);
    if (st) {
        ids_seq_free(cp);
        return st;
    }
    ids_seq_free(c->seq);
    c->seq = cp;
    c->n_seq = n;
    if (c->blk_lo) { /* generated rows (after the sequence) are text */
        ids__image_blocks(cp, c->blk_lo, c->blk_hi);
        for (int r = n; r < c->p.n_ctx; r++) c->blk_lo[r] = c->blk_hi[r] = r + 1;
    }
    /* DeepStack (HF adds as many as the tower made; zeros on text-only sequences) */
    c->n_ds = ids_seq_n_deepstack(cp) ? ids_seq_n_deepstack(cp) : hp->n_deepstack;
    if (c->n_ds > hp->n_layer) c->n_ds = hp->n_layer;
    c->n_gen = 0;
    c->have_clean = false;
    return hp->n_xattn ? xattn_states(c, err) : IDS_OK;
}

ids_status ids_ctx_prefill(ids_ctx *c, const ids_seq *s, const ids_hook *hooks, int n_hooks,
                           const ids_run_opts *opts, ids_run_out *out, ids_err *err) {
    ids_run_opts o0 = {0};
    const ids_run_opts *o = opts ? opts : &o0;
    ids_status st = copy_seq(c, s, err);
    if (st) return st;
    if ((st = check_opts(c, o, err))) return st;
    rvariant rv;
    st = resolve_variant(c, hooks, n_hooks, &rv, true, err);
    if (st) {
        free_variant(&rv);
        return st;
    }
    rv.start = 0;
    rv.orig_index = 0;
    const int n = c->n_seq;
    fwd_plan pl = {&rv, 1, 0, n, NULL, NULL, c->k_clean, c->v_clean, c->resid_clean, NULL, n};
    forward(c, &pl);
    finish_variant(&rv);
    ids_run_out dummy = {0};
    if (!out) out = &dummy;
    int xrows[OUT_ROWS * 64];
    if (o->logits == IDS_LOGITS_ALL) {
        for (int r0 = 0; r0 < n; r0 += OUT_ROWS * 64) {
            int k = n - r0 < OUT_ROWS * 64 ? n - r0 : OUT_ROWS * 64;
            float *dst[OUT_ROWS * 64], *cd[OUT_ROWS * 64];
            for (int i = 0; i < k; i++) {
                xrows[i] = r0 + i;
                dst[i] = out->logits ? out->logits + (size_t)(r0 + i) * c->m->hp.n_vocab : NULL;
                cd[i] = r0 + i == n - 1 ? out->cand_logprob : NULL;
            }
            final_logits(c, xrows, k, dst, cd, o->cand, o->n_cand);
        }
    } else if (o->logits == IDS_LOGITS_LAST || o->n_cand > 0) {
        xrows[0] = n - 1;
        float *dst[1] = {o->logits == IDS_LOGITS_LAST ? out->logits : NULL};
        float *cd[1] = {out->cand_logprob};
        final_logits(c, xrows, 1, dst, cd, o->cand, o->n_cand);
    }
    free_variant(&rv);
    c->have_clean = c->p.keep_clean;
    return IDS_OK;
}

ids_status ids_ctx_run_batch(ids_ctx *c, const ids_variant *vars, int n_vars, const ids_run_opts *opts,
                             ids_run_out *outs, ids_err *err) {
    ids_run_opts o0 = {0};
    const ids_run_opts *o = opts ? opts : &o0;
    if (!c->seq) return ids__err(err, IDS_ERR_ARG, "run: no sequence (call ids_ctx_prefill first)");
    if (n_vars <= 0) return ids__err(err, IDS_ERR_ARG, "run: %d variants", n_vars);
    ids_status st = check_opts(c, o, err);
    if (st) return st;
    rvariant *rv = ids__calloc((size_t)n_vars, sizeof *rv);
    if (!rv) return ids__err(err, IDS_ERR_NOMEM, "run: out of memory");
    int done = 0;
    for (; done < n_vars; done++) {
        st = resolve_variant(c, vars[done].hooks, vars[done].n_hooks, &rv[done], false, err);
        rv[done].orig_index = done;
        if (st) {
            done++;
            break;
        }
    }
    if (!st) st = run_resolved(c, rv, n_vars, o, outs, err);
    for (int v = 0; v < done; v++) free_variant(&rv[v]);
    free(rv);
    return st;
}

ids_status ids_ctx_run(ids_ctx *c, const ids_hook *hooks, int n_hooks, const ids_run_opts *opts,
                       ids_run_out *out, ids_err *err) {
    ids_variant v = {hooks, n_hooks};
    ids_run_out dummy = {0};
    return ids_ctx_run_batch(c, &v, 1, opts, out ? out : &dummy, err);
}

ids_status ids_ctx_generate(ids_ctx *c, const ids_hook *hooks, int n_hooks, int n_new,
                            int32_t *tokens, int *n_out, ids_err *err) {
    const ids_hparams *hp = &c->m->hp;
    *n_out = 0;
    if (!c->seq) return ids__err(err, IDS_ERR_ARG, "generate: no sequence (call ids_ctx_prefill first)");
    if (n_new < 0 || c->n_seq + n_new > c->p.n_ctx)
        return ids__err(err, IDS_ERR_RANGE, "generate: %d new tokens after %d rows exceed n_ctx %d",
                        n_new, c->n_seq, c->p.n_ctx);
    const size_t cache_n = (size_t)hp->n_layer * c->p.n_ctx * c->kv_dim;
    if (!c->k_gen) { /* allocated once, outside any forward pass */
        c->k_gen = ids__malloc(cache_n * sizeof(float));
        c->v_gen = ids__malloc(cache_n * sizeof(float));
        if (!c->k_gen || !c->v_gen) {
            free(c->k_gen);
            free(c->v_gen);
            c->k_gen = c->v_gen = NULL;
            return ids__err(err, IDS_ERR_NOMEM, "generate: out of memory for the KV cache");
        }
        c->bytes += 2 * cache_n * sizeof(float);
    }
    rvariant rv;
    ids_status st = resolve_variant(c, hooks, n_hooks, &rv, false, err);
    if (st) {
        free_variant(&rv);
        return st;
    }
    const int n = c->n_seq;
    bool reuse = c->have_clean;
    int P = reuse ? (rv.min_row < n - 1 ? rv.min_row : n - 1) : 0;
    if (c->blk_lo && c->blk_hi[P] > c->blk_lo[P]) P = c->blk_lo[P]; /* whole image blocks (attended both ways) */
    if (!reuse) rv.start = 0;
    if (reuse) { /* rows and layers the edits cannot change come from the clean run */
        for (int l = 0; l < hp->n_layer; l++) {
            size_t rows = (size_t)(l < rv.start ? n : P);
            size_t off = (size_t)l * c->p.n_ctx * c->kv_dim;
            memcpy(c->k_gen + off, c->k_clean + off, rows * c->kv_dim * sizeof(float));
            memcpy(c->v_gen + off, c->v_clean + off, rows * c->kv_dim * sizeof(float));
        }
    }
    /* a variant starting above block 0 must still store K/V of rows >= P for the blocks it
     * skips: those equal the clean ones (copied above when start > l, since then all rows are) */
    c->n_gen = 0;
    fwd_plan pl = {&rv, 1, P, n - P, c->k_gen, c->v_gen, c->k_gen, c->v_gen, NULL, c->resid_clean, n};
    forward(c, &pl);
    finish_variant(&rv);
    free_variant(&rv);
    for (int k = 0; k < n_new; k++) {
        int xr = pl.m - 1;
        final_logits(c, &xr, 1, NULL, NULL, NULL, 0);
        const float *lg = c->logit_buf;
        int best = 0;
        for (int i = 1; i < hp->n_vocab; i++) if (lg[i] > lg[best]) best = i;
        if (ids_tokenizer_is_eog(c->m->tok, best)) break;
        tokens[(*n_out)++] = best;
        if (k + 1 == n_new) break;
        c->gen_tok[c->n_gen++] = best;
        rvariant none = {0};
        none.start = 0;
        fwd_plan dp = {&none, 1, n + c->n_gen - 1, 1, c->k_gen, c->v_gen, c->k_gen, c->v_gen, NULL, NULL,
                       n + c->n_gen};
        forward(c, &dp);
        pl.m = 1;
    }
    c->n_gen = 0;
    return IDS_OK;
}
