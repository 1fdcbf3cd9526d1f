/* Image sets in the experiments: manifests read back, COCO-Spatial with instance boxes, a COCO-format
 * set made by the stimulus engine (boxes known) run through the experiments with known answers. */
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

static ids_vlm *golden(void) {
    ids_vlm *v = NULL;
    ids_err err;
    if (ids_vlm_load(&v, t_shared("golden/llava-tiny/text.gguf"), t_shared("golden/llava-tiny/mmproj.gguf"), &err))
        t_fail(__FILE__, __LINE__, "%s", err.msg);
    return v;
}

static bool box_is(const float *b, double x0, double y0, double x1, double y1) {
    return fabs(b[0] - x0) < 1e-3 && fabs(b[1] - y0) < 1e-3 && fabs(b[2] - x1) < 1e-3 && fabs(b[3] - y1) < 1e-3;
}

/* COCO-Spatial rows with the boxes of COCO's instances: the category named so (else by the last
 * word, else whose last word it is: "table" is "dining table"), the largest of several. */
TEST(coco_import_with_instances) {
    const char *out = t_tmp("coco-inst.json");
    int ok = 0, skipped = 0, boxes = 0;
    ids_err err;
    CHECK_OK_ERR(ids_coco_spatial_import("tests/fixtures/coco/coco_qa_two_obj.json", "/data/val2017",
                                         "tests/fixtures/coco/instances.json", out, &ok, &skipped, &boxes, &err), err);
    CHECK(ok == 3 && skipped == 4 && boxes == 4);
    ids_set *s = NULL;
    REQUIRE_OK(ids_set_load(out, &s, &err), err);
    REQUIRE(s->n == 3);
    const ids_set_item *dog = &s->items[0], *cup = &s->items[1], *umb = &s->items[2];
    CHECK(!strcmp(dog->file, "/data/val2017/000000397133.jpg"));
    CHECK(dog->obj[0].has_box && box_is(dog->obj[0].box, 10, 20, 110, 70));
    CHECK(dog->obj[1].has_box && box_is(dog->obj[1].box, 400, 50, 460, 250)); /* the largest of 3 persons */
    CHECK(dog->has[IDS_REL_LEFT_RIGHT] && dog->truth[IDS_REL_LEFT_RIGHT] && !dog->has[IDS_REL_ABOVE_BELOW]);
    CHECK(cup->obj[1].has_box && box_is(cup->obj[1].box, 0, 100, 352, 230) && !strcmp(cup->obj[1].word, "table"));
    CHECK(!umb->obj[0].has_box && !umb->obj[1].has_box); /* a bbox of 1e300 is nobody's */
    CHECK(umb->has[IDS_REL_ABOVE_BELOW] && !umb->truth[IDS_REL_ABOVE_BELOW]);
    ids_set_free(s);
    char *js = t_read_file(out, NULL);
    CHECK(js && strstr(js, "\"box_from\":\t\"the largest of 3\"") && strstr(js, "\"width\":\t640") &&
          strstr(js, "no annotation of 'umbrella' in image 87038"));
    free(js);
    CHECK_EQ_INT(ids_coco_spatial_import("tests/fixtures/coco/coco_qa_two_obj.json", "/data/val2017",
                                         "tests/fixtures/coco/coco_qa_two_obj.json", out, &ok, &skipped, &boxes, &err),
                 IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "not a COCO instances file") != NULL);
}

/* A malformed value in a manifest is an error naming the file, the record and the key; records
 * that are not still images of two named objects are left out and counted. */
