/* idscope layer "stimuli": objects, scenes and stimulus sets with ground truth.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_STIMULI_H
#define IDSCOPE_STIMULI_H

#include "idscope/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Stimuli: objects, scenes and sets with ground truth                                          */

/* Object catalog: built-in procedural sprites ("red circle": colour x shape) and user sprites
 * (PNG with alpha, named after the file). */
typedef struct ids_catalog ids_catalog;

ids_catalog *ids_catalog_new(void);
void ids_catalog_free(ids_catalog *c);
/* Add a user sprite; its name is the file name without extension (underscores become spaces). */
ids_status ids_catalog_add_sprite(ids_catalog *c, const char *png_path, ids_err *err);
/* Index of an object by name ("red circle", "frog"), or -1 (err lists what exists). */
int ids_catalog_find(const ids_catalog *c, const char *name, ids_err *err);
int ids_catalog_count(const ids_catalog *c);
const char *ids_catalog_name(const ids_catalog *c, int obj);
/* The word that names the object in prompts: the last word of its name ("circle"). */
const char *ids_catalog_word(const ids_catalog *c, int obj);
/* Colour of a built-in object's fill (false for user sprites). */
bool ids_catalog_color(const ids_catalog *c, int obj, uint8_t rgb[3]);
int ids_catalog_n_shapes(void);
int ids_catalog_n_colors(void);
/* Built-in object index for (colour, shape). */
int ids_catalog_builtin(int color, int shape);
const char *ids_catalog_color_name(int color);
const char *ids_catalog_shape_name(int shape);
/* Same shape (or sprite) in another built-in colour; -1 for user sprites. */
int ids_catalog_recolor(const ids_catalog *c, int obj, int color);

typedef struct ids_placed {
    int obj;        /* catalog index */
    float cx, cy;   /* centre in pixels */
    float size;     /* side of the object's square box in pixels */
    float rot;      /* rotation in degrees */
    bool visible;
} ids_placed;

/* Draw objects (in order) onto img, anti-aliased (4x4 supersampling). */
void ids_scene_draw(const ids_catalog *c, ids_image *img, const ids_placed *objs, int n);
/* Mirror an image left-right in place. */
void ids_image_mirror(ids_image *img);
/* The paper's attribute control (its reading of recolor_with_random_rainbow): a rainbow hue gradient
 * across the whole image (direction theta radians, freq cycles over the image, phase in [0, 1)) mixed
 * into each pixel's HSV hue with strength IDS_HUE_SHIFT_STRENGTH along the shorter way round,
 * saturation times IDS_HUE_SHIFT_SATURATION (at most 1), value unchanged; in place. Black stays black. */
#define IDS_HUE_SHIFT_STRENGTH 0.75
#define IDS_HUE_SHIFT_SATURATION 1.1
void ids_image_hue_shift(ids_image *img, double theta, double freq, double phase);

typedef enum ids_relation {
    IDS_REL_LEFT_RIGHT = 0, IDS_REL_ABOVE_BELOW, IDS_REL_FRONT_BEHIND, IDS_REL_NEAR_FAR,
    IDS_REL_BETWEEN, IDS_REL_BEFORE_AFTER, IDS_REL_COUNT
} ids_relation;

/* The paper's question for a relation, with A/B (and C for between) filled in; malloc'd. */
char *ids_question(ids_relation r, const char *a, const char *b, const char *c);
/* The two answer words of a relation ("left"/"right", "above"/"below", "in front"/"behind",
 * "near"/"far", "yes"/"no", "before"/"after"). */
const char *ids_answer_word(ids_relation r, bool first);
const char *ids_relation_name(ids_relation r);

/* Stimulus sets. Every item is a deterministic function of (options, seed, index). */
typedef enum ids_set_kind {
    IDS_SET_GRID = 0, IDS_SET_DEPTH, IDS_SET_NEARFAR, IDS_SET_BETWEEN, IDS_SET_VIDEO, IDS_SET_COUNT
} ids_set_kind;

