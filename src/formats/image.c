/* Images: loading and writing through stb, padding, and a Pillow-compatible bicubic resampler
 * (separable, a = -0.5, support widened by the scale when shrinking, fixed-point 8-bit passes:
 * horizontal first, then vertical, as PIL's ImagingResample does). */
#include "idscope/formats.h"
#include "base/internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
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
    if (w <= 0 || h <= 0 || w > 65536 || h > 65536 || (int64_t)w * h > IDS_IMAGE_PIXELS_HARD_MAX)
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

/* ---- the pixel budget ---- */

/* Set by the embedding program, like the log sink (0: not set); see ids_image_set_max_pixels. */
static int64_t g_max_pixels;

void ids_image_set_max_pixels(int64_t n) {
    g_max_pixels = n <= 0 ? 0 : n < IDS_IMAGE_PIXELS_HARD_MAX ? n : IDS_IMAGE_PIXELS_HARD_MAX;
}

/* The budget in force: the API's value, else IDSCOPE_MAX_PIXELS, else the default. The one place
 * the environment variable is read; an unusable value is an error (with err) or the default. */
static ids_status max_pixels(int64_t *out, ids_err *err) {
    *out = IDS_IMAGE_MAX_PIXELS_DEFAULT;
    if (g_max_pixels > 0) {
        *out = g_max_pixels;
        return IDS_OK;
    }
    const char *env = getenv("IDSCOPE_MAX_PIXELS");
    if (!env || !*env) return IDS_OK;
    char *end;
    errno = 0;
    long long v = strtoll(env, &end, 10);
    if (errno || *end || v < 1 || v > IDS_IMAGE_PIXELS_HARD_MAX)
        return ids__err(err, IDS_ERR_ARG, "IDSCOPE_MAX_PIXELS='%.40s' is not a pixel count in 1..%lld", env,
                        (long long)IDS_IMAGE_PIXELS_HARD_MAX);
    *out = v;
    return IDS_OK;
}

int64_t ids_image_max_pixels(void) {
    int64_t n;
    max_pixels(&n, NULL);
    return n;
}

ids_status ids_image_check_size(int64_t w, int64_t h, const char *what, ids_err *err) {
    int64_t budget;
    ids_status st = max_pixels(&budget, err);
    if (st) return st;
    if (w < 1 || h < 1 || w > 65536 || h > 65536)
        return ids__err(err, IDS_ERR_RANGE, "%s: image of %lldx%lld pixels (each side must be 1..65536)", what,
                        (long long)w, (long long)h);
    if (w * h > budget)
        return ids__err(err, IDS_ERR_RANGE, "%s: image of %lldx%lld = %lld pixels exceeds the pixel budget of %lld "
                        "(IDSCOPE_MAX_PIXELS or ids_image_set_max_pixels raise it)", what, (long long)w, (long long)h,
                        (long long)(w * h), (long long)budget);
    return IDS_OK;
}

/* ---- loading ---- */

typedef enum { IMG_PNG, IMG_JPEG, IMG_BMP, IMG_GIF, IMG_PNM } img_format;

static const char *const k_format_names[] = {"PNG", "JPEG", "BMP", "GIF", "PGM/PPM"};

/* The formats read, named in every decoding error. */
#define SUPPORTED " (idscope reads PNG, JPEG, BMP, GIF (first frame) and 8-bit binary PGM/PPM)"

/* stb_image's terse failure reasons in words. */
static const char *reason(const char *r) {
    static const struct { const char *stb, *words; } k[] = {
        {"outofdata", "the data ends early (a truncated file)"},
        {"1/2/4/8/16-bit only", "a PNG bit depth other than 1, 2, 4, 8 or 16"},
        {"unknown image type", "not an image of a supported format"},
        {"bad IHDR len", "a damaged PNG header (IHDR)"},
        {"no IDAT", "a PNG without image data (no IDAT chunk)"},
        {"bad zlib header", "damaged compressed PNG data (zlib header)"},
        {"bad huffman code", "damaged compressed data (Huffman code)"},
        {"not BMP", "not a BMP file"},
        {"bad BMP", "a damaged BMP header"},
        {"bad SOF len", "a damaged JPEG frame header (SOF)"},
        {"not GIF", "not a GIF file"},
        {"no clear code", "a damaged GIF (no LZW clear code)"},
        {"too large", "dimensions larger than the decoder reads"},
    };
    if (!r) return "unknown reason";
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if (!strcmp(r, k[i].stb)) return k[i].words;
    return r;
}

