/* Images (whatever stb_image reads: PNG, JPEG, BMP, GIF, PPM/PGM, TGA, PSD, HDR, PIC): the input
 * written to a scratch file and loaded as RGB; a small result is also resized and padded. */
#include "fuzz.h"

static char g_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("in.img", g_path, sizeof g_path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_write(g_path, data, size);
    ids_image img;
    ids_err err;
    if (ids_image_load(&img, g_path, &err) != IDS_OK) {
        if (img.rgb) abort();
        return 0;
    }
    if (img.w <= 0 || img.h <= 0) abort();
    fz_touch(img.rgb, (size_t)img.w * img.h * 3);
    if ((int64_t)img.w * img.h <= 256 * 256 && img.w <= 1024 && img.h <= 1024) { /* the square stays small */
        ids_image r, p;
        if (ids_image_resize_bicubic(&img, 7, 5, &r, &err) == IDS_OK) ids_image_free(&r);
        if (ids_image_resize_bicubic(&img, img.w * 2, img.h + 3, &r, &err) == IDS_OK) ids_image_free(&r);
        static const uint8_t grey[3] = {127, 127, 127};
        if (ids_image_pad_square(&img, grey, &p, &err) == IDS_OK) ids_image_free(&p);
    }
    ids_image_free(&img);
    return 0;
}
