/*
 * images.c: one image of a run (images.h): its dataset, and its encoder
 * opened late and freed early.
 *
 * Open datasets are what limits a run over many images (file descriptors,
 * GDAL's per-dataset caches, a /vsis3/ handle each).  So an image named by
 * the caller is opened at setup only as long as it takes to plan its tiles
 * and build its georeferencer, then closed; its encoder (which opens its own
 * handles, one per encoder thread) is opened by the encoder thread that
 * takes its first tile, and freed once its last tile is encoded.  With the
 * encoder threads moving down the list, at most two or three images are
 * open at any time, and the next image's tiles are read while the previous
 * image's are still in flight, so the endpoint never waits at an image
 * boundary.
 *
 * A good guest: a dataset the caller hands over (asd_detect) is never
 * closed, and the encoder reopens it by name only when that gives the same
 * dataset (parallel reads); otherwise (MEM, a VRT or GeoTIFF opened with
 * open options) it shares the caller's handle, and the caller must not use
 * the handle from another thread during the call.
 */
#include "images.h"

#include <string.h>

#include "asd_detect_options.h"
#include "asyncdetect/asd_app.h"
#include "inputs.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"

void asd_run_image_init(asd_run_image *im, const char *name, GDALDatasetH borrowed) {
  memset(im, 0, sizeof *im);
  im->src = borrowed;
  im->borrowed = borrowed != NULL;
  im->name = CPLStrdup(borrowed ? GDALGetDescription(borrowed) : name ? name : "");
  im->label = asd_source_label(im->name);
}

void asd_run_image_free(asd_run_image *im) {
  if (im->encoder) asd_encoder_free(im->encoder);
  if (im->merger) asd_merger_free(im->merger);
  if (im->georef) asd_georef_free(im->georef);
  if (im->plan) asd_plan_free(im->plan);
  asd_run_image_close_dataset(im);
  CPLFree(im->enc_error);
  CPLFree(im->pixels);
  CPLFree(im->label);
  CPLFree(im->name);
  memset(im, 0, sizeof *im);
}

/*
 * Whether the encoder may open the source again by name (one handle per
 * encoder thread, reads in parallel), or must share the caller's handle
 * (readers take turns).  A dataset reopens to the same thing unless it lives
 * only in memory (MEM, or anything without a name) or was opened with open
 * options that change what it is (OVERVIEW_LEVEL, a band subset...): the
 * reopened dataset must have the same driver, size, bands and types, else
 * the caller's handle is used.  The check opens and closes one handle.
 */
static int reopenable(GDALDatasetH src) {
  const char *name = GDALGetDescription(src);
  GDALDriverH drv = GDALGetDatasetDriver(src);
  if (!name || !*name || !drv || EQUAL(GDALGetDriverShortName(drv), "MEM")) return 0;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  GDALDatasetH again = GDALOpenEx(name, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
  CPLPopErrorHandler();
  if (!again) return 0;
  int same = GDALGetDatasetDriver(again) == drv && GDALGetRasterXSize(again) == GDALGetRasterXSize(src) &&
             GDALGetRasterYSize(again) == GDALGetRasterYSize(src) &&
             GDALGetRasterCount(again) == GDALGetRasterCount(src);
  for (int b = 1; same && b <= GDALGetRasterCount(src); b++)
    same = GDALGetRasterDataType(GDALGetRasterBand(again, b)) == GDALGetRasterDataType(GDALGetRasterBand(src, b));
  GDALClose(again);
  if (!same) CPLDebug("ASYNCDETECT", "'%s' does not reopen as the same dataset: sharing the caller's handle", name);
  return same;
}

int asd_run_image_open_dataset(asd_run_image *im, char *err, size_t errlen) {
  if (!im->src) {
    CPLErrorReset();
    im->src = GDALOpenEx(im->name, GDAL_OF_RASTER | GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
    if (!im->src) {
      /* GDAL's message may quote the name as given: say it with the label. */
      const char *why = CPLGetLastErrorMsg();
      snprintf(err, errlen, "cannot open input raster '%s'%s%s", im->label,
               *why && !strstr(why, im->name) ? ": " : "", *why && !strstr(why, im->name) ? why : "");
      return -1;
    }
    im->reopenable = 1; /* opened by name, without options: a reopen is the same dataset */
  } else if (im->borrowed) {
    im->reopenable = reopenable(im->src);
  }
  snprintf(im->raster_size, sizeof im->raster_size, "%dx%dx%d", GDALGetRasterXSize(im->src),
           GDALGetRasterYSize(im->src), GDALGetRasterCount(im->src));
  return 0;
}

void asd_run_image_close_dataset(asd_run_image *im) {
  if (im->src && !im->borrowed) GDALClose(im->src);
  if (!im->borrowed) im->src = NULL;
}

void asd_run_encode_options(const asd_detect_options *o, asd_encode_options *eo) {
  asd_encode_options_init(eo);
  eo->format = (asd_encode_format)asd_encode_format_from_name(o->tile_format);
  eo->creation_options = o->tile_creation_options;
  for (int i = 0; i < o->nbands; i++) eo->bands[i] = o->bands[i];
  eo->band_count = o->nbands;
  if (o->scale_mode == 1) eo->scale = ASD_SCALE_MINMAX;
  if (o->scale_mode == 2) {
    eo->scale = ASD_SCALE_EXPLICIT;
    eo->src_min[0] = o->scale[0];
    eo->src_max[0] = o->scale[1];
    eo->scale_count = 1;
  }
  if (o->scale_spec) {
    /* Checked when the options were parsed. */
    char err[256];
    asd_scale_mode_parse(o->scale_spec, &eo->scale, &eo->percentile_low, &eo->percentile_high, err, sizeof err);
  }
  eo->skip_nodata = o->skip_nodata;
  eo->skip_constant = o->skip_nodata;
  eo->max_handles = o->encoder_threads + 1;
}

int asd_run_image_open_encoder(asd_run_image *im, const asd_detect_options *o) {
  asd_encode_options eo;
  asd_run_encode_options(o, &eo);
  /* The dynamic-range statistics come from the tiles' region (-srcwin,
   * -projwin), the same for every shard and every -resume of the run. */
  if (im->plan) asd_plan_roi(im->plan, &eo.region[0], &eo.region[1], &eo.region[2], &eo.region[3]);
  CPLErrorReset();
  im->encoder = im->reopenable || !im->src ? asd_encoder_new(im->name, &eo) : asd_encoder_new_shared(im->src, &eo);
  if (im->encoder) return 0;
  const char *why = CPLGetLastErrorMsg();
  /* The encoder's message may quote the name as given (a presigned URL). */
  CPLFree(im->enc_error);
  im->enc_error = CPLStrdup(*why && !strstr(why, im->name) ? why : "cannot open it for reading");
  return -1;
}

void asd_run_image_close_encoder(asd_run_image *im) {
  if (!im->encoder) return;
  asd_encode_scaling_info info;
  asd_encoder_scaling_info(im->encoder, &info);
  CPLFree(im->pixels);
  im->pixels = asd_encode_scaling_describe(&info);
  asd_encoder_free(im->encoder);
  im->encoder = NULL;
}
