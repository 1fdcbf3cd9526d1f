/* Stimulus sets with ground truth: grid, depth, near/far, between, video; mirror and recolour
 * variants; manifests; COCO-Spatial import. Every item is a pure function of (options, seed,
 * index), so a set can be regenerated, resumed or sampled at random. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/stimuli.h"
#include "base/internal.h"
#include "base/rng.h"

#include <cjson/cJSON.h>
#include <unistd.h>
#include <stdlib.h>
#include <strings.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

static const char *const k_set_names[IDS_SET_COUNT] = {"grid", "depth", "nearfar", "between", "video"};
static const float k_default_sizes[4] = {1.0f, 0.78f, 0.55f, 0.33f};
static const float k_distances[4] = {0.15f, 0.25f, 0.45f, 0.6f};
static const float k_lateral[3] = {-1.0f, 0.0f, 1.0f};
static const float k_depths[3] = {2.0f, 3.0f, 4.5f};

const char *ids_set_name(ids_set_kind k) { return k < IDS_SET_COUNT ? k_set_names[k] : NULL; }
int ids_set_from_name(const char *name) {
    for (int i = 0; i < IDS_SET_COUNT; i++)
        if (!strcmp(name, k_set_names[i])) return i;
    return -1;
}

void ids_stim_default_opts(ids_stim_opts *o) {
    memset(o, 0, sizeof *o);
    o->image_size = 224;
    o->grid = 4;
    o->frames = 8;
    o->near_threshold = 0.35f;
    o->repeats = 10;
    o->seed = 1;
}

/* ---- deterministic randomness: one SplitMix64 stream per item (base/rng.h) ---- */
static float urand(uint64_t *s) { return (float)ids__rng_splitmix_unit(s); } /* [0, 1) */
static float srand1(uint64_t *s) { return 2.0f * urand(s) - 1.0f; }         /* [-1, 1) */

/* ---- option resolution ---- */
typedef struct {
    int S, G, n_sizes, n_obj, frames, repeats;
    const float *sizes;
    int objs[16];
    int n_tuples; /* object pairs (triples for between) */
    int tuple_len;
} plan;

static int tuple_at(const plan *p, bool all, int t, int out[3]) {
    if (!all) {
        for (int k = 0; k < p->tuple_len; k++) out[k] = p->objs[k];
        return 0;
    }
    int k = 0;
    for (int a = 0; a < p->n_obj; a++)
        for (int b = 0; b < p->n_obj; b++) {
            if (b == a) continue;
            if (p->tuple_len == 2) {
                if (k++ == t) {
                    out[0] = p->objs[a];
                    out[1] = p->objs[b];
                    return 0;
                }
                continue;
            }
            for (int c = 0; c < p->n_obj; c++) {
                if (c == a || c == b) continue;
                if (k++ == t) {
                    out[0] = p->objs[a];
                    out[1] = p->objs[b];
                    out[2] = p->objs[c];
                    return 0;
                }
            }
        }
    return -1;
}

static ids_status make_plan(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, plan *p,
                            int *count, ids_err *err) {
    memset(p, 0, sizeof *p);
    if (kind >= IDS_SET_COUNT) return ids__err(err, IDS_ERR_ARG, "unknown stimulus set %d", (int)kind);
    p->S = o->image_size;
    p->G = o->grid;
    p->frames = o->frames;
    p->repeats = o->repeats > 0 ? o->repeats : 10;
    if (p->S < 16 || p->S > 8192) return ids__err(err, IDS_ERR_RANGE, "image size %d is outside 16..8192", p->S);
    if (p->G < 1 || p->S / p->G < 4)
        return ids__err(err, IDS_ERR_RANGE, "a %dx%d grid does not fit a %d px image (cells under 4 px)", p->G,
                        p->G, p->S);
    if (kind == IDS_SET_GRID && p->G < 2)
        return ids__err(err, IDS_ERR_RANGE, "a %dx%d grid cannot hold two objects in different cells", p->G, p->G);
    p->sizes = o->n_sizes ? o->sizes : k_default_sizes;
    p->n_sizes = o->n_sizes ? o->n_sizes : 4;
    for (int i = 0; i < p->n_sizes; i++)
        if (!(p->sizes[i] > 0.05f && p->sizes[i] <= 1.0f))
            return ids__err(err, IDS_ERR_RANGE, "object size %g is not a fraction of a cell in (0.05, 1]",
                            (double)p->sizes[i]);
    if (o->jitter_pos < 0 || o->jitter_pos > 0.45f)
        return ids__err(err, IDS_ERR_RANGE, "position jitter %g is outside 0..0.45 of a cell (objects would leave "
                        "their cells)", (double)o->jitter_pos);
    if (o->jitter_size < 0 || o->jitter_size > 0.5f)
        return ids__err(err, IDS_ERR_RANGE, "size jitter %g is outside 0..0.5", (double)o->jitter_size);
    p->tuple_len = kind == IDS_SET_BETWEEN ? 3 : 2;
    if (o->n_objects) {
        if (o->n_objects > 16) return ids__err(err, IDS_ERR_RANGE, "at most 16 objects");
        for (int i = 0; i < o->n_objects; i++) {
            if (o->objects[i] < 0 || o->objects[i] >= ids_catalog_count(c))
                return ids__err(err, IDS_ERR_RANGE, "object index %d is not in the catalog", o->objects[i]);
            for (int k = 0; k < i; k++)
                if (o->objects[k] == o->objects[i])
                    return ids__err(err, IDS_ERR_ARG, "object '%s' is listed twice", ids_catalog_name(c, o->objects[i]));
            p->objs[i] = o->objects[i];
        }
        p->n_obj = o->n_objects;
    } else {
        p->objs[0] = ids_catalog_builtin(0, 0); /* red circle */
        p->objs[1] = ids_catalog_builtin(2, 1); /* blue square */
        p->objs[2] = ids_catalog_builtin(1, 2); /* green triangle */
        p->n_obj = p->tuple_len;
    }
    if (p->n_obj < p->tuple_len)
        return ids__err(err, IDS_ERR_ARG, "the %s set needs %d distinct objects, %d given", k_set_names[kind],
                        p->tuple_len, p->n_obj);
    for (int i = 0; i < p->n_obj; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(ids_catalog_word(c, p->objs[i]), ids_catalog_word(c, p->objs[k])))
                return ids__err(err, IDS_ERR_ARG, "objects '%s' and '%s' are named by the same word '%s': the "
                                "question could not tell them apart", ids_catalog_name(c, p->objs[k]),
                                ids_catalog_name(c, p->objs[i]), ids_catalog_word(c, p->objs[i]));
    if (o->all_pairs)
        p->n_tuples = p->tuple_len == 2 ? p->n_obj * (p->n_obj - 1) : p->n_obj * (p->n_obj - 1) * (p->n_obj - 2);
    else
        p->n_tuples = 1;
    int per = 0;
    switch (kind) {
    case IDS_SET_GRID: per = p->G * p->G * (p->G * p->G - 1) * p->n_sizes; break;
    case IDS_SET_DEPTH: per = 36; break;
    case IDS_SET_NEARFAR: per = 4 * p->repeats; break;
    case IDS_SET_BETWEEN: per = 2 * p->repeats; break;
    case IDS_SET_VIDEO:
        if (p->frames < 3 || p->frames > 64)
            return ids__err(err, IDS_ERR_RANGE, "a video needs 3..64 frames (objects appear at frames 1..T-1), "
                            "%d asked", p->frames);
        per = (p->frames - 1) * (p->frames - 2);
        break;
    default: break;
    }
    if ((int64_t)per * p->n_tuples > INT32_MAX) return ids__err(err, IDS_ERR_RANGE, "set too large");
    *count = per * p->n_tuples;
    return IDS_OK;
}

