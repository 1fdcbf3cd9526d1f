/* idscope — find, test and steer the spatial and temporal IDs inside vision-language models.
 *
 * One public header; every name starts with `ids_` (types, functions) or `IDS_` (constants).
 *
 * Worked example: open a GGUF file, read its architecture, dequantize a tensor, tokenize a word.
 *
 *     ids_err err;
 *     ids_gguf *g = NULL;
 *     if (ids_gguf_open(&g, "model.gguf", &err) != IDS_OK) {
 *         fprintf(stderr, "%s\n", err.msg);       // names the file, field and offset at fault
 *         return 1;
 *     }
 *     const char *arch = NULL;
 *     ids_gguf_get_str(g, "general.architecture", &arch, NULL);
 *     const ids_tensor *t = ids_gguf_find_tensor(g, "token_embd.weight");
 *     float *row = malloc(sizeof(float) * t->ne[0]);
 *     ids_dequantize(t->type, t->data, row, t->ne[0], &err);   // first row of the tensor
 *
 *     ids_tokenizer *tok = NULL;
 *     ids_tokenizer_load(&tok, g, &err);
 *     int32_t id = ids_tokenizer_word_token(tok, "frog", &err); // last piece of tokenize(" frog")
 *     ids_tokenizer_free(tok);
 *     ids_gguf_close(g);
 *
 * Conventions
 *  - Errors: functions return an ids_status (IDS_OK == 0). When a non-NULL ids_err* is passed, it
 *    receives the code and a message naming the file / key / tensor / offset and "expected X, got Y".
 *    The library never exits and never prints to stdout; diagnostics go through ids_set_log().
 *  - Ownership: every `*_open` / `*_new` / `*_load` has a matching `*_close` / `*_free`; pointers
 *    returned by getters are owned by the object they were read from and live as long as it does.
 *  - Tensor shapes follow GGUF/ggml: ne[0] is the contiguous (fastest-varying) dimension. A matrix
 *    stored as ne = [in, out] is, in row-major terms, [out][in].
 */
#ifndef IDSCOPE_H
#define IDSCOPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDS_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Status and errors                                                                           */

typedef enum ids_status {
    IDS_OK = 0,
    IDS_ERR_IO,          /* cannot open / read / write / map a file */
    IDS_ERR_FORMAT,      /* malformed or truncated input (file contents) */
    IDS_ERR_NOT_FOUND,   /* key, tensor, token or word not present */
    IDS_ERR_TYPE,        /* value present but of another type than asked */
    IDS_ERR_RANGE,       /* value out of the allowed range */
    IDS_ERR_UNSUPPORTED, /* valid input that this build cannot handle (e.g. an IQ quant type) */
    IDS_ERR_ARG,         /* invalid argument from the caller */
    IDS_ERR_NOMEM,       /* allocation failed */
    IDS_STATUS_COUNT
} ids_status;

#define IDS_ERR_MSG_MAX 512

typedef struct ids_err {
    ids_status code;
    char msg[IDS_ERR_MSG_MAX];
} ids_err;

const char *ids_status_name(ids_status s);

/* Log callback: level 0 = error, 1 = warning, 2 = info, 3 = debug. Default: warnings and errors
 * to stderr. Passing NULL restores the default. */
typedef void (*ids_log_fn)(int level, const char *msg, void *user);
void ids_set_log(ids_log_fn fn, void *user);

/* Progress of long work: called with items done and the total (the CLI prints it on stderr). */
typedef void (*ids_progress_fn)(const char *what, long done, long total, void *user);

/* Allocation-failure injection for tests: after `n` more successful allocations through the
 * library's allocator, every further one fails (n < 0 disables). */
void ids_debug_fail_alloc_after(long n);

/* ------------------------------------------------------------------------------------------ */
/* Weight / tensor element types (ggml type ids, as stored in GGUF)                              */

typedef enum ids_type {
    IDS_TYPE_F32 = 0, IDS_TYPE_F16 = 1, IDS_TYPE_Q4_0 = 2, IDS_TYPE_Q4_1 = 3,
    IDS_TYPE_Q5_0 = 6, IDS_TYPE_Q5_1 = 7, IDS_TYPE_Q8_0 = 8, IDS_TYPE_Q8_1 = 9,
    IDS_TYPE_Q2_K = 10, IDS_TYPE_Q3_K = 11, IDS_TYPE_Q4_K = 12, IDS_TYPE_Q5_K = 13,
    IDS_TYPE_Q6_K = 14, IDS_TYPE_Q8_K = 15,
    IDS_TYPE_IQ2_XXS = 16, IDS_TYPE_IQ2_XS = 17, IDS_TYPE_IQ3_XXS = 18, IDS_TYPE_IQ1_S = 19,
    IDS_TYPE_IQ4_NL = 20, IDS_TYPE_IQ3_S = 21, IDS_TYPE_IQ2_S = 22, IDS_TYPE_IQ4_XS = 23,
    IDS_TYPE_I8 = 24, IDS_TYPE_I16 = 25, IDS_TYPE_I32 = 26, IDS_TYPE_I64 = 27, IDS_TYPE_F64 = 28,
    IDS_TYPE_IQ1_M = 29, IDS_TYPE_BF16 = 30, IDS_TYPE_TQ1_0 = 34, IDS_TYPE_TQ2_0 = 35,
    IDS_TYPE_MXFP4 = 39, IDS_TYPE_NVFP4 = 40, IDS_TYPE_Q1_0 = 41, IDS_TYPE_Q2_0 = 42,
    IDS_TYPE_COUNT = 43
} ids_type;

/* Name ("Q4_K"), or NULL for an id that is not a known type. */
const char *ids_type_name(int type);
/* Parse a name (case-insensitive); returns -1 when unknown. */
int ids_type_from_name(const char *name);
/* Elements per block and bytes per block; 0 for an unknown id. */
int64_t ids_type_block_size(int type);
int64_t ids_type_block_bytes(int type);
/* true when ids_dequantize can convert this type to F32. */
bool ids_type_can_dequantize(int type);
/* Bytes of n elements (n a multiple of the block size), or -1 when not representable. */
int64_t ids_type_row_bytes(int type, int64_t n);

/* Convert n elements (a multiple of the type's block size) from `src` (raw GGUF bytes, any
 * alignment) to float32. Matches ggml's reference dequantization. */
ids_status ids_dequantize(int type, const void *src, float *dst, int64_t n, ids_err *err);

/* Quantize / convert n float32 values into `dst` (raw GGUF bytes). Supported targets: F32, F16,
 * BF16 (round to nearest even), Q8_0 (ggml's reference quantizer). */
ids_status ids_quantize(int type, const float *src, void *dst, int64_t n, ids_err *err);

/* Scalar conversions (IEEE binary16 and bfloat16, round-to-nearest-even). */
float ids_f16_to_f32(uint16_t h);
uint16_t ids_f32_to_f16(float f);
float ids_bf16_to_f32(uint16_t h);
uint16_t ids_f32_to_bf16(float f);

/* ------------------------------------------------------------------------------------------ */
/* GGUF reading                                                                                 */

typedef enum ids_gguf_type {
    IDS_GGUF_UINT8 = 0, IDS_GGUF_INT8 = 1, IDS_GGUF_UINT16 = 2, IDS_GGUF_INT16 = 3,
    IDS_GGUF_UINT32 = 4, IDS_GGUF_INT32 = 5, IDS_GGUF_FLOAT32 = 6, IDS_GGUF_BOOL = 7,
    IDS_GGUF_STRING = 8, IDS_GGUF_ARRAY = 9, IDS_GGUF_UINT64 = 10, IDS_GGUF_INT64 = 11,
    IDS_GGUF_FLOAT64 = 12, IDS_GGUF_TYPE_COUNT
} ids_gguf_type;

