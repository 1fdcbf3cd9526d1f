/* Declarative command lines. A command describes its options in a table (name, short alias, type,
 * valid range, default, help) and its positional arguments in another; one parser reads argv
 * against them into the command's value struct, applies the defaults, refuses unknown options,
 * missing and bad values with one message form, and prints the --help generated from the tables.
 * Layer options are checked against the model's layer count (read from the GGUF header) by
 * args_check_model before the model is loaded. */
#ifndef IDSCOPE_CLI_ARGS_H
#define IDSCOPE_CLI_ARGS_H

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2
#define ARGS_GO (-1)      /* args_parse: the command goes on (else: the exit code, 0 after --help) */
#define ARGS_MAX_LIST 1024  /* values of a repeatable option */
#define ARGS_MAX_FLOATS 16

typedef enum arg_type {
    ARG_FLAG,       /* bool; takes no value */
    ARG_INT,        /* int in min..max */
    ARG_U64,        /* uint64_t in min..max (seeds) */
    ARG_FLOAT,      /* float in fmin..fmax (fmin excluded with ARG_GT_MIN) */
    ARG_STR,        /* const char *: any text */
    ARG_PATH,       /* const char *: a file or folder name (not empty) */
    ARG_CHOICE,     /* int: the value of one of `choices` */
    ARG_FLOATS,     /* arg_floats: comma-separated numbers in fmin..fmax, at most max of them (exactly max with ARG_EXACT) */
    ARG_STRS,       /* arg_strs: the option repeated, at most max times */
    ARG_LAYERS,     /* arg_layers: a band LO-HI (with ARG_SINGLE also one layer L) in min..n_layer of the model */
    ARG_LAYER_LIST, /* const char *: "all" or an index list like 0,4,8-12, in min..n_layer of the model */
    ARG_POSITIONS,  /* const char *: all, last, image, text, word:WORD[:N] or an index list of positions */
    ARG_GROUP,      /* arg_groups: the option opens a group (--add VEC), which the ARG_MEMBER options after it fill */
    ARG_SHARD,      /* ids_shard: I/N with 0 <= I < N <= max */
} arg_type;

enum {
    ARG_REQUIRED = 1, /* the command needs the option */
    ARG_GT_MIN = 2,   /* ARG_FLOAT / ARG_FLOATS: the value must be greater than fmin (not equal) */
    ARG_SINGLE = 4,   /* ARG_LAYERS: one layer L is also accepted (then lo = hi = L) */
    ARG_EXACT = 8,    /* ARG_FLOATS: exactly max numbers */
    ARG_MEMBER = 16,  /* the option belongs to the group opened last: its value (checked as its type says) goes to
                         slot `slot` of that group (the arg_groups at `offset`). Before any group is opened, the
                         option of the same name without ARG_MEMBER is meant, or it is an error. */
};

typedef struct arg_choice {
    const char *name;
    int value;
} arg_choice;

typedef struct arg_floats {
    float v[ARGS_MAX_FLOATS];
    int n;
} arg_floats;

typedef struct arg_strs {
    const char *v[ARGS_MAX_LIST];
    int n;
} arg_strs;

/* Groups of options: --add A --layer 3 --add B --layer 5 is two groups, each with its own --layer. */
#define ARGS_MAX_GROUPS 16
#define ARGS_GROUP_SLOTS 4
typedef struct arg_group {
    const char *opener;                  /* the long name of the option that opened it ("add") */
    const char *value;                   /* its value */
    const char *slot[ARGS_GROUP_SLOTS];  /* the members' values as given (NULL: not given) */
} arg_group;

typedef struct arg_groups {
    arg_group g[ARGS_MAX_GROUPS];
    int n;
} arg_groups;

typedef struct arg_layers {
    int lo, hi;       /* 0, 0 when not given */
    const char *text; /* as given, NULL when not given */
} arg_layers;

typedef struct arg_opt {
    const char *name;          /* long name, without the dashes; NULL ends a table */
    char short_name;           /* one-letter alias (-m), 0 if none */
    arg_type type;
    int flags;                 /* ARG_REQUIRED, ... */
    size_t offset;             /* of the field in the command's value struct */
    const char *meta;          /* the value's placeholder in help and messages: N, DIR, TEXT.gguf */
    long long min, max;        /* ARG_INT, ARG_U64, ARG_LAYERS / ARG_LAYER_LIST (min only); counts of ARG_FLOATS, ARG_STRS */
    double fmin, fmax;         /* ARG_FLOAT, ARG_FLOATS */
    const arg_choice *choices; /* ARG_CHOICE, ended by a NULL name */
    const char *def;           /* default, applied before parsing and shown in help (NULL: none) */
    const char *def_help;      /* a default described rather than applied ("the tower's input size") */
    const char *help;
    int slot;                  /* ARG_MEMBER: the group slot it fills */
} arg_opt;

typedef struct arg_pos {
    const char *name;          /* NULL ends the list; a name ending in "..." (the last one) takes every remaining
                                  argument, at most ARGS_MAX_LIST, into an arg_strs */
    size_t offset;             /* const char * field (NAME...: arg_strs) */
    bool required;
} arg_pos;

typedef struct arg_cmd {
    const char *name;  /* as typed: "info", "steer belief" */
    const char *about; /* what the command does (help text, lines end in \n) */
    const arg_opt *opts;
    const arg_pos *pos; /* may be NULL */
    const char *notes; /* printed after the options, may be NULL */
} arg_cmd;

/* Parse argv[first..argc-1] into vals (the defaults first). `--opt value`, `--opt=value`, `-o value`;
 * `--` ends the options; -h / --help prints the help; --quiet (every command) sets args_quiet(). Returns ARGS_GO, 0 after the help, or
 * EXIT_USAGE after the message. */
int args_parse(const arg_cmd *c, void *vals, int argc, char **argv, int first);
void args_help(const arg_cmd *c);
/* Whether --quiet (accepted by every command, like --help) was given: no progress on stderr. */
bool args_quiet(void);

/* The layer options of vals checked against the layer count of the model text_gguf (read from its
 * header; nothing is checked when it cannot be read: loading reports that). ARGS_GO or EXIT_USAGE. */
int args_check_model(const arg_cmd *c, const void *vals, const char *text_gguf);
/* The model's n_layer (<arch>.block_count) from the GGUF header, or -1. */
int args_model_layers(const char *text_gguf);

/* Usage errors, all of the form "idscope CMD: ..." then "Try 'idscope CMD --help'."; EXIT_USAGE.
 * args_bad names an option, its value and what is wrong with it (the valid range or set). */
int args_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int args_bad(const char *cmd, const char *opt, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Subcommands: argv[1] names one of subs (argv[0] is the family's name); --help prints them all. */
typedef struct arg_sub {
    const char *name;
    const arg_cmd *spec;
    int (*run)(const arg_cmd *spec, int argc, char **argv); /* argv[0] is the subcommand */
} arg_sub;
int args_family(const char *family, const arg_sub *subs, int argc, char **argv);

#endif /* IDSCOPE_CLI_ARGS_H */