ids_status ids_stim_count(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, int *n, ids_err *err) {
    plan p;
    return make_plan(kind, o, c, &p, n, err);
}

void ids_stim_free(ids_stim *s) {
    if (!s) return;
    for (int f = 0; s->frames && f < s->n_frames; f++) ids_image_free(&s->frames[f]);
    free(s->frames);
    s->frames = NULL;
    s->n_frames = 0;
}

static ids_status background(const ids_stim_opts *o, int S, ids_image *img, ids_err *err) {
    if (o->bg_image) return ids_image_resize_bicubic(o->bg_image, S, S, img, err);
    return ids_image_new(img, S, S, o->bg, err);
}

/* Draw every frame from the placements (objects invisible before their appearance frame). */
static ids_status render(const ids_stim_opts *o, const ids_catalog *c, int S, ids_stim *s, ids_err *err) {
    s->frames = ids__calloc((size_t)s->n_frames, sizeof(ids_image));
    if (!s->frames) return ids__err(err, IDS_ERR_NOMEM, "stimulus: out of memory");
    for (int f = 0; f < s->n_frames; f++) {
        ids_status st = background(o, S, &s->frames[f], err);
        if (st) return st;
        if (s->kind == IDS_SET_DEPTH) { /* floor below the horizon, far objects drawn first */
            int hy = (int)(0.3f * (float)S);
            for (int y = hy; y < S; y++) {
                uint8_t g = (uint8_t)(50 + 40 * (y - hy) / (S - hy));
                for (int x = 0; x < S; x++) memset(s->frames[f].rgb + ((size_t)y * S + x) * 3, g, 3);
            }
        }
        ids_placed pl[3];
        int order[3] = {0, 1, 2};
        if (s->kind == IDS_SET_DEPTH && s->n_obj == 2 && s->obj[0].depth < s->obj[1].depth) order[0] = 1, order[1] = 0;
        for (int k = 0; k < s->n_obj; k++) {
            pl[k] = s->obj[order[k]].p;
            pl[k].visible = f >= s->obj[order[k]].appear;
        }
        ids_scene_draw(c, &s->frames[f], pl, s->n_obj);
    }
    return IDS_OK;
}

static void set_truth(ids_stim *s, float thr_px) {
    const ids_stim_obj *a = &s->obj[0], *b = &s->obj[1];
    memset(s->has, 0, sizeof s->has);
    float dx = a->p.cx - b->p.cx, dy = a->p.cy - b->p.cy;
    bool grid_cells = a->cell_x >= 0 && b->cell_x >= 0;
    s->has[IDS_REL_LEFT_RIGHT] = grid_cells ? a->cell_x != b->cell_x : fabsf(dx) > 1.0f;
    s->truth[IDS_REL_LEFT_RIGHT] = dx < 0;
    s->has[IDS_REL_ABOVE_BELOW] = grid_cells ? a->cell_y != b->cell_y : fabsf(dy) > 1.0f;
    s->truth[IDS_REL_ABOVE_BELOW] = dy < 0;
    if (s->kind == IDS_SET_DEPTH) {
        s->has[IDS_REL_FRONT_BEHIND] = a->depth != b->depth;
        s->truth[IDS_REL_FRONT_BEHIND] = a->depth < b->depth;
    }
    if (s->kind == IDS_SET_NEARFAR) {
        s->has[IDS_REL_NEAR_FAR] = true;
        s->truth[IDS_REL_NEAR_FAR] = sqrtf(dx * dx + dy * dy) < thr_px;
    }
    if (s->kind == IDS_SET_VIDEO) {
        s->has[IDS_REL_BEFORE_AFTER] = a->appear != b->appear;
        s->truth[IDS_REL_BEFORE_AFTER] = a->appear < b->appear;
    }
}

static void clamp_inside(ids_placed *p, int S) {
    float h = p->size * 0.5f;
    if (p->cx < h) p->cx = h;
    if (p->cy < h) p->cy = h;
    if (p->cx > (float)S - h) p->cx = (float)S - h;
    if (p->cy > (float)S - h) p->cy = (float)S - h;
}

/* Placements of each set for item r of its tuple (rng: the item's stream, drawn in a fixed order). */
static void place_grid(const plan *p, const ids_stim_opts *o, int r, uint64_t *rng, ids_stim *out) {
    const float cell = (float)p->S / (float)p->G;
    const int nc = p->G * p->G;
    int size_i = r % p->n_sizes, cp = r / p->n_sizes;
    int ca = cp / (nc - 1), cb = cp % (nc - 1);
    if (cb >= ca) cb++;
    const int cells[2] = {ca, cb};
    for (int k = 0; k < 2; k++) {
        ids_stim_obj *ob = &out->obj[k];
        ob->cell_x = cells[k] % p->G;
        ob->cell_y = cells[k] / p->G;
        ob->p.size = p->sizes[size_i] * cell * (1.0f + o->jitter_size * srand1(rng));
        if (ob->p.size > cell) ob->p.size = cell;
        ob->p.cx = ((float)ob->cell_x + 0.5f + o->jitter_pos * srand1(rng)) * cell;
        ob->p.cy = ((float)ob->cell_y + 0.5f + o->jitter_pos * srand1(rng)) * cell;
    }
}

