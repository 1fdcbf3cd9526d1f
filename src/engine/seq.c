/* Sequence layout (what each row is, its rotary position) and position selectors. */
#include "idscope/engine.h"
#include "engine/lm.h"

struct ids_seq {
    int n_embd;
    int n, cap;
    ids_row *rows;
    float *embd;    /* [n, n_embd] for embedding rows only (others unused) */
    int32_t next_pos;
    bool mrope;
    /* Qwen3-VL DeepStack rows: ds_idx[i] (for rows i < ds_len; -1 none, rows after: none) indexes ds,
     * a pool of [n_ds, n_embd] blocks */
    int n_ds, ds_len, ds_n, ds_cap;
    int32_t *ds_idx;
    float *ds;
    /* Llama-3.2-Vision: the images' cross-attention states, pooled [x_n, n_embd]; image i: its <|image|>
     * row, its first key row, its attended keys and all its keys */
    float *x;
    int x_n, n_ximg;
    int ximg_row[IDS_SEQ_MAX_CROSS], ximg_off[IDS_SEQ_MAX_CROSS], ximg_valid[IDS_SEQ_MAX_CROSS];
};

void ids_seq_set_mrope(ids_seq *s, bool on) { s->mrope = on; }
int32_t ids__seq_next_pos(const ids_seq *s) { return s->next_pos; }

ids_seq *ids_seq_new(int n_embd) {
    if (n_embd <= 0) return NULL;
    ids_seq *s = ids__calloc(1, sizeof *s);
    if (s) s->n_embd = n_embd;
    return s;
}

void ids_seq_free(ids_seq *s) {
    if (!s) return;
    free(s->rows);
    free(s->embd);
    free(s->ds_idx);
    free(s->ds);
    free(s->x);
    free(s);
}

ids_status ids_seq_add_cross(ids_seq *s, int row, const float *states, int n_keys, int n_valid, ids_err *err) {
    if (row < 0 || row >= s->n || s->rows[row].token < 0 || (s->n_ximg && row <= s->ximg_row[s->n_ximg - 1]))
        return ids__err(err, IDS_ERR_ARG, "sequence: row %d is not a token row after the last image's (%d rows)", row, s->n);
    if (n_keys < 1 || n_valid < 1 || n_valid > n_keys || !states)
        return ids__err(err, IDS_ERR_ARG, "sequence: %d cross-attention rows, %d of them attended", n_keys, n_valid);
    if (s->n_ximg == IDS_SEQ_MAX_CROSS || s->x_n > (1 << 24) - n_keys)
        return ids__err(err, IDS_ERR_RANGE, "sequence: more than %d images or 2^24 cross-attention rows",
                        IDS_SEQ_MAX_CROSS);
    const size_t E = (size_t)s->n_embd;
    float *x = ids__realloc(s->x, ((size_t)s->x_n + (size_t)n_keys) * E * sizeof(float));
    if (!x) return ids__err(err, IDS_ERR_NOMEM, "sequence: out of memory for %d cross-attention rows", n_keys);
    s->x = x;
    memcpy(x + (size_t)s->x_n * E, states, (size_t)n_keys * E * sizeof(float));
    s->ximg_row[s->n_ximg] = row;
    s->ximg_off[s->n_ximg] = s->x_n;
    s->ximg_valid[s->n_ximg++] = n_valid;
    s->x_n += n_keys;
    return IDS_OK;
}

int ids_seq_n_cross(const ids_seq *s) { return s->x_n; }
const float *ids_seq_cross(const ids_seq *s) { return s->x; }
int ids_seq_n_cross_images(const ids_seq *s) { return s->n_ximg; }

void ids_seq_cross_image(const ids_seq *s, int i, int *row, int *first, int *n_valid) {
    *row = s->ximg_row[i];
    *first = s->ximg_off[i];
    *n_valid = s->ximg_valid[i];
}

/* HF processing_mllama: image i's <|image|> row starts its span, which ends at the next image's row,
 * or at the end for the last; a run of adjacent <|image|> rows all take the span after the run's
 * last one. Rows past the sequence (generated) have the last row's images. */
uint64_t ids_seq_cross_images(const ids_seq *s, int r) {
    if (r >= s->n) r = s->n - 1;
    uint64_t m = 0;
    int end = s->n; /* the span end of the image after i, walking backwards */
    for (int i = s->n_ximg - 1; i >= 0; i--) {
        const int a = s->ximg_row[i], b = i + 1 < s->n_ximg ? s->ximg_row[i + 1] : s->n;
        const int e = a == b - 1 ? end : b;
        if (r >= a && r < e) m |= 1ull << i;
        end = e;
    }
    return m;
}

