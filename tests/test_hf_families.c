/* Hugging Face folders of Gemma 3, InternVL (OpenGVLab's layout, slow tokenizer files) and Qwen3-VL,
 * written here at toy sizes: what the converters change beyond renames (Gemma's norm shift in F32, the
 * forced F16/F32 tensors, embedding rows cut to the tokenizer, the query scale key; InternVL's qkv split,
 * squeezed CLS and position tables, vocab.json + merges.txt; Qwen3-VL's DeepStack mergers numbered by
 * tower block), the engine loading each folder, allocation failures. The goldens written as folders
 * (same captures as their GGUF pairs, bit for bit) are in cli_hf.sh. */
#include "test.h"

#include <math.h>
#include <sys/stat.h>

static float fval(int i, int salt) { return cosf(0.29f * (float)i + 0.7f * (float)salt) * 0.4f; }

static void put_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
}

typedef struct {
    ids_st_writer *w;
    void *keep[160];
    int n_keep, salt;
} tw;

/* A tensor of deterministic values (salt = its number in the file) in dtype F32, F16 or BF16. */
static void tadd_shape(tw *x, const char *name, const char *dtype, int nd, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    const bool f32 = !strcmp(dtype, "F32");
    void *buf = malloc((size_t)n * (f32 ? 4 : 2));
    ++x->salt;
    for (int64_t i = 0; i < n; i++) {
        float v = fval((int)i, x->salt);
        if (f32) ((float *)buf)[i] = v;
        else ((uint16_t *)buf)[i] = !strcmp(dtype, "F16") ? ids_f32_to_f16(v) : ids_f32_to_bf16(v);
    }
    if (x->n_keep < 160) x->keep[x->n_keep++] = buf;
    ids_st_writer_add(x->w, name, dtype, nd, shape, buf, NULL);
}

static void tadd(tw *x, const char *name, const char *dtype, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    tadd_shape(x, name, dtype, nd, (const int64_t[4]){d0, d1, d2, d3});
}

static void twrite(tw *x, const char *dir, const char *file) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    ids_st_writer_write(x->w, p, NULL);
    ids_st_writer_free(x->w);
    for (int i = 0; i < x->n_keep; i++) free(x->keep[i]);
}

static char g_dir[512], g_out[512];
static ids_status open_all(void *ctx, ids_err *err) {
    (void)ctx;
    ids_gguf *t = NULL, *v = NULL;
    ids_status st = ids_hf_open(&t, g_dir, IDS_HF_TEXT, err);
    if (!st) st = ids_hf_open(&v, g_dir, IDS_HF_VISION, err);
    if (!st) st = ids_hf_convert(g_dir, g_out, err);
    ids_gguf_close(t);
    ids_gguf_close(v);
    return st;
}

static void alloc_sweep(const char *dir, const char *out) {
    snprintf(g_dir, sizeof g_dir, "%s", dir);
    snprintf(g_out, sizeof g_out, "%s", t_tmp(out));
    mkdir(g_out, 0755);
    CHECK(CHECK_ALLOC_FAILURES(open_all, NULL, 6000) > 0);
}

static float first_f32(const ids_tensor *t, int64_t i) {
    float f[64];
    ids_tensor_rows_f32(t, 0, 1, f, NULL);
    return f[i];
}

/* ---- Gemma 3 ---- */

