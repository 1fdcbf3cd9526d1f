/* Procedural sprites (shape x colour), user sprites, anti-aliased scene drawing, questions. */
#include "idscope/stimuli.h"
#include "base/internal.h"

#include <math.h>

static const char *const k_shapes[] = {"circle", "square", "triangle", "diamond", "cross",
                                       "star",   "hexagon", "heart",  "pentagon", "arrow"};
#define N_SHAPES 10
static const struct {
    const char *name;
    uint8_t rgb[3];
} k_colors[] = {{"red", {220, 40, 40}},     {"green", {40, 180, 60}}, {"blue", {50, 90, 230}},
                {"yellow", {230, 210, 40}}, {"purple", {150, 60, 200}}, {"orange", {240, 140, 30}},
                {"white", {240, 240, 240}}, {"cyan", {40, 200, 210}}};
#define N_COLORS 8

typedef struct {
    char name[64];
    char word[32];
    ids_image img; /* user sprite RGB */
    uint8_t *alpha; /* [h, w] */
} sprite;

struct ids_catalog {
    sprite *sp;
    int n_sp, cap_sp;
    char names[N_SHAPES * N_COLORS][32]; /* "red circle", ... */
};

int ids_catalog_n_shapes(void) { return N_SHAPES; }
int ids_catalog_n_colors(void) { return N_COLORS; }
int ids_catalog_builtin(int color, int shape) {
    return (color >= 0 && color < N_COLORS && shape >= 0 && shape < N_SHAPES) ? color * N_SHAPES + shape : -1;
}
const char *ids_catalog_color_name(int c) { return c >= 0 && c < N_COLORS ? k_colors[c].name : NULL; }
const char *ids_catalog_shape_name(int s) { return s >= 0 && s < N_SHAPES ? k_shapes[s] : NULL; }

ids_catalog *ids_catalog_new(void) {
    ids_catalog *c = ids__calloc(1, sizeof(ids_catalog));
    if (c)
        for (int i = 0; i < N_SHAPES * N_COLORS; i++)
            snprintf(c->names[i], sizeof c->names[i], "%s %s", k_colors[i / N_SHAPES].name, k_shapes[i % N_SHAPES]);
    return c;
}

void ids_catalog_free(ids_catalog *c) {
    if (!c) return;
    for (int i = 0; i < c->n_sp; i++) {
        ids_image_free(&c->sp[i].img);
        free(c->sp[i].alpha);
    }
    free(c->sp);
    free(c);
}

int ids_catalog_count(const ids_catalog *c) { return N_SHAPES * N_COLORS + c->n_sp; }

static const int BUILTIN = N_SHAPES * N_COLORS;

const char *ids_catalog_name(const ids_catalog *c, int obj) {
    if (obj < 0 || obj >= ids_catalog_count(c)) return NULL;
    return obj >= BUILTIN ? c->sp[obj - BUILTIN].name : c->names[obj];
}

const char *ids_catalog_word(const ids_catalog *c, int obj) {
    if (obj < 0 || obj >= ids_catalog_count(c)) return NULL;
    if (obj >= BUILTIN) return c->sp[obj - BUILTIN].word;
    return k_shapes[obj % N_SHAPES];
}

bool ids_catalog_color(const ids_catalog *c, int obj, uint8_t rgb[3]) {
    if (obj < 0 || obj >= BUILTIN) return false;
    (void)c;
    memcpy(rgb, k_colors[obj / N_SHAPES].rgb, 3);
    return true;
}

int ids_catalog_recolor(const ids_catalog *c, int obj, int color) {
    (void)c;
    if (obj < 0 || obj >= BUILTIN || color < 0 || color >= N_COLORS) return -1;
    return color * N_SHAPES + obj % N_SHAPES;
}

