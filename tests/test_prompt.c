/* How the experiments ask and score: answer instructions, answer-token sets, prompts checked
 * against the model's context and against llama.cpp's tokens. */
#include "test.h"

#include <cjson/cJSON.h>

static ids_model *load_model(const char *path) {
    ids_model *m = NULL;
    ids_err err;
    if (ids_model_load(&m, path, &err)) t_fail(__FILE__, __LINE__, "%s", err.msg);
    return m;
}

static bool set_is(const ids_answer_set *s, int k, const int32_t *want, int n) {
    if (s->n[k] != n) return false;
    for (int i = 0; i < n; i++)
        if (s->tok[k][i] != want[i]) return false;
    return true;
}

/* Every answer word's first token in its case variants: four distinct tokens on the Llama and Qwen2
 * vocabularies; on the bundled model's word-level vocabulary only the word itself (the other
 * variants are spelled with byte fallbacks), i.e. the paper's word rule. */
TEST(answer_sets_per_vocabulary) {
    ids_err err;
    ids_answer_set s;
    ids_model *m = load_model("models/tiny-llava/text.gguf");
    REQUIRE(m);
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(m), IDS_REL_LEFT_RIGHT, &s, &err), err);
    const int32_t bl[1] = {277}, br[1] = {283};
    CHECK(set_is(&s, 0, bl, 1) && set_is(&s, 1, br, 1));
    CHECK_EQ_INT(s.tok[0][0], ids_tokenizer_word_token(ids_model_tokenizer(m), "left", NULL));
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(m), IDS_REL_ABOVE_BELOW, &s, &err), err);
    CHECK(s.n[0] == 1 && s.n[1] == 1); /* " Above" would begin with the word "A": spelled with bytes, left out */
    ids_model_free(m);

    m = load_model(t_shared("golden/llava-tiny/text.gguf"));
    REQUIRE(m);
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(m), IDS_REL_LEFT_RIGHT, &s, &err), err);
    const int32_t ll[4] = {2175, 1563, 19941, 8091}, lr[4] = {1492, 1266, 10428, 7341}; /* ▁left left ▁Left Left */
    CHECK(set_is(&s, 0, ll, 4) && set_is(&s, 1, lr, 4));
    CHECK(!strcmp(s.variant[0][2], " Left") && !strcmp(s.piece[0][2], "\xe2\x96\x81Left"));
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(m), IDS_REL_ABOVE_BELOW, &s, &err), err);
    const int32_t la[4] = {2038, 27215, 319, 29909}; /* " Above" begins with "▁A", as the paper's LLaVA tokens */
    CHECK(set_is(&s, 0, la, 4));
    ids_model_free(m);

    m = load_model(t_shared("golden/qwen2vl-tiny/text.gguf"));
    REQUIRE(m);
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(m), IDS_REL_LEFT_RIGHT, &s, &err), err);
    const int32_t ql[4] = {2115, 2359, 13727, 5415}, qr[4] = {1290, 1291, 10083, 5979}; /* Ġleft left ĠLeft Left */
    CHECK(set_is(&s, 0, ql, 4) && set_is(&s, 1, qr, 4));
    int32_t cand[IDS_ANSWER_MAX * 2];
    CHECK_EQ_INT(ids_answer_set_cands(&s, cand), 8);
    CHECK(cand[0] == 2115 && cand[4] == 1290);
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(m), IDS_REL_BEFORE_AFTER, &s, &err), err);
    CHECK(s.tok[0][3] == 10227 && s.tok[1][3] == 6025); /* "Before", "After": the ids the paper's video code read */
    ids_model_free(m);
}

TEST(answer_set_log_sum_exp) {
    ids_answer_set s = {.relation = IDS_REL_LEFT_RIGHT, .n = {2, 1}};
    const float lp[3] = {logf(0.2f), logf(0.3f), logf(0.1f)};
    float out[2];
    ids_answer_set_reduce(&s, lp, out);
    CHECKF(fabsf(out[0] - logf(0.5f)) < 1e-6f && fabsf(out[1] - logf(0.1f)) < 1e-6f, "%g %g", out[0], out[1]);
    const float one[3] = {-3.25f, -INFINITY, -7.5f}; /* one token: its log-probability exactly */
    ids_answer_set_reduce(&s, one, out);
    CHECK(out[0] == -3.25f && out[1] == -7.5f);
}

TEST(answer_instruction_defaults) {
    ids_vlm *bundled, *golden;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&bundled, "models/tiny-llava/text.gguf", "models/tiny-llava/mmproj.gguf", &err), err);
    REQUIRE_OK(ids_vlm_load(&golden, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err),
               err);
    ids_exp e = ids_exp_default();
    CHECK(!strcmp(ids_exp_instruction(&e, bundled), ""));        /* the prompt it was trained on */
    CHECK(!strcmp(ids_exp_instruction(&e, golden), IDS_PAPER_INSTRUCTION));
    e.no_instruction = true;
    CHECK(!strcmp(ids_exp_instruction(&e, golden), ""));
    e.no_instruction = false;
    e.instruction = "Say {first} or {second}.";
    CHECK(!strcmp(ids_exp_instruction(&e, bundled), "Say {first} or {second}."));
    char *q = ids_question_instructed(IDS_REL_ABOVE_BELOW, "cup", "table", NULL, e.instruction);
    CHECK(q && !strcmp(q, "Is the cup above or below the table? Say above or below."));
    free(q);
    q = ids_question_instructed(IDS_REL_LEFT_RIGHT, "dog", "person", NULL, IDS_PAPER_INSTRUCTION);
    CHECK(q && !strcmp(q, "Is the dog to the left or right of the person? Answer \"left\" or \"right\" only."));
    free(q);
    q = ids_question_instructed(IDS_REL_LEFT_RIGHT, "dog", "person", NULL, "");
    CHECK(q && !strcmp(q, "Is the dog to the left or right of the person?"));
    free(q);
    ids_vlm_free(bundled);
    ids_vlm_free(golden);
}

