/*
 * gdal_asyncdetect_lib.c: the utility's options (asd_app.h): argv in,
 * asd_detect_options out, and the --help text.
 *
 * The utility is a thin main over the library, as GDAL's own utilities are
 * thin mains over gdal_utils.h, so that the command line, a C pipeline and
 * the QGIS Processing script run exactly the same code with exactly the
 * same option spelling.  asd_detect_options_new() takes an argv list and
 * reports a usage error as one CPLError line naming the bad option;
 * asd_detect() (run/detect.c) does the job, and its stages read the parsed
 * options (run/asd_run.h says which stage reads which option).
 *
 * Adding an option: a field in run/asd_detect_options.h, its parsing below
 * (a value is checked here, before credentials and network, so that a typo
 * is a usage error and not a failed run), its line in the --help text, and
 * its free in asd_detect_options_free().
 */
#include "asyncdetect/asd_app.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asd_detect_options.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_merge.h"
#include "inputs.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "gdal.h"
#include "ogr_srs_api.h"

/* ------------------------------------------------------------------ options */

/*
 * The AsyncEndpointConfig fields, each with its command-line flag.  Flags are
 * stored as field=value overrides and applied over the engine's
 * configuration after the ASYNC_SM_* keys (read with CPLGetConfigOption, so
 * --config KEY VALUE counts), so the precedence is
 * flag > --config > environment / GDAL configuration file > default.  kind: 'n' number >= 0, 'b' boolean,
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
    {"-adaptive-polling", "adaptive_polling", 'b'},
    {"-max-retries", "max_retries", 'n'},
    {"-cleanup", "cleanup_enabled", 'b'},
    {"-cleanup-policy", "cleanup_policy", 'p'},
    {"-cleanup-delay", "cleanup_delay_seconds", 'n'},
    {"-worker-optimization", "enable_worker_optimization", 'b'},
    {"-submission-workers", "submission_workers", 'n'},
    {"-polling-workers", "polling_workers", 'n'},
    {"-max-concurrent-jobs", "max_concurrent_jobs", 'n'},
    {"-job-queue-timeout", "job_queue_timeout", 'n'},
    {"-sse", "sse", 's'},
    {"-sse-kms-key-id", "sse_kms_key_id", 's'},
    {"-expected-bucket-owner", "expected_bucket_owner", 's'},
};
#define N_CONFIG_FLAGS ((int)(sizeof(config_flags) / sizeof(config_flags[0])))


static const char *const usage_parts[] = {
    "Usage: gdal_asyncdetect [--help] [--help-general]\n"
    "       [-endpoint NAME] [-input-bucket BUCKET] [-output-bucket BUCKET]\n"
    "       [-input-prefix PREFIX] [-output-prefix PREFIX]\n"
    "       [-region REGION] [-profile NAME] [-assume-role ARN [-external-id ID]]\n"
    "       [-content-type TYPE] [-accept TYPE] [-custom-attributes TEXT]\n"
    "       [-sse AES256|aws:kms [-sse-kms-key-id ID]] [-expected-bucket-owner ACCOUNT]\n"
    "       [-max-wait-time S] [-polling-interval S] [-max-polling-interval S] [-adaptive-polling YES|NO]\n"
    "       [-backoff-multiplier F] [-max-retries N] [-cleanup YES|NO]\n"
    "       [-cleanup-policy immediate|delayed|disabled] [-cleanup-delay S]\n"
    "       [-worker-optimization YES|NO] [-submission-workers N] [-polling-workers N]\n"
    "       [-max-concurrent-jobs N] [-job-queue-timeout S]\n"
    "       [-tile-size N] [-overlap N] [-srcwin XOFF YOFF XSIZE YSIZE]\n"
    "       [-projwin ULX ULY LRX LRY [-projwin_srs SRS]] [-b BAND]...\n"
    "       [-scale [SRC_MIN SRC_MAX]] [-scale-mode MODE] [-tile-format PNG|GTiff|JPEG|NITF|WEBP]\n"
    "       [-tco NAME=VALUE]...\n"
    "       [-skip-nodata | -no-skip-nodata] [-encoder-threads N]\n"
    "       [-merge nmm|nms|soft-nms|none] [-match-metric ios|iou] [-merge-threshold T]\n"
    "       [-soft-nms-sigma S] [-min-score S] [-class-agnostic]\n"
    "       [-of FORMAT] [-dsco NAME=VALUE]... [-lco NAME=VALUE]... [-nln NAME]\n"
    "       [-status-nln NAME] [-status-output DST] [-t_srs SRS] [-to NAME=VALUE]...\n"
    "       [-overwrite | -append]\n"
    "       [-metrics FILE.json] [-quicklook FILE.png [-quicklook-width N]]\n"
    "       [-q] [-dry-run] [-resume] [-shard K/N]\n"
    "       [-input_file_list FILE] SRC_RASTER [SRC_RASTER...] DST_VECTOR\n"
    "   or: gdal_asyncdetect -cleanup-pending [endpoint and AWS options] DST_VECTOR\n"
    "   or: gdal_asyncdetect -merge-shards [-merge-source SRC]... [-input_file_list FILE]\n"
    "                        [merging and output options] SHARD... DST_VECTOR\n"
    "\n"
    "Runs object detection over SRC_RASTER (or several: one run, one output) through an\n"
    "Amazon SageMaker asynchronous inference endpoint and writes the georeferenced\n"
    "detections to DST_VECTOR.\n"
    "\n",
    "Endpoint and AWS (the standard credential chain, AWS_REGION and AWS_ENDPOINT_URL*\n"
    "apply, so the same command runs against AWS or the local asyncdetect_endpoint):\n"
    "  -endpoint NAME            SageMaker endpoint name (required; ASYNC_SM_ENDPOINT).\n"
    "  -input-bucket BUCKET      bucket receiving the tiles (required; ASYNC_SM_INPUT_BUCKET).\n"
    "  -output-bucket BUCKET     bucket for results, when the endpoint's config uses it\n"
    "                            (ASYNC_SM_OUTPUT_BUCKET); results are always polled where\n"
    "                            the endpoint says they will be.\n"
    "  -input-prefix P, -output-prefix P   key prefixes (async-inference/input/, .../output/);\n"
    "                            the output prefix is sent as S3OutputPathExtension: results\n"
    "                            land under the endpoint's S3OutputPath + that path.\n"
    "  -region REGION            AWS region (ASYNC_SM_REGION, else AWS_REGION / the profile's).\n"
    "  -profile NAME             AWS profile (AWS_PROFILE).\n"
    "  -assume-role ARN [-external-id ID]  call STS AssumeRole first and use its credentials.\n"
    "  -content-type TYPE, -accept TYPE    X-Amzn-SageMaker-Content-Type / -Accept.\n"
    "  -custom-attributes TEXT   passed to the model unchanged (e.g. model_selection=blobs).\n"
    "  -sse AES256|aws:kms|aws:kms:dsse [-sse-kms-key-id ID]  server-side encryption of uploads\n"
    "                            (ASYNC_SM_SSE, ASYNC_SM_SSE_KMS_KEY_ID), as bucket policies require.\n"
    "  -expected-bucket-owner ACCOUNT  x-amz-expected-bucket-owner on every S3 call\n"
    "                            (ASYNC_SM_EXPECTED_BUCKET_OWNER): 403 if another account owns it.\n"
    "\n"
    "Engine (AsyncEndpointConfig).  Where each value comes from, first found wins: the flag,\n"
    "then --config ASYNC_SM_KEY VALUE, then the environment variable ASYNC_SM_KEY (or\n"
    "GDAL's configuration file), then the default in parentheses; docs/aws-setup.md\n"
    "lists every key:\n"
    "  -max-wait-time S (3600)  -polling-interval S (30)  -max-polling-interval S (300)\n"
    "  -backoff-multiplier F (1.5)  -max-retries N (3)  -cleanup YES|NO (YES)\n"
    "  -cleanup-policy immediate|delayed|disabled (immediate)  -cleanup-delay S (300)\n"
    "  -worker-optimization YES|NO (YES)  -submission-workers N (4)  -polling-workers N (2)\n"
    "  -max-concurrent-jobs N (100)  -job-queue-timeout S (300)\n"
    "  -adaptive-polling YES|NO  poll each job around the result time learnt in this run,\n"
    "                            at most -max-polling-interval apart (the schedule above until\n"
    "                            a first result) (default YES, unless a polling interval,\n"
    "                            maximum or multiplier is set).\n"
    "\n",
    "Tiling:\n"
    "  -tile-size N (512)  -overlap N (128 pixels shared by neighbouring tiles)\n"
    "  -srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY [-projwin_srs SRS]\n"
    "                            process only this window of the raster.\n"
    "  -b BAND                   band to send (repeat; default: all, or the first 3).\n"
    "  -scale [SMIN SMAX]        rescale to 8 bits (no values: each band's min/max).\n"
    "  -scale-mode MODE          without -scale: auto (default: Byte as is, other types dra),\n"
    "                            dra[:LOW:HIGH] (percentiles 2:98 widened as OSML does),\n"
    "                            percentile[:LOW:HIGH] (plain cut), minmax, none (clamp).\n"
    "  -tile-format F            tile encoding sent to the model: PNG (default), JPEG, WEBP,\n"
    "                            GTiff, NITF.\n"
    "  -tco NAME=VALUE           creation option of the tile format's GDAL driver (repeat),\n"
    "                            e.g. ZLEVEL=1 (PNG), QUALITY=75 (JPEG, WEBP), LOSSLESS=YES\n"
    "                            (WEBP), COMPRESS=LZW (GTiff): fewer bytes per tile when the\n"
    "                            uplink bounds the run (the summary says which resource did);\n"
    "                            WEBP tiles use libwebp's fastest effort (METHOD=0: 2-3x less\n"
    "                            CPU than its own default 4, same PSNR, ~11 % more bytes);\n"
    "                            METHOD=4 when the uplink, not encoding CPU, bounds the run.\n"
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
    "  -t_srs SRS (EPSG:4326)  -to NAME=VALUE  transformer options, as gdaltransform -to:\n"
    "                            METHOD=GEOTRANSFORM|GCP_POLYNOMIAL|GCP_TPS|RPC|GEOLOC_ARRAY,\n"
    "                            MAX_GCP_ORDER=N, RPC_HEIGHT=M, RPC_DEM=FILE...  Default: RPCs,\n"
    "                            else geolocation arrays, else the geotransform, else GCPs\n"
    "                            (polynomial; also when the geotransform is the default one).\n"
    "  -overwrite                replace the output's two layers (a one-layer file whole).\n"
    "  -append                   add to an existing output (e.g. a second image).\n"
    "  --config ASD_OUTPUT_BATCH_SIZE N   detections per transaction (10000; also every 5 s).\n"
    "\n"
    "Run:\n"
    "  -metrics FILE.json        write figures, failed tiles with reason and inference id.\n"
    "  -quicklook FILE.png       write a picture of the run: the image reduced, failed tiles\n"
    "                            shaded red, detections outlined in their class colours.\n"
    "  -quicklook-width N        its width in pixels (1024; never wider than the image).\n"
    "  -q                        quiet: no progress bar, no summary.\n"
    "  -dry-run                  plan tiles, check credentials and bucket access; invoke nothing.\n"
    "  -resume                   finish an interrupted run from its journal: completed tiles\n"
    "                            are not invoked again, in-flight ones are polled again.\n"
    "  -cleanup-pending          only delete the S3 objects earlier runs on DST_VECTOR left\n"
    "                            under -cleanup-policy delayed, once due; invoke nothing.\n"
    "                            Needs DST_VECTOR and the endpoint and buckets (the deletion\n"
    "                            scope), no SRC_RASTER (one given is not opened).\n"
    "\n",
    "Many images and fleets (docs/fleet.md):\n"
    "  SRC1 SRC2 ... DST         one run over several images: one pool (the next image is read\n"
    "                            while the last one's tiles are in flight), one output with a\n"
    "                            source_image field, one journal (-resume), a line per image.\n"
    "  -input_file_list FILE     the images, one per line (VSI paths too; '#' lines skipped).\n"
    "  -shard K/N                only the K-th (0..N-1) of N parts: a block of the tiles of one\n"
    "                            image, or of the list; detections written unmerged.  K can be\n"
    "                            $AWS_BATCH_JOB_ARRAY_INDEX or $JOB_COMPLETION_INDEX as it is.\n"
    "  -merge-shards SHARD... DST merge the shards' outputs into DST as one run would have\n"
    "                            written it (seams between shards included); invokes nothing.\n"
    "                            It reopens each source for its georeferencing, by the name\n"
    "                            the shards recorded (without a URL's query string).\n"
    "  -merge-source SRC         with -merge-shards: read that image from SRC, e.g. a presigned\n"
    "                            URL again (repeat; or -input_file_list, the shards' list).\n"
    "\n"
    "Exit status: 0 every tile succeeded; 1 error before any work (usage, input, output,\n"
    "credentials, endpoint) or no tile of the input could be read; 2 output written but some\n"
    "tiles failed (see the tile-status layer and -metrics; rerun with -resume, which cannot\n"
    "fix tiles the input could not give); 3 interrupted (rerun with -resume).\n",
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
  CSLDestroy(b->sources);
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
  CSLDestroy(o->tile_creation_options);
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
  CPLFree(o->scale_spec);
  CPLFree(o->metrics_path);
  CPLFree(o->quicklook);
  CSLDestroy(o->merge_sources);
  CSLDestroy(o->merge_source_list);
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

static void set_str(char **dst, const char *v) {
  CPLFree(*dst);
  *dst = CPLStrdup(v);
}

/* "NAME=VALUE" with a non-empty NAME. */
static int is_name_value(const char *s) {
  const char *eq = strchr(s, '=');
  return eq && eq != s;
}