static void place_depth(const plan *p, const ids_stim_opts *o, int r, uint64_t *rng, ids_stim *out) {
    const float S = (float)p->S;
    int k = 0, a = -1, b = -1;
    for (int i = 0; i < 9 && a < 0; i++)
        for (int j = 0; j < 9; j++)
            if (i % 3 != j % 3 && i / 3 != j / 3 && k++ == r) {
                a = i;
                b = j;
                break;
            }
    const int pos[2] = {a, b};
    const float f = 0.9f * S, hy = 0.3f * S;
    for (int q = 0; q < 2; q++) {
        ids_stim_obj *ob = &out->obj[q];
        ob->lateral = k_lateral[pos[q] % 3];
        ob->depth = k_depths[pos[q] / 3];
        ob->p.size = f * 0.6f / ob->depth * (1.0f + o->jitter_size * srand1(rng));
        ob->p.cx = 0.5f * S + f * 0.7f * ob->lateral / ob->depth;
        ob->p.cy = hy + f / ob->depth - 0.5f * ob->p.size;
    }
}

static void place_nearfar(const plan *p, int r, uint64_t *rng, ids_stim *out) {
    const float S = (float)p->S;
    const float d = k_distances[r / p->repeats] * S, size = 0.12f * S;
    for (int tries = 0; tries < 1000; tries++) {
        float bx = size + urand(rng) * (S - 2 * size), by = size + urand(rng) * (S - 2 * size);
        float ang = 2.0f * (float)M_PI * urand(rng);
        float ax = bx + d * cosf(ang), ay = by + d * sinf(ang);
        if (ax < size * 0.5f || ay < size * 0.5f || ax > S - size * 0.5f || ay > S - size * 0.5f) continue;
        out->obj[0].p.cx = ax, out->obj[0].p.cy = ay;
        out->obj[1].p.cx = bx, out->obj[1].p.cy = by;
        break;
    }
    out->obj[0].p.size = out->obj[1].p.size = size;
}

/* Also sets the between truth, from the final (clamped) geometry: A projects inside BC and lies
 * near the line. */
static void place_between(const plan *p, int r, uint64_t *rng, ids_stim *out) {
    const float S = (float)p->S;
    const bool yes = (r / p->repeats) % 2 == 0;
    const float size = 0.12f * S;
    float bx = 0, by = 0, cx = 0, cy = 0;
    for (int tries = 0; tries < 1000; tries++) {
        bx = size + urand(rng) * (S - 2 * size), by = size + urand(rng) * (S - 2 * size);
        cx = size + urand(rng) * (S - 2 * size), cy = size + urand(rng) * (S - 2 * size);
        if (hypotf(cx - bx, cy - by) >= 0.55f * S) break;
    }
    float t = 0.35f + 0.3f * urand(rng), len = hypotf(cx - bx, cy - by);
    float nx = -(cy - by) / len, ny = (cx - bx) / len;
    float off = yes ? 0.03f * S * srand1(rng) : (urand(rng) < 0.5f ? -1.0f : 1.0f) * (0.22f + 0.08f * urand(rng)) * S;
    out->obj[0].p.cx = bx + t * (cx - bx) + off * nx;
    out->obj[0].p.cy = by + t * (cy - by) + off * ny;
    out->obj[1].p.cx = bx, out->obj[1].p.cy = by;
    out->obj[2].p.cx = cx, out->obj[2].p.cy = cy;
    for (int k = 0; k < 3; k++) out->obj[k].p.size = size;
    clamp_inside(&out->obj[0].p, p->S);
    float ux = out->obj[0].p.cx - bx, uy = out->obj[0].p.cy - by;
    float proj = (ux * (cx - bx) + uy * (cy - by)) / (len * len), perp = fabsf(ux * nx + uy * ny);
    out->has[IDS_REL_BETWEEN] = true;
    out->truth[IDS_REL_BETWEEN] = proj > 0.15f && proj < 0.85f && perp < 0.1f * S;
}

static ids_status place_video(const plan *p, int r, uint64_t *rng, ids_stim *out, ids_err *err) {
    const float cell = (float)p->S / (float)p->G;
    const int T = p->frames;
    int i = r / (T - 2) + 1, j = r % (T - 2) + 1;
    if (j >= i) j++;
    out->n_frames = T;
    const int nc = p->G * p->G;
    int ca = (int)(ids__rng_splitmix(rng) % (uint64_t)nc), cb = (int)(ids__rng_splitmix(rng) % (uint64_t)(nc - 1));
    if (p->G < 2) return ids__err(err, IDS_ERR_RANGE, "a video needs a grid of at least 2x2 cells");
    if (cb >= ca) cb++;
    const int cells[2] = {ca, cb}, appear[2] = {i, j};
    for (int q = 0; q < 2; q++) {
        ids_stim_obj *ob = &out->obj[q];
        ob->cell_x = cells[q] % p->G;
        ob->cell_y = cells[q] / p->G;
        ob->appear = appear[q];
        ob->p.size = 0.7f * cell;
        ob->p.cx = ((float)ob->cell_x + 0.5f) * cell;
        ob->p.cy = ((float)ob->cell_y + 0.5f) * cell;
    }
    return IDS_OK;
}

ids_status ids_stim_make(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, int index,
                         ids_stim *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    plan p;
    int count;
    ids_status st = make_plan(kind, o, c, &p, &count, err);
    if (st) return st;
    if (index < 0 || index >= count)
        return ids__err(err, IDS_ERR_RANGE, "%s item %d is outside 0..%d", k_set_names[kind], index, count - 1);
    uint64_t rng = o->seed * 0x100000001B3ull ^ ((uint64_t)(index + 1) * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)kind << 56);
    ids__rng_splitmix(&rng);
    out->kind = kind;
    out->index = index;
    out->grid = p.G;
    out->n_obj = p.tuple_len;
    out->n_frames = 1;
    const int per = count / p.n_tuples;
    int tup[3];
    tuple_at(&p, o->all_pairs, index / per, tup);
    int r = index % per;
    for (int k = 0; k < out->n_obj; k++) {
        out->obj[k].obj = tup[k];
        out->obj[k].cell_x = out->obj[k].cell_y = -1;
        out->obj[k].p.obj = tup[k];
        out->obj[k].p.visible = true;
        out->obj[k].p.rot = o->jitter_rot * srand1(&rng);
    }
    switch (kind) {
    case IDS_SET_GRID: place_grid(&p, o, r, &rng, out); break;
    case IDS_SET_DEPTH: place_depth(&p, o, r, &rng, out); break;
    case IDS_SET_NEARFAR: place_nearfar(&p, r, &rng, out); break;
    case IDS_SET_BETWEEN: place_between(&p, r, &rng, out); break;
    case IDS_SET_VIDEO: st = place_video(&p, r, &rng, out, err); break;
    default: break;
    }
    if (st) return st;
    for (int k = 0; k < out->n_obj; k++) clamp_inside(&out->obj[k].p, p.S);
    bool keep_between = out->has[IDS_REL_BETWEEN], between_truth = out->truth[IDS_REL_BETWEEN];
    set_truth(out, o->near_threshold * (float)p.S);
    if (kind == IDS_SET_BETWEEN) {
        memset(out->has, 0, sizeof out->has);
        out->has[IDS_REL_BETWEEN] = keep_between;
        out->truth[IDS_REL_BETWEEN] = between_truth;
    }
    st = render(o, c, p.S, out, err);
    if (st) ids_stim_free(out);
    return st;
}

