/* idscope layer "text": tokenizers (SPM and byte-level BPE, as llama.cpp implements them).
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_TEXT_H
#define IDSCOPE_TEXT_H

#include "idscope/formats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Tokenizers: SPM ("llama") and byte-level BPE ("gpt2") as llama.cpp implements them          */

typedef struct ids_tokenizer ids_tokenizer;

typedef enum ids_token_attr {
    IDS_TOKEN_UNDEFINED = 0, IDS_TOKEN_NORMAL = 1, IDS_TOKEN_UNKNOWN = 2, IDS_TOKEN_CONTROL = 3,
    IDS_TOKEN_USER_DEFINED = 4, IDS_TOKEN_UNUSED = 5, IDS_TOKEN_BYTE = 6
} ids_token_attr;

typedef enum ids_tokenizer_kind { IDS_TOK_SPM = 0, IDS_TOK_BPE = 1 } ids_tokenizer_kind;

/* Build from the tokenizer.ggml.* keys of an open GGUF (the GGUF may be closed afterwards). */
ids_status ids_tokenizer_load(ids_tokenizer **out, const ids_gguf *g, ids_err *err);
void ids_tokenizer_free(ids_tokenizer *t);

ids_tokenizer_kind ids_tokenizer_kind_of(const ids_tokenizer *t);
const char *ids_tokenizer_pre(const ids_tokenizer *t); /* BPE pre-tokenizer name ("" for SPM) */
int32_t ids_tokenizer_n_vocab(const ids_tokenizer *t);
int32_t ids_tokenizer_bos(const ids_tokenizer *t);     /* -1 when none */
int32_t ids_tokenizer_eos(const ids_tokenizer *t);
bool ids_tokenizer_add_bos(const ids_tokenizer *t);
const char *ids_tokenizer_piece(const ids_tokenizer *t, int32_t id); /* raw vocab text or NULL */
int ids_tokenizer_attr(const ids_tokenizer *t, int32_t id);
int32_t ids_tokenizer_find(const ids_tokenizer *t, const char *text); /* exact vocab entry or -1 */
/* true for tokens that end generation (eos, eot and the usual end-of-turn texts). */
bool ids_tokenizer_is_eog(const ids_tokenizer *t, int32_t id);

typedef struct ids_tokenize_opts {
    bool add_bos;        /* prepend BOS when the vocabulary asks for it */
    bool parse_special;  /* recognise control tokens written in the text (e.g. "<|im_start|>") */
    bool continuation;   /* the text continues earlier text (an answer after the prompt): no SPM
                            leading space is added (" Left" -> "▁Left", "Left" -> "Left") */
} ids_tokenize_opts;

/* Tokenize `len` bytes of UTF-8. The result array is malloc'd (free with free()). */
ids_status ids_tokenize(const ids_tokenizer *t, const char *text, size_t len,
                        ids_tokenize_opts opts, int32_t **ids, size_t *n_ids, ids_err *err);

/* Text of n tokens (malloc'd, NUL-terminated). Control tokens are left out unless
 * `render_special`. The SPM leading space of the first token is removed when `strip_lead`. */
ids_status ids_detokenize(const ids_tokenizer *t, const int32_t *ids, size_t n,
                          bool render_special, bool strip_lead, char **text, ids_err *err);
/* Text of one token as it reads in decoded output (malloc'd). */
char *ids_token_to_text(const ids_tokenizer *t, int32_t id);

/* The token of a word as the paper uses it: the last piece of tokenize(" " + word) without BOS.
 * Returns the id, or -1 (err filled) when the word is empty or maps to nothing. */
int32_t ids_tokenizer_word_token(const ids_tokenizer *t, const char *word, ids_err *err);
/* Index of the n-th (0-based) occurrence of token `id` in ids[from..n_ids), or -1. */
int64_t ids_find_token(const int32_t *ids, size_t n_ids, int32_t id, size_t from, int nth);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_TEXT_H */
