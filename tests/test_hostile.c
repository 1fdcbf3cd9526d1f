/* Hostile inputs: every class that once crashed, leaked, allocated without bound or converted an
 * out-of-range double is refused with a message naming the file and the value (the minimized
 * inputs are in tests/fixtures/hostile/, made by make_hostile.py, listed in its expected.txt);
 * the pixel budget; numbers from JSON range-checked; write failures leave nothing behind. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"
#include "base/internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stb/stb_image_write.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file names in a folder that look like a temporary of the atomic writer ("NAME.tmp.PID"). */
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static ids_status read_one(const char *reader, const char *path, ids_err *err) {
    ids_status st;
    if (!strcmp(reader, "image")) {
        ids_image im;
        if (!(st = ids_image_load(&im, path, err))) ids_image_free(&im);
    } else if (!strcmp(reader, "npy")) {
        ids_npy a;
        if (!(st = ids_npy_read(path, &a, err))) ids_npy_free(&a);
    } else if (!strcmp(reader, "safetensors")) {
        ids_st_file *f;
        if (!(st = ids_st_open(&f, path, err))) ids_st_close(f);
    } else if (!strcmp(reader, "gguf")) {
        ids_gguf *g;
        if (!(st = ids_gguf_open(&g, path, err))) ids_gguf_close(g);
    } else if (!strcmp(reader, "train")) {
        ids_train_config c;
        st = ids_train_config_load(path, &c, err);
    } else {
        st = ids__err(err, IDS_ERR_ARG, "unknown reader '%s' in expected.txt", reader);
    }
    return st;
}

/* Each fixture is refused (never a crash, a leak under ASan or a huge allocation) with a message
 * that names the file and contains the expected text. The COCO import skips the row instead and
 * records why. */
TEST(hostile_fixtures_refused_with_clear_messages) {
    size_t len;
    char *list = t_read_file("tests/fixtures/hostile/expected.txt", &len);
    REQUIRE(list);
    int n = 0;
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char *name = strchr(line, '\t'), *want = name ? strchr(name + 1, '\t') : NULL;
        REQUIRE(name && want);
        *name++ = 0;
        *want++ = 0;
        char path[512];
        snprintf(path, sizeof path, "tests/fixtures/hostile/%s", name);
        ids_err err = {0};
        n++;
        if (!strcmp(line, "coco")) {
            int ok = -1, skipped = -1;
            const char *out = t_tmp("hostile-coco.json");
            CHECK_OK_ERR(ids_coco_spatial_convert(path, "/data", out, &ok, &skipped, &err), err);
            CHECKF(ok == 0 && skipped == 1, "%s: %d records, %d skipped", name, ok, skipped);
            char *txt = t_read_file(out, NULL);
            CHECKF(txt && strstr(txt, want), "%s: the skipped row's reason lacks '%s'", name, want);
            free(txt);
            continue;
        }
        ids_status st = read_one(line, path, &err);
        CHECKF(st != IDS_OK && st != IDS_ERR_NOMEM, "%s: %s (%s)", name, ids_status_name(st), t_msg(&err));
        CHECKF(strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", name, want, t_msg(&err));
        CHECKF(strstr(err.msg, name) != NULL, "%s: message does not name the file: %s", name, t_msg(&err));
        /* refused before any large allocation: the same outcome when allocations beyond the first
         * few fail */
        ids_debug_fail_alloc_after(3);
        ids_status st2 = read_one(line, path, &err);
        ids_debug_fail_alloc_after(-1);
        if (strcmp(line, "safetensors") && strcmp(line, "gguf") && strcmp(line, "train"))
            CHECKF(st2 == st, "%s: with 3 allocations allowed: %s (%s)", name, ids_status_name(st2), t_msg(&err));
    }
    CHECK(n > 0);
    free(list);
}

