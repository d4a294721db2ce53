/*
 * dra.c: the statistics behind the encoder's dynamic-range adjustment.
 *
 * Models take 8-bit pixels; satellite imagery comes as 11- or 12-bit values
 * in UInt16, as reflectance in Float32, as radar amplitudes spanning five
 * decades.  Clamping such values to 0..255 saturates them (an 11-bit scene
 * becomes white), so for anything that is not Byte the encoder applies a
 * dynamic-range adjustment (DRA) by default.  What it must be:
 *
 * Once per image.  One linear map per band, fixed before the first tile:
 * a per-tile stretch would make the same roof look different in two
 * overlapping tiles, and a detection merged across them would be judged on
 * two different pictures.
 *
 * From a sample of the tiles' region (-srcwin, -projwin; else the whole
 * image), not a full scan.  A 40,000 x 40,000 scene must not be read
 * twice.  The sample is the overview GDALGetRasterSampleOverviewEx picks for
 * about half a million pixels when the file has overviews (COGs, most
 * provider products), else whole native blocks on a regular grid of up to
 * 16 x 16 across the image (reading a whole block costs what reading part
 * of it costs, and a grid over both axes sees every part of the scene).
 * Nothing is written next to the source, unlike GDALComputeRasterStatistics,
 * which would leave a .aux.xml behind.
 *
 * Valid pixels only.  Nodata, masked (mask band, alpha, per-dataset mask)
 * and NaN pixels are left out: a nodata collar of zeros would otherwise
 * pull the low end down and darken the whole image.
 *
 * Exact where it is cheap, bounded where it is not.  Integer bands of up to
 * 16 bits get an exact histogram (65,536 counters, 512 kB per band), so
 * their percentiles are exact.  Other types (Float32/64, 32-bit integers)
 * keep their exact minimum and maximum plus a reservoir sample of at most
 * 262,144 values per band, drawn with a fixed-seed generator so that the
 * same file always gives the same map (a -resume must tile and scale
 * exactly as the interrupted run did); the percentile error of such a
 * sample is a few hundredths of a percent.
 *
 * The rule.  "dra", the default, is the OSML tile factory's dynamic range
 * adjustment (DRAParameters.from_counts in the OSML imagery toolkit): take
 * the values at the 2nd and 98th percentiles, e_lo and e_hi, then widen
 * the range by 20 % of (e_hi - e_lo) below and 40 % above, never beyond the
 * actual minimum and maximum.  The cut keeps a few hot pixels from
 * compressing the scene into a narrow band of grey; the widening keeps the
 * bright, rare things a detector looks for (roofs, vehicles, ships) from
 * being clipped flat to 255 when they are rarer than the cut.  "percentile"
 * is the plain cut (QGIS's cumulative count cut), "minmax" the actual
 * extremes.
 */
#include "dra.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>

#include "tiler_gdal_internal.h"

#define DRA_BINS 65536
#define DRA_RESERVOIR 262144
/* OSML's widening factors below and above the percentile range. */
#define DRA_WIDEN_LOW 0.2
#define DRA_WIDEN_HIGH 0.4

struct asd_dra_band {
  int histogram;          /* 1: exact histogram, 0: reservoir sample */
  int base;               /* value of bin 0 (0, or -32768 for signed types) */
  unsigned long long *bins;
  double *res;            /* reservoir, sorted once collection ends */
  size_t rn;
  unsigned long long seen;
  uint64_t rng;
  long long count;
  double vmin, vmax;
};

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static asd_dra_band *band_new(GDALDataType dt, int band_index) {
  asd_dra_band *s = VSI_CALLOC_VERBOSE(1, sizeof(*s));
  if (!s) return NULL;
  s->histogram = !GDALDataTypeIsFloating(dt) && !GDALDataTypeIsComplex(dt) && GDALGetDataTypeSizeBits(dt) <= 16;
  s->base = s->histogram && GDALDataTypeIsSigned(dt) ? -32768 : 0;
  s->rng = 0x5DEECE66DULL + (uint64_t)band_index;
  if (s->histogram)
    s->bins = VSI_CALLOC_VERBOSE(DRA_BINS, sizeof(*s->bins));
  else
    s->res = VSI_MALLOC2_VERBOSE(DRA_RESERVOIR, sizeof(double));
  if (!s->bins && !s->res) {
    CPLFree(s);
    return NULL;
  }
  return s;
}

