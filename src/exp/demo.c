/* idscope demo in-process: every experiment on one model into one results folder, then the score,
 * the report and summary.json. A step is skipped only when its result exists and its provenance
 * matches the request (models, options, seed, inputs); otherwise it reruns and says which key
 * differed. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <math.h>
#include <stdarg.h>

typedef struct demo {
    const ids_demo_opts *o;
    ids_vlm *v;
    ids_catalog *cat;
    ids_demo_summary *sum;
    char *d_stim, *d_ids, *d_swap, *d_steer, *d_depth, *d_temp, *f_ids, *f_tids;
} demo;

static void say(const demo *d, const char *fmt, ...) IDS_PRINTF(2, 3);
static void say(const demo *d, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->o->say) d->o->say(msg, d->o->user);
}

/* What a step runs: writes its result; arg is the step's own. */
typedef ids_status (*step_fn)(demo *d, const void *arg, ids_err *err);

/* Run a step unless `result` already holds what `want` asks for; `want` is consumed. The step's
 * recorded time counts into the total either way. */
static ids_status step(demo *d, const char *what, const char *result, ids_prov *want, step_fn fn, const void *arg,
                       ids_err *err) {
    char why[400] = "";
    ids_status st = IDS_OK;
    if (!d->o->fresh && ids_result_matches(result, want, why, sizeof why)) {
        say(d, "demo: %s: already done (%s)", what, result);
        d->sum->steps_skipped++;
    } else {
        if (d->o->fresh) say(d, "demo: %s", what);
        else if (!strcmp(why, "no result yet")) say(d, "demo: %s", what);
        else say(d, "demo: %s (rerun: %s)", what, why);
        st = fn(d, arg, err);
        if (st) say(d, "demo: %s failed: %s; rerun to resume", what, err ? err->msg : ids_status_name(st));
        else d->sum->steps_run++;
    }
    const double s = st ? NAN : ids_result_seconds(result);
    if (isfinite(s)) d->sum->seconds += s;
    ids_prov_free(want);
    return st;
}

/* ---- the steps ---- */

static ids_stim_opts stim_examples(void) {
    ids_stim_opts so;
    ids_stim_default_opts(&so);
    so.image_size = 128;
    return so;
}

static ids_status run_stimuli(demo *d, const void *arg, ids_err *err) {
    const ids_stim_opts so = stim_examples();
    return ids_stimuli_write(IDS_SET_GRID, &so, d->cat, d->d_stim, true, false, 32, NULL, NULL, err);
}

static ids_exp demo_exp(const demo *d) {
    ids_exp e = ids_exp_default();
    e.n_items = d->o->n_items;
    e.n_threads = d->o->n_threads;
    e.precision = d->o->precision;
    e.instruction = d->o->instruction;
    e.no_instruction = d->o->no_instruction;
    return e;
}

static ids_status run_extract(demo *d, const void *arg, ids_err *err) {
    const ids_extract_opts *eo = arg;
    return ids_spatial_extract(d->v, d->cat, eo, d->d_ids, d->o->progress, d->o->user, err);
}

static ids_status run_stats(demo *d, const void *arg, ids_err *err) { return ids_spatial_stats(d->d_ids, err); }

static ids_status run_swap(demo *d, const void *arg, ids_err *err) {
    const int which = *(const int *)arg; /* 0 mirror, 1 recolour, 2 hue shift */
    const bool control = which > 0;
    ids_swap_opts so = {.exp = demo_exp(d), .hue = which == 2};
    ids_swap_result r;
    ids_status st = ids_swap_run(d->v, d->cat, &so, control, &r, d->o->progress, d->o->user, err);
    if (!st) st = ids_swap_write(d->d_swap, &r, err);
    ids_swap_result_free(&r);
    return st;
}

typedef struct {
    ids__steer_kind kind;
    ids_steer_opts so;
    const char *dir;
} steer_step;

