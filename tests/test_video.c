/* Video input and output: uniform frame sampling, frame folders, MP4 round trip through FFmpeg's
 * libraries, and bad videos. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#include <sys/stat.h>

TEST(video_sample_indices) {
    int idx[8];
    ids_video_sample_indices(8, 8, idx);
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(idx[i], i);
    ids_video_sample_indices(100, 8, idx); /* numpy: linspace(0, 99, 8).astype(int) */
    const int want[8] = {0, 14, 28, 42, 56, 70, 84, 99};
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(idx[i], want[i]);
    ids_video_sample_indices(10, 4, idx); /* 0, 3, 6, 9 */
    CHECK(idx[0] == 0 && idx[1] == 3 && idx[2] == 6 && idx[3] == 9);
    ids_video_sample_indices(50, 1, idx);
    CHECK_EQ_INT(idx[0], 0);
}

/* frame k of a test video: a flat colour encoding k, with a white square at column 4k */
static void make_frame(ids_image *im, int k, int w, int h) {
    const uint8_t c[3] = {(uint8_t)(20 * k), (uint8_t)(200 - 15 * k), 90};
    ids_err err;
    ids_image_new(im, w, h, c, &err);
    for (int y = 4; y < 12; y++)
        for (int x = 4 * k; x < 4 * k + 8 && x < w; x++) memset(im->rgb + ((size_t)y * w + x) * 3, 255, 3);
}

TEST(video_folder_sampling_and_errors) {
    const char *dir = t_tmp("frames");
    mkdir(dir, 0755);
    ids_err err;
    for (int k = 0; k < 10; k++) {
        ids_image im;
        make_frame(&im, k, 48, 32);
        char p[600];
        snprintf(p, sizeof p, "%s/f%02d.png", dir, k);
        REQUIRE_OK(ids_image_write_png(&im, p, &err), err);
        ids_image_free(&im);
    }
    char junk[600];
    snprintf(junk, sizeof junk, "%s/notes.txt", dir); /* not a frame: ignored */
    FILE *f = fopen(junk, "w");
    if (f) fclose(f);
    ids_image *fr;
    int total;
    REQUIRE_OK(ids_video_load(dir, 4, &fr, &total, &err), err);
    CHECK_EQ_INT(total, 10);
    const int want[4] = {0, 3, 6, 9};
    for (int i = 0; i < 4; i++) {
        CHECK(fr[i].w == 48 && fr[i].h == 32);
        CHECK_EQ_INT(fr[i].rgb[(size_t)(20 * 48 + 40) * 3], 20 * want[i]); /* the colour of its frame */
    }
    ids_video_free(fr, 4);
    CHECK(ids_video_load(dir, 11, &fr, &total, &err) == IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "10 frame images, 11 asked") != NULL);
    CHECK(ids_video_load(t_tmp("no-such-video"), 8, &fr, &total, &err) == IDS_ERR_IO);
    CHECK(ids_video_load(dir, 0, &fr, &total, &err) == IDS_ERR_ARG);
}

TEST(video_mp4_round_trip) {
    ids_image frames[12];
    for (int k = 0; k < 12; k++) make_frame(&frames[k], k, 63, 40); /* odd width: padded to even */
    const char *path = t_tmp("clip.mp4");
    ids_err err;
    REQUIRE_OK(ids_video_write_mp4(frames, 12, 8, path, &err), err);
    ids_image *fr;
    int total;
    REQUIRE_OK(ids_video_load(path, 12, &fr, &total, &err), err);
    CHECK_EQ_INT(total, 12);
    int worst = 0;
    for (int k = 0; k < 12; k++) {
        CHECK(fr[k].w == 64 && fr[k].h == 40);
        /* flat area and the square (lossy codec: a few levels of error) */
        const uint8_t *a = fr[k].rgb + (size_t)(30 * 64 + 2) * 3, *b = frames[k].rgb + (size_t)(30 * 63 + 2) * 3;
        for (int c = 0; c < 3; c++) worst = abs(a[c] - b[c]) > worst ? abs(a[c] - b[c]) : worst;
        const uint8_t *sq = fr[k].rgb + (size_t)(8 * 64 + 4 * k + 3) * 3;
        if (4 * k + 3 < 63) CHECK(sq[0] > 200 && sq[1] > 200 && sq[2] > 200);
    }
    CHECKF(worst <= 12, "MP4 round trip: colour off by %d levels", worst);
    ids_video_free(fr, 12);
    /* 5 of 12, uniformly: frames 0, 2, 5, 8, 11 */
    REQUIRE_OK(ids_video_load(path, 5, &fr, &total, &err), err);
    const int want[5] = {0, 2, 5, 8, 11};
    for (int i = 0; i < 5; i++) CHECKF(abs(fr[i].rgb[(size_t)(30 * 64 + 2) * 3] - 20 * want[i]) <= 6, "sample %d", i);
    ids_video_free(fr, 5);
    CHECK(ids_video_load(path, 13, &fr, &total, &err) == IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "12 decodable frames, 13 asked") != NULL);
    /* truncated and garbage files */
    size_t len;
    char *bytes = t_read_file(path, &len);
    REQUIRE(bytes);
    const char *cut = t_tmp("cut.mp4"), *junk = t_tmp("junk.mp4");
    FILE *f = fopen(cut, "wb");
    fwrite(bytes, 1, len / 3, f);
    fclose(f);
    f = fopen(junk, "wb");
    for (size_t i = 0; i < 4000; i++) fputc((int)(i * 7919 % 251), f);
    fclose(f);
    ids_status st = ids_video_load(cut, 12, &fr, &total, &err);
    CHECK(st != IDS_OK);
    if (st == IDS_OK) ids_video_free(fr, 12);
    CHECK(ids_video_load(junk, 8, &fr, &total, &err) == IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "junk.mp4") != NULL);
    free(bytes);
    for (int k = 0; k < 12; k++) ids_image_free(&frames[k]);
    /* frames of different sizes are refused */
    ids_image two[2];
    make_frame(&two[0], 0, 32, 32);
    make_frame(&two[1], 1, 30, 32);
    CHECK(ids_video_write_mp4(two, 2, 8, t_tmp("bad.mp4"), &err) == IDS_ERR_ARG);
    ids_image_free(&two[0]);
    ids_image_free(&two[1]);
}

