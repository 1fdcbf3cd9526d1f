/* Commands that run a model: capture (activations), ask (answers), train, eval. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"
#include "edits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- model, images and prompt (capture, ask) --------------------------------------------- */

typedef struct vlm_args {
    const char *model, *mmproj, *prompt, *prompt_file, *question, *video;
    arg_strs images;
    int threads, frames, precision;
    int n_imgs, video_frames; /* images loaded (--image ones, then the video's frames); frames of them */
} vlm_args;

#define VLM_OPTS(T)                                                                                          \
    {.name = "model", .short_name = 'm', .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(T, v.model),    \
     .meta = "TEXT.gguf|DIR", .help = "decoder GGUF (architecture llama, qwen2, qwen2vl, qwen3vl or gemma3), or a "   \
     "Hugging Face model folder (llava, qwen2_vl, qwen2_5_vl, gemma3, qwen3_vl, internvl_chat, internvl, "      \
     "llava_onevision) that holds both parts"},                                                                 \
    {.name = "mmproj", .type = ARG_PATH, .offset = offsetof(T, v.mmproj), .meta = "MMPROJ.gguf",                 \
     .help = "vision tower GGUF (projector mlp, qwen2vl_merger, qwen2.5vl_merger, qwen3vl_merger, internvl, "      \
     "gemma3 or llava_onevision); not with a folder -m"},                                                       \
    {.name = "image", .type = ARG_STRS, .offset = offsetof(T, v.images), .meta = "IMG", .max = 64,                 \
     .help = "PNG/JPEG/BMP/GIF/PGM/PPM; repeat for several <image> markers"},                                     \
    {.name = "video", .type = ARG_PATH, .offset = offsetof(T, v.video), .meta = "V",                               \
     .help = "a video (MP4...) or a folder of frames: --frames T of them, sampled uniformly, after the --image "    \
             "ones; with --question (ask) one <video> (Qwen2-VL, Qwen2.5-VL: temporal patches), else one <image> per "\
             "frame"},                                                                                             \
    {.name = "frames", .type = ARG_INT, .offset = offsetof(T, v.frames), .meta = "T", .min = 1, .max = 32,         \
     .help = "frames of --video, 8 unless given"},                                                                    \
    {.name = "prompt", .short_name = 'p', .type = ARG_STR, .offset = offsetof(T, v.prompt), .meta = "TEXT",       \
     .help = "the full prompt, used verbatim, with <image> where images go"},                                     \
    {.name = "prompt-file", .type = ARG_PATH, .offset = offsetof(T, v.prompt_file), .meta = "F",                   \
     .help = "the same, read from a file"},                                                                       \
    {.name = "question", .short_name = 'q', .type = ARG_STR, .offset = offsetof(T, v.question), .meta = "TEXT",   \
     .help = "a question, wrapped in the model's chat template with the images"},                                 \
    THREADS_OPT(T, v.threads), PRECISION_OPT(T, v.precision)

/* A warning for an image the tower changes much: not square (padded or stretched), or tiny (blown up). */
static void warn_image_shape(const ids_vlm *vlm, const ids_image *img, const char *path) {
    const ids_vision *vis = ids_vlm_vision(vlm);
    const ids_vparams *vp = ids_vision_params(vis);
    ids_vplan plan;
    ids_err err;
    if (ids_vision_plan(vis, img, 1, &plan, &err)) return; /* encoding reports it */
    const int w = img->w, h = img->h, lo = w < h ? w : h, hi = w < h ? h : w;
    const double aspect = (double)hi / (lo > 0 ? lo : 1);
    const bool pads = !vp->dynamic && strcmp(vp->projector, "gemma3") != 0; /* LLaVA-1.5 pads; Qwen, Gemma 3 stretch */
    const bool keeps = !strcmp(vp->projector, "llava_onevision"); /* anyres tiles keep the aspect */
    if (!strcmp(vp->projector, "mllama")) { /* tiles: no distortion; say how it is cut when it is not one tile */
        if (plan.tiles_w * plan.tiles_h > 1 && aspect > 1.5)
            fprintf(stderr, "idscope: warning: %s is %dx%d (aspect %.3g:1); the vision tower (projector mllama) fits it into "
                    "%dx%d tiles of %d px, padded with black\n", path, w, h, aspect, plan.tiles_w, plan.tiles_h, vp->image_size);
        return;
    }
    if (w != h && !keeps && !pads && (aspect > 1.5 || plan.width * plan.height > 4 * w * h))
        fprintf(stderr, "idscope: warning: %s is %dx%d (aspect %.3g:1); the vision tower (projector %s) stretches it to %dx%d\n", path, w, h,
                aspect, vp->projector, plan.width, plan.height);
    else if (w != h && !keeps && pads)
        fprintf(stderr, "idscope: warning: %s is %dx%d, not square (aspect %.3g:1); the vision tower (projector %s) pads it to %dx%d and "
                "resizes it to %dx%d%s\n", path, w, h, aspect, vp->projector, hi, hi, plan.width, plan.height,
                aspect > 4 ? ": the picture fills a thin strip of the input" : "");
    if (hi * 4 <= plan.width && hi * 4 <= plan.height)
        fprintf(stderr, "idscope: warning: %s is only %dx%d pixels; it is blown up to %dx%d\n", path, w, h, plan.width,
                plan.height);
}

