/* The experiment context: the defaults every experiment shares, decided once (objects, grid, image
 * size, items per pair, threads), the context size derived from the longest sequence, the item loop
 * over object pairs, and the provenance of the shared options. */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

ids_exp ids_exp_default(void) { return (ids_exp){.seed = 1}; }

ids_status ids__exp_init(ids__exp *x, const ids_exp *e, const ids_vlm *v, const ids_catalog *cat, int n_def, int n_min,
                         const char *what, ids_progress_fn progress, void *user, ids_err *err) {
    memset(x, 0, sizeof *x);
    x->v = v, x->cat = cat, x->progress = progress, x->puser = user;
    if (e->n_objects < 0 || e->n_objects > IDS_EXP_MAX_OBJECTS || (e->n_objects > 0 && !e->objects))
        return ids__err(err, IDS_ERR_ARG, "%s: %d objects given, 1..%d allowed", what, e->n_objects, IDS_EXP_MAX_OBJECTS);
    if (e->n_objects) {
        for (int i = 0; i < e->n_objects; i++) {
            if (e->objects[i] < 0 || e->objects[i] >= ids_catalog_count(cat))
                return ids__err(err, IDS_ERR_ARG, "%s: object index %d is outside the catalog's 0..%d", what, e->objects[i],
                                ids_catalog_count(cat) - 1);
            x->objs[i] = e->objects[i];
        }
        x->n_obj = e->n_objects;
    } else { /* red circle, blue square, green triangle */
        const int def[3] = {ids_catalog_builtin(0, 0), ids_catalog_builtin(2, 1), ids_catalog_builtin(1, 2)};
        x->n_obj = n_def < 3 ? 2 : 3;
        memcpy(x->objs, def, sizeof(int) * (size_t)x->n_obj);
    }
    if (x->n_obj < n_min) return ids__err(err, IDS_ERR_ARG, "%s: at least %d objects are needed, %d given", what, n_min, x->n_obj);
    const ids_vparams *vp = ids_vision_params(ids_vlm_vision(v));
    x->grid = e->grid > 0 ? e->grid : 4;
    x->image_size = e->image_size > 0 ? e->image_size : (vp->dynamic ? 224 : vp->image_size);
    x->n_items = e->n_items > 0 ? e->n_items : 8;
    x->n_threads = e->n_threads > 0 ? e->n_threads : ids_default_threads();
    if ((unsigned)e->precision >= IDS_PREC_COUNT)
        return ids__err(err, IDS_ERR_ARG, "%s: precision %d is not one of f32, bf16, int8", what, (int)e->precision);
    x->precision = e->precision;
    x->seed = e->seed;
    x->instruction = ids_exp_instruction(e, v);
    if (e->shard.count < 0 || (e->shard.count > 0 && (e->shard.index < 0 || e->shard.index >= e->shard.count)))
        return ids__err(err, IDS_ERR_ARG, "%s: shard %d/%d: the index must be in 0..%d", what, e->shard.index,
                        e->shard.count, e->shard.count - 1);
    if (e->n_parts < 0 || (e->n_parts > 0 && !e->parts)) return ids__err(err, IDS_ERR_ARG, "%s: %d parts without names", what, e->n_parts);
    x->shard = e->shard.index, x->n_shards = e->shard.count, x->items_dir = e->items_dir;
    x->parts = e->parts, x->n_parts = e->n_parts;
    x->command_line = e->command_line, x->n_command_line = e->command_line ? e->n_command_line : 0;
    if (e->set_dir) { /* an image set: every usable record unless a sample size is given */
        char *m = ids_set_manifest_path(e->set_dir);
        if (!m) return ids__err(err, IDS_ERR_NOMEM, "out of memory");
        const size_t ml = strlen(m);
        if (ml < sizeof x->set_manifest) memcpy(x->set_manifest, m, ml + 1);
        free(m);
        if (ml >= sizeof x->set_manifest) return ids__err(err, IDS_ERR_ARG, "%s: the set's path is too long", what);
        x->n_items = e->n_items > 0 ? e->n_items : 0;
    }
    if (strlen(x->instruction) >= sizeof ((ids_prompting *)0)->instruction)
        return ids__err(err, IDS_ERR_ARG, "%s: the instruction is %zu characters long, at most %zu allowed", what,
                        strlen(x->instruction), sizeof ((ids_prompting *)0)->instruction - 1);
    return IDS_OK;
}

