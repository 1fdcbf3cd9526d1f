/* Accuracy of a VLM on fresh stimuli, measured with the engine: the answer is the likelier of the
 * two answer words' first tokens at the answer position. */
#include "idscope/train.h"
#include "train/tasks.h"
#include "exp/exp_internal.h"

static bool two_way(ids_task task) {
    return !(task == IDS_TASK_DESCRIBE || task == IDS_TASK_TEXT_SPATIAL || task == IDS_TASK_LOCATE || task == IDS_TASK_WHERE ||
             (unsigned)task >= IDS_TASK_COUNT);
}

/* One question: is the right answer's first token likelier than the wrong one's? */
static ids_status eval_question(const ids_vlm *v, ids_ctx *ctx, const tk_sample *s, int n_threads, bool *correct,
                                ids_err *err) {
    const ids_tokenizer *tok = ids_model_tokenizer(ids_vlm_model(v));
    char a[96], b[96];
    snprintf(a, sizeof a, "%s", s->answer);
    snprintf(b, sizeof b, "%s", s->wrong);
    if (strchr(a, ' ')) *strchr(a, ' ') = 0; /* the first word */
    if (strchr(b, ' ')) *strchr(b, ' ') = 0; /* the first word */
    int32_t cand[2] = {ids_tokenizer_word_token(tok, a, err), ids_tokenizer_word_token(tok, b, err)};
    ids_seq *seq = NULL;
    ids_status st = cand[0] < 0 || cand[1] < 0 ? (err ? err->code : IDS_ERR_NOT_FOUND) : IDS_OK;
    if (!st) st = ids_vlm_build_seq(v, s->prompt, s->images, s->n_images, n_threads, NULL, &seq, err);
    float lp[2];
    ids_run_opts o = {.cand = cand, .n_cand = 2};
    ids_run_out out = {.cand_logprob = lp};
    if (!st) st = ids_ctx_prefill(ctx, seq, NULL, 0, &o, &out, err);
    *correct = !st && lp[0] > lp[1];
    ids_seq_free(seq);
    return st;
}

/* n questions of a task; x (may be NULL) numbers them, skips other shards' and keeps or reads each
 * verdict. Every question is drawn (they share one random sequence), only the run's are asked. */
static ids_status eval_loop(const ids_vlm *v, ids__exp *x, ids_task task, int n, uint64_t seed, int held_out,
                            const ids_train_config *c, int n_threads, ids_precision precision, int *n_correct, ids_err *err) {
    *n_correct = 0;
    if (!two_way(task)) return ids__err(err, IDS_ERR_ARG, "eval: task '%s' has no two-way answer", ids_task_name(task));
    ids_catalog *cat = ids_catalog_new();
    ids_ctx *ctx = NULL;
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = 4096;
    cp.max_rows = 2048;
    cp.n_threads = n_threads;
    cp.precision = precision;
    cp.keep_clean = false;
    ids_status st = cat ? ids_ctx_new(&ctx, ids_vlm_model(v), cp, err) : ids__err(err, IDS_ERR_NOMEM, "eval: out of memory");
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)task * 1000003ull + 17;
    for (int i = 0; i < n && !st; i++) {
        tk_sample s;
        if ((st = tk_make(c, cat, task, &rng, held_out, &s, err))) break;
        const bool mine = !x || ids__item_mine(x, x->done);
        const void *kept = NULL;
        size_t len = 0;
        int32_t verdict = 0;
        if (x) x->item = x->done;
        if (mine && x) st = ids__item_find(x, &kept, &len, err);
        if (!st && kept && len != sizeof verdict)
            st = ids__err(err, IDS_ERR_FORMAT, "eval: kept item %ld has %zu bytes, %zu expected", x->item, len, sizeof verdict);
        if (!st && kept) memcpy(&verdict, kept, sizeof verdict);
        if (!st && mine && !kept) {
            bool ok = false;
            st = eval_question(v, ctx, &s, n_threads, &ok, err);
            verdict = ok;
            if (!st && x) st = ids__item_keep(x, &verdict, sizeof verdict, err);
        }
        *n_correct += mine && verdict;
        tk_free(&s);
        if (x) {
            x->done++;
            if (x->progress && (x->done % 10 == 0 || x->done == x->total)) x->progress("eval", x->done, x->total, x->puser);
        }
    }
    ids_ctx_free(ctx);
    ids_catalog_free(cat);
    return st;
}

ids_status ids_eval_task(const ids_vlm *v, ids_task task, int n, uint64_t seed, int held_out,
                         const ids_train_config *c, int n_threads, ids_precision precision, int *n_correct,
                         ids_err *err) {
    return eval_loop(v, NULL, task, n, seed, held_out, c, n_threads, precision, n_correct, err);
}