/* Images, video frames, model and prompt. Returns 0, or the exit code after the message; the caller
 * frees with vlm_teardown either way. video_mode: with --video and --question the frames are one
 * <video> in the prompt (a tower with a video mode encodes them as temporal patches), else one
 * <image> block each. */
static int vlm_setup(const char *cmd, vlm_args *a, ids_vlm **vlm, ids_image *imgs, char **prompt, bool video_mode) {
    ids_err err;
    *vlm = NULL;
    *prompt = NULL;
    int given = (a->prompt != NULL) + (a->prompt_file != NULL) + (a->question != NULL);
    if (given != 1) return args_usage(cmd, "%s", "give exactly one of --prompt, --prompt-file, --question");
    if (a->frames && !a->video) return args_usage(cmd, "%s", "--frames needs --video");
    if (a->question && !a->images.n && !a->video)
        return args_usage(cmd, "%s", "--question asks about an image: give --image IMG or --video V (for text alone, "
                                     "--prompt with no <image> marker)");
    const int T = a->frames ? a->frames : 8;
    if (a->video && a->images.n + T > 64) return args_usage(cmd, "%s", "more than 64 images and video frames");
    for (int i = 0; i < a->images.n; i++, a->n_imgs++)
        if (ids_image_load(&imgs[i], a->images.v[i], &err)) return fail(&err);
    if (a->video) { /* T frames sampled uniformly, each one image block after the --image ones */
        ids_image *fr;
        if (ids_video_load(a->video, T, &fr, NULL, &err)) return fail(&err);
        for (int k = 0; k < T; k++) imgs[a->n_imgs++] = fr[k];
        free(fr);
        a->video_frames = T;
    }
    if (!a->mmproj && !ids_hf_is_dir(a->model))
        return args_usage(cmd, "%s", "--mmproj is required unless -m is a Hugging Face model folder");
    if (ids_vlm_load(vlm, a->model, a->mmproj, &err)) return fail(&err);
    for (int i = 0; i < a->images.n; i++) warn_image_shape(*vlm, &imgs[i], a->images.v[i]);
    if (a->prompt_file) {
        size_t len;
        *prompt = read_all(a->prompt_file, &len);
        if (!*prompt) {
            fprintf(stderr, "idscope: error: %s: cannot read: %s\n", a->prompt_file, strerror(errno));
            return 1;
        }
    } else if (a->question && video_mode && a->video_frames) { /* the --image markers, then the video's */
        *prompt = ids_vlm_video_prompt(*vlm, a->question, a->n_imgs - a->video_frames);
    } else if (a->question) {
        *prompt = ids_vlm_prompt(*vlm, a->question, a->n_imgs);
    } else {
        *prompt = strdup(a->prompt);
    }
    return *prompt ? 0 : fail_oom();
}

static void vlm_teardown(vlm_args *a, ids_vlm *vlm, ids_image *imgs, char *prompt) {
    for (int k = 0; k < a->n_imgs; k++) ids_image_free(&imgs[k]);
    ids_vlm_free(vlm);
    free(prompt);
}

