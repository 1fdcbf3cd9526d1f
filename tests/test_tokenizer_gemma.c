/* A real Gemma vocabulary of 262144 tokens: llama.cpp's ggml-vocab-gemma-4.gguf (tokenizer model
 * "gemma4": SentencePiece-style BPE with 514906 merges; not committed: 15 MB). Its own test strings
 * (.inp/.out beside it) and 320 more (tests/fixtures/gemma4-vocab: unicode, runs of spaces and
 * newlines, digits, special-token texts) with llama.cpp's tokens, without and with special tokens.
 * The file is looked for at $IDSCOPE_GEMMA4_VOCAB, in the shared vocab/ folder and under
 * $IDSCOPE_LLAMA_CPP/models; without it the tests are skipped. */
#include "test.h"

#include <time.h>

static const char *SEP = "\n__ggml_vocab_test__\n";

static const char *vocab_path(void) {
    static char buf[1024];
    const char *e = getenv("IDSCOPE_GEMMA4_VOCAB");
    if (e && *e) return e;
    const char *s = t_shared("vocab/ggml-vocab-gemma-4.gguf");
    FILE *f = fopen(s, "rb");
    if (f) {
        fclose(f);
        return s;
    }
    const char *l = getenv("IDSCOPE_LLAMA_CPP");
    if (!l || !*l) return NULL;
    snprintf(buf, sizeof buf, "%s/models/ggml-vocab-gemma-4.gguf", l);
    f = fopen(buf, "rb");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loaded once for both tests (the second frees it). */
static ids_tokenizer *g_tok;

static ids_tokenizer *load(const char *path, double *secs) {
    if (g_tok) return g_tok;
    ids_gguf *g;
    ids_err err;
    double t0 = now_s();
    if (ids_gguf_open(&g, path, &err)) {
        t_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    ids_tokenizer *tok = NULL;
    if (ids_tokenizer_load(&tok, g, &err)) t_fail(__FILE__, __LINE__, "%s", err.msg);
    ids_gguf_close(g);
    if (secs) *secs = now_s() - t0;
    return g_tok = tok;
}

/* Every string of inp (separated by SEP; the last one may lack it) against its line of ids in out;
 * returns the number of mismatches (the first three printed), *n the strings compared. */
static int compare(const ids_tokenizer *tok, const char *inp_path, const char *out_path, bool special, int *n) {
    char *inp = t_read_file(inp_path, NULL), *out = t_read_file(out_path, NULL);
    *n = 0;
    if (!inp || !out) {
        t_fail(__FILE__, __LINE__, "cannot read %s or %s", inp_path, out_path);
        free(inp);
        free(out);
        return 1;
    }
    int bad = 0;
    char *ip = inp, *op = out;
    for (;;) {
        char *sep = strstr(ip, SEP), *nl = strchr(op, '\n');
        if (!nl) break;
        const size_t tl = sep ? (size_t)(sep - ip) : strlen(ip);
        int32_t *want = malloc(sizeof(int32_t) * ((size_t)(nl - op) / 2 + 2));
        size_t nw = 0;
        for (char *q = op; q < nl;) {
            char *e;
            long x = strtol(q, &e, 10);
            if (e == q) break;
            want[nw++] = (int32_t)x;
            q = e;
        }
        int32_t *ids = NULL;
        size_t ng = 0;
        ids_err err;
        ids_tokenize_opts o = {.add_bos = special, .parse_special = special};
        ids_status st = ids_tokenize(tok, ip, tl, o, &ids, &ng, &err);
        if (st || ng != nw || (ng && memcmp(ids, want, ng * sizeof *ids))) {
            if (++bad <= 3) {
                fprintf(stderr, "  %s string %d '%.*s'\n    want:", inp_path, *n, (int)tl, ip);
                for (size_t k = 0; k < nw; k++) fprintf(stderr, " %d", want[k]);
                fprintf(stderr, "\n    got: ");
                for (size_t k = 0; !st && k < ng; k++) fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n");
            }
        } else if (!special) { /* the text back from the tokens, a U+2581 in it read back as a space */
            char *back = NULL, *want_text = malloc(tl + 1);
            size_t wl = 0;
            for (size_t k = 0; k < tl; k++) {
                if (k + 3 <= tl && !memcmp(ip + k, "\xE2\x96\x81", 3)) want_text[wl++] = ' ', k += 2;
                else want_text[wl++] = ip[k];
            }
            if (ids_detokenize(tok, ids, ng, false, false, &back, &err) || strlen(back) != wl || memcmp(back, want_text, wl)) {
                if (++bad <= 3) fprintf(stderr, "  string %d: detokenized text differs\n", *n);
            }
            free(back);
            free(want_text);
        }
        free(ids);
        free(want);
        (*n)++;
        op = nl + 1;
        if (!sep) break;
        ip = sep + strlen(SEP);
    }
    free(inp);
    free(out);
    return bad;
}

/* The vocabulary's facts (what idscope reads from it) and llama.cpp's own 46 test strings. */
TEST(tok_gemma4_vocab_llamacpp_tests) {
    const char *path = vocab_path();
    if (!path) {
        t_skip("ggml-vocab-gemma-4.gguf not found (IDSCOPE_GEMMA4_VOCAB, shared vocab/, $IDSCOPE_LLAMA_CPP/models)");
        return;
    }
    double secs = 0;
    ids_tokenizer *tok = load(path, &secs);
    REQUIRE(tok);
    printf("     %s: 262144 tokens and 514906 merges loaded in %.2f s\n", path, secs);
    CHECK_EQ_INT(ids_tokenizer_n_vocab(tok), 262144);
    CHECK(ids_tokenizer_kind_of(tok) == IDS_TOK_BPE && !strcmp(ids_tokenizer_pre(tok), "gemma4"));
    CHECK(ids_tokenizer_bos(tok) == 2 && ids_tokenizer_eos(tok) == 1 && ids_tokenizer_add_bos(tok));
    CHECK_EQ_INT(ids_tokenizer_find(tok, "<|turn>"), 105);
    CHECK_EQ_INT(ids_tokenizer_find(tok, "<turn|>"), 106);
    CHECK_EQ_INT(ids_tokenizer_find(tok, "<|image>"), 255999);
    CHECK_EQ_INT(ids_tokenizer_find(tok, "<start_of_turn>"), -1); /* Gemma 3's turn markers are not in it */
    CHECK(ids_tokenizer_is_eog(tok, 106) && ids_tokenizer_is_eog(tok, 1) && !ids_tokenizer_is_eog(tok, 105));
    char inp[1100], out[1100];
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(out, sizeof out, "%s.out", path);
    int n = 0;
    CHECK_EQ_INT(compare(tok, inp, out, false, &n), 0);
    CHECK_EQ_INT(n, 46);
}

/* 320 strings against llama.cpp (llama_tokenize through tests/golden/llamacpp_tokenize.c). */
TEST(tok_gemma4_vocab_llamacpp_strings) {
    const char *path = vocab_path();
    if (!path) {
        t_skip("ggml-vocab-gemma-4.gguf not found (IDSCOPE_GEMMA4_VOCAB, shared vocab/, $IDSCOPE_LLAMA_CPP/models)");
        return;
    }
    ids_tokenizer *tok = load(path, NULL);
    REQUIRE(tok);
    const char *inp = "tests/fixtures/gemma4-vocab/strings.inp";
    int n = 0;
    CHECK_EQ_INT(compare(tok, inp, "tests/fixtures/gemma4-vocab/plain.out", false, &n), 0);
    CHECK_EQ_INT(n, 320);
    CHECK_EQ_INT(compare(tok, inp, "tests/fixtures/gemma4-vocab/special.out", true, &n), 0);
    CHECK_EQ_INT(n, 320);
    double t0 = now_s();
    size_t chars = 0;
    char *all = t_read_file(inp, &chars);
    int32_t *ids = NULL;
    size_t ng = 0;
    ids_err err;
    ids_tokenize_opts o = {.parse_special = true};
    for (int r = 0; all && r < 5; r++) {
        free(ids);
        ids = NULL;
        CHECK_OK_ERR(ids_tokenize(tok, all, chars, o, &ids, &ng, &err), err);
    }
    printf("     tokenize: %zu bytes -> %zu tokens, %.2f ms per pass\n", chars, ng, (now_s() - t0) / 5 * 1e3);
    free(ids);
    free(all);
    ids_tokenizer_free(tok);
    g_tok = NULL;
}
