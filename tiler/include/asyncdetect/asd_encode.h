/*
 * asd_encode.h: read a tile window and encode it as the payload a model gets.
 *
 * An encoder is made once per image and then used from any number of
 * threads at the same time.  GDAL dataset handles are not thread-safe, so
 * the encoder keeps a pool of handles opened by name (each thread borrows
 * one for the duration of a read, a new one is opened when all are busy, at
 * most max_handles, then callers wait).  This works for local files and for
 * /vsis3/, /vsicurl/ and VRT sources alike.
 *
 * Pixels: the selected bands (default: the first three, or the only one) are
 * read as one pixel-interleaved buffer, converted to Byte with the range
 * adjustment chosen once per image at asd_encoder_new:
 *   ASD_SCALE_AUTO       the default: NONE when every selected band is Byte,
 *                        else DRA;
 *   ASD_SCALE_NONE       values clamped to 0..255 (right for Byte images);
 *   ASD_SCALE_MINMAX     per-band min/max of the approximate statistics;
 *   ASD_SCALE_PERCENTILE per-band percentile clip (default 2 %..98 %);
 *   ASD_SCALE_DRA        the OSML dynamic range adjustment: the percentile
 *                        range widened by 20 % below and 40 % above, within
 *                        the actual min/max (tiler/dra.c);
 *   ASD_SCALE_EXPLICIT   src_min/src_max given by the caller (like -scale).
 * Approximate statistics come from an overview when one is small enough,
 * otherwise from a sample of whole blocks spread over the image, nodata,
 * masked and NaN pixels excluded; nothing is written next to the source (no
 * .aux.xml).  asd_encoder_scaling_info says what was applied.
 *
 * Reads (asd_read_mode): with ASD_READ_BLOCKS the source is read in whole
 * native blocks (GDALGetBlockSize; strips for striped files), each block
 * once per run when tiles are encoded in the plan's row-major order, and
 * tiles are cut from the blocks held in memory.  Blocks are freed once no
 * remaining tile of the current and previous rows of tiles needs them, and
 * the blocks held never exceed block_cache_mb (default 256 MB, or
 * ASD_BLOCK_CACHEMAX) except for the blocks pinned by tiles being cut.  A
 * tile whose blocks alone would exceed the cap (huge blocks, a file stored
 * as one strip) is read with one RasterIO of its window instead, as is
 * every tile with ASD_READ_WINDOW.  ASD_READ_AUTO (the default) is blocks,
 * except for files striped in strips shorter than 64 rows, read by windows
 * because that measured faster (tiler/README.md).  The pixels are the same
 * byte for byte either way; asd_encoder_get_read_stats counts what was
 * read from the source.
 *
 * Encoding goes through /vsimem/: the driver writes the chosen format into
 * a /vsimem/ file (GTiff with Create + RasterIO, the others by CreateCopy
 * from a MEM dataset over the pixels), and the encoder takes over that
 * file's buffer (VSIGetMemFileBuffer with bUnlinkAndSeize): no temp files
 * and no copy.  Memory in use is therefore the tiles in flight (one
 * read buffer + one encoded payload each) plus GDAL's block cache, never
 * the image size.  GDAL's block cache (GDAL_CACHEMAX, a process-wide
 * setting) is left as the process has it.
 *
 * Skipping: unless disabled, a tile whose pixels are all nodata or constant
 * is not encoded; asd_encoder_encode returns ASD_ENCODE_SKIPPED and the
 * reason (see asd_plan.h).
 */
#ifndef ASD_ENCODE_H
#define ASD_ENCODE_H

#include "asyncdetect/asd_export.h"

#include <stddef.h>

#include <gdal.h>

#include "asyncdetect/asd_plan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_encode_format {
  ASD_FORMAT_PNG = 0,
  ASD_FORMAT_JPEG = 1,
  ASD_FORMAT_GTIFF = 2,
  ASD_FORMAT_NITF = 3,
  ASD_FORMAT_WEBP = 4 /* 3 or 4 bands; lossy at jpeg_quality unless LOSSLESS=YES */
} asd_encode_format;

/* Parses "PNG", "JPEG"/"JPG", "GTiff"/"GeoTIFF"/"TIFF", "NITF", "WEBP" (any
 * case); -1 if unknown. */
ASD_API int asd_encode_format_from_name(const char *name);
ASD_API const char *asd_encode_format_name(asd_encode_format f);  /* GDAL driver name */
ASD_API const char *asd_encode_content_type(asd_encode_format f); /* e.g. "image/png" */

