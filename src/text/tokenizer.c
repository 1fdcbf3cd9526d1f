/* Tokenizers as llama.cpp implements them: SPM ("llama": score-ordered merges with byte
 * fallback), byte-level BPE ("gpt2": regex pre-tokenizer, GPT-2 byte map, rank-ordered
 * merges) and SentencePiece-style BPE ("gemma4": spaces as U+2581, the text split only into runs
 * of newlines and of other characters, rank-ordered merges on raw UTF-8, <0xXX> byte fallback),
 * with the special-token partition in front of all three. */
#include "idscope/text.h"
#include "base/internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define MAX_REGEX 4

struct ids_tokenizer {
    ids_tokenizer_kind kind;
    char pre[48];
    int32_t n_vocab;
    const char **text; /* [n_vocab] NUL-terminated (arena) */
    uint32_t *len;     /* [n_vocab] */
    float *score;      /* [n_vocab] */
    uint8_t *attr;     /* [n_vocab] ids_token_attr */
    ids_strmap tok_map;
    ids_strmap merge_map; /* "left right" -> rank (BPE) */
    int32_t bos, eos, eot, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    bool raw_bpe; /* "gemma4": BPE on raw UTF-8 with spaces as U+2581 and <0xXX> byte tokens */
    int32_t *special; /* control / user-defined / unknown ids, longest text first */
    size_t n_special;
    pcre2_code *re[MAX_REGEX];
    int n_re;
    char byte_enc[256][3]; /* GPT-2 byte -> UTF-8 of its stand-in code point (1-2 bytes + NUL) */
    int16_t byte_dec[512];  /* stand-in code point -> byte, -1 if none */
    int32_t byte_tok[256];  /* SPM <0xXX> tokens */
    ids_arena arena;
};

/* ---------------------------------------------------------------------------------------- */
/* Growable int32 vector                                                                      */

typedef struct {
    int32_t *v;
    size_t n, cap;
    bool oom;
} ivec;

static void ivec_push(ivec *a, int32_t x) {
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *p = ids__realloc(a->v, cap * sizeof *p);
        if (!p) {
            a->oom = true;
            return;
        }
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

/* ---------------------------------------------------------------------------------------- */
/* Pre-tokenizer regexes (llama.cpp src/llama-vocab.cpp, by tokenizer.ggml.pre)                */

static const char *const RE_GPT2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
static const char *const RE_LLAMA3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const RE_QWEN2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct {
    const char *names; /* '|'-separated pre-tokenizer names */
    const char *re[MAX_REGEX];
    bool ignore_merges, add_bos;
} pre_def;

static const pre_def k_pre[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false},
    {"gpt-2|phi-2|jina-es|jina-de|jina-v2-es|jina-v2-de|mpt|olmo|jais|trillion|poro-chat|viking|"
     "gpt-neox|bloom",
     {RE_GPT2}, false, false},
    {"llama3|llama-v3|llama-bpe|falcon3|pixtral", {RE_LLAMA3}, true, true},
    {"qwen2|deepseek-r1-qwen|stablelm2|hunyuan|megrez", {RE_QWEN2}, false, false},
    {"smollm|starcoder|refact|command-r|codeshell", {"\\p{N}", RE_GPT2}, false, false},
};