/* The format from the leading bytes: one we read, or an error that names what the file is. */
static ids_status sniff(const unsigned char *b, size_t n, const char *path, img_format *fmt, ids_err *err) {
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) *fmt = IMG_PNG;
    else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) *fmt = IMG_JPEG;
    else if (n >= 2 && b[0] == 'B' && b[1] == 'M') *fmt = IMG_BMP;
    else if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) *fmt = IMG_GIF;
    else if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) *fmt = IMG_PNM;
    else {
        const char *what = NULL;
        if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '4') what = "ASCII PGM/PPM or PBM";
        else if (n >= 2 && b[0] == 'P' && (b[1] == '7' || b[1] == 'F' || b[1] == 'f')) what = "PAM/PFM";
        else if (n >= 4 && !memcmp(b, "8BPS", 4)) what = "PSD";
        else if (n >= 2 && !memcmp(b, "#?", 2)) what = "Radiance HDR";
        else if (n >= 4 && !memcmp(b, "\x53\x80\xF6\x34", 4)) what = "Softimage PIC";
        else if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) what = "TIFF";
        else if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) what = "WebP";
        if (what)
            return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: %s images are not supported (PNG, JPEG, BMP, GIF and "
                            "8-bit binary PGM/PPM are)", path, what);
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: cannot decode image: its first bytes are none of the supported "
                        "formats" SUPPORTED, path);
    }
    return IDS_OK;
}

bool ids_image_is_still(const void *head, size_t n) {
    img_format fmt;
    return sniff(head, n, "", &fmt, NULL) == IDS_OK && fmt != IMG_GIF;
}

/* Binary PGM (P5) / PPM (P6) header: width, height, maxval, one whitespace byte; comments allowed
 * between the fields. *data: offset of the first pixel byte. */
