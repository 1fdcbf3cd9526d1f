/* Inside the flat API (src/engine/ffi.c, src/train/ffi_exp.c): one message per thread for ids_ffi_error. */
#ifndef IDSCOPE_ENGINE_FFI_H
#define IDSCOPE_ENGINE_FFI_H

#include "idscope/engine.h"

/* Keep err's message (or the status's name) as this thread's last failure; returns st. */
ids_status ids__ffi_keep(ids_status st, const ids_err *err);

#endif
