/*
 * pending.c: delayed cleanup across processes, as run stages.
 *
 * Under -cleanup-policy delayed an object must survive until its delay has
 * passed, even when the process ends first; deleting it at exit (what the
 * first version did) defeated the policy's purpose, keeping inputs and
 * results around for inspection.  So at the end of a run the resource
 * registry hands over what is not due yet (asd_resources_hand_over) and it
 * is kept in the run's journal, as the "pending_deletions" note
 * (asd_pending.h).  The next run on the same output, before anything else
 * touches the journal (a fresh run would drop its tables), loads that list
 * and deletes what is due; `-cleanup-pending DST` does only that, from the
 * output's journal and the AWS settings alone (no input).  Deletion
 * goes through the detector's registry, so the deletion scope of the
 * current configuration applies to a list read from a file.
 */
#include <stdio.h>
#include <string.h>

#include "asd_run.h"
#include "asyncdetect/asd_common.h"
#include "cpl_conv.h"
#include "cpl_error.h"

int asd_run_take_pending(asd_run *r) {
  if (!r->detector || !r->journal_path || !asd_run_path_exists(r->journal_path)) return 0;
  CPLPushErrorHandler(CPLQuietErrorHandler);
  asd_journal *j = asd_journal_open_path(r->journal_path, 0);
  CPLPopErrorHandler();
  if (!j) return 0; /* no journal there: nothing was left pending */
  if (asd_pending_load(&r->pending, j) != 0)
    CPLError(CE_Warning, CPLE_AppDefined, "the pending deletions noted in '%s' are unreadable: ignored",
             r->journal_path);
  asd_journal_close(j);
  r->pending_noted = r->pending.n > 0;
  if (r->pending.n == 0) return 0;
  long long deleted = 0, dropped = 0;
  size_t left = asd_pending_carry_out(&r->pending, asd_detector_resources(r->detector), asd_time_wall(), &deleted,
                                      &dropped);
  CPLDebug("ASD_RUN", "pending deletions of earlier runs: %lld deleted, %lld outside the scope, %zu not due yet",
           deleted, dropped, left);
  r->summary->pending_deleted = deleted;
  r->summary->pending_left = (long long)left;
  return 0;
}

int asd_run_cleanup_pending_only(asd_run *r) {
  asd_run_report_end(&r->report);
  r->summary->cleanup_only = 1;
  if (r->pending_noted) {
    asd_journal *j = asd_journal_open_path(r->journal_path, 0);
    if (!j || asd_pending_save(&r->pending, j) != 0) {
      if (j) asd_journal_close(j);
      asd_run_error("cannot update the pending deletions in '%s'", r->journal_path);
      return ASD_DETECT_ERROR;
    }
    asd_journal_close(j);
  }
  r->summary->elapsed_seconds = asd_time_monotonic() - r->t0;
  return ASD_DETECT_OK;
}

void asd_run_keep_pending(asd_run *r) {
  /* Once, and only while the journal can still be written (a journal
     sharing the writer's connection cannot once the writer is closed). */
  if (r->pending_kept || !r->detector || !r->journal || (r->journal_shared && !r->writer)) return;
  r->pending_kept = 1;
  if (asd_config_effective_policy(&r->cfg) == ASD_CLEANUP_DELAYED)
    asd_resources_hand_over(asd_detector_resources(r->detector), asd_pending_collect_fn, &r->pending);
  if (r->pending.n == 0 && !r->pending_noted) return;
  if (asd_pending_save(&r->pending, r->journal) != 0 ||
      (r->journal_shared && r->writer && asd_writer_commit(r->writer) != 0))
    CPLError(CE_Warning, CPLE_AppDefined,
             "%zu S3 objects due for deletion later could not be noted in the journal: they will not be deleted",
             r->pending.n);
}