static ids_status copy_stim(const ids_stim *s, ids_stim *out, bool with_frames, ids_err *err) {
    *out = *s;
    out->frames = NULL;
    if (!with_frames) return IDS_OK;
    out->frames = ids__calloc((size_t)s->n_frames, sizeof(ids_image));
    if (!out->frames) return ids__err(err, IDS_ERR_NOMEM, "stimulus: out of memory");
    for (int f = 0; f < s->n_frames; f++) {
        ids_status st = ids_image_new(&out->frames[f], s->frames[f].w, s->frames[f].h, NULL, err);
        if (st) {
            ids_stim_free(out);
            return st;
        }
        memcpy(out->frames[f].rgb, s->frames[f].rgb, (size_t)s->frames[f].w * s->frames[f].h * 3);
    }
    return IDS_OK;
}

ids_status ids_stim_mirror(const ids_stim *s, ids_stim *out, ids_err *err) {
    ids_status st = copy_stim(s, out, true, err);
    if (st) return st;
    const int S = s->frames[0].w;
    for (int f = 0; f < out->n_frames; f++) ids_image_mirror(&out->frames[f]);
    for (int k = 0; k < out->n_obj; k++) {
        ids_stim_obj *ob = &out->obj[k];
        ob->p.cx = (float)S - ob->p.cx;
        ob->p.rot = -ob->p.rot;
        ob->lateral = -ob->lateral;
        if (ob->cell_x >= 0) ob->cell_x = s->grid - 1 - ob->cell_x;
    }
    out->truth[IDS_REL_LEFT_RIGHT] = !s->truth[IDS_REL_LEFT_RIGHT];
    out->mirrored = !s->mirrored;
    return IDS_OK;
}

ids_status ids_stim_recolor(const ids_stim *s, const ids_stim_opts *o, const ids_catalog *c, ids_stim *out,
                            ids_err *err) {
    ids_status st = copy_stim(s, out, false, err);
    if (st) return st;
    const int nc = ids_catalog_n_colors();
    const int shift = 1 + (int)((o->seed + (uint64_t)s->index) % (uint64_t)(nc - 1));
    for (int k = 0; k < out->n_obj; k++) {
        int obj = out->obj[k].obj, col = -1;
        for (int q = 0; q < nc; q++)
            if (ids_catalog_recolor(c, obj, q) == obj) col = q;
        if (col < 0) continue; /* user sprites keep their pixels */
        out->obj[k].obj = out->obj[k].p.obj = ids_catalog_recolor(c, obj, (col + shift) % nc);
    }
    out->recolored = true;
    st = render(o, c, s->frames[0].w, out, err);
    if (st) {
        ids_stim_free(out);
        return st;
    }
    return IDS_OK; /* render() drew from the placements, so a mirrored item stays mirrored */
}

/* ---- manifests ---- */
/* Checked JSON building. cJSON allocates through its own allocator; each helper returns false when
 * an allocation failed (or o is NULL after an earlier failure), and the caller then discards the
 * whole tree and reports IDS_ERR_NOMEM. jadd and jpush take the item (deleted on failure). */
static bool jstr(cJSON *o, const char *k, const char *v) { return v && cJSON_AddStringToObject(o, k, v) != NULL; }
static bool jnum(cJSON *o, const char *k, double v) { return cJSON_AddNumberToObject(o, k, v) != NULL; }
static bool jadd(cJSON *o, const char *k, cJSON *item) {
    if (o && item && cJSON_AddItemToObject(o, k, item)) return true;
    cJSON_Delete(item);
    return false;
}
static bool jpush(cJSON *arr, cJSON *item) {
    if (arr && item && cJSON_AddItemToArray(arr, item)) return true;
    cJSON_Delete(item);
    return false;
}

