/* llama.cpp's tokenization of test strings, for the tokenizer fixtures (built and run by
 * tests/fixtures/gemma4-vocab/make.sh against a llama.cpp build; not part of idscope's build):
 *   llamacpp_tokenize VOCAB.gguf IN OUT [special]
 * IN holds the strings separated by "\n__ggml_vocab_test__\n" (the .inp format of llama.cpp's
 * vocabulary tests); OUT gets one line of space-separated token ids per string. Without "special"
 * no BOS is added and special-token texts are ordinary text; with it the model's BOS is added and
 * special tokens are parsed. */
#include "llama.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s VOCAB.gguf IN OUT [special]\n", argv[0]);
        return 2;
    }
    const bool special = argc > 4 && !strcmp(argv[4], "special");
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    if (!m) return 1;
    const struct llama_vocab *v = llama_model_get_vocab(m);
    size_t len;
    char *in = read_all(argv[2], &len);
    FILE *out = fopen(argv[3], "w");
    if (!in || !out) return 1;
    const char *sep = "\n__ggml_vocab_test__\n";
    int cap = 1 << 16;
    llama_token *tok = malloc(sizeof *tok * (size_t)cap);
    for (char *p = in; *p;) {
        char *e = strstr(p, sep);
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int k = llama_tokenize(v, p, (int32_t)n, tok, cap, special, special);
        if (k < 0) return 1;
        for (int i = 0; i < k; i++) fprintf(out, i ? " %d" : "%d", tok[i]);
        fputc('\n', out);
        if (!e) break;
        p = e + strlen(sep);
    }
    fclose(out);
    free(tok);
    free(in);
    llama_model_free(m);
    return 0;
}
