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