static const pre_def *find_pre(const char *name) {
    size_t ln = strlen(name);
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        const char *p = k_pre[i].names;
        while (*p) {
            const char *e = strchr(p, '|');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n == ln && memcmp(p, name, n) == 0) return &k_pre[i];
            p += n + (e ? 1 : 0);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                    */

static void put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else { /* the GPT-2 byte map only needs code points < 0x800 */
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static void init_byte_map(ids_tokenizer *t) {
    for (int i = 0; i < 512; i++) t->byte_dec[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)(256 + extra++);
        put_utf8(t->byte_enc[b], cp);
        t->byte_dec[cp] = (int16_t)b;
    }
}

/* Longest text first (stable by id), the order in which the partition tries them. */
static void sort_special(ids_tokenizer *t) {
    size_t n = t->n_special;
    for (size_t i = 1; i < n; i++) { /* insertion sort: a few hundred entries at most */
        int32_t x = t->special[i];
        size_t j = i;
        while (j > 0 && t->len[t->special[j - 1]] < t->len[x]) {
            t->special[j] = t->special[j - 1];
            j--;
        }
        t->special[j] = x;
    }
}

static ids_status opt_token_id(const ids_gguf *g, ids_tokenizer *t, const char *key, int32_t *out,
                               ids_err *err) {
    uint32_t v;
    ids_status st = ids_gguf_get_u32(g, key, &v, err);
    if (st == IDS_ERR_NOT_FOUND) return IDS_OK;
    if (st) return st;
    if (v >= (uint32_t)t->n_vocab) {
        ids__log(1, "%s: %s = %u is outside the vocabulary (%d tokens); ignored", ids_gguf_path(g),
                 key, v, t->n_vocab);
        return IDS_OK;
    }
    *out = (int32_t)v;
    return IDS_OK;
}

static ids_status opt_bool(const ids_gguf *g, const char *key, bool *out, ids_err *err) {
    ids_status st = ids_gguf_get_bool(g, key, out, err);
    return st == IDS_ERR_NOT_FOUND ? IDS_OK : st;
}

void ids_tokenizer_free(ids_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    ids__strmap_free(&t->tok_map);
    ids__strmap_free(&t->merge_map);
    ids__arena_free(&t->arena);
    free(t);
}

/* The vocabulary arrays (tokens, optional scores and types, all of one length) into the
 * tokenizer's own tables, the text -> id map and the list of special tokens. */
static ids_status load_vocab(ids_tokenizer *t, const ids_gguf *g, ids_err *err) {
    const char *path = ids_gguf_path(g);
    const ids_gguf_value *toks, *scores = NULL, *types = NULL;
    ids_status st = ids_gguf_get_arr(g, "tokenizer.ggml.tokens", IDS_GGUF_STRING, &toks, err);
    if (st) return st;
    if (toks->v.arr.n == 0 || toks->v.arr.n > INT32_MAX)
        return ids__err(err, IDS_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", path,
                        (unsigned long long)toks->v.arr.n);
    t->n_vocab = (int32_t)toks->v.arr.n;
    st = ids_gguf_get_arr(g, "tokenizer.ggml.scores", -1, &scores, err);
    if (st == IDS_ERR_NOT_FOUND) scores = NULL;
    else if (st) return st;
    st = ids_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &types, err);
    if (st == IDS_ERR_NOT_FOUND) types = NULL;
    else if (st) return st;
    if ((scores && scores->v.arr.n != toks->v.arr.n) || (types && types->v.arr.n != toks->v.arr.n))
        return ids__err(err, IDS_ERR_FORMAT, "%s: tokenizer arrays disagree: %llu tokens, %llu scores, "
                        "%llu types", path, (unsigned long long)toks->v.arr.n,
                        (unsigned long long)(scores ? scores->v.arr.n : 0),
                        (unsigned long long)(types ? types->v.arr.n : 0));
    size_t nv = (size_t)t->n_vocab;
    t->text = ids__arena_alloc(&t->arena, nv * sizeof *t->text, 8);
    t->len = ids__arena_alloc(&t->arena, nv * sizeof *t->len, 8);
    t->score = ids__arena_alloc(&t->arena, nv * sizeof *t->score, 8);
    t->attr = ids__arena_alloc(&t->arena, nv, 1);
    t->special = ids__arena_alloc(&t->arena, nv * sizeof *t->special, 8);
    if (!t->text || !t->len || !t->score || !t->attr || !t->special ||
        !ids__strmap_init(&t->tok_map, nv))
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < nv; i++) {
        const char *s;
        uint64_t n;
        ids_gguf_arr_str(toks, i, &s, &n);
        if (n > UINT32_MAX) return ids__err(err, IDS_ERR_FORMAT, "%s: token %zu is too long", path, i);
        char *c = ids__arena_strndup(&t->arena, s, (size_t)n);
        if (!c) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        t->text[i] = c;
        t->len[i] = (uint32_t)n;
        double sc = 0;
        if (scores && ids_gguf_arr_f64(scores, i, &sc) != IDS_OK)
            return ids__err(err, IDS_ERR_TYPE, "%s: tokenizer.ggml.scores has non-numeric entries", path);
        t->score[i] = (float)sc;
        int64_t ty = IDS_TOKEN_NORMAL;
        if (types && ids_gguf_arr_i64(types, i, &ty) != IDS_OK)
            return ids__err(err, IDS_ERR_TYPE, "%s: tokenizer.ggml.token_type has non-integer entries", path);
        if (ty < 0 || ty > IDS_TOKEN_BYTE)
            return ids__err(err, IDS_ERR_FORMAT, "%s: token %zu has invalid type %lld", path, i, (long long)ty);
        t->attr[i] = (uint8_t)ty;
        /* first id wins for duplicate texts, like llama.cpp's token_to_id map */
        int64_t prev;
        bool dup;
        if (!ids__strmap_put(&t->tok_map, c, (size_t)n, (int64_t)i, &prev, &dup))
            return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        if ((ty == IDS_TOKEN_CONTROL || ty == IDS_TOKEN_USER_DEFINED || ty == IDS_TOKEN_UNKNOWN) && n > 0)
            t->special[t->n_special++] = (int32_t)i;
    }
    sort_special(t);
    return IDS_OK;
}