int ids_catalog_find(const ids_catalog *c, const char *name, ids_err *err) {
    for (int i = 0; i < ids_catalog_count(c); i++)
        if (!strcmp(ids_catalog_name(c, i), name)) return i;
    char shapes[256] = "", colors[128] = "";
    for (int i = 0; i < N_SHAPES; i++)
        snprintf(shapes + strlen(shapes), sizeof shapes - strlen(shapes), "%s%s", i ? ", " : "", k_shapes[i]);
    for (int i = 0; i < N_COLORS; i++)
        snprintf(colors + strlen(colors), sizeof colors - strlen(colors), "%s%s", i ? ", " : "", k_colors[i].name);
    ids__err(err, IDS_ERR_NOT_FOUND, "unknown object '%s': built-in objects are \"COLOUR SHAPE\" with colours "
             "%s and shapes %s%s", name, colors, shapes, c->n_sp ? ", plus the user sprites" : "");
    return -1;
}

ids_status ids_catalog_add_sprite(ids_catalog *c, const char *png_path, ids_err *err) {
    FILE *f = fopen(png_path, "rb");
    if (!f) return ids__err(err, IDS_ERR_IO, "%s: cannot open sprite", png_path);
    fclose(f);
    /* load RGBA through stb (declared here to keep stb out of the public header) */
    extern unsigned char *stbi_load(const char *, int *, int *, int *, int);
    extern void stbi_image_free(void *);
    extern const char *stbi_failure_reason(void);
    int w, h, ch;
    unsigned char *d = stbi_load(png_path, &w, &h, &ch, 4);
    if (!d) return ids__err(err, IDS_ERR_FORMAT, "%s: cannot decode sprite: %s", png_path, stbi_failure_reason());
    if (c->n_sp == c->cap_sp) {
        int cap = c->cap_sp ? 2 * c->cap_sp : 8;
        sprite *p = ids__realloc(c->sp, sizeof *p * (size_t)cap);
        if (!p) {
            stbi_image_free(d);
            return ids__err(err, IDS_ERR_NOMEM, "sprite: out of memory");
        }
        c->sp = p;
        c->cap_sp = cap;
    }
    sprite *s = &c->sp[c->n_sp];
    memset(s, 0, sizeof *s);
    const char *base = strrchr(png_path, '/');
    base = base ? base + 1 : png_path;
    snprintf(s->name, sizeof s->name, "%s", base);
    char *dot = strrchr(s->name, '.');
    if (dot) *dot = 0;
    for (char *p = s->name; *p; p++) if (*p == '_') *p = ' ';
    const char *lw = strrchr(s->name, ' ');
    snprintf(s->word, sizeof s->word, "%.31s", lw ? lw + 1 : s->name);
    ids_status st = ids_image_new(&s->img, w, h, NULL, err);
    s->alpha = st ? NULL : ids__malloc((size_t)w * h);
    if (st || !s->alpha) {
        ids_image_free(&s->img);
        stbi_image_free(d);
        return st ? st : ids__err(err, IDS_ERR_NOMEM, "sprite: out of memory");
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        memcpy(s->img.rgb + 3 * i, d + 4 * i, 3);
        s->alpha[i] = d[4 * i + 3];
    }
    stbi_image_free(d);
    c->n_sp++;
    return IDS_OK;
}

/* ---- shape tests in the object's box, coordinates u (right), v (down) in [-1, 1] ---- */
static bool in_poly(float u, float v, const float *xy, int n) {
    bool in = false;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        float xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
        if (((yi > v) != (yj > v)) && (u < (xj - xi) * (v - yi) / (yj - yi) + xi)) in = !in;
    }
    return in;
}

static void regular(float *xy, int n, float r, float phase) {
    for (int i = 0; i < n; i++) {
        float a = phase + 2.0f * (float)M_PI * (float)i / (float)n;
        xy[2 * i] = r * cosf(a);
        xy[2 * i + 1] = r * sinf(a);
    }
}