int ids_seq_n_deepstack(const ids_seq *s) { return s->n_ds; }

const float *ids_seq_deepstack(const ids_seq *s, int i, int k) {
    if (i < 0 || i >= s->ds_len || k < 0 || k >= s->n_ds || s->ds_idx[i] < 0) return NULL;
    return s->ds + ((size_t)s->ds_idx[i] * s->n_ds + k) * (size_t)s->n_embd;
}

/* Room for n more DeepStack blocks and an index up to row `len`. */
static ids_status ds_reserve(ids_seq *s, int len, int n, ids_err *err) {
    int32_t *ix = ids__realloc(s->ds_idx, (size_t)(len > 0 ? len : 1) * sizeof *ix);
    if (!ix) return ids__err(err, IDS_ERR_NOMEM, "sequence: out of memory");
    s->ds_idx = ix;
    for (int i = s->ds_len; i < len; i++) ix[i] = -1;
    if (s->ds_n + n > s->ds_cap) {
        int cap = s->ds_cap ? s->ds_cap : 64;
        while (cap < s->ds_n + n) cap *= 2;
        float *d = ids__realloc(s->ds, (size_t)cap * s->n_ds * (size_t)s->n_embd * sizeof(float));
        if (!d) return ids__err(err, IDS_ERR_NOMEM, "sequence: out of memory");
        s->ds = d;
        s->ds_cap = cap;
    }
    return IDS_OK;
}

ids_status ids_seq_set_deepstack(ids_seq *s, const float *ds, int n_ds, int n_rows, ids_err *err) {
    if (n_ds < 1 || n_ds > 64 || n_rows < 1 || n_rows > s->n || !ds)
        return ids__err(err, IDS_ERR_ARG, "sequence: %d DeepStack rows for the last %d of %d rows", n_ds, n_rows, s->n);
    if (s->n_ds && s->n_ds != n_ds)
        return ids__err(err, IDS_ERR_ARG, "sequence: %d DeepStack rows per row, but earlier rows have %d", n_ds, s->n_ds);
    const int first = s->n - n_rows;
    for (int i = first; i < s->n; i++)
        if (s->rows[i].token >= 0 || (i < s->ds_len && s->ds_idx[i] >= 0))
            return ids__err(err, IDS_ERR_ARG, "sequence: row %d is a token row or has DeepStack rows already", i);
    s->n_ds = n_ds;
    ids_status st = ds_reserve(s, s->n, n_rows, err);
    if (st) return st;
    const size_t E = (size_t)s->n_embd;
    for (int i = 0; i < n_rows; i++) {
        s->ds_idx[first + i] = s->ds_n;
        for (int k = 0; k < n_ds; k++)
            memcpy(s->ds + ((size_t)s->ds_n * n_ds + k) * E, ds + ((size_t)k * n_rows + i) * E, E * sizeof(float));
        s->ds_n++;
    }
    s->ds_len = s->n;
    return IDS_OK;
}

int ids_seq_len(const ids_seq *s) { return s->n; }
int ids_seq_n_embd(const ids_seq *s) { return s->n_embd; }
const ids_row *ids_seq_row(const ids_seq *s, int i) {
    return (i >= 0 && i < s->n) ? &s->rows[i] : NULL;
}

const float *ids_seq_embd(const ids_seq *s, int i) { return i >= 0 && i < s->n ? ids__seq_embd(s, i) : NULL; }

/* Internal: embedding of row i (NULL for token rows). */
const float *ids__seq_embd(const ids_seq *s, int i) {
    return s->rows[i].token < 0 ? s->embd + (size_t)i * (size_t)s->n_embd : NULL;
}

static ids_status grow(ids_seq *s, int extra, ids_err *err) {
    if (extra < 0 || s->n > INT32_MAX / 2 - extra)
        return ids__err(err, IDS_ERR_RANGE, "sequence: %d more rows is too many", extra);
    if (s->n + extra <= s->cap) return IDS_OK;
    int cap = s->cap ? s->cap : 64;
    while (cap < s->n + extra) cap *= 2;
    ids_row *r = ids__realloc(s->rows, (size_t)cap * sizeof *r);
    if (!r) return ids__err(err, IDS_ERR_NOMEM, "sequence: out of memory");
    s->rows = r;
    float *e = ids__realloc(s->embd, (size_t)cap * (size_t)s->n_embd * sizeof(float));
    if (!e) return ids__err(err, IDS_ERR_NOMEM, "sequence: out of memory");
    s->embd = e;
    s->cap = cap;
    return IDS_OK;
}

