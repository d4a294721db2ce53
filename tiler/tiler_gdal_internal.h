/*
 * tiler_gdal_internal.h: helpers shared by plan.c and encode.c, not part of
 * the public API.
 *
 * Both the plan (asd_plan_scan) and the encoder classify a tile as nodata or
 * constant from its pixels.  The encoder already holds the pixels it is about
 * to encode, so it classifies that buffer instead of reading the window a
 * second time; the code that reads a window with its validity mask and the
 * code that classifies it live here so both agree exactly.
 */
#ifndef ASD_TILER_GDAL_INTERNAL_H
#define ASD_TILER_GDAL_INTERNAL_H

#include <stddef.h>

#include <gdal.h>

/*
 * Pixels of a window: nbands planes of npix values, band-sequential, either
 * Byte or Float64 (dt), plus a validity plane per band (1 = valid) when the
 * image has nodata, a mask band or alpha (valid == NULL means all valid).
 */
typedef struct asd_window_pixels {
  void *values;           /* nbands * npix values of type dt */
  unsigned char *valid;   /* nbands * npix, or NULL */
  GDALDataType dt;        /* GDT_Byte or GDT_Float64 */
  int nbands;
  size_t npix;
} asd_window_pixels;

/* Reads the window of the given bands (1-based) of ds into px (values of
 * type dt, allocated here) at buffer size bw x bh (== w x h: no resampling).
 * Returns 0, or -1 after CPLError. */
int asd_read_window(GDALDatasetH ds, const int *bands, int nbands, int x, int y, int w, int h,
                    GDALDataType dt, asd_window_pixels *px);
void asd_window_pixels_free(asd_window_pixels *px);

/* Validity of npix values of type dt (GDT_Byte or GDT_Float64) against a
 * band's nodata value (as GDALGetRasterNoDataValue returns it): 1 = valid.
 * asd_read_window and the block reader (blockread.c) both use it, so a
 * tile cut from blocks is classified exactly as a window read would be. */
void asd_nodata_validity(int has_nodata, double nodata, GDALDataType dt, const void *values, size_t npix,
                         unsigned char *v);

/* ASD_SKIP_NODATA, ASD_SKIP_CONSTANT or ASD_SKIP_NONE for the pixels. */
int asd_classify_pixels(const asd_window_pixels *px, int skip_nodata, int skip_constant);

/* The encoder's read step (encode.c): the tile's pixels as
 * asd_read_window gives them, from blocks or from one window read
 * according to the encoder's read mode.  Thread-safe.  Returns 0, or -1
 * after CPLError.  Declared here for the tests that compare both paths. */
struct asd_encoder;
struct asd_tile;
int asd_encoder_read_pixels(struct asd_encoder *e, const struct asd_tile *t, asd_window_pixels *px);

#endif