/* ---- capture ----------------------------------------------------------------------------- */

typedef struct capture_args {
    vlm_args v;
    const char *out, *layers, *positions, *sites;
    bool all;
    arg_groups edits;
    arg_strs cvecs;
} capture_args;

static const arg_opt capture_opts[] = {
    VLM_OPTS(capture_args),
    {.name = "output", .short_name = 'o', .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(capture_args, out),
     .meta = "OUT.safetensors", .help = "the safetensors file (written atomically)"},
    {.name = "layers", .type = ARG_LAYER_LIST, .offset = offsetof(capture_args, layers), .meta = "all|LIST", .min = 0,
     .def = "all", .help = "residual-stream layers, 0 = embeddings .. n_layer; LIST like 0,4,8-12"},
    {.name = "positions", .type = ARG_POSITIONS, .offset = offsetof(capture_args, positions), .meta = "SPEC",
     .def = "all", .help = "all, last, image, text, word:WORD[:N] (N-th occurrence after the image, 0-based), or an "
                           "index list"},
    {.name = "sites", .type = ARG_STR, .offset = offsetof(capture_args, sites), .meta = "LIST", .def = "resid",
     .help = "any of resid,attn_out,mlp_out,attn_probs,logits,image_embd,vision,deepstack,xattn"},
    {.name = "all", .type = ARG_FLAG, .offset = offsetof(capture_args, all),
     .help = "every layer, position and site (attn_probs: n_blocks x n_pos x n_head x n_pos floats)"},
    EDIT_OPTS(capture_args, edits, cvecs),
    {0},
};
static const arg_cmd capture_cmd = {
    "capture",
    "Run prompt + image(s) once and write activations to a safetensors file: tokens I32 [n_pos]\n"
    "(-1 on image rows), positions I32 [n_sel, 3], resid F32 [n_layers, n_sel, n_embd], attn_out and\n"
    "mlp_out F32 [n_blocks, n_sel, n_embd] (the blocks are the --layers below n_layer), attn_probs F32\n"
    "[n_blocks, n_sel, n_head, n_pos], logits F32 [n_sel, n_vocab], image_embd F32 [n_img_rows,\n"
    "n_embd], vision F32 [n_vblocks, n_vis_tokens, n_vembd], Qwen3-VL's deepstack F32 [n_deepstack,\n"
    "n_sel, n_embd] (the rows added after blocks 0.., zero on text rows) and image_embd_deepstack F32\n"
    "[n_deepstack, n_img_rows, n_embd] (the tower's DeepStack rows), Llama-3.2-Vision's xattn_out F32\n"
    "[n_xattn, n_sel, n_embd] and xattn_gate F32 [n_xattn, n_sel, 2] (each cross-attention layer's output\n"
    "before its gate, and its two gates per row) and cross_states F32 [n_cross, n_embd] (the images'\n"
    "cross-attention states, with image_embd), with metadata naming the layers, blocks\n"
    "and positions, every row's token text, role and cell, and the TransformerLens names of the\n"
    "sites (Python: idscope.load_capture). With --add / --replace the run is edited first and the\n"
    "captures see the edited stream. Give exactly one of --prompt, --prompt-file and --question.\n",
    capture_opts, NULL, EDIT_NOTES IMAGE_INPUT_NOTES};

/* --sites LIST into the capture options; EXIT_USAGE on an unknown site. */
static int capture_sites(const char *list, ids_capture_opts *co) {
    for (const char *t = list; *t;) {
        size_t n = strcspn(t, ","); /* 0: an empty item, as in "resid,,logits" */
        if (n == 5 && !strncmp(t, "resid", n)) co->resid = true;
        else if (n == 8 && !strncmp(t, "attn_out", n)) co->attn_out = true;
        else if (n == 7 && !strncmp(t, "mlp_out", n)) co->mlp_out = true;
        else if (n == 10 && !strncmp(t, "attn_probs", n)) co->attn_probs = true;
        else if (n == 6 && !strncmp(t, "logits", n)) co->logits = true;
        else if (n == 10 && !strncmp(t, "image_embd", n)) co->image_embd = true;
        else if (n == 6 && !strncmp(t, "vision", n)) co->vision = true;
        else if (n == 9 && !strncmp(t, "deepstack", n)) co->deepstack = true;
        else if (n == 5 && !strncmp(t, "xattn", n)) co->xattn = true;
        else if (n) return args_bad("capture", "--sites", list, "has an unknown site '%.*s' (resid, attn_out, mlp_out, attn_probs, logits, "
                                    "image_embd, vision, deepstack, xattn)",
                             (int)n, t);
        t += n + (t[n] == ',');
    }
    return ARGS_GO;
}

