/*
 * gdal_asyncdetect_bin.c: the gdal_asyncdetect command, a thin main over the
 * library entry point (asd_app.h).
 *
 * Everything a pipeline could want lives in the library; this file only does
 * what belongs to a process: GDAL's general options (--config, --debug,
 * --help-general, --version, --optfile through GDALGeneralCmdLineProcessor),
 * the size of GDAL's block cache,
 * opening the input raster, the terminal progress bar, printing the summary,
 * the SIGINT handler and the exit status.  Several inputs (SRC1 ... DST,
 * -input_file_list) go to asd_detect_many(), which opens them itself, and
 * -merge-shards to asd_detect_merge_shards(), -cleanup-pending (which needs
 * no input) to asd_detect_cleanup_pending(); one input is opened here, so
 * that a name GDAL cannot open is one line before anything else.
 *
 * Ctrl-C: the handler only counts (an async-signal-safe store); the library
 * watches the counter.  The first Ctrl-C stops submitting tiles and drains
 * the ones in flight; the second stops at once (the journal holds every
 * committed state, so -resume loses nothing); a third restores the default
 * action, so a process that somehow does not stop can still be killed from
 * the keyboard.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncdetect/asd_app.h"
#include "asyncdetect/asd_common.h"
#include "cpl_conv.h"
#include "cpl_error.h"
#include "cpl_string.h"
#include "gdal.h"

static volatile sig_atomic_t interrupts = 0;

static void on_sigint(int sig) {
  (void)sig;
  interrupts++;
  if (interrupts == 1) {
    static const char msg[] = "\ngdal_asyncdetect: interrupted: no new tiles; waiting for the tiles in flight "
                              "(Ctrl-C again to stop now, -resume later)\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
  } else if (interrupts == 2) {
    static const char msg[] = "\ngdal_asyncdetect: stopping now; the journal is intact, rerun with -resume\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    signal(SIGINT, SIG_DFL);
  }
}

/* GDAL's default handler prints "ERROR n: message"; keep that familiar form
   but name the program, as other GDAL utilities' messages are recognisable. */
static void error_handler(CPLErr cls, CPLErrorNum num, const char *msg) {
  if (cls == CE_Debug) {
    CPLDefaultErrorHandler(cls, num, msg);
    return;
  }
  const char *kind = cls == CE_Warning ? "Warning" : "ERROR";
  fprintf(stderr, "gdal_asyncdetect: %s %d: %s\n", kind, (int)num, msg);
}

