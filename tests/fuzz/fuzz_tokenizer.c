/* The tokenizers on arbitrary text: the vocabularies of $IDSCOPE_SHARED/vocab (default ../shared)
 * are loaded once; every input (at most 4 KiB) is tokenized with and without special tokens and
 * BOS, decoded back, and its ids named one by one; the input is also read as token ids. */
#include "fuzz.h"

#include <glob.h>

#define MAX_TEXT 4096
#define MAX_VOCABS 8

static ids_tokenizer *g_tok[MAX_VOCABS];
static int g_n_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    const char *shared = getenv("IDSCOPE_SHARED");
    char pat[1024];
    snprintf(pat, sizeof pat, "%s/vocab/*.gguf", shared && *shared ? shared : "../shared");
    glob_t gl;
    if (glob(pat, 0, NULL, &gl) != 0) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary matches %s (set IDSCOPE_SHARED)\n", pat);
        exit(1);
    }
    for (size_t i = 0; i < gl.gl_pathc && g_n_tok < MAX_VOCABS; i++) {
        ids_gguf *g = NULL;
        ids_err err;
        if (ids_gguf_open(&g, gl.gl_pathv[i], &err) != IDS_OK ||
            ids_tokenizer_load(&g_tok[g_n_tok], g, &err) != IDS_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            exit(1);
        }
        ids_gguf_close(g); /* the tokenizer keeps what it needs */
        g_n_tok++;
    }
    globfree(&gl);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_TEXT) return 0;
    const char *text = (const char *)data;
    for (int v = 0; v < g_n_tok; v++) {
        const ids_tokenizer *tok = g_tok[v];
        ids_err err;
        for (int k = 0; k < 2; k++) {
            ids_tokenize_opts o = {.add_bos = k == 0, .parse_special = k == 0};
            int32_t *ids = NULL;
            size_t n = 0;
            if (ids_tokenize(tok, text, size, o, &ids, &n, &err) != IDS_OK) abort(); /* any text tokenizes */
            char *back = NULL;
            if (ids_detokenize(tok, ids, n, k == 0, k == 1, &back, &err) != IDS_OK) abort();
            free(back);
            for (size_t i = 0; i < n && i < 16; i++) {
                if (ids[i] < 0 || ids[i] >= ids_tokenizer_n_vocab(tok)) abort();
                free(ids_token_to_text(tok, ids[i]));
                (void)ids_tokenizer_is_eog(tok, ids[i]);
            }
            free(ids);
        }
        /* the input as a word (up to its first NUL) and as raw token ids */
        char word[64];
        size_t wl = size < sizeof word - 1 ? size : sizeof word - 1;
        memcpy(word, text, wl);
        word[wl] = 0;
        (void)ids_tokenizer_word_token(tok, word, &err);
        (void)ids_tokenizer_find(tok, word);
        int32_t raw[64];
        size_t nr = size / 4 < 64 ? size / 4 : 64;
        memcpy(raw, data, nr * 4);
        for (size_t i = 0; i < nr; i++) raw[i] = (int32_t)((uint32_t)raw[i] % (uint32_t)(ids_tokenizer_n_vocab(tok) + 1));
        char *s = NULL;
        if (ids_detokenize(tok, raw, nr, true, true, &s, &err) == IDS_OK) free(s);
    }
    return 0;
}