/* -o names the file written, always safetensors: a name that promises another format is refused. */
static int capture_out_name(const char *out) {
    static const char *const other[] = {".npz", ".npy", ".pt", ".pth", ".pkl", ".h5", ".hdf5", ".json", ".gguf", ".csv"};
    const char *dot = strrchr(out, '.');
    for (size_t i = 0; dot && !strchr(dot, '/') && i < sizeof other / sizeof *other; i++)
        if (!strcasecmp(dot, other[i]))
            return args_bad("capture", "-o", out, "names a %s file, but capture writes safetensors: give OUT.safetensors "
                            "(NumPy reads it with idscope.load_capture or safetensors.numpy.load_file)", other[i]);
    return ARGS_GO;
}

int cmd_capture(int argc, char **argv) {
    capture_args a = {0};
    int rc = args_parse(&capture_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (a.all) {
        a.layers = "all";
        a.positions = "all";
        a.sites = "resid,attn_out,mlp_out,attn_probs,logits,image_embd,vision,deepstack,xattn";
    }
    ids_capture_opts co = {.layers = a.layers, .positions = a.positions, .n_threads = a.v.threads,
                           .precision = (ids_precision)a.v.precision};
    if ((rc = capture_sites(a.sites, &co)) != ARGS_GO) return rc;
    if ((rc = capture_out_name(a.out)) != ARGS_GO) return rc;
    if ((rc = args_check_model(&capture_cmd, &a, a.v.model)) != ARGS_GO) return rc;
    cli_edits ed;
    if ((rc = edits_prepare("capture", &a.edits, &a.cvecs, a.v.model, &ed))) {
        edits_free(&ed);
        return rc;
    }
    co.edits = ed.hooks;
    co.n_edits = ed.n;
    co.edit_names = ed.names;
    co.edit_files = ed.files;
    ids_vlm *vlm;
    ids_image imgs[64] = {{0}};
    char *prompt;
    rc = vlm_setup("capture", &a.v, &vlm, imgs, &prompt, false);
    if (!rc) rc = edits_bind(&ed, ids_model_hparams(ids_vlm_model(vlm))->n_embd);
    if (!rc) {
        ids_err err;
        fprintf(stderr, "capture: encoding %d image%s and running the prompt...\n", a.v.n_imgs, a.v.n_imgs == 1 ? "" : "s");
        if (ids_capture(vlm, prompt, imgs, a.v.n_imgs, &co, a.out, &err)) {
            rc = fail(&err);
        } else {
            char *own;
            fprintf(stderr, "wrote %s\n", path_show(a.out, &own));
            free(own);
        }
    }
    vlm_teardown(&a.v, vlm, imgs, prompt);
    edits_free(&ed);
    return rc;
}

/* ---- ask --------------------------------------------------------------------------------- */

typedef struct ask_args {
    vlm_args v;
    int n_new;
    const char *choices;
    bool json;
    arg_groups edits;
    arg_strs cvecs;
} ask_args;

static const arg_opt ask_opts[] = {
    VLM_OPTS(ask_args),
    {.name = "n", .type = ARG_INT, .offset = offsetof(ask_args, n_new), .meta = "N", .min = 0, .max = 4096, .def = "16",
     .help = "answer length in tokens"},
    {.name = "choices", .type = ARG_STR, .offset = offsetof(ask_args, choices), .meta = "LIST",
     .help = "comma-separated candidate answers, e.g. \" left, right\""},
    {.name = "json", .type = ARG_FLAG, .offset = offsetof(ask_args, json), .help = "print one JSON object instead of text"},
    EDIT_OPTS(ask_args, edits, cvecs),
    {0},
};
static const arg_cmd ask_cmd = {
    "ask",
    "Greedy answer of the model to --question (or --prompt / --prompt-file) about --image or --video,\n"
    "and with --choices the log-probability of each choice as the next token (a choice's token is the\n"
    "last piece of tokenize(\" \" + choice), the paper's word rule). With --add / --replace the\n"
    "answer and the log-probabilities are those of the edited run, and each choice's unedited\n"
    "log-probability is printed beside it.\n",
    ask_opts, NULL, EDIT_NOTES IMAGE_INPUT_NOTES};

typedef struct ask_choices {
    char *buf, *names[64];
    int32_t tok[64];
    float lp[64], lp_clean[64]; /* log-probabilities of the run (edited, when edits are given) and unedited */
    int n;
} ask_choices;

/* The candidate tokens of --choices (spaces before a choice ignored). 0 or the exit code. */
static int ask_parse_choices(const char *list, const ids_tokenizer *tok, ask_choices *c) {
    ids_err err;
    char *save = NULL;
    if (!list) return 0;
    if (!(c->buf = strdup(list))) return fail_oom();
    for (char *t = strtok_r(c->buf, ",", &save); t && c->n < 64; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        int32_t id = ids_tokenizer_word_token(tok, t, &err);
        if (id < 0) return fail(&err);
        c->names[c->n] = t;
        c->tok[c->n++] = id;
    }
    return 0;
}

static void json_str(const char *s) {
    fputc('"', stdout);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else fputc(c, stdout);
    }
    fputc('"', stdout);
}

