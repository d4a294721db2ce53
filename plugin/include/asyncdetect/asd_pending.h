/*
 * asd_pending.h: deletions that outlive the process, for the delayed
 * cleanup policy.
 *
 * Under cleanup_policy = delayed an object must survive until its delay has
 * passed, even when the process ends first.  At the end of a run the
 * objects still waiting are handed over by the resource registry
 * (asd_resources_hand_over) into an asd_pending_list, which is kept in the
 * run's journal (a note, "pending_deletions", so it needs no table of its
 * own).  A later run on the same output, or `gdal_asyncdetect
 * -cleanup-pending`, loads the list, deletes what is due through a registry
 * (so the deletion scope applies: an entry outside it is dropped, never
 * deleted) and keeps the rest for the next time.
 */
#ifndef ASD_PENDING_H
#define ASD_PENDING_H

#include "asd_export.h"

#include <stddef.h>

#include "asyncdetect/asd_resources.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct asd_pending_item {
  char *bucket;
  char *key;
  double due; /* wall-clock seconds (asd_time_wall) */
} asd_pending_item;

typedef struct asd_pending_list {
  asd_pending_item *items;
  size_t n, cap;
} asd_pending_list;

ASD_API void asd_pending_init(asd_pending_list *l);
ASD_API void asd_pending_free(asd_pending_list *l);
/* Adds one item (duplicates of bucket+key keep the later due time).  0 or -1 on OOM. */
ASD_API int asd_pending_add(asd_pending_list *l, const char *bucket, const char *key, double due);
/* An asd_pending_fn (asd_resources_hand_over) whose ctx is an asd_pending_list. */
ASD_API void asd_pending_collect_fn(void *ctx, const char *bucket, const char *key, double due_wall);

/* The list as JSON text [["bucket","key",due],...] (malloc'd; free()).  NULL on OOM. */
ASD_API char *asd_pending_to_json(const asd_pending_list *l);
/* Appends the items of a JSON text made by asd_pending_to_json.  0, or -1 when
   the text is not such a list (nothing appended then). */
ASD_API int asd_pending_from_json(asd_pending_list *l, const char *text);

struct asd_journal;
/* Loads the "pending_deletions" note of a journal (appending to l): 0, or -1 when malformed. */
ASD_API int asd_pending_load(asd_pending_list *l, struct asd_journal *j);
/* Stores l as the journal's "pending_deletions" note (an empty list clears it).  0 or -1. */
ASD_API int asd_pending_save(const asd_pending_list *l, struct asd_journal *j);

/*
 * Deletes the items due at now_wall through r (asd_resources_delete_now:
 * scope-checked, whatever r's policy).  Deleted items and items outside the
 * scope leave the list; items not due and failed deletions stay.  *deleted
 * and *dropped (may be NULL) count the first two.  Returns the number of
 * items left.
 */
ASD_API size_t asd_pending_carry_out(asd_pending_list *l, asd_resources *r, double now_wall, long long *deleted,
                             long long *dropped);

/* The earliest due time of the list (0 when empty). */
ASD_API double asd_pending_next_due(const asd_pending_list *l);

#ifdef __cplusplus
}
#endif

#endif /* ASD_PENDING_H */