void asd_dra_band_free(asd_dra_band *s) {
  if (!s) return;
  VSIFree(s->bins);
  VSIFree(s->res);
  VSIFree(s);
}

static void band_add(asd_dra_band *s, const double *v, const unsigned char *valid, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const double x = v[i];
    if ((valid && !valid[i]) || isnan(x)) continue;
    if (s->histogram) {
      const long idx = (long)x - s->base;
      if (idx < 0 || idx >= DRA_BINS) continue; /* cannot happen for the types kept here */
      s->bins[idx]++;
    } else {
      s->seen++;
      if (s->rn < DRA_RESERVOIR) {
        s->res[s->rn++] = x;
      } else {
        const uint64_t j = splitmix64(&s->rng) % s->seen;
        if (j < DRA_RESERVOIR) s->res[j] = x;
      }
    }
    if (s->count == 0 || x < s->vmin) s->vmin = x;
    if (s->count == 0 || x > s->vmax) s->vmax = x;
    s->count++;
  }
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

long long asd_dra_band_count(const asd_dra_band *s) { return s ? s->count : 0; }
double asd_dra_band_min(const asd_dra_band *s) { return s ? s->vmin : 0; }
double asd_dra_band_max(const asd_dra_band *s) { return s ? s->vmax : 0; }

double asd_dra_band_percentile(const asd_dra_band *s, double p, int round_up) {
  if (!s || s->count == 0) return 0;
  if (p < 0) p = 0;
  if (p > 100) p = 100;
  const unsigned long long n = s->histogram ? (unsigned long long)s->count : (unsigned long long)s->rn;
  const double r = p / 100.0 * (double)(n - 1);
  unsigned long long k = (unsigned long long)(round_up ? ceil(r) : floor(r));
  if (k >= n) k = n - 1;
  if (!s->histogram) return s->res[k];
  unsigned long long cum = 0;
  for (int i = 0; i < DRA_BINS; i++) {
    cum += s->bins[i];
    if (cum > k) return (double)(i + s->base);
  }
  return s->vmax;
}

/* OSML's cut on a histogram of unit bins: e_lo is the first value whose
 * cumulative count reaches low % of the total, e_hi the last value whose
 * cumulative count does not exceed high % of it (the bin before the one
 * that crosses, empty or not), so the figures are those of the toolkit. */
static void osml_cut(const asd_dra_band *s, double low, double high, double *e_lo, double *e_hi) {
  const double lt = low / 100.0 * (double)s->count, ht = high / 100.0 * (double)s->count;
  unsigned long long cum = 0;
  int first = -1, cross = -1;
  for (int i = 0; i < DRA_BINS && cross < 0; i++) {
    cum += s->bins[i];
    if (first < 0 && (double)cum >= lt) first = i;
    if ((double)cum > ht) cross = i;
  }
  if (first >= 0) *e_lo = (double)(first + s->base);
  if (cross > 0) *e_hi = (double)(cross - 1 + s->base);
  if (*e_hi < *e_lo) *e_hi = *e_lo;
}

void asd_dra_widen(double e_lo, double e_hi, double vmin, double vmax, double *lo, double *hi) {
  const double d = e_hi - e_lo;
  *lo = e_lo - DRA_WIDEN_LOW * d;
  *hi = e_hi + DRA_WIDEN_HIGH * d;
  if (*lo < vmin) *lo = vmin;
  if (*hi > vmax) *hi = vmax;
}

void asd_dra_range(const asd_dra_band *s, asd_scale_mode mode, double low, double high, double *lo, double *hi) {
  *lo = 0;
  *hi = 255;
  if (!s || s->count == 0) return;
  if (mode == ASD_SCALE_MINMAX) {
    *lo = s->vmin;
    *hi = s->vmax;
    return;
  }
  double e_lo = asd_dra_band_percentile(s, low, 0), e_hi = asd_dra_band_percentile(s, high, 1);
  if (mode == ASD_SCALE_DRA) {
    if (s->histogram) osml_cut(s, low, high, &e_lo, &e_hi);
    asd_dra_widen(e_lo, e_hi, s->vmin, s->vmax, lo, hi);
  } else {
    *lo = e_lo;
    *hi = e_hi;
  }
}