static const char *gemma3_folder(const char *name) {
    const char *dir = t_tmp(name);
    mkdir(dir, 0755);
    put_file(dir, "config.json",
             "{\"model_type\": \"gemma3\", \"mm_tokens_per_image\": 1, \"text_config\": {\"hidden_size\": 8, "
             "\"intermediate_size\": 12, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
             "\"head_dim\": 4, \"query_pre_attn_scalar\": 8, \"sliding_window\": 4, \"final_logit_softcapping\": null, "
             "\"rope_scaling\": null, \"max_position_embeddings\": 64, \"vocab_size\": 8, \"layer_types\": "
             "[\"sliding_attention\"]}, \"vision_config\": {"
             "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
             "\"image_size\": 28, \"patch_size\": 14, \"layer_norm_eps\": 1e-06}}");
    put_file(dir, "tokenizer.json",
             "{\"added_tokens\": [{\"id\": 0, \"content\": \"<pad>\", \"special\": true}, {\"id\": 1, \"content\": "
             "\"<eos>\", \"special\": true}, {\"id\": 2, \"content\": \"<bos>\", \"special\": true}, {\"id\": 3, "
             "\"content\": \"<unk>\", \"special\": true}], \"normalizer\": {\"type\": \"Replace\", \"pattern\": "
             "{\"String\": \" \"}, \"content\": \"\u2581\"}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
             "{\"String\": \" \"}, \"behavior\": \"MergedWithPrevious\"}, \"model\": {\"type\": \"BPE\", \"unk_token\": "
             "\"<unk>\", \"byte_fallback\": true, \"vocab\": {\"<pad>\": 0, \"<eos>\": 1, \"<bos>\": 2, \"<unk>\": 3, "
             "\"a\": 4, \"\u2581a\": 5, \"\u2581\": 6}, \"merges\": [\"\u2581 a\"]}}");
    put_file(dir, "tokenizer_config.json", "{\"add_bos_token\": true, \"add_eos_token\": false, \"bos_token\": \"<bos>\", "
                                          "\"eos_token\": \"<eos>\", \"pad_token\": \"<pad>\", \"unk_token\": \"<unk>\"}");
    tw t = {.w = ids_st_writer_new()};
    const char *lm = "language_model.model.";
    char nm[160];
#define T(s, dt, nd, a, b) snprintf(nm, sizeof nm, "%s%s", lm, s), tadd(&t, nm, dt, nd, a, b, 0, 0)
    T("embed_tokens.weight", "F32", 2, 8, 8);
    T("layers.0.input_layernorm.weight", "BF16", 1, 8, 0);
    T("layers.0.self_attn.q_proj.weight", "F32", 2, 8, 8);
    T("layers.0.self_attn.k_proj.weight", "F32", 2, 4, 8);
    T("layers.0.self_attn.v_proj.weight", "F32", 2, 4, 8);
    T("layers.0.self_attn.o_proj.weight", "F32", 2, 8, 8);
    T("layers.0.self_attn.q_norm.weight", "F32", 1, 4, 0);
    T("layers.0.self_attn.k_norm.weight", "F32", 1, 4, 0);
    T("layers.0.post_attention_layernorm.weight", "F32", 1, 8, 0);
    T("layers.0.pre_feedforward_layernorm.weight", "F32", 1, 8, 0);
    T("layers.0.mlp.gate_proj.weight", "F32", 2, 12, 8);
    T("layers.0.mlp.up_proj.weight", "F32", 2, 12, 8);
    T("layers.0.mlp.down_proj.weight", "F32", 2, 8, 12);
    T("layers.0.post_feedforward_layernorm.weight", "F32", 1, 8, 0);
    T("norm.weight", "F32", 1, 8, 0);
#undef T
    const char *vt = "vision_tower.vision_model.";
#define V(s, dt, nd, a, b, c, d) snprintf(nm, sizeof nm, "%s%s", vt, s), tadd(&t, nm, dt, nd, a, b, c, d)
    V("embeddings.patch_embedding.weight", "BF16", 4, 8, 3, 14, 14);
    V("embeddings.patch_embedding.bias", "F32", 1, 8, 0, 0, 0);
    V("embeddings.position_embedding.weight", "F16", 2, 4, 8, 0, 0);
    static const char *const lin[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    char b[96];
    for (int k = 0; k < 4; k++) {
        snprintf(b, sizeof b, "encoder.layers.0.self_attn.%s.weight", lin[k]), V(b, "F16", 2, 8, 8, 0, 0);
        snprintf(b, sizeof b, "encoder.layers.0.self_attn.%s.bias", lin[k]), V(b, "F32", 1, 8, 0, 0, 0);
    }
    for (int k = 1; k <= 2; k++) {
        snprintf(b, sizeof b, "encoder.layers.0.layer_norm%d.weight", k), V(b, "F32", 1, 8, 0, 0, 0);
        snprintf(b, sizeof b, "encoder.layers.0.layer_norm%d.bias", k), V(b, "F32", 1, 8, 0, 0, 0);
    }
    V("encoder.layers.0.mlp.fc1.weight", "F16", 2, 16, 8, 0, 0);
    V("encoder.layers.0.mlp.fc1.bias", "F32", 1, 16, 0, 0, 0);
    V("encoder.layers.0.mlp.fc2.weight", "F16", 2, 8, 16, 0, 0);
    V("encoder.layers.0.mlp.fc2.bias", "F32", 1, 8, 0, 0, 0);
    V("post_layernorm.weight", "F32", 1, 8, 0, 0, 0);
    V("post_layernorm.bias", "F32", 1, 8, 0, 0, 0);
#undef V
    tadd(&t, "multi_modal_projector.mm_soft_emb_norm.weight", "BF16", 1, 8, 0, 0, 0);
    tadd(&t, "multi_modal_projector.mm_input_projection_weight", "F32", 2, 8, 8, 0, 0);
    twrite(&t, dir, "model.safetensors");
    return dir;
}

TEST(hf_gemma3_views) {
    const char *dir = gemma3_folder("hf-gemma3");
    ids_err err;
    ids_gguf *g, *v;
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err), err);
    REQUIRE_OK(ids_hf_open(&v, dir, IDS_HF_VISION, &err), err);
    const char *s = NULL;
    float f = 0;
    uint32_t u = 0;
    CHECK(ids_gguf_get_str(g, "general.architecture", &s, NULL) == IDS_OK && !strcmp(s, "gemma3"));
    CHECK(ids_gguf_get_f32(g, "gemma3.attention.scale", &f, NULL) == IDS_OK && f == (float)(1.0 / sqrt(8.0)));
    CHECK(ids_gguf_get_u32(g, "gemma3.attention.key_length", &u, NULL) == IDS_OK && u == 4);
    CHECK(ids_gguf_get_u32(g, "gemma3.attention.sliding_window_pattern", &u, NULL) == IDS_OK && u == 2); /* no global */
    CHECK(ids_gguf_find_kv(g, "gemma3.rope.scaling.type") < 0 && ids_gguf_find_kv(g, "gemma3.final_logit_softcapping") < 0);
    bool sp = true;
    CHECK(ids_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &sp, NULL) == IDS_OK && !sp);
    /* 7 tokens: the embedding's 8th row is dropped, as the converter does; the head is tied */
    const ids_tensor *e = ids_gguf_find_tensor(g, "token_embd.weight");
    CHECK(e && e->ne[0] == 8 && e->ne[1] == 7 && !ids_gguf_find_tensor(g, "output.weight"));
    /* norms: HF's w (BF16 here) stored as w + 1 in F32; salt 2 = the second tensor written */
    const ids_tensor *n = ids_gguf_find_tensor(g, "blk.0.attn_norm.weight");
    REQUIRE(n && n->type == IDS_TYPE_F32);
    CHECK(first_f32(n, 3) == ids_bf16_to_f32(ids_f32_to_bf16(fval(3, 2))) + 1.0f);
    const ids_tensor *qn = ids_gguf_find_tensor(g, "blk.0.attn_q_norm.weight");
    CHECK(qn && first_f32(qn, 1) == fval(1, 7) + 1.0f);
    const ids_tensor *q = ids_gguf_find_tensor(g, "blk.0.attn_q.weight"); /* NEOX rope: rows as HF's */
    CHECK(q && ((const float *)q->data)[9] == fval(9, 3));
    /* the tower: BF16 kernel and F16 positions forced to F32, the F32 projection forced to F16 */
    const ids_tensor *pe = ids_gguf_find_tensor(v, "v.patch_embd.weight"), *pos = ids_gguf_find_tensor(v, "v.position_embd.weight");
    const ids_tensor *pr = ids_gguf_find_tensor(v, "mm.input_projection.weight"), *sn = ids_gguf_find_tensor(v, "mm.soft_emb_norm.weight");
    REQUIRE(pe && pos && pr && sn);
    CHECK(pe->type == IDS_TYPE_F32 && first_f32(pe, 5) == ids_bf16_to_f32(ids_f32_to_bf16(fval(5, 16))));
    CHECK(pos->type == IDS_TYPE_F32 && first_f32(pos, 2) == ids_f16_to_f32(ids_f32_to_f16(fval(2, 18))));
    CHECK(pr->type == IDS_TYPE_F16 && ((const uint16_t *)pr->data)[6] == ids_f32_to_f16(fval(6, 38)));
    CHECK(sn->type == IDS_TYPE_F32 && first_f32(sn, 0) == ids_bf16_to_f32(ids_f32_to_bf16(fval(0, 37))) + 1.0f);
    CHECK(ids_gguf_get_u32(v, "clip.vision.projector.scale_factor", &u, NULL) == IDS_OK && u == 2); /* 2 x 2 -> 1 row */
    ids_tokenizer *tok;
    REQUIRE_OK(ids_tokenizer_load(&tok, g, &err), err);
    int32_t *ids = NULL;
    size_t nt = 0;
    CHECK_OK_ERR(ids_tokenize(tok, "a a", 3, (ids_tokenize_opts){.add_bos = true}, &ids, &nt, &err), err);
    CHECK(nt == 3 && ids[0] == 2 && ids[1] == 4 && ids[2] == 5); /* no space prefix: "a", "▁a" */
    free(ids);
    ids_tokenizer_free(tok);
    ids_gguf_close(g);
    ids_gguf_close(v);
    ids_vlm *m;
    REQUIRE_OK(ids_vlm_load(&m, dir, NULL, &err), err);
    CHECK_EQ_INT(ids_model_hparams(ids_vlm_model(m))->n_layer, 1);
    ids_vlm_free(m);
    alloc_sweep(dir, "hf-gemma3-out");
    /* every layer global: pattern 1, no sliding window (as the converter leaves it out) */
    char p[512];
    size_t len;
    snprintf(p, sizeof p, "%s/config.json", dir);
    char *cfg = t_read_file(p, &len), *at = cfg ? strstr(cfg, "\"sliding_attention\"") : NULL;
    REQUIRE(at);
    memcpy(at, "\"full_attention\"   ", 19); /* same length: "sliding_attention" + quotes */
    put_file(dir, "config.json", cfg);
    free(cfg);
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err), err);
    CHECK(ids_gguf_get_u32(g, "gemma3.attention.sliding_window_pattern", &u, NULL) == IDS_OK && u == 1);
    CHECK(ids_gguf_find_kv(g, "gemma3.attention.sliding_window") < 0);
    ids_gguf_close(g);
}

