/* Hugging Face folders: a tiny LLaVA-shaped folder written here (two shards, F32/F16/BF16 weights, a
 * SentencePiece-style tokenizer.json) read as its GGUF pair: keys, the converter's renames and Q/K
 * row order, BF16 norms as F32, the tokenizer's merge order, the engine loading it; broken folders
 * and allocation failures. The golden comparison (same captures as the GGUF pairs) is in cli_hf.sh. */
#include "test.h"

#include <sys/stat.h>

enum { E = 8, NH = 2, HD = 4, NKV = 1, FF = 12, NV = 16, VE = 8, VF = 16, VL = 2 };

typedef struct {
    const char *model_type;
    int ff_config;       /* intermediate_size written in config.json */
    bool missing_shard;  /* the index names a second shard that is not there */
    bool int_tensor;     /* one weight stored as I32 */
} folder_opts;

static float val(int i, int salt) { return sinf(0.37f * (float)i + (float)salt) * 0.5f; }

static void put_text(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
}

/* Weights: a tensor of n values (float, or F16/BF16 bits) kept alive in `keep` until written. */
typedef struct {
    ids_st_writer *w;
    void *keep[64];
    int n_keep, salt;
} wr;

static void add(wr *x, const char *name, const char *dtype, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    const int64_t shape[4] = {d0, d1, d2, d3};
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    const bool f32 = !strcmp(dtype, "F32") || !strcmp(dtype, "I32");
    void *buf = malloc((size_t)n * (f32 ? 4 : 2));
    for (int64_t i = 0; i < n; i++) {
        float v = val((int)i, ++x->salt);
        if (f32) ((float *)buf)[i] = v;
        else ((uint16_t *)buf)[i] = !strcmp(dtype, "F16") ? ids_f32_to_f16(v) : ids_f32_to_bf16(v);
    }
    x->keep[x->n_keep++] = buf;
    ids_st_writer_add(x->w, name, dtype, nd, shape, buf, NULL);
}

