/* Synthetic models with random weights for the benchmarks (header-only, bench programs only). */
#ifndef IDS_BENCH_SYNTH_H
#define IDS_BENCH_SYNTH_H

#define _POSIX_C_SOURCE 200809L
#include "idscope.h"
#include "base/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Synthetic weights: one xorshift64 stream per benchmark program, uniform in [-0.5, 0.5). */
static uint64_t g_rng = 88172645463325252ull;
static float frand(void) { return (float)(ids__rng_xorshift_unit(&g_rng) - 0.5); }

typedef struct {
    int n_embd, n_ff, n_head, n_layer, n_vocab, type;
    int n_head_kv;    /* 0: n_head */
    const char *arch; /* NULL: llama; "qwen2": q/k/v biases; "qwen2vl": the same and M-RoPE sections; "gemma3":
                         its keys, QK-norm and post-norms (window 1024, pattern 6, global RoPE scaled by 8);
                         "qwen3vl": QK-norm and interleaved M-RoPE sections (no biases) */
    int head_dim;     /* 0: n_embd / n_head */
} llama_shape;

/* Write a random llama-architecture GGUF of the given shape (tied output). */
static inline int make_llama(const char *path, llama_shape s) {
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_err err;
    if (!w) {
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    const char *arch = s.arch ? s.arch : "llama";
    const bool qwen = !strcmp(arch, "qwen2vl") || !strcmp(arch, "qwen2"), mrope = !strcmp(arch, "qwen2vl");
    const bool gemma = !strcmp(arch, "gemma3"), qwen3 = !strcmp(arch, "qwen3vl");
    const int n_kv = s.n_head_kv ? s.n_head_kv : s.n_head, hd = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    const int kv_dim = hd * n_kv, q_dim = hd * s.n_head;
    char key[96];
    ids_gguf_writer_set_str(w, "general.architecture", arch, &err);
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", arch, k), key)
    ids_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)s.n_embd, &err);
    ids_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)s.n_layer, &err);
    ids_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)s.n_ff, &err);
    ids_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)s.n_head, &err);
    ids_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)n_kv, &err);
    ids_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f, &err);
    if (mrope) {
        int sec[4] = {hd / 8, 3 * hd / 16, 3 * hd / 16, 0};
        ids_gguf_writer_set_arr(w, KEY("rope.dimension_sections"), IDS_GGUF_INT32, sec, 4, &err);
    }
    if (qwen3) { /* Qwen3-VL's sections (of 64 rotary pairs at head size 128) and base */
        int sec[4] = {3 * hd / 16, 5 * hd / 32, 5 * hd / 32, 0};
        ids_gguf_writer_set_arr(w, KEY("rope.dimension_sections"), IDS_GGUF_INT32, sec, 4, &err);
        ids_gguf_writer_set_f32(w, KEY("rope.freq_base"), 5e6f, &err);
    }
    if (gemma) {
        ids_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)hd, &err);
        ids_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)hd, &err);
        ids_gguf_writer_set_u32(w, KEY("attention.sliding_window"), 1024, &err);
        ids_gguf_writer_set_f32(w, KEY("rope.freq_base"), 1e6f, &err);
        ids_gguf_writer_set_f32(w, KEY("rope.freq_base_swa"), 1e4f, &err);
        ids_gguf_writer_set_str(w, KEY("rope.scaling.type"), "linear", &err);
        ids_gguf_writer_set_f32(w, KEY("rope.scaling.factor"), 8.0f, &err);
    }
    if (qwen) ids_gguf_writer_set_f32(w, KEY("rope.freq_base"), 1e6f, &err);
#undef KEY
    ids_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", &err);
    const char **toks = malloc(sizeof(char *) * (size_t)s.n_vocab);
    char *text = malloc((size_t)16 * s.n_vocab);
    size_t maxn = (size_t)s.n_embd * (size_t)(s.n_ff > s.n_vocab ? s.n_ff : s.n_vocab);
    float *buf = malloc(maxn * sizeof(float));
    if (!toks || !text || !buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        free(toks);
        free(text);
        free(buf);
        ids_gguf_writer_free(w);
        return 1;
    }
    for (int i = 0; i < s.n_vocab; i++) {
        char *t = text + (size_t)16 * i;
        if (i < 3) snprintf(t, 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else snprintf(t, 16, "\xE2\x96\x81w%d", i);
        toks[i] = t;
    }
    ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)s.n_vocab, &err);
    free(toks);
    free(text);
    int rc = 0;
