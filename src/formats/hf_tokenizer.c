/* tokenizer.json + tokenizer_config.json of a Hugging Face folder -> the tokenizer.ggml.* keys that
 * llama.cpp's converter writes: SentencePiece-style BPE (byte fallback, "▁" for spaces) as model
 * "llama" with scores ordered as the merges, byte-level BPE as model "gpt2" with its merges and the
 * pre-tokenizer named by its regex. */
#include "formats/hf.h"

#include <cjson/cJSON.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_BYTE = 6 };

typedef struct {
    ids__hf *h;
    const char *file;      /* "DIR/tokenizer.json" for messages */
    cJSON *tj, *tc;        /* tokenizer.json, tokenizer_config.json (may be NULL) */
    const cJSON *model;
    int64_t n;             /* entries */
    const char **tok;      /* [n] */
    char **pads;           /* [n] owned [PADi] strings */
    int32_t *type;         /* [n] */
    float *score;          /* [n] (SPM) */
    ids_strmap ids;        /* token text -> id */
    bool spm;
} tk;

static bool json_mentions(const cJSON *x, const char *type_name) {
    if (!x) return false;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "type");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, type_name)) return true;
    const cJSON *c;
    cJSON_ArrayForEach(c, x) if (cJSON_IsObject(c) || cJSON_IsArray(c)) if (json_mentions(c, type_name)) return true;
    return false;
}

/* The text of the first Split pre-tokenizer's regex, or NULL. */
static const char *split_regex(const cJSON *x) {
    if (!x) return NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "type");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "Split")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(x, "pattern");
        const cJSON *r = p ? cJSON_GetObjectItemCaseSensitive(p, "Regex") : NULL;
        if (cJSON_IsString(r)) return r->valuestring;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, x) if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
        const char *s = split_regex(c);
        if (s) return s;
    }
    return NULL;
}

/* llama.cpp names pre-tokenizers by the text they produce; the regexes of the families idscope reads
 * tell them apart (Llama 3 groups digits by three, Qwen2 splits every digit, GPT-2 has no Split). */
static ids_status pre_name(tk *k, const char **out, ids_err *err) {
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(k->tj, "pre_tokenizer");
    const char *re = split_regex(pt);
    if (!re) *out = "gpt-2";
    else if (strstr(re, "\\p{N}{1,3}")) *out = "llama-bpe";
    else if (strstr(re, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+") && strstr(re, "|\\p{N}|")) *out = "qwen2";
    else
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: pre_tokenizer regex '%.120s' is not one idscope knows "
                        "(Qwen2, Llama 3, GPT-2)", k->file, re);
    return IDS_OK;
}

static ids_status set_token(tk *k, long long id, const char *text, const char *what, ids_err *err) {
    if (id < 0 || id >= k->n) return ids__err(err, IDS_ERR_RANGE, "%s: %s '%s' has id %lld outside 0..%lld", k->file,
                                             what, text, id, (long long)k->n - 1);
    k->tok[id] = text;
    if (!ids__strmap_put(&k->ids, text, strlen(text), id, NULL, NULL))
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
    return IDS_OK;
}

/* Entries: the vocabulary, the added tokens over it, [PADi] for the ids left. */
static ids_status read_tokens(tk *k, int64_t n_vocab, ids_err *err) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(k->model, "vocab"), *it;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(k->tj, "added_tokens");
    if (!cJSON_IsObject(vocab)) return ids__err(err, IDS_ERR_FORMAT, "%s: model.vocab is not an object", k->file);
    long long max_id = n_vocab - 1, id;
    ids_status st;
    cJSON_ArrayForEach(it, vocab) {
        if ((st = ids__json_int(it, NULL, 0, 1 << 24, 0, &id, err)))
            return ids__err_prefix(err, st, "%s: model.vocab['%s']", k->file, it->string);
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(it, added) {
        if ((st = ids__json_int(it, "id", 0, 1 << 24, 0, &id, err)))
            return ids__err_prefix(err, st, "%s: added_tokens", k->file);
        if (id > max_id) max_id = id;
    }
    k->n = max_id + 1;
    k->tok = ids__calloc((size_t)k->n, sizeof *k->tok);
    k->pads = ids__calloc((size_t)k->n, sizeof *k->pads);
    k->type = ids__calloc((size_t)k->n, sizeof *k->type);
    k->score = ids__calloc((size_t)k->n, sizeof *k->score);
    if (!k->tok || !k->pads || !k->type || !k->score || !ids__strmap_init(&k->ids, (size_t)k->n))
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
    cJSON_ArrayForEach(it, vocab) {
        ids__json_int(it, NULL, 0, 1 << 24, 0, &id, NULL);
        if ((st = set_token(k, id, it->string, "token", err))) return st;
        k->type[id] = TT_NORMAL;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(c)) return ids__err(err, IDS_ERR_FORMAT, "%s: added_tokens: an entry without content", k->file);
        ids__json_int(it, "id", 0, 1 << 24, 0, &id, NULL);
        if ((st = set_token(k, id, c->valuestring, "added token", err))) return st;
        k->type[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")) ? TT_CONTROL : TT_USER;
    }
    for (int64_t i = 0; i < k->n; i++) {
        if (k->tok[i]) continue;
        char b[32];
        snprintf(b, sizeof b, "[PAD%lld]", (long long)i);
        if (!(k->pads[i] = ids__strdup(b))) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
        k->tok[i] = k->pads[i];
        k->type[i] = TT_USER;
    }
    return IDS_OK;
}

/* One merge as its two parts ("a b" or ["a", "b"]); buf receives "a b". */
static bool merge_text(const cJSON *m, char *buf, size_t cap, size_t *cut) {
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp || strlen(m->valuestring) >= cap) return false;
        snprintf(buf, cap, "%s", m->valuestring);
        *cut = (size_t)(sp - m->valuestring);
        return true;
    }
    const cJSON *a = cJSON_GetArrayItem(m, 0), *b = cJSON_GetArrayItem(m, 1);
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b)) return false;
    if (snprintf(buf, cap, "%s %s", a->valuestring, b->valuestring) >= (int)cap) return false;
    *cut = strlen(a->valuestring);
    return true;
}

