/* Matrix products of the engine: Y[M, N] = X[M, K] . W^T with W given as N rows of K (a weight
 * matrix as GGUF stores it), in one of three precisions (ids_precision), on micro-kernels chosen at
 * run time from cpuid (never from the build machine).
 *
 * Scheme (after GotoBLAS/BLIS): X is packed once per call into tiles of MR rows (zero-padded) in the
 * precision's format; each task takes one panel of NR weight rows, has them converted (F32 rows, or
 * int8 blocks of 32 with scales), and for each block of KC along K packs them into an L1-sized
 * block, then runs the micro-kernel over every row tile. A task writes only its own NR columns, and
 * every output element is one fixed chain of operations along K, so results do not depend on the
 * thread count, on M, or on which rows are computed together. Weights may instead be packed whole beforehand
 * (ids__gemm_pack_weights: the same blocks, kept by the model) and then nothing is converted per product.
 *
 * Formats (tile = MR rows, panel = NR columns; kb = the K of one block):
 *   F32   A: [K][MR] float            B: [kb][NR] float
 *   BF16P A: [K/2][MR] u32 (bf16 pair: even k low, odd k high)   B: [kb/2][NR] u32
 *   I8    A per block of 32: [8][MR][4] s8, [MR] float scale, [MR] int32 (-128 * sum of the block)
 *         B per block of 32: [8][NR][4] u8 (w + 128), [NR] float scale
 *   I8F   the int8 values as floats (AVX2 without VNNI: FMAs sum a block's products exactly, all
 *         below 2^24): A per block [32][MR] float, [MR] float scale; B per block [32][NR], [NR] scale
 *   F16P  the f32 precision on F16 weights: A as F32; B: [kb][NR] F16, widened to F32 in the kernel (exact,
 *         so the products and their chains are those of F32: the same bits, in half the bytes)
 *   AMXB  bf16 on AMX tiles (gemm_amx.c): A per step of 32 along K: [MR][32] bf16 (row-major, as a tile
 *         loads it); B as BF16P
 *   AMXI  int8 on AMX tiles: A per block of 32: [MR][32] s8, [MR] float scale, [MR] int32 (-128 * sum of the
 *         block); B as I8
 * (K padded with zeros to 2 for BF16P and to 32 for I8, I8F, AMXB and AMXI.) The bf16 precision on CPUs without
 * AVX-512 BF16 uses the F32 formats with both operands rounded to bf16 (their products are exact in
 * F32, so only the summation differs from vdpbf16ps). */
#ifndef IDS_GEMM_H
#define IDS_GEMM_H

#include "base/internal.h"
#include "base/pool.h"

typedef enum ids__gemm_path {
    IDS__PATH_SCALAR = 0,
    IDS__PATH_AVX2,       /* AVX2 + FMA */
    IDS__PATH_AVX512,     /* AVX-512 F */
    IDS__PATH_AVX512BF16, /* + vdpbf16ps */
    IDS__PATH_VNNI,       /* AVX-512 + vpdpbusd (no bf16) */
    IDS__PATH_AMX,        /* everything the CPU has, AMX tiles included */
    IDS__PATH_COUNT
} ids__gemm_path;

typedef enum {
    IDS__FMT_F32 = 0,
    IDS__FMT_BF16P,
    IDS__FMT_I8,
    IDS__FMT_I8F,
    IDS__FMT_F16P,
    IDS__FMT_AMXB,
    IDS__FMT_AMXI
} ids__gemm_fmt;

#define IDS__GEMM_MAX_MR 32
#define IDS__GEMM_MAX_NR 32
#define IDS__GEMM_MAX_KB 1024 /* the largest block of K a kernel set uses (kc) */

/* kb: K of this block (a multiple of 2 for BF16P, of 32 for I8); a: the row tile at this block; b: the
 * packed block; c: output tile (row stride ldc); m, n: valid rows and columns (<= MR, NR); acc: add to
 * c (else overwrite). */
