/*
 * quicklook.h: a PNG picture of a run (internal, not part of the public API).
 *
 * -quicklook FILE.png draws the source image reduced to a given width, the
 * failed tiles shaded red and the detections outlined in their class colours
 * (the colours of the output's map style, styles.h), from the output the run
 * has just written.  quicklook.c explains how.
 */
#ifndef ASD_TILER_QUICKLOOK_H
#define ASD_TILER_QUICKLOOK_H

#include <gdal.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_quicklook_request {
  const char *png_path;     /* the PNG to write */
  int width;                /* its width in pixels (<= 0: 1024; never wider than the source) */
  GDALDatasetH src;         /* the source image */
  const int *bands;         /* bands to show (1-based, the first three used); NULL: 1,2,3 or 1 */
  int nbands;
  const char *det_path;     /* the output holding the detections */
  const char *det_layer;    /* its detections layer (NULL: the first layer) */
  const char *tiles_path;   /* the datasource of the tile-status layer, or NULL */
  const char *tiles_layer;  /* its layer (NULL: the first layer) */
  const char *source_image; /* only features of this image (appended outputs); NULL: all */
} asd_quicklook_request;

/* Writes the picture.  0, or -1 after a CPLError (CE_Failure) naming the problem. */
int asd_quicklook_write(const asd_quicklook_request *q);

#ifdef __cplusplus
}
#endif

#endif
