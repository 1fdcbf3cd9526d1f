/* The VLM glue: prompt with <image> markers + images -> one sequence whose rows know what they
 * are; index/position list parsing; the capture writer. */
#include "idscope/engine.h"
#include "engine/lm.h"
#include "engine/vision.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>

struct ids_vlm {
    ids_model *lm;
    ids_vision *vis;
    char *mmproj_path;
};

void ids_vlm_free(ids_vlm *v) {
    if (!v) return;
    ids_model_free(v->lm);
    ids_vision_free(v->vis);
    free(v->mmproj_path);
    free(v);
}

const char *ids_vlm_mmproj_path(const ids_vlm *v) { return v->mmproj_path; }

/* A Hugging Face folder in the provenance: its config.json (whole) for the text role, its weights'
 * index (whole) or the header of model.safetensors for the mmproj role. */
static ids_status prov_hf(ids_prov *p, const char *role, const char *dir, ids_err *err) {
    char path[1100];
    uint64_t head = 0;
    if (!strcmp(role, "text")) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        return ids_prov_model(p, role, path, 0, err);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        unsigned char b[8];
        if ((f = fopen(path, "rb")) && fread(b, 1, 8, f) == 8) head = 8 + ids__rd64(b);
    }
    if (f) fclose(f);
    return ids_prov_model(p, role, path, head, err);
}

ids_status ids_vlm_prov(ids_prov *p, const ids_vlm *v, ids_err *err) {
    const char *text = ids_gguf_path(ids_model_gguf(v->lm));
    ids_status st = ids_hf_is_dir(text) ? prov_hf(p, "text", text, err)
                    : ids_prov_model(p, "text", text, ids_gguf_data_offset(ids_model_gguf(v->lm)), err);
    if (st) return st;
    if (ids_hf_is_dir(v->mmproj_path)) return prov_hf(p, "mmproj", v->mmproj_path, err);
    ids_gguf *mg = NULL;
    st = ids_gguf_open(&mg, v->mmproj_path, err);
    if (!st) st = ids_prov_model(p, "mmproj", v->mmproj_path, ids_gguf_data_offset(mg), err);
    ids_gguf_close(mg);
    return st;
}

ids_status ids_vlm_load(ids_vlm **out, const char *text_path, const char *mmproj_path, ids_err *err) {
    *out = NULL;
    if (!mmproj_path) mmproj_path = text_path; /* a Hugging Face folder holds both parts */
    ids_vlm *v = ids__calloc(1, sizeof *v);
    if (!v) return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
    ids_status st = (v->mmproj_path = ids__strdup(mmproj_path)) ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
    if (!st) st = ids_model_load(&v->lm, text_path, err);
    if (!st) st = ids_vision_load(&v->vis, mmproj_path, err);
    if (!st) {
        int a = ids_model_hparams(v->lm)->n_embd, b = ids_vision_params(v->vis)->n_out_embd;
        if (a != b)
            st = ids__err(err, IDS_ERR_FORMAT, "%s projects images to width %d but the text model %s has "
                          "n_embd %d: they do not belong together", mmproj_path, b, text_path, a);
        int da = ids_model_hparams(v->lm)->n_deepstack, db = ids_vision_params(v->vis)->n_deepstack;
        if (!st && da != db) /* HF adds as many DeepStack rows as the tower makes; llama.cpp as the text model says */
            st = ids__err(err, IDS_ERR_FORMAT, "%s has %d DeepStack mergers but the text model %s takes %d "
                          "(%s.n_deepstack_layers): they do not belong together", mmproj_path, db, text_path, da,
                          ids_model_hparams(v->lm)->arch);
    }
    if (st) {
        ids_vlm_free(v);
        return st;
    }
    *out = v;
    return IDS_OK;
}

const ids_model *ids_vlm_model(const ids_vlm *v) { return v->lm; }
const ids_vision *ids_vlm_vision(const ids_vlm *v) { return v->vis; }

static bool is_qwen(const ids_vlm *v) { return ids_vision_params(v->vis)->dynamic; }
static bool is_gemma3(const ids_vlm *v) { return ids_model_hparams(v->lm)->gemma3; }
static bool is_internvl(const ids_vlm *v) { return !strcmp(ids_vision_params(v->vis)->projector, "internvl"); }
static bool is_onevision(const ids_vlm *v) { return !strcmp(ids_vision_params(v->vis)->projector, "llava_onevision"); }
static bool is_mllama(const ids_vlm *v) { return ids_model_hparams(v->lm)->n_xattn > 0; }

char *ids_vlm_video_prompt(const ids_vlm *v, const char *question, int n_images) {
    char *p = ids_vlm_prompt(v, question, n_images + 1), *m = NULL; /* the last marker becomes the video */
    for (char *x = p ? strstr(p, IDS_IMAGE_MARKER) : NULL; x; x = strstr(x + 1, IDS_IMAGE_MARKER)) m = x;
    if (!m) return p;
    char *q = ids__malloc(strlen(p) + 8);
    if (q) sprintf(q, "%.*s%s%s", (int)(m - p), p, IDS_VIDEO_MARKER, m + strlen(IDS_IMAGE_MARKER));
    free(p);
    return q;
}

