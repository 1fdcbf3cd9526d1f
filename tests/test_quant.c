/* Weight formats against ggml's own dequantization (golden/quants/quants.gguf). */
#include "test.h"

static const char *QUANT_TYPES[] = {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                    "Q8_0", "Q4_K", "Q5_K", "Q6_K"};

static bool exact_type(const char *name) {
    return !strcmp(name, "F16") || !strcmp(name, "BF16") || !strcmp(name, "Q8_0");
}

/* Number of elements that differ beyond the tolerance of `name` (bit-exact or 1e-6 relative). */
static int64_t count_mismatch(const char *name, const float *got, const float *want, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (exact_type(name)) {
            if (memcmp(&got[i], &want[i], 4) != 0) bad++;
        } else {
            float d = fabsf(got[i] - want[i]);
            if (d > 1e-6f * fabsf(want[i]) && d > 1e-30f) bad++;
        }
    }
    return bad;
}

TEST(quant_golden_dequant) {
    ids_gguf *g;
    ids_err err;
    REQUIRE_OK(ids_gguf_open(&g, t_shared("golden/quants/quants.gguf"), &err), err);
    const ids_tensor *src = ids_gguf_find_tensor(g, "source");
    REQUIRE(src && src->type == IDS_TYPE_F32);
    for (size_t k = 0; k < sizeof QUANT_TYPES / sizeof *QUANT_TYPES; k++) {
        const char *name = QUANT_TYPES[k];
        char ename[64];
        snprintf(ename, sizeof ename, "%s.expected", name);
        const ids_tensor *q = ids_gguf_find_tensor(g, name);
        const ids_tensor *e = ids_gguf_find_tensor(g, ename);
        CHECKF(q && e, "tensors %s / %s missing", name, ename);
        if (!q || !e) continue;
        CHECKF(q->type == ids_type_from_name(name), "%s stored as %s", name, ids_type_name(q->type));
        int64_t n = ids_tensor_nelements(q);
        CHECK_EQ_INT(n, ids_tensor_nelements(e));
        float *got = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)n);
        CHECK_OK_ERR(ids_tensor_to_f32(q, got, &err), err);
        CHECK_OK_ERR(ids_tensor_to_f32(e, want, &err), err);
        int64_t bad = count_mismatch(name, got, want, n);
        CHECKF(bad == 0, "%s: %lld of %lld values differ from ggml's dequantization", name,
               (long long)bad, (long long)n);
        /* the checker itself must notice a one-ulp change */
        uint32_t bits;
        memcpy(&bits, &got[n / 2], 4);
        bits += exact_type(name) ? 1 : 64;
        memcpy(&got[n / 2], &bits, 4);
        if (want[n / 2] != 0.0f)
            CHECKF(count_mismatch(name, got, want, n) == 1, "%s: perturbed value not detected", name);
        /* row-wise access agrees with the whole-tensor path */
        int64_t rows = q->ne[1];
        if (rows > 2) {
            float *row = malloc(sizeof(float) * (size_t)q->ne[0]);
            CHECK_OK_ERR(ids_tensor_rows_f32(q, 2, 1, row, &err), err);
            CHECK(memcmp(row, want + 2 * q->ne[0], sizeof(float) * (size_t)q->ne[0]) == 0 ||
                  !exact_type(name));
            free(row);
        }
        free(got);
        free(want);
    }
    ids_gguf_close(g);
}

/* Our converters/quantizers reproduce the bytes ggml wrote for F16, BF16 and Q8_0. */
TEST(quant_golden_quantize_bytes) {
    ids_gguf *g;
    ids_err err;
    REQUIRE_OK(ids_gguf_open(&g, t_shared("golden/quants/quants.gguf"), &err), err);
    const ids_tensor *src = ids_gguf_find_tensor(g, "source");
    REQUIRE(src);
    int64_t n = ids_tensor_nelements(src);
    float *x = malloc(sizeof(float) * (size_t)n);
    CHECK_OK_ERR(ids_tensor_to_f32(src, x, &err), err);
    const char *names[] = {"F16", "BF16", "Q8_0"};
    for (int k = 0; k < 3; k++) {
        const ids_tensor *q = ids_gguf_find_tensor(g, names[k]);
        if (!q) continue;
        unsigned char *buf = malloc((size_t)q->nbytes);
        CHECK_OK_ERR(ids_quantize(q->type, x, buf, n, &err), err);
        size_t diff = 0;
        for (size_t i = 0; i < q->nbytes; i++) diff += buf[i] != ((const unsigned char *)q->data)[i];
        CHECKF(diff == 0, "%s: %zu of %llu bytes differ from ggml's", names[k], diff,
               (unsigned long long)q->nbytes);
        free(buf);
    }
    free(x);
    ids_gguf_close(g);
}

