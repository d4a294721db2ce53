/*
 * input.c: the run's first stage, open input.
 *
 * For each image of the run (images.h): checks that it can be worked on
 * with the options given (bands), plans its tiles (plan.c: overlap, -srcwin
 * / -projwin, edge tiles shifted inside) and builds its georeferencer
 * (georef.c), then numbers the tiles of the whole set one after the other.
 * The first image's encoder (encode.c) is opened here, so that an input
 * that cannot be read or a tile option the driver refuses fails before any
 * network or output; the other images' encoders are opened by the encoder
 * threads when they reach them (asd_run_encoder_for) and freed after their
 * last tile (asd_run_encoded), so a long list never holds more than a few
 * images open.  An image named by the caller is opened here only long
 * enough to plan it.
 *
 * -shard K/N over one image keeps a contiguous block of its tiles
 * (inputs.c asd_shard_range); the others are marked as another shard's and
 * are neither run nor written.  (Over a list, asd_detect_many() keeps a
 * block of the list before anything is opened; a list shorter than N is
 * split by tiles here, as one image is.)
 *
 * A good guest: asd_detect() works on whatever open dataset the caller
 * hands it (images.c says how the encoder reads it).
 *
 * Options that shape the tiles or their payload (tile size, window, bands,
 * scaling, tile format, nodata skipping, encoder threads) and the output's
 * coordinates (-t_srs, -to) are read here and nowhere else.
 */
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_vsis3.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"

/* Bands exist and are not too many: a usage error, reported before work. */
static int check_bands(asd_run *r, const asd_run_image *im) {
  const asd_detect_options *o = r->o;
  GDALDatasetH src = im->src;
  if (GDALGetRasterCount(src) < 1) return asd_run_fail(r, "input '%s' has no raster band", im->label);
  if (o->nbands > ASD_ENCODE_MAX_BANDS) {
    if (r->usage_error) *r->usage_error = 1;
    return asd_run_fail(r, "at most %d -b options", ASD_ENCODE_MAX_BANDS);
  }
  for (int i = 0; i < o->nbands; i++) {
    if (o->bands[i] > GDALGetRasterCount(src)) {
      if (r->usage_error) *r->usage_error = 1;
      return asd_run_fail(r, "-b %d: input '%s' has %d band(s)", o->bands[i], im->label, GDALGetRasterCount(src));
    }
  }
  return 0;
}

static int open_plan(asd_run *r, asd_run_image *im) {
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
  im->plan = asd_plan_new(im->src, &po);
  if (!im->plan)
    return asd_run_fail(r, "cannot plan tiles over '%s': %s", im->label,
                        asd_run_report_first(&r->report, "invalid window"));
  im->ntiles = asd_plan_count(im->plan);
  return 0;
}

static int open_georef(asd_run *r, asd_run_image *im) {
  asd_georef_options go;
  asd_georef_options_init(&go);
  go.t_srs = r->o->t_srs;
  go.transformer_options = r->o->transformer_options;
  im->georef = asd_georef_new(im->src, &go);
  if (!im->georef)
    return asd_run_fail(r, "cannot georeference '%s': %s", im->label,
                        asd_run_report_first(&r->report, "unknown error"));
  return 0;
}

/* One image: open (unless the caller's), check, plan, georeference, and
   close again when the run has several. */
static int open_image(asd_run *r, asd_run_image *im) {
  char err[1400];
  if (asd_run_image_open_dataset(im, err, sizeof err) != 0) {
    /* A merge reopens the name its shards recorded, which lost a presigned
       URL's query string (shards.c): say how to give the source again. */
    if (r->shards)
      return asd_run_fail(r, "-merge-shards: %s; the merge reads each source's georeferencing: give it where it "
                             "can be read with -merge-source SRC (a presigned URL: a fresh one) or -input_file_list",
                          err);
    return asd_run_fail(r, "%s", err);
  }
  int rc = check_bands(r, im) == 0 && open_plan(r, im) == 0 && open_georef(r, im) == 0 ? 0 : -1;
  if (r->nimages > 1) asd_run_image_close_dataset(im);
  return rc;
}

static int open_first_encoder(asd_run *r) {
  asd_run_image *im = &r->images[0];
  if (asd_run_image_open_encoder(im, r->o) != 0)
    return asd_run_fail(r, "cannot read input '%s': %s", im->label,
                        asd_run_strip_module_prefix(im->enc_error));
  im->enc_state = ASD_RUN_ENC_OPEN;
  return 0;
}