typedef enum asd_scale_mode {
  ASD_SCALE_NONE = 0,
  ASD_SCALE_MINMAX = 1,
  ASD_SCALE_PERCENTILE = 2,
  ASD_SCALE_EXPLICIT = 3,
  ASD_SCALE_DRA = 4,
  ASD_SCALE_AUTO = 5
} asd_scale_mode;

/* "none", "minmax", "percentile", "dra", "explicit", "auto" -> mode; -1 if
 * unknown. */
ASD_API int asd_scale_mode_from_name(const char *name);
ASD_API const char *asd_scale_mode_name(asd_scale_mode m);

/* Parses a -scale-mode value: none | minmax | auto | percentile[:LOW:HIGH] |
 * dra[:LOW:HIGH] (percentiles 0 <= LOW < HIGH <= 100; default 2:98).  Sets
 * *mode and, when given, *low / *high.  Returns 0, or -1 with err filled. */
ASD_API int asd_scale_mode_parse(const char *spec, asd_scale_mode *mode, double *low, double *high, char *err,
                         size_t err_size);

#define ASD_ENCODE_MAX_BANDS 16

/* How tile pixels are read from the source (see the essay above). */
typedef enum asd_read_mode {
  ASD_READ_AUTO = 0,   /* blocks; windows for files in strips < 64 rows (default) */
  ASD_READ_BLOCKS = 1, /* native blocks, a window read per tile only past the cap */
  ASD_READ_WINDOW = 2  /* one RasterIO of each tile's window, GDAL's block cache shared */
} asd_read_mode;

/* "auto", "blocks", "window" -> mode; -1 if unknown. */
ASD_API int asd_read_mode_from_name(const char *name);

typedef struct asd_encode_options {
  asd_encode_format format; /* default PNG */
  int jpeg_quality;         /* 1..100, default 90 (JPEG, WEBP, and NITF with C3) */
  const char *compress;     /* GTiff COMPRESS= (default DEFLATE); NITF IC= (default NC) */
  /* Creation options of the tile format's GDAL driver (CSL of NAME=VALUE, may
   * be NULL), e.g. ZLEVEL=1 for PNG, QUALITY=75 for JPEG, LOSSLESS=YES for
   * WEBP, COMPRESS=LZW for GTiff: they override the settings above, and one
   * the driver does not know (or a value out of its range) fails
   * asd_encoder_new with a message naming it. */
  char **creation_options;
  int bands[ASD_ENCODE_MAX_BANDS]; /* 1-based; band_count 0 = default selection */
  int band_count;
  asd_scale_mode scale;     /* default AUTO (DRA for non-Byte bands, NONE for Byte) */
  double percentile_low;    /* default 2.0 */
  double percentile_high;   /* default 98.0 */
  /* The part of the image the tiles cover (x, y, w, h in pixels; w = 0 for the
   * whole image): the dynamic-range statistics are taken there, so that a
   * -srcwin over a bright harbour is not stretched by the dark sea around it. */
  int region[4];
  /* ASD_SCALE_EXPLICIT: one pair for all bands (scale_count 1) or one per band. */
  double src_min[ASD_ENCODE_MAX_BANDS];
  double src_max[ASD_ENCODE_MAX_BANDS];
  int scale_count;
  int skip_nodata;          /* default 1 */
  int skip_constant;        /* default 1 */
  int pad_to_width;         /* pad clipped tiles to this size (0 = no padding) */
  int pad_to_height;
  int georeference_payload; /* GTiff/NITF: write the tile's geotransform + SRS (default 1) */
  int max_handles;          /* dataset handles in the pool (default 8) */
  char **open_options;      /* GDALOpenEx open options for the pool's handles */
  asd_read_mode read_mode;  /* default AUTO; config option ASD_READ_MODE when AUTO */
  int block_cache_mb;       /* cap on the blocks held (0: ASD_BLOCK_CACHEMAX, else 256) */
} asd_encode_options;

ASD_API void asd_encode_options_init(asd_encode_options *o);

typedef struct asd_encoder asd_encoder;

/* Opens the image by name (GDALOpenEx, read-only, shared=no), checks the
 * bands, and computes the range adjustment.  NULL after CPLError on error. */
