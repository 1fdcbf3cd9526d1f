/* Inputs the fuzz harnesses (tests/fuzz/) found, minimized, in tests/fixtures/fuzz/: each must now
 * be handled (an error or a result), never crash, leak or hit undefined behaviour (the suite runs
 * these under ASan and UBSan too). */
#include "test.h"

#include <sys/stat.h>

#define FX "tests/fixtures/fuzz/"

/* A GGUF key or tensor name holding a NUL byte could not be looked up by the name it prints as. */
TEST(fuzz_gguf_names_with_nul_bytes_are_rejected) {
    size_t len;
    char *data = t_read_file(FX "gguf-key-with-nul.gguf", &len);
    REQUIRE(data);
    ids_gguf *g = NULL;
    ids_err err = {0};
    CHECK_EQ_INT(ids_gguf_open_memory(&g, data, len, "nul-key", &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "metadata entry 0") && strstr(err.msg, "NUL byte"), "message: %s", err.msg);
    CHECK(g == NULL);
    ids_gguf_close(g);
    free(data);
    /* the same for a tensor name: "w\0x", 1-D F32 of 1 element at offset 0 */
    static const unsigned char tn[] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        3, 0, 0, 0, 0, 0, 0, 0, 'w', 0, 'x', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(ids_gguf_open_memory(&g, tn, sizeof tn, "nul-name", &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "tensor 0") && strstr(err.msg, "NUL byte"), "message: %s", err.msg);
    ids_gguf_close(g);
}

/* Every result file of a results folder holding the same JSON (as the report harness writes them). */
static const char *results_folder_of(const char *name, const char *text) {
    const char *dir = t_tmp(name);
    static const ids_relation rels[4] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW, IDS_REL_NEAR_FAR, IDS_REL_BETWEEN};
    for (int k = IDS_RESULT_IDS; k <= IDS_RESULT_SCORE; k++)
        for (int r = 0; r < (k == IDS_RESULT_STEER_GRID ? 4 : 1); r++) {
            char *path = ids_result_path(dir, (ids_result_kind)k, rels[r], true);
            if (!path) return NULL;
            for (char *p = path + 1; *p; p++) /* the folders on the way */
                if (*p == '/') {
                    *p = 0;
                    mkdir(path, 0755);
                    *p = '/';
                }
            FILE *f = fopen(path, "w");
            free(path);
            if (!f) return NULL;
            fputs(text, f);
            fclose(f);
        }
    return dir;
}

/* Layers, grid sizes, cell coordinates and best layers past the range of int (and infinite
 * values in a heat map) were converted to int unchecked; a negative x indexed the colour table
 * below its start. Each is now read as "absent" and the page is written. */
TEST(fuzz_report_numbers_out_of_int_range) {
    char *text = t_read_file(FX "report-out-of-range.json", NULL);
    REQUIRE(text);
    const char *dir = results_folder_of("fuzz-report", text);
    free(text);
    REQUIRE(dir);
    int n = -1;
    ids_err err;
    CHECK_OK_ERR(ids_report(dir, &n, &err), err);
    CHECK(n >= 0 && n <= 7);
    /* a "layers" list where a count was expected: the section is not drawn */
    dir = results_folder_of("fuzz-report-list", "{\"layers\": [{\"layer\": 1}]}");
    REQUIRE(dir);
    CHECK_OK_ERR(ids_report(dir, &n, &err), err);
}

/* A raw MPEG-4 stream whose second header changes the frame size: the frames came back in two
 * sizes (a folder of frames of two sizes is an error; consumers expect one size). Every frame is
 * now scaled to the first one's size. */
TEST(fuzz_video_size_change_midstream) {
    ids_image *fr = NULL;
    int total = 0;
    ids_err err;
    REQUIRE_OK(ids_video_load(FX "video-size-change.m4v", 3, &fr, &total, &err), err);
    CHECK(total >= 3);
    for (int i = 0; i < 3; i++)
        CHECKF(fr[i].rgb && fr[i].w == fr[0].w && fr[i].h == fr[0].h, "frame %d: %dx%d, frame 0: %dx%d", i, fr[i].w,
               fr[i].h, fr[0].w, fr[0].h);
    ids_video_free(fr, 3);
}

/* ids stats on an IDs file whose tensors are not what ids extract writes: data misaligned (a
 * header length not a multiple of 4; the fuzzer's input), a grid that is not square (cells read
 * past the tensor), axes shorter than the layers, another dtype, a zero dimension. Each is a
 * format error naming the file, never a read outside the tensors. */