/* Adds a window read by asd_read_window (Float64) to the per-band stats. */
static void add_window(asd_dra_band **out, const asd_window_pixels *px) {
  for (int b = 0; b < px->nbands; b++)
    band_add(out[b], (const double *)px->values + (size_t)b * px->npix,
             px->valid ? px->valid + (size_t)b * px->npix : NULL, px->npix);
}

/* One overview band (and its mask) read in strips of rows into the stats:
 * the part of it over the region r (image pixels, scaled to the overview,
 * at least one overview pixel). */
static int add_overview_band(GDALRasterBandH o, const int *r, int iw, int ih, asd_dra_band *s) {
  const int fw = GDALGetRasterBandXSize(o), fh = GDALGetRasterBandYSize(o);
  int ox = (int)((long long)r[0] * fw / iw), oy = (int)((long long)r[1] * fh / ih);
  int ow = (int)(((long long)(r[0] + r[2]) * fw + iw - 1) / iw) - ox;
  int oh = (int)(((long long)(r[1] + r[3]) * fh + ih - 1) / ih) - oy;
  if (ow < 1) ow = 1;
  if (oh < 1) oh = 1;
  if (ox + ow > fw) ox = fw - ow;
  if (oy + oh > fh) oy = fh - oh;
  int rows = (int)((1 << 20) / ow);
  if (rows < 1) rows = 1;
  if (rows > oh) rows = oh;
  double *v = VSI_MALLOC3_VERBOSE((size_t)ow, (size_t)rows, sizeof(double));
  unsigned char *m = VSI_MALLOC2_VERBOSE((size_t)ow, (size_t)rows);
  int rc = v && m ? 0 : -1;
  const int all_valid = GDALGetMaskFlags(o) == GMF_ALL_VALID;
  for (int y = 0; y < oh && rc == 0; y += rows) {
    const int h = y + rows > oh ? oh - y : rows;
    if (GDALRasterIO(o, GF_Read, ox, oy + y, ow, h, v, ow, h, GDT_Float64, 0, 0) != CE_None ||
        (!all_valid &&
         GDALRasterIO(GDALGetMaskBand(o), GF_Read, ox, oy + y, ow, h, m, ow, h, GDT_Byte, 0, 0) != CE_None))
      rc = -1;
    else
      band_add(s, v, all_valid ? NULL : m, (size_t)ow * (size_t)h);
  }
  VSIFree(v);
  VSIFree(m);
  return rc;
}

/* The overview of every band at the level GDAL picks for band 1, or -1
 * when there is none (or the bands' overviews do not match). */
static int overview_level(GDALDatasetH ds, const int *bands, int nbands) {
  GDALRasterBandH b1 = GDALGetRasterBand(ds, bands[0]);
  GDALRasterBandH ov = GDALGetRasterSampleOverviewEx(b1, (GUIntBig)512 * 1024);
  if (!ov || ov == b1) return -1;
  int level = -1;
  for (int i = 0; i < GDALGetOverviewCount(b1); i++)
    if (GDALGetOverview(b1, i) == ov) level = i;
  if (level < 0) return -1;
  const int ow = GDALGetRasterBandXSize(ov), oh = GDALGetRasterBandYSize(ov);
  for (int b = 1; b < nbands; b++) {
    GDALRasterBandH band = GDALGetRasterBand(ds, bands[b]);
    GDALRasterBandH o = level < GDALGetOverviewCount(band) ? GDALGetOverview(band, level) : NULL;
    if (!o || GDALGetRasterBandXSize(o) != ow || GDALGetRasterBandYSize(o) != oh) return -1;
  }
  return level;
}

/* Whole blocks on a grid of up to 16 x 16 spread evenly over both axes of
 * the region r (blocks that straddle its edge are read for their part
 * inside it). */
