/* Filters for bugs that are already reported and being fixed elsewhere: with
 * IDSCOPE_FUZZ_SKIP_KNOWN=1 in the environment a harness skips the inputs of such a class, so that a
 * long run can look past them. Off by default: `make fuzz` reports them until they are fixed; then
 * the filter of the class is deleted here. Each filter names its bug. */
#ifndef IDS_FUZZ_KNOWN_H
#define IDS_FUZZ_KNOWN_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline bool fz_skip_known(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("IDSCOPE_FUZZ_SKIP_KNOWN");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

static inline bool fz_json_big_number(const cJSON *j, double limit) {
    for (; j; j = j->next) {
        if (cJSON_IsNumber(j) && !(fabs(j->valuedouble) < limit)) return true;
        if (fz_json_big_number(j->child, limit)) return true;
    }
    return false;
}

/* Known: JSON doubles converted to int (train config) or long (COCO image ids) without a range
 * check. True for text that parses to JSON holding a number of magnitude >= limit (or inf). */
static inline bool fz_known_json_range(const uint8_t *data, size_t size, double limit) {
    if (!fz_skip_known()) return false;
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    bool big = fz_json_big_number(j, limit);
    cJSON_Delete(j);
    return big;
}

/* Known: a safetensors header with "__metadata__" twice leaks the first copy. */
static inline bool fz_known_safetensors(const uint8_t *data, size_t size) {
    if (!fz_skip_known()) return false;
    static const char key[] = "\"__metadata__\"";
    int n = 0;
    for (size_t i = 0; i + sizeof key - 1 <= size; i++)
        if (!memcmp(data + i, key, sizeof key - 1)) n++;
    return n >= 2;
}

/* Known: a .npy header's shape is believed before the file size is checked (huge allocations).
 * True when the shape the library will read (the header text up to its length or first NUL)
 * needs more bytes than the whole input holds. */
static inline bool fz_known_npy(const uint8_t *data, size_t size) {
    if (!fz_skip_known() || size < 10) return false;
    size_t hoff = data[6] == 1 ? 10 : 12;
    if (size < hoff) return false;
    size_t hlen = data[6] == 1 ? (size_t)(data[8] | data[9] << 8)
                               : (size_t)(data[8] | data[9] << 8 | data[10] << 16 | (uint32_t)data[11] << 24);
    if (hlen > size - hoff) hlen = size - hoff;
    char *h = malloc(hlen + 1);
    if (!h) return false;
    memcpy(h, data + hoff, hlen);
    h[hlen] = 0;
    const char *p = strstr(h, "'shape'");
    bool big = false;
    if (p) {
        p += 7;
        while (*p == ' ') p++;
        if (*p == ':') p++;
        while (*p == ' ') p++;
        if (*p == '(') {
            double n = 8; /* the largest element */
            for (p++; *p && *p != ')';) {
                if (*p == ' ' || *p == ',') p++;
                else if (*p >= '0' && *p <= '9') {
                    double d = 0;
                    while (*p >= '0' && *p <= '9') d = d * 10 + (*p++ - '0');
                    n *= d;
                } else {
                    n = 0; /* the library stops with an error */
                    break;
                }
            }
            big = n > (double)size;
        }
    }
    free(h);
    return big;
}

/* Known: images decoded before any limit on their declared size (decompression bombs), and binary
 * PGM/PPM with a maxval above 255 read past stb_image's buffer. The harness links stb_image. */
int stbi_info_from_memory(const unsigned char *buffer, int len, int *x, int *y, int *comp);
int stbi_is_16_bit_from_memory(const unsigned char *buffer, int len);
static inline bool fz_known_image(const uint8_t *data, size_t size) {
    if (!fz_skip_known() || size > INT32_MAX) return false;
    int w = 0, h = 0, c = 0;
    if (stbi_info_from_memory(data, (int)size, &w, &h, &c) && (double)w * h > (1 << 22)) return true;
    if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6')) {
        /* the maxval: the third number of the header */
        const uint8_t *p = data + 2, *end = data + size;
        double v[3] = {0, 0, 0};
        for (int k = 0; k < 3 && p < end; k++) {
            while (p < end && !(*p >= '0' && *p <= '9')) {
                if (*p == '#')
                    while (p < end && *p != '\n') p++;
                else
                    p++;
            }
            while (p < end && *p >= '0' && *p <= '9') v[k] = v[k] * 10 + (*p++ - '0');
        }
        if (v[2] > 255) return true;
    }
    return false;
}

#endif /* IDS_FUZZ_KNOWN_H */