/* -shard K/N over one image, or over a list shorter than N: the tiles
   outside the block are another shard's.  A shard left without any (fewer
   tiles than shards) says so and writes an empty output that merges. */
static void select_shard(asd_run *r) {
  if (!r->o->shard_n || !r->shard_by_tiles) return;
  int a, b;
  asd_shard_range(r->ntiles, r->o->shard_k, r->o->shard_n, &a, &b);
  for (int g = 0; g < r->ntiles; g++)
    if (g < a || g >= b) {
      r->tiles[g].state = ASD_RUN_TILE_OTHER_SHARD;
      r->tiles_other++;
    }
  if (a == b)
    CPLError(CE_Warning, CPLE_AppDefined,
             "-shard %d/%d: nothing to do: the work has %d tile(s) for %d shards; this shard writes an empty "
             "output, which -merge-shards takes like the others",
             r->o->shard_k, r->o->shard_n, r->ntiles, r->o->shard_n);
}

int asd_run_open_input(asd_run *r) {
  const int n = r->names ? CSLCount(r->names) : 1;
  r->images = CPLCalloc((size_t)n, sizeof *r->images);
  r->nimages = n;
  for (int k = 0; k < n; k++)
    asd_run_image_init(&r->images[k], r->names ? r->names[k] : NULL, r->names ? NULL : r->src);
  for (int k = 0; k < n; k++) {
    if (open_image(r, &r->images[k]) != 0) return -1;
    r->images[k].first = r->ntiles;
    r->ntiles += r->images[k].ntiles;
  }
  r->tiles = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(asd_run_tile));
  for (int k = 0; k < n; k++)
    for (int i = 0; i < r->images[k].ntiles; i++) r->tiles[r->images[k].first + i].image = k;
  select_shard(r);
  asd_encode_options eo;
  asd_run_encode_options(r->o, &eo);
  r->content_type = asd_encode_content_type(eo.format);
  /* A merge reads nothing: the results are in the shards' journals. */
  return r->shards ? 0 : open_first_encoder(r);
}

/*
 * The encoder of tile g's image, opened by the first encoder thread that
 * needs it (the others wait for it); NULL with *why when it cannot be (its
 * tiles then fail with that reason).  Called without the run's mutex held.
 */
asd_encoder *asd_run_encoder_for(asd_run *r, int g, const char **why) {
  asd_run_image *im = asd_run_image_of(r, g);
  pthread_mutex_lock(&r->mu);
  while (im->enc_state == ASD_RUN_ENC_OPENING) pthread_cond_wait(&r->cv, &r->mu);
  if (im->enc_state == ASD_RUN_ENC_NONE) {
    im->enc_state = ASD_RUN_ENC_OPENING;
    pthread_mutex_unlock(&r->mu);
    CPLPushErrorHandler(CPLQuietErrorHandler);
    int rc = asd_run_image_open_encoder(im, r->o);
    CPLPopErrorHandler();
    pthread_mutex_lock(&r->mu);
    im->enc_state = rc == 0 ? ASD_RUN_ENC_OPEN : ASD_RUN_ENC_FAILED;
    pthread_cond_broadcast(&r->cv);
  }
  asd_encoder *e = im->enc_state == ASD_RUN_ENC_OPEN ? im->encoder : NULL;
  if (!e) *why = im->enc_error ? im->enc_error : "the image cannot be read again";
  pthread_mutex_unlock(&r->mu);
  return e;
}

/* Tile g has been encoded: after its image's last tile, a run over several
   images frees that image's encoder (its handles, its caches). */
void asd_run_encoded(asd_run *r, int g) {
  asd_run_image *im = asd_run_image_of(r, g);
  pthread_mutex_lock(&r->mu);
  int close_it = --im->enc_left == 0 && r->nimages > 1 && im->enc_state == ASD_RUN_ENC_OPEN;
  if (close_it) im->enc_state = ASD_RUN_ENC_CLOSED;
  pthread_mutex_unlock(&r->mu);
  if (close_it) asd_run_image_close_encoder(im);
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
    char *label = asd_source_label(src_name);
    asd_run_error("cannot read input '%s' through GDAL's /vsis3/: %s", label, err.message);
    CPLFree(label);
    return -1;
  }
  CPLDebug("ASYNCDETECT", "%s: %s", src_name, info);
  return 0;
}

char *asd_detect_source_label(const char *name) { return asd_source_label(name); }
