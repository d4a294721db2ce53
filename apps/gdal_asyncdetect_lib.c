/*
 * gdal_asyncdetect_lib.c: the utility's library entry point (asd_app.h):
 * option parsing and the run that ties every module together.
 *
 * The utility is a thin main over this file, as GDAL's own utilities are thin
 * mains over gdal_utils.h, so that the command line, a C pipeline and the
 * QGIS Processing script run exactly the same code with exactly the same
 * option spelling.  asd_detect_options_new() takes an argv list and reports
 * a usage error as one CPLError line naming the bad option; asd_detect()
 * does the job.
 *
 * One tile's life, as this file drives it:
 *
 *   plan (asd_plan)  ->  encode (asd_encode, several encoder threads)
 *     ->  pool (asd_pool: S3 upload, InvokeEndpointAsync, polling)
 *     ->  on_submitted: journal "submitted" (inference id, S3 locations)
 *     ->  on_done: journal "succeeded" with the result text, or "failed"
 *         with a reason
 *     ->  features (asd_features: tile pixels -> image pixels)
 *     ->  merge (asd_merge: held until the neighbours are done)
 *     ->  georef (asd_georef)  ->  writer (asd_writer, detections layer)
 *
 * and at the end every planned tile is written to the tile-status layer as
 * succeeded, failed (with its reason and inference id) or skipped, so a
 * user sees where the gaps are.
 *
 * Resuming.  The journal (journal.c) is the single source of truth: it keeps
 * each succeeded tile's result text.  On -resume the tiles recorded as
 * succeeded are not invoked again: their stored results are fed to the merger
 * as if they had just arrived; tiles recorded as submitted are re-polled at
 * the S3 locations the endpoint named (the engine's "resume" jobs), and only
 * tiles never submitted, or failed, are invoked.  The detections layer is
 * rebuilt from the merged results, so that a run killed at any point and then
 * resumed gives the same output as a clean run: no duplicate, no gap.  An
 * output the interrupted run created is created again; one it appended to
 * (and any GeoPackage, which holds the journal) is reopened and only this
 * image's features are deleted first (the journal notes which case it is).
 *
 * Output.  Inside a GeoPackage the journal writes through the writer's own
 * connection: detections go in large transactions and each journal state
 * change commits the open one at once (journal_commit), so a state is in the
 * file as soon as it is recorded and no second connection ever waits on a
 * lock.  Formats that hold one layer per file get the tile-status layer in a
 * sibling file (out.geojson -> out_tiles.geojson) and the journal in
 * out.geojson.asdjournal.gpkg.  -overwrite replaces the two layers of a
 * GeoPackage (the user's other layers stay, as with ogr2ogr) and a one-layer
 * file whole.
 *
 * Interruption.  The caller's interrupt counter (the utility's SIGINT
 * handler) and the progress callback are watched by the main loop: the
 * first request stops submitting new tiles and drains the ones in flight;
 * the second stops at once, leaving in-flight tiles as "submitted" in the
 * journal, where -resume will find them.
 */
#include "asyncdetect/asd_app.h"
#include "asyncdetect/asd_aws.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_errors.h"
#include "asyncdetect/asd_features.h"
#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_http.h"
#include "asyncdetect/asd_journal.h"
#include "asyncdetect/asd_merge.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_plan.h"
#include "asyncdetect/asd_pool.h"
#include "asyncdetect/asd_writer.h"
#include "gdal_asyncdetect_priv.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "cpl_vsi.h"
#include "gdal.h"
#include "ogr_api.h"
#include "ogr_srs_api.h"

#include <json-c/json.h>
#include <time.h>

/* ------------------------------------------------------------------ options */

/*
 * The AsyncEndpointConfig fields, each with its command-line flag.  Flags are
 * stored as field=value overrides and applied over the engine's
 * configuration after the ASYNC_SM_* environment, so the precedence is
 * flag > environment > default.  kind: 'n' number >= 0, 'b' boolean,
 * 's' string, 'p' cleanup policy.
 */
static const struct config_flag {
  const char *flag;
  const char *field;
  char kind;
} config_flags[] = {
    {"-input-bucket", "input_bucket", 's'},
    {"-output-bucket", "output_bucket", 's'},
    {"-input-prefix", "input_prefix", 's'},
    {"-output-prefix", "output_prefix", 's'},
    {"-max-wait-time", "max_wait_time", 'n'},
    {"-polling-interval", "polling_interval", 'n'},
    {"-max-polling-interval", "max_polling_interval", 'n'},
    {"-backoff-multiplier", "exponential_backoff_multiplier", 'n'},
    {"-max-retries", "max_retries", 'n'},
    {"-cleanup", "cleanup_enabled", 'b'},
    {"-cleanup-policy", "cleanup_policy", 'p'},
    {"-cleanup-delay", "cleanup_delay_seconds", 'n'},
    {"-worker-optimization", "enable_worker_optimization", 'b'},
    {"-submission-workers", "submission_workers", 'n'},
    {"-polling-workers", "polling_workers", 'n'},
    {"-max-concurrent-jobs", "max_concurrent_jobs", 'n'},
    {"-job-queue-timeout", "job_queue_timeout", 'n'},
};
#define N_CONFIG_FLAGS ((int)(sizeof(config_flags) / sizeof(config_flags[0])))


static const char *const usage_parts[] = {
    "Usage: gdal_asyncdetect [--help] [--help-general]\n"
    "       -endpoint NAME [-input-bucket BUCKET] [-output-bucket BUCKET]\n"
    "       [-input-prefix PREFIX] [-output-prefix PREFIX]\n"
    "       [-region REGION] [-profile NAME] [-assume-role ARN [-external-id ID]]\n"
    "       [-content-type TYPE] [-accept TYPE] [-custom-attributes TEXT]\n"
    "       [-max-wait-time S] [-polling-interval S] [-max-polling-interval S]\n"
    "       [-backoff-multiplier F] [-max-retries N] [-cleanup YES|NO]\n"
    "       [-cleanup-policy immediate|delayed|disabled] [-cleanup-delay S]\n"
    "       [-worker-optimization YES|NO] [-submission-workers N] [-polling-workers N]\n"
    "       [-max-concurrent-jobs N] [-job-queue-timeout S]\n"
    "       [-tile-size N] [-overlap N] [-srcwin XOFF YOFF XSIZE YSIZE]\n"
    "       [-projwin ULX ULY LRX LRY [-projwin_srs SRS]] [-b BAND]...\n"
    "       [-scale [SRC_MIN SRC_MAX]] [-tile-format PNG|GTiff|JPEG|NITF]\n"
    "       [-skip-nodata | -no-skip-nodata] [-encoder-threads N]\n"
    "       [-merge nmm|nms|soft-nms|none] [-match-metric ios|iou] [-merge-threshold T]\n"
    "       [-soft-nms-sigma S] [-min-score S] [-class-agnostic]\n"
    "       [-of FORMAT] [-dsco NAME=VALUE]... [-lco NAME=VALUE]... [-nln NAME]\n"
    "       [-status-nln NAME] [-status-output DST] [-t_srs SRS] [-to NAME=VALUE]...\n"
    "       [-overwrite | -append]\n"
    "       [-metrics FILE.json] [-q] [-dry-run] [-resume]\n"
    "       SRC_RASTER DST_VECTOR\n"
    "\n"
    "Runs object detection over SRC_RASTER through an Amazon SageMaker asynchronous\n"
    "inference endpoint and writes the georeferenced detections to DST_VECTOR.\n"
    "\n",
    "Endpoint and AWS (the standard credential chain, AWS_REGION and AWS_ENDPOINT_URL*\n"
    "apply, so the same command runs against AWS or the local asyncdetect_endpoint):\n"
    "  -endpoint NAME            SageMaker endpoint name (required).\n"
    "  -input-bucket BUCKET      bucket receiving the tiles (ASYNC_SM_INPUT_BUCKET).\n"
    "  -output-bucket BUCKET     bucket for results, when the endpoint's config uses it\n"
    "                            (ASYNC_SM_OUTPUT_BUCKET); results are always polled where\n"
    "                            the endpoint says they will be.\n"
    "  -input-prefix P, -output-prefix P   key prefixes (async-inference/input/, .../output/).\n"
    "  -region REGION, -profile NAME       override AWS_REGION / AWS_PROFILE.\n"
    "  -assume-role ARN [-external-id ID]  call STS AssumeRole first and use its credentials.\n"
    "  -content-type TYPE, -accept TYPE    X-Amzn-SageMaker-Content-Type / -Accept.\n"
    "  -custom-attributes TEXT   passed to the model unchanged (e.g. model_selection=blobs).\n"
    "\n"
    "Engine (AsyncEndpointConfig; each flag overrides its ASYNC_SM_* variable):\n"
    "  -max-wait-time S (3600)  -polling-interval S (30)  -max-polling-interval S (300)\n"
    "  -backoff-multiplier F (1.5)  -max-retries N (3)  -cleanup YES|NO (YES)\n"
    "  -cleanup-policy immediate|delayed|disabled (immediate)  -cleanup-delay S (300)\n"
    "  -worker-optimization YES|NO (YES)  -submission-workers N (4)  -polling-workers N (2)\n"
    "  -max-concurrent-jobs N (100)  -job-queue-timeout S (300)\n"
    "\n",
    "Tiling:\n"
    "  -tile-size N (512)  -overlap N (128 pixels shared by neighbouring tiles)\n"
    "  -srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY [-projwin_srs SRS]\n"
    "                            process only this window of the raster.\n"
    "  -b BAND                   band to send (repeat; default: all, or the first 3).\n"
    "  -scale [SMIN SMAX]        rescale to 8 bits (no values: each band's min/max).\n"
    "  -tile-format F            tile encoding sent to the model (PNG by default).\n"
    "  -skip-nodata (default) / -no-skip-nodata   skip tiles that are entirely nodata.\n"
    "  -encoder-threads N        threads reading and encoding tiles (default 2).\n"
    "\n"
    "Merging detections across tile overlaps:\n"
    "  -merge nmm|nms|soft-nms|none (nmm)  -match-metric ios|iou (ios)\n"
    "  -merge-threshold T (0.5)  -soft-nms-sigma S (0.5)  -min-score S (0)\n"
    "  -class-agnostic           merge boxes of different classes too.\n"
    "\n"
    "Output:\n"
    "  -of FORMAT (default: from the extension, else GPKG)  -dsco NAME=VALUE  -lco NAME=VALUE\n"
    "  -nln NAME (detections)\n"
    "  -status-nln NAME          tile footprints with their status (default: tiles, or\n"
    "                            NAME_tiles with -nln NAME).  One-layer formats (GeoJSON,\n"
    "                            CSV, FlatGeobuf, .shp...) get them in a sibling file of the\n"
    "                            same format: out.geojson -> out_tiles.geojson.\n"
    "  -status-output DST        write the tile-status layer to DST instead (format from\n"
    "                            its extension).\n"
    "  -t_srs SRS (EPSG:4326)  -to NAME=VALUE  transformer options (RPC_HEIGHT, RPC_DEM...)\n"
    "  -overwrite                replace the output's two layers (a one-layer file whole).\n"
    "  -append                   add to an existing output (e.g. a second image).\n"
    "  --config ASD_OUTPUT_BATCH_SIZE N   detections per transaction (10000; also every 5 s).\n"
    "\n"
    "Run:\n"
    "  -metrics FILE.json        write figures, failed tiles with reason and inference id.\n"
    "  -q                        quiet: no progress bar, no summary.\n"
    "  -dry-run                  plan tiles, check credentials and bucket access; invoke nothing.\n"
    "  -resume                   finish an interrupted run from its journal: completed tiles\n"
    "                            are not invoked again, in-flight ones are polled again.\n"
    "\n"
    "Exit status: 0 every tile succeeded; 1 error before any work (usage, input, output,\n"
    "credentials, endpoint); 2 output written but some tiles failed (see the tile-status\n"
    "layer and -metrics; rerun with -resume); 3 interrupted (rerun with -resume).\n",
    NULL};