typedef struct ids_stim_opts {
    int image_size;        /* pixels (default 224) */
    int grid;              /* cells per side (default 4) */
    const float *sizes;    /* object sizes as fractions of a cell (default 1, 0.78, 0.55, 0.33) */
    int n_sizes;
    const int *objects;    /* catalog indices (default: red circle, blue square[, green triangle]) */
    int n_objects;
    bool all_pairs;        /* every ordered pair (triple) of distinct objects, else only the first */
    float jitter_pos;      /* uniform jitter of the centre, fraction of a cell (default 0) */
    float jitter_size;     /* relative size jitter (default 0) */
    float jitter_rot;      /* rotation jitter in degrees (default 0) */
    uint8_t bg[3];         /* background colour (default black) */
    const ids_image *bg_image; /* optional background image (resized to the image size) */
    int frames;            /* video frames (default 8) */
    float near_threshold;  /* near/far threshold, fraction of the image size (default 0.35) */
    int repeats;           /* random placements per configuration for nearfar/between (default 10) */
    uint64_t seed;
    bool write_mp4;        /* ids_stimuli_write: videos also as ID.mp4 (manifest key "video") */
} ids_stim_opts;

void ids_stim_default_opts(ids_stim_opts *o);

typedef struct ids_stim_obj {
    int obj;               /* catalog index */
    ids_placed p;          /* centre, size, rotation in pixels */
    int cell_x, cell_y;    /* grid cell (x = column from the left, y = row from the top), -1 if none */
    float lateral, depth;  /* depth set: world position */
    int appear;            /* video: first frame it is visible */
} ids_stim_obj;

typedef struct ids_stim {
    ids_set_kind kind;
    int index;
    int grid;              /* cells per side of the grid the item was made on */
    int n_obj;
    ids_stim_obj obj[3];   /* obj[0] is the subject (A), obj[1] the reference (B), obj[2] C */
    int n_frames;
    ids_image *frames;     /* n_frames images (1 for stills), owned */
    bool has[IDS_REL_COUNT];
    bool truth[IDS_REL_COUNT]; /* true = the first answer word (left, above, in front, near, yes, before) */
    bool mirrored, recolored;
} ids_stim;

/* Number of items in a set with these options (validates them: errors name the impossible option). */
ids_status ids_stim_count(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, int *n,
                          ids_err *err);
/* Make item `index` (0 <= index < count): placement, pixels and truth. */
ids_status ids_stim_make(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, int index,
                         ids_stim *out, ids_err *err);
void ids_stim_free(ids_stim *s);
/* Horizontal mirror of an item: pixels flipped, centres and cells mirrored, left/right swapped. */
ids_status ids_stim_mirror(const ids_stim *s, ids_stim *out, ids_err *err);
/* Attribute edit: every built-in object gets another colour (nothing else changes). */
ids_status ids_stim_recolor(const ids_stim *s, const ids_stim_opts *o, const ids_catalog *c,
                            ids_stim *out, ids_err *err);
const char *ids_set_name(ids_set_kind k);
int ids_set_from_name(const char *name);

/* Write a whole set: images (PNG; videos as frame folders) and manifest.json, atomically.
 * Mirrored / recoloured copies are written as records of their own that name their original
 * ("variant_of"). The manifest records its provenance; files an earlier manifest in out_dir named
 * that this one does not are removed (a rerun with fewer items leaves nothing stale). progress
 * may be NULL. */
ids_status ids_stimuli_write(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c,
                             const char *out_dir, bool mirror, bool recolor, int limit,
                             ids_progress_fn progress, void *user, ids_err *err);
/* Shard `shard` of n_shards (n_shards 0: the whole set) of the same set: only the items whose number i
 * (0, 1, ... as ids_stimuli_write numbers them) has i % n_shards == shard are written, with their
 * variants, under the same file names; the manifest holds their records (in item order), "shard"
 * {index, count, items: the whole set's items} and the shard in its provenance. The shards' folders
 * are joined by ids_stimuli_merge. */
ids_status ids_stimuli_write_part(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, const char *out_dir,
                                  bool mirror, bool recolor, int limit, int shard, int n_shards,
                                  ids_progress_fn progress, void *user, ids_err *err);
/* Join the folders written by the shards 0..n_parts-1 of one set (part_dirs[i] holds shard i of
 * n_parts; ids_stimuli_write_part or ids_stimuli_write_coco_part) into out_dir: the manifest (or the
 * COCO-format files) byte for byte as the unsharded run writes them, apart from the provenance (the
 * first part's, without "shard", with "merged_parts"); every image (frame folder, MP4) is hard-linked
 * from its part, or copied where a link cannot be made. Errors name the part that does not fit (its
 * shard, its options, an item missing or in the wrong place). */