static void write_weights(const char *dir, const folder_opts *o) {
    wr t = {.w = ids_st_writer_new()};
    char nm[160];
    const char *lm = "language_model.model.layers.0.";
#define L(suffix, dt, nd, a, b) snprintf(nm, sizeof nm, "%s%s", lm, suffix), add(&t, nm, dt, nd, a, b, 0, 0)
    add(&t, "language_model.model.embed_tokens.weight", "F32", 2, NV, E, 0, 0);
    L("input_layernorm.weight", "BF16", 1, E, 0);
    L("self_attn.q_proj.weight", "F32", 2, NH * HD, E);
    L("self_attn.k_proj.weight", "F32", 2, NKV * HD, E);
    L("self_attn.v_proj.weight", "F32", 2, NKV * HD, E);
    L("self_attn.o_proj.weight", "F32", 2, E, NH * HD);
    L("post_attention_layernorm.weight", "F32", 1, E, 0);
    L("mlp.gate_proj.weight", o->int_tensor ? "I32" : "F32", 2, FF, E);
    L("mlp.up_proj.weight", "F32", 2, FF, E);
    L("mlp.down_proj.weight", "F16", 2, E, FF);
#undef L
    add(&t, "language_model.model.norm.weight", "F32", 1, E, 0, 0, 0);
    add(&t, "language_model.lm_head.weight", "F32", 2, NV, E, 0, 0);
    const char *v = "vision_tower.vision_model.";
#define V(suffix, dt, nd, a, b, c, d) snprintf(nm, sizeof nm, "%s%s", v, suffix), add(&t, nm, dt, nd, a, b, c, d)
    V("embeddings.class_embedding", "F32", 1, VE, 0, 0, 0);
    V("embeddings.patch_embedding.weight", "BF16", 4, VE, 3, 14, 14);
    V("embeddings.position_embedding.weight", "F32", 2, 5, VE, 0, 0);
    V("pre_layrnorm.weight", "F32", 1, VE, 0, 0, 0);
    V("pre_layrnorm.bias", "F32", 1, VE, 0, 0, 0);
    for (int l = 0; l < VL; l++) {
        static const char *const lin[4] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"};
        char b[96];
        for (int k = 0; k < 4; k++) {
            snprintf(b, sizeof b, "encoder.layers.%d.%s.weight", l, lin[k]), V(b, "F16", 2, VE, VE, 0, 0);
            snprintf(b, sizeof b, "encoder.layers.%d.%s.bias", l, lin[k]), V(b, "F32", 1, VE, 0, 0, 0);
        }
        for (int k = 1; k <= 2; k++) {
            snprintf(b, sizeof b, "encoder.layers.%d.layer_norm%d.weight", l, k), V(b, "F32", 1, VE, 0, 0, 0);
            snprintf(b, sizeof b, "encoder.layers.%d.layer_norm%d.bias", l, k), V(b, "F32", 1, VE, 0, 0, 0);
        }
        snprintf(b, sizeof b, "encoder.layers.%d.mlp.fc1.weight", l), V(b, "F16", 2, VF, VE, 0, 0);
        snprintf(b, sizeof b, "encoder.layers.%d.mlp.fc1.bias", l), V(b, "F32", 1, VF, 0, 0, 0);
        snprintf(b, sizeof b, "encoder.layers.%d.mlp.fc2.weight", l), V(b, "F16", 2, VE, VF, 0, 0);
        snprintf(b, sizeof b, "encoder.layers.%d.mlp.fc2.bias", l), V(b, "F32", 1, VE, 0, 0, 0);
    }
#undef V
    add(&t, "multi_modal_projector.linear_1.weight", "F32", 2, E, VE, 0, 0);
    add(&t, "multi_modal_projector.linear_1.bias", "F32", 1, E, 0, 0, 0);
    add(&t, "multi_modal_projector.linear_2.weight", "F32", 2, E, E, 0, 0);
    add(&t, "multi_modal_projector.linear_2.bias", "F32", 1, E, 0, 0, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, o->missing_shard ? "model-00001-of-00002.safetensors" : "model.safetensors");
    ids_st_writer_write(t.w, p, NULL);
    ids_st_writer_free(t.w);
    for (int i = 0; i < t.n_keep; i++) free(t.keep[i]);
    if (o->missing_shard)
        put_text(dir, "model.safetensors.index.json",
                 "{\"weight_map\": {\"language_model.model.norm.weight\": \"model-00001-of-00002.safetensors\", "
                 "\"multi_modal_projector.linear_2.bias\": \"model-00002-of-00002.safetensors\"}}");
}

static const char *folder(const char *name, const folder_opts *o) {
    const char *dir = t_tmp(name);
    mkdir(dir, 0755);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\": \"%s\", \"vision_feature_layer\": -2, \"text_config\": {\"model_type\": \"llama\", "
             "\"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": 1, \"num_attention_heads\": %d, "
             "\"num_key_value_heads\": %d, \"rms_norm_eps\": 1e-05, \"vocab_size\": %d}, \"vision_config\": "
             "{\"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": 2, "
             "\"image_size\": 28, \"patch_size\": 14, \"projection_dim\": 8}}",
             o->model_type ? o->model_type : "llava", E, o->ff_config ? o->ff_config : FF, NH, NKV, NV, VE, VF, VL);
    put_text(dir, "config.json", cfg);
    put_text(dir, "tokenizer.json",
             "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}, {\"id\": 1, \"content\": "
             "\"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}], \"normalizer\": "
             "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\u2581\"}, {\"type\": "
             "\"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}]}, \"pre_tokenizer\": null, "
             "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"vocab\": {\"<unk>\": 0, "
             "\"<s>\": 1, \"</s>\": 2, \"\u2581\": 3, \"a\": 4, \"b\": 5, \"\u2581a\": 6, \"ab\": 7, \"<0x41>\": 8}, "
             "\"merges\": [\"\u2581 a\", \"a b\"]}}");
    put_text(dir, "tokenizer_config.json", "{\"add_bos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": "
                                           "{\"content\": \"</s>\"}, \"chat_template\": \"{{ x }}\"}");
    put_text(dir, "preprocessor_config.json", "{\"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.25, 0.5, 1]}");
    write_weights(dir, o);
    return dir;
}

