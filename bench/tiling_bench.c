/*
 * tiling_bench.c: the tiling + encoding half of gdal_asyncdetect, alone.
 *
 * Plans tiles over an image (asd_plan), then encodes every tile with the
 * shared encoder (asd_encoder) from N threads pulling tile indexes from one
 * counter, as the utility's submission workers do.  Payloads are freed as
 * soon as they are made (the bench measures producing them, not uploading),
 * so the memory in use is the tiles in flight plus GDAL's block cache.
 *
 *   tiling_bench IMAGE TILE OVERLAP THREADS [FORMAT] [CREATION_OPTION...]
 *
 * Prints one line of key=value figures; cpu_ms_per_tile is the process's
 * user + system CPU from the encoder's creation to the last tile, per tile.  Built by bench/tiling.sh and
 * bench/tiling_blocks.sh.  The read path is the encoder's default unless
 * ASD_READ_MODE=window|blocks is set (GDAL config option, so the
 * environment works); the line ends with the encoder's read counters.
 *
 * With ASD_BENCH_COUNT_IO=1 the image is opened through a VSI handler
 * (/vsibenchcount/) that forwards to the real file and counts the bytes
 * and the read calls GDAL makes: an account of how often compressed blocks
 * were fetched (each fetch is followed by a decode) that does not rely on
 * the encoder's own counters, and that is the same for both read paths.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "asyncdetect/asd_common.h"
#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_plan.h"

static long long g_io_bytes, g_io_reads;
static pthread_mutex_t g_io_lock = PTHREAD_MUTEX_INITIALIZER;

static void *io_open(void *u, const char *name, const char *access) {
  (void)u;
  return VSIFOpenL(name, access);
}
static int io_stat(void *u, const char *name, VSIStatBufL *st, int flags) {
  (void)u;
  return VSIStatExL(name, st, flags);
}
static vsi_l_offset io_tell(void *f) { return VSIFTellL(f); }
static int io_seek(void *f, vsi_l_offset off, int whence) { return VSIFSeekL(f, off, whence); }
static size_t io_read(void *f, void *buf, size_t size, size_t n) {
  size_t got = VSIFReadL(buf, size, n, f);
  pthread_mutex_lock(&g_io_lock);
  g_io_bytes += (long long)(got * size);
  g_io_reads++;
  pthread_mutex_unlock(&g_io_lock);
  return got;
}
static int io_eof(void *f) { return VSIFEofL(f); }
static int io_close(void *f) { return VSIFCloseL(f); }

static void install_io_counter(void) {
  VSIFilesystemPluginCallbacksStruct *cb = VSIAllocFilesystemPluginCallbacksStruct();
  cb->open = io_open;
  cb->stat = io_stat;
  cb->tell = io_tell;
  cb->seek = io_seek;
  cb->read = io_read;
  cb->eof = io_eof;
  cb->close = io_close;
  VSIInstallPluginHandler("/vsibenchcount/", cb);
  VSIFreeFilesystemPluginCallbacksStruct(cb);
}

/* User + system CPU of the whole process so far: the encoder's threads
 * included, the process start-up and the image's opening excluded when
 * taken as a difference around the encoding. */
static double process_cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

typedef struct job {
  asd_plan *plan;
  asd_encoder *enc;
  pthread_mutex_t lock;
  int next;
  long long bytes;
  int encoded, skipped, failed;
} job;

