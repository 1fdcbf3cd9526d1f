/* Trainer: whole-model gradient checks, a smoke run, the exported model read by the engine giving
 * the trainer's logits, configs. */
#include "test.h"
#include "train/train.h"

static void tiny_config(ids_train_config *c) {
    ids_train_default_config(c);
    c->image_size = 32;
    c->patch_size = 16;
    c->vit_width = 16;
    c->vit_layers = 1;
    c->vit_heads = 2;
    c->vit_ff = 32;
    c->width = 32;
    c->layers = 2;
    c->heads = 2;
    c->ff = 64;
    c->frames = 4;
    c->batch = 3;
    c->warmup = 2;
    c->eval_every = 0;
    c->stages[0].steps = 4;
    c->threads = 1;
}

TEST(train_gradcheck_whole_model) {
    ids_train_config c;
    tiny_config(&c);
    const ids_task tasks[3] = {IDS_TASK_LEFT_RIGHT, IDS_TASK_BEFORE_AFTER, IDS_TASK_TEXT_SPATIAL};
    for (int k = 0; k < 3; k++) {
        int bad;
        double worst;
        ids_err err;
        CHECK_OK_ERR(ids__train_gradcheck(&c, tasks[k], 3 * 60, &bad, &worst, &err), err);
        CHECKF(bad == 0, "%s: %d gradient probes off (worst relative error %g)", ids_task_name(tasks[k]), bad, worst);
    }
}

/* The auxiliary location loss (read-out at the object words of a middle residual) in the same
 * whole-model check, on a still, a depth scene and a video (each defines other targets). */
TEST(train_gradcheck_aux_location_loss) {
    ids_train_config c;
    tiny_config(&c);
    c.aux_weight = 2.0f;
    c.aux_layer = 1;
    const ids_task tasks[3] = {IDS_TASK_LEFT_RIGHT, IDS_TASK_FRONT_BEHIND, IDS_TASK_BEFORE_AFTER};
    for (int k = 0; k < 3; k++) {
        int bad;
        double worst;
        ids_err err;
        CHECK_OK_ERR(ids__train_gradcheck(&c, tasks[k], 3 * 60, &bad, &worst, &err), err);
        CHECKF(bad == 0, "%s: %d gradient probes off (worst relative error %g)", ids_task_name(tasks[k]), bad, worst);
    }
    c.aux_layer = 3; /* beyond the 2 blocks */
    int bad;
    double worst;
    ids_err err;
    CHECK(ids__train_gradcheck(&c, IDS_TASK_LEFT_RIGHT, 4, &bad, &worst, &err) == IDS_ERR_ARG);
}

/* A batch's gradient equals the sum of its shards' gradients (still images with the location
 * loss, and videos). */
TEST(train_shards_sum_to_the_batch_gradient) {
    ids_train_config c;
    tiny_config(&c);
    c.aux_weight = 1.0f;
    c.aux_layer = 1;
    const ids_task tasks[2] = {IDS_TASK_ABOVE_BELOW, IDS_TASK_BEFORE_AFTER};
    for (int k = 0; k < 2; k++) {
        double rel;
        ids_err err;
        CHECK_OK_ERR(ids__train_shardcheck(&c, tasks[k], &rel, &err), err);
        CHECKF(rel < 1e-5, "%s: sharded gradient differs by %g of the largest entry", ids_task_name(tasks[k]), rel);
    }
}

/* Same config, 1 or 2 threads: identical weights (shards fix the arithmetic). */
TEST(train_result_independent_of_threads) {
    ids_train_config c;
    tiny_config(&c);
    c.shards = 2;
    c.aux_weight = 0.5f;
    c.aux_layer = 1;
    c.stages[0].weights[IDS_TASK_LEFT_RIGHT] = 1.0f;
    ids_err err;
    const char *names[3] = {"output.weight", "blk.0.attn_q.weight", "v.patch_embd.weight"};
    float *w[2][3] = {{NULL}};
    int64_t n[3] = {0};
    for (int k = 0; k < 2; k++) {
        c.threads = k + 1;
        const char *dir = t_tmp(k ? "threads-2" : "threads-1");
        CHECK_OK_ERR(ids_train(&c, dir, NULL, NULL, &err), err);
        for (int f = 0; f < 3; f++) {
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dir, f < 2 ? "text.gguf" : "mmproj.gguf");
            ids_gguf *g;
            REQUIRE_OK(ids_gguf_open(&g, path, &err), err);
            const ids_tensor *t = ids_gguf_find_tensor(g, names[f]);
            REQUIRE(t);
            n[f] = ids_tensor_nelements(t);
            w[k][f] = malloc(sizeof(float) * (size_t)n[f]);
            CHECK_OK_ERR(ids_tensor_to_f32(t, w[k][f], &err), err);
            ids_gguf_close(g);
        }
    }
    for (int f = 0; f < 3; f++) {
        CHECKF(memcmp(w[0][f], w[1][f], sizeof(float) * (size_t)n[f]) == 0, "%s differs between 1 and 2 threads", names[f]);
        free(w[0][f]);
        free(w[1][f]);
    }
}

