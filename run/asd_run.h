/*
 * asd_run.h: the run module, what asd_detect() does once the options are
 * parsed.  Internal (not installed): asd_app.h is the public face.
 *
 * A run goes through six stages, in this order, each a function of its own
 * (detect.c calls them one after the other and stops at the first failure):
 *
 *   stage            function                 file        what it does
 *   open input       asd_run_open_input()     input.c     checks each image, plans its tiles, georeferencer,
 *                                                         the first image's encoder; the -shard part
 *                    asd_run_connect()        connect.c   engine configuration, endpoint client, preflight
 *                    asd_run_locate_output()  output.c    driver, journal place, tile-status layer name
 *   open output      asd_run_open_output()    output.c    existence rules, OGR writer
 *   bind journal     asd_run_bind_journal()   resume.c    journal in the output (or a sidecar), run identity
 *   replay           asd_run_replay()         resume.c    merger, stored results fed again, work lists
 *   run              asd_run_execute()        runtime.c   encoder threads -> pool thread -> sink (this thread)
 *   finish           asd_run_finish()         detect.c    last detections, tile-status layer, summary, metrics
 *
 * The sink (sink.c) is where a finished tile's event is turned into journal
 * rows, parsed detections, merged detections and output features; it runs on
 * the caller's thread only.  metrics_json.c writes -metrics, summary.c fills
 * asd_detect_summary and formats it, report.c turns the modules' CPLErrors
 * during setup into one line with context.
 *
 * A run works on a set of images (images.h): one for asd_detect(), several
 * for asd_detect_many() (SRC1 SRC2 ... DST, -input_file_list), with one
 * pool, one output and one journal; each image has its own plan,
 * georeferencer, merger and (while its tiles are read) encoder.  Tiles are
 * numbered globally across the set (asd_run_image_of).  Two more shapes of
 * a run: -shard K/N takes a part of the tiles or of the list (input.c) and
 * writes its detections unmerged; asd_detect_merge_shards() (shards.c)
 * replays the shards' journals into one merged output instead of invoking.
 *
 * Where a new thing goes:
 *   - an option: a field in asd_detect_options.h, its parsing and --help line
 *     in apps/gdal_asyncdetect_lib.c, then read in the stage that needs it
 *     (tiling and encoding: input.c; engine/AWS: connect.c; output: output.c;
 *     merging: sink.c asd_run_open_merger());
 *   - a summary line: a field in asd_detect_summary (asd_app.h), filled in
 *     summary.c asd_run_fill_summary(), printed in asd_detect_summary_format();
 *   - a metrics field: metrics_json.c asd_run_write_metrics() (from the
 *     summary, or from the run for per-tile facts).
 *
 * Every field of asd_run below says which stage sets it; a later stage only
 * reads what an earlier one set, so the struct reads top to bottom like the
 * run itself.
 */
#ifndef ASD_RUN_H
#define ASD_RUN_H

#include <pthread.h>
#include <stddef.h>

#include "asd_detect_options.h"
#include "images.h"
#include "inputs.h"
#include "shards.h"
#include "asyncdetect/asd_pending.h"
#include "asyncdetect/asd_app.h"
#include "asyncdetect/asd_config.h"
#include "asyncdetect/asd_detector.h"
#include "asyncdetect/asd_encode.h"
#include "asyncdetect/asd_errors.h"
#include "asyncdetect/asd_georef.h"
#include "asyncdetect/asd_journal.h"
#include "asyncdetect/asd_merge.h"
#include "asyncdetect/asd_metrics.h"
#include "asyncdetect/asd_plan.h"
#include "asyncdetect/asd_pool.h"
#include "asyncdetect/asd_writer.h"
#include "cpl_port.h"
#include "gdal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Final state of a tile in this run. */
typedef enum asd_run_tile_state {
  ASD_RUN_TILE_PENDING = 0,
  ASD_RUN_TILE_SUCCEEDED,
  ASD_RUN_TILE_FAILED,
  ASD_RUN_TILE_SKIPPED,
  ASD_RUN_TILE_NOT_RUN,
  ASD_RUN_TILE_OTHER_SHARD  /* another shard's (-shard K/N): not this run's, written nowhere */
} asd_run_tile_state;

typedef struct asd_run_tile {
  asd_run_tile_state state;
  int image;              /* index in asd_run.images */
  int resumed;            /* succeeded in an earlier run (result from the journal) */
  asd_skip_reason skip;
  char *reason;
  char *inference_id;
  char *output_location;
  char *failure_location;
  long long features;     /* detections parsed from its result */
  int read_error;         /* failed because its pixels could not be read from the input */
} asd_run_tile;

/* The reason of a tile whose pixels could not be read starts so (GDAL's
 * cause follows); retrying such a tile with -resume does not help. */