char *ids_vlm_prompt(const ids_vlm *v, const char *question, int n_images) {
    size_t n = strlen(question) + 160 + (size_t)(n_images > 0 ? n_images : 0) * 8;
    char *p = ids__malloc(n);
    if (!p) return NULL;
    size_t k;
    if (is_qwen(v)) { /* Qwen2-VL chat template with its default system message */
        k = (size_t)snprintf(p, n, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n");
        for (int i = 0; i < n_images; i++) k += (size_t)snprintf(p + k, n - k, IDS_IMAGE_MARKER);
        snprintf(p + k, n - k, "%s<|im_end|>\n<|im_start|>assistant\n", question);
    } else if (is_gemma3(v)) { /* Gemma 3's chat template (its <bos> comes from the vocabulary) */
        k = (size_t)snprintf(p, n, "<start_of_turn>user\n");
        for (int i = 0; i < n_images; i++) k += (size_t)snprintf(p + k, n - k, IDS_IMAGE_MARKER);
        snprintf(p + k, n - k, "%s<end_of_turn>\n<start_of_turn>model\n", question);
    } else if (is_mllama(v)) { /* Llama 3.2 Vision (HF chat template: no system message with an image; BOS from
                                 * the vocabulary) */
        k = (size_t)snprintf(p, n, "<|start_header_id|>user<|end_header_id|>\n\n");
        for (int i = 0; i < n_images; i++) k += (size_t)snprintf(p + k, n - k, IDS_IMAGE_MARKER);
        snprintf(p + k, n - k, "%s<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", question);
    } else if (is_internvl(v) || is_onevision(v)) { /* InternVL3, LLaVA-OneVision (HF chat templates): no system
                                                      * message, "\n" after each image (and video) */
        k = (size_t)snprintf(p, n, "<|im_start|>user\n");
        for (int i = 0; i < n_images; i++) k += (size_t)snprintf(p + k, n - k, IDS_IMAGE_MARKER "\n");
        snprintf(p + k, n - k, "%s<|im_end|>\n<|im_start|>assistant\n", question);
    } else { /* LLaVA-1.5: vicuna */
        k = (size_t)snprintf(p, n, "USER: ");
        for (int i = 0; i < n_images; i++) k += (size_t)snprintf(p + k, n - k, IDS_IMAGE_MARKER);
        snprintf(p + k, n - k, "%s%s ASSISTANT:", n_images > 0 ? "\n" : "", question);
    }
    return p;
}

/* The next <image> or <video> marker at or after p (NULL if none); *video tells which. */
static const char *next_marker(const char *p, bool *video) {
    const char *a = strstr(p, IDS_IMAGE_MARKER), *b = strstr(p, IDS_VIDEO_MARKER);
    *video = b && (!a || b < a);
    return *video ? b : a;
}

/* pre + the first len bytes of part + stamp + post, tokenized (special tokens parsed; BOS when first)
 * and appended to s; nothing when all are empty and it is not the first text. */
static ids_status add_text(ids_seq *s, const ids_tokenizer *tok, const char *pre, const char *part, size_t len,
                           const char *stamp, const char *post, bool first, ids_err *err) {
    size_t tl = strlen(pre) + len + strlen(stamp) + strlen(post);
    if (!tl && !first) return IDS_OK;
    char *text = ids__malloc(tl + 1);
    if (!text) return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
    snprintf(text, tl + 1, "%s%.*s%s%s", pre, (int)len, part, stamp, post);
    int32_t *ids;
    size_t n;
    ids_tokenize_opts o = {.add_bos = first, .parse_special = true};
    ids_status st = ids_tokenize(tok, text, tl, o, &ids, &n, err);
    free(text);
    if (st) return st;
    st = ids_seq_add_tokens(s, ids, n, err);
    free(ids);
    return st;
}

/* LLaVA-OneVision's rows: an image is its base tile (frame 0, grid x grid cells) and then the packed
 * map (frame 1, grid_h x grid_w cells, the newline column last); a video is grid_t pooled frames and
 * one newline row (frame grid_t, cell (0, 0)). */
static ids_status add_onevision(ids_seq *s, const float *rows, int block, const ids_vplan *pl, bool video, int g, int D,
                                ids_err *err) {
    const int first = ids_seq_len(s);
    const int n1 = video ? pl->grid_t * pl->grid_h * pl->grid_w : g * g;
    ids_status st = video ? ids_seq_add_visual(s, rows, block, pl->grid_t, pl->grid_h, pl->grid_w, 1, err)
                          : ids_seq_add_visual(s, rows, block, 1, g, g, 1, err);
    if (!st) st = video ? ids_seq_add_visual(s, rows + (size_t)n1 * D, block, 1, 1, 1, 1, err)
                        : ids_seq_add_visual(s, rows + (size_t)n1 * D, block, 1, pl->grid_h, pl->grid_w, 1, err);
    for (int i = first + n1; !st && i < ids_seq_len(s); i++) ids__seq_set_frame(s, i, video ? pl->grid_t : 1);
    return st;
}

/* The plan and the rows of one visual block: LLaVA-OneVision's video mode is chosen by the marker
 * (a one-frame video is pooled as a video), the other towers' by the frame count. */
static ids_status plan_block(const ids_vlm *v, const ids_image *im, int n, bool video, ids_vplan *pl, ids_err *err) {
    if (is_onevision(v)) return ids__vision_plan_onevision(v->vis, im, n, video, pl, err);
    return ids_vision_plan(v->vis, im, n, pl, err);
}

static ids_status encode_block(const ids_vlm *v, const ids_image *im, int n, bool video, int n_threads, float *rows,
                               float *ds, float *blk, ids_err *err) {
    if (is_onevision(v)) return ids__vision_encode_onevision(v->vis, im, n, video, n_threads, rows, blk, err);
    return ids_vision_encode_deepstack(v->vis, im, n, n_threads, rows, ds, blk, err);
}

/* Llama-3.2-Vision: each <image> marker is the <|image|> token; the image's cross-attention states go
 * beside the sequence (ids_seq_add_cross: the rows of its span attend to its tiles), not into it. */
static ids_status build_mllama(const ids_vlm *v, const char *prompt, const ids_image *images, int n_threads,
                               float *vision_blocks, ids_seq *s, ids_err *err) {
    const ids_vparams *vp = ids_vision_params(v->vis);
    const ids_tokenizer *tok = ids_model_tokenizer(v->lm);
    int32_t *one = NULL;
    size_t n_one = 0;
    ids_tokenize_opts to = {.add_bos = false, .parse_special = true};
    ids_status st = ids_tokenize(tok, "<|image|>", 9, to, &one, &n_one, err);
    const int32_t image_id = !st && n_one == 1 ? one[0] : -1;
    free(one);
    if (st) return st;
    if (image_id < 0) return ids__err(err, IDS_ERR_FORMAT, "the vocabulary has no <|image|> token");
    float *rows = ids__malloc(sizeof(float) * (size_t)vp->n_out * vp->n_out_embd);
    if (!rows) return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
    const char *part = prompt;
    size_t blk_off = 0;
    for (int img = 0, first = 1;; img++, first = 0) {
        bool isv;
        const char *m = next_marker(part, &isv);
        if (m && isv) {
            st = ids__err(err, IDS_ERR_UNSUPPORTED, "Llama-3.2-Vision takes images, not %s", IDS_VIDEO_MARKER);
            break;
        }
        if ((st = add_text(s, tok, "", part, m ? (size_t)(m - part) : strlen(part), "", m ? "<|image|>" : "", first, err)) ||
            !m)
            break;
        const int row = ids_seq_len(s) - 1;
        ids_vplan pl;
        if (ids_seq_row(s, row)->token != image_id)
            st = ids__err(err, IDS_ERR_FORMAT, "image %d: the text before it swallowed its <|image|> token", img);
        if (!st) st = ids_vision_plan(v->vis, &images[img], 1, &pl, err);
        if (!st) st = ids_vision_encode(v->vis, &images[img], n_threads, rows, vision_blocks ? vision_blocks + blk_off : NULL, err);
        if (!st) st = ids_seq_add_cross(s, row, rows, pl.n_out, pl.tiles_w * pl.tiles_h * (pl.n_out / pl.grid_t), err);
        if (st) {
            ids__err_prefix(err, st, "image %d", img);
            break;
        }
        blk_off += (size_t)vp->n_run * pl.n_tokens * vp->n_embd;
        part = m + strlen(IDS_IMAGE_MARKER);
    }
    free(rows);
    return st;
}

ids_status ids_vlm_build_seq(const ids_vlm *v, const char *prompt, const ids_image *images,
                             int n_images, int n_threads, float *vision_blocks, ids_seq **out,
                             ids_err *err) {
    if (strstr(prompt, IDS_VIDEO_MARKER))
        return ids__err(err, IDS_ERR_ARG, "the prompt has a %s marker: use ids_vlm_build_video_seq", IDS_VIDEO_MARKER);
    return ids_vlm_build_video_seq(v, prompt, images, n_images, 0, n_threads, vision_blocks, out, err);
}

ids_status ids_vlm_build_video_seq(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                                   int video_frames, int n_threads, float *vision_blocks, ids_seq **out, ids_err *err) {
    *out = NULL;
    int n_img_mk = 0, n_vid_mk = 0;
    bool isv;
    for (const char *p = next_marker(prompt, &isv); p; p = next_marker(p + 1, &isv)) isv ? n_vid_mk++ : n_img_mk++;
    if (n_vid_mk && video_frames < 1)
        return ids__err(err, IDS_ERR_ARG, "the prompt has %d %s marker%s but no frames per video were given", n_vid_mk,
                        IDS_VIDEO_MARKER, n_vid_mk == 1 ? "" : "s");
    const int want = n_img_mk + n_vid_mk * video_frames;
    if (want != n_images) {
        if (!n_vid_mk)
            return ids__err(err, IDS_ERR_ARG, "the prompt has %d %s marker%s but %d image%s given", n_img_mk, IDS_IMAGE_MARKER,
                            n_img_mk == 1 ? "" : "s", n_images, n_images == 1 ? " was" : "s were");
        return ids__err(err, IDS_ERR_ARG, "the prompt has %d %s and %d %s markers (%d frames each): %d images needed, %d given",
                        n_img_mk, IDS_IMAGE_MARKER, n_vid_mk, IDS_VIDEO_MARKER, video_frames, want, n_images);
    }
    if (n_vid_mk && vision_blocks)
        return ids__err(err, IDS_ERR_ARG, "the tower's blocks are only captured for prompts without %s", IDS_VIDEO_MARKER);
    const ids_vparams *vp = ids_vision_params(v->vis);
    const ids_hparams *hp = ids_model_hparams(v->lm);
    const bool qwen = is_qwen(v), qwen3 = !strcmp(vp->projector, "qwen3vl_merger"), ivl = is_internvl(v);
    const bool ov = is_onevision(v); /* a video is one block of pooled frames */
    /* the tokens around a visual block: Qwen2-VL's, InternVL's (HF and llama.cpp's mtmd alike) */
    const char *vbeg = qwen ? "<|vision_start|>" : ivl ? "<img>" : "";
    const char *vend = qwen ? "<|vision_end|>" : ivl ? "</img>" : "";
    ids_seq *s = ids_seq_new(hp->n_embd);
    if (!s) return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
    ids_seq_set_mrope(s, hp->rope_mode == IDS_ROPE_MROPE || hp->rope_mode == IDS_ROPE_IMROPE);
    if (is_mllama(v)) {
        ids_status st = build_mllama(v, prompt, images, n_threads, vision_blocks, s, err);
        if (st) ids_seq_free(s);
        else *out = s;
        return st;
    }
    float *rows = NULL;
    size_t rows_cap = 0, blk_off = 0;
    ids_status st = IDS_OK;
    const char *part = prompt;
    const ids_tokenizer *tok = ids_model_tokenizer(v->lm);
    /* Visual blocks in prompt order: an image is one block; a video is one block of temporal patches (Qwen2-VL,
     * 2.5-VL), one per temporal patch after its time stamp (Qwen3-VL), one per frame (LLaVA-style towers, with no
     * video mode; InternVL, whose frames, one tile each, are encoded together and labelled "Frame1: " ...). */
    int img = 0, block = 0;
    bool first = true;
    for (;;) {
        const char *m = next_marker(part, &isv);
        const size_t ml = m ? strlen(isv ? IDS_VIDEO_MARKER : IDS_IMAGE_MARKER) : 0;
        /* Qwen3-VL (HF Qwen3VLProcessor): a video is one block per temporal patch, each after its time stamp */
        const bool groups = m && isv && qwen3;
        const int n_fr = !m ? 0 : isv ? video_frames : 1;
        const int n_blocks = !m ? 0 : (isv && !qwen && !ov) ? video_frames : groups ? (video_frames + 1) / 2 : 1;
        for (int bk = 0; bk < (m ? n_blocks : 1) && !st; bk++) {
            /* text before the block: the prompt's text before the marker, or nothing between the frames of
             * a video; Qwen2-VL: <|vision_start|> ends the text before a block, <|vision_end|> starts the
             * text after it (as llama.cpp's mtmd emits them) */
            size_t len = bk == 0 ? (m ? (size_t)(m - part) : strlen(part)) : 0;
            const char *pre = !first ? vend : "", *post = m ? vbeg : "";
            if (is_gemma3(v)) { /* HF Gemma3Processor's full_image_sequence around each image's rows */
                pre = first ? "" : "<end_of_image>\n\n";
                post = m ? "\n\n<start_of_image>" : "";
            }
            const int nf = n_blocks == 1 ? n_fr : groups ? (n_fr - 2 * bk >= 2 ? 2 : 1) : 1; /* frames in this block */
            char label[48] = ""; /* Qwen3-VL: its frames' (2bk, 2bk + 1 or 2bk twice) mean time at 2 fps; InternVL: "FrameN: " */
            if (groups) snprintf(label, sizeof label, "<%.1f seconds>", nf == 2 ? bk + 0.25 : (double)bk);
            if (ivl && isv && m) snprintf(label, sizeof label, "%sFrame%d: ", bk ? "\n" : "", bk + 1);
            if ((st = add_text(s, tok, pre, part, len, label, post, first, err))) break;
            first = false;
            if (!m) break;
            const bool ivl_video = ivl && isv; /* the video's frames encoded at its first block */
            const int n_enc = ivl_video ? n_fr : nf;
            if (ivl_video && bk > 0) { /* frame bk: one tile of the rows encoded at bk 0 */
                const int g = vp->grid / vp->merge;
                st = ids_seq_add_visual(s, rows + (size_t)bk * vp->n_out * vp->n_out_embd, block++, 1, g, g, 1, err);
                img++;
                continue;
            }
            ids_vplan pl;
            if ((st = plan_block(v, &images[img], n_enc, isv, &pl, err))) break;
            size_t need = (size_t)pl.n_out * vp->n_out_embd * (size_t)(1 + vp->n_deepstack);
            if (need > rows_cap) {
                float *r = ids__realloc(rows, need * sizeof(float));
                if (!r) {
                    st = ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
                    break;
                }
                rows = r;
                rows_cap = need;
            }
            float *blk = vision_blocks ? vision_blocks + blk_off : NULL;
            blk_off += (size_t)vp->n_run * pl.n_tokens * vp->n_embd;
            float *ds = vp->n_deepstack ? rows + (size_t)pl.n_out * vp->n_out_embd : NULL;
            if ((st = encode_block(v, &images[img], n_enc, isv, n_threads, rows, ds, n_enc == 1 ? blk : NULL, err))) {
                if (err) ids__err_prefix(err, st, "image %d", img);
                break;
            }
            if (ov) st = add_onevision(s, rows, block, &pl, isv, vp->grid, vp->n_out_embd, err);
            else st = ids_seq_add_visual(s, rows, block, ivl_video ? 1 : pl.grid_t, pl.grid_h, pl.grid_w, vp->mrope_t_step,
                                         err);
            if (!st && ds) st = ids_seq_set_deepstack(s, ds, vp->n_deepstack, pl.n_out, err);
            img += nf;
            block++;
        }
        if (st || !m) break;
        part = m + ml;
    }
    free(rows);
    if (!st && ids_seq_len(s) > hp->n_ctx_train) { /* longer than the model was made for */
        int n_img_rows = 0;
        for (int r = 0; r < ids_seq_len(s); r++) n_img_rows += ids_seq_row(s, r)->token < 0;
        st = ids__err(err, IDS_ERR_RANGE, "the prompt is %d rows long (%d text tokens, %d image rows) but the model's "
                      "context is %d (%s.context_length of %s)", ids_seq_len(s), ids_seq_len(s) - n_img_rows, n_img_rows,
                      hp->n_ctx_train, hp->arch, ids_gguf_path(ids_model_gguf(v->lm)));
    }
    if (st) {
        ids_seq_free(s);
        return st;
    }
    *out = s;
    return IDS_OK;
}

ids_status ids_parse_index_list(const char *spec, int lo, int hi, int **out, int *n, ids_err *err) {
    *out = NULL;
    *n = 0;
    if (!spec || !*spec) return ids__err(err, IDS_ERR_ARG, "empty index list");
    int cap = 16;
    int *v = ids__malloc(sizeof(int) * (size_t)cap);
    if (!v) return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
    if (!strcmp(spec, "all")) {
        for (int i = lo; i <= hi; i++) {
            if (*n == cap) {
                cap *= 2;
                int *p = ids__realloc(v, sizeof(int) * (size_t)cap);
                if (!p) {
                    free(v);
                    return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
                }
                v = p;
            }
            v[(*n)++] = i;
        }
        *out = v;
        return IDS_OK;
    }
    const char *p = spec;
    while (*p) {
        char *e;
        errno = 0;
        long a = strtol(p, &e, 10), b;
        if (e == p || errno) goto bad;
        b = a;
        if (*e == '-') {
            const char *q = e + 1;
            b = strtol(q, &e, 10);
            if (e == q || errno) goto bad;
        }
        if (a < lo || b > hi || a > b) {
            free(v);
            *n = 0;
            return ids__err(err, IDS_ERR_RANGE, "index list '%s': %ld%s%ld is outside %d..%d", spec, a,
                            a == b ? "" : "-", a == b ? 0 : b, lo, hi);
        }
        for (long x = a; x <= b; x++) {
            if (*n == cap) {
                cap *= 2;
                int *np = ids__realloc(v, sizeof(int) * (size_t)cap);
                if (!np) {
                    free(v);
                    return ids__err(err, IDS_ERR_NOMEM, "vlm: out of memory");
                }
                v = np;
            }
            v[(*n)++] = (int)x;
        }
        if (*e == ',') e++;
        else if (*e) goto bad;
        p = e;
    }
    *out = v;
    return IDS_OK;
bad:
    free(v);
    *n = 0;
    return ids__err(err, IDS_ERR_ARG, "cannot parse index list '%s' (expected all, or e.g. 0,3,5-7)", spec);
}

ids_status ids_parse_positions(const char *spec, const ids_seq *s, const ids_tokenizer *t, int **out,
                               int *n, ids_err *err) {
    ids_sel sel = {0};
    char word[256];
    if (!spec || !strcmp(spec, "all")) sel.kind = IDS_SEL_ALL;
    else if (!strcmp(spec, "last")) sel.kind = IDS_SEL_LAST;
    else if (!strcmp(spec, "image")) sel.kind = IDS_SEL_IMAGE, sel.image = -1;
    else if (!strcmp(spec, "text")) sel.kind = IDS_SEL_TEXT;
    else if (!strncmp(spec, "word:", 5)) {
        snprintf(word, sizeof word, "%s", spec + 5);
        char *c = strrchr(word, ':');
        sel.kind = IDS_SEL_WORD;
        sel.after_image = true;
        if (c && c[1] && strspn(c + 1, "0123456789") == strlen(c + 1)) {
            sel.nth = atoi(c + 1);
            *c = 0;
        }
        sel.word = word;
    } else
        return ids_parse_index_list(spec, 0, ids_seq_len(s) - 1, out, n, err);
    return ids_sel_resolve(s, t, &sel, out, n, err);
}

static char *join_ints(const int *v, int n) {
    size_t cap = (size_t)n * 12 + 2;
    char *s = ids__malloc(cap);
    if (!s) return NULL;
    size_t k = 0;
    s[0] = 0;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "%s%d", i ? "," : "", v[i]);
    return s;
}

