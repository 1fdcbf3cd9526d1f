/* Matrix products: dispatch, packing, the threaded driver and the portable kernels (gemm.h). */
#include "idscope/base.h"
#include "base/gemm.h"

#include <math.h>
#include <pthread.h>

static const char *const k_path_names[IDS__PATH_COUNT] = {"scalar", "avx2", "avx512", "avx512bf16", "vnni",
                                                          "amx"};

const char *ids__gemm_path_name(ids__gemm_path p) {
    return (unsigned)p < IDS__PATH_COUNT ? k_path_names[p] : "?";
}

static unsigned path_needs(ids__gemm_path p) {
    const unsigned avx2 = IDS__CPU_AVX2 | IDS__CPU_FMA, avx512 = avx2 | IDS__CPU_AVX512F;
    switch (p) {
    case IDS__PATH_SCALAR: return 0;
    case IDS__PATH_AVX2: return avx2;
    case IDS__PATH_AVX512: return avx512;
    case IDS__PATH_AVX512BF16: return avx512 | IDS__CPU_AVX512_BF16;
    case IDS__PATH_VNNI: return avx512 | IDS__CPU_AVX512_VNNI;
    case IDS__PATH_AMX: return avx512 | IDS__CPU_AVX512_BF16 | IDS__CPU_AMX_BF16 | IDS__CPU_AMX_INT8;
    default: return ~0u;
    }
}

static bool compiled(ids__gemm_path p) {
    switch (p) {
    case IDS__PATH_SCALAR: return true;
    case IDS__PATH_AVX2: return ids__k_avx2_f32 != NULL;
    case IDS__PATH_AVX512: return ids__k_avx512_f32 != NULL;
    case IDS__PATH_AVX512BF16: return ids__k_avx512_bf16 != NULL;
    case IDS__PATH_VNNI: return ids__k_vnni_i8 != NULL;
    case IDS__PATH_AMX: return ids__k_avx512_f32 != NULL && ids__k_amx_bf16 != NULL;
    default: return false;
    }
}

bool ids__gemm_path_ok(ids__gemm_path p) {
    unsigned need = path_needs(p);
    if (!compiled(p) || (ids__cpu_features() & need) != need) return false;
    return p != IDS__PATH_AMX || !*ids__gemm_amx_problem();
}

static ids__gemm_path best_path(void) {
    const unsigned f = ids__cpu_features();
    if ((f & IDS__CPU_AMX_BF16) && ids__gemm_path_ok(IDS__PATH_AMX)) return IDS__PATH_AMX;
    if (ids__gemm_path_ok(IDS__PATH_AVX512)) {
        /* bf16 and vnni are separate paths only to be forced in turn; the default uses both */
        if ((f & IDS__CPU_AVX512_BF16) && ids__gemm_path_ok(IDS__PATH_AVX512BF16)) return IDS__PATH_AVX512BF16;
        if (ids__gemm_path_ok(IDS__PATH_VNNI)) return IDS__PATH_VNNI;
        return IDS__PATH_AVX512;
    }
    return ids__gemm_path_ok(IDS__PATH_AVX2) ? IDS__PATH_AVX2 : IDS__PATH_SCALAR;
}

ids_status ids__gemm_path_env(ids__gemm_path *out, ids_err *err) {
    const char *s = getenv("IDSCOPE_CPU");
    *out = best_path();
    if (!s || !*s) return IDS_OK;
    for (int p = 0; p < IDS__PATH_COUNT; p++) {
        if (strcmp(s, k_path_names[p])) continue;
        if (!ids__gemm_path_ok((ids__gemm_path)p)) {
            char flags[256];
            ids_cpu_describe(NULL, 0, flags, sizeof flags);
            const unsigned need = path_needs((ids__gemm_path)p);
            if (p == IDS__PATH_AMX && (ids__cpu_features() & need) == need)
                return ids__err(err, IDS_ERR_UNSUPPORTED, "IDSCOPE_CPU=amx: %s", ids__gemm_amx_problem());
            return ids__err(err, IDS_ERR_UNSUPPORTED, "IDSCOPE_CPU=%s: this CPU lacks the instructions of that "
                            "kernel path (it has: %s)", s, *flags ? flags : "none of the SIMD extensions");
        }
        *out = (ids__gemm_path)p;
        return IDS_OK;
    }
    return ids__err(err, IDS_ERR_UNSUPPORTED, "IDSCOPE_CPU=%s is not a kernel path (scalar, avx2, avx512, "
                    "avx512bf16, vnni or amx)", s);
}

const char *ids_cpu_path(void) {
    ids__gemm_path p;
    if (ids__gemm_path_env(&p, NULL)) p = best_path();
    return k_path_names[p];
}

/* ------------------------------------------------------------------------------------------ */
/* Portable kernels: the same chains of operations as the SIMD ones (one fmaf per k for F32; per
 * block of 32 an exact integer sum, then one fmaf with the product of the scales for I8), so that
 * the F32 and I8 results are the same bit for bit on every path. */

static void k_scalar_f32(int kb, const void *a_, const void *b_, float *c, size_t ldc, int m, int n, int acc) {
    enum { MR = 4, NR = 16 };
    const float *a = a_, *b = b_;
    float t[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) t[i][j] = acc && i < m && j < n ? c[(size_t)i * ldc + j] : 0.0f;
    for (int k = 0; k < kb; k++)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) t[i][j] = fmaf(a[k * MR + i], b[k * NR + j], t[i][j]);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = t[i][j];
}

/* I8 with MR 6, NR 32 (the layout of the VNNI kernel, which it stands in for elsewhere). */
enum { I8_MR = 6, I8_NR = 32 };

