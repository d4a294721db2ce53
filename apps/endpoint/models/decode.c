/*
 * decode.c: tile bytes -> pixels, with GDAL.
 *
 * Clients send tiles in whatever format they encoded them (PNG, JPEG,
 * GeoTIFF, NITF...), so the models let GDAL identify and decode the bytes.
 * The payload is exposed as a /vsimem/ file that points at the caller's
 * buffer (no copy), under a name unique to this call, so that worker threads
 * never share a dataset.  The set of drivers is limited to image formats a
 * tile can come in: probing every GDAL driver against garbage bytes is
 * slower and exposes parsers nobody needs here.
 *
 * GDAL reports problems through CPLError; a garbage payload must become one
 * line in a failure object, not noise on the server's stderr, so errors are
 * captured with a quiet handler for the duration of the call.
 */
#include "models/model_impl.h"

#include <float.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>

/* 64 Mpx keeps one decoded tile under 200 MB even at concurrency 1. */
#define ASD_DECODE_MAX_PIXELS (64ll * 1024 * 1024)

static const char *const tile_drivers[] = {"PNG", "JPEG", "GTiff", "COG", "NITF", "JP2OpenJPEG",
                                           "BMP", "GIF", "WEBP", "HFA", NULL};

static atomic_uint_fast64_t vsimem_counter;

static GDALDatasetH open_payload(const unsigned char *data, size_t len, char *path, size_t path_len,
                                 char *err, size_t err_len) {
  ep_models_gdal_init();
  if (!data || len == 0) {
    snprintf(err, err_len, "empty payload");
    return NULL;
  }
  snprintf(path, path_len, "/vsimem/ep_model_%llu",
           (unsigned long long)atomic_fetch_add(&vsimem_counter, 1));
  VSILFILE *fp = VSIFileFromMemBuffer(path, (GByte *)data, (vsi_l_offset)len, FALSE);
  if (!fp) {
    snprintf(err, err_len, "cannot expose the payload to GDAL");
    return NULL;
  }
  VSIFCloseL(fp);
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, tile_drivers, NULL, NULL);
  if (!ds) {
    const char *msg = CPLGetLastErrorMsg();
    snprintf(err, err_len, "cannot decode the tile bytes as an image (%zu bytes%s%s)", len,
             msg && *msg ? ": " : "", msg && *msg ? msg : "");
    CPLPopErrorHandler();
    VSIUnlink(path);
    return NULL;
  }
  return ds; /* the quiet handler stays pushed until close_payload */
}

static void close_payload(GDALDatasetH ds, const char *path) {
  if (ds) GDALClose(ds);
  CPLPopErrorHandler();
  VSIUnlink(path);
}

int ep_decode_size(const unsigned char *data, size_t len, int *width, int *height, char *err,
                    size_t err_len) {
  char path[64];
  GDALDatasetH ds = open_payload(data, len, path, sizeof(path), err, err_len);
  if (!ds) return -1;
  *width = GDALGetRasterXSize(ds);
  *height = GDALGetRasterYSize(ds);
  int bands = GDALGetRasterCount(ds);
  close_payload(ds, path);
  if (*width <= 0 || *height <= 0 || bands <= 0) {
    snprintf(err, err_len, "the image has no raster data");
    return -1;
  }
  return 0;
}

unsigned char *ep_decode_rgb(const unsigned char *data, size_t len, int *width, int *height,
                              char *err, size_t err_len) {
  char path[64];
  GDALDatasetH ds = open_payload(data, len, path, sizeof(path), err, err_len);
  if (!ds) return NULL;
  unsigned char *rgb = NULL;
  float *tmp = NULL;
  int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds), nb = GDALGetRasterCount(ds);
  if (w <= 0 || h <= 0 || nb <= 0) {
    snprintf(err, err_len, "the image has no raster data");
    goto done;
  }
  if ((long long)w * h > ASD_DECODE_MAX_PIXELS) {
    snprintf(err, err_len, "the image is too large (%dx%d pixels, at most %lld)", w, h,
             (long long)ASD_DECODE_MAX_PIXELS);
    goto done;
  }
  size_t npix = (size_t)w * (size_t)h;
  rgb = malloc(npix * 3);
  if (!rgb) {
    snprintf(err, err_len, "out of memory for a %dx%d image", w, h);
    goto done;
  }
  int band_of[3] = {1, nb >= 3 ? 2 : 1, nb >= 3 ? 3 : 1};
  int all_byte = 1;
  for (int c = 0; c < 3; c++)
    if (GDALGetRasterDataType(GDALGetRasterBand(ds, band_of[c])) != GDT_Byte) all_byte = 0;
  CPLErrorReset();
  if (all_byte) {
    /* One dataset-level read of all three bands, pixel-interleaved straight
     * into the RGB buffer: drivers such as PNG decode the file once for it,
     * where three band reads would decode it three times. */
    if (GDALDatasetRasterIOEx(ds, GF_Read, 0, 0, w, h, rgb, w, h, GDT_Byte, 3, band_of, 3,
                              (GSpacing)w * 3, 1, NULL) != CE_None) {
      snprintf(err, err_len, "cannot read the image pixels: %s", CPLGetLastErrorMsg());
      goto fail;
    }
  } else {
    tmp = malloc(npix * 3 * sizeof(float));
    if (!tmp) {
      snprintf(err, err_len, "out of memory for a %dx%d image", w, h);
      goto fail;
    }
    for (int c = 0; c < 3; c++) {
      if (GDALRasterIO(GDALGetRasterBand(ds, band_of[c]), GF_Read, 0, 0, w, h, tmp + c, w, h,
                       GDT_Float32, 3 * (int)sizeof(float), (GSpacing)w * 3 * sizeof(float)) !=
          CE_None) {
        snprintf(err, err_len, "cannot read the image pixels: %s", CPLGetLastErrorMsg());
        goto fail;
      }
    }
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (size_t i = 0; i < npix * 3; i++) {
      float v = tmp[i];
      if (v != v) continue; /* NaN */
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    /* Data already in the 8-bit range keeps its values, so thresholds mean
     * the same for a UInt16 or Float32 copy of a byte image; anything else
     * is stretched to use the whole range. */
    int stretch = lo < hi && (lo < 0.0f || hi > 255.0f);
    double scale = stretch ? 255.0 / ((double)hi - (double)lo) : 1.0;
    double offset = stretch ? (double)lo : 0.0;
    for (size_t i = 0; i < npix * 3; i++) {
      float v = tmp[i];
      double s = v != v ? 0.0 : ((double)v - offset) * scale;
      rgb[i] = (unsigned char)(s < 0 ? 0 : s > 255 ? 255 : s + 0.5);
    }
  }
  *width = w;
  *height = h;
  goto done;
fail:
  free(rgb);
  rgb = NULL;
done:
  free(tmp);
  close_payload(ds, path);
  return rgb;
}