/* ---- InternVL (OpenGVLab's layout) ---- */

static const char *internvl_folder(const char *name, const char *tokenizer_class) {
    const char *dir = t_tmp(name);
    mkdir(dir, 0755);
    put_file(dir, "config.json",
             "{\"model_type\": \"internvl_chat\", \"downsample_ratio\": 0.5, \"min_dynamic_patch\": 1, "
             "\"max_dynamic_patch\": 6, \"select_layer\": -1, \"ps_version\": \"v2\", \"llm_config\": {\"architectures\": "
             "[\"Qwen2ForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1, "
             "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, "
             "\"tie_word_embeddings\": false}, \"vision_config\": {\"hidden_size\": 8, \"intermediate_size\": 16, "
             "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"image_size\": 28, \"patch_size\": 14, "
             "\"qkv_bias\": true, \"qk_normalization\": false, \"norm_type\": \"layer_norm\", \"hidden_act\": \"gelu\"}}");
    put_file(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\u0120\": 3, \"\u0120a\": 4}");
    put_file(dir, "merges.txt", "#version: 0.2\na b\n\u0120 a\n");
    char tc[512];
    snprintf(tc, sizeof tc, "{\"tokenizer_class\": \"%s\", \"eos_token\": \"<|im_end|>\", \"added_tokens_decoder\": {\"5\": "
             "{\"content\": \"<|im_end|>\", \"special\": true}, \"6\": {\"content\": \"<img>\", \"special\": true}}}",
             tokenizer_class);
    put_file(dir, "tokenizer_config.json", tc);
    tw t = {.w = ids_st_writer_new()};
    char nm[160];
    static const struct { const char *n, *dt; int nd; int64_t a, b; } lw[] = {
        {"input_layernorm.weight", "F32", 1, 8, 0}, {"self_attn.q_proj.weight", "F16", 2, 8, 8},
        {"self_attn.q_proj.bias", "F32", 1, 8, 0}, {"self_attn.k_proj.weight", "F16", 2, 4, 8},
        {"self_attn.k_proj.bias", "F32", 1, 4, 0}, {"self_attn.v_proj.weight", "F16", 2, 4, 8},
        {"self_attn.v_proj.bias", "F32", 1, 4, 0}, {"self_attn.o_proj.weight", "F16", 2, 8, 8},
        {"post_attention_layernorm.weight", "F32", 1, 8, 0}, {"mlp.gate_proj.weight", "F16", 2, 12, 8},
        {"mlp.up_proj.weight", "F16", 2, 12, 8}, {"mlp.down_proj.weight", "F16", 2, 8, 12}};
    tadd(&t, "language_model.model.embed_tokens.weight", "F16", 2, 8, 8, 0, 0);
    for (size_t i = 0; i < sizeof lw / sizeof *lw; i++)
        snprintf(nm, sizeof nm, "language_model.model.layers.0.%s", lw[i].n), tadd(&t, nm, lw[i].dt, lw[i].nd, lw[i].a, lw[i].b, 0, 0);
    tadd(&t, "language_model.model.norm.weight", "F32", 1, 8, 0, 0, 0);
    tadd(&t, "language_model.lm_head.weight", "F16", 2, 8, 8, 0, 0);
    tadd(&t, "vision_model.embeddings.class_embedding", "F32", 3, 1, 1, 8, 0);                 /* salt 16 */
    tadd(&t, "vision_model.embeddings.patch_embedding.weight", "F16", 4, 8, 3, 14, 14);
    tadd(&t, "vision_model.embeddings.patch_embedding.bias", "F32", 1, 8, 0, 0, 0);
    tadd(&t, "vision_model.embeddings.position_embedding", "BF16", 3, 1, 5, 8, 0);             /* salt 19 */
    const char *p = "vision_model.encoder.layers.0.";
#define V(s, dt, nd, a, b) snprintf(nm, sizeof nm, "%s%s", p, s), tadd(&t, nm, dt, nd, a, b, 0, 0)
    V("attn.qkv.weight", "F16", 2, 24, 8);                                                     /* salt 20 */
    V("attn.qkv.bias", "F32", 1, 24, 0);
    V("attn.proj.weight", "F16", 2, 8, 8);
    V("attn.proj.bias", "F32", 1, 8, 0);
    V("norm1.weight", "F32", 1, 8, 0);
    V("norm1.bias", "F32", 1, 8, 0);
    V("norm2.weight", "F32", 1, 8, 0);
    V("norm2.bias", "F32", 1, 8, 0);
    V("ls1", "F32", 1, 8, 0);                                                                  /* salt 28 */
    V("ls2", "F32", 1, 8, 0);
    V("mlp.fc1.weight", "F16", 2, 16, 8);
    V("mlp.fc1.bias", "F32", 1, 16, 0);
    V("mlp.fc2.weight", "F16", 2, 8, 16);
    V("mlp.fc2.bias", "F32", 1, 8, 0);
#undef V
    tadd(&t, "mlp1.0.weight", "F32", 1, 32, 0, 0, 0);
    tadd(&t, "mlp1.0.bias", "F32", 1, 32, 0, 0, 0);
    tadd(&t, "mlp1.1.weight", "F16", 2, 8, 32, 0, 0);
    tadd(&t, "mlp1.1.bias", "F32", 1, 8, 0, 0, 0);
    tadd(&t, "mlp1.3.weight", "F16", 2, 8, 8, 0, 0);
    tadd(&t, "mlp1.3.bias", "F32", 1, 8, 0, 0, 0);
    twrite(&t, dir, "model.safetensors");
    return dir;
}