static bool inside(int shape, float u, float v) {
    float xy[40];
    switch (shape) {
    case 0: return u * u + v * v <= 0.96f;
    case 1: return fabsf(u) <= 0.82f && fabsf(v) <= 0.82f;
    case 2: {
        const float t[6] = {0.0f, -0.95f, 0.95f, 0.8f, -0.95f, 0.8f};
        return in_poly(u, v, t, 3);
    }
    case 3: return fabsf(u) + fabsf(v) <= 0.98f;
    case 4: return (fabsf(u) <= 0.32f && fabsf(v) <= 0.95f) || (fabsf(v) <= 0.32f && fabsf(u) <= 0.95f);
    case 5:
        for (int i = 0; i < 10; i++) {
            float a = -(float)M_PI / 2 + (float)M_PI * (float)i / 5.0f, r = i % 2 ? 0.42f : 0.98f;
            xy[2 * i] = r * cosf(a);
            xy[2 * i + 1] = r * sinf(a);
        }
        return in_poly(u, v, xy, 10);
    case 6: regular(xy, 6, 0.97f, 0.0f); return in_poly(u, v, xy, 6);
    case 7: { /* heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up */
        float x = u * 1.25f, y = -v * 1.25f + 0.15f;
        float q = x * x + y * y - 1.0f;
        return q * q * q - x * x * y * y * y <= 0.0f;
    }
    case 8: regular(xy, 5, 0.98f, -(float)M_PI / 2); return in_poly(u, v, xy, 5);
    case 9: {
        const float a[14] = {0.0f, -0.97f, 0.8f, -0.1f, 0.32f, -0.1f, 0.32f, 0.95f, -0.32f, 0.95f, -0.32f, -0.1f, -0.8f, -0.1f};
        return in_poly(u, v, a, 7);
    }
    }
    return false;
}

void ids_image_mirror(ids_image *img) {
    for (int y = 0; y < img->h; y++) {
        uint8_t *row = img->rgb + (size_t)y * img->w * 3;
        for (int x = 0; x < img->w / 2; x++)
            for (int k = 0; k < 3; k++) {
                uint8_t t = row[3 * x + k];
                row[3 * x + k] = row[3 * (img->w - 1 - x) + k];
                row[3 * (img->w - 1 - x) + k] = t;
            }
    }
}

void ids_image_hue_shift(ids_image *img, double theta, double freq, double phase) {
    const double ct = cos(theta), st = sin(theta);
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            uint8_t *p = img->rgb + ((size_t)y * img->w + x) * 3;
            const double r = p[0] / 255.0, g = p[1] / 255.0, b = p[2] / 255.0;
            const double mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b)), d = mx - mn;
            double h = 0, s = mx > 0 ? d / mx : 0;
            const double v = mx;
            if (d > 0) { /* HSV hue in [0, 1) */
                if (mx == r) h = fmod((g - b) / d, 6.0);
                else if (mx == g) h = (b - r) / d + 2;
                else h = (r - g) / d + 4;
                h /= 6;
                if (h < 0) h += 1;
            }
            /* the rainbow's hue at this pixel, mixed in along the shorter way round the circle */
            const double u = (double)x / img->w - 0.5, w = (double)y / img->h - 0.5;
            double gh = freq * (u * ct + w * st) + phase;
            gh -= floor(gh);
            double dh = gh - h;
            dh -= floor(dh + 0.5);
            h += IDS_HUE_SHIFT_STRENGTH * dh;
            h -= floor(h);
            s = fmin(1.0, s * IDS_HUE_SHIFT_SATURATION);
            /* back to RGB, value unchanged */
            const double hh = h * 6, c = v * s, xx = c * (1 - fabs(fmod(hh, 2.0) - 1)), m = v - c;
            double rgb[3];
            const int sector = (int)hh % 6;
            switch (sector) {
            case 0: rgb[0] = c, rgb[1] = xx, rgb[2] = 0; break;
            case 1: rgb[0] = xx, rgb[1] = c, rgb[2] = 0; break;
            case 2: rgb[0] = 0, rgb[1] = c, rgb[2] = xx; break;
            case 3: rgb[0] = 0, rgb[1] = xx, rgb[2] = c; break;
            case 4: rgb[0] = xx, rgb[1] = 0, rgb[2] = c; break;
            default: rgb[0] = c, rgb[1] = 0, rgb[2] = xx; break;
            }
            for (int k = 0; k < 3; k++) {
                const double q = (rgb[k] + m) * 255.0 + 0.5;
                p[k] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
}

