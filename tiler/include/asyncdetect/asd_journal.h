/*
 * asd_journal.h: the run journal that makes gdal_asyncdetect resumable.
 *
 * The journal records, for every tile of the plan, its state (submitted,
 * succeeded, failed), the inference id and the S3 locations the endpoint
 * named, the failure reason, and - once the tile succeeded - the result text
 * the model returned.  It lives in a GeoPackage: the output itself when the
 * output is a GeoPackage (tables asd_journal and asd_journal_meta), else a
 * sidecar GeoPackage next to the output.  In a journal of its own
 * (asd_journal_open_path) every change is one SQLite statement committed at
 * once, so a process killed at any point (kill -9) loses nothing that was
 * recorded.  A journal opened on a dataset it shares (asd_journal_open_dataset,
 * e.g. the output's own connection) writes into whatever transaction the
 * dataset's owner has open: the owner commits right after each state change
 * (gdal_asyncdetect does, through asd_writer_commit).
 *
 * A journal is safe to use from several threads (it holds a mutex).  When it
 * shares a dataset handle with other code, that code must not use the handle
 * concurrently with the journal.
 */
#ifndef ASD_JOURNAL_H
#define ASD_JOURNAL_H

#include "asyncdetect/asd_export.h"

#include "gdal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_journal_state {
  ASD_JOURNAL_NONE = 0,      /* never recorded */
  ASD_JOURNAL_SUBMITTED = 1, /* invoked; result expected at output_location */
  ASD_JOURNAL_SUCCEEDED = 2, /* result stored in the journal */
  ASD_JOURNAL_FAILED = 3     /* ended with a reason; retried by -resume */
} asd_journal_state;

ASD_API const char *asd_journal_state_name(asd_journal_state s);

/* One tile's record, as last written.  Strings may be NULL. */
typedef struct asd_journal_entry {
  int tile;
  asd_journal_state state;
  char *inference_id;
  char *input_location;
  char *output_location;
  char *failure_location;
  char *reason;
  int attempts; /* number of times the tile was submitted, all runs */
} asd_journal_entry;

typedef struct asd_journal asd_journal;

/*
 * Opens (or, with create, creates) the journal tables in an open vector
 * dataset in update mode (a GeoPackage).  The dataset stays the caller's.
 * Returns NULL after a CPLError.
 */
ASD_API asd_journal *asd_journal_open_dataset(GDALDatasetH ds, int create);

/*
 * Opens (or, with create, creates) a stand-alone journal GeoPackage at path;
 * the journal owns that dataset.
 */
ASD_API asd_journal *asd_journal_open_path(const char *path, int create);

/* Sidecar journal name for an output that is not a GeoPackage (CPLFree). */
ASD_API char *asd_journal_sidecar_path(const char *dest);

/*
 * Run identity.  meta is a CSL list of KEY=VALUE describing what the tile
 * numbers mean (input, window, tile size, overlap, bands, endpoint...).  A
 * journal without identity takes meta; one with identity must match it,
 * otherwise -1 is returned and *mismatch (CPLFree) names the first key that
 * differs.
 */
ASD_API int asd_journal_bind(asd_journal *j, char **meta, char **mismatch);

/*
 * Notes kept beside the identity but never compared by asd_journal_bind
 * (e.g. whether the run created its output or appended to it).  Set them
 * after asd_journal_bind.  set: 0 or -1; get: the value (CPLFree) or NULL.
 */
ASD_API int asd_journal_set_note(asd_journal *j, const char *key, const char *value);
ASD_API char *asd_journal_get_note(asd_journal *j, const char *key);

/* Number of entries loaded or recorded. */
ASD_API int asd_journal_count(asd_journal *j);

/*
 * A copy of the tile's entry (free with asd_journal_entry_free), or NULL if
 * the tile was never recorded.
 */
ASD_API asd_journal_entry *asd_journal_get(asd_journal *j, int tile);
ASD_API void asd_journal_entry_free(asd_journal_entry *e);

/* The stored result text of a succeeded tile (CPLFree), NULL otherwise. */
ASD_API char *asd_journal_result(asd_journal *j, int tile);

/* State changes; each returns 0 once committed, -1 after a CPLError. */
ASD_API int asd_journal_submitted(asd_journal *j, int tile, const char *inference_id,
                          const char *input_location, const char *output_location,
                          const char *failure_location);
ASD_API int asd_journal_succeeded(asd_journal *j, int tile, const char *result_text);
ASD_API int asd_journal_failed(asd_journal *j, int tile, const char *reason);

/* Counts of entries per state (any pointer may be NULL). */
ASD_API void asd_journal_counts(asd_journal *j, int *submitted, int *succeeded, int *failed);

/* Closes the journal (and its dataset when it owns one). */
ASD_API void asd_journal_close(asd_journal *j);

#ifdef __cplusplus
}
#endif

#endif /* ASD_JOURNAL_H */