/* The <0xXX> byte-fallback tokens (SPM, gemma4). */
static void find_byte_tokens(ids_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int64_t id;
        t->byte_tok[b] = ids__strmap_get(&t->tok_map, name, 6, &id) ? (int32_t)id : -1;
    }
}

/* SPM: llama's default special ids and the byte-fallback tokens. */
static void setup_spm(ids_tokenizer *t) {
    t->bos = 1 < t->n_vocab ? 1 : -1;
    t->eos = 2 < t->n_vocab ? 2 : -1;
    t->unk = 0;
    find_byte_tokens(t);
    snprintf(t->pre, sizeof t->pre, "%s", "");
}

/* BPE: the pre-tokenizer named by tokenizer.ggml.pre, its regexes compiled. */
static ids_status setup_bpe_pre(ids_tokenizer *t, const ids_gguf *g, ids_err *err) {
    const char *path = ids_gguf_path(g);
    const char *pre = "default";
    ids_status st = ids_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (st == IDS_ERR_NOT_FOUND) {
        ids__log(1, "%s: tokenizer.ggml.pre missing; using the 'default' pre-tokenizer", path);
        pre = "default";
    } else if (st) {
        return st;
    }
    const pre_def *pd = find_pre(pre);
    if (!pd)
        return ids__err(err, IDS_ERR_UNSUPPORTED, "%s: pre-tokenizer '%s' is not supported "
                        "(supported: default, gpt-2, llama-bpe/llama3, qwen2, smollm/starcoder)", path, pre);
    snprintf(t->pre, sizeof t->pre, "%s", pre);
    t->ignore_merges = pd->ignore_merges;
    t->add_bos = pd->add_bos;
    for (int i = 0; i < MAX_REGEX && pd->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        t->re[i] = pcre2_compile((PCRE2_SPTR)pd->re[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
        if (!t->re[i]) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return ids__err(err, IDS_ERR_UNSUPPORTED, "pre-tokenizer '%s': regex %d does not "
                            "compile at %zu: %s", pre, i, (size_t)eo, (const char *)msg);
        }
        t->n_re++;
        pcre2_jit_compile(t->re[i], PCRE2_JIT_COMPLETE); /* optional speed-up */
    }
    return IDS_OK;
}

/* BPE: the merges ("left right" -> rank), their keys copied into the tokenizer's arena so that
 * the GGUF can be closed. */
static ids_status load_merges(ids_tokenizer *t, const ids_gguf *g, ids_err *err) {
    const char *path = ids_gguf_path(g);
    const ids_gguf_value *merges;
    ids_status st = ids_gguf_get_arr(g, "tokenizer.ggml.merges", IDS_GGUF_STRING, &merges, err);
    if (st) return st;
    if (!ids__strmap_init(&t->merge_map, (size_t)merges->v.arr.n))
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < merges->v.arr.n; i++) {
        const char *s;
        uint64_t n;
        ids_gguf_arr_str(merges, i, &s, &n);
        /* split at the first space after position 0 */
        const char *sp = n > 1 ? memchr(s + 1, ' ', (size_t)n - 1) : NULL;
        if (!sp)
            return ids__err(err, IDS_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] = '%.60s' has no "
                            "space separator", path, (unsigned long long)i, s);
        if (!ids__strmap_put(&t->merge_map, s, (size_t)n, (int64_t)i, NULL, NULL))
            return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < t->merge_map.cap; i++) {
        ids_strmap_slot *sl = &t->merge_map.slots[i];
        if (!sl->key) continue;
        char *c = ids__arena_strndup(&t->arena, sl->key, sl->len);
        if (!c) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        sl->key = c;
    }
    return IDS_OK;
}

/* Optional special-token ids and flags that override the defaults. */
static ids_status load_special_ids(ids_tokenizer *t, const ids_gguf *g, ids_err *err) {
    ids_status st;
    if ((st = opt_token_id(g, t, "tokenizer.ggml.bos_token_id", &t->bos, err))) return st;
    if ((st = opt_token_id(g, t, "tokenizer.ggml.eos_token_id", &t->eos, err))) return st;
    if ((st = opt_token_id(g, t, "tokenizer.ggml.eot_token_id", &t->eot, err))) return st;
    if ((st = opt_token_id(g, t, "tokenizer.ggml.unknown_token_id", &t->unk, err))) return st;
    if ((st = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err))) return st;
    if ((st = opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err))) return st;
    if ((st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err))) return st;
    if (t->unk >= t->n_vocab) t->unk = -1;
    return IDS_OK;
}