#define ASD_RUN_READ_FAILURE "cannot read the input"

/* Events the sink (the thread that owns the journal and the output) handles. */
typedef enum asd_run_event_kind { ASD_RUN_EV_SUBMITTED, ASD_RUN_EV_DONE, ASD_RUN_EV_SKIPPED } asd_run_event_kind;

typedef struct asd_run_event {
  struct asd_run_event *next;
  asd_run_event_kind kind;
  int tile;
  int ok;
  asd_errcode code;       /* failed: the error kind, HTTP status and AWS code of the pool's result */
  int http_status;
  char aws_code[64];
  asd_skip_reason skip;
  char *text;             /* result text (ok) or reason (failed) */
  size_t text_len;
  char *inference_id, *input_location, *output_location, *failure_location;
  int *handled;           /* when set, the sink sets *handled = 1 (under mu, with a broadcast of cv)
                             once the event is in the journal: its producer waits for that */
} asd_run_event;

/* A payload made by an encoder thread, waiting for a submission worker. */
typedef struct asd_run_ready {
  int tile;
  int failed;             /* encode error: reason holds why */
  unsigned char *data;
  size_t len;
  char reason[512];
} asd_run_ready;

/*
 * Setup errors are reported as one line with context ("cannot open the
 * output 'x': <why>"): while setting up, the modules' own CPLErrors are
 * captured instead of printed (report.c).
 */
typedef struct asd_run_report {
  int active;
  char first[1024];
  char **warnings;
} asd_run_report;

typedef struct asd_run {
  /* Given (asd_run_init). */
  const asd_detect_options *o;
  const char *dest;
  char **names;           /* the images by name (asd_detect_many, or the shards' sources), else NULL */
  GDALDatasetH src;       /* asd_detect()'s dataset (the caller's), else NULL */
  int shard_by_tiles;     /* -shard K/N splits the tiles of every image given (one image, or a list shorter
                             than N), not the list (detect.c shard_of_list) */
  asd_detect_summary *summary;
  int *usage_error;
  double t0;
  asd_run_report report;

  /* -merge-shards (shards.c): the shards, and the options with their tiling. */
  asd_run_shards *shards;
  asd_detect_options merge_opts;

  /* Open input (input.c, images.c). */
  asd_run_image *images;
  int nimages;
  int ntiles;             /* over every image */
  int tiles_other;        /* of those, another shard's (-shard K/N) */
  asd_run_tile *tiles;
  const char *content_type;

  /* Connect (connect.c); detector stays NULL for a dry run without AWS settings. */
  asd_async_config cfg;
  asd_detector *detector;

  /* Open output (output.c). */
  const char *format;
  int in_gpkg;
  int dest_existed;
  int resume_append;      /* -resume reopens the output and replaces this image's features */
  char tiles_layer[256];
  char *sidecar;          /* sidecar journal path, or NULL when in the GeoPackage */
  const char *journal_path;
  asd_writer *writer;
  int writer_image;       /* the image the writer writes for now (asd_run_writer_image) */
  int output_created;     /* this run created dest (removed again on a fatal error) */
  char *tiles_path;       /* separate tile-status file this run created, removed on a fatal error */
  asd_writer_georef_counts geo_counts; /* taken from the writer when it closes */

  /* Bind journal (resume.c). */
  asd_journal *journal;
  int journal_shared;     /* the journal writes through the writer's connection */
  asd_pending_list pending; /* delayed deletions carried across processes (pending.c) */
  int pending_noted;        /* the journal held a list when the run started */
  int pending_kept;         /* asd_run_keep_pending() has run */

  /* Replay (resume.c, sink.c); the mergers are the images'. */
  asd_detections final_dets;
  int *to_encode;         /* tile indices to read, encode and invoke */
  int n_to_encode;
  asd_journal_entry **to_resume; /* in-flight tiles of an earlier run, to poll again */
  int n_to_resume;

  /* Run (runtime.c): encoder threads, the bounded queue, the event queue. */
  int next_encode;
  int next_resume;
  pthread_t *enc_threads;
  int n_enc_threads;
  int enc_running;
  asd_run_ready *queue;
  int q_cap, q_head, q_len;
  int q_reserved;         /* slots promised to encoders at work */
  asd_run_event *ev_head, *ev_tail;
  size_t ev_text_bytes;   /* result texts queued or being handled (see pool_done) */
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* queue or events changed */
  int stop_submitting;    /* drain requested */
  int stop_now;
  int pool_finished;
  asd_metrics *metrics;
  asd_pool *pool;
  asd_pool_counts counts;
  asd_error pool_err;
  int pool_rc;
  double run_seconds;

  /* Sink (sink.c, caller's thread only). */
  int tiles_done;         /* finished tiles (any state) for the progress */
  int drain_seen, drain_done;         /* a stop was seen; tiles_done then (progress_fraction) */
  double drain_at, last_progress;     /* the progress then; the last progress reported */
  int tiles_this_run;     /* finished by work of this run (not resumed, not skipped) */
  long long received, kept;
  int any_success;
  char *fatal;            /* run-level error that stops everything */
  int write_error;
} asd_run;

