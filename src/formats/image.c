/* Images: loading and writing through stb, padding, and a Pillow-compatible bicubic resampler
 * (separable, a = -0.5, support widened by the scale when shrinking, fixed-point 8-bit passes:
 * horizontal first, then vertical, as PIL's ImagingResample does). */
#include "idscope/formats.h"
#include "base/internal.h"

#include <errno.h>
#include <math.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

void ids_image_free(ids_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

ids_status ids_image_new(ids_image *out, int w, int h, const uint8_t fill[3], ids_err *err) {
    out->rgb = NULL;
    out->w = out->h = 0;
    if (w <= 0 || h <= 0 || w > 65536 || h > 65536 || (int64_t)w * h > (1 << 28))
        return ids__err(err, IDS_ERR_ARG, "image: bad size %dx%d", w, h);
    out->rgb = ids__malloc((size_t)w * h * 3);
    if (!out->rgb) return ids__err(err, IDS_ERR_NOMEM, "image: out of memory for %dx%d", w, h);
    out->w = w;
    out->h = h;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        out->rgb[3 * i] = fill ? fill[0] : 0;
        out->rgb[3 * i + 1] = fill ? fill[1] : 0;
        out->rgb[3 * i + 2] = fill ? fill[2] : 0;
    }
    return IDS_OK;
}

ids_status ids_image_load(ids_image *out, const char *path, ids_err *err) {
    out->rgb = NULL;
    out->w = out->h = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ids__err(err, IDS_ERR_IO, "%s: cannot open image: %s", path, strerror(errno));
    int w, h, ch;
    unsigned char *d = stbi_load_from_file(f, &w, &h, &ch, 3);
    fclose(f);
    if (!d)
        return ids__err(err, IDS_ERR_FORMAT, "%s: cannot decode image: %s", path, stbi_failure_reason());
    ids_status st = ids_image_new(out, w, h, NULL, err);
    if (!st) memcpy(out->rgb, d, (size_t)w * h * 3);
    stbi_image_free(d);
    return st;
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} membuf;

static void mem_write(void *ctx, void *data, int size) {
    membuf *m = ctx;
    if (m->oom || size <= 0) return;
    if (m->n + (size_t)size > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 65536;
        while (cap < m->n + (size_t)size) cap *= 2;
        unsigned char *p = ids__realloc(m->p, cap);
        if (!p) {
            m->oom = true;
            return;
        }
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

ids_status ids_image_write_png(const ids_image *img, const char *path, ids_err *err) {
    membuf m = {0};
    if (!stbi_write_png_to_func(mem_write, &m, img->w, img->h, 3, img->rgb, img->w * 3) || m.oom) {
        free(m.p);
        return ids__err(err, IDS_ERR_NOMEM, "%s: cannot encode PNG: out of memory", path);
    }
    const void *parts[1] = {m.p};
    size_t sizes[1] = {m.n};
    ids_status st = ids__write_atomic(path, parts, sizes, 1, err);
    free(m.p);
    return st;
}

ids_status ids_image_pad_square(const ids_image *src, const uint8_t color[3], ids_image *dst,
                                ids_err *err) {
    int s = src->w > src->h ? src->w : src->h;
    ids_status st = ids_image_new(dst, s, s, color, err);
    if (st) return st;
    int ox = (s - src->w) / 2, oy = (s - src->h) / 2;
    for (int y = 0; y < src->h; y++)
        memcpy(dst->rgb + ((size_t)(y + oy) * s + ox) * 3, src->rgb + (size_t)y * src->w * 3,
               (size_t)src->w * 3);
    return IDS_OK;
}

/* ---- Pillow-style resampling ---- */
#define PRECISION_BITS (32 - 8 - 2)

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* Coefficients for resampling in_size -> out_size: for output i, taps [bounds[2i], +bounds[2i+1]). */
static int precompute(int in_size, int out_size, int **bounds_out, int **kk_out, int *ksize_out) {
    const double support0 = 2.0;
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = support0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *bounds = ids__malloc(sizeof(int) * 2 * (size_t)out_size);
    double *k = ids__malloc(sizeof(double) * (size_t)ksize);
    int *kk = ids__malloc(sizeof(int) * (size_t)out_size * ksize);
    if (!bounds || !k || !kk) {
        free(bounds);
        free(k);
        free(kk);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < ksize; x++) {
            double w = x < xmax && ww != 0.0 ? k[x] / ww : 0.0;
            /* to fixed point, rounding half away from zero */
            kk[(size_t)xx * ksize + x] = (int)(w < 0 ? w * (1 << PRECISION_BITS) - 0.5
                                                     : w * (1 << PRECISION_BITS) + 0.5);
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(k);
    *bounds_out = bounds;
    *kk_out = kk;
    *ksize_out = ksize;
    return 0;
}

static uint8_t clip8(int64_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

ids_status ids_image_resize_bicubic(const ids_image *src, int w, int h, ids_image *dst, ids_err *err) {
    if (w <= 0 || h <= 0) return ids__err(err, IDS_ERR_ARG, "resize: bad target %dx%d", w, h);
    if (w == src->w && h == src->h) {
        ids_status st = ids_image_new(dst, w, h, NULL, err);
        if (!st) memcpy(dst->rgb, src->rgb, (size_t)w * h * 3);
        return st;
    }
    ids_image tmp = {0};
    ids_status st;
    /* horizontal pass (only when the width changes) */
    const ids_image *mid = src;
    if (w != src->w) {
        int *b, *kk, ks;
        if (precompute(src->w, w, &b, &kk, &ks)) return ids__err(err, IDS_ERR_NOMEM, "resize: out of memory");
        if ((st = ids_image_new(&tmp, w, src->h, NULL, err))) {
            free(b);
            free(kk);
            return st;
        }
        for (int y = 0; y < src->h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    int64_t ss = 1 << (PRECISION_BITS - 1);
                    for (int t = 0; t < b[2 * x + 1]; t++)
                        ss += (int64_t)src->rgb[((size_t)y * src->w + b[2 * x] + t) * 3 + c] * kk[(size_t)x * ks + t];
                    tmp.rgb[((size_t)y * w + x) * 3 + c] = clip8(ss);
                }
        free(b);
        free(kk);
        mid = &tmp;
    }
    if (h == mid->h) { /* only the width changed: the horizontal pass is the result */
        IDS_ASSERT(tmp.rgb != NULL);
        *dst = tmp;
        return IDS_OK;
    }
    int *b, *kk, ks;
    if (precompute(mid->h, h, &b, &kk, &ks)) {
        ids_image_free(&tmp);
        return ids__err(err, IDS_ERR_NOMEM, "resize: out of memory");
    }
    if ((st = ids_image_new(dst, w, h, NULL, err))) {
        free(b);
        free(kk);
        ids_image_free(&tmp);
        return st;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int t = 0; t < b[2 * y + 1]; t++)
                    ss += (int64_t)mid->rgb[((size_t)(b[2 * y] + t) * w + x) * 3 + c] * kk[(size_t)y * ks + t];
                dst->rgb[((size_t)y * w + x) * 3 + c] = clip8(ss);
            }
    free(b);
    free(kk);
    ids_image_free(&tmp);
    return IDS_OK;
}
