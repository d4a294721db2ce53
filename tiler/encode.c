/*
 * encode.c: reading a tile window and encoding it as a model payload.
 *
 * The encoder turns a tile window into the bytes the model receives.  It is
 * built for throughput on images far larger than memory:
 *
 * Threads.  A GDALDatasetH must not be used by two threads at once.  Rather
 * than one global lock (which would serialise every read) or one handle per
 * caller-managed thread (which would leak the threading model into the API),
 * the encoder keeps a small pool of handles, each opened by name; a dataset
 * that cannot be reopened by name (MEM, or opened with options that change
 * it) is shared instead: asd_encoder_new_shared makes the caller's handle
 * the pool's only one, so readers take turns on it.  A call
 * borrows a handle only while it reads the pixels, then gives it back;
 * classification, conversion and compression run without any lock.  Opening
 * by name works the same for local files, /vsis3/, /vsicurl/ and VRTs.
 *
 * Reads.  Tiles overlap and their edges fall anywhere inside the file's
 * blocks, so reading each tile's window on its own makes GDAL decode the
 * blocks under an overlap once per tile unless its block cache still holds
 * them, which a small GDAL_CACHEMAX and a wide image defeat (a row of tiles
 * touches a whole row of blocks before the next row comes back to it).  By
 * default the encoder therefore reads the source in whole native blocks,
 * each once, and cuts tiles out of them in memory (blockread.c: which
 * blocks are held and for how long, the memory cap, and the fallback to a
 * window read for a tile whose blocks alone exceed the cap, such as a file
 * stored as one strip).  ASD_READ_WINDOW keeps the one-RasterIO-per-tile
 * path, which the benchmark measures side by side; ASD_READ_AUTO picks
 * blocks, except for files in short strips, where windows measured faster
 * (see setup_reads).  Either way Byte images
 * with no range adjustment are delivered as Byte (no conversion at all) and
 * other types as Float64, which holds every GDAL type exactly, then scaled;
 * the pixels are the same byte for byte whichever path read them, and
 * asd_encoder_get_read_stats says what was read from the source.
 *
 * Range adjustment.  Models expect 8-bit pixels.  The linear map
 * byte = (v - offset) * scale, clamped to 0..255, is fixed once per image in
 * asd_encoder_new, so every tile of an image gets the same map (a per-tile
 * stretch would make the same object look different in two tiles).  By
 * default Byte images are passed through and every other type gets the
 * OSML dynamic range adjustment; dra.c gathers the statistics (an overview
 * or a grid of whole blocks, valid pixels only, nothing written next to the
 * source) and explains the rule.  asd_encoder_scaling_info keeps what was
 * decided so that the run can say it.
 *
 * Encoding.  The driver writes a /vsimem/ file with a unique name, and the
 * encoder takes that file's buffer over with VSIGetMemFileBuffer(...,
 * bUnlinkAndSeize=TRUE): the payload is the driver's own output buffer,
 * never copied and never on disk.  GTiff payloads are made with Create,
 * the tile's georeferencing, one RasterIO of the Byte pixels and Close
 * (write_gtiff); every other format from the pixels wrapped without a copy
 * in a MEM dataset (DATAPOINTER bands) by CreateCopy, the only way the
 * PNG, JPEG and WEBP drivers write.  For GTiff, CreateCopy cost twice the
 * CPU of the rest of the tile's encoding: it reopens the new file and its
 * CloneInfo asks it for its SRS, rebuilt from the GeoKeys just written
 * (proj.db lookups, WKT export and parsing), only to find it set; the
 * bytes are the same either way (autotest/unit/test_encode_georef.cpp).
 * The source's SRS is parsed once per encoder, not from its WKT per tile.
 * PAM is disabled for the thread during the write so no .aux.xml appears
 * in /vsimem/, and so is GDAL's check of the creation options, done once
 * when the encoder is made.  GeoTIFF and NITF payloads carry the tile's
 * own georeferencing (the geotransform shifted to the tile, or the RPCs
 * with their offsets shifted) so that a model that wants it can use it.
 *
 * Memory.  Per call: the window's pixels (w*h*bands values), the Byte
 * image, and the encoded payload; all freed when the call returns (the
 * payload when the caller frees it).  The total is the tiles in flight plus
 * the blocks held by the block reader (about two rows of tiles' worth, at
 * most the cap) plus GDAL's block cache (GDAL_CACHEMAX, which block reads
 * leave nearly empty), independent of the image size.
 */
#include "asyncdetect/asd_encode.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <ogr_srs_api.h>

#include "blockread.h"
#include "dra.h"
#include "tiler_gdal_internal.h"

/* Cap on the blocks the block reader holds, unless block_cache_mb or
 * ASD_BLOCK_CACHEMAX says otherwise.  Two rows of 512-pixel tiles over a
 * 20,000-pixel-wide RGB image in 512 x 512 blocks hold about 90 MB; the cap
 * leaves room for wider images before the reader starts freeing blocks a
 * later tile will want. */
#define ASD_ENCODE_DEFAULT_BLOCK_CACHE_MB 256

struct asd_encoder {
  char *name;
  asd_encode_options opt; /* copy; CSL members are owned copies */
  char *compress;
  int bands[ASD_ENCODE_MAX_BANDS];
  int nbands;
  GDALDataType read_dt;    /* GDT_Byte for the no-conversion fast path, else GDT_Float64 */
  double offset[ASD_ENCODE_MAX_BANDS];
  double scale[ASD_ENCODE_MAX_BANDS];
  asd_encode_scaling_info info; /* what the map is and where it came from */
  GDALDriverH driver;
  char **copts;            /* creation options for the driver */
  /* Georeferencing copied into GTiff / NITF payloads. */
  int has_gt;
  double gt[6];
  OGRSpatialReferenceH srs; /* the source's SRS, parsed once (NULL: none) */
  char **rpc;              /* RPC metadata domain, or NULL */
  /* Handle pool. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  GDALDatasetH *idle;
  int nidle;
  int nopen;
  unsigned long long serial;
  /* Reads. */
  asd_read_mode mode;       /* resolved: ASD_READ_BLOCKS or ASD_READ_WINDOW */
  asd_block_reader *blocks; /* always made: also sizes window reads */
  long long window_reads, window_bytes; /* under lock */
  GDALDatasetH shared;      /* the caller's handle (asd_encoder_new_shared): never closed */
};

