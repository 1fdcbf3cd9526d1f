/* Hugging Face model folders (config.json, safetensors weights, tokenizer files) presented as the
 * GGUF pair llama.cpp's converters would write. Private to the formats layer: hf.c (folder, weights,
 * tensor names), hf_tokenizer.c (tokenizer.json -> tokenizer.ggml.* keys). */
#ifndef IDSCOPE_FORMATS_HF_H
#define IDSCOPE_FORMATS_HF_H

#include "idscope/formats.h"
#include "base/internal.h"
#include "formats/gguf_view.h"

struct cJSON;

typedef struct ids__hf_weight {
    const char *name;        /* as in the checkpoint */
    const ids_st_tensor *t;  /* inside files[file] */
    int file;
} ids__hf_weight;

typedef struct ids__hf {
    char *dir;
    struct cJSON *config;           /* config.json */
    const struct cJSON *text, *vision; /* text_config (or the top level), vision_config */
    char model_type[48];
    char **file_names;              /* the safetensors files, relative to dir */
    ids_st_file **files;
    int n_files;
    const char *index_name;         /* "model.safetensors.index.json" or NULL */
    ids__hf_weight *w;
    int n_w;
    ids_strmap names;               /* checkpoint name -> index into w */
    void **bufs;                    /* converted copies the views point into */
    int n_bufs, cap_bufs;
} ids__hf;

ids_status ids__hf_open(ids__hf **out, const char *dir, ids_err *err);
void ids__hf_close(void *h);
/* An owned buffer of n bytes, freed with the folder. */
void *ids__hf_alloc(ids__hf *h, size_t n, ids_err *err);
/* A JSON file of the folder; NULL with IDS_ERR_NOT_FOUND when it does not exist (no message). */
ids_status ids__hf_json(const ids__hf *h, const char *name, struct cJSON **out, ids_err *err);
/* The tokenizer.ggml.* keys from tokenizer.json and tokenizer_config.json, with n_vocab entries
 * (ids without a token become [PADn], as llama.cpp's converter writes them). */
ids_status ids__hf_tokenizer(ids__hf *h, ids_gguf_writer *w, int64_t n_vocab, ids_err *err);

#endif