typedef struct {
    const ids_image *frames;
    const char *mp4, *dir;
} video_case;

/* Write an MP4 of odd-sized frames, then read 4 frames from it and 3 from a folder of frames. */
static ids_status video_round_trip(void *ctx, ids_err *err) {
    const video_case *c = ctx;
    ids_image *a = NULL, *b = NULL;
    int total;
    ids_status st = ids_video_write_mp4(c->frames, 6, 8, c->mp4, err);
    if (!st) st = ids_video_load(c->mp4, 4, &a, &total, err);
    if (!st) st = ids_video_load(c->dir, 3, &b, &total, err);
    ids_video_free(a, 4);
    ids_video_free(b, 3);
    return st;
}

/* MP4 writing and video reading (file and folder) with each allocation failing in turn. */
TEST(video_allocation_failures) {
    const char *dir = t_tmp("alloc-frames");
    mkdir(dir, 0755);
    ids_image frames[6];
    ids_err err;
    for (int k = 0; k < 6; k++) {
        make_frame(&frames[k], k, 47, 33);
        char p[600];
        snprintf(p, sizeof p, "%s/f%02d.png", dir, k);
        REQUIRE_OK(ids_image_write_png(&frames[k], p, &err), err);
    }
    video_case c = {frames, t_tmp("alloc.mp4"), dir};
    CHECK(CHECK_ALLOC_FAILURES(video_round_trip, &c, 200) > 5);
    for (int k = 0; k < 6; k++) ids_image_free(&frames[k]);
}

/* Playlists and concatenation lists that name other files are refused: only video containers and
 * local files are read. (The MP4 written here still opens.) */
TEST(video_container_whitelist) {
    ids_image frames[2];
    for (int k = 0; k < 2; k++) make_frame(&frames[k], k, 32, 32);
    const char *mp4 = t_tmp("wl.mp4");
    ids_err err;
    REQUIRE_OK(ids_video_write_mp4(frames, 2, 8, mp4, &err), err);
    const char *cat = t_tmp("list.ffconcat"), *m3u = t_tmp("list.m3u8");
    FILE *f = fopen(cat, "w");
    REQUIRE(f);
    fprintf(f, "ffconcat version 1.0\nfile '%s'\nfile '%s'\n", mp4, mp4);
    fclose(f);
    f = fopen(m3u, "w");
    REQUIRE(f);
    fprintf(f, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n%s\n#EXT-X-ENDLIST\n", mp4);
    fclose(f);
    ids_image *fr;
    int total;
    CHECK_EQ_INT(ids_video_load(cat, 2, &fr, &total, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "list.ffconcat: cannot open as a video") && strstr(err.msg, "containers read"));
    CHECK_EQ_INT(ids_video_load(m3u, 2, &fr, &total, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "list.m3u8: cannot open as a video") != NULL);
    CHECK_OK_ERR(ids_video_load(mp4, 2, &fr, &total, &err), err);
    if (fr) ids_video_free(fr, 2);
    for (int k = 0; k < 2; k++) ids_image_free(&frames[k]);
}