/* ISO C bounds the length of one string literal, so the text is kept in
   parts and joined once. */
static char *usage_text;
static pthread_once_t usage_once = PTHREAD_ONCE_INIT;
static void build_usage(void) {
  size_t n = 1;
  for (int i = 0; usage_parts[i]; i++) n += strlen(usage_parts[i]);
  usage_text = malloc(n);
  if (!usage_text) return;
  usage_text[0] = '\0';
  for (int i = 0; usage_parts[i]; i++) strcat(usage_text, usage_parts[i]);
}

const char *asd_detect_usage(void) {
  pthread_once(&usage_once, build_usage);
  return usage_text ? usage_text : usage_parts[0];
}

asd_detect_options_for_binary *asd_detect_options_for_binary_new(void) {
  return CPLCalloc(1, sizeof(asd_detect_options_for_binary));
}

void asd_detect_options_for_binary_free(asd_detect_options_for_binary *b) {
  if (!b) return;
  CPLFree(b->source);
  CPLFree(b->dest);
  CPLFree(b);
}

void asd_detect_options_free(asd_detect_options *o) {
  if (!o) return;
  CPLFree(o->endpoint);
  CPLFree(o->region);
  CPLFree(o->profile);
  CPLFree(o->assume_role);
  CPLFree(o->external_id);
  CPLFree(o->content_type);
  CPLFree(o->accept);
  CPLFree(o->custom_attributes);
  CSLDestroy(o->config);
  CPLFree(o->projwin_srs);
  CPLFree(o->bands);
  CPLFree(o->tile_format);
  CPLFree(o->merge);
  CPLFree(o->match_metric);
  CPLFree(o->format);
  CSLDestroy(o->dsco);
  CSLDestroy(o->lco);
  CPLFree(o->layer_name);
  CPLFree(o->status_layer_name);
  CPLFree(o->status_output);
  CPLFree(o->t_srs);
  CSLDestroy(o->transformer_options);
  CPLFree(o->metrics_path);
  CPLFree(o);
}

void asd_detect_options_set_progress(asd_detect_options *o, GDALProgressFunc progress, void *data) {
  o->progress = progress;
  o->progress_data = data;
}

void asd_detect_options_set_interrupt(asd_detect_options *o, volatile sig_atomic_t *counter) {
  o->interrupt = counter;
}

static int usage_error(const char *fmt, ...) CPL_PRINT_FUNC_FORMAT(1, 2);
static int usage_error(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  CPLError(CE_Failure, CPLE_IllegalArg, "%s (see gdal_asyncdetect --help)", msg);
  return -1;
}

