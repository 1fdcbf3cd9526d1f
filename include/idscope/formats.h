/* idscope layer "formats": weight types and quantization, GGUF reading and writing, .npy, safetensors, images, video.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_FORMATS_H
#define IDSCOPE_FORMATS_H

#include "idscope/base.h"

#ifdef __cplusplus
extern "C" {
#endif

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
/* Let the OS drop the resident pages of [p, p + n) where they are part of g's file mapping (the whole pages
 * inside it; elsewhere nothing happens). The bytes stay readable: touched again, they are read from the
 * file. For tensors a copy of which is used instead (weights packed for the matmul kernels). */
void ids_gguf_drop_pages(const ids_gguf *g, const void *p, size_t n);

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
/* Hugging Face model folders                                                                   */

/* A folder with config.json, model.safetensors (or the shards named by
 * model.safetensors.index.json; F32, F16 or BF16, memory-mapped), tokenizer.json,
 * tokenizer_config.json and preprocessor_config.json, for the model types `llava` (LLaVA-1.5,
 * llava-hf layout), `qwen2_vl`, `qwen2_5_vl`, `gemma3`, `qwen3_vl`, `internvl_chat` (OpenGVLab's layout,
 * whose tokenizer may be vocab.json + merges.txt) and `internvl` (transformers'), opened as the GGUF that llama.cpp's converters
 * would write for one part of it: the decoder (IDS_HF_TEXT: keys, tokenizer, tensors with Llama's
 * Q/K rows permuted for llama.cpp's rotary layout) or the vision tower and projector
 * (IDS_HF_VISION). The handle's tensors point into the mapped files; ids_gguf_path is the folder.
 * Errors name the file and the tensor (a missing shard, a shape that disagrees with config.json,
 * an unknown model_type). */
typedef enum ids_hf_part { IDS_HF_TEXT = 0, IDS_HF_VISION = 1 } ids_hf_part;
bool ids_hf_is_dir(const char *path);
ids_status ids_hf_open(ids_gguf **out, const char *dir, ids_hf_part part, ids_err *err);
/* A GGUF file, or the given part of a Hugging Face folder when `path` is a folder. */
ids_status ids_gguf_open_model(ids_gguf **out, const char *path, ids_hf_part part, ids_err *err);
/* Write the folder's GGUF pair as OUT_DIR/text.gguf and OUT_DIR/mmproj.gguf (the same bytes the
 * loader reads; on failure neither is left). */
ids_status ids_hf_convert(const char *dir, const char *out_dir, ids_err *err);

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
/* Images (RGB, 8 bits per channel, row-major, top row first)                                   */

typedef struct ids_image {
    int w, h;
    uint8_t *rgb; /* [h, w, 3], owned */
} ids_image;

/* The pixel budget: an image or video frame of more than this many pixels (width x height, read from
 * the file's header) is refused before any pixel is decoded, so that a small file cannot make the
 * library decode gigabytes (a "decompression bomb"). Default IDS_IMAGE_MAX_PIXELS_DEFAULT (64 Mpx,
 * 8192 x 8192); the environment variable IDSCOPE_MAX_PIXELS (a pixel count) replaces the default,
 * and ids_image_set_max_pixels replaces both (0: back to the environment / default). Values are
 * capped at IDS_IMAGE_PIXELS_HARD_MAX, the largest image the library holds (each side at most
 * 65536). Process-wide, like the log sink: set it once, before loading. */
#define IDS_IMAGE_MAX_PIXELS_DEFAULT (64ll << 20)
#define IDS_IMAGE_PIXELS_HARD_MAX (1ll << 28)
void ids_image_set_max_pixels(int64_t n);
int64_t ids_image_max_pixels(void); /* the budget in force */
/* IDS_OK when a w x h image is within the budget (and each side within 1..65536); otherwise
 * IDS_ERR_RANGE with a message that starts with `what` (a file name) and names the size and the
 * budget; IDS_ERR_ARG when IDSCOPE_MAX_PIXELS is set to something that is not a pixel count. */
ids_status ids_image_check_size(int64_t w, int64_t h, const char *what, ids_err *err);

/* PNG, JPEG, BMP, GIF (the first frame) and 8-bit binary PGM/PPM (maxval <= 255), recognised by
 * their leading bytes, converted to RGB; any other format is refused by name (IDS_ERR_UNSUPPORTED).
 * The size is read from the header and checked against the pixel budget before decoding; a file
 * larger than any image within the budget, or an uncompressed one shorter than its header says, is
 * refused unread. */
ids_status ids_image_load(ids_image *out, const char *path, ids_err *err);
ids_status ids_image_new(ids_image *out, int w, int h, const uint8_t fill[3], ids_err *err);
/* Do these leading bytes start a still image idscope decodes itself (PNG, JPEG, BMP, PGM/PPM; not GIF,
 * which may be animated)? ids_video_load reads such a file as a video of one frame. */
bool ids_image_is_still(const void *head, size_t n);
void ids_image_free(ids_image *img);
/* PNG, written atomically. */
ids_status ids_image_write_png(const ids_image *img, const char *path, ids_err *err);
/* Baseline JPEG at quality 1..100, written atomically. */
ids_status ids_image_write_jpeg(const ids_image *img, const char *path, int quality, ids_err *err);

/* ---- video ---- */
/* T frames sampled uniformly from a video: a folder of frame images (PNG/JPEG/BMP/GIF/PGM/PPM, in
 * name order, each read by ids_image_load, all of one size) or a video file FFmpeg's libraries
 * decode (MP4, ...; frame sizes over the pixel budget are refused from the stream's header, before
 * decoding; frames whose size differs from the first one's are scaled to it).
 * Indices are floor(i (N - 1) / (T - 1)), i = 0..T-1 (first and last frame included; numpy's
 * linspace(0, N-1, T).astype(int)). Fewer than T frames is an error naming both counts. frames:
 * T images, free with ids_video_free; n_total (may be NULL): frames in the source. */
ids_status ids_video_load(const char *path, int n_frames, ids_image **frames, int *n_total, ids_err *err);
void ids_video_free(ids_image *frames, int n);
void ids_video_sample_indices(int n_total, int n, int *idx);
/* Write frames (same size) as an MP4 (MPEG-4 part 2, every frame a key frame), atomically. */
ids_status ids_video_write_mp4(const ids_image *frames, int n, int fps, const char *path, ids_err *err);

/* Pillow-compatible bicubic resampling (a = -0.5, antialiased when shrinking, 8-bit passes). */
ids_status ids_image_resize_bicubic(const ids_image *src, int w, int h, ids_image *dst, ids_err *err);
/* The same with Pillow's bilinear (triangle) filter (Gemma 3's image processor). */
ids_status ids_image_resize_bilinear(const ids_image *src, int w, int h, ids_image *dst, ids_err *err);
/* Pad to a square with `color`, centred (LLaVA's expand2square). */
ids_status ids_image_pad_square(const ids_image *src, const uint8_t color[3], ids_image *dst,
                                ids_err *err);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_FORMATS_H */