ids_status ids_tokenizer_load(ids_tokenizer **out, const ids_gguf *g, ids_err *err) {
    *out = NULL;
    const char *path = ids_gguf_path(g);
    const char *model;
    ids_status st = ids_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (st) return st;
    ids_tokenizer *t = ids__calloc(1, sizeof *t);
    if (!t) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    const uint64_t fsize = ids_gguf_file_size(g); /* the vocabulary's texts and tables: about its bytes */
    ids__arena_init(&t->arena, fsize < 4096 ? 4096 : fsize > (1u << 20) ? (1u << 20) : (size_t)fsize);
    t->bos = t->eos = t->eot = t->unk = -1;
    init_byte_map(t);
    if (strcmp(model, "llama") == 0) {
        t->kind = IDS_TOK_SPM;
        t->add_bos = true;
        t->add_space_prefix = true;
    } else if (strcmp(model, "gpt2") == 0) {
        t->kind = IDS_TOK_BPE;
    } else if (strcmp(model, "gemma4") == 0) { /* llama.cpp: pre-tokenizer "gemma4", BOS always added */
        t->kind = IDS_TOK_BPE;
        t->raw_bpe = true;
        snprintf(t->pre, sizeof t->pre, "%s", "gemma4");
    } else {
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported "
                      "(expected 'llama', 'gpt2' or 'gemma4')", path, model);
    }
    if (!st) st = load_vocab(t, g, err);
    if (!st && t->kind == IDS_TOK_SPM) setup_spm(t);
    if (!st && t->raw_bpe) find_byte_tokens(t);
    if (!st && t->kind == IDS_TOK_BPE && !t->raw_bpe) st = setup_bpe_pre(t, g, err);
    if (!st && t->kind == IDS_TOK_BPE) st = load_merges(t, g, err);
    if (!st) st = load_special_ids(t, g, err);
    if (t->raw_bpe) t->add_bos = true;
    if (st) {
        ids_tokenizer_free(t);
        return st;
    }
    *out = t;
    return IDS_OK;
}

ids_tokenizer_kind ids_tokenizer_kind_of(const ids_tokenizer *t) { return t->kind; }
const char *ids_tokenizer_pre(const ids_tokenizer *t) { return t->pre; }
int32_t ids_tokenizer_n_vocab(const ids_tokenizer *t) { return t->n_vocab; }
int32_t ids_tokenizer_bos(const ids_tokenizer *t) { return t->bos; }
int32_t ids_tokenizer_eos(const ids_tokenizer *t) { return t->eos; }
bool ids_tokenizer_add_bos(const ids_tokenizer *t) { return t->add_bos && t->bos >= 0; }

const char *ids_tokenizer_piece(const ids_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_vocab) ? t->text[id] : NULL;
}

int ids_tokenizer_attr(const ids_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_vocab) ? t->attr[id] : -1;
}

int32_t ids_tokenizer_find(const ids_tokenizer *t, const char *text) {
    int64_t id;
    return ids__strmap_get(&t->tok_map, text, strlen(text), &id) ? (int32_t)id : -1;
}

bool ids_tokenizer_is_eog(const ids_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return false;
    if (id == t->eos || id == t->eot) return true;
    static const char *const eog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<end_of_utterance>", "<eos>", "</s>", "<turn|>"};
    if (t->attr[id] != IDS_TOKEN_CONTROL) return false;
    for (size_t i = 0; i < sizeof eog / sizeof eog[0]; i++)
        if (strcmp(t->text[id], eog[i]) == 0) return true;
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* Merge loop shared by SPM and BPE                                                          */

typedef struct {
    const char *text;
    int prev, next;
    size_t n;
} symbol;

typedef struct {
    int left, right;
    float score; /* SPM: higher first */
    int64_t rank; /* BPE: lower first */
    size_t size;
} bigram;

typedef struct {
    bigram *v;
    size_t n, cap;
    bool spm, oom;
} heap;

static bool bg_before(const heap *h, const bigram *a, const bigram *b) {
    if (h->spm) {
        if (a->score != b->score) return a->score > b->score;
    } else if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->left < b->left;
}

static void heap_push(heap *h, bigram b) {
    if (h->oom) return;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        bigram *p = ids__realloc(h->v, cap * sizeof *p);
        if (!p) {
            h->oom = true;
            return;
        }
        h->v = p;
        h->cap = cap;
    }
    size_t i = h->n++;
    h->v[i] = b;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(h, &h->v[i], &h->v[p])) break;
        bigram tmp = h->v[p];
        h->v[p] = h->v[i];
        h->v[i] = tmp;
        i = p;
    }
}

