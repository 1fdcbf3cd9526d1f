/* x86 micro-kernels of the matrix products (formats in gemm.h). Each is compiled for its own
 * instruction set through a target attribute and called only when cpuid says the CPU has it, so the
 * build machine's CPU does not matter. Register blocking: an MR x NR tile of C lives in registers
 * for a whole block of K; per step of K one (pair, group of 4) row of the packed B block is loaded
 * and every row of A is broadcast against it. */
#include "base/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define T_AVX2 __attribute__((target("avx2,fma")))
#define T_512 __attribute__((target("avx512f,fma")))
#define T_BF16 __attribute__((target("avx512f,avx512bf16,fma")))
#define T_VNNI __attribute__((target("avx512f,avx512vnni,fma")))

/* ---------------------------------------------------------------------------------------- */
/* AVX2 + FMA, F32: 6 x 16 (12 accumulators)                                                   */

T_AVX2 static void k_avx2_f32(int kb, const void *a_, const void *b_, float *c, size_t ldc, int m, int n,
                              int acc) {
    enum { MR = 6, NR = 16 };
    const float *a = a_, *b = b_;
    __m256 c0[MR], c1[MR];
    if (acc && n == NR) {
        for (int i = 0; i < MR; i++) {
            c0[i] = i < m ? _mm256_loadu_ps(c + (size_t)i * ldc) : _mm256_setzero_ps();
            c1[i] = i < m ? _mm256_loadu_ps(c + (size_t)i * ldc + 8) : _mm256_setzero_ps();
        }
    } else if (acc) {
        float t[NR];
        for (int i = 0; i < MR; i++) {
            memset(t, 0, sizeof t);
            if (i < m) memcpy(t, c + (size_t)i * ldc, (size_t)n * sizeof(float));
            c0[i] = _mm256_loadu_ps(t);
            c1[i] = _mm256_loadu_ps(t + 8);
        }
    } else {
        for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kb; k++) {
        const __m256 b0 = _mm256_load_ps(b + (size_t)k * NR), b1 = _mm256_load_ps(b + (size_t)k * NR + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + (size_t)k * MR + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < m; i++) {
        if (n == NR) {
            _mm256_storeu_ps(c + (size_t)i * ldc, c0[i]);
            _mm256_storeu_ps(c + (size_t)i * ldc + 8, c1[i]);
        } else {
            float t[NR];
            _mm256_storeu_ps(t, c0[i]);
            _mm256_storeu_ps(t + 8, c1[i]);
            memcpy(c + (size_t)i * ldc, t, (size_t)n * sizeof(float));
        }
    }
}

/* AVX2 + FMA, int8 values as floats: 6 x 16. Per block of 32 the products of int8 values sum
 * exactly in F32 (every partial sum is an integer below 2^24), then acc += sum * (dx * dw) as in
 * the portable int8 kernel, so the results are the same bits. C stays in a local tile (the block
 * sums take the registers). */
T_AVX2 static void k_avx2_i8f(int kb, const void *a_, const void *b_, float *c, size_t ldc, int m, int n, int acc) {
    enum { MR = 6, NR = 16 };
    const float *a = a_, *b = b_;
    float t[MR][NR] __attribute__((aligned(32)));
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) t[i][j] = acc && i < m && j < n ? c[(size_t)i * ldc + j] : 0.0f;
    for (int blk = 0; blk < kb / 32; blk++) {
        const float *ab = a + (size_t)blk * 33 * MR, *bb = b + (size_t)blk * 33 * NR;
        __m256 s0[MR], s1[MR];
        for (int i = 0; i < MR; i++) s0[i] = s1[i] = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) {
            const __m256 b0 = _mm256_load_ps(bb + k * NR), b1 = _mm256_load_ps(bb + k * NR + 8);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                const __m256 ai = _mm256_broadcast_ss(ab + k * MR + i);
                s0[i] = _mm256_fmadd_ps(ai, b0, s0[i]);
                s1[i] = _mm256_fmadd_ps(ai, b1, s1[i]);
            }
        }
        const __m256 d0 = _mm256_load_ps(bb + 32 * NR), d1 = _mm256_load_ps(bb + 32 * NR + 8);
        for (int i = 0; i < MR; i++) {
            const __m256 sx = _mm256_broadcast_ss(ab + 32 * MR + i);
            _mm256_store_ps(t[i], _mm256_fmadd_ps(s0[i], _mm256_mul_ps(d0, sx), _mm256_load_ps(t[i])));
            _mm256_store_ps(t[i] + 8, _mm256_fmadd_ps(s1[i], _mm256_mul_ps(d1, sx), _mm256_load_ps(t[i] + 8)));
        }
    }
    for (int i = 0; i < m; i++) memcpy(c + (size_t)i * ldc, t[i], (size_t)n * sizeof(float));
}