/* ------------------------------------------------------------------------
 * Names.
 * ---------------------------------------------------------------------- */

int asd_encode_format_from_name(const char *name) {
  if (!name) return -1;
  if (EQUAL(name, "PNG")) return ASD_FORMAT_PNG;
  if (EQUAL(name, "JPEG") || EQUAL(name, "JPG")) return ASD_FORMAT_JPEG;
  if (EQUAL(name, "GTiff") || EQUAL(name, "GeoTIFF") || EQUAL(name, "TIFF") || EQUAL(name, "TIF"))
    return ASD_FORMAT_GTIFF;
  if (EQUAL(name, "NITF") || EQUAL(name, "NTF")) return ASD_FORMAT_NITF;
  if (EQUAL(name, "WEBP")) return ASD_FORMAT_WEBP;
  return -1;
}

const char *asd_encode_format_name(asd_encode_format f) {
  switch (f) {
    case ASD_FORMAT_PNG: return "PNG";
    case ASD_FORMAT_JPEG: return "JPEG";
    case ASD_FORMAT_GTIFF: return "GTiff";
    case ASD_FORMAT_NITF: return "NITF";
    case ASD_FORMAT_WEBP: return "WEBP";
  }
  return "PNG";
}

static const char *format_ext(asd_encode_format f) {
  switch (f) {
    case ASD_FORMAT_PNG: return "png";
    case ASD_FORMAT_JPEG: return "jpg";
    case ASD_FORMAT_GTIFF: return "tif";
    case ASD_FORMAT_NITF: return "ntf";
    case ASD_FORMAT_WEBP: return "webp";
  }
  return "bin";
}

const char *asd_encode_content_type(asd_encode_format f) {
  switch (f) {
    case ASD_FORMAT_PNG: return "image/png";
    case ASD_FORMAT_JPEG: return "image/jpeg";
    case ASD_FORMAT_GTIFF: return "image/tiff";
    case ASD_FORMAT_NITF: return "application/octet-stream";
    case ASD_FORMAT_WEBP: return "image/webp";
  }
  return "application/octet-stream";
}

int asd_scale_mode_from_name(const char *name) {
  if (!name) return -1;
  if (EQUAL(name, "none")) return ASD_SCALE_NONE;
  if (EQUAL(name, "minmax") || EQUAL(name, "min-max") || EQUAL(name, "min_max")) return ASD_SCALE_MINMAX;
  if (EQUAL(name, "percentile") || EQUAL(name, "percent") || EQUAL(name, "clip")) return ASD_SCALE_PERCENTILE;
  if (EQUAL(name, "explicit") || EQUAL(name, "scale")) return ASD_SCALE_EXPLICIT;
  if (EQUAL(name, "dra")) return ASD_SCALE_DRA;
  if (EQUAL(name, "auto") || EQUAL(name, "default")) return ASD_SCALE_AUTO;
  return -1;
}

const char *asd_scale_mode_name(asd_scale_mode m) {
  switch (m) {
    case ASD_SCALE_NONE: return "none";
    case ASD_SCALE_MINMAX: return "minmax";
    case ASD_SCALE_PERCENTILE: return "percentile";
    case ASD_SCALE_EXPLICIT: return "explicit";
    case ASD_SCALE_DRA: return "dra";
    case ASD_SCALE_AUTO: return "auto";
  }
  return "unknown";
}

int asd_scale_mode_parse(const char *spec, asd_scale_mode *mode, double *low, double *high, char *err,
                         size_t err_size) {
  char **parts = CSLTokenizeString2(spec ? spec : "", ":", CSLT_ALLOWEMPTYTOKENS);
  const int n = CSLCount(parts);
  const int m = n > 0 ? asd_scale_mode_from_name(parts[0]) : -1;
  int rc = -1;
  if (m < 0 || m == ASD_SCALE_EXPLICIT) {
    snprintf(err, err_size, "-scale-mode %s: expected none, minmax, auto, percentile[:LOW:HIGH] or dra[:LOW:HIGH]",
             spec ? spec : "");
  } else if (n != 1 && !(n == 3 && (m == ASD_SCALE_PERCENTILE || m == ASD_SCALE_DRA))) {
    snprintf(err, err_size, "-scale-mode %s: only percentile and dra take percentiles, as NAME:LOW:HIGH", spec);
  } else if (n == 3) {
    char *e1 = NULL, *e2 = NULL;
    const double lo = CPLStrtod(parts[1], &e1), hi = CPLStrtod(parts[2], &e2);
    if (e1 == parts[1] || *e1 || e2 == parts[2] || *e2 || !(lo >= 0 && lo < hi && hi <= 100)) {
      snprintf(err, err_size, "-scale-mode %s: percentiles must be numbers with 0 <= LOW < HIGH <= 100", spec);
    } else {
      *mode = (asd_scale_mode)m;
      *low = lo;
      *high = hi;
      rc = 0;
    }
  } else {
    *mode = (asd_scale_mode)m;
    rc = 0;
  }
  CSLDestroy(parts);
  return rc;
}