static void ask_print(const ask_args *a, const ids_tokenizer *tok, const char *answer, const ask_choices *c, bool edited) {
    if (a->json) {
        printf("{\"answer\": ");
        json_str(answer ? answer : "");
        printf(", \"choices\": [");
        for (int i = 0; i < c->n; i++) {
            printf("%s{\"choice\": ", i ? ", " : "");
            json_str(c->names[i]);
            printf(", \"token\": %d, \"logprob\": %.6f", c->tok[i], c->lp[i]);
            if (edited) printf(", \"logprob_unedited\": %.6f", c->lp_clean[i]);
            printf("}");
        }
        printf("]}\n");
    } else {
        if (answer && *answer) printf("answer: %s\n", answer);
        else printf("answer: (empty: %s)\n", a->n_new ? "the model ended its answer at once" : "-n 0 asks for none");
        for (int i = 0; i < c->n; i++) {
            printf("log P(%s) = %.4f  (token %d '%s')", c->names[i], c->lp[i], c->tok[i], ids_tokenizer_piece(tok, c->tok[i]));
            if (edited) printf("  unedited %.4f", c->lp_clean[i]);
            putchar('\n');
        }
    }
}

/* A warning when the prompt and the answer come near the model's trained context, or pass it. */
static void warn_context(const ids_model *m, int n_prompt, int n_new) {
    const int c = ids_model_hparams(m)->n_ctx_train;
    if (c <= 0) return;
    if (n_prompt + n_new > c)
        fprintf(stderr, "idscope: warning: the prompt is %d rows and the answer up to %d tokens: %d in all, past the "
                "model's context of %d (the last tokens are generated beyond the length it was trained on)\n",
                n_prompt, n_new, n_prompt + n_new, c);
    else if (n_prompt + n_new > c - c / 10)
        fprintf(stderr, "idscope: warning: the prompt is %d rows and the answer up to %d tokens: %d of the model's "
                "context of %d (%.0f%%)\n", n_prompt, n_new, n_prompt + n_new, c, 100.0 * (n_prompt + n_new) / c);
}

/* Prefill (with the choices' log-probabilities), the edited run when edits are given, generate (with
 * the edits), print. */