TEST(train_smoke_and_engine_equality) {
    ids_train_config c;
    tiny_config(&c);
    for (int t = 0; t < IDS_TASK_COUNT; t++) c.stages[0].weights[t] = 1.0f;
    ids_err err;
    const char *dir = t_tmp("tiny-model");
    CHECK_OK_ERR(ids_train(&c, dir, NULL, NULL, &err), err);
    char tp[600], mp[600];
    snprintf(tp, sizeof tp, "%s/text.gguf", dir);
    snprintf(mp, sizeof mp, "%s/mmproj.gguf", dir);
    ids_vlm *v;
    REQUIRE_OK(ids_vlm_load(&v, tp, mp, &err), err);
    ids_catalog *cat = ids_catalog_new();
    uint64_t rng = 77;
    const ids_task tasks[5] = {IDS_TASK_LEFT_RIGHT, IDS_TASK_FRONT_BEHIND, IDS_TASK_BEFORE_AFTER, IDS_TASK_TEXT_SPATIAL,
                               IDS_TASK_DESCRIBE};
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    ids_ctx *ctx;
    REQUIRE_OK(ids_ctx_new(&ctx, ids_vlm_model(v), cp, &err), err);
    const int V = ids_model_hparams(ids_vlm_model(v))->n_vocab;
    float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    for (int k = 0; k < 5; k++) {
        tk_sample s;
        REQUIRE_OK(tk_make(&c, cat, tasks[k], &rng, -1, &s, &err), err);
        int nv = 0;
        CHECK_OK_ERR(ids__train_logits(&c, dir, &s, a, &nv, &err), err);
        CHECK_EQ_INT(nv, V);
        ids_seq *seq;
        REQUIRE_OK(ids_vlm_build_seq(v, s.prompt, s.images, s.n_images, 1, NULL, &seq, &err), err);
        ids_run_opts o = {.logits = IDS_LOGITS_LAST};
        ids_run_out out = {.logits = b};
        CHECK_OK_ERR(ids_ctx_prefill(ctx, seq, NULL, 0, &o, &out, &err), err);
        double e = 0, scale = 0;
        for (int i = 0; i < V; i++) {
            e = fmax(e, fabs(a[i] - b[i]));
            scale = fmax(scale, fabs(b[i]));
        }
        CHECKF(e <= 1e-4, "%s: engine and trainer logits differ by %g (scale %g)", ids_task_name(tasks[k]), e, scale);
        CHECK(scale > 0);
        ids_seq_free(seq);
        tk_free(&s);
    }
    /* the word vocabulary tokenizes prompts one token per word */
    const ids_tokenizer *tok = ids_model_tokenizer(ids_vlm_model(v));
    int32_t *ids;
    size_t n;
    ids_tokenize_opts to = {.add_bos = true, .parse_special = true};
    const char *q = "USER: Is the red circle to the left or right of the blue square? ASSISTANT:";
    CHECK_OK_ERR(ids_tokenize(tok, q, strlen(q), to, &ids, &n, &err), err);
    CHECK_EQ_INT(n, 1 + 2 + 13 + 1 + 2); /* <s> ▁USER : ; 13 words ; ? ; ▁ASSISTANT : */
    free(ids);
    int correct = -1;
    CHECK_OK_ERR(ids_eval_task(v, IDS_TASK_LEFT_RIGHT, 6, 3, -1, &c, 1, IDS_PREC_F32, &correct, &err), err);
    CHECK(correct >= 0 && correct <= 6);
    CHECK_EQ_INT(ids_eval_task(v, IDS_TASK_DESCRIBE, 6, 3, -1, &c, 1, IDS_PREC_F32, &correct, &err), IDS_ERR_ARG);
    free(a);
    free(b);
    ids_ctx_free(ctx);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

TEST(train_config_files) {
    const char *p = t_tmp("cfg.json");
    FILE *f = fopen(p, "w");
    fputs("{\"width\": 96, \"layers\": 5, \"lr\": 0.001, \"seed\": 9, \"comment\": \"x\",\n"
          " \"stages\": [{\"steps\": 10, \"weights\": {\"text-spatial\": 1}},\n"
          "            {\"steps\": 20, \"weights\": {\"describe\": 1, \"left-right\": 2}}]}", f);
    fclose(f);
    ids_train_config c;
    ids_err err;
    CHECK_OK_ERR(ids_train_config_load(p, &c, &err), err);
    CHECK(c.width == 96 && c.layers == 5 && fabsf(c.lr - 0.001f) < 1e-9f && c.seed == 9 && c.n_stages == 2);
    CHECK(c.stages[1].steps == 20 && c.stages[1].weights[IDS_TASK_LEFT_RIGHT] == 2.0f &&
          c.stages[0].weights[IDS_TASK_DESCRIBE] == 0.0f);
    f = fopen(p, "w");
    fputs("{\"widht\": 96}", f);
    fclose(f);
    CHECK_EQ_INT(ids_train_config_load(p, &c, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "widht") != NULL);
    f = fopen(p, "w");
    fputs("{\"stages\": [{\"steps\": 1, \"weights\": {\"juggling\": 1}}]}", f);
    fclose(f);
    CHECK_EQ_INT(ids_train_config_load(p, &c, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "juggling") != NULL);
    /* held-out pairs: about the asked fraction, and deterministic */
    ids_train_default_config(&c);
    int held = 0;
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++) held += a != b && ids_train_heldout(&c, a, b);
    CHECK(held >= 3 && held <= 20);
}

