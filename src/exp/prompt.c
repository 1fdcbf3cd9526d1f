/* How the experiments ask and score: the answer instruction appended to each question and the
 * answer-token sets (every answer word's first token in its case variants, log-sum-exp). */
#include "idscope/exp.h"
#include "exp/exp_internal.h"

#include <ctype.h>
#include <math.h>

bool ids_positive_control(const char *text_gguf) {
    ids_gguf *g = NULL;
    const char *meta = NULL;
    const bool yes = text_gguf && !ids_hf_is_dir(text_gguf) && ids_gguf_open(&g, text_gguf, NULL) == IDS_OK &&
                     ids_gguf_get_str(g, "idscope.training", &meta, NULL) == IDS_OK && meta;
    ids_gguf_close(g);
    return yes;
}

const char *ids_exp_instruction(const ids_exp *e, const ids_vlm *v) {
    if (e->no_instruction) return "";
    if (e->instruction) return e->instruction;
    /* a model made by idscope's trainer keeps the prompt it was trained on (no instruction) */
    const char *meta = NULL;
    if (v && ids_gguf_get_str(ids_model_gguf(ids_vlm_model(v)), "idscope.training", &meta, NULL) == IDS_OK && meta)
        return "";
    return IDS_PAPER_INSTRUCTION;
}

char *ids_instruct(const char *question, ids_relation r, const char *instruction) {
    if (!instruction || !*instruction) return ids__strdup(question);
    const char *w[2] = {ids_answer_word(r, true), ids_answer_word(r, false)};
    if (!w[0]) w[0] = w[1] = "";
    size_t n = strlen(question) + 2 + strlen(instruction);
    for (const char *p = instruction; (p = strchr(p, '{')); p++) n += strlen(w[0]) + strlen(w[1]);
    char *out = ids__malloc(n);
    if (!out) return NULL;
    size_t k = (size_t)snprintf(out, n, "%s ", question);
    for (const char *p = instruction; *p;) {
        if (!strncmp(p, "{first}", 7) || !strncmp(p, "{second}", 8)) {
            const bool first = p[1] == 'f';
            k += (size_t)snprintf(out + k, n - k, "%s", w[first ? 0 : 1]);
            p += first ? 7 : 8;
        } else {
            out[k++] = *p++;
        }
    }
    out[k] = 0;
    return out;
}

char *ids_question_instructed(ids_relation r, const char *a, const char *b, const char *c, const char *instruction) {
    char *q = ids_question(r, a, b, c);
    char *out = q ? ids_instruct(q, r, instruction) : NULL;
    free(q);
    return out;
}

/* Does the token's text (spaces and SPM's '▁' left out at its start) begin the word, holding at
 * least one of its letters? */
static bool token_begins_word(const ids_tokenizer *t, int32_t id, const char *word) {
    const int attr = ids_tokenizer_attr(t, id);
    if (attr == IDS_TOKEN_BYTE || attr == IDS_TOKEN_UNKNOWN || attr == IDS_TOKEN_CONTROL) return false;
    char *txt = ids_token_to_text(t, id);
    if (!txt) return false;
    const char *p = txt;
    for (;;) {
        if (*p == ' ') p++;
        else if (!strncmp(p, "\xe2\x96\x81", 3)) p += 3; /* U+2581, SPM's space */
        else break;
    }
    const size_t n = strlen(p);
    const bool ok = n > 0 && n <= strlen(word) && !strncmp(p, word, n) && isalnum((unsigned char)p[0]);
    free(txt);
    return ok;
}

ids_status ids_answer_set_make(const ids_tokenizer *tok, ids_relation rel, ids_answer_set *out, ids_err *err) {
    memset(out, 0, sizeof *out);
    out->relation = rel;
    if ((unsigned)rel >= IDS_REL_COUNT) return ids__err(err, IDS_ERR_ARG, "answer tokens: relation %d is unknown", (int)rel);
    for (int k = 0; k < 2; k++) {
        char w[20];
        snprintf(w, sizeof w, "%s", ids_answer_word(rel, k == 0));
        if (strchr(w, ' ')) *strchr(w, ' ') = 0; /* "in front": its first word */
        for (int v = 0; v < 4; v++) {
            char var[24], word[20];
            snprintf(word, sizeof word, "%s", w);
            if (v >= 2) word[0] = (char)toupper((unsigned char)word[0]);
            snprintf(var, sizeof var, "%s%s", v % 2 == 0 ? " " : "", word);
            int32_t *ids = NULL;
            size_t n = 0;
            ids_tokenize_opts o = {.continuation = true};
            ids_status st = ids_tokenize(tok, var, strlen(var), o, &ids, &n, err);
            if (st) return st;
            /* a variant the vocabulary can only spell with byte fallbacks (or unknown pieces) is not
             * one of its words */
            bool spelled = n > 0;
            for (size_t i = 0; i < n; i++) {
                const int attr = ids_tokenizer_attr(tok, ids[i]);
                spelled &= attr != IDS_TOKEN_BYTE && attr != IDS_TOKEN_UNKNOWN;
            }
            const int32_t id = n ? ids[0] : -1;
            free(ids);
            if (!spelled || !token_begins_word(tok, id, word)) continue;
            bool dup = false;
            for (int i = 0; i < out->n[k]; i++) dup |= out->tok[k][i] == id;
            if (dup || out->n[k] >= IDS_ANSWER_MAX) continue;
            const int i = out->n[k]++;
            out->tok[k][i] = id;
            snprintf(out->variant[k][i], sizeof out->variant[k][i], "%s", var);
            const char *piece = ids_tokenizer_piece(tok, id);
            snprintf(out->piece[k][i], sizeof out->piece[k][i], "%s", piece ? piece : "");
        }
        if (!out->n[k]) { /* nothing begins the word: fall back to the paper's word rule */
            const int32_t id = ids_tokenizer_word_token(tok, w, err);
            if (id < 0) return err ? err->code : IDS_ERR_NOT_FOUND;
            out->tok[k][0] = id;
            out->n[k] = 1;
            snprintf(out->variant[k][0], sizeof out->variant[k][0], " %s", w);
            const char *piece = ids_tokenizer_piece(tok, id);
            snprintf(out->piece[k][0], sizeof out->piece[k][0], "%s", piece ? piece : "");
        }
    }
    for (int i = 0; i < out->n[0]; i++)
        for (int j = 0; j < out->n[1]; j++)
            if (out->tok[0][i] == out->tok[1][j])
                return ids__err(err, IDS_ERR_ARG, "answer tokens: '%s' and '%s' both begin with token %d ('%s'): their "
                                "probabilities cannot be told apart", out->variant[0][i], out->variant[1][j], out->tok[0][i],
                                out->piece[0][i]);
    return IDS_OK;
}

int ids_answer_set_cands(const ids_answer_set *s, int32_t *cand) {
    int n = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < s->n[k]; i++) cand[n++] = s->tok[k][i];
    return n;
}

void ids_answer_set_reduce(const ids_answer_set *s, const float *lp, float out[2]) {
    for (int k = 0, off = 0; k < 2; off += s->n[k], k++) {
        double m = -INFINITY, sum = 0;
        for (int i = 0; i < s->n[k]; i++) m = fmax(m, lp[off + i]);
        for (int i = 0; i < s->n[k] && isfinite(m); i++) sum += exp((double)lp[off + i] - m);
        out[k] = isfinite(m) ? (float)(m + log(sum)) : (float)m;
    }
}
