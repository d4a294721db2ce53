/*
 * asd_app.h: the library entry point of gdal_asyncdetect, in the style of
 * gdal_utils.h.
 *
 * The command-line utility, a GDAL-based pipeline and the QGIS Processing
 * script all run the same code: an options object is built from an argv-style
 * list (exactly the arguments the utility accepts), then asd_detect() runs the
 * whole job on an open source dataset and a destination name.
 *
 *   char *argv[] = {"-endpoint", "ship-detector", "-input-bucket", "b", NULL};
 *   asd_detect_options *o = asd_detect_options_new(argv, NULL);
 *   asd_detect_summary s;
 *   int usage_error = 0;
 *   int status = asd_detect("ships.gpkg", src, o, &s, &usage_error);
 *   asd_detect_options_free(o);
 *
 * Errors are reported through CPLError with one line naming what was wrong.
 */
#ifndef ASD_APP_H
#define ASD_APP_H

#include "asyncdetect/asd_export.h"

#include <signal.h>
#include <stddef.h>

#include "gdal.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Exit status of the utility and return value of asd_detect().  The values
 * are part of the documented command-line interface.
 */
typedef enum asd_detect_status {
  ASD_DETECT_OK = 0,          /* every planned tile succeeded */
  ASD_DETECT_ERROR = 1,       /* error before any work (usage, input, output,
                                 credentials, endpoint); nothing invoked or a
                                 run-level failure */
  ASD_DETECT_PARTIAL = 2,     /* output written, some tiles failed: they are in
                                 the tile-status layer and the metrics file;
                                 rerun with -resume to complete */
  ASD_DETECT_INTERRUPTED = 3  /* stopped by the user (Ctrl-C) or by the
                                 progress callback; journal intact, rerun
                                 with -resume */
} asd_detect_status;

typedef struct asd_detect_options asd_detect_options;

/*
 * What only the command-line program needs: the positional arguments and
 * whether it should stay quiet.  Filled by asd_detect_options_new() when the
 * caller passes one; free with asd_detect_options_for_binary_free().
 */
typedef struct asd_detect_options_for_binary {
  char *source;   /* input raster name (the first of sources) */
  char *dest;     /* output vector dataset name */
  int quiet;      /* -q */
  int show_help;  /* --help / -h was given */
  char **sources; /* every input (SRC1 ... SRCN, then -input_file_list's lines), NULL terminated;
                     with -merge-shards, the shard outputs */
  int merge_shards; /* -merge-shards was given: call asd_detect_merge_shards() */
  int cleanup_pending; /* -cleanup-pending was given: call asd_detect_cleanup_pending() (DST alone will do) */
} asd_detect_options_for_binary;

ASD_API asd_detect_options_for_binary *asd_detect_options_for_binary_new(void);
ASD_API void asd_detect_options_for_binary_free(asd_detect_options_for_binary *b);

/*
 * Parses argv (NULL terminated, without the program name).  Returns NULL on a
 * usage error after a one-line CPLError (CE_Failure, CPLE_IllegalArg) naming
 * the bad option.  Positional arguments are accepted only when for_binary is
 * not NULL (they go to source and dest).
 */
ASD_API asd_detect_options *asd_detect_options_new(char **argv, asd_detect_options_for_binary *for_binary);
ASD_API void asd_detect_options_free(asd_detect_options *o);

/* Progress over tiles finished (0..1).  Returning FALSE from the callback
 * stops submitting new tiles and drains the ones in flight. */
ASD_API void asd_detect_options_set_progress(asd_detect_options *o, GDALProgressFunc progress, void *data);

/*
 * An interrupt counter the run watches (typically incremented by a SIGINT
 * handler): 1 = stop submitting and drain the tiles in flight, 2 or more =
 * stop now, leaving in-flight tiles in the journal for -resume.
 */
ASD_API void asd_detect_options_set_interrupt(asd_detect_options *o, volatile sig_atomic_t *counter);

/* The full --help text (static storage). */
ASD_API const char *asd_detect_usage(void);

/* The figures of one image of a run over several (asd_detect_many). */
typedef struct asd_detect_image_summary {
  char source[1024];        /* the name, without a query string (a presigned URL's signature) */
  int tiles_planned, tiles_skipped, tiles_succeeded, tiles_failed, tiles_not_run;
  long long features_kept;
} asd_detect_image_summary;