/* Generated on the fly: huge dimensions in a few bytes, for every format whose header states them. */
TEST(hostile_huge_dimensions_refused_from_the_header) {
    ids_err err;
    ids_image im;
    char hdr[128];
    /* 16-bit PGM of 8000 x 8000 (the class that crashed idscope capture) and an 8-bit one whose
     * pixels are missing */
    const char *p16 = t_tmp("big16.pgm");
    int k = snprintf(hdr, sizeof hdr, "P5\n8000 8000\n65535\n");
    write_bytes(p16, hdr, (size_t)k);
    CHECK_EQ_INT(ids_image_load(&im, p16, &err), IDS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "maxval 65535") && strstr(err.msg, "big16.pgm"));
    const char *p8 = t_tmp("short.ppm");
    k = snprintf(hdr, sizeof hdr, "P6\n4000 3000\n255\nabc");
    write_bytes(p8, hdr, (size_t)k);
    CHECK_EQ_INT(ids_image_load(&im, p8, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "truncated PGM/PPM") && strstr(err.msg, "short.ppm"));
    const char *pbig = t_tmp("huge.ppm");
    k = snprintf(hdr, sizeof hdr, "P6\n100000 100000\n255\n");
    write_bytes(pbig, hdr, (size_t)k);
    CHECK_EQ_INT(ids_image_load(&im, pbig, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "100000x100000") && strstr(err.msg, "huge.ppm"));
    /* a JPEG whose frame header says 60000 x 60000 */
    static const unsigned char jpg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03, 0x01,
                                        0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9};
    const char *pj = t_tmp("huge.jpg");
    write_bytes(pj, jpg, sizeof jpg);
    CHECK_EQ_INT(ids_image_load(&im, pj, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "60000x60000") && strstr(err.msg, "pixel budget"));
}

/* The budget: the API, the environment variable (read in one place), and the default. */
TEST(image_pixel_budget) {
    ids_err err;
    ids_image im = {0};
    REQUIRE_OK(ids_image_new(&im, 16, 16, (const uint8_t[3]){10, 20, 30}, &err), err);
    const char *p = t_tmp("budget.png");
    REQUIRE_OK(ids_image_write_png(&im, p, &err), err);
    ids_image_free(&im);
    unsetenv("IDSCOPE_MAX_PIXELS");
    CHECK_EQ_INT(ids_image_max_pixels(), IDS_IMAGE_MAX_PIXELS_DEFAULT);
    CHECK_EQ_INT(IDS_IMAGE_MAX_PIXELS_DEFAULT, 8192 * 8192);
    ids_image_set_max_pixels(255);
    CHECK_EQ_INT(ids_image_load(&im, p, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "budget.png") && strstr(err.msg, "16x16") && strstr(err.msg, "255"));
    ids_image_set_max_pixels(256);
    CHECK_OK_ERR(ids_image_load(&im, p, &err), err);
    CHECK(im.w == 16 && im.h == 16 && im.rgb[0] == 10 && im.rgb[2] == 30);
    ids_image_free(&im);
    ids_image_set_max_pixels(0);
    setenv("IDSCOPE_MAX_PIXELS", "100", 1);
    CHECK_EQ_INT(ids_image_max_pixels(), 100);
    CHECK_EQ_INT(ids_image_load(&im, p, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "pixel budget of 100") != NULL);
    ids_image_set_max_pixels(1000); /* the API wins over the environment */
    CHECK_OK_ERR(ids_image_load(&im, p, &err), err);
    ids_image_free(&im);
    ids_image_set_max_pixels(0);
    setenv("IDSCOPE_MAX_PIXELS", "lots", 1);
    CHECK_EQ_INT(ids_image_load(&im, p, &err), IDS_ERR_ARG);
    CHECK(strstr(err.msg, "IDSCOPE_MAX_PIXELS='lots'") != NULL);
    CHECK_EQ_INT(ids_image_max_pixels(), IDS_IMAGE_MAX_PIXELS_DEFAULT);
    unsetenv("IDSCOPE_MAX_PIXELS");
    ids_image_set_max_pixels(1ll << 40); /* capped at what the library holds */
    CHECK_EQ_INT(ids_image_max_pixels(), IDS_IMAGE_PIXELS_HARD_MAX);
    ids_image_set_max_pixels(0);
    CHECK_EQ_INT(ids_image_check_size(8192, 8192, "x", &err), IDS_OK);
    CHECK_EQ_INT(ids_image_check_size(8193, 8192, "x", &err), IDS_ERR_RANGE);
    CHECK_EQ_INT(ids_image_check_size(0, 5, "x", &err), IDS_ERR_RANGE);
}

