/* Join a golden text model from two GGUF files (built by the Makefile; see make_qwen3vl.py):
 *   gguf_join BASE.gguf BLOCKS.gguf OUT.gguf
 * OUT has every key and tensor of BLOCKS, plus the tokenizer.* keys and token_embd.weight of BASE
 * (a file with the real vocabulary), so that a golden model needs no second copy of them. */
#include "idscope.h"

#include <stdio.h>
#include <string.h>

static int fail(const ids_err *e) {
    fprintf(stderr, "gguf_join: %s\n", e->msg);
    return 1;
}

static ids_status copy_tensor(ids_gguf_writer *w, const ids_tensor *t, ids_err *err) {
    return ids_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, err);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s BASE.gguf BLOCKS.gguf OUT.gguf\n", argv[0]);
        return 2;
    }
    ids_err err = {0};
    ids_gguf *base = NULL, *blocks = NULL;
    ids_gguf_writer *w = ids_gguf_writer_new();
    ids_status st = w ? IDS_OK : IDS_ERR_NOMEM;
    if (!st) st = ids_gguf_open(&base, argv[1], &err);
    if (!st) st = ids_gguf_open(&blocks, argv[2], &err);
    for (int64_t i = 0; !st && i < ids_gguf_n_kv(blocks); i++)
        st = ids_gguf_writer_set_value(w, ids_gguf_kv_key(blocks, i), ids_gguf_kv_value(blocks, i), &err);
    for (int64_t i = 0; !st && i < ids_gguf_n_kv(base); i++)
        if (!strncmp(ids_gguf_kv_key(base, i), "tokenizer.", 10))
            st = ids_gguf_writer_set_value(w, ids_gguf_kv_key(base, i), ids_gguf_kv_value(base, i), &err);
    const ids_tensor *te = st ? NULL : ids_gguf_find_tensor(base, "token_embd.weight");
    if (!st && !te) {
        snprintf(err.msg, sizeof err.msg, "%s: tensor 'token_embd.weight' is missing", argv[1]);
        st = IDS_ERR_NOT_FOUND;
    }
    if (!st) st = copy_tensor(w, te, &err);
    for (int64_t i = 0; !st && i < ids_gguf_n_tensors(blocks); i++) st = copy_tensor(w, ids_gguf_tensor_at(blocks, i), &err);
    if (!st) st = ids_gguf_writer_write(w, argv[3], &err);
    ids_gguf_writer_free(w);
    ids_gguf_close(base);
    ids_gguf_close(blocks);
    return st ? fail(&err) : 0;
}
