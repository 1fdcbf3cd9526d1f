/* MVBench scene-transition questions (the task file or the derived manifest): the input written to
 * a scratch file and loaded; every question read back. */
#include "fuzz.h"

static char g_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("mvbench.json", g_path, sizeof g_path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(g_path, data, size);
    ids_tvq *q = NULL;
    int n = -1, skipped = -1;
    ids_err err;
    for (int k = 0; k < 2; k++) { /* with and without a video folder */
        if (ids_mvbench_load(g_path, k ? NULL : "videos", &q, &n, &skipped, &err) != IDS_OK) {
            if (q) abort();
            return 0;
        }
        if (n < 0 || skipped < 0) abort();
        for (int i = 0; i < n; i++) {
            const ids_tvq *r = &q[i];
            if (!r->word_first[0] || !r->word_second[0] || !strcmp(r->word_first, r->word_second)) abort();
            fz_touch(r, sizeof *r);
            if (strnlen(r->video, sizeof r->video) == sizeof r->video ||
                strnlen(r->question, sizeof r->question) == sizeof r->question)
                abort(); /* every string NUL-terminated */
        }
        free(q);
        q = NULL;
    }
    return 0;
}