/* One capture's state: the sequence, its run and every buffer written to the file. */
typedef struct {
    ids_seq *s;
    ids_ctx *c;
    int *layers, *pos, nl, np; /* residual layers and positions captured */
    int *blocks, nb;           /* blocks of the block sites: the layers < n_layer */
    float *vis;                /* [n_images][n_run, n_tokens_i, n_vembd] */
    float *resid;              /* [nl, np, n_embd] */
    float *logits;             /* [np, n_vocab] */
    float *all_logits;         /* [n, n_vocab] */
    float *img;                /* [n_img_rows, n_embd] */
    float *attn_out, *mlp_out; /* [nb, np, n_embd] */
    float *probs;              /* [nb, np, n_head, n] */
    float *ds;                 /* [n_ds, np, n_embd]: the DeepStack sites */
    float *img_ds;             /* [n_ds, n_img_rows, n_embd]: the image rows' DeepStack rows */
    float *xo, *xg;            /* mllama: [n_xattn, np, n_embd] and [n_xattn, np, 2]: the cross-attention sites */
    int n_ds;
    int32_t *tokens;           /* [n] */
    int32_t *positions;        /* [np, 3] */
    ids_hook *hooks;           /* the edits, then the captures */
    int n_img_rows;
    int vis_tokens[64];        /* tower tokens per image */
    bool same_tokens;          /* every image has the same tower token count */
} capture;