/* ---------------------------------------------------------------------------------------- */
/* AVX-512, 14 x 32 tiles (28 accumulators): F32 and bf16 pairs                                */

T_512 static inline __mmask16 mask16(int n) { return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* The 14 x 32 tile of C in 28 registers: loaded (acc, rows < m, columns < n) or zero, and stored. */
T_512 static inline void ld_c(__m512 *c0, __m512 *c1, const float *c, size_t ldc, int m, __mmask16 m0, __mmask16 m1,
                               int acc, int mr) {
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        const bool ld = acc && i < m;
        c0[i] = ld ? _mm512_maskz_loadu_ps(m0, c + (size_t)i * ldc) : _mm512_setzero_ps();
        c1[i] = ld ? _mm512_maskz_loadu_ps(m1, c + (size_t)i * ldc + 16) : _mm512_setzero_ps();
    }
}

T_512 static inline void st_c(const __m512 *c0, const __m512 *c1, float *c, size_t ldc, int m, __mmask16 m0,
                               __mmask16 m1, int mr) {
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        if (i >= m) break;
        _mm512_mask_storeu_ps(c + (size_t)i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(c + (size_t)i * ldc + 16, m1, c1[i]);
    }
}

/* The 14 x 32 F32 kernel on B as F32 panels, or (half) as F16 panels [kb][32] widened in registers: the
 * same products, so the same bits, in half the bytes (F16P). */
T_512 static inline __attribute__((always_inline)) void k_f32_tile(int kb, const float *a, const void *b_, float *c,
                                                                   size_t ldc, int m, int n, int acc, bool half) {
    enum { MR = 14, NR = 32 };
    const float *bf = b_;
    const uint16_t *bh = b_;
    const __mmask16 m0 = mask16(n), m1 = mask16(n - 16);
    __m512 c0[MR], c1[MR];
    ld_c(c0, c1, c, ldc, m, m0, m1, acc, MR);
    for (int k = 0; k < kb; k++) {
        const __m512 b0 = half ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(bh + (size_t)k * NR)))
                               : _mm512_load_ps(bf + (size_t)k * NR);
        const __m512 b1 = half ? _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(bh + (size_t)k * NR + 16)))
                               : _mm512_load_ps(bf + (size_t)k * NR + 16);
        const float *ak = a + (size_t)k * MR;
        _mm_prefetch((const char *)(ak + 16 * MR), _MM_HINT_T0);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(ak[i]);
            c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
        }
    }
    st_c(c0, c1, c, ldc, m, m0, m1, MR);
}

T_512 static void k_avx512_f32(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n, int acc) {
    k_f32_tile(kb, a, b, c, ldc, m, n, acc, false);
}

T_512 static void k_avx512_f32h(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n, int acc) {
    k_f32_tile(kb, a, b, c, ldc, m, n, acc, true);
}

T_BF16 static void k_avx512_bf16(int kb, const void *a_, const void *b_, float *c, size_t ldc, int m, int n,
                                 int acc) {
    enum { MR = 14, NR = 32 };
    const uint32_t *a = a_, *b = b_;
    const __mmask16 m0 = mask16(n), m1 = mask16(n - 16);
    __m512 c0[MR], c1[MR];
    ld_c(c0, c1, c, ldc, m, m0, m1, acc, MR);
    for (int k = 0; k < kb / 2; k++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(b + (size_t)k * NR);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(b + (size_t)k * NR + 16);
        const uint32_t *ak = a + (size_t)k * MR;
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)ak[i]);
            c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
            c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
        }
    }
    st_c(c0, c1, c, ldc, m, m0, m1, MR);
}

/* ---------------------------------------------------------------------------------------- */
/* AVX-512 VNNI, int8 blocks of 32: 6 x 32 (12 integer + 12 float accumulators)                */

