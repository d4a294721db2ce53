/*
 * asd_plan.h: the tile plan over a GDAL raster.
 *
 * A plan cuts a region of interest (ROI) of an image into tiles of a fixed
 * size that overlap by a fixed number of pixels.  Tiles are numbered in
 * row-major order; each knows its index, grid row and column, and its pixel
 * window (x, y, w, h) in full-image pixel coordinates.
 *
 * Edge tiles: by default a tile that would run past the right or bottom
 * edge of the ROI is shifted back inside so that every tile keeps its full
 * size (as SAHI does; a model never sees a thin sliver).  With pad_edges the
 * tile keeps its grid position and is clipped to the image instead (w, h
 * smaller); the encoder pads it back to the full size with zeros.  When the
 * ROI is smaller than a tile, there is one tile covering the ROI (clipped to
 * the image).
 *
 * The ROI is the whole image, or -srcwin (pixels), or -projwin (a box in a
 * given SRS converted through the image's georeferencing), or the envelope
 * of the geometries of an AOI vector datasource.  With an AOI, tiles that do
 * not intersect any AOI geometry are marked skipped (ASD_SKIP_OUTSIDE_AOI).
 *
 * Skipping empty tiles: a tile whose pixels are all nodata (nodata value or
 * mask band, see GDALGetMaskFlags) or all one constant value carries no
 * information.  The plan itself only knows the windows; classifying a tile
 * needs its pixels.  asd_plan_scan() classifies every tile up front (one
 * read of the image); a pipeline that reads each tile anyway lets the
 * encoder classify it (asd_encoder_encode returns ASD_ENCODE_SKIPPED with
 * the reason) and records it here with asd_plan_set_skip(), so the image is
 * read once.  Either way the counts by reason come from asd_plan_skip_count.
 *
 * Errors go through CPLError (one line naming what was wrong) and make
 * asd_plan_new return NULL.
 */
#ifndef ASD_PLAN_H
#define ASD_PLAN_H

#include "asyncdetect/asd_export.h"

#include <gdal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Why a tile is not sent to the model. */
typedef enum asd_skip_reason {
  ASD_SKIP_NONE = 0,        /* the tile is to be processed */
  ASD_SKIP_NODATA = 1,      /* every pixel is nodata (value or mask band) */
  ASD_SKIP_CONSTANT = 2,    /* every valid pixel has the same value (band by band) */
  ASD_SKIP_OUTSIDE_AOI = 3, /* the window does not intersect the AOI geometries */
  ASD_SKIP_REASON_COUNT = 4
} asd_skip_reason;

/* "none", "nodata", "constant", "outside_aoi". */
ASD_API const char *asd_skip_reason_name(asd_skip_reason r);

typedef struct asd_tile {
  int index; /* 0-based, row-major over the grid */
  int row;   /* grid row (0-based) */
  int col;   /* grid column (0-based) */
  int x, y;  /* top-left pixel of the window in the full image */
  int w, h;  /* window size in image pixels (equal to the tile size unless padding) */
  asd_skip_reason skip; /* ASD_SKIP_NONE unless skipped */
} asd_tile;

typedef struct asd_plan_options {
  int tile_width;   /* pixels, > 0 (default 512) */
  int tile_height;  /* pixels, > 0 (default 512) */
  int overlap;      /* pixels shared by neighbours, 0 <= overlap < min(w,h) (default 0) */
  int pad_edges;    /* 0: shift edge tiles back inside (default); 1: clip + pad */
  /* Region of interest: at most one of the three. */
  int has_srcwin;
  int srcwin[4];    /* xoff, yoff, xsize, ysize in pixels (clipped to the image) */
  int has_projwin;
  double projwin[4]; /* ulx, uly, lrx, lry in projwin_srs (default: the image's SRS) */
  const char *projwin_srs; /* any SRS string OSRSetFromUserInput accepts, or NULL */
  const char *aoi_path;    /* OGR datasource; all its layers' geometries, or aoi_layer */
  const char *aoi_layer;   /* NULL: every layer */
} asd_plan_options;

/* Fills o with the defaults above. */
ASD_API void asd_plan_options_init(asd_plan_options *o);

typedef struct asd_plan asd_plan;

/* Builds the plan over ds.  Returns NULL (after a CPLError) on bad options or
 * a ROI that does not intersect the image. */
ASD_API asd_plan *asd_plan_new(GDALDatasetH ds, const asd_plan_options *o);
ASD_API void asd_plan_free(asd_plan *p);

ASD_API int asd_plan_count(const asd_plan *p); /* tiles in the plan, skipped included */
ASD_API int asd_plan_rows(const asd_plan *p);
ASD_API int asd_plan_cols(const asd_plan *p);
/* Tile i (0 <= i < count), or NULL out of range.  The pointer stays valid
 * until asd_plan_free. */
ASD_API const asd_tile *asd_plan_tile(const asd_plan *p, int i);
/* The ROI in image pixels after clipping to the image. */
ASD_API void asd_plan_roi(const asd_plan *p, int *x, int *y, int *w, int *h);
ASD_API int asd_plan_tile_width(const asd_plan *p);
ASD_API int asd_plan_tile_height(const asd_plan *p);

/* Records the skip reason of tile i (e.g. from the encoder).  Not
 * thread-safe with itself: call it from one thread (or hold a lock). */
ASD_API void asd_plan_set_skip(asd_plan *p, int i, asd_skip_reason r);
/* Tiles skipped for reason r; ASD_SKIP_NONE counts the tiles to process. */
ASD_API int asd_plan_skip_count(const asd_plan *p, asd_skip_reason r);

/* Options for classifying tiles from their pixels. */
typedef struct asd_skip_options {
  int skip_nodata;   /* default 1 */
  int skip_constant; /* default 1 */
  const int *bands;  /* 1-based band numbers, NULL = all bands */
  int band_count;
} asd_skip_options;
ASD_API void asd_skip_options_init(asd_skip_options *o);

/* Classifies the window by reading it from ds: ASD_SKIP_NODATA,
 * ASD_SKIP_CONSTANT or ASD_SKIP_NONE; -1 (after CPLError) on a read error. */
ASD_API int asd_classify_window(GDALDatasetH ds, int x, int y, int w, int h, const asd_skip_options *o);

/* Classifies every tile not already skipped (reads the image once, tile by
 * tile).  Progress may be NULL.  Returns 0, or -1 on a read error or when
 * cancelled through the progress callback. */
ASD_API int asd_plan_scan(asd_plan *p, GDALDatasetH ds, const asd_skip_options *o, GDALProgressFunc progress,
                  void *progress_data);

#ifdef __cplusplus
}
#endif

#endif /* ASD_PLAN_H */
