/* Figures for the report (private to exp): axes with rounded ("nice") ticks, axis labels with units,
 * legends with line samples, error bands, equal-aspect scatter planes, heat maps on one diverging
 * colour scale centred on 0, shared by every panel of a figure and shown as a colour bar, and bar
 * charts with 95% whiskers. A figure is described once (ids__plot_fig) and drawn by either backend:
 * as one complete, standalone <svg> element (xmlns, white background, its own font) appended to a
 * text buffer, valid inline in XHTML and as an .svg file; or into an RGB image at a multiple of the
 * SVG's pixel size (the same layout, text in a bitmap font of idscope's own), written as PNG.
 *
 * Structure a checker can rely on: every plot with axes has <text class="xlabel"> and
 * <text class="ylabel"> (non-empty) and tick labels <text class="tick">; every heat-map figure has
 * <g class="colorbar"> with its own ticks; legends are <g class="legend"> entries, each a line
 * sample (<line>) and its text; bar charts have <rect class="bar"> and <line class="whisker">. */
#ifndef IDS_EXP_PLOT_H
#define IDS_EXP_PLOT_H

#include "exp/exp_internal.h"

/* Rounded ticks for [lo, hi]: a step of 1, 2, 2.5 or 5 x 10^k giving about `target` intervals; lo and
 * hi widened to multiples of the step (n ticks from lo to hi); decimals enough to tell them apart. */
typedef struct ids__ticks {
    double lo, hi, step;
    int n, decimals;
} ids__ticks;
ids__ticks ids__plot_ticks(double lo, double hi, int target);
/* v as a tick label with t's decimals: "0" rather than "-0.00", a true minus sign (U+2212). */
void ids__plot_tick_label(const ids__ticks *t, double v, char *buf, size_t n);

enum { IDS_PLOT_SOLID, IDS_PLOT_DASHED, IDS_PLOT_DOTTED, IDS_PLOT_DASHDOT };

/* One line of a chart. Non-finite y values leave a gap. lo/hi (may be NULL): a band (e.g. a 95% CI)
 * drawn under the line in its colour. */
typedef struct ids__plot_series {
    const char *name; /* legend text */
    const double *y;  /* [n] at x = x0 + i */
    const double *lo, *hi;
    int color, dash;  /* palette index; IDS_PLOT_* */
} ids__plot_series;

typedef struct ids__plot_axes {
    const char *title, *xlabel, *ylabel; /* labels name the quantity and its unit */
    int x0, n;                           /* x = x0 .. x0 + n - 1, integers (layers, frames) */
    double ymin, ymax;                   /* NAN, or values the y range must include (0 for rates) */
    const char *note;                    /* a line under the plot (may be NULL) */
    const char *mark_label;              /* with mark_x: a vertical line at x = mark_x, labelled (NULL: none) */
    double mark_x;
} ids__plot_axes;
void ids__plot_lines(ids__tb *b, const ids__plot_axes *ax, const ids__plot_series *s, int ns);

/* Points of a plane (PCA coordinates) with equal units on both axes; gx/gy (may be NULL): each
 * point's grid cell, labelled "x,y", with lines joining cells next to each other in a row and in a
 * column. */
typedef struct ids__plot_plane {
    const char *title, *xlabel, *ylabel;
    int n;
    const double *x, *y;
    const int *gx, *gy;
} ids__plot_plane;
void ids__plot_scatter(ids__tb *b, const ids__plot_plane *p);

/* Heat maps of one figure: panels side by side on one colour scale (max |value| over all panels,
 * rounded up to a tick), blue negative, white 0, red positive, one colour bar. */
typedef struct ids__plot_panel {
    const char *title;
    int rows, cols;
    const double *v;          /* [rows][cols]; non-finite: grey, no number */
    int mark_row, mark_col;   /* a cell outlined in black (the source cell), -1 when none */
} ids__plot_panel;
typedef struct ids__plot_heat {
    const char *title, *row_label, *col_label, *value_label;
} ids__plot_heat;
void ids__plot_heatmaps(ids__tb *b, const ids__plot_heat *h, const ids__plot_panel *p, int np);

/* Bars with their 95% intervals as whiskers (NULL lo/hi or non-finite ends: no whisker; non-finite
 * value: no bar), each named under its bar with its value below; the y range includes 0. */
typedef struct ids__plot_bars {
    const char *title, *xlabel, *ylabel;
    int n; /* 1..8 */
    const char *const *labels;
    const double *v, *lo, *hi;
} ids__plot_bars;
void ids__plot_bar_chart(ids__tb *b, const ids__plot_bars *p);

/* One figure of any kind, for either backend. */
enum { IDS_FIG_LINES, IDS_FIG_SCATTER, IDS_FIG_HEAT, IDS_FIG_BARS };
typedef struct ids__plot_fig {
    int kind;
    const ids__plot_axes *ax; /* lines: axes and ns series */
    const ids__plot_series *s;
    int ns;
    const ids__plot_plane *plane; /* scatter */
    const ids__plot_heat *heat;   /* heat maps: np panels */
    const ids__plot_panel *panels;
    int np;
    const ids__plot_bars *bars; /* bars */
} ids__plot_fig;
/* The figure as SVG appended to b (b->oom on a failed allocation). */
void ids__plot_svg(ids__tb *b, const ids__plot_fig *f);
/* The figure as an RGB image of `scale` device pixels per SVG pixel (2: for slides); free out with
 * ids_image_free. IDS_ERR_NOMEM when refused. */
ids_status ids__plot_image(const ids__plot_fig *f, double scale, ids_image *out, ids_err *err);

/* The diverging colour of a in [-1, 1] (clamped); true when text on it should be white. */
bool ids__plot_diverging(double a, int rgb[3]);

#endif /* IDS_EXP_PLOT_H */