ASD_API asd_encoder *asd_encoder_new(const char *dataset_name, const asd_encode_options *o);
/* Over the caller's open dataset, for one that cannot be reopened by name
 * (MEM, a dataset opened with open options): the handle is the encoder's
 * only one, used by one reader at a time and never closed; the caller keeps
 * it open, and does not use it elsewhere, until asd_encoder_free. */
ASD_API asd_encoder *asd_encoder_new_shared(GDALDatasetH ds, const asd_encode_options *o);
ASD_API void asd_encoder_free(asd_encoder *e);

/* The per-band linear adjustment in use: byte = (v - offset[b]) * scale[b]
 * clamped to 0..255.  Returns the band count. */
ASD_API int asd_encoder_scaling(const asd_encoder *e, double *offset, double *scale);
ASD_API int asd_encoder_band_count(const asd_encoder *e);

/* What the range adjustment is, for summaries and metrics. */
typedef struct asd_encode_scaling_info {
  asd_scale_mode mode;      /* as applied: AUTO resolved to NONE or DRA */
  int automatic;            /* 1 when mode was chosen by AUTO */
  double percentile_low, percentile_high; /* PERCENTILE and DRA */
  GDALDataType data_type;   /* of the first selected band */
  int nbands;
  int bands[ASD_ENCODE_MAX_BANDS];      /* 1-based source bands */
  double src_min[ASD_ENCODE_MAX_BANDS]; /* value mapped to 0 */
  double src_max[ASD_ENCODE_MAX_BANDS]; /* value mapped to 255 */
  long long samples[ASD_ENCODE_MAX_BANDS]; /* valid pixels behind the statistics (0: none read) */
  char source[96];          /* what the statistics were read from, "" when none were */
} asd_encode_scaling_info;

ASD_API void asd_encoder_scaling_info(const asd_encoder *e, asd_encode_scaling_info *info);

/* One line for a summary, e.g. "UInt16 -> Byte: dra 2..98 % per band
 * (band 1 479..2002, band 2 527..1897, band 3 166..1922; 96 of 96 blocks
 * of 256x256)".  CPLFree the result. */
ASD_API char *asd_encode_scaling_describe(const asd_encode_scaling_info *info);

typedef enum asd_encode_status {
  ASD_ENCODE_READ_ERROR = -2, /* the pixels could not be read from the input (GDAL's cause in the CPLError) */
  ASD_ENCODE_ERROR = -1,      /* any other failure (encoding, memory) */
  ASD_ENCODE_OK = 0,
  ASD_ENCODE_SKIPPED = 1
} asd_encode_status;

/* An encoded tile.  data is owned by the payload (free with
 * asd_payload_free, which calls VSIFree). */
typedef struct asd_payload {
  unsigned char *data;
  size_t len;
  const char *content_type; /* static string */
  asd_skip_reason skip;     /* why it was skipped (ASD_ENCODE_SKIPPED) */
} asd_payload;

/* Reads and encodes the window (x, y, w, h) of the tile.  Thread-safe.
 * On ASD_ENCODE_OK out->data holds the bytes; on SKIPPED out->skip says
 * why and out->data is NULL; on READ_ERROR or ERROR a CPLError was emitted
 * (for a read error its message ends with GDAL's own cause). */
ASD_API asd_encode_status asd_encoder_encode(asd_encoder *e, const asd_tile *t, asd_payload *out);
ASD_API void asd_payload_free(asd_payload *p);

/* What the encoder has read from the source so far (all threads). */
typedef struct asd_encoder_read_stats {
  asd_read_mode mode;           /* ASD_READ_BLOCKS or ASD_READ_WINDOW, as resolved */
  int block_width, block_height; /* the source's native block size */
  long long tiles_from_blocks;  /* tiles cut from blocks */
  long long blocks_read;        /* native blocks read from the source (all selected bands at once) */
  long long blocks_reread;      /* of those, blocks read again after being freed (-1: not tracked) */
  long long block_bytes_read;   /* decoded bytes of those reads (values + masks) */
  long long window_reads;       /* tiles read with one RasterIO of their window */
  long long window_bytes_read;  /* decoded bytes of those reads (values + masks) */
  long long cache_bytes;        /* blocks held now */
  long long cache_peak_bytes;   /* most blocks held at once */
  long long cache_max_bytes;    /* the cap */
} asd_encoder_read_stats;

ASD_API void asd_encoder_get_read_stats(asd_encoder *e, asd_encoder_read_stats *s);

#ifdef __cplusplus
}
#endif

#endif /* ASD_ENCODE_H */