T_VNNI static void k_vnni_i8(int kb, const void *a_, const void *b_, float *c, size_t ldc, int m, int n,
                             int acc) {
    enum { MR = 6, NR = 32 };
    const unsigned char *a = a_, *b = b_;
    const __mmask16 m0 = mask16(n), m1 = mask16(n - 16);
    __m512 f0[MR], f1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        const bool ld = acc && i < m;
        f0[i] = ld ? _mm512_maskz_loadu_ps(m0, c + (size_t)i * ldc) : _mm512_setzero_ps();
        f1[i] = ld ? _mm512_maskz_loadu_ps(m1, c + (size_t)i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int blk = 0; blk < kb / 32; blk++) {
        const unsigned char *ab = a + (size_t)blk * 40 * MR, *bb = b + (size_t)blk * 36 * NR;
        __m512i s0[MR], s1[MR];
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            int32_t corr;
            memcpy(&corr, ab + 36 * MR + 4 * i, 4);
            s0[i] = s1[i] = _mm512_set1_epi32(corr);
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m512i b0 = _mm512_load_si512(bb + g * 4 * NR), b1 = _mm512_load_si512(bb + g * 4 * NR + 64);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                int32_t av;
                memcpy(&av, ab + g * 4 * MR + 4 * i, 4);
                const __m512i ai = _mm512_set1_epi32(av);
                s0[i] = _mm512_dpbusd_epi32(s0[i], b0, ai);
                s1[i] = _mm512_dpbusd_epi32(s1[i], b1, ai);
            }
        }
        const __m512 d0 = _mm512_load_ps(bb + 32 * NR), d1 = _mm512_load_ps(bb + 32 * NR + 64);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float dx;
            memcpy(&dx, ab + 32 * MR + 4 * i, 4);
            const __m512 sx = _mm512_set1_ps(dx);
            f0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[i]), _mm512_mul_ps(d0, sx), f0[i]);
            f1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[i]), _mm512_mul_ps(d1, sx), f1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        _mm512_mask_storeu_ps(c + (size_t)i * ldc, m0, f0[i]);
        _mm512_mask_storeu_ps(c + (size_t)i * ldc + 16, m1, f1[i]);
    }
}


/* ---------------------------------------------------------------------------------------- */
/* Packing of weight blocks for the 32-wide AVX-512 kernels: 16 x 16 transposes of 32-bit units  */

/* r[c] becomes column c of the 16 x 16 matrix whose rows were r[0..15]. */
T_512 static inline void tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    /* r[4i + c], 128-bit lane L: column 4L + c of rows 4i..4i+3 */
    for (int c = 0; c < 4; c++) {
        const __m512 x0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), x1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        const __m512 y0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88),
                     y1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        t[c] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        t[8 + c] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        t[4 + c] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* F32 [kb][32] from F32 rows (kv valid values each; rows past n and values past kv are zeros). */
T_512 static void pack_b_f32_512(const float *w, size_t ldw, const int8_t *q, size_t ldq, const float *d, size_t ldd,
                                 int n, int kv, int kb, void *dst) {
    (void)q, (void)ldq, (void)d, (void)ldd;
    float *o = dst;
    int k = 0;
    for (; k + 16 <= kv; k += 16)
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = h * 16 + i < n ? _mm512_loadu_ps(w + (size_t)(h * 16 + i) * ldw + k) : _mm512_setzero_ps();
            tr16(r);
            for (int c = 0; c < 16; c++) _mm512_store_ps(o + (size_t)(k + c) * 32 + h * 16, r[c]);
        }
    for (; k < kb; k++)
        for (int j = 0; j < 32; j++) o[(size_t)k * 32 + j] = j < n && k < kv ? w[(size_t)j * ldw + k] : 0.0f;
}

/* I8 blocks of 32 (bytes + 128, scales) from int8 rows. */
T_512 static void pack_b_i8_512(const float *w, size_t ldw, const int8_t *q, size_t ldq, const float *d, size_t ldd,
                                int n, int kv, int kb, void *dst) {
    (void)w, (void)ldw, (void)kv;
    enum { NR = 32 };
    unsigned char *o = dst;
    const int nb = kb / 32;
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                const __m512i v = h * 16 + i < n ? _mm512_loadu_si512(q + (size_t)(h * 16 + i) * ldq + b * 32)
                                                 : _mm512_setzero_si512();
                r[i] = _mm512_castsi512_ps(_mm512_xor_si512(v, flip));
            }
            tr16(r);
            for (int u = 0; u < 16; u++)
                _mm512_store_ps((float *)(o + (size_t)(b + u / 8) * 36 * NR + (u % 8) * 4 * NR + h * 64), r[u]);
        }
        for (int bb = b; bb < b + 2; bb++)
            for (int j = 0; j < NR; j++) {
                const float sc = j < n ? d[(size_t)j * ldd + bb] : 0.0f;
                memcpy(o + (size_t)bb * 36 * NR + 32 * NR + 4 * j, &sc, 4);
            }
    }
    for (; b < nb; b++) {
        unsigned char *ob = o + (size_t)b * 36 * NR;
        for (int j = 0; j < NR; j++) {
            const int8_t *r = j < n ? q + (size_t)j * ldq + b * 32 : NULL;
            for (int t = 0; t < 32; t++) ob[(t / 4) * 4 * NR + 4 * j + t % 4] = (unsigned char)((r ? r[t] : 0) + 128);
            const float sc = r ? d[(size_t)j * ldd + b] : 0.0f;
            memcpy(ob + 32 * NR + 4 * j, &sc, 4);
        }
    }
}

