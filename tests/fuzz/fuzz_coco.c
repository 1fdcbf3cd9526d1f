/* COCO-Spatial (What'sUp coco_qa_two_obj.json): the input written to a scratch file and converted
 * into a stimulus manifest (written in the scratch folder too). */
#include "fuzz.h"

static char g_in[512], g_out[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("coco_qa_two_obj.json", g_in, sizeof g_in);
    fz_path("coco/manifest.json", g_out, sizeof g_out);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(g_in, data, size);
    int ok = -1, skipped = -1;
    ids_err err;
    if (ids_coco_spatial_convert(g_in, "images", g_out, &ok, &skipped, &err) == IDS_OK && (ok < 0 || skipped < 0)) abort();
    return 0;
}