/* SentencePiece-style: the merge of rank r makes its token worth -(r + 1) (llama.cpp's SPM merges
 * the pair whose token scores highest, HF's BPE the pair of lowest rank: the same order); bytes
 * <0xXX> are byte tokens. Byte-level: the merges as "a b" strings. */
static ids_status read_merges(tk *k, ids_gguf_writer *w, ids_err *err) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(k->model, "merges");
    const int n = cJSON_GetArraySize(merges);
    const char **strs = k->spm ? NULL : ids__calloc((size_t)(n ? n : 1), sizeof *strs);
    char **own = k->spm ? NULL : ids__calloc((size_t)(n ? n : 1), sizeof *own);
    if (!k->spm && (!strs || !own)) {
        free(strs), free(own);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
    }
    ids_status st = IDS_OK;
    int r = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        char b[1024];
        size_t cut;
        if (!merge_text(m, b, sizeof b, &cut)) {
            st = ids__err(err, IDS_ERR_FORMAT, "%s: model.merges[%d] is not a pair of tokens", k->file, r);
            break;
        }
        if (k->spm) {
            memmove(b + cut, b + cut + 1, strlen(b + cut + 1) + 1);
            int64_t id;
            if (ids__strmap_get(&k->ids, b, strlen(b), &id) && k->score[id] == 0) k->score[id] = -(float)(r + 1);
        } else if (!(own[r] = ids__strdup(b))) {
            st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
            break;
        } else {
            strs[r] = own[r];
        }
        r++;
    }
    if (!st && !k->spm) st = ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", strs, (uint64_t)n, err);
    for (int i = 0; own && i < n; i++) free(own[i]);
    free(own);
    free(strs);
    return st;
}

/* A special token named in tokenizer_config.json (a string or {"content": ...}) -> its id; else the
 * config.json id under id_key; -1 when neither. */
static int64_t special_id(tk *k, const char *name, const char *id_key) {
    const cJSON *v = k->tc ? cJSON_GetObjectItemCaseSensitive(k->tc, name) : NULL;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    int64_t id;
    if (cJSON_IsString(v) && ids__strmap_get(&k->ids, v->valuestring, strlen(v->valuestring), &id)) return id;
    const cJSON *c = id_key ? cJSON_GetObjectItemCaseSensitive(k->h->config, id_key) : NULL;
    if (cJSON_IsArray(c)) c = cJSON_GetArrayItem(c, 0);
    long long x;
    if (cJSON_IsNumber(c) && !ids__json_int(c, NULL, 0, k->n - 1, -1, &x, NULL)) return x;
    return -1;
}

