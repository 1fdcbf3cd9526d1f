/* Tokenize text files with llama.cpp's tokenizer (libllama, vocabulary only), for make_onevision.py:
 *   llamacpp_tokenize MODEL.gguf FILE...   -> one line of token ids per file (no BOS, special tokens
 *                                             parsed), as llama.cpp's mtmd tokenizes a prompt's text */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf FILE...\n", argv[0]);
        return 2;
    }
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    for (int a = 2; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) return 1;
        static char text[1 << 16];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        static llama_token ids[1 << 14];
        int k = llama_tokenize(vocab, text, (int32_t)n, ids, 1 << 14, false, true);
        if (k < 0) return 1;
        for (int i = 0; i < k; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