ids_status ids_stimuli_merge(const char *const *part_dirs, int n_parts, const char *out_dir, ids_err *err);
/* The provenance ids_stimuli_write records in manifest.json (command "stimuli", every option). */
ids_status ids_stimuli_prov(ids_set_kind kind, const ids_stim_opts *o, const ids_catalog *c, bool mirror, bool recolor,
                            int limit, ids_prov **out, ids_err *err);
/* Read COCO-Spatial (What'sUp coco_qa_two_obj.json) into a manifest of the same record format.
 * Malformed rows are logged (warning) by index and listed in the manifest's "skipped". Each record's
 * "file" is the image of its id in image_dir (made absolute when the folder exists). */
ids_status ids_coco_spatial_convert(const char *json_path, const char *image_dir, const char *out_path,
                                    int *n_ok, int *n_skipped, ids_err *err);
/* The same, and with instances (a COCO instances file such as instances_val2017.json: "images",
 * "annotations" with "bbox" [x, y, w, h], "categories"; may be NULL) each named object gets the box of
 * its category's annotation in that image ("box" [x0, y0, x1, y1] and "center" in pixels; the
 * category whose name is the object's, else its last word; of several instances the largest, and
 * the object says so: "instances": N, "box_from": "the largest of N"), and the record the image's
 * "width" and "height". n_boxes (may be NULL): objects that got a box. */
ids_status ids_coco_spatial_import(const char *json_path, const char *image_dir, const char *instances_path,
                                   const char *out_path, int *n_ok, int *n_skipped, int *n_boxes, ids_err *err);

/* A grid set in the COCO-Spatial format, for checking the real-image path on images whose boxes are
 * known: out_dir/coco_qa_two_obj.json (one row per item: [image id, "A photo of a A to the left of a
 * B", the opposite caption]; "above" / "below" when A and B share a column), out_dir/instances.json
 * (images, one category per object name, each object's box) and out_dir/images/ID.jpg (ids
 * 000000000001.jpg, ..., JPEG quality 95). Items as ids_stimuli_write (limit > 0: the first limit). */
ids_status ids_stimuli_write_coco(const ids_stim_opts *o, const ids_catalog *c, const char *out_dir, int limit,
                                  ids_progress_fn progress, void *user, ids_err *err);
/* Shard `shard` of n_shards of that set (n_shards 0: all): the items i with i % n_shards == shard, with
 * the whole set's image and annotation ids (image i + 1; annotations 2 i + 1, 2 i + 2); categories
 * numbered in the order the shard meets them (ids_stimuli_merge renumbers them as the whole set does). */
ids_status ids_stimuli_write_coco_part(const ids_stim_opts *o, const ids_catalog *c, const char *out_dir, int limit, int shard,
                                       int n_shards, ids_progress_fn progress, void *user, ids_err *err);

/* A stimulus set read back from its manifest (written by ids_stimuli_write or the COCO-Spatial
 * import), for the experiments' --set: the still-image records that name at least two objects
 * (variants, videos and records without objects are left out and counted). */
typedef struct ids_set_obj {
    char name[128], word[64];
    bool has_box;          /* box and centre known */
    float box[4];          /* x0, y0, x1, y1 in the image's pixels */
    float cx, cy;
    int cell_x, cell_y;    /* the grid cell of a synthetic record (grid: the set's), -1 when none */
} ids_set_obj;
typedef struct ids_set_item {
    char id[64];
    char *file;            /* the image (a relative name joined to the manifest's folder) */
    int n_obj;
    ids_set_obj obj[3];    /* obj[0] the subject (role A), obj[1] the reference (B), obj[2] C */
    bool has[IDS_REL_COUNT], truth[IDS_REL_COUNT]; /* the relations asked, and whether the first answer is right */
} ids_set_item;
typedef struct ids_set {
    char *manifest;        /* the manifest file read */
    int grid;              /* cells per side of a synthetic set (0 when none) */
    int n, n_left_out;     /* records used / left out */
    ids_set_item *items;
} ids_set;
/* dir: the set's folder (its manifest.json) or the manifest file itself. Errors name the file and
 * the record. */
ids_status ids_set_load(const char *dir, ids_set **out, ids_err *err);
void ids_set_free(ids_set *s);
/* The manifest file of a set folder (or the file itself); malloc'd. */
char *ids_set_manifest_path(const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_STIMULI_H */