/* One object of an item: role, name, word, cell, centre, box, size (and depth or appearance). */
static cJSON *stim_object(const ids_stim *s, const ids_catalog *c, int k) {
    static const char *const roles[3] = {"A", "B", "C"};
    const ids_stim_obj *ob = &s->obj[k];
    cJSON *o = cJSON_CreateObject();
    bool ok = jstr(o, "role", roles[k]) && jstr(o, "name", ids_catalog_name(c, ob->obj)) &&
              jstr(o, "word", ids_catalog_word(c, ob->obj));
    if (ok && ob->cell_x >= 0) {
        cJSON *cell = cJSON_AddObjectToObject(o, "cell");
        ok = jnum(cell, "x", ob->cell_x) && jnum(cell, "y", ob->cell_y);
    }
    const float h = ob->p.size * 0.5f;
    const double ctr[2] = {round(ob->p.cx * 100) / 100, round(ob->p.cy * 100) / 100};
    const double box[4] = {round((ob->p.cx - h) * 100) / 100, round((ob->p.cy - h) * 100) / 100,
                           round((ob->p.cx + h) * 100) / 100, round((ob->p.cy + h) * 100) / 100};
    ok = ok && jadd(o, "center", cJSON_CreateDoubleArray(ctr, 2)) && jadd(o, "box", cJSON_CreateDoubleArray(box, 4)) &&
         jnum(o, "size", round(ob->p.size * 100) / 100);
    if (ok && s->kind == IDS_SET_DEPTH) ok = jnum(o, "lateral", ob->lateral) && jnum(o, "depth", ob->depth);
    if (ok && s->kind == IDS_SET_VIDEO) ok = jnum(o, "appear", ob->appear);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* "questions": each relation the item supports, with its question, answer and wrong answer. */
static bool add_questions(cJSON *r, const ids_stim *s, const ids_catalog *c) {
    cJSON *qs = cJSON_AddObjectToObject(r, "questions");
    if (!qs) return false;
    const char *a = ids_catalog_name(c, s->obj[0].obj), *b = ids_catalog_name(c, s->obj[1].obj);
    const char *cc = s->n_obj > 2 ? ids_catalog_name(c, s->obj[2].obj) : NULL;
    for (int rel = 0; rel < IDS_REL_COUNT; rel++) {
        if (!s->has[rel]) continue;
        char *q = ids_question((ids_relation)rel, a, b, cc);
        cJSON *e = cJSON_AddObjectToObject(qs, ids_relation_name((ids_relation)rel));
        bool ok = jstr(e, "question", q) && jstr(e, "answer", ids_answer_word((ids_relation)rel, s->truth[rel])) &&
                  jstr(e, "wrong", ids_answer_word((ids_relation)rel, !s->truth[rel]));
        free(q);
        if (!ok) return false;
    }
    return true;
}

/* An item's manifest record; NULL when out of memory. */
static cJSON *stim_record(const ids_stim *s, const ids_catalog *c, const char *id, const char *file,
                          const char *const *frames, const char *variant_of, const char *variant) {
    cJSON *r = cJSON_CreateObject();
    bool ok = jstr(r, "id", id) && jstr(r, "set", ids_set_name(s->kind));
    if (ok && file) ok = jstr(r, "file", file);
    if (ok && frames) ok = jadd(r, "frames", cJSON_CreateStringArray(frames, s->n_frames));
    if (ok && variant_of) ok = jstr(r, "variant_of", variant_of) && jstr(r, "variant", variant);
    cJSON *objs = ok ? cJSON_AddArrayToObject(r, "objects") : NULL;
    ok = objs != NULL;
    for (int k = 0; ok && k < s->n_obj; k++) ok = jpush(objs, stim_object(s, c, k));
    ok = ok && add_questions(r, s, c);
    if (!ok) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static ids_status mkdir_p(const char *dir, ids_err *err) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return ids__err(err, IDS_ERR_IO, "%s: cannot create folder: %s", dir, strerror(errno));
    return IDS_OK;
}

static ids_status write_item(const ids_stim *s, const ids_catalog *c, const char *dir, const char *id,
                             const char *variant_of, const char *variant, bool mp4, cJSON *records, ids_err *err) {
    char path[1400], rel[256];
    ids_status st;
    if (s->n_frames == 1) {
        snprintf(rel, sizeof rel, "%s.png", id);
        snprintf(path, sizeof path, "%.1000s/%s", dir, rel);
        if ((st = ids_image_write_png(&s->frames[0], path, err))) return st;
        if (!jpush(records, stim_record(s, c, id, rel, NULL, variant_of, variant)))
            return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the manifest", id);
        return IDS_OK;
    }
    snprintf(path, sizeof path, "%.1000s/%s", dir, id);
    if ((st = mkdir_p(path, err))) return st;
    char names[64][96];
    const char *ptrs[64];
    for (int f = 0; f < s->n_frames && f < 64; f++) {
        snprintf(names[f], sizeof names[f], "%s/frame_%02d.png", id, f);
        ptrs[f] = names[f];
        snprintf(path, sizeof path, "%.1000s/%.95s", dir, names[f]);
        if ((st = ids_image_write_png(&s->frames[f], path, err))) return st;
    }
    cJSON *rec = stim_record(s, c, id, NULL, ptrs, variant_of, variant);
    if (!jpush(records, rec)) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the manifest", id);
    if (mp4) {
        snprintf(rel, sizeof rel, "%s.mp4", id);
        snprintf(path, sizeof path, "%.1000s/%s", dir, rel);
        if ((st = ids_video_write_mp4(s->frames, s->n_frames, 8, path, err))) return st;
        if (!jstr(rec, "video", rel)) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the manifest", id);
    }
    return IDS_OK;
}

static ids_status write_json(const char *path, cJSON *root, ids_err *err) {
    char *txt = cJSON_Print(root);
    if (!txt) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(txt);
    txt[n] = '\n'; /* replace the NUL: written with its length */
    const void *parts[1] = {txt};
    size_t sizes[1] = {n + 1};
    ids_status st = ids__write_atomic(path, parts, sizes, 1, err);
    free(txt);
    return st;
}

ids_status ids_stimuli_prov(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, bool mirror, bool recolor,
                            int limit, ids_prov **out, ids_err *err) {
    ids_status st = ids_prov_new(out, "stimuli", err);
    if (st) return st;
    ids_prov *p = *out;
    ids_prov_opt_str(p, "set", ids_set_name(kind));
    ids_prov_opt_int(p, "image_size", o->image_size);
    ids_prov_opt_int(p, "grid", o->grid);
    ids_prov_opt_nums(p, "sizes", o->sizes, o->sizes ? o->n_sizes : 0);
    const char *names[16];
    int n = 0;
    for (int i = 0; o->objects && i < o->n_objects && i < 16; i++) names[n++] = ids_catalog_name(c, o->objects[i]);
    ids_prov_opt_strs(p, "objects", names, n);
    ids_prov_opt_bool(p, "all_pairs", o->all_pairs);
    ids_prov_opt_num(p, "jitter_pos", o->jitter_pos);
    ids_prov_opt_num(p, "jitter_size", o->jitter_size);
    ids_prov_opt_num(p, "jitter_rot", o->jitter_rot);
    const float bg[3] = {o->bg[0], o->bg[1], o->bg[2]};
    ids_prov_opt_nums(p, "background", bg, 3);
    ids_prov_opt_bool(p, "background_image", o->bg_image != NULL);
    ids_prov_opt_int(p, "frames", o->frames);
    ids_prov_opt_num(p, "near_threshold", o->near_threshold);
    ids_prov_opt_int(p, "repeats", o->repeats);
    ids_prov_opt_bool(p, "mirror", mirror);
    ids_prov_opt_bool(p, "recolor", recolor);
    ids_prov_opt_int(p, "limit", limit);
    ids_prov_opt_bool(p, "mp4", o->write_mp4);
    ids_prov_run(p, o->seed, 1, "f32");
    return IDS_OK;
}

/* The files a manifest's records name ("file", "frames", "video"), added to names (NULL-safe). */
static void manifest_files(const cJSON *root, cJSON *names) {
    const cJSON *r, *f;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(root, "records")) {
        static const char *const keys[2] = {"file", "video"};
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, keys[k]);
            if (cJSON_IsString(v)) cJSON_AddItemToArray(names, cJSON_CreateString(v->valuestring));
        }
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r, "frames"))
            if (cJSON_IsString(f)) cJSON_AddItemToArray(names, cJSON_CreateString(f->valuestring));
    }
}

/* Remove the files an earlier manifest of out_dir named that the new one does not (and the frame
 * folders that leaves empty): a rerun with fewer items leaves no stale stimuli behind. Only names
 * without ".." are touched. */
