/* GGUF views without a file: a writer's contents opened as a reader (the HF folder loader builds
 * its GGUF pair this way and `convert` writes the same writer to disk). Private to the library. */
#ifndef IDSCOPE_FORMATS_GGUF_VIEW_H
#define IDSCOPE_FORMATS_GGUF_VIEW_H

#include "idscope/formats.h"

/* A tensor whose bytes are referenced, not copied: they must outlive the writer and any view of it
 * (ids__gguf_attach hands their owner to the view). */
ids_status ids__gguf_writer_add_tensor_ref(ids_gguf_writer *w, const char *name, int type, int n_dims,
                                           const int64_t *ne, const void *data, ids_err *err);
/* The writer's metadata and tensors as a read-only GGUF handle named `name` (used in messages and
 * as ids_gguf_path). Takes the writer in every case: the handle frees it on close. The header
 * goes through the same parser as a file. */
ids_status ids__gguf_from_writer(ids_gguf_writer *w, const char *name, ids_gguf **out, ids_err *err);
/* Give the handle an object to release when it is closed (after the writer), e.g. the mapped
 * safetensors files its tensors point into. On failure the object is released at once. */
ids_status ids__gguf_attach(ids_gguf *g, void *obj, void (*release)(void *), ids_err *err);

#endif