/* Strict number parsing: the whole text must be a finite number. */
static int parse_double(const char *s, double *out) {
  if (!s || !*s) return -1;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int parse_int(const char *s, int *out) {
  double v;
  if (parse_double(s, &v) != 0 || v != floor(v) || v < INT_MIN || v > INT_MAX) return -1;
  *out = (int)v;
  return 0;
}

static int is_number(const char *s) {
  double v;
  return parse_double(s, &v) == 0;
}

static int parse_bool(const char *s, int *out) {
  if (EQUAL(s, "YES") || EQUAL(s, "TRUE") || EQUAL(s, "ON") || EQUAL(s, "1")) {
    *out = 1;
    return 0;
  }
  if (EQUAL(s, "NO") || EQUAL(s, "FALSE") || EQUAL(s, "OFF") || EQUAL(s, "0")) {
    *out = 0;
    return 0;
  }
  return -1;
}

static void set_str(char **dst, const char *v) {
  CPLFree(*dst);
  *dst = CPLStrdup(v);
}

static const char *const tile_formats[] = {"PNG", "GTiff", "JPEG", "NITF", NULL};
static const char *const merge_methods[] = {"nmm", "nms", "soft-nms", "none", NULL};

static int in_list(const char *v, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (EQUAL(v, list[i])) return i;
  return -1;
}

/* "NAME=VALUE" with a non-empty NAME. */
static int is_name_value(const char *s) {
  const char *eq = strchr(s, '=');
  return eq && eq != s;
}

asd_detect_options *asd_detect_options_new(char **argv, asd_detect_options_for_binary *for_binary) {
  asd_detect_options *o = CPLCalloc(1, sizeof(*o));
  o->tile_size = 512;
  o->overlap = 128;
  o->skip_nodata = 1;
  o->encoder_threads = 2;
  o->merge = CPLStrdup("nmm");
  o->match_metric = CPLStrdup("ios");
  o->merge_threshold = 0.5;
  o->soft_nms_sigma = 0.5;
  o->min_score = 0.0;
  o->tile_format = CPLStrdup("PNG");
  o->layer_name = CPLStrdup("detections");
  int positional = 0;
  int argc = CSLCount(argv);

/* Checks that option argv[i] has n arguments after it. */
#define NEED(n)                                                                                            \
  do {                                                                                                     \
    if (i + (n) >= argc) {                                                                                 \
      usage_error("option %s needs %d argument%s", argv[i], (n), (n) > 1 ? "s" : "");                      \
      goto fail;                                                                                           \
    }                                                                                                      \
  } while (0)

  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int handled = 0;
    for (int k = 0; k < N_CONFIG_FLAGS; k++) {
      if (!EQUAL(a, config_flags[k].flag)) continue;
      NEED(1);
      const char *v = argv[++i];
      double d;
      int b;
      switch (config_flags[k].kind) {
        case 'n':
          if (parse_double(v, &d) != 0 || d < 0) {
            usage_error("option %s wants a number >= 0, not '%s'", a, v);
            goto fail;
          }
          break;
        case 'b':
          if (parse_bool(v, &b) != 0) {
            usage_error("option %s wants YES or NO, not '%s'", a, v);
            goto fail;
          }
          v = b ? "true" : "false";
          break;
        case 'p':
          if (!EQUAL(v, "immediate") && !EQUAL(v, "delayed") && !EQUAL(v, "disabled")) {
            usage_error("option %s wants immediate, delayed or disabled, not '%s'", a, v);
            goto fail;
          }
          break;
        default:
          if (!*v) {
            usage_error("option %s wants a non-empty value", a);
            goto fail;
          }
      }
      o->config = CSLSetNameValue(o->config, config_flags[k].field, v);
      handled = 1;
      break;
    }
    if (handled) continue;

    if (EQUAL(a, "--help") || EQUAL(a, "-h") || EQUAL(a, "-help") || EQUAL(a, "--help-app")) {
      if (for_binary) for_binary->show_help = 1;
    } else if (EQUAL(a, "-endpoint")) {
      NEED(1);
      set_str(&o->endpoint, argv[++i]);
    } else if (EQUAL(a, "-region")) {
      NEED(1);
      set_str(&o->region, argv[++i]);
    } else if (EQUAL(a, "-profile")) {
      NEED(1);
      set_str(&o->profile, argv[++i]);
    } else if (EQUAL(a, "-assume-role")) {
      NEED(1);
      set_str(&o->assume_role, argv[++i]);
      if (!STARTS_WITH(o->assume_role, "arn:")) {
        usage_error("option -assume-role wants a role ARN (arn:aws:iam::ACCOUNT:role/NAME), not '%s'",
                    o->assume_role);
        goto fail;
      }
    } else if (EQUAL(a, "-external-id")) {
      NEED(1);
      set_str(&o->external_id, argv[++i]);
    } else if (EQUAL(a, "-content-type")) {
      NEED(1);
      set_str(&o->content_type, argv[++i]);
    } else if (EQUAL(a, "-accept")) {
      NEED(1);
      set_str(&o->accept, argv[++i]);
    } else if (EQUAL(a, "-custom-attributes")) {
      NEED(1);
      set_str(&o->custom_attributes, argv[++i]);
      if (strlen(o->custom_attributes) > 1024) {
        usage_error("option -custom-attributes is limited to 1024 characters");
        goto fail;
      }
    } else if (EQUAL(a, "-tile-size")) {
      NEED(1);
      if (parse_int(argv[i + 1], &o->tile_size) != 0 || o->tile_size < 16 || o->tile_size > 65536) {
        usage_error("option -tile-size wants a whole number of pixels between 16 and 65536, not '%s'", argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-overlap")) {
      NEED(1);
      if (parse_int(argv[i + 1], &o->overlap) != 0 || o->overlap < 0) {
        usage_error("option -overlap wants a whole number of pixels >= 0, not '%s'", argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-srcwin")) {
      NEED(4);
      for (int k = 0; k < 4; k++) {
        if (parse_int(argv[i + 1 + k], &o->srcwin[k]) != 0 || o->srcwin[k] < 0 || (k >= 2 && o->srcwin[k] == 0)) {
          usage_error("option -srcwin wants XOFF YOFF XSIZE YSIZE in whole pixels, not '%s'", argv[i + 1 + k]);
          goto fail;
        }
      }
      o->has_srcwin = 1;
      i += 4;
    } else if (EQUAL(a, "-projwin")) {
      NEED(4);
      for (int k = 0; k < 4; k++) {
        if (parse_double(argv[i + 1 + k], &o->projwin[k]) != 0) {
          usage_error("option -projwin wants ULX ULY LRX LRY numbers, not '%s'", argv[i + 1 + k]);
          goto fail;
        }
      }
      o->has_projwin = 1;
      i += 4;
    } else if (EQUAL(a, "-projwin_srs")) {
      NEED(1);
      set_str(&o->projwin_srs, argv[++i]);
    } else if (EQUAL(a, "-b")) {
      NEED(1);
      int band;
      if (parse_int(argv[i + 1], &band) != 0 || band < 1) {
        usage_error("option -b wants a band number >= 1, not '%s'", argv[i + 1]);
        goto fail;
      }
      o->bands = CPLRealloc(o->bands, sizeof(int) * (size_t)(o->nbands + 1));
      o->bands[o->nbands++] = band;
      i++;
    } else if (EQUAL(a, "-scale")) {
      /* Like gdal_translate: 0, 2 or 4 numbers may follow. */
      int n = 0;
      while (n < 4 && i + 1 + n < argc && is_number(argv[i + 1 + n])) n++;
      if (n == 0) {
        o->scale_mode = 1;
      } else if (n == 2) {
        o->scale_mode = 2;
        for (int k = 0; k < n; k++) parse_double(argv[i + 1 + k], &o->scale[k]);
        if (o->scale[0] == o->scale[1]) {
          usage_error("option -scale wants SRC_MIN different from SRC_MAX");
          goto fail;
        }
      } else {
        usage_error("option -scale takes no value (each band's min/max) or SRC_MIN SRC_MAX (mapped to 0..255)");
        goto fail;
      }
      i += n;
    } else if (EQUAL(a, "-tile-format")) {
      NEED(1);
      int k = in_list(argv[i + 1], tile_formats);
      if (k < 0) {
        usage_error("option -tile-format wants PNG, GTiff, JPEG or NITF, not '%s'", argv[i + 1]);
        goto fail;
      }
      set_str(&o->tile_format, tile_formats[k]);
      i++;
    } else if (EQUAL(a, "-skip-nodata")) {
      o->skip_nodata = 1;
    } else if (EQUAL(a, "-no-skip-nodata")) {
      o->skip_nodata = 0;
    } else if (EQUAL(a, "-encoder-threads")) {
      NEED(1);
      if (parse_int(argv[i + 1], &o->encoder_threads) != 0 || o->encoder_threads < 1 || o->encoder_threads > 64) {
        usage_error("option -encoder-threads wants a number between 1 and 64, not '%s'", argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-merge")) {
      NEED(1);
      int k = in_list(argv[i + 1], merge_methods);
      if (k < 0) {
        usage_error("option -merge wants nmm, nms, soft-nms or none, not '%s'", argv[i + 1]);
        goto fail;
      }
      set_str(&o->merge, merge_methods[k]);
      i++;
    } else if (EQUAL(a, "-match-metric")) {
      NEED(1);
      if (!EQUAL(argv[i + 1], "ios") && !EQUAL(argv[i + 1], "iou")) {
        usage_error("option -match-metric wants ios or iou, not '%s'", argv[i + 1]);
        goto fail;
      }
      set_str(&o->match_metric, argv[++i]);
      for (char *p = o->match_metric; *p; p++) *p = (char)tolower((unsigned char)*p);
    } else if (EQUAL(a, "-merge-threshold") || EQUAL(a, "-iou")) {
      NEED(1);
      if (parse_double(argv[i + 1], &o->merge_threshold) != 0 || o->merge_threshold < 0 || o->merge_threshold > 1) {
        usage_error("option %s wants a number between 0 and 1, not '%s'", a, argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-soft-nms-sigma")) {
      NEED(1);
      if (parse_double(argv[i + 1], &o->soft_nms_sigma) != 0 || o->soft_nms_sigma <= 0) {
        usage_error("option -soft-nms-sigma wants a number > 0, not '%s'", argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-min-score")) {
      NEED(1);
      if (parse_double(argv[i + 1], &o->min_score) != 0 || o->min_score < 0 || o->min_score > 1) {
        usage_error("option -min-score wants a number between 0 and 1, not '%s'", argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-class-agnostic")) {
      o->class_agnostic = 1;
    } else if (EQUAL(a, "-class-aware")) {
      o->class_agnostic = 0;
    } else if (EQUAL(a, "-of") || EQUAL(a, "-f")) {
      NEED(1);
      /* Checked here, before credentials and network, as ogr2ogr does. */
      GDALAllRegister();
      GDALDriverH drv = GDALGetDriverByName(argv[i + 1]);
      if (!drv) {
        usage_error("-of %s: no such GDAL driver (ogrinfo --formats lists the vector ones)", argv[i + 1]);
        goto fail;
      }
      if (!GDALGetMetadataItem(drv, GDAL_DCAP_VECTOR, NULL)) {
        usage_error("-of %s is a raster format: give a vector one (GPKG, GeoJSON, FlatGeobuf, ...)", argv[i + 1]);
        goto fail;
      }
      if (!GDALGetMetadataItem(drv, GDAL_DCAP_CREATE, NULL)) {
        usage_error("-of %s cannot create datasets (ogrinfo --formats marks writable formats rw)", argv[i + 1]);
        goto fail;
      }
      set_str(&o->format, GDALGetDriverShortName(drv));
      i++;
    } else if (EQUAL(a, "-dsco") || EQUAL(a, "-lco") || EQUAL(a, "-to")) {
      NEED(1);
      if (!is_name_value(argv[i + 1])) {
        usage_error("option %s wants NAME=VALUE, not '%s'", a, argv[i + 1]);
        goto fail;
      }
      char ***list = EQUAL(a, "-dsco") ? &o->dsco : EQUAL(a, "-lco") ? &o->lco : &o->transformer_options;
      *list = CSLAddString(*list, argv[++i]);
    } else if (EQUAL(a, "-nln")) {
      NEED(1);
      set_str(&o->layer_name, argv[++i]);
    } else if (EQUAL(a, "-status-nln")) {
      NEED(1);
      set_str(&o->status_layer_name, argv[++i]);
    } else if (EQUAL(a, "-status-output")) {
      NEED(1);
      set_str(&o->status_output, argv[++i]);
    } else if (EQUAL(a, "-t_srs")) {
      NEED(1);
      OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
      CPLPushErrorHandler(CPLQuietErrorHandler);
      OGRErr err = OSRSetFromUserInput(srs, argv[i + 1]);
      CPLPopErrorHandler();
      OSRDestroySpatialReference(srs);
      if (err != OGRERR_NONE) {
        usage_error("option -t_srs: '%s' is not a spatial reference GDAL knows", argv[i + 1]);
        goto fail;
      }
      set_str(&o->t_srs, argv[++i]);
    } else if (EQUAL(a, "-overwrite")) {
      o->overwrite = 1;
    } else if (EQUAL(a, "-append")) {
      o->append = 1;
    } else if (EQUAL(a, "-metrics")) {
      NEED(1);
      set_str(&o->metrics_path, argv[++i]);
    } else if (EQUAL(a, "-q") || EQUAL(a, "-quiet")) {
      o->quiet = 1;
      if (for_binary) for_binary->quiet = 1;
    } else if (EQUAL(a, "-dry-run") || EQUAL(a, "-dry_run")) {
      o->dry_run = 1;
    } else if (EQUAL(a, "-resume")) {
      o->resume = 1;
    } else if (a[0] == '-' && a[1] != '\0' && !is_number(a)) {
      usage_error("unknown option '%s'", a);
      goto fail;
    } else if (for_binary && positional == 0) {
      set_str(&for_binary->source, a);
      positional++;
    } else if (for_binary && positional == 1) {
      set_str(&for_binary->dest, a);
      positional++;
    } else if (for_binary) {
      usage_error("too many arguments: '%s' (expected SRC_RASTER DST_VECTOR)", a);
      goto fail;
    } else {
      usage_error("unexpected argument '%s'", a);
      goto fail;
    }
  }
#undef NEED

  /* Combinations. */
  if (o->overwrite && o->append) {
    usage_error("-overwrite and -append exclude each other");
    goto fail;
  }
  if (o->resume && o->overwrite) {
    usage_error("-resume continues an existing output; it cannot be combined with -overwrite");
    goto fail;
  }
  if (o->has_srcwin && o->has_projwin) {
    usage_error("-srcwin and -projwin exclude each other");
    goto fail;
  }
  if (o->projwin_srs && !o->has_projwin) {
    usage_error("-projwin_srs needs -projwin");
    goto fail;
  }
  if (o->external_id && !o->assume_role) {
    usage_error("-external-id needs -assume-role");
    goto fail;
  }
  if (o->overlap >= o->tile_size) {
    usage_error("-overlap (%d) must be smaller than -tile-size (%d)", o->overlap, o->tile_size);
    goto fail;
  }
  if (o->has_projwin && (o->projwin[0] >= o->projwin[2] || o->projwin[1] <= o->projwin[3])) {
    usage_error("-projwin wants ULX < LRX and ULY > LRY");
    goto fail;
  }
  return o;

fail:
  asd_detect_options_free(o);
  return NULL;
}

/* ------------------------------------------------------------------ summary */

char *asd_detect_summary_format(const asd_detect_summary *s) {
  asd_buf b;
  asd_buf_init(&b);
  if (s->dry_run) {
    asd_buf_appendf(&b,
                    "Dry run: %d tiles planned (%d skipped, %d to run%s); credentials and buckets checked; "
                    "nothing invoked.\n",
                    s->tiles_planned, s->tiles_skipped, s->tiles_planned - s->tiles_skipped - s->tiles_resumed,
                    s->tiles_resumed ? CPLSPrintf(", %d already done", s->tiles_resumed) : "");
  } else {
    asd_buf_appendf(&b, "Tiles: %d planned, %d skipped, %d succeeded", s->tiles_planned, s->tiles_skipped,
                    s->tiles_succeeded);
    if (s->tiles_resumed) asd_buf_appendf(&b, " (%d from an earlier run)", s->tiles_resumed);
    asd_buf_appendf(&b, ", %d failed", s->tiles_failed);
    if (s->tiles_not_run) asd_buf_appendf(&b, ", %d not run", s->tiles_not_run);
    asd_buf_appendf(&b, "\nFeatures: %lld received, %lld kept after merging\n", s->features_received,
                    s->features_kept);
    asd_buf_appendf(&b, "Time: %.1f s, %.2f tiles/s\n", s->elapsed_seconds, s->tiles_per_second);
    asd_buf_appendf(&b, "Calls: %lld S3, %lld endpoint, %lld polls, %lld retries\n", s->s3_calls,
                    s->endpoint_calls, s->polling_attempts, s->retries);
    if (s->tiles_location[0]) asd_buf_appendf(&b, "Tile status: %s\n", s->tiles_location);
    if (s->interrupted)
      asd_buf_append_str(&b, "Interrupted: rerun the same command with -resume to finish.\n");
    else if (s->tiles_failed)
      asd_buf_append_str(&b, "Some tiles failed (see the tile-status layer); rerun with -resume to retry them.\n");
  }
  char *out = CPLStrdup((const char *)b.data);
  asd_buf_free(&b);
  return out;
}

/* ---------------------------------------------------------------------- run */

/* Final state of a tile in this run. */
enum { T_PENDING = 0, T_SUCCEEDED, T_FAILED, T_SKIPPED, T_NOT_RUN };

typedef struct tile_info {
  int state;
  int resumed;            /* succeeded in an earlier run (result from the journal) */
  asd_skip_reason skip;
  char *reason;
  char *inference_id;
  char *output_location;
  char *failure_location;
  long long features;     /* detections parsed from its result */
} tile_info;

/* Events the sink (the thread that owns the journal and the output) handles. */
enum { EV_SUBMITTED, EV_DONE, EV_SKIPPED };

typedef struct event {
  struct event *next;
  int kind;
  int tile;
  int ok;
  asd_errcode code;
  asd_skip_reason skip;
  char *text; /* result text (ok) or reason (failed) */
  size_t text_len;
  char *inference_id, *input_location, *output_location, *failure_location;
} event;

/* The reason of a tile that could not be read or encoded starts so. */
#define ENCODE_FAILURE "cannot read or encode the tile"

/* A payload made by an encoder thread, waiting for a submission worker. */
typedef struct ready {
  int tile;
  int failed;             /* encode error: reason holds why */
  unsigned char *data;
  size_t len;
  char reason[512];
} ready;

typedef struct run {
  const asd_detect_options *o;
  const char *dest;
  GDALDatasetH src;
  asd_plan *plan;
  int ntiles;
  tile_info *tiles;
  asd_encoder *encoder;
  const char *content_type;

  /* Work lists. */
  int *to_encode;         /* tile indices to read, encode and invoke */
  int n_to_encode;
  int next_encode;
  asd_journal_entry **to_resume; /* in-flight tiles of an earlier run, to poll again */
  int n_to_resume;
  int next_resume;

  /* Encoder threads and the bounded queue of ready payloads. */
  pthread_t *enc_threads;
  int n_enc_threads;
  int enc_running;
  ready *queue;
  int q_cap, q_head, q_len;
  int q_reserved; /* slots promised to encoders at work */

  /* Events for the sink. */
  event *ev_head, *ev_tail;

  pthread_mutex_t mu;
  pthread_cond_t cv;      /* queue or events changed */
  int stop_submitting;    /* drain requested */
  int stop_now;
  int pool_finished;

  /* Engine. */
  asd_async_config cfg;
  asd_detector *detector;
  asd_metrics *metrics;
  asd_pool *pool;
  asd_pool_counts counts;
  asd_error pool_err;
  int pool_rc;

  /* Output side (sink thread only). */
  asd_journal *journal;
  asd_georef *georef;
  asd_writer *writer;
  asd_merger *merger;
  asd_detections final_dets;
  int output_created;     /* this run created dest (removed again on a fatal error) */
  char *sidecar;          /* sidecar journal path, or NULL when in the GeoPackage */
  int journal_shared;     /* the journal writes through the writer's connection */
  char *tiles_path;       /* separate tile-status file this run created, removed on a fatal error */
  int tiles_done;         /* finished tiles (any state) for the progress */
  int tiles_this_run;     /* finished by work of this run (not resumed, not skipped) */
  long long received, kept;
  int any_success;
  char *fatal;            /* run-level error that stops everything */
  int write_error;
} run;

static void push_event(run *r, event *e) {
  pthread_mutex_lock(&r->mu);
  e->next = NULL;
  if (r->ev_tail)
    r->ev_tail->next = e;
  else
    r->ev_head = e;
  r->ev_tail = e;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static char *dup_or_null(const char *s) { return s && *s ? CPLStrdup(s) : NULL; }

static void event_free(event *e) {
  if (!e) return;
  CPLFree(e->text);
  CPLFree(e->inference_id);
  CPLFree(e->input_location);
  CPLFree(e->output_location);
  CPLFree(e->failure_location);
  CPLFree(e);
}

/* 1 (drain) or 2 (stop now) when the user or the caller asked to stop. */
static int stop_level(run *r) {
  int level = 0;
  if (r->o->interrupt) level = (int)*r->o->interrupt;
  if (r->stop_now && level < 2) level = 2;
  if (r->stop_submitting && level < 1) level = 1;
  return level;
}

/*
 * Encoder threads: each takes the next tile to run, reads and encodes it
 * (the encoder keeps one dataset handle per concurrent reader), and puts the
 * payload in the bounded queue the submission workers take from.  The bound
 * keeps memory to a few tiles whatever the image size.
 */
static void *encoder_main(void *arg) {
  run *r = arg;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    /* A slot is reserved before encoding, so that encoders working at the
       same time never put more payloads in the queue than it holds. */
    while (r->q_len + r->q_reserved >= r->q_cap && stop_level(r) == 0) pthread_cond_wait(&r->cv, &r->mu);
    if (stop_level(r) > 0 || r->next_encode >= r->n_to_encode) {
      pthread_mutex_unlock(&r->mu);
      break;
    }
    int tile = r->to_encode[r->next_encode++];
    r->q_reserved++;
    pthread_mutex_unlock(&r->mu);

    asd_payload p;
    memset(&p, 0, sizeof p);
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    asd_encode_status st = asd_encoder_encode(r->encoder, asd_plan_tile(r->plan, tile), &p);
    CPLPopErrorHandler();
    if (st == ASD_ENCODE_SKIPPED) {
      event *e = CPLCalloc(1, sizeof *e);
      e->kind = EV_SKIPPED;
      e->tile = tile;
      e->skip = p.skip;
      pthread_mutex_lock(&r->mu);
      r->q_reserved--;
      pthread_cond_broadcast(&r->cv);
      pthread_mutex_unlock(&r->mu);
      push_event(r, e);
      continue;
    }
    ready item;
    memset(&item, 0, sizeof item);
    item.tile = tile;
    if (st == ASD_ENCODE_OK) {
      /* The pool free()s payloads: hand it malloc'd bytes. */
      item.data = malloc(p.len ? p.len : 1);
      if (item.data) {
        memcpy(item.data, p.data, p.len);
        item.len = p.len;
      } else {
        item.failed = 1;
        snprintf(item.reason, sizeof item.reason, "out of memory for a %zu-byte payload", p.len);
      }
    } else {
      item.failed = 1;
      snprintf(item.reason, sizeof item.reason, ENCODE_FAILURE ": %s",
               *CPLGetLastErrorMsg() ? CPLGetLastErrorMsg() : "unknown error");
    }
    asd_payload_free(&p);
    pthread_mutex_lock(&r->mu);
    r->queue[(r->q_head + r->q_len) % r->q_cap] = item;
    r->q_len++;
    r->q_reserved--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
  pthread_mutex_lock(&r->mu);
  r->enc_running--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* The pool's source: first the earlier run's in-flight tiles (re-polled,
   never re-invoked), then the encoded payloads, in plan order. */
static int pool_source(void *user, int worker, asd_pool_job *job) {
  (void)worker;
  run *r = user;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    if (stop_level(r) > 0) break;
    if (r->next_resume < r->n_to_resume) {
      asd_journal_entry *e = r->to_resume[r->next_resume++];
      pthread_mutex_unlock(&r->mu);
      job->kind = ASD_POOL_JOB_RESUME;
      job->tile_id = e->tile;
      snprintf(job->inference_id, sizeof job->inference_id, "%s", e->inference_id ? e->inference_id : "");
      snprintf(job->input_location, sizeof job->input_location, "%s", e->input_location ? e->input_location : "");
      snprintf(job->output_location, sizeof job->output_location, "%s", e->output_location);
      snprintf(job->failure_location, sizeof job->failure_location, "%s",
               e->failure_location ? e->failure_location : "");
      return 1;
    }
    if (r->q_len > 0) {
      ready item = r->queue[r->q_head];
      r->q_head = (r->q_head + 1) % r->q_cap;
      r->q_len--;
      pthread_cond_broadcast(&r->cv);
      pthread_mutex_unlock(&r->mu);
      job->tile_id = item.tile;
      if (item.failed) {
        job->kind = ASD_POOL_JOB_FAILED;
        snprintf(job->reason, sizeof job->reason, "%s", item.reason);
      } else {
        job->kind = ASD_POOL_JOB_PAYLOAD;
        job->payload = item.data;
        job->payload_len = item.len;
      }
      return 1;
    }
    if (r->enc_running == 0) break;
    pthread_cond_wait(&r->cv, &r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return 0;
}

static void pool_submitted(void *user, int64_t tile_id, const char *inference_id, const char *input_location,
                           const char *output_location, const char *failure_location) {
  run *r = user;
  event *e = CPLCalloc(1, sizeof *e);
  e->kind = EV_SUBMITTED;
  e->tile = (int)tile_id;
  e->inference_id = dup_or_null(inference_id);
  e->input_location = dup_or_null(input_location);
  e->output_location = dup_or_null(output_location);
  e->failure_location = dup_or_null(failure_location);
  push_event(r, e);
}

static void pool_done(void *user, const asd_pool_result *res) {
  run *r = user;
  event *e = CPLCalloc(1, sizeof *e);
  e->kind = EV_DONE;
  e->tile = (int)res->tile_id;
  e->ok = res->ok;
  e->code = res->code;
  if (res->ok) {
    e->text = CPLMalloc(res->feature_collection_len + 1);
    memcpy(e->text, res->feature_collection, res->feature_collection_len);
    e->text[res->feature_collection_len] = '\0';
    e->text_len = res->feature_collection_len;
  } else {
    e->text = CPLStrdup(res->reason && *res->reason ? res->reason : asd_strerror(res->code));
  }
  e->inference_id = dup_or_null(res->inference_id);
  e->output_location = dup_or_null(res->output_location);
  e->failure_location = dup_or_null(res->failure_location);
  push_event(r, e);
}

static void *pool_main(void *arg) {
  run *r = arg;
  asd_pool_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.source = pool_source;
  cb.on_submitted = pool_submitted;
  cb.on_done = pool_done;
  cb.user_data = r;
  cb.source_thread_safe = 1;
  cb.interrupt = r->o->interrupt;
  r->pool_rc = asd_pool_process(r->pool, &cb, &r->counts, &r->pool_err);
  pthread_mutex_lock(&r->mu);
  r->pool_finished = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static void set_stop_now(run *r) {
  pthread_mutex_lock(&r->mu);
  r->stop_now = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static void set_text(char **dst, const char *v) {
  CPLFree(*dst);
  *dst = v && *v ? CPLStrdup(v) : NULL;
}

/* Writes every detection the merger has finalised. */
static void write_final(run *r) {
  if (asd_merger_pop(r->merger, &r->final_dets) == (size_t)-1) {
    if (!r->fatal) r->fatal = CPLStrdup("out of memory while merging detections");
    return;
  }
  for (size_t i = 0; i < r->final_dets.count; i++) {
    if (r->writer && asd_writer_add_detection(r->writer, &r->final_dets.items[i]) != 0) {
      if (!r->write_error) {
        r->write_error = 1;
        if (!r->fatal)
          r->fatal = CPLStrdup(CPLSPrintf("cannot write detections to '%s': %s", r->dest, CPLGetLastErrorMsg()));
      }
      continue;
    }
    r->kept++;
  }
  asd_detections_reset(&r->final_dets);
}

/* Parses a tile's result into image-pixel detections.  Returns 0, or -1
   with reason filled when the document cannot be read at all. */
static int parse_result(run *r, int tile, const char *text, size_t len, const char *inference_id,
                        asd_detections *out, char *reason, size_t reason_len) {
  const asd_tile *t = asd_plan_tile(r->plan, tile);
  asd_tile_ref ref;
  memset(&ref, 0, sizeof ref);
  ref.index = t->index;
  ref.row = t->row;
  ref.col = t->col;
  ref.x = t->x;
  ref.y = t->y;
  ref.w = t->w;
  ref.h = t->h;
  ref.inference_id = inference_id;
  asd_parse_report rep;
  memset(&rep, 0, sizeof rep);
  asd_parse_status st = asd_features_parse(text, len, &ref, NULL, out, &rep);
  if (st != ASD_PARSE_OK) {
    snprintf(reason, reason_len, "the result is not a usable FeatureCollection: %s",
             rep.message[0] ? rep.message : asd_parse_status_name(st));
    return -1;
  }
  if (rep.rejected)
    CPLDebug("ASYNCDETECT", "tile %d: %zu of %zu features skipped (%s)", tile, rep.rejected, rep.features,
             rep.message);
  return 0;
}

/* Hands a finished tile to the merger (detections may be NULL). */
static void merge_tile(run *r, int tile, asd_detections *dets) {
  char err[256];
  if (asd_merger_add_tile(r->merger, tile, dets, err, sizeof err) != 0) {
    CPLDebug("ASYNCDETECT", "merger: tile %d: %s", tile, err);
    return;
  }
  write_final(r);
}

/*
 * Is this failure the run's rather than the tile's?  Until one tile has
 * succeeded, an answer that says the endpoint does not exist, the
 * credentials are refused or a bucket is missing would fail every tile the
 * same way: stop at once with that one line instead of failing them all.
 */
static int is_fatal_failure(run *r, const event *e) {
  if (r->any_success || e->ok) return 0;
  if (e->text && strstr(e->text, ENCODE_FAILURE)) return 1; /* unreadable input */
  if (e->code != ASD_ERR_ENDPOINT && e->code != ASD_ERR_S3) return 0;
  static const char *const markers[] = {"ValidationError", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                                        "AccessDenied", "NoSuchBucket", "UnrecognizedClientException",
                                        "InvalidClientTokenId", "ExpiredToken", "HTTP 403", "HTTP 404",
                                        "not found", "does not exist", NULL};
  for (int i = 0; markers[i]; i++)
    if (e->text && strstr(e->text, markers[i])) return 1;
  return 0;
}

/*
 * Inside an output GeoPackage the journal writes into the writer's open
 * transaction: commit it now, so that the state change (and the detections
 * written before it) is in the file before anything else happens.  This is
 * what lets the detections go in large batches without weakening -resume.
 */
static void journal_commit(run *r) {
  if (!r->journal_shared || !r->writer) return;
  if (asd_writer_commit(r->writer) != 0 && !r->fatal)
    r->fatal = CPLStrdup(CPLSPrintf("cannot write the journal: %s", CPLGetLastErrorMsg()));
}

static void handle_event(run *r, event *e) {
  tile_info *ti = (e->tile >= 0 && e->tile < r->ntiles) ? &r->tiles[e->tile] : NULL;
  if (!ti) return;
  switch (e->kind) {
    case EV_SUBMITTED:
      set_text(&ti->inference_id, e->inference_id);
      set_text(&ti->output_location, e->output_location);
      set_text(&ti->failure_location, e->failure_location);
      if (asd_journal_submitted(r->journal, e->tile, e->inference_id, e->input_location, e->output_location,
                                e->failure_location) != 0 &&
          !r->fatal)
        r->fatal = CPLStrdup(CPLSPrintf("cannot write the journal: %s", CPLGetLastErrorMsg()));
      journal_commit(r);
      break;
    case EV_SKIPPED:
      ti->state = T_SKIPPED;
      ti->skip = e->skip;
      asd_plan_set_skip(r->plan, e->tile, e->skip);
      r->tiles_done++;
      merge_tile(r, e->tile, NULL);
      break;
    case EV_DONE: {
      if (e->inference_id) set_text(&ti->inference_id, e->inference_id);
      if (e->output_location) set_text(&ti->output_location, e->output_location);
      if (e->failure_location) set_text(&ti->failure_location, e->failure_location);
      if (!e->ok && e->code == ASD_ERR_CANCELLED) {
        /* Stopped now: the journal keeps it as submitted (or not at all),
           so -resume polls it again or submits it. */
        ti->state = T_NOT_RUN;
        break;
      }
      if (!e->ok && is_fatal_failure(r, e)) {
        if (!r->fatal) {
          if (strstr(e->text, ENCODE_FAILURE))
            r->fatal = CPLStrdup(CPLSPrintf("cannot read input '%s': %s", GDALGetDescription(r->src),
                                            e->text + strlen(ENCODE_FAILURE ": ")));
          else if (e->code == ASD_ERR_ENDPOINT)
            r->fatal = CPLStrdup(CPLSPrintf("endpoint '%s': %s", r->o->endpoint, e->text));
          else
            r->fatal = CPLStrdup(e->text);
        }
        ti->state = T_NOT_RUN;
        set_stop_now(r);
        asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
        break;
      }
      asd_detections dets;
      asd_detections_init(&dets);
      char reason[600];
      int ok = e->ok;
      if (ok && parse_result(r, e->tile, e->text, e->text_len, e->inference_id, &dets, reason, sizeof reason) != 0)
        ok = 0;
      else if (!ok)
        snprintf(reason, sizeof reason, "%s", e->text ? e->text : "failed");
      if (ok) {
        /* Journal first: once the result is committed, the tile is never
           invoked again, whatever happens to this process. */
        if (asd_journal_succeeded(r->journal, e->tile, e->text) != 0 && !r->fatal)
          r->fatal = CPLStrdup(CPLSPrintf("cannot write the journal: %s", CPLGetLastErrorMsg()));
        ti->state = T_SUCCEEDED;
        ti->features = (long long)dets.count;
        r->received += (long long)dets.count;
        r->any_success = 1;
        set_text(&ti->reason, NULL);
      } else {
        asd_journal_failed(r->journal, e->tile, reason);
        ti->state = T_FAILED;
        set_text(&ti->reason, reason);
      }
      journal_commit(r);
      r->tiles_done++;
      r->tiles_this_run++;
      merge_tile(r, e->tile, &dets);
      asd_detections_free(&dets);
      break;
    }
  }
}

/* The OGR driver the output will use: -of, else guessed from the extension
   (the writer is then told explicitly, so both agree), else GPKG. */
static const char *output_format(const asd_detect_options *o, const char *dest) {
  if (o->format) return o->format;
  const char *ext = CPLGetExtension(dest);
  static const char *const map[][2] = {{"gpkg", "GPKG"},       {"geojson", "GeoJSON"},
                                       {"json", "GeoJSON"},    {"geojsonl", "GeoJSONSeq"},
                                       {"geojsons", "GeoJSONSeq"}, {"shp", "ESRI Shapefile"},
                                       {"fgb", "FlatGeobuf"},  {"csv", "CSV"},
                                       {"kml", "KML"},         {"gml", "GML"},
                                       {"sqlite", "SQLite"},   {"gdb", "OpenFileGDB"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (EQUAL(ext, map[i][0])) return map[i][1];
  return "GPKG";
}

static int path_exists(const char *p) {
  VSIStatBufL st;
  return VSIStatL(p, &st) == 0;
}

/* Removes an output dataset (through its driver, so that every file of a
   multi-file format goes). */
static void delete_output(const char *path) {
  if (!path_exists(path)) return;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR, NULL, NULL, NULL);
  GDALDriverH drv = ds ? GDALGetDatasetDriver(ds) : NULL;
  if (ds) GDALClose(ds);
  if (!drv || GDALDeleteDataset(drv, path) != CE_None) VSIUnlink(path);
  CPLPopErrorHandler();
}

/* What the tile numbers of a journal mean: a resumed run must agree. */
static char **run_identity(run *r) {
  const asd_detect_options *o = r->o;
  char **m = NULL;
  m = CSLSetNameValue(m, "source", GDALGetDescription(r->src));
  m = CSLSetNameValue(m, "raster_size",
                      CPLSPrintf("%dx%dx%d", GDALGetRasterXSize(r->src), GDALGetRasterYSize(r->src),
                                 GDALGetRasterCount(r->src)));
  int x, y, w, h;
  asd_plan_roi(r->plan, &x, &y, &w, &h);
  m = CSLSetNameValue(m, "window", CPLSPrintf("%d,%d,%d,%d", x, y, w, h));
  m = CSLSetNameValue(m, "tile_size", CPLSPrintf("%d", o->tile_size));
  m = CSLSetNameValue(m, "overlap", CPLSPrintf("%d", o->overlap));
  m = CSLSetNameValue(m, "tiles", CPLSPrintf("%d", r->ntiles));
  char bands[256] = "";
  for (int i = 0; i < o->nbands && strlen(bands) < 200; i++)
    snprintf(bands + strlen(bands), sizeof bands - strlen(bands), "%s%d", i ? "," : "", o->bands[i]);
  m = CSLSetNameValue(m, "bands", bands[0] ? bands : "default");
  m = CSLSetNameValue(m, "scale",
                      o->scale_mode == 2 ? CPLSPrintf("%.17g,%.17g", o->scale[0], o->scale[1])
                                         : o->scale_mode == 1 ? "minmax" : "none");
  m = CSLSetNameValue(m, "tile_format", o->tile_format);
  m = CSLSetNameValue(m, "endpoint", o->endpoint ? o->endpoint : "");
  return m;
}

/* -metrics: the figures, the engine's metrics and every failed tile. */
static int write_metrics(run *r, const asd_detect_summary *s, int status) {
  asd_buf b;
  asd_buf_init(&b);
  static const char *const names[] = {"ok", "error", "partial", "interrupted"};
  char *engine = r->metrics ? asd_metrics_to_json(r->metrics) : NULL;
  char *config = asd_config_to_json(&r->cfg);
  asd_buf_appendf(&b, "{\n  \"status\": \"%s\",\n  \"exit_status\": %d,\n", names[status & 3], status);
  json_object *js = json_object_new_string(GDALGetDescription(r->src));
  asd_buf_appendf(&b, "  \"source\": %s,\n", json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN));
  json_object_put(js);
  js = json_object_new_string(r->dest);
  asd_buf_appendf(&b, "  \"dest\": %s,\n", json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN));
  json_object_put(js);
  js = json_object_new_string(s->tiles_location);
  asd_buf_appendf(&b, "  \"tile_status\": %s,\n", json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN));
  json_object_put(js);
  js = json_object_new_string(r->o->endpoint ? r->o->endpoint : "");
  asd_buf_appendf(&b, "  \"endpoint\": %s,\n", json_object_to_json_string_ext(js, JSON_C_TO_STRING_PLAIN));
  json_object_put(js);
  asd_buf_appendf(&b,
                  "  \"tiles\": {\"planned\": %d, \"skipped\": %d, \"resumed\": %d, \"succeeded\": %d, "
                  "\"failed\": %d, \"not_run\": %d},\n",
                  s->tiles_planned, s->tiles_skipped, s->tiles_resumed, s->tiles_succeeded, s->tiles_failed,
                  s->tiles_not_run);
  asd_buf_appendf(&b, "  \"features\": {\"received\": %lld, \"kept\": %lld},\n", s->features_received,
                  s->features_kept);
  asd_buf_appendf(&b, "  \"elapsed_seconds\": %.3f,\n  \"tiles_per_second\": %.3f,\n", s->elapsed_seconds,
                  s->tiles_per_second);
  asd_buf_appendf(&b,
                  "  \"calls\": {\"s3\": %lld, \"endpoint\": %lld, \"polls\": %lld, \"retries\": %lld},\n",
                  s->s3_calls, s->endpoint_calls, s->polling_attempts, s->retries);
  asd_buf_appendf(&b, "  \"config\": %s,\n", config ? config : "null");
  asd_buf_appendf(&b, "  \"engine\": %s,\n", engine ? engine : "{}");
  asd_buf_append_str(&b, "  \"failed_tiles\": [");
  int first = 1;
  for (int i = 0; i < r->ntiles; i++) {
    tile_info *ti = &r->tiles[i];
    if (ti->state != T_FAILED) continue;
    const asd_tile *t = asd_plan_tile(r->plan, i);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tile", json_object_new_int(i));
    json_object_object_add(o, "row", json_object_new_int(t->row));
    json_object_object_add(o, "col", json_object_new_int(t->col));
    json_object *win = json_object_new_array();
    json_object_array_add(win, json_object_new_int(t->x));
    json_object_array_add(win, json_object_new_int(t->y));
    json_object_array_add(win, json_object_new_int(t->w));
    json_object_array_add(win, json_object_new_int(t->h));
    json_object_object_add(o, "window", win);
    json_object_object_add(o, "reason", json_object_new_string(ti->reason ? ti->reason : ""));
    json_object_object_add(o, "inference_id", ti->inference_id ? json_object_new_string(ti->inference_id) : NULL);
    json_object_object_add(o, "output_location",
                           ti->output_location ? json_object_new_string(ti->output_location) : NULL);
    json_object_object_add(o, "failure_location",
                           ti->failure_location ? json_object_new_string(ti->failure_location) : NULL);
    asd_buf_appendf(&b, "%s\n    %s", first ? "" : ",", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    first = 0;
  }
  asd_buf_append_str(&b, first ? "]\n}\n" : "\n  ]\n}\n");
  free(engine);
  free(config);

  /* Written to a temporary name and renamed, so a reader never sees half a file. */
  char *tmp = CPLStrdup(CPLSPrintf("%s.tmp", r->o->metrics_path));
  int rc = -1;
  VSILFILE *f = VSIFOpenL(tmp, "wb");
  if (f) {
    if (VSIFWriteL(b.data, 1, b.len, f) == b.len) rc = 0;
    if (VSIFCloseL(f) != 0) rc = -1;
    if (rc == 0 && VSIRename(tmp, r->o->metrics_path) != 0) rc = -1;
    if (rc != 0) VSIUnlink(tmp);
  }
  if (rc != 0) CPLError(CE_Warning, CPLE_FileIO, "cannot write the metrics file '%s'", r->o->metrics_path);
  CPLFree(tmp);
  asd_buf_free(&b);
  return rc;
}

/*
 * Setup errors are reported as one line with context ("cannot open the
 * output 'x': <why>"), so while setting up, the modules' own CPLErrors are
 * captured instead of printed: the first failure is kept for the line,
 * warnings are re-emitted afterwards.
 */
typedef struct capture {
  int active;
  char first[1024];
  char **warnings;
} capture;

static void CPL_STDCALL capture_handler(CPLErr cls, CPLErrorNum num, const char *msg) {
  (void)num;
  capture *c = CPLGetErrorHandlerUserData();
  if (!c) return;
  if (cls == CE_Failure || cls == CE_Fatal) {
    if (!c->first[0]) snprintf(c->first, sizeof c->first, "%s", msg);
  } else if (cls == CE_Warning) {
    if (CSLCount(c->warnings) < 20) c->warnings = CSLAddString(c->warnings, msg);
  } else if (cls == CE_Debug) {
    CPLDefaultErrorHandler(cls, num, msg);
  }
}

static void capture_begin(capture *c) {
  memset(c, 0, sizeof *c);
  CPLErrorReset();
  CPLPushErrorHandlerEx(capture_handler, c);
  c->active = 1;
}

static void capture_end(capture *c) {
  if (!c->active) return;
  c->active = 0;
  CPLPopErrorHandler();
  for (char **w = c->warnings; w && *w; w++) CPLError(CE_Warning, CPLE_AppDefined, "%s", *w);
  CSLDestroy(c->warnings);
  c->warnings = NULL;
}

/* The first failure, without the module prefix ("asd_writer: ") that
   means nothing to a user. */
static const char *captured(const capture *c, const char *fallback) {
  if (!c->first[0]) return fallback;
  static const char *const prefixes[] = {"asd_writer: ", "journal: ", "asd_georef: ", "asd_plan: ", NULL};
  for (int i = 0; prefixes[i]; i++)
    if (STARTS_WITH(c->first, prefixes[i])) return c->first + strlen(prefixes[i]);
  return c->first;
}

static void detect_fail(const char *fmt, ...) CPL_PRINT_FUNC_FORMAT(1, 2);
static void detect_fail(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  CPLError(CE_Failure, CPLE_AppDefined, "%s", msg);
}

/* Deletes the journal tables of an earlier run from an existing GeoPackage,
   through a short-lived connection of its own (a new run starts a new
   journal; the writer replaces or appends to the layers). */
static int gpkg_prepare(const char *path) {
  const char *const drv[] = {"GPKG", NULL};
  GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_UPDATE, drv, NULL, NULL);
  if (!ds) return -1;
  for (int i = GDALDatasetGetLayerCount(ds) - 1; i >= 0; i--) {
    const char *name = OGR_L_GetName(GDALDatasetGetLayer(ds, i));
    if ((EQUAL(name, "asd_journal") || EQUAL(name, "asd_journal_meta")) && GDALDatasetDeleteLayer(ds, i) != OGRERR_NONE) {
      GDALClose(ds);
      return -1;
    }
  }
  GDALClose(ds);
  return 0;
}

static void tiles_layer_name(const asd_detect_options *o, char *out, size_t n) {
  if (o->status_layer_name)
    snprintf(out, n, "%s", o->status_layer_name);
  else if (EQUAL(o->layer_name, "detections"))
    snprintf(out, n, "tiles");
  else
    snprintf(out, n, "%s_tiles", o->layer_name);
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + seconds;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  pthread_cond_timedwait(cv, mu, &ts);
}

static void run_free(run *r) {
  if (r->tiles) {
    for (int i = 0; i < r->ntiles; i++) {
      CPLFree(r->tiles[i].reason);
      CPLFree(r->tiles[i].inference_id);
      CPLFree(r->tiles[i].output_location);
      CPLFree(r->tiles[i].failure_location);
    }
    CPLFree(r->tiles);
  }
  for (int i = 0; i < r->n_to_resume; i++) asd_journal_entry_free(r->to_resume[i]);
  CPLFree(r->to_resume);
  CPLFree(r->to_encode);
  if (r->queue) {
    for (int i = 0; i < r->q_len; i++) free(r->queue[(r->q_head + i) % r->q_cap].data);
    CPLFree(r->queue);
  }
  while (r->ev_head) {
    event *e = r->ev_head;
    r->ev_head = e->next;
    event_free(e);
  }
  CPLFree(r->enc_threads);
  if (r->pool) asd_pool_free(r->pool);
  if (r->detector) asd_detector_free(r->detector);
  if (r->metrics) asd_metrics_free(r->metrics);
  if (r->merger) asd_merger_free(r->merger);
  asd_detections_free(&r->final_dets);
  if (r->writer) asd_writer_close(r->writer);
  if (r->journal) asd_journal_close(r->journal);
  if (r->georef) asd_georef_free(r->georef);
  if (r->encoder) asd_encoder_free(r->encoder);
  if (r->plan) asd_plan_free(r->plan);
  CPLFree(r->sidecar);
  CPLFree(r->tiles_path);
  CPLFree(r->fatal);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

/* Builds the engine configuration: defaults, then ASYNC_SM_*, then flags. */
static int build_config(const asd_detect_options *o, asd_async_config *cfg, const char *content_type) {
  char err[512];
  asd_config_init(cfg);
  if (asd_config_load_env(cfg, err, sizeof err) != 0) {
    detect_fail("%s", err);
    return -1;
  }
  /* The payload's own type unless the user or the environment said otherwise. */
  if (!CPLGetConfigOption("ASYNC_SM_CONTENT_TYPE", NULL) && content_type)
    snprintf(cfg->content_type, sizeof cfg->content_type, "%s", content_type);
  for (char **p = o->config; p && *p; p++) {
    char *key = NULL;
    const char *val = CPLParseNameValue(*p, &key);
    int rc = asd_config_set(cfg, key, val, err, sizeof err);
    CPLFree(key);
    if (rc != 0) {
      detect_fail("%s", err);
      return -1;
    }
  }
  if (o->content_type) snprintf(cfg->content_type, sizeof cfg->content_type, "%s", o->content_type);
  if (o->accept) snprintf(cfg->accept, sizeof cfg->accept, "%s", o->accept);
  if (o->custom_attributes)
    snprintf(cfg->custom_attributes, sizeof cfg->custom_attributes, "%s", o->custom_attributes);
  if (!cfg->input_bucket[0]) {
    detect_fail("no input bucket: give -input-bucket BUCKET or set ASYNC_SM_INPUT_BUCKET (see gdal_asyncdetect --help)");
    return -1;
  }
  if (asd_config_validate(cfg, err, sizeof err) != 0) {
    detect_fail("invalid configuration: %s", err);
    return -1;
  }
  return 0;
}

static void fill_summary(run *r, asd_detect_summary *s, double elapsed, double run_seconds) {
  s->tiles_planned = r->ntiles;
  for (int i = 0; i < r->ntiles; i++) {
    switch (r->tiles[i].state) {
      case T_SUCCEEDED:
        s->tiles_succeeded++;
        if (r->tiles[i].resumed) s->tiles_resumed++;
        break;
      case T_FAILED:
        s->tiles_failed++;
        break;
      case T_SKIPPED:
        s->tiles_skipped++;
        break;
      default:
        s->tiles_not_run++;
    }
  }
  s->features_received = r->received;
  s->features_kept = r->kept;
  s->elapsed_seconds = elapsed;
  s->tiles_per_second = run_seconds > 0 ? r->tiles_this_run / run_seconds : 0;
  if (r->detector) {
    asd_http_stats hs;
    memset(&hs, 0, sizeof hs);
    asd_aws_context_http_stats(asd_detector_aws_context(r->detector), &hs);
    asd_metric_summary ms;
    long long invokes = 0;
    if (r->metrics && asd_metrics_get(r->metrics, "InvokeDuration", &ms) == 0) invokes = ms.count;
    s->endpoint_calls = invokes;
    s->s3_calls = (long long)hs.requests > invokes ? (long long)hs.requests - invokes : 0;
    s->retries = r->counts.retries + (long long)hs.retries;
  }
  s->polling_attempts = r->counts.polls;
}

int asd_detect(const char *dest, GDALDatasetH src, const asd_detect_options *o, asd_detect_summary *summary,
               int *usage_error) {
  asd_detect_summary local;
  if (!summary) summary = &local;
  memset(summary, 0, sizeof *summary);
  if (usage_error) *usage_error = 0;
  double t0 = asd_time_monotonic();
  if (!o || !src || !dest || !*dest) {
    detect_fail("asd_detect: a source dataset, a destination and options are required");
    return ASD_DETECT_ERROR;
  }
  summary->dry_run = o->dry_run;
  if (!o->endpoint && !o->dry_run) {
    if (usage_error) *usage_error = 1;
    detect_fail("-endpoint NAME is required (see gdal_asyncdetect --help)");
    return ASD_DETECT_ERROR;
  }
  if (GDALGetRasterCount(src) < 1) {
    detect_fail("input '%s' has no raster band", GDALGetDescription(src));
    return ASD_DETECT_ERROR;
  }
  if (o->nbands > ASD_ENCODE_MAX_BANDS) {
    if (usage_error) *usage_error = 1;
    detect_fail("at most %d -b options", ASD_ENCODE_MAX_BANDS);
    return ASD_DETECT_ERROR;
  }
  for (int i = 0; i < o->nbands; i++) {
    if (o->bands[i] > GDALGetRasterCount(src)) {
      if (usage_error) *usage_error = 1;
      detect_fail("-b %d: input '%s' has %d band(s)", o->bands[i], GDALGetDescription(src), GDALGetRasterCount(src));
      return ASD_DETECT_ERROR;
    }
  }

  run rr;
  run *r = &rr;
  memset(r, 0, sizeof *r);
  r->o = o;
  r->dest = dest;
  r->src = src;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  asd_detections_init(&r->final_dets);
  int status = ASD_DETECT_ERROR;
  capture cap;
  capture_begin(&cap);

  /* ---- Tile plan and encoder. */
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
  r->plan = asd_plan_new(src, &po);
  if (!r->plan) {
    capture_end(&cap);
    detect_fail("cannot plan tiles over '%s': %s", GDALGetDescription(src), captured(&cap, "invalid window"));
    goto done;
  }
  r->ntiles = asd_plan_count(r->plan);
  r->tiles = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(tile_info));

  asd_encode_options eo;
  asd_encode_options_init(&eo);
  eo.format = (asd_encode_format)asd_encode_format_from_name(o->tile_format);
  for (int i = 0; i < o->nbands; i++) eo.bands[i] = o->bands[i];
  eo.band_count = o->nbands;
  if (o->scale_mode == 1) eo.scale = ASD_SCALE_MINMAX;
  if (o->scale_mode == 2) {
    eo.scale = ASD_SCALE_EXPLICIT;
    eo.src_min[0] = o->scale[0];
    eo.src_max[0] = o->scale[1];
    eo.scale_count = 1;
  }
  eo.skip_nodata = o->skip_nodata;
  eo.skip_constant = o->skip_nodata;
  eo.max_handles = o->encoder_threads + 1;
  r->encoder = asd_encoder_new(GDALGetDescription(src), &eo);
  if (!r->encoder) {
    capture_end(&cap);
    detect_fail("cannot read input '%s': %s", GDALGetDescription(src), captured(&cap, "unknown error"));
    goto done;
  }
  r->content_type = asd_encode_content_type(eo.format);

  /* ---- Engine configuration and detector (no network yet). */
  if (o->endpoint || !o->dry_run || o->config || CPLGetConfigOption("ASYNC_SM_INPUT_BUCKET", NULL)) {
    if (build_config(o, &r->cfg, r->content_type) != 0) {
      if (usage_error && !r->cfg.input_bucket[0]) *usage_error = 1;
      capture_end(&cap);
      goto done;
    }
    asd_detector_aws aws;
    memset(&aws, 0, sizeof aws);
    aws.region = o->region;
    aws.profile = o->profile;
    aws.role_arn = o->assume_role;
    aws.external_id = o->external_id;
    asd_error err;
    asd_error_clear(&err);
    r->detector = asd_detector_new(o->endpoint ? o->endpoint : "dry-run", &r->cfg, &aws, &err);
    if (!r->detector) {
      capture_end(&cap);
      char buf[1400];
      detect_fail("cannot set up the endpoint client: %s", asd_error_format(&err, buf, sizeof buf));
      goto done;
    }
    /* Preflight: credentials first, so that a role that cannot be assumed
       is reported as such (and not as the access-denied answer the bucket
       check would get without them), then network and bucket access,
       before any output is created or any tile is sent. */
    {
      asd_aws_credentials creds;
      asd_aws_credentials_init(&creds);
      asd_aws_error aerr;
      asd_aws_error_clear(&aerr);
      int crc = asd_aws_context_get_credentials(asd_detector_aws_context(r->detector), &creds, &aerr);
      asd_aws_credentials_free(&creds);
      if (crc != 0) {
        capture_end(&cap);
        if (o->assume_role)
          detect_fail("-assume-role %s: %s%s%s", o->assume_role, aerr.message, aerr.code[0] ? " " : "",
                      aerr.code[0] ? CPLSPrintf("(%s)", aerr.code) : "");
        else
          detect_fail("no usable AWS credentials: %s", aerr.message);
        goto done;
      }
    }
    if (asd_detector_validate_buckets(r->detector, &err) != 0) {
      capture_end(&cap);
      char buf[1400];
      detect_fail("%s", asd_error_format(&err, buf, sizeof buf));
      goto done;
    }
  }

  const char *format = output_format(o, dest);
  int in_gpkg = EQUAL(format, "GPKG");
  char tiles_layer[256];
  tiles_layer_name(o, tiles_layer, sizeof tiles_layer);
  if (!in_gpkg) r->sidecar = asd_journal_sidecar_path(dest);
  const char *journal_path = in_gpkg ? dest : r->sidecar;
  int exists = path_exists(dest);

  if (o->dry_run) {
    /* Report what a resume would still have to do, without touching anything. */
    if (o->resume && path_exists(journal_path)) {
      asd_journal *j = asd_journal_open_path(journal_path, 0);
      if (j) {
        for (int i = 0; i < r->ntiles; i++) {
          asd_journal_entry *e = asd_journal_get(j, i);
          if (e && e->state == ASD_JOURNAL_SUCCEEDED) summary->tiles_resumed++;
          asd_journal_entry_free(e);
        }
        asd_journal_close(j);
      }
    }
    capture_end(&cap);
    summary->tiles_planned = r->ntiles;
    summary->tiles_skipped = asd_plan_skip_count(r->plan, ASD_SKIP_OUTSIDE_AOI);
    summary->elapsed_seconds = asd_time_monotonic() - t0;
    status = ASD_DETECT_OK;
    goto done;
  }

  /* ---- Output and journal. */
  {
    /* Files that cannot be written are reported now, not after the run. */
    VSIStatBufL st;
    if (in_gpkg && VSIStatL(dest, &st) == 0 && VSI_ISDIR(st.st_mode)) {
      capture_end(&cap);
      detect_fail("output '%s' is a directory: a GeoPackage is a file (give DIR/NAME.gpkg)", dest);
      goto done;
    }
    if (o->metrics_path) {
      char *tmp = CPLStrdup(CPLSPrintf("%s.tmp", o->metrics_path));
      VSILFILE *f = VSIFOpenL(tmp, "wb");
      if (f) VSIFCloseL(f);
      VSIUnlink(tmp);
      CPLFree(tmp);
      if (!f) {
        capture_end(&cap);
        detect_fail("cannot write the metrics file '%s': %s", o->metrics_path, VSIStrerror(errno));
        goto done;
      }
    }
  }
  if (o->resume) {
    /* A one-layer output may not exist yet (FlatGeobuf writes its file at
       the end): its sidecar journal is what counts. */
    if ((in_gpkg && !exists) || !path_exists(journal_path)) {
      capture_end(&cap);
      detect_fail("-resume: no journal for '%s' (expected %s); run without -resume first", dest,
                  in_gpkg ? "the asd_journal table in the GeoPackage" : journal_path);
      goto done;
    }
  } else if (exists && !o->overwrite && !o->append) {
    capture_end(&cap);
    detect_fail("output '%s' already exists: use -overwrite to replace it, -append to add to it, or -resume to "
                "finish an interrupted run",
                dest);
    goto done;
  }
  if (!in_gpkg && !o->resume && path_exists(r->sidecar)) VSIUnlink(r->sidecar);

  if (in_gpkg && exists && !o->resume) {
    /* -overwrite and -append start a new journal.  -overwrite replaces the
       two layers only (the writer does, as ogr2ogr does): the other layers
       of a GeoPackage are the user's. */
    if (gpkg_prepare(dest) != 0) {
      capture_end(&cap);
      detect_fail("cannot update output '%s': %s", dest, captured(&cap, "not a writable GeoPackage"));
      goto done;
    }
  }

  /* -resume rewrites what the interrupted run wrote.  An output the run
     created is created again from the journal; one it appended to (or any
     GeoPackage, which holds the journal) is opened for update, and this
     image's features are deleted from both layers before they are written
     again, so the other images' features stay and none is duplicated. */
  int resume_append = in_gpkg;
  if (o->resume) {
    /* The identity is checked before anything is written: a journal of
       another run must not cost the user their output. */
    r->journal = asd_journal_open_path(journal_path, 0);
    if (!r->journal) {
      capture_end(&cap);
      detect_fail("-resume: cannot read the journal of '%s': %s", dest, captured(&cap, "unknown error"));
      goto done;
    }
    char **identity = run_identity(r);
    char *mismatch = NULL;
    int rc = asd_journal_bind(r->journal, identity, &mismatch);
    CSLDestroy(identity);
    if (rc != 0) {
      capture_end(&cap);
      detect_fail("-resume: the journal of '%s' belongs to another run (%s)", dest,
                  mismatch ? mismatch : "identity differs");
      CPLFree(mismatch);
      goto done;
    }
    char *mode = asd_journal_get_note(r->journal, "output_mode");
    if (!in_gpkg) resume_append = mode && EQUAL(mode, "append");
    CPLFree(mode);
    if (in_gpkg) {
      /* Reopened below through the writer's connection. */
      asd_journal_close(r->journal);
      r->journal = NULL;
    }
  }

  asd_georef_options go;
  asd_georef_options_init(&go);
  go.t_srs = o->t_srs;
  go.transformer_options = o->transformer_options;
  r->georef = asd_georef_new(src, &go);
  if (!r->georef) {
    capture_end(&cap);
    detect_fail("cannot georeference '%s': %s", GDALGetDescription(src), captured(&cap, "unknown error"));
    goto done;
  }

  asd_writer_options wo;
  asd_writer_options_init(&wo);
  wo.format = format;
  wo.dsco = o->dsco;
  wo.lco = o->lco;
  wo.layer_name = o->layer_name;
  wo.tiles_layer_name = tiles_layer;
  wo.overwrite = o->resume ? !resume_append : o->overwrite;
  wo.append = o->resume ? resume_append : o->append;
  wo.replace_source = o->resume && resume_append;
  wo.source_image = GDALGetDescription(src);
  /* One-layer formats (GeoJSON, CSV, FlatGeobuf, .shp...) get their tile
     layer in a sibling file, or where -status-output says. */
  char *tiles_sidecar = asd_writer_tiles_sidecar_path(dest);
  wo.tiles_path = o->status_output;
  wo.tiles_fallback_path = tiles_sidecar;
  const char *tiles_file = o->status_output ? o->status_output : tiles_sidecar;
  int tiles_existed = path_exists(tiles_file);
  /* Detections go in batches: the journal, when it shares the GeoPackage,
     commits the open batch at each state change (journal_commit). */
  wo.batch_size = atoi(CPLGetConfigOption("ASD_OUTPUT_BATCH_SIZE", "10000"));
  wo.batch_seconds = CPLAtof(CPLGetConfigOption("ASD_OUTPUT_BATCH_SECONDS", "5"));
  /* The output GeoPackage holds the journal: ASD_JOURNAL_SYNC=FULL buys
     durability against a power cut for both (journal.c); a killed process
     loses nothing either way. */
  CPLSetThreadLocalConfigOption("OGR_SQLITE_SYNCHRONOUS",
                                in_gpkg ? CPLGetConfigOption("ASD_JOURNAL_SYNC", "OFF") : "OFF");
  r->writer = asd_writer_open(dest, &wo, r->georef);
  CPLSetThreadLocalConfigOption("OGR_SQLITE_SYNCHRONOUS", NULL);
  if (!r->writer) {
    CPLFree(tiles_sidecar);
    capture_end(&cap);
    detect_fail("cannot write output '%s': %s", dest, captured(&cap, "unknown error"));
    goto done;
  }
  r->output_created = !exists;
  {
    const char *tl = asd_writer_tiles_location(r->writer);
    if (tl) {
      snprintf(summary->tiles_location, sizeof summary->tiles_location, "%s", tl);
      if (!tiles_existed && strcmp(tl, dest) != 0) r->tiles_path = CPLStrdup(tl);
    }
  }
  CPLFree(tiles_sidecar);

  if (in_gpkg) {
    /* The journal writes through the writer's connection (see journal.c). */
    r->journal = asd_journal_open_dataset(asd_writer_dataset(r->writer), 1);
    r->journal_shared = r->journal != NULL;
  } else {
    if (!r->journal) r->journal = asd_journal_open_path(journal_path, 1);
  }
  if (!r->journal) {
    capture_end(&cap);
    detect_fail("cannot open the journal in '%s': %s", journal_path, captured(&cap, "unknown error"));
    goto done;
  }
  {
    char **identity = run_identity(r);
    char *mismatch = NULL;
    int rc = asd_journal_bind(r->journal, identity, &mismatch);
    CSLDestroy(identity);
    if (rc != 0) {
      capture_end(&cap);
      detect_fail("-resume: the journal of '%s' belongs to another run (%s)", dest,
                  mismatch ? mismatch : "identity differs");
      CPLFree(mismatch);
      r->output_created = 0;
      goto done;
    }
    /* How the output was opened decides how -resume reopens it. */
    if (!o->resume &&
        asd_journal_set_note(r->journal, "output_mode", exists && o->append ? "append" : "create") != 0) {
      capture_end(&cap);
      detect_fail("cannot write the journal in '%s': %s", journal_path, captured(&cap, "unknown error"));
      goto done;
    }
    journal_commit(r);
  }

  /* ---- Merger over every tile window. */
  {
    asd_merge_options mo;
    asd_merge_options_init(&mo);
    asd_merge_mode_parse(o->merge, &mo.mode);
    if (EQUAL(o->match_metric, "iou") && mo.mode == ASD_MERGE_NMM) {
      /* NMM measures intersection over the smaller box; asking for IoU means
         plain suppression on IoU. */
      mo.mode = ASD_MERGE_NMS;
    }
    mo.iou_threshold = o->merge_threshold;
    mo.ios_threshold = o->merge_threshold;
    mo.sigma = o->soft_nms_sigma;
    mo.min_score = o->min_score;
    mo.class_agnostic = o->class_agnostic;
    /* A large object at a four-tile corner comes as pieces from diagonal
       tiles that only meet through a third piece: merge whole chains. */
    mo.nmm_transitive = 1;
    asd_merge_tile *mt = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof *mt);
    for (int i = 0; i < r->ntiles; i++) {
      const asd_tile *t = asd_plan_tile(r->plan, i);
      mt[i].index = t->index;
      mt[i].x = t->x;
      mt[i].y = t->y;
      mt[i].w = t->w;
      mt[i].h = t->h;
    }
    char err[256];
    r->merger = asd_merger_new(&mo, mt, (size_t)r->ntiles, err, sizeof err);
    CPLFree(mt);
    if (!r->merger) {
      capture_end(&cap);
      detect_fail("invalid merge options: %s", err);
      goto done;
    }
  }

  /* ---- What is left to do: the journal says which tiles are done, which
     were in flight and which never ran (or failed, and are retried). */
  r->to_encode = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(int));
  r->to_resume = CPLCalloc((size_t)(r->ntiles ? r->ntiles : 1), sizeof(asd_journal_entry *));
  for (int i = 0; i < r->ntiles; i++) {
    asd_journal_entry *e = o->resume ? asd_journal_get(r->journal, i) : NULL;
    if (e && e->state == ASD_JOURNAL_SUCCEEDED) {
      char *text = asd_journal_result(r->journal, i);
      asd_detections dets;
      asd_detections_init(&dets);
      char reason[600];
      if (text && parse_result(r, i, text, strlen(text), e->inference_id, &dets, reason, sizeof reason) == 0) {
        tile_info *ti = &r->tiles[i];
        ti->state = T_SUCCEEDED;
        ti->resumed = 1;
        ti->features = (long long)dets.count;
        set_text(&ti->inference_id, e->inference_id);
        set_text(&ti->output_location, e->output_location);
        r->received += (long long)dets.count;
        r->tiles_done++;
        r->any_success = 1;
        merge_tile(r, i, &dets);
        asd_detections_free(&dets);
        CPLFree(text);
        asd_journal_entry_free(e);
        continue;
      }
      asd_detections_free(&dets);
      CPLFree(text);
    }
    if (e && e->state == ASD_JOURNAL_SUBMITTED && e->output_location && *e->output_location) {
      set_text(&r->tiles[i].inference_id, e->inference_id);
      r->to_resume[r->n_to_resume++] = e;
      continue;
    }
    asd_journal_entry_free(e);
    r->to_encode[r->n_to_encode++] = i;
  }
  capture_end(&cap);
  if (r->fatal) {
    detect_fail("%s", r->fatal);
    goto done;
  }

  /* ---- Run: encoder threads -> pool (its own thread) -> this thread, the
     sink, which alone touches the journal, the merger and the output. */
  double run_t0 = asd_time_monotonic();
  {
    asd_error err;
    asd_error_clear(&err);
    r->metrics = asd_metrics_new();
    r->pool = asd_pool_new(r->detector, r->metrics, &err);
    if (!r->pool) {
      char buf[1400];
      detect_fail("cannot start the worker pool: %s", asd_error_format(&err, buf, sizeof buf));
      goto done;
    }
  }
  r->q_cap = 2 * o->encoder_threads + 2;
  r->queue = CPLCalloc((size_t)r->q_cap, sizeof(ready));
  r->n_enc_threads = o->encoder_threads;
  if (r->n_enc_threads > r->n_to_encode) r->n_enc_threads = r->n_to_encode;
  r->enc_threads = CPLCalloc((size_t)(r->n_enc_threads ? r->n_enc_threads : 1), sizeof(pthread_t));
  int started = 0;
  for (int i = 0; i < r->n_enc_threads; i++) {
    pthread_mutex_lock(&r->mu);
    r->enc_running++;
    pthread_mutex_unlock(&r->mu);
    if (pthread_create(&r->enc_threads[i], NULL, encoder_main, r) != 0) {
      pthread_mutex_lock(&r->mu);
      r->enc_running--;
      pthread_mutex_unlock(&r->mu);
      break;
    }
    started++;
  }
  pthread_t pool_thread;
  int pool_started = pthread_create(&pool_thread, NULL, pool_main, r) == 0;
  if (!pool_started) {
    r->stop_now = 1;
    r->fatal = CPLStrdup("cannot start a thread");
    pthread_mutex_lock(&r->mu);
    r->pool_finished = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }

  int last_level = 0;
  if (o->progress) o->progress(r->ntiles ? (double)r->tiles_done / r->ntiles : 1.0, "", o->progress_data);
  for (;;) {
    pthread_mutex_lock(&r->mu);
    if (!r->ev_head && !r->pool_finished) timed_wait(&r->cv, &r->mu, 0.1);
    event *list = r->ev_head;
    r->ev_head = r->ev_tail = NULL;
    int finished = r->pool_finished && !list;
    pthread_mutex_unlock(&r->mu);
    while (list) {
      event *e = list;
      list = e->next;
      handle_event(r, e);
      event_free(e);
    }
    if (o->progress && r->ntiles &&
        !o->progress((double)r->tiles_done / r->ntiles, "", o->progress_data) && !r->stop_submitting) {
      pthread_mutex_lock(&r->mu);
      r->stop_submitting = 1;
      pthread_cond_broadcast(&r->cv);
      pthread_mutex_unlock(&r->mu);
      asd_pool_cancel(r->pool, ASD_POOL_DRAIN);
    }
    if (r->fatal && !r->stop_now) {
      set_stop_now(r);
      asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
    }
    int level = stop_level(r);
    if (level != last_level) {
      last_level = level;
      if (level >= 2) asd_pool_cancel(r->pool, ASD_POOL_STOP_NOW);
      else if (level == 1) asd_pool_cancel(r->pool, ASD_POOL_DRAIN);
      pthread_mutex_lock(&r->mu);
      pthread_cond_broadcast(&r->cv);
      pthread_mutex_unlock(&r->mu);
    }
    if (finished) break;
  }
  if (pool_started) pthread_join(pool_thread, NULL);
  pthread_mutex_lock(&r->mu);
  r->stop_now = 1; /* the pool is gone: encoders still running must stop */
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; i < started; i++) pthread_join(r->enc_threads[i], NULL);
  /* Skips reported after the pool ended. */
  while (r->ev_head) {
    event *e = r->ev_head;
    r->ev_head = e->next;
    if (e->kind == EV_SKIPPED) handle_event(r, e);
    event_free(e);
  }
  r->ev_tail = NULL;
  double run_seconds = asd_time_monotonic() - run_t0;
  if (r->pool_rc != 0 && !r->fatal) {
    char buf[1400];
    r->fatal = CPLStrdup(CPLSPrintf("worker pool failed: %s", asd_error_format(&r->pool_err, buf, sizeof buf)));
  }

  /* ---- Finish: the last detections, the tile-status layer, the metrics. */
  asd_merger_finish(r->merger);
  write_final(r);
  int interrupted = (o->interrupt && *o->interrupt > 0) || r->stop_submitting;
  for (int i = 0; i < r->ntiles; i++) {
    tile_info *ti = &r->tiles[i];
    const asd_tile *t = asd_plan_tile(r->plan, i);
    if (ti->state == T_PENDING) ti->state = T_NOT_RUN;
    if (!r->writer) continue;
    int wrc = 0;
    switch (ti->state) {
      case T_SUCCEEDED:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_SUCCEEDED, NULL, ti->inference_id, ti->features);
        break;
      case T_SKIPPED:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_SKIPPED, asd_skip_reason_name(ti->skip), NULL, -1);
        break;
      case T_FAILED:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_FAILED, ti->reason, ti->inference_id, -1);
        break;
      default:
        wrc = asd_writer_add_tile(r->writer, t, ASD_TILE_FAILED,
                                  interrupted ? "not run: interrupted (rerun with -resume)"
                                              : "not run (rerun with -resume)",
                                  ti->inference_id, -1);
    }
    if (wrc != 0 && !r->fatal)
      r->fatal = CPLStrdup(CPLSPrintf("cannot write the tile-status layer of '%s': %s", dest, CPLGetLastErrorMsg()));
  }
  if (r->writer) {
    int crc = asd_writer_close(r->writer);
    r->writer = NULL;
    if (crc != 0 && !r->fatal)
      r->fatal = CPLStrdup(CPLSPrintf("cannot finish writing '%s': %s", dest, CPLGetLastErrorMsg()));
  }

  fill_summary(r, summary, asd_time_monotonic() - t0, run_seconds);
  summary->interrupted = interrupted && summary->tiles_not_run > 0;
  if (r->fatal)
    status = ASD_DETECT_ERROR;
  else if (summary->interrupted)
    status = ASD_DETECT_INTERRUPTED;
  else if (summary->tiles_failed || summary->tiles_not_run)
    status = ASD_DETECT_PARTIAL;
  else
    status = ASD_DETECT_OK;
  if (o->metrics_path) write_metrics(r, summary, status);
  if (r->fatal) {
    detect_fail("%s", r->fatal);
    /* Nothing was achieved: leave no output behind that would make the
       next attempt need -overwrite. */
    if (r->output_created && !r->any_success) {
      if (r->journal) {
        asd_journal_close(r->journal);
        r->journal = NULL;
      }
      delete_output(dest);
      if (r->sidecar) VSIUnlink(r->sidecar);
      if (r->tiles_path) delete_output(r->tiles_path);
    }
  }

done:
  capture_end(&cap);
  if (status == ASD_DETECT_ERROR && !summary->elapsed_seconds) summary->elapsed_seconds = asd_time_monotonic() - t0;
  run_free(r);
  return status;
}