ids_status ids_seq_add_tokens(ids_seq *s, const int32_t *ids, size_t n, ids_err *err) {
    if (n > INT32_MAX) return ids__err(err, IDS_ERR_RANGE, "sequence: %zu tokens is too many", n);
    ids_status st = grow(s, (int)n, err);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0)
            return ids__err(err, IDS_ERR_ARG, "sequence: token id %d at index %zu is negative", ids[i], i);
        ids_row *r = &s->rows[s->n++];
        r->token = ids[i];
        r->kind = IDS_ROW_TEXT;
        r->image = -1;
        r->cell_row = r->cell_col = r->frame = -1;
        r->pos[0] = r->pos[1] = r->pos[2] = s->next_pos++;
    }
    return IDS_OK;
}

ids_status ids_seq_add_text(ids_seq *s, const ids_tokenizer *t, const char *text, bool add_bos,
                            bool parse_special, ids_err *err) {
    int32_t *ids;
    size_t n;
    ids_tokenize_opts o = {.add_bos = add_bos, .parse_special = parse_special};
    ids_status st = ids_tokenize(t, text, strlen(text), o, &ids, &n, err);
    if (st) return st;
    st = ids_seq_add_tokens(s, ids, n, err);
    free(ids);
    return st;
}

ids_status ids_seq_add_image(ids_seq *s, const float *rows, int image, int grid_t, int grid_h,
                             int grid_w, ids_err *err) {
    return ids_seq_add_visual(s, rows, image, grid_t, grid_h, grid_w, 1, err);
}

ids_status ids_seq_add_visual(ids_seq *s, const float *rows, int image, int grid_t, int grid_h, int grid_w,
                              int t_step, ids_err *err) {
    if (grid_t <= 0 || grid_h <= 0 || grid_w <= 0 || (int64_t)grid_t * grid_h * grid_w > INT32_MAX / 4)
        return ids__err(err, IDS_ERR_ARG, "sequence: bad image grid %dx%dx%d", grid_t, grid_h, grid_w);
    if (t_step < 1 || t_step > 1000 || (int64_t)grid_t * t_step > INT32_MAX / 4)
        return ids__err(err, IDS_ERR_ARG, "sequence: M-RoPE time step %d is outside 1..1000 (or too large for "
                        "%d temporal patches)", t_step, grid_t);
    const int n = grid_t * grid_h * grid_w;
    ids_status st = grow(s, n, err);
    if (st) return st;
    memcpy(s->embd + (size_t)s->n * (size_t)s->n_embd, rows, (size_t)n * (size_t)s->n_embd * sizeof(float));
    const int32_t p0 = s->next_pos;
    for (int i = 0; i < n; i++) {
        ids_row *r = &s->rows[s->n++];
        const int t = i / (grid_h * grid_w), rr = (i / grid_w) % grid_h, cc = i % grid_w;
        r->token = -1;
        r->kind = IDS_ROW_IMAGE;
        r->image = (int16_t)image;
        r->frame = (int16_t)t;
        r->cell_row = (int16_t)rr;
        r->cell_col = (int16_t)cc;
        if (s->mrope) {
            r->pos[0] = p0 + t * t_step;
            r->pos[1] = p0 + rr;
            r->pos[2] = p0 + cc;
        } else {
            r->pos[0] = r->pos[1] = r->pos[2] = s->next_pos++;
        }
    }
    if (s->mrope) {
        int m = (grid_t - 1) * t_step > grid_h - 1 ? (grid_t - 1) * t_step : grid_h - 1;
        if (grid_w - 1 > m) m = grid_w - 1;
        s->next_pos = p0 + m + 1;
    }
    return IDS_OK;
}

void ids__seq_set_frame(ids_seq *s, int i, int frame) {
    if (i >= 0 && i < s->n && s->rows[i].token < 0) s->rows[i].frame = (int16_t)frame;
}

