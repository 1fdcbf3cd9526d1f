/* idscope layer "base": status codes, errors, logging, progress callbacks, allocation-failure injection.
 * Part of the public API; include "idscope.h" for all of it. Each layer's header includes the
 * one before it (base < formats < text < engine < stimuli < exp < train). */
#ifndef IDSCOPE_BASE_H
#define IDSCOPE_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDS_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Status and errors                                                                           */

typedef enum ids_status {
    IDS_OK = 0,
    IDS_ERR_IO,          /* cannot open / read / write / map a file */
    IDS_ERR_FORMAT,      /* malformed or truncated input (file contents) */
    IDS_ERR_NOT_FOUND,   /* key, tensor, token or word not present */
    IDS_ERR_TYPE,        /* value present but of another type than asked */
    IDS_ERR_RANGE,       /* value out of the allowed range */
    IDS_ERR_UNSUPPORTED, /* valid input that this build cannot handle (e.g. an IQ quant type) */
    IDS_ERR_ARG,         /* invalid argument from the caller */
    IDS_ERR_NOMEM,       /* allocation failed */
    IDS_STATUS_COUNT
} ids_status;

#define IDS_ERR_MSG_MAX 512

typedef struct ids_err {
    ids_status code;
    char msg[IDS_ERR_MSG_MAX];
} ids_err;

const char *ids_status_name(ids_status s);

/* Log callback: level 0 = error, 1 = warning, 2 = info, 3 = debug. Default: warnings and errors
 * to stderr. Passing NULL restores the default. */
typedef void (*ids_log_fn)(int level, const char *msg, void *user);
void ids_set_log(ids_log_fn fn, void *user);

/* Progress of long work: called with items done and the total (the CLI prints it on stderr). */
typedef void (*ids_progress_fn)(const char *what, long done, long total, void *user);

/* ------------------------------------------------------------------------------------------ */
/* Version and provenance: how a result was made                                              */

/* "0.1.0" and the source it was built from ("git 6567ebc", "git 6567ebc-dirty", or "unknown"). */
const char *ids_version(void);
const char *ids_build_source(void);
/* Online CPUs (at least 1): what a thread count of 0 means everywhere. */
int ids_default_threads(void);
/* The CPU's name (/proc/cpuinfo's model name) and the instruction sets idscope detected at run time
 * ("fma f16c avx2 avx512f avx512_vnni avx512_bf16 ..."), for benchmark reports. */
void ids_cpu_describe(char *name, size_t name_len, char *flags, size_t flags_len);

/* Numeric precision of model runs (DESIGN.md §5, docs/PRECISION.md):
 *   IDS_PREC_F32  weights dequantized exactly, F32 activations and accumulation (default);
 *   IDS_PREC_BF16 activations and weights rounded to bf16, F32 accumulation (as GPU runs in bf16);
 *   IDS_PREC_INT8 activations quantized to int8 per block of 32 (scale amax/127), weights as int8
 *                 blocks of 32 (Q8_0 and Q4_0 exactly; other types requantized), integer dot products
 *                 per block, F32 accumulation of the scaled block sums. */
typedef enum ids_precision { IDS_PREC_F32 = 0, IDS_PREC_BF16, IDS_PREC_INT8, IDS_PREC_COUNT } ids_precision;
const char *ids_precision_name(ids_precision p); /* "f32", "bf16", "int8" */
/* "f32" | "bf16" | "int8" -> *out; anything else: IDS_ERR_ARG naming the text. */
ids_status ids_precision_parse(const char *s, ids_precision *out, ids_err *err);
/* The kernel path matmuls take on this machine ("avx512bf16", "vnni", "avx2", "scalar", ...): the best
 * the CPU has, capped by the environment variable IDSCOPE_CPU (scalar|avx2|avx512|avx512bf16|vnni|amx,
 * a path this CPU lacks is an error there). For benchmark reports and provenance. */
const char *ids_cpu_path(void);

/* Provenance of one result file, written as its "provenance" object:
 *   {"idscope": VERSION, "build": SOURCE, "command": "swap",
 *    "models": {"text": {"path", "bytes", "fingerprint"}, "mmproj": {...}},
 *    "inputs": {"ids": {"path", "bytes", "fingerprint"}}, "options": {...every option after defaults...},
 *    "seed": S, "threads": N, "precision": "f32", "started": "2026-12-01T23:30:00Z", "seconds": 1.25}
 * Paths are absolute and normalised. A model's fingerprint hashes its header and tensor table (a GGUF's
 * bytes before the tensor data), an input's the whole file (FNV-1a 64, "fnv1a64:" + 16 hex digits).
 * An allocation failure inside a setter is remembered and reported when the provenance is written. */