static void remove_stale(const char *out_dir, const cJSON *old_root, const cJSON *new_root) {
    cJSON *old_names = cJSON_CreateArray(), *new_names = cJSON_CreateArray();
    if (old_names && new_names) {
        manifest_files(old_root, old_names);
        manifest_files(new_root, new_names);
        const cJSON *a, *b;
        cJSON_ArrayForEach(a, old_names) {
            bool kept = strstr(a->valuestring, "..") != NULL || a->valuestring[0] == '/';
            cJSON_ArrayForEach(b, new_names) if (!kept && !strcmp(a->valuestring, b->valuestring)) kept = true;
            if (kept) continue;
            char *path = ids__path_join(out_dir, a->valuestring);
            if (!path) break;
            remove(path);
            char *slash = strrchr(path, '/');
            if (slash && strchr(a->valuestring, '/')) { /* a frame: its folder goes once empty */
                *slash = 0;
                rmdir(path);
            }
            free(path);
        }
    }
    cJSON_Delete(old_names);
    cJSON_Delete(new_names);
}

ids_status ids_stimuli_write(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c,
                             const char *out_dir, bool mirror, bool recolor, int limit,
                             ids_progress_fn progress, void *user, ids_err *err) {
    return ids_stimuli_write_part(kind, o, c, out_dir, mirror, recolor, limit, 0, 0, progress, user, err);
}

ids_status ids_stimuli_write_part(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, const char *out_dir,
                                  bool mirror, bool recolor, int limit, int shard, int n_shards,
                                  ids_progress_fn progress, void *user, ids_err *err) {
    if (n_shards < 0 || (n_shards > 0 && (shard < 0 || shard >= n_shards)))
        return ids__err(err, IDS_ERR_ARG, "stimuli: shard %d/%d: the index must be in 0..%d", shard, n_shards, n_shards - 1);
    int n;
    ids_status st = ids_stim_count(kind, o, c, &n, err);
    if (st) return st;
    if (limit > 0 && limit < n) n = limit;
    if ((st = mkdir_p(out_dir, err))) return st;
    char *mpath = ids__path_join(out_dir, "manifest.json"), *old_txt = NULL;
    if (!mpath) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the manifest", out_dir);
    cJSON *old_root = ids__read_file(mpath, &old_txt, NULL, NULL) == IDS_OK ? cJSON_Parse(old_txt) : NULL;
    free(old_txt);
    ids_prov *prov = NULL;
    st = ids_stimuli_prov(kind, o, c, mirror, recolor, limit, &prov, err);
    if (!st) ids_prov_shard(prov, shard, n_shards);
    cJSON *root = st ? NULL : cJSON_CreateObject(), *records = NULL;
    if (!st) {
        bool ok = jstr(root, "format", "idscope.stimuli.v1") && jstr(root, "set", ids_set_name(kind)) &&
                  jnum(root, "seed", (double)o->seed) && jnum(root, "image_size", o->image_size) &&
                  jnum(root, "grid", o->grid);
        if (ok && kind == IDS_SET_VIDEO) ok = jnum(root, "frames", o->frames);
        if (ok && n_shards > 0) { /* a shard's part of the set (ids_stimuli_merge joins the parts) */
            cJSON *sh = cJSON_AddObjectToObject(root, "shard");
            ok = jnum(sh, "index", shard) && jnum(sh, "count", n_shards) && jnum(sh, "items", n);
        }
        records = ok ? cJSON_AddArrayToObject(root, "records") : NULL;
        if (!records) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the manifest", out_dir);
    }
    int step = n / 20 > 0 ? n / 20 : 1;
    for (int i = 0; i < n && !st; i++) {
        if (n_shards > 0 && i % n_shards != shard) continue; /* another shard's */
        ids_stim s;
        if ((st = ids_stim_make(kind, o, c, i, &s, err))) break;
        char id[64], vid[80];
        snprintf(id, sizeof id, "%s_%05d", ids_set_name(kind), i);
        st = write_item(&s, c, out_dir, id, NULL, NULL, o->write_mp4, records, err);
        if (!st && mirror) {
            ids_stim m;
            if (!(st = ids_stim_mirror(&s, &m, err))) {
                snprintf(vid, sizeof vid, "%s_mirror", id);
                st = write_item(&m, c, out_dir, vid, id, "mirror", o->write_mp4, records, err);
                ids_stim_free(&m);
            }
        }
        if (!st && recolor) {
            ids_stim rc;
            if (!(st = ids_stim_recolor(&s, o, c, &rc, err))) {
                snprintf(vid, sizeof vid, "%s_recolor", id);
                st = write_item(&rc, c, out_dir, vid, id, "recolor", o->write_mp4, records, err);
                ids_stim_free(&rc);
            }
        }
        ids_stim_free(&s);
        if (progress && ((i + 1) % step == 0 || i + 1 == n)) progress(ids_set_name(kind), i + 1, n, user);
    }
    if (!st) {
        ids_prov_finish(prov);
        cJSON *pj = ids__prov_json(prov, err);
        if (!pj || !cJSON_AddItemToObject(root, "provenance", pj)) {
            cJSON_Delete(pj);
            st = ids__err(err, IDS_ERR_NOMEM, "out of memory");
        }
    }
    if (!st) st = write_json(mpath, root, err);
    if (!st && old_root) remove_stale(out_dir, old_root, root);
    cJSON_Delete(root);
    cJSON_Delete(old_root);
    ids_prov_free(prov);
    free(mpath);
    return st;
}

/* ---- COCO-Spatial ---- */
static const struct {
    const char *phrase;
    ids_relation rel;
    bool first;
} k_coco_rel[] = {{" to the left of ", IDS_REL_LEFT_RIGHT, true}, {" to the right of ", IDS_REL_LEFT_RIGHT, false},
                  {" left of ", IDS_REL_LEFT_RIGHT, true},        {" right of ", IDS_REL_LEFT_RIGHT, false},
                  {" above ", IDS_REL_ABOVE_BELOW, true},         {" below ", IDS_REL_ABOVE_BELOW, false},
                  {" under ", IDS_REL_ABOVE_BELOW, false},        {" on top of ", IDS_REL_ABOVE_BELOW, true}};

static void strip_article(char *s) {
    static const char *const arts[] = {"a ", "an ", "the "};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(arts[i]);
        if (!strncmp(s, arts[i], n)) {
            memmove(s, s + n, strlen(s + n) + 1);
            return;
        }
    }
}

