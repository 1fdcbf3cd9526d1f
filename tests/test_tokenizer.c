/* Tokenizers against the llama.cpp/HF test vectors in shared/vocab and the token sequences
 * llama.cpp built for the golden prompts. */
#include "test.h"

#include <cjson/cJSON.h>

static const char *SEP = "\n__ggml_vocab_test__\n";

/* Run every test string of one vocabulary; returns the number of mismatches. */
static int run_vocab(const char *name) {
    char gpath[256], ipath[256], opath[256];
    snprintf(gpath, sizeof gpath, "vocab/ggml-vocab-%s.gguf", name);
    snprintf(ipath, sizeof ipath, "vocab/ggml-vocab-%s.gguf.inp", name);
    snprintf(opath, sizeof opath, "vocab/ggml-vocab-%s.gguf.out", name);
    ids_gguf *g;
    ids_err err;
    if (ids_gguf_open(&g, t_shared(gpath), &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return 1;
    }
    ids_tokenizer *tok;
    ids_status st = ids_tokenizer_load(&tok, g, &err);
    ids_gguf_close(g); /* the tokenizer must not depend on the file staying open */
    if (st) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return 1;
    }
    size_t ilen, olen;
    char *inp = t_read_file(t_shared(ipath), &ilen);
    char *out = t_read_file(t_shared(opath), &olen);
    if (!inp || !out) {
        t_fail(__FILE__, __LINE__, "cannot read %s test vectors", name);
        ids_tokenizer_free(tok);
        free(inp);
        free(out);
        return 1;
    }
    int bad = 0, n_tests = 0;
    char *ip = inp, *op = out;
    while (*ip || *op) {
        char *sep = strstr(ip, SEP);
        size_t tl = sep ? (size_t)(sep - ip) : strlen(ip);
        char *nl = strchr(op, '\n');
        if (!nl && !*op) break;
        size_t ol = nl ? (size_t)(nl - op) : strlen(op);
        /* expected ids */
        int32_t want[512];
        size_t nw = 0;
        char *line = strndup(op, ol);
        for (char *q = strtok(line, " "); q && nw < 512; q = strtok(NULL, " ")) want[nw++] = atoi(q);
        free(line);
        int32_t *ids;
        size_t n;
        ids_tokenize_opts o = {.add_bos = false, .parse_special = false};
        st = ids_tokenize(tok, ip, tl, o, &ids, &n, &err);
        bool same = st == IDS_OK && n == nw && (n == 0 || memcmp(ids, want, n * 4) == 0);
        if (!same) {
            bad++;
            if (bad <= 3) {
                fprintf(stderr, "  %s test %d: '%.*s'\n    want:", name, n_tests, (int)tl, ip);
                for (size_t k = 0; k < nw; k++) fprintf(stderr, " %d", want[k]);
                fprintf(stderr, "\n    got: ");
                for (size_t k = 0; st == IDS_OK && k < n; k++) fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n");
            }
        }
        /* detokenization restores the text (byte-level BPE is lossless) */
        if (st == IDS_OK && ids_tokenizer_kind_of(tok) == IDS_TOK_BPE) {
            char *back;
            if (ids_detokenize(tok, ids, n, false, false, &back, &err) == IDS_OK) {
                if (strlen(back) != tl || memcmp(back, ip, tl) != 0) {
                    bad++;
                    fprintf(stderr, "  %s test %d: detokenized text differs\n", name, n_tests);
                }
                free(back);
            }
        }
        if (st == IDS_OK) free(ids);
        n_tests++;
        ip = sep ? sep + strlen(SEP) : ip + tl;
        op = nl ? nl + 1 : op + ol;
        if (!sep) break;
    }
    if (n_tests < 40) {
        t_fail(__FILE__, __LINE__, "%s: only %d test strings read", name, n_tests);
        bad++;
    }
    free(inp);
    free(out);
    ids_tokenizer_free(tok);
    return bad;
}