/*
 * A configuration flag's value is checked by the engine's own parser
 * (asd_config_set on a scratch configuration), so the command line accepts
 * exactly what ASYNC_SM_* and the library accept; the value is stored as
 * given and parsed again, by the same parser, when the run applies it.  The
 * command line adds one rule of its own: numbers are not negative.
 */
static int check_config_flag(const struct config_flag *f, const char *v) {
  asd_async_config probe;
  asd_config_init(&probe);
  char err[512];
  double d;
  if (asd_config_set(&probe, f->field, v, err, sizeof err) != 0) {
    if (f->kind == 'b') return usage_error("option %s wants YES or NO, not '%s'", f->flag, v);
    if (f->kind == 'p')
      return usage_error("option %s wants immediate, delayed or disabled, not '%s'", f->flag, v);
    return usage_error("option %s: %s", f->flag, err);
  }
  if (f->kind == 'n' && (parse_double(v, &d) != 0 || d < 0))
    return usage_error("option %s wants a number >= 0, not '%s'", f->flag, v);
  if (f->kind == 's' && !*v) return usage_error("option %s wants a non-empty value", f->flag);
  return 0;
}

/* dst + src, in order (CSLMerge would merge NAME=VALUE pairs). */
static char **append_all(char **dst, char **src) {
  for (char **p = src; p && *p; p++) dst = CSLAddString(dst, *p);
  return dst;
}

