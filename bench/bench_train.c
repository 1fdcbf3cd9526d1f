/* Trainer throughput: the default model's size, 40 steps of describe + left/right at batch 32, as
 * one batch (shards 1, OpenBLAS threads) and as 2 shards run side by side (single-threaded
 * OpenBLAS each), measured in the same run; prints seconds, tokens/s and the ratio. */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const int steps = argc > 1 ? atoi(argv[1]) : 40;
    char dir[] = "/tmp/idscope-bench-train-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    double t[3] = {0};
    const int shards[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        ids_train_config c;
        ids_train_default_config(&c);
        c.stages[0].steps = steps > 0 ? steps : 40;
        for (int i = 0; i < IDS_TASK_COUNT; i++) c.stages[0].weights[i] = 0;
        c.stages[0].weights[IDS_TASK_DESCRIBE] = 1;
        c.stages[0].weights[IDS_TASK_LEFT_RIGHT] = 1;
        c.eval_every = 0;
        c.shards = shards[k];
        c.aux_weight = 2;
        c.aux_layer = 3;
        ids_err err;
        const double t0 = now();
        if (ids_train(&c, dir, NULL, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        t[k] = now() - t0;
        printf("shards %d: %d steps in %.2f s (%.3f s/step)\n", shards[k], c.stages[0].steps, t[k], t[k] / c.stages[0].steps);
    }
    printf("speed-up over one batch: 2 shards %.2fx, 4 shards %.2fx (%ld cores)\n", t[0] / t[1], t[0] / t[2],
           sysconf(_SC_NPROCESSORS_ONLN));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