/* BF16 pairs [kb/2][32] from F32 rows (vcvtne2ps2bf16: round to nearest even). */
T_BF16 static void pack_b_bf16_512(const float *w, size_t ldw, const int8_t *q, size_t ldq, const float *d,
                                   size_t ldd, int n, int kv, int kb, void *dst) {
    (void)q, (void)ldq, (void)d, (void)ldd;
    uint32_t *o = dst;
    int k = 0;
    for (; k + 32 <= kv; k += 32)
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                if (h * 16 + i < n) {
                    const float *x = w + (size_t)(h * 16 + i) * ldw + k;
                    r[i] = (__m512)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(x));
                } else {
                    r[i] = _mm512_setzero_ps();
                }
            }
            tr16(r);
            for (int c = 0; c < 16; c++) _mm512_store_ps((float *)(o + (size_t)(k / 2 + c) * 32 + h * 16), r[c]);
        }
    for (; k < kb; k += 2)
        for (int j = 0; j < 32; j++) {
            const float *x = j < n ? w + (size_t)j * ldw : NULL;
            const uint32_t lo = x && k < kv ? ids__f32_to_bf16(x[k]) : 0, hi = x && k + 1 < kv ? ids__f32_to_bf16(x[k + 1]) : 0;
            o[(size_t)(k / 2) * 32 + j] = lo | hi << 16;
        }
}

/* X rows into 14-row tiles (F32 [k][14], or bf16 pairs [k/2][14]) through 16 x 16 transposes;
 * blocks of kc values of K blk_stride bytes apart (kc a multiple of 32). */
T_512 static void pack_a_f32_512(const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride, int kc) {
    enum { MR = 14 };
    for (int k = 0; k < K; k += 16) {
        const __mmask16 mk = mask16(K - k);
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < m && i < MR ? _mm512_maskz_loadu_ps(mk, X + (size_t)i * ldx + k) : _mm512_setzero_ps();
        tr16(r);
        float *o = (float *)((unsigned char *)dst + (size_t)(k / kc) * blk_stride) + (size_t)(k % kc) * MR;
        for (int c = 0; c < 16 && k + c < K; c++) _mm512_mask_storeu_ps(o + (size_t)c * MR, 0x3fff, r[c]);
    }
}

T_BF16 static void pack_a_bf16_512(const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride, int kc) {
    enum { MR = 14 };
    const int kp = (K + 1) & ~1;
    for (int k = 0; k < kp; k += 32) {
        const __mmask16 m0 = mask16(K - k), m1 = mask16(K - k - 16);
        __m512 r[16];
        for (int i = 0; i < 16; i++) {
            if (i < m && i < MR) {
                const float *x = X + (size_t)i * ldx + k;
                r[i] = (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m0, x));
            } else {
                r[i] = _mm512_setzero_ps();
            }
        }
        tr16(r);
        uint32_t *o = (uint32_t *)((unsigned char *)dst + (size_t)(k / kc) * blk_stride) + (size_t)(k % kc) / 2 * MR;
        for (int p = 0; p < 16 && k + 2 * p < kp; p++) _mm512_mask_storeu_ps((float *)(o + (size_t)p * MR), 0x3fff, r[p]);
    }
}

/* 32 values of X (masks: the valid ones) as int8, quantized exactly as ids__gemm_quantize_row does (the
 * same bits): the bytes into w, the scale into *d; returns their sum. */
