/* The ID-strength score on two result files read back: the input up to its first NUL byte is the
 * stats file (ids stats), the rest the steering file (steer belief); without a NUL the input is
 * both. The score is written in the scratch folder. */
#include "fuzz.h"

static char g_stats[512], g_steer[512], g_out[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("ids/stats.json", g_stats, sizeof g_stats);
    fz_path("steer/steer-belief.json", g_steer, sizeof g_steer);
    fz_path("score.json", g_out, sizeof g_out);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        fz_write(g_stats, data, (size_t)(nul - data));
        fz_write(g_steer, nul + 1, size - (size_t)(nul - data) - 1);
    } else {
        fz_write(g_stats, data, size);
        fz_write(g_steer, data, size);
    }
    int best = -1;
    double score = 0;
    ids_err err;
    (void)ids_score(g_stats, g_steer, g_out, &best, &score, &err); /* any layer number the files hold */
    return 0;
}