char *asd_encode_scaling_describe(const asd_encode_scaling_info *in) {
  const char *type = GDALGetDataTypeName(in->data_type);
  if (in->mode == ASD_SCALE_NONE)
    return CPLStrdup(CPLSPrintf("%s, no range adjustment%s", type ? type : "?",
                                in->data_type == GDT_Byte ? "" : " (values clamped to 0..255)"));
  char what[64];
  if (in->mode == ASD_SCALE_PERCENTILE || in->mode == ASD_SCALE_DRA)
    snprintf(what, sizeof(what), "%s %g..%g %%", asd_scale_mode_name(in->mode), in->percentile_low,
             in->percentile_high);
  else
    snprintf(what, sizeof(what), "%s", in->mode == ASD_SCALE_EXPLICIT ? "-scale" : asd_scale_mode_name(in->mode));
  char *out = CPLStrdup(CPLSPrintf("%s -> Byte by %s%s (", type ? type : "?", what, in->automatic ? ", the default" : ""));
  for (int b = 0; b < in->nbands; b++) {
    char *next = CPLStrdup(CPLSPrintf("%s%sband %d %.6g..%.6g", out, b ? ", " : "", in->bands[b], in->src_min[b],
                                      in->src_max[b]));
    CPLFree(out);
    out = next;
  }
  char *next = CPLStrdup(CPLSPrintf("%s%s%s)", out, in->source[0] ? "; statistics from " : "", in->source));
  CPLFree(out);
  return next;
}

int asd_read_mode_from_name(const char *name) {
  if (!name) return -1;
  if (EQUAL(name, "auto")) return ASD_READ_AUTO;
  if (EQUAL(name, "blocks") || EQUAL(name, "block")) return ASD_READ_BLOCKS;
  if (EQUAL(name, "window") || EQUAL(name, "windows")) return ASD_READ_WINDOW;
  return -1;
}

void asd_encode_options_init(asd_encode_options *o) {
  memset(o, 0, sizeof(*o));
  o->format = ASD_FORMAT_PNG;
  o->jpeg_quality = 90;
  o->scale = ASD_SCALE_AUTO;
  o->percentile_low = 2.0;
  o->percentile_high = 98.0;
  o->skip_nodata = 1;
  o->skip_constant = 1;
  o->georeference_payload = 1;
  o->max_handles = 8;
  o->read_mode = ASD_READ_AUTO;
  o->block_cache_mb = 0;
}

/* ------------------------------------------------------------------------
 * Range adjustment (statistics in dra.c).
 * ---------------------------------------------------------------------- */

/* Checks an explicit (-scale) range and installs it. */
static int explicit_scaling(asd_encoder *e) {
  const asd_encode_options *o = &e->opt;
  if (o->scale_count != 1 && o->scale_count != e->nbands) {
    CPLError(CE_Failure, CPLE_IllegalArg,
             "asd_encoder: -scale needs one src_min/src_max pair or one per band (%d bands, %d pairs)", e->nbands,
             o->scale_count);
    return -1;
  }
  for (int b = 0; b < e->nbands; b++) {
    const int k = o->scale_count == 1 ? 0 : b;
    const double lo = o->src_min[k], hi = o->src_max[k];
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: -scale range %g..%g is empty", lo, hi);
      return -1;
    }
    e->info.src_min[b] = lo;
    e->info.src_max[b] = hi;
  }
  return 0;
}

/* Fixes the per-band map byte = (v - offset) * scale for the whole image. */
static int compute_scaling(asd_encoder *e, GDALDatasetH ds, int all_byte) {
  const asd_encode_options *o = &e->opt;
  asd_encode_scaling_info *in = &e->info;
  memset(in, 0, sizeof(*in));
  in->mode = o->scale;
  if (in->mode == ASD_SCALE_AUTO) {
    in->mode = all_byte ? ASD_SCALE_NONE : ASD_SCALE_DRA;
    in->automatic = 1;
  }
  in->data_type = GDALGetRasterDataType(GDALGetRasterBand(ds, e->bands[0]));
  in->nbands = e->nbands;
  for (int b = 0; b < e->nbands; b++) {
    in->bands[b] = e->bands[b];
    in->src_min[b] = 0;
    in->src_max[b] = 255;
  }
  if ((int)in->mode < ASD_SCALE_NONE || (int)in->mode > ASD_SCALE_DRA) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: unknown scale mode %d", (int)o->scale);
    return -1;
  }
  int rc = 0;
  if (in->mode == ASD_SCALE_EXPLICIT) {
    rc = explicit_scaling(e);
  } else if (in->mode != ASD_SCALE_NONE) {
    if ((in->mode == ASD_SCALE_PERCENTILE || in->mode == ASD_SCALE_DRA) &&
        !(o->percentile_low >= 0 && o->percentile_low < o->percentile_high && o->percentile_high <= 100)) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: percentiles %g..%g must satisfy 0 <= low < high <= 100",
               o->percentile_low, o->percentile_high);
      return -1;
    }
    in->percentile_low = o->percentile_low;
    in->percentile_high = o->percentile_high;
    asd_dra_band *st[ASD_ENCODE_MAX_BANDS];
    if (asd_dra_collect(ds, e->bands, e->nbands, o->region, st, in->source, sizeof(in->source)) != 0) return -1;
    for (int b = 0; b < e->nbands; b++) {
      asd_dra_range(st[b], in->mode, o->percentile_low, o->percentile_high, &in->src_min[b], &in->src_max[b]);
      in->samples[b] = asd_dra_band_count(st[b]);
      CPLDebug("ASD", "encoder: band %d range %.10g..%.10g (%lld samples, %s)", e->bands[b], in->src_min[b],
               in->src_max[b], in->samples[b], in->source);
      asd_dra_band_free(st[b]);
    }
  }
  for (int b = 0; b < e->nbands; b++) {
    if (in->mode == ASD_SCALE_NONE) {
      e->offset[b] = 0;
      e->scale[b] = 1;
    } else {
      e->offset[b] = in->src_min[b];
      e->scale[b] = in->src_max[b] > in->src_min[b] ? 255.0 / (in->src_max[b] - in->src_min[b]) : 1.0;
    }
  }
  return rc;
}