static void k_scalar_i8(int kb, const void *a_, const void *b_, float *c, size_t ldc, int m, int n, int acc) {
    const unsigned char *a = a_, *b = b_;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float f = acc ? c[(size_t)i * ldc + j] : 0.0f;
            for (int blk = 0; blk < kb / 32; blk++) {
                const unsigned char *ab = a + (size_t)blk * 40 * I8_MR, *bb = b + (size_t)blk * 36 * I8_NR;
                int32_t s;
                memcpy(&s, ab + 32 * I8_MR + 4 * I8_MR + 4 * i, 4);
                for (int g = 0; g < 8; g++)
                    for (int t = 0; t < 4; t++)
                        s += (int32_t)bb[g * 4 * I8_NR + 4 * j + t] * (int32_t)(int8_t)ab[g * 4 * I8_MR + 4 * i + t];
                float dx, dw;
                memcpy(&dx, ab + 32 * I8_MR + 4 * i, 4);
                memcpy(&dw, bb + 32 * I8_NR + 4 * j, 4);
                f = fmaf((float)s, dw * dx, f);
            }
            c[(size_t)i * ldc + j] = f;
        }
}

void ids__gemm_init_amx(ids__gemm *g, ids_precision prec, bool emulated) {
    memset(g, 0, sizeof *g);
    g->path = IDS__PATH_AMX;
    g->prec = prec;
    g->mr = 32, g->nr = 32, g->kc = 256, g->tile_outer = true; /* (a tile of X and a block of W fit in L1) */
    g->tiles_off = emulated ? ids__amx_off_emu : ids__amx_off;
    /* the vectorised packers where this CPU has their instructions (the emulated kernels run anywhere; the
     * tiles come with AVX-512 BF16) */
    const unsigned f = ids__cpu_features();
    const bool x512 = (f & IDS__CPU_AVX512F) != 0, bf16 = x512 && (f & IDS__CPU_AVX512_BF16);
    if (prec == IDS_PREC_INT8) {
        g->fmt = IDS__FMT_AMXI;
        g->kernel = emulated ? ids__k_amx_i8_emu : ids__k_amx_i8;
        g->tiles_on = emulated ? ids__amx_on_i8_emu : ids__amx_on_i8;
        if (x512) g->pack_a = ids__pa_avx512_amxi, g->pack_b = ids__pb_avx512_i8;
        g->kernel_name = emulated ? "amx-i8-32x32-emulated" : "amx-i8-32x32";
    } else {
        IDS_ASSERT(prec == IDS_PREC_BF16);
        g->fmt = IDS__FMT_AMXB;
        g->kernel = emulated ? ids__k_amx_bf16_emu : ids__k_amx_bf16;
        g->tiles_on = emulated ? ids__amx_on_bf16_emu : ids__amx_on_bf16;
        if (bf16) g->pack_a = ids__pa_avx512_amxb, g->pack_b = ids__pb_avx512_bf16, g->pack_b_f16 = ids__pbh_avx512_bf16;
        g->kernel_name = emulated ? "amx-bf16-32x32-emulated" : "amx-bf16-32x32";
    }
}

void ids__gemm_init(ids__gemm *g, ids__gemm_path path, ids_precision prec) {
    if (path == IDS__PATH_AMX && prec != IDS_PREC_F32) {
        ids__gemm_init_amx(g, prec, false);
        return;
    }
    memset(g, 0, sizeof *g);
    g->path = path;
    g->prec = prec;
    const bool x512 = path >= IDS__PATH_AVX512 && ids__k_avx512_f32;
    if (prec == IDS_PREC_INT8) {
        g->fmt = IDS__FMT_I8;
        g->mr = I8_MR, g->nr = I8_NR, g->kc = 1024;
        const bool vnni = ids__k_vnni_i8 && (path == IDS__PATH_VNNI ||
                                             (path >= IDS__PATH_AVX512BF16 && (ids__cpu_features() & IDS__CPU_AVX512_VNNI)));
        g->kernel = vnni ? ids__k_vnni_i8 : k_scalar_i8;
        if (path >= IDS__PATH_AVX512) g->pack_b = ids__pb_avx512_i8, g->pack_a = ids__pa_avx512_i8;
        g->kernel_name = vnni ? "vnni-i8-6x32" : "scalar-i8-6x32";
        if (!vnni && path >= IDS__PATH_AVX2 && ids__k_avx2_i8f) { /* the int8 values as exact floats */
            g->fmt = IDS__FMT_I8F;
            g->mr = 6, g->nr = 16, g->kc = 256;
            g->kernel = ids__k_avx2_i8f;
            g->pack_a = NULL, g->pack_b = NULL;
            g->kernel_name = "avx2-i8f-6x16";
        }
        return;
    }
    const bool dpbf16 = prec == IDS_PREC_BF16 && ids__k_avx512_bf16 &&
                        (path == IDS__PATH_AVX512BF16 || (path == IDS__PATH_AMX && (ids__cpu_features() & IDS__CPU_AVX512_BF16)));
    if (dpbf16) {
        g->fmt = IDS__FMT_BF16P;
        g->mr = 14, g->nr = 32, g->kc = 1024, g->tile_outer = true;
        g->kernel = ids__k_avx512_bf16;
        g->pack_b = ids__pb_avx512_bf16;
        g->pack_b_f16 = ids__pbh_avx512_bf16;
        g->pack_a = ids__pa_avx512_bf16;
        g->kernel_name = "avx512bf16-14x32";
        return;
    }
    g->fmt = IDS__FMT_F32;
    g->round_bf16 = prec == IDS_PREC_BF16;
    if (x512) {
        g->mr = 14, g->nr = 32, g->kc = 256;
        g->kernel = ids__k_avx512_f32;
        if (!g->round_bf16)
            g->pack_b = ids__pb_avx512_f32, g->pack_a = ids__pa_avx512_f32, g->pack_b_f16 = ids__pbh_avx512_f32;
        g->kernel_name = "avx512-f32-14x32";
    } else if (path >= IDS__PATH_AVX2 && ids__k_avx2_f32) {
        g->mr = 6, g->nr = 16, g->kc = 256;
        g->kernel = ids__k_avx2_f32;
        g->kernel_name = "avx2-f32-6x16";
    } else {
        g->mr = 4, g->nr = 16, g->kc = 256;
        g->kernel = k_scalar_f32;
        g->kernel_name = "scalar-f32-4x16";
    }
}