TEST(tok_vocab_llama_spm) { CHECK_EQ_INT(run_vocab("llama-spm"), 0); }
TEST(tok_vocab_qwen2) { CHECK_EQ_INT(run_vocab("qwen2"), 0); }
TEST(tok_vocab_llama_bpe) { CHECK_EQ_INT(run_vocab("llama-bpe"), 0); }
TEST(tok_vocab_gpt2) { CHECK_EQ_INT(run_vocab("gpt-2"), 0); }

static ids_tokenizer *load_tok(const char *rel) {
    ids_gguf *g;
    ids_err err;
    if (ids_gguf_open(&g, t_shared(rel), &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    ids_tokenizer *tok = NULL;
    if (ids_tokenizer_load(&tok, g, &err)) t_fail(__FILE__, __LINE__, "%s", err.msg);
    ids_gguf_close(g);
    return tok;
}

/* The prompt split at <image>, each text part tokenized on its own (BOS once, specials parsed),
 * must give exactly llama.cpp's chunks in tokens.json. */
static void check_prompt_chunks(const char *dir, const char *img_open, const char *img_close) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/text.gguf", dir);
    ids_tokenizer *tok = load_tok(rel);
    if (!tok) return;
    snprintf(rel, sizeof rel, "golden/%s/prompt.txt", dir);
    char *prompt = t_read_file(t_shared(rel), NULL);
    snprintf(rel, sizeof rel, "golden/%s/tokens.json", dir);
    char *js = t_read_file(t_shared(rel), NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    cJSON *chunks = cJSON_GetObjectItem(root, "chunks");
    if (!prompt || !chunks) {
        t_fail(__FILE__, __LINE__, "%s: cannot read prompt or tokens.json", dir);
        goto done;
    }
    /* The file is the prompt, byte for byte. Models that mark images (Qwen2-VL) get the markers
     * around <image>, as llama.cpp's mtmd adds them. */
    size_t pl = strlen(prompt);
    char *m0 = strstr(prompt, "<image>");
    if (m0 && (*img_open || *img_close)) {
        char *wrapped = malloc(pl + strlen(img_open) + strlen(img_close) + 1);
        sprintf(wrapped, "%.*s%s<image>%s%s", (int)(m0 - prompt), prompt, img_open, img_close, m0 + 7);
        free(prompt);
        prompt = wrapped;
    }
    const char *part = prompt;
    bool first = true;
    cJSON *c;
    cJSON_ArrayForEach(c, chunks) {
        const char *kind = cJSON_GetArrayItem(c, 0)->valuestring;
        cJSON *val = cJSON_GetArrayItem(c, 1);
        if (!strcmp(kind, "image")) {
            const char *m = strstr(part, "<image>");
            CHECK(m == part);
            part += m ? 7 : 0;
            continue;
        }
        const char *m = strstr(part, "<image>");
        size_t len = m ? (size_t)(m - part) : strlen(part);
        int32_t *ids;
        size_t n;
        ids_err err;
        ids_tokenize_opts o = {.add_bos = first, .parse_special = true};
        CHECK_OK_ERR(ids_tokenize(tok, part, len, o, &ids, &n, &err), err);
        CHECKF((int)n == cJSON_GetArraySize(val), "%s: %zu tokens, llama.cpp has %d", dir, n,
               cJSON_GetArraySize(val));
        for (int k = 0; k < cJSON_GetArraySize(val) && k < (int)n; k++)
            CHECKF(ids[k] == cJSON_GetArrayItem(val, k)->valueint, "%s: token %d: %d != %d", dir, k,
                   ids[k], cJSON_GetArrayItem(val, k)->valueint);
        free(ids);
        part += len;
        first = false;
    }
done:
    cJSON_Delete(root);
    free(js);
    free(prompt);
    ids_tokenizer_free(tok);
}

TEST(tok_golden_prompt_llava) { check_prompt_chunks("llava-tiny", "", ""); }
TEST(tok_golden_prompt_qwen2vl) {
    check_prompt_chunks("qwen2vl-tiny", "<|vision_start|>", "<|vision_end|>");
}

TEST(tok_word_token_and_occurrence) {
    ids_tokenizer *tok = load_tok("golden/llava-tiny/text.gguf");
    REQUIRE(tok);
    ids_err err;
    int32_t circle = ids_tokenizer_word_token(tok, "circle", &err);
    int32_t square = ids_tokenizer_word_token(tok, "square", &err);
    CHECK_EQ_INT(circle, 8607); /* "▁circle" in the Llama-2 vocabulary */
    CHECK_EQ_INT(square, 6862);
    CHECK(!strcmp(ids_tokenizer_piece(tok, circle), "\xE2\x96\x81" "circle"));
    const char *q = "Is the red circle to the left of the circle or the square?";
    int32_t *ids;
    size_t n;
    ids_tokenize_opts o = {.add_bos = true, .parse_special = false};
    CHECK_OK_ERR(ids_tokenize(tok, q, strlen(q), o, &ids, &n, &err), err);
    CHECK_EQ_INT(ids[0], 1);
    int64_t i0 = ids_find_token(ids, n, circle, 0, 0);
    int64_t i1 = ids_find_token(ids, n, circle, 0, 1);
    CHECK(i0 > 0 && i1 > i0);
    CHECK_EQ_INT(ids_find_token(ids, n, circle, 0, 2), -1);
    CHECK_EQ_INT(ids_find_token(ids, n, circle, (size_t)i0 + 1, 0), i1);
    free(ids);
    CHECK_EQ_INT(ids_tokenizer_word_token(tok, "", &err), -1);
    CHECK_EQ_INT(err.code, IDS_ERR_ARG);
    ids_tokenizer_free(tok);

    /* byte-level BPE: " frog" is one Qwen2 token with the Ġ space marker */
    tok = load_tok("vocab/ggml-vocab-qwen2.gguf");
    REQUIRE(tok);
    int32_t frog = ids_tokenizer_word_token(tok, "frog", &err);
    CHECK(frog >= 0 && !strcmp(ids_tokenizer_piece(tok, frog), "\xC4\xA0" "frog"));
    char *txt = ids_token_to_text(tok, frog);
    CHECK(txt && !strcmp(txt, " frog"));
    free(txt);
    ids_tokenizer_free(tok);
}

TEST(tok_special_and_detokenize) {
    ids_tokenizer *tok = load_tok("vocab/ggml-vocab-qwen2.gguf");
    REQUIRE(tok);
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t *ids;
    size_t n;
    ids_err err;
    ids_tokenize_opts o = {.add_bos = false, .parse_special = true};
    CHECK_OK_ERR(ids_tokenize(tok, s, strlen(s), o, &ids, &n, &err), err);
    int32_t im_start = ids_tokenizer_find(tok, "<|im_start|>");
    int32_t im_end = ids_tokenizer_find(tok, "<|im_end|>");
    CHECK(n >= 4 && ids[0] == im_start && ids[n - 1] == im_end);
    CHECK(ids_tokenizer_is_eog(tok, im_end));
    char *back;
    CHECK_OK_ERR(ids_detokenize(tok, ids, n, true, false, &back, &err), err);
    CHECK(!strcmp(back, s));
    free(back);
    CHECK_OK_ERR(ids_detokenize(tok, ids, n, false, false, &back, &err), err);
    CHECK(!strcmp(back, "user\nhi"));
    free(back);
    free(ids);
    /* without parse_special the control text is ordinary text */
    o.parse_special = false;
    CHECK_OK_ERR(ids_tokenize(tok, s, strlen(s), o, &ids, &n, &err), err);
    CHECK(ids[0] != im_start);
    free(ids);
    int32_t bad = 1 << 30;
    CHECK_EQ_INT(ids_detokenize(tok, &bad, 1, false, false, &back, &err), IDS_ERR_RANGE);
    ids_tokenizer_free(tok);

    tok = load_tok("vocab/ggml-vocab-llama-spm.gguf");
    REQUIRE(tok);
    const char *t2 = "Hello world \xF0\x9F\xA6\x99"; /* llama emoji needs byte fallback */
    o.parse_special = false;
    o.add_bos = true;
    CHECK_OK_ERR(ids_tokenize(tok, t2, strlen(t2), o, &ids, &n, &err), err);
    CHECK_EQ_INT(ids[0], 1);
    CHECK_OK_ERR(ids_detokenize(tok, ids, n, false, true, &back, &err), err);
    CHECK(!strcmp(back, t2));
    free(back);
    free(ids);
    ids_tokenizer_free(tok);
}

TEST(tok_rejects_non_tokenizer_file) {
    ids_gguf *g;
    ids_err err;
    REQUIRE_OK(ids_gguf_open(&g, t_shared("golden/quants/quants.gguf"), &err), err);
    ids_tokenizer *tok = NULL;
    CHECK_EQ_INT(ids_tokenizer_load(&tok, g, &err), IDS_ERR_NOT_FOUND);
    CHECK(tok == NULL);
    CHECK(strstr(err.msg, "tokenizer.ggml.model") != NULL);
    ids_gguf_close(g);
}

/* A tiny byte-level BPE vocabulary (model gpt2, pre-tokenizer qwen2) written to a GGUF. */
static const char *tiny_bpe_gguf(void) {
    static const char *const toks[] = {"a", "b", "c", "ab", "abc", "\xC4\xA0", "\xC4\xA0" "abc", "<|endoftext|>"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 3};
    static const char *const merges[] = {"a b", "ab c", "\xC4\xA0 abc"};
    ids_err err;
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_status st = w ? IDS_OK : IDS_ERR_NOMEM;
    if (!st) st = ids_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", &err);
    if (!st) st = ids_gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2", &err);
    if (!st) st = ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 8, &err);
    if (!st) st = ids_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IDS_GGUF_INT32, types, 8, &err);
    if (!st) st = ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 3, &err);
    if (!st) st = ids_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 7, &err);
    const char *path = t_tmp("tiny-bpe.gguf");
    if (!st) st = ids_gguf_writer_write(w, path, &err);
    ids_gguf_writer_free(w);
    return st ? NULL : path;
}