void asd_encoder_scaling_info(const asd_encoder *e, asd_encode_scaling_info *info) {
  if (!e) {
    memset(info, 0, sizeof(*info));
    return;
  }
  *info = e->info;
}

/* ------------------------------------------------------------------------
 * The encoder.
 * ---------------------------------------------------------------------- */

static GDALDatasetH open_handle(asd_encoder *e) {
  return GDALOpenEx(e->name, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL,
                    (const char *const *)e->opt.open_options, NULL);
}

static GDALDatasetH borrow(asd_encoder *e);
static void give_back(asd_encoder *e, GDALDatasetH h);

/* The handle pool as the block reader sees it. */
static GDALDatasetH hook_borrow(void *ctx) { return borrow(ctx); }
static void hook_give_back(void *ctx, GDALDatasetH h) { give_back(ctx, h); }

/* Resolves the read mode and the block cap (option, then config option,
 * then default) and makes the block reader.  Returns 0 or -1 after
 * CPLError. */
static int setup_reads(asd_encoder *e, GDALDatasetH ds) {
  int mode = e->opt.read_mode;
  if (mode == ASD_READ_AUTO) {
    const char *m = CPLGetConfigOption("ASD_READ_MODE", NULL);
    if (m && m[0]) {
      mode = asd_read_mode_from_name(m);
      if (mode < 0) {
        CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: ASD_READ_MODE=%s is not auto, blocks or window", m);
        return -1;
      }
    }
  }
  if ((int)mode < ASD_READ_AUTO || (int)mode > ASD_READ_WINDOW) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: unknown read mode %d", (int)mode);
    return -1;
  }
  const int asked = mode;
  long long mb = e->opt.block_cache_mb;
  if (mb <= 0) {
    const char *c = CPLGetConfigOption("ASD_BLOCK_CACHEMAX", NULL);
    mb = c && c[0] ? CPLAtoGIntBig(c) : ASD_ENCODE_DEFAULT_BLOCK_CACHE_MB;
    if (mb <= 0) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: ASD_BLOCK_CACHEMAX=%s is not a number of megabytes > 0",
               c);
      return -1;
    }
  }
  asd_handle_hooks hooks = {hook_borrow, hook_give_back, e};
  e->blocks = asd_block_reader_new(ds, e->bands, e->nbands, e->read_dt, (size_t)mb << 20, &hooks);
  if (!e->blocks) return -1;
  /* Auto: blocks, except for files in short strips (GDAL's default for a
   * compressed striped GeoTIFF is one row per strip).  There, reading by
   * windows measured faster (bench/tiling_blocks.sh): the block path
   * decodes half as much, but its rows of strips come and go through the
   * allocator and GDAL's cache as many small chunks, and the page faults
   * that churn causes cost more CPU than the second decode it saves.  The
   * block path stays available with ASD_READ_BLOCKS for such files (it
   * also holds less memory than GDAL's cache would). */
  if (asked == ASD_READ_AUTO)
    e->mode = asd_block_reader_short_strips(e->blocks) ? ASD_READ_WINDOW : ASD_READ_BLOCKS;
  else
    e->mode = asked == ASD_READ_WINDOW ? ASD_READ_WINDOW : ASD_READ_BLOCKS;
  return 0;
}

/* Whether a NITF payload can carry the SRS (the NITF driver writes only
 * WGS 84 geographic and UTM). */
static int nitf_can_georef(OGRSpatialReferenceH srs) {
  if (!srs) return 0;
  int north = 0;
  const char *datum = OSRGetAttrValue(srs, "DATUM", 0);
  int wgs84 = datum && (EQUAL(datum, "WGS_1984") || EQUAL(datum, "World Geodetic System 1984"));
  return wgs84 && (OSRIsGeographic(srs) || OSRGetUTMZone(srs, &north) != 0);
}

/*
 * Sets the user's creation options (-tco) over the defaults, then lets the
 * driver's own option list judge them: a typo such as ZLEVL=1 or a value out
 * of range such as QUALITY=0 would otherwise be a warning per tile and an
 * encoding the user did not ask for.  GDAL reports what is wrong as a
 * warning, which is turned into the error here.
 */
static int apply_creation_options(asd_encoder *e, char **user) {
  for (char **c = user; c && *c; c++) {
    char *key = NULL;
    const char *value = CPLParseNameValue(*c, &key);
    if (!key || !value || !key[0]) {
      CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: tile creation option '%s' is not NAME=VALUE", *c);
      CPLFree(key);
      return -1;
    }
    e->copts = CSLSetNameValue(e->copts, key, value);
    CPLFree(key);
  }
  if (!user) return 0;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  CPLErrorReset();
  int ok = GDALValidateCreationOptions(e->driver, e->copts);
  if (ok) {
    /* Option lists do not give every range (JPEG's QUALITY has none): a
     * 16 x 16 trial encoding finds the rest now rather than at every tile. */
    GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", 16, 16, e->nbands, GDT_Byte, NULL);
    const char *name = CPLSPrintf("/vsimem/asd_encode_trial_%p.%s", (void *)e, format_ext(e->opt.format));
    GDALDatasetH out = mem ? GDALCreateCopy(e->driver, name, mem, FALSE, e->copts, NULL, NULL) : NULL;
    if (out) GDALClose(out);
    ok = out != NULL && CPLGetLastErrorType() != CE_Failure;
    if (mem) GDALClose(mem);
    VSIUnlink(name);
    VSIUnlink(CPLSPrintf("%s.aux.xml", name));
  }
  char *why = CPLStrdup(CPLGetLastErrorMsg());
  CPLPopErrorHandler();
  if (!ok)
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: invalid %s tile creation option: %s",
             asd_encode_format_name(e->opt.format), why[0] ? why : "rejected by the driver");
  CPLFree(why);
  return ok ? 0 : -1;
}

