/* idscope — find, test and steer the spatial and temporal IDs inside vision-language models.
 *
 * The umbrella header: the public API of every layer, one header per layer under include/idscope/
 * (base < formats < text < engine < stimuli < exp < train; docs/ARCHITECTURE.md). Every name starts
 * with `ids_` (types, functions) or `IDS_` (constants).
 *
 * Worked example: open a GGUF file, read its architecture, dequantize a tensor, tokenize a word.
 *
 *     ids_err err;
 *     ids_gguf *g = NULL;
 *     if (ids_gguf_open(&g, "model.gguf", &err) != IDS_OK) {
 *         fprintf(stderr, "%s\n", err.msg);       // names the file, field and offset at fault
 *         return 1;
 *     }
 *     const char *arch = NULL;
 *     ids_gguf_get_str(g, "general.architecture", &arch, NULL);
 *     const ids_tensor *t = ids_gguf_find_tensor(g, "token_embd.weight");
 *     float *row = malloc(sizeof(float) * t->ne[0]);
 *     ids_dequantize(t->type, t->data, row, t->ne[0], &err);   // first row of the tensor
 *
 *     ids_tokenizer *tok = NULL;
 *     ids_tokenizer_load(&tok, g, &err);
 *     int32_t id = ids_tokenizer_word_token(tok, "frog", &err); // last piece of tokenize(" frog")
 *     ids_tokenizer_free(tok);
 *     ids_gguf_close(g);
 *
 * Conventions
 *  - Errors: functions return an ids_status (IDS_OK == 0). When a non-NULL ids_err* is passed, it
 *    receives the code and a message naming the file / key / tensor / offset and "expected X, got Y".
 *    The library never exits and never prints to stdout; diagnostics go through ids_set_log().
 *  - Ownership: every `*_open` / `*_new` / `*_load` has a matching `*_close` / `*_free`; pointers
 *    returned by getters are owned by the object they were read from and live as long as it does.
 *  - Tensor shapes follow GGUF/ggml: ne[0] is the contiguous (fastest-varying) dimension. A matrix
 *    stored as ne = [in, out] is, in row-major terms, [out][in].
 */
#ifndef IDSCOPE_H
#define IDSCOPE_H

#include "idscope/base.h"
#include "idscope/formats.h"
#include "idscope/text.h"
#include "idscope/engine.h"
#include "idscope/stimuli.h"
#include "idscope/exp.h"
#include "idscope/train.h"

#endif /* IDSCOPE_H */
