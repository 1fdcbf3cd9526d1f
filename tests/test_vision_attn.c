/* The vision towers' tiled attention (src/engine/vision.c): with a key block of a few keys every
 * group runs the online softmax over many blocks, and the projector's rows must equal the one-block
 * run to float rounding and the golden references (NumPy transcriptions of HF) as closely as the
 * golden tests require, for every tower family. */
#include "test.h"
#include "engine/vision.h"

typedef struct {
    const char *dir; /* shared (1) or tests/golden (0) */
    int shared;
} tower_golden;

static const tower_golden k_towers[] = {
    {"llava-tiny", 1},     {"qwen2vl-tiny", 1},   {"qwen25vl-tiny", 0},
    {"qwen3vl-tiny", 0},   {"gemma3-tiny", 0},    {"internvl-tiny", 0},
};

static const char *golden_path(const tower_golden *t, const char *file) {
    static char buf[4][512];
    static int k;
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/%s", t->dir, file);
    char *b = buf[k++ % 4];
    if (t->shared) snprintf(b, 512, "%s", t_shared(rel));
    else snprintf(b, 512, "tests/%s", rel);
    return b;
}

/* The projector's rows of the golden image with the given key block (0: the default). */
static float *encode_with(const ids_vision *v, const ids_image *img, int key_block, size_t *n, ids_err *err) {
    ids_vplan pl;
    if (ids_vision_plan(v, img, 1, &pl, err)) return NULL;
    *n = (size_t)pl.n_out * ids_vision_params(v)->n_out_embd;
    float *out = malloc(*n * sizeof(float));
    ids__vision_set_key_block(key_block);
    ids_status st = out ? ids_vision_encode(v, img, 2, out, NULL, err) : IDS_ERR_NOMEM;
    ids__vision_set_key_block(0);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

TEST(vattn_tiles_equal_one_block_and_goldens) {
    for (size_t i = 0; i < sizeof k_towers / sizeof *k_towers; i++) {
        const tower_golden *t = &k_towers[i];
        ids_vision *v;
        ids_image img;
        ids_npy ref;
        ids_err err;
        REQUIRE_OK(ids_vision_load(&v, golden_path(t, "mmproj.gguf"), &err), err);
        REQUIRE_OK(ids_image_load(&img, golden_path(t, "image.png"), &err), err);
        REQUIRE_OK(ids_npy_read(golden_path(t, "expected/image_embd.npy"), &ref, &err), err);
        size_t n1 = 0, n3 = 0;
        float *one = encode_with(v, &img, 0, &n1, &err), *tiled = encode_with(v, &img, 3, &n3, &err);
        CHECKF(one && tiled && n1 == n3 && n1 * 4 == ref.nbytes, "%s: %s", t->dir, t_msg(&err));
        if (one && tiled && n1 == n3 && n1 * 4 == ref.nbytes) {
            double dmax = 0, rmax = 0, gmax = 0;
            const float *r = ref.data;
            for (size_t k = 0; k < n1; k++) {
                dmax = fmax(dmax, fabs((double)tiled[k] - one[k]));
                rmax = fmax(rmax, fabs((double)one[k]));
                gmax = fmax(gmax, fabs((double)tiled[k] - r[k]));
            }
            printf("     %-14s key blocks of 3 vs one block: max |diff| %.2g (of max |x| %.2g); vs golden %.2g\n",
                   t->dir, dmax, rmax, gmax);
            CHECKF(dmax <= 1e-5 * rmax, "%s: tiled vs one block: %g of %g", t->dir, dmax, rmax);
            CHECKF(gmax <= 2e-5, "%s: tiled vs golden: %g", t->dir, gmax);
        }
        free(one);
        free(tiled);
        ids_npy_free(&ref);
        ids_image_free(&img);
        ids_vision_free(v);
    }
}

/* The scratch per thread is a tile, bounded whatever the group: Gemma 3's 4096 patches need 64 query
 * rows x 2048 keys (512 KB), not 4096^2 floats (64 MB). */
TEST(vattn_scratch_bounded) {
    CHECK_EQ_INT(ids__vision_attn_scratch(4096), 64 * 2048);
    CHECK_EQ_INT(ids__vision_attn_scratch(16384), 64 * 2048);
    CHECK_EQ_INT(ids__vision_attn_scratch(577), 64 * 577);
    CHECK_EQ_INT(ids__vision_attn_scratch(16), 16 * 16);
}