/* The LLaVA chat prompt with the paper's instruction, as the experiments build it for the golden
 * model, is the text of the fixture and tokenizes into llama.cpp's tokens for it. */
TEST(golden_prompt_with_instruction_matches_llamacpp) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    char *js = t_read_file("tests/fixtures/golden/llava-instruction.json", NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    const cJSON *want_prompt = cJSON_GetObjectItem(root, "prompt"), *chunks = cJSON_GetObjectItem(root, "chunks"), *c;
    REQUIRE(cJSON_IsString(want_prompt) && cJSON_IsArray(chunks));
    ids_exp e = ids_exp_default();
    char *q = ids_question_instructed(IDS_REL_LEFT_RIGHT, "red circle", "blue square", NULL, ids_exp_instruction(&e, v));
    char *prompt = ids_vlm_prompt(v, q, 1);
    CHECKF(prompt && !strcmp(prompt, want_prompt->valuestring), "prompt '%s'", prompt ? prompt : "(null)");
    int32_t want[128];
    int n = 0;
    cJSON_ArrayForEach(c, chunks) {
        const cJSON *val = cJSON_GetArrayItem(c, 1);
        if (!strcmp(cJSON_GetArrayItem(c, 0)->valuestring, "image"))
            for (int k = 0; k < val->valueint && n < 128; k++) want[n++] = -1;
        else
            for (int k = 0; k < cJSON_GetArraySize(val) && n < 128; k++) want[n++] = cJSON_GetArrayItem(val, k)->valueint;
    }
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, t_shared("golden/llava-tiny/image.png"), &err), err);
    ids_seq *s = NULL;
    CHECK_OK_ERR(ids_vlm_build_seq(v, prompt, &img, 1, 1, NULL, &s, &err), err);
    CHECK_EQ_INT(s ? ids_seq_len(s) : -1, n);
    int bad = 0;
    for (int i = 0; s && i < n && i < ids_seq_len(s); i++) bad += ids_seq_row(s, i)->token != want[i];
    CHECK_EQ_INT(bad, 0);
    /* the answer word the instruction quotes is the no-space variant of the answer set */
    ids_answer_set as;
    CHECK_OK_ERR(ids_answer_set_make(ids_model_tokenizer(ids_vlm_model(v)), IDS_REL_LEFT_RIGHT, &as, &err), err);
    CHECK(as.tok[0][1] == want[16 + 5 + 18] && as.tok[1][1] == want[16 + 5 + 22]); /* 'left', 'right' after '▁"' */
    ids_seq_free(s);
    ids_image_free(&img);
    free(prompt);
    free(q);
    cJSON_Delete(root);
    free(js);
    ids_vlm_free(v);
}

/* A prompt longer than the model's context is an error naming both lengths. */
TEST(prompt_longer_than_context_refused) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    const int words = 2100;
    char *q = malloc((size_t)words * 5 + 1);
    REQUIRE(q);
    for (int i = 0; i < words; i++) memcpy(q + 5 * i, "left ", 5);
    q[5 * words] = 0;
    char *prompt = ids_vlm_prompt(v, q, 1);
    ids_image img;
    REQUIRE_OK(ids_image_load(&img, t_shared("golden/llava-tiny/image.png"), &err), err);
    ids_seq *s = NULL;
    CHECK_EQ_INT(ids_vlm_build_seq(v, prompt, &img, 1, 1, NULL, &s, &err), IDS_ERR_RANGE);
    CHECKF(strstr(err.msg, "2048") && strstr(err.msg, "2129 rows") && strstr(err.msg, "context_length"), "%s", err.msg);
    CHECK(s == NULL);
    ids_image_free(&img);
    free(prompt);
    free(q);
    ids_vlm_free(v);
}

/* Two objects whose question words end in the same token would be the same row of the prompt:
 * refused, not patched twice. On the bundled model's word-level vocabulary "frog" and "dog" are
 * spelled with byte pieces and both end in the byte 'g'. */
TEST(shared_question_word_refused) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, "models/tiny-llava/text.gguf", "models/tiny-llava/mmproj.gguf", &err), err);
    ids_catalog *cat = ids_catalog_new();
    ids_image im;
    REQUIRE_OK(ids_image_new(&im, 8, 8, (const uint8_t[3]){10, 200, 30}, &err), err);
    CHECK_OK_ERR(ids_image_write_png(&im, t_tmp("frog.png"), &err), err);
    CHECK_OK_ERR(ids_image_write_png(&im, t_tmp("dog.png"), &err), err);
    ids_image_free(&im);
    CHECK_OK_ERR(ids_catalog_add_sprite(cat, t_tmp("frog.png"), &err), err);
    CHECK_OK_ERR(ids_catalog_add_sprite(cat, t_tmp("dog.png"), &err), err);
    int objs[2] = {ids_catalog_find(cat, "frog", NULL), ids_catalog_find(cat, "dog", NULL)};
    ids_swap_opts o = {.exp = {.objects = objs, .n_objects = 2, .grid = 2, .n_items = 1, .seed = 1, .n_threads = 1}};
    ids_swap_result r;
    CHECK_EQ_INT(ids_swap_run(v, cat, &o, false, &r, NULL, NULL, &err), IDS_ERR_ARG);
    CHECKF(strstr(err.msg, "'frog' and 'dog'") && strstr(err.msg, "same token"), "%s", err.msg);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}