static ids_status put_specials(tk *k, ids_gguf_writer *w, ids_err *err) {
    static const char *const names[4][3] = {{"bos_token", "bos_token_id", "tokenizer.ggml.bos_token_id"},
                                            {"eos_token", "eos_token_id", "tokenizer.ggml.eos_token_id"},
                                            {"unk_token", NULL, "tokenizer.ggml.unknown_token_id"},
                                            {"pad_token", "pad_token_id", "tokenizer.ggml.padding_token_id"}};
    ids_status st = IDS_OK;
    for (int i = 0; i < 4 && !st; i++) {
        int64_t id = special_id(k, names[i][0], names[i][1]);
        if (i == 2 && id < 0) { /* the model's unk_token */
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(k->model, "unk_token");
            if (cJSON_IsString(u) && !ids__strmap_get(&k->ids, u->valuestring, strlen(u->valuestring), &id)) id = -1;
        }
        if (id < 0) continue;
        if (i == 2) k->type[id] = TT_UNKNOWN;
        st = ids_gguf_writer_set_u32(w, names[i][2], (uint32_t)id, err);
    }
    const cJSON *ab = k->tc ? cJSON_GetObjectItemCaseSensitive(k->tc, "add_bos_token") : NULL;
    const cJSON *ae = k->tc ? cJSON_GetObjectItemCaseSensitive(k->tc, "add_eos_token") : NULL;
    if (!st) st = ids_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsBool(ab) ? cJSON_IsTrue(ab) : k->spm, err);
    if (!st && cJSON_IsBool(ae)) st = ids_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", cJSON_IsTrue(ae), err);
    return st;
}

/* The chat template: tokenizer_config.json's (a string, or the "default" of a list), else
 * chat_template.json's; written as tokenizer.chat_template. */
static ids_status put_template(tk *k, ids_gguf_writer *w, ids_err *err) {
    const cJSON *t = k->tc ? cJSON_GetObjectItemCaseSensitive(k->tc, "chat_template") : NULL;
    cJSON *ct = NULL;
    if (cJSON_IsArray(t)) {
        const cJSON *e, *pick = NULL;
        cJSON_ArrayForEach(e, t) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default")) pick = e;
        }
        t = pick ? cJSON_GetObjectItemCaseSensitive(pick, "template") : NULL;
    }
    if (!cJSON_IsString(t)) {
        ids_status st = ids__hf_json(k->h, "chat_template.json", &ct, err);
        if (st && st != IDS_ERR_NOT_FOUND) return st;
        t = ct ? cJSON_GetObjectItemCaseSensitive(ct, "chat_template") : NULL;
    }
    ids_status st = cJSON_IsString(t) ? ids_gguf_writer_set_str(w, "tokenizer.chat_template", t->valuestring, err) : IDS_OK;
    cJSON_Delete(ct);
    return st;
}

static ids_status write_keys(tk *k, ids_gguf_writer *w, ids_err *err) {
    ids_status st = ids_gguf_writer_set_str(w, "tokenizer.ggml.model", k->spm ? "llama" : "gpt2", err);
    const char *pre = "default";
    if (!st && !k->spm) st = pre_name(k, &pre, err);
    if (!st) st = ids_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, err);
    if (!st && k->spm)
        for (int64_t i = 0; i < k->n; i++) {
            unsigned x;
            char tail;
            if (k->type[i] == TT_NORMAL && strlen(k->tok[i]) == 6 && sscanf(k->tok[i], "<0x%2X%c", &x, &tail) == 2 && tail == '>')
                k->type[i] = TT_BYTE;
        }
    if (!st) st = read_merges(k, w, err);
    if (!st) st = put_specials(k, w, err); /* marks the unknown token before the types are written */
    if (!st) st = ids_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k->tok, (uint64_t)k->n, err);
    if (!st && k->spm) st = ids_gguf_writer_set_arr(w, "tokenizer.ggml.scores", IDS_GGUF_FLOAT32, k->score, (uint64_t)k->n, err);
    if (!st) st = ids_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", IDS_GGUF_INT32, k->type, (uint64_t)k->n, err);
    if (!st && k->spm) { /* the normalizer (or Metaspace) puts "▁" before the text */
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(k->tj, "pre_tokenizer");
        const cJSON *scheme = pt ? cJSON_GetObjectItemCaseSensitive(pt, "prepend_scheme") : NULL;
        bool prefix = json_mentions(cJSON_GetObjectItemCaseSensitive(k->tj, "normalizer"), "Prepend") ||
                      (json_mentions(pt, "Metaspace") && !(cJSON_IsString(scheme) && !strcmp(scheme->valuestring, "never")));
        st = ids_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", prefix, err);
    }
    if (!st) st = put_template(k, w, err);
    return st;
}

