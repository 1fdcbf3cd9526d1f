/* .npy files: the input written to a scratch file and read; the array's bytes read back. */
#include "fuzz.h"

static char g_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("in.npy", g_path, sizeof g_path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(g_path, data, size);
    ids_npy a;
    ids_err err;
    if (ids_npy_read(g_path, &a, &err) == IDS_OK) {
        if (a.ndim < 0 || a.ndim > 8) abort();
        fz_touch(a.data, a.nbytes);
        ids_npy_free(&a);
    }
    return 0;
}
