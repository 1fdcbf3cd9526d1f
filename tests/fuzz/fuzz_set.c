/* Image sets for the experiments' --set: the input as a stimulus manifest read back (ids_set_load),
 * or (first byte odd) as a COCO instances file attached to the COCO-Spatial fixture's rows. */
#include "fuzz.h"

#include <math.h>

static char g_in[512], g_out[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("manifest.json", g_in, sizeof g_in);
    fz_path("coco/manifest.json", g_out, sizeof g_out);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    fz_write(g_in, data + 1, size - 1);
    ids_err err;
    if (data[0] & 1) {
        int ok = -1, skipped = -1, boxes = -1;
        if (ids_coco_spatial_import("tests/fixtures/coco/coco_qa_two_obj.json", "images", g_in, g_out, &ok, &skipped, &boxes,
                                    &err) == IDS_OK &&
            (ok < 0 || skipped < 0 || boxes < 0 || boxes > 2 * ok))
            abort();
        return 0;
    }
    ids_set *s = NULL;
    if (ids_set_load(g_in, &s, &err) != IDS_OK) return 0;
    for (int i = 0; i < s->n; i++) {
        const ids_set_item *it = &s->items[i];
        if (it->n_obj < 2 || it->n_obj > 3 || !it->file) abort();
        for (int k = 0; k < it->n_obj; k++)
            if (it->obj[k].has_box && (!isfinite(it->obj[k].cx) || !(it->obj[k].box[2] >= it->obj[k].box[0]))) abort();
    }
    ids_set_free(s);
    return 0;
}
