/* safetensors files: the input written to a scratch file and opened; every tensor's bytes read,
 * looked up by name, and the metadata read. A file holding a "universal" tensor is also read as
 * ids extract's output by ids stats (ids_spatial_stats), whose results go to the scratch folder. */
#include "fuzz.h"

static char g_path[512], g_dir[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("ids/ids.safetensors", g_path, sizeof g_path);
    snprintf(g_dir, sizeof g_dir, "%s/ids", fz_dir());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(g_path, data, size);
    ids_st_file *f = NULL;
    ids_err err;
    if (ids_st_open(&f, g_path, &err) != IDS_OK) {
        if (f) abort();
        return 0;
    }
    int n = ids_st_count(f);
    for (int i = 0; i < n; i++) {
        const ids_st_tensor *t = ids_st_at(f, i);
        if (!t || !t->name || ids_st_find(f, t->name) == NULL) abort();
        if (t->ndim < 0 || t->ndim > 8) abort();
        fz_touch(t->data, t->nbytes);
        fz_touch(t->dtype, strnlen(t->dtype, sizeof t->dtype));
    }
    (void)ids_st_at(f, n);
    (void)ids_st_at(f, -1);
    (void)ids_st_find(f, "no.such.tensor");
    const char *m = ids_st_meta(f, "format");
    if (m) fz_touch(m, strlen(m));
    const bool ids_file = ids_st_find(f, "universal") != NULL;
    ids_st_close(f);
    if (ids_file) (void)ids_spatial_stats(g_dir, &err);
    return 0;
}