TEST(hf_internvl_views) {
    const char *dir = internvl_folder("hf-internvl", "Qwen2Tokenizer");
    ids_err err;
    ids_gguf *g, *v;
    ids_st_file *st;
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE_OK(ids_st_open(&st, path, &err), err);
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err), err);
    REQUIRE_OK(ids_hf_open(&v, dir, IDS_HF_VISION, &err), err);
    const char *s = NULL;
    uint32_t u = 0;
    CHECK(ids_gguf_get_str(g, "general.architecture", &s, NULL) == IDS_OK && !strcmp(s, "qwen2"));
    CHECK(ids_gguf_get_str(g, "tokenizer.ggml.pre", &s, NULL) == IDS_OK && !strcmp(s, "qwen2"));
    CHECK(ids_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, NULL) == IDS_OK && u == 5);
    CHECK(ids_gguf_find_tensor(g, "output.weight") && ids_gguf_find_tensor(g, "blk.0.attn_k.bias"));
    const ids_gguf_value *a;
    int64_t x = -1;
    CHECK(ids_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &a, NULL) == IDS_OK && a->v.arr.n == 8 &&
          ids_gguf_arr_i64(a, 6, &x) == IDS_OK && x == 3 && ids_gguf_arr_i64(a, 7, &x) == IDS_OK && x == 4);
    CHECK(ids_gguf_get_arr(g, "tokenizer.ggml.merges", -1, &a, NULL) == IDS_OK && a->v.arr.n == 2);
    ids_tokenizer *tok;
    REQUIRE_OK(ids_tokenizer_load(&tok, g, &err), err);
    int32_t *ids = NULL;
    size_t nt = 0;
    CHECK_OK_ERR(ids_tokenize(tok, "ab a<img>", 9, (ids_tokenize_opts){.parse_special = true}, &ids, &nt, &err), err);
    CHECK(nt == 3 && ids[0] == 2 && ids[1] == 4 && ids[2] == 6);
    free(ids);
    ids_tokenizer_free(tok);
    /* CLS (1, 1, E) as [E], positions (1, 5, E) as [E, 5] in F32, attn_k = rows 8..15 of qkv */
    const ids_tensor *cls = ids_gguf_find_tensor(v, "v.class_embd"), *pos = ids_gguf_find_tensor(v, "v.position_embd.weight");
    const ids_tensor *k = ids_gguf_find_tensor(v, "v.blk.0.attn_k.weight"), *ls = ids_gguf_find_tensor(v, "v.blk.0.ls1.weight");
    const ids_st_tensor *qkv = ids_st_find(st, "vision_model.encoder.layers.0.attn.qkv.weight");
    REQUIRE(cls && pos && k && ls && qkv);
    CHECK(cls->n_dims == 1 && cls->ne[0] == 8 && first_f32(cls, 3) == fval(3, 16));
    CHECK(pos->type == IDS_TYPE_F32 && pos->n_dims == 2 && pos->ne[0] == 8 && pos->ne[1] == 5 &&
          first_f32(pos, 4) == ids_bf16_to_f32(ids_f32_to_bf16(fval(4, 19))));
    CHECK(k->type == IDS_TYPE_F16 && !memcmp(k->data, (const uint16_t *)qkv->data + 8 * 8, 8 * 8 * 2));
    CHECK(first_f32(ls, 2) == fval(2, 28));
    CHECK(ids_gguf_get_u32(v, "clip.vision.preproc_max_tiles", &u, NULL) == IDS_OK && u == 6);
    CHECK(ids_gguf_get_u32(v, "clip.vision.projector.scale_factor", &u, NULL) == IDS_OK && u == 2);
    ids_gguf_close(g);
    ids_gguf_close(v);
    ids_st_close(st);
    ids_vlm *m;
    REQUIRE_OK(ids_vlm_load(&m, dir, NULL, &err), err);
    CHECK_EQ_INT(ids_vision_params(ids_vlm_vision(m))->n_out_embd, 8);
    ids_vlm_free(m);
    alloc_sweep(dir, "hf-internvl-out");
}