/* "A photo of a dog to the left of a person" -> subject, reference, relation. */
static bool parse_caption(const char *cap, char *subj, char *ref, size_t n, ids_relation *rel, bool *first) {
    char s[512];
    size_t k = 0;
    for (; cap[k] && k < sizeof s - 1; k++) s[k] = (char)tolower((unsigned char)cap[k]);
    s[k] = 0;
    while (k > 0 && (s[k - 1] == '.' || s[k - 1] == ' ')) s[--k] = 0;
    char *body = s;
    if (!strncmp(body, "a photo of ", 11)) body += 11;
    for (size_t i = 0; i < sizeof k_coco_rel / sizeof *k_coco_rel; i++) {
        char *hit = strstr(body, k_coco_rel[i].phrase);
        if (!hit) continue;
        *hit = 0;
        snprintf(subj, n, "%s", body);
        snprintf(ref, n, "%s", hit + strlen(k_coco_rel[i].phrase));
        strip_article(subj);
        strip_article(ref);
        *rel = k_coco_rel[i].rel;
        *first = k_coco_rel[i].first;
        return *subj && *ref;
    }
    return false;
}

/* A COCO instances file: its images, annotations and categories (borrowed from root). */
typedef struct coco_inst {
    cJSON *root;
    const cJSON *images, *anns, *cats;
} coco_inst;

static ids_status coco_inst_load(const char *path, coco_inst *ci, ids_err *err) {
    memset(ci, 0, sizeof *ci);
    char *txt;
    ids_status st = ids__read_file(path, &txt, NULL, err);
    if (st) return st;
    ci->root = cJSON_Parse(txt);
    free(txt);
    ci->images = cJSON_GetObjectItemCaseSensitive(ci->root, "images");
    ci->anns = cJSON_GetObjectItemCaseSensitive(ci->root, "annotations");
    ci->cats = cJSON_GetObjectItemCaseSensitive(ci->root, "categories");
    if (!cJSON_IsObject(ci->root) || !cJSON_IsArray(ci->images) || !cJSON_IsArray(ci->anns) || !cJSON_IsArray(ci->cats)) {
        cJSON_Delete(ci->root);
        memset(ci, 0, sizeof *ci);
        return ids__err(err, IDS_ERR_FORMAT, "%s: not a COCO instances file (an object with \"images\", \"annotations\" and "
                        "\"categories\" lists)", path);
    }
    return IDS_OK;
}

/* An integer member checked before conversion; def when absent or unusable. */
static long long coco_int(const cJSON *o, const char *key, long long def) {
    long long v;
    return ids__json_int(o, key, 0, 999999999999ll, def, &v, NULL) ? def : v;
}

/* The box of `name` in image `image_id`: the annotations of the category named so (else of the
 * category named by its last word), the largest. *n_inst: how many; a note when there is none. */
static bool coco_box(const coco_inst *ci, long image_id, const char *name, double box[4], int *n_inst, char *note, size_t nn) {
    *n_inst = 0;
    const char *lw = strrchr(name, ' ');
    lw = lw ? lw + 1 : name;
    /* the category named so; else named by the object's last word; else whose last word that is
     * ("table": "dining table") */
    long long cat_ids[3][64];
    int n_ids[3] = {0, 0, 0};
    const cJSON *c;
    cJSON_ArrayForEach(c, ci->cats) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
        const long long id = coco_int(c, "id", -1);
        if (!cJSON_IsString(nm) || id < 0) continue;
        const char *clw = strrchr(nm->valuestring, ' ');
        clw = clw ? clw + 1 : nm->valuestring;
        if (!strcasecmp(nm->valuestring, name) && n_ids[0] < 64) cat_ids[0][n_ids[0]++] = id;
        else if (!strcasecmp(nm->valuestring, lw) && n_ids[1] < 64) cat_ids[1][n_ids[1]++] = id;
        else if (!strcasecmp(clw, lw) && n_ids[2] < 64) cat_ids[2][n_ids[2]++] = id;
    }
    const int which = n_ids[0] ? 0 : n_ids[1] ? 1 : 2;
    if (!n_ids[which]) {
        snprintf(note, nn, "no COCO category named '%.100s'", name);
        return false;
    }
    double best = -1;
    const cJSON *a;
    cJSON_ArrayForEach(a, ci->anns) {
        if (coco_int(a, "image_id", -1) != image_id) continue;
        const long long cid = coco_int(a, "category_id", -1);
        bool match = false;
        for (int k = 0; k < n_ids[which]; k++) match |= cat_ids[which][k] == cid;
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(a, "bbox");
        if (!match || !cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) continue;
        double v[4];
        bool ok = true;
        for (int k = 0; k < 4 && ok; k++) ok = !ids__json_num(cJSON_GetArrayItem(bb, k), NULL, k < 2 ? -1e7 : 0, 1e7, 0, &v[k], NULL);
        if (!ok) continue;
        (*n_inst)++;
        if (v[2] * v[3] > best) {
            best = v[2] * v[3];
            box[0] = v[0], box[1] = v[1], box[2] = v[0] + v[2], box[3] = v[1] + v[3];
        }
    }
    if (!*n_inst) snprintf(note, nn, "no annotation of '%.100s' in image %ld", name, image_id);
    return *n_inst > 0;
}

/* A COCO-Spatial record: the image file, the two objects (with their boxes from ci when given), the
 * question and both captions. *n_boxes counts the objects that got a box. */
static cJSON *coco_record(int idx, const char *image_dir, long image_id, const char *subj, const char *ref,
                          ids_relation rel, bool first, const char *correct, const char *wrong, const coco_inst *ci,
                          int *n_boxes) {
    char file[1200], id[64];
    snprintf(id, sizeof id, "coco_%05d", idx);
    snprintf(file, sizeof file, "%.1000s/%012ld.jpg", image_dir, image_id);
    cJSON *r = cJSON_CreateObject();
    bool ok = jstr(r, "id", id) && jstr(r, "set", "coco_spatial") && jstr(r, "file", file) &&
              jnum(r, "image_id", (double)image_id);
    const cJSON *im;
    if (ok && ci) {
        cJSON_ArrayForEach(im, ci->images) {
            if (coco_int(im, "id", -1) != image_id) continue;
            const long long w = coco_int(im, "width", -1), h = coco_int(im, "height", -1);
            if (w > 0 && h > 0) ok = jnum(r, "width", (double)w) && jnum(r, "height", (double)h);
            break;
        }
    }
    cJSON *objs = ok ? cJSON_AddArrayToObject(r, "objects") : NULL;
    ok = objs != NULL;
    const char *nm[2] = {subj, ref}, *roles[2] = {"A", "B"};
    for (int k = 0; ok && k < 2; k++) {
        cJSON *o = cJSON_CreateObject();
        const char *lw = strrchr(nm[k], ' ');
        ok = jstr(o, "role", roles[k]) && jstr(o, "name", nm[k]) && jstr(o, "word", lw ? lw + 1 : nm[k]);
        double box[4];
        int n_inst = 0;
        char note[300];
        if (ok && ci && coco_box(ci, image_id, nm[k], box, &n_inst, note, sizeof note)) {
            const double ctr[2] = {0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])};
            ok = jadd(o, "box", cJSON_CreateDoubleArray(box, 4)) && jadd(o, "center", cJSON_CreateDoubleArray(ctr, 2)) &&
                 jnum(o, "instances", n_inst);
            if (ok && n_inst > 1) {
                snprintf(note, sizeof note, "the largest of %d", n_inst);
                ok = jstr(o, "box_from", note);
            }
            (*n_boxes)++;
        } else if (ok && ci) {
            ok = jstr(o, "box_missing", note);
        }
        ok = ok ? jpush(objs, o) : (cJSON_Delete(o), false);
    }
    cJSON *qs = ok ? cJSON_AddObjectToObject(r, "questions") : NULL;
    char *q = qs ? ids_question(rel, subj, ref, NULL) : NULL;
    cJSON *e = q ? cJSON_AddObjectToObject(qs, ids_relation_name(rel)) : NULL;
    ok = jstr(e, "question", q) && jstr(e, "answer", ids_answer_word(rel, first)) &&
         jstr(e, "wrong", ids_answer_word(rel, !first));
    free(q);
    cJSON *caps = ok ? cJSON_AddObjectToObject(r, "captions") : NULL;
    ok = jstr(caps, "correct", correct) && jstr(caps, "wrong", wrong);
    if (!ok) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

