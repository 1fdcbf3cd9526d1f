/* The idscope commands: each parses its own option table (args.h) and returns the exit code
 * (0 success, 1 runtime failure, 2 usage error). argv[0] is the command's name. */
#ifndef IDSCOPE_CLI_COMMANDS_H
#define IDSCOPE_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);     /* cmd_files.c */
int cmd_tensor(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_capture(int argc, char **argv);  /* cmd_model.c */
int cmd_ask(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_stimuli(int argc, char **argv);  /* cmd_stimuli.c */
int cmd_ids(int argc, char **argv);      /* cmd_exp.c */
int cmd_swap(int argc, char **argv);
int cmd_steer(int argc, char **argv);
int cmd_depth(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_deviation(int argc, char **argv); /* cmd_fig8.c */
int cmd_mask(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_temporal(int argc, char **argv); /* cmd_temporal.c */
int cmd_demo(int argc, char **argv);     /* cmd_demo.c */
int cmd_bench(int argc, char **argv);    /* cmd_bench.c */
int cmd_convert(int argc, char **argv);  /* cmd_convert.c */
int cmd_merge(int argc, char **argv);    /* cmd_merge.c */
/* Run the command argv[0] (main.c's table) with its arguments. */
int cli_dispatch(int argc, char **argv);

/* ids export-cvec (cmd_cvec.c), a subcommand of ids */
struct arg_cmd;
extern const struct arg_cmd ids_export_cvec_cmd;
int run_ids_export_cvec(const struct arg_cmd *spec, int argc, char **argv);

#endif /* IDSCOPE_CLI_COMMANDS_H */