static ids_status run_steer(demo *d, const void *arg, ids_err *err) {
    const steer_step *s = arg;
    ids_status st;
    if (s->kind == IDS__STEER_BELIEF) {
        ids_steer_result r;
        if (!(st = ids_steer_belief(d->v, d->cat, &s->so, &r, d->o->progress, d->o->user, err))) st = ids_steer_write(s->dir, &r, err);
        ids_steer_result_free(&r);
    } else if (s->kind == IDS__STEER_GRID) {
        ids_steer_grid_result g;
        if (!(st = ids_steer_grid(d->v, d->cat, &s->so, &g, d->o->progress, d->o->user, err))) st = ids_steer_grid_write(s->dir, &g, err);
        ids_steer_grid_result_free(&g);
    } else {
        ids_depth_result r;
        if (!(st = ids_depth_diag(d->v, d->cat, &s->so, &r, d->o->progress, d->o->user, err))) st = ids_depth_write(s->dir, &r, err);
        ids_depth_result_free(&r);
    }
    return st;
}

typedef struct {
    int which; /* 0 extract, 1 swap, 2 steer */
    ids_temporal_opts to;
    const char *dir; /* steer: its folder (NULL: the temporal folder) */
} temporal_step;

static ids_status run_temporal(demo *d, const void *arg, ids_err *err) {
    const temporal_step *t = arg;
    ids_status st;
    if (t->which == 0) return ids_temporal_extract(d->v, d->cat, &t->to, d->d_temp, d->o->progress, d->o->user, err);
    if (t->which == 1) {
        ids_temporal_swap_result r;
        if (!(st = ids_temporal_swap(d->v, d->cat, &t->to, &r, d->o->progress, d->o->user, err))) st = ids_temporal_swap_write(d->d_temp, &r, err);
        ids_temporal_result_free(&r);
        return st;
    }
    ids_temporal_steer_result r;
    if (!(st = ids_temporal_steer(d->v, d->cat, &t->to, &r, d->o->progress, d->o->user, err)))
        st = ids_temporal_steer_write(t->dir ? t->dir : d->d_temp, &r, err);
    ids_temporal_steer_result_free(&r);
    return st;
}

static ids_status run_score(demo *d, const void *arg, ids_err *err) {
    const char *const *paths = arg; /* stats, steer belief, score */
    int best;
    double score;
    return ids_score(paths[0], paths[1], paths[2], &best, &score, err);
}

static ids_status run_report(demo *d, const void *arg, ids_err *err) {
    int n;
    return ids_report(d->o->out_dir, &n, err);
}

/* ---- the chain ---- */

static char *rpath(const demo *d, ids_result_kind k, ids_relation rel) { return ids_result_path(d->o->out_dir, k, rel, true); }

static ids_status spatial_steps(demo *d, ids_err *err) {
    ids_prov *want = NULL;
    char *p = rpath(d, IDS_RESULT_STIMULI, 0);
    const ids_stim_opts so = stim_examples();
    ids_status st = p ? ids_stimuli_prov(IDS_SET_GRID, &so, d->cat, true, false, 32, &want, err) : IDS_ERR_NOMEM;
    if (!st) st = step(d, "stimuli (examples of the grid set, with mirrors)", p, want, run_stimuli, NULL, err);
    free(p);
    ids_extract_opts eo = {.exp = demo_exp(d), .per_pair = true};
    ids__exp x;
    p = rpath(d, IDS_RESULT_IDS, 0);
    if (!st) st = p ? ids__extract_prov(d->v, d->cat, &eo, &x, &want, err) : IDS_ERR_NOMEM;
    if (!st) st = step(d, "ids extract (per-pair and universal IDs, every layer)", p, want, run_extract, &eo, err);
    free(p);
    p = rpath(d, IDS_RESULT_STATS, 0);
    if (!st) st = p ? ids__stats_prov(d->d_ids, &want, err) : IDS_ERR_NOMEM;
    if (!st) st = step(d, "ids stats", p, want, run_stats, NULL, err);
    free(p);
    static const int which[3] = {0, 1, 2};
    static const ids_result_kind kinds[3] = {IDS_RESULT_SWAP, IDS_RESULT_SWAP_CONTROL, IDS_RESULT_SWAP_HUE};
    static const char *const what[3] = {"swap (mirror patching per layer and position set)",
                                        "swap --control (attribute patching: the objects recoloured)",
                                        "swap --hue (attribute patching: the paper's hue shift of the whole image)"};
    for (int k = 0; !st && k < 3; k++) {
        ids_swap_opts sw = {.exp = demo_exp(d)};
        p = rpath(d, kinds[k], 0);
        st = p ? ids__exp_init(&x, &sw.exp, d->v, d->cat, 2, 2, "swap", NULL, NULL, err) : IDS_ERR_NOMEM;
        if (!st) st = ids__swap_prov(&x, k > 0, k == 2, &want, err);
        if (!st) st = step(d, what[k], p, want, run_swap, &which[k], err);
        free(p);
    }
    return st;
}