T_512 static inline int32_t q8_block(const float *x, __mmask16 m0, __mmask16 m1, uint32_t w[8], float *d) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    __m512 x0 = _mm512_maskz_loadu_ps(m0, x), x1 = _mm512_maskz_loadu_ps(m1, x + 16);
    /* NaN counts as 0 (the portable quantizer skips it in the maximum and maps it to 0) */
    x0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x0, x0, _CMP_ORD_Q), x0);
    x1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x1, x1, _CMP_ORD_Q), x1);
    const __m512 a = _mm512_max_ps(_mm512_abs_ps(x1), _mm512_abs_ps(x0));
    const float amax = _mm512_reduce_max_ps(a);
    const float inv = amax > 0.0f && amax <= 3.4e38f ? 127.0f / amax : 0.0f;
    *d = inv > 0.0f ? amax / 127.0f : 0.0f;
    const __m512 vi = _mm512_set1_ps(inv);
    __m512 v0 = _mm512_mul_ps(x0, vi), v1 = _mm512_mul_ps(x1, vi);
    /* clamp to [-127, 127]; NaN (unordered) to 0 */
    v0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v0, v0, _CMP_ORD_Q), _mm512_min_ps(_mm512_max_ps(v0, lo), hi));
    v1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v1, v1, _CMP_ORD_Q), _mm512_min_ps(_mm512_max_ps(v1, lo), hi));
    v0 = _mm512_sub_ps(_mm512_add_ps(v0, magic), magic);
    v1 = _mm512_sub_ps(_mm512_add_ps(v1, magic), magic);
    const __m512i q0 = _mm512_cvttps_epi32(v0), q1 = _mm512_cvttps_epi32(v1);
    _mm_storeu_si128((__m128i *)w, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(w + 4), _mm512_cvtepi32_epi8(q1));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}

/* X rows into int8 tiles of mr rows, per block of 32: the values ([8][mr][4] s8 for VNNI, or row-major
 * [mr][32] for AMX), mr scales, mr corrections (-128 * sum). */
T_512 static inline __attribute__((always_inline)) void pack_a_q8(const float *X, size_t ldx, int m, int K, void *dst,
                                                                  size_t blk_stride, int kc, int mr, bool rowmajor) {
    const int kp = (K + 31) & ~31;
    for (int b = 0; b < kp / 32; b++) {
        const int k = b * 32;
        unsigned char *ob = (unsigned char *)dst + (size_t)(k / kc) * blk_stride + (size_t)(k % kc) / 32 * 40 * mr;
        const __mmask16 m0 = mask16(K - k), m1 = mask16(K - k - 16);
        for (int i = 0; i < mr; i++) {
            float d = 0.0f;
            int32_t sum = 0;
            uint32_t w[8] = {0};
            if (i < m) sum = q8_block(X + (size_t)i * ldx + k, m0, m1, w, &d);
            if (rowmajor) memcpy(ob + 32 * i, w, 32);
            else
                for (int g = 0; g < 8; g++) memcpy(ob + g * 4 * mr + 4 * i, &w[g], 4);
            const int32_t corr = -128 * sum;
            memcpy(ob + 32 * mr + 4 * i, &d, 4);
            memcpy(ob + 36 * mr + 4 * i, &corr, 4);
        }
    }
}

T_512 static void pack_a_i8_512(const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride, int kc) {
    pack_a_q8(X, ldx, m, K, dst, blk_stride, kc, 6, false);
}

T_512 static void pack_a_amxi_512(const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride, int kc) {
    pack_a_q8(X, ldx, m, K, dst, blk_stride, kc, 32, true);
}

/* X rows into AMX bf16 tiles: per step of 32 along K, [32 rows][32] bf16. */
T_BF16 static void pack_a_amxb_512(const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride, int kc) {
    enum { MR = 32 };
    const int kp = (K + 31) & ~31;
    for (int k = 0; k < kp; k += 32) {
        const __mmask16 m0 = mask16(K - k), m1 = mask16(K - k - 16);
        unsigned char *o = (unsigned char *)dst + (size_t)(k / kc) * blk_stride + (size_t)(k % kc) * MR * 2;
        for (int i = 0; i < MR; i++) {
            __m512i v = _mm512_setzero_si512();
            if (i < m) {
                const float *x = X + (size_t)i * ldx + k;
                v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16), _mm512_maskz_loadu_ps(m0, x));
            }
            _mm512_storeu_si512(o + (size_t)i * 64, v);
        }
    }
}

/* 16 F16 values from h (n of them valid, the rest zeros) as floats. */
T_512 static inline __m512 ld_f16(const uint16_t *h, int n) {
    if (n >= 16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
    uint16_t t[16] = {0};
    if (n > 0) memcpy(t, h, (size_t)n * 2);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)t));
}

