/* Writes the binary seed inputs of the fuzz harnesses (make fuzz-corpus): small GGUF files (every
 * metadata type, nested arrays, one small tensor of every type the library dequantizes, SPM and
 * BPE vocabularies), safetensors, .npy, images (PNG, BMP, TGA, JPEG, GIF, PPM/PGM), an MP4.
 * Deterministic: the same bytes on every run. The JSON seeds are copied by make_corpus.sh.
 * Usage: make_corpus OUTDIR (OUTDIR/gguf, OUTDIR/safetensors, ... are created). */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"

#include <stb/stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *g_out;
static uint64_t g_rng = 0x1234567;

static unsigned rnd(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(g_rng >> 33);
}

static void die(const char *what, const ids_err *err) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static const char *path(const char *sub, const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", g_out, sub);
    mkdir(buf, 0755);
    snprintf(buf, sizeof buf, "%s/%s/%s", g_out, sub, name);
    return buf;
}

static void write_bytes(const char *sub, const char *name, const void *p, size_t n) {
    FILE *f = fopen(path(sub, name), "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) die(name, NULL);
}

#define CHECK(expr, what)                                                                          \
    do {                                                                                           \
        if ((expr) != IDS_OK) die(what, &err);                                                     \
    } while (0)

/* ---- GGUF ---- */

static void gguf_metadata(void) {
    ids_err err;
    ids_gguf_writer *w = ids_gguf_writer_new();
    CHECK(ids_gguf_writer_set_str(w, "general.architecture", "llama", &err), "arch");
    CHECK(ids_gguf_writer_set_str(w, "general.name", "fuzz seed", &err), "name");
    CHECK(ids_gguf_writer_set_u32(w, "llama.block_count", 2, &err), "u32");
    CHECK(ids_gguf_writer_set_i32(w, "seed.i32", -7, &err), "i32");
    CHECK(ids_gguf_writer_set_u64(w, "seed.u64", 1ull << 40, &err), "u64");
    CHECK(ids_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f, &err), "f32");
    CHECK(ids_gguf_writer_set_bool(w, "seed.bool", true, &err), "bool");
    const uint8_t u8[3] = {1, 2, 255};
    const int16_t i16[2] = {-300, 300};
    const double f64[2] = {0.5, -1e300};
    const int64_t i64[2] = {-1, INT64_MAX};
    CHECK(ids_gguf_writer_set_arr(w, "seed.arr_u8", IDS_GGUF_UINT8, u8, 3, &err), "arr u8");
    CHECK(ids_gguf_writer_set_arr(w, "seed.arr_i16", IDS_GGUF_INT16, i16, 2, &err), "arr i16");
    CHECK(ids_gguf_writer_set_arr(w, "seed.arr_f64", IDS_GGUF_FLOAT64, f64, 2, &err), "arr f64");
    CHECK(ids_gguf_writer_set_arr(w, "seed.arr_i64", IDS_GGUF_INT64, i64, 2, &err), "arr i64");
    const char *strs[3] = {"a", "", "long string"};
    CHECK(ids_gguf_writer_set_arr_str(w, "seed.arr_str", strs, 3, &err), "arr str");
    CHECK(ids_gguf_writer_write(w, path("gguf", "metadata.gguf"), &err), "write");
    ids_gguf_writer_free(w);

    /* nested arrays: copied from a reader value built by hand in the file bytes */
    static const unsigned char nested[] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        11, 0, 0, 0, 0, 0, 0, 0, 's', 'e', 'e', 'd', '.', 'n', 'e', 's', 't', 'e', 'd',
        9, 0, 0, 0,                                      /* array */
        9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,              /* of 2 arrays */
        5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, /* [i32 1, 2] */
        8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'}; /* [str "x"] */
    write_bytes("gguf", "nested.gguf", nested, sizeof nested);
}