static ids_status pnm_header(const unsigned char *b, size_t n, const char *path, int *w, int *h, int *ch, int *maxval,
                             size_t *data, ids_err *err) {
    long long v[3];
    size_t i = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) { /* whitespace and comments */
            while (i < n && b[i] && strchr(" \t\n\r\v\f", b[i])) i++;
            if (i < n && b[i] == '#') {
                while (i < n && b[i] != '\n' && b[i] != '\r') i++;
                continue;
            }
            break;
        }
        if (i >= n || b[i] < '0' || b[i] > '9')
            return ids__err(err, IDS_ERR_FORMAT, "%s: offset %zu: PGM/PPM header: expected the %s", path, i,
                            k == 0 ? "width" : k == 1 ? "height" : "maxval");
        v[k] = 0;
        while (i < n && b[i] >= '0' && b[i] <= '9') {
            if (v[k] > 100000000) break;
            v[k] = v[k] * 10 + (b[i++] - '0');
        }
        if (i < n && b[i] >= '0' && b[i] <= '9')
            return ids__err(err, IDS_ERR_FORMAT, "%s: offset %zu: PGM/PPM header: number too large", path, i);
    }
    if (i >= n || !(b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        return ids__err(err, IDS_ERR_FORMAT, "%s: offset %zu: PGM/PPM header: no whitespace after maxval", path, i);
    *ch = b[1] == '5' ? 1 : 3;
    if (v[2] < 1 || v[2] > 255)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: PGM/PPM with maxval %lld is not supported (only 8-bit: maxval "
                        "1..255)", path, v[2]);
    ids_status st = ids_image_check_size(v[0], v[1], path, err);
    if (st) return st;
    *w = (int)v[0], *h = (int)v[1], *maxval = (int)v[2], *data = i + 1;
    return IDS_OK;
}

/* 8-bit binary PGM/PPM, decoded here (samples scaled to 0..255 when maxval < 255). */
static ids_status pnm_load(const unsigned char *b, size_t n, const char *path, ids_image *out, ids_err *err) {
    int w = 0, h = 0, ch = 0, maxval = 0;
    size_t off = 0;
    ids_status st = pnm_header(b, n, path, &w, &h, &ch, &maxval, &off, err);
    if (st) return st;
    const size_t need = (size_t)w * h * ch;
    if (n - off < need)
        return ids__err(err, IDS_ERR_FORMAT, "%s: offset %zu: truncated PGM/PPM: %dx%d needs %zu bytes of pixels, the "
                        "file has %zu", path, off, w, h, need, n - off);
    if ((st = ids_image_new(out, w, h, NULL, err))) return st;
    const unsigned char *p = b + off;
    for (size_t i = 0; i < (size_t)w * h; i++)
        for (int c = 0; c < 3; c++) {
            unsigned v = p[i * ch + (ch == 3 ? c : 0)];
            out->rgb[3 * i + c] = maxval == 255              ? (uint8_t)v
                                  : v >= (unsigned)maxval ? 255
                                                          : (uint8_t)((v * 255 + (unsigned)maxval / 2) / (unsigned)maxval);
        }
    return IDS_OK;
}

/* An uncompressed BMP must hold every row its header declares (stb would otherwise read a short
 * file's missing rows one byte at a time). */
static ids_status bmp_check(const unsigned char *b, size_t n, const char *path, int w, int h, ids_err *err) {
    if (n < 30) return ids__err(err, IDS_ERR_FORMAT, "%s: truncated BMP header", path);
    const uint32_t off = ids__rd32(b + 10), hsz = ids__rd32(b + 14);
    const int bpp = hsz == 12 ? ids__rd16(b + 24) : ids__rd16(b + 28);
    const uint32_t comp = hsz == 12 || n < 34 ? 0 : ids__rd32(b + 30);
    if (comp != 0 && comp != 3) return IDS_OK; /* compressed: stb refuses those it cannot read */
    const uint64_t stride = ((uint64_t)w * (uint64_t)bpp + 31) / 32 * 4, need = stride * (uint64_t)h;
    if (off > n || n - off < need)
        return ids__err(err, IDS_ERR_FORMAT, "%s: truncated BMP: %dx%d at %d bits needs %llu bytes of pixels from offset "
                        "%u, the file has %zu bytes", path, w, h, bpp, (unsigned long long)need, off, n);
    return IDS_OK;
}

/* The largest file read as an image: 8 bytes a pixel of the budget (16-bit RGBA PNG stored
 * uncompressed) and 16 MiB for chunks and metadata. */
static size_t max_file_bytes(int64_t budget) {
    const uint64_t m = (uint64_t)budget * 8 + (16u << 20);
    return m < (uint64_t)INT_MAX ? (size_t)m : (size_t)INT_MAX;
}

ids_status ids_image_load(ids_image *out, const char *path, ids_err *err) {
    out->rgb = NULL;
    out->w = out->h = 0;
    int64_t budget;
    ids_status st = max_pixels(&budget, err);
    if (st) return st;
    FILE *f = fopen(path, "rb");
    if (!f) return ids__err(err, IDS_ERR_IO, "%s: cannot open image: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ids__err(err, IDS_ERR_IO, "%s: cannot open image: not a regular file", path);
    }
    const size_t n = (size_t)sb.st_size;
    unsigned char head[16] = {0};
    const size_t nh = fread(head, 1, sizeof head, f);
    img_format fmt = IMG_PNG;
    if ((st = sniff(head, nh, path, &fmt, err))) {
        fclose(f);
        return st;
    }
    if (n > max_file_bytes(budget)) {
        fclose(f);
        return ids__err(err, IDS_ERR_RANGE, "%s: %zu bytes is more than any image within the pixel budget of %lld "
                        "takes (%zu bytes)", path, n, (long long)budget, max_file_bytes(budget));
    }
    unsigned char *b = ids__malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    memcpy(b, head, nh);
    const size_t got = nh + (n > nh ? fread(b + nh, 1, n - nh, f) : 0);
    fclose(f);
    if (got != n) {
        free(b);
        return ids__err(err, IDS_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    if (fmt == IMG_PNM) {
        st = pnm_load(b, n, path, out, err);
        free(b);
        return st;
    }
    /* dimensions from the header, checked before a single pixel is decoded */
    int w, h, ch;
    if (!stbi_info_from_memory(b, (int)n, &w, &h, &ch)) {
        st = ids__err(err, IDS_ERR_FORMAT, "%s: cannot decode image: %s header: %s" SUPPORTED, path, k_format_names[fmt],
                      reason(stbi_failure_reason()));
    } else if (!(st = ids_image_check_size(w, h, path, err)) && fmt == IMG_BMP) {
        st = bmp_check(b, n, path, w, h, err);
    } else if (!st && fmt == IMG_GIF && (double)w * h > 10923.0 * (double)n) {
        /* LZW codes are at least 3 bits and stand for at most 4096 pixels: no byte of a GIF holds more
         * than 4096 * 8 / 3 pixels, while stb fills the whole screen whatever the frames hold */
        st = ids__err(err, IDS_ERR_FORMAT, "%s: GIF declares %dx%d pixels in %zu bytes, more than its compression can "
                      "hold", path, w, h, n);
    }
    unsigned char *d = NULL;
    int dw = 0, dh = 0;
    if (!st && !(d = stbi_load_from_memory(b, (int)n, &dw, &dh, &ch, 3)))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: cannot decode image: %s: %s" SUPPORTED, path, k_format_names[fmt],
                      reason(stbi_failure_reason()));
    free(b);
    if (!st && (dw != w || dh != h))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: decoded %dx%d pixels, the header says %dx%d", path, dw, dh, w, h);
    if (!st && !(st = ids_image_new(out, w, h, NULL, err))) memcpy(out->rgb, d, (size_t)w * h * 3);
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

ids_status ids_image_write_jpeg(const ids_image *img, const char *path, int quality, ids_err *err) {
    membuf m = {0};
    if (quality < 1 || quality > 100) return ids__err(err, IDS_ERR_ARG, "%s: JPEG quality %d is outside 1..100", path, quality);
    if (!stbi_write_jpg_to_func(mem_write, &m, img->w, img->h, 3, img->rgb, quality) || m.oom) {
        free(m.p);
        return ids__err(err, IDS_ERR_NOMEM, "%s: cannot encode JPEG: out of memory", path);
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

static double triangle(double x) { /* Pillow's BILINEAR filter */
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

/* Coefficients for resampling in_size -> out_size: for output i, taps [bounds[2i], +bounds[2i+1]).
 * Filter: bicubic (support 2) or, with `linear`, the triangle (support 1). */
static int precompute(int in_size, int out_size, bool linear, int **bounds_out, int **kk_out, int *ksize_out) {
    const double support0 = linear ? 1.0 : 2.0;
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
            double w = linear ? triangle((x + xmin - center + 0.5) * ss) : bicubic((x + xmin - center + 0.5) * ss);
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

static ids_status resample(const ids_image *src, int w, int h, bool linear, ids_image *dst, ids_err *err) {
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
        if (precompute(src->w, w, linear, &b, &kk, &ks)) return ids__err(err, IDS_ERR_NOMEM, "resize: out of memory");
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
    if (precompute(mid->h, h, linear, &b, &kk, &ks)) {
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

ids_status ids_image_resize_bicubic(const ids_image *src, int w, int h, ids_image *dst, ids_err *err) {
    return resample(src, w, h, false, dst, err);
}

ids_status ids_image_resize_bilinear(const ids_image *src, int w, int h, ids_image *dst, ids_err *err) {
    return resample(src, w, h, true, dst, err);
}