TEST(hf_internvl_broken) {
    const char *dir = internvl_folder("hf-internvl-cls", "LlamaTokenizer");
    ids_err err = {0};
    ids_gguf *g = NULL;
    CHECK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err) == IDS_ERR_UNSUPPORTED && strstr(err.msg, "hf-internvl-cls/tokenizer_config.json") &&
          strstr(err.msg, "tokenizer_class 'LlamaTokenizer'"));
    char p[512];
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    remove(p);
    put_file(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"Qwen2Tokenizer\"}");
    CHECK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err) == IDS_ERR_IO && strstr(err.msg, "hf-internvl-cls/merges.txt"));
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    remove(p);
    CHECK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err) == IDS_ERR_NOT_FOUND &&
          strstr(err.msg, "hf-internvl-cls/tokenizer.json: not found"));
    ids_gguf_close(g);
}

/* ---- Qwen3-VL: DeepStack from block 1 of 2 ---- */

static const char *qwen3vl_folder(const char *name) {
    const char *dir = t_tmp(name);
    mkdir(dir, 0755);
    put_file(dir, "config.json",
             "{\"model_type\": \"qwen3_vl\", \"text_config\": {\"hidden_size\": 8, \"intermediate_size\": 12, "
             "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 4, "
             "\"rms_norm_eps\": 1e-06, \"rope_theta\": 5000000, \"tie_word_embeddings\": true, \"rope_scaling\": "
             "{\"mrope_interleaved\": true, \"mrope_section\": [1, 1]}}, \"vision_config\": {\"depth\": 2, "
             "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_heads\": 2, \"patch_size\": 14, "
             "\"num_position_embeddings\": 4, \"out_hidden_size\": 8, \"deepstack_visual_indexes\": [1]}}");
    put_file(dir, "tokenizer.json",
             "{\"added_tokens\": [], \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
             "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []}}");
    tw t = {.w = ids_st_writer_new()};
    char nm[160];
    static const struct { const char *n; int nd; int64_t a, b; } lw[] = {
        {"input_layernorm.weight", 1, 8, 0}, {"self_attn.q_proj.weight", 2, 8, 8}, {"self_attn.k_proj.weight", 2, 4, 8},
        {"self_attn.v_proj.weight", 2, 4, 8}, {"self_attn.o_proj.weight", 2, 8, 8}, {"self_attn.q_norm.weight", 1, 4, 0},
        {"self_attn.k_norm.weight", 1, 4, 0}, {"post_attention_layernorm.weight", 1, 8, 0},
        {"mlp.gate_proj.weight", 2, 12, 8}, {"mlp.up_proj.weight", 2, 12, 8}, {"mlp.down_proj.weight", 2, 8, 12}};
    tadd(&t, "model.language_model.embed_tokens.weight", "BF16", 2, 4, 8, 0, 0);
    for (size_t i = 0; i < sizeof lw / sizeof *lw; i++)
        snprintf(nm, sizeof nm, "model.language_model.layers.0.%s", lw[i].n), tadd(&t, nm, "F32", lw[i].nd, lw[i].a, lw[i].b, 0, 0);
    tadd(&t, "model.language_model.norm.weight", "F32", 1, 8, 0, 0, 0);
    tadd_shape(&t, "model.visual.patch_embed.proj.weight", "F16", 5, (const int64_t[5]){8, 3, 2, 14, 14});
    tadd(&t, "model.visual.patch_embed.proj.bias", "F32", 1, 8, 0, 0, 0);
    tadd(&t, "model.visual.pos_embed.weight", "F16", 2, 4, 8, 0, 0);
    static const struct { const char *n; int64_t a, b; } vb[] = {
        {"attn.qkv", 24, 8}, {"attn.proj", 8, 8}, {"mlp.linear_fc1", 16, 8}, {"mlp.linear_fc2", 8, 16}, {"norm1", 8, 0}, {"norm2", 8, 0}};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < sizeof vb / sizeof *vb; i++) {
            snprintf(nm, sizeof nm, "model.visual.blocks.%d.%s.weight", l, vb[i].n);
            tadd(&t, nm, "F32", vb[i].b ? 2 : 1, vb[i].a, vb[i].b, 0, 0);
            snprintf(nm, sizeof nm, "model.visual.blocks.%d.%s.bias", l, vb[i].n);
            tadd(&t, nm, "F32", 1, vb[i].a, 0, 0, 0);
        }
    static const char *const mp[2] = {"model.visual.merger.", "model.visual.deepstack_merger_list.0."};
    for (int k = 0; k < 2; k++) {
        const int64_t nw = k ? 32 : 8;
        static const char *const part[3] = {"norm", "linear_fc1", "linear_fc2"};
        for (int j = 0; j < 3; j++) {
            const int64_t rows = j == 0 ? nw : j == 1 ? 32 : 8;
            snprintf(nm, sizeof nm, "%s%s.weight", mp[k], part[j]);
            tadd(&t, nm, "F32", j ? 2 : 1, rows, j ? 32 : 0, 0, 0);
            snprintf(nm, sizeof nm, "%s%s.bias", mp[k], part[j]);
            tadd(&t, nm, "F32", 1, rows, 0, 0, 0);
        }
    }
    twrite(&t, dir, "model.safetensors");
    return dir;
}