const char *ids_gguf_type_name(int t);

/* A metadata value. Scalars are widened into the union (the stored type stays in `type`).
 * Strings are NUL-terminated copies (len excludes the NUL; a string may hold embedded NULs).
 * Arrays: `elem` is the element type; element i is read with the ids_gguf_arr_* accessors. */
typedef struct ids_gguf_value ids_gguf_value;
struct ids_gguf_value {
    ids_gguf_type type;
    union {
        uint64_t u;     /* UINT8..UINT64, BOOL */
        int64_t i;      /* INT8..INT64 */
        double f;       /* FLOAT32, FLOAT64 */
        struct { const char *ptr; uint64_t len; } str;
        struct { ids_gguf_type elem; uint64_t n; const void *data; } arr;
    } v;
};

typedef struct ids_tensor {
    const char *name;
    int n_dims;
    int64_t ne[4];       /* ne[0] contiguous; unused dims are 1 */
    int type;            /* ids_type */
    uint64_t offset;     /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data;    /* points into the mapped file */
} ids_tensor;

typedef struct ids_gguf ids_gguf;

/* Map and parse a file (v2 or v3). Every count, length and offset is checked. */
ids_status ids_gguf_open(ids_gguf **out, const char *path, ids_err *err);
/* Parse a buffer that stays owned by the caller and must outlive the handle. `name` is used in
 * messages. */
ids_status ids_gguf_open_memory(ids_gguf **out, const void *data, size_t size, const char *name,
                                ids_err *err);
void ids_gguf_close(ids_gguf *g);

const char *ids_gguf_path(const ids_gguf *g);
uint32_t ids_gguf_version(const ids_gguf *g);
uint32_t ids_gguf_alignment(const ids_gguf *g);
uint64_t ids_gguf_data_offset(const ids_gguf *g);
uint64_t ids_gguf_file_size(const ids_gguf *g);

int64_t ids_gguf_n_kv(const ids_gguf *g);
const char *ids_gguf_kv_key(const ids_gguf *g, int64_t i);
const ids_gguf_value *ids_gguf_kv_value(const ids_gguf *g, int64_t i);
int64_t ids_gguf_find_kv(const ids_gguf *g, const char *key);      /* -1 when absent */
const ids_gguf_value *ids_gguf_get(const ids_gguf *g, const char *key); /* NULL when absent */

/* Typed getters. Integers: any stored integer type whose value fits; floats: F32 or F64;
 * IDS_ERR_NOT_FOUND when absent, IDS_ERR_TYPE / IDS_ERR_RANGE otherwise. `err` may be NULL. */
ids_status ids_gguf_get_i64(const ids_gguf *g, const char *key, int64_t *out, ids_err *err);
ids_status ids_gguf_get_u32(const ids_gguf *g, const char *key, uint32_t *out, ids_err *err);
ids_status ids_gguf_get_f32(const ids_gguf *g, const char *key, float *out, ids_err *err);
ids_status ids_gguf_get_bool(const ids_gguf *g, const char *key, bool *out, ids_err *err);
ids_status ids_gguf_get_str(const ids_gguf *g, const char *key, const char **out, ids_err *err);
/* An array value; elem_type = -1 accepts any element type, otherwise it must match. */
ids_status ids_gguf_get_arr(const ids_gguf *g, const char *key, int elem_type,
                            const ids_gguf_value **out, ids_err *err);

/* Element access on an array value (no bounds beyond i < n are assumed: checked). */
ids_status ids_gguf_arr_i64(const ids_gguf_value *a, uint64_t i, int64_t *out);
ids_status ids_gguf_arr_f64(const ids_gguf_value *a, uint64_t i, double *out);
ids_status ids_gguf_arr_str(const ids_gguf_value *a, uint64_t i, const char **ptr, uint64_t *len);
const ids_gguf_value *ids_gguf_arr_arr(const ids_gguf_value *a, uint64_t i); /* nested arrays */

int64_t ids_gguf_n_tensors(const ids_gguf *g);
const ids_tensor *ids_gguf_tensor_at(const ids_gguf *g, int64_t i);
const ids_tensor *ids_gguf_find_tensor(const ids_gguf *g, const char *name); /* NULL if absent */
int64_t ids_tensor_nelements(const ids_tensor *t);