static asd_encoder *encoder_new(const char *dataset_name, GDALDatasetH shared, const asd_encode_options *o);

asd_encoder *asd_encoder_new(const char *dataset_name, const asd_encode_options *o) {
  return encoder_new(dataset_name, NULL, o);
}

asd_encoder *asd_encoder_new_shared(GDALDatasetH ds, const asd_encode_options *o) {
  if (!ds) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: no dataset");
    return NULL;
  }
  return encoder_new(GDALGetDescription(ds), ds, o);
}

static asd_encoder *encoder_new(const char *dataset_name, GDALDatasetH shared, const asd_encode_options *o) {
  asd_encode_options def;
  if (!o) {
    asd_encode_options_init(&def);
    o = &def;
  }
  if (!dataset_name) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: no dataset name");
    return NULL;
  }
  if ((int)o->format < ASD_FORMAT_PNG || (int)o->format > ASD_FORMAT_WEBP) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: unknown payload format %d", (int)o->format);
    return NULL;
  }
  if (o->band_count < 0 || o->band_count > ASD_ENCODE_MAX_BANDS) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: band count %d out of range 0..%d", o->band_count,
             ASD_ENCODE_MAX_BANDS);
    return NULL;
  }
  if (o->jpeg_quality < 1 || o->jpeg_quality > 100) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: JPEG quality %d out of range 1..100", o->jpeg_quality);
    return NULL;
  }
  GDALAllRegister();
  /* GDAL's block cache (GDAL_CACHEMAX) is the process's, not the library's:
   * it is left alone.  Block reads keep it nearly empty anyway; the utility
   * caps it for itself (apps/gdal_asyncdetect_bin.c). */
  asd_encoder *e = CPLCalloc(1, sizeof(*e));
  e->name = CPLStrdup(dataset_name);
  e->opt = *o;
  e->opt.open_options = CSLDuplicate(o->open_options);
  e->opt.creation_options = NULL;
  e->opt.compress = NULL;
  if (e->opt.max_handles <= 0) e->opt.max_handles = 8;
  /* The caller's handle is the only one: readers take turns on it. */
  if (shared) e->opt.max_handles = 1;
  e->shared = shared;
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->cond, NULL);
  e->idle = CPLCalloc((size_t)e->opt.max_handles, sizeof(GDALDatasetH));

  GDALDatasetH ds = shared ? shared : open_handle(e);
  if (!ds) {
    CPLError(CE_Failure, CPLE_OpenFailed, "asd_encoder: cannot open raster '%s'", dataset_name);
    asd_encoder_free(e);
    return NULL;
  }
  e->nopen = 1;
  e->idle[e->nidle++] = ds;

  const int nb = GDALGetRasterCount(ds);
  if (nb <= 0) {
    CPLError(CE_Failure, CPLE_AppDefined, "asd_encoder: '%s' has no raster band", dataset_name);
    asd_encoder_free(e);
    return NULL;
  }
  if (o->band_count > 0) {
    for (int i = 0; i < o->band_count; i++) {
      if (o->bands[i] < 1 || o->bands[i] > nb) {
        CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: band %d does not exist in '%s' (it has %d)",
                 o->bands[i], dataset_name, nb);
        asd_encoder_free(e);
        return NULL;
      }
      e->bands[i] = o->bands[i];
    }
    e->nbands = o->band_count;
  } else {
    e->nbands = nb >= 3 ? 3 : 1;
    for (int i = 0; i < e->nbands; i++) e->bands[i] = i + 1;
  }
  if ((o->format == ASD_FORMAT_JPEG && e->nbands != 1 && e->nbands != 3 && e->nbands != 4) ||
      (o->format == ASD_FORMAT_PNG && e->nbands > 4) ||
      (o->format == ASD_FORMAT_WEBP && e->nbands != 3 && e->nbands != 4)) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: %s payloads cannot hold %d bands; select %s with -b",
             asd_encode_format_name(o->format), e->nbands,
             o->format == ASD_FORMAT_WEBP ? "3 (e.g. -b 1 -b 1 -b 1 for one band)" : "1 or 3");
    asd_encoder_free(e);
    return NULL;
  }
  int all_byte = 1;
  for (int i = 0; i < e->nbands; i++)
    if (GDALGetRasterDataType(GDALGetRasterBand(ds, e->bands[i])) != GDT_Byte) all_byte = 0;
  if (compute_scaling(e, ds, all_byte) != 0) {
    asd_encoder_free(e);
    return NULL;
  }
  e->read_dt = (all_byte && e->info.mode == ASD_SCALE_NONE) ? GDT_Byte : GDT_Float64;
  if (setup_reads(e, ds) != 0) {
    asd_encoder_free(e);
    return NULL;
  }

  e->driver = GDALGetDriverByName(asd_encode_format_name(o->format));
  if (!e->driver) {
    CPLError(CE_Failure, CPLE_NotSupported, "asd_encoder: GDAL driver %s is not available",
             asd_encode_format_name(o->format));
    asd_encoder_free(e);
    return NULL;
  }
  e->compress = o->compress ? CPLStrdup(o->compress) : NULL;
  switch (o->format) {
    case ASD_FORMAT_PNG: break;
    case ASD_FORMAT_JPEG: e->copts = CSLSetNameValue(e->copts, "QUALITY", CPLSPrintf("%d", o->jpeg_quality)); break;
    case ASD_FORMAT_GTIFF:
      e->copts = CSLSetNameValue(e->copts, "COMPRESS", e->compress ? e->compress : "DEFLATE");
      if (e->compress && EQUAL(e->compress, "JPEG"))
        e->copts = CSLSetNameValue(e->copts, "JPEG_QUALITY", CPLSPrintf("%d", o->jpeg_quality));
      break;
    case ASD_FORMAT_NITF:
      e->copts = CSLSetNameValue(e->copts, "IC", e->compress ? e->compress : "NC");
      if (e->compress && (EQUAL(e->compress, "C3") || EQUAL(e->compress, "M3")))
        e->copts = CSLSetNameValue(e->copts, "QUALITY", CPLSPrintf("%d", o->jpeg_quality));
      break;
    case ASD_FORMAT_WEBP:
      e->copts = CSLSetNameValue(e->copts, "QUALITY", CPLSPrintf("%d", o->jpeg_quality));
      /* libwebp's fastest effort, not its default 4: the same PSNR at the
       * same quality for 2-3x less CPU (18x lossless) and 11 % more bytes
       * on a textured scene (bench/RESULTS.md, session 6); -tco METHOD=4
       * is the choice on an uplink slower than the encoders. */
      e->copts = CSLSetNameValue(e->copts, "METHOD", "0");
      break;
  }
  if (apply_creation_options(e, o->creation_options) != 0) {
    asd_encoder_free(e);
    return NULL;
  }
  /* GTiff payloads are made with Create (write_gtiff), which does not see
   * the bands' colours as CreateCopy from a MEM dataset with R, G, B bands
   * did: say it, unless the user did. */
  if (o->format == ASD_FORMAT_GTIFF && e->nbands >= 3 && !CSLFetchNameValue(e->copts, "PHOTOMETRIC"))
    e->copts = CSLSetNameValue(e->copts, "PHOTOMETRIC", "RGB");

  if (o->georeference_payload && (o->format == ASD_FORMAT_GTIFF || o->format == ASD_FORMAT_NITF)) {
    e->has_gt = GDALGetGeoTransform(ds, e->gt) == CE_None;
    /* Parsed once here, not from WKT at every tile: each payload gets a
     * copy of this object (GDALSetSpatialRef). */
    OGRSpatialReferenceH srs = GDALGetSpatialRef(ds);
    if (srs) e->srs = OSRClone(srs);
    char **rpc = GDALGetMetadata(ds, "RPC");
    if (rpc && rpc[0]) e->rpc = CSLDuplicate(rpc);
    if (o->format == ASD_FORMAT_NITF && e->has_gt && !nitf_can_georef(e->srs)) {
      CPLDebug("ASD", "encoder: NITF payloads cannot carry this SRS; tiles are sent without a geotransform");
      e->has_gt = 0;
    }
  }
  return e;
}

