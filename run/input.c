/*
 * input.c: the run's first stage, open input.
 *
 * Checks that the source dataset can be worked on with the options given
 * (bands), plans the tiles over it (plan.c: overlap, -srcwin / -projwin,
 * edge tiles shifted inside) and opens the encoder that reads and encodes
 * them (encode.c).  Nothing is sent and nothing is written yet: an input
 * that cannot be read fails here, before any network or output.
 *
 * A good guest: asd_detect() works on whatever open dataset the caller
 * hands it.  The encoder reopens it by name when that gives the same
 * dataset (parallel reads), and otherwise shares the caller's handle (MEM,
 * a VRT or GeoTIFF opened with open options); the caller must not use the
 * handle from another thread during the call.
 *
 * Options that shape the tiles or their payload (tile size, window, bands,
 * scaling, tile format, nodata skipping, encoder threads) are read here and
 * nowhere else.
 */
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_vsis3.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"

/* Bands exist and are not too many: a usage error, reported before work. */
static int check_bands(asd_run *r) {
  const asd_detect_options *o = r->o;
  GDALDatasetH src = r->src;
  if (GDALGetRasterCount(src) < 1) {
    return asd_run_fail(r, "input '%s' has no raster band", GDALGetDescription(src));
  }
  if (o->nbands > ASD_ENCODE_MAX_BANDS) {
    if (r->usage_error) *r->usage_error = 1;
    return asd_run_fail(r, "at most %d -b options", ASD_ENCODE_MAX_BANDS);
  }
  for (int i = 0; i < o->nbands; i++) {
    if (o->bands[i] > GDALGetRasterCount(src)) {
      if (r->usage_error) *r->usage_error = 1;
      return asd_run_fail(r, "-b %d: input '%s' has %d band(s)", o->bands[i], GDALGetDescription(src),
                          GDALGetRasterCount(src));
    }
  }
  return 0;
}

static int open_plan(asd_run *r) {
  const asd_detect_options *o = r->o;
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = o->tile_size;
  po.overlap = o->overlap;
  if (o->has_srcwin) {
    po.has_srcwin = 1;
    memcpy(po.srcwin, o->srcwin, sizeof po.srcwin);
  }
  if (o->has_projwin) {
    po.has_projwin = 1;
    memcpy(po.projwin, o->projwin, sizeof po.projwin);
    po.projwin_srs = o->projwin_srs;
  }
  r->plan = asd_plan_new(r->src, &po);
  if (!r->plan)
    return asd_run_fail(r, "cannot plan tiles over '%s': %s", GDALGetDescription(r->src),
                        asd_run_report_first(&r->report, "invalid window"));
  r->ntiles = asd_plan_count(r->plan);
  r->tiles = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(asd_run_tile));
  return 0;
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

static int open_encoder(asd_run *r) {
  const asd_detect_options *o = r->o;
  asd_encode_options eo;
  asd_encode_options_init(&eo);
  eo.format = (asd_encode_format)asd_encode_format_from_name(o->tile_format);
  eo.creation_options = o->tile_creation_options;
  for (int i = 0; i < o->nbands; i++) eo.bands[i] = o->bands[i];
  eo.band_count = o->nbands;
  if (o->scale_mode == 1) eo.scale = ASD_SCALE_MINMAX;
  if (o->scale_mode == 2) {
    eo.scale = ASD_SCALE_EXPLICIT;
    eo.src_min[0] = o->scale[0];
    eo.src_max[0] = o->scale[1];
    eo.scale_count = 1;
  }
  if (o->scale_spec) {
    /* Checked when the options were parsed. */
    char err[256];
    asd_scale_mode_parse(o->scale_spec, &eo.scale, &eo.percentile_low, &eo.percentile_high, err, sizeof err);
  }
  eo.skip_nodata = o->skip_nodata;
  eo.skip_constant = o->skip_nodata;
  eo.max_handles = o->encoder_threads + 1;
  r->encoder = reopenable(r->src) ? asd_encoder_new(GDALGetDescription(r->src), &eo)
                                  : asd_encoder_new_shared(r->src, &eo);
  if (!r->encoder)
    return asd_run_fail(r, "cannot read input '%s': %s", GDALGetDescription(r->src),
                        asd_run_report_first(&r->report, "unknown error"));
  r->content_type = asd_encode_content_type(eo.format);
  return 0;
}

int asd_run_open_input(asd_run *r) {
  if (check_bands(r) != 0) return -1;
  if (open_plan(r) != 0) return -1;
  return open_encoder(r);
}

int asd_detect_prepare_input(const char *src_name, const asd_detect_options *o) {
  if (!o || !asd_vsis3_is_s3_path(src_name)) return 0;
  /* The same AWS settings the run's detector gets (connect.c). */
  asd_aws_config ac;
  asd_aws_config_init(&ac);
  ac.region = o->region;
  ac.profile = o->profile;
  ac.role_arn = o->assume_role;
  ac.external_id = o->external_id;
  asd_aws_error err;
  asd_aws_error_clear(&err);
  asd_aws_context *ctx = asd_aws_context_new(&ac, &err);
  char info[1024];
  int rc = ctx ? asd_vsis3_configure(src_name, ctx, info, sizeof info, &err) : -1;
  asd_aws_context_free(ctx);
  if (rc != 0) {
    asd_run_error("cannot read input '%s' through GDAL's /vsis3/: %s", src_name, err.message);
    return -1;
  }
  CPLDebug("ASYNCDETECT", "%s: %s", src_name, info);
  return 0;
}