static void capture_free(capture *k) {
    free(k->hooks);
    free(k->tokens);
    free(k->positions);
    free(k->resid);
    free(k->logits);
    free(k->all_logits);
    free(k->img);
    free(k->vis);
    free(k->layers);
    free(k->blocks);
    free(k->attn_out);
    free(k->mlp_out);
    free(k->probs);
    free(k->ds);
    free(k->img_ds);
    free(k->xo);
    free(k->xg);
    free(k->pos);
    ids_ctx_free(k->c);
    ids_seq_free(k->s);
}

/* Each image's tower token count and, when the tower's blocks are captured, their buffer. */
static ids_status capture_plan_vision(const ids_vlm *v, const ids_image *images, int n_images,
                                      const ids_capture_opts *o, capture *k, ids_err *err) {
    const ids_vparams *vp = ids_vision_params(v->vis);
    if (n_images > 64) return ids__err(err, IDS_ERR_RANGE, "capture: at most 64 images");
    size_t vis_n = 0;
    k->same_tokens = true;
    for (int i = 0; i < n_images; i++) {
        ids_vplan pl;
        ids_status st = ids_vision_plan(v->vis, &images[i], 1, &pl, err);
        if (st) return st;
        k->vis_tokens[i] = pl.n_tokens;
        k->same_tokens = k->same_tokens && pl.n_tokens == k->vis_tokens[0];
        vis_n += (size_t)vp->n_run * pl.n_tokens * vp->n_embd;
    }
    if (o->vision && vis_n && !(k->vis = ids__malloc(vis_n * sizeof(float))))
        return ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    return IDS_OK;
}

