/* Private trainer entry points used by the tests. */
#ifndef IDS_TRAIN_H
#define IDS_TRAIN_H

#include "train/tasks.h"

/* Load the weights exported in dir (text.gguf + mmproj.gguf) into a trainer model of config c and
 * return the trainer's forward logits (n_vocab floats) at the first answer position of sample s. */
ids_status ids__train_logits(const ids_train_config *c, const char *dir, const tk_sample *s, float *logits,
                             int *n_vocab, ids_err *err);

ids_status ids__train_gradcheck(const ids_train_config *c, ids_task task, int n_probe, int *n_bad, double *worst,
                                ids_err *err);

/* The gradient of one batch against the sum of the gradients of its two shards (see train.c). */
ids_status ids__train_shardcheck(const ids_train_config *c, ids_task task, double *rel_diff, ids_err *err);

#endif