/* Why a row of coco_qa_two_obj.json cannot be used (NULL: it can, and its parts are filled in);
 * the reason is a constant or written into buf. */
static const char *coco_parse_row(const cJSON *row, long *image_id, char *subj, char *ref, size_t n,
                                  ids_relation *rel, bool *first, char *buf, size_t nbuf) {
    char wsubj[512], wref[512];
    ids_relation wrel;
    bool wfirst;
    cJSON *iid = cJSON_GetArrayItem(row, 0), *c1 = cJSON_GetArrayItem(row, 1), *c2 = cJSON_GetArrayItem(row, 2);
    *image_id = -1;
    if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) < 3) return "not a list of 3 items";
    const long long max_id = 999999999999ll; /* 12 digits: the file names are %012ld.jpg */
    if (cJSON_IsNumber(iid)) {
        long long v;
        ids_err e;
        if (ids__json_int(iid, NULL, 0, max_id, -1, &v, &e)) {
            snprintf(buf, nbuf, "image id: %.200s", e.msg);
            return buf;
        }
        *image_id = (long)v;
    } else if (cJSON_IsString(iid) && *iid->valuestring && strlen(iid->valuestring) <= 12 &&
               strspn(iid->valuestring, "0123456789") == strlen(iid->valuestring)) {
        *image_id = strtol(iid->valuestring, NULL, 10);
    }
    if (*image_id < 0) return "image id is not an integer in 0..999999999999";
    if (!cJSON_IsString(c1) || !cJSON_IsString(c2)) return "captions are not strings";
    if (!parse_caption(c1->valuestring, subj, ref, n, rel, first))
        return "correct caption has no known relation (left of, right of, above, below, under, on top of)";
    if (parse_caption(c2->valuestring, wsubj, wref, sizeof wsubj, &wrel, &wfirst) && wrel == *rel &&
        wfirst == *first && !strcmp(wsubj, subj))
        return "wrong caption states the same relation";
    return NULL;
}

ids_status ids_coco_spatial_convert(const char *json_path, const char *image_dir, const char *out_path,
                                    int *n_ok, int *n_skipped, ids_err *err) {
    return ids_coco_spatial_import(json_path, image_dir, NULL, out_path, n_ok, n_skipped, NULL, err);
}

ids_status ids_coco_spatial_import(const char *json_path, const char *image_dir, const char *instances_path,
                                   const char *out_path, int *n_ok, int *n_skipped, int *n_boxes, ids_err *err) {
    *n_ok = *n_skipped = 0;
    int boxes = 0;
    if (n_boxes) *n_boxes = 0;
    char *txt;
    ids_status rs = ids__read_file(json_path, &txt, NULL, err);
    if (rs) return rs;
    cJSON *in = cJSON_Parse(txt);
    free(txt);
    if (!cJSON_IsArray(in)) {
        cJSON_Delete(in);
        return ids__err(err, IDS_ERR_FORMAT, "%s: expected a JSON list of [image_id, correct_caption, "
                        "wrong_caption] rows", json_path);
    }
    coco_inst ci = {0};
    if (instances_path && (rs = coco_inst_load(instances_path, &ci, err))) {
        cJSON_Delete(in);
        return rs;
    }
    /* the images' folder as an absolute path when it exists: the manifest is read from elsewhere */
    char *abs_dir = realpath(image_dir, NULL);
    if (abs_dir) image_dir = abs_dir;
    cJSON *root = cJSON_CreateObject();
    bool ok = jstr(root, "format", "idscope.stimuli.v1") && jstr(root, "set", "coco_spatial") &&
              jstr(root, "source", json_path) && (!instances_path || jstr(root, "instances", instances_path));
    cJSON *records = ok ? cJSON_AddArrayToObject(root, "records") : NULL;
    cJSON *skipped = records ? cJSON_AddArrayToObject(root, "skipped") : NULL;
    ok = skipped != NULL;
    int idx = 0;
    cJSON *row;
    cJSON_ArrayForEach(row, in) {
        if (!ok) break;
        char subj[512], ref[512];
        ids_relation rel = IDS_REL_LEFT_RIGHT;
        bool first = true;
        long image_id;
        char why_buf[IDS_ERR_MSG_MAX];
        const char *why = coco_parse_row(row, &image_id, subj, ref, sizeof subj, &rel, &first, why_buf, sizeof why_buf);
        if (why) {
            ids__log(1, "coco-spatial: row %d skipped: %s", idx, why);
            cJSON *sk = cJSON_CreateObject();
            ok = jnum(sk, "index", idx) && jstr(sk, "reason", why);
            ok = ok ? jpush(skipped, sk) : (cJSON_Delete(sk), false);
            (*n_skipped)++;
            idx++;
            continue;
        }
        ok = jpush(records, coco_record(idx, image_dir, image_id, subj, ref, rel, first, cJSON_GetArrayItem(row, 1)->valuestring,
                                        cJSON_GetArrayItem(row, 2)->valuestring, instances_path ? &ci : NULL, &boxes));
        (*n_ok)++;
        idx++;
    }
    ids_status st = ok ? write_json(out_path, root, err)
                       : ids__err(err, IDS_ERR_NOMEM, "%s: out of memory converting %s", out_path, json_path);
    if (n_boxes) *n_boxes = boxes;
    cJSON_Delete(root);
    cJSON_Delete(in);
    cJSON_Delete(ci.root);
    free(abs_dir);
    return st;
}
