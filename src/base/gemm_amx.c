/* AMX tile kernels of the bf16 and int8 precisions (formats AMXB and AMXI in gemm.h), and the same
 * kernels on emulated tiles.
 *
 * A kernel computes a 32 x 32 tile of C in four 16 x 16 tiles (tmm0-3: rows 0-15 / 16-31, columns
 * 0-15 / 16-31) from two tiles of X (tmm4, tmm5: rows 0-15 and 16-31) and two of W (tmm6, tmm7:
 * columns 0-15 and 16-31), 32 values of K per step:
 *   bf16: tdpbf16ps on X as [32 rows][32 bf16] and W as [16 pairs][32 columns] (the BF16P panel
 *         layout, 128 bytes per pair of K); C accumulates in the tiles over the whole block.
 *   int8: tdpbsud on X as [32 rows][32 s8] and W as [8 groups of 4][32 columns] u8 (w + 128, the I8
 *         panel layout); per block of 32 the integer sums are stored, corrected (-128 * the block's
 *         sum of x) and scaled exactly as the VNNI kernel does, so the results are its bits.
 *
 * The tile instructions run only where cpuid, the OS and Linux's permission (arch_prctl) allow them
 * (gemm.c). A task of the driver configures the tiles when it starts and releases them when it ends
 * (tiles_on / tiles_off: other code on the same thread may use the tiles between two products).
 *
 * The emulated kernels run the same bodies with every tile instruction done in C from its definition
 * (Intel SDM: rows and column bytes from the tile configuration, loads with a stride, the shapes a
 * product needs, four byte products added to int32), on any CPU: they check the layouts, the tile
 * configuration and the loops wherever the instructions are absent. int8 is exact, so emulated and real
 * tiles give the same bits; for bf16 the emulation adds each product to C in order, where the
 * instruction sums the even and odd products apart (flushing denormals) and then adds them to C: the
 * last bits differ, and bf16 is compared with a tolerance (gemm.c's self-check, the tests). */
#include "base/gemm.h"

#if defined(__x86_64__) && (__GNUC__ >= 11 || defined(__clang__))
#include <math.h>

#define T_AMX __attribute__((target("amx-tile,amx-bf16,amx-int8,avx512f,fma")))

/* The tile configuration (ldtilecfg's 64-byte operand, palette 1). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;
_Static_assert(sizeof(amx_cfg) == 64, "ldtilecfg takes 64 bytes");

/* C tiles 0-3: 16 x 16 F32 or int32; X tiles 4-5: 16 rows of 64 bytes (bf16) or 32 (int8); W tiles 6-7:
 * 16 pairs (bf16) or 8 groups of 4 (int8) of 64 bytes. */
static const amx_cfg k_cfg_bf16 __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};
static const amx_cfg k_cfg_i8 __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 32, 32, 64, 64}, {16, 16, 16, 16, 16, 16, 8, 8}};

/* ---------------------------------------------------------------------------------------- */
/* Emulated tiles                                                                               */

typedef struct {
    uint8_t rows[8];
    uint16_t colsb[8];
    unsigned char data[8][16][64];
} emu_tiles;
static _Thread_local emu_tiles t_emu;

static void emu_config(const amx_cfg *c) {
    IDS_ASSERT(c->palette == 1 && c->start_row == 0);
    for (int t = 0; t < 8; t++) {
        IDS_ASSERT(c->rows[t] <= 16 && c->colsb[t] <= 64 && c->colsb[t] % 4 == 0);
        t_emu.rows[t] = c->rows[t], t_emu.colsb[t] = c->colsb[t];
    }
    memset(t_emu.data, 0, sizeof t_emu.data);
}

static void emu_load(int t, const void *p, size_t stride) {
    memset(t_emu.data[t], 0, sizeof t_emu.data[t]);
    for (int r = 0; r < t_emu.rows[t]; r++) memcpy(t_emu.data[t][r], (const unsigned char *)p + r * stride, t_emu.colsb[t]);
}