typedef void (*ids__gemm_kernel)(int kb, const void *a, const void *b, float *c, size_t ldc, int m, int n,
                                 int acc);

/* Packs one block of weights (see pack_b in gemm.c): F32 rows w, or int8 rows q with scales d. */
typedef void (*ids__gemm_packb)(const float *w, size_t ldw, const int8_t *q, size_t ldq, const float *d, size_t ldd,
                                int n, int kv, int kb, void *dst);

/* Packs one block of F16 weight rows h (row stride ldh, starting at the block; kv valid values). */
typedef void (*ids__gemm_packb_f16)(const uint16_t *h, size_t ldh, int n, int kv, int kb, void *dst);
/* Packs one tile of X (see ids__gemm_pack_a). */
typedef void (*ids__gemm_packa)(const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride, int kc);

typedef struct ids__gemm {
    ids__gemm_path path;
    ids_precision prec;
    ids__gemm_fmt fmt;
    bool round_bf16; /* F32 format carrying bf16-rounded values (bf16 without vdpbf16ps) */
    int mr, nr, kc;  /* kc: K per block, a multiple of 32 */
    bool tile_outer; /* per block of K: each tile of X against every panel of a group in turn (the tile stays in
                        L1, the group's blocks in L2), else each panel against every tile */
    ids__gemm_kernel kernel;
    ids__gemm_packb pack_b; /* a vectorised packer of the same layout, or NULL (the portable one) */
    ids__gemm_packa pack_a; /* the same for X */
    ids__gemm_packb_f16 pack_b_f16; /* B from F16 rows, or NULL (they are fetched as F32 first) */
    const char *kernel_name;
    /* or NULL: run by each task before its first kernel and after its last (AMX: the tiles' configuration
     * and their release) */
    void (*tiles_on)(void), (*tiles_off)(void);
} ids__gemm;

const char *ids__gemm_path_name(ids__gemm_path p);
/* The path IDSCOPE_CPU asks for (unset or empty: the best this CPU has). An unknown name or a path
 * this CPU lacks: IDS_ERR_UNSUPPORTED with a message naming it and what the CPU has. */
ids_status ids__gemm_path_env(ids__gemm_path *out, ids_err *err);
/* Does this CPU (and OS) allow the path? */
bool ids__gemm_path_ok(ids__gemm_path p);
/* The kernel set of a path and precision (the path must be ok; AMX runs f32 on the AVX-512 kernels). */
void ids__gemm_init(ids__gemm *g, ids__gemm_path path, ids_precision prec);
/* The AMX kernel set of bf16 or int8, on the tile instructions or (emulated) on tiles emulated in C:
 * the same layouts and loops on any CPU with AVX-512 (the emulated one is for tests: it is slow). */
void ids__gemm_init_amx(ids__gemm *g, ids_precision prec, bool emulated);
/* Why the AMX path cannot run here ("" when it can): CPU, OS, permission or its self-check. */
const char *ids__gemm_amx_problem(void);
/* The self-check: a product of 45 x 64 x 608 on the tiles (emulated: on emulated tiles too) against the
 * emulated tiles; false with the difference in why. */
bool ids__gemm_amx_self_check(bool emulated, char *why, size_t why_len);
/* IDSCOPE_CPU (or the best path) with a precision; an unusable IDSCOPE_CPU is an error. */
ids_status ids__gemm_select(ids__gemm *g, ids_precision prec, ids_err *err);
/* The kernel set to use instead of g on F16 weights (given as ids__gemm_src.f16), where one reads them
 * without widening them first (F16P: f32 precision on AVX-512); else false. Same results as g. */
bool ids__gemm_f16_variant(const ids__gemm *g, ids__gemm *out);
/* What the packed weights of a kernel set depend on (two sets with one key share packed weights). */
uint32_t ids__gemm_layout_key(const ids__gemm *g);