void ids_scene_draw(const ids_catalog *c, ids_image *img, const ids_placed *objs, int n) {
    const int SS = 4;
    for (int k = 0; k < n; k++) {
        const ids_placed *o = &objs[k];
        if (!o->visible || o->obj < 0 || o->obj >= ids_catalog_count(c) || o->size <= 0) continue;
        const float half = o->size * 0.5f, ca = cosf(o->rot * (float)M_PI / 180.0f),
                    sa = sinf(o->rot * (float)M_PI / 180.0f);
        const float reach = half * 1.4143f; /* rotated box */
        int x0 = (int)floorf(o->cx - reach), x1 = (int)ceilf(o->cx + reach);
        int y0 = (int)floorf(o->cy - reach), y1 = (int)ceilf(o->cy + reach);
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 > img->w) x1 = img->w;
        if (y1 > img->h) y1 = img->h;
        const bool user = o->obj >= BUILTIN;
        const sprite *sp = user ? &c->sp[o->obj - BUILTIN] : NULL;
        uint8_t col[3] = {0, 0, 0};
        if (!user) memcpy(col, k_colors[o->obj / N_SHAPES].rgb, 3);
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                float acc[3] = {0, 0, 0}, cov = 0;
                for (int sy = 0; sy < SS; sy++)
                    for (int sx = 0; sx < SS; sx++) {
                        float px = (float)x + ((float)sx + 0.5f) / SS - o->cx;
                        float py = (float)y + ((float)sy + 0.5f) / SS - o->cy;
                        float u = (ca * px + sa * py) / half, v = (-sa * px + ca * py) / half;
                        if (u < -1 || u > 1 || v < -1 || v > 1) continue;
                        if (!user) {
                            if (inside(o->obj % N_SHAPES, u, v)) cov += 1.0f;
                            continue;
                        }
                        int ix = (int)((u + 1) * 0.5f * (float)sp->img.w), iy = (int)((v + 1) * 0.5f * (float)sp->img.h);
                        if (ix >= sp->img.w) ix = sp->img.w - 1;
                        if (iy >= sp->img.h) iy = sp->img.h - 1;
                        float a = sp->alpha[(size_t)iy * sp->img.w + ix] / 255.0f;
                        const uint8_t *pc = sp->img.rgb + ((size_t)iy * sp->img.w + ix) * 3;
                        for (int q = 0; q < 3; q++) acc[q] += a * pc[q];
                        cov += a;
                    }
                if (cov <= 0) continue;
                const float a = cov / (float)(SS * SS);
                uint8_t *dst = img->rgb + ((size_t)y * img->w + x) * 3;
                for (int q = 0; q < 3; q++) {
                    float fg = user ? acc[q] / cov : (float)col[q];
                    dst[q] = (uint8_t)lrintf(fg * a + (float)dst[q] * (1.0f - a));
                }
            }
    }
}

static const char *const k_rel_names[IDS_REL_COUNT] = {"left_right", "above_below", "front_behind",
                                                       "near_far", "between", "before_after"};
static const char *const k_answers[IDS_REL_COUNT][2] = {{"left", "right"}, {"above", "below"},
                                                        {"in front", "behind"}, {"near", "far"},
                                                        {"yes", "no"}, {"before", "after"}};

const char *ids_relation_name(ids_relation r) { return r < IDS_REL_COUNT ? k_rel_names[r] : NULL; }
const char *ids_answer_word(ids_relation r, bool first) { return r < IDS_REL_COUNT ? k_answers[r][first ? 0 : 1] : NULL; }

char *ids_question(ids_relation r, const char *a, const char *b, const char *c) {
    char buf[512];
    switch (r) {
    case IDS_REL_LEFT_RIGHT: snprintf(buf, sizeof buf, "Is the %s to the left or right of the %s?", a, b); break;
    case IDS_REL_ABOVE_BELOW: snprintf(buf, sizeof buf, "Is the %s above or below the %s?", a, b); break;
    case IDS_REL_FRONT_BEHIND: snprintf(buf, sizeof buf, "Is the %s in front of or behind the %s?", a, b); break;
    case IDS_REL_NEAR_FAR: snprintf(buf, sizeof buf, "Is the %s near or far from the %s?", a, b); break;
    case IDS_REL_BETWEEN: snprintf(buf, sizeof buf, "Is the %s between the %s and the %s?", a, b, c ? c : "?"); break;
    case IDS_REL_BEFORE_AFTER: snprintf(buf, sizeof buf, "Does the %s appear before or after the %s?", a, b); break;
    default: return NULL;
    }
    return ids__strdup(buf);
}