/* The slow tokenizer's files (vocab.json, merges.txt, the added tokens of tokenizer_config.json) as the
 * tokenizer.json a fast tokenizer would have: byte-level BPE with the pre-tokenizer of its class (Qwen2's
 * regex; GPT-2's has no Split). OpenGVLab's InternVL checkpoints ship only these. */
static const char QWEN2_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
                                  "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static ids_status merges_txt(tk *k, cJSON *model, ids_err *err) {
    char path[1024], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/merges.txt", k->h->dir);
    ids_status st = ids__read_file(path, &text, &len, err);
    if (st) return ids__err_prefix(err, st, "%s/vocab.json has no tokenizer.json beside it", k->h->dir);
    cJSON *arr = cJSON_AddArrayToObject(model, "merges");
    int line = 0;
    for (char *p = text, *end; !st && p < text + len; p = end + 1, line++) {
        end = memchr(p, '\n', (size_t)(text + len - p));
        if (!end) end = text + len;
        size_t n = (size_t)(end - p);
        if (n && p[n - 1] == '\r') n--;
        if (!n || (line == 0 && !strncmp(p, "#version", 8))) continue;
        char *m = ids__malloc(n + 1);
        if (m) memcpy(m, p, n), m[n] = 0;
        cJSON *item = m ? cJSON_CreateString(m) : NULL;
        free(m);
        if (!arr || !item || !cJSON_AddItemToArray(arr, item))
            st = (cJSON_Delete(item), ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path));
        else if (!strchr(item->valuestring, ' '))
            st = ids__err(err, IDS_ERR_FORMAT, "%s: line %d is not a pair of tokens", path, line + 1);
    }
    free(text);
    return st;
}