static bigram heap_pop(heap *h) {
    bigram top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && bg_before(h, &h->v[l], &h->v[m])) m = l;
        if (r < h->n && bg_before(h, &h->v[r], &h->v[m])) m = r;
        if (m == i) break;
        bigram tmp = h->v[m];
        h->v[m] = h->v[i];
        h->v[i] = tmp;
        i = m;
    }
    return top;
}

typedef struct {
    const ids_tokenizer *t;
    symbol *sym;
    size_t n_sym, cap_sym;
    heap h;
    char *tmp; /* scratch for "left right" merge keys */
    size_t cap_tmp;
    bool oom;
} session;

static void try_bigram(session *s, int left, int right) {
    if (left < 0 || right < 0) return;
    const symbol *l = &s->sym[left], *r = &s->sym[right];
    bigram b = {left, right, 0, 0, l->n + r->n};
    int64_t v;
    if (s->h.spm) {
        /* the two symbols are contiguous in the text */
        if (!ids__strmap_get(&s->t->tok_map, l->text, l->n + r->n, &v)) return;
        b.score = s->t->score[v];
    } else {
        size_t need = l->n + r->n + 1;
        if (need > s->cap_tmp) {
            char *p = ids__realloc(s->tmp, need * 2);
            if (!p) {
                s->oom = true;
                return;
            }
            s->tmp = p;
            s->cap_tmp = need * 2;
        }
        memcpy(s->tmp, l->text, l->n);
        s->tmp[l->n] = ' ';
        memcpy(s->tmp + l->n + 1, r->text, r->n);
        if (!ids__strmap_get(&s->t->merge_map, s->tmp, need, &v)) return;
        b.rank = v;
    }
    heap_push(&s->h, b);
}

/* Split `text` into UTF-8 characters and merge until no pair applies. Returns false on OOM. */
static bool merge_word(session *s, const char *text, size_t len) {
    s->n_sym = 0;
    s->h.n = 0;
    if (len + 1 > s->cap_sym) {
        symbol *p = ids__realloc(s->sym, (len + 1) * sizeof *p);
        if (!p) return false;
        s->sym = p;
        s->cap_sym = len + 1;
    }
    size_t off = 0;
    while (off < len) {
        size_t n = (size_t)ids__utf8_len((unsigned char)text[off]);
        if (n > len - off) n = len - off;
        symbol *y = &s->sym[s->n_sym];
        y->text = text + off;
        y->n = n;
        y->prev = (int)s->n_sym - 1;
        off += n;
        y->next = off == len ? -1 : (int)s->n_sym + 1;
        s->n_sym++;
    }
    for (size_t i = 1; i < s->n_sym; i++) try_bigram(s, (int)i - 1, (int)i);
    while (s->h.n > 0 && !s->h.oom && !s->oom) {
        bigram b = heap_pop(&s->h);
        symbol *l = &s->sym[b.left], *r = &s->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = b.left;
        try_bigram(s, l->prev, b.left);
        try_bigram(s, b.left, l->next);
    }
    return !s->h.oom && !s->oom;
}

static void spm_fragment(session *s, const char *text, size_t len, bool prefix, ivec *out,
                         ids_err *err, ids_status *st) {
    /* ' ' -> U+2581 (3 bytes), optional leading space */
    size_t cap = (len + 1) * 3 + 1;
    char *esc = ids__malloc(cap);
    if (!esc) {
        *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
        return;
    }
    size_t n = 0;
    if (prefix) {
        memcpy(esc, "\xE2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(esc + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            esc[n++] = text[i];
        }
    }
    if (!merge_word(s, esc, n)) {
        free(esc);
        *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
        return;
    }
    const ids_tokenizer *t = s->t;
    for (int i = s->n_sym ? 0 : -1; i != -1; i = s->sym[i].next) {
        const symbol *y = &s->sym[i];
        int64_t id;
        if (ids__strmap_get(&t->tok_map, y->text, y->n, &id)) {
            ivec_push(out, (int32_t)id);
        } else {
            for (size_t k = 0; k < y->n; k++) {
                int32_t bt = t->byte_tok[(unsigned char)y->text[k]];
                ivec_push(out, bt >= 0 ? bt : t->unk);
            }
        }
    }
    free(esc);
}

