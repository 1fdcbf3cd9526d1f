/* Timing a prefill: N tokens through the whole decoder, best of R runs, with the arithmetic it did
 * (matrix products of every block, causal attention, the output row). */
#define _POSIX_C_SOURCE 200809L
#include "idscope/engine.h"
#include "base/internal.h"

#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ids_prefill_flops(const ids_hparams *hp, int n) {
    const double E = hp->n_embd, F = hp->n_ff, q = (double)hp->n_head * hp->head_dim,
                 kv = (double)hp->n_head_kv * hp->head_dim, N = n;
    const double proj = 2.0 * N * E * (q + 2 * kv) + 2.0 * N * q * E; /* q, k, v; output */
    const double mlp = 2.0 * N * 3 * E * F;                             /* gate, up, down */
    const double attn = 2.0 * 2 * q * N * (N + 1) / 2;                  /* QK^T and AV over the causal half */
    return hp->n_layer * (proj + mlp + attn) + 2.0 * E * hp->n_vocab;   /* the last row's logits */
}

ids_status ids_bench_prefill(const ids_model *m, int n_tokens, int n_threads, int reps, ids_precision precision,
                             ids_bench_result *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    const ids_hparams *hp = ids_model_hparams(m);
    if (n_tokens < 1 || n_tokens > (1 << 20) || reps < 1 || reps > 1000)
        return ids__err(err, IDS_ERR_ARG, "bench prefill: %d tokens (1..1048576), %d runs (1..1000)", n_tokens, reps);
    ids_ctx_params p = ids_ctx_default_params();
    p.n_ctx = n_tokens;
    p.n_threads = n_threads > 0 ? n_threads : ids_default_threads();
    p.keep_clean = false;
    p.precision = precision;
    ids_ctx *c = NULL;
    ids_seq *s = ids_seq_new(hp->n_embd);
    int32_t *tok = ids__malloc(sizeof(int32_t) * (size_t)n_tokens);
    ids_status st = !s || !tok ? ids__err(err, IDS_ERR_NOMEM, "bench prefill: out of memory") : IDS_OK;
    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (int i = 0; !st && i < n_tokens; i++) { /* tokens drawn past the first few (special) ids */
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = hp->n_vocab > 8 ? 4 + (int32_t)((r >> 33) % (uint64_t)(hp->n_vocab - 4)) : 0;
    }
    if (!st) st = ids_seq_add_tokens(s, tok, (size_t)n_tokens, err);
    if (!st) st = ids_ctx_new(&c, m, p, err);
    out->seconds = 1e300;
    double total = 0; /* tokens/s of the timed runs, summed */
    for (int k = -1; !st && k < reps; k++) { /* k = -1: the warm-up run (it packs what is not packed yet) */
        const double t0 = now_s();
        st = ids_ctx_prefill(c, s, NULL, 0, NULL, NULL, err);
        const double t = now_s() - t0;
        if (k < 0) {
            out->first_seconds = t;
            continue;
        }
        total += n_tokens / t;
        if (t < out->seconds) out->seconds = t;
    }
    if (!st) {
        out->n_tokens = n_tokens;
        out->n_threads = p.n_threads;
        out->reps = reps;
        out->precision = precision;
        snprintf(out->kernels, sizeof out->kernels, "%s", ids_cpu_path());
        out->flops = ids_prefill_flops(hp, n_tokens);
        out->tokens_per_s = n_tokens / out->seconds;
        out->mean_tokens_per_s = total / reps;
        out->gflops = out->flops / out->seconds / 1e9;
        out->ctx_bytes = ids_ctx_memory(c);
        out->packed_bytes = ids_model_packed_bytes(m);
    } else {
        out->seconds = out->first_seconds = 0;
    }
    ids_ctx_free(c);
    ids_seq_free(s);
    free(tok);
    return st;
}