bool ids__gemm_f16_variant(const ids__gemm *g, ids__gemm *out) {
    if (g->fmt != IDS__FMT_F32 || g->round_bf16 || g->kernel != ids__k_avx512_f32 || !ids__k_avx512_f32h ||
        !ids__pbh_avx512_f16p)
        return false;
    *out = *g;
    out->fmt = IDS__FMT_F16P;
    out->kc = 1024, out->tile_outer = true; /* (F16 blocks are half the bytes: long blocks of K pay here) */
    out->kernel = ids__k_avx512_f32h;
    out->pack_b = NULL; /* (F16P reads F16 rows only) */
    out->pack_b_f16 = ids__pbh_avx512_f16p;
    out->kernel_name = "avx512-f32h-14x32";
    return true;
}

uint32_t ids__gemm_layout_key(const ids__gemm *g) {
    return (uint32_t)g->fmt | (uint32_t)g->round_bf16 << 4 | (uint32_t)g->nr << 5 | (uint32_t)g->kc << 12;
}

ids_status ids__gemm_select(ids__gemm *g, ids_precision prec, ids_err *err) {
    if ((unsigned)prec >= IDS_PREC_COUNT) return ids__err(err, IDS_ERR_ARG, "precision %d is not one of f32, bf16, int8", (int)prec);
    ids__gemm_path p;
    ids_status st = ids__gemm_path_env(&p, err);
    if (st) return st;
    ids__gemm_init(g, p, prec);
    return IDS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Packing                                                                                     */

static size_t a_off(const ids__gemm *g, int k);

int ids__gemm_kpad(const ids__gemm *g, int K) {
    switch (g->fmt) {
    case IDS__FMT_BF16P: return (K + 1) & ~1;
    case IDS__FMT_I8:
    case IDS__FMT_I8F:
    case IDS__FMT_AMXB:
    case IDS__FMT_AMXI: return (K + 31) & ~31;
    default: return K;
    }
}

size_t ids__gemm_tile_bytes(const ids__gemm *g, int K) {
    const int kp = ids__gemm_kpad(g, K), blocks = (kp + g->kc - 1) / g->kc;
    return (size_t)blocks * a_off(g, g->kc);
}



void ids__gemm_quantize_row(const float *x, int K, int kpad, int8_t *q, float *d) {
    for (int b = 0; b < kpad / 32; b++) {
        const int n = K - b * 32 < 32 ? (K - b * 32 > 0 ? K - b * 32 : 0) : 32;
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int t = 0; t < n; t++) {
            const float v = fabsf(xb[t]);
            amax = v > amax ? v : amax; /* (NaN is skipped) */
        }
        const float inv = amax > 0.0f && amax <= 3.4e38f ? 127.0f / amax : 0.0f;
        d[b] = inv > 0.0f ? amax / 127.0f : 0.0f;
        int8_t *qb = q + b * 32;
        for (int t = 0; t < 32; t++) {
            float v = t < n ? xb[t] * inv : 0.0f;
            v = v >= -127.0f ? (v <= 127.0f ? v : 127.0f) : (v < -127.0f ? -127.0f : 0.0f); /* NaN: 0 */
            /* round to nearest even: adding 1.5 * 2^23 leaves no fraction bits */
            qb[t] = (int8_t)(int)((v + 12582912.0f) - 12582912.0f);
        }
    }
}

/* Offset of k (a multiple of 2, or of 32 for I8) inside a tile's block, and bytes of one tile's block. */
static size_t a_off(const ids__gemm *g, int k) {
    switch (g->fmt) {
    case IDS__FMT_BF16P:
    case IDS__FMT_AMXB: return (size_t)k / 2 * g->mr * 4;
    case IDS__FMT_I8:
    case IDS__FMT_AMXI: return (size_t)k / 32 * 40 * g->mr;
    case IDS__FMT_I8F: return (size_t)k / 32 * 33 * g->mr * 4;
    default: return (size_t)k * g->mr * 4;
    }
}