/* Video frames: the stream's frame size is checked before decoding, and frame folders per image. */
TEST(video_pixel_budget) {
    ids_err err;
    ids_image fr[3] = {{0}};
    for (int i = 0; i < 3; i++) REQUIRE_OK(ids_image_new(&fr[i], 32, 24, (const uint8_t[3]){(uint8_t)(80 * i), 0, 0}, &err), err);
    const char *mp4 = t_tmp("budget.mp4");
    REQUIRE_OK(ids_video_write_mp4(fr, 3, 4, mp4, &err), err);
    const char *dir = t_tmp("budget-frames");
    mkdir(dir, 0755);
    for (int i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/f%d.png", dir, i);
        REQUIRE_OK(ids_image_write_png(&fr[i], p, &err), err);
        ids_image_free(&fr[i]);
    }
    ids_image *got = NULL;
    int total = 0;
    CHECK_OK_ERR(ids_video_load(mp4, 3, &got, &total, &err), err);
    ids_video_free(got, 3);
    ids_image_set_max_pixels(32 * 24 - 1);
    CHECK_EQ_INT(ids_video_load(mp4, 3, &got, &total, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "budget.mp4") && strstr(err.msg, "32x24"));
    CHECK_EQ_INT(ids_video_load(dir, 3, &got, &total, &err), IDS_ERR_RANGE);
    CHECK(strstr(err.msg, "f0.png") && strstr(err.msg, "32x24"));
    ids_image_set_max_pixels(0);
    CHECK_OK_ERR(ids_video_load(dir, 3, &got, &total, &err), err);
    ids_video_free(got, 3);
}

/* The formats we read, recognised by their bytes whatever the file is called; 8-bit PGM/PPM
 * decoded here (scaled when maxval < 255). */
TEST(image_supported_formats) {
    uint8_t px[4 * 3 * 3];
    for (int i = 0; i < 36; i++) px[i] = (uint8_t)(i * 7);
    ids_err err;
    ids_image im;
    const char *bmp = t_tmp("fmt.bmp"), *jpg = t_tmp("fmt-jpeg.img"), *png = t_tmp("fmt.png");
    REQUIRE(stbi_write_bmp(bmp, 4, 3, 3, px) && stbi_write_jpg(jpg, 4, 3, 3, px, 95) && stbi_write_png(png, 4, 3, 3, px, 12));
    const char *files[3] = {bmp, jpg, png};
    for (int f = 0; f < 3; f++) {
        CHECK_OK_ERR(ids_image_load(&im, files[f], &err), err);
        CHECK(im.w == 4 && im.h == 3);
        if (f != 1) CHECK(im.rgb && !memcmp(im.rgb, px, sizeof px));
        ids_image_free(&im);
    }
    static const unsigned char gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\x00"
                                       ",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;";
    const char *g = t_tmp("fmt.gif");
    write_bytes(g, gif, sizeof gif - 1);
    CHECK_OK_ERR(ids_image_load(&im, g, &err), err);
    CHECK(im.w == 1 && im.h == 1 && im.rgb[0] == 255 && im.rgb[1] == 0);
    ids_image_free(&im);
    /* P6 with a comment, and P5 with maxval 15 */
    char ppm[64];
    int k = snprintf(ppm, sizeof ppm, "P6\n# c\n2 1\n255\n");
    memcpy(ppm + k, "\x01\x02\x03\xfa\xfb\xfc", 6);
    const char *pp = t_tmp("fmt.ppm");
    write_bytes(pp, ppm, (size_t)k + 6);
    CHECK_OK_ERR(ids_image_load(&im, pp, &err), err);
    CHECK(im.w == 2 && im.h == 1 && !memcmp(im.rgb, "\x01\x02\x03\xfa\xfb\xfc", 6));
    ids_image_free(&im);
    k = snprintf(ppm, sizeof ppm, "P5 2 1 15 ");
    memcpy(ppm + k, "\x0f\x05", 2);
    const char *pg = t_tmp("fmt.pgm");
    write_bytes(pg, ppm, (size_t)k + 2);
    CHECK_OK_ERR(ids_image_load(&im, pg, &err), err);
    CHECK(im.w == 2 && im.rgb[0] == 255 && im.rgb[1] == 255 && im.rgb[3] == 85 && im.rgb[5] == 85);
    ids_image_free(&im);
    /* an empty file and a bare signature */
    const char *e = t_tmp("empty.png");
    write_bytes(e, "", 0);
    CHECK_EQ_INT(ids_image_load(&im, e, &err), IDS_ERR_UNSUPPORTED);
    write_bytes(e, "\x89PNG\r\n\x1a\n", 8);
    CHECK_EQ_INT(ids_image_load(&im, e, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "empty.png") != NULL);
}

/* The .npy data size is compared with the file before anything is allocated for it. */
TEST(npy_sizes_checked_against_the_file) {
    ids_err err;
    ids_npy a;
    const char *p = t_tmp("exact.npy");
    float x[3] = {1, 2, 3};
    int64_t n = 3;
    REQUIRE_OK(ids_npy_write(p, "<f4", 1, &n, x, &err), err);
    CHECK_OK_ERR(ids_npy_read(p, &a, &err), err);
    ids_npy_free(&a);
    REQUIRE(truncate(p, file_size(p) - 1) == 0);
    CHECK_EQ_INT(ids_npy_read(p, &a, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "needs 12 bytes, the file has 11") != NULL);
    /* a header length beyond the file */
    static const char hl[] = "\x93NUMPY\x01\x00\xff\x7f{'descr'";
    write_bytes(p, hl, sizeof hl - 1);
    CHECK_EQ_INT(ids_npy_read(p, &a, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "truncated header") != NULL);
}