static void gguf_tensors(void) {
    ids_err err;
    ids_gguf_writer *w = ids_gguf_writer_new();
    CHECK(ids_gguf_writer_set_str(w, "general.architecture", "llama", &err), "arch");
    for (int type = 0; type < IDS_TYPE_COUNT; type++) {
        if (!ids_type_can_dequantize(type)) continue;
        int64_t bs = ids_type_block_size(type), bb = ids_type_block_bytes(type);
        int64_t ne[2] = {bs, 2};
        unsigned char *raw = malloc((size_t)(bb * 2));
        for (int64_t i = 0; i < bb * 2; i++) raw[i] = (unsigned char)rnd();
        if (type == IDS_TYPE_F32 || type == IDS_TYPE_F16 || type == IDS_TYPE_BF16 || type == IDS_TYPE_F64)
            memset(raw, 0x3c, (size_t)(bb * 2)); /* finite values */
        char name[64];
        snprintf(name, sizeof name, "t.%s", ids_type_name(type));
        CHECK(ids_gguf_writer_add_tensor(w, name, type, 2, ne, raw, &err), name);
        free(raw);
    }
    CHECK(ids_gguf_writer_write(w, path("gguf", "tensors.gguf"), &err), "write");
    ids_gguf_writer_free(w);

    w = ids_gguf_writer_new();
    CHECK(ids_gguf_writer_set_alignment(w, 64, &err), "alignment");
    const float v[8] = {1, -2, 3.5f, 0, 1e-3f, 65504, -0.0f, 7};
    int64_t ne4[4] = {2, 2, 1, 2};
    CHECK(ids_gguf_writer_add_tensor_f32(w, "w4d", IDS_TYPE_F16, 4, ne4, v, &err), "w4d");
    int64_t ne1[1] = {8};
    CHECK(ids_gguf_writer_add_tensor_f32(w, "w1d", IDS_TYPE_F32, 1, ne1, v, &err), "w1d");
    CHECK(ids_gguf_writer_write(w, path("gguf", "aligned64.gguf"), &err), "write");
    ids_gguf_writer_free(w);
}

static void gguf_vocab(const char *file, const char *model, const char *pre) {
    ids_err err;
    ids_gguf_writer *w = ids_gguf_writer_new();
    const char *toks[400];
    float scores[400];
    int32_t types[400];
    char store[400][16];
    int n = 0;
    const bool spm = !strcmp(model, "llama");
    static const char *const special[] = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 5; i++) toks[n] = special[i], scores[n] = 0, types[n++] = i == 0 ? 2 : 3;
    if (spm)
        for (int b = 0; b < 256; b++) {
            snprintf(store[n], sizeof store[n], "<0x%02X>", b);
            toks[n] = store[n], scores[n] = 0, types[n++] = 6;
        }
    else
        for (int b = 33; b < 127; b++) {
            snprintf(store[n], sizeof store[n], "%c", b);
            toks[n] = store[n], scores[n] = 0, types[n++] = 1;
        }
    static const char *const spm_words[] = {"\xe2\x96\x81", "\xe2\x96\x81the", "\xe2\x96\x81" "fro", "\xe2\x96\x81" "frog",
                                            "he", "llo", "\xe2\x96\x81hello", "e", "o", "l", "h", "r", "f", "g", "t"};
    static const char *const bpe_words[] = {"\xc4\xa0", "\xc4\xa0t", "\xc4\xa0th", "\xc4\xa0the", "he", "ll", "llo",
                                            "hello", "\xc4\xa0" "f", "\xc4\xa0" "fr", "\xc4\xa0" "frog", "\xc4\x8a"};
    const char *const *words = spm ? spm_words : bpe_words;
    int nw = spm ? 15 : 12;
    for (int i = 0; i < nw; i++) toks[n] = words[i], scores[n] = -(float)i, types[n++] = 1;
    CHECK(ids_gguf_writer_set_str(w, "general.architecture", "llama", &err), "arch");
    CHECK(ids_gguf_writer_set_str(w, "tokenizer.ggml.model", model, &err), "model");
    if (pre) CHECK(ids_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, &err), "pre");
    CHECK(ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n, &err), "tokens");
    CHECK(ids_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IDS_GGUF_FLOAT32, scores, (uint64_t)n, &err), "scores");
    CHECK(ids_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IDS_GGUF_INT32, types, (uint64_t)n, &err), "types");
    if (!spm) {
        static const char *const merges[] = {"\xc4\xa0 t", "\xc4\xa0t h", "\xc4\xa0th e", "h e", "l l", "ll o",
                                             "he llo", "\xc4\xa0 f", "\xc4\xa0" "f r", "\xc4\xa0" "fr og"};
        CHECK(ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 10, &err), "merges");
    }
    CHECK(ids_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, &err), "bos");
    CHECK(ids_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, &err), "eos");
    CHECK(ids_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, &err), "unk");
    CHECK(ids_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, &err), "add_bos");
    CHECK(ids_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", spm, &err), "space");
    CHECK(ids_gguf_writer_write(w, path("gguf", file), &err), "write");
    ids_gguf_writer_free(w);
}