void ids__gemm_pack_a(const ids__gemm *g, const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride) {
    const int MR = g->mr, kc = g->kc;
    unsigned char *base = dst;
    if (!blk_stride) blk_stride = a_off(g, kc);
    if (g->pack_a) {
        g->pack_a(X, ldx, m, K, dst, blk_stride, kc);
        return;
    }
#define A_AT(k) (base + (size_t)((k) / kc) * blk_stride + a_off(g, (k) % kc))
    if (g->fmt == IDS__FMT_F32 || g->fmt == IDS__FMT_F16P) {
        for (int k = 0; k < K; k++) {
            float *o = (float *)A_AT(k);
            for (int i = 0; i < MR; i++) {
                float v = i < m ? X[(size_t)i * ldx + k] : 0.0f;
                o[i] = g->round_bf16 ? ids__bf16_round(v) : v;
            }
        }
    } else if (g->fmt == IDS__FMT_BF16P) {
        const int kp = ids__gemm_kpad(g, K);
        for (int k = 0; k < kp; k += 2) {
            uint32_t *o = (uint32_t *)A_AT(k);
            for (int i = 0; i < MR; i++) {
                const float *x = X + (size_t)i * ldx;
                uint32_t lo = i < m ? ids__f32_to_bf16(x[k]) : 0;
                uint32_t hi = i < m && k + 1 < K ? ids__f32_to_bf16(x[k + 1]) : 0;
                o[i] = lo | hi << 16;
            }
        }
    } else if (g->fmt == IDS__FMT_AMXB) {
        const int kp = ids__gemm_kpad(g, K);
        for (int k = 0; k < kp; k += 32) {
            uint16_t *o = (uint16_t *)A_AT(k);
            for (int i = 0; i < MR; i++)
                for (int t = 0; t < 32; t++)
                    o[i * 32 + t] = i < m && k + t < K ? ids__f32_to_bf16(X[(size_t)i * ldx + k + t]) : 0;
        }
    } else if (g->fmt == IDS__FMT_I8F) {
        const int kp = ids__gemm_kpad(g, K);
        int8_t q[32];
        float d;
        for (int b = 0; b < kp / 32; b++) {
            float *ob = (float *)A_AT(b * 32);
            for (int i = 0; i < MR; i++) {
                if (i < m) {
                    const int n = K - b * 32 < 32 ? K - b * 32 : 32;
                    ids__gemm_quantize_row(X + (size_t)i * ldx + b * 32, n, 32, q, &d);
                } else {
                    memset(q, 0, sizeof q);
                    d = 0.0f;
                }
                for (int t = 0; t < 32; t++) ob[t * MR + i] = (float)q[t];
                ob[32 * MR + i] = d;
            }
        }
    } else {
        const int kp = ids__gemm_kpad(g, K);
        int8_t q[32];
        float d;
        for (int b = 0; b < kp / 32; b++) {
            unsigned char *ob = A_AT(b * 32);
            for (int i = 0; i < MR; i++) {
                int32_t sum = 0;
                if (i < m) {
                    const int n = K - b * 32 < 32 ? K - b * 32 : 32;
                    ids__gemm_quantize_row(X + (size_t)i * ldx + b * 32, n, 32, q, &d);
                } else {
                    memset(q, 0, sizeof q);
                    d = 0.0f;
                }
                for (int t = 0; t < 32; t++) {
                    ob[g->fmt == IDS__FMT_AMXI ? i * 32 + t : (t / 4) * 4 * MR + 4 * i + t % 4] = (unsigned char)q[t];
                    sum += q[t];
                }
                int32_t corr = -128 * sum;
                memcpy(ob + 32 * MR + 4 * i, &d, 4);
                memcpy(ob + 36 * MR + 4 * i, &corr, 4);
            }
        }
    }
#undef A_AT
}

/* The layout of B in a format (the AMX formats use those of the AVX-512 kernels). */
static ids__gemm_fmt b_fmt(ids__gemm_fmt f) {
    return f == IDS__FMT_AMXB ? IDS__FMT_BF16P : f == IDS__FMT_AMXI ? IDS__FMT_I8 : f;
}

static bool int8_fmt(ids__gemm_fmt f) { return f == IDS__FMT_I8 || f == IDS__FMT_I8F || f == IDS__FMT_AMXI; }

/* One block of kb values along K (kv of them valid, the rest zeros) of n (<= NR) weight rows into the
 * kernel's layout; rows past n are zeros. F32 and BF16P read F32 rows w (stride ldw) starting at the
 * block; I8 reads int8 rows q (stride ldq, kb / 32 blocks) with their scales d (stride ldd). */
