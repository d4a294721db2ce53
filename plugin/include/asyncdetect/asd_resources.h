/*
 * asd_resources.h: the registry of what the engine created, and the cleanup
 * policy applied to it.
 *
 * The seed tracks S3 objects, temporary files, inference jobs and worker
 * threads, and never forgets any of them.  Here an entry lives only while it
 * matters: it is added when the resource is created, and it leaves the
 * registry when it is deleted, handed over (retained) or released, so that
 * memory follows the number of jobs in flight, not the number processed.
 *
 * The life of an entry:
 *   asd_resources_add()       ACTIVE: in use by a job; cleanup never touches it
 *                             (except asd_resources_collect(force=1))
 *   asd_resources_dispose()   the job is done with it: the policy decides
 *                             immediate  -> due now
 *                             delayed    -> due cleanup_delay_seconds later
 *                             disabled   -> forgotten, counted as retained
 *   asd_resources_release()   forgotten without deletion (nothing to delete:
 *                             a finished inference job, a joined thread)
 *   asd_resources_retain()    forgotten without deletion but counted as
 *                             retained (e.g. the input of a job abandoned
 *                             in flight, which the endpoint may still read)
 *   asd_resources_collect()   deletes what is due: S3 objects in
 *                             DeleteObjects batches per bucket (<= 1000 keys),
 *                             temporary files with unlink().
 * Deletion failures are counted and the last one is kept as text; they are
 * never fatal.  The registry is thread-safe.
 *
 * Deletion scope.  Once asd_resources_allow() has named at least one
 * bucket+prefix, an S3 object is deleted only when it lies under one of
 * them; any other object is left alone, counted as out_of_scope and warned
 * about once (CPLError warning).  The locations a job deletes come from the
 * endpoint's answers and, on resume, from the journal, neither of which the
 * client controls: a scope keeps a wrong or hostile location from making it
 * delete someone else's data.
 */
#ifndef ASD_RESOURCES_H
#define ASD_RESOURCES_H

#include "asd_export.h"

#include <stddef.h>
#include <stdint.h>

#include "asd_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum asd_resource_type {
  ASD_RES_S3_OBJECT = 0,
  ASD_RES_TEMP_FILE = 1,
  ASD_RES_INFERENCE_JOB = 2,
  ASD_RES_WORKER_THREAD = 3,
  ASD_RES__COUNT
} asd_resource_type;

/* "s3_object", "temp_file", "inference_job", "worker_thread". */
ASD_API const char *asd_resource_type_name(asd_resource_type t);

typedef struct asd_resource_stats {
  long long total;                    /* entries in the registry now */
  long long by_type[ASD_RES__COUNT];  /* entries now, per type */
  long long active;                   /* in use by a job */
  long long pending;                  /* waiting for deletion (due or not) */
  long long deleted;                  /* deleted since creation */
  long long delete_failed;            /* deletions that failed since creation */
  long long retained;                 /* objects kept on purpose (policy disabled, abandoned) */
  long long added;                    /* entries ever added */
  char last_failure[512];             /* last deletion failure, "" if none */
  long long out_of_scope;             /* objects not deleted: outside every allowed scope */
  char last_out_of_scope[512];        /* s3://bucket/key of the last one, "" if none */
} asd_resource_stats;

/*
 * Deletes keys of one bucket (n <= 1000).  Sets failed[i] = 1 for each key
 * that could not be deleted (a missing key counts as deleted) and returns 0;
 * returns -1 when the whole request failed (every key counts as failed), with
 * a one-line reason in err.
 */
typedef int (*asd_s3_delete_fn)(void *ctx, const char *bucket, const char *const *keys, int n,
                                int *failed, char *err, size_t err_len);

typedef struct asd_resources asd_resources;

ASD_API asd_resources *asd_resources_new(asd_cleanup_policy policy, double delay_seconds,
                                 asd_s3_delete_fn s3_delete, void *ctx);
/*
 * Allows deletion under s3://bucket/prefix (prefix "" = the whole bucket).
 * Until the first call every object may be deleted.  Returns 0, -1 on OOM
 * or a bad argument.  Thread-safe; scopes can be added while jobs run
 * (e.g. the endpoint's paths once DescribeEndpointConfig has named them).
 */
ASD_API int asd_resources_allow(asd_resources *r, const char *bucket, const char *prefix);

/* Whether s3://bucket/key may be deleted under the scopes given so far. */
ASD_API int asd_resources_in_scope(asd_resources *r, const char *bucket, const char *key);

/* Frees the registry without deleting anything (call collect(force) first). */
ASD_API void asd_resources_free(asd_resources *r);

/*
 * Registers a resource.  For S3 objects `where` is the bucket and `what` the
 * key; for temporary files `what` is the path (where NULL); for jobs and
 * threads `what` is a name.  Returns an id > 0, or 0 on OOM.
 */
ASD_API uint64_t asd_resources_add(asd_resources *r, asd_resource_type type, const char *where,
                           const char *what);
/* See the life of an entry above.  Unknown ids are ignored.  Return 0 or -1 (unknown id). */
ASD_API int asd_resources_dispose(asd_resources *r, uint64_t id);
ASD_API int asd_resources_release(asd_resources *r, uint64_t id);
ASD_API int asd_resources_retain(asd_resources *r, uint64_t id);

/*
 * Deletes the entries that are due at `now` (asd_time_monotonic() seconds);
 * with force, every deletable entry (S3 objects and temp files, active or
 * pending, due or not).  Returns the number deleted.  Safe to call from
 * several threads (a batch is deleted by the thread that took it).
 */
ASD_API long long asd_resources_collect(asd_resources *r, double now, int force);

/*
 * Delayed cleanup across processes.  Hands every S3 object waiting for
 * deletion and not yet due to fn, with its due time as wall-clock seconds
 * (asd_time_wall), and forgets it: the caller keeps it (gdal_asyncdetect:
 * in the journal) so that a later process deletes it when due, instead of
 * this one deleting it early at exit.  Returns the number handed over.
 */
typedef void (*asd_pending_fn)(void *ctx, const char *bucket, const char *key, double due_wall);
ASD_API long long asd_resources_hand_over(asd_resources *r, asd_pending_fn fn, void *ctx);

/*
 * Deletes s3://bucket/keys[i] (n <= 1000) now, whatever the policy, within
 * the deletion scope.  outcome[i] (may be NULL): 1 deleted (or already
 * gone), 0 not deleted (try again later), -1 outside the scope (left alone,
 * counted and warned about like any other).  Returns the number deleted.
 */
ASD_API long long asd_resources_delete_now(asd_resources *r, const char *bucket, const char *const *keys, int n,
                                   int *outcome);

/* Entries waiting for deletion, and the earliest due time (0 when none). */
ASD_API long long asd_resources_pending(asd_resources *r, double *next_due);

ASD_API void asd_resources_get_stats(asd_resources *r, asd_resource_stats *out);
/* The stats as the seed's dict: {"total_resources":n,"by_type":{"s3_object":{"total":n},...},...}
 * malloc'd text. */
ASD_API char *asd_resources_stats_json(asd_resources *r);

#ifdef __cplusplus
}
#endif

#endif /* ASD_RESOURCES_H */