static float f32_at(const ids_tensor *t, int64_t i) {
    float f[64];
    ids_tensor_rows_f32(t, 0, 1, f, NULL);
    return f[i];
}

TEST(hf_llava_text_view) {
    folder_opts o = {0};
    const char *dir = folder("hf-llava", &o);
    ids_err err;
    ids_gguf *g;
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err), err);
    const char *s = NULL;
    uint32_t u = 0;
    CHECK(ids_gguf_get_str(g, "general.architecture", &s, NULL) == IDS_OK && !strcmp(s, "llama"));
    CHECK(ids_gguf_get_u32(g, "llama.rope.dimension_count", &u, NULL) == IDS_OK && u == HD);
    CHECK(ids_gguf_get_u32(g, "llama.attention.head_count_kv", &u, NULL) == IDS_OK && u == NKV);
    CHECK(ids_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, NULL) == IDS_OK && u == 2);
    CHECK(ids_gguf_get_str(g, "tokenizer.chat_template", &s, NULL) == IDS_OK && !strcmp(s, "{{ x }}"));
    CHECK_EQ_INT(ids_gguf_n_tensors(g), 2 + 9 + 1);
    /* Q rows in llama.cpp's rotary order: GGUF row h*d + 2i + j = HF row h*d + j*d/2 + i */
    const ids_tensor *q = ids_gguf_find_tensor(g, "blk.0.attn_q.weight"), *k = ids_gguf_find_tensor(g, "blk.0.attn_k.weight");
    REQUIRE(q && k && q->type == IDS_TYPE_F32 && q->ne[0] == E && q->ne[1] == NH * HD);
    static const int qrow[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    const int qsalt = 1 + NV * E + E; /* salts are drawn per element in the order of write_weights */
    for (int r = 0; r < NH * HD; r++)
        for (int c = 0; c < E; c++)
            CHECKF(((const float *)q->data)[r * E + c] == val(qrow[r] * E + c, qsalt + qrow[r] * E + c),
                   "q row %d col %d", r, c);
    const int ksalt = qsalt + NH * HD * E;
    for (int r = 0; r < HD; r++) CHECK(((const float *)k->data)[r * E] == val(qrow[r] * E, ksalt + qrow[r] * E));
    /* BF16 norm stored as F32 with the same values; an F16 matrix kept as F16 */
    const ids_tensor *n = ids_gguf_find_tensor(g, "blk.0.attn_norm.weight");
    REQUIRE(n && n->type == IDS_TYPE_F32);
    CHECK(f32_at(n, 3) == ids_bf16_to_f32(ids_f32_to_bf16(val(3, 1 + NV * E + 3))));
    const ids_tensor *d = ids_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    CHECK(d && d->type == IDS_TYPE_F16 && d->ne[0] == FF && d->ne[1] == E);
    CHECK(ids_gguf_find_tensor(g, "output.weight") != NULL);
    /* the SentencePiece merge order: "▁ a" (rank 0) before "a b", so "ab a" is ▁a b ▁a */
    ids_tokenizer *tok;
    REQUIRE_OK(ids_tokenizer_load(&tok, g, &err), err);
    int32_t *ids = NULL;
    size_t nt = 0;
    ids_tokenize_opts to = {.add_bos = true};
    CHECK_OK_ERR(ids_tokenize(tok, "ab a", 4, to, &ids, &nt, &err), err);
    CHECK_EQ_INT(nt, 4);
    if (nt == 4) CHECK(ids[0] == 1 && ids[1] == 6 && ids[2] == 5 && ids[3] == 6);
    free(ids);
    ids_tokenizer_free(tok);
    ids_gguf_close(g);
}