#define ADD(name, ne0, ne1, ty, scale)                                                          \
    do {                                                                                       \
        int64_t ne[2] = {ne0, ne1};                                                            \
        size_t cnt = (size_t)(ne0) * (size_t)(ne1);                                            \
        for (size_t i = 0; i < cnt; i++) buf[i] = (scale) ? (scale) * frand() : 1.0f;          \
        if (ids_gguf_writer_add_tensor_f32(w, name, ty, (ne1) > 1 ? 2 : 1, ne, buf, &err)) {   \
            fprintf(stderr, "%s\n", err.msg);                                                  \
            rc = 1;                                                                            \
        }                                                                                      \
    } while (0)
    ADD("token_embd.weight", s.n_embd, s.n_vocab, s.type, 0.5f);
    ADD("output_norm.weight", s.n_embd, 1, IDS_TYPE_F32, 0.0f);
    char nm[64];
    float sc = 1.0f / sqrtf((float)s.n_embd);
    for (int l = 0; l < s.n_layer && !rc; l++) {
        snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", l); ADD(nm, s.n_embd, 1, IDS_TYPE_F32, 0.0f);
        snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", l); ADD(nm, s.n_embd, 1, IDS_TYPE_F32, 0.0f);
        snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", l); ADD(nm, s.n_embd, q_dim, s.type, sc);
        if (gemma) {
            snprintf(nm, sizeof nm, "blk.%d.attn_q_norm.weight", l); ADD(nm, hd, 1, IDS_TYPE_F32, 0.0f);
            snprintf(nm, sizeof nm, "blk.%d.attn_k_norm.weight", l); ADD(nm, hd, 1, IDS_TYPE_F32, 0.0f);
            snprintf(nm, sizeof nm, "blk.%d.post_attention_norm.weight", l); ADD(nm, s.n_embd, 1, IDS_TYPE_F32, 0.0f);
            snprintf(nm, sizeof nm, "blk.%d.post_ffw_norm.weight", l); ADD(nm, s.n_embd, 1, IDS_TYPE_F32, 0.0f);
        }
        snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", l); ADD(nm, s.n_embd, kv_dim, s.type, sc);
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l); ADD(nm, s.n_embd, kv_dim, s.type, sc);
        if (qwen) {
            snprintf(nm, sizeof nm, "blk.%d.attn_q.bias", l); ADD(nm, s.n_embd, 1, IDS_TYPE_F32, 0.02f);
            snprintf(nm, sizeof nm, "blk.%d.attn_k.bias", l); ADD(nm, kv_dim, 1, IDS_TYPE_F32, 0.02f);
            snprintf(nm, sizeof nm, "blk.%d.attn_v.bias", l); ADD(nm, kv_dim, 1, IDS_TYPE_F32, 0.02f);
        }
        if (qwen3) {
            snprintf(nm, sizeof nm, "blk.%d.attn_q_norm.weight", l); ADD(nm, hd, 1, IDS_TYPE_F32, 0.0f);
            snprintf(nm, sizeof nm, "blk.%d.attn_k_norm.weight", l); ADD(nm, hd, 1, IDS_TYPE_F32, 0.0f);
        }
        snprintf(nm, sizeof nm, "blk.%d.attn_output.weight", l); ADD(nm, q_dim, s.n_embd, s.type, sc);
        snprintf(nm, sizeof nm, "blk.%d.ffn_gate.weight", l); ADD(nm, s.n_embd, s.n_ff, s.type, sc);
        snprintf(nm, sizeof nm, "blk.%d.ffn_up.weight", l); ADD(nm, s.n_embd, s.n_ff, s.type, sc);
        snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", l); ADD(nm, s.n_ff, s.n_embd, s.type, sc);
    }
    free(buf);
    if (!rc && ids_gguf_writer_write(w, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        rc = 1;
    }
    ids_gguf_writer_free(w);
    return rc;
}


typedef struct {
    int image_size, patch, n_embd, n_ff, n_head, n_layer, n_out, type;
    bool gemma3; /* Gemma 3's SigLIP ("gemma3": no CLS, post-LN, pooled 4 x 4, soft-embedding norm, projection) */
} clip_shape;

/* A random CLIP "mlp" mmproj (LLaVA-1.5 layout, legacy fc naming), or Gemma 3's "gemma3". */
static inline int make_clip(const char *path, clip_shape s) {
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_err err;
    if (!w) {
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    const float half[3] = {0.5f, 0.5f, 0.5f}, *mean = s.gemma3 ? half : clip_mean, *std = s.gemma3 ? half : clip_std;
    ids_gguf_writer_set_str(w, "general.architecture", "clip", &err);
    ids_gguf_writer_set_str(w, "clip.projector_type", s.gemma3 ? "gemma3" : "mlp", &err);
    if (s.gemma3) ids_gguf_writer_set_bool(w, "clip.use_gelu", true, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.image_size", (uint32_t)s.image_size, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.patch_size", (uint32_t)s.patch, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.embedding_length", (uint32_t)s.n_embd, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)s.n_ff, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.block_count", (uint32_t)s.n_layer, &err);
    ids_gguf_writer_set_u32(w, "clip.vision.attention.head_count", (uint32_t)s.n_head, &err);
    ids_gguf_writer_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f, &err);
    ids_gguf_writer_set_arr(w, "clip.vision.image_mean", IDS_GGUF_FLOAT32, mean, 3, &err);
    ids_gguf_writer_set_arr(w, "clip.vision.image_std", IDS_GGUF_FLOAT32, std, 3, &err);
    const int G = s.image_size / s.patch, T = G * G + (s.gemma3 ? 0 : 1), E = s.n_embd;
    size_t maxn = (size_t)(E > s.n_out ? E : s.n_out) * (size_t)(s.n_ff > s.n_out ? s.n_ff : s.n_out);
    if ((size_t)3 * s.patch * s.patch * E > maxn) maxn = (size_t)3 * s.patch * s.patch * E;
    if ((size_t)T * E > maxn) maxn = (size_t)T * E;
    float *buf = malloc(maxn * sizeof(float));
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        free(buf);
        ids_gguf_writer_free(w);
        return 1;
    }
    int rc = 0;
    char nm[64];
    float sc = 1.0f / sqrtf((float)E);
