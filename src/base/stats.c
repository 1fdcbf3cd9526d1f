/* Statistics the results carry (base): ranks, Spearman with a CI, Mann-Whitney U, seeded bootstrap
 * percentile CIs. Every sum in double; no hidden state (the bootstrap's generator is seeded per call). */
#include "idscope/base.h"
#include "base/internal.h"
#include "base/rng.h"

#include <math.h>
#include <stdlib.h>

/* Average ranks (1-based; ties share their mean rank) of x[0..n) into r; *ties receives the sum of
 * t^3 - t over the groups of t equal values (may be NULL). O(n^2): the samples here are small. */
static void ranks(const double *x, int n, double *r, double *ties) {
    double tsum = 0;
    for (int i = 0; i < n; i++) {
        int less = 0, eq = 0, first = 1;
        for (int j = 0; j < n; j++) {
            less += x[j] < x[i], eq += x[j] == x[i];
            if (j < i && x[j] == x[i]) first = 0;
        }
        r[i] = less + (eq + 1) * 0.5;
        if (first && eq > 1) tsum += (double)eq * eq * eq - eq;
    }
    if (ties) *ties = tsum;
}

static double pearson(const double *a, const double *b, int n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

double ids_spearman(const double *a, const double *b, int n) {
    if (n < 2) return NAN;
    double buf[128], *ra = n <= 64 ? buf : ids__malloc(sizeof(double) * (size_t)n * 2);
    if (!ra) return NAN;
    double *rb = ra + n;
    ranks(a, n, ra, NULL);
    ranks(b, n, rb, NULL);
    const double rho = pearson(ra, rb, n);
    if (ra != buf) free(ra);
    return rho;
}

/* The standard normal quantile of 0.975. */
#define Z975 1.959963984540054

void ids_spearman_ci(const double *a, const double *b, int n, double *rho, double ci[2]) {
    *rho = ids_spearman(a, b, n);
    ci[0] = ci[1] = NAN;
    if (n < 4 || !isfinite(*rho)) return;
    /* Fisher's z with the variance 1.06 / (n - 3) of Fieller, Hartley and Pearson (1957) */
    const double r = fmax(-0.999999, fmin(0.999999, *rho)), z = atanh(r), se = sqrt(1.06 / (n - 3));
    ci[0] = tanh(z - Z975 * se);
    ci[1] = tanh(z + Z975 * se);
}

/* Exact null distribution of U for sample sizes m, n without ties: P(U <= u) and P(U >= u). The
 * count of arrangements with U = u follows c(m, n, u) = c(m - 1, n, u - n) + c(m, n - 1, u) (the
 * largest value belongs to the first sample or not); rows over n kept for every m. */
static ids_status mw_exact(int m, int n, double u, double *p_le, double *p_ge, ids_err *err) {
    const int umax = m * n;
    double *prev = ids__calloc((size_t)(n + 1) * (umax + 1), sizeof(double));
    double *cur = ids__calloc((size_t)(n + 1) * (umax + 1), sizeof(double));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return ids__err(err, IDS_ERR_NOMEM, "Mann-Whitney: out of memory for samples of %d and %d", m, n);
    }
    const size_t W = (size_t)umax + 1;
    for (int j = 0; j <= n; j++) prev[j * W] = 1; /* m = 0: U = 0 only */
    for (int i = 1; i <= m; i++) {
        for (size_t k = 0; k < (size_t)(n + 1) * W; k++) cur[k] = 0;
        cur[0] = 1; /* n = 0: U = 0 only */
        for (int j = 1; j <= n; j++)
            for (int v = 0; v <= i * j; v++)
                cur[j * W + v] = (v >= j ? prev[j * W + v - j] : 0) + cur[(j - 1) * W + v];
        double *t = prev;
        prev = cur, cur = t;
    }
    double total = 0, le = 0, ge = 0;
    for (int v = 0; v <= umax; v++) {
        const double c = prev[(size_t)n * W + v];
        total += c;
        if (v <= u + 1e-9) le += c;
        if (v >= u - 1e-9) ge += c;
    }
    *p_le = le / total, *p_ge = ge / total;
    free(prev);
    free(cur);
    return IDS_OK;
}