int main(int argc, char **argv) {
  GDALAllRegister();
  argc = GDALGeneralCmdLineProcessor(argc, &argv, 0);
  if (argc < 1) exit(-argc);
  CPLSetErrorHandler(error_handler);
  /* GDAL's default block cache is 5 % of the RAM, which a scan over a large
   * image fills entirely: memory would grow with the machine, not with the
   * work.  Tile reads need only the few rows of blocks under the tiles in
   * flight, so unless the user chose a size (GDAL_CACHEMAX, --config), the
   * utility caps it for its own process.  The library never changes this
   * process-wide setting: a host application keeps its own. */
  const GIntBig cache_cap = (GIntBig)128 * 1024 * 1024;
  if (!CPLGetConfigOption("GDAL_CACHEMAX", NULL) && GDALGetCacheMax64() > cache_cap) GDALSetCacheMax64(cache_cap);

  for (int i = 1; i < argc; i++) {
    if (EQUAL(argv[i], "--utility_version")) {
      printf("gdal_asyncdetect %s, built against GDAL %s, running with GDAL %s\n", asd_version(), GDAL_RELEASE_NAME,
             GDALVersionInfo("RELEASE_NAME"));
      CSLDestroy(argv);
      return 0;
    }
  }

  asd_detect_options_for_binary *bin = asd_detect_options_for_binary_new();
  asd_detect_options *opts = asd_detect_options_new(argv + 1, bin);
  if (!opts) {
    asd_detect_options_for_binary_free(bin);
    CSLDestroy(argv);
    GDALDestroyDriverManager();
    return ASD_DETECT_ERROR;
  }
  if (bin->show_help) {
    fputs(asd_detect_usage(), stdout);
    asd_detect_options_free(opts);
    asd_detect_options_for_binary_free(bin);
    CSLDestroy(argv);
    GDALDestroyDriverManager();
    return 0;
  }
  if ((!bin->source && !bin->cleanup_pending) || !bin->dest) {
    CPLError(CE_Failure, CPLE_IllegalArg, "%s (see gdal_asyncdetect --help)",
             bin->merge_shards      ? "-merge-shards wants SHARD... DST_VECTOR"
             : bin->cleanup_pending ? "-cleanup-pending wants DST_VECTOR"
             : !bin->source    ? "missing SRC_RASTER and DST_VECTOR"
                               : "missing DST_VECTOR");
    asd_detect_options_free(opts);
    asd_detect_options_for_binary_free(bin);
    CSLDestroy(argv);
    GDALDestroyDriverManager();
    return ASD_DETECT_ERROR;
  }

  /* A /vsis3/ input is read through the tool's endpoint and credentials. */
  int prepared = 0;
  const int no_input = bin->merge_shards || bin->cleanup_pending;
  for (char **s = no_input ? NULL : bin->sources; s && *s && prepared == 0; s++)
    prepared = asd_detect_prepare_input(*s, opts);
  if (prepared != 0) {
    asd_detect_options_free(opts);
    asd_detect_options_for_binary_free(bin);
    CSLDestroy(argv);
    GDALDestroyDriverManager();
    return ASD_DETECT_ERROR;
  }

  /* One input: open it quietly and report one line that names the file
     (without a query string: a presigned URL's signature is a secret). */
  const int one = !no_input && CSLCount(bin->sources) == 1;
  GDALDatasetH src = NULL;
  if (one) {
    CPLPushErrorHandler(CPLQuietErrorHandler);
    src = GDALOpenEx(bin->source, GDAL_OF_RASTER | GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
    CPLPopErrorHandler();
  }
  if (one && !src) {
    char *label = asd_detect_source_label(bin->source);
    /* Copy: CPLError reuses the buffer CPLGetLastErrorMsg points into.
       GDAL's message may quote the name as given: then it is left out. */
    char why[1024];
    snprintf(why, sizeof why, "%s", strstr(CPLGetLastErrorMsg(), bin->source) && strcmp(label, bin->source) != 0
                                        ? "" : CPLGetLastErrorMsg());
    CPLError(CE_Failure, CPLE_OpenFailed, "cannot open input raster '%s'%s%s", label, *why ? ": " : "", why);
    CPLFree(label);
    asd_detect_options_free(opts);
    asd_detect_options_for_binary_free(bin);
    CSLDestroy(argv);
    GDALDestroyDriverManager();
    return ASD_DETECT_ERROR;
  }

  if (!bin->quiet) asd_detect_options_set_progress(opts, GDALTermProgress, NULL);
  asd_detect_options_set_interrupt(opts, &interrupts);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  asd_detect_summary summary;
  int usage = 0;
  int status = bin->merge_shards      ? asd_detect_merge_shards(bin->dest, bin->sources, opts, &summary, &usage)
               : bin->cleanup_pending ? asd_detect_cleanup_pending(bin->dest, opts, &summary, &usage)
               : one             ? asd_detect(bin->dest, src, opts, &summary, &usage)
                                 : asd_detect_many(bin->dest, bin->sources, opts, &summary, &usage);
  if (!bin->quiet && status != ASD_DETECT_ERROR) {
    char *text = asd_detect_summary_format(&summary);
    fputs(text, stdout);
    CPLFree(text);
  } else if (bin->quiet) {
    /* -q silences the summary, not the reason for a non-zero exit. */
    char *line = asd_detect_summary_exit_line(&summary, status);
    if (line) fprintf(stderr, "gdal_asyncdetect: %s\n", line);
    CPLFree(line);
  }

  asd_detect_summary_clear(&summary);
  if (src) GDALClose(src);
  asd_detect_options_free(opts);
  asd_detect_options_for_binary_free(bin);
  CSLDestroy(argv);
  GDALDestroyDriverManager();
  return status;
}