static void bpe_piece(session *s, const char *piece, size_t plen, ivec *out, ids_err *err,
                      ids_status *st) {
    const ids_tokenizer *t = s->t;
    /* byte-encode */
    char *enc = ids__malloc(plen * 2 + 1);
    if (!enc) {
        *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < plen; i++) {
        const char *e = t->byte_enc[(unsigned char)piece[i]];
        while (*e) enc[n++] = *e++;
    }
    int64_t id;
    if (t->ignore_merges && ids__strmap_get(&t->tok_map, enc, n, &id)) {
        ivec_push(out, (int32_t)id);
        free(enc);
        return;
    }
    if (!merge_word(s, enc, n)) {
        free(enc);
        *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
        return;
    }
    for (int i = s->n_sym ? 0 : -1; i != -1; i = s->sym[i].next) {
        const symbol *y = &s->sym[i];
        if (ids__strmap_get(&t->tok_map, y->text, y->n, &id)) {
            ivec_push(out, (int32_t)id);
        } else { /* emit the single-byte entries that exist, as llama.cpp does */
            for (size_t k = 0; k < y->n; k++)
                if (ids__strmap_get(&t->tok_map, y->text + k, 1, &id)) ivec_push(out, (int32_t)id);
        }
    }
    free(enc);
}

/* gemma4: spaces to U+2581, then each run of newlines and each run of other characters merged on
 * its own; a run of newlines that is a token is taken whole (llama.cpp does, ahead of the merges);
 * a symbol outside the vocabulary becomes its bytes' <0xXX> tokens (bytes without one are
 * dropped, as llama.cpp drops them). */
static void raw_bpe_fragment(session *s, const char *text, size_t len, ivec *out, ids_err *err, ids_status *st) {
    const ids_tokenizer *t = s->t;
    char *esc = ids__malloc(len * 3 + 1);
    if (!esc) {
        *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(esc + n, "\xE2\x96\x81", 3), n += 3;
        else esc[n++] = text[i];
    }
    for (size_t a = 0; a < n && !*st;) {
        const bool nl = esc[a] == '\n';
        size_t e = a;
        while (e < n && (esc[e] == '\n') == nl) e++;
        int64_t id;
        if (nl && ids__strmap_get(&t->tok_map, esc + a, e - a, &id)) {
            ivec_push(out, (int32_t)id);
            a = e;
            continue;
        }
        if (!merge_word(s, esc + a, e - a)) {
            *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
            break;
        }
        for (int i = s->n_sym ? 0 : -1; i != -1; i = s->sym[i].next) {
            const symbol *y = &s->sym[i];
            if (ids__strmap_get(&t->tok_map, y->text, y->n, &id)) {
                ivec_push(out, (int32_t)id);
                continue;
            }
            for (size_t k = 0; k < y->n; k++)
                if (t->byte_tok[(unsigned char)y->text[k]] >= 0) ivec_push(out, t->byte_tok[(unsigned char)y->text[k]]);
        }
        a = e;
    }
    free(esc);
}

/* Pieces of the regex split: a list of (offset, length) over the fragment. */
typedef struct {
    size_t *off, *len;
    size_t n, cap;
    bool oom;
} spans;

static void spans_push(spans *a, size_t off, size_t len) {
    if (a->oom || len == 0) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        size_t *o = ids__realloc(a->off, cap * sizeof *o);
        if (!o) {
            a->oom = true;
            return;
        }
        a->off = o;
        size_t *l = ids__realloc(a->len, cap * sizeof *l);
        if (!l) {
            a->oom = true;
            return;
        }
        a->len = l;
        a->cap = cap;
    }
    a->off[a->n] = off;
    a->len[a->n] = len;
    a->n++;
}

