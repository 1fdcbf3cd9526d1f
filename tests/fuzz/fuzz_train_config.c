/* Training configs (JSON): the input written to a scratch file and loaded over the defaults; the
 * config is then asked which shape pairs it holds out. */
#include "fuzz.h"

static char g_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("train.json", g_path, sizeof g_path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(g_path, data, size);
    ids_train_config c;
    ids_err err;
    if (ids_train_config_load(g_path, &c, &err) != IDS_OK) return 0;
    if (c.n_stages < 0 || c.n_stages > IDS_MAX_STAGES) abort();
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) (void)ids_train_heldout(&c, a, b);
    return 0;
}
