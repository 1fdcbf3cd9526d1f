/* Llama-3.2-Vision's decoder (architecture "mllama"): the Llama blocks plus gated cross-attention
 * layers at mllama.attention.cross_attention_layers (HF MllamaCrossAttentionDecoderLayer):
 *   x += tanh(attn_gate) * o_proj(attention(q_norm(q_proj(rms(x))), k_norm(k_proj(S)), v_proj(S)))
 *   x += tanh(mlp_gate) * row_mask * mlp(rms(x))
 * where S are the images' cross-attention states (ids_seq_add_cross), no rotation anywhere in the
 * layer, and row_mask (HF full_text_row_masked_out_mask) is 0 on rows that attend to no image; such
 * rows attend to every key (HF's mask row is all zero there). lm.c runs the layers; this file holds
 * their keys, weights and the attention itself. */
#include "idscope/engine.h"
#include "engine/lm.h"
#include "engine/ops.h"

#include <math.h>

ids_status ids__mllama_hparams(ids_model *m, ids_err *err) {
    ids_hparams *hp = &m->hp;
    const ids_gguf_value *a;
    const char *key = "mllama.attention.cross_attention_layers";
    ids_status st = ids_gguf_get_arr(m->g, key, -1, &a, err);
    if (st) return st;
    if (a->v.arr.n < 1 || a->v.arr.n > 64)
        return ids__err(err, IDS_ERR_FORMAT, "%s: %s has %llu entries (1..64)", ids_gguf_path(m->g), key,
                        (unsigned long long)a->v.arr.n);
    for (uint64_t i = 0; i < a->v.arr.n; i++) {
        int64_t x = -1;
        if (ids_gguf_arr_i64(a, i, &x) != IDS_OK || x < 0 || x >= hp->n_layer || (i && x <= hp->xattn_layer[i - 1]))
            return ids__err(err, IDS_ERR_FORMAT, "%s: %s[%llu] = %lld is not an ascending block index below %d",
                            ids_gguf_path(m->g), key, (unsigned long long)i, (long long)x, hp->n_layer);
        hp->xattn_layer[i] = (int)x;
    }
    hp->n_xattn = (int)a->v.arr.n;
    return IDS_OK;
}

bool ids__model_is_xattn(const ids_hparams *hp, int l) {
    for (int i = 0; i < hp->n_xattn; i++)
        if (hp->xattn_layer[i] == l) return true;
    return false;
}

ids_status ids__mllama_gates(ids_model *m, int l, ids_err *err) {
    ids_layer_w *L = &m->layers[l];
    static const char *const nm[2] = {"cross_attn_attn_gate", "cross_attn_mlp_gate"};
    for (int k = 0; k < 2; k++) {
        char name[64];
        float *g = NULL;
        snprintf(name, sizeof name, "blk.%d.%s", l, nm[k]);
        ids_status st = ids__load_vec(m->g, name, 1, true, &g, err);
        if (st) return st;
        *(k ? &L->xgate_mlp : &L->xgate_attn) = tanhf(g[0]);
        free(g);
    }
    return IDS_OK;
}

void ids__xattn_kv(ids_ops *o, const ids_hparams *hp, const ids_layer_w *L, const float *states, int n_keys, float *K,
                   float *V) {
    const ids_tensor *w[2] = {L->wk, L->wv};
    float *y[2] = {K, V};
    ids__matmul_n(o, 2, w, states, n_keys, y, NULL);
    ids__rmsnorm(o, K, K, L->k_norm, hp->head_dim, n_keys * hp->n_head_kv, hp->rms_eps);
}

typedef struct {
    const ids_hparams *hp;
    const ids_seq *s;
    const float *q, *K, *V;
    float *out, *scores; /* scores: [threads, n_keys] */
    int m, p0, n_keys;
    const uint64_t *rowmask; /* [m] images of each row */
} xattn_job;

/* Task = (variant, head): each row's softmax over the keys of its images (over every key when it has
 * none), then the values' weighted sum. */
static void xattn_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    const xattn_job *j = arg;
    const ids_hparams *hp = j->hp;
    const int hd = hp->head_dim, h = t % hp->n_head, v = t / hp->n_head, hk = h / (hp->n_head / hp->n_head_kv);
    const int kv_dim = hp->n_head_kv * hd, q_dim = hp->n_head * hd, nx = ids_seq_n_cross_images(j->s);
    const float scale = 1.0f / sqrtf((float)hd);
    float *S = j->scores + (size_t)tid * j->n_keys;
    for (int i = 0; i < j->m; i++) {
        const size_t row = (size_t)v * j->m + i;
        const float *q = j->q + row * q_dim + (size_t)h * hd;
        const uint64_t mask = j->rowmask[i];
        for (int k = 0; k < j->n_keys; k++) S[k] = -INFINITY;
        for (int x = mask ? 0 : nx - 1; x < nx; x++) { /* a row without images: every key, once */
            int r, lo, nv;
            ids_seq_cross_image(j->s, x, &r, &lo, &nv);
            if (mask && !(mask >> x & 1)) continue;
            const int k0 = mask ? lo : 0, k1 = mask ? lo + nv : j->n_keys;
            for (int k = k0; k < k1; k++) {
                const float *kr = j->K + (size_t)k * kv_dim + (size_t)hk * hd;
                float d = 0;
                for (int e = 0; e < hd; e++) d += q[e] * kr[e];
                S[k] = d * scale;
            }
        }
        float mx = -INFINITY;
        for (int k = 0; k < j->n_keys; k++) if (S[k] > mx) mx = S[k];
        double sum = 0;
        for (int k = 0; k < j->n_keys; k++) {
            S[k] = S[k] == -INFINITY ? 0.0f : expf(S[k] - mx);
            sum += S[k];
        }
        const float inv = (float)(1.0 / sum);
        float *o = j->out + row * q_dim + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int k = 0; k < j->n_keys; k++) {
            if (S[k] == 0.0f) continue;
            const float p = S[k] * inv, *vr = j->V + (size_t)k * kv_dim + (size_t)hk * hd;
            for (int e = 0; e < hd; e++) o[e] += p * vr[e];
        }
    }
}

void ids__xattn(ids_ops *o, const ids_hparams *hp, const ids_seq *s, const float *q, int n_var, int m,
                const uint64_t *rowmask, const float *K, const float *V, float *scores, float *out) {
    xattn_job j = {hp, s, q, K, V, out, scores, m, 0, ids_seq_n_cross(s), rowmask};
    ids__pool_run(o->pool, n_var * hp->n_head, xattn_task, &j);
}