/* ---- safetensors, .npy ---- */

static void safetensors(void) {
    ids_err err;
    ids_st_writer *w = ids_st_writer_new();
    const float f[6] = {1, 2, 3, 4, 5, 6};
    const int32_t i32[3] = {-1, 0, 1};
    const int64_t i64[2] = {1, -2};
    const uint16_t f16[2] = {0x3c00, 0xc000};
    const uint8_t u8[4] = {0, 1, 2, 255};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s22[2] = {2, 2};
    CHECK(ids_st_writer_add(w, "universal", "F32", 2, s23, f, &err), "f32");
    CHECK(ids_st_writer_add(w, "index", "I32", 1, s3, i32, &err), "i32");
    CHECK(ids_st_writer_add(w, "big", "I64", 1, s2, i64, &err), "i64");
    CHECK(ids_st_writer_add(w, "half", "F16", 1, s2, f16, &err), "f16");
    CHECK(ids_st_writer_add(w, "bytes", "U8", 2, s22, u8, &err), "u8");
    CHECK(ids_st_writer_add(w, "scalar", "F32", 0, NULL, f, &err), "scalar");
    CHECK(ids_st_writer_meta(w, "format", "idscope.ids.v1", &err), "meta");
    CHECK(ids_st_writer_write(w, path("safetensors", "small.safetensors"), &err), "write");
    ids_st_writer_free(w);
    w = ids_st_writer_new();
    CHECK(ids_st_writer_write(w, path("safetensors", "empty.safetensors"), &err), "write");
    ids_st_writer_free(w);
    /* ids extract's layout, small: universal [L=2, G=2, G=2, S=1, E=3], axes [2, 3], per_pair [P=2, ...] */
    float u[2 * 2 * 2 * 1 * 3], ax[2 * 3], pp[2 * 2 * 2 * 2 * 1 * 3];
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) u[i] = (float)(rnd() % 200) / 100.0f - 1;
    for (size_t i = 0; i < sizeof ax / sizeof *ax; i++) ax[i] = (float)(rnd() % 200) / 100.0f - 1;
    for (size_t i = 0; i < sizeof pp / sizeof *pp; i++) pp[i] = (float)(rnd() % 200) / 100.0f - 1;
    int64_t su[5] = {2, 2, 2, 1, 3}, sa[2] = {2, 3}, sp[6] = {2, 2, 2, 2, 1, 3};
    w = ids_st_writer_new();
    CHECK(ids_st_writer_add(w, "universal", "F32", 5, su, u, &err), "universal");
    CHECK(ids_st_writer_add(w, "x_axis", "F32", 2, sa, ax, &err), "x_axis");
    CHECK(ids_st_writer_add(w, "y_axis", "F32", 2, sa, ax, &err), "y_axis");
    CHECK(ids_st_writer_add(w, "per_pair", "F32", 6, sp, pp, &err), "per_pair");
    CHECK(ids_st_writer_meta(w, "format", "idscope.ids.v1", &err), "meta");
    CHECK(ids_st_writer_write(w, path("safetensors", "ids.safetensors"), &err), "write");
    ids_st_writer_free(w);
}

static void npy_raw(const char *name, int version, const char *dict, const void *data, size_t n) {
    unsigned char buf[512];
    size_t hoff = version == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (hoff + dl + 1 + 63) / 64 * 64; /* header padded with spaces, ends in '\n' */
    size_t hl = total - hoff;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)version, buf[7] = 0;
    if (version == 1) buf[8] = (unsigned char)hl, buf[9] = (unsigned char)(hl >> 8);
    else buf[8] = (unsigned char)hl, buf[9] = (unsigned char)(hl >> 8), buf[10] = 0, buf[11] = 0;
    memcpy(buf + hoff, dict, dl);
    memset(buf + hoff + dl, ' ', hl - dl - 1);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, n);
    write_bytes("npy", name, buf, total + n);
}