TEST(hf_qwen3vl_views) {
    const char *dir = qwen3vl_folder("hf-qwen3vl");
    ids_err err;
    ids_gguf *g, *v;
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err), err);
    REQUIRE_OK(ids_hf_open(&v, dir, IDS_HF_VISION, &err), err);
    uint32_t u = 0;
    CHECK(ids_gguf_get_u32(g, "qwen3vl.n_deepstack_layers", &u, NULL) == IDS_OK && u == 1);
    const ids_gguf_value *a;
    int64_t x = -1;
    CHECK(ids_gguf_get_arr(g, "qwen3vl.rope.dimension_sections", -1, &a, NULL) == IDS_OK && a->v.arr.n == 4 &&
          ids_gguf_arr_i64(a, 1, &x) == IDS_OK && x == 1 && ids_gguf_arr_i64(a, 2, &x) == IDS_OK && x == 0);
    CHECK(ids_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") && !ids_gguf_find_tensor(g, "output.weight"));
    /* the DeepStack merger of list entry 0 reads block 1: stored under 1, as llama.cpp's converter does */
    CHECK(ids_gguf_find_tensor(v, "v.deepstack.1.fc2.weight") && !ids_gguf_find_tensor(v, "v.deepstack.0.fc2.weight"));
    CHECK(ids_gguf_get_arr(v, "clip.vision.is_deepstack_layers", -1, &a, NULL) == IDS_OK && a->v.arr.n == 2 &&
          ids_gguf_arr_i64(a, 0, &x) == IDS_OK && x == 0 && ids_gguf_arr_i64(a, 1, &x) == IDS_OK && x == 1);
    CHECK(ids_gguf_get_u32(v, "clip.vision.image_size", &u, NULL) == IDS_OK && u == 28); /* sqrt(4) x 14 */
    const ids_tensor *p1 = ids_gguf_find_tensor(v, "v.patch_embd.weight.1"), *qkv = ids_gguf_find_tensor(v, "v.blk.1.attn_qkv.weight");
    CHECK(p1 && p1->type == IDS_TYPE_F16 && p1->ne[3] == 8 && qkv && qkv->ne[1] == 24);
    ids_gguf_close(g);
    ids_gguf_close(v);
    ids_vlm *m;
    REQUIRE_OK(ids_vlm_load(&m, dir, NULL, &err), err);
    ids_vlm_free(m);
    alloc_sweep(dir, "hf-qwen3vl-out");
}
