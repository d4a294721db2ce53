/*
 * asd_detect_options.h: the options structure behind asd_app.h's opaque
 * asd_detect_options.  Internal (not installed): the option parser
 * (apps/gdal_asyncdetect_lib.c) fills it, the run module (run/) reads it,
 * and the unit tests check what a command line parses into.
 *
 * Adding an option: a field here (in the group it belongs to, with a comment
 * saying what it means and its default), its parsing and its --help line in
 * apps/gdal_asyncdetect_lib.c, its free in asd_detect_options_free(), and
 * its use in the stage of run/ that needs it (see run/asd_run.h).
 */
#ifndef ASD_DETECT_OPTIONS_H
#define ASD_DETECT_OPTIONS_H

#include <signal.h>

#include "gdal.h"

#ifdef __cplusplus
extern "C" {
#endif

struct asd_detect_options {
  /* Endpoint and AWS. */
  char *endpoint;
  char *region;
  char *profile;
  char *assume_role;
  char *external_id;
  char *content_type;
  char *accept;
  char *custom_attributes;
  char **config; /* field=value overrides of the engine configuration */

  /* Tiling. */
  int tile_size;
  int overlap;
  int has_srcwin;
  int srcwin[4];
  int has_projwin;
  double projwin[4];
  char *projwin_srs;
  int *bands;
  int nbands;
  int scale_mode; /* 0 none, 1 automatic (per band min/max), 2 explicit */
  double scale[2]; /* src_min src_max, mapped to 0..255 */
  char *scale_spec; /* -scale-mode none|minmax|auto|percentile[:LOW:HIGH]|dra[:LOW:HIGH]; NULL = auto */
  char *tile_format;
  char **tile_creation_options; /* -tco NAME=VALUE */
  int skip_nodata;
  int encoder_threads;

  /* Merging. */
  char *merge;        /* nmm | nms | soft-nms | none */
  char *match_metric; /* ios | iou */
  double merge_threshold;
  double min_score;
  int class_agnostic;
  double soft_nms_sigma;

  /* Output. */
  char *format;
  char **dsco;
  char **lco;
  char *layer_name;
  char *status_layer_name;
  char *status_output; /* -status-output: separate datasource for the tile layer */
  char *t_srs;
  char **transformer_options;
  int overwrite;
  int append;

  /* Run. */
  char *metrics_path;
  char *quicklook;     /* -quicklook FILE.png: a picture of the run (tiler/quicklook.c) */
  int quicklook_width; /* -quicklook-width N (1024) */
  int quiet;
  int dry_run;
  int resume;
  int cleanup_pending; /* -cleanup-pending: only delete what earlier runs left pending */
  int shard_k, shard_n; /* -shard K/N: the K-th (0-based) of N parts; shard_n 0 = the whole work */
  int merge_shards;     /* -merge-shards: the positional arguments are shard outputs, then DST */
  char **merge_sources; /* -merge-source SRC (or -input_file_list with -merge-shards): the sources again,
                           under their full names (a presigned URL's query string), matched to the
                           shards' images by label; NULL = reopen the names the shards recorded */
  char **merge_source_list; /* the same from -input_file_list: the whole run's list, of which the shards
                               given may hold a part (so a name no shard has is no error there) */
  GDALProgressFunc progress;
  void *progress_data;
  volatile sig_atomic_t *interrupt;
};

#ifdef __cplusplus
}
#endif

#endif
