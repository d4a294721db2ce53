/*
 * dra.h: image statistics for the encoder's range adjustment (internal,
 * not part of the public API; dra.c explains the choices).
 *
 * The encoder maps every tile of an image to 8 bits with one linear map
 * per band, fixed once per image.  This module decides that map: it samples
 * the image (an overview, or whole blocks spread over it), keeps per band
 * either an exact histogram (integer types of up to 16 bits) or a bounded,
 * deterministic sample of the values (other types), with nodata, masked
 * and NaN pixels left out, and turns those statistics into the value range
 * [lo, hi] that becomes 0..255 for the mode asked for.
 */
#ifndef ASD_TILER_DRA_H
#define ASD_TILER_DRA_H

#include <gdal.h>

#include "asyncdetect/asd_encode.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-band statistics of the valid pixels sampled. */
typedef struct asd_dra_band asd_dra_band;

/* Collects the statistics of the given bands (1-based) of ds: from the
 * overview GDAL picks for about half a million pixels if there is one,
 * else from up to 16 x 16 whole blocks spread over the image (every block
 * when there are fewer).  out[b] receives band b's statistics (free with
 * asd_dra_band_free); source (may be NULL) a short description of what was
 * read, e.g. "overview 750x500" or "96 of 96 blocks of 256x256".  Returns 0,
 * or -1 after CPLError (a read error).  region (x, y, w, h; NULL or w = 0
 * for the whole image) limits both samples to that part of the image. */
int asd_dra_collect(GDALDatasetH ds, const int *bands, int nbands, const int *region, asd_dra_band **out,
                    char *source, size_t source_size);
void asd_dra_band_free(asd_dra_band *s);

/* Valid samples seen, and their minimum and maximum (undefined if none). */
long long asd_dra_band_count(const asd_dra_band *s);
double asd_dra_band_min(const asd_dra_band *s);
double asd_dra_band_max(const asd_dra_band *s);

/* The value at percentile p (0..100) of the valid samples: the sample of
 * rank floor(p/100 * (n - 1)) when round_up is 0, ceil(...) when it is 1
 * (ranks from 0, samples sorted).  Exact for histogram bands. */
double asd_dra_band_percentile(const asd_dra_band *s, double p, int round_up);

/* The source range [lo, hi] mapped to 0..255 for mode (ASD_SCALE_MINMAX,
 * ASD_SCALE_PERCENTILE or ASD_SCALE_DRA, with percentiles low/high).  A
 * band without any valid sample gives 0..255. */
void asd_dra_range(const asd_dra_band *s, asd_scale_mode mode, double low, double high, double *lo, double *hi);

/* Exposed for the unit tests: the DRA rule on given statistics.  e_lo/e_hi
 * are the low/high percentile values, vmin/vmax the actual extremes. */
void asd_dra_widen(double e_lo, double e_hi, double vmin, double vmax, double *lo, double *hi);

#ifdef __cplusplus
}
#endif

#endif
