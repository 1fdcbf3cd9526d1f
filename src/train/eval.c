/* Accuracy of a VLM on fresh stimuli, measured with the engine: the answer is the likelier of the
 * two answer words' first tokens at the answer position. */
#include "idscope/train.h"
#include "train/tasks.h"

ids_status ids_eval_task(const ids_vlm *v, ids_task task, int n, uint64_t seed, int held_out,
                         const ids_train_config *c, int n_threads, ids_precision precision, int *n_correct,
                         ids_err *err) {
    *n_correct = 0;
    if (task == IDS_TASK_DESCRIBE || task == IDS_TASK_TEXT_SPATIAL || task == IDS_TASK_LOCATE || task == IDS_TASK_WHERE ||
        task >= IDS_TASK_COUNT)
        return ids__err(err, IDS_ERR_ARG, "eval: task '%s' has no two-way answer", ids_task_name(task));
    const ids_model *m = ids_vlm_model(v);
    const ids_tokenizer *tok = ids_model_tokenizer(m);
    ids_catalog *cat = ids_catalog_new();
    ids_ctx *ctx = NULL;
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 4096;
    cp.max_rows = 2048;
    cp.n_threads = n_threads;
    cp.precision = precision;
    cp.keep_clean = false;
    ids_status st = cat ? ids_ctx_new(&ctx, m, cp, err) : ids__err(err, IDS_ERR_NOMEM, "eval: out of memory");
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)task * 1000003ull + 17;
    for (int i = 0; i < n && !st; i++) {
        tk_sample s;
        if ((st = tk_make(c, cat, task, &rng, held_out, &s, err))) break;
        char a[96], b[96];
        snprintf(a, sizeof a, "%s", s.answer);
        snprintf(b, sizeof b, "%s", s.wrong);
        if (strchr(a, ' ')) *strchr(a, ' ') = 0; /* the first word */
        if (strchr(b, ' ')) *strchr(b, ' ') = 0; /* the first word */
        int32_t cand[2] = {ids_tokenizer_word_token(tok, a, err), ids_tokenizer_word_token(tok, b, err)};
        ids_seq *seq = NULL;
        if (cand[0] < 0 || cand[1] < 0) st = err ? err->code : IDS_ERR_NOT_FOUND;
        if (!st) st = ids_vlm_build_seq(v, s.prompt, s.images, s.n_images, n_threads, NULL, &seq, err);
        float lp[2];
        ids_run_opts o = {.cand = cand, .n_cand = 2};
        ids_run_out out = {.cand_logprob = lp};
        if (!st) st = ids_ctx_prefill(ctx, seq, NULL, 0, &o, &out, err);
        if (!st && lp[0] > lp[1]) (*n_correct)++;
        ids_seq_free(seq);
        tk_free(&s);
    }
    ids_ctx_free(ctx);
    ids_catalog_free(cat);
    return st;
}