TEST(hf_llava_vision_view_and_engine) {
    folder_opts o = {0};
    const char *dir = folder("hf-llava-v", &o);
    ids_err err;
    ids_gguf *g;
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_VISION, &err), err);
    uint32_t u = 0;
    CHECK(ids_gguf_get_u32(g, "clip.vision.block_count", &u, NULL) == IDS_OK && u == VL - 1); /* feature layer -2 */
    CHECK(ids_gguf_find_tensor(g, "v.blk.0.attn_q.weight") && !ids_gguf_find_tensor(g, "v.blk.1.attn_q.weight"));
    const ids_tensor *fc1 = ids_gguf_find_tensor(g, "v.blk.0.ffn_down.weight"), *pe = ids_gguf_find_tensor(g, "v.patch_embd.weight");
    CHECK(fc1 && fc1->ne[0] == VE && fc1->ne[1] == VF); /* the legacy converter's name for fc1 */
    CHECK(pe && pe->type == IDS_TYPE_F32 && pe->ne[0] == 14 && pe->ne[3] == VE); /* BF16 kernel as F32 */
    const ids_gguf_value *sd;
    double x = 0;
    CHECK(ids_gguf_get_arr(g, "clip.vision.image_std", -1, &sd, NULL) == IDS_OK && ids_gguf_arr_f64(sd, 0, &x) == IDS_OK &&
          x == 0.25);
    ids_gguf_close(g);
    ids_vlm *v;
    REQUIRE_OK(ids_vlm_load(&v, dir, NULL, &err), err);
    CHECK_EQ_INT(ids_model_hparams(ids_vlm_model(v))->n_layer, 1);
    CHECK_EQ_INT(ids_vision_params(ids_vlm_vision(v))->n_out_embd, E);
    ids_vlm_free(v);
}

static void check_error(const char *name, const folder_opts *o, ids_hf_part part, ids_status want, const char *a,
                        const char *b) {
    const char *dir = folder(name, o);
    ids_err err = {0};
    ids_gguf *g = NULL;
    ids_status st = ids_hf_open(&g, dir, part, &err);
    CHECKF(st == want, "%s: %s, want %s (%s)", name, ids_status_name(st), ids_status_name(want), t_msg(&err));
    CHECKF(strstr(err.msg, a) && strstr(err.msg, b), "%s: message '%s' lacks '%s' or '%s'", name, err.msg, a, b);
    ids_gguf_close(g);
}

TEST(hf_broken_folders) {
    folder_opts o = {.model_type = "idefics3"};
    check_error("hf-type", &o, IDS_HF_TEXT, IDS_ERR_UNSUPPORTED, "hf-type/config.json", "model_type 'idefics3'");
    o = (folder_opts){.ff_config = 13};
    check_error("hf-shape", &o, IDS_HF_TEXT, IDS_ERR_FORMAT, "hf-shape/model.safetensors",
                "'language_model.model.layers.0.mlp.gate_proj.weight' has shape [12, 8], expected [13, 8]");
    o = (folder_opts){.missing_shard = true};
    check_error("hf-shard", &o, IDS_HF_VISION, IDS_ERR_IO, "'multi_modal_projector.linear_2.bias' in model-00002-of-00002",
                "hf-shard/model-00002-of-00002.safetensors: cannot open");
    o = (folder_opts){.int_tensor = true};
    check_error("hf-dtype", &o, IDS_HF_TEXT, IDS_ERR_UNSUPPORTED, "hf-dtype/model.safetensors",
                "'language_model.model.layers.0.mlp.gate_proj.weight': dtype I32");
    ids_err err = {0};
    ids_gguf *g = NULL;
    CHECK(ids_hf_open(&g, t_tmp("hf-none"), IDS_HF_TEXT, &err) == IDS_ERR_NOT_FOUND && strstr(err.msg, "config.json"));
}

