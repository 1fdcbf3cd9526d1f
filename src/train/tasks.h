/* Training / evaluation samples for the bundled model's tasks, and its word-level vocabulary. */
#ifndef IDS_TASKS_H
#define IDS_TASKS_H

#include "base/internal.h"
#include "base/rng.h"

#define TK_MAX_IMAGES 16

typedef struct {
    ids_task task;
    int n_images;
    ids_image images[TK_MAX_IMAGES]; /* owned */
    char prompt[768];                /* vicuna template with <image> markers */
    char answer[96];                 /* answer words ("left", "in front", "circle c1 r2 square c3 r0") */
    char wrong[96];                  /* the other answer of a binary task ("" for describe) */
    bool heldout;                    /* its shape pair is held out of training */
    /* Where the objects named in the question are (targets of the trainer's auxiliary location
     * loss at those words): up to two shape words, their values x, y (image centre, -1..1 from
     * left / top), depth (-1 near .. 1 far) and appearance frame (-1 first .. 1 last); aux_mask
     * says which of the four are defined for this sample. */
    int n_aux;
    char aux_word[2][32];
    float aux_val[2][4];
    bool aux_mask[4];
} tk_sample;

/* heldout_mode: 0 = trained pairs only, 1 = held-out pairs only, -1 = any. */
ids_status tk_make(const ids_train_config *c, const ids_catalog *cat, ids_task task, uint64_t *rng,
                   int heldout_mode, tk_sample *out, ids_err *err);
void tk_free(tk_sample *s);
/* Write the word-level SPM vocabulary (tokenizer.ggml.*) into a GGUF writer. */
ids_status tk_write_vocab(ids_gguf_writer *w, ids_err *err);

#endif