void asd_encoder_free(asd_encoder *e) {
  if (!e) return;
  asd_block_reader_free(e->blocks);
  for (int i = 0; i < e->nidle; i++)
    if (e->idle[i] != e->shared) GDALClose(e->idle[i]);
  CPLFree(e->idle);
  pthread_mutex_destroy(&e->lock);
  pthread_cond_destroy(&e->cond);
  CSLDestroy(e->opt.open_options);
  CSLDestroy(e->copts);
  CSLDestroy(e->rpc);
  if (e->srs) OSRRelease(e->srs);
  CPLFree(e->compress);
  CPLFree(e->name);
  CPLFree(e);
}

int asd_encoder_scaling(const asd_encoder *e, double *offset, double *scale) {
  for (int b = 0; b < e->nbands; b++) {
    if (offset) offset[b] = e->offset[b];
    if (scale) scale[b] = e->scale[b];
  }
  return e->nbands;
}

int asd_encoder_band_count(const asd_encoder *e) { return e ? e->nbands : 0; }

/* Borrows a handle: an idle one, a new one while fewer than max_handles
 * are open, or waits for one to come back. */
static GDALDatasetH borrow(asd_encoder *e) {
  GDALDatasetH h = NULL;
  pthread_mutex_lock(&e->lock);
  for (;;) {
    if (e->nidle > 0) {
      h = e->idle[--e->nidle];
      break;
    }
    if (e->nopen < e->opt.max_handles) {
      e->nopen++;
      pthread_mutex_unlock(&e->lock);
      h = open_handle(e);
      if (!h) {
        pthread_mutex_lock(&e->lock);
        e->nopen--;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
        CPLError(CE_Failure, CPLE_OpenFailed, "asd_encoder: cannot reopen raster '%s'", e->name);
      }
      return h;
    }
    pthread_cond_wait(&e->cond, &e->lock);
  }
  pthread_mutex_unlock(&e->lock);
  return h;
}

static void give_back(asd_encoder *e, GDALDatasetH h) {
  pthread_mutex_lock(&e->lock);
  e->idle[e->nidle++] = h;
  pthread_cond_signal(&e->cond);
  pthread_mutex_unlock(&e->lock);
}

static unsigned char to_byte(double v, double off, double sc) {
  if (isnan(v)) return 0;
  double r = (v - off) * sc;
  if (r <= 0) return 0;
  if (r >= 255) return 255;
  return (unsigned char)(r + 0.5);
}

/* Shifts the RPC offsets by the tile origin so the RPCs describe the tile. */
static char **shifted_rpc(char **rpc, int x, int y) {
  char **out = CSLDuplicate(rpc);
  const char *lo = CSLFetchNameValue(rpc, "LINE_OFF"), *so = CSLFetchNameValue(rpc, "SAMP_OFF");
  if (lo) out = CSLSetNameValue(out, "LINE_OFF", CPLSPrintf("%.17g", CPLAtof(lo) - y));
  if (so) out = CSLSetNameValue(out, "SAMP_OFF", CPLSPrintf("%.17g", CPLAtof(so) - x));
  return out;
}