static char g_alloc_dir[512], g_alloc_out[512];
static ids_status open_both(void *ctx, ids_err *err) {
    (void)ctx;
    ids_gguf *t = NULL, *v = NULL;
    ids_status st = ids_hf_open(&t, g_alloc_dir, IDS_HF_TEXT, err);
    if (!st) st = ids_hf_open(&v, g_alloc_dir, IDS_HF_VISION, err);
    if (!st) st = ids_hf_convert(g_alloc_dir, g_alloc_out, err);
    ids_gguf_close(t);
    ids_gguf_close(v);
    return st;
}

TEST(hf_allocation_failures) {
    folder_opts o = {0};
    snprintf(g_alloc_dir, sizeof g_alloc_dir, "%s", folder("hf-alloc", &o));
    snprintf(g_alloc_out, sizeof g_alloc_out, "%s", t_tmp("hf-alloc-out"));
    mkdir(g_alloc_out, 0755);
    CHECK(CHECK_ALLOC_FAILURES(open_both, NULL, 4000) > 0);
}

TEST(hf_convert_equals_view) {
    folder_opts o = {0};
    const char *dir = folder("hf-conv", &o), *out = t_tmp("hf-conv-out");
    mkdir(out, 0755);
    ids_err err;
    REQUIRE_OK(ids_hf_convert(dir, out, &err), err);
    char p[512];
    snprintf(p, sizeof p, "%s/text.gguf", out);
    ids_gguf *a, *b;
    REQUIRE_OK(ids_gguf_open(&a, p, &err), err);
    REQUIRE_OK(ids_hf_open(&b, dir, IDS_HF_TEXT, &err), err);
    CHECK_EQ_INT(ids_gguf_n_kv(a), ids_gguf_n_kv(b));
    CHECK_EQ_INT(ids_gguf_n_tensors(a), ids_gguf_n_tensors(b));
    for (int64_t i = 0; i < ids_gguf_n_tensors(a) && i < ids_gguf_n_tensors(b); i++) {
        const ids_tensor *x = ids_gguf_tensor_at(a, i), *y = ids_gguf_tensor_at(b, i);
        CHECKF(!strcmp(x->name, y->name) && x->type == y->type && x->nbytes == y->nbytes &&
                   !memcmp(x->data, y->data, x->nbytes), "tensor %s", x->name);
    }
    ids_gguf_close(a);
    ids_gguf_close(b);
}

/* A tiny Qwen2-VL folder: tied embeddings, q/k/v biases, M-RoPE sections, the Conv3D patch kernel and
 * the fused qkv, a byte-level tokenizer.json (merges as pairs, the Qwen2 Split regex). */