static void emu_store(int t, void *p, size_t stride) {
    for (int r = 0; r < t_emu.rows[t]; r++) memcpy((unsigned char *)p + r * stride, t_emu.data[t][r], t_emu.colsb[t]);
}

static void emu_zero(int t) { memset(t_emu.data[t], 0, sizeof t_emu.data[t]); }

/* The shapes a tile product needs, on three distinct tiles (the instruction faults otherwise). */
static void emu_shapes(int c, int a, int b) {
    IDS_ASSERT(c != a && c != b && a != b && t_emu.rows[a] && t_emu.rows[b]);
    IDS_ASSERT(t_emu.rows[c] == t_emu.rows[a] && t_emu.colsb[c] == t_emu.colsb[b] &&
               t_emu.colsb[a] / 4 == t_emu.rows[b]);
}

static float bf16_at(const unsigned char *p) {
    uint32_t u = (uint32_t)(p[0] | p[1] << 8) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* C[m][n] += sum over pairs k of A[m][2k] * B[k][2n] + A[m][2k+1] * B[k][2n+1], in order, in F32. */
static void emu_dpbf16(int c, int a, int b) {
    emu_shapes(c, a, b);
    for (int m = 0; m < t_emu.rows[c]; m++)
        for (int n = 0; n < t_emu.colsb[c] / 4; n++) {
            float acc;
            memcpy(&acc, &t_emu.data[c][m][4 * n], 4);
            for (int k = 0; k < t_emu.rows[b]; k++) {
                const unsigned char *x = &t_emu.data[a][m][4 * k], *w = &t_emu.data[b][k][4 * n];
                acc += bf16_at(x) * bf16_at(w);
                acc += bf16_at(x + 2) * bf16_at(w + 2);
            }
            memcpy(&t_emu.data[c][m][4 * n], &acc, 4);
        }
}

/* C[m][n] += sum over k, t < 4 of (signed) A[m][4k + t] * (unsigned) B[k][4n + t], in int32. */
static void emu_dpbsud(int c, int a, int b) {
    emu_shapes(c, a, b);
    for (int m = 0; m < t_emu.rows[c]; m++)
        for (int n = 0; n < t_emu.colsb[c] / 4; n++) {
            int32_t acc;
            memcpy(&acc, &t_emu.data[c][m][4 * n], 4);
            for (int k = 0; k < t_emu.rows[b]; k++)
                for (int t = 0; t < 4; t++)
                    acc += (int32_t)(int8_t)t_emu.data[a][m][4 * k + t] * (int32_t)t_emu.data[b][k][4 * n + t];
            memcpy(&t_emu.data[c][m][4 * n], &acc, 4);
        }
}

/* ---------------------------------------------------------------------------------------- */
/* The tile instructions (AT&T operand order: sources first), written out so that the bodies need no target
 * of their own; each is a compiler barrier, which orders it with the plain loads and stores of the same
 * buffers. */
#define HW_TLOAD(t, p, s) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"((long)(s)) : "memory")
#define HW_TSTORE(t, p, s) __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(p), "r"((long)(s)) : "memory")
#define HW_TZERO(t) __asm__ volatile("tilezero %%tmm" #t ::: "memory")
#define HW_TDPBF16(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")
#define HW_TDPBSUD(c, a, b) __asm__ volatile("tdpbsud %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::: "memory")

/* One body per kernel for both: emu is a constant, so each caller keeps one kind of tile operation. */
#define TILE_OP(emu, on_emu, on_hw)                                                                         \
    do {                                                                                                    \
        if (emu) on_emu;                                                                                    \
        else on_hw;                                                                                         \
    } while (0)
#define TLOAD(emu, t, p, s) TILE_OP(emu, emu_load(t, p, s), HW_TLOAD(t, p, s))
#define TSTORE(emu, t, p, s) TILE_OP(emu, emu_store(t, p, s), HW_TSTORE(t, p, s))
#define TZERO(emu, t) TILE_OP(emu, emu_zero(t), HW_TZERO(t))
#define TDPBF16(emu, c, a, b) TILE_OP(emu, emu_dpbf16(c, a, b), HW_TDPBF16(c, a, b))
#define TDPBSUD(emu, c, a, b) TILE_OP(emu, emu_dpbsud(c, a, b), HW_TDPBSUD(c, a, b))

enum { MR = 32, NR = 32 };

/* bf16: C (m x n valid, ldc) = or += the block. Full tiles go straight between C and the tiles; edge
 * tiles through a zero-padded copy. Rows 16-31 only where m > 16. */
static inline __attribute__((always_inline)) void amx_bf16(bool emu, int kb, const void *a_, const void *b_, float *c,
                                                           size_t ldc, int m, int n, int acc) {
    const unsigned char *a = a_, *b = b_;
    float t[MR * NR] __attribute__((aligned(64)));
    const bool two = m > 16, direct = m == MR && n == NR;
    float *cc = direct ? c : t;
    const size_t ld = direct ? ldc : NR;
    if (acc) {
        if (!direct) {
            memset(t, 0, sizeof t);
            for (int i = 0; i < m; i++) memcpy(t + (size_t)i * NR, c + (size_t)i * ldc, sizeof(float) * (size_t)n);
        }
        TLOAD(emu, 0, cc, ld * 4);
        TLOAD(emu, 1, cc + 16, ld * 4);
        if (two) {
            TLOAD(emu, 2, cc + 16 * ld, ld * 4);
            TLOAD(emu, 3, cc + 16 * ld + 16, ld * 4);
        }
    } else {
        TZERO(emu, 0);
        TZERO(emu, 1);
        TZERO(emu, 2);
        TZERO(emu, 3);
    }
    for (int s = 0; s < kb / 32; s++) {
        const unsigned char *as = a + (size_t)s * MR * 64, *bs = b + (size_t)s * 16 * NR * 4;
        TLOAD(emu, 4, as, 64);
        TLOAD(emu, 6, bs, NR * 4);
        TLOAD(emu, 7, bs + 64, NR * 4);
        TDPBF16(emu, 0, 4, 6);
        TDPBF16(emu, 1, 4, 7);
        if (two) {
            TLOAD(emu, 5, as + 16 * 64, 64);
            TDPBF16(emu, 2, 5, 6);
            TDPBF16(emu, 3, 5, 7);
        }
    }
    TSTORE(emu, 0, cc, ld * 4);
    TSTORE(emu, 1, cc + 16, ld * 4);
    if (two) {
        TSTORE(emu, 2, cc + 16 * ld, ld * 4);
        TSTORE(emu, 3, cc + 16 * ld + 16, ld * 4);
    }
    if (!direct)
        for (int i = 0; i < m; i++) memcpy(c + (size_t)i * ldc, t + (size_t)i * NR, sizeof(float) * (size_t)n);
}

/* int8: per block of 32 the tiles give the integer sums; C stays in a local F32 tile. */
static inline __attribute__((always_inline)) void amx_i8(bool emu, int kb, const void *a_, const void *b_, float *c,
                                                         size_t ldc, int m, int n, int acc) {
    const unsigned char *a = a_, *b = b_;
    float f[MR][NR] __attribute__((aligned(64)));
    int32_t s[MR][NR] __attribute__((aligned(64)));
    const bool two = m > 16;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < NR; j++) f[i][j] = acc && j < n ? c[(size_t)i * ldc + j] : 0.0f;
    for (int blk = 0; blk < kb / 32; blk++) {
        const unsigned char *ab = a + (size_t)blk * 40 * MR, *bb = b + (size_t)blk * 36 * NR;
        TZERO(emu, 0);
        TZERO(emu, 1);
        TLOAD(emu, 4, ab, 32);
        TLOAD(emu, 6, bb, NR * 4);
        TLOAD(emu, 7, bb + 64, NR * 4);
        TDPBSUD(emu, 0, 4, 6);
        TDPBSUD(emu, 1, 4, 7);
        TSTORE(emu, 0, &s[0][0], NR * 4);
        TSTORE(emu, 1, &s[0][16], NR * 4);
        if (two) {
            TZERO(emu, 2);
            TZERO(emu, 3);
            TLOAD(emu, 5, ab + 16 * 32, 32);
            TDPBSUD(emu, 2, 5, 6);
            TDPBSUD(emu, 3, 5, 7);
            TSTORE(emu, 2, &s[16][0], NR * 4);
            TSTORE(emu, 3, &s[16][16], NR * 4);
        }
        float dx[MR], dw[NR];
        int32_t corr[MR];
        memcpy(dx, ab + 32 * MR, sizeof dx);
        memcpy(corr, ab + 36 * MR, sizeof corr);
        memcpy(dw, bb + 32 * NR, sizeof dw);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < NR; j++) f[i][j] = fmaf((float)(s[i][j] + corr[i]), dw[j] * dx[i], f[i][j]);
    }
    for (int i = 0; i < m; i++) memcpy(c + (size_t)i * ldc, f[i], sizeof(float) * (size_t)n);
}