#define ADDN(name, nd, ne, ty, scale)                                                           \
    do {                                                                                       \
        size_t cnt = 1;                                                                        \
        for (int d_ = 0; d_ < (nd); d_++) cnt *= (size_t)(ne)[d_];                             \
        for (size_t i = 0; i < cnt; i++) buf[i] = (scale) ? (scale) * frand() : 1.0f;          \
        if (ids_gguf_writer_add_tensor_f32(w, name, ty, nd, ne, buf, &err)) {                  \
            fprintf(stderr, "%s\n", err.msg);                                                  \
            rc = 1;                                                                            \
        }                                                                                      \
    } while (0)
    int64_t pe[4] = {s.patch, s.patch, 3, E}, v1[1] = {E}, pos[2] = {E, T};
    ADDN("v.patch_embd.weight", 4, pe, IDS_TYPE_F16, 0.02f);
    if (!s.gemma3) ADDN("v.class_embd", 1, v1, IDS_TYPE_F32, 0.02f);
    ADDN("v.position_embd.weight", 2, pos, IDS_TYPE_F32, 0.02f);
    if (!s.gemma3) ADDN("v.pre_ln.weight", 1, v1, IDS_TYPE_F32, 0.0f);
    for (int l = 0; l < s.n_layer && !rc; l++) {
        int64_t ee[2] = {E, E}, ef[2] = {E, s.n_ff}, fe[2] = {s.n_ff, E}, f1[1] = {s.n_ff};
        const char *mats[4] = {"attn_q", "attn_k", "attn_v", "attn_out"};
        for (int k = 0; k < 4; k++) {
            snprintf(nm, sizeof nm, "v.blk.%d.%s.weight", l, mats[k]); ADDN(nm, 2, ee, s.type, sc);
            snprintf(nm, sizeof nm, "v.blk.%d.%s.bias", l, mats[k]); ADDN(nm, 1, v1, IDS_TYPE_F32, 0.01f);
        }
        snprintf(nm, sizeof nm, "v.blk.%d.ln1.weight", l); ADDN(nm, 1, v1, IDS_TYPE_F32, 0.0f);
        snprintf(nm, sizeof nm, "v.blk.%d.ln2.weight", l); ADDN(nm, 1, v1, IDS_TYPE_F32, 0.0f);
        const char *fc1 = s.gemma3 ? "ffn_up" : "ffn_down", *fc2 = s.gemma3 ? "ffn_down" : "ffn_up";
        snprintf(nm, sizeof nm, "v.blk.%d.%s.weight", l, fc1); ADDN(nm, 2, ef, s.type, sc);
        snprintf(nm, sizeof nm, "v.blk.%d.%s.bias", l, fc1); ADDN(nm, 1, f1, IDS_TYPE_F32, 0.01f);
        snprintf(nm, sizeof nm, "v.blk.%d.%s.weight", l, fc2); ADDN(nm, 2, fe, s.type, sc);
        snprintf(nm, sizeof nm, "v.blk.%d.%s.bias", l, fc2); ADDN(nm, 1, v1, IDS_TYPE_F32, 0.01f);
    }
    if (s.gemma3) {
        int64_t pr[2] = {s.n_out, E};
        ADDN("v.post_ln.weight", 1, v1, IDS_TYPE_F32, 0.0f);
        ADDN("v.post_ln.bias", 1, v1, IDS_TYPE_F32, 0.01f);
        ADDN("mm.soft_emb_norm.weight", 1, v1, IDS_TYPE_F32, 0.0f);
        ADDN("mm.input_projection.weight", 2, pr, IDS_TYPE_F16, sc);
    } else {
        int64_t m0[2] = {E, s.n_out}, m2[2] = {s.n_out, s.n_out}, o1[1] = {s.n_out};
        ADDN("mm.0.weight", 2, m0, s.type, sc);
        ADDN("mm.0.bias", 1, o1, IDS_TYPE_F32, 0.01f);
        ADDN("mm.2.weight", 2, m2, s.type, 1.0f / sqrtf((float)s.n_out));
        ADDN("mm.2.bias", 1, o1, IDS_TYPE_F32, 0.01f);
    }
#undef ADDN
    free(buf);
    if (!rc && ids_gguf_writer_write(w, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        rc = 1;
    }
    ids_gguf_writer_free(w);
    return rc;
}

#endif