static const char *ids_file(const char *name, const char *dtype, const int64_t *su, const int64_t *sa) {
    static float data[4096];
    ids_st_writer *w = ids_st_writer_new();
    ids_err err;
    const char *dir = t_tmp(name);
    mkdir(dir, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/ids.safetensors", dir);
    bool ok = w && !ids_st_writer_add(w, "universal", dtype, 5, su, data, &err) &&
              !ids_st_writer_add(w, "x_axis", "F32", 2, sa, data, &err) && !ids_st_writer_add(w, "y_axis", "F32", 2, sa, data, &err) &&
              !ids_st_writer_write(w, path, &err);
    ids_st_writer_free(w);
    return ok ? dir : NULL;
}

TEST(fuzz_ids_stats_checks_the_tensors) {
    ids_err err;
    const char *dir = t_tmp("fuzz-ids-misaligned");
    mkdir(dir, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/ids.safetensors", dir);
    size_t len;
    char *data = t_read_file(FX "ids-misaligned.safetensors", &len);
    REQUIRE(data);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
    CHECK_EQ_INT(ids_spatial_stats(dir, &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "ids.safetensors"), "message: %s", err.msg);

    const int64_t good[5] = {2, 2, 2, 1, 3}, axes[2] = {2, 3}, short_axes[2] = {1, 3}, oblong[5] = {2, 1, 8, 1, 3},
                  zero[5] = {2, 2, 2, 0, 3};
    REQUIRE((dir = ids_file("fuzz-ids-good", "F32", good, axes)));
    CHECK_OK_ERR(ids_spatial_stats(dir, &err), err);
    REQUIRE((dir = ids_file("fuzz-ids-oblong", "F32", oblong, axes)));
    CHECK_EQ_INT(ids_spatial_stats(dir, &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "square grid"), "message: %s", err.msg);
    REQUIRE((dir = ids_file("fuzz-ids-short-axes", "F32", good, short_axes)));
    CHECK_EQ_INT(ids_spatial_stats(dir, &err), IDS_ERR_FORMAT);
    REQUIRE((dir = ids_file("fuzz-ids-i32", "I32", good, axes)));
    CHECK_EQ_INT(ids_spatial_stats(dir, &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "'universal' must be float32"), "message: %s", err.msg);
    REQUIRE((dir = ids_file("fuzz-ids-zero", "F32", zero, axes)));
    CHECK_EQ_INT(ids_spatial_stats(dir, &err), IDS_ERR_FORMAT);
}

/* The steering experiments read the same files (and temporal steer temporal.safetensors) through
 * the same checks: an IDs file of another dtype is refused before any model work. */
TEST(fuzz_steer_checks_the_ids_file) {
    ids_vlm *v;
    ids_err err;
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err), err);
    ids_catalog *cat = ids_catalog_new();
    const int64_t su[5] = {5, 2, 2, 1, 64}, sa[2] = {5, 64};
    const char *dir = ids_file("fuzz-steer-i32", "I32", su, sa);
    REQUIRE(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/ids.safetensors", dir);
    ids_steer_opts o = {.exp = {.n_items = 1, .seed = 1, .n_threads = 1}, .ids_path = path};
    ids_steer_result r;
    CHECK_EQ_INT(ids_steer_belief(v, cat, &o, &r, NULL, NULL, &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "float32"), "message: %s", err.msg);
    ids_temporal_opts to = {.exp = {.n_items = 1, .seed = 1, .n_threads = 1}, .ids_path = path};
    ids_temporal_steer_result tr;
    CHECK_EQ_INT(ids_temporal_steer(v, cat, &to, &tr, NULL, NULL, &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "no tensor 'temporal'"), "message: %s", err.msg);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

/* An 8x6 JPEG read as a one-frame video: swscale's RGB writer stored 24 bytes past the end of the
 * frame's exactly sized pixel buffer (uninstrumented code: ASan did not see it; glibc aborted on a
 * corrupted heap at a later free). The frames now come through a padded buffer; the pixels match
 * stb_image's decoding of the same file. */
TEST(fuzz_video_jpeg_frame_no_overrun) {
    ids_image ref;
    ids_err err;
    REQUIRE_OK(ids_image_load(&ref, FX "video-8x6.jpg", &err), err);
    for (int rep = 0; rep < 8; rep++) {
        ids_image *fr = NULL;
        int total = 0;
        REQUIRE_OK(ids_video_load(FX "video-8x6.jpg", 1, &fr, &total, &err), err);
        CHECK(total == 1 && fr[0].w == 8 && fr[0].h == 6);
        double diff = 0;
        for (int i = 0; i < 8 * 6 * 3; i++) diff += fabs((double)fr[0].rgb[i] - ref.rgb[i]);
        CHECKF(diff / (8 * 6 * 3) < 12, "mean difference %g from stb_image", diff / (8 * 6 * 3));
        ids_video_free(fr, 1);
    }
    ids_image_free(&ref);
}

/* A 42-byte GIF declaring a 63238x1025 screen (under the pixel budget) took 12 s of stb's decoding
 * before it was refused: a GIF may not declare more pixels than LZW can encode in its bytes. */
TEST(fuzz_gif_screen_bomb_refused_before_decoding) {
    ids_image img = {0};
    ids_err err = {0};
    CHECK_EQ_INT(ids_image_load(&img, FX "gif-screen-bomb.gif", &err), IDS_ERR_FORMAT);
    CHECKF(strstr(err.msg, "gif-screen-bomb.gif") && strstr(err.msg, "more than its compression"), "message: %s", err.msg);
    ids_image_free(&img);
}

/* A 207-byte PNG of 8 x 1048582 pixels given as a video: FFmpeg's PNG decoder spent seconds filling
 * frames (the fuzzer's 10 s limit under load); still images now go through the image reader, which
 * refuses the side from the header. */
TEST(fuzz_video_still_image_through_image_reader) {
    ids_image *fr = NULL;
    int total = 0;
    ids_err err;
    CHECK_EQ_INT(ids_video_load(FX "video-tall.png", 1, &fr, &total, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "video-tall.png: image of 8x1048582 pixels") != NULL);
    CHECK(fr == NULL);
    /* a good still image is a video of one frame, and only one */
    ids_image img;
    const uint8_t c[3] = {10, 200, 30};
    REQUIRE_OK(ids_image_new(&img, 9, 7, c, &err), err);
    const char *png = t_tmp("still.png");
    REQUIRE_OK(ids_image_write_png(&img, png, &err), err);
    REQUIRE_OK(ids_video_load(png, 1, &fr, &total, &err), err);
    CHECK(total == 1 && fr[0].w == 9 && fr[0].h == 7 && fr[0].rgb[1] == 200);
    ids_video_free(fr, 1);
    CHECK_EQ_INT(ids_video_load(png, 2, &fr, &total, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "1 decodable frame (a still image), 2 asked") != NULL);
    ids_image_free(&img);
}