T_AMX static void k_amx_bf16(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n, int acc) {
    amx_bf16(false, kb, a, b, c, ldc, m, n, acc);
}
T_AMX static void k_amx_i8(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n, int acc) {
    amx_i8(false, kb, a, b, c, ldc, m, n, acc);
}
static void k_amx_bf16_emu(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n, int acc) {
    amx_bf16(true, kb, a, b, c, ldc, m, n, acc);
}
static void k_amx_i8_emu(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n, int acc) {
    amx_i8(true, kb, a, b, c, ldc, m, n, acc);
}

/* The tiles' configuration for a task's kernels, and their release after it. */
T_AMX static void on_bf16(void) { __asm__ volatile("ldtilecfg %0" ::"m"(k_cfg_bf16)); }
T_AMX static void on_i8(void) { __asm__ volatile("ldtilecfg %0" ::"m"(k_cfg_i8)); }
T_AMX static void off_hw(void) { __asm__ volatile("tilerelease" ::: "memory"); }
static void on_bf16_emu(void) { emu_config(&k_cfg_bf16); }
static void on_i8_emu(void) { emu_config(&k_cfg_i8); }
static void off_emu(void) { memset(&t_emu, 0, sizeof t_emu); }

const ids__gemm_kernel ids__k_amx_bf16 = k_amx_bf16, ids__k_amx_i8 = k_amx_i8, ids__k_amx_bf16_emu = k_amx_bf16_emu,
                       ids__k_amx_i8_emu = k_amx_i8_emu;
void (*const ids__amx_on_bf16)(void) = on_bf16, (*const ids__amx_on_i8)(void) = on_i8,
    (*const ids__amx_off)(void) = off_hw, (*const ids__amx_on_bf16_emu)(void) = on_bf16_emu,
    (*const ids__amx_on_i8_emu)(void) = on_i8_emu, (*const ids__amx_off_emu)(void) = off_emu;
#else
const ids__gemm_kernel ids__k_amx_bf16 = NULL, ids__k_amx_i8 = NULL, ids__k_amx_bf16_emu = NULL,
                       ids__k_amx_i8_emu = NULL;
void (*const ids__amx_on_bf16)(void) = NULL, (*const ids__amx_on_i8)(void) = NULL, (*const ids__amx_off)(void) = NULL,
    (*const ids__amx_on_bf16_emu)(void) = NULL, (*const ids__amx_on_i8_emu)(void) = NULL,
    (*const ids__amx_off_emu)(void) = NULL;
#endif