/* Starting from exported weights: with a zero learning rate they come back out unchanged. */
TEST(train_init_from_exported) {
    ids_train_config c;
    tiny_config(&c);
    c.stages[0].steps = 2;
    for (int t = 0; t < IDS_TASK_COUNT; t++) c.stages[0].weights[t] = t == IDS_TASK_LOCATE;
    ids_err err;
    char a[512], b[512], pa[600], pb[600];
    snprintf(a, sizeof a, "%s", t_tmp("init-a"));
    snprintf(b, sizeof b, "%s", t_tmp("init-b"));
    CHECK_OK_ERR(ids_train(&c, a, NULL, NULL, &err), err);
    snprintf(c.init_from, sizeof c.init_from, "%s", a);
    c.lr = c.min_lr = 0.0f;
    c.seed = 99; /* another initialisation, overwritten by the loaded weights */
    CHECK_OK_ERR(ids_train(&c, b, NULL, NULL, &err), err);
    for (int f = 0; f < 2; f++) {
        snprintf(pa, sizeof pa, "%s/%s", a, f ? "mmproj.gguf" : "text.gguf");
        snprintf(pb, sizeof pb, "%s/%s", b, f ? "mmproj.gguf" : "text.gguf");
        ids_gguf *ga, *gb;
        REQUIRE_OK(ids_gguf_open(&ga, pa, &err), err);
        REQUIRE_OK(ids_gguf_open(&gb, pb, &err), err);
        int differ = 0;
        for (int64_t i = 0; i < ids_gguf_n_tensors(ga); i++) {
            const ids_tensor *ta = ids_gguf_tensor_at(ga, i), *tb = ids_gguf_find_tensor(gb, ta->name);
            if (!tb || tb->nbytes != ta->nbytes || memcmp(ta->data, tb->data, ta->nbytes)) differ++;
        }
        CHECKF(differ == 0, "%s: %d tensors differ", f ? "mmproj" : "text", differ);
        ids_gguf_close(ga);
        ids_gguf_close(gb);
    }
    snprintf(c.init_from, sizeof c.init_from, "/nonexistent");
    CHECK_EQ_INT(ids_train(&c, b, NULL, NULL, &err), IDS_ERR_IO);
}

/* OpenBLAS's thread count is process-wide: the trainer sets its own for the run and puts the
 * caller's back, whether it ran as one shard (BLAS threads) or several (single-threaded BLAS). */
TEST(train_restores_blas_threads) {
    ids_train_config c;
    tiny_config(&c);
    c.stages[0].steps = 1;
    c.threads = 2;
    ids_err err;
    for (int shards = 1; shards <= 2; shards++) {
        c.shards = shards;
        const int mine = shards == 1 ? 1 : 2; /* the opposite of what the trainer sets */
        const int prev = ids__blas_threads_set(mine);
        CHECK_OK_ERR(ids_train(&c, t_tmp("blas-threads"), NULL, NULL, &err), err);
        CHECK_EQ_INT(ids__blas_threads_set(prev), mine);
    }
}