static void npy(void) {
    ids_err err;
    const float f[6] = {1, 2, 3, 4, 5, 6};
    const int32_t i[4] = {1, -1, 7, 0};
    int64_t s23[2] = {2, 3}, s4[1] = {4};
    CHECK(ids_npy_write(path("npy", "f4_2x3.npy"), "<f4", 2, s23, f, &err), "npy f4");
    CHECK(ids_npy_write(path("npy", "i4_4.npy"), "<i4", 1, s4, i, &err), "npy i4");
    const uint8_t u8[3] = {1, 2, 3};
    npy_raw("u1_v2.npy", 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", u8, 3);
    const uint16_t f2[2] = {0x3c00, 0x4000};
    npy_raw("f2_scalar.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (), }", f2, 2);
    const int64_t i8[2] = {5, -5};
    npy_raw("i8_1x2.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }", i8, 16);
    npy_raw("empty_0.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", NULL, 0);
}

/* ---- images and video ---- */

static void images(void) {
    unsigned char px[8 * 6 * 4];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 37 + (i / 4) * 11);
    char name[64];
    for (int comp = 1; comp <= 4; comp++) {
        snprintf(name, sizeof name, "c%d.png", comp);
        if (!stbi_write_png(path("image", name), 8, 6, comp, px, 8 * comp)) die(name, NULL);
    }
    if (!stbi_write_bmp(path("image", "c3.bmp"), 8, 6, 3, px)) die("bmp", NULL);
    if (!stbi_write_bmp(path("image", "c4.bmp"), 5, 3, 4, px)) die("bmp", NULL);
    if (!stbi_write_tga(path("image", "c3.tga"), 8, 6, 3, px)) die("tga", NULL);
    if (!stbi_write_jpg(path("image", "c3.jpg"), 8, 6, 3, px, 90)) die("jpg", NULL);
    if (!stbi_write_jpg(path("image", "c1.jpg"), 16, 9, 1, px, 50)) die("jpg", NULL);
    if (!stbi_write_hdr(path("image", "c3.hdr"), 2, 2, 3, (const float[12]){0, 0.5f, 1, 2, 0, 0, 1, 1, 1, 0, 0, 4}))
        die("hdr", NULL);
    /* netpbm with maxval 255 (P6, P5, ASCII P3, P2) */
    static const char p6[] = "P6\n# seed\n2 2\n255\n\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0";
    write_bytes("image", "rgb.ppm", p6, sizeof p6 - 1);
    static const char p5[] = "P5 3 1 255\n\x01\x7f\xff";
    write_bytes("image", "grey.pgm", p5, sizeof p5 - 1);
    static const char p3[] = "P3\n2 1\n255\n255 0 0  0 0 255\n";
    write_bytes("image", "ascii.ppm", p3, sizeof p3 - 1);
    /* 2x2 GIF89a, 4-colour palette */
    static const unsigned char gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x81, 0, 0,                     /* screen, 4-entry table */
        0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255,                                  /* palette */
        '!', 0xf9, 4, 0, 0, 0, 0, 0,                                               /* graphic control */
        ',', 0, 0, 0, 0, 2, 0, 2, 0, 0,                                            /* image descriptor */
        2, 3, 0x44, 0x34, 0x05, 0, ';'}; /* LZW (min code size 2): clear, 0, 1, 2, 3, end */
    write_bytes("image", "c4.gif", gif, sizeof gif);
}

static void video(void) {
    ids_err err;
    ids_image fr[4];
    for (int k = 0; k < 4; k++) {
        const uint8_t fill[3] = {(uint8_t)(60 * k), 128, (uint8_t)(255 - 60 * k)};
        CHECK(ids_image_new(&fr[k], 16, 12, fill, &err), "frame");
    }
    CHECK(ids_video_write_mp4(fr, 4, 8, path("video", "four.mp4"), &err), "mp4");
    CHECK(ids_video_write_mp4(fr, 1, 8, path("video", "one.mp4"), &err), "mp4");
    for (int k = 0; k < 4; k++) ids_image_free(&fr[k]);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus OUTDIR\n");
        return 2;
    }
    g_out = argv[1];
    mkdir(g_out, 0755);
    gguf_metadata();
    gguf_tensors();
    gguf_vocab("vocab_spm.gguf", "llama", NULL);
    gguf_vocab("vocab_bpe.gguf", "gpt2", "gpt-2");
    gguf_vocab("vocab_qwen2.gguf", "gpt2", "qwen2");
    safetensors();
    npy();
    images();
    video();
    return 0;
}