typedef struct ids_prov ids_prov;
ids_status ids_prov_new(ids_prov **out, const char *command, ids_err *err); /* starts the clock */
void ids_prov_free(ids_prov *p);
/* A model file; header_bytes: how many leading bytes the fingerprint covers (0: the whole file). */
ids_status ids_prov_model(ids_prov *p, const char *role, const char *path, uint64_t header_bytes, ids_err *err);
/* An input file (a result read by this one). */
ids_status ids_prov_input(ids_prov *p, const char *role, const char *path, ids_err *err);
void ids_prov_opt_int(ids_prov *p, const char *key, long long v);
void ids_prov_opt_num(ids_prov *p, const char *key, double v); /* non-finite: null */
void ids_prov_opt_str(ids_prov *p, const char *key, const char *v); /* NULL: null */
void ids_prov_opt_bool(ids_prov *p, const char *key, bool v);
void ids_prov_opt_strs(ids_prov *p, const char *key, const char *const *v, int n);
void ids_prov_opt_nums(ids_prov *p, const char *key, const float *v, int n);
/* Seed, resolved thread count (0: ids_default_threads()) and numeric precision ("f32"). */
void ids_prov_run(ids_prov *p, uint64_t seed, int threads, const char *precision);
/* A shard of a sharded run (docs/CLUSTER.md): "shard": {"index": I, "count": N} at the top level,
 * beside the options, so that ids_prov_matches does not compare it (the shards of one run, and
 * their merge, are the same request). count 0 removes it. */
void ids_prov_shard(ids_prov *p, int index, int count);
/* The shard recorded in p: its index and count (count 0: none). */
void ids_prov_shard_get(const ids_prov *p, int *index, int *count);
/* Stop the clock ("seconds" = now - start); a later call moves it again. */
void ids_prov_finish(ids_prov *p);
/* Does a result's stored provenance (its JSON text, or a whole result file's text holding a
 * "provenance" object) come from the same request as p: same command, model and input fingerprints,
 * options, seed and precision (not threads, times or version)? When not, why receives the first key
 * that differs with both values ("options.n_items: 8 in the file, 2 asked"). */
bool ids_prov_matches(const ids_prov *p, const char *stored_json, char *why, size_t why_len);

/* ------------------------------------------------------------------------------------------ */
/* Statistics (src/base/stats.c)                                                               */

/* Spearman rank correlation (average ranks for ties); NAN when either side is constant (or, past 64
 * values, when its buffer cannot be allocated). */
double ids_spearman(const double *a, const double *b, int n);
/* The same with a 95% interval from Fisher's z with the variance 1.06 / (n - 3) (Fieller, Hartley
 * and Pearson 1957); ci = {NAN, NAN} below 4 pairs or when rho is NAN. */
void ids_spearman_ci(const double *a, const double *b, int n, double *rho, double ci[2]);

/* Mann-Whitney U test of two independent samples, two-sided. u: U of the first sample (pairs
 * (a, b) with a > b, ties counting 1/2) = R1 - n1 (n1 + 1) / 2 with average ranks; u_min: the smaller
 * of U and n1 n2 - U. Without ties and with both samples of at most IDS_MW_EXACT_MAX values the p-value
 * is exact (2 x the smaller tail of U's null distribution, at most 1); otherwise the normal
 * approximation with the tie-corrected variance n1 n2 / 12 ((N + 1) - sum(t^3 - t) / (N (N - 1))) and a
 * continuity correction of 1/2. z: (U - n1 n2 / 2) / sd, uncorrected. Non-finite values are refused. */
#define IDS_MW_EXACT_MAX 30
typedef struct ids_mw_result {
    double u, u_min, z, p;
    int n1, n2;
    bool exact, ties;
} ids_mw_result;
ids_status ids_mann_whitney(const double *a, int na, const double *b, int nb, ids_mw_result *out, ids_err *err);

/* Seeded percentile bootstrap, 95%: n_boot resamples (0: IDS_BOOT_DEFAULT) of n indices drawn with
 * replacement (SplitMix64 from seed); stat(user, idx, n) computes the statistic on a resample (NAN:
 * left out). ci = the 2.5% and 97.5% quantiles of the resampled statistics (linear interpolation
 * between order statistics); {NAN, NAN} when n < 1. The same seed gives the same interval. */
#define IDS_BOOT_DEFAULT 2000
typedef double (*ids_stat_fn)(void *user, const int *idx, int n);
ids_status ids_bootstrap_ci(ids_stat_fn stat, void *user, int n, int n_boot, uint64_t seed, double ci[2], ids_err *err);
/* ... of the mean of x[0..n) (non-finite values left out of each mean). */
ids_status ids_bootstrap_mean_ci(const double *x, int n, int n_boot, uint64_t seed, double ci[2], ids_err *err);

/* Allocation-failure injection for tests: after `n` more successful allocations through the
 * library's allocator, every further one fails (n < 0 disables). */
void ids_debug_fail_alloc_after(long n);

#ifdef __cplusplus
}
#endif
#endif /* IDSCOPE_BASE_H */