/* The image of global tile g, and g's tile in that image's plan. */
static inline asd_run_image *asd_run_image_of(const asd_run *r, int g) { return &r->images[r->tiles[g].image]; }
static inline const asd_tile *asd_run_plan_tile(const asd_run *r, int g) {
  const asd_run_image *im = asd_run_image_of(r, g);
  return asd_plan_tile(im->plan, g - im->first);
}

/* detect.c: set up and tear down; the finish stage. */
void asd_run_init(asd_run *r, const char *dest, GDALDatasetH src, const asd_detect_options *o,
                  asd_detect_summary *summary, int *usage_error);
void asd_run_free(asd_run *r);
int asd_run_finish(asd_run *r);

/* input.c */
int asd_run_open_input(asd_run *r);
asd_encoder *asd_run_encoder_for(asd_run *r, int g, const char **why);
void asd_run_encoded(asd_run *r, int g);

/* connect.c */
int asd_run_connect(asd_run *r);
int asd_run_build_config(const asd_detect_options *o, asd_async_config *cfg, const char *content_type);

/* output.c */
const char *asd_run_output_format(const asd_detect_options *o, const char *dest);
void asd_run_tiles_layer_name(const asd_detect_options *o, char *out, size_t n);
int asd_run_path_exists(const char *path);
void asd_run_locate_output(asd_run *r);
int asd_run_open_output(asd_run *r);
void asd_run_write_tile_status(asd_run *r, int interrupted);
void asd_run_close_output(asd_run *r);
int asd_run_writer_image(asd_run *r, int image);
void asd_run_discard_output(asd_run *r);

/* resume.c */
char **asd_run_identity(const asd_run *r);
int asd_run_check_resume(asd_run *r);
int asd_run_bind_journal(asd_run *r);
int asd_run_replay(asd_run *r);
int asd_run_count_resumed(const asd_run *r);
void asd_run_note_skipped(asd_run *r);
void asd_run_replay_recorded(asd_run *r, int g, const asd_journal_entry *e, const char *text);
void asd_run_replay_skipped(asd_run *r, int g, asd_skip_reason why);
void asd_run_replay_not_run(asd_run *r, int g, const asd_journal_entry *e, const char *reason);

/* shards.c */
int asd_run_open_shards(asd_run *r, char **paths);
int asd_run_check_shard_sources(asd_run *r);
int asd_run_replay_shards(asd_run *r);

/* sink.c */
int asd_run_open_merger(asd_run *r);
int asd_run_parse_result(const asd_run *r, int tile, const char *text, size_t len, const char *inference_id,
                         asd_detections *out, char *reason, size_t reason_len);
void asd_run_merge_tile(asd_run *r, int tile, asd_detections *dets);
void asd_run_write_final(asd_run *r);
void asd_run_journal_commit(asd_run *r);
void asd_run_handle_event(asd_run *r, asd_run_event *e);
void asd_run_set_fatal(asd_run *r, const char *fmt, ...) CPL_PRINT_FUNC_FORMAT(2, 3);
void asd_run_set_text(char **dst, const char *v);

/* runtime.c */
int asd_run_execute(asd_run *r);
void asd_run_event_free(asd_run_event *e);

/* metrics_json.c */
int asd_run_write_metrics(const asd_run *r, const asd_detect_summary *s, int status);

/* summary.c */
void asd_run_fill_summary(const asd_run *r, asd_detect_summary *s);

/* report.c */
void asd_run_report_begin(asd_run_report *c);
void asd_run_report_end(asd_run_report *c);
const char *asd_run_report_first(const asd_run_report *c, const char *fallback);
const char *asd_run_strip_module_prefix(const char *msg);
void asd_run_error(const char *fmt, ...) CPL_PRINT_FUNC_FORMAT(1, 2);
int asd_run_fail(asd_run *r, const char *fmt, ...) CPL_PRINT_FUNC_FORMAT(2, 3);

/* Delayed cleanup across processes (pending.c): before the output is opened,
   deletes what an earlier run left pending and is now due; at the end, keeps
   what is not due yet in the journal instead of deleting it early. */
int asd_run_take_pending(asd_run *r);
int asd_run_cleanup_pending_only(asd_run *r);
void asd_run_keep_pending(asd_run *r);

#ifdef __cplusplus
}
#endif

#endif /* ASD_RUN_H */
