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
 *   link      time at least one upload was in progress / the upload phase
 *             (first upload's start to last upload's end)
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
 *
 * A saturated uplink does not show in the upload workers' busy time: a
 * link of 50 Mbit/s carrying 12 PNG tiles/s keeps one or two of the four
 * workers busy, not all of them, and the encoders then wait for a worker
 * part of the time too (measured: PNG at 98 % of a shaped 50 Mbit/s link,
 * encoders 72 % busy, workers 40 %; WEBP at 95 % of 4 Mbit/s, encoders 34 %,
 * workers 50 %; both once called something else).  What does show it is
 * that the link never rests: some tile is on the wire all the time, and the
 * bytes per second while one is (bytes / link-busy time) are the link's own
 * rate.  So the uplink bounded a run when a tile was on the wire at least
 * LINK_BUSY of its upload phase, unless the encoders were saturated and
 * busier still (then the gaps on the wire are theirs: a tile was not ready).
 * When both are busy, the link is named: the encoders could not have gone
 * faster than it anyway, and it is what a user would change (-tco).  An
 * upload is on the wire from its request's start to its answer, so a link
 * that is idle only between requests (round trips on a long path with
 * small tiles) also reads as busy: the uploads bound that run too, and
 * fewer bytes per tile or more workers is still the advice.
 */
#include "engine/bound.h"

#include <stdio.h>

/* Share of the upload phase with a tile on the wire that makes the link the
 * bound (the small requests, polls and invocations, share the link too: 23 %
 * of the bytes with 24 kB tiles), unless the encoders were busy at least
 * ENCODERS_SATURATED of the time and busier than the link. */
#define LINK_BUSY 0.75
#define ENCODERS_SATURATED 0.9

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
  const double span = in->upload_span_seconds > 0 ? in->upload_span_seconds : in->elapsed;
  const double link = share(in->upload_busy_seconds, 1, span);
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
  if (link >= LINK_BUSY && (link >= enc || enc < ENCODERS_SATURATED)) {
    if (why)
      snprintf(why, why_len,
               "a tile on the wire %.0f %% of the upload time, at %.2f MB/s while sending (%.2f MB/s over the "
               "run), %.0f kB per tile; encoders busy %.0f %%",
               100 * link, in->bytes_uploaded / 1e6 / in->upload_busy_seconds, mb_s, kb_tile, 100 * enc);
    return ASD_BOUND_UPLINK;
  }
  if (up >= 0.6 && up >= enc) {
    if (why)
      snprintf(why, why_len, "%d submission workers uploading %.0f %% of the time: %.2f MB/s, %.0f kB per tile",
               in->submission_workers, 100 * up, mb_s, kb_tile);
    return ASD_BOUND_UPLINK;
  }
  if (enc >= 0.6) {
    if (why)
      snprintf(why, why_len, "%d encoder threads busy %.0f %% of the time (%.1f ms per tile); a tile on the wire %.0f %%",
               in->encoder_threads, 100 * enc, 1000 * in->encode_seconds / (double)in->tiles, 100 * link);
    return ASD_BOUND_ENCODING;
  }
  if (why)
    snprintf(why, why_len,
             "nothing saturated (encoders busy %.0f %%, uploads %.0f %%, a tile on the wire %.0f %%, all %d "
             "slots in flight %.0f %% of the time): the tiles were too few to fill the slots",
             100 * enc, 100 * up, 100 * link, in->max_concurrent_jobs, 100 * slots);
  return ASD_BOUND_LATENCY;
}
