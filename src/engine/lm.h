/* Private declarations shared by the decoder files (model.c, lm.c). */
#ifndef IDS_LM_H
#define IDS_LM_H

#include "base/internal.h"
#include "base/pool.h"

typedef struct ids_layer_w {
    const ids_tensor *wq, *wk, *wv, *wo, *wgate, *wup, *wdown; /* ne = [n_in, n_out] */
    float *attn_norm, *ffn_norm;                              /* [n_embd] */
    float *bq, *bk, *bv, *bo;                                 /* optional biases */
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
};

const float *ids__seq_embd(const ids_seq *s, int i);
/* Position the next appended row would get (M-RoPE aware). */
int32_t ids__seq_next_pos(const ids_seq *s);
/* Append all rows of src (tokens, embeddings, positions) to dst. */
ids_status ids__seq_copy(ids_seq *dst, const ids_seq *src, ids_err *err);

#endif
