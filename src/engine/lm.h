/* Private declarations shared by the decoder files (model.c, lm.c). */
#ifndef IDS_LM_H
#define IDS_LM_H

#include "base/internal.h"
#include "base/pool.h"

typedef struct ids_layer_w {
    const ids_tensor *wq, *wk, *wv, *wo, *wgate, *wup, *wdown; /* ne = [n_in, n_out] */
    float *attn_norm, *ffn_norm;                              /* [n_embd] */
    float *bq, *bk, *bv, *bo;                                 /* optional biases */
    float *q_norm, *k_norm; /* [head_dim] */
    float *post_attn_norm, *post_ffn_norm;                    /* Gemma 3: [n_embd] on each sublayer's output */
    bool xattn;              /* mllama cross-attention layer: wq..wo, q_norm, k_norm are cross_attn_* */
    float xgate_attn, xgate_mlp; /* its gates, tanh applied */
} ids_layer_w;

struct ids_model {
    ids_gguf *g;
    ids_hparams hp;
    ids_tokenizer *tok;
    const ids_tensor *tok_embd; /* [n_embd, n_vocab] */
    const ids_tensor *output;   /* [n_embd, n_vocab] (tok_embd when tied) */
    float *output_norm;         /* [n_embd] */
    float *rope_ff;             /* optional [n_rot/2] frequency divisors */
    ids_layer_w *layers;        /* [n_layer] */
    struct ids__packs *packs;   /* weights packed for the matmul kernels (engine/ops.h) */
};

const float *ids__seq_embd(const ids_seq *s, int i);
/* Position the next appended row would get (M-RoPE aware). */
int32_t ids__seq_next_pos(const ids_seq *s);
/* Set the frame of embedding row i (LLaVA-OneVision's packed map and video newline). */
void ids__seq_set_frame(ids_seq *s, int i, int frame);
/* Append all rows of src (tokens, embeddings, positions) to dst. */
ids_status ids__seq_copy(ids_seq *dst, const ids_seq *src, ids_err *err);

/* Gemma 3 (decoder_gemma3.c): its keys (sliding window and pattern, the local RoPE base, the global
 * layers' linear RoPE scaling, query scale, final logit softcap) into m->hp. */
ids_status ids__gemma3_hparams(ids_model *m, ids_err *err);
/* Whether decoder block l attends within the sliding window (Gemma 3's local layers). */
bool ids__layer_is_swa(const ids_hparams *hp, int l);
/* The keys row q may attend to, [*lo, *hi): causal, inside the window on sliding layers, and (Gemma 3)
 * every row of q's own image block. blk_lo/blk_hi: the image block of each row (NULL: none). */
void ids__attn_range(const ids_hparams *hp, int l, int q, const int *blk_lo, const int *blk_hi, int *lo,
                     int *hi);
/* Image blocks of a sequence for bidirectional attention: rows [lo[r], hi[r]) form r's block (a run
 * of rows of one image); text rows get lo = hi = r + 1 (none). */
void ids__image_blocks(const ids_seq *s, int *lo, int *hi);

/* Llama-3.2-Vision (decoder_mllama.c): mllama.attention.cross_attention_layers into m->hp; whether
 * block l is one of them; block l's gates (tanh of cross_attn_attn_gate, cross_attn_mlp_gate). */
ids_status ids__mllama_hparams(ids_model *m, ids_err *err);
bool ids__model_is_xattn(const ids_hparams *hp, int l);
ids_status ids__mllama_gates(ids_model *m, int l, ids_err *err);
struct ids_ops;
/* A cross-attention layer's keys (k_norm applied) and values of the states [n_keys, n_embd]:
 * K, V [n_keys, kv_dim]. */
void ids__xattn_kv(struct ids_ops *o, const ids_hparams *hp, const ids_layer_w *L, const float *states, int n_keys,
                   float *K, float *V);
/* Cross-attention of n_var x m rows (q [n_var * m, q_dim], normed): each row over its images' valid
 * keys (rowmask[i], ids_seq_cross_images), or over every key when it has none: out [n_var * m, q_dim].
 * scores: [threads, n_cross]. */
void ids__xattn(struct ids_ops *o, const ids_hparams *hp, const ids_seq *s, const float *q, int n_var, int m,
                const uint64_t *rowmask, const float *K, const float *V, float *scores, float *out);

#endif