/* SRC... DST: the last positional argument is the output, the others and
   then the -input_file_list lines the inputs.  A lone name is taken as an
   input without an output (the likelier mistake), which the utility reports. */
static void take_positionals(asd_detect_options_for_binary *b, char ***positionals, char ***file_list) {
  int n = CSLCount(*positionals);
  if (n == 1 && !*file_list) {
    set_str(&b->source, (*positionals)[0]);
    b->sources = *positionals;
    *positionals = NULL;
    return;
  }
  if (n >= 1) {
    set_str(&b->dest, (*positionals)[n - 1]);
    CPLFree((*positionals)[n - 1]);
    (*positionals)[n - 1] = NULL;
  }
  b->sources = append_all(*positionals, *file_list);
  CSLDestroy(*file_list);
  *positionals = *file_list = NULL;
  if (b->sources && b->sources[0]) set_str(&b->source, b->sources[0]);
}

asd_detect_options *asd_detect_options_new(char **argv, asd_detect_options_for_binary *for_binary) {
  asd_detect_options *o = CPLCalloc(1, sizeof(*o));
  o->tile_size = 512;
  o->quicklook_width = 1024;
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
  char **positionals = NULL, **file_list = NULL;
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
      if (check_config_flag(&config_flags[k], v) != 0) goto fail;
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
    } else if (EQUAL(a, "-scale-mode")) {
      NEED(1);
      asd_scale_mode m;
      double lo = 2, hi = 98;
      char err[256];
      if (asd_scale_mode_parse(argv[i + 1], &m, &lo, &hi, err, sizeof err) != 0) {
        usage_error("%s", err);
        goto fail;
      }
      CPLFree(o->scale_spec);
      o->scale_spec = CPLStrdup(argv[i + 1]);
      i++;
    } else if (EQUAL(a, "-tile-format")) {
      NEED(1);
      /* The encoder's own parser: the names (and aliases) it accepts. */
      int f = asd_encode_format_from_name(argv[i + 1]);
      if (f < 0) {
        usage_error("option -tile-format wants PNG, GTiff, JPEG, NITF or WEBP, not '%s'", argv[i + 1]);
        goto fail;
      }
      set_str(&o->tile_format, asd_encode_format_name((asd_encode_format)f));
      i++;
    } else if (EQUAL(a, "-tco")) {
      NEED(1);
      if (!strchr(argv[i + 1], '=') || argv[i + 1][0] == '=') {
        usage_error("option -tco wants NAME=VALUE (a creation option of the tile format), not '%s'", argv[i + 1]);
        goto fail;
      }
      o->tile_creation_options = CSLAddString(o->tile_creation_options, argv[++i]);
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
      /* The merger's own parser. */
      asd_merge_mode mode;
      if (asd_merge_mode_parse(argv[i + 1], &mode) != 0) {
        usage_error("option -merge wants nmm, nms, soft-nms or none, not '%s'", argv[i + 1]);
        goto fail;
      }
      set_str(&o->merge, asd_merge_mode_name(mode));
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
    } else if (EQUAL(a, "-quicklook")) {
      NEED(1);
      set_str(&o->quicklook, argv[++i]);
    } else if (EQUAL(a, "-quicklook-width")) {
      NEED(1);
      if (parse_int(argv[i + 1], &o->quicklook_width) != 0 || o->quicklook_width < 16 || o->quicklook_width > 65536) {
        usage_error("option -quicklook-width wants a whole number of pixels between 16 and 65536, not '%s'",
                    argv[i + 1]);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-q") || EQUAL(a, "-quiet")) {
      o->quiet = 1;
      if (for_binary) for_binary->quiet = 1;
    } else if (EQUAL(a, "-dry-run") || EQUAL(a, "-dry_run")) {
      o->dry_run = 1;
    } else if (EQUAL(a, "-resume")) {
      o->resume = 1;
    } else if (EQUAL(a, "-cleanup-pending")) {
      o->cleanup_pending = 1;
      if (for_binary) for_binary->cleanup_pending = 1;
    } else if (EQUAL(a, "-shard")) {
      NEED(1);
      char err[256];
      if (asd_shard_parse(argv[i + 1], &o->shard_k, &o->shard_n, err, sizeof err) != 0) {
        usage_error("%s", err);
        goto fail;
      }
      i++;
    } else if (EQUAL(a, "-merge-shards")) {
      o->merge_shards = 1;
      if (for_binary) for_binary->merge_shards = 1;
    } else if (EQUAL(a, "-merge-source")) {
      NEED(1);
      o->merge_sources = CSLAddString(o->merge_sources, argv[++i]);
    } else if (EQUAL(a, "-input_file_list") || EQUAL(a, "--input_file_list")) {
      NEED(1);
      if (!for_binary) {
        usage_error("-input_file_list is the utility's: call asd_detect_many() with the list");
        goto fail;
      }
      char err[512];
      char **list = asd_read_input_file_list(argv[i + 1], err, sizeof err);
      if (!list) {
        if (!err[0]) snprintf(err, sizeof err, "-input_file_list: '%s' names no image", argv[i + 1]);
        usage_error("%s", err);
        goto fail;
      }
      file_list = append_all(file_list, list);
      CSLDestroy(list);
      i++;
    } else if (a[0] == '-' && a[1] != '\0' && !is_number(a)) {
      usage_error("unknown option '%s'", a);
      goto fail;
    } else if (for_binary) {
      positionals = CSLAddString(positionals, a);
    } else {
      usage_error("unexpected argument '%s'", a);
      goto fail;
    }
  }