/* Dequantize a whole tensor into dst (ids_tensor_nelements floats). */
ids_status ids_tensor_to_f32(const ids_tensor *t, float *dst, ids_err *err);
/* Dequantize rows [r0, r0 + nr) of a tensor viewed as ne[0] x (ne[1]*ne[2]*ne[3]). */
ids_status ids_tensor_rows_f32(const ids_tensor *t, int64_t r0, int64_t nr, float *dst,
                               ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* GGUF writing                                                                                 */

typedef struct ids_gguf_writer ids_gguf_writer;

ids_gguf_writer *ids_gguf_writer_new(void);
void ids_gguf_writer_free(ids_gguf_writer *w);
/* Alignment of the data section and of every tensor (power of two, default 32). Also written as
 * general.alignment when not 32. */
ids_status ids_gguf_writer_set_alignment(ids_gguf_writer *w, uint32_t alignment, ids_err *err);
/* Metadata. Keys must be unique; setting a key twice is an error. */
ids_status ids_gguf_writer_set_u32(ids_gguf_writer *w, const char *key, uint32_t v, ids_err *err);
ids_status ids_gguf_writer_set_i32(ids_gguf_writer *w, const char *key, int32_t v, ids_err *err);
ids_status ids_gguf_writer_set_u64(ids_gguf_writer *w, const char *key, uint64_t v, ids_err *err);
ids_status ids_gguf_writer_set_f32(ids_gguf_writer *w, const char *key, float v, ids_err *err);
ids_status ids_gguf_writer_set_bool(ids_gguf_writer *w, const char *key, bool v, ids_err *err);
ids_status ids_gguf_writer_set_str(ids_gguf_writer *w, const char *key, const char *v, ids_err *err);
/* Arrays of scalars: elem_type one of the numeric/bool GGUF types, `data` n packed host values. */
ids_status ids_gguf_writer_set_arr(ids_gguf_writer *w, const char *key, int elem_type,
                                   const void *data, uint64_t n, ids_err *err);
ids_status ids_gguf_writer_set_arr_str(ids_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n, ids_err *err);
/* Copy any value (including nested arrays) from a reader. */
ids_status ids_gguf_writer_set_value(ids_gguf_writer *w, const char *key, const ids_gguf_value *v,
                                     ids_err *err);
/* A tensor of raw bytes in `type` (ne[0] a multiple of its block size). The bytes are copied. */
ids_status ids_gguf_writer_add_tensor(ids_gguf_writer *w, const char *name, int type, int n_dims,
                                      const int64_t *ne, const void *data, ids_err *err);
/* A tensor given as float32, converted to `type` (F32, F16, BF16, Q8_0). */
ids_status ids_gguf_writer_add_tensor_f32(ids_gguf_writer *w, const char *name, int type,
                                          int n_dims, const int64_t *ne, const float *data,
                                          ids_err *err);
/* Write version 3 atomically (temporary file + rename). */
ids_status ids_gguf_writer_write(const ids_gguf_writer *w, const char *path, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* .npy files (NumPy format 1.0/2.0, little-endian)                                             */

typedef struct ids_npy {
    char dtype[8];       /* "<f4", "<i4", "<f2", "<i8", "|u1", ... */
    int ndim;
    int64_t shape[8];
    void *data;          /* owned; free with ids_npy_free */
    size_t nbytes;
} ids_npy;

ids_status ids_npy_read(const char *path, ids_npy *out, ids_err *err);
void ids_npy_free(ids_npy *a);
/* dtype "<f4" or "<i4"; written atomically. */
ids_status ids_npy_write(const char *path, const char *dtype, int ndim, const int64_t *shape,
                         const void *data, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* safetensors files (readable from NumPy / PyTorch)                                             */

typedef struct ids_st_writer ids_st_writer;

ids_st_writer *ids_st_writer_new(void);
void ids_st_writer_free(ids_st_writer *w);
/* dtype "F32", "I32", "I64", "F16", "U8". The data is referenced, not copied: keep it alive until
 * ids_st_writer_write returns. */
ids_status ids_st_writer_add(ids_st_writer *w, const char *name, const char *dtype, int ndim,
                             const int64_t *shape, const void *data, ids_err *err);
ids_status ids_st_writer_meta(ids_st_writer *w, const char *key, const char *value, ids_err *err);
/* Written atomically (temporary file + rename). */
ids_status ids_st_writer_write(const ids_st_writer *w, const char *path, ids_err *err);

typedef struct ids_st_file ids_st_file;
typedef struct ids_st_tensor {
    const char *name;
    char dtype[8];
    int ndim;
    int64_t shape[8];
    const void *data; /* inside the file's buffer */
    size_t nbytes;
} ids_st_tensor;

ids_status ids_st_open(ids_st_file **out, const char *path, ids_err *err);
void ids_st_close(ids_st_file *f);
int ids_st_count(const ids_st_file *f);
const ids_st_tensor *ids_st_at(const ids_st_file *f, int i);
const ids_st_tensor *ids_st_find(const ids_st_file *f, const char *name);
const char *ids_st_meta(const ids_st_file *f, const char *key); /* NULL when absent */

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


/* ------------------------------------------------------------------------------------------ */
/* Images (RGB, 8 bits per channel, row-major, top row first)                                   */

typedef struct ids_image {
    int w, h;
    uint8_t *rgb; /* [h, w, 3], owned */
} ids_image;

/* PNG / JPEG / BMP (anything stb_image reads), converted to RGB. */
ids_status ids_image_load(ids_image *out, const char *path, ids_err *err);
ids_status ids_image_new(ids_image *out, int w, int h, const uint8_t fill[3], ids_err *err);
void ids_image_free(ids_image *img);
/* PNG, written atomically. */
ids_status ids_image_write_png(const ids_image *img, const char *path, ids_err *err);

/* ---- video ---- */
/* T frames sampled uniformly from a video: a folder of frame images (PNG/JPEG/BMP/PPM/TGA, in
 * name order) or a video file FFmpeg's libraries decode (MP4, ...). Indices are
 * floor(i (N - 1) / (T - 1)), i = 0..T-1 (first and last frame included; numpy's
 * linspace(0, N-1, T).astype(int)). Fewer than T frames is an error naming both counts. frames:
 * T images, free with ids_video_free; n_total (may be NULL): frames in the source. */
ids_status ids_video_load(const char *path, int n_frames, ids_image **frames, int *n_total, ids_err *err);
void ids_video_free(ids_image *frames, int n);
void ids_video_sample_indices(int n_total, int n, int *idx);
/* Write frames (same size) as an MP4 (MPEG-4 part 2, every frame a key frame), atomically. */
ids_status ids_video_write_mp4(const ids_image *frames, int n, int fps, const char *path, ids_err *err);

/* Pillow-compatible bicubic resampling (a = -0.5, antialiased when shrinking, 8-bit passes). */
ids_status ids_image_resize_bicubic(const ids_image *src, int w, int h, ids_image *dst, ids_err *err);
/* Pad to a square with `color`, centred (LLaVA's expand2square). */
ids_status ids_image_pad_square(const ids_image *src, const uint8_t color[3], ids_image *dst,
                                ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Stimuli: objects, scenes and sets with ground truth                                          */

/* Object catalog: built-in procedural sprites ("red circle": colour x shape) and user sprites
 * (PNG with alpha, named after the file). */
typedef struct ids_catalog ids_catalog;

ids_catalog *ids_catalog_new(void);
void ids_catalog_free(ids_catalog *c);
/* Add a user sprite; its name is the file name without extension (underscores become spaces). */
ids_status ids_catalog_add_sprite(ids_catalog *c, const char *png_path, ids_err *err);
/* Index of an object by name ("red circle", "frog"), or -1 (err lists what exists). */
int ids_catalog_find(const ids_catalog *c, const char *name, ids_err *err);
int ids_catalog_count(const ids_catalog *c);
const char *ids_catalog_name(const ids_catalog *c, int obj);
/* The word that names the object in prompts: the last word of its name ("circle"). */
const char *ids_catalog_word(const ids_catalog *c, int obj);
/* Colour of a built-in object's fill (false for user sprites). */
bool ids_catalog_color(const ids_catalog *c, int obj, uint8_t rgb[3]);
int ids_catalog_n_shapes(void);
int ids_catalog_n_colors(void);
/* Built-in object index for (colour, shape). */
int ids_catalog_builtin(int color, int shape);
const char *ids_catalog_color_name(int color);
const char *ids_catalog_shape_name(int shape);
/* Same shape (or sprite) in another built-in colour; -1 for user sprites. */
int ids_catalog_recolor(const ids_catalog *c, int obj, int color);

typedef struct ids_placed {
    int obj;        /* catalog index */
    float cx, cy;   /* centre in pixels */
    float size;     /* side of the object's square box in pixels */
    float rot;      /* rotation in degrees */
    bool visible;
} ids_placed;

/* Draw objects (in order) onto img, anti-aliased (4x4 supersampling). */
void ids_scene_draw(const ids_catalog *c, ids_image *img, const ids_placed *objs, int n);
/* Mirror an image left-right in place. */
void ids_image_mirror(ids_image *img);

typedef enum ids_relation {
    IDS_REL_LEFT_RIGHT = 0, IDS_REL_ABOVE_BELOW, IDS_REL_FRONT_BEHIND, IDS_REL_NEAR_FAR,
    IDS_REL_BETWEEN, IDS_REL_BEFORE_AFTER, IDS_REL_COUNT
} ids_relation;

/* The paper's question for a relation, with A/B (and C for between) filled in; malloc'd. */
char *ids_question(ids_relation r, const char *a, const char *b, const char *c);
/* The two answer words of a relation ("left"/"right", "above"/"below", "in front"/"behind",
 * "near"/"far", "yes"/"no", "before"/"after"). */
const char *ids_answer_word(ids_relation r, bool first);
const char *ids_relation_name(ids_relation r);

/* Stimulus sets. Every item is a deterministic function of (options, seed, index). */
typedef enum ids_set_kind {
    IDS_SET_GRID = 0, IDS_SET_DEPTH, IDS_SET_NEARFAR, IDS_SET_BETWEEN, IDS_SET_VIDEO, IDS_SET_COUNT
} ids_set_kind;

typedef struct ids_stim_opts {
    int image_size;        /* pixels (default 224) */
    int grid;              /* cells per side (default 4) */
    const float *sizes;    /* object sizes as fractions of a cell (default 1, 0.78, 0.55, 0.33) */
    int n_sizes;
    const int *objects;    /* catalog indices (default: red circle, blue square[, green triangle]) */
    int n_objects;
    bool all_pairs;        /* every ordered pair (triple) of distinct objects, else only the first */
    float jitter_pos;      /* uniform jitter of the centre, fraction of a cell (default 0) */
    float jitter_size;     /* relative size jitter (default 0) */
    float jitter_rot;      /* rotation jitter in degrees (default 0) */
    uint8_t bg[3];         /* background colour (default black) */
    const ids_image *bg_image; /* optional background image (resized to the image size) */
    int frames;            /* video frames (default 8) */
    float near_threshold;  /* near/far threshold, fraction of the image size (default 0.35) */
    int repeats;           /* random placements per configuration for nearfar/between (default 10) */
    uint64_t seed;
    bool write_mp4;        /* ids_stimuli_write: videos also as ID.mp4 (manifest key "video") */
} ids_stim_opts;

void ids_stim_default_opts(ids_stim_opts *o);

typedef struct ids_stim_obj {
    int obj;               /* catalog index */
    ids_placed p;          /* centre, size, rotation in pixels */
    int cell_x, cell_y;    /* grid cell (x = column from the left, y = row from the top), -1 if none */
    float lateral, depth;  /* depth set: world position */
    int appear;            /* video: first frame it is visible */
} ids_stim_obj;

typedef struct ids_stim {
    ids_set_kind kind;
    int index;
    int grid;              /* cells per side of the grid the item was made on */
    int n_obj;
    ids_stim_obj obj[3];   /* obj[0] is the subject (A), obj[1] the reference (B), obj[2] C */
    int n_frames;
    ids_image *frames;     /* n_frames images (1 for stills), owned */
    bool has[IDS_REL_COUNT];
    bool truth[IDS_REL_COUNT]; /* true = the first answer word (left, above, in front, near, yes, before) */
    bool mirrored, recolored;
} ids_stim;

/* Number of items in a set with these options (validates them: errors name the impossible option). */
ids_status ids_stim_count(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, int *n,
                          ids_err *err);
/* Make item `index` (0 <= index < count): placement, pixels and truth. */
ids_status ids_stim_make(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, int index,
                         ids_stim *out, ids_err *err);
void ids_stim_free(ids_stim *s);
/* Horizontal mirror of an item: pixels flipped, centres and cells mirrored, left/right swapped. */
ids_status ids_stim_mirror(const ids_stim *s, ids_stim *out, ids_err *err);
/* Attribute edit: every built-in object gets another colour (nothing else changes). */
ids_status ids_stim_recolor(const ids_stim *s, const ids_stim_opts *o, const ids_catalog *c,
                            ids_stim *out, ids_err *err);
const char *ids_set_name(ids_set_kind k);
int ids_set_from_name(const char *name);

/* Write a whole set: images (PNG; videos as frame folders) and manifest.json, atomically.
 * Mirrored / recoloured copies are written as records of their own that name their original
 * ("variant_of"). progress may be NULL. */
ids_status ids_stimuli_write(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c,
                             const char *out_dir, bool mirror, bool recolor, int limit,
                             ids_progress_fn progress, void *user, ids_err *err);
/* Read COCO-Spatial (What'sUp coco_qa_two_obj.json) into a manifest of the same record format.
 * Malformed rows are logged (warning) by index and listed in the manifest's "skipped". */
ids_status ids_coco_spatial_convert(const char *json_path, const char *image_dir, const char *out_path,
                                    int *n_ok, int *n_skipped, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Decoder models                                                                               */

typedef enum ids_rope_mode { IDS_ROPE_NORM = 0, IDS_ROPE_NEOX = 2, IDS_ROPE_MROPE = 8 } ids_rope_mode;

typedef struct ids_hparams {
    char arch[32];
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot, n_ctx_train;
    float rms_eps, rope_base;
    ids_rope_mode rope_mode;
    int rope_sections[4];  /* M-RoPE: rotary pairs per position stream (t, h, w, e) */
    bool tied_output;
} ids_hparams;

typedef struct ids_model ids_model;

/* Load a decoder (text) GGUF: weights stay in the mapped file in their stored format. */
ids_status ids_model_load(ids_model **out, const char *path, ids_err *err);
void ids_model_free(ids_model *m);
const ids_hparams *ids_model_hparams(const ids_model *m);
const ids_tokenizer *ids_model_tokenizer(const ids_model *m);
const ids_gguf *ids_model_gguf(const ids_model *m);

/* ------------------------------------------------------------------------------------------ */
/* Vision towers (mmproj GGUF)                                                                  */

typedef struct ids_vparams {
    char projector[32];   /* clip.projector_type: "mlp" (LLaVA-1.5) or "qwen2vl_merger" */
    bool dynamic;         /* dynamic resolution (Qwen2-VL): image_size/grid/n_out vary per image */
    int merge;            /* cells merged per side into one output row (Qwen2-VL: 2) */
    int min_pixels, max_pixels; /* dynamic resolution bounds */
    int image_size, patch_size, grid;  /* grid = image_size / patch_size patches per side */
    int n_embd, n_ff, n_head, n_layer; /* n_layer = blocks stored */
    int n_run;            /* blocks run: max(clip.vision.feature_layer), else all stored */
    int n_tokens;         /* tower tokens (CLS first, then patches in raster order) */
    int n_out;            /* rows per image given to the decoder */
    int n_out_embd;       /* their width (the decoder's n_embd) */
    float eps, mean[3], std[3];
    bool use_gelu;        /* false: quick-GELU */
    bool ffn_swapped;     /* legacy naming: fc1 stored as ffn_down */
} ids_vparams;

typedef struct ids_vision ids_vision;

ids_status ids_vision_load(ids_vision **out, const char *path, ids_err *err);
void ids_vision_free(ids_vision *v);
const ids_vparams *ids_vision_params(const ids_vision *v);
/* Override the dynamic-resolution pixel bounds (Qwen2-VL). */
ids_status ids_vision_set_pixel_bounds(ids_vision *v, int min_pixels, int max_pixels, ids_err *err);

/* What encoding these frames gives: the preprocessed size, the grid of output rows
 * (grid_t temporal patches x grid_h x grid_w, raster order) and the tower's token count. */
typedef struct ids_vplan {
    int width, height;
    int grid_t, grid_h, grid_w;
    int n_out;     /* grid_t * grid_h * grid_w rows for the decoder */
    int n_tokens;  /* tokens inside the tower (CLS + patches, or patches) */
} ids_vplan;
/* Dynamic resolution rule (Qwen2-VL, HF smart_resize): each side rounded to the nearest multiple
 * of 28 (ties to even), then scaled down (floor) or up (ceil) by one common factor to keep
 * width * height inside [min_pixels, max_pixels]; resampled with Pillow's bicubic filter, not at all
 * when the size is already right. A video is a list of frames grouped in pairs (the last frame is
 * repeated when the count is odd). */
ids_status ids_vision_plan(const ids_vision *v, const ids_image *frames, int n_frames, ids_vplan *out,
                           ids_err *err);
ids_status ids_vision_encode_frames(const ids_vision *v, const ids_image *frames, int n_frames,
                                    int n_threads, float *out, float *blocks, ids_err *err);
/* Image -> normalized planar pixels [3, H, W] as the tower expects (LLaVA-1.5: pad to a square with
 * the mean colour (122,116,104), bicubic resize to S; Qwen2-VL: the dynamic-resolution size; then
 * (x/255 - mean) / std). Size from ids_vision_plan. */
ids_status ids_vision_preprocess(const ids_vision *v, const ids_image *img, float *pixels, ids_err *err);
/* Encode one image: out [n_out, n_out_embd]; blocks (optional) [n_run, n_tokens, n_embd] = the
 * tower's stream after each block (Qwen2-VL: patches in merge order, each 2x2 group together). */
ids_status ids_vision_encode(const ids_vision *v, const ids_image *img, int n_threads, float *out,
                             float *blocks, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Sequences: what every row of a run is                                                       */

typedef enum ids_row_kind { IDS_ROW_TEXT = 0, IDS_ROW_IMAGE = 1 } ids_row_kind;

typedef struct ids_row {
    int32_t token;     /* token id, or -1 for an embedding row (image patch / given vector) */
    int8_t kind;       /* ids_row_kind */
    int16_t image;     /* image / frame index for image rows, else -1 */
    int16_t cell_row;  /* patch or merged cell of the image: row, column (-1 for text) */
    int16_t cell_col;
    int16_t frame;     /* temporal patch of a video (0 for still images, -1 for text) */
    int32_t pos[3];    /* rotary position (t, h, w); equal for models without M-RoPE */
} ids_row;

typedef struct ids_seq ids_seq;

ids_seq *ids_seq_new(int n_embd);
void ids_seq_free(ids_seq *s);
/* Append token rows (text). Positions continue from the last row. */
ids_status ids_seq_add_tokens(ids_seq *s, const int32_t *ids, size_t n, ids_err *err);
/* Tokenize and append; BOS only when add_bos and the vocabulary asks for it. */
ids_status ids_seq_add_text(ids_seq *s, const ids_tokenizer *t, const char *text, bool add_bos,
                            bool parse_special, ids_err *err);
/* Append n_rows embedding rows ([n_rows, n_embd], copied). kind = IDS_ROW_IMAGE with a grid of
 * grid_w columns gives each row its cell (i / grid_w, i % grid_w); IDS_ROW_TEXT rows are plain
 * given vectors (cell -1). */
ids_status ids_seq_add_embd(ids_seq *s, const float *rows, int n_rows, ids_row_kind kind,
                            int image, int grid_w, ids_err *err);
/* Positions of image rows: one per row (llama), or M-RoPE (t, h, w) grids (Qwen2-VL). */
void ids_seq_set_mrope(ids_seq *s, bool on);
/* Append an image's (or video's) rows: grid_t temporal patches of grid_h x grid_w cells, raster
 * order ([grid_t * grid_h * grid_w, n_embd]). With M-RoPE, cell (t, r, c) gets position
 * (p0 + t, p0 + r, p0 + c) and the next row p0 + max(grid_t, grid_h, grid_w). */
ids_status ids_seq_add_image(ids_seq *s, const float *rows, int image, int grid_t, int grid_h,
                             int grid_w, ids_err *err);
int ids_seq_len(const ids_seq *s);
const ids_row *ids_seq_row(const ids_seq *s, int i);
/* The input vector of an embedding row (image patch / given vector) i; NULL for token rows. */
const float *ids_seq_embd(const ids_seq *s, int i);
int ids_seq_n_embd(const ids_seq *s);

/* Position selectors */
typedef enum ids_sel_kind {
    IDS_SEL_ALL = 0,  /* every row */
    IDS_SEL_RANGE,    /* rows [begin, end) */
    IDS_SEL_LIST,     /* explicit rows */
    IDS_SEL_IMAGE,    /* image rows (of image `image`, or all images when image < 0) */
    IDS_SEL_TEXT,     /* text rows */
    IDS_SEL_WORD,     /* the token of " " + word (last piece), nth occurrence (0-based) */
    IDS_SEL_LAST      /* the last row */
} ids_sel_kind;

typedef struct ids_sel {
    ids_sel_kind kind;
    int begin, end;       /* RANGE */
    const int *list;      /* LIST */
    int n_list;
    int image;            /* IMAGE */
    const char *word;     /* WORD */
    int nth;              /* WORD */
    bool after_image;     /* WORD: search only after the last image row (the paper's rule) */
} ids_sel;

/* Resolve a selector to row indices (malloc'd, ascending as given). Errors name the value at fault
 * (row past the end, word not in the sequence, ...). */
ids_status ids_sel_resolve(const ids_seq *s, const ids_tokenizer *t, const ids_sel *sel,
                           int **rows, int *n_rows, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Hooks                                                                                        */

typedef enum ids_site_kind {
    IDS_SITE_RESID = 0, /* residual stream at layer l = 0..n_layer (0 = embeddings, l = after block l) */
    IDS_SITE_ATTN_OUT,  /* attention output of block l (after the output projection), l < n_layer */
    IDS_SITE_MLP_OUT,   /* MLP output of block l, l < n_layer */
    IDS_SITE_ATTN_PROBS,/* attention probabilities of block l: per selected query row [n_head, n_seq] */
    IDS_SITE_COUNT
} ids_site_kind;

typedef enum ids_action {
    IDS_ACT_CAPTURE = 0, /* copy the selected rows into `out` ([n_sel, width]) */
    IDS_ACT_ADD,         /* add `vec` ([width], or [n_sel, width] when per_row) */
    IDS_ACT_REPLACE,     /* replace the selected rows with `src` ([n_sel, width]) */
    IDS_ACT_SCALE,       /* multiply by `scale` */
    IDS_ACT_CALLBACK     /* call fn with a writable pointer to the selected rows */
} ids_action;

typedef struct ids_hook_view {
    ids_site_kind site;
    int layer;
    int variant;     /* index of the variant in a batch */
    int n_rows;      /* selected rows */
    const int *rows; /* their sequence indices */
    int width;       /* floats per row (n_embd, or n_head * n_seq for attention probabilities) */
} ids_hook_view;

/* data: [n_rows, width], rows in the order of view->rows; writable. */
typedef void (*ids_hook_fn)(const ids_hook_view *view, float *data, void *user);

typedef struct ids_hook {
    ids_site_kind site;
    int layer;
    ids_sel sel;
    ids_action action;
    float *out;          /* CAPTURE */
    const float *vec;    /* ADD */
    bool per_row;        /* ADD */
    const float *src;    /* REPLACE */
    float scale;         /* SCALE */
    ids_hook_fn fn;      /* CALLBACK */
    void *user;          /* CALLBACK */
    size_t len;          /* floats in out / vec / src; checked against what the selection needs */
} ids_hook;

/* A set of hooks that makes one edited run of the context's sequence. */
typedef struct ids_variant {
    const ids_hook *hooks;
    int n_hooks;
} ids_variant;

/* ------------------------------------------------------------------------------------------ */
/* Vision-language models: a decoder plus a vision tower                                       */

#define IDS_IMAGE_MARKER "<image>"
#define IDS_VIDEO_MARKER "<video>"

typedef struct ids_vlm ids_vlm;

/* Load a text GGUF and an mmproj GGUF; their widths must agree. */
ids_status ids_vlm_load(ids_vlm **out, const char *text_path, const char *mmproj_path, ids_err *err);
void ids_vlm_free(ids_vlm *v);
const ids_model *ids_vlm_model(const ids_vlm *v);
const ids_vision *ids_vlm_vision(const ids_vlm *v);
/* The family's chat prompt around a question, with one <image> marker per image
 * (LLaVA-1.5: "USER: <image>\nQUESTION ASSISTANT:"). malloc'd. */
char *ids_vlm_prompt(const ids_vlm *v, const char *question, int n_images);
/* Split `prompt` at <image> markers (their count must equal n_images), tokenize each text part as
 * llama.cpp does (BOS once at the start, special tokens parsed), encode each image and insert its
 * rows. vision_blocks (optional): [n_images, n_run, n_tokens, n_vembd]. */
ids_status ids_vlm_build_seq(const ids_vlm *v, const char *prompt, const ids_image *images,
                             int n_images, int n_threads, float *vision_blocks, ids_seq **out,
                             ids_err *err);
/* The same with <video> markers too: images are taken in marker order, one per <image> and
 * video_frames per <video>. A video is one block of temporal patches (frames in pairs) where the
 * tower has a video mode (Qwen2-VL: rows carry their temporal patch in ids_row.frame), else one
 * image block per frame (LLaVA-style: ids_row.image is the frame). vision_blocks only without
 * videos. */
ids_status ids_vlm_build_video_seq(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                                   int video_frames, int n_threads, float *vision_blocks, ids_seq **out, ids_err *err);
/* The chat prompt around a question about n_images images and then one video: ids_vlm_prompt with
 * n_images + 1 markers, the last one <video>. malloc'd. */
char *ids_vlm_video_prompt(const ids_vlm *v, const char *question, int n_images);

/* Parse "all" or a list like "0,3,5-7" of integers in [lo, hi]. *out is malloc'd. */
ids_status ids_parse_index_list(const char *spec, int lo, int hi, int **out, int *n, ids_err *err);
/* Parse a position spec against a sequence: "all", "last", "image", "text", "word:WORD[:N]"
 * (N-th occurrence after the image, 0-based) or an index list. */
ids_status ids_parse_positions(const char *spec, const ids_seq *s, const ids_tokenizer *t, int **out,
                               int *n, ids_err *err);

typedef struct ids_capture_opts {
    const char *layers;    /* "all" or an index list over 0..n_layer (default "all") */
    const char *positions; /* see ids_parse_positions (default "all") */
    bool resid, logits, image_embd, vision;
    int n_threads;
} ids_capture_opts;

/* One forward pass of prompt + images; writes a safetensors file with tokens [n_pos] (-1 on image
 * rows), positions [n_sel, 3], and the selected sites: resid [n_layers, n_sel, n_embd], logits
 * [n_sel, n_vocab], image_embd [n_img_rows, n_embd], vision [n_blocks, n_vis_tokens, n_vembd]
 * (with a leading n_images axis when there are several), plus metadata. */
ids_status ids_capture(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                       const ids_capture_opts *o, const char *out_path, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Training the bundled default model (a tiny LLaVA-1.5-layout VLM)                              */

typedef enum ids_task {
    IDS_TASK_DESCRIBE = 0, /* "Describe the image." -> "circle c1 r2 square c3 r0" */
    IDS_TASK_LEFT_RIGHT, IDS_TASK_ABOVE_BELOW, IDS_TASK_FRONT_BEHIND, IDS_TASK_NEAR_FAR,
    IDS_TASK_BEFORE_AFTER,
    IDS_TASK_TEXT_SPATIAL, /* no image: the scene written out, then a left/right or above/below question */
    IDS_TASK_LOCATE,       /* one object: "Describe the image." -> "circle c1 r2" (a perception warm-up) */
    IDS_TASK_WHERE,        /* two objects: "Where is the red circle?" -> "c1 r2" (binding by name) */
    IDS_TASK_COUNT
} ids_task;

const char *ids_task_name(ids_task t); /* "describe", "left-right", ..., "text-spatial" */
int ids_task_from_name(const char *name);

#define IDS_MAX_STAGES 4

typedef struct ids_train_stage {
    int steps;
    float weights[IDS_TASK_COUNT]; /* relative frequency of each task's batches */
} ids_train_stage;

typedef struct ids_train_config {
    /* vision tower */
    int image_size, patch_size, vit_width, vit_layers, vit_heads, vit_ff;
    /* decoder */
    int width, layers, heads, ff;
    /* data */
    int frames;            /* video frames for before-after */
    float holdout;         /* fraction of ordered shape pairs held out of training */
    /* optimisation */
    int batch, warmup, eval_every, checkpoint_every;
    float lr, min_lr, weight_decay, clip;
    /* auxiliary location loss: a linear read-out (training only, not exported) of the residual
     * stream entering decoder block aux_layer (aux_layer = layers: the last residual) at the
     * question's object words predicts where each object is (x, y, depth, frame); weight 0 = off */
    float aux_weight;
    int aux_layer;
    uint64_t seed;
    int n_stages;
    ids_train_stage stages[IDS_MAX_STAGES];
    int threads;
    int shards;            /* a batch is split into this many shards run side by side (default 2);
                              results depend on shards, not on threads */
    char init_from[512];   /* start from the weights exported in this folder (fresh optimiser) */
} ids_train_config;

void ids_train_default_config(ids_train_config *c);
/* JSON with the fields above (stages as [{"steps": N, "weights": {"describe": 1, ...}}]). */
ids_status ids_train_config_load(const char *path, ids_train_config *c, ids_err *err);
/* Train and export DIR/text.gguf + DIR/mmproj.gguf (plus DIR/ckpt-STEP/ checkpoints and
 * DIR/train-log.jsonl). progress gets (what, step, total steps). */
ids_status ids_train(const ids_train_config *c, const char *out_dir, ids_progress_fn progress, void *user,
                     ids_err *err);
/* Is this ordered pair of built-in shapes held out of training under this config? */
bool ids_train_heldout(const ids_train_config *c, int shape_a, int shape_b);

/* Evaluation with the engine on fresh stimuli: accuracy of a task (answer = the likelier of the two
 * answer words' first tokens at the answer position). n questions, seed fixed. held_out: 1 = only
 * held-out shape pairs, 0 = only trained pairs, -1 = all. */
ids_status ids_eval_task(const ids_vlm *v, ids_task task, int n, uint64_t seed, int held_out,
                         const ids_train_config *c, int n_threads, int *n_correct, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Experiments: spatial IDs                                                                      */

/* The ID arithmetic of the paper, on activations already captured:
 * h[pair][anchor cell][subject key][layer][E] with subject key = (y * G + x) * n_sizes + size
 * (anchor == subject cell entries are ignored). Mean-centres within (pair, anchor cell) over all
 * subject keys, averages over anchor cells per subject key (per-pair ID), averages over pairs
 * (universal ID), and computes the axes from the universal ID at size index axis_size:
 * y_axis = mean over x, y1 <= y2 of ID(x, y2) - ID(x, y1) (the paper's ranges, zero terms included),
 * x_axis likewise. Outputs: per_pair [P][K][L][E] (may be NULL), universal [K][L][E], x_axis and
 * y_axis [L][E]. All sums in double. */
void ids_ids_compute(const float *h, int n_pairs, int grid, int n_sizes, int n_layers, int n_embd,
                     int axis_size, float *per_pair, float *universal, float *x_axis, float *y_axis);

/* Statistics of one layer's cell IDs: n_cells vectors of width E at grid coordinates (x, y).
 * r2: fraction of the IDs' variance a linear function c + x a + y b explains; plane: fraction of
 * the variance inside the plane of the two axes (orthonormalised, x first); pca: the 2-D principal
 * coordinates of each cell [n_cells][2] (may be NULL); pca_var: variance fraction of those two. */
typedef struct ids_id_stats {
    double r2, plane, pca_var;
} ids_id_stats;
void ids_ids_layer_stats(const float *ids, const int *xs, const int *ys, int n_cells, int n_embd,
                         const float *x_axis, const float *y_axis, ids_id_stats *out, float *pca);
/* Read OUT_DIR/ids.safetensors and write OUT_DIR/stats.json and stats.csv: per layer r2, plane,
 * pca_var, the cells' PCA coordinates, and (when per-pair IDs were stored) the mean cosine of
 * per-pair IDs with the universal ID. Uses the largest size. */
ids_status ids_ids_stats(const char *dir, ids_err *err);

/* ID-strength score per layer: S = r2 x max(0, pair_cosine) x max(0, swap_id - swap_noise), from
 * `ids stats` (stats.json, extracted with --per-pair) and `steer belief` (steer-belief.json); each
 * factor lies in [0, 1]. Writes out_path (JSON, atomically) with every factor per layer of the
 * steering band and the best layer. */
ids_status ids_score(const char *stats_json, const char *steer_json, const char *out_path, int *best_layer,
                     double *best_score, ids_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Experiments: temporal IDs                                                                     */

/* Videos of T frames (one image block per frame) in which object A appears at frame i and B at
 * frame j (i != j, 1..T-1); question "Does the A appear before or after the B?". */
typedef struct ids_temporal_opts {
    const int *objects;     /* extract: at least 2 (every ordered pair); swap / steer: default red circle, blue square */
    int n_objects;
    int frames;             /* T (default 8; steer: taken from the IDs file) */
    int image_size, grid;   /* default: the model's input size (224 when dynamic), 4 */
    int n_items;            /* swap / steer: videos per ordered pair (default 8) */
    float factor;           /* steer: factor on T[f] - T[source] (raw, default 5) */
    int layer_lo, layer_hi; /* steer band, inclusive (default 1 .. n_layer - 1) */
    int source;             /* steer: 0 = the paper's pairing T[f] - T[T - f]; s > 0: T[f] - T[s] */
    const char *ids_path;   /* steer: temporal.safetensors from ids_temporal_extract (same model) */
    const char *mvbench;    /* swap: MVBench scene-transition JSON instead of synthetic videos (n_items = at most that many) */
    const char *video_dir;  /* ... and the folder its video paths are relative to */
    uint64_t seed;
    int n_threads;
} ids_temporal_opts;

/* A temporal question about a real video: "Does the scene FIRST occur before or after the scene
 * SECOND?"; the words read and patched are the last word of each phrase. */
typedef struct ids_tvq {
    char video[1024];
    char question[512];
    char first[128], second[128];
    char word_first[64], word_second[64];
    bool truth_before;
} ids_tvq;
/* MVBench scene-transition questions: the original task file (a list of {"video", "question",
 * "candidates", "answer": "From the X to the Y."}: X then Y, asked in both orders, alternately) or
 * the paper's derived manifest ({"video_path", "scene1", "scene2", "query", "correct_order",
 * "query_order"}; before when query_order == correct_order). Video paths are joined to video_dir
 * when relative. Records that cannot be used (missing fields, no "From ... to ..." answer, both
 * phrases ending in the same word) are skipped and counted. *out: malloc'd array. */
ids_status ids_mvbench_load(const char *json_path, const char *video_dir, ids_tvq **out, int *n, int *n_skipped,
                            ids_err *err);

/* Temporal IDs: every ordered object pair, every (i, j); the object words' residual rows at every
 * layer, averaged per appearance frame within a pair, then over pairs, then mean-centred over the
 * frames. Writes out_dir/temporal.safetensors ("temporal" [L][T-1][E], "time_axis" [L][E]: the
 * least-squares slope in the frame index), temporal.json (metadata; per layer the 1-D PCA
 * coordinate of each frame, PC1's variance fraction and the Spearman correlation of the
 * coordinate with the frame index; best_layer = the layer >= 1 whose PC1 explains most) and
 * temporal.csv. */
ids_status ids_temporal_extract(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o, const char *out_dir,
                                ids_progress_fn progress, void *user, ids_err *err);
/* 1-D PCA of F temporal IDs (frames in order, width E): coord[F] (may be NULL) oriented so that the
 * last frame lies right of the first; PC1's share of the variance; Spearman(coord, frame index). */
void ids_temporal_layer_stats(const float *tids, int F, int E, float *coord, double *pc1_var, double *spearman);
/* Spearman rank correlation (average ranks for ties); NAN when either side is constant. */
double ids_spearman(const double *a, const double *b, int n);
/* The time-reversed video: out[k] = in[n - 1 - k] (shallow copies: the images stay in's). */
void ids_video_reverse(const ids_image *in, int n, ids_image *out);

/* Time-reversal patching: like ids_swap_run with the frame order reversed as the edit; per layer
 * and position set (IDS_SWAP_IMAGE / TEXT / OBJECTS) the recovered fraction of the reversal's
 * effect on log P(before) (first), log P(after) (second) and their difference. */
typedef struct ids_temporal_swap_result {
    int n_layers, n_items, n_skipped;
    float *first, *second, *diff; /* [n_layers * IDS_SWAP_SET_COUNT], owned */
    float *diff_pooled;           /* as in ids_swap_result */
} ids_temporal_swap_result;
ids_status ids_temporal_swap(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                             ids_temporal_swap_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_temporal_result_free(ids_temporal_swap_result *r);

/* Temporal steering: at each layer of the band add factor (T[f] - T[source(f)]) to the subject word
 * for every target frame f = 1..T-1; mean change of log P(before) and log P(after) over the videos.
 * With the paper's pairing the frame f = T/2 adds nothing: a built-in null. A layer counts as
 * monotonic when the Spearman correlation of the change of log P(after) with f is at least
 * IDS_TEMPORAL_MONOTONIC_RHO. */
#define IDS_TEMPORAL_MONOTONIC_RHO 0.9
typedef struct ids_temporal_steer_result {
    int layer_lo, n_band, frames, n_items;
    int null_frame;            /* the target frame whose added vector is zero, -1 if none */
    float *d_before, *d_after; /* [n_band][frames] (frame f at index f - 1), owned */
    float *rho_after;          /* [n_band] Spearman(f, change of log P(after)) */
    float monotonic;           /* fraction of the band's layers with rho_after >= IDS_TEMPORAL_MONOTONIC_RHO */
} ids_temporal_steer_result;
ids_status ids_temporal_steer(const ids_vlm *v, const ids_catalog *cat, const ids_temporal_opts *o,
                              ids_temporal_steer_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_temporal_steer_result_free(ids_temporal_steer_result *r);

/* Self-contained HTML report (inline SVG, no network) of the results found in dir: ids/stats.json
 * (and ids/ids.json), swap/swap.json and swap/swap-control.json, steer/steer-belief.json,
 * steer/steer-grid-*.json, depth/depth.json, score.json, temporal/temporal.json,
 * temporal/temporal-swap.json and temporal/temporal-steer.json. Sections without results say so. Writes
 * dir/report.html atomically; *n_sections receives how many sections had data. */
ids_status ids_report(const char *dir, int *n_sections, ids_err *err);

typedef struct ids_extract_opts {
    const int *objects;   /* catalog indices (>= 2, distinct words); every ordered pair is used */
    int n_objects;
    int grid;             /* default 4 */
    const float *sizes;   /* fractions of a cell (default 1, 0.78, 0.55, 0.33) */
    int n_sizes;
    int image_size;       /* default: the tower's input size, or 224 for dynamic towers */
    bool per_pair;        /* also store every pair's IDs */
    int n_threads;
} ids_extract_opts;

/* Render the grid set, run every image with the question "Is the B to the left or right of the A?"
 * (B = subject at every cell, A = anchor at every other cell), capture the subject word's token
 * (last piece of " " + word, first occurrence after the image) at every layer 0..n_layer, and
 * write OUT_DIR/ids.safetensors (universal [L+1, G, G, S, E] indexed [layer][y][x][size], x_axis,
 * y_axis [L+1, E], per_pair when asked) and OUT_DIR/ids.json (metadata). */
ids_status ids_ids_extract(const ids_vlm *v, const ids_catalog *cat, const ids_extract_opts *o,
                           const char *out_dir, ids_progress_fn progress, void *user, ids_err *err);

typedef enum ids_swap_set { IDS_SWAP_IMAGE = 0, IDS_SWAP_TEXT, IDS_SWAP_OBJECTS, IDS_SWAP_SET_COUNT } ids_swap_set;

typedef struct ids_swap_opts {
    const int *objects;   /* catalog indices; every ordered pair (default red circle, blue square) */
    int n_objects;
    int grid, n_images;   /* grid cells per side (4); images per pair drawn from the grid set (8) */
    int image_size;       /* default: the tower's input size, or 224 */
    uint64_t seed;
    int n_threads;
} ids_swap_opts;

/* Per layer and position set: mean recovered fraction of an edit's effect, for log P(left),
 * log P(right) and their difference D, when the clean run's residual rows of the set are replaced at
 * that layer by the edited image's. frac = (clean - patched) / (clean - edited); items whose edit
 * moves D by less than 1e-3 are skipped. */
typedef struct ids_swap_result {
    int n_layers, n_items, n_skipped;
    float *left, *right, *diff; /* [n_layers * IDS_SWAP_SET_COUNT], owned: per-image fractions averaged */
    float *diff_pooled;         /* the difference's recovery pooled over images: sum of sign(effect) x
                                   (clean - patched) / sum of |effect| (steady when effects are small) */
} ids_swap_result;

/* Mirror patching (the edit is the horizontal mirror) or, with control, the attribute edit (the
 * recoloured image, question unchanged). Uses the clean run's cache and batches all variants. */
ids_status ids_swap_run(const ids_vlm *v, const ids_catalog *cat, const ids_swap_opts *o, bool control,
                        ids_swap_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_swap_result_free(ids_swap_result *r);
const char *ids_swap_set_name(ids_swap_set s);

typedef struct ids_steer_opts {
    const char *ids_path; /* ids.safetensors from ids extract (same model) */
    const int *objects;   /* default red circle, blue square; every ordered pair */
    int n_objects;
    int grid, n_images;   /* grid of the IDs (from the file) and images per pair (default 8) */
    int image_size;
    ids_relation relation;/* IDS_REL_LEFT_RIGHT (default) or IDS_REL_ABOVE_BELOW */
    float factor;         /* steering norm = factor x the token's norm at that layer (default 5) */
    int layer_lo, layer_hi; /* band, inclusive (default 1 .. n_layer - 1) */
    int greedy_tokens;    /* steer belief: greedy answer length for the word verdicts (0 = off) */
    uint64_t seed;
    int n_threads;
} ids_steer_opts;

typedef struct ids_steer_result {
    int layer_lo, n_band, n_items, n_skipped;
    float *rate_id, *rate_noise; /* [n_band] fraction of beliefs swapped, owned */
    float best3_id, best3_noise; /* mean over the 3 layers with the highest ID rate (the paper's) */
    /* the same verdicts from a short greedy answer (greedy_tokens > 0): swapped when the clean
     * answer names one answer word and the steered answer the other (whole words, see
     * ids_answer_verdict); NULL when not run */
    float *greedy_id, *greedy_noise;
    float greedy_best3_id, greedy_best3_noise; /* at the 3 layers with the highest greedy ID rate */
} ids_steer_result;
/* Which answer word a generated text names first, as a whole word (case-insensitive, letters
 * and digits only): 0 = `first`, 1 = `second`, -1 = neither ("alright" names neither "right"). */
int ids_answer_verdict(const char *text, const char *first, const char *second);

/* Belief-swap steering: per layer in the band, add to the subject word the universal-ID difference
 * that pushes it against the model's own answer (and the opposite to the reference word), rescaled
 * to factor x the word's activation norm; control: Gaussian noise of the same norms (seeded). A
 * belief is swapped when the sign of log P(first answer) - log P(second) flips. */
ids_status ids_steer_belief(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                            ids_steer_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_steer_result_free(ids_steer_result *r);

/* Arbitrary steering at one layer (o->layer_lo; default n_layer / 2): the subject word gets
 * factor x (U(target) - U(source)), source = its true cell, for every target cell; delta[t] = mean over
 * images of the change of log P(first answer) - log P(second) ([grid * grid], raster order, owned).
 * The factor is not rescaled by the token's norm (as the paper's arbitrary steering). */
typedef struct ids_steer_grid_result {
    int grid, layer, n_items;
    float *delta;
} ids_steer_grid_result;
ids_status ids_steer_grid(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                          ids_steer_grid_result *out, ids_progress_fn progress, void *user, ids_err *err);

/* Depth diagnosis: per layer in the band, the subject word is pushed down (+) or up (-) with the
 * row-only ID difference U(0, G-1) - U(0, 0), rescaled to factor x its norm; mean changes of
 * D_ab = log P(above) - log P(below) on grid scenes and of D_fb = log P(in [front]) - log P(behind)
 * on depth scenes. [n_band] each, owned. A model that reads depth from height moves D_fb with the
 * vertical ID. */
typedef struct ids_depth_result {
    int layer_lo, n_band, n_grid, n_depth;
    float *ab_down, *ab_up, *fb_down, *fb_up;
} ids_depth_result;
ids_status ids_depth_diag(const ids_vlm *v, const ids_catalog *cat, const ids_steer_opts *o,
                          ids_depth_result *out, ids_progress_fn progress, void *user, ids_err *err);
void ids_depth_result_free(ids_depth_result *r);

/* ------------------------------------------------------------------------------------------ */
/* Run context: per-run state over a shared model                                              */

typedef struct ids_ctx ids_ctx;

typedef struct ids_ctx_params {
    int n_ctx;       /* longest sequence (prompt + generated tokens) */
    int max_rows;    /* rows computed together (variants x rows); default n_ctx */
    int n_threads;   /* default: online CPUs */
    bool keep_clean; /* keep the clean run's residuals and K/V for reuse (default true) */
} ids_ctx_params;

ids_ctx_params ids_ctx_default_params(void);
ids_status ids_ctx_new(ids_ctx **out, const ids_model *m, ids_ctx_params p, ids_err *err);
void ids_ctx_free(ids_ctx *c);
/* Bytes of the buffers the context holds. */
size_t ids_ctx_memory(const ids_ctx *c);

typedef enum ids_logits_mode { IDS_LOGITS_NONE = 0, IDS_LOGITS_LAST, IDS_LOGITS_ALL } ids_logits_mode;

typedef struct ids_run_opts {
    bool full_recompute;   /* ignore the clean cache: compute every layer at every row */
    ids_logits_mode logits;/* what goes to out->logits */
    const int32_t *cand;   /* candidate tokens: log-probabilities at the last row */
    int n_cand;
} ids_run_opts;

typedef struct ids_run_out {
    float *logits;       /* caller buffer: [n_vocab] (LAST) or [n_seq, n_vocab] (ALL), or NULL */
    float *cand_logprob; /* caller buffer [n_cand], or NULL */
} ids_run_out;

/* Run the sequence without edits and make it the context's current sequence (its clean run is
 * kept for reuse when keep_clean). Hooks given here may only capture. */
ids_status ids_ctx_prefill(ids_ctx *c, const ids_seq *s, const ids_hook *hooks, int n_hooks,
                           const ids_run_opts *opts, ids_run_out *out, ids_err *err);
/* One edited run of the current sequence. */
ids_status ids_ctx_run(ids_ctx *c, const ids_hook *hooks, int n_hooks, const ids_run_opts *opts,
                       ids_run_out *out, ids_err *err);
/* Many edited runs of the current sequence, computed together (outs: one per variant). */
ids_status ids_ctx_run_batch(ids_ctx *c, const ids_variant *vars, int n_vars,
                             const ids_run_opts *opts, ids_run_out *outs, ids_err *err);
/* Greedy generation of up to n_new tokens after the current sequence, with `hooks` applied to the
 * prompt pass. Stops early at an end-of-generation token (not written). */
ids_status ids_ctx_generate(ids_ctx *c, const ids_hook *hooks, int n_hooks, int n_new,
                            int32_t *tokens, int *n_out, ids_err *err);

/* Rows and floats per row that a hook's selection covers on the current sequence (the size
 * of its CAPTURE / REPLACE buffers). */
ids_status ids_ctx_hook_shape(const ids_ctx *c, const ids_hook *h, int *n_rows, int *width,
                              ids_err *err);
const ids_seq *ids_ctx_seq(const ids_ctx *c);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_H */