int asd_encoder_read_pixels(asd_encoder *e, const asd_tile *t, asd_window_pixels *px) {
  memset(px, 0, sizeof(*px));
  if (e->mode == ASD_READ_BLOCKS) {
    int rc = asd_block_reader_read(e->blocks, t->x, t->y, t->w, t->h, px);
    if (rc <= 0) return rc;
    /* 1: this window is read on its own (see blockread.c). */
  }
  GDALDatasetH h = borrow(e);
  if (!h) return -1;
  int rc = asd_read_window(h, e->bands, e->nbands, t->x, t->y, t->w, t->h, e->read_dt, px);
  give_back(e, h);
  if (rc == 0) {
    pthread_mutex_lock(&e->lock);
    e->window_reads++;
    e->window_bytes += (long long)((size_t)t->w * (size_t)t->h * asd_block_reader_pixel_bytes(e->blocks));
    pthread_mutex_unlock(&e->lock);
  }
  return rc;
}

void asd_encoder_get_read_stats(asd_encoder *e, asd_encoder_read_stats *s) {
  memset(s, 0, sizeof(*s));
  if (!e) return;
  asd_block_reader_stats(e->blocks, s);
  s->mode = e->mode;
  pthread_mutex_lock(&e->lock);
  s->window_reads = e->window_reads;
  s->window_bytes_read = e->window_bytes;
  pthread_mutex_unlock(&e->lock);
}

/* The tile's Byte image, band-sequential, padded to W x H: px's own
 * buffer when it already is exactly that (*is_px = 1), else a new one.
 * NULL when out of memory. */
static unsigned char *byte_image(const asd_encoder *e, const asd_tile *t, const asd_window_pixels *px, int W, int H,
                                 int *is_px) {
  const size_t plane = (size_t)W * (size_t)H;
  *is_px = 0;
  if (px->dt == GDT_Byte && W == t->w && H == t->h && !px->valid) {
    *is_px = 1; /* fast path: already what the driver needs */
    return px->values;
  }
  unsigned char *img = VSI_CALLOC_VERBOSE(plane, (size_t)e->nbands);
  if (!img) return NULL;
  for (int b = 0; b < e->nbands; b++) {
    for (int y = 0; y < t->h; y++) {
      unsigned char *dst = img + (size_t)b * plane + (size_t)y * W;
      const size_t src_off = (size_t)b * px->npix + (size_t)y * t->w;
      const unsigned char *valid = px->valid ? px->valid + src_off : NULL;
      if (px->dt == GDT_Byte) {
        memcpy(dst, (const unsigned char *)px->values + src_off, (size_t)t->w);
        if (valid)
          for (int x = 0; x < t->w; x++)
            if (!valid[x]) dst[x] = 0;
      } else {
        const double *src = (const double *)px->values + src_off;
        for (int x = 0; x < t->w; x++)
          dst[x] = (valid && !valid[x]) ? 0 : to_byte(src[x], e->offset[b], e->scale[b]);
      }
    }
  }
  return img;
}

/* The source's geotransform shifted to the tile's origin. */
static void tile_geotransform(const asd_encoder *e, const asd_tile *t, double gt[6]) {
  memcpy(gt, e->gt, 6 * sizeof(double));
  gt[0] = e->gt[0] + t->x * e->gt[1] + t->y * e->gt[2];
  gt[3] = e->gt[3] + t->x * e->gt[4] + t->y * e->gt[5];
}

/* Sets the tile's georeferencing (geotransform + SRS, shifted RPCs) on ds.
 * Returns 0, or -1 when the dataset refused it. */
static int set_tile_georef(const asd_encoder *e, const asd_tile *t, GDALDatasetH ds) {
  int ok = 1;
  if (e->has_gt) {
    double gt[6];
    tile_geotransform(e, t, gt);
    ok = GDALSetGeoTransform(ds, gt) == CE_None;
    if (ok && e->srs) ok = GDALSetSpatialRef(ds, e->srs) == CE_None;
  }
  if (ok && e->rpc) {
    char **rpc = shifted_rpc(e->rpc, t->x, t->y);
    ok = GDALSetMetadata(ds, rpc, "RPC") == CE_None;
    CSLDestroy(rpc);
  }
  return ok ? 0 : -1;
}

/*
 * GTiff: Create, georeference, write the pixels, close.  CreateCopy from a
 * MEM dataset would give the same file but costs more than twice as much
 * CPU per tile (bench/RESULTS.md): it closes and reopens the new file, and
 * its CloneInfo asks the reopened file for its SRS, which rebuilds it from
 * the GeoKeys just written (proj.db lookups, WKT parsing and export) only
 * to find it already there.  The creation options carry what CreateCopy
 * would have derived from the MEM bands (PHOTOMETRIC=RGB, see
 * encoder_new), so the bytes are the same.
 */
static GDALDatasetH write_gtiff(asd_encoder *e, const asd_tile *t, const char *name, unsigned char *img, int W,
                                int H) {
  GDALDatasetH ds = GDALCreate(e->driver, name, W, H, e->nbands, GDT_Byte, e->copts);
  if (!ds) return NULL;
  const GSpacing plane = (GSpacing)W * H;
  if (set_tile_georef(e, t, ds) != 0 ||
      GDALDatasetRasterIOEx(ds, GF_Write, 0, 0, W, H, img, W, H, GDT_Byte, e->nbands, NULL, 1, W, plane, NULL) !=
          CE_None) {
    GDALClose(ds);
    return NULL;
  }
  return ds;
}

/* Every other format: the pixels wrapped in a MEM dataset without a copy
 * (DATAPOINTER bands), CreateCopy'd by the driver (PNG, JPEG and WEBP
 * drivers have no Create). */