/* K as stored in the packed formats (padded), and bytes of one packed row tile over all of K (whole
 * blocks of KC). */
int ids__gemm_kpad(const ids__gemm *g, int K);
size_t ids__gemm_tile_bytes(const ids__gemm *g, int K);
/* Pack rows [0, m) of X (row stride ldx, m <= MR) over all of K into one tile: its blocks of KC
 * blk_stride bytes apart (0: one after the other). The driver puts the tiles of one block of K next
 * to each other, so that a block of K over all rows is one stream. */
void ids__gemm_pack_a(const ids__gemm *g, const float *X, size_t ldx, int m, int K, void *dst, size_t blk_stride);

/* K values as int8 blocks of 32 (kpad of them, zeros past K) with one float scale per block (kpad / 32):
 * symmetric, scale amax / 127, q = x * 127 / amax rounded to nearest (ties to even); an all-zero
 * block (or one with an infinite value) gets scale 0; NaN gives 0. */
void ids__gemm_quantize_row(const float *x, int K, int kpad, int8_t *q, float *d);

/* Where W comes from: F32 rows in memory (f32 != NULL, row stride ld), or fetch(): rows [n0, n0 + nr)
 * at [k0, k0 + kv) as F32 into dst (row stride ld). k0 is a multiple of 256 and kv runs to K or is a
 * multiple of 256 (whole blocks of every quantized type). In the int8 precision fetch_q8 (when not
 * NULL) gives the rows as int8 blocks of 32 directly: rows [n0, n0 + nr) at [k0, k0 + kb) (kb a
 * multiple of 32; past K zeros) into q (row stride ldq bytes) with one scale per block in d (row
 * stride ldd); else the F32 rows are quantized. */
typedef struct ids__gemm_src {
    int n, k;
    const float *f32;
    const uint16_t *f16; /* or F16 rows in memory (row stride ld), packed straight where a packer can */
    size_t ld;
    void (*fetch)(const void *ctx, int n0, int nr, int k0, int kv, float *dst, size_t ld);
    void (*fetch_q8)(const void *ctx, int n0, int nr, int k0, int kb, int8_t *q, size_t ldq, float *d, size_t ldd);
    /* optional: start loading rows [n0, n0 + nr) at [k0, k0 + kv) into the cache (the next block's, while
     * the current one is computed: the rows of a group are too many streams for the hardware prefetcher) */
    void (*prefetch)(const void *ctx, int n0, int nr, int k0, int kv);
    const void *ctx;
    /* or all of W packed beforehand by ids__gemm_pack_weights with a kernel set of the same layout key:
     * nothing is fetched or packed per product (the same bits as packing per product) */
    const unsigned char *packed;
    /* or (packed NULL) a buffer of ids__gemm_packed_bytes into which this product packs W as it goes: each
     * block is packed where ids__gemm_pack_weights puts it and used from there (one pass over W instead of
     * two; the same bytes and the same results) */
    unsigned char *pack_into;
} ids__gemm_src;

/* Buffers of ids__gemm_run for products with at most max_rows rows of X at once (more are done in
 * chunks) and K up to max_k, on n_threads threads. */
typedef struct ids__gemm_ws {
    int n_threads, max_rows, max_k;
    unsigned char *a;      /* packed X (64-byte aligned, in a_mem) */
    unsigned char *thread; /* per thread: rows, int8 rows, scales, one packed block (in thread_mem) */
    void *a_mem, *thread_mem;
    size_t a_bytes, thread_bytes, bytes;
} ids__gemm_ws;
ids_status ids__gemm_ws_init(ids__gemm_ws *ws, int n_threads, int max_rows, int max_k, ids_err *err);
void ids__gemm_ws_free(ids__gemm_ws *ws);

/* Bytes of W [N, K] packed whole for g (panels of NR rows, each its blocks of KC along K in order), and
 * the packing itself into dst (64-byte aligned, that many bytes), on the pool's threads. */