void ids__exp_stim_opts(const ids__exp *x, ids_stim_opts *so) {
    static const float sz[1] = {0.9f};
    ids_stim_default_opts(so);
    so->image_size = x->image_size;
    so->grid = x->grid;
    so->sizes = sz;
    so->n_sizes = 1;
    so->seed = x->seed;
}

int ids__exp_n_ctx(const ids__exp *x, int n_images) {
    const ids_vision *vis = ids_vlm_vision(x->v);
    int rows = ids_vision_params(vis)->n_out;
    ids_image probe = {.w = x->image_size, .h = x->image_size};
    ids_vplan plan;
    if (ids_vision_plan(vis, &probe, 1, &plan, NULL) == IDS_OK && plan.n_out > rows) rows = plan.n_out;
    /* the prompt's text (chat template, question, object names) and a short generated answer */
    return n_images * rows + 256;
}

ids_status ids__exp_ctx(const ids__exp *x, int n_images, int max_rows, bool keep_clean, ids_ctx **out, ids_err *err) {
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = ids__exp_n_ctx(x, n_images);
    cp.max_rows = max_rows > cp.n_ctx ? max_rows : cp.n_ctx;
    cp.keep_clean = keep_clean;
    cp.n_threads = x->n_threads;
    cp.precision = x->precision;
    return ids_ctx_new(out, ids_vlm_model(x->v), cp, err);
}

typedef struct {
    ids__exp *x;
    ids__item_fn fn;
    void *user;
} shard_adapter;

/* Every item is drawn (the draws of a pair follow one another); only the shard's are run. */
static ids_status shard_item(void *user, ids_stim *s, ids_err *err) {
    shard_adapter *a = user;
    if (!ids__item_mine(a->x, a->x->done)) return IDS_OK;
    a->x->item = a->x->done;
    return a->fn(a->user, s, err);
}

ids_status ids__exp_each(ids__exp *x, ids_set_kind kind, ids_stim_opts *so, int rel, uint64_t salt, ids__item_fn fn,
                         void *user, const char *what, ids_err *err) {
    const long total = x->total > 0 ? x->total : (long)x->n_obj * (x->n_obj - 1) * x->n_items;
    shard_adapter a = {x, fn, user};
    return ids__each_item(kind, so, x->cat, x->objs, x->n_obj, x->n_items, rel, x->seed, salt, shard_item, &a, what,
                          x->progress, x->puser, &x->done, total, err);
}

ids_status ids__exp_prov(const ids__exp *x, const char *command, ids_prov **out, ids_err *err) {
    ids_status st = ids_prov_new(out, command, err);
    if (!st) st = ids_vlm_prov(*out, x->v, err);
    if (!st) ids_prov_shard(*out, x->shard, ids__exp_partial(x) ? x->n_shards : 0);
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
        return st;
    }
    if (x->set_manifest[0]) { /* the set's records name the objects; its images have their own sizes */
        if ((st = ids_prov_input(*out, "set", x->set_manifest, err))) {
            ids_prov_free(*out);
            *out = NULL;
            return st;
        }
        ids_prov_opt_str(*out, "set", x->set_manifest);
    } else {
        const char *names[IDS_EXP_MAX_OBJECTS];
        for (int i = 0; i < x->n_obj; i++) names[i] = ids_catalog_name(x->cat, x->objs[i]);
        ids_prov_opt_strs(*out, "objects", names, x->n_obj);
        ids_prov_opt_int(*out, "image_size", x->image_size);
    }
    ids_prov_opt_int(*out, "grid", x->grid);
    if (x->n_items > 0) ids_prov_opt_int(*out, "n_items", x->n_items);
    ids_prov_opt_str(*out, "instruction", x->instruction);
    ids_prov_opt_str(*out, "answer_tokens", "first token of each case variant, log-sum-exp");
    ids_prov_run(*out, x->seed, x->n_threads, ids_precision_name(x->precision));
    ((ids__exp *)x)->prov = *out; /* the request the kept items answer (not owned) */
    return IDS_OK;
}