/* The buffers for the chosen sites; the tokens and the captured rows' positions filled in. */
static ids_status capture_alloc(const ids_vlm *v, const ids_capture_opts *o, capture *k, ids_err *err) {
    const ids_hparams *hp = ids_model_hparams(v->lm);
    const int n = ids_seq_len(k->s), E = hp->n_embd, nl = k->nl, np = k->np;
    k->tokens = ids__malloc(sizeof(int32_t) * (size_t)n);
    k->positions = ids__malloc(sizeof(int32_t) * 3 * (size_t)np);
    const int nb = k->nb;
    k->n_ds = o->deepstack || o->image_embd ? ids_seq_n_deepstack(k->s) : 0;
    k->hooks = ids__calloc((size_t)(o->n_edits + nl + 3 * nb + k->n_ds + 2 * hp->n_xattn + 1), sizeof *k->hooks);
    if (o->xattn && hp->n_xattn && (!(k->xo = ids__malloc(sizeof(float) * (size_t)hp->n_xattn * np * E)) ||
                                    !(k->xg = ids__malloc(sizeof(float) * (size_t)hp->n_xattn * np * 2))))
        return ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    if (o->resid) k->resid = ids__malloc(sizeof(float) * (size_t)nl * np * E);
    bool blocks_ok = true;
    if (o->attn_out && nb) blocks_ok = (k->attn_out = ids__malloc(sizeof(float) * (size_t)nb * np * E)) != NULL;
    if (o->mlp_out && nb && blocks_ok) blocks_ok = (k->mlp_out = ids__malloc(sizeof(float) * (size_t)nb * np * E)) != NULL;
    if (o->attn_probs && nb && blocks_ok)
        blocks_ok = (k->probs = ids__malloc(sizeof(float) * (size_t)nb * np * hp->n_head * n)) != NULL;
    if (o->logits) {
        k->logits = ids__malloc(sizeof(float) * (size_t)np * hp->n_vocab);
        k->all_logits = ids__malloc(sizeof(float) * (size_t)n * hp->n_vocab);
    }
    k->n_img_rows = 0;
    for (int i = 0; i < n; i++) k->n_img_rows += ids_seq_row(k->s, i)->kind == IDS_ROW_IMAGE;
    if (o->image_embd) k->img = ids__malloc(sizeof(float) * (size_t)(k->n_img_rows ? k->n_img_rows : 1) * E);
    if (k->n_ds && o->image_embd && k->n_img_rows &&
        !(k->img_ds = ids__malloc(sizeof(float) * (size_t)k->n_ds * k->n_img_rows * E)))
        blocks_ok = false;
    if (k->n_ds && o->deepstack && !(k->ds = ids__malloc(sizeof(float) * (size_t)k->n_ds * np * E))) blocks_ok = false;
    if (!k->tokens || !k->positions || !k->hooks || (o->resid && !k->resid) || !blocks_ok ||
        (o->logits && (!k->logits || !k->all_logits)) || (o->image_embd && !k->img))
        return ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    for (int i = 0; i < n; i++) k->tokens[i] = ids_seq_row(k->s, i)->token;
    for (int j = 0; j < np; j++) memcpy(k->positions + 3 * j, ids_seq_row(k->s, k->pos[j])->pos, 3 * sizeof(int32_t));
    return IDS_OK;
}

/* A failed edited run: "hook K: ..." about edit K becomes "EDIT NAME: ...". */
static ids_status edit_error(const ids_capture_opts *o, ids_status st, ids_err *err) {
    int k = -1, used = 0;
    if (!err || sscanf(err->msg, "hook %d: %n", &k, &used) != 1 || used == 0 || k < 0 || k >= o->n_edits) return st;
    char tmp[IDS_ERR_MSG_MAX], name[32];
    snprintf(tmp, sizeof tmp, "%s", err->msg + used);
    snprintf(name, sizeof name, "edit %d", k);
    const char *nm = o->edit_names && o->edit_names[k] ? o->edit_names[k] : name;
    snprintf(err->msg, sizeof err->msg, "%.200s: %.300s", nm, tmp);
    return st;
}

/* Build the sequence, run it once with capture hooks (after the edits, when given) and gather the
 * chosen sites. */