size_t ids__gemm_packed_bytes(const ids__gemm *g, int N, int K);
void ids__gemm_pack_weights(ids_pool *pool, ids__gemm_ws *ws, const ids__gemm *g, const ids__gemm_src *W, void *dst);

/* Y[M, N] (row stride ldy) = X[M, K] (row stride ldx) . W^T; K <= ws->max_k. */
void ids__gemm_run(ids_pool *pool, ids__gemm_ws *ws, const ids__gemm *g, const float *X, size_t ldx, int M,
                   const ids__gemm_src *W, float *Y, size_t ldy);
/* n products of one X (1 <= n <= IDS__GEMM_MAX_MULTI, every W[i] with the same K): Y[i] = X . W[i]^T (row
 * stride ldy[i]). X is
 * packed once per chunk of rows and the panels of all the W[i] are shared out in one pass of the pool (no
 * thread waits between them); the same bits as n calls of ids__gemm_run. */
#define IDS__GEMM_MAX_MULTI 4
void ids__gemm_run_multi(ids_pool *pool, ids__gemm_ws *ws, const ids__gemm *g, const float *X, size_t ldx, int M,
                         int n, const ids__gemm_src *W, float *const *Y, const size_t *ldy);

/* Y[M, N] (row stride ldy) = X[M, K] . B, or Y += that (acc), on the calling thread with an F32
 * kernel set g (attention: Q.K^T and P.V inside the pool's tasks). B is given as its transpose's rows
 * (b_rows = N rows of K, row stride ldb: the keys for Q.K^T) or as itself (b_rows false: K rows of N:
 * the values for P.V). Every element is one chain of fused multiply-adds along K in order, continued
 * from Y when acc: splitting K across calls, trailing zeros in X and the rows computed together leave
 * it unchanged. scratch: ids__gemm_serial_bytes(g, M, K) bytes. */
size_t ids__gemm_serial_bytes(const ids__gemm *g, int M, int K);
void ids__gemm_serial(const ids__gemm *g, void *scratch, const float *X, size_t ldx, int M, int K, const float *B,
                      size_t ldb, bool b_rows, int N, float *Y, size_t ldy, bool acc);

/* bf16 rounding (round to nearest even; NaN stays NaN) as a float and as its 16 bits. */
static inline uint16_t ids__f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}
static inline float ids__bf16_round(float f) {
    uint32_t x = (uint32_t)ids__f32_to_bf16(f) << 16;
    float r;
    memcpy(&r, &x, 4);
    return r;
}

/* Kernels of each instruction set (gemm_x86.c); NULL where not compiled. */
extern const ids__gemm_kernel ids__k_avx2_f32, ids__k_avx512_f32, ids__k_avx512_bf16, ids__k_vnni_i8, ids__k_avx2_i8f,
    ids__k_avx512_f32h;
extern const ids__gemm_packb ids__pb_avx512_f32, ids__pb_avx512_bf16, ids__pb_avx512_i8;
extern const ids__gemm_packa ids__pa_avx512_f32, ids__pa_avx512_bf16, ids__pa_avx512_i8, ids__pa_avx512_amxb,
    ids__pa_avx512_amxi;
/* AMX tile kernels (gemm_amx.c), and the same on emulated tiles. */
extern const ids__gemm_kernel ids__k_amx_bf16, ids__k_amx_i8, ids__k_amx_bf16_emu, ids__k_amx_i8_emu;
extern void (*const ids__amx_on_bf16)(void), (*const ids__amx_on_i8)(void), (*const ids__amx_off)(void),
    (*const ids__amx_on_bf16_emu)(void), (*const ids__amx_on_i8_emu)(void), (*const ids__amx_off_emu)(void);
extern const ids__gemm_packb_f16 ids__pbh_avx512_f32, ids__pbh_avx512_bf16, ids__pbh_avx512_f16p;

#endif