TEST(quant_f16_roundtrip_all) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ids_f16_to_f32((uint16_t)h);
        uint16_t back = ids_f32_to_f16(f);
        bool nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (nan ? !isnan(f) : back != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* known values */
    CHECK(ids_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ids_f16_to_f32(0xc000) == -2.0f);
    CHECK(ids_f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    CHECK(ids_f16_to_f32(0x7bff) == 65504.0f);
    CHECK_EQ_INT(ids_f32_to_f16(65520.0f), 0x7c00);           /* rounds up to inf */
    CHECK_EQ_INT(ids_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie -> even */
    CHECK_EQ_INT(ids_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* tie -> even (up) */
    CHECK_EQ_INT(ids_f32_to_f16(2.98023224e-08f), 0x0000);    /* half of min subnormal: tie -> 0 */
    CHECK_EQ_INT(ids_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(ids_f32_to_bf16(1.00390625f), 0x3f80); /* tie -> even */
    CHECK_EQ_INT(ids_f32_to_bf16(1.01171875f), 0x3f82); /* tie -> even (up) */
    CHECK(ids_bf16_to_f32(0xc0a0) == -5.0f);
}

TEST(quant_type_table) {
    CHECK_EQ_INT(ids_type_block_size(IDS_TYPE_Q4_K), 256);
    CHECK_EQ_INT(ids_type_block_bytes(IDS_TYPE_Q4_K), 144);
    CHECK_EQ_INT(ids_type_block_bytes(IDS_TYPE_Q6_K), 210);
    CHECK_EQ_INT(ids_type_block_bytes(IDS_TYPE_Q5_0), 22);
    CHECK_EQ_INT(ids_type_row_bytes(IDS_TYPE_Q8_0, 64), 68);
    CHECK_EQ_INT(ids_type_row_bytes(IDS_TYPE_Q8_0, 65), -1);
    CHECK(ids_type_name(4) == NULL); /* removed type ids */
    CHECK(ids_type_name(43) == NULL);
    CHECK_EQ_INT(ids_type_from_name("q5_k"), IDS_TYPE_Q5_K);
    CHECK_EQ_INT(ids_type_from_name("Q5_KX"), -1);
    ids_err err;
    float y[32];
    unsigned char x[34] = {0};
    CHECK_EQ_INT(ids_dequantize(IDS_TYPE_Q8_0, x, y, 31, &err), IDS_ERR_ARG);
    CHECK_EQ_INT(ids_dequantize(IDS_TYPE_IQ2_XXS, x, y, 256, &err), IDS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "IQ2_XXS") != NULL);
    CHECK_EQ_INT(ids_dequantize(99, x, y, 32, &err), IDS_ERR_FORMAT);
}

TEST(quant_q8_0_error_bound) {
    float x[256], y[256];
    unsigned char q[8 * 34];
    uint32_t s = 12345;
    for (int i = 0; i < 256; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / (float)(1 << 24) - 0.5f) * (float)(1 + i % 7);
    }
    ids_err err;
    CHECK_OK_ERR(ids_quantize(IDS_TYPE_Q8_0, x, q, 256, &err), err);
    CHECK_OK_ERR(ids_dequantize(IDS_TYPE_Q8_0, q, y, 256, &err), err);
    for (int b = 0; b < 8; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
        for (int j = 0; j < 32; j++) {
            float e = fabsf(x[32 * b + j] - y[32 * b + j]);
            /* half a step, plus the fp16 rounding of the scale (127 * 2^-11 of a step) */
            CHECKF(e <= amax / 127.0f * (0.5f + 127.0f / 2048.0f) + 1e-6f, "block %d elem %d error %g", b, j, e);
        }
    }
}
