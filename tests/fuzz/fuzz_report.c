/* The report over a results folder whose every result file (ids/stats.json, swap/swap.json, ...,
 * score.json, steer/factor-1/steer-belief.json) holds the input; report.html is written in the
 * scratch folder. The input is also read back as a result file by itself (its provenance and its
 * recorded seconds). */
#include "fuzz.h"

static char g_dir[512];
static char g_files[20][600];
static int g_n_files;
static ids_prov *g_prov;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fz_init();
    char buf[600];
    snprintf(g_dir, sizeof g_dir, "%s", fz_path("results", buf, sizeof buf));
    mkdir(g_dir, 0700);
    static const ids_relation rels[4] = {IDS_REL_LEFT_RIGHT, IDS_REL_ABOVE_BELOW, IDS_REL_NEAR_FAR, IDS_REL_BETWEEN};
    for (int k = IDS_RESULT_IDS; k <= IDS_RESULT_SCORE; k++)
        for (int r = 0; r < (k == IDS_RESULT_STEER_GRID ? 4 : 1); r++) {
            char *p = ids_result_path("results", (ids_result_kind)k, rels[r], true);
            if (!p) abort();
            fz_path(p, g_files[g_n_files++], sizeof g_files[0]);
            free(p);
        }
    fz_path("results/steer/factor-1/steer-belief.json", g_files[g_n_files++], sizeof g_files[0]);
    ids_err err;
    if (ids_prov_new(&g_prov, "swap", &err)) abort();
    ids_prov_opt_int(g_prov, "n_items", 8);
    ids_prov_run(g_prov, 1, 1, "f32");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int i = 0; i < g_n_files; i++) fz_write(g_files[i], data, size);
    int n = -1;
    ids_err err;
    if (ids_report(g_dir, &n, &err) == IDS_OK && (n < 0 || n > 7)) abort();
    char why[256];
    (void)ids_result_matches(g_files[0], g_prov, why, sizeof why);
    (void)ids_result_seconds(g_files[0]);
    char page[700];
    snprintf(page, sizeof page, "%s/report.html", g_dir);
    (void)ids_result_matches(page, g_prov, why, sizeof why); /* its provenance, in a comment */
    return 0;
}