/* F32 [kb][32] from F16 rows, or (half) F16 panels [kb][32]: 16 x 16 transposes of the values widened to
 * F32 (exact), stored as they are or narrowed back (exact). */
T_512 static inline __attribute__((always_inline)) void pack_bh_any(const uint16_t *h, size_t ldh, int n, int kv,
                                                                    int kb, void *dst, bool half) {
    for (int k = 0; k < kb; k += 16)
        for (int hf = 0; hf < 2; hf++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = hf * 16 + i < n ? ld_f16(h + (size_t)(hf * 16 + i) * ldh + k, kv - k) : _mm512_setzero_ps();
            tr16(r);
            for (int c = 0; c < 16 && k + c < kb; c++) {
                const size_t at = (size_t)(k + c) * 32 + hf * 16;
                if (half)
                    _mm256_store_si256((__m256i *)((uint16_t *)dst + at),
                                       _mm512_cvtps_ph(r[c], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                else
                    _mm512_store_ps((float *)dst + at, r[c]);
            }
        }
}

T_512 static void pack_bh_f32_512(const uint16_t *h, size_t ldh, int n, int kv, int kb, void *dst) {
    pack_bh_any(h, ldh, n, kv, kb, dst, false);
}

T_512 static void pack_bh_f16p_512(const uint16_t *h, size_t ldh, int n, int kv, int kb, void *dst) {
    pack_bh_any(h, ldh, n, kv, kb, dst, true);
}

/* bf16 pairs [kb/2][32] from F16 rows (through F32, round to nearest even). */
T_BF16 static void pack_bh_bf16_512(const uint16_t *h, size_t ldh, int n, int kv, int kb, void *dst) {
    uint32_t *o = dst;
    for (int k = 0; k < kb; k += 32)
        for (int hf = 0; hf < 2; hf++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) {
                if (hf * 16 + i < n) {
                    const uint16_t *x = h + (size_t)(hf * 16 + i) * ldh + k;
                    r[i] = (__m512)_mm512_cvtne2ps_pbh(ld_f16(x + 16, kv - k - 16), ld_f16(x, kv - k));
                } else {
                    r[i] = _mm512_setzero_ps();
                }
            }
            tr16(r);
            for (int c = 0; c < 16 && k + 2 * c < kb; c++) _mm512_store_ps((float *)(o + (size_t)(k / 2 + c) * 32 + hf * 16), r[c]);
        }
}

const ids__gemm_packb_f16 ids__pbh_avx512_f32 = pack_bh_f32_512, ids__pbh_avx512_bf16 = pack_bh_bf16_512,
                           ids__pbh_avx512_f16p = pack_bh_f16p_512;
const ids__gemm_packa ids__pa_avx512_f32 = pack_a_f32_512, ids__pa_avx512_bf16 = pack_a_bf16_512,
                      ids__pa_avx512_i8 = pack_a_i8_512, ids__pa_avx512_amxb = pack_a_amxb_512,
                      ids__pa_avx512_amxi = pack_a_amxi_512;
const ids__gemm_kernel ids__k_avx2_f32 = k_avx2_f32, ids__k_avx512_f32 = k_avx512_f32,
                       ids__k_avx512_bf16 = k_avx512_bf16, ids__k_vnni_i8 = k_vnni_i8, ids__k_avx2_i8f = k_avx2_i8f,
                       ids__k_avx512_f32h = k_avx512_f32h;
const ids__gemm_packb ids__pb_avx512_f32 = pack_b_f32_512, ids__pb_avx512_bf16 = pack_b_bf16_512,
                      ids__pb_avx512_i8 = pack_b_i8_512;
#else
const ids__gemm_kernel ids__k_avx2_f32 = NULL, ids__k_avx512_f32 = NULL, ids__k_avx512_bf16 = NULL,
                       ids__k_vnni_i8 = NULL, ids__k_avx2_i8f = NULL, ids__k_avx512_f32h = NULL;
const ids__gemm_packb ids__pb_avx512_f32 = NULL, ids__pb_avx512_bf16 = NULL, ids__pb_avx512_i8 = NULL;
const ids__gemm_packa ids__pa_avx512_f32 = NULL, ids__pa_avx512_bf16 = NULL, ids__pa_avx512_i8 = NULL,
                      ids__pa_avx512_amxb = NULL, ids__pa_avx512_amxi = NULL;
const ids__gemm_packb_f16 ids__pbh_avx512_f32 = NULL, ids__pbh_avx512_bf16 = NULL, ids__pbh_avx512_f16p = NULL;
#endif