static void bpe_fragment(session *s, const char *text, size_t len, ivec *out, ids_err *err,
                         ids_status *st) {
    const ids_tokenizer *t = s->t;
    spans cur = {0}, nxt = {0};
    spans_push(&cur, 0, len);
    pcre2_match_data *md = NULL;
    for (int r = 0; r < t->n_re && !*st; r++) {
        md = pcre2_match_data_create_from_pattern(t->re[r], NULL);
        if (!md) {
            *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
            break;
        }
        nxt.n = 0;
        for (size_t k = 0; k < cur.n; k++) {
            const char *sub = text + cur.off[k];
            size_t sl = cur.len[k], pos = 0, last = 0;
            while (pos < sl) {
                int rc = pcre2_match(t->re[r], (PCRE2_SPTR)sub, sl, pos, 0, md, NULL);
                if (rc < 0) break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { /* empty match: step one character */
                    pos = ms + (size_t)ids__utf8_len((unsigned char)sub[ms]);
                    continue;
                }
                spans_push(&nxt, cur.off[k] + last, ms - last); /* unmatched gap */
                spans_push(&nxt, cur.off[k] + ms, me - ms);
                last = pos = me;
            }
            spans_push(&nxt, cur.off[k] + last, sl - last);
        }
        pcre2_match_data_free(md);
        spans tmp = cur;
        cur = nxt;
        nxt = tmp;
        if (cur.oom || nxt.oom) *st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
    }
    for (size_t k = 0; k < cur.n && !*st; k++) bpe_piece(s, text + cur.off[k], cur.len[k], out, err, st);
    free(cur.off);
    free(cur.len);
    free(nxt.off);
    free(nxt.len);
}

/* Fragments after the special-token partition. */
typedef struct {
    int32_t token; /* -1 for raw text */
    size_t off, len;
} frag;

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    const char *end = h + hn - nn;
    for (const char *p = h; p <= end; p++) {
        p = memchr(p, n[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (memcmp(p, n, nn) == 0) return p;
    }
    return NULL;
}

ids_status ids_tokenize(const ids_tokenizer *t, const char *text, size_t len,
                        ids_tokenize_opts opts, int32_t **ids, size_t *n_ids, ids_err *err) {
    *ids = NULL;
    *n_ids = 0;
    ids_status st = IDS_OK;
    ivec out = {0};
    frag *fr = NULL;
    size_t n_fr = 0, cap_fr = 0;
    session s = {.t = t};
    s.h.spm = t->kind == IDS_TOK_SPM;

    if (opts.add_bos && t->add_bos && t->bos >= 0) ivec_push(&out, t->bos);
    if (len > 0) {
        cap_fr = 16;
        fr = ids__malloc(cap_fr * sizeof *fr);
        if (!fr) {
            st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
            goto done;
        }
        fr[0] = (frag){-1, 0, len};
        n_fr = 1;
        for (size_t k = 0; k < t->n_special; k++) {
            int32_t id = t->special[k];
            int a = t->attr[id];
            if (!opts.parse_special && (a == IDS_TOKEN_CONTROL || a == IDS_TOKEN_UNKNOWN)) continue;
            const char *tt = t->text[id];
            size_t tl = t->len[id];
            for (size_t f = 0; f < n_fr; f++) {
                if (fr[f].token >= 0) continue;
                const char *base = text + fr[f].off;
                const char *hit = find_bytes(base, fr[f].len, tt, tl);
                if (!hit) continue;
                /* split fragment f into [before][token][after]; `after` is examined next */
                if (n_fr + 2 > cap_fr) {
                    size_t cap = cap_fr * 2 + 2;
                    frag *p = ids__realloc(fr, cap * sizeof *p);
                    if (!p) {
                        st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
                        goto done;
                    }
                    fr = p;
                    cap_fr = cap;
                }
                size_t before = (size_t)(hit - base);
                frag orig = fr[f];
                size_t after_off = orig.off + before + tl, after_len = orig.len - before - tl;
                frag ins[3];
                int k2 = 0;
                if (before) ins[k2++] = (frag){-1, orig.off, before};
                ins[k2++] = (frag){id, orig.off + before, tl};
                if (after_len) ins[k2++] = (frag){-1, after_off, after_len};
                memmove(fr + f + k2, fr + f + 1, (n_fr - f - 1) * sizeof *fr);
                memcpy(fr + f, ins, (size_t)k2 * sizeof *fr);
                n_fr += (size_t)k2 - 1;
                f += (size_t)(before ? 1 : 0); /* continue at the token; loop ++ moves past it */
            }
        }
    }
    bool prev_special = true;
    for (size_t f = 0; f < n_fr && !st; f++) {
        if (fr[f].token >= 0) {
            ivec_push(&out, fr[f].token);
            prev_special = true;
            continue;
        }
        if (t->kind == IDS_TOK_SPM)
            spm_fragment(&s, text + fr[f].off, fr[f].len, t->add_space_prefix && prev_special && !opts.continuation, &out,
                         err, &st);
        else if (t->raw_bpe)
            raw_bpe_fragment(&s, text + fr[f].off, fr[f].len, &out, err, &st);
        else
            bpe_fragment(&s, text + fr[f].off, fr[f].len, &out, err, &st);
        prev_special = false;
    }
    if (!st && opts.add_bos && t->add_eos && t->eos >= 0) ivec_push(&out, t->eos);
    if (!st && out.oom) st = ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
done:
    free(fr);
    free(s.sym);
    free(s.h.v);
    free(s.tmp);
    if (st) {
        free(out.v);
        return st;
    }
    if (!out.v) { /* empty result: still return a freeable pointer */
        out.v = ids__malloc(sizeof(int32_t));
        if (!out.v) return ids__err(err, IDS_ERR_NOMEM, "tokenize: out of memory");
    }
    *ids = out.v;
    *n_ids = out.n;
    return IDS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Detokenization                                                                             */

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = ids__realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void piece_text(const ids_tokenizer *t, int32_t id, bool render_special, sbuf *b) {
    if (id < 0 || id >= t->n_vocab) return;
    const char *s = t->text[id];
    size_t n = t->len[id];
    int a = t->attr[id];
    if (a == IDS_TOKEN_CONTROL || a == IDS_TOKEN_UNKNOWN) {
        if (render_special) sb_put(b, s, n);
        return;
    }
    if (a == IDS_TOKEN_USER_DEFINED) {
        sb_put(b, s, n);
        return;
    }
    if (t->kind == IDS_TOK_SPM || t->raw_bpe) {
        if (a == IDS_TOKEN_BYTE && n == 6 && s[0] == '<') {
            char c = (char)strtol(s + 3, NULL, 16);
            sb_put(b, &c, 1);
            return;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                sb_put(b, " ", 1);
                i += 3;
            } else {
                sb_put(b, s + i, 1);
                i++;
            }
        }
        return;
    }
    /* byte-level: each code point stands for one byte */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t k = (size_t)ids__utf8_len(c);
        if (k == 1) cp = c;
        else if (k == 2 && i + 1 < n) cp = ((uint32_t)(c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F);
        else cp = 0xFFFF;
        int byte = cp < 512 ? t->byte_dec[cp] : -1;
        if (byte >= 0) {
            char ch = (char)byte;
            sb_put(b, &ch, 1);
        } else {
            sb_put(b, s + i, k <= n - i ? k : n - i); /* not a byte stand-in: keep as is */
        }
        i += k;
    }
}

ids_status ids_detokenize(const ids_tokenizer *t, const int32_t *ids, size_t n,
                          bool render_special, bool strip_lead, char **text, ids_err *err) {
    sbuf b = {0};
    sb_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            free(b.p);
            return ids__err(err, IDS_ERR_RANGE, "detokenize: token id %d at index %zu is outside "
                            "the vocabulary (0..%d)", ids[i], i, t->n_vocab - 1);
        }
        piece_text(t, ids[i], render_special, &b);
    }
    if (b.oom) {
        free(b.p);
        return ids__err(err, IDS_ERR_NOMEM, "detokenize: out of memory");
    }
    if (strip_lead && t->kind == IDS_TOK_SPM && t->add_space_prefix && b.n && b.p[0] == ' ')
        memmove(b.p, b.p + 1, b.n--);
    *text = b.p;
    return IDS_OK;
}