static int collect_blocks(GDALDatasetH ds, const int *bands, int nbands, const int *r, asd_dra_band **out,
                          char *source, size_t source_size) {
  int bx = 0, by = 0;
  GDALGetBlockSize(GDALGetRasterBand(ds, bands[0]), &bx, &by);
  if (bx <= 0 || by <= 0) bx = GDALGetRasterXSize(ds), by = 1;
  /* Very wide strips or huge blocks: a piece of at most 1024 x 1024. */
  if (bx > 1024) bx = 1024;
  if (by > 1024) by = 1024;
  const int c0 = r[0] / bx, r0 = r[1] / by, c1 = (r[0] + r[2] - 1) / bx, r1 = (r[1] + r[3] - 1) / by;
  const int nbx = c1 - c0 + 1, nby = r1 - r0 + 1;
  const int sx = nbx < 16 ? nbx : 16, sy = nby < 16 ? nby : 16;
  for (int j = 0; j < sy; j++) {
    for (int i = 0; i < sx; i++) {
      int cx = (int)(((long long)i * nbx + nbx / 2) / sx), cy = (int)(((long long)j * nby + nby / 2) / sy);
      if (cx >= nbx) cx = nbx - 1;
      if (cy >= nby) cy = nby - 1;
      int x = (c0 + cx) * bx, y = (r0 + cy) * by, xe = x + bx, ye = y + by;
      if (x < r[0]) x = r[0];
      if (y < r[1]) y = r[1];
      if (xe > r[0] + r[2]) xe = r[0] + r[2];
      if (ye > r[1] + r[3]) ye = r[1] + r[3];
      const int w = xe - x, h = ye - y;
      asd_window_pixels px;
      if (asd_read_window(ds, bands, nbands, x, y, w, h, GDT_Float64, &px) != 0) return -1;
      add_window(out, &px);
      asd_window_pixels_free(&px);
    }
  }
  if (source)
    snprintf(source, source_size, "%d of %lld blocks of %dx%d", sx * sy, (long long)nbx * nby, bx, by);
  return 0;
}

int asd_dra_collect(GDALDatasetH ds, const int *bands, int nbands, const int *region, asd_dra_band **out,
                    char *source, size_t source_size) {
  const int iw = GDALGetRasterXSize(ds), ih = GDALGetRasterYSize(ds);
  int r[4] = {0, 0, iw, ih};
  if (region && region[2] > 0 && region[3] > 0 && region[0] >= 0 && region[1] >= 0 &&
      region[0] + region[2] <= iw && region[1] + region[3] <= ih)
    memcpy(r, region, sizeof r);
  for (int b = 0; b < nbands; b++) out[b] = NULL;
  for (int b = 0; b < nbands; b++) {
    out[b] = band_new(GDALGetRasterDataType(GDALGetRasterBand(ds, bands[b])), b);
    if (!out[b]) goto fail;
  }
  int level = overview_level(ds, bands, nbands);
  if (level >= 0 && (r[2] < iw || r[3] < ih)) {
    /* The overview is picked for the whole image: over a small region it
     * may hold too few pixels to say anything; the region's blocks then. */
    GDALRasterBandH o = GDALGetOverview(GDALGetRasterBand(ds, bands[0]), level);
    const double f = (double)GDALGetRasterBandXSize(o) / iw * GDALGetRasterBandYSize(o) / ih;
    if ((double)r[2] * r[3] * f < 65536) level = -1;
  }
  int done = 0;
  if (level >= 0) {
    done = 1;
    for (int b = 0; b < nbands && done; b++)
      if (add_overview_band(GDALGetOverview(GDALGetRasterBand(ds, bands[b]), level), r, iw, ih, out[b]) != 0)
        done = 0;
    if (done && source) {
      GDALRasterBandH o = GDALGetOverview(GDALGetRasterBand(ds, bands[0]), level);
      snprintf(source, source_size, "overview %dx%d", GDALGetRasterBandXSize(o), GDALGetRasterBandYSize(o));
    }
    if (!done) {
      /* A broken overview is no reason to give up: sample the image. */
      CPLDebug("ASD", "dra: overview level %d unreadable (%s); sampling blocks", level, CPLGetLastErrorMsg());
      CPLErrorReset();
      for (int b = 0; b < nbands; b++) {
        GDALDataType dt = GDALGetRasterDataType(GDALGetRasterBand(ds, bands[b]));
        asd_dra_band_free(out[b]);
        out[b] = band_new(dt, b);
        if (!out[b]) goto fail;
      }
    }
  }
  if (!done && collect_blocks(ds, bands, nbands, r, out, source, source_size) != 0) goto fail;
  for (int b = 0; b < nbands; b++)
    if (!out[b]->histogram) qsort(out[b]->res, out[b]->rn, sizeof(double), cmp_double);
  return 0;

fail:
  for (int b = 0; b < nbands; b++) {
    asd_dra_band_free(out[b]);
    out[b] = NULL;
  }
  return -1;
}