/* Figures of one run, filled by asd_detect() even when it fails part way. */
typedef struct asd_detect_summary {
  int tiles_planned;        /* tiles in the plan, including skipped ones */
  int tiles_skipped;        /* skipped by the plan (e.g. entirely nodata) */
  int tiles_resumed;        /* completed by an earlier run (from the journal) */
  int tiles_succeeded;      /* succeeded in total (resumed ones included) */
  int tiles_failed;         /* ended failed, with a reason */
  int tiles_not_run;        /* left for -resume because of an interruption */
  long long features_received; /* detections parsed from the tiles' results */
  long long features_kept;     /* detections written after merging */
  double elapsed_seconds;
  double tiles_per_second;  /* tiles finished in this run / elapsed */
  long long s3_calls;       /* S3 requests made (put, head, get, delete) */
  long long endpoint_calls; /* InvokeEndpointAsync calls */
  long long retries;        /* retried requests, all kinds */
  long long polling_attempts;
  int dry_run;
  int interrupted;
  char tiles_location[1024]; /* datasource holding the tile-status layer ("" if none) */
  /* Throughput: what was sent and what bounded the run (plugin/engine/bound.c). */
  long long bytes_uploaded; /* tile payload bytes sent (once per tile; retries not counted) */
  double bytes_per_tile;    /* mean payload size */
  double encode_cpu_ms_per_tile; /* CPU time of reading + encoding one tile */
  double polls_per_job;     /* mean polls per invoked tile */
  int adaptive_polling;     /* polls followed the learnt result time (asd_config_adaptive_polling) */
  char bound[32];           /* "encoding CPU", "uplink", "endpoint capacity", "polling", ... ("" if not run) */
  char bound_detail[512];   /* the figures behind it, one line */
  /* Added by issue 16 (rasters). */
  int tiles_read_failed;    /* of tiles_failed: pixels unreadable from the input (-resume cannot help) */
  char pixels[640];         /* the range adjustment to 8 bits, one line ("" before the input is open) */
  char georeferencing[256]; /* method -> output SRS, one line */
  long long detections_not_georeferenced; /* written without a geometry (image-pixel fields only) */
  long long detections_trimmed;           /* partly outside the transform's domain: the rest written */
  long long tiles_not_georeferenced;      /* tile footprints without a geometry */
  long long tiles_trimmed;
  char georef_why[160];     /* why shapes could not be georeferenced */
  /* Added by issue 15 (many images, shards). */
  int images;               /* images in the run (1 for asd_detect) */
  asd_detect_image_summary *image_list; /* per image when images > 1, else NULL: asd_detect_summary_clear */
  /* -shard K/N: features_kept were written unmerged (-merge-shards merges them); shard_n 0 otherwise. */
  int shard_k, shard_n;
  /* -cleanup-pending alone: the S3 objects earlier runs left pending, deleted now and not due yet. */
  int cleanup_only;
  long long pending_deleted, pending_left;
  /* Added by issue 15 part 3 (a shaped uplink). */
  double upload_link_busy;          /* share of the upload phase with a tile on the wire */
  double upload_mb_s_while_sending; /* bytes sent / time a tile was on the wire, MB/s */
} asd_detect_summary;

/* The name of a source as the run writes it anywhere (features, journal,
 * metrics, messages): without a URL's query string and user information,
 * where a presigned URL keeps its signature (CPLFree). */
ASD_API char *asd_detect_source_label(const char *name);

/* sizeof(asd_detect_summary), for bindings that mirror the struct. */
ASD_API size_t asd_detect_summary_size(void);

/* Frees what a summary holds (image_list); the figures stay. */
ASD_API void asd_detect_summary_clear(asd_detect_summary *s);

/* Before opening a /vsis3/ (or /vsis3_streaming/) input: makes GDAL read
 * it through the same S3 endpoint, region and credentials as the run will
 * use (-region, -profile, -assume-role, AWS_ENDPOINT_URL*...), set for that
 * bucket only, unless GDAL was configured explicitly (asd_vsis3.h).  Any
 * other path: nothing.  Returns 0, or -1 after one CPLError line. */
ASD_API int asd_detect_prepare_input(const char *src_name, const asd_detect_options *o);

/* The one line that explains a non-zero exit status (CPLFree), or NULL for
 * a run that succeeded: what -q still prints. */
ASD_API char *asd_detect_summary_exit_line(const asd_detect_summary *s, int status);

/*
 * Runs the job: plans tiles over src, sends them to the endpoint, merges and
 * georeferences the detections and writes them to dest.  Returns an
 * asd_detect_status.  *usage_error (if not NULL) is set when the failure is a
 * usage error (bad option combination).  summary may be NULL.
 */
ASD_API int asd_detect(const char *dest, GDALDatasetH src, const asd_detect_options *o,
               asd_detect_summary *summary, int *usage_error);

/*
 * The same job over several images (SRC1 SRC2 ... DST): one worker pool,
 * one output (field source_image), one journal, one line per image in the
 * summary.  sources is a NULL-terminated list of names GDAL opens; each
 * image is opened only while it is needed.  Call asd_detect_summary_clear()
 * afterwards.
 */
ASD_API int asd_detect_many(const char *dest, char **sources, const asd_detect_options *o,
                            asd_detect_summary *summary, int *usage_error);

/*
 * -merge-shards: the outputs of -shard K/N runs (NULL-terminated list)
 * merged into dest as one run over the whole work would have written it;
 * nothing is invoked.  The shards' tiling comes from their journals; the
 * merging and output options from o.
 */
ASD_API int asd_detect_merge_shards(const char *dest, char **shards, const asd_detect_options *o,
                                    asd_detect_summary *summary, int *usage_error);

/*
 * -cleanup-pending: only deletes the S3 objects earlier runs on dest left
 * pending (-cleanup-policy delayed) that are due now, and keeps the others
 * noted in dest's journal.  Needs dest and the AWS settings of o (endpoint,
 * buckets: the deletion scope), no input.  The summary's pending_* say how
 * many.
 */
ASD_API int asd_detect_cleanup_pending(const char *dest, const asd_detect_options *o, asd_detect_summary *summary,
                                       int *usage_error);

/* The human-readable summary the utility prints (free with CPLFree). */
ASD_API char *asd_detect_summary_format(const asd_detect_summary *s);

#ifdef __cplusplus
}
#endif

#endif /* ASD_APP_H */
