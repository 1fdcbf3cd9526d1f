/* Hugging Face model folders (config.json, safetensors weights, tokenizer files) presented as the
 * GGUF pair llama.cpp's converters would write. Private to the formats layer: hf.c (folder, weights,
 * tensor names), hf_families.c (Gemma 3, InternVL, Qwen3-VL), hf_tokenizer.c (tokenizer.json, or a slow
 * BPE tokenizer's vocab.json + merges.txt -> tokenizer.ggml.* keys). */
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

/* ---- shared with the per-family files (hf_families.c) ---- */
/* The first of the prefixes under which `rest` is a tensor of the checkpoint; NULL when none. */
const ids__hf_weight *ids__hf_find(const ids__hf *h, const char *const *prefixes, const char *rest);
/* A checkpoint tensor checked against its shape (HF order, outermost first): present unless
 * optional (*out NULL then), F32/F16/BF16; errors name the file, the tensor and both shapes. */
ids_status ids__hf_get(const ids__hf *h, const char *const *pre, const char *rest, int nd, const int64_t *shape,
                       bool required, const ids__hf_weight **out, ids_err *err);
/* `data` (of w's dtype) as GGUF tensor `gname` with ne = shape reversed (1-D tensors as F32). */
ids_status ids__hf_put(ids__hf *h, ids_gguf_writer *gw, const char *gname, const ids__hf_weight *w, const void *data,
                       int nd, const int64_t *shape, ids_err *err);
/* IDS_TYPE_F32 / F16 / BF16 of a safetensors dtype, -1 otherwise. */
int ids__hf_type(const char *dtype);
/* A positive integer / a number of a config object (the default when absent), named in errors. */
ids_status ids__hf_cfg_int(const ids__hf *h, const struct cJSON *obj, const char *key, long long def, long long *out,
                           ids_err *err);
ids_status ids__hf_cfg_num(const ids__hf *h, const struct cJSON *obj, const char *key, double def, double *out,
                           ids_err *err);
/* preprocessor_config.json's Qwen pixel bounds as clip.vision.image_min_pixels / _max_pixels. */
ids_status ids__hf_put_pixels(ids__hf *h, ids_gguf_writer *gw, ids_err *err);
/* ids__hf_tokenizer, also giving the number of entries written (*n_out). */
ids_status ids__hf_tokenizer_n(ids__hf *h, ids_gguf_writer *w, int64_t n_vocab, int64_t *n_out, ids_err *err);

/* The families of hf_families.c (Gemma 3, InternVL, Qwen3-VL): the builders of the text and
 * vision GGUF for a model_type, or NULL when it is not one of them. */
typedef struct ids__hf_family {
    const char *model_type;
    ids_status (*text)(ids__hf *h, ids_gguf_writer *gw, ids_err *err);
    ids_status (*vision)(ids__hf *h, ids_gguf_writer *gw, ids_err *err);
} ids__hf_family;
const ids__hf_family *ids__hf_family_of(const char *model_type);


/* hf.c's steps for the per-family files (hf_mllama.c): a tensor under the first of the prefixes
 * that has it (ids__hf_find, above); the prefix the checkpoint spells (for messages); a checked tensor added
 * under a GGUF name (map1; shape in HF's order, 1-D as F32); Llama's Q/K row permutation; image_mean / image_std as clip.vision.* keys. */
const char *ids__hf_spelling(const ids__hf *h, const char *const *prefixes);
ids_status ids__hf_map1(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre, const char *rest,
                        int nd, const int64_t *shape, bool required, ids_err *err);
ids_status ids__hf_map_permuted(ids__hf *h, ids_gguf_writer *gw, const char *gname, const char *const *pre,
                                const char *rest, int64_t rows, int64_t cols, int n_head, ids_err *err);
ids_status ids__hf_put_norm(ids__hf *h, ids_gguf_writer *gw, ids_err *err);
/* Llama-3.2-Vision (`mllama`, hf_mllama.c): the decoder with its cross-attention layers (text) or the
 * tiled tower with its projector (vision), as GGUF views of architecture "mllama" / projector
 * "mllama" (names of this project: llama.cpp has no mllama). */
ids_status ids__hf_build_mllama(ids__hf *h, ids_hf_part part, ids_gguf_writer *gw, ids_err *err);

#endif
