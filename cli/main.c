/* The idscope command-line tool: the table of commands. Uses only the public API; the only place
 * that exits. Each command (cli/cmd_*.c) parses its own option table with the one parser of args.c.
 * Exit codes: 0 success, 1 runtime failure (bad file, missing tensor, ...), 2 usage error. */
#include "idscope.h"
#include "args.h"
#include "commands.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"info", "header, metadata and tensor table of a GGUF file", cmd_info},
    {"tensor", "dequantize one tensor of a GGUF file to a float32 .npy", cmd_tensor},
    {"tokenize", "tokenize text with a model's tokenizer", cmd_tokenize},
    {"convert", "a Hugging Face model folder as the GGUF pair llama.cpp reads", cmd_convert},
    {"capture", "run prompt + image(s) and save activations (safetensors)", cmd_capture},
    {"ask", "a VLM's greedy answer and the log-probabilities of chosen answers", cmd_ask},
    {"stimuli", "synthetic scenes and videos with ground truth (grid, depth, nearfar, between, video)", cmd_stimuli},
    {"train", "train the tiny default VLM from a config", cmd_train},
    {"eval", "accuracy of a VLM on fresh stimuli, per task", cmd_eval},
    {"ids", "spatial IDs: ids extract, ids stats, ids export-cvec (a llama.cpp control vector)", cmd_ids},
    {"swap", "mirror / attribute swapping by activation patching, per layer and position set", cmd_swap},
    {"steer", "steering with IDs: steer belief (vs noise), steer grid (every target cell)", cmd_steer},
    {"depth", "depth diagnosis: vertical ID steering read by above/below and front/behind", cmd_depth},
    {"deviation", "ground-truth deviation of the IDs on an image set, right vs wrong (Mann-Whitney U)", cmd_deviation},
    {"mask", "blur of the named object's box vs random boxes: answer and accuracy changes", cmd_mask},
    {"compare", "accuracy against steerability across models: several demo folders in one table and plot", cmd_compare},
    {"score", "ID-strength score per layer (linearity x consistency x causal effect)", cmd_score},
    {"report", "self-contained HTML report of a results folder", cmd_report},
    {"temporal", "temporal IDs in videos: temporal extract, temporal swap, temporal steer", cmd_temporal},
    {"merge", "join the shards of a run (--shard I/N) into its result files", cmd_merge},
    {"demo", "every experiment on the bundled model: report.html and summary.json", cmd_demo},
    {"bench", "speed: bench prefill (tokens/s, GFLOP/s; --compare with llama.cpp's llama-bench)", cmd_bench},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static void print_help(FILE *f) {
    fprintf(f, "idscope " IDS_VERSION_STRING " - find, test and steer spatial and temporal IDs in VLMs\n\n");
    fprintf(f, "usage: idscope COMMAND [options]      (idscope COMMAND --help for each)\n\ncommands:\n");
    for (int k = 0; k < N_COMMANDS; k++) fprintf(f, "  %-9s %s\n", commands[k].name, commands[k].summary);
    fprintf(f, "\nexit status: 0 success, 1 failure (bad input file, missing tensor...), 2 usage error\n");
}

int cli_dispatch(int argc, char **argv) {
    for (int k = 0; k < N_COMMANDS; k++)
        if (!strcmp(argv[0], commands[k].name)) return commands[k].run(argc, argv);
    fprintf(stderr, "idscope: unknown command '%s'\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("idscope %s\n", IDS_VERSION_STRING);
        return 0;
    }
    for (int k = 0; k < N_COMMANDS; k++)
        if (!strcmp(cmd, commands[k].name)) {
            cli_set_command_line(argc - 1, argv + 1);
            return commands[k].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "idscope: unknown command '%s'\n\n", cmd);
    print_help(stderr);
    return EXIT_USAGE;
}