/* ids__json_int / ids__json_num: absent, wrong type, fractional, out of range, infinite, huge. */
TEST(json_numbers_range_checked) {
    cJSON *j = cJSON_Parse("{\"a\": 5, \"b\": 1e10, \"c\": 1.5, \"d\": \"x\", \"e\": -3, \"f\": 1e999, \"g\": 9007199254740994,"
                           " \"h\": null, \"i\": 0.25}");
    REQUIRE(j);
    long long v;
    double d;
    ids_err err;
    CHECK(ids__json_int(j, "a", 0, 10, -1, &v, &err) == IDS_OK && v == 5);
    CHECK(ids__json_int(j, "zz", 0, 10, 7, &v, &err) == IDS_OK && v == 7);
    CHECK(ids__json_int(j, "h", 0, 10, 7, &v, &err) == IDS_OK && v == 7);
    CHECK(ids__json_int(NULL, "a", 0, 10, 8, &v, &err) == IDS_OK && v == 8);
    CHECK(ids__json_int(j, "b", 0, 1000, -1, &v, &err) == IDS_ERR_RANGE && v == -1);
    CHECK(!strcmp(err.msg, "'b' is 10000000000, expected an integer in 0..1000"));
    CHECK(ids__json_int(j, "c", 0, 10, -1, &v, &err) == IDS_ERR_RANGE && strstr(err.msg, "'c' is 1.5"));
    CHECK(ids__json_int(j, "d", 0, 10, -1, &v, &err) == IDS_ERR_TYPE && strstr(err.msg, "'d' must be a number"));
    CHECK(ids__json_int(j, "e", 0, 10, -1, &v, &err) == IDS_ERR_RANGE);
    CHECK(ids__json_int(j, "e", -5, 10, -1, &v, &err) == IDS_OK && v == -3);
    CHECK(ids__json_int(j, "f", LLONG_MIN, LLONG_MAX, 0, &v, &err) == IDS_ERR_RANGE && strstr(err.msg, "'f' is inf"));
    CHECK(ids__json_int(j, "g", LLONG_MIN, LLONG_MAX, 0, &v, &err) == IDS_ERR_RANGE);
    CHECK(ids__json_int(cJSON_GetObjectItem(j, "b"), NULL, 0, 9, 0, &v, &err) == IDS_ERR_RANGE &&
          !strcmp(err.msg, "10000000000 is not an integer in 0..9"));
    CHECK(ids__json_num(j, "i", 0, 1, -1, &d, &err) == IDS_OK && d == 0.25);
    CHECK(ids__json_num(j, "f", -1e300, 1e300, -1, &d, &err) == IDS_ERR_RANGE && d == -1);
    CHECK(ids__json_num(j, "d", 0, 1, -1, &d, &err) == IDS_ERR_TYPE);
    CHECK(ids__json_num(j, "b", 0, 1, -1, &d, &err) == IDS_ERR_RANGE && strstr(err.msg, "'b' is 10000000000, expected a number in [0, 1]"));
    ids__err(&err, IDS_ERR_RANGE, "'b' is bad");
    CHECK(ids__err_prefix(&err, IDS_ERR_FORMAT, "file.json: stage %d", 2) == IDS_ERR_FORMAT);
    CHECK(!strcmp(err.msg, "file.json: stage 2: 'b' is bad") && err.code == IDS_ERR_FORMAT);
    cJSON_Delete(j);
}

/* Training configs: every size in range and consistent, with the key in the message, whether
 * loaded from a file or built in code (ids_train refuses before creating anything). */
