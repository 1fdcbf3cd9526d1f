/* convert: a Hugging Face model folder to the GGUF pair llama.cpp reads (text.gguf, mmproj.gguf). */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

typedef struct convert_args {
    const char *dir, *out;
} convert_args;

static const arg_opt convert_opts[] = {
    {.name = "output", .short_name = 'o', .type = ARG_PATH, .flags = ARG_REQUIRED,
     .offset = offsetof(convert_args, out), .meta = "OUTDIR",
     .help = "folder for text.gguf and mmproj.gguf (made when missing)"},
    {0},
};
static const arg_pos convert_pos[] = {{"HF_DIR", offsetof(convert_args, dir), true}, {0}};
static const arg_cmd convert_cmd = {
    "convert",
    "Write a Hugging Face model folder (config.json, safetensors weights, tokenizer files,\n"
    "preprocessor_config.json; model_type llava, qwen2_vl, qwen2_5_vl, gemma3, qwen3_vl,\n"
    "internvl_chat or internvl) as the GGUF pair that\n"
    "llama.cpp's converters write: OUTDIR/text.gguf (decoder and tokenizer) and OUTDIR/mmproj.gguf\n"
    "(vision tower and projector), with their tensor names, keys and layouts (Llama's Q/K rows\n"
    "permuted). The weights keep their type (F32, F16, BF16); norms and biases are F32. These are\n"
    "the bytes idscope reads from the folder itself with -m HF_DIR. A llava_onevision folder\n"
    "(LLaVA-OneVision, LLaVA-Video-Qwen2) has no llama.cpp converter: its mmproj.gguf is idscope's\n"
    "own layout (projector llava_onevision), which llama.cpp does not run.\n",
    convert_opts, convert_pos, NULL};

int cmd_convert(int argc, char **argv) {
    convert_args a = {0};
    int rc = args_parse(&convert_cmd, &a, argc, argv, 1);
    if (rc != ARGS_GO) return rc;
    if (!ids_hf_is_dir(a.dir)) return args_usage("convert", "%s is not a folder", a.dir);
    if (mkdir(a.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "idscope: error: %s: cannot create: %s\n", a.out, strerror(errno));
        return 1;
    }
    ids_err err;
    if (ids_hf_convert(a.dir, a.out, &err)) return fail(&err);
    fprintf(stderr, "wrote %s/text.gguf and %s/mmproj.gguf\n", a.out, a.out);
    return 0;
}