/* Load a tokenizer from an open GGUF, tokenize and detokenize a text with specials, free. */
static ids_status tok_round_trip(void *g, ids_err *err) {
    ids_tokenizer *t;
    ids_status st = ids_tokenizer_load(&t, g, err);
    if (st) return st;
    const char *text = "abc ab<|endoftext|> cab";
    int32_t *ids = NULL;
    size_t n;
    char *back = NULL;
    ids_tokenize_opts o = {.add_bos = true, .parse_special = true};
    st = ids_tokenize(t, text, strlen(text), o, &ids, &n, err);
    if (!st) st = ids_detokenize(t, ids, n, false, false, &back, err);
    free(ids);
    free(back);
    ids_tokenizer_free(t);
    return st;
}

/* Tokenizer loading and use with each allocation failing in turn: SPM (the golden LLaVA's 32000
 * tokens) and byte-level BPE with merges. */
TEST(tok_allocation_failures) {
    const char *paths[2] = {t_shared("golden/llava-tiny/text.gguf"), tiny_bpe_gguf()};
    REQUIRE(paths[1]);
    for (int k = 0; k < 2; k++) {
        ids_gguf *g;
        ids_err err;
        REQUIRE_OK(ids_gguf_open(&g, paths[k], &err), err);
        long n = CHECK_ALLOC_FAILURES(tok_round_trip, g, 500);
        CHECKF(n > 3, "%s: %ld allocations", paths[k], n);
        ids_gguf_close(g);
    }
}
