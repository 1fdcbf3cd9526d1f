/* The one command-line parser of the idscope CLI: option tables in, values out (see args.h). */
#define _POSIX_C_SOURCE 200809L
#include "args.h"

#include "idscope.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool g_quiet; /* --quiet was given (the process's one command line) */
bool args_quiet(void) { return g_quiet; }

#define HELP_COL 27   /* where an option's help text starts */
#define HELP_WIDTH 100

/* ---- messages ---------------------------------------------------------------------------- */

static void vusage(const char *cmd, const char *fmt, va_list ap) {
    fprintf(stderr, "idscope %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'idscope %s --help'.\n", cmd);
}

int args_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vusage(cmd, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

static void vbad(const char *cmd, const char *dashes, const char *opt, const char *value, const char *fmt, va_list ap) {
    fprintf(stderr, "idscope %s: %s%s %s ", cmd, dashes, opt, *value ? value : "''");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'idscope %s --help'.\n", cmd);
}

int args_bad(const char *cmd, const char *opt, const char *value, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vbad(cmd, "", opt, value, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

/* An option's value is bad: "idscope CMD: --NAME VALUE <what is wrong, with the valid range>". */
__attribute__((format(printf, 4, 5)))
static int bad(const char *cmd, const arg_opt *o, const char *value, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vbad(cmd, "--", o->name, value, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

/* ---- ranges ------------------------------------------------------------------------------ */

/* The valid range of a number option, as text: "1..32", "0..0.45", "(0, inf)", "(0.05, 1]", "any number". */
static void range_text(const arg_opt *o, char *buf, size_t n) {
    if (o->type == ARG_INT || o->type == ARG_U64) {
        snprintf(buf, n, "%lld..%lld", o->min, o->max);
    } else if (isinf(o->fmin) && isinf(o->fmax)) {
        snprintf(buf, n, "any number");
    } else if (!(o->flags & ARG_GT_MIN) && !isinf(o->fmin) && !isinf(o->fmax)) {
        snprintf(buf, n, "%g..%g", o->fmin, o->fmax);
    } else {
        char hi[40];
        if (isinf(o->fmax)) snprintf(hi, sizeof hi, "inf)");
        else snprintf(hi, sizeof hi, "%g]", o->fmax);
        snprintf(buf, n, "%c%g, %s", o->flags & ARG_GT_MIN ? '(' : '[', o->fmin, hi);
    }
}

static bool float_ok(const arg_opt *o, double x) {
    return (o->flags & ARG_GT_MIN ? x > o->fmin : x >= o->fmin) && x <= o->fmax;
}

/* A whole decimal integer (an optional sign, digits, nothing else). */
static bool parse_ll(const char *s, long long *out) {
    const char *p = *s == '-' || *s == '+' ? s + 1 : s;
    if (!isdigit((unsigned char)*p)) return false;
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return !*end && !errno;
}

static bool parse_double(const char *s, double *out) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    *out = strtod(s, &end);
    return !*end && !errno && isfinite(*out);
}

/* "all" (*lo = -1) or an index list like 0,4,8-12 (digits only, each LO <= HI): its smallest and
 * largest index. False when malformed. */
static bool index_list(const char *s, long *lo, long *hi) {
    if (!strcmp(s, "all")) {
        *lo = *hi = -1;
        return true;
    }
    *lo = LONG_MAX;
    *hi = -1;
    const char *p = s;
    for (;;) {
        if (!isdigit((unsigned char)*p)) return false;
        char *e;
        errno = 0;
        long a = strtol(p, &e, 10), b = a;
        if (*e == '-') {
            const char *q = e + 1;
            if (!isdigit((unsigned char)*q)) return false;
            b = strtol(q, &e, 10);
        }
        if (errno || a > b) return false;
        if (a < *lo) *lo = a;
        if (b > *hi) *hi = b;
        if (!*e) return true;
        if (*e != ',') return false;
        p = e + 1;
    }
}

/* LO-HI, or L alone when single is allowed. */
static bool layer_band(const char *s, bool single, int *lo, int *hi) {
    long long a, b;
    const char *dash = strchr(s + (*s == '-'), '-');
    if (!dash) {
        if (!single || !parse_ll(s, &a) || a < 0 || a > INT_MAX) return false;
        *lo = *hi = (int)a;
        return true;
    }
    size_t n = (size_t)(dash - s);
    char *first = strndup(s, n);
    bool ok = first && parse_ll(first, &a) && parse_ll(dash + 1, &b) && a >= 0 && b <= INT_MAX && a <= b;
    free(first);
    if (ok) *lo = (int)a, *hi = (int)b;
    return ok;
}

static bool positions_ok(const char *s) {
    long lo, hi;
    if (!strcmp(s, "last") || !strcmp(s, "image") || !strcmp(s, "text")) return true;
    if (!strncmp(s, "word:", 5)) return s[5] && s[5] != ':';
    return index_list(s, &lo, &hi);
}

/* ---- values ------------------------------------------------------------------------------ */

static void *field(void *vals, const arg_opt *o) { return (char *)vals + o->offset; }

static int set_floats(const char *cmd, const arg_opt *o, const char *v, arg_floats *f) {
    char range[64];
    range_text(o, range, sizeof range);
    const char *p = v;
    int n = 0;
    for (;;) {
        char *e;
        errno = 0;
        double x = strtod(p, &e);
        if (e == p || errno || !isfinite(x) || n == o->max) {
            if (o->flags & ARG_EXACT) return bad(cmd, o, v, "is not a list of %lld numbers (each %s)", o->max, range);
            return bad(cmd, o, v, "is not a comma-separated list of 1..%lld numbers (each %s)", o->max, range);
        }
        if (!float_ok(o, x)) return bad(cmd, o, v, "has %g, which is outside %s", x, range);
        f->v[n++] = (float)x;
        if (!*e) break;
        if (*e != ',') return bad(cmd, o, v, "is not a comma-separated list of numbers (each %s)", range);
        p = e + 1;
    }
    if ((o->flags & ARG_EXACT) && n != o->max)
        return bad(cmd, o, v, "is not a list of %lld numbers (each %s)", o->max, range);
    f->n = n;
    return ARGS_GO;
}

static int set_number(const char *cmd, const arg_opt *o, const char *v, void *dst) {
    char range[64];
    range_text(o, range, sizeof range);
    if (o->type == ARG_FLOAT) {
        double x;
        if (!parse_double(v, &x)) return bad(cmd, o, v, "is not a number (%s)", range);
        if (!float_ok(o, x)) return bad(cmd, o, v, "is outside %s", range);
        *(float *)dst = (float)x;
        return ARGS_GO;
    }
    long long x;
    if (!parse_ll(v, &x)) return bad(cmd, o, v, "is not an integer (%s)", range);
    if (x < o->min || x > o->max) return bad(cmd, o, v, "is outside %s", range);
    if (o->type == ARG_INT) *(int *)dst = (int)x;
    else *(uint64_t *)dst = (uint64_t)x;
    return ARGS_GO;
}

static int set_choice(const char *cmd, const arg_opt *o, const char *v, int *dst) {
    for (const arg_choice *c = o->choices; c->name; c++)
        if (!strcmp(c->name, v)) {
            *dst = c->value;
            return ARGS_GO;
        }
    fprintf(stderr, "idscope %s: --%s %s is not one of ", cmd, o->name, *v ? v : "''");
    for (const arg_choice *c = o->choices; c->name; c++) fprintf(stderr, "%s%s", c == o->choices ? "" : ", ", c->name);
    fprintf(stderr, "\nTry 'idscope %s --help'.\n", cmd);
    return EXIT_USAGE;
}

/* Store value v of option o (a default or from the command line). */
static int set_value(const char *cmd, const arg_opt *o, const char *v, void *vals) {
    void *dst = field(vals, o);
    long lo, hi;
    switch (o->type) {
    case ARG_FLAG: *(bool *)dst = true; return ARGS_GO;
    case ARG_INT: case ARG_U64: case ARG_FLOAT: return set_number(cmd, o, v, dst);
    case ARG_CHOICE: return set_choice(cmd, o, v, dst);
    case ARG_FLOATS: return set_floats(cmd, o, v, dst);
    case ARG_PATH:
        if (!*v) return bad(cmd, o, v, "is empty (a file or folder name)");
        break;
    case ARG_SHARD: {
        ids_shard *sh = dst;
        char *end = NULL, *end2 = NULL;
        errno = 0;
        const long i = strtol(v, &end, 10), n = *end == '/' ? strtol(end + 1, &end2, 10) : 0;
        if (errno || end == v || *end != '/' || !end2 || end2 == end + 1 || *end2 || n < 1 || n > o->max || i < 0 || i >= n)
            return bad(cmd, o, v, "is not I/N with 0 <= I < N <= %lld (shard I of N)", o->max);
        sh->index = (int)i, sh->count = (int)n;
        return ARGS_GO;
    }
    case ARG_STRS: {
        arg_strs *s = dst;
        if (s->n == o->max || s->n == ARGS_MAX_LIST) return bad(cmd, o, v, "is one too many (at most %lld)", o->max);
        s->v[s->n++] = v;
        return ARGS_GO;
    }
    case ARG_LAYERS: {
        arg_layers *l = dst;
        if (!layer_band(v, o->flags & ARG_SINGLE, &l->lo, &l->hi))
            return bad(cmd, o, v, "is not %sa band LO-HI with LO <= HI (layers %lld..n_layer)",
                       o->flags & ARG_SINGLE ? "a layer L or " : "", o->min);
        l->text = v;
        return ARGS_GO;
    }
    case ARG_LAYER_LIST:
        if (!index_list(v, &lo, &hi))
            return bad(cmd, o, v, "is not all or an index list like 0,4,8-12 (layers %lld..n_layer)", o->min);
        break;
    case ARG_POSITIONS:
        if (!positions_ok(v))
            return bad(cmd, o, v, "is not all, last, image, text, word:WORD[:N] or an index list like 0,5-7");
        break;
    case ARG_GROUP: {
        arg_groups *g = dst;
        if (!*v) return bad(cmd, o, v, "is empty (a file name)");
        if (g->n == ARGS_MAX_GROUPS) return bad(cmd, o, v, "is one too many (at most %d)", ARGS_MAX_GROUPS);
        g->g[g->n++] = (arg_group){.opener = o->name, .value = v};
        return ARGS_GO;
    }
    case ARG_STR: break;
    }
    *(const char **)dst = v;
    return ARGS_GO;
}

/* A member's value: checked as its type says (into scratch room), kept as given in the open group. */
static int set_member(const char *cmd, const arg_opt *o, const char *v, void *vals) {
    arg_groups *g = field(vals, o);
    arg_group *cur = &g->g[g->n - 1];
    if (o->slot < 0 || o->slot >= ARGS_GROUP_SLOTS) return args_usage(cmd, "--%s: bad option table", o->name);
    if (cur->slot[o->slot])
        return args_usage(cmd, "--%s is given twice for --%s %s", o->name, cur->opener, cur->value);
    union {
        bool b;
        int i;
        uint64_t u;
        float f;
        const char *s;
        arg_floats fl;
        arg_strs ss;
        arg_layers ly;
    } scratch;
    memset(&scratch, 0, sizeof scratch);
    arg_opt tmp = *o;
    tmp.offset = 0;
    int rc = set_value(cmd, &tmp, v, &scratch);
    if (rc == ARGS_GO) cur->slot[o->slot] = v;
    return rc;
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* The option named by argument a ("--name", "--name=value", "-x"); *value: the text after '='. With a
 * group open a member of that name is meant, else the plain option of that name (a member alone is
 * returned too: the caller says it needs its group). */
static const arg_opt *find_opt(const arg_cmd *c, const char *a, const char **value, bool group_open) {
    *value = NULL;
    if (a[1] != '-') { /* -x: a short alias, or a one-letter long name */
        if (!a[1] || a[2]) return NULL;
        for (const arg_opt *o = c->opts; o->name; o++)
            if (o->short_name == a[1] || (!o->name[1] && o->name[0] == a[1])) return o;
        return NULL;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    const arg_opt *plain = NULL, *member = NULL;
    for (const arg_opt *o = c->opts; o->name; o++)
        if (strlen(o->name) == n && !strncmp(o->name, name, n)) {
            if (o->flags & ARG_MEMBER) member = member ? member : o;
            else plain = plain ? plain : o;
        }
    if (eq && (plain || member)) *value = eq + 1;
    if (member && (group_open || !plain)) return member;
    return plain;
}

/* How an option is named in "missing ..." and usage lines: -o OUT.npy, --out DIR. */
static void print_opt_name(FILE *f, const arg_opt *o) {
    if (o->short_name) fprintf(f, "-%c", o->short_name);
    else fprintf(f, "%s%s", o->name[1] ? "--" : "-", o->name);
    if (o->type != ARG_FLAG) fprintf(f, " %s", o->meta ? o->meta : "VALUE");
}

/* A positional NAME... that takes every remaining argument. */
static bool pos_many(const arg_pos *p) {
    const size_t n = strlen(p->name);
    return n > 3 && !strcmp(p->name + n - 3, "...");
}

static int check_required(const arg_cmd *c, const void *vals, const bool *given, int n_pos) {
    int k = 0;
    for (const arg_opt *o = c->opts; o->name; o++, k++)
        if ((o->flags & ARG_REQUIRED) && !given[k]) {
            fprintf(stderr, "idscope %s: missing ", c->name);
            print_opt_name(stderr, o);
            fprintf(stderr, "\nTry 'idscope %s --help'.\n", c->name);
            return EXIT_USAGE;
        }
    for (int i = n_pos; c->pos && c->pos[i].name; i++)
        if (c->pos[i].required && !(pos_many(&c->pos[i]) && ((const arg_strs *)((const char *)vals + c->pos[i].offset))->n > 0))
            return args_usage(c->name, "missing %s", c->pos[i].name);
    return ARGS_GO;
}

/* A member given before any option of its group: "--layer belongs to --add or --replace: give it after one". */
static int member_alone(const arg_cmd *c, const arg_opt *m) {
    fprintf(stderr, "idscope %s: --%s belongs to ", c->name, m->name);
    int k = 0;
    for (const arg_opt *o = c->opts; o->name; o++)
        if (o->type == ARG_GROUP && o->offset == m->offset) fprintf(stderr, "%s--%s", k++ ? " or " : "", o->name);
    fprintf(stderr, ": give it after one\nTry 'idscope %s --help'.\n", c->name);
    return EXIT_USAGE;
}

int args_parse(const arg_cmd *c, void *vals, int argc, char **argv, int first) {
    int n_opts = 0, n_pos = 0, rc;
    for (const arg_opt *o = c->opts; o->name; o++, n_opts++)
        if (o->def && (rc = set_value(c->name, o, o->def, vals)) != ARGS_GO) return rc;
    bool given[64] = {false}, only_pos = false;
    const arg_groups *open = NULL; /* the groups of the option that opened one last */
    if (n_opts > 64) return args_usage(c->name, "%s", "too many options in the table");
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *value;
        if (only_pos || a[0] != '-' || !a[1]) {
            if (!c->pos || !c->pos[n_pos].name) return args_usage(c->name, "unexpected argument '%s'", a);
            if (pos_many(&c->pos[n_pos])) {
                arg_strs *s = (arg_strs *)((char *)vals + c->pos[n_pos].offset);
                if (s->n == ARGS_MAX_LIST) return args_usage(c->name, "more than %d %s", ARGS_MAX_LIST, c->pos[n_pos].name);
                s->v[s->n++] = a;
                continue;
            }
            *(const char **)((char *)vals + c->pos[n_pos++].offset) = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            args_help(c);
            return 0;
        }
        if (!strcmp(a, "--quiet")) { /* every command's: no progress on stderr */
            g_quiet = true;
            continue;
        }
        const arg_opt *o = find_opt(c, a, &value, open != NULL);
        if (!o) return args_usage(c->name, "unknown option '%s'", a);
        if ((o->flags & ARG_MEMBER) && (!open || open != (const arg_groups *)field(vals, o)))
            return member_alone(c, o);
        given[o - c->opts] = true;
        if (o->type == ARG_FLAG) {
            if (value) return args_usage(c->name, "--%s takes no value (%s given)", o->name, a);
            *(bool *)field(vals, o) = true;
            continue;
        }
        if (!value && i + 1 >= argc)
            return args_usage(c->name, "%s needs a value (%s)", a, o->meta ? o->meta : "VALUE");
        const char *v = value ? value : argv[++i];
        if ((rc = (o->flags & ARG_MEMBER) ? set_member(c->name, o, v, vals) : set_value(c->name, o, v, vals)) != ARGS_GO)
            return rc;
        if (o->type == ARG_GROUP) open = field(vals, o);
    }
    return check_required(c, vals, given, n_pos);
}

/* ---- the model's layers ------------------------------------------------------------------ */

int args_model_layers(const char *text_gguf) {
    ids_err err;
    ids_gguf *g;
    if (ids_gguf_open_model(&g, text_gguf, IDS_HF_TEXT, &err)) return -1;
    const char *arch = NULL;
    int n = -1;
    if (ids_gguf_get_str(g, "general.architecture", &arch, NULL) == IDS_OK && arch) {
        size_t len = strlen(arch) + sizeof ".block_count";
        char *key = malloc(len);
        uint32_t v;
        if (key) {
            snprintf(key, len, "%s.block_count", arch);
            if (ids_gguf_get_u32(g, key, &v, NULL) == IDS_OK && v <= INT_MAX) n = (int)v;
        }
        free(key);
    }
    ids_gguf_close(g);
    return n;
}

int args_check_model(const arg_cmd *c, const void *vals, const char *text_gguf) {
    int n = -2;
    for (const arg_opt *o = c->opts; o->name; o++) {
        const void *f = (const char *)vals + o->offset;
        long lo, hi;
        const char *text = NULL;
        if (o->type == ARG_LAYERS && ((const arg_layers *)f)->text) {
            text = ((const arg_layers *)f)->text;
            lo = ((const arg_layers *)f)->lo, hi = ((const arg_layers *)f)->hi;
        } else if (o->type == ARG_LAYER_LIST && *(const char *const *)f) {
            text = *(const char *const *)f;
            if (!index_list(text, &lo, &hi) || lo < 0) continue; /* "all" */
        } else {
            continue;
        }
        if (n == -2) n = args_model_layers(text_gguf);
        if (n < 0) return ARGS_GO; /* unreadable: loading the model says why */
        if (lo < o->min || hi > n) return bad(c->name, o, text, "is outside %lld..%d (the model's layers)", o->min, n);
    }
    return ARGS_GO;
}

/* ---- help -------------------------------------------------------------------------------- */

/* Print text from column col, breaking lines at spaces before HELP_WIDTH; continuation lines (and
 * lines after a \n in the text) start at column indent. Returns the column reached. */
static int wrap(const char *text, int col, int indent) {
    const char *p = text;
    bool space = false; /* a space is due before the next word */
    while (*p) {
        if (*p == '\n') {
            printf("\n%*s", indent, "");
            col = indent;
            space = false;
            p++;
            continue;
        }
        if (*p == ' ') {
            space = true;
            p++;
            continue;
        }
        int w = (int)strcspn(p, " \n");
        if (col > indent && col + space + w > HELP_WIDTH) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (space) {
            putchar(' ');
            col++;
        }
        space = false;
        printf("%.*s", w, p);
        col += w;
        p += w;
    }
    return col;
}

/* The bracketed tail of an option's help: choices, range, count, default, required. */
static void help_tail(const arg_opt *o, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
#define ADD(...) (k += (size_t)snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__), k = k < n ? k : n - 1)
    if (o->type == ARG_CHOICE)
        for (const arg_choice *c = o->choices; c->name; c++) ADD("%s%s", c == o->choices ? "" : ", ", c->name);
    char range[64];
    range_text(o, range, sizeof range);
    const bool floats = o->type == ARG_FLOAT || o->type == ARG_FLOATS;
    if ((o->type == ARG_INT && o->max <= 100000) || (floats && isfinite(o->fmax))) /* small ranges only */
        ADD("%s%s%s", k ? "; " : "", o->type == ARG_FLOATS ? "each " : "", range);
    if (o->type == ARG_FLOATS) ADD("%s%s%lld numbers", k ? "; " : "", o->flags & ARG_EXACT ? "" : "up to ", o->max);
    if (o->type == ARG_STRS) ADD("%srepeatable, up to %lld", k ? "; " : "", o->max);
    if (o->type == ARG_GROUP) ADD("%srepeatable, up to %d", k ? "; " : "", ARGS_MAX_GROUPS);
    if (o->def || o->def_help) ADD("%sdefault %s", k ? "; " : "", o->def ? o->def : o->def_help);
    if (o->flags & ARG_REQUIRED) ADD("%srequired", k ? "; " : "");
#undef ADD
}

static void help_option(const arg_opt *o) {
    int col = printf("  ");
    if (o->short_name) col += printf("-%c, ", o->short_name);
    else if (!o->name[1]) col += printf("-%s, ", o->name);
    col += printf("--%s", o->name);
    if (o->type != ARG_FLAG) col += printf(" %s", o->meta ? o->meta : "VALUE");
    if (col < HELP_COL - 1) col += printf("%*s", HELP_COL - 1 - col, "");
    if (col >= HELP_COL) col = printf("\n%*s", HELP_COL, "") - 1; /* a long name: help on the next line */
    else col += printf(" ");
    char tail[512];
    help_tail(o, tail, sizeof tail);
    col = wrap(o->help ? o->help : "", col, HELP_COL);
    if (*tail) {
        size_t len = strlen(tail) + 4;
        char *t = malloc(len);
        if (t) snprintf(t, len, " (%s)", tail);
        wrap(t ? t : tail, col, HELP_COL);
        free(t);
    }
    putchar('\n');
}

void args_help(const arg_cmd *c) {
    printf("usage: idscope %s", c->name);
    for (int i = 0; c->pos && c->pos[i].name; i++)
        if (c->pos[i].required) printf(" %s", c->pos[i].name);
    for (const arg_opt *o = c->opts; o->name; o++)
        if (o->flags & ARG_REQUIRED) {
            putchar(' ');
            print_opt_name(stdout, o);
        }
    printf(" [options]");
    for (int i = 0; c->pos && c->pos[i].name; i++)
        if (!c->pos[i].required) printf(" [%s]", c->pos[i].name);
    printf("\n\n");
    fputs(c->about, stdout);
    printf("\noptions:\n");
    for (const arg_opt *o = c->opts; o->name; o++) help_option(o);
    printf("      --quiet              no progress on stderr (warnings and errors are still printed)\n");
    printf("  -h, --help               print this help\n");
    if (c->notes) printf("\n%s", c->notes);
}

int args_family(const char *family, const arg_sub *subs, int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        for (int k = 0; subs[k].name; k++) {
            if (k) putchar('\n');
            args_help(subs[k].spec);
        }
        return 0;
    }
    for (int k = 0; argc >= 2 && subs[k].name; k++)
        if (!strcmp(argv[1], subs[k].name)) return subs[k].run(subs[k].spec, argc - 1, argv + 1);
    if (argc < 2) fprintf(stderr, "idscope %s: missing subcommand (", family);
    else fprintf(stderr, "idscope %s: unknown subcommand '%s' (", family, argv[1]);
    for (int k = 0; subs[k].name; k++) fprintf(stderr, "%s%s", k ? ", " : "", subs[k].name);
    fprintf(stderr, ")\nTry 'idscope %s --help'.\n", family);
    return EXIT_USAGE;
}