TEST(train_config_ranges) {
    ids_train_config c;
    ids_err err;
    ids_train_default_config(&c);
    CHECK_OK_ERR(ids_train_config_check(&c, &err), err);
    static const struct {
        const char *field;
        size_t off;
        int value;
        const char *want;
    } cases[] = {
        {"heads", offsetof(ids_train_config, heads), 0, "'heads' is 0"},
        {"vit_heads", offsetof(ids_train_config, vit_heads), 0, "'vit_heads' is 0"},
        {"patch_size", offsetof(ids_train_config, patch_size), 0, "'patch_size' is 0"},
        {"patch_size", offsetof(ids_train_config, patch_size), 24, "'patch_size' 24 does not divide 'image_size' 64"},
        {"patch_size", offsetof(ids_train_config, patch_size), 1, "at most 32"},
        {"heads", offsetof(ids_train_config, heads), 3, "'heads' 3 does not divide 'width' 128"},
        {"heads", offsetof(ids_train_config, heads), 128, "must be even"},
        {"vit_heads", offsetof(ids_train_config, vit_heads), 5, "'vit_heads' 5 does not divide 'vit_width' 64"},
        {"batch", offsetof(ids_train_config, batch), 1, "'shards' 2 is more than 'batch' 1"},
        {"frames", offsetof(ids_train_config, frames), 2, "'frames' is 2"},
        {"layers", offsetof(ids_train_config, layers), 0, "'layers' is 0"},
        {"shards", offsetof(ids_train_config, shards), 99, "'shards' is 99"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ids_train_default_config(&c);
        *(int *)(void *)((char *)&c + cases[i].off) = cases[i].value;
        CHECKF(ids_train_config_check(&c, &err) == IDS_ERR_RANGE && strstr(err.msg, cases[i].want), "%s = %d: %s",
               cases[i].field, cases[i].value, t_msg(&err));
    }
    ids_train_default_config(&c);
    c.lr = NAN;
    CHECK(ids_train_config_check(&c, &err) == IDS_ERR_RANGE && strstr(err.msg, "'lr'"));
    ids_train_default_config(&c);
    c.aux_weight = 1;
    c.aux_layer = 9;
    CHECK(ids_train_config_check(&c, &err) == IDS_ERR_RANGE && strstr(err.msg, "'aux_layer' 9"));
    ids_train_default_config(&c);
    c.stages[0].steps = 0;
    CHECK(ids_train_config_check(&c, &err) == IDS_ERR_RANGE && strstr(err.msg, "no 'steps'"));
    ids_train_default_config(&c);
    c.heads = 0;
    const char *out = t_tmp("train-refused");
    CHECK_EQ_INT(ids_train(&c, out, NULL, NULL, &err), IDS_ERR_RANGE);
    CHECK(!exists(out));
    /* from a file: the key and the file in the message */
    const char *p = t_tmp("cfg-range.json");
    static const struct {
        const char *json, *want;
    } files[] = {
        {"{\"width\": 1e10}", "'width' is 10000000000, expected an integer in 2..2048"},
        {"{\"batch\": 3e9}", "'batch' is 3000000000"},
        {"{\"lr\": 1e999}", "'lr' is inf"},
        {"{\"heads\": 2.5}", "'heads' is 2.5"},
        {"{\"seed\": 1e30}", "'seed' is 1e+30"},
        {"{\"holdout\": \"x\"}", "'holdout' must be a number"},
        {"{\"stages\": [{\"steps\": -1, \"weights\": {\"describe\": 1}}]}", "stage 0: 'steps' is -1"},
        {"{\"stages\": [{\"steps\": 5, \"weights\": {\"describe\": 1e40}}]}", "stage 0: weight of 'describe': 1e+40"},
        {"{\"stages\": [{\"steps\": 5, \"weights\": {\"describe\": 0}}]}", "stage 0: no task has a weight above 0"},
        {"{\"width\": 64, \"heads\": 3}", "'heads' 3 does not divide 'width' 64"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        write_bytes(p, files[i].json, strlen(files[i].json));
        ids_status st = ids_train_config_load(p, &c, &err);
        CHECKF(st != IDS_OK && strstr(err.msg, files[i].want) && strstr(err.msg, "cfg-range.json"), "%s: %s", files[i].json,
               t_msg(&err));
    }
}

/* safetensors: exact integers within the file, no overlap, no duplicate; the good file still reads. */
TEST(safetensors_header_checks) {
    ids_err err;
    float x[8] = {0};
    const char *p = t_tmp("ok.safetensors");
    ids_st_writer *w = ids_st_writer_new();
    REQUIRE(w);
    int64_t s4 = 4, s0 = 0;
    CHECK_OK_ERR(ids_st_writer_add(w, "a", "F32", 1, &s4, x, &err), err);
    CHECK_OK_ERR(ids_st_writer_add(w, "empty", "F32", 1, &s0, x, &err), err);
    CHECK_OK_ERR(ids_st_writer_add(w, "b", "F32", 1, &s4, x + 4, &err), err);
    CHECK_OK_ERR(ids_st_writer_write(w, p, &err), err);
    ids_st_writer_free(w);
    ids_st_file *f;
    REQUIRE_OK(ids_st_open(&f, p, &err), err);
    CHECK(ids_st_count(f) == 3 && ids_st_find(f, "empty")->nbytes == 0);
    ids_st_close(f);
}

/* A result file of kind k in dir, with the given text (its folder made). */
static void put_result(const char *dir, ids_result_kind k, ids_relation rel, const char *json) {
    char *path = ids_result_path(dir, k, rel, true);
    if (!path) return;
    mkdir(dir, 0755);
    char *slash = strrchr(path, '/');
    *slash = 0;
    mkdir(path, 0755);
    *slash = '/';
    write_bytes(path, json, strlen(json));
    free(path);
}

/* Result files read back: numbers that would overflow an int are refused (score) or ignored (the
 * report draws what it can), never converted (a clang -fsanitize=float-cast-overflow build shows it). */
TEST(result_numbers_range_checked) {
    ids_err err;
    const char *dir = t_tmp("hostile-results");
    put_result(dir, IDS_RESULT_STATS, 0,
               "{\"layers\": [{\"layer\": 0, \"r2\": 0.5, \"plane\": 0.1, \"pca_var\": 0.2, \"pair_cosine\": 0.5, \"pca\": ["
               "{\"pc1\": 1, \"pc2\": 2, \"x\": 1e300, \"y\": -7}, {\"pc1\": 1e999, \"pc2\": 0, \"x\": -7, \"y\": 3.5}]},"
               "{\"layer\": 1e300, \"r2\": 1e999}]}");
    put_result(dir, IDS_RESULT_SWAP, 0, "{\"layers\": 2, \"rows\": [{\"layer\": 1e99, \"set\": \"image\", \"diff\": 1},"
               "{\"layer\": -1e300, \"set\": \"text\", \"diff\": 1}, {\"layer\": 1, \"set\": \"objects\", \"diff\": 0.5}]}");
    put_result(dir, IDS_RESULT_SWAP_CONTROL, 0, "{\"layers\": 1e300, \"rows\": []}");
    put_result(dir, IDS_RESULT_STEER_BELIEF, 0,
               "{\"layers\": [{\"layer\": 1e300, \"id\": 0.5, \"noise\": 0.1}], \"best3_id\": 1, \"factor\": 1e999}");
    put_result(dir, IDS_RESULT_STEER_GRID, IDS_REL_LEFT_RIGHT,
               "{\"grid\": 2, \"layer\": 1e300, \"delta\": [1e999, -1e999, 0, 1]}");
    put_result(dir, IDS_RESULT_STEER_GRID, IDS_REL_ABOVE_BELOW, "{\"grid\": 1e300, \"layer\": 1, \"delta\": [1]}");
    put_result(dir, IDS_RESULT_DEPTH, 0, "{\"layers\": [{\"layer\": -1e300, \"above_below_down\": 1, \"front_behind_down\": 2}]}");
    put_result(dir, IDS_RESULT_TEMPORAL, 0,
               "{\"stats\": [{\"pc1_var\": 1, \"spearman\": 1, \"pc1\": [1, 1e999]}], \"best_layer\": 1e300}");
    put_result(dir, IDS_RESULT_TEMPORAL_SWAP, 0, "{\"layers\": 4e9, \"rows\": []}");
    put_result(dir, IDS_RESULT_TEMPORAL_STEER, 0, "{\"layers\": [{\"layer\": 1e300, \"d_after\": [1, 2]}], \"monotonic\": 1}");
    put_result(dir, IDS_RESULT_SCORE, 0, "{\"layers\": [{\"layer\": 3e9, \"score\": 1}], \"best_layer\": 1e300}");
    int n_sec = -1;
    CHECK_OK_ERR(ids_report(dir, &n_sec, &err), err);
    CHECK(n_sec >= 5);
    /* score: a steering layer of 1e300 is an error naming the file and the key */
    char *stats = ids_result_path(dir, IDS_RESULT_STATS, 0, true), *steer = ids_result_path(dir, IDS_RESULT_STEER_BELIEF, 0, true);
    REQUIRE(stats && steer);
    int best;
    double score;
    CHECK_EQ_INT(ids_score(stats, steer, t_tmp("score.json"), &best, &score, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "steer-belief.json") && strstr(err.msg, "'layer' is 1e+300"));
    free(stats);
    free(steer);
}

/* ---- write failures ---- */

/* Run fn with the process's file-size limit at `limit` bytes and SIGXFSZ ignored (writes past the
 * limit then fail with EFBIG), then put both back. */
static ids_status with_file_size_limit(rlim_t limit, ids_status (*fn)(void *ctx, ids_err *err), void *ctx, ids_err *err) {
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = limit;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ids_status st = setrlimit(RLIMIT_FSIZE, &lim) == 0 ? fn(ctx, err) : ids__err(err, IDS_ERR_ARG, "setrlimit failed");
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    return st;
}

typedef struct {
    const char *dir;
    ids_swap_result *r;
} swap_ctx;

static ids_status write_swap(void *ctx, ids_err *err) {
    const swap_ctx *c = ctx;
    return ids_swap_write(c->dir, c->r, err);
}

static ids_status write_stimuli(void *ctx, ids_err *err) {
    ids_stim_opts o;
    ids_stim_default_opts(&o);
    o.image_size = 32;
    o.grid = 2;
    ids_catalog *cat = ids_catalog_new();
    if (!cat) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_status st = ids_stimuli_write(IDS_SET_GRID, &o, cat, ctx, false, false, 2, NULL, NULL, err);
    ids_catalog_free(cat);
    return st;
}

static ids_status write_report(void *ctx, ids_err *err) {
    int n;
    return ids_report(ctx, &n, err);
}

static ids_status write_st(void *ctx, ids_err *err) {
    static float x[1024];
    int64_t n = 1024;
    ids_st_writer *w = ids_st_writer_new();
    if (!w) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
    ids_status st = ids_st_writer_add(w, "x", "F32", 1, &n, x, err);
    if (!st) st = ids_st_writer_write(w, ctx, err);
    ids_st_writer_free(w);
    return st;
}

static ids_status write_npy(void *ctx, ids_err *err) {
    static float x[1024];
    int64_t n = 1024;
    return ids_npy_write(ctx, "<f4", 1, &n, x, err);
}

/* The message of a failed write: an I/O error naming the file and why. */
static void check_write_failure(ids_status st, const ids_err *err, const char *name) {
    CHECKF(st == IDS_ERR_IO, "%s: %s: %s", name, ids_status_name(st), t_msg(err));
    CHECKF(strstr(err->msg, name) && strstr(err->msg, "File too large"), "%s: %s", name, t_msg(err));
}

/* A write that fails part-way (here: past a file-size limit) leaves neither the target nor a
 * temporary file, and says so as an I/O error naming the target. */
TEST(write_failures_leave_nothing_behind) {
    ids_err err;
    /* a result in two files: the CSV is small, the JSON is not */
    float v[40 * IDS_SWAP_SET_COUNT];
    for (int i = 0; i < 40 * IDS_SWAP_SET_COUNT; i++) v[i] = 0.123456f * (float)i;
    ids_swap_result r = {.n_layers = 40, .n_items = 2, .left = v, .right = v, .diff = v, .diff_pooled = v};
    swap_ctx sc = {t_tmp("wf-swap-ok"), &r};
    REQUIRE_OK(write_swap(&sc, &err), err);
    char jp[600], cp[600];
    snprintf(jp, sizeof jp, "%s/swap.json", sc.dir);
    snprintf(cp, sizeof cp, "%s/swap.csv", sc.dir);
    const long jsz = file_size(jp), csz = file_size(cp);
    REQUIRE(csz > 0 && jsz > csz);
    const rlim_t limits[2] = {(rlim_t)csz / 2, (rlim_t)(csz + jsz) / 2}; /* the CSV fails; the JSON fails after the CSV */
    for (int k = 0; k < 2; k++) {
        sc.dir = t_tmp(k ? "wf-swap-json" : "wf-swap-csv");
        ids_status st = with_file_size_limit(limits[k], write_swap, &sc, &err);
        check_write_failure(st, &err, k ? "swap.json" : "swap.csv");
        snprintf(jp, sizeof jp, "%s/swap.json", sc.dir);
        snprintf(cp, sizeof cp, "%s/swap.csv", sc.dir);
        CHECKF(!exists(jp) && !exists(cp) && count_temporaries(sc.dir) == 0, "limit %ld: files left in %s", (long)limits[k],
               sc.dir);
    }
    /* the stimuli's manifest (images small, the manifest with its provenance larger) */
    const char *sd = t_tmp("wf-stimuli-ok");
    REQUIRE_OK(write_stimuli((void *)sd, &err), err);
    char mp[600], ip[600];
    snprintf(mp, sizeof mp, "%s/manifest.json", sd);
    snprintf(ip, sizeof ip, "%s/grid_00000.png", sd);
    const long msz = file_size(mp), isz = file_size(ip);
    REQUIRE(isz > 0 && msz > isz + 64);
    sd = t_tmp("wf-stimuli");
    check_write_failure(with_file_size_limit((rlim_t)(isz + 32), write_stimuli, (void *)sd, &err), &err, "manifest.json");
    snprintf(mp, sizeof mp, "%s/manifest.json", sd);
    CHECK(!exists(mp) && count_temporaries(sd) == 0);
    /* the report page: its figure files (SVG, then PNG) come first, then the page, made larger than
     * the figures by a long command in the result's provenance; a failure at any of them leaves
     * nothing half-written */
    static char big[80000];
    const int nb = snprintf(big, sizeof big, "{\"layers\": 3, \"rows\": [{\"layer\": 1, \"set\": \"objects\", \"diff\": 0.5}], "
                                             "\"provenance\": {\"command\": \"");
    memset(big + nb, 'x', 70000);
    memcpy(big + nb + 70000, "\"}}", 4);
    const char *const names[3] = {"figures/swap-1.svg", "figures/swap-1.png", "report.html"};
    char ok_dir[600], path[3][700];
    snprintf(ok_dir, sizeof ok_dir, "%s", t_tmp("wf-report-ok"));
    put_result(ok_dir, IDS_RESULT_SWAP, 0, big);
    REQUIRE_OK(write_report(ok_dir, &err), err);
    long size[3];
    for (int k = 0; k < 3; k++) snprintf(path[k], sizeof path[k], "%s/%s", ok_dir, names[k]), size[k] = file_size(path[k]);
    REQUIRE(size[0] > 0 && size[1] > size[0] && size[2] > size[1]);
    const rlim_t wf_limits[3] = {(rlim_t)size[0] / 2, (rlim_t)(size[0] + size[1]) / 2, (rlim_t)(size[1] + size[2]) / 2};
    for (int k = 0; k < 3; k++) {
        const char *rd = t_tmp(k == 0 ? "wf-report-svg" : k == 1 ? "wf-report-png" : "wf-report-page");
        put_result(rd, IDS_RESULT_SWAP, 0, big);
        const char *base = strrchr(names[k], '/') ? strrchr(names[k], '/') + 1 : names[k];
        check_write_failure(with_file_size_limit(wf_limits[k], write_report, (void *)rd, &err), &err, base);
        char fd[700];
        snprintf(fd, sizeof fd, "%s/figures", rd);
        for (int q = 0; q < 3; q++) { /* the files before the failing one written, it and the later ones not */
            snprintf(path[q], sizeof path[q], "%s/%s", rd, names[q]);
            CHECKF(exists(path[q]) == (q < k), "limit %ld: %s %s", (long)wf_limits[k], names[q], q < k ? "missing" : "left behind");
        }
        CHECK(count_temporaries(rd) == 0 && count_temporaries(fd) == 0);
    }
    /* safetensors and .npy */
    const char *wd = t_tmp("wf-files");
    mkdir(wd, 0755);
    char sp[600], np[600];
    snprintf(sp, sizeof sp, "%s/x.safetensors", wd);
    snprintf(np, sizeof np, "%s/x.npy", wd);
    check_write_failure(with_file_size_limit(1000, write_st, sp, &err), &err, "x.safetensors");
    check_write_failure(with_file_size_limit(1000, write_npy, np, &err), &err, "x.npy");
    CHECK(!exists(sp) && !exists(np) && count_temporaries(wd) == 0);
    /* and an existing target stays as it was */
    REQUIRE_OK(write_npy(np, &err), err);
    const long before = file_size(np);
    check_write_failure(with_file_size_limit(1000, write_npy, np, &err), &err, "x.npy");
    CHECK(file_size(np) == before && count_temporaries(wd) == 0);
}

/* A header whose length is not a multiple of 8 (nor of 4) still gives aligned tensor data: the
 * reader places the data section on a 64-byte boundary in memory. */
TEST(safetensors_odd_header_length_aligned) {
    const char *path = t_tmp("odd.safetensors");
    const char hdr[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}"; /* 55 bytes */
    const float v[3] = {1.5f, -2.25f, 1e-3f};
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    const uint64_t hl = sizeof hdr - 1;
    CHECK(hl % 4 != 0);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    fwrite(v, sizeof v, 1, f);
    fclose(f);
    ids_st_file *st;
    ids_err err;
    REQUIRE_OK(ids_st_open(&st, path, &err), err);
    const ids_st_tensor *t = ids_st_find(st, "x");
    REQUIRE(t);
    CHECK((uintptr_t)t->data % 64 == 0);
    CHECK(t->nbytes == 12 && !memcmp(t->data, v, 12));
    ids_st_close(st);
}