static GDALDatasetH write_copy(asd_encoder *e, const asd_tile *t, const char *name, unsigned char *img, int W,
                               int H) {
  const size_t plane = (size_t)W * (size_t)H;
  GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", W, H, 0, GDT_Byte, NULL);
  if (!mem) return NULL;
  int ok = 1;
  for (int b = 0; b < e->nbands && ok; b++) {
    char ptr[64];
    char *opts[2] = {ptr, NULL};
    snprintf(ptr, sizeof(ptr), "DATAPOINTER=%p", (void *)(img + (size_t)b * plane));
    ok = GDALAddBand(mem, GDT_Byte, opts) == CE_None;
  }
  if (ok && e->nbands >= 3) {
    GDALSetRasterColorInterpretation(GDALGetRasterBand(mem, 1), GCI_RedBand);
    GDALSetRasterColorInterpretation(GDALGetRasterBand(mem, 2), GCI_GreenBand);
    GDALSetRasterColorInterpretation(GDALGetRasterBand(mem, 3), GCI_BlueBand);
  }
  if (ok) ok = set_tile_georef(e, t, mem) == 0;
  GDALDatasetH ds = ok ? GDALCreateCopy(e->driver, name, mem, FALSE, e->copts, NULL, NULL) : NULL;
  GDALClose(mem);
  return ds;
}

/* Encodes the W x H image into a /vsimem/ file and takes its buffer over.
 * Returns ASD_ENCODE_OK or ASD_ENCODE_ERROR after CPLError. */
static asd_encode_status encode_image(asd_encoder *e, const asd_tile *t, unsigned char *img, int W, int H,
                                      asd_payload *out) {
  char name[128];
  pthread_mutex_lock(&e->lock);
  unsigned long long serial = ++e->serial;
  pthread_mutex_unlock(&e->lock);
  snprintf(name, sizeof(name), "/vsimem/asd_encode_%p_%llu.%s", (void *)e, serial, format_ext(e->opt.format));
  /* PAM would add a .aux.xml sidecar for metadata the format lacks.  The
   * creation options were checked once (apply_creation_options): GDAL
   * would otherwise parse the driver's option list again at every tile. */
  char *saved[2];
  static const char *const keys[2] = {"GDAL_PAM_ENABLED", "GDAL_VALIDATE_CREATION_OPTIONS"};
  for (int k = 0; k < 2; k++) {
    const char *v = CPLGetThreadLocalConfigOption(keys[k], NULL);
    saved[k] = v ? CPLStrdup(v) : NULL;
    CPLSetThreadLocalConfigOption(keys[k], "NO");
  }
  CPLErrorReset();
  GDALDatasetH ds = e->opt.format == ASD_FORMAT_GTIFF ? write_gtiff(e, t, name, img, W, H)
                                                       : write_copy(e, t, name, img, W, H);
  int close_ok = 1;
  if (ds) {
    GDALClose(ds);
    close_ok = CPLGetLastErrorType() != CE_Failure;
  }
  for (int k = 0; k < 2; k++) {
    CPLSetThreadLocalConfigOption(keys[k], saved[k]);
    CPLFree(saved[k]);
  }
  vsi_l_offset len = 0;
  GByte *buf = ds ? VSIGetMemFileBuffer(name, &len, TRUE) : NULL;
  asd_encode_status status = ASD_ENCODE_ERROR;
  if (buf && close_ok && len > 0) {
    out->data = buf;
    out->len = (size_t)len;
    out->content_type = asd_encode_content_type(e->opt.format);
    status = ASD_ENCODE_OK;
  } else {
    VSIFree(buf);
    CPLError(CE_Failure, CPLE_AppDefined, "asd_encoder: %s encoding of tile %d failed",
             asd_encode_format_name(e->opt.format), t->index);
  }
  VSIUnlink(name); /* in case the driver failed half-way */
  VSIUnlink(CPLSPrintf("%s.aux.xml", name));
  return status;
}

asd_encode_status asd_encoder_encode(asd_encoder *e, const asd_tile *t, asd_payload *out) {
  memset(out, 0, sizeof(*out));
  if (!e || !t || t->w <= 0 || t->h <= 0) {
    CPLError(CE_Failure, CPLE_IllegalArg, "asd_encoder: invalid tile");
    return ASD_ENCODE_ERROR;
  }
  asd_window_pixels px;
  int rc = asd_encoder_read_pixels(e, t, &px);
  if (rc != 0) {
    /* The reader's message carries GDAL's own cause; keep it. */
    char why[768];
    snprintf(why, sizeof(why), "%s", CPLGetLastErrorMsg());
    CPLError(CE_Failure, CPLE_FileIO, "%s", why[0] ? why : "cannot read the tile's pixels (unknown error)");
    return ASD_ENCODE_READ_ERROR;
  }
  if (e->opt.skip_nodata || e->opt.skip_constant) {
    int r = asd_classify_pixels(&px, e->opt.skip_nodata, e->opt.skip_constant);
    if (r != ASD_SKIP_NONE) {
      asd_window_pixels_free(&px);
      out->skip = (asd_skip_reason)r;
      return ASD_ENCODE_SKIPPED;
    }
  }
  /* The Byte image, padded to the requested size. */
  const int W = e->opt.pad_to_width > t->w ? e->opt.pad_to_width : t->w;
  const int H = e->opt.pad_to_height > t->h ? e->opt.pad_to_height : t->h;
  int img_is_px = 0;
  unsigned char *img = byte_image(e, t, &px, W, H, &img_is_px);
  asd_encode_status status = img ? encode_image(e, t, img, W, H, out) : ASD_ENCODE_ERROR;
  if (!img_is_px) VSIFree(img);
  asd_window_pixels_free(&px);
  return status;
}

void asd_payload_free(asd_payload *p) {
  if (!p) return;
  VSIFree(p->data);
  p->data = NULL;
  p->len = 0;
}