static ids_status capture_run(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                              const ids_capture_opts *o, capture *k, ids_err *err) {
    const ids_hparams *hp = ids_model_hparams(v->lm);
    ids_status st = ids_vlm_build_seq(v, prompt, images, n_images, o->n_threads, k->vis, &k->s, err);
    if (st) return st;
    const int n = ids_seq_len(k->s), E = hp->n_embd;
    if ((st = ids_parse_index_list(o->layers ? o->layers : "all", 0, hp->n_layer, &k->layers, &k->nl, err))) return st;
    if (!(k->blocks = ids__malloc(sizeof(int) * (size_t)k->nl))) return ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    for (int l = 0; l < k->nl; l++)
        if (k->layers[l] < hp->n_layer) k->blocks[k->nb++] = k->layers[l];
    if ((st = ids_parse_positions(o->positions, k->s, ids_model_tokenizer(v->lm), &k->pos, &k->np, err))) return st;
    ids_ctx_params cp = ids_ctx_default_params();
    cp.n_ctx = n;
    cp.keep_clean = o->n_edits > 0; /* an edited run starts from the clean one */
    cp.n_threads = o->n_threads;
    cp.precision = o->precision;
    if ((st = ids_ctx_new(&k->c, v->lm, cp, err))) return st;
    if ((st = capture_alloc(v, o, k, err))) return st;
    const int nl = k->nl, np = k->np, nb = k->nb;
    int nh = 0;
    for (int e = 0; e < o->n_edits; e++) k->hooks[nh++] = o->edits[e];
    const ids_sel sel = {.kind = IDS_SEL_LIST, .list = k->pos, .n_list = np};
    if (o->resid)
        for (int l = 0; l < nl; l++)
            k->hooks[nh++] = (ids_hook){.site = IDS_SITE_RESID, .layer = k->layers[l], .action = IDS_ACT_CAPTURE,
                                        .sel = sel, .out = k->resid + (size_t)l * np * E, .len = (size_t)np * E};
    for (int b = 0; b < nb; b++) {
        const size_t one = (size_t)np * E, pone = (size_t)np * hp->n_head * n;
        if (o->attn_out)
            k->hooks[nh++] = (ids_hook){.site = IDS_SITE_ATTN_OUT, .layer = k->blocks[b], .action = IDS_ACT_CAPTURE,
                                        .sel = sel, .out = k->attn_out + b * one, .len = one};
        if (o->mlp_out)
            k->hooks[nh++] = (ids_hook){.site = IDS_SITE_MLP_OUT, .layer = k->blocks[b], .action = IDS_ACT_CAPTURE,
                                        .sel = sel, .out = k->mlp_out + b * one, .len = one};
        if (o->attn_probs)
            k->hooks[nh++] = (ids_hook){.site = IDS_SITE_ATTN_PROBS, .layer = k->blocks[b], .action = IDS_ACT_CAPTURE,
                                        .sel = sel, .out = k->probs + b * pone, .len = pone};
    }
    for (int l = 0; k->ds && l < k->n_ds; l++)
        k->hooks[nh++] = (ids_hook){.site = IDS_SITE_DEEPSTACK, .layer = l, .action = IDS_ACT_CAPTURE, .sel = sel,
                                    .out = k->ds + (size_t)l * np * E, .len = (size_t)np * E};
    for (int l = 0; k->xo && l < hp->n_xattn; l++) {
        k->hooks[nh++] = (ids_hook){.site = IDS_SITE_XATTN_OUT, .layer = hp->xattn_layer[l], .action = IDS_ACT_CAPTURE,
                                    .sel = sel, .out = k->xo + (size_t)l * np * E, .len = (size_t)np * E};
        k->hooks[nh++] = (ids_hook){.site = IDS_SITE_XATTN_GATE, .layer = hp->xattn_layer[l], .action = IDS_ACT_CAPTURE,
                                    .sel = sel, .out = k->xg + (size_t)l * np * 2, .len = (size_t)np * 2};
    }
    ids_run_opts ro = {.logits = o->logits ? IDS_LOGITS_ALL : IDS_LOGITS_NONE};
    ids_run_out out = {.logits = k->all_logits};
    if (o->n_edits) {
        if ((st = ids_ctx_prefill(k->c, k->s, NULL, 0, NULL, NULL, err))) return st;
        if ((st = ids_ctx_run(k->c, k->hooks, nh, &ro, &out, err))) return edit_error(o, st, err);
    } else if ((st = ids_ctx_prefill(k->c, k->s, k->hooks, nh, &ro, &out, err))) {
        return st;
    }
    if (o->logits)
        for (int j = 0; j < np; j++)
            memcpy(k->logits + (size_t)j * hp->n_vocab, k->all_logits + (size_t)k->pos[j] * hp->n_vocab,
                   sizeof(float) * (size_t)hp->n_vocab);
    if (o->image_embd)
        for (int i = 0, j = 0; i < n; i++)
            if (ids_seq_row(k->s, i)->kind == IDS_ROW_IMAGE) {
                memcpy(k->img + (size_t)j * E, ids__seq_embd(k->s, i), sizeof(float) * (size_t)E);
                for (int l = 0; k->img_ds && l < k->n_ds; l++) {
                    const float *d = ids_seq_deepstack(k->s, i, l);
                    float *dst = k->img_ds + ((size_t)l * k->n_img_rows + j) * E;
                    if (d) memcpy(dst, d, sizeof(float) * (size_t)E);
                    else memset(dst, 0, sizeof(float) * (size_t)E);
                }
                j++;
            }
    return IDS_OK;
}

/* The tower's blocks: one tensor [n_run, tokens, n_vembd] for one image, [n_images, ...] when all
 * have the same size, else one tensor per image. */
static ids_status capture_add_vision(const ids_vlm *v, const capture *k, int n_images, ids_st_writer *w,
                                     ids_err *err) {
    const ids_vparams *vp = ids_vision_params(v->vis);
    int64_t vs[4] = {n_images, vp->n_run, k->vis_tokens[0], vp->n_embd};
    if (n_images == 1) return ids_st_writer_add(w, "vision", "F32", 3, vs + 1, k->vis, err);
    if (k->same_tokens) return ids_st_writer_add(w, "vision", "F32", 4, vs, k->vis, err);
    size_t off = 0;
    for (int i = 0; i < n_images; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "vision.%d", i);
        int64_t one[3] = {vp->n_run, k->vis_tokens[i], vp->n_embd};
        ids_status st = ids_st_writer_add(w, nm, "F32", 3, one, k->vis + off, err);
        if (st) return st;
        off += (size_t)vp->n_run * k->vis_tokens[i] * vp->n_embd;
    }
    return IDS_OK;
}

/* s as valid UTF-8 (each byte of a malformed sequence becomes U+FFFD), malloc'd: a byte-level token
 * alone may be part of a character, and safetensors headers are UTF-8 JSON. */