static int ask_run(const ask_args *a, const ids_vlm *vlm, const ids_image *imgs, const char *prompt, ask_choices *c,
                   const cli_edits *ed) {
    const ids_model *m = ids_vlm_model(vlm);
    ids_err err;
    ids_seq *s = NULL;
    ids_ctx *ctx = NULL;
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)(a->n_new + 1));
    int n_gen = 0, rc = gen ? 0 : fail_oom();
    const int vf = strstr(prompt, IDS_VIDEO_MARKER) ? a->v.video_frames : 0;
    if (!rc && ids_vlm_build_video_seq(vlm, prompt, imgs, a->v.n_imgs, vf, a->v.threads, NULL, &s, &err)) rc = fail(&err);
    if (!rc) warn_context(m, ids_seq_len(s), a->n_new);
    if (!rc) {
        ids_ctx_params cp = ids_ctx_default_params();
        cp.n_ctx = ids_seq_len(s) + a->n_new;
        cp.max_rows = ids_seq_len(s);
        cp.n_threads = a->v.threads;
        cp.precision = (ids_precision)a->v.precision;
        cp.keep_clean = ed->n > 0; /* the edited run starts from the clean one */
        ids_run_opts ro = {.cand = c->tok, .n_cand = c->n};
        ids_run_out out = {.cand_logprob = ed->n ? c->lp_clean : c->lp}, eout = {.cand_logprob = c->lp};
        if (ids_ctx_new(&ctx, m, cp, &err) || ids_ctx_prefill(ctx, s, NULL, 0, &ro, &out, &err)) rc = fail(&err);
        else if (ed->n && c->n && ids_ctx_run(ctx, ed->hooks, ed->n, &ro, &eout, &err)) rc = edits_fail(ed, &err);
        else if (ids_ctx_generate(ctx, ed->hooks, ed->n, a->n_new, gen, &n_gen, &err)) rc = edits_fail(ed, &err);
    }
    if (!rc) {
        char *answer = NULL;
        ids_detokenize(ids_model_tokenizer(m), gen, (size_t)n_gen, false, true, &answer, &err);
        ask_print(a, ids_model_tokenizer(m), answer, c, ed->n > 0);
        free(answer);
    }
    free(gen);
    ids_ctx_free(ctx);
    ids_seq_free(s);
    return rc;
}