static ids_status steering_steps(demo *d, ids_err *err) {
    /* belief steering at the paper's 5 x the token norm, and the same at smaller pushes (a factor sweep:
     * 5 can overshoot a small model's range, where any push of that size flips answers) */
    static const struct {
        ids__steer_kind kind;
        ids_relation rel;
        float factor;
        const char *sub, *what;
        ids_grid_variant variant;
    } k_steps[] = {
        {IDS__STEER_BELIEF, IDS_REL_LEFT_RIGHT, 5, NULL, "steer belief (ID vs noise)", IDS_GRID_OURS},
        {IDS__STEER_BELIEF, IDS_REL_LEFT_RIGHT, 1, "factor-1", "steer belief, factor 1", IDS_GRID_OURS},
        {IDS__STEER_BELIEF, IDS_REL_LEFT_RIGHT, 2, "factor-2", "steer belief, factor 2", IDS_GRID_OURS},
        {IDS__STEER_GRID, IDS_REL_LEFT_RIGHT, 5, NULL, "steer grid (left/right)", IDS_GRID_OURS},
        {IDS__STEER_GRID, IDS_REL_ABOVE_BELOW, 5, NULL, "steer grid (above/below)", IDS_GRID_OURS},
        {IDS__STEER_GRID, IDS_REL_NEAR_FAR, 5, NULL, "steer grid (near/far)", IDS_GRID_OURS},
        {IDS__STEER_GRID, IDS_REL_BETWEEN, 5, NULL, "steer grid (between)", IDS_GRID_OURS},
        {IDS__STEER_GRID, IDS_REL_LEFT_RIGHT, 5, NULL, "steer grid --variant paper (left/right, mirrored pairs)", IDS_GRID_PAPER},
        {IDS__STEER_DEPTH, IDS_REL_ABOVE_BELOW, 5, NULL, "depth diagnosis", IDS_GRID_OURS},
    };
    ids_status st = IDS_OK;
    for (size_t i = 0; !st && i < sizeof k_steps / sizeof *k_steps; i++) {
        steer_step s = {.kind = k_steps[i].kind,
                        .so = {.exp = demo_exp(d), .ids_path = d->f_ids, .relation = k_steps[i].rel,
                               .factor = k_steps[i].factor, .greedy_tokens = 3, .variant = k_steps[i].variant}};
        const bool depth = s.kind == IDS__STEER_DEPTH;
        char *sub = k_steps[i].sub ? ids__path_join(d->d_steer, k_steps[i].sub) : NULL;
        s.dir = depth ? d->d_depth : sub ? sub : d->d_steer;
        const ids_result_kind grid_kind = s.so.variant == IDS_GRID_PAPER ? IDS_RESULT_STEER_GRID_PAPER : IDS_RESULT_STEER_GRID;
        char *p = s.dir ? ids_result_path(s.dir, depth ? IDS_RESULT_DEPTH
                                                 : s.kind == IDS__STEER_GRID ? grid_kind : IDS_RESULT_STEER_BELIEF,
                                          k_steps[i].rel, false)
                        : NULL;
        ids_prov *want = NULL;
        st = p ? ids__steer_prov(s.kind, d->v, d->cat, &s.so, &want, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
        if (!st) st = step(d, k_steps[i].what, p, want, run_steer, &s, err);
        free(p);
        free(sub);
    }
    return st;
}

static ids_status temporal_steps(demo *d, ids_err *err) {
    static const char *const what[3] = {"temporal extract (temporal IDs from 8-frame videos)",
                                        "temporal swap (time-reversal patching)",
                                        "temporal steer (T[f] - T[T-f] at the subject word)"};
    static const ids_result_kind kinds[3] = {IDS_RESULT_TEMPORAL, IDS_RESULT_TEMPORAL_SWAP, IDS_RESULT_TEMPORAL_STEER};
    ids_status st = IDS_OK;
    /* temporal steering also at smaller factors (a sweep, as for belief steering): at 5 a small model's
     * response can saturate into a step, where a ramp shows at lower factors */
    static const float sweep[3] = {0.5f, 1, 2};
    for (int w = 0; !st && w < 6; w++) {
        const int which = w < 3 ? w : 2;
        temporal_step t = {.which = which, .to = {.exp = demo_exp(d), .frames = which == 2 ? 0 : 8, .factor = w < 3 ? 5 : sweep[w - 3]}};
        if (which == 2) t.to.ids_path = d->f_tids;
        char sub[64], what_f[96];
        snprintf(sub, sizeof sub, "factor-%g", (double)t.to.factor);
        snprintf(what_f, sizeof what_f, "temporal steer, factor %g", (double)t.to.factor);
        char *tdir = w < 3 ? NULL : ids__path_join(d->d_temp, sub);
        t.dir = tdir;
        char *p = w < 3 ? rpath(d, kinds[w], 0) : tdir ? ids_result_path(tdir, IDS_RESULT_TEMPORAL_STEER, 0, false) : NULL;
        ids_prov *want = NULL;
        st = p ? ids__temporal_prov(d->v, d->cat, &t.to, which, &want, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
        if (!st) st = step(d, w < 3 ? what[w] : what_f, p, want, run_temporal, &t, err);
        free(p);
        free(tdir);
    }
    return st;
}

/* ---- Fig. 8 on the example stimuli: deviation and blur masking ---- */

static ids_status run_deviation(demo *d, const void *arg, ids_err *err) {
    const ids_deviation_opts *o = arg;
    ids_deviation_result r;
    char *dir = ids__path_join(d->o->out_dir, "deviation");
    ids_status st = dir ? ids_deviation(d->v, d->cat, o, &r, d->o->progress, d->o->user, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) {
        st = ids_deviation_write(dir, &r, err);
        ids_deviation_result_free(&r);
    }
    free(dir);
    return st;
}

static ids_status run_mask(demo *d, const void *arg, ids_err *err) {
    const ids_mask_opts *o = arg;
    ids_mask_result r;
    char *dir = ids__path_join(d->o->out_dir, "mask");
    ids_status st = dir ? ids_mask(d->v, d->cat, o, &r, d->o->progress, d->o->user, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) {
        st = ids_mask_write(dir, &r, err);
        ids_mask_result_free(&r);
    }
    free(dir);
    return st;
}

static ids_status fig8_steps(demo *d, ids_err *err) {
    ids_deviation_opts dv = {.exp = demo_exp(d), .ids_path = d->f_ids};
    ids_mask_opts mk = {.exp = demo_exp(d), .n_random = 4}; /* 4 random boxes per image: the demo's time */
    dv.exp.set_dir = mk.exp.set_dir = d->d_stim; /* the example stimuli: every record, boxes known */
    dv.exp.n_items = mk.exp.n_items = 0;
    char *p = ids__path_join(d->o->out_dir, "deviation/deviation.json"), *q = ids__path_join(d->o->out_dir, "mask/mask.json");
    ids_prov *want = NULL;
    ids_status st = p && q ? ids__deviation_prov(d->v, d->cat, &dv, &want, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) st = step(d, "deviation (IDs against the boxes, right vs wrong answers)", p, want, run_deviation, &dv, err);
    if (!st) st = ids__mask_prov(d->v, d->cat, &mk, &want, err);
    if (!st) st = step(d, "mask (the object's box blurred vs random boxes)", q, want, run_mask, &mk, err);
    free(p);
    free(q);
    return st;
}

static ids_status final_steps(demo *d, ids_err *err) {
    char *paths[3] = {rpath(d, IDS_RESULT_STATS, 0), rpath(d, IDS_RESULT_STEER_BELIEF, 0), rpath(d, IDS_RESULT_SCORE, 0)};
    ids_prov *want = NULL;
    ids_status st = paths[0] && paths[1] && paths[2] ? ids__score_prov(paths[0], paths[1], &want, err)
                                                     : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) st = step(d, "score", paths[2], want, run_score, paths, err);
    for (int k = 0; k < 3; k++) free(paths[k]);
    char *report = ids__path_join(d->o->out_dir, "report.html");
    if (!st) st = report ? ids__report_prov(d->o->out_dir, &want, err) : ids__err(err, IDS_ERR_NOMEM, "out of memory");
    if (!st) st = step(d, "report", report, want, run_report, NULL, err);
    free(report);
    return st;
}

static void demo_free(demo *d) {
    char **ps[] = {&d->d_stim, &d->d_ids, &d->d_swap, &d->d_steer, &d->d_depth, &d->d_temp, &d->f_ids, &d->f_tids};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) free(*ps[k]);
    ids_vlm_free(d->v);
    ids_catalog_free(d->cat);
}