char *ids_token_to_text(const ids_tokenizer *t, int32_t id) {
    char *s = NULL;
    if (ids_detokenize(t, &id, 1, true, false, &s, NULL) != IDS_OK) return NULL;
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Word helpers                                                                               */

int32_t ids_tokenizer_word_token(const ids_tokenizer *t, const char *word, ids_err *err) {
    size_t wl = strlen(word);
    if (wl == 0) {
        ids__err(err, IDS_ERR_ARG, "word token: empty word");
        return -1;
    }
    char *s = ids__malloc(wl + 2);
    if (!s) {
        ids__err(err, IDS_ERR_NOMEM, "word token: out of memory");
        return -1;
    }
    s[0] = ' ';
    memcpy(s + 1, word, wl + 1);
    int32_t *ids;
    size_t n;
    ids_tokenize_opts o = {.add_bos = false, .parse_special = false};
    ids_status st = ids_tokenize(t, s, wl + 1, o, &ids, &n, err);
    free(s);
    if (st) return -1;
    int32_t id = n ? ids[n - 1] : -1;
    free(ids);
    if (id < 0) ids__err(err, IDS_ERR_NOT_FOUND, "word token: '%s' produced no tokens", word);
    return id;
}

int64_t ids_find_token(const int32_t *ids, size_t n_ids, int32_t id, size_t from, int nth) {
    if (nth < 0) return -1;
    for (size_t i = from; i < n_ids; i++)
        if (ids[i] == id && nth-- == 0) return (int64_t)i;
    return -1;
}
