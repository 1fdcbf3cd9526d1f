/* Weight formats: the ggml type table, F16/BF16 conversion, dequantization and quantization.
 * Dequantizers transcribe ggml's reference formulas (ggml-quants.c) so that results match
 * `golden/quants/quants.gguf` exactly. */
#include "idscope/formats.h"
#include "base/internal.h"

#include <math.h>

typedef struct {
    const char *name;
    int64_t blck; /* elements per block */
    int64_t size; /* bytes per block */
} type_info;

static const type_info k_types[IDS_TYPE_COUNT] = {
    [IDS_TYPE_F32] = {"F32", 1, 4},          [IDS_TYPE_F16] = {"F16", 1, 2},
    [IDS_TYPE_Q4_0] = {"Q4_0", 32, 18},      [IDS_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [IDS_TYPE_Q5_0] = {"Q5_0", 32, 22},      [IDS_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [IDS_TYPE_Q8_0] = {"Q8_0", 32, 34},      [IDS_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [IDS_TYPE_Q2_K] = {"Q2_K", 256, 84},     [IDS_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [IDS_TYPE_Q4_K] = {"Q4_K", 256, 144},    [IDS_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [IDS_TYPE_Q6_K] = {"Q6_K", 256, 210},    [IDS_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [IDS_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [IDS_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [IDS_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [IDS_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [IDS_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},  [IDS_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [IDS_TYPE_IQ2_S] = {"IQ2_S", 256, 82},   [IDS_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [IDS_TYPE_I8] = {"I8", 1, 1},            [IDS_TYPE_I16] = {"I16", 1, 2},
    [IDS_TYPE_I32] = {"I32", 1, 4},          [IDS_TYPE_I64] = {"I64", 1, 8},
    [IDS_TYPE_F64] = {"F64", 1, 8},          [IDS_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [IDS_TYPE_BF16] = {"BF16", 1, 2},        [IDS_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [IDS_TYPE_TQ2_0] = {"TQ2_0", 256, 66},   [IDS_TYPE_MXFP4] = {"MXFP4", 32, 17},
    [IDS_TYPE_NVFP4] = {"NVFP4", 64, 36},    [IDS_TYPE_Q1_0] = {"Q1_0", 128, 18},
    [IDS_TYPE_Q2_0] = {"Q2_0", 64, 18},
};

static const type_info *info_of(int t) {
    if (t < 0 || t >= IDS_TYPE_COUNT || !k_types[t].name) return NULL;
    return &k_types[t];
}

const char *ids_type_name(int t) {
    const type_info *i = info_of(t);
    return i ? i->name : NULL;
}

int ids_type_from_name(const char *name) {
    for (int t = 0; t < IDS_TYPE_COUNT; t++) {
        if (!k_types[t].name) continue;
        const char *a = k_types[t].name, *b = name;
        while (*a && *b) {
            char cb = *b;
            if (cb >= 'a' && cb <= 'z') cb = (char)(cb - 'a' + 'A');
            if (*a != cb) break;
            a++, b++;
        }
        if (!*a && !*b) return t;
    }
    return -1;
}

int64_t ids_type_block_size(int t) {
    const type_info *i = info_of(t);
    return i ? i->blck : 0;
}

int64_t ids_type_block_bytes(int t) {
    const type_info *i = info_of(t);
    return i ? i->size : 0;
}

bool ids_type_can_dequantize(int t) {
    switch (t) {
    case IDS_TYPE_F32: case IDS_TYPE_F16: case IDS_TYPE_BF16: case IDS_TYPE_Q4_0:
    case IDS_TYPE_Q4_1: case IDS_TYPE_Q5_0: case IDS_TYPE_Q5_1: case IDS_TYPE_Q8_0:
    case IDS_TYPE_Q4_K: case IDS_TYPE_Q5_K: case IDS_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

int64_t ids_type_row_bytes(int t, int64_t n) {
    const type_info *i = info_of(t);
    if (!i || n < 0 || n % i->blck) return -1;
    uint64_t r;
    if (!ids__mul_ok((uint64_t)(n / i->blck), (uint64_t)i->size, &r) || r > INT64_MAX) return -1;
    return (int64_t)r;
}

/* ---- scalar conversions ---- */
float ids_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ids_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t man = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00); /* overflow → inf */
    if (e <= 0) {                                      /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exponent: ok */
    return (uint16_t)(sign | half);
}

float ids_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ids_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 64); /* quiet NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* F16 rows through the F16C instruction (exact, same results as the scalar conversion). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define IDS_HAVE_F16C_PATH 1
__attribute__((target("avx,f16c"))) static void f16_row_f16c(const unsigned char *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * i))));
    for (; i < n; i++) y[i] = ids_f16_to_f32(ids__rd16(x + 2 * i));
}
#endif

/* ---- dequantization (one function per format; blocks are read with memcpy, any alignment) ---- */
#define QK 32
#define QK_K 256

static inline float rd_half(const unsigned char *p) { return ids_f16_to_f32(ids__rd16(p)); }

static void deq_q4_0(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 18, y += QK) {
        const float d = rd_half(x);
        const unsigned char *qs = x + 2;
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = (qs[j] & 0x0F) - 8;
            const int x1 = (qs[j] >> 4) - 8;
            y[j] = x0 * d;
            y[j + QK / 2] = x1 * d;
        }
    }
}

static void deq_q4_1(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 20, y += QK) {
        const float d = rd_half(x), m = rd_half(x + 2);
        const unsigned char *qs = x + 4;
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = qs[j] & 0x0F;
            const int x1 = qs[j] >> 4;
            y[j] = x0 * d + m;
            y[j + QK / 2] = x1 * d + m;
        }
    }
}

static void deq_q5_0(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 22, y += QK) {
        const float d = rd_half(x);
        const uint32_t qh = ids__rd32(x + 2);
        const unsigned char *qs = x + 6;
        for (int j = 0; j < QK / 2; j++) {
            const unsigned char xh0 = (unsigned char)(((qh >> (j + 0)) << 4) & 0x10);
            const unsigned char xh1 = (unsigned char)(((qh >> (j + 12))) & 0x10);
            const int x0 = ((qs[j] & 0x0F) | xh0) - 16;
            const int x1 = ((qs[j] >> 4) | xh1) - 16;
            y[j] = x0 * d;
            y[j + QK / 2] = x1 * d;
        }
    }
}

static void deq_q5_1(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 24, y += QK) {
        const float d = rd_half(x), m = rd_half(x + 2);
        const uint32_t qh = ids__rd32(x + 4);
        const unsigned char *qs = x + 8;
        for (int j = 0; j < QK / 2; j++) {
            const unsigned char xh0 = (unsigned char)(((qh >> (j + 0)) << 4) & 0x10);
            const unsigned char xh1 = (unsigned char)(((qh >> (j + 12))) & 0x10);
            const int x0 = (qs[j] & 0x0F) | xh0;
            const int x1 = (qs[j] >> 4) | xh1;
            y[j] = x0 * d + m;
            y[j + QK / 2] = x1 * d + m;
        }
    }
}

static void deq_q8_0(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 34, y += QK) {
        const float d = rd_half(x);
        const signed char *qs = (const signed char *)(x + 2);
        for (int j = 0; j < QK; j++) y[j] = qs[j] * d;
    }
}

static inline void scale_min_k4(int j, const unsigned char *q, unsigned char *d, unsigned char *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (unsigned char)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (unsigned char)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

static void deq_q4_k(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 144) {
        const float d = rd_half(x), min = rd_half(x + 2);
        const unsigned char *scales = x + 4;
        const unsigned char *q = x + 16;
        int is = 0;
        unsigned char sc, m;
        for (int j = 0; j < QK_K; j += 64) {
            scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = min * m;
            scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

static void deq_q5_k(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 176) {
        const float d = rd_half(x), min = rd_half(x + 2);
        const unsigned char *scales = x + 4;
        const unsigned char *qh = x + 16;
        const unsigned char *ql = x + 48;
        int is = 0;
        unsigned char sc, m;
        unsigned u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64) {
            scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = min * m;
            scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

static void deq_q6_k(const unsigned char *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 210) {
        const float d = rd_half(x + 208);
        const unsigned char *ql = x;
        const unsigned char *qh = x + 128;
        const signed char *sc = (const signed char *)(x + 192);
        for (int n = 0; n < QK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

ids_status ids_dequantize(int type, const void *src, float *dst, int64_t n, ids_err *err) {
    const type_info *ti = info_of(type);
    if (!ti) return ids__err(err, IDS_ERR_FORMAT, "unknown tensor type id %d", type);
    if (n < 0 || n % ti->blck)
        return ids__err(err, IDS_ERR_ARG, "dequantize %s: %lld elements is not a multiple of %lld",
                        ti->name, (long long)n, (long long)ti->blck);
    const unsigned char *x = src;
    const int64_t nb = n / ti->blck;
    switch (type) {
    case IDS_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case IDS_TYPE_F16:
#ifdef IDS_HAVE_F16C_PATH
        if (ids__cpu_features() & IDS__CPU_F16C) {
            f16_row_f16c(x, dst, n);
            break;
        }
#endif
        for (int64_t i = 0; i < n; i++) dst[i] = ids_f16_to_f32(ids__rd16(x + 2 * i));
        break;
    case IDS_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = ids_bf16_to_f32(ids__rd16(x + 2 * i));
        break;
    case IDS_TYPE_Q4_0: deq_q4_0(x, dst, nb); break;
    case IDS_TYPE_Q4_1: deq_q4_1(x, dst, nb); break;
    case IDS_TYPE_Q5_0: deq_q5_0(x, dst, nb); break;
    case IDS_TYPE_Q5_1: deq_q5_1(x, dst, nb); break;
    case IDS_TYPE_Q8_0: deq_q8_0(x, dst, nb); break;
    case IDS_TYPE_Q4_K: deq_q4_k(x, dst, nb); break;
    case IDS_TYPE_Q5_K: deq_q5_k(x, dst, nb); break;
    case IDS_TYPE_Q6_K: deq_q6_k(x, dst, nb); break;
    default:
        return ids__err(err, IDS_ERR_UNSUPPORTED, "dequantize: tensor type %s is not supported",
                        ti->name);
    }
    return IDS_OK;
}

/* ---- quantization ---- */
static void quant_q8_0(const float *x, unsigned char *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) {
            const float v = fabsf(x[j]);
            if (v > amax) amax = v;
        }
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        uint16_t dh = ids_f32_to_f16(d);
        memcpy(y, &dh, 2);
        for (int j = 0; j < QK; j++) y[2 + j] = (unsigned char)(signed char)roundf(x[j] * id);
    }
}

ids_status ids_quantize(int type, const float *src, void *dst, int64_t n, ids_err *err) {
    const type_info *ti = info_of(type);
    if (!ti) return ids__err(err, IDS_ERR_ARG, "quantize: unknown type id %d", type);
    if (n < 0 || n % ti->blck)
        return ids__err(err, IDS_ERR_ARG, "quantize %s: %lld elements is not a multiple of %lld",
                        ti->name, (long long)n, (long long)ti->blck);
    unsigned char *y = dst;
    switch (type) {
    case IDS_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case IDS_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ids_f32_to_f16(src[i]);
            memcpy(y + 2 * i, &h, 2);
        }
        break;
    case IDS_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ids_f32_to_bf16(src[i]);
            memcpy(y + 2 * i, &h, 2);
        }
        break;
    case IDS_TYPE_Q8_0: quant_q8_0(src, y, n / QK); break;
    default:
        return ids__err(err, IDS_ERR_UNSUPPORTED, "quantize: target type %s is not supported",
                        ti->name);
    }
    return IDS_OK;
}