ids_status ids_demo_run(const ids_demo_opts *o, ids_demo_summary *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    if (!o->out_dir || !o->model || !o->mmproj) return ids__err(err, IDS_ERR_ARG, "demo: out_dir, model and mmproj are needed");
    demo d = {.o = o, .sum = out};
    const char *dir = o->out_dir;
    d.d_stim = ids__path_join(dir, ids_result_folder(IDS_RESULT_STIMULI));
    d.d_ids = ids__path_join(dir, ids_result_folder(IDS_RESULT_IDS));
    d.d_swap = ids__path_join(dir, ids_result_folder(IDS_RESULT_SWAP));
    d.d_steer = ids__path_join(dir, ids_result_folder(IDS_RESULT_STEER_BELIEF));
    d.d_depth = ids__path_join(dir, ids_result_folder(IDS_RESULT_DEPTH));
    d.d_temp = ids__path_join(dir, ids_result_folder(IDS_RESULT_TEMPORAL));
    d.f_ids = d.d_ids ? ids__path_join(d.d_ids, "ids.safetensors") : NULL;
    d.f_tids = d.d_temp ? ids__path_join(d.d_temp, "temporal.safetensors") : NULL;
    d.cat = ids_catalog_new();
    ids_status st = !d.d_stim || !d.d_ids || !d.d_swap || !d.d_steer || !d.d_depth || !d.d_temp || !d.f_ids || !d.f_tids || !d.cat
                        ? ids__err(err, IDS_ERR_NOMEM, "demo: out of memory")
                        : IDS_OK;
    if (!st) st = ids__mkdir_p(dir, err);
    if (!st) st = ids_vlm_load(&d.v, o->model, o->mmproj, err);
    if (!st) st = spatial_steps(&d, err);
    if (!st) st = steering_steps(&d, err);
    if (!st) st = temporal_steps(&d, err);
    if (!st) st = fig8_steps(&d, err);
    if (!st) st = final_steps(&d, err);
    ids_prov *prov = NULL;
    if (!st) st = ids_prov_new(&prov, "demo", err);
    if (!st) st = ids_vlm_prov(prov, d.v, err);
    if (!st) {
        ids_prov_opt_int(prov, "n_items", o->n_items > 0 ? o->n_items : 8);
        ids_prov_run(prov, 1, o->n_threads, ids_precision_name(o->precision));
        out->positive_control = ids_positive_control(o->model);
        char *tm = realpath(o->model, NULL), *mm = realpath(o->mmproj, NULL);
        st = ids__summary_write(dir, prov, tm ? tm : o->model, mm ? mm : o->mmproj, out, err);
        free(tm);
        free(mm);
    }
    ids_prov_free(prov);
    demo_free(&d);
    return st;
}