ids_status ids_seq_add_embd(ids_seq *s, const float *rows, int n_rows, ids_row_kind kind,
                            int image, int grid_w, ids_err *err) {
    if (n_rows < 0 || (kind == IDS_ROW_IMAGE && grid_w <= 0))
        return ids__err(err, IDS_ERR_ARG, "sequence: %d embedding rows with grid width %d", n_rows, grid_w);
    if (kind == IDS_ROW_IMAGE && n_rows % grid_w == 0 && n_rows > 0)
        return ids_seq_add_image(s, rows, image, 1, n_rows / grid_w, grid_w, err);
    ids_status st = grow(s, n_rows, err);
    if (st) return st;
    memcpy(s->embd + (size_t)s->n * (size_t)s->n_embd, rows,
           (size_t)n_rows * (size_t)s->n_embd * sizeof(float));
    for (int i = 0; i < n_rows; i++) {
        ids_row *r = &s->rows[s->n++];
        r->token = -1;
        r->kind = (int8_t)kind;
        r->image = (int16_t)(kind == IDS_ROW_IMAGE ? image : -1);
        r->cell_row = (int16_t)(kind == IDS_ROW_IMAGE ? i / grid_w : -1);
        r->cell_col = (int16_t)(kind == IDS_ROW_IMAGE ? i % grid_w : -1);
        r->frame = (int16_t)(kind == IDS_ROW_IMAGE ? 0 : -1);
        r->pos[0] = r->pos[1] = r->pos[2] = s->next_pos++;
    }
    return IDS_OK;
}

static ids_status push_row(int **rows, int *n, int *cap, int r, ids_err *err) {
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        int *p = ids__realloc(*rows, (size_t)c * sizeof *p);
        if (!p) return ids__err(err, IDS_ERR_NOMEM, "selector: out of memory");
        *rows = p;
        *cap = c;
    }
    (*rows)[(*n)++] = r;
    return IDS_OK;
}

/* "'frog' is not a word of this prompt": the words the prompt has after `from`, for the message. */
static ids_status word_absent(const ids_seq *s, const ids_tokenizer *t, const ids_sel *sel, int from, int32_t id,
                              ids_err *err) {
    char words[200] = "";
    size_t n = 0;
    int shown = 0;
    for (int i = from; i < s->n && n + 40 < sizeof words; i++) {
        const char *p = s->rows[i].kind == IDS_ROW_IMAGE ? NULL : ids_tokenizer_piece(t, s->rows[i].token);
        if (!p) continue;
        const bool start = !strncmp(p, "\xe2\x96\x81", 3) || !strncmp(p, "\xc4\xa0", 2); /* SPM / byte-level word start */
        if (!start) continue;
        p += p[0] == '\xe2' ? 3 : 2;
        if (!*p || (p[0] == '<' && strchr(p, '>'))) continue;
        n += (size_t)snprintf(words + n, sizeof words - n, "%s%.30s", shown++ ? ", " : "", p);
    }
    const char *piece = ids_tokenizer_piece(t, id);
    return ids__err(err, IDS_ERR_NOT_FOUND, "selector: word '%s' is not a word of this prompt%s (its token %d '%s' does not "
                    "occur there)%s%s%s", sel->word, sel->after_image ? " after the image" : "", id, piece ? piece : "?",
                    shown ? "; its words: " : "", words, shown ? ", ..." : "");
}

