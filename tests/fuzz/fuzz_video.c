/* Video files (any container FFmpeg's libraries probe): the input written to a scratch file and
 * read as 3 frames sampled over the video (1 frame when it has fewer). */
#include "fuzz.h"

#define MAX_VIDEO_BYTES (256 << 10)

static char g_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    fz_path("in.video", g_path, sizeof g_path);
    return 0;
}

static ids_status load(int n, int *total) {
    ids_image *fr = NULL;
    ids_err err;
    *total = -1;
    ids_status st = ids_video_load(g_path, n, &fr, total, &err);
    if (st) {
        if (fr) abort();
        return st;
    }
    if (*total < n) abort();
    for (int i = 0; i < n; i++) {
        if (!fr[i].rgb || fr[i].w != fr[0].w || fr[i].h != fr[0].h) abort();
        fz_touch(fr[i].rgb, (size_t)fr[i].w * fr[i].h * 3);
    }
    ids_video_free(fr, n);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_VIDEO_BYTES) return 0;
    fz_write(g_path, data, size);
    int total;
    if (load(3, &total) != IDS_OK && total >= 1 && total < 3) load(1, &total);
    return 0;
}