TEST(set_manifest_checked) {
    const char *path = t_tmp("manifest.json");
    FILE *f = fopen(path, "w");
    fputs("{\"grid\": 4, \"records\": [{\"id\": \"a\", \"file\": \"a.png\", \"objects\": [{\"name\": \"red circle\", \"box\": [1, 2, 3, 4]},"
          " {\"name\": \"blue square\"}], \"questions\": {\"left_right\": {\"answer\": \"right\"}}},"
          " {\"id\": \"v\", \"file\": \"v.png\", \"variant_of\": \"a\", \"objects\": [{\"name\": \"x\"}, {\"name\": \"y\"}]},"
          " {\"id\": \"one\", \"file\": \"o.png\", \"objects\": [{\"name\": \"x\"}]}]}", f);
    fclose(f);
    ids_set *s = NULL;
    ids_err err;
    REQUIRE_OK(ids_set_load(path, &s, &err), err);
    CHECK(s->n == 1 && s->n_left_out == 2 && s->grid == 4);
    CHECK(!strcmp(s->items[0].obj[1].word, "square") && !s->items[0].obj[1].has_box);
    CHECK(s->items[0].obj[0].cx == 2.0f && s->items[0].has[IDS_REL_LEFT_RIGHT] && !s->items[0].truth[IDS_REL_LEFT_RIGHT]);
    CHECK(strstr(s->items[0].file, "/a.png") != NULL);
    ids_set_free(s);
    f = fopen(path, "w");
    fputs("{\"records\": [{\"id\": \"a\", \"file\": \"a.png\", \"objects\": [{\"name\": \"red circle\", \"box\": [1, 2, 1e400, 4]},"
          " {\"name\": \"blue square\"}]}]}", f);
    fclose(f);
    CHECK_EQ_INT(ids_set_load(path, &s, &err), IDS_ERR_RANGE);
    CHECKF(strstr(err.msg, "manifest.json: records[0]: record 'a': object 'red circle': box[2]") != NULL, "%s", err.msg);
    f = fopen(path, "w");
    fputs("{\"records\": [{\"id\": \"a\", \"file\": \"a.png\", \"objects\": [{\"name\": \"red circle\"}, {\"name\": \"b\"}],"
          " \"questions\": {\"left_right\": {\"answer\": \"up\"}}}]}", f);
    fclose(f);
    CHECK_EQ_INT(ids_set_load(path, &s, &err), IDS_ERR_FORMAT);
    CHECK(strstr(err.msg, "questions.left_right.answer is 'up'") != NULL);
    CHECK_EQ_INT(ids_set_load(t_tmp("none.json"), &s, &err), IDS_ERR_IO);
}

/* On an image set the extraction runs the paper's arithmetic on what the records cover: on a whole
 * grid set written by the stimulus engine it gives the IDs of the built-in extraction. */