static const char *qwen_folder(const char *name) {
    const char *dir = t_tmp(name);
    mkdir(dir, 0755);
    put_text(dir, "config.json",
             "{\"model_type\": \"qwen2_vl\", \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1, "
             "\"num_attention_heads\": 1, \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": "
             "true, \"eos_token_id\": 5, \"rope_scaling\": {\"type\": \"mrope\", \"mrope_section\": [2, 1, 1]}, "
             "\"vision_config\": {\"depth\": 1, \"embed_dim\": 8, \"mlp_ratio\": 2, \"num_heads\": 2, \"hidden_size\": 8, "
             "\"patch_size\": 14, \"spatial_merge_size\": 2, \"temporal_patch_size\": 2}}");
    put_text(dir, "tokenizer.json",
             "{\"added_tokens\": [{\"id\": 5, \"content\": \"<|im_end|>\", \"special\": true}], \"pre_tokenizer\": "
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
             "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|"
             "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", "
             "\"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, "
             "\"\u0120\": 3, \"\u0120a\": 4}, \"merges\": [[\"a\", \"b\"], [\"\u0120\", \"a\"]]}}");
    put_text(dir, "preprocessor_config.json", "{\"size\": {\"shortest_edge\": 3136, \"longest_edge\": 6272}}");
    wr t = {.w = ids_st_writer_new()};
    add(&t, "model.embed_tokens.weight", "BF16", 2, 8, 8, 0, 0);
    static const struct { const char *n, *dt; int nd; int64_t a, b; } lw[] = {
        {"input_layernorm.weight", "F32", 1, 8, 0}, {"self_attn.q_proj.weight", "F32", 2, 8, 8},
        {"self_attn.q_proj.bias", "BF16", 1, 8, 0}, {"self_attn.k_proj.weight", "F32", 2, 8, 8},
        {"self_attn.k_proj.bias", "F32", 1, 8, 0}, {"self_attn.v_proj.weight", "F32", 2, 8, 8},
        {"self_attn.v_proj.bias", "F32", 1, 8, 0}, {"self_attn.o_proj.weight", "F32", 2, 8, 8},
        {"post_attention_layernorm.weight", "F32", 1, 8, 0}, {"mlp.gate_proj.weight", "BF16", 2, 12, 8},
        {"mlp.up_proj.weight", "F32", 2, 12, 8}, {"mlp.down_proj.weight", "F32", 2, 8, 12}};
    char nm[128];
    for (size_t i = 0; i < sizeof lw / sizeof *lw; i++)
        snprintf(nm, sizeof nm, "model.layers.0.%s", lw[i].n), add(&t, nm, lw[i].dt, lw[i].nd, lw[i].a, lw[i].b, 0, 0);
    add(&t, "model.norm.weight", "F32", 1, 8, 0, 0, 0);
    const int64_t pshape[5] = {8, 3, 2, 14, 14};
    float *pk = malloc(sizeof(float) * 8 * 3 * 2 * 14 * 14);
    for (int i = 0; i < 8 * 3 * 2 * 14 * 14; i++) pk[i] = val(i, 7);
    ids_st_writer_add(t.w, "visual.patch_embed.proj.weight", "F32", 5, pshape, pk, NULL);
    add(&t, "visual.blocks.0.attn.qkv.weight", "F16", 2, 24, 8, 0, 0);
    add(&t, "visual.blocks.0.attn.qkv.bias", "F32", 1, 24, 0, 0, 0);
    add(&t, "visual.blocks.0.attn.proj.weight", "F32", 2, 8, 8, 0, 0);
    add(&t, "visual.blocks.0.attn.proj.bias", "F32", 1, 8, 0, 0, 0);
    add(&t, "visual.blocks.0.mlp.fc1.weight", "F32", 2, 16, 8, 0, 0);
    add(&t, "visual.blocks.0.mlp.fc1.bias", "F32", 1, 16, 0, 0, 0);
    add(&t, "visual.blocks.0.mlp.fc2.weight", "F32", 2, 8, 16, 0, 0);
    add(&t, "visual.blocks.0.mlp.fc2.bias", "F32", 1, 8, 0, 0, 0);
    static const char *const vec8[] = {"visual.blocks.0.norm1.weight", "visual.blocks.0.norm1.bias", "visual.blocks.0.norm2.weight",
                                       "visual.blocks.0.norm2.bias", "visual.merger.ln_q.weight", "visual.merger.ln_q.bias",
                                       "visual.merger.mlp.2.bias"};
    for (size_t i = 0; i < sizeof vec8 / sizeof *vec8; i++) add(&t, vec8[i], "F32", 1, 8, 0, 0, 0);
    add(&t, "visual.merger.mlp.0.weight", "F32", 2, 32, 32, 0, 0);
    add(&t, "visual.merger.mlp.0.bias", "F32", 1, 32, 0, 0, 0);
    add(&t, "visual.merger.mlp.2.weight", "F32", 2, 8, 32, 0, 0);
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    ids_st_writer_write(t.w, p, NULL);
    ids_st_writer_free(t.w);
    for (int i = 0; i < t.n_keep; i++) free(t.keep[i]);
    free(pk);
    return dir;
}