int cmd_ask(int argc, char **argv) {
    ask_args a = {0};
    int rc = args_parse(&ask_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_vlm *vlm;
    ids_image imgs[64] = {{0}};
    char *prompt;
    ask_choices c = {0};
    cli_edits ed;
    if ((rc = edits_prepare("ask", &a.edits, &a.cvecs, a.v.model, &ed))) {
        edits_free(&ed);
        return rc;
    }
    rc = vlm_setup("ask", &a.v, &vlm, imgs, &prompt, true);
    if (!rc) rc = edits_bind(&ed, ids_model_hparams(ids_vlm_model(vlm))->n_embd);
    if (!rc) rc = ask_parse_choices(a.choices, ids_model_tokenizer(ids_vlm_model(vlm)), &c);
    if (!rc) rc = ask_run(&a, vlm, imgs, prompt, &c, &ed);
    free(c.buf);
    vlm_teardown(&a.v, vlm, imgs, prompt);
    edits_free(&ed);
    return rc;
}

/* ---- train ------------------------------------------------------------------------------- */

typedef struct train_args {
    const char *config, *out;
    int threads;
} train_args;

static const arg_opt train_opts[] = {
    {.name = "config", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(train_args, config),
     .meta = "CONFIG.json", .help = "the training configuration (keys below)"},
    {.name = "out", .type = ARG_PATH, .flags = ARG_REQUIRED, .offset = offsetof(train_args, out), .meta = "DIR",
     .help = "output folder"},
    {.name = "threads", .short_name = 't', .type = ARG_INT, .offset = offsetof(train_args, threads), .meta = "N",
     .min = 0, .max = 256, .def = "0", .help = "compute threads, 0 = the config's threads"},
    {0},
};
static const arg_cmd train_cmd = {
    "train",
    "Train the tiny LLaVA-layout VLM on the stimulus engine's tasks and write DIR/text.gguf and\n"
    "DIR/mmproj.gguf (plus DIR/train-log.jsonl and DIR/ckpt-STEP/ checkpoints when asked).\n"
    "Progress (step, loss, held-out accuracy, tokens/s) goes to stderr.\n",
    train_opts, NULL,
    "CONFIG keys (defaults): image_size 64, patch_size 16, vit_width 64, vit_layers 3, vit_heads 4,\n"
    "vit_ff 256, width 128, layers 6, heads 4, ff 352, frames 8, holdout 0.1, batch 32, warmup 100,\n"
    "eval_every 250, checkpoint_every 0, lr 0.002, min_lr 0.0001, weight_decay 0.01, clip 1, seed 1,\n"
    "threads 0 (all cores), shards 2 (a batch split into shards run side by side; the result\n"
    "depends on shards, not on threads), aux_weight 0 and aux_layer (the auxiliary location loss at\n"
    "the question's object words, read from the residual entering block aux_layer), init_from \"\"\n"
    "(a folder with text.gguf + mmproj.gguf to start from, fresh optimiser),\n"
    "stages [{\"steps\": N, \"weights\": {TASK: weight, ...}}] with tasks\n"
    "describe, left-right, above-below, front-behind, near-far, before-after, text-spatial, locate, where.\n"
    "Every number is range-checked before use, and the sizes must agree: heads divide width (and\n"
    "vit_heads vit_width) into even head sizes, patch_size divides image_size into at most 32 patches a\n"
    "side, frames x patches at most 2048, shards at most batch; a message names the key at fault.\n"};

/* The trainer's steps as progress; its other messages (evaluations) as lines. */
static void train_progress(const char *what, long done, long total, void *user) {
    if (!strcmp(what, "train")) print_progress("train: steps", done, total, user);
    else if (!args_quiet()) fprintf(stderr, "%s\n", what);
}

int cmd_train(int argc, char **argv) {
    train_args a = {0};
    int rc = args_parse(&train_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    ids_train_config c;
    ids_err err;
    if (ids_train_config_load(a.config, &c, &err)) return fail(&err);
    if (a.threads) c.threads = a.threads;
    if (ids_train(&c, a.out, train_progress, NULL, &err)) return fail(&err);
    char *own;
    const char *dir = path_show(a.out, &own);
    fprintf(stderr, "\nwrote %s/text.gguf and %s/mmproj.gguf\n", dir, dir);
    free(own);
    return 0;
}

/* ---- eval -------------------------------------------------------------------------------- */

typedef struct eval_args {
    model_args m;
    int task, n, held, threads, precision;
    uint64_t seed;
    bool json;
    const char *out;
    ids_exp x; /* --shard */
} eval_args;

#define EVAL_ALL (-1)
static const arg_choice eval_tasks[] = {
    {"left-right", IDS_TASK_LEFT_RIGHT}, {"above-below", IDS_TASK_ABOVE_BELOW}, {"front-behind", IDS_TASK_FRONT_BEHIND},
    {"near-far", IDS_TASK_NEAR_FAR}, {"before-after", IDS_TASK_BEFORE_AFTER}, {"all", EVAL_ALL}, {0}};
static const arg_choice eval_held[] = {{"only", 1}, {"exclude", 0}, {"all", -1}, {0}};

static const arg_opt eval_opts[] = {
    MODEL_OPTS(eval_args),
    {.name = "task", .type = ARG_CHOICE, .flags = ARG_REQUIRED, .offset = offsetof(eval_args, task), .meta = "TASK",
     .choices = eval_tasks, .help = "the task, or all of them"},
    {.name = "n", .type = ARG_INT, .offset = offsetof(eval_args, n), .meta = "N", .min = 1, .max = INT_MAX, .def = "500",
     .help = "questions per task"},
    {.name = "seed", .type = ARG_U64, .offset = offsetof(eval_args, seed), .meta = "S", .min = 0, .max = LLONG_MAX,
     .def = "1", .help = "evaluation seed"},
    {.name = "held-out", .type = ARG_CHOICE, .offset = offsetof(eval_args, held), .meta = "MODE", .choices = eval_held,
     .def = "all", .help = "object pairs: only the held-out ones, exclude them, or all"},
    {.name = "json", .type = ARG_FLAG, .offset = offsetof(eval_args, json),
     .help = "print one object {\"TASK\": accuracy, ...}"},
    THREADS_OPT(eval_args, threads), PRECISION_OPT(eval_args, precision),
    {.name = "out", .type = ARG_PATH, .offset = offsetof(eval_args, out), .meta = "DIR",
     .help = "also write DIR/eval.json (with provenance) and DIR/eval.csv; keeps each verdict in DIR/items.bin "
             "as it goes (a rerun resumes)"},
    SHARD_OPT(eval_args, x),
    {0},
};
static const arg_cmd eval_cmd = {
    "eval",
    "Accuracy on fresh stimuli, measured with the engine: the answer is the likelier of the two\n"
    "answer words at the answer position. Prints one line per task, 'TASK accuracy CORRECT/N', or\n"
    "with --json one object {\"TASK\": accuracy, ...}. The model defaults to the bundled one.\n"
    "With --out, also the result files; --shard I/N (with --out) runs the questions numbered\n"
    "i % N == I, task by task, for 'idscope merge' (docs/CLUSTER.md).\n",
    eval_opts, NULL, NULL};

/* The accuracies, as lines or one JSON object. */
static void eval_print(const ids_eval_result *r, bool json) {
    if (json) printf("{");
    for (int k = 0; k < r->n_tasks; k++) {
        const char *name = ids_task_name(r->task[k]);
        if (json) printf("%s\"%s\": %.4f", k ? ", " : "", name, (double)r->correct[k] / (double)r->n);
        else printf("%s accuracy %d/%d\n", name, r->correct[k], r->n);
    }
    if (json) printf("}\n");
}

/* With --out (and --shard): one run over the tasks with provenance, kept items and result files. */
static int eval_to_folder(const eval_args *a, const ids_vlm *v, const ids_task *tasks, int n_tasks, const ids_train_config *c,
                          ids_exp *x) {
    ids_eval_opts o = {.exp = *x, .tasks = tasks, .n_tasks = n_tasks, .n = a->n, .held_out = a->held, .config = c};
    o.exp.seed = a->seed, o.exp.n_threads = a->threads, o.exp.precision = (ids_precision)a->precision;
    ids_eval_result r = {0};
    ids_err err;
    int rc = 0;
    if (ids_eval_run(v, &o, &r, print_progress, NULL, &err)) rc = fail(&err);
    if (!rc && x->shard.count > 0) exp_shard_note(x, a->out);
    else if (!rc && ids_eval_write(a->out, &r, &err)) rc = fail(&err);
    else if (!rc) eval_print(&r, a->json);
    ids_eval_result_free(&r);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {0};
    int rc = args_parse(&eval_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (a.x.shard.count > 0 && !a.out) return args_usage("eval", "%s", "--shard needs --out (the shard's items go there)");
    if ((rc = model_resolve("eval", &a.m))) {
        model_args_free(&a.m);
        return rc;
    }
    exp_env env;
    if (a.out && (rc = exp_prepare(&eval_cmd, &a, &a.x, &env))) {
        model_args_free(&a.m);
        return rc;
    }
    ids_err err;
    ids_vlm *v = NULL;
    if (!rc && ids_vlm_load(&v, a.m.model, a.m.mmproj, &err)) rc = fail(&err);
    ids_train_config c;
    ids_task tasks[IDS_TASK_COUNT];
    int n_tasks = 0;
    for (int k = 0; eval_tasks[k].value != EVAL_ALL; k++)
        if (a.task == EVAL_ALL || a.task == eval_tasks[k].value) tasks[n_tasks++] = (ids_task)eval_tasks[k].value;
    if (!rc) ids_eval_default_config(v, &c);
    if (!rc && a.out) rc = eval_to_folder(&a, v, tasks, n_tasks, &c, &a.x);
    int printed = 0;
    for (int k = 0; !rc && !a.out && k < n_tasks; k++) { /* task by task, each line as soon as it is known */
        int correct = 0;
        if (ids_eval_task(v, tasks[k], a.n, a.seed, a.held, &c, a.threads, (ids_precision)a.precision, &correct, &err)) {
            rc = fail(&err);
            break;
        }
        if (a.json) printf("%s\"%s\": %.4f", k ? ", " : "{", ids_task_name(tasks[k]), (double)correct / (double)a.n);
        else printf("%s accuracy %d/%d\n", ids_task_name(tasks[k]), correct, a.n);
        printed++;
        fflush(stdout);
    }
    if (a.json && printed) printf("}\n");
    ids_vlm_free(v);
    if (a.out) exp_close(&env, &a.m);
    model_args_free(&a.m);
    return rc;
}
