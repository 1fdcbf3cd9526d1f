/* An RGB raster for the plotting layer's PNG figures (private to exp). Coordinates are the SVG's
 * (user units, y down); the raster holds `scale` device pixels per unit. Shapes are filled with
 * anti-aliased edges (4 sub-rows per pixel row, exact coverage across a row) by the nonzero rule;
 * lines have a width, butt ends, optional dashes (lengths in user units, as SVG's dasharray) and
 * round joins; text is drawn in a bitmap font of 5 x 7 dots (two more rows for descenders), the dot
 * a whole number of device pixels, anchored at its start, middle or end, optionally rotated by -90
 * degrees about its anchor (y-axis labels). A failed allocation sets oom and draws nothing more. */
#ifndef IDS_EXP_RASTER_H
#define IDS_EXP_RASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ids__raster {
    int w, h;        /* device pixels */
    double scale;    /* device pixels per user unit */
    uint8_t *rgb;    /* [h][w][3], owned */
    float *cov;      /* [w + 1]: coverage of the row being filled */
    double *xs;      /* [cap] crossings of a sub-row, with their directions in dir */
    int *dir, cap;
    bool oom;
} ids__raster;

enum { IDS_TEXT_START, IDS_TEXT_MIDDLE, IDS_TEXT_END };

/* A white raster of w x h user units at `scale`; false (oom set) when refused. */
bool ids__raster_init(ids__raster *r, double w, double h, double scale);
void ids__raster_free(ids__raster *r);
/* "#rgb", "#rrggbb" or "rgb(r,g,b)" into rgb; false for "none" or anything else. */
bool ids__raster_color(const char *s, uint8_t rgb[3]);
/* Filled polygon of n points (xy[2n]) with opacity alpha in 0..1. */
void ids__raster_polygon(ids__raster *r, const double *xy, int n, const uint8_t rgb[3], double alpha);
void ids__raster_rect(ids__raster *r, double x, double y, double w, double h, const uint8_t rgb[3]);
void ids__raster_circle(ids__raster *r, double cx, double cy, double rad, const uint8_t rgb[3]);
/* A line through n points of the given width; dash: nd lengths on, off, on, ... (nd 0: solid). */
void ids__raster_polyline(ids__raster *r, const double *xy, int n, double width, const uint8_t rgb[3], const double *dash,
                          int nd);
/* UTF-8 text with its baseline at y (font size `size` user units); U+2212 is drawn as a minus,
 * U+00B2 as a superscript 2, other characters the font lacks as '?'. */
void ids__raster_text(ids__raster *r, double x, double y, const char *s, double size, int anchor, bool bold,
                      const uint8_t rgb[3], bool rotated);
/* The advance of s in user units at `size` on this raster (the dots are rounded to device pixels). */
double ids__raster_text_width(const ids__raster *r, const char *s, double size, bool bold);
/* The glyph of a code point (rows of '#' and '.' separated by '/'), NULL when the font lacks it. */
const char *ids__font_glyph(unsigned cp);

#endif /* IDS_EXP_RASTER_H */
