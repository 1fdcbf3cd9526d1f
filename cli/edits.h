/* Edits of a run from the command line (ask, capture): --add VEC --layer L --positions SEL --scale F
 * and --replace VEC ..., repeatable, each its own group of options (args.h), turned into engine
 * hooks. VEC is a .npy file or FILE.safetensors[:TENSOR], optionally indexed: v.npy[2],
 * ids.safetensors:universal[3,1,0,0]; what remains is one vector [n_embd] (every selected row) or
 * rows [n_sel, n_embd]. L is a residual layer (0 = embeddings .. n_layer), or a hook name:
 * blocks.B.hook_resid_pre (layer B), blocks.B.hook_resid_post (layer B + 1), blocks.B.hook_attn_out,
 * blocks.B.hook_mlp_out (the outputs of block B's attention and MLP), attn_out:B, mlp_out:B;
 * blocks.B.hook_deepstack, deepstack:B (Qwen3-VL: the DeepStack rows added after block B). */
#ifndef IDSCOPE_CLI_EDITS_H
#define IDSCOPE_CLI_EDITS_H

#include "common.h"

enum { EDIT_LAYER = 0, EDIT_POSITIONS = 1, EDIT_SCALE = 2 };

/* The options of a command with edits; f is its arg_groups field, cv its arg_strs of control vectors. */
#define EDIT_OPTS(T, f, cv)                                                                                          \
    {.name = "add", .type = ARG_GROUP, .offset = offsetof(T, f), .meta = "VEC",                                       \
     .help = "add a vector (.npy, or FILE.safetensors:TENSOR; [i,j] picks a slice) to the rows chosen by the "       \
             "--layer, --positions and --scale that follow it"},                                                     \
    {.name = "replace", .type = ARG_GROUP, .offset = offsetof(T, f), .meta = "VEC",                                  \
     .help = "replace the chosen rows by a vector (the same on every row) or by rows [n_sel, n_embd]; --layer, "     \
             "--positions and --scale follow it"},                                                                    \
    {.name = "layer", .type = ARG_STR, .flags = ARG_MEMBER, .offset = offsetof(T, f), .slot = EDIT_LAYER,            \
     .meta = "L", .help = "(of an edit) a residual layer 0..n_layer, or blocks.B.hook_resid_pre, hook_resid_post, "   \
                          "hook_attn_out, hook_mlp_out, hook_deepstack; required"},                                   \
    {.name = "positions", .type = ARG_POSITIONS, .flags = ARG_MEMBER, .offset = offsetof(T, f),                       \
     .slot = EDIT_POSITIONS, .meta = "SEL", .help = "(of an edit) the rows it changes, as --positions; default all"}, \
    {.name = "scale", .type = ARG_FLOAT, .flags = ARG_MEMBER, .offset = offsetof(T, f), .slot = EDIT_SCALE,           \
     .meta = "F", .fmin = -INFINITY, .fmax = INFINITY, .help = "(of an edit) multiply the vector by F; default 1"},   \
    {.name = "control-vector", .type = ARG_STRS, .offset = offsetof(T, cv), .meta = "FILE", .max = 8,               \
     .help = "a llama.cpp control vector (GGUF): each direction.K added at every row after block K (residual "     \
             "layer K + 1), as llama.cpp's --control-vector does; before the edits"}

/* The notes of the commands with edits. */
#define EDIT_NOTES                                                                                              \
    "Edits: each --add VEC or --replace VEC takes the --layer, --positions and --scale given after it\n"          \
    "(before the next --add or --replace); repeat for several, applied in order. VEC is a .npy file or\n"          \
    "FILE.safetensors[:TENSOR], with [i,j,...] picking a slice (ids.safetensors:universal[3,1,0,0]); what\n"      \
    "remains is one vector [n_embd] or rows [n_sel, n_embd]. --layer L is a residual layer (0 = the\n"           \
    "embeddings, L = after L blocks), or a hook name: blocks.B.hook_resid_pre (= layer B),\n"                    \
    "blocks.B.hook_resid_post (= layer B + 1), blocks.B.hook_attn_out, blocks.B.hook_mlp_out (what\n"             \
    "block B's attention / MLP adds to the stream; also attn_out:B, mlp_out:B), blocks.B.hook_deepstack\n"        \
    "(Qwen3-VL: the DeepStack rows added after block B, so that layer B + 1 is after them; deepstack:B).\n\n"

typedef struct cli_edit {
    float *data;   /* the vector or rows, scaled (owned) */
    int rows;      /* 0: one vector; else the rows of a [rows, width] array */
    int width;
    int *list;     /* an index list's rows (owned) */
    char word[256];
} cli_edit;

typedef struct cli_edits {
    int n, cap;
    cli_edit *e;
    ids_hook *hooks;
    const char **names; /* "--add v.npy --layer 3 --positions word:circle --scale 0.5" (owned) */
    const char **files; /* each vector's file (in argv) */
} cli_edits;

/* Read the control vectors (their directions beyond the model's blocks are left out with a note, as
 * llama.cpp has no place for them), then check the groups (the layers against the model's header,
 * before it is loaded) and read their vectors. Returns 0 or the exit code after the message;
 * edits_free either way. */
int edits_prepare(const char *cmd, const arg_groups *g, const arg_strs *cvecs, const char *text_gguf, cli_edits *out);
/* The vectors against the loaded model's width. 0 or 1 after the message. */
int edits_bind(cli_edits *e, int n_embd);
void edits_free(cli_edits *e);
/* A failed run: "hook K: ..." about edit K is named by the edit's options; returns 1. */
int edits_fail(const cli_edits *e, const ids_err *err);

#endif /* IDSCOPE_CLI_EDITS_H */
