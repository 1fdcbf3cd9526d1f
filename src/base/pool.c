/* Thread pool: workers sleep on a condition variable between jobs and pull task indices from a
 * shared counter. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/base.h"
#include "base/pool.h"
#include "base/internal.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    struct ids_pool *p;
    int tid;
} worker_arg;

struct ids_pool {
    int n_threads;
    pthread_t *threads;
    worker_arg *args;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;
    bool quit;
    /* current job */
    ids_task_fn fn;
    void *arg;
    int n_tasks;
    atomic_int next;
    int busy; /* workers still inside the current job */
};

static void run_tasks(ids_pool *p, int tid) {
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_tasks) break;
        p->fn(p->arg, i, p->n_tasks, tid);
    }
}


static void *worker(void *vp) {
    worker_arg *wa = vp;
    ids_pool *p = wa->p;
    const int tid = wa->tid;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, tid);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ids_pool *ids__pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ids_pool *p = ids__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = ids__calloc((size_t)n_threads - 1, sizeof(pthread_t));
        p->args = ids__calloc((size_t)n_threads - 1, sizeof(worker_arg));
        if (!p->threads || !p->args) {
            p->n_threads = 1;
            ids__pool_free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i] = (worker_arg){p, i + 1};
            if (pthread_create(&p->threads[i], NULL, worker, &p->args[i]) != 0) {
                p->n_threads = i + 1; /* run with what started */
                break;
            }
        }
    }
    return p;
}

void ids__pool_free(ids_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->threads && i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->args);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p);
}

int ids__pool_size(const ids_pool *p) { return p->n_threads; }

void ids__pool_run(ids_pool *p, int n, ids_task_fn fn, void *arg) {
    if (n <= 0) return;
    if (p->n_threads == 1 || n == 1) {
        for (int i = 0; i < n; i++) fn(arg, i, n, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