ids_status ids_sel_resolve(const ids_seq *s, const ids_tokenizer *t, const ids_sel *sel,
                           int **rows, int *n_rows, ids_err *err) {
    *rows = NULL;
    *n_rows = 0;
    int cap = 0;
    ids_status st = IDS_OK;
    switch (sel->kind) {
    case IDS_SEL_ALL:
        for (int i = 0; i < s->n && !st; i++) st = push_row(rows, n_rows, &cap, i, err);
        break;
    case IDS_SEL_RANGE:
        if (sel->begin < 0 || sel->end > s->n || sel->begin >= sel->end) {
            return ids__err(err, IDS_ERR_RANGE, "selector: range [%d, %d) is not inside the "
                            "sequence of %d rows", sel->begin, sel->end, s->n);
        }
        for (int i = sel->begin; i < sel->end && !st; i++) st = push_row(rows, n_rows, &cap, i, err);
        break;
    case IDS_SEL_LIST:
        if (sel->n_list <= 0 || !sel->list)
            return ids__err(err, IDS_ERR_ARG, "selector: empty row list");
        for (int k = 0; k < sel->n_list && !st; k++) {
            if (sel->list[k] < 0 || sel->list[k] >= s->n) {
                free(*rows);
                *rows = NULL;
                *n_rows = 0;
                return ids__err(err, IDS_ERR_RANGE, "selector: row %d is past the end of the "
                                "sequence (%d rows)", sel->list[k], s->n);
            }
            st = push_row(rows, n_rows, &cap, sel->list[k], err);
        }
        break;
    case IDS_SEL_IMAGE:
    case IDS_SEL_TEXT: {
        int want = sel->kind == IDS_SEL_IMAGE ? IDS_ROW_IMAGE : IDS_ROW_TEXT;
        for (int i = 0; i < s->n && !st; i++) {
            const ids_row *r = &s->rows[i];
            if (r->kind != want) continue;
            if (want == IDS_ROW_IMAGE && sel->image >= 0 && r->image != sel->image) continue;
            st = push_row(rows, n_rows, &cap, i, err);
        }
        if (!st && *n_rows == 0)
            st = ids__err(err, IDS_ERR_NOT_FOUND, "selector: the sequence has no %s rows%s",
                          want == IDS_ROW_IMAGE ? "image" : "text",
                          (want == IDS_ROW_IMAGE && sel->image >= 0) ? " for that image" : "");
        break;
    }
    case IDS_SEL_WORD: {
        if (!t) return ids__err(err, IDS_ERR_ARG, "selector: word '%s' needs a tokenizer", sel->word ? sel->word : "");
        if (!sel->word || !*sel->word) return ids__err(err, IDS_ERR_ARG, "selector: empty word");
        int32_t id = ids_tokenizer_word_token(t, sel->word, err);
        if (id < 0) return err ? err->code : IDS_ERR_NOT_FOUND;
        int from = 0;
        if (sel->after_image)
            for (int i = 0; i < s->n; i++)
                if (s->rows[i].kind == IDS_ROW_IMAGE) from = i + 1;
        int seen = 0, found = -1;
        for (int i = from; i < s->n; i++) {
            if (s->rows[i].token == id && seen++ == sel->nth) {
                found = i;
                break;
            }
        }
        if (found < 0 && seen == 0) return word_absent(s, t, sel, from, id, err);
        if (found < 0) {
            const char *piece = ids_tokenizer_piece(t, id);
            return ids__err(err, IDS_ERR_NOT_FOUND, "selector: word '%s' (token %d '%s') occurs %d "
                            "time%s%s; occurrence %d was asked", sel->word, id, piece ? piece : "?",
                            seen, seen == 1 ? "" : "s", sel->after_image ? " after the image" : "",
                            sel->nth);
        }
        st = push_row(rows, n_rows, &cap, found, err);
        break;
    }
    case IDS_SEL_LAST:
        if (s->n == 0) return ids__err(err, IDS_ERR_RANGE, "selector: empty sequence");
        st = push_row(rows, n_rows, &cap, s->n - 1, err);
        break;
    default:
        return ids__err(err, IDS_ERR_ARG, "selector: unknown kind %d", (int)sel->kind);
    }
    if (st) {
        free(*rows);
        *rows = NULL;
        *n_rows = 0;
    }
    return st;
}

ids_status ids__seq_copy(ids_seq *dst, const ids_seq *src, ids_err *err) {
    if (dst->n_embd != src->n_embd)
        return ids__err(err, IDS_ERR_ARG, "sequence: width %d vs %d", dst->n_embd, src->n_embd);
    ids_status st = grow(dst, src->n, err);
    if (st) return st;
    memcpy(dst->rows + dst->n, src->rows, (size_t)src->n * sizeof *src->rows);
    memcpy(dst->embd + (size_t)dst->n * dst->n_embd, src->embd,
           (size_t)src->n * (size_t)src->n_embd * sizeof(float));
    const int base = dst->n;
    dst->n += src->n;
    if (src->next_pos > dst->next_pos) dst->next_pos = src->next_pos;
    dst->mrope = src->mrope;
    for (int i = 0; i < src->n_ximg && !st; i++)
        st = ids_seq_add_cross(dst, base + src->ximg_row[i], src->x + (size_t)src->ximg_off[i] * src->n_embd,
                               (i + 1 < src->n_ximg ? src->ximg_off[i + 1] : src->x_n) - src->ximg_off[i],
                               src->ximg_valid[i], err);
    if (st) return st;
    if (!src->n_ds || !src->ds_n) return IDS_OK;
    if (dst->n_ds && dst->n_ds != src->n_ds)
        return ids__err(err, IDS_ERR_ARG, "sequence: %d DeepStack rows per row vs %d", dst->n_ds, src->n_ds);
    dst->n_ds = src->n_ds;
    if ((st = ds_reserve(dst, dst->n, src->ds_n, err))) return st;
    const size_t blk = (size_t)src->n_ds * src->n_embd;
    for (int i = 0; i < src->ds_len; i++) {
        if (src->ds_idx[i] < 0) continue;
        memcpy(dst->ds + (size_t)dst->ds_n * blk, src->ds + (size_t)src->ds_idx[i] * blk, blk * sizeof(float));
        dst->ds_idx[base + i] = dst->ds_n++;
    }
    dst->ds_len = dst->n;
    return IDS_OK;
}