static void pack_b(const ids__gemm *g, const float *w, size_t ldw, const int8_t *q, size_t ldq, const float *d,
                   size_t ldd, int n, int kv, int kb, void *dst) {
    const int NR = g->nr;
    const ids__gemm_fmt fmt = b_fmt(g->fmt);
    IDS_ASSERT(fmt != IDS__FMT_F16P); /* packed from F16 rows only (ids__gemm_run) */
    if (fmt == IDS__FMT_F32) {
        float *o = dst;
        for (int j = 0; j < NR; j++) {
            if (j >= n) {
                for (int k = 0; k < kb; k++) o[(size_t)k * NR + j] = 0.0f;
                continue;
            }
            const float *r = w + (size_t)j * ldw;
            if (g->round_bf16)
                for (int k = 0; k < kv; k++) o[(size_t)k * NR + j] = ids__bf16_round(r[k]);
            else
                for (int k = 0; k < kv; k++) o[(size_t)k * NR + j] = r[k];
            for (int k = kv; k < kb; k++) o[(size_t)k * NR + j] = 0.0f;
        }
    } else if (fmt == IDS__FMT_BF16P) {
        uint32_t *o = dst;
        for (int j = 0; j < NR; j++) {
            const float *r = j < n ? w + (size_t)j * ldw : NULL;
            for (int k = 0; k < kb; k += 2) {
                uint32_t lo = r && k < kv ? ids__f32_to_bf16(r[k]) : 0;
                uint32_t hi = r && k + 1 < kv ? ids__f32_to_bf16(r[k + 1]) : 0;
                o[(size_t)(k / 2) * NR + j] = lo | hi << 16;
            }
        }
    } else if (fmt == IDS__FMT_I8F) {
        float *o = dst;
        for (int b = 0; b < kb / 32; b++) {
            float *ob = o + (size_t)b * 33 * NR;
            for (int j = 0; j < NR; j++) {
                const int8_t *r = j < n ? q + (size_t)j * ldq + b * 32 : NULL;
                for (int t = 0; t < 32; t++) ob[t * NR + j] = r ? (float)r[t] : 0.0f;
                ob[32 * NR + j] = r ? d[(size_t)j * ldd + b] : 0.0f;
            }
        }
    } else {
        unsigned char *o = dst;
        for (int b = 0; b < kb / 32; b++) {
            unsigned char *ob = o + (size_t)b * 36 * NR;
            for (int j = 0; j < NR; j++) {
                const int8_t *r = j < n ? q + (size_t)j * ldq + b * 32 : NULL;
                for (int t = 0; t < 32; t++)
                    ob[(t / 4) * 4 * NR + 4 * j + t % 4] = (unsigned char)((r ? r[t] : 0) + 128);
                float sc = r ? d[(size_t)j * ldd + b] : 0.0f;
                memcpy(ob + 32 * NR + 4 * j, &sc, 4);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Driver                                                                                      */

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Panels per task: the packed blocks of a task's panels stay in L2 while every row tile of X
 * passes over them, so X is read from memory once per task and block of K. */
#define GROUP_MAX 4
#define KC_MAX IDS__GEMM_MAX_KB

/* Per-thread parts: F32 rows of one block, int8 rows and scales, the packed blocks of a group. */
static size_t thread_rows_bytes(void) { return round64((size_t)GROUP_MAX * IDS__GEMM_MAX_NR * KC_MAX * sizeof(float)); }
static size_t thread_q_bytes(void) { return round64((size_t)GROUP_MAX * IDS__GEMM_MAX_NR * KC_MAX); }
static size_t thread_d_bytes(void) { return round64((size_t)GROUP_MAX * IDS__GEMM_MAX_NR * (KC_MAX / 32) * 4); }
static size_t block_bytes(void) { return round64((size_t)IDS__GEMM_MAX_NR * KC_MAX * 4 + 64); }
static size_t thread_blocks_bytes(void) { return GROUP_MAX * block_bytes(); }

ids_status ids__gemm_ws_init(ids__gemm_ws *ws, int n_threads, int max_rows, int max_k, ids_err *err) {
    memset(ws, 0, sizeof *ws);
    if (n_threads < 1) n_threads = 1;
    if (max_rows < 1) max_rows = 1;
    if (max_k < 1) max_k = 1;
    ws->n_threads = n_threads, ws->max_rows = max_rows, ws->max_k = max_k;
    /* the largest packed X over every format: F32 tiles of the tallest kernel */
    const size_t tiles = ((size_t)max_rows + IDS__GEMM_MAX_MR - 1) / IDS__GEMM_MAX_MR + 1;
    ws->a_bytes = round64(tiles * IDS__GEMM_MAX_MR * ((size_t)max_k + KC_MAX) * sizeof(float));
    ws->thread_bytes = thread_rows_bytes() + thread_q_bytes() + thread_d_bytes() + thread_blocks_bytes();
    ws->a_mem = ids__malloc(ws->a_bytes + 64);
    ws->thread_mem = ids__malloc(ws->thread_bytes * (size_t)n_threads + 64);
    if (!ws->a_mem || !ws->thread_mem) {
        ids__gemm_ws_free(ws);
        return ids__err(err, IDS_ERR_NOMEM, "out of memory for matmul buffers (%d rows, K %d, %d threads)",
                        max_rows, max_k, n_threads);
    }
    ws->a = (unsigned char *)ws->a_mem + (64 - (uintptr_t)ws->a_mem % 64);
    ws->thread = (unsigned char *)ws->thread_mem + (64 - (uintptr_t)ws->thread_mem % 64);
    ws->bytes = ws->a_bytes + ws->thread_bytes * (size_t)n_threads + 128;
    return IDS_OK;
}

void ids__gemm_ws_free(ids__gemm_ws *ws) {
    free(ws->a_mem);
    free(ws->thread_mem);
    memset(ws, 0, sizeof *ws);
}

/* Bytes of one packed block of kb values of K (64-byte multiples, so that every block is aligned). */
static size_t pblock_bytes(const ids__gemm *g, int kb) {
    const size_t NR = (size_t)g->nr;
    switch (b_fmt(g->fmt)) {
    case IDS__FMT_BF16P: return round64((size_t)kb / 2 * NR * 4);
    case IDS__FMT_I8: return round64((size_t)kb / 32 * 36 * NR);
    case IDS__FMT_I8F: return round64((size_t)kb / 32 * 33 * NR * 4);
    case IDS__FMT_F16P: return round64((size_t)kb * NR * 2);
    default: return round64((size_t)kb * NR * 4);
    }
}

/* Bytes of one panel of W packed whole: its blocks of KC one after the other. */
static size_t panel_bytes(const ids__gemm *g, int K) {
    const int kpad = ids__gemm_kpad(g, K), full = kpad / g->kc, rest = kpad % g->kc;
    return (size_t)full * pblock_bytes(g, g->kc) + (rest ? pblock_bytes(g, rest) : 0);
}

size_t ids__gemm_packed_bytes(const ids__gemm *g, int N, int K) {
    return (size_t)((N + g->nr - 1) / g->nr) * panel_bytes(g, K);
}

/* One product of a run: its weights, output, panels per task and first task. */
typedef struct {
    const ids__gemm_src *W;
    float *Y;
    size_t ldy;
    int group, t0;
    ids__gemm_src packed; /* W once its first chunk of rows has packed it (pack_into) */
} run_prod;

typedef struct {
    const ids__gemm *g;
    ids__gemm_ws *ws;
    const float *X;
    size_t ldx;
    int m0, M, K, kpad;
    size_t tile, blk_stride; /* bytes of one tile over all of K; of one block of K over every tile */
    run_prod prod[IDS__GEMM_MAX_MULTI];
    int n_prod;
    unsigned char *pack_dst; /* ids__gemm_pack_weights: where the panels go (of prod[0].W) */
} run_job;

/* Thread tid's buffers: F32 rows of a block, int8 rows and scales, the packed blocks of a group. */
typedef struct {
    float *rows;
    int8_t *q;
    float *d;
    unsigned char *blocks;
} thread_bufs;

static thread_bufs thread_buffers(const ids__gemm_ws *ws, int tid) {
    unsigned char *th = ws->thread + (size_t)tid * ws->thread_bytes;
    return (thread_bufs){(float *)th, (int8_t *)(th + thread_rows_bytes()),
                         (float *)(th + thread_rows_bytes() + thread_q_bytes()),
                         th + thread_rows_bytes() + thread_q_bytes() + thread_d_bytes()};
}

/* Block [k0, k0 + kb) (kv of it inside W) of the weight rows [c0, c0 + cols) in the kernel's layout: panel
 * p at dst + p * stride. */
static void pack_group(const ids__gemm *g, const ids__gemm_src *W, const thread_bufs *tb, int c0, int cols, int k0,
                       int kb, int kv, unsigned char *dst, size_t stride) {
    const int NR = g->nr, n_panels = (cols + NR - 1) / NR;
    if (W->f16 && g->pack_b_f16) { /* F16 rows straight into the panels */
        for (int p = 0; p < n_panels; p++) {
            const int n = cols - p * NR < NR ? cols - p * NR : NR;
            g->pack_b_f16(W->f16 + (size_t)(c0 + p * NR) * W->ld + k0, W->ld, n, kv, kb, dst + (size_t)p * stride);
        }
        return;
    }
    IDS_ASSERT(g->fmt != IDS__FMT_F16P);
    const float *w = NULL;
    size_t ldw = (size_t)kb;
    if (int8_fmt(g->fmt) && W->fetch_q8) {
        W->fetch_q8(W->ctx, c0, cols, k0, kb, tb->q, (size_t)kb, tb->d, (size_t)kb / 32);
    } else {
        if (W->f32) {
            w = W->f32 + (size_t)c0 * W->ld + k0;
            ldw = W->ld;
        } else {
            W->fetch(W->ctx, c0, cols, k0, kv, tb->rows, (size_t)kb);
            w = tb->rows;
        }
        if (int8_fmt(g->fmt))
            for (int r = 0; r < cols; r++)
                ids__gemm_quantize_row(w + (size_t)r * ldw, kv, kb, tb->q + (size_t)r * kb, tb->d + (size_t)r * (kb / 32));
    }
    for (int p = 0; p < n_panels; p++) {
        const int n = cols - p * NR < NR ? cols - p * NR : NR;
        const float *wp = w ? w + (size_t)p * NR * ldw : NULL;
        const int8_t *qp = tb->q + (size_t)p * NR * kb;
        const float *dp = tb->d + (size_t)p * NR * (kb / 32);
        void *out = dst + (size_t)p * stride;
        if (g->pack_b) g->pack_b(wp, ldw, qp, (size_t)kb, dp, (size_t)kb / 32, n, kv, kb, out);
        else pack_b(g, wp, ldw, qp, (size_t)kb, dp, (size_t)kb / 32, n, kv, kb, out);
    }
}

static void pack_a_task(void *arg, int t, int nt, int tid) {
    (void)nt, (void)tid;
    run_job *j = arg;
    const int MR = j->g->mr, r0 = t * MR, m = j->M - r0 < MR ? j->M - r0 : MR;
    ids__gemm_pack_a(j->g, j->X + (size_t)(j->m0 + r0) * j->ldx, j->ldx, m, j->K,
                     j->ws->a + (size_t)t * a_off(j->g, j->g->kc), j->blk_stride);
}

/* Start loading rows [n0, n0 + nr) of W at [k0, k0 + kv) into L2. */
static void prefetch_rows(const ids__gemm_src *W, int n0, int nr, int k0, int kv) {
    if (W->prefetch) {
        W->prefetch(W->ctx, n0, nr, k0, kv);
    } else if (W->f32) {
        for (int r = 0; r < nr; r++)
            for (int k = 0; k < kv; k += 16) __builtin_prefetch(W->f32 + (size_t)(n0 + r) * W->ld + k0 + k, 0, 2);
    } else if (W->f16) {
        for (int r = 0; r < nr; r++)
            for (int k = 0; k < kv; k += 32) __builtin_prefetch(W->f16 + (size_t)(n0 + r) * W->ld + k0 + k, 0, 2);
    }
}

/* Task t of ids__gemm_pack_weights: the panels of group t, every block of K. */
static void pack_w_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    run_job *j = arg;
    const ids__gemm *g = j->g;
    const ids__gemm_src *W = j->prod[0].W;
    const int NR = g->nr, c0 = t * GROUP_MAX * NR, cols = W->n - c0 < GROUP_MAX * NR ? W->n - c0 : GROUP_MAX * NR;
    const size_t pb = panel_bytes(g, j->K), full = pblock_bytes(g, g->kc);
    const thread_bufs tb = thread_buffers(j->ws, tid);
    for (int k0 = 0; k0 < j->kpad; k0 += g->kc) {
        const int kb = j->kpad - k0 < g->kc ? j->kpad - k0 : g->kc, kv = j->K - k0 < kb ? j->K - k0 : kb;
        const int k1 = k0 + g->kc;
        if (k1 < j->K) prefetch_rows(W, c0, cols, k1, j->K - k1 < g->kc ? j->K - k1 : g->kc);
        pack_group(g, W, &tb, c0, cols, k0, kb, kv, j->pack_dst + (size_t)(c0 / NR) * pb + (size_t)(k0 / g->kc) * full,
                   pb);
    }
}

void ids__gemm_pack_weights(ids_pool *pool, ids__gemm_ws *ws, const ids__gemm *g, const ids__gemm_src *W, void *dst) {
    IDS_ASSERT(W->k <= ws->max_k && !W->packed && g->kc <= KC_MAX);
    run_job j = {.g = g, .ws = ws, .K = W->k, .kpad = ids__gemm_kpad(g, W->k), .prod = {{.W = W}}, .n_prod = 1,
                 .pack_dst = dst};
    const int panels = (W->n + g->nr - 1) / g->nr;
    ids__pool_run(pool, (panels + GROUP_MAX - 1) / GROUP_MAX, pack_w_task, &j);
}

static void group_task(void *arg, int t, int nt, int tid) {
    (void)nt;
    run_job *j = arg;
    const ids__gemm *g = j->g;
    int pi = j->n_prod - 1;
    while (t < j->prod[pi].t0) pi--;
    const run_prod *pr = &j->prod[pi];
    t -= pr->t0;
    const ids__gemm_src *W = pr->W;
    const int NR = g->nr, MR = g->mr, K = j->K, kpad = j->kpad;
    const int c0 = t * pr->group * NR, cols = W->n - c0 < pr->group * NR ? W->n - c0 : pr->group * NR;
    const int n_panels = (cols + NR - 1) / NR;
    const thread_bufs tb = thread_buffers(j->ws, tid);
    const int n_tiles = (j->M + MR - 1) / MR;
    const bool whole = W->packed || W->pack_into; /* blocks at their places in the panels of all of W */
    const size_t pb = whole ? panel_bytes(g, K) : block_bytes(), full = pblock_bytes(g, g->kc);

    if (g->tiles_on) g->tiles_on();
    for (int k0 = 0; k0 < kpad; k0 += g->kc) {
        const int kb = kpad - k0 < g->kc ? kpad - k0 : g->kc;
        const int kv = K - k0 < kb ? K - k0 : kb; /* valid K in this block */
        /* this block of the group's weight rows, in the kernel's layout: packed beforehand, or now */
        const unsigned char *blocks;
        if (W->packed) {
            blocks = W->packed + (size_t)(c0 / NR) * pb + (size_t)(k0 / g->kc) * full;
        } else if (W->pack_into) {
            unsigned char *at = W->pack_into + (size_t)(c0 / NR) * pb + (size_t)(k0 / g->kc) * full;
            pack_group(g, W, &tb, c0, cols, k0, kb, kv, at, pb);
            blocks = at;
        } else {
            pack_group(g, W, &tb, c0, cols, k0, kb, kv, tb.blocks, pb);
            blocks = tb.blocks;
        }
        /* the next block of these rows is loaded while this one is computed, a few rows after each
         * kernel call (all at once, the loads overflow the queue and wait in it) */
        const int k1 = k0 + g->kc, kv1 = K - k1 < g->kc ? K - k1 : g->kc, calls = n_panels * n_tiles;
        int pf_done = k1 < kpad && !W->packed ? 0 : cols, call = 0;
        const unsigned char *ablk = j->ws->a + (size_t)(k0 / g->kc) * j->blk_stride;
        const size_t tstep = a_off(g, g->kc);
        /* a panel's block stays in L1 while the tiles of X (this block of K, in L2) pass over it, or (tile_outer)
         * a tile stays in L1 while the group's blocks pass over it */
        const int n_outer = g->tile_outer ? n_tiles : n_panels, n_inner = g->tile_outer ? n_panels : n_tiles;
        for (int o = 0; o < n_outer; o++) {
            for (int i = 0; i < n_inner; i++) {
                const int p = g->tile_outer ? i : o, ti = g->tile_outer ? o : i;
                const int n = cols - p * NR < NR ? cols - p * NR : NR, m = j->M - ti * MR < MR ? j->M - ti * MR : MR;
                g->kernel(kb, ablk + (size_t)ti * tstep, blocks + (size_t)p * pb,
                          pr->Y + (size_t)(j->m0 + ti * MR) * pr->ldy + c0 + p * NR, pr->ldy, m, n, k0 > 0);
                const int pf_to = (int)((long)++call * cols / calls);
                if (pf_to > pf_done) {
                    prefetch_rows(W, c0 + pf_done, pf_to - pf_done, k1, kv1);
                    pf_done = pf_to;
                }
            }
        }
    }
    if (g->tiles_off) g->tiles_off();
}

void ids__gemm_run_multi(ids_pool *pool, ids__gemm_ws *ws, const ids__gemm *g, const float *X, size_t ldx, int M,
                         int n, const ids__gemm_src *W, float *const *Y, const size_t *ldy) {
    IDS_ASSERT(n >= 1 && n <= IDS__GEMM_MAX_MULTI && W[0].k <= ws->max_k && g->mr <= IDS__GEMM_MAX_MR &&
               g->nr <= IDS__GEMM_MAX_NR && g->kc <= KC_MAX && g->kc % 256 == 0);
    if (M <= 0) return;
    run_job j = {g, ws, X, ldx, 0, 0, W[0].k, ids__gemm_kpad(g, W[0].k), ids__gemm_tile_bytes(g, W[0].k), 0, {{0}},
                 n, NULL};
    const int nt = ids__pool_size(pool);
    int tasks = 0;
    for (int i = 0; i < n; i++) {
        IDS_ASSERT(W[i].k == W[0].k && (g->fmt != IDS__FMT_F16P || W[i].f16 || W[i].packed));
        run_prod *pr = &j.prod[i];
        *pr = (run_prod){&W[i], Y[i], ldy[i], 1, tasks, W[i]};
        pr->packed.packed = W[i].packed ? W[i].packed : W[i].pack_into;
        /* panels per task: as many as fit, while leaving every thread a few tasks */
        const int panels = (W[i].n + g->nr - 1) / g->nr;
        pr->group = panels / (4 * nt);
        pr->group = pr->group < 1 ? 1 : pr->group > GROUP_MAX ? GROUP_MAX : pr->group;
        tasks += (panels + pr->group - 1) / pr->group;
    }
    if (!tasks) return;
    /* rows in chunks that fit the packed-X buffer, of equal size (in whole tiles) */
    const int cap = (int)(ws->a_bytes / j.tile) * g->mr;
    const int n_chunks = (M + cap - 1) / cap;
    int per = (M + n_chunks - 1) / n_chunks;
    per = (per + g->mr - 1) / g->mr * g->mr;
    for (int m0 = 0; m0 < M; m0 += per) {
        j.m0 = m0;
        j.M = M - m0 < per ? M - m0 : per;
        j.blk_stride = (size_t)((j.M + g->mr - 1) / g->mr) * a_off(g, g->kc);
        ids__pool_run(pool, (j.M + g->mr - 1) / g->mr, pack_a_task, &j);
        ids__pool_run(pool, tasks, group_task, &j);
        /* packing as it goes: the first chunk of rows packs, the others read the packed weights */
        for (int i = 0; i < n; i++) j.prod[i].W = &j.prod[i].packed;
    }
}

void ids__gemm_run(ids_pool *pool, ids__gemm_ws *ws, const ids__gemm *g, const float *X, size_t ldx, int M,
                   const ids__gemm_src *W, float *Y, size_t ldy) {
    ids__gemm_run_multi(pool, ws, g, X, ldx, M, 1, W, &Y, &ldy);
}

size_t ids__gemm_serial_bytes(const ids__gemm *g, int M, int K) {
    const size_t tiles = (size_t)(M + g->mr - 1) / (size_t)g->mr;
    return round64(tiles * ids__gemm_tile_bytes(g, K)) + block_bytes() + 128;
}

void ids__gemm_serial(const ids__gemm *g, void *scratch, const float *X, size_t ldx, int M, int K, const float *B,
                      size_t ldb, bool b_rows, int N, float *Y, size_t ldy, bool acc) {
    IDS_ASSERT(g->fmt == IDS__FMT_F32 && !g->round_bf16 && g->kc <= KC_MAX);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!acc)
            for (int i = 0; i < M; i++) memset(Y + (size_t)i * ldy, 0, sizeof(float) * (size_t)N);
        return;
    }
    const int MR = g->mr, NR = g->nr, kc = g->kc, n_tiles = (M + MR - 1) / MR;
    unsigned char *a = (unsigned char *)scratch + (64 - (uintptr_t)scratch % 64) % 64;
    const size_t tstep = a_off(g, kc), blk_stride = (size_t)n_tiles * tstep;
    for (int t = 0; t < n_tiles; t++)
        ids__gemm_pack_a(g, X + (size_t)t * MR * ldx, ldx, M - t * MR < MR ? M - t * MR : MR, K, a + (size_t)t * tstep,
                         blk_stride);
    float *blk = (float *)(a + round64((size_t)n_tiles * ids__gemm_tile_bytes(g, K)));
    for (int n0 = 0; n0 < N; n0 += NR) {
        const int n = N - n0 < NR ? N - n0 : NR;
        for (int k0 = 0; k0 < K; k0 += kc) {
            const int kb = K - k0 < kc ? K - k0 : kc;
            if (b_rows) {
                if (g->pack_b) g->pack_b(B + (size_t)n0 * ldb + k0, ldb, NULL, 0, NULL, 0, n, kb, kb, blk);
                else pack_b(g, B + (size_t)n0 * ldb + k0, ldb, NULL, 0, NULL, 0, n, kb, kb, blk);
            } else {
                for (int k = 0; k < kb; k++) {
                    const float *r = B + (size_t)(k0 + k) * ldb + n0;
                    float *o = blk + (size_t)k * NR;
                    memcpy(o, r, sizeof(float) * (size_t)n);
                    for (int j = n; j < NR; j++) o[j] = 0.0f;
                }
            }
            for (int t = 0; t < n_tiles; t++)
                g->kernel(kb, a + (size_t)(k0 / kc) * blk_stride + (size_t)t * tstep, blk, Y + (size_t)t * MR * ldy + n0,
                          ldy, M - t * MR < MR ? M - t * MR : MR, n, acc || k0 > 0);
        }
    }
}


/* ------------------------------------------------------------------------------------------ */
/* AMX: permission and a self-check                                                           */

static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static char amx_why[256];

/* A product of 45 x 64 x 608 (whole tiles, tiles in part, rows 16-31 or not, three blocks of K) on the
 * tiles and on the emulated tiles: int8 must give the same bits, bf16 the same values up to rounding. */
bool ids__gemm_amx_self_check(bool emulated, char *why, size_t why_len) {
    enum { M = 45, N = 64, K = 608 };
    float *X = malloc(sizeof(float) * (M + N) * K), *W = X ? X + M * K : NULL;
    float Y1[M * N], Y2[M * N];
    if (!X) {
        snprintf(why, why_len, "out of memory for the AMX self-check");
        return false;
    }
    uint32_t r = 12345;
    for (int i = 0; i < M * K; i++) r = r * 1664525u + 1013904223u, X[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    for (int i = 0; i < N * K; i++) r = r * 1664525u + 1013904223u, W[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
    ids_pool *pool = ids__pool_new(1);
    ids__gemm_ws ws;
    if (!pool || ids__gemm_ws_init(&ws, 1, M, K, NULL)) {
        ids__pool_free(pool);
        free(X);
        snprintf(why, why_len, "out of memory for the AMX self-check");
        return false;
    }
    const ids__gemm_src src = {.n = N, .k = K, .f32 = W, .ld = K};
    bool ok = true;
    for (int p = IDS_PREC_BF16; p <= IDS_PREC_INT8 && ok; p++) {
        ids__gemm hw, emu;
        ids__gemm_init_amx(&hw, (ids_precision)p, emulated);
        ids__gemm_init_amx(&emu, (ids_precision)p, true);
        ids__gemm_run(pool, &ws, &hw, X, K, M, &src, Y1, N);
        ids__gemm_run(pool, &ws, &emu, X, K, M, &src, Y2, N);
        for (int i = 0; i < M * N; i++) {
            const float e = fabsf(Y1[i] - Y2[i]);
            if (p == IDS_PREC_INT8 ? memcmp(&Y1[i], &Y2[i], 4) != 0 : !(e <= 1e-4f * (1.0f + fabsf(Y2[i])))) {
                snprintf(why, why_len, "the AMX %s kernel failed its self-check (element %d: %.9g, emulated tiles %.9g)",
                         p == IDS_PREC_INT8 ? "int8" : "bf16", i, (double)Y1[i], (double)Y2[i]);
                ok = false;
                break;
            }
        }
    }
    ids__gemm_ws_free(&ws);
    ids__pool_free(pool);
    free(X);
    return ok;
}

static void amx_check(void) {
    const unsigned need = path_needs(IDS__PATH_AMX);
    if (!compiled(IDS__PATH_AMX)) snprintf(amx_why, sizeof amx_why, "this build has no AMX kernels");
    else if ((ids__cpu_features() & need) != need) snprintf(amx_why, sizeof amx_why, "this CPU lacks AMX tiles");
    else if (ids__cpu_amx_permit(amx_why, sizeof amx_why)) ids__gemm_amx_self_check(false, amx_why, sizeof amx_why);
}

const char *ids__gemm_amx_problem(void) {
    pthread_once(&amx_once, amx_check);
    return amx_why;
}