ids_status ids_mann_whitney(const double *a, int na, const double *b, int nb, ids_mw_result *out, ids_err *err) {
    *out = (ids_mw_result){.u = NAN, .u_min = NAN, .z = NAN, .p = NAN, .n1 = na, .n2 = nb};
    if (na < 1 || nb < 1) return ids__err(err, IDS_ERR_ARG, "Mann-Whitney: both samples need a value (%d and %d given)", na, nb);
    for (int i = 0; i < na + nb; i++) {
        const double v = i < na ? a[i] : b[i - na];
        if (!isfinite(v))
            return ids__err(err, IDS_ERR_ARG, "Mann-Whitney: value %d of sample %d is not finite", i < na ? i : i - na, i < na ? 1 : 2);
    }
    const int N = na + nb;
    double *x = ids__malloc(sizeof(double) * 2 * (size_t)N);
    if (!x) return ids__err(err, IDS_ERR_NOMEM, "Mann-Whitney: out of memory for %d values", N);
    double *r = x + N, ties = 0, r1 = 0;
    for (int i = 0; i < N; i++) x[i] = i < na ? a[i] : b[i - na];
    ranks(x, N, r, &ties);
    for (int i = 0; i < na; i++) r1 += r[i];
    free(x);
    const double u1 = r1 - (double)na * (na + 1) / 2, mu = (double)na * nb / 2;
    out->u = u1;
    out->u_min = fmin(u1, (double)na * nb - u1);
    out->ties = ties > 0;
    const double var = (double)na * nb / 12.0 * ((N + 1) - ties / ((double)N * (N - 1)));
    out->z = var > 0 ? (u1 - mu) / sqrt(var) : 0;
    if (!out->ties && na <= IDS_MW_EXACT_MAX && nb <= IDS_MW_EXACT_MAX) {
        double le = 0, ge = 0;
        ids_status st = mw_exact(na, nb, u1, &le, &ge, err);
        if (st) return st;
        out->exact = true;
        out->p = fmin(1.0, 2 * fmin(le, ge));
        return IDS_OK;
    }
    if (var <= 0) { /* every value equal: no evidence either way */
        out->p = 1;
        return IDS_OK;
    }
    const double zc = fmax(0.0, fabs(u1 - mu) - 0.5) / sqrt(var); /* continuity correction */
    out->p = fmin(1.0, erfc(zc / sqrt(2.0)));
    return IDS_OK;
}

static int cmp_double(const void *p, const void *q) {
    const double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

/* The q-quantile of sorted s[0..n) with linear interpolation between order statistics (numpy's default). */
static double quantile_sorted(const double *s, int n, double q) {
    const double h = (n - 1) * q;
    const int lo = (int)floor(h);
    return lo + 1 < n ? s[lo] + (h - lo) * (s[lo + 1] - s[lo]) : s[n - 1];
}

ids_status ids_bootstrap_ci(ids_stat_fn stat, void *user, int n, int n_boot, uint64_t seed, double ci[2], ids_err *err) {
    ci[0] = ci[1] = NAN;
    if (n < 1) return IDS_OK; /* nothing to resample: no interval */
    if (n_boot <= 0) n_boot = IDS_BOOT_DEFAULT;
    int *idx = ids__malloc(sizeof(int) * (size_t)n);
    double *s = ids__malloc(sizeof(double) * (size_t)n_boot);
    if (!idx || !s) {
        free(idx);
        free(s);
        return ids__err(err, IDS_ERR_NOMEM, "bootstrap: out of memory for %d resamples of %d", n_boot, n);
    }
    uint64_t rng = seed ^ 0xB0075712A9ull;
    int m = 0;
    for (int b = 0; b < n_boot; b++) {
        for (int i = 0; i < n; i++) {
            int k = (int)(ids__rng_splitmix_unit(&rng) * n);
            idx[i] = k < n ? k : n - 1;
        }
        const double v = stat(user, idx, n);
        if (isfinite(v)) s[m++] = v;
    }
    if (m > 0) {
        qsort(s, (size_t)m, sizeof *s, cmp_double);
        ci[0] = quantile_sorted(s, m, 0.025);
        ci[1] = quantile_sorted(s, m, 0.975);
    }
    free(idx);
    free(s);
    return IDS_OK;
}

static double mean_of(void *user, const int *idx, int n) {
    const double *x = user;
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[idx[i]])) s += x[idx[i]], k++;
    return k ? s / k : NAN;
}

ids_status ids_bootstrap_mean_ci(const double *x, int n, int n_boot, uint64_t seed, double ci[2], ids_err *err) {
    return ids_bootstrap_ci(mean_of, (void *)x, n, n_boot, seed, ci, err);
}
