/* idscope layer "base": status codes, errors, logging, progress callbacks, allocation-failure injection.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_BASE_H
#define IDSCOPE_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDS_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Status and errors                                                                           */

typedef enum ids_status {
    IDS_OK = 0,
    IDS_ERR_IO,          /* cannot open / read / write / map a file */
    IDS_ERR_FORMAT,      /* malformed or truncated input (file contents) */
    IDS_ERR_NOT_FOUND,   /* key, tensor, token or word not present */
    IDS_ERR_TYPE,        /* value present but of another type than asked */
    IDS_ERR_RANGE,       /* value out of the allowed range */
    IDS_ERR_UNSUPPORTED, /* valid input that this build cannot handle (e.g. an IQ quant type) */
    IDS_ERR_ARG,         /* invalid argument from the caller */
    IDS_ERR_NOMEM,       /* allocation failed */
    IDS_STATUS_COUNT
} ids_status;

#define IDS_ERR_MSG_MAX 512

typedef struct ids_err {
    ids_status code;
    char msg[IDS_ERR_MSG_MAX];
} ids_err;

const char *ids_status_name(ids_status s);

/* Log callback: level 0 = error, 1 = warning, 2 = info, 3 = debug. Default: warnings and errors
 * to stderr. Passing NULL restores the default. */
typedef void (*ids_log_fn)(int level, const char *msg, void *user);
void ids_set_log(ids_log_fn fn, void *user);

/* Progress of long work: called with items done and the total (the CLI prints it on stderr). */
typedef void (*ids_progress_fn)(const char *what, long done, long total, void *user);

/* Allocation-failure injection for tests: after `n` more successful allocations through the
 * library's allocator, every further one fails (n < 0 disables). */
void ids_debug_fail_alloc_after(long n);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_BASE_H */