/* added_tokens_decoder of tokenizer_config.json ({"id": {"content", "special"}}) as added_tokens. */
static ids_status slow_added(tk *k, cJSON *root, ids_err *err) {
    cJSON *arr = cJSON_AddArrayToObject(root, "added_tokens");
    const cJSON *dec = k->tc ? cJSON_GetObjectItemCaseSensitive(k->tc, "added_tokens_decoder") : NULL, *it;
    if (!arr) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
    cJSON_ArrayForEach(it, dec) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        char *e;
        long id = strtol(it->string, &e, 10);
        if (!cJSON_IsString(c) || *e || id < 0 || id > (1 << 24))
            return ids__err(err, IDS_ERR_FORMAT, "%s/tokenizer_config.json: added_tokens_decoder['%s'] is not an id with "
                            "a content", k->h->dir, it->string);
        cJSON *t = cJSON_CreateObject();
        if (!t || !cJSON_AddItemToArray(arr, t) || !cJSON_AddNumberToObject(t, "id", (double)id) ||
            !cJSON_AddStringToObject(t, "content", c->valuestring) ||
            !cJSON_AddBoolToObject(t, "special", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"))))
            return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
    }
    return IDS_OK;
}

static ids_status slow_tokenizer(tk *k, ids_err *err) {
    cJSON *vocab = NULL;
    ids_status st = ids__hf_json(k->h, "vocab.json", &vocab, err);
    if (st == IDS_ERR_NOT_FOUND)
        return ids__err(err, st, "%s/tokenizer.json: not found (the folder needs its tokenizer: tokenizer.json, or "
                        "vocab.json and merges.txt)", k->h->dir);
    if (st) return st;
    const cJSON *cls = k->tc ? cJSON_GetObjectItemCaseSensitive(k->tc, "tokenizer_class") : NULL;
    const char *cn = cJSON_IsString(cls) ? cls->valuestring : "";
    const bool qwen = !strncmp(cn, "Qwen2Tokenizer", 14);
    if (!qwen && strncmp(cn, "GPT2Tokenizer", 13)) {
        cJSON_Delete(vocab);
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s/tokenizer_config.json: tokenizer_class '%s' with vocab.json and "
                        "merges.txt is not supported (Qwen2Tokenizer, GPT2Tokenizer)", k->h->dir, cn);
    }
    cJSON *root = k->tj = cJSON_CreateObject(), *model = root ? cJSON_AddObjectToObject(root, "model") : NULL;
    cJSON *pre = model ? cJSON_AddObjectToObject(root, "pre_tokenizer") : NULL;
    cJSON *seq = pre ? cJSON_AddArrayToObject(pre, "pretokenizers") : NULL, *split = NULL, *bl = NULL;
    if (seq && qwen && (split = cJSON_CreateObject()) && cJSON_AddItemToArray(seq, split)) {
        cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
        if (!cJSON_AddStringToObject(split, "type", "Split") || !pat || !cJSON_AddStringToObject(pat, "Regex", QWEN2_REGEX))
            seq = NULL;
    }
    if (seq && (bl = cJSON_CreateObject()) && cJSON_AddItemToArray(seq, bl) && cJSON_AddStringToObject(bl, "type", "ByteLevel") &&
        cJSON_AddStringToObject(model, "type", "BPE") && cJSON_AddItemToObject(model, "vocab", vocab)) {
        vocab = NULL;
        st = IDS_OK;
    } else {
        st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", k->file);
    }
    cJSON_Delete(vocab);
    if (!st) st = merges_txt(k, model, err);
    if (!st) st = slow_added(k, root, err);
    return st;
}

ids_status ids__hf_tokenizer(ids__hf *h, ids_gguf_writer *w, int64_t n_vocab, ids_err *err) {
    int64_t n;
    return ids__hf_tokenizer_n(h, w, n_vocab, &n, err);
}

ids_status ids__hf_tokenizer_n(ids__hf *h, ids_gguf_writer *w, int64_t n_vocab, int64_t *n_out, ids_err *err) {
    char file[1024];
    snprintf(file, sizeof file, "%s/tokenizer.json", h->dir);
    tk k = {.h = h, .file = file};
    ids_status st = ids__hf_json(h, "tokenizer.json", &k.tj, err);
    const bool slow = st == IDS_ERR_NOT_FOUND;
    if (!st || slow) {
        ids_status s2 = ids__hf_json(h, "tokenizer_config.json", &k.tc, err);
        st = s2 == IDS_ERR_NOT_FOUND ? IDS_OK : s2;
    }
    if (!st && slow) {
        snprintf(file, sizeof file, "%s/vocab.json", h->dir);
        st = slow_tokenizer(&k, err);
    }
    if (!st) {
        k.model = cJSON_GetObjectItemCaseSensitive(k.tj, "model");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(k.model, "type");
        if (!cJSON_IsObject(k.model) || (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))))
            st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported (BPE only)", file,
                          cJSON_IsString(type) ? type->valuestring : "?");
    }
    if (!st) {
        k.spm = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k.model, "byte_fallback")) ||
                json_mentions(cJSON_GetObjectItemCaseSensitive(k.tj, "pre_tokenizer"), "Metaspace");
        if (!k.spm && !json_mentions(k.tj, "ByteLevel"))
            st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: a BPE model that is neither SentencePiece-style (byte_fallback, "
                          "Metaspace) nor byte-level (ByteLevel)", file);
    }
    if (!st) st = read_tokens(&k, n_vocab, err);
    if (!st) st = write_keys(&k, w, err);
    *n_out = k.n;
    for (int64_t i = 0; k.pads && i < k.n; i++) free(k.pads[i]);
    free(k.pads);
    free(k.tok);
    free(k.type);
    free(k.score);
    ids__strmap_free(&k.ids);
    cJSON_Delete(k.tj);
    cJSON_Delete(k.tc);
    return st;
}