static char *utf8_clean(const char *s) {
    size_t n = strlen(s), k = 0;
    char *o = ids__malloc(3 * n + 1);
    if (!o) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        const unsigned c = u[i];
        int len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = len > 0 && i + (size_t)len <= n;
        for (int j = 1; ok && j < len; j++) ok = (u[i + j] & 0xC0) == 0x80;
        if (ok && len > 2) { /* no overlong forms, surrogates or code points past U+10FFFF */
            const unsigned d = u[i + 1];
            ok = !((c == 0xE0 && d < 0xA0) || (c == 0xED && d >= 0xA0) || (c == 0xF0 && d < 0x90) || (c == 0xF4 && d >= 0x90));
        }
        if (ok) {
            memcpy(o + k, s + i, (size_t)len);
            k += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    o[k] = 0;
    return o;
}

/* Every row's token text, role and cell as JSON metadata ("token_strings", "roles", "cells"), and its
 * temporal patch or InternVL tile ("frames", -1 for text). */
static ids_status capture_rows_meta(const ids_vlm *v, const capture *k, ids_st_writer *w, ids_err *err) {
    const ids_tokenizer *t = ids_model_tokenizer(v->lm);
    cJSON *strs = cJSON_CreateArray(), *roles = cJSON_CreateArray(), *cells = cJSON_CreateArray();
    cJSON *frames = cJSON_CreateArray();
    bool ok = strs && roles && cells && frames;
    for (int i = 0; ok && i < ids_seq_len(k->s); i++) {
        const ids_row *r = ids_seq_row(k->s, i);
        char *raw = r->token >= 0 ? ids_token_to_text(t, r->token) : NULL, *txt = raw ? utf8_clean(raw) : NULL;
        ok = cJSON_AddItemToArray(strs, cJSON_CreateString(r->token >= 0 ? (txt ? txt : "") : "")) &&
             (r->token < 0 || txt) && cJSON_AddItemToArray(roles, cJSON_CreateString(r->kind == IDS_ROW_IMAGE ? "image" : "text"));
        const int cell[3] = {r->image, r->cell_row, r->cell_col};
        ok = ok && cJSON_AddItemToArray(cells, cJSON_CreateIntArray(cell, 3)) &&
             cJSON_AddItemToArray(frames, cJSON_CreateNumber(r->frame));
        free(raw);
        free(txt);
    }
    char *a = ok ? cJSON_PrintUnformatted(strs) : NULL, *b = ok ? cJSON_PrintUnformatted(roles) : NULL;
    char *c = ok ? cJSON_PrintUnformatted(cells) : NULL, *d = ok ? cJSON_PrintUnformatted(frames) : NULL;
    ids_status st = a && b && c && d ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    if (!st) st = ids_st_writer_meta(w, "token_strings", a, err);
    if (!st) st = ids_st_writer_meta(w, "roles", b, err);
    if (!st) st = ids_st_writer_meta(w, "cells", c, err);
    if (!st) st = ids_st_writer_meta(w, "frames", d, err);
    free(a);
    free(b);
    free(c);
    free(d);
    cJSON_Delete(frames);
    cJSON_Delete(strs);
    cJSON_Delete(roles);
    cJSON_Delete(cells);
    return st;
}

/* The capture's tensors and metadata into a safetensors writer. */
static ids_status capture_fill(const ids_vlm *v, const char *prompt, int n_images, const ids_capture_opts *o,
                               const capture *k, ids_st_writer *w, ids_err *err) {
    const ids_hparams *hp = ids_model_hparams(v->lm);
    const int n = ids_seq_len(k->s), E = hp->n_embd, nl = k->nl, np = k->np;
    int64_t sh[4];
    ids_status st;
    sh[0] = n;
    if ((st = ids_st_writer_add(w, "tokens", "I32", 1, sh, k->tokens, err))) return st;
    sh[0] = np, sh[1] = 3;
    if ((st = ids_st_writer_add(w, "positions", "I32", 2, sh, k->positions, err))) return st;
    if (o->resid) {
        sh[0] = nl, sh[1] = np, sh[2] = E;
        if ((st = ids_st_writer_add(w, "resid", "F32", 3, sh, k->resid, err))) return st;
    }
    if (o->logits) {
        sh[0] = np, sh[1] = hp->n_vocab;
        if ((st = ids_st_writer_add(w, "logits", "F32", 2, sh, k->logits, err))) return st;
    }
    if (o->image_embd) {
        sh[0] = k->n_img_rows, sh[1] = E;
        if ((st = ids_st_writer_add(w, "image_embd", "F32", 2, sh, k->img, err))) return st;
        sh[0] = k->n_ds, sh[1] = k->n_img_rows, sh[2] = E;
        if (k->img_ds && (st = ids_st_writer_add(w, "image_embd_deepstack", "F32", 3, sh, k->img_ds, err))) return st;
    }
    sh[0] = k->n_ds, sh[1] = np, sh[2] = E;
    if (k->ds && (st = ids_st_writer_add(w, "deepstack", "F32", 3, sh, k->ds, err))) return st;
    sh[0] = hp->n_xattn;
    if (k->xo && (st = ids_st_writer_add(w, "xattn_out", "F32", 3, sh, k->xo, err))) return st;
    sh[2] = 2;
    if (k->xg && (st = ids_st_writer_add(w, "xattn_gate", "F32", 3, sh, k->xg, err))) return st;
    sh[0] = ids_seq_n_cross(k->s), sh[1] = E;
    if (o->image_embd && sh[0] && (st = ids_st_writer_add(w, "cross_states", "F32", 2, sh, ids_seq_cross(k->s), err)))
        return st;
    const int nb = k->nb;
    sh[0] = nb, sh[1] = np, sh[2] = E;
    if (k->attn_out && (st = ids_st_writer_add(w, "attn_out", "F32", 3, sh, k->attn_out, err))) return st;
    if (k->mlp_out && (st = ids_st_writer_add(w, "mlp_out", "F32", 3, sh, k->mlp_out, err))) return st;
    sh[2] = hp->n_head, sh[3] = n;
    if (k->probs && (st = ids_st_writer_add(w, "attn_probs", "F32", 4, sh, k->probs, err))) return st;
    if (o->vision && n_images > 0 && (st = capture_add_vision(v, k, n_images, w, err))) return st;
    if ((st = capture_rows_meta(v, k, w, err))) return st;
    char *ls = join_ints(k->layers, nl), *ps = join_ints(k->pos, np), *bs = join_ints(k->blocks, nb);
    char buf[64], nlb[16];
    snprintf(buf, sizeof buf, "%d", n_images);
    snprintf(nlb, sizeof nlb, "%d", hp->n_layer);
    st = ls && ps && bs ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    if (!st) st = ids_st_writer_meta(w, "format", "idscope.capture.v1", err);
    if (!st) st = ids_st_writer_meta(w, "model", ids_gguf_path(ids_model_gguf(v->lm)), err);
    if (!st) st = ids_st_writer_meta(w, "prompt", prompt, err);
    if (!st) st = ids_st_writer_meta(w, "layers", ls, err);
    if (!st) st = ids_st_writer_meta(w, "positions", ps, err);
    if (!st) st = ids_st_writer_meta(w, "layer_convention", "layer l = residual stream after l blocks (0 = embeddings)", err);
    if (!st) st = ids_st_writer_meta(w, "block_layers", bs, err);
    if (!st) st = ids_st_writer_meta(w, "hook_names", "resid[i] = blocks.L.hook_resid_pre = blocks.(L-1).hook_resid_post "
                                     "for L = layers[i]; attn_out[j], mlp_out[j], attn_probs[j] = blocks.B.hook_attn_out, "
                                     "blocks.B.hook_mlp_out, blocks.B.attn.hook_pattern (query rows first) for B = "
                                     "block_layers[j]; deepstack[k] = blocks.k.hook_deepstack (Qwen3-VL: the rows "
                                     "added after block k, so layer k + 1 is the stream after the addition); "
                                     "xattn_out[k], xattn_gate[k] = blocks.B.hook_xattn_out, blocks.B.hook_xattn_gate "
                                     "for B = the k-th cross-attention layer (mllama: the output before its gate; "
                                     "the gates tanh(attn), tanh(mlp) x row mask)", err);
    if (!st) st = ids_st_writer_meta(w, "n_layer", nlb, err);
    char *xl = hp->n_xattn ? join_ints(hp->xattn_layer, hp->n_xattn) : NULL;
    if (!st && hp->n_xattn) st = xl ? ids_st_writer_meta(w, "xattn_layers", xl, err) : ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    free(xl);
    if (!st) st = ids_st_writer_meta(w, "n_images", buf, err);
    free(ls);
    free(ps);
    free(bs);
    return st;
}

/* The edits in a provenance: their names (or "edit K: ACTION SITE LAYER"), and each vector's file
 * as an input ("edit K"). */
static ids_status capture_prov_edits(ids_prov *p, const ids_capture_opts *o, ids_err *err) {
    static const char *const acts[] = {"capture", "add", "replace", "scale", "callback"};
    static const char *const sites[] = {"resid", "attn_out", "mlp_out", "attn_probs", "deepstack", "xattn_out",
                                        "xattn_gate"};
    char **names = ids__calloc((size_t)o->n_edits, sizeof *names);
    ids_status st = names ? IDS_OK : ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    for (int e = 0; !st && e < o->n_edits; e++) {
        const ids_hook *h = &o->edits[e];
        char role[32];
        snprintf(role, sizeof role, "edit %d", e);
        if (o->edit_names && o->edit_names[e]) {
            names[e] = ids__strdup(o->edit_names[e]);
        } else if ((names[e] = ids__malloc(96))) {
            snprintf(names[e], 96, "edit %d: %s %s layer %d", e, (unsigned)h->action < 5 ? acts[h->action] : "?",
                     (unsigned)h->site < 7 ? sites[h->site] : "?", h->layer);
        }
        if (!names[e]) st = ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
        if (!st && o->edit_files && o->edit_files[e]) st = ids_prov_input(p, role, o->edit_files[e], err);
    }
    if (!st) ids_prov_opt_strs(p, "edits", (const char *const *)names, o->n_edits);
    for (int e = 0; names && e < o->n_edits; e++) free(names[e]);
    free(names);
    return st;
}

/* The capture's provenance: the models, the prompt, what was captured, each image's pixels by
 * fingerprint (FNV-1a 64 of width, height and RGB bytes), the edits. */
static ids_status capture_prov(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                               const ids_capture_opts *o, ids_prov **out, ids_err *err) {
    ids_status st = ids_prov_new(out, "capture", err);
    if (!st) st = ids_vlm_prov(*out, v, err);
    char **fps = !st && n_images > 0 ? ids__calloc((size_t)n_images, sizeof *fps) : NULL;
    if (!st && n_images > 0 && !fps) st = ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    for (int i = 0; !st && i < n_images; i++) {
        uint64_t h = ids__fnv1a64(IDS_FNV1A64_INIT, &images[i].w, sizeof images[i].w);
        h = ids__fnv1a64(h, &images[i].h, sizeof images[i].h);
        h = ids__fnv1a64(h, images[i].rgb, (size_t)images[i].w * (size_t)images[i].h * 3);
        if (!(fps[i] = ids__malloc(32))) st = ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
        else snprintf(fps[i], 32, "fnv1a64:%016llx", (unsigned long long)h);
    }
    if (!st) {
        ids_prov_opt_str(*out, "prompt", prompt);
        ids_prov_opt_str(*out, "layers", o->layers ? o->layers : "all");
        ids_prov_opt_str(*out, "positions", o->positions ? o->positions : "all");
        const char *sites[9];
        int ns = 0;
        if (o->resid) sites[ns++] = "resid";
        if (o->attn_out) sites[ns++] = "attn_out";
        if (o->mlp_out) sites[ns++] = "mlp_out";
        if (o->attn_probs) sites[ns++] = "attn_probs";
        if (o->logits) sites[ns++] = "logits";
        if (o->image_embd) sites[ns++] = "image_embd";
        if (o->vision) sites[ns++] = "vision";
        if (o->deepstack) sites[ns++] = "deepstack";
        if (o->xattn) sites[ns++] = "xattn";
        ids_prov_opt_strs(*out, "sites", sites, ns);
        if (o->n_edits) st = capture_prov_edits(*out, o, err);
        ids_prov_opt_strs(*out, "images", (const char *const *)fps, n_images);
        ids_prov_run(*out, 0, o->n_threads, ids_precision_name(o->precision));
    }
    for (int i = 0; fps && i < n_images; i++) free(fps[i]);
    free(fps);
    if (st) {
        ids_prov_free(*out);
        *out = NULL;
    }
    return st;
}

/* The provenance as the metadata key "provenance" (JSON text). */
static ids_status capture_meta_prov(ids_prov *prov, ids_st_writer *w, ids_err *err) {
    ids_prov_finish(prov);
    cJSON *pj = ids__prov_json(prov, err);
    char *txt = pj ? cJSON_PrintUnformatted(pj) : NULL;
    cJSON_Delete(pj);
    ids_status st = txt ? ids_st_writer_meta(w, "provenance", txt, err) : ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    free(txt);
    return st;
}

ids_status ids_capture(const ids_vlm *v, const char *prompt, const ids_image *images, int n_images,
                       const ids_capture_opts *o, const char *out_path, ids_err *err) {
    capture k;
    memset(&k, 0, sizeof k);
    ids_st_writer *w = NULL;
    ids_prov *prov = NULL;
    ids_status st = capture_prov(v, prompt, images, n_images, o, &prov, err);
    if (!st) st = capture_plan_vision(v, images, n_images, o, &k, err);
    if (!st) st = capture_run(v, prompt, images, n_images, o, &k, err);
    if (!st && !(w = ids_st_writer_new())) st = ids__err(err, IDS_ERR_NOMEM, "capture: out of memory");
    if (!st) st = capture_fill(v, prompt, n_images, o, &k, w, err);
    if (!st) st = capture_meta_prov(prov, w, err);
    if (!st) st = ids_st_writer_write(w, out_path, err);
    ids_st_writer_free(w);
    ids_prov_free(prov);
    capture_free(&k);
    return st;
}