TEST(set_extract_equals_grid_extract) {
    ids_vlm *v = golden();
    REQUIRE(v);
    ids_catalog *cat = ids_catalog_new();
    int objs[2] = {ids_catalog_find(cat, "red circle", NULL), ids_catalog_find(cat, "blue square", NULL)};
    float sizes[1] = {0.9f};
    ids_stim_opts so;
    ids_stim_default_opts(&so);
    so.image_size = 56, so.grid = 2, so.sizes = sizes, so.n_sizes = 1, so.objects = objs, so.n_objects = 2, so.all_pairs = true;
    ids_err err;
    const char *setdir = t_tmp("gridset");
    REQUIRE_OK(ids_stimuli_write(IDS_SET_GRID, &so, cat, setdir, false, false, 0, NULL, NULL, &err), err);
    ids_extract_opts eo = {.exp = {.objects = objs, .n_objects = 2, .grid = 2, .n_threads = 1}, .sizes = sizes, .n_sizes = 1,
                           .per_pair = true};
    const char *d1 = t_tmp("ids-grid"), *d2 = t_tmp("ids-set");
    REQUIRE_OK(ids_spatial_extract(v, cat, &eo, d1, NULL, NULL, &err), err);
    eo.exp.objects = NULL, eo.exp.n_objects = 0, eo.exp.set_dir = setdir;
    REQUIRE_OK(ids_spatial_extract(v, cat, &eo, d2, NULL, NULL, &err), err);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/ids.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/ids.safetensors", d2);
    ids_st_file *f1, *f2;
    REQUIRE_OK(ids_st_open(&f1, p1, &err), err);
    REQUIRE_OK(ids_st_open(&f2, p2, &err), err);
    const char *names[3] = {"universal", "x_axis", "per_pair"};
    for (int k = 0; k < 3; k++) {
        const ids_st_tensor *a = ids_st_find(f1, names[k]), *b = ids_st_find(f2, names[k]);
        REQUIRE(a && b);
        CHECK(a->ndim == b->ndim && a->nbytes == b->nbytes);
        /* per_pair: the built-in loop takes the pairs as (anchor, subject) = (red circle, blue square)
         * first, the set as its records come: (subject, anchor) = (red circle, blue square) first */
        const size_t n = a->nbytes / 4, half = n / 2;
        double worst = 0, big = 0;
        for (size_t i = 0; a->nbytes == b->nbytes && i < n; i++) {
            const size_t j = k == 2 ? (i + half) % n : i;
            worst = fmax(worst, fabs((double)((const float *)a->data)[i] - ((const float *)b->data)[j]));
            big = fmax(big, fabs((double)((const float *)a->data)[i]));
        }
        CHECKF(worst < 1e-4 && big > 1e-3, "%s: the set's IDs differ by %g (scale %g)", names[k], worst, big);
    }
    ids_st_close(f1);
    ids_st_close(f2);
    snprintf(p2, sizeof p2, "%s/ids.json", d2);
    char *js = t_read_file(p2, NULL);
    CHECK(js && strstr(js, "\"used\":\t24") && strstr(js, "\"empty_cells\":\t0") && strstr(js, "\"pairs\":\t2"));
    free(js);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

/* A COCO-format fixture from the stimulus engine (boxes known), imported with the instances: the
 * boxes come back; swap, steer belief, steer grid and depth run on it with known answers whatever
 * the weights (the golden model): the image rows at layer 0 carry the whole mirror, vanishing
 * pushes change nothing, and records without what a run needs are skipped and counted. */
TEST(coco_format_set_known_answers) {
    ids_vlm *v = golden();
    REQUIRE(v);
    ids_catalog *cat = ids_catalog_new();
    float sizes[1] = {0.9f};
    int objs[2] = {ids_catalog_find(cat, "red circle", NULL), ids_catalog_find(cat, "blue square", NULL)};
    ids_stim_opts so;
    ids_stim_default_opts(&so);
    so.image_size = 56, so.grid = 2, so.sizes = sizes, so.n_sizes = 1, so.objects = objs, so.n_objects = 2, so.all_pairs = true;
    ids_err err;
    const char *cf = t_tmp("cocofmt"), *cs = t_tmp("cocoset");
    REQUIRE_OK(ids_stimuli_write_coco(&so, cat, cf, 0, NULL, NULL, &err), err);
    char qa[600], imgs[600], inst[600], man[600];
    snprintf(qa, sizeof qa, "%s/coco_qa_two_obj.json", cf);
    snprintf(imgs, sizeof imgs, "%s/images", cf);
    snprintf(inst, sizeof inst, "%s/instances.json", cf);
    snprintf(man, sizeof man, "%s/manifest.json", cs);
    int ok = 0, skipped = 0, boxes = 0;
    mkdir(cs, 0755);
    REQUIRE_OK(ids_coco_spatial_import(qa, imgs, inst, man, &ok, &skipped, &boxes, &err), err);
    CHECK(ok == 24 && skipped == 0 && boxes == 48); /* 2 pairs x 12 cell layouts */
    ids_set *set = NULL;
    REQUIRE_OK(ids_set_load(cs, &set, &err), err);
    int same = 0;
    for (int i = 0; i < set->n; i++) {
        ids_stim s;
        REQUIRE_OK(ids_stim_make(IDS_SET_GRID, &so, cat, i, &s, &err), err);
        for (int k = 0; k < 2; k++) {
            const float h = s.obj[k].p.size * 0.5f;
            same += box_is(set->items[i].obj[k].box, s.obj[k].p.cx - h, s.obj[k].p.cy - h, s.obj[k].p.cx + h, s.obj[k].p.cy + h);
        }
        const ids_relation rel = s.has[IDS_REL_LEFT_RIGHT] ? IDS_REL_LEFT_RIGHT : IDS_REL_ABOVE_BELOW;
        same += set->items[i].has[rel] && set->items[i].truth[rel] == s.truth[rel];
        ids_stim_free(&s);
    }
    CHECK_EQ_INT(same, 3 * set->n);
    ids_set_free(set);

    /* swap: the mirrored image through the image rows at layer 0 is the whole effect */
    ids_swap_opts wo = {.exp = {.n_items = 6, .seed = 3, .n_threads = 1, .set_dir = cs}};
    ids_swap_result r;
    REQUIRE_OK(ids_swap_run(v, cat, &wo, false, &r, NULL, NULL, &err), err);
    const int S = IDS_SWAP_SET_COUNT, last = (r.n_layers - 1) * S;
    CHECK(r.set.used == 6 && r.set.no_relation == 8 && r.set.not_sampled == 10 && r.n_items + r.n_skipped == 6);
    CHECKF(fabs(r.diff[IDS_SWAP_IMAGE] - 1) < 1e-3 && fabs(r.diff[IDS_SWAP_TEXT]) < 1e-3, "layer 0: image %g text %g",
           r.diff[IDS_SWAP_IMAGE], r.diff[IDS_SWAP_TEXT]);
    CHECKF(fabs(r.diff[last + IDS_SWAP_TEXT] - 1) < 1e-3, "text rows at the last layer: %g", r.diff[last + IDS_SWAP_TEXT]);
    CHECK(r.prompting.n_sets == 1 && r.prompting.sets[0].n[0] == 4);
    ids_swap_result_free(&r);

    /* steering needs IDs of this model */
    int two[2] = {objs[0], objs[1]};
    ids_extract_opts eo = {.exp = {.objects = two, .n_objects = 2, .grid = 2, .n_threads = 1}, .sizes = sizes, .n_sizes = 1};
    const char *idd = t_tmp("coco-ids");
    REQUIRE_OK(ids_spatial_extract(v, cat, &eo, idd, NULL, NULL, &err), err);
    char ids_path[600];
    snprintf(ids_path, sizeof ids_path, "%s/ids.safetensors", idd);
    ids_steer_opts o = {.exp = {.n_items = 0, .seed = 4, .n_threads = 1, .set_dir = cs}, .ids_path = ids_path,
                        .factor = 1e-7f, .layer_lo = 1, .layer_hi = 2};
    ids_steer_result b;
    REQUIRE_OK(ids_steer_belief(v, cat, &o, &b, NULL, NULL, &err), err);
    CHECK(b.set.used == 24 && b.n_items + b.n_skipped == 24); /* every record: left/right or above/below, no cell needed */
    CHECK(b.relations == (1u << IDS_REL_LEFT_RIGHT | 1u << IDS_REL_ABOVE_BELOW) && b.prompting.n_sets == 2);
    for (int k = 0; k < b.n_band; k++) CHECK(b.rate_id[k] == 0.0f && b.rate_noise[k] == 0.0f);
    ids_steer_result_free(&b);
    o.relation = IDS_REL_ABOVE_BELOW, o.relation_only = true;
    REQUIRE_OK(ids_steer_belief(v, cat, &o, &b, NULL, NULL, &err), err);
    CHECK(b.set.used == 8 && b.set.no_relation == 16 && b.relations == 1u << IDS_REL_ABOVE_BELOW);
    ids_steer_result_free(&b);
    o.relation = IDS_REL_LEFT_RIGHT, o.relation_only = false;

    ids_steer_grid_result g;
    REQUIRE_OK(ids_steer_grid(v, cat, &o, &g, NULL, NULL, &err), err);
    CHECK(g.n_items == 16 && g.set.no_relation == 8);
    for (int t = 0; t < 4; t++) CHECKF(fabsf(g.delta[t]) < 1e-4f, "cell %d moved %g", t, g.delta[t]);
    ids_steer_grid_result_free(&g);
    /* the paper's variant: mirrored pairs, no true cell; a vanishing factor changes nothing, a small
     * one moves the answer oppositely for mirrored targets (they add opposite vectors) */
    o.variant = IDS_GRID_PAPER;
    REQUIRE_OK(ids_steer_grid(v, cat, &o, &g, NULL, NULL, &err), err);
    CHECK(g.n_items == 16 && g.variant == IDS_GRID_PAPER);
    for (int t = 0; t < 4; t++) CHECKF(fabsf(g.delta[t]) < 1e-4f, "cell %d moved %g", t, g.delta[t]);
    ids_steer_grid_result_free(&g);
    o.factor = 0.02f;
    REQUIRE_OK(ids_steer_grid(v, cat, &o, &g, NULL, NULL, &err), err);
    for (int y = 0; y < 2; y++) {
        const float d0 = g.delta[y * 2], d1 = g.delta[y * 2 + 1];
        CHECKF(fabsf(d0) > 1e-6f && fabsf(d0 + d1) <= 0.1f * fabsf(d0), "row %d: %g and its mirror %g", y, d0, d1);
    }
    ids_steer_grid_result_free(&g);
    o.factor = 1e-7f, o.variant = IDS_GRID_OURS;

    ids_depth_result d;
    REQUIRE_OK(ids_depth_diag(v, cat, &o, &d, NULL, NULL, &err), err);
    CHECK(d.n_grid == 24 && d.n_depth == 24 && d.set.used == 24); /* both questions about every image */
    for (int k = 0; k < d.n_band; k++) CHECK(fabsf(d.ab_down[k]) < 1e-4f && fabsf(d.fb_up[k]) < 1e-4f);
    CHECK(d.prompting.n_sets == 2);
    ids_depth_result_free(&d);

    /* the hue-shift control works on any image: the image rows at layer 0 still carry the whole edit */
    wo.hue = true;
    REQUIRE_OK(ids_swap_run(v, cat, &wo, true, &r, NULL, NULL, &err), err);
    CHECK(r.control && r.hue && r.n_items > 0);
    CHECKF(fabs(r.diff[IDS_SWAP_IMAGE] - 1) < 1e-3 && fabs(r.diff[IDS_SWAP_TEXT]) < 1e-3, "hue: layer 0: image %g text %g",
           r.diff[IDS_SWAP_IMAGE], r.diff[IDS_SWAP_TEXT]);
    const char *hd = t_tmp("hue");
    CHECK_OK_ERR(ids_swap_write(hd, &r, &err), err);
    snprintf(man, sizeof man, "%s/swap-hue.json", hd);
    char *hj = t_read_file(man, NULL);
    CHECK(hj && strstr(hj, "\"hue shift of the whole image\"") && strstr(hj, "\"command\":\t\"swap --hue\""));
    free(hj);
    ids_swap_result_free(&r);
    wo.hue = false;
    CHECK_EQ_INT(ids_swap_run(v, cat, &wo, true, &r, NULL, NULL, &err), IDS_ERR_ARG); /* recolouring needs drawn scenes */
    CHECK(strstr(err.msg, "--hue") != NULL);

    /* depth, raw as the paper: nothing without a push, opposite small pushes move it oppositely */
    o.raw = true;
    REQUIRE_OK(ids_depth_diag(v, cat, &o, &d, NULL, NULL, &err), err);
    for (int k = 0; k < d.n_band; k++) CHECK(fabsf(d.ab_down[k]) < 1e-4f && fabsf(d.fb_up[k]) < 1e-4f);
    CHECK(d.raw);
    ids_depth_result_free(&d);
    o.factor = 0.02f;
    REQUIRE_OK(ids_depth_diag(v, cat, &o, &d, NULL, NULL, &err), err);
    for (int k = 0; k < d.n_band; k++)
        CHECKF(fabsf(d.ab_down[k] + d.ab_up[k]) <= 0.2f * fabsf(d.ab_down[k]) + 1e-5f && fabsf(d.ab_down[k]) > 1e-6f,
               "layer %d: down %g up %g", d.layer_lo + k, d.ab_down[k], d.ab_up[k]);
    ids_depth_result_free(&d);
    o.raw = false, o.factor = 1e-7f;

    /* the What'sUp rows without instances: no boxes, so arbitrary steering from the true cell skips them */
    const char *nb = t_tmp("coco-nobox.json");
    REQUIRE_OK(ids_coco_spatial_convert("tests/fixtures/coco/coco_qa_two_obj.json", "/data/val2017", nb, &ok, &skipped, &err), err);
    o.exp.set_dir = nb;
    REQUIRE_OK(ids_steer_grid(v, cat, &o, &g, NULL, NULL, &err), err);
    CHECK(g.n_items == 0 && g.set.records == 3 && g.set.no_relation == 2 && g.set.no_box == 1);
    ids_steer_grid_result_free(&g);
    ids_catalog_free(cat);
    ids_vlm_free(v);
}

/* The paper's hue shift on known pixels: black and grey keep their colour (no hue, value kept);
 * pure red at the left edge of a 2-pixel image with a horizontal gradient (theta 0, one cycle,
 * phase 0: the rainbow's hue there is 0.5) moves 0.75 of the way to it the shorter way round, to
 * hue 0.625 = RGB (0, 64, 255). */
TEST(hue_shift_known_pixels) {
    ids_image im;
    ids_err err;
    REQUIRE_OK(ids_image_new(&im, 2, 2, (const uint8_t[3]){0, 0, 0}, &err), err);
    const uint8_t red[3] = {255, 0, 0}, grey[3] = {128, 128, 128};
    memcpy(im.rgb, red, 3);           /* (0, 0) */
    memcpy(im.rgb + 3 * 2, grey, 3);  /* (0, 1) */
    ids_image_hue_shift(&im, 0.0, 1.0, 0.0);
    CHECKF(im.rgb[0] == 0 && im.rgb[1] == 64 && im.rgb[2] == 255, "red became %d %d %d", im.rgb[0], im.rgb[1], im.rgb[2]);
    CHECK(im.rgb[3] == 0 && im.rgb[4] == 0 && im.rgb[5] == 0);
    CHECK(!memcmp(im.rgb + 6, grey, 3));
    ids_image_free(&im);
}

/* The default belief-steering band: every inner layer for a model made by idscope train, the
 * paper's LLaVA band scaled to the golden model's 4 layers (0.25..0.625 of them: 1..3), the Qwen2-VL
 * band to its 3 (6/28..16/28: 1..2). */
TEST(steer_default_bands) {
    ids_vlm *v;
    ids_err err;
    int lo, hi;
    REQUIRE_OK(ids_vlm_load(&v, "models/tiny-llava/text.gguf", "models/tiny-llava/mmproj.gguf", &err), err);
    ids_steer_default_band(v, &lo, &hi);
    CHECK(lo == 1 && hi == 5);
    ids_vlm_free(v);
    v = golden();
    REQUIRE(v);
    ids_steer_default_band(v, &lo, &hi);
    CHECK(lo == 1 && hi == 3);
    ids_vlm_free(v);
    REQUIRE_OK(ids_vlm_load(&v, t_shared("golden/qwen2vl-tiny/text.gguf"), t_shared("golden/qwen2vl-tiny/mmproj.gguf"), &err),
               err);
    ids_steer_default_band(v, &lo, &hi);
    CHECK(lo == 1 && hi == 2);
    ids_vlm_free(v);
}