static void *worker(void *arg) {
  job *j = arg;
  for (;;) {
    pthread_mutex_lock(&j->lock);
    int i = j->next++;
    pthread_mutex_unlock(&j->lock);
    if (i >= asd_plan_count(j->plan)) break;
    asd_payload p;
    asd_encode_status st = asd_encoder_encode(j->enc, asd_plan_tile(j->plan, i), &p);
    pthread_mutex_lock(&j->lock);
    if (st == ASD_ENCODE_OK) {
      j->encoded++;
      j->bytes += (long long)p.len;
    } else if (st == ASD_ENCODE_SKIPPED) {
      j->skipped++;
    } else {
      j->failed++;
    }
    pthread_mutex_unlock(&j->lock);
    asd_payload_free(&p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tiling_bench IMAGE TILE OVERLAP THREADS [FORMAT] [CREATION_OPTION...]\n");
    return 2;
  }
  GDALAllRegister();
  /* As the utility does for itself: the library no longer caps GDAL's
     block cache (a process-wide setting), so the bench does, as before. */
  if (!CPLGetConfigOption("GDAL_CACHEMAX", NULL) && GDALGetCacheMax64() > (GIntBig)128 * 1024 * 1024)
    GDALSetCacheMax64((GIntBig)128 * 1024 * 1024);
  const char *image = argv[1];
  char counted[4096];
  if (CPLTestBool(CPLGetConfigOption("ASD_BENCH_COUNT_IO", "NO"))) {
    install_io_counter();
    snprintf(counted, sizeof counted, "/vsibenchcount/%s", image);
    image = counted;
  }
  int tile = atoi(argv[2]), overlap = atoi(argv[3]), threads = atoi(argv[4]);
  if (threads < 1) threads = 1;
  GDALDatasetH ds = GDALOpen(image, GA_ReadOnly);
  if (!ds) return 1;
  asd_plan_options po;
  asd_plan_options_init(&po);
  po.tile_width = po.tile_height = tile;
  po.overlap = overlap;
  asd_plan *plan = asd_plan_new(ds, &po);
  if (!plan) return 1;
  asd_encode_options eo;
  asd_encode_options_init(&eo);
  if (argc > 5) {
    int f = asd_encode_format_from_name(argv[5]);
    if (f < 0) {
      fprintf(stderr, "unknown format %s\n", argv[5]);
      return 2;
    }
    eo.format = (asd_encode_format)f;
  }
  char **copts = NULL;
  for (int i = 6; i < argc; i++) copts = CSLAddString(copts, argv[i]);
  eo.creation_options = copts;
  eo.max_handles = threads;
  double t0 = asd_time_monotonic();
  const double cpu0 = process_cpu_seconds();
  job j;
  memset(&j, 0, sizeof(j));
  pthread_mutex_init(&j.lock, NULL);
  j.plan = plan;
  j.enc = asd_encoder_new(image, &eo);
  if (!j.enc) return 1;
  pthread_t *th = calloc((size_t)threads, sizeof(pthread_t));
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, worker, &j);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  double dt = asd_time_monotonic() - t0;
  const double cpu = process_cpu_seconds() - cpu0;
  asd_encoder_read_stats rs;
  asd_encoder_get_read_stats(j.enc, &rs);
  printf("tiles=%d encoded=%d skipped=%d failed=%d seconds=%.3f tiles_per_second=%.2f cpu_ms_per_tile=%.3f mean_payload_bytes=%.0f"
         " read_mode=%s block=%dx%d blocks_read=%lld blocks_reread=%lld block_mb_read=%.1f window_reads=%lld"
         " window_mb_read=%.1f block_cache_peak_mb=%.1f file_mb_read=%.1f file_reads=%lld\n",
         asd_plan_count(plan), j.encoded, j.skipped, j.failed, dt, asd_plan_count(plan) / dt,
         1000.0 * cpu / asd_plan_count(plan),
         j.encoded ? (double)j.bytes / j.encoded : 0.0, rs.mode == ASD_READ_WINDOW ? "window" : "blocks",
         rs.block_width, rs.block_height, rs.blocks_read, rs.blocks_reread, rs.block_bytes_read / 1048576.0,
         rs.window_reads, rs.window_bytes_read / 1048576.0, rs.cache_peak_bytes / 1048576.0,
         g_io_bytes / 1048576.0, g_io_reads);
  free(th);
  asd_encoder_free(j.enc);
  asd_plan_free(plan);
  CSLDestroy(copts);
  GDALClose(ds);
  pthread_mutex_destroy(&j.lock);
  return j.failed ? 1 : 0;
}