TEST(hf_qwen2vl_views) {
    const char *dir = qwen_folder("hf-qwen");
    ids_err err;
    ids_gguf *g, *v;
    ids_st_file *st;
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    REQUIRE_OK(ids_st_open(&st, p, &err), err);
    REQUIRE_OK(ids_hf_open(&g, dir, IDS_HF_TEXT, &err), err);
    REQUIRE_OK(ids_hf_open(&v, dir, IDS_HF_VISION, &err), err);
    const char *s = NULL;
    CHECK(ids_gguf_get_str(g, "tokenizer.ggml.pre", &s, NULL) == IDS_OK && !strcmp(s, "qwen2"));
    CHECK(!ids_gguf_find_tensor(g, "output.weight")); /* tied */
    const ids_gguf_value *a;
    int64_t x = -1;
    CHECK(ids_gguf_get_arr(g, "qwen2vl.rope.dimension_sections", -1, &a, NULL) == IDS_OK && a->v.arr.n == 4 &&
          ids_gguf_arr_i64(a, 0, &x) == IDS_OK && x == 2 && ids_gguf_arr_i64(a, 3, &x) == IDS_OK && x == 0);
    CHECK(ids_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &a, NULL) == IDS_OK && a->v.arr.n == 8 &&
          ids_gguf_arr_i64(a, 5, &x) == IDS_OK && x == 3 && ids_gguf_arr_i64(a, 7, &x) == IDS_OK && x == 4);
    /* the second temporal kernel: GGUF [14, 14, 3, 8] element (e, c, y, x) = HF [e, c, 1, y, x] */
    const ids_tensor *p1 = ids_gguf_find_tensor(v, "v.patch_embd.weight.1");
    const ids_st_tensor *hp = ids_st_find(st, "visual.patch_embed.proj.weight");
    REQUIRE(p1 && hp && p1->ne[0] == 14 && p1->ne[2] == 3 && p1->ne[3] == 8);
    const float *gp = p1->data, *hpd = hp->data;
    CHECK(gp[((5 * 3 + 2) * 14 + 3) * 14 + 9] == hpd[(((5 * 3 + 2) * 2 + 1) * 14 + 3) * 14 + 9]);
    /* attn_k = rows 8..15 of qkv, bias included */
    const ids_tensor *k = ids_gguf_find_tensor(v, "v.blk.0.attn_k.weight"), *kb = ids_gguf_find_tensor(v, "v.blk.0.attn_k.bias");
    const ids_st_tensor *qkv = ids_st_find(st, "visual.blocks.0.attn.qkv.weight"), *qb = ids_st_find(st, "visual.blocks.0.attn.qkv.bias");
    REQUIRE(k && kb && qkv && qb && k->type == IDS_TYPE_F16);
    CHECK(!memcmp(k->data, (const uint16_t *)qkv->data + 8 * 8, 8 * 8 * 2));
    CHECK(!memcmp(kb->data, (const float *)qb->data + 8, 8 * 4));
    ids_tokenizer *tok;
    REQUIRE_OK(ids_tokenizer_load(&tok, g, &err), err);
    int32_t *ids = NULL;
    size_t nt = 0;
    CHECK_OK_ERR(ids_tokenize(tok, "ab a", 4, (ids_tokenize_opts){0}, &ids, &nt, &err), err);
    CHECK(nt == 2 && ids[0] == 2 && ids[1] == 4);
    free(ids);
    ids_tokenizer_free(tok);
    ids_gguf_close(g);
    ids_gguf_close(v);
    ids_st_close(st);
    ids_vlm *m;
    REQUIRE_OK(ids_vlm_load(&m, dir, NULL, &err), err);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(m)); /* the processor's bounds, not HF's class defaults */
    CHECK(vp->min_pixels == 3136 && vp->max_pixels == 6272);
    ids_vlm_free(m);
    snprintf(g_alloc_dir, sizeof g_alloc_dir, "%s", dir);
    snprintf(g_alloc_out, sizeof g_alloc_out, "%s", t_tmp("hf-qwen-out"));
    mkdir(g_alloc_out, 0755);
    CHECK(CHECK_ALLOC_FAILURES(open_both, NULL, 4000) > 0);
}