static ids_status eval_prov(ids__exp *x, const ids_eval_opts *o, ids_prov **out, ids_err *err) {
    ids_status st = ids_prov_new(out, "eval", err);
    if (!st) st = ids_vlm_prov(*out, x->v, err);
    if (st) return st;
    const char *names[IDS_TASK_COUNT];
    for (int k = 0; k < o->n_tasks; k++) names[k] = ids_task_name(o->tasks[k]);
    ids_prov_opt_strs(*out, "tasks", names, o->n_tasks);
    ids_prov_opt_int(*out, "n", o->n);
    ids_prov_opt_str(*out, "held_out", o->held_out > 0 ? "only" : o->held_out == 0 ? "exclude" : "all");
    ids_prov_run(*out, x->seed, x->n_threads, ids_precision_name(x->precision));
    ids_prov_shard(*out, x->shard, ids__exp_partial(x) ? x->n_shards : 0);
    x->prov = *out;
    return IDS_OK;
}

ids_status ids_eval_run(const ids_vlm *v, const ids_eval_opts *o, ids_eval_result *out, ids_progress_fn progress, void *user,
                        ids_err *err) {
    memset(out, 0, sizeof *out);
    if (o->n_tasks < 1 || o->n_tasks > IDS_TASK_COUNT || !o->tasks || o->n < 1 || !o->config)
        return ids__err(err, IDS_ERR_ARG, "eval: %d tasks (1..%d), %d questions each (at least 1)", o->n_tasks, IDS_TASK_COUNT, o->n);
    ids_catalog *cat = ids_catalog_new();
    if (!cat) return ids__err(err, IDS_ERR_NOMEM, "eval: out of memory");
    ids__exp x;
    ids_status st = ids__exp_init(&x, &o->exp, v, cat, 2, 2, "eval", progress, user, err);
    if (!st) st = eval_prov(&x, o, &out->prov, err);
    x.total = (long)o->n_tasks * o->n;
    out->n = o->n;
    for (int k = 0; !st && k < o->n_tasks; k++) {
        out->task[k] = o->tasks[k];
        st = eval_loop(v, &x, o->tasks[k], o->n, x.seed, o->held_out, o->config, x.n_threads, x.precision, &out->correct[k], err);
        out->n_tasks = k + 1;
    }
    if (!st) ids_prov_finish(out->prov);
    st = ids__exp_end(&x, st, err);
    if (st) ids_eval_result_free(out);
    ids_catalog_free(cat);
    return st;
}

ids_status ids_eval_write(const char *dir, const ids_eval_result *r, ids_err *err) {
    cJSON *doc = cJSON_CreateObject(), *tasks = NULL;
    bool oom = !doc || !cJSON_AddStringToObject(doc, "format", "idscope.eval.v1");
    if (!oom) ids__jadd(doc, "n", r->n, 0, &oom);
    if (!oom) oom = !(tasks = cJSON_AddArrayToObject(doc, "tasks"));
    ids__tb csv = {0};
    ids__tb_printf(&csv, "task,correct,n,accuracy\n");
    for (int k = 0; !oom && k < r->n_tasks; k++) {
        cJSON *t = cJSON_CreateObject();
        const double acc = r->n ? (double)r->correct[k] / r->n : 0;
        if (!t || !cJSON_AddItemToArray(tasks, t)) {
            cJSON_Delete(t);
            oom = true;
            break;
        }
        oom |= !cJSON_AddStringToObject(t, "task", ids_task_name(r->task[k]));
        ids__jadd(t, "correct", r->correct[k], 0, &oom);
        ids__jadd(t, "accuracy", acc, 4, &oom);
        ids__tb_printf(&csv, "%s,%d,%d", ids_task_name(r->task[k]), r->correct[k], r->n);
        ids__tb_num(&csv, ",", acc, 4);
        ids__tb_printf(&csv, "\n");
    }
    int i = 0, n = 0;
    if (r->prov) ids_prov_shard_get(r->prov, &i, &n);
    ids_status st = oom || csv.oom ? ids__err(err, IDS_ERR_NOMEM, "eval.json: out of memory") : IDS_OK;
    /* the CSV first: the JSON marks the result as done (a shard writes neither: its part.json) */
    if (!st && n == 0) st = ids__write_text(dir, "eval.csv", csv.p, csv.n, err);
    if (!st) st = ids__result_write_as(dir, "eval.json", doc, r->prov, false, err);
    cJSON_Delete(doc);
    free(csv.p);
    return st;
}

void ids_eval_result_free(ids_eval_result *r) {
    ids_prov_free(r->prov);
    memset(r, 0, sizeof *r);
}

void ids_eval_default_config(const ids_vlm *v, ids_train_config *c) {
    ids_train_default_config(c);
    c->image_size = ids_vision_params(ids_vlm_vision(v))->image_size;
    const char *meta = NULL;
    if (ids_gguf_get_str(ids_model_gguf(ids_vlm_model(v)), "idscope.training", &meta, NULL) == IDS_OK && meta) {
        const char *h = strstr(meta, "\"holdout\":"), *f = strstr(meta, "\"frames\":");
        if (h) c->holdout = (float)strtod(h + 10, NULL);
        if (f) c->frames = (int)strtol(f + 9, NULL, 10);
    }
}
