/*
 * bound.c: naming the resource that bounded a run.
 *
 * Each stage of a tile's trip has its own workers, and a stage that bounds
 * the run is busy all the time while the stages after it wait for work.  So
 * the decision uses utilisations, each a share of the stage's capacity over
 * the run's elapsed time:
 *   encoders  encode wall time / (encoder threads x elapsed)
 *   uplink    upload time / (submission workers x elapsed)
 *   slots     time spent waiting for a free slot / (submission workers x elapsed)
 * Waiting for slots means all max_concurrent_jobs were in flight: the
 * endpoint had as much work as the run may give it.  Whether it was the
 * endpoint or the polling that held those slots cannot be timed from the
 * client (a result's arrival is only seen by polling), but it shows in the
 * poll counts: a schedule that finds nine jobs in ten done at their first
 * poll never saw them running, so it, not the endpoint, decided how long
 * they held their slots (a fixed 30 s schedule against a 1 s model: one
 * poll per job).  Adaptive polling aims its first poll at the median and
 * sees about half the jobs still running.  At most 10 % of jobs polled more
 * than once means a mean of at most 1.1 polls.  The other thresholds (slots
 * waited for half the time, a stage busy 60 % of it) are deliberately far
 * from the grey zone: a run that saturates nothing is reported as such
 * (endpoint latency, too few tiles to fill the slots) rather than forced
 * into a class.
 */
#include "engine/bound.h"

#include <stdio.h>

const char *asd_bound_name(asd_bound b) {
  switch (b) {
    case ASD_BOUND_ENCODING: return "encoding CPU";
    case ASD_BOUND_UPLINK: return "uplink";
    case ASD_BOUND_ENDPOINT: return "endpoint capacity";
    case ASD_BOUND_POLLING: return "polling";
    case ASD_BOUND_LATENCY: return "endpoint latency";
    case ASD_BOUND_UNKNOWN: break;
  }
  return "unknown";
}

static double share(double part, double n, double elapsed) {
  double cap = n * elapsed;
  double s = cap > 0 ? part / cap : 0;
  return s < 0 ? 0 : s > 1 ? 1 : s;
}

asd_bound asd_bound_classify(const asd_bound_input *in, char *why, size_t why_len) {
  if (why && why_len) why[0] = 0;
  if (!in || in->tiles <= 0 || !(in->elapsed > 0)) {
    if (why) snprintf(why, why_len, "no tile was submitted");
    return ASD_BOUND_UNKNOWN;
  }
  const double enc = share(in->encode_seconds, in->encoder_threads, in->elapsed);
  const double up = share(in->upload_seconds, in->submission_workers, in->elapsed);
  const double slots = share(in->slot_wait_seconds, in->submission_workers, in->elapsed);
  const double mb_s = in->upload_seconds > 0 ? in->bytes_uploaded / 1e6 / in->elapsed : 0;
  const double kb_tile = in->bytes_uploaded / 1e3 / (double)in->tiles;
  if (slots >= 0.5) {
    asd_bound b = in->polls_per_job <= 1.1 ? ASD_BOUND_POLLING : ASD_BOUND_ENDPOINT;
    if (why)
      snprintf(why, why_len,
               "all %d job slots in flight (submission waited for one %.0f %% of the time), %.2f polls per "
               "job%s",
               in->max_concurrent_jobs, 100 * slots, in->polls_per_job,
               b == ASD_BOUND_POLLING ? ": results were found at the first poll, the schedule held the slots"
                                      : ": jobs were polled while still running");
    return b;
  }
  if (up >= 0.6 && up >= enc) {
    if (why)
      snprintf(why, why_len, "%d submission workers uploading %.0f %% of the time: %.2f MB/s, %.0f kB per tile",
               in->submission_workers, 100 * up, mb_s, kb_tile);
    return ASD_BOUND_UPLINK;
  }
  if (enc >= 0.6) {
    if (why)
      snprintf(why, why_len, "%d encoder threads busy %.0f %% of the time (%.1f ms per tile)", in->encoder_threads,
               100 * enc, 1000 * in->encode_seconds / (double)in->tiles);
    return ASD_BOUND_ENCODING;
  }
  if (why)
    snprintf(why, why_len,
             "nothing saturated (encoders busy %.0f %%, uploads %.0f %%, all %d slots in flight %.0f %% of "
             "the time): the tiles were too few to fill the slots",
             100 * enc, 100 * up, in->max_concurrent_jobs, 100 * slots);
  return ASD_BOUND_LATENCY;
}
