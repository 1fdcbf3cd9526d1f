/* Dequantization throughput per weight format, as a ratio to memcpy of the same F32 output
 * measured in the same run (these machines are noisy: compare ratios, not seconds). */
#define _POSIX_C_SOURCE 200809L
#include "idscope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../shared/golden/quants/quants.gguf";
    ids_gguf *g;
    ids_err err;
    if (ids_gguf_open(&g, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const int64_t N = 1 << 22; /* 4M values per measurement, tiled from the golden tensor */
    float *out = malloc(sizeof(float) * (size_t)N), *src = malloc(sizeof(float) * (size_t)N);
    if (!out || !src) {
        fprintf(stderr, "out of memory\n");
        free(out);
        free(src);
        ids_gguf_close(g);
        return 1;
    }
    memset(src, 1, sizeof(float) * (size_t)N);
    int reps = 5;
    double best_copy = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        memcpy(out, src, sizeof(float) * (size_t)N);
        double t = now() - t0;
        if (t < best_copy) best_copy = t;
    }
    printf("%-6s %10s %12s %10s\n", "type", "bits/w", "Mvalues/s", "vs memcpy");
    const char *names[] = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const ids_tensor *t = ids_gguf_find_tensor(g, names[k]);
        if (!t) continue;
        int64_t n = ids_tensor_nelements(t);
        /* tile the tensor's bytes into a large source buffer */
        int64_t tiles = N / n;
        size_t bytes = (size_t)t->nbytes * (size_t)tiles;
        unsigned char *q = malloc(bytes);
        if (!q) {
            fprintf(stderr, "%s: out of memory\n", names[k]);
            continue;
        }
        for (int64_t i = 0; i < tiles; i++) memcpy(q + (size_t)i * t->nbytes, t->data, t->nbytes);
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            ids_dequantize(t->type, q, out, n * tiles, &err);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        double vals = (double)(n * tiles);
        printf("%-6s %10.2f %12.1f %9.2fx\n", names[k], 8.0 * (double)t->nbytes / (double)n,
               vals / best / 1e6, (best_copy * vals / (double)N) / best);
        free(q);
    }
    printf("memcpy of F32 output: %.1f Mvalues/s\n", (double)N / best_copy / 1e6);
    free(out);
    free(src);
    ids_gguf_close(g);
    return 0;
}