#undef NEED
  /* With -merge-shards the positional arguments are the shards, and the
     list file is the sources' list the shards were given (their full names
     again, for a presigned URL the shards recorded without its query). */
  if (o->merge_shards && file_list) {
    o->merge_source_list = file_list;
    file_list = NULL;
  }
  if (o->merge_sources && !o->merge_shards) {
    usage_error("-merge-source goes with -merge-shards (give the sources of a run as SRC... or -input_file_list)");
    goto fail;
  }
  if (for_binary) take_positionals(for_binary, &positionals, &file_list);
  /* -cleanup-pending needs the output only: a lone name is DST_VECTOR. */
  if (for_binary && o->cleanup_pending && for_binary->source && !for_binary->dest) {
    for_binary->dest = for_binary->source;
    for_binary->source = NULL;
    CSLDestroy(for_binary->sources);
    for_binary->sources = NULL;
  }

  /* Combinations. */
  if (o->overwrite && o->append) {
    usage_error("-overwrite and -append exclude each other");
    goto fail;
  }
  if (o->scale_mode && o->scale_spec) {
    usage_error("-scale and -scale-mode cannot be combined (-scale is -scale-mode minmax, -scale A B a fixed range)");
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
  if (o->cleanup_pending && o->dry_run) {
    usage_error("-cleanup-pending deletes what is due and -dry-run touches nothing: give one of them");
    goto fail;
  }
  if (o->merge_shards && (o->shard_n || o->resume || o->dry_run || o->cleanup_pending)) {
    usage_error("-merge-shards merges finished shards: it takes no -shard, -resume, -dry-run or -cleanup-pending");
    goto fail;
  }
  return o;

fail:
  CSLDestroy(positionals);
  CSLDestroy(file_list);
  asd_detect_options_free(o);
  return NULL;
}
