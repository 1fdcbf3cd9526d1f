/* A fixed pool of worker threads running "task i of n" jobs; the caller thread takes part. */
#ifndef IDS_POOL_H
#define IDS_POOL_H

#include <stdbool.h>

typedef struct ids_pool ids_pool;
/* tid: 0 for the calling thread, 1..n_threads-1 for the workers (for per-thread scratch). */
typedef void (*ids_task_fn)(void *arg, int task, int n_tasks, int tid);

/* n_threads total (including the caller); 1 means run everything on the caller. */
ids_pool *ids__pool_new(int n_threads);
void ids__pool_free(ids_pool *p);
int ids__pool_size(const ids_pool *p);
/* Run fn(arg, i, n) for i in [0, n); returns when all are done. */
void ids__pool_run(ids_pool *p, int n, ids_task_fn fn, void *arg);

#endif
